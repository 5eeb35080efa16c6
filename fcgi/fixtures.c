/*
 * fixtures.c - the tools, resources and prompts the MCP conformance suite
 * calls by fixed names, plus two that exercise confirmation and
 * cancellation. Linked only into the test build of the FastCGI program
 * (build/<mode>/tests/kvmgate-fcgi-fixtures); the program that is
 * installed and deployed never contains them, so no configuration can
 * turn them on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi.h"
#include "log.h"

#define JSON(...) #__VA_ARGS__
#define NO_ARGS JSON({"type": "object", "properties": {}, "additionalProperties": false})

/* A 1x1 red PNG and a 1 ms silent 8 kHz WAV. */
static const char png_b64[] =
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
static const char wav_b64[] =
	"UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

static json_object *media_block(const char *type, const char *data, const char *mime)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "type", json_object_new_string(type));
	json_object_object_add(b, "data", json_object_new_string(data));
	json_object_object_add(b, "mimeType", json_object_new_string(mime));
	return b;
}

static json_object *resource_block(const char *uri, const char *mime, const char *text)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "type", json_object_new_string("resource"));
	json_object_object_add(b, "resource", resource_text(uri, mime, text));
	return b;
}

static json_object *text_block(const char *text)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "type", json_object_new_string("text"));
	json_object_object_add(b, "text", json_object_new_string(text));
	return b;
}

/* ---- tools ----------------------------------------------------------------- */

static int t_simple_text(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_text(res, "This is a simple text response for testing.");
	return RPC_OK;
}

static int t_image(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_content(res, media_block("image", png_b64, "image/png"));
	return RPC_OK;
}

static int t_audio(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_content(res, media_block("audio", wav_b64, "audio/wav"));
	return RPC_OK;
}

static int t_embedded(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_content(res, resource_block("test://embedded-resource", "text/plain",
	                                 "This is an embedded resource content."));
	return RPC_OK;
}

static int t_mixed(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_text(res, "Multiple content types test:");
	tool_content(res, media_block("image", png_b64, "image/png"));
	tool_content(res, resource_block("test://mixed-content-resource", "application/json",
	                                 "{\"test\":\"data\",\"value\":123}"));
	return RPC_OK;
}

static int t_logging(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	int rc;

	mcp_log(c, "info", "Tool execution started");
	if ((rc = mcp_sleep(c, 50)) != RPC_OK)
		return rc;
	mcp_log(c, "info", "Tool processing data");
	if ((rc = mcp_sleep(c, 50)) != RPC_OK)
		return rc;
	mcp_log(c, "info", "Tool execution completed");
	tool_text(res, "Tool with logging executed successfully");
	return RPC_OK;
}

static int t_error(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_fail(res, "This tool intentionally returns an error for testing");
	return RPC_OK;
}

static int t_progress(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	int rc;

	mcp_progress(c, 0, 100, NULL);
	if ((rc = mcp_sleep(c, 50)) != RPC_OK)
		return rc;
	mcp_progress(c, 50, 100, NULL);
	if ((rc = mcp_sleep(c, 50)) != RPC_OK)
		return rc;
	mcp_progress(c, 100, 100, NULL);
	tool_text(res, "Tool with progress executed successfully");
	return RPC_OK;
}

/* Counts to steps, one step every 100 ms, with progress; stops when cancelled. */
static int t_long(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *v;
	int steps = 50, rc;
	char msg[64];

	if (json_object_object_get_ex(args, "steps", &v))
		steps = json_object_get_int(v);
	for (int i = 1; i <= steps; i++) {
		if ((rc = mcp_sleep(c, 100)) != RPC_OK) {
			log_info("long operation cancelled at step %d of %d", i, steps);
			return rc;
		}
		snprintf(msg, sizeof msg, "step %d of %d", i, steps);
		mcp_progress(c, i, steps, msg);
	}
	tool_text(res, "Counted to %d", steps);
	return RPC_OK;
}

