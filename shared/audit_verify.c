/*
 * audit_verify.c - walks a chain in seq order and finds the first broken
 * event. One verifier takes rows from either source, the database or an
 * export file, so both apply the same checks; the database adds one more,
 * the queryable columns against canon.
 *
 * Per event, in this order: the sequence number (repeat: fork or duplicate;
 * skip: gap), row_hash = SHA-256(prev_hash || canon), the link to the
 * previous event, canon itself (canonical, and naming this organisation and
 * seq), the columns, and for checkpoints the signature. A broken link is
 * decided one event later: when the next event still chains to this one,
 * this one is genuine and the previous event was replaced.
 */
#include "audit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypt.h"
#include "db.h"
#include "log.h"

#define PAGE_ROWS "5000"
#define PARSE_DEPTH 100		/* above audit_canon_json's limit plus canon's own levels */
#define TS_LEN 27		/* 2026-01-02T03:04:05.123456Z */

static const char *const problem_names[] = {
	[AUDIT_INTACT] = "intact",
	[AUDIT_HASH_MISMATCH] = "hash_mismatch",
	[AUDIT_GAP] = "gap",
	[AUDIT_FORK] = "fork",
	[AUDIT_REPLACED] = "replaced",
	[AUDIT_PREV_MISMATCH] = "prev_mismatch",
	[AUDIT_DUPLICATE] = "duplicate",
	[AUDIT_CANON_INVALID] = "canon_invalid",
	[AUDIT_COLUMN_MISMATCH] = "column_mismatch",
	[AUDIT_CHECKPOINT_INVALID] = "checkpoint_invalid",
	[AUDIT_MALFORMED] = "malformed",
};

const char *audit_problem_name(enum audit_problem p)
{
	return (unsigned)p < ARRAY_LEN(problem_names) ? problem_names[p] : "unknown";
}

/*
 * The queryable columns and where canon keeps each: obj NULL is canon's top
 * level, "" its body, else a member object of the body. The database query
 * selects them in this order, after its five fixed columns.
 */
enum col_kind { COL_TEXT, COL_INT, COL_IP, COL_SQL };
static const struct column {
	const char *name;
	const char *obj, *key;
	enum col_kind kind;
} columns[] = {
	{ "occurred_at", NULL, "ts", COL_TEXT },
	{ "action", "", "action", COL_TEXT },
	{ "actor_kind", "actor", "kind", COL_TEXT },
	{ "actor_user_id", "actor", "user_id", COL_INT },
	{ "actor_user", "actor", "user", COL_TEXT },
	{ "actor_token_id", "actor", "token_id", COL_INT },
	{ "actor_token", "actor", "token", COL_TEXT },
	{ "client_kind", "client", "kind", COL_TEXT },
	{ "client_name", "client", "name", COL_TEXT },
	{ "client_version", "client", "version", COL_TEXT },
	{ "source_ip", "", "source_ip", COL_IP },
	{ "device_id", "", "device_id", COL_INT },
	{ "device", "", "device", COL_TEXT },
	{ "outcome", "", "outcome", COL_TEXT },
	{ "reason", "", "reason", COL_TEXT },
	{ "latency_ms", "", "latency_ms", COL_INT },
	{ "mcp_session_id", "", "mcp_session", COL_TEXT },
	{ "request_id", "", "request_id", COL_TEXT },
	{ "args", "", "args", COL_SQL },	/* compared by PostgreSQL: "t" or "f" */
};
#define NCOLUMNS ((int)ARRAY_LEN(columns))

/* One event as a source hands it over; pointers valid for the feed call. */
struct vrow {
	long long seq;
	long long id;			/* row id, or line number in an export */
	const char *canon;
	size_t canon_len;
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	bool bad_hashes;		/* stored hashes not 32 bytes */
	const char *const *cols;	/* NULL for exports; NULL entries are SQL NULL */
};

/* Finds another event whose prev_hash is prev: 1 (its seq in *seq), 0 none,
 * -1 cannot tell. */
typedef int sibling_fn(void *ctx, const uint8_t prev[AUDIT_HASH_LEN], long long id,
                       long long *seq);

