/*
 * audit.c - kvmgate audit: the chain head, verification (database or export
 * file), export, signed checkpoints, and manual events. A table of
 * subcommands, each with the options it accepts.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "conf.h"
#include "db.h"

enum opt {
	OPT_ORG = 1 << 0, OPT_JSON = 1 << 1, OPT_FILE = 1 << 2, OPT_PUBKEY = 1 << 3,
	OPT_ACTION = 1 << 4, OPT_ARGS = 1 << 5, OPT_DEVICE = 1 << 6, OPT_OUTCOME = 1 << 7,
	OPT_REASON = 1 << 8, OPT_COUNT = 1 << 9, OPT_ALL = 1 << 10,
};

static const struct option long_opts[] = {
	{ "org", required_argument, NULL, OPT_ORG },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "file", required_argument, NULL, OPT_FILE },
	{ "pubkey", required_argument, NULL, OPT_PUBKEY },
	{ "action", required_argument, NULL, OPT_ACTION },
	{ "args", required_argument, NULL, OPT_ARGS },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "outcome", required_argument, NULL, OPT_OUTCOME },
	{ "reason", required_argument, NULL, OPT_REASON },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "all", no_argument, NULL, OPT_ALL },
	{ NULL, 0, NULL, 0 },
};

/* The options of one invocation; strings point into argv. */
struct audit_opts {
	unsigned seen;
	const char *org, *file, *pubkey, *action, *args, *device, *outcome, *reason;
	long long count;
	bool json, all;
	long long org_id;	/* resolved from org */
};

static int sub_head(struct audit_opts *o);
static int sub_verify(struct audit_opts *o);
static int sub_export(struct audit_opts *o);
static int sub_checkpoint(struct audit_opts *o);
static int sub_append(struct audit_opts *o);
static int sub_pubkey(struct audit_opts *o);

static const struct sub {
	const char *name;
	int (*fn)(struct audit_opts *o);
	unsigned allowed, required;
	bool needs_org;		/* resolve --org (default $KVMGATE_ORG) first */
	const char *usage;
} subs[] = {
	{ "head", sub_head, OPT_ORG | OPT_JSON, 0, true,
	  "head [--org NAME] [--json]                            sequence, hash and time of the chain's end" },
	{ "verify", sub_verify, OPT_ORG | OPT_FILE | OPT_PUBKEY | OPT_JSON, 0, false,
	  "verify [--org NAME | --file F] [--pubkey P] [--json]\n"
	  "                                                        walk the chain (database or export file; - is stdin);\n"
	  "                                                        exit 0 intact, 1 broken" },
	{ "export", sub_export, OPT_ORG, 0, true,
	  "export [--org NAME]                                   the chain as JSON lines on stdout" },
	{ "checkpoint", sub_checkpoint, OPT_ORG | OPT_ALL | OPT_JSON, 0, false,
	  "checkpoint [--org NAME | --all] [--json]              sign the head with $KVMGATE_AUDIT_KEY_FILE, record it" },
	{ "append", sub_append,
	  OPT_ORG | OPT_ACTION | OPT_ARGS | OPT_DEVICE | OPT_OUTCOME | OPT_REASON | OPT_COUNT | OPT_JSON,
	  OPT_ACTION, true,
	  "append [--org NAME] --action A [--args JSON] [--device D] [--outcome ok|denied|error|pending]\n"
	  "         [--reason R] [--count N] [--json]              record an event by the CLI (a note, a test load)" },
	{ "pubkey", sub_pubkey, OPT_JSON, 0, false,
	  "pubkey [--json]                                       the checkpoint public key, in hex, to pin" },
};

static int usage(void)
{
	fputs("usage: kvmgate audit <subcommand> [options]\n", stderr);
	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		fprintf(stderr, "  %s\n", subs[i].usage);
	fputs("--org defaults to $KVMGATE_ORG.\n", stderr);
	return 2;
}

