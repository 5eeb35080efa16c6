/*
 * fcgi.h - the FastCGI program: supervisor, workers, requests and routes.
 */
#ifndef KVMGATE_FCGI_H
#define KVMGATE_FCGI_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <regex.h>

#include "audit.h"
#include "buf.h"
#include "ctl.h"
#include "shm.h"
#include "tokens.h"
#include "util.h"

/* ---- devices.c (below): a device as a call names it ---------------------- */

#define DEVICE_NAME_MAX 100

struct device_ref {
	long long id;
	char name[DEVICE_NAME_MAX + 1];
	char kind[16];
	bool enabled;
	bool tagged;			/* carries the caller token's device_tag (or it has none) */
};

/* ---- request.c: one HTTP request and its response ---------------------- */

#define REQ_MAX_PARAMS 16
#define REQ_MAX_PATH_PARAMS 4

struct request {
	FCGX_Request *fcgx;
	const char *method;		/* as sent: "GET", "POST", ... */
	char *path;			/* percent-decoded, validated; NULL if unparsed */
	char *query;			/* raw query string, "" when none */
	struct { char *name, *value; } params[REQ_MAX_PARAMS];
	int nparams;
	char request_id[64];
	const char *remote_addr;
	char *body;			/* NUL-terminated, body_len bytes */
	size_t body_len;
	uint64_t start_ns;
	const struct route *route;	/* NULL until matched */
	struct { const char *name; char *value; } path_params[REQ_MAX_PATH_PARAMS];
	int npath_params;		/* {name} parts of the route's path */
	struct token_identity who;	/* set for ROUTE_AUTH routes */
	char csrf[48];			/* the CSRF token of a dashboard session, "" otherwise */
	struct device_ref device;	/* set for ROUTE_DEVICE routes */
	struct {			/* the MCP tool called, for the request's log line */
		char name[64];
		char session[9];	/* the first characters of the MCP session id */
		const char *result;	/* "ok", "tool error", ...; NULL when no tool ran */
		bool failed;		/* a protocol error: the line is a warning */
	} tool;
	/* response */
	int status;
	bool sent;
	bool hold;			/* resp_body() keeps the response for resp_release() */
	bool held;			/* a response is being kept */
	struct buf held_body;
	char held_type[64];
	char error[200];		/* "code: message" of the last resp_error() */
	bool streaming;			/* resp_stream_begin() sent the head */
	bool stream_broken;		/* a write to the client failed */
	struct buf headers;		/* extra header lines, CRLF-terminated */
};

/*
 * Reads the CGI parameters of an accepted FastCGI request and validates the
 * URL (400 on malformed percent-encoding, control bytes, too many or
 * duplicate query parameters). Returns 0, or the HTTP status to answer.
 */
int request_init(struct request *req, FCGX_Request *fcgx);

/*
 * Splits and decodes a raw request URI into req->path, req->query and
 * req->params. Returns 0, or 400/414 with the reason in err; what it
 * allocated is released by request_cleanup either way.
 */
int request_parse_uri(struct request *req, const char *uri, char *err, size_t errlen);

/* Reads the body, refusing more than KVMGATE_MAX_BODY. Returns 0 or a status. */
int request_read_body(struct request *req);

/* A request header by CGI name ("HTTP_AUTHORIZATION"), or NULL. */
const char *request_header(const struct request *req, const char *cgi_name);

/* A query parameter by name, or NULL. */
const char *request_param(const struct request *req, const char *name);

/* The value of the route's {name} path part, or NULL. */
const char *request_path_param(const struct request *req, const char *name);

/* Releases everything request_init and the handlers allocated. */
void request_cleanup(struct request *req);

/* Adds a response header line; name and value must not contain CR or LF. */
void resp_header(struct request *req, const char *name, const char *value);

/*
 * Starts a 200 response whose body is written piece by piece (an event
 * stream): the head goes out at once with the headers added so far, no
 * Content-Length, Cache-Control: no-cache and X-Accel-Buffering: no.
 */
void resp_stream_begin(struct request *req, const char *content_type);

/*
 * Writes and flushes one piece of a streamed body. Returns 0, or -1 once
 * the client is gone (later writes are skipped).
 */
int resp_stream_write(struct request *req, const char *data, size_t len);

/*
 * Sends the response kept while req->hold was set (an audited read is
 * answered only once its event is recorded). Does nothing when none is kept.
 */
void resp_release(struct request *req);

/* Drops the kept response and the headers added so far, so another can be sent. */
void resp_discard(struct request *req);

/* Sends a JSON body; takes ownership of body. */
void resp_json(struct request *req, int status, json_object *body);

