/*
 * buf.h - a growable byte buffer. Allocation failure aborts (util.h), so
 * appends cannot fail and callers need no checks.
 */
#ifndef KVMGATE_BUF_H
#define KVMGATE_BUF_H

#include <stddef.h>

#include "util.h"

struct buf {
	char *data;	/* NUL-terminated after every append; owned by the buf */
	size_t len, cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Makes room for extra more bytes after len (and the NUL); len does not change. */
void buf_reserve(struct buf *b, size_t extra);
void buf_reset(struct buf *b);	/* empties, keeps the memory */
void buf_free(struct buf *b);	/* releases the memory; the buf is reusable */

#endif
