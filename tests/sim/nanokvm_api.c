/*
 * nanokvm_api.c - the NanoKVM REST API (sections 1-3, 7, 10 of
 * protocols/nanokvm.md) as a route table, plus the simulator-only /sim/ hook.
 * Handlers get the parsed JSON body and fill an api_resp; nanokvm.c sends it,
 * after the device's delay when there is one.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* R_ADMIN: on head, an account of the role "user" gets 403 "forbidden" (RequireRole). */
enum { R_NOAUTH = 1, R_HEAD_ONLY = 2, R_ADMIN = 4 };

typedef void route_fn(const struct api_req *rq, struct json_object *body, struct api_resp *r);

struct route {
	const char *method, *path;
	int since;		/* application version, VER(); older answer 404 */
	unsigned flags;
	route_fn *fn;
};

/* ---- envelope (section 1) */

static void reply_json(struct api_resp *r, int status, struct json_object *o)
{
	r->status = status;
	r->ctype = "application/json; charset=utf-8";
	buf_reset(&r->body);
	buf_puts(&r->body, json_object_to_json_string_ext(o, JSON_FLAGS));
	json_object_put(o);
}

/* {"code":0,"msg":"success","data":data}; takes data (NULL = null). */
static void ok(struct api_resp *r, struct json_object *data)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "code", json_object_new_int(0));
	json_object_object_add(o, "msg", json_object_new_string("success"));
	json_object_object_add(o, "data", data);
	reply_json(r, 200, o);
}

/* A business error: HTTP 200, negative code, data null. */
static void fail(struct api_resp *r, int code, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	json_object_object_add(o, "data", NULL);
	reply_json(r, 200, o);
}

static void plain(struct api_resp *r, int status, const char *ctype, const char *text)
{
	r->status = status;
	r->ctype = ctype;
	buf_reset(&r->body);
	buf_puts(&r->body, text);
}

static void unauthorized(struct api_resp *r)
{
	plain(r, 401, "application/json; charset=utf-8", "\"unauthorized\"");
}

/* Go's decoder: an untagged field matches case-insensitively. */
static struct json_object *field(struct json_object *body, const char *name)
{
	if (body == NULL || !json_object_is_type(body, json_type_object))
		return NULL;
	json_object_object_foreach(body, k, v)
		if (strcasecmp(k, name) == 0)
			return v;
	return NULL;
}

/* A string field; NULL when absent or null, "!" marker via *bad on a wrong type. */
static const char *str_field(struct json_object *body, const char *name, bool *bad)
{
	struct json_object *v = field(body, name);

	if (v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = true;
		return NULL;
	}
	return json_object_get_string(v);
}

static long long int_field(struct json_object *body, const char *name, long long def, bool *bad)
{
	struct json_object *v = field(body, name);

	if (v == NULL)
		return def;
	if (!json_object_is_type(v, json_type_int)) {
		*bad = true;
		return def;
	}
	return json_object_get_int64(v);
}

static bool bool_field(struct json_object *body, const char *name, bool def, bool *bad)
{
	struct json_object *v = field(body, name);

	if (v == NULL)
		return def;
	if (!json_object_is_type(v, json_type_boolean)) {
		*bad = true;
		return def;
	}
	return json_object_get_boolean(v);
}

static long long now_s(void)
{
	return (long long)(now_wall_ns() / 1000000000ull);
}

/* ---- authentication (section 2) */

bool api_token_ok(const char *token, struct auth_claims *c)
{
	if (token == NULL || *token == '\0')
		return false;
	if (auth_jwt_check(sim.secret, sizeof sim.secret, token, now_s(), c) < 0)
		return false;
	if (strcmp(c->username, "admin") != 0 &&
	    (sim.user_name == NULL || strcmp(c->username, sim.user_name) != 0))
		return false;
	if (sim.prof.head && (!c->has_version || c->token_version != sim.token_version))
		return false;
	return true;
}

