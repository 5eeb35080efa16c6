/*
 * capture.h - the capture worker: one event loop that owns every device
 * session, the control socket and the frame store.
 */
#ifndef KVMGATE_CAPTURE_H
#define KVMGATE_CAPTURE_H

#include <curl/curl.h>

#include "buf.h"
#include "ctl.h"
#include "shm.h"
#include "util.h"

struct device_cfg;
struct dev_op;
struct session;

/* Process-wide state of the capture worker; one instance, in main.c. */
struct capture {
	struct shm_store *frames;
	int epoll_fd;
	uint64_t started_mono_ns, started_wall_ns;
	uint32_t sessions;	/* device sessions not idle */
};

extern struct capture cap;

/* What an epoll registration points at: the callback for its fd. */
struct watch {
	int fd;
	void (*on_ready)(struct watch *w, uint32_t events);
};

/* Adds, changes or removes a watch on cap.epoll_fd. Returns 0 or -1. */
int watch_add(struct watch *w, uint32_t events) MUSTCHECK;
int watch_mod(struct watch *w, uint32_t events) MUSTCHECK;
void watch_del(struct watch *w);

/*
 * Frees a heap watch (already deleted from epoll) once the current batch of
 * events is handled: a later event of the same batch may still point at it.
 * Until then its on_ready is NULL and the loop skips it.
 */
void watch_free_later(struct watch *w);

/* Frees the watches watch_free_later collected; the loop calls it after each batch. */
void watch_reap(void);

/*
 * Waits up to timeout_ms for events on cap.epoll_fd and runs their watches,
 * then reaps. Returns the number of events, or -1 on an epoll error.
 */
int loop_once(int timeout_ms);

/* ---- http.c: libcurl multi, driven by the epoll loop ---------------------- */

/* Called once when a transfer ends (result CURLE_OK or the error), outside libcurl. */
typedef void (*http_done_fn)(void *arg, CURLcode result);

/* Sets up the shared multi handle with its timerfd. Returns 0 or -1. */
int http_init(void) MUSTCHECK;

/* Removes every transfer (without calling done) and frees the multi handle. */
void http_cleanup(void);

/*
 * Starts transfer e (configured by the caller, who keeps owning it); done
 * is called with arg when it ends. Returns 0 or -1.
 */
int http_start(CURL *e, http_done_fn done, void *arg) MUSTCHECK;

/* Stops transfer e if it runs (done is not called); e stays the caller's. */
void http_stop(CURL *e);

/* ---- ctl.c: the control socket server ------------------------------------ */

/* Binds the control socket at path (replacing a stale one) and watches it. */
int ctl_server_open(const char *path) MUSTCHECK;

/* Closes the listener and every client, and removes the socket file. */
void ctl_server_close(void);

/*
 * Answers one received message of n bytes into reply (CTL_MAX_MSG bytes);
 * returns the reply's size, or 0 when the answer comes later (a device
 * operation: ctl_op_answer sends it). Separate from the socket so tests can drive it.
 */
size_t ctl_handle(const void *msg, size_t n, void *reply);

/*
 * Sends op's answer (error e with why, or op->result) to whoever asked,
 * if they are still there. session_op_done calls it.
 */
void ctl_op_answer(const struct dev_op *op, const struct session *s, enum session_error e,
                   const char *why);

/* What CTL_SESSION_ENSURE loads devices with: device_load; tests put a fake here. */
extern int (*ctl_device_loader)(uint64_t id, struct device_cfg *out, enum ctl_status *status,
                                char *why, size_t len);

/* ---- session.c: one device session, its state machine and timers ---------- */

/* enum session_state and enum session_error travel in control replies: ctl.h. */

#define SESSION_URL_MAX 2048
#define SESSION_USER_MAX 128
#define SESSION_PASS_MAX 256

/* What a session needs to reach its device; filled by devices.c. */
struct device_cfg {
	uint64_t id;
	char kind[16];
	char url[SESSION_URL_MAX + 1];
	char username[SESSION_USER_MAX + 1];
	char password[SESSION_PASS_MAX + 1];
	bool keep_warm;		/* never idle: opened at start, kept with no demand */
};

