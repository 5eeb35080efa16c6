/*
 * mjpeg.c - the MJPEG stream parser and the JPEG header reader. Both read
 * bytes from a device: every length is checked before use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "capture.h"

#define LINE_MAX_LEN 1024	/* a boundary or part header line */

enum { MJ_BOUNDARY, MJ_HEADERS, MJ_BODY };

void mjpeg_init(struct mjpeg *m, size_t max_frame)
{
	buf_free(&m->acc);
	memset(m, 0, sizeof *m);
	m->st = MJ_BOUNDARY;
	m->part_len = -1;
	m->max = max_frame;
}

void mjpeg_cleanup(struct mjpeg *m)
{
	buf_free(&m->acc);
}

/* The length of the line at p (without CRLF), or -1 when no CRLF is in avail bytes. */
static long line_len(const char *p, size_t avail)
{
	const char *e = memmem(p, avail, "\r\n", 2);

	return e != NULL ? e - p : -1;
}

static int fail(struct mjpeg *m, const char *why)
{
	snprintf(m->why, sizeof m->why, "%s", why);
	return -1;
}

/* Handles one header line of a part; only Content-Length matters. */
static int part_header(struct mjpeg *m, const char *line, size_t n)
{
	static const char cl[] = "content-length:";
	char num[24];
	const char *err;
	long long v;

	if (n < sizeof cl - 1 || strncasecmp(line, cl, sizeof cl - 1) != 0)
		return 0;
	line += sizeof cl - 1;
	n -= sizeof cl - 1;
	while (n > 0 && (*line == ' ' || *line == '\t'))
		line++, n--;
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof num)
		return fail(m, "bad Content-Length");
	memcpy(num, line, n);
	num[n] = '\0';
	if (parse_ll(num, 1, (long long)m->max, &v, &err) < 0)
		return fail(m, "Content-Length out of bounds");
	m->part_len = v;
	return 0;
}

int mjpeg_feed(struct mjpeg *m, const void *data, size_t len, mjpeg_frame_fn fn, void *arg)
{
	size_t off = 0;
	int rc = 0;

	buf_append(&m->acc, data, len);
	for (;;) {
		const char *p = m->acc.data + off;
		size_t avail = m->acc.len - off;
		long n;

		if (m->st != MJ_BODY) {
			if ((n = line_len(p, avail < LINE_MAX_LEN ? avail : LINE_MAX_LEN)) < 0) {
				if (avail >= LINE_MAX_LEN)
					rc = fail(m, "line too long");
				break;
			}
			off += (size_t)n + 2;
			if (m->st == MJ_BOUNDARY) {
				/* Blank lines (the CRLF ending the previous part) are skipped. */
				while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
					n--;
				if (n == 0)
					continue;
				if (n != 7 || memcmp(p, "--frame", 7) != 0) {
					rc = fail(m, "expected the boundary --frame");
					break;
				}
				m->st = MJ_HEADERS;
				m->part_len = -1;
			} else if (n == 0) {
				m->st = MJ_BODY;
				m->scan = 0;
			} else if ((rc = part_header(m, p, (size_t)n)) < 0) {
				break;
			}
			continue;
		}
		if (m->part_len >= 0) {
			if (avail < (size_t)m->part_len)
				break;
			n = (long)m->part_len;
		} else {
			/* No length: the part ends after FF D9 (the encoder embeds no thumbnail). */
			const char *eoi = m->scan + 2 <= avail ? memmem(p + m->scan, avail - m->scan, "\xff\xd9", 2)
			                                         : NULL;
			if (eoi == NULL) {
				m->scan = avail > 0 ? avail - 1 : 0;
				if (avail > m->max)
					rc = fail(m, "frame larger than the frame store allows");
				break;
			}
			n = eoi + 2 - p;
		}
		if ((size_t)n > m->max) {
			rc = fail(m, "frame larger than the frame store allows");
			break;
		}
		off += (size_t)n;
		m->st = MJ_BOUNDARY;
		m->frames++;
		if (fn(arg, (const uint8_t *)p, (size_t)n) < 0) {
			rc = fail(m, "frame refused");
			break;
		}
	}
	if (off > 0) {
		memmove(m->acc.data, m->acc.data + off, m->acc.len - off);
		m->acc.len -= off;
	}
	return rc;
}

int jpeg_size(const uint8_t *p, size_t len, uint32_t *width, uint32_t *height)
{
	size_t i = 2;

	if (len < 4 || p[0] != 0xff || p[1] != 0xd8)
		return -1;
	while (i + 4 <= len) {
		uint8_t mk = p[i + 1];
		size_t seg;

		if (p[i] != 0xff)
			return -1;
		if (mk == 0xff) {	/* fill byte */
			i++;
			continue;
		}
		if (mk == 0x01 || (mk >= 0xd0 && mk <= 0xd8)) {	/* markers without a length */
			i += 2;
			continue;
		}
		if (mk == 0xda || mk == 0xd9)	/* scan data or the end before any frame header */
			return -1;
		seg = (size_t)p[i + 2] << 8 | p[i + 3];
		if (seg < 2)
			return -1;
		if (mk >= 0xc0 && mk <= 0xcf && mk != 0xc4 && mk != 0xc8 && mk != 0xcc) {
			if (seg < 7 || i + 9 > len)
				return -1;
			*height = (uint32_t)p[i + 5] << 8 | p[i + 6];
			*width = (uint32_t)p[i + 7] << 8 | p[i + 8];
			return *width > 0 && *height > 0 ? 0 : -1;
		}
		i += 2 + seg;
	}
	return -1;
}
