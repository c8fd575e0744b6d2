/* SPDX-License-Identifier: Apache-2.0 */
/* Constant-time check of ML-DSA key generation, private-key decoding and
 * signing, run under valgrind memcheck (see CMakeLists.txt). The seed, the
 * private key and rnd are marked undefined with memcheck client requests;
 * memcheck then reports every conditional jump and every memory address
 * that depends on them ("Conditional jump or move depends on uninitialised
 * value", "Use of uninitialised value of size N"), and --error-exitcode
 * turns any report into a failure. The library is the kms_crypto_ct build
 * (-DKMS_CT_TEST), where KMS_CT_DECLASSIFY marks the values the algorithm
 * may reveal: rejection decisions, rho and tr, the accepted challenge and
 * signature, and the public key.
 *
 * `test_mldsa_ct canary` branches on a secret on purpose: run under
 * valgrind it must fail, which shows that the harness detects leaks. */
#include <string.h>
#include <valgrind/memcheck.h>

#include "kms_mldsa.h"
#include "testutil.h"

static const kms_mldsa_param sets[3] = {KMS_MLDSA_44, KMS_MLDSA_65,
                                        KMS_MLDSA_87};

static void
test_mldsa_ct_keygen_no_secret_dependence(void)
{
    for (int s = 0; s < 3; s++) {
        uint8_t seed[32], pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX];
        memset(seed, 0x5A + s, sizeof seed);
        VALGRIND_MAKE_MEM_UNDEFINED(seed, sizeof seed);
        CHECK_EQ(
            kms_mldsa_keygen_seed(sets[s], seed, pk, sizeof pk, sk, sizeof sk),
            KMS_MLDSA_OK);
    }
}

static void
test_mldsa_ct_sign_no_secret_dependence(void)
{
    for (int s = 0; s < 3; s++) {
        uint8_t seed[32], pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX];
        uint8_t sig[KMS_MLDSA_SIG_MAX], rnd[32], msg[33], mu[64];
        size_t sk_len = kms_mldsa_sk_len(sets[s]);

        memset(seed, 0x11 + s, sizeof seed);
        REQUIRE(kms_mldsa_keygen_seed(sets[s], seed, pk, sizeof pk, sk,
                                      sizeof sk) == KMS_MLDSA_OK);
        for (int i = 0; i < 3; i++) {
            memset(msg, i, sizeof msg);
            memset(rnd, 0xC3 ^ i, sizeof rnd);
            VALGRIND_MAKE_MEM_UNDEFINED(sk, sk_len);
            VALGRIND_MAKE_MEM_UNDEFINED(rnd, sizeof rnd);
            CHECK_EQ(kms_mldsa_sign_internal(sets[s], sk, sk_len, msg,
                                             sizeof msg, rnd, sig, sizeof sig),
                     KMS_MLDSA_OK);
        }
        VALGRIND_MAKE_MEM_UNDEFINED(sk, sk_len);
        CHECK_EQ(kms_mldsa_sign(sets[s], sk, sk_len, msg, sizeof msg,
                                (const uint8_t *)"ctx", 3,
                                KMS_MLDSA_DETERMINISTIC, sig, sizeof sig),
                 KMS_MLDSA_OK);
        memset(mu, 0x42, sizeof mu);
        VALGRIND_MAKE_MEM_UNDEFINED(sk, sk_len);
        CHECK_EQ(kms_mldsa_sign_mu(sets[s], sk, sk_len, mu,
                                   KMS_MLDSA_DETERMINISTIC, sig, sizeof sig),
                 KMS_MLDSA_OK);
        VALGRIND_MAKE_MEM_UNDEFINED(sk, sk_len);
        CHECK_EQ(kms_mldsa_sk_to_pk(sets[s], sk, sk_len, pk, sizeof pk),
                 KMS_MLDSA_OK);
    }
}

/* A malformed private key: only the final verdict may be revealed. */
static void
test_mldsa_ct_bad_sk_decode_no_secret_dependence(void)
{
    uint8_t seed[32] = {1}, pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX];
    uint8_t sig[KMS_MLDSA_SIG_MAX];
    size_t sk_len = kms_mldsa_sk_len(KMS_MLDSA_65);

    REQUIRE(kms_mldsa_keygen_seed(KMS_MLDSA_65, seed, pk, sizeof pk, sk,
                                  sizeof sk) == KMS_MLDSA_OK);
    sk[128] |= 0x0F; /* first s1 coefficient packed as 15 > 2 eta */
    VALGRIND_MAKE_MEM_UNDEFINED(sk, sk_len);
    CHECK_EQ(kms_mldsa_sign(KMS_MLDSA_65, sk, sk_len, seed, sizeof seed, NULL,
                            0, KMS_MLDSA_DETERMINISTIC, sig, sizeof sig),
             KMS_MLDSA_EKEY);
}

static const kt_case cases[] = {
    KT_CASE(test_mldsa_ct_keygen_no_secret_dependence),
    KT_CASE(test_mldsa_ct_sign_no_secret_dependence),
    KT_CASE(test_mldsa_ct_bad_sk_decode_no_secret_dependence),
};

/* Deliberately leaky: a branch on a secret byte. */
static int
canary(void)
{
    volatile uint8_t secret[1] = {7};
    int r = 0;

    VALGRIND_MAKE_MEM_UNDEFINED((void *)secret, 1);
    if (secret[0] & 1)
        r = 1;
    printf("canary ran (%d)\n", r);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "canary") == 0)
        return canary();
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
