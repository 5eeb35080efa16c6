/*
 * mcp.c - the MCP endpoint (Streamable HTTP, protocol 2025-11-25): POST /mcp
 * carries every client message, DELETE /mcp ends a session, GET /mcp is
 * refused because no standalone stream is offered.
 *
 * Each POST holds one JSON-RPC message. After route.c has checked Host,
 * Origin and the bearer token, the transport checks run in the order the
 * transport rules give them (Accept, Content-Type, protocol version header,
 * JSON, JSON-RPC shape, session); then a request goes to its method in the
 * table below. Sessions live in PostgreSQL, so any worker serves any call;
 * reading one is a single indexed query. Responses are one application/json
 * body, one SSE event for a client that accepts only text/event-stream, or
 * an event stream for a call that sends notifications or asks the client
 * something (stream.c). A cancellation or an answer from the client is
 * handed to the worker running the call through inflight.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

#define MCP_LATEST_VERSION "2025-11-25"
/* A session unused this long is gone; last_seen_at is kept to the minute. */
#define SESSION_IDLE_S "1800"
#define SESSION_TOUCH_S "60"
#define CLIENT_INFO_MAX 200

/* Protocol revisions we speak, newest first. */
static const char *const versions[] = { MCP_LATEST_VERSION, "2025-06-18", "2025-03-26" };

/* logging/setLevel levels (RFC 5424 names), as mcp_sessions.log_level allows. */
static const char *const log_levels[] = {
	"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency",
};

static const char instructions[] =
	"kvmgate is a gateway to the consoles of servers through their IP-KVMs and BMCs "
	"(NanoKVM, PiKVM, AMI, VNC). You act for one user of one organisation and see only "
	"that organisation's devices; what you may do depends on the token's scopes and the "
	"user's role. Start with list_devices to find a device by name, kind or tag; "
	"get_server_info tells the gateway version and who you are acting as.";

enum msg_kind { MSG_REQUEST, MSG_NOTIFICATION, MSG_RESPONSE };

/* One POST: the parsed message and how to answer. msg owns the tree. */
struct exchange {
	struct mcp_call call;
	bool sse;			/* client accepts text/event-stream only */
	json_object *msg;
	enum msg_kind kind;
	json_object *id;		/* requests only; points into msg */
	const char *method;		/* requests and notifications */
	json_object *params;		/* NULL when absent */
};

enum method_flags {
	METHOD_OPENS_SESSION = 1 << 0,	/* needs no session; refused on a live one */
};

typedef int method_fn(struct mcp_call *c, json_object *params, json_object **result);

static method_fn m_initialize, m_ping, m_set_level;

static const struct mcp_method {
	const char *name;
	method_fn *fn;
	unsigned flags;
} methods[] = {
	{ "initialize",               m_initialize,              METHOD_OPENS_SESSION },
	{ "ping",                     m_ping,                    0 },
	{ "logging/setLevel",         m_set_level,               0 },
	{ "tools/list",               mcp_tools_list,            0 },
	{ "tools/call",               mcp_tools_call,            0 },
	{ "resources/list",           mcp_resources_list,        0 },
	{ "resources/templates/list", mcp_resources_templates,   0 },
	{ "resources/read",           mcp_resources_read,        0 },
	{ "resources/subscribe",      mcp_resources_subscribe,   0 },
	{ "resources/unsubscribe",    mcp_resources_subscribe,   0 },
	{ "prompts/list",             mcp_prompts_list,          0 },
	{ "prompts/get",              mcp_prompts_get,           0 },
	{ "completion/complete",      mcp_complete,              0 },
};

enum session_status { SESSION_LIVE, SESSION_GONE, SESSION_DB_ERROR };

int mcp_fail(struct mcp_call *c, enum rpc_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof c->error, fmt, ap);
	va_end(ap);
	return code;
}

/* ---- answers ------------------------------------------------------------- */

/* {"jsonrpc":"2.0","id":<copy of id, or null>}; the caller owns it. */
static json_object *envelope(json_object *id)
{
	json_object *o = json_object_new_object(), *copy = NULL;

	if (id != NULL && json_object_deep_copy(id, &copy, NULL) != 0)
		abort();
	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", copy);
	return o;
}

/*
 * Sends body (taken): as the last event of a streaming call, as JSON, or
 * for an SSE-only client a 200 as one event.
 */
