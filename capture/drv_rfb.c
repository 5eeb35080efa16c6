/*
 * drv_rfb.c - the "vnc" device kind: an RFB client session on the capture
 * event loop (protocols/rfb.md). The protocol itself is rfb.c's engine;
 * this file moves its bytes through up to three layers, each without I/O of
 * its own so they stack in any combination:
 *
 *   socket <-> [TLS, wss://] <-> [WebSocket, ws:// wss://] <-> [TLS, VeNCrypt] <-> engine
 *
 * Both TLS layers are OpenSSL over memory BIOs. The framebuffer is kept
 * current with incremental update requests while the session is open; a
 * JPEG is encoded only when a reader wants a frame (want_frame), and the
 * last one is published again when nothing changed. A 1x1 full request
 * every quarter of the frame timeout proves a static screen's server alive.
 *
 * URL: vnc://host[:port] (5900), ws://host[:port]/path (80), wss://... (443),
 * with query options: encodings=tight,zrle,hextile,copyrect,raw (a subset,
 * in any order); tls=verify (default: VeNCrypt's anonymous TLS sub-types,
 * X509 ones and wss:// with a certificate checked against the system CAs
 * and the host name), tls=insecure (X509 and wss:// certificates not
 * checked), tls=off (never VeNCrypt; wss:// still checks its certificate);
 * jpeg=0..9 (Tight JPEG quality, default 8) or jpeg=off.
 */
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"
#include "rfb.h"
#include "wsc.h"

#define JPEG_QUALITY 80
#define EMPTY_RETRY_NS 40000000u	/* after an empty update, the next request in 40 ms */
#define READ_CHUNK (256 * 1024)
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* One TLS layer over memory BIOs. */
struct tls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rb, *wb;		/* what came from below / what goes below; owned by ssl */
	bool done;		/* handshake finished */
};

struct vnc {
	struct watch sock;		/* first: watch_free_later frees the whole struct through it */
	struct watch timer;
	struct session *s;
	struct rfb r;

	struct vnc_url u;		/* from the device's URL */

	bool connected;
	struct tls outer, inner;
	struct wsc wsc;
	struct buf sockout;		/* to write to the socket, from sockout_off */
	size_t sockout_off;
	uint64_t queued, sent;		/* socket bytes queued and written since connect */

	struct dev_op *op;		/* the running operation */
	uint64_t op_mark;		/* done once sent reaches it */
	bool op_deferred;		/* waits for the server's initialisation */

	tjhandle tjc;
	unsigned char *jpeg;		/* the last JPEG published (tjAlloc'd) */
	unsigned long jpeg_len;
	uint64_t jpeg_changes;		/* r.changes when it was encoded */
	uint32_t jpeg_w, jpeg_h;
	bool published, publish_pending;
	uint64_t seen_updates, seen_messages, tick_messages;
	bool told_auth, told_qemu_keys;
	uint64_t tick_ns;		/* the ping period */
};

static void flush_socket(struct vnc *v);
static int arm(struct vnc *v, uint64_t first_ns);

