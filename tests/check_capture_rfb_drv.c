/*
 * check_capture_rfb_drv.c - the vnc driver (capture/drv_rfb.c) on the
 * capture event loop against a scripted RFB server in a thread: a session
 * reaches streaming with a JPEG of the server's size; want_frame publishes
 * again without encoding again when nothing changed; a silent server is
 * asked for a 1x1 update often enough that the session never times out;
 * an operation that arrives before ServerInit waits for it; text goes as
 * QEMU extended key events once the server confirmed them,
 * shift around shifted characters; a click outside the screen is refused.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture.h"
#include "check_run.h"

static char seg[64];
static int listen_fd, port;
static pthread_t server;

/* What the server received after the setup, and how many 1x1 requests it answered. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t got[65536];
static size_t got_len;
static int pings;

static int rd(int fd, void *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = read(fd, (char *)p + off, n - off);
		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	return 0;
}

static void wr(int fd, const void *p, size_t n)
{
	if (write(fd, p, n) != (ssize_t)n)
		return;
}

/* The scripted server: 3.8, None, 64x48, one full Raw update with the -258 confirmation. */
static void *serve(void *arg)
{
	static const uint8_t init[] = { 0, 64, 0, 48, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0,
	                                0, 0, 0, 0, 0, 0, 1, 'x' };
	uint8_t b[4096], hdr[4];
	int fd = accept(listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	wr(fd, "RFB 003.008\n", 12);
	if (rd(fd, b, 12) < 0)
		goto out;
	wr(fd, "\x01\x01", 2);
	if (rd(fd, b, 1) < 0)
		goto out;
	wr(fd, "\0\0\0\0", 4);
	if (rd(fd, b, 1) < 0)
		goto out;
	usleep(300000);	/* a slow ServerInit: operations wait for the screen size */
	wr(fd, init, sizeof init);
	if (rd(fd, b, 20) < 0 || rd(fd, hdr, 4) < 0 || rd(fd, b, 4u * (hdr[2] << 8 | hdr[3])) < 0 ||
	    rd(fd, b, 10) < 0)
		goto out;
	{
		static uint8_t upd[4 + 12 + 12 + 64 * 48 * 4] = { 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
		                                                 0xff, 0xff, 0xfe, 0xfe, 0, 0, 0, 0, 0, 64, 0,
		                                                 48, 0, 0, 0, 0 };
		memset(upd + 28, 0x80, 64 * 48 * 4);
		wr(fd, upd, sizeof upd);
	}
	/* From now on: record everything; answer full requests (the driver's pings) with 1x1. */
	for (;;) {
		if (rd(fd, b, 1) < 0)
			break;
		if (b[0] == 3) {
			if (rd(fd, b + 1, 9) < 0)
				break;
			if (b[1] == 0) {
				static const uint8_t one[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0,
				                               0x80, 0x80, 0x80, 0 };
				wr(fd, one, sizeof one);
				pthread_mutex_lock(&mu);
				pings++;
				pthread_mutex_unlock(&mu);
			}
			continue;
		}
		pthread_mutex_lock(&mu);
		if (got_len < sizeof got)
			got[got_len++] = b[0];
		pthread_mutex_unlock(&mu);
	}
out:
	close(fd);
	return NULL;
}

static enum session_error answered = SE__COUNT;
static char answered_why[200];

static void record_answer(const struct dev_op *op, const struct session *s, enum session_error e,
                          const char *why)
{
	answered = e;
	snprintf(answered_why, sizeof answered_why, "%s", why ? why : "");
}

static void setup(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;

	snprintf(seg, sizeof seg, "/kvmgate-check-rfb-%ld", (long)getpid());
	ck_assert_int_eq(shm_create(seg, 4, 1 << 20, &cap.frames), 0);
	cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(cap.epoll_fd, 0);
	session_timing.frame_timeout_ns = 1500000000ull;	/* pings every 375 ms; room for a busy machine */
	session_op_answer = record_answer;
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(listen_fd, 4), 0);
	ck_assert_int_eq(getsockname(listen_fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&server, NULL, serve, NULL), 0);
}

static void teardown(void)
{
	session_close_all();
	watch_reap();
	pthread_join(server, NULL);
	close(listen_fd);
	shm_close(cap.frames);
	shm_unlink(seg);
	cap.frames = NULL;
	close(cap.epoll_fd);
}

static void run_ms(int ms)
{
	uint64_t end = now_mono_ns() + (uint64_t)ms * 1000000u;

	while (now_mono_ns() < end)
		ck_assert_int_ge(loop_once(10), 0);
}

static struct dev_op *new_op(uint32_t kind, const char *data, int x, int y)
{
	struct dev_op *op = xcalloc(1, sizeof *op);

	op->req.op = kind;
	op->req.x = x;
	op->req.y = y;
	op->req.count = 1;
	op->req.button = BUTTON_LEFT;
	op->req.len = (uint32_t)strlen(data) + 1;
	op->data = xstrdup(data);
	op->deadline_ns = now_mono_ns() + 2000000000ull;
	return op;
}