static void send_message(struct exchange *x, int status, json_object *body)
{
	struct buf b = BUF_INIT;

	if (x->call.streaming) {
		if (mcp_stream_send(&x->call, body) < 0)
			log_info("the client left before the response of a streamed call");
		return;
	}
	if (!x->sse || status != 200) {
		resp_json(x->call.req, status, body);
		return;
	}
	buf_printf(&b, "event: message\ndata: %s\n\n", json_object_to_json_string_ext(body,
	           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	resp_header(x->call.req, "X-Accel-Buffering", "no");
	resp_body(x->call.req, 200, "text/event-stream", b.data, b.len);
	buf_free(&b);
	json_object_put(body);
}

static void reply_result(struct exchange *x, json_object *result)
{
	json_object *o = envelope(x->id);

	json_object_object_add(o, "result", result);
	send_message(x, 200, o);
}

static void reply_error(struct exchange *x, int status, int code, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

static void reply_error(struct exchange *x, int status, int code, const char *fmt, ...)
{
	json_object *o = envelope(x->id), *e = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	send_message(x, status, o);
}

/* ---- transport checks ---------------------------------------------------- */

/* s[0..*len) without surrounding blanks. */
static const char *trim(const char *s, size_t *len)
{
	while (*len > 0 && (*s == ' ' || *s == '\t'))
		s++, (*len)--;
	while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		(*len)--;
	return s;
}

/* Whether a comma list of media ranges (Accept) names type; parameters ignored. */
static bool media_listed(const char *header, const char *type)
{
	size_t tlen = strlen(type);

	while (header != NULL && *header != '\0') {
		size_t n = strcspn(header, ","), len = strcspn(header, ",;");
		const char *s = trim(header, &len);

		if (len == tlen && strncasecmp(s, type, tlen) == 0)
			return true;
		header += n + (header[n] == ',');
	}
	return false;
}

/* Whether a Content-Type value is type, whatever its parameters (charset). */
static bool media_is(const char *value, const char *type)
{
	size_t len = value ? strcspn(value, ";") : 0;
	const char *s = value ? trim(value, &len) : NULL;

	return s != NULL && len == strlen(type) && strncasecmp(s, type, len) == 0;
}

static bool version_supported(const char *v)
{
	for (size_t i = 0; i < ARRAY_LEN(versions); i++)
		if (strcmp(versions[i], v) == 0)
			return true;
	return false;
}

/* Parses the body into x->msg. Returns 0, or -1 when it is not one JSON text. */
static int parse_body(struct exchange *x)
{
	const struct request *req = x->call.req;
	json_tokener *tok;
	enum json_tokener_error err;

	if (req->body_len == 0 || memchr(req->body, '\0', req->body_len) != NULL)
		return -1;
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* Including the terminating NUL ends a top-level number or literal. */
	x->msg = json_tokener_parse_ex(tok, req->body, (int)req->body_len + 1);
	err = json_tokener_get_error(tok);
	json_tokener_free(tok);
	return err == json_tokener_success ? 0 : -1;
}

/*
 * Sorts the message into request, notification or response and points x's
 * fields into it. Returns 0, or -1 with the reason in *why.
 */
static int classify(struct exchange *x, const char **why)
{
	json_object *v;

	if (json_object_is_type(x->msg, json_type_array)) {
		*why = "batches are not supported; send one JSON-RPC message per request";
		return -1;
	}
	if (!json_object_is_type(x->msg, json_type_object)) {
		*why = "the body must be a JSON-RPC 2.0 message object";
		return -1;
	}
	if (json_object_object_get_ex(x->msg, "id", &v)) {
		if (!json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_int)) {
			*why = "id must be a string or an integer";
			return -1;
		}
		if (strlen(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
		           JSON_C_TO_STRING_NOSLASHESCAPE)) > MCP_ID_MAX) {
			*why = "id is too long (at most " STR(MCP_ID_MAX) " bytes as JSON)";
			return -1;
		}
		x->id = v;
		snprintf(x->call.id_text, sizeof x->call.id_text, "%s",
		         json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
		                                        JSON_C_TO_STRING_NOSLASHESCAPE));
		x->call.id = v;
	}
	if (!json_object_object_get_ex(x->msg, "jsonrpc", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), "2.0") != 0) {
		*why = "jsonrpc must be \"2.0\"";
		return -1;
	}
	if (json_object_object_get_ex(x->msg, "method", &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			*why = "method must be a string";
			return -1;
		}
		x->method = json_object_get_string(v);
		x->kind = x->id ? MSG_REQUEST : MSG_NOTIFICATION;
		json_object_object_get_ex(x->msg, "params", &x->params);
		return 0;
	}
	if (x->id != NULL && (json_object_object_get_ex(x->msg, "result", NULL) !=
	                      json_object_object_get_ex(x->msg, "error", NULL))) {
		x->kind = MSG_RESPONSE;
		return 0;
	}
	*why = "a message needs a method, or an id with a result or an error";
	return -1;
}

