/*
 * devcred.c - device credentials sealed under the master key.
 */
#include "devcred.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

/* The master key, read once per process. Returns it, or NULL with the reason in why. */
static const struct secret_key *master_key(char *why, size_t len)
{
	static struct secret_key key;
	static bool loaded;

	if (!loaded && secret_key_load(conf_str(CONF_MASTER_KEY), conf_str(CONF_MASTER_KEY_FILE),
	                               &key, why, len) == 0)
		loaded = true;
	return loaded ? &key : NULL;
}

/* The additional data binding sealed credentials to their organisation. */
static void cred_aad(long long org_id, char out[64])
{
	snprintf(out, 64, SECRET_DEVICE_AAD_FMT, org_id);
}

int devcred_seal(long long org_id, const char *user, const char *pass,
                 struct devcred_sealed *out, char *why, size_t len)
{
	const struct secret_key *k;
	json_object *o;
	uint8_t nonce[SECRET_NONCE_LEN], *ct;
	const char *plain;
	char aad[64];
	size_t n;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if ((k = master_key(why, len)) == NULL)
		return -1;
	o = json_object_new_object();
	json_object_object_add(o, "username", json_object_new_string(user ? user : ""));
	json_object_object_add(o, "password", json_object_new_string(pass ? pass : ""));
	plain = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	n = strlen(plain);
	ct = xmalloc(n + SECRET_TAG_LEN);
	cred_aad(org_id, aad);
	if (secret_seal(k, aad, (const uint8_t *)plain, n, nonce, ct) == 0) {
		out->nonce_hex = xmalloc(2 * SECRET_NONCE_LEN + 1);
		out->ct_hex = xmalloc(2 * (n + SECRET_TAG_LEN) + 1);
		hex_encode(nonce, SECRET_NONCE_LEN, out->nonce_hex);
		hex_encode(ct, n + SECRET_TAG_LEN, out->ct_hex);
		snprintf(out->key_id, sizeof out->key_id, "%s", k->id);
		rc = 0;
	} else {
		snprintf(why, len, "the credentials could not be sealed");
	}
	explicit_bzero((char *)plain, n);
	explicit_bzero(ct, n + SECRET_TAG_LEN);
	free(ct);
	json_object_put(o);
	return rc;
}

void devcred_sealed_cleanup(struct devcred_sealed *s)
{
	free(s->nonce_hex);
	free(s->ct_hex);
	memset(s, 0, sizeof *s);
}

int devcred_open(long long org_id, const char *nonce_hex, const char *ct_hex,
                 const char *key_id, json_object **creds, char *why, size_t len)
{
	const struct secret_key *k;
	uint8_t nonce[SECRET_NONCE_LEN], *ct, *plain;
	size_t n = strlen(ct_hex) / 2;
	char aad[64];
	int rc = -1;

	*creds = NULL;
	if ((k = master_key(why, len)) == NULL)
		return -1;
	if (n < SECRET_TAG_LEN) {
		snprintf(why, len, "the stored credentials are malformed");
		return -1;
	}
	ct = xmalloc(n + 1);
	plain = xmalloc(n + 1);
	cred_aad(org_id, aad);
	if (strcmp(k->id, key_id) != 0 || hex_decode(nonce_hex, SECRET_NONCE_LEN, nonce) < 0 ||
	    hex_decode(ct_hex, n, ct) < 0 || secret_open(k, aad, ct, n, nonce, plain) < 0) {
		snprintf(why, len, "the stored credentials cannot be opened with the current "
		         "master key");
		goto out;
	}
	plain[n - SECRET_TAG_LEN] = '\0';
	*creds = json_tokener_parse((char *)plain);
	rc = 0;
out:
	explicit_bzero(plain, n + 1);
	free(plain);
	free(ct);
	return rc;
}
