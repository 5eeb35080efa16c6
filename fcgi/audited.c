/*
 * audited.c - the audit events of one call of a tool or a REST route, in
 * the caller's organisation (shared/audit.c writes them to its chain).
 *
 * Who (user and token, or the user alone for a dashboard session), through
 * what (MCP with the session's client name and version, REST or the
 * dashboard with the User-Agent), from where (REMOTE_ADDR), what
 * (the tool or "METHOD /route", the device, the arguments with secrets
 * redacted), the outcome, the latency, the MCP session and the request id.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "fcgi.h"
#include "log.h"

/* Longest client name kept from a User-Agent. */
#define CLIENT_NAME_MAX 200

void audited_begin(struct audited *a, struct request *req, const struct mcp_call *c,
                   const char *action, json_object *args)
{
	const struct token_identity *who = &req->who;
	unsigned char addr[16];
	const char *ua;

	memset(a, 0, sizeof *a);
	a->start_ns = now_mono_ns();
	a->args = args;
	snprintf(a->action, sizeof a->action, "%s", action);
	audit_event_init(&a->ev, who->org_id, a->action);
	a->ev.actor = who->session_id > 0 ? AUDIT_ACTOR_USER : AUDIT_ACTOR_TOKEN;
	a->ev.user_id = who->user_id;
	a->ev.user = who->user;
	a->ev.token_id = who->token_id;
	a->ev.token = who->session_id > 0 ? NULL : who->name;
	if (c != NULL) {
		a->ev.client = AUDIT_CLIENT_MCP;
		a->ev.client_name = c->session.client_name[0] ? c->session.client_name : NULL;
		a->ev.client_version = c->session.client_version[0] ? c->session.client_version
		                                                    : NULL;
		a->ev.mcp_session = c->session.id[0] ? c->session.id : NULL;
	} else {
		a->ev.client = who->session_id > 0 ? AUDIT_CLIENT_DASHBOARD : AUDIT_CLIENT_REST;
		ua = req->fcgx != NULL ? request_header(req, "HTTP_USER_AGENT") : NULL;
		if (ua != NULL && *ua != '\0') {
			snprintf(a->client_name, sizeof a->client_name, "%.*s", CLIENT_NAME_MAX, ua);
			a->ev.client_name = a->client_name;
		}
	}
	/* Only an address audit_event_body() accepts: anything else is left out. */
	if (req->remote_addr != NULL &&
	    (inet_pton(AF_INET, req->remote_addr, addr) == 1 ||
	     inet_pton(AF_INET6, req->remote_addr, addr) == 1)) {
		snprintf(a->ip, sizeof a->ip, "%s", req->remote_addr);
		a->ev.source_ip = a->ip;
	}
	a->ev.args = args;
	a->ev.request_id = req->request_id[0] ? req->request_id : NULL;
}

void audited_device(struct audited *a, const struct device_ref *d)
{
	snprintf(a->device, sizeof a->device, "%s", d->name);
	a->ev.device_id = d->id;
	a->ev.device = a->device;
}

int audited_intent(struct audited *a)
{
	a->ev.outcome = AUDIT_PENDING;
	a->ev.latency_ms = -1;
	if (audit_submit(&a->ev) > 0)
		return 0;
	log_fields(LOG_LVL_ERROR, "refused: the audit intent could not be written",
	           "action", a->action, NULL);
	json_object_put(a->args);
	a->args = NULL;
	return -1;
}

int audited_end(struct audited *a, enum audit_outcome outcome, const char *reason)
{
	long long seq;

	if (reason != NULL && *reason != '\0') {
		snprintf(a->reason, sizeof a->reason, "%s", reason);
		a->ev.reason = a->reason;
	}
	a->ev.outcome = outcome;
	a->ev.latency_ms = (long long)((now_mono_ns() - a->start_ns) / 1000000);
	seq = audit_submit(&a->ev);
	json_object_put(a->args);
	a->args = NULL;
	a->ev.args = NULL;
	return seq > 0 ? 0 : -1;
}

int audited_read(struct audited *a, struct mcp_call *c, int rc)
{
	if (c->device.id > 0)
		audited_device(a, &c->device);
	if (audited_end(a, rc == RPC_OK ? AUDIT_OK : AUDIT_ERROR, rc == RPC_OK ? NULL : c->error) < 0 &&
	    rc == RPC_OK)
		return mcp_fail(c, RPC_INTERNAL_ERROR, "%s", AUDIT_NOT_DONE);
	return rc;
}
