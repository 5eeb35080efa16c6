/*
 * main.c - kvmgate, the admin command line: a table of subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "db.h"
#include "log.h"

static int cmd_version(int argc, char **argv);
static int cmd_config(int argc, char **argv);

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	bool needs_db;
	const char *usage;
} commands[] = {
	{ "migrate", cmd_migrate, true,  "migrate             apply pending database migrations" },
	{ "init",    cmd_init,    true,  "init                first organisation, admin user and admin token" },
	{ "whoami",  cmd_whoami,  true,  "whoami [TOKEN]      who a token speaks for (default: $KVMGATE_TOKEN, then var/admin-token)" },
	{ "audit",   cmd_audit,   true,  "audit ...           the audit chain: head, verify, export, checkpoint, append, pubkey" },
	{ "token",   cmd_token,   true,  "token ...           API tokens: create, list, revoke (--org NAME, --json)" },
	{ "user",    cmd_user,    true,  "user ...            members: add, list, set-role, disable, remove (--org NAME, --json)" },
	{ "org",     cmd_org,     true,  "org ...             organisations: create, list (--json)" },
	{ "device",  cmd_device,  true,  "device ...          devices: list, add, remove (--org NAME, --json)" },
	{ "capture", cmd_capture, false, "capture ...         a device's session and latest frame: status, frame --out FILE" },
	{ "config",  cmd_config,  false, "config              list the environment variables and defaults" },
	{ "version", cmd_version, false, "version             print the version" },
};

static int usage(void)
{
	fputs("usage: kvmgate <command> [args]\n\ncommands:\n", stderr);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(stderr, "  %s\n", commands[i].usage);
	return 2;
}

static int cmd_version(int argc, char **argv)
{
	printf("kvmgate %s\n", KVMGATE_VERSION);
	return 0;
}

static int cmd_config(int argc, char **argv)
{
	conf_print();
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		return usage();
	log_init("cli");
	if (conf_load() < 0)
		return 1;
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (commands[i].needs_db)
			db_configure(conf_str(CONF_DATABASE_URL), conf_str(CONF_VAR_DIR),
			             "kvmgate-cli");
		rc = commands[i].fn(argc - 1, argv + 1);
		db_close();
		return rc;
	}
	fprintf(stderr, "kvmgate: unknown command '%s'\n", argv[1]);
	return usage();
}