/* ---- sessions ------------------------------------------------------------ */

static bool session_id_valid(const char *id)
{
	return strlen(id) == MCP_SESSION_ID_LEN &&
	       strspn(id, "0123456789abcdef") == MCP_SESSION_ID_LEN;
}

/*
 * Finds the live session id of the caller's user in the caller's
 * organisation into *s, and keeps its last_seen_at to the minute.
 */
static enum session_status session_find(struct request *req, const char *id,
                                        struct mcp_session *s)
{
	static const char sql[] =
		"SELECT s.protocol_version, "
		"  s.last_seen_at < now() - interval '" SESSION_TOUCH_S " seconds', "
		"  coalesce(s.log_level, ''), "
		"  coalesce(s.client_capabilities->'elicitation' = '{}'::jsonb "
		"           OR s.client_capabilities->'elicitation' ? 'form', false), "
		"  s.client_capabilities ? 'sampling', s.client_name, s.client_version "
		"FROM mcp_sessions s JOIN api_tokens t ON t.id = s.token_id "
		"WHERE s.id = $1 AND s.org_id = $2 AND t.user_id = $3 AND s.ended_at IS NULL "
		"  AND s.last_seen_at > now() - interval '" SESSION_IDLE_S " seconds'";
	/* As for tokens: of concurrent calls one writes, the others skip the row. */
	static const char touch[] =
		"UPDATE mcp_sessions SET last_seen_at = now() WHERE id = ("
		"  SELECT id FROM mcp_sessions WHERE id = $1"
		"  AND last_seen_at < now() - interval '" SESSION_TOUCH_S " seconds'"
		"  FOR UPDATE SKIP LOCKED)";
	char org[24], user[24];
	const char *params[3] = { id, org, user };
	PGresult *r;
	bool stale;

	memset(s, 0, sizeof *s);
	if (!session_id_valid(id))
		return SESSION_GONE;
	if (authcache_session_get(id, &req->who, s))
		return SESSION_LIVE;
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(user, sizeof user, "%lld", req->who.user_id);
	if ((r = db_query(sql, 3, params)) == NULL)
		return SESSION_DB_ERROR;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return SESSION_GONE;
	}
	snprintf(s->id, sizeof s->id, "%s", id);
	snprintf(s->protocol_version, sizeof s->protocol_version, "%s", PQgetvalue(r, 0, 0));
	stale = PQgetvalue(r, 0, 1)[0] == 't';
	snprintf(s->log_level, sizeof s->log_level, "%s", PQgetvalue(r, 0, 2));
	s->elicit_form = PQgetvalue(r, 0, 3)[0] == 't';
	s->sampling = PQgetvalue(r, 0, 4)[0] == 't';
	snprintf(s->client_name, sizeof s->client_name, "%s", PQgetvalue(r, 0, 5));
	snprintf(s->client_version, sizeof s->client_version, "%s", PQgetvalue(r, 0, 6));
	PQclear(r);
	if (stale && (r = db_query(touch, 1, params)) != NULL)
		PQclear(r);
	authcache_session_put(&req->who, s);
	return SESSION_LIVE;
}

/*
 * Deletes sessions idle past their expiry (and whatever they still had in
 * flight), at most once a minute per worker, when a session opens.
 */
static void sweep_sessions(void)
{
	static const char sql[] =
		"DELETE FROM mcp_sessions WHERE id IN (SELECT id FROM mcp_sessions "
		"  WHERE last_seen_at < now() - interval '" SESSION_IDLE_S " seconds' "
		"     OR ended_at IS NOT NULL LIMIT 1000)";
	static time_t last;
	time_t now = time(NULL);
	PGresult *r;

	if (now - last < 60)
		return;
	last = now;
	if ((r = db_query(sql, 0, NULL)) != NULL)
		PQclear(r);
}

/* The first characters of a session id, enough to follow it through logs. */
static const char *session_tag(const char *id, char out[9])
{
	snprintf(out, 9, "%.8s", id);
	return out;
}