static int t_sampling(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *params = json_object_new_object(), *msgs = json_object_new_array();
	json_object *msg = json_object_new_object(), *prompt, *result = NULL, *content, *text;
	int rc;

	if (!c->session.sampling) {
		json_object_put(params);
		json_object_put(msgs);
		json_object_put(msg);
		tool_fail(res, "The client does not support sampling");
		return RPC_OK;
	}
	json_object_object_get_ex(args, "prompt", &prompt);
	json_object_object_add(msg, "role", json_object_new_string("user"));
	json_object_object_add(msg, "content", text_block(json_object_get_string(prompt)));
	json_object_array_add(msgs, msg);
	json_object_object_add(params, "messages", msgs);
	json_object_object_add(params, "maxTokens", json_object_new_int(100));
	if ((rc = mcp_client_request(c, "sampling/createMessage", params, 30000, &result)) != RPC_OK)
		return rc == RPC_CANCELLED ? rc : (tool_fail(res, "Sampling failed: %s", c->error),
		                                   RPC_OK);
	if (json_object_object_get_ex(result, "content", &content) &&
	    json_object_object_get_ex(content, "text", &text))
		tool_text(res, "LLM response: %s", json_object_get_string(text));
	else
		tool_text(res, "LLM response: %s", json_object_to_json_string(result));
	json_object_put(result);
	return RPC_OK;
}

/* Sends elicitation/create with message and schema (JSON text); reports the answer. */
static int elicit(struct mcp_call *c, const char *message, const char *schema,
                  const char *prefix, struct tool_result *res)
{
	json_object *params, *result = NULL, *action = NULL, *content = NULL;
	int rc;

	if (!c->session.elicit_form) {
		tool_fail(res, "The client does not support elicitation");
		return RPC_OK;
	}
	params = json_object_new_object();
	json_object_object_add(params, "message", json_object_new_string(message));
	json_object_object_add(params, "requestedSchema", json_tokener_parse(schema));
	if ((rc = mcp_client_request(c, "elicitation/create", params, 30000, &result)) != RPC_OK)
		return rc == RPC_CANCELLED ? rc : (tool_fail(res, "Elicitation failed: %s", c->error),
		                                   RPC_OK);
	json_object_object_get_ex(result, "action", &action);
	json_object_object_get_ex(result, "content", &content);
	tool_text(res, "%s: action=%s, content=%s", prefix, json_object_get_string(action),
	          content ? json_object_to_json_string_ext(content, JSON_C_TO_STRING_PLAIN) : "{}");
	json_object_put(result);
	return RPC_OK;
}

static int t_elicitation(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *m;

	json_object_object_get_ex(args, "message", &m);
	return elicit(c, json_object_get_string(m), JSON({
		"type": "object",
		"properties": {
			"username": {"type": "string", "description": "User's response"},
			"email": {"type": "string", "description": "User's email address"}
		},
		"required": ["username", "email"]
	}), "User response", res);
}

static int t_elicitation_defaults(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return elicit(c, "Test client default value handling - please accept with defaults", JSON({
		"type": "object",
		"properties": {
			"name": {"type": "string", "description": "User name", "default": "John Doe"},
			"age": {"type": "integer", "description": "User age", "default": 30},
			"score": {"type": "number", "description": "User score", "default": 95.5},
			"status": {"type": "string", "description": "User status",
			           "enum": ["active", "inactive", "pending"], "default": "active"},
			"verified": {"type": "boolean", "description": "Verification status",
			             "default": true}
		},
		"required": []
	}), "Elicitation completed", res);
}

static int t_elicitation_enums(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	return elicit(c, "Test enum schema variants", JSON({
		"type": "object",
		"properties": {
			"untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
			"titledSingle": {"type": "string", "oneOf": [
				{"const": "value1", "title": "First Option"},
				{"const": "value2", "title": "Second Option"},
				{"const": "value3", "title": "Third Option"}]},
			"legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
			               "enumNames": ["Option One", "Option Two", "Option Three"]},
			"untitledMulti": {"type": "array", "items": {"type": "string",
			                  "enum": ["option1", "option2", "option3"]}},
			"titledMulti": {"type": "array", "items": {"anyOf": [
				{"const": "value1", "title": "First Choice"},
				{"const": "value2", "title": "Second Choice"},
				{"const": "value3", "title": "Third Choice"}]}}
		},
		"required": []
	}), "Elicitation completed", res);
}

