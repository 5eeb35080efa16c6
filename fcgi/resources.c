/*
 * resources.c - MCP resources: the device list, and a template for each
 * device's latest screenshot, read from the frame store the capture worker
 * fills. Rows as in the tool table; the test build adds its fixtures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fcgi.h"
#include "log.h"
#include "shm.h"

#define MAX_RESOURCES 32
#define VAR_MAX 128

static int read_devices(struct mcp_call *c, const char *uri, const char *var,
                        json_object *contents);
static int read_screenshot(struct mcp_call *c, const char *uri, const char *var,
                           json_object *contents);
static int complete_device(struct mcp_call *c, const char *prefix, json_object *values,
                           bool *more);

static const struct resource builtin[] = {
	{
		.uri = "kvmgate://devices",
		.name = "devices",
		.title = "Devices",
		.description = "The IP-KVMs and BMCs of your organisation as JSON: id, name, kind, "
		               "base URL, tags and whether each is enabled (as list_devices).",
		.mime_type = "application/json",
		.action = AUTHZ_DEVICES_READ,
		.read = read_devices,
	},
	{
		.uri = "kvmgate://devices/{device}/screenshot",
		.name = "device-screenshot",
		.title = "Latest screenshot of a device",
		.description = "The newest frame of a device's console as the capture worker "
		               "holds it (JPEG or PNG); {device} is the device's name or id. "
		               "There is a frame only while the device has a console session: "
		               "the get_screenshot tool opens one when needed.",
		.mime_type = "image/jpeg",
		.action = AUTHZ_CONSOLE_READ,
		.complete = complete_device,
		.read = read_screenshot,
	},
};

static const struct resource *extra;
static int nextra;

void resources_register(const struct resource *rows, int n)
{
	if (extra != NULL || n < 0 || (int)ARRAY_LEN(builtin) + n > MAX_RESOURCES)
		abort();
	extra = rows;
	nextra = n;
}

static int count(void)
{
	return (int)ARRAY_LEN(builtin) + nextra;
}

static const struct resource *row(int i)
{
	return i < (int)ARRAY_LEN(builtin) ? &builtin[i] : &extra[i - (int)ARRAY_LEN(builtin)];
}

static bool visible(const struct resource *r, const struct token_identity *who)
{
	return authz_allowed(who, r->action);
}

static bool is_template(const struct resource *r)
{
	return strchr(r->uri, '{') != NULL;
}

bool resources_subscribable(void)
{
	for (int i = 0; i < count(); i++)
		if (row(i)->subscribable)
			return true;
	return false;
}

json_object *resource_text(const char *uri, const char *mime_type, const char *text)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "uri", json_object_new_string(uri));
	json_object_object_add(o, "mimeType", json_object_new_string(mime_type));
	json_object_object_add(o, "text", json_object_new_string(text));
	return o;
}

json_object *resource_blob(const char *uri, const char *mime_type, const void *data, size_t len)
{
	json_object *o = json_object_new_object();
	char *b64 = base64_encode(data, len);

	json_object_object_add(o, "uri", json_object_new_string(uri));
	json_object_object_add(o, "mimeType", json_object_new_string(mime_type));
	json_object_object_add(o, "blob", json_object_new_string(b64));
	free(b64);
	return o;
}

/*
 * Whether uri matches r: equal for a resource; for a template, the text
 * around {name} equal and the part in between (copied to var) 1 to VAR_MAX
 * characters of [A-Za-z0-9._-].
 */
static bool matches(const struct resource *r, const char *uri, char var[VAR_MAX + 1])
{
	const char *open = strchr(r->uri, '{'), *close;
	size_t head, tail, len = strlen(uri), n;

	var[0] = '\0';
	if (open == NULL)
		return strcmp(r->uri, uri) == 0;
	close = strchr(open, '}');
	head = (size_t)(open - r->uri);
	tail = strlen(close + 1);
	if (len <= head + tail || strncmp(uri, r->uri, head) != 0 ||
	    strcmp(uri + len - tail, close + 1) != 0)
		return false;
	n = len - head - tail;
	if (n > VAR_MAX)
		return false;
	memcpy(var, uri + head, n);
	var[n] = '\0';
	return strspn(var, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	              "0123456789._-") == n;
}

