/*
 * check_fcgi_tools.c - the MCP tool table and its machinery: arguments are
 * checked against the declared schema before a handler runs, every row is
 * well formed, tools/list pages and hides by scope, tools/call refuses
 * unknown tools and reports bad arguments as tool errors.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "fcgi.h"
#include "check_run.h"

/* A schema using every keyword of the supported subset. */
static const char test_schema[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":5},"
	"\"count\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},"
	"\"ratio\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
	"\"on\":{\"type\":\"boolean\"},"
	"\"kind\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}},"
	"\"required\":[\"name\"],\"additionalProperties\":false}";

/* Arrays, lists of types and nested objects. */
static const char nested_schema[] =
	"{\"type\":\"object\",\"properties\":{"
	"\"keys\":{\"type\":[\"string\",\"array\"],\"minLength\":1,\"minItems\":1,"
	"\"maxItems\":2,\"items\":{\"type\":\"string\",\"maxLength\":3}},"
	"\"region\":{\"type\":\"object\",\"properties\":{"
	"\"x\":{\"type\":\"integer\",\"minimum\":0},\"w\":{\"type\":\"integer\"}},"
	"\"required\":[\"x\"],\"additionalProperties\":false}},"
	"\"additionalProperties\":false}";

/* The same without additionalProperties: unknown arguments pass. */
static const char open_schema[] =
	"{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}";

static const struct {
	const char *schema, *args;
	const char *why;	/* NULL: accepted; else a substring of the refusal */
} arg_cases[] = {
	{ test_schema, "{\"name\":\"x\"}", NULL },
	{ test_schema, "{\"name\":\"h\xc3\xa9llo\"}", NULL },	/* 5 characters, 6 bytes */
	{ test_schema, "{\"name\":\"x\",\"count\":10,\"ratio\":0.5,\"on\":true,\"kind\":\"b\"}", NULL },
	{ test_schema, "{\"name\":\"x\",\"count\":1,\"ratio\":0,\"on\":false,\"kind\":\"a\"}", NULL },
	{ test_schema, "{\"name\":\"x\",\"count\":3.0,\"ratio\":1}", NULL },
	{ test_schema, "{}", "Missing required argument 'name'" },
	{ test_schema, "{\"count\":2}", "Missing required argument 'name'" },
	{ test_schema, "{\"name\":1}", "'name' must be a string, not an integer" },
	{ test_schema, "{\"name\":null}", "'name' must be a string, not null" },
	{ test_schema, "{\"name\":\"x\",\"count\":\"3\"}", "'count' must be an integer, not a string" },
	{ test_schema, "{\"name\":\"x\",\"count\":2.5}", "'count' must be an integer" },
	{ test_schema, "{\"name\":\"x\",\"count\":true}", "'count' must be an integer" },
	{ test_schema, "{\"name\":\"x\",\"ratio\":\"1\"}", "'ratio' must be a number" },
	{ test_schema, "{\"name\":\"x\",\"on\":\"yes\"}", "'on' must be true or false" },
	{ test_schema, "{\"name\":\"x\",\"on\":1}", "'on' must be true or false" },
	{ test_schema, "{\"name\":\"x\",\"extra\":1}", "Unknown argument 'extra'" },
	{ test_schema, "{\"name\":\"x\",\"kind\":\"c\"}", "'kind' must be one of: a, b" },
	{ test_schema, "{\"name\":\"x\",\"kind\":1}", "'kind' must be a string" },
	{ test_schema, "{\"name\":\"x\",\"count\":0}", "'count' must be at least 1" },
	{ test_schema, "{\"name\":\"x\",\"count\":-5}", "'count' must be at least 1" },
	{ test_schema, "{\"name\":\"x\",\"count\":11}", "'count' must be at most 10" },
	{ test_schema, "{\"name\":\"x\",\"count\":9223372036854775807}", "'count' must be at most 10" },
	{ test_schema, "{\"name\":\"x\",\"ratio\":1.5}", "'ratio' must be at most 1" },
	{ test_schema, "{\"name\":\"x\",\"ratio\":-0.1}", "'ratio' must be at least 0" },
	{ test_schema, "{\"name\":\"toolong\"}", "'name' must be at most 5 characters" },
	{ test_schema, "{\"name\":\"\"}", "'name' must be at least 1 character" },
	{ test_schema, "[]", "must be a JSON object" },
	{ nested_schema, "{\"keys\":\"abc\"}", NULL },
	{ nested_schema, "{\"keys\":[\"a\",\"bc\"]}", NULL },
	{ nested_schema, "{\"region\":{\"x\":0,\"w\":5}}", NULL },
	{ nested_schema, "{\"keys\":1}", "'keys' must be a string or an array, not an integer" },
	{ nested_schema, "{\"keys\":\"\"}", "'keys' must be at least 1 character" },
	{ nested_schema, "{\"keys\":[]}", "'keys' must have at least 1 item" },
	{ nested_schema, "{\"keys\":[\"a\",\"b\",\"c\"]}", "'keys' must have at most 2 items" },
	{ nested_schema, "{\"keys\":[\"a\",7]}", "'keys[1]' must be a string" },
	{ nested_schema, "{\"keys\":[\"abcd\"]}", "'keys[0]' must be at most 3 characters" },
	{ nested_schema, "{\"region\":[]}", "'region' must be an object" },
	{ nested_schema, "{\"region\":{}}", "Missing required argument 'region.x'" },
	{ nested_schema, "{\"region\":{\"x\":-1}}", "'region.x' must be at least 0" },
	{ nested_schema, "{\"region\":{\"x\":1,\"y\":2}}", "Unknown argument 'region.y'" },
	{ open_schema, "{\"n\":1,\"other\":\"x\"}", NULL },
	{ open_schema, "{\"n\":\"1\"}", "'n' must be an integer" },
};

START_TEST(test_check_args)
{
	json_object *schema = json_tokener_parse(arg_cases[_i].schema);
	json_object *args = json_tokener_parse(arg_cases[_i].args);
	char why[512] = "";
	int rc;

	ck_assert_ptr_nonnull(schema);
	ck_assert_msg(tool_schema_supported(schema, why, sizeof why), "test schema: %s", why);
	rc = tool_check_args(schema, args, why, sizeof why);
	if (arg_cases[_i].why == NULL) {
		ck_assert_msg(rc == 0, "%s: refused: %s", arg_cases[_i].args, why);
	} else {
		ck_assert_msg(rc == -1, "%s: accepted", arg_cases[_i].args);
		ck_assert_msg(strstr(why, arg_cases[_i].why) != NULL, "%s: '%s' lacks '%s'",
		              arg_cases[_i].args, why, arg_cases[_i].why);
		ck_assert_msg(why[strlen(why) - 1] == '.', "'%s' is not a sentence", why);
	}
	json_object_put(schema);
	json_object_put(args);
}
END_TEST

/* Schemas the argument checker would not understand fully. */
static const char *const unsupported[] = {
	"{\"type\":\"array\"}",
	"{\"properties\":{}}",
	"{\"type\":\"object\",\"oneOf\":[]}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\"}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"enum\":[]}}}",
	"{\"type\":\"object\",\"required\":[\"a\"]}",
	"{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"items\":{\"type\":\"string\"}}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"items\":{}}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[]}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}}}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"object\",\"required\":[\"b\"]}}}",
	"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"required\":[]}}}",
};

START_TEST(test_unsupported_schema)
{
	json_object *schema = json_tokener_parse(unsupported[_i]);
	char why[256] = "";

	ck_assert_msg(!tool_schema_supported(schema, why, sizeof why), "%s accepted",
	              unsupported[_i]);
	ck_assert_msg(why[0] != '\0', "%s refused without a reason", unsupported[_i]);
	json_object_put(schema);
}
END_TEST

START_TEST(test_tool_table)
{
	regex_t re;

	ck_assert_int_eq(regcomp(&re, "^[A-Za-z0-9_.-]{1,128}$", REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_int_ge(tool_count(), 2);
	for (int i = 0; i < tool_count(); i++) {
		const struct tool *t = tool_at(i);
		json_object *out = tool_output_schema(i);
		char why[256] = "";

		ck_assert_msg(regexec(&re, t->name, 0, NULL, 0) == 0, "bad tool name '%s'", t->name);
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(tool_at(j)->name, t->name) != 0, "%s twice", t->name);
		ck_assert_msg(t->description != NULL && strlen(t->description) >= 20,
		              "%s: no description", t->name);
		ck_assert_msg(t->title != NULL && t->title[0] != '\0', "%s: no title", t->name);
		ck_assert_msg(t->fn != NULL, "%s: no handler", t->name);
		ck_assert_msg(!(t->hints.read_only && t->hints.destructive),
		              "%s: read-only and destructive", t->name);
		ck_assert_msg(authz_rule(t->action) != NULL, "%s: names no action", t->name);
		ck_assert_msg(authz_rule(t->action)->scope != AUTHZ_SCOPE_WRITE ||
		              !t->hints.read_only, "%s: read-only but needs the write scope", t->name);
		ck_assert_msg(tool_schema_supported(tool_input_schema(i), why, sizeof why),
		              "%s: input schema: %s", t->name, why);
		ck_assert_ptr_eq(tool_input_schema(i), tool_input_schema(i));	/* parsed once */
		ck_assert_msg(t->output_schema == NULL || json_object_is_type(out, json_type_object),
		              "%s: output schema is not an object", t->name);
	}
	ck_assert_ptr_null(tool_at(tool_count()));
	regfree(&re);
}
END_TEST

/* A request of a caller with the given scopes, enough for the tool methods. */
static void call_as(struct request *req, struct mcp_call *c, bool read, bool write)
{
	memset(req, 0, sizeof *req);
	memset(c, 0, sizeof *c);
	req->who.scope_read = read;
	req->who.scope_write = write;
	snprintf(req->who.role, sizeof req->who.role, "org_admin");
	snprintf(req->who.org, sizeof req->who.org, "test");
	c->req = req;
	snprintf(c->session.id, sizeof c->session.id, "%s", "0123456789abcdef0123456789abcdef");
	snprintf(c->session.protocol_version, sizeof c->session.protocol_version, "2025-11-25");
}

typedef int rpc_fn(struct mcp_call *c, json_object *params, json_object **result);

/* Runs a method handler with params (JSON text or NULL); returns the code, *out the result. */
static int rpc(rpc_fn *fn, struct mcp_call *c, const char *params, json_object **out)
{
	json_object *p = params ? json_tokener_parse(params) : NULL;
	int rc;

	*out = NULL;
	rc = fn(c, p, out);
	json_object_put(p);
	return rc;
}

static int list(struct mcp_call *c, const char *params, json_object **out)
{
	return rpc(mcp_tools_list, c, params, out);
}

START_TEST(test_list_scopes_and_cursor)
{
	struct request req;
	struct mcp_call c;
	json_object *r, *tools, *t0, *v;
	int nwrite = 0;
	const char *bad[] = {
		"{\"cursor\":\"\"}", "{\"cursor\":\"tools:0\"}", "{\"cursor\":\"tools:99\"}",
		"{\"cursor\":\"tools:-1\"}", "{\"cursor\":\"x\"}", "{\"cursor\":1}",
		"{\"cursor\":\"tools:1x\"}",
	};

	for (int i = 0; i < tool_count(); i++)
		nwrite += authz_rule(tool_at(i)->action)->scope == AUTHZ_SCOPE_WRITE;
	ck_assert_int_gt(nwrite, 0);
	call_as(&req, &c, true, false);
	ck_assert_int_eq(list(&c, NULL, &r), RPC_OK);
	ck_assert(json_object_object_get_ex(r, "tools", &tools));
	/* A read-only token is not shown the write tools. */
	ck_assert_int_eq((int)json_object_array_length(tools), tool_count() - nwrite);
	ck_assert(!json_object_object_get_ex(r, "nextCursor", NULL));
	t0 = json_object_array_get_idx(tools, 0);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(t0, "name")),
	                 tool_at(0)->name);
	ck_assert(json_object_object_get_ex(t0, "inputSchema", &v));
	ck_assert(json_object_equal(v, tool_input_schema(0)));
	ck_assert_ptr_ne(v, tool_input_schema(0));	/* a copy: one owner each */
	ck_assert(json_object_object_get_ex(t0, "annotations", &v));
	ck_assert(json_object_object_get_ex(v, "readOnlyHint", NULL));
	ck_assert(json_object_object_get_ex(v, "destructiveHint", NULL));
	ck_assert(json_object_object_get_ex(v, "idempotentHint", NULL));
	ck_assert(json_object_object_get_ex(v, "openWorldHint", NULL));
	json_object_put(r);

	ck_assert_int_eq(list(&c, "{\"cursor\":\"tools:1\"}", &r), RPC_OK);
	tools = json_object_object_get(r, "tools");
	ck_assert_int_eq((int)json_object_array_length(tools), tool_count() - nwrite - 1);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
		json_object_array_get_idx(tools, 0), "name")), tool_at(1)->name);
	json_object_put(r);

	ck_assert_int_eq(list(&c, "{\"cursor\":null,\"_meta\":{}}", &r), RPC_OK);
	json_object_put(r);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		ck_assert_msg(list(&c, bad[i], &r) == RPC_INVALID_PARAMS, "%s accepted", bad[i]);
		ck_assert_ptr_null(r);
	}

	/* A token without the read scope sees none of the read tools: only the writes. */
	call_as(&req, &c, false, true);
	ck_assert_int_eq(list(&c, NULL, &r), RPC_OK);
	tools = json_object_object_get(r, "tools");
	ck_assert_int_eq((int)json_object_array_length(tools), nwrite);
	for (size_t i = 0; i < json_object_array_length(tools); i++) {
		json_object *meta = json_object_object_get(json_object_array_get_idx(tools, i), "_meta");
		const char *a = json_object_get_string(json_object_object_get(meta, "kvmgate/action"));
		ck_assert_msg(strstr(a, ".write") != NULL, "%s listed to a write-only token", a);
	}
	json_object_put(r);
}
END_TEST

