/*
 * shm.h - the shared-memory frame store: the latest frame of each device.
 *
 * One named POSIX shared-memory segment per stack. Exactly one process, the
 * capture program, writes it (the "writer"); any number of FastCGI workers
 * map it read-only (the "readers") and copy frames out without taking any
 * lock the writer could hold. Each device in use owns a fixed slot; a slot
 * has two frame buffers, each guarded by its own seqlock, so a reader never
 * sees a torn frame and never blocks the writer. A reader can wait, bounded,
 * for a slot's sequence number to move (a process-shared futex).
 *
 * struct shm_store is each process's private handle; the layout of the
 * segment itself lives in shm.c. Its first two 32-bit words are always the
 * magic and the layout version, so any later layout is recognised and refused.
 *
 * A writer handle must be used by one thread at a time. Reader handles are
 * per process (or per thread: shm_read keeps counters in the handle).
 */
#ifndef KVMGATE_SHM_H
#define KVMGATE_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "util.h"

#define SHM_MAGIC		0x474d564bu	/* "KVMG" little-endian */
#define SHM_VERSION		1u
#define SHM_DEFAULT_SLOTS	64u
#define SHM_DEFAULT_FRAME_MAX	(8u << 20)	/* per buffer; fits raw 1920x1080x4 */
#define SHM_SLOTS_MAX		4096u
#define SHM_FRAME_MAX_LIMIT	(256u << 20)
#define SHM_READ_TRIES		16	/* seqlock attempts before EAGAIN */
#define SHM_NAME_LEN		32	/* "/kvmgate-" + 16 hex + NUL, rounded up */

/* Frame formats. Values are stored in the segment: never renumber. */
enum shm_format {
	SHM_FMT_NONE = 0,
	SHM_FMT_JPEG = 1,
	SHM_FMT_PNG = 2,
	SHM_FMT_RGBX32 = 3,	/* raw, 4 bytes per pixel, R G B x */
	SHM_FMT_BGRX32 = 4,	/* raw, 4 bytes per pixel, B G R x */
	/* 5..254 reserved */
	SHM_FMT_MAX = 255
};

/* What is known about one frame, besides its bytes. */
struct shm_frame_info {
	uint64_t device_id;	/* set by shm_publish and shm_read */
	uint64_t seq;		/* per-slot, increasing; set by shm_publish and shm_read */
	uint64_t capture_ns;	/* wall clock; 0 in shm_publish means "now" */
	uint32_t width;
	uint32_t height;
	enum shm_format format;
	uint32_t len;		/* bytes of frame data */
};

struct shm_stats {
	uint32_t slots_total;
	uint32_t slots_used;
	uint32_t frame_max;
	uint32_t generation;
	bool closed;		/* the writer closed the segment */
	uint64_t reads;		/* this handle: successful shm_read calls */
	uint64_t read_retries;	/* this handle: seqlock retries inside shm_read */
	uint64_t read_exhausted; /* this handle: shm_read calls that gave EAGAIN */
};

struct shm_store;

/*
 * Writes the segment name for the stack whose state directory is dir into
 * out: "/kvmgate-" followed by the first 16 hex digits of SHA-256(dir). The
 * string is hashed as given, so every process must pass the same spelling
 * (the configured absolute path). Returns 0, or -1 with errno=ENAMETOOLONG
 * when outsz < SHM_NAME_LEN.
 */
int shm_name_for_dir(const char *dir, char *out, size_t outsz) MUSTCHECK;

/*
 * Writer: creates the segment name (mode 0600) with the given geometry
 * (0 means SHM_DEFAULT_SLOTS / SHM_DEFAULT_FRAME_MAX) and returns a writer
 * handle in *out, owned by the caller and freed by shm_close.
 *
 * An existing segment is taken over only when no live writer holds it (each
 * writer keeps an exclusive flock on it; a crashed writer's lock is gone):
 * if its layout and geometry match, it is re-initialised in place, every
 * slot emptied under its seqlocks and the generation bumped; otherwise it is
 * marked closed, unlinked and replaced by a fresh segment. Either way readers
 * still attached see shm_reader_stale() and must attach again. Frames are not
 * carried over. Returns 0, or -1 with errno: EINVAL (bad name or geometry),
 * EBUSY (another writer is alive), or what shm_open/ftruncate/mmap set.
 */
