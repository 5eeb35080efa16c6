/*
 * rfb.c - the RFB client engine: handshake state machine (rfb.md section 1),
 * client messages (section 2) and the server message loop (section 3). The
 * decoders of each encoding are in rfb_decode.c. Every length read from the
 * server is checked before use; a lying server ends the connection with a
 * reason in r->why, never with a read outside what it sent.
 */
#define OPENSSL_SUPPRESS_DEPRECATED	/* DES_* is all VNC authentication needs */
#include <openssl/des.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <turbojpeg.h>

#include "capture.h"
#include "rfb.h"
#include "log.h"

static const char *const state_names[RFB__STATES] = {
	"version", "security-type", "security-types", "reason", "vnc-auth", "security-result",
	"vencrypt-version", "vencrypt-ack", "vencrypt-types", "vencrypt-tls-ack", "tls",
	"server-init", "normal", "failed",
};

/* The one place the engine changes state. */
static void rfb_set_state(struct rfb *r, enum rfb_state to)
{
	log_debug("rfb: %s -> %s", state_names[r->st], state_names[to]);
	r->st = to;
}

int rfb_fail(struct rfb *r, enum session_error e, const char *fmt, ...)
{
	va_list ap;

	if (r->st == RFB_FAILED)
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
	r->err = e;
	rfb_set_state(r, RFB_FAILED);
	return -1;
}

void rfb_init(struct rfb *r, const struct rfb_opts *opt)
{
	memset(r, 0, sizeof *r);
	r->opt = *opt;
	snprintf(r->password, sizeof r->password, "%s", opt->password ? opt->password : "");
	snprintf(r->username, sizeof r->username, "%s", opt->username ? opt->username : "");
	r->opt.password = r->password;
	r->opt.username = r->username;
	if (r->opt.encodings == 0)
		r->opt.encodings = RFB_ENC_ALL;
	r->st = RFB_VERSION;
}

void rfb_cleanup(struct rfb *r)
{
	if (r->zrle_on)
		inflateEnd(&r->zrle);
	for (int i = 0; i < 4; i++)
		if (r->tight_on[i])
			inflateEnd(&r->tight[i]);
	if (r->tjd != NULL)
		tjDestroy(r->tjd);
	buf_free(&r->in);
	buf_free(&r->out);
	buf_free(&r->z);
	free(r->fb);
	free(r->cover);
	free(r->cursor);
	explicit_bzero(r->password, sizeof r->password);
	memset(r, 0, sizeof *r);
}

/* ---- output -------------------------------------------------------------- */

static void put8(struct rfb *r, uint8_t v) { buf_append(&r->out, &v, 1); }
static void put16(struct rfb *r, uint16_t v) { uint8_t b[2] = { v >> 8, v & 0xff }; buf_append(&r->out, b, 2); }
static void put32(struct rfb *r, uint32_t v)
{
	uint8_t b[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff };
	buf_append(&r->out, b, 4);
}

void rfb_request(struct rfb *r, bool incremental)
{
	if (r->st != RFB_NORMAL || r->w == 0 || r->h == 0)
		return;
	put8(r, 3);
	put8(r, incremental);
	put16(r, 0);
	put16(r, 0);
	put16(r, (uint16_t)r->w);
	put16(r, (uint16_t)r->h);
}

void rfb_ping(struct rfb *r)
{
	if (r->st != RFB_NORMAL)
		return;
	put8(r, 3);
	put8(r, 0);
	put16(r, 0);
	put16(r, 0);
	put16(r, 1);
	put16(r, 1);
}

void rfb_key(struct rfb *r, uint32_t keysym, uint32_t scancode, bool down)
{
	if (r->qemu_keys && scancode != 0) {
		put8(r, 255);
		put8(r, 0);
		put16(r, down);
		put32(r, keysym);
		put32(r, scancode);
		return;
	}
	put8(r, 4);
	put8(r, down);
	put16(r, 0);
	put32(r, keysym);
}