struct verifier {
	struct audit_report *rep;
	const uint8_t *pinned;
	long long first_seq, next_seq;
	uint8_t expect[AUDIT_HASH_LEN];	/* hash the next event must chain to */
	bool have_last;
	long long last_seq;
	uint8_t last_prev[AUDIT_HASH_LEN], last_hash[AUDIT_HASH_LEN];
	struct {			/* the report's head before the last event */
		long long seq;
		char hash[2 * AUDIT_HASH_LEN + 1], time[40];
	} before;
	bool pending;			/* a broken link waiting for the next event */
	long long pending_seq;
	uint8_t pending_hash[AUDIT_HASH_LEN];
	sibling_fn *sibling;
	void *ctx;
	json_tokener *tok;
	struct buf a, b;		/* scratch for serialisations */
};

static void verifier_init(struct verifier *v, struct audit_report *rep, const uint8_t *pinned,
                          sibling_fn *sibling, void *ctx)
{
	memset(v, 0, sizeof *v);
	v->rep = rep;
	v->pinned = pinned;
	v->sibling = sibling;
	v->ctx = ctx;
	v->tok = json_tokener_new_ex(PARSE_DEPTH);
	if (v->tok == NULL)
		abort();
	rep->pinned = pinned != NULL;
}

/* Sets where the chain starts: the anchor's seq and hash (hex). 0 or -1. */
static int verifier_anchor(struct verifier *v, long long seq, const char *hash_hex)
{
	struct audit_report *rep = v->rep;

	if (seq < 0 || strlen(hash_hex) != 2 * AUDIT_HASH_LEN ||
	    hex_decode(hash_hex, AUDIT_HASH_LEN, v->expect) < 0)
		return -1;
	rep->anchor_seq = rep->head_seq = seq;
	hex_encode(v->expect, AUDIT_HASH_LEN, rep->anchor_hash);
	memcpy(rep->head_hash, rep->anchor_hash, sizeof rep->head_hash);
	v->first_seq = v->next_seq = seq + 1;
	return 0;
}

static void verifier_cleanup(struct verifier *v)
{
	json_tokener_free(v->tok);
	buf_free(&v->a);
	buf_free(&v->b);
}

/* Records the first break; returns true so callers can `return broken(...)`. */
static bool broken(struct verifier *v, long long seq, enum audit_problem p, const char *fmt, ...)
	PRINTF_LIKE(4, 5);
static bool broken(struct verifier *v, long long seq, enum audit_problem p, const char *fmt, ...)
{
	va_list ap;

	v->rep->problem = p;
	v->rep->broken_seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->rep->detail, sizeof v->rep->detail, fmt, ap);
	va_end(ap);
	return true;
}

static void row_hash(const struct vrow *r, uint8_t out[AUDIT_HASH_LEN])
{
	sha256_cat(r->prev, AUDIT_HASH_LEN, r->canon, r->canon_len, out);
}

static json_object *parse(struct verifier *v, const char *text, size_t len)
{
	json_object *o;

	json_tokener_reset(v->tok);
	o = json_tokener_parse_ex(v->tok, text, (int)len);
	if (o != NULL && json_tokener_get_parse_end(v->tok) != len) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *m = NULL;

	return json_object_object_get_ex(o, key, &m) ? m : NULL;
}

