/*
 * devices.c - the capture worker's only access to PostgreSQL: a device's
 * row and its credentials, opened with the master key. Credentials reach
 * the capture worker this way only, never through the control socket.
 *
 * The query is synchronous: it runs when a control request opens or
 * reopens a session, not per frame, against the local database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "capture.h"
#include "conf.h"
#include "crypt.h"
#include "db.h"
#include "devcred.h"
#include "log.h"

/* Copies string member name of o into out (outsz bytes); "" when absent. Returns 0 or -1 (too long). */
static int member(json_object *o, const char *name, char *out, size_t outsz)
{
	json_object *v;
	const char *s = json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)
	                ? json_object_get_string(v) : "";

	if (strlen(s) >= outsz)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Opens the sealed credentials of row 0 of r (columns 4..6) into out. Returns 0 or -1. */
static int open_credentials(PGresult *r, long long org, struct device_cfg *out, char *why, size_t len)
{
	json_object *o = NULL, *v;
	int rc = -1;

	if (devcred_open(org, PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6), &o,
	                 why, len) < 0)
		return -1;
	if (member(o, "username", out->username, sizeof out->username) < 0 ||
	    member(o, "password", out->password, sizeof out->password) < 0)
		snprintf(why, len, "stored credentials are too long");
	else
		rc = 0;
	/* json-c holds copies of the secret: wipe them before freeing. */
	if (json_object_object_get_ex(o, "password", &v) && json_object_is_type(v, json_type_string))
		explicit_bzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
	json_object_put(o);
	return rc;
}

int device_load(uint64_t id, struct device_cfg *out, enum ctl_status *status, char *why, size_t len)
{
	static const char sql[] =
		"SELECT org_id, kind, base_url, enabled, encode(cred_nonce, 'hex'), "
		"  encode(cred_ciphertext, 'hex'), cred_key_id, cred_nonce IS NOT NULL, keep_warm "
		"FROM devices WHERE id = $1";
	char ids[24];
	const char *p[1] = { ids };
	PGresult *r;
	int rc = -1;

	memset(out, 0, sizeof *out);
	snprintf(ids, sizeof ids, "%llu", (unsigned long long)id);
	if ((r = db_query(sql, 1, p)) == NULL) {
		*status = CTL_EUNAVAILABLE;
		snprintf(why, len, "the database is unavailable");
		return -1;
	}
	*status = CTL_ENODEVICE;
	if (PQntuples(r) != 1) {
		snprintf(why, len, "no such device");
		goto out;
	}
	if (PQgetvalue(r, 0, 3)[0] != 't') {
		snprintf(why, len, "the device is disabled");
		goto out;
	}
	out->id = id;
	if (strlen(PQgetvalue(r, 0, 1)) >= sizeof out->kind ||
	    strlen(PQgetvalue(r, 0, 2)) >= sizeof out->url) {
		snprintf(why, len, "device kind or URL too long");
		goto out;
	}
	snprintf(out->kind, sizeof out->kind, "%s", PQgetvalue(r, 0, 1));
	snprintf(out->url, sizeof out->url, "%s", PQgetvalue(r, 0, 2));
	out->keep_warm = PQgetvalue(r, 0, 8)[0] == 't';
	*status = CTL_EUNAVAILABLE;
	if (PQgetvalue(r, 0, 7)[0] == 't' &&
	    open_credentials(r, atoll(PQgetvalue(r, 0, 0)), out, why, len) < 0) {
		log_errx("device %llu: %s", (unsigned long long)id, why);
		goto out;
	}
	*status = CTL_OK;
	rc = 0;
out:
	if (rc < 0)
		explicit_bzero(out, sizeof *out);
	PQclear(r);
	return rc;
}
