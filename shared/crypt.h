/*
 * crypt.h - API tokens: generation and hashing.
 *
 * A token is "kvmg_" followed by 43 base64url characters (32 random bytes).
 * Only its SHA-256 is stored; a token has enough entropy that a slow hash
 * would add nothing, and lookups by hash stay one index probe.
 */
#ifndef KVMGATE_CRYPT_H
#define KVMGATE_CRYPT_H

#include "util.h"

#define TOKEN_PREFIX "kvmg_"
#define TOKEN_LEN (5 + 43)
#define TOKEN_HASH_LEN 32
/* Characters of a token kept in clear to recognise it in lists. */
#define TOKEN_SHOWN_LEN 12

/* Makes a new token into out (TOKEN_LEN + 1 bytes) and its hash. */
void token_generate(char out[TOKEN_LEN + 1], uint8_t hash[TOKEN_HASH_LEN]);

/*
 * Hashes a presented token. Returns 0, or -1 when it is not shaped like a
 * token (wrong prefix, length or alphabet), so garbage never reaches SQL.
 */
int token_hash(const char *token, uint8_t hash[TOKEN_HASH_LEN]) MUSTCHECK;

#endif
