/*
 * keys.c - keys as people name them ("ctrl+alt+delete", "enter", "F10"),
 * characters as a layout types them, and the X keysym of each key: the
 * device-neutral half of keyboard input. Keys are USB HID usages of the
 * keyboard page (protocols/nanokvm.md section 5.1); RFB drivers turn them
 * into keysyms with keys_keysym.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "capture.h"

/* Named keys and their usages; letters and digits are handled by rule. */
static const struct named_key {
	const char *name;
	uint8_t usage;
	uint32_t keysym;
} named[] = {
	{ "enter", 0x28, 0xff0d }, { "return", 0x28, 0xff0d },
	{ "esc", 0x29, 0xff1b }, { "escape", 0x29, 0xff1b },
	{ "backspace", 0x2a, 0xff08 },
	{ "tab", 0x2b, 0xff09 },
	{ "space", 0x2c, 0x0020 },
	{ "minus", 0x2d, 0x002d }, { "equal", 0x2e, 0x003d },
	{ "capslock", 0x39, 0xffe5 },
	{ "f1", 0x3a, 0xffbe }, { "f2", 0x3b, 0xffbf }, { "f3", 0x3c, 0xffc0 },
	{ "f4", 0x3d, 0xffc1 }, { "f5", 0x3e, 0xffc2 }, { "f6", 0x3f, 0xffc3 },
	{ "f7", 0x40, 0xffc4 }, { "f8", 0x41, 0xffc5 }, { "f9", 0x42, 0xffc6 },
	{ "f10", 0x43, 0xffc7 }, { "f11", 0x44, 0xffc8 }, { "f12", 0x45, 0xffc9 },
	{ "printscreen", 0x46, 0xff61 }, { "sysrq", 0x46, 0xff61 },
	{ "scrolllock", 0x47, 0xff14 }, { "pause", 0x48, 0xff13 },
	{ "insert", 0x49, 0xff63 }, { "home", 0x4a, 0xff50 }, { "pageup", 0x4b, 0xff55 },
	{ "delete", 0x4c, 0xffff }, { "del", 0x4c, 0xffff },
	{ "end", 0x4d, 0xff57 }, { "pagedown", 0x4e, 0xff56 },
	{ "right", 0x4f, 0xff53 }, { "left", 0x50, 0xff51 },
	{ "down", 0x51, 0xff54 }, { "up", 0x52, 0xff52 },
	{ "numlock", 0x53, 0xff7f },
	{ "menu", 0x65, 0xff67 },
};

/* Modifier names and their report bits. */
static const struct named_mod {
	const char *name;
	uint8_t bit;
} mods[] = {
	{ "ctrl", KEYMOD_LCTRL }, { "control", KEYMOD_LCTRL }, { "lctrl", KEYMOD_LCTRL },
	{ "rctrl", KEYMOD_RCTRL },
	{ "shift", KEYMOD_LSHIFT }, { "lshift", KEYMOD_LSHIFT }, { "rshift", KEYMOD_RSHIFT },
	{ "alt", KEYMOD_LALT }, { "lalt", KEYMOD_LALT }, { "option", KEYMOD_LALT },
	{ "ralt", KEYMOD_RALT }, { "altgr", KEYMOD_RALT },
	{ "meta", KEYMOD_LMETA }, { "super", KEYMOD_LMETA }, { "win", KEYMOD_LMETA },
	{ "cmd", KEYMOD_LMETA }, { "command", KEYMOD_LMETA }, { "rmeta", KEYMOD_RMETA },
};

/* Keysyms of the modifier bits, bit 0 first. */
static const uint32_t mod_keysyms[8] = {
	0xffe3, 0xffe1, 0xffe9, 0xffeb, 0xffe4, 0xffe2, 0xfe03, 0xffec,
};

/* US layout, usages 0x1e..0x38, unshifted and shifted; '\0' where none. */
static const char us_row[2][28] = {
	"1234567890\0\0\0\0 -=[]\\\0;'`,./",
	"!@#$%^&*()\0\0\0\0 _+{}|\0:\"~<>?",
};

/* One character of a layout beyond its letters and digits. */
struct char_key {
	uint32_t cp;
	uint8_t mods, usage;
};

#define S KEYMOD_LSHIFT
#define AG KEYMOD_RALT

/* German QWERTZ: the characters NanoKVM's paste types with langue "de"
 * (protocols/nanokvm.md section 7); nothing else reaches the host. */
