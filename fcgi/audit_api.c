/*
 * audit_api.c - reading the audit log of the caller's organisation, for the
 * REST routes (GET /api/v1/audit, .../integrity, .../head, .../export) and
 * the MCP tools (query_audit_log, verify_audit_integrity,
 * get_audit_chain_head). Both validate the same filters and run the same
 * query; every filter travels as a parameter.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"

#define QUERY_DEFAULT_LIMIT 50
#define QUERY_MAX_LIMIT 500
#define FILTER_MAX 200

/* The filters of a query, borrowed strings; NULL: no filter. */
struct audit_filter {
	const char *from, *to;		/* RFC 3339 times: from <= time < to */
	const char *actor;		/* user name or token name */
	const char *tool;		/* action: tool name or "METHOD /route" */
	const char *device;		/* device name or id */
	const char *outcome;		/* ok, denied, error, pending */
	const char *cursor;		/* next_cursor of the previous page */
	long long limit;
};

static const char *const outcomes[] = { "ok", "denied", "error", "pending" };

/* Whether s is an RFC 3339 date-time (the database then parses it). */
static bool is_time(const char *s)
{
	static regex_t re;
	static bool ready;

	if (!ready) {
		if (regcomp(&re, "^[0-9]{4}-[01][0-9]-[0-3][0-9]([Tt ][0-2][0-9]:[0-5][0-9]"
		            "(:[0-5][0-9](\\.[0-9]{1,6})?)?([Zz]|[+-][0-2][0-9]:?[0-5][0-9])?)?$",
		            REG_EXTENDED | REG_NOSUB) != 0)
			abort();
		ready = true;
	}
	return regexec(&re, s, 0, NULL, 0) == 0;
}

/*
 * Checks f. Returns 0, or -1 with a sentence naming the bad filter in why.
 */
static int filter_check(const struct audit_filter *f, char *why, size_t len)
{
	const char *const strings[][2] = {
		{ "actor", f->actor }, { "tool", f->tool }, { "device", f->device },
	};
	long long v;
	const char *err;
	size_t i;

	if ((f->from && !is_time(f->from)) || (f->to && !is_time(f->to))) {
		snprintf(why, len, "'%s' must be a date and time like 2026-11-22T01:30:00Z.",
		         f->from && !is_time(f->from) ? "from" : "to");
		return -1;
	}
	for (i = 0; i < ARRAY_LEN(strings); i++) {
		if (strings[i][1] != NULL && strlen(strings[i][1]) > FILTER_MAX) {
			snprintf(why, len, "'%s' must be at most %d bytes long.", strings[i][0],
			         FILTER_MAX);
			return -1;
		}
	}
	for (i = 0; f->outcome && i < ARRAY_LEN(outcomes); i++)
		if (strcmp(f->outcome, outcomes[i]) == 0)
			break;
	if (f->outcome && i == ARRAY_LEN(outcomes)) {
		snprintf(why, len, "'outcome' must be one of: ok, denied, error, pending.");
		return -1;
	}
	if (f->cursor && parse_ll(f->cursor, 1, 1LL << 62, &v, &err) < 0) {
		snprintf(why, len, "'cursor' is not one this log gave out; start without it.");
		return -1;
	}
	if (f->limit < 1 || f->limit > QUERY_MAX_LIMIT) {
		snprintf(why, len, "'limit' must be between 1 and %d.", QUERY_MAX_LIMIT);
		return -1;
	}
	return 0;
}

/* A text column as a JSON string, or null when NULL. */
static json_object *column(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : json_object_new_string(PQgetvalue(r, row, col));
}

static json_object *column_int(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL
		: json_object_new_int64(atoll(PQgetvalue(r, row, col)));
}

