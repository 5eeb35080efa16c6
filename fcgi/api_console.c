/*
 * api_console.c - REST routes that look at or act on a device:
 * /api/v1/devices/{id}/screenshot, /screen/text, /screen/wait, /keys,
 * /text (typing), /mouse, /power, /media, /health. The route step has found {id} in the caller's organisation
 * (req->device), checked the action and, for writes, committed the audit
 * intent. The work is screenshot.c's, screentext.c's and devop.c's, the same code the MCP
 * tools run; here only parameters, confirmation and the HTTP answer.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fcgi.h"

static const char *const mouse_actions[] = { "move", "click", "scroll", NULL };
static const char *const buttons[] = { "left", "right", "middle", NULL };
static const char *const directions[] = { "down", "up", NULL };
static const char *const power_actions[] = {
	"on", "off", "off_hard", "reset", "cycle", "power_short", "power_long", NULL,
};
static const char *const media_as[] = { "cdrom", "disk", NULL };

const struct field keys_fields[] = {
	{ "keys", FIELD_KEYS, 1, 64, NULL, true,
	  "a key combination (\"ctrl+alt+delete\") or a list of them pressed in order" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

const struct field text_fields[] = {
	{ "text", FIELD_TEXT, 1, DEVOP_TEXT_MAX, NULL, true,
	  "the text to type; newline presses Enter, tab presses Tab" },
	{ "layout", FIELD_STRING, 1, 16, NULL, false, "keyboard layout of the machine (default us)" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

const struct field mouse_fields[] = {
	{ "action", FIELD_ENUM, 0, 0, mouse_actions, true, "what to do" },
	{ "x", FIELD_INT, 0, 16383, NULL, false,
	  "screen pixel from the left (move, scroll: required; click: with y, or neither)" },
	{ "y", FIELD_INT, 0, 16383, NULL, false, "screen pixel from the top" },
	{ "button", FIELD_ENUM, 0, 0, buttons, false, "click: default left" },
	{ "double", FIELD_BOOL, 0, 0, NULL, false, "click: a double click" },
	{ "amount", FIELD_INT, 1, 50, NULL, false, "scroll: wheel steps (default 3)" },
	{ "direction", FIELD_ENUM, 0, 0, directions, false, "scroll: default down" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

const struct field power_fields[] = {
	{ "action", FIELD_ENUM, 0, 0, power_actions, true,
	  "off, off_hard, reset, cycle and power_long need confirm" },
	{ "confirm", FIELD_BOOL, 0, 0, NULL, false,
	  "true to do an action that loses unsaved work" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

const struct field media_fields[] = {
	{ "image", FIELD_STRING, 1, 255, NULL, true, "an image name GET .../media lists" },
	{ "as", FIELD_ENUM, 0, 0, media_as, false, "default cdrom" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

const struct field screen_wait_fields[] = {
	{ "text", FIELD_STRING, 1, SCREEN_PATTERN_MAX, NULL, false,
	  "wait until a line read by OCR contains this (ignoring case and spaces)" },
	{ "regex", FIELD_BOOL, 0, 0, NULL, false, "text is a POSIX extended regular expression" },
	{ "match_case", FIELD_BOOL, 0, 0, NULL, false, "respect upper and lower case" },
	{ "change", FIELD_BOOL, 0, 0, NULL, false,
	  "true: wait until the screen changes instead (exactly one of text and change)" },
	{ "change_percent", FIELD_NUMBER, 0, 100, NULL, false,
	  "change: percent of the screen or region that must differ (default 0.01)" },
	{ "region", FIELD_STRING, 7, 40, NULL, false, "x,y,width,height: watch only this rectangle" },
	{ "timeout_ms", FIELD_INT, 100, SCREEN_WAIT_REST_MAX_MS, NULL, false,
	  "give up after this long (default 30000)" },
	{ "interval_ms", FIELD_INT, 100, 10000, NULL, false,
	  "look at the screen at most this often (default 500)" },
	{ "language", FIELD_STRING, 1, OCR_LANG_MAX, NULL, false,
	  "OCR language(s), e.g. eng or eng+deu (default eng)" },
	{ "max_age_ms", FIELD_INT, 0, 60000, NULL, false, "the first frame may be this old (default 1000)" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

/* Answers an operation that was not done: its status and sentence. */
static void fail(struct request *req, const struct devop_out *out)
{
	resp_error(req, devop_http_status(out->status), devop_code(out->status), "%s", out->why);
}

/* Answers a write that was done: {"device","done"}. */
static void done(struct request *req, const struct devop_out *out)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "device", json_object_new_string(req->device.name));
	json_object_object_add(o, "done", json_object_new_string(out->why));
	resp_json(req, 200, o);
}