int shm_create(const char *name, uint32_t slots, uint32_t frame_max,
	struct shm_store **out) MUSTCHECK;

/*
 * Reader: maps the segment name read-only and returns a reader handle in
 * *out, owned by the caller and freed by shm_close. Everything is checked
 * before use: the segment is outside the reader's control. Returns 0, or -1
 * with errno: ENOENT (no segment), EINVAL (too small, wrong magic, bad
 * geometry or smaller than its geometry says; also for the moment a writer
 * is laying out a new segment: try again later), EPROTO (other layout version).
 */
int shm_attach(const char *name, struct shm_store **out) MUSTCHECK;

/*
 * True when the reader should shm_close and shm_attach again: the writer
 * closed the segment, or a new writer re-initialised it since this handle
 * attached (generation changed). Always false for the writer's own handle.
 */
bool shm_reader_stale(const struct shm_store *st);

/*
 * Writer handle: marks the segment closed, wakes every waiter, unmaps it and
 * unlinks the name (only if the name still refers to this segment). Reader
 * handle: unmaps. Frees the handle. NULL does nothing.
 */
void shm_close(struct shm_store *st);

/*
 * Writer: returns the slot of device_id, assigning a free one if it has none.
 * Returns the slot index, or -1 with errno: ENOSPC (all slots in use),
 * EINVAL (device_id 0), EPERM (reader handle).
 */
int shm_slot_acquire(struct shm_store *st, uint64_t device_id) MUSTCHECK;

/*
 * Writer: frees a slot; its frames are withdrawn (readers get ENOENT). The
 * slot's sequence number is kept, so it never goes backwards for a waiter.
 * Out-of-range or free slots are ignored.
 */
void shm_slot_release(struct shm_store *st, int slot);

/*
 * Writer: publishes a frame of info->len bytes into an acquired slot and
 * wakes the slot's waiters. Assigns the next sequence number and stores it,
 * with the slot's device id, in info->seq and info->device_id; fills
 * info->capture_ns with the wall clock when it is 0. Returns 0, or -1 with
 * errno: EMSGSIZE (len > frame_max), EINVAL (bad slot, free slot, bad format,
 * NULL bytes), EPERM (reader handle).
 */
int shm_publish(struct shm_store *st, int slot, struct shm_frame_info *info,
	const void *bytes) MUSTCHECK;

/* Returns the slot holding device_id, or -1 (errno=ENOENT) when none does. */
int shm_find(const struct shm_store *st, uint64_t device_id);

/*
 * Copies the latest complete frame of slot into buf and its metadata into
 * *info. Never returns a torn frame: metadata and bytes are from one publish.
 * A slot can be released and given to another device at any time, so check
 * info->device_id. Returns 0, or -1 with errno:
 *   ENOENT   no frame in the slot yet (or the slot is free);
 *   ENOBUFS  bufsize is too small: *info is filled, info->len is the size needed;
 *   EAGAIN   the writer overtook the copy SHM_READ_TRIES times: try again;
 *   EBADMSG  the segment holds an impossible length (corrupt);
 *   EINVAL   slot out of range.
 */
int shm_read(struct shm_store *st, int slot, struct shm_frame_info *info,
	void *buf, size_t bufsize) MUSTCHECK;

/*
 * Returns the slot's latest published sequence number (0: nothing yet), or
 * 0 for an out-of-range slot.
 */
uint64_t shm_slot_seq(const struct shm_store *st, int slot);

/*
 * Waits until the slot's published sequence number is greater than
 * after_seq, for at most timeout_ms (>= 0; 0 only checks). Returns 1 when a
 * newer frame is there, 0 on timeout, or -1 with errno: ESTALE (the segment
 * was closed or re-initialised: attach again), EINVAL (bad slot or timeout).
 */
int shm_wait_newer(struct shm_store *st, int slot, uint64_t after_seq,
	int timeout_ms) MUSTCHECK;

/* Fills *out with the segment's geometry and use, and this handle's counters. */
void shm_stats(const struct shm_store *st, struct shm_stats *out);

#endif
