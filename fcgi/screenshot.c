/*
 * screenshot.c - a device's screen as a caller asked for it, for the MCP
 * tool get_screenshot and GET /api/v1/devices/{id}/screenshot alike.
 *
 * Frames come from the capture worker's shared memory (shared/frame.c): a
 * FastCGI worker never talks to a device. A JPEG frame is passed on as it
 * is when nothing is asked of it; anything else (PNG, a region, a width,
 * enhance, a raw frame) is decoded, transformed and encoded here (image.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fcgi.h"
#include "frame.h"

#define WAIT_MS 10000		/* first frame of a NanoKVM: 5-10 s (nanokvm.md §11) */
#define MAX_AGE_DEFAULT_MS 1000
#define IMAGE_MAX (3750u * 1024u)	/* about 5 MB once base64 (mcp.md §7) */
#define JPEG_QUALITY 80
#define SHRINK_STEP 0.75	/* each retry when an encoded picture is too large */

/* This process's reader of the frame store, attached on first use. */
static struct shm_store *frames;

void shot_opts_init(struct shot_opts *o)
{
	memset(o, 0, sizeof *o);
	o->max_age_ms = MAX_AGE_DEFAULT_MS;
	o->format = SHOT_JPEG;
}

int shot_parse_region(const char *s, struct shot_opts *o, char *why, size_t len)
{
	long long v[4];
	const char *err;
	char *copy = xmalloc(strlen(s) + 1), *p = copy, *part;
	int n = 0;

	strcpy(copy, s);
	while ((part = strsep(&p, ",")) != NULL) {
		if (n == 4 || parse_ll(part, n < 2 ? 0 : 1, IMG_SIDE_MAX, &v[n], &err) < 0) {
			n = -1;
			break;
		}
		n++;
	}
	free(copy);
	if (n != 4) {
		snprintf(why, len, "'region' must be x,y,width,height: four integers, x and y from "
		         "0, width and height from 1 to %d", IMG_SIDE_MAX);
		return -1;
	}
	o->region = true;
	o->rx = (int)v[0], o->ry = (int)v[1], o->rw = (int)v[2], o->rh = (int)v[3];
	return 0;
}

int shot_screen_size(const struct device_ref *d, int *w, int *h)
{
	struct shm_frame_info fi;
	int slot;

	if (frames != NULL && shm_reader_stale(frames)) {
		shm_close(frames);
		frames = NULL;
	}
	if (frames == NULL && shm_attach(conf_str(CONF_SHM_NAME), &frames) < 0)
		return -1;
	if ((slot = shm_find(frames, (uint64_t)d->id)) < 0)
		return -1;
	/* A zero-sized read fills the frame's description only. */
	if (shm_read(frames, slot, &fi, NULL, 0) == 0 || errno != ENOBUFS ||
	    fi.device_id != (uint64_t)d->id || fi.width == 0 || fi.height == 0)
		return -1;
	*w = (int)fi.width;
	*h = (int)fi.height;
	return 0;
}

/* The sentence and status for a frame_get() that gave no frame. */
static enum shot_status explain(const struct device_ref *d, enum frame_status st,
                                const struct ctl_session_reply *r, const char *detail,
                                char *why, size_t len)
{
	switch (st) {
	case FRAME_NO_DEVICE:
		snprintf(why, len, "The device '%s' is disabled or was removed; list_devices shows "
		         "the devices you can use.", d->name);
		return SHOT_NO_DEVICE;
	case FRAME_UNAVAILABLE:
		snprintf(why, len, "No screenshot of '%s': the capture service is unavailable (%s). "
		         "Try again in a few seconds.", d->name, detail);
		return SHOT_UNAVAILABLE;
	case FRAME_DEVICE_ERROR:
	case FRAME_TIMEOUT:
		if (r->error == SE_AUTH) {
			snprintf(why, len, "No screenshot of '%s': the device refused its stored "
			         "username and password (%s). An administrator must update the "
			         "device's credentials.", d->name, r->why);
			return SHOT_AUTH;
		}
		if (r->error == SE_NO_SIGNAL) {
			snprintf(why, len, "No screenshot of '%s': no signal. The device is online but "
			         "reports no HDMI signal: the machine is off or its display is asleep. "
			         "Power it on or wake it (a key press), then try again.", d->name);
			return SHOT_DEVICE;
		}
		if (r->error == SE_UNSUPPORTED) {
			snprintf(why, len, "No screenshot of '%s': kvmgate cannot show the screen of "
			         "%s %s device yet.", d->name, strchr("aeiou", d->kind[0]) ? "an" : "a",
			         d->kind);
			return SHOT_UNSUPPORTED;
		}
		if (r->error == SE_CONFIG) {
			snprintf(why, len, "No screenshot of '%s': the device is not set up correctly "
			         "(%s). An administrator must fix the device's settings.", d->name,
			         r->why);
			return SHOT_DEVICE;
		}
		snprintf(why, len, "No screenshot of '%s' within %d s: %s. Check that the device "
		         "is powered and reachable, then try again.", d->name, WAIT_MS / 1000,
		         detail);
		return SHOT_DEVICE;
	case FRAME_OK:
		break;
	}
	return SHOT_OK;
}