static void h_login(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *user = str_field(body, "username", &bad), *pass = str_field(body, "password", &bad);
	char *plain_pw = NULL, *jwt;
	enum auth_decrypt d;
	long long now = now_s();

	if (bad || user == NULL || pass == NULL || !*user || !*pass) {
		r->delay_ms = 3000;
		fail(r, -1, "invalid parameters");
		return;
	}
	d = auth_decrypt_password(pass, &plain_pw);
	if (d == AUTH_PANIC) {
		plain(r, 500, NULL, "");
		return;
	}
	if (d != AUTH_PLAIN ||
	    !((strcmp(user, "admin") == 0 && strcmp(plain_pw, sim.password) == 0) ||
	      (sim.user_name != NULL && strcmp(user, sim.user_name) == 0 &&
	       strcmp(plain_pw, sim.user_password) == 0))) {
		free(plain_pw);
		r->delay_ms = 2000;
		fail(r, -2, "invalid username or password");
		return;
	}
	free(plain_pw);
	jwt = auth_jwt_make(sim.secret, sizeof sim.secret, user, now, now + sim.token_ttl,
	                    sim.prof.head, sim.token_version);
	if (sim.prof.head) {
		snprintf(r->set_cookie, sizeof r->set_cookie,
		         "nano-kvm-token=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
		         jwt, sim.token_ttl, sim.tls ? "; Secure" : "");
		ok(r, NULL);
	} else {
		struct json_object *d2 = json_object_new_object();
		json_object_object_add(d2, "token", json_object_new_string(jwt));
		ok(r, d2);
	}
	free(jwt);
}

static void logout_all(void)
{
	sim_restart_tokens();
}

static void h_logout(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	if (sim.prof.head) {
		/* Only this user's tokens; its live connections close with 4401. */
		sim.token_version++;
		sim_revoke_connections();
		snprintf(r->set_cookie, sizeof r->set_cookie,
		         "nano-kvm-token=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
	} else {
		/* revokeTokensOnLogout: a new secret, every client's token dies. */
		r->after = logout_all;
	}
	ok(r, NULL);
}

static void h_account(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();
	struct auth_claims c;
	bool admin = !api_token_ok(rq->cookie_token, &c) || strcmp(c.username, "admin") == 0;

	json_object_object_add(d, "username", json_object_new_string(admin ? "admin" : c.username));
	if (sim.prof.head)
		json_object_object_add(d, "role", json_object_new_string(admin ? "admin" : "user"));
	ok(r, d);
}

static void h_password_get(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "isUpdated", json_object_new_boolean(strcmp(sim.password, "admin") != 0));
	ok(r, d);
}

/* ---- vm (section 3) */

static void gpio_done(struct api_resp *r)
{
	if (strcmp(r->sarg, "reset") == 0)
		sim_reset_press();
	else
		sim_power_press(r->arg);
}

static void h_gpio_post(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *type = str_field(body, "type", &bad);
	long long ms = int_field(body, "duration", 0, &bad);

	if (bad || type == NULL || ms < 0) {
		fail(r, -1, bad ? "invalid arguments: json: cannot unmarshal request"
		                : "invalid arguments: Key: 'GpioReq.Type' Error:Field validation for 'Type' failed on the 'required' tag");
		return;
	}
	if (strcmp(type, "power") != 0 && strcmp(type, "reset") != 0) {
		char msg[128];
		snprintf(msg, sizeof msg, "invalid power event: %s", type);
		fail(r, -2, msg);
		return;
	}
	if (ms == 0)
		ms = 800;
	snprintf(r->sarg, sizeof r->sarg, "%s", type);
	r->arg = ms;
	r->delay_ms = (double)ms;
	r->before = gpio_done;
	ok(r, NULL);
}

static void h_gpio_get(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "pwr", json_object_new_boolean(sim.power));
	json_object_object_add(d, "hdd", json_object_new_boolean(false));
	ok(r, d);
}

