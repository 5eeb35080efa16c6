/*
 * frame.c - ensure the session, wait on the slot, copy the frame.
 */
#include "frame.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define ENSURE_TIMEOUT_MS 2000
#define WAIT_STEP_MS 500	/* renew the demand and re-read the state this often */

/* Sends CTL_SESSION_ENSURE. Returns FRAME_OK with *r filled, or why not. */
static enum frame_status ensure(const char *sock, uint64_t id, uint64_t after_seq,
                                struct ctl_session_reply *r, char *why, size_t len)
{
	struct ctl_session_ensure e = { id, after_seq };
	uint32_t n = 0;
	int rc = ctl_call(sock, CTL_SESSION_ENSURE, &e, sizeof e, CTL_SESSION_REPLY, r, sizeof *r, &n,
	                  ENSURE_TIMEOUT_MS);

	if (rc < 0) {
		snprintf(why, len, "the capture worker cannot be reached: %s", strerror(errno));
		return FRAME_UNAVAILABLE;
	}
	if (rc == CTL_ENODEVICE) {
		snprintf(why, len, "no such device, or it is disabled");
		return FRAME_NO_DEVICE;
	}
	if (rc != CTL_OK || n != sizeof *r) {
		snprintf(why, len, "the capture worker cannot open the device (status %d)", rc);
		return FRAME_UNAVAILABLE;
	}
	return FRAME_OK;
}

/* States in which waiting longer cannot help until the device or its configuration changes. */
static bool hopeless(const struct ctl_session_reply *r)
{
	/* No signal: the device itself says no frame will come until the host is on. */
	return r->state == SS_FAILED || (r->state == SS_BACKING_OFF && r->error == SE_AUTH) ||
	       (r->state == SS_STREAMING && r->error == SE_NO_SIGNAL);
}

enum frame_status frame_get(const char *ctl_socket, const char *shm_name, struct shm_store **store,
                            uint64_t device_id, uint64_t after_seq, int timeout_ms,
                            struct shm_frame_info *info, struct buf *out,
                            struct ctl_session_reply *last, char *why, size_t len)
{
	uint64_t deadline = now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	enum frame_status st;

	memset(last, 0, sizeof *last);
	for (;;) {
		int64_t left = (int64_t)(deadline - now_mono_ns()) / 1000000;
		int w;

		if ((st = ensure(ctl_socket, device_id, after_seq, last, why, len)) != FRAME_OK)
			return st;
		if (*store != NULL && shm_reader_stale(*store)) {
			shm_close(*store);
			*store = NULL;
		}
		if (*store == NULL && shm_attach(shm_name, store) < 0) {
			snprintf(why, len, "the frame store cannot be attached: %s", strerror(errno));
			return FRAME_UNAVAILABLE;
		}
		if (last->slot >= 0) {
			w = shm_wait_newer(*store, last->slot, after_seq,
			                   left <= 0 ? 0 : left < WAIT_STEP_MS ? (int)left : WAIT_STEP_MS);
			if (w == 1) {
				int r;
				buf_reset(out);
				buf_reserve(out, 64 * 1024);
				while ((r = shm_read(*store, last->slot, info, out->data, out->cap)) < 0 &&
				       (errno == ENOBUFS || errno == EAGAIN))
					if (errno == ENOBUFS)
						buf_reserve(out, info->len);
				if (r < 0) {
					/* Withdrawn meanwhile (idle close): ask again, without spinning. */
					struct timespec ts = { 0, 50000000 };
					nanosleep(&ts, NULL);
					continue;
				}
				if (info->device_id == device_id && info->seq > after_seq) {
					out->len = info->len;
					return FRAME_OK;
				}
				continue;	/* the slot changed hands: ask again */
			}
			if (w < 0 && errno == ESTALE)
				continue;
		}
		if (hopeless(last) || left <= 0) {
			snprintf(why, len, "no frame: the session is %s (%s%s%s)",
			         session_state_name(last->state), session_error_name(last->error),
			         last->why[0] ? ": " : "", last->why);
			return hopeless(last) ? FRAME_DEVICE_ERROR : FRAME_TIMEOUT;
		}
		if (last->slot < 0) {
			struct timespec ts = { 0, 100000000 };
			nanosleep(&ts, NULL);
		}
	}
}
