/*
 * check_capture_keys.c - key combinations, characters of the US layout and
 * their keysyms (capture/keys.c).
 */
#include <check.h>
#include <string.h>

#include "capture.h"
#include "check_run.h"

static const struct {
	const char *combo;
	uint8_t mods, usage;
} good[] = {
	{ "ctrl+alt+delete", KEYMOD_LCTRL | KEYMOD_LALT, 0x4c },
	{ "Ctrl+Alt+Del", KEYMOD_LCTRL | KEYMOD_LALT, 0x4c },
	{ "enter", 0, 0x28 },
	{ " Enter ", 0, 0x28 },
	{ "shift+F10", KEYMOD_LSHIFT, 0x43 },
	{ "ctrl + c", KEYMOD_LCTRL, 0x06 },
	{ "ctrl+C", KEYMOD_LCTRL, 0x06 },
	{ "meta", KEYMOD_LMETA, 0 },
	{ "altgr+e", KEYMOD_RALT, 0x08 },
	{ "7", 0, 0x24 },
	{ "/", 0, 0x38 },
	{ "ctrl++", KEYMOD_LCTRL | KEYMOD_LSHIFT, 0x2e },
	{ "up", 0, 0x52 },
	{ "F12", 0, 0x45 },
};

static const char *const bad[] = {
	"", "  ", "ctrl+", "ctrl+alt+frobnicate", "a+b", "ctrl alt", "é", "!", "ctrl+\x01",
};

START_TEST(test_parse_good)
{
	struct keystroke k;
	char why[200];

	ck_assert_int_eq(keys_parse(good[_i].combo, &k, why, sizeof why), 0);
	ck_assert_uint_eq(k.mods, good[_i].mods);
	ck_assert_uint_eq(k.usage, good[_i].usage);
}
END_TEST

START_TEST(test_parse_bad)
{
	struct keystroke k;
	char why[200] = "";

	ck_assert_int_eq(keys_parse(bad[_i], &k, why, sizeof why), -1);
	ck_assert_int_gt((int)strlen(why), 10);
}
END_TEST

START_TEST(test_parse_names_the_wrong_part)
{
	struct keystroke k;
	char why[200];

	ck_assert_int_eq(keys_parse("ctrl+alt+frobnicate", &k, why, sizeof why), -1);
	ck_assert_ptr_nonnull(strstr(why, "'frobnicate'"));
}
END_TEST

/* Every printable ASCII character has a key, and its keysym is the character. */
START_TEST(test_every_ascii_char)
{
	for (uint32_t c = 0x20; c < 0x7f; c++) {
		struct keystroke k;
		ck_assert_msg(keys_for_char(c, "", &k) == 0, "no key for '%c'", (char)c);
		ck_assert_uint_ne(k.usage, 0);
		ck_assert_uint_eq(keys_keysym(k.usage, k.mods & KEYMOD_LSHIFT), c);
	}
}
END_TEST

START_TEST(test_chars)
{
	struct keystroke k;

	ck_assert_int_eq(keys_for_char('A', "us", &k), 0);
	ck_assert_uint_eq(k.mods, KEYMOD_LSHIFT);
	ck_assert_uint_eq(k.usage, 0x04);
	ck_assert_int_eq(keys_for_char('\n', "", &k), 0);
	ck_assert_uint_eq(k.usage, 0x28);
	ck_assert_int_eq(keys_for_char('_', "", &k), 0);
	ck_assert_uint_eq(k.mods, KEYMOD_LSHIFT);
	ck_assert_uint_eq(k.usage, 0x2d);
	ck_assert_int_eq(keys_for_char(0xe9, "", &k), -1);	/* é */
	ck_assert_int_eq(keys_for_char(0x7f, "", &k), -1);
	ck_assert_int_eq(keys_for_char('a', "es", &k), -1);	/* no such layout */
	ck_assert_uint_eq(keys_keysym(0x28, false), 0xff0d);
	ck_assert_uint_eq(keys_keysym(0x4c, false), 0xffff);
	ck_assert_uint_eq(keys_mod_keysym(KEYMOD_LCTRL), 0xffe3);
	ck_assert_uint_eq(keys_mod_keysym(KEYMOD_RALT), 0xfe03);
	ck_assert_uint_eq(keys_mod_keysym(3), 0);
}
END_TEST

static Suite *keys_suite(void)
{
	Suite *s = suite_create("capture_keys");
	TCase *tc = tcase_create("keys");

	tcase_add_loop_test(tc, test_parse_good, 0, (int)(sizeof good / sizeof good[0]));
	tcase_add_loop_test(tc, test_parse_bad, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_test(tc, test_parse_names_the_wrong_part);
	tcase_add_test(tc, test_every_ascii_char);
	tcase_add_test(tc, test_chars);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(keys_suite());
}