static void h_hdmi_get(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "enabled", json_object_new_boolean(sim.hdmi_enabled));
	if (sim.prof.head)
		json_object_object_add(d, "signal", json_object_new_boolean(sim_signal()));
	if (sim.prof.ver >= VER(2, 5, 0))
		json_object_object_add(d, "idleTimeout", json_object_new_int64(sim.hdmi_idle_minutes));
	ok(r, d);
}

static void hdmi_reset_done(struct api_resp *r)
{
	sim_status_line();
}

static void h_hdmi_reset(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	/* Capture off, sleep 1 s, on: no frames meanwhile. */
	sim.hdmi_off_until = now_mono_ns() + sim_delay_us(1000) * 1000;
	r->delay_ms = 1000;
	r->before = hdmi_reset_done;
	ok(r, NULL);
}

static void h_hdmi_enable(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	sim.hdmi_enabled = strcmp(rq->path, "/api/vm/hdmi/enable") == 0;
	sim_status_line();
	ok(r, NULL);
}

static void h_hdmi_timeout(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	long long m = int_field(body, "minutes", -1, &bad);

	if (bad || m < 0 || m > 10080) {
		fail(r, -1, "invalid arguments");
		return;
	}
	sim.hdmi_idle_minutes = m;
	ok(r, NULL);
}

static void h_info(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	if (sim.prof.ver <= VER(2, 2, 5)) {
		json_object_object_add(d, "ip", json_object_new_string("127.0.0.1"));
	} else {
		struct json_object *ips = json_object_new_array(), *ip = json_object_new_object();
		json_object_object_add(ip, "name", json_object_new_string("eth0"));
		json_object_object_add(ip, "addr", json_object_new_string("127.0.0.1"));
		json_object_object_add(ip, "version", json_object_new_string("IPv4"));
		json_object_object_add(ip, "type", json_object_new_string("Wired"));
		json_object_array_add(ips, ip);
		json_object_object_add(d, "ips", ips);
	}
	json_object_object_add(d, "mdns", json_object_new_string(""));
	json_object_object_add(d, "image", json_object_new_string("v1.4.2"));
	json_object_object_add(d, "application", json_object_new_string(sim.prof.app));
	json_object_object_add(d, "deviceKey", json_object_new_string("sim0000000000000000000000000000"));
	ok(r, d);
}

static void h_hardware(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "version", json_object_new_string("Beta"));
	ok(r, d);
}

static void h_screen(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *type = str_field(body, "type", &bad);
	long long v = int_field(body, "value", 0, &bad);
	bool good;

	if (bad || type == NULL) {
		fail(r, -1, "invalid arguments");
		return;
	}
	if (strcmp(type, "resolution") == 0)
		good = v == 1080 || v == 720 || v == 600 || v == 480 || v == 0;
	else if (strcmp(type, "quality") == 0)
		good = v == 100 || v == 80 || v == 60 || v == 50 || v > 100;
	else if (strcmp(type, "fps") == 0)
		good = v >= 1 && v <= 60;
	else if (strcmp(type, "gop") == 0)
		good = v >= 1 && v <= 200;
	else if (strcmp(type, "type") == 0)
		good = v == 0 || v == 1;
	else
		good = false;
	if (!good) {
		fail(r, -2, "update screen failed");
		return;
	}
	if (strcmp(type, "quality") == 0 && v <= 100)
		sim.quality = (int)v;
	else if (strcmp(type, "fps") == 0)
		sim.fps = (int)v;
	else if (strcmp(type, "type") == 0)
		snprintf(sim.screen_type, sizeof sim.screen_type, "%s", v ? "h264" : "mjpeg");
	ok(r, NULL);
}

static void reboot_later(void)
{
	sim_restart();
}

static void h_reboot(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	r->after = reboot_later;
	ok(r, NULL);
}

static void h_wol(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *mac = str_field(body, "mac", &bad);

	if (bad || mac == NULL || *mac == '\0') {
		fail(r, -1, "invalid arguments");
		return;
	}
	ok(r, NULL);
}

/* ---- hid (sections 3, 7) */

