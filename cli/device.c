/*
 * device.c - kvmgate device: list, show, add, update and remove an
 * organisation's devices from the server's shell. Credentials are sealed as the REST API seals
 * them (shared/devcred.c) and never printed; the password comes from a file
 * (--password-file, "-" for standard input) or a prompt, never from the
 * command line. Adding and removing are in the organisation's audit chain:
 * the intent before, the outcome after.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "db.h"
#include "devcred.h"

#define PASSWORD_MAX 256

enum opt {
	OPT_ORG = 1 << 0, OPT_JSON = 1 << 1, OPT_KIND = 1 << 2, OPT_URL = 1 << 3,
	OPT_USERNAME = 1 << 4, OPT_PASSWORD_FILE = 1 << 5, OPT_TAGS = 1 << 6,
	OPT_KEEP_WARM = 1 << 7,
};

static const struct option long_opts[] = {
	{ "org", required_argument, NULL, OPT_ORG },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "kind", required_argument, NULL, OPT_KIND },
	{ "url", required_argument, NULL, OPT_URL },
	{ "username", required_argument, NULL, OPT_USERNAME },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ "tags", required_argument, NULL, OPT_TAGS },
	{ "keep-warm", required_argument, NULL, OPT_KEEP_WARM },
	{ NULL, 0, NULL, 0 },
};

struct dev_opts {
	unsigned seen;
	const char *org, *kind, *url, *username, *password_file, *tags, *name;
	const char *keep_warm;		/* "true", "false" (from on|off), or NULL */
	bool json;
	long long org_id;
};

typedef int sub_fn(struct dev_opts *o);
static sub_fn device_list, device_show, device_add, device_update, device_remove;

static const struct sub {
	const char *name;
	sub_fn *fn;
	unsigned allowed, required;
	int nargs;
	bool writes;		/* a change: recorded in the organisation's audit chain */
	const char *usage;
} subs[] = {
	{ "list", device_list, OPT_ORG | OPT_JSON, 0, 0, false,
	  "list                        the organisation's devices (never their credentials)" },
	{ "show", device_show, OPT_ORG | OPT_JSON, 0, 1, false,
	  "show NAME                   one device (never its credentials)" },
	{ "add", device_add,
	  OPT_ORG | OPT_JSON | OPT_KIND | OPT_URL | OPT_USERNAME | OPT_PASSWORD_FILE | OPT_TAGS |
	  OPT_KEEP_WARM, OPT_KIND | OPT_URL, 1, true,
	  "add NAME --kind nanokvm|pikvm|ami|vnc --url URL [--username U]\n"
	  "      [--password-file F|-] [--tags a,b] [--keep-warm on|off]\n"
	  "                              a device; without a file the password is asked for" },
	{ "update", device_update, OPT_ORG | OPT_JSON | OPT_KEEP_WARM, OPT_KEEP_WARM, 1, true,
	  "update NAME --keep-warm on|off\n"
	  "                              keep the device's session open with no demand, or not" },
	{ "remove", device_remove, OPT_ORG | OPT_JSON, 0, 1, true,
	  "remove NAME                 remove a device" },
};

static const char *const kinds[] = { "nanokvm", "pikvm", "ami", "vnc" };

static int usage(void)
{
	fputs("usage: kvmgate device <subcommand> [--org NAME] [--json] ...\n", stderr);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		fprintf(stderr, "  %s\n", subs[i].usage);
	fputs("--org defaults to $KVMGATE_ORG.\n", stderr);
	return 2;
}

static int db_failed(void)
{
	fprintf(stderr, "kvmgate: %s\n", db_last_error());
	return 1;
}

/* Whether url is scheme://host[...] with no credentials, blanks or control characters. */
static bool url_ok(const char *url)
{
	size_t scheme = strspn(url, "abcdefghijklmnopqrstuvwxyz0123456789+.-");

	return scheme > 0 && url[0] >= 'a' && url[0] <= 'z' && strncmp(url + scheme, "://", 3) == 0 &&
	       url[scheme + 3] != '\0' && url[scheme + 3] != '/' &&
	       strpbrk(url, "@ \t") == NULL && cli_text_ok(url, 2000);
}

