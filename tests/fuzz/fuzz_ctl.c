/*
 * fuzz_ctl.c - libFuzzer target for the control protocol: any datagram given
 * to the capture worker's handler. Every answer must itself pass ctl_check,
 * whatever came in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The database as the fuzzer sees it: devices 1-3 exist, of a kind without
 * a driver (their sessions fail at once, without I/O, and operations on
 * them are answered SE_UNSUPPORTED); the rest do not.
 */
static int fuzz_loader(uint64_t id, struct device_cfg *out, enum ctl_status *status, char *why,
                       size_t len)
{
	memset(out, 0, sizeof *out);
	*status = id >= 1 && id <= 3 ? CTL_OK : CTL_ENODEVICE;
	if (*status != CTL_OK) {
		snprintf(why, len, "no such device");
		return -1;
	}
	out->id = id;
	snprintf(out->kind, sizeof out->kind, "fuzz");
	return 0;
}

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
		if ((cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0)
			abort();
		ctl_device_loader = fuzz_loader;
	}
	if (size > CTL_MAX_MSG)
		size = CTL_MAX_MSG;
	n = ctl_handle(data, size, reply);
	if (n == 0)
		return 0;	/* a device operation: answered when it ends */
	if (n < sizeof(struct ctl_hdr) || n > CTL_MAX_MSG || ctl_check(reply, n) != CTL_OK)
		abort();
	return 0;
}
