/*
 * hid.c - USB HID as the simulated host and the device see it: decoding
 * keyboard reports into characters on a US, German or French host (section
 * 5.1), the device's paste tables (section 7), the legacy JSON messages
 * (section 4.2) and the absolute pointer range (section 5.3).
 */
#include <string.h>

#include "sim.h"

/* US layout, usages 0x1e..0x38: unshifted and shifted characters. */
static const char us_keys[2][28] = {
	"1234567890\n\x1b\b\t -=[]\\#;'`,./",
	"!@#$%^&*()\n\x1b\b\t _+{}|~:\"~<>?",
};

char hid_usage_char(uint8_t usage, bool shift, bool caps)
{
	if (usage >= 0x04 && usage <= 0x1d) {
		char c = (char)('a' + usage - 0x04);
		return (shift != caps) ? (char)(c - 'a' + 'A') : c;
	}
	if (usage >= 0x1e && usage <= 0x38) {
		char c = us_keys[shift ? 1 : 0][usage - 0x1e];
		/* Esc and the non-US # key (0x32) type nothing on a US host. */
		return (c == '\x1b' || usage == 0x32) ? 0 : c;
	}
	/* Keypad, as with Num Lock on. */
	if (usage >= 0x54 && usage <= 0x63)
		return "/*-+\n1234567890."[usage - 0x54];
	return 0;
}

/*
 * The keymaps of a German and a French host (the usual X11/console ones),
 * written from the layouts themselves, not from the device's paste tables
 * below, so that a paste test compares the two. Per key: the character
 * plain, with Shift, with AltGr; letter keys not listed type the letter of
 * the row (Caps Lock applies).
 */
struct host_key { uint8_t usage; uint32_t c[3]; };

static const struct host_key de_host[] = {
	{ 0x08, { 'e', 'E', 0x20ac } }, { 0x10, { 'm', 'M', 0xb5 } }, { 0x14, { 'q', 'Q', '@' } },
	{ 0x1e, { '1', '!', 0xb9 } }, { 0x1f, { '2', '"', 0xb2 } }, { 0x20, { '3', 0xa7, 0xb3 } },
	{ 0x21, { '4', '$', 0xbc } }, { 0x22, { '5', '%', 0xbd } }, { 0x23, { '6', '&', 0xac } },
	{ 0x24, { '7', '/', '{' } }, { 0x25, { '8', '(', '[' } }, { 0x26, { '9', ')', ']' } },
	{ 0x27, { '0', '=', '}' } }, { 0x2d, { 0xdf, '?', '\\' } }, { 0x2e, { 0xb4, '`', 0 } },
	{ 0x2f, { 0xfc, 0xdc, 0 } }, { 0x30, { '+', '*', '~' } }, { 0x31, { '#', '\'', 0 } },
	{ 0x32, { '#', '\'', 0 } }, { 0x33, { 0xf6, 0xd6, 0 } }, { 0x34, { 0xe4, 0xc4, 0 } },
	{ 0x35, { '^', 0xb0, 0 } }, { 0x36, { ',', ';', 0 } }, { 0x37, { '.', ':', 0 } },
	{ 0x38, { '-', '_', 0 } }, { 0x64, { '<', '>', '|' } },
};

static const struct host_key fr_host[] = {
	{ 0x08, { 'e', 'E', 0x20ac } }, { 0x10, { ',', '?', 0 } }, { 0x33, { 'm', 'M', 0 } },
	{ 0x1e, { '&', '1', 0 } }, { 0x1f, { 0xe9, '2', '~' } }, { 0x20, { '"', '3', '#' } },
	{ 0x21, { '\'', '4', '{' } }, { 0x22, { '(', '5', '[' } }, { 0x23, { '-', '6', '|' } },
	{ 0x24, { 0xe8, '7', '`' } }, { 0x25, { '_', '8', '\\' } }, { 0x26, { 0xe7, '9', '^' } },
	{ 0x27, { 0xe0, '0', '@' } }, { 0x2d, { ')', 0xb0, ']' } }, { 0x2e, { '=', '+', '}' } },
	{ 0x2f, { '^', 0xa8, 0 } }, { 0x30, { '$', 0xa3, 0xa4 } }, { 0x31, { '*', 0xb5, 0 } },
	{ 0x32, { '*', 0xb5, 0 } }, { 0x34, { 0xf9, '%', 0 } }, { 0x35, { 0xb2, 0, 0 } },
	{ 0x36, { ';', '.', 0 } }, { 0x37, { ':', '/', 0 } }, { 0x38, { '!', 0xa7, 0 } },
	{ 0x64, { '<', '>', 0 } },
};

