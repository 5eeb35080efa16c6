/*
 * audit.h - the tamper-evident audit log: one hash chain per organisation.
 *
 * A caller fills a struct audit_event and calls audit_append() before it acts;
 * when that fails the action must not happen. Each event is stored with the
 * exact canonical bytes that were hashed (sql/005_audit.sql):
 *
 *   canon    = {"body":<body>,"org":<id>,"seq":<n>,"ts":"<UTC>","v":1}
 *   row_hash = SHA-256(prev_hash || canon)
 *
 * <body> is built here by audit_canon_json(), the one canonical serialiser:
 * object keys sorted by their UTF-8 bytes, no whitespace, control characters,
 * DEL and every non-ASCII character written as \uXXXX (invalid UTF-8 and
 * U+0000 as \ufffd), integers in decimal, other numbers in the shortest form
 * that reads back to the same double. The database adds seq and ts inside a
 * per-organisation lock.
 *
 * Verification walks a chain in seq order, from the database or from an
 * export file, and reports the first broken event and why. Checkpoints are
 * events whose arguments carry an Ed25519 signature over (organisation,
 * size, head hash, time); verification checks every one it meets.
 *
 * Trust: a checkpoint carries its own public key, so that an export verifies
 * offline. Whoever can write the database can also sign with a key of their
 * own; pin the real key (audit_pubkey_read, `kvmgate audit verify --pubkey`)
 * to rule that out. What no chain proves: actions that were never recorded,
 * and events removed from the end after the last checkpoint kept elsewhere.
 */
#ifndef KVMGATE_AUDIT_H
#define KVMGATE_AUDIT_H

#include <stdio.h>

#include <json-c/json.h>

#include "buf.h"
#include "util.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_PUBKEY_LEN 32

enum audit_actor { AUDIT_ACTOR_SYSTEM, AUDIT_ACTOR_USER, AUDIT_ACTOR_TOKEN, AUDIT_ACTOR_CLI };
enum audit_client {
	AUDIT_CLIENT_SYSTEM, AUDIT_CLIENT_MCP, AUDIT_CLIENT_REST, AUDIT_CLIENT_DASHBOARD,
	AUDIT_CLIENT_CLI,
};
/* PENDING is the intent recorded before a device action; its result follows
 * as a second event. */
enum audit_outcome { AUDIT_OK, AUDIT_DENIED, AUDIT_ERROR, AUDIT_PENDING };

/*
 * One event, filled by the caller. Every pointer is borrowed for the length
 * of the call; NULL strings and ids <= 0 are recorded as null.
 */
struct audit_event {
	long long org_id;		/* required */
	const char *action;		/* required: tool name or "GET /api/v1/..." */
	enum audit_actor actor;
	long long user_id;
	const char *user;		/* username at the time */
	long long token_id;
	const char *token;		/* token name at the time */
	enum audit_client client;
	const char *client_name;	/* MCP clientInfo name, user agent, ... */
	const char *client_version;
	const char *source_ip;		/* textual IPv4 or IPv6 address */
	long long device_id;
	const char *device;		/* device name at the time */
	json_object *args;		/* arguments, not modified; secrets are
					 * redacted in what is stored */
	enum audit_outcome outcome;
	const char *reason;		/* why denied or failed */
	long long latency_ms;		/* < 0: unknown */
	const char *mcp_session;
	const char *request_id;
};

/* Sets ev to an event of org with that action, system actor, outcome ok,
 * latency unknown and everything else empty. */
void audit_event_init(struct audit_event *ev, long long org_id, const char *action);

/*
 * Appends ev to its organisation's chain and returns the new sequence
 * number (> 0), or -1 (logged) when nothing was recorded: the caller must
 * then not act. Outside a transaction the event is committed on return;
 * inside one it commits with it, and other appends of the organisation wait
 * until then. Needs READ COMMITTED.
 */
long long audit_append(const struct audit_event *ev) MUSTCHECK;

/*
 * audit_append() for a body audit_event_body() already made: the text is
 * appended as it is. Returns the sequence number or -1.
 */
long long audit_append_body(long long org_id, const char *body) MUSTCHECK;

/* The end of a chain. */
struct audit_head {
	long long seq;				/* 0: no event yet */
	char hash[2 * AUDIT_HASH_LEN + 1];	/* hex; the anchor's when empty */
	char time[40];				/* of the last event; "" when empty */
};

/* Reads org's chain head into out. Returns 0, or -1 on a database error. */
int audit_head(long long org_id, struct audit_head *out) MUSTCHECK;

/* Why a chain is broken; AUDIT_INTACT when it is not. */
enum audit_problem {
	AUDIT_INTACT,
	AUDIT_HASH_MISMATCH,	/* row_hash != SHA-256(prev_hash || canon): altered */
	AUDIT_GAP,		/* a sequence number is missing: deleted */
	AUDIT_FORK,		/* two events follow the same event: inserted */
	AUDIT_REPLACED,		/* the event is not the one its successor was chained to */
	AUDIT_PREV_MISMATCH,	/* prev_hash is not the previous event's hash */
	AUDIT_DUPLICATE,	/* a sequence number repeats or goes backwards */
	AUDIT_CANON_INVALID,	/* canon is not canonical or disagrees with the row */
	AUDIT_COLUMN_MISMATCH,	/* a queryable column disagrees with canon */
	AUDIT_CHECKPOINT_INVALID, /* bad signature, wrong head or unpinned key */
	AUDIT_MALFORMED,	/* an export line that cannot be read, or truncation */
};

