/*
 * api_tokens.c - REST API tokens of the caller's organisation:
 * GET/POST /api/v1/tokens, GET/DELETE /api/v1/tokens/{id}.
 *
 * A token is shown in clear once, in the answer that creates it; lists show
 * its leading characters (prefix) and never its hash. A token creates only
 * tokens with equal or fewer rights than its own: scopes within its scopes,
 * its device tag when it has one, an expiry no later than its own. Everyone
 * manages their own tokens (tokens.read_own, tokens.manage_own); with
 * tokens.manage_all an org_admin sees, creates and revokes every member's.
 * Another organisation's token is not found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

#define NAME_MAX_CHARS 100
#define TAG_MAX_CHARS 64
#define DAYS_MAX 3650
#define TIME_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

const struct field token_fields[] = {
	{ "name", FIELD_STRING, 1, NAME_MAX_CHARS, NULL, true, "to recognise the token by" },
	{ "scopes", FIELD_TAGS, 1, 2, NULL, true, "\"read\", \"write\": within the caller token's" },
	{ "device_tag", FIELD_STRING, 1, TAG_MAX_CHARS, NULL, false,
	  "reach only devices with this tag (required, and the same, when the caller token has one)" },
	{ "expires_at", FIELD_STRING, 1, 40, NULL, false,
	  "RFC 3339 time; no later than the caller token's expiry" },
	{ "expires_in_days", FIELD_INT, 1, DAYS_MAX, NULL, false, "instead of expires_at" },
	{ "user", FIELD_STRING, 1, 64, NULL, false,
	  "username of the member it is for (another member: tokens.manage_all)" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

/* Columns every token query returns, in token_json()'s order; never the hash. */
#define TOKEN_COLUMNS \
	"t.id, t.name, t.shown, array_to_json(t.scopes)::text, t.device_tag, " \
	"to_char(t.expires_at AT TIME ZONE 'UTC', " TIME_FMT "), " \
	"to_char(t.created_at AT TIME ZONE 'UTC', " TIME_FMT "), " \
	"to_char(t.last_used_at AT TIME ZONE 'UTC', " TIME_FMT "), " \
	"to_char(t.revoked_at AT TIME ZONE 'UTC', " TIME_FMT "), u.username, t.user_id"

#define TOKEN_FROM "FROM api_tokens t JOIN users u ON u.id = t.user_id "

/* A nullable text column as JSON: NULL or a string. */
static json_object *text_or_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : json_object_new_string(PQgetvalue(r, row, col));
}

/* One token as responses show it. The caller owns it. */
static json_object *token_json(const PGresult *r, int row)
{
	json_object *t = json_object_new_object();
	json_object *scopes = json_tokener_parse(PQgetvalue(r, row, 3));

	if (!json_object_is_type(scopes, json_type_array)) {
		json_object_put(scopes);
		scopes = json_object_new_array();
	}
	json_object_object_add(t, "id", json_object_new_int64(atoll(PQgetvalue(r, row, 0))));
	json_object_object_add(t, "name", json_object_new_string(PQgetvalue(r, row, 1)));
	json_object_object_add(t, "prefix", json_object_new_string(PQgetvalue(r, row, 2)));
	json_object_object_add(t, "scopes", scopes);
	json_object_object_add(t, "device_tag", text_or_null(r, row, 4));
	json_object_object_add(t, "expires_at", text_or_null(r, row, 5));
	json_object_object_add(t, "created_at", text_or_null(r, row, 6));
	json_object_object_add(t, "last_used_at", text_or_null(r, row, 7));
	json_object_object_add(t, "revoked_at", text_or_null(r, row, 8));
	json_object_object_add(t, "user", json_object_new_string(PQgetvalue(r, row, 9)));
	return t;
}

static void db_unavailable_error(struct request *req)
{
	resp_error(req, 503, "database_unavailable", "the database is unavailable; try again");
}

/* A member of o as a string, or NULL. */
static const char *member(json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) && v != NULL ? json_object_get_string(v) : NULL;
}

