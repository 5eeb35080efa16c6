/*
 * screentext.c - the text on a device's screen, and waiting for the screen:
 * what read_screen_text and wait_for_screen do, and GET .../screen/text and
 * POST .../screen/wait alike.
 *
 * Frames come from the capture worker's shared memory as screenshots do
 * (screenshot.c); OCR is ocr.c's. A wait never asks the device for
 * anything: it waits on the device's slot for a frame newer than the last
 * one it looked at, at most once per interval, and reads a frame's text
 * only when a small greyscale copy of it (a thumbnail) shows that
 * something changed since the last reading.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fcgi.h"

/* A thumbnail's longer side, in pixels: about 1/6 of a 1920x1080 screen. */
#define THUMB_EDGE 320
/* A thumbnail pixel differs when its grey level moved by more than this. */
#define THUMB_NOISE 32
/* The longest a wait blocks on the slot before it looks at cancellation again. */
#define FRAME_STEP_MS 500
/* The part of the last text a progress message quotes. */
#define QUOTE_MAX 80

/* ---- patterns ------------------------------------------------------------ */

/*
 * s with every run of white space made one space, none at either end, and
 * (unless match_case) ASCII letters lowered. The caller frees it.
 */
static char *fold(const char *s, size_t n, bool match_case)
{
	char *out = xmalloc(n + 1), *o = out;
	bool space = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (isspace(ch)) {
			space = o > out;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = false;
		*o++ = match_case ? (char)ch : (char)tolower(ch);
	}
	*o = '\0';
	return out;
}

int screen_pattern_init(struct screen_pattern *p, const char *text, bool regex, bool match_case,
                        char *why, size_t len)
{
	int rc;

	memset(p, 0, sizeof *p);
	p->regex = regex;
	p->match_case = match_case;
	if (strlen(text) > SCREEN_PATTERN_MAX || strchr(text, '\n') != NULL) {
		snprintf(why, len, "'text' must be one line of at most %d bytes.", SCREEN_PATTERN_MAX);
		return -1;
	}
	if (!regex) {
		p->text = fold(text, strlen(text), match_case);
		if (p->text[0] != '\0')
			return 0;
		free(p->text);
		p->text = NULL;
		snprintf(why, len, "'text' must have something other than spaces to look for.");
		return -1;
	}
	rc = regcomp(&p->re, text, REG_EXTENDED | REG_NOSUB | (match_case ? 0 : REG_ICASE));
	if (rc != 0) {
		char err[128];
		regerror(rc, &p->re, err, sizeof err);
		snprintf(why, len, "'text' is not a valid regular expression (POSIX extended): %s.",
		         err);
		return -1;
	}
	p->compiled = true;
	return 0;
}

void screen_pattern_cleanup(struct screen_pattern *p)
{
	if (p->compiled)
		regfree(&p->re);
	free(p->text);
	memset(p, 0, sizeof *p);
}

bool screen_pattern_find(const struct screen_pattern *p, const char *text, char *line,
                         size_t size)
{
	for (const char *s = text; *s != '\0'; ) {
		size_t n = strcspn(s, "\n");
		char *copy = xmalloc(n + 1), *folded = NULL;
		bool hit;

		memcpy(copy, s, n);
		copy[n] = '\0';
		if (p->regex) {
			hit = regexec(&p->re, copy, 0, NULL, 0) == 0;
		} else {
			folded = fold(copy, n, p->match_case);
			hit = strstr(folded, p->text) != NULL;
		}
		if (hit && size > 0)
			snprintf(line, size, "%s", copy);
		free(folded);
		free(copy);
		if (hit)
			return true;
		s += n + (s[n] == '\n');
	}
	return false;
}

/* ---- change -------------------------------------------------------------- */

double screen_diff(const struct img *a, const struct img *b, long long *changed)
{
	size_t n = (size_t)a->w * (size_t)a->h;

	*changed = 0;
	if (a->w != b->w || a->h != b->h) {
		*changed = (long long)n;
		return 100;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = a->px + 3 * i, *q = b->px + 3 * i;
		int ya = p[0] * 77 + p[1] * 150 + p[2] * 29, yb = q[0] * 77 + q[1] * 150 + q[2] * 29;
		*changed += abs(ya - yb) > THUMB_NOISE * 256;
	}
	return n ? 100.0 * (double)*changed / (double)n : 0;
}

