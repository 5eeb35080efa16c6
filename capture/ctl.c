/*
 * ctl.c - the capture worker's control socket: a SOCK_SEQPACKET listener,
 * one message per datagram, each checked against the message table before
 * its handler runs. Handlers answer immediately; nothing here blocks.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"

#define MAX_CLIENTS 256

struct client {
	struct watch w;
	struct client *next;
};

static struct {
	struct watch listener;
	char path[108];
	struct client *clients;
	int nclients;
} srv = { .listener = { .fd = -1 } };

typedef size_t (*ctl_fn)(const struct ctl_hdr *h, const void *payload, void *reply);

static size_t reply_hdr(void *reply, const struct ctl_hdr *req, uint16_t type,
                        int32_t status, const void *payload, uint32_t len)
{
	struct ctl_hdr h = { CTL_VERSION, type, len, req->id, status };

	memcpy(reply, &h, sizeof h);
	if (len > 0)
		memcpy((char *)reply + sizeof h, payload, len);
	return sizeof h + len;
}

static size_t reply_error(void *reply, const struct ctl_hdr *req, int32_t status,
                          const char *reason)
{
	return reply_hdr(reply, req, CTL_ERROR, status, reason, (uint32_t)strlen(reason) + 1);
}

static size_t on_ping(const struct ctl_hdr *h, const void *payload, void *reply)
{
	struct ctl_pong p = { cap.started_wall_ns, (uint32_t)getpid(), 0 };

	return reply_hdr(reply, h, CTL_PONG, CTL_OK, &p, sizeof p);
}

static size_t on_stats(const struct ctl_hdr *h, const void *payload, void *reply)
{
	struct ctl_stats_reply r = { 0 };
	struct shm_stats st;

	shm_stats(cap.frames, &st);
	r.uptime_ms = (now_mono_ns() - cap.started_mono_ns) / 1000000u;
	r.shm_generation = st.generation;
	r.sessions = cap.sessions;
	r.slots_total = st.slots_total;
	r.slots_used = st.slots_used;
	return reply_hdr(reply, h, CTL_STATS_REPLY, CTL_OK, &r, sizeof r);
}

int (*ctl_device_loader)(uint64_t id, struct device_cfg *out, enum ctl_status *status,
                         char *why, size_t len) = device_load;

/*
 * Demand for a device: an idle or failed session is (re)opened with the
 * device as the database has it now, a backing-off one takes it for its
 * next attempt; a connected one only has its idle time extended. Returns
 * the session, or NULL with the status and reason of the refusal.
 */
static struct session *demand(uint64_t device_id, enum ctl_status *st, char *why, size_t len)
{
	struct session *s = session_find(device_id);
	struct device_cfg cfg;

	if (s != NULL && s->state != SS_IDLE && s->state != SS_FAILED && s->state != SS_BACKING_OFF)
		return session_ensure(&s->cfg);
	/* Between attempts the configuration is re-read: a fixed password is used at once. */
	*st = CTL_ENODEVICE;
	snprintf(why, len, "no such device");
	if (device_id == 0 || ctl_device_loader(device_id, &cfg, st, why, len) < 0)
		return NULL;
	if (s != NULL)
		session_update(s, &cfg);
	s = session_ensure(&cfg);
	explicit_bzero(&cfg, sizeof cfg);
	return s;
}

/* Answers where the session stands, without waiting for it. */
static size_t on_session_ensure(const struct ctl_hdr *h, const void *payload, void *reply)
{
	struct ctl_session_ensure req;
	struct ctl_session_reply r = { 0 };
	enum ctl_status st;
	struct session *s;
	char why[160];

	memcpy(&req, payload, sizeof req);
	if ((s = demand(req.device_id, &st, why, sizeof why)) == NULL)
		return reply_error(reply, h, st, why);
	r.device_id = s->cfg.id;
	r.slot = s->slot;
	r.frame_seq = s->slot >= 0 ? shm_slot_seq(cap.frames, s->slot) : 0;
	if (s->drv != NULL && s->drv->want_frame != NULL && s->state == SS_STREAMING &&
	    r.frame_seq <= req.want_after)
		s->drv->want_frame(s);
	r.state = s->state;
	r.error = s->last_error;
	r.attempts = s->attempts;
	snprintf(r.why, sizeof r.why, "%s", s->last_why);
	snprintf(r.firmware, sizeof r.firmware, "%s", s->firmware);
	return reply_hdr(reply, h, CTL_SESSION_REPLY, CTL_OK, &r, sizeof r);
}

#define OP_TIMEOUT_MAX_MS 300000u
#define OP_TIMEOUT_DEFAULT_MS 15000u

/* The client whose message is being handled; NULL when tests call ctl_handle. */
static struct client *calling;

/*
 * A device operation: queued on the device's session and answered when it
 * ends (session_op_done -> ctl_op_answer), not here. Refusals before it is
 * queued are answered at once.
 */
static size_t on_device_op(const struct ctl_hdr *h, const void *payload, void *reply)
{
	struct dev_op *op;
	enum ctl_status st;
	struct session *s;
	char why[160];
	uint32_t ms;

	op = xcalloc(1, sizeof *op);
	memcpy(&op->req, payload, sizeof op->req);
	if ((s = demand(op->req.device_id, &st, why, sizeof why)) == NULL) {
		free(op);
		return reply_error(reply, h, st, why);
	}
	op->data = xmalloc(op->req.len);
	memcpy(op->data, (const char *)payload + sizeof op->req, op->req.len);
	ms = op->req.timeout_ms == 0 ? OP_TIMEOUT_DEFAULT_MS
	     : op->req.timeout_ms > OP_TIMEOUT_MAX_MS ? OP_TIMEOUT_MAX_MS : op->req.timeout_ms;
	op->req.timeout_ms = ms;
	op->deadline_ns = now_mono_ns() + (uint64_t)ms * 1000000u;
	op->reply_to = calling;
	op->reply_id = h->id;
	session_op_submit(s, op);
	return 0;
}