/* ---- methods ------------------------------------------------------------- */

/* A string member of o of at most max bytes, or NULL. */
static const char *get_string(json_object *o, const char *key, size_t max)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) > max)
		return NULL;
	return json_object_get_string(v);
}

static int m_initialize(struct mcp_call *c, json_object *params, json_object **result)
{
	static const char sql[] =
		"INSERT INTO mcp_sessions (id, org_id, token_id, protocol_version, client_name, "
		"  client_version, client_capabilities) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)";
	const struct token_identity *who = &c->req->who;
	json_object *caps, *info, *o, *sc, *tools, *res, *prompts, *si;
	const char *asked, *name, *version, *params_sql[7];
	char org[24], token[24], tag[9];
	uint8_t rnd[MCP_SESSION_ID_LEN / 2];
	PGresult *r;

	if (params == NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS,
		                "initialize needs protocolVersion, capabilities and clientInfo");
	if ((asked = get_string(params, "protocolVersion", 32)) == NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS, "protocolVersion must be a string");
	if (!json_object_object_get_ex(params, "capabilities", &caps) ||
	    !json_object_is_type(caps, json_type_object))
		return mcp_fail(c, RPC_INVALID_PARAMS, "capabilities must be an object");
	if (!json_object_object_get_ex(params, "clientInfo", &info) ||
	    !json_object_is_type(info, json_type_object) ||
	    (name = get_string(info, "name", CLIENT_INFO_MAX)) == NULL ||
	    (version = get_string(info, "version", CLIENT_INFO_MAX)) == NULL)
		return mcp_fail(c, RPC_INVALID_PARAMS,
		                "clientInfo must be an object with name and version strings "
		                "of at most %d bytes", CLIENT_INFO_MAX);
	if (!version_supported(asked))
		asked = MCP_LATEST_VERSION;
	sweep_sessions();

	random_bytes(rnd, sizeof rnd);
	hex_encode(rnd, sizeof rnd, c->session.id);
	snprintf(c->session.protocol_version, sizeof c->session.protocol_version, "%s", asked);
	snprintf(c->session.client_name, sizeof c->session.client_name, "%s", name);
	snprintf(c->session.client_version, sizeof c->session.client_version, "%s", version);
	snprintf(org, sizeof org, "%lld", who->org_id);
	snprintf(token, sizeof token, "%lld", who->token_id);
	params_sql[0] = c->session.id;
	params_sql[1] = org;
	params_sql[2] = token;
	params_sql[3] = asked;
	params_sql[4] = name;
	params_sql[5] = version;
	params_sql[6] = json_object_to_json_string_ext(caps, JSON_C_TO_STRING_PLAIN);
	if ((r = db_query(sql, 7, params_sql)) == NULL)
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the session could not be stored; try again");
	PQclear(r);
	resp_header(c->req, "Mcp-Session-Id", c->session.id);
	log_fields(LOG_LVL_INFO, "mcp session opened", "session", session_tag(c->session.id, tag),
	           "protocol", asked, "client", name, "client_version", version, NULL);

	/* No standalone stream, so no list_changed notifications can be sent. */
	o = json_object_new_object();
	sc = json_object_new_object();
	tools = json_object_new_object();
	json_object_object_add(tools, "listChanged", json_object_new_boolean(false));
	json_object_object_add(sc, "tools", tools);
	res = json_object_new_object();
	json_object_object_add(res, "subscribe", json_object_new_boolean(resources_subscribable()));
	json_object_object_add(res, "listChanged", json_object_new_boolean(false));
	json_object_object_add(sc, "resources", res);
	prompts = json_object_new_object();
	json_object_object_add(prompts, "listChanged", json_object_new_boolean(false));
	json_object_object_add(sc, "prompts", prompts);
	json_object_object_add(sc, "completions", json_object_new_object());
	json_object_object_add(sc, "logging", json_object_new_object());
	si = json_object_new_object();
	json_object_object_add(si, "name", json_object_new_string("kvmgate"));
	json_object_object_add(si, "title", json_object_new_string("kvmgate"));
	json_object_object_add(si, "version", json_object_new_string(KVMGATE_VERSION));
	json_object_object_add(o, "protocolVersion", json_object_new_string(asked));
	json_object_object_add(o, "capabilities", sc);
	json_object_object_add(o, "serverInfo", si);
	json_object_object_add(o, "instructions", json_object_new_string(instructions));
	*result = o;
	return RPC_OK;
}

