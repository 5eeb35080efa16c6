/*
 * shm.c - the shared-memory frame store (see shm.h).
 *
 * Segment layout; every offset follows from (slots, frame_max), which the
 * header records and every process checks against the mapping size:
 *
 *   0          struct shm_hdr, one page
 *   SHM_PAGE   struct shm_slot[slots], rounded up to a page
 *   data_off   2 * slots frame buffers of buf_stride bytes (frame_max rounded
 *              up to a page); slot i, buffer b at data_off + (2i + b) * buf_stride
 *
 * Slot headers are packed together so shm_find scans a few cache lines; each
 * slot header and each buffer's metadata sit on their own cache line, so the
 * writer filling one buffer does not bounce the line readers are polling.
 *
 * Publishing (one writer): fill the buffer that is not active inside its
 * seqlock (odd while being written), then make it active, then store the
 * slot's sequence number, then bump the slot's futex word and wake waiters.
 * Reading: take the active buffer, note its seqlock (must be even), copy
 * metadata and bytes, re-read the seqlock; unchanged means the copy is one
 * frame. With two buffers a reader only retries when the writer published
 * twice during its copy, so a slow reader of a big frame rarely retries.
 *
 * Everything a reader uses to index the mapping (slot count, frame_max,
 * offsets) is validated once at attach and then taken from its own handle,
 * never re-read from the segment; lengths read from the segment are checked
 * against that frame_max before use.
 */
#include "shm.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <openssl/sha.h>

#define SHM_PAGE	4096u
#define SHM_LINE	64u

/* Segment header: page 0. Fixed size, no pointers. */
struct shm_hdr {
	uint32_t magic;		/* SHM_MAGIC; stored last at creation */
	uint32_t version;	/* SHM_VERSION */
	uint32_t slots;
	uint32_t frame_max;	/* bytes per buffer usable for a frame */
	uint64_t buf_stride;	/* frame_max rounded up to a page */
	uint64_t data_off;	/* offset of slot 0 buffer 0 */
	uint64_t total_size;	/* bytes the segment must have */
	uint32_t generation;	/* bumped by every writer that (re)initialises */
	uint32_t closed;	/* 1: the writer closed or gave up this segment */
	uint32_t slots_used;
	uint32_t writer_pid;	/* diagnostics only */
	uint8_t reserved[SHM_PAGE - 56];
};

/* One frame buffer's metadata, guarded by lock together with the bytes. */
struct shm_buf {
	uint32_t lock;		/* seqlock: odd while the writer fills the buffer */
	uint32_t format;	/* enum shm_format */
	uint64_t seq;		/* 0: no frame */
	uint64_t device_id;
	uint64_t capture_ns;
	uint32_t width;
	uint32_t height;
	uint32_t len;
	uint32_t reserved[5];
};

struct shm_slot {
	uint64_t device_id;	/* 0: free */
	uint64_t seq;		/* latest published sequence number */
	uint32_t active;	/* buffer (0 or 1) holding seq */
	uint32_t wake;		/* futex word, bumped on every publish */
	uint8_t reserved[SHM_LINE - 24];
	struct shm_buf buf[2];
};

_Static_assert(sizeof(struct shm_hdr) == SHM_PAGE, "header is one page");
_Static_assert(sizeof(struct shm_buf) == SHM_LINE, "buffer metadata is one line");
_Static_assert(sizeof(struct shm_slot) == 3 * SHM_LINE, "slot is three lines");
_Static_assert(offsetof(struct shm_hdr, magic) == 0 &&
	offsetof(struct shm_hdr, version) == 4, "magic and version lead");

/* Geometry, computed from (slots, frame_max); all offsets in bytes. */
struct geom {
	uint32_t slots;
	uint32_t frame_max;
	uint64_t buf_stride;
	uint64_t data_off;
	uint64_t total;
};

/* A process's handle. The only copies of geometry it trusts are these. */
struct shm_store {
	char name[NAME_MAX + 1];
	bool writer;
	int fd;			/* writer: open, holds the flock; reader: -1 */
	uint8_t *base;
	struct geom g;
	struct shm_hdr *hdr;
	struct shm_slot *slot;
	uint32_t generation;	/* when created or attached */
	uint64_t reads;
	uint64_t read_retries;
	uint64_t read_exhausted;
};

static uint64_t round_up(uint64_t n, uint64_t to)
{
	return (n + to - 1) / to * to;
}

