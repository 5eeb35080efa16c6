/*
 * route.c - the route table, and the single place where a request is checked
 * before its handler runs: path and method, query parameters, Host and
 * Origin, body, authentication, then the one authorisation step (authz.c):
 * the route's action against the caller's role and token scope, and for a
 * route about a device, that device within the caller's organisation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

#define PATH_PARAM_MAX 128

static const char *const no_params[] = { NULL };
static const char *const device_list_params[] = {
	"kind", "tag", "include_disabled", "limit", NULL,
};
static const char *const audit_params[] = {
	"from", "to", "actor", "tool", "device", "outcome", "cursor", "limit", NULL,
};

static const char *const token_list_params[] = { "user", NULL };
static const char *const screenshot_params[] = {
	"format", "max_width", "region", "enhance", "max_age_ms", NULL,
};
static const char *const screen_text_params[] = { "region", "language", "max_age_ms", NULL };

/* A REST route: a bearer token or the dashboard's session cookie, audited. */
#define ROUTE_API (ROUTE_AUTH | ROUTE_AUDIT | ROUTE_COOKIE)
/* The dashboard's own session: the cookie only. */
#define ROUTE_WEB (ROUTE_AUTH | ROUTE_AUDIT | ROUTE_COOKIE_ONLY)
/* Routes about one device that look at it or act on it. */
#define DEV (ROUTE_API | ROUTE_DEVICE)