static int sub_head(struct audit_opts *o)
{
	struct audit_head h;
	json_object *j;

	if (audit_head(o->org_id, &h) < 0) {
		fprintf(stderr, "kvmgate: %s\n", db_last_error());
		return 1;
	}
	if (o->json) {
		j = json_object_new_object();
		json_object_object_add(j, "org", json_object_new_string(o->org));
		json_object_object_add(j, "seq", json_object_new_int64(h.seq));
		json_object_object_add(j, "hash", json_object_new_string(h.hash));
		json_object_object_add(j, "time", h.time[0] ? json_object_new_string(h.time) : NULL);
		cli_print_json(j);
	} else if (h.seq == 0 && h.time[0] == '\0') {
		printf("org %s: no events yet; chain starts at %s\n", o->org, h.hash);
	} else {
		printf("org %s: seq %lld hash %s at %s\n", o->org, h.seq, h.hash, h.time);
	}
	return 0;
}

static void print_report(const struct audit_report *rep, const char *what)
{
	if (rep->problem == AUDIT_INTACT) {
		printf("OK %lld event(s) verified (%s)\n", rep->events_checked, what);
	} else {
		printf("BREAK at seq %lld: %s: %s\n", rep->broken_seq,
		       audit_problem_name(rep->problem), rep->detail);
		printf("checked %lld event(s) before the break\n", rep->events_checked);
	}
	printf("%s: seq %lld %s%s%s\n", rep->problem == AUDIT_INTACT ? "chain head" : "last good event",
	       rep->head_seq, rep->head_hash, rep->head_time[0] ? " at " : "", rep->head_time);
	printf("anchor: seq %lld %s\n", rep->anchor_seq, rep->anchor_hash);
	if (rep->checkpoints == 0)
		printf("checkpoints: none verified\n");
	else
		printf("checkpoints: %lld signature(s) verified, last at seq %lld, key %s%s%s\n",
		       rep->checkpoints, rep->last_checkpoint_seq, rep->checkpoint_key,
		       rep->checkpoint_keys_differ ? " (and other keys)" : "",
		       rep->pinned ? " (pinned)" : " (not pinned: --pubkey pins the key)");
	if (rep->problem == AUDIT_INTACT)
		printf("not proven: actions never recorded; events removed after %s\n",
		       rep->checkpoints ? "the last checkpoint kept elsewhere" : "the last head kept elsewhere");
}

static int sub_verify(struct audit_opts *o)
{
	uint8_t pin[AUDIT_PUBKEY_LEN];
	struct audit_report rep;
	char *what = NULL;
	FILE *f = NULL;
	int rc = 1;

	if ((o->seen & OPT_FILE) && (o->seen & OPT_ORG)) {
		fputs("kvmgate: audit verify takes --org or --file, not both\n", stderr);
		return 2;
	}
	if (o->pubkey != NULL && audit_pubkey_read(o->pubkey, pin) < 0)
		return 2;
	if (o->file != NULL) {
		f = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
		if (f == NULL) {
			fprintf(stderr, "kvmgate: cannot open %s: %s\n", o->file, strerror(errno));
			return 1;
		}
		if (audit_verify_stream(f, o->pubkey ? pin : NULL, &rep) < 0) {
			fprintf(stderr, "kvmgate: cannot read %s: %s\n", o->file, strerror(errno));
			goto out;
		}
		what = xasprintf("file %s, org %lld", o->file, rep.org_id);
	} else {
		if (cli_org_lookup(o->org, &o->org_id) < 0)
			goto out;
		if (audit_verify_db(o->org_id, o->pubkey ? pin : NULL, &rep) < 0) {
			fprintf(stderr, "kvmgate: %s\n", db_last_error());
			goto out;
		}
		what = xasprintf("org %s", o->org);
	}
	if (o->json)
		cli_print_json(audit_report_json(&rep));
	else
		print_report(&rep, what);
	rc = rep.problem == AUDIT_INTACT ? 0 : 1;
out:
	if (f != NULL && f != stdin)
		fclose(f);
	free(what);
	return rc;
}

