/* SPDX-License-Identifier: Apache-2.0 */
/* ML-DSA key generation, signing and verification (FIPS 204 sections 5,
 * 6 and 7.2), plus the external message formats of Algorithms 2-5.
 *
 * Working memory (the expanded matrix A and the vectors, up to ~110 KiB
 * for ML-DSA-87) comes from the heap per call, so the functions are safe on
 * small thread stacks; it is wiped before it is freed. */
#include "kms_mldsa.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kc.h"
#include "keccak.h"
#include "mldsa_ct.h"
#include "mldsa_int.h"

#define TRY(expr)                                                              \
    do {                                                                       \
        if ((rc = (expr)) != KMS_MLDSA_OK)                                     \
            goto out;                                                          \
    } while (0)
#define ENSURE(cond, code)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            rc = (code);                                                       \
            goto out;                                                          \
        }                                                                      \
    } while (0)

/* FIPS 204 section 4, Table 1. */
static const mldsa_params mldsa_param_table[] = {
    {KMS_MLDSA_44, 4, 4, 2, 39, 78, 1 << 17, (MLDSA_Q - 1) / 88, 80, 32, 3, 18,
     6, 1312, 2560, 2420},
    {KMS_MLDSA_65, 6, 5, 4, 49, 196, 1 << 19, (MLDSA_Q - 1) / 32, 55, 48, 4, 20,
     4, 1952, 4032, 3309},
    {KMS_MLDSA_87, 8, 7, 2, 60, 120, 1 << 19, (MLDSA_Q - 1) / 32, 75, 64, 3, 20,
     4, 2592, 4896, 4627},
};

/* Signing gives up after this many iterations of the rejection loop
 * (FIPS 204 Appendix C allows a bound of at least 814; reaching it has
 * probability below 2^-256). */
#define MLDSA_SIGN_MAX_ITER 814

/* DER encodings of the pre-hash OIDs (FIPS 204 section 5.4.1). */
static const uint8_t oid_sha256[11] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x01};
static const uint8_t oid_sha512[11] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x03};

const mldsa_params *
kms_mldsa_params_get(kms_mldsa_param p)
{
    for (size_t i = 0;
         i < sizeof mldsa_param_table / sizeof mldsa_param_table[0]; i++)
        if (mldsa_param_table[i].id == p)
            return &mldsa_param_table[i];
    return NULL;
}

const char *
kms_mldsa_strerror(kms_mldsa_err e)
{
    switch (e) {
#define KMS_MLDSA_STR_(name, msg)                                              \
    case name:                                                                 \
        return msg;
        KMS_MLDSA_ERRORS(KMS_MLDSA_STR_)
#undef KMS_MLDSA_STR_
    default:
        return "unknown error";
    }
}

size_t
kms_mldsa_pk_len(kms_mldsa_param p)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);
    return prm ? prm->pk_len : 0;
}

size_t
kms_mldsa_sk_len(kms_mldsa_param p)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);
    return prm ? prm->sk_len : 0;
}

size_t
kms_mldsa_sig_len(kms_mldsa_param p)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);
    return prm ? prm->sig_len : 0;
}

/* ---- M' as up to three pieces, so that messages are never copied ------ */

typedef struct {
    const uint8_t *p[3];
    size_t len[3];
} mprime_parts;

/* Everything the three algorithms need, in one heap block. */
typedef struct {
    mldsa_poly a[MLDSA_KMAX * MLDSA_LMAX]; /* A-hat, row-major k x l */
    mldsa_poly s1[MLDSA_LMAX];             /* s1 (plain coefficients) */
    mldsa_poly s2[MLDSA_KMAX];             /* s2 */
    mldsa_poly t0[MLDSA_KMAX];             /* t0 */
    mldsa_poly w1[MLDSA_KMAX];             /* HighBits(w) */
    mldsa_poly y[MLDSA_LMAX];              /* y, then z */
    mldsa_poly yhat[MLDSA_LMAX];
    mldsa_poly w[MLDSA_KMAX]; /* w, then w - cs2 */
    mldsa_poly cs;            /* c s1, c s2, c t0 */
    mldsa_poly h[MLDSA_KMAX]; /* hint bits */
    mldsa_poly c;
    mldsa_challenge ch;
    uint8_t w1enc[MLDSA_KMAX * 32 * 6];
    uint8_t rho[32], key[32], tr[64], mu[64], rhopp[64];
    uint8_t ctilde[64];
} mldsa_ws;

_Static_assert(sizeof(mldsa_ws) < 128 * 1024, "workspace above mmap threshold");

/* Not zeroed: every field is written before it is read. */
static mldsa_ws *
ws_new(void)
{
    return malloc(sizeof(mldsa_ws));
}

/* Everything after the public matrix A may hold secrets. The block stays
 * below glibc's mmap threshold (128 KiB) so that it is recycled, not
 * mapped and faulted in on every call. */
static void
ws_free(mldsa_ws *ws)
{
    if (!ws)
        return;
    kc_wipe(ws->s1, sizeof *ws - offsetof(mldsa_ws, s1));
    free(ws);
}

/* Verification holds no secret: nothing to wipe. */
static void
ws_free_public(mldsa_ws *ws)
{
    free(ws);
}

/* A-hat = ExpandA(rho) (Algorithm 32): A[r][s] = RejNTTPoly(rho || s || r),
 * two entries at a time. */