static bool ts_shaped(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (strlen(s) != TS_LEN)
		return false;
	for (int i = 0; i < TS_LEN; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return false;
	return true;
}

/*
 * Parses canon and checks that it is exactly what audit_append writes for
 * this row: canonical, the five members, this organisation and seq. Returns
 * the parsed canon (caller puts) or NULL with the break recorded.
 */
static json_object *canon_check(struct verifier *v, const struct vrow *r)
{
	json_object *c = parse(v, r->canon, r->canon_len), *body, *m;
	const char *why = NULL;

	if (c == NULL || !json_object_is_type(c, json_type_object))
		why = "canon is not a JSON object";
	else if (json_object_object_length(c) != 5 ||
	         !json_object_is_type(body = member(c, "body"), json_type_object) ||
	         !json_object_is_type(member(c, "org"), json_type_int) ||
	         !json_object_is_type(member(c, "seq"), json_type_int) ||
	         !json_object_is_type(m = member(c, "ts"), json_type_string) ||
	         !ts_shaped(json_object_get_string(m)) ||
	         !json_object_is_type(member(c, "v"), json_type_int) ||
	         json_object_get_int64(member(c, "v")) != 1 ||
	         !json_object_is_type(member(body, "action"), json_type_string))
		why = "canon lacks body, org, seq, ts or v, or has more";
	else if (json_object_get_int64(member(c, "org")) != v->rep->org_id)
		why = "canon names another organisation";
	else if (json_object_get_int64(member(c, "seq")) != r->seq)
		why = "canon names another seq";
	if (why == NULL) {
		buf_reset(&v->a);
		if (audit_canon_json(c, &v->a) < 0 || v->a.len != r->canon_len ||
		    memcmp(v->a.data, r->canon, r->canon_len) != 0)
			why = "canon is not in canonical form";
	}
	if (why != NULL) {
		broken(v, r->seq, AUDIT_CANON_INVALID, "seq %lld: %s", r->seq, why);
		json_object_put(c);
		return NULL;
	}
	return c;
}

static bool same_ip(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int af = strchr(a, ':') ? AF_INET6 : AF_INET;

	return (strchr(b, ':') ? AF_INET6 : AF_INET) == af && inet_pton(af, a, x) == 1 &&
	       inet_pton(af, b, y) == 1 && memcmp(x, y, af == AF_INET ? 4 : 16) == 0;
}

/* Whether column text col (NULL: SQL NULL) says what canon value j says. */
static bool column_matches(struct verifier *v, const struct column *c, const char *col,
                           json_object *j)
{
	char num[24];

	if (c->kind == COL_SQL)
		return col != NULL && strcmp(col, "t") == 0;
	if (j == NULL || json_object_is_type(j, json_type_null))
		return col == NULL;
	if (col == NULL)
		return false;
	switch (c->kind) {
	case COL_TEXT:
		return json_object_is_type(j, json_type_string) &&
		       strcmp(col, json_object_get_string(j)) == 0;
	case COL_INT:
		snprintf(num, sizeof num, "%lld", (long long)json_object_get_int64(j));
		return json_object_is_type(j, json_type_int) && strcmp(col, num) == 0;
	case COL_IP:
		return json_object_is_type(j, json_type_string) &&
		       same_ip(col, json_object_get_string(j));
	case COL_SQL:
		return strcmp(col, "t") == 0;
	}
	return false;
}

static bool columns_check(struct verifier *v, const struct vrow *r, json_object *canon)
{
	json_object *body = member(canon, "body");

	for (int i = 0; i < NCOLUMNS; i++) {
		const struct column *c = &columns[i];
		json_object *holder = c->obj == NULL ? canon
		                    : c->obj[0] == '\0' ? body : member(body, c->obj);
		if (!column_matches(v, c, r->cols[i], holder ? member(holder, c->key) : NULL))
			return broken(v, r->seq, AUDIT_COLUMN_MISMATCH,
			              "seq %lld: column %s (%s) disagrees with canon", r->seq,
			              c->name, r->cols[i] ? r->cols[i] : "NULL");
	}
	return false;
}

static bool signature_ok(const uint8_t pub[AUDIT_PUBKEY_LEN], const struct buf *msg,
                         const uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, AUDIT_PUBKEY_LEN);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok;

	ok = k != NULL && c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
	     EVP_DigestVerify(c, sig, 64, (const unsigned char *)msg->data, msg->len) == 1;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return ok;
}

static const char *str_member(json_object *o, const char *key)
{
	json_object *m = member(o, key);

	return json_object_is_type(m, json_type_string) ? json_object_get_string(m) : NULL;
}

/*
 * A checkpoint event must sign exactly the head it follows: size = seq - 1,
 * head = its own prev_hash, with a valid signature by the key it names (the
 * pinned key, when there is one).
 */
