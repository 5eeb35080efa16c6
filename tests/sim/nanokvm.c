/*
 * nanokvm.c - sim-nanokvm: a NanoKVM of a chosen firmware version on a
 * loopback port (protocols/nanokvm.md section 10). One libwebsockets event
 * loop serves the REST API (nanokvm_api.c), /api/ws (section 4), the MJPEG
 * stream (section 6.1) and the simulator-only /sim/ hook.
 *
 *   sim-nanokvm --port N --firmware 2.3.1|2.4.x|2.5.0|head|X.Y.Z --password P
 *               [--width 1920 --height 1080] [--state-dir D] [--no-hdmi]
 *               [--token-ttl S] [--time-scale F] [--long-press-ms MS]
 *               [--ws-deadline S] [--fps N] [--usb-offline-ms MS] [--frame-detect]
 *               [--tls-cert PEM --tls-key PEM [--redirect-port N]] [--user NAME:PASSWORD]
 *
 * With a certificate it serves HTTPS (and wss:// for /api/ws) on --port, as a
 * NanoKVM with `proto: https` does on 443; --redirect-port is then its plain
 * HTTP port, which only redirects (307) to the same path over HTTPS (§1).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "log.h"
#include "sim.h"

struct sim sim;

enum conn_kind { C_HTTP, C_MJPEG, C_WS };

/* Per connection; lws allocates it zeroed and frees it. */
struct pss {
	enum conn_kind kind;
	struct lws *wsi;
	struct pss *next;	/* in the list of streams and sockets */
	unsigned epoch;
	/* HTTP request */
	char method[8], path[256], token[1024], origin[256], host[256];
	struct buf body;
	struct api_resp resp;
	bool resp_ready;
	/* MJPEG */
	bool headers_sent, frame_due;
	/* WebSocket */
	struct buf out[4];	/* queued text frames */
	int nout;
	bool revoked;
};

static struct pss *conns;	/* MJPEG viewers and WebSockets */
static volatile sig_atomic_t stopping;
static lws_sorted_usec_list_t capture_sul, paste_sul;
static bool paste_scheduled, last_signal;
static int ws_deadline_s = 90;
static long long usb_offline_ms = 1000;
static char leds_updated[40];

/* ---- the model */

uint64_t sim_delay_us(double ms)
{
	double us = ms * 1000.0 * sim.time_scale;

	return us < 0 ? 0 : (uint64_t)us;
}

bool sim_signal(void)
{
	return sim.power && sim.hdmi_cable && sim.hdmi_enabled && now_mono_ns() >= sim.hdmi_off_until;
}

void sim_count(const char *endpoint)
{
	struct json_object *v;
	long long n = 0;

	if (json_object_object_get_ex(sim.counters, endpoint, &v))
		n = json_object_get_int64(v);
	json_object_object_add(sim.counters, endpoint, json_object_new_int64(n + 1));
}

void sim_status_line(void)
{
	char line[800];

	snprintf(line, sizeof line, " POWER %s | LED %s | HDD OFF | ISO %.500s%s | HDMI %s | %dx%d | NanoKVM %s",
	         sim.power ? "ON" : "OFF", sim.power ? "ON" : "OFF",
	         sim.iso[0] ? sim.iso : "none", sim.iso[0] && sim.cdrom ? " (CD-ROM)" : "",
	         sim_signal() ? "OK" : "NO SIGNAL", sim.width, sim.height, sim.prof.app);
	screen_status(sim.screen, line);
}

static void host_boot(void)
{
	char banner[128];

	sim.boots++;
	sim.kbd = (struct hid_kbd){ .layout = sim.kbd.layout };
	screen_clear(sim.screen);
	snprintf(banner, sizeof banner, "Simulated host, boot %d\n", sim.boots);
	screen_puts(sim.screen, banner);
	sim_status_line();
}

void sim_power_press(long long ms)
{
	/* A short press starts the host or asks it to shut down (done at once
	 * here); a long press (>= --long-press-ms) forces a running host off,
	 * or starts a host that is off. */
	sim.power = !sim.power;
	if (sim.power)
		host_boot();
	sim.power_presses++;
	sim_status_line();
}

void sim_reset_press(void)
{
	if (sim.power)
		host_boot();
}

