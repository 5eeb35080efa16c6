/*
 * init.c - first start: the first organisation, its admin user and an admin
 * API token, which is printed once and saved to <var>/admin-token (0600),
 * and the master key sealing device credentials (<var>/master.key, 0600)
 * unless KVMGATE_MASTER_KEY gives it. A second run changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "db.h"
#include "tokens.h"

/* Runs a statement returning one value and copies it; 0 or -1. */
static int query_one(const char *sql, int n, const char *const *params, char *out, size_t size)
{
	PGresult *r = db_query(sql, n, params);

	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int write_token_file(const char *path, const char *token)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t len = strlen(token);
	int rc = 0;

	if (fd < 0)
		return -1;
	if (fchmod(fd, 0600) < 0 || write(fd, token, len) != (ssize_t)len ||
	    write(fd, "\n", 1) != 1 || fsync(fd) < 0)
		rc = -1;
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

int cmd_init(int argc, char **argv)
{
	const char *org_name = conf_str(CONF_ORG);
	char count[24], org_id[24], user_id[24], token[TOKEN_LEN + 1];
	char *path = xasprintf("%s/admin-token", conf_str(CONF_VAR_DIR));
	const char *p[3];
	int rc = 1;

	if (argc > 1) {
		fputs("usage: kvmgate init\n", stderr);
		free(path);
		return 2;
	}
	if (migrate_all(false) < 0)
		goto out;
	/* The key sealing device credentials: in a file, never in the database. */
	if (conf_str(CONF_MASTER_KEY)[0] == '\0') {
		switch (secret_key_create(conf_str(CONF_MASTER_KEY_FILE))) {
		case 1:
			printf("master key for device credentials created in %s (mode 0600); "
			       "keep a copy: credentials cannot be read without it\n",
			       conf_str(CONF_MASTER_KEY_FILE));
			break;
		case 0:
			break;
		default:
			fprintf(stderr, "kvmgate: cannot create %s: %s\n",
			        conf_str(CONF_MASTER_KEY_FILE), strerror(errno));
			free(path);
			return 1;
		}
	}
	if (db_exec("BEGIN") < 0 ||
	    db_exec("LOCK TABLE organisations IN SHARE ROW EXCLUSIVE MODE") < 0 ||
	    query_one("SELECT count(*) FROM organisations", 0, NULL, count, sizeof count) < 0)
		goto fail;
	if (strcmp(count, "0") != 0) {
		printf("already initialised (%s organisation%s); no new token made\n",
		       count, strcmp(count, "1") == 0 ? "" : "s");
		rc = 0;
		goto fail;
	}
	p[0] = org_name;
	if (query_one("INSERT INTO organisations (name) VALUES ($1) RETURNING id",
	              1, p, org_id, sizeof org_id) < 0 ||
	    query_one("INSERT INTO users (username) VALUES ('admin') RETURNING id",
	              0, NULL, user_id, sizeof user_id) < 0)
		goto fail;
	p[0] = org_id;
	p[1] = user_id;
	{
		PGresult *r = db_query("INSERT INTO memberships (org_id, user_id, role) "
		                       "VALUES ($1, $2, 'org_admin')", 2, p);
		if (r == NULL)
			goto fail;
		PQclear(r);
	}
	if (token_create(atoll(org_id), atoll(user_id), "admin", "{read,write}", token) < 0)
		goto fail;
	if (write_token_file(path, token) < 0) {
		fprintf(stderr, "kvmgate: cannot write %s: %s\n", path, strerror(errno));
		goto fail;
	}
	if (db_exec("COMMIT") < 0) {
		unlink(path);
		goto out;
	}
	printf("organisation '%s' and user 'admin' (org_admin) created\n", org_name);
	printf("admin API token (shown once; also saved to %s):\n%s\n", path, token);
	explicit_bzero(token, sizeof token);
	free(path);
	return 0;
fail:
	if (db_exec("ROLLBACK") < 0)
		rc = 1;
out:
	if (rc != 0)
		fprintf(stderr, "kvmgate: init failed: %s\n", db_last_error());
	free(path);
	return rc;
}
