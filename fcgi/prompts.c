/*
 * prompts.c - MCP prompts for common console work, and completion of
 * prompt and resource-template arguments (device names).
 *
 * A prompt row names its arguments and gives a text whose {argument} parts
 * are replaced by their values; each text names the tools it expects the
 * assistant to use, so the steps work the same on every host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fcgi.h"

#define MAX_PROMPTS 32
#define ARG_VALUE_MAX 1000
#define COMPLETIONS_MAX 100

static const struct prompt builtin[] = {
	{
		.name = "diagnose_boot_failure",
		.title = "Diagnose a machine that does not boot",
		.description = "Walks through finding where a machine's boot stops (no signal, "
		               "firmware, boot loader, kernel) from its console, and what to do "
		               "about it.",
		.args = {
			{ "device", "the device (name or id) whose machine does not boot", true, true, NULL },
			{ "symptom", "what was noticed, in a few words", false, false, "none given" },
		},
		.action = AUTHZ_DEVICES_READ,
		.text =
			"The machine behind the console {device} does not boot. Reported symptom: "
			"{symptom}. Find out where its boot stops and, where it is safe, get it "
			"booting again.\n"
			"1. Call get_device_health and get_power_state for {device}: is the KVM "
			"reachable, the machine powered, a video signal present?\n"
			"2. Call get_screenshot, and read_screen_text for the text on it, to see "
			"where the boot stops: no signal, firmware or POST screen, boot device menu, "
			"boot loader, kernel messages, a login prompt.\n"
			"3. At a firmware screen, describe it; use send_keys (for example \"f2\", "
			"\"del\", \"f11\" or \"esc\") only to read setup or the boot menu, and say "
			"what you are about to change before changing anything.\n"
			"4. Only if the screen stays black and nothing responds, propose "
			"power_action with reset or cycle; it is destructive and asks for "
			"confirmation.\n"
			"5. Use wait_for_screen to see each step take effect, and end with a short "
			"report: what you saw, what you did, what should happen next.",
	},
	{
		.name = "confirm_os_install",
		.title = "Confirm an OS installation finished",
		.description = "Checks from the console whether an operating system installation "
		               "has finished, takes the installer image out, and watches the "
		               "installed system boot.",
		.args = {
			{ "device", "the device (name or id) being installed", true, true, NULL },
			{ "os", "the operating system being installed", false, false,
			  "operating system not named" },
		},
		.action = AUTHZ_DEVICES_READ,
		.text =
			"Check whether the installation on {device} ({os}) has finished and the "
			"machine boots the installed system.\n"
			"1. Call get_screenshot and read_screen_text for {device}: is the installer "
			"still running, waiting for input, showing an error, or done?\n"
			"2. If it waits for an answer you are sure of (such as \"Reboot now\" after "
			"a completed installation), give it with send_keys or mouse_click; "
			"otherwise describe the question and stop.\n"
			"3. Once it is done, call get_mounted_iso and unmount_iso so the machine "
			"does not start the installer again, then wait_for_screen until the "
			"installed system's login prompt appears.\n"
			"4. Report the outcome with the text of the last screenshot: finished and "
			"booted, still running (how far), or failed (the error).",
	},
	{
		.name = "recover_kernel_panic",
		.title = "Recover from a kernel panic",
		.description = "Records a kernel panic from the console, resets the machine with "
		               "confirmation, and brings it back, with a fallback kernel if needed.",
		.args = {
			{ "device", "the device (name or id) showing the panic", true, true, NULL },
		},
		.action = AUTHZ_DEVICES_READ,
		.text =
			"The machine behind {device} shows, or is thought to show, a kernel panic. "
			"Recover it carefully.\n"
			"1. Call get_screenshot and read_screen_text for {device}; copy the panic "
			"message, the first lines of the call trace and the kernel version exactly: "
			"a person will need them later.\n"
			"2. A panicked kernel does not take input: propose power_action with reset "
			"(destructive; it asks for confirmation) and say why.\n"
			"3. After the reset, use wait_for_screen for the boot loader; if it offers "
			"an older kernel or a recovery entry, choose it with send_keys (\"down\", "
			"\"enter\").\n"
			"4. Follow the boot with wait_for_screen and get_screenshot until a login "
			"prompt, then report the panic text, what you did and which kernel runs now.",
	},
};

static const struct prompt *extra;
static int nextra;

void prompts_register(const struct prompt *rows, int n)
{
	if (extra != NULL || n < 0 || (int)ARRAY_LEN(builtin) + n > MAX_PROMPTS)
		abort();
	extra = rows;
	nextra = n;
}

static int count(void)
{
	return (int)ARRAY_LEN(builtin) + nextra;
}

static const struct prompt *row(int i)
{
	return i < (int)ARRAY_LEN(builtin) ? &builtin[i] : &extra[i - (int)ARRAY_LEN(builtin)];
}

static bool visible(const struct prompt *p, const struct token_identity *who)
{
	return authz_allowed(who, p->action);
}

static const struct prompt *find(struct mcp_call *c, const char *name)
{
	for (int i = 0; i < count(); i++)
		if (strcmp(row(i)->name, name) == 0 && visible(row(i), &c->req->who))
			return row(i);
	return NULL;
}

static const struct prompt_arg *find_arg(const struct prompt *p, const char *name)
{
	for (int i = 0; i < PROMPT_ARGS_MAX && p->args[i].name != NULL; i++)
		if (strcmp(p->args[i].name, name) == 0)
			return &p->args[i];
	return NULL;
}

json_object *prompt_message(const char *role, json_object *content)
{
	json_object *m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", content);
	return m;
}

int mcp_prompts_list(struct mcp_call *c, json_object *params, json_object **result)
{
	json_object *cursor, *list;

	if (params != NULL && json_object_object_get_ex(params, "cursor", &cursor) &&
	    cursor != NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS, "Invalid cursor");
	list = json_object_new_array();
	for (int i = 0; i < count(); i++) {
		const struct prompt *p = row(i);
		json_object *o, *args;

		if (!visible(p, &c->req->who))
			continue;
		o = json_object_new_object();
		args = json_object_new_array();
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "title", json_object_new_string(p->title));
		json_object_object_add(o, "description", json_object_new_string(p->description));
		for (int a = 0; a < PROMPT_ARGS_MAX && p->args[a].name != NULL; a++) {
			json_object *arg = json_object_new_object();
			json_object_object_add(arg, "name", json_object_new_string(p->args[a].name));
			json_object_object_add(arg, "description",
			                       json_object_new_string(p->args[a].description));
			json_object_object_add(arg, "required",
			                       json_object_new_boolean(p->args[a].required));
			json_object_array_add(args, arg);
		}
		json_object_object_add(o, "arguments", args);
		json_object_array_add(list, o);
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "prompts", list);
	return RPC_OK;
}

/*
 * Checks params.arguments against p: an object of strings, no unknown
 * names, every required one present and not empty; a device argument must
 * name a device of the caller's organisation and is replaced by its name.
 * Returns RPC_OK with *values (the caller owns it: name -> string), or an
 * rpc_code.
 */
