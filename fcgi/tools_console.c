/*
 * tools_console.c - tools about a device's screen: get_screenshot. The row
 * (schema, annotations, action console.read, .device) is in tools.c; the
 * device is already found and authorised in c->device. The picture itself
 * is screenshot.c's, shared with the REST route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fcgi.h"

/* An integer member of o, or def when absent. */
static long long int_arg(json_object *o, const char *name, long long def)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_int64(v) : def;
}

/* A string member of o, or def when absent. */
static const char *str_arg(json_object *o, const char *name, const char *def)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : def;
}

int tool_get_screenshot(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	const struct device_ref *d = &c->device;
	struct shot_opts o;
	struct shot shot;
	json_object *region, *img;
	char why[512], when[32], size[64] = "";
	struct tm tm;
	time_t secs;
	char *b64;

	shot_opts_init(&o);
	o.max_age_ms = int_arg(args, "max_age_ms", o.max_age_ms);
	o.format = strcmp(str_arg(args, "format", "jpeg"), "png") == 0 ? SHOT_PNG : SHOT_JPEG;
	o.max_width = (int)int_arg(args, "max_width", 0);
	o.enhance = strcmp(str_arg(args, "enhance", "none"), "llm") == 0;
	if (json_object_object_get_ex(args, "region", &region)) {
		o.region = true;
		o.rx = (int)int_arg(region, "x", 0);
		o.ry = (int)int_arg(region, "y", 0);
		o.rw = (int)int_arg(region, "width", 1);
		o.rh = (int)int_arg(region, "height", 1);
	}
	if (shot_take(d, &o, &shot, why, sizeof why) != SHOT_OK) {
		tool_fail(res, "%s", why);
		return RPC_OK;
	}
	secs = (time_t)(shot.capture_ns / 1000000000u);
	gmtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!shot.passthrough)
		snprintf(size, sizeof size, " (screen %dx%d%s%s)", shot.screen_width,
		         shot.screen_height, o.region ? ", a region" : ", scaled",
		         o.enhance ? ", enhanced" : "");
	tool_text(res, "%s: %dx%d %s%s captured %s (%llu ms ago), frame %llu", d->name,
	          shot.width, shot.height, o.format == SHOT_PNG ? "PNG" : "JPEG", size, when,
	          (unsigned long long)shot.age_ms, (unsigned long long)shot.seq);
	b64 = base64_encode(shot.data.data, shot.data.len);
	img = json_object_new_object();
	json_object_object_add(img, "type", json_object_new_string("image"));
	json_object_object_add(img, "data", json_object_new_string(b64));
	json_object_object_add(img, "mimeType", json_object_new_string(shot.mime));
	tool_content(res, img);
	free(b64);
	buf_free(&shot.data);
	return RPC_OK;
}

/* A region argument {x, y, width, height} into o; absent: the whole screen. */
static void region_arg(json_object *args, struct shot_opts *o)
{
	json_object *region;

	if (!json_object_object_get_ex(args, "region", &region))
		return;
	o->region = true;
	o->rx = (int)int_arg(region, "x", 0);
	o->ry = (int)int_arg(region, "y", 0);
	o->rw = (int)int_arg(region, "width", 1);
	o->rh = (int)int_arg(region, "height", 1);
}

/* A boolean member of o, false when absent. */
static bool bool_arg(json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) && json_object_get_boolean(v);
}

int tool_read_screen_text(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	const struct device_ref *d = &c->device;
	struct screen_opts o;
	struct screen_text t;
	char why[512];

	screen_opts_init(&o);
	o.shot.max_age_ms = int_arg(args, "max_age_ms", o.shot.max_age_ms);
	if (str_arg(args, "language", NULL) != NULL)
		snprintf(o.language, sizeof o.language, "%s", str_arg(args, "language", NULL));
	region_arg(args, &o.shot);
	if (screen_read(d, &o, &t, why, sizeof why) != SHOT_OK) {
		tool_fail(res, "%s", why);
		return RPC_OK;
	}
	tool_text(res, "%s: %d line%s read from %s%dx%d screen, frame %llu (%llu ms old)%s%s",
	          d->name, t.ocr.lines, t.ocr.lines == 1 ? "" : "s", o.shot.region ? "a region of the "
	          : "the ", t.screen_w, t.screen_h, (unsigned long long)t.seq,
	          (unsigned long long)t.age_ms,
	          t.ocr.truncated ? "; the text was cut at " STR(OCR_TEXT_MAX) " bytes: ask for a "
	          "region to read the rest" : "", t.ocr.lines ? ":" : "; no text found.");
	if (t.ocr.lines > 0)
		tool_text(res, "%s", t.ocr.text);
	tool_structured(res, screen_text_json(d, &o, &t));
	screen_text_cleanup(&t);
	return RPC_OK;
}

