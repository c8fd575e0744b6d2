/* SPDX-License-Identifier: Apache-2.0 */
/* ML-DSA behaviour beyond the ACVP vectors: round trips, the external
 * message formats (context, HashML-DSA, external mu), every class of bad
 * input, concurrency, and exhaustive checks of the rounding arithmetic
 * against the definitions in FIPS 204 section 7.4. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto_tests.h"
#include "kms_mldsa.h"
#include "mldsa_int.h"

static const kms_mldsa_param all_sets[3] = {KMS_MLDSA_44, KMS_MLDSA_65,
                                            KMS_MLDSA_87};

typedef struct {
    kms_mldsa_param p;
    uint8_t pk[KMS_MLDSA_PK_MAX];
    uint8_t sk[KMS_MLDSA_SK_MAX];
    size_t pk_len, sk_len, sig_len;
} keypair;

static void
make_keys(keypair *kp, kms_mldsa_param p, uint8_t seed_byte)
{
    uint8_t seed[32];

    memset(seed, seed_byte, sizeof seed);
    kp->p = p;
    kp->pk_len = kms_mldsa_pk_len(p);
    kp->sk_len = kms_mldsa_sk_len(p);
    kp->sig_len = kms_mldsa_sig_len(p);
    REQUIRE(kms_mldsa_keygen_seed(p, seed, kp->pk, sizeof kp->pk, kp->sk,
                                  sizeof kp->sk) == KMS_MLDSA_OK);
}

static const uint8_t msg[] = "attack at dawn";
static const uint8_t ctx[] = "kms-test-context";

static void
test_mldsa_sizes_match_fips204(void)
{
    CHECK_EQ(kms_mldsa_pk_len(KMS_MLDSA_44), 1312);
    CHECK_EQ(kms_mldsa_sk_len(KMS_MLDSA_44), 2560);
    CHECK_EQ(kms_mldsa_sig_len(KMS_MLDSA_44), 2420);
    CHECK_EQ(kms_mldsa_pk_len(KMS_MLDSA_65), 1952);
    CHECK_EQ(kms_mldsa_sk_len(KMS_MLDSA_65), 4032);
    CHECK_EQ(kms_mldsa_sig_len(KMS_MLDSA_65), 3309);
    CHECK_EQ(kms_mldsa_pk_len(KMS_MLDSA_87), 2592);
    CHECK_EQ(kms_mldsa_sk_len(KMS_MLDSA_87), 4896);
    CHECK_EQ(kms_mldsa_sig_len(KMS_MLDSA_87), 4627);
    CHECK_EQ(kms_mldsa_pk_len((kms_mldsa_param)66), 0);
}

static void
test_mldsa_roundtrip_all_sets_verifies(void)
{
    for (int s = 0; s < 3; s++) {
        keypair kp;
        uint8_t sig[KMS_MLDSA_SIG_MAX];
        make_keys(&kp, all_sets[s], 1);
        /* with and without a context, hedged */
        CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, ctx,
                                sizeof ctx, KMS_MLDSA_HEDGED, sig, sizeof sig),
                 KMS_MLDSA_OK);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, ctx,
                                  sizeof ctx, sig, kp.sig_len),
                 KMS_MLDSA_OK);
        CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL,
                                0, KMS_MLDSA_HEDGED, sig, sizeof sig),
                 KMS_MLDSA_OK);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL,
                                  0, sig, kp.sig_len),
                 KMS_MLDSA_OK);
        /* the empty message */
        CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, NULL, 0, NULL, 0,
                                KMS_MLDSA_HEDGED, sig, sizeof sig),
                 KMS_MLDSA_OK);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, NULL, 0, NULL, 0, sig,
                                  kp.sig_len),
                 KMS_MLDSA_OK);
    }
}

static void
test_mldsa_deterministic_repeatable_hedged_differs(void)
{
    keypair kp;
    uint8_t a[KMS_MLDSA_SIG_MAX], b[KMS_MLDSA_SIG_MAX];

    make_keys(&kp, KMS_MLDSA_65, 2);
    REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                           KMS_MLDSA_DETERMINISTIC, a, sizeof a) == 0);
    REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                           KMS_MLDSA_DETERMINISTIC, b, sizeof b) == 0);
    CHECK_MEM(a, b, kp.sig_len);
    REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                           KMS_MLDSA_HEDGED, a, sizeof a) == 0);
    REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                           KMS_MLDSA_HEDGED, b, sizeof b) == 0);
    CHECK(memcmp(a, b, kp.sig_len) != 0);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              a, kp.sig_len),
             KMS_MLDSA_OK);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              b, kp.sig_len),
             KMS_MLDSA_OK);
}

static void
test_mldsa_keygen_same_seed_same_keys_random_differs(void)
{
    keypair a, b;
    uint8_t pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX];

    make_keys(&a, KMS_MLDSA_44, 9);
    make_keys(&b, KMS_MLDSA_44, 9);
    CHECK_MEM(a.pk, b.pk, a.pk_len);
    CHECK_MEM(a.sk, b.sk, a.sk_len);
    make_keys(&b, KMS_MLDSA_44, 10);
    CHECK(memcmp(a.pk, b.pk, a.pk_len) != 0);
    REQUIRE(kms_mldsa_keygen(KMS_MLDSA_44, pk, sizeof pk, sk, sizeof sk) == 0);
    CHECK(memcmp(a.pk, pk, a.pk_len) != 0);
}