static const struct host_map {
	const char *name;
	const char *letters;	/* usages 0x04..0x1d; ' ' where the table above decides */
	const struct host_key *keys;
	size_t n;
} host_maps[] = {
	[HID_LAYOUT_US] = { "us", NULL, NULL, 0 },
	[HID_LAYOUT_DE] = { "de", "abcdefghijklmnopqrstuvwxzy", de_host, ARRAY_LEN(de_host) },
	[HID_LAYOUT_FR] = { "fr", "qbcdefghijkl noparstuvzxyw", fr_host, ARRAY_LEN(fr_host) },
};

int hid_layout_parse(const char *name, enum hid_layout *out)
{
	for (size_t i = 0; i < ARRAY_LEN(host_maps); i++)
		if (strcmp(name, host_maps[i].name) == 0) {
			*out = (enum hid_layout)i;
			return 0;
		}
	return -1;
}

uint32_t hid_host_char(enum hid_layout layout, uint8_t usage, bool shift, bool altgr, bool caps)
{
	const struct host_map *m = &host_maps[layout];
	uint32_t plain;

	/* Enter, Esc, Backspace, Tab, Space and the keypad are the same everywhere. */
	if (m->keys == NULL || (usage >= 0x28 && usage <= 0x2c) || (usage >= 0x54 && usage <= 0x63))
		return altgr ? 0 : (unsigned char)hid_usage_char(usage, shift, caps);
	for (size_t i = 0; i < m->n; i++)
		if (m->keys[i].usage == usage) {
			plain = m->keys[i].c[0];
			if (altgr)
				return m->keys[i].c[2];
			if (plain >= 'a' && plain <= 'z')
				shift = shift != caps;
			return m->keys[i].c[shift ? 1 : 0];
		}
	if (usage < 0x04 || usage > 0x1d || altgr || m->letters[usage - 0x04] == ' ')
		return 0;
	plain = (unsigned char)m->letters[usage - 0x04];
	return shift != caps ? plain - 'a' + 'A' : plain;
}

static bool held(const uint8_t keys[6], uint8_t k)
{
	return memchr(keys, k, 6) != NULL;
}

/* Appends cp to the text typed, as UTF-8; '\b' takes back the last character. */
static void typed_put(struct hid_kbd *k, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp == '\b') {
		while (k->typed_len > 0 && ((unsigned char)k->typed[--k->typed_len] & 0xc0) == 0x80)
			;
		return;
	}
	n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	if (n == 1)
		u[0] = (char)cp;
	else {
		for (size_t i = n - 1; i > 0; i--, cp >>= 6)
			u[i] = (char)(0x80 | (cp & 0x3f));
		u[0] = (char)((n == 2 ? 0xc0 : n == 3 ? 0xe0 : 0xf0) | cp);
	}
	if (k->typed_len + n > sizeof k->typed) {
		/* Keep the newer half, from a character boundary on. */
		size_t cut = k->typed_len / 2;
		while (cut < k->typed_len && ((unsigned char)k->typed[cut] & 0xc0) == 0x80)
			cut++;
		memmove(k->typed, k->typed + cut, k->typed_len - cut);
		k->typed_len -= cut;
	}
	memcpy(k->typed + k->typed_len, u, n);
	k->typed_len += n;
}

int hid_kbd_report(struct hid_kbd *k, const uint8_t r[8], struct screen *s)
{
	uint8_t mods = r[0];
	bool shift = mods & (HID_MOD_LSHIFT | HID_MOD_RSHIFT);
	bool ctrl = mods & (HID_MOD_LCTRL | HID_MOD_RCTRL);
	/* Right Alt is AltGr on the German and French keymaps, plain Alt on US. */
	bool altgr = k->layout != HID_LAYOUT_US && (mods & HID_MOD_RALT);
	bool alt = (mods & HID_MOD_LALT) || ((mods & HID_MOD_RALT) && !altgr);
	bool gui = mods & (HID_MOD_LGUI | HID_MOD_RGUI);
	int what = 0;

	for (int i = 2; i < 8; i++) {
		uint8_t u = r[i];
		uint32_t c;

		if (u < 0x04 || held(k->held, u))
			continue;
		switch (u) {
		case HID_KEY_CAPSLOCK: k->caps = !k->caps; what |= HID_HOST_LEDS; continue;
		case HID_KEY_NUMLOCK: k->num = !k->num; what |= HID_HOST_LEDS; continue;
		case HID_KEY_SCROLLLOCK: k->scroll = !k->scroll; what |= HID_HOST_LEDS; continue;
		}
		if (ctrl && (alt || altgr) && (u == HID_KEY_DELETE || u == 0x63)) {
			what |= HID_HOST_CTRL_ALT_DEL;
			continue;
		}
		c = hid_host_char(k->layout, u, shift, altgr, k->caps);
		if (c == 0 || alt || gui)
			continue;
		if (ctrl) {
			/* A shell echoes control characters as ^X. */
			if (s != NULL && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
				screen_putc(s, '^');
				screen_putc(s, (char)(c & ~0x20));
			}
			continue;
		}
		typed_put(k, c);
		if (s != NULL)
			screen_putc(s, c < 0x80 ? (char)c : '?');
	}
	memcpy(k->held, r + 2, 6);
	return what;
}