void rfb_pointer(struct rfb *r, uint16_t x, uint16_t y, uint32_t buttons)
{
	r->px = x;
	r->py = y;
	r->buttons = buttons & 0xff;
	put8(r, 5);
	put8(r, (uint8_t)r->buttons);
	put16(r, x);
	put16(r, y);
}

/* SetPixelFormat (32 bpp, depth 24, little-endian, R<<16 G<<8 B), SetEncodings, a full request. */
static void send_setup(struct rfb *r)
{
	static const struct { uint32_t bit; int32_t enc; } order[] = {
		{ RFB_ENC_TIGHT, 7 }, { RFB_ENC_ZRLE, 16 }, { RFB_ENC_HEXTILE, 5 },
		{ RFB_ENC_COPYRECT, 1 }, { RFB_ENC_RAW, 0 },
	};
	int32_t encs[16];
	uint16_t n = 0;

	put8(r, 0);
	put8(r, 0); put8(r, 0); put8(r, 0);
	put8(r, 32); put8(r, 24); put8(r, 0); put8(r, 1);
	put16(r, 255); put16(r, 255); put16(r, 255);
	put8(r, 16); put8(r, 8); put8(r, 0);
	put8(r, 0); put8(r, 0); put8(r, 0);
	for (size_t i = 0; i < ARRAY_LEN(order); i++)
		if (r->opt.encodings & order[i].bit)
			encs[n++] = order[i].enc;
	if ((r->opt.encodings & RFB_ENC_TIGHT) && r->opt.jpeg_quality >= 0)
		encs[n++] = -32 + r->opt.jpeg_quality;	/* -32 .. -23 */
	if (r->opt.encodings & RFB_ENC_TIGHT)
		encs[n++] = -254;	/* compression level 2: cheap for the server */
	encs[n++] = RFB_PSEUDO_DESKTOPSIZE;
	encs[n++] = RFB_PSEUDO_EXTDESKTOPSIZE;
	encs[n++] = RFB_PSEUDO_LASTRECT;
	encs[n++] = RFB_PSEUDO_CURSOR;
	encs[n++] = RFB_PSEUDO_QEMUKEY;
	put8(r, 2);
	put8(r, 0);
	put16(r, n);
	for (uint16_t i = 0; i < n; i++)
		put32(r, (uint32_t)encs[i]);
	rfb_request(r, false);
}

/* ---- VNC authentication ---------------------------------------------------- */

void rfb_des(const uint8_t key[8], const uint8_t in[8], uint8_t out[8])
{
	DES_key_schedule ks;
	DES_cblock k;

	memcpy(k, key, 8);
	DES_set_key_unchecked(&k, &ks);
	DES_ecb_encrypt((const_DES_cblock *)in, (DES_cblock *)out, &ks, DES_ENCRYPT);
	explicit_bzero(&ks, sizeof ks);
	explicit_bzero(k, sizeof k);
}

void rfb_vnc_response(const char *password, const uint8_t challenge[16], uint8_t out[16])
{
	uint8_t key[8] = { 0 };
	size_t n = strlen(password);

	for (size_t i = 0; i < 8 && i < n; i++) {
		uint8_t c = (uint8_t)password[i], rev = 0;
		for (int b = 0; b < 8; b++)
			if (c & (1u << b))
				rev |= (uint8_t)(0x80u >> b);
		key[i] = rev;
	}
	rfb_des(key, challenge, out);
	rfb_des(key, challenge + 8, out + 8);
	explicit_bzero(key, sizeof key);
}

/* ---- input helpers --------------------------------------------------------- */

size_t rfb_avail(const struct rfb *r) { return r->in.len - r->in_off; }
const uint8_t *rfb_peek(const struct rfb *r) { return (const uint8_t *)r->in.data + r->in_off; }
void rfb_consume(struct rfb *r, size_t n) { r->in_off += n; }

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* ---- handshake --------------------------------------------------------------- */