static void
expand_a(const mldsa_params *prm, mldsa_ws *ws)
{
    unsigned n = prm->k * prm->l, e = 0;

    for (; e + 1 < n; e += 2) {
        uint8_t sr0[2] = {(uint8_t)(e % prm->l), (uint8_t)(e / prm->l)};
        uint8_t sr1[2] = {(uint8_t)((e + 1) % prm->l),
                          (uint8_t)((e + 1) / prm->l)};
        kms_mldsa_rej_ntt_poly_x2(&ws->a[e], &ws->a[e + 1], ws->rho, sr0, sr1);
    }
    if (e < n)
        kms_mldsa_rej_ntt_poly(&ws->a[e], ws->rho, (uint8_t)(e % prm->l),
                               (uint8_t)(e / prm->l));
}

/* out[i] = NTT^-1(sum_j A-hat[i][j] o vhat[j]) for i < k. */
static void
matrix_mul(const mldsa_params *prm, const mldsa_ws *ws, const mldsa_poly *vhat,
           mldsa_poly *out)
{
    for (unsigned i = 0; i < prm->k; i++) {
        kms_mldsa_poly_pointwise(&out[i], &ws->a[i * prm->l], &vhat[0]);
        for (unsigned j = 1; j < prm->l; j++)
            kms_mldsa_poly_pointwise_acc(&out[i], &ws->a[i * prm->l + j],
                                         &vhat[j]);
        kms_mldsa_invntt(&out[i]);
    }
}

/* w1Encode (Algorithm 28) into ws->w1enc; returns the length. */
static size_t
w1_encode(const mldsa_params *prm, mldsa_ws *ws, const mldsa_poly *w1)
{
    for (unsigned i = 0; i < prm->k; i++)
        kms_mldsa_pack_bits(ws->w1enc + i * 32 * prm->w1_bits, w1[i].c,
                            prm->w1_bits);
    return (size_t)prm->k * 32 * prm->w1_bits;
}

/* ctilde = H(mu || w1Encode(w1), lambda/4). */
static void
challenge_hash(const mldsa_params *prm, mldsa_ws *ws, size_t w1_len,
               uint8_t *ctilde)
{
    kms_keccak_ctx ctx;
    kms_shake256_init(&ctx);
    kms_shake_absorb(&ctx, ws->mu, sizeof ws->mu);
    kms_shake_absorb(&ctx, ws->w1enc, w1_len);
    kms_shake_squeeze(&ctx, ctilde, prm->ctilde_len);
    kms_keccak_wipe(&ctx);
}

/* mu = H(tr || M', 64). */
static void
compute_mu(const uint8_t tr[64], const mprime_parts *m, uint8_t mu[64])
{
    kms_keccak_ctx ctx;
    kms_shake256_init(&ctx);
    kms_shake_absorb(&ctx, tr, 64);
    for (int i = 0; i < 3; i++)
        kms_shake_absorb(&ctx, m->p[i], m->len[i]);
    kms_shake_squeeze(&ctx, mu, 64);
    kms_keccak_wipe(&ctx);
}

/* ---- key generation (Algorithm 6) -------------------------------------- */

static void
pk_encode(const mldsa_params *prm, const uint8_t rho[32], const mldsa_poly *t1,
          uint8_t *pk)
{
    memcpy(pk, rho, 32);
    for (unsigned i = 0; i < prm->k; i++)
        kms_mldsa_pack_bits(pk + 32 + 320 * i, t1[i].c, 10);
}

/* skEncode (Algorithm 24): BitPack(s, eta, eta) and BitPack(t0, 2^12 - 1,
 * 2^12) store eta - s and 2^12 - t0. */
static void
sk_encode(const mldsa_params *prm, mldsa_ws *ws, const mldsa_poly *s1,
          const mldsa_poly *s2, const mldsa_poly *t0, uint8_t *sk)
{
    size_t eb = 32u * prm->eta_bits;
    uint8_t *p = sk + 128;
    int32_t v[MLDSA_N];

    memcpy(sk, ws->rho, 32);
    memcpy(sk + 32, ws->key, 32);
    memcpy(sk + 64, ws->tr, 64);
    for (unsigned i = 0; i < prm->l; i++, p += eb) {
        for (unsigned j = 0; j < MLDSA_N; j++)
            v[j] = (int32_t)prm->eta - s1[i].c[j];
        kms_mldsa_pack_bits(p, v, prm->eta_bits);
    }
    for (unsigned i = 0; i < prm->k; i++, p += eb) {
        for (unsigned j = 0; j < MLDSA_N; j++)
            v[j] = (int32_t)prm->eta - s2[i].c[j];
        kms_mldsa_pack_bits(p, v, prm->eta_bits);
    }
    for (unsigned i = 0; i < prm->k; i++, p += 32 * MLDSA_D) {
        for (unsigned j = 0; j < MLDSA_N; j++)
            v[j] = (1 << (MLDSA_D - 1)) - t0[i].c[j];
        kms_mldsa_pack_bits(p, v, MLDSA_D);
    }
    kc_wipe(v, sizeof v);
}