/* The object resources/list or resources/templates/list shows for r. */
static json_object *resource_json(const struct resource *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, is_template(r) ? "uriTemplate" : "uri",
	                       json_object_new_string(r->uri));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "title", json_object_new_string(r->title));
	json_object_object_add(o, "description", json_object_new_string(r->description));
	json_object_object_add(o, "mimeType", json_object_new_string(r->mime_type));
	return o;
}

/* resources/list and resources/templates/list: one page, no cursor needed. */
static int list(struct mcp_call *c, json_object *params, json_object **result, bool templates)
{
	json_object *cursor, *a = json_object_new_array();

	if (params != NULL && json_object_object_get_ex(params, "cursor", &cursor) &&
	    cursor != NULL) {
		json_object_put(a);
		return mcp_fail(c, RPC_INVALID_PARAMS, "Invalid cursor");
	}
	for (int i = 0; i < count(); i++)
		if (is_template(row(i)) == templates && visible(row(i), &c->req->who))
			json_object_array_add(a, resource_json(row(i)));
	*result = json_object_new_object();
	json_object_object_add(*result, templates ? "resourceTemplates" : "resources", a);
	return RPC_OK;
}

int mcp_resources_list(struct mcp_call *c, json_object *params, json_object **result)
{
	return list(c, params, result, false);
}

int mcp_resources_templates(struct mcp_call *c, json_object *params, json_object **result)
{
	return list(c, params, result, true);
}

/* params.uri, a string of at most 1 KiB, or NULL. */
static const char *param_uri(json_object *params)
{
	json_object *v;

	if (params == NULL || !json_object_object_get_ex(params, "uri", &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 1024)
		return NULL;
	return json_object_get_string(v);
}

/* The visible row uri names, with its {name} part in var; NULL when none. */
static const struct resource *find(struct mcp_call *c, const char *uri, char var[VAR_MAX + 1])
{
	for (int i = 0; i < count(); i++)
		if (visible(row(i), &c->req->who) && matches(row(i), uri, var))
			return row(i);
	return NULL;
}

const struct resource *resource_template(const char *uri)
{
	for (int i = 0; i < count(); i++)
		if (is_template(row(i)) && strcmp(row(i)->uri, uri) == 0)
			return row(i);
	return NULL;
}

/*
 * resources/read: like a tool call, each read of a resource the caller may
 * see is an audit event (action "resources/read", the URI as its argument,
 * the device when the resource is one's); a read whose event cannot be
 * written gives nothing away.
 */
int mcp_resources_read(struct mcp_call *c, json_object *params, json_object **result)
{
	const char *uri = param_uri(params);
	const struct resource *r;
	char var[VAR_MAX + 1];
	json_object *contents, *args;
	struct audited au;
	int rc;

	if (uri == NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS, "resources/read needs params.uri, a string");
	if ((r = find(c, uri, var)) == NULL)
		return mcp_fail(c, RPC_RESOURCE_NOT_FOUND, "Resource not found: %.200s", uri);
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string(uri));
	audited_begin(&au, c->req, c, "resources/read", args);
	contents = json_object_new_array();
	rc = audited_read(&au, c, r->read(c, uri, var, contents));
	if (rc != RPC_OK) {
		json_object_put(contents);
		return rc;
	}
	*result = json_object_new_object();
	json_object_object_add(*result, "contents", contents);
	return RPC_OK;
}

/*
 * resources/subscribe and unsubscribe. Updates could only be sent on a
 * standalone stream, which this server does not offer, so no built-in
 * resource takes subscriptions and without any the methods do not exist.
 */
