/*
 * api_users.c - REST members of the caller's organisation and the
 * organisation itself: GET/POST /api/v1/users, PATCH/DELETE
 * /api/v1/users/{id}, GET /api/v1/org.
 *
 * A user is global (its username is unique across the gateway); what an
 * organisation manages is its membership: the role, and removing it (its
 * tokens in the organisation go with it, by the foreign key). The last
 * org_admin of an organisation can be neither demoted, disabled nor
 * removed: each such change holds the organisation's row locked while it
 * counts. A user who belongs to other organisations too cannot be disabled
 * from one of them. Creating organisations is left to the CLI
 * (kvmgate org create): no token speaks for more than one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

#define TIME_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

static const char *const roles[] = { "org_admin", "operator", "viewer", "auditor", NULL };

const struct field user_fields[] = {
	{ "username", FIELD_STRING, 1, 64, NULL, true,
	  "letters, digits, '.', '_', '-'; an existing user is added to the organisation" },
	{ "email", FIELD_STRING, 0, 254, NULL, false, "for a new user" },
	{ "role", FIELD_ENUM, 0, 0, roles, true, "the role in this organisation" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

const struct field user_patch_fields[] = {
	{ "role", FIELD_ENUM, 0, 0, roles, false, "the role in this organisation" },
	{ "disabled", FIELD_BOOL, 0, 0, NULL, false,
	  "true refuses every token of the user (only a user of this organisation alone)" },
	{ NULL, 0, 0, 0, NULL, false, NULL },
};

/* Columns every member query returns, in user_json()'s order. */
#define USER_COLUMNS \
	"u.id, u.username, u.email, m.role, u.disabled, " \
	"to_char(u.created_at AT TIME ZONE 'UTC', " TIME_FMT ")"

/* One member as responses show it. The caller owns it. */
static json_object *user_json(const PGresult *r, int row)
{
	json_object *u = json_object_new_object();

	json_object_object_add(u, "id", json_object_new_int64(atoll(PQgetvalue(r, row, 0))));
	json_object_object_add(u, "username", json_object_new_string(PQgetvalue(r, row, 1)));
	json_object_object_add(u, "email", PQgetisnull(r, row, 2) ? NULL
		: json_object_new_string(PQgetvalue(r, row, 2)));
	json_object_object_add(u, "role", json_object_new_string(PQgetvalue(r, row, 3)));
	json_object_object_add(u, "disabled", json_object_new_boolean(PQgetvalue(r, row, 4)[0] == 't'));
	json_object_object_add(u, "created_at", json_object_new_string(PQgetvalue(r, row, 5)));
	return u;
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

/* Whether s is a username the users table accepts. */
static bool username_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Answers with member {id} of the caller's organisation. */
static int reply_user(struct request *req, int status, const char *id)
{
	static const char sql[] =
		"SELECT " USER_COLUMNS " FROM memberships m JOIN users u ON u.id = m.user_id "
		"WHERE m.org_id = $1 AND m.user_id = $2";
	char org[24];
	const char *p[2] = { org, id };
	PGresult *r;

	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	if (PQntuples(r) == 1)
		resp_json(req, status, user_json(r, 0));
	else
		resp_error(req, 404, "not_found", "no such member");
	PQclear(r);
	return 0;
}

int h_users_list(struct request *req)
{
	static const char sql[] =
		"SELECT " USER_COLUMNS " FROM memberships m JOIN users u ON u.id = m.user_id "
		"WHERE m.org_id = $1 ORDER BY u.username";
	char org[24];
	const char *p[1] = { org };
	json_object *list, *o;
	PGresult *r;

	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 1, p)) == NULL) {
		db_unavailable_error(req);
		return 0;
	}
	list = json_object_new_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_object_array_add(list, user_json(r, i));
	PQclear(r);
	o = json_object_new_object();
	json_object_object_add(o, "users", list);
	resp_json(req, 200, o);
	return 0;
}