/* Ends the session with a reason; v is freed (by vnc_close) before this returns. */
static int fail(struct vnc *v, enum session_error e, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail(struct vnc *v, enum session_error e, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	session_error(v->s, e, why);
	return -1;
}

/* ---- URL ------------------------------------------------------------------ */

int vnc_parse_url(const char *url, struct vnc_url *v, struct rfb_opts *o, char *why, size_t len)
{
	const char *p, *hs, *he, *q;
	long port = -1;

	memset(v, 0, sizeof *v);
	o->encodings = 0;
	o->jpeg_quality = 8;
	o->tls = true;
	v->tls_mode = TLS_VERIFY;
	if (strncasecmp(url, "vnc://", 6) == 0) {
		p = url + 6;
		v->port = 5900;
	} else if (strncasecmp(url, "ws://", 5) == 0) {
		p = url + 5;
		v->ws = true;
		v->port = 80;
	} else if (strncasecmp(url, "wss://", 6) == 0) {
		p = url + 6;
		v->ws = v->wss = true;
		v->port = 443;
	} else {
		snprintf(why, len, "a vnc device URL starts with vnc://, ws:// or wss://");
		return -1;
	}
	if (*p == '[') {
		hs = p + 1;
		if ((he = strchr(hs, ']')) == NULL)
			goto bad;
		p = he + 1;
	} else {
		hs = p;
		he = p + strcspn(p, ":/?");
		p = he;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof v->host)
		goto bad;
	snprintf(v->host, sizeof v->host, "%.*s", (int)(he - hs), hs);
	if (*p == ':') {
		char *end;
		port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			goto bad;
		v->port = (int)port;
		p = end;
	}
	q = strchr(p, '?');
	snprintf(v->path, sizeof v->path, "%.*s", (int)(q ? q - p : (long)strlen(p)), p);
	if (v->path[0] == '\0')
		snprintf(v->path, sizeof v->path, "/");
	if (v->path[0] != '/' || strpbrk(v->path, " \r\n") != NULL || (!v->ws && strcmp(v->path, "/") != 0))
		goto bad;
	bool seen[3] = { false };
	for (q = q ? q + 1 : NULL; q != NULL && *q != '\0';) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		char val[128];
		int k;
		if (eq == NULL || (size_t)(q + n - eq - 1) >= sizeof val) {
			snprintf(why, len, "option '%.*s' in the URL is not name=value", (int)(n > 40 ? 40 : n), q);
			return -1;
		}
		snprintf(val, sizeof val, "%.*s", (int)(q + n - eq - 1), eq + 1);
		k = strncmp(q, "encodings=", 10) == 0 ? 0 : strncmp(q, "tls=", 4) == 0 ? 1
		    : strncmp(q, "jpeg=", 5) == 0 ? 2 : -1;
		if (k < 0 || seen[k]) {
			snprintf(why, len, "%s URL option '%.*s' (known: encodings, tls, jpeg)",
			         k < 0 ? "unknown" : "repeated", (int)(eq - q > 40 ? 40 : eq - q), q);
			return -1;
		}
		seen[k] = true;
		if (k == 0 && (o->encodings = rfb_parse_encodings(val, why, len)) == 0)
			return -1;
		if (k == 1) {
			if (strcmp(val, "verify") == 0)
				v->tls_mode = TLS_VERIFY;
			else if (strcmp(val, "insecure") == 0)
				v->tls_mode = TLS_INSECURE;
			else if (strcmp(val, "off") == 0)
				v->tls_mode = TLS_OFF;
			else {
				snprintf(why, len, "tls=%s: use verify, insecure or off", val);
				return -1;
			}
		}
		if (k == 2) {
			if (strcmp(val, "off") == 0)
				o->jpeg_quality = -1;
			else if (strlen(val) == 1 && val[0] >= '0' && val[0] <= '9')
				o->jpeg_quality = val[0] - '0';
			else {
				snprintf(why, len, "jpeg=%s: use 0 to 9 or off", val);
				return -1;
			}
		}
		q += n;
		if (*q == '&')
			q++;
	}
	o->tls = v->tls_mode != TLS_OFF;
	o->x509 = v->tls_mode != TLS_OFF;
	return 0;
bad:
	snprintf(why, len, "the URL is not vnc://host[:port], ws://host[:port]/path or wss://...");
	return -1;
}

/* ---- TLS layers --------------------------------------------------------------- */

/* Sets up t as a client; anonymous: VeNCrypt's TLS* sub-types (ADH/AECDH, TLS 1.2). */
static int tls_start(struct vnc *v, struct tls *t, bool anonymous)
{
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	if (anonymous) {
		/* Anonymous DH has no certificate to check: OpenSSL 3 allows it only at level 0. */
		SSL_CTX_set_max_proto_version(t->ctx, TLS1_2_VERSION);
		if (SSL_CTX_set_cipher_list(t->ctx, "aNULL:!eNULL:@SECLEVEL=0") != 1)
			return -1;
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	} else if (v->u.tls_mode == TLS_INSECURE) {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_default_verify_paths(t->ctx);
	}
	if ((t->ssl = SSL_new(t->ctx)) == NULL)
		return -1;
	t->rb = BIO_new(BIO_s_mem());
	t->wb = BIO_new(BIO_s_mem());
	SSL_set_bio(t->ssl, t->rb, t->wb);
	SSL_set_connect_state(t->ssl);
	if (!anonymous) {
		SSL_set_tlsext_host_name(t->ssl, v->u.host);
		if (v->u.tls_mode != TLS_INSECURE)
			SSL_set1_host(t->ssl, v->u.host);
	}
	return 0;
}

static void tls_free(struct tls *t)
{
	SSL_free(t->ssl);	/* frees the BIOs */
	SSL_CTX_free(t->ctx);
	memset(t, 0, sizeof *t);
}

/* Moves what t has to send below into out. */
static void tls_drain(struct tls *t, struct buf *out)
{
	char tmp[16384];
	int n;

	while ((n = BIO_read(t->wb, tmp, sizeof tmp)) > 0)
		buf_append(out, tmp, (size_t)n);
}

