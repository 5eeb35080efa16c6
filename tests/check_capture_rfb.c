/*
 * check_capture_rfb.c - the RFB engine (capture/rfb.c, rfb_decode.c) without
 * sockets: DES and VNC authentication known answers (rfb.md 1.4), the
 * handshake of each protocol version with its SecurityResult rules (1.3),
 * every decoder on well-formed and malformed rectangles, and the input
 * messages. Server bytes are written here by hand, byte for byte.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "capture.h"
#include "check_run.h"
#include "rfb.h"
#include "wsc.h"

static struct rfb r;
static const struct rfb_opts opts = { .password = "password", .username = "", .jpeg_quality = 8 };

static void hexeq(const uint8_t *got, size_t n, const char *want)
{
	char hex[65];

	hex_encode(got, n, hex);
	ck_assert_str_eq(hex, want);
}

/* Server bytes; a string of escapes since every byte matters. */
static int feed(const void *p, size_t n) { return rfb_feed(&r, p, n); }
#define FEED(lit) feed(lit, sizeof(lit) - 1)

/* The client's output so far as hex, then cleared. */
static char out_hex[4096];
static const char *take_out(void)
{
	size_t n = r.out.len < 2000 ? r.out.len : 2000;
	hex_encode((const uint8_t *)r.out.data, n, out_hex);
	buf_reset(&r.out);
	return out_hex;
}

START_TEST(des_known_answers)
{
	uint8_t out[16], challenge[16];

	rfb_des((const uint8_t *)"\x01\x23\x45\x67\x89\xab\xcd\xef", (const uint8_t *)"Now is t", out);
	hexeq(out, 8, "3fa40e8a984d4815");
	for (int i = 0; i < 16; i++)
		challenge[i] = (uint8_t)i;
	rfb_vnc_response("password", challenge, out);
	hexeq(out, 16, "b866924125c8eebb9debc1db61c538e2");
	/* The key is the bit-reversed password: 0e86ceceeef64e26 for "password". */
	rfb_des((const uint8_t *)"\x0e\x86\xce\xce\xee\xf6\x4e\x26", challenge, out + 8);
	hexeq(out, 8, "b866924125c8eebb");
	/* Only 8 bytes count. */
	rfb_vnc_response("password-longer", challenge, out);
	hexeq(out, 16, "b866924125c8eebb9debc1db61c538e2");
}
END_TEST

static const uint8_t serverinit_64[] = {
	0, 64, 0, 64, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 0, 0, 0, 4, 't', 'e', 's', 't',
};

/* Brings r to the normal state, 3.8 None, a 64x64 framebuffer; output dropped. */
static void connect38(uint32_t encodings)
{
	struct rfb_opts o = opts;

	o.encodings = encodings;
	rfb_init(&r, &o);
	ck_assert_int_eq(FEED("RFB 003.008\n\x01\x01\0\0\0\0"), 0);
	ck_assert_int_eq(feed(serverinit_64, sizeof serverinit_64), 0);
	ck_assert_int_eq(r.st, RFB_NORMAL);
	buf_reset(&r.out);
}

static void teardown(void) { rfb_cleanup(&r); }

START_TEST(version_choice)
{
	static const struct { const char *banner, *answer; } t[] = {
		{ "RFB 003.003\n", "RFB 003.003\n" }, { "RFB 003.005\n", "RFB 003.003\n" },
		{ "RFB 003.007\n", "RFB 003.007\n" }, { "RFB 003.008\n", "RFB 003.008\n" },
		{ "RFB 003.889\n", "RFB 003.008\n" }, { "RFB 004.001\n", "RFB 003.008\n" },
		{ "RFB 004.000\n", "RFB 003.008\n" },
	};

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		rfb_init(&r, &opts);
		ck_assert_int_eq(feed(t[i].banner, 12), 0);
		ck_assert_int_eq(r.out.len, 12);
		ck_assert_msg(memcmp(r.out.data, t[i].answer, 12) == 0, "%s", t[i].banner);
		rfb_cleanup(&r);
	}
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("HTTP/1.1 400"), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "not an RFB server"));
	rfb_cleanup(&r);
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 002.000\n"), -1);
	ck_assert_int_eq(r.err, SE_PROTOCOL);
}
END_TEST

