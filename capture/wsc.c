/*
 * wsc.c - the WebSocket client codec (RFC 6455) under the RFB driver: the
 * upgrade and framing without I/O, on ws.c's frame helpers. ws.c's client
 * owns its socket and TLS; RFB needs a codec that slots between the
 * driver's layers instead (wss:// TLS below it, VeNCrypt TLS above it) and
 * carries a byte stream in binary (or base64 text) messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "capture.h"
#include "wsc.h"

void wsc_request(struct wsc *c, const char *host_port, const char *path, struct buf *out)
{
	uint8_t nonce[16];
	char *k;

	random_bytes(nonce, sizeof nonce);
	k = base64_encode(nonce, sizeof nonce);
	snprintf(c->key, sizeof c->key, "%s", k);
	free(k);
	buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	           "Sec-WebSocket-Protocol: binary, base64\r\n\r\n", path, host_port, c->key);
}

/* The value of header name in the answer head (lines after the first), or NULL; copied to v. */
static const char *header(const char *head, const char *name, char *v, size_t vlen)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2, *e;
		if (strncasecmp(l, name, n) != 0 || l[n] != ':')
			continue;
		l += n + 1;
		while (*l == ' ' || *l == '\t')
			l++;
		e = strstr(l, "\r\n");
		if (e == NULL)
			return NULL;
		while (e > l && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		snprintf(v, vlen, "%.*s", (int)(e - l), l);
		return v;
	}
	return NULL;
}

static int check_answer(struct wsc *c, const char *head)
{
	char v[128], want[29];

	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
		char *e;
		snprintf(c->why, sizeof c->why, "WebSocket upgrade refused: %.60s",
		         strncmp(head, "HTTP/", 5) == 0 ? head : "not an HTTP answer");
		if ((e = strstr(c->why, "\r\n")) != NULL)
			*e = '\0';
		return -1;
	}
	ws_accept_key(c->key, want);
	if (header(head, "Sec-WebSocket-Accept", v, sizeof v) == NULL || strcmp(v, want) != 0) {
		snprintf(c->why, sizeof c->why, "WebSocket upgrade without a valid Sec-WebSocket-Accept");
		return -1;
	}
	c->base64 = header(head, "Sec-WebSocket-Protocol", v, sizeof v) != NULL && strcasecmp(v, "base64") == 0;
	c->open = true;
	return 0;
}

/* Decodes base64 text into up. Returns 0, or -1 on a character outside the alphabet. */
static int b64_up(const uint8_t *p, size_t n, struct buf *up)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int v;
		uint8_t ch = p[i];
		if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
		else if (ch == '+') v = 62;
		else if (ch == '/') v = 63;
		else if (ch == '=' || ch == '\r' || ch == '\n') continue;
		else return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			uint8_t o = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
			buf_append(up, &o, 1);
		}
	}
	return 0;
}

/* Appends one masked client frame (ws.c's header) carrying n bytes of data. */
static void frame(const void *data, size_t n, int opcode, struct buf *out)
{
	uint8_t h[14], mask[4];
	const uint8_t *p = data;
	size_t hl;

	random_bytes(mask, 4);
	hl = ws_frame_header(h, opcode, n, mask);
	buf_append(out, h, hl);
	buf_reserve(out, n);
	for (size_t i = 0; i < n; i++)
		out->data[out->len + i] = (char)(p[i] ^ mask[i & 3]);
	out->len += n;
	out->data[out->len] = '\0';
}

void wsc_frame(struct wsc *c, const void *data, size_t n, struct buf *out)
{
	if (c->base64) {
		char *b = base64_encode(data, n);
		frame(b, strlen(b), 1, out);
		free(b);
		return;
	}
	frame(data, n, 2, out);
}

int wsc_feed(struct wsc *c, const void *data, size_t n, struct buf *up, struct buf *down)
{
	size_t off = 0;

	buf_append(&c->in, data, n);
	if (!c->open) {
		char *end = c->in.len > 0 ? memmem(c->in.data, c->in.len, "\r\n\r\n", 4) : NULL;
		if (end == NULL) {
			if (c->in.len > WSC_MAX_HEADER) {
				snprintf(c->why, sizeof c->why, "WebSocket upgrade answer longer than %d bytes", WSC_MAX_HEADER);
				return -1;
			}
			return 0;
		}
		end[2] = '\0';
		if (check_answer(c, c->in.data) < 0)
			return -1;
		off = (size_t)(end + 4 - c->in.data);
	}
	for (;;) {
		uint8_t *p = (uint8_t *)c->in.data + off;
		struct ws_frame f;
		int hl = c->in.len > off ? ws_frame_parse(p, c->in.len - off, &f) : 0;
		size_t len;

		if (hl == 0)
			break;
		if (hl < 0) {
			snprintf(c->why, sizeof c->why, "malformed WebSocket frame (reserved bits, opcode or length)");
			return -1;
		}
		len = f.len;
		/* Unmask in place (servers should not mask, some do): the bytes are ours. */
		if (f.masked)
			for (size_t i = 0; i < len; i++)
				p[hl + i] ^= f.mask[i & 3];
		switch (f.opcode) {
		case 0: case 2:
			if (c->base64 && f.opcode == 2) {
				snprintf(c->why, sizeof c->why, "binary WebSocket frame on a base64 connection");
				return -1;
			}
			if (c->base64 && b64_up(p + hl, len, up) < 0)
				goto bad64;
			if (!c->base64 && len > 0)
				buf_append(up, p + hl, len);
			break;
		case 1:
			if (!c->base64 || b64_up(p + hl, len, up) < 0)
				goto bad64;
			break;
		case 8:
			c->closed = true;
			snprintf(c->why, sizeof c->why, "the server closed the WebSocket");
			return -1;
		case 9:
			frame(p + hl, len, 10, down);
			break;
		default:
			break;	/* 10, pong: nothing to do; ws_frame_parse refused the others */
		}
		off += (size_t)hl + len;
	}
	if (off > 0) {
		memmove(c->in.data, c->in.data + off, c->in.len - off);
		c->in.len -= off;
	}
	return 0;
bad64:
	snprintf(c->why, sizeof c->why, "WebSocket text frame that is not base64 RFB data");
	return -1;
}
