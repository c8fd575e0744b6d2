/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto_tests.h"
#include "mldsa.h"

static void
test_mldsa_placeholder_sizes_match(void)
{
    CHECK_EQ(kms_mldsa_sig_len(KMS_MLDSA_65), 3309);
}

const kt_case kt_mldsa_cases[] = {
    KT_CASE(test_mldsa_placeholder_sizes_match),
};
const size_t kt_mldsa_count = KT_COUNT(kt_mldsa_cases);
