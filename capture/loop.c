/*
 * loop.c - the capture worker's process state and its epoll registrations.
 * Kept apart from main.c so the control server can be unit-tested.
 */
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