/* The reason a TLS call failed, for the session's error. */
static const char *tls_why(struct tls *t, char *why, size_t len)
{
	unsigned long e = ERR_get_error();
	long vr = SSL_get_verify_result(t->ssl);

	if (vr != X509_V_OK)
		snprintf(why, len, "certificate not accepted: %s (use ?tls=insecure to skip the check)",
		         X509_verify_cert_error_string(vr));
	else
		snprintf(why, len, "%s", e ? ERR_reason_error_string(e) : "TLS failed");
	ERR_clear_error();
	return why;
}

/*
 * Feeds n bytes from below into t; runs the handshake while it is not done;
 * appends plaintext to up and what must go below to down. Returns 1 when
 * the handshake finished now, 0 otherwise, -1 on a TLS error (why set).
 */
static int tls_feed(struct tls *t, const void *p, size_t n, struct buf *up, struct buf *down,
                    char *why, size_t len)
{
	char tmp[16384];
	int k, rc = 0;

	if (n > 0)
		BIO_write(t->rb, p, (int)n);
	if (!t->done) {
		k = SSL_do_handshake(t->ssl);
		tls_drain(t, down);
		if (k != 1) {
			int e = SSL_get_error(t->ssl, k);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			tls_why(t, why, len);
			return -1;
		}
		t->done = true;
		rc = 1;
	}
	while ((k = SSL_read(t->ssl, tmp, sizeof tmp)) > 0)
		buf_append(up, tmp, (size_t)k);
	tls_drain(t, down);
	k = SSL_get_error(t->ssl, k);
	if (k != SSL_ERROR_WANT_READ && k != SSL_ERROR_WANT_WRITE) {
		if (k == SSL_ERROR_ZERO_RETURN)
			snprintf(why, len, "the server closed TLS");
		else
			tls_why(t, why, len);
		return -1;
	}
	return rc;
}

/* ---- the way down: engine -> inner TLS -> WebSocket -> outer TLS -> socket ---- */

static void to_socket(struct vnc *v, const void *p, size_t n)
{
	if (n == 0)
		return;	/* an empty layer output has no buffer at all */
	buf_append(&v->sockout, p, n);
	v->queued += n;
}

static void to_outer(struct vnc *v, const void *p, size_t n)
{
	struct buf b = BUF_INIT;

	if (n == 0)
		return;
	if (!v->u.wss) {
		to_socket(v, p, n);
		return;
	}
	SSL_write(v->outer.ssl, p, (int)n);	/* memory BIO: always takes it all */
	tls_drain(&v->outer, &b);
	to_socket(v, b.data, b.len);
	buf_free(&b);
}

static void to_ws(struct vnc *v, const void *p, size_t n)
{
	struct buf b = BUF_INIT;

	if (!v->u.ws || n == 0) {
		if (n > 0)
			to_outer(v, p, n);
		return;
	}
	wsc_frame(&v->wsc, p, n, &b);
	to_outer(v, b.data, b.len);
	buf_free(&b);
}

/* Sends what the engine queued in r.out. */
static void engine_out(struct vnc *v)
{
	struct buf b = BUF_INIT;

	if (v->r.out.len == 0)
		return;
	if (v->inner.ssl != NULL) {
		SSL_write(v->inner.ssl, v->r.out.data, (int)v->r.out.len);
		tls_drain(&v->inner, &b);
		to_ws(v, b.data, b.len);
		buf_free(&b);
	} else {
		to_ws(v, v->r.out.data, v->r.out.len);
	}
	buf_reset(&v->r.out);
}

/* ---- frames --------------------------------------------------------------------- */

