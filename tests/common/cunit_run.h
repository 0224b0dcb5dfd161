/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared main() body for CUnit test programs. */
#ifndef HPF_TEST_CUNIT_RUN_H
#define HPF_TEST_CUNIT_RUN_H

#include <CUnit/Basic.h>
#include <stdio.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

/*
 * Register one suite of cases, run it verbosely, and return the exit status:
 * 0 only when every test ran and passed.  CU_basic_run_tests() returns 0
 * even when assertions fail, so count failures ourselves.
 */
static inline int cunit_run(const char *suite_name, const struct test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite(suite_name, NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return 2;
    }
    for (const struct test_case *t = cases; t->name; t++)
        if (!CU_add_test(s, t->name, t->fn)) {
            CU_cleanup_registry();
            return 2;
        }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    printf("\n");
    return (failed == 0 && ran > 0) ? 0 : 1;
}

#endif
