/*
 * tools.c - the MCP tool table and the machinery around it: tools/list with
 * a cursor, showing what the caller may call; tools/call through the one
 * authorisation step (authz.c), the arguments checked against the tool's
 * declared input schema, and the call's audit events (audited.c), all
 * before its handler runs.
 *
 * A tool is a row: name, human text, schemas as JSON text (parsed once per
 * process), annotations, the action it does (authz.c) and its handler (tools_*.c).
 * Schemas use a small subset of JSON Schema that tool_check_args()
 * understands completely; check_fcgi_tools keeps every row inside it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi.h"
#include "log.h"

/* JSON text written as C tokens: JSON({"type": "object"}) is its string. */
#define JSON(...) #__VA_ARGS__

/* The arguments of a tool that takes nothing but the device. */
#define DEVICE_ONLY_SCHEMA JSON({ \
	"type": "object", \
	"properties": { \
		"device": {"type": "string", "minLength": 1, "maxLength": 100, \
		           "description": "device name or id"} \
	}, \
	"required": ["device"], \
	"additionalProperties": false \
})

/* More tools than any client pages through; 1.x SDK clients read one page. */
#define TOOLS_PAGE 100
#define CURSOR_PREFIX "tools:"

static const struct tool builtin[] = {
	{
		.name = "get_server_info",
		.title = "Gateway information",
		.description =
			"Describes this kvmgate gateway and the caller: gateway version, the MCP "
			"protocol version of this session, the organisation, user, role and token "
			"scopes the calls act with, and whether the capture worker (which talks "
			"to the devices) is running and for how long. Takes no arguments.",
		.input_schema = JSON({"type": "object", "properties": {},
		                      "additionalProperties": false}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = false },
		.action = AUTHZ_SERVER_READ,
		.fn = tool_get_server_info,
	},
	{
		.name = "list_devices",
		.title = "List devices",
		.description =
			"Lists the IP-KVMs and BMCs of the caller's organisation, ordered by name: "
			"id, name, kind (nanokvm, pikvm, ami or vnc), URL, tags, whether the device "
			"is enabled and has credentials stored, and its screen size hints. Filter by kind or tag; disabled devices are left "
			"out unless include_disabled is true. An empty list means no device "
			"matches, not an error.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"kind": {"type": "string", "enum": ["nanokvm", "pikvm", "ami", "vnc"],
				         "description": "only devices of this kind"},
				"tag": {"type": "string", "minLength": 1, "maxLength": 64,
				        "description": "only devices carrying this tag"},
				"include_disabled": {"type": "boolean",
				                     "description": "also list disabled devices (default false)"},
				"limit": {"type": "integer", "minimum": 1, "maximum": 500,
				          "description": "at most this many devices (default 100)"}
			},
			"additionalProperties": false
		}),
		.output_schema = JSON({
			"type": "object",
			"properties": {
				"devices": {"type": "array", "items": {
					"type": "object",
					"properties": {
						"id": {"type": "integer"},
						"name": {"type": "string"},
						"kind": {"type": "string", "enum": ["nanokvm", "pikvm", "ami", "vnc"]},
						"url": {"type": "string"},
						"tags": {"type": "array", "items": {"type": "string"}},
						"enabled": {"type": "boolean"},
						"has_credentials": {"type": "boolean"},
						"screen_width": {"type": ["integer", "null"]},
						"screen_height": {"type": ["integer", "null"]},
						"created_at": {"type": "string"},
						"keep_warm": {"type": "boolean"}
					},
					"required": ["id", "name", "kind", "url", "tags", "enabled",
					             "has_credentials"]
				}},
				"truncated": {"type": "boolean"}
			},
			"required": ["devices", "truncated"]
		}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = false },
		.action = AUTHZ_DEVICES_READ,
		.fn = tool_list_devices,
	},
	{
		.name = "query_audit_log",
		.title = "Query the audit log",
		.description =
			"Lists events of the organisation's audit log, newest first: who called "
			"which tool or route, through which client, on which device, with what "
			"outcome. Filter by time (from, to: RFC 3339), actor (user or token name), "
			"tool (tool name or 'METHOD /route'), device (name or id) and outcome. "
			"Pass next_cursor back as cursor for the next page.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"from": {"type": "string", "maxLength": 40,
				         "description": "events at or after this time (RFC 3339)"},
				"to": {"type": "string", "maxLength": 40,
				       "description": "events before this time (RFC 3339)"},
				"actor": {"type": "string", "minLength": 1, "maxLength": 200,
				          "description": "user name or token name"},
				"tool": {"type": "string", "minLength": 1, "maxLength": 200,
				         "description": "tool name or 'METHOD /route'"},
				"device": {"type": "string", "minLength": 1, "maxLength": 200,
				           "description": "device name or id"},
				"outcome": {"type": "string", "enum": ["ok", "denied", "error", "pending"]},
				"cursor": {"type": "string", "maxLength": 24,
				           "description": "next_cursor of the previous page"},
				"limit": {"type": "integer", "minimum": 1, "maximum": 500,
				          "description": "at most this many events (default 50)"}
			},
			"additionalProperties": false
		}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = false },
		.action = AUTHZ_AUDIT_READ,
		.fn = tool_query_audit_log,
	},
	{
		.name = "verify_audit_integrity",
		.title = "Verify the audit log",
		.description =
			"Walks the organisation's audit hash chain and reports whether it is intact: "
			"events checked, the head hash, signed checkpoints verified, and the first "
			"broken event and why if it is not. Takes no arguments.",
		.input_schema = JSON({"type": "object", "properties": {},
		                      "additionalProperties": false}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = false },
		.action = AUTHZ_AUDIT_READ,
		.fn = tool_verify_audit_integrity,
	},
	{
		.name = "get_audit_chain_head",
		.title = "Audit chain head",
		.description =
			"The sequence number, hash and time of the last event of the "
			"organisation's audit chain: keep it elsewhere to detect a later rewrite. "
			"Takes no arguments.",
		.input_schema = JSON({"type": "object", "properties": {},
		                      "additionalProperties": false}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = false },
		.action = AUTHZ_AUDIT_READ,
		.fn = tool_get_audit_chain_head,
	},
	{
		.name = "get_screenshot",
		.title = "Screenshot",
		.description =
			"The current screen of a device as an image, with its size and capture "
			"time. A frame at most max_age_ms old is returned at once; otherwise the "
			"call waits up to 10 s for the next one. The first call for a device opens "
			"its video session, which can take a few seconds. With no other argument "
			"the device's own JPEG is returned as it is, at full resolution; format "
			"png, region, max_width or enhance re-encode it, and unless region or "
			"max_width is given the picture is then scaled to at most 1568 px and "
			"1.15 megapixels. enhance 'llm' makes console text crisper and darker "
			"backgrounds darker without turning grey text white. Mouse coordinates "
			"are pixels of the full screen, not of a scaled or cropped picture: the "
			"text block gives the screen size.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"max_age_ms": {"type": "integer", "minimum": 0, "maximum": 60000,
				               "description": "accept a frame this old (default 1000)"},
				"format": {"type": "string", "enum": ["jpeg", "png"],
				           "description": "image format (default jpeg)"},
				"max_width": {"type": "integer", "minimum": 16, "maximum": 16384,
				              "description": "scale down to at most this width, keeping the aspect ratio"},
				"region": {"type": "object",
				           "description": "only this rectangle of the screen, in screen pixels",
				           "properties": {
				               "x": {"type": "integer", "minimum": 0, "maximum": 16383},
				               "y": {"type": "integer", "minimum": 0, "maximum": 16383},
				               "width": {"type": "integer", "minimum": 1, "maximum": 16384},
				               "height": {"type": "integer", "minimum": 1, "maximum": 16384}
				           },
				           "required": ["x", "y", "width", "height"],
				           "additionalProperties": false},
				"enhance": {"type": "string", "enum": ["none", "llm"],
				            "description": "llm: contrast and sharpening for reading console text (default none)"}
			},
			"required": ["device"],
			"additionalProperties": false
		}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_CONSOLE_READ,
		.device = true,
		.fn = tool_get_screenshot,
	},
	{
		.name = "read_screen_text",
		.title = "Read the screen's text",
		.description =
			"The text on a device's screen, read by OCR (Tesseract): UTF-8, one line "
			"per line of text, empty lines left out, with the screen size, the frame "
			"and its capture time. Made for console screens (BIOS, boot, shells, "
			"installers), light text on dark included. A frame at most max_age_ms old "
			"is read, else the next one. region reads only that rectangle (screen "
			"pixels): faster, and better for small text. language is an installed "
			"Tesseract language (default eng), several joined with '+'. Text beyond "
			"8000 bytes is cut at a whole line, and the result says so. Reading takes "
			"about a second for a full 1920x1080 screen; the first call of a worker "
			"also loads the language.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"region": {"type": "object",
				           "description": "only this rectangle of the screen, in screen pixels",
				           "properties": {
				               "x": {"type": "integer", "minimum": 0, "maximum": 16383},
				               "y": {"type": "integer", "minimum": 0, "maximum": 16383},
				               "width": {"type": "integer", "minimum": 1, "maximum": 16384},
				               "height": {"type": "integer", "minimum": 1, "maximum": 16384}
				           },
				           "required": ["x", "y", "width", "height"],
				           "additionalProperties": false},
				"language": {"type": "string", "minLength": 1, "maxLength": 64,
				             "description": "OCR language(s), e.g. eng or eng+deu (default eng)"},
				"max_age_ms": {"type": "integer", "minimum": 0, "maximum": 60000,
				               "description": "accept a frame this old (default 1000)"}
			},
			"required": ["device"],
			"additionalProperties": false
		}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_CONSOLE_READ,
		.device = true,
		.fn = tool_read_screen_text,
	},
	{
		.name = "wait_for_screen",
		.title = "Wait for the screen",
		.description =
			"Waits until a device's screen shows some text, or until it changes, for "
			"at most timeout_ms (default 30000, at most 600000). Give exactly one of: "
			"text, found when a line read by OCR contains it (ignoring case and "
			"differences of spaces; with regex true, text is a POSIX extended regular "
			"expression matched against each line; match_case true to respect case); "
			"or change true, found when at least change_percent (default 0.01) of the "
			"screen, or of region, differs from the screen at the start (the pointer "
			"moving barely counts). The screen is looked at every interval_ms (default "
			"500) and read again only when it changed. Not finding it is not an "
			"error: the result says found false, with the text last read. Sends "
			"progress notifications when the call has a progressToken, and stops when "
			"cancelled.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"text": {"type": "string", "minLength": 1, "maxLength": 200,
				         "description": "the text to wait for (one line)"},
				"regex": {"type": "boolean",
				          "description": "text is a POSIX extended regular expression (default false)"},
				"match_case": {"type": "boolean",
				               "description": "respect upper and lower case (default false)"},
				"change": {"type": "boolean",
				           "description": "true: wait for the screen to change instead"},
				"change_percent": {"type": "number", "minimum": 0, "maximum": 100,
				                   "description": "change: percent of the screen or region that must differ (default 0.01)"},
				"region": {"type": "object",
				           "description": "only watch this rectangle of the screen, in screen pixels",
				           "properties": {
				               "x": {"type": "integer", "minimum": 0, "maximum": 16383},
				               "y": {"type": "integer", "minimum": 0, "maximum": 16383},
				               "width": {"type": "integer", "minimum": 1, "maximum": 16384},
				               "height": {"type": "integer", "minimum": 1, "maximum": 16384}
				           },
				           "required": ["x", "y", "width", "height"],
				           "additionalProperties": false},
				"timeout_ms": {"type": "integer", "minimum": 100, "maximum": 600000,
				               "description": "give up after this long (default 30000)"},
				"interval_ms": {"type": "integer", "minimum": 100, "maximum": 10000,
				                "description": "look at the screen at most this often (default 500)"},
				"language": {"type": "string", "minLength": 1, "maxLength": 64,
				             "description": "OCR language(s) for text (default eng)"},
				"max_age_ms": {"type": "integer", "minimum": 0, "maximum": 60000,
				               "description": "the first frame may be this old (default 1000)"}
			},
			"required": ["device"],
			"additionalProperties": false
		}),
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_CONSOLE_READ,
		.streams = true,
		.device = true,
		.fn = tool_wait_for_screen,
	},
	{
		.name = "get_device_health",
		.title = "Device health",
		.description =
			"Whether a device answers: its console session as the gateway holds it "
			"(idle, connecting, authenticating, streaming, backing_off, failed), the "
			"last error and why, failed attempts, firmware, the current screen size, "
			"and what the device says of itself when its kind can tell. Asking opens "
			"the device's session when it is idle, as a screenshot would.",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_DEVICES_HEALTH,
		.device = true,
		.fn = tool_get_device_health,
	},
	{
		.name = "type_text",
		.title = "Type text",
		.description =
			"Types text on a device's keyboard as a person would, character by "
			"character (newline presses Enter, tab presses Tab). Up to 16384 "
			"characters; long text is typed in parts, with progress notifications "
			"when the call has a progressToken. layout is the keyboard layout the "
			"machine expects (default us). For shortcuts and special keys use "
			"send_keys.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"text": {"type": "string", "minLength": 1, "maxLength": 16384,
				         "description": "the text to type"},
				"layout": {"type": "string", "minLength": 1, "maxLength": 16,
				           "description": "keyboard layout of the machine (default us)"}
			},
			"required": ["device", "text"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = false, .idempotent = false,
		           .open_world = true },
		.action = AUTHZ_INPUT_WRITE,
		.streams = true,
		.device = true,
		.fn = tool_type_text,
	},
	{
		.name = "send_keys",
		.title = "Press keys",
		.description =
			"Presses a key combination on a device, such as \"ctrl+alt+delete\", "
			"\"enter\", \"F2\" or \"alt+f4\", or a list of them pressed one after the "
			"other ([\"down\", \"down\", \"enter\"]). Names: letters, digits, enter, "
			"esc, tab, space, backspace, delete, insert, home, end, pageup, pagedown, "
			"up, down, left, right, f1-f12, printscreen, pause, capslock, numlock, "
			"menu; modifiers ctrl, shift, alt, altgr, meta (win, cmd) joined with '+'.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"keys": {"type": ["string", "array"], "minLength": 1, "maxLength": 64,
				         "minItems": 1, "maxItems": 64,
				         "items": {"type": "string", "minLength": 1, "maxLength": 64},
				         "description": "a key combination, or a list of them pressed in order"}
			},
			"required": ["device", "keys"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = false, .idempotent = false,
		           .open_world = true },
		.action = AUTHZ_INPUT_WRITE,
		.device = true,
		.fn = tool_send_keys,
	},
	{
		.name = "mouse_move",
		.title = "Move the mouse",
		.description =
			"Moves a device's mouse pointer to x, y: pixels of the full screen (as "
			"get_screenshot reports its size), from 0,0 at the top left.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"x": {"type": "integer", "minimum": 0, "maximum": 16383,
				      "description": "screen pixel from the left"},
				"y": {"type": "integer", "minimum": 0, "maximum": 16383,
				      "description": "screen pixel from the top"}
			},
			"required": ["device", "x", "y"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_INPUT_WRITE,
		.device = true,
		.fn = tool_mouse_move,
	},
	{
		.name = "mouse_click",
		.title = "Click",
		.description =
			"Clicks a mouse button on a device at x, y (screen pixels; both or "
			"neither: without them, where the pointer is). button left (default), "
			"right or middle; double true for a double click.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"x": {"type": "integer", "minimum": 0, "maximum": 16383,
				      "description": "screen pixel from the left"},
				"y": {"type": "integer", "minimum": 0, "maximum": 16383,
				      "description": "screen pixel from the top"},
				"button": {"type": "string", "enum": ["left", "right", "middle"],
				           "description": "default left"},
				"double": {"type": "boolean", "description": "a double click (default false)"}
			},
			"required": ["device"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = false, .idempotent = false,
		           .open_world = true },
		.action = AUTHZ_INPUT_WRITE,
		.device = true,
		.fn = tool_mouse_click,
	},
	{
		.name = "mouse_scroll",
		.title = "Scroll",
		.description =
			"Turns a device's mouse wheel at x, y (screen pixels): amount steps "
			"(default 3) in direction down (default) or up.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"x": {"type": "integer", "minimum": 0, "maximum": 16383,
				      "description": "screen pixel from the left"},
				"y": {"type": "integer", "minimum": 0, "maximum": 16383,
				      "description": "screen pixel from the top"},
				"amount": {"type": "integer", "minimum": 1, "maximum": 50,
				           "description": "wheel steps (default 3)"},
				"direction": {"type": "string", "enum": ["down", "up"],
				              "description": "default down"}
			},
			"required": ["device", "x", "y"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = false, .idempotent = false,
		           .open_world = true },
		.action = AUTHZ_INPUT_WRITE,
		.device = true,
		.fn = tool_mouse_scroll,
	},
	{
		.name = "reset_hid",
		.title = "Reset keyboard and mouse",
		.description =
			"Resets a device's virtual keyboard and mouse (releases stuck keys and "
			"buttons; on some devices re-attaches them to the machine). Use it when "
			"keys or clicks stop having an effect.",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = false, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_INPUT_WRITE,
		.device = true,
		.fn = tool_reset_hid,
	},
	{
		.name = "power_action",
		.title = "Power action",
		.description =
			"Changes a machine's power through its device: on, off (a clean power-off "
			"request where the device can), off_hard (cut power), reset, cycle (off "
			"then on), power_short (a short press of the power button), power_long (a "
			"long press: forced off). off, off_hard, reset, cycle and power_long lose "
			"unsaved work and need the user's confirmation: the user is asked when "
			"the client supports it, otherwise call again with confirm true once the "
			"user agreed. Check get_power_state first.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"action": {"type": "string",
				           "enum": ["on", "off", "off_hard", "reset", "cycle",
				                    "power_short", "power_long"]},
				"confirm": {"type": "boolean",
				            "description": "true once the user confirmed a destructive action"}
			},
			"required": ["device", "action"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = true, .idempotent = false,
		           .open_world = true },
		.action = AUTHZ_POWER_WRITE,
		.streams = true,
		.device = true,
		.fn = tool_power_action,
	},
	{
		.name = "get_power_state",
		.title = "Power state",
		.description =
			"Whether a machine is on, as its device reports it (power and LEDs where "
			"the device has them).",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_POWER_READ,
		.device = true,
		.fn = tool_get_power_state,
	},
	{
		.name = "hdmi_reset",
		.title = "Reset HDMI capture",
		.description =
			"Resets a device's HDMI capture when its picture is frozen, black or "
			"garbled; the machine itself is not touched. The picture takes a few "
			"seconds to come back.",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = false, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_POWER_WRITE,
		.device = true,
		.fn = tool_hdmi_reset,
	},
	{
		.name = "list_isos",
		.title = "List images",
		.description =
			"The installer images (ISO, IMG) stored on a device that mount_iso can "
			"mount, by name.",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_MEDIA_READ,
		.device = true,
		.fn = tool_list_isos,
	},
	{
		.name = "mount_iso",
		.title = "Mount an image",
		.description =
			"Mounts an image stored on a device (a name list_isos gives) as the "
			"machine's virtual CD-ROM (as cdrom, default) or USB disk (as disk). The "
			"machine may boot from it, so the user must confirm: they are asked when "
			"the client supports it, otherwise call again with confirm true once the "
			"user agreed. An image already mounted is replaced.",
		.input_schema = JSON({
			"type": "object",
			"properties": {
				"device": {"type": "string", "minLength": 1, "maxLength": 100,
				           "description": "device name or id"},
				"image": {"type": "string", "minLength": 1, "maxLength": 255,
				          "description": "image name as list_isos shows it"},
				"as": {"type": "string", "enum": ["cdrom", "disk"],
				       "description": "default cdrom"},
				"confirm": {"type": "boolean",
				            "description": "true once the user confirmed"}
			},
			"required": ["device", "image"],
			"additionalProperties": false
		}),
		.hints = { .read_only = false, .destructive = true, .idempotent = false,
		           .open_world = true },
		.action = AUTHZ_MEDIA_WRITE,
		.streams = true,
		.device = true,
		.fn = tool_mount_iso,
	},
	{
		.name = "unmount_iso",
		.title = "Unmount the image",
		.description = "Unmounts a device's virtual media; nothing happens when none is mounted.",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = false, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_MEDIA_WRITE,
		.device = true,
		.fn = tool_unmount_iso,
	},
	{
		.name = "get_mounted_iso",
		.title = "Mounted image",
		.description = "Which image a device has mounted, if any, and whether as a CD-ROM.",
		.input_schema = DEVICE_ONLY_SCHEMA,
		.hints = { .read_only = true, .destructive = false, .idempotent = true,
		           .open_world = true },
		.action = AUTHZ_MEDIA_READ,
		.device = true,
		.fn = tool_get_mounted_iso,
	},
};

