/*
 * audit.c - audit events: canonical JSON, redaction, appends, the chain head,
 * export, and signed checkpoints. Verification is in audit_verify.c.
 */
#include "audit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "db.h"
#include "log.h"

#define CANON_MAX_DEPTH 64
#define ACTION_MAX 200
#define EXPORT_BATCH "10000"
#define KEY_NAME "kvmgate-audit"

/* The lock audit_append() (sql/005_audit.sql) takes; the same expression. */
static const char lock_sql[] =
	"SELECT pg_advisory_xact_lock(hashtextextended('kvmgate.audit:' || $1::bigint, 0)), "
	"  to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/* ---- canonical JSON ---------------------------------------------------- */

/*
 * Decodes one UTF-8 sequence at s (n bytes available). Returns its length
 * and sets *cp, or 0 when the bytes are not well-formed UTF-8 (overlong
 * forms, surrogates and values past U+10FFFF included).
 */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	uint32_t lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (i > 1 && (s[i] < 0x80 || s[i] > 0xbf))
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	return len;
}

/*
 * Writes s as a JSON string of printable ASCII: the escapes JSON names for
 * quote, backslash and \b \f \n \r \t, \u00XX for other control characters
 * and DEL, \uXXXX (surrogate pairs past U+FFFF) for everything beyond ASCII.
 * Invalid UTF-8 and U+0000, which PostgreSQL's jsonb cannot hold, become
 * \ufffd, one per byte that does not decode.
 */
static void canon_string(struct buf *out, const char *str, size_t len)
{
	static const char short_esc[32] = {
		['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
	};
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run;
	char esc[16];

	buf_append(out, "\"", 1);
	while (i < len) {
		uint32_t cp;
		size_t n;

		for (run = i; run < len && s[run] >= 0x20 && s[run] < 0x7f &&
		     s[run] != '"' && s[run] != '\\'; run++)
			;
		if (run > i) {
			buf_append(out, s + i, run - i);
			i = run;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i++];
			buf_append(out, esc, 2);
			continue;
		}
		if (s[i] < 0x20 || s[i] == 0x7f) {
			if (s[i] == 0) {
				buf_puts(out, "\\ufffd");
			} else if (s[i] < 0x20 && short_esc[s[i]] != 0) {
				esc[0] = '\\';
				esc[1] = short_esc[s[i]];
				buf_append(out, esc, 2);
			} else {
				buf_printf(out, "\\u%04x", s[i]);
			}
			i++;
			continue;
		}
		n = utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			cp = 0xfffd;
			n = 1;
		}
		i += n;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			buf_printf(out, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
		} else {
			buf_printf(out, "\\u%04x", cp);
		}
	}
	buf_append(out, "\"", 1);
}

/*
 * Writes a double: integral values below 2^53 as integers, others in the
 * shortest %.Ng (N = 15..17) that reads back to the same double, so a
 * parse and a second serialisation give the same text. JSON has no
 * non-finite numbers: those become the strings "NaN", "Infinity", "-Infinity".
 */
static void canon_double(struct buf *out, double d)
{
	char tmp[40];

	if (isnan(d)) {
		buf_puts(out, "\"NaN\"");
		return;
	}
	if (isinf(d)) {
		buf_puts(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
		return;
	}
	if (d == floor(d) && fabs(d) < 9007199254740992.0) {
		buf_printf(out, "%.0f", d == 0 ? 0.0 : d);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	buf_puts(out, tmp);
}

/*
 * Returns a copy of s with every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD, or NULL when s is well-formed already (the usual case).
 */
static char *utf8_repair(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, n = 1;
	struct buf out = BUF_INIT;
	uint32_t cp;

	while (i < len && (p[i] < 0x80 || (n = utf8_decode(p + i, len - i, &cp)) != 0))
		i += p[i] < 0x80 ? 1 : n;
	if (i == len)
		return NULL;
	buf_append(&out, s, i);
	while (i < len) {
		if (p[i] < 0x80) {
			buf_append(&out, p + i++, 1);
		} else if ((n = utf8_decode(p + i, len - i, &cp)) != 0) {
			buf_append(&out, p + i, n);
			i += n;
		} else {
			buf_puts(&out, "\xef\xbf\xbd");
			i++;
		}
	}
	return out.data;
}

/* An object member; key is the repaired copy when the key needed one. */
struct member {
	const char *key;
	char *repaired;
	json_object *val;
};

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->key, ((const struct member *)b)->key);
}