static int on_version(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	unsigned major, minor;
	char v[13];

	if (rfb_avail(r) < 12)
		return 0;
	memcpy(v, p, 12);
	v[12] = '\0';
	if (memcmp(v, "RFB ", 4) != 0 || v[7] != '.' || v[11] != '\n' ||
	    strspn(v + 4, "0123456789") != 3 || strspn(v + 8, "0123456789") != 3 ||
	    sscanf(v, "RFB %3u.%3u", &major, &minor) != 2) {
		for (int i = 0; i < 12; i++)
			if (v[i] < 0x20 || v[i] > 0x7e)
				v[i] = '?';
		return rfb_fail(r, SE_PROTOCOL, "not an RFB server: it greeted with \"%.12s\"", v);
	}
	if (major < 3)
		return rfb_fail(r, SE_PROTOCOL, "RFB version %u.%u is too old", major, minor);
	r->minor = major > 3 || minor >= 8 ? 8 : minor == 7 ? 7 : 3;
	snprintf(r->server_version, sizeof r->server_version, "%u.%u", major, minor);
	rfb_consume(r, 12);
	buf_printf(&r->out, "RFB 003.%03d\n", r->minor);
	log_debug("rfb: server %u.%u, speaking 3.%d", major, minor, r->minor);
	rfb_set_state(r, r->minor == 3 ? RFB_SECTYPE33 : RFB_SECTYPES);
	return 1;
}

/* Security passed: 3.8 always reads a result; VNC auth reads one in every version. */
static void after_auth_sent(struct rfb *r)
{
	rfb_set_state(r, RFB_SECRESULT);
}

static void to_init(struct rfb *r)
{
	r->authenticated = true;
	put8(r, 1);	/* ClientInit: shared, other viewers stay */
	rfb_set_state(r, RFB_SERVERINIT);
}

/* The None type was chosen: 3.8 (and VeNCrypt) reads a SecurityResult, 3.3/3.7 do not. */
static void none_chosen(struct rfb *r, bool result_follows)
{
	if (result_follows)
		rfb_set_state(r, RFB_SECRESULT);
	else
		to_init(r);
}

static int on_sectype33(struct rfb *r)
{
	uint32_t t;

	if (rfb_avail(r) < 4)
		return 0;
	t = be32(rfb_peek(r));
	rfb_consume(r, 4);
	r->sectype = t;
	switch (t) {
	case 0: rfb_set_state(r, RFB_REASON); return 1;
	case 1: none_chosen(r, false); return 1;
	case 2: rfb_set_state(r, RFB_VNCAUTH); return 1;
	default: return rfb_fail(r, SE_PROTOCOL, "RFB 3.3 server asked for security type %u", t);
	}
}

static int on_sectypes(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	bool has[256] = { false };
	char list[128] = "";
	size_t off = 0;
	uint8_t n;

	if (rfb_avail(r) < 1)
		return 0;
	n = p[0];
	if (n == 0) {
		rfb_consume(r, 1);
		rfb_set_state(r, RFB_REASON);
		return 1;
	}
	if (rfb_avail(r) < 1u + n)
		return 0;
	for (int i = 0; i < n; i++) {
		has[p[1 + i]] = true;
		if (off < sizeof list - 8)
			off += (size_t)snprintf(list + off, sizeof list - off, "%s%u", i ? "," : "", p[1 + i]);
	}
	rfb_consume(r, 1u + n);
	if (has[19] && r->opt.tls)
		r->sectype = 19;
	else if (has[2] && r->password[0] != '\0')
		r->sectype = 2;
	else if (has[1])
		r->sectype = 1;
	else if (has[2])
		return rfb_fail(r, SE_CONFIG, "the server wants VNC authentication and no password is stored");
	else
		return rfb_fail(r, SE_UNSUPPORTED, "no security type in common (server offers %s%s)", list,
		                has[19] ? "; VeNCrypt is turned off by ?tls=off" : "");
	put8(r, (uint8_t)r->sectype);
	if (r->sectype == 1)
		none_chosen(r, r->minor >= 8);
	else if (r->sectype == 2)
		rfb_set_state(r, RFB_VNCAUTH);
	else
		rfb_set_state(r, RFB_VENCRYPT_VERSION);
	return 1;
}

