/*
 * worker.c - one FastCGI worker: accepts a request, answers it, repeats.
 *
 * A worker serves one request at a time and holds nothing between requests
 * but its database connection. SIGTERM while idle exits at once; during a
 * request it lets the request finish first.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "fcgi.h"
#include "log.h"

#define WORKER_MMAP_THRESHOLD (16 << 20)	/* bytes: larger allocations are mapped */
#define WORKER_HEAP_KEEP (32 << 20)		/* free heap kept before trimming */

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
	/*
	 * A transformed screenshot allocates and frees a few picture buffers of
	 * megabytes each. Kept on the heap (up to WORKER_HEAP_KEEP free) they are
	 * reused by the next one instead of being mapped, faulted in and zeroed
	 * anew, which cost a fifth of its time; larger ones are still mapped.
	 */
	mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, WORKER_HEAP_KEEP);

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
		/* One line per request; a tool call adds its name, session and result
		 * (the NULL key ends the fields early when there was none). */
		log_fields(req.status >= 500 || req.tool.failed ? LOG_LVL_WARN : LOG_LVL_INFO, "request",
		           "method", req.method, "path", req.path ? req.path : "", "status", status,
		           "duration_ms", ms, "remote", req.remote_addr,
		           req.tool.result != NULL ? "tool" : NULL, req.tool.name,
		           "session", req.tool.session, "result", req.tool.result, NULL);
		request_cleanup(&req);
		FCGX_Finish_r(&fr);
		busy = 0;
	}
	db_close();
	_exit(0);
}
