/*
 * identity.c - kvmgate token, user and org: API tokens, members of an
 * organisation and organisations, from the server's shell. A table of
 * subcommands, each with the options and arguments it takes; every one
 * answers for people, or with --json one JSON object.
 *
 * The same rules as the REST API where they apply: a clear token is printed
 * once and stored only as its hash; the last org_admin of an organisation
 * is neither demoted, disabled nor removed. Creating organisations is done
 * here only. Every change is in the organisation's audit chain, by the CLI
 * as actor: its intent before it is made, its outcome after. A token revoked here is refused by the gateway once its
 * workers' lookup cache expires (KVMGATE_AUTH_CACHE_MS).
 *
 * A dashboard password is read from stdin or the first line of a file,
 * never from the command line (which other local users can see), hashed
 * with scrypt (shared/passwd.c) and never printed or recorded.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "conf.h"
#include "db.h"
#include "passwd.h"
#include "tokens.h"

#define TIME_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

enum opt {
	OPT_ORG = 1 << 0, OPT_JSON = 1 << 1, OPT_USER = 1 << 2, OPT_NAME = 1 << 3,
	OPT_SCOPES = 1 << 4, OPT_TAG = 1 << 5, OPT_DAYS = 1 << 6, OPT_ROLE = 1 << 7,
	OPT_EMAIL = 1 << 8, OPT_PW_FILE = 1 << 9, OPT_PW_STDIN = 1 << 10,
};

static const struct option long_opts[] = {
	{ "org", required_argument, NULL, OPT_ORG },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "user", required_argument, NULL, OPT_USER },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "scopes", required_argument, NULL, OPT_SCOPES },
	{ "device-tag", required_argument, NULL, OPT_TAG },
	{ "expires-in-days", required_argument, NULL, OPT_DAYS },
	{ "role", required_argument, NULL, OPT_ROLE },
	{ "email", required_argument, NULL, OPT_EMAIL },
	{ "password-file", required_argument, NULL, OPT_PW_FILE },
	{ "password-stdin", no_argument, NULL, OPT_PW_STDIN },
	{ NULL, 0, NULL, 0 },
};

/* The options and arguments of one invocation; strings point into argv. */
struct id_opts {
	unsigned seen;
	const char *org, *user, *name, *scopes, *tag, *role, *email, *pw_file;
	long long days;
	bool json, pw_stdin;
	const char *arg[2];
	long long org_id;	/* resolved from org */
};

typedef int sub_fn(struct id_opts *o);
static sub_fn token_create_cmd, token_list, token_revoke_cmd, user_add, user_list,
	user_set_role, user_disable, user_remove, user_passwd, org_create, org_list;

static const struct sub {
	const char *group, *name;
	sub_fn *fn;
	unsigned allowed, required;
	int nargs;		/* positional arguments */
	bool needs_org;		/* resolve --org (default $KVMGATE_ORG) first */
	bool writes;		/* a change: recorded in the organisation's audit chain */
	const char *usage;
} subs[] = {
	{ "token", "create", token_create_cmd,
	  OPT_ORG | OPT_JSON | OPT_USER | OPT_NAME | OPT_SCOPES | OPT_TAG | OPT_DAYS,
	  OPT_USER | OPT_NAME, 0, true, true,
	  "create --user U --name N [--scopes read,write] [--device-tag T] [--expires-in-days D]\n"
	  "                               a token; the clear token is printed once" },
	{ "token", "list", token_list, OPT_ORG | OPT_JSON | OPT_USER, 0, 0, true, false,
	  "list [--user U]              the organisation's tokens (never a hash or clear token)" },
	{ "token", "revoke", token_revoke_cmd, OPT_ORG | OPT_JSON, 0, 1, true, true,
	  "revoke ID                    revoke a token" },
	{ "user", "add", user_add,
	  OPT_ORG | OPT_JSON | OPT_ROLE | OPT_EMAIL | OPT_PW_FILE | OPT_PW_STDIN, OPT_ROLE, 1,
	  true, true,
	  "add USERNAME --role R [--email E] [--password-file F | --password-stdin]\n"
	  "                               a member (the user is created when new); with a\n"
	  "                               password, the user can sign in to the dashboard" },
	{ "user", "passwd", user_passwd, OPT_ORG | OPT_JSON | OPT_PW_FILE | OPT_PW_STDIN, 0, 1,
	  true, true,
	  "passwd USERNAME [--password-file F]   set the dashboard password (read from stdin,\n"
	  "                               the first line of F; never an argument); ends the\n"
	  "                               user's dashboard sessions" },
	{ "user", "list", user_list, OPT_ORG | OPT_JSON, 0, 0, true, false,
	  "list                         members and their roles" },
	{ "user", "set-role", user_set_role, OPT_ORG | OPT_JSON, 0, 2, true, true,
	  "set-role USERNAME ROLE       org_admin, operator, viewer or auditor" },
	{ "user", "disable", user_disable, OPT_ORG | OPT_JSON, 0, 1, true, true,
	  "disable USERNAME             refuse every token of the user" },
	{ "user", "remove", user_remove, OPT_ORG | OPT_JSON, 0, 1, true, true,
	  "remove USERNAME              end the membership; its tokens here go with it" },
	{ "org", "create", org_create, OPT_JSON, 0, 1, false, false,
	  "create NAME                  a new organisation (then: user add --org NAME ... --role org_admin)" },
	{ "org", "list", org_list, OPT_JSON, 0, 0, false, false,
	  "list                         organisations with their members and devices" },
};

