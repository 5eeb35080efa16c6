/*
 * capture_op.c - kvmgate capture op DEVICE NAME [ARGS...]: one device
 * operation sent to the capture worker over the control socket
 * (CTL_DEVICE_OP), its answer printed: the JSON result on stdout, or the
 * error on stderr (exit 1). A table says what each operation takes.
 *
 *   keys COMBO...            each combination pressed and released in order
 *   text TEXT [LAYOUT]       typed (layout us, de, fr)
 *   move X Y | click [X Y [BUTTON [COUNT]]] | scroll STEPS [X Y]
 *   hid-reset | hdmi-reset | power ACTION | power-state | info
 *   iso-list | iso-mount NAME [--disk] | iso-unmount | iso-mounted
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "conf.h"
#include "ctl.h"

enum arg_form { A_NONE, A_KEYS, A_TEXT, A_XY, A_CLICK, A_SCROLL, A_ARG, A_IMAGE };

static const struct op_cmd {
	const char *name;
	enum dev_op_kind op;
	enum arg_form form;
	const char *usage;
} cmds[] = {
	{ "keys", OP_KEYS, A_KEYS, "keys COMBO..." },
	{ "text", OP_TEXT, A_TEXT, "text TEXT [LAYOUT]" },
	{ "move", OP_MOUSE_MOVE, A_XY, "move X Y" },
	{ "click", OP_MOUSE_CLICK, A_CLICK, "click [X Y [left|right|middle [1|2]]]" },
	{ "scroll", OP_MOUSE_SCROLL, A_SCROLL, "scroll STEPS [X Y]  (positive: down)" },
	{ "hid-reset", OP_HID_RESET, A_NONE, "hid-reset" },
	{ "power", OP_POWER, A_ARG, "power on|off|off_hard|reset|cycle|power_short|power_long" },
	{ "power-state", OP_POWER_STATE, A_NONE, "power-state" },
	{ "hdmi-reset", OP_HDMI_RESET, A_NONE, "hdmi-reset" },
	{ "info", OP_INFO, A_NONE, "info" },
	{ "iso-list", OP_ISO_LIST, A_NONE, "iso-list" },
	{ "iso-mount", OP_ISO_MOUNT, A_IMAGE, "iso-mount NAME [--disk]" },
	{ "iso-unmount", OP_ISO_UNMOUNT, A_NONE, "iso-unmount" },
	{ "iso-mounted", OP_ISO_MOUNTED, A_NONE, "iso-mounted" },
};

static int num(const char *s, long long min, long long max, int32_t *out)
{
	long long v;
	const char *err;

	if (parse_ll(s, min, max, &v, &err) < 0)
		return -1;
	*out = (int32_t)v;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: kvmgate capture op DEVICE [--timeout-ms MS] OPERATION [ARGS]\n");
	for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
		fprintf(stderr, "       ... %s\n", cmds[i].usage);
	return 2;
}

/* Fills req and data from the arguments after the operation's name. Returns 0 or -1. */
static int parse_args(const struct op_cmd *c, int argc, char **argv, struct ctl_device_op *req,
                      struct buf *data)
{
	static const char *const buttons[] = { "", "left", "right", "middle" };
	int n = argc;