static int call(struct mcp_call *c, const char *params, json_object **out)
{
	return rpc(mcp_tools_call, c, params, out);
}

START_TEST(test_call_refusals)
{
	struct request req;
	struct mcp_call c;
	json_object *r, *content;
	const char *text;

	call_as(&req, &c, true, true);
	ck_assert_int_eq(call(&c, "{\"name\":\"no_such_tool\"}", &r), RPC_INVALID_PARAMS);
	ck_assert_str_eq(c.error, "Unknown tool: no_such_tool");
	ck_assert_int_eq(call(&c, "{}", &r), RPC_INVALID_PARAMS);
	ck_assert_int_eq(call(&c, "{\"name\":7}", &r), RPC_INVALID_PARAMS);
	ck_assert_int_eq(call(&c, "{\"name\":\"list_devices\",\"arguments\":[]}", &r),
	                 RPC_INVALID_PARAMS);

	/* Bad arguments never reach the handler (which would need the database). */
	ck_assert_int_eq(call(&c, "{\"name\":\"list_devices\",\"arguments\":{\"limit\":0}}", &r),
	                 RPC_OK);
	ck_assert(json_object_get_boolean(json_object_object_get(r, "isError")));
	ck_assert(!json_object_object_get_ex(r, "structuredContent", NULL));
	content = json_object_object_get(r, "content");
	ck_assert_int_eq((int)json_object_array_length(content), 1);
	text = json_object_get_string(json_object_object_get(
		json_object_array_get_idx(content, 0), "text"));
	ck_assert_msg(strstr(text, "'limit'") != NULL, "'%s' does not name limit", text);
	json_object_put(r);

	ck_assert_int_eq(call(&c, "{\"name\":\"list_devices\",\"arguments\":{\"colour\":\"red\"}}",
	                      &r), RPC_OK);
	ck_assert(json_object_get_boolean(json_object_object_get(r, "isError")));
	json_object_put(r);

	/* Refused to a token without the scope, saying which scope is missing. */
	call_as(&req, &c, false, true);
	ck_assert_int_eq(call(&c, "{\"name\":\"list_devices\"}", &r), RPC_OK);
	ck_assert(json_object_get_boolean(json_object_object_get(r, "isError")));
	text = json_object_get_string(json_object_object_get(
		json_object_array_get_idx(json_object_object_get(r, "content"), 0), "text"));
	ck_assert_msg(strstr(text, "read scope") != NULL, "'%s' does not name the scope", text);
	json_object_put(r);

	/* And to a role the matrix does not allow. */
	call_as(&req, &c, true, true);
	snprintf(req.who.role, sizeof req.who.role, "nobody");
	ck_assert_int_eq(call(&c, "{\"name\":\"get_server_info\"}", &r), RPC_OK);
	ck_assert(json_object_get_boolean(json_object_object_get(r, "isError")));
	json_object_put(r);
}
END_TEST

static Suite *tools_suite(void)
{
	Suite *s = suite_create("fcgi_tools");
	TCase *tc = tcase_create("tools");

	tcase_add_loop_test(tc, test_check_args, 0, (int)ARRAY_LEN(arg_cases));
	tcase_add_loop_test(tc, test_unsupported_schema, 0, (int)ARRAY_LEN(unsupported));
	tcase_add_test(tc, test_tool_table);
	tcase_add_test(tc, test_list_scopes_and_cursor);
	tcase_add_test(tc, test_call_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(tools_suite());
}