/* Publishes the framebuffer as a JPEG, encoding it again only when it changed. */
static int publish(struct vnc *v)
{
	struct shm_frame_info fi = { .format = SHM_FMT_JPEG };

	v->publish_pending = false;
	if (v->jpeg == NULL || v->jpeg_changes != v->r.changes || v->jpeg_w != v->r.w || v->jpeg_h != v->r.h) {
		if (v->tjc == NULL && (v->tjc = tjInitCompress()) == NULL)
			abort();
		if (tjCompress2(v->tjc, (const unsigned char *)v->r.fb, (int)v->r.w, (int)v->r.w * 4,
		                (int)v->r.h, TJPF_BGRX, &v->jpeg, &v->jpeg_len, TJSAMP_420, JPEG_QUALITY,
		                TJFLAG_FASTDCT) != 0) {
			log_warnx("device %llu: JPEG encoding failed: %s", (unsigned long long)v->s->cfg.id,
			          tjGetErrorStr2(v->tjc));
			return 0;
		}
		v->jpeg_changes = v->r.changes;
		v->jpeg_w = v->r.w;
		v->jpeg_h = v->r.h;
	}
	fi.width = v->jpeg_w;
	fi.height = v->jpeg_h;
	fi.len = (uint32_t)v->jpeg_len;
	if (!v->published) {
		/* What status and device_state show as the device's firmware: protocol and desktop. */
		snprintf(v->s->firmware, sizeof v->s->firmware, "RFB %.7s %.19s", v->r.server_version, v->r.name);
		devstate_firmware(v->s->cfg.id, v->s->firmware);
	}
	v->published = true;
	devstate_frame(v->s->cfg.id, fi.width, fi.height);
	if (session_frame(v->s, &fi, v->jpeg) < 0)
		return -1;	/* a frame too large for a slot: logged there; the session goes on */
	return 0;
}

/* ---- operations ------------------------------------------------------------------- */

static void op_end(struct vnc *v, struct dev_op *op, enum session_error e, const char *why)
{
	if (v->op == op)
		v->op = NULL;
	session_op_done(v->s, op, e, why);
}

/* Presses mods (bit order) and the key, then releases in reverse. */
static void stroke(struct vnc *v, const struct keystroke *k)
{
	bool shift = k->mods & (KEYMOD_LSHIFT | KEYMOD_RSHIFT);

	for (int i = 0; i < 8; i++)
		if (k->mods & (1u << i))
			rfb_key(&v->r, keys_mod_keysym(1u << i), rfb_mod_scancode(1u << i), true);
	if (k->usage != 0) {
		uint32_t sym = keys_keysym(k->usage, shift);
		rfb_key(&v->r, sym, rfb_scancode(k->usage), true);
		rfb_key(&v->r, sym, rfb_scancode(k->usage), false);
	}
	for (int i = 7; i >= 0; i--)
		if (k->mods & (1u << i))
			rfb_key(&v->r, keys_mod_keysym(1u << i), rfb_mod_scancode(1u << i), false);
}

