/* SPDX-License-Identifier: Apache-2.0 */
/* ML-DSA polynomial arithmetic, NTT, rounding, sampling and bit packing
 * (FIPS 204 sections 7.1-7.5 and Appendix B).
 *
 * Constant-time rules kept here: no branch and no table index depends on a
 * secret coefficient. Reductions are shifts and multiplications; Decompose
 * divides by 2*gamma2 with a multiply-shift whose exactness the unit tests
 * check over every input; the rejection samplers for secret polynomials
 * reveal only each sample's accept/reject decision (FIPS 204 section 3.6.2
 * treats those as non-sensitive), declassified through KMS_CT_DECLASSIFY. */
#include "mldsa_int.h"

#include <string.h>

#include "keccak.h"
#include "kc.h"
#include "kms_cpu.h"
#include "mldsa_ct.h"

/* zetas[k] = 1753^BitRev8(k) * 2^32 mod q, centered (Appendix B, in the
 * Montgomery domain so that one Montgomery reduction gives zeta * a). */
static const int32_t mldsa_zetas[MLDSA_N] = {
    -4186625, 25847,    -2608894, -518909,  237124,   -777960,  -876248,
    466468,   1826347,  2353451,  -359251,  -2091905, 3119733,  -2884855,
    3111497,  2680103,  2725464,  1024112,  -1079900, 3585928,  -549488,
    -1119584, 2619752,  -2108549, -2118186, -3859737, -1399561, -3277672,
    1757237,  -19422,   4010497,  280005,   2706023,  95776,    3077325,
    3530437,  -1661693, -3592148, -2537516, 3915439,  -3861115, -3043716,
    3574422,  -2867647, 3539968,  -300467,  2348700,  -539299,  -1699267,
    -1643818, 3505694,  -3821735, 3507263,  -2140649, -1600420, 3699596,
    811944,   531354,   954230,   3881043,  3900724,  -2556880, 2071892,
    -2797779, -3930395, -1528703, -3677745, -3041255, -1452451, 3475950,
    2176455,  -1585221, -1257611, 1939314,  -4083598, -1000202, -3190144,
    -3157330, -3632928, 126922,   3412210,  -983419,  2147896,  2715295,
    -2967645, -3693493, -411027,  -2477047, -671102,  -1228525, -22981,
    -1308169, -381987,  1349076,  1852771,  -1430430, -3343383, 264944,
    508951,   3097992,  44288,    -1100098, 904516,   3958618,  -3724342,
    -8578,    1653064,  -3249728, 2389356,  -210977,  759969,   -1316856,
    189548,   -3553272, 3159746,  -1851402, -2409325, -177440,  1315589,
    1341330,  1285669,  -1584928, -812732,  -1439742, -3019102, -3881060,
    -3628969, 3839961,  2091667,  3407706,  2316500,  3817976,  -3342478,
    2244091,  -2446433, -3562462, 266997,   2434439,  -1235728, 3513181,
    -3520352, -3759364, -1197226, -3193378, 900702,   1859098,  909542,
    819034,   495491,   -1613174, -43260,   -522500,  -655327,  -3122442,
    2031748,  3207046,  -3556995, -525098,  -768622,  -3595838, 342297,
    286988,   -2437823, 4108315,  3437287,  -3342277, 1735879,  203044,
    2842341,  2691481,  -2590150, 1265009,  4055324,  1247620,  2486353,
    1595974,  -3767016, 1250494,  2635921,  -3548272, -2994039, 1869119,
    1903435,  -1050970, -1333058, 1237275,  -3318210, -1430225, -451100,
    1312455,  3306115,  -1962642, -1279661, 1917081,  -2546312, -1374803,
    1500165,  777191,   2235880,  3406031,  -542412,  -2831860, -1671176,
    -1846953, -2584293, -3724270, 594136,   -3776993, -2013608, 2432395,
    2454455,  -164721,  1957272,  3369112,  185531,   -1207385, -3183426,
    162844,   1616392,  3014001,  810149,   1652634,  -3694233, -1799107,
    -3038916, 3523897,  3866901,  269760,   2213111,  -975884,  1717735,
    472078,   -426683,  1723600,  -1803090, 1910376,  -1667432, -1104333,
    -260646,  -3833893, -2939036, -2235985, -420899,  -2286327, 183443,
    -976891,  1612842,  -3545687, -554416,  3919660,  -48306,   -1362209,
    3937738,  1400424,  -846154,  1976782,
};

