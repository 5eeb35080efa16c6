/*
 * image.c - the pixels of a screenshot: decode (JPEG with libjpeg-turbo, or
 * the raw frames RFB drivers publish), crop, scale, make console text
 * easier for a model to read, and encode as JPEG or PNG.
 *
 * An image here is 8-bit RGB, rows packed. Shrinking averages the source
 * area each output pixel covers (a box filter with fractional edges), so
 * thin console glyphs fade instead of vanishing the way nearest-neighbour
 * sampling drops them. Nothing here enlarges an image.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "fcgi.h"

void img_free(struct img *im)
{
	free(im->px);
	im->px = NULL;
	im->w = im->h = 0;
}

/* A w x h image with uninitialised pixels; the caller frees it. */
static void img_alloc(struct img *im, int w, int h)
{
	im->w = w;
	im->h = h;
	im->px = xmalloc((size_t)w * (size_t)h * 3);
}

int img_jpeg_size(const void *data, size_t len, int *w, int *h)
{
	tjhandle tj = tjInitDecompress();
	int sub, cs, rc;

	if (tj == NULL)
		abort();
	rc = tjDecompressHeader3(tj, data, (unsigned long)len, w, h, &sub, &cs);
	tjDestroy(tj);
	return rc < 0 || *w <= 0 || *h <= 0 || *w > IMG_SIDE_MAX || *h > IMG_SIDE_MAX ? -1 : 0;
}

/*
 * The smallest of 1/8, 1/4, 1/2 and 1 that is at least min. libjpeg-turbo
 * has SIMD code for these; its other n/8 factors decode slower than full size.
 */
static tjscalingfactor jpeg_factor(double min)
{
	tjscalingfactor f = { 1, 1 };

	while (f.denom < 8 && 1.0 / (f.denom * 2) >= min)
		f.denom *= 2;
	return f;
}

int img_from_jpeg(const void *data, size_t len, double min_scale, struct img *out, char *why,
                  size_t wlen)
{
	tjhandle tj = tjInitDecompress();
	tjscalingfactor f = jpeg_factor(min_scale);
	int w, h, sub, cs;

	memset(out, 0, sizeof *out);
	if (tj == NULL)
		abort();
	if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &sub, &cs) < 0 ||
	    w <= 0 || h <= 0 || w > IMG_SIDE_MAX || h > IMG_SIDE_MAX) {
		snprintf(why, wlen, "the frame is not a JPEG this gateway can read (%s)",
		         tjGetErrorStr2(tj));
		tjDestroy(tj);
		return -1;
	}
	/* Scaled in the DCT: fewer pixels to decode when the picture shrinks anyway. */
	w = TJSCALED(w, f);
	h = TJSCALED(h, f);
	img_alloc(out, w, h);
	/* A warning (a truncated scan) still gives a picture; only errors fail. */
	if (tjDecompress2(tj, data, (unsigned long)len, out->px, w, 0, h, TJPF_RGB, 0) < 0 &&
	    tjGetErrorCode(tj) == TJERR_FATAL) {
		snprintf(why, wlen, "the frame's JPEG data is damaged (%s)", tjGetErrorStr2(tj));
		tjDestroy(tj);
		img_free(out);
		return -1;
	}
	tjDestroy(tj);
	return 0;
}

int img_from_raw(const void *data, size_t len, int w, int h, bool bgr, struct img *out,
                 char *why, size_t wlen)
{
	const unsigned char *p = data;
	size_t n;

	memset(out, 0, sizeof *out);
	if (w <= 0 || h <= 0 || w > IMG_SIDE_MAX || h > IMG_SIDE_MAX ||
	    len < (size_t)w * (size_t)h * 4) {
		snprintf(why, wlen, "the raw frame is %zu bytes, too short for %dx%d", len, w, h);
		return -1;
	}
	img_alloc(out, w, h);
	n = (size_t)w * (size_t)h;
	for (size_t i = 0; i < n; i++, p += 4) {
		out->px[i * 3] = bgr ? p[2] : p[0];
		out->px[i * 3 + 1] = p[1];
		out->px[i * 3 + 2] = bgr ? p[0] : p[2];
	}
	return 0;
}