static const char *const roles[] = { "org_admin", "operator", "viewer", "auditor" };

static int usage(const char *group)
{
	fprintf(stderr, "usage: kvmgate %s <subcommand> [--org NAME] [--json] ...\n", group);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		if (strcmp(subs[i].group, group) == 0)
			fprintf(stderr, "  %s\n", subs[i].usage);
	fputs("--org defaults to $KVMGATE_ORG.\n", stderr);
	return 2;
}

static int db_failed(void)
{
	fprintf(stderr, "kvmgate: %s\n", db_last_error());
	return 1;
}

static bool username_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool role_ok(const char *s)
{
	for (size_t i = 0; i < ARRAY_LEN(roles); i++)
		if (strcmp(roles[i], s) == 0)
			return true;
	fprintf(stderr, "kvmgate: the role must be org_admin, operator, viewer or auditor\n");
	return false;
}

/*
 * Runs sql (which returns one JSON array as text) and prints it under key
 * with --json, else each element through line. Returns the exit status.
 */
static int print_rows(struct id_opts *o, const char *sql, int n, const char *const *p,
                      const char *key, void (*line)(json_object *row))
{
	PGresult *r = db_query(sql, n, p);
	json_object *rows, *out;

	if (r == NULL)
		return db_failed();
	rows = json_tokener_parse(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (o->json) {
		out = json_object_new_object();
		json_object_object_add(out, key, rows);
		cli_print_json(out);
		return 0;
	}
	for (size_t i = 0; i < json_object_array_length(rows); i++)
		line(json_object_array_get_idx(rows, i));
	json_object_put(rows);
	return 0;
}

/* A member of row as a string, "-" when null or absent. */
static const char *s(json_object *row, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(row, key, &v) && v != NULL ? json_object_get_string(v) : "-";
}

/* The id of member username of o's organisation, or 0 after saying there is none. */
static long long member_id(struct id_opts *o, const char *username)
{
	static const char sql[] =
		"SELECT u.id FROM users u JOIN memberships m ON m.user_id = u.id "
		"WHERE m.org_id = $1 AND u.username = $2";
	char org[24];
	const char *p[2] = { org, username };
	long long id = 0;
	PGresult *r;

	snprintf(org, sizeof org, "%lld", o->org_id);
	if ((r = db_query(sql, 2, p)) == NULL) {
		db_failed();
		return 0;
	}
	if (PQntuples(r) == 1)
		id = atoll(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "kvmgate: no member '%s' in organisation '%s'\n", username, o->org);
	PQclear(r);
	return id;
}

/* ---- token -------------------------------------------------------------------- */

static int token_create_cmd(struct id_opts *o)
{
	char scopes[16], clear[TOKEN_LEN + 1], expiry[40] = "";
	bool read = false, write = false;
	struct token_spec spec = { 0 };
	const char *list = o->scopes ? o->scopes : "read";
	long long id;

	for (const char *p = list; *p; ) {
		size_t n = strcspn(p, ",");
		bool *want = n == 4 && strncmp(p, "read", 4) == 0 ? &read
			: n == 5 && strncmp(p, "write", 5) == 0 ? &write : NULL;
		if (want == NULL) {
			fprintf(stderr, "kvmgate: --scopes takes read, write or read,write\n");
			return 2;
		}
		*want = true;
		p += n + (p[n] == ',');
	}
	if (!read && !write) {
		fprintf(stderr, "kvmgate: --scopes takes read, write or read,write\n");
		return 2;
	}
	if (!cli_text_ok(o->name, 100) || (o->tag != NULL && !cli_text_ok(o->tag, 64))) {
		fprintf(stderr, "kvmgate: --name (1-100) and --device-tag (1-64) must be text "
		        "without control characters\n");
		return 2;
	}
	snprintf(scopes, sizeof scopes, "{%s%s%s}", read ? "read" : "", read && write ? "," : "",
	         write ? "write" : "");
	if (o->seen & OPT_DAYS) {
		time_t t = time(NULL) + (time_t)o->days * 86400;
		struct tm tm;
		strftime(expiry, sizeof expiry, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	}
	if ((spec.user_id = member_id(o, o->user)) == 0)
		return 1;
	spec.org_id = o->org_id;
	spec.name = o->name;
	spec.scopes = scopes;
	spec.device_tag = o->tag;
	spec.expires_at = expiry[0] ? expiry : NULL;
	if (token_insert(&spec, clear, &id) < 0)
		return db_failed();
	if (o->json) {
		json_object *j = json_object_new_object(), *sc = json_object_new_array();
		if (read)
			json_object_array_add(sc, json_object_new_string("read"));
		if (write)
			json_object_array_add(sc, json_object_new_string("write"));
		json_object_object_add(j, "id", json_object_new_int64(id));
		json_object_object_add(j, "name", json_object_new_string(o->name));
		json_object_object_add(j, "user", json_object_new_string(o->user));
		json_object_object_add(j, "scopes", sc);
		json_object_object_add(j, "device_tag", o->tag ? json_object_new_string(o->tag) : NULL);
		json_object_object_add(j, "expires_at", expiry[0] ? json_object_new_string(expiry) : NULL);
		json_object_object_add(j, "token", json_object_new_string(clear));
		cli_print_json(j);
	} else {
		printf("token %lld '%s' for %s in organisation '%s', scopes %s%s%s%s%s; shown once:\n%s\n",
		       id, o->name, o->user, o->org, scopes, o->tag ? ", device tag " : "",
		       o->tag ? o->tag : "", expiry[0] ? ", expires " : "", expiry, clear);
	}
	explicit_bzero(clear, sizeof clear);
	return 0;
}

static void token_line(json_object *t)
{
	printf("%-6s %-24s %-14s %-12s %-8s user=%s tag=%s expires=%s revoked=%s\n",
	       s(t, "id"), s(t, "name"), s(t, "prefix"), s(t, "scopes"),
	       strcmp(s(t, "revoked_at"), "-") != 0 ? "revoked" : "live", s(t, "user"),
	       s(t, "device_tag"), s(t, "expires_at"), s(t, "revoked_at"));
}

static int token_list(struct id_opts *o)
{
	static const char sql[] =
		"SELECT coalesce(json_agg(json_build_object('id', t.id, 'name', t.name, "
		"  'prefix', t.shown, 'scopes', t.scopes, 'device_tag', t.device_tag, "
		"  'expires_at', to_char(t.expires_at AT TIME ZONE 'UTC', " TIME_FMT "), "
		"  'created_at', to_char(t.created_at AT TIME ZONE 'UTC', " TIME_FMT "), "
		"  'last_used_at', to_char(t.last_used_at AT TIME ZONE 'UTC', " TIME_FMT "), "
		"  'revoked_at', to_char(t.revoked_at AT TIME ZONE 'UTC', " TIME_FMT "), "
		"  'user', u.username) ORDER BY t.id), '[]')::text "
		"FROM api_tokens t JOIN users u ON u.id = t.user_id "
		"WHERE t.org_id = $1 AND ($2::text IS NULL OR u.username = $2)";
	char org[24];
	const char *p[2] = { org, o->user };

	snprintf(org, sizeof org, "%lld", o->org_id);
	return print_rows(o, sql, 2, p, "tokens", token_line);
}

static int token_revoke_cmd(struct id_opts *o)
{
	long long id;
	const char *err;
	int rc;

	if (parse_ll(o->arg[0], 1, 1LL << 62, &id, &err) < 0) {
		fprintf(stderr, "kvmgate: token id %s: %s\n", o->arg[0], err);
		return 2;
	}
	if ((rc = token_revoke(o->org_id, 0, id)) < 0)
		return db_failed();
	if (rc == 0) {
		fprintf(stderr, "kvmgate: no live token %lld in organisation '%s'\n", id, o->org);
		return 1;
	}
	if (o->json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "id", json_object_new_int64(id));
		json_object_object_add(j, "revoked", json_object_new_boolean(true));
		cli_print_json(j);
	} else {
		printf("token %lld revoked; the gateway refuses it within KVMGATE_AUTH_CACHE_MS\n", id);
	}
	return 0;
}

/* ---- user ---------------------------------------------------------------------- */

/* Prints what a member change did: --json {"user","org",what: value}, else a sentence. */
static int done(struct id_opts *o, const char *user, const char *what, const char *value)
{
	if (o->json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "user", json_object_new_string(user));
		json_object_object_add(j, "org", json_object_new_string(o->org));
		json_object_object_add(j, what, json_object_new_string(value));
		cli_print_json(j);
	} else {
		printf("%s in organisation '%s': %s %s\n", user, o->org, what, value);
	}
	return 0;
}

