/*
 * session.c - device sessions: one per device in use, opened on the first
 * demand, kept while demand lasts (KVMGATE_SESSION_IDLE_MS), reconnected
 * with exponential backoff and jitter. The state machine is explicit: one
 * enum, one table of allowed transitions, one session_set_state(). Each
 * session has one timerfd armed at its next deadline (idle, retry, frame).
 * Nothing here knows a device protocol: that is the driver table's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "capture.h"
#include "conf.h"
#include "log.h"

#define MS (1000000ull)
#define OPS_QUEUED_MAX 64	/* per session; more is a caller gone wrong */

struct session_timing session_timing = {
	.idle_ns = 60000 * MS,
	.frame_timeout_ns = 10000 * MS,
	.backoff_first_ms = 500,
	.backoff_max_ms = 30000,
	.jitter_pct = 20,
};

static struct session *sessions;

void (*session_op_answer)(const struct dev_op *op, const struct session *s, enum session_error e,
                          const char *why) = ctl_op_answer;

/* allowed[from][to]: every other transition is a bug, logged and refused. */
static const bool allowed[SS__COUNT][SS__COUNT] = {
	[SS_IDLE] = { [SS_CONNECTING] = true, [SS_FAILED] = true },
	[SS_CONNECTING] = { [SS_AUTHENTICATING] = true, [SS_STREAMING] = true,
	                    [SS_BACKING_OFF] = true, [SS_IDLE] = true, [SS_FAILED] = true },
	[SS_AUTHENTICATING] = { [SS_STREAMING] = true, [SS_BACKING_OFF] = true,
	                        [SS_IDLE] = true, [SS_FAILED] = true },
	[SS_STREAMING] = { [SS_BACKING_OFF] = true, [SS_IDLE] = true, [SS_FAILED] = true },
	[SS_BACKING_OFF] = { [SS_CONNECTING] = true, [SS_IDLE] = true, [SS_FAILED] = true },
	[SS_FAILED] = { [SS_CONNECTING] = true, [SS_IDLE] = true },
};

/* States in which the driver holds connections and a frame deadline runs. */
static bool is_live(enum session_state st)
{
	return st == SS_CONNECTING || st == SS_AUTHENTICATING || st == SS_STREAMING;
}

uint32_t session_backoff_ms(uint32_t attempt, uint32_t rnd)
{
	uint64_t ms = session_timing.backoff_first_ms;
	int64_t span, jitter;

	for (uint32_t i = 1; i < attempt && ms < session_timing.backoff_max_ms; i++)
		ms *= 2;
	if (ms > session_timing.backoff_max_ms)
		ms = session_timing.backoff_max_ms;
	/* rnd picks a point in [-span, +span]; jitter keeps reconnecting devices apart. */
	span = (int64_t)ms * session_timing.jitter_pct / 100;
	jitter = span > 0 ? (int64_t)(rnd % (uint32_t)(2 * span + 1)) - span : 0;
	return (uint32_t)((int64_t)ms + jitter);
}

/* The one place a session changes state; logs every transition with its cause. */
static void session_set_state(struct session *s, enum session_state to, const char *why)
{
	enum session_state from = s->state;

	if (!allowed[from][to]) {
		log_errx("device %llu: refused transition %s -> %s (%s)",
		         (unsigned long long)s->cfg.id, session_state_name(from), session_state_name(to), why);
		return;
	}
	s->state = to;
	s->state_since_ns = now_mono_ns();
	if (is_live(to) || to == SS_BACKING_OFF)
		cap.sessions += !(is_live(from) || from == SS_BACKING_OFF);
	else
		cap.sessions -= is_live(from) || from == SS_BACKING_OFF;
	log_info("device %llu: %s -> %s (%s)", (unsigned long long)s->cfg.id,
	         session_state_name(from), session_state_name(to), why);
	devstate_session(s->cfg.id, to, why);
}

