/*
 * ctl.c - control message table, checks and the client call.
 */
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const struct ctl_type_row {
	const char *name;
	uint32_t min, max;	/* payload bounds */
} types[CTL__TYPES] = {
	[CTL_PING]        = { "ping", 0, 0 },
	[CTL_PONG]        = { "pong", sizeof(struct ctl_pong), sizeof(struct ctl_pong) },
	[CTL_STATS]       = { "stats", 0, 0 },
	[CTL_STATS_REPLY] = { "stats_reply", sizeof(struct ctl_stats_reply),
	                      sizeof(struct ctl_stats_reply) },
	[CTL_ERROR]       = { "error", 1, 512 },
	[CTL_SESSION_ENSURE] = { "session_ensure", sizeof(struct ctl_session_ensure),
	                         sizeof(struct ctl_session_ensure) },
	[CTL_SESSION_REPLY] = { "session_reply", sizeof(struct ctl_session_reply),
	                        sizeof(struct ctl_session_reply) },
	[CTL_DEVICE_OP] = { "device_op", sizeof(struct ctl_device_op) + 1,
	                    sizeof(struct ctl_device_op) + CTL_OP_DATA_MAX },
	[CTL_DEVICE_OP_REPLY] = { "device_op_reply", sizeof(struct ctl_device_op_reply) + 1,
	                          sizeof(struct ctl_device_op_reply) + CTL_OP_DATA_MAX },
};

static const char *const op_names[OP__COUNT] = {
	[OP_KEYS] = "keys",
	[OP_TEXT] = "text",
	[OP_MOUSE_MOVE] = "mouse_move",
	[OP_MOUSE_CLICK] = "mouse_click",
	[OP_MOUSE_SCROLL] = "mouse_scroll",
	[OP_HID_RESET] = "hid_reset",
	[OP_POWER] = "power",
	[OP_POWER_STATE] = "power_state",
	[OP_HDMI_RESET] = "hdmi_reset",
	[OP_INFO] = "info",
	[OP_ISO_LIST] = "iso_list",
	[OP_ISO_MOUNT] = "iso_mount",
	[OP_ISO_UNMOUNT] = "iso_unmount",
	[OP_ISO_MOUNTED] = "iso_mounted",
};

static const char *const state_names[SS__COUNT] = {
	[SS_IDLE] = "idle",
	[SS_CONNECTING] = "connecting",
	[SS_AUTHENTICATING] = "authenticating",
	[SS_STREAMING] = "streaming",
	[SS_BACKING_OFF] = "backing_off",
	[SS_FAILED] = "failed",
};

static const char *const error_names[SE__COUNT] = {
	[SE_NONE] = "none",
	[SE_OFFLINE] = "device offline",
	[SE_AUTH] = "authentication failed",
	[SE_TIMEOUT] = "timeout",
	[SE_UNSUPPORTED] = "unsupported by this device kind",
	[SE_PROTOCOL] = "protocol error",
	[SE_CONFIG] = "configuration error",
	[SE_INVALID] = "invalid request",
	[SE_NO_SIGNAL] = "no video signal",
};

const char *session_state_name(uint32_t st)
{
	return st < SS__COUNT ? state_names[st] : "unknown";
}

const char *session_error_name(uint32_t e)
{
	return e < SE__COUNT ? error_names[e] : "unknown";
}

const char *dev_op_name(uint32_t op)
{
	return op < OP__COUNT && op_names[op] ? op_names[op] : "unknown";
}

const char *ctl_type_name(uint32_t type)
{
	return type < CTL__TYPES && types[type].name ? types[type].name : "unknown";
}

enum ctl_status ctl_check(const void *msg, size_t n)
{
	struct ctl_hdr h;

	if (n < sizeof h)
		return CTL_EBADMSG;
	memcpy(&h, msg, sizeof h);
	if (h.version != CTL_VERSION)
		return CTL_EVERSION;
	if (h.type >= CTL__TYPES || types[h.type].name == NULL)
		return CTL_EBADMSG;
	if (h.len != n - sizeof h || h.len < types[h.type].min || h.len > types[h.type].max)
		return CTL_EBADMSG;
	if (h.type == CTL_ERROR && ((const char *)msg)[n - 1] != '\0')
		return CTL_EBADMSG;
	if (h.type == CTL_SESSION_REPLY) {
		struct ctl_session_reply r;
		memcpy(&r, (const char *)msg + sizeof h, sizeof r);
		if (memchr(r.why, '\0', sizeof r.why) == NULL ||
		    memchr(r.firmware, '\0', sizeof r.firmware) == NULL)
			return CTL_EBADMSG;
	}
	/* Variable-sized messages end in their text's NUL. */
	if ((h.type == CTL_DEVICE_OP || h.type == CTL_DEVICE_OP_REPLY) &&
	    ((const char *)msg)[n - 1] != '\0')
		return CTL_EBADMSG;
	if (h.type == CTL_DEVICE_OP) {
		struct ctl_device_op op;
		memcpy(&op, (const char *)msg + sizeof h, sizeof op);
		if (op.len != h.len - sizeof op || op.op == 0 || op.op >= OP__COUNT ||
		    memchr(op.arg, '\0', sizeof op.arg) == NULL)
			return CTL_EBADMSG;
	}
	return CTL_OK;
}

int ctl_call(const char *path, uint16_t type, const void *payload, uint32_t len,
             uint16_t reply_type, void *reply, uint32_t reply_max,
             uint32_t *reply_len, int timeout_ms)
{
	static uint32_t next_id;
	uint8_t msg[CTL_MAX_MSG];
	struct ctl_hdr h = { CTL_VERSION, type, len, ++next_id, 0 }, rh;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	uint64_t deadline = now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	ssize_t n;
	int fd = -1, saved;

	if (sizeof h + len > sizeof msg || strlen(path) >= sizeof sun.sun_path) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	memcpy(msg, &h, sizeof h);
	if (len > 0)
		memcpy(msg + sizeof h, payload, len);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
	    send(fd, msg, sizeof h + len, MSG_NOSIGNAL) < 0)
		goto fail;
	for (;;) {
		int64_t left = (int64_t)(deadline - now_mono_ns()) / 1000000;
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (left <= 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		n = recv(fd, msg, sizeof msg, MSG_TRUNC);
		if (n < 0)
			goto fail;
		if (n == 0 || (size_t)n > sizeof msg || ctl_check(msg, (size_t)n) != CTL_OK) {
			errno = n == 0 ? ECONNRESET : EPROTO;
			goto fail;
		}
		memcpy(&rh, msg, sizeof rh);
		if (rh.id != h.id)
			continue;	/* not ours; cannot happen on a fresh socket */
		if (rh.type == CTL_ERROR) {
			*reply_len = 0;
			close(fd);
			return rh.status > 0 ? rh.status : CTL_EINTERNAL;
		}
		if (rh.type != reply_type || rh.len > reply_max) {
			errno = EPROTO;
			goto fail;
		}
		memcpy(reply, msg + sizeof rh, rh.len);
		*reply_len = rh.len;
		close(fd);
		return rh.status;
	}
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
