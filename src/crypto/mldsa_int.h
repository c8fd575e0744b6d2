/* SPDX-License-Identifier: Apache-2.0 */
/* ML-DSA internals shared by mldsa.c, mldsa_poly.c and the unit tests
 * (exhaustive checks of the arithmetic). Never installed.
 *
 * Representation: a polynomial is 256 int32 coefficients. Values are kept
 * modulo q = 8380417 in whichever representative the comment states;
 * "canonical" means [0, q), "centered" means [-(q-1)/2, (q-1)/2].
 * Multiplication uses Montgomery reduction with R = 2^32. */
#ifndef KMS_MLDSA_INT_H
#define KMS_MLDSA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kms_mldsa.h"

#define MLDSA_N    256
#define MLDSA_Q    8380417
#define MLDSA_D    13
#define MLDSA_KMAX 8
#define MLDSA_LMAX 7
#define MLDSA_QINV 58728449u /* q^-1 mod 2^32 */

typedef struct {
    int32_t c[MLDSA_N];
} mldsa_poly;

typedef struct {
    kms_mldsa_param id;
    unsigned k, l;     /* matrix A is k x l */
    unsigned eta;      /* private key coefficient range */
    unsigned tau;      /* nonzero coefficients of the challenge */
    int32_t beta;      /* tau * eta */
    int32_t gamma1;    /* y coefficient range */
    int32_t gamma2;    /* low-order rounding range */
    unsigned omega;    /* max number of hint ones */
    size_t ctilde_len; /* lambda / 4 */
    unsigned eta_bits; /* bitlen(2 eta) */
    unsigned z_bits;   /* 1 + bitlen(gamma1 - 1) */
    unsigned w1_bits;  /* bitlen((q-1)/(2 gamma2) - 1) */
    size_t pk_len, sk_len, sig_len;
} mldsa_params;

const mldsa_params *kms_mldsa_params_get(kms_mldsa_param p);

/* ---- arithmetic modulo q (constant time) ------------------------------ */

/* a * 2^-32 mod q, for |a| < 2^31 q; result in (-q, q). */
static inline int32_t
mldsa_mont_reduce(int64_t a)
{
    int32_t t = (int32_t)((uint32_t)(uint64_t)a * MLDSA_QINV);
    return (int32_t)((a - (int64_t)t * MLDSA_Q) >> 32);
}

/* a mod q into [-6283008, 6283008] for a <= 2^31 - 2^22 - 1. */
static inline int32_t
mldsa_reduce32(int32_t a)
{
    int32_t t = (a + (1 << 22)) >> 23;
    return a - t * MLDSA_Q;
}

/* Add q if a is negative. */
static inline int32_t
mldsa_caddq(int32_t a)
{
    return a + ((a >> 31) & MLDSA_Q);
}

/* Canonical representative in [0, q). */
static inline int32_t
mldsa_freeze(int32_t a)
{
    return mldsa_caddq(mldsa_reduce32(a));
}

/* Centered representative of any a (|a| < 2^31 - 2^22). */
static inline int32_t
mldsa_center(int32_t a)
{
    a = mldsa_freeze(a);
    return a - (((int32_t)((MLDSA_Q - 1) / 2) - a) >> 31 & MLDSA_Q);
}

/* 1 if |a| >= bound else 0, for centered a and 0 < bound < 2^30. */
static inline uint32_t
mldsa_exceeds(int32_t a, int32_t bound)
{
    int32_t m = a >> 31;
    int32_t abs_a = (a ^ m) - m;
    return (uint32_t)((bound - 1 - abs_a) >> 31) & 1u;
}

/* ---- FIPS 204 section 7.4-7.5 helpers --------------------------------- */

/* Inline: they run once or more per coefficient.
 * Power2Round (Algorithm 35) of canonical a: returns r1, sets *r0.
 * Decompose (Algorithm 36) of canonical a: returns r1, sets *r0 (centered,
 * with the q-1 wrap-around of the standard). Constant time.
 * UseHint (Algorithm 40) of canonical a and hint bit h (public data). */
static inline int32_t
kms_mldsa_power2round(int32_t a, int32_t *r0)
{
    /* r1 = ceil((a - 2^12) / 2^13), so that r0 lies in (-2^12, 2^12]. */
    int32_t r1 = (a + (1 << (MLDSA_D - 1)) - 1) >> MLDSA_D;
    *r0 = a - r1 * (1 << MLDSA_D);
    return r1;
}

static inline int32_t
kms_mldsa_decompose(int32_t gamma2, int32_t a, int32_t *r0)
{
    int32_t r1, m, wrap;

    /* r1 = floor((a + gamma2 - 1) / (2 gamma2)) puts r0 in (-gamma2,
     * gamma2]. 2 gamma2 = 2^9 * 1023 or 2^11 * 93: shift out the power of
     * two, then divide by a multiply-shift that is exact over the whole
     * range (x < 2^15, resp. x < 4140). The branch is on the public
     * parameter set only. */
    if (gamma2 == (MLDSA_Q - 1) / 32) {
        int32_t x = (a + gamma2 - 1) >> 9;
        r1 = (x * 32801) >> 25;
        m = 16;
    } else {
        int32_t x = (a + gamma2 - 1) >> 11;
        r1 = (x * 5638) >> 19;
        m = 44;
    }
    *r0 = a - r1 * 2 * gamma2;
    /* Algorithm 36 lines 3-5: r+ - r0 = q - 1 means r1 = m; it becomes 0
     * and r0 drops by one. wrap is all ones exactly then. */
    wrap = -(int32_t)((((uint32_t)(r1 ^ m)) - 1u) >> 31);
    r1 &= ~wrap;
    *r0 -= wrap & 1;
    return r1;
}

