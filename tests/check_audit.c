/*
 * check_audit.c - audit.c and audit_verify.c without a database: canonical
 * JSON (golden cases), redaction, event bodies, offline verification of
 * generated exports with every kind of tampering, checkpoint signatures and
 * key files.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "audit.h"
#include "buf.h"
#include "check_run.h"

/* ---- canonical JSON ------------------------------------------------------ */

/* Parsed by json-c, then serialised. */
static const struct { const char *in, *want; } canon_cases[] = {
	{ "{}", "{}" },
	{ "[]", "[]" },
	{ "{\"b\":1,\"a\":2}", "{\"a\":2,\"b\":1}" },
	{ "{ \"z\" : { \"y\" : [3, {\"b\": true, \"a\": null}], \"x\": \"s\" }, \"a\": [] }",
	  "{\"a\":[],\"z\":{\"x\":\"s\",\"y\":[3,{\"a\":null,\"b\":true}]}}" },
	/* keys sorted by UTF-8 bytes: upper case, lower case, then non-ASCII */
	{ "{\"\xc3\xa9\":1,\"z\":2,\"Z\":3,\"a\":4,\"aa\":5,\"a_\":6}",
	  "{\"Z\":3,\"a\":4,\"a_\":6,\"aa\":5,\"z\":2,\"\\u00e9\":1}" },
	{ "{\"k\":\"h\xc3\xa9llo \xf0\x9f\x98\x80 \xe2\x82\xac\"}",
	  "{\"k\":\"h\\u00e9llo \\ud83d\\ude00 \\u20ac\"}" },
	{ "\"\\u00e9\\ud83d\\ude00\"", "\"\\u00e9\\ud83d\\ude00\"" },
	{ "\"a\\u0001\\n\\t\\r\\b\\f\\\"\\\\/\\u001f\\u007f~\"",
	  "\"a\\u0001\\n\\t\\r\\b\\f\\\"\\\\/\\u001f\\u007f~\"" },
	{ "\"nul\\u0000here\"", "\"nul\\ufffdhere\"" },
	{ "[1.0, -0.0, 0.1, 2.5, 1e300, 1.5e-7, -3, 9007199254740992.0, 1e16, 0.30000000000000004]",
	  "[1,0,0.1,2.5,1e+300,1.5e-07,-3,9007199254740992,1e+16,0.30000000000000004]" },
	{ "[9223372036854775807, -9223372036854775808, 18446744073709551615]",
	  "[9223372036854775807,-9223372036854775808,18446744073709551615]" },
	{ "[true,false,null,\"\"]", "[true,false,null,\"\"]" },
	{ "{\"text\":\"ls -la /\\r\",\"keys\":[\"ctrl\",\"alt\",\"del\"]}",
	  "{\"keys\":[\"ctrl\",\"alt\",\"del\"],\"text\":\"ls -la /\\r\"}" },
};

START_TEST(test_canon_golden)
{
	json_object *o = json_tokener_parse(canon_cases[_i].in), *again;
	struct buf out = BUF_INIT, second = BUF_INIT;

	ck_assert_msg(o != NULL, "case %d does not parse", _i);
	ck_assert_int_eq(audit_canon_json(o, &out), 0);
	ck_assert_str_eq(out.data, canon_cases[_i].want);
	/* Canonical means stable: parsing the output and serialising it again
	 * gives the same bytes (what verification relies on). */
	again = json_tokener_parse(out.data);
	ck_assert_ptr_nonnull(again);
	ck_assert_int_eq(audit_canon_json(again, &second), 0);
	ck_assert_str_eq(second.data, out.data);
	json_object_put(o);
	json_object_put(again);
	buf_free(&out);
	buf_free(&second);
}
END_TEST