int img_crop(struct img *im, int x, int y, int w, int h)
{
	struct img out;

	if (x < 0 || y < 0 || w <= 0 || h <= 0 || x > im->w - w || y > im->h - h)
		return -1;
	img_alloc(&out, w, h);
	for (int r = 0; r < h; r++)
		memcpy(out.px + (size_t)r * w * 3, im->px + ((size_t)(y + r) * im->w + x) * 3,
		       (size_t)w * 3);
	img_free(im);
	*im = out;
	return 0;
}

/*
 * Weights of a box filter from n source samples to m <= n: output i covers
 * source [i*n/m, (i+1)*n/m). first[i] is its first source index, count[i]
 * how many it touches, and w[i*span + k] the share of source first[i]+k,
 * in units of 1/one, summing to one. span is the most any output touches.
 */
struct box {
	int m, span;
	int *first, *count;
	uint32_t *w;
};

static void box_init(struct box *b, int n, int m, uint32_t one)
{
	double step = (double)n / m;

	b->m = m;
	b->span = (int)ceil(step) + 1;
	b->first = xcalloc((size_t)m, sizeof *b->first);
	b->count = xcalloc((size_t)m, sizeof *b->count);
	b->w = xcalloc((size_t)m * (size_t)b->span, sizeof *b->w);
	for (int i = 0; i < m; i++) {
		double lo = i * step, hi = (i + 1) * step;
		int s = (int)floor(lo), e = (int)ceil(hi), k;
		uint32_t sum = 0, *w = b->w + (size_t)i * b->span;

		if (e > n)
			e = n;
		if (e - s > b->span)
			e = s + b->span;
		b->first[i] = s;
		b->count[i] = e - s;
		for (k = 0; k < e - s; k++) {
			double a = fmax(lo, s + k), z = fmin(hi, s + k + 1);
			w[k] = (uint32_t)lround((z - a) / step * one);
			sum += w[k];
		}
		/* Rounding left or took a little: the largest share absorbs it. */
		if (sum != one) {
			int big = 0;
			for (k = 1; k < e - s; k++)
				if (w[k] > w[big])
					big = k;
			w[big] = w[big] + one - sum;
		}
		/* Every output reads span samples (the extra ones weigh 0), so the
		 * inner loops have one length; near the end they start earlier. */
		if (s + b->span > n) {
			int shift = s + b->span - n;
			memmove(w + shift, w, (size_t)(b->span - shift) * sizeof *w);
			memset(w, 0, (size_t)shift * sizeof *w);
			b->first[i] = n - b->span;
		}
		b->count[i] = b->span;
	}
}

static void box_free(struct box *b)
{
	free(b->first);
	free(b->count);
	free(b->w);
}

/* The first pass (columns) weighs in 1/256, giving 8.8 fixed point; the second (rows) in
 * 1/4096, which keeps its sums within 32 bits. */
#define FIRST_ONE 256u
#define SECOND_ONE 4096u

