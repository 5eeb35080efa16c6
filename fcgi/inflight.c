/*
 * inflight.c - the exchanges of a streaming tools/call that other workers
 * must reach: its cancellation, and the client's answers to requests the
 * server sent on the call's stream (elicitation, sampling).
 *
 * Those messages arrive as separate POSTs, served by whichever worker nginx
 * picks, while the worker running the call is busy writing its stream. The
 * running worker keeps one mcp_inflight row per exchange and LISTENs on the
 * session's channel; the receiving worker marks the row and NOTIFYs in the
 * same statement. The row, not the notification, carries the news: a waiter
 * re-reads its rows on every wake-up, so a notification sent before it
 * started waiting is never lost. Ending the session deletes the rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

/* The connection LISTEN ran on; a wait on any other would never wake. */
static unsigned listening_on;

/* "mcp_" + session id: lowercase hex, so a valid channel name as it is. */
static void channel_of(const char *session, char out[48])
{
	snprintf(out, 48, "mcp_%.32s", session);
}

int inflight_open(const char *session, const char *call_id)
{
	static const char sql[] =
		"INSERT INTO mcp_inflight (session_id, kind, rpc_id) VALUES ($1, 'call', $2) "
		"ON CONFLICT (session_id, kind, rpc_id) DO UPDATE "
		"  SET cancelled = false, answer = NULL, created_at = now()";
	const char *p[2] = { session, call_id };
	char channel[48];
	PGresult *r;

	channel_of(session, channel);
	if (db_listen(channel) < 0)
		return -1;
	listening_on = db_generation();
	if ((r = db_query(sql, 2, p)) == NULL) {
		if (db_unlisten(channel) < 0)
			log_warnx("could not stop listening on a session channel");
		return -1;
	}
	PQclear(r);
	return 0;
}

void inflight_close(const char *session, const char *call_id)
{
	static const char sql[] =
		"DELETE FROM mcp_inflight WHERE session_id = $1 AND kind = 'call' AND rpc_id = $2";
	const char *p[2] = { session, call_id };
	char channel[48];
	PGresult *r;

	if ((r = db_query(sql, 2, p)) != NULL)
		PQclear(r);
	channel_of(session, channel);
	if (db_unlisten(channel) < 0)
		log_warnx("could not stop listening on a session channel");
}

int inflight_expect(const char *session, const char *request_id)
{
	static const char sql[] =
		"INSERT INTO mcp_inflight (session_id, kind, rpc_id) VALUES ($1, 'request', $2)";
	const char *p[2] = { session, request_id };
	PGresult *r;

	if ((r = db_query(sql, 2, p)) == NULL)
		return -1;
	PQclear(r);
	return 0;
}

void inflight_forget(const char *session, const char *request_id)
{
	static const char sql[] =
		"DELETE FROM mcp_inflight WHERE session_id = $1 AND kind = 'request' AND rpc_id = $2";
	const char *p[2] = { session, request_id };
	PGresult *r;

	if ((r = db_query(sql, 2, p)) != NULL)
		PQclear(r);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Reads the rows of a call (and of request_id, when not NULL). Returns the
 * event they show, INFLIGHT_NONE when nothing happened yet. A call row that
 * is gone means the session ended: that cancels the call.
 */
static enum inflight_event check(const char *session, const char *call_id,
                                 const char *request_id, json_object **answer)
{
	static const char sql[] =
		"SELECT kind, cancelled, answer FROM mcp_inflight WHERE session_id = $1 "
		"  AND ((kind = 'call' AND rpc_id = $2) OR (kind = 'request' AND rpc_id = $3))";
	const char *p[3] = { session, call_id, request_id };
	bool alive = false, cancelled = false, bad = false;
	json_object *got = NULL;
	PGresult *r;

	if ((r = db_query(sql, 3, p)) == NULL)
		return INFLIGHT_ERROR;
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), "call") == 0) {
			alive = true;
			cancelled = PQgetvalue(r, i, 1)[0] == 't';
		} else if (!PQgetisnull(r, i, 2) && got == NULL) {
			got = json_tokener_parse(PQgetvalue(r, i, 2));
			bad = got == NULL;
		}
	}
	PQclear(r);
	if (!alive || cancelled) {
		json_object_put(got);
		return INFLIGHT_CANCELLED;
	}
	if (bad)
		return INFLIGHT_ERROR;
	if (got == NULL)
		return INFLIGHT_NONE;
	if (answer != NULL)
		*answer = got;
	else
		json_object_put(got);
	return INFLIGHT_ANSWER;
}

enum inflight_event inflight_wait(const char *session, const char *call_id,
                                  const char *request_id, int timeout_ms,
                                  json_object **answer)
{
	long long deadline = now_ms() + timeout_ms;

	if (answer != NULL)
		*answer = NULL;
	for (;;) {
		enum inflight_event ev = check(session, call_id, request_id, answer);
		long long left = deadline - now_ms();

		if (ev != INFLIGHT_NONE)
			return ev;
		if (left <= 0)
			return INFLIGHT_NONE;
		if (db_generation() != listening_on) {
			log_warnx("the database connection was replaced during a streamed call");
			return INFLIGHT_ERROR;
		}
		if (db_wait_notify((int)(left > 60000 ? 60000 : left)) < 0)
			return INFLIGHT_ERROR;
	}
}

/* Runs sql (session, rpc id[, answer]); returns 1 when a row matched, 0, or -1. */
static int signal_row(const char *sql, int n, const char *const *p)
{
	PGresult *r = db_query(sql, n, p);
	int matched;

	if (r == NULL)
		return -1;
	matched = PQntuples(r) > 0;
	PQclear(r);
	return matched;
}

int inflight_cancel(const char *session, const char *call_id)
{
	static const char sql[] =
		"WITH u AS (UPDATE mcp_inflight SET cancelled = true "
		"  WHERE session_id = $1 AND kind = 'call' AND rpc_id = $2 RETURNING session_id) "
		"SELECT pg_notify('mcp_' || session_id, 'cancel') FROM u";
	const char *p[2] = { session, call_id };

	return signal_row(sql, 2, p);
}

int inflight_answer(const char *session, const char *request_id, const char *message)
{
	static const char sql[] =
		"WITH u AS (UPDATE mcp_inflight SET answer = $3::jsonb "
		"  WHERE session_id = $1 AND kind = 'request' AND rpc_id = $2 AND answer IS NULL "
		"  RETURNING session_id) "
		"SELECT pg_notify('mcp_' || session_id, 'answer') FROM u";
	const char *p[3] = { session, request_id, message };

	return signal_row(sql, 3, p);
}
