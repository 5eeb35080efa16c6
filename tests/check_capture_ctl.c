/*
 * check_capture_ctl.c - the control protocol: the message table checks
 * (shared/ctl.c), the capture worker's handlers (capture/ctl.c), and a real
 * SOCK_SEQPACKET round trip through ctl_call against a served socket.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "ctl.h"
#include "check_run.h"

static char seg[64], sock[108];

static void setup(void)
{
	snprintf(seg, sizeof seg, "/kvmgate-check-ctl-%ld", (long)getpid());
	snprintf(sock, sizeof sock, "/tmp/kvmgate-check-ctl-%ld.sock", (long)getpid());
	ck_assert_int_eq(shm_create(seg, 4, 65536, &cap.frames), 0);
	cap.started_mono_ns = now_mono_ns();
	cap.started_wall_ns = now_wall_ns();
	cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(cap.epoll_fd, 0);
}

static void teardown(void)
{
	shm_close(cap.frames);
	cap.frames = NULL;
	close(cap.epoll_fd);
	unlink(sock);
}

static size_t msg(void *out, uint16_t version, uint16_t type, uint32_t len,
                  uint32_t claimed_len, const void *payload)
{
	struct ctl_hdr h = { version, type, claimed_len, 7, 0 };

	memcpy(out, &h, sizeof h);
	if (len)
		memcpy((char *)out + sizeof h, payload, len);
	return sizeof h + len;
}

static const struct {
	const char *what;
	uint16_t version, type;
	uint32_t len, claimed;
	enum ctl_status want;
} check_cases[] = {
	{ "ping",                 CTL_VERSION, CTL_PING, 0, 0, CTL_OK },
	{ "stats",                CTL_VERSION, CTL_STATS, 0, 0, CTL_OK },
	{ "wrong version",        CTL_VERSION + 1, CTL_PING, 0, 0, CTL_EVERSION },
	{ "type zero",            CTL_VERSION, 0, 0, 0, CTL_EBADMSG },
	{ "type past the table",  CTL_VERSION, CTL__TYPES, 0, 0, CTL_EBADMSG },
	{ "ping with a payload",  CTL_VERSION, CTL_PING, 4, 4, CTL_EBADMSG },
	{ "len lies (longer)",    CTL_VERSION, CTL_PING, 0, 100, CTL_EBADMSG },
	{ "len lies (shorter)",   CTL_VERSION, CTL_STATS_REPLY, sizeof(struct ctl_stats_reply),
	                          4, CTL_EBADMSG },
	{ "stats reply too short", CTL_VERSION, CTL_STATS_REPLY, 8, 8, CTL_EBADMSG },
	{ "pong exact",           CTL_VERSION, CTL_PONG, sizeof(struct ctl_pong),
	                          sizeof(struct ctl_pong), CTL_OK },
	{ "error without NUL",    CTL_VERSION, CTL_ERROR, 3, 3, CTL_EBADMSG },
	{ "ensure exact",         CTL_VERSION, CTL_SESSION_ENSURE, 16, 16, CTL_OK },
	{ "ensure short",         CTL_VERSION, CTL_SESSION_ENSURE, 8, 8, CTL_EBADMSG },
	{ "ensure long",          CTL_VERSION, CTL_SESSION_ENSURE, 24, 24, CTL_EBADMSG },
	/* All 'x': no NUL at the end, and op/len are nonsense. */
	{ "device op unterminated", CTL_VERSION, CTL_DEVICE_OP, sizeof(struct ctl_device_op) + 4,
	  sizeof(struct ctl_device_op) + 4, CTL_EBADMSG },
	{ "device op without data", CTL_VERSION, CTL_DEVICE_OP, sizeof(struct ctl_device_op),
	  sizeof(struct ctl_device_op), CTL_EBADMSG },
	{ "ensure empty",         CTL_VERSION, CTL_SESSION_ENSURE, 0, 0, CTL_EBADMSG },
	{ "session reply short",  CTL_VERSION, CTL_SESSION_REPLY, 24, 24, CTL_EBADMSG },
	/* The payload is all 'x': its strings have no NUL. */
	{ "session reply, strings unterminated", CTL_VERSION, CTL_SESSION_REPLY,
	  sizeof(struct ctl_session_reply), sizeof(struct ctl_session_reply), CTL_EBADMSG },
};

START_TEST(test_check_table)
{
	uint8_t m[CTL_MAX_MSG], payload[256];
	size_t n;

	memset(payload, 'x', sizeof payload);
	n = msg(m, check_cases[_i].version, check_cases[_i].type, check_cases[_i].len,
	        check_cases[_i].claimed, payload);
	ck_assert_msg(ctl_check(m, n) == check_cases[_i].want, "%s", check_cases[_i].what);
}
END_TEST