/* Strings json-c's parser would not produce: bytes that are not UTF-8. */
static const struct { const char *in; size_t len; const char *want; } raw_cases[] = {
	{ "\xff", 1, "\"\\ufffd\"" },
	{ "a\xc0\xaf" "b", 4, "\"a\\ufffd\\ufffdb\"" },		/* overlong '/' */
	{ "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },	/* a UTF-16 surrogate */
	{ "\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },	/* past U+10FFFF */
	{ "\xe2\x82", 2, "\"\\ufffd\\ufffd\"" },			/* truncated */
	{ "x\0y", 3, "\"x\\ufffdy\"" },
	{ "\xf0\x9f\x98\x80", 4, "\"\\ud83d\\ude00\"" },
};

START_TEST(test_canon_raw_bytes)
{
	json_object *o = json_object_new_string_len(raw_cases[_i].in, (int)raw_cases[_i].len);
	struct buf out = BUF_INIT;

	ck_assert_int_eq(audit_canon_json(o, &out), 0);
	ck_assert_str_eq(out.data, raw_cases[_i].want);
	json_object_put(o);
	buf_free(&out);
}
END_TEST

/* Keys sort as they read back, after UTF-8 repair; two keys that repair to
 * the same text are refused. */
START_TEST(test_canon_raw_keys)
{
	json_object *o = json_object_new_object();
	struct buf out = BUF_INIT;

	json_object_object_add(o, "\xff", json_object_new_int(1));
	json_object_object_add(o, "z", json_object_new_int(2));
	json_object_object_add(o, "a\xc0", json_object_new_int(3));
	ck_assert_int_eq(audit_canon_json(o, &out), 0);
	ck_assert_str_eq(out.data, "{\"a\\ufffd\":3,\"z\":2,\"\\ufffd\":1}");
	json_object_object_add(o, "\xfe", json_object_new_int(4));
	buf_reset(&out);
	ck_assert_int_eq(audit_canon_json(o, &out), -1);
	json_object_put(o);
	buf_free(&out);
}
END_TEST

START_TEST(test_canon_special_numbers)
{
	json_object *a = json_object_new_array();
	struct buf out = BUF_INIT;

	json_object_array_add(a, json_object_new_double(0.0 / 0.0));
	json_object_array_add(a, json_object_new_double(1.0 / 0.0));
	json_object_array_add(a, json_object_new_double(-1.0 / 0.0));
	json_object_array_add(a, NULL);
	ck_assert_int_eq(audit_canon_json(a, &out), 0);
	ck_assert_str_eq(out.data, "[\"NaN\",\"Infinity\",\"-Infinity\",null]");
	json_object_put(a);
	buf_free(&out);
}
END_TEST

START_TEST(test_canon_depth)
{
	json_object *o = json_object_new_object(), *inner = o;
	struct buf out = BUF_INIT;

	for (int i = 0; i < 64; i++) {
		json_object *next = json_object_new_object();
		json_object_object_add(inner, "k", next);
		inner = next;
	}
	ck_assert_int_eq(audit_canon_json(o, &out), 0);
	json_object_object_add(inner, "k", json_object_new_object());
	buf_reset(&out);
	ck_assert_int_eq(audit_canon_json(o, &out), -1);
	json_object_put(o);
	buf_free(&out);
}
END_TEST

/* ---- redaction ----------------------------------------------------------- */

static const struct { const char *key; bool secret; } secret_cases[] = {
	{ "password", true }, { "Password", true }, { "new_password", true },
	{ "passwd", true }, { "passphrase", true }, { "secret", true },
	{ "client_secret", true }, { "token", true }, { "access_token", true },
	{ "refresh-token", true }, { "credentials", true }, { "api_key", true },
	{ "API-Key", true }, { "apiKey", true }, { "private_key", true },
	{ "authorization", true }, { "auth", true }, { "cookie", true },
	{ "otp", true }, { "totp_code", true }, { "pin", true },
	{ "max_tokens", true },
	{ "text", false }, { "keys", false }, { "key", false }, { "token_id", false },
	{ "token_name", false }, { "secret_ids", false }, { "author", false },
	{ "pinned", false }, { "spin", false }, { "device", false }, { "action", false },
	{ "x", false }, { "", false },
};

START_TEST(test_secret_keys)
{
	ck_assert_msg(audit_key_is_secret(secret_cases[_i].key) == secret_cases[_i].secret,
	              "key '%s'", secret_cases[_i].key);
}
END_TEST

START_TEST(test_redact_nested)
{
	const char *in = "{\"text\":\"hunter2\",\"password\":\"hunter2\","
	                 "\"login\":{\"user\":\"root\",\"Secret\":{\"a\":1},"
	                 "\"list\":[{\"token\":\"t\",\"n\":1},\"token\"]},\"n\":3}";
	json_object *args = json_tokener_parse(in), *red;
	struct buf out = BUF_INIT, orig = BUF_INIT, before = BUF_INIT;

	ck_assert_int_eq(audit_canon_json(args, &before), 0);
	red = audit_redact(args);
	ck_assert_int_eq(audit_canon_json(red, &out), 0);
	ck_assert_str_eq(out.data,
		"{\"login\":{\"Secret\":\"[redacted]\",\"list\":[{\"n\":1,\"token\":\"[redacted]\"},"
		"\"token\"],\"user\":\"root\"},\"n\":3,\"password\":\"[redacted]\",\"text\":\"hunter2\"}");
	/* The caller's object is left as it was. */
	ck_assert_int_eq(audit_canon_json(args, &orig), 0);
	ck_assert_str_eq(orig.data, before.data);
	ck_assert_ptr_null(audit_redact(NULL));
	json_object_put(args);
	json_object_put(red);
	buf_free(&out);
	buf_free(&orig);
	buf_free(&before);
}
END_TEST

/* ---- event bodies -------------------------------------------------------- */

START_TEST(test_event_body_full)
{
	json_object *args = json_tokener_parse("{\"text\":\"reboot\\n\",\"password\":\"pw\"}");
	struct audit_event ev;
	struct buf out = BUF_INIT;
	char err[128];

	audit_event_init(&ev, 7, "type_text");
	ev.actor = AUDIT_ACTOR_TOKEN;
	ev.user_id = 3;
	ev.user = "alice";
	ev.token_id = 9;
	ev.token = "ci";
	ev.client = AUDIT_CLIENT_MCP;
	ev.client_name = "claude-code";
	ev.client_version = "2.1";
	ev.source_ip = "2001:0db8:0000::0001";
	ev.device_id = 4;
	ev.device = "rack-1";
	ev.args = args;
	ev.outcome = AUDIT_DENIED;
	ev.reason = "policy";
	ev.latency_ms = 12;
	ev.mcp_session = "abc";
	ev.request_id = "r1";
	ck_assert_int_eq(audit_event_body(&ev, &out, err, sizeof err), 0);
	ck_assert_str_eq(out.data,
		"{\"action\":\"type_text\",\"actor\":{\"kind\":\"token\",\"token\":\"ci\",\"token_id\":9,"
		"\"user\":\"alice\",\"user_id\":3},\"args\":{\"password\":\"[redacted]\",\"text\":\"reboot\\n\"},"
		"\"client\":{\"kind\":\"mcp\",\"name\":\"claude-code\",\"version\":\"2.1\"},"
		"\"device\":\"rack-1\",\"device_id\":4,\"latency_ms\":12,\"mcp_session\":\"abc\","
		"\"outcome\":\"denied\",\"reason\":\"policy\",\"request_id\":\"r1\","
		"\"source_ip\":\"2001:db8::1\"}");
	json_object_put(args);
	buf_free(&out);
}
END_TEST

START_TEST(test_event_body_minimal)
{
	struct audit_event ev;
	struct buf out = BUF_INIT;
	char err[128];

	audit_event_init(&ev, 1, "GET /api/v1/me");
	ck_assert_int_eq(audit_event_body(&ev, &out, err, sizeof err), 0);
	ck_assert_str_eq(out.data,
		"{\"action\":\"GET /api/v1/me\",\"actor\":{\"kind\":\"system\",\"token\":null,"
		"\"token_id\":null,\"user\":null,\"user_id\":null},\"args\":{},\"client\":{\"kind\":"
		"\"system\",\"name\":null,\"version\":null},\"device\":null,\"device_id\":null,"
		"\"latency_ms\":null,\"mcp_session\":null,\"outcome\":\"ok\",\"reason\":null,"
		"\"request_id\":null,\"source_ip\":null}");
	buf_free(&out);
}
END_TEST

static const struct {
	long long org;
	const char *action, *ip, *args;
	int outcome;
	const char *err;
} bad_events[] = {
	{ 0, "x", NULL, NULL, AUDIT_OK, "no organisation" },
	{ 1, NULL, NULL, NULL, AUDIT_OK, "action missing" },
	{ 1, "", NULL, NULL, AUDIT_OK, "action missing" },
	{ 1, "x", "10.0.0.300", NULL, AUDIT_OK, "source_ip" },
	{ 1, "x", "localhost", NULL, AUDIT_OK, "source_ip" },
	{ 1, "x", NULL, "[1,2]", AUDIT_OK, "args is not" },
	{ 1, "x", NULL, NULL, 99, "out of range" },
};

START_TEST(test_event_body_refused)
{
	struct audit_event ev;
	struct buf out = BUF_INIT;
	char err[128] = "";
	json_object *args = bad_events[_i].args ? json_tokener_parse(bad_events[_i].args) : NULL;

	audit_event_init(&ev, bad_events[_i].org, bad_events[_i].action);
	ev.source_ip = bad_events[_i].ip;
	ev.args = args;
	ev.outcome = (enum audit_outcome)bad_events[_i].outcome;
	ck_assert_int_eq(audit_event_body(&ev, &out, err, sizeof err), -1);
	ck_assert_msg(strstr(err, bad_events[_i].err) != NULL, "error '%s'", err);
	json_object_put(args);
	buf_free(&out);
}
END_TEST

START_TEST(test_event_action_length)
{
	char action[202];
	struct audit_event ev;
	struct buf out = BUF_INIT;
	char err[128];

	memset(action, 'a', 200);
	action[200] = '\0';
	audit_event_init(&ev, 1, action);
	ck_assert_int_eq(audit_event_body(&ev, &out, err, sizeof err), 0);
	action[200] = 'a';
	action[201] = '\0';
	buf_reset(&out);
	ck_assert_int_eq(audit_event_body(&ev, &out, err, sizeof err), -1);
	buf_free(&out);
}
END_TEST

/* ---- generated exports ----------------------------------------------------- */

#define ORG 7
#define NEVENTS 10

/* An export being built: one line each, the header first, the trailer last. */
struct gen {
	char *lines[64];
	int n;
	uint8_t head[32];
	long long seq;
	EVP_PKEY *key;
};

static void sha256_2(const uint8_t *a, size_t alen, const char *b, size_t blen, uint8_t out[32])
{
	uint8_t *tmp = malloc(alen + blen);

	memcpy(tmp, a, alen);
	memcpy(tmp + alen, b, blen);
	SHA256(tmp, alen + blen, out);
	free(tmp);
}

/* canon as audit_append's SQL writes it. */
static char *make_canon(const char *body, long long org, long long seq)
{
	return xasprintf("{\"body\":%s,\"org\":%lld,\"seq\":%lld,\"ts\":\"2026-01-02T03:04:%02lld.000000Z\","
	                 "\"v\":1}", body, org, seq, seq % 60);
}

/* An event line with the given canon chained to prev. */
static char *make_line(const char *canon, long long seq, const uint8_t prev[32], uint8_t hash[32])
{
	struct buf line = BUF_INIT;
	json_object *c = json_object_new_string(canon);
	char p[65], h[65];

	sha256_2(prev, 32, canon, strlen(canon), hash);
	hex_encode(prev, 32, p);
	hex_encode(hash, 32, h);
	buf_printf(&line, "{\"canon\":%s,\"prev_hash\":\"%s\",\"row_hash\":\"%s\",\"seq\":%lld}",
	           json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN), p, h, seq);
	json_object_put(c);
	return line.data;
}

static void gen_add_body(struct gen *g, const char *body)
{
	char *canon = make_canon(body, ORG, ++g->seq);
	uint8_t hash[32];

	g->lines[g->n++] = make_line(canon, g->seq, g->head, hash);
	memcpy(g->head, hash, 32);
	free(canon);
}

static void gen_add(struct gen *g, const char *action)
{
	struct audit_event ev;
	struct buf body = BUF_INIT;
	char err[64];

	audit_event_init(&ev, ORG, action);
	ck_assert_int_eq(audit_event_body(&ev, &body, err, sizeof err), 0);
	gen_add_body(g, body.data);
	buf_free(&body);
}

static void gen_init(struct gen *g, int events)
{
	memset(g, 0, sizeof *g);
	g->lines[g->n++] = xasprintf("{\"anchor_hash\":\"%064d\",\"anchor_seq\":0,"
	                             "\"format\":\"kvmgate-audit-export\",\"org\":%d,"
	                             "\"org_name\":\"x\",\"version\":1}", 0, ORG);
	for (int i = 0; i < events; i++)
		gen_add(g, "note");
}

static void gen_trailer(struct gen *g)
{
	char h[65];
	char *line;

	hex_encode(g->head, 32, h);
	line = xasprintf("{\"end\":true,\"events\":%d,\"head_hash\":\"%s\",\"head_seq\":%lld}",
	                 g->n - 1, h, g->seq);
	g->lines[g->n++] = line;
}

static void gen_free(struct gen *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->lines[i]);
	EVP_PKEY_free(g->key);
}

