/*
 * check_capture_nanokvm.c - the NanoKVM driver (capture/drv_nanokvm.c): the
 * password recipe's known answer, then real sessions against the NanoKVM
 * simulator (build/<mode>/tests/sim-nanokvm, next to this program) on the
 * capture event loop: firmware without MJPEG Content-Length (2.2.0), with
 * it (2.4.x), cookie-only login (head); a wrong password; a device with
 * no HDMI signal (the session stays up); a device that goes away and comes back;
 * a scripted device for the one re-login on 401.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture.h"
#include "check_run.h"

#define PASSWORD "s3cret +/= \"pw\""

static char seg[64];
static pid_t sim_pid;
static int sim_port;

/* A TCP port nothing listens on now. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Starts the simulator on sim_port and waits for its "listening on" line. */
static void sim_start_args(const char *firmware, const char *extra)
{
	char self[PATH_MAX], sim[PATH_MAX + 16], port[16], line[128];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	int p[2];
	FILE *f;

	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	snprintf(sim, sizeof sim, "%s/sim-nanokvm", dirname(self));
	snprintf(port, sizeof port, "%d", sim_port);
	ck_assert_int_eq(pipe(p), 0);
	sim_pid = fork();
	ck_assert_int_ge(sim_pid, 0);
	if (sim_pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(p[1], 1);
		dup2(null, 2);
		close(p[0]);
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execl(sim, sim, "--port", port, "--firmware", firmware, "--password", PASSWORD,
		      "--width", "640", "--height", "480", "--time-scale", "0.05", "--fps", "10",
		      extra, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	ck_assert_msg(strstr(line, "listening on 127.0.0.1:") == line, "simulator said %s", line);
	fclose(f);
}

static void sim_start(const char *firmware)
{
	sim_start_args(firmware, NULL);
}

static void sim_stop(void)
{
	if (sim_pid > 0) {
		kill(sim_pid, SIGTERM);
		waitpid(sim_pid, NULL, 0);
		sim_pid = 0;
	}
}

static void setup(void)
{
	snprintf(seg, sizeof seg, "/kvmgate-check-nanokvm-%ld", (long)getpid());
	ck_assert_int_eq(shm_create(seg, 4, 1 << 20, &cap.frames), 0);
	cap.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(cap.epoll_fd, 0);
	ck_assert_int_eq(http_init(), 0);
	session_timing.frame_timeout_ns = 3000000000ull;
	sim_port = free_port();
}

static void teardown(void)
{
	session_close_all();
	http_cleanup();
	watch_reap();
	shm_close(cap.frames);
	cap.frames = NULL;
	close(cap.epoll_fd);
	sim_stop();
}

static struct device_cfg cfg(const char *password)
{
	struct device_cfg c = { .id = 77 };

	snprintf(c.kind, sizeof c.kind, "nanokvm");
	snprintf(c.url, sizeof c.url, "http://127.0.0.1:%d/", sim_port);
	snprintf(c.username, sizeof c.username, "admin");
	snprintf(c.password, sizeof c.password, "%s", password);
	return c;
}

/* Runs the loop until s reaches state (true) or ms pass (false). */
static bool run_until(struct session *s, enum session_state state, int ms)
{
	uint64_t end = now_mono_ns() + (uint64_t)ms * 1000000u;

	while (s->state != state && now_mono_ns() < end)
		ck_assert_int_ge(loop_once(20), 0);
	return s->state == state;
}

/* The latest frame of the session: a JPEG of the simulator's size. */
static void expect_frame(struct session *s)
{
	static uint8_t buf[1 << 20];
	struct shm_frame_info fi;
	uint32_t w, h;

	ck_assert_int_eq(shm_wait_newer(cap.frames, s->slot, 0, 0), 1);
	ck_assert_int_eq(shm_read(cap.frames, s->slot, &fi, buf, sizeof buf), 0);
	ck_assert_uint_eq(fi.device_id, 77);
	ck_assert_int_eq(fi.format, SHM_FMT_JPEG);
	ck_assert_uint_eq(fi.width, 640);
	ck_assert_uint_eq(fi.height, 480);
	ck_assert_int_eq(jpeg_size(buf, fi.len, &w, &h), 0);
	ck_assert(buf[fi.len - 2] == 0xff && buf[fi.len - 1] == 0xd9);
}

START_TEST(test_password_known_answer)
{
	static const uint8_t salt[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	char out[128], small[20];

	ck_assert_int_eq(nanokvm_encrypt_password("admin", salt, out, sizeof out), 0);
	ck_assert_str_eq(out, "U2FsdGVkX18AAQIDBAUGB7RQW%2Bo4DxJ1XwZq5sFeCig%3D");
	ck_assert_int_eq(nanokvm_encrypt_password("admin", salt, small, sizeof small), -1);
	/* A random salt: never a bare +, / or = on the wire. */
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(nanokvm_encrypt_password(PASSWORD, NULL, out, sizeof out), 0);
		ck_assert_ptr_null(strpbrk(out, "+/="));
	}
}
END_TEST

static const struct { const char *firmware, *app; } firmwares[] = {
	{ "2.2.0", "2.2.0" },	/* MJPEG parts without Content-Length */
	{ "2.4.x", "2.4.3" },	/* with Content-Length; data.token */
	{ "head", "2.5.1" },	/* login by Set-Cookie only */
};

START_TEST(test_streams)
{
	struct device_cfg c = cfg(PASSWORD);
	struct session *s;
	uint64_t seq;

	sim_start(firmwares[_i].firmware);
	s = session_ensure(&c);
	ck_assert_msg(run_until(s, SS_STREAMING, 8000), "state %s, error %s: %s",
	              session_state_name(s->state), session_error_name(s->last_error), s->last_why);
	ck_assert_str_eq(s->firmware, firmwares[_i].app);
	expect_frame(s);
	seq = shm_slot_seq(cap.frames, s->slot);
	ck_assert(run_until(s, SS_IDLE, 500) == false);	/* still streaming: frames keep coming */
	ck_assert_uint_gt(shm_slot_seq(cap.frames, s->slot), seq);
}
END_TEST

START_TEST(test_wrong_password)
{
	struct device_cfg c = cfg("not it");
	struct session *s;

	sim_start("2.4.x");
	s = session_ensure(&c);
	ck_assert(run_until(s, SS_BACKING_OFF, 5000));
	ck_assert_int_eq(s->last_error, SE_AUTH);
	ck_assert_str_eq(s->last_why, "login refused: -2 invalid username or password");
	/* It keeps trying, with a growing backoff, without crashing. */
	ck_assert(run_until(s, SS_CONNECTING, 2000));
	ck_assert(run_until(s, SS_BACKING_OFF, 5000));
	ck_assert_uint_eq(s->attempts, 2);
	ck_assert_int_eq(shm_wait_newer(cap.frames, s->slot, 0, 0), 0);
}
END_TEST

/* No HDMI signal: the stream is accepted and stays silent (§6.1); the frame deadline ends it. */
/* §6.1: no HDMI signal (the device says so on /api/ws) is no failure: the
 * session stays up, past several frame timeouts, without reconnecting. */
START_TEST(test_no_signal_stays_up)
{
	struct device_cfg c = cfg(PASSWORD);
	struct session *s;

	session_timing.frame_timeout_ns = 500000000ull;
	sim_start_args("2.4.x", "--no-hdmi");
	s = session_ensure(&c);
	ck_assert(run_until(s, SS_STREAMING, 3000));
	ck_assert_int_eq(s->last_error, SE_NO_SIGNAL);
	ck_assert(!run_until(s, SS_BACKING_OFF, 2500));
	ck_assert_int_eq(s->state, SS_STREAMING);
	ck_assert_int_eq(s->last_error, SE_NO_SIGNAL);
	ck_assert_uint_eq(s->attempts, 0);
	ck_assert_uint_eq(shm_slot_seq(cap.frames, s->slot), 0);
}
END_TEST

START_TEST(test_device_goes_away_and_back)
{
	struct device_cfg c = cfg(PASSWORD);
	struct session *s;
	uint64_t seq;

	sim_start("2.5.0");
	s = session_ensure(&c);
	ck_assert(run_until(s, SS_STREAMING, 8000));
	sim_stop();
	ck_assert(run_until(s, SS_BACKING_OFF, 4000));
	ck_assert_int_eq(s->last_error, SE_OFFLINE);
	seq = shm_slot_seq(cap.frames, s->slot);
	/* Refused connections while it is away, then recovery after a restart. */
	for (int i = 0; i < 40; i++)
		ck_assert_int_ge(loop_once(25), 0);
	ck_assert_uint_ge(s->attempts, 2);
	sim_start("2.5.0");
	ck_assert_msg(run_until(s, SS_STREAMING, 10000), "state %s: %s",
	              session_state_name(s->state), s->last_why);
	ck_assert_uint_gt(shm_slot_seq(cap.frames, s->slot), seq);
	ck_assert_uint_eq(s->attempts, 0);
	expect_frame(s);
}
END_TEST

/*
 * A scripted device on a plain socket: answers the n-th request with
 * script[n] (closing each connection) and records the request lines and
 * cookies it saw.
 */
static const char *const relogin_script[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 43\r\n\r\n{\"code\":0,\"msg\":\"ok\",\"data\":{\"token\":\"t1\"}}",
	"HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\n\"unauthorized\"",
	"HTTP/1.1 200 OK\r\nContent-Length: 43\r\n\r\n{\"code\":0,\"msg\":\"ok\",\"data\":{\"token\":\"t2\"}}",
	"HTTP/1.1 200 OK\r\nContent-Length: 52\r\n\r\n{\"code\":0,\"msg\":\"ok\",\"data\":{\"application\":\"2.4.3\"}}",
	/* After info, in any order: the stream, frame detection off, /api/ws. */
	"HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\n\"unauthorized\"",
	"HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\n\"unauthorized\"",
	"HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\n\"unauthorized\"",
};
static char seen[8][160];

static void *scripted_device(void *arg)
{
	int fd = (int)(intptr_t)arg;

	for (size_t i = 0; i < sizeof relogin_script / sizeof relogin_script[0]; i++) {
		char req[8192], *cookie;
		size_t n = 0;
		ssize_t r;
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			break;
		/* Headers, and a body of at most a few hundred bytes: one read after them suffices. */
		while (n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
			n += (size_t)r;
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n") != NULL && (strncmp(req, "POST", 4) != 0 ||
			    strstr(strstr(req, "\r\n\r\n"), "}") != NULL))
				break;
		}
		req[n] = '\0';
		cookie = strstr(req, "nano-kvm-token=");
		snprintf(seen[i], sizeof seen[i], "%.*s %.20s", (int)strcspn(req, "\r"), req,
		         cookie != NULL ? cookie : "-");
		seen[i][strcspn(seen[i], "\r")] = '\0';
		(void)!write(c, relogin_script[i], strlen(relogin_script[i]));
		close(c);
	}
	return NULL;
}

/* A 401 after login: one new login and the step again; a second 401 in a row is an auth failure. */
START_TEST(test_relogin_once_on_401)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct device_cfg c;
	struct session *s;
	pthread_t th;

	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	sim_port = ntohs(a.sin_port);
	c = cfg(PASSWORD);
	ck_assert_int_eq(pthread_create(&th, NULL, scripted_device, (void *)(intptr_t)fd), 0);
	s = session_ensure(&c);
	ck_assert(run_until(s, SS_BACKING_OFF, 5000));
	shutdown(fd, SHUT_RDWR);	/* wakes the device's accept if the script was cut short */
	pthread_join(th, NULL);
	close(fd);
	ck_assert_int_eq(s->last_error, SE_AUTH);
	ck_assert_str_eq(s->last_why, "the device keeps refusing the token (401)");
	ck_assert_str_eq(s->firmware, "2.4.3");
	ck_assert_str_eq(seen[0], "POST /api/auth/login HTTP/1.1 -");
	ck_assert_str_eq(seen[1], "GET /api/vm/info HTTP/1.1 nano-kvm-token=t1");
	ck_assert_str_eq(seen[2], "POST /api/auth/login HTTP/1.1 -");
	ck_assert_str_eq(seen[3], "GET /api/vm/info HTTP/1.1 nano-kvm-token=t2");
	/* The step after info is refused: no third login, an authentication failure. */
	ck_assert(strcmp(seen[4], "GET /api/stream/mjpeg HTTP/1.1 nano-kvm-token=t2") == 0 ||
	          strcmp(seen[5], "GET /api/stream/mjpeg HTTP/1.1 nano-kvm-token=t2") == 0 ||
	          strcmp(seen[6], "GET /api/stream/mjpeg HTTP/1.1 nano-kvm-token=t2") == 0);
	for (int i = 4; i < 7; i++)
		ck_assert(strstr(seen[i], "/api/auth/login") == NULL);
}
END_TEST

