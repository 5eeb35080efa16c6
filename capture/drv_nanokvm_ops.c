/*
 * drv_nanokvm_ops.c - device operations on a NanoKVM (protocols/nanokvm.md).
 *
 * The session runs one operation at a time; each is a short chain of steps
 * (a REST call on the operations handle, a WebSocket report, a pause) that
 * continue from the loop, so a paste that types for 20 s never holds up
 * another device. Input goes over /api/ws (keys, pointer) or
 * /api/hid/paste (text); after a mount, an unmount or a HID reset the USB
 * gadget re-enumerates and reports would be dropped, so input waits 1.5 s.
 *
 * Power actions of the catalogue on a NanoKVM, which has a power button
 * (ATX GPIO), a reset button and the power LED, and nothing else:
 *   power_short  short press (800 ms), whatever the LED says
 *   power_long   long press (8 s): hosts force power off after 4-5 s
 *   reset        reset button (800 ms)
 *   on           short press if the LED is off; nothing if it is on
 *   off          short press if the LED is on (the OS is asked to shut down)
 *   off_hard     long press if the LED is on
 *   cycle        long press if the LED is on, 2 s pause, then a short press
 * The result names the presses made and the LED before and after.
 *
 * Device refusals (HTTP 200 with a negative code) end the operation with
 * SE_PROTOCOL and the device's own message; 401 is SE_AUTH, 403 (a role
 * without the right, HEAD firmware) SE_CONFIG, a route
 * the firmware lacks (404) SE_UNSUPPORTED, transport failures SE_OFFLINE or
 * SE_TIMEOUT; arguments the device cannot take (a key name, a character, a
 * point off the screen) SE_INVALID, before anything reaches the device.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drv_nanokvm.h"
#include "log.h"

#define KEY_HOLD_MS 40u
#define KEY_GAP_MS 40u
#define WS_WAIT_MS 5000u
#define HID_QUIET_MS 1500u
#define PRESS_SHORT_MS 800
#define PRESS_LONG_MS 8000
#define CYCLE_PAUSE_MS 2000u
#define REST_TIMEOUT_MS 15000L
#define SCROLL_MAX 100
#define PASTE_BYTES 1024u
#define PASTE_RUNES 833u

/* ---- pure helpers */

size_t nanokvm_paste_chunk(const char *text, size_t len, int ver)
{
	size_t i = 0, runes = 0, last = 0;

	while (i < len) {
		size_t step = 1;
		unsigned char c = (unsigned char)text[i];
		if (c >= 0xf0)
			step = 4;
		else if (c >= 0xe0)
			step = 3;
		else if (c >= 0xc0)
			step = 2;
		if (i + step > len)
			step = len - i;
		if (i + step > PASTE_BYTES || (ver >= NK_VER(2, 5, 0) && runes + 1 > PASTE_RUNES))
			break;
		i += step;
		runes++;
		last = i;
	}
	return last;
}

int nanokvm_langue(const char *layout, int ver, const char **langue, char *why, size_t len)
{
	static const struct { const char *layout, *langue; int since; } table[] = {
		{ "", "", 0 }, { "us", "", 0 }, { "en", "", 0 },
		{ "de", "de", NK_VER(2, 3, 0) }, { "fr", "fr", NK_VER(2, 4, 1) },
	};

	for (size_t i = 0; i < ARRAY_LEN(table); i++)
		if (strcasecmp(layout, table[i].layout) == 0) {
			if (ver < table[i].since) {
				snprintf(why, len, "layout %s needs NanoKVM firmware %d.%d.%d or later "
				         "(this one would type US keys)", layout, table[i].since / 10000,
				         table[i].since / 100 % 100, table[i].since % 100);
				return -1;
			}
			*langue = table[i].langue;
			return 0;
		}
	/* The device takes any langue and types US for unknown ones (§7): refuse instead. */
	snprintf(why, len, "layout %s is not one NanoKVM pastes with (us, de, fr)", layout);
	return -1;
}

/* Next code point of s[*i..len); invalid bytes give U+FFFD. */
static uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
	const unsigned char *p = (const unsigned char *)s + *i;
	size_t left = len - *i, n;
	uint32_t cp;

	if (p[0] < 0x80) {
		(*i)++;
		return p[0];
	}
	n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
	if (n == 0 || left < n) {
		(*i)++;
		return 0xfffd;
	}
	cp = p[0] & (0x7f >> n);
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80) {
			(*i)++;
			return 0xfffd;
		}
		cp = cp << 6 | (p[k] & 0x3f);
	}
	*i += n;
	return cp;
}

