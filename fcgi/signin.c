/*
 * signin.c - POST /api/v1/session: a person signs in to the dashboard with
 * a username and password (kvmgate user passwd sets it) and gets a session
 * cookie (websession.c).
 *
 * Nothing in the answer tells an unknown user from a wrong password, a user
 * without a password or a disabled one: the same 401 and message, after
 * the same scrypt work (a dummy run when there is no hash to check).
 *
 * Throttling: each refusal is a row of signin_failures; once a username, or
 * a source address, has KVMGATE_SIGNIN_MAX_FAILURES of them within
 * KVMGATE_SIGNIN_WINDOW_S, every sign-in for it is answered 429 with
 * Retry-After (the right password included) until the oldest leaves the
 * window. A refusal by throttling is not itself counted, so waiting always
 * helps. A success clears the username's count.
 *
 * Audit: each attempt by an existing user is an event "auth.login" (actor
 * the user, client dashboard, outcome ok or denied with the reason, never
 * the password) in the chosen organisation, or, when none was chosen or the
 * user is not a member of it, in each organisation the user belongs to. An
 * attempt for a username that does not exist belongs to no organisation:
 * it is logged (warn, with the address) and throttled, but is in no
 * organisation's chain, which would otherwise fill with strangers' guesses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"
#include "passwd.h"

#define ACTION "auth.login"
#define MEMBERSHIPS_MAX 32
#define WRONG "the username or password is wrong"

const struct field signin_fields[] = {
	{ "username", FIELD_STRING, 1, 64, NULL, true, "the user's name" },
	{ "password", FIELD_STRING, 1, PASSWD_MAX, NULL, true,
	  "the user's dashboard password (set with kvmgate user passwd)" },
	{ "org", FIELD_STRING, 1, 100, NULL, false,
	  "the organisation to work in; needed when the user is a member of several" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

/* A user as sign-in sees it. */
struct signer {
	long long id;			/* 0: no such user */
	char *hash;			/* owned; NULL: no password set */
	bool disabled;
	int n;
	struct { long long org_id; char org[101]; char role[16]; } m[MEMBERSHIPS_MAX];
};

