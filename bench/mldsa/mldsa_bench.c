/* SPDX-License-Identifier: Apache-2.0 */
/* mldsa-bench: median cycles and operations per second of ML-DSA key
 * generation, signing and verification for each parameter set.
 *
 * Cycles come from the time-stamp counter (__rdtsc, x86intrin.h) on
 * x86-64, i.e. reference cycles at the TSC's nominal frequency; other
 * architectures report nanoseconds from CLOCK_MONOTONIC in the cycles
 * column. Operations per second come from wall-clock time over all runs.
 * Output: one figure a line, `name value unit`.
 *
 * Built twice (bench/mldsa/CMakeLists.txt): mldsa-bench uses kms_crypto
 * as shipped, mldsa-bench-baseline the portable code without run-time
 * dispatch; the latter's figure names carry "_baseline".
 *
 * Usage: mldsa-bench [iterations]   (default 1000) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "kc.h"
#include "kms_mldsa.h"

#ifndef MLDSA_BENCH_SUFFIX
#define MLDSA_BENCH_SUFFIX ""
#endif
#define SIGN_TARGET   1100000.0
#define VERIFY_TARGET 320000.0

static uint64_t
ticks(void)
{
#if defined(__x86_64__)
    return __rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    uint64_t median;
    double ops;
} result;

enum { OP_KEYGEN, OP_SIGN, OP_VERIFY };

static int
run(kms_mldsa_param p, int op, int iters, result *res)
{
    uint8_t pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX], sig[KMS_MLDSA_SIG_MAX];
    uint8_t msg[64] = "benchmark message";
    uint64_t *t = calloc((size_t)iters, sizeof *t);
    double t0;
    int rc = -1;

    if (!t || kms_mldsa_keygen(p, pk, sizeof pk, sk, sizeof sk) != 0 ||
        kms_mldsa_sign(p, sk, kms_mldsa_sk_len(p), msg, sizeof msg, NULL, 0,
                       KMS_MLDSA_HEDGED, sig, sizeof sig) != 0)
        goto out;
    /* warm-up: caches, branch predictors, the allocator */
    for (int i = 0; i < 20; i++)
        (void)kms_mldsa_verify(p, pk, kms_mldsa_pk_len(p), msg, sizeof msg,
                               NULL, 0, sig, kms_mldsa_sig_len(p));
    t0 = now_s();
    for (int i = 0; i < iters; i++) {
        uint64_t start = ticks();
        int e;
        msg[0] = (uint8_t)i; /* a different message per signing run */
        msg[1] = (uint8_t)(i >> 8);
        if (op == OP_KEYGEN)
            e = kms_mldsa_keygen(p, pk, sizeof pk, sk, sizeof sk);
        else if (op == OP_SIGN)
            e = kms_mldsa_sign(p, sk, kms_mldsa_sk_len(p), msg, sizeof msg,
                               NULL, 0, KMS_MLDSA_HEDGED, sig, sizeof sig);
        else
            e = kms_mldsa_verify(p, pk, kms_mldsa_pk_len(p), msg, sizeof msg,
                                 NULL, 0, sig,
                                 kms_mldsa_sig_len(p)) == KMS_MLDSA_EVERIFY
                    ? 0
                    : 1;
        t[i] = ticks() - start;
        if (e != 0)
            goto out;
    }
    res->ops = iters / (now_s() - t0);
    qsort(t, (size_t)iters, sizeof *t, cmp_u64);
    res->median = t[iters / 2];
    rc = 0;
out:
    free(t);
    return rc;
}

int
main(int argc, char **argv)
{
    static const kms_mldsa_param sets[] = {KMS_MLDSA_44, KMS_MLDSA_65,
                                           KMS_MLDSA_87};
    static const char *ops[] = {"keygen", "sign", "verify"};
    int iters = 1000;

    if (argc > 1) {
        uint64_t v;
        if (kc_parse_u64(argv[1], &v) != 0 || v == 0 || v > 1000000) {
            fprintf(stderr, "usage: mldsa-bench [iterations]\n");
            return 2;
        }
        iters = (int)v;
    }
    if (kc_init() != 0)
        return 1;
    for (size_t s = 0; s < 3; s++) {
        for (int op = 0; op < 3; op++) {
            result r;
            if (run(sets[s], op, iters, &r) != 0) {
                fprintf(stderr, "mldsa-bench: ML-DSA-%d %s failed\n",
                        (int)sets[s], ops[op]);
                return 1;
            }
            printf("mldsa%d_%s%s_cycles %llu cycles\n", (int)sets[s], ops[op],
                   MLDSA_BENCH_SUFFIX, (unsigned long long)r.median);
            printf("mldsa%d_%s%s_ops %.0f ops/s\n", (int)sets[s], ops[op],
                   MLDSA_BENCH_SUFFIX, r.ops);
            if (sets[s] == KMS_MLDSA_65 && op == OP_SIGN)
                printf("mldsa65_sign%s_vs_target %.2f x\n", MLDSA_BENCH_SUFFIX,
                       (double)r.median / SIGN_TARGET);
            if (sets[s] == KMS_MLDSA_65 && op == OP_VERIFY)
                printf("mldsa65_verify%s_vs_target %.2f x\n",
                       MLDSA_BENCH_SUFFIX, (double)r.median / VERIFY_TARGET);
        }
    }
    return 0;
}