static int on_reason(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	uint32_t len;
	char text[120];

	if (rfb_avail(r) < 4)
		return 0;
	len = be32(p);
	if (rfb_avail(r) < 4 + (size_t)(len < sizeof text ? len : sizeof text - 1))
		return 0;
	len = len < sizeof text ? len : sizeof text - 1;
	for (uint32_t i = 0; i < len; i++)
		text[i] = p[4 + i] >= 0x20 && p[4 + i] < 0x7f ? (char)p[4 + i] : '?';
	text[len] = '\0';
	rfb_consume(r, rfb_avail(r));
	/* A reason after a failed SecurityResult is the credentials' fault; before, the server's. */
	return rfb_fail(r, r->sectype == 0 || r->sectype == 1 ? SE_OFFLINE : SE_AUTH,
	                "the server refused the connection: %s", text[0] ? text : "(no reason given)");
}

static int on_vncauth(struct rfb *r)
{
	uint8_t resp[16];

	if (rfb_avail(r) < 16)
		return 0;
	if (r->password[0] == '\0')
		return rfb_fail(r, SE_CONFIG, "the server wants VNC authentication and no password is stored");
	rfb_vnc_response(r->password, rfb_peek(r), resp);
	rfb_consume(r, 16);
	buf_append(&r->out, resp, 16);
	explicit_bzero(resp, sizeof resp);
	after_auth_sent(r);
	return 1;
}

static int on_secresult(struct rfb *r)
{
	uint32_t v;

	if (rfb_avail(r) < 4)
		return 0;
	v = be32(rfb_peek(r));
	rfb_consume(r, 4);
	if (v == 0) {
		to_init(r);
		return 1;
	}
	if (r->minor >= 8) {
		r->sectype = r->sectype ? r->sectype : 2;
		rfb_set_state(r, RFB_REASON);
		return 1;
	}
	return rfb_fail(r, SE_AUTH, "authentication failed%s", v == 2 ? ": too many attempts" : "");
}

static int on_vencrypt_version(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);

	if (rfb_avail(r) < 2)
		return 0;
	if (p[0] != 0 || p[1] < 2)
		return rfb_fail(r, SE_UNSUPPORTED, "VeNCrypt version %u.%u (0.2 needed)", p[0], p[1]);
	rfb_consume(r, 2);
	put8(r, 0);
	put8(r, 2);
	rfb_set_state(r, RFB_VENCRYPT_ACK);
	return 1;
}

static int on_vencrypt_ack(struct rfb *r)
{
	if (rfb_avail(r) < 1)
		return 0;
	if (rfb_peek(r)[0] != 0)
		return rfb_fail(r, SE_PROTOCOL, "the server refused VeNCrypt 0.2");
	rfb_consume(r, 1);
	rfb_set_state(r, RFB_VENCRYPT_TYPES);
	return 1;
}

/* VeNCrypt sub-types in order of preference; X509 ones only when allowed. */
static const struct { uint32_t type; bool x509, vnc, plain; } subtypes[] = {
	{ 261, true, true, false },	/* X509Vnc */
	{ 262, true, false, true },	/* X509Plain */
	{ 260, true, false, false },	/* X509None */
	{ 258, false, true, false },	/* TLSVnc */
	{ 259, false, false, true },	/* TLSPlain */
	{ 257, false, false, false },	/* TLSNone */
};