static const struct route routes[] = {
	{ "GET", "/healthz", h_healthz, 0, no_params, AUTHZ_UNSET,
	  "health of PostgreSQL and the capture worker", NULL },
	{ "GET", "/metrics", h_metrics, 0, no_params, AUTHZ_UNSET,
	  "Prometheus metrics", NULL },
	{ "GET", "/api/v1/openapi.json", h_openapi, 0, no_params, AUTHZ_UNSET,
	  "this API's OpenAPI 3.1 document, made from the route table", NULL },
	{ "POST", "/api/v1/session", h_session_create, ROUTE_ORIGIN, no_params, AUTHZ_UNSET,
	  "sign in to the dashboard with a username and password: 200 with the user, "
	  "organisation, role and CSRF token, and a session cookie (HttpOnly, SameSite=Strict); "
	  "401 wrong credentials, 429 throttled (Retry-After)", signin_fields },
	{ "GET", "/api/v1/session", h_session_get, ROUTE_WEB, no_params, AUTHZ_SESSION,
	  "who is signed in (session cookie only), with the CSRF token every change made with "
	  "the cookie must carry in X-CSRF-Token", NULL },
	{ "DELETE", "/api/v1/session", h_session_delete, ROUTE_WEB, no_params, AUTHZ_SESSION,
	  "sign out: the session ends and the cookie is cleared (X-CSRF-Token required)", NULL },
	{ "GET", "/api/v1/me", h_me, ROUTE_API, no_params, AUTHZ_SESSION,
	  "who the bearer token speaks for", NULL },
	{ "GET", "/api/v1/devices", h_devices_list, ROUTE_API, device_list_params,
	  AUTHZ_DEVICES_READ, "the organisation's devices, by name; filters kind, tag", NULL },
	{ "POST", "/api/v1/devices", h_device_create, ROUTE_API, no_params,
	  AUTHZ_DEVICES_WRITE, "add a device; credentials are sealed and never shown",
	  device_fields },
	{ "GET", "/api/v1/devices/{id}", h_device_get, ROUTE_API | ROUTE_DEVICE,
	  no_params, AUTHZ_DEVICES_READ, "one device, by id or name", NULL },
	{ "PATCH", "/api/v1/devices/{id}", h_device_update,
	  ROUTE_API | ROUTE_DEVICE, no_params, AUTHZ_DEVICES_WRITE,
	  "change some fields of a device", device_fields },
	{ "DELETE", "/api/v1/devices/{id}", h_device_delete,
	  ROUTE_API | ROUTE_DEVICE, no_params, AUTHZ_DEVICES_WRITE,
	  "remove a device", NULL },
	{ "GET", "/api/v1/devices/{id}/screenshot", h_device_screenshot, DEV | ROUTE_IMAGE,
	  screenshot_params, AUTHZ_CONSOLE_READ, "the screen as image/jpeg (the device's own "
	  "JPEG when nothing else is asked) or image/png (format=png); max_width, "
	  "region=x,y,width,height, enhance=llm, max_age_ms (default 1000)", NULL },
	{ "GET", "/api/v1/devices/{id}/screen/text", h_device_screen_text, DEV,
	  screen_text_params, AUTHZ_CONSOLE_READ, "the text on the screen, read by OCR: "
	  "{text, lines, truncated (cut at 8000 bytes), language, confidence, screen size, frame, "
	  "captured_at}; region=x,y,width,height, language (installed Tesseract languages, "
	  "default eng; another is 400 with the list), max_age_ms (default 1000)", NULL },
	{ "POST", "/api/v1/devices/{id}/screen/wait", h_device_screen_wait, DEV | ROUTE_OP,
	  no_params, AUTHZ_CONSOLE_READ, "wait until the screen shows text (or a regex matches "
	  "a line) or changes, for at most timeout_ms (default 30000, at most 240000): 200 "
	  "{found, elapsed_ms, line or changed_percent, text last read}; not found is 200 with "
	  "found false; 503 busy when every worker that may wait is waiting",
	  screen_wait_fields },
	{ "POST", "/api/v1/devices/{id}/keys", h_device_keys, DEV | ROUTE_OP, no_params,
	  AUTHZ_INPUT_WRITE, "press a key combination, or a list of them in order", keys_fields },
	{ "POST", "/api/v1/devices/{id}/text", h_device_text, DEV | ROUTE_OP, no_params,
	  AUTHZ_INPUT_WRITE, "type text (up to 16384 characters)", text_fields },
	{ "POST", "/api/v1/devices/{id}/mouse", h_device_mouse, DEV | ROUTE_OP, no_params,
	  AUTHZ_INPUT_WRITE, "move, click or scroll at screen pixels", mouse_fields },
	{ "GET", "/api/v1/devices/{id}/power", h_device_power_get, DEV, no_params,
	  AUTHZ_POWER_READ, "the machine's power state as the device reports it", NULL },
	{ "POST", "/api/v1/devices/{id}/power", h_device_power, DEV | ROUTE_OP, no_params,
	  AUTHZ_POWER_WRITE, "a power action; off, off_hard, reset, cycle and power_long need "
	  "\"confirm\": true", power_fields },
	{ "GET", "/api/v1/devices/{id}/media", h_device_media_get, DEV, no_params,
	  AUTHZ_MEDIA_READ, "the images stored on the device and what is mounted", NULL },
	{ "POST", "/api/v1/devices/{id}/media", h_device_media_mount, DEV | ROUTE_OP, no_params,
	  AUTHZ_MEDIA_WRITE, "mount a stored image as a CD-ROM or a disk", media_fields },
	{ "DELETE", "/api/v1/devices/{id}/media", h_device_media_unmount, DEV, no_params,
	  AUTHZ_MEDIA_WRITE, "unmount the virtual media", NULL },
	{ "POST", "/api/v1/devices/{id}/hid/reset", h_device_hid_reset, DEV | ROUTE_OP, no_params,
	  AUTHZ_INPUT_WRITE, "reset the virtual keyboard and mouse (stuck keys, a lost USB "
	  "attachment)", NULL },
	{ "POST", "/api/v1/devices/{id}/hdmi/reset", h_device_hdmi_reset, DEV | ROUTE_OP, no_params,
	  AUTHZ_POWER_WRITE, "reset the HDMI capture (a frozen or black picture)", NULL },
	{ "GET", "/api/v1/devices/{id}/health", h_device_health, DEV, no_params,
	  AUTHZ_DEVICES_HEALTH, "the device's console session and state (asking opens the "
	  "session)", NULL },
	{ "GET", "/api/v1/tokens", h_tokens_list, ROUTE_API, token_list_params,
	  AUTHZ_TOKENS_READ_OWN, "API tokens: one's own; every member's with tokens.manage_all "
	  "(filter user); never a hash or a clear token", NULL },
	{ "POST", "/api/v1/tokens", h_token_create, ROUTE_API, no_params,
	  AUTHZ_TOKENS_MANAGE_OWN, "create a token with equal or fewer rights than the caller's; "
	  "201 shows the clear token, once", token_fields },
	{ "GET", "/api/v1/tokens/{id}", h_token_get, ROUTE_API, no_params,
	  AUTHZ_TOKENS_READ_OWN, "one token (another member's: tokens.manage_all)", NULL },
	{ "DELETE", "/api/v1/tokens/{id}", h_token_delete, ROUTE_API, no_params,
	  AUTHZ_TOKENS_MANAGE_OWN, "revoke a token at once on every worker (another member's: "
	  "tokens.manage_all)", NULL },
	{ "GET", "/api/v1/users", h_users_list, ROUTE_API, no_params,
	  AUTHZ_USERS_MANAGE, "the organisation's members with their roles", NULL },
	{ "POST", "/api/v1/users", h_user_create, ROUTE_API, no_params,
	  AUTHZ_USERS_MANAGE, "add a member (the user is created when new)", user_fields },
	{ "PATCH", "/api/v1/users/{id}", h_user_update, ROUTE_API, no_params,
	  AUTHZ_USERS_MANAGE, "change a member's role or disable the user; never the last "
	  "org_admin (409)", user_patch_fields },
	{ "DELETE", "/api/v1/users/{id}", h_user_delete, ROUTE_API, no_params,
	  AUTHZ_USERS_MANAGE, "remove a member and its tokens in the organisation; never the "
	  "last org_admin (409)", NULL },
	{ "GET", "/api/v1/org", h_org_get, ROUTE_API, no_params,
	  AUTHZ_ORGS_MANAGE, "the caller's organisation (other organisations are created with "
	  "the CLI: kvmgate org create)", NULL },
	{ "GET", "/api/v1/audit", h_audit_query, ROUTE_API, audit_params,
	  AUTHZ_AUDIT_READ, "audit events, newest first, filtered; cursor pagination", NULL },
	{ "GET", "/api/v1/audit/head", h_audit_head, ROUTE_API, no_params,
	  AUTHZ_AUDIT_READ, "the head of the organisation's audit chain", NULL },
	{ "GET", "/api/v1/audit/integrity", h_audit_integrity, ROUTE_API,
	  no_params, AUTHZ_AUDIT_READ, "verify the organisation's audit chain", NULL },
	{ "GET", "/api/v1/audit/export", h_audit_export, ROUTE_API, no_params,
	  AUTHZ_AUDIT_READ, "the organisation's audit chain as JSON lines", NULL },
	{ "POST", "/mcp", h_mcp_post, ROUTE_AUTH | ROUTE_ORIGIN, no_params, AUTHZ_SESSION,
	  "MCP Streamable HTTP: one JSON-RPC message", NULL },
	{ "GET", "/mcp", h_mcp_get, ROUTE_AUTH | ROUTE_ORIGIN, no_params, AUTHZ_SESSION,
	  "MCP: no standalone stream (405)", NULL },
	{ "DELETE", "/mcp", h_mcp_delete, ROUTE_AUTH | ROUTE_ORIGIN, no_params, AUTHZ_SESSION,
	  "MCP: end a session", NULL },
};

