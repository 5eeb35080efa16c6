/*
 * sim.h - the NanoKVM simulator (tests/sim/): one program, sim-nanokvm, that
 * answers like a NanoKVM of a chosen firmware version (protocols/nanokvm.md)
 * and renders what it is sent onto the screen of a simulated host.
 *
 *   font.c          the 8x16 bitmap font
 *   screen.c        the host's text console, pointer and status line -> RGB -> JPEG
 *   hid.c           USB HID reports: host-side decoding, paste mapping, legacy JSON
 *   auth.c          password decryption (section 2.2) and the JWT
 *   nanokvm_api.c   the REST routes (section 3)
 *   nanokvm.c       main: options, the libwebsockets server, /api/ws, MJPEG, /sim/
 */
#ifndef KVMGATE_SIM_H
#define KVMGATE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "buf.h"
#include "util.h"

/* ---- font.c */

#define FONT_W 8
#define FONT_H 16

void font_glyph(unsigned char c, uint8_t rows[FONT_H]);

/* ---- screen.c: the simulated host's display. Owned by its creator. */

struct screen;

/* A console for a width x height picture: one 8x16 cell per character, the
 * bottom cell row kept for the status line. Free with screen_free. */
struct screen *screen_new(int width, int height);
void screen_free(struct screen *s);

/* Console output: printable ASCII, '\n' (new line), '\b' (erase the character
 * before the cursor), '\t' (to the next multiple of 8). Scrolls at the bottom. */
void screen_putc(struct screen *s, char c);
void screen_puts(struct screen *s, const char *text);
void screen_clear(struct screen *s);

/* Draws the pointer at pixel (x, y), clamped into the picture. */
void screen_pointer(struct screen *s, int x, int y);
void screen_pointer_pos(const struct screen *s, int *x, int *y);

/* Replaces the status line (truncated to the width). */
void screen_status(struct screen *s, const char *text);

int screen_cols(const struct screen *s);
int screen_rows(const struct screen *s);
void screen_cursor(const struct screen *s, int *col, int *row);

/* Row i of the console without trailing blanks, into out (>= cols + 1 bytes). */
void screen_row_text(const struct screen *s, int row, char *out);

/* The picture as packed RGB (width * height * 3), rendered if anything changed.
 * Owned by the screen, valid until the next change. */
const uint8_t *screen_rgb(struct screen *s);

/* The picture as a baseline JPEG of the given quality, encoded only when the
 * picture changed since the last call. *jpeg stays owned by the screen.
 * Returns the picture's version (bumped on every change), or 0 on failure. */
uint64_t screen_jpeg(struct screen *s, int quality, const uint8_t **jpeg, size_t *len);

/* Bumped on every visible change. */
uint64_t screen_version(const struct screen *s);

/* ---- hid.c */

/* Keyboard modifier bits, section 5.1. */
enum {
	HID_MOD_LCTRL = 0x01, HID_MOD_LSHIFT = 0x02, HID_MOD_LALT = 0x04, HID_MOD_LGUI = 0x08,
	HID_MOD_RCTRL = 0x10, HID_MOD_RSHIFT = 0x20, HID_MOD_RALT = 0x40, HID_MOD_RGUI = 0x80,
};

enum {
	HID_KEY_ENTER = 0x28, HID_KEY_BACKSPACE = 0x2a, HID_KEY_TAB = 0x2b,
	HID_KEY_CAPSLOCK = 0x39, HID_KEY_SCROLLLOCK = 0x47, HID_KEY_DELETE = 0x4c,
	HID_KEY_NUMLOCK = 0x53,
};

/* What the host did with a keyboard report, beyond characters. */
enum { HID_HOST_CTRL_ALT_DEL = 1, HID_HOST_LEDS = 2 };

/* The keymap the simulated host decodes keyboard reports with (--host-layout). */
enum hid_layout { HID_LAYOUT_US, HID_LAYOUT_DE, HID_LAYOUT_FR };

/* The host's view of the keyboard: its keymap, keys held in the last report,
 * lock LEDs, and the text typed since boot (UTF-8; Backspace takes back the
 * last character; the oldest half is dropped when full). */
struct hid_kbd {
	enum hid_layout layout;
	uint8_t held[6];
	bool caps, num, scroll;
	char typed[8192];
	size_t typed_len;
};

/* The layout named "us", "de" or "fr" into *out. Returns 0, or -1 for another name. */
int hid_layout_parse(const char *name, enum hid_layout *out);