/* A device op is checked field by field: op kind, data length, terminated strings. */
START_TEST(test_check_device_op)
{
	uint8_t m[CTL_MAX_MSG];
	struct ctl_hdr h = { CTL_VERSION, CTL_DEVICE_OP, 0, 1, 0 };
	struct ctl_device_op op = { .device_id = 7, .op = OP_TEXT, .len = 6, .arg = "us" };
	size_t n;

#define BUILD() (h.len = (uint32_t)(sizeof op + op.len), memcpy(m, &h, sizeof h), \
	memcpy(m + sizeof h, &op, sizeof op), memcpy(m + sizeof h + sizeof op, "hello", 6), \
	n = sizeof h + sizeof op + 6)
	BUILD();
	ck_assert_int_eq(ctl_check(m, n), CTL_OK);
	op.op = 0;
	BUILD();
	ck_assert_int_eq(ctl_check(m, n), CTL_EBADMSG);
	op.op = OP__COUNT;
	BUILD();
	ck_assert_int_eq(ctl_check(m, n), CTL_EBADMSG);
	op.op = OP_TEXT;
	memset(op.arg, 'x', sizeof op.arg);
	BUILD();
	ck_assert_int_eq(ctl_check(m, n), CTL_EBADMSG);
	memcpy(op.arg, "us", 3);
	op.len = 5;		/* disagrees with the header */
	BUILD();
	h.len = (uint32_t)(sizeof op + 6);
	memcpy(m, &h, sizeof h);
	ck_assert_int_eq(ctl_check(m, n), CTL_EBADMSG);
#undef BUILD
	ck_assert_str_eq(dev_op_name(OP_KEYS), "keys");
	ck_assert_str_eq(dev_op_name(OP__COUNT), "unknown");
}
END_TEST

START_TEST(test_check_short_header)
{
	uint8_t m[8] = { 0 };

	for (size_t n = 0; n < sizeof(struct ctl_hdr) && n <= sizeof m; n++)
		ck_assert_int_eq(ctl_check(m, n), CTL_EBADMSG);
}
END_TEST

START_TEST(test_handle_stats)
{
	uint8_t m[CTL_MAX_MSG], r[CTL_MAX_MSG];
	struct ctl_hdr h;
	struct ctl_stats_reply st;
	size_t n = msg(m, CTL_VERSION, CTL_STATS, 0, 0, NULL);

	ck_assert_int_ge(shm_slot_acquire(cap.frames, 42), 0);
	n = ctl_handle(m, n, r);
	ck_assert_uint_eq(n, sizeof h + sizeof st);
	ck_assert_int_eq(ctl_check(r, n), CTL_OK);
	memcpy(&h, r, sizeof h);
	memcpy(&st, r + sizeof h, sizeof st);
	ck_assert_int_eq(h.type, CTL_STATS_REPLY);
	ck_assert_int_eq(h.id, 7);
	ck_assert_int_eq(st.slots_total, 4);
	ck_assert_int_eq(st.slots_used, 1);
}
END_TEST

START_TEST(test_handle_refusals)
{
	uint8_t m[CTL_MAX_MSG], r[CTL_MAX_MSG];
	struct ctl_hdr h;
	size_t n;

	/* A reply type sent as a request. */
	n = msg(m, CTL_VERSION, CTL_PONG, sizeof(struct ctl_pong), sizeof(struct ctl_pong), m);
	n = ctl_handle(m, n, r);
	memcpy(&h, r, sizeof h);
	ck_assert_int_eq(h.type, CTL_ERROR);
	ck_assert_int_eq(h.status, CTL_EBADMSG);
	ck_assert_int_eq(ctl_check(r, n), CTL_OK);
	/* Another version. */
	n = msg(m, 99, CTL_PING, 0, 0, NULL);
	n = ctl_handle(m, n, r);
	memcpy(&h, r, sizeof h);
	ck_assert_int_eq(h.type, CTL_ERROR);
	ck_assert_int_eq(h.status, CTL_EVERSION);
	ck_assert_str_eq((char *)r + sizeof h, "protocol version mismatch");
}
END_TEST

