/*
 * drv_nanokvm_ws.c - the NanoKVM /api/ws WebSocket (protocols/nanokvm.md §4):
 * opened with the login cookie and no Origin once the firmware is known,
 * a heartbeat [0x00] every 10 s on binary firmware (2.5.0+ closes a socket
 * silent for 90 s), reopened with backoff whenever it closes. HID reports
 * are built here for both protocols: binary (2.3.2+) and JSON arrays
 * (<= 2.3.1). The device's text frames report the HDMI capture status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drv_nanokvm.h"
#include "log.h"

#define HEARTBEAT_MS 10000u
#define CONNECT_MS 10000u
#define RETRY_FIRST_MS 500u
#define RETRY_MAX_MS 10000u

int nanokvm_version(const char *app)
{
	int a, b, c;
	char tail;

	if (app == NULL || sscanf(app, "%d.%d.%d%c", &a, &b, &c, &tail) != 3 || a < 0 || a > 99 ||
	    b < 0 || b > 99 || c < 0 || c > 99)
		return 0;
	return NK_VER(a, b, c);
}

uint16_t nanokvm_abs(int px, uint32_t size)
{
	double f;
	long v;

	if (size == 0)
		return 1;
	if (px < 0)
		px = 0;
	if ((uint32_t)px >= size)
		px = (int)size - 1;
	/* The pixel's centre: the device maps back with floor((v-1)*size/32767). */
	f = ((double)px + 0.5) / (double)size;
	v = (long)(f * 32767.0) + 1;
	return (uint16_t)(v < 1 ? 1 : v > 32767 ? 32767 : v);
}

size_t nanokvm_kbd_msg(int ver, uint8_t mods, uint8_t usage, uint8_t *out, size_t outsz, bool *binary)
{
	int n;

	if (ver >= NK_VER(2, 3, 2)) {
		uint8_t r[9] = { 0x01, mods, 0, usage, 0, 0, 0, 0, 0 };
		*binary = true;
		memcpy(out, r, sizeof r);
		return sizeof r;
	}
	*binary = false;
	if (usage == 0 && mods != 0)
		return 0;	/* JSON firmware cannot hold a modifier alone */
	n = snprintf((char *)out, outsz, "[1,%u,%u,%u,%u,%u]", usage,
	             mods & (KEYMOD_LCTRL | KEYMOD_RCTRL), mods & (KEYMOD_LSHIFT | KEYMOD_RSHIFT),
	             mods & (KEYMOD_LALT | KEYMOD_RALT), mods & (KEYMOD_LMETA | KEYMOD_RMETA));
	return n > 0 && (size_t)n < outsz ? (size_t)n : 0;
}

size_t nanokvm_mouse_msg(int ver, enum nanokvm_mouse ev, uint8_t buttons, uint16_t x, uint16_t y,
                         int wheel, uint8_t *out, size_t outsz, bool *binary)
{
	int n = 0;

	if (ver >= NK_VER(2, 3, 2)) {
		uint8_t r[7] = { 0x02, ev == NKM_WHEEL ? 0 : buttons, (uint8_t)x, (uint8_t)(x >> 8),
		                 (uint8_t)y, (uint8_t)(y >> 8),
		                 (uint8_t)(int8_t)(ev == NKM_WHEEL ? (wheel > 0 ? 1 : -1) : 0) };
		*binary = true;
		memcpy(out, r, sizeof r);
		return sizeof r;
	}
	*binary = false;
	switch (ev) {
	case NKM_MOVE:
		n = snprintf((char *)out, outsz, "[2,2,0,%u,%u]", x, y);
		break;
	case NKM_BUTTONS:
		/* Down takes one button (1 left, 2 right, 4 middle); Up releases all. */
		n = buttons != 0 ? snprintf((char *)out, outsz, "[2,1,%u,0,0]", buttons)
		                 : snprintf((char *)out, outsz, "[2,0,0,0,0]");
		break;
	case NKM_WHEEL: {
		/* Only y's sign counts, and 2.3.1 flipped it (§4.2): y<0 scrolls down there. */
		int down = wheel < 0, y_sign = ver >= NK_VER(2, 3, 1) ? (down ? -1 : 1) : (down ? 1 : -1);
		n = snprintf((char *)out, outsz, "[2,4,0,0,%d]", y_sign);
		break;
	}
	}
	return n > 0 && (size_t)n < outsz ? (size_t)n : 0;
}

/* ---- the connection */

static void on_open(void *arg);
static void on_message(void *arg, bool binary, const uint8_t *p, size_t n);
static void on_close(void *arg, int code, const char *why);

static const struct ws_handler handler = { on_open, on_message, on_close };

