/*
 * fuzz_url.c - libFuzzer target for the HTTP edge: any bytes as a request URI.
 * request_parse_uri must accept or refuse with a status and a reason, never
 * crash or leak, and what it accepts must hold no control characters.
 */
#include <stdlib.h>
#include <string.h>

#include "fcgi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = malloc(size + 1);
	char err[160];
	struct request req;
	int st;

	memcpy(uri, data, size);
	uri[size] = '\0';
	memset(&req, 0, sizeof req);
	st = request_parse_uri(&req, uri, err, sizeof err);
	if (st != 0 && st != 400 && st != 414)
		abort();
	if (st == 0) {
		for (const char *p = req.path; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		if (req.nparams > REQ_MAX_PARAMS)
			abort();
	}
	request_cleanup(&req);
	free(uri);
	return 0;
}