/* §5.3: pixel centres map to 1..32767 and the device's inverse lands on the same pixel. */
static const struct {
	const char *url, *base;
	bool insecure;
	const char *why;	/* NULL: accepted */
} url_cases[] = {
	{ "http://10.0.0.7", "http://10.0.0.7", false, NULL },
	{ "https://kvm.lab:8443/", "https://kvm.lab:8443", false, NULL },
	{ "https://kvm.lab/?tls=insecure", "https://kvm.lab", true, NULL },
	{ "https://kvm.lab?tls=verify", "https://kvm.lab", false, NULL },
	{ "https://kvm.lab?tls=maybe", NULL, false, "tls=maybe: use tls=verify or tls=insecure" },
	{ "https://kvm.lab?tls=insecure&tls=verify", NULL, false, "repeated URL option 'tls=verify' (known: tls=verify|insecure)" },
	{ "https://kvm.lab?jpeg=8", NULL, false, "unknown URL option 'jpeg=8' (known: tls=verify|insecure)" },
	{ "vnc://kvm.lab", NULL, false, "a nanokvm device URL starts with http:// or https://" },
};

START_TEST(test_parse_url)
{
	char base[SESSION_URL_MAX + 1], why[160] = "";
	bool insecure = true;
	int rc = nanokvm_parse_url(url_cases[_i].url, base, sizeof base, &insecure, why, sizeof why);

	if (url_cases[_i].why == NULL) {
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(base, url_cases[_i].base);
		ck_assert(insecure == url_cases[_i].insecure);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(why, url_cases[_i].why);
	}
}
END_TEST

