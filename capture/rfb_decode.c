/*
 * rfb_decode.c - the rectangle decoders of the RFB engine (rfb.md section 4):
 * Raw, CopyRect, Hextile, ZRLE, Tight (zlib streams and JPEG) and the
 * pseudo-encodings DesktopSize, ExtendedDesktopSize, LastRect, Cursor and
 * the QEMU extended key event confirmation. The client asked for 32-bit
 * little-endian pixels (0x00RRGGBB), so PIXEL is 4 bytes, ZRLE's CPIXEL the
 * low 3 (B G R) and Tight's TPIXEL R G B. Large rectangles are decoded as
 * their bytes arrive (Raw by rows, Hextile by tiles); ZRLE and Tight wait
 * for their compressed block, bounded by RFB_MAX_ZDATA.
 */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "capture.h"
#include "rfb.h"

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t cpix(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16; }
static uint32_t tpix(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }

static void fill(struct rfb *r, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t v)
{
	for (uint32_t j = 0; j < h; j++) {
		uint32_t *row = r->fb + (size_t)(y + j) * r->w + x;
		for (uint32_t i = 0; i < w; i++)
			row[i] = v;
	}
}

/* ---- Raw and CopyRect --------------------------------------------------------- */

static int dec_raw(struct rfb *r)
{
	size_t row = (size_t)r->rw * 4;

	while (r->rpos < r->rh) {
		const uint8_t *p = rfb_peek(r);
		uint32_t *dst;
		if (rfb_avail(r) < row)
			return 0;
		dst = r->fb + (size_t)(r->ry + r->rpos) * r->w + r->rx;
		for (uint32_t i = 0; i < r->rw; i++)
			dst[i] = le32(p + 4 * i);
		rfb_consume(r, row);
		r->rpos++;
	}
	rfb_painted(r, r->rx, r->ry, r->rw, r->rh);
	return 1;
}

static int dec_copyrect(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	uint32_t sx, sy;

	if (rfb_avail(r) < 4)
		return 0;
	sx = (uint32_t)(p[0] << 8 | p[1]);
	sy = (uint32_t)(p[2] << 8 | p[3]);
	if (sx + r->rw > r->w || sy + r->rh > r->h)
		return rfb_fail(r, SE_PROTOCOL, "CopyRect source %ux%u+%u+%u outside the %ux%u framebuffer",
		                r->rw, r->rh, sx, sy, r->w, r->h);
	rfb_consume(r, 4);
	/* Rows in the order that never reads a row already overwritten; memmove within a row. */
	for (uint32_t k = 0; k < r->rh; k++) {
		uint32_t j = sy < r->ry ? r->rh - 1 - k : k;
		memmove(r->fb + (size_t)(r->ry + j) * r->w + r->rx, r->fb + (size_t)(sy + j) * r->w + sx,
		        (size_t)r->rw * 4);
	}
	rfb_painted(r, r->rx, r->ry, r->rw, r->rh);
	return 1;
}

/* ---- Hextile ---------------------------------------------------------------------- */

