/*
 * http.c - every HTTP transfer of the capture worker runs on one libcurl
 * multi handle driven by the epoll loop: curl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when to wake it (a timerfd set from
 * CURLMOPT_TIMERFUNCTION). No call here blocks, so a slow device never
 * delays another. Finished transfers are reported after libcurl returns,
 * where their owners may start, stop or free transfers freely.
 */
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"

/* What a running transfer reports to; its CURLOPT_PRIVATE. */
struct xfer {
	CURL *e;
	http_done_fn done;
	void *arg;
	struct xfer *next;
};

static struct {
	CURLM *multi;
	struct watch timer;
	struct xfer *running;
} h = { .timer = { .fd = -1 } };

/* Takes x off the list of running transfers and frees it. */
static void xfer_free(struct xfer *x)
{
	struct xfer **pp = &h.running;

	while (*pp != x)
		pp = &(*pp)->next;
	*pp = x->next;
	free(x);
}

/* Hands every finished transfer to its owner. */
static void check_done(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h.multi, &left)) != NULL) {
		CURL *e = m->easy_handle;
		CURLcode result = m->data.result;
		struct xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
		curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
		curl_multi_remove_handle(h.multi, e);
		if (x != NULL) {
			http_done_fn done = x->done;
			void *arg = x->arg;
			xfer_free(x);
			done(arg, result);
		}
	}
}

static void on_socket_ready(struct watch *w, uint32_t events)
{
	int flags = 0, running;

	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	/* w may be released inside: use only its fd, read before. */
	curl_multi_socket_action(h.multi, w->fd, flags, &running);
	check_done();
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct watch *w = socketp;
	uint32_t ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);

	if (what == CURL_POLL_REMOVE) {
		if (w != NULL) {
			watch_del(w);
			watch_free_later(w);
			curl_multi_assign(h.multi, fd, NULL);
		}
		return 0;
	}
	if (w == NULL) {
		w = xcalloc(1, sizeof *w);
		w->fd = fd;
		w->on_ready = on_socket_ready;
		if (watch_add(w, ev) < 0) {
			free(w);
			return -1;
		}
		curl_multi_assign(h.multi, fd, w);
		return 0;
	}
	return watch_mod(w, ev);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
	struct itimerspec its = { 0 };

	if (timeout_ms == 0)
		its.it_value.tv_nsec = 1;	/* as soon as the loop turns: not from inside curl */
	else if (timeout_ms > 0) {
		its.it_value.tv_sec = timeout_ms / 1000;
		its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000;
	}
	return timerfd_settime(h.timer.fd, 0, &its, NULL);
}

static void on_timer(struct watch *w, uint32_t events)
{
	uint64_t n;
	int running;

	while (read(w->fd, &n, sizeof n) == sizeof n)
		;
	curl_multi_socket_action(h.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

int http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (h.multi = curl_multi_init()) == NULL) {
		log_errx("libcurl cannot be initialised");
		return -1;
	}
	h.timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	h.timer.on_ready = on_timer;
	if (h.timer.fd < 0 || watch_add(&h.timer, EPOLLIN) < 0) {
		log_err("http timer");
		return -1;
	}
	curl_multi_setopt(h.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h.multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	return 0;
}

void http_cleanup(void)
{
	if (h.multi != NULL) {
		while (h.running != NULL)
			http_stop(h.running->e);
		curl_multi_cleanup(h.multi);
		h.multi = NULL;
	}
	if (h.timer.fd >= 0) {
		watch_del(&h.timer);
		close(h.timer.fd);
		h.timer.fd = -1;
	}
	curl_global_cleanup();
}

int http_start(CURL *e, http_done_fn done, void *arg)
{
	struct xfer *x = xmalloc(sizeof *x);

	x->e = e;
	x->done = done;
	x->arg = arg;
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (curl_multi_add_handle(h.multi, e) != CURLM_OK) {
		curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
		free(x);
		return -1;
	}
	x->next = h.running;
	h.running = x;
	return 0;
}

void http_stop(CURL *e)
{
	struct xfer *x = NULL;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
	if (x == NULL)
		return;
	curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
	curl_multi_remove_handle(h.multi, e);
	xfer_free(x);
}