/* 2^64 / 256 mod q: the inverse NTT's scaling by 256^-1 combined with the
 * Montgomery factor left by the pointwise product (Algorithm 42, line 21). */
#define MLDSA_INVNTT_F 41978
/* -zeta_1 * F mod q: the last level's twiddle merged with that scaling. */
#define MLDSA_INVNTT_ZF 3975713

static KMS_ALWAYS_INLINE void
ntt_impl(mldsa_poly *a)
{
    unsigned m = 0;

    /* Algorithm 41: Cooley-Tukey butterflies, len = 128 .. 1. */
    for (unsigned len = 128; len >= 1; len >>= 1) {
        for (unsigned start = 0; start < MLDSA_N; start += 2 * len) {
            int64_t z = mldsa_zetas[++m];
            for (unsigned j = start; j < start + len; j++) {
                int32_t t = mldsa_mont_reduce(z * a->c[j + len]);
                a->c[j + len] = a->c[j] - t;
                a->c[j] = a->c[j] + t;
            }
        }
    }
}

static KMS_ALWAYS_INLINE void
invntt_impl(mldsa_poly *a)
{
    unsigned m = MLDSA_N;

    /* Algorithm 42: Gentleman-Sande butterflies, len = 1 .. 128. The first
     * level reduces its sums below q, so that the seven doublings that
     * follow stay below 2^31 (2^7 q < 2^31); the last level folds in the
     * final multiplication by 256^-1. */
    for (unsigned j = 0; j < MLDSA_N; j += 2) {
        int64_t z = -mldsa_zetas[--m];
        int32_t t = a->c[j];
        a->c[j] = mldsa_reduce32(t + a->c[j + 1]);
        a->c[j + 1] = mldsa_mont_reduce(z * (t - a->c[j + 1]));
    }
    for (unsigned len = 2; len < MLDSA_N / 2; len <<= 1) {
        for (unsigned start = 0; start < MLDSA_N; start += 2 * len) {
            int64_t z = -mldsa_zetas[--m];
            for (unsigned j = start; j < start + len; j++) {
                int32_t t = a->c[j];
                a->c[j] = t + a->c[j + len];
                a->c[j + len] = mldsa_mont_reduce(z * (t - a->c[j + len]));
            }
        }
    }
    for (unsigned j = 0; j < MLDSA_N / 2; j++) {
        int32_t t = a->c[j], u = a->c[j + MLDSA_N / 2];
        a->c[j] = mldsa_mont_reduce((int64_t)MLDSA_INVNTT_F * (t + u));
        a->c[j + MLDSA_N / 2] =
            mldsa_mont_reduce((int64_t)MLDSA_INVNTT_ZF * (t - u));
    }
}

static KMS_ALWAYS_INLINE void
poly_pointwise_impl(mldsa_poly *r, const mldsa_poly *a, const mldsa_poly *b)
{
    for (unsigned i = 0; i < MLDSA_N; i++)
        r->c[i] = mldsa_mont_reduce((int64_t)a->c[i] * b->c[i]);
}

static KMS_ALWAYS_INLINE void
poly_pointwise_acc_impl(mldsa_poly *r, const mldsa_poly *a, const mldsa_poly *b)
{
    for (unsigned i = 0; i < MLDSA_N; i++)
        r->c[i] += mldsa_mont_reduce((int64_t)a->c[i] * b->c[i]);
}

