/*
 * db.h - the PostgreSQL connection of one process, and parameterised queries.
 *
 * A process holds one lazily opened connection. When PostgreSQL goes away
 * the connection is re-established on the next use, so a database restart
 * never needs a restart of kvmgate. SQL text is always a constant; values
 * travel only as parameters.
 */
#ifndef KVMGATE_DB_H
#define KVMGATE_DB_H

#include <libpq-fe.h>

#include "util.h"

/*
 * Sets what to connect to (a conninfo string or URI; "" means the private
 * cluster under var_dir) and the application_name. Does not connect.
 */
void db_configure(const char *conninfo, const char *var_dir, const char *app);

/* The conninfo db_configure settled on. Owned by db.c. */
const char *db_conninfo(void);

/*
 * Returns a connected PGconn, connecting or reconnecting as needed, or NULL
 * when PostgreSQL cannot be reached (db_last_error says why). Owned by db.c.
 */
PGconn *db_conn(void);

/* The last connection or query error, for logs; never contains a password. */
const char *db_last_error(void);

/* True when the last failure was the database being unreachable. */
bool db_unavailable(void);

/*
 * Runs one parameterised statement (text parameters; NULL means SQL NULL).
 * sql must be a string constant: it is prepared once per connection, keyed
 * by its address, so a hot query is planned once, not per call.
 * On success returns a result the caller must PQclear(); on failure logs
 * once and returns NULL. A statement that fails because the connection was
 * lost before it ran is retried once on a fresh connection.
 */
PGresult *db_query(const char *sql, int nparams, const char *const *params) MUSTCHECK;

/*
 * Like db_query, for a statement with binary parameters (lengths and
 * formats as in PQexecParams); results are text.
 */
PGresult *db_query_bin(const char *sql, int nparams, const char *const *params,
                       const int *lengths, const int *formats) MUSTCHECK;

/* Runs a constant statement (BEGIN, COMMIT, ...). Returns 0 or -1. */
int db_exec(const char *sql) MUSTCHECK;

/*
 * Runs a script of several statements from a trusted file (a migration),
 * never anything built from input. Returns 0 or -1 with db_last_error set.
 */
int db_exec_script(const char *script) MUSTCHECK;

/*
 * LISTEN / UNLISTEN on this process's connection. channel must match
 * [a-z0-9_]{1,63} (it cannot travel as a parameter); anything else is
 * refused. Returns 0 or -1. A reconnection forgets what was listened to;
 * a waiter compares db_generation() to notice.
 */
int db_listen(const char *channel) MUSTCHECK;
int db_unlisten(const char *channel) MUSTCHECK;

/*
 * Waits up to timeout_ms for a NOTIFY on this connection, including those
 * already received while other statements ran, and discards them (callers
 * re-read the state they signal). Returns 1 when at least one arrived, 0
 * when none did (the time ran out, or other input woke it early: callers
 * loop to their own deadline), -1 when the connection failed.
 */
int db_wait_notify(int timeout_ms);

/* How many connections this process has made: a change means a new session. */
unsigned db_generation(void);

/*
 * Without waiting: reads what the connection has received and calls fn with
 * the channel and payload of each NOTIFY (valid during the call). Returns
 * how many there were, or -1 when the connection failed.
 */
int db_take_notifies(void (*fn)(const char *channel, const char *payload, void *arg), void *arg);

/* True when the connection is inside a transaction block (BEGIN ... COMMIT). */
bool db_in_transaction(void);

/* Closes the connection (before fork, or at exit). */
void db_close(void);

#endif
