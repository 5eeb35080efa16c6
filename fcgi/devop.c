/*
 * devop.c - operations on a device (keys, text, mouse, power, media, HDMI)
 * through the capture worker, for the MCP tools and the REST routes alike.
 *
 * devop_call() is the one place a FastCGI worker asks the capture worker to
 * act on a device: it sends CTL_DEVICE_OP, waits (bounded by the op's
 * timeout) for CTL_DEVICE_OP_REPLY, and turns the answer into a result or a
 * sentence saying what went wrong and what to do. devop_run() is what both
 * edges call: the arguments as JSON (the same names over MCP and REST,
 * already checked against their declared types), validated against the
 * device (coordinates within its screen), turned into one or more ops.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fcgi.h"
#include "log.h"

#define OP_TIMEOUT_MS 15000		/* most ops: a device answers within seconds */
#define TEXT_MS_PER_CHAR 60		/* a NanoKVM pastes at about 30 ms a character */
#define OP_TIMEOUT_MAX_MS (5 * 60 * 1000)	/* what the capture worker allows */
#define CTL_MARGIN_MS 3000		/* the socket waits this much longer than the op */
#define TEXT_CHUNK 2048			/* bytes of text per op: progress between them */
#define KEYS_MAX 64			/* key combinations in one call */
#define HEALTH_INFO_MS 3000

/* What people call each op, for sentences: "cannot <verb> on a vnc device". */
static const struct op_row {
	const char *verb;
	uint32_t timeout_ms;
} ops[OP__COUNT] = {
	[OP_KEYS] = { "press keys", OP_TIMEOUT_MS },
	[OP_TEXT] = { "type text", OP_TIMEOUT_MS },
	[OP_MOUSE_MOVE] = { "move the mouse", OP_TIMEOUT_MS },
	[OP_MOUSE_CLICK] = { "click the mouse", OP_TIMEOUT_MS },
	[OP_MOUSE_SCROLL] = { "scroll the mouse wheel", OP_TIMEOUT_MS },
	[OP_HID_RESET] = { "reset the keyboard and mouse", OP_TIMEOUT_MS },
	[OP_POWER] = { "use the power button", 30000 },
	[OP_POWER_STATE] = { "read the power state", OP_TIMEOUT_MS },
	[OP_HDMI_RESET] = { "reset the HDMI capture", 30000 },
	[OP_INFO] = { "describe the device", OP_TIMEOUT_MS },
	[OP_ISO_LIST] = { "list the images", OP_TIMEOUT_MS },
	[OP_ISO_MOUNT] = { "mount an image", 60000 },
	[OP_ISO_UNMOUNT] = { "unmount the image", 30000 },
	[OP_ISO_MOUNTED] = { "read which image is mounted", OP_TIMEOUT_MS },
};

/* "a" or "an" before word (device kinds: "an ami device"). */
static const char *article(const char *word)
{
	return word[0] != '\0' && strchr("aeiou", word[0]) != NULL ? "an" : "a";
}

static const char *verb(uint32_t op)
{
	return op < OP__COUNT && ops[op].verb ? ops[op].verb : "do that";
}

void devop_out_cleanup(struct devop_out *out)
{
	json_object_put(out->result);
	out->result = NULL;
}

/* Sets out's status and sentence; returns the status. */
static enum devop_status set(struct devop_out *out, enum devop_status st, const char *fmt, ...)
	PRINTF_LIKE(3, 4);
static enum devop_status set(struct devop_out *out, enum devop_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->why, sizeof out->why, fmt, ap);
	va_end(ap);
	out->status = st;
	return st;
}

/* The sentence for a device's refusal (error e, its reason text). */
static enum devop_status device_error(const struct device_ref *d, uint32_t op, uint32_t e,
                                      const char *text, uint32_t timeout_ms,
                                      struct devop_out *out)
{
	const char *sep = *text ? ": " : "";