/* Removes line i. */
static void gen_remove(struct gen *g, int i)
{
	free(g->lines[i]);
	memmove(&g->lines[i], &g->lines[i + 1], sizeof g->lines[0] * (size_t)(g->n - i - 1));
	g->n--;
}

/* Inserts line at position i (taking ownership). */
static void gen_insert(struct gen *g, int i, char *line)
{
	memmove(&g->lines[i + 1], &g->lines[i], sizeof g->lines[0] * (size_t)(g->n - i));
	g->lines[i] = line;
	g->n++;
}

/* The prev and canon of line i (an event line). */
static void line_parts(const struct gen *g, int i, uint8_t prev[32], char **canon)
{
	json_object *o = json_tokener_parse(g->lines[i]), *m;

	ck_assert_ptr_nonnull(o);
	json_object_object_get_ex(o, "prev_hash", &m);
	ck_assert_int_eq(hex_decode(json_object_get_string(m), 32, prev), 0);
	json_object_object_get_ex(o, "canon", &m);
	*canon = xstrdup(json_object_get_string(m));
	json_object_put(o);
}

/*
 * Runs the stream verifier over the lines; seekable uses a memory file
 * (fseeko works), otherwise a pipe.
 */
static void verify_lines(const struct gen *g, bool seekable, const uint8_t *pin,
                         struct audit_report *rep)
{
	struct buf all = BUF_INIT;
	FILE *f;

