/*
 * authcache.c - a worker's short memory of the tokens and MCP sessions it
 * looked up, so a busy client costs PostgreSQL one lookup per
 * KVMGATE_AUTH_CACHE_MS instead of two per request.
 *
 * Entries live in the worker's own memory and expire after the configured
 * time. Anything that ends a session or changes what a cached entry says,
 * inside the gateway, bumps one epoch counter shared by all workers (mapped
 * by the supervisor before it forks): every worker then forgets everything
 * at its next request. Only a change made outside the gateway (a token
 * revoked with SQL or the CLI) waits for the expiry.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "conf.h"
#include "fcgi.h"
#include "log.h"

#define SLOTS 64

struct token_entry {
	uint8_t hash[TOKEN_HASH_LEN];
	struct token_identity who;
	long long until_ms;
};

struct session_entry {
	long long org_id, user_id;
	struct mcp_session s;
	long long until_ms;
};

static _Atomic uint64_t *epoch;		/* shared by every worker */
static uint64_t seen_epoch;
static struct token_entry tokens[SLOTS];
static struct session_entry sessions[SLOTS];
static int next_token, next_session;

void authcache_init(void)
{
	void *p = mmap(NULL, sizeof *epoch, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	               -1, 0);

	if (p == MAP_FAILED) {
		log_err("mmap for the lookup cache epoch");
		abort();
	}
	epoch = p;
}

void authcache_invalidate(void)
{
	memset(tokens, 0, sizeof tokens);
	memset(sessions, 0, sizeof sessions);
	if (epoch != NULL)
		seen_epoch = atomic_fetch_add(epoch, 1) + 1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Whether caching is on; forgets everything when another worker bumped the epoch. */
static bool usable(void)
{
	uint64_t e;

	if (conf_int(CONF_AUTH_CACHE_MS) == 0 || epoch == NULL)
		return false;
	e = atomic_load(epoch);
	if (e != seen_epoch) {
		memset(tokens, 0, sizeof tokens);
		memset(sessions, 0, sizeof sessions);
		seen_epoch = e;
	}
	return true;
}

enum token_result authcache_token(const char *token, struct token_identity *out)
{
	uint8_t hash[TOKEN_HASH_LEN];
	enum token_result r;
	long long now = now_ms();

	if (!usable() || token_hash(token, hash) < 0)
		return token_lookup(token, out);
	for (int i = 0; i < SLOTS; i++)
		if (tokens[i].until_ms > now && memcmp(tokens[i].hash, hash, sizeof hash) == 0) {
			*out = tokens[i].who;
			return TOKEN_OK;
		}
	r = token_lookup(token, out);
	if (r == TOKEN_OK) {
		struct token_entry *e = &tokens[next_token++ % SLOTS];
		memcpy(e->hash, hash, sizeof hash);
		e->who = *out;
		e->until_ms = now + conf_int(CONF_AUTH_CACHE_MS);
	}
	return r;
}

bool authcache_session_get(const char *id, const struct token_identity *who,
                           struct mcp_session *out)
{
	long long now = now_ms();

	if (!usable())
		return false;
	for (int i = 0; i < SLOTS; i++) {
		const struct session_entry *e = &sessions[i];
		if (e->until_ms > now && e->org_id == who->org_id && e->user_id == who->user_id &&
		    strcmp(e->s.id, id) == 0) {
			*out = e->s;
			return true;
		}
	}
	return false;
}

void authcache_session_put(const struct token_identity *who, const struct mcp_session *s)
{
	struct session_entry *e;

	if (!usable())
		return;
	e = &sessions[next_session++ % SLOTS];
	e->org_id = who->org_id;
	e->user_id = who->user_id;
	e->s = *s;
	e->until_ms = now_ms() + conf_int(CONF_AUTH_CACHE_MS);
}
