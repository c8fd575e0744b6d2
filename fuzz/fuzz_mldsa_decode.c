/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz ML-DSA decoding of signatures, public keys and private keys.
 *
 * Input: byte 0 picks the parameter set (mod 3), byte 1 the mode (mod 3),
 * the rest is the payload:
 *   0: payload is a signature on "fuzz" under a fixed key (seed 0^32);
 *   1: payload is pk || signature (split at the public key length);
 *   2: payload is a private key: decoded, public key recomputed, signed.
 * Lengths are passed through as given, so wrong lengths are exercised too.
 * Any crash, sanitizer report or broken invariant aborts. */
/* fuzz-link: kms_crypto */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kms_mldsa.h"

static const kms_mldsa_param sets[3] = {KMS_MLDSA_44, KMS_MLDSA_65,
                                        KMS_MLDSA_87};
static const uint8_t fuzz_msg[4] = {'f', 'u', 'z', 'z'};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_verify(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
            const uint8_t *sig, size_t sig_len)
{
    kms_mldsa_err a, b;

    a = kms_mldsa_verify(p, pk, pk_len, fuzz_msg, sizeof fuzz_msg, NULL, 0, sig,
                         sig_len);
    b = kms_mldsa_verify_internal(p, pk, pk_len, fuzz_msg, sizeof fuzz_msg, sig,
                                  sig_len);
    (void)kms_mldsa_hash_verify(p, pk, pk_len, KMS_MLDSA_PH_SHA256, fuzz_msg,
                                sizeof fuzz_msg, NULL, 0, sig, sig_len);
    /* a signature cannot be valid both for M and for M' = M */
    if (a == KMS_MLDSA_OK && b == KMS_MLDSA_OK)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t fixed_pk[3][KMS_MLDSA_PK_MAX];
    static int have_pk[3];
    kms_mldsa_param p;
    const uint8_t *pl;
    size_t pl_len, pk_len;

    if (size < 2)
        return 0;
    p = sets[data[0] % 3];
    pl = data + 2;
    pl_len = size - 2;
    pk_len = kms_mldsa_pk_len(p);
    switch (data[1] % 3) {
    case 0:
        if (!have_pk[data[0] % 3]) {
            uint8_t seed[32] = {0}, sk[KMS_MLDSA_SK_MAX];
            if (kms_mldsa_keygen_seed(p, seed, fixed_pk[data[0] % 3],
                                      KMS_MLDSA_PK_MAX, sk, sizeof sk) != 0)
                abort();
            have_pk[data[0] % 3] = 1;
        }
        fuzz_verify(p, fixed_pk[data[0] % 3], pk_len, pl, pl_len);
        break;
    case 1:
        if (pl_len < pk_len)
            fuzz_verify(p, pl, pl_len, pl, 0);
        else
            fuzz_verify(p, pl, pk_len, pl + pk_len, pl_len - pk_len);
        break;
    default: {
        uint8_t pk[KMS_MLDSA_PK_MAX], sig[KMS_MLDSA_SIG_MAX];
        kms_mldsa_err rc = kms_mldsa_sk_to_pk(p, pl, pl_len, pk, sizeof pk);
        kms_mldsa_err rs =
            kms_mldsa_sign(p, pl, pl_len, fuzz_msg, sizeof fuzz_msg, NULL, 0,
                           KMS_MLDSA_DETERMINISTIC, sig, sizeof sig);
        /* decoding verdicts agree; a well-formed key signs */
        if ((rc == KMS_MLDSA_OK) != (rs == KMS_MLDSA_OK))
            abort();
        break;
    }
    }
    return 0;
}
