/*
 * drv_nanokvm.c - the Sipeed NanoKVM driver (protocols/nanokvm.md).
 *
 * One connection sequence per session, each step one HTTP transfer on the
 * shared multi handle: login (password encrypted as the web UI does, §2.2)
 * -> GET /api/vm/info (proves the token, tells the firmware) -> GET
 * /api/stream/mjpeg, kept open, every JPEG published to the session's slot.
 * A 401 anywhere means one new login, then the step again; a second 401 in
 * a row is an authentication failure. The session's frame deadline covers
 * a device that accepts and never answers.
 *
 * Alongside the stream: frame detection is switched off first (§6.1: with
 * it on, a static screen sends nothing and would look like a dead device);
 * /api/ws carries HID reports (drv_nanokvm_ws.c); operations use their own
 * handle (drv_nanokvm_ops.c); a third handle polls the power LED and HDMI
 * every few seconds for get_power_state and the device_state table.
 */
#include <ctype.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "drv_nanokvm.h"
#include "log.h"

#define PASSPHRASE "nanokvm-sipeed-2024"
#define BODY_MAX (64 * 1024)
#define TOKEN_MAX NK_TOKEN_MAX
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 15000L
#define POLL_MS 5000u	/* LED and HDMI: an unseen power change shows within 5 s */

static const char *const step_names[NK__STEPS] = { "login", "info", "stream" };

static void nk_set_step(struct nk *k, enum nk_step to)
{
	log_debug("device %llu: nanokvm %s -> %s", (unsigned long long)k->s->cfg.id,
	          step_names[k->step], step_names[to]);
	k->step = to;
}

int nanokvm_encrypt_password(const char *password, const uint8_t *salt_or_null, char *out,
                             size_t outsz)
{
	uint8_t salt[8], key[32], iv[16], *blob;
	size_t plen = strlen(password), n = 0;
	int len1 = 0, len2 = 0, rc = -1;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	char *b64 = NULL;

	blob = xmalloc(16 + plen + 16);
	if (salt_or_null != NULL)
		memcpy(salt, salt_or_null, sizeof salt);
	else
		random_bytes(salt, sizeof salt);
	memcpy(blob, "Salted__", 8);
	memcpy(blob + 8, salt, 8);
	if (c == NULL ||
	    EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), salt, (const uint8_t *)PASSPHRASE,
	                   (int)strlen(PASSPHRASE), 1, key, iv) != 32 ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(c, blob + 16, &len1, (const uint8_t *)password, (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(c, blob + 16 + len1, &len2) != 1)
		goto out;
	b64 = base64_encode(blob, 16 + (size_t)len1 + (size_t)len2);
	/* encodeURIComponent of base64: only + / = need escaping (§2.2 step 5). */
	for (const char *p = b64; *p != '\0'; p++) {
		const char *esc = *p == '+' ? "%2B" : *p == '/' ? "%2F" : *p == '=' ? "%3D" : NULL;
		size_t add = esc != NULL ? 3 : 1;
		if (n + add + 1 > outsz)
			goto out;
		memcpy(out + n, esc != NULL ? esc : p, add);
		n += add;
	}
	out[n] = '\0';
	rc = 0;
out:
	explicit_bzero(key, sizeof key);
	explicit_bzero(blob, 16 + plen + 16);
	free(blob);
	free(b64);
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* Whether a token is safe to put in a Cookie header as it is. */
static bool token_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > TOKEN_MAX)
		return false;
	for (; *t != '\0'; t++)
		if (!isalnum((unsigned char)*t) && strchr("-._~+/=", *t) == NULL)
			return false;
	return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct nk *k = arg;

	if (k->body.len + n > BODY_MAX)
		return 0;	/* aborts: no answer of these is that long */
	buf_append(&k->body, p, n);
	return n;
}

