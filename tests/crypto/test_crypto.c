/* SPDX-License-Identifier: Apache-2.0 */
/* test_crypto: Keccak/SHA-3/SHAKE and ML-DSA (src/crypto). */
#include <stdlib.h>
#include <string.h>

#include "crypto_tests.h"

int
main(int argc, char **argv)
{
    const struct {
        const kt_case *cases;
        size_t count;
    } parts[] = {
        {kt_keccak_cases, kt_keccak_count},
        {kt_mldsa_acvp_cases, kt_mldsa_acvp_count},
        {kt_mldsa_cases, kt_mldsa_count},
    };
    size_t n = 0, at = 0;
    kt_case *all;
    int rc;

    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        n += parts[i].count;
    all = calloc(n, sizeof *all);
    if (!all)
        return 2;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        memcpy(all + at, parts[i].cases, parts[i].count * sizeof *all);
        at += parts[i].count;
    }
    rc = kt_main(argc, argv, all, n);
    free(all);
    return rc;
}
