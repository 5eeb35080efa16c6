/*
 * check_fcgi_screentext.c - what wait_for_screen matches and measures
 * (fcgi/screentext.c): substrings ignoring case and runs of white space,
 * match_case, POSIX extended regular expressions line by line, refusals
 * with the reason, exactly one of text and change; and how much of a
 * thumbnail changed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi.h"
#include "check_run.h"

static const char screen[] =
	"American Megatrends BIOS\n"
	"Press  <DEL> or <F2>   to enter SETUP\n"
	"login: root\n"
	"Boot0001* ubuntu";

START_TEST(test_substring)
{
	static const struct {
		const char *text;
		bool match_case, found;
		const char *line;
	} cases[] = {
		{ "press <del>", false, true, "Press  <DEL> or <F2>   to enter SETUP" },
		{ "  or   <f2> to ", false, true, "Press  <DEL> or <F2>   to enter SETUP" },
		{ "Press <DEL>", true, true, "Press  <DEL> or <F2>   to enter SETUP" },
		{ "press <del>", true, false, "" },
		{ "LOGIN:", false, true, "login: root" },
		{ "BIOS login", false, false, "" },	/* across two lines: no */
		{ "ubuntu", false, true, "Boot0001* ubuntu" },
		{ "windows", false, false, "" },
	};
	char why[256], line[128];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct screen_pattern p;
		line[0] = '\0';
		ck_assert_int_eq(screen_pattern_init(&p, cases[i].text, false, cases[i].match_case,
		                                     why, sizeof why), 0);
		ck_assert_msg(screen_pattern_find(&p, screen, line, sizeof line) == cases[i].found,
		              "'%s'", cases[i].text);
		ck_assert_str_eq(line, cases[i].line);
		screen_pattern_cleanup(&p);
	}
}
END_TEST

START_TEST(test_regex)
{
	static const struct {
		const char *re;
		bool match_case, found;
		const char *line;
	} cases[] = {
		{ "^login: *[a-z]+$", false, true, "login: root" },
		{ "F[0-9]+", false, true, "Press  <DEL> or <F2>   to enter SETUP" },
		{ "^boot[0-9]{4}", false, true, "Boot0001* ubuntu" },
		{ "^boot[0-9]{4}", true, false, "" },
		{ "BIOS$", true, true, "American Megatrends BIOS" },
		{ "BIOS.login", false, false, "" },	/* line by line */
	};
	char why[256], line[128];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct screen_pattern p;
		line[0] = '\0';
		ck_assert_int_eq(screen_pattern_init(&p, cases[i].re, true, cases[i].match_case,
		                                     why, sizeof why), 0);
		ck_assert_msg(screen_pattern_find(&p, screen, line, sizeof line) == cases[i].found,
		              "'%s'", cases[i].re);
		ck_assert_str_eq(line, cases[i].line);
		screen_pattern_cleanup(&p);
	}
}
END_TEST

START_TEST(test_refused)
{
	static const struct {
		const char *text;
		bool regex;
		const char *why;
	} cases[] = {
		{ "([a-z]", true, "'text' is not a valid regular expression (POSIX extended): " },
		{ "a{2,1}", true, "'text' is not a valid regular expression" },
		{ "   ", false, "'text' must have something other than spaces" },
		{ "two\nlines", false, "'text' must be one line" },
	};
	char why[256], longer[SCREEN_PATTERN_MAX + 2];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct screen_pattern p;
		ck_assert_int_eq(screen_pattern_init(&p, cases[i].text, cases[i].regex, false, why,
		                                     sizeof why), -1);
		ck_assert_msg(strstr(why, cases[i].why) == why, "%s", why);
		screen_pattern_cleanup(&p);
	}
	memset(longer, 'a', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	{
		struct screen_pattern p;
		ck_assert_int_eq(screen_pattern_init(&p, longer, false, false, why, sizeof why), -1);
		screen_pattern_cleanup(&p);
	}
}
END_TEST

START_TEST(test_setup_one_of)
{
	struct screen_wait w;
	struct screen_pattern p;
	char why[256];

	ck_assert_int_eq(screen_wait_setup(&w, &p, NULL, false, false, false, why, sizeof why), -1);
	ck_assert_ptr_nonnull(strstr(why, "exactly one of 'text'"));
	ck_assert_int_eq(screen_wait_setup(&w, &p, "x", false, false, true, why, sizeof why), -1);
	ck_assert_ptr_nonnull(strstr(why, "not both"));
	ck_assert_int_eq(screen_wait_setup(&w, &p, NULL, true, false, true, why, sizeof why), -1);
	ck_assert_ptr_nonnull(strstr(why, "apply to 'text' only"));
	ck_assert_int_eq(screen_wait_setup(&w, &p, NULL, false, false, true, why, sizeof why), 0);
	ck_assert_ptr_null(w.pattern);
	ck_assert_int_eq(w.timeout_ms, SCREEN_WAIT_DEFAULT_MS);
	ck_assert_int_eq(w.interval_ms, SCREEN_INTERVAL_DEFAULT_MS);
	ck_assert_str_eq(w.read.language, "eng");
	ck_assert_int_eq(screen_wait_setup(&w, &p, "ok", false, false, false, why, sizeof why), 0);
	ck_assert_ptr_eq(w.pattern, &p);
	screen_pattern_cleanup(&p);
}
END_TEST

START_TEST(test_diff)
{
	struct img a = { 100, 10, xcalloc(1000, 3) }, b = { 100, 10, xcalloc(1000, 3) };
	struct img c = { 10, 100, xcalloc(1000, 3) };
	long long changed;

	ck_assert(screen_diff(&a, &b, &changed) == 0 && changed == 0);
	/* Noise below an eighth of the range does not count; a glyph's ink does. */
	memset(b.px, 30, 30);
	ck_assert(screen_diff(&a, &b, &changed) == 0 && changed == 0);
	memset(b.px + 30, 200, 15);
	ck_assert(screen_diff(&a, &b, &changed) == 0.5 && changed == 5);
	/* Another size is a wholly other screen. */
	ck_assert(screen_diff(&a, &c, &changed) == 100 && changed == 1000);
	img_free(&a);
	img_free(&b);
	img_free(&c);
}
END_TEST

static Suite *screentext_suite(void)
{
	Suite *s = suite_create("fcgi_screentext");
	TCase *tc = tcase_create("screentext");

	tcase_add_test(tc, test_substring);
	tcase_add_test(tc, test_regex);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_setup_one_of);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(screentext_suite());
}