/* Remembers nano-kvm-token from a Set-Cookie header (HEAD firmware logs in by cookie). */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "set-cookie:";
	struct nk *k = arg;
	const char *v, *end = p + n;
	size_t len;

	if (n < sizeof name || strncasecmp(p, name, sizeof name - 1) != 0)
		return n;
	for (v = p + sizeof name - 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	if ((size_t)(end - v) < 15 || memcmp(v, "nano-kvm-token=", 15) != 0)
		return n;
	v += 15;
	for (len = 0; v + len < end && v[len] != ';' && v[len] != '\r' && v[len] != '\n'; len++)
		;
	if (len <= TOKEN_MAX) {
		memcpy(k->cookie_token, v, len);
		k->cookie_token[len] = '\0';
	}
	return n;
}

/* The frame callback of the MJPEG parser: one JPEG into the slot. */
static int on_jpeg(void *arg, const uint8_t *jpeg, size_t len)
{
	struct nk *k = arg;
	struct shm_frame_info fi = { .format = SHM_FMT_JPEG, .len = (uint32_t)len };

	if (jpeg_size(jpeg, len, &fi.width, &fi.height) < 0) {
		log_warnx("device %llu: a part without a JPEG frame header, skipped",
		          (unsigned long long)k->s->cfg.id);
		return 0;
	}
	k->relogin_used = false;	/* the token works: a later 401 may log in again */
	k->s->width = fi.width;
	k->s->height = fi.height;
	devstate_frame(k->s->cfg.id, fi.width, fi.height);
	return session_frame(k->s, &fi, jpeg);
}

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
	struct nk *k = arg;
	long status = 0;

	curl_easy_getinfo(k->e, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		k->stream_refused = true;
		return 0;
	}
	/* Errors are reported by the done callback: nothing may leave libcurl from here. */
	return mjpeg_feed(&k->mj, p, n, on_jpeg, k) == 0 ? n : 0;
}

int nanokvm_parse_url(const char *url, char *base, size_t len, bool *insecure, char *why,
                      size_t wlen)
{
	size_t n = strcspn(url, "?#");
	const char *q = url + n;
	bool seen = false;

	*insecure = false;
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		snprintf(why, wlen, "a nanokvm device URL starts with http:// or https://");
		return -1;
	}
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= len) {
		snprintf(why, wlen, "the device URL is too long");
		return -1;
	}
	memcpy(base, url, n);
	base[n] = '\0';
	for (q = *q == '?' ? q + 1 : NULL; q != NULL && *q != '\0' && *q != '#';) {
		size_t m = strcspn(q, "&#");
		if (seen || m < 4 || strncmp(q, "tls=", 4) != 0) {
			snprintf(why, wlen, "%s URL option '%.*s' (known: tls=verify|insecure)",
			         seen && m >= 4 && strncmp(q, "tls=", 4) == 0 ? "repeated" : "unknown",
			         (int)(m > 40 ? 40 : m), q);
			return -1;
		}
		seen = true;
		if (m == 10 && strncmp(q + 4, "verify", 6) == 0)
			*insecure = false;
		else if (m == 12 && strncmp(q + 4, "insecure", 8) == 0)
			*insecure = true;
		else {
			snprintf(why, wlen, "%.*s: use tls=verify or tls=insecure", (int)(m > 40 ? 40 : m), q);
			return -1;
		}
		q += m;
		if (*q == '&')
			q++;
	}
	return 0;
}