/* A database stand-in: device 9 is a kind without a driver, 8 is disabled, 7 is down. */
static int fake_loader(uint64_t id, struct device_cfg *out, enum ctl_status *status, char *why,
                       size_t len)
{
	memset(out, 0, sizeof *out);
	if (id == 7) {
		*status = CTL_EUNAVAILABLE;
		snprintf(why, len, "the database is unavailable");
		return -1;
	}
	if (id != 9) {
		*status = CTL_ENODEVICE;
		snprintf(why, len, id == 8 ? "the device is disabled" : "no such device");
		return -1;
	}
	out->id = id;
	snprintf(out->kind, sizeof out->kind, "teletype");
	*status = CTL_OK;
	return 0;
}

/* Sends CTL_SESSION_ENSURE for id through ctl_handle; returns the reply's header. */
static struct ctl_hdr ensure(uint64_t id, uint8_t *r, size_t *n)
{
	uint8_t m[CTL_MAX_MSG];
	struct ctl_session_ensure e = { id, 0 };
	struct ctl_hdr h;

	*n = ctl_handle(m, msg(m, CTL_VERSION, CTL_SESSION_ENSURE, sizeof e, sizeof e, &e), r);
	ck_assert_int_eq(ctl_check(r, *n), CTL_OK);
	memcpy(&h, r, sizeof h);
	return h;
}

static const struct {
	uint64_t id;
	enum ctl_status status;
	const char *why;
} ensure_refusals[] = {
	{ 0, CTL_ENODEVICE, "no such device" },
	{ 5, CTL_ENODEVICE, "no such device" },
	{ 8, CTL_ENODEVICE, "the device is disabled" },
	{ 7, CTL_EUNAVAILABLE, "the database is unavailable" },
};

START_TEST(test_ensure_refusals)
{
	uint8_t r[CTL_MAX_MSG];
	size_t n;
	struct ctl_hdr h;

	ctl_device_loader = fake_loader;
	h = ensure(ensure_refusals[_i].id, r, &n);
	ck_assert_int_eq(h.type, CTL_ERROR);
	ck_assert_int_eq(h.status, ensure_refusals[_i].status);
	ck_assert_str_eq((char *)r + sizeof h, ensure_refusals[_i].why);
	ck_assert_uint_eq(cap.sessions, 0);
}
END_TEST

START_TEST(test_ensure_reply)
{
	uint8_t r[CTL_MAX_MSG];
	struct ctl_session_reply rep;
	struct ctl_hdr h;
	size_t n;

	ctl_device_loader = fake_loader;
	h = ensure(9, r, &n);
	ck_assert_int_eq(h.type, CTL_SESSION_REPLY);
	ck_assert_int_eq(h.status, CTL_OK);
	ck_assert_uint_eq(n, sizeof h + sizeof rep);
	memcpy(&rep, r + sizeof h, sizeof rep);
	ck_assert_uint_eq(rep.device_id, 9);
	ck_assert_uint_eq(rep.state, SS_FAILED);
	ck_assert_uint_eq(rep.error, SE_UNSUPPORTED);
	ck_assert_str_eq(session_error_name(rep.error), "unsupported by this device kind");
	ck_assert_str_eq(rep.why, "no driver for this device kind");
	ck_assert_int_eq(rep.slot, -1);	/* no driver, no slot taken */
	ck_assert_uint_eq(rep.frame_seq, 0);
	session_close_all();
}
END_TEST

/* Serves the control socket in a child for a while: the real event path. */
static pid_t serve(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct epoll_event ev[8];
		uint64_t end = now_mono_ns() + 5000000000ull;

		if (ctl_server_open(sock) < 0)
			_exit(2);
		while (now_mono_ns() < end) {
			int n = epoll_wait(cap.epoll_fd, ev, 8, 100);
			for (int i = 0; i < n; i++) {
				struct watch *w = ev[i].data.ptr;
				w->on_ready(w, ev[i].events);
			}
		}
		ctl_server_close();
		_exit(0);
	}
	for (int i = 0; i < 200 && access(sock, F_OK) != 0; i++)
		usleep(5000);
	return pid;
}