struct json_object *sim_leds_json(void)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "numLock", json_object_new_boolean(sim.kbd.num));
	json_object_object_add(d, "capsLock", json_object_new_boolean(sim.kbd.caps));
	json_object_object_add(d, "scrollLock", json_object_new_boolean(sim.kbd.scroll));
	json_object_object_add(d, "known", json_object_new_boolean(leds_updated[0] != '\0'));
	json_object_object_add(d, "updatedAt", json_object_new_string(leds_updated));
	return d;
}

static void ws_queue(struct pss *p, const char *type, struct json_object *data)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "data", json_object_new_string(
		json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)));
	if (p->nout < (int)ARRAY_LEN(p->out)) {
		buf_reset(&p->out[p->nout]);
		buf_puts(&p->out[p->nout], json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		p->nout++;
	}
	json_object_put(o);
	json_object_put(data);
	lws_callback_on_writable(p->wsi);
}

static void rfc3339(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	char s[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%.19s.%09ldZ", s, ts.tv_nsec % 1000000000L);
}

static struct json_object *capture_status(void)
{
	struct json_object *d = json_object_new_object();
	bool ok = sim_signal();
	char at[40];

	rfc3339(at, sizeof at);
	json_object_object_add(d, "ok", json_object_new_boolean(ok));
	json_object_object_add(d, "result", json_object_new_int(ok ? 0 : -1));
	json_object_object_add(d, "message", json_object_new_string(ok ? "" : "No image captured"));
	json_object_object_add(d, "mode", json_object_new_string(sim.screen_type));
	json_object_object_add(d, "severity", json_object_new_string(ok ? "info" : "error"));
	json_object_object_add(d, "updatedAt", json_object_new_string(at));
	return d;
}

static void ws_broadcast_status(bool leds)
{
	for (struct pss *p = conns; p; p = p->next)
		if (p->kind == C_WS) {
			if (leds)
				ws_queue(p, "hid-led-status", sim_leds_json());
			else
				ws_queue(p, "capture-status", capture_status());
		}
}

static void record_report(const uint8_t *r, size_t len)
{
	if (sim.last_report_n == (int)ARRAY_LEN(sim.last_reports)) {
		memmove(sim.last_reports, sim.last_reports + 1, sizeof sim.last_reports - sizeof sim.last_reports[0]);
		sim.last_report_n--;
	}
	sim.last_reports[sim.last_report_n][0] = (uint8_t)len;
	memcpy(sim.last_reports[sim.last_report_n] + 1, r, len);
	sim.last_report_n++;
	sim.hid_reports++;
}

static void mouse_buttons(int b)
{
	if ((b & 1) && !(sim.buttons & 1))
		sim.clicks++;
	sim.buttons = b;
}

bool sim_hid_write(int type, const uint8_t *r, size_t len)
{
	int px, py;

	if (now_mono_ns() < sim.hid_off_until || !sim.power) {
		/* The gadget is re-enumerating, or the host is off: the write fails. */
		sim.hid_dropped++;
		return false;
	}
	record_report(r, len);
	if (type == 1 && len == 8) {
		int what = hid_kbd_report(&sim.kbd, r, sim.screen);
		if (what & HID_HOST_LEDS) {
			rfc3339(leds_updated, sizeof leds_updated);
			if (sim.prof.ver >= VER(2, 5, 0))
				ws_broadcast_status(true);
		}
		if (what & HID_HOST_CTRL_ALT_DEL)
			host_boot();
	} else if (type == 2 && len == 4) {
		mouse_buttons(r[0]);
		screen_pointer_pos(sim.screen, &px, &py);
		screen_pointer(sim.screen, px + (int8_t)r[1], py + (int8_t)r[2]);
		sim.wheel += (int8_t)r[3];
	} else if (type == 2 && len == 6) {
		mouse_buttons(r[0]);
		screen_pointer(sim.screen, hid_abs_to_px((unsigned)(r[1] | r[2] << 8), sim.width),
		               hid_abs_to_px((unsigned)(r[3] | r[4] << 8), sim.height));
		sim.wheel += (int8_t)r[5];
	}
	return true;
}

void sim_usb_reenumerate(void)
{
	/* Unbind and rebind the UDC: keyboard and mouse vanish for about a second. */
	sim.usb_enumerations++;
	sim.hid_off_until = now_mono_ns() + (uint64_t)usb_offline_ms * 1000000;
	memset(sim.kbd.held, 0, sizeof sim.kbd.held);
	sim_status_line();
}

void sim_restart_tokens(void)
{
	random_bytes(sim.secret, sizeof sim.secret);
}

void sim_revoke_connections(void)
{
	for (struct pss *p = conns; p; p = p->next) {
		p->revoked = true;
		lws_callback_on_writable(p->wsi);
	}
}

void sim_restart(void)
{
	log_info("simulated device restart: tokens invalidated, connections dropped");
	sim_restart_tokens();
	sim.epoch++;
	sim.usb_enumerations++;
	sim.hid_off_until = now_mono_ns() + sim_delay_us(1000) * 1000;
	for (struct pss *p = conns; p; p = p->next)
		lws_callback_on_writable(p->wsi);
}

/* ---- timers */

static void capture_tick(lws_sorted_usec_list_t *sul)
{
	const uint8_t *jpeg;
	size_t len;
	uint64_t v, now = now_mono_ns();
	bool sig = sim_signal();

	lws_sul_schedule(sim.ctx, 0, &capture_sul, capture_tick, 1000000 / (sim.fps > 0 ? sim.fps : 30));
	sim_status_line();
	if (sig != last_signal) {
		last_signal = sig;
		ws_broadcast_status(false);
	}
	if (sim.mjpeg_viewers == 0 || !sig || now < sim.warm_until)
		return;		/* capture result < 0: the tick is skipped */
	v = screen_jpeg(sim.screen, sim.quality, &jpeg, &len);
	if (v == 0 || len == 0)
		return;
	if (sim.frame_detect && now >= sim.detect_stop_until) {
		if (v == sim.last_frame_version) {
			if (++sim.unchanged_frames >= 60)
				return;	/* 5: "image not changed" */
		} else {
			sim.unchanged_frames = 0;
		}
	}
	sim.last_frame_version = v;
	sim.frames_captured++;
	for (struct pss *p = conns; p; p = p->next)
		if (p->kind == C_MJPEG && !lws_send_pipe_choked(p->wsi)) {
			p->frame_due = true;
			lws_callback_on_writable(p->wsi);
		}
}

static void paste_tick(lws_sorted_usec_list_t *sul)
{
	uint64_t next = api_paste_tick();

	paste_scheduled = sim.paste != NULL;
	if (paste_scheduled)
		lws_sul_schedule(sim.ctx, 0, &paste_sul, paste_tick, (lws_usec_t)next);
}

void sim_paste_done(void *wsi, int result)
{
	struct pss *p = lws_wsi_user(wsi);

	if (p == NULL)
		return;
	if (result != 0) {
		buf_reset(&p->resp.body);
		buf_puts(&p->resp.body, "{\"code\":-3,\"msg\":\"HID paste failed\",\"data\":null}");
	}
	p->resp_ready = true;
	lws_callback_on_writable(wsi);
}

/* ---- HTTP */

static void conn_add(struct pss *p)
{
	p->next = conns;
	conns = p;
}

static void conn_del(struct pss *p)
{
	for (struct pss **pp = &conns; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

static void read_headers(struct lws *wsi, struct pss *p)
{
	char cookie[2048];
	const char *t;

	p->token[0] = p->origin[0] = p->host[0] = '\0';
	if (lws_hdr_copy(wsi, cookie, sizeof cookie, WSI_TOKEN_HTTP_COOKIE) > 0) {
		for (t = cookie; (t = strstr(t, "nano-kvm-token=")) != NULL; t++)
			if (t == cookie || t[-1] == ' ' || t[-1] == ';') {
				t += strlen("nano-kvm-token=");
				snprintf(p->token, sizeof p->token, "%.*s", (int)strcspn(t, "; "), t);
				break;
			}
	}
	if (lws_hdr_copy(wsi, p->origin, sizeof p->origin, WSI_TOKEN_ORIGIN) < 0)
		p->origin[0] = '\0';
	if (lws_hdr_copy(wsi, p->host, sizeof p->host, WSI_TOKEN_HOST) < 0)
		p->host[0] = '\0';
}

static const char *method_of(struct lws *wsi)
{
	static const struct { enum lws_token_indexes tok; const char *name; } m[] = {
		{ WSI_TOKEN_GET_URI, "GET" }, { WSI_TOKEN_POST_URI, "POST" },
		{ WSI_TOKEN_PUT_URI, "PUT" }, { WSI_TOKEN_DELETE_URI, "DELETE" },
		{ WSI_TOKEN_PATCH_URI, "PATCH" }, { WSI_TOKEN_OPTIONS_URI, "OPTIONS" },
	};

	for (size_t i = 0; i < ARRAY_LEN(m); i++)
		if (lws_hdr_total_length(wsi, m[i].tok) > 0)
			return m[i].name;
	return "OTHER";
}

/* Writes headers and body of a complete response. Returns -1 to close. */
static int write_response(struct lws *wsi, const struct api_resp *r)
{
	size_t n = r->body.len, cap = LWS_PRE + 2048 + sizeof r->set_cookie;
	uint8_t *b = xmalloc(cap), *start = b + LWS_PRE, *p = start, *end = b + cap - 1;
	int rc = -1;

	if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->ctype, n, &p, end))
		goto done;
	if (r->set_cookie[0] &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SET_COOKIE, (const uint8_t *)r->set_cookie,
	                                 (int)strlen(r->set_cookie), &p, end))
		goto done;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		goto done;
	if (n > 0) {
		uint8_t *body = xmalloc(LWS_PRE + n);
		memcpy(body + LWS_PRE, r->body.data, n);
		rc = lws_write(wsi, body + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) < (int)n ? -1 : 0;
		free(body);
	} else {
		rc = 0;
	}
done:
	free(b);
	return rc;
}