	for (int i = 0; i < g->n; i++) {
		buf_puts(&all, g->lines[i]);
		buf_puts(&all, "\n");
	}
	if (seekable) {
		f = fmemopen(all.data, all.len, "r");
	} else {
		int fds[2];
		ck_assert_int_eq(pipe(fds), 0);
		ck_assert_int_eq(write(fds[1], all.data, all.len), (ssize_t)all.len);
		close(fds[1]);
		f = fdopen(fds[0], "r");
	}
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(audit_verify_stream(f, pin, rep), 0);
	fclose(f);
	buf_free(&all);
}

START_TEST(test_verify_intact)
{
	struct gen g;
	struct audit_report rep;
	char h[65];

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	hex_encode(g.head, 32, h);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_msg(rep.problem == AUDIT_INTACT, "%s", rep.detail);
	ck_assert_int_eq(rep.events_checked, NEVENTS);
	ck_assert_int_eq(rep.head_seq, NEVENTS);
	ck_assert_str_eq(rep.head_hash, h);
	ck_assert_str_eq(rep.head_time, "2026-01-02T03:04:10.000000Z");
	ck_assert_int_eq(rep.org_id, ORG);
	ck_assert_int_eq(rep.broken_seq, 0);
	verify_lines(&g, false, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_INTACT);
	gen_free(&g);
}
END_TEST

START_TEST(test_verify_byte_changed)
{
	struct gen g;
	struct audit_report rep;
	char *p;

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	/* line 4 holds seq 4: "note" becomes "nute" */
	p = strstr(g.lines[4], "note");
	ck_assert_ptr_nonnull(p);
	p[1] = 'u';
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_HASH_MISMATCH);
	ck_assert_int_eq(rep.broken_seq, 4);
	ck_assert_int_eq(rep.events_checked, 3);
	ck_assert_int_eq(rep.head_seq, 3);
	gen_free(&g);
}
END_TEST

START_TEST(test_verify_line_removed)
{
	struct gen g;
	struct audit_report rep;

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	gen_remove(&g, 6);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_GAP);
	ck_assert_int_eq(rep.broken_seq, 6);
	ck_assert_int_eq(rep.events_checked, 5);
	gen_remove(&g, 6);	/* seq 6 and 7 gone */
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_GAP);
	ck_assert_int_eq(rep.broken_seq, 6);
	ck_assert(strstr(rep.detail, "6 to 7") != NULL);
	gen_free(&g);
}
END_TEST