START_TEST(session)
{
	struct device_cfg c = { .id = 9 };
	static uint8_t a[1 << 16], b[1 << 16];
	struct shm_frame_info fa, fb;
	struct session *s;
	uint64_t end = now_mono_ns() + 5000000000ull, seq;
	/* 'a', then shift 'B': QEMU extended key events (255, 0, down, keysym, scancode). */
	static const uint8_t keys[] = {
		255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e, 255, 0, 0, 0, 0, 0, 0, 0x61, 0, 0, 0, 0x1e,
		255, 0, 0, 1, 0, 0, 0xff, 0xe1, 0, 0, 0, 0x2a, 255, 0, 0, 1, 0, 0, 0, 0x42, 0, 0, 0, 0x30,
		255, 0, 0, 0, 0, 0, 0, 0x42, 0, 0, 0, 0x30, 255, 0, 0, 0, 0, 0, 0xff, 0xe1, 0, 0, 0, 0x2a,
	};

	snprintf(c.kind, sizeof c.kind, "vnc");
	snprintf(c.url, sizeof c.url, "vnc://127.0.0.1:%d", port);
	s = session_ensure(&c);
	while (s->state != SS_AUTHENTICATING && now_mono_ns() < end)
		ck_assert_int_ge(loop_once(10), 0);
	/* Logged in, no ServerInit yet: the operation waits for it, then goes as plain KeyEvents. */
	session_op_submit(s, new_op(OP_KEYS, "enter", 0, 0));
	ck_assert_int_eq(answered, SE__COUNT);
	while (s->state != SS_STREAMING && now_mono_ns() < end)
		ck_assert_int_ge(loop_once(10), 0);
	ck_assert_msg(s->state == SS_STREAMING, "state %s: %s", session_state_name(s->state), s->last_why);
	ck_assert_uint_eq(s->width, 64);
	ck_assert_uint_eq(s->height, 48);
	ck_assert_str_eq(s->firmware, "RFB 3.8 x");
	ck_assert_int_eq(shm_read(cap.frames, s->slot, &fa, a, sizeof a), 0);
	ck_assert_int_eq(fa.format, SHM_FMT_JPEG);
	ck_assert_uint_eq(fa.width, 64);
	ck_assert_uint_eq(fa.height, 48);
	run_ms(50);
	ck_assert_int_eq(answered, SE_NONE);
	pthread_mutex_lock(&mu);
	ck_assert_uint_ge(got_len, 16);
	ck_assert(memcmp(got, "\x04\x01\0\0\0\0\xff\x0d\x04\x00\0\0\0\0\xff\x0d", 16) == 0);
	pthread_mutex_unlock(&mu);

	/* Nothing changed: want_frame publishes the same JPEG again, with a new sequence number. */
	seq = shm_slot_seq(cap.frames, s->slot);
	s->drv->want_frame(s);
	ck_assert_uint_eq(shm_slot_seq(cap.frames, s->slot), seq + 1);
	ck_assert_int_eq(shm_read(cap.frames, s->slot, &fb, b, sizeof b), 0);
	ck_assert_uint_eq(fb.len, fa.len);
	ck_assert(memcmp(a, b, fa.len) == 0);

	/* A silent server: pings keep the session streaming past several frame timeouts. */
	run_ms(4000);
	ck_assert_int_eq(s->state, SS_STREAMING);
	pthread_mutex_lock(&mu);
	ck_assert_int_ge(pings, 3);
	got_len = 0;
	pthread_mutex_unlock(&mu);

	/* Text: scancodes (the server confirmed -258), shift around 'B'. */
	session_op_submit(s, new_op(OP_TEXT, "aB", 0, 0));
	run_ms(200);
	ck_assert_int_eq(answered, SE_NONE);
	pthread_mutex_lock(&mu);
	ck_assert_uint_eq(got_len, sizeof keys);
	ck_assert(memcmp(got, keys, sizeof keys) == 0);
	got_len = 0;
	pthread_mutex_unlock(&mu);

	/* A click: move, press, release at (10, 20); outside the screen: refused, nothing sent. */
	session_op_submit(s, new_op(OP_MOUSE_CLICK, "", 10, 20));
	run_ms(200);
	ck_assert_int_eq(answered, SE_NONE);
	pthread_mutex_lock(&mu);
	ck_assert_uint_eq(got_len, 18);
	ck_assert(memcmp(got, "\x05\x00\x00\x0a\x00\x14\x05\x01\x00\x0a\x00\x14\x05\x00\x00\x0a\x00\x14", 18) == 0);
	got_len = 0;
	pthread_mutex_unlock(&mu);
	session_op_submit(s, new_op(OP_MOUSE_CLICK, "", 64, 20));
	run_ms(100);
	ck_assert_int_eq(answered, SE_INVALID);
	ck_assert_ptr_nonnull(strstr(answered_why, "outside the 64x48 screen"));
	pthread_mutex_lock(&mu);
	ck_assert_uint_eq(got_len, 0);
	pthread_mutex_unlock(&mu);
	/* An operation the driver does not have is the session code's to refuse. */
	session_op_submit(s, new_op(OP_POWER, "", 0, 0));
	ck_assert_int_eq(answered, SE_UNSUPPORTED);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rfb_drv");
	TCase *t = tcase_create("session");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 20);
	tcase_add_test(t, session);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return check_run(suite());
}