START_TEST(none_33_37_38)
{
	/* 3.3 None: no SecurityResult, ClientInit at once. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.003\n\0\0\0\x01"), 0);
	ck_assert_str_eq(take_out(), "524642203030332e3030330a01");
	ck_assert_int_eq(r.st, RFB_SERVERINIT);
	rfb_cleanup(&r);
	/* 3.7 None: choose 1, no SecurityResult. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.007\n\x01\x01"), 0);
	ck_assert_str_eq(take_out(), "524642203030332e3030370a0101");
	ck_assert_int_eq(r.st, RFB_SERVERINIT);
	rfb_cleanup(&r);
	/* 3.8 None: a SecurityResult. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.008\n\x02\x01\x10"), 0);
	ck_assert_str_eq(take_out(), "524642203030332e3030380a01");
	ck_assert_int_eq(r.st, RFB_SECRESULT);
	ck_assert_int_eq(FEED("\0\0\0\0"), 0);
	ck_assert_str_eq(take_out(), "01");
	ck_assert(r.authenticated);
	ck_assert_int_eq(feed(serverinit_64, sizeof serverinit_64), 0);
	ck_assert_int_eq(r.st, RFB_NORMAL);
	ck_assert_uint_eq(r.w, 64);
	ck_assert_str_eq(r.name, "test");
	/* SetPixelFormat, SetEncodings, a full FramebufferUpdateRequest. */
	ck_assert_str_eq(take_out(), "00000000" "20180001" "00ff00ff00ff" "100800" "000000"
	                 "0200000c" "00000007" "00000010" "00000005" "00000001" "00000000"
	                 "ffffffe8" "ffffff02" "ffffff21" "fffffecc" "ffffff20" "ffffff11" "fffffefe"
	                 "03000000000000400040");
}
END_TEST

START_TEST(vncauth_each_version)
{
	uint8_t ch[16];

	for (int i = 0; i < 16; i++)
		ch[i] = (uint8_t)i;
	/* 3.3 + VNC auth: the SecurityResult must be read, not taken for ServerInit. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.003\n\0\0\0\x02"), 0);
	buf_reset(&r.out);
	ck_assert_int_eq(feed(ch, 16), 0);
	ck_assert_str_eq(take_out(), "b866924125c8eebb9debc1db61c538e2");
	ck_assert_int_eq(r.st, RFB_SECRESULT);
	ck_assert_int_eq(FEED("\0\0\0\0"), 0);
	ck_assert_int_eq(feed(serverinit_64, sizeof serverinit_64), 0);
	ck_assert_uint_eq(r.w, 64);
	ck_assert_uint_eq(r.h, 64);
	rfb_cleanup(&r);
	/* 3.7 wrong password: result 1 and no reason. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.007\n\x01\x02"), 0);
	ck_assert_str_eq(take_out(), "524642203030332e3030370a02");
	ck_assert_int_eq(feed(ch, 16), 0);
	ck_assert_int_eq(FEED("\0\0\0\x01"), -1);
	ck_assert_int_eq(r.err, SE_AUTH);
	rfb_cleanup(&r);
	/* 3.8 wrong password: result 1 and a reason. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.008\n\x02\x01\x02"), 0);
	ck_assert_str_eq(take_out(), "524642203030332e3030380a02");
	ck_assert_int_eq(feed(ch, 16), 0);
	ck_assert_int_eq(FEED("\0\0\0\x01\0\0\0\x0ewrong password"), -1);
	ck_assert_int_eq(r.err, SE_AUTH);
	ck_assert_ptr_nonnull(strstr(r.why, "wrong password"));
	rfb_cleanup(&r);
	/* No password stored, server insists: a configuration error. */
	rfb_init(&r, &(struct rfb_opts){ .password = "" });
	ck_assert_int_eq(FEED("RFB 003.008\n\x01\x02"), -1);
	ck_assert_int_eq(r.err, SE_CONFIG);
}
END_TEST

START_TEST(refusals)
{
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.008\n\0\0\0\0\x09too many!"), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "too many!"));
	rfb_cleanup(&r);
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.003\n\0\0\0\0\0\0\0\x03" "bad"), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "bad"));
	rfb_cleanup(&r);
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.008\n\x02\x05\x06"), -1);
	ck_assert_int_eq(r.err, SE_UNSUPPORTED);
	rfb_cleanup(&r);
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.003\n\0\0\0\x13"), -1);
}
END_TEST

START_TEST(vencrypt_tls_vnc)
{
	struct rfb_opts o = opts;

	o.tls = true;
	rfb_init(&r, &o);
	ck_assert_int_eq(FEED("RFB 003.008\n\x02\x02\x13"), 0);
	ck_assert_str_eq(take_out(), "524642203030332e3030380a13");
	ck_assert_int_eq(FEED("\0\x02"), 0);
	ck_assert_str_eq(take_out(), "0002");
	/* X509Vnc is not allowed without o.x509: TLSVnc (258) is chosen. */
	ck_assert_int_eq(FEED("\0\x03\0\0\x01\x05\0\0\x01\x02\0\0\x01\x01"), 0);
	ck_assert_str_eq(take_out(), "00000102");
	ck_assert_int_eq(FEED("\x01"), 1);
	ck_assert_int_eq(r.st, RFB_TLS);
	ck_assert_int_eq(rfb_tls_ready(&r), 0);
	ck_assert_int_eq(r.st, RFB_VNCAUTH);
}
END_TEST

