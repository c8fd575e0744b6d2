/* SPDX-License-Identifier: Apache-2.0 */
/* ML-DSA-44/65/87: the Module-Lattice-Based Digital Signature Standard
 * (FIPS 204, August 2024). Internal API of kms_crypto (never installed);
 * libhsm's `mldsa` signer and kmsd use it.
 *
 * THREAD SAFETY: every function is reentrant and may run concurrently from
 * any number of threads; there is no global state. Working memory is taken
 * from the heap per call and wiped before it is freed.
 *
 * Buffers: keys and signatures have fixed sizes per parameter set
 * (kms_mldsa_pk_len() and friends). Output buffers are caller-owned and
 * must have at least that capacity (KMS_MLDSA_EBUFSIZE otherwise); they are
 * written only on success. Inputs are read only for the duration of the
 * call. A NULL pointer is accepted only together with a zero length.
 *
 * Verification returns KMS_MLDSA_OK only for a valid signature; any
 * invalid signature (bad hint encoding, z out of range, wrong challenge)
 * gives KMS_MLDSA_EVERIFY with no detail about which check failed. */
#ifndef KMS_MLDSA_H
#define KMS_MLDSA_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KMS_MLDSA_44 = 44,
    KMS_MLDSA_65 = 65,
    KMS_MLDSA_87 = 87,
} kms_mldsa_param;

/* Largest sizes over all parameter sets (ML-DSA-87). */
#define KMS_MLDSA_PK_MAX   2592
#define KMS_MLDSA_SK_MAX   4896
#define KMS_MLDSA_SIG_MAX  4627
#define KMS_MLDSA_SEED_LEN 32
#define KMS_MLDSA_RND_LEN  32
#define KMS_MLDSA_MU_LEN   64
#define KMS_MLDSA_TR_LEN   64
#define KMS_MLDSA_CTX_MAX  255

#define KMS_MLDSA_ERRORS(X)                                                    \
    X(KMS_MLDSA_OK, "success")                                                 \
    X(KMS_MLDSA_EINVAL, "invalid argument")                                    \
    X(KMS_MLDSA_EPARAM, "unknown ML-DSA parameter set")                        \
    X(KMS_MLDSA_EKEYLEN, "wrong key length for the parameter set")             \
    X(KMS_MLDSA_ESIGLEN, "wrong signature length for the parameter set")       \
    X(KMS_MLDSA_EKEY, "malformed private key")                                 \
    X(KMS_MLDSA_ECTX, "context string longer than 255 bytes")                  \
    X(KMS_MLDSA_EHASH, "unsupported pre-hash function")                        \
    X(KMS_MLDSA_EBUFSIZE, "output buffer too small")                           \
    X(KMS_MLDSA_EVERIFY, "signature verification failed")                      \
    X(KMS_MLDSA_ENOMEM, "out of memory")                                       \
    X(KMS_MLDSA_EINTERNAL, "internal error")

typedef enum {
#define KMS_MLDSA_ENUM_(name, msg) name,
    KMS_MLDSA_ERRORS(KMS_MLDSA_ENUM_)
#undef KMS_MLDSA_ENUM_
} kms_mldsa_err;

/* Never NULL; "unknown error" for a value outside the table. */
const char *kms_mldsa_strerror(kms_mldsa_err e);

/* Sizes in bytes; 0 for an unknown parameter set. */
size_t kms_mldsa_pk_len(kms_mldsa_param p);
size_t kms_mldsa_sk_len(kms_mldsa_param p);
size_t kms_mldsa_sig_len(kms_mldsa_param p);

/* Signing flags. Hedged signing (fresh 32 random bytes as rnd, FIPS 204
 * section 3.4) is the default; DETERMINISTIC uses rnd = 0^32. */
#define KMS_MLDSA_HEDGED        0u
#define KMS_MLDSA_DETERMINISTIC 1u

/* Pre-hash functions for HashML-DSA (FIPS 204 Algorithm 4). */
typedef enum {
    KMS_MLDSA_PH_SHA256 = 1,
    KMS_MLDSA_PH_SHA512 = 2,
} kms_mldsa_prehash;

/* ---- key generation ---------------------------------------------------- */

/* ML-DSA.KeyGen_internal (Algorithm 6) from the 32-byte seed xi. The seed
 * is secret: it alone determines the private key. */
kms_mldsa_err kms_mldsa_keygen_seed(kms_mldsa_param p,
                                    const uint8_t seed[KMS_MLDSA_SEED_LEN],
                                    uint8_t *pk, size_t pk_cap, uint8_t *sk,
                                    size_t sk_cap);
/* ML-DSA.KeyGen (Algorithm 1): the seed comes from the OS CSPRNG. */
kms_mldsa_err kms_mldsa_keygen(kms_mldsa_param p, uint8_t *pk, size_t pk_cap,
                               uint8_t *sk, size_t sk_cap);

/* Public key from a private key (pkEncode(rho, t1) recomputed). */
kms_mldsa_err kms_mldsa_sk_to_pk(kms_mldsa_param p, const uint8_t *sk,
                                 size_t sk_len, uint8_t *pk, size_t pk_cap);

/* ---- pure ML-DSA (Algorithms 2 and 3) ---------------------------------- */