static int canon_value(json_object *o, struct buf *out, int depth)
{
	struct member *m;
	size_t n = 0, i;
	int64_t v;
	int rc = -1;

	if (depth > CANON_MAX_DEPTH)
		return -1;
	switch (json_object_get_type(o)) {
	case json_type_null:
		buf_puts(out, "null");
		return 0;
	case json_type_boolean:
		buf_puts(out, json_object_get_boolean(o) ? "true" : "false");
		return 0;
	case json_type_int:
		v = json_object_get_int64(o);
		if (v == INT64_MAX)	/* json-c keeps larger values as unsigned */
			buf_printf(out, "%llu", (unsigned long long)json_object_get_uint64(o));
		else
			buf_printf(out, "%lld", (long long)v);
		return 0;
	case json_type_double:
		canon_double(out, json_object_get_double(o));
		return 0;
	case json_type_string:
		canon_string(out, json_object_get_string(o), (size_t)json_object_get_string_len(o));
		return 0;
	case json_type_array:
		buf_append(out, "[", 1);
		for (i = 0; i < json_object_array_length(o); i++) {
			if (i > 0)
				buf_append(out, ",", 1);
			if (canon_value(json_object_array_get_idx(o, i), out, depth + 1) < 0)
				return -1;
		}
		buf_append(out, "]", 1);
		return 0;
	case json_type_object:
		break;
	}
	/* Keys are sorted as they will read back: after UTF-8 repair. Two keys
	 * that become one would make the output ambiguous: refused. */
	m = xmalloc(sizeof *m * ((size_t)json_object_object_length(o) + 1));
	json_object_object_foreach(o, key, val) {
		m[n].repaired = utf8_repair(key);
		m[n].key = m[n].repaired ? m[n].repaired : key;
		m[n++].val = val;
	}
	qsort(m, n, sizeof *m, by_key);
	buf_append(out, "{", 1);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(m[i - 1].key, m[i].key) == 0)
			goto out;
		if (i > 0)
			buf_append(out, ",", 1);
		canon_string(out, m[i].key, strlen(m[i].key));
		buf_append(out, ":", 1);
		if (canon_value(m[i].val, out, depth + 1) < 0)
			goto out;
	}
	buf_append(out, "}", 1);
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(m[i].repaired);
	free(m);
	return rc;
}

int audit_canon_json(json_object *o, struct buf *out)
{
	return canon_value(o, out, 0);
}

/* ---- redaction ---------------------------------------------------------- */

/*
 * Argument names whose values are never stored, compared with the name
 * lowercased and stripped of '_', '-', '.' and ' ' ("API-Key" is "apikey").
 * A substring rule catches "new_password" and "access_token"; names ending
 * in "id", "ids" or "name" refer to a secret without being one and stay.
 * Text typed into a console ("text") is kept: it is the record of what an
 * assistant did.
 */
static const struct {
	const char *name;
	bool exact;
} secret_keys[] = {
	{ "password", false },
	{ "passwd", false },
	{ "passphrase", false },
	{ "secret", false },
	{ "token", false },
	{ "credential", false },
	{ "apikey", false },
	{ "accesskey", false },
	{ "privatekey", false },
	{ "cookie", false },
	{ "authorization", true },
	{ "auth", true },
	{ "otp", true },
	{ "totp", false },
	{ "pin", true },
};

static const char *const kept_suffixes[] = { "id", "ids", "name" };

bool audit_key_is_secret(const char *key)
{
	char norm[128];
	size_t n = 0, len;

	for (const char *p = key; *p != '\0' && n < sizeof norm - 1; p++)
		if (strchr("_-. ", *p) == NULL)
			norm[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	norm[n] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(kept_suffixes); i++) {
		len = strlen(kept_suffixes[i]);
		if (n > len && strcmp(norm + n - len, kept_suffixes[i]) == 0)
			return false;
	}
	for (size_t i = 0; i < ARRAY_LEN(secret_keys); i++)
		if (secret_keys[i].exact ? strcmp(norm, secret_keys[i].name) == 0
		                         : strstr(norm, secret_keys[i].name) != NULL)
			return true;
	return false;
}