static int dec_hextile(struct rfb *r)
{
	uint32_t cols = (r->rw + 15u) / 16u, tiles = cols * ((r->rh + 15u) / 16u);

	while (r->rpos < tiles) {
		const uint8_t *p = rfb_peek(r);
		size_t have = rfb_avail(r), need = 1, off;
		uint32_t tx = r->rx + (r->rpos % cols) * 16, ty = r->ry + (r->rpos / cols) * 16;
		uint32_t tw = r->rx + r->rw - tx < 16 ? r->rx + r->rw - tx : 16;
		uint32_t th = r->ry + r->rh - ty < 16 ? r->ry + r->rh - ty : 16;
		uint8_t mask, n = 0;

		if (have < 1)
			return 0;
		mask = p[0];
		if (mask & 1) {
			need += (size_t)tw * th * 4;
			if (have < need)
				return 0;
			for (uint32_t j = 0; j < th; j++)
				for (uint32_t i = 0; i < tw; i++)
					r->fb[(size_t)(ty + j) * r->w + tx + i] = le32(p + 1 + 4 * (j * tw + i));
			rfb_consume(r, need);
			r->rpos++;
			continue;
		}
		need += (mask & 2 ? 4 : 0) + (mask & 4 ? 4 : 0) + (mask & 8 ? 1 : 0);
		if (have < need)
			return 0;
		if (mask & 8) {
			n = p[need - 1];
			need += (size_t)n * (mask & 16 ? 6 : 2);
			if (have < need)
				return 0;
		}
		if (mask & 0xe0)
			return rfb_fail(r, SE_PROTOCOL, "Hextile tile with unknown flags 0x%02x", mask);
		off = 1;
		if (mask & 2) {
			r->hex_bg = le32(p + off);
			off += 4;
		}
		if (mask & 4) {
			r->hex_fg = le32(p + off);
			off += 4;
		}
		fill(r, tx, ty, tw, th, r->hex_bg);
		if (mask & 8) {
			off++;
			for (uint8_t k = 0; k < n; k++) {
				uint32_t c = r->hex_fg, sx, sy, sw, sh;
				if (mask & 16) {
					c = le32(p + off);
					off += 4;
				}
				sx = p[off] >> 4;
				sy = p[off] & 15;
				sw = (p[off + 1] >> 4) + 1u;
				sh = (p[off + 1] & 15) + 1u;
				off += 2;
				if (sx + sw > tw || sy + sh > th)
					return rfb_fail(r, SE_PROTOCOL, "Hextile subrectangle %ux%u+%u+%u outside its %ux%u tile",
					                sw, sh, sx, sy, tw, th);
				fill(r, tx + sx, ty + sy, sw, sh, c);
			}
		}
		rfb_consume(r, need);
		r->rpos++;
	}
	rfb_painted(r, r->rx, r->ry, r->rw, r->rh);
	return 1;
}

/* ---- zlib --------------------------------------------------------------------------- */

/*
 * Inflates len bytes at src with stream z into r->z, which must end up
 * holding exactly want bytes (ZRLE: at most want). Returns 0 or -1 after rfb_fail.
 */
static int inflate_into(struct rfb *r, z_stream *z, const uint8_t *src, size_t len, size_t want,
                        bool exact, const char *what)
{
	int zr;

	buf_reset(&r->z);
	z->next_in = (Bytef *)src;
	z->avail_in = (uInt)len;
	do {
		size_t room;
		if (r->z.len == want + 1)
			return rfb_fail(r, SE_PROTOCOL, "%s data inflates to more than its rectangle needs", what);
		/* Grow as the data does: a lying header costs no more than what it really sends. */
		if (r->z.cap < r->z.len + 2) {
			size_t more = r->z.len < 65536 ? 65536 : r->z.len;
			buf_reserve(&r->z, more < want + 1 - r->z.len ? more : want + 1 - r->z.len);
		}
		room = r->z.cap - 1 - r->z.len;
		if (room > want + 1 - r->z.len)
			room = want + 1 - r->z.len;
		z->next_out = (Bytef *)r->z.data + r->z.len;
		z->avail_out = (uInt)room;
		zr = inflate(z, Z_SYNC_FLUSH);
		r->z.len += room - z->avail_out;
		if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END)
			return rfb_fail(r, SE_PROTOCOL, "%s zlib data is corrupt (%s)", what, z->msg ? z->msg : "?");
		if (zr == Z_STREAM_END || (zr == Z_BUF_ERROR && z->avail_out != 0))
			break;	/* no progress possible: input used up */
	} while (z->avail_in > 0 || z->avail_out == 0);
	if (r->z.len > want || (exact && r->z.len != want))
		return rfb_fail(r, SE_PROTOCOL, "%s data inflates to %zu bytes, %zu expected", what, r->z.len, want);
	return 0;
}