static kms_mldsa_err
keygen_internal(const mldsa_params *prm, const uint8_t seed[32], uint8_t *pk,
                uint8_t *sk)
{
    mldsa_ws *ws = ws_new();
    uint8_t in[34], out[128];
    mldsa_poly *s1 = ws ? ws->y : NULL, *s2 = ws ? ws->w : NULL;
    mldsa_poly *t = ws ? ws->t0 : NULL, *t1 = ws ? ws->h : NULL;
    kms_mldsa_err rc = KMS_MLDSA_EINTERNAL;

    ENSURE(ws, KMS_MLDSA_ENOMEM);
    /* (rho, rho', K) = H(xi || k || l, 128) (line 1). */
    memcpy(in, seed, 32);
    in[32] = (uint8_t)prm->k;
    in[33] = (uint8_t)prm->l;
    kms_shake256(in, sizeof in, out, sizeof out);
    memcpy(ws->rho, out, 32);
    memcpy(ws->key, out + 96, 32);
    /* rho is published in pk. */
    KMS_CT_DECLASSIFY(ws->rho, sizeof ws->rho);
    expand_a(prm, ws);
    for (unsigned r = 0; r < prm->l; r++)
        kms_mldsa_rej_bounded_poly(&s1[r], out + 32, (uint16_t)r, prm->eta);
    for (unsigned r = 0; r < prm->k; r++)
        kms_mldsa_rej_bounded_poly(&s2[r], out + 32, (uint16_t)(prm->l + r),
                                   prm->eta);
    /* t = NTT^-1(A-hat o NTT(s1)) + s2 (line 5). */
    memcpy(ws->yhat, s1, prm->l * sizeof(mldsa_poly));
    for (unsigned r = 0; r < prm->l; r++)
        kms_mldsa_ntt(&ws->yhat[r]);
    matrix_mul(prm, ws, ws->yhat, t);
    for (unsigned i = 0; i < prm->k; i++)
        for (unsigned j = 0; j < MLDSA_N; j++) {
            int32_t a = mldsa_freeze(t[i].c[j] + s2[i].c[j]);
            t1[i].c[j] = kms_mldsa_power2round(a, &t[i].c[j]);
        }
    pk_encode(prm, ws->rho, t1, pk);
    KMS_CT_DECLASSIFY(pk, prm->pk_len);
    kms_shake256(pk, prm->pk_len, ws->tr, sizeof ws->tr);
    sk_encode(prm, ws, s1, s2, t, sk);
    rc = KMS_MLDSA_OK;
out:
    kc_wipe(in, sizeof in);
    kc_wipe(out, sizeof out);
    ws_free(ws);
    return rc;
}

kms_mldsa_err
kms_mldsa_keygen_seed(kms_mldsa_param p, const uint8_t seed[KMS_MLDSA_SEED_LEN],
                      uint8_t *pk, size_t pk_cap, uint8_t *sk, size_t sk_cap)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);

    if (!prm)
        return KMS_MLDSA_EPARAM;
    if (!seed || !pk || !sk)
        return KMS_MLDSA_EINVAL;
    if (pk_cap < prm->pk_len || sk_cap < prm->sk_len)
        return KMS_MLDSA_EBUFSIZE;
    return keygen_internal(prm, seed, pk, sk);
}

kms_mldsa_err
kms_mldsa_keygen(kms_mldsa_param p, uint8_t *pk, size_t pk_cap, uint8_t *sk,
                 size_t sk_cap)
{
    uint8_t seed[KMS_MLDSA_SEED_LEN];
    kms_mldsa_err rc;

    if (kc_init() != 0)
        return KMS_MLDSA_EINTERNAL;
    kc_random(seed, sizeof seed);
    rc = kms_mldsa_keygen_seed(p, seed, pk, pk_cap, sk, sk_cap);
    kc_wipe(seed, sizeof seed);
    return rc;
}

/* ---- private key decoding (Algorithm 25) ------------------------------- */

/* Unpack `count` eta-packed polynomials; *bad collects, in
 * constant time, whether any coefficient lies outside [-eta, eta]. */
static const uint8_t *
unpack_eta(const mldsa_params *prm, const uint8_t *p, mldsa_poly *out,
           unsigned count, uint32_t *bad)
{
    int32_t max = 2 * (int32_t)prm->eta;

    for (unsigned i = 0; i < count; i++, p += 32 * prm->eta_bits) {
        kms_mldsa_unpack_bits(out[i].c, p, prm->eta_bits);
        for (unsigned j = 0; j < MLDSA_N; j++) {
            *bad |= (uint32_t)(max - out[i].c[j]) >> 31;
            out[i].c[j] = (int32_t)prm->eta - out[i].c[j];
        }
    }
    return p;
}

/* Decode sk into ws (rho, K, tr, s1, s2, t0). Only the
 * final "malformed" verdict is revealed. */
static kms_mldsa_err
sk_decode(const mldsa_params *prm, const uint8_t *sk, mldsa_ws *ws)
{
    const uint8_t *p = sk + 128;
    uint32_t bad = 0;

    memcpy(ws->rho, sk, 32);
    memcpy(ws->key, sk + 32, 32);
    memcpy(ws->tr, sk + 64, 64);
    p = unpack_eta(prm, p, ws->s1, prm->l, &bad);
    p = unpack_eta(prm, p, ws->s2, prm->k, &bad);
    for (unsigned i = 0; i < prm->k; i++, p += 32 * MLDSA_D) {
        kms_mldsa_unpack_bits(ws->t0[i].c, p, MLDSA_D);
        for (unsigned j = 0; j < MLDSA_N; j++)
            ws->t0[i].c[j] = (1 << (MLDSA_D - 1)) - ws->t0[i].c[j];
    }
    KMS_CT_DECLASSIFY(&bad, sizeof bad);
    /* rho and tr are public (rho is in pk, tr = H(pk)). */
    KMS_CT_DECLASSIFY(ws->rho, sizeof ws->rho);
    KMS_CT_DECLASSIFY(ws->tr, sizeof ws->tr);
    return bad ? KMS_MLDSA_EKEY : KMS_MLDSA_OK;
}

/* ---- signing (Algorithm 7) --------------------------------------------- */

