/*
 * main.c - kvmgate-capture: creates the frame store, opens the control
 * socket and runs the event loop until SIGTERM or SIGINT. It is the only
 * process that will talk to devices; it never blocks in a handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "capture.h"
#include "conf.h"
#include "db.h"
#include "log.h"

static struct {
	struct watch w;
	bool stop;
} sig = { .w = { .fd = -1 } };

static void on_signal(struct watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof si) == sizeof si) {
		log_info("signal %u: stopping", si.ssi_signo);
		sig.stop = true;
	}
}

static int open_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sig.w.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	sig.w.on_ready = on_signal;
	if (sig.w.fd < 0) {
		log_err("signalfd");
		return -1;
	}
	return watch_add(&sig.w, EPOLLIN);
}

int main(int argc, char **argv)
{
	int rc = 1;

	log_init("capture");
	if (conf_load() < 0)
		return 1;
	db_configure(conf_str(CONF_DATABASE_URL), conf_str(CONF_VAR_DIR), "kvmgate-capture");
	session_timing.idle_ns = (uint64_t)conf_int(CONF_SESSION_IDLE_MS) * 1000000u;
	session_timing.frame_timeout_ns = (uint64_t)conf_int(CONF_FRAME_TIMEOUT_MS) * 1000000u;
	cap.started_mono_ns = now_mono_ns();
	cap.started_wall_ns = now_wall_ns();
	cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (cap.epoll_fd < 0) {
		log_err("epoll_create1");
		return 1;
	}
	if (shm_create(conf_str(CONF_SHM_NAME), (uint32_t)conf_int(CONF_SHM_SLOTS),
	               (uint32_t)conf_int(CONF_SHM_FRAME_MAX), &cap.frames) < 0) {
		log_err("frame store %s", conf_str(CONF_SHM_NAME));
		goto out;
	}
	if (http_init() < 0 || open_signals() < 0 || ctl_server_open(conf_str(CONF_CAPTURE_SOCKET)) < 0)
		goto out;
	log_info("ready: control socket %s, frame store %s (%lld slots)",
	         conf_str(CONF_CAPTURE_SOCKET), conf_str(CONF_SHM_NAME),
	         conf_int(CONF_SHM_SLOTS));

	for (uint64_t warm_ns = 0; !sig.stop;) {
		devwatch_tick();
		/* Devices flagged keep_warm: opened now, renewed every 30 s (devstate.c). */
		if (now_mono_ns() >= warm_ns) {
			(void)devstate_keep_warm();
			warm_ns = now_mono_ns() + 30000000000ull;
		}
		if (loop_once(1000) < 0)
			goto out;
	}
	rc = 0;
out:
	ctl_server_close();
	devwatch_close();
	session_close_all();
	devstate_cleanup();
	http_cleanup();
	watch_reap();
	db_close();
	shm_close(cap.frames);
	if (sig.w.fd >= 0)
		close(sig.w.fd);
	close(cap.epoll_fd);
	log_info("stopped");
	return rc;
}