int h_user_create(struct request *req)
{
	/* The user row's snapshot does not see the row the first part inserts,
	 * so x holds exactly one id either way. */
	static const char sql[] =
		"WITH n AS (INSERT INTO users (username, email) VALUES ($2, $3) "
		"           ON CONFLICT (username) DO NOTHING RETURNING id), "
		"x AS (SELECT id FROM n UNION ALL SELECT id FROM users WHERE username = $2) "
		"INSERT INTO memberships (org_id, user_id, role) "
		"SELECT $1, id, $4::org_role FROM x LIMIT 1 "
		"ON CONFLICT DO NOTHING RETURNING user_id";
	json_object *b;
	char org[24], id[24];
	const char *p[4];
	PGresult *r;

	if (body_parse(req, user_fields, true, &b) < 0)
		return 0;
	if (!username_ok(member(b, "username"))) {
		resp_error(req, 400, "bad_request", "'username' must be 1 to 64 letters, digits, "
		           "'.', '_' or '-'");
		goto out;
	}
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	p[0] = org;
	p[1] = member(b, "username");
	p[2] = member(b, "email");
	p[3] = member(b, "role");
	if ((r = db_query(sql, 4, p)) == NULL) {
		db_unavailable_error(req);
		goto out;
	}
	if (PQntuples(r) == 0) {
		resp_error(req, 409, "conflict", "'%s' is a member already", p[1]);
		PQclear(r);
		goto out;
	}
	snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	reply_user(req, 201, id);
out:
	json_object_put(b);
	return 0;
}

/* The member a change is about, as the transaction sees it after the lock. */
struct member_state {
	bool found;
	bool admin;			/* an enabled org_admin */
	long long admins;		/* enabled org_admins of the organisation */
	bool elsewhere;			/* a member of other organisations too */
};

/*
 * Opens a transaction, locks the organisation's row and reads member
 * (user id text) into *st. Returns 0 inside the transaction, or -1 (no
 * transaction left open) after answering 503.
 */
static int lock_member(struct request *req, const char *org, const char *user,
                       struct member_state *st)
{
	static const char lock[] = "SELECT 1 FROM organisations WHERE id = $1 FOR UPDATE";
	static const char sql[] =
		"SELECT m.role = 'org_admin' AND NOT u.disabled, "
		"  (SELECT count(*) FROM memberships a JOIN users b ON b.id = a.user_id "
		"   WHERE a.org_id = $1 AND a.role = 'org_admin' AND NOT b.disabled), "
		"  EXISTS (SELECT 1 FROM memberships o WHERE o.user_id = $2 AND o.org_id <> $1) "
		"FROM memberships m JOIN users u ON u.id = m.user_id "
		"WHERE m.org_id = $1 AND m.user_id = $2";
	const char *p[2] = { org, user };
	PGresult *r;

	memset(st, 0, sizeof *st);
	if (db_exec("BEGIN") < 0)
		goto fail;
	if ((r = db_query(lock, 1, p)) == NULL)
		goto rollback;
	PQclear(r);
	if ((r = db_query(sql, 2, p)) == NULL)
		goto rollback;
	if (PQntuples(r) == 1) {
		st->found = true;
		st->admin = PQgetvalue(r, 0, 0)[0] == 't';
		st->admins = atoll(PQgetvalue(r, 0, 1));
		st->elsewhere = PQgetvalue(r, 0, 2)[0] == 't';
	}
	PQclear(r);
	return 0;
rollback:
	if (db_exec("ROLLBACK") < 0)
		log_warnx("request %s: rollback failed", req->request_id);
fail:
	db_unavailable_error(req);
	return -1;
}

/* Ends the transaction of lock_member(): commits when commit, else rolls back. 0 or -1. */
static int unlock(bool commit)
{
	if (commit)
		return db_exec("COMMIT");
	return db_exec("ROLLBACK");
}

/* The id of {id} as text into out, or -1 when it is not a positive number. */
static int path_id(const struct request *req, char out[24])
{
	const char *err;
	long long id;

	if (parse_ll(request_path_param(req, "id"), 1, (1LL << 62), &id, &err) < 0)
		return -1;
	snprintf(out, 24, "%lld", id);
	return 0;
}

