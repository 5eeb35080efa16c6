/*
 * check_capture_http.c - libcurl multi on the capture epoll loop
 * (capture/http.c): a device that accepts and never answers does not delay
 * another one's transfer; a stopped transfer never reports; a refused
 * connection reports its error.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "capture.h"
#include "check_run.h"

struct result {
	bool done;
	CURLcode code;
	struct buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	buf_append(&((struct result *)arg)->body, p, n);
	return n;
}

static void on_done(void *arg, CURLcode code)
{
	struct result *r = arg;

	r->done = true;
	r->code = code;
}

/* A listening socket on a free port of 127.0.0.1; *port gets its number. */
static int listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Answers one request on fd with a fixed response. */
static void *serve_one(void *arg)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
	int fd = (int)(intptr_t)arg, c = accept(fd, NULL, NULL);
	char req[2048];

	if (c >= 0) {
		(void)!read(c, req, sizeof req);
		(void)!write(c, resp, sizeof resp - 1);
		close(c);
	}
	return NULL;
}

static CURL *get(int port, struct result *r)
{
	CURL *e = curl_easy_init();
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	return e;
}

static void setup(void)
{
	cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(cap.epoll_fd, 0);
	ck_assert_int_eq(http_init(), 0);
}

static void teardown(void)
{
	http_cleanup();
	close(cap.epoll_fd);
}

START_TEST(test_stalled_device_does_not_delay_another)
{
	int fast_port, slow_port, fast_fd = listener(&fast_port), slow_fd = listener(&slow_port);
	struct result fast = { .body = BUF_INIT }, slow = { .body = BUF_INIT };
	CURL *ef = get(fast_port, &fast), *es = get(slow_port, &slow);
	uint64_t t0 = now_mono_ns();
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, serve_one, (void *)(intptr_t)fast_fd), 0);
	ck_assert_int_eq(http_start(es, on_done, &slow), 0);	/* accepted by the kernel, never answered */
	ck_assert_int_eq(http_start(ef, on_done, &fast), 0);
	while (!fast.done && now_mono_ns() - t0 < 5000000000ull)
		ck_assert_int_ge(loop_once(100), 0);
	ck_assert(fast.done);
	ck_assert_int_eq(fast.code, CURLE_OK);
	ck_assert_uint_eq(fast.body.len, 5);
	ck_assert_int_eq(memcmp(fast.body.data, "hello", 5), 0);
	ck_assert(!slow.done);
	ck_assert_uint_lt(now_mono_ns() - t0, 2000000000ull);
	http_stop(es);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(loop_once(10), 0);
	ck_assert(!slow.done);	/* a stopped transfer never reports */
	pthread_join(th, NULL);
	curl_easy_cleanup(ef);
	curl_easy_cleanup(es);
	buf_free(&fast.body);
	buf_free(&slow.body);
	close(fast_fd);
	close(slow_fd);
}
END_TEST

START_TEST(test_refused_connection_reports)
{
	int port, fd = listener(&port);
	struct result r = { .body = BUF_INIT };
	CURL *e;
	uint64_t t0 = now_mono_ns();

	close(fd);	/* nothing listens there now */
	e = get(port, &r);
	ck_assert_int_eq(http_start(e, on_done, &r), 0);
	while (!r.done && now_mono_ns() - t0 < 5000000000ull)
		ck_assert_int_ge(loop_once(100), 0);
	ck_assert(r.done);
	ck_assert_int_eq(r.code, CURLE_COULDNT_CONNECT);
	curl_easy_cleanup(e);
	buf_free(&r.body);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("capture_http");
	TCase *tc = tcase_create("http");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_stalled_device_does_not_delay_another);
	tcase_add_test(tc, test_refused_connection_reports);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(http_suite());
}
