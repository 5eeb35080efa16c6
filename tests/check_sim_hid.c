/*
 * check_sim_hid.c - the simulator's pure parts: the font and screen, host-side
 * decoding of keyboard reports, paste tables, legacy JSON messages, the
 * absolute pointer range and the device's password decryption (tests/sim/).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/sim/sim.h"
#include "check_run.h"

START_TEST(test_font_renders_text)
{
	struct screen *s = screen_new(64, 48);	/* 8 columns, 2 text rows + status */
	const uint8_t *rgb;
	char row[16];
	uint8_t g[FONT_H];
	int lit = 0;

	screen_puts(s, "Hi\nthere");
	screen_row_text(s, 0, row);
	ck_assert_str_eq(row, "Hi");
	screen_row_text(s, 1, row);
	ck_assert_str_eq(row, "there");
	screen_puts(s, "\nx");	/* scrolls */
	screen_row_text(s, 0, row);
	ck_assert_str_eq(row, "there");
	screen_putc(s, '\b');
	screen_row_text(s, 1, row);
	ck_assert_str_eq(row, "");
	/* 'H' has two full-height stems: columns 1 and 5 of its cell. */
	font_glyph('H', g);
	ck_assert_uint_eq(g[1], 0x44);
	ck_assert_uint_eq(g[7], 0x7c);
	ck_assert_uint_eq(g[0], 0);
	screen_clear(s);
	screen_puts(s, "H");
	rgb = screen_rgb(s);
	for (int y = 0; y < FONT_H; y++)
		for (int x = 0; x < FONT_W; x++)
			if (rgb[((size_t)y * 64 + x) * 3] > 0x80)
				lit++;
	ck_assert_int_eq(lit, 2 * 7 * 2 + 3 * 2);	/* stems + crossbar, rows doubled */
	screen_free(s);
}
END_TEST

START_TEST(test_jpeg_encodes_on_change_only)
{
	struct screen *s = screen_new(64, 48);
	const uint8_t *j;
	size_t n;
	uint64_t v1 = screen_jpeg(s, 80, &j, &n), v2;

	ck_assert_uint_gt(v1, 0);
	ck_assert(n > 100 && j[0] == 0xff && j[1] == 0xd8 && j[n - 2] == 0xff && j[n - 1] == 0xd9);
	ck_assert_uint_eq(screen_jpeg(s, 80, &j, &n), v1);
	screen_pointer(s, 10, 10);
	v2 = screen_jpeg(s, 80, &j, &n);
	ck_assert_uint_gt(v2, v1);
	screen_free(s);
}
END_TEST

static const struct {
	uint8_t usage;
	bool shift, caps;
	char want;
} usage_cases[] = {
	{ 0x04, false, false, 'a' }, { 0x04, true, false, 'A' }, { 0x04, false, true, 'A' },
	{ 0x04, true, true, 'a' }, { 0x1e, false, false, '1' }, { 0x1e, true, false, '!' },
	{ 0x27, true, false, ')' }, { 0x2d, true, false, '_' }, { 0x31, false, false, '\\' },
	{ 0x35, true, false, '~' }, { 0x38, true, false, '?' }, { 0x28, false, false, '\n' },
	{ 0x2a, false, false, '\b' }, { 0x29, false, false, 0 }, { 0x32, false, false, 0 },
	{ 0x3a, false, false, 0 }, { 0x66, false, false, 0 },
};

START_TEST(test_usage_chars)
{
	for (size_t i = 0; i < ARRAY_LEN(usage_cases); i++)
		ck_assert_int_eq(hid_usage_char(usage_cases[i].usage, usage_cases[i].shift, usage_cases[i].caps),
		                 usage_cases[i].want);
}
END_TEST

