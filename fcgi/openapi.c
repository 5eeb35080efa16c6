/*
 * openapi.c - GET /api/v1/openapi.json: the OpenAPI 3.1 document of this
 * API, made from the route table (paths, methods, path and query
 * parameters, bodies from their field tables, the action each route does)
 * and the role matrix, so that the document and the routes cannot differ.
 */
#include <stdio.h>
#include <string.h>

#include "fcgi.h"

/* {"$ref": "#/components/..."} */
static json_object *ref(const char *to)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "$ref", json_object_new_string(to));
	return o;
}

/* A security requirement {name: []}. */
static json_object *scheme(const char *name)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, name, json_object_new_array());
	return o;
}

static json_object *param(const char *name, const char *in, bool required)
{
	json_object *p = json_object_new_object(), *schema = json_object_new_object();

	json_object_object_add(p, "name", json_object_new_string(name));
	json_object_object_add(p, "in", json_object_new_string(in));
	json_object_object_add(p, "required", json_object_new_boolean(required));
	json_object_object_add(schema, "type", json_object_new_string("string"));
	json_object_object_add(p, "schema", schema);
	return p;
}

/* The JSON Schema of one body field. */
static json_object *field_schema(const struct field *f)
{
	json_object *s = json_object_new_object(), *items, *e;

	switch (f->type) {
	case FIELD_KEYS:
		items = json_object_new_object();
		json_object_object_add(items, "type", json_object_new_string("string"));
		json_object_object_add(items, "minLength", json_object_new_int(1));
		json_object_object_add(items, "maxLength", json_object_new_int(64));
		e = json_object_new_array();
		json_object_array_add(e, json_object_new_string("string"));
		json_object_array_add(e, json_object_new_string("array"));
		json_object_object_add(s, "type", e);
		json_object_object_add(s, "items", items);
		json_object_object_add(s, "minItems", json_object_new_int64(f->min));
		json_object_object_add(s, "maxItems", json_object_new_int64(f->max));
		break;
	case FIELD_STRING:
	case FIELD_TEXT:
		json_object_object_add(s, "type", json_object_new_string("string"));
		json_object_object_add(s, "minLength", json_object_new_int64(f->min));
		json_object_object_add(s, "maxLength", json_object_new_int64(f->max));
		break;
	case FIELD_ENUM:
		json_object_object_add(s, "type", json_object_new_string("string"));
		e = json_object_new_array();
		for (const char *const *v = f->values; *v; v++)
			json_object_array_add(e, json_object_new_string(*v));
		json_object_object_add(s, "enum", e);
		break;
	case FIELD_INT:
		json_object_object_add(s, "type", json_object_new_string("integer"));
		json_object_object_add(s, "minimum", json_object_new_int64(f->min));
		json_object_object_add(s, "maximum", json_object_new_int64(f->max));
		break;
	case FIELD_NUMBER:
		json_object_object_add(s, "type", json_object_new_string("number"));
		json_object_object_add(s, "minimum", json_object_new_int64(f->min));
		json_object_object_add(s, "maximum", json_object_new_int64(f->max));
		break;
	case FIELD_BOOL:
		json_object_object_add(s, "type", json_object_new_string("boolean"));
		break;
	case FIELD_TAGS:
		items = json_object_new_object();
		json_object_object_add(items, "type", json_object_new_string("string"));
		json_object_object_add(items, "minLength", json_object_new_int(1));
		json_object_object_add(items, "maxLength", json_object_new_int(64));
		json_object_object_add(s, "type", json_object_new_string("array"));
		json_object_object_add(s, "items", items);
		json_object_object_add(s, "maxItems", json_object_new_int64(f->max));
		break;
	}
	if (f->description != NULL)
		json_object_object_add(s, "description", json_object_new_string(f->description));
	if (strcmp(f->name, "password") == 0 || strcmp(f->name, "username") == 0)
		json_object_object_add(s, "writeOnly", json_object_new_boolean(true));
	return s;
}