/*
 * Reads one line (without its end) of at most PASSWD_MAX bytes from f into
 * buf (PASSWD_MAX + 2 bytes). Returns its length, or -1 when the line is
 * longer or holds a NUL.
 */
static long read_line(FILE *f, char *buf)
{
	size_t n = 0;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0' || n > PASSWD_MAX)
			return -1;
		buf[n++] = (char)c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return n > PASSWD_MAX ? -1 : (long)n;
}

/* Reads a line from the terminal with echo off, after prompt on stderr. */
static long read_hidden(const char *prompt, char *buf)
{
	struct termios old, quiet;
	long n;

	fputs(prompt, stderr);
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return read_line(stdin, buf);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	n = read_line(stdin, buf);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	return n;
}

/*
 * The new password of o (the first line of --password-file, else of stdin;
 * typed twice when stdin is a terminal), hashed into hash. The clear text
 * is wiped before returning. Returns 0, or the exit status after saying why.
 */
static int new_password(struct id_opts *o, char hash[PASSWD_ENCODED_MAX])
{
	char pw[PASSWD_MAX + 2], again[PASSWD_MAX + 2];
	long n = -1;
	int rc = 2;

	if (o->pw_file != NULL) {
		FILE *f = fopen(o->pw_file, "r");
		if (f == NULL) {
			fprintf(stderr, "kvmgate: %s: cannot read it\n", o->pw_file);
			return 2;
		}
		n = read_line(f, pw);
		fclose(f);
	} else if (isatty(STDIN_FILENO)) {
		n = read_hidden("New password: ", pw);
		if (n >= 0 && (read_hidden("Again: ", again) != n || memcmp(pw, again, (size_t)n))) {
			fprintf(stderr, "kvmgate: the two passwords differ\n");
			goto done;
		}
	} else {
		n = read_line(stdin, pw);
	}
	if (n < 0 || !cli_text_ok(pw, PASSWD_MAX) || strlen(pw) < PASSWD_MIN) {
		fprintf(stderr, "kvmgate: a password is one line of %d to %d characters without "
		        "control characters\n", PASSWD_MIN, PASSWD_MAX);
		goto done;
	}
	if (passwd_hash(pw, (size_t)n, hash, PASSWD_ENCODED_MAX) < 0) {
		fprintf(stderr, "kvmgate: the password could not be hashed\n");
		rc = 1;
		goto done;
	}
	rc = 0;
done:
	explicit_bzero(pw, sizeof pw);
	explicit_bzero(again, sizeof again);
	return rc;
}

