/*
 * authz.c - the role matrix and the one authorisation step every route and
 * every MCP tool passes through before its handler runs.
 *
 * An action (what a route or tool does) needs a token scope and one of the
 * roles its row lists. The caller's role is its membership in the token's
 * organisation (token_identity.role); a token restricted to a device tag
 * reaches only devices carrying it. Organisation isolation is not decided
 * here: every lookup is made within the caller's organisation, so another
 * organisation's ids are simply not found. Policies and access grants will
 * plug in as further checks of authz_check().
 *
 * The README's role matrix is this table; check_fcgi_authz holds both to it.
 */
#include <stdio.h>
#include <string.h>

#include "fcgi.h"

#define ADMIN (1u << ROLE_ORG_ADMIN)
#define OPERATOR (1u << ROLE_OPERATOR)
#define VIEWER (1u << ROLE_VIEWER)
#define AUDITOR (1u << ROLE_AUDITOR)
#define EVERYONE (ADMIN | OPERATOR | VIEWER | AUDITOR)

static const struct authz_rule rules[AUTHZ__COUNT] = {
	[AUTHZ_SESSION] = { "session", AUTHZ_SCOPE_NONE, EVERYONE,
		"who the token speaks for; MCP initialize, ping, lists" },
	[AUTHZ_SERVER_READ] = { "server.read", AUTHZ_SCOPE_READ, EVERYONE,
		"facts about the gateway" },
	[AUTHZ_DEVICES_READ] = { "devices.read", AUTHZ_SCOPE_READ, EVERYONE,
		"list devices and read their settings (never their credentials)" },
	[AUTHZ_DEVICES_WRITE] = { "devices.write", AUTHZ_SCOPE_WRITE, ADMIN,
		"add, change and remove devices and their credentials" },
	[AUTHZ_DEVICES_HEALTH] = { "devices.health", AUTHZ_SCOPE_READ, ADMIN | OPERATOR | VIEWER,
		"a device's console session and state (asking opens the session)" },
	[AUTHZ_CONSOLE_READ] = { "console.read", AUTHZ_SCOPE_READ, ADMIN | OPERATOR | VIEWER,
		"see screens: screenshots, screen text" },
	[AUTHZ_INPUT_WRITE] = { "input.write", AUTHZ_SCOPE_WRITE, ADMIN | OPERATOR,
		"type, press keys, move and click the mouse" },
	[AUTHZ_POWER_WRITE] = { "power.write", AUTHZ_SCOPE_WRITE, ADMIN | OPERATOR,
		"power on, off, reset, cycle; reset the HDMI capture" },
	[AUTHZ_POWER_READ] = { "power.read", AUTHZ_SCOPE_READ, ADMIN | OPERATOR | VIEWER,
		"read whether a machine is on" },
	[AUTHZ_MEDIA_WRITE] = { "media.write", AUTHZ_SCOPE_WRITE, ADMIN | OPERATOR,
		"mount and unmount installer images" },
	[AUTHZ_MEDIA_READ] = { "media.read", AUTHZ_SCOPE_READ, ADMIN | OPERATOR | VIEWER,
		"list a device's stored images and what is mounted" },
	[AUTHZ_AUDIT_READ] = { "audit.read", AUTHZ_SCOPE_READ, ADMIN | AUDITOR,
		"query the audit log, its head and its integrity" },
	[AUTHZ_TOKENS_READ_OWN] = { "tokens.read_own", AUTHZ_SCOPE_READ, EVERYONE,
		"list one's own API tokens" },
	[AUTHZ_TOKENS_MANAGE_OWN] = { "tokens.manage_own", AUTHZ_SCOPE_WRITE, EVERYONE,
		"create and revoke one's own API tokens (never with more rights)" },
	[AUTHZ_TOKENS_MANAGE_ALL] = { "tokens.manage_all", AUTHZ_SCOPE_WRITE, ADMIN,
		"list, create and revoke the tokens of every member" },
	[AUTHZ_USERS_MANAGE] = { "users.manage", AUTHZ_SCOPE_WRITE, ADMIN,
		"add members, change their roles, remove them" },
	[AUTHZ_ORGS_MANAGE] = { "orgs.manage", AUTHZ_SCOPE_WRITE, ADMIN,
		"the organisation's own settings" },
};

static const char *const role_names[ROLE__COUNT] = {
	[ROLE_ORG_ADMIN] = "org_admin", [ROLE_OPERATOR] = "operator",
	[ROLE_VIEWER] = "viewer", [ROLE_AUDITOR] = "auditor",
};

static const char *const scope_names[] = {
	[AUTHZ_SCOPE_NONE] = "none", [AUTHZ_SCOPE_READ] = "read", [AUTHZ_SCOPE_WRITE] = "write",
};

const struct authz_rule *authz_rule(enum authz_action a)
{
	return (unsigned)a < AUTHZ__COUNT && rules[a].name != NULL ? &rules[a] : NULL;
}

int authz_role_parse(const char *name)
{
	for (int i = 0; i < ROLE__COUNT; i++)
		if (strcmp(role_names[i], name) == 0)
			return i;
	return -1;
}

const char *authz_role_name(enum authz_role r)
{
	return (unsigned)r < ROLE__COUNT ? role_names[r] : "none";
}

static bool has_scope(const struct token_identity *who, enum authz_scope s)
{
	switch (s) {
	case AUTHZ_SCOPE_NONE:
		return true;
	case AUTHZ_SCOPE_READ:
		return who->scope_read;
	case AUTHZ_SCOPE_WRITE:
		return who->scope_write;
	}
	return false;
}

bool authz_allowed(const struct token_identity *who, enum authz_action a)
{
	char why[8];

	return authz_check(who, a, NULL, why, sizeof why) == 0;
}

int authz_check(const struct token_identity *who, enum authz_action a,
                const struct device_ref *dev, char *why, size_t len)
{
	const struct authz_rule *r = authz_rule(a);
	int role = authz_role_parse(who->role);

	if (r == NULL) {
		snprintf(why, len, "This action is not known to the role matrix.");
		return -1;
	}
	if (role < 0 || !(r->roles & (1u << role))) {
		struct buf allowed = BUF_INIT;
		for (int i = 0; i < ROLE__COUNT; i++)
			if (r->roles & (1u << i))
				buf_printf(&allowed, "%s%s", allowed.len ? " or " : "", role_names[i]);
		snprintf(why, len, "Permission denied: %s needs the role %s; this token's user is "
		         "%s in organisation '%s'.", r->name, allowed.data,
		         role < 0 ? "without a role" : role_names[role], who->org);
		buf_free(&allowed);
		return -1;
	}
	if (!has_scope(who, r->scope)) {
		snprintf(why, len, "Permission denied: %s needs a token with the %s scope; this "
		         "token lacks it.", r->name, scope_names[r->scope]);
		return -1;
	}
	if (dev != NULL && !dev->tagged) {
		snprintf(why, len, "Permission denied: this token reaches only devices tagged "
		         "'%s'.", who->device_tag);
		return -1;
	}
	return 0;
}
