/*
 * stream.c - a call whose response is an event stream: progress and log
 * notifications while it runs, requests to the client (elicitation,
 * sampling) whose answers come back as separate POSTs, cancellation, and
 * the confirmation step destructive tools share.
 *
 * A stream carries only messages related to its request, then the
 * response, then ends. No event carries an id: the stream cannot be
 * resumed (GET /mcp answers 405), and a client that saw an id would try to.
 * Cancellation and answers reach the call through inflight.c.
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fcgi.h"
#include "log.h"

/* How long a confirmation question waits for the person to answer. */
#define CONFIRM_TIMEOUT_MS (5 * 60 * 1000)

static const char *const levels[] = {
	"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency",
};

static int level_rank(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(levels); i++)
		if (strcmp(levels[i], name) == 0)
			return (int)i;
	return -1;
}

/*
 * A streaming call holds its worker until it ends, and some wait minutes
 * for a person. Streams may take only some of the workers, so short calls
 * always find one free: each stream holds a slot (the worker's pid) in a
 * table shared by all workers; the supervisor frees the slot of a worker
 * that dies.
 */
static struct {
	int max;			/* slots that may be taken */
	_Atomic pid_t *slot;		/* shared; 0 = free */
	int mine;			/* this worker's slot, -1 */
} streams = { 0, NULL, -1 };

void mcp_streams_init(int workers)
{
	size_t size = (size_t)workers * sizeof *streams.slot;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		log_err("mmap for the stream slots");
		abort();
	}
	streams.slot = p;
	/* At least one worker, and a quarter of them, stay for short calls. */
	streams.max = workers - (workers / 4 > 1 ? workers / 4 : 1);
}

void mcp_streams_release(pid_t pid)
{
	for (int i = 0; streams.slot != NULL && i < streams.max; i++) {
		pid_t want = pid;
		atomic_compare_exchange_strong(&streams.slot[i], &want, 0);
	}
}

bool stream_slot_take(void)
{
	if (streams.slot == NULL)		/* tests without a supervisor */
		return true;
	for (int i = 0; i < streams.max; i++) {
		pid_t free_slot = 0;
		if (atomic_compare_exchange_strong(&streams.slot[i], &free_slot, getpid())) {
			streams.mine = i;
			return true;
		}
	}
	return false;
}

void stream_slot_give_back(void)
{
	if (streams.mine >= 0)
		atomic_store(&streams.slot[streams.mine], 0);
	streams.mine = -1;
}

int mcp_stream_begin(struct mcp_call *c)
{
	if (c->streaming)
		return 0;
	if (!c->can_stream || c->session.id[0] == '\0')
		return -1;
	if (!stream_slot_take()) {
		log_warnx("all %d stream slots are taken; this call runs without a stream",
		          streams.max);
		metrics_stream_refused();
		return -1;
	}
	if (inflight_open(c->session.id, c->id_text) < 0) {
		stream_slot_give_back();
		return -1;
	}
	resp_stream_begin(c->req, "text/event-stream");
	c->streaming = true;
	return 0;
}

