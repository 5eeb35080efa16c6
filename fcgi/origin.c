/*
 * origin.c - which Host and Origin headers a browser-reachable route accepts.
 *
 * A page on another site can make a browser send requests to a gateway on
 * loopback, and DNS rebinding can even make them same-origin; checking Host
 * against the names the gateway is known by, and Origin against the allowed
 * origins, closes both doors (MCP Streamable HTTP requires it).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "fcgi.h"

/* Length of the host part of "host", "host:port", "[v6]" or "[v6]:port". */
static size_t host_part(const char *s, size_t len)
{
	const char *colon;

	if (len > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', len);
		return end ? (size_t)(end - s) + 1 : len;
	}
	colon = memchr(s, ':', len);
	return colon ? (size_t)(colon - s) : len;
}

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return len > 0;
}

/*
 * Whether the authority (host[:port]) of len bytes matches the list entry:
 * exactly, or by host alone when the entry names no port.
 */
static bool authority_matches(const char *a, size_t alen, const char *e, size_t elen)
{
	size_t ah = host_part(a, alen);

	if (alen == elen && strncasecmp(a, e, alen) == 0)
		return true;
	if (host_part(e, elen) != elen || ah != elen || strncasecmp(a, e, elen) != 0)
		return false;
	return ah == alen || (a[ah] == ':' && all_digits(a + ah + 1, alen - ah - 1));
}

/* Calls match on each trimmed, non-empty entry of a comma list; true on a match. */
static bool list_any(const char *list, const char *s, size_t len,
                     bool (*match)(const char *, size_t, const char *, size_t))
{
	while (*list != '\0') {
		size_t n = strcspn(list, ",");
		const char *e = list;
		size_t elen = n;

		while (elen > 0 && isspace((unsigned char)*e))
			e++, elen--;
		while (elen > 0 && isspace((unsigned char)e[elen - 1]))
			elen--;
		if (elen > 0 && match(s, len, e, elen))
			return true;
		list += n + (list[n] == ',');
	}
	return false;
}

static bool origin_equal(const char *a, size_t alen, const char *e, size_t elen)
{
	while (elen > 0 && e[elen - 1] == '/')
		elen--;
	return alen == elen && strncasecmp(a, e, alen) == 0;
}

bool origin_host_allowed(const char *host, const char *hosts)
{
	size_t len = strlen(host);

	return len > 0 && strcspn(host, "/@ \t") == len &&
	       list_any(hosts, host, len, authority_matches);
}

bool origin_allowed(const char *origin, const char *hosts, const char *origins)
{
	const char *auth;
	size_t len = strlen(origin);

	if (list_any(origins, origin, len, origin_equal))
		return true;
	if (strncasecmp(origin, "http://", 7) == 0)
		auth = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		auth = origin + 8;
	else
		return false;	/* "null", or a scheme no browser page has */
	return origin_host_allowed(auth, hosts);
}

int origin_check(struct request *req)
{
	const char *host = request_header(req, "HTTP_HOST");
	const char *origin = request_header(req, "HTTP_ORIGIN");
	const char *hosts = conf_str(CONF_ALLOWED_HOSTS);

	/* Only HTTP/1.0 omits Host, and no browser does: nothing to rebind. */
	if (host != NULL && !origin_host_allowed(host, hosts)) {
		resp_error(req, 421, "misdirected_request",
		           "this gateway does not answer to the host '%.100s'; "
		           "add it to KVMGATE_ALLOWED_HOSTS if it should", host);
		return -1;
	}
	if (origin != NULL &&
	    !origin_allowed(origin, hosts, conf_str(CONF_ALLOWED_ORIGINS))) {
		resp_error(req, 403, "forbidden_origin",
		           "requests from the origin '%.100s' are not allowed; "
		           "add it to KVMGATE_ALLOWED_ORIGINS if it should be", origin);
		return -1;
	}
	return 0;
}