/*
 * Sets the password of user id to hash and ends the user's dashboard
 * sessions, in one transaction. Returns the exit status.
 */
static int set_password(long long id, const char *hash)
{
	static const char set[] = "UPDATE users SET password_hash = $2 WHERE id = $1";
	static const char end[] = "DELETE FROM web_sessions WHERE user_id = $1";
	char user[24];
	const char *p[2] = { user, hash };
	PGresult *r;

	snprintf(user, sizeof user, "%lld", id);
	if (db_exec("BEGIN") < 0)
		return db_failed();
	if ((r = db_query(set, 2, p)) == NULL)
		goto fail;
	PQclear(r);
	if ((r = db_query(end, 1, p)) == NULL)
		goto fail;
	PQclear(r);
	if (db_exec("COMMIT") < 0)
		return db_failed();
	return 0;
fail:
	db_failed();
	if (db_exec("ROLLBACK") < 0)
		return 1;
	return 1;
}

static int user_passwd(struct id_opts *o)
{
	char hash[PASSWD_ENCODED_MAX];
	long long id;
	int rc;

	if ((id = member_id(o, o->arg[0])) == 0)
		return 1;
	if ((rc = new_password(o, hash)) != 0)
		return rc;
	if ((rc = set_password(id, hash)) != 0)
		return rc;
	return done(o, o->arg[0], "password", "set");
}

