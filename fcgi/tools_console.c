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
