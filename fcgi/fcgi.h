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

/* Sends a body of the given content type. */
void resp_body(struct request *req, int status, const char *content_type,
               const char *body, size_t len);

/* ---- route.c: the route table and the one authorisation step ----------- */

enum route_flags {
	ROUTE_AUTH = 1 << 0,	/* bearer token required */
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

/* ---- handlers ------------------------------------------------------------ */

int h_healthz(struct request *req);
int h_metrics(struct request *req);
int h_me(struct request *req);

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