/* A FramebufferUpdate header with n rectangles. */
static void update(uint16_t n)
{
	uint8_t h[4] = { 0, 0, (uint8_t)(n >> 8), (uint8_t)n };
	ck_assert_int_eq(feed(h, 4), 0);
}

static int rect(uint16_t x, uint16_t y, uint16_t w, uint16_t h, int32_t enc, const void *data, size_t n)
{
	uint8_t b[12] = { x >> 8, x, y >> 8, y, w >> 8, w, h >> 8, h, (uint32_t)enc >> 24,
	                  (uint32_t)enc >> 16, (uint32_t)enc >> 8, (uint32_t)enc };
	int rc = feed(b, 12);
	return rc == 0 && n > 0 ? feed(data, n) : rc;
}

static uint32_t px(uint32_t x, uint32_t y) { return r.fb[y * r.w + x] & 0xffffff; }

START_TEST(raw_copyrect)
{
	uint8_t raw[64 * 64 * 4];
	uint64_t before;

	connect38(0);
	for (int i = 0; i < 64 * 64; i++) {
		raw[4 * i] = (uint8_t)i;		/* B */
		raw[4 * i + 1] = (uint8_t)(i >> 8);	/* G */
		raw[4 * i + 2] = 0x80;			/* R */
		raw[4 * i + 3] = 0;
	}
	update(2);
	/* Byte by byte: the decoder keeps its place. */
	ck_assert_int_eq(rect(0, 0, 64, 64, 0, NULL, 0), 0);
	for (size_t i = 0; i < sizeof raw; i++)
		ck_assert_int_eq(feed(raw + i, 1), 0);
	ck_assert_uint_eq(px(1, 0), 0x800001);
	ck_assert_uint_eq(px(0, 1), 0x800040);
	ck_assert(!r.complete || r.updates == 0);
	/* CopyRect of the top-left 16x16 to 8,8 (overlapping). */
	ck_assert_int_eq(rect(8, 8, 16, 16, 1, "\0\0\0\0", 4), 0);
	ck_assert_uint_eq(px(8, 8), 0x800000);
	ck_assert_uint_eq(px(23, 23), (0x800000u | (15 * 64 + 15)));
	ck_assert_uint_eq(r.updates, 1);
	ck_assert(r.complete);
	/* The next request is incremental now that everything is painted. */
	ck_assert_str_eq(take_out(), "0301000000000040" "0040");
	before = r.changes;
	update(1);
	ck_assert_int_eq(rect(60, 60, 8, 8, 1, "\0\0\0\0", 4), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "outside the 64x64 framebuffer"));
	ck_assert_uint_eq(r.changes, before);
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 64, 64, 1, "\0\x01\0\0", 4), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "CopyRect source"));
}
END_TEST

START_TEST(hextile)
{
	/* Tile 1 (16x16): background red, 2 subrects with the foreground green; tile 2: raw bits
	 * missing: it carries the background over; tile 3: raw; tile 4: coloured subrects. */
	static const uint8_t data[] = {
		0x0e, 0, 0, 0xff, 0, 0, 0xff, 0, 0, 2, 0x00, 0x00, 0x11, 0x11,
		0x00,
		0x01,
	};
	uint8_t tile3raw[16 * 16 * 4], t4[] = { 0x1a, 1, 1, 1, 0, 1, 0xff, 0, 0, 0, 0x33, 0x11 };

	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 64, 16, 5, data, sizeof data), 0);
	memset(tile3raw, 0x40, sizeof tile3raw);
	ck_assert_int_eq(feed(tile3raw, sizeof tile3raw), 0);
	ck_assert_int_eq(feed(t4, sizeof t4), 0);
	ck_assert_uint_eq(r.updates, 1);
	ck_assert_uint_eq(px(5, 5), 0xff0000);
	ck_assert_uint_eq(px(0, 0), 0x00ff00);
	ck_assert_uint_eq(px(17, 1), 0xff0000);
	ck_assert_uint_eq(px(16, 0), 0xff0000);	/* no subrects: background only */
	ck_assert_uint_eq(px(33, 3), 0x404040);
	ck_assert_uint_eq(px(48 + 2, 2), 0x010101);
	ck_assert_uint_eq(px(48 + 3, 3), 0x0000ff);
	/* A subrectangle past its tile. */
	update(1);
	ck_assert_int_eq(rect(60, 0, 4, 4, 5, "\x0a\0\0\0\0\x01\x22\x33", 8), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "outside its 4x4 tile"));
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 16, 16, 5, "\xe0", 1), -1);
}
END_TEST