static bool checkpoint_check(struct verifier *v, const struct vrow *r, json_object *canon)
{
	json_object *args = member(member(canon, "body"), "args");
	const char *origin = str_member(args, "origin"), *head = str_member(args, "head");
	const char *time = str_member(args, "time"), *pub_hex = str_member(args, "pubkey");
	const char *sig_hex = str_member(args, "signature"), *key_id = str_member(args, "key_id");
	char want_origin[64], prev_hex[2 * AUDIT_HASH_LEN + 1], id[9];
	uint8_t pub[AUDIT_PUBKEY_LEN], sig[64];
	bool ok;

	snprintf(want_origin, sizeof want_origin, "kvmgate/audit/org/%lld", v->rep->org_id);
	hex_encode(r->prev, AUDIT_HASH_LEN, prev_hex);
	if (origin == NULL || head == NULL || time == NULL || pub_hex == NULL || sig_hex == NULL ||
	    key_id == NULL || !json_object_is_type(member(args, "size"), json_type_int) ||
	    strlen(pub_hex) != 2 * AUDIT_PUBKEY_LEN || strlen(sig_hex) != 128 ||
	    hex_decode(pub_hex, AUDIT_PUBKEY_LEN, pub) < 0 || hex_decode(sig_hex, 64, sig) < 0)
		return broken(v, r->seq, AUDIT_CHECKPOINT_INVALID,
		              "seq %lld: checkpoint fields missing or malformed", r->seq);
	if (strcmp(origin, want_origin) != 0 ||
	    json_object_get_int64(member(args, "size")) != r->seq - 1 || strcmp(head, prev_hex) != 0)
		return broken(v, r->seq, AUDIT_CHECKPOINT_INVALID,
		              "seq %lld: checkpoint does not sign the head it follows", r->seq);
	audit_key_id(pub, id);
	if (strcmp(id, key_id) != 0)
		return broken(v, r->seq, AUDIT_CHECKPOINT_INVALID,
		              "seq %lld: checkpoint key id %s does not match its key", r->seq, key_id);
	if (v->pinned != NULL && memcmp(pub, v->pinned, AUDIT_PUBKEY_LEN) != 0)
		return broken(v, r->seq, AUDIT_CHECKPOINT_INVALID,
		              "seq %lld: checkpoint signed by key %s, not the pinned key", r->seq, id);
	buf_reset(&v->b);
	audit_note(v->rep->org_id, r->seq - 1, r->prev, time, &v->b);
	ok = signature_ok(pub, &v->b, sig);
	if (!ok)
		return broken(v, r->seq, AUDIT_CHECKPOINT_INVALID,
		              "seq %lld: checkpoint signature does not verify (key %s)", r->seq, id);
	if (v->rep->checkpoints > 0 && strcmp(v->rep->checkpoint_key, id) != 0)
		v->rep->checkpoint_keys_differ = true;
	memcpy(v->rep->checkpoint_key, id, sizeof id);
	v->rep->checkpoints++;
	v->rep->last_checkpoint_seq = r->seq;
	return false;
}

static void accept_row(struct verifier *v, const struct vrow *r, const char *ts)
{
	struct audit_report *rep = v->rep;

	v->before.seq = rep->head_seq;
	memcpy(v->before.hash, rep->head_hash, sizeof v->before.hash);
	memcpy(v->before.time, rep->head_time, sizeof v->before.time);
	rep->events_checked++;
	rep->head_seq = r->seq;
	hex_encode(r->hash, AUDIT_HASH_LEN, rep->head_hash);
	snprintf(rep->head_time, sizeof rep->head_time, "%s", ts ? ts : "");
	v->have_last = true;
	v->last_seq = r->seq;
	memcpy(v->last_prev, r->prev, AUDIT_HASH_LEN);
	memcpy(v->last_hash, r->hash, AUDIT_HASH_LEN);
	memcpy(v->expect, r->hash, AUDIT_HASH_LEN);
	v->next_seq = r->seq + 1;
}

/*
 * The event after a broken link decides it. If it chains to the pending
 * event, that one's hash is vouched for, so the event before it is the one
 * that changed; otherwise the link itself is what is known to be broken.
 */
static bool resolve_pending(struct verifier *v, const struct vrow *r)
{
	struct audit_report *rep = v->rep;
	char was[2 * AUDIT_HASH_LEN + 1];
	uint8_t h[AUDIT_HASH_LEN];

	if (r != NULL && !r->bad_hashes)
		row_hash(r, h);
	if (r != NULL && !r->bad_hashes && r->seq == v->pending_seq + 1 &&
	    memcmp(r->prev, v->pending_hash, AUDIT_HASH_LEN) == 0 &&
	    memcmp(h, r->hash, AUDIT_HASH_LEN) == 0 && v->pending_seq > v->first_seq) {
		hex_encode(v->last_hash, AUDIT_HASH_LEN, was);
		rep->events_checked--;
		rep->head_seq = v->before.seq;
		memcpy(rep->head_hash, v->before.hash, sizeof rep->head_hash);
		memcpy(rep->head_time, v->before.time, sizeof rep->head_time);
		return broken(v, v->pending_seq - 1, AUDIT_REPLACED,
		              "seq %lld is not the event seq %lld was chained to (its hash is %.16s...)",
		              v->pending_seq - 1, v->pending_seq, was);
	}
	if (v->pending_seq == v->first_seq)
		return broken(v, v->pending_seq, AUDIT_PREV_MISMATCH,
		              "seq %lld does not chain to the anchor (seq %lld)", v->pending_seq,
		              rep->anchor_seq);
	return broken(v, v->pending_seq, AUDIT_PREV_MISMATCH,
	              "seq %lld does not chain to seq %lld (one of them was replaced)",
	              v->pending_seq, v->pending_seq - 1);
}

