/*
 * log.c - JSON-lines logger. Every string is escaped as it is appended
 * (quotes, backslashes, control bytes), and each line is written with one
 * write(2) so lines from concurrent processes sharing a file never interleave.
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

#include "buf.h"

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

/* Appends s as a JSON string: quotes, backslashes and control bytes escaped. */
static void json_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	buf_append(b, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7] = "\\u00";

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
			continue;
		buf_append(b, run, (size_t)(s - run));
		if (c == '\0')
			break;
		run = s + 1;
		switch (c) {
		case '"': buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			buf_append(b, esc, 6);
		}
	}
	buf_append(b, "\"", 1);
}

static void emit(enum log_level level, const char *msg, va_list *fields)
{
	struct buf line = BUF_INIT;
	char ts[40];
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

	buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"process\":", ts,
	           level_names[level]);
	json_str(&line, lg.process);
	buf_printf(&line, ",\"pid\":%d", (int)getpid());
	if (lg.request[0] != '\0') {
		buf_puts(&line, ",\"request_id\":");
		json_str(&line, lg.request);
	}
	buf_puts(&line, ",\"msg\":");
	json_str(&line, msg);
	if (fields != NULL) {
		const char *k, *v;
		while ((k = va_arg(*fields, const char *)) != NULL) {
			v = va_arg(*fields, const char *);
			buf_puts(&line, ",");
			json_str(&line, k);
			buf_puts(&line, ":");
			if (v != NULL)
				json_str(&line, v);
			else
				buf_puts(&line, "null");
		}
	}
	buf_puts(&line, "}\n");
	if (write(lg.fd, line.data, line.len) < 0) {
		/* Nowhere left to report it. */
	}
	buf_free(&line);
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
