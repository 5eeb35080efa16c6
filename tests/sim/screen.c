/*
 * screen.c - the simulated host's display: a text console (cells of 8x16,
 * cursor, scrolling), a mouse pointer and a status line, rendered to RGB and
 * then to JPEG with libjpeg-turbo only when something changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "sim.h"

struct screen {
	int width, height, cols, rows;
	char *text;		/* rows * cols, ' ' when empty */
	int cx, cy;		/* cursor cell */
	int px, py;		/* pointer pixel */
	char *status;		/* cols + 1 */
	uint64_t version, rgb_version, jpeg_version;
	int jpeg_quality;
	uint8_t *rgb;
	unsigned char *jpeg;
	unsigned long jpeg_len;
	tjhandle tj;
};

static const uint8_t fg[3] = { 0xe0, 0xe0, 0xe0 }, bg[3] = { 0x10, 0x10, 0x18 };
static const uint8_t bar_fg[3] = { 0x00, 0x00, 0x00 }, bar_bg[3] = { 0x9c, 0xd0, 0x9c };

/* The pointer: an arrow 11 wide, 16 tall; 'X' outline, 'o' fill. */
static const char *const arrow[] = {
	"X          ", "XX         ", "XoX        ", "XooX       ", "XoooX      ",
	"XooooX     ", "XoooooX    ", "XooooooX   ", "XoooooooX  ", "XooooooooX ",
	"XoooooXXXXX", "XooXooX    ", "XoX XooX   ", "XX  XooX   ", "X    XooX  ",
	"     XXXX  ",
};

struct screen *screen_new(int width, int height)
{
	struct screen *s = xcalloc(1, sizeof *s);

	s->width = width;
	s->height = height;
	s->cols = width / FONT_W;
	s->rows = height / FONT_H - 1;
	if (s->rows < 1)
		s->rows = 1;
	s->text = xmalloc((size_t)s->rows * s->cols);
	memset(s->text, ' ', (size_t)s->rows * s->cols);
	s->status = xcalloc(1, (size_t)s->cols + 1);
	s->rgb = xmalloc((size_t)width * height * 3);
	s->px = width / 2;
	s->py = height / 2;
	s->version = 1;
	s->tj = tjInitCompress();
	if (s->tj == NULL)
		abort();
	return s;
}

void screen_free(struct screen *s)
{
	if (s == NULL)
		return;
	tjDestroy(s->tj);
	tjFree(s->jpeg);
	free(s->text);
	free(s->status);
	free(s->rgb);
	free(s);
}

static void scroll_up(struct screen *s)
{
	memmove(s->text, s->text + s->cols, (size_t)(s->rows - 1) * s->cols);
	memset(s->text + (size_t)(s->rows - 1) * s->cols, ' ', (size_t)s->cols);
	s->cy = s->rows - 1;
}

static void newline(struct screen *s)
{
	s->cx = 0;
	if (++s->cy >= s->rows)
		scroll_up(s);
}

void screen_putc(struct screen *s, char c)
{
	switch (c) {
	case '\n':
		newline(s);
		break;
	case '\b':
		if (s->cx > 0)
			s->cx--;
		else if (s->cy > 0) {
			s->cy--;
			s->cx = s->cols - 1;
		}
		s->text[(size_t)s->cy * s->cols + s->cx] = ' ';
		break;
	case '\t':
		do
			screen_putc(s, ' ');
		while (s->cx % 8 != 0);
		return;
	default:
		if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e)
			return;
		if (s->cx >= s->cols)
			newline(s);
		s->text[(size_t)s->cy * s->cols + s->cx++] = c;
		break;
	}
	s->version++;
}

void screen_puts(struct screen *s, const char *text)
{
	for (; *text; text++)
		screen_putc(s, *text);
}

void screen_clear(struct screen *s)
{
	memset(s->text, ' ', (size_t)s->rows * s->cols);
	s->cx = s->cy = 0;
	s->version++;
}

void screen_pointer(struct screen *s, int x, int y)
{
	x = x < 0 ? 0 : x >= s->width ? s->width - 1 : x;
	y = y < 0 ? 0 : y >= s->height ? s->height - 1 : y;
	if (x == s->px && y == s->py)
		return;
	s->px = x;
	s->py = y;
	s->version++;
}