static int on_vencrypt_types(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	bool pw = r->password[0] != '\0';
	uint8_t n;

	if (rfb_avail(r) < 1)
		return 0;
	n = p[0];
	if (rfb_avail(r) < 1 + 4 * (size_t)n)
		return 0;
	r->subtype = 0;
	for (size_t k = 0; k < ARRAY_LEN(subtypes) && r->subtype == 0; k++) {
		if ((subtypes[k].x509 && !r->opt.x509) || ((subtypes[k].vnc || subtypes[k].plain) && !pw) ||
		    (subtypes[k].plain && r->username[0] == '\0'))
			continue;
		for (int i = 0; i < n; i++)
			if (be32(p + 1 + 4 * i) == subtypes[k].type)
				r->subtype = subtypes[k].type;
	}
	rfb_consume(r, 1 + 4 * (size_t)n);
	if (r->subtype == 0)
		return rfb_fail(r, SE_UNSUPPORTED, "no VeNCrypt sub-type in common (TLS or X509 with "
		                "None, VNC or Plain%s); try ?tls=off", r->opt.x509 ? "" : ", X509 needs ?tls=insecure or a valid certificate");
	put32(r, r->subtype);
	rfb_set_state(r, RFB_VENCRYPT_TLSACK);
	return 1;
}

static int on_vencrypt_tlsack(struct rfb *r)
{
	if (rfb_avail(r) < 1)
		return 0;
	if (rfb_peek(r)[0] != 1)
		return rfb_fail(r, SE_PROTOCOL, "the server refused VeNCrypt sub-type %u", r->subtype);
	rfb_consume(r, 1);
	rfb_set_state(r, RFB_TLS);
	return 2;	/* the driver starts TLS: nothing more until rfb_tls_ready */
}

int rfb_tls_ready(struct rfb *r)
{
	size_t ul = strlen(r->username), pl = strlen(r->password);

	if (r->st != RFB_TLS)
		return rfb_fail(r, SE_PROTOCOL, "TLS finished outside VeNCrypt");
	switch (r->subtype) {
	case 258: case 261:
		rfb_set_state(r, RFB_VNCAUTH);
		break;
	case 259: case 262:
		put32(r, (uint32_t)ul);
		put32(r, (uint32_t)pl);
		buf_append(&r->out, r->username, ul);
		buf_append(&r->out, r->password, pl);
		after_auth_sent(r);
		break;
	default:
		none_chosen(r, true);
		break;
	}
	return rfb_feed(r, NULL, 0);
}