/*
 * A device operation in flight (a CTL_DEVICE_OP): queued on its session,
 * started on the driver once the session holds a login, one at a time per
 * session in arrival order, and finished exactly once with session_op_done.
 * The control socket client that asked is the session code's business.
 */
struct dev_op {
	struct dev_op *next;
	struct ctl_device_op req;	/* as received: op, x, y, count, button, flags, arg */
	char *data;			/* req.len bytes, NUL-terminated (text, keys, image) */
	struct buf result;		/* the driver's JSON result, for ops that return one */
	uint64_t deadline_ns;		/* monotonic: past it the op fails with SE_TIMEOUT */
	void *reply_to;			/* ctl.c's: who gets the answer (NULL: gone) */
	uint32_t reply_id;
};

#define OP_BIT(op) (1u << (op))

/*
 * A device kind: the session code calls only these. open starts connecting
 * without blocking and reports back through session_authenticated,
 * session_frame, session_alive and session_error; close stops all of the
 * session's I/O and frees s->drv (it is called on every way out, never
 * twice). The ops mask (OP_BIT of each enum dev_op_kind it implements)
 * says what start_op may be given; any other op is answered SE_UNSUPPORTED
 * by the session code without calling the driver.
 */
struct driver {
	const char *kind;
	uint32_t ops;
	int (*open)(struct session *s);		/* 0, or -1 after session_error */
	void (*close)(struct session *s);
	/*
	 * Starts op (its kind is in ops); the driver calls session_op_done once,
	 * before returning or later. A session_error ends the op too: after
	 * it the driver must forget op.
	 */
	void (*start_op)(struct session *s, struct dev_op *op);
	/*
	 * Optional: a reader waits for a frame newer than the slot's latest.
	 * Drivers that keep a framebuffer (RFB) publish one then, encoded once;
	 * streaming sources (MJPEG) leave it NULL.
	 */
	void (*want_frame)(struct session *s);
};
/* The driver table (drivers.c); NULL-terminated, with spare rows tests may fill. */
#define DRIVERS_MAX 8
extern const struct driver *drivers[DRIVERS_MAX];

/* The driver of a device kind, or NULL when the kind has none. */
const struct driver *driver_find(const char *kind);

struct session {
	struct watch timer;		/* timerfd: backoff, idle and frame deadlines */
	struct session *next;
	struct device_cfg cfg;
	const struct driver *drv;
	void *drv_state;		/* the driver's, freed by drv->close */
	enum session_state state;
	enum session_error last_error;
	char last_why[128];
	int slot;			/* frame slot, -1 while idle */
	uint32_t attempts;		/* consecutive failures since the last frame */
	uint64_t state_since_ns, demand_ns, last_frame_ns, retry_ns;
	uint64_t frames;
	char firmware[32];		/* what the device reported, "" until known */
	uint32_t width, height;		/* current screen size, 0 until known */
	struct dev_op *ops;		/* queued operations, oldest first; ops is the running one */
	bool op_running;		/* ops was handed to the driver */
};

/* Timing of every session; tests shorten it. */
struct session_timing {
	uint64_t idle_ns, frame_timeout_ns;
	uint32_t backoff_first_ms, backoff_max_ms, jitter_pct;
};
extern struct session_timing session_timing;

/*
 * The backoff before retry number attempt (1 = first retry): backoff_first_ms
 * doubling up to backoff_max_ms, then moved by up to +-jitter_pct % using
 * rnd (any 32-bit random number). Pure, for tests.
 */
uint32_t session_backoff_ms(uint32_t attempt, uint32_t rnd);

/*
 * Records demand for the device cfg describes and returns its session,
 * creating it and starting it if it is idle, or failed with another cfg
 * than cfg (which it takes) or longer ago than backoff_max_ms; a failed
 * session with the same cfg stays failed until then, keeping its reason.
 * Never blocks. The session stays owned by session.c.
 */
