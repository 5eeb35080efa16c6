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

#define CTL_VERSION 2
#define CTL_MAX_MSG 65536

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
	CTL_SESSION_ENSURE,	/* -> CTL_SESSION_REPLY, or CTL_ERROR */
	CTL_SESSION_REPLY,
	CTL_DEVICE_OP,		/* -> CTL_DEVICE_OP_REPLY once the device has done it, or CTL_ERROR */
	CTL_DEVICE_OP_REPLY,
	CTL__TYPES
};

enum ctl_status {
	CTL_OK = 0,
	CTL_EVERSION = 1,	/* peer speaks another protocol version */
	CTL_EBADMSG = 2,	/* unknown type or size out of bounds */
	CTL_EINTERNAL = 3,
	CTL_ENODEVICE = 4,	/* no such device, or it is disabled */
	CTL_EUNAVAILABLE = 5,	/* the database or the master key is unavailable */
};
/*
 * States of a device session. Transitions (session.c's table is the truth):
 *   idle -> connecting              on demand (session_ensure)
 *   connecting -> authenticating    the driver reached the device and holds a login
 *   authenticating -> streaming     the first frame arrived
 *   connecting|authenticating|streaming -> backing_off   an error, or no frame in time
 *   backing_off -> connecting       the backoff delay ran out and demand remains
 *   any -> idle                     no demand for KVMGATE_SESSION_IDLE_MS
 *   any -> failed                   a configuration error no retry can fix
 *   failed -> connecting            on demand with a fresh configuration
 */
enum session_state {
	SS_IDLE,
	SS_CONNECTING,
	SS_AUTHENTICATING,
	SS_STREAMING,
	SS_BACKING_OFF,
	SS_FAILED,
	SS__COUNT
};

/* Why a session is not streaming; values travel in control replies: never renumber. */
enum session_error {
	SE_NONE = 0,
	SE_OFFLINE = 1,		/* cannot connect, or the connection broke */
	SE_AUTH = 2,		/* the device refused the credentials */
	SE_TIMEOUT = 3,		/* no answer or no frame in time */
	SE_UNSUPPORTED = 4,	/* not something this device kind can do */
	SE_PROTOCOL = 5,	/* the device answered something unexpected */
	SE_CONFIG = 6,		/* missing credentials, bad URL, no free frame slot */
	SE_INVALID = 7,		/* an operation's arguments the device cannot take (a key name) */
	SE_NO_SIGNAL = 8,	/* online, but the device reports no video input (host off) */
	SE__COUNT
};

/*
 * Demand for a device's frames: the capture worker loads the device and its
 * sealed credentials from PostgreSQL itself (credentials never travel on the
 * socket), opens the session if it is idle or failed, keeps it open for the
 * idle period, and answers at once with where it stands.
 */
struct ctl_session_ensure {
	uint64_t device_id;
	uint64_t want_after;	/* the reader waits for a frame with a higher sequence number */
};

struct ctl_session_reply {
	uint64_t device_id;
	uint64_t frame_seq;	/* latest sequence number in the slot; 0: none yet */
	int32_t slot;		/* frame slot, -1 when the session has none */
	uint32_t state;		/* enum session_state */
	uint32_t error;		/* enum session_error: why it is not streaming */
	uint32_t attempts;	/* consecutive failed attempts */
	char why[128];		/* the last error in words, NUL-terminated */
	char firmware[32];	/* what the device reported, "" until known */
};

/*
 * What a CTL_DEVICE_OP asks of a device. Values travel on the socket: never
 * renumber. A driver announces which ones it implements (struct driver's
 * ops mask); any other is answered SE_UNSUPPORTED without touching the device.
 */
enum dev_op_kind {
	OP_KEYS = 1,		/* data: key combinations, one per line, pressed in order */
	OP_TEXT,		/* data: UTF-8 text to type; arg: keyboard layout ("" = us) */
	OP_MOUSE_MOVE,		/* x, y */
	OP_MOUSE_CLICK,		/* x, y (-1, -1: where the pointer is), button, count (1 or 2) */
	OP_MOUSE_SCROLL,	/* x, y, count: wheel steps, positive = down */
	OP_HID_RESET,
	OP_POWER,		/* arg: on, off, off_hard, reset, cycle, power_short, power_long */
	OP_POWER_STATE,		/* result: {"power":"on"|"off"|"unknown","led":{...}} */
	OP_HDMI_RESET,
	OP_INFO,		/* result: the device's own description, JSON */
	OP_ISO_LIST,		/* result: {"images":[...]} */
	OP_ISO_MOUNT,		/* data: image name; flags OPF_DISK: as a disk, else a CD-ROM */
	OP_ISO_UNMOUNT,
	OP_ISO_MOUNTED,		/* result: {"image":...|null,"cdrom":bool} */
	OP__COUNT
};

#define OPF_DISK 1u
#define CTL_OP_DATA_MAX 32768	/* bytes of data, with its NUL */

/* Mouse buttons of OP_MOUSE_CLICK. */
enum { BUTTON_LEFT = 1, BUTTON_RIGHT = 2, BUTTON_MIDDLE = 3 };

/*
 * A device operation, followed by len bytes of data ending in NUL (len >= 1).
 * Coordinates are pixels of the device's current screen; the driver maps them
 * to its device's range. The capture worker answers within timeout_ms
 * (bounded by it to 5 min): done, or why not.
 */
struct ctl_device_op {
	uint64_t device_id;
	uint32_t op;		/* enum dev_op_kind */
	int32_t x, y;
	int32_t count;
	uint32_t button;
	uint32_t flags;		/* OPF_* */
	uint32_t timeout_ms;
	uint32_t len;		/* bytes of data after this struct, NUL included */
	char arg[32];		/* NUL-terminated: layout, power action */
};

/*
 * The answer, followed by a NUL-terminated text: the result as JSON for the
 * ops that return something ("" otherwise), or the reason when error != 0.
 */
struct ctl_device_op_reply {
	uint64_t device_id;
	uint32_t error;		/* enum session_error; SE_NONE: done */
	uint32_t state;		/* enum session_state of the device's session */
	uint32_t width, height;	/* current screen size, 0 when unknown */
};

/* Name of an operation for logs and audit ("keys", "text", ...); "unknown" otherwise. */
const char *dev_op_name(uint32_t op);

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

/* Names of session states and errors, for logs and replies; "unknown" otherwise. */
const char *session_state_name(uint32_t st);
const char *session_error_name(uint32_t e);

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
