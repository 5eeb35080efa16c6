/*
 * auth.c - the device's side of login: url.QueryUnescape + aes-everywhere
 * Decrypt of the password (section 2.2), with the same failure modes, and
 * the HS256 JWT it hands out (section 2.4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sim.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Go's url.QueryUnescape: '+' is a space, %XX a byte, a bad escape an error. */
static int query_unescape(const char *in, char *out)
{
	for (; *in; in++) {
		if (*in == '+') {
			*out++ = ' ';
		} else if (*in == '%') {
			int hi = hexval(in[1]), lo = hi < 0 ? -1 : hexval(in[2]);
			if (hi < 0 || lo < 0)
				return -1;
			*out++ = (char)(hi << 4 | lo);
			in += 2;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
	return 0;
}

/* Strict standard base64 with padding, as Go's StdEncoding. -1 on bad input. */
static int b64_decode(const char *in, uint8_t *out, size_t *out_len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int j = 0; j < 4; j++) {
			const char *p;
			if (in[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad || in[i + j] == '\0' || (p = strchr(tab, in[i + j])) == NULL)
				return -1;
			v[j] = (int)(p - tab);
		}
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	*out_len = o;
	return 0;
}

enum auth_decrypt auth_decrypt_password(const char *sent, char **plain)
{
	size_t n = strlen(sent), len, ct_len;
	char *unesc = xmalloc(n + 1);
	uint8_t *raw = xmalloc(n + 1), key[32], iv[16], *pt = NULL;
	enum auth_decrypt rc = AUTH_EMPTY;
	EVP_CIPHER_CTX *ctx = NULL;
	int outl = 0;

	*plain = NULL;
	if (query_unescape(sent, unesc) < 0 || b64_decode(unesc, raw, &len) < 0 ||
	    len < 16 || memcmp(raw, "Salted__", 8) != 0)
		goto done;
	ct_len = len - 16;
	/* Go's CryptBlocks panics on a partial block; the trimming then
	 * indexes the last byte (panics when empty) and slices off as many
	 * bytes as it says without checking (panics when too many). */
	rc = AUTH_PANIC;
	if (ct_len % 16 != 0 || ct_len == 0)
		goto done;
	if (EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), raw + 8, (const uint8_t *)SIM_PASSPHRASE,
	                   strlen(SIM_PASSPHRASE), 1, key, iv) != 32)
		goto done;
	ctx = EVP_CIPHER_CTX_new();
	pt = xmalloc(ct_len + 1);
	if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_DecryptUpdate(ctx, pt, &outl, raw + 16, (int)ct_len) != 1 || (size_t)outl != ct_len)
		goto done;
	if (pt[ct_len - 1] > ct_len)
		goto done;
	pt[ct_len - pt[ct_len - 1]] = '\0';
	*plain = (char *)pt;
	pt = NULL;
	rc = AUTH_PLAIN;
done:
	EVP_CIPHER_CTX_free(ctx);
	free(pt);
	free(unesc);
	free(raw);
	return rc;
}

char *auth_encrypt_password(const char *password, const uint8_t *salt8)
{
	uint8_t salt[8], key[32], iv[16];
	size_t n = strlen(password);
	uint8_t *blob = xmalloc(16 + n + 16);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;
	char *b64;
	struct buf out = BUF_INIT;

	if (salt8)
		memcpy(salt, salt8, 8);
	else
		random_bytes(salt, 8);
	if (ctx == NULL ||
	    EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), salt, (const uint8_t *)SIM_PASSPHRASE,
	                   strlen(SIM_PASSPHRASE), 1, key, iv) != 32 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, blob + 16, &l1, (const uint8_t *)password, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(ctx, blob + 16 + l1, &l2) != 1)
		abort();
	EVP_CIPHER_CTX_free(ctx);
	memcpy(blob, "Salted__", 8);
	memcpy(blob + 8, salt, 8);
	b64 = base64_encode(blob, 16 + (size_t)l1 + (size_t)l2);
	for (const char *p = b64; *p; p++) {
		if (*p == '+') buf_puts(&out, "%2B");
		else if (*p == '/') buf_puts(&out, "%2F");
		else if (*p == '=') buf_puts(&out, "%3D");
		else buf_append(&out, p, 1);
	}
	free(b64);
	free(blob);
	return out.data;
}