static int sub_export(struct audit_opts *o)
{
	if (audit_export(o->org_id, o->org, stdout) < 0) {
		fputs("kvmgate: export failed (see the log line above)\n", stderr);
		return 1;
	}
	return 0;
}

/* Checkpoints one organisation; 0 or 1. */
static int checkpoint_one(struct audit_opts *o, long long org_id, const char *org)
{
	struct audit_event who;
	struct audit_head h;
	bool skipped;
	json_object *j;

	audit_event_init(&who, org_id, "audit.checkpoint");
	cli_audit_actor(&who);
	if (audit_checkpoint(org_id, conf_str(CONF_AUDIT_KEY_FILE), &who, &h, &skipped) < 0) {
		fprintf(stderr, "kvmgate: org %s: checkpoint failed\n", org);
		return 1;
	}
	if (o->json) {
		j = json_object_new_object();
		json_object_object_add(j, "org", json_object_new_string(org));
		json_object_object_add(j, "skipped", json_object_new_boolean(skipped));
		json_object_object_add(j, "seq", json_object_new_int64(h.seq));
		json_object_object_add(j, "hash", json_object_new_string(h.hash));
		cli_print_json(j);
	} else if (skipped) {
		printf("org %s: the head (seq %lld) is already a checkpoint; nothing new to sign\n",
		       org, h.seq);
	} else {
		printf("org %s: checkpoint recorded as seq %lld, signing seq %lld\n", org, h.seq,
		       h.seq - 1);
	}
	return 0;
}