START_TEST(test_kbd_reports)
{
	struct screen *s = screen_new(160, 64);
	struct hid_kbd k = { 0 };
	char row[32];
	static const uint8_t r[][8] = {
		{ 0x02, 0, 0x0b, 0, 0, 0, 0, 0 },	/* H */
		{ 0x02, 0, 0x0b, 0, 0, 0, 0, 0 },	/* held: no repeat */
		{ 0, 0, 0x0c, 0x0b, 0, 0, 0, 0 },	/* i pressed, h still held */
		{ 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 0x01, 0, 0x06, 0, 0, 0, 0, 0 },	/* Ctrl+C */
		{ 0, 0, 0x39, 0, 0, 0, 0, 0 },		/* Caps Lock */
		{ 0, 0, 0x04, 0, 0, 0, 0, 0 },		/* A */
	};
	int what = 0;

	for (size_t i = 0; i < ARRAY_LEN(r); i++)
		what |= hid_kbd_report(&k, r[i], s);
	screen_row_text(s, 0, row);
	ck_assert_str_eq(row, "Hi^CA");
	ck_assert(k.caps);
	ck_assert_int_eq(what, HID_HOST_LEDS);
	ck_assert_int_eq(hid_kbd_report(&k, (const uint8_t[8]){ 0x05, 0, 0x4c, 0, 0, 0, 0, 0 }, s),
	                 HID_HOST_CTRL_ALT_DEL);
	screen_free(s);
}
END_TEST

/* A host with the matching keymap types back every character the device's
 * de and fr paste tables map, and each one as itself. */
START_TEST(test_host_layouts)
{
	static const struct { const char *langue; enum hid_layout layout; int n_min; } cases[] = {
		{ "de", HID_LAYOUT_DE, 90 }, { "fr", HID_LAYOUT_FR, 90 }, { "", HID_LAYOUT_US, 90 },
	};
	enum hid_layout l;

	ck_assert_int_eq(hid_layout_parse("fr", &l), 0);
	ck_assert_int_eq(l, HID_LAYOUT_FR);
	ck_assert_int_eq(hid_layout_parse("es", &l), -1);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int n = 0;
		for (uint32_t cp = 0x20; cp < 0x2100; cp++) {
			struct hid_kbd k = { .layout = cases[i].layout };
			uint8_t mod, usage, r[8] = { 0 };
			size_t at = 0;

			if (!hid_paste_map(cp, cases[i].langue, VER(2, 5, 0), &mod, &usage))
				continue;
			r[0] = mod;
			r[2] = usage;
			(void)hid_kbd_report(&k, r, NULL);
			ck_assert_msg(k.typed_len > 0 && hid_utf8_next(k.typed, k.typed_len, &at) == cp &&
			              at == k.typed_len, "%s: U+%04X typed as \"%.*s\"", cases[i].langue, cp,
			              (int)k.typed_len, k.typed);
			n++;
		}
		ck_assert_int_ge(n, cases[i].n_min);
	}
}
END_TEST

START_TEST(test_paste_map)
{
	uint8_t mod, usage;

	ck_assert(hid_paste_map('A', "", VER(2, 4, 3), &mod, &usage) && mod == 2 && usage == 0x04);
	ck_assert(hid_paste_map('~', "es", VER(2, 4, 3), &mod, &usage) && mod == 2 && usage == 0x35);
	ck_assert(hid_paste_map('\n', "", VER(2, 4, 3), &mod, &usage) && usage == 0x28);
	ck_assert(!hid_paste_map(0x1f600, "", VER(2, 5, 0), &mod, &usage));
	ck_assert(!hid_paste_map('\r', "", VER(2, 5, 0), &mod, &usage));
	ck_assert(hid_paste_map('z', "de", VER(2, 3, 0), &mod, &usage) && usage == 0x1c);
	ck_assert(hid_paste_map('@', "de", VER(2, 3, 0), &mod, &usage) && mod == HID_MOD_RALT && usage == 0x14);
	/* fr arrived in 2.4.1: before that it is US. */
	ck_assert(hid_paste_map('a', "fr", VER(2, 4, 0), &mod, &usage) && usage == 0x04);
	ck_assert(hid_paste_map('a', "fr", VER(2, 4, 1), &mod, &usage) && usage == 0x14);
	ck_assert(hid_paste_map('1', "fr", VER(2, 4, 1), &mod, &usage) && mod == 2 && usage == 0x1e);
}
END_TEST