#define MAX_TOOLS 128

/* Tools added by tools_register() (the test build's fixtures). */
static const struct tool *extra_tools;
static int nextra_tools;

/* Parsed schemas, [i][0] input and [i][1] output; owned here for the process's life. */
static json_object *schemas[MAX_TOOLS][2];

void tools_register(const struct tool *rows, int n)
{
	if (extra_tools != NULL || n < 0 || (int)ARRAY_LEN(builtin) + n > MAX_TOOLS)
		abort();
	extra_tools = rows;
	nextra_tools = n;
}

int tool_count(void)
{
	return (int)ARRAY_LEN(builtin) + nextra_tools;
}

const struct tool *tool_at(int i)
{
	if (i < 0 || i >= tool_count())
		return NULL;
	return i < (int)ARRAY_LEN(builtin) ? &builtin[i] : &extra_tools[i - (int)ARRAY_LEN(builtin)];
}

static json_object *parsed_schema(int i, int which)
{
	const struct tool *t = tool_at(i);
	const char *text = which ? t->output_schema : t->input_schema;

	if (text == NULL || schemas[i][which] != NULL)
		return schemas[i][which];
	schemas[i][which] = json_tokener_parse(text);
	if (!json_object_is_type(schemas[i][which], json_type_object)) {
		log_errx("tool %s: the %s schema is not a JSON object", t->name,
		         which ? "output" : "input");
		abort();
	}
	return schemas[i][which];
}

