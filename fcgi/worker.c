/*
 * worker.c - one FastCGI worker: accepts a request, answers it, repeats.
 *
 * A worker serves one request at a time and holds nothing between requests
 * but its database connection. SIGTERM while idle exits at once; during a
 * request it lets the request finish first.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

static volatile sig_atomic_t busy, stopping;

static void on_term(int sig)
{
	if (!busy)
		_exit(0);
	stopping = 1;
}

void worker_run(int listen_fd)
{
	struct sigaction sa;
	FCGX_Request fr;
	struct request req;
	char status[8], ms[24];
	uint64_t elapsed;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);

	if (FCGX_InitRequest(&fr, listen_fd, 0) != 0) {
		log_errx("FCGX_InitRequest failed");
		_exit(1);
	}
	while (!stopping) {
		if (FCGX_Accept_r(&fr) < 0)
			break;
		busy = 1;
		if (request_init(&req, &fr) == 0)
			route_dispatch(&req);
		elapsed = now_mono_ns() - req.start_ns;
		metrics_observe(route_index(req.route), req.status, elapsed);
		snprintf(status, sizeof status, "%d", req.status);
		snprintf(ms, sizeof ms, "%.3f", (double)elapsed / 1e6);
		log_fields(req.status >= 500 ? LOG_LVL_WARN : LOG_LVL_INFO, "request",
		           "method", req.method, "path", req.path ? req.path : "", "status", status,
		           "duration_ms", ms, "remote", req.remote_addr, NULL);
		request_cleanup(&req);
		FCGX_Finish_r(&fr);
		busy = 0;
	}
	db_close();
	_exit(0);
}
