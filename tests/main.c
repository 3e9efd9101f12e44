/*
 * The test runner: `yt_tests SUITE...` runs the named suites (all when none is named) through
 * CUnit's basic interface and exits non-zero when any assertion failed. `yt_tests SUITE/TEST`
 * runs one test of a suite (for reruns under valgrind and the like).
 */
#include "suites.h"

#include <CUnit/Basic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    /* Tests write to sockets whose peers they kill on purpose. */
    signal(SIGPIPE, SIG_IGN);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    size_t n = sizeof yt_suites / sizeof yt_suites[0];
    const char *one = argc == 2 ? strchr(argv[1], '/') : NULL;
    for (size_t i = 0; i < n; i++) {
        bool wanted = argc < 2;
        for (int a = 1; a < argc; a++) {
            size_t len = one ? (size_t)(one - argv[a]) : strlen(argv[a]);
            if (strlen(yt_suites[i].name) == len && strncmp(argv[a], yt_suites[i].name, len) == 0)
                wanted = true;
        }
        if (wanted)
            yt_suites[i].add();
    }
    if (CU_get_registry()->uiNumberOfSuites == 0) {
        fprintf(stderr, "no such suite\n");
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (one) {
        CU_pSuite suite = CU_get_registry()->pSuite;
        CU_pTest test = suite ? CU_get_test(suite, one + 1) : NULL;
        if (!test) {
            fprintf(stderr, "no such test: %s\n", argv[1]);
            CU_cleanup_registry();
            return 2;
        }
        CU_basic_run_test(suite, test);
    } else {
        CU_basic_run_tests();
    }
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 2;
    }
    return failed ? 1 : 0;
}
