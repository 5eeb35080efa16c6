/*
 * check_fcgi_image.c - screenshot pixels (fcgi/image.c) on synthetic
 * pictures: crops land where asked, shrinking averages areas and keeps the
 * mean, mcp.md section 7's factor, PNGs that a decoder written here (zlib
 * inflate, CRCs, the Sub filter undone) reads back exactly, JPEG round
 * trips, raw frames, and enhance=llm keeping the order of values and grey
 * below white.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fcgi.h"
#include "check_run.h"

/* A w x h picture whose pixel (x, y) is f(x, y) in all three channels... or per channel. */
static void make(struct img *im, int w, int h, unsigned char (*f)(int x, int y, int ch))
{
	im->w = w;
	im->h = h;
	im->px = xmalloc((size_t)w * h * 3);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int ch = 0; ch < 3; ch++)
				im->px[((size_t)y * w + x) * 3 + ch] = f(x, y, ch);
}

static unsigned char at(const struct img *im, int x, int y, int ch)
{
	return im->px[((size_t)y * im->w + x) * 3 + ch];
}

static unsigned char coords(int x, int y, int ch)
{
	return (unsigned char)(ch == 0 ? x : ch == 1 ? y : (x + y) & 0xff);
}

static unsigned char checker(int x, int y, int ch)
{
	return (x + y) % 2 ? 255 : 0;
}

static unsigned char ramp(int x, int y, int ch)
{
	return (unsigned char)x;
}

static unsigned char flat(int x, int y, int ch)
{
	return (unsigned char)(40 + ch * 50);
}

START_TEST(test_crop)
{
	struct img im;

	make(&im, 200, 100, coords);
	ck_assert_int_eq(img_crop(&im, 10, 20, 30, 40), 0);
	ck_assert_int_eq(im.w, 30);
	ck_assert_int_eq(im.h, 40);
	ck_assert_int_eq(at(&im, 0, 0, 0), 10);
	ck_assert_int_eq(at(&im, 0, 0, 1), 20);
	ck_assert_int_eq(at(&im, 29, 39, 0), 39);
	ck_assert_int_eq(at(&im, 29, 39, 1), 59);
	/* Outside, or empty: refused, the picture unchanged. */
	ck_assert_int_eq(img_crop(&im, 1, 0, 30, 1), -1);
	ck_assert_int_eq(img_crop(&im, 0, 0, 0, 1), -1);
	ck_assert_int_eq(img_crop(&im, -1, 0, 2, 2), -1);
	ck_assert_int_eq(img_crop(&im, 0, 39, 1, 2), -1);
	ck_assert_int_eq(im.w, 30);
	ck_assert_int_eq(img_crop(&im, 0, 0, 30, 40), 0);	/* the whole: fine */
	img_free(&im);
}
END_TEST

START_TEST(test_scale_area_average)
{
	struct img im;
	double mean0 = 0, mean1 = 0;

	/* A 1-pixel checkerboard halves to even grey: nothing is dropped. */
	make(&im, 64, 32, checker);
	img_scale(&im, 32, 16);
	ck_assert_int_eq(im.w, 32);
	ck_assert_int_eq(im.h, 16);
	for (size_t i = 0; i < (size_t)32 * 16 * 3; i++)
		ck_assert_msg(abs(im.px[i] - 128) <= 1, "pixel %zu is %d", i, im.px[i]);
	img_free(&im);

	/* A flat colour stays that colour at any factor. */
	make(&im, 1920, 1080, flat);
	img_scale(&im, 1464, 823);
	ck_assert_int_eq(im.w, 1464);
	ck_assert_int_eq(im.h, 823);
	for (int ch = 0; ch < 3; ch++)
		ck_assert_int_eq(at(&im, 700, 400, ch), 40 + ch * 50);
	img_free(&im);

	/* A ramp at an odd factor: still increasing, the mean kept. */
	make(&im, 256, 10, ramp);
	for (int x = 0; x < 256; x++)
		mean0 += x / 256.0;
	img_scale(&im, 99, 7);
	for (int x = 0; x < 99; x++) {
		mean1 += at(&im, x, 3, 0) / 99.0;
		if (x > 0)
			ck_assert_int_ge(at(&im, x, 3, 0), at(&im, x - 1, 3, 0));
	}
	ck_assert_msg(fabs(mean0 - mean1) < 1.0, "mean %f became %f", mean0, mean1);

	/* Never enlarges. */
	img_scale(&im, 200, 7);
	ck_assert_int_eq(im.w, 99);
	img_free(&im);
}
END_TEST