static void
test_mldsa_wrong_message_context_key_rejected(void)
{
    for (int s = 0; s < 3; s++) {
        keypair kp, other;
        uint8_t sig[KMS_MLDSA_SIG_MAX], bad[sizeof msg];
        make_keys(&kp, all_sets[s], 3);
        make_keys(&other, all_sets[s], 4);
        memcpy(bad, msg, sizeof msg);
        bad[0] ^= 1;
        REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, ctx,
                               sizeof ctx, 0, sig, sizeof sig) == 0);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, bad, sizeof bad, ctx,
                                  sizeof ctx, sig, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg - 1,
                                  ctx, sizeof ctx, sig, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, ctx,
                                  sizeof ctx - 1, sig, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL,
                                  0, sig, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        CHECK_EQ(kms_mldsa_verify(kp.p, other.pk, other.pk_len, msg, sizeof msg,
                                  ctx, sizeof ctx, sig, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        /* the signature as M' of the internal interface is not the same
         * message either (the context prefix is part of M') */
        CHECK_EQ(kms_mldsa_verify_internal(kp.p, kp.pk, kp.pk_len, msg,
                                           sizeof msg, sig, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
    }
}

/* Every single-bit change of a signature must be rejected. All bits for
 * ML-DSA-44; for 65 and 87 every bit of the challenge and hint sections
 * and every 13th bit of z (strided to keep the ASan run short). */
static void
flip_bits(kms_mldsa_param p, int stride)
{
    keypair kp;
    uint8_t sig[KMS_MLDSA_SIG_MAX];
    const mldsa_params *prm = kms_mldsa_params_get(p);
    size_t z_end, accepted = 0, tried = 0;

    REQUIRE(prm);
    make_keys(&kp, p, 5);
    REQUIRE(kms_mldsa_sign(p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0, 0,
                           sig, sizeof sig) == 0);
    z_end = prm->ctilde_len + (size_t)prm->l * 32 * prm->z_bits;
    for (size_t bit = 0; bit < kp.sig_len * 8; bit++) {
        size_t byte = bit / 8;
        if (stride > 1 && byte >= prm->ctilde_len && byte < z_end &&
            bit % (size_t)stride != 0)
            continue;
        sig[byte] ^= (uint8_t)(1u << (bit % 8));
        if (kms_mldsa_verify(p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0, sig,
                             kp.sig_len) != KMS_MLDSA_EVERIFY)
            accepted++;
        sig[byte] ^= (uint8_t)(1u << (bit % 8));
        tried++;
    }
    CHECK_EQ(accepted, 0);
    CHECK(tried > 1000);
    CHECK_EQ(kms_mldsa_verify(p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              sig, kp.sig_len),
             KMS_MLDSA_OK);
}

static void
test_mldsa44_sig_every_bit_flip_rejected(void)
{
    flip_bits(KMS_MLDSA_44, 1);
}

static void
test_mldsa65_87_sig_bit_flips_strided_rejected(void)
{
    flip_bits(KMS_MLDSA_65, 13);
    flip_bits(KMS_MLDSA_87, 13);
}

static void
test_mldsa_wrong_lengths_rejected(void)
{
    keypair kp;
    uint8_t sig[KMS_MLDSA_SIG_MAX + 1], pk[KMS_MLDSA_PK_MAX],
        sk[KMS_MLDSA_SK_MAX];

    make_keys(&kp, KMS_MLDSA_65, 6);
    REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0, 0,
                           sig, sizeof sig) == 0);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              sig, kp.sig_len - 1),
             KMS_MLDSA_ESIGLEN);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              sig, kp.sig_len + 1),
             KMS_MLDSA_ESIGLEN);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              sig, 0),
             KMS_MLDSA_ESIGLEN);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len - 1, msg, sizeof msg, NULL,
                              0, sig, kp.sig_len),
             KMS_MLDSA_EKEYLEN);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len + 1, msg, sizeof msg, NULL,
                              0, sig, kp.sig_len),
             KMS_MLDSA_EKEYLEN);
    /* a key of another parameter set */
    CHECK_EQ(kms_mldsa_verify(KMS_MLDSA_44, kp.pk, kp.pk_len, msg, sizeof msg,
                              NULL, 0, sig, kp.sig_len),
             KMS_MLDSA_EKEYLEN);
    CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len - 1, msg, sizeof msg, NULL,
                            0, 0, sig, sizeof sig),
             KMS_MLDSA_EKEYLEN);
    CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0, 0,
                            sig, kp.sig_len - 1),
             KMS_MLDSA_EBUFSIZE);
    CHECK_EQ(
        kms_mldsa_keygen_seed(kp.p, kp.sk, pk, kp.pk_len - 1, sk, sizeof sk),
        KMS_MLDSA_EBUFSIZE);
    CHECK_EQ(
        kms_mldsa_keygen_seed(kp.p, kp.sk, pk, sizeof pk, sk, kp.sk_len - 1),
        KMS_MLDSA_EBUFSIZE);
    CHECK_EQ(kms_mldsa_sk_to_pk(kp.p, kp.sk, kp.sk_len + 1, pk, sizeof pk),
             KMS_MLDSA_EKEYLEN);
}

