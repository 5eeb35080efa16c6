/*
 * tokens.h - API tokens in PostgreSQL: creation and lookup.
 */
#ifndef KVMGATE_TOKENS_H
#define KVMGATE_TOKENS_H

#include "crypt.h"

/*
 * Who a valid token speaks for. Strings are copies owned by the struct. A
 * dashboard sign-in (fcgi/websession.c) fills the same shape: session_id
 * set, token_id 0, name "dashboard", both scopes, no device tag or expiry.
 */
struct token_identity {
	long long token_id, org_id, user_id;
	long long session_id;		/* > 0: a dashboard session, not a token */
	char org[101];
	char user[65];
	char role[16];
	char name[101];
	char device_tag[65];		/* "" when the token reaches every device */
	char expires_at[40];		/* UTC, RFC 3339; "" when it never expires */
	bool scope_read, scope_write;
};

enum token_result { TOKEN_OK, TOKEN_INVALID, TOKEN_DB_ERROR };

/*
 * Resolves a presented token to its identity. TOKEN_INVALID covers every
 * reason a token is refused (malformed, unknown, revoked, expired, disabled
 * user) so a caller cannot tell them apart from the answer. Records the use.
 */
enum token_result token_lookup(const char *token, struct token_identity *out) MUSTCHECK;

/*
 * Creates a token for (org, user) with the given scopes ("{read,write}") and
 * writes the clear token, which is never stored, into out. Returns 0 or -1.
 * Runs inside the caller's transaction if one is open.
 */
int token_create(long long org_id, long long user_id, const char *name,
                 const char *scopes, char out[TOKEN_LEN + 1]) MUSTCHECK;

/* What a new token is: the caller's strings, borrowed. */
struct token_spec {
	long long org_id, user_id;
	const char *name;
	const char *scopes;		/* "{read}", "{read,write}" */
	const char *device_tag;		/* NULL: every device */
	const char *expires_at;		/* a time PostgreSQL reads; NULL: never */
};

/*
 * token_create() with a device tag and an expiry: writes the clear token
 * into out and the new row's id into *id. Returns 0 or -1 (database error).
 */
int token_insert(const struct token_spec *s, char out[TOKEN_LEN + 1], long long *id) MUSTCHECK;

/*
 * Revokes token id of organisation org_id, of user user_id unless that is
 * 0. Returns 1 when a live token was revoked, 0 when none matched, -1 on a
 * database error. A caller inside the gateway then calls authcache_invalidate().
 */
int token_revoke(long long org_id, long long user_id, long long id) MUSTCHECK;

#endif
