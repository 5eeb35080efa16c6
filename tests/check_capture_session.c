/*
 * check_capture_session.c - the session state machine (capture/session.c)
 * driven by a fake driver in the driver table: transitions, frames in the
 * slot, backoff growth and jitter bounds, frame timeout, idle close.
 * Time is passed to session_tick, so nothing here sleeps.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "capture.h"
#include "check_run.h"

#define MS 1000000ull

static char seg[64];
static struct { int opens, closes; bool fail_open; } fake;
static int fake_token;

static int fake_open(struct session *s)
{
	fake.opens++;
	if (fake.fail_open) {
		session_error(s, SE_OFFLINE, "connection refused");
		return -1;
	}
	s->drv_state = &fake_token;
	return 0;
}

static void fake_close(struct session *s)
{
	ck_assert_ptr_eq(s->drv_state, &fake_token);
	fake.closes++;
	s->drv_state = NULL;
}

/* Operations: keys finish at once, text waits for the test to finish it. */
static struct dev_op *running;
static int started;

static void fake_start_op(struct session *s, struct dev_op *op)
{
	started++;
	if (op->req.op == OP_KEYS) {
		buf_append(&op->result, "{\"ok\":true}", 11);
		session_op_done(s, op, SE_NONE, NULL);
		return;
	}
	running = op;
}

static const struct driver fake_driver = {
	.kind = "fake",
	.ops = OP_BIT(OP_KEYS) | OP_BIT(OP_TEXT),
	.open = fake_open,
	.close = fake_close,
	.start_op = fake_start_op,
};

/* What session_op_done answered, in order. */
static struct answer { uint32_t op; enum session_error e; char text[96]; } answers[16];
static int nanswers;

static void record_answer(const struct dev_op *op, const struct session *s, enum session_error e,
                          const char *why)
{
	ck_assert_int_lt(nanswers, 16);
	answers[nanswers].op = op->req.op;
	answers[nanswers].e = e;
	snprintf(answers[nanswers].text, sizeof answers[0].text, "%s",
	         e != SE_NONE ? why : op->result.len ? op->result.data : "");
	nanswers++;
	if (op == running)
		running = NULL;
}

static struct dev_op *new_op(uint32_t kind, uint64_t timeout_ms)
{
	struct dev_op *op = xcalloc(1, sizeof *op);

	op->req.op = kind;
	op->data = xstrdup("x");
	op->req.len = 2;
	op->req.timeout_ms = (uint32_t)timeout_ms;
	op->deadline_ns = now_mono_ns() + timeout_ms * MS;
	return op;
}

static void setup(void)
{
	snprintf(seg, sizeof seg, "/kvmgate-check-session-%ld", (long)getpid());
	ck_assert_int_eq(shm_create(seg, 4, 65536, &cap.frames), 0);
	cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(cap.epoll_fd, 0);
	for (int i = 0; i < DRIVERS_MAX - 1; i++)
		if (drivers[i] == NULL) {
			drivers[i] = &fake_driver;
			break;
		}
	memset(&fake, 0, sizeof fake);
	session_op_answer = record_answer;
	nanswers = 0;
	started = 0;
	running = NULL;
	session_timing.idle_ns = 60000 * MS;
	session_timing.frame_timeout_ns = 10000 * MS;
}

static void teardown(void)
{
	session_close_all();
	shm_close(cap.frames);
	cap.frames = NULL;
	close(cap.epoll_fd);
}

static struct device_cfg cfg_of(uint64_t id, const char *kind)
{
	struct device_cfg c = { .id = id };

	snprintf(c.kind, sizeof c.kind, "%s", kind);
	snprintf(c.url, sizeof c.url, "http://127.0.0.1:1");
	return c;
}

static void frame(struct session *s, uint8_t fill)
{
	uint8_t px[64];
	struct shm_frame_info fi = { .width = 8, .height = 8, .format = SHM_FMT_JPEG,
	                             .len = sizeof px };

	memset(px, fill, sizeof px);
	ck_assert_int_eq(session_frame(s, &fi, px), 0);
}

