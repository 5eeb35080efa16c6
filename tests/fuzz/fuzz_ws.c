/*
 * fuzz_ws.c - libFuzzer target for the WebSocket frame parser (capture/ws.c):
 * any bytes from a device, walked frame by frame as the client does. A
 * frame it accepts must lie inside the input and have a sane header.
 */
#include <stdlib.h>

#include "capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;
	struct ws_frame f;
	int hl;

	while (at < size && (hl = ws_frame_parse(data + at, size - at, &f)) > 0) {
		if ((size_t)hl != f.header || (size_t)hl + f.len > size - at || hl > 14 ||
		    (f.opcode >= 8 && (f.len > 125 || !f.fin)))
			abort();
		at += (size_t)hl + f.len;
	}
	return 0;
}
