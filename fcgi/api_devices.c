/*
 * api_devices.c - REST devices of the caller's organisation:
 * GET/POST /api/v1/devices, GET/PATCH/DELETE /api/v1/devices/{id}.
 *
 * Credentials (username, password) are write-only: sealed together with
 * AES-256-GCM under the master key (shared/crypt.c), bound to the
 * organisation, and never part of a response; a device shows
 * has_credentials instead. The route step has already found {id} in the
 * caller's organisation (req->device).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"

#define LIST_DEFAULT 100
#define LIST_MAX 500
#define CRED_MAX 1024

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
	{ "screen_width", FIELD_INT, 1, 16384, NULL, false, "screen size hint, pixels" },
	{ "screen_height", FIELD_INT, 1, 16384, NULL, false, "screen size hint, pixels" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

/* Columns every device query returns, in device_json()'s order. */
#define DEVICE_COLUMNS \
	"id, name, kind, base_url, array_to_json(tags)::text, enabled, " \
	"cred_ciphertext IS NOT NULL, screen_width, screen_height, " \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* One device as responses show it: never its credentials. The caller owns it. */
static json_object *device_json(const PGresult *r, int row)
{
	json_object *d = json_object_new_object();
	json_object *tags = json_tokener_parse(PQgetvalue(r, row, 4));

	if (!json_object_is_type(tags, json_type_array)) {
		json_object_put(tags);
		tags = json_object_new_array();
	}
	json_object_object_add(d, "id", json_object_new_int64(atoll(PQgetvalue(r, row, 0))));
	json_object_object_add(d, "name", json_object_new_string(PQgetvalue(r, row, 1)));
	json_object_object_add(d, "kind", json_object_new_string(PQgetvalue(r, row, 2)));
	json_object_object_add(d, "url", json_object_new_string(PQgetvalue(r, row, 3)));
	json_object_object_add(d, "tags", tags);
	json_object_object_add(d, "enabled", json_object_new_boolean(PQgetvalue(r, row, 5)[0] == 't'));
	json_object_object_add(d, "has_credentials",
	                       json_object_new_boolean(PQgetvalue(r, row, 6)[0] == 't'));
	json_object_object_add(d, "screen_width", PQgetisnull(r, row, 7) ? NULL
		: json_object_new_int(atoi(PQgetvalue(r, row, 7))));
	json_object_object_add(d, "screen_height", PQgetisnull(r, row, 8) ? NULL
		: json_object_new_int(atoi(PQgetvalue(r, row, 8))));
	json_object_object_add(d, "created_at", json_object_new_string(PQgetvalue(r, row, 9)));
	return d;
}

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

/* The master key, read once per process. Returns it, or NULL with the reason in why. */
static const struct secret_key *master_key(char *why, size_t len)
{
	static struct secret_key key;
	static bool loaded;

	if (!loaded && secret_key_load(conf_str(CONF_MASTER_KEY), conf_str(CONF_MASTER_KEY_FILE),
	                               &key, why, len) == 0)
		loaded = true;
	return loaded ? &key : NULL;
}

/* The additional data binding sealed credentials to their organisation. */
static void cred_aad(long long org_id, char out[64])
{
	snprintf(out, 64, SECRET_DEVICE_AAD_FMT, org_id);
}

/*
 * Seals {"username","password"} for org into hex strings nonce_hex and
 * ct_hex (freed by the caller) and the key id. Returns 0, or -1 after
 * answering 503 (no master key).
 */
