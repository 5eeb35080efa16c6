/*
 * ocr.c - the text of a picture, read with Tesseract (its C API), for
 * read_screen_text and wait_for_screen.
 *
 * A worker process holds one engine, made on first use and kept: loading a
 * language takes a few hundred milliseconds, reading a screen much less.
 * It is loaded again only when a call asks for other languages. Languages
 * are those whose <lang>.traineddata is in KVMGATE_TESSDATA; the directory
 * is read, not guessed, so a call naming another one is refused with the
 * list (as PiKVM's kvmd answers 400).
 *
 * Console screens are mostly light text on a dark ground with glyphs 8 to
 * 16 pixels tall. Tesseract reads dark text on a light ground, in lines of
 * 20 pixels or more, best: the picture is made grey, inverted when its
 * ground is dark, and enlarged by a whole factor (bilinear, so edges stay
 * smooth for Tesseract's own thresholding) when it is small enough.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tesseract/capi.h>

#include "conf.h"
#include "fcgi.h"
#include "log.h"

/* Enlarge by 3 up to this many pixels after enlarging, else by 2, else not. */
#define UPSCALE_PIXELS_MAX (8u * 1024 * 1024)
/* Tesseract's idea of the resolution: screens of the enlarged picture. */
#define OCR_PPI 200

/* This process's engine and the languages it was loaded with. */
static struct {
	TessBaseAPI *api;
	char lang[OCR_LANG_MAX + 1];
} engine;

void ocr_grey_free(struct ocr_grey *g)
{
	free(g->px);
	g->px = NULL;
	g->w = g->h = 0;
}

int ocr_upscale_factor(int w, int h)
{
	unsigned long long n = (unsigned long long)w * (unsigned long long)h;

	if (n * 9 <= UPSCALE_PIXELS_MAX)
		return 3;
	if (n * 4 <= UPSCALE_PIXELS_MAX)
		return 2;
	return 1;
}

/* src (w x h) enlarged by factor k into dst, bilinear on pixel centres. */
static void upscale(const unsigned char *src, int w, int h, int k, unsigned char *dst)
{
	int ow = w * k, oh = h * k;

	for (int y = 0; y < oh; y++) {
		/* Source coordinate of this row's centre, in 1/(2k) steps. */
		int sy2 = 2 * y + 1 - k, y0, y1, fy;

		sy2 = sy2 < 0 ? 0 : sy2;
		y0 = sy2 / (2 * k);
		fy = sy2 % (2 * k);
		y1 = y0 + 1 < h ? y0 + 1 : y0;
		for (int x = 0; x < ow; x++) {
			int sx2 = 2 * x + 1 - k, x0, x1, fx, top, bot;

			sx2 = sx2 < 0 ? 0 : sx2;
			x0 = sx2 / (2 * k);
			fx = sx2 % (2 * k);
			x1 = x0 + 1 < w ? x0 + 1 : x0;
			top = src[(size_t)y0 * w + x0] * (2 * k - fx) + src[(size_t)y0 * w + x1] * fx;
			bot = src[(size_t)y1 * w + x0] * (2 * k - fx) + src[(size_t)y1 * w + x1] * fx;
			dst[(size_t)y * ow + x] = (unsigned char)
				((top * (2 * k - fy) + bot * fy + 2 * k * k) / (4 * k * k));
		}
	}
}

void ocr_prepare(const struct img *im, struct ocr_grey *out)
{
	size_t n = (size_t)im->w * (size_t)im->h;
	unsigned char *grey = xmalloc(n ? n : 1);
	unsigned long long sum = 0;
	int k = ocr_upscale_factor(im->w, im->h);

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = im->px + 3 * i;
		/* Rec. 601 luma in fixed point. */
		grey[i] = (unsigned char)((p[0] * 77u + p[1] * 150u + p[2] * 29u + 128u) >> 8);
		sum += grey[i];
	}
	/* A dark ground (the mean is mostly ground): turn it light. */
	if (n > 0 && sum < 128ull * n)
		for (size_t i = 0; i < n; i++)
			grey[i] = (unsigned char)(255 - grey[i]);
	out->w = im->w * k;
	out->h = im->h * k;
	out->scale = k;
	out->inverted = n > 0 && sum < 128ull * n;
	if (k == 1) {
		out->px = grey;
		return;
	}
	out->px = xmalloc((size_t)out->w * (size_t)out->h);
	upscale(grey, im->w, im->h, k, out->px);
	free(grey);
}

/* Whether name is a language code as Tesseract files name them. */
static bool lang_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

void ocr_languages(struct buf *out)
{
	const char *dir = conf_str(CONF_TESSDATA);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name, *dot = strstr(name, ".traineddata");
		size_t len = dot != NULL ? (size_t)(dot - name) : 0;

		/* osd finds orientation and script; it reads no text. */
		if (dot != NULL && strcmp(dot, ".traineddata") == 0 && lang_name_ok(name, len) &&
		    strcmp(name, "osd.traineddata") != 0)
			buf_printf(out, "%s%.*s", out->len ? ", " : "", (int)len, name);
		free(names[i]);
	}
	free(names);
}

