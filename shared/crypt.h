/*
 * crypt.h - API tokens: generation and hashing; secrets (device credentials)
 * sealed with AES-256-GCM under the master key.
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

/*
 * SHA-256 of a followed by b (b may be NULL when bn is 0) into out. The
 * algorithm is fetched once per process: OpenSSL 3's one-shot SHA256() and
 * EVP_sha256() look it up in the provider store on every call, which cost
 * more than hashing a token. Not for several threads at once.
 */
void sha256_cat(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32]);

/* ---- secrets at rest ----------------------------------------------------- */

#define SECRET_KEY_LEN 32
#define SECRET_NONCE_LEN 12
#define SECRET_TAG_LEN 16
#define SECRET_KEY_ID_LEN 8		/* hex characters */

/*
 * The additional data binding a device's sealed credentials to its
 * organisation (printf format, one long long: the organisation id).
 * Whoever seals and whoever opens must use the same.
 */
#define SECRET_DEVICE_AAD_FMT "kvmgate/device-credentials/v1/org=%lld"

/* The master key: 32 bytes, never stored in the database; its id is. */
struct secret_key {
	uint8_t key[SECRET_KEY_LEN];
	char id[SECRET_KEY_ID_LEN + 1];	/* hex of the first 4 bytes of SHA-256(key) */
};

/*
 * Reads the master key: from value when not empty (64 hex digits, or base64
 * of 32 bytes), else from the file path holding the same text (or 32 raw
 * bytes), which must not be readable by group or others. Returns 0, or -1
 * with the reason in why (never the key).
 */
int secret_key_load(const char *value, const char *path, struct secret_key *out,
                    char *why, size_t len) MUSTCHECK;

/*
 * Creates path (mode 0600, O_EXCL) holding a new random key as hex. Returns
 * 1 when it was created, 0 when it exists already, -1 on error (errno).
 */
int secret_key_create(const char *path) MUSTCHECK;

/*
 * Seals len bytes of plain with AES-256-GCM under k: a fresh random nonce
 * into nonce, ciphertext followed by the tag into out (len + SECRET_TAG_LEN
 * bytes). aad binds the ciphertext to its context. Returns 0 or -1.
 */
int secret_seal(const struct secret_key *k, const char *aad, const uint8_t *plain, size_t len,
                uint8_t nonce[SECRET_NONCE_LEN], uint8_t *out) MUSTCHECK;

/*
 * Opens what secret_seal made (len counts the tag) into plain (len -
 * SECRET_TAG_LEN bytes). Returns 0, or -1 when the key, the nonce, the aad
 * or any byte is not the sealed one.
 */
int secret_open(const struct secret_key *k, const char *aad, const uint8_t *sealed, size_t len,
                const uint8_t nonce[SECRET_NONCE_LEN], uint8_t *plain) MUSTCHECK;

#endif