/* A rectangle shrunk in one pass equals the rectangle cut, then shrunk. */
START_TEST(test_scale_rect)
{
	struct img a, b;

	make(&a, 300, 200, coords);
	make(&b, 300, 200, coords);
	ck_assert_int_eq(img_scale_rect(&a, 40, 30, 200, 150, 120, 90), 0);
	ck_assert_int_eq(img_crop(&b, 40, 30, 200, 150), 0);
	img_scale(&b, 120, 90);
	ck_assert(a.w == 120 && a.h == 90);
	ck_assert(memcmp(a.px, b.px, (size_t)120 * 90 * 3) == 0);
	/* The same size: a plain cut. */
	ck_assert_int_eq(img_scale_rect(&a, 10, 10, 20, 20, 20, 20), 0);
	ck_assert(a.w == 20 && at(&a, 0, 0, 0) == at(&b, 10, 10, 0));
	/* Outside, or enlarging: refused, unchanged. */
	ck_assert_int_eq(img_scale_rect(&a, 10, 10, 20, 20, 5, 5), -1);
	ck_assert_int_eq(img_scale_rect(&a, 0, 0, 10, 10, 11, 5), -1);
	ck_assert(a.w == 20);
	img_free(&a);
	img_free(&b);
}
END_TEST

START_TEST(test_llm_scale)
{
	double s = img_llm_scale(1920, 1080);

	/* sqrt(1.15 * 1024 * 1024 / (1920 * 1080)) = 0.7626 */
	ck_assert_msg(fabs(s - sqrt(1.15 * 1048576 / (1920.0 * 1080))) < 1e-9, "%f", s);
	ck_assert_int_eq((int)lround(1920 * s), 1464);
	ck_assert_int_eq((int)lround(1080 * s), 824);
	ck_assert(img_llm_scale(800, 600) == 1);		/* small: untouched */
	ck_assert(img_llm_scale(1024, 768) == 1);
	ck_assert(fabs(img_llm_scale(4000, 100) - 1568 / 4000.0) < 1e-9);	/* the edge decides */
	ck_assert(fabs(img_llm_scale(100, 3000) - 1568 / 3000.0) < 1e-9);
	ck_assert(img_llm_scale(0, 10) == 1);
}
END_TEST

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Decodes a PNG as img_to_png writes it (8-bit RGB, one or more IDAT),
 * checking the signature, every chunk's CRC and IHDR; any filter type.
 * Returns 0 with *out, or -1.
 */
static int png_decode(const unsigned char *p, size_t n, struct img *out)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	unsigned char *z = NULL, *raw;
	size_t zlen = 0, off = 8, row;
	uLongf rawlen;
	bool ended = false;
	int w = 0, h = 0;

	if (n < 8 || memcmp(p, sig, 8) != 0)
		return -1;
	while (off + 12 <= n && !ended) {
		uint32_t len = be32(p + off);
		const unsigned char *type = p + off + 4, *data = p + off + 8;
		if (off + 12 + len > n || crc32(crc32(0, type, 4), data, len) != be32(data + len))
			return -1;
		if (memcmp(type, "IHDR", 4) == 0) {
			if (len != 13 || data[8] != 8 || data[9] != 2 || data[10] || data[11] || data[12])
				return -1;
			w = (int)be32(data);
			h = (int)be32(data + 4);
		} else if (memcmp(type, "IDAT", 4) == 0) {
			z = realloc(z, zlen + len);
			memcpy(z + zlen, data, len);
			zlen += len;
		} else if (memcmp(type, "IEND", 4) == 0) {
			ended = true;
		}
		off += 12 + len;
	}
	if (!ended || off != n || w <= 0 || h <= 0) {
		free(z);
		return -1;
	}
	row = (size_t)w * 3;
	rawlen = (uLongf)((row + 1) * h);
	raw = xmalloc(rawlen + 1);
	if (uncompress(raw, &rawlen, z, (uLong)zlen) != Z_OK || rawlen != (row + 1) * h) {
		free(z);
		free(raw);
		return -1;
	}
	free(z);
	out->w = w;
	out->h = h;
	out->px = xmalloc(row * h);
	for (int y = 0; y < h; y++) {
		const unsigned char *f = raw + (size_t)y * (row + 1);
		unsigned char *d = out->px + (size_t)y * row, *up = y ? d - row : NULL;
		for (size_t x = 0; x < row; x++) {
			int a = x >= 3 ? d[x - 3] : 0, b = up ? up[x] : 0, c = up && x >= 3 ? up[x - 3] : 0;
			int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
			int pred[5] = { 0, a, b, (a + b) / 2,
			                pa <= pb && pa <= pc ? a : pb <= pc ? b : c };
			if (f[0] > 4) {
				free(raw);
				img_free(out);
				return -1;
			}
			d[x] = (unsigned char)(f[1 + x] + pred[f[0]]);
		}
	}
	free(raw);
	return 0;
}