static struct paste_job *paste_tail(void)
{
	struct paste_job *j = sim.paste;

	while (j && j->next)
		j = j->next;
	return j;
}

static void h_paste(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *content = str_field(body, "content", &bad);
	const char *langue = str_field(body, "langue", &bad);
	size_t len, runes = 0, i;
	struct paste_job *job;
	int ver = sim.prof.ver;

	if (bad || content == NULL || *content == '\0') {
		fail(r, -1, "invalid arguments");
		return;
	}
	len = strlen(content);
	for (i = 0; i < len; runes++)
		(void)hid_utf8_next(content, len, &i);
	if (ver >= VER(2, 5, 0) ? runes > 833 : len > 1024) {
		fail(r, -2, ver < VER(2, 3, 0) ? "" : "content too long");
		return;
	}
	if (ver >= VER(2, 5, 0) && sim.paste != NULL) {
		fail(r, -3, "HID control is busy");
		return;
	}
	if (ver < VER(2, 3, 0) || langue == NULL)
		langue = "";
	job = xcalloc(1, sizeof *job);
	job->reports = xcalloc(runes + 1, sizeof *job->reports);
	job->shift_report = ver < VER(2, 3, 0);
	for (i = 0; i < len;) {
		uint32_t cp = hid_utf8_next(content, len, &i);
		uint8_t mod, usage;
		/* Unmappable runes are skipped silently. */
		if (hid_paste_map(cp, langue, ver, &mod, &usage)) {
			job->reports[job->n][0] = mod;
			job->reports[job->n][1] = usage;
			job->n++;
		}
	}
	job->wsi = rq->wsi;
	if (sim.paste == NULL)
		sim.paste = job;
	else
		paste_tail()->next = job;
	r->paste_wait = true;
	ok(r, NULL);
}

uint64_t api_paste_tick(void)
{
	struct paste_job *j = sim.paste;
	static const uint8_t zero[8];
	uint8_t rep[8] = { 0 };
	int ver = sim.prof.ver;

	if (j == NULL)
		return 0;
	if (j->at < j->n) {
		rep[0] = j->reports[j->at][0];
		if (j->shift_report && rep[0] != 0)
			(void)sim_hid_write(1, rep, 8);
		rep[2] = j->reports[j->at][1];
		j->at++;
		if (!sim_hid_write(1, rep, 8) && ver >= VER(2, 5, 0))
			j->result = -3;
		(void)sim_hid_write(1, zero, 8);
		if (j->result == 0 && j->at < j->n)
			return sim_delay_us(ver < VER(2, 3, 0) ? 50 : 30);
	}
	/* Done (or failed): final release, wake the waiting request. */
	(void)sim_hid_write(1, zero, 8);
	sim.paste = j->next;
	if (j->wsi)
		sim_paste_done(j->wsi, j->result);
	free(j->reports);
	free(j);
	return sim.paste ? sim_delay_us(ver < VER(2, 3, 0) ? 50 : 30) : 0;
}

void api_paste_gone(void *wsi)
{
	for (struct paste_job *j = sim.paste; j; j = j->next)
		if (j->wsi == wsi) {
			j->wsi = NULL;
			/* 2.5.0+: a client disconnect cancels typing. */
			if (sim.prof.ver >= VER(2, 5, 0))
				j->n = j->at;
		}
}

static void h_hid_reset(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	if (sim.paste != NULL) {
		fail(r, -1, "HID control is busy");
		return;
	}
	sim_usb_reenumerate();
	ok(r, NULL);
}

static void h_hid_mode_get(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "mode", json_object_new_string(sim.hid_mode));
	ok(r, d);
}

static void h_hid_mode_post(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *mode = str_field(body, "mode", &bad);

	if (bad || mode == NULL || (strcmp(mode, "normal") != 0 && strcmp(mode, "hid-only") != 0)) {
		fail(r, -2, "invalid mode");
		return;
	}
	if (strcmp(mode, sim.hid_mode) != 0) {
		snprintf(sim.hid_mode, sizeof sim.hid_mode, "%s", mode);
		r->after = reboot_later;
	}
	ok(r, NULL);
}