static void
test_mldsa_bad_arguments_rejected(void)
{
    keypair kp;
    uint8_t sig[KMS_MLDSA_SIG_MAX];

    make_keys(&kp, KMS_MLDSA_44, 7);
    CHECK_EQ(kms_mldsa_sign((kms_mldsa_param)42, kp.sk, kp.sk_len, msg,
                            sizeof msg, NULL, 0, 0, sig, sizeof sig),
             KMS_MLDSA_EPARAM);
    CHECK_EQ(kms_mldsa_verify((kms_mldsa_param)0, kp.pk, kp.pk_len, msg,
                              sizeof msg, NULL, 0, sig, kp.sig_len),
             KMS_MLDSA_EPARAM);
    CHECK_EQ(kms_mldsa_keygen((kms_mldsa_param)128, kp.pk, sizeof kp.pk, kp.sk,
                              sizeof kp.sk),
             KMS_MLDSA_EPARAM);
    CHECK_EQ(kms_mldsa_sign(kp.p, NULL, kp.sk_len, msg, sizeof msg, NULL, 0, 0,
                            sig, sizeof sig),
             KMS_MLDSA_EINVAL);
    CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, NULL, 5, NULL, 0, 0, sig,
                            sizeof sig),
             KMS_MLDSA_EINVAL);
    CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 3, 0,
                            sig, sizeof sig),
             KMS_MLDSA_EINVAL);
    CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                            0x80, sig, sizeof sig),
             KMS_MLDSA_EINVAL);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, NULL, 0,
                              NULL, kp.sig_len),
             KMS_MLDSA_EINVAL);
    CHECK_EQ(
        kms_mldsa_sign_mu(kp.p, kp.sk, kp.sk_len, NULL, 0, sig, sizeof sig),
        KMS_MLDSA_EINVAL);
}

static void
test_mldsa_context_over_255_rejected(void)
{
    keypair kp;
    uint8_t sig[KMS_MLDSA_SIG_MAX], big[256], mu[64];

    memset(big, 'c', sizeof big);
    make_keys(&kp, KMS_MLDSA_44, 8);
    CHECK_EQ(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, big, 256,
                            0, sig, sizeof sig),
             KMS_MLDSA_ECTX);
    CHECK_EQ(kms_mldsa_hash_sign(kp.p, kp.sk, kp.sk_len, KMS_MLDSA_PH_SHA256,
                                 msg, sizeof msg, big, 256, 0, sig, sizeof sig),
             KMS_MLDSA_ECTX);
    CHECK_EQ(kms_mldsa_compute_mu_ctx(kp.p, kp.pk, kp.pk_len, msg, sizeof msg,
                                      big, 256, mu),
             KMS_MLDSA_ECTX);
    /* 255 bytes is the maximum and works */
    REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, big, 255, 0,
                           sig, sizeof sig) == KMS_MLDSA_OK);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, big, 255,
                              sig, kp.sig_len),
             KMS_MLDSA_OK);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, big, 256,
                              sig, kp.sig_len),
             KMS_MLDSA_ECTX);
}

