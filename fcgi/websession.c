/*
 * websession.c - the dashboard's sessions: a cookie of 32 random bytes
 * (base64url) whose SHA-256 is a row of web_sessions (sql/008). A request
 * with the cookie gets the same struct token_identity a token would give,
 * with the member's current role in the session's organisation and both
 * scopes, so the one authorisation step (authz.c) and the audit events
 * (audited.c) treat it like any caller.
 *
 * Every cookie request is looked up in PostgreSQL (no worker cache): a
 * sign-out, a removed membership or a disabled user takes effect at once.
 * The session ends KVMGATE_WEB_SESSION_TTL_S after sign-in, or after
 * KVMGATE_WEB_SESSION_IDLE_S without a request.
 *
 * CSRF: the cookie is HttpOnly and SameSite=Strict, the Host and Origin
 * checks of origin.c apply, and a method that can change something must
 * carry X-CSRF-Token: SHA-256 of a fixed label and the cookie, in
 * base64url. A page learns it from the sign-in answer or GET
 * /api/v1/session; another site can learn neither the cookie nor it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "crypt.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"

#define COOKIE_BYTES 32
#define COOKIE_LEN 43			/* base64url of 32 bytes, unpadded */
#define CSRF_LABEL "kvmgate/csrf/v1:"

/* The CSRF token of the session whose cookie is cookie. */
static void csrf_of(const char *cookie, char out[48])
{
	uint8_t md[32];

	sha256_cat(CSRF_LABEL, strlen(CSRF_LABEL), cookie, COOKIE_LEN, md);
	base64url_encode(md, sizeof md, out);
}

/*
 * The value of the session cookie in req's Cookie header into out, when it
 * is there and shaped like one. Returns 1 when found and well-formed, 0
 * when absent, -1 when present but malformed.
 */
static int cookie_value(const struct request *req, char out[COOKIE_LEN + 1])
{
	const char *h = req->fcgx != NULL ? request_header(req, "HTTP_COOKIE") : NULL;
	const size_t nlen = strlen(WEB_COOKIE);

	while (h != NULL && *h != '\0') {
		size_t len;
		h += strspn(h, " \t;");
		len = strcspn(h, ";");
		if (len > nlen && strncmp(h, WEB_COOKIE "=", nlen + 1) == 0) {
			const char *v = h + nlen + 1;
			size_t vlen = len - nlen - 1;
			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen != COOKIE_LEN || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789-_") < COOKIE_LEN)
				return -1;
			memcpy(out, v, COOKIE_LEN);
			out[COOKIE_LEN] = '\0';
			return 1;
		}
		h += len;
	}
	return 0;
}

bool websession_presented(const struct request *req)
{
	char v[COOKIE_LEN + 1];

	return cookie_value(req, v) != 0;
}

/* Whether req came over TLS, as nginx tells (HTTPS=on, or the https scheme). */
static bool over_tls(const struct request *req)
{
	const char *https = request_header(req, "HTTPS");
	const char *scheme = request_header(req, "REQUEST_SCHEME");

	return (https != NULL && strcasecmp(https, "on") == 0) ||
	       (scheme != NULL && strcasecmp(scheme, "https") == 0);
}

/* Sets the cookie to value for max_age seconds (0: forget it). */
static void set_cookie(struct request *req, const char *value, long long max_age)
{
	char line[256];

	snprintf(line, sizeof line, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
	         WEB_COOKIE, value, max_age, over_tls(req) ? "; Secure" : "");
	resp_header(req, "Set-Cookie", line);
}

void websession_forget(struct request *req)
{
	set_cookie(req, "", 0);
}

/* Answers 401 for a cookie that opens no session, and makes the browser drop it. */
static void refused(struct request *req)
{
	websession_forget(req);
	resp_error(req, 401, "unauthorized",
	           "not signed in, or the session has ended (signed out, expired or idle too "
	           "long): sign in again");
}

int websession_authenticate(struct request *req)
{
	/* Looks the session up and marks it seen, in one statement. */
	static const char sql[] =
		"UPDATE web_sessions s SET last_seen_at = now() "
		"FROM organisations o, users u, memberships m "
		"WHERE s.hash = $1 AND s.expires_at > now() "
		"  AND s.last_seen_at > now() - $2::bigint * interval '1 second' "
		"  AND o.id = s.org_id AND u.id = s.user_id AND NOT u.disabled "
		"  AND m.org_id = s.org_id AND m.user_id = s.user_id "
		"RETURNING s.id, s.org_id, s.user_id, o.name, u.username, m.role::text";
	char cookie[COOKIE_LEN + 1], idle[24];
	uint8_t hash[32];
	const char *params[2] = { (const char *)hash, idle };
	const int lengths[2] = { sizeof hash, 0 };
	const int formats[2] = { 1, 0 };
	struct token_identity *who = &req->who;
	PGresult *r;

	if (origin_check(req) < 0)
		return -1;
	if (cookie_value(req, cookie) != 1) {
		refused(req);
		return -1;
	}
	sha256_cat(cookie, COOKIE_LEN, NULL, 0, hash);
	snprintf(idle, sizeof idle, "%lld", conf_int(CONF_WEB_SESSION_IDLE_S));
	if ((r = db_query_bin(sql, 2, params, lengths, formats)) == NULL) {
		resp_error(req, 503, "database_unavailable",
		           "the database is unavailable; try again shortly");
		return -1;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		refused(req);
		return -1;
	}
	memset(who, 0, sizeof *who);
	who->session_id = atoll(PQgetvalue(r, 0, 0));
	who->org_id = atoll(PQgetvalue(r, 0, 1));
	who->user_id = atoll(PQgetvalue(r, 0, 2));
	snprintf(who->org, sizeof who->org, "%s", PQgetvalue(r, 0, 3));
	snprintf(who->user, sizeof who->user, "%s", PQgetvalue(r, 0, 4));
	snprintf(who->role, sizeof who->role, "%s", PQgetvalue(r, 0, 5));
	snprintf(who->name, sizeof who->name, "dashboard");
	who->scope_read = who->scope_write = true;
	PQclear(r);
	csrf_of(cookie, req->csrf);
	explicit_bzero(cookie, sizeof cookie);
	return 0;
}