static void dispatch(struct lws *wsi, struct pss *p)
{
	struct api_req rq = {
		.method = p->method, .path = p->path, .body = p->body.data ? p->body.data : "",
		.body_len = p->body.len, .cookie_token = p->token[0] ? p->token : NULL,
		.origin = p->origin, .host = p->host, .wsi = wsi,
	};

	api_handle(&rq, &p->resp);
	if (p->resp.paste_wait) {
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		if (!paste_scheduled) {
			paste_scheduled = true;
			lws_sul_schedule(sim.ctx, 0, &paste_sul, paste_tick, 1);
		}
		return;
	}
	if (p->resp.delay_ms > 0 && sim_delay_us(p->resp.delay_ms) > 0) {
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		lws_set_timer_usecs(wsi, (lws_usec_t)sim_delay_us(p->resp.delay_ms));
		return;
	}
	if (p->resp.before)
		p->resp.before(&p->resp);
	p->resp_ready = true;
	lws_callback_on_writable(wsi);
}

static bool auth_ok(struct pss *p)
{
	struct auth_claims c;

	return api_token_ok(p->token[0] ? p->token : NULL, &c);
}

static int refuse(struct lws *wsi, int status, const char *ctype, const char *body)
{
	struct api_resp r = { .status = status, .ctype = ctype };

	buf_puts(&r.body, body);
	(void)write_response(wsi, &r);
	buf_free(&r.body);
	return 1;
}