int h_user_update(struct request *req)
{
	static const char set_role[] =
		"UPDATE memberships SET role = coalesce($3::org_role, role) "
		"WHERE org_id = $1 AND user_id = $2";
	static const char set_disabled[] =
		"UPDATE users SET disabled = coalesce($3::boolean, disabled) WHERE id = $2 "
		"  AND EXISTS (SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2)";
	json_object *b;
	char org[24], id[24];
	const char *p[3] = { org, id, NULL };
	const char *role, *disabled;
	struct member_state st;
	PGresult *r;

	if (body_parse(req, user_patch_fields, false, &b) < 0)
		return 0;
	if (path_id(req, id) < 0) {
		resp_error(req, 404, "not_found", "no member '%.100s' in this organisation",
		           request_path_param(req, "id"));
		goto out;
	}
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	role = member(b, "role");
	disabled = member(b, "disabled");
	if (lock_member(req, org, id, &st) < 0)
		goto out;
	if (!st.found) {
		resp_error(req, 404, "not_found", "no member '%s' in this organisation", id);
		goto done;
	}
	if (st.admin && st.admins <= 1 &&
	    ((role != NULL && strcmp(role, "org_admin") != 0) ||
	     (disabled != NULL && strcmp(disabled, "true") == 0))) {
		resp_error(req, 409, "last_admin", "this is the organisation's last org_admin: make "
		           "another member org_admin first");
		goto done;
	}
	if (disabled != NULL && st.elsewhere) {
		resp_error(req, 409, "conflict", "this user belongs to other organisations too; "
		           "remove the membership instead of disabling the user");
		goto done;
	}
	p[2] = role;
	if ((r = db_query(set_role, 3, p)) == NULL)
		goto db_fail;
	PQclear(r);
	p[2] = disabled;
	if ((r = db_query(set_disabled, 3, p)) == NULL)
		goto db_fail;
	PQclear(r);
	if (unlock(true) < 0) {
		db_unavailable_error(req);
		goto out;
	}
	/* A cached identity carries the role; a disabled user's tokens stop. */
	authcache_invalidate();
	reply_user(req, 200, id);
	goto out;
db_fail:
	db_unavailable_error(req);
done:
	if (unlock(false) < 0)
		log_warnx("request %s: rollback failed", req->request_id);
out:
	json_object_put(b);
	return 0;
}

int h_user_delete(struct request *req)
{
	static const char sql[] = "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2";
	char org[24], id[24];
	const char *p[2] = { org, id };
	struct member_state st;
	PGresult *r;

	if (path_id(req, id) < 0) {
		resp_error(req, 404, "not_found", "no member '%.100s' in this organisation",
		           request_path_param(req, "id"));
		return 0;
	}
	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if (lock_member(req, org, id, &st) < 0)
		return 0;
	if (!st.found)
		resp_error(req, 404, "not_found", "no member '%s' in this organisation", id);
	else if (st.admin && st.admins <= 1)
		resp_error(req, 409, "last_admin", "this is the organisation's last org_admin: make "
		           "another member org_admin first");
	else if ((r = db_query(sql, 2, p)) == NULL)
		db_unavailable_error(req);
	else {
		PQclear(r);
		if (unlock(true) < 0) {
			db_unavailable_error(req);
			return 0;
		}
		/* Its tokens in this organisation went with the membership. */
		authcache_invalidate();
		resp_body(req, 204, NULL, NULL, 0);
		return 0;
	}
	if (unlock(false) < 0)
		log_warnx("request %s: rollback failed", req->request_id);
	return 0;
}

int h_org_get(struct request *req)
{
	static const char sql[] =
		"SELECT o.id, o.name, to_char(o.created_at AT TIME ZONE 'UTC', " TIME_FMT "), "
		"  (SELECT count(*) FROM memberships WHERE org_id = o.id), "
		"  (SELECT count(*) FROM devices WHERE org_id = o.id) "
		"FROM organisations o WHERE o.id = $1";
	char org[24];
	const char *p[1] = { org };
	json_object *o;
	PGresult *r;

	snprintf(org, sizeof org, "%lld", req->who.org_id);
	if ((r = db_query(sql, 1, p)) == NULL || PQntuples(r) != 1) {
		PQclear(r);
		db_unavailable_error(req);
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(atoll(PQgetvalue(r, 0, 0))));
	json_object_object_add(o, "name", json_object_new_string(PQgetvalue(r, 0, 1)));
	json_object_object_add(o, "created_at", json_object_new_string(PQgetvalue(r, 0, 2)));
	json_object_object_add(o, "members", json_object_new_int64(atoll(PQgetvalue(r, 0, 3))));
	json_object_object_add(o, "devices", json_object_new_int64(atoll(PQgetvalue(r, 0, 4))));
	PQclear(r);
	resp_json(req, 200, o);
	return 0;
}
