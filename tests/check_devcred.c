/*
 * check_devcred.c - device credentials sealed under the master key: round
 * trips, a fresh nonce each time, and refusal when the organisation, the
 * key id, the nonce or the ciphertext is not the one sealed.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "devcred.h"
#include "check_run.h"

static void setup(void)
{
	setenv("KVMGATE_MASTER_KEY",
	       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);
	ck_assert_int_eq(conf_load(), 0);
}

/* Opens s for org; the credentials object or NULL. */
static json_object *open_for(long long org, const struct devcred_sealed *s)
{
	json_object *creds = NULL;
	char why[256];

	if (devcred_open(org, s->nonce_hex, s->ct_hex, s->key_id, &creds, why, sizeof why) < 0) {
		ck_assert(why[0] != '\0');
		return NULL;
	}
	return creds;
}

START_TEST(test_round_trip)
{
	struct devcred_sealed a, b;
	json_object *c;
	char why[256];

	ck_assert_int_eq(devcred_seal(7, "admin", "pa55\"'<>", &a, why, sizeof why), 0);
	ck_assert_int_eq(devcred_seal(7, "admin", "pa55\"'<>", &b, why, sizeof why), 0);
	ck_assert_str_ne(a.nonce_hex, b.nonce_hex);
	ck_assert_str_ne(a.ct_hex, b.ct_hex);
	ck_assert_uint_eq(strlen(a.key_id), SECRET_KEY_ID_LEN);
	ck_assert(strstr(a.ct_hex, "61646d696e") == NULL);	/* "admin" in hex */
	c = open_for(7, &a);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(c, "username")), "admin");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(c, "password")), "pa55\"'<>");
	json_object_put(c);
	devcred_sealed_cleanup(&a);
	devcred_sealed_cleanup(&b);
	ck_assert_ptr_null(a.nonce_hex);
}
END_TEST

START_TEST(test_refusals)
{
	struct devcred_sealed a;
	char why[256];

	ck_assert_int_eq(devcred_seal(7, NULL, "p", &a, why, sizeof why), 0);
	ck_assert_ptr_null(open_for(8, &a));			/* another organisation */
	a.key_id[0] = a.key_id[0] == '0' ? '1' : '0';
	ck_assert_ptr_null(open_for(7, &a));			/* another key */
	a.key_id[0] = a.key_id[0] == '0' ? '1' : '0';
	a.ct_hex[0] = a.ct_hex[0] == '0' ? '1' : '0';
	ck_assert_ptr_null(open_for(7, &a));			/* altered ciphertext */
	a.ct_hex[0] = a.ct_hex[0] == '0' ? '1' : '0';
	a.nonce_hex[0] = a.nonce_hex[0] == '0' ? '1' : '0';
	ck_assert_ptr_null(open_for(7, &a));			/* another nonce */
	a.nonce_hex[0] = a.nonce_hex[0] == '0' ? '1' : '0';
	a.ct_hex[4] = 'z';
	ck_assert_ptr_null(open_for(7, &a));			/* not hex */
	a.ct_hex[4] = '\0';
	ck_assert_ptr_null(open_for(7, &a));			/* shorter than a tag */
	devcred_sealed_cleanup(&a);
}
END_TEST

START_TEST(test_no_key)
{
	struct devcred_sealed a;
	char why[256] = "";

	unsetenv("KVMGATE_MASTER_KEY");
	setenv("KVMGATE_MASTER_KEY_FILE", "/nonexistent/master.key", 1);
	ck_assert_int_eq(conf_load(), 0);
	ck_assert_int_eq(devcred_seal(7, "u", "p", &a, why, sizeof why), -1);
	ck_assert(why[0] != '\0');
	ck_assert_ptr_null(a.nonce_hex);
}
END_TEST

static Suite *devcred_suite(void)
{
	Suite *s = suite_create("devcred");
	TCase *tc = tcase_create("sealing");
	TCase *none = tcase_create("no key");

	tcase_add_unchecked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(none, test_no_key);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, none);
	return s;
}

int main(void)
{
	return check_run(devcred_suite());
}