json_object *tool_input_schema(int i)
{
	return parsed_schema(i, 0);
}

json_object *tool_output_schema(int i)
{
	return parsed_schema(i, 1);
}

/* ---- results ------------------------------------------------------------- */

static void add_text(struct tool_result *res, const char *text)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "type", json_object_new_string("text"));
	json_object_object_add(b, "text", json_object_new_string(text));
	json_object_array_add(res->content, b);
}

static void add_textv(struct tool_result *res, const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	add_text(res, s);
	free(s);
}

void tool_text(struct tool_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_textv(res, fmt, ap);
	va_end(ap);
}

void tool_fail(struct tool_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_textv(res, fmt, ap);
	va_end(ap);
	res->is_error = true;
}

void tool_content(struct tool_result *res, json_object *block)
{
	json_object_array_add(res->content, block);
}

void tool_structured(struct tool_result *res, json_object *o)
{
	json_object_put(res->structured);
	res->structured = o;
	add_text(res, json_object_to_json_string_ext(o,
	         JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- argument checks ----------------------------------------------------- */

/* JSON Schema types of the subset, with the words a message uses for them. */
static const struct {
	const char *name, *phrase;
} types[] = {
	{ "string", "a string" }, { "integer", "an integer" },
	{ "number", "a number" }, { "boolean", "true or false" },
	{ "array", "an array" }, { "object", "an object" },
};

/* Keywords the subset understands, at the top (or of a nested object) and for a property. */
static const char *const top_keywords[] = {
	"type", "properties", "required", "additionalProperties", "$schema", "title",
	"description",
};
static const char *const prop_keywords[] = {
	"type", "enum", "minimum", "maximum", "minLength", "maxLength", "title",
	"description", "default", "items", "minItems", "maxItems", "properties", "required",
	"additionalProperties",
};

/* How deep objects and arrays may nest in a schema. */
#define SCHEMA_DEPTH_MAX 2

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

static const char *type_phrase(const char *type)
{
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (strcmp(types[i].name, type) == 0)
			return types[i].phrase;
	return type;
}

/* What a JSON value is, for "must be X, not Y". */
static const char *value_phrase(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:	return "null";
	case json_type_boolean:	return "a boolean";
	case json_type_double:	return "a number";
	case json_type_int:	return "an integer";
	case json_type_object:	return "an object";
	case json_type_array:	return "an array";
	case json_type_string:	return "a string";
	}
	return "something else";
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

static bool has_type(json_object *v, const char *type)
{
	if (strcmp(type, "string") == 0)
		return json_object_is_type(v, json_type_string);
	if (strcmp(type, "boolean") == 0)
		return json_object_is_type(v, json_type_boolean);
	if (strcmp(type, "number") == 0)
		return is_number(v);
	if (strcmp(type, "array") == 0)
		return json_object_is_type(v, json_type_array);
	if (strcmp(type, "object") == 0)
		return json_object_is_type(v, json_type_object);
	if (strcmp(type, "integer") == 0) {
		double d = json_object_get_double(v);
		/* JSON Schema counts 3.0 as an integer; json-c parses it as a double.
		 * Within +-2^53 the cast is exact for integers (and NaN fails both). */
		return json_object_is_type(v, json_type_int) ||
		       (json_object_is_type(v, json_type_double) && d > -9007199254740992.0 &&
		        d < 9007199254740992.0 && d == (double)(int64_t)d);
	}
	return false;
}

/*
 * Whether v is of the property's type ("type": a name or a list of names);
 * when not, *phrase is what it should have been ("a string or an array").
 */
static bool type_matches(json_object *type, json_object *v, struct buf *phrase)
{
	if (json_object_is_type(type, json_type_string)) {
		buf_puts(phrase, type_phrase(json_object_get_string(type)));
		return has_type(v, json_object_get_string(type));
	}
	for (size_t i = 0; i < json_object_array_length(type); i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(type, i));
		if (has_type(v, t))
			return true;
		buf_printf(phrase, "%s%s", i ? " or " : "", type_phrase(t));
	}
	return false;
}

/* Unicode code points in UTF-8 text (the tokenizer has validated it). */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* A number keyword of a property schema into *out; false when absent. */
static bool number_keyword(json_object *prop, const char *key, double *out)
{
	json_object *v;

	if (!json_object_object_get_ex(prop, key, &v) || !is_number(v))
		return false;
	*out = json_object_get_double(v);
	return true;
}

/* Joins the JSON texts of an array's items with ", " (strings without quotes). */
static void join_values(json_object *arr, struct buf *b)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		buf_printf(b, "%s%s", i ? ", " : "", json_object_is_type(e, json_type_string)
		           ? json_object_get_string(e) : json_object_to_json_string(e));
	}
}

