/*
 * metrics.c - Prometheus counters shared by the supervisor and its workers.
 *
 * The supervisor maps one anonymous shared region before forking; workers
 * add to it with relaxed atomics, and any worker renders it for /metrics.
 * Counters survive worker restarts because the supervisor owns the mapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "conf.h"
#include "ctl.h"
#include "fcgi.h"
#include "log.h"

#define MAX_ROUTES 64

static const int statuses[] = {
	200, 201, 202, 204, 400, 401, 403, 404, 405, 406, 409, 413, 414, 415,
	421, 422, 429, 500, 502, 503, 504,
};
#define NSTATUS ARRAY_LEN(statuses)

static const double bounds[] = {	/* seconds */
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
#define NBUCKETS ARRAY_LEN(bounds)

struct metrics_shm {
	uint64_t requests[MAX_ROUTES + 1][NSTATUS + 1];	/* last status column: other */
	uint64_t buckets[MAX_ROUTES + 1][NBUCKETS + 1];	/* last bucket: +Inf */
	uint64_t sum_ns[MAX_ROUTES + 1];
	uint64_t worker_restarts;
	uint64_t workers;
	uint64_t streams_refused;
	uint64_t audit_batches, audit_batch_events, audit_batch_failures, audit_batch_ns;
	uint64_t audit_waits, audit_wait_ns;	/* workers waiting for their event's commit */
};

static struct metrics_shm *m;

void metrics_init(void)
{
	if (route_count() > MAX_ROUTES) {
		log_errx("more routes than metrics can hold (%d)", MAX_ROUTES);
		abort();
	}
	m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		log_err("mmap metrics");
		abort();
	}
}

