/*
 * conf.c - the table of environment variables and their checks.
 *
 * Paths that default to somewhere under the var dir are derived at load time,
 * so setting KVMGATE_VAR_DIR alone moves a whole stack.
 */
#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"

enum conf_type { CONF_STRING, CONF_INT };

struct conf_row {
	const char *name;
	enum conf_type type;
	const char *def;	/* default; "@x" means <var dir>/x */
	long long min, max;
	const char *help;
};

static const struct conf_row rows[CONF__COUNT] = {
	[CONF_VAR_DIR] = { "KVMGATE_VAR_DIR", CONF_STRING, "var", 0, 0,
		"state directory: PostgreSQL cluster, sockets, logs, admin token" },
	[CONF_PORT] = { "KVMGATE_PORT", CONF_INT, "8080", 1, 65535,
		"HTTP port nginx listens on" },
	[CONF_BIND] = { "KVMGATE_BIND", CONF_STRING, "127.0.0.1", 0, 0,
		"address nginx listens on" },
	[CONF_WORKERS] = { "KVMGATE_WORKERS", CONF_INT, "16", 1, 1024,
		"FastCGI worker processes (sized for concurrent calls, not cores)" },
	[CONF_DATABASE_URL] = { "DATABASE_URL", CONF_STRING, "", 0, 0,
		"libpq conninfo or URI; unset: the private cluster under the var dir" },
	[CONF_FCGI_LISTEN] = { "KVMGATE_FCGI_LISTEN", CONF_STRING, "@run/fcgi.sock", 0, 0,
		"FastCGI socket: a unix socket path, or host:port" },
	[CONF_CAPTURE_SOCKET] = { "KVMGATE_CAPTURE_SOCKET", CONF_STRING, "@run/capture.sock", 0, 0,
		"capture worker control socket (unix)" },
	[CONF_SHM_NAME] = { "KVMGATE_SHM_NAME", CONF_STRING, "", 0, 0,
		"POSIX shm name of the frame store; unset: derived from the var dir" },
	[CONF_SHM_SLOTS] = { "KVMGATE_SHM_SLOTS", CONF_INT, "64", 1, 4096,
		"frame store slots (devices with a live frame at once)" },
	[CONF_SHM_FRAME_MAX] = { "KVMGATE_SHM_FRAME_MAX", CONF_INT, "8388608", 65536, 67108864,
		"largest frame in bytes a slot holds" },
	[CONF_MAX_BODY] = { "KVMGATE_MAX_BODY", CONF_INT, "1048576", 1024, 67108864,
		"largest request body in bytes (nginx and FastCGI)" },
	[CONF_SQL_DIR] = { "KVMGATE_SQL_DIR", CONF_STRING, "", 0, 0,
		"migrations directory; unset: sql/ next to bin/" },
	[CONF_LOG_LEVEL] = { "KVMGATE_LOG_LEVEL", CONF_STRING, "info", 0, 0,
		"debug, info, warn or error" },
	[CONF_LOG_FILE] = { "KVMGATE_LOG_FILE", CONF_STRING, "", 0, 0,
		"append logs to this file instead of stderr" },
	[CONF_ORG] = { "KVMGATE_ORG", CONF_STRING, "default", 0, 0,
		"name of the first organisation `kvmgate init` creates" },
	[CONF_ALLOWED_HOSTS] = { "KVMGATE_ALLOWED_HOSTS", CONF_STRING, "127.0.0.1,localhost,[::1]", 0, 0,
		"Host names /mcp answers to, comma-separated, each with or without :port" },
	[CONF_ALLOWED_ORIGINS] = { "KVMGATE_ALLOWED_ORIGINS", CONF_STRING, "", 0, 0,
		"browser origins allowed besides those on an allowed host (scheme://host[:port], comma-separated)" },
	[CONF_AUDIT_KEY_FILE] = { "KVMGATE_AUDIT_KEY_FILE", CONF_STRING, "@audit-ed25519.pem", 0, 0,
		"Ed25519 private key (PEM) that signs audit checkpoints; created 0600 when missing" },
	[CONF_AUTH_CACHE_MS] = { "KVMGATE_AUTH_CACHE_MS", CONF_INT, "2000", 0, 60000,
		"how long (ms) a worker reuses a token or MCP session it looked up; a token "
		"revoked outside the gateway stops working within this time (0: look up every time)" },
	[CONF_AUDIT_SOCKET] = { "KVMGATE_AUDIT_SOCKET", CONF_STRING, "@run/audit.sock", 0, 0,
		"unix socket on which the FastCGI program's audit appender takes events from its workers" },
	[CONF_AUDIT_CHECKPOINT_S] = { "KVMGATE_AUDIT_CHECKPOINT_S", CONF_INT, "3600", 0, 604800,
		"every this many seconds the audit appender signs a checkpoint of each organisation's "
		"chain that has new events (0: only `kvmgate audit checkpoint`)" },
	[CONF_MASTER_KEY_FILE] = { "KVMGATE_MASTER_KEY_FILE", CONF_STRING, "@master.key", 0, 0,
		"32-byte key (hex) sealing device credentials (AES-256-GCM); `kvmgate init` creates it 0600" },
	[CONF_MASTER_KEY] = { "KVMGATE_MASTER_KEY", CONF_STRING, "", 0, 0,
		"the master key itself (64 hex digits or base64), instead of the file" },
	[CONF_SESSION_IDLE_MS] = { "KVMGATE_SESSION_IDLE_MS", CONF_INT, "60000", 100, 86400000,
		"how long (ms) the capture worker keeps a device session open after the last demand" },
	[CONF_FRAME_TIMEOUT_MS] = { "KVMGATE_FRAME_TIMEOUT_MS", CONF_INT, "10000", 100, 600000,
		"how long (ms) a device session may go without a frame (including connecting) "
		"before it is dropped and retried with backoff" },
	[CONF_WEB_SESSION_TTL_S] = { "KVMGATE_WEB_SESSION_TTL_S", CONF_INT, "43200", 60, 2592000,
		"how long (s) a dashboard sign-in lasts at most, however active" },
	[CONF_WEB_SESSION_IDLE_S] = { "KVMGATE_WEB_SESSION_IDLE_S", CONF_INT, "1800", 10, 2592000,
		"how long (s) a dashboard sign-in lasts without a request" },
	[CONF_SIGNIN_MAX_FAILURES] = { "KVMGATE_SIGNIN_MAX_FAILURES", CONF_INT, "5", 1, 1000,
		"failed sign-ins per username, and per source address, within KVMGATE_SIGNIN_WINDOW_S "
		"after which sign-ins are refused (429) until the oldest leaves the window" },
	[CONF_SIGNIN_WINDOW_S] = { "KVMGATE_SIGNIN_WINDOW_S", CONF_INT, "900", 1, 86400,
		"the window (s) in which failed sign-ins are counted" },
	[CONF_TESSDATA] = { "KVMGATE_TESSDATA", CONF_STRING, "/usr/share/tesseract-ocr/5/tessdata", 0, 0,
		"Tesseract's language data: the OCR languages offered are the <lang>.traineddata files there" },
};

