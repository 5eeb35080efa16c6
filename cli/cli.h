/*
 * cli.h - the kvmgate admin command: one function per subcommand.
 *
 * Each command gets its arguments after the subcommand name and returns the
 * process exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef KVMGATE_CLI_H
#define KVMGATE_CLI_H

#include <json-c/json.h>

#include "util.h"

int cmd_migrate(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_whoami(int argc, char **argv);
/* kvmgate audit <head|verify|export|checkpoint|append|pubkey> (audit.c). */
int cmd_audit(int argc, char **argv);
/* kvmgate capture <status|frame> --device ID: the capture worker's view of a device (capture.c). */
int cmd_capture(int argc, char **argv);

/* kvmgate capture op DEVICE NAME [ARGS] (capture_op.c); argv[0] is "op". */
int cmd_capture_op(int argc, char **argv);

/* kvmgate token|user|org (identity.c): API tokens, members, organisations. */
int cmd_token(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_org(int argc, char **argv);

/* Prints a json-c object on one line and releases it (common.c). */
void cli_print_json(json_object *o);

/* Looks up an organisation's id by name. 0, or -1 after saying why on stderr. */
int cli_org_lookup(const char *name, long long *id) MUSTCHECK;

/* Marks ev as made by the CLI: the operating-system user running it (common.c). */
struct audit_event;
void cli_audit_actor(struct audit_event *ev);

/*
 * A change the CLI makes to an organisation, in its audit chain: the intent
 * (pending) before it acts, the outcome after. Lives on the caller's stack.
 */
struct cli_change {
	long long org_id;
	char action[64];
	json_object *args;		/* owned */
};

/*
 * Records the intent of action ("kvmgate token create") with args (taken)
 * in org_id's chain. Returns 0, or -1 after saying why: the change must not
 * be made, and c is finished.
 */
int cli_change_begin(struct cli_change *c, long long org_id, const char *action,
                     json_object *args) MUSTCHECK;

/* Records the outcome (exit status rc: 0 ok, else error) and finishes c. */
void cli_change_end(struct cli_change *c, int rc);

/*
 * Parses the options of one subcommand: argv[0] is the subcommand, opts a
 * getopt_long table whose row i has val 1 << i. An unknown option, one not
 * in allowed or one given twice is refused, naming it after "kvmgate: "
 * what. Sets *seen to the bits given and val[i] to row i's argument ("" for
 * a flag; val is untouched for options not given); when record is not NULL
 * each option also goes into it as "name": value (what an audit event of
 * the change shows). Positional arguments end up at argv[*first .. argc).
 * Returns 0, or -1 after saying why (a usage error).
 */
struct option;
int cli_getopts(int argc, char **argv, const struct option *opts, unsigned allowed,
                const char *what, const char **val, unsigned *seen, json_object *record,
                int *first) MUSTCHECK;

/* Whether s is 1 to max characters of text without control characters (common.c). */
bool cli_text_ok(const char *s, size_t max);

/* kvmgate device <list|show|add|update|remove> (device.c). */
int cmd_device(int argc, char **argv);

/* Applies every migration not yet applied; shared by migrate and init. */
int migrate_all(bool verbose) MUSTCHECK;

#endif
