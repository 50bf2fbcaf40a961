/*
 * A minimal test harness for the C and C++ tests of the C API: CHECK records a failure and
 * goes on, RUN runs one test function and prints its line, finish() prints the summary in
 * cargo's format ("test result: ok. N passed; M failed"), which scripts/test.sh adds up.
 */

#ifndef SLABCACHE_TEST_CHECK_H
#define SLABCACHE_TEST_CHECK_H

#include <stdio.h>

#include "slabcache.h"

static int check_failures_in_test;
static int tests_passed;
static int tests_failed;

#define CHECK(condition)                                                              \
    do {                                                                              \
        if (!(condition)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,          \
                    #condition);                                                      \
            check_failures_in_test++;                                                 \
        }                                                                             \
    } while (0)

/* Checks that `call` returns the status `expected`, naming both when it does not. */
#define CHECK_STATUS(call, expected)                                                  \
    do {                                                                              \
        int check_status_ = (call);                                                   \
        if (check_status_ != (expected)) {                                            \
            fprintf(stderr, "%s:%d: %s\n  returned %s\n  expected %s\n", __FILE__,     \
                    __LINE__, #call, slabcache_status_str(check_status_),             \
                    slabcache_status_str(expected));                                  \
            check_failures_in_test++;                                                 \
        }                                                                             \
    } while (0)

static void run_test(const char *name, void (*test)(void)) {
    check_failures_in_test = 0;
    test();
    printf("test %s ... %s\n", name, check_failures_in_test == 0 ? "ok" : "FAILED");
    fflush(stdout);
    if (check_failures_in_test == 0) {
        tests_passed++;
    } else {
        tests_failed++;
    }
}

#define RUN(test) run_test(#test, test)

/* Prints the summary line; the process's exit status. */
static int finish(void) {
    printf("\ntest result: %s. %d passed; %d failed\n", tests_failed == 0 ? "ok" : "FAILED",
           tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}

#endif /* SLABCACHE_TEST_CHECK_H */
