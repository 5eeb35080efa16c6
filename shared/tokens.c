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
	static const char sql[] =
		"INSERT INTO api_tokens (org_id, user_id, name, shown, hash, scopes) "
		"VALUES ($1, $2, $3, $4, $5, $6::text[])";
	uint8_t hash[TOKEN_HASH_LEN];
	char org[24], user[24], shown[TOKEN_SHOWN_LEN + 1];
	const char *params[6] = { org, user, name, shown, (const char *)hash, scopes };
	const int lengths[6] = { 0, 0, 0, 0, TOKEN_HASH_LEN, 0 };
	const int formats[6] = { 0, 0, 0, 0, 1, 0 };
	PGresult *r;

	token_generate(out, hash);
	snprintf(org, sizeof org, "%lld", org_id);
	snprintf(user, sizeof user, "%lld", user_id);
	snprintf(shown, sizeof shown, "%.*s", TOKEN_SHOWN_LEN, out);
	r = db_query_bin(sql, 6, params, lengths, formats);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}