void ctl_op_answer(const struct dev_op *op, const struct session *s, enum session_error e,
                   const char *why)
{
	static uint8_t msg[CTL_MAX_MSG];
	struct ctl_device_op_reply r = { s->cfg.id, e, s->state, s->width, s->height };
	struct ctl_hdr req = { CTL_VERSION, CTL_DEVICE_OP, 0, op->reply_id, 0 };
	const char *text = e != SE_NONE ? why : op->result.len > 0 ? op->result.data : "";
	size_t tlen = e != SE_NONE ? strlen(why) : op->result.len, n;
	struct client *c = op->reply_to;
	char payload[sizeof r + CTL_OP_DATA_MAX];

	log_info("device %llu: %s %s%s%s", (unsigned long long)s->cfg.id, dev_op_name(op->req.op),
	         e == SE_NONE ? "done" : session_error_name(e), e == SE_NONE ? "" : ": ",
	         e == SE_NONE ? "" : why);
	if (c == NULL)
		return;
	if (tlen >= CTL_OP_DATA_MAX) {
		r.error = SE_PROTOCOL;
		text = "the device's answer is too large";
		tlen = strlen(text);
	}
	memcpy(payload, &r, sizeof r);
	memcpy(payload + sizeof r, text, tlen);
	payload[sizeof r + tlen] = '\0';
	n = reply_hdr(msg, &req, CTL_DEVICE_OP_REPLY, CTL_OK, payload,
	              (uint32_t)(sizeof r + tlen + 1));
	if (send(c->w.fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_warn("device %llu: answer to the control socket client lost",
		         (unsigned long long)s->cfg.id);
}

/* Requests this side answers; replies and unknown types are refused. */
static const ctl_fn handlers[CTL__TYPES] = {
	[CTL_PING] = on_ping,
	[CTL_STATS] = on_stats,
	[CTL_SESSION_ENSURE] = on_session_ensure,
	[CTL_DEVICE_OP] = on_device_op,
};

size_t ctl_handle(const void *msg, size_t n, void *reply)
{
	struct ctl_hdr h = { 0 };
	enum ctl_status st = ctl_check(msg, n);

	if (n >= sizeof h)
		memcpy(&h, msg, sizeof h);
	if (st != CTL_OK) {
		log_warnx("control message refused: type %u (%s), %zu bytes: %s", h.type,
		          ctl_type_name(h.type), n,
		          st == CTL_EVERSION ? "wrong version" : "bad type or size");
		return reply_error(reply, &h, st, st == CTL_EVERSION
		                   ? "protocol version mismatch" : "malformed message");
	}
	if (handlers[h.type] == NULL)
		return reply_error(reply, &h, CTL_EBADMSG, "not a request");
	return handlers[h.type](&h, (const char *)msg + sizeof h, reply);
}

static void client_close(struct client *c)
{
	struct client **pp = &srv.clients;

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	session_forget_caller(c);
	watch_del(&c->w);
	close(c->w.fd);
	free(c);
	srv.nclients--;
}

static void on_client(struct watch *w, uint32_t events)
{
	struct client *c = (struct client *)w;
	uint8_t msg[CTL_MAX_MSG], reply[CTL_MAX_MSG];
	ssize_t n;

	n = recv(w->fd, msg, sizeof msg, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);
		return;
	}
	if ((size_t)n > sizeof msg) {
		struct ctl_hdr h = { 0 };
		memcpy(&h, msg, sizeof h);
		log_warnx("control message of %zd bytes exceeds %d", n, CTL_MAX_MSG);
		n = (ssize_t)reply_error(reply, &h, CTL_EBADMSG, "message too large");
		(void)send(w->fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		return;
	}
	calling = c;
	n = (ssize_t)ctl_handle(msg, (size_t)n, reply);
	calling = NULL;
	if (n > 0 && send(w->fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		client_close(c);
}

static void on_accept(struct watch *w, uint32_t events)
{
	for (;;) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("control socket accept");
			return;
		}
		if (srv.nclients >= MAX_CLIENTS) {
			log_warnx("control socket: %d clients already; refusing one", MAX_CLIENTS);
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof *c);
		c->w.fd = fd;
		c->w.on_ready = on_client;
		if (watch_add(&c->w, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = srv.clients;
		srv.clients = c;
		srv.nclients++;
	}
}

int ctl_server_open(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		log_warnx("control socket path too long: %s", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	snprintf(srv.path, sizeof srv.path, "%s", path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("control socket");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || chmod(path, 0660) < 0 ||
	    listen(fd, 128) < 0) {
		log_warn("control socket %s", path);
		close(fd);
		return -1;
	}
	srv.listener.fd = fd;
	srv.listener.on_ready = on_accept;
	if (watch_add(&srv.listener, EPOLLIN) < 0) {
		close(fd);
		unlink(path);
		return -1;
	}
	return 0;
}

void ctl_server_close(void)
{
	while (srv.clients != NULL)
		client_close(srv.clients);
	if (srv.listener.fd >= 0) {
		watch_del(&srv.listener);
		close(srv.listener.fd);
		unlink(srv.path);
		srv.listener.fd = -1;
	}
}