/* skDecode: a packed s1/s2 value above 2 eta is outside [-eta, eta]. */
static void
set_packed(uint8_t *base, unsigned bits, unsigned index, unsigned value)
{
    for (unsigned b = 0; b < bits; b++) {
        size_t bit = (size_t)index * bits + b;
        if (value >> b & 1)
            base[bit / 8] |= (uint8_t)(1u << (bit % 8));
        else
            base[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
    }
}

static void
test_mldsa_sk_eta_out_of_range_rejected(void)
{
    for (int s = 0; s < 3; s++) {
        keypair kp;
        const mldsa_params *prm = kms_mldsa_params_get(all_sets[s]);
        uint8_t sig[KMS_MLDSA_SIG_MAX], sk[KMS_MLDSA_SK_MAX],
            pk[KMS_MLDSA_PK_MAX];
        size_t s2_off = 128 + (size_t)prm->l * 32 * prm->eta_bits;
        unsigned maxv = (1u << prm->eta_bits) - 1;

        make_keys(&kp, all_sets[s], 11);
        /* first coefficient of s1: every invalid packed value */
        for (unsigned v = 2 * prm->eta + 1; v <= maxv; v++) {
            memcpy(sk, kp.sk, kp.sk_len);
            set_packed(sk + 128, prm->eta_bits, 0, v);
            CHECK_EQ(kms_mldsa_sign(kp.p, sk, kp.sk_len, msg, sizeof msg, NULL,
                                    0, 0, sig, sizeof sig),
                     KMS_MLDSA_EKEY);
            CHECK_EQ(kms_mldsa_sk_to_pk(kp.p, sk, kp.sk_len, pk, sizeof pk),
                     KMS_MLDSA_EKEY);
        }
        /* last coefficient of s2 */
        memcpy(sk, kp.sk, kp.sk_len);
        set_packed(sk + s2_off, prm->eta_bits, prm->k * 256 - 1, maxv);
        CHECK_EQ(kms_mldsa_sign(kp.p, sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                                0, sig, sizeof sig),
                 KMS_MLDSA_EKEY);
        /* the boundary value 2 eta (coefficient -eta) is valid */
        memcpy(sk, kp.sk, kp.sk_len);
        set_packed(sk + 128, prm->eta_bits, 0, 2 * prm->eta);
        CHECK_EQ(kms_mldsa_sign(kp.p, sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                                0, sig, sizeof sig),
                 KMS_MLDSA_OK);
    }
}

/* Hint encodings that HintBitUnpack (Algorithm 21) must refuse. */
static void
test_mldsa_hint_noncanonical_rejected(void)
{
    keypair kp;
    const mldsa_params *prm = kms_mldsa_params_get(KMS_MLDSA_44);
    uint8_t sig[KMS_MLDSA_SIG_MAX], bad[KMS_MLDSA_SIG_MAX];
    uint8_t *h, *hb;
    unsigned total, poly = 0;
    uint8_t m2[4] = {0};

    make_keys(&kp, KMS_MLDSA_44, 12);
    /* find a signature whose hints leave padding and have a polynomial
     * with at least two ones */
    for (unsigned tries = 0; tries < 200; tries++) {
        unsigned prev = 0;
        m2[0] = (uint8_t)tries;
        REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, m2, sizeof m2, NULL, 0,
                               0, sig, sizeof sig) == 0);
        h = sig + kp.sig_len - prm->omega - prm->k;
        total = h[prm->omega + prm->k - 1];
        for (poly = 0; poly < prm->k; poly++) {
            if (h[prm->omega + poly] - prev >= 2)
                break;
            prev = h[prm->omega + poly];
        }
        if (total < prm->omega && poly < prm->k)
            break;
    }
    REQUIRE(total < prm->omega && poly < prm->k);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL, 0,
                              sig, kp.sig_len),
             KMS_MLDSA_OK);
    h = sig + kp.sig_len - prm->omega - prm->k;
    hb = bad + kp.sig_len - prm->omega - prm->k;
    /* nonzero padding after the last index */
    memcpy(bad, sig, kp.sig_len);
    hb[prm->omega - 1] = 1;
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL, 0,
                              bad, kp.sig_len),
             KMS_MLDSA_EVERIFY);
    /* a count above omega */
    memcpy(bad, sig, kp.sig_len);
    hb[prm->omega + prm->k - 1] = (uint8_t)(prm->omega + 1);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL, 0,
                              bad, kp.sig_len),
             KMS_MLDSA_EVERIFY);
    /* decreasing counts: polynomial 0 ends after polynomial 1 */
    memcpy(bad, sig, kp.sig_len);
    hb[prm->omega] = (uint8_t)(h[prm->omega + 1] + 1);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL, 0,
                              bad, kp.sig_len),
             KMS_MLDSA_EVERIFY);
    /* indices not strictly increasing within a polynomial: swap the first
     * two, then repeat one */
    {
        unsigned first = poly ? h[prm->omega + poly - 1] : 0;
        memcpy(bad, sig, kp.sig_len);
        hb[first] = h[first + 1];
        hb[first + 1] = h[first];
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL,
                                  0, bad, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        memcpy(bad, sig, kp.sig_len);
        hb[first + 1] = h[first];
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL,
                                  0, bad, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
    }
    /* all hint bytes 0xFF: counts beyond omega, never an out-of-bounds read */
    memcpy(bad, sig, kp.sig_len);
    memset(hb, 0xFF, prm->omega + prm->k);
    CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, m2, sizeof m2, NULL, 0,
                              bad, kp.sig_len),
             KMS_MLDSA_EVERIFY);
}

/* z with a coefficient at the bound gamma1 - beta (or at the extremes of
 * the encoding) is refused. */
static void
test_mldsa_z_out_of_range_rejected(void)
{
    for (int s = 0; s < 3; s++) {
        keypair kp;
        const mldsa_params *prm = kms_mldsa_params_get(all_sets[s]);
        uint8_t sig[KMS_MLDSA_SIG_MAX], bad[KMS_MLDSA_SIG_MAX];
        const unsigned vals[3] = {(unsigned)prm->beta, /* z = gamma1 - beta */
                                  0,                   /* z = gamma1 */
                                  (unsigned)(2 * prm->gamma1 - 1)};
        make_keys(&kp, all_sets[s], 13);
        REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, NULL, 0,
                               0, sig, sizeof sig) == 0);
        for (int v = 0; v < 3; v++) {
            memcpy(bad, sig, kp.sig_len);
            set_packed(bad + prm->ctilde_len, prm->z_bits, 17, vals[v]);
            CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg,
                                      NULL, 0, bad, kp.sig_len),
                     KMS_MLDSA_EVERIFY);
        }
    }
}