/* The columns list and show print: never credentials, only whether there are some. */
#define DEVICE_JSON \
	"json_build_object('id', id, 'name', name, 'kind', kind, 'url', base_url, 'tags', tags, " \
	"  'enabled', enabled, 'keep_warm', keep_warm, " \
	"  'has_credentials', cred_ciphertext IS NOT NULL)"

/* One line of list for people. */
static void print_device(json_object *d)
{
	json_object *v;
	const char *f[3] = { "id", "tags", "has_credentials" };
	const char *s[3];

	for (int k = 0; k < 3; k++)
		s[k] = json_object_object_get_ex(d, f[k], &v)
			? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "";
	printf("%-6s %-32s %-8s %s tags=%s credentials=%s keep_warm=%s\n", s[0],
	       json_object_get_string(json_object_object_get(d, "name")),
	       json_object_get_string(json_object_object_get(d, "kind")),
	       json_object_get_string(json_object_object_get(d, "url")), s[1],
	       strcmp(s[2], "true") == 0 ? "yes" : "no",
	       json_object_get_boolean(json_object_object_get(d, "keep_warm")) ? "on" : "off");
}

static int device_list(struct dev_opts *o)
{
	static const char sql[] =
		"SELECT coalesce(json_agg(" DEVICE_JSON " ORDER BY name), '[]')::text "
		"FROM devices WHERE org_id = $1";
	char org[24];
	const char *p[1] = { org };
	json_object *rows, *out;
	PGresult *r;

	snprintf(org, sizeof org, "%lld", o->org_id);
	if ((r = db_query(sql, 1, p)) == NULL)
		return db_failed();
	rows = json_tokener_parse(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (o->json) {
		out = json_object_new_object();
		json_object_object_add(out, "devices", rows);
		cli_print_json(out);
		return 0;
	}
	for (size_t i = 0; i < json_object_array_length(rows); i++)
		print_device(json_object_array_get_idx(rows, i));
	json_object_put(rows);
	return 0;
}

static int device_show(struct dev_opts *o)
{
	static const char sql[] =
		"SELECT " DEVICE_JSON "::text FROM devices WHERE org_id = $1 AND name = $2";
	char org[24];
	const char *p[2] = { org, o->name };
	json_object *d;
	PGresult *r;

	snprintf(org, sizeof org, "%lld", o->org_id);
	if ((r = db_query(sql, 2, p)) == NULL)
		return db_failed();
	if (PQntuples(r) == 0) {
		PQclear(r);
		fprintf(stderr, "kvmgate: no device '%s' in '%s'\n", o->name, o->org);
		return 1;
	}
	d = json_tokener_parse(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (o->json) {
		cli_print_json(d);
		return 0;
	}
	print_device(d);
	json_object_put(d);
	return 0;
}

/* Reads the password: the first line of a file or standard input, or a prompt. 0 or -1. */
static int read_password(const char *file, char out[PASSWORD_MAX + 2])
{
	FILE *f;
	char *p;

	out[0] = '\0';
	if (file == NULL) {
		if (!isatty(STDIN_FILENO))
			return 0;
		if ((p = getpass("device password: ")) == NULL)
			return -1;
		snprintf(out, PASSWORD_MAX + 2, "%s", p);
		explicit_bzero(p, strlen(p));
		return 0;
	}
	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (f == NULL) {
		perror(file);
		return -1;
	}
	if (fgets(out, PASSWORD_MAX + 2, f) == NULL)
		out[0] = '\0';
	if (f != stdin)
		fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int device_add(struct dev_opts *o)
{
	static const char sql[] =
		"INSERT INTO devices (org_id, name, kind, base_url, tags, cred_nonce, "
		"  cred_ciphertext, cred_key_id, keep_warm) "
		"VALUES ($1, $2, $3, $4, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), "
		"  decode($6, 'hex'), decode($7, 'hex'), $8, coalesce($9::boolean, false)) "
		"ON CONFLICT (org_id, name) DO NOTHING RETURNING id";
	struct devcred_sealed sealed = { 0 };
	char org[24], password[PASSWORD_MAX + 2], why[256];
	json_object *tags = json_object_new_array(), *j;
	const char *p[9];
	bool kind_ok = false, has_pass;
	PGresult *r;
	int rc = 2;

	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		kind_ok |= strcmp(kinds[i], o->kind) == 0;
	if (!cli_text_ok(o->name, 100) || !kind_ok || !url_ok(o->url) ||
	    (o->username != NULL && !cli_text_ok(o->username, 128))) {
		fprintf(stderr, "kvmgate: a device needs a NAME (1-100 characters), --kind nanokvm, "
		        "pikvm, ami or vnc, and --url scheme://host[:port][/path] without "
		        "credentials or blanks\n");
		goto out;
	}
	for (const char *t = o->tags; t != NULL && *t; ) {
		size_t n = strcspn(t, ",");
		char *tag = xasprintf("%.*s", (int)n, t);
		bool good = cli_text_ok(tag, 64) && json_object_array_length(tags) < 32;
		if (good)
			json_object_array_add(tags, json_object_new_string(tag));
		free(tag);
		if (!good) {
			fprintf(stderr, "kvmgate: --tags takes up to 32 tags of 1 to 64 characters\n");
			goto out;
		}
		t += n + (t[n] == ',');
	}
	if (read_password(o->password_file, password) < 0) {
		rc = 1;
		goto out;
	}
	if (strlen(password) > PASSWORD_MAX) {
		fprintf(stderr, "kvmgate: the password is longer than %d bytes\n", PASSWORD_MAX);
		goto out;
	}
	has_pass = password[0] != '\0';
	rc = 1;
	if ((o->username != NULL || has_pass) &&
	    devcred_seal(o->org_id, o->username, password, &sealed, why, sizeof why) < 0) {
		fprintf(stderr, "kvmgate: %s\n", why);
		goto out;
	}
	snprintf(org, sizeof org, "%lld", o->org_id);
	p[0] = org;
	p[1] = o->name;
	p[2] = o->kind;
	p[3] = o->url;
	p[4] = json_object_to_json_string_ext(tags, JSON_C_TO_STRING_PLAIN);
	p[5] = sealed.nonce_hex;
	p[6] = sealed.ct_hex;
	p[7] = sealed.nonce_hex ? sealed.key_id : NULL;
	p[8] = o->keep_warm;
	if ((r = db_query(sql, 9, p)) == NULL) {
		db_failed();
		goto out;
	}
	if (PQntuples(r) == 0) {
		fprintf(stderr, "kvmgate: a device named '%s' exists already in '%s'\n", o->name,
		        o->org);
		PQclear(r);
		goto out;
	}
	if (o->json) {
		j = json_object_new_object();
		json_object_object_add(j, "id", json_object_new_int64(atoll(PQgetvalue(r, 0, 0))));
		json_object_object_add(j, "name", json_object_new_string(o->name));
		json_object_object_add(j, "has_credentials",
		                       json_object_new_boolean(sealed.nonce_hex != NULL));
		json_object_object_add(j, "keep_warm",
		                       json_object_new_boolean(o->keep_warm != NULL &&
		                                               strcmp(o->keep_warm, "true") == 0));
		cli_print_json(j);
	} else {
		printf("device %s '%s' added to '%s'%s\n", PQgetvalue(r, 0, 0), o->name, o->org,
		       sealed.nonce_hex ? " with sealed credentials" : "");
	}
	PQclear(r);
	rc = 0;
out:
	explicit_bzero(password, sizeof password);
	devcred_sealed_cleanup(&sealed);
	json_object_put(tags);
	return rc;
}

static int device_update(struct dev_opts *o)
{
	static const char sql[] =
		"UPDATE devices SET keep_warm = $3::boolean WHERE org_id = $1 AND name = $2 "
		"RETURNING id";
	char org[24];
	const char *p[3] = { org, o->name, o->keep_warm };
	PGresult *r;

	snprintf(org, sizeof org, "%lld", o->org_id);
	if ((r = db_query(sql, 3, p)) == NULL)
		return db_failed();
	if (PQntuples(r) == 0) {
		PQclear(r);
		fprintf(stderr, "kvmgate: no device '%s' in '%s'\n", o->name, o->org);
		return 1;
	}
	if (o->json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "id", json_object_new_int64(atoll(PQgetvalue(r, 0, 0))));
		json_object_object_add(j, "name", json_object_new_string(o->name));
		json_object_object_add(j, "keep_warm",
		                       json_object_new_boolean(strcmp(o->keep_warm, "true") == 0));
		cli_print_json(j);
	} else {
		printf("device '%s' in '%s': keep_warm %s\n", o->name, o->org,
		       strcmp(o->keep_warm, "true") == 0 ? "on" : "off");
	}
	PQclear(r);
	return 0;
}

static int device_remove(struct dev_opts *o)
{
	static const char sql[] = "DELETE FROM devices WHERE org_id = $1 AND name = $2 RETURNING id";
	char org[24];
	const char *p[2] = { org, o->name };
	PGresult *r;
	int n;

	snprintf(org, sizeof org, "%lld", o->org_id);
	if ((r = db_query(sql, 2, p)) == NULL)
		return db_failed();
	n = PQntuples(r);
	PQclear(r);
	if (n == 0) {
		fprintf(stderr, "kvmgate: no device '%s' in '%s'\n", o->name, o->org);
		return 1;
	}
	if (o->json) {
		json_object *j = json_object_new_object();
		json_object_object_add(j, "name", json_object_new_string(o->name));
		json_object_object_add(j, "removed", json_object_new_boolean(true));
		cli_print_json(j);
	} else {
		printf("device '%s' removed from '%s'\n", o->name, o->org);
	}
	return 0;
}

int cmd_device(int argc, char **argv)
{
	struct dev_opts o = { 0 };
	const struct sub *sub = NULL;
	const char *val[ARRAY_LEN(long_opts)] = { NULL }, *v;
	struct cli_change change;
	json_object *args;
	char action[64], what[64];
	int first, n = 0, rc;

	if (argc < 2)
		return usage();
	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			sub = &subs[i];
	if (sub == NULL) {
		fprintf(stderr, "kvmgate: unknown device subcommand '%s'\n", argv[1]);
		return usage();
	}
	snprintf(what, sizeof what, "device %s", sub->name);
	args = json_object_new_object();
	if (cli_getopts(argc - 1, argv + 1, long_opts, sub->allowed, what, val, &o.seen, args,
	                &first) < 0) {
		json_object_put(args);
		return usage();
	}
	o.org = val[__builtin_ctz(OPT_ORG)];
	o.json = val[__builtin_ctz(OPT_JSON)] != NULL;
	o.kind = val[__builtin_ctz(OPT_KIND)];
	o.url = val[__builtin_ctz(OPT_URL)];
	o.username = val[__builtin_ctz(OPT_USERNAME)];
	o.password_file = val[__builtin_ctz(OPT_PASSWORD_FILE)];
	o.tags = val[__builtin_ctz(OPT_TAGS)];
	if ((v = val[__builtin_ctz(OPT_KEEP_WARM)]) != NULL) {
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			fprintf(stderr, "kvmgate: device %s: --keep-warm takes on or off\n", sub->name);
			json_object_put(args);
			return usage();
		}
		o.keep_warm = strcmp(v, "on") == 0 ? "true" : "false";
	}
	for (int i = first + 1; i < argc; i++, n++)
		if (n == 0 && sub->nargs == 1)
			o.name = argv[i];
	if (n != sub->nargs || (o.seen & sub->required) != sub->required) {
		fprintf(stderr, "kvmgate: device %s: missing or unexpected arguments\n", sub->name);
		json_object_put(args);
		return usage();
	}
	if (o.org == NULL)
		o.org = conf_str(CONF_ORG);
	if (cli_org_lookup(o.org, &o.org_id) < 0) {
		json_object_put(args);
		return 1;
	}
	if (!sub->writes) {
		json_object_put(args);
		return sub->fn(&o);
	}
	if (o.name != NULL)
		json_object_object_add(args, "name", json_object_new_string(o.name));
	snprintf(action, sizeof action, "kvmgate device %s", sub->name);
	if (cli_change_begin(&change, o.org_id, action, args) < 0)
		return 1;
	rc = sub->fn(&o);
	cli_change_end(&change, rc);
	return rc;
}
