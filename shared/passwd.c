/*
 * passwd.c - scrypt password hashes (OpenSSL's EVP_PBE_scrypt) in the
 * "scrypt$N$r$p$salt$hash" form; see passwd.h.
 */
#include "passwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Bounds of what a stored string may ask for. */
#define N_MAX (1u << 20)
#define R_MAX 32
#define P_MAX 16
#define SALT_MAX 64
#define HASH_MIN 16
#define HASH_MAX 64
#define MEM_MAX (256u << 20)

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 of in without padding, NUL-terminated; out >= 4*n/3+3. */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = b64[v >> 18];
		*out++ = b64[(v >> 12) & 63];
		*out++ = b64[(v >> 6) & 63];
		*out++ = b64[v & 63];
	}
	if (n - i == 1) {
		*out++ = b64[in[i] >> 2];
		*out++ = b64[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		*out++ = b64[v >> 10];
		*out++ = b64[(v >> 4) & 63];
		*out++ = b64[(v & 15) << 2];
	}
	*out = '\0';
}

/*
 * Decodes len characters of unpadded base64 into out (max bytes). Returns
 * the number of bytes, or -1 on a character outside the alphabet, a length
 * no encoding has, unused bits that are not zero, or more than max bytes.
 */
static int b64_decode(const char *s, size_t len, uint8_t *out, size_t max)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p = s[i] != '\0' ? strchr(b64, s[i]) : NULL;
		if (p == NULL)
			return -1;
		acc = acc << 6 | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == max)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return acc == 0 ? (int)n : -1;
}

/* The memory scrypt needs for these parameters, as OpenSSL counts it. */
static uint64_t scrypt_mem(uint64_t N, uint64_t r, uint64_t p)
{
	return 128 * r * (N + 2) + 128 * r * p;
}

static int scrypt(const char *password, size_t len, const uint8_t *salt, size_t saltlen,
                  uint64_t N, uint64_t r, uint64_t p, uint8_t *key, size_t keylen)
{
	return EVP_PBE_scrypt(password, len, salt, saltlen, N, r, p, MEM_MAX, key, keylen) == 1
		? 0 : -1;
}

int passwd_hash(const char *password, size_t len, char *out, size_t outlen)
{
	uint8_t salt[PASSWD_SALT_LEN], key[PASSWD_HASH_LEN];
	char s64[PASSWD_SALT_LEN * 2], k64[PASSWD_HASH_LEN * 2];
	int n;

	if (len < 1 || len > PASSWD_MAX)
		return -1;
	random_bytes(salt, sizeof salt);
	if (scrypt(password, len, salt, sizeof salt, PASSWD_N, PASSWD_R, PASSWD_P, key,
	           sizeof key) < 0)
		return -1;
	b64_encode(salt, sizeof salt, s64);
	b64_encode(key, sizeof key, k64);
	OPENSSL_cleanse(key, sizeof key);
	n = snprintf(out, outlen, "scrypt$%u$%u$%u$%s$%s", PASSWD_N, PASSWD_R, PASSWD_P, s64, k64);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* Reads a decimal field of 1 to 7 digits ending at '$' into *v; advances *s. */
static int field_u(const char **s, uint64_t min, uint64_t max, uint64_t *v)
{
	size_t n = strspn(*s, "0123456789");

	if (n == 0 || n > 7 || (*s)[n] != '$' || (**s == '0'))
		return -1;
	*v = strtoull(*s, NULL, 10);
	*s += n + 1;
	return *v >= min && *v <= max ? 0 : -1;
}

/* A stored string taken apart. */
struct parsed {
	uint64_t N, r, p;
	uint8_t salt[SALT_MAX], hash[HASH_MAX];
	int saltlen, hashlen;
};

static int parse(const char *s, struct parsed *out)
{
	const char *salt, *hash;

	if (strncmp(s, "scrypt$", 7) != 0)
		return -1;
	s += 7;
	if (field_u(&s, 2, N_MAX, &out->N) < 0 || (out->N & (out->N - 1)) != 0 ||
	    field_u(&s, 1, R_MAX, &out->r) < 0 || field_u(&s, 1, P_MAX, &out->p) < 0 ||
	    scrypt_mem(out->N, out->r, out->p) > MEM_MAX)
		return -1;
	salt = s;
	if ((hash = strchr(salt, '$')) == NULL)
		return -1;
	out->saltlen = b64_decode(salt, (size_t)(hash - salt), out->salt, SALT_MAX);
	hash++;
	out->hashlen = b64_decode(hash, strlen(hash), out->hash, HASH_MAX);
	return out->saltlen >= 1 && out->hashlen >= HASH_MIN ? 0 : -1;
}

int passwd_verify(const char *password, size_t len, const char *stored)
{
	struct parsed p;
	uint8_t key[HASH_MAX];
	int same;

	if (stored == NULL || parse(stored, &p) < 0)
		return -1;
	if (len > PASSWD_MAX) {
		passwd_dummy(password, 1);
		return 0;
	}
	if (scrypt(password, len, p.salt, (size_t)p.saltlen, p.N, p.r, p.p, key,
	           (size_t)p.hashlen) < 0)
		return -1;
	same = CRYPTO_memcmp(key, p.hash, (size_t)p.hashlen) == 0;
	OPENSSL_cleanse(key, sizeof key);
	return same;
}

void passwd_dummy(const char *password, size_t len)
{
	static const uint8_t salt[PASSWD_SALT_LEN] = "kvmgate-no-user";
	uint8_t key[PASSWD_HASH_LEN];

	if (len > PASSWD_MAX)
		len = PASSWD_MAX;
	if (scrypt(password, len, salt, sizeof salt, PASSWD_N, PASSWD_R, PASSWD_P, key,
	           sizeof key) == 0)
		OPENSSL_cleanse(key, sizeof key);
}
