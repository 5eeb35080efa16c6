/*
 * check_capture_mjpeg.c - the MJPEG parser and JPEG header reader
 * (capture/mjpeg.c): parts with and without Content-Length, every split of
 * the input, malformed streams, oversize parts, SOF dimensions.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "capture.h"
#include "check_run.h"

static uint8_t *jpeg[2];
static unsigned long jpeg_len[2];
static const int dims[2][2] = { { 64, 48 }, { 40, 24 } };

/* Two real JPEGs of different sizes, from libjpeg-turbo. */
static void setup(void)
{
	for (int k = 0; k < 2; k++) {
		int w = dims[k][0], h = dims[k][1];
		uint8_t *px = malloc((size_t)w * h * 3);
		tjhandle t = tjInitCompress();

		for (int i = 0; i < w * h * 3; i++)
			px[i] = (uint8_t)(i * 7 + k);
		jpeg[k] = NULL;
		ck_assert_int_eq(tjCompress2(t, px, w, 0, h, TJPF_RGB, &jpeg[k], &jpeg_len[k],
		                             TJSAMP_420, 80, 0), 0);
		tjDestroy(t);
		free(px);
	}
}

static void teardown(void)
{
	for (int k = 0; k < 2; k++)
		tjFree(jpeg[k]);
}

struct got {
	int n;
	size_t len[8];
	uint32_t w[8], h[8];
	bool same[8];
};

static int on_frame(void *arg, const uint8_t *p, size_t len)
{
	struct got *g = arg;
	int k = g->n % 2;

	if (g->n < 8) {
		g->len[g->n] = len;
		g->same[g->n] = len == jpeg_len[k] && memcmp(p, jpeg[k], len) == 0;
		if (jpeg_size(p, len, &g->w[g->n], &g->h[g->n]) < 0)
			g->w[g->n] = g->h[g->n] = 0;
	}
	g->n++;
	return 0;
}

/* A stream of n parts alternating the two JPEGs, as the device sends it. */
static void stream(struct buf *b, int n, bool with_length)
{
	for (int i = 0; i < n; i++) {
		int k = i % 2;
		buf_puts(b, "--frame\r\nContent-Type: image/jpeg\r\n");
		if (with_length)
			buf_printf(b, "Content-Length: %lu\r\n", jpeg_len[k]);
		buf_puts(b, "\r\n");
		buf_append(b, jpeg[k], jpeg_len[k]);
		buf_puts(b, "\r\n");
	}
}

static void expect_frames(const struct got *g, int n)
{
	ck_assert_int_eq(g->n, n);
	for (int i = 0; i < n && i < 8; i++) {
		ck_assert_msg(g->same[i], "frame %d differs (%zu bytes)", i, g->len[i]);
		ck_assert_uint_eq(g->w[i], (uint32_t)dims[i % 2][0]);
		ck_assert_uint_eq(g->h[i], (uint32_t)dims[i % 2][1]);
	}
}

/* _i = 0: with Content-Length (2.3.0+); 1: without (2.2.x). */
START_TEST(test_whole_stream)
{
	struct buf b = BUF_INIT;
	struct mjpeg m = { .acc = BUF_INIT };
	struct got g = { 0 };

	stream(&b, 3, _i == 0);
	mjpeg_init(&m, 1 << 20);
	ck_assert_int_eq(mjpeg_feed(&m, b.data, b.len, on_frame, &g), 0);
	expect_frames(&g, 3);
	mjpeg_cleanup(&m);
	buf_free(&b);
}
END_TEST

/* Every split point of a two-part stream, then byte by byte. */
START_TEST(test_every_split)
{
	struct buf b = BUF_INIT;
	struct mjpeg m = { .acc = BUF_INIT };

	stream(&b, 2, _i == 0);
	for (size_t cut = 0; cut <= b.len; cut += 7) {
		struct got g = { 0 };
		mjpeg_init(&m, 1 << 20);
		ck_assert_int_eq(mjpeg_feed(&m, b.data, cut, on_frame, &g), 0);
		ck_assert_int_eq(mjpeg_feed(&m, b.data + cut, b.len - cut, on_frame, &g), 0);
		expect_frames(&g, 2);
	}
	{
		struct got g = { 0 };
		mjpeg_init(&m, 1 << 20);
		for (size_t i = 0; i < b.len; i++)
			ck_assert_int_eq(mjpeg_feed(&m, b.data + i, 1, on_frame, &g), 0);
		expect_frames(&g, 2);
	}
	mjpeg_cleanup(&m);
	buf_free(&b);
}
END_TEST