static void h_hid_leds(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	ok(r, sim_leds_json());
}

/* ---- storage (sections 3, 10) */

/* The device path /data/... as a file under --state-dir, or NULL. */
static char *data_path(const char *dev)
{
	if (sim.state_dir == NULL || strncmp(dev, "/data/", 6) != 0 || strstr(dev, "/../"))
		return NULL;
	return xasprintf("%s/%s", sim.state_dir, dev + 6);
}

static bool image_suffix(const char *name)
{
	size_t n = strlen(name);

	return n >= 4 && (strcasecmp(name + n - 4, ".iso") == 0 || strcasecmp(name + n - 4, ".img") == 0);
}

static void list_images(const char *dir, const char *dev, struct json_object *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char *p, *q;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		q = xasprintf("%s/%s", dev, e->d_name);
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			list_images(p, q, files);
		else if (image_suffix(e->d_name))
			json_object_array_add(files, json_object_new_string(q));
		free(p);
		free(q);
	}
	closedir(d);
}

static void h_images(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *files = json_object_new_array(), *d = json_object_new_object();

	if (sim.state_dir)
		list_images(sim.state_dir, "/data", files);
	if (json_object_array_length(files) == 0) {
		json_object_put(files);
		files = NULL;
	}
	json_object_object_add(d, "files", files);
	ok(r, d);
}

static void h_mounted(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "file", json_object_new_string(sim.iso));
	ok(r, d);
}

static void h_mount(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *file = str_field(body, "file", &bad);
	bool cdrom = sim.prof.ver >= VER(2, 2, 1) && bool_field(body, "cdrom", false, &bad);
	char *path;
	struct stat st;

	if (bad) {
		fail(r, -1, "invalid arguments");
		return;
	}
	if (file == NULL || *file == '\0') {
		/* Unmount: clear the LUN, flags to 0, rebind. */
		sim.iso[0] = '\0';
		sim.cdrom = false;
		sim_usb_reenumerate();
		ok(r, NULL);
		return;
	}
	if (cdrom) {
		/* The LUN is cleared before the flags are written. */
		sim.iso[0] = '\0';
		sim.cdrom = true;
	}
	/* A non-CD mount leaves the ro/cdrom flags as they were. */
	path = data_path(file);
	if (path == NULL || stat(path, &st) != 0 || S_ISDIR(st.st_mode)) {
		free(path);
		sim_status_line();
		fail(r, -2, "mount image failed");
		return;
	}
	free(path);
	snprintf(sim.iso, sizeof sim.iso, "%s", file);
	sim_usb_reenumerate();
	ok(r, NULL);
}

static void h_cdrom(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "cdrom", json_object_new_int(sim.cdrom ? 1 : 0));
	ok(r, d);
}

static void h_delete(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;
	const char *file = str_field(body, "file", &bad);
	char *path;

	if (bad || file == NULL) {
		fail(r, -1, "invalid arguments");
		return;
	}
	if (strncmp(file, "/data", 5) != 0 || !image_suffix(file)) {
		fail(r, -2, "invalid path");
		return;
	}
	path = data_path(file);
	if (path == NULL || unlink(path) != 0) {
		free(path);
		fail(r, -3, "remove failed");
		return;
	}
	free(path);
	ok(r, NULL);
}

static void h_download_status(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	struct json_object *d = json_object_new_object();

	json_object_object_add(d, "status", json_object_new_string("idle"));
	json_object_object_add(d, "file", json_object_new_string(""));
	json_object_object_add(d, "percentage", json_object_new_string(""));
	ok(r, d);
}

/* ---- stream (section 6) */

static void h_detect(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL || field(body, "enabled") == NULL;
	bool on = bool_field(body, "enabled", false, &bad);

	if (bad) {
		fail(r, -1, "invalid arguments");
		return;
	}
	sim.frame_detect = on;
	sim.unchanged_frames = 0;
	ok(r, NULL);
}