static int user_add(struct id_opts *o)
{
	static const char sql[] =
		"WITH n AS (INSERT INTO users (username, email) VALUES ($2, $3) "
		"           ON CONFLICT (username) DO NOTHING RETURNING id), "
		"x AS (SELECT id FROM n UNION ALL SELECT id FROM users WHERE username = $2) "
		"INSERT INTO memberships (org_id, user_id, role) "
		"SELECT $1, id, $4::org_role FROM x LIMIT 1 "
		"ON CONFLICT DO NOTHING RETURNING user_id";
	char org[24], hash[PASSWD_ENCODED_MAX];
	const char *p[4] = { org, o->arg[0], o->email, o->role };
	bool with_password = o->pw_file != NULL || o->pw_stdin;
	long long id;
	PGresult *r;
	int n, rc;

	if (!username_ok(o->arg[0])) {
		fprintf(stderr, "kvmgate: a username is 1 to 64 letters, digits, '.', '_' or '-'\n");
		return 2;
	}
	if (!role_ok(o->role) || (o->email != NULL && !cli_text_ok(o->email, 254)))
		return 2;
	if (with_password && (rc = new_password(o, hash)) != 0)
		return rc;
	snprintf(org, sizeof org, "%lld", o->org_id);
	if ((r = db_query(sql, 4, p)) == NULL)
		return db_failed();
	n = PQntuples(r);
	id = n > 0 ? atoll(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	if (n == 0) {
		fprintf(stderr, "kvmgate: %s is a member of '%s' already\n", o->arg[0], o->org);
		return 1;
	}
	if (with_password && (rc = set_password(id, hash)) != 0)
		return rc;
	return done(o, o->arg[0], "role", o->role);
}

static void user_line(json_object *u)
{
	printf("%-6s %-32s %-10s %s%s\n", s(u, "id"), s(u, "username"), s(u, "role"),
	       s(u, "email"), strcmp(s(u, "disabled"), "true") == 0 ? " (disabled)" : "");
}

static int user_list(struct id_opts *o)
{
	static const char sql[] =
		"SELECT coalesce(json_agg(json_build_object('id', u.id, 'username', u.username, "
		"  'email', u.email, 'role', m.role, 'disabled', u.disabled) ORDER BY u.username), "
		"  '[]')::text "
		"FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1";
	char org[24];
	const char *p[1] = { org };

	snprintf(org, sizeof org, "%lld", o->org_id);
	return print_rows(o, sql, 1, p, "users", user_line);
}

/*
 * Runs change (parameters org id, user id, value) on member username unless
 * it would leave the organisation without an enabled org_admin (keeps_admin:
 * whether the change leaves the member one). The organisation's row is
 * locked while it counts. Returns the exit status.
 */
static int member_change(struct id_opts *o, const char *username, const char *change,
                         const char *value, bool keeps_admin)
{
	static const char lock[] = "SELECT 1 FROM organisations WHERE id = $1 FOR UPDATE";
	static const char count[] =
		"SELECT count(*) FILTER (WHERE m.user_id <> $2), bool_or(m.user_id = $2) "
		"FROM memberships m JOIN users u ON u.id = m.user_id "
		"WHERE m.org_id = $1 AND m.role = 'org_admin' AND NOT u.disabled";
	char org[24], user[24];
	const char *p[3] = { org, user, value };
	long long id;
	PGresult *r;
	bool last;

	if ((id = member_id(o, username)) == 0)
		return 1;
	snprintf(org, sizeof org, "%lld", o->org_id);
	snprintf(user, sizeof user, "%lld", id);
	if (db_exec("BEGIN") < 0)
		return db_failed();
	if ((r = db_query(lock, 1, p)) == NULL)
		goto fail;
	PQclear(r);
	if ((r = db_query(count, 2, p)) == NULL)
		goto fail;
	last = atoll(PQgetvalue(r, 0, 0)) == 0 && PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	if (last && !keeps_admin) {
		fprintf(stderr, "kvmgate: %s is the last org_admin of '%s': make another member "
		        "org_admin first\n", username, o->org);
		if (db_exec("ROLLBACK") < 0)
			return db_failed();
		return 1;
	}
	if ((r = db_query(change, 3, p)) == NULL)
		goto fail;
	PQclear(r);
	if (db_exec("COMMIT") < 0)
		return db_failed();
	return 0;
fail:
	db_failed();
	if (db_exec("ROLLBACK") < 0)
		return 1;
	return 1;
}

static int user_set_role(struct id_opts *o)
{
	static const char sql[] =
		"UPDATE memberships SET role = $3::org_role WHERE org_id = $1 AND user_id = $2";

	if (!role_ok(o->arg[1]))
		return 2;
	if (member_change(o, o->arg[0], sql, o->arg[1], strcmp(o->arg[1], "org_admin") == 0) != 0)
		return 1;
	return done(o, o->arg[0], "role", o->arg[1]);
}

static int user_disable(struct id_opts *o)
{
	static const char sql[] =
		"UPDATE users SET disabled = $3::boolean WHERE id = $2 "
		"  AND EXISTS (SELECT 1 FROM memberships WHERE org_id = $1 AND user_id = $2)";

	if (member_change(o, o->arg[0], sql, "true", false) != 0)
		return 1;
	return done(o, o->arg[0], "disabled", "true");
}

static int user_remove(struct id_opts *o)
{
	static const char sql[] =
		"DELETE FROM memberships WHERE org_id = $1 AND user_id = $2 AND $3::text IS NULL";

	if (member_change(o, o->arg[0], sql, NULL, false) != 0)
		return 1;
	return done(o, o->arg[0], "membership", "removed");
}

/* ---- org ------------------------------------------------------------------------ */

static int org_create(struct id_opts *o)
{
	static const char sql[] =
		"INSERT INTO organisations (name) VALUES ($1) ON CONFLICT (name) DO NOTHING "
		"RETURNING id";
	const char *p[1] = { o->arg[0] };
	long long id;
	PGresult *r;

	if (!cli_text_ok(o->arg[0], 100)) {
		fprintf(stderr, "kvmgate: an organisation's name is 1 to 100 characters without "
		        "control characters\n");
		return 2;
	}
	if ((r = db_query(sql, 1, p)) == NULL)
		return db_failed();
	if (PQntuples(r) == 0) {
		PQclear(r);
		fprintf(stderr, "kvmgate: an organisation named '%s' exists already\n", o->arg[0]);
		return 1;
	}
	id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	{
		/* The new organisation's chain begins with its creation. */
		struct audit_event ev;
		json_object *args = json_object_new_object();
		json_object_object_add(args, "name", json_object_new_string(o->arg[0]));
		audit_event_init(&ev, id, "kvmgate org create");
		cli_audit_actor(&ev);
		ev.args = args;
		if (audit_append(&ev) < 0)
			fprintf(stderr, "kvmgate: warning: the creation is not in the organisation's "
			        "audit log (%s)\n", db_last_error());
		json_object_put(args);
	}
	if (o->json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "id", json_object_new_int64(id));
		json_object_object_add(j, "name", json_object_new_string(o->arg[0]));
		cli_print_json(j);
	} else {
		printf("organisation '%s' created (id %lld); add its first org_admin with\n"
		       "  kvmgate user add --org '%s' USERNAME --role org_admin\n", o->arg[0], id, o->arg[0]);
	}
	return 0;
}