START_TEST(test_png_valid)
{
	struct img im, back;
	struct buf png = BUF_INIT;

	make(&im, 301, 77, coords);
	ck_assert_int_eq(img_to_png(&im, &png), 0);
	ck_assert_int_eq(png_decode((const unsigned char *)png.data, png.len, &back), 0);
	ck_assert_int_eq(back.w, 301);
	ck_assert_int_eq(back.h, 77);
	ck_assert(memcmp(back.px, im.px, (size_t)301 * 77 * 3) == 0);	/* lossless */
	img_free(&back);
	/* One byte changed: the CRC catches it. */
	png.data[40] ^= 1;
	ck_assert_int_eq(png_decode((const unsigned char *)png.data, png.len, &back), -1);
	buf_free(&png);
	img_free(&im);

	/* A 1x1 picture too. */
	make(&im, 1, 1, flat);
	ck_assert_int_eq(img_to_png(&im, &png), 0);
	ck_assert_int_eq(png_decode((const unsigned char *)png.data, png.len, &back), 0);
	ck_assert(memcmp(back.px, im.px, 3) == 0);
	img_free(&back);
	img_free(&im);
	buf_free(&png);
}
END_TEST

START_TEST(test_jpeg_round_trip)
{
	struct img im, back;
	struct buf jpeg = BUF_INIT;
	char why[200];
	int w, h;

	make(&im, 320, 200, flat);
	ck_assert_int_eq(img_to_jpeg(&im, 80, &jpeg), 0);
	ck_assert((unsigned char)jpeg.data[0] == 0xff && (unsigned char)jpeg.data[1] == 0xd8);
	ck_assert_int_eq(img_jpeg_size(jpeg.data, jpeg.len, &w, &h), 0);
	ck_assert(w == 320 && h == 200);
	ck_assert_int_eq(img_from_jpeg(jpeg.data, jpeg.len, 1, &back, why, sizeof why), 0);
	ck_assert_int_eq(back.w, 320);
	ck_assert_int_eq(back.h, 200);
	for (int ch = 0; ch < 3; ch++)
		ck_assert_int_le(abs(at(&back, 100, 100, ch) - (40 + ch * 50)), 3);
	img_free(&back);
	/* Decoded smaller in the DCT: never below the scale asked for. */
	ck_assert_int_eq(img_from_jpeg(jpeg.data, jpeg.len, 0.5, &back, why, sizeof why), 0);
	ck_assert(back.w == 160 && back.h == 100);
	img_free(&back);
	ck_assert_int_eq(img_from_jpeg(jpeg.data, jpeg.len, 0.7, &back, why, sizeof why), 0);
	ck_assert(back.w == 320 && back.h == 200);	/* above 1/2: full size */
	img_free(&back);
	ck_assert_int_eq(img_from_jpeg(jpeg.data, jpeg.len, 0.2, &back, why, sizeof why), 0);
	ck_assert(back.w == 80 && back.h == 50);	/* 1/4 */
	ck_assert_int_eq(at(&back, 10, 10, 1), at(&back, 60, 40, 1));
	img_free(&back);
	/* Not a JPEG: refused with a reason. */
	ck_assert_int_eq(img_jpeg_size("hello", 5, &w, &h), -1);
	ck_assert_int_eq(img_from_jpeg("hello", 5, 1, &back, why, sizeof why), -1);
	ck_assert(why[0] != '\0');
	ck_assert_ptr_null(back.px);
	buf_free(&jpeg);
	img_free(&im);
}
END_TEST