static void zinit(z_stream *z, bool *on)
{
	if (!*on) {
		memset(z, 0, sizeof *z);
		if (inflateInit(z) != Z_OK)
			abort();
		*on = true;
	}
}

/* ---- ZRLE --------------------------------------------------------------------------- */

/* Reads a run length (1 + bytes until one is not 255). Returns 0 when the data ends. */
static uint32_t run_length(const uint8_t *d, size_t n, size_t *off, uint32_t limit)
{
	uint32_t len = 1;

	for (;;) {
		if (*off >= n)
			return 0;
		len += d[*off];
		if (d[(*off)++] != 255)
			return len;
		if (len > limit)
			return len;
	}
}

static int zrle_tiles(struct rfb *r, const uint8_t *d, size_t n)
{
	size_t off = 0;

	for (uint32_t ty = 0; ty < r->rh; ty += 64) {
		for (uint32_t tx = 0; tx < r->rw; tx += 64) {
			uint32_t tw = r->rw - tx < 64 ? r->rw - tx : 64, th = r->rh - ty < 64 ? r->rh - ty : 64;
			uint32_t x0 = r->rx + tx, y0 = r->ry + ty, pal[128], sub, pix = tw * th;
			if (off >= n)
				goto short_data;
			sub = d[off++];
			if (sub == 0) {
				if (n - off < (size_t)pix * 3)
					goto short_data;
				for (uint32_t j = 0; j < th; j++)
					for (uint32_t i = 0; i < tw; i++, off += 3)
						r->fb[(size_t)(y0 + j) * r->w + x0 + i] = cpix(d + off);
			} else if (sub == 1) {
				if (n - off < 3)
					goto short_data;
				fill(r, x0, y0, tw, th, cpix(d + off));
				off += 3;
			} else if (sub <= 16) {
				uint32_t bits = sub == 2 ? 1 : sub <= 4 ? 2 : 4;
				size_t rowbytes = (tw * bits + 7) / 8;
				if (n - off < (size_t)sub * 3)
					goto short_data;
				for (uint32_t k = 0; k < sub; k++, off += 3)
					pal[k] = cpix(d + off);
				if (n - off < rowbytes * th)
					goto short_data;
				for (uint32_t j = 0; j < th; j++, off += rowbytes)
					for (uint32_t i = 0; i < tw; i++) {
						uint32_t bit = i * bits, idx = (d[off + bit / 8] >> (8 - bits - bit % 8)) & ((1u << bits) - 1);
						if (idx >= sub)
							return rfb_fail(r, SE_PROTOCOL, "ZRLE palette index %u of %u", idx, sub);
						r->fb[(size_t)(y0 + j) * r->w + x0 + i] = pal[idx];
					}
			} else if (sub == 128 || sub >= 130) {
				uint32_t psize = sub == 128 ? 0 : sub - 128, done = 0;
				if (n - off < (size_t)psize * 3)
					goto short_data;
				for (uint32_t k = 0; k < psize; k++, off += 3)
					pal[k] = cpix(d + off);
				while (done < pix) {
					uint32_t c, len = 1;
					if (psize == 0) {
						if (n - off < 3)
							goto short_data;
						c = cpix(d + off);
						off += 3;
						if ((len = run_length(d, n, &off, pix)) == 0)
							goto short_data;
					} else {
						uint8_t idx;
						if (off >= n)
							goto short_data;
						idx = d[off++];
						if ((idx & 127) >= psize)
							return rfb_fail(r, SE_PROTOCOL, "ZRLE palette index %u of %u", idx & 127, psize);
						c = pal[idx & 127];
						if ((idx & 128) && (len = run_length(d, n, &off, pix)) == 0)
							goto short_data;
					}
					if (len > pix - done)
						return rfb_fail(r, SE_PROTOCOL, "ZRLE run of %u pixels past its tile", len);
					for (uint32_t k = 0; k < len; k++, done++)
						r->fb[(size_t)(y0 + done / tw) * r->w + x0 + done % tw] = c;
				}
			} else {
				return rfb_fail(r, SE_PROTOCOL, "ZRLE tile sub-encoding %u is not defined", sub);
			}
		}
	}
	return 0;
short_data:
	return rfb_fail(r, SE_PROTOCOL, "ZRLE data ends inside a tile");
}

