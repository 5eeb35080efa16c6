/*
 * tokens.c - token rows: insert on creation, one indexed probe on use.
 */
#include "tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

enum token_result token_lookup(const char *token, struct token_identity *out)
{
	static const char sql[] =
		"SELECT t.id, t.org_id, t.user_id, o.name, u.username, m.role, t.name, "
		"  'read' = ANY(t.scopes), 'write' = ANY(t.scopes), "
		"  t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds', "
		"  coalesce(t.device_tag, ''), "
		"  coalesce(to_char(t.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') "
		"FROM api_tokens t "
		"JOIN organisations o ON o.id = t.org_id "
		"JOIN users u ON u.id = t.user_id AND NOT u.disabled "
		"JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id "
		"WHERE t.hash = $1 AND t.revoked_at IS NULL "
		"  AND (t.expires_at IS NULL OR t.expires_at > now())";
	/* last_used_at is kept to the minute, so a busy token is not a write per
	 * call; of concurrent requests one writes it and the others skip the row
	 * rather than queue behind its commit. */
	static const char touch[] =
		"UPDATE api_tokens SET last_used_at = now() WHERE id = ("
		"  SELECT id FROM api_tokens WHERE id = $1"
		"  AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')"
		"  FOR UPDATE SKIP LOCKED)";
	uint8_t hash[TOKEN_HASH_LEN];
	const char *params[1] = { (const char *)hash };
	const int lengths[1] = { TOKEN_HASH_LEN };
	const int formats[1] = { 1 };
	PGresult *r;

	memset(out, 0, sizeof *out);
	if (token_hash(token, hash) < 0)
		return TOKEN_INVALID;
	r = db_query_bin(sql, 1, params, lengths, formats);
	if (r == NULL)
		return TOKEN_DB_ERROR;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return TOKEN_INVALID;
	}
	out->token_id = atoll(PQgetvalue(r, 0, 0));
	out->org_id = atoll(PQgetvalue(r, 0, 1));
	out->user_id = atoll(PQgetvalue(r, 0, 2));
	snprintf(out->org, sizeof out->org, "%s", PQgetvalue(r, 0, 3));
	snprintf(out->user, sizeof out->user, "%s", PQgetvalue(r, 0, 4));
	snprintf(out->role, sizeof out->role, "%s", PQgetvalue(r, 0, 5));
	snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, 0, 6));
	out->scope_read = PQgetvalue(r, 0, 7)[0] == 't';
	out->scope_write = PQgetvalue(r, 0, 8)[0] == 't';
	snprintf(out->device_tag, sizeof out->device_tag, "%s", PQgetvalue(r, 0, 10));
	snprintf(out->expires_at, sizeof out->expires_at, "%s", PQgetvalue(r, 0, 11));
	if (PQgetvalue(r, 0, 9)[0] == 't') {
		const char *id[1] = { PQgetvalue(r, 0, 0) };
		PGresult *u = db_query(touch, 1, id);
		PQclear(u);
	}
	PQclear(r);
	return TOKEN_OK;
}

int token_create(long long org_id, long long user_id, const char *name,
                 const char *scopes, char out[TOKEN_LEN + 1])
{
	struct token_spec s = { org_id, user_id, name, scopes, NULL, NULL };
	long long id;

	return token_insert(&s, out, &id);
}

int token_insert(const struct token_spec *s, char out[TOKEN_LEN + 1], long long *id)
{
	static const char sql[] =
		"INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes, device_tag, "
		"  expires_at) "
		"VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8::timestamptz) RETURNING id";
	uint8_t hash[TOKEN_HASH_LEN];
	char org[24], user[24], shown[TOKEN_SHOWN_LEN + 1];
	const char *params[8] = { org, user, s->name, shown, (const char *)hash, s->scopes,
	                          s->device_tag, s->expires_at };
	const int lengths[8] = { 0, 0, 0, 0, TOKEN_HASH_LEN, 0, 0, 0 };
	const int formats[8] = { 0, 0, 0, 0, 1, 0, 0, 0 };
	PGresult *r;

	token_generate(out, hash);
	snprintf(org, sizeof org, "%lld", s->org_id);
	snprintf(user, sizeof user, "%lld", s->user_id);
	snprintf(shown, sizeof shown, "%.*s", TOKEN_SHOWN_LEN, out);
	r = db_query_bin(sql, 8, params, lengths, formats);
	if (r == NULL) {
		explicit_bzero(out, TOKEN_LEN + 1);
		return -1;
	}
	*id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int token_revoke(long long org_id, long long user_id, long long id)
{
	static const char sql[] =
		"UPDATE api_tokens SET revoked_at = now() "
		"WHERE id = $1 AND org_id = $2 AND ($3::bigint = 0 OR user_id = $3) "
		"  AND revoked_at IS NULL RETURNING id";
	char ids[24], org[24], user[24];
	const char *p[3] = { ids, org, user };
	PGresult *r;
	int n;

	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(org, sizeof org, "%lld", org_id);
	snprintf(user, sizeof user, "%lld", user_id);
	if ((r = db_query(sql, 3, p)) == NULL)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	return n > 0;
}
