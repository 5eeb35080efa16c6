/*
 * check_shm.c - unit tests for shared/shm.c, the shared-memory frame store.
 *
 * Every test makes its own segment named after the test and the pid and
 * removes it at the end (teardown unlinks it too, in case a test failed
 * half-way). The concurrency test forks real reader processes against a
 * writer, as capture and the FastCGI workers run in production.
 */
#include "shm.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char seg[64];
static pid_t main_pid;

/* Names carry the runner's pid, so main can sweep what failed tests left. */
static void setup(void)
{
	static unsigned n;

	snprintf(seg, sizeof seg, "/kvmgate-check-%ld-%ld-%u", (long)main_pid,
		(long)getpid(), n++);
	shm_unlink(seg);
}

static void teardown(void)
{
	shm_unlink(seg);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Overwrites 4 bytes of a segment at off, as a foreign or corrupt writer would. */
static void poke32(const char *name, off_t off, uint32_t v)
{
	int fd = shm_open(name, O_RDWR, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, &v, sizeof v, off), (ssize_t)sizeof v);
	close(fd);
}

static uint32_t peek32(const char *name, off_t off)
{
	uint32_t v = 0;
	int fd = shm_open(name, O_RDONLY, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &v, sizeof v, off), (ssize_t)sizeof v);
	close(fd);
	return v;
}

/*
 * Frame contents derived from (device, seq) only, so a reader can check a
 * frame on its own: every 8-byte word is mix(key) ^ position, distinct for
 * distinct keys at every position, and the metadata encodes the key too.
 */
static uint64_t frame_key(uint64_t dev, uint64_t seq)
{
	return (seq << 8) | (dev & 0xff);
}

static uint64_t mix(uint64_t k)
{
	return k * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
}

/*
 * Lengths from 1 to max, mostly small: the writer turns small frames round
 * quickly and so laps readers still copying a big one.
 */
static uint32_t frame_len(uint64_t key, uint32_t max)
{
	uint64_t m = mix(key);

	return 1 + (uint32_t)((m >> 17) % (max >> (m >> 61)));
}

static void frame_make(uint64_t dev, uint64_t seq, uint32_t max,
	struct shm_frame_info *fi, uint8_t *p)
{
	uint64_t key = frame_key(dev, seq), m = mix(key);

	memset(fi, 0, sizeof *fi);
	fi->len = frame_len(key, max);
	fi->width = (uint32_t)key;
	fi->height = (uint32_t)(key >> 32) ^ 0xA5A5A5A5u;
	fi->capture_ns = key ^ 0x5555555555555555ull;
	fi->format = (enum shm_format)(1 + seq % 4);
	for (uint32_t i = 0; i < fi->len; i += 8) {
		uint64_t w = m ^ ((uint64_t)i * 0x100000001B3ull);

		/* Constant-size copies compile to plain stores (fast under ASan). */
		if (fi->len - i >= 8)
			memcpy(p + i, &w, 8);
		else
			memcpy(p + i, &w, fi->len - i);
	}
}

/* True when a frame read back is exactly what frame_make made for its seq. */
static bool frame_ok(const struct shm_frame_info *fi, const uint8_t *p, uint32_t max)
{
	uint64_t key = frame_key(fi->device_id, fi->seq), m = mix(key);

	if (fi->seq == 0 || fi->len != frame_len(key, max) ||
	    fi->width != (uint32_t)key ||
	    fi->height != ((uint32_t)(key >> 32) ^ 0xA5A5A5A5u) ||
	    fi->capture_ns != (key ^ 0x5555555555555555ull) ||
	    fi->format != (enum shm_format)(1 + fi->seq % 4))
		return false;
	for (uint32_t i = 0; i < fi->len; i += 8) {
		uint64_t w = m ^ ((uint64_t)i * 0x100000001B3ull), got;

		if (fi->len - i >= 8) {
			memcpy(&got, p + i, 8);
			if (got != w)
				return false;
		} else if (memcmp(p + i, &w, fi->len - i) != 0) {
			return false;
		}
	}
	return true;
}

