/*
 * ws.c - a WebSocket client (RFC 6455) on the capture worker's epoll loop.
 *
 * The Debian libwebsockets is built without external-poll support, so it
 * cannot share our loop; this client needs only a socket. It never resolves
 * names (that would block): the caller passes a numeric address, which
 * drivers take from libcurl after their first HTTP request to the device
 * (CURLINFO_PRIMARY_IP). TLS is OpenSSL on the same non-blocking socket,
 * verified like libcurl's default (peer and host name) unless the caller
 * says insecure. Every callback runs
 * from the watch handler; after ws_free (from a callback or anywhere) the
 * client makes no further call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MAX 8192
#define MESSAGE_MAX (1024 * 1024)

enum ws_state { WS_CONNECTING, WS_TLS, WS_UPGRADING, WS_OPEN, WS_CLOSING };

struct ws {
	struct watch w;			/* first: watch_free_later frees the whole */
	enum ws_state st;
	bool dead;			/* ws_free ran: touch nothing but this */
	const struct ws_handler *h;
	void *arg;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	char key[32];			/* Sec-WebSocket-Key sent */
	struct buf out;			/* bytes waiting for the socket */
	size_t out_off;
	struct buf in;			/* bytes read and not yet parsed */
	struct buf msg;			/* a fragmented message being assembled */
	int msg_opcode;
	uint32_t events;		/* what epoll watches now */
};