/* A forged event claiming seq 5 after seq 4, correctly hashed: a fork. */
START_TEST(test_verify_line_inserted)
{
	struct gen g;
	struct audit_report rep;
	uint8_t prev[32], hash[32];
	char *canon, *forged;

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	line_parts(&g, 5, prev, &canon);
	forged = strstr(canon, "\"note\"");
	memcpy(forged, "\"nope\"", 6);
	gen_insert(&g, 6, make_line(canon, 5, prev, hash));
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_FORK);
	ck_assert_int_eq(rep.broken_seq, 5);
	ck_assert_int_eq(rep.events_checked, 5);
	/* placed before the genuine one: the same report */
	gen_remove(&g, 6);
	gen_insert(&g, 5, make_line(canon, 5, prev, hash));
	verify_lines(&g, false, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_FORK);
	ck_assert_int_eq(rep.broken_seq, 5);
	free(canon);
	gen_free(&g);
}
END_TEST

START_TEST(test_verify_line_duplicated)
{
	struct gen g;
	struct audit_report rep;

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	gen_insert(&g, 4, xstrdup(g.lines[3]));
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_DUPLICATE);
	ck_assert_int_eq(rep.broken_seq, 3);
	gen_free(&g);
}
END_TEST

/* Lines out of order: seq 3 after seq 4 after a gap-free start. */
START_TEST(test_verify_out_of_order)
{
	struct gen g;
	struct audit_report rep;
	char *tmp;

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	tmp = g.lines[3];
	g.lines[3] = g.lines[4];
	g.lines[4] = tmp;
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_GAP);
	ck_assert_int_eq(rep.broken_seq, 3);
	gen_free(&g);
}
END_TEST

/* Seq 4 replaced by a forgery that chains to seq 3 and hashes right: seq 5
 * still chains to the original, so seq 4 is the one reported. */
START_TEST(test_verify_replaced)
{
	struct gen g;
	struct audit_report rep;
	uint8_t prev[32], hash[32];
	char *canon;

	gen_init(&g, NEVENTS);
	gen_trailer(&g);
	line_parts(&g, 4, prev, &canon);
	memcpy(strstr(canon, "\"note\""), "\"nope\"", 6);
	free(g.lines[4]);
	g.lines[4] = make_line(canon, 4, prev, hash);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_REPLACED);
	ck_assert_int_eq(rep.broken_seq, 4);
	ck_assert_int_eq(rep.events_checked, 3);
	ck_assert_int_eq(rep.head_seq, 3);
	verify_lines(&g, false, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_REPLACED);
	ck_assert_int_eq(rep.broken_seq, 4);
	free(canon);
	gen_free(&g);
}
END_TEST

/* A forged last event chained to seq 3: a fork when the file can be searched,
 * a broken link from a pipe. */
START_TEST(test_verify_tail_fork)
{
	struct gen g;
	struct audit_report rep;
	uint8_t prev[32], hash[32];
	char *canon, *c2, *p;

	gen_init(&g, NEVENTS);
	line_parts(&g, 4, prev, &canon);
	p = strstr(canon, "\"seq\":4");
	c2 = xasprintf("%.*s\"seq\":11%s", (int)(p - canon), canon, p + 7);
	g.lines[g.n++] = make_line(c2, 11, prev, hash);
	memcpy(g.head, hash, 32);
	g.seq = 11;
	gen_trailer(&g);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_FORK);
	ck_assert_int_eq(rep.broken_seq, 11);
	ck_assert_msg(strstr(rep.detail, "seq 3, which seq 4") != NULL, "%s", rep.detail);
	verify_lines(&g, false, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_PREV_MISMATCH);
	ck_assert_int_eq(rep.broken_seq, 11);
	free(canon);
	free(c2);
	gen_free(&g);
}
END_TEST

/* A body rewritten with whitespace and every hash after it recomputed: the
 * chain links, but canon is no longer what audit_append writes. */
START_TEST(test_verify_not_canonical)
{
	static const struct { const char *canon; const char *why; } cases[] = {
		{ "{\"body\": {\"action\":\"x\"},\"org\":7,\"seq\":1,\"ts\":\"2026-01-02T03:04:01.000000Z\",\"v\":1}",
		  "canonical" },
		{ "{\"body\":{\"action\":\"x\"},\"org\":8,\"seq\":1,\"ts\":\"2026-01-02T03:04:01.000000Z\",\"v\":1}",
		  "another organisation" },
		{ "{\"body\":{\"action\":\"x\"},\"org\":7,\"seq\":2,\"ts\":\"2026-01-02T03:04:01.000000Z\",\"v\":1}",
		  "another seq" },
		{ "{\"body\":{\"action\":\"x\"},\"org\":7,\"seq\":1,\"ts\":\"yesterday\",\"v\":1}", "lacks" },
		{ "{\"body\":{\"action\":\"x\"},\"org\":7,\"seq\":1,\"ts\":\"2026-01-02T03:04:01.000000Z\",\"v\":\"1\"}",
		  "lacks" },
		{ "{\"body\":{},\"org\":7,\"seq\":1,\"ts\":\"2026-01-02T03:04:01.000000Z\",\"v\":1}", "lacks" },
		{ "{\"body\":{\"action\":\"x\"},\"org\":7,\"seq\":1,\"ts\":\"2026-01-02T03:04:01.000000Z\",\"v\":1,\"w\":0}",
		  "lacks" },
		{ "[1]", "not a JSON object" },
		{ "{\"body\"", "not a JSON object" },
	};
	struct audit_report rep;
	uint8_t zero[32] = { 0 }, hash[32];
	struct gen g;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		gen_init(&g, 0);
		g.lines[g.n++] = make_line(cases[i].canon, 1, zero, hash);
		memcpy(g.head, hash, 32);
		g.seq = 1;
		gen_trailer(&g);
		verify_lines(&g, true, NULL, &rep);
		ck_assert_msg(rep.problem == AUDIT_CANON_INVALID, "case %zu: %s", i, rep.detail);
		ck_assert_int_eq(rep.broken_seq, 1);
		ck_assert_msg(strstr(rep.detail, cases[i].why) != NULL, "case %zu: %s", i, rep.detail);
		gen_free(&g);
	}
}
END_TEST