/* Whether the caller asked for nothing but the frame as it is. */
static bool nothing_asked(const struct shot_opts *o)
{
	return o->format == SHOT_JPEG && o->max_width == 0 && !o->region && !o->enhance;
}

/* Whether o's region leaves the sw x sh screen of d; why then says so. */
static bool region_outside(const struct device_ref *d, const struct shot_opts *o, int sw, int sh,
                           char *why, size_t len)
{
	if (!o->region || (o->rx <= sw - o->rw && o->ry <= sh - o->rh))
		return false;
	snprintf(why, len, "The region %dx%d at %d,%d is not inside the screen of '%s', "
	         "which is %dx%d: x + width must be at most %d and y + height at most %d.",
	         o->rw, o->rh, o->rx, o->ry, d->name, sw, sh, sw, sh);
	return true;
}

/*
 * The picture of frame fi (bytes in frame) transformed as o asks into out:
 * the region checked against the screen, the target size worked out, the
 * JPEG decoded already scaled in the DCT when it shrinks anyway, cropped,
 * scaled to the target by area averaging, enhanced, encoded. Returns
 * SHOT_OK, or why not with why.
 */
static enum shot_status transform(const struct device_ref *d, const struct shot_opts *o,
                                  const struct shm_frame_info *fi, const struct buf *frame,
                                  struct shot *out, char *why, size_t len)
{
	struct img im;
	char detail[200];
	double scale = 1;
	bool enhanced = false, jpeg = fi->format == SHM_FMT_JPEG;
	int rc = 0, sw = (int)fi->width, sh = (int)fi->height, cw, ch, tw, th;