static int dec_zrle(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	uint32_t len;
	size_t tiles, want;

	if (rfb_avail(r) < 4)
		return 0;
	len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (len > RFB_MAX_ZDATA)
		return rfb_fail(r, SE_PROTOCOL, "ZRLE rectangle of %u compressed bytes", len);
	if (rfb_avail(r) < 4 + (size_t)len)
		return 0;
	/* The most a rectangle's tiles can take: raw CPIXELs or 1-pixel runs (4 bytes) + headers. */
	tiles = (size_t)((r->rw + 63) / 64) * ((r->rh + 63) / 64);
	want = (size_t)r->rw * r->rh * 4 + tiles * (1 + 127 * 3);
	zinit(&r->zrle, &r->zrle_on);
	if (inflate_into(r, &r->zrle, p + 4, len, want, false, "ZRLE") < 0 ||
	    zrle_tiles(r, (const uint8_t *)r->z.data, r->z.len) < 0)
		return -1;
	rfb_consume(r, 4 + (size_t)len);
	rfb_painted(r, r->rx, r->ry, r->rw, r->rh);
	return 1;
}

/* ---- Tight ---------------------------------------------------------------------------- */

/* Reads a compact length at p (at most 3 bytes of avail). Returns bytes used, 0 when short. */
static size_t compact_len(const uint8_t *p, size_t avail, uint32_t *len)
{
	if (avail < 1)
		return 0;
	*len = p[0] & 0x7f;
	if (!(p[0] & 0x80))
		return 1;
	if (avail < 2)
		return 0;
	*len |= (uint32_t)(p[1] & 0x7f) << 7;
	if (!(p[1] & 0x80))
		return 2;
	if (avail < 3)
		return 0;
	*len |= (uint32_t)p[2] << 14;
	return 3;
}

static int tight_jpeg(struct rfb *r, const uint8_t *jpeg, uint32_t len)
{
	int w, h, sub, cs;

	if (r->tjd == NULL && (r->tjd = tjInitDecompress()) == NULL)
		abort();
	if (tjDecompressHeader3(r->tjd, jpeg, len, &w, &h, &sub, &cs) != 0 || w != r->rw || h != r->rh)
		return rfb_fail(r, SE_PROTOCOL, "Tight JPEG of %ux%u is not a valid %ux%u image", w, h,
		                r->rw, r->rh);
	if (tjDecompress2(r->tjd, jpeg, len, (unsigned char *)(r->fb + (size_t)r->ry * r->w + r->rx),
	                  r->rw, (int)r->w * 4, r->rh, TJPF_BGRX, TJFLAG_FASTDCT) != 0 &&
	    tjGetErrorCode(r->tjd) == TJERR_FATAL)
		return rfb_fail(r, SE_PROTOCOL, "Tight JPEG does not decode: %s", tjGetErrorStr2(r->tjd));
	return 0;
}

