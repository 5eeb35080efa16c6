/*
 * util.h - small helpers shared by every kvmgate program.
 *
 * Allocation failure aborts: every long-lived process is supervised, and a
 * process that cannot allocate cannot do anything useful.
 */
#ifndef KVMGATE_UTIL_H
#define KVMGATE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define MUSTCHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* The text of a macro's value: STR(MCP_ID_MAX) is "256". */
#define STR_(x) #x
#define STR(x) STR_(x)

#define KVMGATE_VERSION "0.1.0"

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Monotonic and wall clocks. */
uint64_t now_mono_ns(void);
uint64_t now_wall_ns(void);

/*
 * Parses a decimal integer in [min, max] (OpenBSD strtonum semantics).
 * Returns 0 and sets *out, or -1 with *errstr set to a static reason.
 */
int parse_ll(const char *s, long long min, long long max, long long *out,
             const char **errstr) MUSTCHECK;

/* Fills buf with n cryptographically random bytes. Aborts on failure. */
void random_bytes(void *buf, size_t n);

/* Writes 2*n lowercase hex digits and a NUL into out (size >= 2*n+1). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes 2*n hex digits (either case) from hex into n bytes of out.
 * Returns 0, or -1 at the first character that is not a hex digit.
 */
int hex_decode(const char *hex, size_t n, uint8_t *out) MUSTCHECK;

/* Writes the unpadded base64url encoding of in, NUL-terminated. out >= 4*n/3+3. */
void base64url_encode(const uint8_t *in, size_t n, char *out);

/* The padded standard base64 (RFC 4648 section 4) of in[0..n); the caller frees it. */
char *base64_encode(const void *in, size_t n);

/* Compares two buffers in time independent of their contents. */
bool mem_equal_ct(const void *a, const void *b, size_t n);

#endif