/* Bounds are checked by the callers, so nothing here can overflow. */
static void geom_compute(uint32_t slots, uint32_t frame_max, struct geom *g)
{
	g->slots = slots;
	g->frame_max = frame_max;
	g->buf_stride = round_up(frame_max, SHM_PAGE);
	g->data_off = SHM_PAGE + round_up((uint64_t)slots * sizeof(struct shm_slot), SHM_PAGE);
	g->total = g->data_off + 2 * (uint64_t)slots * g->buf_stride;
}

static bool geom_valid(uint32_t slots, uint32_t frame_max)
{
	return slots >= 1 && slots <= SHM_SLOTS_MAX &&
		frame_max >= 1 && frame_max <= SHM_FRAME_MAX_LIMIT;
}

/*
 * Checks a header against the mapping size; on success fills *g. Returns 0,
 * or -1 with errno EINVAL (bad magic or geometry) or EPROTO (version).
 */
static int hdr_check(const struct shm_hdr *h, uint64_t size, struct geom *g)
{
	/* Acquire pairs with the release store of magic in init_fresh. */
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != SHM_MAGIC)
		goto inval;
	if (h->version != SHM_VERSION) {
		errno = EPROTO;
		return -1;
	}
	if (!geom_valid(h->slots, h->frame_max))
		goto inval;
	geom_compute(h->slots, h->frame_max, g);
	if (h->buf_stride != g->buf_stride || h->data_off != g->data_off ||
	    h->total_size != g->total || g->total > size)
		goto inval;
	return 0;
inval:
	errno = EINVAL;
	return -1;
}

static bool name_valid(const char *name)
{
	size_t n;

	if (name == NULL || name[0] != '/')
		return false;
	n = strlen(name);
	return n >= 2 && n <= NAME_MAX && strchr(name + 1, '/') == NULL;
}

static uint8_t *buf_data(const struct shm_store *st, int slot, unsigned b)
{
	return st->base + st->g.data_off + (2 * (uint64_t)slot + b) * st->g.buf_stride;
}

static bool slot_valid(const struct shm_store *st, int slot)
{
	return st != NULL && slot >= 0 && (uint32_t)slot < st->g.slots;
}

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

/*
 * Shared (not FUTEX_PRIVATE_FLAG) futex ops: waiters are in other processes,
 * keyed by the shared page, not by this process's address space.
 */
static void wake_all(struct shm_slot *s)
{
	/*
	 * Release: a waiter that sees the new wake value also sees the seq (or
	 * closed flag) stored before it. The kernel orders its own compare in
	 * FUTEX_WAIT against FUTEX_WAKE, so a waiter that read the old value
	 * is either woken or finds the word changed and returns at once.
	 */
	__atomic_add_fetch(&s->wake, 1, __ATOMIC_RELEASE);
	futex(&s->wake, FUTEX_WAKE, INT_MAX, NULL);
}

/*
 * Writer side of a buffer's seqlock. The new odd value is above any value
 * the lock had, also when a crashed writer left it odd. The release fence
 * keeps the odd store ahead of every later store to the buffer, so a reader
 * that copied any of the new bytes and then (after its acquire fence) reads
 * the lock cannot still see its old even value.
 */