/* Decodes one UTF-8 character at *p. Returns it, or -1 when the bytes are not UTF-8. */
static long utf8_next(const char **p)
{
	const uint8_t *s = (const uint8_t *)*p;
	long cp;
	int n;

	if (s[0] < 0x80) { cp = s[0]; n = 0; }
	else if ((s[0] & 0xe0) == 0xc0) { cp = s[0] & 0x1f; n = 1; }
	else if ((s[0] & 0xf0) == 0xe0) { cp = s[0] & 0x0f; n = 2; }
	else if ((s[0] & 0xf8) == 0xf0) { cp = s[0] & 0x07; n = 3; }
	else return -1;
	for (int i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*p += n + 1;
	return cp;
}

/* A screen position from op: x, y inside the framebuffer (or -1, -1 = where the pointer is). */
static int op_xy(struct vnc *v, const struct dev_op *op, bool current_ok, uint16_t *x, uint16_t *y,
                 char *why, size_t len)
{
	if (current_ok && op->req.x == -1 && op->req.y == -1) {
		*x = v->r.px;
		*y = v->r.py;
		return 0;
	}
	if (op->req.x < 0 || op->req.y < 0 || (uint32_t)op->req.x >= v->r.w || (uint32_t)op->req.y >= v->r.h) {
		snprintf(why, len, "(%d, %d) is outside the %ux%u screen: x must be 0..%u and y 0..%u",
		         op->req.x, op->req.y, v->r.w, v->r.h, v->r.w - 1, v->r.h - 1);
		return -1;
	}
	*x = (uint16_t)op->req.x;
	*y = (uint16_t)op->req.y;
	return 0;
}

/* Builds op's messages into r.out. Returns 0, or -1 with why (nothing is sent then). */
static int op_build(struct vnc *v, struct dev_op *op, char *why, size_t len)
{
	struct keystroke k;
	uint16_t x, y;
	uint32_t bit;

	switch (op->req.op) {
	case OP_KEYS: {
		char *save = NULL, *copy = xstrdup(op->data);
		int n = 0;
		/* All lines parsed before anything is sent: a typo sends nothing. */
		for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save), n++)
			if (keys_parse(l, &k, why, len) < 0) {
				free(copy);
				buf_reset(&v->r.out);
				return -1;
			} else {
				stroke(v, &k);
			}
		free(copy);
		if (n == 0) {
			snprintf(why, len, "no key combination given");
			return -1;
		}
		return 0;
	}
	case OP_TEXT: {
		const char *layout = op->req.arg;
		if (layout[0] != '\0' && strcasecmp(layout, "us") != 0 && strcasecmp(layout, "en") != 0) {
			snprintf(why, len, "keyboard layout '%s' is not supported here (us only)", layout);
			return -1;
		}
		for (const char *p = op->data; *p != '\0';) {
			long cp = utf8_next(&p);
			if (cp < 0) {
				snprintf(why, len, "the text is not valid UTF-8");
				buf_reset(&v->r.out);
				return -1;
			}
			if (keys_for_char((uint32_t)cp, "us", &k) == 0) {
				stroke(v, &k);
			} else {
				/* No key on the layout: the character's keysym, for the server to map. */
				uint32_t sym = cp < 0x100 ? (uint32_t)cp : 0x01000000u + (uint32_t)cp;
				if (cp < 0x20 || cp == 0x7f)
					continue;	/* control characters other than \n \t have no key */
				rfb_key(&v->r, sym, 0, true);
				rfb_key(&v->r, sym, 0, false);
			}
		}
		return 0;
	}
	case OP_MOUSE_MOVE:
		if (op_xy(v, op, false, &x, &y, why, len) < 0)
			return -1;
		rfb_pointer(&v->r, x, y, v->r.buttons);
		return 0;
	case OP_MOUSE_CLICK:
		bit = op->req.button == BUTTON_LEFT ? 1 : op->req.button == BUTTON_MIDDLE ? 2
		      : op->req.button == BUTTON_RIGHT ? 4 : 0;
		if (bit == 0 || (op->req.count != 1 && op->req.count != 2)) {
			snprintf(why, len, bit == 0 ? "button must be left, right or middle" : "count must be 1 or 2");
			return -1;
		}
		if (op_xy(v, op, true, &x, &y, why, len) < 0)
			return -1;
		rfb_pointer(&v->r, x, y, 0);
		for (int i = 0; i < op->req.count; i++) {
			rfb_pointer(&v->r, x, y, bit);
			rfb_pointer(&v->r, x, y, 0);
		}
		return 0;
	case OP_MOUSE_SCROLL:
		if (op->req.count == 0 || op->req.count > 1000 || op->req.count < -1000) {
			snprintf(why, len, "count must be 1..1000 steps down or -1..-1000 up");
			return -1;
		}
		if (op_xy(v, op, true, &x, &y, why, len) < 0)
			return -1;
		bit = op->req.count > 0 ? 16 : 8;
		rfb_pointer(&v->r, x, y, v->r.buttons);
		for (int i = 0; i < abs(op->req.count); i++) {
			rfb_pointer(&v->r, x, y, v->r.buttons | bit);
			rfb_pointer(&v->r, x, y, v->r.buttons & ~bit);
		}
		return 0;
	case OP_HID_RESET:
		for (int i = 0; i < 8; i++)
			rfb_key(&v->r, keys_mod_keysym(1u << i), rfb_mod_scancode(1u << i), false);
		rfb_pointer(&v->r, v->r.px, v->r.py, 0);
		return 0;
	default:
		snprintf(why, len, "%s is not an operation of the vnc driver", dev_op_name(op->req.op));
		return -1;
	}
}

/* Runs op now that the server is initialised: built, sent, done when written. */
static int op_run(struct vnc *v, struct dev_op *op)
{
	char why[200];

	v->op = op;
	v->op_deferred = false;
	if (op_build(v, op, why, sizeof why) < 0) {
		buf_reset(&v->r.out);
		op_end(v, op, SE_INVALID, why);
		return 0;
	}
	engine_out(v);
	v->op_mark = v->queued;
	flush_socket(v);
	return 0;
}

/* Ends the running op if its bytes are all written. */
static void op_check(struct vnc *v)
{
	if (v->op != NULL && !v->op_deferred && v->sent >= v->op_mark)
		op_end(v, v->op, SE_NONE, NULL);
}

/* ---- the way up: socket -> outer TLS -> WebSocket -> inner TLS -> engine ------------ */