size_t ws_frame_header(uint8_t *out, int opcode, size_t len, const uint8_t mask[4])
{
	size_t n = 0;

	out[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		out[n++] = (uint8_t)(0x80 | len);
	} else if (len <= 0xffff) {
		out[n++] = 0x80 | 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	} else {
		out[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(out + n, mask, 4);
	return n + 4;
}

int ws_frame_parse(const uint8_t *p, size_t n, struct ws_frame *f)
{
	size_t hl = 2;
	uint64_t len;

	if (n < 2)
		return 0;
	if (p[0] & 0x70)
		return -1;	/* reserved bits: no extension was negotiated */
	f->fin = (p[0] & 0x80) != 0;
	f->opcode = p[0] & 0x0f;
	f->masked = (p[1] & 0x80) != 0;
	len = p[1] & 0x7f;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		hl = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		hl = 10;
		if (len >> 63)
			return -1;
	}
	if (f->opcode >= 8 && (len > 125 || !f->fin))
		return -1;	/* control frames are short and whole */
	if ((f->opcode > 2 && f->opcode < 8) || f->opcode > 10)
		return -1;
	if (f->masked) {
		if (n < hl + 4)
			return 0;
		memcpy(f->mask, p + hl, 4);
		hl += 4;
	}
	if (len > MESSAGE_MAX)
		return -1;
	f->len = (size_t)len;
	f->header = hl;
	return n - hl < f->len ? 0 : (int)hl;
}

void ws_accept_key(const char *key, char out[29])
{
	uint8_t md[SHA_DIGEST_LENGTH];
	char *cat = xasprintf("%s%s", key, WS_GUID), *b64;

	SHA1((const uint8_t *)cat, strlen(cat), md);
	b64 = base64_encode(md, sizeof md);
	snprintf(out, 29, "%s", b64);
	free(cat);
	free(b64);
}

/* Reads up to n bytes: > 0 read, 0 nothing now, -1 closed or failed. */
static ssize_t io_read(struct ws *c, void *p, size_t n)
{
	ssize_t r;

	if (c->ssl != NULL) {
		int k = SSL_read(c->ssl, p, (int)n), e;
		if (k > 0)
			return k;
		e = SSL_get_error(c->ssl, k);
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
	}
	r = recv(c->w.fd, p, n, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return r == 0 ? -1 : r;
}

/* Writes up to n bytes: >= 0 written, -1 failed. */
static ssize_t io_write(struct ws *c, const void *p, size_t n)
{
	ssize_t r;

	if (c->ssl != NULL) {
		int k = SSL_write(c->ssl, p, (int)n), e;
		if (k > 0)
			return k;
		e = SSL_get_error(c->ssl, k);
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
	}
	r = send(c->w.fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return r;
}

static void set_events(struct ws *c, uint32_t ev)
{
	if (ev != c->events && watch_mod(&c->w, ev) == 0)
		c->events = ev;
}

/* Ends the connection: tells the owner once, then forgets everything. */
static void fail(struct ws *c, int code, const char *why)
{
	const struct ws_handler *h = c->h;
	void *arg = c->arg;

	ws_free(c);
	h->on_close(arg, code, why);
}

/* Sends what is queued; returns -1 after fail(). */
static int flush(struct ws *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = io_write(c, c->out.data + c->out_off, c->out.len - c->out_off);
		if (n < 0) {
			fail(c, 0, "connection broken while sending");
			return -1;
		}
		if (n == 0)
			break;
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
	}
	set_events(c, EPOLLIN | (c->out.len > 0 ? EPOLLOUT : 0));
	return 0;
}

static void queue_frame(struct ws *c, int opcode, const void *p, size_t n)
{
	uint8_t hdr[14], mask[4];
	size_t hl, at;

	random_bytes(mask, sizeof mask);
	hl = ws_frame_header(hdr, opcode, n, mask);
	buf_append(&c->out, hdr, hl);
	at = c->out.len;
	buf_append(&c->out, p, n);
	for (size_t i = 0; i < n; i++)
		c->out.data[at + i] ^= mask[i & 3];
}

int ws_send(struct ws *c, bool binary, const void *p, size_t n)
{
	if (c == NULL || c->dead || c->st != WS_OPEN)
		return -1;
	queue_frame(c, binary ? 2 : 1, p, n);
	return flush(c);
}

bool ws_is_open(const struct ws *c)
{
	return c != NULL && !c->dead && c->st == WS_OPEN;
}

static void send_upgrade(struct ws *c, const struct ws_params *p)
{
	uint8_t raw[16];
	char *b64;

	random_bytes(raw, sizeof raw);
	b64 = base64_encode(raw, sizeof raw);
	snprintf(c->key, sizeof c->key, "%s", b64);
	free(b64);
	/* No Origin: HEAD firmware checks it against Host when present (nanokvm.md §4). */
	buf_printf(&c->out, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
	           p->path, p->host, c->key);
	if (p->cookie != NULL && p->cookie[0] != '\0')
		buf_printf(&c->out, "Cookie: %s\r\n", p->cookie);
	buf_puts(&c->out, "\r\n");
}

/* Checks the server's answer to the upgrade once it is complete. Returns -1 after fail(). */
static int check_upgrade(struct ws *c)
{
	char *end, *line, want[29], why[96];
	int status = 0;
	bool accept_ok = false;
	size_t hlen;

	end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
	if (end == NULL) {
		if (c->in.len > HANDSHAKE_MAX) {
			fail(c, 0, "upgrade answer too long");
			return -1;
		}
		return 0;
	}
	hlen = (size_t)(end - c->in.data) + 4;
	*end = '\0';
	if (sscanf(c->in.data, "HTTP/1.%*d %d", &status) != 1) {
		fail(c, 0, "upgrade answered without an HTTP status line");
		return -1;
	}
	if (status != 101) {
		snprintf(why, sizeof why, "upgrade refused: HTTP %d", status);
		fail(c, status, why);
		return -1;
	}
	ws_accept_key(c->key, want);
	for (line = strstr(c->in.data, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
		static const char name[] = "sec-websocket-accept:";
		const char *v = line + 2;
		if (strncasecmp(v, name, sizeof name - 1) != 0)
			continue;
		v += sizeof name - 1;
		while (*v == ' ' || *v == '\t')
			v++;
		accept_ok = strncmp(v, want, 28) == 0;
	}
	if (!accept_ok) {
		fail(c, 0, "upgrade answered without the right Sec-WebSocket-Accept");
		return -1;
	}
	memmove(c->in.data, c->in.data + hlen, c->in.len - hlen);
	c->in.len -= hlen;
	c->st = WS_OPEN;
	c->h->on_open(c->arg);
	return c->dead ? -1 : 0;
}

/* Handles every complete frame in c->in. Returns -1 once c is gone. */
static int parse_frames(struct ws *c)
{
	struct ws_frame f;
	int hl;

	while ((hl = ws_frame_parse((uint8_t *)c->in.data, c->in.len, &f)) != 0) {
		uint8_t *pl = (uint8_t *)c->in.data + hl;
		if (hl < 0 || f.masked) {
			fail(c, 0, "malformed frame from the server");
			return -1;
		}
		if (f.opcode == 8) {
			int code = f.len >= 2 ? pl[0] << 8 | pl[1] : 1005;
			char why[160];
			snprintf(why, sizeof why, "closed by the device (%d%s%.*s)", code,
			         f.len > 2 ? " " : "", f.len > 2 ? (int)f.len - 2 : 0, (char *)pl + 2);
			fail(c, code, why);
			return -1;
		} else if (f.opcode == 9) {
			queue_frame(c, 10, pl, f.len);
		} else if (f.opcode == 10) {
			/* unsolicited pong: nothing to do */
		} else {
			if (f.opcode != 0) {
				buf_reset(&c->msg);
				c->msg_opcode = f.opcode;
			}
			if (c->msg.len + f.len > MESSAGE_MAX) {
				fail(c, 0, "message too large");
				return -1;
			}
			buf_append(&c->msg, pl, f.len);
			if (f.fin) {
				c->h->on_message(c->arg, c->msg_opcode == 2, (uint8_t *)c->msg.data, c->msg.len);
				if (c->dead)
					return -1;
				buf_reset(&c->msg);
			}
		}
		memmove(c->in.data, c->in.data + hl + f.len, c->in.len - (size_t)hl - f.len);
		c->in.len -= (size_t)hl + f.len;
	}
	return flush(c);
}

static int tls_step(struct ws *c)
{
	int k = SSL_connect(c->ssl), e;
	char why[160];

	if (k == 1) {
		c->st = WS_UPGRADING;
		return flush(c);
	}
	e = SSL_get_error(c->ssl, k);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		set_events(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		return 0;
	}
	snprintf(why, sizeof why, "TLS: %s", ERR_reason_error_string(ERR_get_error()) ?: "handshake failed");
	fail(c, 0, why);
	return -1;
}

static void on_ready(struct watch *w, uint32_t events)
{
	struct ws *c = (struct ws *)w;
	uint8_t tmp[16384];

	if (c->st == WS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		char why[128];
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			snprintf(why, sizeof why, "connect: %s", strerror(err ? err : errno));
			fail(c, 0, why);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		c->st = c->ssl != NULL ? WS_TLS : WS_UPGRADING;
	}
	if (c->st == WS_TLS) {
		if (tls_step(c) < 0 || c->st == WS_TLS)
			return;
	}
	if ((events & EPOLLOUT) || c->out.len > 0)
		if (flush(c) < 0)
			return;
	for (;;) {
		ssize_t n = io_read(c, tmp, sizeof tmp);
		if (n < 0) {
			fail(c, 0, "connection closed without a close frame");
			return;
		}
		if (n == 0)
			break;
		buf_append(&c->in, tmp, (size_t)n);
		if (c->st == WS_UPGRADING && check_upgrade(c) < 0)
			return;
		if (c->st == WS_OPEN && parse_frames(c) < 0)
			return;
	}
}

struct ws *ws_connect(const struct ws_params *p, const struct ws_handler *h, void *arg, char *why,
                      size_t len)
{
	struct ws *c = xcalloc(1, sizeof *c);
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int one = 1;

	if (inet_pton(AF_INET, p->addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(p->port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, p->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(p->port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		snprintf(why, len, "not a numeric address: %s", p->addr);
		free(c);
		return NULL;
	}
	c->h = h;
	c->arg = arg;
	c->w.on_ready = on_ready;
	c->w.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->w.fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		free(c);
		return NULL;
	}
	(void)setsockopt(c->w.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->w.fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		snprintf(why, len, "connect: %s", strerror(errno));
		close(c->w.fd);
		free(c);
		return NULL;
	}
	if (p->tls) {
		c->ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (c->ssl_ctx == NULL || SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1 ||
		    (c->ssl = SSL_new(c->ssl_ctx)) == NULL)
			abort();
		SSL_set_verify(c->ssl, p->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
		SSL_set_tlsext_host_name(c->ssl, p->host_name);
		if ((!p->insecure && SSL_set1_host(c->ssl, p->host_name) != 1) ||
		    SSL_set_fd(c->ssl, c->w.fd) != 1)
			abort();
	}
	send_upgrade(c, p);
	c->events = EPOLLIN | EPOLLOUT;
	if (watch_add(&c->w, c->events) < 0) {
		snprintf(why, len, "cannot watch the socket");
		close(c->w.fd);
		SSL_free(c->ssl);
		SSL_CTX_free(c->ssl_ctx);
		buf_free(&c->out);
		free(c);
		return NULL;
	}
	return c;
}

void ws_free(struct ws *c)
{
	if (c == NULL || c->dead)
		return;
	if (c->st == WS_OPEN) {
		/* A courtesy close frame (1000), sent only if the socket takes it now. */
		static const uint8_t normal[2] = { 0x03, 0xe8 };
		buf_reset(&c->out);
		c->out_off = 0;
		queue_frame(c, 8, normal, sizeof normal);
		(void)io_write(c, c->out.data, c->out.len);
	}
	c->dead = true;
	watch_del(&c->w);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	SSL_CTX_free(c->ssl_ctx);
	close(c->w.fd);
	buf_free(&c->out);
	buf_free(&c->in);
	buf_free(&c->msg);
	watch_free_later(&c->w);
}
