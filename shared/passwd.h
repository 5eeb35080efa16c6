/*
 * passwd.h - people's passwords, stored as scrypt (RFC 7914) in a
 * self-describing string:
 *
 *   scrypt$N$r$p$salt$hash
 *
 * N, r and p in decimal (N a power of two), salt and hash in standard
 * base64 without padding. New hashes use PASSWD_N, PASSWD_R and PASSWD_P
 * with a 16-byte random salt and a 32-byte hash; verification reads the
 * parameters from the string, so they can be raised later without breaking
 * stored hashes. Comparison is constant-time.
 */
#ifndef KVMGATE_PASSWD_H
#define KVMGATE_PASSWD_H

#include "util.h"

#define PASSWD_N 32768		/* 32 MiB of memory with r = 8 */
#define PASSWD_R 8
#define PASSWD_P 1
#define PASSWD_SALT_LEN 16
#define PASSWD_HASH_LEN 32
/* Longest password accepted, in bytes: longer input is refused, not cut. */
#define PASSWD_MAX 1024
/* Shortest password the CLI sets, in characters (bytes of UTF-8 count as one each). */
#define PASSWD_MIN 8
/* Room for any string passwd_hash() writes. */
#define PASSWD_ENCODED_MAX 160

/*
 * Hashes password (len bytes, 1 to PASSWD_MAX) with a fresh salt into out
 * (at least PASSWD_ENCODED_MAX bytes). Returns 0, or -1 when the length is
 * out of range or the KDF failed.
 */
int passwd_hash(const char *password, size_t len, char *out, size_t outlen) MUSTCHECK;

/*
 * Whether password (len bytes) is the one stored (a string passwd_hash()
 * made, or one of the same form with other parameters). Returns 1 when it
 * is, 0 when it is not, -1 when stored is malformed or asks for more than
 * 256 MiB of memory (nothing matches it).
 */
int passwd_verify(const char *password, size_t len, const char *stored) MUSTCHECK;

/*
 * Spends the time passwd_verify() takes on a hash of the default
 * parameters, matching nothing: for a sign-in whose user does not exist, so
 * that the answer takes as long as for one who does.
 */
void passwd_dummy(const char *password, size_t len);

#endif