json_object *audit_redact(json_object *args)
{
	json_object *copy;

	switch (json_object_get_type(args)) {
	case json_type_object:
		copy = json_object_new_object();
		json_object_object_foreach(args, key, val)
			json_object_object_add(copy, key, audit_key_is_secret(key)
				? json_object_new_string("[redacted]") : audit_redact(val));
		return copy;
	case json_type_array:
		copy = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(args); i++)
			json_object_array_add(copy, audit_redact(json_object_array_get_idx(args, i)));
		return copy;
	default:
		/* Scalars are never modified: share them. */
		return json_object_get(args);
	}
}

/* ---- events ------------------------------------------------------------- */

static const char *const actor_names[] = {
	[AUDIT_ACTOR_SYSTEM] = "system", [AUDIT_ACTOR_USER] = "user",
	[AUDIT_ACTOR_TOKEN] = "token", [AUDIT_ACTOR_CLI] = "cli",
};
static const char *const client_names[] = {
	[AUDIT_CLIENT_SYSTEM] = "system", [AUDIT_CLIENT_MCP] = "mcp",
	[AUDIT_CLIENT_REST] = "rest", [AUDIT_CLIENT_DASHBOARD] = "dashboard",
	[AUDIT_CLIENT_CLI] = "cli",
};
static const char *const outcome_names[] = {
	[AUDIT_OK] = "ok", [AUDIT_DENIED] = "denied", [AUDIT_ERROR] = "error",
	[AUDIT_PENDING] = "pending",
};

void audit_event_init(struct audit_event *ev, long long org_id, const char *action)
{
	memset(ev, 0, sizeof *ev);
	ev->org_id = org_id;
	ev->action = action;
	ev->actor = AUDIT_ACTOR_SYSTEM;
	ev->client = AUDIT_CLIENT_SYSTEM;
	ev->outcome = AUDIT_OK;
	ev->latency_ms = -1;
}

static json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static json_object *id_or_null(long long id)
{
	return id > 0 ? json_object_new_int64(id) : NULL;
}

int audit_event_body(const struct audit_event *ev, struct buf *out, char *err, size_t errlen)
{
	json_object *body = NULL, *actor, *client;
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned char addr[16];
	const char *why = NULL;

	if (ev->org_id <= 0)
		why = "no organisation";
	else if (ev->action == NULL || ev->action[0] == '\0' || strlen(ev->action) > ACTION_MAX)
		why = "action missing or longer than 200 bytes";
	else if ((unsigned)ev->actor >= ARRAY_LEN(actor_names) ||
	         (unsigned)ev->client >= ARRAY_LEN(client_names) ||
	         (unsigned)ev->outcome >= ARRAY_LEN(outcome_names))
		why = "actor, client or outcome out of range";
	else if (ev->args != NULL && !json_object_is_type(ev->args, json_type_object))
		why = "args is not a JSON object";
	if (why == NULL && ev->source_ip != NULL) {
		/* Stored normalised, so the inet column reads back the same text. */
		int af = strchr(ev->source_ip, ':') != NULL ? AF_INET6 : AF_INET;
		if (inet_pton(af, ev->source_ip, addr) != 1 ||
		    inet_ntop(af, addr, ip, sizeof ip) == NULL)
			why = "source_ip is not an IP address";
	}
	if (why != NULL)
		goto fail;

	body = json_object_new_object();
	json_object_object_add(body, "action", json_object_new_string(ev->action));
	actor = json_object_new_object();
	json_object_object_add(actor, "kind", json_object_new_string(actor_names[ev->actor]));
	json_object_object_add(actor, "user_id", id_or_null(ev->user_id));
	json_object_object_add(actor, "user", str_or_null(ev->user));
	json_object_object_add(actor, "token_id", id_or_null(ev->token_id));
	json_object_object_add(actor, "token", str_or_null(ev->token));
	json_object_object_add(body, "actor", actor);
	json_object_object_add(body, "args",
	                       ev->args ? audit_redact(ev->args) : json_object_new_object());
	client = json_object_new_object();
	json_object_object_add(client, "kind", json_object_new_string(client_names[ev->client]));
	json_object_object_add(client, "name", str_or_null(ev->client_name));
	json_object_object_add(client, "version", str_or_null(ev->client_version));
	json_object_object_add(body, "client", client);
	json_object_object_add(body, "source_ip", str_or_null(ip[0] ? ip : NULL));
	json_object_object_add(body, "device_id", id_or_null(ev->device_id));
	json_object_object_add(body, "device", str_or_null(ev->device));
	json_object_object_add(body, "outcome", json_object_new_string(outcome_names[ev->outcome]));
	json_object_object_add(body, "reason", str_or_null(ev->reason));
	json_object_object_add(body, "latency_ms",
	                       ev->latency_ms >= 0 ? json_object_new_int64(ev->latency_ms) : NULL);
	json_object_object_add(body, "mcp_session", str_or_null(ev->mcp_session));
	json_object_object_add(body, "request_id", str_or_null(ev->request_id));
	if (audit_canon_json(body, out) < 0) {
		why = "args nest too deeply or repeat a key";
		goto fail;
	}
	json_object_put(body);
	return 0;
fail:
	snprintf(err, errlen, "%s", why);
	json_object_put(body);
	return -1;
}