static int on_serverinit(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	uint32_t w, h, nlen;

	if (rfb_avail(r) < 24)
		return 0;
	w = be16(p);
	h = be16(p + 2);
	nlen = be32(p + 20);
	if (nlen > 1u << 16)
		return rfb_fail(r, SE_PROTOCOL, "ServerInit with a name of %u bytes", nlen);
	if (rfb_avail(r) < 24 + (size_t)nlen)
		return 0;
	if (w == 0 || h == 0 || w > RFB_MAX_DIM || h > RFB_MAX_DIM)
		return rfb_fail(r, SE_PROTOCOL, "ServerInit with a %ux%u framebuffer", w, h);
	snprintf(r->name, sizeof r->name, "%.*s", (int)(nlen < sizeof r->name ? nlen : sizeof r->name - 1),
	         (const char *)p + 24);
	for (char *c = r->name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	rfb_consume(r, 24 + (size_t)nlen);
	rfb_resize(r, w, h);
	rfb_set_state(r, RFB_NORMAL);
	send_setup(r);
	return 1;
}

void rfb_resize(struct rfb *r, uint32_t w, uint32_t h)
{
	free(r->fb);
	free(r->cover);
	r->w = w;
	r->h = h;
	r->fb = xcalloc((size_t)w * h, 4);
	r->cover_left = ((w + 63) / 64) * ((h + 63) / 64);
	r->cover = xcalloc(r->cover_left, 1);
	r->complete = false;
	r->resizes++;
	r->changes++;
}

void rfb_painted(struct rfb *r, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	uint32_t cols = (r->w + 63) / 64;

	r->changes++;
	r->upd_real = true;
	if (r->complete || w == 0 || h == 0)
		return;
	for (uint32_t cy = y / 64; cy <= (y + h - 1) / 64; cy++)
		for (uint32_t cx = x / 64; cx <= (x + w - 1) / 64; cx++)
			if (!r->cover[cy * cols + cx]) {
				r->cover[cy * cols + cx] = 1;
				r->cover_left--;
			}
	r->complete = r->cover_left == 0;
}

/* ---- server messages ------------------------------------------------------- */

/*
 * The update ended: ask for the next. Incremental, except after a
 * DesktopSize resize, or an update that painted pixels and still left parts
 * unpainted. After an empty update the driver asks later (request_deferred). Never after an ExtendedDesktopSize rectangle: servers answer
 * every full request with one, and TigerVNC sends the pixels in a later
 * update (rfb.md 4.4).
 */
static void update_done(struct rfb *r)
{
	bool full = r->want_full || (!r->complete && r->upd_real && !r->upd_ext);

	bool empty = r->upd_rects == 0;

	r->in_update = false;
	r->updates++;
	r->messages++;
	r->want_full = r->upd_real = r->upd_ext = false;
	r->upd_rects = 0;
	/* Some servers answer at once with nothing: asking again at once would spin. */
	if (empty && !full)
		r->request_deferred = true;
	else
		rfb_request(r, !full);
}

static int on_message(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	int rc;

	if (r->skip > 0) {
		size_t n = rfb_avail(r) < r->skip ? rfb_avail(r) : (size_t)r->skip;
		rfb_consume(r, n);
		r->skip -= n;
		if (r->skip == 0)
			r->messages++;
		return r->skip == 0 ? 1 : 0;
	}
	if (r->in_update) {
		if (r->rects_left == 0) {
			update_done(r);
			return 1;
		}
		if (!r->rect_open) {
			if (rfb_avail(r) < 12)
				return 0;
			r->rx = be16(p);
			r->ry = be16(p + 2);
			r->rw = be16(p + 4);
			r->rh = be16(p + 6);
			r->renc = (int32_t)be32(p + 8);
			r->rpos = 0;
			r->rect_open = true;
			rfb_consume(r, 12);
		}
		rc = rfb_decode_rect(r);
		if (rc <= 0)
			return rc;
		r->rect_open = false;
		r->upd_rects++;
		if (r->renc == RFB_PSEUDO_LASTRECT)
			r->rects_left = 0;
		else if (r->rects_left != 0xffffffffu)
			r->rects_left--;
		return 1;
	}
	if (rfb_avail(r) < 1)
		return 0;
	switch (p[0]) {
	case 0:	/* FramebufferUpdate */
		if (rfb_avail(r) < 4)
			return 0;
		r->rects_left = be16(p + 2) == 0xffff ? 0xffffffffu : be16(p + 2);
		r->in_update = true;
		r->rect_open = false;
		rfb_consume(r, 4);
		return 1;
	case 1: {	/* SetColourMapEntries: not used with true colour; skipped */
		size_t n;
		if (rfb_avail(r) < 6)
			return 0;
		n = 6 + 6 * (size_t)be16(p + 4);
		if (rfb_avail(r) < n)
			return 0;
		rfb_consume(r, n);
		r->messages++;
		return 1;
	}
	case 2:	/* Bell */
		rfb_consume(r, 1);
		r->messages++;
		return 1;
	case 3:	/* ServerCutText: read and discarded, whatever its length */
		if (rfb_avail(r) < 8)
			return 0;
		r->skip = be32(p + 4);
		rfb_consume(r, 8);
		if (r->skip == 0)
			r->messages++;
		return 1;
	default:
		return rfb_fail(r, SE_PROTOCOL, "unknown server message type %u", p[0]);
	}
}

int rfb_feed(struct rfb *r, const void *data, size_t n)
{
	int rc = 1;

	if (r->st == RFB_FAILED)
		return -1;
	if (n > 0)
		buf_append(&r->in, data, n);
	while (rc == 1) {
		switch (r->st) {
		case RFB_VERSION: rc = on_version(r); break;
		case RFB_SECTYPE33: rc = on_sectype33(r); break;
		case RFB_SECTYPES: rc = on_sectypes(r); break;
		case RFB_REASON: rc = on_reason(r); break;
		case RFB_VNCAUTH: rc = on_vncauth(r); break;
		case RFB_SECRESULT: rc = on_secresult(r); break;
		case RFB_VENCRYPT_VERSION: rc = on_vencrypt_version(r); break;
		case RFB_VENCRYPT_ACK: rc = on_vencrypt_ack(r); break;
		case RFB_VENCRYPT_TYPES: rc = on_vencrypt_types(r); break;
		case RFB_VENCRYPT_TLSACK: rc = on_vencrypt_tlsack(r); break;
		case RFB_TLS: rc = 2; break;
		case RFB_SERVERINIT: rc = on_serverinit(r); break;
		case RFB_NORMAL: rc = on_message(r); break;
		case RFB_FAILED: case RFB__STATES: rc = -1; break;
		}
	}
	/* Drop what was consumed once it is most of the buffer. */
	if (r->in_off > 0 && (r->in_off == r->in.len || r->in_off > (1u << 16))) {
		memmove(r->in.data, r->in.data + r->in_off, r->in.len - r->in_off);
		r->in.len -= r->in_off;
		r->in_off = 0;
	}
	return rc < 0 ? -1 : rc == 2 ? 1 : 0;
}

uint32_t rfb_parse_encodings(const char *list, char *why, size_t len)
{
	static const struct { const char *name; uint32_t bit; } names[] = {
		{ "raw", RFB_ENC_RAW }, { "copyrect", RFB_ENC_COPYRECT }, { "hextile", RFB_ENC_HEXTILE },
		{ "zrle", RFB_ENC_ZRLE }, { "tight", RFB_ENC_TIGHT },
	};
	uint32_t set = 0;
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		uint32_t bit = 0;
		for (size_t i = 0; i < ARRAY_LEN(names); i++)
			if (strlen(names[i].name) == n && strncasecmp(names[i].name, p, n) == 0)
				bit = names[i].bit;
		if (bit == 0) {
			snprintf(why, len, "'%.*s' is not an encoding (raw, copyrect, hextile, zrle, tight)",
			         (int)(n > 20 ? 20 : n), p);
			return 0;
		}
		set |= bit;
		p += n;
		if (*p == ',')
			p++;
	}
	if (set == 0)
		snprintf(why, len, "an empty encodings list");
	return set;
}