static const struct char_key de_keys[] = {
	{ '!', S, 0x1e }, { '"', S, 0x1f }, { 0xa7, S, 0x20 }, { '$', S, 0x21 },
	{ '%', S, 0x22 }, { '&', S, 0x23 }, { '/', S, 0x24 }, { '(', S, 0x25 },
	{ ')', S, 0x26 }, { '=', S, 0x27 },
	{ 0xdf, 0, 0x2d }, { '?', S, 0x2d }, { '\\', AG, 0x2d },	/* ß ? \ */
	{ 0xfc, 0, 0x2f }, { 0xdc, S, 0x2f },				/* ü Ü */
	{ '+', 0, 0x30 }, { '*', S, 0x30 }, { '~', AG, 0x30 },
	{ '#', 0, 0x32 }, { '\'', S, 0x32 },
	{ 0xf6, 0, 0x33 }, { 0xd6, S, 0x33 },				/* ö Ö */
	{ 0xe4, 0, 0x34 }, { 0xc4, S, 0x34 },				/* ä Ä */
	{ 0xb0, S, 0x35 },						/* ° */
	{ ',', 0, 0x36 }, { ';', S, 0x36 }, { '.', 0, 0x37 }, { ':', S, 0x37 },
	{ '-', 0, 0x38 }, { '_', S, 0x38 },
	{ '<', 0, 0x64 }, { '>', S, 0x64 }, { '|', AG, 0x64 },
	{ '@', AG, 0x14 }, { '{', AG, 0x24 }, { '[', AG, 0x25 }, { ']', AG, 0x26 },
	{ '}', AG, 0x27 }, { 0x20ac, AG, 0x08 },			/* AltGr+q 7 8 9 0 e */
};

/* French AZERTY: the characters NanoKVM's paste types with langue "fr"
 * (2.4.1+). Digits are shifted; m sits right of l. */
static const struct char_key fr_keys[] = {
	{ 'm', 0, 0x33 }, { 'M', S, 0x33 },
	{ '&', 0, 0x1e }, { 0xe9, 0, 0x1f }, { '"', 0, 0x20 }, { '\'', 0, 0x21 },
	{ '(', 0, 0x22 }, { '-', 0, 0x23 }, { 0xe8, 0, 0x24 }, { '_', 0, 0x25 },
	{ 0xe7, 0, 0x26 }, { 0xe0, 0, 0x27 },				/* & é " ' ( - è _ ç à */
	{ ')', 0, 0x2d }, { '=', 0, 0x2e }, { '+', S, 0x2e }, { '$', 0, 0x30 },
	{ '*', 0, 0x31 }, { 0xf9, 0, 0x34 }, { '%', S, 0x34 },		/* ù */
	{ ',', 0, 0x10 }, { '?', S, 0x10 }, { ';', 0, 0x36 }, { '.', S, 0x36 },
	{ ':', 0, 0x37 }, { '/', S, 0x37 }, { '!', 0, 0x38 },
	{ '<', 0, 0x64 }, { '>', S, 0x64 },
	{ '~', AG, 0x1f }, { '#', AG, 0x20 }, { '{', AG, 0x21 }, { '[', AG, 0x22 },
	{ '|', AG, 0x23 }, { '`', AG, 0x24 }, { '\\', AG, 0x25 }, { '^', AG, 0x26 },
	{ '@', AG, 0x27 }, { ']', AG, 0x2d }, { '}', AG, 0x2e }, { 0x20ac, AG, 0x08 },
};

#undef S
#undef AG

/*
 * The layouts: the letter on each usage 0x04..0x1d ('\0': none), whether
 * digits need Shift, and the other characters. The US table is the rows
 * above (keys_keysym reads them too).
 */
static const struct layout {
	const char *name;
	const char letters[26];
	bool digits_shifted;
	const struct char_key *keys;
	size_t n_keys;
} layouts[] = {
	{ "de", "abcdefghijklmnopqrstuvwxzy", false, de_keys, ARRAY_LEN(de_keys) },
	{ "fr", "qbcdefghijkl\0noparstuvzxyw", true, fr_keys, ARRAY_LEN(fr_keys) },
};

/* How a non-US layout types cp; -1 when it has no key for it. */
static int layout_key(const struct layout *l, uint32_t cp, struct keystroke *out)
{
	uint32_t lc = cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
	const char *p;

	for (size_t i = 0; i < l->n_keys; i++)
		if (l->keys[i].cp == cp) {
			*out = (struct keystroke){ l->keys[i].mods, l->keys[i].usage };
			return 0;
		}
	if (lc >= 'a' && lc <= 'z' && (p = memchr(l->letters, (int)lc, sizeof l->letters)) != NULL) {
		*out = (struct keystroke){ cp != lc ? KEYMOD_LSHIFT : 0, (uint8_t)(0x04 + (p - l->letters)) };
		return 0;
	}
	if (cp >= '0' && cp <= '9') {
		*out = (struct keystroke){ l->digits_shifted ? KEYMOD_LSHIFT : 0,
		                           (uint8_t)(cp == '0' ? 0x27 : 0x1e + cp - '1') };
		return 0;
	}
	return -1;
}

