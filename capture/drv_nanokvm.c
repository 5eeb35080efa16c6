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
 */
#include <ctype.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "capture.h"
#include "log.h"

#define PASSPHRASE "nanokvm-sipeed-2024"
#define BODY_MAX (64 * 1024)
#define TOKEN_MAX 2048
#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 15000L

/* Steps of the connection sequence; nk_set_step is the only writer. */
enum nk_step { NK_LOGIN, NK_INFO, NK_STREAM, NK__STEPS };

static const char *const step_names[NK__STEPS] = { "login", "info", "stream" };

struct nk {
	struct session *s;
	CURL *e;
	enum nk_step step;
	struct buf body;		/* answer of login or info */
	char token[TOKEN_MAX + 1];	/* "" until logged in */
	char cookie_token[TOKEN_MAX + 1];	/* from Set-Cookie, if the device sent one */
	bool relogin_used;		/* a 401 already led to a new login */
	bool stream_refused;		/* the stream answered other than 200 */
	struct mjpeg mj;
};

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

static void on_done(void *arg, CURLcode result);

/* Configures k->e for path (GET, or POST of body) and starts it. Returns 0 or -1. */
static int start(struct nk *k, enum nk_step step, const char *path, const char *post)
{
	char *url;
	size_t blen = strlen(k->s->cfg.url);

	while (blen > 0 && k->s->cfg.url[blen - 1] == '/')
		blen--;
	url = xasprintf("%.*s%s", (int)blen, k->s->cfg.url, path);
	nk_set_step(k, step);
	buf_reset(&k->body);
	curl_easy_reset(k->e);
	curl_easy_setopt(k->e, CURLOPT_URL, url);
	curl_easy_setopt(k->e, CURLOPT_PROTOCOLS_STR, "http,https");
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
	free(url);
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
	session_authenticated(k->s);
	(void)start(k, NK_INFO, "/api/vm/info", NULL);
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
		log_info("device %llu: NanoKVM application %s", (unsigned long long)k->s->cfg.id,
		         k->s->firmware);
	}
	json_object_put(o);
	(void)start(k, NK_STREAM, "/api/stream/mjpeg", NULL);
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
	if (result != CURLE_OK && !(k->step == NK_STREAM && result == CURLE_WRITE_ERROR)) {
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

static int nk_open(struct session *s)
{
	struct nk *k = xcalloc(1, sizeof *k);

	k->s = s;
	k->e = curl_easy_init();
	if (k->e == NULL)
		abort();
	s->drv_state = k;
	return start_login(k);
}

static void nk_close(struct session *s)
{
	struct nk *k = s->drv_state;

	http_stop(k->e);
	curl_easy_cleanup(k->e);
	mjpeg_cleanup(&k->mj);
	buf_free(&k->body);
	explicit_bzero(k->token, sizeof k->token);
	explicit_bzero(k->cookie_token, sizeof k->cookie_token);
	free(k);
	s->drv_state = NULL;
}

const struct driver drv_nanokvm = {
	.kind = "nanokvm",
	.open = nk_open,
	.close = nk_close,
};
