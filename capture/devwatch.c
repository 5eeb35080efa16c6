/*
 * devwatch.c - device changes reach open sessions. The capture worker
 * LISTENs on kvmgate_devices (sql/011: a trigger NOTIFYs the device id on
 * every UPDATE and DELETE of a device) and re-reads the device of a session
 * that is not idle: a new password, URL or kind is used at once, a disabled
 * or removed device's session is closed.
 *
 * The watch is on a dup() of the connection's socket: when the connection
 * is replaced, libpq closes its descriptor, and the number may be reused by
 * another watch; the duplicate stays ours until we close it. After a
 * reconnection every open session is re-read, since changes made while not
 * listening sent nothing that reached us.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "capture.h"
#include "db.h"
#include "log.h"

#define CHANNEL "kvmgate_devices"
#define RETRY_NS (5000ull * 1000000u)

static struct {
	struct watch w;		/* a dup of the connection's socket, -1 when not listening */
	unsigned generation;	/* the connection LISTEN ran on */
	uint64_t next_try_ns;
} dw = { .w = { .fd = -1 } };

/* Re-reads device id for its session, if it has one that is not idle. */
static void recheck(uint64_t id)
{
	struct session *s = session_find(id);
	struct device_cfg cfg;
	enum ctl_status st = CTL_EINTERNAL;
	char why[160];

	if (s == NULL || s->state == SS_IDLE)
		return;
	if (ctl_device_loader(id, &cfg, &st, why, sizeof why) == 0)
		session_reconfigure(s, &cfg);
	else if (st == CTL_ENODEVICE)
		session_reconfigure(s, NULL);
	else
		log_warnx("device %llu changed but cannot be re-read: %s", (unsigned long long)id, why);
	explicit_bzero(&cfg, sizeof cfg);
}

static void on_notify(const char *channel, const char *payload, void *arg)
{
	char *end;
	unsigned long long id;

	if (strcmp(channel, CHANNEL) != 0)
		return;
	errno = 0;
	id = strtoull(payload, &end, 10);
	if (errno == 0 && *end == '\0' && end != payload && id > 0)
		recheck(id);
}

static void stop_listening(void)
{
	if (dw.w.fd >= 0) {
		watch_del(&dw.w);
		close(dw.w.fd);
	}
	dw.w.fd = -1;
	dw.generation = 0;
}

static void on_ready(struct watch *w, uint32_t events)
{
	if (db_take_notifies(on_notify, NULL) < 0 || db_generation() != dw.generation) {
		log_warnx("device changes: the database connection was lost; listening again soon");
		stop_listening();
	}
}

/* LISTENs on the current connection and re-reads every open session. */
static void start_listening(void)
{
	PGconn *c = db_conn();
	int fd;

	if (c == NULL || db_listen(CHANNEL) < 0 || (fd = dup(PQsocket(db_conn()))) < 0) {
		dw.next_try_ns = now_mono_ns() + RETRY_NS;
		return;
	}
	dw.w.fd = fd;
	dw.w.on_ready = on_ready;
	if (watch_add(&dw.w, EPOLLIN) < 0) {
		close(fd);
		dw.w.fd = -1;
		dw.next_try_ns = now_mono_ns() + RETRY_NS;
		return;
	}
	dw.generation = db_generation();
	for (struct session *s = session_first(); s != NULL; s = s->next)
		recheck(s->cfg.id);
}

void devwatch_tick(void)
{
	if (dw.w.fd >= 0 && dw.generation != db_generation())
		stop_listening();	/* another statement reconnected meanwhile */
	if (dw.w.fd < 0) {
		if (now_mono_ns() >= dw.next_try_ns)
			start_listening();
		return;
	}
	/* Notifications that came in while other statements ran wait in libpq. */
	if (db_take_notifies(on_notify, NULL) < 0)
		stop_listening();
}

void devwatch_close(void)
{
	stop_listening();
}