/* HintBitPack (Algorithm 20); h is public once the signature is accepted. */
static void
hint_pack(const mldsa_params *prm, const mldsa_poly *h, uint8_t *y)
{
    unsigned index = 0;

    memset(y, 0, prm->omega + prm->k);
    for (unsigned i = 0; i < prm->k; i++) {
        for (unsigned j = 0; j < MLDSA_N; j++)
            if (h[i].c[j])
                y[index++] = (uint8_t)j;
        y[prm->omega + i] = (uint8_t)index;
    }
}

static void
sig_encode(const mldsa_params *prm, mldsa_ws *ws, uint8_t *sig)
{
    uint8_t *p = sig + prm->ctilde_len;
    int32_t v[MLDSA_N];

    memcpy(sig, ws->ctilde, prm->ctilde_len);
    for (unsigned i = 0; i < prm->l; i++, p += 32 * prm->z_bits) {
        for (unsigned j = 0; j < MLDSA_N; j++)
            v[j] = prm->gamma1 - ws->y[i].c[j];
        kms_mldsa_pack_bits(p, v, prm->z_bits);
    }
    hint_pack(prm, ws->h, p);
}

/* One iteration of the rejection loop (lines 11-31) for counter kappa.
 * Returns 1 when (z, h) is accepted and left in ws->y and ws->h.
 *
 * c is sparse and public (see below), so <<c s1>>, <<c s2>> and <<c t0>>
 * are computed exactly by additions at c's positions instead of NTTs
 * (the same products, FIPS 204 section 3.6.4 allows any equivalent
 * computation). The checks abort the attempt as soon as one fails: this
 * reveals which check rejected, as in the reference implementation, and
 * nothing about the secret beyond that decision. */
static int
sign_attempt(const mldsa_params *prm, mldsa_ws *ws, uint16_t kappa)
{
    mldsa_poly *cs = &ws->cs;
    uint32_t reject = 0, hints = 0;
    int32_t g2 = prm->gamma2;
    size_t w1_len;

    /* y = ExpandMask(rho'', kappa) (Algorithm 34), two at a time */
    for (unsigned r = 0; r + 1 < prm->l; r += 2)
        kms_mldsa_expand_mask_poly_x2(&ws->y[r], &ws->y[r + 1], ws->rhopp,
                                      (uint16_t)(kappa + r),
                                      (uint16_t)(kappa + r + 1), prm);
    if (prm->l % 2)
        kms_mldsa_expand_mask_poly(&ws->y[prm->l - 1], ws->rhopp,
                                   (uint16_t)(kappa + prm->l - 1), prm);
    for (unsigned r = 0; r < prm->l; r++) {
        ws->yhat[r] = ws->y[r];
        kms_mldsa_ntt(&ws->yhat[r]);
    }
    matrix_mul(prm, ws, ws->yhat, ws->w);
    /* w1 = HighBits(w), ctilde = H(mu || w1Encode(w1)) (lines 13-15). */
    for (unsigned i = 0; i < prm->k; i++)
        for (unsigned j = 0; j < MLDSA_N; j++) {
            int32_t r0;
            ws->w[i].c[j] = mldsa_freeze(ws->w[i].c[j]);
            ws->w1[i].c[j] = kms_mldsa_decompose(g2, ws->w[i].c[j], &r0);
        }
    w1_len = w1_encode(prm, ws, ws->w1);
    challenge_hash(prm, ws, w1_len, ws->ctilde);
    /* ctilde is published if this attempt is accepted and discarded
     * otherwise; SampleInBall and the sparse products may branch on it. */
    KMS_CT_DECLASSIFY(ws->ctilde, prm->ctilde_len);
    kms_mldsa_sample_in_ball(&ws->c, ws->ctilde, prm->ctilde_len, prm->tau);
    kms_mldsa_challenge_from_poly(&ws->ch, &ws->c);
    /* z = y + <<c s1>>, ||z|| < gamma1 - beta (lines 18-23); z is exact. */
    for (unsigned r = 0; r < prm->l; r++) {
        kms_mldsa_poly_mul_challenge_small(&cs[0], &ws->ch, &ws->s1[r]);
        for (unsigned j = 0; j < MLDSA_N; j++) {
            ws->y[r].c[j] += cs[0].c[j];
            reject |= mldsa_exceeds(ws->y[r].c[j], prm->gamma1 - prm->beta);
        }
    }
    KMS_CT_DECLASSIFY(&reject, sizeof reject);
    if (reject)
        return 0;
    /* r0 = LowBits(w - <<c s2>>), ||r0|| < gamma2 - beta. */
    for (unsigned i = 0; i < prm->k; i++) {
        kms_mldsa_poly_mul_challenge_small(&cs[0], &ws->ch, &ws->s2[i]);
        for (unsigned j = 0; j < MLDSA_N; j++) {
            int32_t r0;
            ws->w[i].c[j] = mldsa_freeze(ws->w[i].c[j] - cs[0].c[j]);
            (void)kms_mldsa_decompose(g2, ws->w[i].c[j], &r0);
            reject |= mldsa_exceeds(r0, g2 - prm->beta);
        }
    }
    KMS_CT_DECLASSIFY(&reject, sizeof reject);
    if (reject)
        return 0;
    /* ||<<c t0>>|| < gamma2 and h = MakeHint(-ct0, w - cs2 + ct0) with at
     * most omega ones (lines 25-28, Algorithm 39). Since ||r0|| < gamma2 -
     * beta passed, HighBits(w - cs2) = w1, so MakeHint compares w1 with
     * HighBits(w - cs2 + ct0). */
    for (unsigned i = 0; i < prm->k; i++) {
        kms_mldsa_poly_mul_challenge(&cs[0], &ws->ch, &ws->t0[i]);
        for (unsigned j = 0; j < MLDSA_N; j++) {
            int32_t r0, ct0 = cs[0].c[j];
            int32_t v = mldsa_freeze(ws->w[i].c[j] + ct0);
            int32_t hb = kms_mldsa_decompose(g2, v, &r0);
            uint32_t diff = (uint32_t)(hb ^ ws->w1[i].c[j]);
            uint32_t hint = (diff | (0u - diff)) >> 31;
            ws->h[i].c[j] = (int32_t)hint;
            hints += hint;
            reject |= mldsa_exceeds(ct0, g2);
        }
    }
    reject |= ((uint32_t)prm->omega - hints) >> 31;
    KMS_CT_DECLASSIFY(&reject, sizeof reject);
    if (reject)
        return 0;
    /* Accepted: z and h are the signature. */
    KMS_CT_DECLASSIFY(ws->y, sizeof ws->y);
    KMS_CT_DECLASSIFY(ws->h, sizeof ws->h);
    return 1;
}