int keys_for_char(uint32_t cp, const char *layout, struct keystroke *out)
{
	*out = (struct keystroke){ 0, 0 };
	if (cp == '\n' || cp == '\r') {
		out->usage = 0x28;
		return 0;
	}
	if (cp == '\t' || cp == ' ') {
		out->usage = cp == '\t' ? 0x2b : 0x2c;
		return 0;
	}
	if (layout[0] != '\0' && strcasecmp(layout, "us") != 0 && strcasecmp(layout, "en") != 0) {
		for (size_t i = 0; i < ARRAY_LEN(layouts); i++)
			if (strcasecmp(layout, layouts[i].name) == 0)
				return layout_key(&layouts[i], cp, out);
		return -1;
	}
	if (cp >= 'a' && cp <= 'z') {
		out->usage = (uint8_t)(0x04 + cp - 'a');
	} else if (cp >= 'A' && cp <= 'Z') {
		out->usage = (uint8_t)(0x04 + cp - 'A');
		out->mods = KEYMOD_LSHIFT;
	} else if (cp > 0x20 && cp < 0x7f) {
		for (int shift = 0; shift < 2; shift++) {
			const char *p = memchr(us_row[shift], (int)cp, sizeof us_row[shift]);
			if (p != NULL) {
				out->usage = (uint8_t)(0x1e + (p - us_row[shift]));
				out->mods = shift ? KEYMOD_LSHIFT : 0;
				return 0;
			}
		}
		return -1;
	} else {
		return -1;
	}
	return 0;
}

/* The usage of one key name ("a", "7", "enter", "F4", ";"), or 0. */
static uint8_t key_usage(const char *name, size_t n)
{
	struct keystroke k;

	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		if (strlen(named[i].name) == n && strncasecmp(named[i].name, name, n) == 0)
			return named[i].usage;
	/* A single printable character names its key, unshifted: "a", "7", "/". */
	if (n == 1 && keys_for_char((unsigned char)name[0] >= 'A' && name[0] <= 'Z'
	                            ? (uint32_t)(name[0] - 'A' + 'a') : (unsigned char)name[0],
	                            "us", &k) == 0 && k.mods == 0)
		return k.usage;
	return 0;
}

int keys_parse(const char *combo, struct keystroke *out, char *why, size_t len)
{
	const char *p = combo;

	*out = (struct keystroke){ 0, 0 };
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		snprintf(why, len, "an empty key combination");
		return -1;
	}
	for (;;) {
		/* A part ends at '+', except that "+" alone (or "ctrl++") names the plus key. */
		const char *end = *p == '+' ? p + 1 : p + strcspn(p, "+");
		size_t n = (size_t)(end - p);
		bool found = false;

		while (n > 0 && p[n - 1] == ' ')
			n--;
		for (size_t i = 0; i < sizeof mods / sizeof mods[0] && !found; i++)
			if (strlen(mods[i].name) == n && strncasecmp(mods[i].name, p, n) == 0) {
				out->mods |= mods[i].bit;
				found = true;
			}
		if (!found) {
			uint8_t u = n == 1 && *p == '+' ? 0x2e : key_usage(p, n);
			if (u == 0 || out->usage != 0) {
				snprintf(why, len, u == 0 ? "'%.*s' in '%s' is not a key name (use names such "
				         "as ctrl, alt, shift, meta, enter, esc, tab, f1-f12, delete, up, a, 7)"
				         : "'%.*s' in '%s' is a second key; press one key with modifiers per "
				         "combination", (int)n, p, combo);
				return -1;
			}
			out->usage = u;
			if (n == 1 && *p == '+')
				out->mods |= KEYMOD_LSHIFT;
		}
		p = end;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return 0;
		if (*p != '+') {
			snprintf(why, len, "'%s' is not a key combination", combo);
			return -1;
		}
		p++;
		while (*p == ' ')
			p++;
		if (*p == '\0') {
			snprintf(why, len, "'%s' ends with '+' and no key", combo);
			return -1;
		}
	}
}

uint32_t keys_keysym(uint8_t usage, bool shifted)
{
	if (usage >= 0x04 && usage <= 0x1d)
		return (uint32_t)((shifted ? 'A' : 'a') + usage - 0x04);
	if (usage >= 0x1e && usage <= 0x38 && us_row[shifted][usage - 0x1e] != '\0')
		return (unsigned char)us_row[shifted][usage - 0x1e];
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		if (named[i].usage == usage)
			return named[i].keysym;
	return 0;
}

uint32_t keys_mod_keysym(uint8_t bit)
{
	for (int i = 0; i < 8; i++)
		if (bit == (1u << i))
			return mod_keysyms[i];
	return 0;
}