int mcp_stream_send(struct mcp_call *c, json_object *msg)
{
	struct buf b = BUF_INIT;
	int rc = -1;

	if (c->streaming) {
		buf_printf(&b, "event: message\ndata: %s\n\n", json_object_to_json_string_ext(msg,
		           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		rc = resp_stream_write(c->req, b.data, b.len);
		buf_free(&b);
	}
	json_object_put(msg);
	return rc;
}

void mcp_stream_end(struct mcp_call *c)
{
	if (!c->streaming)
		return;
	inflight_close(c->session.id, c->id_text);
	stream_slot_give_back();
	c->streaming = false;
}

/* Sends {"jsonrpc":"2.0","method":method,"params":params (taken)}. */
static void notify(struct mcp_call *c, const char *method, json_object *params)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(o, "params", params);
	if (mcp_stream_send(c, o) < 0)
		log_debug("notification %s not delivered: no stream", method);
}

void mcp_progress(struct mcp_call *c, double progress, double total, const char *message)
{
	json_object *p, *token = NULL;

	if (c->progress_token == NULL || !c->streaming || !(progress > c->progress))
		return;
	c->progress = progress;
	if (json_object_deep_copy(c->progress_token, &token, NULL) != 0)
		abort();
	p = json_object_new_object();
	json_object_object_add(p, "progressToken", token);
	json_object_object_add(p, "progress", progress == floor(progress)
	                       ? json_object_new_int64((int64_t)progress)
	                       : json_object_new_double(progress));
	if (total > 0)
		json_object_object_add(p, "total", total == floor(total)
		                       ? json_object_new_int64((int64_t)total)
		                       : json_object_new_double(total));
	if (message != NULL)
		json_object_object_add(p, "message", json_object_new_string(message));
	notify(c, "notifications/progress", p);
}

void mcp_log(struct mcp_call *c, const char *level, const char *fmt, ...)
{
	json_object *p;
	char text[1024];
	va_list ap;

	if (!c->streaming || level_rank(level) < 0 ||
	    (c->session.log_level[0] != '\0' &&
	     level_rank(level) < level_rank(c->session.log_level)))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	p = json_object_new_object();
	json_object_object_add(p, "level", json_object_new_string(level));
	json_object_object_add(p, "logger", json_object_new_string("kvmgate"));
	json_object_object_add(p, "data", json_object_new_string(text));
	notify(c, "notifications/message", p);
}

int mcp_sleep(struct mcp_call *c, int ms)
{
	if (!c->streaming) {
		/* Not registered, so nothing can cancel it: just wait. */
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0)
			;
		return RPC_OK;
	}
	switch (inflight_wait(c->session.id, c->id_text, NULL, ms, NULL)) {
	case INFLIGHT_CANCELLED:
		return RPC_CANCELLED;
	case INFLIGHT_ERROR:
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the database is unavailable; try again");
	default:
		return RPC_OK;
	}
}

/* The code and message of a JSON-RPC error object; -32603 when malformed. */
static int client_error(struct mcp_call *c, json_object *err)
{
	json_object *code = NULL, *msg = NULL;

	json_object_object_get_ex(err, "code", &code);
	json_object_object_get_ex(err, "message", &msg);
	snprintf(c->error, sizeof c->error, "the client answered with an error: %.200s",
	         json_object_is_type(msg, json_type_string) ? json_object_get_string(msg) : "?");
	if (!json_object_is_type(code, json_type_int) || json_object_get_int(code) == 0)
		return RPC_INTERNAL_ERROR;
	return json_object_get_int(code);
}

