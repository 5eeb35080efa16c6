/*
 * fuzz_url.c - libFuzzer target for the HTTP edge: any bytes as a request URI.
 * request_parse_uri must accept or refuse with a status and a reason, never
 * crash or leak, and what it accepts must hold no control characters. Each
 * query value is also read as a screenshot region (x,y,width,height), which
 * must be refused or give a non-empty rectangle at non-negative coordinates.
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
		for (int i = 0; i < req.nparams; i++) {
			struct shot_opts o;
			shot_opts_init(&o);
			if (shot_parse_region(req.params[i].value, &o, err, sizeof err) == 0 &&
			    (o.rx < 0 || o.ry < 0 || o.rw < 1 || o.rh < 1 || o.rw > IMG_SIDE_MAX ||
			     o.rh > IMG_SIDE_MAX || !o.region))
				abort();
		}
	}
	request_cleanup(&req);
	free(uri);
	return 0;
}
