/*
 * api_devices.c - REST devices of the caller's organisation:
 * GET/POST /api/v1/devices, GET/PATCH/DELETE /api/v1/devices/{id}.
 *
 * Credentials (username, password) are write-only: sealed together with
 * AES-256-GCM under the master key (shared/devcred.c), bound to the
 * organisation, and never part of a response; a device shows
 * has_credentials instead. The route step has already found {id} in the
 * caller's organisation (req->device).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "devcred.h"
#include "fcgi.h"
#include "log.h"

#define LIST_DEFAULT 100
#define LIST_MAX 500

static const char *const kinds[] = { "nanokvm", "pikvm", "ami", "vnc", NULL };

const struct field device_fields[] = {
	{ "name", FIELD_STRING, 1, DEVICE_NAME_MAX, NULL, true, "unique in the organisation" },
	{ "kind", FIELD_ENUM, 0, 0, kinds, true, "the device's protocol" },
	{ "url", FIELD_STRING, 1, 2000, NULL, true,
	  "base URL, scheme://host[:port][/path], without credentials" },
	{ "username", FIELD_STRING, 0, 128, NULL, false, "login (write-only)" },
	{ "password", FIELD_STRING, 0, 256, NULL, false, "password (write-only)" },
	{ "tags", FIELD_TAGS, 0, 32, NULL, false, "labels, 1 to 64 characters each" },
	{ "enabled", FIELD_BOOL, 0, 0, NULL, false, "false keeps the device out of use" },
	{ "keep_warm", FIELD_BOOL, 0, 0, NULL, false,
	  "true keeps the device's console session open even without demand" },
	{ "screen_width", FIELD_INT, 1, 16384, NULL, false, "screen size hint, pixels" },
	{ "screen_height", FIELD_INT, 1, 16384, NULL, false, "screen size hint, pixels" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

static void db_unavailable_error(struct request *req)
{
	resp_error(req, 503, "database_unavailable", "the database is unavailable; try again");
}

/* Whether url is scheme://host[...] with no credentials, blanks or control characters. */
static bool url_ok(const char *url)
{
	size_t scheme = strspn(url, "abcdefghijklmnopqrstuvwxyz0123456789+.-");

	return scheme > 0 && url[0] >= 'a' && url[0] <= 'z' && strncmp(url + scheme, "://", 3) == 0 &&
	       url[scheme + 3] != '\0' && url[scheme + 3] != '/' &&
	       strpbrk(url, "@ \t") == NULL;
}

/* A member of o as a string, or NULL. */
static const char *member(json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) && v != NULL ? json_object_get_string(v) : NULL;
}

/*
 * Seals user and pass for the caller's organisation into *out (freed with
 * devcred_sealed_cleanup). Returns 0, or -1 after answering 503 (no master
 * key).
 */
static int seal_credentials(struct request *req, const char *user, const char *pass,
                            struct devcred_sealed *out)
{
	char why[256];

	if (devcred_seal(req->who.org_id, user, pass, out, why, sizeof why) == 0)
		return 0;
	log_errx("device credentials cannot be sealed: %s", why);
	resp_error(req, 503, "master_key_unavailable",
	           "device credentials cannot be stored: the master key is unavailable");
	return -1;
}

/*
 * Reads and opens the stored credentials of device id into *creds (an
 * object the caller owns; NULL when there are none). Returns 0, or -1
 * after answering.
 */