	req->x = req->y = -1;
	req->count = 1;
	req->button = BUTTON_LEFT;
	switch (c->form) {
	case A_NONE:
		return n == 0 ? 0 : -1;
	case A_KEYS:
		for (int i = 0; i < n; i++)
			buf_printf(data, "%s\n", argv[i]);
		return n > 0 ? 0 : -1;
	case A_TEXT:
		if (n < 1 || n > 2)
			return -1;
		buf_puts(data, argv[0]);
		if (n == 2)
			snprintf(req->arg, sizeof req->arg, "%s", argv[1]);
		return 0;
	case A_XY:
		return n == 2 && num(argv[0], 0, 65535, &req->x) == 0 && num(argv[1], 0, 65535, &req->y) == 0
		       ? 0 : -1;
	case A_CLICK:
		if (n == 1 || n > 4 || (n >= 2 && (num(argv[0], 0, 65535, &req->x) < 0 ||
		                                   num(argv[1], 0, 65535, &req->y) < 0)))
			return -1;
		if (n >= 3) {
			req->button = 0;
			for (uint32_t b = 1; b < ARRAY_LEN(buttons); b++)
				if (strcmp(argv[2], buttons[b]) == 0)
					req->button = b;
			if (req->button == 0)
				return -1;
		}
		return n == 4 ? num(argv[3], 1, 2, &req->count) : 0;
	case A_SCROLL:
		if ((n != 1 && n != 3) || num(argv[0], -1000, 1000, &req->count) < 0)
			return -1;
		return n == 3 && (num(argv[1], 0, 65535, &req->x) < 0 || num(argv[2], 0, 65535, &req->y) < 0)
		       ? -1 : 0;
	case A_ARG:
		if (n != 1 || strlen(argv[0]) >= sizeof req->arg)
			return -1;
		snprintf(req->arg, sizeof req->arg, "%s", argv[0]);
		return 0;
	case A_IMAGE:
		if (n < 1 || n > 2 || (n == 2 && strcmp(argv[1], "--disk") != 0))
			return -1;
		buf_puts(data, argv[0]);
		req->flags = n == 2 ? OPF_DISK : 0;
		return 0;
	}
	return -1;
}

int cmd_capture_op(int argc, char **argv)
{
	struct ctl_device_op req = { 0 };
	struct buf msg = BUF_INIT, data = BUF_INIT;
	const struct op_cmd *c = NULL;
	static uint8_t reply[CTL_MAX_MSG];
	struct ctl_device_op_reply r;
	long long device, timeout = 60000;
	const char *err;
	uint32_t rlen = 0;
	int at = 2, rc;

	/* argv: op DEVICE [--timeout-ms MS] NAME ARGS... */
	if (argc < 3 || parse_ll(argv[1], 1, INT64_MAX, &device, &err) < 0)
		return usage();
	if (strcmp(argv[at], "--timeout-ms") == 0) {
		if (argc < at + 3 || parse_ll(argv[at + 1], 1, 300000, &timeout, &err) < 0)
			return usage();
		at += 2;
	}
	for (size_t i = 0; i < ARRAY_LEN(cmds); i++)
		if (strcmp(argv[at], cmds[i].name) == 0)
			c = &cmds[i];
	req.device_id = (uint64_t)device;
	if (c == NULL || parse_args(c, argc - at - 1, argv + at + 1, &req, &data) < 0) {
		buf_free(&data);
		return usage();
	}
	req.op = c->op;
	req.timeout_ms = (uint32_t)timeout;
	req.len = (uint32_t)data.len + 1;
	if (req.len > CTL_OP_DATA_MAX) {
		fprintf(stderr, "kvmgate: capture op: data longer than %d bytes\n", CTL_OP_DATA_MAX - 1);
		buf_free(&data);
		return 2;
	}
	buf_append(&msg, &req, sizeof req);
	buf_append(&msg, data.data != NULL ? data.data : "", data.len);
	buf_append(&msg, "", 1);
	rc = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_DEVICE_OP, msg.data, (uint32_t)msg.len,
	              CTL_DEVICE_OP_REPLY, reply, sizeof reply - 1, &rlen, (int)timeout + 5000);
	buf_free(&msg);
	buf_free(&data);
	if (rc < 0) {
		perror("kvmgate: capture op");
		return 1;
	}
	reply[rlen] = '\0';
	if (rc != CTL_OK || rlen < sizeof r) {
		fprintf(stderr, "kvmgate: capture op %s: refused by the capture worker (%s)\n", c->name,
		        rc == CTL_ENODEVICE ? "no such device, or it is disabled"
		        : rc == CTL_EUNAVAILABLE ? "database unavailable" : "bad request");
		return 1;
	}
	memcpy(&r, reply, sizeof r);
	if (r.error != 0) {
		fprintf(stderr, "kvmgate: capture op %s: %s: %s\n", c->name, session_error_name(r.error),
		        (char *)reply + sizeof r);
		return 1;
	}
	printf("%s\n", (char *)reply + sizeof r);
	return 0;
}