/* Compresses n bytes with stream z (kept across calls, like a server's) into out; returns length. */
static size_t zpack(z_stream *z, const void *in, size_t n, uint8_t *out, size_t max)
{
	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)n;
	z->next_out = out;
	z->avail_out = (uInt)max;
	ck_assert_int_eq(deflate(z, Z_SYNC_FLUSH), Z_OK);
	return max - z->avail_out;
}

static int zrle_rect(z_stream *z, uint16_t x, uint16_t y, uint16_t w, uint16_t h, const void *tiles, size_t n)
{
	uint8_t buf[70000];
	size_t len = zpack(z, tiles, n, buf + 4, sizeof buf - 4);

	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	return rect(x, y, w, h, 16, buf, len + 4);
}

START_TEST(zrle)
{
	z_stream z = { 0 };
	/* Tile 1 64x64 solid blue; then an 8x2 rect: palette of 2, 1 bit; then 4x1 plain RLE;
	 * then 4x1 palette RLE (2 colours); then 2x1 raw. */
	static const uint8_t solid[] = { 1, 0xff, 0, 0 };
	static const uint8_t packed[] = { 2, 0, 0, 0, 0, 0xff, 0, 0xaa, 0x55 };
	static const uint8_t rle[] = { 128, 1, 2, 3, 2, 0, 0xff, 0, 0 };
	static const uint8_t prle[] = { 130, 9, 9, 9, 8, 8, 8, 0x80, 1, 1, 0 };
	static const uint8_t raw[] = { 0, 1, 2, 3, 4, 5, 6 };

	ck_assert_int_eq(deflateInit(&z, 6), Z_OK);
	connect38(0);
	update(5);
	ck_assert_int_eq(zrle_rect(&z, 0, 0, 64, 64, solid, sizeof solid), 0);
	ck_assert_uint_eq(px(63, 63), 0x0000ff);
	ck_assert_int_eq(zrle_rect(&z, 0, 0, 8, 2, packed, sizeof packed), 0);
	ck_assert_uint_eq(px(0, 0), 0x00ff00);
	ck_assert_uint_eq(px(1, 0), 0);
	ck_assert_uint_eq(px(0, 1), 0);
	ck_assert_uint_eq(px(1, 1), 0x00ff00);
	ck_assert_int_eq(zrle_rect(&z, 0, 2, 4, 1, rle, sizeof rle), 0);
	ck_assert_uint_eq(px(2, 2), 0x030201);
	ck_assert_uint_eq(px(3, 2), 0x00ff00);
	ck_assert_int_eq(zrle_rect(&z, 0, 3, 4, 1, prle, sizeof prle), 0);
	ck_assert_uint_eq(px(1, 3), 0x090909);
	ck_assert_uint_eq(px(2, 3), 0x080808);
	ck_assert_int_eq(zrle_rect(&z, 0, 4, 2, 1, raw, sizeof raw), 0);
	ck_assert_uint_eq(px(1, 4), 0x060504);
	ck_assert_uint_eq(r.updates, 1);
	/* Malformed: an undefined sub-encoding, a run past the tile, a short tile, bad zlib. */
	update(1);
	ck_assert_int_eq(zrle_rect(&z, 0, 0, 4, 1, "\x11", 1), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "sub-encoding 17"));
	rfb_cleanup(&r);
	deflateEnd(&z);

	ck_assert_int_eq(deflateInit(&z, 6), Z_OK);
	connect38(0);
	update(1);
	ck_assert_int_eq(zrle_rect(&z, 0, 0, 4, 1, "\x80\1\2\3\x09", 5), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "past its tile"));
	rfb_cleanup(&r);
	deflateEnd(&z);

	ck_assert_int_eq(deflateInit(&z, 6), Z_OK);
	connect38(0);
	update(1);
	ck_assert_int_eq(zrle_rect(&z, 0, 0, 4, 4, "\0\1\2", 3), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "ends inside a tile"));
	rfb_cleanup(&r);
	deflateEnd(&z);

	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 4, 4, 16, "\0\0\0\x04\xde\xad\xbe\xef", 8), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "corrupt"));
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 4, 4, 16, "\x7f\0\0\0", 4), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "compressed bytes"));
}
END_TEST