static void h_detect_stop(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = false;
	long long s = int_field(body, "duration", 10, &bad);

	if (bad || s < 0) {
		fail(r, -1, "invalid arguments");
		return;
	}
	if (s == 0)
		s = 10;
	sim.detect_stop_until = now_mono_ns() + sim_delay_us((double)s * 1000) * 1000;
	sim.unchanged_frames = 0;
	r->delay_ms = (double)s * 1000;
	ok(r, NULL);
}

static void h_mcp(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	plain(r, 403, "application/json; charset=utf-8", "{\"error\":\"MCP service is disabled\"}");
}

/* ---- the simulator-only hook (not part of any device) */

static void h_sim_state(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	reply_json(r, 200, api_sim_state());
}

static void h_sim_restart(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	r->after = reboot_later;
	reply_json(r, 200, json_object_new_object());
}

/* {"cable":bool} plugs or unplugs the HDMI cable; {"power":bool} sets host power;
 * {"ws_drop_after":N} breaks the next WebSocket after N more input messages;
 * {"new_secret":true} invalidates every token, as a logout does on <= 2.5.0. */
static void h_sim_set(const struct api_req *rq, struct json_object *body, struct api_resp *r)
{
	bool bad = body == NULL;

	sim.hdmi_cable = bool_field(body, "cable", sim.hdmi_cable, &bad);
	sim.power = bool_field(body, "power", sim.power, &bad);
	sim.ws_drop_after = (int)int_field(body, "ws_drop_after", sim.ws_drop_after, &bad);
	if (bool_field(body, "new_secret", false, &bad))
		sim_restart_tokens();
	if (bool_field(body, "clear_typed", false, &bad))
		sim.kbd.typed_len = 0;
	if (bad) {
		plain(r, 400, "text/plain", "want {\"cable\":bool,\"power\":bool,\"ws_drop_after\":int,"
		      "\"new_secret\":bool,\"clear_typed\":bool}\n");
		return;
	}
	sim_status_line();
	reply_json(r, 200, api_sim_state());
}

static const struct route routes[] = {
	{ "POST", "/api/auth/login", 0, R_NOAUTH, h_login },
	{ "POST", "/api/auth/logout", 0, 0, h_logout },
	{ "GET", "/api/auth/account", 0, 0, h_account },
	{ "GET", "/api/auth/password", 0, 0, h_password_get },
	{ "POST", "/api/vm/gpio", 0, 0, h_gpio_post },
	{ "GET", "/api/vm/gpio", 0, 0, h_gpio_get },
	{ "GET", "/api/vm/hdmi", VER(2, 3, 0), 0, h_hdmi_get },
	{ "POST", "/api/vm/hdmi/reset", 0, 0, h_hdmi_reset },
	{ "POST", "/api/vm/hdmi/enable", VER(2, 3, 0), R_ADMIN, h_hdmi_enable },
	{ "POST", "/api/vm/hdmi/disable", VER(2, 3, 0), R_ADMIN, h_hdmi_enable },
	{ "POST", "/api/vm/hdmi/timeout", VER(2, 5, 0), R_ADMIN, h_hdmi_timeout },
	{ "GET", "/api/vm/info", 0, 0, h_info },
	{ "GET", "/api/vm/hardware", 0, 0, h_hardware },
	{ "POST", "/api/vm/screen", 0, 0, h_screen },
	{ "POST", "/api/vm/system/reboot", 0, R_ADMIN, h_reboot },
	{ "POST", "/api/network/wol", 0, 0, h_wol },
	{ "POST", "/api/hid/paste", 0, 0, h_paste },
	{ "POST", "/api/hid/reset", 0, R_ADMIN, h_hid_reset },
	{ "GET", "/api/hid/mode", VER(2, 2, 5), 0, h_hid_mode_get },
	{ "POST", "/api/hid/mode", VER(2, 2, 5), R_ADMIN, h_hid_mode_post },
	{ "GET", "/api/hid/leds", VER(2, 5, 0), 0, h_hid_leds },
	{ "GET", "/api/storage/image", 0, R_ADMIN, h_images },
	{ "GET", "/api/storage/image/mounted", 0, R_ADMIN, h_mounted },
	{ "POST", "/api/storage/image/mount", 0, R_ADMIN, h_mount },
	{ "GET", "/api/storage/cdrom", VER(2, 2, 1), R_ADMIN, h_cdrom },
	{ "POST", "/api/storage/image/delete", VER(2, 3, 0), R_ADMIN, h_delete },
	{ "GET", "/api/download/image/status", VER(2, 1, 6), 0, h_download_status },
	{ "POST", "/api/stream/mjpeg/detect", 0, 0, h_detect },
	{ "POST", "/api/stream/mjpeg/detect/stop", 0, 0, h_detect_stop },
	{ "*", "/api/mcp", VER(2, 5, 0), R_NOAUTH, h_mcp },
	{ "GET", "/sim/state", 0, R_NOAUTH, h_sim_state },
	{ "POST", "/sim/restart", 0, R_NOAUTH, h_sim_restart },
	{ "POST", "/sim/set", 0, R_NOAUTH, h_sim_set },
};

