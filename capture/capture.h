/*
 * capture.h - the capture worker: one event loop that owns every device
 * session, the control socket and the frame store.
 */
#ifndef KVMGATE_CAPTURE_H
#define KVMGATE_CAPTURE_H

#include "ctl.h"
#include "shm.h"
#include "util.h"

/* Process-wide state of the capture worker; one instance, in main.c. */
struct capture {
	struct shm_store *frames;
	int epoll_fd;
	uint64_t started_mono_ns, started_wall_ns;
	uint32_t sessions;	/* open device sessions */
};

extern struct capture cap;

/* What an epoll registration points at: the callback for its fd. */
struct watch {
	int fd;
	void (*on_ready)(struct watch *w, uint32_t events);
};

/* Adds or removes a watch on cap.epoll_fd. Returns 0 or -1. */
int watch_add(struct watch *w, uint32_t events) MUSTCHECK;
void watch_del(struct watch *w);

/* ---- ctl.c: the control socket server ------------------------------------ */

/* Binds the control socket at path (replacing a stale one) and watches it. */
int ctl_server_open(const char *path) MUSTCHECK;

/* Closes the listener and every client, and removes the socket file. */
void ctl_server_close(void);

/*
 * Answers one received message of n bytes into reply (CTL_MAX_MSG bytes);
 * returns the reply's size. Separate from the socket so tests can drive it.
 */
size_t ctl_handle(const void *msg, size_t n, void *reply);

#endif