/* Checks one event; returns true once the chain is known broken. */
static bool verifier_feed(struct verifier *v, const struct vrow *r)
{
	uint8_t h[AUDIT_HASH_LEN];
	char got[2 * AUDIT_HASH_LEN + 1];
	json_object *canon = NULL, *body;
	const char *action;
	long long sib;
	bool stop;

	if (v->pending)
		return resolve_pending(v, r);
	if (v->have_last && r->seq == v->last_seq) {
		if (!r->bad_hashes && memcmp(r->hash, v->last_hash, AUDIT_HASH_LEN) == 0)
			return broken(v, r->seq, AUDIT_DUPLICATE, "seq %lld appears twice", r->seq);
		if (!r->bad_hashes && memcmp(r->prev, v->last_prev, AUDIT_HASH_LEN) == 0)
			return broken(v, r->seq, AUDIT_FORK,
			              "two events claim seq %lld, both following seq %lld", r->seq,
			              r->seq - 1);
		return broken(v, r->seq, AUDIT_DUPLICATE, "seq %lld appears twice", r->seq);
	}
	if (r->seq < v->next_seq)
		return broken(v, r->seq, AUDIT_DUPLICATE, "seq %lld comes after seq %lld",
		              r->seq, v->next_seq - 1);
	if (r->seq > v->next_seq)
		return r->seq == v->next_seq + 1
			? broken(v, v->next_seq, AUDIT_GAP, "seq %lld is missing", v->next_seq)
			: broken(v, v->next_seq, AUDIT_GAP, "seq %lld to %lld are missing",
			         v->next_seq, r->seq - 1);
	if (r->bad_hashes)
		return broken(v, r->seq, AUDIT_HASH_MISMATCH, "seq %lld: stored hashes are not 32 bytes",
		              r->seq);
	row_hash(r, h);
	if (memcmp(h, r->hash, AUDIT_HASH_LEN) != 0) {
		hex_encode(h, AUDIT_HASH_LEN, got);
		return broken(v, r->seq, AUDIT_HASH_MISMATCH,
		              "seq %lld: row_hash is not SHA-256(prev_hash || canon) (computed %.16s...)",
		              r->seq, got);
	}
	if (memcmp(r->prev, v->expect, AUDIT_HASH_LEN) != 0) {
		if (v->sibling != NULL && v->sibling(v->ctx, r->prev, r->id, &sib) == 1)
			return broken(v, r->seq, AUDIT_FORK,
			              "seq %lld chains to seq %lld, which seq %lld already follows",
			              r->seq, sib - 1, sib);
		v->pending = true;
		v->pending_seq = r->seq;
		memcpy(v->pending_hash, r->hash, AUDIT_HASH_LEN);
		return false;
	}
	if ((canon = canon_check(v, r)) == NULL)
		return true;
	body = member(canon, "body");
	action = json_object_get_string(member(body, "action"));
	stop = (r->cols != NULL && columns_check(v, r, canon)) ||
	       (strcmp(action, "audit.checkpoint") == 0 && checkpoint_check(v, r, canon));
	if (!stop)
		accept_row(v, r, json_object_get_string(member(canon, "ts")));
	json_object_put(canon);
	return stop;
}

/* At the end of the rows: a link still pending is reported as it stands. */
static void verifier_end(struct verifier *v)
{
	if (v->pending && v->rep->problem == AUDIT_INTACT)
		resolve_pending(v, NULL);
}

/* ---- from the database -------------------------------------------------- */

struct db_ctx {
	const char *org;
};

static int db_sibling(void *ctx, const uint8_t prev[AUDIT_HASH_LEN], long long id,
                      long long *seq)
{
	static const char sql[] =
		"SELECT seq FROM audit_events WHERE org_id = $1 AND prev_hash = decode($2, 'hex') "
		"AND id <> $3 ORDER BY seq LIMIT 1";
	struct db_ctx *c = ctx;
	char hex[2 * AUDIT_HASH_LEN + 1], ids[24];
	const char *params[3] = { c->org, hex, ids };
	PGresult *r;
	int found;

	hex_encode(prev, AUDIT_HASH_LEN, hex);
	snprintf(ids, sizeof ids, "%lld", id);
	if ((r = db_query(sql, 3, params)) == NULL)
		return -1;
	found = PQntuples(r) > 0;
	if (found)
		*seq = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return found;
}

