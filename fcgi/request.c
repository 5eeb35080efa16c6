/*
 * request.c - reading a FastCGI request and writing its response.
 *
 * Everything a request allocates hangs off struct request and is released
 * by request_cleanup(), in one place, after the response is sent.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fcgi.h"
#include "log.h"

#define PATH_MAX_LEN 2048
#define QUERY_MAX_LEN 4096

static const struct { int code; const char *reason; } reasons[] = {
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 406, "Not Acceptable" },
	{ 409, "Conflict" }, { 411, "Length Required" }, { 413, "Content Too Large" },
	{ 415, "Unsupported Media Type" }, { 421, "Misdirected Request" },
	{ 422, "Unprocessable Content" },
	{ 429, "Too Many Requests" }, { 499, "Client Closed Request" },
	{ 500, "Internal Server Error" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
};

static const char *reason(int code)
{
	for (size_t i = 0; i < ARRAY_LEN(reasons); i++)
		if (reasons[i].code == code)
			return reasons[i].reason;
	return "Unknown";
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Decodes len bytes of percent-encoding (and '+' as space when plus is set).
 * Returns a new string, or NULL when the encoding is malformed or decodes to
 * a control character.
 */
static char *url_decode(const char *s, size_t len, bool plus)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			c = hi << 4 | lo;
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (c < 0x20 || c == 0x7f) {
			free(out);
			return NULL;
		}
		*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static int parse_query(struct request *req, char *err, size_t errlen)
{
	const char *p = req->query;

	while (*p != '\0') {
		const char *end = p + strcspn(p, "&");
		const char *eq = memchr(p, '=', (size_t)(end - p));
		char *name, *value;

		if (end == p) {
			p++;
			continue;
		}
		if (req->nparams == REQ_MAX_PARAMS) {
			snprintf(err, errlen, "more than %d query parameters", REQ_MAX_PARAMS);
			return -1;
		}
		name = url_decode(p, (size_t)((eq ? eq : end) - p), true);
		value = eq ? url_decode(eq + 1, (size_t)(end - eq - 1), true) : xstrdup("");
		if (name == NULL || value == NULL || name[0] == '\0') {
			free(name);
			free(value);
			snprintf(err, errlen, "malformed query string");
			return -1;
		}
		if (request_param(req, name) != NULL) {
			snprintf(err, errlen, "query parameter '%.64s' given twice", name);
			free(name);
			free(value);
			return -1;
		}
		req->params[req->nparams].name = name;
		req->params[req->nparams].value = value;
		req->nparams++;
		p = *end ? end + 1 : end;
	}
	return 0;
}

int request_parse_uri(struct request *req, const char *uri, char *err, size_t errlen)
{
	const char *q;
	size_t plen;

	if (uri == NULL || uri[0] != '/') {
		snprintf(err, errlen, "malformed URL");
		return 400;
	}
	q = strchr(uri, '?');
	plen = q ? (size_t)(q - uri) : strlen(uri);
	if (plen > PATH_MAX_LEN || (q && strlen(q + 1) > QUERY_MAX_LEN)) {
		snprintf(err, errlen, "URL longer than %d characters", PATH_MAX_LEN);
		return 414;
	}
	req->query = xstrdup(q ? q + 1 : "");
	req->path = url_decode(uri, plen, false);
	if (req->path == NULL) {
		snprintf(err, errlen,
		         "malformed URL: invalid percent-encoding or control character in the path");
		return 400;
	}
	return parse_query(req, err, errlen) < 0 ? 400 : 0;
}

int request_init(struct request *req, FCGX_Request *fcgx)
{
	const char *uri, *rid;
	char err[160];
	int status;

	memset(req, 0, sizeof *req);
	req->fcgx = fcgx;
	req->start_ns = now_mono_ns();
	req->method = FCGX_GetParam("REQUEST_METHOD", fcgx->envp);
	req->remote_addr = FCGX_GetParam("REMOTE_ADDR", fcgx->envp);
	rid = FCGX_GetParam("REQUEST_ID", fcgx->envp);
	if (rid != NULL && *rid != '\0' && strlen(rid) < sizeof req->request_id &&
	    strspn(rid, "0123456789abcdefABCDEF-") == strlen(rid))
		snprintf(req->request_id, sizeof req->request_id, "%s", rid);
	else {
		uint8_t r[16];
		random_bytes(r, sizeof r);
		hex_encode(r, sizeof r, req->request_id);
	}
	log_set_request(req->request_id);
	if (req->method == NULL)
		req->method = "";
	if (req->remote_addr == NULL)
		req->remote_addr = "";

	uri = FCGX_GetParam("REQUEST_URI", fcgx->envp);
	status = request_parse_uri(req, uri, err, sizeof err);
	if (status != 0)
		resp_error(req, status, status == 414 ? "uri_too_long" : "bad_request", "%s", err);
	return status;
}

