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
 * links them to their chains itself and appends them in one statement
 * (audit_insert_many, sql/014: one lock and one head check per
 * organisation, one INSERT) and answers each worker after the COMMIT. The chain, its lock and its checks are the
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
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "conf.h"
#include "crypt.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"

#define BODY_MAX (60 * 1024)		/* larger events are appended by the worker */
#define BATCH_MAX 256
#define CLIENTS_MAX 1024
#define ANSWER_TIMEOUT_S 10
#define HEADS_MAX 64			/* organisations whose chain head is kept */
#define TS_LEN 80			/* a canonical time, with room the compiler can prove */

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

/*
 * The chain links are computed here: the appender keeps the head of every
 * organisation it appended to (seq, hash, time) from its last batch,
 * numbers, stamps and hashes the new events itself, and audit_insert_many
 * (sql/014) checks each link under the organisation's lock and inserts them.
 * When another writer moved a head (the CLI, a worker appending by itself,
 * a checkpoint) the insert answers 0; the heads are read again and the
 * batch linked once more.
 */
struct head {
	long long org_id;
	long long seq;
	uint64_t ts_us;			/* time of the head event, µs since the epoch */
	uint8_t hash[AUDIT_HASH_LEN];
};

static struct head heads[HEADS_MAX];
static int nheads;

static struct head *head_find(long long org_id)
{
	for (int i = 0; i < nheads; i++)
		if (heads[i].org_id == org_id)
			return &heads[i];
	return NULL;
}

/* Forgets every head (another writer appended, or the table is full). */
static void heads_forget(void)
{
	nheads = 0;
}

/* Reads from PostgreSQL the heads of the batch's organisations not known. */
static int heads_load(const struct pending *p, int n)
{
	static const char sql[] =
		"SELECT o, coalesce(e.seq, a.seq, 0),"
		"       encode(coalesce(e.row_hash, a.hash, decode(repeat('00', 32), 'hex')), 'hex'),"
		"       coalesce((extract(epoch FROM e.occurred_at) * 1000000)::bigint, 0)"
		"  FROM unnest($1::bigint[]) o"
		"  LEFT JOIN LATERAL (SELECT x.seq, x.row_hash, x.occurred_at FROM audit_events x"
		"                      WHERE x.org_id = o ORDER BY x.seq DESC LIMIT 1) e ON true"
		"  LEFT JOIN audit_anchors a ON a.org_id = o";
	struct buf orgs = BUF_INIT;
	const char *param[1];
	PGresult *r;
	int missing = 0;

	buf_puts(&orgs, "{");
	for (int i = 0; i < n; i++) {
		if (head_find(p[i].org_id) != NULL)
			continue;
		buf_printf(&orgs, "%s%lld", missing++ ? "," : "", p[i].org_id);
	}
	buf_puts(&orgs, "}");
	if (missing == 0) {
		buf_free(&orgs);
		return 0;
	}
	if (nheads + missing > HEADS_MAX)
		heads_forget();
	param[0] = orgs.data;
	r = db_query(sql, 1, param);
	buf_free(&orgs);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r) && nheads < HEADS_MAX; i++) {
		struct head *h = &heads[nheads];

		h->org_id = atoll(PQgetvalue(r, i, 0));
		h->seq = atoll(PQgetvalue(r, i, 1));
		h->ts_us = strtoull(PQgetvalue(r, i, 3), NULL, 10);
		if (head_find(h->org_id) == NULL &&
		    hex_decode(PQgetvalue(r, i, 2), AUDIT_HASH_LEN, h->hash) == 0)
			nheads++;
	}
	PQclear(r);
	return 0;
}

/* Appends s to a PostgreSQL array literal as a quoted element. */
static void array_text(struct buf *a, const char *s)
{
	buf_puts(a, a->len > 1 ? ",\"" : "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf_puts(a, "\\");
		buf_append(a, s, 1);
	}
	buf_puts(a, "\"");
}

/* Appends a bytea element (hex input form) to a PostgreSQL array literal. */
static void array_bytea(struct buf *a, const uint8_t *v, size_t n)
{
	char hex[2 * AUDIT_HASH_LEN + 1];

	hex_encode(v, n, hex);
	buf_printf(a, "%s\"\\\\x%s\"", a->len > 1 ? "," : "", hex);
}