/* The stable name of a problem ("hash_mismatch", ...). */
const char *audit_problem_name(enum audit_problem p);

/* What a verification found. */
struct audit_report {
	long long org_id;
	long long events_checked;		/* verified before the first break */
	long long anchor_seq;			/* where the chain starts (0: genesis) */
	char anchor_hash[2 * AUDIT_HASH_LEN + 1];
	long long head_seq;			/* last verified event (anchor if none) */
	char head_hash[2 * AUDIT_HASH_LEN + 1];
	char head_time[40];
	long long checkpoints;			/* checkpoint signatures verified */
	long long last_checkpoint_seq;		/* 0: none */
	char checkpoint_key[9];			/* key id (hex) of the last one */
	bool checkpoint_keys_differ;		/* more than one key was seen */
	bool pinned;				/* signatures checked against a pinned key */
	enum audit_problem problem;
	long long broken_seq;			/* first broken sequence number, or 0 */
	char detail[320];			/* human explanation of the problem */
};

/*
 * Verifies org's chain in the database (one snapshot, batches in seq order).
 * pinned: a public key every checkpoint must be signed with, or NULL.
 * Returns 0 when the walk completed, whatever it found (see rep->problem),
 * or -1 on a database error. Runs its own transaction, so it refuses (-1) to
 * run inside one; so do audit_export and audit_checkpoint.
 */
int audit_verify_db(long long org_id, const uint8_t *pinned, struct audit_report *rep) MUSTCHECK;

/*
 * Verifies an export (audit_export's format) read from f with the same
 * checks, without a database. A seekable f lets a broken link be told apart
 * as a fork. Returns 0 when the walk completed (see rep->problem), or -1 on
 * a read error (errno set).
 */
int audit_verify_stream(FILE *f, const uint8_t *pinned, struct audit_report *rep) MUSTCHECK;

/* Writes rep as one JSON object (KVMFleet's integrity shape plus ours). The
 * caller owns the result. */
json_object *audit_report_json(const struct audit_report *rep);

/*
 * Writes org's chain to out as JSON lines: a header (organisation, anchor),
 * one line per event {"canon","prev_hash","row_hash","seq"} with canon as a
 * JSON string of the stored bytes, and a trailer (count, head). Read from one
 * snapshot. Returns 0, or -1 on a database or write error (logged).
 */
int audit_export(long long org_id, const char *org_name, FILE *out) MUSTCHECK;

/*
 * Signs org's current head with the Ed25519 key in key_file (created, 0600,
 * when missing) and appends the checkpoint as an event of action
 * "audit.checkpoint"; the head cannot move in between. On success returns 0
 * and, when out is not NULL, the checkpoint event's own seq, hash and time.
 * Skips (returns 0, *skipped true) when the head is already a checkpoint.
 */
int audit_checkpoint(long long org_id, const char *key_file, const struct audit_event *who,
                     struct audit_head *out, bool *skipped) MUSTCHECK;

/*
 * Reads the public key of key_file (a private key, created 0600 when missing
 * and create is set), into pub. Returns 0, or -1 with the reason on stderr.
 */
int audit_key_public(const char *key_file, bool create, uint8_t pub[AUDIT_PUBKEY_LEN]) MUSTCHECK;

/*
 * Reads a public key to pin from path: a PEM public key, a PEM private key,
 * or 64 hex digits. Returns 0, or -1 with the reason on stderr.
 */
int audit_pubkey_read(const char *path, uint8_t pub[AUDIT_PUBKEY_LEN]) MUSTCHECK;

/* The key id of a public key: the first 4 bytes of SHA-256(name || 0x0A ||
 * 0x01 || key) as in C2SP signed notes, in hex. */
void audit_key_id(const uint8_t pub[AUDIT_PUBKEY_LEN], char out[9]);

/* ---- building blocks, public for the verifier and the tests ----------- */

/*
 * Appends the canonical JSON of o (NULL: null) to out. Returns 0, or -1 when
 * o nests deeper than 64 levels or two keys of one object are the same once
 * invalid UTF-8 is replaced (out then holds a partial result).
 */
int audit_canon_json(json_object *o, struct buf *out) MUSTCHECK;

/* True when an argument named key is a secret whose value is not stored. */
bool audit_key_is_secret(const char *key);

/* A copy of args with every secret value replaced by "[redacted]", at any
 * depth. The caller owns the result (NULL for NULL). */
json_object *audit_redact(json_object *args);

/*
 * Appends ev's canonical body to out: the text audit_append() sends.
 * Returns 0, or -1 with the reason in err when ev is not valid.
 */
int audit_event_body(const struct audit_event *ev, struct buf *out, char *err,
                     size_t errlen) MUSTCHECK;

/* The text of a checkpoint note (C2SP tlog-checkpoint body with a time
 * extension line), which its signature covers. */
void audit_note(long long org_id, long long size, const uint8_t head[AUDIT_HASH_LEN],
                const char *time, struct buf *out);

#endif