START_TEST(test_pointer_mapping)
{
	static const struct { int px; uint32_t size; uint16_t want; } cases[] = {
		{ 0, 1920, 9 }, { 1919, 1920, 32759 }, { 960, 1920, 16393 }, { 0, 800, 21 },
		{ 799, 800, 32747 }, { -5, 800, 21 }, { 5000, 800, 32747 }, { 0, 1, 16384 },
		{ 0, 0, 1 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(nanokvm_abs(cases[i].px, cases[i].size) == cases[i].want, "case %zu: %u", i,
		              nanokvm_abs(cases[i].px, cases[i].size));
	/* Every pixel of a few sizes maps back to itself with floor((v-1)*size/32767). */
	for (uint32_t size = 600; size <= 4320; size += 1240)
		for (int px = 0; px < (int)size; px++) {
			uint16_t v = nanokvm_abs(px, size);
			ck_assert(v >= 1 && v <= 32767);
			ck_assert_int_eq((int)((long long)(v - 1) * size / 32767), px);
		}
}
END_TEST

/* §7: at most 1024 bytes; 2.5.0+ also 833 runes; UTF-8 sequences stay whole. */
START_TEST(test_paste_chunks)
{
	char text[4000];
	size_t n;

	memset(text, 'a', sizeof text);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 0, 20500), 0);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 5, 20403), 5);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 2000, 20301), 1024);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 2000, 20403), 1024);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 2000, 20500), 833);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 833, 20501), 833);
	/* 2-byte runes: 512 fit 1024 bytes on 2.4; 2.5 stops at 512 too (bytes before runes). */
	for (int i = 0; i < 2000; i += 2)
		memcpy(text + i, "\xc3\xa9", 2);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 2000, 20403), 1024);
	ck_assert_uint_eq(nanokvm_paste_chunk(text, 2000, 20500), 1024);
	/* 3-byte runes: 341 of them (1023 bytes), never a split sequence. */
	for (int i = 0; i < 3000; i += 3)
		memcpy(text + i, "\xe2\x82\xac", 3);
	n = nanokvm_paste_chunk(text, 3000, 20403);
	ck_assert_uint_eq(n, 1023);
	/* Splitting a whole text: the pieces add up, each within the limit. */
	memset(text, 'b', sizeof text);
	n = 0;
	for (int pastes = 1;; pastes++) {
		size_t k = nanokvm_paste_chunk(text + n, sizeof text - n, 20500);
		ck_assert(k > 0 && k <= 833);
		n += k;
		if (n == sizeof text) {
			ck_assert_int_eq(pastes, 5);
			break;
		}
	}
}
END_TEST