void nk_url(struct nk *k, CURL *e, const char *path)
{
	char *url = xasprintf("%s%s", k->base, path);

	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (k->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	free(url);
}

static void on_done(void *arg, CURLcode result);

/* Configures k->e for path (GET, or POST of body) and starts it. Returns 0 or -1. */
static int start(struct nk *k, enum nk_step step, const char *path, const char *post)
{
	nk_set_step(k, step);
	buf_reset(&k->body);
	curl_easy_reset(k->e);
	nk_url(k, k->e, path);
	k->curl_why[0] = '\0';
	curl_easy_setopt(k->e, CURLOPT_ERRORBUFFER, k->curl_why);
	curl_easy_setopt(k->e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(k->e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(k->e, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(k->e, CURLOPT_WRITEDATA, k);
	if (step == NK_STREAM) {
		curl_easy_setopt(k->e, CURLOPT_WRITEFUNCTION, on_stream);
		struct shm_stats st;
		shm_stats(cap.frames, &st);
		mjpeg_init(&k->mj, st.frame_max);
		k->stream_refused = false;
	} else {
		curl_easy_setopt(k->e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(k->e, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	}
	if (k->token[0] != '\0') {
		char *cookie = xasprintf("nano-kvm-token=%s", k->token);
		curl_easy_setopt(k->e, CURLOPT_COOKIE, cookie);	/* libcurl copies it */
		free(cookie);
	}
	if (post != NULL) {
		static struct curl_slist json = { (char *)"Content-Type: application/json", NULL };
		curl_easy_setopt(k->e, CURLOPT_HTTPHEADER, &json);
		curl_easy_setopt(k->e, CURLOPT_COPYPOSTFIELDS, post);
	}
	if (http_start(k->e, on_done, k) < 0) {
		session_error(k->s, SE_OFFLINE, "transfer not started");
		return -1;
	}
	return 0;
}

static int start_login(struct nk *k)
{
	char enc[1024];
	json_object *o;
	int rc;

	k->token[0] = k->cookie_token[0] = '\0';
	if (nanokvm_encrypt_password(k->s->cfg.password, NULL, enc, sizeof enc) < 0) {
		session_error(k->s, SE_CONFIG, "password cannot be encrypted");
		return -1;
	}
	o = json_object_new_object();
	json_object_object_add(o, "username", json_object_new_string(k->s->cfg.username));
	json_object_object_add(o, "password", json_object_new_string(enc));
	rc = start(k, NK_LOGIN, "/api/auth/login", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return rc;
}

/* The envelope {code, msg, data} of a 200 answer, or NULL (the caller owns it). */
static json_object *envelope(struct nk *k, int *code, const char **msg)
{
	json_object *o = json_tokener_parse(k->body.data != NULL ? k->body.data : ""), *v;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "code", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		json_object_put(o);
		return NULL;
	}
	*code = json_object_get_int(v);
	*msg = json_object_object_get_ex(o, "msg", &v) ? json_object_get_string(v) : "";
	return o;
}

static void login_done(struct nk *k, long status)
{
	json_object *o, *data, *tok;
	const char *msg, *t = NULL;
	char why[128];
	int code;

	if (status >= 300 && status < 400 && k->base[4] == ':') {
		/* With HTTPS on, the plain port only redirects to it (§1). */
		char *to = NULL;
		curl_easy_getinfo(k->e, CURLINFO_REDIRECT_URL, &to);
		snprintf(why, sizeof why, "the device serves HTTPS only (HTTP %ld to %.60s): use an "
		         "https:// URL", status, to != NULL ? to : "elsewhere");
		session_error(k->s, SE_CONFIG, why);
		return;
	}
	if (status != 200 || (o = envelope(k, &code, &msg)) == NULL) {
		snprintf(why, sizeof why, "login answered HTTP %ld without an envelope", status);
		session_error(k->s, SE_PROTOCOL, why);
		return;
	}
	if (code != 0) {
		/* -2 wrong user or password, -5 locked out: both are the credentials' fault (§2.3). */
		snprintf(why, sizeof why, "login refused: %d %.80s", code, msg ? msg : "");
		json_object_put(o);
		session_error(k->s, code == -2 || code == -5 ? SE_AUTH : SE_PROTOCOL, why);
		return;
	}
	/* §11: the cookie when there is one, else data.token. */
	if (k->cookie_token[0] != '\0')
		t = k->cookie_token;
	else if (json_object_object_get_ex(o, "data", &data) &&
	         json_object_object_get_ex(data, "token", &tok) && json_object_is_type(tok, json_type_string))
		t = json_object_get_string(tok);
	if (t == NULL || !token_ok(t)) {
		json_object_put(o);
		session_error(k->s, SE_PROTOCOL, "login gave no usable token");
		return;
	}
	snprintf(k->token, sizeof k->token, "%s", t);
	json_object_put(o);
	(void)start(k, NK_INFO, "/api/vm/info", NULL);
}

/* Where /api/ws goes: the address libcurl connected to (ws.c resolves no names). */
static void learn_address(struct nk *k)
{
	char *ip = NULL, *host = NULL, *scheme = NULL;
	long port = 0;
	CURLU *u = curl_url();

	curl_easy_getinfo(k->e, CURLINFO_PRIMARY_IP, &ip);
	curl_easy_getinfo(k->e, CURLINFO_PRIMARY_PORT, &port);
	snprintf(k->addr, sizeof k->addr, "%s", ip != NULL ? ip : "");
	k->port = (uint16_t)port;
	if (curl_url_set(u, CURLUPART_URL, k->base, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
		k->tls = strcasecmp(scheme, "https") == 0;
		snprintf(k->host_name, sizeof k->host_name, "%s", host);
		if ((k->tls && port == 443) || (!k->tls && port == 80))
			snprintf(k->host, sizeof k->host, "%s", host);
		else
			snprintf(k->host, sizeof k->host, "%s:%ld", host, port);
	}
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
}

/* Frame detection is off (or could not be switched off); polling starts. */
static void detect_done(struct nk *k)
{
	if (k->pc.code != 0)
		log_warnx("device %llu: frame detection not switched off (HTTP %ld, code %d %.60s); "
		          "a static screen may send no frames", (unsigned long long)k->s->cfg.id,
		          k->pc.status, k->pc.code, k->pc.msg);
	k->poll_due_ns = now_mono_ns();
	nk_arm(k);
}

static void info_done(struct nk *k, long status)
{
	json_object *o, *data, *app;
	const char *msg;
	int code;

	if (status != 200 || (o = envelope(k, &code, &msg)) == NULL || code != 0) {
		if (status == 200)
			json_object_put(o);
		session_error(k->s, SE_PROTOCOL, "vm/info answered without success");
		return;
	}
	if (json_object_object_get_ex(o, "data", &data) &&
	    json_object_object_get_ex(data, "application", &app) && json_object_is_type(app, json_type_string)) {
		snprintf(k->s->firmware, sizeof k->s->firmware, "%s", json_object_get_string(app));
		k->ver = nanokvm_version(k->s->firmware);
		log_info("device %llu: NanoKVM application %s (%s HID)", (unsigned long long)k->s->cfg.id,
		         k->s->firmware, k->ver >= NK_VER(2, 3, 2) ? "binary" : "JSON");
	}
	json_object_put(o);
	learn_address(k);
	devstate_firmware(k->s->cfg.id, k->s->firmware);
	nk_ws_start(k);
	/* §6.1: frame detection would leave a static screen without frames; switched off
	 * on the polling handle, alongside the stream, which need not wait for it. */
	nk_call(k, &k->pc, "/api/stream/mjpeg/detect", "{\"enabled\":false}", REQUEST_TIMEOUT_MS,
	        detect_done);
	if (start(k, NK_STREAM, "/api/stream/mjpeg", NULL) < 0)
		return;
	/* Operations may start now that the token works and the firmware is known. */
	session_authenticated(k->s);
}

static void stream_done(struct nk *k, long status, CURLcode result)
{
	char why[128];

	if (k->stream_refused)
		snprintf(why, sizeof why, "stream answered HTTP %ld", status);
	else if (result == CURLE_WRITE_ERROR)
		snprintf(why, sizeof why, "stream: %s", k->mj.why);
	else
		snprintf(why, sizeof why, "stream ended");
	session_error(k->s, k->stream_refused ? SE_PROTOCOL : SE_OFFLINE, why);
}

static void on_done(void *arg, CURLcode result)
{
	struct nk *k = arg;
	long status = 0;
	char why[160];

	curl_easy_getinfo(k->e, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401) {
		/* The token is gone (device restart, logout elsewhere): one new login (§9). */
		if (k->step == NK_LOGIN || k->relogin_used) {
			session_error(k->s, SE_AUTH, "the device keeps refusing the token (401)");
			return;
		}
		k->relogin_used = true;
		(void)start_login(k);
		return;
	}
	if (result == CURLE_PEER_FAILED_VERIFICATION) {
		/* Retrying cannot help: the device's configuration must change. */
		snprintf(why, sizeof why, "TLS certificate not accepted (%.50s); a self-signed one "
		         "needs ?tls=insecure",
		         k->curl_why[0] ? k->curl_why : curl_easy_strerror(result));
		session_error(k->s, SE_CONFIG, why);
		return;
	}
	if (result != CURLE_OK && !(k->step == NK_STREAM && result == CURLE_WRITE_ERROR)) {
		if (k->step == NK_STREAM && (result == CURLE_PARTIAL_FILE || result == CURLE_RECV_ERROR ||
		                             result == CURLE_GOT_NOTHING))
			snprintf(why, sizeof why, "the device closed the stream (%s)", curl_easy_strerror(result));
		else
			snprintf(why, sizeof why, "%s: %s", step_names[k->step], curl_easy_strerror(result));
		session_error(k->s, result == CURLE_OPERATION_TIMEDOUT ? SE_TIMEOUT : SE_OFFLINE, why);
		return;
	}
	switch (k->step) {
	case NK_LOGIN: login_done(k, status); break;
	case NK_INFO: info_done(k, status); break;
	case NK_STREAM: stream_done(k, status, result); break;
	case NK__STEPS: break;
	}
}

/* ---- secondary REST calls (operations, polling) */

static size_t call_body(char *p, size_t size, size_t n, void *arg)
{
	struct nk_call *c = arg;

	if (c->body.len + n > BODY_MAX)
		return 0;
	buf_append(&c->body, p, n);
	return n;
}

void nk_call_init(struct nk *k, struct nk_call *c)
{
	c->k = k;
	c->e = curl_easy_init();
	if (c->e == NULL)
		abort();
}

void nk_call_cleanup(struct nk_call *c)
{
	if (c->e != NULL) {
		http_stop(c->e);
		curl_easy_cleanup(c->e);
	}
	json_object_put(c->data);
	buf_free(&c->body);
	free(c->path);
	free(c->post);
	memset(c, 0, sizeof *c);
}

static void call_start(struct nk *k, struct nk_call *c, const char *path, const char *post,
                       long timeout_ms, nk_fn then);

/* The new login of relogin() ended: take its token and repeat the request, or report the 401. */
static void relogin_done(struct nk *k)
{
	struct nk_call *c = &k->oc;
	json_object *tok;
	const char *t = NULL;

	if (c->code == 0) {
		if (k->cookie_token[0] != '\0')
			t = k->cookie_token;
		else if (json_object_object_get_ex(c->data, "token", &tok) &&
		         json_object_is_type(tok, json_type_string))
			t = json_object_get_string(tok);
	}
	if (t == NULL || !token_ok(t)) {
		log_warnx("device %llu: new login after a 401 failed (code %d %.60s)",
		          (unsigned long long)k->s->cfg.id, c->code, c->msg);
		c->status = 401;
		c->code = -1000;
		c->then_after_login(k);
		return;
	}
	snprintf(k->token, sizeof k->token, "%s", t);
	log_info("device %llu: logged in again after a 401", (unsigned long long)k->s->cfg.id);
	call_start(k, c, c->path, c->post, c->timeout_ms, c->then_after_login);
}

/*
 * The token died under a running session (≤2.5.0: anyone's logout, §2.4):
 * one new login on the operations handle, then the request again (§9).
 */
static void relogin(struct nk *k, struct nk_call *c)
{
	char enc[1024];
	json_object *o;

	c->relogin = true;
	k->cookie_token[0] = '\0';
	if (nanokvm_encrypt_password(k->s->cfg.password, NULL, enc, sizeof enc) < 0) {
		c->then_after_login(k);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "username", json_object_new_string(k->s->cfg.username));
	json_object_object_add(o, "password", json_object_new_string(enc));
	call_start(k, c, "/api/auth/login", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	           REQUEST_TIMEOUT_MS, relogin_done);
	json_object_put(o);
	explicit_bzero(enc, sizeof enc);
}

static void call_done(void *arg, CURLcode result)
{
	struct nk_call *c = arg;
	json_object *o, *v;

	c->running = false;
	c->result = result;
	curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, &c->status);
	if (result == CURLE_OK && c->status == 401 && !c->relogin && c == &c->k->oc) {
		relogin(c->k, c);
		return;
	}
	c->code = -1000;
	c->msg[0] = '\0';
	json_object_put(c->data);
	c->data = NULL;
	o = json_tokener_parse(c->body.data != NULL ? c->body.data : "");
	if (result == CURLE_OK && c->status == 200 && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "code", &v) && json_object_is_type(v, json_type_int)) {
		c->code = json_object_get_int(v);
		if (json_object_object_get_ex(o, "msg", &v) && json_object_is_type(v, json_type_string))
			snprintf(c->msg, sizeof c->msg, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(o, "data", &v))
			c->data = json_object_get(v);
	}
	json_object_put(o);
	c->then(c->k);
}

static void call_start(struct nk *k, struct nk_call *c, const char *path, const char *post,
                       long timeout_ms, nk_fn then)
{
	static struct curl_slist json = { (char *)"Content-Type: application/json", NULL };
	char *cookie;
	bool login = strcmp(path, "/api/auth/login") == 0;

	cookie = xasprintf("nano-kvm-token=%s", k->token);
	buf_reset(&c->body);
	c->then = then;
	curl_easy_reset(c->e);
	nk_url(k, c->e, path);
	curl_easy_setopt(c->e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->e, CURLOPT_WRITEFUNCTION, call_body);
	curl_easy_setopt(c->e, CURLOPT_WRITEDATA, c);
	if (login) {
		curl_easy_setopt(c->e, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(c->e, CURLOPT_HEADERDATA, k);
	} else {
		curl_easy_setopt(c->e, CURLOPT_COOKIE, cookie);
	}
	if (post != NULL) {
		curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, &json);
		curl_easy_setopt(c->e, CURLOPT_COPYPOSTFIELDS, post);
	}
	free(cookie);
	c->running = true;
	if (http_start(c->e, call_done, c) < 0) {
		/* Reported like a transfer that failed at once. */
		c->running = false;
		c->result = CURLE_FAILED_INIT;
		c->status = 0;
		c->code = -1000;
		snprintf(c->msg, sizeof c->msg, "transfer not started");
		then(k);
	}
}

void nk_call(struct nk *k, struct nk_call *c, const char *path, const char *post, long timeout_ms,
             nk_fn then)
{
	/* Kept to repeat the request after a new login. */
	char *p = xstrdup(path), *b = post != NULL ? xstrdup(post) : NULL;

	if (c->running) {
		http_stop(c->e);	/* superseded (a new login restarted the sequence) */
		c->running = false;
	}
	free(c->path);
	free(c->post);
	c->path = p;
	c->post = b;
	c->timeout_ms = timeout_ms;
	c->then_after_login = then;
	c->relogin = false;
	call_start(k, c, path, post, timeout_ms, then);
}

/* ---- status polling: the power LED, HDMI */

void nk_led_seen(struct nk *k, bool on)
{
	if (k->led != (int)on)
		log_info("device %llu: power LED %s", (unsigned long long)k->s->cfg.id, on ? "on" : "off");
	k->led = on;
	devstate_power(k->s->cfg.id, on);
}

static bool member_bool(json_object *o, const char *name, bool *out)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

void nk_hdmi_seen(struct nk *k)
{
	devstate_hdmi(k->s->cfg.id, k->hdmi_enabled, k->hdmi_signal);
	/* §6.1: without a signal the MJPEG stream stays silent, which is no failure. */
	session_signal(k->s, k->hdmi_enabled != 0 && k->hdmi_signal != 0);
}

static void poll_hdmi_done(struct nk *k)
{
	bool en, sig;

	if (k->pc.code == 0 && member_bool(k->pc.data, "enabled", &en)) {
		k->hdmi_enabled = en;
		if (member_bool(k->pc.data, "signal", &sig))
			k->hdmi_signal = sig;
		nk_hdmi_seen(k);
	}
	k->poll_due_ns = now_mono_ns() + POLL_MS * NK_MS;
	nk_arm(k);
}

static void poll_gpio_done(struct nk *k)
{
	bool on;

	if (k->pc.code == 0 && member_bool(k->pc.data, "pwr", &on))
		nk_led_seen(k, on);
	if (k->ver >= NK_VER(2, 3, 0)) {
		nk_call(k, &k->pc, "/api/vm/hdmi", NULL, REQUEST_TIMEOUT_MS, poll_hdmi_done);
		return;
	}
	k->poll_due_ns = now_mono_ns() + POLL_MS * NK_MS;
	nk_arm(k);
}

/* ---- the driver's timer */

void nk_arm(struct nk *k)
{
	struct itimerspec its = { 0 };
	uint64_t at = nk_ws_due(k);

	if (k->op_due_ns != 0 && (at == 0 || k->op_due_ns < at))
		at = k->op_due_ns;
	if (k->poll_due_ns != 0 && !k->pc.running && (at == 0 || k->poll_due_ns < at))
		at = k->poll_due_ns;
	if (at != 0) {
		its.it_value.tv_sec = (time_t)(at / 1000000000u);
		its.it_value.tv_nsec = (long)(at % 1000000000u);
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(k->timer->w.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_warn("device %llu: driver timer", (unsigned long long)k->s->cfg.id);
}

static void on_timer(struct watch *w, uint32_t events)
{
	struct nk *k = ((struct nk_timer *)w)->k;
	uint64_t n, now = now_mono_ns();

	while (read(w->fd, &n, sizeof n) == sizeof n)
		;
	if (k->poll_due_ns != 0 && now >= k->poll_due_ns && !k->pc.running) {
		k->poll_due_ns = 0;
		nk_call(k, &k->pc, "/api/vm/gpio", NULL, REQUEST_TIMEOUT_MS, poll_gpio_done);
	}
	nk_ws_tick(k, now);
	nk_op_tick(k, now);
	nk_arm(k);
}

static int nk_open(struct session *s)
{
	struct nk *k = xcalloc(1, sizeof *k);
	char why[160];

	k->s = s;
	k->e = curl_easy_init();
	if (k->e == NULL)
		abort();
	k->led = k->hdmi_enabled = k->hdmi_signal = -1;
	nk_call_init(k, &k->oc);
	nk_call_init(k, &k->pc);
	k->timer = xcalloc(1, sizeof *k->timer);
	k->timer->k = k;
	k->timer->w.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	k->timer->w.on_ready = on_timer;
	if (k->timer->w.fd < 0 || watch_add(&k->timer->w, EPOLLIN) < 0)
		abort();	/* out of descriptors: the supervisor restarts us */
	s->drv_state = k;
	if (nanokvm_parse_url(s->cfg.url, k->base, sizeof k->base, &k->insecure, why,
	                      sizeof why) < 0) {
		session_error(s, SE_CONFIG, why);
		return -1;
	}
	return start_login(k);
}

static void nk_close(struct session *s)
{
	struct nk *k = s->drv_state;

	nk_op_abort(k);
	nk_ws_stop(k);
	http_stop(k->e);
	curl_easy_cleanup(k->e);
	nk_call_cleanup(&k->oc);
	nk_call_cleanup(&k->pc);
	watch_del(&k->timer->w);
	close(k->timer->w.fd);
	k->timer->k = NULL;
	watch_free_later(&k->timer->w);
	mjpeg_cleanup(&k->mj);
	buf_free(&k->body);
	buf_free(&k->text);
	buf_free(&k->result);
	explicit_bzero(k->token, sizeof k->token);
	explicit_bzero(k->cookie_token, sizeof k->cookie_token);
	free(k);
	s->drv_state = NULL;
}

const struct driver drv_nanokvm = {
	.kind = "nanokvm",
	.ops = OP_BIT(OP_KEYS) | OP_BIT(OP_TEXT) | OP_BIT(OP_MOUSE_MOVE) | OP_BIT(OP_MOUSE_CLICK) |
	       OP_BIT(OP_MOUSE_SCROLL) | OP_BIT(OP_HID_RESET) | OP_BIT(OP_POWER) |
	       OP_BIT(OP_POWER_STATE) | OP_BIT(OP_HDMI_RESET) | OP_BIT(OP_INFO) |
	       OP_BIT(OP_ISO_LIST) | OP_BIT(OP_ISO_MOUNT) | OP_BIT(OP_ISO_UNMOUNT) |
	       OP_BIT(OP_ISO_MOUNTED),
	.open = nk_open,
	.close = nk_close,
	.start_op = nk_op_start,
};
