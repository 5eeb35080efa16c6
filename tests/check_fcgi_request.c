/*
 * check_fcgi_request.c - URL parsing at the HTTP edge: what reaches the route
 * table is a decoded path and at most REQ_MAX_PARAMS distinct parameters.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fcgi.h"
#include "check_run.h"

static const struct {
	const char *uri;
	int status;		/* 0 = accepted */
	const char *path;	/* decoded path when accepted */
	int nparams;
	const char *p1, *v1;	/* first parameter when any */
} cases[] = {
	{ "/healthz", 0, "/healthz", 0, NULL, NULL },
	{ "/api/v1/devices?limit=10", 0, "/api/v1/devices", 1, "limit", "10" },
	{ "/a%20b", 0, "/a b", 0, NULL, NULL },
	{ "/x?q=a+b%21", 0, "/x", 1, "q", "a b!" },
	{ "/x?flag", 0, "/x", 1, "flag", "" },
	{ "/x?&&a=1&", 0, "/x", 1, "a", "1" },
	{ "/%C3%A9t%C3%A9", 0, "/\xc3\xa9t\xc3\xa9", 0, NULL, NULL },
	{ "/x?", 0, "/x", 0, NULL, NULL },
	{ "", 400, NULL, 0, NULL, NULL },
	{ "healthz", 400, NULL, 0, NULL, NULL },
	{ "/bad%zz", 400, NULL, 0, NULL, NULL },
	{ "/bad%4", 400, NULL, 0, NULL, NULL },
	{ "/bad%", 400, NULL, 0, NULL, NULL },
	{ "/nul%00", 400, NULL, 0, NULL, NULL },
	{ "/ctl%0a", 400, NULL, 0, NULL, NULL },
	{ "/del%7f", 400, NULL, 0, NULL, NULL },
	{ "/x?a=1&a=2", 400, NULL, 0, NULL, NULL },
	{ "/x?=1", 400, NULL, 0, NULL, NULL },
	{ "/x?a=%zz", 400, NULL, 0, NULL, NULL },
	{ "/x?a%00=1", 400, NULL, 0, NULL, NULL },
	{ "/x?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&p=16&q=17",
	  400, NULL, 0, NULL, NULL },
};

START_TEST(test_parse_uri)
{
	struct request req;
	char err[160] = "";
	int st;

	memset(&req, 0, sizeof req);
	st = request_parse_uri(&req, cases[_i].uri, err, sizeof err);
	ck_assert_msg(st == cases[_i].status, "%s: status %d, want %d (%s)", cases[_i].uri, st,
	              cases[_i].status, err);
	if (st == 0) {
		ck_assert_str_eq(req.path, cases[_i].path);
		ck_assert_int_eq(req.nparams, cases[_i].nparams);
		if (cases[_i].p1 != NULL)
			ck_assert_str_eq(request_param(&req, cases[_i].p1), cases[_i].v1);
	} else {
		ck_assert_msg(err[0] != '\0', "%s: refused without a reason", cases[_i].uri);
	}
	request_cleanup(&req);
}
END_TEST

START_TEST(test_long_uri)
{
	static char uri[5000];
	struct request req;
	char err[160];

	memset(uri, 'a', sizeof uri - 1);
	uri[0] = '/';
	memset(&req, 0, sizeof req);
	ck_assert_int_eq(request_parse_uri(&req, uri, err, sizeof err), 414);
	request_cleanup(&req);
}
END_TEST

START_TEST(test_params_at_limit)
{
	struct request req;
	char err[160];
	char uri[512] = "/x?";

	for (int i = 0; i < REQ_MAX_PARAMS; i++)
		snprintf(uri + strlen(uri), sizeof uri - strlen(uri), "p%d=%d&", i, i);
	memset(&req, 0, sizeof req);
	ck_assert_int_eq(request_parse_uri(&req, uri, err, sizeof err), 0);
	ck_assert_int_eq(req.nparams, REQ_MAX_PARAMS);
	ck_assert_str_eq(request_param(&req, "p15"), "15");
	ck_assert_ptr_null(request_param(&req, "p16"));
	request_cleanup(&req);
}
END_TEST

static Suite *request_suite(void)
{
	Suite *s = suite_create("fcgi_request");
	TCase *tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse_uri, 0, (int)(sizeof cases / sizeof cases[0]));
	tcase_add_test(tc, test_long_uri);
	tcase_add_test(tc, test_params_at_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(request_suite());
}