/* Reads username's row and memberships into s. Returns 0, or -1 (database). */
static int signer_load(const char *username, struct signer *s)
{
	static const char sql[] =
		"SELECT u.id, u.password_hash, u.disabled, m.org_id, o.name, m.role::text "
		"FROM users u LEFT JOIN memberships m ON m.user_id = u.id "
		"LEFT JOIN organisations o ON o.id = m.org_id "
		"WHERE u.username = $1 ORDER BY o.name LIMIT " STR(MEMBERSHIPS_MAX);
	const char *p[1] = { username };
	PGresult *r;

	memset(s, 0, sizeof *s);
	if ((r = db_query(sql, 1, p)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		if (i == 0) {
			s->id = atoll(PQgetvalue(r, 0, 0));
			s->hash = PQgetisnull(r, 0, 1) ? NULL : xstrdup(PQgetvalue(r, 0, 1));
			s->disabled = PQgetvalue(r, 0, 2)[0] == 't';
		}
		if (PQgetisnull(r, i, 3))
			continue;
		s->m[s->n].org_id = atoll(PQgetvalue(r, i, 3));
		snprintf(s->m[s->n].org, sizeof s->m[s->n].org, "%s", PQgetvalue(r, i, 4));
		snprintf(s->m[s->n].role, sizeof s->m[s->n].role, "%s", PQgetvalue(r, i, 5));
		s->n++;
	}
	PQclear(r);
	return 0;
}

/*
 * Seconds until username and ip may try again, 0 when they may now, -1 on
 * a database error.
 */
static long long throttled(const char *username, const char *ip)
{
	/* The max-th most recent failure of each: when it leaves the window,
	 * fewer than max remain. */
	static const char sql[] =
		"SELECT greatest(0, "
		" (SELECT ceil(extract(epoch FROM f.at + $3::bigint * interval '1 second' - now()))"
		"  FROM signin_failures f WHERE f.username = $1"
		"  AND f.at > now() - $3::bigint * interval '1 second'"
		"  ORDER BY f.at DESC OFFSET $4::bigint - 1 LIMIT 1),"
		" (SELECT ceil(extract(epoch FROM f.at + $3::bigint * interval '1 second' - now()))"
		"  FROM signin_failures f WHERE f.source_ip = $2"
		"  AND f.at > now() - $3::bigint * interval '1 second'"
		"  ORDER BY f.at DESC OFFSET $4::bigint - 1 LIMIT 1))::bigint";
	char window[24], max[24];
	const char *p[4] = { username, ip, window, max };
	PGresult *r;
	long long s;

	snprintf(window, sizeof window, "%lld", conf_int(CONF_SIGNIN_WINDOW_S));
	snprintf(max, sizeof max, "%lld", conf_int(CONF_SIGNIN_MAX_FAILURES));
	if ((r = db_query(sql, 4, p)) == NULL)
		return -1;
	s = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return s > 0 ? s : 0;
}

/* Counts a refusal of username from ip (and forgets those older than a day). */
static void failure_record(const char *username, const char *ip)
{
	static const char sql[] =
		"WITH old AS (DELETE FROM signin_failures WHERE at < now() - interval '1 day') "
		"INSERT INTO signin_failures (username, source_ip) VALUES ($1, $2)";
	const char *p[2] = { username, ip };
	PGresult *r = db_query(sql, 2, p);

	PQclear(r);
}

static void failures_clear(const char *username)
{
	static const char sql[] = "DELETE FROM signin_failures WHERE username = $1";
	const char *p[1] = { username };
	PGresult *r = db_query(sql, 1, p);

	PQclear(r);
}

/*
 * Writes the event of this attempt in organisation i of s (its role, user
 * and the session once there is one, from req->who). Returns 0 or -1.
 */
static int record(struct request *req, const struct signer *s, int i, const char *username,
                  const char *org, enum audit_outcome outcome, const char *reason)
{
	json_object *args = json_object_new_object();
	struct audited au;

	json_object_object_add(args, "username", json_object_new_string(username));
	if (org != NULL)
		json_object_object_add(args, "org", json_object_new_string(org));
	req->who.org_id = s->m[i].org_id;
	req->who.user_id = s->id;
	snprintf(req->who.user, sizeof req->who.user, "%s", username);
	audited_begin(&au, req, NULL, ACTION, args);
	au.ev.actor = AUDIT_ACTOR_USER;
	au.ev.client = AUDIT_CLIENT_DASHBOARD;
	au.ev.token_id = 0;
	au.ev.token = NULL;
	return audited_end(&au, outcome, reason);
}

/* A refusal in every organisation of s that org names, or all of them. */
static void record_denied(struct request *req, const struct signer *s, const char *username,
                          const char *org, const char *reason)
{
	bool named = false;

	for (int i = 0; org != NULL && i < s->n; i++)
		named |= strcmp(s->m[i].org, org) == 0;
	for (int i = 0; i < s->n; i++)
		if ((!named || strcmp(s->m[i].org, org) == 0) &&
		    record(req, s, i, username, org, AUDIT_DENIED, reason) < 0)
			log_warnx("a refused sign-in of %s is not in the audit log of '%s'",
			          username, s->m[i].org);
}

/* The membership org names (or the only one), or -1 after answering. */
static int choose_org(struct request *req, const struct signer *s, const char *username,
                      const char *org)
{
	struct buf names = BUF_INIT;

	for (int i = 0; i < s->n; i++) {
		if (org != NULL ? strcmp(s->m[i].org, org) == 0 : s->n == 1)
			return i;
		buf_printf(&names, "%s'%s'", names.len ? ", " : "", s->m[i].org);
	}
	if (s->n == 0) {
		log_warnx("sign-in of %s refused: a member of no organisation", username);
		resp_error(req, 403, "forbidden", "%s is not a member of any organisation", username);
	} else if (org != NULL) {
		record_denied(req, s, username, org, "not a member of the organisation named");
		resp_error(req, 403, "forbidden", "%s is not a member of organisation '%.100s'; "
		           "member of: %s", username, org, names.data);
	} else {
		resp_error(req, 400, "org_required", "%s is a member of several organisations; "
		           "say which in \"org\": %s", username, names.data);
	}
	buf_free(&names);
	return -1;
}

int h_session_create(struct request *req)
{
	const char *ct = request_header(req, "CONTENT_TYPE");
	const char *ip = req->remote_addr, *username, *password, *org = NULL;
	const char *reason = NULL;
	json_object *body, *v;
	struct signer s;
	long long wait;
	char expires[40], retry[24];
	int i, ok = 0;

	/* A form on another site cannot send JSON without asking first (CORS). */
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
		resp_error(req, 415, "unsupported_media_type",
		           "sign in with a JSON body (Content-Type: application/json)");
		return 0;
	}
	if (body_parse(req, signin_fields, true, &body) < 0)
		return 0;
	username = json_object_get_string(json_object_object_get(body, "username"));
	password = json_object_get_string(json_object_object_get(body, "password"));
	if (json_object_object_get_ex(body, "org", &v))
		org = json_object_get_string(v);
	memset(&s, 0, sizeof s);
	if ((wait = throttled(username, ip)) < 0 || signer_load(username, &s) < 0) {
		resp_error(req, 503, "database_unavailable",
		           "the database is unavailable; try again shortly");
		goto done;
	}
	if (wait > 0) {
		record_denied(req, &s, username, org, "too many failed sign-ins: throttled");
		log_fields(LOG_LVL_WARN, "sign-in throttled", "username", username, "ip", ip, NULL);
		snprintf(retry, sizeof retry, "%lld", wait);
		resp_header(req, "Retry-After", retry);
		resp_error(req, 429, "too_many_attempts", "too many failed sign-ins for this "
		           "username or from this address; try again in %lld seconds", wait);
		goto done;
	}
	if (s.id == 0 || s.hash == NULL) {
		passwd_dummy(password, strlen(password));
		reason = s.id == 0 ? "unknown user" : "no password set";
	} else if ((ok = passwd_verify(password, strlen(password), s.hash)) != 1) {
		if (ok < 0)
			log_errx("the stored password hash of %s is malformed", username);
		reason = "wrong password";
		ok = 0;
	} else if (s.disabled) {
		reason = "user disabled";
		ok = 0;
	}
	if (!ok) {
		failure_record(username, ip);
		record_denied(req, &s, username, org, reason);
		log_fields(LOG_LVL_WARN, "sign-in refused", "username", username, "ip", ip,
		           "reason", reason, NULL);
		resp_error(req, 401, "invalid_credentials", WRONG);
		goto done;
	}
	if ((i = choose_org(req, &s, username, org)) < 0)
		goto done;
	failures_clear(username);
	memset(&req->who, 0, sizeof req->who);
	req->who.org_id = s.m[i].org_id;
	req->who.user_id = s.id;
	snprintf(req->who.org, sizeof req->who.org, "%s", s.m[i].org);
	snprintf(req->who.user, sizeof req->who.user, "%s", username);
	snprintf(req->who.role, sizeof req->who.role, "%s", s.m[i].role);
	snprintf(req->who.name, sizeof req->who.name, "dashboard");
	req->who.scope_read = req->who.scope_write = true;
	if (websession_create(req, expires) < 0) {
		resp_error(req, 503, "database_unavailable",
		           "the database is unavailable; try again shortly");
		goto done;
	}
	if (record(req, &s, i, username, org, AUDIT_OK, NULL) < 0) {
		websession_end(req->who.session_id);
		resp_discard(req);
		resp_error(req, 503, "audit_unavailable", "%s", AUDIT_NOT_DONE);
		goto done;
	}
	log_fields(LOG_LVL_INFO, "signed in", "username", username, "org", s.m[i].org, "ip", ip,
	           NULL);
	resp_header(req, "Cache-Control", "no-store");
	resp_json(req, 200, websession_json(req, expires));
done:
	free(s.hash);
	json_object_put(body);
	return 0;
}
