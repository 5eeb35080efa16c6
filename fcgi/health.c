/*
 * health.c - GET /healthz and GET /api/v1/me.
 */
#include <errno.h>
#include <string.h>

#include "conf.h"
#include "ctl.h"
#include "db.h"
#include "fcgi.h"

#define CAPTURE_TIMEOUT_MS 500

static json_object *check_database(bool *ok)
{
	json_object *o = json_object_new_object();
	uint64_t t0 = now_mono_ns();
	PGresult *r = db_query("SELECT 1", 0, NULL);

	*ok = r != NULL;
	PQclear(r);
	json_object_object_add(o, "ok", json_object_new_boolean(*ok));
	json_object_object_add(o, "latency_us",
	                       json_object_new_int64((int64_t)(now_mono_ns() - t0) / 1000));
	if (!*ok)
		json_object_object_add(o, "error", json_object_new_string(db_last_error()));
	return o;
}

static json_object *check_capture(bool *ok)
{
	json_object *o = json_object_new_object();
	struct ctl_stats_reply st;
	uint32_t len = 0;
	int rc = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_STATS, NULL, 0, CTL_STATS_REPLY,
	                  &st, sizeof st, &len, CAPTURE_TIMEOUT_MS);

	*ok = rc == CTL_OK && len == sizeof st;
	json_object_object_add(o, "ok", json_object_new_boolean(*ok));
	if (*ok) {
		json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(st.uptime_ms / 1000)));
		json_object_object_add(o, "sessions", json_object_new_int((int)st.sessions));
		json_object_object_add(o, "frame_slots", json_object_new_int((int)st.slots_total));
		json_object_object_add(o, "frame_slots_used", json_object_new_int((int)st.slots_used));
	} else {
		json_object_object_add(o, "error", json_object_new_string(
			rc < 0 ? strerror(errno) : "capture worker refused the request"));
	}
	return o;
}

int h_healthz(struct request *req)
{
	bool db_ok, cap_ok;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_string(KVMGATE_VERSION));
	json_object_object_add(o, "database", check_database(&db_ok));
	json_object_object_add(o, "capture", check_capture(&cap_ok));
	json_object_object_add(o, "status",
	                       json_object_new_string(db_ok && cap_ok ? "ok" : "degraded"));
	resp_json(req, db_ok && cap_ok ? 200 : 503, o);
	return 0;
}

int h_me(struct request *req)
{
	json_object *o = json_object_new_object(), *scopes = json_object_new_array();

	if (req->who.scope_read)
		json_object_array_add(scopes, json_object_new_string("read"));
	if (req->who.scope_write)
		json_object_array_add(scopes, json_object_new_string("write"));
	json_object_object_add(o, "organisation", json_object_new_string(req->who.org));
	json_object_object_add(o, "user", json_object_new_string(req->who.user));
	json_object_object_add(o, "role", json_object_new_string(req->who.role));
	json_object_object_add(o, "token", json_object_new_string(req->who.name));
	json_object_object_add(o, "scopes", scopes);
	resp_json(req, 200, o);
	return 0;
}