START_TEST(test_legacy_and_abs)
{
	uint8_t out[8];

	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 1, 4, 1, 2, 0, 0 }, 6, true, out), HID_LEGACY_KBD);
	ck_assert(out[0] == 3 && out[2] == 4);
	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 1, 4 }, 2, true, out), HID_LEGACY_CRASH);
	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 0 }, 0, true, out), HID_LEGACY_CRASH);
	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 2, 1, 3, 0, 0 }, 5, true, out), HID_LEGACY_SKIP);
	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 2, 2, 0, 32767, 1 }, 5, true, out), HID_LEGACY_ABS);
	ck_assert(out[1] == 0xff && out[2] == 0x7f && out[3] == 1 && out[4] == 0);
	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 2, 4, 0, 0, -3 }, 5, true, out), HID_LEGACY_REL);
	ck_assert_uint_eq(out[3], 0xff);
	ck_assert_int_eq(hid_legacy_decode((const long long[]){ 2, 4, 0, 0, -3 }, 5, false, out), HID_LEGACY_REL);
	ck_assert_uint_eq(out[3], 0x01);
	ck_assert_int_eq(hid_abs_to_px(1, 1920), 0);
	ck_assert_int_eq(hid_abs_to_px(16384, 1920), 959);
	ck_assert_int_eq(hid_abs_to_px(32767, 1920), 1919);
	ck_assert_int_eq(hid_abs_to_px(32768, 1920), 1919);
	ck_assert_int_eq(hid_abs_to_px(0, 1920), 0);
}
END_TEST

START_TEST(test_decrypt)
{
	static const uint8_t salt[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	char *enc = auth_encrypt_password("admin", salt), *plain = NULL;

	ck_assert_str_eq(enc, "U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFeCig%3D");
	ck_assert_int_eq(auth_decrypt_password(enc, &plain), AUTH_PLAIN);
	ck_assert_str_eq(plain, "admin");
	free(plain);
	/* Bare '+' becomes a space: the base64 no longer decodes. */
	ck_assert_int_eq(auth_decrypt_password("U2FsdGVkX18AAQIDBAUGB7RQW+o4DxJ1XwZq5sFeCig=", &plain), AUTH_EMPTY);
	ck_assert_int_eq(auth_decrypt_password("admin", &plain), AUTH_EMPTY);
	ck_assert_int_eq(auth_decrypt_password("%zz", &plain), AUTH_EMPTY);
	/* "Salted__" + salt + 5 bytes: CryptBlocks panics. */
	ck_assert_int_eq(auth_decrypt_password("U2FsdGVkX18AAQIDBAUGB2FiY2Rl", &plain), AUTH_PANIC);
	/* Salt only: the trimming indexes an empty slice. */
	ck_assert_int_eq(auth_decrypt_password("U2FsdGVkX18AAQIDBAUGBw%3D%3D", &plain), AUTH_PANIC);
	free(enc);
}
END_TEST

START_TEST(test_jwt)
{
	uint8_t key[64] = { 1 }, other[64] = { 2 };
	struct auth_claims c;
	char *t = auth_jwt_make(key, sizeof key, "admin", 100, 200, true, 7);

	ck_assert_int_eq(auth_jwt_check(key, sizeof key, t, 150, &c), 0);
	ck_assert_str_eq(c.username, "admin");
	ck_assert(c.has_version && c.token_version == 7);
	ck_assert_int_eq(auth_jwt_check(key, sizeof key, t, 200, &c), -1);	/* expired */
	ck_assert_int_eq(auth_jwt_check(other, sizeof other, t, 150, &c), -1);
	t[strlen(t) - 2] ^= 1;
	ck_assert_int_eq(auth_jwt_check(key, sizeof key, t, 150, &c), -1);
	ck_assert_int_eq(auth_jwt_check(key, sizeof key, "a.b", 150, &c), -1);
	free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sim");
	TCase *tc = tcase_create("sim");

	tcase_add_test(tc, test_font_renders_text);
	tcase_add_test(tc, test_jpeg_encodes_on_change_only);
	tcase_add_test(tc, test_usage_chars);
	tcase_add_test(tc, test_kbd_reports);
	tcase_add_test(tc, test_paste_map);
	tcase_add_test(tc, test_host_layouts);
	tcase_add_test(tc, test_legacy_and_abs);
	tcase_add_test(tc, test_decrypt);
	tcase_add_test(tc, test_jwt);
	suite_add_tcase(s, tc);
	return check_run(s);
}
