/*
 * drv_nanokvm.h - private to the NanoKVM driver's files: drv_nanokvm.c (the
 * connection sequence, MJPEG, status polling), drv_nanokvm_ws.c (/api/ws:
 * HID reports, heartbeat, reconnect) and drv_nanokvm_ops.c (operations).
 */
#ifndef KVMGATE_DRV_NANOKVM_H
#define KVMGATE_DRV_NANOKVM_H

#include <json-c/json.h>

#include "capture.h"

#define NK_TOKEN_MAX 2048
#define NK_MS (1000000ull)

enum nk_step { NK_LOGIN, NK_INFO, NK_STREAM, NK__STEPS };

struct nk;
typedef void (*nk_fn)(struct nk *k);

/*
 * The driver's timerfd, on the heap apart from struct nk: an event of the
 * batch in which the session closes may still name it (watch_free_later).
 */
struct nk_timer {
	struct watch w;
	struct nk *k;
};

/* One REST exchange of a secondary handle (operations, status polling). */
struct nk_call {
	CURL *e;
	struct buf body;
	long status;
	CURLcode result;
	int code;			/* envelope code; -1000 when there was no envelope */
	char msg[160];			/* envelope msg */
	json_object *data;		/* envelope data (owned), or NULL */
	nk_fn then;			/* called when it ends */
	struct nk *k;
	bool running;
	bool relogin;			/* a 401 led to a new login already */
	char *path, *post;		/* the request, to repeat it after a new login */
	long timeout_ms;
	nk_fn then_after_login;
};

struct nk {
	struct session *s;
	char base[SESSION_URL_MAX + 1];	/* the device URL without options or a final '/' */
	bool insecure;			/* ?tls=insecure: the certificate is not checked */
	char curl_why[CURL_ERROR_SIZE];	/* libcurl's detail of k->e's last failure */
	CURL *e;			/* the connection sequence, then the stream */
	enum nk_step step;
	struct buf body;
	char token[NK_TOKEN_MAX + 1];
	char cookie_token[NK_TOKEN_MAX + 1];
	bool relogin_used, stream_refused, framed;
	struct mjpeg mj;
	int ver;			/* application version, VER-style; 0 unknown */

	/* where the WebSocket goes: learnt from the info request */
	char addr[64], host[300], host_name[260];
	uint16_t port;
	bool tls;

	struct nk_timer *timer;		/* heartbeat, reconnect, op steps, polling */

	/* /api/ws */
	struct ws *ws;
	bool ws_open;
	uint32_t ws_failures;
	uint64_t ws_retry_ns, ws_beat_ns, ws_connect_by_ns;
	char ws_why[128];

	/* the running operation (the session runs one at a time) */
	struct dev_op *op;
	struct nk_call oc;
	nk_fn op_next;			/* runs at op_due_ns (timer) or when the WebSocket opens */
	uint64_t op_due_ns;
	bool op_wants_ws;		/* waiting for /api/ws to open */
	bool op_on_ws;			/* has sent reports: a WebSocket close fails it */
	int hid_wait;			/* op_next waits for USB: 1 then /api/ws too, 2 not */
	uint64_t hid_quiet_ns;		/* USB re-enumerates until then: HID waits */
	/* per-op progress */
	size_t at, n, sent_before;
	int phase;
	uint16_t px, py;		/* last absolute pointer position sent */
	bool pointer_known;
	struct buf text;		/* text being pasted, normalised */
	struct buf result;
	bool led_before;

	/* status polling: power LED and HDMI */
	struct nk_call pc;
	uint64_t poll_due_ns;
	int led;			/* -1 unknown, 0 off, 1 on */
	int hdmi_enabled, hdmi_signal;
};

#define NK_VER(a, b, c) ((a) * 10000 + (b) * 100 + (c))

/* drv_nanokvm.c */
void nk_arm(struct nk *k);
/* Points e at k->base + path with the TLS checks the device's URL asks for. */
void nk_url(struct nk *k, CURL *e, const char *path);
void nk_call_init(struct nk *k, struct nk_call *c);
void nk_call_cleanup(struct nk_call *c);
/* Starts a REST call on c (POST when post != NULL); c->then runs when it ends. */
void nk_call(struct nk *k, struct nk_call *c, const char *path, const char *post, long timeout_ms,
             nk_fn then);
void nk_led_seen(struct nk *k, bool on);
/* After k->hdmi_enabled or k->hdmi_signal changed: records them and tells the
 * session whether a picture can come (capture enabled, signal not known to be
 * missing). */
void nk_hdmi_seen(struct nk *k);

/* drv_nanokvm_ws.c */
void nk_ws_start(struct nk *k);
void nk_ws_stop(struct nk *k);
void nk_ws_tick(struct nk *k, uint64_t now);
uint64_t nk_ws_due(const struct nk *k);
/* Sends one HID message (already in the firmware's format). Returns 0 or -1. */
int nk_ws_send(struct nk *k, bool binary, const uint8_t *p, size_t n) MUSTCHECK;

/* drv_nanokvm_ops.c */
void nk_op_start(struct session *s, struct dev_op *op);
void nk_op_tick(struct nk *k, uint64_t now);
void nk_op_ws_open(struct nk *k);
void nk_op_ws_closed(struct nk *k, const char *why);
void nk_op_abort(struct nk *k);

#endif
