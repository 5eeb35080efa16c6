/*
 * loop.c - the capture worker's process state and its epoll registrations.
 * Kept apart from main.c so the control server can be unit-tested.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "capture.h"
#include "log.h"

struct capture cap = { .epoll_fd = -1 };

int watch_add(struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(cap.epoll_fd, EPOLL_CTL_ADD, w->fd, &ev) < 0) {
		log_warn("epoll_ctl add fd %d", w->fd);
		return -1;
	}
	return 0;
}

void watch_del(struct watch *w)
{
	if (epoll_ctl(cap.epoll_fd, EPOLL_CTL_DEL, w->fd, NULL) < 0)
		log_warn("epoll_ctl del fd %d", w->fd);
}

int watch_mod(struct watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(cap.epoll_fd, EPOLL_CTL_MOD, w->fd, &ev) < 0) {
		log_warn("epoll_ctl mod fd %d", w->fd);
		return -1;
	}
	return 0;
}

/* Watches waiting for the end of the batch; linked through a small wrapper. */
static struct dead { struct watch *w; struct dead *next; } *graveyard;

void watch_free_later(struct watch *w)
{
	struct dead *d = xmalloc(sizeof *d);

	w->on_ready = NULL;
	d->w = w;
	d->next = graveyard;
	graveyard = d;
}

void watch_reap(void)
{
	while (graveyard != NULL) {
		struct dead *d = graveyard;
		graveyard = d->next;
		free(d->w);
		free(d);
	}
}

int loop_once(int timeout_ms)
{
	struct epoll_event events[64];
	int n = epoll_wait(cap.epoll_fd, events, (int)ARRAY_LEN(events), timeout_ms);

	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_err("epoll_wait");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct watch *w = events[i].data.ptr;
		if (w->on_ready != NULL)
			w->on_ready(w, events[i].events);
	}
	watch_reap();
	return n;
}