/* What the engine did: tell the session, publish, start what waited. Returns -1 when v is gone. */
static int engine_events(struct vnc *v, int rc)
{
	struct session *s = v->s;

	engine_out(v);
	if (rc < 0)
		return fail(v, v->r.err, "%s", v->r.why);
	if (rc == 1) {
		char why[160];
		struct buf up = BUF_INIT, down = BUF_INIT;
		bool anon = v->r.subtype >= 257 && v->r.subtype <= 259;
		if (tls_start(v, &v->inner, anon) < 0)
			return fail(v, SE_PROTOCOL, "VeNCrypt: TLS cannot be set up");
		log_info("device %llu: VeNCrypt sub-type %u, TLS handshake", (unsigned long long)s->cfg.id,
		         v->r.subtype);
		rc = tls_feed(&v->inner, NULL, 0, &up, &down, why, sizeof why);
		to_ws(v, down.data, down.len);
		buf_free(&up);
		buf_free(&down);
		if (rc < 0)
			return fail(v, SE_PROTOCOL, "VeNCrypt TLS: %s", why);
	}
	if (v->r.authenticated && !v->told_auth) {
		v->told_auth = true;
		session_authenticated(s);
	}
	if (v->r.qemu_keys && !v->told_qemu_keys) {
		v->told_qemu_keys = true;
		log_info("device %llu: the server takes QEMU extended key events: keys go with scancodes",
		         (unsigned long long)s->cfg.id);
	}
	if (v->r.messages != v->seen_messages) {
		v->seen_messages = v->r.messages;
		session_alive(s);
	}
	if (v->r.st == RFB_NORMAL && (s->width != v->r.w || s->height != v->r.h)) {
		if (s->width != 0)
			log_info("device %llu: screen now %ux%u", (unsigned long long)s->cfg.id, v->r.w, v->r.h);
		s->width = v->r.w;
		s->height = v->r.h;
	}
	if (v->r.updates != v->seen_updates) {
		v->seen_updates = v->r.updates;
		if (v->r.request_deferred)
			(void)arm(v, EMPTY_RETRY_NS);
		if ((!v->published && v->r.complete) || (v->publish_pending && !v->r.in_update))
			(void)!publish(v);
	}
	if (v->op != NULL && v->op_deferred && v->r.st == RFB_NORMAL)
		return op_run(v, v->op);
	return 0;
}

static int to_engine(struct vnc *v, const void *p, size_t n)
{
	return engine_events(v, rfb_feed(&v->r, p, n));
}

static int from_ws(struct vnc *v, const void *p, size_t n)
{
	struct buf up = BUF_INIT, down = BUF_INIT;
	char why[160];
	int rc;

	if (v->inner.ssl == NULL)
		return to_engine(v, p, n);
	rc = tls_feed(&v->inner, p, n, &up, &down, why, sizeof why);
	to_ws(v, down.data, down.len);
	buf_free(&down);
	if (rc < 0) {
		buf_free(&up);
		return fail(v, SE_PROTOCOL, "VeNCrypt TLS: %s", why);
	}
	if (rc == 1) {
		log_info("device %llu: VeNCrypt TLS up (%s)", (unsigned long long)v->s->cfg.id,
		         SSL_get_cipher_name(v->inner.ssl));
		if (engine_events(v, rfb_tls_ready(&v->r)) < 0) {
			buf_free(&up);
			return -1;
		}
	}
	rc = up.len > 0 ? to_engine(v, up.data, up.len) : 0;
	buf_free(&up);
	return rc;
}

static int from_outer(struct vnc *v, const void *p, size_t n)
{
	struct buf up = BUF_INIT, down = BUF_INIT;
	int rc;

	if (!v->u.ws)
		return from_ws(v, p, n);
	rc = wsc_feed(&v->wsc, p, n, &up, &down);
	to_outer(v, down.data, down.len);
	buf_free(&down);
	if (rc < 0) {
		buf_free(&up);
		return fail(v, v->wsc.closed ? SE_OFFLINE : SE_PROTOCOL, "%s", v->wsc.why);
	}
	rc = up.len > 0 ? from_ws(v, up.data, up.len) : 0;
	buf_free(&up);
	return rc;
}

/* The transport is up (TCP connected, or wss's TLS done): start WebSocket if any. */
static void transport_up(struct vnc *v)
{
	struct buf b = BUF_INIT;
	char host_port[300];

	if (!v->u.ws)
		return;
	snprintf(host_port, sizeof host_port, strchr(v->u.host, ':') ? "[%s]:%d" : "%s:%d", v->u.host, v->u.port);
	wsc_request(&v->wsc, host_port, v->u.path, &b);
	to_outer(v, b.data, b.len);
	buf_free(&b);
}