int mcp_client_request(struct mcp_call *c, const char *method, json_object *params,
                       int timeout_ms, json_object **result)
{
	json_object *msg, *answer = NULL, *v;
	char id[40], id_text[48];
	uint8_t rnd[8];
	int rc;

	*result = NULL;
	if (!c->streaming) {
		json_object_put(params);
		return mcp_fail(c, RPC_INTERNAL_ERROR, "%s needs a streamed response", method);
	}
	random_bytes(rnd, sizeof rnd);
	memcpy(id, "kvmgate-", 8);
	hex_encode(rnd, sizeof rnd, id + 8);
	snprintf(id_text, sizeof id_text, "\"%s\"", id);
	if (inflight_expect(c->session.id, id_text) < 0) {
		json_object_put(params);
		return mcp_fail(c, RPC_INTERNAL_ERROR, "the database is unavailable; try again");
	}
	msg = json_object_new_object();
	json_object_object_add(msg, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(msg, "id", json_object_new_string(id));
	json_object_object_add(msg, "method", json_object_new_string(method));
	json_object_object_add(msg, "params", params);
	if (mcp_stream_send(c, msg) < 0) {
		rc = mcp_fail(c, RPC_INTERNAL_ERROR, "the client is no longer connected");
		goto out;
	}
	switch (inflight_wait(c->session.id, c->id_text, id_text, timeout_ms, &answer)) {
	case INFLIGHT_ANSWER:
		break;
	case INFLIGHT_CANCELLED:
		rc = RPC_CANCELLED;
		goto out;
	case INFLIGHT_NONE:
		rc = mcp_fail(c, RPC_INTERNAL_ERROR, "the client did not answer %s within %d s",
		              method, timeout_ms / 1000);
		goto out;
	case INFLIGHT_ERROR:
		rc = mcp_fail(c, RPC_INTERNAL_ERROR, "the database is unavailable; try again");
		goto out;
	}
	if (json_object_object_get_ex(answer, "error", &v)) {
		rc = client_error(c, v);
	} else if (json_object_object_get_ex(answer, "result", &v) &&
	           json_object_is_type(v, json_type_object)) {
		*result = json_object_get(v);
		rc = RPC_OK;
	} else {
		rc = mcp_fail(c, RPC_INTERNAL_ERROR, "the client's answer to %s has no result", method);
	}
out:
	json_object_put(answer);
	inflight_forget(c->session.id, id_text);
	return rc;
}

/* Asks the person through form elicitation; the result as mcp_confirm() gives it. */
static int elicit_confirm(struct mcp_call *c, const char *action, struct tool_result *res,
                          bool *yes)
{
	json_object *params = json_object_new_object(), *schema = json_object_new_object();
	json_object *props = json_object_new_object(), *confirm = json_object_new_object();
	json_object *required = json_object_new_array(), *result = NULL, *v, *content;
	const char *what;
	int rc;

	json_object_object_add(confirm, "type", json_object_new_string("boolean"));
	json_object_object_add(confirm, "title", json_object_new_string("Confirm"));
	json_object_object_add(confirm, "description", json_object_new_string(action));
	json_object_object_add(props, MCP_CONFIRM_ARG, confirm);
	json_object_array_add(required, json_object_new_string(MCP_CONFIRM_ARG));
	json_object_object_add(schema, "type", json_object_new_string("object"));
	json_object_object_add(schema, "properties", props);
	json_object_object_add(schema, "required", required);
	json_object_object_add(params, "message", json_object_new_string(action));
	json_object_object_add(params, "requestedSchema", schema);
	rc = mcp_client_request(c, "elicitation/create", params, CONFIRM_TIMEOUT_MS, &result);
	if (rc != RPC_OK)
		return rc;
	what = json_object_object_get_ex(result, "action", &v) ? json_object_get_string(v) : "";
	*yes = strcmp(what, "accept") == 0 &&
	       json_object_object_get_ex(result, "content", &content) &&
	       json_object_object_get_ex(content, MCP_CONFIRM_ARG, &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
	if (!*yes)
		tool_fail(res, "Not done: the user did not confirm (%s). Do not retry unless the "
		          "user asks for it.", strcmp(what, "accept") == 0 ? "left unconfirmed"
		          : strcmp(what, "decline") == 0 ? "declined" : "cancelled");
	json_object_put(result);
	return RPC_OK;
}

int mcp_confirm(struct mcp_call *c, json_object *args, const char *action,
                struct tool_result *res, bool *yes)
{
	json_object *v;

	*yes = false;
	if (c->session.elicit_form && mcp_stream_begin(c) == 0) {
		int rc = elicit_confirm(c, action, res, yes);

		if (rc == RPC_OK || rc == RPC_CANCELLED)
			return rc;
		if (rc == RPC_INTERNAL_ERROR) {		/* no answer in time, or no database */
			tool_fail(res, "Not done: %s.", c->error);
			c->error[0] = '\0';
			return RPC_OK;
		}
		/* A client that declared elicitation but cannot show this form
		 * answers with an error: fall back to the argument. */
		log_info("elicitation refused by the client (%s); using the confirm argument",
		         c->error);
		c->error[0] = '\0';
	}
	if (json_object_object_get_ex(args, MCP_CONFIRM_ARG, &v) &&
	    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v)) {
		*yes = true;
		return RPC_OK;
	}
	tool_fail(res, "This needs the user's confirmation: %s Ask the user; if they agree, call "
	          "again with \"" MCP_CONFIRM_ARG "\": true.", action);
	return RPC_OK;
}