static int check_object(json_object *schema, json_object *args, const char *prefix,
                        char *why, size_t len);

/* Checks one argument (named key: "region.x", "keys[2]") against its property schema. */
static int check_value(const char *key, json_object *prop, json_object *v,
                       char *why, size_t len)
{
	json_object *kw;
	double bound;

	if (json_object_object_get_ex(prop, "type", &kw)) {
		struct buf want = BUF_INIT;
		bool ok = type_matches(kw, v, &want);

		if (!ok)
			snprintf(why, len, "Argument '%.64s' must be %s, not %s.", key, want.data,
			         value_phrase(v));
		buf_free(&want);
		if (!ok)
			return -1;
	}
	if (json_object_object_get_ex(prop, "enum", &kw)) {
		struct buf b = BUF_INIT;
		size_t i, n = json_object_array_length(kw);

		for (i = 0; i < n && !json_object_equal(v, json_object_array_get_idx(kw, i)); i++)
			;
		if (i == n) {
			join_values(kw, &b);
			snprintf(why, len, "Argument '%.64s' must be one of: %s.", key, b.data);
			buf_free(&b);
			return -1;
		}
	}
	if (is_number(v) && number_keyword(prop, "minimum", &bound) &&
	    json_object_get_double(v) < bound) {
		snprintf(why, len, "Argument '%.64s' must be at least %g.", key, bound);
		return -1;
	}
	if (is_number(v) && number_keyword(prop, "maximum", &bound) &&
	    json_object_get_double(v) > bound) {
		snprintf(why, len, "Argument '%.64s' must be at most %g.", key, bound);
		return -1;
	}
	if (json_object_is_type(v, json_type_string) && number_keyword(prop, "maxLength", &bound) &&
	    (double)utf8_chars(json_object_get_string(v)) > bound) {
		snprintf(why, len, "Argument '%.64s' must be at most %g characters long.", key, bound);
		return -1;
	}
	if (json_object_is_type(v, json_type_string) && number_keyword(prop, "minLength", &bound) &&
	    (double)utf8_chars(json_object_get_string(v)) < bound) {
		snprintf(why, len, "Argument '%.64s' must be at least %g character%s long.", key,
		         bound, bound == 1 ? "" : "s");
		return -1;
	}
	if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);

		if (number_keyword(prop, "minItems", &bound) && (double)n < bound) {
			snprintf(why, len, "Argument '%.64s' must have at least %g item%s.", key, bound,
			         bound == 1 ? "" : "s");
			return -1;
		}
		if (number_keyword(prop, "maxItems", &bound) && (double)n > bound) {
			snprintf(why, len, "Argument '%.64s' must have at most %g items.", key, bound);
			return -1;
		}
		if (json_object_object_get_ex(prop, "items", &kw)) {
			for (size_t i = 0; i < n; i++) {
				char name[96];
				snprintf(name, sizeof name, "%.64s[%zu]", key, i);
				if (check_value(name, kw, json_object_array_get_idx(v, i), why, len) < 0)
					return -1;
			}
		}
	}
	if (json_object_is_type(v, json_type_object))
		return check_object(prop, v, key, why, len);
	return 0;
}

