/*
 * wsc.c - the WebSocket client codec (RFC 6455) under the RFB driver. Written
 * here rather than through libwebsockets' client: RFB over WebSocket needs
 * only binary frames in a byte stream, and a codec without I/O slots under
 * the driver's TLS layers and into its epoll loop, and is fuzzed on its own.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wsc.h"

#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

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
	char v[128], want[64], *b;
	uint8_t md[SHA_DIGEST_LENGTH];
	char src[128];

	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
		snprintf(c->why, sizeof c->why, "WebSocket upgrade refused: %.60s",
		         strncmp(head, "HTTP/", 5) == 0 ? head : "not an HTTP answer");
		char *e = strstr(c->why, "\r\n");
		if (e != NULL)
			*e = '\0';
		return -1;
	}
	snprintf(src, sizeof src, "%s%s", c->key, GUID);
	SHA1((const uint8_t *)src, strlen(src), md);
	b = base64_encode(md, sizeof md);
	snprintf(want, sizeof want, "%s", b);
	free(b);
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

static void frame(const void *data, size_t n, uint8_t opcode, struct buf *out)
{
	uint8_t h[14], mask[4];
	size_t hl = 2;
	const uint8_t *p = data;

	h[0] = 0x80 | opcode;
	if (n < 126) {
		h[1] = 0x80 | (uint8_t)n;
	} else if (n < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	random_bytes(mask, 4);
	memcpy(h + hl, mask, 4);
	buf_append(out, h, hl + 4);
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
		const uint8_t *p = (const uint8_t *)c->in.data + off;
		size_t have = c->in.len - off, hl = 2;
		uint64_t len;
		uint8_t op, mask[4] = { 0 };
		bool masked;

		if (have < 2)
			break;
		op = p[0] & 0x0f;
		masked = p[1] & 0x80;
		len = p[1] & 0x7f;
		if (p[0] & 0x70) {
			snprintf(c->why, sizeof c->why, "WebSocket frame with reserved bits 0x%02x", p[0] & 0x70);
			return -1;
		}
		if (len == 126) {
			if (have < 4)
				break;
			len = (uint64_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (len == 127) {
			if (have < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | p[2 + i];
			hl = 10;
		}
		if (len > WSC_MAX_FRAME) {
			snprintf(c->why, sizeof c->why, "WebSocket frame of %llu bytes", (unsigned long long)len);
			return -1;
		}
		if (masked) {
			if (have < hl + 4)
				break;
			memcpy(mask, p + hl, 4);
			hl += 4;
		}
		if (have < hl + len)
			break;
		/* Unmask in place: the bytes are ours. */
		if (masked)
			for (size_t i = 0; i < len; i++)
				((uint8_t *)p)[hl + i] ^= mask[i & 3];
		switch (op) {
		case 0: case 2:
			if (c->base64 && op == 2) {
				snprintf(c->why, sizeof c->why, "binary WebSocket frame on a base64 connection");
				return -1;
			}
			if (c->base64 ? b64_up(p + hl, len, up) < 0 : (buf_append(up, p + hl, len), 0) < 0)
				goto bad64;
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
			if (len > 125) {
				snprintf(c->why, sizeof c->why, "WebSocket ping of %llu bytes", (unsigned long long)len);
				return -1;
			}
			frame(p + hl, len, 10, down);
			break;
		case 10:
			break;
		default:
			snprintf(c->why, sizeof c->why, "WebSocket frame with opcode %u", op);
			return -1;
		}
		off += hl + len;
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