static uint32_t buf_begin(struct shm_buf *bf)
{
	uint32_t l = (__atomic_load_n(&bf->lock, __ATOMIC_RELAXED) + 1) | 1;

	__atomic_store_n(&bf->lock, l, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return l;
}

/*
 * Release: a reader whose acquire load sees this even value sees all the
 * buffer's metadata and bytes written before it. A 32-bit counter wraps
 * after 2^31 publishes into one buffer, far beyond any single copy.
 */
static void buf_end(struct shm_buf *bf, uint32_t l)
{
	__atomic_store_n(&bf->lock, l + 1, __ATOMIC_RELEASE);
}

static void buf_clear(struct shm_buf *bf)
{
	uint32_t l = buf_begin(bf);

	__atomic_store_n(&bf->seq, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->device_id, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->capture_ns, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->format, SHM_FMT_NONE, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->width, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->height, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->len, 0, __ATOMIC_RELAXED);
	buf_end(bf, l);
}

/* Empties a slot; its seq is kept so it never moves backwards for a waiter. */
static void slot_clear(struct shm_slot *s)
{
	__atomic_store_n(&s->device_id, 0, __ATOMIC_RELEASE);
	buf_clear(&s->buf[0]);
	buf_clear(&s->buf[1]);
}

static void handle_map(struct shm_store *st, uint8_t *base, const struct geom *g)
{
	st->base = base;
	st->g = *g;
	st->hdr = (struct shm_hdr *)base;
	st->slot = (struct shm_slot *)(base + SHM_PAGE);
}

/* Writer: lays out a zero-filled, correctly sized segment. */
static void init_fresh(struct shm_store *st, uint32_t generation)
{
	struct shm_hdr *h = st->hdr;

	h->version = SHM_VERSION;
	h->slots = st->g.slots;
	h->frame_max = st->g.frame_max;
	h->buf_stride = st->g.buf_stride;
	h->data_off = st->g.data_off;
	h->total_size = st->g.total;
	h->generation = generation;
	h->writer_pid = (uint32_t)getpid();
	/* Magic last, with release: a reader that sees it sees the rest. */
	__atomic_store_n(&h->magic, SHM_MAGIC, __ATOMIC_RELEASE);
}

/*
 * Writer: takes over a matching segment left by a crashed writer. The
 * generation goes first so readers notice before slots change under them;
 * slots are emptied through their seqlocks, so a reader in the middle of a
 * copy retries instead of returning a mix.
 */
static void init_reuse(struct shm_store *st)
{
	struct shm_hdr *h = st->hdr;

	st->generation = __atomic_load_n(&h->generation, __ATOMIC_RELAXED) + 1;
	__atomic_store_n(&h->generation, st->generation, __ATOMIC_RELEASE);
	__atomic_store_n(&h->writer_pid, (uint32_t)getpid(), __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < st->g.slots; i++) {
		slot_clear(&st->slot[i]);
		wake_all(&st->slot[i]);
	}
	__atomic_store_n(&h->slots_used, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->closed, 0, __ATOMIC_RELEASE);
}

/*
 * Writer: marks a segment we will not reuse as closed, so its readers leave,
 * and returns its generation (0 when it is not a kvmgate segment).
 */
static uint32_t retire_old(int fd, uint64_t size)
{
	struct shm_hdr *h;
	uint32_t gen = 0;

	if (size < sizeof *h)
		return 0;
	h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return 0;
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == SHM_MAGIC) {
		gen = h->generation;
		__atomic_store_n(&h->closed, 1, __ATOMIC_RELEASE);
	}
	munmap(h, sizeof *h);
	return gen;
}

/* Opens (creating if needed) and locks the name; -1 with EBUSY if locked. */
static int open_locked(const char *name, int flags)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC | flags, 0600);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		errno = (e == EWOULDBLOCK) ? EBUSY : e;
		return -1;
	}
	return fd;
}

int shm_name_for_dir(const char *dir, char *out, size_t outsz)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char hex[2 * 8 + 1];

	if (outsz < SHM_NAME_LEN) {
		errno = ENAMETOOLONG;
		return -1;
	}
	SHA256((const uint8_t *)dir, strlen(dir), md);
	hex_encode(md, 8, hex);
	snprintf(out, outsz, "/kvmgate-%s", hex);
	return 0;
}

int shm_create(const char *name, uint32_t slots, uint32_t frame_max,
	struct shm_store **out)
{
	struct shm_store *st = NULL;
	struct geom g, old;
	struct stat sb;
	void *base = MAP_FAILED;
	uint32_t old_gen;
	const char *why = "bad name or geometry";
	int fd = -1, e;

	*out = NULL;
	if (slots == 0)
		slots = SHM_DEFAULT_SLOTS;
	if (frame_max == 0)
		frame_max = SHM_DEFAULT_FRAME_MAX;
	if (!name_valid(name) || !geom_valid(slots, frame_max)) {
		errno = EINVAL;
		goto fail;
	}
	geom_compute(slots, frame_max, &g);
	st = xcalloc(1, sizeof *st);
	snprintf(st->name, sizeof st->name, "%s", name);
	st->writer = true;

	why = "open";
	if ((fd = open_locked(name, 0)) < 0)
		goto fail;
	/* The umask may have narrowed 0600 further, never widened it; an old
	 * segment may have been made with another mode. */
	(void)fchmod(fd, 0600);
	why = "fstat";
	if (fstat(fd, &sb) < 0)
		goto fail;

