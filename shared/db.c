/*
 * db.c - one libpq connection per process, reconnected on demand.
 */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_PREPARED 256

static struct {
	char *conninfo;
	char app[64];
	PGconn *conn;
	char error[256];
	bool unavailable;
	/* Statements prepared on this connection, by the address of their text. */
	const char *prepared[MAX_PREPARED];
	int nprepared;
	unsigned generation;	/* connections made so far */
} db;

void db_configure(const char *conninfo, const char *var_dir, const char *app)
{
	free(db.conninfo);
	if (conninfo != NULL && *conninfo != '\0')
		db.conninfo = xstrdup(conninfo);
	else
		db.conninfo = xasprintf("host=%s/pg/run dbname=kvmgate user=kvmgate", var_dir);
	snprintf(db.app, sizeof db.app, "%s", app);
}

const char *db_conninfo(void)
{
	return db.conninfo;
}

static void set_error(const char *what, const char *detail)
{
	size_t n;

	snprintf(db.error, sizeof db.error, "%s: %s", what, detail ? detail : "");
	n = strlen(db.error);
	while (n > 0 && (db.error[n - 1] == '\n' || db.error[n - 1] == ' '))
		db.error[--n] = '\0';
}

PGconn *db_conn(void)
{
	/* Earlier keywords are defaults the conninfo (expanded from dbname) may override. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "3", db.app, db.conninfo, NULL };

	if (db.conn != NULL && PQstatus(db.conn) == CONNECTION_OK)
		return db.conn;
	if (db.conninfo == NULL) {
		set_error("database unavailable", "not configured");
		return NULL;
	}
	if (db.conn != NULL)
		PQfinish(db.conn);
	db.nprepared = 0;
	db.conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(db.conn) != CONNECTION_OK) {
		set_error("database unavailable", PQerrorMessage(db.conn));
		db.unavailable = true;
		PQfinish(db.conn);
		db.conn = NULL;
		return NULL;
	}
	db.unavailable = false;
	db.generation++;
	return db.conn;
}

const char *db_last_error(void)
{
	return db.error;
}

bool db_unavailable(void)
{
	return db.unavailable;
}

/*
 * Returns the name of sql's prepared statement on c, preparing it on first
 * use; NULL when the table is full (the caller then runs it unprepared) or
 * when preparing fails (*failed set, error recorded).
 */
static const char *prepared_name(PGconn *c, const char *sql, int nparams, char name[16],
                                 bool *failed)
{
	PGresult *r;
	int i;

	*failed = false;
	for (i = 0; i < db.nprepared && db.prepared[i] != sql; i++)
		;
	snprintf(name, 16, "k%d", i);
	if (i < db.nprepared)
		return name;
	if (i == MAX_PREPARED)
		return NULL;
	r = PQprepare(c, name, sql, nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_error("prepare failed", PQerrorMessage(c));
		PQclear(r);
		*failed = true;
		return NULL;
	}
	PQclear(r);
	db.prepared[db.nprepared++] = sql;
	return name;
}

PGresult *db_query_bin(const char *sql, int nparams, const char *const *params,
                       const int *lengths, const int *formats)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		PGconn *c = db_conn();
		PGresult *r;
		ExecStatusType st;
		bool idle, failed;
		char namebuf[16];
		const char *name;

		if (c == NULL)
			break;
		idle = PQtransactionStatus(c) == PQTRANS_IDLE;
		name = prepared_name(c, sql, nparams, namebuf, &failed);
		if (failed) {
			r = NULL;
		} else {
			r = name ? PQexecPrepared(c, name, nparams, params, lengths, formats, 0)
			         : PQexecParams(c, sql, nparams, NULL, params, lengths, formats, 0);
			st = PQresultStatus(r);
			if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
				return r;
			set_error("query failed", PQerrorMessage(c));
			PQclear(r);
		}
		if (PQstatus(c) == CONNECTION_OK) {
			db.unavailable = false;
			log_warnx("%s", db.error);
			return NULL;
		}
		/* The connection died under us (server restarted). Outside a
		 * transaction the statement never ran, so one retry on a fresh
		 * connection is safe; inside one, the transaction is lost. */
		db.unavailable = true;
		if (!idle)
			break;
	}
	log_warnx("%s", db.error);
	return NULL;
}

PGresult *db_query(const char *sql, int nparams, const char *const *params)
{
	return db_query_bin(sql, nparams, params, NULL, NULL);
}

int db_exec(const char *sql)
{
	PGresult *r = db_query(sql, 0, NULL);

	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

int db_exec_script(const char *script)
{
	PGconn *c = db_conn();
	PGresult *r;
	int rc = 0;

	if (c == NULL)
		return -1;
	r = PQexec(c, script);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_error("script failed", PQerrorMessage(c));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

static bool channel_valid(const char *channel)
{
	size_t n = strlen(channel);

	return n > 0 && n < 64 && strspn(channel, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* Runs "<verb> <channel>" once; the channel was checked to need no quoting. */
static int listen_cmd(const char *verb, const char *channel)
{
	PGconn *c;
	PGresult *r;
	char sql[96];
	int rc = 0;

	if (!channel_valid(channel)) {
		log_warnx("refused to %s on channel name of %zu bytes", verb, strlen(channel));
		return -1;
	}
	if ((c = db_conn()) == NULL)
		return -1;
	snprintf(sql, sizeof sql, "%s %s", verb, channel);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_error("listen failed", PQerrorMessage(c));
		log_warnx("%s", db.error);
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int db_listen(const char *channel)
{
	return listen_cmd("LISTEN", channel);
}

int db_unlisten(const char *channel)
{
	return listen_cmd("UNLISTEN", channel);
}

/* Frees every notification libpq holds; returns how many there were. */
static int drain_notifies(PGconn *c)
{
	PGnotify *n;
	int count = 0;

	while ((n = PQnotifies(c)) != NULL) {
		PQfreemem(n);
		count++;
	}
	return count;
}

int db_wait_notify(int timeout_ms)
{
	PGconn *c = db.conn;
	struct pollfd pfd;
	int rc;

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return -1;
	if (drain_notifies(c) > 0)
		return 1;
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	do
		rc = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 0;
	if (!PQconsumeInput(c)) {
		set_error("connection lost", PQerrorMessage(c));
		db.unavailable = true;
		return -1;
	}
	return drain_notifies(c) > 0;
}

int db_take_notifies(void (*fn)(const char *channel, const char *payload, void *arg), void *arg)
{
	PGconn *c = db.conn;
	PGnotify *n;
	int count = 0;

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return -1;
	if (!PQconsumeInput(c)) {
		set_error("connection lost", PQerrorMessage(c));
		db.unavailable = true;
		return -1;
	}
	while ((n = PQnotifies(c)) != NULL) {
		fn(n->relname, n->extra, arg);
		PQfreemem(n);
		count++;
	}
	return count;
}

unsigned db_generation(void)
{
	return db.generation;
}

bool db_in_transaction(void)
{
	return db.conn != NULL && PQtransactionStatus(db.conn) != PQTRANS_IDLE;
}

void db_close(void)
{
	if (db.conn != NULL)
		PQfinish(db.conn);
	db.conn = NULL;
}