static int from_socket(struct vnc *v, const void *p, size_t n)
{
	struct buf up = BUF_INIT, down = BUF_INIT;
	char why[160];
	int rc;

	if (!v->u.wss)
		return from_outer(v, p, n);
	rc = tls_feed(&v->outer, p, n, &up, &down, why, sizeof why);
	to_socket(v, down.data, down.len);
	buf_free(&down);
	if (rc < 0) {
		buf_free(&up);
		return fail(v, SE_OFFLINE, "TLS: %s", why);
	}
	if (rc == 1)
		transport_up(v);
	rc = up.len > 0 ? from_outer(v, up.data, up.len) : 0;
	buf_free(&up);
	return rc;
}

/* ---- socket --------------------------------------------------------------------------- */

/*
 * Writes what is queued; watches for writability while some is left. It
 * never ends the session itself (callers up the stack still hold v): a
 * connection that broke drops its output, and the read side reports it.
 */
static void flush_socket(struct vnc *v)
{
	while (v->sockout_off < v->sockout.len) {
		ssize_t n = send(v->sock.fd, v->sockout.data + v->sockout_off, v->sockout.len - v->sockout_off,
		                 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			log_debug("device %llu: send: %s", (unsigned long long)v->s->cfg.id, strerror(errno));
			v->sockout_off = v->sockout.len;	/* recv or EPOLLERR ends the session */
			break;
		}
		v->sockout_off += (size_t)n;
		v->sent += (uint64_t)n;
	}
	if (v->sockout_off == v->sockout.len) {
		buf_reset(&v->sockout);
		v->sockout_off = 0;
	}
	if (watch_mod(&v->sock, EPOLLIN | (v->sockout.len > 0 ? EPOLLOUT : 0)) < 0)
		log_warnx("device %llu: the socket's watch could not be changed", (unsigned long long)v->s->cfg.id);
	op_check(v);
}

/* TCP is up: TLS (wss://) or the WebSocket upgrade starts. Returns -1 when v is gone. */
static int on_connected(struct vnc *v)
{
	int one = 1;
	struct buf down = BUF_INIT, up = BUF_INIT;
	char why[160];

	v->connected = true;
	setsockopt(v->sock.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	log_debug("device %llu: connected to %s:%d", (unsigned long long)v->s->cfg.id, v->u.host, v->u.port);
	if (v->u.wss) {
		if (tls_start(v, &v->outer, false) < 0)
			return fail(v, SE_CONFIG, "TLS cannot be set up");
		(void)tls_feed(&v->outer, NULL, 0, &up, &down, why, sizeof why);
		to_socket(v, down.data, down.len);
		buf_free(&down);
		buf_free(&up);
	} else {
		transport_up(v);
	}
	return 0;
}

static void on_sock(struct watch *w, uint32_t events)
{
	struct vnc *v = container_of(w, struct vnc, sock);
	uint8_t *tmp;
	ssize_t n;

	if (!v->connected) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			(void)fail(v, SE_OFFLINE, "connect to %s:%d: %s", v->u.host, v->u.port, strerror(err));
			return;
		}
		if (on_connected(v) == 0)
			flush_socket(v);
		return;
	}
	if (events & EPOLLOUT)
		flush_socket(v);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	tmp = xmalloc(READ_CHUNK);
	/* Bounded reads per wakeup: one busy server cannot starve the others. */
	for (int i = 0; i < 8; i++) {
		n = recv(w->fd, tmp, READ_CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			free(tmp);
			if (n == 0)
				(void)fail(v, SE_OFFLINE, "the server closed the connection (%s)",
				           v->r.st == RFB_NORMAL ? "during the session" : "during the handshake");
			else
				(void)fail(v, SE_OFFLINE, "recv: %s", strerror(errno));
			return;
		}
		if (from_socket(v, tmp, (size_t)n) < 0) {
			free(tmp);
			return;
		}
	}
	free(tmp);
	flush_socket(v);
}

/* Fires first after first_ns, then every ping period. Returns 0 or -1 (logged). */
static int arm(struct vnc *v, uint64_t first_ns)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(first_ns / 1000000000u);
	its.it_value.tv_nsec = (long)(first_ns % 1000000000u);
	its.it_interval.tv_sec = (time_t)(v->tick_ns / 1000000000u);
	its.it_interval.tv_nsec = (long)(v->tick_ns % 1000000000u);
	if (timerfd_settime(v->timer.fd, 0, &its, NULL) < 0) {
		log_warn("device %llu: timerfd_settime", (unsigned long long)v->s->cfg.id);
		return -1;
	}
	return 0;
}

/*
 * Every quarter of the frame timeout: a server silent since the last tick
 * is asked for 1x1. Sooner after an empty update: the deferred request.
 */