const struct route *route_at(int i)
{
	return i >= 0 && i < (int)ARRAY_LEN(routes) ? &routes[i] : NULL;
}

int route_count(void)
{
	return (int)ARRAY_LEN(routes);
}

const char *route_name(int i)
{
	return i >= 0 && i < route_count() ? routes[i].path : "other";
}

/* Routes sharing a path share the index of the first, so metrics name each path once. */
int route_index(const struct route *r)
{
	int i;

	if (r == NULL)
		return route_count();
	for (i = 0; strcmp(routes[i].path, r->path) != 0; i++)
		;
	return i;
}

static bool method_matches(const struct route *r, const char *method)
{
	return strcmp(r->method, method) == 0 ||
	       (strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/*
 * Whether path fits pattern, segment by segment; a {name} segment takes
 * 1 to PATH_PARAM_MAX characters. When req is not NULL the values of the
 * {name} parts are stored in it (released by request_cleanup).
 */
static bool path_matches(const char *pattern, const char *path, struct request *req)
{
	while (*pattern != '\0' && *path != '\0') {
		size_t plen = strcspn(pattern, "/"), len = strcspn(path, "/");

		if (pattern[0] == '{' && plen > 2 && pattern[plen - 1] == '}') {
			if (len == 0 || len > PATH_PARAM_MAX)
				return false;
			if (req != NULL && req->npath_params < REQ_MAX_PATH_PARAMS) {
				int n = req->npath_params++;
				/* The name points into the table, ended by '}'. */
				req->path_params[n].name = pattern + 1;
				req->path_params[n].value = xmalloc(len + 1);
				memcpy(req->path_params[n].value, path, len);
				req->path_params[n].value[len] = '\0';
			}
		} else if (plen != len || strncmp(pattern, path, len) != 0) {
			return false;
		}
		pattern += plen;
		path += len;
		if (*pattern == '/' && *path == '/') {
			pattern++;
			path++;
		} else if (*pattern != *path) {
			return false;
		}
	}
	return *pattern == '\0' && *path == '\0';
}

/* Answers 401 in the form RFC 6750 gives, and says why in the body. */
static void unauthorised(struct request *req, const char *why, bool invalid)
{
	resp_header(req, "WWW-Authenticate", invalid
		? "Bearer realm=\"kvmgate\", error=\"invalid_token\""
		: "Bearer realm=\"kvmgate\"");
	resp_error(req, 401, "unauthorized", "%s", why);
}

/*
 * Authenticates a ROUTE_AUTH request into req->who: by its bearer token, or
 * by the dashboard's session cookie on a route that takes it when no
 * Authorization header is sent (websession.c). Returns 0, or -1 after
 * answering.
 */
static int authenticate(struct request *req)
{
	const char *h = request_header(req, "HTTP_AUTHORIZATION");
	unsigned f = req->route->flags;

	if ((f & ROUTE_COOKIE_ONLY) ||
	    ((f & ROUTE_COOKIE) && (h == NULL || *h == '\0') && websession_presented(req)))
		return websession_authenticate(req);

	if (h == NULL || *h == '\0') {
		unauthorised(req, "an Authorization: Bearer <token> header is required", false);
		return -1;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		unauthorised(req, "the Authorization header must use the Bearer scheme", true);
		return -1;
	}
	switch (authcache_token(h + 7, &req->who)) {
	case TOKEN_OK:
		return 0;
	case TOKEN_INVALID:
		unauthorised(req, "the token is not valid (unknown, revoked or expired)", true);
		return -1;
	case TOKEN_DB_ERROR:
		break;
	}
	resp_error(req, 503, "database_unavailable",
	           "the database is unavailable; try again shortly");
	return -1;
}

/*
 * The authorisation step of a ROUTE_AUTH request: for a dashboard session,
 * the CSRF token of a change (403 csrf); the route's action for req->who, then the device its {id} names (ROUTE_DEVICE), which must be
 * one of the caller's organisation and reachable by the token. Another
 * organisation's device, or one outside the token's device tag, is not
 * found. Returns 0, or -1 after answering 403, 404 or 503.
 */
static int authorise(struct request *req)
{
	char why[320];

	if (req->who.session_id > 0 && websession_csrf_check(req) < 0)
		return -1;

	if (authz_check(&req->who, req->route->action, NULL, why, sizeof why) < 0) {
		resp_error(req, 403, "forbidden", "%s", why);
		return -1;
	}
	if (!(req->route->flags & ROUTE_DEVICE))
		return 0;
	switch (device_find(&req->who, request_path_param(req, "id"), &req->device)) {
	case 0:
		break;
	case 1:
		resp_error(req, 404, "not_found", "no device '%.100s' in this organisation",
		           request_path_param(req, "id"));
		return -1;
	default:
		resp_error(req, 503, "database_unavailable",
		           "the database is unavailable; try again shortly");
		return -1;
	}
	if (authz_check(&req->who, req->route->action, &req->device, why, sizeof why) < 0) {
		resp_error(req, 404, "not_found", "no device '%.100s' in this organisation",
		           request_path_param(req, "id"));
		return -1;
	}
	return 0;
}

/*
 * Finds the route for req's method and path into req->route. Returns 0, or
 * -1 after answering 404, or 405 with Allow.
 */
static int match(struct request *req)
{
	struct buf allow = BUF_INIT;
	bool path_known = false;

	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		if (!path_matches(routes[i].path, req->path, NULL))
			continue;
		path_known = true;
		if (method_matches(&routes[i], req->method)) {
			req->route = &routes[i];
			buf_free(&allow);
			return path_matches(routes[i].path, req->path, req) ? 0 : -1;
		}
		buf_printf(&allow, "%s%s", allow.len ? ", " : "", routes[i].method);
	}
	if (path_known) {
		resp_header(req, "Allow", allow.data);
		resp_error(req, 405, "method_not_allowed", "%s is not allowed on %s; allowed: %s",
		           req->method, req->path, allow.data);
	} else {
		resp_error(req, 404, "not_found", "no route for %s", req->path);
	}
	buf_free(&allow);
	return -1;
}

/* Device credentials in a device body: recorded as "[redacted]". Elsewhere a
 * username names a member and is kept (audit_redact() still takes passwords). */
static const char *const credential_keys[] = { "username", "password" };

/*
 * What the audit event of a REST call records as its arguments: the path's
 * {name} parts, the query parameters and a JSON object body, credentials
 * redacted. The caller owns the result.
 */
static json_object *rest_args(const struct request *req)
{
	json_object *o = json_object_new_object(), *body;

	for (int i = 0; i < req->npath_params; i++) {
		const char *n = req->path_params[i].name;
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)strcspn(n, "}"), n);
		json_object_object_add(o, name, json_object_new_string(req->path_params[i].value));
	}
	for (int i = 0; i < req->nparams; i++)
		json_object_object_add(o, req->params[i].name,
		                       json_object_new_string(req->params[i].value));
	if (req->body_len > 0 && (body = json_tokener_parse(req->body)) != NULL) {
		if (json_object_is_type(body, json_type_object)) {
			for (size_t i = 0; i < ARRAY_LEN(credential_keys) &&
			                   req->route->body == device_fields; i++)
				if (json_object_object_get_ex(body, credential_keys[i], NULL))
					json_object_object_add(body, credential_keys[i],
					                       json_object_new_string("[redacted]"));
			json_object_object_add(o, "body", body);
		} else {
			json_object_put(body);
		}
	}
	return o;
}