static const struct { const char *line; long long seq; } malformed_cases[] = {
	{ "not json", 1 },
	{ "{\"seq\":1}", 1 },
	{ "{\"canon\":\"{}\",\"prev_hash\":\"00\",\"row_hash\":\"00\"}", 1 },
	{ "{\"canon_hex\":\"zz\",\"prev_hash\":\"00\",\"row_hash\":\"00\",\"seq\":1}", 1 },
};

START_TEST(test_verify_malformed_lines)
{
	struct gen g;
	struct audit_report rep;

	gen_init(&g, 0);
	g.lines[g.n++] = xstrdup(malformed_cases[_i].line);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_MALFORMED);
	ck_assert_int_eq(rep.broken_seq, malformed_cases[_i].seq);
	gen_free(&g);
}
END_TEST

START_TEST(test_verify_export_framing)
{
	struct gen g;
	struct audit_report rep;

	/* no trailer: truncated */
	gen_init(&g, 3);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_MALFORMED);
	ck_assert(strstr(rep.detail, "truncated") != NULL);
	ck_assert_int_eq(rep.events_checked, 3);
	/* a trailer that counts differently: the last line was cut off */
	gen_trailer(&g);
	gen_remove(&g, 3);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_MALFORMED);
	ck_assert(strstr(rep.detail, "trailer") != NULL);
	gen_free(&g);
	/* data after the trailer */
	gen_init(&g, 2);
	gen_trailer(&g);
	gen_add(&g, "note");
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_MALFORMED);
	ck_assert(strstr(rep.detail, "after the trailer") != NULL);
	gen_free(&g);
	/* a first line that is not a header */
	gen_init(&g, 2);
	gen_trailer(&g);
	free(g.lines[0]);
	g.lines[0] = xstrdup("{\"format\":\"something-else\"}");
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_MALFORMED);
	ck_assert_int_eq(rep.broken_seq, 0);
	gen_free(&g);
	/* empty */
	gen_init(&g, 0);
	gen_remove(&g, 0);
	verify_lines(&g, false, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_MALFORMED);
	gen_free(&g);
}
END_TEST

/* An anchor (retention moved it): the chain starts after it and from its hash. */
START_TEST(test_verify_anchor)
{
	struct gen g;
	struct audit_report rep;
	uint8_t anchor[32];
	char hex[65];

	memset(&g, 0, sizeof g);
	memset(anchor, 0xab, sizeof anchor);
	hex_encode(anchor, 32, hex);
	g.lines[g.n++] = xasprintf("{\"anchor_hash\":\"%s\",\"anchor_seq\":100,"
	                           "\"format\":\"kvmgate-audit-export\",\"org\":%d,\"version\":1}",
	                           hex, ORG);
	memcpy(g.head, anchor, 32);
	g.seq = 100;
	gen_add(&g, "a");
	gen_add(&g, "b");
	gen_trailer(&g);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_msg(rep.problem == AUDIT_INTACT, "%s", rep.detail);
	ck_assert_int_eq(rep.anchor_seq, 100);
	ck_assert_str_eq(rep.anchor_hash, hex);
	ck_assert_int_eq(rep.head_seq, 102);
	ck_assert_int_eq(rep.events_checked, 2);
	/* the same events against another anchor hash */
	free(g.lines[0]);
	g.lines[0] = xasprintf("{\"anchor_hash\":\"%064d\",\"anchor_seq\":100,"
	                       "\"format\":\"kvmgate-audit-export\",\"org\":%d,\"version\":1}", 0, ORG);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_PREV_MISMATCH);
	ck_assert_int_eq(rep.broken_seq, 101);
	ck_assert(strstr(rep.detail, "anchor") != NULL);
	gen_free(&g);
}
END_TEST

/* ---- checkpoints ----------------------------------------------------------- */

/*
 * Appends a checkpoint event signing the current head with g->key; the
 * signed size, head or signature can be spoilt for the negative cases.
 */
enum spoil { SPOIL_NONE, SPOIL_SIGNATURE, SPOIL_SIZE, SPOIL_KEY_ID };