/* Shows that tools/list keeps JSON Schema 2020-12 keywords as written. */
static int t_schema(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	tool_text(res, "%s", json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
	return RPC_OK;
}

/* What a destructive device tool does before acting, without the device. */
static int t_confirm(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	bool yes;
	int rc = mcp_confirm(c, args, "Pretend to power-cycle the test machine?", res, &yes);

	if (rc == RPC_OK && yes)
		tool_text(res, "Confirmed: the test action was carried out.");
	return rc;
}

static const struct tool tools[] = {
#define FIXTURE(n, d, f, s) { .name = n, .title = n, .description = d, \
	.input_schema = NO_ARGS, .hints = { .read_only = true, .destructive = false, \
	.idempotent = true, .open_world = false }, .action = AUTHZ_SERVER_READ, \
	.streams = s, .fn = f }
	FIXTURE("test_simple_text", "Returns a simple text.", t_simple_text, false),
	FIXTURE("test_image_content", "Returns a PNG image.", t_image, false),
	FIXTURE("test_audio_content", "Returns a WAV sound.", t_audio, false),
	FIXTURE("test_embedded_resource", "Returns an embedded resource.", t_embedded, false),
	FIXTURE("test_multiple_content_types", "Returns text, an image and a resource.",
	        t_mixed, false),
	FIXTURE("test_tool_with_logging", "Logs three messages while it runs.", t_logging, true),
	FIXTURE("test_error_handling", "Always fails.", t_error, false),
	FIXTURE("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100.",
	        t_progress, false),
	FIXTURE("test_elicitation_sep1034_defaults", "Asks for a form with defaults.",
	        t_elicitation_defaults, true),
	FIXTURE("test_elicitation_sep1330_enums", "Asks for a form with enums.",
	        t_elicitation_enums, true),
#undef FIXTURE
	{
		.name = "test_sampling", .title = "test_sampling",
		.description = "Asks the client's model to answer a prompt.",
		.input_schema = JSON({"type": "object", "properties": {"prompt": {"type": "string"}},
		                      "required": ["prompt"], "additionalProperties": false}),
		.hints = { .read_only = true, .open_world = false },
		.action = AUTHZ_SERVER_READ, .streams = true, .fn = t_sampling,
	},
	{
		.name = "test_elicitation", .title = "test_elicitation",
		.description = "Asks the user for a name and an email address.",
		.input_schema = JSON({"type": "object", "properties": {"message": {"type": "string"}},
		                      "required": ["message"], "additionalProperties": false}),
		.hints = { .read_only = true, .open_world = false },
		.action = AUTHZ_SERVER_READ, .streams = true, .fn = t_elicitation,
	},
	{
		.name = "test_long_operation", .title = "test_long_operation",
		.description = "Counts to steps, one every 100 ms, reporting progress; cancellable.",
		.input_schema = JSON({"type": "object", "properties": {"steps": {"type": "integer",
		                      "minimum": 1, "maximum": 6000}}, "additionalProperties": false}),
		.hints = { .read_only = true, .open_world = false },
		.action = AUTHZ_SERVER_READ, .streams = true, .fn = t_long,
	},
	{
		/* Listed only: its $defs and $ref are outside what tool_check_args()
		 * understands, so a call is refused with a clear error. */
		.name = "json_schema_2020_12_tool", .title = "json_schema_2020_12_tool",
		.description = "Tool with JSON Schema 2020-12 features",
		.input_schema = JSON({
			"$schema": "https://json-schema.org/draft/2020-12/schema",
			"type": "object",
			"$defs": {"address": {"type": "object", "properties": {
				"street": {"type": "string"}, "city": {"type": "string"}}}},
			"properties": {"name": {"type": "string"},
			               "address": {"$ref": "#/$defs/address"}},
			"additionalProperties": false
		}),
		.hints = { .read_only = true, .open_world = false },
		.action = AUTHZ_SERVER_READ, .fn = t_schema,
	},
	{
		.name = "test_confirm_action", .title = "test_confirm_action",
		.description = "Asks the user to confirm a pretend destructive action.",
		.input_schema = JSON({"type": "object", "properties": {"confirm": {"type": "boolean"}},
		                      "additionalProperties": false}),
		.hints = { .read_only = false, .destructive = true, .open_world = false },
		.action = AUTHZ_POWER_WRITE, .streams = false, .fn = t_confirm,
	},
};

/* ---- resources --------------------------------------------------------------- */

static int r_static_text(struct mcp_call *c, const char *uri, const char *var,
                         json_object *contents)
{
	json_object_array_add(contents, resource_text(uri, "text/plain",
	                      "This is the content of the static text resource."));
	return RPC_OK;
}