/* The outcome an answered REST call records. */
static enum audit_outcome rest_outcome(int status)
{
	if (status < 400)
		return AUDIT_OK;
	return status == 401 || status == 403 ? AUDIT_DENIED : AUDIT_ERROR;
}

/*
 * Runs an authenticated route through the authorisation step and its
 * handler, with the call's audit events for ROUTE_AUDIT routes: a write's
 * intent committed before the handler runs (503 and nothing done when it
 * cannot be), and the outcome after; a read's answer is held until its
 * event is recorded, and replaced by a 503 when it cannot be.
 */
static void run_audited(struct request *req)
{
	const struct authz_rule *rule = authz_rule(req->route->action);
	bool write = rule != NULL && rule->scope == AUTHZ_SCOPE_WRITE;
	char action[160];
	struct audited au;

	snprintf(action, sizeof action, "%s %s", req->route->method, req->route->path);
	audited_begin(&au, req, NULL, action, rest_args(req));
	if (authorise(req) < 0) {
		if (req->device.id > 0)
			audited_device(&au, &req->device);
		if (audited_end(&au, rest_outcome(req->status), req->error) < 0)
			log_warnx("a refused call of %s is not in the audit log", action);
		return;
	}
	if (req->route->flags & ROUTE_DEVICE)
		audited_device(&au, &req->device);
	if (write && audited_intent(&au) < 0) {
		resp_error(req, 503, "audit_unavailable", "%s", AUDIT_NOT_DONE);
		return;
	}
	req->hold = !write;
	if (req->route->handler(req) != 0 || !req->sent) {
		log_errx("handler for %s did not respond", req->route->path);
		resp_discard(req);
		req->hold = !write;
		resp_error(req, 500, "internal", "internal error");
	}
	if (audited_end(&au, rest_outcome(req->status),
	                req->status >= 400 ? req->error : NULL) < 0 && !write) {
		resp_discard(req);
		resp_error(req, 503, "audit_unavailable", "%s", AUDIT_NOT_DONE);
		return;
	}
	resp_release(req);
}

void route_dispatch(struct request *req)
{
	int rc;

	if (match(req) < 0)
		return;
	for (int i = 0; i < req->nparams; i++) {
		bool known = false;
		for (const char *const *p = req->route->params; *p; p++)
			known |= strcmp(*p, req->params[i].name) == 0;
		if (!known) {
			resp_error(req, 400, "bad_request", "unknown query parameter '%.64s'",
			           req->params[i].name);
			return;
		}
	}
	if ((req->route->flags & ROUTE_ORIGIN) && origin_check(req) < 0)
		return;
	if (request_read_body(req) != 0)
		return;
	if ((req->route->flags & ROUTE_AUTH) && authenticate(req) < 0)
		return;
	if (req->route->flags & ROUTE_AUDIT) {
		run_audited(req);
		return;
	}
	if ((req->route->flags & ROUTE_AUTH) && authorise(req) < 0)
		return;
	rc = req->route->handler(req);
	if (!req->sent) {
		log_errx("handler for %s returned %d without a response", req->route->path, rc);
		resp_error(req, 500, "internal", "internal error");
	}
}
