/*
 * rfb.h - the RFB (VNC) client protocol engine (protocols/rfb.md): the
 * handshake state machine for 3.3, 3.7 and 3.8, security None, VNC
 * authentication and VeNCrypt, the server messages and the decoders of
 * Raw, CopyRect, Hextile, ZRLE and Tight into a 32-bit framebuffer, and the
 * client messages for keys and pointer. No I/O: bytes from the server go in
 * with rfb_feed, bytes for the server come out of r->out; drv_rfb.c moves
 * them over TCP, TLS or WebSocket. Tests and fuzzers drive it directly.
 */
#ifndef KVMGATE_RFB_H
#define KVMGATE_RFB_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "buf.h"
#include "ctl.h"

#define RFB_MAX_DIM 8192	/* largest framebuffer side accepted */
#define RFB_MAX_CURSOR 256	/* largest cursor side kept */
#define RFB_MAX_ZDATA (64u << 20)	/* largest compressed rectangle */

/* Real encodings a client may restrict itself to (URL ?encodings=). */
enum rfb_enc_bit {
	RFB_ENC_RAW = 1u << 0, RFB_ENC_COPYRECT = 1u << 1, RFB_ENC_HEXTILE = 1u << 2,
	RFB_ENC_ZRLE = 1u << 3, RFB_ENC_TIGHT = 1u << 4, RFB_ENC_ALL = 0x1f,
};

/* Handshake and message states; rfb_set_state (rfb.c) is the only writer. */
enum rfb_state {
	RFB_VERSION,		/* waiting for "RFB xxx.yyy\n" */
	RFB_SECTYPE33,		/* 3.3: U32 security type */
	RFB_SECTYPES,		/* 3.7+: U8 n, n types */
	RFB_REASON,		/* U32 length + reason, then fail */
	RFB_VNCAUTH,		/* 16-byte challenge */
	RFB_SECRESULT,		/* U32 result */
	RFB_VENCRYPT_VERSION,	/* U8 major, U8 minor */
	RFB_VENCRYPT_ACK,	/* U8 0 = version accepted */
	RFB_VENCRYPT_TYPES,	/* U8 n, n x U32 */
	RFB_VENCRYPT_TLSACK,	/* U8 1 = go ahead with TLS */
	RFB_TLS,		/* the driver runs the TLS handshake (rfb_tls_ready ends it) */
	RFB_SERVERINIT,		/* width, height, pixel format, name */
	RFB_NORMAL,		/* server messages */
	RFB_FAILED,
	RFB__STATES
};

/* What the client may pick, from the device's URL and credentials. */
struct rfb_opts {
	const char *password;	/* "" when none stored */
	const char *username;	/* for VeNCrypt Plain sub-types */
	uint32_t encodings;	/* enum rfb_enc_bit set; 0 = all */
	bool tls;		/* VeNCrypt may be chosen */
	bool x509;		/* X509 sub-types may be chosen (certificate checked by the driver) */
	int jpeg_quality;	/* Tight JPEG quality pseudo-encoding 0-9; -1: no JPEG */
};

/* One protocol engine; rfb_init / rfb_cleanup; everything in it is the engine's. */
struct rfb {
	enum rfb_state st;
	int minor;			/* 3, 7 or 8 once chosen */
	uint32_t sectype, subtype;	/* chosen security type, VeNCrypt sub-type */
	struct rfb_opts opt;
	char password[257], username[129];
	struct buf in;			/* received, not consumed from in_off */
	size_t in_off;
	struct buf out;			/* to send; the caller takes and resets it */
	enum session_error err;		/* why it failed */
	char why[160];

	/* The framebuffer: w*h pixels 0x00RRGGBB (B G R X bytes in memory). */
	uint32_t *fb;
	uint32_t w, h;
	char name[128];
	char server_version[16];	/* "3.8", "4.1": what the server's greeting said */
	bool qemu_keys;			/* the server confirmed QEMU extended key events */
	uint32_t buttons;		/* pointer button mask held */
	uint16_t px, py;		/* pointer position */

	/* Progress counters the driver watches. */
	bool authenticated;		/* security passed */
	uint64_t updates;		/* FramebufferUpdates completed */
	uint64_t messages;		/* server messages completed (session_alive) */
	uint64_t changes;		/* framebuffer writes; moves on every painted rectangle */
	uint64_t resizes;
	bool complete;			/* every part of the framebuffer painted since (re)size */
	bool in_update;			/* between an update's header and its end */
	bool upd_real, upd_ext;		/* this update painted pixels / told the desktop size */
	bool want_full;			/* a DesktopSize resize: ask for everything again */
	uint32_t upd_rects;		/* rectangles in this update */
	bool request_deferred;		/* an empty update: the driver asks again a little later */

