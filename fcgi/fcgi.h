/*
 * fcgi.h - the FastCGI program: supervisor, workers, requests and routes.
 */
#ifndef KVMGATE_FCGI_H
#define KVMGATE_FCGI_H

#include <fcgiapp.h>
#include <json-c/json.h>

#include "buf.h"
#include "tokens.h"
#include "util.h"

/* ---- request.c: one HTTP request and its response ---------------------- */

#define REQ_MAX_PARAMS 16

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
	struct token_identity who;	/* set for ROUTE_AUTH routes */
	/* response */
	int status;
	bool sent;
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

/* Releases everything request_init and the handlers allocated. */
void request_cleanup(struct request *req);

/* Adds a response header line; name and value must not contain CR or LF. */
void resp_header(struct request *req, const char *name, const char *value);

/* Sends a JSON body; takes ownership of body. */
void resp_json(struct request *req, int status, json_object *body);

/* Sends {"error":{"code":code,"message":...}}. */
void resp_error(struct request *req, int status, const char *code, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

/* Sends a body of the given content type; NULL content_type: no body, no type. */
void resp_body(struct request *req, int status, const char *content_type,
               const char *body, size_t len);

/* ---- route.c: the route table and the one authorisation step ----------- */

enum route_flags {
	ROUTE_AUTH = 1 << 0,	/* bearer token required */
	ROUTE_ORIGIN = 1 << 1,	/* Host and Origin must be allowed (origin.c) */
};

struct route {
	const char *method;
	const char *path;
	int (*handler)(struct request *req);	/* returns 0 once it has responded */
	unsigned flags;
	const char *const *params;		/* allowed query parameters, NULL-terminated */
};

/* Routes, validates and answers one request. */
void route_dispatch(struct request *req);

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

/* ---- handlers ------------------------------------------------------------ */

int h_healthz(struct request *req);
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
	RPC_PARSE_ERROR = -32700,	/* invalid JSON */
	RPC_INVALID_REQUEST = -32600,	/* not JSON-RPC 2.0, batch, re-initialize */
	RPC_METHOD_NOT_FOUND = -32601,
	RPC_INVALID_PARAMS = -32602,	/* bad params, unknown tool, bad cursor */
	RPC_INTERNAL_ERROR = -32603,
	RPC_BAD_REQUEST = -32000,	/* transport: no session header, bad version */
	RPC_SESSION_NOT_FOUND = -32001,	/* unknown, ended or expired session */
};

#define MCP_SESSION_ID_LEN 32		/* lowercase hex of 16 random bytes */

/* The session a request belongs to, as read from mcp_sessions. */
struct mcp_session {
	char id[MCP_SESSION_ID_LEN + 1];
	char protocol_version[16];
};

/* One JSON-RPC request being answered; lives on the handler's stack. */
struct mcp_call {
	struct request *req;		/* req->who is the caller */
	struct mcp_session session;	/* empty id during initialize */
	char error[256];		/* message of the error a handler returns */
};

/*
 * Records the message of a JSON-RPC error for c and returns code, so a
 * handler ends with `return mcp_fail(c, RPC_INVALID_PARAMS, "...")`.
 */
int mcp_fail(struct mcp_call *c, enum rpc_code code, const char *fmt, ...)
	PRINTF_LIKE(3, 4);

/* ---- tools.c: the tool table, argument checks, tools/list and tools/call - */

enum tool_scope { TOOL_SCOPE_READ, TOOL_SCOPE_WRITE };

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
	enum tool_scope scope;		/* tokens without it neither see nor call it */
	tool_fn *fn;
};

/* The tool table, in the order tools/list returns it. */
int tool_count(void);
const struct tool *tool_at(int i);

/* The parsed input (or output, NULL when none) schema of tool i; owned by tools.c. */
json_object *tool_input_schema(int i);
json_object *tool_output_schema(int i);

/*
 * Whether schema uses only what tool_check_args() understands: an object
 * with properties of type string, integer, number or boolean, required,
 * additionalProperties, enum, minimum, maximum, minLength, maxLength.
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

/* ---- tools_server.c: tools about the gateway itself ---------------------- */

tool_fn tool_get_server_info;
tool_fn tool_list_devices;

/* ---- metrics.c: counters shared by all workers -------------------------- */

/* Maps the shared counters; the supervisor calls it before forking. */
void metrics_init(void);
void metrics_observe(int route, int status, uint64_t elapsed_ns);
void metrics_worker_restarted(void);
void metrics_set_workers(int n);

/* ---- worker.c ------------------------------------------------------------ */

/* The accept loop of one worker process; never returns. */
void worker_run(int listen_fd) __attribute__((noreturn));

#endif