static int mjpeg_write(struct lws *wsi, struct pss *p)
{
	const uint8_t *jpeg;
	size_t len, cap;
	uint8_t *b, *start, *q, *end;
	struct buf part = BUF_INIT;
	char chunk[32];
	int rc = 0;

	if (!p->frame_due)
		return 0;
	p->frame_due = false;
	if (screen_jpeg(sim.screen, sim.quality, &jpeg, &len) == 0)
		return 0;
	buf_puts(&part, "--frame\r\nContent-Type: image/jpeg\r\n");
	if (sim.prof.ver >= VER(2, 3, 0))
		buf_printf(&part, "Content-Length: %zu\r\n", len);
	buf_puts(&part, "\r\n");
	buf_append(&part, jpeg, len);
	buf_puts(&part, "\r\n");
	cap = LWS_PRE + 1024 + part.len + 32;
	b = xmalloc(cap);
	start = q = b + LWS_PRE;
	end = b + cap - 1;
	if (!p->headers_sent) {
		/* Headers go out with the first part, never before. */
		static const char ct[] = "multipart/x-mixed-replace; boundary=frame";
		if (lws_add_http_header_status(wsi, 200, &q, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const uint8_t *)ct, sizeof ct - 1, &q, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (const uint8_t *)"no-cache", 8, &q, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const uint8_t *)"keep-alive", 10, &q, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_PRAGMA, (const uint8_t *)"no-cache", 8, &q, end) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, (const uint8_t *)"chunked", 7, &q, end)) {
			rc = -1;
			goto done;
		}
		if (sim.prof.head) {
			char date[64];
			time_t t = time(NULL);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
			if (lws_add_http_header_by_name(wsi, (const uint8_t *)"X-Server-Date:", (const uint8_t *)date,
			                                (int)strlen(date), &q, end)) {
				rc = -1;
				goto done;
			}
		}
		if (lws_finalize_http_header(wsi, &q, end)) {
			rc = -1;
			goto done;
		}
		p->headers_sent = true;
	}
	snprintf(chunk, sizeof chunk, "%zx\r\n", part.len);
	memcpy(q, chunk, strlen(chunk));
	q += strlen(chunk);
	memcpy(q, part.data, part.len);
	q += part.len;
	memcpy(q, "\r\n", 2);
	q += 2;
	if (lws_write(wsi, start, (size_t)(q - start), LWS_WRITE_HTTP) < (int)(q - start))
		rc = -1;
	else
		sim.frames_sent++;