	/* The update being parsed. */
	uint32_t rects_left;		/* 0xffffffff: until LastRect */
	bool rect_open;
	uint16_t rx, ry, rw, rh;
	int32_t renc;
	uint32_t rpos;			/* progress inside the rectangle: row, tile */
	uint32_t hex_bg, hex_fg;
	uint64_t skip;			/* bytes of a ServerCutText still to discard */

	uint8_t *cover;			/* one byte per 64x64 cell: painted */
	uint32_t cover_left;

	z_stream zrle, tight[4];
	bool zrle_on, tight_on[4];
	struct buf z;			/* inflated data of one rectangle */
	void *tjd;			/* turbojpeg decompressor, made on first use */

	uint32_t *cursor;		/* cursor image, 0xAARRGGBB (alpha 0 or 255) */
	uint16_t cw, ch, chx, chy;
};

/* Starts r at the handshake with a copy of opt (its strings copied too). */
void rfb_init(struct rfb *r, const struct rfb_opts *opt);
/* Frees everything r holds (framebuffer, zlib streams, buffers) and wipes the password. */
void rfb_cleanup(struct rfb *r);

/*
 * Appends n bytes from the server and handles every complete message in
 * them. Returns 0 (more bytes wanted; r->out may hold an answer), 1 when
 * the driver must start TLS now (VeNCrypt; then rfb_tls_ready), or -1 with
 * r->err and r->why (the connection is finished).
 */
int rfb_feed(struct rfb *r, const void *data, size_t n) MUSTCHECK;

/* The driver finished the TLS handshake: the engine continues inside it. */
int rfb_tls_ready(struct rfb *r) MUSTCHECK;

/* Queues a FramebufferUpdateRequest for the whole framebuffer. */
void rfb_request(struct rfb *r, bool incremental);

/* Queues a request the server answers at once (1x1, non-incremental): proof it is alive. */
void rfb_ping(struct rfb *r);

/* Queues one key press or release: QEMU extended when confirmed and scancode != 0. */
void rfb_key(struct rfb *r, uint32_t keysym, uint32_t scancode, bool down);

/* Queues a PointerEvent: the pointer at x, y with buttons held (bit 0 left, 1 middle, 2 right). */
void rfb_pointer(struct rfb *r, uint16_t x, uint16_t y, uint32_t buttons);

/*
 * The VNC authentication response (rfb.md 1.4): DES-ECB of the 16-byte
 * challenge under the password's first 8 bytes, each bit-reversed.
 */
void rfb_vnc_response(const char *password, const uint8_t challenge[16], uint8_t out[16]);

/* Plain DES-ECB of one block, for the known-answer test. */
void rfb_des(const uint8_t key[8], const uint8_t in[8], uint8_t out[8]);

/* The XT scancode (QEMU form, E0 xx as 0x80|xx) of a USB HID usage or KEYMOD_* bit; 0 if none. */
uint32_t rfb_scancode(uint8_t usage);
uint32_t rfb_mod_scancode(uint8_t bit);

/*
 * Parses an encodings list ("tight,zrle,hextile,copyrect,raw", any order,
 * any subset). Returns the set of enum rfb_enc_bit, or 0 with why set.
 */
uint32_t rfb_parse_encodings(const char *list, char *why, size_t len);

/* ---- between rfb.c and rfb_decode.c ---- */

enum {
	RFB_PSEUDO_DESKTOPSIZE = -223, RFB_PSEUDO_LASTRECT = -224, RFB_PSEUDO_CURSOR = -239,
	RFB_PSEUDO_QEMUKEY = -258, RFB_PSEUDO_EXTDESKTOPSIZE = -308,
};

/* Fails the engine: sets err, why (printf-style) and the failed state. Returns -1. */
int rfb_fail(struct rfb *r, enum session_error e, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Unconsumed input: how much, where; consume n of it. */
size_t rfb_avail(const struct rfb *r);
const uint8_t *rfb_peek(const struct rfb *r);
void rfb_consume(struct rfb *r, size_t n);

/* A new, blank framebuffer of w x h (1..RFB_MAX_DIM). */
void rfb_resize(struct rfb *r, uint32_t w, uint32_t h);

/* Records that a rectangle (inside the framebuffer) was painted. */
void rfb_painted(struct rfb *r, uint32_t x, uint32_t y, uint32_t w, uint32_t h);

/*
 * Decodes the open rectangle (r->rx.. r->renc, progress in r->rpos) from
 * the input. Returns 1 when it is done, 0 when more bytes are needed, -1
 * after rfb_fail.
 */
int rfb_decode_rect(struct rfb *r) MUSTCHECK;

#endif
