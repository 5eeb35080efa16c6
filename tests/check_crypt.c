/*
 * check_crypt.c - secrets at rest: AES-256-GCM against a known-answer vector
 * (NIST GCM test case 14: 256-bit zero key, zero IV), round trips, tamper
 * detection of every byte, nonce and aad; master key files and values;
 * SHA-256 of two parts (FIPS 180-2 "abc"), repeated, and of tokens.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypt.h"
#include "check_run.h"

/* AES-256-GCM with EVP directly, no aad: what the KAT vector is given for. */
START_TEST(test_gcm_kat)
{
	static const uint8_t want_ct[16] = {
		0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e,
		0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18 };
	static const uint8_t want_tag[16] = {
		0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0,
		0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19 };
	struct secret_key k;
	uint8_t nonce[SECRET_NONCE_LEN] = { 0 }, plain[16] = { 0 }, sealed[32], back[16];

	memset(&k, 0, sizeof k);
	/* secret_seal picks its own nonce; open the KAT's sealed bytes with the KAT nonce. */
	memcpy(sealed, want_ct, 16);
	memcpy(sealed + 16, want_tag, 16);
	ck_assert_int_eq(secret_open(&k, "", sealed, sizeof sealed, nonce, back), 0);
	ck_assert_mem_eq(back, plain, 16);
	sealed[3] ^= 1;
	ck_assert_int_eq(secret_open(&k, "", sealed, sizeof sealed, nonce, back), -1);
}
END_TEST

/* sha256_cat: the known answer however the input is split, again and again. */
START_TEST(test_sha256_cat)
{
	static const char want[] =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char tok[TOKEN_LEN + 1];
	uint8_t md[32], again[32];
	char hex[65];

	for (int i = 0; i < 3; i++) {
		sha256_cat("abc", 3, NULL, 0, md);
		hex_encode(md, 32, hex);
		ck_assert_str_eq(hex, want);
		sha256_cat("a", 1, "bc", 2, md);
		hex_encode(md, 32, hex);
		ck_assert_str_eq(hex, want);
	}
	/* A token's hash is SHA-256 of its text; a token of another shape has none. */
	token_generate(tok, md);
	ck_assert_int_eq(token_hash(tok, again), 0);
	ck_assert_mem_eq(md, again, 32);
	sha256_cat(tok, TOKEN_LEN, NULL, 0, again);
	ck_assert_mem_eq(md, again, 32);
	tok[10] = '*';
	ck_assert_int_eq(token_hash(tok, again), -1);
}
END_TEST

START_TEST(test_round_trip_and_tamper)
{
	static const char msg[] = "{\"username\":\"admin\",\"password\":\"p\\u00e4ss\"}";
	const char *aad = "kvmgate/device-credentials/v1/org=7";
	struct secret_key k, other;
	uint8_t nonce[SECRET_NONCE_LEN], nonce2[SECRET_NONCE_LEN];
	uint8_t sealed[sizeof msg + SECRET_TAG_LEN], sealed2[sizeof msg + SECRET_TAG_LEN];
	uint8_t back[sizeof msg];
	size_t n = sizeof msg + SECRET_TAG_LEN;

	memset(&k, 0x11, sizeof k);
	memset(&other, 0x22, sizeof other);
	ck_assert_int_eq(secret_seal(&k, aad, (const uint8_t *)msg, sizeof msg, nonce, sealed), 0);
	ck_assert_int_eq(secret_seal(&k, aad, (const uint8_t *)msg, sizeof msg, nonce2, sealed2), 0);
	ck_assert(memcmp(nonce, nonce2, sizeof nonce) != 0);	/* a fresh nonce each time */
	ck_assert(memcmp(sealed, sealed2, n) != 0);
	ck_assert(memmem(sealed, n, "admin", 5) == NULL);
	ck_assert_int_eq(secret_open(&k, aad, sealed, n, nonce, back), 0);
	ck_assert_str_eq((char *)back, msg);
	for (size_t i = 0; i < n; i++) {
		sealed[i] ^= 0x80;
		ck_assert_msg(secret_open(&k, aad, sealed, n, nonce, back) == -1, "byte %zu", i);
		sealed[i] ^= 0x80;
	}
	nonce[0] ^= 1;
	ck_assert_int_eq(secret_open(&k, aad, sealed, n, nonce, back), -1);
	nonce[0] ^= 1;
	ck_assert_int_eq(secret_open(&k, "kvmgate/device-credentials/v1/org=8", sealed, n,
	                             nonce, back), -1);
	ck_assert_int_eq(secret_open(&other, aad, sealed, n, nonce, back), -1);
	ck_assert_int_eq(secret_open(&k, aad, sealed, 10, nonce, back), -1);
	ck_assert_int_eq(secret_open(&k, aad, sealed, n, nonce, back), 0);
}
END_TEST

START_TEST(test_key_load)
{
	char dir[] = "/tmp/check-crypt.XXXXXX", path[64], why[200];
	struct secret_key a, b;
	const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	const char *b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/master.key", dir);
	ck_assert_int_eq(secret_key_load(hex, path, &a, why, sizeof why), 0);
	ck_assert_int_eq(secret_key_load(b64, path, &b, why, sizeof why), 0);
	ck_assert_mem_eq(a.key, b.key, SECRET_KEY_LEN);
	ck_assert_uint_eq(a.key[31], 0x1f);
	ck_assert_str_eq(a.id, b.id);
	ck_assert_int_eq((int)strlen(a.id), SECRET_KEY_ID_LEN);
	ck_assert_int_eq(secret_key_load("abcd", path, &a, why, sizeof why), -1);
	ck_assert(strstr(why, "abcd") == NULL);
	ck_assert_int_eq(secret_key_load("", path, &a, why, sizeof why), -1);	/* no file yet */

	ck_assert_int_eq(secret_key_create(path), 1);
	ck_assert_int_eq(secret_key_create(path), 0);
	ck_assert_int_eq(secret_key_load("", path, &a, why, sizeof why), 0);
	ck_assert_int_eq(secret_key_load(NULL, path, &b, why, sizeof why), 0);
	ck_assert_mem_eq(a.key, b.key, SECRET_KEY_LEN);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(secret_key_load("", path, &a, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "others") != NULL, "%s", why);
	ck_assert_int_eq(unlink(path), 0);

	f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(secret_key_load("", path, &a, why, sizeof why), -1);
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *crypt_suite(void)
{
	Suite *s = suite_create("crypt");
	TCase *tc = tcase_create("secrets");

	tcase_add_test(tc, test_gcm_kat);
	tcase_add_test(tc, test_round_trip_and_tamper);
	tcase_add_test(tc, test_key_load);
	tcase_add_test(tc, test_sha256_cat);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(crypt_suite());
}