struct session *session_ensure(const struct device_cfg *cfg);

/*
 * Gives a backing-off session the device as the database has it now: when
 * it differs (new password, URL, kind), the next attempt uses it at once
 * instead of waiting out the backoff. Other states ignore it.
 */
void session_update(struct session *s, const struct device_cfg *cfg);

/* The session of device id, or NULL. */
struct session *session_find(uint64_t device_id);

/*
 * Called by drivers: the device accepted the login; connecting ->
 * authenticating. Queued operations may start from now on.
 */
void session_authenticated(struct session *s);

/*
 * Called by drivers whose device is alive without a new frame (an RFB
 * server with an unchanged screen): resets the frame deadline.
 */
void session_alive(struct session *s);

/*
 * Called by drivers that learn from the device whether it has a video input
 * (NanoKVM: HDMI signal). Without one the session stays up and streaming
 * with SE_NO_SIGNAL as its reason, and the frame timeout does not apply: no
 * reconnecting while the host is off. With it again (or at the next frame)
 * the reason clears and the frame timeout runs from now.
 */
void session_signal(struct session *s, bool signal);

/*
 * Queues op on s (taking it) and starts it when the session is ready: now,
 * when it holds a login and nothing runs, else when it gets there. Ops a
 * driver does not implement, and ops on a failed session, end at once.
 */
void session_op_submit(struct session *s, struct dev_op *op);

/*
 * Called by drivers (and the session code) when op ends: e is SE_NONE or
 * why it failed, why the reason in words (NULL when none). Answers the
 * caller, frees op and starts the next queued op.
 */
void session_op_done(struct session *s, struct dev_op *op, enum session_error e, const char *why);

/*
 * Called by drivers with each complete frame: publishes it to the session's
 * slot (info->capture_ns 0 = now) and moves to streaming. Returns 0 or -1.
 */
int session_frame(struct session *s, struct shm_frame_info *info, const void *bytes) MUSTCHECK;

/*
 * Called by drivers when the connection fails: closes the driver and backs
 * off (or fails for SE_CONFIG). why is for logs and replies. The driver must
 * not touch s->drv_state after this returns.
 */
void session_error(struct session *s, enum session_error e, const char *why);

/* How session_op_done answers: ctl_op_answer; tests put a recorder here. */
extern void (*session_op_answer)(const struct dev_op *op, const struct session *s,
                                 enum session_error e, const char *why);

/*
 * The device of s changed in the database: cfg is how it is now, or NULL
 * when it was disabled or removed. A new configuration reconnects at once
 * (the running operation, if any, fails); a removed device's session goes
 * idle and its waiting operations fail. Unchanged: nothing happens.
 */
void session_reconfigure(struct session *s, const struct device_cfg *cfg);

/* The first session (then s->next), for walking every session. */
struct session *session_first(void);

/* Forgets who asked for queued operations: their caller went away. */
void session_forget_caller(const void *reply_to);

/* Evaluates the session's deadlines at now (the timerfd calls it; tests too). */
void session_tick(struct session *s, uint64_t now);

/* Closes every session (at exit). */
void session_close_all(void);

/* ---- mjpeg.c: multipart MJPEG parsing, JPEG headers ------------------------ */

/*
 * An incremental parser of a multipart/x-mixed-replace stream of JPEG parts
 * (boundary "frame"). A part's size comes from its Content-Length header,
 * or, when it has none, from the JPEG end marker FF D9. Bytes may arrive in
 * any split. Owned by the caller: mjpeg_init (on a zeroed or an initialised
 * parser: it restarts it) / mjpeg_cleanup.
 */
struct mjpeg {
	struct buf acc;		/* bytes received and not yet consumed */
	int st;			/* where in a part the parser is */
	long long part_len;	/* Content-Length of the current part, -1 when none */
	size_t scan;		/* bytes of the body already searched for FF D9 */
	size_t max;		/* largest frame accepted */
	uint64_t frames;
	char why[96];		/* why mjpeg_feed failed */
};