done:
	free(b);
	buf_free(&part);
	return rc;
}

static int on_http(struct lws *wsi, struct pss *p, const char *uri)
{
	char cl[32];

	memset(p, 0, sizeof *p);
	p->wsi = wsi;
	p->epoch = sim.epoch;
	snprintf(p->method, sizeof p->method, "%s", method_of(wsi));
	snprintf(p->path, sizeof p->path, "%s", uri);
	read_headers(wsi, p);
	if (strcmp(p->path, "/api/stream/mjpeg") == 0 && strcmp(p->method, "GET") == 0) {
		sim_count("/api/stream/mjpeg");
		if (!auth_ok(p))
			return refuse(wsi, 401, "application/json; charset=utf-8", "\"unauthorized\"") ? 0 : 0;
		p->kind = C_MJPEG;
		conn_add(p);
		if (sim.mjpeg_viewers++ == 0 && sim.prof.ver >= VER(2, 5, 0))
			sim.warm_until = now_mono_ns() + sim_delay_us(1000) * 1000;
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		return 0;
	}
	p->kind = C_HTTP;
	if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 && atoll(cl) > 0)
		return 0;	/* the body follows */
	dispatch(wsi, p);
	return 0;
}

static int ws_receive(struct lws *wsi, struct pss *p, const uint8_t *in, size_t len)
{
	const uint8_t *m;
	size_t n;

	buf_append(&p->body, in, len);
	if (!lws_is_final_fragment(wsi))
		return 0;
	m = (const uint8_t *)p->body.data;
	n = p->body.len;
	if (ws_deadline_s > 0 && sim.prof.ver >= VER(2, 5, 0))
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, ws_deadline_s);
	if (sim.prof.ver >= VER(2, 3, 2)) {
		/* [type][report]: wrong lengths and unknown types dropped silently. */
		if (n == 1 && m[0] == 0)
			sim.ws_heartbeats++;
		else if (n == 9 && m[0] == 1)
			(void)sim_hid_write(1, m + 1, 8);
		else if ((n == 5 || n == 7) && m[0] == 2)
			(void)sim_hid_write(2, m + 1, n - 1);
	} else {
		struct json_object *o = json_tokener_parse(p->body.data);
		long long v[16];
		size_t k = 0;
		bool ints = o && json_object_is_type(o, json_type_array);
		uint8_t rep[8];

		for (size_t i = 0; ints && i < json_object_array_length(o) && k < ARRAY_LEN(v); i++) {
			struct json_object *e = json_object_array_get_idx(o, i);
			if (!json_object_is_type(e, json_type_int))
				ints = false;
			else
				v[k++] = json_object_get_int64(e);
		}
		json_object_put(o);
		if (ints) {
			switch (hid_legacy_decode(v, k, sim.prof.ver >= VER(2, 3, 1), rep)) {
			case HID_LEGACY_KBD: (void)sim_hid_write(1, rep, 8); break;
			case HID_LEGACY_REL: (void)sim_hid_write(2, rep, 4); break;
			case HID_LEGACY_ABS: (void)sim_hid_write(2, rep, 6); break;
			case HID_LEGACY_SKIP: break;
			case HID_LEGACY_CRASH:
				/* An index out of range in a goroutine: the server dies. */
				buf_reset(&p->body);
				sim_restart();
				return -1;
			}
		}
	}
	buf_reset(&p->body);
	/* /sim/set {"ws_drop_after":N}: the socket breaks after N more input messages. */
	if (sim.ws_drop_after > 0 && !(n == 1 && m[0] == 0) && --sim.ws_drop_after == 0) {
		log_info("dropping the WebSocket as asked (/sim/set ws_drop_after)");
		return -1;
	}
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct pss *p = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, p, in);

	case LWS_CALLBACK_HTTP_BODY:
		buf_append(&p->body, in, len);
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		dispatch(wsi, p);
		return 0;

	case LWS_CALLBACK_TIMER:
		if (p->resp.before)
			p->resp.before(&p->resp);
		p->resp_ready = true;
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (p->kind == C_MJPEG) {
			if (p->epoch != sim.epoch || p->revoked)
				return -1;
			return mjpeg_write(wsi, p);
		}
		if (!p->resp_ready)
			return 0;
		p->resp_ready = false;
		if (write_response(wsi, &p->resp) < 0)
			return -1;
		if (p->resp.after)
			p->resp.after();
		buf_free(&p->resp.body);
		buf_free(&p->body);
		memset(&p->resp, 0, sizeof p->resp);
		return lws_http_transaction_completed(wsi) ? -1 : 0;

	case LWS_CALLBACK_CLOSED_HTTP:
		if (p == NULL)
			return 0;
		api_paste_gone(wsi);
		if (p->kind == C_MJPEG) {
			conn_del(p);
			sim.mjpeg_viewers--;
		}
		buf_free(&p->body);
		buf_free(&p->resp.body);
		p->kind = C_HTTP;
		return 0;

	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
		/* No per-session data yet: the headers go to a scratch one. */
		static struct pss hs;
		char uri[256];
		p = &hs;
		memset(p, 0, sizeof *p);
		p->wsi = wsi;
		read_headers(wsi, p);
		if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/api/ws") != 0) {
			sim_count("other");
			return refuse(wsi, 404, "text/plain", "404 page not found");
		}
		sim_count("/api/ws");
		if (!auth_ok(p))
			return refuse(wsi, 401, "application/json; charset=utf-8", "\"unauthorized\"");
		if (sim.prof.head && p->origin[0]) {
			/* The Origin, when sent, must name this host. */
			const char *o = strstr(p->origin, "://");
			if (o == NULL || strcmp(o + 3, p->host) != 0)
				return refuse(wsi, 403, "text/plain; charset=utf-8", "Forbidden\n");
		}
		return 0;
	}

	case LWS_CALLBACK_ESTABLISHED:
		p->wsi = wsi;
		p->kind = C_WS;
		p->epoch = sim.epoch;
		conn_add(p);
		sim.ws_clients++;
		if (ws_deadline_s > 0 && sim.prof.ver >= VER(2, 5, 0))
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, ws_deadline_s);
		ws_queue(p, "capture-status", capture_status());
		if (sim.prof.ver >= VER(2, 5, 0))
			ws_queue(p, "hid-led-status", sim_leds_json());
		return 0;

	case LWS_CALLBACK_RECEIVE:
		return ws_receive(wsi, p, in, len);

	case LWS_CALLBACK_SERVER_WRITEABLE: {
		uint8_t *b;
		int n;
		if (p->revoked) {
			static const char why[] = "session expired or revoked";
			lws_close_reason(wsi, (enum lws_close_status)4401, (unsigned char *)why, sizeof why - 1);
			return -1;
		}
		if (p->epoch != sim.epoch)
			return -1;
		if (p->nout == 0)
			return 0;
		b = xmalloc(LWS_PRE + p->out[0].len);
		memcpy(b + LWS_PRE, p->out[0].data, p->out[0].len);
		n = lws_write(wsi, b + LWS_PRE, p->out[0].len, LWS_WRITE_TEXT);
		free(b);
		if (n < (int)p->out[0].len)
			return -1;
		buf_free(&p->out[0]);
		memmove(&p->out[0], &p->out[1], sizeof p->out[0] * ARRAY_LEN(p->out) - sizeof p->out[0]);
		memset(&p->out[ARRAY_LEN(p->out) - 1], 0, sizeof p->out[0]);
		if (--p->nout > 0)
			lws_callback_on_writable(wsi);
		return 0;
	}

	case LWS_CALLBACK_CLOSED: {
		static const uint8_t zero[8];
		/* The server releases keys and buttons when a socket goes. */
		conn_del(p);
		sim.ws_clients--;
		(void)sim_hid_write(1, zero, 8);
		(void)sim_hid_write(2, zero, 4);
		for (size_t i = 0; i < ARRAY_LEN(p->out); i++)
			buf_free(&p->out[i]);
		buf_free(&p->body);
		return 0;
	}

	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "nanokvm", callback, sizeof(struct pss), 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static int tls_port;