static int dec_tight(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	size_t have = rfb_avail(r), off = 1, used, raw;
	uint32_t pal[256], npal = 0, filter = 0, len;
	uint8_t ctl;
	int stream;

	if (have < 1)
		return 0;
	ctl = p[0];
	if (r->rw > 2048)
		return rfb_fail(r, SE_PROTOCOL, "Tight rectangle %u pixels wide (2048 at most)", r->rw);
	if ((ctl >> 4) == 8) {	/* Fill */
		if (have < 4)
			return 0;
		fill(r, r->rx, r->ry, r->rw, r->rh, tpix(p + 1));
		off = 4;
		goto done;
	}
	if ((ctl >> 4) == 9) {	/* JPEG */
		if ((used = compact_len(p + 1, have - 1, &len)) == 0)
			return 0;
		if (have < 1 + used + len)
			return 0;
		if (tight_jpeg(r, p + 1 + used, len) < 0)
			return -1;
		off = 1 + used + len;
		goto done;
	}
	if (ctl & 0x80)
		return rfb_fail(r, SE_PROTOCOL, "Tight compression control 0x%02x is not defined", ctl);
	stream = (ctl >> 4) & 3;
	if (ctl & 0x40) {
		if (have < 2)
			return 0;
		filter = p[1];
		off = 2;
		if (filter > 2)
			return rfb_fail(r, SE_PROTOCOL, "Tight filter %u is not defined", filter);
	}
	if (filter == 1) {
		if (have < off + 1)
			return 0;
		npal = p[off] + 1u;
		if (npal < 2)
			return rfb_fail(r, SE_PROTOCOL, "Tight palette of one colour");
		if (have < off + 1 + 3 * (size_t)npal)
			return 0;
		for (uint32_t k = 0; k < npal; k++)
			pal[k] = tpix(p + off + 1 + 3 * k);
		off += 1 + 3 * (size_t)npal;
		raw = npal == 2 ? (size_t)((r->rw + 7) / 8) * r->rh : (size_t)r->rw * r->rh;
	} else {
		raw = (size_t)r->rw * r->rh * 3;
	}
	if (raw < 12) {
		if (have < off + raw)
			return 0;
		buf_reset(&r->z);
		buf_append(&r->z, p + off, raw);
		off += raw;
	} else {
		if ((used = compact_len(p + off, have - off, &len)) == 0)
			return 0;
		if (len > RFB_MAX_ZDATA)
			return rfb_fail(r, SE_PROTOCOL, "Tight rectangle of %u compressed bytes", len);
		if (have < off + used + len)
			return 0;
		for (int i = 0; i < 4; i++)
			if (ctl & (1u << i) && r->tight_on[i])
				inflateReset(&r->tight[i]);
		zinit(&r->tight[stream], &r->tight_on[stream]);
		if (inflate_into(r, &r->tight[stream], p + off + used, len, raw, true, "Tight") < 0)
			return -1;
		off += used + len;
		ctl &= 0xf0;	/* the resets are done */
	}
	{
		const uint8_t *d = (const uint8_t *)r->z.data;
		size_t rowbytes = (r->rw + 7) / 8;
		for (uint32_t j = 0; j < r->rh; j++) {
			uint32_t *row = r->fb + (size_t)(r->ry + j) * r->w + r->rx;
			const uint32_t *above = j > 0 ? row - r->w : row;
			for (uint32_t i = 0; i < r->rw; i++) {
				size_t k = (size_t)j * r->rw + i;
				if (filter == 1 && npal == 2) {
					row[i] = pal[(d[j * rowbytes + i / 8] >> (7 - i % 8)) & 1];
				} else if (filter == 1) {
					if (d[k] >= npal)
						return rfb_fail(r, SE_PROTOCOL, "Tight palette index %u of %u", d[k], npal);
					row[i] = pal[d[k]];
				} else if (filter == 2) {
					/* Gradient: predicted from left, above, above-left, per component. */
					uint32_t v = 0;
					for (int c = 0; c < 3; c++) {
						int sh = 16 - 8 * c;
						int left = i > 0 ? (int)(row[i - 1] >> sh & 0xff) : 0;
						int up = j > 0 ? (int)(above[i] >> sh & 0xff) : 0;
						int ul = i > 0 && j > 0 ? (int)(above[i - 1] >> sh & 0xff) : 0;
						int pred = left + up - ul;
						pred = pred < 0 ? 0 : pred > 255 ? 255 : pred;
						v |= (uint32_t)((pred + d[3 * k + c]) & 0xff) << sh;
					}
					row[i] = v;
				} else {
					row[i] = tpix(d + 3 * k);
				}
			}
		}
	}
done:
	for (int i = 0; i < 4; i++)
		if (ctl & (1u << i) && r->tight_on[i])
			inflateReset(&r->tight[i]);
	rfb_consume(r, off);
	rfb_painted(r, r->rx, r->ry, r->rw, r->rh);
	return 1;
}

