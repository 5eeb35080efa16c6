/*
 * whoami.c - checks a token against the database and says who it speaks for.
 * The token comes from the argument, $KVMGATE_TOKEN or <var>/admin-token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "db.h"
#include "tokens.h"

static int read_token(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	if (fgets(out, (int)size, f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int cmd_whoami(int argc, char **argv)
{
	char buf[256];
	const char *token = argc > 1 ? argv[1] : getenv("KVMGATE_TOKEN");
	struct token_identity id;

	if (argc > 2) {
		fputs("usage: kvmgate whoami [TOKEN]\n", stderr);
		return 2;
	}
	if (token == NULL || *token == '\0') {
		char *path = xasprintf("%s/admin-token", conf_str(CONF_VAR_DIR));
		int rc = read_token(path, buf, sizeof buf);
		free(path);
		if (rc < 0) {
			fputs("kvmgate: no token given (argument, KVMGATE_TOKEN or var/admin-token)\n",
			      stderr);
			return 2;
		}
		token = buf;
	}
	switch (token_lookup(token, &id)) {
	case TOKEN_OK:
		printf("token '%s' of user '%s' (%s) in organisation '%s'; scopes:%s%s\n",
		       id.name, id.user, id.role, id.org,
		       id.scope_read ? " read" : "", id.scope_write ? " write" : "");
		return 0;
	case TOKEN_INVALID:
		fputs("kvmgate: token not accepted (unknown, revoked or expired)\n", stderr);
		return 1;
	case TOKEN_DB_ERROR:
		break;
	}
	fprintf(stderr, "kvmgate: %s\n", db_last_error());
	return 1;
}
