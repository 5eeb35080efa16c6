/*
 * frame.h - a reader's way to a device's latest frame: ask the capture
 * worker to keep the device's session open (CTL_SESSION_ENSURE), then wait
 * on the device's shared-memory slot for a frame newer than a given
 * sequence number, bounded by a timeout. Never polls the device itself.
 * Used by FastCGI workers and the CLI.
 */
#ifndef KVMGATE_FRAME_H
#define KVMGATE_FRAME_H

#include "buf.h"
#include "ctl.h"
#include "shm.h"

/* Why frame_get gave no frame. */
enum frame_status {
	FRAME_OK = 0,
	FRAME_NO_DEVICE,	/* no such device, or disabled */
	FRAME_UNAVAILABLE,	/* capture worker, database or frame store unreachable */
	FRAME_DEVICE_ERROR,	/* the session reports an error: see the reply's error/why */
	FRAME_TIMEOUT,		/* no newer frame in time, the session still trying */
};

/*
 * Gets a frame of device_id with a sequence number above after_seq (0: any
 * frame) into out (replacing its contents) and *info, waiting up to
 * timeout_ms. *store is the caller's reader handle: attached when NULL,
 * re-attached when stale; the caller closes it with shm_close. *last gets
 * the session's latest state as the capture worker reported it. Returns
 * FRAME_OK or why not, with a sentence for a person in why.
 */
enum frame_status frame_get(const char *ctl_socket, const char *shm_name, struct shm_store **store,
                            uint64_t device_id, uint64_t after_seq, int timeout_ms,
                            struct shm_frame_info *info, struct buf *out,
                            struct ctl_session_reply *last, char *why, size_t len) MUSTCHECK;

#endif