START_TEST(test_lifecycle)
{
	struct device_cfg c = cfg_of(42, "fake");
	struct session *s = session_ensure(&c);
	struct shm_frame_info fi;
	uint8_t out[64];
	uint64_t t;

	ck_assert_int_eq(s->state, SS_CONNECTING);
	ck_assert_int_eq(fake.opens, 1);
	ck_assert_int_ge(s->slot, 0);
	ck_assert_int_eq(shm_find(cap.frames, 42), s->slot);
	ck_assert_uint_eq(cap.sessions, 1);
	ck_assert_ptr_eq(session_ensure(&c), s);	/* a second demand opens nothing */
	ck_assert_int_eq(fake.opens, 1);

	session_authenticated(s);
	ck_assert_int_eq(s->state, SS_AUTHENTICATING);
	frame(s, 7);
	ck_assert_int_eq(s->state, SS_STREAMING);
	ck_assert_int_eq(shm_read(cap.frames, s->slot, &fi, out, sizeof out), 0);
	ck_assert_uint_eq(fi.seq, 1);
	ck_assert_uint_eq(fi.device_id, 42);
	ck_assert_uint_eq(out[0], 7);

	/* An error: driver closed, backoff around 500 ms. */
	t = now_mono_ns();
	session_error(s, SE_OFFLINE, "connection reset");
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	ck_assert_int_eq(s->last_error, SE_OFFLINE);
	ck_assert_int_eq(fake.closes, 1);
	ck_assert_ptr_null(s->drv_state);
	ck_assert_uint_ge(s->retry_ns, t + 400 * MS);
	ck_assert_uint_le(s->retry_ns, now_mono_ns() + 600 * MS);
	ck_assert_uint_eq(cap.sessions, 1);

	/* Before the retry time nothing happens; at it, a new connection. */
	session_tick(s, s->retry_ns - 1);
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	session_tick(s, s->retry_ns);
	ck_assert_int_eq(s->state, SS_CONNECTING);
	ck_assert_int_eq(fake.opens, 2);

	/* No frame in time: a timeout, and the second backoff is about twice the first. */
	t = now_mono_ns();
	session_tick(s, s->last_frame_ns + session_timing.frame_timeout_ns);
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	ck_assert_int_eq(s->last_error, SE_TIMEOUT);
	ck_assert_uint_eq(s->attempts, 2);
	ck_assert_uint_ge(s->retry_ns, t + 800 * MS);
	ck_assert_uint_le(s->retry_ns, now_mono_ns() + 1200 * MS);
	ck_assert_int_eq(fake.closes, 2);

	/* A frame after recovery resets the attempts and the error. */
	session_tick(s, s->retry_ns);
	frame(s, 9);
	ck_assert_int_eq(s->state, SS_STREAMING);
	ck_assert_uint_eq(s->attempts, 0);
	ck_assert_int_eq(s->last_error, SE_NONE);
	ck_assert_uint_eq(shm_slot_seq(cap.frames, s->slot), 2);

	/* No demand for the idle time: closed, slot withdrawn (frames still coming). */
	session_timing.frame_timeout_ns = 2 * session_timing.idle_ns;
	session_tick(s, s->demand_ns + session_timing.idle_ns - 1);
	ck_assert_int_eq(s->state, SS_STREAMING);
	session_tick(s, s->demand_ns + session_timing.idle_ns);
	ck_assert_int_eq(s->state, SS_IDLE);
	ck_assert_int_eq(s->slot, -1);
	ck_assert_int_eq(shm_find(cap.frames, 42), -1);
	ck_assert_int_eq(fake.closes, 3);
	ck_assert_uint_eq(cap.sessions, 0);

	/* Demand again: the same session reopens. */
	ck_assert_ptr_eq(session_ensure(&c), s);
	ck_assert_int_eq(s->state, SS_CONNECTING);
	ck_assert_int_eq(fake.opens, 4);
}
END_TEST

