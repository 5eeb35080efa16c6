/*
 * devcred.h - device credentials sealed under the master key: the same
 * sealing for the REST API and the CLI.
 *
 * {"username":...,"password":...} is sealed with AES-256-GCM (crypt.h), a
 * fresh nonce each time, bound to the organisation by the additional data.
 * The master key comes from KVMGATE_MASTER_KEY or KVMGATE_MASTER_KEY_FILE,
 * read once per process.
 */
#ifndef KVMGATE_DEVCRED_H
#define KVMGATE_DEVCRED_H

#include <json-c/json.h>

#include "crypt.h"

/* Sealed credentials as the devices table stores them (hex text). */
struct devcred_sealed {
	char *nonce_hex;		/* owned; freed by devcred_sealed_cleanup */
	char *ct_hex;			/* owned; ciphertext and tag */
	char key_id[SECRET_KEY_ID_LEN + 1];
};

/*
 * Seals user and pass (NULL: "") for organisation org_id into *out.
 * Returns 0, or -1 with the reason in why (no master key, or sealing
 * failed); *out then holds nothing to free.
 */
int devcred_seal(long long org_id, const char *user, const char *pass,
                 struct devcred_sealed *out, char *why, size_t len) MUSTCHECK;

/* Frees what devcred_seal put in s. */
void devcred_sealed_cleanup(struct devcred_sealed *s);

/*
 * Opens credentials stored for organisation org_id into *creds (an object
 * the caller owns). Returns 0, or -1 with the reason in why (no master key,
 * another key, or altered data).
 */
int devcred_open(long long org_id, const char *nonce_hex, const char *ct_hex,
                 const char *key_id, json_object **creds, char *why, size_t len) MUSTCHECK;

#endif
