/*
 * common.c - helpers the subcommands share: JSON output, organisations by
 * name, text checks, and the audit events of the CLI's changes.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cli.h"
#include "db.h"

void cli_print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int cli_org_lookup(const char *name, long long *id)
{
	static const char sql[] = "SELECT id FROM organisations WHERE name = $1";
	const char *params[1] = { name };
	PGresult *r = db_query(sql, 1, params);

	if (r == NULL) {
		fprintf(stderr, "kvmgate: %s\n", db_last_error());
		return -1;
	}
	if (PQntuples(r) != 1) {
		fprintf(stderr, "kvmgate: no organisation named '%s'\n", name);
		PQclear(r);
		return -1;
	}
	*id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

bool cli_text_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		n += (*p & 0xC0) != 0x80;
	}
	return n >= 1 && n <= max;
}

void cli_audit_actor(struct audit_event *ev)
{
	struct passwd *pw = getpwuid(getuid());

	ev->actor = AUDIT_ACTOR_CLI;
	ev->user = pw != NULL ? pw->pw_name : NULL;
	ev->client = AUDIT_CLIENT_CLI;
	ev->client_name = "kvmgate";
	ev->client_version = KVMGATE_VERSION;
}

/* Appends one event of c with outcome and reason. Returns the sequence number or -1. */
static long long change_event(const struct cli_change *c, enum audit_outcome outcome,
                              const char *reason)
{
	struct audit_event ev;

	audit_event_init(&ev, c->org_id, c->action);
	cli_audit_actor(&ev);
	ev.args = c->args;
	ev.outcome = outcome;
	ev.reason = reason;
	return audit_append(&ev);
}

int cli_change_begin(struct cli_change *c, long long org_id, const char *action,
                     json_object *args)
{
	c->org_id = org_id;
	snprintf(c->action, sizeof c->action, "%s", action);
	c->args = args;
	if (change_event(c, AUDIT_PENDING, NULL) > 0)
		return 0;
	fprintf(stderr, "kvmgate: not done: the audit log could not be written (%s)\n",
	        db_last_error());
	json_object_put(c->args);
	c->args = NULL;
	return -1;
}

void cli_change_end(struct cli_change *c, int rc)
{
	char reason[32];

	snprintf(reason, sizeof reason, "exit status %d", rc);
	if (change_event(c, rc == 0 ? AUDIT_OK : AUDIT_ERROR, rc == 0 ? NULL : reason) < 0)
		fprintf(stderr, "kvmgate: warning: the outcome could not be written to the audit "
		        "log (%s)\n", db_last_error());
	json_object_put(c->args);
	c->args = NULL;
}

int cli_getopts(int argc, char **argv, const struct option *opts, unsigned allowed,
                const char *what, const char **val, unsigned *seen, json_object *record,
                int *first)
{
	int c, idx;

	opterr = 0;
	optind = 1;
	*seen = 0;
	/* No "+": options may follow the positional arguments (getopt permutes). */
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		int bit = c > 0 ? __builtin_ctz((unsigned)c) : 0;

		if (c == '?' || c == ':') {
			fprintf(stderr, "kvmgate: %s: bad option %s\n", what, argv[optind - 1]);
			return -1;
		}
		if (!(allowed & (unsigned)c)) {
			fprintf(stderr, "kvmgate: %s does not take --%s\n", what, opts[bit].name);
			return -1;
		}
		if (*seen & (unsigned)c) {
			fprintf(stderr, "kvmgate: %s: --%s given twice\n", what, opts[bit].name);
			return -1;
		}
		*seen |= (unsigned)c;
		val[bit] = optarg ? optarg : "";
		if (record != NULL)
			json_object_object_add(record, opts[bit].name, optarg
			                       ? json_object_new_string(optarg)
			                       : json_object_new_boolean(true));
	}
	*first = optind;
	return 0;
}
