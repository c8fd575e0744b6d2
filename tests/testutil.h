/* SPDX-License-Identifier: Apache-2.0 */
/* A small test harness shared by every test binary.
 *
 *   static void test_unit_condition_expected(void) { CHECK(x == 1); }
 *   static const kt_case cases[] = { KT_CASE(test_unit_condition_expected) };
 *   int main(int argc, char **argv) { return kt_main(argc, argv, cases, KT_COUNT(cases)); }
 *
 * CHECK records a failure (file:line and the expression) and lets the test
 * go on; REQUIRE stops the current test. Each binary ends with the line
 * "N passed, N failed" and exits non-zero if any test failed. Given
 * arguments, only the tests whose names contain one of them run.
 *
 * THREAD SAFETY: CHECK may be used from worker threads (failures are
 * counted atomically); REQUIRE only from the test's own thread. */
#ifndef KT_TESTUTIL_H
#define KT_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} kt_case;

#define KT_CASE(fn) {#fn, fn}
#define KT_COUNT(a) (sizeof(a) / sizeof((a)[0]))

void kt_fail(const char *file, int line, const char *expr);
int kt_main(int argc, char **argv, const kt_case *cases, size_t count);
/* Jump out of the current test (used by REQUIRE). */
void kt_abort_test(void);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            kt_fail(__FILE__, __LINE__, #cond);                                \
    } while (0)
#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            kt_fail(__FILE__, __LINE__, #cond);                                \
            kt_abort_test();                                                   \
        }                                                                      \
    } while (0)
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long kt_a_ = (long long)(a), kt_b_ = (long long)(b);              \
        if (kt_a_ != kt_b_) {                                                  \
            char kt_m_[256];                                                   \
            snprintf(kt_m_, sizeof kt_m_, "%s == %s (%lld != %lld)", #a, #b,   \
                     kt_a_, kt_b_);                                            \
            kt_fail(__FILE__, __LINE__, kt_m_);                                \
        }                                                                      \
    } while (0)
#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* A fresh private directory under $TMPDIR (or /tmp), removed by
 * kt_tmpdir_cleanup() or at exit. Returns a static-lifetime string. */
const char *kt_tmpdir(void);
/* Path join into a malloc'd string (freed at exit). */
const char *kt_path(const char *dir, const char *name);
/* Read a whole file (malloc'd, NUL-terminated; freed by the caller). */
uint8_t *kt_read_all(const char *path, size_t *len);
/* Directory holding the repo's test vectors (tests/vectors). */
const char *kt_vectors_dir(void);
/* Write a file with the given mode; returns 0 or -1. */
int kt_write_file(const char *path, const void *data, size_t len, int mode);
/* Hex-decode into a new buffer (malloc'd); NULL on bad hex. */
uint8_t *kt_unhex(const char *hex, size_t *len);

#endif