static int check_args(struct mcp_call *c, const struct prompt *p, json_object *params,
                      json_object **values)
{
	json_object *args = NULL;

	*values = json_object_new_object();
	if (json_object_object_get_ex(params, "arguments", &args) && args != NULL &&
	    !json_object_is_type(args, json_type_object))
		return mcp_fail(c, RPC_INVALID_PARAMS, "arguments must be an object of strings");
	if (args != NULL) {
		json_object_object_foreach(args, name, v) {
			const struct prompt_arg *a = find_arg(p, name);

			if (a == NULL)
				return mcp_fail(c, RPC_INVALID_PARAMS, "prompt %s has no argument "
				                "'%.64s'", p->name, name);
			if (!json_object_is_type(v, json_type_string) ||
			    json_object_get_string_len(v) > ARG_VALUE_MAX)
				return mcp_fail(c, RPC_INVALID_PARAMS, "argument '%s' must be a string "
				                "of at most %d bytes", name, ARG_VALUE_MAX);
			json_object_object_add(*values, name, json_object_get(v));
		}
	}
	for (int i = 0; i < PROMPT_ARGS_MAX && p->args[i].name != NULL; i++) {
		const struct prompt_arg *a = &p->args[i];
		json_object *v = NULL;
		struct device_ref d;
		char why[320];

		json_object_object_get_ex(*values, a->name, &v);
		if (v == NULL || json_object_get_string_len(v) == 0) {
			if (a->required)
				return mcp_fail(c, RPC_INVALID_PARAMS, "prompt %s needs the argument "
				                "'%s' (%s)", p->name, a->name, a->description);
			continue;
		}
		if (!a->device)
			continue;
		switch (device_find(&c->req->who, json_object_get_string(v), &d)) {
		case -1:
			return mcp_fail(c, RPC_INTERNAL_ERROR, "the database is unavailable; try again");
		case 0:
			/* A device outside the token's device tag is not found either. */
			if (authz_check(&c->req->who, p->action, &d, why, sizeof why) == 0)
				break;
			/* fall through */
		case 1:
			return mcp_fail(c, RPC_INVALID_PARAMS, "argument '%s': no device '%.100s' in "
			                "your organisation; list_devices shows their names", a->name,
			                json_object_get_string(v));
		}
		json_object_object_add(*values, a->name, json_object_new_string(d.name));
		c->device = d;		/* for the audit event */
	}
	return RPC_OK;
}

/* p->text with every {name} of an argument replaced by its value (or absent text). */
static char *expand(const struct prompt *p, json_object *values)
{
	struct buf b = BUF_INIT;
	const char *s = p->text;

	while (*s != '\0') {
		const char *close = *s == '{' ? strchr(s, '}') : NULL;
		const struct prompt_arg *a = NULL;
		json_object *v = NULL;
		char name[64];

		if (close != NULL && (size_t)(close - s - 1) < sizeof name) {
			snprintf(name, sizeof name, "%.*s", (int)(close - s - 1), s + 1);
			a = find_arg(p, name);
		}
		if (a == NULL) {
			buf_append(&b, s, 1);
			s++;
			continue;
		}
		if (json_object_object_get_ex(values, a->name, &v) &&
		    json_object_get_string_len(v) > 0)
			buf_printf(&b, "%s", json_object_get_string(v));
		else
			buf_printf(&b, "%s", a->absent ? a->absent : "");
		s = close + 1;
	}
	{
		char *out = xstrdup(b.data ? b.data : "");
		buf_free(&b);
		return out;
	}
}