/*
 * Whether s is an RFC 3339 date-time with a zone that names a real moment
 * ("2026-02-31T00:00:00Z" does not).
 */
static bool time_ok(const char *s)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm = { 0 }, back;
	int y, mo, d, h, mi, sec, n = 0;
	time_t t;

	/* The form first: sscanf alone would take blanks and signs for digits. */
	for (int i = 0; i < 19; i++) {
		bool good = form[i] == 'd' ? s[i] >= '0' && s[i] <= '9'
			: form[i] == 'T' ? s[i] == 'T' || s[i] == 't' : s[i] == form[i];
		if (!good)
			return false;
	}
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return false;
	s += n;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	/* PostgreSQL takes offsets up to 15:59, and no year before 1 AD. */
	if (!((*s == 'Z' || *s == 'z') && s[1] == '\0') &&
	    !((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':' &&
	      strspn(s + 1, "0123456789") == 2 && strspn(s + 4, "0123456789") == 2 &&
	      atoi(s + 1) <= 15 && atoi(s + 4) <= 59))
		return false;
	if (y < 1970)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	return gmtime_r(&t, &back) != NULL && back.tm_year == y - 1900 && back.tm_mon == mo - 1 &&
	       back.tm_mday == d && back.tm_hour == h && back.tm_min == mi && back.tm_sec == sec;
}

/* The id of {id}, or 0 when it is not a positive decimal number. */
static long long path_id(const struct request *req)
{
	const char *err;
	long long id;

	return parse_ll(request_path_param(req, "id"), 1, (1LL << 62), &id, &err) < 0 ? 0 : id;
}

/* Whether who may act on every member's tokens, not only its own. */
static bool manages_all(const struct token_identity *who)
{
	return authz_allowed(who, AUTHZ_TOKENS_MANAGE_ALL);
}

/*
 * Reads token {id} of the caller's organisation into *r (row 0; the
 * caller clears it). Another member's token needs tokens.manage_all.
 * Returns 0, or -1 after answering 404, 403 or 503.
 */
static int find_token(struct request *req, PGresult **r)
{
	static const char sql[] =
		"SELECT " TOKEN_COLUMNS " " TOKEN_FROM "WHERE t.id = $1 AND t.org_id = $2";
	long long id = path_id(req);
	char ids[24], org[24], why[320];
	const char *p[2] = { ids, org };

	*r = NULL;
	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if (id == 0 || (*r = db_query(sql, 2, p)) == NULL || PQntuples(*r) != 1) {
		if (id != 0 && *r == NULL)
			db_unavailable_error(req);
		else
			resp_error(req, 404, "not_found", "no token '%.100s' in this organisation",
			           request_path_param(req, "id"));
		PQclear(*r);
		*r = NULL;
		return -1;
	}
	if (atoll(PQgetvalue(*r, 0, 10)) != req->who.user_id &&
	    authz_check(&req->who, AUTHZ_TOKENS_MANAGE_ALL, NULL, why, sizeof why) < 0) {
		resp_error(req, 403, "forbidden", "%s (token %lld is another member's)", why, id);
		PQclear(*r);
		*r = NULL;
		return -1;
	}
	return 0;
}

