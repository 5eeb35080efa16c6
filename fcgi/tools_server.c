/*
 * tools_server.c - tools about the gateway itself: get_server_info and
 * list_devices. Their rows (schemas, annotations, scope) are in tools.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ctl.h"
#include "db.h"
#include "fcgi.h"

#define CAPTURE_TIMEOUT_MS 500
#define DEVICES_DEFAULT_LIMIT 100

/* The capture worker's state as get_server_info shows it; the caller owns it. */
static json_object *capture_json(void)
{
	json_object *o = json_object_new_object();
	struct ctl_stats_reply st;
	uint32_t len = 0;
	int rc = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_STATS, NULL, 0, CTL_STATS_REPLY,
	                  &st, sizeof st, &len, CAPTURE_TIMEOUT_MS);
	bool ok = rc == CTL_OK && len == sizeof st;

	json_object_object_add(o, "running", json_object_new_boolean(ok));
	if (ok) {
		json_object_object_add(o, "uptime_s",
		                       json_object_new_int64((int64_t)(st.uptime_ms / 1000)));
		json_object_object_add(o, "device_sessions", json_object_new_int((int)st.sessions));
	} else {
		json_object_object_add(o, "error", json_object_new_string(
			rc < 0 ? strerror(errno) : "the capture worker refused the request"));
	}
	return o;
}

int tool_get_server_info(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	const struct token_identity *who = &c->req->who;
	json_object *o = json_object_new_object(), *caller = json_object_new_object();
	json_object *scopes = json_object_new_array();

	if (who->scope_read)
		json_object_array_add(scopes, json_object_new_string("read"));
	if (who->scope_write)
		json_object_array_add(scopes, json_object_new_string("write"));
	json_object_object_add(caller, "organisation", json_object_new_string(who->org));
	json_object_object_add(caller, "user", json_object_new_string(who->user));
	json_object_object_add(caller, "role", json_object_new_string(who->role));
	json_object_object_add(caller, "token", json_object_new_string(who->name));
	json_object_object_add(caller, "scopes", scopes);
	json_object_object_add(o, "name", json_object_new_string("kvmgate"));
	json_object_object_add(o, "version", json_object_new_string(KVMGATE_VERSION));
	json_object_object_add(o, "protocol_version",
	                       json_object_new_string(c->session.protocol_version));
	json_object_object_add(o, "caller", caller);
	json_object_object_add(o, "capture", capture_json());
	tool_structured(res, o);
	return RPC_OK;
}

int tool_list_devices(struct mcp_call *c, json_object *args, struct tool_result *res)
{
	static const char sql[] =
		"SELECT " DEVICE_COLUMNS " "
		"FROM devices WHERE org_id = $1 "
		"  AND ($2::text IS NULL OR kind = $2) "
		"  AND ($3::text IS NULL OR $3 = ANY(tags)) "
		"  AND (enabled OR $4::boolean) "
		"  AND ($6::text IS NULL OR $6 = ANY(tags)) "	/* the token's device tag */
		"ORDER BY name, id LIMIT $5";
	json_object *v, *o, *list;
	char org[24], limit[24];
	const char *params[6] = { org, NULL, NULL, "false", limit,
	                          c->req->who.device_tag[0] ? c->req->who.device_tag : NULL };
	long long max = DEVICES_DEFAULT_LIMIT;
	PGresult *r;
	int n;

	if (json_object_object_get_ex(args, "kind", &v))
		params[1] = json_object_get_string(v);
	if (json_object_object_get_ex(args, "tag", &v))
		params[2] = json_object_get_string(v);
	if (json_object_object_get_ex(args, "include_disabled", &v) && json_object_get_boolean(v))
		params[3] = "true";
	if (json_object_object_get_ex(args, "limit", &v))
		max = json_object_get_int64(v);
	snprintf(org, sizeof org, "%lld", c->req->who.org_id);
	/* One more than asked tells whether the list was cut. */
	snprintf(limit, sizeof limit, "%lld", max + 1);
	if ((r = db_query(sql, 6, params)) == NULL) {
		tool_fail(res, "The device list could not be read because the database is "
		          "unavailable; try again in a few seconds.");
		return RPC_OK;
	}
	n = PQntuples(r);
	list = json_object_new_array();
	for (int i = 0; i < n && i < max; i++)
		json_object_array_add(list, device_row_json(r, i));
	PQclear(r);
	o = json_object_new_object();
	json_object_object_add(o, "devices", list);
	json_object_object_add(o, "truncated", json_object_new_boolean(n > max));
	tool_structured(res, o);
	return RPC_OK;
}