static void
test_mldsa_external_mu_equals_message_signing(void)
{
    for (int s = 0; s < 3; s++) {
        keypair kp;
        uint8_t a[KMS_MLDSA_SIG_MAX], b[KMS_MLDSA_SIG_MAX], mu[64], mu2[64];
        uint8_t mprime[2 + sizeof ctx + sizeof msg];

        make_keys(&kp, all_sets[s], 14);
        REQUIRE(kms_mldsa_compute_mu_ctx(kp.p, kp.pk, kp.pk_len, msg,
                                         sizeof msg, ctx, sizeof ctx, mu) == 0);
        /* the same mu from M' = 0 || |ctx| || ctx || M (Algorithm 2) */
        mprime[0] = 0;
        mprime[1] = sizeof ctx;
        memcpy(mprime + 2, ctx, sizeof ctx);
        memcpy(mprime + 2 + sizeof ctx, msg, sizeof msg);
        REQUIRE(kms_mldsa_compute_mu(kp.p, kp.pk, kp.pk_len, mprime,
                                     sizeof mprime, mu2) == 0);
        CHECK_MEM(mu, mu2, 64);
        REQUIRE(kms_mldsa_sign_mu(kp.p, kp.sk, kp.sk_len, mu,
                                  KMS_MLDSA_DETERMINISTIC, a, sizeof a) == 0);
        REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, ctx,
                               sizeof ctx, KMS_MLDSA_DETERMINISTIC, b,
                               sizeof b) == 0);
        CHECK_MEM(a, b, kp.sig_len);
        CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg, ctx,
                                  sizeof ctx, a, kp.sig_len),
                 KMS_MLDSA_OK);
        CHECK_EQ(kms_mldsa_verify_mu(kp.p, kp.pk, kp.pk_len, mu, b, kp.sig_len),
                 KMS_MLDSA_OK);
        mu[0] ^= 1;
        CHECK_EQ(kms_mldsa_verify_mu(kp.p, kp.pk, kp.pk_len, mu, b, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        /* the internal interface with that M' and rnd = 0 is the same */
        {
            uint8_t zero[32] = {0};
            REQUIRE(kms_mldsa_sign_internal(kp.p, kp.sk, kp.sk_len, mprime,
                                            sizeof mprime, zero, a,
                                            sizeof a) == 0);
            CHECK_MEM(a, b, kp.sig_len);
        }
    }
}

static void
test_mldsa_hash_roundtrip_differs_from_pure(void)
{
    static const uint8_t oid256[11] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x01};
    static const uint8_t oid512[11] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x03};
    for (int s = 0; s < 3; s++) {
        keypair kp;
        uint8_t sig[KMS_MLDSA_SIG_MAX], pure[KMS_MLDSA_SIG_MAX];
        uint8_t ref[KMS_MLDSA_SIG_MAX], digest[64], zero[32] = {0};
        uint8_t mprime[2 + sizeof ctx + 11 + 64];
        unsigned int dlen = 0;

        make_keys(&kp, all_sets[s], 15);
        for (int ph = 1; ph <= 2; ph++) {
            const EVP_MD *md = ph == 1 ? EVP_sha256() : EVP_sha512();
            REQUIRE(kms_mldsa_hash_sign(
                        kp.p, kp.sk, kp.sk_len, (kms_mldsa_prehash)ph, msg,
                        sizeof msg, ctx, sizeof ctx, KMS_MLDSA_DETERMINISTIC,
                        sig, sizeof sig) == 0);
            CHECK_EQ(kms_mldsa_hash_verify(
                         kp.p, kp.pk, kp.pk_len, (kms_mldsa_prehash)ph, msg,
                         sizeof msg, ctx, sizeof ctx, sig, kp.sig_len),
                     KMS_MLDSA_OK);
            /* M' = 1 || |ctx| || ctx || OID || PH(M) (Algorithm 4), with
             * the DER OIDs of FIPS 204 section 5.4.1 */
            REQUIRE(EVP_Digest(msg, sizeof msg, digest, &dlen, md, NULL) == 1);
            mprime[0] = 1;
            mprime[1] = sizeof ctx;
            memcpy(mprime + 2, ctx, sizeof ctx);
            memcpy(mprime + 2 + sizeof ctx, ph == 1 ? oid256 : oid512, 11);
            memcpy(mprime + 2 + sizeof ctx + 11, digest, dlen);
            REQUIRE(kms_mldsa_sign_internal(kp.p, kp.sk, kp.sk_len, mprime,
                                            2 + sizeof ctx + 11 + dlen, zero,
                                            ref, sizeof ref) == 0);
            CHECK_MEM(sig, ref, kp.sig_len);
            /* the digest interface gives the same signature */
            REQUIRE(kms_mldsa_hash_sign_digest(
                        kp.p, kp.sk, kp.sk_len, (kms_mldsa_prehash)ph, digest,
                        dlen, ctx, sizeof ctx, KMS_MLDSA_DETERMINISTIC, ref,
                        sizeof ref) == 0);
            CHECK_MEM(sig, ref, kp.sig_len);
            CHECK_EQ(kms_mldsa_hash_verify_digest(
                         kp.p, kp.pk, kp.pk_len, (kms_mldsa_prehash)ph, digest,
                         dlen, ctx, sizeof ctx, sig, kp.sig_len),
                     KMS_MLDSA_OK);
            /* not a pure ML-DSA signature, nor one with the other hash */
            CHECK_EQ(kms_mldsa_verify(kp.p, kp.pk, kp.pk_len, msg, sizeof msg,
                                      ctx, sizeof ctx, sig, kp.sig_len),
                     KMS_MLDSA_EVERIFY);
            CHECK_EQ(kms_mldsa_hash_verify(
                         kp.p, kp.pk, kp.pk_len, (kms_mldsa_prehash)(3 - ph),
                         msg, sizeof msg, ctx, sizeof ctx, sig, kp.sig_len),
                     KMS_MLDSA_EVERIFY);
            CHECK_EQ(kms_mldsa_hash_verify(
                         kp.p, kp.pk, kp.pk_len, (kms_mldsa_prehash)ph, msg,
                         sizeof msg - 1, ctx, sizeof ctx, sig, kp.sig_len),
                     KMS_MLDSA_EVERIFY);
        }
        REQUIRE(kms_mldsa_sign(kp.p, kp.sk, kp.sk_len, msg, sizeof msg, ctx,
                               sizeof ctx, KMS_MLDSA_DETERMINISTIC, pure,
                               sizeof pure) == 0);
        CHECK(memcmp(pure, sig, kp.sig_len) != 0);
        CHECK_EQ(kms_mldsa_hash_verify(kp.p, kp.pk, kp.pk_len,
                                       KMS_MLDSA_PH_SHA512, msg, sizeof msg,
                                       ctx, sizeof ctx, pure, kp.sig_len),
                 KMS_MLDSA_EVERIFY);
        CHECK_EQ(kms_mldsa_hash_sign(kp.p, kp.sk, kp.sk_len,
                                     (kms_mldsa_prehash)7, msg, sizeof msg,
                                     NULL, 0, 0, sig, sizeof sig),
                 KMS_MLDSA_EHASH);
        CHECK_EQ(kms_mldsa_hash_sign_digest(kp.p, kp.sk, kp.sk_len,
                                            KMS_MLDSA_PH_SHA256, digest, 33,
                                            NULL, 0, 0, sig, sizeof sig),
                 KMS_MLDSA_EINVAL);
    }
}