/* Lines 8-32 with mu already in ws->mu. */
static kms_mldsa_err
sign_loop(const mldsa_params *prm, mldsa_ws *ws, const uint8_t rnd[32],
          uint8_t *sig)
{
    kms_keccak_ctx ctx;

    /* rho'' = H(K || rnd || mu, 64) (line 7). */
    kms_shake256_init(&ctx);
    kms_shake_absorb(&ctx, ws->key, 32);
    kms_shake_absorb(&ctx, rnd, 32);
    kms_shake_absorb(&ctx, ws->mu, 64);
    kms_shake_squeeze(&ctx, ws->rhopp, 64);
    kms_keccak_wipe(&ctx);
    expand_a(prm, ws);
    for (unsigned it = 0; it < MLDSA_SIGN_MAX_ITER; it++) {
        if (sign_attempt(prm, ws, (uint16_t)(it * prm->l))) {
            sig_encode(prm, ws, sig);
            return KMS_MLDSA_OK;
        }
    }
    return KMS_MLDSA_EINTERNAL;
}

/* Sign either M' (mu computed from tr) or a given mu. */
static kms_mldsa_err
sign_common(const mldsa_params *prm, const uint8_t *sk, size_t sk_len,
            const mprime_parts *m, const uint8_t *mu, const uint8_t rnd[32],
            uint8_t *sig, size_t sig_cap)
{
    mldsa_ws *ws = NULL;
    kms_mldsa_err rc = KMS_MLDSA_EINTERNAL;

    ENSURE(sk && sig && rnd, KMS_MLDSA_EINVAL);
    ENSURE(sk_len == prm->sk_len, KMS_MLDSA_EKEYLEN);
    ENSURE(sig_cap >= prm->sig_len, KMS_MLDSA_EBUFSIZE);
    ENSURE((ws = ws_new()) != NULL, KMS_MLDSA_ENOMEM);
    TRY(sk_decode(prm, sk, ws));
    if (mu)
        memcpy(ws->mu, mu, 64);
    else
        compute_mu(ws->tr, m, ws->mu);
    rc = sign_loop(prm, ws, rnd, sig);
out:
    ws_free(ws);
    return rc;
}

/* ---- verification (Algorithm 8) ---------------------------------------- */

/* HintBitUnpack (Algorithm 21) with its canonical-encoding checks.
 * Returns 0, or -1 for a malformed hint. */
static int
hint_unpack(const mldsa_params *prm, const uint8_t *y, mldsa_poly *h)
{
    unsigned index = 0;

    memset(h, 0, prm->k * sizeof(mldsa_poly));
    for (unsigned i = 0; i < prm->k; i++) {
        unsigned end = y[prm->omega + i];
        unsigned first = index;
        if (end < index || end > prm->omega)
            return -1;
        for (; index < end; index++) {
            if (index > first && y[index - 1] >= y[index])
                return -1;
            h[i].c[y[index]] = 1;
        }
    }
    for (unsigned i = index; i < prm->omega; i++)
        if (y[i] != 0)
            return -1;
    return 0;
}

