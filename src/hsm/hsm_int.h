/* SPDX-License-Identifier: Apache-2.0 */
/* libhsm internals shared by the core and the providers (never installed).
 *
 * A provider is a const vtable (hsm_signer_ops and/or hsm_password_ops)
 * defined in its own .c file under src/hsm/{passwords,signers,cloud,pkcs11}/
 * and declared in its own internal header, which the registry (registry.c)
 * includes with __has_include. See registry.c and docs/hsm.md ("Adding a
 * provider") for the convention.
 *
 * THREAD SAFETY: every ops function may be called from several threads at
 * once on the same `self`; providers lock what they share. create/destroy
 * are never concurrent with other calls on the same object.
 */
#ifndef HSM_INT_H
#define HSM_INT_H

#include <pthread.h>
#include <stdarg.h>

#include <hsm/hsm.h>

/* ---- diagnostics ------------------------------------------------------- */

/* A short, never secret, diagnostic kept per object (mutex-protected). */
typedef struct hsm_diag {
    pthread_mutex_t mu;
    char msg[HSM_DETAIL_MAX];
} hsm_diag;

void hsm_diag_init(hsm_diag *d);
void hsm_diag_destroy(hsm_diag *d);
/* printf-style; NULL d is a no-op. */
void hsm_diag_set(hsm_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Copy the current text into buf (always NUL-terminated). */
void hsm_diag_get(hsm_diag *d, char *buf, size_t cap);

/* The current text, copied under the lock into a per-thread buffer that
 * stays valid until the next call in the same thread ("" for NULL). */
const char *hsm_diag_snapshot(const hsm_diag *d);

/* ---- provider vtables --------------------------------------------------- */

typedef struct hsm_signer_ops {
    const char *name; /* canonical lower-case name: "aws", "pkcs11" ... */
    /* Create an instance. `cfg` is the signer's own copy (valid until
     * destroy, owned by the core); `store` may be NULL. Explain failures
     * through `diag` (the caller's detail). */
    hsm_err (*create)(const hsm_config *cfg, hsm_store *store, void **self,
                      hsm_diag *diag);
    hsm_alg (*algorithm)(void *self);
    /* key_id is never NULL here (the core substitutes config key_id and
     * fails with HSM_ECONFIG if there is none). Messages are bounded by
     * HSM_MAX_MESSAGE before the call. Any of the four may be NULL:
     *   sign NULL        -> core hashes with SHA-256 and calls sign_digest
     *                       (ECDSA/RSA algorithms only)
     *   sign_digest NULL -> HSM_EUNSUPPORTED
     *   verify NULL      -> verify_digest(SHA-256(msg)) if set, else the
     *                       core verifies against public_key() locally
     *   verify_digest NULL -> the core verifies against public_key()
     * Returned buffers are malloc'd (the core hands them to the caller,
     * who frees them with hsm_free). ECDSA signatures must be DER: use
     * hsm_ecdsa_raw_to_der for backends returning r||s. */
    hsm_err (*sign)(void *self, const char *key_id, const uint8_t *msg,
                    size_t msg_len, uint8_t **sig, size_t *sig_len,
                    hsm_diag *diag);
    hsm_err (*sign_digest)(void *self, const char *key_id,
                           const uint8_t *digest, size_t digest_len,
                           uint8_t **sig, size_t *sig_len, hsm_diag *diag);
    hsm_err (*verify)(void *self, const char *key_id, const uint8_t *msg,
                      size_t msg_len, const uint8_t *sig, size_t sig_len,
                      bool *valid, hsm_diag *diag);
    hsm_err (*verify_digest)(void *self, const char *key_id,
                             const uint8_t *digest, size_t digest_len,
                             const uint8_t *sig, size_t sig_len, bool *valid,
                             hsm_diag *diag);
    /* DER SubjectPublicKeyInfo (malloc'd). Required. */
    hsm_err (*public_key)(void *self, const char *key_id, uint8_t **der,
                          size_t *der_len, hsm_diag *diag);
    void (*destroy)(void *self);
} hsm_signer_ops;

typedef struct hsm_password_ops {
    const char *name;
    hsm_err (*create)(const hsm_config *cfg, void **self, hsm_diag *diag);
    /* key_id may be NULL (use the configuration). The result goes into a
     * new hsm_secret (hsm_secret_new/hsm_secret_from). Never put the
     * password into the diagnostic. */
    hsm_err (*get)(void *self, const char *key_id, hsm_secret **out,
                   hsm_diag *diag);
    void (*destroy)(void *self);
} hsm_password_ops;

/* Built-in providers of the core (passwords/env.c, passwords/file.c,
 * signers/local.c). */
extern const hsm_password_ops hsm_env_password_ops;
extern const hsm_password_ops hsm_file_password_ops;
extern const hsm_signer_ops hsm_local_signer_ops;

/* A signer from a vtable that is not in the registry (tests, and callers
 * inside libhsm that wrap another signer). */
hsm_err hsm_signer_new_from_ops(const hsm_signer_ops *ops,
                                const hsm_config *config, hsm_store *store,
                                hsm_signer **out);

/* ---- registry (registry.c) ------------------------------------------------
 */

/* Normalise a provider name (trim blanks, fold case, aliases) into `out`.
 * Returns HSM_OK or HSM_EINVAL (too long). */
hsm_err hsm_name_normalise(const char *name, char *out, size_t cap);
/* Look up a provider. HSM_EUNKNOWN (detail lists valid names) or
 * HSM_ENOTBUILT (detail says so), with *ops NULL. */
hsm_err hsm_registry_signer(const char *name, const hsm_signer_ops **ops,
                            hsm_diag *diag);
hsm_err hsm_registry_password(const char *name, const hsm_password_ops **ops,
                              hsm_diag *diag);
/* "local, mldsa, aws, ..." (static strings). */
const char *hsm_registry_signer_names(void);
const char *hsm_registry_password_names(void);

/* ---- helpers for providers ------------------------------------------------
 */

/* SHA-256 of a buffer. Returns HSM_OK or HSM_ECRYPTO. */
hsm_err hsm_sha256(const uint8_t *in, size_t in_len, uint8_t out[32]);
/* Key id syntax check (see hsm.h "KEY IDS"). */
bool hsm_key_id_valid(const char *key_id);
/* Map the OpenSSL error queue (cleared) into `diag` ("what: reason") and
 * return HSM_ECRYPTO. */
hsm_err hsm_openssl_fail(hsm_diag *diag, const char *what);
/* DER SubjectPublicKeyInfo <-> raw key for ML-DSA (RFC 9881 OIDs):
 * alg must be one of HSM_ALG_ML_DSA_*. *der malloc'd. to_raw returns
 * pointers into `der`. HSM_EMALFORMED for anything else. */
hsm_err hsm_spki_mldsa_encode(hsm_alg alg, const uint8_t *pk, size_t pk_len,
                              uint8_t **der, size_t *der_len);
hsm_err hsm_spki_mldsa_decode(const uint8_t *der, size_t der_len, hsm_alg *alg,
                              const uint8_t **pk, size_t *pk_len);
/* hsm_verify_with_public_key for a precomputed SHA-256 digest (ECDSA and
 * RSA algorithms only). */
hsm_err hsm_verify_digest_with_public_key(hsm_alg alg, const uint8_t *spki,
                                          size_t spki_len,
                                          const uint8_t *digest,
                                          size_t digest_len, const uint8_t *sig,
                                          size_t sig_len, bool *valid);
/* Put `n` records into namespace `ns` all-or-nothing (one ZapDB write
 * transaction; under the lock for a memory store). With only_new, fails
 * with HSM_EEXIST (writing nothing) if any key exists; *conflict (may be
 * NULL) then gets its index. */
hsm_err hsm_store_put_batch(hsm_store *st, const char *ns,
                            const char *const *keys, const uint8_t *const *vals,
                            const size_t *val_lens, size_t n, bool only_new,
                            size_t *conflict);
/* Map a ZapDB error (zap_err as int) to hsm_err. */
hsm_err hsm_err_from_zap(int zerr);

/* Backup envelope parsing (vault.c), exposed for the fuzz target:
 * parse the outer JSON into its fields (all malloc'd; free with
 * hsm_backup_env_clear). */
typedef struct hsm_backup_env {
    uint8_t *salt;
    size_t salt_len;
    uint8_t *nonce;
    size_t nonce_len;
    char key_id[17];
    uint8_t *data;
    size_t data_len;
    uint64_t count;
} hsm_backup_env;
hsm_err hsm_backup_env_parse(const uint8_t *json, size_t json_len,
                             hsm_backup_env *env);
void hsm_backup_env_clear(hsm_backup_env *env);
#endif
