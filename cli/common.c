/*
 * common.c - helpers the subcommands share: JSON output and organisations
 * by name.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "db.h"

void cli_print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int cli_org_lookup(const char *name, long long *id)
{
	static const char sql[] = "SELECT id FROM organisations WHERE name = $1";
	const char *params[1] = { name };
	PGresult *r = db_query(sql, 1, params);

	if (r == NULL) {
		fprintf(stderr, "kvmgate: %s\n", db_last_error());
		return -1;
	}
	if (PQntuples(r) != 1) {
		fprintf(stderr, "kvmgate: no organisation named '%s'\n", name);
		PQclear(r);
		return -1;
	}
	*id = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

bool cli_text_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
		n += (*p & 0xC0) != 0x80;
	}
	return n >= 1 && n <= max;
}