typedef struct {
    const keypair *kp;
    int id;
    int failures;
} thread_arg;

static void *
sign_thread(void *p)
{
    thread_arg *a = p;
    uint8_t sig[KMS_MLDSA_SIG_MAX], m[8];

    for (int i = 0; i < 8; i++) {
        m[0] = (uint8_t)a->id;
        m[1] = (uint8_t)i;
        memset(m + 2, 0x55, sizeof m - 2);
        if (kms_mldsa_sign(a->kp->p, a->kp->sk, a->kp->sk_len, m, sizeof m, ctx,
                           sizeof ctx, 0, sig, sizeof sig) != 0 ||
            kms_mldsa_verify(a->kp->p, a->kp->pk, a->kp->pk_len, m, sizeof m,
                             ctx, sizeof ctx, sig, a->kp->sig_len) != 0)
            a->failures++;
        m[1] ^= 0x80;
        if (kms_mldsa_verify(a->kp->p, a->kp->pk, a->kp->pk_len, m, sizeof m,
                             ctx, sizeof ctx, sig,
                             a->kp->sig_len) != KMS_MLDSA_EVERIFY)
            a->failures++;
    }
    return NULL;
}

static void
test_mldsa_concurrent_signing_threads_verify(void)
{
    keypair kp;
    pthread_t th[4];
    thread_arg args[4];

    make_keys(&kp, KMS_MLDSA_65, 16);
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){&kp, i, 0};
        REQUIRE(pthread_create(&th[i], NULL, sign_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].failures, 0);
    }
}

/* ---- arithmetic against the definitions (exhaustive) ----------------- */

/* Decompose per Algorithm 36, written with divisions. */
static int32_t
decompose_ref(int32_t g2, int32_t r, int32_t *r0)
{
    int32_t rp = ((r % MLDSA_Q) + MLDSA_Q) % MLDSA_Q;
    int32_t a0 = rp % (2 * g2);
    if (a0 > g2)
        a0 -= 2 * g2;
    if (rp - a0 == MLDSA_Q - 1) {
        *r0 = a0 - 1;
        return 0;
    }
    *r0 = a0;
    return (rp - a0) / (2 * g2);
}

static void
test_mldsa_decompose_every_input_matches_definition(void)
{
    const int32_t g2s[2] = {(MLDSA_Q - 1) / 88, (MLDSA_Q - 1) / 32};
    size_t bad = 0;

    for (int g = 0; g < 2; g++)
        for (int32_t a = 0; a < MLDSA_Q; a++) {
            int32_t r0, r0r, r1 = kms_mldsa_decompose(g2s[g], a, &r0);
            int32_t r1r = decompose_ref(g2s[g], a, &r0r);
            bad += r1 != r1r || r0 != r0r;
        }
    CHECK_EQ(bad, 0);
}

static void
test_mldsa_power2round_every_input_matches_definition(void)
{
    size_t bad = 0;

    for (int32_t a = 0; a < MLDSA_Q; a++) {
        int32_t r0, r1 = kms_mldsa_power2round(a, &r0);
        int32_t ref0 = a % (1 << 13);
        if (ref0 > (1 << 12))
            ref0 -= 1 << 13;
        bad += r0 != ref0 || r1 != (a - ref0) >> 13;
    }
    CHECK_EQ(bad, 0);
}