/* Called with each complete part's bytes (valid during the call). Returns 0 or -1 to stop. */
typedef int (*mjpeg_frame_fn)(void *arg, const uint8_t *jpeg, size_t len);

void mjpeg_init(struct mjpeg *m, size_t max_frame);
void mjpeg_cleanup(struct mjpeg *m);

/*
 * Feeds len bytes; calls fn for every part they complete. Returns 0, or -1
 * with the reason in m->why (malformed stream, a part larger than max, or
 * fn's refusal); the parser is then unusable until mjpeg_init.
 */
int mjpeg_feed(struct mjpeg *m, const void *data, size_t len, mjpeg_frame_fn fn, void *arg) MUSTCHECK;

/* Reads width and height from a JPEG's SOF marker. Returns 0, or -1 when there is none. */
int jpeg_size(const uint8_t *p, size_t len, uint32_t *width, uint32_t *height) MUSTCHECK;

/* ---- ws.c: WebSocket client on the epoll loop ------------------------------ */

struct ws;

/* Where and how to connect; strings are copied before ws_connect returns. */
struct ws_params {
	const char *addr;	/* numeric IPv4 or IPv6 address: ws.c never resolves names */
	uint16_t port;
	bool tls;		/* wss: TLS verified against host_name */
	bool insecure;		/* wss without any certificate or host name check */
	const char *host;	/* Host header ("name:port") */
	const char *host_name;	/* TLS server name */
	const char *path;
	const char *cookie;	/* Cookie header value, or NULL */
};

/* What a client reports; called from the loop, never from inside ws_send or ws_free. */
struct ws_handler {
	void (*on_open)(void *arg);
	void (*on_message)(void *arg, bool binary, const uint8_t *p, size_t n);
	/*
	 * The connection ended: code is the close code the device sent, the
	 * HTTP status when it refused the upgrade (100..599), or 0 when the
	 * connection broke. The client is freed already: forget it.
	 */
	void (*on_close)(void *arg, int code, const char *why);
};

/*
 * Starts connecting (non-blocking) and upgrading. Returns the client, owned
 * by the caller until on_close or ws_free, or NULL with the reason in why.
 */
struct ws *ws_connect(const struct ws_params *p, const struct ws_handler *h, void *arg, char *why,
                      size_t len);

/* Queues one message (binary or text) on an open connection. Returns 0, or -1 (not open, or it broke: on_close follows or ran). */
int ws_send(struct ws *c, bool binary, const void *p, size_t n) MUSTCHECK;

bool ws_is_open(const struct ws *c);

/* Closes the connection without calling on_close; NULL is fine. */
void ws_free(struct ws *c);

/* A parsed frame header (pure helpers, for tests). */
struct ws_frame {
	bool fin, masked;
	int opcode;
	uint8_t mask[4];
	size_t len, header;
};

/* Writes a masked client frame header to out (14 bytes max); returns its size. */
size_t ws_frame_header(uint8_t *out, int opcode, size_t len, const uint8_t mask[4]);

/*
 * Parses the frame at the start of p[0..n): returns the header size when the
 * whole frame is there, 0 when more bytes are needed, -1 when it is malformed.
 */
int ws_frame_parse(const uint8_t *p, size_t n, struct ws_frame *f);

/* The Sec-WebSocket-Accept value for key (28 characters and NUL). */
void ws_accept_key(const char *key, char out[29]);

/* ---- drv_nanokvm.c: Sipeed NanoKVM ----------------------------------------- */

extern const struct driver drv_nanokvm;

/*
 * The login password as the NanoKVM web UI sends it (protocols/nanokvm.md
 * §2.2): AES-256-CBC under EVP_BytesToKey(MD5, the fixed passphrase, salt),
 * "Salted__" + salt + ciphertext, base64, percent-encoded. salt_or_null
 * (8 bytes) is for known-answer tests; NULL picks a random one. Writes a
 * NUL-terminated string to out. Returns 0, or -1 when out is too small.
 */
int nanokvm_encrypt_password(const char *password, const uint8_t *salt_or_null, char *out,
                             size_t outsz) MUSTCHECK;