/* One event as a query shows it; the caller owns it. */
static json_object *event_json(const PGresult *r, int row)
{
	json_object *e = json_object_new_object(), *actor = json_object_new_object();
	json_object *client = json_object_new_object(), *args;

	json_object_object_add(e, "seq", column_int(r, row, 0));
	json_object_object_add(e, "time", column(r, row, 1));
	json_object_object_add(e, "action", column(r, row, 2));
	json_object_object_add(actor, "user", column(r, row, 3));
	json_object_object_add(actor, "token", column(r, row, 4));
	json_object_object_add(e, "actor", actor);
	json_object_object_add(client, "kind", column(r, row, 5));
	json_object_object_add(client, "name", column(r, row, 6));
	json_object_object_add(e, "client", client);
	json_object_object_add(e, "device_id", column_int(r, row, 7));
	json_object_object_add(e, "device", column(r, row, 8));
	json_object_object_add(e, "outcome", column(r, row, 9));
	json_object_object_add(e, "reason", column(r, row, 10));
	json_object_object_add(e, "latency_ms", column_int(r, row, 11));
	json_object_object_add(e, "mcp_session", column(r, row, 12));
	json_object_object_add(e, "source_ip", column(r, row, 13));
	args = json_tokener_parse(PQgetvalue(r, row, 14));
	json_object_object_add(e, "args", args ? args : json_object_new_object());
	return e;
}

/*
 * Runs the query f (checked) over who's organisation, newest first.
 * Returns 0 with *out {"events":[...],"next_cursor":...} (the caller owns
 * it), or -1 when the database is unavailable.
 */
static int audit_query(const struct token_identity *who, const struct audit_filter *f,
                       json_object **out)
{
	static const char sql[] =
		"SELECT seq, to_char(occurred_at AT TIME ZONE 'UTC', "
		"    'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), action, actor_user, actor_token, "
		"  client_kind, client_name, device_id, device, outcome, reason, latency_ms, "
		"  mcp_session_id, host(source_ip), args::text "
		"FROM audit_events WHERE org_id = $1 "
		"  AND ($2::timestamptz IS NULL OR occurred_at >= $2::timestamptz) "
		"  AND ($3::timestamptz IS NULL OR occurred_at < $3::timestamptz) "
		"  AND ($4::text IS NULL OR actor_user = $4 OR actor_token = $4) "
		"  AND ($5::text IS NULL OR action = $5) "
		"  AND ($6::text IS NULL OR device = $6 OR device_id::text = $6) "
		"  AND ($7::text IS NULL OR outcome = $7) "
		"  AND ($8::bigint IS NULL OR seq < $8::bigint) "
		"ORDER BY seq DESC LIMIT $9";
	char org[24], limit[24];
	const char *p[9] = { org, f->from, f->to, f->actor, f->tool, f->device, f->outcome,
	                     f->cursor, limit };
	json_object *list;
	PGresult *r;
	int n;

	snprintf(org, sizeof org, "%lld", who->org_id);
	snprintf(limit, sizeof limit, "%lld", f->limit + 1);
	if ((r = db_query(sql, 9, p)) == NULL)
		return -1;
	n = PQntuples(r);
	list = json_object_new_array();
	for (int i = 0; i < n && i < f->limit; i++)
		json_object_array_add(list, event_json(r, i));
	*out = json_object_new_object();
	json_object_object_add(*out, "events", list);
	json_object_object_add(*out, "next_cursor", n > f->limit
		? json_object_new_string(PQgetvalue(r, (int)f->limit - 1, 0)) : NULL);
	PQclear(r);
	return 0;
}

/* The head of who's chain as JSON; NULL when the database is unavailable. */
static json_object *head_json(const struct token_identity *who)
{
	struct audit_head h;
	json_object *o;

	if (audit_head(who->org_id, &h) < 0)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "organisation", json_object_new_string(who->org));
	json_object_object_add(o, "seq", json_object_new_int64(h.seq));
	json_object_object_add(o, "hash", json_object_new_string(h.hash));
	json_object_object_add(o, "time", h.time[0] ? json_object_new_string(h.time) : NULL);
	return o;
}

/* The verification report of who's chain; NULL when the database is unavailable. */
static json_object *integrity_json(const struct token_identity *who)
{
	struct audit_report rep;

	if (audit_verify_db(who->org_id, NULL, &rep) < 0)
		return NULL;
	return audit_report_json(&rep);
}