/* base64url without padding; -1 on bad input. */
static int b64url_decode(const char *in, size_t n, uint8_t *out, size_t *out_len)
{
	char *s = xmalloc(n + 4);
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		char c = in[i];
		if (c == '+' || c == '/' || c == '=') { free(s); return -1; }
		s[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	while (i % 4)
		s[i++] = '=';
	s[i] = '\0';
	rc = b64_decode(s, out, out_len);
	free(s);
	return rc;
}

static void hs256(const uint8_t *secret, size_t secret_len, const char *data, size_t n, uint8_t mac[32])
{
	unsigned int l = 32;

	if (HMAC(EVP_sha256(), secret, (int)secret_len, (const uint8_t *)data, n, mac, &l) == NULL)
		abort();
}

char *auth_jwt_make(const uint8_t *secret, size_t secret_len, const char *username,
                    long long iat, long long exp, bool head, long long token_version)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct json_object *c = json_object_new_object();
	const char *claims;
	char *h64, *c64, *s64, *signing, *jwt;
	uint8_t mac[32];

	json_object_object_add(c, "username", json_object_new_string(username));
	if (head) {
		json_object_object_add(c, "tokenVersion", json_object_new_int64(token_version));
		json_object_object_add(c, "sub", json_object_new_string(username));
		json_object_object_add(c, "iat", json_object_new_int64(iat));
	}
	json_object_object_add(c, "exp", json_object_new_int64(exp));
	claims = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
	h64 = xmalloc(sizeof hdr * 4 / 3 + 4);
	base64url_encode((const uint8_t *)hdr, sizeof hdr - 1, h64);
	c64 = xmalloc(strlen(claims) * 4 / 3 + 4);
	base64url_encode((const uint8_t *)claims, strlen(claims), c64);
	signing = xasprintf("%s.%s", h64, c64);
	hs256(secret, secret_len, signing, strlen(signing), mac);
	s64 = xmalloc(48);
	base64url_encode(mac, 32, s64);
	jwt = xasprintf("%s.%s", signing, s64);
	free(h64);
	free(c64);
	free(s64);
	free(signing);
	json_object_put(c);
	return jwt;
}

int auth_jwt_check(const uint8_t *secret, size_t secret_len, const char *jwt,
                   long long now, struct auth_claims *c)
{
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	uint8_t mac[32], got[64], *claims = NULL;
	size_t got_len = 0, n = 0;
	struct json_object *o = NULL, *v;
	int rc = -1;

	memset(c, 0, sizeof *c);
	if (d2 == NULL || strchr(d2 + 1, '.') != NULL || strlen(d2 + 1) > 64)
		return -1;
	hs256(secret, secret_len, jwt, (size_t)(d2 - jwt), mac);
	if (b64url_decode(d2 + 1, strlen(d2 + 1), got, &got_len) < 0 || got_len != 32 ||
	    !mem_equal_ct(mac, got, 32))
		return -1;
	claims = xmalloc((size_t)(d2 - d1) + 4);
	if (b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), claims, &n) < 0)
		goto done;
	claims[n] = '\0';
	if ((o = json_tokener_parse((char *)claims)) == NULL || !json_object_is_type(o, json_type_object))
		goto done;
	if (!json_object_object_get_ex(o, "exp", &v) || !json_object_is_type(v, json_type_int))
		goto done;
	c->exp = json_object_get_int64(v);
	if (c->exp <= now)
		goto done;
	if (json_object_object_get_ex(o, "username", &v) && json_object_is_type(v, json_type_string))
		snprintf(c->username, sizeof c->username, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "iat", &v))
		c->iat = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "tokenVersion", &v)) {
		c->token_version = json_object_get_int64(v);
		c->has_version = true;
	}
	if (json_object_object_get_ex(o, "sub", &v) &&
	    strcmp(json_object_get_string(v), c->username) != 0)
		goto done;
	rc = 0;
done:
	json_object_put(o);
	free(claims);
	return rc;
}