int img_scale_rect(struct img *im, int sx, int sy, int sw, int sh, int w, int h)
{
	struct box bx, by;
	struct img out;
	uint16_t *tmp;
	size_t srow = (size_t)sw * 3;

	if (sx < 0 || sy < 0 || sw <= 0 || sh <= 0 || sx > im->w - sw || sy > im->h - sh)
		return -1;
	if (w <= 0 || h <= 0 || w > sw || h > sh)
		return -1;
	if (w == sw && h == sh)
		return sw == im->w && sh == im->h ? 0 : img_crop(im, sx, sy, sw, sh);
	box_init(&bx, sw, w, SECOND_ONE);
	box_init(&by, sh, h, FIRST_ONE);
	/*
	 * Columns first: each output row sums whole source rows, which the
	 * compiler vectorises; then the rows, which cannot be, have only the
	 * output's height to go through.
	 */
	tmp = xmalloc(srow * (size_t)h * sizeof *tmp);
	for (int y = 0; y < h; y++) {
		const uint32_t *wt = by.w + (size_t)y * by.span;
		uint16_t *dst = tmp + (size_t)y * srow;

		memset(dst, 0, srow * sizeof *dst);
		for (int k = 0; k < by.span; k++) {
			const unsigned char *src = im->px + ((size_t)(sy + by.first[y] + k) * im->w + sx) * 3;
			uint16_t wk = (uint16_t)wt[k];
			for (size_t x = 0; x < srow; x++)
				dst[x] = (uint16_t)(dst[x] + src[x] * wk);
		}
	}
	img_alloc(&out, w, h);
	for (int y = 0; y < h; y++) {
		const uint16_t *src = tmp + (size_t)y * srow;
		unsigned char *dst = out.px + (size_t)y * w * 3;
		for (int x = 0; x < w; x++) {
			const uint32_t *wt = bx.w + (size_t)x * bx.span;
			const uint16_t *sp = src + (size_t)bx.first[x] * 3;
			uint32_t r = 0, g = 0, b = 0;
			if (bx.span == 3) {
				/* Shrinking by 1 to 2 times, the common case: three taps, unrolled. */
				r = sp[0] * wt[0] + sp[3] * wt[1] + sp[6] * wt[2];
				g = sp[1] * wt[0] + sp[4] * wt[1] + sp[7] * wt[2];
				b = sp[2] * wt[0] + sp[5] * wt[1] + sp[8] * wt[2];
			} else {
				for (int k = 0; k < bx.span; k++, sp += 3) {
					r += sp[0] * wt[k];
					g += sp[1] * wt[k];
					b += sp[2] * wt[k];
				}
			}
			r = (r + (1u << 19)) >> 20;
			g = (g + (1u << 19)) >> 20;
			b = (b + (1u << 19)) >> 20;
			dst[x * 3] = (unsigned char)(r > 255 ? 255 : r);
			dst[x * 3 + 1] = (unsigned char)(g > 255 ? 255 : g);
			dst[x * 3 + 2] = (unsigned char)(b > 255 ? 255 : b);
		}
	}
	free(tmp);
	box_free(&bx);
	box_free(&by);
	img_free(im);
	*im = out;
	return 0;
}

void img_scale(struct img *im, int w, int h)
{
	/* Within the picture and not enlarging, it cannot fail; otherwise nothing to do. */
	if (w > 0 && h > 0 && w <= im->w && h <= im->h && img_scale_rect(im, 0, 0, im->w, im->h,
	                                                                 w, h) < 0)
		abort();
}

double img_llm_scale(int w, int h)
{
	double s;

	if (w <= 0 || h <= 0)
		return 1;
	s = fmin(IMG_LLM_EDGE / (double)w, IMG_LLM_EDGE / (double)h);
	s = fmin(s, sqrt(IMG_LLM_PIXELS / ((double)w * h)));
	return s < 1 ? s : 1;
}

/* Applies map to row src into dst (row bytes). */
static void map_row(const unsigned char *src, unsigned char *dst, size_t row,
                    const unsigned char map[256])
{
	for (size_t x = 0; x < row; x++)
		dst[x] = map[src[x]];
}

/*
 * The levels map and the unsharp mask in one pass over the picture: each
 * row is mapped once into a ring of three (above, this, below), and the 3x3
 * box of the mask is three neighbouring column sums of those.
 */