static json_object *body_schema(const struct field *fields)
{
	json_object *s = json_object_new_object(), *props = json_object_new_object();
	json_object *req = json_object_new_array();

	for (const struct field *f = fields; f->name != NULL; f++) {
		json_object_object_add(props, f->name, field_schema(f));
		if (f->required)
			json_object_array_add(req, json_object_new_string(f->name));
	}
	json_object_object_add(s, "type", json_object_new_string("object"));
	json_object_object_add(s, "properties", props);
	json_object_object_add(s, "required", req);
	json_object_object_add(s, "additionalProperties", json_object_new_boolean(false));
	return s;
}

/* operationId: the method in lower case and the path's words. */
static json_object *operation_id(const struct route *r)
{
	struct buf b = BUF_INIT;
	json_object *o;

	for (const char *m = r->method; *m; m++)
		buf_printf(&b, "%c", *m | 0x20);
	for (const char *p = r->path; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			buf_printf(&b, "%c", *p);
		else if (*p == '/' || *p == '{' || *p == '.')
			buf_puts(&b, "_");
	o = json_object_new_string(b.data);
	buf_free(&b);
	return o;
}

static json_object *operation(const struct route *r)
{
	json_object *op = json_object_new_object(), *params = json_object_new_array();
	json_object *responses = json_object_new_object(), *ok = json_object_new_object();
	/* An authenticated POST with a body creates something, unless it acts on a
	 * device (ROUTE_OP); signing in answers 200. */
	bool creates = strcmp(r->method, "POST") == 0 && r->body != NULL &&
	               (r->flags & ROUTE_AUTH) && !(r->flags & ROUTE_OP);
	const char *p;

	json_object_object_add(op, "summary", json_object_new_string(r->summary));
	json_object_object_add(op, "operationId", operation_id(r));
	for (p = strchr(r->path, '{'); p != NULL; p = strchr(p + 1, '{')) {
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)strcspn(p + 1, "}"), p + 1);
		json_object_array_add(params, param(name, "path", true));
	}
	for (const char *const *q = r->params; *q; q++)
		json_object_array_add(params, param(*q, "query", false));
	json_object_object_add(op, "parameters", params);
	if (r->body != NULL) {
		json_object *rb = json_object_new_object(), *content = json_object_new_object();
		json_object *mt = json_object_new_object();
		json_object_object_add(mt, "schema", body_schema(r->body));
		json_object_object_add(content, "application/json", mt);
		json_object_object_add(rb, "content", content);
		json_object_object_add(rb, "required", json_object_new_boolean(true));
		json_object_object_add(op, "requestBody", rb);
	}
	if (r->flags & ROUTE_AUTH) {
		json_object *sec = json_object_new_array();
		if (!(r->flags & ROUTE_COOKIE_ONLY))
			json_object_array_add(sec, scheme("bearer"));
		if (r->flags & (ROUTE_COOKIE | ROUTE_COOKIE_ONLY))
			json_object_array_add(sec, scheme("session"));
		json_object_object_add(op, "security", sec);
		json_object_object_add(op, "x-kvmgate-action",
		                       json_object_new_string(authz_rule(r->action)->name));
		json_object_object_add(op, "x-kvmgate-audited",
		                       json_object_new_boolean(r->flags & ROUTE_AUDIT));
	} else {
		json_object_object_add(op, "security", json_object_new_array());
	}
	json_object_object_add(ok, "description", json_object_new_string(
		creates ? "Created" : strcmp(r->method, "DELETE") == 0 ? "Done" : "OK"));
	if (r->flags & ROUTE_IMAGE) {
		json_object *content = json_object_new_object();
		json_object_object_add(content, "image/jpeg", json_object_new_object());
		json_object_object_add(content, "image/png", json_object_new_object());
		json_object_object_add(ok, "content", content);
	}
	json_object_object_add(responses, creates ? "201"
	                       : strcmp(r->method, "DELETE") == 0 ? "204" : "200", ok);
	json_object_object_add(responses, "default", ref("#/components/responses/Error"));
	json_object_object_add(op, "responses", responses);
	return op;
}

