/*
 * ctl.h - the control protocol between FastCGI workers and the capture worker.
 *
 * One message per SOCK_SEQPACKET datagram over a unix socket: a fixed header,
 * then a payload whose size the message table bounds for each type. Either
 * side drops a message that fails ctl_check(). The version changes whenever
 * any payload layout does; a peer of another version gets CTL_ERROR.
 */
#ifndef KVMGATE_CTL_H
#define KVMGATE_CTL_H

#include <stdint.h>

#include "util.h"

#define CTL_VERSION 1
#define CTL_MAX_MSG 4096

struct ctl_hdr {
	uint16_t version;
	uint16_t type;		/* enum ctl_type */
	uint32_t len;		/* payload bytes after the header */
	uint32_t id;		/* chosen by the caller, echoed in the reply */
	int32_t status;		/* replies: 0, or an enum ctl_status */
};

enum ctl_type {
	CTL_PING = 1,		/* -> CTL_PONG */
	CTL_PONG,
	CTL_STATS,		/* -> CTL_STATS_REPLY */
	CTL_STATS_REPLY,
	CTL_ERROR,		/* payload: a NUL-terminated reason */
	CTL__TYPES
};

enum ctl_status {
	CTL_OK = 0,
	CTL_EVERSION = 1,	/* peer speaks another protocol version */
	CTL_EBADMSG = 2,	/* unknown type or size out of bounds */
	CTL_EINTERNAL = 3,
};

struct ctl_pong {
	uint64_t started_ns;	/* wall time the capture worker started */
	uint32_t pid;
	uint32_t pad;
};

struct ctl_stats_reply {
	uint64_t uptime_ms;
	uint64_t shm_generation;
	uint32_t sessions;	/* open device sessions */
	uint32_t slots_total, slots_used;
	uint32_t pad;
};

/* Name of a message type for logs; "unknown" for anything else. */
const char *ctl_type_name(uint32_t type);

/*
 * Checks a received message of n bytes against the table: header present,
 * version, known type, len matching n and within the type's bounds.
 * Returns CTL_OK or the ctl_status that explains the refusal.
 */
enum ctl_status ctl_check(const void *msg, size_t n) MUSTCHECK;

/*
 * Client side: connects to the control socket at path, sends one request and
 * waits up to timeout_ms for its reply, which must have reply_type and fit
 * reply_max bytes. Returns the reply's status (>= 0) with the payload copied
 * to reply and its size in *reply_len, or -1 (errno set; ETIMEDOUT on timeout)
 * when the capture worker cannot be reached or answers nonsense.
 */
int ctl_call(const char *path, uint16_t type, const void *payload, uint32_t len,
             uint16_t reply_type, void *reply, uint32_t reply_max,
             uint32_t *reply_len, int timeout_ms) MUSTCHECK;

#endif
