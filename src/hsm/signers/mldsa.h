/* SPDX-License-Identifier: Apache-2.0 */
/* Signer "mldsa" (aliases "pq", "post-quantum"): ML-DSA-44/65/87 (FIPS 204)
 * with kms_crypto. Internal header picked up by registry.c.
 *
 * Configuration: param_set = 44 | 65 | 87 (also "ML-DSA-65", "ML_DSA_65";
 * default 65). Keys are created on the first sign() with a key id, from a
 * fresh 32-byte seed, and persist in the store namespace "signer.mldsa"
 * (encrypted at rest by ZapDB). verify() and public_key() never create a
 * key: an unknown key id is HSM_ENOTFOUND.
 *
 * Stored record (value under the key id):
 *   byte 0  format version, 1
 *   byte 1  parameter set, 44, 65 or 87
 *   byte 2  1: a 32-byte seed xi follows (ML-DSA.KeyGen_internal input);
 *           2: an expanded FIPS 204 private key follows (2560/4032/4896)
 * A key of another parameter set than the signer's is refused
 * (HSM_ECONFIG), never reinterpreted. */
#ifndef HSM_SIGNERS_MLDSA_H
#define HSM_SIGNERS_MLDSA_H

#include "hsm_int.h"

#ifdef HSM_HAVE_KMS_CRYPTO
#define HSM_HAVE_MLDSA_SIGNER 1
extern const hsm_signer_ops hsm_mldsa_signer_ops;

/* Import a private key for the mldsa signer into `st` under `key_id`:
 * `key` is either a 32-byte seed or an expanded private key of `alg`
 * (HSM_ALG_ML_DSA_44/65/87). Never replaces an existing key (HSM_EEXIST).
 * Returns HSM_OK, HSM_EINVAL (bad id, algorithm or length), HSM_ECORRUPT
 * (malformed private key), HSM_EEXIST, store errors. */
hsm_err hsm_mldsa_import(hsm_store *st, const char *key_id, hsm_alg alg,
                         const uint8_t *key, size_t key_len);
#endif

#endif