void
kms_mldsa_challenge_from_poly(mldsa_challenge *out, const mldsa_poly *c)
{
    out->count = 0;
    for (unsigned i = 0; i < MLDSA_N && out->count < 64; i++) {
        if (c->c[i] != 0) {
            out->pos[out->count] = (uint8_t)i;
            out->sign[out->count] = (int8_t)c->c[i];
            out->count++;
        }
    }
}

/* r += sign * e[0..255]: fixed trip count, no aliasing, so the compiler
 * vectorises it. */
static KMS_ALWAYS_INLINE void
add_slice(int32_t *restrict r, const int32_t *restrict e, int sign)
{
    if (sign > 0)
        for (unsigned k = 0; k < MLDSA_N; k++)
            r[k] += e[k];
    else
        for (unsigned k = 0; k < MLDSA_N; k++)
            r[k] -= e[k];
}

static KMS_ALWAYS_INLINE void
poly_mul_challenge_impl(mldsa_poly *r, const mldsa_challenge *c,
                        const mldsa_poly *s)
{
    /* X^i * s in Z[X]/(X^256 + 1) is the slice ext[256 - i .. 511 - i] of
     * ext = (-s || s): coefficients pushed past X^255 wrap negated. */
    int32_t ext[2 * MLDSA_N];

    for (unsigned j = 0; j < MLDSA_N; j++) {
        ext[j] = -s->c[j];
        ext[MLDSA_N + j] = s->c[j];
    }
    memset(r->c, 0, sizeof r->c);
    for (unsigned t = 0; t < c->count; t++)
        add_slice(r->c, ext + MLDSA_N - c->pos[t], c->sign[t]);
    kc_wipe(ext, sizeof ext);
}

/* The same product for |s_i| <= 4 (s1, s2), in 16-bit lanes: |c s| <=
 * 60 * 4 fits, and the additions vectorise twice as wide. */
static KMS_ALWAYS_INLINE void
add_slice16(int16_t *restrict r, const int16_t *restrict e, int sign)
{
    if (sign > 0)
        for (unsigned k = 0; k < MLDSA_N; k++)
            r[k] = (int16_t)(r[k] + e[k]);
    else
        for (unsigned k = 0; k < MLDSA_N; k++)
            r[k] = (int16_t)(r[k] - e[k]);
}

static KMS_ALWAYS_INLINE void
poly_mul_challenge_small_impl(mldsa_poly *r, const mldsa_challenge *c,
                              const mldsa_poly *s)
{
    int16_t ext[2 * MLDSA_N], acc[MLDSA_N];

    for (unsigned j = 0; j < MLDSA_N; j++) {
        ext[j] = (int16_t)-s->c[j];
        ext[MLDSA_N + j] = (int16_t)s->c[j];
    }
    memset(acc, 0, sizeof acc);
    for (unsigned t = 0; t < c->count; t++)
        add_slice16(acc, ext + MLDSA_N - c->pos[t], c->sign[t]);
    for (unsigned j = 0; j < MLDSA_N; j++)
        r->c[j] = acc[j];
    kc_wipe(ext, sizeof ext);
    kc_wipe(acc, sizeof acc);
}

/* ---- baseline x86-64: SSE2 -------------------------------------------------
 * Baseline x86-64 has no signed 32x32->64-bit vector multiply (SSE4.1), so
 * the compiler leaves the Montgomery products above scalar. These SSE2
 * builds of the NTT, inverse NTT and pointwise products compute exactly the
 * same values, four lanes at a time; the AVX2 variant keeps the C above. */
#if defined(__SSE2__)
#include <emmintrin.h>

/* Lane by lane mldsa_mont_reduce((int64_t)a * b). _mm_mul_epu32 gives the
 * unsigned products; the signed high half is hi_u(a b) - (a < 0 ? b : 0) -
 * (b < 0 ? a : 0) mod 2^32. a b and t q (t = a b q^-1 mod 2^32) agree in
 * their low 32 bits, so (a b - t q) >> 32 = hi_s(a b) - hi_s(t q) exactly. */