START_TEST(test_backing_off_goes_idle)
{
	struct device_cfg c = cfg_of(5, "fake");
	struct session *s;

	fake.fail_open = true;
	s = session_ensure(&c);
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	ck_assert_int_eq(fake.closes, 0);	/* open failed: nothing to close */
	session_tick(s, s->demand_ns + session_timing.idle_ns);
	ck_assert_int_eq(s->state, SS_IDLE);
	ck_assert_int_eq(shm_find(cap.frames, 5), -1);
}
END_TEST

START_TEST(test_update_while_backing_off)
{
	struct device_cfg c = cfg_of(8, "fake"), fixed = c;
	struct session *s;
	uint64_t retry;

	fake.fail_open = true;
	s = session_ensure(&c);
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	retry = s->retry_ns;
	session_update(s, &c);			/* unchanged: the backoff stands */
	ck_assert_uint_eq(s->retry_ns, retry);
	snprintf(fixed.password, sizeof fixed.password, "corrected");
	session_update(s, &fixed);
	ck_assert_uint_le(s->retry_ns, now_mono_ns());
	ck_assert_uint_eq(s->attempts, 0);
	ck_assert_int_eq(s->last_error, SE_NONE);	/* the old error said nothing of the new password */
	fake.fail_open = false;
	session_tick(s, now_mono_ns());
	ck_assert_int_eq(s->state, SS_CONNECTING);
	ck_assert_str_eq(s->cfg.password, "corrected");
	session_update(s, &c);			/* connected: ignored */
	ck_assert_str_eq(s->cfg.password, "corrected");
}
END_TEST

START_TEST(test_unknown_kind_fails)
{
	struct device_cfg c = cfg_of(6, "teletype"), good = cfg_of(6, "fake");
	struct session *s = session_ensure(&c);

	ck_assert_int_eq(s->state, SS_FAILED);
	ck_assert_int_eq(s->last_error, SE_UNSUPPORTED);
	ck_assert_int_eq(fake.opens, 0);
	ck_assert_uint_eq(cap.sessions, 0);
	/* The same configuration again: still failed, with its reason, no new attempt. */
	ck_assert_ptr_eq(session_ensure(&c), s);
	ck_assert_int_eq(s->state, SS_FAILED);
	ck_assert_int_eq(s->last_error, SE_UNSUPPORTED);
	/* A failed session takes a corrected configuration on the next demand. */
	ck_assert_ptr_eq(session_ensure(&good), s);
	ck_assert_int_eq(s->state, SS_CONNECTING);
	ck_assert_int_eq(s->last_error, SE_NONE);
}
END_TEST

START_TEST(test_no_free_slot)
{
	struct device_cfg c;
	struct session *s = NULL;

	for (uint64_t id = 1; id <= 5; id++) {
		c = cfg_of(id, "fake");
		s = session_ensure(&c);
	}
	ck_assert_int_eq(s->state, SS_FAILED);
	ck_assert_int_eq(s->last_error, SE_CONFIG);
	ck_assert_str_eq(s->last_why, "no free frame slot");
}
END_TEST

static const struct { uint32_t attempt, base; } backoff_cases[] = {
	{ 1, 500 }, { 2, 1000 }, { 3, 2000 }, { 4, 4000 }, { 5, 8000 }, { 6, 16000 },
	{ 7, 30000 }, { 8, 30000 }, { 40, 30000 }, { 4000000000u, 30000 },
};

