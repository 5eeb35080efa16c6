/*
 * check_run.h - the one way a unit-test program runs its suite: every test
 * in a forked child (CK_FORK decides), exit status 0 only when all passed.
 */
#ifndef KVMGATE_CHECK_RUN_H
#define KVMGATE_CHECK_RUN_H

#include <check.h>

/* Runs suite s (the runner takes ownership) and returns the exit status. */
static inline int check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

#endif