static KMS_ALWAYS_INLINE __m128i
mont_mul_sse2(__m128i a, __m128i b)
{
    const __m128i q = _mm_set1_epi32(MLDSA_Q);
    const __m128i qinv = _mm_set1_epi32((int32_t)MLDSA_QINV);
    const __m128i lo = _mm_set_epi32(0, -1, 0, -1);
    __m128i ab_e = _mm_mul_epu32(a, b);
    __m128i ab_o = _mm_mul_epu32(_mm_srli_epi64(a, 32), _mm_srli_epi64(b, 32));
    __m128i t_e = _mm_mul_epu32(ab_e, qinv);
    __m128i t_o = _mm_mul_epu32(ab_o, qinv);
    __m128i tq_e = _mm_mul_epu32(t_e, q);
    __m128i tq_o = _mm_mul_epu32(t_o, q);
    __m128i t = _mm_or_si128(_mm_and_si128(t_e, lo), _mm_slli_epi64(t_o, 32));
    __m128i hab = _mm_or_si128(_mm_srli_epi64(ab_e, 32),
                               _mm_andnot_si128(lo, ab_o));
    __m128i htq = _mm_or_si128(_mm_srli_epi64(tq_e, 32),
                               _mm_andnot_si128(lo, tq_o));

    hab = _mm_sub_epi32(hab, _mm_and_si128(_mm_srai_epi32(a, 31), b));
    hab = _mm_sub_epi32(hab, _mm_and_si128(_mm_srai_epi32(b, 31), a));
    htq = _mm_sub_epi32(htq, _mm_and_si128(_mm_srai_epi32(t, 31), q));
    return _mm_sub_epi32(hab, htq);
}