uint32_t hid_utf8_next(const char *s, size_t len, size_t *i)
{
	const unsigned char *p = (const unsigned char *)s + *i;
	size_t left = len - *i, n;
	uint32_t cp;

	if (p[0] < 0x80) { *i += 1; return p[0]; }
	if ((p[0] & 0xe0) == 0xc0) { n = 2; cp = p[0] & 0x1f; }
	else if ((p[0] & 0xf0) == 0xe0) { n = 3; cp = p[0] & 0x0f; }
	else if ((p[0] & 0xf8) == 0xf0) { n = 4; cp = p[0] & 0x07; }
	else { *i += 1; return 0xfffd; }
	if (left < n) { *i += 1; return 0xfffd; }
	for (size_t j = 1; j < n; j++) {
		if ((p[j] & 0xc0) != 0x80) { *i += 1; return 0xfffd; }
		cp = cp << 6 | (p[j] & 0x3f);
	}
	*i += n;
	return cp;
}

/* One entry of a paste layout: code point -> modifier + usage. */
struct key_map { uint32_t cp; uint8_t mod, usage; };

#define S HID_MOD_LSHIFT
#define AG HID_MOD_RALT

/* German QWERTZ beyond letters and digits (the device's "de" table). */
static const struct key_map de_map[] = {
	{ '!', S, 0x1e }, { '"', S, 0x1f }, { 0xa7, S, 0x20 }, { '$', S, 0x21 },
	{ '%', S, 0x22 }, { '&', S, 0x23 }, { '/', S, 0x24 }, { '(', S, 0x25 },
	{ ')', S, 0x26 }, { '=', S, 0x27 }, { 0xdf, 0, 0x2d }, { '?', S, 0x2d },
	{ '\\', AG, 0x2d }, { 0xfc, 0, 0x2f }, { 0xdc, S, 0x2f }, { '+', 0, 0x30 },
	{ '*', S, 0x30 }, { '~', AG, 0x30 }, { '#', 0, 0x32 }, { '\'', S, 0x32 },
	{ 0xf6, 0, 0x33 }, { 0xd6, S, 0x33 }, { 0xe4, 0, 0x34 }, { 0xc4, S, 0x34 },
	{ 0xb0, S, 0x35 }, { ',', 0, 0x36 }, { ';', S, 0x36 }, { '.', 0, 0x37 },
	{ ':', S, 0x37 }, { '-', 0, 0x38 }, { '_', S, 0x38 }, { '<', 0, 0x64 },
	{ '>', S, 0x64 }, { '|', AG, 0x64 }, { '@', AG, 0x14 }, { '{', AG, 0x24 },
	{ '[', AG, 0x25 }, { ']', AG, 0x26 }, { '}', AG, 0x27 }, { 0x20ac, AG, 0x08 },
};

/* French AZERTY beyond letters (the device's "fr" table, 2.4.1+). */
static const struct key_map fr_map[] = {
	{ '&', 0, 0x1e }, { 0xe9, 0, 0x1f }, { '"', 0, 0x20 }, { '\'', 0, 0x21 },
	{ '(', 0, 0x22 }, { '-', 0, 0x23 }, { 0xe8, 0, 0x24 }, { '_', 0, 0x25 },
	{ 0xe7, 0, 0x26 }, { 0xe0, 0, 0x27 }, { ')', 0, 0x2d }, { '=', 0, 0x2e },
	{ '+', S, 0x2e }, { '$', 0, 0x30 }, { '*', 0, 0x31 }, { 0xf9, 0, 0x34 },
	{ '%', S, 0x34 }, { ',', 0, 0x10 }, { '?', S, 0x10 }, { ';', 0, 0x36 },
	{ '.', S, 0x36 }, { ':', 0, 0x37 }, { '/', S, 0x37 }, { '!', 0, 0x38 },
	{ '<', 0, 0x64 }, { '>', S, 0x64 }, { '~', AG, 0x1f }, { '#', AG, 0x20 },
	{ '{', AG, 0x21 }, { '[', AG, 0x22 }, { '|', AG, 0x23 }, { '`', AG, 0x24 },
	{ '\\', AG, 0x25 }, { '^', AG, 0x26 }, { '@', AG, 0x27 }, { ']', AG, 0x2d },
	{ '}', AG, 0x2e }, { 0x20ac, AG, 0x08 },
};

#undef S
#undef AG

static bool map_find(const struct key_map *m, size_t n, uint32_t cp, uint8_t *mod, uint8_t *usage)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].cp == cp) {
			*mod = m[i].mod;
			*usage = m[i].usage;
			return true;
		}
	return false;
}

