/*
 * crypt.c - token generation and hashing, and secrets sealed with AES-256-GCM,
 * with OpenSSL.
 */
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

void sha256_cat(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
	static EVP_MD *md;
	static EVP_MD_CTX *c;

	if (md == NULL && (md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		abort();
	if (c == NULL && (c = EVP_MD_CTX_new()) == NULL)
		abort();
	if (EVP_DigestInit_ex(c, md, NULL) != 1 || EVP_DigestUpdate(c, a, an) != 1 ||
	    (bn > 0 && EVP_DigestUpdate(c, b, bn) != 1) || EVP_DigestFinal_ex(c, out, NULL) != 1)
		abort();
}

void token_generate(char out[TOKEN_LEN + 1], uint8_t hash[TOKEN_HASH_LEN])
{
	uint8_t raw[32];

	random_bytes(raw, sizeof raw);
	memcpy(out, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
	base64url_encode(raw, sizeof raw, out + strlen(TOKEN_PREFIX));
	sha256_cat(out, TOKEN_LEN, NULL, 0, hash);
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
	sha256_cat(token, TOKEN_LEN, NULL, 0, hash);
	return 0;
}

/* ---- secrets at rest --------------------------------------------------------- */

/* Decodes the text of a key: 64 hex digits or base64 of 32 bytes. */
static int key_decode(const char *text, size_t n, uint8_t key[SECRET_KEY_LEN])
{
	uint8_t tmp[48];
	int got;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (n == 2 * SECRET_KEY_LEN) {
		char hex[2 * SECRET_KEY_LEN + 1];
		memcpy(hex, text, n);
		hex[n] = '\0';
		return hex_decode(hex, SECRET_KEY_LEN, key);
	}
	if (n != 44)	/* base64 of 32 bytes, padded */
		return -1;
	got = EVP_DecodeBlock(tmp, (const unsigned char *)text, (int)n);
	if (got != 33 || text[43] != '=')	/* 33: the padding's zero byte counted */
		return -1;
	memcpy(key, tmp, SECRET_KEY_LEN);
	explicit_bzero(tmp, sizeof tmp);
	return 0;
}

int secret_key_load(const char *value, const char *path, struct secret_key *out,
                    char *why, size_t len)
{
	uint8_t digest[32], raw[128];
	struct stat st;
	ssize_t n = 0;
	int fd = -1, rc = -1;

	memset(out, 0, sizeof *out);
	if (value != NULL && *value != '\0') {
		if (key_decode(value, strlen(value), out->key) < 0) {
			snprintf(why, len, "KVMGATE_MASTER_KEY must be 64 hex digits or the base64 "
			         "of 32 bytes");
			goto out;
		}
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) < 0) {
			snprintf(why, len, "cannot read the master key %s: %s", path, strerror(errno));
			goto out;
		}
		if (st.st_mode & 077) {
			snprintf(why, len, "the master key %s is readable by others (chmod 600)", path);
			goto out;
		}
		n = read(fd, raw, sizeof raw);
		if (n == SECRET_KEY_LEN)
			memcpy(out->key, raw, SECRET_KEY_LEN);
		else if (n < 0 || key_decode((const char *)raw, (size_t)n, out->key) < 0) {
			snprintf(why, len, "the master key %s must hold 32 bytes, 64 hex digits "
			         "or base64", path);
			goto out;
		}
	}
	SHA256(out->key, SECRET_KEY_LEN, digest);
	hex_encode(digest, SECRET_KEY_ID_LEN / 2, out->id);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	explicit_bzero(raw, sizeof raw);
	if (rc < 0)
		explicit_bzero(out->key, sizeof out->key);
	return rc;
}

int secret_key_create(const char *path)
{
	uint8_t key[SECRET_KEY_LEN];
	char hex[2 * SECRET_KEY_LEN + 2];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = 1;

	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	random_bytes(key, sizeof key);
	hex_encode(key, sizeof key, hex);
	strcat(hex, "\n");
	if (fchmod(fd, 0600) < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) ||
	    fsync(fd) < 0)
		rc = -1;
	if (close(fd) < 0)
		rc = -1;
	explicit_bzero(key, sizeof key);
	explicit_bzero(hex, sizeof hex);
	return rc;
}

/* One AES-256-GCM pass: enc 1 seals, 0 opens (checking tag). */
static int gcm(int enc, const struct secret_key *k, const char *aad, const uint8_t *in,
               size_t len, const uint8_t nonce[SECRET_NONCE_LEN], uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, rc = -1;

	if (ctx == NULL || len > INT_MAX ||
	    EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, enc) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1))
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRET_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRET_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int secret_seal(const struct secret_key *k, const char *aad, const uint8_t *plain, size_t len,
                uint8_t nonce[SECRET_NONCE_LEN], uint8_t *out)
{
	random_bytes(nonce, SECRET_NONCE_LEN);
	return gcm(1, k, aad, plain, len, nonce, out, out + len);
}

int secret_open(const struct secret_key *k, const char *aad, const uint8_t *sealed, size_t len,
                const uint8_t nonce[SECRET_NONCE_LEN], uint8_t *plain)
{
	uint8_t tag[SECRET_TAG_LEN];

	if (len < SECRET_TAG_LEN)
		return -1;
	memcpy(tag, sealed + len - SECRET_TAG_LEN, SECRET_TAG_LEN);
	if (gcm(0, k, aad, sealed, len - SECRET_TAG_LEN, nonce, plain, tag) < 0) {
		explicit_bzero(plain, len - SECRET_TAG_LEN);
		return -1;
	}
	return 0;
}