static void org_line(json_object *g)
{
	printf("%-6s %-32s members=%s devices=%s\n", s(g, "id"), s(g, "name"), s(g, "members"),
	       s(g, "devices"));
}

static int org_list(struct id_opts *o)
{
	static const char sql[] =
		"SELECT coalesce(json_agg(json_build_object('id', g.id, 'name', g.name, "
		"  'members', (SELECT count(*) FROM memberships WHERE org_id = g.id), "
		"  'devices', (SELECT count(*) FROM devices WHERE org_id = g.id)) ORDER BY g.name), "
		"  '[]')::text FROM organisations g WHERE $1::text IS NULL";

	const char *p[1] = { NULL };
	return print_rows(o, sql, 1, p, "organisations", org_line);
}

/* ---- the command -------------------------------------------------------------------- */

/* The value of option bit f in val, as cli_getopts() fills it. */
#define VAL(f) val[__builtin_ctz(f)]

/* Fills o from the options cli_getopts() took. Returns 0, or -1 after saying why. */
static int take_opts(struct id_opts *o, const char **val)
{
	const char *err;

	o->org = VAL(OPT_ORG);
	o->json = VAL(OPT_JSON) != NULL;
	o->user = VAL(OPT_USER);
	o->name = VAL(OPT_NAME);
	o->scopes = VAL(OPT_SCOPES);
	o->tag = VAL(OPT_TAG);
	o->role = VAL(OPT_ROLE);
	o->email = VAL(OPT_EMAIL);
	o->pw_file = VAL(OPT_PW_FILE);
	o->pw_stdin = VAL(OPT_PW_STDIN) != NULL;
	if (o->pw_file != NULL && o->pw_stdin) {
		fprintf(stderr, "kvmgate: --password-file and --password-stdin exclude each other\n");
		return -1;
	}
	if (VAL(OPT_DAYS) != NULL && parse_ll(VAL(OPT_DAYS), 1, 3650, &o->days, &err) < 0) {
		fprintf(stderr, "kvmgate: --expires-in-days %s: %s (1 to 3650)\n", VAL(OPT_DAYS), err);
		return -1;
	}
	return 0;
}