/*
 * Splits a NanoKVM device URL, http[s]://host[:port][/prefix][?tls=verify|insecure],
 * into the base every API path is appended to (written to base, without the
 * options or a final '/') and its TLS option: *insecure is true for
 * tls=insecure (a self-signed certificate: neither the certificate nor the
 * host name is checked, for HTTPS and the wss:// input socket alike).
 * Returns 0, or -1 with a sentence in why (another scheme, an unknown or
 * repeated option, a bad value).
 */
int nanokvm_parse_url(const char *url, char *base, size_t len, bool *insecure, char *why,
                      size_t wlen) MUSTCHECK;

/* Pure helpers of the NanoKVM driver, for tests (drv_nanokvm_ws.c, drv_nanokvm_ops.c). */

/* "2.4.3" -> 20403 (major*10000+minor*100+patch); 0 when it is not a version. */
int nanokvm_version(const char *application);

/*
 * The absolute pointer value (§5.3) for pixel px of a screen size pixels
 * wide (or high): the pixel's centre as a fraction f, clamp(floor(f*32767)+1,
 * 1, 32767). Pixels outside the screen clamp to its edges.
 */
uint16_t nanokvm_abs(int px, uint32_t size);

/*
 * How many bytes of text[0..len) the next /api/hid/paste may carry on
 * firmware ver: at most 1024 bytes, on 2.5.0+ also at most 833 runes
 * (§7), never splitting a UTF-8 sequence. 0 only when len is 0.
 */
size_t nanokvm_paste_chunk(const char *text, size_t len, int ver);

/*
 * The paste langue for keyboard layout on firmware ver (§7, §8): "" for us,
 * "de" (2.3.0+), "fr" (2.4.1+). Returns 0, or -1 with why when the firmware
 * has no such layout (it would type US silently).
 */
int nanokvm_langue(const char *layout, int ver, const char **langue, char *why, size_t len) MUSTCHECK;

/*
 * A keyboard report as firmware ver takes it on /api/ws: binary [1, mods, 0,
 * usage, 0...] on 2.3.2+, else the JSON array [1, usage, ctrl, shift, alt,
 * meta] (§4.2; usage 0 releases all). Writes it to out (outsz >= 64) and
 * *binary; returns its size, or 0 when the firmware cannot express it (a
 * modifier held alone on JSON firmware).
 */
size_t nanokvm_kbd_msg(int ver, uint8_t mods, uint8_t usage, uint8_t *out, size_t outsz, bool *binary);

/* Absolute pointer events (§4.1, §4.2, §5.3). */
enum nanokvm_mouse { NKM_MOVE, NKM_BUTTONS, NKM_WHEEL };

/*
 * One pointer message for firmware ver: binary 6-byte absolute reports with
 * buttons (bit0 left, bit1 right, bit2 middle) at x, y; JSON: MoveAbsolute,
 * Down/Up (buttons 0 = up) or Scroll. wheel: +1 one step up, -1 down. Writes
 * out (outsz >= 64), *binary; returns the size.
 */
size_t nanokvm_mouse_msg(int ver, enum nanokvm_mouse ev, uint8_t buttons, uint16_t x, uint16_t y,
                         int wheel, uint8_t *out, size_t outsz, bool *binary);

/* ---- devstate.c: what the capture worker saw of each device, in PostgreSQL -- */

/*
 * Each records one observation of device id and writes the device_state row
 * when it changed (a short synchronous UPSERT on the worker's connection,
 * only on change, the frame time at most once a minute). Never fails: a
 * database that is down is skipped and the next change writes the row.
 */
void devstate_session(uint64_t id, enum session_state st, const char *why);
void devstate_frame(uint64_t id, uint32_t width, uint32_t height);
void devstate_firmware(uint64_t id, const char *firmware);
void devstate_power(uint64_t id, bool led_on);
void devstate_hdmi(uint64_t id, int enabled, int signal);	/* -1: not known */
/* Forgets everything (at exit). */
void devstate_cleanup(void);

