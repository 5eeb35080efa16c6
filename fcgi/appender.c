/*
 * appender.c - the audit appender: one process of the FastCGI program that
 * writes the audit events of every worker, several per transaction.
 *
 * Appends to an organisation's chain are serialised by its lock until
 * COMMIT. When every worker appended for itself, each event paid a lock
 * hand-over between processes and a commit of its own, and on a busy
 * machine the hand-over (waking the next waiter) dominated. Workers now
 * hand their event to this process over a SOCK_SEQPACKET socket and wait
 * for its sequence number; the appender takes every event that is waiting,
 * appends them in one statement (audit_append_many, sql/010: one lock and
 * one head read per organisation, one INSERT) and answers
 * each worker after the COMMIT. The chain, its lock and its checks are the
 * same; a worker still acts only once its event is committed.
 *
 * Message, worker to appender: int64 organisation id, then the canonical
 * body (not NUL-terminated). Answer: int64 sequence number, or -1.
 * A worker that cannot reach the appender appends by itself.
 *
 * The appender also signs the periodic checkpoints: every
 * KVMGATE_AUDIT_CHECKPOINT_S it checkpoints each organisation whose head is
 * not one already (audit_checkpoint skips those), with the system as actor.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "audit.h"
#include "conf.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"

#define BODY_MAX (60 * 1024)		/* larger events are appended by the worker */
#define BATCH_MAX 256
#define CLIENTS_MAX 1024
#define ANSWER_TIMEOUT_S 10

struct pending {
	int fd;
	long long org_id;
	char *body;
};

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path) {
		log_errx("audit socket path too long: %s", path);
		return -1;
	}
	snprintf(sa->sun_path, sizeof sa->sun_path, "%s", path);
	return 0;
}