/* §7, §8: layouts per firmware; an unknown one is refused (the device would type US). */
START_TEST(test_langue)
{
	const char *l = NULL;
	char why[160];

	ck_assert_int_eq(nanokvm_langue("", 20201, &l, why, sizeof why), 0);
	ck_assert_str_eq(l, "");
	ck_assert_int_eq(nanokvm_langue("US", 20500, &l, why, sizeof why), 0);
	ck_assert_str_eq(l, "");
	ck_assert_int_eq(nanokvm_langue("de", 20300, &l, why, sizeof why), 0);
	ck_assert_str_eq(l, "de");
	ck_assert_int_eq(nanokvm_langue("de", 20209, &l, why, sizeof why), -1);
	ck_assert_str_eq(why, "layout de needs NanoKVM firmware 2.3.0 or later (this one would type US keys)");
	ck_assert_int_eq(nanokvm_langue("fr", 20401, &l, why, sizeof why), 0);
	ck_assert_int_eq(nanokvm_langue("fr", 20400, &l, why, sizeof why), -1);
	ck_assert_int_eq(nanokvm_langue("es", 20501, &l, why, sizeof why), -1);
	ck_assert_str_eq(why, "layout es is not one NanoKVM pastes with (us, de, fr)");
	ck_assert_int_eq(nanokvm_version("2.5.0"), 20500);
	ck_assert_int_eq(nanokvm_version("2.3.1"), 20301);
	ck_assert_int_eq(nanokvm_version("2.3"), 0);
	ck_assert_int_eq(nanokvm_version("2.3.1x"), 0);
	ck_assert_int_eq(nanokvm_version(""), 0);
}
END_TEST

