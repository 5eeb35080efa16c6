/*
 * conf.h - configuration from the environment, declared in one table.
 *
 * Every KVMGATE_* variable any program reads is a row in conf.c with its
 * default, bounds and description; the README lists the same rows. A value
 * that does not parse or is out of bounds is a startup error, never ignored.
 */
#ifndef KVMGATE_CONF_H
#define KVMGATE_CONF_H

#include "util.h"

enum conf_key {
	CONF_VAR_DIR,
	CONF_PORT,
	CONF_BIND,
	CONF_WORKERS,
	CONF_DATABASE_URL,
	CONF_FCGI_LISTEN,
	CONF_CAPTURE_SOCKET,
	CONF_SHM_NAME,
	CONF_SHM_SLOTS,
	CONF_SHM_FRAME_MAX,
	CONF_MAX_BODY,
	CONF_SQL_DIR,
	CONF_LOG_LEVEL,
	CONF_LOG_FILE,
	CONF_ORG,
	CONF_ALLOWED_HOSTS,
	CONF_ALLOWED_ORIGINS,
	CONF_AUDIT_KEY_FILE,
	CONF_AUTH_CACHE_MS,
	CONF_AUDIT_SOCKET,
	CONF_AUDIT_CHECKPOINT_S,
	CONF_MASTER_KEY_FILE,
	CONF_MASTER_KEY,
	CONF_SESSION_IDLE_MS,
	CONF_FRAME_TIMEOUT_MS,
	CONF_WEB_SESSION_TTL_S,
	CONF_WEB_SESSION_IDLE_S,
	CONF_SIGNIN_MAX_FAILURES,
	CONF_SIGNIN_WINDOW_S,
	CONF_TESSDATA,
	CONF__COUNT
};

/*
 * Reads and checks every key. Returns 0, or -1 after printing the first bad
 * variable and why to stderr. Call once at startup, before conf_str/conf_int.
 */
int conf_load(void) MUSTCHECK;

/* The value of a string key: the environment's, else the default (may be ""). */
const char *conf_str(enum conf_key key);

/* The value of an integer key, already checked against its bounds. */
long long conf_int(enum conf_key key);

/* Writes "NAME default description" rows for documentation (kvmgate config). */
void conf_print(void);

#endif
