/*
 * capture.c - kvmgate capture <status|frame>: what the capture worker holds
 * for a device, through the same path FastCGI workers use (shared/frame.c);
 * and kvmgate capture <keys|type|move|click|scroll|reset>: one device
 * operation (CTL_DEVICE_OP) straight to the capture worker, answered once
 * the device has it. For admins and tests: no policy or audit runs here,
 * only the control socket's permissions.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "frame.h"

static void print_reply(const struct ctl_session_reply *r)
{
	printf("device %llu: %s, slot %d, frame %llu, error %s%s%s, attempts %u, firmware %s\n",
	       (unsigned long long)r->device_id, session_state_name(r->state), r->slot,
	       (unsigned long long)r->frame_seq, session_error_name(r->error), r->why[0] ? ": " : "",
	       r->why, r->attempts, r->firmware[0] ? r->firmware : "unknown");
}

/* The operations: name, op, positional arguments (x y, text or combos). */
static const struct {
	const char *name;
	uint32_t op;
	int min_args, max_args;	/* positional arguments after the subcommand */
	bool xy;
} ops[] = {
	{ "keys", OP_KEYS, 1, 64, false },
	{ "type", OP_TEXT, 1, 1, false },
	{ "move", OP_MOUSE_MOVE, 2, 2, true },
	{ "click", OP_MOUSE_CLICK, 0, 2, true },
	{ "scroll", OP_MOUSE_SCROLL, 0, 2, true },
	{ "reset", OP_HID_RESET, 0, 0, false },
};

/* kvmgate capture OP --device ID ...: sends one device operation and prints its answer. */
static int device_op(int argc, char **argv, int k)
{
	enum { OPT_DEVICE = 1 << 0, OPT_BUTTON = 1 << 1, OPT_DOUBLE = 1 << 2, OPT_STEPS = 1 << 3,
	       OPT_LAYOUT = 1 << 4, OPT_TIMEOUT = 1 << 5 };
	static const struct option opts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "button", required_argument, NULL, OPT_BUTTON },
		{ "double", no_argument, NULL, OPT_DOUBLE },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "layout", required_argument, NULL, OPT_LAYOUT },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	const char *val[ARRAY_LEN(opts)] = { NULL }, *err;
	unsigned seen, allowed = OPT_DEVICE | OPT_TIMEOUT;
	int first, nargs, rc;
	long long device = 0, x = -1, y = -1, steps = 1, timeout = 30000;
	struct buf msg = BUF_INIT, data = BUF_INIT;
	struct ctl_device_op req = { 0 };
	uint8_t reply[CTL_MAX_MSG];
	struct ctl_device_op_reply r;
	uint32_t rlen = 0;

	if (ops[k].op == OP_MOUSE_CLICK)
		allowed |= OPT_BUTTON | OPT_DOUBLE;
	if (ops[k].op == OP_MOUSE_SCROLL)
		allowed |= OPT_STEPS;
	if (ops[k].op == OP_TEXT)
		allowed |= OPT_LAYOUT;
	if (cli_getopts(argc - 1, argv + 1, opts, allowed, ops[k].name, val, &seen, NULL, &first) < 0 ||
	    val[0] == NULL || parse_ll(val[0], 1, INT64_MAX, &device, &err) < 0 ||
	    (val[3] != NULL && parse_ll(val[3], -1000, 1000, &steps, &err) < 0) ||
	    (val[5] != NULL && parse_ll(val[5], 1, 300000, &timeout, &err) < 0))
		return -1;
	/* argv + 1 holds the subcommand first: positional arguments start after it. */
	nargs = argc - 1 - first;
	argv += 1 + first;
	if (nargs < ops[k].min_args || nargs > ops[k].max_args || (ops[k].xy && nargs == 1))
		return -1;
	if (ops[k].xy && nargs == 2 &&
	    (parse_ll(argv[0], 0, 65535, &x, &err) < 0 || parse_ll(argv[1], 0, 65535, &y, &err) < 0))
		return -1;
	req.device_id = (uint64_t)device;
	req.op = ops[k].op;
	req.x = (int32_t)x;
	req.y = (int32_t)y;
	req.count = ops[k].op == OP_MOUSE_SCROLL ? (int32_t)steps : (seen & OPT_DOUBLE) ? 2 : 1;
	req.button = BUTTON_LEFT;
	if (val[1] != NULL)
		req.button = strcmp(val[1], "left") == 0 ? BUTTON_LEFT : strcmp(val[1], "right") == 0
		             ? BUTTON_RIGHT : strcmp(val[1], "middle") == 0 ? BUTTON_MIDDLE : 0;
	if (req.button == 0 || (val[4] != NULL && strlen(val[4]) >= sizeof req.arg))
		return -1;
	if (val[4] != NULL)
		snprintf(req.arg, sizeof req.arg, "%s", val[4]);
	req.timeout_ms = (uint32_t)timeout;
	for (int i = 0; ops[k].op == OP_KEYS && i < nargs; i++)
		buf_printf(&data, "%s%s", i ? "\n" : "", argv[i]);
	if (ops[k].op == OP_TEXT)
		buf_puts(&data, argv[0]);
	if (data.len + 1 > CTL_OP_DATA_MAX) {
		fprintf(stderr, "kvmgate: capture %s: at most %d bytes\n", ops[k].name, CTL_OP_DATA_MAX - 1);
		buf_free(&data);
		return 1;
	}
	req.len = (uint32_t)data.len + 1;
	buf_append(&msg, &req, sizeof req);
	buf_append(&msg, data.len ? data.data : "", data.len);
	buf_append(&msg, "", 1);
	rc = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_DEVICE_OP, msg.data, (uint32_t)msg.len,
	              CTL_DEVICE_OP_REPLY, reply, sizeof reply, &rlen, (int)timeout + 5000);
	buf_free(&msg);
	buf_free(&data);
	if (rc < 0) {
		fprintf(stderr, "kvmgate: capture %s: the capture worker: %s\n", ops[k].name, strerror(errno));
		return 1;
	}
	if (rc != CTL_OK || rlen < sizeof r + 1) {
		fprintf(stderr, "kvmgate: capture %s: refused (%s)\n", ops[k].name,
		        rc == CTL_ENODEVICE ? "no such device" : "control error");
		return 1;
	}
	memcpy(&r, reply, sizeof r);
	reply[rlen - 1] = '\0';
	if (r.error != SE_NONE) {
		fprintf(stderr, "kvmgate: capture %s: %s: %s\n", ops[k].name, session_error_name(r.error),
		        (char *)reply + sizeof r);
		return 1;
	}
	printf("%s done on device %llu (%ux%u)%s%s\n", ops[k].name, (unsigned long long)r.device_id,
	       r.width, r.height, rlen > sizeof r + 1 ? ": " : "", (char *)reply + sizeof r);
	return 0;
}

