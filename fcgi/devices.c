/*
 * devices.c - finding a device of the caller's organisation by what a
 * person or a model calls it (its id or its name), and how REST and MCP
 * show one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fcgi.h"

int device_find(const struct token_identity *who, const char *ref, struct device_ref *d)
{
	static const char sql[] =
		"SELECT id, name, kind, enabled, $4::text IS NULL OR $4 = ANY(tags) "
		"FROM devices WHERE org_id = $1 "
		"  AND (name = $2 OR ($3::bigint IS NOT NULL AND id = $3::bigint)) "
		"ORDER BY name = $2 DESC LIMIT 1";
	char org[24];
	const char *p[4] = { org, ref, NULL, who->device_tag[0] ? who->device_tag : NULL };
	long long id;
	const char *err;
	PGresult *r;
	int found;

	memset(d, 0, sizeof *d);
	if (ref == NULL || *ref == '\0' || strlen(ref) > DEVICE_NAME_MAX)
		return 1;
	snprintf(org, sizeof org, "%lld", who->org_id);
	/* A name that reads as a number is still tried as a name first. */
	if (parse_ll(ref, 1, (1LL << 62), &id, &err) == 0)
		p[2] = ref;
	if ((r = db_query(sql, 4, p)) == NULL)
		return -1;
	found = PQntuples(r) == 1;
	if (found) {
		d->id = atoll(PQgetvalue(r, 0, 0));
		snprintf(d->name, sizeof d->name, "%s", PQgetvalue(r, 0, 1));
		snprintf(d->kind, sizeof d->kind, "%s", PQgetvalue(r, 0, 2));
		d->enabled = PQgetvalue(r, 0, 3)[0] == 't';
		d->tagged = PQgetvalue(r, 0, 4)[0] == 't';
	}
	PQclear(r);
	return found ? 0 : 1;
}

int device_complete(const struct token_identity *who, const char *prefix, json_object *values,
                    int max, bool *more)
{
	/* starts_with, not LIKE: a prefix with % or _ means those characters. */
	static const char sql[] =
		"SELECT name FROM devices WHERE org_id = $1 "
		"  AND starts_with(lower(name), lower($2)) ORDER BY name LIMIT $3";
	char org[24], limit[24];
	const char *p[3] = { org, prefix, limit };
	PGresult *r;
	int n;

	snprintf(org, sizeof org, "%lld", who->org_id);
	snprintf(limit, sizeof limit, "%d", max + 1);
	if ((r = db_query(sql, 3, p)) == NULL)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n && i < max; i++)
		json_object_array_add(values, json_object_new_string(PQgetvalue(r, i, 0)));
	*more = n > max;
	PQclear(r);
	return 0;
}

json_object *device_row_json(const PGresult *r, int row)
{
	json_object *d = json_object_new_object();
	json_object *tags = json_tokener_parse(PQgetvalue(r, row, 4));

	if (!json_object_is_type(tags, json_type_array)) {
		json_object_put(tags);
		tags = json_object_new_array();
	}
	json_object_object_add(d, "id", json_object_new_int64(atoll(PQgetvalue(r, row, 0))));
	json_object_object_add(d, "name", json_object_new_string(PQgetvalue(r, row, 1)));
	json_object_object_add(d, "kind", json_object_new_string(PQgetvalue(r, row, 2)));
	json_object_object_add(d, "url", json_object_new_string(PQgetvalue(r, row, 3)));
	json_object_object_add(d, "tags", tags);
	json_object_object_add(d, "enabled", json_object_new_boolean(PQgetvalue(r, row, 5)[0] == 't'));
	json_object_object_add(d, "has_credentials",
	                       json_object_new_boolean(PQgetvalue(r, row, 6)[0] == 't'));
	json_object_object_add(d, "screen_width", PQgetisnull(r, row, 7) ? NULL
		: json_object_new_int(atoi(PQgetvalue(r, row, 7))));
	json_object_object_add(d, "screen_height", PQgetisnull(r, row, 8) ? NULL
		: json_object_new_int(atoi(PQgetvalue(r, row, 8))));
	json_object_object_add(d, "created_at", json_object_new_string(PQgetvalue(r, row, 9)));
	json_object_object_add(d, "keep_warm", json_object_new_boolean(PQgetvalue(r, row, 10)[0] == 't'));
	return d;
}