/* Runs op kind with the body's fields as its arguments and answers. */
static int run(struct request *req, uint32_t kind, json_object *args)
{
	struct devop_out out = { 0 };

	if (devop_run(&req->device, kind, args, NULL, NULL, &out) == DEVOP_OK)
		done(req, &out);
	else
		fail(req, &out);
	devop_out_cleanup(&out);
	return 0;
}

/* Checks one enumerated query parameter; 0, or -1 after answering 400. */
static int enum_param(struct request *req, const char *name, const char *const *values,
                      const char **out)
{
	const char *v = request_param(req, name);
	struct buf b = BUF_INIT;

	if (v == NULL)
		return 0;
	for (const char *const *e = values; *e; e++)
		if (strcmp(*e, v) == 0) {
			*out = v;
			return 0;
		}
	for (const char *const *e = values; *e; e++)
		buf_printf(&b, "%s%s", b.len ? ", " : "", *e);
	resp_error(req, 400, "bad_request", "'%s' must be one of: %s", name, b.data);
	buf_free(&b);
	return -1;
}

/* Answers a screen that could not be looked at: the status of st and the sentence. */
static int shot_fail(struct request *req, enum shot_status st, const char *why)
{
	static const struct {
		int status;
		const char *code;
	} answers[] = {
		[SHOT_OK] = { 500, "internal" },
		[SHOT_BAD_REQUEST] = { 400, "bad_request" },
		[SHOT_NO_DEVICE] = { 404, "not_found" },
		[SHOT_UNAVAILABLE] = { 503, "capture_unavailable" },
		[SHOT_AUTH] = { 502, "device_auth_failed" },
		[SHOT_UNSUPPORTED] = { 501, "unsupported" },
		[SHOT_DEVICE] = { 504, "device_timeout" },
	};

	resp_error(req, answers[st].status, answers[st].code, "%s", why);
	return 0;
}

/* Reads a max_age_ms query parameter into *out; 0, or -1 after answering 400. */
static int max_age_param(struct request *req, long long *out)
{
	const char *v = request_param(req, "max_age_ms"), *err;

	if (v != NULL && parse_ll(v, 0, 60000, out, &err) < 0) {
		resp_error(req, 400, "bad_request", "'max_age_ms' must be an integer from 0 to 60000");
		return -1;
	}
	return 0;
}

int h_device_screenshot(struct request *req)
{
	static const char *const formats[] = { "jpeg", "png", NULL };
	static const char *const enhance[] = { "none", "llm", NULL };
	const char *format = "jpeg", *enh = "none", *v, *err;
	struct shot_opts o;
	struct shot shot;
	enum shot_status st;
	long long n;
	char why[512], hdr[64];

	shot_opts_init(&o);
	if (enum_param(req, "format", formats, &format) < 0 ||
	    enum_param(req, "enhance", enhance, &enh) < 0)
		return 0;
	o.format = strcmp(format, "png") == 0 ? SHOT_PNG : SHOT_JPEG;
	o.enhance = strcmp(enh, "llm") == 0;
	if ((v = request_param(req, "max_width")) != NULL) {
		if (parse_ll(v, 16, IMG_SIDE_MAX, &n, &err) < 0) {
			resp_error(req, 400, "bad_request", "'max_width' must be an integer from 16 to %d",
			           IMG_SIDE_MAX);
			return 0;
		}
		o.max_width = (int)n;
	}
	if (max_age_param(req, &o.max_age_ms) < 0)
		return 0;
	if ((v = request_param(req, "region")) != NULL &&
	    shot_parse_region(v, &o, why, sizeof why) < 0) {
		resp_error(req, 400, "bad_request", "%s", why);
		return 0;
	}
	st = shot_take(&req->device, &o, &shot, why, sizeof why);
	if (st != SHOT_OK)
		return shot_fail(req, st, why);
	resp_header(req, "Cache-Control", "no-store");
	snprintf(hdr, sizeof hdr, "%dx%d", shot.screen_width, shot.screen_height);
	resp_header(req, "X-Screen-Size", hdr);
	snprintf(hdr, sizeof hdr, "%llu", (unsigned long long)shot.seq);
	resp_header(req, "X-Frame-Seq", hdr);
	snprintf(hdr, sizeof hdr, "%llu", (unsigned long long)shot.age_ms);
	resp_header(req, "X-Frame-Age-Ms", hdr);
	resp_body(req, 200, shot.mime, shot.data.data, shot.data.len);
	buf_free(&shot.data);
	return 0;
}

int h_device_keys(struct request *req)
{
	json_object *b;

	if (body_parse(req, keys_fields, true, &b) < 0)
		return 0;
	run(req, OP_KEYS, b);
	json_object_put(b);
	return 0;
}