START_TEST(test_backoff_bounds)
{
	uint32_t base = backoff_cases[_i].base, a = backoff_cases[_i].attempt, lo = ~0u, hi = 0;

	ck_assert_uint_eq(session_backoff_ms(a, base / 5), base);	/* rnd at the middle */
	ck_assert_uint_eq(session_backoff_ms(a, 0), base - base / 5);
	ck_assert_uint_eq(session_backoff_ms(a, 2 * (base / 5)), base + base / 5);
	for (uint32_t i = 0; i < 2000; i++) {
		uint32_t r, ms;
		random_bytes(&r, sizeof r);
		ms = session_backoff_ms(a, r);
		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	ck_assert_uint_ge(lo, base - base / 5);
	ck_assert_uint_le(hi, base + base / 5);
	ck_assert_uint_lt(lo, base - base / 10);	/* the jitter is really spread */
	ck_assert_uint_gt(hi, base + base / 10);
}
END_TEST

/* Ops wait for the login, run one at a time in order, and each is answered once. */
START_TEST(test_ops_queue)
{
	struct device_cfg c = cfg_of(50, "fake");
	struct session *s = session_ensure(&c);

	session_op_submit(s, new_op(OP_TEXT, 5000));
	session_op_submit(s, new_op(OP_KEYS, 5000));
	session_op_submit(s, new_op(OP_POWER, 5000));	/* not in the driver's ops */
	ck_assert_int_eq(started, 0);			/* still connecting */
	ck_assert_int_eq(nanswers, 1);
	ck_assert_uint_eq(answers[0].op, OP_POWER);
	ck_assert_int_eq(answers[0].e, SE_UNSUPPORTED);
	ck_assert_str_eq(answers[0].text, "fake devices cannot do power");

	session_authenticated(s);
	ck_assert_int_eq(started, 1);			/* text runs, keys waits behind it */
	ck_assert_ptr_nonnull(running);
	ck_assert_uint_eq(running->req.op, OP_TEXT);
	session_op_done(s, running, SE_NONE, NULL);
	ck_assert_int_eq(started, 2);
	ck_assert_int_eq(nanswers, 3);
	ck_assert_uint_eq(answers[1].op, OP_TEXT);
	ck_assert_int_eq(answers[1].e, SE_NONE);
	ck_assert_uint_eq(answers[2].op, OP_KEYS);
	ck_assert_str_eq(answers[2].text, "{\"ok\":true}");
	ck_assert_ptr_null(s->ops);
}
END_TEST

/* A running op past its deadline takes the connection down; waiting ones keep waiting. */
START_TEST(test_ops_deadline)
{
	struct device_cfg c = cfg_of(51, "fake");
	struct session *s = session_ensure(&c);
	uint64_t now;

	session_authenticated(s);
	session_op_submit(s, new_op(OP_TEXT, 100));
	session_op_submit(s, new_op(OP_TEXT, 5000));
	ck_assert_int_eq(started, 1);
	now = now_mono_ns();
	session_tick(s, now + 200 * MS);
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	ck_assert_int_eq(nanswers, 1);
	ck_assert_int_eq(answers[0].e, SE_TIMEOUT);
	ck_assert_str_eq(answers[0].text, "the device did not finish text within 100 ms");
	ck_assert_ptr_nonnull(s->ops);			/* the second waits for a reconnection */
	/* No idle close while an operation waits, even past the idle period. */
	session_tick(s, now + 61000 * MS);
	ck_assert_int_eq(nanswers, 2);			/* its own deadline passed meanwhile */
	ck_assert_int_eq(answers[1].e, SE_TIMEOUT);
	ck_assert_ptr_null(s->ops);
}
END_TEST

/* A refused login ends every waiting operation with the reason; a failed session refuses new ones. */
START_TEST(test_ops_auth_failure)
{
	struct device_cfg c = cfg_of(52, "fake");
	struct session *s = session_ensure(&c);

	session_op_submit(s, new_op(OP_TEXT, 5000));
	session_op_submit(s, new_op(OP_KEYS, 5000));
	session_error(s, SE_AUTH, "wrong password");
	ck_assert_int_eq(nanswers, 2);
	ck_assert_int_eq(answers[0].e, SE_AUTH);
	ck_assert_str_eq(answers[1].text, "wrong password");
	ck_assert_ptr_null(s->ops);

	session_error(s, SE_CONFIG, "no credentials");
	session_op_submit(s, new_op(OP_KEYS, 5000));
	ck_assert_int_eq(nanswers, 3);
	ck_assert_int_eq(answers[2].e, SE_CONFIG);
	ck_assert_str_eq(answers[2].text, "no credentials");
}
END_TEST

/* A connection lost during an op: the op fails, and nothing starts on the stopped driver. */
START_TEST(test_ops_error_while_running)
{
	struct device_cfg c = cfg_of(54, "fake");
	struct session *s = session_ensure(&c);

	session_authenticated(s);
	session_op_submit(s, new_op(OP_TEXT, 5000));
	session_op_submit(s, new_op(OP_TEXT, 5000));
	ck_assert_int_eq(started, 1);
	session_error(s, SE_OFFLINE, "connection reset");
	ck_assert_int_eq(started, 1);
	ck_assert_int_eq(nanswers, 1);
	ck_assert_int_eq(answers[0].e, SE_OFFLINE);
	ck_assert_str_eq(answers[0].text, "connection reset");
	ck_assert_ptr_nonnull(s->ops);			/* the second waits for the reconnection */
	session_tick(s, s->retry_ns);
	session_authenticated(s);
	ck_assert_int_eq(started, 2);
}
END_TEST

/* The device changed in the database: reconnect at once, or close when it is gone. */
START_TEST(test_reconfigure)
{
	struct device_cfg c = cfg_of(55, "fake"), c2;
	struct session *s = session_ensure(&c);
	int closes;

	session_authenticated(s);
	frame(s, 1);
	session_reconfigure(s, &c);			/* unchanged: nothing happens */
	ck_assert_int_eq(s->state, SS_STREAMING);
	session_op_submit(s, new_op(OP_TEXT, 5000));
	c2 = c;
	snprintf(c2.password, sizeof c2.password, "new");
	closes = fake.closes;
	session_reconfigure(s, &c2);
	ck_assert_int_eq(fake.closes, closes + 1);
	ck_assert_int_eq(s->state, SS_BACKING_OFF);
	ck_assert_str_eq(s->cfg.password, "new");
	ck_assert_uint_le(s->retry_ns, now_mono_ns());	/* retries now, not after a backoff */
	ck_assert_int_eq(nanswers, 1);
	ck_assert_int_eq(answers[0].e, SE_CONFIG);
	session_tick(s, now_mono_ns());
	ck_assert_int_eq(s->state, SS_CONNECTING);
	session_op_submit(s, new_op(OP_KEYS, 5000));
	session_reconfigure(s, NULL);
	ck_assert_int_eq(s->state, SS_IDLE);
	ck_assert_int_eq(s->slot, -1);
	ck_assert_int_eq(shm_find(cap.frames, 55), -1);
	ck_assert_int_eq(nanswers, 2);
	ck_assert_str_eq(answers[1].text, "the device was disabled or removed");
}
END_TEST

/* Closing everything answers what still waits. */
START_TEST(test_ops_close_all)
{
	struct device_cfg c = cfg_of(53, "fake");
	struct session *s = session_ensure(&c);

	session_authenticated(s);
	session_op_submit(s, new_op(OP_TEXT, 5000));
	session_op_submit(s, new_op(OP_TEXT, 5000));
	session_close_all();
	ck_assert_int_eq(nanswers, 2);
	ck_assert_int_eq(answers[0].e, SE_OFFLINE);
	ck_assert_int_eq(answers[1].e, SE_OFFLINE);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("capture_session");
	TCase *tc = tcase_create("session");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lifecycle);
	tcase_add_test(tc, test_backing_off_goes_idle);
	tcase_add_test(tc, test_update_while_backing_off);
	tcase_add_test(tc, test_unknown_kind_fails);
	tcase_add_test(tc, test_no_free_slot);
	tcase_add_test(tc, test_ops_queue);
	tcase_add_test(tc, test_ops_deadline);
	tcase_add_test(tc, test_ops_auth_failure);
	tcase_add_test(tc, test_ops_close_all);
	tcase_add_test(tc, test_ops_error_while_running);
	tcase_add_test(tc, test_reconfigure);
	tcase_add_loop_test(tc, test_backoff_bounds, 0, (int)(sizeof backoff_cases / sizeof backoff_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(session_suite());
}
