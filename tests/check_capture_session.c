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

static const struct driver fake_driver = { .kind = "fake", .open = fake_open, .close = fake_close };

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
	tcase_add_loop_test(tc, test_backoff_bounds, 0, (int)(sizeof backoff_cases / sizeof backoff_cases[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(session_suite());
}