/* The character (a code point) a host with keymap layout produces for usage
 * with shift, AltGr (right Alt) and caps lock in effect, or 0 for none. Dead
 * keys type their own character at once, as with a "nodeadkeys" keymap. */
uint32_t hid_host_char(enum hid_layout layout, uint8_t usage, bool shift, bool altgr, bool caps);

/* The character a US-layout host produces for usage with shift (and caps
 * lock) in effect, or 0 for keys that produce none (section 5.1 table). */
char hid_usage_char(uint8_t usage, bool shift, bool caps);

/* Applies one 8-byte keyboard report to the host: keys newly pressed since
 * the previous report type, decoded with k->layout, into k->typed and onto
 * the screen (may be NULL; characters beyond ASCII show as '?'). Returns a
 * mask of HID_HOST_* for what else happened. */
int hid_kbd_report(struct hid_kbd *k, const uint8_t report[8], struct screen *s);

/* Paste mapping (section 7): the (modifier, usage) a NanoKVM emits for the
 * code point cp with layout langue ("de", "fr" or anything else = US) on
 * application version ver (major*10000+minor*100+patch). Returns false for an
 * unmappable code point (skipped silently by the device). */
bool hid_paste_map(uint32_t cp, const char *langue, int ver, uint8_t *mod, uint8_t *usage);

/* Decodes the next UTF-8 code point of s[*i..len); invalid bytes yield U+FFFD. */
uint32_t hid_utf8_next(const char *s, size_t len, size_t *i);

/* Absolute pointer value (1..32767, section 5.3) to a pixel in [0, size). */
int hid_abs_to_px(unsigned v, int size);

/* Legacy JSON WebSocket messages (section 4.2). */
enum hid_legacy_kind { HID_LEGACY_SKIP, HID_LEGACY_KBD, HID_LEGACY_REL, HID_LEGACY_ABS, HID_LEGACY_CRASH };

/* Turns the integers of one legacy message into a report for /dev/hidg0 (8
 * bytes), hidg1 (4) or hidg2 (6) in out. HID_LEGACY_CRASH: the array is too
 * short, which kills the real server. scroll_down_neg: 2.3.1's sign rule. */
enum hid_legacy_kind hid_legacy_decode(const long long *v, size_t n, bool scroll_down_neg,
                                       uint8_t out[8]);

/* ---- auth.c */

#define SIM_PASSPHRASE "nanokvm-sipeed-2024"

/* How the device's decryption of a login password ends (section 2.2). */
enum auth_decrypt { AUTH_PLAIN, AUTH_EMPTY, AUTH_PANIC };

/* Runs url.QueryUnescape and aes-everywhere Decrypt on sent, the way the
 * device does. AUTH_PLAIN: *plain (caller frees) holds the result;
 * AUTH_EMPTY: the device sees "" (bad escape, base64 or prefix);
 * AUTH_PANIC: the device's handler panics (answer 500, empty body). */
enum auth_decrypt auth_decrypt_password(const char *sent, char **plain);

/* Encrypts password like the web UI (for tests and the demo): base64 of
 * "Salted__" salt ct, percent-encoded. salt may be NULL for a random one.
 * The caller frees the result. */
char *auth_encrypt_password(const char *password, const uint8_t *salt8);

/* The claims a token carries. */
struct auth_claims {
	char username[64];
	long long exp, iat, token_version;
	bool has_version;
};

/* Signs an HS256 JWT with secret; head adds sub, iat and tokenVersion.
 * The caller frees the result. */
char *auth_jwt_make(const uint8_t *secret, size_t secret_len, const char *username,
                    long long iat, long long exp, bool head, long long token_version);

/* Checks signature and expiry at time now; on success fills *c and returns 0. */
int auth_jwt_check(const uint8_t *secret, size_t secret_len, const char *jwt,
                   long long now, struct auth_claims *c) MUSTCHECK;

/* ---- nanokvm.c / nanokvm_api.c: the device */

/* Firmware features, derived from the application version (section 8). */
struct profile {
	char name[32];		/* as given on the command line */
	char app[16];		/* GET /api/vm/info application */
	int ver;		/* major*10000 + minor*100 + patch */
	bool head;		/* the post-2.5.0 server */
};

#define VER(a, b, c) ((a) * 10000 + (b) * 100 + (c))

struct paste_job;

/* The whole simulated device and host. One instance, owned by main. */
struct sim {
	struct profile prof;
	char *password, *state_dir;
	/* head: a second account with the role "user" (--user NAME:PASSWORD), or NULL */
	char *user_name, *user_password;
	int width, height, quality, fps;
	long long token_ttl, long_press_ms;
	double time_scale;
	bool tls;		/* serves HTTPS (--tls-cert) */
	struct lws_context *ctx;