int cmd_capture(int argc, char **argv)
{
	enum { OPT_DEVICE = 1 << 0, OPT_OUT = 1 << 1, OPT_AFTER = 1 << 2, OPT_TIMEOUT = 1 << 3 };
	static const struct option opts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	const char *val[ARRAY_LEN(opts)] = { NULL };
	unsigned seen;
	int first;
	long long device = 0, after = 0, timeout = 10000;
	const char *out = NULL, *err, *sub = argc > 1 ? argv[1] : "";
	struct shm_store *store = NULL;
	struct ctl_session_reply r;
	struct shm_frame_info fi;
	struct buf jpeg = BUF_INIT;
	char why[256];
	enum frame_status st;
	FILE *f;
	int rc = 1;

	for (size_t k = 0; k < ARRAY_LEN(ops); k++)
		if (strcmp(sub, ops[k].name) == 0) {
			int rc_op = device_op(argc, argv, (int)k);
			if (rc_op >= 0)
				return rc_op;
			goto usage;
		}
	if (strcmp(sub, "status") != 0 && strcmp(sub, "frame") != 0)
		goto usage;
	if (cli_getopts(argc - 1, argv + 1, opts, OPT_DEVICE | OPT_OUT | OPT_AFTER | OPT_TIMEOUT,
	                "capture", val, &seen, NULL, &first) < 0 ||
	    (val[0] != NULL && parse_ll(val[0], 1, INT64_MAX, &device, &err) < 0) ||
	    (val[2] != NULL && parse_ll(val[2], 0, INT64_MAX, &after, &err) < 0) ||
	    (val[3] != NULL && parse_ll(val[3], 0, 600000, &timeout, &err) < 0))
		goto usage;
	out = val[1];
	if (device == 0 || first != argc - 1 || (sub[0] == 'f') != (out != NULL))
		goto usage;
	/* status: a zero wait only renews the demand and reports. */
	st = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &store, (uint64_t)device,
	               (uint64_t)after, sub[0] == 's' ? 0 : (int)timeout, &fi, &jpeg, &r, why, sizeof why);
	if (sub[0] == 's') {
		if (st == FRAME_NO_DEVICE || st == FRAME_UNAVAILABLE)
			fprintf(stderr, "kvmgate: capture status: %s\n", why);
		else
			print_reply(&r);
		rc = st == FRAME_NO_DEVICE || st == FRAME_UNAVAILABLE;
		goto done;
	}
	if (st != FRAME_OK) {
		fprintf(stderr, "kvmgate: capture frame: %s\n", why);
		goto done;
	}
	if ((f = fopen(out, "wb")) == NULL || fwrite(jpeg.data, 1, jpeg.len, f) != jpeg.len ||
	    fclose(f) != 0) {
		perror(out);
		goto done;
	}
	printf("frame %llu %ux%u %u bytes format %d\n", (unsigned long long)fi.seq, fi.width,
	       fi.height, fi.len, fi.format);
	rc = 0;
done:
	shm_close(store);
	buf_free(&jpeg);
	return rc;
usage:
	fprintf(stderr, "usage: kvmgate capture status --device ID\n"
	        "       kvmgate capture frame --device ID --out FILE [--after SEQ] [--timeout-ms MS]\n"
	        "       kvmgate capture keys --device ID COMBO...      (\"ctrl+alt+delete\" \"enter\")\n"
	        "       kvmgate capture type --device ID [--layout us] TEXT\n"
	        "       kvmgate capture move --device ID X Y\n"
	        "       kvmgate capture click --device ID [X Y] [--button left|right|middle] [--double]\n"
	        "       kvmgate capture scroll --device ID [X Y] [--steps N]   (N < 0: up)\n"
	        "       kvmgate capture reset --device ID              (release every key and button)\n");
	return 2;
}
