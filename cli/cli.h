/*
 * cli.h - the kvmgate admin command: one function per subcommand.
 *
 * Each command gets its arguments after the subcommand name and returns the
 * process exit status: 0 success, 1 failure, 2 usage error.
 */
#ifndef KVMGATE_CLI_H
#define KVMGATE_CLI_H

#include "util.h"

int cmd_migrate(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_whoami(int argc, char **argv);
/* kvmgate audit <head|verify|export|checkpoint|append|pubkey> (audit.c). */
int cmd_audit(int argc, char **argv);
/* kvmgate capture <status|frame> --device ID: the capture worker's view of a device (capture.c). */
int cmd_capture(int argc, char **argv);

/* Applies every migration not yet applied; shared by migrate and init. */
int migrate_all(bool verbose) MUSTCHECK;

#endif