	switch (e) {
	case SE_UNSUPPORTED:
		/* A kind without the op, or without a driver, says only that ("vnc devices
		 * cannot do keys"); a driver's own reason (a firmware without the
		 * feature) tells what is missing. */
		if (*text == '\0' || strstr(text, "devices cannot do ") != NULL ||
		    strcmp(text, "no driver for this device kind") == 0 ||
		    strcmp(text, "not an operation of this driver") == 0)
			return set(out, DEVOP_UNSUPPORTED, "kvmgate cannot %s on %s %s device ('%s').",
			           verb(op), article(d->kind), d->kind, d->name);
		return set(out, DEVOP_UNSUPPORTED, "kvmgate cannot %s on %s %s device ('%s') that "
		           "way: %s.", verb(op), article(d->kind), d->kind, d->name, text);
	case SE_OFFLINE:
		return set(out, DEVOP_OFFLINE, "'%s' is offline, so it could not %s%s%s. Check that "
		           "it is powered and reachable, then try again.", d->name, verb(op), sep,
		           text);
	case SE_AUTH:
		return set(out, DEVOP_AUTH, "'%s' refused its stored username and password%s%s. An "
		           "administrator must update the device's credentials.", d->name, sep, text);
	case SE_TIMEOUT:
		return set(out, DEVOP_TIMEOUT, "'%s' did not %s within %u s%s%s; it may still be "
		           "busy. Check its screen before trying again.", d->name, verb(op),
		           timeout_ms / 1000, sep, text);
	case SE_INVALID:
		return set(out, DEVOP_INVALID, "'%s' could not %s: %s.", d->name, verb(op),
		           *text ? text : "the request is not valid for this device");
	case SE_CONFIG:
		return set(out, DEVOP_CONFIG, "'%s' is not set up correctly%s%s. An administrator "
		           "must fix the device's settings.", d->name, sep, text);
	default:
		/* The device's own message: usually the caller's input (a key name, an image). */
		return set(out, DEVOP_DEVICE, "'%s' could not %s%s%s.", d->name, verb(op), sep,
		           *text ? text : "the device answered something unexpected");
	}
}

enum devop_status devop_call(const struct device_ref *d, struct ctl_device_op *op,
                             const char *data, struct devop_out *out)
{
	size_t dlen = strlen(data) + 1;
	uint32_t n = 0, timeout;
	char *msg, *reply;
	struct ctl_device_op_reply r;
	enum devop_status st;
	int rc;

	devop_out_cleanup(out);
	out->status = DEVOP_OK;
	out->why[0] = '\0';
	if (dlen > CTL_OP_DATA_MAX)
		return set(out, DEVOP_INVALID, "Too much data for one operation (%zu bytes, at most "
		           "%d).", dlen - 1, CTL_OP_DATA_MAX - 1);
	if (op->timeout_ms == 0)
		op->timeout_ms = ops[op->op].timeout_ms;
	if (op->timeout_ms > OP_TIMEOUT_MAX_MS)
		op->timeout_ms = OP_TIMEOUT_MAX_MS;
	timeout = op->timeout_ms;
	op->device_id = (uint64_t)d->id;
	op->len = (uint32_t)dlen;
	msg = xmalloc(sizeof *op + dlen);
	memcpy(msg, op, sizeof *op);
	memcpy(msg + sizeof *op, data, dlen);
	reply = xmalloc(CTL_MAX_MSG);
	rc = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_DEVICE_OP, msg,
	              (uint32_t)(sizeof *op + dlen), CTL_DEVICE_OP_REPLY, reply, CTL_MAX_MSG, &n,
	              (int)(timeout + CTL_MARGIN_MS));
	free(msg);
	if (rc < 0 && errno == ETIMEDOUT) {
		st = set(out, DEVOP_TIMEOUT, "'%s' did not %s within %u s; it may still be busy. "
		         "Check its screen before trying again.", d->name, verb(op->op),
		         timeout / 1000);
	} else if (rc < 0) {
		st = set(out, DEVOP_UNAVAILABLE, "Could not %s on '%s': the capture service is "
		         "unavailable (%s). Try again in a few seconds.", verb(op->op), d->name,
		         strerror(errno));
	} else if (rc == CTL_ENODEVICE) {
		st = set(out, DEVOP_GONE, "The device '%s' is disabled or was removed; list_devices "
		         "shows the devices you can use.", d->name);
	} else if (rc != CTL_OK || n < sizeof r + 1) {
		st = set(out, DEVOP_UNAVAILABLE, "Could not %s on '%s': the capture service could not "
		         "%s (status %d). Try again in a few seconds.", verb(op->op), d->name,
		         rc == CTL_EUNAVAILABLE ? "read the device's settings" : "take the request",
		         rc);
	} else {
		const char *text = reply + sizeof r;

		memcpy(&r, reply, sizeof r);
		reply[n - 1] = '\0';
		out->width = r.width;
		out->height = r.height;
		if (r.error != SE_NONE) {
			st = device_error(d, op->op, r.error, text, timeout, out);
		} else {
			st = DEVOP_OK;
			if (*text != '\0' && (out->result = json_tokener_parse(text)) == NULL)
				log_warnx("device %lld: %s answered with a result that is not JSON",
				          d->id, dev_op_name(op->op));
		}
	}
	free(reply);
	if (st != DEVOP_OK)
		log_fields(LOG_LVL_INFO, "device operation not done", "device", d->name, "op",
		           dev_op_name(op->op), "why", out->why, NULL);
	return st;
}