static const struct {
	const char *what, *input;
	const char *why;
} bad_cases[] = {
	{ "no boundary", "HTTP garbage\r\n", "expected the boundary --frame" },
	{ "other boundary", "--other\r\n", "expected the boundary --frame" },
	{ "negative length", "--frame\r\nContent-Length: -5\r\n\r\n", "Content-Length out of bounds" },
	{ "zero length", "--frame\r\nContent-Length: 0\r\n\r\n", "Content-Length out of bounds" },
	{ "huge length", "--frame\r\nContent-Length: 99999999999\r\n\r\n", "Content-Length out of bounds" },
	{ "length with junk", "--frame\r\nContent-Length: 12ab\r\n\r\n", "Content-Length out of bounds" },
	{ "empty length", "--frame\r\nContent-Length:\r\n\r\n", "bad Content-Length" },
};

START_TEST(test_malformed)
{
	struct mjpeg m = { .acc = BUF_INIT };
	struct got g = { 0 };

	mjpeg_init(&m, 4096);
	ck_assert_int_eq(mjpeg_feed(&m, bad_cases[_i].input, strlen(bad_cases[_i].input),
	                            on_frame, &g), -1);
	ck_assert_str_eq(m.why, bad_cases[_i].why);
	ck_assert_int_eq(g.n, 0);
	mjpeg_cleanup(&m);
}
END_TEST

START_TEST(test_limits)
{
	struct mjpeg m = { .acc = BUF_INIT };
	struct got g = { 0 };
	char line[2048];

	/* A header line without end. */
	memset(line, 'a', sizeof line);
	mjpeg_init(&m, 4096);
	ck_assert_int_eq(mjpeg_feed(&m, line, sizeof line, on_frame, &g), -1);
	ck_assert_str_eq(m.why, "line too long");
	/* A part without length and without end marker outgrows the store. */
	mjpeg_init(&m, 1024);
	ck_assert_int_eq(mjpeg_feed(&m, "--frame\r\n\r\n\xff\xd8", 13, on_frame, &g), 0);
	memset(line, 0, sizeof line);
	ck_assert_int_eq(mjpeg_feed(&m, line, sizeof line, on_frame, &g), -1);
	ck_assert_str_eq(m.why, "frame larger than the frame store allows");
	ck_assert_int_eq(g.n, 0);
	mjpeg_cleanup(&m);
}
END_TEST

START_TEST(test_jpeg_size)
{
	uint32_t w = 0, h = 0;
	static const uint8_t no_sof[] = { 0xff, 0xd8, 0xff, 0xda, 0, 2, 0xff, 0xd9 };
	static const uint8_t cut_sof[] = { 0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0 };
	static const uint8_t zero_len[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0 };
	static const uint8_t sof2[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2,
	                                0xff, 0xc2, 0, 11, 8, 0x04, 0x38, 0x07, 0x80, 3 };

	ck_assert_int_eq(jpeg_size(jpeg[0], jpeg_len[0], &w, &h), 0);
	ck_assert_uint_eq(w, 64);
	ck_assert_uint_eq(h, 48);
	ck_assert_int_eq(jpeg_size(sof2, sizeof sof2, &w, &h), 0);
	ck_assert_uint_eq(w, 1920);
	ck_assert_uint_eq(h, 1080);
	ck_assert_int_eq(jpeg_size(no_sof, sizeof no_sof, &w, &h), -1);
	ck_assert_int_eq(jpeg_size(cut_sof, sizeof cut_sof, &w, &h), -1);
	ck_assert_int_eq(jpeg_size(zero_len, sizeof zero_len, &w, &h), -1);
	ck_assert_int_eq(jpeg_size((const uint8_t *)"GIF89a", 6, &w, &h), -1);
	for (size_t n = 0; n < 40; n++)	/* every truncation of a real header */
		(void)!jpeg_size(jpeg[0], n, &w, &h);
}
END_TEST

static Suite *mjpeg_suite(void)
{
	Suite *s = suite_create("capture_mjpeg");
	TCase *tc = tcase_create("mjpeg");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_whole_stream, 0, 2);
	tcase_add_loop_test(tc, test_every_split, 0, 2);
	tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_jpeg_size);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(mjpeg_suite());
}
