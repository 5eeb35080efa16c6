/*
 * log.h - structured logs: one JSON object per line.
 *
 * Every line carries time, level, process, pid and, when one is set, the
 * request id; then the message and any extra fields. Lines go to stderr, or to
 * the file named by KVMGATE_LOG_FILE. KVMGATE_LOG_LEVEL (debug, info, warn,
 * error) sets the threshold. Secrets must never be passed to these functions.
 */
#ifndef KVMGATE_LOG_H
#define KVMGATE_LOG_H

#include "util.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Names the process ("fcgi", "capture", "cli") and reads the environment. */
void log_init(const char *process);

/* Sets the request id stamped on later lines; NULL clears it. Copied. */
void log_set_request(const char *request_id);

/* Logs a message; the _errno variant appends strerror(errno) like warn(3). */
void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_errno(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);

/*
 * Logs a message with extra fields given as key/value string pairs ending in
 * NULL: log_fields(LOG_LVL_INFO, "request", "method", "GET", "path", p, NULL).
 */
void log_fields(enum log_level level, const char *msg, ...)
	__attribute__((sentinel));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_warn(...)  log_errno(LOG_LVL_WARN, __VA_ARGS__)
#define log_errx(...)  log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_err(...)   log_errno(LOG_LVL_ERROR, __VA_ARGS__)

#endif