static void sharpen(struct img *im, const unsigned char map[256])
{
	size_t row = (size_t)im->w * 3;
	unsigned char *ring = xmalloc(row * 3), *up = ring, *mid = ring + row, *down = ring + 2 * row;
	uint16_t *col = xmalloc(row * sizeof *col);

	if (im->w < 3 || im->h < 3) {
		for (int y = 0; y < im->h; y++)
			map_row(im->px + (size_t)y * row, im->px + (size_t)y * row, row, map);
		goto out;
	}
	map_row(im->px, up, row, map);
	map_row(im->px + row, mid, row, map);
	memcpy(im->px, up, row);
	for (int y = 1; y < im->h - 1; y++) {
		unsigned char *p = im->px + (size_t)y * row, *t;

		map_row(p + row, down, row, map);
		for (size_t x = 0; x < row; x++)
			col[x] = (uint16_t)(up[x] + mid[x] + down[x]);
		memcpy(p, mid, 3);
		for (size_t x = 3; x < row - 3; x++) {
			/* c + (c - blur) / 2 with blur = sum / 9: c + (9c - sum) / 18,
			 * rounded; 3641 / 65536 is 1/18 within 0.01 %. No branch, so
			 * the compiler vectorises it. */
			int c = mid[x], d = 9 * c - (col[x - 3] + col[x] + col[x + 3]);
			int e = c + ((d * 3641 + 32768) >> 16);
			p[x] = (unsigned char)(e < 0 ? 0 : e > 255 ? 255 : e);
		}
		memcpy(p + row - 3, mid + row - 3, 3);
		t = up, up = mid, mid = down, down = t;
	}
	memcpy(im->px + (size_t)(im->h - 1) * row, mid, row);
out:
	free(ring);
	free(col);
}

/*
 * What enhance=llm does, in two steps:
 *
 * 1. A levels stretch shared by all three channels: the black point is the
 *    1st percentile of the pixels' darkest channel, and the gain brings the
 *    99.9th percentile of their brightest channel towards 255, but never by
 *    more than IMG_ENHANCE_GAIN_MAX (1.3). A picture of nearly one
 *    brightness (luma within 32 levels) is not stretched.
 *    One increasing map for every channel keeps the order of any two values
 *    and the hue roughly; the bounded gain keeps a grey (BIOS's 170) below
 *    white (255), so "highlighted" and "normal" text stay apart.
 * 2. A mild unsharp mask on each channel (amount 1/2 of the difference to a
 *    3x3 box blur), which makes glyph edges crisper after downscaling. On
 *    flat areas and straight ramps it changes nothing.
 */