/* Sends {"error":{"code":code,"message":...}}. */
void resp_error(struct request *req, int status, const char *code, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

/* Sends a body of the given content type; NULL content_type: no body, no type. */
void resp_body(struct request *req, int status, const char *content_type,
               const char *body, size_t len);

/* ---- authz.c: the one authorisation step --------------------------------- */

/*
 * What a route or a tool does, as the role matrix names it. Each action
 * needs a token scope and one of the roles its row allows (authz.c).
 */
enum authz_action {
	AUTHZ_UNSET,		/* a row that names no action: always denied */
	AUTHZ_SESSION,		/* the caller's own identity; MCP session methods */
	AUTHZ_SERVER_READ,	/* facts about the gateway */
	AUTHZ_DEVICES_READ,	/* the device list and a device's settings */
	AUTHZ_DEVICES_WRITE,	/* add, change, remove devices and their credentials */
	AUTHZ_DEVICES_HEALTH,	/* a device's session and state (opens the session) */
	AUTHZ_CONSOLE_READ,	/* screens: screenshots, OCR, waiting for text */
	AUTHZ_INPUT_WRITE,	/* keyboard and mouse */
	AUTHZ_POWER_WRITE,	/* power actions, HDMI reset */
	AUTHZ_POWER_READ,	/* power state */
	AUTHZ_MEDIA_WRITE,	/* virtual media */
	AUTHZ_MEDIA_READ,	/* stored images, what is mounted */
	AUTHZ_AUDIT_READ,	/* the audit log, its head and its integrity */
	AUTHZ_TOKENS_READ_OWN,	/* list one's own tokens */
	AUTHZ_TOKENS_MANAGE_OWN,	/* create and revoke one's own tokens */
	AUTHZ_TOKENS_MANAGE_ALL,	/* list, create and revoke anyone's tokens in the organisation */
	AUTHZ_USERS_MANAGE,	/* members of the organisation and their roles */
	AUTHZ_ORGS_MANAGE,	/* the organisation itself */
	AUTHZ__COUNT
};

enum authz_role { ROLE_ORG_ADMIN, ROLE_OPERATOR, ROLE_VIEWER, ROLE_AUDITOR, ROLE__COUNT };

enum authz_scope { AUTHZ_SCOPE_NONE, AUTHZ_SCOPE_READ, AUTHZ_SCOPE_WRITE };

/* One row of the role matrix. */
struct authz_rule {
	const char *name;		/* "devices.read" */
	enum authz_scope scope;		/* the token scope it needs */
	unsigned roles;			/* 1 << enum authz_role for each role allowed */
	const char *what;		/* for people: the README and denials */
};

/* The row of action a; NULL for AUTHZ_UNSET and values out of range. */
const struct authz_rule *authz_rule(enum authz_action a);

/* The role called name, or -1 when none is. */
int authz_role_parse(const char *name);

/* The name of role r ("org_admin", ...). */
const char *authz_role_name(enum authz_role r);

/*
 * Whether who may do a, as far as role and token scope tell (no device):
 * what tools/list, resources/list and prompts/list show.
 */
bool authz_allowed(const struct token_identity *who, enum authz_action a);

/*
 * The one authorisation step: whether who may do a, on device dev when the
 * call involves one (NULL otherwise). Returns 0 when allowed, or -1 with a
 * sentence in why naming what is missing (the role, the scope, or the
 * token's device tag). dev is borrowed.
 */
int authz_check(const struct token_identity *who, enum authz_action a,
                const struct device_ref *dev, char *why, size_t len) MUSTCHECK;

/* ---- audited.c: the audit events of one call ----------------------------- */

struct mcp_call;

/*
 * The record of one call of a tool or a REST route: a read writes one event
 * with its outcome after it ran; a write first commits a pending event and
 * does not act unless that succeeded, then writes its outcome. Lives on the
 * caller's stack; audited_begin() and audited_end() (or a failed
 * audited_intent()) bracket it.
 */
struct audited {
	struct audit_event ev;
	json_object *args;		/* owned: what the call was given */
	uint64_t start_ns;
	char action[160];
	char client_name[201];
	char ip[64];
	char device[DEVICE_NAME_MAX + 1];
	char reason[256];
};

/*
 * Starts the record of action (a tool name, or "METHOD /path" of a route)
 * called by req->who, through MCP call c, or REST when c is NULL. Takes args
 * (an object or NULL); secrets in it are redacted before anything is stored.
 */
void audited_begin(struct audited *a, struct request *req, const struct mcp_call *c,
                   const char *action, json_object *args);

/* Names the device the call is about. */
void audited_device(struct audited *a, const struct device_ref *d);

/*
 * Commits the pending event of a write before it acts. Returns 0, or -1 when
 * it could not be written: the call must then not act, and the record is
 * finished (no audited_end).
 */
int audited_intent(struct audited *a) MUSTCHECK;

/*
 * Writes the outcome (reason: why denied or failed, or NULL) with the
 * latency, and finishes the record. Returns 0, or -1 when the event could
 * not be written: a read must then withhold its answer.
 */
int audited_end(struct audited *a, enum audit_outcome outcome, const char *reason) MUSTCHECK;

/* The sentence a call gets when its audit event could not be written. */
#define AUDIT_NOT_DONE "Not done: the audit log could not be written; nothing was read or " \
	"changed. Try again shortly."

struct mcp_call;

/*
 * Finishes the record of an MCP read that is not a tool call (resources/read,
 * prompts/get) whose handler returned rc: the device in c->device if one was
 * found, ok or the error in c->error. Returns rc, or an error for the call
 * when the event could not be written (the read then gives nothing).
 */
int audited_read(struct audited *a, struct mcp_call *c, int rc) MUSTCHECK;

/* ---- route.c: the route table and the one authorisation step ----------- */

enum route_flags {
	ROUTE_AUTH = 1 << 0,	/* a bearer token (or a session, below) required;
				 * action checked (authz.c) */
	ROUTE_ORIGIN = 1 << 1,	/* Host and Origin must be allowed (origin.c) */
	ROUTE_DEVICE = 1 << 2,	/* {id} names a device of the caller's organisation */
	ROUTE_AUDIT = 1 << 3,	/* every call writes an audit event (audited.c) */
	ROUTE_COOKIE = 1 << 4,	/* a dashboard session cookie is accepted too (websession.c) */
	ROUTE_COOKIE_ONLY = 1 << 5,	/* only the dashboard session cookie: the session routes */
	ROUTE_OP = 1 << 6,	/* a POST that acts (200 with what was done), not one that creates */
	ROUTE_IMAGE = 1 << 7,	/* answers image/jpeg or image/png */
};

/*
 * A route: method and path, where a {name} part of the path matches one
 * segment of 1 to 128 characters (request_path_param() reads it).
 */
struct route {
	const char *method;
	const char *path;
	int (*handler)(struct request *req);	/* returns 0 once it has responded */
	unsigned flags;
	const char *const *params;		/* allowed query parameters, NULL-terminated */
	enum authz_action action;		/* what the route does (ROUTE_AUTH routes) */
	const char *summary;			/* one line for people and the API document */
	const struct field *body;		/* the JSON body's fields, or NULL */
};

/* Routes, validates and answers one request. */
void route_dispatch(struct request *req);

/* The route table, in order; NULL past its end. */
const struct route *route_at(int i);

/* Number of routes, and the name metrics use for route i (i == count: "other"). */
int route_count(void);
const char *route_name(int i);
int route_index(const struct route *r);

/* ---- origin.c: Host and Origin allow-lists ------------------------------ */

/*
 * Whether a Host header value ("name", "name:port", "[v6]:port") is in the
 * comma list hosts; an entry without a port matches any port.
 */
bool origin_host_allowed(const char *host, const char *hosts);

/*
 * Whether an Origin header value is allowed: listed in origins, or an http(s)
 * origin whose host[:port] origin_host_allowed() accepts. "null" never is.
 */
bool origin_allowed(const char *origin, const char *hosts, const char *origins);

/*
 * Checks HTTP_HOST against KVMGATE_ALLOWED_HOSTS (421 otherwise) and
 * HTTP_ORIGIN, when present, against the allowed origins (403 otherwise).
 * Returns 0, or -1 after answering.
 */
int origin_check(struct request *req);

/* ---- websession.c: dashboard sessions held by a cookie -------------------- */

#define WEB_COOKIE "kvmgate_session"
#define WEB_CSRF_HEADER "X-CSRF-Token"

/* Whether req carries a session cookie (well-formed or not). */
bool websession_presented(const struct request *req);

/*
 * Authenticates req by its session cookie into req->who and req->csrf,
 * after the Host and Origin checks of origin.c. Returns 0, or -1 after
 * answering 401 (and clearing the cookie), 421, 403 or 503.
 */
int websession_authenticate(struct request *req);

/*
 * The CSRF step of a cookie-authenticated request: a method that can change
 * something (anything but GET and HEAD) must carry the session's CSRF token
 * in X-CSRF-Token. Returns 0, or -1 after answering 403 csrf.
 */
int websession_csrf_check(struct request *req);

/*
 * Starts a session of req->who's user in req->who's organisation: stores
 * the hash of a new random cookie, sets the cookie on the response, and
 * fills req->who.session_id, req->csrf and expires (UTC, RFC 3339).
 * Returns 0, or -1 on a database error.
 */
int websession_create(struct request *req, char expires[40]) MUSTCHECK;

/* Ends session id (a sign-in whose audit event could not be written). */
void websession_end(long long id);

/*
 * What the session routes answer: {"user","organisation","role",
 * "csrf_token","expires_at","idle_timeout_s"} of req's session (expires:
 * NULL when unknown). The caller owns it.
 */
json_object *websession_json(const struct request *req, const char *expires);

/* Adds the header that makes the browser forget the session cookie. */
void websession_forget(struct request *req);

/* GET and DELETE /api/v1/session: who is signed in; sign out. */
int h_session_get(struct request *req);
int h_session_delete(struct request *req);

/* ---- handlers ------------------------------------------------------------ */

int h_healthz(struct request *req);
/* GET /api/v1/openapi.json (openapi.c): the API document, made from the route table. */
int h_openapi(struct request *req);
json_object *openapi_document(void);
int h_metrics(struct request *req);
int h_me(struct request *req);
/* /mcp (mcp.c): POST carries one JSON-RPC message, GET answers 405, DELETE ends a session. */
int h_mcp_post(struct request *req);
int h_mcp_get(struct request *req);
int h_mcp_delete(struct request *req);

/* ---- mcp.c: the MCP endpoint (Streamable HTTP, JSON responses) ----------- */

/* JSON-RPC error codes: what an MCP method or tool handler returns besides 0. */
enum rpc_code {
	RPC_OK = 0,
	RPC_CANCELLED = 1,		/* not sent: the call was cancelled, no response */
	RPC_PARSE_ERROR = -32700,	/* invalid JSON */
	RPC_INVALID_REQUEST = -32600,	/* not JSON-RPC 2.0, batch, re-initialize */
	RPC_METHOD_NOT_FOUND = -32601,
	RPC_INVALID_PARAMS = -32602,	/* bad params, unknown tool, bad cursor */
	RPC_INTERNAL_ERROR = -32603,
	RPC_BAD_REQUEST = -32000,	/* transport: no session header, bad version */
	RPC_SESSION_NOT_FOUND = -32001,	/* unknown, ended or expired session */
	RPC_RESOURCE_NOT_FOUND = -32002,
};

#define MCP_SESSION_ID_LEN 32		/* lowercase hex of 16 random bytes */
#define MCP_ID_MAX 256			/* longest request id accepted, as JSON text */

/* The session a request belongs to, as read from mcp_sessions. */
struct mcp_session {
	char id[MCP_SESSION_ID_LEN + 1];
	char protocol_version[16];
	char log_level[12];		/* "" until the client sets one: all levels */
	bool elicit_form;		/* the client can answer form elicitation */
	bool sampling;			/* the client can answer sampling/createMessage */
	char client_name[201];		/* clientInfo of initialize, for the audit log */
	char client_version[201];
};

/* One JSON-RPC request being answered; lives on the handler's stack. */
struct mcp_call {
	struct request *req;		/* req->who is the caller */
	struct mcp_session session;	/* empty id during initialize */
	json_object *id;		/* the request's id; points into the message */
	char id_text[MCP_ID_MAX + 1];	/* id as JSON text: how other workers name it */
	json_object *progress_token;	/* NULL, or points into the message */
	double progress;		/* last progress value sent */
	bool can_stream;		/* the client accepts text/event-stream */
	bool streaming;			/* the response is an event stream (stream.c) */
	char error[256];		/* message of the error a handler returns */
	struct device_ref device;	/* the device of a tool with .device set */
};

/*
 * Records the message of a JSON-RPC error for c and returns code, so a
 * handler ends with `return mcp_fail(c, RPC_INVALID_PARAMS, "...")`.
 */
int mcp_fail(struct mcp_call *c, enum rpc_code code, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

/* ---- stream.c: a call answered as an event stream ------------------------ */

/*
 * Turns c's response into an event stream (when the client accepts one)
 * and makes the call reachable by notifications/cancelled. Returns 0, or -1
 * when the client does not accept a stream or the call could not be
 * registered; the call then runs without notifications.
 */
int mcp_stream_begin(struct mcp_call *c);

/*
 * The supervisor, before forking: maps the table of stream slots for that
 * many workers (a quarter of them, at least one, never stream).
 */
void mcp_streams_init(int workers);

/*
 * A REST call that holds its worker as long as a stream can (POST
 * .../screen/wait) takes a stream slot too, so that short calls always find
 * a worker. Returns true, or false when every slot is taken.
 */
bool stream_slot_take(void);
void stream_slot_give_back(void);

/* The supervisor, after a worker died: frees the stream slot it held. */
void mcp_streams_release(pid_t pid);

/* Sends msg (taken) as one event. Returns 0, or -1 when not streaming or the client left. */
int mcp_stream_send(struct mcp_call *c, json_object *msg);

/* Unregisters a streaming call; the response has been sent (or dropped). */
void mcp_stream_end(struct mcp_call *c);

/*
 * notifications/progress for the request's progressToken, if it has one and
 * the call streams; progress must grow (smaller values are not sent).
 * total <= 0 and message NULL are left out.
 */
void mcp_progress(struct mcp_call *c, double progress, double total, const char *message);

/* notifications/message at an RFC 5424 level name, if the session's level lets it through. */
void mcp_log(struct mcp_call *c, const char *level, const char *fmt, ...) PRINTF_LIKE(3, 4);

/*
 * Waits ms milliseconds, or less if the call is cancelled meanwhile.
 * Returns RPC_OK, or RPC_CANCELLED: the handler then returns it at once.
 */
int mcp_sleep(struct mcp_call *c, int ms);

/*
 * Sends a request (elicitation/create, sampling/createMessage) to the
 * client on the call's stream and waits up to timeout_ms for the answer,
 * which arrives as a separate POST. Takes params. Returns RPC_OK with
 * *result (the caller owns it), the client's error code with its message
 * in c->error, RPC_CANCELLED, or RPC_INTERNAL_ERROR (no stream, timeout).
 */
int mcp_client_request(struct mcp_call *c, const char *method, json_object *params,
                       int timeout_ms, json_object **result);

/* The name of the boolean argument a destructive tool takes for mcp_confirm(). */
#define MCP_CONFIRM_ARG "confirm"

/* ---- inflight.c: exchanges of a streaming call other workers reach -------- */

enum inflight_event { INFLIGHT_NONE, INFLIGHT_ANSWER, INFLIGHT_CANCELLED, INFLIGHT_ERROR };

/* Registers a running call (rpc id as JSON text) and listens for its news. 0 or -1. */
int inflight_open(const char *session, const char *call_id) MUSTCHECK;

/* Unregisters it and stops listening. */
void inflight_close(const char *session, const char *call_id);

/* Registers / drops a request sent to the client whose answer the call awaits. */
int inflight_expect(const char *session, const char *request_id) MUSTCHECK;
void inflight_forget(const char *session, const char *request_id);

/*
 * Waits up to timeout_ms for the call to be cancelled (or its session to
 * end) or, when request_id is not NULL, for that request's answer (*answer,
 * the whole JSON-RPC response; the caller owns it). Returns what happened;
 * INFLIGHT_NONE when the time ran out.
 */
enum inflight_event inflight_wait(const char *session, const char *call_id,
                                  const char *request_id, int timeout_ms,
                                  json_object **answer);

/*
 * From the worker that received the message: marks the call cancelled, or
 * stores the answer (JSON text of the response), and wakes the waiter.
 * Returns 1 when such a call or request was waiting, 0 when none, -1 on a
 * database error.
 */
int inflight_cancel(const char *session, const char *call_id);
int inflight_answer(const char *session, const char *request_id, const char *message);

/* ---- tools.c: the tool table, argument checks, tools/list and tools/call - */

/*
 * What a tool returns: content blocks, optional structured content and the
 * isError flag. Owned by tools.c's call machinery; handlers fill it only
 * through tool_text(), tool_fail() and tool_structured().
 */
struct tool_result {
	json_object *content;		/* array of content blocks */
	json_object *structured;	/* NULL or an object */
	bool is_error;
};

/*
 * A tool handler: args have passed the input schema. Returns 0 once res is
 * filled (a failure the model can fix or retry is a tool_fail() result), or
 * an rpc_code from mcp_fail() for a protocol or server fault.
 */
typedef int tool_fn(struct mcp_call *c, json_object *args, struct tool_result *res);

struct tool {
	const char *name;		/* [A-Za-z0-9_.-]{1,128}, unique */
	const char *title;
	const char *description;
	const char *input_schema;	/* JSON text, parsed once per process */
	const char *output_schema;	/* JSON text or NULL */
	struct {
		bool read_only, destructive, idempotent, open_world;
	} hints;
	enum authz_action action;	/* callers it denies neither see nor call it */
	bool streams;			/* answers as an event stream when the client
					 * accepts one: it logs, asks the client or is
					 * long enough to cancel */
	bool device;			/* its required argument "device" (name or id)
					 * is found, authorised for the token and named
					 * in the audit event before fn runs: c->device */
	tool_fn *fn;
};

/*
 * Adds a table of n more tools after the built-in ones. Only the test build
 * of the FastCGI program calls it (fixtures.c, for the conformance suite).
 */
void tools_register(const struct tool *rows, int n);

/* The tool table, in the order tools/list returns it. */
int tool_count(void);
const struct tool *tool_at(int i);

/* The parsed input (or output, NULL when none) schema of tool i; owned by tools.c. */
json_object *tool_input_schema(int i);
json_object *tool_output_schema(int i);

/*
 * Whether schema uses only what tool_check_args() understands: an object
 * with properties of type string, integer, number, boolean, array (with
 * items, minItems, maxItems) or object (with its own properties, required,
 * additionalProperties), or a list of those types; enum, minimum, maximum,
 * minLength, maxLength; arrays and objects nested at most two deep.
 * Returns true, or false with the first problem in why.
 */
bool tool_schema_supported(json_object *schema, char *why, size_t len);

/*
 * Checks args (an object) against an input schema of the supported subset.
 * Returns 0, or -1 with a sentence naming the bad argument in why.
 */
int tool_check_args(json_object *schema, json_object *args, char *why, size_t len) MUSTCHECK;

/* MCP methods tools/list and tools/call: 0 with *result set (owned by the caller), or an rpc_code. */
int mcp_tools_list(struct mcp_call *c, json_object *params, json_object **result);
int mcp_tools_call(struct mcp_call *c, json_object *params, json_object **result);

/* Appends a text block to res. */
void tool_text(struct tool_result *res, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Appends a text block saying what went wrong and how to fix it; marks res as an error. */
void tool_fail(struct tool_result *res, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Sets res's structured content, taking ownership of o, and adds it as a JSON text block. */
void tool_structured(struct tool_result *res, json_object *o);

/* Appends a content block (image, audio, resource, ...) to res, taking it. */
void tool_content(struct tool_result *res, json_object *block);

/*
 * The confirmation a destructive tool asks for before acting, described by
 * the sentence action ("Power off srv-01?"). When the session's client can
 * show a form, the user is asked through elicitation on the call's stream
 * (the MCP_CONFIRM_ARG argument is then ignored: the model cannot answer
 * for the user); otherwise the tool must have been called with
 * MCP_CONFIRM_ARG true. Returns RPC_OK with *yes telling whether to act;
 * when not, res already says why and what to do. RPC_CANCELLED when the
 * call was cancelled while asking.
 */
int mcp_confirm(struct mcp_call *c, json_object *args, const char *action,
                struct tool_result *res, bool *yes);

/* ---- image.c: decode, crop, scale, enhance, encode screenshots ----------- */

#define IMG_SIDE_MAX 16384		/* widest and tallest picture accepted */
#define IMG_LLM_EDGE 1568.0		/* mcp.md section 7: longest edge a model sees */
#define IMG_LLM_PIXELS (1.15 * 1024 * 1024)	/* and its pixel budget */
#define IMG_ENHANCE_GAIN_MAX 1.3	/* enhance=llm never brightens more than this */
#define IMG_PNG_LEVEL 1			/* zlib level: fastest; consoles compress well anyway */

/* An 8-bit RGB picture, rows packed; px is owned (img_free). */
struct img {
	int w, h;
	unsigned char *px;
};

void img_free(struct img *im);

/* The size of a JPEG from its header: 0, or -1 when it is not one this code reads. */
int img_jpeg_size(const void *data, size_t len, int *w, int *h) MUSTCHECK;

/*
 * Decodes a JPEG into *out, scaled in the DCT by the smallest of 1/8, 1/4,
 * 1/2 and 1 that is at least min_scale (1: full size).
 * Returns 0, or -1 with the reason in why.
 */
int img_from_jpeg(const void *data, size_t len, double min_scale, struct img *out, char *why,
                  size_t wlen) MUSTCHECK;

/* Converts a raw 4-byte-per-pixel frame (RGBx, or BGRx when bgr). 0, or -1 with why. */
int img_from_raw(const void *data, size_t len, int w, int h, bool bgr, struct img *out,
                 char *why, size_t wlen) MUSTCHECK;

/* Keeps the w x h rectangle at x, y. Returns 0, or -1 when it is not inside the picture. */
int img_crop(struct img *im, int x, int y, int w, int h) MUSTCHECK;

/*
 * Shrinks the picture to w x h by area averaging. Does nothing when that
 * would enlarge either side or the size is the same.
 */
void img_scale(struct img *im, int w, int h);

/*
 * The sw x sh rectangle at sx, sy shrunk to w x h in one pass (no copy of
 * the rectangle first). Returns 0, or -1 when the rectangle is not inside
 * the picture or w x h would enlarge it.
 */
int img_scale_rect(struct img *im, int sx, int sy, int sw, int sh, int w, int h) MUSTCHECK;

/*
 * The mcp.md section 7 factor for a w x h picture: min(1568/w, 1568/h,
 * sqrt(1.15 MP / (w*h))) when below 1, else 1.
 */
double img_llm_scale(int w, int h);

/*
 * enhance=llm: a bounded levels stretch shared by the channels (increasing,
 * so the order of values is kept and grey stays below white) and a mild
 * unsharp mask; image.c says exactly what.
 */
void img_enhance(struct img *im);

/* Encodes as JPEG at quality (1-100), or as PNG (RGB, 8 bits), replacing out. 0 or -1. */
int img_to_jpeg(const struct img *im, int quality, struct buf *out) MUSTCHECK;
int img_to_png(const struct img *im, struct buf *out) MUSTCHECK;

/* ---- ocr.c: the text of a picture (Tesseract), one engine per worker ------ */

#define OCR_LANG_MAX 64			/* "eng+deu+fra": languages joined with '+' */
#define OCR_TEXT_MAX 8000		/* bytes of text a result carries (mcp.md section 7) */

/* A grey picture as Tesseract is given it; px is owned (ocr_grey_free). */
struct ocr_grey {
	int w, h;
	unsigned char *px;
	int scale;			/* how much it was enlarged */
	bool inverted;			/* light text on a dark ground, turned around */
};

void ocr_grey_free(struct ocr_grey *g);

/*
 * The whole factor (3, 2 or 1) a w x h picture is enlarged by before OCR:
 * the largest that keeps the result within about 8 megapixels.
 */
int ocr_upscale_factor(int w, int h);

/*
 * im made ready for OCR into *out (the caller frees it): grey (Rec. 601
 * luma), inverted when its mean is dark, enlarged by ocr_upscale_factor().
 */
void ocr_prepare(const struct img *im, struct ocr_grey *out);

/* Appends the installed languages, by name, comma-separated, to out. */
void ocr_languages(struct buf *out);

/*
 * Whether lang (one language code or several joined with '+') is installed.
 * Returns 0, or -1 with a sentence in why listing those that are.
 */
int ocr_language_check(const char *lang, char *why, size_t len) MUSTCHECK;

/*
 * Tidies OCR text in place: trailing blanks off every line, empty lines
 * dropped; cut after the last whole line that fits in max bytes
 * (*truncated then true). *lines: lines kept. Returns the new length.
 */
size_t ocr_tidy(char *text, size_t max, int *lines, bool *truncated);

/* What ocr_read() found. */
struct ocr_result {
	char *text;			/* UTF-8, lines kept, tidied, owned (ocr_result_free) */
	int lines;			/* lines with text */
	bool truncated;			/* cut at OCR_TEXT_MAX bytes */
	int confidence;			/* Tesseract's mean word confidence, 0-100 */
	int scale;			/* how much the picture was enlarged */
	bool inverted;			/* read as light text on a dark ground */
	uint64_t init_ms;		/* the engine was loaded for this call: how long it took */
	uint64_t ocr_ms;		/* preparing and reading */
};

/*
 * Reads the text of im in languages lang (checked by ocr_language_check()),
 * loading this process's engine first when it has other languages or none.
 * Returns 0 with *out filled, or -1 with a sentence in why.
 */
int ocr_read(const struct img *im, const char *lang, struct ocr_result *out, char *why,
             size_t len) MUSTCHECK;

void ocr_result_free(struct ocr_result *r);

/* ---- screenshot.c: a device's screen as the caller asked for it ---------- */

enum shot_format { SHOT_JPEG, SHOT_PNG };

/* What get_screenshot and GET .../screenshot may ask for; shot_opts_init() sets defaults. */
struct shot_opts {
	long long max_age_ms;
	enum shot_format format;
	int max_width;			/* 0: none */
	bool region;			/* crop to rx, ry, rw, rh (screen pixels) */
	int rx, ry, rw, rh;
	bool enhance;			/* enhance=llm */
};

/* A screenshot: the encoded picture and what it shows. */
struct shot {
	struct buf data;		/* JPEG or PNG bytes; buf_free() it */
	const char *mime;		/* "image/jpeg" or "image/png" */
	int width, height;		/* of the picture sent */
	int screen_width, screen_height;	/* of the device's screen */
	bool passthrough;		/* the device's own JPEG, not re-encoded */
	uint64_t seq, capture_ns, age_ms;
};

/* Why no screenshot; each maps to a tool error and an HTTP status. */
enum shot_status {
	SHOT_OK,
	SHOT_BAD_REQUEST,		/* the options do not fit the screen (400) */
	SHOT_NO_DEVICE,			/* disabled or removed (404) */
	SHOT_UNAVAILABLE,		/* capture worker or frame store unreachable (503) */
	SHOT_AUTH,			/* the device refused its credentials (502) */
	SHOT_UNSUPPORTED,		/* no screenshots for this device kind (501) */
	SHOT_DEVICE,			/* no frame in time, or a frame that cannot be used (504) */
};

void shot_opts_init(struct shot_opts *o);

/*
 * Parses "x,y,width,height" (REST's region parameter) into o. Returns 0, or
 * -1 with a sentence in why.
 */
int shot_parse_region(const char *s, struct shot_opts *o, char *why, size_t len) MUSTCHECK;

/*
 * The screen of device d as o asks: the latest frame if at most max_age_ms
 * old, else the next one within 10 s; the device's JPEG as it is when
 * nothing is asked, otherwise cropped, scaled (max_width, or mcp.md
 * section 7's rule when neither max_width nor a region is given), enhanced
 * and encoded, never above about 3.75 MB. Returns SHOT_OK with *out filled
 * (the caller frees out->data), or why not with a sentence for a person in why.
 */
enum shot_status shot_take(const struct device_ref *d, const struct shot_opts *o,
                           struct shot *out, char *why, size_t len) MUSTCHECK;

/* A frame of a device as the capture worker published it: JPEG or raw pixels. */
struct shot_frame {
	struct shm_frame_info info;
	struct buf data;		/* the frame's bytes; buf_free() it */
};

/*
 * The latest frame of device d into *f if at most max_age_ms old, else the
 * next one within 10 s (what shot_take() starts with). Returns SHOT_OK, or
 * why not with a sentence in why.
 */
enum shot_status shot_frame_get(const struct device_ref *d, long long max_age_ms,
                                struct shot_frame *f, char *why, size_t len) MUSTCHECK;

/*
 * Waits up to timeout_ms on the device's slot for a frame newer than
 * after_seq (never asking the device itself). Returns 1 with *f replaced,
 * 0 when none came in time, -1 with *st and why when the session failed.
 */
int shot_frame_next(const struct device_ref *d, uint64_t after_seq, int timeout_ms,
                    struct shot_frame *f, enum shot_status *st, char *why, size_t len) MUSTCHECK;

/*
 * Frame f decoded into *out (the caller frees it): o's region when it has
 * one (checked against the screen: SHOT_BAD_REQUEST), scaled by scale (at
 * most 1; a JPEG is decoded already shrunk when scale allows). *screen_w and
 * *screen_h: the screen's size. Returns SHOT_OK, or why not with why.
 */
enum shot_status shot_decode(const struct device_ref *d, const struct shot_frame *f,
                             const struct shot_opts *o, double scale, struct img *out,
                             int *screen_w, int *screen_h, char *why, size_t len) MUSTCHECK;

/*
 * The current screen size of device d as its latest frame in shared memory
 * says, without waiting: 0 with *w and *h, or -1 when no frame is there.
 */
int shot_screen_size(const struct device_ref *d, int *w, int *h);

/* ---- screentext.c: the text on a screen, and waiting for the screen ------ */

#define SCREEN_PATTERN_MAX 200		/* bytes of text (or regular expression) to wait for */
#define SCREEN_LANGUAGE_DEFAULT "eng"
#define SCREEN_WAIT_DEFAULT_MS 30000
#define SCREEN_WAIT_MAX_MS 600000	/* wait_for_screen; REST stops below nginx's read timeout */
#define SCREEN_WAIT_REST_MAX_MS 240000
#define SCREEN_INTERVAL_DEFAULT_MS 500
#define SCREEN_CHANGE_DEFAULT 0.01	/* percent of the watched area, about a short word on 1080p */

/*
 * What wait_for_screen looks for in the text: a substring, ignoring case
 * (ASCII) and differences of white space, or a POSIX extended regular
 * expression; either is matched against one line at a time.
 */
struct screen_pattern {
	bool regex, match_case;
	char *text;			/* substring: folded as the lines will be */
	regex_t re;
	bool compiled;
};

/*
 * Prepares p for text (one line, at most SCREEN_PATTERN_MAX bytes). Returns
 * 0, or -1 with a sentence in why (an invalid regular expression says
 * what is wrong). screen_pattern_cleanup() releases it either way.
 */
int screen_pattern_init(struct screen_pattern *p, const char *text, bool regex, bool match_case,
                        char *why, size_t len) MUSTCHECK;
void screen_pattern_cleanup(struct screen_pattern *p);

/* Whether a line of text matches p; the first that does is copied into line. */
bool screen_pattern_find(const struct screen_pattern *p, const char *text, char *line,
                         size_t size);

/*
 * How much of a differs from b (two pictures of the same size; any other
 * size differs wholly): the percent of pixels whose grey level moved by more
 * than an eighth of the range, their count in *changed.
 */
double screen_diff(const struct img *a, const struct img *b, long long *changed);

/* What read_screen_text and wait_for_screen read: screen_opts_init() sets defaults. */
struct screen_opts {
	struct shot_opts shot;		/* max_age_ms and region; nothing else is used */
	char language[OCR_LANG_MAX + 1];
};

void screen_opts_init(struct screen_opts *o);

/* The text of a screen and the frame it was read from. */
struct screen_text {
	struct ocr_result ocr;
	int screen_w, screen_h;
	uint64_t seq, capture_ns, age_ms;
};

/*
 * Reads the text of device d's screen (o's region of it) from its latest
 * frame if at most o->shot.max_age_ms old, else from the next one. Returns
 * SHOT_OK with *out filled (screen_text_cleanup() it), or why not with why:
 * SHOT_BAD_REQUEST for a language not installed or a region off the screen.
 */
enum shot_status screen_read(const struct device_ref *d, const struct screen_opts *o,
                             struct screen_text *out, char *why, size_t len) MUSTCHECK;
void screen_text_cleanup(struct screen_text *t);

/* A reading as REST answers it and read_screen_text's structured content; the caller owns it. */
json_object *screen_text_json(const struct device_ref *d, const struct screen_opts *o,
                              const struct screen_text *t);

/* A wait: for pattern's text, or (pattern NULL) for a change of change_percent or more. */
struct screen_wait {
	struct screen_opts read;
	const struct screen_pattern *pattern;
	double change_percent;
	int timeout_ms, interval_ms;
	/* Waits ms, or less when the call is cancelled: 0 to go on, else stop. */
	int (*sleep)(void *ctx, int ms);
	/* Reports how long it has waited and what it saw last; NULL: nothing. */
	void (*progress)(void *ctx, uint64_t elapsed_ms, int timeout_ms, const char *message);
	void *ctx;
};

struct screen_wait_result {
	bool found;
	bool cancelled;			/* sleep() asked to stop */
	uint64_t elapsed_ms;
	char line[512];			/* the line that matched */
	double changed_percent;		/* change: the last measure */
	struct screen_text last;	/* the last frame looked at; its text when read */
	int frames, reads;		/* frames looked at, and read */
};

/*
 * Sets w's defaults and what it waits for: text (a pattern compiled into p,
 * which the caller cleans up) or change, exactly one of them. Returns 0, or
 * -1 with a sentence in why.
 */
int screen_wait_setup(struct screen_wait *w, struct screen_pattern *p, const char *text,
                      bool regex, bool match_case, bool change, char *why, size_t len) MUSTCHECK;

/*
 * Waits as w says on device d's screen: from the frame at the start, each
 * newer frame the slot publishes (no more than one per interval) is compared
 * with the start (change) or, when it differs from the last one read, read
 * and matched (text); until found, timeout_ms passed or sleep() asks to stop.
 * Returns SHOT_OK with *r filled (found or not: screen_wait_result_cleanup()
 * it), or why the screen could not be looked at.
 */
enum shot_status screen_wait(const struct device_ref *d, const struct screen_wait *w,
                             struct screen_wait_result *r, char *why, size_t len) MUSTCHECK;
void screen_wait_result_cleanup(struct screen_wait_result *r);

/* A wait's outcome as REST answers it and wait_for_screen's structured content. */
json_object *screen_wait_json(const struct device_ref *d, const struct screen_wait *w,
                              const struct screen_wait_result *r);

/* ---- devop.c: operations on a device through the capture worker ---------- */

#define DEVOP_TEXT_MAX 16384		/* characters type_text and POST .../text take */

/* How a device operation ended; each maps to a tool error and an HTTP status. */
enum devop_status {
	DEVOP_OK,
	DEVOP_INVALID,		/* the caller's input: change it and call again (400) */
	DEVOP_GONE,		/* the device was disabled or removed meanwhile (404) */
	DEVOP_CONFIG,		/* the device's settings are wrong (409) */
	DEVOP_UNSUPPORTED,	/* this device kind cannot do it (501) */
	DEVOP_OFFLINE,		/* the device cannot be reached (502) */
	DEVOP_AUTH,		/* the device refused its credentials (502) */
	DEVOP_DEVICE,		/* the device's own refusal or an unexpected answer (502) */
	DEVOP_UNAVAILABLE,	/* the capture worker cannot be reached (503) */
	DEVOP_TIMEOUT,		/* not done in time (504) */
	DEVOP_CANCELLED,	/* the MCP call was cancelled between two parts */
};

/* What an operation gave: a sentence, and the device's JSON result for reads. */
struct devop_out {
	enum devop_status status;
	json_object *result;		/* owned; NULL when the op returns nothing */
	uint32_t width, height;		/* the screen size the capture worker knows; 0: unknown */
	char why[640];			/* what was done, or why not and what to do */
};

/* Releases out->result; out may be reused. Start with a zeroed struct. */
void devop_out_cleanup(struct devop_out *out);

/*
 * Between two parts of a long operation (text in chunks): done of total.
 * Returns 0 to go on, anything else to stop (the call was cancelled).
 */
typedef int devop_progress_fn(void *ctx, double done, double total);

/*
 * The one way to act on a device: sends op (device_id and len are set here;
 * a zero timeout_ms takes the op's default) with data (a NUL-terminated
 * text) to the capture worker and waits for the device to have done it,
 * op->timeout_ms and a margin at most. Returns the status, with out->why a
 * sentence (offline, authentication, timeout, "kvmgate cannot X on a <kind>
 * device", or the device's own message) and out->result the JSON a read op
 * returns.
 */
enum devop_status devop_call(const struct device_ref *d, struct ctl_device_op *op,
                             const char *data, struct devop_out *out);

/*
 * What the MCP tools and the REST routes call: op kind with its arguments
 * as JSON, already checked against their declared types (keys: a string or
 * a list; text, layout; x, y, button, double, amount, direction; action;
 * image, as). Checks them against the device (coordinates within its
 * screen when a frame tells its size), splits long text and reports
 * progress, then devop_call(). out->why says what was done or why not.
 */
enum devop_status devop_run(const struct device_ref *d, uint32_t kind, json_object *args,
                            devop_progress_fn *progress, void *ctx, struct devop_out *out);

/*
 * A device's health: its session as the capture worker holds it (asking
 * opens it, as any demand does), the screen size of its latest frame, and
 * what the device says of itself when its driver can tell. *health is the
 * caller's. Returns DEVOP_OK, or why not with out->why.
 */
enum devop_status devop_health(const struct device_ref *d, json_object **health,
                               struct devop_out *out);

/* The HTTP status and error code of a status, for REST. */
int devop_http_status(enum devop_status st);
const char *devop_code(enum devop_status st);

/* ---- tools_console.c: screens ---------------------------------------------- */

tool_fn tool_get_screenshot;
tool_fn tool_read_screen_text;
tool_fn tool_wait_for_screen;

/* ---- tools_device.c: keyboard, mouse, power, media, health ---------------- */

tool_fn tool_get_device_health;
tool_fn tool_type_text;
tool_fn tool_send_keys;
tool_fn tool_mouse_move;
tool_fn tool_mouse_click;
tool_fn tool_mouse_scroll;
tool_fn tool_reset_hid;
tool_fn tool_power_action;
tool_fn tool_get_power_state;
tool_fn tool_hdmi_reset;
tool_fn tool_list_isos;
tool_fn tool_mount_iso;
tool_fn tool_unmount_iso;
tool_fn tool_get_mounted_iso;

/* ---- tools_server.c: tools about the gateway itself ---------------------- */

tool_fn tool_get_server_info;
tool_fn tool_list_devices;

/* ---- authcache.c: recent token and session lookups of this worker ------ */

/* Maps the epoch all workers share; the supervisor calls it before forking. */
void authcache_init(void);

/*
 * Makes every worker forget what it remembers (at its next request): call
 * after ending a session or changing a session or token the gateway may
 * have cached.
 */
void authcache_invalidate(void);

/* token_lookup(), answered from memory when the same token was seen recently. */
enum token_result authcache_token(const char *token, struct token_identity *out) MUSTCHECK;

/* A session of who's user and organisation seen recently into *out, or false. */
bool authcache_session_get(const char *id, const struct token_identity *who,
                           struct mcp_session *out);

/* Remembers a live session read from the database. */
void authcache_session_put(const struct token_identity *who, const struct mcp_session *s);

/* ---- body.c: request bodies checked against a table of fields ------------ */

/*
 * FIELD_TEXT: a string that may hold line breaks and tabs (typed text);
 * FIELD_KEYS: a string, or an array of min to max strings, each 1 to 64
 * characters without control characters. FIELD_NUMBER: an integer or a
 * fraction from min to max.
 */
enum field_type { FIELD_STRING, FIELD_INT, FIELD_BOOL, FIELD_TAGS, FIELD_ENUM, FIELD_TEXT,
                  FIELD_KEYS, FIELD_NUMBER };

struct field {
	const char *name;
	enum field_type type;
	long long min, max;		/* string: characters; int: value; tags: how many */
	const char *const *values;	/* FIELD_ENUM: allowed, NULL-terminated */
	bool required;			/* when creating */
	const char *description;	/* for the API document */
};

/*
 * Parses req's body as a JSON object of the fields (a table ending with a
 * NULL name); create: required fields must be there. Returns 0 with *out
 * (the caller owns it), or -1 after answering 400 naming the field.
 */
int body_parse(struct request *req, const struct field *fields, bool create,
               json_object **out) MUSTCHECK;

/* "a string", "an integer", ... for messages and the API document. */
const char *field_type_word(enum field_type t);

/* ---- api_devices.c: REST devices; credentials sealed, never shown --------- */

extern const struct field device_fields[];
int h_devices_list(struct request *req);
int h_device_create(struct request *req);
int h_device_get(struct request *req);
int h_device_update(struct request *req);
int h_device_delete(struct request *req);

/* ---- api_console.c: REST screenshot, keys, text, mouse, power, media, health */

extern const struct field keys_fields[];
extern const struct field text_fields[];
extern const struct field mouse_fields[];
extern const struct field power_fields[];
extern const struct field media_fields[];
extern const struct field screen_wait_fields[];
int h_device_screenshot(struct request *req);
int h_device_screen_text(struct request *req);
int h_device_screen_wait(struct request *req);
int h_device_keys(struct request *req);
int h_device_text(struct request *req);
int h_device_mouse(struct request *req);
int h_device_power_get(struct request *req);
int h_device_power(struct request *req);
int h_device_media_get(struct request *req);
int h_device_media_mount(struct request *req);
int h_device_media_unmount(struct request *req);
int h_device_health(struct request *req);
int h_device_hid_reset(struct request *req);
int h_device_hdmi_reset(struct request *req);

/* ---- api_tokens.c: REST API tokens; the clear token shown once ------------ */

extern const struct field token_fields[];
int h_tokens_list(struct request *req);
int h_token_create(struct request *req);
int h_token_get(struct request *req);
int h_token_delete(struct request *req);

/* ---- api_users.c: REST members of the organisation, and the organisation -- */

extern const struct field user_fields[];
extern const struct field user_patch_fields[];
int h_users_list(struct request *req);
int h_user_create(struct request *req);
int h_user_update(struct request *req);
int h_user_delete(struct request *req);
int h_org_get(struct request *req);

/* ---- signin.c: POST /api/v1/session ---------------------------------------- */

extern const struct field signin_fields[];
int h_session_create(struct request *req);

/* ---- audit_api.c: the audit log of the caller's organisation ------------- */

int h_audit_query(struct request *req);
int h_audit_head(struct request *req);
int h_audit_integrity(struct request *req);
int h_audit_export(struct request *req);
tool_fn tool_query_audit_log;
tool_fn tool_verify_audit_integrity;
tool_fn tool_get_audit_chain_head;

/* ---- devices.c: a device of the caller's organisation by id or name ------ */


/* Columns every device query selects, in device_row_json()'s order. */
#define DEVICE_COLUMNS \
	"id, name, kind, base_url, array_to_json(tags)::text, enabled, " \
	"cred_ciphertext IS NOT NULL, screen_width, screen_height, " \
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), keep_warm"

/*
 * One device (a row of DEVICE_COLUMNS) as REST and MCP show it, never with
 * its credentials: has_credentials says whether it has any. The caller owns it.
 */
json_object *device_row_json(const PGresult *r, int row);

/*
 * Finds the device ref names (its name, or its id in decimal) in who's
 * organisation. Returns 0 with *d filled, 1 when there is none (another
 * organisation's device included), -1 when the database is unavailable.
 */
int device_find(const struct token_identity *who, const char *ref, struct device_ref *d);

/*
 * Appends to values (an array) up to max names of who's devices starting
 * with prefix, ignoring case, in name order; *more tells whether there are
 * others. Returns 0 or -1 (database unavailable).
 */
int device_complete(const struct token_identity *who, const char *prefix, json_object *values,
                    int max, bool *more);

/* ---- resources.c: resources, resource templates, reading them ------------ */

/*
 * A resource, or a resource template when uri holds one {name} part (it
 * matches 1 to 128 characters of [A-Za-z0-9._-], handed to read as var).
 */
struct resource {
	const char *uri;
	const char *name;
	const char *title;
	const char *description;
	const char *mime_type;
	enum authz_action action;	/* callers it denies neither see nor read it */
	bool subscribable;		/* resources/subscribe accepts it */
	/* Completes the template's {name} part; NULL: no completion. */
	int (*complete)(struct mcp_call *c, const char *prefix, json_object *values, bool *more);
	/* Appends the contents of uri to contents; RPC_OK or an rpc_code via mcp_fail(). */
	int (*read)(struct mcp_call *c, const char *uri, const char *var, json_object *contents);
};

/* Adds a table of n more resources after the built-in ones (the test build's fixtures). */
void resources_register(const struct resource *rows, int n);

/* Whether any resource can be subscribed to (the initialize result says so). */
bool resources_subscribable(void);

/* A contents entry {uri, mimeType, text} or {uri, mimeType, blob: base64}; the caller owns it. */
json_object *resource_text(const char *uri, const char *mime_type, const char *text);
json_object *resource_blob(const char *uri, const char *mime_type, const void *data, size_t len);

/* MCP methods resources/list, resources/templates/list, resources/read, resources/(un)subscribe. */
int mcp_resources_list(struct mcp_call *c, json_object *params, json_object **result);
int mcp_resources_templates(struct mcp_call *c, json_object *params, json_object **result);
int mcp_resources_read(struct mcp_call *c, json_object *params, json_object **result);
int mcp_resources_subscribe(struct mcp_call *c, json_object *params, json_object **result);

/* The template whose {name} completion/complete asks for, by its uri; NULL if none. */
const struct resource *resource_template(const char *uri);

/* ---- prompts.c: prompts and argument completion -------------------------- */

#define PROMPT_ARGS_MAX 4

struct prompt_arg {
	const char *name;
	const char *description;
	bool required;
	bool device;			/* names a device: completed from the device list */
	const char *absent;		/* what the text says when an optional one is missing */
};

/*
 * A prompt: either text, a user message with {arg} parts replaced by the
 * arguments, or get, which appends messages itself.
 */
struct prompt {
	const char *name;
	const char *title;
	const char *description;
	struct prompt_arg args[PROMPT_ARGS_MAX];
	enum authz_action action;
	const char *text;
	int (*get)(struct mcp_call *c, json_object *args, json_object *messages);
};

/* Adds a table of n more prompts after the built-in ones (the test build's fixtures). */
void prompts_register(const struct prompt *rows, int n);

/* {"role": role, "content": content (taken)}; the caller owns it. */
json_object *prompt_message(const char *role, json_object *content);

/* MCP methods prompts/list, prompts/get and completion/complete. */
int mcp_prompts_list(struct mcp_call *c, json_object *params, json_object **result);
int mcp_prompts_get(struct mcp_call *c, json_object *params, json_object **result);
int mcp_complete(struct mcp_call *c, json_object *params, json_object **result);

/* ---- metrics.c: counters shared by all workers -------------------------- */

/* Maps the shared counters; the supervisor calls it before forking. */
void metrics_init(void);
void metrics_observe(int route, int status, uint64_t elapsed_ns);
void metrics_worker_restarted(void);
void metrics_set_workers(int n);
/* The audit appender's batches (events handed to it, whether the batch was
 * appended whole) and a worker's wait for its event's commit. */
void metrics_audit_batch(int events, bool appended, uint64_t elapsed_ns);
void metrics_audit_wait(uint64_t elapsed_ns);
/* A call that wanted a stream ran without one: every stream slot was taken. */
void metrics_stream_refused(void);

/* ---- appender.c: the process that writes every worker's audit events ----- */

/* The supervisor: binds KVMGATE_AUDIT_SOCKET before forking. Returns the fd or -1. */
int appender_listen(void);

/* The appender process's loop; never returns. */
void appender_run(int listen_fd) __attribute__((noreturn));

/*
 * audit_append() for workers: hands the event to the appender and waits
 * until it is committed. Returns the sequence number, or -1 (logged): the
 * caller must not act.
 */
long long audit_submit(const struct audit_event *ev) MUSTCHECK;

/* ---- worker.c ------------------------------------------------------------ */

/* The accept loop of one worker process; never returns. */
void worker_run(int listen_fd) __attribute__((noreturn));

#endif
