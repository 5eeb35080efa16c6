/*
 * route.c - the route table, and the single place where a request is checked
 * before its handler runs: method, query parameters, Host and Origin, body,
 * authentication.
 * Later authorisation (roles, policies, grants) plugs into authorise() too.
 */
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

static const char *const no_params[] = { NULL };

static const struct route routes[] = {
	{ "GET",    "/healthz",   h_healthz,    0,                         no_params },
	{ "GET",    "/metrics",   h_metrics,    0,                         no_params },
	{ "GET",    "/api/v1/me", h_me,         ROUTE_AUTH,                no_params },
	{ "POST",   "/mcp",       h_mcp_post,   ROUTE_AUTH | ROUTE_ORIGIN, no_params },
	{ "GET",    "/mcp",       h_mcp_get,    ROUTE_AUTH | ROUTE_ORIGIN, no_params },
	{ "DELETE", "/mcp",       h_mcp_delete, ROUTE_AUTH | ROUTE_ORIGIN, no_params },
};

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

/* Answers 401 in the form RFC 6750 gives, and says why in the body. */
static void unauthorised(struct request *req, const char *why, bool invalid)
{
	resp_header(req, "WWW-Authenticate", invalid
		? "Bearer realm=\"kvmgate\", error=\"invalid_token\""
		: "Bearer realm=\"kvmgate\"");
	resp_error(req, 401, "unauthorized", "%s", why);
}

/*
 * Authenticates the bearer token of a ROUTE_AUTH request into req->who.
 * Returns 0, or -1 after answering.
 */
static int authorise(struct request *req)
{
	const char *h = request_header(req, "HTTP_AUTHORIZATION");

	if (!(req->route->flags & ROUTE_AUTH))
		return 0;
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

void route_dispatch(struct request *req)
{
	struct buf allow = BUF_INIT;
	const struct route *path_match = NULL;
	int rc;

	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		if (strcmp(routes[i].path, req->path) != 0)
			continue;
		path_match = &routes[i];
		if (method_matches(&routes[i], req->method)) {
			req->route = &routes[i];
			break;
		}
		buf_printf(&allow, "%s%s", allow.len ? ", " : "", routes[i].method);
	}
	if (req->route == NULL) {
		if (path_match != NULL) {
			resp_header(req, "Allow", allow.data);
			resp_error(req, 405, "method_not_allowed",
			           "%s is not allowed on %s; allowed: %s",
			           req->method, req->path, allow.data);
		} else {
			resp_error(req, 404, "not_found", "no route for %s", req->path);
		}
		buf_free(&allow);
		return;
	}
	buf_free(&allow);
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
	if (request_read_body(req) != 0 || authorise(req) < 0)
		return;
	rc = req->route->handler(req);
	if (!req->sent) {
		log_errx("handler for %s returned %d without a response", req->route->path, rc);
		resp_error(req, 500, "internal", "internal error");
	}
}
