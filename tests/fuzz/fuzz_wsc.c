/*
 * fuzz_wsc.c - libFuzzer target for the WebSocket client codec
 * (capture/wsc.c): any answer to the upgrade and any frames after it. The
 * first byte picks the start: the upgrade answer, or an open connection
 * (binary, or base64 when bit 1 is set), since a fuzzer cannot forge the
 * SHA-1 of Sec-WebSocket-Accept.
 */
#include <stdint.h>
#include <string.h>

#include "wsc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wsc c = { 0 };
	struct buf up = BUF_INIT, down = BUF_INIT, req = BUF_INIT;
	size_t half;

	if (size < 1)
		return 0;
	wsc_request(&c, "h:1", "/", &req);
	if (data[0] & 1) {
		c.open = true;
		c.base64 = data[0] & 2;
	}
	half = (size - 1) / 2;
	if (wsc_feed(&c, data + 1, half, &up, &down) == 0)
		(void)!wsc_feed(&c, data + 1 + half, size - 1 - half, &up, &down);
	wsc_frame(&c, up.data, up.len > 1000 ? 1000 : up.len, &down);
	buf_free(&up);
	buf_free(&down);
	buf_free(&req);
	buf_free(&c.in);
	return 0;
}