	if (sb.st_size == (off_t)g.total) {
		why = "mmap";
		base = mmap(NULL, g.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED)
			goto fail;
		if (hdr_check(base, g.total, &old) == 0 &&
		    old.slots == g.slots && old.frame_max == g.frame_max) {
			handle_map(st, base, &g);
			init_reuse(st);
			goto done;
		}
		munmap(base, g.total);
		base = MAP_FAILED;
	}

	if (sb.st_size != 0) {
		/* Another layout or geometry: replace it rather than resize it
		 * under readers that still map it (they would fault). */
		old_gen = retire_old(fd, (uint64_t)sb.st_size);
		why = "unlink old segment";
		if (shm_unlink(name) < 0 && errno != ENOENT)
			goto fail;
		close(fd);
		why = "create";
		if ((fd = open_locked(name, O_EXCL)) < 0)
			goto fail;
		st->generation = old_gen + 1;
	} else {
		st->generation = 1;
	}
	why = "ftruncate";
	if (ftruncate(fd, (off_t)g.total) < 0)
		goto fail;
	why = "mmap";
	base = mmap(NULL, g.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		goto fail;
	handle_map(st, base, &g);
	init_fresh(st, st->generation);
done:
	st->fd = fd;
	*out = st;
	return 0;
fail:
	e = errno;
	log_warn("shm %s: %s", name ? name : "(null)", why);
	if (base != MAP_FAILED)
		munmap(base, g.total);
	if (fd >= 0)
		close(fd);
	free(st);
	errno = e;
	return -1;
}

int shm_attach(const char *name, struct shm_store **out)
{
	struct shm_store *st = NULL;
	struct stat sb;
	struct geom g;
	void *base = MAP_FAILED;
	size_t maplen = 0;
	int fd = -1, e;

	*out = NULL;
	if (!name_valid(name)) {
		errno = EINVAL;
		goto fail;
	}
	if ((fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)) < 0)
		goto fail;
	if (fstat(fd, &sb) < 0)
		goto fail;
	if (sb.st_size < (off_t)sizeof(struct shm_hdr)) {
		errno = EINVAL;
		goto fail;
	}
	/* Read the header alone first: the geometry says how much to map. */
	maplen = sizeof(struct shm_hdr);
	if ((base = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto fail;
	if (hdr_check(base, (uint64_t)sb.st_size, &g) < 0)
		goto fail;
	munmap(base, maplen);
	maplen = g.total;
	if ((base = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto fail;
	close(fd);

	st = xcalloc(1, sizeof *st);
	snprintf(st->name, sizeof st->name, "%s", name);
	st->fd = -1;
	handle_map(st, base, &g);
	st->generation = __atomic_load_n(&st->hdr->generation, __ATOMIC_ACQUIRE);
	*out = st;
	return 0;
fail:
	e = errno;
	if (base != MAP_FAILED)
		munmap(base, maplen);
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

bool shm_reader_stale(const struct shm_store *st)
{
	if (st == NULL)
		return true;
	return __atomic_load_n(&st->hdr->closed, __ATOMIC_ACQUIRE) != 0 ||
		__atomic_load_n(&st->hdr->generation, __ATOMIC_ACQUIRE) != st->generation;
}

/* Unlinks the name only while it still names our segment. */
static void unlink_if_ours(const struct shm_store *st)
{
	struct stat a, b;
	int fd;

	if (fstat(st->fd, &a) < 0)
		return;
	if ((fd = shm_open(st->name, O_RDONLY | O_CLOEXEC, 0)) < 0)
		return;
	if (fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		(void)shm_unlink(st->name);
	close(fd);
}

void shm_close(struct shm_store *st)
{
	if (st == NULL)
		return;
	if (st->writer) {
		__atomic_store_n(&st->hdr->closed, 1, __ATOMIC_RELEASE);
		for (uint32_t i = 0; i < st->g.slots; i++)
			wake_all(&st->slot[i]);
		unlink_if_ours(st);
	}
	munmap(st->base, st->g.total);
	/* Closing the descriptor last drops the flock after the unlink. */
	if (st->fd >= 0)
		close(st->fd);
	free(st);
}

int shm_slot_acquire(struct shm_store *st, uint64_t device_id)
{
	int free_slot = -1;

	if (st == NULL || !st->writer) {
		errno = EPERM;
		return -1;
	}
	if (device_id == 0) {
		errno = EINVAL;
		return -1;
	}
	for (uint32_t i = 0; i < st->g.slots; i++) {
		uint64_t d = __atomic_load_n(&st->slot[i].device_id, __ATOMIC_RELAXED);
		if (d == device_id)
			return (int)i;
		if (d == 0 && free_slot < 0)
			free_slot = (int)i;
	}
	if (free_slot < 0) {
		errno = ENOSPC;
		return -1;
	}
	/* The slot's buffers were emptied when it was freed. */
	__atomic_store_n(&st->slot[free_slot].device_id, device_id, __ATOMIC_RELEASE);
	__atomic_add_fetch(&st->hdr->slots_used, 1, __ATOMIC_RELAXED);
	return free_slot;
}

void shm_slot_release(struct shm_store *st, int slot)
{
	if (!slot_valid(st, slot) || !st->writer ||
	    __atomic_load_n(&st->slot[slot].device_id, __ATOMIC_RELAXED) == 0)
		return;
	slot_clear(&st->slot[slot]);
	__atomic_sub_fetch(&st->hdr->slots_used, 1, __ATOMIC_RELAXED);
}

int shm_publish(struct shm_store *st, int slot, struct shm_frame_info *info,
	const void *bytes)
{
	struct shm_slot *s;
	struct shm_buf *bf;
	uint64_t seq, dev;
	uint32_t l;
	unsigned b;

	if (st == NULL || !st->writer) {
		errno = EPERM;
		return -1;
	}
	if (!slot_valid(st, slot) || info == NULL ||
	    (info->len > 0 && bytes == NULL) ||
	    (unsigned)info->format > SHM_FMT_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (info->len > st->g.frame_max) {
		errno = EMSGSIZE;
		return -1;
	}
	s = &st->slot[slot];
	dev = __atomic_load_n(&s->device_id, __ATOMIC_RELAXED);
	if (dev == 0) {
		errno = EINVAL;
		return -1;
	}
	if (info->capture_ns == 0)
		info->capture_ns = now_wall_ns();
	seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED) + 1;
	b = (__atomic_load_n(&s->active, __ATOMIC_RELAXED) & 1) ^ 1;
	bf = &s->buf[b];

	l = buf_begin(bf);
	__atomic_store_n(&bf->seq, seq, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->device_id, dev, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->capture_ns, info->capture_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->format, (uint32_t)info->format, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->width, info->width, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->height, info->height, __ATOMIC_RELAXED);
	__atomic_store_n(&bf->len, info->len, __ATOMIC_RELAXED);
	/*
	 * Plain memcpy, not per-byte atomics: formally a race with a reader
	 * copying the same buffer, as in every seqlock (Linux's included); the
	 * fences in buf_begin/buf_end and the reader's re-check are what make
	 * any copy that overlapped this one be thrown away.
	 */
	if (info->len > 0)
		memcpy(buf_data(st, slot, b), bytes, info->len);
	buf_end(bf, l);

	/*
	 * Release on active: a reader that picks b sees b's lock at l + 1 or
	 * later, hence the complete frame. seq after active, both release, so a
	 * waiter that sees seq (through the wake counter's release) reads a
	 * buffer holding that seq or a newer one.
	 */
	__atomic_store_n(&s->active, b, __ATOMIC_RELEASE);
	__atomic_store_n(&s->seq, seq, __ATOMIC_RELEASE);
	wake_all(s);

	info->seq = seq;
	info->device_id = dev;
	return 0;
}

int shm_find(const struct shm_store *st, uint64_t device_id)
{
	if (st != NULL && device_id != 0)
		for (uint32_t i = 0; i < st->g.slots; i++)
			if (__atomic_load_n(&st->slot[i].device_id, __ATOMIC_ACQUIRE) == device_id)
				return (int)i;
	errno = ENOENT;
	return -1;
}

/*
 * Reader side of the seqlock: the acquire fence keeps every load of the copy
 * ahead of the lock's second load (pairs with the writer's release fence in
 * buf_begin). Equal to the first, even value: nothing was written meanwhile.
 */
static bool buf_unchanged(const struct shm_buf *bf, uint32_t s1)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&bf->lock, __ATOMIC_RELAXED) == s1;
}

int shm_read(struct shm_store *st, int slot, struct shm_frame_info *info,
	void *buf, size_t bufsize)
{
	const struct shm_slot *s;

	if (!slot_valid(st, slot) || info == NULL) {
		errno = EINVAL;
		return -1;
	}
	s = &st->slot[slot];
	for (int attempt = 0; attempt < SHM_READ_TRIES; attempt++) {
		const struct shm_buf *bf;
		struct shm_frame_info fi;
		uint32_t s1, fmt;
		unsigned b;

		if (attempt > 0) {
			st->read_retries++;
			if (attempt > 2)
				sched_yield();	/* let a preempted writer finish */
		}
		/* Acquire pairs with the writer's release store of active. */
		b = __atomic_load_n(&s->active, __ATOMIC_ACQUIRE) & 1;
		bf = &s->buf[b];
		s1 = __atomic_load_n(&bf->lock, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;	/* the writer has come round to this buffer */
		fi.seq = __atomic_load_n(&bf->seq, __ATOMIC_RELAXED);
		fi.device_id = __atomic_load_n(&bf->device_id, __ATOMIC_RELAXED);
		fi.capture_ns = __atomic_load_n(&bf->capture_ns, __ATOMIC_RELAXED);
		fmt = __atomic_load_n(&bf->format, __ATOMIC_RELAXED);
		fi.width = __atomic_load_n(&bf->width, __ATOMIC_RELAXED);
		fi.height = __atomic_load_n(&bf->height, __ATOMIC_RELAXED);
		fi.len = __atomic_load_n(&bf->len, __ATOMIC_RELAXED);
		fi.format = (enum shm_format)(fmt & 0xff);

		if (fi.seq == 0 || fi.len > st->g.frame_max || fmt > SHM_FMT_MAX ||
		    fi.len > bufsize) {
			/* Decide only on metadata that was not being rewritten. */
			if (!buf_unchanged(bf, s1))
				continue;
			if (fi.seq == 0) {
				errno = ENOENT;
			} else if (fi.len > st->g.frame_max || fmt > SHM_FMT_MAX) {
				errno = EBADMSG;
			} else {
				*info = fi;
				errno = ENOBUFS;
			}
			return -1;
		}
		if (fi.len > 0)
			memcpy(buf, buf_data(st, slot, b), fi.len);
		if (!buf_unchanged(bf, s1))
			continue;
		*info = fi;
		st->reads++;
		return 0;
	}
	st->read_exhausted++;
	errno = EAGAIN;
	return -1;
}

uint64_t shm_slot_seq(const struct shm_store *st, int slot)
{
	if (!slot_valid(st, slot))
		return 0;
	return __atomic_load_n(&st->slot[slot].seq, __ATOMIC_ACQUIRE);
}

int shm_wait_newer(struct shm_store *st, int slot, uint64_t after_seq,
	int timeout_ms)
{
	struct shm_slot *s;
	uint64_t deadline, now;

	if (!slot_valid(st, slot) || timeout_ms < 0) {
		errno = EINVAL;
		return -1;
	}
	s = &st->slot[slot];
	deadline = now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		struct timespec ts;
		uint64_t left;
		/*
		 * Read the futex word before the condition: a publish after
		 * this load changes the word, so FUTEX_WAIT below returns at
		 * once instead of sleeping through it.
		 */
		uint32_t w = __atomic_load_n(&s->wake, __ATOMIC_ACQUIRE);

		/* Stale first: a newer frame in a dead segment is no news. */
		if (!st->writer && shm_reader_stale(st)) {
			errno = ESTALE;
			return -1;
		}
		if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) > after_seq)
			return 1;
		now = now_mono_ns();
		if (now >= deadline)
			return 0;
		left = deadline - now;
		ts.tv_sec = (time_t)(left / 1000000000u);
		ts.tv_nsec = (long)(left % 1000000000u);
		/* EAGAIN (word moved), EINTR, ETIMEDOUT: all re-check above. */
		(void)futex(&s->wake, FUTEX_WAIT, w, &ts);
	}
}

void shm_stats(const struct shm_store *st, struct shm_stats *out)
{
	uint32_t used;

	memset(out, 0, sizeof *out);
	if (st == NULL)
		return;
	used = __atomic_load_n(&st->hdr->slots_used, __ATOMIC_RELAXED);
	out->slots_total = st->g.slots;
	out->slots_used = used < st->g.slots ? used : st->g.slots;
	out->frame_max = st->g.frame_max;
	out->generation = __atomic_load_n(&st->hdr->generation, __ATOMIC_RELAXED);
	out->closed = __atomic_load_n(&st->hdr->closed, __ATOMIC_RELAXED) != 0;
	out->reads = st->reads;
	out->read_retries = st->read_retries;
	out->read_exhausted = st->read_exhausted;
}
