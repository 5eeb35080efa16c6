/*
 * fuzz_audit.c - libFuzzer target for the audit chain's readers of outside
 * bytes: any input given to the export verifier must end in a report (never
 * a crash, never "intact" for what is not an export), and any input that
 * json-c accepts must serialise canonically in a stable way: serialising,
 * parsing and serialising again gives the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void canon_stable(const uint8_t *data, size_t size)
{
	json_tokener *tok = json_tokener_new_ex(32);
	json_object *o = json_tokener_parse_ex(tok, (const char *)data, (int)size), *again;
	struct buf a = BUF_INIT, b = BUF_INIT;

	if (o != NULL && audit_canon_json(o, &a) == 0) {
		again = json_tokener_parse(a.data);
		if (again == NULL || audit_canon_json(again, &b) != 0 || a.len != b.len ||
		    memcmp(a.data, b.data, a.len) != 0)
			abort();
		for (size_t i = 0; i < a.len; i++)
			if (a.data[i] < 0x20 || a.data[i] > 0x7e)
				abort();
		json_object_put(again);
	}
	json_object_put(o);
	json_tokener_free(tok);
	buf_free(&a);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_report rep;
	FILE *f;

	if (size == 0 || size > 1 << 20)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (f == NULL)
		abort();
	if (audit_verify_stream(f, NULL, &rep) != 0)
		abort();
	fclose(f);
	if (audit_problem_name(rep.problem)[0] == 'u')
		abort();
	canon_stable(data, size);
	return 0;
}
