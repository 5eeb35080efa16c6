/*
 * capture.c - kvmgate capture <status|frame>: what the capture worker holds
 * for a device, through the same path FastCGI workers use (shared/frame.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "frame.h"

static void print_reply(const struct ctl_session_reply *r)
{
	printf("device %llu: %s, slot %d, frame %llu, error %s%s%s, attempts %u, firmware %s\n",
	       (unsigned long long)r->device_id, session_state_name(r->state), r->slot,
	       (unsigned long long)r->frame_seq, session_error_name(r->error), r->why[0] ? ": " : "",
	       r->why, r->attempts, r->firmware[0] ? r->firmware : "unknown");
}

int cmd_capture(int argc, char **argv)
{
	enum { OPT_DEVICE = 1 << 0, OPT_OUT = 1 << 1, OPT_AFTER = 1 << 2, OPT_TIMEOUT = 1 << 3 };
	static const struct option opts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	const char *val[ARRAY_LEN(opts)] = { NULL };
	unsigned seen;
	int first;
	long long device = 0, after = 0, timeout = 10000;
	const char *out = NULL, *err, *sub = argc > 1 ? argv[1] : "";
	struct shm_store *store = NULL;
	struct ctl_session_reply r;
	struct shm_frame_info fi;
	struct buf jpeg = BUF_INIT;
	char why[256];
	enum frame_status st;
	FILE *f;
	int rc = 1;

	if (strcmp(sub, "op") == 0)
		return cmd_capture_op(argc - 1, argv + 1);
	if (strcmp(sub, "status") != 0 && strcmp(sub, "frame") != 0)
		goto usage;
	if (cli_getopts(argc - 1, argv + 1, opts, OPT_DEVICE | OPT_OUT | OPT_AFTER | OPT_TIMEOUT,
	                "capture", val, &seen, NULL, &first) < 0 ||
	    (val[0] != NULL && parse_ll(val[0], 1, INT64_MAX, &device, &err) < 0) ||
	    (val[2] != NULL && parse_ll(val[2], 0, INT64_MAX, &after, &err) < 0) ||
	    (val[3] != NULL && parse_ll(val[3], 0, 600000, &timeout, &err) < 0))
		goto usage;
	out = val[1];
	if (device == 0 || first != argc - 1 || (sub[0] == 'f') != (out != NULL))
		goto usage;
	/* status: a zero wait only renews the demand and reports. */
	st = frame_get(conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME), &store, (uint64_t)device,
	               (uint64_t)after, sub[0] == 's' ? 0 : (int)timeout, &fi, &jpeg, &r, why, sizeof why);
	if (sub[0] == 's') {
		if (st == FRAME_NO_DEVICE || st == FRAME_UNAVAILABLE)
			fprintf(stderr, "kvmgate: capture status: %s\n", why);
		else
			print_reply(&r);
		rc = st == FRAME_NO_DEVICE || st == FRAME_UNAVAILABLE;
		goto done;
	}
	if (st != FRAME_OK) {
		fprintf(stderr, "kvmgate: capture frame: %s\n", why);
		goto done;
	}
	if ((f = fopen(out, "wb")) == NULL || fwrite(jpeg.data, 1, jpeg.len, f) != jpeg.len ||
	    fclose(f) != 0) {
		perror(out);
		goto done;
	}
	printf("frame %llu %ux%u %u bytes format %d\n", (unsigned long long)fi.seq, fi.width,
	       fi.height, fi.len, fi.format);
	rc = 0;
done:
	shm_close(store);
	buf_free(&jpeg);
	return rc;
usage:
	fprintf(stderr, "usage: kvmgate capture status --device ID\n"
	        "       kvmgate capture frame --device ID --out FILE [--after SEQ] [--timeout-ms MS]\n"
	        "       kvmgate capture op DEVICE [--timeout-ms MS] OPERATION [ARGS] (op alone: the list)\n");
	return 2;
}