static kms_mldsa_err
verify_common(const mldsa_params *prm, const uint8_t *pk, size_t pk_len,
              const mprime_parts *m, const uint8_t *mu, const uint8_t *sig,
              size_t sig_len)
{
    mldsa_ws *ws = NULL;
    const uint8_t *p;
    uint8_t ctilde2[64];
    uint32_t too_big = 0;
    kms_mldsa_err rc = KMS_MLDSA_EINTERNAL;

    ENSURE(pk && sig, KMS_MLDSA_EINVAL);
    ENSURE(pk_len == prm->pk_len, KMS_MLDSA_EKEYLEN);
    ENSURE(sig_len == prm->sig_len, KMS_MLDSA_ESIGLEN);
    ENSURE((ws = ws_new()) != NULL, KMS_MLDSA_ENOMEM);
    /* sigDecode (Algorithm 27): z coefficients are gamma1 - packed. */
    p = sig + prm->ctilde_len;
    for (unsigned i = 0; i < prm->l; i++, p += 32 * prm->z_bits) {
        kms_mldsa_unpack_bits(ws->y[i].c, p, prm->z_bits);
        for (unsigned j = 0; j < MLDSA_N; j++) {
            ws->y[i].c[j] = prm->gamma1 - ws->y[i].c[j];
            too_big |= mldsa_exceeds(ws->y[i].c[j], prm->gamma1 - prm->beta);
        }
    }
    ENSURE(hint_unpack(prm, p, ws->h) == 0, KMS_MLDSA_EVERIFY);
    ENSURE(!too_big, KMS_MLDSA_EVERIFY);
    /* pkDecode (Algorithm 23), tr and mu (lines 6-7). */
    memcpy(ws->rho, pk, 32);
    if (mu) {
        memcpy(ws->mu, mu, 64);
    } else {
        kms_shake256(pk, pk_len, ws->tr, sizeof ws->tr);
        compute_mu(ws->tr, m, ws->mu);
    }
    expand_a(prm, ws);
    kms_mldsa_sample_in_ball(&ws->c, sig, prm->ctilde_len, prm->tau);
    kms_mldsa_challenge_from_poly(&ws->ch, &ws->c);
    for (unsigned r = 0; r < prm->l; r++)
        kms_mldsa_ntt(&ws->y[r]);
    /* w'_approx = NTT^-1(A-hat o NTT(z)) - c t1 2^d (line 9); c t1 is
     * computed exactly by the sparse product, |c t1 2^d| < 2^29. */
    for (unsigned i = 0; i < prm->k; i++) {
        kms_mldsa_unpack_bits(ws->cs.c, pk + 32 + 320 * i, 10);
        kms_mldsa_poly_mul_challenge(&ws->t0[i], &ws->ch, &ws->cs);
        kms_mldsa_poly_pointwise(&ws->w[i], &ws->a[i * prm->l], &ws->y[0]);
        for (unsigned j = 1; j < prm->l; j++)
            kms_mldsa_poly_pointwise_acc(&ws->w[i], &ws->a[i * prm->l + j],
                                         &ws->y[j]);
        kms_mldsa_invntt(&ws->w[i]);
        /* w1' = UseHint(h, w'_approx) (line 10). */
        for (unsigned j = 0; j < MLDSA_N; j++)
            ws->w[i].c[j] = kms_mldsa_use_hint(
                prm->gamma2,
                mldsa_freeze(ws->w[i].c[j] - ws->t0[i].c[j] * (1 << MLDSA_D)),
                (unsigned)ws->h[i].c[j]);
    }
    challenge_hash(prm, ws, w1_encode(prm, ws, ws->w), ctilde2);
    rc = kc_ct_eq(ctilde2, sig, prm->ctilde_len) ? KMS_MLDSA_OK
                                                 : KMS_MLDSA_EVERIFY;
out:
    ws_free_public(ws);
    return rc;
}

/* ---- public entry points ----------------------------------------------- */

/* Checks shared by every entry point. */
static kms_mldsa_err
check_args(kms_mldsa_param p, const mldsa_params **prm, const uint8_t *msg,
           size_t msg_len, const uint8_t *ctx, size_t ctx_len)
{
    *prm = kms_mldsa_params_get(p);
    if (!*prm)
        return KMS_MLDSA_EPARAM;
    if ((!msg && msg_len) || (!ctx && ctx_len))
        return KMS_MLDSA_EINVAL;
    if (ctx_len > KMS_MLDSA_CTX_MAX)
        return KMS_MLDSA_ECTX;
    return KMS_MLDSA_OK;
}

/* rnd for hedged (CSPRNG) or deterministic (0^32) signing (Algorithm 2,
 * lines 5-8). */
static kms_mldsa_err
get_rnd(unsigned flags, uint8_t rnd[32])
{
    if (flags & ~KMS_MLDSA_DETERMINISTIC)
        return KMS_MLDSA_EINVAL;
    if (flags & KMS_MLDSA_DETERMINISTIC) {
        memset(rnd, 0, 32);
        return KMS_MLDSA_OK;
    }
    if (kc_init() != 0)
        return KMS_MLDSA_EINTERNAL;
    kc_random(rnd, 32);
    return KMS_MLDSA_OK;
}

kms_mldsa_err
kms_mldsa_sign_internal(kms_mldsa_param p, const uint8_t *sk, size_t sk_len,
                        const uint8_t *mprime, size_t mprime_len,
                        const uint8_t rnd[KMS_MLDSA_RND_LEN], uint8_t *sig,
                        size_t sig_cap)
{
    const mldsa_params *prm;
    mprime_parts m = {{mprime, NULL, NULL}, {mprime_len, 0, 0}};
    kms_mldsa_err rc = check_args(p, &prm, mprime, mprime_len, NULL, 0);

    if (rc != KMS_MLDSA_OK)
        return rc;
    return sign_common(prm, sk, sk_len, &m, NULL, rnd, sig, sig_cap);
}

kms_mldsa_err
kms_mldsa_verify_internal(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
                          const uint8_t *mprime, size_t mprime_len,
                          const uint8_t *sig, size_t sig_len)
{
    const mldsa_params *prm;
    mprime_parts m = {{mprime, NULL, NULL}, {mprime_len, 0, 0}};
    kms_mldsa_err rc = check_args(p, &prm, mprime, mprime_len, NULL, 0);

    if (rc != KMS_MLDSA_OK)
        return rc;
    return verify_common(prm, pk, pk_len, &m, NULL, sig, sig_len);
}

kms_mldsa_err
kms_mldsa_sign(kms_mldsa_param p, const uint8_t *sk, size_t sk_len,
               const uint8_t *msg, size_t msg_len, const uint8_t *ctx,
               size_t ctx_len, unsigned flags, uint8_t *sig, size_t sig_cap)
{
    const mldsa_params *prm;
    uint8_t hdr[2] = {0, (uint8_t)ctx_len}, rnd[32];
    mprime_parts m = {{hdr, ctx, msg}, {2, ctx_len, msg_len}};
    kms_mldsa_err rc = check_args(p, &prm, msg, msg_len, ctx, ctx_len);

    if (rc != KMS_MLDSA_OK)
        return rc;
    if ((rc = get_rnd(flags, rnd)) != KMS_MLDSA_OK)
        return rc;
    rc = sign_common(prm, sk, sk_len, &m, NULL, rnd, sig, sig_cap);
    kc_wipe(rnd, sizeof rnd);
    return rc;
}