	if (jpeg && img_jpeg_size(frame->data, fi->len, &sw, &sh) < 0)
		rc = -1, snprintf(detail, sizeof detail, "a JPEG without a readable header");
	else if (!jpeg && fi->format != SHM_FMT_RGBX32 && fi->format != SHM_FMT_BGRX32)
		rc = -1, snprintf(detail, sizeof detail, "format %d", fi->format);
	if (rc < 0) {
		snprintf(why, len, "The screen of '%s' came as a frame this gateway cannot read: %s.",
		         d->name, detail);
		return SHOT_DEVICE;
	}
	out->screen_width = sw;
	out->screen_height = sh;
	if (region_outside(d, o, sw, sh, why, len))
		return SHOT_BAD_REQUEST;
	cw = o->region ? o->rw : sw;
	ch = o->region ? o->rh : sh;
	if (o->max_width > 0 && cw > o->max_width)
		scale = (double)o->max_width / cw;
	else if (o->max_width == 0 && !o->region)
		scale = img_llm_scale(cw, ch);
	tw = (int)lround(cw * scale);
	th = (int)lround(ch * scale);
	tw = tw < 1 ? 1 : tw;
	th = th < 1 ? 1 : th;
	if (jpeg)
		rc = img_from_jpeg(frame->data, fi->len, scale, &im, detail, sizeof detail);
	else
		rc = img_from_raw(frame->data, fi->len, sw, sh, fi->format == SHM_FMT_BGRX32, &im,
		                  detail, sizeof detail);
	if (rc < 0) {
		snprintf(why, len, "The screen of '%s' came as a frame this gateway cannot read: %s.",
		         d->name, detail);
		return SHOT_DEVICE;
	}
	if (o->region) {
		/* The region in the decoded picture's pixels (it may be DCT-scaled),
		 * cut and shrunk in one pass. */
		int x0 = (int)((long long)o->rx * im.w / sw), y0 = (int)((long long)o->ry * im.h / sh);
		int x1 = (int)(((long long)(o->rx + o->rw) * im.w + sw - 1) / sw);
		int y1 = (int)(((long long)(o->ry + o->rh) * im.h + sh - 1) / sh);
		x1 = x1 > im.w ? im.w : x1 <= x0 ? x0 + 1 : x1;
		y1 = y1 > im.h ? im.h : y1 <= y0 ? y0 + 1 : y1;
		if (img_scale_rect(&im, x0, y0, x1 - x0, y1 - y0, tw < x1 - x0 ? tw : x1 - x0,
		                   th < y1 - y0 ? th : y1 - y0) < 0) {
			img_free(&im);
			snprintf(why, len, "The region could not be cut from the screen of '%s'.", d->name);
			return SHOT_DEVICE;
		}
	}
	for (;;) {
		img_scale(&im, tw < im.w ? tw : im.w, th < im.h ? th : im.h);
		if (o->enhance && !enhanced) {
			img_enhance(&im);
			enhanced = true;
		}
		rc = o->format == SHOT_PNG ? img_to_png(&im, &out->data)
		                           : img_to_jpeg(&im, JPEG_QUALITY, &out->data);
		if (rc < 0 || out->data.len <= IMAGE_MAX || im.w < 64 || im.h < 64)
			break;
		/* Too large for a model: shrink and try again (enhance runs once). */
		tw = (int)lround(im.w * SHRINK_STEP);
		th = (int)lround(im.h * SHRINK_STEP);
	}
	out->width = im.w;
	out->height = im.h;
	img_free(&im);
	if (rc < 0 || out->data.len > IMAGE_MAX) {
		snprintf(why, len, "The screenshot of '%s' could not be encoded within %u bytes; ask "
		         "for a region or a smaller max_width.", d->name, IMAGE_MAX);
		return SHOT_DEVICE;
	}
	out->mime = o->format == SHOT_PNG ? "image/png" : "image/jpeg";
	return SHOT_OK;
}

enum shot_status shot_frame_get(const struct device_ref *d, long long max_age_ms,
                                struct shot_frame *f, char *why, size_t len)
{
	struct ctl_session_reply r;
	uint64_t start = now_mono_ns();
	enum frame_status st;
	char detail[256];

	/* The latest frame if fresh enough; else wait for the slot's next one. */
	st = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &frames,
	               (uint64_t)d->id, 0, WAIT_MS, &f->info, &f->data, &r, detail, sizeof detail);
	if (st == FRAME_OK &&
	    (now_wall_ns() - f->info.capture_ns) / 1000000u > (uint64_t)max_age_ms) {
		int left = WAIT_MS - (int)((now_mono_ns() - start) / 1000000u);
		st = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &frames,
		               (uint64_t)d->id, f->info.seq, left > 0 ? left : 0, &f->info, &f->data,
		               &r, detail, sizeof detail);
	}
	return st == FRAME_OK ? SHOT_OK : explain(d, st, &r, detail, why, len);
}

int shot_frame_next(const struct device_ref *d, uint64_t after_seq, int timeout_ms,
                    struct shot_frame *f, enum shot_status *st, char *why, size_t len)
{
	struct ctl_session_reply r;
	enum frame_status fs;
	char detail[256];

	fs = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &frames,
	               (uint64_t)d->id, after_seq, timeout_ms, &f->info, &f->data, &r, detail,
	               sizeof detail);
	if (fs == FRAME_OK)
		return 1;
	if (fs == FRAME_TIMEOUT)
		return 0;
	*st = explain(d, fs, &r, detail, why, len);
	return -1;
}