/* The scale of a thumbnail of f (its region when o has one). */
static double thumb_scale(const struct shot_frame *f, const struct shot_opts *o)
{
	int w = o->region ? o->rw : (int)f->info.width, h = o->region ? o->rh : (int)f->info.height;
	int edge = w > h ? w : h;

	return edge > THUMB_EDGE ? (double)THUMB_EDGE / edge : 1;
}

/* ---- reading ------------------------------------------------------------- */

void screen_opts_init(struct screen_opts *o)
{
	memset(o, 0, sizeof *o);
	shot_opts_init(&o->shot);
	snprintf(o->language, sizeof o->language, "%s", SCREEN_LANGUAGE_DEFAULT);
}

/* Reads the text of frame f into *out. */
static enum shot_status read_frame(const struct device_ref *d, const struct screen_opts *o,
                                   const struct shot_frame *f, struct screen_text *out,
                                   char *why, size_t len)
{
	struct img im;
	enum shot_status st;

	ocr_result_free(&out->ocr);
	st = shot_decode(d, f, &o->shot, 1, &im, &out->screen_w, &out->screen_h, why, len);
	if (st != SHOT_OK)
		return st;
	out->seq = f->info.seq;
	out->capture_ns = f->info.capture_ns;
	out->age_ms = (now_wall_ns() - f->info.capture_ns) / 1000000u;
	if (ocr_read(&im, o->language, &out->ocr, why, len) < 0)
		st = SHOT_DEVICE;
	img_free(&im);
	return st;
}

enum shot_status screen_read(const struct device_ref *d, const struct screen_opts *o,
                             struct screen_text *out, char *why, size_t len)
{
	struct shot_frame f = { .data = BUF_INIT };
	enum shot_status st;

	memset(out, 0, sizeof *out);
	if (ocr_language_check(o->language, why, len) < 0)
		return SHOT_BAD_REQUEST;
	st = shot_frame_get(d, o->shot.max_age_ms, &f, why, len);
	if (st == SHOT_OK)
		st = read_frame(d, o, &f, out, why, len);
	buf_free(&f.data);
	return st;
}

void screen_text_cleanup(struct screen_text *t)
{
	ocr_result_free(&t->ocr);
}

/* Adds what a reading saw and when to o. */
static void add_frame_fields(json_object *o, const struct screen_opts *opts,
                             const struct screen_text *t)
{
	char when[32];
	struct tm tm;
	time_t secs = (time_t)(t->capture_ns / 1000000000u);

	gmtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "screen_width", json_object_new_int(t->screen_w));
	json_object_object_add(o, "screen_height", json_object_new_int(t->screen_h));
	if (opts->shot.region) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "x", json_object_new_int(opts->shot.rx));
		json_object_object_add(r, "y", json_object_new_int(opts->shot.ry));
		json_object_object_add(r, "width", json_object_new_int(opts->shot.rw));
		json_object_object_add(r, "height", json_object_new_int(opts->shot.rh));
		json_object_object_add(o, "region", r);
	}
	json_object_object_add(o, "captured_at", json_object_new_string(when));
	json_object_object_add(o, "frame", json_object_new_int64((int64_t)t->seq));
	json_object_object_add(o, "age_ms", json_object_new_int64((int64_t)t->age_ms));
}

json_object *screen_text_json(const struct device_ref *d, const struct screen_opts *o,
                              const struct screen_text *t)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "device", json_object_new_string(d->name));
	json_object_object_add(j, "text", json_object_new_string(t->ocr.text ? t->ocr.text : ""));
	json_object_object_add(j, "lines", json_object_new_int(t->ocr.lines));
	json_object_object_add(j, "truncated", json_object_new_boolean(t->ocr.truncated));
	json_object_object_add(j, "language", json_object_new_string(o->language));
	json_object_object_add(j, "confidence", json_object_new_int(t->ocr.confidence));
	add_frame_fields(j, o, t);
	json_object_object_add(j, "ocr_ms", json_object_new_int64((int64_t)t->ocr.ocr_ms));
	json_object_object_add(j, "ocr_init_ms", json_object_new_int64((int64_t)t->ocr.init_ms));
	return j;
}