int appender_listen(void)
{
	const char *path = conf_str(CONF_AUDIT_SOCKET);
	struct sockaddr_un sa;
	int fd;

	if (unix_addr(path, &sa) < 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
		log_err("audit socket");
		return -1;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
		log_err("audit socket %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the appender process ------------------------------------------------- */

/* Appends the batch; seqs[i] gets each event's sequence number or -1. */
static void append_batch(struct pending *p, int n, long long *seqs)
{
	static const char sql[] = "SELECT ord, seq FROM audit_append_many($1::jsonb)";
	json_object *events = json_object_new_array();
	const char *param[1];
	PGresult *r;

	for (int i = 0; i < n; i++) {
		json_object *e = json_object_new_array();
		json_object_array_add(e, json_object_new_int64(p[i].org_id));
		json_object_array_add(e, json_object_new_string(p[i].body));
		json_object_array_add(events, e);
	}
	param[0] = json_object_to_json_string_ext(events, JSON_C_TO_STRING_PLAIN);
	r = db_query(sql, 1, param);
	for (int i = 0; i < n; i++)
		seqs[i] = -1;
	if (r != NULL && PQntuples(r) == n) {
		for (int i = 0; i < n; i++) {
			long long ord = atoll(PQgetvalue(r, i, 0));
			if (ord >= 1 && ord <= n)
				seqs[ord - 1] = atoll(PQgetvalue(r, i, 1));
		}
	} else {
		/* One bad event must not cost the others theirs. */
		if (n > 1)
			log_warnx("audit batch of %d failed; appending one by one", n);
		for (int i = 0; i < n; i++)
			seqs[i] = audit_append_body(p[i].org_id, p[i].body);
	}
	PQclear(r);
	json_object_put(events);
}

/* Reads every message waiting on fd into the batch; false when the worker hung up. */
static bool take(int fd, struct pending *batch, int *n, char *buf)
{
	for (;;) {
		ssize_t got;

		if (*n == BATCH_MAX)
			return true;
		got = recv(fd, buf, 8 + BODY_MAX, MSG_DONTWAIT);
		if (got < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		if (got == 0)
			return false;
		if (got <= 8) {
			long long bad = -1;
			if (send(fd, &bad, sizeof bad, MSG_NOSIGNAL) < 0)
				return false;
			continue;
		}
		batch[*n].fd = fd;
		memcpy(&batch[*n].org_id, buf, 8);
		batch[*n].body = xmalloc((size_t)got - 8 + 1);
		memcpy(batch[*n].body, buf + 8, (size_t)got - 8);
		batch[*n].body[got - 8] = '\0';
		(*n)++;
	}
}

/* Checkpoints every organisation with events since its last checkpoint. */
static void checkpoint_all(void)
{
	static const char sql[] =
		"SELECT o.id FROM organisations o"
		" WHERE EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = o.id) ORDER BY o.id";
	PGresult *r = db_query(sql, 0, NULL);
	int done = 0, failed = 0;

	if (r == NULL) {
		log_warnx("audit checkpoints: %s", db_last_error());
		return;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		long long org = atoll(PQgetvalue(r, i, 0));
		struct audit_event who;
		bool skipped = true;

		audit_event_init(&who, org, "audit.checkpoint");
		who.client_name = "kvmgate-audit";
		if (audit_checkpoint(org, conf_str(CONF_AUDIT_KEY_FILE), &who, NULL, &skipped) < 0)
			failed++;
		else
			done += !skipped;
	}
	PQclear(r);
	if (done > 0 || failed > 0)
		log_info("audit checkpoints: %d signed, %d failed", done, failed);
}

void appender_run(int listen_fd)
{
	struct pollfd *fds = xcalloc(CLIENTS_MAX + 1, sizeof *fds);
	struct pending batch[BATCH_MAX];
	long long seqs[BATCH_MAX];
	char *buf = xmalloc(8 + BODY_MAX);
	struct sigaction sa = { .sa_handler = SIG_DFL };
	uint64_t every = (uint64_t)conf_int(CONF_AUDIT_CHECKPOINT_S) * 1000000000u;
	uint64_t next_checkpoint = now_mono_ns() + every;
	int nfds = 1;

	sigaction(SIGTERM, &sa, NULL);
	prctl(PR_SET_NAME, "kvmgate-audit");	/* how ps and tests tell it from a worker */
	fds[0].fd = listen_fd;
	fds[0].events = POLLIN;
	for (;;) {
		int n = 0, wait_ms = -1;

		if (every > 0) {
			uint64_t now = now_mono_ns();
			if (now >= next_checkpoint) {
				checkpoint_all();
				next_checkpoint = now + every;
			}
			wait_ms = (int)((next_checkpoint - now) / 1000000u) + 1;
		}
		if (poll(fds, (nfds_t)nfds, wait_ms) < 0) {
			if (errno != EINTR)
				log_err("audit appender poll");
			continue;
		}
		if (fds[0].revents & POLLIN) {
			int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && nfds <= CLIENTS_MAX) {
				fds[nfds].fd = c;
				fds[nfds++].events = POLLIN;
			} else if (c >= 0) {
				close(c);
			}
		}
		for (int i = 1; i < nfds; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (!take(fds[i].fd, batch, &n, buf)) {
				close(fds[i].fd);
				fds[i].fd = -fds[i].fd - 1;	/* dropped below */
			}
		}
		if (n > 0)
			append_batch(batch, n, seqs);
		for (int i = 0; i < n; i++) {
			if (batch[i].fd >= 0 &&
			    send(batch[i].fd, &seqs[i], sizeof seqs[i], MSG_NOSIGNAL) < 0)
				log_warn("audit appender: a worker left before its answer");
			free(batch[i].body);
		}
		for (int i = 1; i < nfds; i++)
			if (fds[i].fd < 0)
				fds[i--] = fds[--nfds];
	}
}

/* ---- the workers' side ------------------------------------------------------ */

static int conn = -1;

static int connect_appender(void)
{
	struct sockaddr_un sa;
	struct timeval tv = { ANSWER_TIMEOUT_S, 0 };

	if (unix_addr(conf_str(CONF_AUDIT_SOCKET), &sa) < 0)
		return -1;
	if ((conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(conn, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
		close(conn);
		conn = -1;
		return -1;
	}
	return 0;
}

/* Sends one event to the appender; its sequence number, or -1 when not reachable. */
static long long via_appender(long long org_id, const struct buf *body, bool *reached)
{
	struct iovec iov[2] = { { &org_id, 8 }, { body->data, body->len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	long long seq;

	*reached = false;
	if (body->len > BODY_MAX || (conn < 0 && connect_appender() < 0))
		return -1;
	if (sendmsg(conn, &m, MSG_NOSIGNAL) != (ssize_t)(8 + body->len))
		goto lost;
	*reached = true;
	if (recv(conn, &seq, sizeof seq, 0) != (ssize_t)sizeof seq)
		goto lost;
	return seq;
lost:
	close(conn);
	conn = -1;
	return -1;
}

long long audit_submit(const struct audit_event *ev)
{
	struct buf body = BUF_INIT;
	char err[128];
	long long seq = -1;
	bool reached;

	if (audit_event_body(ev, &body, err, sizeof err) < 0) {
		log_fields(LOG_LVL_ERROR, "audit event refused", "action",
		           ev->action ? ev->action : "", "error", err, NULL);
		goto out;
	}
	seq = via_appender(ev->org_id, &body, &reached);
	/* Sent but unanswered: it may have been appended, so it is not sent
	 * again; the caller does not act. Never sent: append it here. */
	if (seq < 0 && !reached)
		seq = audit_append_body(ev->org_id, body.data);
	if (seq < 0)
		log_fields(LOG_LVL_ERROR, "audit append failed", "action", ev->action, NULL);
out:
	buf_free(&body);
	return seq;
}