static int seal_credentials(struct request *req, const char *user, const char *pass,
                            char **nonce_hex, char **ct_hex, char key_id[SECRET_KEY_ID_LEN + 1])
{
	const struct secret_key *k;
	json_object *o = json_object_new_object();
	uint8_t nonce[SECRET_NONCE_LEN], *ct;
	const char *plain;
	char aad[64], why[256];
	size_t n;
	int rc = -1;

	if ((k = master_key(why, sizeof why)) == NULL) {
		log_errx("device credentials cannot be sealed: %s", why);
		resp_error(req, 503, "master_key_unavailable",
		           "device credentials cannot be stored: the master key is unavailable");
		json_object_put(o);
		return -1;
	}
	json_object_object_add(o, "username", json_object_new_string(user ? user : ""));
	json_object_object_add(o, "password", json_object_new_string(pass ? pass : ""));
	plain = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	n = strlen(plain);
	ct = xmalloc(n + SECRET_TAG_LEN);
	cred_aad(req->who.org_id, aad);
	if (secret_seal(k, aad, (const uint8_t *)plain, n, nonce, ct) == 0) {
		*nonce_hex = xmalloc(2 * SECRET_NONCE_LEN + 1);
		*ct_hex = xmalloc(2 * (n + SECRET_TAG_LEN) + 1);
		hex_encode(nonce, SECRET_NONCE_LEN, *nonce_hex);
		hex_encode(ct, n + SECRET_TAG_LEN, *ct_hex);
		snprintf(key_id, SECRET_KEY_ID_LEN + 1, "%s", k->id);
		rc = 0;
	} else {
		resp_error(req, 500, "internal", "the credentials could not be sealed");
	}
	explicit_bzero((char *)plain, n);
	explicit_bzero(ct, n + SECRET_TAG_LEN);
	free(ct);
	json_object_put(o);
	return rc;
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
	const struct secret_key *k;
	char ids[24], org[24], aad[64], why[256];
	const char *p[2] = { ids, org };
	uint8_t nonce[SECRET_NONCE_LEN], *ct = NULL, *plain = NULL;
	size_t n;
	PGresult *r;
	int rc = -1;

	*creds = NULL;
	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_unavailable_error(req);
		return -1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	n = strlen(PQgetvalue(r, 0, 1)) / 2;
	ct = xmalloc(n + 1);
	plain = xmalloc(n + 1);
	cred_aad(req->who.org_id, aad);
	if ((k = master_key(why, sizeof why)) == NULL || strcmp(k->id, PQgetvalue(r, 0, 2)) != 0 ||
	    hex_decode(PQgetvalue(r, 0, 0), SECRET_NONCE_LEN, nonce) < 0 ||
	    hex_decode(PQgetvalue(r, 0, 1), n, ct) < 0 ||
	    secret_open(k, aad, ct, n, nonce, plain) < 0) {
		resp_error(req, 503, "master_key_unavailable", "the stored credentials cannot be "
		           "opened with the current master key");
		goto out;
	}
	plain[n - SECRET_TAG_LEN] = '\0';
	*creds = json_tokener_parse((char *)plain);
	rc = 0;
out:
	explicit_bzero(plain, n + 1);
	free(plain);
	free(ct);
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
		resp_json(req, status, device_json(r, 0));
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
		json_object_array_add(list, device_json(r, j));
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
		"  screen_height, cred_nonce, cred_ciphertext, cred_key_id) "
		"VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), "
		"  coalesce($6::boolean, true), $7::integer, $8::integer, decode($9, 'hex'), "
		"  decode($10, 'hex'), $11) "
		"ON CONFLICT (org_id, name) DO NOTHING RETURNING id";
	json_object *b, *tags;
	char org[24], key_id[SECRET_KEY_ID_LEN + 1] = "", *nonce = NULL, *ct = NULL, id[24];
	const char *user, *pass, *p[11];
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
	if ((user != NULL || pass != NULL) &&
	    seal_credentials(req, user, pass, &nonce, &ct, key_id) < 0)
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
	p[8] = nonce;
	p[9] = ct;
	p[10] = nonce ? key_id : NULL;
	if ((r = db_query(sql, 11, p)) == NULL) {
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
	free(nonce);
	free(ct);
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
		"  cred_key_id = CASE WHEN $10::boolean THEN $13 ELSE cred_key_id END "
		"WHERE id = $1 AND org_id = $2";
	json_object *b, *tags, *old = NULL;
	char org[24], id[24], key_id[SECRET_KEY_ID_LEN + 1] = "", *nonce = NULL, *ct = NULL;
	const char *user, *pass, *p[13];
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
		                     pass ? pass : member(old, "password"), &nonce, &ct, key_id) < 0)
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
	p[9] = nonce ? "true" : "false";
	p[10] = nonce;
	p[11] = ct;
	p[12] = nonce ? key_id : NULL;
	if ((r = db_query(sql, 13, p)) == NULL) {
		db_unavailable_error(req);
		goto out;
	}
	PQclear(r);
	reply_device(req, 200, id);
out:
	free(nonce);
	free(ct);
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