int ocr_language_check(const char *lang, char *why, size_t len)
{
	struct buf have = BUF_INIT;
	const char *p = lang;
	int rc = 0;

	ocr_languages(&have);
	if (strlen(lang) > OCR_LANG_MAX)
		rc = -1;
	while (rc == 0) {
		size_t n = strcspn(p, "+");
		bool found = false;

		if (!lang_name_ok(p, n)) {
			rc = -1;
			break;
		}
		for (const char *h = have.data; h != NULL && *h; ) {
			size_t m = strcspn(h, ",");
			found |= m == n && strncmp(h, p, n) == 0;
			h += m;
			h += strspn(h, ", ");
		}
		if (!found) {
			rc = -1;
			break;
		}
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (rc < 0)
		snprintf(why, len, "The OCR language '%.64s' is not installed on this gateway; "
		         "installed: %s. Several are joined with '+' (\"eng+deu\").", lang,
		         have.len ? have.data : "none (install a tesseract-ocr-<lang> package)");
	buf_free(&have);
	return rc;
}

/* The engine loaded with lang. 0, or -1 with why; *init_ms: what loading took (0: none). */
static int engine_for(const char *lang, uint64_t *init_ms, char *why, size_t len)
{
	uint64_t start = now_mono_ns();

	*init_ms = 0;
	if (engine.api != NULL && strcmp(engine.lang, lang) == 0)
		return 0;
	if (engine.api != NULL) {
		TessBaseAPIEnd(engine.api);
	} else {
		engine.api = TessBaseAPICreate();
		if (engine.api == NULL)
			abort();
	}
	engine.lang[0] = '\0';
	if (TessBaseAPIInit3(engine.api, conf_str(CONF_TESSDATA), lang) != 0) {
		snprintf(why, len, "The OCR engine could not load the language '%s' from %s.", lang,
		         conf_str(CONF_TESSDATA));
		log_warnx("ocr: tesseract could not load %s from %s", lang, conf_str(CONF_TESSDATA));
		return -1;
	}
	/* Its diagnostics ("Estimating resolution as ...") would fill the log. */
	if (!TessBaseAPISetVariable(engine.api, "debug_file", "/dev/null"))
		log_debug("ocr: tesseract has no debug_file variable");
	/* A console is one column of lines; page layout analysis (PSM_AUTO)
	 * dropped short lines at the screen's left edge. */
	TessBaseAPISetPageSegMode(engine.api, PSM_SINGLE_COLUMN);
	snprintf(engine.lang, sizeof engine.lang, "%s", lang);
	*init_ms = (now_mono_ns() - start) / 1000000u;
	if (*init_ms == 0)
		*init_ms = 1;
	log_info("ocr: tesseract %s loaded %s in %llu ms", TessVersion(), lang,
	         (unsigned long long)*init_ms);
	return 0;
}

size_t ocr_tidy(char *text, size_t max, int *lines, bool *truncated)
{
	size_t in = 0, out = 0;
	int n = 0;

	*truncated = false;
	/* Tesseract ends every paragraph with an empty line, and on a console
	 * every line is one: empty lines say nothing and are dropped. */
	while (text[in] != '\0') {
		size_t len = strcspn(text + in, "\n"), end = len;

		while (end > 0 && isspace((unsigned char)text[in + end - 1]))
			end--;
		if (end > 0) {
			if (out + (n > 0) + end > max) {
				*truncated = true;
				break;
			}
			if (n > 0)
				text[out++] = '\n';
			memmove(text + out, text + in, end);
			out += end;
			n++;
		}
		in += len + (text[in + len] == '\n');
	}
	text[out] = '\0';
	*lines = n;
	return out;
}

int ocr_read(const struct img *im, const char *lang, struct ocr_result *out, char *why,
             size_t len)
{
	struct ocr_grey g;
	uint64_t start;
	char *text;

	memset(out, 0, sizeof *out);
	if (engine_for(lang, &out->init_ms, why, len) < 0)
		return -1;
	start = now_mono_ns();
	ocr_prepare(im, &g);
	out->scale = g.scale;
	out->inverted = g.inverted;
	TessBaseAPISetImage(engine.api, g.px, g.w, g.h, 1, g.w);
	TessBaseAPISetSourceResolution(engine.api, OCR_PPI);
	text = TessBaseAPIGetUTF8Text(engine.api);
	out->confidence = TessBaseAPIMeanTextConf(engine.api);
	TessBaseAPIClear(engine.api);
	ocr_grey_free(&g);
	if (text == NULL) {
		snprintf(why, len, "The OCR engine could not read the picture.");
		return -1;
	}
	out->text = xmalloc(strlen(text) + 1);
	strcpy(out->text, text);
	TessDeleteText(text);
	ocr_tidy(out->text, OCR_TEXT_MAX, &out->lines, &out->truncated);
	out->ocr_ms = (now_mono_ns() - start) / 1000000u;
	return 0;
}

void ocr_result_free(struct ocr_result *r)
{
	free(r->text);
	r->text = NULL;
}
