/*
 * tools_console.c - tools about a device's screen: get_screenshot. The row
 * (schema, annotations, action console.read, .device) is in tools.c; the
 * device is already found and authorised in c->device.
 *
 * Frames come from the capture worker's shared memory (shared/frame.c):
 * a FastCGI worker never talks to a device. JPEG frames are passed on as
 * they are, without re-encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "fcgi.h"
#include "frame.h"

#define WAIT_MS 10000		/* first frame of a NanoKVM: 5-10 s (nanokvm.md §11) */
#define MAX_AGE_DEFAULT_MS 1000
#define IMAGE_MAX (3750u * 1024u)	/* about 5 MB once base64 (mcp.md §7) */

/* This process's reader of the frame store, attached on first use. */
static struct shm_store *frames;

/* What to tell the model when a device session gives no frame. */
static void explain(struct tool_result *res, const struct device_ref *d, enum frame_status st,
                    const struct ctl_session_reply *r, const char *why)
{
	switch (st) {
	case FRAME_NO_DEVICE:
		tool_fail(res, "The device '%s' is disabled or was removed; list_devices shows the "
		          "devices you can use.", d->name);
		break;
	case FRAME_UNAVAILABLE:
		tool_fail(res, "No screenshot of '%s': the capture service is unavailable (%s). "
		          "Try again in a few seconds.", d->name, why);
		break;
	case FRAME_DEVICE_ERROR:
	case FRAME_TIMEOUT:
		if (r->error == SE_AUTH)
			tool_fail(res, "No screenshot of '%s': the device refused its stored username "
			          "and password (%s). An administrator must update the device's "
			          "credentials.", d->name, r->why);
		else if (r->error == SE_UNSUPPORTED)
			tool_fail(res, "No screenshot of '%s': screenshots of %s devices are not "
			          "supported yet.", d->name, d->kind);
		else
			tool_fail(res, "No screenshot of '%s' within %d s: %s. Check that the device "
			          "is powered and reachable, then try again.", d->name, WAIT_MS / 1000,
			          why);
		break;
	case FRAME_OK:
		break;
	}
}

int tool_get_screenshot(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	const struct device_ref *d = &c->device;
	struct ctl_session_reply r;
	struct shm_frame_info fi;
	struct buf jpeg = BUF_INIT;
	long long max_age = MAX_AGE_DEFAULT_MS;
	uint64_t start = now_mono_ns(), age_ms;
	enum frame_status st;
	json_object *v, *img;
	char why[256], when[32];
	struct tm tm;
	time_t secs;
	char *b64;

	if (json_object_object_get_ex(args, "max_age_ms", &v))
		max_age = json_object_get_int64(v);
	/* The latest frame if fresh enough; else wait for the slot's next one. */
	st = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &frames,
	               (uint64_t)d->id, 0, WAIT_MS, &fi, &jpeg, &r, why, sizeof why);
	if (st == FRAME_OK && (now_wall_ns() - fi.capture_ns) / 1000000u > (uint64_t)max_age) {
		int left = WAIT_MS - (int)((now_mono_ns() - start) / 1000000u);
		st = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &frames,
		               (uint64_t)d->id, fi.seq, left > 0 ? left : 0, &fi, &jpeg, &r, why,
		               sizeof why);
	}
	if (st != FRAME_OK) {
		explain(res, d, st, &r, why);
		buf_free(&jpeg);
		return RPC_OK;
	}
	if (fi.format != SHM_FMT_JPEG || fi.len > IMAGE_MAX) {
		tool_fail(res, "The screen of '%s' came as a frame this gateway cannot send yet "
		          "(format %d, %u bytes).", d->name, fi.format, fi.len);
		buf_free(&jpeg);
		return RPC_OK;
	}
	age_ms = (now_wall_ns() - fi.capture_ns) / 1000000u;
	secs = (time_t)(fi.capture_ns / 1000000000u);
	gmtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	tool_text(res, "%s: %ux%u JPEG captured %s (%llu ms ago), frame %llu", d->name, fi.width,
	          fi.height, when, (unsigned long long)age_ms, (unsigned long long)fi.seq);
	b64 = base64_encode(jpeg.data, fi.len);
	img = json_object_new_object();
	json_object_object_add(img, "type", json_object_new_string("image"));
	json_object_object_add(img, "data", json_object_new_string(b64));
	json_object_object_add(img, "mimeType", json_object_new_string("image/jpeg"));
	tool_content(res, img);
	free(b64);
	buf_free(&jpeg);
	return RPC_OK;
}