/* Runs `kvmgate GROUP SUB [options] [args]`. */
static int run(const char *group, int argc, char **argv)
{
	struct id_opts o = { 0 };
	const struct sub *sub = NULL;
	const char *val[ARRAY_LEN(long_opts)] = { NULL };
	struct cli_change change;
	json_object *args, *pos;
	char action[64], what[64];
	int first, n = 0, rc;

	if (argc < 2)
		return usage(group);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		if (strcmp(subs[i].group, group) == 0 && strcmp(argv[1], subs[i].name) == 0)
			sub = &subs[i];
	if (sub == NULL) {
		fprintf(stderr, "kvmgate: unknown %s subcommand '%s'\n", group, argv[1]);
		return usage(group);
	}
	snprintf(what, sizeof what, "%s %s", group, sub->name);
	args = json_object_new_object();
	pos = json_object_new_array();
	json_object_object_add(args, "args", pos);
	if (cli_getopts(argc - 1, argv + 1, long_opts, sub->allowed, what, val, &o.seen, args,
	                &first) < 0) {
		json_object_put(args);
		return usage(group);
	}
	if (take_opts(&o, val) < 0) {
		json_object_put(args);
		return 2;
	}
	for (int i = first + 1; i < argc; i++) {
		if (n == sub->nargs) {
			fprintf(stderr, "kvmgate: %s %s: unexpected argument '%s'\n", group,
			        sub->name, argv[i]);
			json_object_put(args);
			return usage(group);
		}
		json_object_array_add(pos, json_object_new_string(argv[i]));
		o.arg[n++] = argv[i];
	}
	if (n < sub->nargs || (o.seen & sub->required) != sub->required) {
		fprintf(stderr, "kvmgate: %s %s: missing an argument or a required option\n",
		        group, sub->name);
		json_object_put(args);
		return usage(group);
	}
	if (o.org == NULL)
		o.org = conf_str(CONF_ORG);
	if (sub->needs_org && cli_org_lookup(o.org, &o.org_id) < 0) {
		json_object_put(args);
		return 1;
	}
	if (!sub->writes) {
		json_object_put(args);
		return sub->fn(&o);
	}
	snprintf(action, sizeof action, "kvmgate %s %s", group, sub->name);
	if (cli_change_begin(&change, o.org_id, action, args) < 0)
		return 1;
	rc = sub->fn(&o);
	cli_change_end(&change, rc);
	return rc;
}

int cmd_token(int argc, char **argv)
{
	return run("token", argc, argv);
}

int cmd_user(int argc, char **argv)
{
	return run("user", argc, argv);
}

int cmd_org(int argc, char **argv)
{
	return run("org", argc, argv);
}