/* Appends a canonical body; fills out (when not NULL) with the new head. */
static long long append_body(long long org_id, const char *body, struct audit_head *out)
{
	static const char sql[] =
		"SELECT o_seq, encode(o_hash, 'hex'), o_ts FROM audit_append($1::bigint, $2)";
	char org[24];
	const char *params[2] = { org, body };
	PGresult *r;
	long long seq;

	snprintf(org, sizeof org, "%lld", org_id);
	if ((r = db_query(sql, 2, params)) == NULL)
		return -1;
	seq = atoll(PQgetvalue(r, 0, 0));
	if (out != NULL) {
		out->seq = seq;
		snprintf(out->hash, sizeof out->hash, "%s", PQgetvalue(r, 0, 1));
		snprintf(out->time, sizeof out->time, "%s", PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return seq;
}

long long audit_append_body(long long org_id, const char *body)
{
	return append_body(org_id, body, NULL);
}

long long audit_append(const struct audit_event *ev)
{
	struct buf body = BUF_INIT;
	char err[128];
	long long seq = -1;

	if (audit_event_body(ev, &body, err, sizeof err) < 0) {
		log_fields(LOG_LVL_ERROR, "audit event refused", "action",
		           ev->action ? ev->action : "", "error", err, NULL);
		goto out;
	}
	seq = append_body(ev->org_id, body.data, NULL);
	if (seq < 0)
		log_fields(LOG_LVL_ERROR, "audit append failed", "action", ev->action,
		           "error", db_last_error(), NULL);
out:
	buf_free(&body);
	return seq;
}

/* Reads the head; action (when not NULL, size 64) gets the last event's action. */
static int head_read(long long org_id, struct audit_head *out, char *action)
{
	static const char sql[] =
		"SELECT seq, encode(row_hash, 'hex'), "
		"  to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), action "
		"FROM audit_events WHERE org_id = $1 ORDER BY seq DESC LIMIT 1";
	static const char anchor_sql[] =
		"SELECT seq, encode(hash, 'hex'), '', '' FROM audit_anchors WHERE org_id = $1";
	char org[24];
	const char *params[1] = { org };
	PGresult *r;

	snprintf(org, sizeof org, "%lld", org_id);
	memset(out, 0, sizeof *out);
	if ((r = db_query(sql, 1, params)) == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		if ((r = db_query(anchor_sql, 1, params)) == NULL)
			return -1;
	}
	if (PQntuples(r) == 0) {
		memset(out->hash, '0', 2 * AUDIT_HASH_LEN);
	} else {
		out->seq = atoll(PQgetvalue(r, 0, 0));
		snprintf(out->hash, sizeof out->hash, "%s", PQgetvalue(r, 0, 1));
		snprintf(out->time, sizeof out->time, "%s", PQgetvalue(r, 0, 2));
	}
	if (action != NULL)
		snprintf(action, 64, "%s", PQntuples(r) ? PQgetvalue(r, 0, 3) : "");
	PQclear(r);
	return 0;
}

int audit_head(long long org_id, struct audit_head *out)
{
	return head_read(org_id, out, NULL);
}

/* ---- export ------------------------------------------------------------- */

/* Writes one event line: canon as a JSON string when it is printable ASCII
 * (as audit_append makes it), else as canon_hex, so no byte is lost. */
static void export_line(struct buf *line, const unsigned char *canon, size_t len,
                        const char *raw_hex, long long seq, const char *prev, const char *hash)
{
	bool printable = true;

	for (size_t i = 0; i < len && printable; i++)
		printable = canon[i] >= 0x20 && canon[i] < 0x7f;
	buf_reset(line);
	if (printable) {
		buf_puts(line, "{\"canon\":");
		canon_string(line, (const char *)canon, len);
	} else {
		buf_printf(line, "{\"canon_hex\":\"%s\"", raw_hex + 2);
	}
	buf_printf(line, ",\"prev_hash\":\"%s\",\"row_hash\":\"%s\",\"seq\":%lld}\n",
	           prev, hash, seq);
}

int audit_export(long long org_id, const char *org_name, FILE *out)
{
	static const char anchor_sql[] =
		"SELECT seq, encode(hash, 'hex') FROM audit_anchors WHERE org_id = $1";
	/* Keyset pages in (seq, id) order; id only matters if seq repeats, which
	 * the unique key forbids but a tampered table may not. */
	static const char page_sql[] =
		"SELECT id, seq, canon, encode(prev_hash, 'hex'), encode(row_hash, 'hex') "
		"FROM audit_events WHERE org_id = $1 AND seq >= $2 AND (seq > $2 OR id > $3) "
		"ORDER BY seq, id LIMIT " EXPORT_BATCH;
	char org[24], last_seq[24] = "0", last_id[24] = "0";
	const char *params[3] = { org, last_seq, last_id };
	char head[2 * AUDIT_HASH_LEN + 1];
	struct buf line = BUF_INIT;
	json_object *hdr = json_object_new_object();
	long long events = 0, head_seq = 0;
	const char *why = NULL;
	PGresult *r = NULL;
	int rows;

	snprintf(org, sizeof org, "%lld", org_id);
	memset(head, '0', 2 * AUDIT_HASH_LEN);
	head[2 * AUDIT_HASH_LEN] = '\0';
	if (db_in_transaction()) {
		why = "called inside a transaction";
		goto out;
	}
	/* One snapshot: the anchor and the events agree even while appends go on. */
	if (db_exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0) {
		why = db_last_error();
		goto out;
	}
	if ((r = db_query(anchor_sql, 1, params)) == NULL)
		goto fail;
	if (PQntuples(r) == 1) {
		head_seq = atoll(PQgetvalue(r, 0, 0));
		snprintf(head, sizeof head, "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	r = NULL;
	json_object_object_add(hdr, "format", json_object_new_string("kvmgate-audit-export"));
	json_object_object_add(hdr, "version", json_object_new_int(1));
	json_object_object_add(hdr, "org", json_object_new_int64(org_id));
	json_object_object_add(hdr, "org_name", json_object_new_string(org_name ? org_name : ""));
	json_object_object_add(hdr, "anchor_seq", json_object_new_int64(head_seq));
	json_object_object_add(hdr, "anchor_hash", json_object_new_string(head));
	if (audit_canon_json(hdr, &line) < 0)
		goto fail;
	buf_puts(&line, "\n");
	fwrite(line.data, 1, line.len, out);
	do {
		if ((r = db_query(page_sql, 3, params)) == NULL)
			goto fail;
		rows = PQntuples(r);
		for (int i = 0; i < rows; i++) {
			size_t len;
			unsigned char *canon = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 2),
			                                       &len);
			if (canon == NULL) {
				why = "unreadable canon";
				goto fail;
			}
			head_seq = atoll(PQgetvalue(r, i, 1));
			snprintf(head, sizeof head, "%s", PQgetvalue(r, i, 4));
			export_line(&line, canon, len, PQgetvalue(r, i, 2), head_seq,
			            PQgetvalue(r, i, 3), head);
			PQfreemem(canon);
			fwrite(line.data, 1, line.len, out);
			events++;
		}
		if (rows > 0) {
			snprintf(last_id, sizeof last_id, "%s", PQgetvalue(r, rows - 1, 0));
			snprintf(last_seq, sizeof last_seq, "%s", PQgetvalue(r, rows - 1, 1));
		}
		PQclear(r);
		r = NULL;
	} while (rows == atoi(EXPORT_BATCH));
	fprintf(out, "{\"end\":true,\"events\":%lld,\"head_hash\":\"%s\",\"head_seq\":%lld}\n",
	        events, head, head_seq);
	if (db_exec("COMMIT") < 0) {
		why = db_last_error();
		goto out;
	}
	if (fflush(out) != 0 || ferror(out))
		why = "write error";
	goto out;
fail:
	PQclear(r);
	if (why == NULL)
		why = db_last_error();
	if (db_exec("ROLLBACK") < 0)
		why = db_last_error();
out:
	if (why != NULL)
		log_fields(LOG_LVL_ERROR, "audit export failed", "error", why, NULL);
	json_object_put(hdr);
	buf_free(&line);
	return why != NULL ? -1 : 0;
}

/* ---- checkpoint keys and signatures ------------------------------------- */

void audit_key_id(const uint8_t pub[AUDIT_PUBKEY_LEN], char out[9])
{
	uint8_t msg[sizeof KEY_NAME + 1 + AUDIT_PUBKEY_LEN], md[SHA256_DIGEST_LENGTH];
	size_t n = strlen(KEY_NAME);

	memcpy(msg, KEY_NAME "\n\x01", n + 2);
	memcpy(msg + n + 2, pub, AUDIT_PUBKEY_LEN);
	SHA256(msg, n + 2 + AUDIT_PUBKEY_LEN, md);
	hex_encode(md, 4, out);
}

void audit_note(long long org_id, long long size, const uint8_t head[AUDIT_HASH_LEN],
                const char *time, struct buf *out)
{
	unsigned char b64[48];

	EVP_EncodeBlock(b64, head, AUDIT_HASH_LEN);
	buf_printf(out, "kvmgate/audit/org/%lld\n%lld\n%s\ntime %s\n", org_id, size, b64, time);
}

/* Writes a new Ed25519 key to path (must not exist), mode 0600. */
static int key_create(const char *path)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *f = NULL;
	int fd = -1, rc = -1;

	if (k == NULL)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)	/* someone else made it first: use theirs */
			rc = 0;
		else
			fprintf(stderr, "kvmgate: cannot create %s: %s\n", path, strerror(errno));
		goto out;
	}
	if ((f = fdopen(fd, "w")) == NULL)
		goto out;
	fd = -1;
	if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		fprintf(stderr, "kvmgate: cannot write %s\n", path);
		unlink(path);
		goto out;
	}
	rc = 0;