static char *values[CONF__COUNT];
static long long ints[CONF__COUNT];

int conf_load(void)
{
	const char *var;

	for (int i = 0; i < CONF__COUNT; i++) {
		const struct conf_row *r = &rows[i];
		const char *v = getenv(r->name);
		const char *err;

		free(values[i]);
		if (v == NULL || *v == '\0')
			v = r->def;
		if (i == CONF_VAR_DIR && v[0] != '/') {
			char cwd[4096];
			if (getcwd(cwd, sizeof cwd) == NULL) {
				perror("kvmgate: getcwd");
				return -1;
			}
			values[i] = xasprintf("%s/%s", cwd, v);
		} else if (v[0] == '@') {
			var = values[CONF_VAR_DIR];
			values[i] = xasprintf("%s/%s", var, v + 1);
		} else {
			values[i] = xstrdup(v);
		}
		if (r->type == CONF_INT &&
		    parse_ll(values[i], r->min, r->max, &ints[i], &err) < 0) {
			fprintf(stderr, "kvmgate: %s=%s: %s (allowed %lld..%lld)\n",
			        r->name, values[i], err, r->min, r->max);
			return -1;
		}
	}
	if (values[CONF_SHM_NAME][0] == '\0') {
		free(values[CONF_SHM_NAME]);
		values[CONF_SHM_NAME] = xmalloc(SHM_NAME_LEN);
		if (shm_name_for_dir(values[CONF_VAR_DIR], values[CONF_SHM_NAME],
		                     SHM_NAME_LEN) < 0) {
			fprintf(stderr, "kvmgate: cannot derive the frame store name\n");
			return -1;
		}
	}
	return 0;
}

const char *conf_str(enum conf_key key)
{
	return values[key] ? values[key] : rows[key].def;
}

long long conf_int(enum conf_key key)
{
	return ints[key];
}

void conf_print(void)
{
	for (int i = 0; i < CONF__COUNT; i++)
		printf("%-24s %-18s %s\n", rows[i].name,
		       rows[i].def[0] == '@' ? rows[i].def + 1 : rows[i].def, rows[i].help);
}