/* Sign `msg` with context `ctx` (at most 255 bytes: KMS_MLDSA_ECTX).
 * Errors: EPARAM, EKEYLEN, EKEY (coefficients outside [-eta, eta]), ECTX,
 * EBUFSIZE, ENOMEM. */
kms_mldsa_err kms_mldsa_sign(kms_mldsa_param p, const uint8_t *sk,
                             size_t sk_len, const uint8_t *msg, size_t msg_len,
                             const uint8_t *ctx, size_t ctx_len, unsigned flags,
                             uint8_t *sig, size_t sig_cap);
/* OK if valid; EVERIFY if not; EPARAM, EKEYLEN, ESIGLEN, ECTX. */
kms_mldsa_err kms_mldsa_verify(kms_mldsa_param p, const uint8_t *pk,
                               size_t pk_len, const uint8_t *msg,
                               size_t msg_len, const uint8_t *ctx,
                               size_t ctx_len, const uint8_t *sig,
                               size_t sig_len);

/* ---- HashML-DSA (Algorithms 4 and 5) ------------------------------------ */

/* M' = 0x01 || |ctx| || ctx || OID(PH) || PH(msg); PH computed here. */
kms_mldsa_err kms_mldsa_hash_sign(kms_mldsa_param p, const uint8_t *sk,
                                  size_t sk_len, kms_mldsa_prehash ph,
                                  const uint8_t *msg, size_t msg_len,
                                  const uint8_t *ctx, size_t ctx_len,
                                  unsigned flags, uint8_t *sig, size_t sig_cap);
kms_mldsa_err kms_mldsa_hash_verify(kms_mldsa_param p, const uint8_t *pk,
                                    size_t pk_len, kms_mldsa_prehash ph,
                                    const uint8_t *msg, size_t msg_len,
                                    const uint8_t *ctx, size_t ctx_len,
                                    const uint8_t *sig, size_t sig_len);
/* The same with the digest PH(M) computed by the caller (32 bytes for
 * SHA-256, 64 for SHA-512; EINVAL otherwise). */
kms_mldsa_err kms_mldsa_hash_sign_digest(kms_mldsa_param p, const uint8_t *sk,
                                         size_t sk_len, kms_mldsa_prehash ph,
                                         const uint8_t *digest,
                                         size_t digest_len, const uint8_t *ctx,
                                         size_t ctx_len, unsigned flags,
                                         uint8_t *sig, size_t sig_cap);
kms_mldsa_err kms_mldsa_hash_verify_digest(kms_mldsa_param p, const uint8_t *pk,
                                           size_t pk_len, kms_mldsa_prehash ph,
                                           const uint8_t *digest,
                                           size_t digest_len,
                                           const uint8_t *ctx, size_t ctx_len,
                                           const uint8_t *sig, size_t sig_len);

/* ---- internal interface (Algorithms 7 and 8) and external mu ----------- */

/* ML-DSA.Sign_internal(sk, M', rnd): M' is signed as given (the ACVP
 * vectors use this interface). */
kms_mldsa_err kms_mldsa_sign_internal(kms_mldsa_param p, const uint8_t *sk,
                                      size_t sk_len, const uint8_t *mprime,
                                      size_t mprime_len,
                                      const uint8_t rnd[KMS_MLDSA_RND_LEN],
                                      uint8_t *sig, size_t sig_cap);
/* ML-DSA.Verify_internal(pk, M', sigma). */
kms_mldsa_err kms_mldsa_verify_internal(kms_mldsa_param p, const uint8_t *pk,
                                        size_t pk_len, const uint8_t *mprime,
                                        size_t mprime_len, const uint8_t *sig,
                                        size_t sig_len);

/* mu = H(tr || M', 64) with tr = H(pk, 64) (Algorithm 7, lines 6-7). */
kms_mldsa_err kms_mldsa_compute_mu(kms_mldsa_param p, const uint8_t *pk,
                                   size_t pk_len, const uint8_t *mprime,
                                   size_t mprime_len,
                                   uint8_t mu[KMS_MLDSA_MU_LEN]);
/* mu for pure ML-DSA: M' = 0x00 || |ctx| || ctx || msg (Algorithm 2). */
kms_mldsa_err kms_mldsa_compute_mu_ctx(kms_mldsa_param p, const uint8_t *pk,
                                       size_t pk_len, const uint8_t *msg,
                                       size_t msg_len, const uint8_t *ctx,
                                       size_t ctx_len,
                                       uint8_t mu[KMS_MLDSA_MU_LEN]);
/* Sign an externally computed mu (AWS KMS's EXTERNAL_MU): Sign_internal
 * from line 8 on. Produces the same signature as signing the message. */
kms_mldsa_err kms_mldsa_sign_mu(kms_mldsa_param p, const uint8_t *sk,
                                size_t sk_len,
                                const uint8_t mu[KMS_MLDSA_MU_LEN],
                                unsigned flags, uint8_t *sig, size_t sig_cap);
kms_mldsa_err kms_mldsa_verify_mu(kms_mldsa_param p, const uint8_t *pk,
                                  size_t pk_len,
                                  const uint8_t mu[KMS_MLDSA_MU_LEN],
                                  const uint8_t *sig, size_t sig_len);

#endif