/* The canonical time of an event: what to_char(... 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') gives. */
static void ts_format(uint64_t us, char out[TS_LEN])
{
	time_t secs = (time_t)(us / 1000000u);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, TS_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (unsigned)(us % 1000000u));
}

/*
 * Links the batch to the known heads and inserts it. Returns 1 when
 * appended (seqs filled), 0 when a head moved, -1 on an error.
 */
static int link_and_insert(struct pending *p, int n, long long *seqs)
{
	static const char sql[] =
		"SELECT audit_insert_many($1::bigint[], $2::bigint[], $3::text[], $4::text[],"
		" $5::bytea[], $6::bytea[])";
	struct buf a[6] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	struct head next[BATCH_MAX];
	struct buf canon = BUF_INIT;
	const char *param[6];
	uint64_t now = now_wall_ns() / 1000u;
	int nnext = 0, ret = -1;
	PGresult *r;

	for (int k = 0; k < 6; k++)
		buf_puts(&a[k], "{");
	for (int i = 0; i < n; i++) {
		struct head *h = NULL;
		uint8_t prev[AUDIT_HASH_LEN];
		char ts[TS_LEN];

		for (int j = 0; j < nnext && h == NULL; j++)
			if (next[j].org_id == p[i].org_id)
				h = &next[j];
		if (h == NULL) {
			const struct head *known = head_find(p[i].org_id);
			if (known == NULL)
				goto out;
			h = &next[nnext++];
			*h = *known;
		}
		/* Seq order is time order, whoever stamped the event before. */
		h->ts_us = now > h->ts_us ? now : h->ts_us + 1;
		h->seq++;
		memcpy(prev, h->hash, sizeof prev);
		ts_format(h->ts_us, ts);
		buf_reset(&canon);
		buf_printf(&canon, "{\"body\":%s,\"org\":%lld,\"seq\":%lld,\"ts\":\"%s\",\"v\":1}",
		           p[i].body, p[i].org_id, h->seq, ts);
		/* hash = SHA-256(prev || canon), as audit_append computes it. */
		sha256_cat(prev, sizeof prev, canon.data, canon.len, h->hash);
		seqs[i] = h->seq;
		buf_printf(&a[0], "%s%lld", a[0].len > 1 ? "," : "", p[i].org_id);
		buf_printf(&a[1], "%s%lld", a[1].len > 1 ? "," : "", h->seq);
		array_text(&a[2], ts);
		array_text(&a[3], p[i].body);
		array_bytea(&a[4], prev, sizeof prev);
		array_bytea(&a[5], h->hash, sizeof h->hash);
	}
	for (int k = 0; k < 6; k++) {
		buf_puts(&a[k], "}");
		param[k] = a[k].data;
	}
	if ((r = db_query(sql, 6, param)) != NULL) {
		ret = atoll(PQgetvalue(r, 0, 0)) == n;
		PQclear(r);
	}
	if (ret == 1)
		for (int j = 0; j < nnext; j++)
			*head_find(next[j].org_id) = next[j];
out:
	for (int k = 0; k < 6; k++)
		buf_free(&a[k]);
	buf_free(&canon);
	return ret;
}

/* Appends the batch; seqs[i] gets each event's sequence number or -1. */
static void append_batch(struct pending *p, int n, long long *seqs)
{
	uint64_t start = now_mono_ns();
	int done = -1;

	for (int attempt = 0; attempt < 2 && done != 1; attempt++) {
		if (attempt > 0)
			heads_forget();
		if (heads_load(p, n) < 0)
			break;
		done = link_and_insert(p, n, seqs);
	}
	metrics_audit_batch(n, done == 1, now_mono_ns() - start);
	if (done == 1)
		return;
	/* One bad event must not cost the others theirs. */
	heads_forget();
	if (n > 1)
		log_warnx("audit batch of %d failed; appending one by one", n);
	for (int i = 0; i < n; i++)
		seqs[i] = audit_append_body(p[i].org_id, p[i].body);
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
				heads_forget();	/* the checkpoints moved them */
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
	uint64_t start;
	bool reached;

	if (audit_event_body(ev, &body, err, sizeof err) < 0) {
		log_fields(LOG_LVL_ERROR, "audit event refused", "action",
		           ev->action ? ev->action : "", "error", err, NULL);
		goto out;
	}
	start = now_mono_ns();
	seq = via_appender(ev->org_id, &body, &reached);
	if (seq > 0)
		metrics_audit_wait(now_mono_ns() - start);
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
