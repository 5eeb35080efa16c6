/*
 * tools_device.c - MCP tools that act on a device or read its state:
 * keyboard, mouse, power, virtual media, HDMI and health. Their rows
 * (schemas, annotations, actions) are in tools.c; the device is found and
 * authorised in c->device, and a write's audit intent is committed, before
 * these run. The work is devop.c's, shared with the REST routes; here only
 * the confirmation of destructive actions and the shape of the result.
 */
#include <stdio.h>
#include <string.h>

#include "fcgi.h"

/* Progress between the parts of a long operation; stops when the call is cancelled. */
static int progress(void *ctx, double done, double total)
{
	struct mcp_call *c = ctx;

	mcp_progress(c, done, total, NULL);
	return mcp_sleep(c, 0) == RPC_CANCELLED;
}

/* The tool result of an operation: its sentence, and its JSON result when it has one. */
static int finish(struct devop_out *out, struct tool_result *res)
{
	enum devop_status st = out->status;

	if (st == DEVOP_CANCELLED) {
		devop_out_cleanup(out);
		return RPC_CANCELLED;
	}
	if (st != DEVOP_OK) {
		tool_fail(res, "%s", out->why);
	} else {
		tool_text(res, "%s", out->why);
		if (out->result != NULL) {
			tool_structured(res, out->result);
			out->result = NULL;
		}
	}
	devop_out_cleanup(out);
	return RPC_OK;
}

/* Runs op kind on the call's device with args. */
static int run(struct mcp_call *c, uint32_t kind, json_object *args, struct tool_result *res)
{
	struct devop_out out = { 0 };

	devop_run(&c->device, kind, args, progress, c, &out);
	return finish(&out, res);
}

int tool_type_text(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_TEXT, args, res);
}

int tool_send_keys(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_KEYS, args, res);
}

int tool_mouse_move(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_MOUSE_MOVE, args, res);
}

int tool_mouse_click(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_MOUSE_CLICK, args, res);
}

int tool_mouse_scroll(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_MOUSE_SCROLL, args, res);
}

int tool_reset_hid(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_HID_RESET, args, res);
}

int tool_get_power_state(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_POWER_STATE, args, res);
}

int tool_hdmi_reset(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_HDMI_RESET, args, res);
}

int tool_list_isos(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_ISO_LIST, args, res);
}

int tool_unmount_iso(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_ISO_UNMOUNT, args, res);
}

int tool_get_mounted_iso(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return run(c, OP_ISO_MOUNTED, args, res);
}

/* What each power action does to the machine, for the confirmation question. */
static const struct {
	const char *action, *effect;
	bool destructive;
} power_actions[] = {
	{ "on", "switches it on", false },
	{ "power_short", "presses the power button briefly (a running system usually shuts "
	  "down cleanly)", false },
	{ "off", "switches it off; unsaved work is lost", true },
	{ "off_hard", "cuts its power at once; unsaved work is lost", true },
	{ "reset", "restarts it at once; unsaved work is lost", true },
	{ "cycle", "switches it off and on again; unsaved work is lost", true },
	{ "power_long", "holds the power button (a forced power-off); unsaved work is lost", true },
};

int tool_power_action(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *v;
	const char *action = json_object_object_get_ex(args, "action", &v)
		? json_object_get_string(v) : "";
	char question[400];
	bool yes;
	int rc;

	for (size_t i = 0; i < ARRAY_LEN(power_actions); i++) {
		if (strcmp(power_actions[i].action, action) != 0 || !power_actions[i].destructive)
			continue;
		snprintf(question, sizeof question, "Power action '%s' on '%s' %s. Go ahead?", action,
		         c->device.name, power_actions[i].effect);
		if ((rc = mcp_confirm(c, args, question, res, &yes)) != RPC_OK || !yes)
			return rc;
	}
	return run(c, OP_POWER, args, res);
}

int tool_mount_iso(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *v;
	const char *image = json_object_object_get_ex(args, "image", &v) ? json_object_get_string(v)
	                                                                : "";
	const char *as = json_object_object_get_ex(args, "as", &v) ? json_object_get_string(v)
	                                                          : "cdrom";
	char question[400];
	bool yes;
	int rc;

	snprintf(question, sizeof question, "Mount '%.100s' on '%s' as a %s? The machine sees new "
	         "media it may boot from, and its keyboard and mouse pause for a moment.", image,
	         c->device.name, strcmp(as, "disk") == 0 ? "disk" : "CD-ROM");
	if ((rc = mcp_confirm(c, args, question, res, &yes)) != RPC_OK || !yes)
		return rc;
	return run(c, OP_ISO_MOUNT, args, res);
}

int tool_get_device_health(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	struct devop_out out = { 0 };
	json_object *health = NULL;

	if (devop_health(&c->device, &health, &out) != DEVOP_OK)
		return finish(&out, res);
	tool_text(res, "%s", out.why);
	tool_structured(res, health);
	devop_out_cleanup(&out);
	return RPC_OK;
}