START_TEST(test_socket_round_trip)
{
	pid_t pid = serve();
	struct ctl_pong pong;
	struct ctl_stats_reply st;
	uint32_t len = 0;

	ck_assert_int_eq(ctl_call(sock, CTL_PING, NULL, 0, CTL_PONG, &pong, sizeof pong, &len, 1000),
	                 CTL_OK);
	ck_assert_uint_eq(len, sizeof pong);
	ck_assert_int_eq(pong.pid, pid);
	ck_assert_int_eq(ctl_call(sock, CTL_STATS, NULL, 0, CTL_STATS_REPLY, &st, sizeof st, &len,
	                          1000), CTL_OK);
	ck_assert_int_eq(st.slots_total, 4);
	/* A payload where none belongs: the server answers with an error status. */
	ck_assert_int_eq(ctl_call(sock, CTL_PING, "junk", 4, CTL_PONG, &pong, sizeof pong, &len,
	                          1000), CTL_EBADMSG);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(test_socket_garbage_and_oversize)
{
	pid_t pid = serve();
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uint8_t big[CTL_MAX_MSG + 100], r[CTL_MAX_MSG];
	struct ctl_hdr h;
	struct ctl_pong pong;
	uint32_t len;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	memset(big, 0xAB, sizeof big);
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_gt(send(fd, big, 3, 0), 0);		/* shorter than a header */
	ck_assert_int_gt(recv(fd, r, sizeof r, 0), 0);
	memcpy(&h, r, sizeof h);
	ck_assert_int_eq(h.type, CTL_ERROR);
	ck_assert_int_gt(send(fd, big, sizeof big, 0), 0);	/* larger than any message */
	ck_assert_int_gt(recv(fd, r, sizeof r, 0), 0);
	memcpy(&h, r, sizeof h);
	ck_assert_int_eq(h.type, CTL_ERROR);
	ck_assert_str_eq((char *)r + sizeof h, "message too large");
	close(fd);
	/* The server is still fine. */
	ck_assert_int_eq(ctl_call(sock, CTL_PING, NULL, 0, CTL_PONG, &pong, sizeof pong, &len, 1000),
	                 CTL_OK);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* A device op over the socket: answered later by the session code, here at once (no driver). */
START_TEST(test_socket_device_op)
{
	pid_t pid;
	uint8_t m[sizeof(struct ctl_device_op) + 8], r[sizeof(struct ctl_device_op_reply) + 256];
	struct ctl_device_op op = { .device_id = 9, .op = OP_KEYS, .len = 6 };
	struct ctl_device_op_reply rep;
	uint32_t len = 0;

	ctl_device_loader = fake_loader;
	pid = serve();
	memcpy(m, &op, sizeof op);
	memcpy(m + sizeof op, "enter", 6);
	ck_assert_int_eq(ctl_call(sock, CTL_DEVICE_OP, m, sizeof op + 6, CTL_DEVICE_OP_REPLY, r,
	                          sizeof r, &len, 2000), CTL_OK);
	ck_assert_uint_gt(len, sizeof rep);
	memcpy(&rep, r, sizeof rep);
	ck_assert_uint_eq(rep.device_id, 9);
	ck_assert_uint_eq(rep.error, SE_UNSUPPORTED);
	ck_assert_uint_eq(rep.state, SS_FAILED);
	ck_assert_str_eq((char *)r + sizeof rep, "no driver for this device kind");
	/* A device the database does not have: refused before anything is queued. */
	op.device_id = 5;
	memcpy(m, &op, sizeof op);
	ck_assert_int_eq(ctl_call(sock, CTL_DEVICE_OP, m, sizeof op + 6, CTL_DEVICE_OP_REPLY, r,
	                          sizeof r, &len, 2000), CTL_ENODEVICE);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(test_call_nobody_listening)
{
	struct ctl_pong pong;
	uint32_t len;

	ck_assert_int_eq(ctl_call("/tmp/kvmgate-check-nothing-here.sock", CTL_PING, NULL, 0,
	                          CTL_PONG, &pong, sizeof pong, &len, 200), -1);
	ck_assert(errno == ENOENT || errno == ECONNREFUSED);
}
END_TEST

START_TEST(test_call_timeout)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct ctl_pong pong;
	uint32_t len;

	/* A listener that never answers, like a wedged capture worker. */
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(ctl_call(sock, CTL_PING, NULL, 0, CTL_PONG, &pong, sizeof pong, &len, 150),
	                 -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	close(fd);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("capture_ctl");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_check_table, 0, (int)ARRAY_LEN(check_cases));
	tcase_add_test(tc, test_check_short_header);
	tcase_add_test(tc, test_check_device_op);
	tcase_add_test(tc, test_socket_device_op);
	tcase_add_test(tc, test_handle_stats);
	tcase_add_test(tc, test_handle_refusals);
	tcase_add_loop_test(tc, test_ensure_refusals, 0, (int)ARRAY_LEN(ensure_refusals));
	tcase_add_test(tc, test_ensure_reply);
	tcase_add_test(tc, test_socket_round_trip);
	tcase_add_test(tc, test_socket_garbage_and_oversize);
	tcase_add_test(tc, test_call_nobody_listening);
	tcase_add_test(tc, test_call_timeout);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(ctl_suite());
}