/* UseHint (Algorithm 40) recovers HighBits(r + z) from r and
 * MakeHint(z, r) for small z (Lemma in section 7.4). */
static void
test_mldsa_use_hint_recovers_high_bits(void)
{
    const int32_t g2s[2] = {(MLDSA_Q - 1) / 88, (MLDSA_Q - 1) / 32};
    size_t bad = 0;
    uint64_t x = 88172645463325252ULL;

    for (int g = 0; g < 2; g++)
        for (int i = 0; i < 200000; i++) {
            int32_t r, z, r0, h1, h2, rz;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            r = (int32_t)(x % MLDSA_Q);
            z = (int32_t)((x >> 32) % (2 * (uint64_t)g2s[g] + 1)) - g2s[g];
            rz = (r + z + MLDSA_Q) % MLDSA_Q;
            h1 = kms_mldsa_decompose(g2s[g], r, &r0);
            h2 = kms_mldsa_decompose(g2s[g], rz, &r0);
            bad += kms_mldsa_use_hint(g2s[g], r, h1 != h2) != h2;
        }
    CHECK_EQ(bad, 0);
}

static int32_t
modq(int64_t a)
{
    a %= MLDSA_Q;
    return (int32_t)(a < 0 ? a + MLDSA_Q : a);
}

/* NTT-based multiplication equals schoolbook multiplication in
 * Z_q[X]/(X^256 + 1); the sparse challenge product equals both. */
static void
test_mldsa_ntt_product_matches_schoolbook(void)
{
    uint64_t x = 0x1234567887654321ULL;

    for (int round = 0; round < 20; round++) {
        mldsa_poly a, b, fa, fb, r, sp;
        mldsa_challenge ch;
        int64_t ref[MLDSA_N] = {0};
        size_t bad = 0;
        uint8_t ctilde[32];

        for (int i = 0; i < MLDSA_N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            a.c[i] = (int32_t)(x % (2 * MLDSA_Q - 1)) - (MLDSA_Q - 1);
            b.c[i] = (int32_t)((x >> 30) % 9) - 4;
        }
        if (round % 2) {
            /* b a challenge polynomial */
            for (int i = 0; i < 32; i++)
                ctilde[i] = (uint8_t)(x >> (i % 8) * 8) ^ (uint8_t)i;
            kms_mldsa_sample_in_ball(&b, ctilde, sizeof ctilde, 49);
        }
        for (int i = 0; i < MLDSA_N; i++)
            for (int j = 0; j < MLDSA_N; j++) {
                int64_t p = (int64_t)a.c[i] * b.c[j];
                if (i + j < MLDSA_N)
                    ref[i + j] += p;
                else
                    ref[i + j - MLDSA_N] -= p;
            }
        fa = a;
        fb = b;
        kms_mldsa_ntt(&fa);
        kms_mldsa_ntt(&fb);
        kms_mldsa_poly_pointwise(&r, &fa, &fb);
        kms_mldsa_invntt(&r);
        for (int i = 0; i < MLDSA_N; i++)
            bad += modq(r.c[i]) != modq(ref[i]);
        if (round % 2) {
            kms_mldsa_challenge_from_poly(&ch, &b);
            CHECK_EQ(ch.count, 49);
            kms_mldsa_poly_mul_challenge(&sp, &ch, &a);
            for (int i = 0; i < MLDSA_N; i++)
                bad += modq(sp.c[i]) != modq(ref[i]);
        }
        CHECK_EQ(bad, 0);
    }
}

/* The dispatched (AVX2 where available) builds of the NTT, pointwise and
 * challenge products equal the baseline builds on random inputs, including
 * the extreme input bounds each function documents. */
static void
test_mldsa_dispatched_arith_equals_generic(void)
{
    uint64_t x = 0x0F1E2D3C4B5A6978ULL;
    size_t bad = 0;

    for (int round = 0; round < 200; round++) {
        mldsa_poly a, b, r1, r2, acc1, acc2;
        mldsa_challenge ch;
        for (int i = 0; i < MLDSA_N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* |a| < q for the forward NTT; acc values up to 2^27 */
            a.c[i] = (int32_t)(x % (2 * MLDSA_Q - 1)) - (MLDSA_Q - 1);
            b.c[i] = round == 0 ? (1 << 27) - 1
                                : (int32_t)((x >> 20) % (1u << 28)) - (1 << 27);
        }
        r1 = r2 = a;
        kms_mldsa_ntt(&r1);
        kms_mldsa_ntt_generic(&r2);
        bad += memcmp(&r1, &r2, sizeof r1) != 0;
        r1 = r2 = b;
        kms_mldsa_invntt(&r1);
        kms_mldsa_invntt_generic(&r2);
        bad += memcmp(&r1, &r2, sizeof r1) != 0;
        kms_mldsa_ntt(&a);
        kms_mldsa_poly_pointwise(&r1, &a, &a);
        kms_mldsa_poly_pointwise_generic(&r2, &a, &a);
        bad += memcmp(&r1, &r2, sizeof r1) != 0;
        acc1 = acc2 = r1;
        kms_mldsa_poly_pointwise_acc(&acc1, &a, &r1);
        kms_mldsa_poly_pointwise_acc_generic(&acc2, &a, &r1);
        bad += memcmp(&acc1, &acc2, sizeof acc1) != 0;
        ch.count = 60;
        for (unsigned t = 0; t < ch.count; t++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ch.pos[t] = (uint8_t)x;
            ch.sign[t] = (x >> 9) & 1 ? 1 : -1;
        }
        for (int i = 0; i < MLDSA_N; i++)
            b.c[i] = (int32_t)((uint32_t)b.c[i] % 8193) - 4096;
        kms_mldsa_poly_mul_challenge(&r1, &ch, &b);
        kms_mldsa_poly_mul_challenge_generic(&r2, &ch, &b);
        bad += memcmp(&r1, &r2, sizeof r1) != 0;
        /* the 16-bit product for |s| <= 4 equals the 32-bit one */
        for (int i = 0; i < MLDSA_N; i++)
            b.c[i] = round == 1 ? 4 : (int32_t)((uint32_t)b.c[i] % 9) - 4;
        kms_mldsa_poly_mul_challenge(&r1, &ch, &b);
        kms_mldsa_poly_mul_challenge_small_generic(&r2, &ch, &b);
        bad += memcmp(&r1, &r2, sizeof r1) != 0;
        kms_mldsa_poly_mul_challenge_small(&r2, &ch, &b);
        bad += memcmp(&r1, &r2, sizeof r1) != 0;
    }
    CHECK_EQ(bad, 0);
}