int h_device_text(struct request *req)
{
	json_object *b;

	if (body_parse(req, text_fields, true, &b) < 0)
		return 0;
	run(req, OP_TEXT, b);
	json_object_put(b);
	return 0;
}

int h_device_mouse(struct request *req)
{
	static const struct {
		const char *action;
		uint32_t op;
	} kinds[] = { { "move", OP_MOUSE_MOVE }, { "click", OP_MOUSE_CLICK },
	              { "scroll", OP_MOUSE_SCROLL } };
	json_object *b, *v;
	const char *action;

	if (body_parse(req, mouse_fields, true, &b) < 0)
		return 0;
	action = json_object_object_get_ex(b, "action", &v) ? json_object_get_string(v) : "";
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		if (strcmp(kinds[i].action, action) == 0)
			run(req, kinds[i].op, b);
	json_object_put(b);
	return 0;
}

int h_device_power_get(struct request *req)
{
	struct devop_out out = { 0 };

	if (devop_run(&req->device, OP_POWER_STATE, NULL, NULL, NULL, &out) != DEVOP_OK)
		fail(req, &out);
	else
		resp_json(req, 200, out.result != NULL ? json_object_get(out.result)
		                                       : json_object_new_object());
	devop_out_cleanup(&out);
	return 0;
}

/* Power actions that lose unsaved work, and what each does. */
static const struct {
	const char *action, *effect;
} destructive[] = {
	{ "off", "switches the machine off" }, { "off_hard", "cuts the machine's power" },
	{ "reset", "restarts the machine at once" },
	{ "cycle", "switches the machine off and on again" },
	{ "power_long", "forces the machine off" },
};

int h_device_power(struct request *req)
{
	json_object *b, *v;
	const char *action;
	bool confirmed;

	if (body_parse(req, power_fields, true, &b) < 0)
		return 0;
	action = json_object_object_get_ex(b, "action", &v) ? json_object_get_string(v) : "";
	confirmed = json_object_object_get_ex(b, "confirm", &v) && json_object_get_boolean(v);
	for (size_t i = 0; i < ARRAY_LEN(destructive) && !confirmed; i++) {
		if (strcmp(destructive[i].action, action) == 0) {
			resp_error(req, 400, "confirm_required", "'%s' %s; unsaved work is lost. Send "
			           "\"confirm\": true to do it.", action, destructive[i].effect);
			json_object_put(b);
			return 0;
		}
	}
	run(req, OP_POWER, b);
	json_object_put(b);
	return 0;
}

int h_device_media_get(struct request *req)
{
	struct devop_out out = { 0 };
	json_object *o;

	if (devop_run(&req->device, OP_ISO_LIST, NULL, NULL, NULL, &out) != DEVOP_OK) {
		fail(req, &out);
		devop_out_cleanup(&out);
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "images", json_object_get(json_object_object_get(out.result,
	                       "images")));
	if (devop_run(&req->device, OP_ISO_MOUNTED, NULL, NULL, NULL, &out) != DEVOP_OK) {
		json_object_put(o);
		fail(req, &out);
		devop_out_cleanup(&out);
		return 0;
	}
	json_object_object_add(o, "mounted", out.result);
	out.result = NULL;
	resp_json(req, 200, o);
	return 0;
}

int h_device_media_mount(struct request *req)
{
	json_object *b;

	if (body_parse(req, media_fields, true, &b) < 0)
		return 0;
	run(req, OP_ISO_MOUNT, b);
	json_object_put(b);
	return 0;
}

int h_device_media_unmount(struct request *req)
{
	struct devop_out out = { 0 };

	if (devop_run(&req->device, OP_ISO_UNMOUNT, NULL, NULL, NULL, &out) == DEVOP_OK)
		resp_body(req, 204, NULL, NULL, 0);
	else
		fail(req, &out);
	devop_out_cleanup(&out);
	return 0;
}

int h_device_health(struct request *req)
{
	struct devop_out out = { 0 };
	json_object *health;

	if (devop_health(&req->device, &health, &out) == DEVOP_OK)
		resp_json(req, 200, health);
	else
		fail(req, &out);
	devop_out_cleanup(&out);
	return 0;
}

int h_device_hid_reset(struct request *req)
{
	return run(req, OP_HID_RESET, NULL);
}

int h_device_hdmi_reset(struct request *req)
{
	return run(req, OP_HDMI_RESET, NULL);
}