int request_read_body(struct request *req)
{
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->fcgx->envp);
	long long len = 0, max = conf_int(CONF_MAX_BODY);
	const char *err;

	if (cl != NULL && *cl != '\0' && parse_ll(cl, 0, 1LL << 40, &len, &err) < 0) {
		resp_error(req, 400, "bad_request", "Content-Length is %s", err);
		return 400;
	}
	if (len > max) {
		resp_error(req, 413, "body_too_large",
		           "request body of %lld bytes exceeds the limit of %lld bytes", len, max);
		return 413;
	}
	req->body = xmalloc((size_t)len + 1);
	req->body_len = (size_t)FCGX_GetStr(req->body, (int)len, req->fcgx->in);
	req->body[req->body_len] = '\0';
	if (req->body_len != (size_t)len) {
		resp_error(req, 400, "bad_request", "request body shorter than Content-Length");
		return 400;
	}
	return 0;
}

const char *request_header(const struct request *req, const char *cgi_name)
{
	return FCGX_GetParam(cgi_name, req->fcgx->envp);
}

const char *request_param(const struct request *req, const char *name)
{
	for (int i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

const char *request_path_param(const struct request *req, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < req->npath_params; i++)
		if (strncmp(req->path_params[i].name, name, len) == 0 &&
		    req->path_params[i].name[len] == '}')
			return req->path_params[i].value;
	return NULL;
}

void request_cleanup(struct request *req)
{
	for (int i = 0; i < req->npath_params; i++)
		free(req->path_params[i].value);
	req->npath_params = 0;
	for (int i = 0; i < req->nparams; i++) {
		free(req->params[i].name);
		free(req->params[i].value);
	}
	free(req->path);
	free(req->query);
	req->nparams = 0;
	req->path = req->query = NULL;
	free(req->body);
	buf_free(&req->headers);
	buf_free(&req->held_body);
	log_set_request(NULL);
}

void resp_header(struct request *req, const char *name, const char *value)
{
	if (strpbrk(name, "\r\n") || strpbrk(value, "\r\n")) {
		log_warnx("dropped response header %s with a line break", name);
		return;
	}
	buf_printf(&req->headers, "%s: %s\r\n", name, value);
}

/* Writes the head and the body to the client. */
static void send_now(struct request *req, int status, const char *content_type,
                     const char *body, size_t len)
{
	struct buf head = BUF_INIT;

	/* libfcgi's own printf knows no %zu: the head is built here. */
	buf_printf(&head, "Status: %d %s\r\n", status, reason(status));
	if (content_type != NULL)
		buf_printf(&head, "Content-Type: %s\r\n", content_type);
	if (status != 204)	/* RFC 9110 8.6: a 204 carries no Content-Length */
		buf_printf(&head, "Content-Length: %zu\r\n", len);
	buf_printf(&head, "Cache-Control: no-store\r\n%s\r\n",
	           req->headers.data ? req->headers.data : "");
	FCGX_PutStr(head.data, (int)head.len, req->fcgx->out);
	buf_free(&head);
	if (strcmp(req->method, "HEAD") != 0 && len > 0)
		FCGX_PutStr(body, (int)len, req->fcgx->out);
}

void resp_body(struct request *req, int status, const char *content_type,
               const char *body, size_t len)
{
	if (req->sent) {
		log_warnx("second response for one request dropped (status %d)", status);
		return;
	}
	req->sent = true;
	req->status = status;
	if (!req->hold) {
		send_now(req, status, content_type, body, len);
		return;
	}
	req->held = true;
	snprintf(req->held_type, sizeof req->held_type, "%s", content_type ? content_type : "");
	buf_reset(&req->held_body);
	buf_append(&req->held_body, body ? body : "", len);
}

void resp_release(struct request *req)
{
	if (!req->held)
		return;
	req->held = false;
	send_now(req, req->status, req->held_type[0] ? req->held_type : NULL,
	         req->held_body.data, req->held_body.len);
	buf_free(&req->held_body);
}

void resp_discard(struct request *req)
{
	req->held = req->sent = req->hold = false;
	buf_free(&req->held_body);
	buf_reset(&req->headers);
}

void resp_stream_begin(struct request *req, const char *content_type)
{
	struct buf head = BUF_INIT;

	if (req->sent) {
		log_warnx("stream on an answered request refused");
		return;
	}
	req->sent = true;
	req->streaming = true;
	req->status = 200;
	/* No length: the body ends when the request does. X-Accel-Buffering
	 * keeps nginx from holding events back even where buffering is on. */
	buf_printf(&head, "Status: 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
	           "X-Accel-Buffering: no\r\n%s\r\n", content_type,
	           req->headers.data ? req->headers.data : "");
	FCGX_PutStr(head.data, (int)head.len, req->fcgx->out);
	buf_free(&head);
	if (FCGX_FFlush(req->fcgx->out) < 0)
		req->stream_broken = true;
}

int resp_stream_write(struct request *req, const char *data, size_t len)
{
	if (!req->streaming || req->stream_broken)
		return -1;
	if (FCGX_PutStr(data, (int)len, req->fcgx->out) != (int)len ||
	    FCGX_FFlush(req->fcgx->out) < 0) {
		req->stream_broken = true;
		return -1;
	}
	return 0;
}

void resp_json(struct request *req, int status, json_object *body)
{
	size_t len;
	const char *s = json_object_to_json_string_length(body,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	resp_body(req, status, "application/json", s, len);
	json_object_put(body);
}

void resp_error(struct request *req, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(req->error, sizeof req->error, "%.40s: %.150s", code, msg);
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "request_id", json_object_new_string(req->request_id));
	json_object_object_add(o, "error", e);
	resp_json(req, status, o);
}