/* ---- waiting ------------------------------------------------------------- */

/* The last non-empty line of text, cut to QUOTE_MAX bytes, into out. */
static void last_line(const char *text, char *out, size_t size)
{
	const char *end = text + strlen(text), *start = end;

	while (start > text && start[-1] != '\n')
		start--;
	snprintf(out, size, "%.*s%s", (int)(end - start > QUOTE_MAX ? QUOTE_MAX : end - start),
	         start, end - start > QUOTE_MAX ? "..." : "");
}

/* The sentence a progress notification carries. */
static void progress_message(const struct screen_wait *w, const struct screen_wait_result *r,
                             uint64_t elapsed, char *out, size_t size)
{
	char quote[QUOTE_MAX + 8] = "";

	if (w->pattern == NULL) {
		snprintf(out, size, "No change yet after %.1f s of %.1f s (%.3f%% of the screen "
		         "differs).", elapsed / 1000.0, w->timeout_ms / 1000.0, r->changed_percent);
		return;
	}
	if (r->last.ocr.text != NULL)
		last_line(r->last.ocr.text, quote, sizeof quote);
	snprintf(out, size, "Not on the screen yet after %.1f s of %.1f s; last line read: "
	         "\"%s\" (%d lines).", elapsed / 1000.0, w->timeout_ms / 1000.0, quote,
	         r->last.ocr.lines);
}

int screen_wait_setup(struct screen_wait *w, struct screen_pattern *p, const char *text,
                      bool regex, bool match_case, bool change, char *why, size_t len)
{
	screen_opts_init(&w->read);
	w->pattern = NULL;
	w->change_percent = SCREEN_CHANGE_DEFAULT;
	w->timeout_ms = SCREEN_WAIT_DEFAULT_MS;
	w->interval_ms = SCREEN_INTERVAL_DEFAULT_MS;
	memset(p, 0, sizeof *p);
	if ((text != NULL) == change) {
		snprintf(why, len, "Say what to wait for with exactly one of 'text' (words to appear "
		         "on the screen) and 'change': true (any change of the screen)%s.",
		         change ? ", not both" : "");
		return -1;
	}
	if ((regex || match_case) && text == NULL) {
		snprintf(why, len, "'regex' and 'match_case' apply to 'text' only.");
		return -1;
	}
	if (text == NULL)
		return 0;
	if (screen_pattern_init(p, text, regex, match_case, why, len) < 0)
		return -1;
	w->pattern = p;
	return 0;
}

enum shot_status screen_wait(const struct device_ref *d, const struct screen_wait *w,
                             struct screen_wait_result *r, char *why, size_t len)
{
	struct shot_frame f = { .data = BUF_INIT };
	struct img base = { 0 }, seen = { 0 }, thumb = { 0 };
	const struct shot_opts *o = &w->read.shot;
	uint64_t start = now_mono_ns(), elapsed = 0;
	enum shot_status st;
	int sw = 0, sh = 0;

