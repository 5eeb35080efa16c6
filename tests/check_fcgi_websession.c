/*
 * check_fcgi_websession.c - the dashboard's session cookie at the HTTP edge:
 * which Cookie headers carry one, the attributes the cookie is set with
 * (Secure only over TLS), and the CSRF step of a change made with it.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fcgi.h"
#include "check_run.h"

#define GOOD "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0"	/* 43 base64url characters */

/* A request whose CGI parameters are env (NULL-terminated "NAME=value"). */
struct fake {
	FCGX_Request fcgx;
	struct request req;
};

static void fake_init(struct fake *f, char **env, const char *method)
{
	memset(f, 0, sizeof *f);
	f->fcgx.envp = env;
	f->req.fcgx = &f->fcgx;
	f->req.method = method;
	f->req.remote_addr = "127.0.0.1";
	f->req.hold = true;		/* responses are kept, not written */
}

static const struct {
	const char *cookie;
	bool presented;
} cookies[] = {
	{ "kvmgate_session=" GOOD, true },
	{ "a=1; kvmgate_session=" GOOD "; b=2", true },
	{ "a=1;kvmgate_session=" GOOD, true },
	{ "kvmgate_session=" GOOD " ", true },
	{ "kvmgate_session=short", true },			/* there, but malformed */
	{ "kvmgate_session=" GOOD "x", true },
	{ "kvmgate_session=" GOOD "; kvmgate_session=x", true },
	{ "kvmgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/", true },
	{ "kvmgate_session=", true },				/* empty: malformed */
	{ "kvmgate_sessionx=" GOOD, false },
	{ "xkvmgate_session=" GOOD, false },
	{ "other=" GOOD, false },
	{ "", false },
	{ ";;;", false },
	{ NULL, false },
};

START_TEST(test_presented)
{
	char line[200];
	char *env[3] = { NULL, NULL, NULL };
	struct fake f;

	if (cookies[_i].cookie != NULL) {
		snprintf(line, sizeof line, "HTTP_COOKIE=%s", cookies[_i].cookie);
		env[0] = line;
	}
	fake_init(&f, env, "GET");
	ck_assert_msg(websession_presented(&f.req) == cookies[_i].presented, "'%s'",
	              cookies[_i].cookie ? cookies[_i].cookie : "(none)");
	request_cleanup(&f.req);
}
END_TEST

/* The Set-Cookie line websession_forget() adds with env. */
static void forget_line(char **env, char *out, size_t len)
{
	struct fake f;

	fake_init(&f, env, "DELETE");
	websession_forget(&f.req);
	snprintf(out, len, "%s", f.req.headers.data ? f.req.headers.data : "");
	request_cleanup(&f.req);
}

START_TEST(test_cookie_attributes)
{
	char *plain[] = { "REQUEST_SCHEME=http", NULL };
	char *https[] = { "HTTPS=on", NULL };
	char *scheme[] = { "REQUEST_SCHEME=https", NULL };
	char line[300];

	forget_line(plain, line, sizeof line);
	ck_assert_str_eq(line, "Set-Cookie: kvmgate_session=; Path=/; Max-Age=0; HttpOnly; "
	                 "SameSite=Strict\r\n");
	forget_line(https, line, sizeof line);
	ck_assert_str_eq(line, "Set-Cookie: kvmgate_session=; Path=/; Max-Age=0; HttpOnly; "
	                 "SameSite=Strict; Secure\r\n");
	forget_line(scheme, line, sizeof line);
	ck_assert(strstr(line, "; Secure\r\n") != NULL);
}
END_TEST

static const struct {
	const char *method;
	const char *header;		/* X-CSRF-Token, NULL: absent */
	int rc;
} csrf_cases[] = {
	{ "GET", NULL, 0 },
	{ "HEAD", NULL, 0 },
	{ "GET", "wrong", 0 },
	{ "POST", GOOD, 0 },
	{ "PATCH", GOOD, 0 },
	{ "DELETE", GOOD, 0 },
	{ "PUT", GOOD, 0 },
	{ "POST", NULL, -1 },
	{ "PATCH", NULL, -1 },
	{ "DELETE", NULL, -1 },
	{ "PUT", NULL, -1 },
	{ "POST", "", -1 },
	{ "POST", GOOD "A", -1 },
	{ "POST", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -1 },	/* a prefix */
	{ "POST", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1", -1 },
	{ "OPTIONS", NULL, -1 },
};

START_TEST(test_csrf)
{
	char line[120];
	char *env[2] = { NULL, NULL };
	struct fake f;
	int rc;

	if (csrf_cases[_i].header != NULL) {
		snprintf(line, sizeof line, "HTTP_X_CSRF_TOKEN=%s", csrf_cases[_i].header);
		env[0] = line;
	}
	fake_init(&f, env, csrf_cases[_i].method);
	snprintf(f.req.csrf, sizeof f.req.csrf, "%s", GOOD);
	rc = websession_csrf_check(&f.req);
	ck_assert_msg(rc == csrf_cases[_i].rc, "%s with '%s': %d", csrf_cases[_i].method,
	              csrf_cases[_i].header ? csrf_cases[_i].header : "(none)", rc);
	if (rc < 0) {
		ck_assert_int_eq(f.req.status, 403);
		ck_assert_msg(strncmp(f.req.error, "csrf: ", 6) == 0, "%s", f.req.error);
	} else {
		ck_assert(!f.req.held);
	}
	request_cleanup(&f.req);
}
END_TEST

/* A session whose CSRF token is unknown ("") accepts no change at all. */
START_TEST(test_csrf_empty)
{
	char *env[] = { "HTTP_X_CSRF_TOKEN=", NULL };
	struct fake f;

	fake_init(&f, env, "POST");
	ck_assert_int_eq(websession_csrf_check(&f.req), -1);
	request_cleanup(&f.req);
}
END_TEST

static Suite *websession_suite(void)
{
	Suite *s = suite_create("websession");
	TCase *tc = tcase_create("cookie");

	tcase_add_loop_test(tc, test_presented, 0, (int)ARRAY_LEN(cookies));
	tcase_add_test(tc, test_cookie_attributes);
	tcase_add_loop_test(tc, test_csrf, 0, (int)ARRAY_LEN(csrf_cases));
	tcase_add_test(tc, test_csrf_empty);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(websession_suite());
}
