/*
 * check_util.c - util.c, buf.c, crypt.c and log.c: the small building blocks.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "buf.h"
#include "crypt.h"
#include "log.h"
#include "util.h"
#include "check_run.h"

static const struct {
	const char *in;
	long long min, max;
	int rc;
	long long want;
	const char *err;
} parse_cases[] = {
	{ "42", 0, 100, 0, 42, NULL },
	{ "-5", -10, 10, 0, -5, NULL },
	{ "0", 0, 0, 0, 0, NULL },
	{ "", 0, 10, -1, 0, "empty" },
	{ "12abc", 0, 100, -1, 0, "not a number" },
	{ " 1", 0, 100, 0, 1, NULL },	/* strtoll skips leading space, as strtonum does */
	{ "101", 0, 100, -1, 0, "too large" },
	{ "-1", 0, 100, -1, 0, "too small" },
	{ "99999999999999999999", 0, 100, -1, 0, "too large" },
	{ "-99999999999999999999", 0, 100, -1, 0, "too small" },
	{ "abc", 0, 100, -1, 0, "not a number" },
};

START_TEST(test_parse_ll)
{
	long long v = -777;
	const char *err = NULL;
	int rc = parse_ll(parse_cases[_i].in, parse_cases[_i].min, parse_cases[_i].max, &v, &err);

	ck_assert_int_eq(rc, parse_cases[_i].rc);
	if (rc == 0)
		ck_assert_int_eq(v, parse_cases[_i].want);
	else
		ck_assert_str_eq(err, parse_cases[_i].err);
}
END_TEST

static const struct { const char *in, *want; } b64_cases[] = {
	{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
	{ "\xfb\xff", "-_8" },
};

START_TEST(test_base64url)
{
	char out[64];

	base64url_encode((const uint8_t *)b64_cases[_i].in, strlen(b64_cases[_i].in), out);
	ck_assert_str_eq(out, b64_cases[_i].want);
}
END_TEST

/* RFC 4648 section 10 vectors, padded, and the two characters base64url replaces. */
static const struct { const char *in, *want; } std64_cases[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	{ "\xfb\xff", "+/8=" },
};

START_TEST(test_base64)
{
	char *out = base64_encode(std64_cases[_i].in, strlen(std64_cases[_i].in));

	ck_assert_str_eq(out, std64_cases[_i].want);
	free(out);
}
END_TEST

START_TEST(test_hex)
{
	char out[9];

	hex_encode((const uint8_t *)"\x00\x7f\xa5\xff", 4, out);
	ck_assert_str_eq(out, "007fa5ff");
}
END_TEST

START_TEST(test_buf)
{
	struct buf b = BUF_INIT;

	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	ck_assert_uint_eq(b.len, strlen(b.data));
	ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
	ck_assert(strstr(b.data, ",999,") != NULL);
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	buf_append(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_eq(b.data[3], '\0');
	buf_free(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_token_roundtrip)
{
	char tok[TOKEN_LEN + 1];
	uint8_t h1[TOKEN_HASH_LEN], h2[TOKEN_HASH_LEN], h3[TOKEN_HASH_LEN];

	token_generate(tok, h1);
	ck_assert_uint_eq(strlen(tok), TOKEN_LEN);
	ck_assert(strncmp(tok, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0);
	ck_assert_int_eq(token_hash(tok, h2), 0);
	ck_assert(memcmp(h1, h2, sizeof h1) == 0);
	tok[10] = tok[10] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(token_hash(tok, h3), 0);
	ck_assert(memcmp(h1, h3, sizeof h1) != 0);
}
END_TEST

START_TEST(test_token_two_differ)
{
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];
	uint8_t ha[TOKEN_HASH_LEN], hb[TOKEN_HASH_LEN];

	token_generate(a, ha);
	token_generate(b, hb);
	ck_assert_str_ne(a, b);
}
END_TEST

static const char *bad_tokens[] = {
	"",
	"kvmg_",
	"kvmg_short",
	"xxxx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	"kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",	/* padding is not base64url */
	"kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'",
	"kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",	/* one too long */
	"kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA A",
};

START_TEST(test_token_malformed)
{
	uint8_t h[TOKEN_HASH_LEN];

	ck_assert_int_eq(token_hash(bad_tokens[_i], h), -1);
}
END_TEST

START_TEST(test_log_json_lines)
{
	char path[] = "/tmp/kvmgate-check-log-XXXXXX";
	int fd = mkstemp(path);
	char line[4096];
	FILE *f;
	json_object *o;
	int lines = 0;

	ck_assert_int_ge(fd, 0);
	close(fd);
	setenv("KVMGATE_LOG_FILE", path, 1);
	setenv("KVMGATE_LOG_LEVEL", "info", 1);
	log_init("check");
	log_debug("hidden below the threshold");
	log_set_request("abc123");
	log_info("quote \" backslash \\ newline \n tab \t end \x01\x1f\x7f r\xc3\xa9");
	log_set_request(NULL);
	/* A NULL value is null; a NULL key ends the fields, whatever follows. */
	log_fields(LOG_LVL_WARN, "fields", "device", "rack-1", "path", "/x\"y", "none", NULL,
	           NULL, "ignored", "k", "v", NULL);

	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL) {
		o = json_tokener_parse(line);
		ck_assert_msg(o != NULL, "not JSON: %s", line);
		ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "process")), "check");
		ck_assert_ptr_nonnull(json_object_object_get(o, "time"));
		if (lines == 0) {
			ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "level")), "info");
			ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "request_id")), "abc123");
			ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "msg")),
			                 "quote \" backslash \\ newline \n tab \t end \x01\x1f\x7f r\xc3\xa9");
		} else {
			ck_assert_ptr_null(json_object_object_get(o, "request_id"));
			ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "level")), "warn");
			ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "path")), "/x\"y");
			ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "device")), "rack-1");
			ck_assert(json_object_object_get_ex(o, "none", NULL));
			ck_assert_ptr_null(json_object_object_get(o, "none"));
			ck_assert(!json_object_object_get_ex(o, "ignored", NULL));
			ck_assert(!json_object_object_get_ex(o, "k", NULL));
		}
		json_object_put(o);
		lines++;
	}
	fclose(f);
	unlink(path);
	ck_assert_int_eq(lines, 2);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_ll, 0, (int)ARRAY_LEN(parse_cases));
	tcase_add_loop_test(tc, test_base64url, 0, (int)ARRAY_LEN(b64_cases));
	tcase_add_loop_test(tc, test_base64, 0, (int)ARRAY_LEN(std64_cases));
	tcase_add_test(tc, test_hex);
	tcase_add_test(tc, test_buf);
	tcase_add_test(tc, test_token_roundtrip);
	tcase_add_test(tc, test_token_two_differ);
	tcase_add_loop_test(tc, test_token_malformed, 0, (int)ARRAY_LEN(bad_tokens));
	tcase_add_test(tc, test_log_json_lines);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(util_suite());
}