/* ---- arguments --------------------------------------------------------------- */

static bool has(json_object *args, const char *name)
{
	return json_object_object_get_ex(args, name, NULL);
}

static long long int_arg(json_object *args, const char *name, long long def)
{
	json_object *v;

	return json_object_object_get_ex(args, name, &v) ? json_object_get_int64(v) : def;
}

static const char *str_arg(json_object *args, const char *name, const char *def)
{
	json_object *v;

	return json_object_object_get_ex(args, name, &v) && json_object_is_type(v, json_type_string)
		? json_object_get_string(v) : def;
}

/*
 * Checks x, y against the device's screen as its latest frame gives it (not
 * known without a frame: then only non-negative). Returns 0, or -1 with out
 * saying the valid range.
 */
static int check_point(const struct device_ref *d, long long x, long long y, struct devop_out *out)
{
	int w, h;

	if (x < 0 || y < 0 || x > IMG_SIDE_MAX || y > IMG_SIDE_MAX) {
		set(out, DEVOP_INVALID, "Coordinates must be screen pixels from 0; got %lld,%lld.", x, y);
		return -1;
	}
	if (shot_screen_size(d, &w, &h) == 0 && (x >= w || y >= h)) {
		set(out, DEVOP_INVALID, "The point %lld,%lld is outside the screen of '%s', which is "
		    "%dx%d: x must be from 0 to %d and y from 0 to %d.", x, y, d->name, w, h, w - 1,
		    h - 1);
		return -1;
	}
	return 0;
}