out:
	if (f != NULL && fclose(f) != 0)
		rc = -1;
	if (fd >= 0)
		close(fd);
	EVP_PKEY_free(k);
	return rc;
}

/* Loads the signing key, creating it first when asked. Returns NULL after
 * saying why on stderr. */
static EVP_PKEY *key_load(const char *path, bool create)
{
	struct stat st;
	EVP_PKEY *k = NULL;
	FILE *f;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (key_create(path) < 0)
			return NULL;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		fprintf(stderr, "kvmgate: cannot open the audit key %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0) {
		fprintf(stderr, "kvmgate: the audit key %s must not be readable by others (chmod 600)\n",
		        path);
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		fprintf(stderr, "kvmgate: %s is not an Ed25519 private key in PEM\n", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static int raw_public(EVP_PKEY *k, uint8_t pub[AUDIT_PUBKEY_LEN])
{
	size_t len = AUDIT_PUBKEY_LEN;

	return EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == AUDIT_PUBKEY_LEN ? 0 : -1;
}

int audit_key_public(const char *key_file, bool create, uint8_t pub[AUDIT_PUBKEY_LEN])
{
	EVP_PKEY *k = key_load(key_file, create);
	int rc;

	if (k == NULL)
		return -1;
	rc = raw_public(k, pub);
	EVP_PKEY_free(k);
	return rc;
}

int audit_pubkey_read(const char *path, uint8_t pub[AUDIT_PUBKEY_LEN])
{
	char text[8192];
	size_t n;
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = NULL;
	BIO *bio;
	int rc = -1;

	if (f == NULL) {
		fprintf(stderr, "kvmgate: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	while (n > 0 && strchr(" \t\r\n", text[n - 1]))
		text[--n] = '\0';
	if (n == 2 * AUDIT_PUBKEY_LEN && hex_decode(text, AUDIT_PUBKEY_LEN, pub) == 0)
		return 0;
	bio = BIO_new_mem_buf(text, (int)n);
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (k == NULL) {
		BIO_free(bio);
		bio = BIO_new_mem_buf(text, (int)n);
		k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	}
	BIO_free(bio);
	if (k != NULL && EVP_PKEY_get_id(k) == EVP_PKEY_ED25519 && raw_public(k, pub) == 0)
		rc = 0;
	else
		fprintf(stderr, "kvmgate: %s holds no Ed25519 key (PEM or 64 hex digits)\n", path);
	EVP_PKEY_free(k);
	return rc;
}

static int sign(EVP_PKEY *k, const struct buf *msg, uint8_t sig[64])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t len = 64;
	int ok;

	ok = c != NULL && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
	     EVP_DigestSign(c, sig, &len, (const unsigned char *)msg->data, msg->len) == 1 &&
	     len == 64;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

int audit_checkpoint(long long org_id, const char *key_file, const struct audit_event *who,
                     struct audit_head *out, bool *skipped)
{
	char org[24], action[64], key_id[9], pub_hex[2 * AUDIT_PUBKEY_LEN + 1], sig_hex[129];
	char time[40], origin[64];
	const char *params[1] = { org };
	uint8_t pub[AUDIT_PUBKEY_LEN], head[AUDIT_HASH_LEN], sig[64];
	struct buf note = BUF_INIT, body = BUF_INIT;
	struct audit_head h;
	struct audit_event ev;
	json_object *args = NULL;
	EVP_PKEY *k;
	PGresult *r;
	const char *why = NULL;

	*skipped = false;
	if ((k = key_load(key_file, true)) == NULL || raw_public(k, pub) < 0) {
		EVP_PKEY_free(k);
		return -1;
	}
	snprintf(org, sizeof org, "%lld", org_id);
	if (db_in_transaction()) {
		why = "called inside a transaction";
		goto out;
	}
	if (db_exec("BEGIN ISOLATION LEVEL READ COMMITTED") < 0) {
		why = db_last_error();
		goto out;
	}
	/* The same lock audit_append takes: the head cannot move until COMMIT,
	 * so the checkpoint event directly follows the head it signs. */
	if ((r = db_query(lock_sql, 1, params)) == NULL)
		goto fail;
	snprintf(time, sizeof time, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (head_read(org_id, &h, action) < 0)
		goto fail;
	if (strcmp(action, "audit.checkpoint") == 0) {
		*skipped = true;
		if (out != NULL)
			*out = h;
		if (db_exec("ROLLBACK") < 0)
			goto fail;
		goto out;
	}
	if (hex_decode(h.hash, AUDIT_HASH_LEN, head) < 0) {
		why = "unreadable head hash";
		goto fail;
	}
	audit_note(org_id, h.seq, head, time, &note);
	if (sign(k, &note, sig) < 0) {
		why = "signing failed";
		goto fail;
	}
	audit_key_id(pub, key_id);
	hex_encode(pub, sizeof pub, pub_hex);
	hex_encode(sig, sizeof sig, sig_hex);
	snprintf(origin, sizeof origin, "kvmgate/audit/org/%lld", org_id);
	args = json_object_new_object();
	json_object_object_add(args, "origin", json_object_new_string(origin));
	json_object_object_add(args, "size", json_object_new_int64(h.seq));
	json_object_object_add(args, "head", json_object_new_string(h.hash));
	json_object_object_add(args, "time", json_object_new_string(time));
	json_object_object_add(args, "key_name", json_object_new_string(KEY_NAME));
	json_object_object_add(args, "key_id", json_object_new_string(key_id));
	json_object_object_add(args, "pubkey", json_object_new_string(pub_hex));
	json_object_object_add(args, "signature", json_object_new_string(sig_hex));
	ev = *who;
	ev.org_id = org_id;
	ev.action = "audit.checkpoint";
	ev.args = args;
	if (audit_event_body(&ev, &body, action, sizeof action) < 0) {
		why = action;
		goto fail;
	}
	if (append_body(org_id, body.data, out) < 0 || db_exec("COMMIT") < 0)
		goto fail;
	goto out;
fail:
	if (why == NULL)
		why = db_last_error();
	if (db_exec("ROLLBACK") < 0)
		why = db_last_error();
out:
	if (why != NULL)
		log_fields(LOG_LVL_ERROR, "audit checkpoint failed", "error", why, NULL);
	json_object_put(args);
	buf_free(&note);
	buf_free(&body);
	EVP_PKEY_free(k);
	return why != NULL ? -1 : 0;
}