/* What a wait over MCP needs besides the tool call: cancellation and progress. */
struct mcp_wait {
	struct mcp_call *c;
	int rc;				/* what mcp_sleep() returned when it stopped */
};

static int mcp_wait_sleep(void *ctx, int ms)
{
	struct mcp_wait *mw = ctx;

	/* A client that left cannot be answered: stop as if it had cancelled. */
	if (mw->c->req->stream_broken) {
		mw->rc = RPC_CANCELLED;
		return 1;
	}
	mw->rc = mcp_sleep(mw->c, ms);
	return mw->rc != RPC_OK;
}

static void mcp_wait_progress(void *ctx, uint64_t elapsed_ms, int timeout_ms, const char *message)
{
	struct mcp_wait *mw = ctx;

	mcp_progress(mw->c, (double)elapsed_ms, timeout_ms, message);
}

int tool_wait_for_screen(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	const struct device_ref *d = &c->device;
	struct mcp_wait mw = { c, RPC_OK };
	struct screen_pattern pattern;
	struct screen_wait w = { .sleep = mcp_wait_sleep, .progress = mcp_wait_progress, .ctx = &mw };
	struct screen_wait_result r;
	const char *text = str_arg(args, "text", NULL);
	bool change = bool_arg(args, "change");
	char why[512];
	int rc = RPC_OK;

	memset(&pattern, 0, sizeof pattern);
	if (screen_wait_setup(&w, &pattern, text, bool_arg(args, "regex"),
	                      bool_arg(args, "match_case"), change, why, sizeof why) < 0) {
		tool_fail(res, "%s", why);
		goto out;
	}
	w.read.shot.max_age_ms = int_arg(args, "max_age_ms", w.read.shot.max_age_ms);
	if (str_arg(args, "language", NULL) != NULL)
		snprintf(w.read.language, sizeof w.read.language, "%s",
		         str_arg(args, "language", NULL));
	region_arg(args, &w.read.shot);
	w.timeout_ms = (int)int_arg(args, "timeout_ms", SCREEN_WAIT_DEFAULT_MS);
	w.interval_ms = (int)int_arg(args, "interval_ms", SCREEN_INTERVAL_DEFAULT_MS);
	if (json_object_object_get_ex(args, "change_percent", NULL))
		w.change_percent = json_object_get_double(json_object_object_get(args,
		                                          "change_percent"));
	if (screen_wait(d, &w, &r, why, sizeof why) != SHOT_OK) {
		tool_fail(res, "%s", why);
		goto out;
	}
	if (r.cancelled) {
		rc = mw.rc == RPC_CANCELLED ? RPC_CANCELLED : mw.rc;
	} else if (r.found && text != NULL) {
		tool_text(res, "%s: found after %llu ms on the line \"%s\" (frame %llu).", d->name,
		          (unsigned long long)r.elapsed_ms, r.line, (unsigned long long)r.last.seq);
	} else if (r.found) {
		tool_text(res, "%s: the screen changed after %llu ms (%.3f%% of %s differs; frame "
		          "%llu).", d->name, (unsigned long long)r.elapsed_ms, r.changed_percent,
		          w.read.shot.region ? "the region" : "it", (unsigned long long)r.last.seq);
	} else if (text != NULL) {
		tool_text(res, "%s: not found within %d ms (%d frame%s looked at, %d read). The "
		          "text last read is below%s.", d->name, w.timeout_ms, r.frames,
		          r.frames == 1 ? "" : "s", r.reads, r.last.ocr.lines ? "" : ": none");
		if (r.last.ocr.lines > 0)
			tool_text(res, "%s", r.last.ocr.text);
	} else {
		tool_text(res, "%s: no change within %d ms (%.3f%% of %s differs, below %.3f%%).",
		          d->name, w.timeout_ms, r.changed_percent,
		          w.read.shot.region ? "the region" : "the screen", w.change_percent);
	}
	if (rc == RPC_OK)
		tool_structured(res, screen_wait_json(d, &w, &r));
	screen_wait_result_cleanup(&r);
out:
	screen_pattern_cleanup(&pattern);
	return rc;
}