	memset(r, 0, sizeof *r);
	if (w->pattern != NULL && ocr_language_check(w->read.language, why, len) < 0)
		return SHOT_BAD_REQUEST;
	/* The screen at the start: what a change is measured from, or read at once. */
	st = shot_frame_get(d, o->max_age_ms, &f, why, len);
	if (st == SHOT_OK)
		st = shot_decode(d, &f, o, thumb_scale(&f, o), &base, &sw, &sh, why, len);
	if (st == SHOT_OK && w->pattern != NULL) {
		r->reads++;
		st = read_frame(d, &w->read, &f, &r->last, why, len);
		r->found = st == SHOT_OK &&
		           screen_pattern_find(w->pattern, r->last.ocr.text, r->line, sizeof r->line);
	}
	r->frames = st == SHOT_OK;
	r->last.screen_w = sw;
	r->last.screen_h = sh;
	r->last.seq = f.info.seq;
	r->last.capture_ns = f.info.capture_ns;
	seen = base;
	while (st == SHOT_OK && !r->found) {
		char msg[256];
		int left, got;
		long long changed;

		elapsed = (now_mono_ns() - start) / 1000000u;
		left = w->timeout_ms - (int)elapsed;
		if (left <= 0)
			break;
		progress_message(w, r, elapsed, msg, sizeof msg);
		if (w->progress != NULL)
			w->progress(w->ctx, elapsed, w->timeout_ms, msg);
		if (w->sleep(w->ctx, w->interval_ms < left ? w->interval_ms : left) != 0) {
			r->cancelled = true;
			break;
		}
		elapsed = (now_mono_ns() - start) / 1000000u;
		left = w->timeout_ms - (int)elapsed;
		if (left <= 0)
			break;
		got = shot_frame_next(d, f.info.seq, left < FRAME_STEP_MS ? left : FRAME_STEP_MS, &f,
		                      &st, why, len);
		if (got <= 0)
			continue;
		r->frames++;
		r->last.seq = f.info.seq;
		r->last.capture_ns = f.info.capture_ns;
		st = shot_decode(d, &f, o, thumb_scale(&f, o), &thumb, &sw, &sh, why, len);
		if (st != SHOT_OK)
			break;
		if (w->pattern == NULL) {
			r->changed_percent = screen_diff(&base, &thumb, &changed);
			r->found = changed > 0 && r->changed_percent >= w->change_percent;
			img_free(&thumb);
			continue;
		}
		/* Read again only what looks different from the last reading. */
		screen_diff(&seen, &thumb, &changed);
		if (changed == 0) {
			img_free(&thumb);
			continue;
		}
		if (seen.px != base.px)
			img_free(&seen);
		seen = thumb;
		thumb = (struct img){ 0 };
		r->reads++;
		st = read_frame(d, &w->read, &f, &r->last, why, len);
		r->found = st == SHOT_OK &&
		           screen_pattern_find(w->pattern, r->last.ocr.text, r->line, sizeof r->line);
	}
	r->elapsed_ms = (now_mono_ns() - start) / 1000000u;
	r->last.age_ms = r->last.capture_ns ? (now_wall_ns() - r->last.capture_ns) / 1000000u : 0;
	if (seen.px != base.px)
		img_free(&seen);
	img_free(&base);
	img_free(&thumb);
	buf_free(&f.data);
	return st;
}

void screen_wait_result_cleanup(struct screen_wait_result *r)
{
	screen_text_cleanup(&r->last);
}

json_object *screen_wait_json(const struct device_ref *d, const struct screen_wait *w,
                              const struct screen_wait_result *r)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "device", json_object_new_string(d->name));
	json_object_object_add(j, "found", json_object_new_boolean(r->found));
	json_object_object_add(j, "waited_for", json_object_new_string(w->pattern ? "text" : "change"));
	json_object_object_add(j, "elapsed_ms", json_object_new_int64((int64_t)r->elapsed_ms));
	json_object_object_add(j, "timeout_ms", json_object_new_int(w->timeout_ms));
	if (w->pattern != NULL) {
		json_object_object_add(j, "line", r->found ? json_object_new_string(r->line) : NULL);
		json_object_object_add(j, "text", json_object_new_string(r->last.ocr.text ? r->last.ocr.text : ""));
		json_object_object_add(j, "truncated", json_object_new_boolean(r->last.ocr.truncated));
		json_object_object_add(j, "language", json_object_new_string(w->read.language));
	} else {
		json_object_object_add(j, "changed_percent",
		                       json_object_new_double(round(r->changed_percent * 1000) / 1000));
	}
	json_object_object_add(j, "frames_seen", json_object_new_int(r->frames));
	json_object_object_add(j, "reads", json_object_new_int(r->reads));
	add_frame_fields(j, &w->read, &r->last);
	return j;
}