START_TEST(test_raw)
{
	const unsigned char rgbx[8] = { 1, 2, 3, 0, 4, 5, 6, 0 };
	struct img im;
	char why[200];

	ck_assert_int_eq(img_from_raw(rgbx, 8, 2, 1, false, &im, why, sizeof why), 0);
	ck_assert(memcmp(im.px, "\1\2\3\4\5\6", 6) == 0);
	img_free(&im);
	ck_assert_int_eq(img_from_raw(rgbx, 8, 2, 1, true, &im, why, sizeof why), 0);
	ck_assert(memcmp(im.px, "\3\2\1\6\5\4", 6) == 0);
	img_free(&im);
	ck_assert_int_eq(img_from_raw(rgbx, 7, 2, 1, false, &im, why, sizeof why), -1);
}
END_TEST

/* Dark grey text (170) and white text (255) on near-black (10), in blocks. */
static unsigned char console(int x, int y, int ch)
{
	if (x >= 20 && x < 40 && y >= 20 && y < 40)
		return 170;
	if (x >= 60 && x < 80 && y >= 20 && y < 40)
		return 255;
	return 10;
}

static unsigned char dim(int x, int y, int ch)
{
	return (unsigned char)(30 + x / 4);	/* 30..93: a dull, low-contrast picture */
}

START_TEST(test_enhance)
{
	struct img im;

	/* A ramp: the map is increasing, so the ramp stays ordered (and sharpening
	 * leaves a straight ramp alone). */
	make(&im, 256, 8, ramp);
	img_enhance(&im);
	for (int x = 1; x < 256; x++)
		ck_assert_msg(at(&im, x, 4, 0) >= at(&im, x - 1, 4, 0), "x %d: %d < %d", x,
		              at(&im, x, 4, 0), at(&im, x - 1, 4, 0));
	img_free(&im);

	/* Grey stays below white, both stay apart from the background. */
	make(&im, 100, 60, console);
	img_enhance(&im);
	ck_assert_int_eq(at(&im, 70, 30, 0), 255);
	ck_assert_int_lt(at(&im, 30, 30, 0), 235);
	ck_assert_int_ge(at(&im, 30, 30, 0), 150);
	ck_assert_int_le(at(&im, 5, 5, 0), 10);
	img_free(&im);

	/* A dull picture gets more contrast, still ordered, within the gain bound. */
	make(&im, 256, 8, dim);
	img_enhance(&im);
	ck_assert_int_lt(at(&im, 2, 4, 0), 30);
	ck_assert_int_gt(at(&im, 250, 4, 0) - at(&im, 2, 4, 0), 63);
	ck_assert_int_le(at(&im, 250, 4, 0) - at(&im, 2, 4, 0), (int)ceil(63 * IMG_ENHANCE_GAIN_MAX) + 1);
	for (int x = 1; x < 256; x++)
		ck_assert_int_ge(at(&im, x, 4, 1), at(&im, x - 1, 4, 1));
	img_free(&im);

	/* Flat: unchanged. */
	make(&im, 50, 50, flat);
	img_enhance(&im);
	for (int ch = 0; ch < 3; ch++)
		ck_assert_int_eq(at(&im, 25, 25, ch), 40 + ch * 50);
	img_free(&im);
}
END_TEST

static Suite *image_suite(void)
{
	Suite *s = suite_create("fcgi_image");
	TCase *tc = tcase_create("image");

	tcase_add_test(tc, test_crop);
	tcase_add_test(tc, test_scale_area_average);
	tcase_add_test(tc, test_scale_rect);
	tcase_add_test(tc, test_llm_scale);
	tcase_add_test(tc, test_png_valid);
	tcase_add_test(tc, test_jpeg_round_trip);
	tcase_add_test(tc, test_raw);
	tcase_add_test(tc, test_enhance);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(image_suite());
}