static int sub_checkpoint(struct audit_opts *o)
{
	static const char all_sql[] = "SELECT id, name FROM organisations ORDER BY id";
	PGresult *r;
	int rc = 0;

	if ((o->seen & OPT_ALL) && (o->seen & OPT_ORG)) {
		fputs("kvmgate: audit checkpoint takes --org or --all, not both\n", stderr);
		return 2;
	}
	if (!o->all) {
		if (cli_org_lookup(o->org, &o->org_id) < 0)
			return 1;
		return checkpoint_one(o, o->org_id, o->org);
	}
	if ((r = db_query(all_sql, 0, NULL)) == NULL) {
		fprintf(stderr, "kvmgate: %s\n", db_last_error());
		return 1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		rc |= checkpoint_one(o, atoll(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1));
	PQclear(r);
	return rc;
}

static const char *const outcomes[] = {
	[AUDIT_OK] = "ok", [AUDIT_DENIED] = "denied", [AUDIT_ERROR] = "error",
	[AUDIT_PENDING] = "pending",
};

static int sub_append(struct audit_opts *o)
{
	struct audit_event ev;
	json_object *args = NULL, *j;
	long long seq = 0;
	int rc = 2;

	audit_event_init(&ev, o->org_id, o->action);
	cli_audit_actor(&ev);
	ev.device = o->device;
	ev.reason = o->reason;
	if (o->outcome != NULL) {
		size_t i;
		for (i = 0; i < ARRAY_LEN(outcomes) && strcmp(o->outcome, outcomes[i]) != 0; i++)
			;
		if (i == ARRAY_LEN(outcomes)) {
			fprintf(stderr, "kvmgate: --outcome must be ok, denied, error or pending\n");
			return 2;
		}
		ev.outcome = (enum audit_outcome)i;
	}
	if (o->args != NULL) {
		args = json_tokener_parse(o->args);
		if (!json_object_is_type(args, json_type_object)) {
			fputs("kvmgate: --args must be a JSON object\n", stderr);
			goto out;
		}
		ev.args = args;
	}
	rc = 1;
	for (long long i = 0; i < o->count; i++)
		if ((seq = audit_append(&ev)) < 0) {
			fprintf(stderr, "kvmgate: append failed after %lld event(s): %s\n", i,
			        db_last_error());
			goto out;
		}
	if (o->json) {
		j = json_object_new_object();
		json_object_object_add(j, "org", json_object_new_string(o->org));
		json_object_object_add(j, "seq", json_object_new_int64(seq));
		json_object_object_add(j, "count", json_object_new_int64(o->count));
		cli_print_json(j);
	} else if (o->count == 1) {
		printf("org %s: recorded as seq %lld\n", o->org, seq);
	} else {
		printf("org %s: %lld events recorded, the last as seq %lld\n", o->org, o->count, seq);
	}
	rc = 0;
out:
	json_object_put(args);
	return rc;
}

static int sub_pubkey(struct audit_opts *o)
{
	uint8_t pub[AUDIT_PUBKEY_LEN];
	char hex[2 * AUDIT_PUBKEY_LEN + 1], id[9];
	json_object *j;

	if (audit_key_public(conf_str(CONF_AUDIT_KEY_FILE), true, pub) < 0)
		return 1;
	hex_encode(pub, sizeof pub, hex);
	audit_key_id(pub, id);
	if (o->json) {
		j = json_object_new_object();
		json_object_object_add(j, "pubkey", json_object_new_string(hex));
		json_object_object_add(j, "key_id", json_object_new_string(id));
		json_object_object_add(j, "key_file", json_object_new_string(conf_str(CONF_AUDIT_KEY_FILE)));
		cli_print_json(j);
	} else {
		puts(hex);
	}
	return 0;
}

/* The value of option bit f in val, as cli_getopts() fills it. */
#define VAL(f) val[__builtin_ctz(f)]

/* Fills o from the options cli_getopts() took. Returns 0, or -1 after saying why. */
static int take_opts(struct audit_opts *o, const char **val)
{
	const char *err;

	o->org = VAL(OPT_ORG);
	o->json = VAL(OPT_JSON) != NULL;
	o->file = VAL(OPT_FILE);
	o->pubkey = VAL(OPT_PUBKEY);
	o->action = VAL(OPT_ACTION);
	o->args = VAL(OPT_ARGS);
	o->device = VAL(OPT_DEVICE);
	o->outcome = VAL(OPT_OUTCOME);
	o->reason = VAL(OPT_REASON);
	o->all = VAL(OPT_ALL) != NULL;
	if (VAL(OPT_COUNT) != NULL && parse_ll(VAL(OPT_COUNT), 1, 10000000, &o->count, &err) < 0) {
		fprintf(stderr, "kvmgate: --count %s: %s\n", VAL(OPT_COUNT), err);
		return -1;
	}
	return 0;
}

int cmd_audit(int argc, char **argv)
{
	struct audit_opts o = { .count = 1 };
	const struct sub *s = NULL;
	const char *val[ARRAY_LEN(long_opts)] = { NULL };
	char what[64];
	int first;

	if (argc < 2)
		return usage();
	for (size_t i = 0; i < ARRAY_LEN(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			s = &subs[i];
	if (s == NULL) {
		fprintf(stderr, "kvmgate: unknown audit subcommand '%s'\n", argv[1]);
		return usage();
	}
	snprintf(what, sizeof what, "audit %s", s->name);
	if (cli_getopts(argc - 1, argv + 1, long_opts, s->allowed, what, val, &o.seen, NULL,
	                &first) < 0)
		return usage();
	if (take_opts(&o, val) < 0)
		return 2;
	if (first < argc - 1) {
		fprintf(stderr, "kvmgate: audit %s: unexpected argument '%s'\n", s->name,
		        argv[first + 1]);
		return usage();
	}
	if ((o.seen & s->required) != s->required) {
		fprintf(stderr, "kvmgate: audit %s: missing a required option\n", s->name);
		return usage();
	}
	if (o.org == NULL)
		o.org = conf_str(CONF_ORG);
	if (s->needs_org && cli_org_lookup(o.org, &o.org_id) < 0)
		return 1;
	return s->fn(&o);
}