/* ---- pseudo-encodings ----------------------------------------------------------------- */

static int new_size(struct rfb *r, uint32_t w, uint32_t h)
{
	if (w == 0 || h == 0 || w > RFB_MAX_DIM || h > RFB_MAX_DIM)
		return rfb_fail(r, SE_PROTOCOL, "the server resized to %ux%u", w, h);
	if (w != r->w || h != r->h) {
		rfb_resize(r, w, h);
		r->want_full = r->renc == RFB_PSEUDO_DESKTOPSIZE;
	}
	return 1;
}

static int dec_extdesktop(struct rfb *r)
{
	const uint8_t *p = rfb_peek(r);
	size_t n;

	if (rfb_avail(r) < 4)
		return 0;
	n = 4 + 16 * (size_t)p[0];
	if (rfb_avail(r) < n)
		return 0;
	rfb_consume(r, n);
	r->upd_ext = true;
	/* y is the status of a request of ours; we send none, and a refusal changes nothing. */
	if (r->ry != 0)
		return 1;
	return new_size(r, r->rw, r->rh);
}

static int dec_cursor(struct rfb *r)
{
	size_t pix = (size_t)r->rw * r->rh, mrow = (r->rw + 7u) / 8u, n = pix * 4 + mrow * r->rh;
	const uint8_t *p = rfb_peek(r);

	if (r->rw > RFB_MAX_CURSOR || r->rh > RFB_MAX_CURSOR)
		return rfb_fail(r, SE_PROTOCOL, "a %ux%u cursor (%u at most)", r->rw, r->rh, RFB_MAX_CURSOR);
	if (rfb_avail(r) < n)
		return 0;
	free(r->cursor);
	r->cursor = pix ? xmalloc(pix * 4) : NULL;
	for (uint32_t j = 0; j < r->rh; j++)
		for (uint32_t i = 0; i < r->rw; i++) {
			bool on = p[pix * 4 + j * mrow + i / 8] & (0x80 >> (i % 8));
			r->cursor[j * r->rw + i] = (le32(p + 4 * (j * r->rw + i)) & 0xffffff) | (on ? 0xff000000u : 0);
		}
	r->cw = r->rw;
	r->ch = r->rh;
	r->chx = r->rx;
	r->chy = r->ry;
	rfb_consume(r, n);
	return 1;
}

int rfb_decode_rect(struct rfb *r)
{
	bool real = r->renc >= 0;

	if (real && ((uint32_t)r->rx + r->rw > r->w || (uint32_t)r->ry + r->rh > r->h))
		return rfb_fail(r, SE_PROTOCOL, "rectangle %ux%u+%u+%u (encoding %d) outside the %ux%u framebuffer",
		                r->rw, r->rh, r->rx, r->ry, r->renc, r->w, r->h);
	switch (r->renc) {
	case 0: return dec_raw(r);
	case 1: return dec_copyrect(r);
	case 5: return dec_hextile(r);
	case 7: return dec_tight(r);
	case 16: return dec_zrle(r);
	case RFB_PSEUDO_DESKTOPSIZE: return new_size(r, r->rw, r->rh);
	case RFB_PSEUDO_EXTDESKTOPSIZE: return dec_extdesktop(r);
	case RFB_PSEUDO_LASTRECT: return 1;
	case RFB_PSEUDO_CURSOR: return dec_cursor(r);
	case RFB_PSEUDO_QEMUKEY:
		r->qemu_keys = true;
		return 1;
	default:
		return rfb_fail(r, SE_PROTOCOL, "rectangle in encoding %d, which was not asked for", r->renc);
	}
}
