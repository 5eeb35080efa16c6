/*
 * body.c - a REST request body checked against a table of fields: a JSON
 * object whose members are all declared, each of its declared type and
 * bounds; strings are UTF-8 without control characters. A refusal is a 400
 * naming the field.
 */
#include <stdio.h>
#include <string.h>

#include "fcgi.h"

static const char *const type_words[] = {
	[FIELD_STRING] = "a string", [FIELD_INT] = "an integer", [FIELD_BOOL] = "true or false",
	[FIELD_TAGS] = "an array of strings", [FIELD_ENUM] = "a string",
	[FIELD_TEXT] = "a string", [FIELD_KEYS] = "a string or an array of strings",
	[FIELD_NUMBER] = "a number",
};

/*
 * Characters of UTF-8 text s, or -1 when it holds a control character
 * (line breaks and tabs allowed when multiline).
 */
static long long text_chars(const char *s, bool multiline)
{
	long long n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 || *p == 0x7f) &&
		    !(multiline && (*p == '\n' || *p == '\r' || *p == '\t')))
			return -1;
		n += (*p & 0xC0) != 0x80;
	}
	return n;
}

/* Checks a string against f's bounds; 0, or -1 with why. */
static int check_text(const struct field *f, const char *what, json_object *v, char *why,
                      size_t len)
{
	long long n;

	if (!json_object_is_type(v, json_type_string)) {
		snprintf(why, len, "'%s' must be a string", what);
		return -1;
	}
	n = text_chars(json_object_get_string(v), f->type == FIELD_TEXT);
	if (n < 0 || (size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v))) {
		snprintf(why, len, "'%s' must not contain control characters", what);
		return -1;
	}
	if (n < f->min || n > f->max) {
		snprintf(why, len, "'%s' must be %lld to %lld characters long", what, f->min, f->max);
		return -1;
	}
	return 0;
}

/* Checks one member against its field; 0, or -1 with why. */
static int check_field(const struct field *f, json_object *v, char *why, size_t len)
{
	long long n;

	switch (f->type) {
	case FIELD_STRING:
	case FIELD_TEXT:
		return check_text(f, f->name, v, why, len);
	case FIELD_KEYS: {
		struct field key = { f->name, FIELD_STRING, 1, 64, NULL, false, NULL };
		if (json_object_is_type(v, json_type_string))
			return check_text(&key, f->name, v, why, len);
		if (!json_object_is_type(v, json_type_array) ||
		    (long long)json_object_array_length(v) < f->min ||
		    (long long)json_object_array_length(v) > f->max) {
			snprintf(why, len, "'%s' must be a string or an array of %lld to %lld strings",
			         f->name, f->min, f->max);
			return -1;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (check_text(&key, f->name, json_object_array_get_idx(v, i), why, len) < 0)
				return -1;
		return 0;
	}
	case FIELD_ENUM:
		if (json_object_is_type(v, json_type_string))
			for (const char *const *e = f->values; *e; e++)
				if (strcmp(*e, json_object_get_string(v)) == 0)
					return 0;
		{
			struct buf b = BUF_INIT;
			for (const char *const *e = f->values; *e; e++)
				buf_printf(&b, "%s%s", b.len ? ", " : "", *e);
			snprintf(why, len, "'%s' must be one of: %s", f->name, b.data);
			buf_free(&b);
		}
		return -1;
	case FIELD_INT:
		n = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || n < f->min || n > f->max) {
			snprintf(why, len, "'%s' must be an integer from %lld to %lld", f->name,
			         f->min, f->max);
			return -1;
		}
		return 0;
	case FIELD_NUMBER:
		if ((!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) ||
		    !(json_object_get_double(v) >= (double)f->min) ||
		    !(json_object_get_double(v) <= (double)f->max)) {
			snprintf(why, len, "'%s' must be a number from %lld to %lld", f->name,
			         f->min, f->max);
			return -1;
		}
		return 0;
	case FIELD_BOOL:
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(why, len, "'%s' must be true or false", f->name);
			return -1;
		}
		return 0;
	case FIELD_TAGS: {
		struct field tag = { f->name, FIELD_STRING, 1, 64, NULL, false, NULL };
		if (!json_object_is_type(v, json_type_array) ||
		    (long long)json_object_array_length(v) > f->max) {
			snprintf(why, len, "'%s' must be an array of at most %lld strings", f->name,
			         f->max);
			return -1;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (check_text(&tag, f->name, json_object_array_get_idx(v, i), why, len) < 0)
				return -1;
		return 0;
	}
	}
	return -1;
}

const char *field_type_word(enum field_type t)
{
	return (unsigned)t < ARRAY_LEN(type_words) ? type_words[t] : "a value";
}

int body_parse(struct request *req, const struct field *fields, bool create, json_object **out)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	const struct field *f;
	char why[256];

	*out = NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = req->body_len > 0 && memchr(req->body, '\0', req->body_len) == NULL
		? json_tokener_parse_ex(tok, req->body, (int)req->body_len + 1) : NULL;
	if (json_tokener_get_error(tok) != json_tokener_success)
		o = NULL;
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		resp_error(req, 400, "bad_request", "the body must be a JSON object (UTF-8)");
		return -1;
	}
	json_object_object_foreach(o, key, v) {
		for (f = fields; f->name != NULL && strcmp(f->name, key) != 0; f++)
			;
		if (f->name == NULL) {
			snprintf(why, sizeof why, "unknown field '%.64s'", key);
			goto fail;
		}
		if (check_field(f, v, why, sizeof why) < 0)
			goto fail;
	}
	for (f = fields; create && f->name != NULL; f++) {
		if (f->required && !json_object_object_get_ex(o, f->name, NULL)) {
			snprintf(why, sizeof why, "the field '%s' is required", f->name);
			goto fail;
		}
	}
	*out = o;
	return 0;
fail:
	json_object_put(o);
	resp_error(req, 400, "bad_request", "%s", why);
	return -1;
}