START_TEST(tight)
{
	z_stream z = { 0 };
	uint8_t msg[20000], pix[16 * 16 * 3];
	size_t n, len;
	unsigned char *jpeg = NULL;
	unsigned long jlen = 0;
	uint8_t rgbx[8 * 8 * 4];
	tjhandle tj = tjInitCompress();

	connect38(0);
	update(5);
	/* Fill: red. */
	ck_assert_int_eq(rect(0, 0, 64, 64, 7, "\x80\xff\0\0", 4), 0);
	ck_assert_uint_eq(px(10, 10), 0xff0000);
	/* Basic, copy filter, raw < 12 bytes: 2x1 pixels inline. */
	ck_assert_int_eq(rect(0, 0, 2, 1, 7, "\x00\x01\x02\x03\x04\x05\x06", 7), 0);
	ck_assert_uint_eq(px(1, 0), 0x040506);
	/* Basic, stream 1, palette of 2, 16x16, zlib. */
	ck_assert_int_eq(deflateInit(&z, 6), Z_OK);
	memset(pix, 0, 32);
	for (int j = 0; j < 16; j++)
		pix[2 * j] = 0x80;	/* leftmost pixel of each row = colour 1 */
	msg[0] = 0x50;
	msg[1] = 1;
	msg[2] = 1;
	memcpy(msg + 3, "\0\0\x10\x20\x30\x40", 6);
	len = zpack(&z, pix, 32, msg + 10, 1000);
	msg[9] = (uint8_t)len;	/* < 128: one byte */
	ck_assert_int_eq(rect(0, 16, 16, 16, 7, msg, 10 + len), 0);
	ck_assert_uint_eq(px(0, 20), 0x203040);
	ck_assert_uint_eq(px(1, 20), 0x000010);
	deflateEnd(&z);
	/* Gradient filter, stream 2, reset first: all-zero differences = black, 4x4 -> 48 bytes. */
	ck_assert_int_eq(deflateInit(&z, 6), Z_OK);
	memset(pix, 0, 48);
	pix[0] = 10;	/* top-left red +10: spreads right and down by prediction */
	msg[0] = 0x64;
	msg[1] = 2;
	len = zpack(&z, pix, 48, msg + 3, 1000);
	msg[2] = (uint8_t)len;
	ck_assert_int_eq(rect(32, 32, 4, 4, 7, msg, 3 + len), 0);
	ck_assert_uint_eq(px(32, 32), 0x0a0000);
	ck_assert_uint_eq(px(35, 35), 0x0a0000);
	deflateEnd(&z);
	/* JPEG 8x8 grey. */
	memset(rgbx, 0x80, sizeof rgbx);
	ck_assert_int_eq(tjCompress2(tj, rgbx, 8, 32, 8, TJPF_RGBX, &jpeg, &jlen, TJSAMP_444, 95, 0), 0);
	msg[0] = 0x90;
	n = 1;
	msg[n++] = (uint8_t)(0x80 | (jlen & 0x7f));
	msg[n++] = (uint8_t)((jlen >> 7) & 0x7f);
	memcpy(msg + n, jpeg, jlen);
	ck_assert_int_eq(rect(48, 48, 8, 8, 7, msg, n + jlen), 0);
	ck_assert_uint_le(px(50, 50) >> 16, 0x82);
	ck_assert_uint_ge(px(50, 50) >> 16, 0x7e);
	ck_assert_uint_eq(r.updates, 1);
	/* A JPEG of the wrong size. */
	update(1);
	ck_assert_int_eq(rect(0, 0, 4, 4, 7, msg, n + jlen), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "JPEG"));
	tjFree(jpeg);
	tjDestroy(tj);
	rfb_cleanup(&r);
	/* Undefined control, filter, palette index; too wide. */
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 4, 4, 7, "\xa0", 1), -1);
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 4, 4, 7, "\x40\x07", 2), -1);
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 2, 2, 7, "\x40\x01\x02\0\0\0\1\1\1\2\2\2\x07\0\0\0", 16), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "palette index 7"));
}
END_TEST