static KMS_ALWAYS_INLINE __m128i
load4(const int32_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

static KMS_ALWAYS_INLINE void
store4(int32_t *p, __m128i v)
{
    _mm_storeu_si128((__m128i *)(void *)p, v);
}

static void
ntt_base(mldsa_poly *a)
{
    unsigned m = 0;

    for (unsigned len = 128; len >= 4; len >>= 1) {
        for (unsigned start = 0; start < MLDSA_N; start += 2 * len) {
            __m128i z = _mm_set1_epi32(mldsa_zetas[++m]);
            for (unsigned j = start; j < start + len; j += 4) {
                __m128i x = load4(&a->c[j]);
                __m128i t = mont_mul_sse2(z, load4(&a->c[j + len]));
                store4(&a->c[j + len], _mm_sub_epi32(x, t));
                store4(&a->c[j], _mm_add_epi32(x, t));
            }
        }
    }
    for (unsigned len = 2; len >= 1; len >>= 1) {
        for (unsigned start = 0; start < MLDSA_N; start += 2 * len) {
            int64_t z = mldsa_zetas[++m];
            for (unsigned j = start; j < start + len; j++) {
                int32_t t = mldsa_mont_reduce(z * a->c[j + len]);
                a->c[j + len] = a->c[j] - t;
                a->c[j] = a->c[j] + t;
            }
        }
    }
}

static void
invntt_base(mldsa_poly *a)
{
    unsigned m = MLDSA_N;

    /* The same steps as invntt_impl. */
    for (unsigned j = 0; j < MLDSA_N; j += 2) {
        int64_t z = -mldsa_zetas[--m];
        int32_t t = a->c[j];
        a->c[j] = mldsa_reduce32(t + a->c[j + 1]);
        a->c[j + 1] = mldsa_mont_reduce(z * (t - a->c[j + 1]));
    }
    for (unsigned start = 0; start < MLDSA_N; start += 4) {
        int64_t z = -mldsa_zetas[--m];
        for (unsigned j = start; j < start + 2; j++) {
            int32_t t = a->c[j];
            a->c[j] = t + a->c[j + 2];
            a->c[j + 2] = mldsa_mont_reduce(z * (t - a->c[j + 2]));
        }
    }
    for (unsigned len = 4; len < MLDSA_N / 2; len <<= 1) {
        for (unsigned start = 0; start < MLDSA_N; start += 2 * len) {
            __m128i z = _mm_set1_epi32(-mldsa_zetas[--m]);
            for (unsigned j = start; j < start + len; j += 4) {
                __m128i x = load4(&a->c[j]), y = load4(&a->c[j + len]);
                store4(&a->c[j], _mm_add_epi32(x, y));
                store4(&a->c[j + len], mont_mul_sse2(z, _mm_sub_epi32(x, y)));
            }
        }
    }
    const __m128i f = _mm_set1_epi32(MLDSA_INVNTT_F);
    const __m128i zf = _mm_set1_epi32(MLDSA_INVNTT_ZF);
    for (unsigned j = 0; j < MLDSA_N / 2; j += 4) {
        __m128i x = load4(&a->c[j]), y = load4(&a->c[j + MLDSA_N / 2]);
        store4(&a->c[j], mont_mul_sse2(f, _mm_add_epi32(x, y)));
        store4(&a->c[j + MLDSA_N / 2], mont_mul_sse2(zf, _mm_sub_epi32(x, y)));
    }
}

static void
poly_pointwise_base(mldsa_poly *r, const mldsa_poly *a, const mldsa_poly *b)
{
    for (unsigned i = 0; i < MLDSA_N; i += 4)
        store4(&r->c[i], mont_mul_sse2(load4(&a->c[i]), load4(&b->c[i])));
}

static void
poly_pointwise_acc_base(mldsa_poly *r, const mldsa_poly *a,
                        const mldsa_poly *b)
{
    for (unsigned i = 0; i < MLDSA_N; i += 4) {
        __m128i p = mont_mul_sse2(load4(&a->c[i]), load4(&b->c[i]));
        store4(&r->c[i], _mm_add_epi32(load4(&r->c[i]), p));
    }
}
#else
#define ntt_base                ntt_impl
#define invntt_base             invntt_impl
#define poly_pointwise_base     poly_pointwise_impl
#define poly_pointwise_acc_base poly_pointwise_acc_impl
#endif
#define poly_mul_challenge_base       poly_mul_challenge_impl
#define poly_mul_challenge_small_base poly_mul_challenge_small_impl

/* ---- run-time dispatch (kms_cpu.h) --------------------------------------
 * Each hot function exists as a baseline build (the *_generic symbols, also
 * used by the tests; the SSE2 *_base functions above on x86-64) and, on
 * x86-64, an AVX2 build of the C *_impl source that the compiler vectorises;
 * kms_mldsa_* picks one per call. */
#define MLDSA_DISPATCH(name, params, args)                                     \
    void kms_mldsa_##name##_generic params                                     \
    {                                                                          \
        name##_base args;                                                      \
    }                                                                          \
    MLDSA_AVX2_VARIANT(name, params, args)                                     \
    void kms_mldsa_##name params                                               \
    {                                                                          \
        MLDSA_AVX2_CALL(name, args)                                            \
        name##_base args;                                                      \
    }
#ifdef KMS_X86_DISPATCH
#define MLDSA_AVX2_VARIANT(name, params, args)                                 \
    KMS_TARGET_AVX2 static void name##_avx2 params                             \
    {                                                                          \
        name##_impl args;                                                      \
    }
#define MLDSA_AVX2_CALL(name, args)                                            \
    if (kms_cpu_has_avx2()) {                                                  \
        name##_avx2 args;                                                      \
        return;                                                                \
    }
#else
#define MLDSA_AVX2_VARIANT(name, params, args)
#define MLDSA_AVX2_CALL(name, args)
#endif

MLDSA_DISPATCH(ntt, (mldsa_poly * a), (a))
MLDSA_DISPATCH(invntt, (mldsa_poly * a), (a))
MLDSA_DISPATCH(poly_pointwise,
               (mldsa_poly * r, const mldsa_poly *a, const mldsa_poly *b),
               (r, a, b))
MLDSA_DISPATCH(poly_pointwise_acc,
               (mldsa_poly * r, const mldsa_poly *a, const mldsa_poly *b),
               (r, a, b))
MLDSA_DISPATCH(poly_mul_challenge,
               (mldsa_poly * r, const mldsa_challenge *c, const mldsa_poly *s),
               (r, c, s))
MLDSA_DISPATCH(poly_mul_challenge_small,
               (mldsa_poly * r, const mldsa_challenge *c, const mldsa_poly *s),
               (r, c, s))

/* ---- sampling (section 7.3) ------------------------------------------- */

/* CoeffFromThreeBytes (Algorithm 14) over `len` bytes (a multiple of 3)
 * into a[ctr..]; returns the new count. Public data: every candidate is
 * stored and kept when below q. */
static unsigned
rej_ntt_parse(mldsa_poly *a, unsigned ctr, const uint8_t *buf, size_t len)
{
    for (size_t pos = 0; pos + 3 <= len && ctr < MLDSA_N; pos += 3) {
        uint32_t t = (uint32_t)buf[pos] | (uint32_t)buf[pos + 1] << 8 |
                     (uint32_t)(buf[pos + 2] & 0x7F) << 16;
        a->c[ctr] = (int32_t)t;
        ctr += (t - MLDSA_Q) >> 31;
    }
    return ctr;
}

void
kms_mldsa_rej_ntt_poly(mldsa_poly *a, const uint8_t rho[32], uint8_t s,
                       uint8_t r)
{
    kms_keccak_ctx ctx;
    uint8_t seed[34];
    uint8_t buf[5 * KMS_SHAKE128_RATE];
    unsigned ctr;

    memcpy(seed, rho, 32);
    seed[32] = s;
    seed[33] = r;
    kms_shake128_init(&ctx);
    kms_shake_absorb(&ctx, seed, sizeof seed);
    /* 5 blocks give 280 candidates; 256 are needed, each accepted with
     * probability q / 2^23. Blocks are multiples of 3 bytes. */
    kms_shake_squeeze_blocks(&ctx, buf, 5);
    ctr = rej_ntt_parse(a, 0, buf, sizeof buf);
    while (ctr < MLDSA_N) {
        kms_shake_squeeze_blocks(&ctx, buf, 1);
        ctr = rej_ntt_parse(a, ctr, buf, KMS_SHAKE128_RATE);
    }
}

void
kms_mldsa_rej_ntt_poly_x2(mldsa_poly *a0, mldsa_poly *a1, const uint8_t rho[32],
                          const uint8_t sr0[2], const uint8_t sr1[2])
{
    kms_keccak_x2_ctx ctx;
    uint8_t seed0[34], seed1[34];
    uint8_t buf0[5 * KMS_SHAKE128_RATE], buf1[5 * KMS_SHAKE128_RATE];
    unsigned ctr0, ctr1;

    memcpy(seed0, rho, 32);
    memcpy(seed1, rho, 32);
    memcpy(seed0 + 32, sr0, 2);
    memcpy(seed1 + 32, sr1, 2);
    kms_shake_x2_init(&ctx, KMS_SHAKE128_RATE, seed0, seed1, sizeof seed0);
    kms_shake_x2_squeeze_blocks(&ctx, buf0, buf1, 5);
    ctr0 = rej_ntt_parse(a0, 0, buf0, sizeof buf0);
    ctr1 = rej_ntt_parse(a1, 0, buf1, sizeof buf1);
    /* Rarely more: both streams advance together. */
    while (ctr0 < MLDSA_N || ctr1 < MLDSA_N) {
        kms_shake_x2_squeeze_blocks(&ctx, buf0, buf1, 1);
        ctr0 = rej_ntt_parse(a0, ctr0, buf0, KMS_SHAKE128_RATE);
        ctr1 = rej_ntt_parse(a1, ctr1, buf1, KMS_SHAKE128_RATE);
    }
}

/* CoeffFromHalfByte (Algorithm 15) without a secret branch: returns the
 * coefficient and sets *ok to 1 when b is accepted. */
static inline int32_t
coeff_from_half_byte(uint32_t b, unsigned eta, uint32_t *ok)
{
    if (eta == 2) {
        /* b mod 5 for b < 16 as b - 5 floor(b * 205 / 1024). */
        *ok = (b - 15u) >> 31;
        return 2 - (int32_t)(b - 5u * ((b * 205u) >> 10));
    }
    *ok = (b - 9u) >> 31;
    return 4 - (int32_t)b;
}

void
kms_mldsa_rej_bounded_poly(mldsa_poly *a, const uint8_t rhop[64], uint16_t idx,
                           unsigned eta)
{
    kms_keccak_ctx ctx;
    uint8_t seed[66];
    uint8_t buf[2 * KMS_SHAKE256_RATE];
    size_t buf_len = eta == 2 ? KMS_SHAKE256_RATE : 2 * KMS_SHAKE256_RATE;
    size_t pos = 0;
    unsigned ctr = 0;

    memcpy(seed, rhop, 64);
    seed[64] = (uint8_t)idx;
    seed[65] = (uint8_t)(idx >> 8);
    kms_shake256_init(&ctx);
    kms_shake_absorb(&ctx, seed, sizeof seed);
    kms_shake_squeeze_blocks(&ctx, buf, buf_len / KMS_SHAKE256_RATE);
    while (ctr < MLDSA_N) {
        uint32_t ok0, ok1;
        int32_t z0, z1;
        if (pos == buf_len) {
            kms_shake_squeeze_blocks(&ctx, buf, 1);
            buf_len = KMS_SHAKE256_RATE;
            pos = 0;
        }
        z0 = coeff_from_half_byte(buf[pos] & 0x0Fu, eta, &ok0);
        z1 = coeff_from_half_byte((uint32_t)buf[pos] >> 4, eta, &ok1);
        pos++;
        /* The accept/reject decisions may leak (section 3.6.2); the
         * coefficient values do not: they are only stored. */
        KMS_CT_DECLASSIFY(&ok0, sizeof ok0);
        KMS_CT_DECLASSIFY(&ok1, sizeof ok1);
        if (ok0)
            a->c[ctr++] = z0;
        if (ok1 && ctr < MLDSA_N)
            a->c[ctr++] = z1;
    }
    kc_wipe(buf, sizeof buf);
    kc_wipe(seed, sizeof seed);
    kms_keccak_wipe(&ctx);
}

void
kms_mldsa_expand_mask_poly(mldsa_poly *y, const uint8_t rhopp[64], uint16_t idx,
                           const mldsa_params *prm)
{
    uint8_t seed[66];
    uint8_t buf[32 * 20];
    size_t len = 32u * prm->z_bits;

    memcpy(seed, rhopp, 64);
    seed[64] = (uint8_t)idx;
    seed[65] = (uint8_t)(idx >> 8);
    kms_shake256(seed, sizeof seed, buf, len);
    kms_mldsa_unpack_bits(y->c, buf, prm->z_bits);
    for (unsigned i = 0; i < MLDSA_N; i++)
        y->c[i] = prm->gamma1 - y->c[i];
    kc_wipe(buf, sizeof buf);
    kc_wipe(seed, sizeof seed);
}

void
kms_mldsa_expand_mask_poly_x2(mldsa_poly *y0, mldsa_poly *y1,
                              const uint8_t rhopp[64], uint16_t idx0,
                              uint16_t idx1, const mldsa_params *prm)
{
    kms_keccak_x2_ctx ctx;
    uint8_t seed0[66], seed1[66];
    uint8_t buf0[5 * KMS_SHAKE256_RATE], buf1[5 * KMS_SHAKE256_RATE];

    memcpy(seed0, rhopp, 64);
    memcpy(seed1, rhopp, 64);
    seed0[64] = (uint8_t)idx0;
    seed0[65] = (uint8_t)(idx0 >> 8);
    seed1[64] = (uint8_t)idx1;
    seed1[65] = (uint8_t)(idx1 >> 8);
    /* 32 * z_bits <= 640 bytes: five blocks of 136 */
    kms_shake_x2_init(&ctx, KMS_SHAKE256_RATE, seed0, seed1, sizeof seed0);
    kms_shake_x2_squeeze_blocks(&ctx, buf0, buf1, 5);
    kms_mldsa_unpack_bits(y0->c, buf0, prm->z_bits);
    kms_mldsa_unpack_bits(y1->c, buf1, prm->z_bits);
    for (unsigned i = 0; i < MLDSA_N; i++) {
        y0->c[i] = prm->gamma1 - y0->c[i];
        y1->c[i] = prm->gamma1 - y1->c[i];
    }
    kms_keccak_x2_wipe(&ctx);
    kc_wipe(buf0, sizeof buf0);
    kc_wipe(buf1, sizeof buf1);
    kc_wipe(seed0, sizeof seed0);
    kc_wipe(seed1, sizeof seed1);
}

void
kms_mldsa_sample_in_ball(mldsa_poly *c, const uint8_t *ctilde,
                         size_t ctilde_len, unsigned tau)
{
    kms_keccak_ctx ctx;
    uint8_t buf[KMS_SHAKE256_RATE];
    uint64_t signs = 0;
    size_t pos = 8;

    kms_shake256_init(&ctx);
    kms_shake_absorb(&ctx, ctilde, ctilde_len);
    kms_shake_squeeze_blocks(&ctx, buf, 1);
    for (int i = 7; i >= 0; i--)
        signs = (signs << 8) | buf[i];
    memset(c->c, 0, sizeof c->c);
    /* Algorithm 29: a Fisher-Yates style insertion of tau signs. */
    for (unsigned i = MLDSA_N - tau; i < MLDSA_N; i++) {
        unsigned j;
        do {
            if (pos == sizeof buf) {
                kms_shake_squeeze_blocks(&ctx, buf, 1);
                pos = 0;
            }
            j = buf[pos++];
        } while (j > i);
        c->c[i] = c->c[j];
        c->c[j] = 1 - 2 * (int32_t)(signs & 1);
        signs >>= 1;
    }
    kms_keccak_wipe(&ctx);
}

/* ---- bit packing (section 7.1) ---------------------------------------- */

void
kms_mldsa_pack_bits(uint8_t *out, const int32_t *v, unsigned bits)
{
    uint64_t acc = 0;
    uint32_t mask = (1u << bits) - 1;
    unsigned n = 0;
    size_t o = 0;

    for (unsigned i = 0; i < MLDSA_N; i++) {
        acc |= (uint64_t)((uint32_t)v[i] & mask) << n;
        n += bits;
        while (n >= 8) {
            out[o++] = (uint8_t)acc;
            acc >>= 8;
            n -= 8;
        }
    }
}

void
kms_mldsa_unpack_bits(int32_t *v, const uint8_t *in, unsigned bits)
{
    uint64_t acc = 0;
    uint32_t mask = (1u << bits) - 1;
    unsigned n = 0;
    size_t o = 0;

    for (unsigned i = 0; i < MLDSA_N; i++) {
        while (n < bits) {
            acc |= (uint64_t)in[o++] << n;
            n += 8;
        }
        v[i] = (int32_t)(acc & mask);
        acc >>= bits;
        n -= bits;
    }
}