/* Checks an object against an object schema; prefix names it in messages ("" at the top). */
static int check_object(json_object *schema, json_object *args, const char *prefix,
                        char *why, size_t len)
{
	json_object *props = NULL, *required, *extra, *prop;
	char name[160];

	json_object_object_get_ex(schema, "properties", &props);
	if (json_object_object_get_ex(schema, "required", &required)) {
		for (size_t i = 0; i < json_object_array_length(required); i++) {
			const char *r = json_object_get_string(json_object_array_get_idx(required, i));
			if (!json_object_object_get_ex(args, r, NULL)) {
				snprintf(why, len, "Missing required argument '%s%s%s'.", prefix,
				         *prefix ? "." : "", r);
				return -1;
			}
		}
	}
	json_object_object_foreach(args, key, value) {
		snprintf(name, sizeof name, "%.64s%s%.64s", prefix, *prefix ? "." : "", key);
		if (props != NULL && json_object_object_get_ex(props, key, &prop)) {
			if (check_value(name, prop, value, why, len) < 0)
				return -1;
			continue;
		}
		if (json_object_object_get_ex(schema, "additionalProperties", &extra) &&
		    json_object_is_type(extra, json_type_boolean) && !json_object_get_boolean(extra)) {
			struct buf b = BUF_INIT;
			if (props != NULL) {
				json_object_object_foreach(props, pname, unused) {
					(void)unused;
					buf_printf(&b, "%s%s", b.len ? ", " : "", pname);
				}
			}
			if (*prefix)
				snprintf(why, len, "Unknown argument '%.64s'; '%.64s' takes: %s.", name,
				         prefix, b.len ? b.data : "nothing");
			else
				snprintf(why, len, "Unknown argument '%.64s'; %s%s.", key,
				         b.len ? "this tool accepts: " : "this tool takes no arguments",
				         b.len ? b.data : "");
			buf_free(&b);
			return -1;
		}
	}
	return 0;
}

