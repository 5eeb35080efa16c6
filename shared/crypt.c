/*
 * crypt.c - token generation and hashing with OpenSSL.
 */
#include "crypt.h"

#include <string.h>

#include <openssl/sha.h>

void token_generate(char out[TOKEN_LEN + 1], uint8_t hash[TOKEN_HASH_LEN])
{
	uint8_t raw[32];

	random_bytes(raw, sizeof raw);
	memcpy(out, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
	base64url_encode(raw, sizeof raw, out + strlen(TOKEN_PREFIX));
	SHA256((const unsigned char *)out, TOKEN_LEN, hash);
}

int token_hash(const char *token, uint8_t hash[TOKEN_HASH_LEN])
{
	size_t plen = strlen(TOKEN_PREFIX);

	if (strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN ||
	    strncmp(token, TOKEN_PREFIX, plen) != 0)
		return -1;
	for (const char *p = token + plen; *p; p++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		           "0123456789-_", *p) == NULL)
			return -1;
	SHA256((const unsigned char *)token, TOKEN_LEN, hash);
	return 0;
}
