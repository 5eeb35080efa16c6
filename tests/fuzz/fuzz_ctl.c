/*
 * fuzz_ctl.c - libFuzzer target for the control protocol: any datagram given
 * to the capture worker's handler. Every answer must itself pass ctl_check,
 * whatever came in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t reply[CTL_MAX_MSG];
	size_t n;

	if (cap.frames == NULL) {
		char name[64];
		snprintf(name, sizeof name, "/kvmgate-fuzz-ctl-%ld", (long)getpid());
		if (shm_create(name, 2, 65536, &cap.frames) < 0)
			abort();
		shm_unlink(name);	/* the mapping stays; nothing is left behind */
	}
	if (size > CTL_MAX_MSG)
		size = CTL_MAX_MSG;
	n = ctl_handle(data, size, reply);
	if (n < sizeof(struct ctl_hdr) || n > CTL_MAX_MSG || ctl_check(reply, n) != CTL_OK)
		abort();
	return 0;
}
