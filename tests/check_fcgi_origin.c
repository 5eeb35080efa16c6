/*
 * check_fcgi_origin.c - the Host and Origin allow-lists that keep other web
 * pages (and DNS rebinding) away from /mcp.
 */
#include <check.h>
#include <string.h>

#include "fcgi.h"
#include "check_run.h"

#define HOSTS "127.0.0.1,localhost,[::1]"

static const struct {
	const char *host, *hosts;
	bool allowed;
} host_cases[] = {
	{ "127.0.0.1", HOSTS, true },
	{ "127.0.0.1:8080", HOSTS, true },
	{ "localhost:1", HOSTS, true },
	{ "LOCALHOST", HOSTS, true },
	{ "[::1]", HOSTS, true },
	{ "[::1]:8080", HOSTS, true },
	{ "evil.example.com", HOSTS, false },
	{ "evil.example.com:8080", HOSTS, false },
	{ "localhost.evil.example.com", HOSTS, false },
	{ "127.0.0.1.nip.io", HOSTS, false },
	{ "127.0.0.1:", HOSTS, false },
	{ "127.0.0.1:80x", HOSTS, false },
	{ "127.0.0.1:80:80", HOSTS, false },
	{ "127.0.0.10", HOSTS, false },
	{ "[::1]x", HOSTS, false },
	{ "user@127.0.0.1", HOSTS, false },
	{ "", HOSTS, false },
	{ "kvm.example.com:8443", " kvm.example.com:8443 , other", true },
	{ "kvm.example.com", "kvm.example.com:8443", false },
	{ "kvm.example.com:9000", "kvm.example.com:8443", false },
	{ "other:1", " kvm.example.com:8443 , other", true },
	{ "anything", "", false },
};

START_TEST(test_host)
{
	ck_assert_msg(origin_host_allowed(host_cases[_i].host, host_cases[_i].hosts) ==
	              host_cases[_i].allowed, "host '%s' in '%s': want %s", host_cases[_i].host,
	              host_cases[_i].hosts, host_cases[_i].allowed ? "allowed" : "refused");
}
END_TEST

static const struct {
	const char *origin, *origins;
	bool allowed;
} origin_cases[] = {
	{ "http://127.0.0.1:8080", "", true },
	{ "https://localhost", "", true },
	{ "http://[::1]:3000", "", true },
	{ "http://evil.example.com", "", false },
	{ "http://evil.example.com", "http://evil.example.com", true },
	{ "http://evil.example.com", "https://evil.example.com", false },
	{ "https://app.example.com", "http://x, https://app.example.com/", true },
	{ "null", "", false },
	{ "file://", "", false },
	{ "ftp://127.0.0.1", "", false },
	{ "http://127.0.0.1/path", "", false },
	{ "http://127.0.0.1@evil.example.com", "", false },
	{ "http://", "", false },
};

START_TEST(test_origin)
{
	ck_assert_msg(origin_allowed(origin_cases[_i].origin, HOSTS, origin_cases[_i].origins) ==
	              origin_cases[_i].allowed, "origin '%s' with '%s': want %s",
	              origin_cases[_i].origin, origin_cases[_i].origins,
	              origin_cases[_i].allowed ? "allowed" : "refused");
}
END_TEST

static Suite *origin_suite(void)
{
	Suite *s = suite_create("fcgi_origin");
	TCase *tc = tcase_create("origin");

	tcase_add_loop_test(tc, test_host, 0, (int)ARRAY_LEN(host_cases));
	tcase_add_loop_test(tc, test_origin, 0, (int)ARRAY_LEN(origin_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(origin_suite());
}