/* ---- REST ------------------------------------------------------------------ */

int h_audit_query(struct request *req)
{
	struct audit_filter f = {
		.from = request_param(req, "from"), .to = request_param(req, "to"),
		.actor = request_param(req, "actor"), .tool = request_param(req, "tool"),
		.device = request_param(req, "device"), .outcome = request_param(req, "outcome"),
		.cursor = request_param(req, "cursor"), .limit = QUERY_DEFAULT_LIMIT,
	};
	const char *limit = request_param(req, "limit"), *err;
	json_object *o;
	char why[200];

	if (limit != NULL && parse_ll(limit, 1, QUERY_MAX_LIMIT, &f.limit, &err) < 0) {
		resp_error(req, 400, "bad_request", "'limit' must be between 1 and %d",
		           QUERY_MAX_LIMIT);
		return 0;
	}
	if (filter_check(&f, why, sizeof why) < 0) {
		resp_error(req, 400, "bad_request", "%s", why);
		return 0;
	}
	if (audit_query(&req->who, &f, &o) < 0) {
		resp_error(req, 503, "database_unavailable", "the database is unavailable");
		return 0;
	}
	resp_json(req, 200, o);
	return 0;
}

int h_audit_head(struct request *req)
{
	json_object *o = head_json(&req->who);

	if (o == NULL)
		resp_error(req, 503, "database_unavailable", "the database is unavailable");
	else
		resp_json(req, 200, o);
	return 0;
}

int h_audit_integrity(struct request *req)
{
	json_object *o = integrity_json(&req->who);

	if (o == NULL)
		resp_error(req, 503, "database_unavailable", "the database is unavailable");
	else
		resp_json(req, 200, o);
	return 0;
}

int h_audit_export(struct request *req)
{
	char *data = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&data, &len);
	int rc;

	if (f == NULL)
		abort();
	rc = audit_export(req->who.org_id, req->who.org, f);
	if (fclose(f) != 0)
		rc = -1;
	if (rc < 0)
		resp_error(req, 503, "database_unavailable", "the export could not be read");
	else
		resp_body(req, 200, "application/jsonl", data, len);
	free(data);
	return 0;
}

/* ---- MCP tools --------------------------------------------------------------- */

/* A string argument, or NULL. */
static const char *arg(json_object *args, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(args, name, &v) ? json_object_get_string(v) : NULL;
}

int tool_query_audit_log(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	struct audit_filter f = {
		.from = arg(args, "from"), .to = arg(args, "to"), .actor = arg(args, "actor"),
		.tool = arg(args, "tool"), .device = arg(args, "device"),
		.outcome = arg(args, "outcome"), .cursor = arg(args, "cursor"),
		.limit = QUERY_DEFAULT_LIMIT,
	};
	json_object *v, *o;
	char why[200];

	if (json_object_object_get_ex(args, "limit", &v))
		f.limit = json_object_get_int64(v);
	if (filter_check(&f, why, sizeof why) < 0) {
		tool_fail(res, "%s", why);
		return RPC_OK;
	}
	if (audit_query(&c->req->who, &f, &o) < 0) {
		tool_fail(res, "The audit log could not be read because the database is "
		          "unavailable; try again in a few seconds.");
		return RPC_OK;
	}
	tool_structured(res, o);
	return RPC_OK;
}

int tool_verify_audit_integrity(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *o = integrity_json(&c->req->who);

	if (o == NULL)
		tool_fail(res, "The audit log could not be verified because the database is "
		          "unavailable; try again in a few seconds.");
	else
		tool_structured(res, o);
	return RPC_OK;
}

int tool_get_audit_chain_head(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	json_object *o = head_json(&c->req->who);

	if (o == NULL)
		tool_fail(res, "The audit chain head could not be read because the database is "
		          "unavailable; try again in a few seconds.");
	else
		tool_structured(res, o);
	return RPC_OK;
}