int h_device_screen_text(struct request *req)
{
	struct screen_opts o;
	struct screen_text t;
	enum shot_status st;
	const char *v;
	char why[512];

	screen_opts_init(&o);
	if (max_age_param(req, &o.shot.max_age_ms) < 0)
		return 0;
	if ((v = request_param(req, "region")) != NULL &&
	    shot_parse_region(v, &o.shot, why, sizeof why) < 0) {
		resp_error(req, 400, "bad_request", "%s", why);
		return 0;
	}
	if ((v = request_param(req, "language")) != NULL)
		snprintf(o.language, sizeof o.language, "%.*s", OCR_LANG_MAX, v);
	if (v != NULL && strlen(v) > OCR_LANG_MAX) {
		resp_error(req, 400, "bad_request", "'language' must be at most %d characters",
		           OCR_LANG_MAX);
		return 0;
	}
	if ((st = screen_read(&req->device, &o, &t, why, sizeof why)) != SHOT_OK)
		return shot_fail(req, st, why);
	resp_header(req, "Cache-Control", "no-store");
	resp_json(req, 200, screen_text_json(&req->device, &o, &t));
	screen_text_cleanup(&t);
	return 0;
}

/*
 * A REST wait ends early only when its client leaves: nginx then closes
 * the FastCGI connection, which reads as a hang-up here. Non-zero then.
 */
static int rest_sleep(void *ctx, int ms)
{
	const struct request *req = ctx;
	struct pollfd p = { .fd = req->fcgx != NULL ? req->fcgx->ipcFd : -1, .events = POLLRDHUP };
	uint64_t until = now_mono_ns() + (uint64_t)ms * 1000000u;

	for (;;) {
		uint64_t now = now_mono_ns();
		int rc;

		if (now >= until)
			return 0;
		rc = poll(&p, 1, (int)((until - now + 999999u) / 1000000u));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return 0;
		if (rc > 0)
			return p.revents & (POLLRDHUP | POLLHUP | POLLERR) ? 1 : 0;
	}
}

int h_device_screen_wait(struct request *req)
{
	struct screen_wait w = { .sleep = rest_sleep, .ctx = req };
	struct screen_pattern pattern;
	struct screen_wait_result r;
	enum shot_status st;
	json_object *b, *v;
	const char *text;
	char why[512];

	if (body_parse(req, screen_wait_fields, true, &b) < 0)
		return 0;
	text = json_object_object_get_ex(b, "text", &v) ? json_object_get_string(v) : NULL;
	if (screen_wait_setup(&w, &pattern, text,
	                      json_object_object_get_ex(b, "regex", &v) && json_object_get_boolean(v),
	                      json_object_object_get_ex(b, "match_case", &v) &&
	                      json_object_get_boolean(v),
	                      json_object_object_get_ex(b, "change", &v) && json_object_get_boolean(v),
	                      why, sizeof why) < 0 ||
	    (json_object_object_get_ex(b, "region", &v) &&
	     shot_parse_region(json_object_get_string(v), &w.read.shot, why, sizeof why) < 0)) {
		resp_error(req, 400, "bad_request", "%s", why);
		goto out;
	}
	if (json_object_object_get_ex(b, "timeout_ms", &v))
		w.timeout_ms = json_object_get_int(v);
	if (json_object_object_get_ex(b, "interval_ms", &v))
		w.interval_ms = json_object_get_int(v);
	if (json_object_object_get_ex(b, "change_percent", &v))
		w.change_percent = json_object_get_double(v);
	if (json_object_object_get_ex(b, "max_age_ms", &v))
		w.read.shot.max_age_ms = json_object_get_int64(v);
	if (json_object_object_get_ex(b, "language", &v))
		snprintf(w.read.language, sizeof w.read.language, "%s", json_object_get_string(v));
	/* It holds this worker for up to timeout_ms, as a stream does. */
	if (!stream_slot_take()) {
		resp_header(req, "Retry-After", "5");
		resp_error(req, 503, "busy", "Every worker that may wait is waiting already; try "
		           "again in a few seconds.");
		goto out;
	}
	st = screen_wait(&req->device, &w, &r, why, sizeof why);
	stream_slot_give_back();
	if (r.cancelled) {
		/* Nobody reads this; the audit event keeps it (499: nginx's own code). */
		resp_error(req, 499, "client_closed", "The client closed the connection after "
		           "%llu ms, before the wait ended.", (unsigned long long)r.elapsed_ms);
		screen_wait_result_cleanup(&r);
		goto out;
	}
	if (st != SHOT_OK) {
		shot_fail(req, st, why);
		goto out;
	}
	resp_json(req, 200, screen_wait_json(&req->device, &w, &r));
	screen_wait_result_cleanup(&r);
out:
	screen_pattern_cleanup(&pattern);
	json_object_put(b);
	return 0;
}