/* The two-way samplers equal two calls of the single ones. */
static void
test_mldsa_x2_samplers_equal_single(void)
{
    const mldsa_params *prm = kms_mldsa_params_get(KMS_MLDSA_65);
    uint8_t rho[64];
    mldsa_poly a0, a1, b0, b1;

    REQUIRE(prm);
    for (int round = 0; round < 20; round++) {
        uint8_t sr0[2] = {(uint8_t)round, 3}, sr1[2] = {4, (uint8_t)round};
        memset(rho, 0x30 + round, sizeof rho);
        kms_mldsa_rej_ntt_poly_x2(&a0, &a1, rho, sr0, sr1);
        kms_mldsa_rej_ntt_poly(&b0, rho, sr0[0], sr0[1]);
        kms_mldsa_rej_ntt_poly(&b1, rho, sr1[0], sr1[1]);
        CHECK_MEM(&a0, &b0, sizeof a0);
        CHECK_MEM(&a1, &b1, sizeof a1);
        kms_mldsa_expand_mask_poly_x2(&a0, &a1, rho, (uint16_t)(round * 5),
                                      (uint16_t)(round * 5 + 1), prm);
        kms_mldsa_expand_mask_poly(&b0, rho, (uint16_t)(round * 5), prm);
        kms_mldsa_expand_mask_poly(&b1, rho, (uint16_t)(round * 5 + 1), prm);
        CHECK_MEM(&a0, &b0, sizeof a0);
        CHECK_MEM(&a1, &b1, sizeof a1);
    }
}

static void
test_mldsa_strerror_every_code_named(void)
{
    for (int e = KMS_MLDSA_OK; e <= KMS_MLDSA_EINTERNAL; e++) {
        const char *s = kms_mldsa_strerror((kms_mldsa_err)e);
        CHECK(s && *s && strcmp(s, "unknown error") != 0);
    }
    CHECK(strcmp(kms_mldsa_strerror((kms_mldsa_err)999), "unknown error") == 0);
}

const kt_case kt_mldsa_cases[] = {
    KT_CASE(test_mldsa_sizes_match_fips204),
    KT_CASE(test_mldsa_roundtrip_all_sets_verifies),
    KT_CASE(test_mldsa_deterministic_repeatable_hedged_differs),
    KT_CASE(test_mldsa_keygen_same_seed_same_keys_random_differs),
    KT_CASE(test_mldsa_wrong_message_context_key_rejected),
    KT_CASE(test_mldsa44_sig_every_bit_flip_rejected),
    KT_CASE(test_mldsa65_87_sig_bit_flips_strided_rejected),
    KT_CASE(test_mldsa_wrong_lengths_rejected),
    KT_CASE(test_mldsa_bad_arguments_rejected),
    KT_CASE(test_mldsa_context_over_255_rejected),
    KT_CASE(test_mldsa_sk_eta_out_of_range_rejected),
    KT_CASE(test_mldsa_hint_noncanonical_rejected),
    KT_CASE(test_mldsa_z_out_of_range_rejected),
    KT_CASE(test_mldsa_external_mu_equals_message_signing),
    KT_CASE(test_mldsa_hash_roundtrip_differs_from_pure),
    KT_CASE(test_mldsa_concurrent_signing_threads_verify),
    KT_CASE(test_mldsa_decompose_every_input_matches_definition),
    KT_CASE(test_mldsa_power2round_every_input_matches_definition),
    KT_CASE(test_mldsa_use_hint_recovers_high_bits),
    KT_CASE(test_mldsa_ntt_product_matches_schoolbook),
    KT_CASE(test_mldsa_dispatched_arith_equals_generic),
    KT_CASE(test_mldsa_x2_samplers_equal_single),
    KT_CASE(test_mldsa_strerror_every_code_named),
};
const size_t kt_mldsa_count = KT_COUNT(kt_mldsa_cases);