void api_handle(const struct api_req *rq, struct api_resp *r)
{
	const struct route *rt = NULL;
	struct json_object *body = NULL;
	struct auth_claims c;

	for (size_t i = 0; i < ARRAY_LEN(routes); i++)
		if (strcmp(routes[i].path, rq->path) == 0 && sim.prof.ver >= routes[i].since &&
		    (strcmp(routes[i].method, "*") == 0 || strcmp(routes[i].method, rq->method) == 0)) {
			rt = &routes[i];
			break;
		}
	if (rt == NULL) {
		/* Gin answers an unknown route or method with its default 404. */
		if (strncmp(rq->path, "/sim/", 5) != 0)
			sim_count("other");
		plain(r, 404, "text/plain", "404 page not found");
		return;
	}
	if (strncmp(rq->path, "/sim/", 5) != 0)
		sim_count(rt->path);
	if (!(rt->flags & R_NOAUTH) && !api_token_ok(rq->cookie_token, &c)) {
		unauthorized(r);
		return;
	}
	if ((rt->flags & R_ADMIN) && sim.prof.head && strcmp(c.username, "admin") != 0) {
		plain(r, 403, "application/json; charset=utf-8", "\"forbidden\"");
		return;
	}
	if (rq->body_len > 0) {
		struct json_tokener *tok = json_tokener_new();
		body = json_tokener_parse_ex(tok, rq->body, (int)rq->body_len);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			json_object_put(body);
			body = NULL;
		}
		json_tokener_free(tok);
	}
	rt->fn(rq, body, r);
	json_object_put(body);
}

struct json_object *api_sim_state(void)
{
	struct json_object *o = json_object_new_object(), *scr = json_object_new_object();
	struct json_object *rows = json_object_new_array(), *ptr = json_object_new_object();
	struct json_object *hid = json_object_new_object(), *last = json_object_new_array();
	struct json_object *stream = json_object_new_object(), *hdmi = json_object_new_object();
	int n = screen_rows(sim.screen), used = 0, col, row, px, py;
	char line[screen_cols(sim.screen) + 1];