static void ws_failed(struct nk *k, const char *why)
{
	uint32_t ms = RETRY_FIRST_MS;

	for (uint32_t i = 0; i < k->ws_failures && ms < RETRY_MAX_MS; i++)
		ms *= 2;
	if (ms > RETRY_MAX_MS)
		ms = RETRY_MAX_MS;
	k->ws_failures++;
	k->ws = NULL;
	k->ws_open = false;
	k->ws_connect_by_ns = 0;
	k->ws_retry_ns = now_mono_ns() + ms * NK_MS;
	snprintf(k->ws_why, sizeof k->ws_why, "%s", why);
	log_warnx("device %llu: /api/ws: %s; reconnecting in %u ms", (unsigned long long)k->s->cfg.id,
	          why, ms);
	nk_op_ws_closed(k, why);
	nk_arm(k);
}

void nk_ws_start(struct nk *k)
{
	struct ws_params p = {
		.addr = k->addr, .port = k->port, .tls = k->tls, .insecure = k->insecure, .host = k->host,
		.host_name = k->host_name, .path = "/api/ws",
	};
	char why[128], *cookie;

	nk_ws_stop(k);
	k->ws_retry_ns = 0;
	cookie = xasprintf("nano-kvm-token=%s", k->token);
	p.cookie = cookie;
	k->ws = ws_connect(&p, &handler, k, why, sizeof why);
	explicit_bzero(cookie, strlen(cookie));
	free(cookie);
	if (k->ws == NULL) {
		ws_failed(k, why);
		return;
	}
	k->ws_connect_by_ns = now_mono_ns() + CONNECT_MS * NK_MS;
	nk_arm(k);
}

void nk_ws_stop(struct nk *k)
{
	ws_free(k->ws);
	k->ws = NULL;
	k->ws_open = false;
	k->ws_connect_by_ns = k->ws_beat_ns = k->ws_retry_ns = 0;
}

uint64_t nk_ws_due(const struct nk *k)
{
	if (k->ws == NULL)
		return k->ws_retry_ns;
	return k->ws_open ? k->ws_beat_ns : k->ws_connect_by_ns;
}

static int send_beat(struct nk *k)
{
	static const uint8_t beat[1] = { 0x00 };

	k->ws_beat_ns = now_mono_ns() + HEARTBEAT_MS * NK_MS;
	/* JSON firmware has no heartbeat and no deadline (§4.2). */
	if (k->ver < NK_VER(2, 3, 2))
		return 0;
	return ws_send(k->ws, true, beat, sizeof beat);
}

void nk_ws_tick(struct nk *k, uint64_t now)
{
	if (k->ws == NULL) {
		if (k->ws_retry_ns != 0 && now >= k->ws_retry_ns)
			nk_ws_start(k);
	} else if (!k->ws_open) {
		if (k->ws_connect_by_ns != 0 && now >= k->ws_connect_by_ns) {
			nk_ws_stop(k);
			ws_failed(k, "no upgrade within 10 s");
		}
	} else if (now >= k->ws_beat_ns) {
		(void)send_beat(k);	/* a failure ends in on_close */
	}
}

int nk_ws_send(struct nk *k, bool binary, const uint8_t *p, size_t n)
{
	if (!k->ws_open)
		return -1;
	return ws_send(k->ws, binary, p, n);
}

static void on_open(void *arg)
{
	struct nk *k = arg;

	log_info("device %llu: /api/ws open (%s reports)", (unsigned long long)k->s->cfg.id,
	         k->ver >= NK_VER(2, 3, 2) ? "binary" : "JSON");
	k->ws_open = true;
	k->ws_failures = 0;
	k->ws_connect_by_ns = 0;
	k->ws_why[0] = '\0';
	(void)send_beat(k);
	nk_arm(k);
	nk_op_ws_open(k);
}

/* {"type":"capture-status","data":"{\"ok\":...}"}: data is JSON in a string (§4.1). */
static void on_message(void *arg, bool binary, const uint8_t *p, size_t n)
{
	struct nk *k = arg;
	json_object *o, *t, *d, *in = NULL, *ok;
	struct json_tokener *tok;

	if (binary)
		return;
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, (const char *)p, (int)n);
	json_tokener_free(tok);
	if (json_object_object_get_ex(o, "type", &t) && json_object_object_get_ex(o, "data", &d) &&
	    json_object_is_type(d, json_type_string) &&
	    strcmp(json_object_get_string(t), "capture-status") == 0 &&
	    (in = json_tokener_parse(json_object_get_string(d))) != NULL &&
	    json_object_object_get_ex(in, "ok", &ok) && json_object_is_type(ok, json_type_boolean)) {
		k->hdmi_signal = json_object_get_boolean(ok);
		nk_hdmi_seen(k);
	}
	json_object_put(in);
	json_object_put(o);
}

static void on_close(void *arg, int code, const char *why)
{
	struct nk *k = arg;
	char msg[160];

	k->ws = NULL;
	if (code == 401 || code == 4401)
		snprintf(msg, sizeof msg, "%s: the token was refused", why);
	else
		snprintf(msg, sizeof msg, "%s", why);
	ws_failed(k, msg);
}