/* Arms the timerfd at the earliest deadline of the current state (none: disarmed). */
static void session_arm(struct session *s)
{
	struct itimerspec its = { 0 };
	uint64_t at = 0;

	if (s->state != SS_IDLE && !s->cfg.keep_warm)
		at = s->demand_ns + session_timing.idle_ns;
	if (s->state == SS_BACKING_OFF && (at == 0 || s->retry_ns < at))
		at = s->retry_ns;
	if (is_live(s->state) && (at == 0 || s->last_frame_ns + session_timing.frame_timeout_ns < at))
		at = s->last_frame_ns + session_timing.frame_timeout_ns;
	for (struct dev_op *op = s->ops; op != NULL; op = op->next)
		if (at == 0 || op->deadline_ns < at)
			at = op->deadline_ns;
	if (at != 0) {
		its.it_value.tv_sec = (time_t)(at / 1000000000u);
		its.it_value.tv_nsec = (long)(at % 1000000000u);
	}
	if (timerfd_settime(s->timer.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_warn("device %llu: timerfd_settime", (unsigned long long)s->cfg.id);
}

/* Stops the driver's I/O if it has any. */
static void driver_stop(struct session *s)
{
	if (s->drv != NULL && s->drv_state != NULL)
		s->drv->close(s);
	s->drv_state = NULL;
}

/* Starts (or restarts) connecting: needs a driver for the kind and a slot. */
static void session_connect(struct session *s, const char *why)
{
	if ((s->drv = driver_find(s->cfg.kind)) == NULL) {
		session_error(s, SE_UNSUPPORTED, "no driver for this device kind");
		return;
	}
	if (s->slot < 0 && (s->slot = shm_slot_acquire(cap.frames, s->cfg.id)) < 0) {
		session_error(s, SE_CONFIG, errno == ENOSPC ? "no free frame slot" : "frame slot");
		return;
	}
	session_set_state(s, SS_CONNECTING, why);
	s->last_frame_ns = now_mono_ns();	/* the frame deadline counts from here */
	if (s->drv->open(s) == 0)
		session_arm(s);
}

static void on_timer(struct watch *w, uint32_t events)
{
	struct session *s = (struct session *)w;
	uint64_t n;

	while (read(w->fd, &n, sizeof n) == sizeof n)
		;
	session_tick(s, now_mono_ns());
}

/* Ends the operations whose deadline passed; a running one takes the connection with it. */
static void ops_expire(struct session *s, uint64_t now)
{
	struct dev_op *op = s->ops, *next;
	char why[160];

	if (op != NULL && s->op_running && now >= op->deadline_ns) {
		snprintf(why, sizeof why, "the device did not finish %s within %u ms",
		         dev_op_name(op->req.op), op->req.timeout_ms);
		session_error(s, SE_TIMEOUT, why);	/* ends op, and the driver forgets it */
		return;
	}
	for (; op != NULL; op = next) {
		next = op->next;
		if (now < op->deadline_ns || (op == s->ops && s->op_running))
			continue;
		if (s->last_error != SE_NONE && s->last_error != SE_NO_SIGNAL)
			session_op_done(s, op, s->last_error, s->last_why);
		else
			session_op_done(s, op, SE_TIMEOUT, "the device was not ready in time");
	}
}

void session_tick(struct session *s, uint64_t now)
{
	ops_expire(s, now);
	if (s->state != SS_IDLE && !s->cfg.keep_warm && s->ops == NULL &&
	    now >= s->demand_ns + session_timing.idle_ns) {
		driver_stop(s);
		session_set_state(s, SS_IDLE, "no demand");
		shm_slot_release(cap.frames, s->slot);
		s->slot = -1;
		s->attempts = 0;
	} else if (s->state == SS_BACKING_OFF && now >= s->retry_ns) {
		session_connect(s, "retry");
		return;
	} else if (is_live(s->state) && now >= s->last_frame_ns + session_timing.frame_timeout_ns &&
	           s->last_error == SE_NO_SIGNAL) {
		s->last_frame_ns = now;	/* no frame is due while the device has no signal */
	} else if (is_live(s->state) && now >= s->last_frame_ns + session_timing.frame_timeout_ns) {
		char why[64];
		snprintf(why, sizeof why, "no frame within %llu ms",
		         (unsigned long long)(session_timing.frame_timeout_ns / MS));
		session_error(s, SE_TIMEOUT, why);
		return;
	}
	session_arm(s);
}

struct session *session_find(uint64_t device_id)
{
	struct session *s;

	for (s = sessions; s != NULL && s->cfg.id != device_id; s = s->next)
		;
	return s;
}

struct session *session_ensure(const struct device_cfg *cfg)
{
	struct session *s = session_find(cfg->id);

	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->slot = -1;
		s->state = SS_IDLE;
		s->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		s->timer.on_ready = on_timer;
		if (s->timer.fd < 0 || watch_add(&s->timer, EPOLLIN) < 0)
			abort();	/* out of descriptors: the supervisor restarts us */
		s->next = sessions;
		sessions = s;
	}
	s->demand_ns = now_mono_ns();
	/* A live session keeps its configuration: cfg may even be &s->cfg. A failed one
	 * (retrying cannot help) tries again at once only with a new configuration, else
	 * once the longest backoff has passed: a reader polling for frames sees the
	 * failure and its reason instead of a connection attempt per poll. */
	if (s->state == SS_IDLE ||
	    (s->state == SS_FAILED &&
	     (memcmp(cfg, &s->cfg, sizeof *cfg) != 0 ||
	      s->demand_ns >= s->state_since_ns + session_timing.backoff_max_ms * MS))) {
		if (cfg != &s->cfg)
			s->cfg = *cfg;
		s->last_error = SE_NONE;
		s->last_why[0] = '\0';
		session_connect(s, "demand");
	} else {
		session_arm(s);
	}
	return s;
}

void session_update(struct session *s, const struct device_cfg *cfg)
{
	if (s->state != SS_BACKING_OFF || memcmp(&s->cfg, cfg, sizeof *cfg) == 0)
		return;
	s->cfg = *cfg;
	s->attempts = 0;
	/* The last error was about the old configuration: readers should wait for the new one. */
	s->last_error = SE_NONE;
	s->last_why[0] = '\0';
	s->retry_ns = now_mono_ns();
	log_info("device %llu: configuration changed; retrying now", (unsigned long long)s->cfg.id);
	session_arm(s);
}

/* Starts the oldest queued operation when the session can take it. */
static void ops_kick(struct session *s)
{
	if (s->ops == NULL || s->op_running ||
	    (s->state != SS_AUTHENTICATING && s->state != SS_STREAMING))
		return;
	s->op_running = true;
	s->drv->start_op(s, s->ops);
}

void session_authenticated(struct session *s)
{
	if (s->state == SS_CONNECTING)
		session_set_state(s, SS_AUTHENTICATING, "logged in");
	ops_kick(s);
}

void session_alive(struct session *s)
{
	s->last_frame_ns = now_mono_ns();
}

void session_signal(struct session *s, bool signal)
{
	if (!is_live(s->state) || signal == (s->last_error != SE_NO_SIGNAL))
		return;
	s->last_frame_ns = now_mono_ns();
	if (signal) {
		s->last_error = SE_NONE;
		s->last_why[0] = '\0';
		log_info("device %llu: video signal back", (unsigned long long)s->cfg.id);
	} else {
		s->last_error = SE_NO_SIGNAL;
		snprintf(s->last_why, sizeof s->last_why, "the device reports no HDMI signal: the "
		         "machine is off or its display is asleep");
		if (s->state != SS_STREAMING) {
			session_set_state(s, SS_STREAMING, "logged in; no HDMI signal");
			ops_kick(s);
		} else {
			log_info("device %llu: no HDMI signal", (unsigned long long)s->cfg.id);
		}
	}
	session_arm(s);
}

void session_op_submit(struct session *s, struct dev_op *op)
{
	struct dev_op **pp = &s->ops;
	int n = 0;

	s->demand_ns = now_mono_ns();
	if (s->state == SS_FAILED || s->drv == NULL) {
		session_op_done(s, op, s->last_error != SE_NONE ? s->last_error : SE_CONFIG,
		                s->last_why);
		return;
	}
	if (!(s->drv->ops & OP_BIT(op->req.op))) {
		char why[96];
		snprintf(why, sizeof why, "%s devices cannot do %s", s->cfg.kind,
		         dev_op_name(op->req.op));
		session_op_done(s, op, SE_UNSUPPORTED, why);
		return;
	}
	for (; *pp != NULL; pp = &(*pp)->next)
		n++;
	if (n >= OPS_QUEUED_MAX) {
		session_op_done(s, op, SE_TIMEOUT, "too many operations already wait for this device");
		return;
	}
	op->next = NULL;
	*pp = op;
	ops_kick(s);
	session_arm(s);
}

void session_op_done(struct session *s, struct dev_op *op, enum session_error e, const char *why)
{
	struct dev_op **pp = &s->ops;
	bool was_running = false;

	while (*pp != NULL && *pp != op)
		pp = &(*pp)->next;
	if (*pp == op) {
		was_running = op == s->ops && s->op_running;
		*pp = op->next;
		if (was_running)
			s->op_running = false;
	}
	session_op_answer(op, s, e, why != NULL && why[0] != '\0' ? why : session_error_name(e));
	free(op->data);
	buf_free(&op->result);
	free(op);
	if (was_running)
		ops_kick(s);
}

/* Ends every queued operation with error e (the session cannot serve them any more). */
static void ops_fail_all(struct session *s, enum session_error e, const char *why)
{
	while (s->ops != NULL)
		session_op_done(s, s->ops, e, why);
}

int session_frame(struct session *s, struct shm_frame_info *info, const void *bytes)
{
	if (shm_publish(cap.frames, s->slot, info, bytes) < 0) {
		log_warn("device %llu: frame of %u bytes not published",
		         (unsigned long long)s->cfg.id, info->len);
		return -1;
	}
	s->frames++;
	s->last_frame_ns = now_mono_ns();
	s->attempts = 0;
	if (s->last_error == SE_NO_SIGNAL) {
		s->last_error = SE_NONE;
		s->last_why[0] = '\0';
	}
	if (s->state != SS_STREAMING) {
		s->last_error = SE_NONE;
		s->last_why[0] = '\0';
		session_set_state(s, SS_STREAMING, "first frame");
		session_arm(s);
		ops_kick(s);
	}
	return 0;
}

void session_error(struct session *s, enum session_error e, const char *why)
{
	/* The driver forgets the running operation; it is answered once the state moved
	 * on, so that nothing starts on the stopped driver. Waiting ones may see a
	 * reconnection, unless no retry can help. */
	struct dev_op *running = s->ops != NULL && s->op_running ? s->ops : NULL;
	bool hopeless = e == SE_CONFIG || e == SE_UNSUPPORTED;
	uint32_t r, ms;
	char msg[160];

	s->op_running = false;
	driver_stop(s);
	s->last_error = e;
	snprintf(s->last_why, sizeof s->last_why, "%s", why);
	if (hopeless) {
		snprintf(msg, sizeof msg, "%s: %s", session_error_name(e), why);
		session_set_state(s, SS_FAILED, msg);
	} else {
		random_bytes(&r, sizeof r);
		ms = session_backoff_ms(++s->attempts, r);
		s->retry_ns = now_mono_ns() + ms * MS;
		snprintf(msg, sizeof msg, "%s: %s; retry %u in %u ms", session_error_name(e), why,
		         s->attempts, ms);
		session_set_state(s, SS_BACKING_OFF, msg);
	}
	if (running != NULL)
		session_op_done(s, running, e, s->last_why);
	if (hopeless || e == SE_AUTH)
		ops_fail_all(s, e, s->last_why);
	session_arm(s);
}

struct session *session_first(void)
{
	return sessions;
}

void session_reconfigure(struct session *s, const struct device_cfg *cfg)
{
	struct dev_op *running = s->ops != NULL && s->op_running ? s->ops : NULL;

	if (s->state == SS_IDLE || (cfg != NULL && memcmp(&s->cfg, cfg, sizeof *cfg) == 0))
		return;
	s->op_running = false;
	driver_stop(s);
	s->attempts = 0;
	s->last_error = SE_NONE;
	s->last_why[0] = '\0';
	if (cfg == NULL) {
		session_set_state(s, SS_IDLE, "device disabled or removed");
		shm_slot_release(cap.frames, s->slot);
		s->slot = -1;
		explicit_bzero(s->cfg.password, sizeof s->cfg.password);
		ops_fail_all(s, SE_CONFIG, "the device was disabled or removed");
		session_arm(s);
		return;
	}
	s->cfg = *cfg;
	if (s->state == SS_FAILED) {
		/* A failed session waits for demand, which opens it at once (session_ensure). */
		session_set_state(s, SS_IDLE, "configuration changed");
		shm_slot_release(cap.frames, s->slot);
		s->slot = -1;
	} else {
		if (s->state != SS_BACKING_OFF)
			session_set_state(s, SS_BACKING_OFF, "configuration changed");
		s->retry_ns = now_mono_ns();
	}
	if (running != NULL)
		session_op_done(s, running, SE_CONFIG, "the device's configuration changed meanwhile");
	session_arm(s);
}

void session_forget_caller(const void *reply_to)
{
	for (struct session *s = sessions; s != NULL; s = s->next)
		for (struct dev_op *op = s->ops; op != NULL; op = op->next)
			if (op->reply_to == reply_to)
				op->reply_to = NULL;
}

void session_close_all(void)
{
	while (sessions != NULL) {
		struct session *s = sessions;
		sessions = s->next;
		driver_stop(s);
		s->op_running = false;
		ops_fail_all(s, SE_OFFLINE, "the capture worker is stopping");
		if (s->slot >= 0)
			shm_slot_release(cap.frames, s->slot);
		watch_del(&s->timer);
		close(s->timer.fd);
		explicit_bzero(&s->cfg, sizeof s->cfg);
		free(s);
	}
	cap.sessions = 0;
}