kms_mldsa_err
kms_mldsa_verify(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
                 const uint8_t *msg, size_t msg_len, const uint8_t *ctx,
                 size_t ctx_len, const uint8_t *sig, size_t sig_len)
{
    const mldsa_params *prm;
    uint8_t hdr[2] = {0, (uint8_t)ctx_len};
    mprime_parts m = {{hdr, ctx, msg}, {2, ctx_len, msg_len}};
    kms_mldsa_err rc = check_args(p, &prm, msg, msg_len, ctx, ctx_len);

    if (rc != KMS_MLDSA_OK)
        return rc;
    return verify_common(prm, pk, pk_len, &m, NULL, sig, sig_len);
}

/* 0x01 || |ctx| (first two bytes), then OID || PH(M) into `tail`. */
static kms_mldsa_err
prehash_tail(kms_mldsa_prehash ph, const uint8_t *digest, size_t digest_len,
             uint8_t tail[11 + 64], size_t *tail_len)
{
    const uint8_t *oid;
    size_t want;

    switch (ph) {
    case KMS_MLDSA_PH_SHA256:
        oid = oid_sha256;
        want = 32;
        break;
    case KMS_MLDSA_PH_SHA512:
        oid = oid_sha512;
        want = 64;
        break;
    default:
        return KMS_MLDSA_EHASH;
    }
    if (!digest || digest_len != want)
        return KMS_MLDSA_EINVAL;
    memcpy(tail, oid, 11);
    memcpy(tail + 11, digest, want);
    *tail_len = 11 + want;
    return KMS_MLDSA_OK;
}

static kms_mldsa_err
prehash_message(kms_mldsa_prehash ph, const uint8_t *msg, size_t msg_len,
                uint8_t digest[64], size_t *digest_len)
{
    const EVP_MD *md;
    unsigned int n = 0;

    switch (ph) {
    case KMS_MLDSA_PH_SHA256:
        md = EVP_sha256();
        break;
    case KMS_MLDSA_PH_SHA512:
        md = EVP_sha512();
        break;
    default:
        return KMS_MLDSA_EHASH;
    }
    if (!msg && msg_len)
        return KMS_MLDSA_EINVAL;
    if (EVP_Digest(msg ? (const void *)msg : (const void *)"", msg_len, digest,
                   &n, md, NULL) != 1)
        return KMS_MLDSA_EINTERNAL;
    *digest_len = n;
    return KMS_MLDSA_OK;
}

kms_mldsa_err
kms_mldsa_hash_sign_digest(kms_mldsa_param p, const uint8_t *sk, size_t sk_len,
                           kms_mldsa_prehash ph, const uint8_t *digest,
                           size_t digest_len, const uint8_t *ctx,
                           size_t ctx_len, unsigned flags, uint8_t *sig,
                           size_t sig_cap)
{
    const mldsa_params *prm;
    uint8_t hdr[2] = {1, (uint8_t)ctx_len}, tail[75], rnd[32];
    size_t tail_len = 0;
    mprime_parts m;
    kms_mldsa_err rc = check_args(p, &prm, NULL, 0, ctx, ctx_len);

    if (rc != KMS_MLDSA_OK)
        return rc;
    if ((rc = prehash_tail(ph, digest, digest_len, tail, &tail_len)) != 0)
        return rc;
    m = (mprime_parts){{hdr, ctx, tail}, {2, ctx_len, tail_len}};
    if ((rc = get_rnd(flags, rnd)) != KMS_MLDSA_OK)
        return rc;
    rc = sign_common(prm, sk, sk_len, &m, NULL, rnd, sig, sig_cap);
    kc_wipe(rnd, sizeof rnd);
    return rc;
}

kms_mldsa_err
kms_mldsa_hash_verify_digest(kms_mldsa_param p, const uint8_t *pk,
                             size_t pk_len, kms_mldsa_prehash ph,
                             const uint8_t *digest, size_t digest_len,
                             const uint8_t *ctx, size_t ctx_len,
                             const uint8_t *sig, size_t sig_len)
{
    const mldsa_params *prm;
    uint8_t hdr[2] = {1, (uint8_t)ctx_len}, tail[75];
    size_t tail_len = 0;
    mprime_parts m;
    kms_mldsa_err rc = check_args(p, &prm, NULL, 0, ctx, ctx_len);

    if (rc != KMS_MLDSA_OK)
        return rc;
    if ((rc = prehash_tail(ph, digest, digest_len, tail, &tail_len)) != 0)
        return rc;
    m = (mprime_parts){{hdr, ctx, tail}, {2, ctx_len, tail_len}};
    return verify_common(prm, pk, pk_len, &m, NULL, sig, sig_len);
}

kms_mldsa_err
kms_mldsa_hash_sign(kms_mldsa_param p, const uint8_t *sk, size_t sk_len,
                    kms_mldsa_prehash ph, const uint8_t *msg, size_t msg_len,
                    const uint8_t *ctx, size_t ctx_len, unsigned flags,
                    uint8_t *sig, size_t sig_cap)
{
    uint8_t digest[64];
    size_t digest_len = 0;
    kms_mldsa_err rc = prehash_message(ph, msg, msg_len, digest, &digest_len);

    if (rc == KMS_MLDSA_OK)
        rc = kms_mldsa_hash_sign_digest(p, sk, sk_len, ph, digest, digest_len,
                                        ctx, ctx_len, flags, sig, sig_cap);
    kc_wipe(digest, sizeof digest);
    return rc;
}