static int decode_hash(const char *hex, uint8_t out[AUDIT_HASH_LEN])
{
	return strlen(hex) == 2 * AUDIT_HASH_LEN && hex_decode(hex, AUDIT_HASH_LEN, out) == 0
		? 0 : -1;
}

int audit_verify_db(long long org_id, const uint8_t *pinned, struct audit_report *rep)
{
	static const char anchor_sql[] =
		"SELECT seq, encode(hash, 'hex') FROM audit_anchors WHERE org_id = $1";
	/* Five fixed columns, then those of the columns table, in its order. */
	static const char page_sql[] =
		"SELECT id, seq, canon, encode(prev_hash, 'hex'), encode(row_hash, 'hex'), "
		"  to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
		"  action, actor_kind, actor_user_id, actor_user, actor_token_id, actor_token, "
		"  client_kind, client_name, client_version, host(source_ip), device_id, device, "
		"  outcome, reason, latency_ms, mcp_session_id, request_id, "
		"  args IS NOT DISTINCT FROM audit_canon_body(canon) -> 'args' "
		"FROM audit_events WHERE org_id = $1 AND seq >= $2 AND (seq > $2 OR id > $3) "
		"ORDER BY seq, id LIMIT " PAGE_ROWS;
	char org[24], last_seq[24] = "0", last_id[24] = "0";
	const char *params[3] = { org, last_seq, last_id };
	const char *cols[NCOLUMNS];
	struct db_ctx ctx = { org };
	struct verifier v;
	PGresult *r = NULL;
	bool stop = false;
	int rows, rc = -1;

	memset(rep, 0, sizeof *rep);
	rep->org_id = org_id;
	snprintf(org, sizeof org, "%lld", org_id);
	verifier_init(&v, rep, pinned, db_sibling, &ctx);
	if (db_in_transaction()) {
		log_errx("audit verify: called inside a transaction");
		verifier_cleanup(&v);
		return -1;
	}
	/* One snapshot, so retention moving the anchor cannot show as a gap. */
	if (db_exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		goto out;
	if ((r = db_query(anchor_sql, 1, params)) == NULL)
		goto fail;
	if (verifier_anchor(&v, PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0,
	                    PQntuples(r) ? PQgetvalue(r, 0, 1)
	                                 : "0000000000000000000000000000000000000000000000000000000000000000") < 0) {
		broken(&v, 0, AUDIT_MALFORMED, "the anchor row is malformed");
		stop = true;
	}
	PQclear(r);
	r = NULL;
	while (!stop) {
		if ((r = db_query(page_sql, 3, params)) == NULL)
			goto fail;
		rows = PQntuples(r);
		for (int i = 0; i < rows && !stop; i++) {
			struct vrow row = { .seq = atoll(PQgetvalue(r, i, 1)),
			                    .id = atoll(PQgetvalue(r, i, 0)), .cols = cols };
			for (int c = 0; c < NCOLUMNS; c++)
				cols[c] = PQgetisnull(r, i, 5 + c) ? NULL : PQgetvalue(r, i, 5 + c);
			row.bad_hashes = decode_hash(PQgetvalue(r, i, 3), row.prev) < 0 ||
			                 decode_hash(PQgetvalue(r, i, 4), row.hash) < 0;
			size_t len = 0;
			unsigned char *canon = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 2),
			                                       &len);
			row.canon = canon ? (const char *)canon : "";
			row.canon_len = canon ? len : 0;
			stop = verifier_feed(&v, &row);
			PQfreemem(canon);
		}
		if (rows > 0) {
			snprintf(last_id, sizeof last_id, "%s", PQgetvalue(r, rows - 1, 0));
			snprintf(last_seq, sizeof last_seq, "%s", PQgetvalue(r, rows - 1, 1));
		}
		PQclear(r);
		r = NULL;
		if (rows < atoi(PAGE_ROWS))
			break;
	}
	verifier_end(&v);
	if (db_exec("COMMIT") < 0)
		goto out;
	rc = 0;
	goto out;
fail:
	PQclear(r);
	if (db_exec("ROLLBACK") < 0)
		log_warnx("audit verify: rollback failed");