/* The plain port of a device serving HTTPS: every request goes to https://host:port/path. */
static int redirect_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
	uint8_t buf[LWS_PRE + 1024], *p = buf + LWS_PRE, *end = buf + sizeof buf - 1;
	char host[256] = "", *loc;
	int n;

	if (reason != LWS_CALLBACK_HTTP)
		return 0;
	sim_count("redirect");
	if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) < 0)
		host[0] = '\0';
	host[strcspn(host, ":")] = '\0';
	loc = xasprintf("https://%s:%d%s", host[0] ? host : "127.0.0.1", tls_port, (const char *)in);
	n = lws_http_redirect(wsi, 307, (const uint8_t *)loc, (int)strlen(loc), &p, end);
	free(loc);
	if (n < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static const struct lws_protocols redirect_protocols[] = {
	{ "redirect", redirect_callback, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- options */

static int set_profile(const char *name)
{
	static const struct { const char *name, *app; } named[] = {
		{ "2.3.1-legacy", "2.3.1" }, { "2.4.x", "2.4.3" }, { "head", "2.5.1" },
	};
	const char *app = name;
	int a, b, c;

	for (size_t i = 0; i < ARRAY_LEN(named); i++)
		if (strcmp(name, named[i].name) == 0)
			app = named[i].app;
	if (sscanf(app, "%d.%d.%d", &a, &b, &c) != 3 || a != 2 || b < 0 || b > 99 || c < 0 || c > 99)
		return -1;
	snprintf(sim.prof.name, sizeof sim.prof.name, "%s", name);
	snprintf(sim.prof.app, sizeof sim.prof.app, "%d.%d.%d", a, b, c);
	sim.prof.ver = VER(a, b, c);
	sim.prof.head = sim.prof.ver > VER(2, 5, 0);
	return sim.prof.ver >= VER(2, 2, 0) ? 0 : -1;
}

static void on_signal(int sig)
{
	stopping = 1;
	if (sim.ctx)
		lws_cancel_service(sim.ctx);
}

static void usage(void)
{
	fprintf(stderr, "usage: sim-nanokvm --port N --firmware 2.3.1-legacy|2.4.x|2.5.0|head|2.X.Y\n"
	        "       [--password P] [--width W --height H] [--state-dir D] [--no-hdmi]\n"
	        "       [--token-ttl S] [--time-scale F] [--long-press-ms MS] [--ws-deadline S] [--fps N]\n"
	        "       [--usb-offline-ms MS] [--frame-detect]\n"
	        "       [--tls-cert PEM --tls-key PEM [--redirect-port N]] [--user NAME:PASSWORD]\n"
	        "       [--host-layout us|de|fr]\n");
	exit(2);
}

static long long num_opt(const char *s, long long min, long long max, const char *what)
{
	long long v;
	const char *err;

	if (parse_ll(s, min, max, &v, &err) < 0) {
		fprintf(stderr, "sim-nanokvm: --%s %s: %s\n", what, s, err);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "firmware", required_argument, NULL, 'f' },
		{ "password", required_argument, NULL, 'P' }, { "width", required_argument, NULL, 'W' },
		{ "height", required_argument, NULL, 'H' }, { "state-dir", required_argument, NULL, 'd' },
		{ "no-hdmi", no_argument, NULL, 'n' }, { "token-ttl", required_argument, NULL, 't' },
		{ "time-scale", required_argument, NULL, 's' }, { "long-press-ms", required_argument, NULL, 'l' },
		{ "ws-deadline", required_argument, NULL, 'w' }, { "fps", required_argument, NULL, 'r' },
		{ "usb-offline-ms", required_argument, NULL, 'u' },
		{ "frame-detect", no_argument, NULL, 'D' },
		{ "tls-cert", required_argument, NULL, 'C' }, { "tls-key", required_argument, NULL, 'K' },
		{ "redirect-port", required_argument, NULL, 'R' },
		{ "user", required_argument, NULL, 'U' },
		{ "host-layout", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	struct lws_context_creation_info info;
	const char *cert = NULL, *key = NULL;
	int port = -1, redirect_port = -1, c;
	char *end;

	log_init("sim-nanokvm");
	lws_set_log_level(getenv("SIM_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO : LLL_ERR, NULL);
	sim.width = 1920;
	sim.height = 1080;
	sim.token_ttl = 2678400;
	sim.time_scale = 1.0;
	sim.long_press_ms = 4000;
	sim.quality = 80;
	sim.fps = 30;
	sim.password = "admin";
	sim.hdmi_cable = sim.hdmi_enabled = sim.power = true;
	snprintf(sim.hid_mode, sizeof sim.hid_mode, "normal");
	snprintf(sim.screen_type, sizeof sim.screen_type, "mjpeg");
	if (set_profile("2.5.0") < 0)
		abort();
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': port = (int)num_opt(optarg, 1, 65535, "port"); break;
		case 'f':
			if (set_profile(optarg) < 0) {
				fprintf(stderr, "sim-nanokvm: unknown firmware %s\n", optarg);
				return 2;
			}
			break;
		case 'P': sim.password = optarg; break;
		case 'W': sim.width = (int)num_opt(optarg, 64, 7680, "width"); break;
		case 'H': sim.height = (int)num_opt(optarg, 48, 4320, "height"); break;
		case 'd': sim.state_dir = optarg; break;
		case 'n': sim.hdmi_cable = false; break;
		case 't': sim.token_ttl = num_opt(optarg, 1, 1LL << 31, "token-ttl"); break;
		case 's':
			sim.time_scale = strtod(optarg, &end);
			if (*end || sim.time_scale < 0 || sim.time_scale > 100)
				usage();
			break;
		case 'l': sim.long_press_ms = num_opt(optarg, 1, 600000, "long-press-ms"); break;
		case 'w': ws_deadline_s = (int)num_opt(optarg, 0, 86400, "ws-deadline"); break;
		case 'u': usb_offline_ms = num_opt(optarg, 0, 60000, "usb-offline-ms"); break;
		case 'r': sim.fps = (int)num_opt(optarg, 1, 120, "fps"); break;
		case 'D': sim.frame_detect = true; break;
		case 'C': cert = optarg; break;
		case 'K': key = optarg; break;
		case 'L':
			if (hid_layout_parse(optarg, &sim.kbd.layout) < 0)
				usage();
			break;
		case 'R': redirect_port = (int)num_opt(optarg, 1, 65535, "redirect-port"); break;
		case 'U':
			/* head's multi-user accounts: NAME:PASSWORD with the role "user". */
			if ((end = strchr(optarg, ':')) == NULL || end == optarg)
				usage();
			free(sim.user_name);
			sim.user_name = xasprintf("%.*s", (int)(end - optarg), optarg);
			sim.user_password = end + 1;
			break;
		default: usage();
		}
	}
	if (port < 0 || optind != argc || (cert == NULL) != (key == NULL) ||
	    (redirect_port >= 0 && cert == NULL))
		usage();
	tls_port = port;
	sim.tls = cert != NULL;

	random_bytes(sim.secret, sizeof sim.secret);
	sim.counters = json_object_new_object();
	sim.screen = screen_new(sim.width, sim.height);
	host_boot();
	last_signal = sim_signal();

	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	               (cert != NULL ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
	sim.ctx = lws_create_context(&info);
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.keepalive_timeout = 60;
	info.timeout_secs = 20;
	info.ssl_cert_filepath = cert;
	info.ssl_private_key_filepath = key;
	/* HTTP/1.1 only: the stream and /api/ws are written as HTTP/1.1 (the device's Go
	 * server also offers h2, which libcurl may pick; the driver works with either). */
	info.alpn = "http/1.1";
	if (sim.ctx == NULL || lws_create_vhost(sim.ctx, &info) == NULL) {
		log_errx("cannot listen on 127.0.0.1:%d%s", port, cert != NULL ? " with TLS" : "");
		return 1;
	}
	if (redirect_port >= 0) {
		info.vhost_name = "redirect";
		info.port = redirect_port;
		info.protocols = redirect_protocols;
		info.ssl_cert_filepath = info.ssl_private_key_filepath = NULL;
		if (lws_create_vhost(sim.ctx, &info) == NULL) {
			log_errx("cannot listen on 127.0.0.1:%d", redirect_port);
			return 1;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	lws_sul_schedule(sim.ctx, 0, &capture_sul, capture_tick, 1000);
	printf("listening on 127.0.0.1:%d\n", port);
	fflush(stdout);
	while (!stopping)
		if (lws_service(sim.ctx, 0) < 0)
			break;
	lws_context_destroy(sim.ctx);
	screen_free(sim.screen);
	json_object_put(sim.counters);
	free(sim.user_name);
	return 0;
}