static void gen_checkpoint(struct gen *g, enum spoil spoil)
{
	uint8_t pub[32], sig[64];
	size_t publen = 32, siglen = 64;
	char pub_hex[65], sig_hex[129], head_hex[65], id[9], origin[64];
	long long size = spoil == SPOIL_SIZE ? g->seq - 1 : g->seq;
	struct buf note = BUF_INIT, body = BUF_INIT;
	json_object *args = json_object_new_object();
	struct audit_event ev;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char err[64];

	if (g->key == NULL)
		g->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ck_assert_int_eq(EVP_PKEY_get_raw_public_key(g->key, pub, &publen), 1);
	audit_note(ORG, size, g->head, "2026-01-02T03:05:00.000000Z", &note);
	ck_assert_int_eq(EVP_DigestSignInit(c, NULL, NULL, NULL, g->key), 1);
	ck_assert_int_eq(EVP_DigestSign(c, sig, &siglen, (unsigned char *)note.data, note.len), 1);
	EVP_MD_CTX_free(c);
	if (spoil == SPOIL_SIGNATURE)
		sig[10] ^= 1;
	hex_encode(pub, 32, pub_hex);
	hex_encode(sig, 64, sig_hex);
	hex_encode(g->head, 32, head_hex);
	audit_key_id(pub, id);
	if (spoil == SPOIL_KEY_ID)
		id[0] = id[0] == '0' ? '1' : '0';
	snprintf(origin, sizeof origin, "kvmgate/audit/org/%d", ORG);
	json_object_object_add(args, "origin", json_object_new_string(origin));
	json_object_object_add(args, "size", json_object_new_int64(size));
	json_object_object_add(args, "head", json_object_new_string(head_hex));
	json_object_object_add(args, "time", json_object_new_string("2026-01-02T03:05:00.000000Z"));
	json_object_object_add(args, "key_name", json_object_new_string("kvmgate-audit"));
	json_object_object_add(args, "key_id", json_object_new_string(id));
	json_object_object_add(args, "pubkey", json_object_new_string(pub_hex));
	json_object_object_add(args, "signature", json_object_new_string(sig_hex));
	audit_event_init(&ev, ORG, "audit.checkpoint");
	ev.args = args;
	ck_assert_int_eq(audit_event_body(&ev, &body, err, sizeof err), 0);
	gen_add_body(g, body.data);
	json_object_put(args);
	buf_free(&note);
	buf_free(&body);
}

START_TEST(test_checkpoint_good)
{
	struct gen g;
	struct audit_report rep;
	uint8_t pub[32];
	size_t publen = 32;
	char id[9];

	gen_init(&g, 3);
	gen_checkpoint(&g, SPOIL_NONE);
	gen_add(&g, "after");
	gen_checkpoint(&g, SPOIL_NONE);
	gen_trailer(&g);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_msg(rep.problem == AUDIT_INTACT, "%s", rep.detail);
	ck_assert_int_eq(rep.checkpoints, 2);
	ck_assert_int_eq(rep.last_checkpoint_seq, 6);
	ck_assert(!rep.pinned);
	ck_assert(!rep.checkpoint_keys_differ);
	EVP_PKEY_get_raw_public_key(g.key, pub, &publen);
	audit_key_id(pub, id);
	ck_assert_str_eq(rep.checkpoint_key, id);
	/* pinned to the signing key */
	verify_lines(&g, true, pub, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_INTACT);
	ck_assert(rep.pinned);
	/* pinned to another key: the first checkpoint is refused */
	pub[0] ^= 1;
	verify_lines(&g, true, pub, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_CHECKPOINT_INVALID);
	ck_assert_int_eq(rep.broken_seq, 4);
	ck_assert(strstr(rep.detail, "pinned") != NULL);
	gen_free(&g);
}
END_TEST

static const struct { enum spoil spoil; const char *why; } spoil_cases[] = {
	{ SPOIL_SIGNATURE, "does not verify" },
	{ SPOIL_SIZE, "does not sign the head" },
	{ SPOIL_KEY_ID, "key id" },
};

START_TEST(test_checkpoint_bad)
{
	struct gen g;
	struct audit_report rep;

	gen_init(&g, 3);
	gen_checkpoint(&g, spoil_cases[_i].spoil);
	gen_add(&g, "after");
	gen_trailer(&g);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_CHECKPOINT_INVALID);
	ck_assert_int_eq(rep.broken_seq, 4);
	ck_assert_msg(strstr(rep.detail, spoil_cases[_i].why) != NULL, "%s", rep.detail);
	ck_assert_int_eq(rep.events_checked, 3);
	gen_free(&g);
}
END_TEST

/* A checkpoint by another key: accepted unpinned, but reported as a change. */
START_TEST(test_checkpoint_key_change)
{
	struct gen g;
	struct audit_report rep;

	gen_init(&g, 2);
	gen_checkpoint(&g, SPOIL_NONE);
	EVP_PKEY_free(g.key);
	g.key = NULL;
	gen_checkpoint(&g, SPOIL_NONE);
	gen_trailer(&g);
	verify_lines(&g, true, NULL, &rep);
	ck_assert_int_eq(rep.problem, AUDIT_INTACT);
	ck_assert(rep.checkpoint_keys_differ);
	gen_free(&g);
}
END_TEST