out:
	if (rc < 0)
		log_fields(LOG_LVL_ERROR, "audit verify failed", "error", db_last_error(), NULL);
	verifier_cleanup(&v);
	return rc;
}

/* ---- from an export ----------------------------------------------------- */

struct stream_ctx {
	FILE *f;
	off_t data_start;		/* offset of the first event line; -1: not seekable */
};

/* Rescans the file (when it can) for another line chained to prev. */
static int stream_sibling(void *ctx, const uint8_t prev[AUDIT_HASH_LEN], long long id,
                          long long *seq)
{
	struct stream_ctx *c = ctx;
	char needle[2 * AUDIT_HASH_LEN + 16];
	char *line = NULL, *p;
	size_t cap = 0;
	long long lineno = 1;
	off_t here;
	int found = 0;

	if (c->data_start < 0 || (here = ftello(c->f)) < 0 || fseeko(c->f, c->data_start, SEEK_SET) < 0)
		return -1;
	memcpy(needle, "\"prev_hash\":\"", 13);
	hex_encode(prev, AUDIT_HASH_LEN, needle + 13);
	while (getline(&line, &cap, c->f) > 0) {
		lineno++;
		/* canon is a JSON string, its quotes escaped: only the line's own
		 * prev_hash member can match. */
		if (lineno == id || strstr(line, needle) == NULL ||
		    (p = strstr(line, "\"seq\":")) == NULL)
			continue;
		*seq = atoll(p + 6);
		found = 1;
		break;
	}
	free(line);
	if (fseeko(c->f, here, SEEK_SET) < 0)
		return -1;
	return found;
}

/* Reads the header line into the verifier. Returns 0 or -1 (malformed). */
static int stream_header(struct verifier *v, const char *line, size_t len)
{
	json_object *h = parse(v, line, len);
	const char *fmt = str_member(h, "format"), *anchor = str_member(h, "anchor_hash");
	int rc = -1;

	if (fmt != NULL && strcmp(fmt, "kvmgate-audit-export") == 0 && anchor != NULL &&
	    json_object_get_int64(member(h, "version")) == 1 &&
	    json_object_is_type(member(h, "org"), json_type_int) &&
	    json_object_is_type(member(h, "anchor_seq"), json_type_int)) {
		v->rep->org_id = json_object_get_int64(member(h, "org"));
		rc = verifier_anchor(v, json_object_get_int64(member(h, "anchor_seq")), anchor);
	}
	json_object_put(h);
	return rc;
}

/*
 * Reads one event or trailer line. Returns 1 for an event (row filled, its
 * canon in *canon), 2 for the trailer, -1 when malformed.
 */
static int stream_line(struct verifier *v, const char *line, size_t len, struct vrow *row,
                       struct buf *canon, json_object **trailer)
{
	json_object *o = parse(v, line, len), *c;
	const char *prev = str_member(o, "prev_hash"), *hash = str_member(o, "row_hash");
	const char *hex;
	int rc = -1;

	if (!json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_get_boolean(member(o, "end"))) {
		*trailer = json_object_get(o);
		rc = 2;
		goto out;
	}
	if (!json_object_is_type(member(o, "seq"), json_type_int) || prev == NULL || hash == NULL)
		goto out;
	row->seq = json_object_get_int64(member(o, "seq"));
	row->bad_hashes = decode_hash(prev, row->prev) < 0 || decode_hash(hash, row->hash) < 0;
	buf_reset(canon);
	if (json_object_is_type(c = member(o, "canon"), json_type_string)) {
		buf_append(canon, json_object_get_string(c), (size_t)json_object_get_string_len(c));
	} else if ((hex = str_member(o, "canon_hex")) != NULL && strlen(hex) % 2 == 0) {
		size_t n = strlen(hex) / 2;
		buf_append(canon, hex, n);	/* room for n bytes */
		if (hex_decode(hex, n, (uint8_t *)canon->data) < 0)
			goto out;
	} else {
		goto out;
	}
	row->canon = canon->data ? canon->data : "";
	row->canon_len = canon->len;
	rc = 1;
out:
	json_object_put(o);
	return rc;
}

/* The trailer must count the event lines and name the last one. */
static void stream_trailer(struct verifier *v, json_object *t, long long events,
                           long long last_seq, const char *last_hash)
{
	const char *hash = str_member(t, "head_hash");

	if (json_object_get_int64(member(t, "events")) != events ||
	    json_object_get_int64(member(t, "head_seq")) != last_seq || hash == NULL ||
	    strcmp(hash, last_hash) != 0)
		broken(v, v->next_seq, AUDIT_MALFORMED,
		       "the trailer does not match the events (%lld lines, last seq %lld)", events,
		       last_seq);
}