kms_mldsa_err
kms_mldsa_hash_verify(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
                      kms_mldsa_prehash ph, const uint8_t *msg, size_t msg_len,
                      const uint8_t *ctx, size_t ctx_len, const uint8_t *sig,
                      size_t sig_len)
{
    uint8_t digest[64];
    size_t digest_len = 0;
    kms_mldsa_err rc = prehash_message(ph, msg, msg_len, digest, &digest_len);

    if (rc == KMS_MLDSA_OK)
        rc = kms_mldsa_hash_verify_digest(p, pk, pk_len, ph, digest, digest_len,
                                          ctx, ctx_len, sig, sig_len);
    return rc;
}

kms_mldsa_err
kms_mldsa_compute_mu(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
                     const uint8_t *mprime, size_t mprime_len,
                     uint8_t mu[KMS_MLDSA_MU_LEN])
{
    const mldsa_params *prm;
    uint8_t tr[64];
    mprime_parts m = {{mprime, NULL, NULL}, {mprime_len, 0, 0}};
    kms_mldsa_err rc = check_args(p, &prm, mprime, mprime_len, NULL, 0);

    if (rc != KMS_MLDSA_OK)
        return rc;
    if (!pk || !mu)
        return KMS_MLDSA_EINVAL;
    if (pk_len != prm->pk_len)
        return KMS_MLDSA_EKEYLEN;
    kms_shake256(pk, pk_len, tr, sizeof tr);
    compute_mu(tr, &m, mu);
    return KMS_MLDSA_OK;
}

kms_mldsa_err
kms_mldsa_compute_mu_ctx(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
                         const uint8_t *msg, size_t msg_len, const uint8_t *ctx,
                         size_t ctx_len, uint8_t mu[KMS_MLDSA_MU_LEN])
{
    const mldsa_params *prm;
    uint8_t tr[64], hdr[2] = {0, (uint8_t)ctx_len};
    mprime_parts m = {{hdr, ctx, msg}, {2, ctx_len, msg_len}};
    kms_mldsa_err rc = check_args(p, &prm, msg, msg_len, ctx, ctx_len);

    if (rc != KMS_MLDSA_OK)
        return rc;
    if (!pk || !mu)
        return KMS_MLDSA_EINVAL;
    if (pk_len != prm->pk_len)
        return KMS_MLDSA_EKEYLEN;
    kms_shake256(pk, pk_len, tr, sizeof tr);
    compute_mu(tr, &m, mu);
    return KMS_MLDSA_OK;
}

kms_mldsa_err
kms_mldsa_sign_mu(kms_mldsa_param p, const uint8_t *sk, size_t sk_len,
                  const uint8_t mu[KMS_MLDSA_MU_LEN], unsigned flags,
                  uint8_t *sig, size_t sig_cap)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);
    uint8_t rnd[32];
    kms_mldsa_err rc;

    if (!prm)
        return KMS_MLDSA_EPARAM;
    if (!mu)
        return KMS_MLDSA_EINVAL;
    if ((rc = get_rnd(flags, rnd)) != KMS_MLDSA_OK)
        return rc;
    rc = sign_common(prm, sk, sk_len, NULL, mu, rnd, sig, sig_cap);
    kc_wipe(rnd, sizeof rnd);
    return rc;
}

kms_mldsa_err
kms_mldsa_verify_mu(kms_mldsa_param p, const uint8_t *pk, size_t pk_len,
                    const uint8_t mu[KMS_MLDSA_MU_LEN], const uint8_t *sig,
                    size_t sig_len)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);

    if (!prm)
        return KMS_MLDSA_EPARAM;
    if (!mu)
        return KMS_MLDSA_EINVAL;
    return verify_common(prm, pk, pk_len, NULL, mu, sig, sig_len);
}

kms_mldsa_err
kms_mldsa_sk_to_pk(kms_mldsa_param p, const uint8_t *sk, size_t sk_len,
                   uint8_t *pk, size_t pk_cap)
{
    const mldsa_params *prm = kms_mldsa_params_get(p);
    mldsa_ws *ws = NULL;
    kms_mldsa_err rc = KMS_MLDSA_EINTERNAL;

    ENSURE(prm, KMS_MLDSA_EPARAM);
    ENSURE(sk && pk, KMS_MLDSA_EINVAL);
    ENSURE(sk_len == prm->sk_len, KMS_MLDSA_EKEYLEN);
    ENSURE(pk_cap >= prm->pk_len, KMS_MLDSA_EBUFSIZE);
    ENSURE((ws = ws_new()) != NULL, KMS_MLDSA_ENOMEM);
    TRY(sk_decode(prm, sk, ws));
    /* t = NTT^-1(A-hat o NTT(s1)) + s2, then t1 = Power2Round(t). */
    expand_a(prm, ws);
    for (unsigned r = 0; r < prm->l; r++) {
        ws->yhat[r] = ws->s1[r];
        kms_mldsa_ntt(&ws->yhat[r]);
    }
    matrix_mul(prm, ws, ws->yhat, ws->t0);
    for (unsigned i = 0; i < prm->k; i++)
        for (unsigned j = 0; j < MLDSA_N; j++) {
            int32_t r0, a = mldsa_freeze(ws->t0[i].c[j] + ws->s2[i].c[j]);
            ws->h[i].c[j] = kms_mldsa_power2round(a, &r0);
        }
    pk_encode(prm, ws->rho, ws->h, pk);
    rc = KMS_MLDSA_OK;
out:
    ws_free(ws);
    return rc;
}