int tool_check_args(json_object *schema, json_object *args, char *why, size_t len)
{
	if (!json_object_is_type(args, json_type_object)) {
		snprintf(why, len, "The arguments must be a JSON object, not %s.", value_phrase(args));
		return -1;
	}
	return check_object(schema, args, "", why, len);
}

static bool object_supported(const char *name, json_object *schema, int depth, char *why,
                             size_t len);

/* Whether one type name (or list of them) is of the subset; *has_array and *has_object say which. */
static bool type_supported(const char *name, json_object *t, bool *has_array, bool *has_object,
                           char *why, size_t len)
{
	size_t n = json_object_is_type(t, json_type_array) ? json_object_array_length(t) : 1;

	if (!json_object_is_type(t, json_type_string) &&
	    (!json_object_is_type(t, json_type_array) || n == 0)) {
		snprintf(why, len, "property '%s': type must be a name or a non-empty list of names",
		         name);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_is_type(t, json_type_array)
			? json_object_array_get_idx(t, i) : t;
		bool known = false;

		for (size_t j = 0; j < ARRAY_LEN(types) && json_object_is_type(e, json_type_string); j++)
			known |= strcmp(types[j].name, json_object_get_string(e)) == 0;
		if (!known) {
			snprintf(why, len, "property '%s' has unsupported type '%s'", name,
			         json_object_get_string(e));
			return false;
		}
		*has_array |= strcmp(json_object_get_string(e), "array") == 0;
		*has_object |= strcmp(json_object_get_string(e), "object") == 0;
	}
	return true;
}

/* Whether one property schema stays inside the subset. */
static bool prop_supported(const char *name, json_object *prop, int depth, char *why, size_t len)
{
	json_object *t, *e;
	bool has_array = false, has_object = false;

	if (!json_object_is_type(prop, json_type_object) ||
	    !json_object_object_get_ex(prop, "type", &t)) {
		snprintf(why, len, "property '%s' has no type", name);
		return false;
	}
	if (!type_supported(name, t, &has_array, &has_object, why, len))
		return false;
	json_object_object_foreach(prop, k, unused) {
		(void)unused;
		if (!in_list(k, prop_keywords, ARRAY_LEN(prop_keywords))) {
			snprintf(why, len, "property '%s': unsupported keyword '%s'", name, k);
			return false;
		}
	}
	if (json_object_object_get_ex(prop, "enum", &e) &&
	    (!json_object_is_type(e, json_type_array) || json_object_array_length(e) == 0)) {
		snprintf(why, len, "property '%s': enum must be a non-empty array", name);
		return false;
	}
	if (has_array || has_object) {
		if (depth >= SCHEMA_DEPTH_MAX) {
			snprintf(why, len, "property '%s' nests too deep", name);
			return false;
		}
	}
	/* An array says what its items are, and only an array does. */
	if (has_array != json_object_object_get_ex(prop, "items", &e)) {
		snprintf(why, len, "property '%s': items %s", name,
		         has_array ? "is required for an array" : "is only for arrays");
		return false;
	}
	if (has_array && !prop_supported(name, e, depth + 1, why, len))
		return false;
	if (!has_object && (json_object_object_get_ex(prop, "properties", NULL) ||
	                    json_object_object_get_ex(prop, "required", NULL) ||
	                    json_object_object_get_ex(prop, "additionalProperties", NULL))) {
		snprintf(why, len, "property '%s': properties are only for objects", name);
		return false;
	}
	if (has_object)
		return object_supported(name, prop, depth + 1, why, len);
	return true;
}