START_TEST(pseudo_and_messages)
{
	uint8_t cursor[2 * 2 * 4 + 2] = { 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 0, 0x80, 0x40 };
	static const uint8_t ext[] = { 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 100, 0, 50, 0, 0, 0, 0 };

	connect38(0);
	/* Bell, ServerCutText (discarded), SetColourMapEntries (skipped). */
	ck_assert_int_eq(FEED("\x02\x03\0\0\0\0\0\0\x05hello\x01\0\0\0\0\x01\0\0\0\0\0\0"), 0);
	ck_assert_uint_eq(r.messages, 3);
	update(4);
	ck_assert_int_eq(rect(1, 1, 2, 2, RFB_PSEUDO_CURSOR, cursor, sizeof cursor), 0);
	ck_assert_uint_eq(r.cw, 2);
	ck_assert_uint_eq(r.cursor[0], 0xff030201);
	ck_assert_uint_eq(r.cursor[3], 0xff090909);
	ck_assert_uint_eq(r.cursor[1], 0);
	ck_assert_int_eq(rect(0, 0, 0, 0, RFB_PSEUDO_QEMUKEY, NULL, 0), 0);
	ck_assert(r.qemu_keys);
	ck_assert_int_eq(rect(0, 0, 100, 50, RFB_PSEUDO_EXTDESKTOPSIZE, ext, sizeof ext), 0);
	ck_assert_uint_eq(r.w, 100);
	ck_assert_uint_eq(r.h, 50);
	ck_assert(!r.complete);
	ck_assert_int_eq(rect(0, 0, 200, 100, RFB_PSEUDO_DESKTOPSIZE, NULL, 0), 0);
	ck_assert_uint_eq(r.w, 200);
	/* Not all painted after the resize: the next request is a full one. */
	ck_assert_str_eq(take_out(), "030000000000" "00c80064");
	/* 65535 rectangles until LastRect. */
	update(65535);
	ck_assert_int_eq(rect(0, 0, 200, 100, 7, "\x80\0\0\x07", 4), 0);
	ck_assert_int_eq(rect(0, 0, 0, 0, RFB_PSEUDO_LASTRECT, NULL, 0), 0);
	ck_assert(!r.in_update);
	ck_assert(r.complete);
	/* Keys and pointer: KeyEvent until the server confirms -258, then QEMU's form. */
	buf_reset(&r.out);
	r.qemu_keys = false;
	rfb_key(&r, 0x41, 0x1e, true);
	rfb_pointer(&r, 10, 20, 1);
	ck_assert_str_eq(take_out(), "0401000000000041" "0501000a0014");
	r.qemu_keys = true;
	rfb_key(&r, 0x41, 0x1e, false);
	rfb_key(&r, 0x20ac, 0, true);
	ck_assert_str_eq(take_out(), "ff000000000000410000001e" "04010000000020ac");
	/* Lies: a cursor too large, a resize to 0, an unknown encoding, an unknown message. */
	update(1);
	ck_assert_int_eq(rect(0, 0, 1000, 1000, RFB_PSEUDO_CURSOR, NULL, 0), -1);
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 0, 10, RFB_PSEUDO_DESKTOPSIZE, NULL, 0), -1);
	rfb_cleanup(&r);
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 1, 1, 2, NULL, 0), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "encoding 2"));
	rfb_cleanup(&r);
	connect38(0);
	ck_assert_int_eq(FEED("\x96"), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "type 150"));
	rfb_cleanup(&r);
	/* ServerInit lies. */
	rfb_init(&r, &opts);
	ck_assert_int_eq(FEED("RFB 003.008\n\x01\x01\0\0\0\0"
	                      "\x40\0\x40\0 \x18\0\1\0\xff\0\xff\0\xff\x10\x08\0\0\0\0\0\0\0\0"), -1);
	ck_assert_ptr_nonnull(strstr(r.why, "16384x16384"));
}
END_TEST

START_TEST(empty_update)
{
	connect38(0);
	update(1);
	ck_assert_int_eq(rect(0, 0, 64, 64, 7, "\x80\0\0\x07", 4), 0);
	ck_assert(r.complete);
	ck_assert_str_eq(take_out(), "03010000000000400040");
	/* An update with no rectangle: no request at once (the driver sends it a little later). */
	update(0);
	ck_assert_uint_eq(r.updates, 2);
	ck_assert_uint_eq(r.out.len, 0);
	ck_assert(r.request_deferred);
	/* A non-empty one is answered at once again. */
	update(1);
	ck_assert_int_eq(rect(0, 0, 1, 1, 7, "\x80\0\0\x07", 4), 0);
	ck_assert_str_eq(take_out(), "03010000000000400040");
}
END_TEST

START_TEST(encodings_option)
{
	char why[128];

	ck_assert_uint_eq(rfb_parse_encodings("hextile", why, sizeof why), RFB_ENC_HEXTILE);
	ck_assert_uint_eq(rfb_parse_encodings("raw,ZRLE,tight", why, sizeof why),
	                  RFB_ENC_RAW | RFB_ENC_ZRLE | RFB_ENC_TIGHT);
	ck_assert_uint_eq(rfb_parse_encodings("rre", why, sizeof why), 0);
	ck_assert_ptr_nonnull(strstr(why, "'rre'"));
	connect38(RFB_ENC_HEXTILE);
	rfb_cleanup(&r);
	rfb_init(&r, &(struct rfb_opts){ .encodings = RFB_ENC_HEXTILE, .jpeg_quality = -1 });
	ck_assert_int_eq(FEED("RFB 003.008\n\x01\x01\0\0\0\0"), 0);
	buf_reset(&r.out);
	ck_assert_int_eq(feed(serverinit_64, sizeof serverinit_64), 0);
	/* SetEncodings: hextile, then the five pseudo-encodings. */
	ck_assert_ptr_nonnull(strstr(take_out(), "02000006" "00000005" "ffffff21" "fffffecc" "ffffff20"
	                             "ffffff11" "fffffefe"));
	ck_assert_uint_eq(rfb_scancode(0x04), 0x1e);
	ck_assert_uint_eq(rfb_scancode(0x4f), 0xcd);
	ck_assert_uint_eq(rfb_mod_scancode(KEYMOD_LSHIFT), 0x2a);
}
END_TEST