static int open_credentials(struct request *req, long long id, json_object **creds)
{
	static const char sql[] =
		"SELECT encode(cred_nonce, 'hex'), encode(cred_ciphertext, 'hex'), cred_key_id "
		"FROM devices WHERE id = $1 AND org_id = $2 AND cred_nonce IS NOT NULL";
	char ids[24], org[24], why[256];
	const char *p[2] = { ids, org };
	PGresult *r;
	int rc = 0;

	*creds = NULL;
	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_unavailable_error(req);
		return -1;
	}
	if (PQntuples(r) == 1 &&
	    devcred_open(req->who.org_id, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
	                 PQgetvalue(r, 0, 2), creds, why, sizeof why) < 0) {
		resp_error(req, 503, "master_key_unavailable", "%s", why);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

/* Answers with device id of the caller's organisation. */
static int reply_device(struct request *req, int status, const char *id)
{
	static const char sql[] =
		"SELECT " DEVICE_COLUMNS " FROM devices WHERE id = $1 AND org_id = $2";
	char org[24];
	const char *p[2] = { id, org };
	PGresult *r;

	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	if (PQntuples(r) == 1)
		resp_json(req, status, device_row_json(r, 0));
	else
		resp_error(req, 404, "not_found", "no such device");
	PQclear(r);
	return 0;
}

int h_devices_list(struct request *req)
{
	static const char sql[] =
		"SELECT " DEVICE_COLUMNS " FROM devices WHERE org_id = $1 "
		"  AND ($2::text IS NULL OR kind = $2) "
		"  AND ($3::text IS NULL OR $3 = ANY(tags)) "
		"  AND (enabled OR $4::boolean) "
		"  AND ($6::text IS NULL OR $6 = ANY(tags)) "
		"ORDER BY name, id LIMIT $5";
	const char *inc = request_param(req, "include_disabled"), *lim = request_param(req, "limit");
	const char *kind = request_param(req, "kind"), *err;
	char org[24], limit[24];
	const char *p[6] = { org, kind, request_param(req, "tag"), "false", limit,
	                     req->who.device_tag[0] ? req->who.device_tag : NULL };
	long long max = LIST_DEFAULT;
	json_object *list, *o;
	PGresult *r;
	size_t i;
	int n;

	for (i = 0; kind != NULL && kinds[i] != NULL && strcmp(kinds[i], kind) != 0; i++)
		;
	if (kind != NULL && kinds[i] == NULL) {
		resp_error(req, 400, "bad_request", "'kind' must be one of nanokvm, pikvm, ami, vnc");
		return 0;
	}
	if (inc != NULL && strcmp(inc, "true") != 0 && strcmp(inc, "false") != 0) {
		resp_error(req, 400, "bad_request", "'include_disabled' must be true or false");
		return 0;
	}
	if (lim != NULL && parse_ll(lim, 1, LIST_MAX, &max, &err) < 0) {
		resp_error(req, 400, "bad_request", "'limit' must be from 1 to %d", LIST_MAX);
		return 0;
	}
	if (inc != NULL)
		p[3] = inc;
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(limit, sizeof limit, "%lld", max + 1);
	if ((r = db_query(sql, 6, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	n = PQntuples(r);
	list = json_object_new_array();
	for (int j = 0; j < n && j < max; j++)
		json_object_array_add(list, device_row_json(r, j));
	PQclear(r);
	o = json_object_new_object();
	json_object_object_add(o, "devices", list);
	json_object_object_add(o, "truncated", json_object_new_boolean(n > max));
	resp_json(req, 200, o);
	return 0;
}

int h_device_get(struct request *req)
{
	char id[24];

	snprintf(id, sizeof id, "%lld", req->device.id);
	return reply_device(req, 200, id);
}

int h_device_create(struct request *req)
{
	static const char sql[] =
		"INSERT INTO devices (org_id, name, kind, base_url, tags, enabled, screen_width, "
		"  screen_height, cred_nonce, cred_ciphertext, cred_key_id, keep_warm) "
		"VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), "
		"  coalesce($6::boolean, true), $7::integer, $8::integer, decode($9, 'hex'), "
		"  decode($10, 'hex'), $11, coalesce($12::boolean, false)) "
		"ON CONFLICT (org_id, name) DO NOTHING RETURNING id";
	json_object *b, *tags;
	struct devcred_sealed sealed = { 0 };
	char org[24], id[24];
	const char *user, *pass, *p[12];
	PGresult *r;

	if (body_parse(req, device_fields, true, &b) < 0)
		return 0;
	if (!url_ok(member(b, "url"))) {
		resp_error(req, 400, "bad_request", "'url' must be scheme://host[:port][/path] "
		           "without credentials or blanks; give username and password apart");
		goto out;
	}
	user = member(b, "username");
	pass = member(b, "password");
	if ((user != NULL || pass != NULL) && seal_credentials(req, user, pass, &sealed) < 0)
		goto out;
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	p[0] = org;
	p[1] = member(b, "name");
	p[2] = member(b, "kind");
	p[3] = member(b, "url");
	p[4] = json_object_object_get_ex(b, "tags", &tags)
		? json_object_to_json_string_ext(tags, JSON_C_TO_STRING_PLAIN) : "[]";
	p[5] = member(b, "enabled");
	p[6] = member(b, "screen_width");
	p[7] = member(b, "screen_height");
	p[8] = sealed.nonce_hex;
	p[9] = sealed.ct_hex;
	p[10] = sealed.nonce_hex ? sealed.key_id : NULL;
	p[11] = member(b, "keep_warm");
	if ((r = db_query(sql, 12, p)) == NULL) {
		db_unavailable_error(req);
		goto out;
	}
	if (PQntuples(r) == 0) {
		resp_error(req, 409, "conflict", "a device named '%.100s' exists already", p[1]);
		PQclear(r);
		goto out;
	}
	snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	reply_device(req, 201, id);
out:
	devcred_sealed_cleanup(&sealed);
	json_object_put(b);
	return 0;
}

int h_device_update(struct request *req)
{
	static const char taken[] =
		"SELECT 1 FROM devices WHERE org_id = $1 AND name = $2 AND id <> $3";
	static const char sql[] =
		"UPDATE devices SET name = coalesce($3, name), kind = coalesce($4, kind), "
		"  base_url = coalesce($5, base_url), "
		"  tags = CASE WHEN $6::jsonb IS NULL THEN tags "
		"         ELSE ARRAY(SELECT jsonb_array_elements_text($6::jsonb)) END, "
		"  enabled = coalesce($7::boolean, enabled), "
		"  screen_width = coalesce($8::integer, screen_width), "
		"  screen_height = coalesce($9::integer, screen_height), "
		"  cred_nonce = CASE WHEN $10::boolean THEN decode($11, 'hex') ELSE cred_nonce END, "
		"  cred_ciphertext = CASE WHEN $10::boolean THEN decode($12, 'hex') "
		"                    ELSE cred_ciphertext END, "
		"  cred_key_id = CASE WHEN $10::boolean THEN $13 ELSE cred_key_id END, "
		"  keep_warm = coalesce($14::boolean, keep_warm) "
		"WHERE id = $1 AND org_id = $2";
	json_object *b, *tags, *old = NULL;
	struct devcred_sealed sealed = { 0 };
	char org[24], id[24];
	const char *user, *pass, *p[14];
	PGresult *r;

	if (body_parse(req, device_fields, false, &b) < 0)
		return 0;
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(id, sizeof id, "%lld", req->device.id);
	if (member(b, "url") != NULL && !url_ok(member(b, "url"))) {
		resp_error(req, 400, "bad_request", "'url' must be scheme://host[:port][/path] "
		           "without credentials or blanks; give username and password apart");
		goto out;
	}
	if (member(b, "name") != NULL) {
		const char *q[3] = { org, member(b, "name"), id };
		if ((r = db_query(taken, 3, q)) == NULL) {
			db_unavailable_error(req);
			goto out;
		}
		if (PQntuples(r) > 0) {
			resp_error(req, 409, "conflict", "a device named '%.100s' exists already", q[1]);
			PQclear(r);
			goto out;
		}
		PQclear(r);
	}
	user = member(b, "username");
	pass = member(b, "password");
	if (user != NULL || pass != NULL) {
		/* One of the two keeps its stored value. */
		if (open_credentials(req, req->device.id, &old) < 0)
			goto out;
		if (seal_credentials(req, user ? user : member(old, "username"),
		                     pass ? pass : member(old, "password"), &sealed) < 0)
			goto out;
	}
	p[0] = id;
	p[1] = org;
	p[2] = member(b, "name");
	p[3] = member(b, "kind");
	p[4] = member(b, "url");
	p[5] = json_object_object_get_ex(b, "tags", &tags)
		? json_object_to_json_string_ext(tags, JSON_C_TO_STRING_PLAIN) : NULL;
	p[6] = member(b, "enabled");
	p[7] = member(b, "screen_width");
	p[8] = member(b, "screen_height");
	p[9] = sealed.nonce_hex ? "true" : "false";
	p[10] = sealed.nonce_hex;
	p[11] = sealed.ct_hex;
	p[12] = sealed.nonce_hex ? sealed.key_id : NULL;
	p[13] = member(b, "keep_warm");
	if ((r = db_query(sql, 14, p)) == NULL) {
		db_unavailable_error(req);
		goto out;
	}
	PQclear(r);
	reply_device(req, 200, id);
out:
	devcred_sealed_cleanup(&sealed);
	json_object_put(old);
	json_object_put(b);
	return 0;
}

int h_device_delete(struct request *req)
{
	static const char sql[] = "DELETE FROM devices WHERE id = $1 AND org_id = $2";
	char org[24], id[24];
	const char *p[2] = { id, org };
	PGresult *r;

	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(id, sizeof id, "%lld", req->device.id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	PQclear(r);
	resp_body(req, 204, NULL, NULL, 0);
	return 0;
}