/* The role matrix as the document carries it (x-kvmgate-matrix). */
static json_object *matrix(void)
{
	static const char *const scopes[] = { "none", "read", "write" };
	json_object *m = json_object_new_object();

	for (int a = 0; a < AUTHZ__COUNT; a++) {
		const struct authz_rule *r = authz_rule(a);
		json_object *row, *roles;
		if (r == NULL)
			continue;
		row = json_object_new_object();
		roles = json_object_new_array();
		for (int i = 0; i < ROLE__COUNT; i++)
			if (r->roles & (1u << i))
				json_object_array_add(roles, json_object_new_string(authz_role_name(i)));
		json_object_object_add(row, "scope", json_object_new_string(scopes[r->scope]));
		json_object_object_add(row, "roles", roles);
		json_object_object_add(row, "description", json_object_new_string(r->what));
		json_object_object_add(m, r->name, row);
	}
	return m;
}

static json_object *components(void)
{
	json_object *c = json_object_new_object(), *schemes = json_object_new_object();
	json_object *bearer = json_object_new_object(), *responses = json_object_new_object();
	json_object *err = json_object_new_object(), *content = json_object_new_object();
	json_object *mt = json_object_new_object();

	json_object_object_add(bearer, "type", json_object_new_string("http"));
	json_object_object_add(bearer, "scheme", json_object_new_string("bearer"));
	json_object_object_add(schemes, "bearer", bearer);
	json_object_object_add(schemes, "session", json_tokener_parse(
		"{\"type\":\"apiKey\",\"in\":\"cookie\",\"name\":\"" WEB_COOKIE "\","
		"\"description\":\"the dashboard's session (POST /api/v1/session); a change made "
		"with it must also send the session's CSRF token in the " WEB_CSRF_HEADER " header\"}"));
	json_object_object_add(c, "securitySchemes", schemes);
	json_object_object_add(mt, "schema", json_tokener_parse(
		"{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":{"
		"\"type\":\"object\",\"required\":[\"code\",\"message\"],\"properties\":{"
		"\"code\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},"
		"\"request_id\":{\"type\":\"string\"}}}}}"));
	json_object_object_add(content, "application/json", mt);
	json_object_object_add(err, "description", json_object_new_string(
		"{\"error\":{\"code\",\"message\",\"request_id\"}}: 400 bad input, 401 no valid token "
		"or session, 403 the role or token scope lacks the route's action (or a session's "
		"change lacks its CSRF token: code csrf), 404 not found (another "
		"organisation's ids included), 405, 409 conflict, 501 unsupported (this device "
		"kind cannot do it), 502 device_offline, device_auth_failed or device_error, 503 "
		"the database, the capture worker or the audit log unavailable (nothing was done), "
		"504 device_timeout"));
	json_object_object_add(err, "content", content);
	json_object_object_add(responses, "Error", err);
	json_object_object_add(c, "responses", responses);
	return c;
}

json_object *openapi_document(void)
{
	json_object *doc = json_object_new_object(), *info = json_object_new_object();
	json_object *paths = json_object_new_object();

	json_object_object_add(doc, "openapi", json_object_new_string("3.1.0"));
	json_object_object_add(info, "title", json_object_new_string("kvmgate"));
	json_object_object_add(info, "version", json_object_new_string(KVMGATE_VERSION));
	json_object_object_add(info, "description", json_object_new_string(
		"Governed access to server consoles. Every authenticated route does one action "
		"of the role matrix (x-kvmgate-action, x-kvmgate-matrix); audited routes write "
		"an event to the organisation's audit chain."));
	json_object_object_add(doc, "info", info);
	for (int i = 0; i < route_count(); i++) {
		const struct route *r = route_at(i);
		json_object *item, *op;
		char method[16];
		size_t j;

		if (!json_object_object_get_ex(paths, r->path, &item)) {
			item = json_object_new_object();
			json_object_object_add(paths, r->path, item);
		}
		for (j = 0; r->method[j] && j < sizeof method - 1; j++)
			method[j] = (char)(r->method[j] | 0x20);
		method[j] = '\0';
		op = operation(r);
		json_object_object_add(item, method, op);
	}
	json_object_object_add(doc, "paths", paths);
	json_object_object_add(doc, "components", components());
	json_object_object_add(doc, "x-kvmgate-matrix", matrix());
	return doc;
}

int h_openapi(struct request *req)
{
	resp_json(req, 200, openapi_document());
	return 0;
}
