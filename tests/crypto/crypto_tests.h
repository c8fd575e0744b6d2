/* SPDX-License-Identifier: Apache-2.0 */
/* The test_crypto binary is split by subject; each file exports its table
 * of cases and main() in test_crypto.c runs them all. */
#ifndef KMS_CRYPTO_TESTS_H
#define KMS_CRYPTO_TESTS_H

#include <stddef.h>

#include "testutil.h"

extern const kt_case kt_keccak_cases[];
extern const size_t kt_keccak_count;
extern const kt_case kt_mldsa_acvp_cases[];
extern const size_t kt_mldsa_acvp_count;
extern const kt_case kt_mldsa_cases[];
extern const size_t kt_mldsa_count;

#endif