static inline int32_t
kms_mldsa_use_hint(int32_t gamma2, int32_t a, unsigned h)
{
    int32_t r0, r1 = kms_mldsa_decompose(gamma2, a, &r0);
    int32_t m = gamma2 == (MLDSA_Q - 1) / 32 ? 16 : 44;

    /* Verification only: a and h are public. */
    if (!h)
        return r1;
    if (r0 > 0)
        return r1 + 1 == m ? 0 : r1 + 1;
    return r1 == 0 ? m - 1 : r1 - 1;
}

/* ---- NTT (Algorithms 41-45) ------------------------------------------- */

/* In place; input |a_i| < q (any sign), output |a_i| < 9q, standard
 * (non-Montgomery) domain. */
void kms_mldsa_ntt(mldsa_poly *a);
/* In place inverse; input |a_i| < 2^27 (sums of up to 16 Montgomery
 * products); the output is
 * multiplied by 2^32 (it undoes one Montgomery factor of the pointwise
 * product), |a_i| < q. */
void kms_mldsa_invntt(mldsa_poly *a);
/* r = a o b * 2^-32 (pointwise Montgomery product). */
void kms_mldsa_poly_pointwise(mldsa_poly *r, const mldsa_poly *a,
                              const mldsa_poly *b);
/* r += a o b * 2^-32. */
void kms_mldsa_poly_pointwise_acc(mldsa_poly *r, const mldsa_poly *a,
                                  const mldsa_poly *b);

/* The challenge c (tau coefficients +-1, the rest 0) as a list, so that
 * c * s is computed by additions at the (public) positions of c. */
typedef struct {
    uint8_t pos[64];
    int8_t sign[64];
    unsigned count;
} mldsa_challenge;

/* r = c * s in Z[X]/(X^256 + 1), exact (no reduction): |r_i| <= tau *
 * max|s_i|. Constant time in s; c is public. */
void kms_mldsa_poly_mul_challenge(mldsa_poly *r, const mldsa_challenge *c,
                                  const mldsa_poly *s);
/* The same for |s_i| <= 4 (s1 and s2), computed in 16-bit lanes. */
void kms_mldsa_poly_mul_challenge_small(mldsa_poly *r, const mldsa_challenge *c,
                                        const mldsa_poly *s);
/* The list form of a challenge polynomial from SampleInBall. */
void kms_mldsa_challenge_from_poly(mldsa_challenge *out, const mldsa_poly *c);

/* The baseline-ISA builds of the dispatched functions above (kms_cpu.h);
 * the tests check that both builds agree. */
void kms_mldsa_ntt_generic(mldsa_poly *a);
void kms_mldsa_invntt_generic(mldsa_poly *a);
void kms_mldsa_poly_pointwise_generic(mldsa_poly *r, const mldsa_poly *a,
                                      const mldsa_poly *b);
void kms_mldsa_poly_pointwise_acc_generic(mldsa_poly *r, const mldsa_poly *a,
                                          const mldsa_poly *b);
void kms_mldsa_poly_mul_challenge_generic(mldsa_poly *r,
                                          const mldsa_challenge *c,
                                          const mldsa_poly *s);
void kms_mldsa_poly_mul_challenge_small_generic(mldsa_poly *r,
                                                const mldsa_challenge *c,
                                                const mldsa_poly *s);

/* ---- sampling (Algorithms 29-34) ---------------------------------------- */

/* RejNTTPoly(rho || s || r) (Algorithms 30, 32): entry A[r][s]. Public. */
void kms_mldsa_rej_ntt_poly(mldsa_poly *a, const uint8_t rho[32], uint8_t s,
                            uint8_t r);
/* Two entries at once (two-way Keccak): sr = {s, r} for each. */
void kms_mldsa_rej_ntt_poly_x2(mldsa_poly *a0, mldsa_poly *a1,
                               const uint8_t rho[32], const uint8_t sr0[2],
                               const uint8_t sr1[2]);
/* RejBoundedPoly(rho' || IntegerToBytes(idx, 2)) (Algorithms 31, 33). The
 * result is secret; only the per-sample rejection decision is revealed. */
void kms_mldsa_rej_bounded_poly(mldsa_poly *a, const uint8_t rhop[64],
                                uint16_t idx, unsigned eta);
/* ExpandMask entry: y = BitUnpack(H(rho'' || IntegerToBytes(idx, 2)),
 * gamma1 - 1, gamma1) (Algorithm 34). Constant time. */
void kms_mldsa_expand_mask_poly(mldsa_poly *y, const uint8_t rhopp[64],
                                uint16_t idx, const mldsa_params *prm);
/* Two ExpandMask entries at once (two-way Keccak). */
void kms_mldsa_expand_mask_poly_x2(mldsa_poly *y0, mldsa_poly *y1,
                                   const uint8_t rhopp[64], uint16_t idx0,
                                   uint16_t idx1, const mldsa_params *prm);
/* SampleInBall(ctilde) (Algorithm 29). ctilde must be public (the signer
 * declassifies it: it is either published in the signature or discarded). */
void kms_mldsa_sample_in_ball(mldsa_poly *c, const uint8_t *ctilde,
                              size_t ctilde_len, unsigned tau);

/* ---- bit packing (Algorithms 16-19) ------------------------------------- */

/* SimpleBitPack of 256 coefficients with `bits` bits each (values already
 * mapped to [0, 2^bits)); writes 32 * bits bytes. Constant time. */
void kms_mldsa_pack_bits(uint8_t *out, const int32_t *v, unsigned bits);
/* Inverse of kms_mldsa_pack_bits; reads 32 * bits bytes. */
void kms_mldsa_unpack_bits(int32_t *v, const uint8_t *in, unsigned bits);

#endif