/* Whether an object schema's properties, required and additionalProperties are of the subset. */
static bool object_supported(const char *name, json_object *schema, int depth, char *why,
                             size_t len)
{
	json_object *v, *props = NULL;

	if (json_object_object_get_ex(schema, "additionalProperties", &v) &&
	    !json_object_is_type(v, json_type_boolean)) {
		snprintf(why, len, "%s%sadditionalProperties must be a boolean", name, *name ? ": " : "");
		return false;
	}
	if (json_object_object_get_ex(schema, "properties", &props)) {
		if (!json_object_is_type(props, json_type_object)) {
			snprintf(why, len, "%s%sproperties must be an object", name, *name ? ": " : "");
			return false;
		}
		json_object_object_foreach(props, pname, prop)
			if (!prop_supported(pname, prop, depth, why, len))
				return false;
	}
	if (json_object_object_get_ex(schema, "required", &v)) {
		if (!json_object_is_type(v, json_type_array)) {
			snprintf(why, len, "%s%srequired must be an array", name, *name ? ": " : "");
			return false;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *n = json_object_array_get_idx(v, i);
			if (!json_object_is_type(n, json_type_string) || props == NULL ||
			    !json_object_object_get_ex(props, json_object_get_string(n), NULL)) {
				snprintf(why, len, "%s%srequired names an undeclared property", name,
				         *name ? ": " : "");
				return false;
			}
		}
	}
	return true;
}

bool tool_schema_supported(json_object *schema, char *why, size_t len)
{
	json_object *v;

	if (!json_object_is_type(schema, json_type_object) ||
	    !json_object_object_get_ex(schema, "type", &v) ||
	    strcmp(json_object_get_string(v), "object") != 0) {
		snprintf(why, len, "the schema is not of type object");
		return false;
	}
	json_object_object_foreach(schema, key, unused) {
		(void)unused;
		if (!in_list(key, top_keywords, ARRAY_LEN(top_keywords))) {
			snprintf(why, len, "unsupported keyword '%s'", key);
			return false;
		}
	}
	return object_supported("", schema, 0, why, len);
}

/* ---- tools/list and tools/call ------------------------------------------- */

static bool visible(const struct tool *t, const struct token_identity *who)
{
	return authz_allowed(who, t->action);
}

/* The tool object tools/list shows for row i; the caller owns it. */
static json_object *tool_json(int i)
{
	const struct tool *t = tool_at(i);
	json_object *o = json_object_new_object(), *a = json_object_new_object(), *copy = NULL;
	json_object *meta;

	json_object_object_add(o, "name", json_object_new_string(t->name));
	json_object_object_add(o, "title", json_object_new_string(t->title));
	json_object_object_add(o, "description", json_object_new_string(t->description));
	if (json_object_deep_copy(parsed_schema(i, 0), &copy, NULL) != 0)
		abort();
	json_object_object_add(o, "inputSchema", copy);
	if (t->output_schema != NULL) {
		copy = NULL;
		if (json_object_deep_copy(parsed_schema(i, 1), &copy, NULL) != 0)
			abort();
		json_object_object_add(o, "outputSchema", copy);
	}
	json_object_object_add(a, "title", json_object_new_string(t->title));
	json_object_object_add(a, "readOnlyHint", json_object_new_boolean(t->hints.read_only));
	json_object_object_add(a, "destructiveHint", json_object_new_boolean(t->hints.destructive));
	json_object_object_add(a, "idempotentHint", json_object_new_boolean(t->hints.idempotent));
	json_object_object_add(a, "openWorldHint", json_object_new_boolean(t->hints.open_world));
	json_object_object_add(o, "annotations", a);
	/* What the role matrix calls the tool's action, for clients and tests. */
	meta = json_object_new_object();
	json_object_object_add(meta, "kvmgate/action",
	                       json_object_new_string(authz_rule(t->action)->name));
	json_object_object_add(o, "_meta", meta);
	return o;
}

int mcp_tools_list(struct mcp_call *c, json_object *params, json_object **result)
{
	json_object *cursor = NULL, *list;
	long long start = 0;
	int nvisible = 0, seen = 0, shown = 0;
	const char *err;

	for (int i = 0; i < tool_count(); i++)
		nvisible += visible(tool_at(i), &c->req->who);
	if (params != NULL && json_object_object_get_ex(params, "cursor", &cursor) &&
	    cursor != NULL) {
		const char *s = json_object_get_string(cursor);
		if (!json_object_is_type(cursor, json_type_string) ||
		    strncmp(s, CURSOR_PREFIX, strlen(CURSOR_PREFIX)) != 0 ||
		    parse_ll(s + strlen(CURSOR_PREFIX), 1, nvisible - 1, &start, &err) < 0)
			return mcp_fail(c, RPC_INVALID_PARAMS, "Invalid cursor");
	}
	list = json_object_new_array();
	for (int i = 0; i < tool_count() && shown < TOOLS_PAGE; i++) {
		if (!visible(tool_at(i), &c->req->who) || seen++ < start)
			continue;
		json_object_array_add(list, tool_json(i));
		shown++;
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "tools", list);
	if (start + shown < nvisible) {
		char next[32];
		snprintf(next, sizeof next, CURSOR_PREFIX "%lld", start + shown);
		json_object_object_add(*result, "nextCursor", json_object_new_string(next));
	}
	return RPC_OK;
}

/* params._meta.progressToken (a string or an integer), or NULL. */
static json_object *progress_token(json_object *params)
{
	json_object *meta, *token;

	if (!json_object_object_get_ex(params, "_meta", &meta) ||
	    !json_object_is_type(meta, json_type_object) ||
	    !json_object_object_get_ex(meta, "progressToken", &token))
		return NULL;
	if (json_object_is_type(token, json_type_int) ||
	    (json_object_is_type(token, json_type_string) &&
	     json_object_get_string_len(token) <= MCP_ID_MAX))
		return token;
	return NULL;
}

/* The text of res's first content block, or NULL: the reason an audit event gives. */
static const char *first_text(const struct tool_result *res)
{
	json_object *b = json_object_array_get_idx(res->content, 0), *text;

	return b != NULL && json_object_object_get_ex(b, "text", &text)
		? json_object_get_string(text) : NULL;
}

/*
 * For a tool with .device: finds args.device in the caller's organisation
 * into c->device, names it in the audit event and checks action on it (the
 * token's device tag). Returns 0, or -1 with res saying what to change and
 * the record finished.
 */