/* ---- scancodes ------------------------------------------------------------ */

/* XT scancodes of USB HID usages 0x04..0x65 (0: none), E0-prefixed ones as 0x80|code. */
static const uint8_t xt[0x66] = {
	[0x04] = 0x1e, 0x30, 0x2e, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32,
	0x31, 0x18, 0x19, 0x10, 0x13, 0x1f, 0x14, 0x16, 0x2f, 0x11, 0x2d, 0x15, 0x2c,
	[0x1e] = 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	[0x28] = 0x1c, 0x01, 0x0e, 0x0f, 0x39, 0x0c, 0x0d, 0x1a, 0x1b, 0x2b, 0x2b, 0x27, 0x28,
	0x29, 0x33, 0x34, 0x35, 0x3a,
	[0x3a] = 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x57, 0x58,
	[0x46] = 0x54, 0x46, 0xc6, 0xd2, 0xc7, 0xc9, 0xd3, 0xcf, 0xd1, 0xcd, 0xcb, 0xd0, 0xc8, 0x45,
	[0x65] = 0xdd,
};

uint32_t rfb_scancode(uint8_t usage)
{
	return usage < sizeof xt ? xt[usage] : 0;
}

uint32_t rfb_mod_scancode(uint8_t bit)
{
	static const uint8_t mod_xt[8] = { 0x1d, 0x2a, 0x38, 0xdb, 0x9d, 0x36, 0xb8, 0xdc };

	for (int i = 0; i < 8; i++)
		if (bit == (1u << i))
			return mod_xt[i];
	return 0;
}