/* ---- the operation's life */

static void op_clear(struct nk *k)
{
	k->op = NULL;
	k->op_next = NULL;
	k->op_due_ns = 0;
	k->op_wants_ws = k->op_on_ws = false;
	k->hid_wait = 0;
	k->at = k->n = 0;
	k->phase = 0;
	buf_reset(&k->text);
	buf_reset(&k->result);
}

static void op_finish(struct nk *k, enum session_error e, const char *why)
{
	struct dev_op *op = k->op;

	if (op == NULL)
		return;
	if (e == SE_NONE && k->result.len > 0)
		buf_append(&op->result, k->result.data, k->result.len);
	if (e != SE_NONE)
		log_warnx("device %llu: %s failed: %s", (unsigned long long)k->s->cfg.id,
		          dev_op_name(op->req.op), why);
	/* Cleared first: session_op_done may start the next operation at once. */
	op_clear(k);
	session_op_done(k->s, op, e, why);
}

static void op_fail(struct nk *k, enum session_error e, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void op_fail(struct nk *k, enum session_error e, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	op_finish(k, e, why);
}

static void op_ok(struct nk *k)
{
	op_finish(k, SE_NONE, NULL);
}

/* Runs fn after ms. */
static void op_later(struct nk *k, uint32_t ms, nk_fn fn)
{
	k->op_next = fn;
	k->op_due_ns = now_mono_ns() + (uint64_t)ms * NK_MS;
	nk_arm(k);
}

/* Runs fn once HID input can reach the host: USB settled, /api/ws open (if ws). */
static void op_when_hid(struct nk *k, bool ws, nk_fn fn)
{
	uint64_t now = now_mono_ns();

	if (now < k->hid_quiet_ns) {
		op_later(k, (uint32_t)((k->hid_quiet_ns - now) / NK_MS) + 1, fn);
		k->hid_wait = ws ? 1 : 2;	/* checked again on wake */
		return;
	}
	if (ws && !k->ws_open) {
		k->op_wants_ws = true;
		k->op_next = fn;
		k->op_due_ns = now + WS_WAIT_MS * NK_MS;
		nk_arm(k);
		return;
	}
	fn(k);
}

void nk_op_tick(struct nk *k, uint64_t now)
{
	nk_fn fn;

	if (k->op == NULL || k->op_due_ns == 0 || now < k->op_due_ns)
		return;
	k->op_due_ns = 0;
	if (k->op_wants_ws) {
		op_fail(k, SE_OFFLINE, "the device's input WebSocket is not connected (%s)",
		        k->ws_why[0] ? k->ws_why : "still connecting");
		return;
	}
	fn = k->op_next;
	k->op_next = NULL;
	if (k->hid_wait != 0) {
		bool ws = k->hid_wait == 1;
		k->hid_wait = 0;
		op_when_hid(k, ws, fn);
		return;
	}
	if (fn != NULL)
		fn(k);
}

void nk_op_ws_open(struct nk *k)
{
	nk_fn fn = k->op_next;

	if (k->op == NULL || !k->op_wants_ws)
		return;
	k->op_wants_ws = false;
	k->op_due_ns = 0;
	k->op_next = NULL;
	fn(k);
}

void nk_op_ws_closed(struct nk *k, const char *why)
{
	if (k->op != NULL && k->op_on_ws)
		op_fail(k, SE_OFFLINE, "the input WebSocket closed during the operation (%s); "
		        "the device releases held keys and buttons", why);
}

void nk_op_abort(struct nk *k)
{
	/* The session code ends the operation itself after session_error or at idle. */
	op_clear(k);
}

/* Sends one HID message; fails the operation when the socket is gone. Returns 0 or -1. */
static int send_msg(struct nk *k, const uint8_t *m, size_t n, bool binary)
{
	k->op_on_ws = true;
	if (nk_ws_send(k, binary, m, n) < 0) {
		if (k->op != NULL)
			op_fail(k, SE_OFFLINE, "the input WebSocket closed during the operation (%s)",
			        k->ws_why[0] ? k->ws_why : "send failed");
		return -1;
	}
	return 0;
}

/*
 * Checks the operations handle's answer: transport, HTTP status, envelope
 * and code. Returns true when it is a success; else the operation has failed.
 */
static bool call_ok(struct nk *k, const char *what)
{
	struct nk_call *c = &k->oc;

	if (c->result != CURLE_OK) {
		op_fail(k, c->result == CURLE_OPERATION_TIMEDOUT ? SE_TIMEOUT : SE_OFFLINE, "%s: %s", what,
		        c->result == CURLE_FAILED_INIT ? c->msg : curl_easy_strerror(c->result));
		return false;
	}
	if (c->status == 401) {
		op_fail(k, SE_AUTH, "%s: the device answered HTTP 401 (token refused)", what);
		return false;
	}
	if (c->status == 403) {
		/* §11: a role (HEAD firmware), not the password: retrying cannot help. */
		op_fail(k, SE_CONFIG, "%s: the device answered 403 forbidden: the NanoKVM account "
		        "'%.40s' lacks the admin role this needs", what, k->s->cfg.username);
		return false;
	}
	if (c->status == 404) {
		op_fail(k, SE_UNSUPPORTED, "%s: NanoKVM firmware %s has no such endpoint", what,
		        k->s->firmware[0] ? k->s->firmware : "(unknown)");
		return false;
	}
	if (c->code == -1000) {
		op_fail(k, SE_PROTOCOL, "%s: the device answered HTTP %ld without a JSON envelope", what,
		        c->status);
		return false;
	}
	if (c->code != 0) {
		op_fail(k, SE_PROTOCOL, "%s: the device refused: %s (code %d)", what,
		        c->msg[0] ? c->msg : "no message", c->code);
		return false;
	}
	return true;
}

static void put_result(struct nk *k, json_object *o)
{
	buf_reset(&k->result);
	buf_puts(&k->result, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* ---- keys */

static void keys_release(struct nk *k);

static void keys_press(struct nk *k)
{
	const struct keystroke *ks = (const struct keystroke *)k->text.data;
	uint8_t m[64];
	bool bin;
	size_t n;

	if (k->at >= k->n) {
		op_ok(k);
		return;
	}
	n = nanokvm_kbd_msg(k->ver, ks[k->at].mods, ks[k->at].usage, m, sizeof m, &bin);
	if (send_msg(k, m, n, bin) == 0)
		op_later(k, KEY_HOLD_MS, keys_release);
}

static void keys_release(struct nk *k)
{
	uint8_t m[64];
	bool bin;
	size_t n = nanokvm_kbd_msg(k->ver, 0, 0, m, sizeof m, &bin);

	k->at++;
	if (send_msg(k, m, n, bin) == 0)
		op_later(k, KEY_GAP_MS, keys_press);
}

static void op_keys(struct nk *k)
{
	char *copy = xstrdup(k->op->data != NULL ? k->op->data : ""), *save = NULL, why[160];
	struct keystroke ks;
	uint8_t m[64];
	bool bin;

	for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		line[strcspn(line, "\r")] = '\0';
		if (line[strspn(line, " \t")] == '\0')
			continue;
		if (keys_parse(line, &ks, why, sizeof why) < 0) {
			free(copy);
			op_fail(k, SE_INVALID, "%s", why);
			return;
		}
		if (nanokvm_kbd_msg(k->ver, ks.mods, ks.usage, m, sizeof m, &bin) == 0) {
			op_fail(k, SE_UNSUPPORTED, "\"%.60s\": NanoKVM firmware %s cannot press a modifier "
			        "alone (JSON input, before 2.3.2)", line, k->s->firmware);
			free(copy);
			return;
		}
		buf_append(&k->text, &ks, sizeof ks);
		k->n++;
	}
	free(copy);
	if (k->n == 0) {
		op_fail(k, SE_INVALID, "no keys given");
		return;
	}
	op_when_hid(k, true, keys_press);
}

/* ---- text: /api/hid/paste, split to the firmware's limit */

static void paste_next(struct nk *k);

static void paste_done(struct nk *k)
{
	json_object *o;
	char what[96];
	size_t typed = 0;

	/* Characters of the pastes before this one, which the device has typed. */
	for (size_t i = 0; i < k->sent_before; i++)
		typed += ((unsigned char)k->text.data[i] & 0xc0) != 0x80;
	if (k->phase == 0)
		snprintf(what, sizeof what, "paste");
	else
		snprintf(what, sizeof what, "paste (after %zu of %zu characters were typed)", typed, k->n);
	if (!call_ok(k, what))
		return;
	k->phase++;
	if (k->at < k->text.len) {
		paste_next(k);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "characters", json_object_new_int64((int64_t)k->n));
	json_object_object_add(o, "pastes", json_object_new_int(k->phase));
	put_result(k, o);
	op_ok(k);
}

static void paste_next(struct nk *k)
{
	const char *langue = "";
	char why[160];
	size_t n = nanokvm_paste_chunk(k->text.data + k->at, k->text.len - k->at, k->ver);
	json_object *o = json_object_new_object();
	long timeout;

	if (nanokvm_langue(k->op->req.arg, k->ver, &langue, why, sizeof why) < 0)
		langue = "";	/* checked by op_text already */
	json_object_object_add(o, "content", json_object_new_string_len(k->text.data + k->at, (int)n));
	if (k->ver >= NK_VER(2, 3, 0))
		json_object_object_add(o, "langue", json_object_new_string(langue));
	k->sent_before = k->at;
	k->at += n;
	/* §11: 30-50 ms per rune plus 5 s. */
	timeout = (long)n * 50 + 5000;
	nk_call(k, &k->oc, "/api/hid/paste", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	        timeout, paste_done);
	json_object_put(o);
}

static void op_text(struct nk *k)
{
	const char *t = k->op->data != NULL ? k->op->data : "", *langue;
	size_t len = strlen(t), i = 0;
	bool us;
	char why[160];

	if (nanokvm_langue(k->op->req.arg, k->ver, &langue, why, sizeof why) < 0) {
		op_fail(k, SE_INVALID, "%s", why);
		return;
	}
	us = langue[0] == '\0';
	while (i < len) {
		size_t at = i;
		uint32_t cp = utf8_next(t, len, &i);
		struct keystroke ks;
		/* The device skips \r; "\r\n" and a lone "\r" both mean one Enter. */
		if (cp == '\r') {
			if (i < len && t[i] == '\n')
				continue;
			cp = '\n';
		}
		/* What paste cannot type it skips silently (§7): refuse it here instead. */
		if (keys_for_char(cp, langue, &ks) < 0) {
			op_fail(k, SE_INVALID, "character U+%04X (\"%.*s\") at byte %zu cannot be typed "
			        "with the %s layout; nothing was typed", cp, (int)(i - at), t + at, at,
			        us ? "US" : langue);
			return;
		}
		buf_append(&k->text, cp == '\n' && t[at] == '\r' ? "\n" : t + at,
		           cp == '\n' && t[at] == '\r' ? 1 : i - at);
		k->n++;
	}
	if (k->n == 0) {
		op_fail(k, SE_INVALID, "no text given");
		return;
	}
	k->phase = 0;
	op_when_hid(k, false, paste_next);
}

/* ---- pointer */

static uint8_t button_bit(uint32_t b)
{
	return b == BUTTON_RIGHT ? 2 : b == BUTTON_MIDDLE ? 4 : 1;
}

static int send_mouse(struct nk *k, enum nanokvm_mouse ev, uint8_t buttons, int wheel)
{
	uint8_t m[64];
	bool bin;
	size_t n = nanokvm_mouse_msg(k->ver, ev, buttons, k->px, k->py, wheel, m, sizeof m, &bin);

	return send_msg(k, m, n, bin);
}

/* Takes the op's x, y (or the last position for -1, -1) into k->px, k->py. Returns 0 or -1 (failed). */
static int op_position(struct nk *k, bool may_keep)
{
	int32_t x = k->op->req.x, y = k->op->req.y;

	if (x == -1 && y == -1 && may_keep) {
		if (!k->pointer_known)
			k->px = k->py = 16384;	/* the centre: nothing better is known */
		return 0;
	}
	if (k->s->width == 0 || k->s->height == 0) {
		op_fail(k, SE_TIMEOUT, "the screen size is not known yet (no frame so far)");
		return -1;
	}
	if (x < 0 || y < 0 || (uint32_t)x >= k->s->width || (uint32_t)y >= k->s->height) {
		op_fail(k, SE_INVALID, "point (%d, %d) is outside the %ux%u screen", x, y,
		        k->s->width, k->s->height);
		return -1;
	}
	k->px = nanokvm_abs(x, k->s->width);
	k->py = nanokvm_abs(y, k->s->height);
	k->pointer_known = true;
	return 0;
}

static void move_send(struct nk *k)
{
	if (send_mouse(k, NKM_MOVE, 0, 0) == 0)
		op_ok(k);
}

static void op_move(struct nk *k)
{
	if (op_position(k, false) == 0)
		op_when_hid(k, true, move_send);
}

/* Click: move, then per click press and release at the same place (§5.3). */
static void click_step(struct nk *k)
{
	uint8_t bit = button_bit(k->op->req.button);
	int clicks = k->op->req.count > 0 ? k->op->req.count : 1;

	switch (k->phase) {
	case 0:
		if (send_mouse(k, NKM_MOVE, 0, 0) < 0)
			return;
		k->phase = 1;
		op_later(k, 30, click_step);
		return;
	case 1:
		if (send_mouse(k, NKM_BUTTONS, bit, 0) < 0)
			return;
		k->phase = 2;
		op_later(k, 50, click_step);
		return;
	default:
		if (send_mouse(k, NKM_BUTTONS, 0, 0) < 0)
			return;
		if ((int)++k->at < clicks) {
			k->phase = 1;
			op_later(k, 80, click_step);
			return;
		}
		op_ok(k);
	}
}

static void op_click(struct nk *k)
{
	if (k->op->req.count < 0 || k->op->req.count > 2) {
		op_fail(k, SE_INVALID, "count %d: a click is single (1) or double (2)", k->op->req.count);
		return;
	}
	if (k->op->req.button > BUTTON_MIDDLE) {
		op_fail(k, SE_INVALID, "button %u: left (1), right (2) or middle (3)", k->op->req.button);
		return;
	}
	if (op_position(k, true) < 0)
		return;
	k->phase = 0;
	op_when_hid(k, true, click_step);
}

static void scroll_step(struct nk *k)
{
	int32_t steps = k->op->req.count;

	if (k->phase == 0 && !(k->op->req.x == -1 && k->op->req.y == -1)) {
		k->phase = 1;
		if (send_mouse(k, NKM_MOVE, 0, 0) == 0)
			op_later(k, 30, scroll_step);
		return;
	}
	k->phase = 1;
	if (k->at >= (size_t)(steps < 0 ? -steps : steps)) {
		op_ok(k);
		return;
	}
	k->at++;
	/* count > 0 scrolls down; HID wheel positive is up (§5.3). */
	if (send_mouse(k, NKM_WHEEL, 0, steps > 0 ? -1 : 1) == 0)
		op_later(k, 30, scroll_step);
}

static void op_scroll(struct nk *k)
{
	if (k->op->req.count == 0 || k->op->req.count > SCROLL_MAX || k->op->req.count < -SCROLL_MAX) {
		op_fail(k, SE_INVALID, "count %d: 1 to %d wheel steps, negative for up",
		        k->op->req.count, SCROLL_MAX);
		return;
	}
	if (op_position(k, true) < 0)
		return;
	k->phase = 0;
	op_when_hid(k, true, scroll_step);
}

/* ---- simple REST operations */

static void quiet_done(struct nk *k)
{
	if (!call_ok(k, dev_op_name(k->op->req.op)))
		return;
	k->hid_quiet_ns = now_mono_ns() + HID_QUIET_MS * NK_MS;
	op_ok(k);
}

static void op_hid_reset(struct nk *k)
{
	nk_call(k, &k->oc, "/api/hid/reset", "{}", REST_TIMEOUT_MS, quiet_done);
}

static void plain_done(struct nk *k)
{
	if (call_ok(k, dev_op_name(k->op->req.op)))
		op_ok(k);
}

static void op_hdmi_reset(struct nk *k)
{
	nk_call(k, &k->oc, "/api/vm/hdmi/reset", "{}", REST_TIMEOUT_MS, plain_done);
}

/* ---- power */

static bool led_of(struct nk *k, bool *on)
{
	json_object *v;

	if (!json_object_object_get_ex(k->oc.data, "pwr", &v) || !json_object_is_type(v, json_type_boolean)) {
		op_fail(k, SE_PROTOCOL, "vm/gpio answered without a pwr field");
		return false;
	}
	*on = json_object_get_boolean(v);
	nk_led_seen(k, *on);
	return true;
}

static void state_done(struct nk *k)
{
	json_object *o, *led, *v;
	bool on;

	if (!call_ok(k, "power state") || !led_of(k, &on))
		return;
	o = json_object_new_object();
	led = json_object_new_object();
	json_object_object_add(o, "power", json_object_new_string(on ? "on" : "off"));
	json_object_object_add(led, "pwr", json_object_new_boolean(on));
	json_object_object_add(led, "hdd", json_object_new_boolean(
		json_object_object_get_ex(k->oc.data, "hdd", &v) && json_object_get_boolean(v)));
	json_object_object_add(o, "led", led);
	put_result(k, o);
	op_ok(k);
}

static void op_power_state(struct nk *k)
{
	nk_call(k, &k->oc, "/api/vm/gpio", NULL, REST_TIMEOUT_MS, state_done);
}

/* Power plans: presses, in order; 'S' short, 'L' long, 'R' reset. */
static const struct power_plan {
	const char *action;
	bool need_led;
	const char *if_on, *if_off;
} plans[] = {
	{ "power_short", false, "S", "S" },
	{ "power_long", false, "L", "L" },
	{ "reset", false, "R", "R" },
	{ "on", true, "", "S" },
	{ "off", true, "S", "" },
	{ "off_hard", true, "L", "" },
	{ "cycle", true, "LS", "S" },
};

static const struct power_plan *plan_of(const char *action)
{
	for (size_t i = 0; i < ARRAY_LEN(plans); i++)
		if (strcmp(action, plans[i].action) == 0)
			return &plans[i];
	return NULL;
}

static void power_press(struct nk *k);

static void power_after(struct nk *k)
{
	json_object *o, *presses;
	const struct power_plan *p = plan_of(k->op->req.arg);
	const char *done = k->led_before ? p->if_on : p->if_off;
	bool on;

	if (!call_ok(k, "power state") || !led_of(k, &on))
		return;
	o = json_object_new_object();
	presses = json_object_new_array();
	for (size_t i = 0; i < k->at; i++)
		json_object_array_add(presses, json_object_new_string(
			done[i] == 'L' ? "power_long" : done[i] == 'R' ? "reset" : "power_short"));
	json_object_object_add(o, "action", json_object_new_string(p->action));
	json_object_object_add(o, "presses", presses);
	if (p->need_led)
		json_object_object_add(o, "power_before", json_object_new_string(k->led_before ? "on" : "off"));
	json_object_object_add(o, "power", json_object_new_string(on ? "on" : "off"));
	put_result(k, o);
	op_ok(k);
}

static void power_pressed(struct nk *k)
{
	if (!call_ok(k, "power press"))
		return;
	k->at++;
	if (k->at < strlen(k->text.data)) {
		op_later(k, CYCLE_PAUSE_MS, power_press);
		return;
	}
	nk_call(k, &k->oc, "/api/vm/gpio", NULL, REST_TIMEOUT_MS, power_after);
}

static void power_press(struct nk *k)
{
	char c = k->text.data[k->at], body[64];
	int ms = c == 'L' ? PRESS_LONG_MS : PRESS_SHORT_MS;

	snprintf(body, sizeof body, "{\"type\":\"%s\",\"duration\":%d}", c == 'R' ? "reset" : "power", ms);
	nk_call(k, &k->oc, "/api/vm/gpio", body, ms + 5000L, power_pressed);
}

static void power_plan_run(struct nk *k)
{
	const struct power_plan *p = plan_of(k->op->req.arg);

	buf_reset(&k->text);
	buf_puts(&k->text, k->led_before ? p->if_on : p->if_off);
	buf_append(&k->text, "", 1);
	k->at = 0;
	if (k->text.data[0] == '\0')
		nk_call(k, &k->oc, "/api/vm/gpio", NULL, REST_TIMEOUT_MS, power_after);
	else
		power_press(k);
}

static void power_led_done(struct nk *k)
{
	bool on;

	if (!call_ok(k, "power state") || !led_of(k, &on))
		return;
	k->led_before = on;
	power_plan_run(k);
}

static void op_power(struct nk *k)
{
	const struct power_plan *p = plan_of(k->op->req.arg);

	if (p == NULL) {
		op_fail(k, SE_INVALID, "power action \"%.32s\": on, off, off_hard, reset, cycle, "
		        "power_short or power_long", k->op->req.arg);
		return;
	}
	k->led_before = k->led == 1;
	if (p->need_led)
		nk_call(k, &k->oc, "/api/vm/gpio", NULL, REST_TIMEOUT_MS, power_led_done);
	else
		power_plan_run(k);
}

/* ---- info */

static void info_add(struct nk *k, const char *name)
{
	json_object *o = json_tokener_parse(k->result.len > 0 ? k->result.data : "{}");

	if (o == NULL)
		o = json_object_new_object();
	json_object_object_add(o, name, json_object_get(k->oc.data));
	put_result(k, o);
}

static void info_final(struct nk *k)
{
	json_object *o = json_tokener_parse(k->result.data);
	char ws[200];

	if (k->phase == 3) {
		if (!call_ok(k, "vm/hdmi"))
			return;
		info_add(k, "hdmi");
		json_object_put(o);
		o = json_tokener_parse(k->result.data);
	}
	snprintf(ws, sizeof ws, "%s%s%s", k->ws_open ? "open" : "closed",
	         !k->ws_open && k->ws_why[0] ? ": " : "", k->ws_open ? "" : k->ws_why);
	json_object_object_add(o, "kind", json_object_new_string("nanokvm"));
	json_object_object_add(o, "firmware", json_object_new_string(k->s->firmware));
	json_object_object_add(o, "hid_protocol", json_object_new_string(
		k->ver >= NK_VER(2, 3, 2) ? "binary" : "json"));
	json_object_object_add(o, "websocket", json_object_new_string(ws));
	json_object_object_add(o, "width", json_object_new_int64(k->s->width));
	json_object_object_add(o, "height", json_object_new_int64(k->s->height));
	if (k->led >= 0)
		json_object_object_add(o, "power", json_object_new_string(k->led ? "on" : "off"));
	put_result(k, o);
	op_ok(k);
}

static void info_step(struct nk *k)
{
	switch (k->phase++) {
	case 0:
		nk_call(k, &k->oc, "/api/vm/info", NULL, REST_TIMEOUT_MS, info_step);
		return;
	case 1:
		if (!call_ok(k, "vm/info"))
			return;
		info_add(k, "info");
		nk_call(k, &k->oc, "/api/vm/hardware", NULL, REST_TIMEOUT_MS, info_step);
		return;
	case 2:
		if (!call_ok(k, "vm/hardware"))
			return;
		info_add(k, "hardware");
		if (k->ver >= NK_VER(2, 3, 0)) {
			nk_call(k, &k->oc, "/api/vm/hdmi", NULL, REST_TIMEOUT_MS, info_final);
			return;
		}
		k->phase = 4;
		info_final(k);
		return;
	}
}

static void op_info(struct nk *k)
{
	k->phase = 0;
	info_step(k);
}

/* ---- images */

static void list_done(struct nk *k)
{
	json_object *o, *files, *images;

	if (!call_ok(k, "storage/image"))
		return;
	/* {"files":null} when there is none (§3). */
	images = json_object_object_get_ex(k->oc.data, "files", &files) &&
	         json_object_is_type(files, json_type_array) ? json_object_get(files) : json_object_new_array();
	o = json_object_new_object();
	json_object_object_add(o, "images", images);
	put_result(k, o);
	op_ok(k);
}

static void op_iso_list(struct nk *k)
{
	nk_call(k, &k->oc, "/api/storage/image", NULL, REST_TIMEOUT_MS, list_done);
}

static void mounted_done(struct nk *k)
{
	json_object *o, *v;
	const char *file;

	if (k->phase == 0) {
		if (!call_ok(k, "storage/image/mounted"))
			return;
		file = json_object_object_get_ex(k->oc.data, "file", &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : "";
		o = json_object_new_object();
		json_object_object_add(o, "image", file[0] ? json_object_new_string(file) : NULL);
		put_result(k, o);
		if (k->ver >= NK_VER(2, 2, 1)) {
			k->phase = 1;
			nk_call(k, &k->oc, "/api/storage/cdrom", NULL, REST_TIMEOUT_MS, mounted_done);
			return;
		}
		o = json_tokener_parse(k->result.data);
		json_object_object_add(o, "cdrom", json_object_new_boolean(false));
		put_result(k, o);
		op_ok(k);
		return;
	}
	if (!call_ok(k, "storage/cdrom"))
		return;
	o = json_tokener_parse(k->result.data);
	json_object_object_add(o, "cdrom", json_object_new_boolean(
		json_object_object_get_ex(k->oc.data, "cdrom", &v) && json_object_get_int(v) == 1));
	put_result(k, o);
	op_ok(k);
}

static void op_iso_mounted(struct nk *k)
{
	k->phase = 0;
	nk_call(k, &k->oc, "/api/storage/image/mounted", NULL, REST_TIMEOUT_MS, mounted_done);
}

static void mount_done(struct nk *k)
{
	json_object *o;

	if (k->oc.result == CURLE_OK && k->oc.code == -2 && strcmp(k->oc.msg, "mount image failed") == 0) {
		op_fail(k, SE_PROTOCOL, "missing ISO: the device could not mount %s (mount image failed); "
		        "iso-list shows the images it has", k->text.data);
		return;
	}
	if (!call_ok(k, "mount"))
		return;
	k->hid_quiet_ns = now_mono_ns() + HID_QUIET_MS * NK_MS;
	o = json_object_new_object();
	json_object_object_add(o, "image", json_object_new_string(k->text.data));
	json_object_object_add(o, "cdrom", json_object_new_boolean(!(k->op->req.flags & OPF_DISK)));
	put_result(k, o);
	op_ok(k);
}

static void op_iso_mount(struct nk *k)
{
	const char *name = k->op->data != NULL ? k->op->data : "";
	json_object *o;

	if (name[0] == '\0' || strstr(name, "..") != NULL || strchr(name, '\n') != NULL) {
		op_fail(k, SE_INVALID, "image name \"%.80s\": a file name from iso-list", name);
		return;
	}
	if (!(k->op->req.flags & OPF_DISK) && k->ver < NK_VER(2, 2, 1)) {
		op_fail(k, SE_UNSUPPORTED, "NanoKVM firmware %s mounts images as disks only (CD-ROM "
		        "since 2.2.1)", k->s->firmware);
		return;
	}
	/* Names may be given bare: images live under /data (§3). */
	buf_reset(&k->text);
	if (name[0] != '/')
		buf_puts(&k->text, "/data/");
	buf_puts(&k->text, name);
	o = json_object_new_object();
	json_object_object_add(o, "file", json_object_new_string(k->text.data));
	if (k->ver >= NK_VER(2, 2, 1))
		json_object_object_add(o, "cdrom", json_object_new_boolean(!(k->op->req.flags & OPF_DISK)));
	nk_call(k, &k->oc, "/api/storage/image/mount",
	        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	        REST_TIMEOUT_MS, mount_done);
	json_object_put(o);
}

static void op_iso_unmount(struct nk *k)
{
	/* An empty file unmounts (§3). */
	nk_call(k, &k->oc, "/api/storage/image/mount", "{\"file\":\"\"}", REST_TIMEOUT_MS, quiet_done);
}

/* ---- the table */

static const struct {
	enum dev_op_kind kind;
	nk_fn start;
} table[] = {
	{ OP_KEYS, op_keys }, { OP_TEXT, op_text }, { OP_MOUSE_MOVE, op_move },
	{ OP_MOUSE_CLICK, op_click }, { OP_MOUSE_SCROLL, op_scroll }, { OP_HID_RESET, op_hid_reset },
	{ OP_POWER, op_power }, { OP_POWER_STATE, op_power_state }, { OP_HDMI_RESET, op_hdmi_reset },
	{ OP_INFO, op_info }, { OP_ISO_LIST, op_iso_list }, { OP_ISO_MOUNT, op_iso_mount },
	{ OP_ISO_UNMOUNT, op_iso_unmount }, { OP_ISO_MOUNTED, op_iso_mounted },
};

void nk_op_start(struct session *s, struct dev_op *op)
{
	struct nk *k = s->drv_state;

	for (size_t i = 0; i < ARRAY_LEN(table); i++)
		if (table[i].kind == (enum dev_op_kind)op->req.op) {
			op_clear(k);
			k->op = op;
			table[i].start(k);
			return;
		}
	session_op_done(s, op, SE_UNSUPPORTED, "not an operation of this driver");
}