static void add(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void metrics_observe(int route, int status, uint64_t elapsed_ns)
{
	size_t s = 0, b = 0;

	if (m == NULL || route < 0 || route > MAX_ROUTES)
		return;
	while (s < NSTATUS && statuses[s] != status)
		s++;
	while (b < NBUCKETS && (double)elapsed_ns / 1e9 > bounds[b])
		b++;
	add(&m->requests[route][s], 1);
	add(&m->buckets[route][b], 1);
	add(&m->sum_ns[route], elapsed_ns);
}

void metrics_worker_restarted(void)
{
	if (m != NULL)
		add(&m->worker_restarts, 1);
}

void metrics_stream_refused(void)
{
	if (m != NULL)
		add(&m->streams_refused, 1);
}

void metrics_audit_batch(int events, bool appended, uint64_t elapsed_ns)
{
	if (m == NULL)
		return;
	add(&m->audit_batches, 1);
	add(&m->audit_batch_events, (uint64_t)events);
	add(&m->audit_batch_ns, elapsed_ns);
	if (!appended)
		add(&m->audit_batch_failures, 1);
}

void metrics_audit_wait(uint64_t elapsed_ns)
{
	if (m == NULL)
		return;
	add(&m->audit_waits, 1);
	add(&m->audit_wait_ns, elapsed_ns);
}

void metrics_set_workers(int n)
{
	if (m != NULL)
		__atomic_store_n(&m->workers, (uint64_t)n, __ATOMIC_RELAXED);
}

static void render_http(struct buf *b)
{
	buf_puts(b, "# HELP kvmgate_http_requests_total HTTP requests answered by FastCGI workers.\n"
	            "# TYPE kvmgate_http_requests_total counter\n");
	for (int r = 0; r <= route_count(); r++)
		for (size_t s = 0; s <= NSTATUS; s++) {
			uint64_t n = get(&m->requests[r][s]);
			char st[8];
			if (n == 0)
				continue;
			if (s < NSTATUS)
				snprintf(st, sizeof st, "%d", statuses[s]);
			else
				snprintf(st, sizeof st, "other");
			buf_printf(b, "kvmgate_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
			           route_name(r), st, (unsigned long long)n);
		}
	buf_puts(b, "# HELP kvmgate_http_request_duration_seconds Time from accept to response.\n"
	            "# TYPE kvmgate_http_request_duration_seconds histogram\n");
	for (int r = 0; r <= route_count(); r++) {
		uint64_t cum = 0;
		for (size_t k = 0; k <= NBUCKETS; k++)
			cum += get(&m->buckets[r][k]);
		if (cum == 0)
			continue;
		cum = 0;
		for (size_t k = 0; k <= NBUCKETS; k++) {
			cum += get(&m->buckets[r][k]);
			if (k < NBUCKETS)
				buf_printf(b, "kvmgate_http_request_duration_seconds_bucket"
				           "{route=\"%s\",le=\"%g\"} %llu\n",
				           route_name(r), bounds[k], (unsigned long long)cum);
			else
				buf_printf(b, "kvmgate_http_request_duration_seconds_bucket"
				           "{route=\"%s\",le=\"+Inf\"} %llu\n",
				           route_name(r), (unsigned long long)cum);
		}
		buf_printf(b, "kvmgate_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
		           route_name(r), (double)get(&m->sum_ns[r]) / 1e9);
		buf_printf(b, "kvmgate_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		           route_name(r), (unsigned long long)cum);
	}
}

int h_metrics(struct request *req)
{
	struct buf b = BUF_INIT;
	struct ctl_stats_reply st;
	uint32_t len = 0;
	bool up;

	render_http(&b);
	buf_printf(&b, "# HELP kvmgate_fcgi_workers FastCGI worker processes configured.\n"
	               "# TYPE kvmgate_fcgi_workers gauge\nkvmgate_fcgi_workers %llu\n",
	           (unsigned long long)get(&m->workers));
	buf_printf(&b, "# HELP kvmgate_fcgi_worker_restarts_total Workers replaced after dying.\n"
	               "# TYPE kvmgate_fcgi_worker_restarts_total counter\n"
	               "kvmgate_fcgi_worker_restarts_total %llu\n",
	           (unsigned long long)get(&m->worker_restarts));
	buf_printf(&b, "# HELP kvmgate_mcp_streams_refused_total Calls that ran without an event "
	               "stream because every stream slot was taken.\n"
	               "# TYPE kvmgate_mcp_streams_refused_total counter\n"
	               "kvmgate_mcp_streams_refused_total %llu\n",
	           (unsigned long long)get(&m->streams_refused));
	buf_printf(&b, "# HELP kvmgate_audit_batches_total Transactions of the audit appender.\n"
	               "# TYPE kvmgate_audit_batches_total counter\n"
	               "kvmgate_audit_batches_total %llu\n"
	               "# HELP kvmgate_audit_batch_events_total Events the appender was handed "
	               "(events per batch: this over batches).\n"
	               "# TYPE kvmgate_audit_batch_events_total counter\n"
	               "kvmgate_audit_batch_events_total %llu\n"
	               "# HELP kvmgate_audit_batch_failures_total Batches not appended whole "
	               "(their events were then appended one by one).\n"
	               "# TYPE kvmgate_audit_batch_failures_total counter\n"
	               "kvmgate_audit_batch_failures_total %llu\n"
	               "# HELP kvmgate_audit_batch_seconds_total Time the appender spent "
	               "writing its batches (statements and commit).\n"
	               "# TYPE kvmgate_audit_batch_seconds_total counter\n"
	               "kvmgate_audit_batch_seconds_total %.6f\n"
	               "# HELP kvmgate_audit_wait_seconds Time workers waited for their events "
	               "to be committed.\n"
	               "# TYPE kvmgate_audit_wait_seconds summary\n"
	               "kvmgate_audit_wait_seconds_sum %.6f\n"
	               "kvmgate_audit_wait_seconds_count %llu\n",
	           (unsigned long long)get(&m->audit_batches),
	           (unsigned long long)get(&m->audit_batch_events),
	           (unsigned long long)get(&m->audit_batch_failures),
	           (double)get(&m->audit_batch_ns) / 1e9,
	           (double)get(&m->audit_wait_ns) / 1e9, (unsigned long long)get(&m->audit_waits));
	up = ctl_call(conf_str(CONF_CAPTURE_SOCKET), CTL_STATS, NULL, 0, CTL_STATS_REPLY,
	              &st, sizeof st, &len, 500) == CTL_OK && len == sizeof st;
	buf_printf(&b, "# HELP kvmgate_capture_up Whether the capture worker answers.\n"
	               "# TYPE kvmgate_capture_up gauge\nkvmgate_capture_up %d\n", up);
	if (up) {
		buf_printf(&b, "# HELP kvmgate_capture_sessions Open device sessions.\n"
		               "# TYPE kvmgate_capture_sessions gauge\nkvmgate_capture_sessions %u\n"
		               "# HELP kvmgate_capture_frame_slots_used Frame store slots in use.\n"
		               "# TYPE kvmgate_capture_frame_slots_used gauge\n"
		               "kvmgate_capture_frame_slots_used %u\n",
		           st.sessions, st.slots_used);
	}
	resp_body(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	buf_free(&b);
	return 0;
}