int websession_csrf_check(struct request *req)
{
	const char *h = request_header(req, "HTTP_X_CSRF_TOKEN");
	size_t want = strlen(req->csrf);

	if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
		return 0;
	if (h != NULL && want > 0 && strlen(h) == want && mem_equal_ct(h, req->csrf, want))
		return 0;
	resp_error(req, 403, "csrf", h == NULL || *h == '\0'
		? "this change needs the session's CSRF token in the " WEB_CSRF_HEADER " header "
		  "(from the sign-in answer or GET /api/v1/session); nothing was changed"
		: "the " WEB_CSRF_HEADER " header does not match this session's CSRF token; "
		  "nothing was changed");
	return -1;
}

int websession_create(struct request *req, char expires[40])
{
	static const char sql[] =
		"INSERT INTO web_sessions (hash, org_id, user_id, source_ip, user_agent, expires_at) "
		"VALUES ($1, $2, $3, $4, left($5, 200), now() + $6::bigint * interval '1 second') "
		"RETURNING id, "
		"  to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
	/* Sessions that can no longer be used go as new ones come. */
	static const char sweep[] =
		"DELETE FROM web_sessions WHERE expires_at < now() "
		"  OR last_seen_at < now() - $1::bigint * interval '1 second'";
	uint8_t raw[COOKIE_BYTES], hash[32];
	char cookie[COOKIE_LEN + 8], org[24], user[24], ttl[24], idle[24];
	const char *ua = request_header(req, "HTTP_USER_AGENT");
	const char *params[6] = { (const char *)hash, org, user,
	                          req->remote_addr[0] ? req->remote_addr : NULL, ua, ttl };
	const int lengths[6] = { sizeof hash, 0, 0, 0, 0, 0 };
	const int formats[6] = { 1, 0, 0, 0, 0, 0 };
	const char *sp[1] = { idle };
	PGresult *r;

	random_bytes(raw, sizeof raw);
	base64url_encode(raw, sizeof raw, cookie);
	explicit_bzero(raw, sizeof raw);
	sha256_cat(cookie, COOKIE_LEN, NULL, 0, hash);
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	snprintf(user, sizeof user, "%lld", req->who.user_id);
	snprintf(ttl, sizeof ttl, "%lld", conf_int(CONF_WEB_SESSION_TTL_S));
	snprintf(idle, sizeof idle, "%lld", conf_int(CONF_WEB_SESSION_IDLE_S));
	if ((r = db_query(sweep, 1, sp)) != NULL)
		PQclear(r);
	if ((r = db_query_bin(sql, 6, params, lengths, formats)) == NULL) {
		explicit_bzero(cookie, sizeof cookie);
		return -1;
	}
	req->who.session_id = atoll(PQgetvalue(r, 0, 0));
	snprintf(expires, 40, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	set_cookie(req, cookie, conf_int(CONF_WEB_SESSION_TTL_S));
	csrf_of(cookie, req->csrf);
	explicit_bzero(cookie, sizeof cookie);
	return 0;
}

json_object *websession_json(const struct request *req, const char *expires)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "user", json_object_new_string(req->who.user));
	json_object_object_add(o, "organisation", json_object_new_string(req->who.org));
	json_object_object_add(o, "role", json_object_new_string(req->who.role));
	json_object_object_add(o, "csrf_token", json_object_new_string(req->csrf));
	json_object_object_add(o, "expires_at", expires ? json_object_new_string(expires) : NULL);
	json_object_object_add(o, "idle_timeout_s",
	                       json_object_new_int64(conf_int(CONF_WEB_SESSION_IDLE_S)));
	return o;
}

int h_session_get(struct request *req)
{
	static const char sql[] =
		"SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
		"FROM web_sessions WHERE id = $1";
	char id[24];
	const char *p[1] = { id };
	PGresult *r;

	snprintf(id, sizeof id, "%lld", req->who.session_id);
	if ((r = db_query(sql, 1, p)) == NULL) {
		resp_error(req, 503, "database_unavailable",
		           "the database is unavailable; try again shortly");
		return 0;
	}
	resp_header(req, "Cache-Control", "no-store");
	resp_json(req, 200, websession_json(req, PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : NULL));
	PQclear(r);
	return 0;
}

/* Deletes session id. Returns 0 or -1 (database error). */
static int end_session(long long id)
{
	static const char sql[] = "DELETE FROM web_sessions WHERE id = $1";
	char ids[24];
	const char *p[1] = { ids };
	PGresult *r;

	snprintf(ids, sizeof ids, "%lld", id);
	if ((r = db_query(sql, 1, p)) == NULL)
		return -1;
	PQclear(r);
	return 0;
}

void websession_end(long long id)
{
	if (end_session(id) < 0)
		log_errx("session %lld could not be ended: %s", id, db_last_error());
}

int h_session_delete(struct request *req)
{
	if (end_session(req->who.session_id) < 0) {
		resp_error(req, 503, "database_unavailable",
		           "the database is unavailable; try again shortly");
		return 0;
	}
	log_info("request %s: %s signed out of the dashboard", req->request_id, req->who.user);
	websession_forget(req);
	resp_body(req, 204, NULL, NULL, 0);
	return 0;
}