	/* authentication */
	uint8_t secret[64];
	long long token_version;
	unsigned epoch;		/* bumped by a simulated restart: connections drop */

	/* host and device */
	struct screen *screen;
	struct hid_kbd kbd;
	bool power, hdmi_cable, hdmi_enabled, frame_detect;
	int boots, buttons;
	long long wheel, clicks;
	uint64_t hdmi_off_until, hid_off_until, detect_stop_until, warm_until;
	char iso[512];
	bool cdrom;
	char hid_mode[16];
	long long usb_enumerations, hid_reports, hid_dropped;
	long long ws_heartbeats, power_presses;
	int ws_drop_after;		/* /sim/set: break the WebSocket after N input messages */
	uint8_t last_reports[16][9];	/* [0] = length, then the bytes */
	int last_report_n;
	struct json_object *counters;	/* endpoint -> count */
	struct paste_job *paste;	/* queue, head typing */
	long long hdmi_idle_minutes;
	char screen_type[8];

	/* viewers */
	int mjpeg_viewers, ws_clients;
	long long frames_sent, frames_captured;
	uint64_t last_frame_version;
	int unchanged_frames;
};

extern struct sim sim;

/* Scaled wall time in microseconds for a device delay of ms milliseconds. */
uint64_t sim_delay_us(double ms);

/* Whether the HDMI capture has a picture now (power, cable, enable, reset). */
bool sim_signal(void);

/* Feeds one HID report (type 1 = keyboard 8 bytes, 2 = mouse 4 or 6) to the
 * host, as /dev/hidg* would; dropped while the USB gadget re-enumerates.
 * Returns false when dropped. */
bool sim_hid_write(int type, const uint8_t *r, size_t len);

/* Re-enumerates the USB gadget: HID is offline for about a second. */
void sim_usb_reenumerate(void);

/* Host power events. */
void sim_power_press(long long ms);
void sim_reset_press(void);

/* Regenerates the JWT secret and drops every connection (device restart). */
void sim_restart(void);

/* A new JWT secret: every token dies (logout on <= 2.5.0, restart). */
void sim_restart_tokens(void);

/* HEAD logout: live WebSockets close with 4401, MJPEG viewers drop. */
void sim_revoke_connections(void);

/* The keyboard LED state {numLock,capsLock,scrollLock,known,updatedAt}. */
struct json_object *sim_leds_json(void);

/* Updates the status line from the model. */
void sim_status_line(void);

/* Counts a request against endpoint name. */
void sim_count(const char *endpoint);

/* One HTTP request as the REST layer sees it. */
struct api_req {
	const char *method, *path;
	const char *body;	/* NUL-terminated, may be "" */
	size_t body_len;
	const char *cookie_token;	/* NULL when absent */
	const char *origin, *host;
	void *wsi;		/* the connection, for long requests */
};

/* A reply: status, content type, body, extra header, delay before sending. */
struct api_resp {
	int status;
	const char *ctype;
	struct buf body;
	char set_cookie[1024];
	double delay_ms;	/* device time; scaled by --time-scale */
	bool paste_wait;	/* reply when the paste job finishes */
	void (*before)(struct api_resp *r);	/* runs when the delay is over */
	void (*after)(void);	/* runs after the reply is written */
	long long arg;		/* for before() */
	char sarg[16];
};

/* Routes one request (section 3); fills resp. */
void api_handle(const struct api_req *rq, struct api_resp *resp);

/* Whether the token in a request is valid now (section 2.4). */
bool api_token_ok(const char *token, struct auth_claims *c);

/* The /sim/state document; the caller owns it. */
struct json_object *api_sim_state(void);

/* Paste jobs: api starts one, nanokvm drives it. */
struct paste_job {
	struct paste_job *next;
	uint8_t (*reports)[2];	/* (mod, usage) per character */
	size_t n, at;
	bool shift_report;	/* <= 2.2.x: a separate Shift report first */
	void *wsi;		/* the waiting request, NULL once it has gone */
	int result;		/* 0, or -3 "HID paste failed" */
};

/* Called by the event loop every character period; returns the delay until
 * the next call in microseconds, or 0 when no job is left. */
uint64_t api_paste_tick(void);

/* The connection behind wsi closed: a waiting paste reply has nowhere to go. */
void api_paste_gone(void *wsi);

/* Wakes the connection waiting for a finished job (nanokvm.c). */
void sim_paste_done(void *wsi, int result);

#endif
