/*
 * tokens.h - API tokens in PostgreSQL: creation and lookup.
 */
#ifndef KVMGATE_TOKENS_H
#define KVMGATE_TOKENS_H

#include "crypt.h"

/* Who a valid token speaks for. Strings are copies owned by the struct. */
struct token_identity {
	long long token_id, org_id, user_id;
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

#endif
