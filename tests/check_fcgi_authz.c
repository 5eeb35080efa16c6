/*
 * check_fcgi_authz.c - the role matrix: every cell (action x role x token
 * scope) against the matrix as the README states it, written out again
 * here; every tool, resource, prompt and authenticated route names an
 * action of the matrix; device tags.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fcgi.h"
#include "check_run.h"

/* The README's matrix: action, scope, then org_admin operator viewer auditor. */
static const struct {
	enum authz_action action;
	const char *name, *scope;
	bool roles[ROLE__COUNT];
} matrix[] = {
	{ AUTHZ_SESSION,           "session",           "none",  { 1, 1, 1, 1 } },
	{ AUTHZ_SERVER_READ,       "server.read",       "read",  { 1, 1, 1, 1 } },
	{ AUTHZ_DEVICES_READ,      "devices.read",      "read",  { 1, 1, 1, 1 } },
	{ AUTHZ_DEVICES_WRITE,     "devices.write",     "write", { 1, 0, 0, 0 } },
	{ AUTHZ_DEVICES_HEALTH,    "devices.health",    "read",  { 1, 1, 1, 0 } },
	{ AUTHZ_CONSOLE_READ,      "console.read",      "read",  { 1, 1, 1, 0 } },
	{ AUTHZ_INPUT_WRITE,       "input.write",       "write", { 1, 1, 0, 0 } },
	{ AUTHZ_POWER_WRITE,       "power.write",       "write", { 1, 1, 0, 0 } },
	{ AUTHZ_POWER_READ,        "power.read",        "read",  { 1, 1, 1, 0 } },
	{ AUTHZ_MEDIA_WRITE,       "media.write",       "write", { 1, 1, 0, 0 } },
	{ AUTHZ_MEDIA_READ,        "media.read",        "read",  { 1, 1, 1, 0 } },
	{ AUTHZ_AUDIT_READ,        "audit.read",        "read",  { 1, 0, 0, 1 } },
	{ AUTHZ_TOKENS_READ_OWN,   "tokens.read_own",   "read",  { 1, 1, 1, 1 } },
	{ AUTHZ_TOKENS_MANAGE_OWN, "tokens.manage_own", "write", { 1, 1, 1, 1 } },
	{ AUTHZ_TOKENS_MANAGE_ALL, "tokens.manage_all", "write", { 1, 0, 0, 0 } },
	{ AUTHZ_USERS_MANAGE,      "users.manage",      "write", { 1, 0, 0, 0 } },
	{ AUTHZ_ORGS_MANAGE,       "orgs.manage",       "write", { 1, 0, 0, 0 } },
};

static const char *const roles[ROLE__COUNT] = { "org_admin", "operator", "viewer", "auditor" };

static void as(struct token_identity *who, const char *role, bool read, bool write)
{
	memset(who, 0, sizeof *who);
	snprintf(who->role, sizeof who->role, "%s", role);
	snprintf(who->org, sizeof who->org, "org-a");
	who->scope_read = read;
	who->scope_write = write;
}

START_TEST(test_matrix_complete)
{
	ck_assert_int_eq((int)ARRAY_LEN(matrix), AUTHZ__COUNT - 1);
	ck_assert_ptr_null(authz_rule(AUTHZ_UNSET));
	ck_assert_ptr_null(authz_rule(AUTHZ__COUNT));
	for (int r = 0; r < ROLE__COUNT; r++) {
		ck_assert_str_eq(authz_role_name(r), roles[r]);
		ck_assert_int_eq(authz_role_parse(roles[r]), r);
	}
	ck_assert_int_eq(authz_role_parse("admin"), -1);
	ck_assert_int_eq(authz_role_parse(""), -1);
}
END_TEST

/* One row of the matrix: every role with every combination of scopes. */
START_TEST(test_matrix_cell)
{
	const struct authz_rule *rule = authz_rule(matrix[_i].action);
	struct token_identity who;
	char why[320];

	ck_assert_ptr_nonnull(rule);
	ck_assert_str_eq(rule->name, matrix[_i].name);
	ck_assert_msg(rule->what != NULL && rule->what[0] != '\0', "%s: no description", rule->name);
	for (int r = 0; r < ROLE__COUNT; r++) {
		for (int s = 0; s < 4; s++) {
			bool read = s & 1, write = s & 2;
			bool scope_ok = strcmp(matrix[_i].scope, "none") == 0 ||
			                (strcmp(matrix[_i].scope, "read") == 0 && read) ||
			                (strcmp(matrix[_i].scope, "write") == 0 && write);
			bool want = matrix[_i].roles[r] && scope_ok;
			int rc;

			as(&who, roles[r], read, write);
			why[0] = '\0';
			rc = authz_check(&who, matrix[_i].action, NULL, why, sizeof why);
			ck_assert_msg((rc == 0) == want, "%s as %s (read %d write %d): %s",
			              matrix[_i].name, roles[r], read, write, rc == 0 ? "allowed" : why);
			ck_assert(authz_allowed(&who, matrix[_i].action) == want);
			if (!want) {
				/* The refusal names what is missing. */
				ck_assert_msg(strstr(why, matrix[_i].name) != NULL, "%s", why);
				ck_assert_msg(strstr(why, matrix[_i].roles[r] ? matrix[_i].scope
				                     : roles[r]) != NULL, "%s", why);
			}
		}
	}
	/* No role, an unknown role: nothing. */
	as(&who, "", true, true);
	ck_assert_int_eq(authz_check(&who, matrix[_i].action, NULL, why, sizeof why), -1);
	as(&who, "superuser", true, true);
	ck_assert_int_eq(authz_check(&who, matrix[_i].action, NULL, why, sizeof why), -1);
}
END_TEST