int audit_verify_stream(FILE *f, const uint8_t *pinned, struct audit_report *rep)
{
	struct stream_ctx ctx = { f, -1 };
	struct buf canon = BUF_INIT;
	json_object *trailer = NULL;
	char last_hash[2 * AUDIT_HASH_LEN + 1] = "";
	long long lineno = 0, events = 0, last_seq = 0;
	struct verifier v;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	memset(rep, 0, sizeof *rep);
	verifier_init(&v, rep, pinned, stream_sibling, &ctx);
	while (rep->problem == AUDIT_INTACT && (n = getline(&line, &cap, f)) > 0) {
		struct vrow row = { .id = ++lineno };
		int kind;

		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (lineno == 1) {
			if (stream_header(&v, line, (size_t)n) < 0)
				broken(&v, 0, AUDIT_MALFORMED, "line 1 is not an audit export header");
			ctx.data_start = ftello(f);
			continue;
		}
		if (trailer != NULL) {
			broken(&v, v.next_seq, AUDIT_MALFORMED, "line %lld: data after the trailer",
			       lineno);
			break;
		}
		kind = stream_line(&v, line, (size_t)n, &row, &canon, &trailer);
		if (kind < 0) {
			broken(&v, v.next_seq, AUDIT_MALFORMED, "line %lld is not an audit event",
			       lineno);
		} else if (kind == 2) {
			if (!v.pending)
				stream_trailer(&v, trailer, events, last_seq, last_hash);
		} else {
			events++;
			last_seq = row.seq;
			hex_encode(row.hash, AUDIT_HASH_LEN, last_hash);
			verifier_feed(&v, &row);
		}
	}
	if (ferror(f)) {
		rc = -1;
	} else {
		verifier_end(&v);
		if (rep->problem == AUDIT_INTACT && lineno == 0)
			broken(&v, 0, AUDIT_MALFORMED, "the export is empty");
		else if (rep->problem == AUDIT_INTACT && trailer == NULL)
			broken(&v, v.next_seq, AUDIT_MALFORMED,
			       "the export ends without its trailer: truncated");
	}
	json_object_put(trailer);
	free(line);
	buf_free(&canon);
	verifier_cleanup(&v);
	return rc;
}

json_object *audit_report_json(const struct audit_report *rep)
{
	json_object *o = json_object_new_object();
	bool ok = rep->problem == AUDIT_INTACT;

	json_object_object_add(o, "chain_ok", json_object_new_boolean(ok));
	json_object_object_add(o, "org", json_object_new_int64(rep->org_id));
	json_object_object_add(o, "events_checked", json_object_new_int64(rep->events_checked));
	json_object_object_add(o, "first_break_seq", ok ? NULL : json_object_new_int64(rep->broken_seq));
	json_object_object_add(o, "problem", json_object_new_string(audit_problem_name(rep->problem)));
	json_object_object_add(o, "detail", ok ? NULL : json_object_new_string(rep->detail));
	json_object_object_add(o, "chain_head", json_object_new_string(rep->head_hash));
	json_object_object_add(o, "head_seq", json_object_new_int64(rep->head_seq));
	json_object_object_add(o, "head_time",
	                       rep->head_time[0] ? json_object_new_string(rep->head_time) : NULL);
	json_object_object_add(o, "chain_anchor", json_object_new_string(rep->anchor_hash));
	json_object_object_add(o, "anchor_seq", json_object_new_int64(rep->anchor_seq));
	json_object_object_add(o, "checkpoints_verified", json_object_new_int64(rep->checkpoints));
	json_object_object_add(o, "last_checkpoint_seq",
	                       rep->last_checkpoint_seq ? json_object_new_int64(rep->last_checkpoint_seq) : NULL);
	json_object_object_add(o, "checkpoint_key",
	                       rep->checkpoint_key[0] ? json_object_new_string(rep->checkpoint_key) : NULL);
	json_object_object_add(o, "checkpoint_keys_differ",
	                       json_object_new_boolean(rep->checkpoint_keys_differ));
	json_object_object_add(o, "pubkey_pinned", json_object_new_boolean(rep->pinned));
	return o;
}
