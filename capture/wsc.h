/*
 * wsc.h - a small RFC 6455 WebSocket client codec, no I/O: the opening
 * handshake (request and the check of the server's answer) and framing
 * (client frames masked, server frames parsed). drv_rfb.c carries RFB in it
 * (rfb.md section 5); a byte stream either way, any message boundaries.
 */
#ifndef KVMGATE_WSC_H
#define KVMGATE_WSC_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"

#define WSC_MAX_HEADER 8192		/* largest HTTP answer to the upgrade */

/* One connection's codec state; zero it, then wsc_request. */
struct wsc {
	char key[32];		/* Sec-WebSocket-Key sent */
	bool open;		/* the upgrade was accepted */
	bool base64;		/* the server chose the base64 subprotocol (text frames) */
	bool closed;		/* the server sent a close frame */
	struct buf in;		/* received, not yet parsed */
	char why[128];
};

/* Appends the upgrade request for path on host (the Host header, with a port) to out. */
void wsc_request(struct wsc *c, const char *host_port, const char *path, struct buf *out);

/*
 * Feeds bytes from the server. Payload bytes of data frames (base64 ones
 * decoded) are appended to up; pings are answered into down (masked
 * pongs). Returns 0 (more wanted or done), or -1 with c->why (a refused
 * upgrade, a malformed or oversized frame, a close).
 */
int wsc_feed(struct wsc *c, const void *data, size_t n, struct buf *up, struct buf *down) MUSTCHECK;

/* Appends one masked frame carrying n payload bytes (binary, or base64 text) to out. */
void wsc_frame(struct wsc *c, const void *data, size_t n, struct buf *out);

#endif