static int m_ping(struct mcp_call *c, json_object *params, json_object **result)
{
	*result = json_object_new_object();
	return RPC_OK;
}

static int m_set_level(struct mcp_call *c, json_object *params, json_object **result)
{
	static const char sql[] = "UPDATE mcp_sessions SET log_level = $2 WHERE id = $1";
	const char *level = params ? get_string(params, "level", 16) : NULL;
	const char *p[2] = { c->session.id, level };
	PGresult *r;
	size_t i;

	for (i = 0; level != NULL && i < ARRAY_LEN(log_levels); i++)
		if (strcmp(level, log_levels[i]) == 0)
			break;
	if (level == NULL || i == ARRAY_LEN(log_levels))
		return mcp_fail(c, RPC_INVALID_PARAMS, "level must be one of debug, info, notice, "
		                "warning, error, critical, alert, emergency");
	if ((r = db_query(sql, 2, p)) == NULL)
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the level could not be stored; try again");
	PQclear(r);
	authcache_invalidate();
	*result = json_object_new_object();
	return RPC_OK;
}

static const struct mcp_method *find_method(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(methods); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

/* Runs a request's method and answers with its result or error. */
static void dispatch(struct exchange *x, const struct mcp_method *m)
{
	json_object *result = NULL;
	int rc;

	if (m == NULL)
		rc = mcp_fail(&x->call, RPC_METHOD_NOT_FOUND, "Method not found: %.100s", x->method);
	else if (x->params != NULL && !json_object_is_type(x->params, json_type_object))
		rc = mcp_fail(&x->call, RPC_INVALID_PARAMS, "params must be an object");
	else
		rc = m->fn(&x->call, x->params, &result);
	if (rc == RPC_OK)
		reply_result(x, result);
	else if (rc != RPC_CANCELLED)	/* a cancelled call gets no response */
		reply_error(x, 200, rc, "%s", x->call.error);
	mcp_stream_end(&x->call);
}

/*
 * A notification or response from the client, after its session was
 * checked: a cancellation or an answer goes to the worker running the
 * call; the rest needs nothing. Always 202: unknown or finished ids are
 * ignored, as the protocol says.
 */
static void accept_message(struct exchange *x)
{
	const char *sid = x->call.session.id;
	json_object *id;
	int rc = 0;

	if (x->kind == MSG_RESPONSE) {
		rc = inflight_answer(sid, x->call.id_text, json_object_to_json_string_ext(x->msg,
		                     JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (strcmp(x->method, "notifications/cancelled") == 0 && x->params != NULL &&
	           json_object_object_get_ex(x->params, "requestId", &id) &&
	           (json_object_is_type(id, json_type_int) ||
	            json_object_is_type(id, json_type_string))) {
		const char *text = json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN |
		                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
		if (strlen(text) <= MCP_ID_MAX)
			rc = inflight_cancel(sid, text);
	}
	if (rc < 0) {
		reply_error(x, 503, RPC_INTERNAL_ERROR,
		            "Internal error: the database is unavailable; try again shortly");
		return;
	}
	resp_body(x->call.req, 202, NULL, NULL, 0);
}

/* ---- the three HTTP methods ---------------------------------------------- */

int h_mcp_post(struct request *req)
{
	const char *accept = request_header(req, "HTTP_ACCEPT");
	const char *version = request_header(req, "HTTP_MCP_PROTOCOL_VERSION");
	const char *sid = request_header(req, "HTTP_MCP_SESSION_ID");
	const struct mcp_method *m = NULL;
	struct exchange x;
	const char *why;

	memset(&x, 0, sizeof x);
	x.call.req = req;
	x.sse = !media_listed(accept, "application/json") &&
	        media_listed(accept, "text/event-stream");
	x.call.can_stream = media_listed(accept, "text/event-stream");
	if (!media_listed(accept, "application/json") && !x.sse) {
		reply_error(&x, 406, RPC_BAD_REQUEST, "Not Acceptable: the Accept header must "
		            "include application/json or text/event-stream");
		goto out;
	}
	if (!media_is(request_header(req, "CONTENT_TYPE"), "application/json")) {
		reply_error(&x, 415, RPC_BAD_REQUEST,
		            "Unsupported Media Type: Content-Type must be application/json");
		goto out;
	}
	if (version != NULL && !version_supported(version)) {
		struct buf list = BUF_INIT;
		for (size_t i = 0; i < ARRAY_LEN(versions); i++)
			buf_printf(&list, "%s%s", i ? ", " : "", versions[i]);
		reply_error(&x, 400, RPC_BAD_REQUEST, "Bad Request: Unsupported protocol version "
		            "%.32s (supported: %s)", version, list.data);
		buf_free(&list);
		goto out;
	}
	if (parse_body(&x) < 0) {
		reply_error(&x, 400, RPC_PARSE_ERROR, "Parse error: the body is not valid JSON");
		goto out;
	}
	if (classify(&x, &why) < 0) {
		reply_error(&x, 400, RPC_INVALID_REQUEST, "Invalid Request: %s", why);
		goto out;
	}
	if (x.kind == MSG_REQUEST)
		m = find_method(x.method);
	if (m != NULL && (m->flags & METHOD_OPENS_SESSION)) {
		/* A client that lost its session re-initializes, perhaps still
		 * sending the old id: only a live one is an error. */
		switch (sid != NULL ? session_find(req, sid, &x.call.session) : SESSION_GONE) {
		case SESSION_LIVE:
			reply_error(&x, 400, RPC_INVALID_REQUEST,
			            "Invalid Request: this session is already initialized");
			goto out;
		case SESSION_DB_ERROR:
			goto db_error;
		case SESSION_GONE:
			break;
		}
		dispatch(&x, m);
		goto out;
	}
	if (sid == NULL || *sid == '\0') {
		reply_error(&x, 400, RPC_BAD_REQUEST,
		            "Bad Request: Mcp-Session-Id header is required");
		goto out;
	}
	switch (session_find(req, sid, &x.call.session)) {
	case SESSION_GONE:
		reply_error(&x, 404, RPC_SESSION_NOT_FOUND, "Session not found");
		goto out;
	case SESSION_DB_ERROR:
		goto db_error;
	case SESSION_LIVE:
		break;
	}
	if (x.kind != MSG_REQUEST)
		accept_message(&x);
	else
		dispatch(&x, m);
	goto out;
db_error:
	reply_error(&x, 503, RPC_INTERNAL_ERROR,
	            "Internal error: the database is unavailable; try again shortly");
out:
	json_object_put(x.msg);
	return 0;
}

int h_mcp_get(struct request *req)
{
	struct exchange x = { .call = { .req = req } };

	resp_header(req, "Allow", "POST, DELETE");
	reply_error(&x, 405, RPC_BAD_REQUEST, "Method Not Allowed: this server offers no "
	            "standalone event stream; POST messages to /mcp");
	return 0;
}

int h_mcp_delete(struct request *req)
{
	/* Deleting the row also deletes the session's in-flight exchanges; the
	 * notification wakes a call still streaming, which then stops. */
	static const char sql[] =
		"WITH d AS (DELETE FROM mcp_sessions s USING api_tokens t "
		"  WHERE s.id = $1 AND s.org_id = $2 AND t.id = s.token_id AND t.user_id = $3 "
		"  AND s.ended_at IS NULL "
		"  AND s.last_seen_at > now() - interval '" SESSION_IDLE_S " seconds' "
		"  RETURNING s.id) "
		"SELECT pg_notify('mcp_' || id, 'end') FROM d";
	const char *sid = request_header(req, "HTTP_MCP_SESSION_ID");
	struct exchange x = { .call = { .req = req } };
	char org[24], user[24], tag[9];
	const char *params[3] = { sid, org, user };
	PGresult *r;
	int n;

	if (sid == NULL || *sid == '\0') {
		reply_error(&x, 400, RPC_BAD_REQUEST,
		            "Bad Request: Mcp-Session-Id header is required");
		return 0;
	}
	if (!session_id_valid(sid)) {
		reply_error(&x, 404, RPC_SESSION_NOT_FOUND, "Session not found");
		return 0;
	}
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(user, sizeof user, "%lld", req->who.user_id);
	if ((r = db_query(sql, 3, params)) == NULL) {
		reply_error(&x, 503, RPC_INTERNAL_ERROR,
		            "Internal error: the database is unavailable; try again shortly");
		return 0;
	}
	n = PQntuples(r);
	PQclear(r);
	if (n == 0) {
		reply_error(&x, 404, RPC_SESSION_NOT_FOUND, "Session not found");
		return 0;
	}
	authcache_invalidate();
	log_fields(LOG_LVL_INFO, "mcp session ended", "session", session_tag(sid, tag), NULL);
	resp_body(req, 204, NULL, NULL, 0);
	return 0;
}