static int r_static_binary(struct mcp_call *c, const char *uri, const char *var,
                           json_object *contents)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "uri", json_object_new_string(uri));
	json_object_object_add(o, "mimeType", json_object_new_string("image/png"));
	json_object_object_add(o, "blob", json_object_new_string(png_b64));
	json_object_array_add(contents, o);
	return RPC_OK;
}

static int r_template(struct mcp_call *c, const char *uri, const char *var,
                      json_object *contents)
{
	json_object *o = json_object_new_object();
	char data[200];

	snprintf(data, sizeof data, "Data for ID: %s", var);
	json_object_object_add(o, "id", json_object_new_string(var));
	json_object_object_add(o, "templateTest", json_object_new_boolean(true));
	json_object_object_add(o, "data", json_object_new_string(data));
	json_object_array_add(contents, resource_text(uri, "application/json",
	                      json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)));
	json_object_put(o);
	return RPC_OK;
}

static int r_watched(struct mcp_call *c, const char *uri, const char *var,
                     json_object *contents)
{
	json_object_array_add(contents, resource_text(uri, "text/plain", "Watched resource content"));
	return RPC_OK;
}

static const struct resource resources[] = {
	{ "test://static-text", "static-text", "Static text", "A static text resource.",
	  "text/plain", AUTHZ_SERVER_READ, false, NULL, r_static_text },
	{ "test://static-binary", "static-binary", "Static binary", "A static PNG resource.",
	  "image/png", AUTHZ_SERVER_READ, false, NULL, r_static_binary },
	{ "test://template/{id}/data", "template-data", "Template data",
	  "A resource template with an id.", "application/json", AUTHZ_SERVER_READ, false, NULL,
	  r_template },
	{ "test://watched-resource", "watched-resource", "Watched resource",
	  "A resource that takes subscriptions.", "text/plain", AUTHZ_SERVER_READ, true, NULL,
	  r_watched },
};

/* ---- prompts ------------------------------------------------------------------ */

static int p_embedded(struct mcp_call *c, json_object *args, json_object *messages)
{
	json_object *uri;

	json_object_object_get_ex(args, "resourceUri", &uri);
	json_object_array_add(messages, prompt_message("user", resource_block(
		json_object_get_string(uri), "text/plain", "Embedded resource content for testing.")));
	json_object_array_add(messages, prompt_message("user",
		text_block("Please process the embedded resource above.")));
	return RPC_OK;
}

static int p_image(struct mcp_call *c, json_object *args, json_object *messages)
{
	json_object_array_add(messages, prompt_message("user",
		media_block("image", png_b64, "image/png")));
	json_object_array_add(messages, prompt_message("user",
		text_block("Please analyze the image above.")));
	return RPC_OK;
}

static const struct prompt prompts[] = {
	{ .name = "test_simple_prompt", .title = "test_simple_prompt",
	  .description = "A prompt without arguments.", .action = AUTHZ_SERVER_READ,
	  .text = "This is a simple prompt for testing." },
	{ .name = "test_prompt_with_arguments", .title = "test_prompt_with_arguments",
	  .description = "A prompt with two arguments.",
	  .args = { { "arg1", "First test argument", true, false, NULL },
	            { "arg2", "Second test argument", true, false, NULL } },
	  .action = AUTHZ_SERVER_READ,
	  .text = "Prompt with arguments: arg1='{arg1}', arg2='{arg2}'" },
	{ .name = "test_prompt_with_embedded_resource",
	  .title = "test_prompt_with_embedded_resource",
	  .description = "A prompt embedding a resource.",
	  .args = { { "resourceUri", "URI of the resource to embed", true, false, NULL } },
	  .action = AUTHZ_SERVER_READ, .get = p_embedded },
	{ .name = "test_prompt_with_image", .title = "test_prompt_with_image",
	  .description = "A prompt with an image.", .action = AUTHZ_SERVER_READ, .get = p_image },
};

__attribute__((constructor)) static void fixtures_register(void)
{
	fputs("kvmgate-fcgi-fixtures: test fixtures are compiled in; never deploy this "
	      "program\n", stderr);
	tools_register(tools, (int)ARRAY_LEN(tools));
	resources_register(resources, (int)ARRAY_LEN(resources));
	prompts_register(prompts, (int)ARRAY_LEN(prompts));
}