START_TEST(test_name_for_dir)
{
	char a[SHM_NAME_LEN], b[SHM_NAME_LEN], small[8];

	ck_assert_int_eq(shm_name_for_dir("/var/lib/kvmgate", a, sizeof a), 0);
	/* printf /var/lib/kvmgate | sha256sum | cut -c1-16 */
	ck_assert_str_eq(a, "/kvmgate-97e48e7cfee5cad6");
	ck_assert_int_eq(shm_name_for_dir("/var/lib/kvmgate2", b, sizeof b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(shm_name_for_dir("/x", small, sizeof small), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(test_round_trip)
{
	struct shm_store *w, *r;
	struct shm_frame_info fi, got;
	struct shm_stats ss;
	uint8_t in[1000], out[1000];
	int slot;

	ck_assert_int_eq(shm_create(seg, 4, 4096, &w), 0);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	shm_stats(r, &ss);
	ck_assert_uint_eq(ss.slots_total, 4);
	ck_assert_uint_eq(ss.frame_max, 4096);
	ck_assert_uint_eq(ss.slots_used, 0);
	ck_assert(!ss.closed);
	ck_assert(!shm_reader_stale(r));

	slot = shm_slot_acquire(w, 42);
	ck_assert_int_ge(slot, 0);
	ck_assert_int_eq(shm_read(r, slot, &got, out, sizeof out), -1);
	ck_assert_int_eq(errno, ENOENT);

	for (uint64_t seq = 1; seq <= 3; seq++) {
		frame_make(42, seq, sizeof in, &fi, in);
		ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);
		ck_assert_uint_eq(fi.seq, seq);
		ck_assert_uint_eq(fi.device_id, 42);
		ck_assert_uint_eq(shm_slot_seq(r, slot), seq);
		memset(&got, 0, sizeof got);
		ck_assert_int_eq(shm_read(r, slot, &got, out, sizeof out), 0);
		ck_assert(frame_ok(&got, out, sizeof in));
		ck_assert_uint_eq(got.seq, seq);
		ck_assert_uint_eq(got.device_id, 42);
		ck_assert_mem_eq(out, in, fi.len);
	}

	/* Buffer too small: metadata filled, len is the size needed. */
	memset(&got, 0, sizeof got);
	ck_assert_int_eq(shm_read(r, slot, &got, out, fi.len - 1), -1);
	ck_assert_int_eq(errno, ENOBUFS);
	ck_assert_uint_eq(got.len, fi.len);
	ck_assert_uint_eq(got.seq, 3);
	ck_assert_int_eq(shm_read(r, 4, &got, out, sizeof out), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(shm_read(r, -1, &got, out, sizeof out), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* capture_ns 0 means now; an empty frame is a frame. */
	memset(&fi, 0, sizeof fi);
	fi.format = SHM_FMT_RGBX32;
	ck_assert_int_eq(shm_publish(w, slot, &fi, NULL), 0);
	ck_assert_uint_gt(fi.capture_ns, 0);
	ck_assert_int_eq(shm_read(r, slot, &got, NULL, 0), 0);
	ck_assert_uint_eq(got.len, 0);
	ck_assert_uint_eq(got.seq, 4);
	ck_assert_int_eq(got.format, SHM_FMT_RGBX32);

	shm_stats(r, &ss);
	ck_assert_uint_eq(ss.slots_used, 1);
	ck_assert_uint_eq(ss.reads, 4);
	shm_close(r);
	shm_close(w);
	/* The writer unlinked the name. */
	ck_assert_int_eq(shm_attach(seg, &r), -1);
	ck_assert_int_eq(errno, ENOENT);
	shm_close(NULL);
}
END_TEST

START_TEST(test_defaults)
{
	struct shm_store *w;
	struct shm_stats ss;

	ck_assert_int_eq(shm_create(seg, 0, 0, &w), 0);
	shm_stats(w, &ss);
	ck_assert_uint_eq(ss.slots_total, SHM_DEFAULT_SLOTS);
	ck_assert_uint_eq(ss.frame_max, SHM_DEFAULT_FRAME_MAX);
	ck_assert_uint_ge(SHM_DEFAULT_FRAME_MAX, 1920u * 1080u * 4u);
	shm_close(w);
}
END_TEST

static const struct {
	const char *name;
	uint32_t slots, frame_max;
} bad_create[] = {
	{ "no-slash", 4, 4096 },
	{ "/a/b", 4, 4096 },
	{ "/", 4, 4096 },
	{ NULL, SHM_SLOTS_MAX + 1, 4096 },
	{ NULL, 4, SHM_FRAME_MAX_LIMIT + 1 },
};

START_TEST(test_create_invalid)
{
	struct shm_store *w = (void *)1;
	const char *name = bad_create[_i].name ? bad_create[_i].name : seg;

	ck_assert_int_eq(shm_create(name, bad_create[_i].slots,
		bad_create[_i].frame_max, &w), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(w);
}
END_TEST

START_TEST(test_attach_missing)
{
	struct shm_store *r = (void *)1;

	ck_assert_int_eq(shm_attach(seg, &r), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(shm_attach("bad-name", &r), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* Segments of the right name but too small to hold a header. */
static const off_t small_sizes[] = { 0, 7, 100, 4095 };

START_TEST(test_attach_too_small)
{
	struct shm_store *r = (void *)1;
	int fd = shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, small_sizes[_i]), 0);
	if (small_sizes[_i] >= 4)
		ck_assert_int_eq(pwrite(fd, &(uint32_t){ SHM_MAGIC }, 4, 0), 4);
	close(fd);
	ck_assert_int_eq(shm_attach(seg, &r), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(r);
}
END_TEST

/*
 * Header words changed behind the writer's back. Magic and version lead the
 * header by contract; slots and frame_max follow (layout in shm.c).
 */
static const struct {
	const char *what;
	off_t off;
	uint32_t value;
	int err;
} bad_hdr[] = {
	{ "magic", 0, 0xdeadbeefu, EINVAL },
	{ "version", 4, SHM_VERSION + 1, EPROTO },
	{ "version 0", 4, 0, EPROTO },
	{ "slots 0", 8, 0, EINVAL },
	{ "slots disagree with offsets", 8, 8, EINVAL },
	{ "slots absurd", 8, 0xffffffffu, EINVAL },
	{ "frame_max beyond mapping", 12, 8192, EINVAL },
	{ "frame_max 0", 12, 0, EINVAL },
};

START_TEST(test_attach_bad_header)
{
	struct shm_store *w, *r = (void *)1;
	uint32_t saved;

	ck_assert_int_eq(shm_create(seg, 4, 4096, &w), 0);
	saved = peek32(seg, bad_hdr[_i].off);
	poke32(seg, bad_hdr[_i].off, bad_hdr[_i].value);
	ck_assert_msg(shm_attach(seg, &r) == -1, "%s accepted", bad_hdr[_i].what);
	ck_assert_int_eq(errno, bad_hdr[_i].err);
	ck_assert_ptr_null(r);
	poke32(seg, bad_hdr[_i].off, saved);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	shm_close(r);
	shm_close(w);
}
END_TEST

START_TEST(test_attach_truncated)
{
	struct shm_store *w, *r = (void *)1;
	struct stat sb;
	int fd;

	ck_assert_int_eq(shm_create(seg, 4, 4096, &w), 0);
	fd = shm_open(seg, O_RDWR, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(ftruncate(fd, sb.st_size - 1), 0);
	ck_assert_int_eq(shm_attach(seg, &r), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ftruncate(fd, sb.st_size), 0);
	close(fd);
	shm_close(w);
}
END_TEST

START_TEST(test_frame_too_large)
{
	struct shm_store *w;
	struct shm_frame_info fi = { .format = SHM_FMT_JPEG };
	static uint8_t big[4097];
	int slot;

	ck_assert_int_eq(shm_create(seg, 2, 4096, &w), 0);
	slot = shm_slot_acquire(w, 7);
	ck_assert_int_ge(slot, 0);
	fi.len = 4097;
	ck_assert_int_eq(shm_publish(w, slot, &fi, big), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	fi.len = 4096;
	ck_assert_int_eq(shm_publish(w, slot, &fi, big), 0);
	ck_assert_uint_eq(fi.seq, 1);
	fi.len = 1;
	ck_assert_int_eq(shm_publish(w, slot, &fi, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	fi.format = (enum shm_format)256;
	ck_assert_int_eq(shm_publish(w, slot, &fi, big), -1);
	ck_assert_int_eq(errno, EINVAL);
	fi.format = SHM_FMT_PNG;
	ck_assert_int_eq(shm_publish(w, 1, &fi, big), -1);	/* free slot */
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(shm_publish(w, 2, &fi, big), -1);
	ck_assert_int_eq(errno, EINVAL);
	shm_close(w);
}
END_TEST

/* One step of the slot table test: op 'a' acquire, 'r' release, 'f' find. */
static const struct {
	char op;
	uint64_t dev;
	int slot;	/* expected result (or slot to release) */
	int err;
	uint32_t used;	/* slots in use afterwards */
} slot_steps[] = {
	{ 'a', 10, 0, 0, 1 },
	{ 'a', 11, 1, 0, 2 },
	{ 'a', 10, 0, 0, 2 },		/* reuse */
	{ 'a', 12, 2, 0, 3 },
	{ 'f', 11, 1, 0, 3 },
	{ 'f', 99, -1, ENOENT, 3 },
	{ 'f', 0, -1, ENOENT, 3 },
	{ 'a', 0, -1, EINVAL, 3 },
	{ 'a', 13, -1, ENOSPC, 3 },	/* full */
	{ 'r', 0, 1, 0, 2 },
	{ 'r', 0, 1, 0, 2 },		/* already free: ignored */
	{ 'r', 0, 3, 0, 2 },		/* out of range: ignored */
	{ 'r', 0, -1, 0, 2 },
	{ 'f', 11, -1, ENOENT, 2 },
	{ 'a', 13, 1, 0, 3 },		/* the freed slot */
	{ 'f', 13, 1, 0, 3 },
	{ 'f', 12, 2, 0, 3 },
};

START_TEST(test_slots)
{
	struct shm_store *w, *r;
	struct shm_stats ss;

	ck_assert_int_eq(shm_create(seg, 3, 4096, &w), 0);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	for (size_t i = 0; i < ARRAY_LEN(slot_steps); i++) {
		int got = 0;

		errno = 0;
		switch (slot_steps[i].op) {
		case 'a':
			got = shm_slot_acquire(w, slot_steps[i].dev);
			break;
		case 'r':
			shm_slot_release(w, slot_steps[i].slot);
			got = slot_steps[i].slot;
			break;
		case 'f':
			got = shm_find(r, slot_steps[i].dev);
			ck_assert_int_eq(shm_find(w, slot_steps[i].dev), got);
			break;
		}
		ck_assert_msg(got == slot_steps[i].slot, "step %zu: got %d", i, got);
		if (slot_steps[i].err != 0)
			ck_assert_msg(errno == slot_steps[i].err, "step %zu: errno %d", i, errno);
		shm_stats(r, &ss);
		ck_assert_msg(ss.slots_used == slot_steps[i].used, "step %zu: used %u",
			i, ss.slots_used);
	}
	/* Readers cannot write. */
	ck_assert_int_eq(shm_slot_acquire(r, 50), -1);
	ck_assert_int_eq(errno, EPERM);
	shm_close(r);
	shm_close(w);
}
END_TEST

START_TEST(test_release_withdraws_frame)
{
	struct shm_store *w, *r;
	struct shm_frame_info fi, got;
	uint8_t in[256], out[256];
	int slot;

	ck_assert_int_eq(shm_create(seg, 1, 4096, &w), 0);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	slot = shm_slot_acquire(w, 5);
	frame_make(5, 1, sizeof in, &fi, in);
	ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);
	frame_make(5, 2, sizeof in, &fi, in);
	ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);
	shm_slot_release(w, slot);
	ck_assert_int_eq(shm_read(r, slot, &got, out, sizeof out), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* A new owner starts after the old sequence: it never goes back. */
	ck_assert_int_eq(shm_slot_acquire(w, 6), slot);
	frame_make(6, 3, sizeof in, &fi, in);
	ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);
	ck_assert_uint_eq(fi.seq, 3);
	ck_assert_int_eq(shm_read(r, slot, &got, out, sizeof out), 0);
	ck_assert_uint_eq(got.device_id, 6);
	ck_assert(frame_ok(&got, out, sizeof in));
	shm_close(r);
	shm_close(w);
}
END_TEST

START_TEST(test_second_writer_busy)
{
	struct shm_store *w, *w2 = (void *)1, *r;

	ck_assert_int_eq(shm_create(seg, 2, 4096, &w), 0);
	ck_assert_int_eq(shm_create(seg, 2, 4096, &w2), -1);
	ck_assert_int_eq(errno, EBUSY);
	ck_assert_ptr_null(w2);
	/* The live writer's segment was left alone. */
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	ck_assert(!shm_reader_stale(r));
	shm_close(r);
	shm_close(w);
}
END_TEST

START_TEST(test_stale_after_close)
{
	struct shm_store *w, *r;
	struct shm_stats ss;

	ck_assert_int_eq(shm_create(seg, 2, 4096, &w), 0);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	ck_assert(!shm_reader_stale(r));
	ck_assert(!shm_reader_stale(w));
	shm_close(w);
	ck_assert(shm_reader_stale(r));
	shm_stats(r, &ss);
	ck_assert(ss.closed);
	shm_close(r);
}
END_TEST

/* A writer that dies without shm_close, as a crashed capture process would. */
static void crashed_writer(const char *name, uint32_t slots, uint32_t frame_max)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shm_store *w;
		struct shm_frame_info fi;
		uint8_t in[64];
		int slot;

		if (shm_create(name, slots, frame_max, &w) < 0 ||
		    (slot = shm_slot_acquire(w, 77)) < 0)
			_exit(1);
		frame_make(77, 1, sizeof in, &fi, in);
		if (shm_publish(w, slot, &fi, in) < 0)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_stale_after_recreate)
{
	struct shm_store *w, *r, *r2;
	struct shm_stats s1, s2;
	struct shm_frame_info got;
	uint8_t out[64];

	crashed_writer(seg, 2, 4096);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	ck_assert(!shm_reader_stale(r));
	ck_assert_int_eq(shm_find(r, 77), 0);
	ck_assert_int_eq(shm_read(r, 0, &got, out, sizeof out), 0);
	shm_stats(r, &s1);

	/* Same geometry: taken over in place, generation bumped, slots emptied. */
	ck_assert_int_eq(shm_create(seg, 2, 4096, &w), 0);
	ck_assert(shm_reader_stale(r));
	ck_assert_int_eq(shm_read(r, 0, &got, out, sizeof out), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(shm_wait_newer(r, 0, 0, 1000), -1);
	ck_assert_int_eq(errno, ESTALE);
	shm_close(r);
	ck_assert_int_eq(shm_attach(seg, &r2), 0);
	ck_assert(!shm_reader_stale(r2));
	shm_stats(r2, &s2);
	ck_assert_uint_eq(s2.generation, s1.generation + 1);
	ck_assert_uint_eq(s2.slots_used, 0);
	ck_assert_int_eq(shm_find(r2, 77), -1);
	shm_close(r2);
	shm_close(w);
}
END_TEST

START_TEST(test_stale_after_regeometry)
{
	struct shm_store *w, *r, *r2;
	struct shm_stats s1, s2;

	crashed_writer(seg, 2, 4096);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	shm_stats(r, &s1);

	/* Other geometry: the old segment is retired and replaced. */
	ck_assert_int_eq(shm_create(seg, 3, 8192, &w), 0);
	ck_assert(shm_reader_stale(r));
	shm_stats(r, &s1);
	ck_assert(s1.closed);
	ck_assert_uint_eq(s1.slots_total, 2);
	ck_assert_int_eq(shm_find(r, 77), 0);	/* old mapping still readable */
	shm_close(r);
	ck_assert_int_eq(shm_attach(seg, &r2), 0);
	shm_stats(r2, &s2);
	ck_assert_uint_eq(s2.slots_total, 3);
	ck_assert_uint_eq(s2.frame_max, 8192);
	ck_assert_uint_eq(s2.generation, s1.generation + 1);
	ck_assert(!shm_reader_stale(r2));
	shm_close(r2);
	shm_close(w);
}
END_TEST

START_TEST(test_wait_timeout)
{
	struct shm_store *w, *r;
	struct shm_frame_info fi;
	uint8_t in[64];
	uint64_t t0, ms;
	int slot;

	ck_assert_int_eq(shm_create(seg, 1, 4096, &w), 0);
	ck_assert_int_eq(shm_attach(seg, &r), 0);
	slot = shm_slot_acquire(w, 1);

	t0 = now_mono_ns();
	ck_assert_int_eq(shm_wait_newer(r, slot, 0, 150), 0);
	ms = (now_mono_ns() - t0) / 1000000u;
	ck_assert_uint_ge(ms, 149);
	ck_assert_uint_lt(ms, 1000);
	ck_assert_int_eq(shm_wait_newer(r, slot, 0, 0), 0);

	frame_make(1, 1, sizeof in, &fi, in);
	ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);
	t0 = now_mono_ns();
	ck_assert_int_eq(shm_wait_newer(r, slot, 0, 5000), 1);
	ck_assert_int_eq(shm_wait_newer(r, slot, 0, 0), 1);
	ck_assert_uint_lt(now_mono_ns() - t0, 100000000u);
	ck_assert_int_eq(shm_wait_newer(r, slot, 1, 50), 0);
	ck_assert_int_eq(shm_wait_newer(r, 1, 0, 10), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(shm_wait_newer(r, slot, 0, -1), -1);
	ck_assert_int_eq(errno, EINVAL);
	shm_close(r);
	shm_close(w);
}
END_TEST

/*
 * A waiting reader in another process. It reports the wait's result, errno
 * and the monotonic time it returned (CLOCK_MONOTONIC is system-wide).
 */
struct wait_report {
	int rc;
	int err;
	uint64_t woke_ns;
};

static pid_t spawn_waiter(const char *name, int slot, int timeout_ms, int *rfd)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct wait_report rep = { -2, 0, 0 };
		struct shm_store *r;

		close(p[0]);
		if (shm_attach(name, &r) == 0) {
			rep.rc = shm_wait_newer(r, slot, shm_slot_seq(r, slot), timeout_ms);
			rep.err = errno;
			rep.woke_ns = now_mono_ns();
			shm_close(r);
		}
		_exit(write(p[1], &rep, sizeof rep) == sizeof rep ? 0 : 1);
	}
	close(p[1]);
	*rfd = p[0];
	return pid;
}

static void reap_waiter(pid_t pid, int rfd, struct wait_report *rep)
{
	int status;

	ck_assert_int_eq(read(rfd, rep, sizeof *rep), (ssize_t)sizeof *rep);
	close(rfd);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_wait_wakes_on_publish)
{
	struct shm_store *w;
	struct shm_frame_info fi;
	struct wait_report rep;
	uint8_t in[64];
	uint64_t pub_ns;
	int slot, rfd;
	pid_t pid;

	ck_assert_int_eq(shm_create(seg, 2, 4096, &w), 0);
	slot = shm_slot_acquire(w, 3);
	frame_make(3, 1, sizeof in, &fi, in);
	ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);

	pid = spawn_waiter(seg, slot, 5000, &rfd);
	sleep_ms(300);	/* the child is asleep in FUTEX_WAIT by now */
	frame_make(3, 2, sizeof in, &fi, in);
	pub_ns = now_mono_ns();
	ck_assert_int_eq(shm_publish(w, slot, &fi, in), 0);
	reap_waiter(pid, rfd, &rep);
	ck_assert_int_eq(rep.rc, 1);
	ck_assert_uint_ge(rep.woke_ns + 1000000u, pub_ns);
	ck_assert_msg(rep.woke_ns < pub_ns + 200000000u, "woke %.1f ms after publish",
		(double)(rep.woke_ns - pub_ns) / 1e6);
	shm_close(w);
}
END_TEST

START_TEST(test_wait_ends_on_close)
{
	struct shm_store *w;
	struct wait_report rep;
	uint64_t close_ns;
	int slot, rfd;
	pid_t pid;

	ck_assert_int_eq(shm_create(seg, 2, 4096, &w), 0);
	slot = shm_slot_acquire(w, 3);
	pid = spawn_waiter(seg, slot, 5000, &rfd);
	sleep_ms(300);
	close_ns = now_mono_ns();
	shm_close(w);
	reap_waiter(pid, rfd, &rep);
	ck_assert_int_eq(rep.rc, -1);
	ck_assert_int_eq(rep.err, ESTALE);
	ck_assert_uint_lt(rep.woke_ns, close_ns + 200000000u);
}
END_TEST

/*
 * The main test: one writer, several slots, frames of varying length; three
 * reader processes copy frames as fast as they can and check each one. On a
 * two-core machine the readers are preempted in the middle of copies while
 * the writer laps them, so without the seqlock they report torn frames.
 */
#define CONC_SLOTS	3
#define CONC_READERS	3
#define CONC_FRAME_MAX	(512u << 10)
#define CONC_WRITE_MS	2000
#define CONC_READER_MAX_MS 8000

struct reader_report {
	uint64_t frames;	/* successful reads */
	uint64_t fresh;		/* reads that returned a sequence not seen before */
	uint64_t torn;		/* frames that did not match their own seq */
	uint64_t backwards;	/* sequence moved backwards in a slot */
	uint64_t exhausted;	/* EAGAIN */
	uint64_t retries;
	uint64_t other_err;
	int last_errno;
};

static void reader_child(const char *name, int wfd)
{
	struct reader_report rep;
	struct shm_store *r;
	struct shm_stats ss;
	uint64_t last[CONC_SLOTS] = { 0 }, t0 = now_mono_ns();
	uint8_t *buf = malloc(CONC_FRAME_MAX);

	memset(&rep, 0, sizeof rep);
	if (buf == NULL || shm_attach(name, &r) < 0)
		_exit(2);
	while (!shm_reader_stale(r) &&
	       now_mono_ns() - t0 < CONC_READER_MAX_MS * 1000000ull) {
		for (int k = 0; k < CONC_SLOTS; k++) {
			struct shm_frame_info fi;

			if (shm_read(r, k, &fi, buf, CONC_FRAME_MAX) < 0) {
				if (errno == EAGAIN) {
					rep.exhausted++;
				} else if (errno != ENOENT) {
					rep.other_err++;
					rep.last_errno = errno;
				}
				continue;
			}
			rep.frames++;
			if (!frame_ok(&fi, buf, CONC_FRAME_MAX) || fi.device_id != 100u + (unsigned)k)
				rep.torn++;
			if (fi.seq < last[k])
				rep.backwards++;
			if (fi.seq > last[k])
				rep.fresh++;
			last[k] = fi.seq;
		}
	}
	shm_stats(r, &ss);
	rep.retries = ss.read_retries;
	shm_close(r);
	free(buf);
	_exit(write(wfd, &rep, sizeof rep) == sizeof rep ? 0 : 1);
}

START_TEST(test_concurrent_readers)
{
	struct shm_store *w;
	struct reader_report rep[CONC_READERS];
	uint64_t published = 0, t0;
	uint8_t *frame = malloc(CONC_FRAME_MAX);
	int slot[CONC_SLOTS], rfd[CONC_READERS];
	pid_t pid[CONC_READERS];

	ck_assert_ptr_nonnull(frame);
	ck_assert_int_eq(shm_create(seg, 8, CONC_FRAME_MAX, &w), 0);
	for (int k = 0; k < CONC_SLOTS; k++) {
		slot[k] = shm_slot_acquire(w, 100u + (unsigned)k);
		ck_assert_int_eq(slot[k], k);
	}
	for (int i = 0; i < CONC_READERS; i++) {
		int p[2];

		ck_assert_int_eq(pipe(p), 0);
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			close(p[0]);
			reader_child(seg, p[1]);
		}
		close(p[1]);
		rfd[i] = p[0];
	}

	t0 = now_mono_ns();
	while (now_mono_ns() - t0 < CONC_WRITE_MS * 1000000ull) {
		for (int k = 0; k < CONC_SLOTS; k++) {
			struct shm_frame_info fi;
			uint64_t seq = shm_slot_seq(w, slot[k]) + 1;

			frame_make(100u + (unsigned)k, seq, CONC_FRAME_MAX, &fi, frame);
			ck_assert_int_eq(shm_publish(w, slot[k], &fi, frame), 0);
			ck_assert_uint_eq(fi.seq, seq);
			published++;
		}
	}
	shm_close(w);	/* readers see the segment closed and report */

	for (int i = 0; i < CONC_READERS; i++) {
		int status;

		ck_assert_int_eq(read(rfd[i], &rep[i], sizeof rep[i]), (ssize_t)sizeof rep[i]);
		close(rfd[i]);
		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		fprintf(stderr, "reader %d: %llu frames (%llu new), %llu torn, "
			"%llu backwards, %llu retries, %llu exhausted, %llu errors\n", i,
			(unsigned long long)rep[i].frames, (unsigned long long)rep[i].fresh,
			(unsigned long long)rep[i].torn, (unsigned long long)rep[i].backwards,
			(unsigned long long)rep[i].retries, (unsigned long long)rep[i].exhausted,
			(unsigned long long)rep[i].other_err);
	}
	fprintf(stderr, "writer: %llu frames published\n", (unsigned long long)published);
	ck_assert_uint_gt(published, 2000);
	for (int i = 0; i < CONC_READERS; i++) {
		ck_assert_uint_eq(rep[i].torn, 0);
		ck_assert_uint_eq(rep[i].backwards, 0);
		ck_assert_msg(rep[i].other_err == 0, "reader %d: errno %d", i, rep[i].last_errno);
		ck_assert_uint_gt(rep[i].frames, 500);
		ck_assert_uint_gt(rep[i].fresh, 100);
		/* Bounded: giving up is rare and retries stay well under the cap. */
		ck_assert_uint_le(rep[i].exhausted * 100, rep[i].frames);
		ck_assert_uint_le(rep[i].retries, (rep[i].frames + rep[i].exhausted) *
			(SHM_READ_TRIES - 1));
	}
	free(frame);
}
END_TEST

static Suite *shm_suite(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("core");
	TCase *tcc = tcase_create("concurrent");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_name_for_dir);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_defaults);
	tcase_add_loop_test(tc, test_create_invalid, 0, (int)ARRAY_LEN(bad_create));
	tcase_add_test(tc, test_attach_missing);
	tcase_add_loop_test(tc, test_attach_too_small, 0, (int)ARRAY_LEN(small_sizes));
	tcase_add_loop_test(tc, test_attach_bad_header, 0, (int)ARRAY_LEN(bad_hdr));
	tcase_add_test(tc, test_attach_truncated);
	tcase_add_test(tc, test_frame_too_large);
	tcase_add_test(tc, test_slots);
	tcase_add_test(tc, test_release_withdraws_frame);
	tcase_add_test(tc, test_second_writer_busy);
	tcase_add_test(tc, test_stale_after_close);
	tcase_add_test(tc, test_stale_after_recreate);
	tcase_add_test(tc, test_stale_after_regeometry);
	tcase_add_test(tc, test_wait_timeout);
	tcase_add_test(tc, test_wait_wakes_on_publish);
	tcase_add_test(tc, test_wait_ends_on_close);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tcc, setup, teardown);
	tcase_set_timeout(tcc, 30);
	tcase_add_test(tcc, test_concurrent_readers);
	suite_add_tcase(s, tcc);
	return s;
}

/* A failed assertion ends a forked test before its teardown: sweep here. */
static void sweep_segments(void)
{
	char prefix[64];
	struct dirent *de;
	DIR *d = opendir("/dev/shm");

	if (d == NULL)
		return;
	snprintf(prefix, sizeof prefix, "kvmgate-check-%ld-", (long)main_pid);
	while ((de = readdir(d)) != NULL) {
		char name[NAME_MAX + 2];

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(name, sizeof name, "/%s", de->d_name);
		shm_unlink(name);
	}
	closedir(d);
}

int main(void)
{
	SRunner *sr = srunner_create(shm_suite());
	int failed;

	main_pid = getpid();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	sweep_segments();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