void screen_pointer_pos(const struct screen *s, int *x, int *y)
{
	*x = s->px;
	*y = s->py;
}

void screen_status(struct screen *s, const char *text)
{
	char line[s->cols + 1];

	snprintf(line, sizeof line, "%s", text);
	if (strcmp(line, s->status) == 0)
		return;
	memcpy(s->status, line, sizeof line);
	s->version++;
}

int screen_cols(const struct screen *s) { return s->cols; }
int screen_rows(const struct screen *s) { return s->rows; }

void screen_cursor(const struct screen *s, int *col, int *row)
{
	*col = s->cx;
	*row = s->cy;
}

void screen_row_text(const struct screen *s, int row, char *out)
{
	int n = s->cols;
	const char *r = s->text + (size_t)row * s->cols;

	while (n > 0 && r[n - 1] == ' ')
		n--;
	memcpy(out, r, (size_t)n);
	out[n] = '\0';
}

uint64_t screen_version(const struct screen *s)
{
	return s->version;
}

static void fill(struct screen *s, int x0, int y0, int w, int h, const uint8_t c[3])
{
	for (int y = y0; y < y0 + h && y < s->height; y++) {
		uint8_t *p = s->rgb + ((size_t)y * s->width + x0) * 3;
		for (int x = x0; x < x0 + w && x < s->width; x++, p += 3)
			memcpy(p, c, 3);
	}
}

static void draw_char(struct screen *s, int x0, int y0, char c, const uint8_t *ink)
{
	uint8_t rows[FONT_H];

	if (c == ' ')
		return;
	font_glyph((unsigned char)c, rows);
	for (int y = 0; y < FONT_H && y0 + y < s->height; y++)
		for (int x = 0; x < FONT_W && x0 + x < s->width; x++)
			if (rows[y] & (0x80 >> x))
				memcpy(s->rgb + ((size_t)(y0 + y) * s->width + x0 + x) * 3, ink, 3);
}

static void draw_pointer(struct screen *s)
{
	static const uint8_t white[3] = { 0xff, 0xff, 0xff }, black[3] = { 0, 0, 0 };

	for (size_t y = 0; y < ARRAY_LEN(arrow); y++)
		for (int x = 0; arrow[y][x]; x++) {
			int px = s->px + x, py = s->py + (int)y;
			if (arrow[y][x] == ' ' || px >= s->width || py >= s->height)
				continue;
			memcpy(s->rgb + ((size_t)py * s->width + px) * 3,
			       arrow[y][x] == 'X' ? black : white, 3);
		}
}

const uint8_t *screen_rgb(struct screen *s)
{
	if (s->rgb_version == s->version)
		return s->rgb;
	fill(s, 0, 0, s->width, s->height, bg);
	for (int r = 0; r < s->rows; r++)
		for (int c = 0; c < s->cols; c++)
			draw_char(s, c * FONT_W, r * FONT_H, s->text[(size_t)r * s->cols + c], fg);
	/* A block cursor under the current cell. */
	if (s->cx < s->cols)
		fill(s, s->cx * FONT_W, s->cy * FONT_H + FONT_H - 2, FONT_W, 2, fg);
	fill(s, 0, s->rows * FONT_H, s->width, s->height - s->rows * FONT_H, bar_bg);
	for (int c = 0; s->status[c]; c++)
		draw_char(s, c * FONT_W, s->rows * FONT_H, s->status[c], bar_fg);
	draw_pointer(s);
	s->rgb_version = s->version;
	return s->rgb;
}

uint64_t screen_jpeg(struct screen *s, int quality, const uint8_t **jpeg, size_t *len)
{
	if (s->jpeg == NULL || s->jpeg_version != s->version || s->jpeg_quality != quality) {
		const uint8_t *rgb = screen_rgb(s);
		unsigned long n = 0;
		unsigned char *out = NULL;

		if (tjCompress2(s->tj, rgb, s->width, 0, s->height, TJPF_RGB, &out, &n,
		                TJSAMP_420, quality, TJFLAG_FASTDCT) != 0) {
			tjFree(out);
			return 0;
		}
		tjFree(s->jpeg);
		s->jpeg = out;
		s->jpeg_len = n;
		s->jpeg_version = s->version;
		s->jpeg_quality = quality;
	}
	*jpeg = s->jpeg;
	*len = s->jpeg_len;
	return s->jpeg_version;
}