	for (int i = 0; i < n; i++) {
		screen_row_text(sim.screen, i, line);
		if (*line)
			used = i + 1;
	}
	for (int i = 0; i < used; i++) {
		screen_row_text(sim.screen, i, line);
		json_object_array_add(rows, json_object_new_string(line));
	}
	screen_cursor(sim.screen, &col, &row);
	screen_pointer_pos(sim.screen, &px, &py);
	json_object_object_add(o, "firmware", json_object_new_string(sim.prof.name));
	json_object_object_add(o, "application", json_object_new_string(sim.prof.app));
	json_object_object_add(o, "power", json_object_new_boolean(sim.power));
	json_object_object_add(o, "led", json_object_new_boolean(sim.power));
	json_object_object_add(o, "boots", json_object_new_int(sim.boots));
	json_object_object_add(hdmi, "enabled", json_object_new_boolean(sim.hdmi_enabled));
	json_object_object_add(hdmi, "cable", json_object_new_boolean(sim.hdmi_cable));
	json_object_object_add(hdmi, "signal", json_object_new_boolean(sim_signal()));
	json_object_object_add(o, "hdmi", hdmi);
	json_object_object_add(o, "iso", json_object_new_string(sim.iso));
	json_object_object_add(o, "cdrom", json_object_new_boolean(sim.cdrom));
	json_object_object_add(scr, "width", json_object_new_int(sim.width));
	json_object_object_add(scr, "height", json_object_new_int(sim.height));
	json_object_object_add(scr, "cols", json_object_new_int(screen_cols(sim.screen)));
	json_object_object_add(scr, "rows", json_object_new_int(n));
	json_object_object_add(scr, "text", rows);
	json_object_object_add(scr, "cursor_col", json_object_new_int(col));
	json_object_object_add(scr, "cursor_row", json_object_new_int(row));
	json_object_object_add(scr, "typed", json_object_new_string_len(sim.kbd.typed, (int)sim.kbd.typed_len));
	json_object_object_add(scr, "layout", json_object_new_string(sim.kbd.layout == HID_LAYOUT_DE ? "de" :
	                       sim.kbd.layout == HID_LAYOUT_FR ? "fr" : "us"));
	json_object_object_add(o, "screen", scr);
	json_object_object_add(ptr, "x", json_object_new_int(px));
	json_object_object_add(ptr, "y", json_object_new_int(py));
	json_object_object_add(ptr, "buttons", json_object_new_int(sim.buttons));
	json_object_object_add(ptr, "clicks", json_object_new_int64(sim.clicks));
	json_object_object_add(ptr, "wheel", json_object_new_int64(sim.wheel));
	json_object_object_add(o, "pointer", ptr);
	for (int i = 0; i < sim.last_report_n; i++) {
		char hex[2 * 8 + 1];
		hex_encode(sim.last_reports[i] + 1, sim.last_reports[i][0], hex);
		json_object_array_add(last, json_object_new_string(hex));
	}
	json_object_object_add(hid, "reports", json_object_new_int64(sim.hid_reports));
	json_object_object_add(hid, "dropped", json_object_new_int64(sim.hid_dropped));
	json_object_object_add(hid, "last", last);
	json_object_object_add(hid, "online", json_object_new_boolean(now_mono_ns() >= sim.hid_off_until));
	json_object_object_add(hid, "usb_enumerations", json_object_new_int64(sim.usb_enumerations));
	json_object_object_add(hid, "mode", json_object_new_string(sim.hid_mode));
	json_object_object_add(hid, "leds", sim_leds_json());
	json_object_object_add(hid, "paste_busy", json_object_new_boolean(sim.paste != NULL));
	json_object_object_add(o, "hid", hid);
	json_object_object_add(stream, "viewers", json_object_new_int(sim.mjpeg_viewers));
	json_object_object_add(stream, "frames_captured", json_object_new_int64(sim.frames_captured));
	json_object_object_add(stream, "frames_sent", json_object_new_int64(sim.frames_sent));
	json_object_object_add(stream, "frame_detect", json_object_new_boolean(sim.frame_detect));
	json_object_object_add(stream, "quality", json_object_new_int(sim.quality));
	json_object_object_add(stream, "fps", json_object_new_int(sim.fps));
	json_object_object_add(o, "stream", stream);
	json_object_object_add(o, "ws_clients", json_object_new_int(sim.ws_clients));
	json_object_object_add(o, "ws_heartbeats", json_object_new_int64(sim.ws_heartbeats));
	json_object_object_add(o, "power_presses", json_object_new_int64(sim.power_presses));
	json_object_object_add(o, "requests", json_object_get(sim.counters));
	return o;
}