int mcp_resources_subscribe(struct mcp_call *c, json_object *params, json_object **result)
{
	const char *uri = param_uri(params);
	const struct resource *r;
	char var[VAR_MAX + 1];

	if (!resources_subscribable())
		return mcp_fail(c, RPC_METHOD_NOT_FOUND, "Method not found: this server offers no "
		                "resource subscriptions");
	if (uri == NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS, "params.uri must be a string");
	if ((r = find(c, uri, var)) == NULL)
		return mcp_fail(c, RPC_RESOURCE_NOT_FOUND, "Resource not found: %.200s", uri);
	if (!r->subscribable)
		return mcp_fail(c, RPC_INVALID_PARAMS, "%.200s does not take subscriptions", uri);
	*result = json_object_new_object();
	return RPC_OK;
}

/* ---- built-in resources -------------------------------------------------- */

static int read_devices(struct mcp_call *c, const char *uri, const char *var,
                        json_object *contents)
{
	struct tool_result res = { json_object_new_array(), NULL, false };
	json_object *args = json_object_new_object();
	int rc = tool_list_devices(c, args, &res);

	json_object_put(args);
	if (rc == RPC_OK && (res.is_error || res.structured == NULL))
		rc = mcp_fail(c, RPC_INTERNAL_ERROR, "the device list could not be read; try again");
	if (rc == RPC_OK)
		json_object_array_add(contents, resource_text(uri, "application/json",
			json_object_to_json_string_ext(res.structured, JSON_C_TO_STRING_PLAIN |
			                               JSON_C_TO_STRING_NOSLASHESCAPE)));
	json_object_put(res.content);
	json_object_put(res.structured);
	return rc;
}

static int complete_device(struct mcp_call *c, const char *prefix, json_object *values,
                           bool *more)
{
	if (device_complete(&c->req->who, prefix, values, 100, more) < 0)
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the device list could not be read; try again");
	return RPC_OK;
}

/* This worker's reader handle on the frame store, attached on first use. */
static struct shm_store *frames;

/*
 * Copies the latest frame of device id into *data (the caller frees it).
 * Returns 0, or -1 when there is none (no store, no slot, no frame yet).
 */
static int latest_frame(long long id, struct shm_frame_info *info, void **data)
{
	struct shm_stats st;
	int slot;

	if (frames != NULL && shm_reader_stale(frames)) {
		shm_close(frames);
		frames = NULL;
	}
	if (frames == NULL && shm_attach(conf_str(CONF_SHM_NAME), &frames) < 0)
		return -1;
	if ((slot = shm_find(frames, (uint64_t)id)) < 0)
		return -1;
	shm_stats(frames, &st);
	*data = xmalloc(st.frame_max);
	if (shm_read(frames, slot, info, *data, st.frame_max) < 0 ||
	    info->device_id != (uint64_t)id ||
	    (info->format != SHM_FMT_JPEG && info->format != SHM_FMT_PNG)) {
		free(*data);
		*data = NULL;
		return -1;
	}
	return 0;
}

static int read_screenshot(struct mcp_call *c, const char *uri, const char *var,
                           json_object *contents)
{
	struct shm_frame_info info;
	struct device_ref d;
	void *data = NULL;
	char why[320];

	switch (device_find(&c->req->who, var, &d)) {
	case -1:
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the database is unavailable; try again");
	case 1:
		return mcp_fail(c, RPC_RESOURCE_NOT_FOUND, "Resource not found: no device %s", var);
	}
	/* A device outside the token's device tag is not found either. */
	if (authz_check(&c->req->who, AUTHZ_CONSOLE_READ, &d, why, sizeof why) < 0)
		return mcp_fail(c, RPC_RESOURCE_NOT_FOUND, "Resource not found: no device %s", var);
	c->device = d;		/* for the audit event */
	if (latest_frame(d.id, &info, &data) < 0)
		return mcp_fail(c, RPC_RESOURCE_NOT_FOUND, "Resource not found: device %s has no "
		                "screenshot yet (no console session is open; get_screenshot "
		                "opens one)", d.name);
	json_object_array_add(contents, resource_blob(uri, info.format == SHM_FMT_PNG
	                      ? "image/png" : "image/jpeg", data, info.len));
	free(data);
	return RPC_OK;
}