/*
 * prompts/get: an audit event per prompt fetched (action "prompts/get", the
 * prompt's name and arguments, its device), like a tool call that reads.
 */
int mcp_prompts_get(struct mcp_call *c, json_object *params, json_object **result)
{
	const struct prompt *p;
	json_object *v, *values = NULL, *messages, *args;
	struct audited au;
	int rc;

	if (params == NULL || !json_object_object_get_ex(params, "name", &v) ||
	    !json_object_is_type(v, json_type_string))
		return mcp_fail(c, RPC_INVALID_PARAMS, "prompts/get needs params.name, a prompt name");
	if ((p = find(c, json_object_get_string(v))) == NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS, "Unknown prompt: %.128s",
		                json_object_get_string(v));
	args = json_object_new_object();
	json_object_object_add(args, "name", json_object_new_string(p->name));
	if (json_object_object_get_ex(params, "arguments", &v) && json_object_is_type(v, json_type_object))
		json_object_object_add(args, "arguments", json_object_get(v));
	audited_begin(&au, c->req, c, "prompts/get", args);
	if ((rc = check_args(c, p, params, &values)) != RPC_OK) {
		json_object_put(values);
		return audited_read(&au, c, rc);
	}
	messages = json_object_new_array();
	if (p->get != NULL) {
		rc = p->get(c, values, messages);
	} else {
		json_object *content = json_object_new_object();
		char *text = expand(p, values);

		json_object_object_add(content, "type", json_object_new_string("text"));
		json_object_object_add(content, "text", json_object_new_string(text));
		json_object_array_add(messages, prompt_message("user", content));
		free(text);
	}
	json_object_put(values);
	rc = audited_read(&au, c, rc);
	if (rc != RPC_OK) {
		json_object_put(messages);
		return rc;
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "description", json_object_new_string(p->description));
	json_object_object_add(*result, "messages", messages);
	return RPC_OK;
}

/* A string member of o, or NULL. */
static const char *member(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * completion/complete: ref names a prompt (ref/prompt) or a resource
 * template (ref/resource); values are offered only for arguments that name
 * a device. Anything else completes to nothing.
 */
int mcp_complete(struct mcp_call *c, json_object *params, json_object **result)
{
	json_object *ref = NULL, *arg = NULL, *values, *o;
	const char *type, *name, *value;
	bool device = false, more = false;

	if (params == NULL || !json_object_object_get_ex(params, "ref", &ref) ||
	    !json_object_object_get_ex(params, "argument", &arg) ||
	    (type = member(ref, "type")) == NULL || (name = member(arg, "name")) == NULL ||
	    (value = member(arg, "value")) == NULL || strlen(value) > ARG_VALUE_MAX)
		return mcp_fail(c, RPC_INVALID_PARAMS, "completion/complete needs ref {type, name "
		                "or uri} and argument {name, value} with string values");
	if (strcmp(type, "ref/prompt") == 0) {
		const struct prompt *p = member(ref, "name") ? find(c, member(ref, "name")) : NULL;
		const struct prompt_arg *a;

		if (p == NULL)
			return mcp_fail(c, RPC_INVALID_PARAMS, "Unknown prompt in ref.name");
		if ((a = find_arg(p, name)) == NULL)
			return mcp_fail(c, RPC_INVALID_PARAMS, "prompt %s has no argument '%.64s'",
			                p->name, name);
		device = a->device;
	} else if (strcmp(type, "ref/resource") == 0) {
		const struct resource *r = member(ref, "uri") ? resource_template(member(ref, "uri"))
		                                              : NULL;
		if (r == NULL)
			return mcp_fail(c, RPC_INVALID_PARAMS, "ref.uri is not a resource template");
		if (r->complete != NULL) {
			values = json_object_new_array();
			int rc = r->complete(c, value, values, &more);
			if (rc != RPC_OK) {
				json_object_put(values);
				return rc;
			}
			goto done;
		}
	} else {
		return mcp_fail(c, RPC_INVALID_PARAMS, "ref.type must be ref/prompt or ref/resource");
	}
	values = json_object_new_array();
	if (device && device_complete(&c->req->who, value, values, COMPLETIONS_MAX, &more) < 0) {
		json_object_put(values);
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the device list could not be read; try again");
	}
done:
	o = json_object_new_object();
	json_object_object_add(o, "values", values);
	json_object_object_add(o, "hasMore", json_object_new_boolean(more));
	*result = json_object_new_object();
	json_object_object_add(*result, "completion", o);
	return RPC_OK;
}
