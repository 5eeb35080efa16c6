/*
 * log.c - JSON-lines logger. Each line is built with json-c, so messages and
 * fields are escaped by construction, and written with one write(2) so lines
 * from concurrent processes sharing a file never interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

static const char *level_names[] = { "debug", "info", "warn", "error" };

static struct {
	char process[32];
	char request[64];
	enum log_level threshold;
	int fd;
} lg = { "kvmgate", "", LOG_LVL_INFO, 2 };

void log_init(const char *process)
{
	const char *lvl = getenv("KVMGATE_LOG_LEVEL");
	const char *file = getenv("KVMGATE_LOG_FILE");

	snprintf(lg.process, sizeof lg.process, "%s", process);
	for (size_t i = 0; lvl != NULL && i < ARRAY_LEN(level_names); i++)
		if (strcmp(lvl, level_names[i]) == 0)
			lg.threshold = (enum log_level)i;
	if (file != NULL && *file != '\0') {
		int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd >= 0)
			lg.fd = fd;
		else
			fprintf(stderr, "kvmgate: cannot open log file %s: %s\n",
			        file, strerror(errno));
	}
}

void log_set_request(const char *request_id)
{
	snprintf(lg.request, sizeof lg.request, "%s", request_id ? request_id : "");
}

static void emit(enum log_level level, const char *msg, va_list *fields)
{
	char ts[40];
	struct timespec now;
	struct tm tm;
	json_object *o;
	const char *line;
	size_t len, n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

	o = json_object_new_object();
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "level", json_object_new_string(level_names[level]));
	json_object_object_add(o, "process", json_object_new_string(lg.process));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	if (lg.request[0] != '\0')
		json_object_object_add(o, "request_id", json_object_new_string(lg.request));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	if (fields != NULL) {
		const char *k, *v;
		while ((k = va_arg(*fields, const char *)) != NULL) {
			v = va_arg(*fields, const char *);
			json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
		}
	}
	line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                      JSON_C_TO_STRING_NOSLASHESCAPE);
	len = strlen(line);
	{
		char *buf = xmalloc(len + 1);
		memcpy(buf, line, len);
		buf[len] = '\n';
		if (write(lg.fd, buf, len + 1) < 0) {
			/* Nowhere left to report it. */
		}
		free(buf);
	}
	json_object_put(o);
}

static void vlog(enum log_level level, bool with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	char msg[2048];
	int n;

	if (level < lg.threshold)
		return;
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno && n >= 0 && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(saved));
	emit(level, msg, NULL);
	errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, false, fmt, ap);
	va_end(ap);
}

void log_errno(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, true, fmt, ap);
	va_end(ap);
}

void log_fields(enum log_level level, const char *msg, ...)
{
	va_list ap;

	if (level < lg.threshold)
		return;
	va_start(ap, msg);
	emit(level, msg, &ap);
	va_end(ap);
}