enum shot_status shot_decode(const struct device_ref *d, const struct shot_frame *f,
                             const struct shot_opts *o, double scale, struct img *out,
                             int *screen_w, int *screen_h, char *why, size_t len)
{
	const struct shm_frame_info *fi = &f->info;
	bool jpeg = fi->format == SHM_FMT_JPEG;
	int rc = 0, sw = (int)fi->width, sh = (int)fi->height, cw, ch;
	char detail[200];

	memset(out, 0, sizeof *out);
	if (jpeg && img_jpeg_size(f->data.data, fi->len, &sw, &sh) < 0)
		rc = -1, snprintf(detail, sizeof detail, "a JPEG without a readable header");
	else if (!jpeg && fi->format != SHM_FMT_RGBX32 && fi->format != SHM_FMT_BGRX32)
		rc = -1, snprintf(detail, sizeof detail, "format %d", fi->format);
	if (rc == 0) {
		*screen_w = sw;
		*screen_h = sh;
		if (region_outside(d, o, sw, sh, why, len))
			return SHOT_BAD_REQUEST;
		rc = jpeg ? img_from_jpeg(f->data.data, fi->len, scale, out, detail, sizeof detail)
		          : img_from_raw(f->data.data, fi->len, sw, sh, fi->format == SHM_FMT_BGRX32,
		                         out, detail, sizeof detail);
	}
	if (rc < 0) {
		snprintf(why, len, "The screen of '%s' came as a frame this gateway cannot read: %s.",
		         d->name, detail);
		return SHOT_DEVICE;
	}
	cw = (int)lround((o->region ? o->rw : sw) * scale);
	ch = (int)lround((o->region ? o->rh : sh) * scale);
	cw = cw < 1 ? 1 : cw;
	ch = ch < 1 ? 1 : ch;
	if (o->region) {
		/* The region in the decoded picture's pixels (it may be DCT-scaled). */
		int x0 = (int)((long long)o->rx * out->w / sw), y0 = (int)((long long)o->ry * out->h / sh);
		int x1 = (int)(((long long)(o->rx + o->rw) * out->w + sw - 1) / sw);
		int y1 = (int)(((long long)(o->ry + o->rh) * out->h + sh - 1) / sh);
		x1 = x1 > out->w ? out->w : x1 <= x0 ? x0 + 1 : x1;
		y1 = y1 > out->h ? out->h : y1 <= y0 ? y0 + 1 : y1;
		if (img_scale_rect(out, x0, y0, x1 - x0, y1 - y0, cw < x1 - x0 ? cw : x1 - x0,
		                   ch < y1 - y0 ? ch : y1 - y0) < 0) {
			img_free(out);
			snprintf(why, len, "The region could not be cut from the screen of '%s'.", d->name);
			return SHOT_DEVICE;
		}
	}
	img_scale(out, cw < out->w ? cw : out->w, ch < out->h ? ch : out->h);
	return SHOT_OK;
}

enum shot_status shot_take(const struct device_ref *d, const struct shot_opts *o,
                           struct shot *out, char *why, size_t len)
{
	struct shot_frame f = { .data = BUF_INIT };
	struct shm_frame_info *fi = &f.info;
	enum shot_status ss;

	memset(out, 0, sizeof *out);
	if ((ss = shot_frame_get(d, o->max_age_ms, &f, why, len)) != SHOT_OK) {
		buf_free(&f.data);
		return ss;
	}
	out->seq = fi->seq;
	out->capture_ns = fi->capture_ns;
	out->age_ms = (now_wall_ns() - fi->capture_ns) / 1000000u;
	if (fi->format == SHM_FMT_JPEG && nothing_asked(o) && fi->len <= IMAGE_MAX) {
		out->data = f.data;
		out->mime = "image/jpeg";
		out->width = out->screen_width = (int)fi->width;
		out->height = out->screen_height = (int)fi->height;
		out->passthrough = true;
		return SHOT_OK;
	}
	ss = transform(d, o, fi, &f.data, out, why, len);
	buf_free(&f.data);
	if (ss != SHOT_OK)
		buf_free(&out->data);
	return ss;
}