/* args.keys (a combination, or a list pressed in order) as lines into b. 0 or -1 with out. */
static int keys_data(json_object *args, struct buf *b, struct devop_out *out)
{
	json_object *keys, *k;
	size_t n = 1;

	if (!json_object_object_get_ex(args, "keys", &keys)) {
		set(out, DEVOP_INVALID, "'keys' is required: a combination such as \"ctrl+alt+delete\" "
		    "or a list of them.");
		return -1;
	}
	if (json_object_is_type(keys, json_type_array))
		n = json_object_array_length(keys);
	if (n == 0 || n > KEYS_MAX) {
		set(out, DEVOP_INVALID, "'keys' must hold 1 to %d key combinations.", KEYS_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s;
		k = json_object_is_type(keys, json_type_array) ? json_object_array_get_idx(keys, i) : keys;
		s = json_object_is_type(k, json_type_string) ? json_object_get_string(k) : NULL;
		if (s == NULL || *s == '\0' || strlen(s) > 64 || strpbrk(s, "\r\n\t") != NULL) {
			set(out, DEVOP_INVALID, "Each key combination must be a string of 1 to 64 "
			    "characters without line breaks, such as \"enter\" or \"ctrl+c\".");
			return -1;
		}
		buf_printf(b, "%s%s", i ? "\n" : "", s);
	}
	return 0;
}

/* The length of the longest prefix of s, at most max bytes, that ends on a character. */
static size_t utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static size_t utf8_count(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

/* Types args.text in chunks, with progress between them. */
static enum devop_status run_text(const struct device_ref *d, json_object *args,
                                  devop_progress_fn *progress, void *ctx, struct devop_out *out)
{
	const char *text = str_arg(args, "text", ""), *layout = str_arg(args, "layout", "");
	size_t total = strlen(text), done = 0, chars = utf8_count(text, total), typed = 0;
	struct ctl_device_op op;
	enum devop_status st = DEVOP_OK;

	if (total == 0)
		return set(out, DEVOP_INVALID, "'text' is empty: give the text to type.");
	if (chars > DEVOP_TEXT_MAX)
		return set(out, DEVOP_INVALID, "'text' has %zu characters; at most %d can be typed in "
		           "one call. Split it.", chars, DEVOP_TEXT_MAX);
	if (strlen(layout) >= sizeof op.arg)
		return set(out, DEVOP_INVALID, "'layout' is too long.");
	while (done < total) {
		size_t n = utf8_prefix(text + done, TEXT_CHUNK), c = utf8_count(text + done, n);
		char *chunk = xmalloc(n + 1);

		memcpy(chunk, text + done, n);
		chunk[n] = '\0';
		memset(&op, 0, sizeof op);
		op.op = OP_TEXT;
		op.timeout_ms = (uint32_t)(OP_TIMEOUT_MS + c * TEXT_MS_PER_CHAR);
		snprintf(op.arg, sizeof op.arg, "%s", layout);
		st = devop_call(d, &op, chunk, out);
		free(chunk);
		if (st != DEVOP_OK)
			break;
		done += n;
		typed += c;
		if (done < total && progress != NULL && progress(ctx, (double)typed, (double)chars) != 0)
			return set(out, DEVOP_CANCELLED, "Cancelled after typing %zu of %zu characters on "
			           "'%s'.", typed, chars, d->name);
	}
	if (st != DEVOP_OK) {
		if (typed > 0) {
			size_t used = strlen(out->why);
			snprintf(out->why + used, sizeof out->why - used, " (%zu of %zu characters "
			         "were typed before that.)", typed, chars);
		}
		return st;
	}
	return set(out, DEVOP_OK, "Typed %zu character%s on '%s'.", chars, chars == 1 ? "" : "s",
	           d->name);
}

static const char *const buttons[] = { [BUTTON_LEFT] = "left", [BUTTON_RIGHT] = "right",
                                       [BUTTON_MIDDLE] = "middle" };

enum devop_status devop_run(const struct device_ref *d, uint32_t kind, json_object *args,
                            devop_progress_fn *progress, void *ctx, struct devop_out *out)
{
	struct ctl_device_op op = { .op = kind };
	struct buf data = BUF_INIT;
	enum devop_status st;
	long long x = int_arg(args, "x", -1), y = int_arg(args, "y", -1);
	const char *s;

	devop_out_cleanup(out);
	out->status = DEVOP_OK;
	out->why[0] = '\0';
	switch (kind) {
	case OP_TEXT:
		return run_text(d, args, progress, ctx, out);
	case OP_KEYS:
		if (keys_data(args, &data, out) < 0)
			goto fail;
		break;
	case OP_MOUSE_MOVE:
		if (!has(args, "x") || !has(args, "y")) {
			set(out, DEVOP_INVALID, "'x' and 'y' are required: the screen pixel to move to.");
			goto fail;
		}
		/* fall through */
	case OP_MOUSE_SCROLL:
		if (kind == OP_MOUSE_SCROLL && (!has(args, "x") || !has(args, "y"))) {
			set(out, DEVOP_INVALID, "'x' and 'y' are required: the screen pixel to scroll at.");
			goto fail;
		}
		if (check_point(d, x, y, out) < 0)
			goto fail;
		break;
	case OP_MOUSE_CLICK:
		if (has(args, "x") != has(args, "y")) {
			set(out, DEVOP_INVALID, "Give both 'x' and 'y', or neither to click where the "
			    "pointer is.");
			goto fail;
		}
		if (has(args, "x") && check_point(d, x, y, out) < 0)
			goto fail;
		break;
	case OP_POWER:
	case OP_ISO_MOUNT:
		break;
	case OP_HID_RESET:
	case OP_POWER_STATE:
	case OP_HDMI_RESET:
	case OP_INFO:
	case OP_ISO_LIST:
	case OP_ISO_UNMOUNT:
	case OP_ISO_MOUNTED:
		break;
	default:
		set(out, DEVOP_INVALID, "Unknown operation.");
		goto fail;
	}
	op.x = (int32_t)x;
	op.y = (int32_t)y;
	switch (kind) {
	case OP_MOUSE_CLICK:
		s = str_arg(args, "button", "left");
		op.button = strcmp(s, "right") == 0 ? BUTTON_RIGHT
		          : strcmp(s, "middle") == 0 ? BUTTON_MIDDLE : BUTTON_LEFT;
		op.count = json_object_get_boolean(json_object_object_get(args, "double")) ? 2 : 1;
		break;
	case OP_MOUSE_SCROLL:
		op.count = (int32_t)int_arg(args, "amount", 3);
		if (strcmp(str_arg(args, "direction", "down"), "up") == 0)
			op.count = -op.count;
		break;
	case OP_POWER:
		snprintf(op.arg, sizeof op.arg, "%s", str_arg(args, "action", ""));
		break;
	case OP_ISO_MOUNT:
		s = str_arg(args, "image", "");
		if (*s == '\0' || strchr(s, '/') != NULL || strcmp(s, "..") == 0 || strcmp(s, ".") == 0) {
			set(out, DEVOP_INVALID, "'image' must be the name of an image list_isos shows, "
			    "without a directory.");
			goto fail;
		}
		buf_puts(&data, s);
		op.flags = strcmp(str_arg(args, "as", "cdrom"), "disk") == 0 ? OPF_DISK : 0;
		break;
	}
	st = devop_call(d, &op, data.data != NULL ? data.data : "", out);
	if (st == DEVOP_OK) {
		switch (kind) {
		case OP_KEYS:
			for (char *p = data.data; (p = strchr(p, '\n')) != NULL; )
				*p = ' ';
			set(out, DEVOP_OK, "Pressed %s on '%s'.", data.data, d->name);
			break;
		case OP_MOUSE_MOVE:
			set(out, DEVOP_OK, "Moved the pointer of '%s' to %lld,%lld.", d->name, x, y);
			break;
		case OP_MOUSE_CLICK:
			if (has(args, "x"))
				set(out, DEVOP_OK, "%s %s at %lld,%lld on '%s'.", op.count == 2
				    ? "Double-clicked" : "Clicked", buttons[op.button], x, y, d->name);
			else
				set(out, DEVOP_OK, "%s %s where the pointer is on '%s'.", op.count == 2
				    ? "Double-clicked" : "Clicked", buttons[op.button], d->name);
			break;
		case OP_MOUSE_SCROLL:
			set(out, DEVOP_OK, "Scrolled %s %d step%s at %lld,%lld on '%s'.",
			    op.count < 0 ? "up" : "down", abs(op.count), abs(op.count) == 1 ? "" : "s",
			    x, y, d->name);
			break;
		case OP_HID_RESET:
			set(out, DEVOP_OK, "Reset the keyboard and mouse of '%s'.", d->name);
			break;
		case OP_POWER:
			set(out, DEVOP_OK, "Power action '%s' done on '%s'.", op.arg, d->name);
			break;
		case OP_HDMI_RESET:
			set(out, DEVOP_OK, "Reset the HDMI capture of '%s'; the picture may take a few "
			    "seconds to come back.", d->name);
			break;
		case OP_ISO_MOUNT:
			set(out, DEVOP_OK, "Mounted '%s' on '%s' as a %s.", data.data, d->name,
			    op.flags & OPF_DISK ? "disk" : "CD-ROM");
			break;
		case OP_ISO_UNMOUNT:
			set(out, DEVOP_OK, "Unmounted the image of '%s'.", d->name);
			break;
		case OP_POWER_STATE:
			set(out, DEVOP_OK, "The power state of '%s', as the device reports it:", d->name);
			break;
		case OP_ISO_LIST:
			set(out, DEVOP_OK, "The images '%s' can mount:", d->name);
			break;
		case OP_ISO_MOUNTED:
			set(out, DEVOP_OK, "The virtual media of '%s':", d->name);
			break;
		default:
			set(out, DEVOP_OK, "'%s' did it.", d->name);
			break;
		}
	}
	buf_free(&data);
	return st;
fail:
	buf_free(&data);
	return out->status;
}

enum devop_status devop_health(const struct device_ref *d, json_object **health,
                               struct devop_out *out)
{
	struct ctl_session_ensure e = { (uint64_t)d->id, 0 };
	struct ctl_session_reply r;
	struct ctl_device_op op = { .op = OP_INFO, .timeout_ms = HEALTH_INFO_MS };
	json_object *o;
	uint32_t n = 0;
	int rc, w, h;

	*health = NULL;
	devop_out_cleanup(out);
	rc = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_SESSION_ENSURE, &e, sizeof e,
	              CTL_SESSION_REPLY, &r, sizeof r, &n, 2000);
	if (rc == CTL_ENODEVICE)
		return set(out, DEVOP_GONE, "The device '%s' is disabled or was removed; list_devices "
		           "shows the devices you can use.", d->name);
	if (rc != CTL_OK || n != sizeof r)
		return set(out, DEVOP_UNAVAILABLE, "No health of '%s': the capture service is "
		           "unavailable%s%s. Try again in a few seconds.", d->name,
		           rc < 0 ? ": " : "", rc < 0 ? strerror(errno) : "");
	o = json_object_new_object();
	json_object_object_add(o, "device", json_object_new_string(d->name));
	json_object_object_add(o, "id", json_object_new_int64(d->id));
	json_object_object_add(o, "kind", json_object_new_string(d->kind));
	json_object_object_add(o, "state", json_object_new_string(session_state_name(r.state)));
	json_object_object_add(o, "healthy", json_object_new_boolean(r.state == SS_STREAMING));
	json_object_object_add(o, "error", r.error == SE_NONE ? NULL
	                       : json_object_new_string(session_error_name(r.error)));
	json_object_object_add(o, "why", r.why[0] ? json_object_new_string(r.why) : NULL);
	json_object_object_add(o, "attempts", json_object_new_int64(r.attempts));
	json_object_object_add(o, "firmware", r.firmware[0] ? json_object_new_string(r.firmware)
	                                                    : NULL);
	json_object_object_add(o, "frame_seq", json_object_new_int64((int64_t)r.frame_seq));
	if (shot_screen_size(d, &w, &h) == 0) {
		json_object_object_add(o, "screen_width", json_object_new_int(w));
		json_object_object_add(o, "screen_height", json_object_new_int(h));
	}
	/* What the device says of itself, when its session holds a login and its
	 * driver can tell; a refusal is no ill health. */
	if (r.state == SS_STREAMING || r.state == SS_AUTHENTICATING) {
		if (devop_call(d, &op, "", out) == DEVOP_OK && out->result != NULL) {
			json_object_object_add(o, "info", out->result);
			out->result = NULL;
		}
	}
	*health = o;
	return set(out, DEVOP_OK, "'%s' (%s) is %s%s%s.", d->name, d->kind,
	           session_state_name(r.state), r.error != SE_NONE ? ": " : "",
	           r.error != SE_NONE ? session_error_name(r.error) : "");
}

int devop_http_status(enum devop_status st)
{
	switch (st) {
	case DEVOP_OK:		return 200;
	case DEVOP_INVALID:	return 400;
	case DEVOP_GONE:	return 404;
	case DEVOP_CONFIG:	return 409;
	case DEVOP_UNSUPPORTED:	return 501;
	case DEVOP_OFFLINE:
	case DEVOP_AUTH:
	case DEVOP_DEVICE:	return 502;
	case DEVOP_UNAVAILABLE:	return 503;
	case DEVOP_TIMEOUT:	return 504;
	case DEVOP_CANCELLED:	return 499;
	}
	return 500;
}

const char *devop_code(enum devop_status st)
{
	static const char *const codes[] = {
		[DEVOP_OK] = "ok", [DEVOP_INVALID] = "bad_request", [DEVOP_GONE] = "not_found",
		[DEVOP_CONFIG] = "device_misconfigured", [DEVOP_UNSUPPORTED] = "unsupported",
		[DEVOP_OFFLINE] = "device_offline", [DEVOP_AUTH] = "device_auth_failed",
		[DEVOP_DEVICE] = "device_error", [DEVOP_UNAVAILABLE] = "capture_unavailable",
		[DEVOP_TIMEOUT] = "device_timeout", [DEVOP_CANCELLED] = "cancelled",
	};
	return (unsigned)st < ARRAY_LEN(codes) ? codes[st] : "internal";
}
