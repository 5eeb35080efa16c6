/*
 * main.c - kvmgate-fcgi: the supervisor. Opens the FastCGI socket, forks
 * KVMGATE_WORKERS workers, replaces any that dies, and on SIGTERM or SIGINT
 * stops them all and removes the socket.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "fcgi.h"
#include "log.h"

#define BACKLOG 1024
#define STOP_GRACE_MS 10000

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	stop = 1;
}

/* Forks a worker serving listen_fd, or with audit_fd >= 0 the audit appender. */
static pid_t spawn(int listen_fd, int audit_fd)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		/* A worker never outlives its supervisor. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(0);
		if (audit_fd >= 0)
			appender_run(audit_fd);
		worker_run(listen_fd);
	}
	if (pid < 0)
		log_err("fork");
	return pid;
}

static bool is_unix_path(const char *listen)
{
	return listen[0] == '/' || listen[0] == '.';
}

static void stop_workers(pid_t *pids, int n)
{
	uint64_t deadline = now_mono_ns() + STOP_GRACE_MS * 1000000ull;
	int left = 0;

	for (int i = 0; i < n; i++)
		if (pids[i] > 0 && kill(pids[i], SIGTERM) == 0)
			left++;
	while (left > 0 && now_mono_ns() < deadline) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0)
			left--;
		else if (pid < 0 && errno == ECHILD)
			break;
		else
			usleep(10000);
	}
	if (left > 0) {
		log_warnx("%d workers did not stop in time; killing them", left);
		for (int i = 0; i < n; i++)
			if (pids[i] > 0)
				kill(pids[i], SIGKILL);
		while (waitpid(-1, NULL, 0) > 0)
			;
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	const char *listen;
	pid_t *pids;
	int fd, audit_fd, n;
	uint64_t last_death = 0;

	/*
	 * Tesseract (OCR) runs OpenMP teams of one thread per core, which many
	 * workers on few cores only make fight (a console region reads twice as
	 * fast with one thread on two cores). OpenMP reads OMP_THREAD_LIMIT when
	 * the program is loaded, so it is set here and the program started again.
	 */
	if (getenv("OMP_THREAD_LIMIT") == NULL) {
		char self[PATH_MAX];
		ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);

		setenv("OMP_THREAD_LIMIT", "1", 1);
		if (len > 0) {
			self[len] = '\0';
			execv(self, argv);	/* its own path, so ps shows its own name */
		}
		/* Not restarted: it works, only OCR is slower. */
	}
	log_init("fcgi");
	if (conf_load() < 0)
		return 1;
	listen = conf_str(CONF_FCGI_LISTEN);
	n = (int)conf_int(CONF_WORKERS);
	db_configure(conf_str(CONF_DATABASE_URL), conf_str(CONF_VAR_DIR), "kvmgate-fcgi");

	if (FCGX_Init() != 0) {
		log_errx("FCGX_Init failed");
		return 1;
	}
	if (is_unix_path(listen)) {
		struct stat st;
		if (lstat(listen, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(listen);
	}
	umask(007);
	fd = FCGX_OpenSocket(listen, BACKLOG);
	if (fd < 0) {
		log_err("cannot listen on %s", listen);
		return 1;
	}
	if ((audit_fd = appender_listen()) < 0)
		return 1;
	metrics_init();
	authcache_init();
	mcp_streams_init(n);
	metrics_set_workers(n);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	/* pids[n] is the audit appender, restarted like a worker. */
	pids = xcalloc((size_t)n + 1, sizeof *pids);
	pids[n] = spawn(fd, audit_fd);
	for (int i = 0; i < n; i++)
		pids[i] = spawn(fd, -1);
	log_info("listening on %s with %d workers", listen, n);

	while (!stop) {
		int status, i;
		pid_t pid = waitpid(-1, &status, 0);

		if (pid < 0) {
			if (errno != EINTR)
				usleep(100000);
			continue;
		}
		for (i = 0; i <= n && pids[i] != pid; i++)
			;
		if (i > n || stop)
			continue;
		if (WIFSIGNALED(status))
			log_warnx("worker %d killed by signal %d; replacing it", (int)pid,
			          WTERMSIG(status));
		else
			log_warnx("worker %d exited with status %d; replacing it", (int)pid,
			          WEXITSTATUS(status));
		metrics_worker_restarted();
		mcp_streams_release(pid);
		/* A worker that dies at once, again and again, must not spin the CPU. */
		if (now_mono_ns() - last_death < 100000000ull)
			usleep(100000);
		last_death = now_mono_ns();
		pids[i] = spawn(fd, i == n ? audit_fd : -1);
	}
	log_info("stopping %d workers", n);
	stop_workers(pids, n + 1);
	if (is_unix_path(listen))
		unlink(listen);
	unlink(conf_str(CONF_AUDIT_SOCKET));
	free(pids);
	log_info("stopped");
	return 0;
}