/* The next code point of a well-formed UTF-8 string (1 to 3 bytes). */
static uint32_t next_cp(const char *s, size_t *i)
{
	unsigned char c = (unsigned char)s[*i];
	size_t k = c < 0x80 ? 1 : c >= 0xe0 ? 3 : 2;
	uint32_t cp = k == 1 ? c : c & (k == 3 ? 0x0f : 0x1f);

	for (size_t j = 1; j < k; j++)
		cp = cp << 6 | ((unsigned char)s[*i + j] & 0x3f);
	*i += k;
	return cp;
}

/*
 * §7: the characters paste types per layout, and nothing more: each one of
 * the device's de and fr tables has a key (checked against a few known
 * strokes), and characters the device would skip have none.
 */
START_TEST(test_layout_tables)
{
	static const char de[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                         " \n\t!\"§$%&/()=ß?\\üÜ+*~#'öÖäÄ°,;.:-_<>|@{[]}€";
	static const char fr[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                         " \n\t&é\"'(-è_çà)=+$*ù%,?;.:/!<>~#{[|`\\^@]}€";
	static const struct { const char *layout; uint32_t cp; uint8_t mods, usage; } strokes[] = {
		{ "de", 'z', 0, 0x1c }, { "de", 'Y', KEYMOD_LSHIFT, 0x1d }, { "de", '@', KEYMOD_RALT, 0x14 },
		{ "de", '{', KEYMOD_RALT, 0x24 }, { "de", '}', KEYMOD_RALT, 0x27 },
		{ "de", '|', KEYMOD_RALT, 0x64 }, { "de", '\\', KEYMOD_RALT, 0x2d },
		{ "de", '~', KEYMOD_RALT, 0x30 }, { "de", 0xe4, 0, 0x34 }, { "de", 0x20ac, KEYMOD_RALT, 0x08 },
		{ "fr", 'a', 0, 0x14 }, { "fr", 'q', 0, 0x04 }, { "fr", 'w', 0, 0x1d }, { "fr", 'z', 0, 0x1a },
		{ "fr", 'M', KEYMOD_LSHIFT, 0x33 }, { "fr", '1', KEYMOD_LSHIFT, 0x1e },
		{ "fr", '0', KEYMOD_LSHIFT, 0x27 }, { "fr", 0xe9, 0, 0x1f }, { "fr", '@', KEYMOD_RALT, 0x27 },
		{ "fr", ']', KEYMOD_RALT, 0x2d }, { "fr", ',', 0, 0x10 },
	};
	/* Characters the device's tables lack: skipped by paste, so refused here. */
	static const struct { const char *layout; uint32_t cp; } none[] = {
		{ "de", 0xc5 }, { "de", '^' }, { "de", '`' }, { "de", 0xb4 }, { "de", 0xe9 },
		{ "de", 0xb2 }, { "de", 0xff }, { "de", 0x7f }, { "de", '\b' }, { "de", 0x1f600 },
		{ "fr", 0xa3 }, { "fr", 0xb5 }, { "fr", 0xa7 }, { "fr", 0xb0 }, { "fr", 0xb2 },
		{ "fr", 0xe4 }, { "fr", 0xea }, { "fr", 0xdf }, { "fr", 0xc5 }, { "us", 0xe9 },
	};
	const char *sets[2][2] = { { "de", de }, { "fr", fr } };
	struct keystroke ks;

	for (size_t t = 0; t < 2; t++) {
		const char *s = sets[t][1];
		size_t len = strlen(s), i = 0, n = 0;
		bool used[2][0x66][2] = { { { false } } };	/* [altgr][usage][shift]: one character per key */

		while (i < len) {
			size_t at = i;
			uint32_t cp = next_cp(s, &i);
			ck_assert_msg(keys_for_char(cp, sets[t][0], &ks) == 0, "%s: no key for \"%.*s\"",
			              sets[t][0], (int)(i - at), s + at);
			ck_assert_uint_le(ks.usage, 0x65);
			ck_assert_msg(!used[!!(ks.mods & KEYMOD_RALT)][ks.usage][!!(ks.mods & KEYMOD_LSHIFT)],
			              "%s: \"%.*s\" on a key already taken", sets[t][0], (int)(i - at), s + at);
			used[!!(ks.mods & KEYMOD_RALT)][ks.usage][!!(ks.mods & KEYMOD_LSHIFT)] = true;
			n++;
		}
		/* Every code point the table holds is in the set above: nothing more. */
		for (uint32_t cp = 0; cp < 0x2100; cp++) {
			bool listed = false;
			for (size_t j = 0; j < len && !listed;)
				listed = next_cp(s, &j) == cp;
			if (!listed && cp != '\r')
				ck_assert_msg(keys_for_char(cp, sets[t][0], &ks) == -1,
				              "%s: U+%04X has a key but is not in the device's table", sets[t][0], cp);
		}
		ck_assert_uint_gt(n, 90);
	}
	for (size_t i = 0; i < ARRAY_LEN(strokes); i++) {
		ck_assert_int_eq(keys_for_char(strokes[i].cp, strokes[i].layout, &ks), 0);
		ck_assert_msg(ks.mods == strokes[i].mods && ks.usage == strokes[i].usage,
		              "%s U+%04X: %02x/%02x, want %02x/%02x", strokes[i].layout, strokes[i].cp,
		              ks.mods, ks.usage, strokes[i].mods, strokes[i].usage);
	}
	for (size_t i = 0; i < ARRAY_LEN(none); i++)
		ck_assert_msg(keys_for_char(none[i].cp, none[i].layout, &ks) == -1, "%s U+%04X has a key",
		              none[i].layout, none[i].cp);
}
END_TEST

/* §4.1, §4.2, §5: keyboard and pointer messages, binary from 2.3.2, JSON before. */
START_TEST(test_reports)
{
	uint8_t m[64];
	bool bin;
	size_t n;

	/* Ctrl+Alt+Del, then release (§5.1). */
	n = nanokvm_kbd_msg(20302, KEYMOD_LCTRL | KEYMOD_LALT, 0x4c, m, sizeof m, &bin);
	ck_assert(bin);
	ck_assert_uint_eq(n, 9);
	ck_assert_mem_eq(m, "\x01\x05\x00\x4c\x00\x00\x00\x00\x00", 9);
	n = nanokvm_kbd_msg(20500, 0, 0, m, sizeof m, &bin);
	ck_assert_mem_eq(m, "\x01\x00\x00\x00\x00\x00\x00\x00\x00", 9);
	n = nanokvm_kbd_msg(20500, KEYMOD_LMETA, 0, m, sizeof m, &bin);
	ck_assert_uint_eq(n, 9);	/* binary may hold a modifier alone */
	/* JSON: [1, keycode, ctrl, shift, alt, meta] with HID bit values. */
	n = nanokvm_kbd_msg(20301, KEYMOD_RCTRL | KEYMOD_LSHIFT | KEYMOD_RALT | KEYMOD_RMETA, 0x04, m,
	                    sizeof m, &bin);
	ck_assert(!bin);
	ck_assert_str_eq((char *)m, "[1,4,16,2,64,128]");
	ck_assert_uint_eq(n, strlen("[1,4,16,2,64,128]"));
	nanokvm_kbd_msg(20301, 0, 0, m, sizeof m, &bin);
	ck_assert_str_eq((char *)m, "[1,0,0,0,0,0]");
	ck_assert_uint_eq(nanokvm_kbd_msg(20301, KEYMOD_LMETA, 0, m, sizeof m, &bin), 0);

	/* Absolute pointer, 6 bytes after the type (§5.3). */
	n = nanokvm_mouse_msg(20500, NKM_MOVE, 0, 0x1234, 0x0102, 0, m, sizeof m, &bin);
	ck_assert(bin);
	ck_assert_uint_eq(n, 7);
	ck_assert_mem_eq(m, "\x02\x00\x34\x12\x02\x01\x00", 7);
	nanokvm_mouse_msg(20500, NKM_BUTTONS, 4, 1, 32767, 0, m, sizeof m, &bin);
	ck_assert_mem_eq(m, "\x02\x04\x01\x00\xff\x7f\x00", 7);
	nanokvm_mouse_msg(20500, NKM_WHEEL, 1, 10, 20, -1, m, sizeof m, &bin);
	ck_assert_mem_eq(m, "\x02\x00\x0a\x00\x14\x00\xff", 7);	/* down: wheel -1 */
	nanokvm_mouse_msg(20500, NKM_WHEEL, 0, 10, 20, 1, m, sizeof m, &bin);
	ck_assert_int_eq(m[6], 1);
	/* JSON mouse [2, event, button, x, y]: 0 up, 1 down, 2 absolute, 4 scroll. */
	nanokvm_mouse_msg(20301, NKM_MOVE, 0, 100, 200, 0, m, sizeof m, &bin);
	ck_assert(!bin);
	ck_assert_str_eq((char *)m, "[2,2,0,100,200]");
	nanokvm_mouse_msg(20301, NKM_BUTTONS, 2, 100, 200, 0, m, sizeof m, &bin);
	ck_assert_str_eq((char *)m, "[2,1,2,0,0]");
	nanokvm_mouse_msg(20301, NKM_BUTTONS, 0, 100, 200, 0, m, sizeof m, &bin);
	ck_assert_str_eq((char *)m, "[2,0,0,0,0]");
	/* Scroll down: 2.3.1 wants y < 0, 2.2.x y > 0 (§4.2). */
	nanokvm_mouse_msg(20301, NKM_WHEEL, 0, 0, 0, -1, m, sizeof m, &bin);
	ck_assert_str_eq((char *)m, "[2,4,0,0,-1]");
	nanokvm_mouse_msg(20209, NKM_WHEEL, 0, 0, 0, -1, m, sizeof m, &bin);
	ck_assert_str_eq((char *)m, "[2,4,0,0,1]");
	nanokvm_mouse_msg(20209, NKM_WHEEL, 0, 0, 0, 1, m, sizeof m, &bin);
	ck_assert_str_eq((char *)m, "[2,4,0,0,-1]");
}
END_TEST

/* RFC 6455 framing of ws.c: the client's masked headers, the server's frames, malformed ones. */
START_TEST(test_ws_frames)
{
	static const uint8_t mask[4] = { 1, 2, 3, 4 };
	uint8_t h[14], big[70000] = { 0 };
	struct ws_frame f;
	char acc[29];

	ck_assert_uint_eq(ws_frame_header(h, 2, 9, mask), 6);
	ck_assert_mem_eq(h, "\x82\x89\x01\x02\x03\x04", 6);
	ck_assert_uint_eq(ws_frame_header(h, 1, 300, mask), 8);
	ck_assert_mem_eq(h, "\x81\xfe\x01\x2c", 4);
	ck_assert_uint_eq(ws_frame_header(h, 2, 70000, mask), 14);
	ck_assert_mem_eq(h, "\x82\xff\x00\x00\x00\x00\x00\x01\x11\x70", 10);
	/* A server text frame, whole and cut short. */
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x81\x03" "abc", 5, &f), 2);
	ck_assert(f.fin && !f.masked && f.opcode == 1 && f.len == 3);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x81\x03" "ab", 4, &f), 0);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x81", 1, &f), 0);
	big[0] = 0x82;
	big[1] = 126;
	big[2] = 0x01;
	big[3] = 0x00;
	ck_assert_int_eq(ws_frame_parse(big, 4 + 256, &f), 4);
	ck_assert_int_eq(ws_frame_parse(big, 4 + 255, &f), 0);
	/* Close with a code; a fragment without FIN. */
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x88\x02\x11\x31", 4, &f), 2);
	ck_assert(f.opcode == 8 && f.len == 2);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x02\x01x", 3, &f), 2);
	ck_assert(!f.fin);
	/* Malformed: reserved bits, unknown opcode, long or fragmented control frame, 2^63. */
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\xc1\x00", 2, &f), -1);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x83\x00", 2, &f), -1);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x89\x7e\x00\x80", 4, &f), -1);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x09\x00", 2, &f), -1);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x82\x7f\x80\0\0\0\0\0\0\0", 10, &f), -1);
	ck_assert_int_eq(ws_frame_parse((const uint8_t *)"\x82\x7f\0\0\0\0\x10\0\0\0", 10, &f), -1);
	/* RFC 6455 section 1.3's example. */
	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
	ck_assert_str_eq(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

static Suite *nanokvm_suite(void)
{
	Suite *s = suite_create("capture_nanokvm");
	TCase *tc = tcase_create("nanokvm");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_password_known_answer);
	tcase_add_loop_test(tc, test_parse_url, 0, (int)(sizeof url_cases / sizeof url_cases[0]));
	tcase_add_test(tc, test_pointer_mapping);
	tcase_add_test(tc, test_paste_chunks);
	tcase_add_test(tc, test_langue);
	tcase_add_test(tc, test_layout_tables);
	tcase_add_test(tc, test_reports);
	tcase_add_test(tc, test_ws_frames);
	tcase_add_loop_test(tc, test_streams, 0, (int)(sizeof firmwares / sizeof firmwares[0]));
	tcase_add_test(tc, test_wrong_password);
	tcase_add_test(tc, test_no_signal_stays_up);
	tcase_add_test(tc, test_relogin_once_on_401);
	tcase_add_test(tc, test_device_goes_away_and_back);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(nanokvm_suite());
}