START_TEST(test_unset_action_denied)
{
	struct token_identity who;
	char why[320];

	as(&who, "org_admin", true, true);
	ck_assert_int_eq(authz_check(&who, AUTHZ_UNSET, NULL, why, sizeof why), -1);
	ck_assert_int_eq(authz_check(&who, AUTHZ__COUNT, NULL, why, sizeof why), -1);
}
END_TEST

START_TEST(test_device_tag)
{
	struct token_identity who;
	struct device_ref d = { .id = 1, .name = "web-1", .tagged = false };
	char why[320];

	as(&who, "operator", true, true);
	snprintf(who.device_tag, sizeof who.device_tag, "lab");
	ck_assert_int_eq(authz_check(&who, AUTHZ_DEVICES_READ, &d, why, sizeof why), -1);
	ck_assert_msg(strstr(why, "'lab'") != NULL, "%s", why);
	d.tagged = true;
	ck_assert_int_eq(authz_check(&who, AUTHZ_DEVICES_READ, &d, why, sizeof why), 0);
	/* The tag never widens what the role allows. */
	ck_assert_int_eq(authz_check(&who, AUTHZ_DEVICES_WRITE, &d, why, sizeof why), -1);
}
END_TEST

START_TEST(test_rows_name_actions)
{
	for (int i = 0; i < tool_count(); i++)
		ck_assert_msg(authz_rule(tool_at(i)->action) != NULL, "tool %s", tool_at(i)->name);
	for (int i = 0; i < route_count(); i++) {
		const struct route *r = route_at(i);
		if (r->flags & ROUTE_AUTH)
			ck_assert_msg(authz_rule(r->action) != NULL, "%s %s", r->method, r->path);
		else
			ck_assert_msg(r->action == AUTHZ_UNSET, "%s %s: an action but no token",
			              r->method, r->path);
		ck_assert_msg(r->summary != NULL && r->summary[0] != '\0', "%s %s: no summary",
		              r->method, r->path);
		ck_assert_msg(!(r->flags & ROUTE_DEVICE) || strstr(r->path, "{id}") != NULL,
		              "%s %s: a device route without {id}", r->method, r->path);
	}
	ck_assert_ptr_null(route_at(route_count()));
}
END_TEST

/* What each device tool and route does, as the README's tables say. */
static const struct {
	const char *method;		/* NULL: a tool */
	const char *name;		/* tool name or route path */
	enum authz_action action;
} device_rows[] = {
	{ NULL, "get_screenshot", AUTHZ_CONSOLE_READ },
	{ NULL, "get_device_health", AUTHZ_DEVICES_HEALTH },
	{ NULL, "type_text", AUTHZ_INPUT_WRITE },
	{ NULL, "send_keys", AUTHZ_INPUT_WRITE },
	{ NULL, "mouse_move", AUTHZ_INPUT_WRITE },
	{ NULL, "mouse_click", AUTHZ_INPUT_WRITE },
	{ NULL, "mouse_scroll", AUTHZ_INPUT_WRITE },
	{ NULL, "reset_hid", AUTHZ_INPUT_WRITE },
	{ NULL, "power_action", AUTHZ_POWER_WRITE },
	{ NULL, "hdmi_reset", AUTHZ_POWER_WRITE },
	{ NULL, "get_power_state", AUTHZ_POWER_READ },
	{ NULL, "list_isos", AUTHZ_MEDIA_READ },
	{ NULL, "get_mounted_iso", AUTHZ_MEDIA_READ },
	{ NULL, "mount_iso", AUTHZ_MEDIA_WRITE },
	{ NULL, "unmount_iso", AUTHZ_MEDIA_WRITE },
	{ "GET", "/api/v1/devices/{id}/screenshot", AUTHZ_CONSOLE_READ },
	{ "GET", "/api/v1/devices/{id}/health", AUTHZ_DEVICES_HEALTH },
	{ "POST", "/api/v1/devices/{id}/keys", AUTHZ_INPUT_WRITE },
	{ "POST", "/api/v1/devices/{id}/text", AUTHZ_INPUT_WRITE },
	{ "POST", "/api/v1/devices/{id}/mouse", AUTHZ_INPUT_WRITE },
	{ "GET", "/api/v1/devices/{id}/power", AUTHZ_POWER_READ },
	{ "POST", "/api/v1/devices/{id}/power", AUTHZ_POWER_WRITE },
	{ "GET", "/api/v1/devices/{id}/media", AUTHZ_MEDIA_READ },
	{ "POST", "/api/v1/devices/{id}/media", AUTHZ_MEDIA_WRITE },
	{ "DELETE", "/api/v1/devices/{id}/media", AUTHZ_MEDIA_WRITE },
	{ "POST", "/api/v1/devices/{id}/hid/reset", AUTHZ_INPUT_WRITE },
	{ "POST", "/api/v1/devices/{id}/hdmi/reset", AUTHZ_POWER_WRITE },
};