static bool us_map(uint32_t cp, uint8_t *mod, uint8_t *usage)
{
	for (int shift = 0; shift < 2; shift++)
		for (uint8_t u = 0x04; u <= 0x38; u++) {
			if (u == 0x28 || u == 0x29 || u == 0x2a || u == 0x32)
				continue;	/* Enter, Esc, Backspace, non-US # */
			if ((uint32_t)(unsigned char)hid_usage_char(u, shift, false) == cp) {
				*mod = shift ? HID_MOD_LSHIFT : 0;
				*usage = u;
				return true;
			}
		}
	return false;
}

bool hid_paste_map(uint32_t cp, const char *langue, int ver, uint8_t *mod, uint8_t *usage)
{
	bool de = ver >= VER(2, 3, 0) && strcmp(langue, "de") == 0;
	bool fr = ver >= VER(2, 4, 1) && strcmp(langue, "fr") == 0;

	*mod = 0;
	if (cp == '\n') { *usage = HID_KEY_ENTER; return true; }
	if (cp == '\t') { *usage = HID_KEY_TAB; return true; }
	if (cp == ' ') { *usage = 0x2c; return true; }
	if (de) {
		if (cp == 'y' || cp == 'z' || cp == 'Y' || cp == 'Z') {
			*mod = (cp == 'Y' || cp == 'Z') ? HID_MOD_LSHIFT : 0;
			*usage = (cp == 'z' || cp == 'Z') ? 0x1c : 0x1d;
			return true;
		}
		if (map_find(de_map, ARRAY_LEN(de_map), cp, mod, usage))
			return true;
		if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9'))
			return us_map(cp, mod, usage);
		return false;
	}
	if (fr) {
		static const char azerty[] = "qbcdefghijkl,noparstuvzxyw";
		uint32_t lc = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;

		if (lc >= 'a' && lc <= 'z') {
			*mod = cp != lc ? HID_MOD_LSHIFT : 0;
			if (lc == 'm') { *usage = 0x33; return true; }
			for (int u = 0; u < 26; u++)
				if ((uint32_t)azerty[u] == lc) { *usage = (uint8_t)(0x04 + u); return true; }
		}
		if (cp >= '0' && cp <= '9') {
			*mod = HID_MOD_LSHIFT;
			*usage = cp == '0' ? 0x27 : (uint8_t)(0x1e + cp - '1');
			return true;
		}
		return map_find(fr_map, ARRAY_LEN(fr_map), cp, mod, usage);
	}
	return us_map(cp, mod, usage);
}

int hid_abs_to_px(unsigned v, int size)
{
	long long px;

	if (v < 1)
		v = 1;
	px = (long long)(v - 1) * size / 32767;
	return px >= size ? size - 1 : (int)px;
}

enum hid_legacy_kind hid_legacy_decode(const long long *v, size_t n, bool scroll_down_neg,
                                       uint8_t out[8])
{
	memset(out, 0, 8);
	if (n < 1)
		return HID_LEGACY_CRASH;
	switch (v[0]) {
	case 1:	/* [1, keycode, ctrl, shift, alt, meta] */
		if (n < 6)
			return HID_LEGACY_CRASH;
		if (v[1] == 0)
			return HID_LEGACY_KBD;
		out[0] = (uint8_t)(v[2] | v[3] | v[4] | v[5]);
		out[2] = (uint8_t)v[1];
		return HID_LEGACY_KBD;
	case 2:	/* [2, event, button, x, y] */
		if (n < 5)
			return HID_LEGACY_CRASH;
		switch (v[1]) {
		case 0:
			return HID_LEGACY_REL;
		case 1:
			if (v[2] != 1 && v[2] != 2 && v[2] != 4)
				return HID_LEGACY_SKIP;
			out[0] = (uint8_t)v[2];
			return HID_LEGACY_REL;
		case 2:
			out[1] = (uint8_t)(v[3] & 0xff);
			out[2] = (uint8_t)((v[3] >> 8) & 0xff);
			out[3] = (uint8_t)(v[4] & 0xff);
			out[4] = (uint8_t)((v[4] >> 8) & 0xff);
			return HID_LEGACY_ABS;
		case 3:
			out[0] = (uint8_t)v[2];
			out[1] = (uint8_t)(v[3] & 0xff);
			out[2] = (uint8_t)(v[4] & 0xff);
			return HID_LEGACY_REL;
		case 4:
			/* Only the sign of y counts; 2.3.1 flipped it. */
			if (scroll_down_neg)
				out[3] = v[4] < 0 ? 0xff : 0x01;
			else
				out[3] = v[4] > 0 ? 0xff : 0x01;
			return HID_LEGACY_REL;
		}
		return HID_LEGACY_SKIP;
	}
	return HID_LEGACY_SKIP;
}