START_TEST(websocket)
{
	struct wsc c = { 0 };
	struct buf req = BUF_INIT, up = BUF_INIT, down = BUF_INIT, f = BUF_INIT;
	const char *ans = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	                  "Sec-WebSocket-Protocol: binary\r\n\r\n";
	/* One binary frame split across feeds, a ping, a 126-length frame, then a close. */
	uint8_t frames[] = { 0x82, 0x03, 'R', 'F', 'B', 0x89, 0x02, 'h', 'i', 0x82, 0x7e, 0x00, 0x80 };

	wsc_request(&c, "127.0.0.1:6080", "/websockify", &req);
	ck_assert_ptr_nonnull(strstr(req.data, "GET /websockify HTTP/1.1\r\nHost: 127.0.0.1:6080\r\n"));
	ck_assert_ptr_nonnull(strstr(req.data, "Sec-WebSocket-Protocol: binary"));
	/* The RFC 6455 example key, so the expected accept value is known. */
	snprintf(c.key, sizeof c.key, "dGhlIHNhbXBsZSBub25jZQ==");
	ck_assert_int_eq(wsc_feed(&c, ans, 20, &up, &down), 0);
	ck_assert(!c.open);
	ck_assert_int_eq(wsc_feed(&c, ans + 20, strlen(ans) - 20, &up, &down), 0);
	ck_assert(c.open);
	ck_assert(!c.base64);
	ck_assert_int_eq(wsc_feed(&c, frames, 4, &up, &down), 0);
	ck_assert_uint_eq(up.len, 0);
	ck_assert_int_eq(wsc_feed(&c, frames + 4, sizeof frames - 4, &up, &down), 0);
	ck_assert_uint_eq(up.len, 3);
	ck_assert_uint_eq(down.len, 2 + 4 + 2);	/* the pong, masked */
	ck_assert_uint_eq((uint8_t)down.data[0], 0x8a);
	ck_assert_uint_eq((uint8_t)down.data[1], 0x82);
	for (int i = 0; i < 128; i++)
		ck_assert_int_eq(wsc_feed(&c, "z", 1, &up, &down), 0);
	ck_assert_uint_eq(up.len, 3 + 128);
	ck_assert_int_eq(wsc_feed(&c, "\x88\x00", 2, &up, &down), -1);
	ck_assert(c.closed);
	/* Client frames are masked: unmasking gives the payload back. */
	wsc_frame(&c, "hello", 5, &f);
	ck_assert_uint_eq((uint8_t)f.data[0], 0x82);
	ck_assert_uint_eq((uint8_t)f.data[1], 0x85);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(f.data[6 + i] ^ f.data[2 + i % 4], "hello"[i]);
	buf_free(&c.in);
	memset(&c, 0, sizeof c);
	/* A wrong accept value, a refused upgrade, an oversized frame, reserved bits. */
	snprintf(c.key, sizeof c.key, "AAAAAAAAAAAAAAAAAAAAAA==");
	ck_assert_int_eq(wsc_feed(&c, ans, strlen(ans), &up, &down), -1);
	ck_assert_ptr_nonnull(strstr(c.why, "Sec-WebSocket-Accept"));
	buf_free(&c.in);
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(wsc_feed(&c, "HTTP/1.1 404 Not Found\r\n\r\n", 26, &up, &down), -1);
	ck_assert_ptr_nonnull(strstr(c.why, "404"));
	buf_free(&c.in);
	memset(&c, 0, sizeof c);
	c.open = true;
	ck_assert_int_eq(wsc_feed(&c, "\x82\x7f\x00\x00\x00\x00\x10\x00\x00\x00", 10, &up, &down), -1);
	buf_free(&c.in);
	memset(&c, 0, sizeof c);
	c.open = true;
	ck_assert_int_eq(wsc_feed(&c, "\xc2\x00", 2, &up, &down), -1);
	/* base64 subprotocol: text frames decoded. */
	buf_free(&c.in);
	memset(&c, 0, sizeof c);
	c.open = c.base64 = true;
	buf_reset(&up);
	ck_assert_int_eq(wsc_feed(&c, "\x81\x08UkZCIDAw", 10, &up, &down), 0);
	ck_assert_uint_eq(up.len, 6);
	ck_assert(memcmp(up.data, "RFB 00", 6) == 0);
	buf_free(&c.in);
	buf_free(&req);
	buf_free(&up);
	buf_free(&down);
	buf_free(&f);
}
END_TEST

