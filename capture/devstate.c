/*
 * devstate.c - what the capture worker sees of each device, kept in the
 * device_state table (sql/009_device_state.sql) for the dashboard, health
 * tools and other processes; and the devices flagged keep_warm.
 *
 * Writes are synchronous on the worker's one connection, but rare and
 * small: a row is written only when something in it changed (session
 * state, size, LED, HDMI, firmware), and the last frame time at most once
 * a minute, so a device streaming at 30 fps costs one UPSERT a minute. The
 * database is local and the statement is a single-row UPSERT by primary
 * key (well under a millisecond); while the database is unreachable,
 * writes are skipped for 10 s at a time rather than retried per change,
 * so an outage cannot slow the loop down. An asynchronous connection would
 * remove even that, at the price of a second connection and a state
 * machine per write; not worth it at this rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "db.h"
#include "log.h"

#define FRAME_WRITE_NS (60ull * 1000000000u)
#define DB_BACKOFF_NS (10ull * 1000000000u)

struct devstate {
	struct devstate *next;
	uint64_t id;
	bool online;
	enum session_state st;
	char why[128];
	char firmware[32];
	uint32_t width, height;
	int led, hdmi_enabled, hdmi_signal;	/* -1 unknown */
	uint64_t last_frame_wall_ns, frame_written_mono_ns;
};

static struct devstate *states;
static uint64_t db_skip_until;

static struct devstate *find(uint64_t id)
{
	struct devstate *d;

	for (d = states; d != NULL && d->id != id; d = d->next)
		;
	if (d == NULL) {
		d = xcalloc(1, sizeof *d);
		d->id = id;
		d->led = d->hdmi_enabled = d->hdmi_signal = -1;
		d->next = states;
		states = d;
	}
	return d;
}

static const char *tri(int v)
{
	return v < 0 ? NULL : v ? "t" : "f";
}

/* The one UPSERT. */
static void write_row(struct devstate *d)
{
	static const char sql[] =
		"INSERT INTO device_state (device_id, online, session_state, last_error, firmware, "
		"  last_frame_at, width, height, power_led, hdmi_enabled, hdmi_signal, updated_at) "
		"SELECT $1, $2, $3, $4, $5, to_timestamp($6::double precision / 1e9), $7, $8, $9, $10, "
		"  $11, now() WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) "
		"ON CONFLICT (device_id) DO UPDATE SET online = $2, session_state = $3, last_error = $4, "
		"  firmware = COALESCE($5, device_state.firmware), "
		"  last_frame_at = COALESCE(to_timestamp($6::double precision / 1e9), device_state.last_frame_at), "
		"  width = COALESCE($7, device_state.width), height = COALESCE($8, device_state.height), "
		"  power_led = $9, hdmi_enabled = $10, hdmi_signal = $11, updated_at = now()";
	char id[24], frame[24], w[16], h[16];
	const char *p[11];
	uint64_t now = now_mono_ns();
	PGresult *r;

	if (now < db_skip_until)
		return;
	snprintf(id, sizeof id, "%llu", (unsigned long long)d->id);
	snprintf(frame, sizeof frame, "%llu", (unsigned long long)d->last_frame_wall_ns);
	snprintf(w, sizeof w, "%u", d->width);
	snprintf(h, sizeof h, "%u", d->height);
	p[0] = id;
	p[1] = d->online ? "t" : "f";
	p[2] = session_state_name(d->st);
	p[3] = d->why[0] ? d->why : NULL;
	p[4] = d->firmware[0] ? d->firmware : NULL;
	p[5] = d->last_frame_wall_ns ? frame : NULL;
	p[6] = d->width ? w : NULL;
	p[7] = d->height ? h : NULL;
	p[8] = tri(d->led);
	p[9] = tri(d->hdmi_enabled);
	p[10] = tri(d->hdmi_signal);
	if ((r = db_query(sql, 11, p)) == NULL) {
		db_skip_until = now + DB_BACKOFF_NS;
		log_warnx("device %llu: state not written (%s); next try in 10 s",
		          (unsigned long long)d->id, db_last_error());
		return;
	}
	PQclear(r);
}

void devstate_session(uint64_t id, enum session_state st, const char *why)
{
	struct devstate *d = find(id);
	bool online = st == SS_STREAMING;

	if (d->st == st && d->online == online)
		return;
	d->st = st;
	d->online = online;
	snprintf(d->why, sizeof d->why, "%s", online || st == SS_IDLE ? "" : why != NULL ? why : "");
	write_row(d);
}

void devstate_frame(uint64_t id, uint32_t width, uint32_t height)
{
	struct devstate *d = find(id);
	uint64_t now = now_mono_ns();
	bool resized = d->width != width || d->height != height;

	d->last_frame_wall_ns = now_wall_ns();
	if (!resized && d->frame_written_mono_ns != 0 && now - d->frame_written_mono_ns < FRAME_WRITE_NS)
		return;
	d->width = width;
	d->height = height;
	d->frame_written_mono_ns = now;
	write_row(d);
}

void devstate_firmware(uint64_t id, const char *firmware)
{
	struct devstate *d = find(id);

	if (strcmp(d->firmware, firmware) == 0)
		return;
	snprintf(d->firmware, sizeof d->firmware, "%s", firmware);
	write_row(d);
}

void devstate_power(uint64_t id, bool led_on)
{
	struct devstate *d = find(id);

	if (d->led == (int)led_on)
		return;
	d->led = led_on;
	write_row(d);
}

void devstate_hdmi(uint64_t id, int enabled, int signal)
{
	struct devstate *d = find(id);

	if (d->hdmi_enabled == enabled && d->hdmi_signal == signal)
		return;
	d->hdmi_enabled = enabled;
	d->hdmi_signal = signal;
	write_row(d);
}

void devstate_cleanup(void)
{
	while (states != NULL) {
		struct devstate *d = states;
		states = d->next;
		free(d);
	}
}

int devstate_keep_warm(void)
{
	static const char sql[] = "SELECT id FROM devices WHERE keep_warm AND enabled ORDER BY id";
	PGresult *r = db_query(sql, 0, NULL);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		uint64_t id = strtoull(PQgetvalue(r, i, 0), NULL, 10);
		struct session *s = session_find(id);
		struct device_cfg cfg;
		enum ctl_status st;
		char why[160];

		/* A live session only has its demand renewed; others load the device afresh. */
		if (s != NULL && s->state != SS_IDLE && s->state != SS_FAILED && s->state != SS_BACKING_OFF) {
			s->cfg.keep_warm = true;
			(void)session_ensure(&s->cfg);
			continue;
		}
		if (device_load(id, &cfg, &st, why, sizeof why) < 0) {
			log_warnx("device %llu: kept warm but not loaded: %s", (unsigned long long)id, why);
			continue;
		}
		if (s != NULL)
			session_update(s, &cfg);
		(void)session_ensure(&cfg);
		explicit_bzero(&cfg, sizeof cfg);
	}
	PQclear(r);
	return n;
}
