/*
 * fuzz_rfb.c - libFuzzer target for the RFB engine (capture/rfb.c,
 * rfb_decode.c): any bytes a server may send. The first byte picks the
 * start: the handshake (with a password, VeNCrypt allowed) or a session
 * already initialised at 64x48 (so the decoders are reached at once); the
 * second splits the rest into chunks of that size (0: all at once). The
 * engine must fail cleanly or go on, never read or write out of bounds.
 */
#include <stdint.h>
#include <string.h>

#include "capture.h"
#include "rfb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t init_64x48[] = {
	'R', 'F', 'B', ' ', '0', '0', '3', '.', '0', '0', '8', '\n', 1, 1, 0, 0, 0, 0,
	0, 64, 0, 48, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 0, 0, 0, 0,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfb_opts o = { .password = "password", .username = "user", .tls = true, .x509 = true,
	                      .jpeg_quality = 8 };
	struct rfb r;
	size_t chunk, off = 2;
	int rc = 0;

	if (size < 2)
		return 0;
	rfb_init(&r, &o);
	if (data[0] & 1) {
		if (rfb_feed(&r, init_64x48, sizeof init_64x48) != 0)
			__builtin_trap();
	}
	chunk = data[1] ? data[1] : size;
	while (off < size && rc >= 0) {
		size_t n = size - off < chunk ? size - off : chunk;
		rc = rfb_feed(&r, data + off, n);
		if (rc == 1)
			rc = rfb_tls_ready(&r);
		off += n;
		buf_reset(&r.out);
	}
	if (r.st == RFB_NORMAL) {
		rfb_key(&r, 0x41, 0x1e, true);
		rfb_pointer(&r, 1, 1, 0);
		rfb_request(&r, true);
	}
	rfb_cleanup(&r);
	return 0;
}