int h_tokens_list(struct request *req)
{
	static const char sql[] =
		"SELECT " TOKEN_COLUMNS " " TOKEN_FROM "WHERE t.org_id = $1 "
		"  AND ($2::bigint IS NULL OR t.user_id = $2) "
		"  AND ($3::text IS NULL OR u.username = $3) "
		"ORDER BY t.id";
	const char *user = request_param(req, "user");
	char org[24], self[24], why[320];
	const char *p[3] = { org, self, user };
	json_object *list, *o;
	PGresult *r;

	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(self, sizeof self, "%lld", req->who.user_id);
	if (manages_all(&req->who)) {
		p[1] = NULL;
	} else if (user != NULL && strcmp(user, req->who.user) != 0) {
		if (authz_check(&req->who, AUTHZ_TOKENS_MANAGE_ALL, NULL, why, sizeof why) < 0)
			resp_error(req, 403, "forbidden", "%s (another member's tokens)", why);
		return 0;
	}
	if ((r = db_query(sql, 3, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_object_array_add(list, token_json(r, i));
	PQclear(r);
	o = json_object_new_object();
	json_object_object_add(o, "tokens", list);
	resp_json(req, 200, o);
	return 0;
}

int h_token_get(struct request *req)
{
	PGresult *r;

	if (find_token(req, &r) < 0)
		return 0;
	resp_json(req, 200, token_json(r, 0));
	PQclear(r);
	return 0;
}

int h_token_delete(struct request *req)
{
	long long id = path_id(req);
	PGresult *r;

	if (find_token(req, &r) < 0)
		return 0;
	PQclear(r);
	if (token_revoke(req->who.org_id, 0, id) < 0) {
		db_unavailable_error(req);
		return 0;
	}
	/* Every worker forgets the token before its next request. */
	authcache_invalidate();
	log_info("request %s: token %lld revoked by %s", req->request_id, id, req->who.user);
	resp_body(req, 204, NULL, NULL, 0);
	return 0;
}

/*
 * Checks the scopes array of a new token against the caller token's and
 * writes it as a PostgreSQL array into out. Returns 0, or -1 after
 * answering 400 or 403.
 */
static int check_scopes(struct request *req, json_object *scopes, char out[16])
{
	bool want_read = false, want_write = false;

	for (size_t i = 0; i < json_object_array_length(scopes); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(scopes, i));
		bool *want = strcmp(s, "read") == 0 ? &want_read
			: strcmp(s, "write") == 0 ? &want_write : NULL;
		if (want == NULL || *want) {
			resp_error(req, 400, "bad_request", "'scopes' must hold \"read\" and/or "
			           "\"write\", each at most once");
			return -1;
		}
		*want = true;
	}
	if (!want_read && !want_write) {
		resp_error(req, 400, "bad_request", "'scopes' must hold \"read\" and/or \"write\"");
		return -1;
	}
	if ((want_read && !req->who.scope_read) || (want_write && !req->who.scope_write)) {
		resp_error(req, 403, "forbidden", "a token creates only tokens with equal or fewer "
		           "rights: this token's scopes are%s%s, and '%s' is not among them",
		           req->who.scope_read ? " read" : "", req->who.scope_write ? " write" : "",
		           want_write && !req->who.scope_write ? "write" : "read");
		return -1;
	}
	snprintf(out, 16, "{%s%s%s}", want_read ? "read" : "", want_read && want_write ? "," : "",
	         want_write ? "write" : "");
	return 0;
}

/*
 * Settles the new token's expiry from expires_at or expires_in_days into
 * out (RFC 3339 UTC; "" when it never expires): in the future, and no
 * later than the caller token's. Returns 0, or -1 after answering.
 */
static int check_expiry(struct request *req, json_object *b, char out[40])
{
	static const char sql[] =
		"SELECT to_char(e AT TIME ZONE 'UTC', " TIME_FMT "), e > now(), "
		"  $3::timestamptz IS NULL OR e <= $3::timestamptz "
		"FROM (SELECT CASE WHEN $1::text IS NOT NULL THEN $1::timestamptz "
		"             ELSE now() + $2::integer * interval '1 day' END) AS x(e)";
	const char *at = member(b, "expires_at"), *days = member(b, "expires_in_days");
	const char *p[3] = { at, days, req->who.expires_at[0] ? req->who.expires_at : NULL };
	PGresult *r;
	int rc = -1;

	out[0] = '\0';
	if (at != NULL && days != NULL) {
		resp_error(req, 400, "bad_request", "give 'expires_at' or 'expires_in_days', not both");
		return -1;
	}
	if (at != NULL && !time_ok(at)) {
		resp_error(req, 400, "bad_request", "'expires_at' must be an RFC 3339 time with a "
		           "zone, such as 2030-01-31T12:00:00Z");
		return -1;
	}
	if (at == NULL && days == NULL) {
		if (req->who.expires_at[0] == '\0')
			return 0;
		resp_error(req, 403, "forbidden", "a token creates only tokens with equal or fewer "
		           "rights: this token expires at %s; give 'expires_at' or 'expires_in_days' "
		           "no later than that", req->who.expires_at);
		return -1;
	}
	if ((r = db_query(sql, 3, p)) == NULL) {
		db_unavailable_error(req);
		return -1;
	}
	if (PQgetvalue(r, 0, 1)[0] != 't')
		resp_error(req, 400, "bad_request", "the expiry must be in the future");
	else if (PQgetvalue(r, 0, 2)[0] != 't')
		resp_error(req, 403, "forbidden", "a token creates only tokens with equal or fewer "
		           "rights: the expiry must be no later than this token's, %s",
		           req->who.expires_at);
	else {
		snprintf(out, 40, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/*
 * The member a new token is for: the caller, or with tokens.manage_all the
 * member called user. Returns the user id, or 0 after answering.
 */
static long long token_owner(struct request *req, const char *user)
{
	static const char sql[] =
		"SELECT u.id FROM users u JOIN memberships m ON m.user_id = u.id "
		"WHERE m.org_id = $1 AND u.username = $2";
	char org[24], why[320];
	const char *p[2] = { org, user };
	long long id = 0;
	PGresult *r;

	if (user == NULL || strcmp(user, req->who.user) == 0)
		return req->who.user_id;
	if (authz_check(&req->who, AUTHZ_TOKENS_MANAGE_ALL, NULL, why, sizeof why) < 0) {
		resp_error(req, 403, "forbidden", "%s (a token for another member)", why);
		return 0;
	}
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	if (PQntuples(r) == 1)
		id = atoll(PQgetvalue(r, 0, 0));
	else
		resp_error(req, 400, "bad_request", "'user': no member '%.64s' in this organisation",
		           user);
	PQclear(r);
	return id;
}

int h_token_create(struct request *req)
{
	static const char sql[] =
		"SELECT " TOKEN_COLUMNS " " TOKEN_FROM "WHERE t.id = $1";
	json_object *b, *scopes, *o;
	const char *tag;
	char scope_text[16], expiry[40], clear[TOKEN_LEN + 1], ids[24];
	const char *p[1] = { ids };
	struct token_spec spec;
	long long id;
	PGresult *r;

	if (body_parse(req, token_fields, true, &b) < 0)
		return 0;
	json_object_object_get_ex(b, "scopes", &scopes);
	if (check_scopes(req, scopes, scope_text) < 0)
		goto out;
	tag = member(b, "device_tag");
	if (req->who.device_tag[0] && (tag == NULL || strcmp(tag, req->who.device_tag) != 0)) {
		resp_error(req, 403, "forbidden", "a token creates only tokens with equal or fewer "
		           "rights: this token reaches only devices tagged '%s'; give the same "
		           "'device_tag'", req->who.device_tag);
		goto out;
	}
	if (check_expiry(req, b, expiry) < 0)
		goto out;
	memset(&spec, 0, sizeof spec);
	if ((spec.user_id = token_owner(req, member(b, "user"))) == 0)
		goto out;
	spec.org_id = req->who.org_id;
	spec.name = member(b, "name");
	spec.scopes = scope_text;
	spec.device_tag = tag;
	spec.expires_at = expiry[0] ? expiry : NULL;
	if (token_insert(&spec, clear, &id) < 0) {
		db_unavailable_error(req);
		goto out;
	}
	snprintf(ids, sizeof ids, "%lld", id);
	if ((r = db_query(sql, 1, p)) == NULL || PQntuples(r) != 1) {
		PQclear(r);
		explicit_bzero(clear, sizeof clear);
		db_unavailable_error(req);
		goto out;
	}
	o = token_json(r, 0);
	PQclear(r);
	/* The only time the clear token leaves the server. */
	json_object_object_add(o, "token", json_object_new_string(clear));
	explicit_bzero(clear, sizeof clear);
	resp_json(req, 201, o);
out:
	json_object_put(b);
	return 0;
}