static void on_tick(struct watch *w, uint32_t events)
{
	struct vnc *v = container_of(w, struct vnc, timer);
	uint64_t n;

	while (read(w->fd, &n, sizeof n) == sizeof n)
		;
	if (v->r.st != RFB_NORMAL)
		return;
	if (v->r.request_deferred) {
		v->r.request_deferred = false;
		rfb_request(&v->r, true);
		engine_out(v);
		flush_socket(v);
		return;
	}
	if (v->r.messages == v->tick_messages) {
		rfb_ping(&v->r);
		engine_out(v);
		flush_socket(v);
		return;
	}
	v->tick_messages = v->r.messages;
}

/* ---- the driver ------------------------------------------------------------------------- */

static void vnc_close(struct session *s)
{
	struct vnc *v = s->drv_state;

	if (v->sock.fd >= 0) {
		watch_del(&v->sock);
		close(v->sock.fd);
	}
	if (v->timer.fd >= 0) {
		watch_del(&v->timer);
		close(v->timer.fd);
	}
	tls_free(&v->outer);
	tls_free(&v->inner);
	buf_free(&v->wsc.in);
	buf_free(&v->sockout);
	rfb_cleanup(&v->r);
	if (v->tjc != NULL)
		tjDestroy(v->tjc);
	tjFree(v->jpeg);
	/* Events of this batch may still point at either watch: freed after it (sock is first). */
	v->timer.on_ready = NULL;
	watch_free_later(&v->sock);
	s->drv_state = NULL;
}

static int vnc_open(struct session *s)
{
	struct vnc *v = xcalloc(1, sizeof *v);
	struct rfb_opts o = { .password = s->cfg.password, .username = s->cfg.username };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char why[200], port[8];
	int rc;

	v->s = s;
	v->sock.fd = v->timer.fd = -1;
	s->drv_state = v;
	if (vnc_parse_url(s->cfg.url, &v->u, &o, why, sizeof why) < 0)
		return fail(v, SE_CONFIG, "%s", why);
	rfb_init(&v->r, &o);
	snprintf(port, sizeof port, "%d", v->u.port);
	/* Names resolve through the system resolver; addresses and /etc/hosts answer at once. */
	if ((rc = getaddrinfo(v->u.host, port, &hints, &ai)) != 0)
		return fail(v, rc == EAI_NONAME ? SE_CONFIG : SE_OFFLINE, "%s: %s", v->u.host, gai_strerror(rc));
	v->sock.fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	v->sock.on_ready = on_sock;
	if (v->sock.fd < 0 || (connect(v->sock.fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
		int e = errno;
		freeaddrinfo(ai);
		return fail(v, SE_OFFLINE, "connect to %s:%d: %s", v->u.host, v->u.port, strerror(e));
	}
	freeaddrinfo(ai);
	if (watch_add(&v->sock, EPOLLOUT) < 0)
		return fail(v, SE_OFFLINE, "epoll");
	v->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	v->timer.on_ready = on_tick;
	v->tick_ns = session_timing.frame_timeout_ns / 4;
	if (v->tick_ns < 100000000u)
		v->tick_ns = 100000000u;
	if (v->timer.fd < 0 || arm(v, v->tick_ns) < 0 || watch_add(&v->timer, EPOLLIN) < 0)
		return fail(v, SE_OFFLINE, "timer");
	return 0;
}

static void vnc_start_op(struct session *s, struct dev_op *op)
{
	struct vnc *v = s->drv_state;

	if (v->r.st != RFB_NORMAL) {
		v->op = op;
		v->op_deferred = true;	/* the server's initialisation tells the screen size */
		return;
	}
	(void)op_run(v, op);
}

static void vnc_want_frame(struct session *s)
{
	struct vnc *v = s->drv_state;

	if (v->r.st != RFB_NORMAL || !v->published)
		return;
	if (v->r.in_update)
		v->publish_pending = true;	/* published when the update is whole */
	else
		(void)!publish(v);
}

const struct driver drv_rfb = {
	.kind = "vnc",
	.ops = OP_BIT(OP_KEYS) | OP_BIT(OP_TEXT) | OP_BIT(OP_MOUSE_MOVE) | OP_BIT(OP_MOUSE_CLICK) |
	       OP_BIT(OP_MOUSE_SCROLL) | OP_BIT(OP_HID_RESET),
	.open = vnc_open,
	.close = vnc_close,
	.start_op = vnc_start_op,
	.want_frame = vnc_want_frame,
};
