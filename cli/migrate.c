/*
 * migrate.c - applies sql/NNN_name.sql files in order, each in its own
 * transaction, recording each in schema_migrations. Idempotent; concurrent
 * runs are serialised by an advisory lock.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "db.h"

#define MIGRATION_LOCK "7454065011"	/* any constant shared by all runs */

static char *sql_dir(void)
{
	static const char *relative[] = { "../sql", "../share/kvmgate/sql", "../../../sql" };
	char exe[PATH_MAX];
	ssize_t n;

	if (conf_str(CONF_SQL_DIR)[0] != '\0')
		return xstrdup(conf_str(CONF_SQL_DIR));
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		for (size_t i = 0; i < ARRAY_LEN(relative); i++) {
			char *d = xasprintf("%s/%s", exe, relative[i]);
			if (access(d, R_OK | X_OK) == 0)
				return d;
			free(d);
		}
	}
	return xstrdup("sql");
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_migration(const struct dirent *d)
{
	regex_t re;
	int ok;

	if (regcomp(&re, "^[0-9]{3}_[a-z0-9_]+\\.sql$", REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&re, d->d_name, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096)
			buf = xrealloc(buf, cap = cap * 2 + 8192);
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

/* Applies one file unless already recorded. Returns 1 applied, 0 skipped, -1 error. */
static int apply_one(const char *dir, const char *file)
{
	static const char applied_sql[] =
		"SELECT 1 FROM schema_migrations WHERE version = $1";
	static const char record_sql[] =
		"INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";
	char version[4] = { file[0], file[1], file[2], '\0' };
	const char *params[2] = { version, file };
	char *path = NULL, *script = NULL;
	PGresult *r;
	int rc = -1;

	if (db_exec("BEGIN") < 0)
		return -1;
	if ((r = db_query(applied_sql, 1, params)) == NULL)
		goto fail;
	if (PQntuples(r) > 0) {
		PQclear(r);
		rc = 0;
		goto fail;	/* nothing to do: roll back the empty transaction */
	}
	PQclear(r);
	path = xasprintf("%s/%s", dir, file);
	if ((script = read_file(path)) == NULL) {
		fprintf(stderr, "kvmgate: cannot read %s: %s\n", path, strerror(errno));
		goto fail;
	}
	if (db_exec_script(script) < 0) {
		fprintf(stderr, "kvmgate: migration %s: %s\n", file, db_last_error());
		goto fail;
	}
	if ((r = db_query(record_sql, 2, params)) == NULL)
		goto fail;
	PQclear(r);
	if (db_exec("COMMIT") < 0)
		goto fail;
	free(path);
	free(script);
	return 1;
fail:
	if (db_exec("ROLLBACK") < 0 && rc == 0)
		rc = -1;
	free(path);
	free(script);
	return rc;
}

int migrate_all(bool verbose)
{
	static const char create_sql[] =
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		" version integer PRIMARY KEY,"
		" name text NOT NULL,"
		" applied_at timestamptz NOT NULL DEFAULT now())";
	const char *lock[1] = { MIGRATION_LOCK };
	struct dirent **list = NULL;
	char *dir = sql_dir();
	int n, applied = 0, rc = -1;
	PGresult *r;

	if (db_conn() == NULL) {
		fprintf(stderr, "kvmgate: %s\n", db_last_error());
		free(dir);
		return -1;
	}
	if ((r = db_query("SELECT pg_advisory_lock($1::bigint)", 1, lock)) == NULL)
		goto out;
	PQclear(r);
	if (db_exec(create_sql) < 0)
		goto unlock;
	n = scandir(dir, &list, is_migration, by_name);
	if (n < 0) {
		fprintf(stderr, "kvmgate: cannot list %s: %s\n", dir, strerror(errno));
		goto unlock;
	}
	rc = 0;
	for (int i = 0; i < n; i++) {
		int one = rc == 0 ? apply_one(dir, list[i]->d_name) : 0;
		if (one < 0)
			rc = -1;
		else if (one > 0 && verbose)
			printf("applied %s\n", list[i]->d_name);
		applied += one > 0;
		free(list[i]);
	}
	free(list);
	if (rc == 0 && verbose)
		printf("%d migration%s applied, schema up to date\n", applied,
		       applied == 1 ? "" : "s");
unlock:
	if ((r = db_query("SELECT pg_advisory_unlock($1::bigint)", 1, lock)) != NULL)
		PQclear(r);
out:
	if (rc < 0 && db_last_error()[0] != '\0')
		fprintf(stderr, "kvmgate: migrate failed: %s\n", db_last_error());
	free(dir);
	return rc;
}

int cmd_migrate(int argc, char **argv)
{
	if (argc > 1) {
		fputs("usage: kvmgate migrate\n", stderr);
		return 2;
	}
	return migrate_all(true) < 0 ? 1 : 0;
}
