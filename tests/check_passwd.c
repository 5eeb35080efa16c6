/*
 * check_passwd.c - scrypt password hashes: the RFC 7914 known answers read
 * through the stored form, round trips, wrong passwords, the shape of new
 * hashes, and stored strings that are malformed or ask too much.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "passwd.h"
#include "check_run.h"

/* RFC 7914 section 12, the second and third vectors, as stored strings. */
static const char kat_nacl[] =
	"scrypt$1024$8$16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxye"
	"vuUqD7m2DYMvfoswGQA";
static const char kat_sodium[] =
	"scrypt$16384$8$1$U29kaXVtQ2hsb3JpZGU$cCO9yzr9c0hGHAbNgf046/2o+7qQT44+qbVD9lRdofLVQylVYT8Pz2"
	"LUlwUkKpr55h6F3A1lHkDfzwF7RVdYhw";

static int verify(const char *pw, const char *stored)
{
	return passwd_verify(pw, strlen(pw), stored);
}

START_TEST(test_rfc7914)
{
	ck_assert_int_eq(verify("password", kat_nacl), 1);
	ck_assert_int_eq(verify("pleaseletmein", kat_sodium), 1);
	ck_assert_int_eq(verify("Password", kat_nacl), 0);
	ck_assert_int_eq(verify("pleaseletmei", kat_sodium), 0);
	ck_assert_int_eq(verify("", kat_nacl), 0);
}
END_TEST

START_TEST(test_round_trip)
{
	char a[PASSWD_ENCODED_MAX], b[PASSWD_ENCODED_MAX];
	unsigned n, r, p;
	char salt[40], hash[60];
	static const char pw[] = "correct horse battery staple";
	static const char nul[] = "with\0nul";

	ck_assert_int_eq(passwd_hash(pw, strlen(pw), a, sizeof a), 0);
	ck_assert_int_eq(passwd_hash(pw, strlen(pw), b, sizeof b), 0);
	ck_assert_str_ne(a, b);			/* a fresh salt each time */
	ck_assert_int_eq(sscanf(a, "scrypt$%u$%u$%u$%39[^$]$%59s", &n, &r, &p, salt, hash), 5);
	ck_assert_uint_eq(n, PASSWD_N);
	ck_assert_uint_eq(r, PASSWD_R);
	ck_assert_uint_eq(p, PASSWD_P);
	ck_assert_uint_eq(strlen(salt), 22);	/* 16 bytes */
	ck_assert_uint_eq(strlen(hash), 43);	/* 32 bytes */
	ck_assert(strstr(a, pw) == NULL);
	ck_assert_int_eq(verify(pw, a), 1);
	ck_assert_int_eq(verify(pw, b), 1);
	ck_assert_int_eq(verify("correct horse battery stapl", a), 0);
	ck_assert_int_eq(verify("correct horse battery staple ", a), 0);
	ck_assert_int_eq(verify("Correct horse battery staple", a), 0);
	/* A password is its bytes, NUL included. */
	ck_assert_int_eq(passwd_hash(nul, sizeof nul - 1, a, sizeof a), 0);
	ck_assert_int_eq(passwd_verify(nul, sizeof nul - 1, a), 1);
	ck_assert_int_eq(passwd_verify(nul, 4, a), 0);
}
END_TEST

START_TEST(test_limits)
{
	char out[PASSWD_ENCODED_MAX], big[PASSWD_MAX + 2];

	memset(big, 'x', sizeof big);
	ck_assert_int_eq(passwd_hash("", 0, out, sizeof out), -1);
	ck_assert_int_eq(passwd_hash(big, PASSWD_MAX + 1, out, sizeof out), -1);
	ck_assert_int_eq(passwd_hash("abc", 3, out, 40), -1);	/* no room */
	ck_assert_int_eq(passwd_hash(big, PASSWD_MAX, out, sizeof out), 0);
	ck_assert_int_eq(passwd_verify(big, PASSWD_MAX, out), 1);
	ck_assert_int_eq(passwd_verify(big, PASSWD_MAX + 1, out), 0);
	passwd_dummy(big, sizeof big);
	passwd_dummy("", 0);
}
END_TEST

/* Stored strings that match nothing: -1, whatever the password. */
static const char *const malformed[] = {
	"",
	"scrypt",
	"scrypt$",
	"bcrypt$1024$8$16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"$2y$10$abcdefghijklmnopqrstuuKq3pG1w7yVvY0O7eV6h1qv4j2nq1mG",
	"scrypt$1000$8$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* N not 2^k */
	"scrypt$0$8$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"scrypt$1$8$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"scrypt$01024$8$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* leading 0 */
	"scrypt$2097152$8$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* N too big */
	"scrypt$1048576$32$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* 4 GiB */
	"scrypt$1024$0$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"scrypt$1024$8$0$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"scrypt$1024$8$17$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"scrypt$1024$8$-1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"scrypt$1024$8$1$$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",		/* no salt */
	"scrypt$1024$8$1$TmFDbA$",						/* no hash */
	"scrypt$1024$8$1$TmFDbA$/bq+HJ00cgB4VucZ",				/* hash too short */
	"scrypt$1024$8$1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* padding */
	"scrypt$1024$8$1$TmFDbB$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* stray bits */
	"scrypt$1024$8$1$Tm-DbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* alphabet */
	"scrypt$1024$8$1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI$x",
	"scrypt$1024$8$1$TmFDb$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* length 5 */
	"scrypt$1024$8$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",	/* no p */
	"scrypt$1024$8$1$TmFDbA /bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
	"kvmg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
};

START_TEST(test_malformed)
{
	const char *s = malformed[_i];

	ck_assert_msg(verify("password", s) == -1, "'%s'", s);
	ck_assert_msg(verify("", s) == -1, "'%s'", s);
}
END_TEST

START_TEST(test_null_stored)
{
	ck_assert_int_eq(verify("password", NULL), -1);
}
END_TEST

static Suite *passwd_suite(void)
{
	Suite *s = suite_create("passwd");
	TCase *tc = tcase_create("scrypt");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rfc7914);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_limits);
	tcase_add_loop_test(tc, test_malformed, 0, (int)ARRAY_LEN(malformed));
	tcase_add_test(tc, test_null_stored);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(passwd_suite());
}