START_TEST(urls)
{
	static const struct {
		const char *url, *host, *path;
		int port;
		bool ws, wss;
		int tls;
		uint32_t enc;
		int jpeg;
		const char *why;	/* NULL: accepted; else part of the reason */
	} t[] = {
		{ "vnc://10.0.0.5", "10.0.0.5", "/", 5900, false, false, TLS_VERIFY, 0, 8, NULL },
		{ "vnc://host:5901/", "host", "/", 5901, false, false, TLS_VERIFY, 0, 8, NULL },
		{ "vnc://[::1]:5902?encodings=hextile,raw&tls=off", "::1", "/", 5902, false, false, TLS_OFF,
		  RFB_ENC_HEXTILE | RFB_ENC_RAW, 8, NULL },
		{ "ws://h:6080/websockify?jpeg=off", "h", "/websockify", 6080, true, false, TLS_VERIFY, 0, -1, NULL },
		{ "wss://bmc.example/kvm/rfb?tls=insecure&jpeg=3", "bmc.example", "/kvm/rfb", 443, true, true,
		  TLS_INSECURE, 0, 3, NULL },
		{ "WS://h", "h", "/", 80, true, false, TLS_VERIFY, 0, 8, NULL },
		{ "http://h", NULL, NULL, 0, false, false, 0, 0, 0, "starts with vnc://" },
		{ "vnc://", NULL, NULL, 0, false, false, 0, 0, 0, "is not vnc://" },
		{ "vnc://h:0", NULL, NULL, 0, false, false, 0, 0, 0, "is not vnc://" },
		{ "vnc://h:65536", NULL, NULL, 0, false, false, 0, 0, 0, "is not vnc://" },
		{ "vnc://h/path", NULL, NULL, 0, false, false, 0, 0, 0, "is not vnc://" },
		{ "vnc://[::1", NULL, NULL, 0, false, false, 0, 0, 0, "is not vnc://" },
		{ "vnc://h?encodings=rre", NULL, NULL, 0, false, false, 0, 0, 0, "'rre' is not an encoding" },
		{ "vnc://h?encodings=", NULL, NULL, 0, false, false, 0, 0, 0, "empty encodings" },
		{ "vnc://h?tls=maybe", NULL, NULL, 0, false, false, 0, 0, 0, "tls=maybe" },
		{ "vnc://h?jpeg=10", NULL, NULL, 0, false, false, 0, 0, 0, "jpeg=10" },
		{ "vnc://h?tls=off&tls=off", NULL, NULL, 0, false, false, 0, 0, 0, "repeated URL option 'tls'" },
		{ "vnc://h?password=x", NULL, NULL, 0, false, false, 0, 0, 0, "unknown URL option 'password'" },
		{ "vnc://h?tls", NULL, NULL, 0, false, false, 0, 0, 0, "not name=value" },
	};
	char why[200];

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct vnc_url u;
		struct rfb_opts o = { .password = "pw" };
		int rc = vnc_parse_url(t[i].url, &u, &o, why, sizeof why);
		if (t[i].why != NULL) {
			ck_assert_msg(rc == -1 && strstr(why, t[i].why) != NULL, "%s: %d %s", t[i].url, rc, why);
			continue;
		}
		ck_assert_msg(rc == 0, "%s: %s", t[i].url, why);
		ck_assert_str_eq(u.host, t[i].host);
		ck_assert_str_eq(u.path, t[i].path);
		ck_assert_int_eq(u.port, t[i].port);
		ck_assert_int_eq(u.ws, t[i].ws);
		ck_assert_int_eq(u.wss, t[i].wss);
		ck_assert_int_eq(u.tls_mode, t[i].tls);
		ck_assert_uint_eq(o.encodings, t[i].enc);
		ck_assert_int_eq(o.jpeg_quality, t[i].jpeg);
		ck_assert_int_eq(o.tls, t[i].tls != TLS_OFF);
		ck_assert_str_eq(o.password, "pw");
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rfb");
	TCase *t = tcase_create("engine");

	tcase_add_checked_fixture(t, NULL, teardown);
	tcase_add_test(t, des_known_answers);
	tcase_add_test(t, version_choice);
	tcase_add_test(t, none_33_37_38);
	tcase_add_test(t, vncauth_each_version);
	tcase_add_test(t, refusals);
	tcase_add_test(t, vencrypt_tls_vnc);
	tcase_add_test(t, raw_copyrect);
	tcase_add_test(t, hextile);
	tcase_add_test(t, zrle);
	tcase_add_test(t, tight);
	tcase_add_test(t, pseudo_and_messages);
	tcase_add_test(t, empty_update);
	tcase_add_test(t, encodings_option);
	suite_add_tcase(s, t);
	t = tcase_create("url");
	tcase_add_test(t, urls);
	suite_add_tcase(s, t);
	t = tcase_create("websocket");
	tcase_add_test(t, websocket);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return check_run(suite());
}