/*
 * Each device tool and route names its action, works on one device, and is
 * refused to exactly the roles the matrix refuses: a viewer may look, not
 * act; an auditor neither.
 */
START_TEST(test_device_rows)
{
	const struct tool *t = NULL;
	const struct route *r = NULL;
	struct token_identity who;
	char why[320];
	enum authz_action a = device_rows[_i].action;
	bool write = authz_rule(a)->scope == AUTHZ_SCOPE_WRITE;

	if (device_rows[_i].method == NULL) {
		for (int i = 0; i < tool_count(); i++)
			if (strcmp(tool_at(i)->name, device_rows[_i].name) == 0)
				t = tool_at(i);
		ck_assert_msg(t != NULL, "no tool %s", device_rows[_i].name);
		ck_assert_int_eq(t->action, a);
		ck_assert_msg(t->device, "%s: no device argument", t->name);
		ck_assert_msg(t->hints.read_only == !write, "%s: readOnlyHint", t->name);
		ck_assert_msg(t->hints.open_world, "%s: touches a device: openWorldHint", t->name);
	} else {
		for (int i = 0; i < route_count(); i++)
			if (strcmp(route_at(i)->path, device_rows[_i].name) == 0 &&
			    strcmp(route_at(i)->method, device_rows[_i].method) == 0)
				r = route_at(i);
		ck_assert_msg(r != NULL, "no route %s %s", device_rows[_i].method,
		              device_rows[_i].name);
		ck_assert_int_eq(r->action, a);
		ck_assert_msg((r->flags & (ROUTE_AUTH | ROUTE_AUDIT | ROUTE_DEVICE)) ==
		              (ROUTE_AUTH | ROUTE_AUDIT | ROUTE_DEVICE), "%s: not an audited device "
		              "route", r->path);
	}
	as(&who, "org_admin", true, true);
	ck_assert_int_eq(authz_check(&who, a, NULL, why, sizeof why), 0);
	as(&who, "operator", true, true);
	ck_assert_int_eq(authz_check(&who, a, NULL, why, sizeof why), 0);
	as(&who, "viewer", true, true);
	ck_assert_int_eq(authz_check(&who, a, NULL, why, sizeof why), write ? -1 : 0);
	as(&who, "auditor", true, true);
	ck_assert_int_eq(authz_check(&who, a, NULL, why, sizeof why), -1);
	as(&who, "operator", true, false);
	ck_assert_int_eq(authz_check(&who, a, NULL, why, sizeof why), write ? -1 : 0);
}
END_TEST

/* Destructive tools are the ones that confirm. */
START_TEST(test_destructive_hints)
{
	for (int i = 0; i < tool_count(); i++) {
		const struct tool *t = tool_at(i);
		bool confirms = strcmp(t->name, "power_action") == 0 ||
		                strcmp(t->name, "mount_iso") == 0;
		json_object *props = json_object_object_get(tool_input_schema(i), "properties");

		if (t->device)
			ck_assert_msg(t->hints.destructive == confirms, "%s: destructiveHint", t->name);
		if (confirms)
			ck_assert_msg(json_object_object_get_ex(props, MCP_CONFIRM_ARG, NULL) && t->streams,
			              "%s: no confirm argument or no stream for elicitation", t->name);
	}
}
END_TEST

static Suite *authz_suite(void)
{
	Suite *s = suite_create("fcgi_authz");
	TCase *tc = tcase_create("authz");

	tcase_add_test(tc, test_matrix_complete);
	tcase_add_loop_test(tc, test_matrix_cell, 0, (int)ARRAY_LEN(matrix));
	tcase_add_test(tc, test_unset_action_denied);
	tcase_add_test(tc, test_device_tag);
	tcase_add_test(tc, test_rows_name_actions);
	tcase_add_loop_test(tc, test_device_rows, 0, (int)ARRAY_LEN(device_rows));
	tcase_add_test(tc, test_destructive_hints);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(authz_suite());
}