START_TEST(test_key_files)
{
	char dir[] = "/tmp/kvmgate-check-audit-XXXXXX";
	char *key, *pubfile, *hexfile;
	uint8_t pub[32], again[32], from_pub[32], from_hex[32];
	char hex[65];
	struct stat st;
	EVP_PKEY *k;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	key = xasprintf("%s/audit.pem", dir);
	pubfile = xasprintf("%s/pub.pem", dir);
	hexfile = xasprintf("%s/pub.hex", dir);
	ck_assert_int_eq(audit_key_public(key, false, pub), -1);	/* missing, not created */
	ck_assert_int_eq(audit_key_public(key, true, pub), 0);
	ck_assert_int_eq(stat(key, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(audit_key_public(key, true, again), 0);	/* same key the second time */
	ck_assert(memcmp(pub, again, 32) == 0);
	/* pin from the private key file, a PEM public key and hex */
	ck_assert_int_eq(audit_pubkey_read(key, from_pub), 0);
	ck_assert(memcmp(pub, from_pub, 32) == 0);
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	f = fopen(pubfile, "w");
	ck_assert_int_eq(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
	EVP_PKEY_free(k);
	memset(from_pub, 0, 32);
	ck_assert_int_eq(audit_pubkey_read(pubfile, from_pub), 0);
	ck_assert(memcmp(pub, from_pub, 32) == 0);
	hex_encode(pub, 32, hex);
	f = fopen(hexfile, "w");
	fprintf(f, "%s\n", hex);
	fclose(f);
	ck_assert_int_eq(audit_pubkey_read(hexfile, from_hex), 0);
	ck_assert(memcmp(pub, from_hex, 32) == 0);
	/* garbage, and a key others can read */
	f = fopen(hexfile, "w");
	fputs("not a key\n", f);
	fclose(f);
	ck_assert_int_eq(audit_pubkey_read(hexfile, from_hex), -1);
	ck_assert_int_eq(chmod(key, 0644), 0);
	ck_assert_int_eq(audit_key_public(key, true, again), -1);
	unlink(key);
	unlink(pubfile);
	unlink(hexfile);
	rmdir(dir);
	free(key);
	free(pubfile);
	free(hexfile);
}
END_TEST

START_TEST(test_report_json)
{
	struct gen g;
	struct audit_report rep;
	json_object *o, *m;

	gen_init(&g, 3);
	gen_trailer(&g);
	g.lines[2][strlen(g.lines[2]) - 2] = '9';	/* seq 2 becomes 9: a gap */
	verify_lines(&g, true, NULL, &rep);
	o = audit_report_json(&rep);
	ck_assert(json_object_object_get_ex(o, "chain_ok", &m) && !json_object_get_boolean(m));
	ck_assert(json_object_object_get_ex(o, "first_break_seq", &m) && json_object_get_int64(m) == 2);
	ck_assert(json_object_object_get_ex(o, "problem", &m));
	ck_assert_str_eq(json_object_get_string(m), "gap");
	ck_assert(json_object_object_get_ex(o, "events_checked", &m) && json_object_get_int64(m) == 1);
	json_object_put(o);
	ck_assert_str_eq(audit_problem_name(AUDIT_HASH_MISMATCH), "hash_mismatch");
	ck_assert_str_eq(audit_problem_name((enum audit_problem)99), "unknown");
	gen_free(&g);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *canon = tcase_create("canon"), *verify = tcase_create("verify");

	tcase_add_loop_test(canon, test_canon_golden, 0, (int)ARRAY_LEN(canon_cases));
	tcase_add_loop_test(canon, test_canon_raw_bytes, 0, (int)ARRAY_LEN(raw_cases));
	tcase_add_test(canon, test_canon_raw_keys);
	tcase_add_test(canon, test_canon_special_numbers);
	tcase_add_test(canon, test_canon_depth);
	tcase_add_loop_test(canon, test_secret_keys, 0, (int)ARRAY_LEN(secret_cases));
	tcase_add_test(canon, test_redact_nested);
	tcase_add_test(canon, test_event_body_full);
	tcase_add_test(canon, test_event_body_minimal);
	tcase_add_loop_test(canon, test_event_body_refused, 0, (int)ARRAY_LEN(bad_events));
	tcase_add_test(canon, test_event_action_length);
	suite_add_tcase(s, canon);

	tcase_add_test(verify, test_verify_intact);
	tcase_add_test(verify, test_verify_byte_changed);
	tcase_add_test(verify, test_verify_line_removed);
	tcase_add_test(verify, test_verify_line_inserted);
	tcase_add_test(verify, test_verify_line_duplicated);
	tcase_add_test(verify, test_verify_out_of_order);
	tcase_add_test(verify, test_verify_replaced);
	tcase_add_test(verify, test_verify_tail_fork);
	tcase_add_test(verify, test_verify_not_canonical);
	tcase_add_loop_test(verify, test_verify_malformed_lines, 0, (int)ARRAY_LEN(malformed_cases));
	tcase_add_test(verify, test_verify_export_framing);
	tcase_add_test(verify, test_verify_anchor);
	tcase_add_test(verify, test_checkpoint_good);
	tcase_add_loop_test(verify, test_checkpoint_bad, 0, (int)ARRAY_LEN(spoil_cases));
	tcase_add_test(verify, test_checkpoint_key_change);
	tcase_add_test(verify, test_key_files);
	tcase_add_test(verify, test_report_json);
	suite_add_tcase(s, verify);
	return s;
}

int main(void)
{
	return check_run(audit_suite());
}