void img_enhance(struct img *im)
{
	size_t n = (size_t)im->w * (size_t)im->h, acc, m = 0;
	size_t luma[256] = { 0 }, low[256] = { 0 }, top[256] = { 0 };
	int lo, hi, llo, lhi, v;
	unsigned char map[256];
	double gain;

	if (n == 0)
		return;
	/* Every other pixel of every other row tells the levels well enough. */
	for (int y = 0; y < im->h; y += 2) {
		const unsigned char *p = im->px + (size_t)y * im->w * 3;
		for (int x = 0; x < im->w; x += 2, p += 6, m++) {
			unsigned char mx = p[0] > p[1] ? p[0] : p[1], mn = p[0] < p[1] ? p[0] : p[1];
			mx = mx > p[2] ? mx : p[2];
			mn = mn < p[2] ? mn : p[2];
			luma[(p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8]++;
			low[mn]++;
			top[mx]++;
		}
	}
	/* Black point: the 1st percentile of each pixel's darkest channel; white
	 * point: the 99.9th of its brightest, so no channel is pushed out of range
	 * but a few outliers. */
	for (acc = 0, lo = 0; lo < 255 && (acc += low[lo]) <= m / 100; lo++)
		;
	for (acc = 0, hi = 255; hi > 0 && (acc += top[hi]) <= m / 1000; hi--)
		;
	for (acc = 0, llo = 0; llo < 255 && (acc += luma[llo]) <= m / 100; llo++)
		;
	for (acc = 0, lhi = 255; lhi > 0 && (acc += luma[lhi]) <= m / 1000; lhi--)
		;
	if (lhi - llo < 32 || hi <= lo)	/* nearly one brightness: nothing to stretch */
		lo = 0, hi = 255;
	gain = fmin(255.0 / (hi - lo), IMG_ENHANCE_GAIN_MAX);
	for (int i = 0; i < 256; i++) {
		v = (int)lround((i - lo) * gain);
		map[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
	sharpen(im, map);
}

int img_to_jpeg(const struct img *im, int quality, struct buf *out)
{
	tjhandle tj = tjInitCompress();
	unsigned char *jpeg = NULL;
	unsigned long len = 0;
	int rc = -1;

	if (tj == NULL)
		abort();
	if (tjCompress2(tj, im->px, im->w, 0, im->h, TJPF_RGB, &jpeg, &len, TJSAMP_420, quality,
	                0) == 0) {
		buf_reset(out);
		buf_append(out, jpeg, len);
		rc = 0;
	}
	tjFree(jpeg);
	tjDestroy(tj);
	return rc;
}

/* Appends a PNG chunk: length, type, data, CRC of type and data. */
static void png_chunk(struct buf *b, const char *type, const void *data, size_t len)
{
	unsigned char be[4];
	uLong crc = crc32(0, (const Bytef *)type, 4);

	if (len > 0)
		crc = crc32(crc, data, (uInt)len);
	be[0] = (unsigned char)(len >> 24), be[1] = (unsigned char)(len >> 16);
	be[2] = (unsigned char)(len >> 8), be[3] = (unsigned char)len;
	buf_append(b, be, 4);
	buf_append(b, type, 4);
	if (len > 0)
		buf_append(b, data, len);
	be[0] = (unsigned char)(crc >> 24), be[1] = (unsigned char)(crc >> 16);
	be[2] = (unsigned char)(crc >> 8), be[3] = (unsigned char)crc;
	buf_append(b, be, 4);
}

int img_to_png(const struct img *im, struct buf *out)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	size_t row = (size_t)im->w * 3, raw_len = (row + 1) * (size_t)im->h;
	unsigned char ihdr[13], *raw = xmalloc(raw_len), *z;
	uLongf zlen = compressBound((uLong)raw_len);
	int rc;

	/* Filter "Sub" on every row: console pictures are long flat runs. */
	for (int y = 0; y < im->h; y++) {
		const unsigned char *src = im->px + (size_t)y * row;
		unsigned char *dst = raw + (size_t)y * (row + 1);
		dst[0] = 1;
		memcpy(dst + 1, src, 3);
		for (size_t x = 3; x < row; x++)
			dst[1 + x] = (unsigned char)(src[x] - src[x - 3]);
	}
	z = xmalloc(zlen);
	rc = compress2(z, &zlen, raw, (uLong)raw_len, IMG_PNG_LEVEL);
	free(raw);
	if (rc != Z_OK) {
		free(z);
		return -1;
	}
	ihdr[0] = (unsigned char)(im->w >> 24), ihdr[1] = (unsigned char)(im->w >> 16);
	ihdr[2] = (unsigned char)(im->w >> 8), ihdr[3] = (unsigned char)im->w;
	ihdr[4] = (unsigned char)(im->h >> 24), ihdr[5] = (unsigned char)(im->h >> 16);
	ihdr[6] = (unsigned char)(im->h >> 8), ihdr[7] = (unsigned char)im->h;
	ihdr[8] = 8;		/* bits per sample */
	ihdr[9] = 2;		/* truecolour */
	ihdr[10] = ihdr[11] = ihdr[12] = 0;	/* deflate, adaptive filters, no interlace */
	buf_reset(out);
	buf_append(out, sig, sizeof sig);
	png_chunk(out, "IHDR", ihdr, sizeof ihdr);
	png_chunk(out, "IDAT", z, zlen);
	png_chunk(out, "IEND", NULL, 0);
	free(z);
	return 0;
}