static int find_device(struct mcp_call *c, json_object *args, struct audited *au,
                       enum authz_action action, struct tool_result *res)
{
	json_object *v;
	const char *ref = json_object_object_get_ex(args, "device", &v) ? json_object_get_string(v) : "";
	enum audit_outcome outcome = AUDIT_ERROR;
	char why[512];
	int found = device_find(&c->req->who, ref, &c->device);

	if (found < 0) {
		snprintf(why, sizeof why, "The device could not be looked up because the database is "
		         "unavailable; try again in a few seconds.");
	} else if (found > 0) {
		snprintf(why, sizeof why, "There is no device '%.100s' in your organisation; "
		         "list_devices shows the names and ids you can use.", ref);
	} else {
		audited_device(au, &c->device);
		if (authz_check(&c->req->who, action, &c->device, why, sizeof why) < 0)
			outcome = AUDIT_DENIED;
		else if (!c->device.enabled)
			snprintf(why, sizeof why, "The device '%s' is disabled; an administrator can "
			         "enable it.", c->device.name);
		else
			return 0;
	}
	tool_fail(res, "%s", why);
	if (audited_end(au, outcome, why) < 0)
		log_warnx("a refused call about a device is not in the audit log");
	return -1;
}

/*
 * The one path of a tools/call of tool i: the authorisation step, the
 * argument checks, the audit events (a write's intent committed before its
 * handler runs, the outcome after; a read's one event before its result is
 * given), the handler. Returns what the handler returned, res filled.
 */
static int run_tool(struct mcp_call *c, int i, json_object *args, struct tool_result *res)
{
	const struct tool *t = tool_at(i);
	const struct authz_rule *rule = authz_rule(t->action);
	bool write = rule != NULL && rule->scope == AUTHZ_SCOPE_WRITE;
	enum audit_outcome outcome;
	const char *reason = NULL;
	struct audited au;
	char why[512];
	int rc;

	audited_begin(&au, c->req, c, t->name, json_object_get(args));
	if (authz_check(&c->req->who, t->action, NULL, why, sizeof why) < 0) {
		tool_fail(res, "%s", why);
		if (audited_end(&au, AUDIT_DENIED, why) < 0)
			log_warnx("a denied call of %s is not in the audit log", t->name);
		return RPC_OK;
	}
	if (tool_check_args(parsed_schema(i, 0), args, why, sizeof why) < 0) {
		tool_fail(res, "%s", why);
		if (audited_end(&au, AUDIT_ERROR, why) < 0)
			log_warnx("a refused call of %s is not in the audit log", t->name);
		return RPC_OK;
	}
	if (t->device && find_device(c, args, &au, t->action, res) < 0)
		return RPC_OK;
	if (write && audited_intent(&au) < 0) {
		tool_fail(res, AUDIT_NOT_DONE);
		return RPC_OK;
	}
	/* A call that cannot stream still runs: without notifications. */
	if ((t->streams || c->progress_token != NULL) && mcp_stream_begin(c) < 0)
		log_debug("tool %s runs without a stream", t->name);
	rc = t->fn(c, args, res);
	if (rc == RPC_OK && !res->is_error && t->output_schema != NULL && res->structured == NULL) {
		log_errx("tool %s returned no structured content for its output schema", t->name);
		rc = mcp_fail(c, RPC_INTERNAL_ERROR, "internal error in tool %s", t->name);
	}
	outcome = rc == RPC_OK && !res->is_error ? AUDIT_OK : AUDIT_ERROR;
	if (rc == RPC_CANCELLED)
		reason = "cancelled";
	else if (rc != RPC_OK)
		reason = c->error;
	else if (res->is_error)
		reason = first_text(res);
	if (audited_end(&au, outcome, reason) < 0 && !write && rc == RPC_OK) {
		/* A read whose event is not recorded gives nothing away. */
		json_object_put(res->content);
		json_object_put(res->structured);
		res->content = json_object_new_array();
		res->structured = NULL;
		tool_fail(res, AUDIT_NOT_DONE);
	}
	return rc;
}

int mcp_tools_call(struct mcp_call *c, json_object *params, json_object **result)
{
	struct tool_result res = { NULL, NULL, false };
	json_object *v, *args = NULL, *empty = NULL;
	const char *name;
	int i, rc;

	if (params == NULL || !json_object_object_get_ex(params, "name", &v) ||
	    !json_object_is_type(v, json_type_string))
		return mcp_fail(c, RPC_INVALID_PARAMS, "tools/call needs params.name, a tool name");
	name = json_object_get_string(v);
	for (i = 0; i < tool_count(); i++)
		if (strcmp(tool_at(i)->name, name) == 0)
			break;
	if (i == tool_count())
		return mcp_fail(c, RPC_INVALID_PARAMS, "Unknown tool: %.128s", name);
	if (json_object_object_get_ex(params, "arguments", &args) && args != NULL &&
	    !json_object_is_type(args, json_type_object))
		return mcp_fail(c, RPC_INVALID_PARAMS, "arguments must be an object");
	if (args == NULL)
		args = empty = json_object_new_object();
	c->progress_token = progress_token(params);
	c->progress = -1;

	res.content = json_object_new_array();
	rc = run_tool(c, i, args, &res);
	/* Logged with the request's line (worker.c). */
	snprintf(c->req->tool.name, sizeof c->req->tool.name, "%s", name);
	snprintf(c->req->tool.session, sizeof c->req->tool.session, "%.8s", c->session.id);
	c->req->tool.result = rc == RPC_CANCELLED ? "cancelled" : rc != RPC_OK ? "protocol error"
	                      : res.is_error ? "tool error" : "ok";
	c->req->tool.failed = rc != RPC_OK && rc != RPC_CANCELLED;
	if (rc == RPC_OK) {
		*result = json_object_new_object();
		json_object_object_add(*result, "content", res.content);
		if (res.structured != NULL && !res.is_error)
			json_object_object_add(*result, "structuredContent", res.structured);
		else
			json_object_put(res.structured);
		json_object_object_add(*result, "isError", json_object_new_boolean(res.is_error));
	} else {
		json_object_put(res.content);
		json_object_put(res.structured);
	}
	json_object_put(empty);
	return rc;
}