/*
 * Opens a session for every enabled device flagged keep_warm (they never
 * go idle: session.c's idle rule skips them). The capture worker calls it at
 * start and then every minute. Returns the number of devices, or -1.
 */
int devstate_keep_warm(void);

/* ---- drv_rfb.c: VNC servers (rfb.c is its protocol engine, wsc.c its WebSocket) ---- */

extern const struct driver drv_rfb;

struct rfb_opts;

/* A vnc device's URL (README "VNC devices"): where, and how. */
struct vnc_url {
	char host[256], path[512];
	int port;
	bool ws, wss;			/* ws:// or wss:// */
	enum { TLS_VERIFY, TLS_INSECURE, TLS_OFF } tls_mode;
};

/*
 * Parses vnc://host[:port], ws://host[:port]/path or wss://... with the
 * options encodings=, tls=, jpeg= into u and the engine's options o (whose
 * password and username it leaves alone). Returns 0, or -1 with a sentence
 * in why naming what is wrong (unknown or repeated option, bad value).
 */
int vnc_parse_url(const char *url, struct vnc_url *u, struct rfb_opts *o, char *why, size_t len) MUSTCHECK;

/* ---- keys.c: key names, combinations and text, for every driver ---------- */

/* Modifier bits, as in the first byte of a USB HID keyboard report. */
enum {
	KEYMOD_LCTRL = 0x01, KEYMOD_LSHIFT = 0x02, KEYMOD_LALT = 0x04, KEYMOD_LMETA = 0x08,
	KEYMOD_RCTRL = 0x10, KEYMOD_RSHIFT = 0x20, KEYMOD_RALT = 0x40, KEYMOD_RMETA = 0x80,
};

/* One key pressed with modifiers held, then everything released. */
struct keystroke {
	uint8_t mods;		/* KEYMOD_* */
	uint8_t usage;		/* USB HID usage (keyboard page); 0: the modifiers alone */
};

/*
 * Parses one combination as people write it: "ctrl+alt+delete", "Enter",
 * "shift+F10", "meta", "ctrl+c"; names are case-insensitive. Returns 0, or
 * -1 with a sentence in why that names the part it does not know.
 */
int keys_parse(const char *combo, struct keystroke *out, char *why, size_t len) MUSTCHECK;

/*
 * How a keyboard with layout ("", "us" or "en": US QWERTY; "de" German
 * QWERTZ; "fr" French AZERTY) types code point cp ('\n' and '\r' are Enter,
 * '\t' Tab). The de and fr sets are exactly what NanoKVM's paste types with
 * that langue (protocols/nanokvm.md section 7), so a caller that checks text
 * here first knows the device will not skip any of it. Returns 0, or -1 when
 * the layout has no key for cp or is unknown.
 */
int keys_for_char(uint32_t cp, const char *layout, struct keystroke *out) MUSTCHECK;

/* The X keysym of a usage, shifted or not (US layout); 0 when it has none. */
uint32_t keys_keysym(uint8_t usage, bool shifted);

/* The X keysym of one KEYMOD_* bit; 0 for anything else. */
uint32_t keys_mod_keysym(uint8_t bit);

/* ---- devices.c: the capture worker's access to PostgreSQL ------------------ */

/*
 * Loads device id (kind, URL, enabled) with its credentials opened under
 * the master key into *out. Returns 0, or -1 with *status CTL_ENODEVICE (no
 * such device, disabled) or CTL_EUNAVAILABLE (database or master key) and
 * the reason in why. out holds a password: the caller wipes it.
 */
int device_load(uint64_t id, struct device_cfg *out, enum ctl_status *status, char *why,
                size_t len) MUSTCHECK;

/* ---- devwatch.c: device changes reach open sessions ------------------------- */

/*
 * Listens for device changes (LISTEN kvmgate_devices) when not yet, or
 * again after a reconnection, and handles what has arrived. The loop calls
 * it at least once a second. Never fails: without the database it retries.
 */
void devwatch_tick(void);

/* Stops listening (at exit). */
void devwatch_close(void);

#endif
