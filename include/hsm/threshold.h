/* SPDX-License-Identifier: Apache-2.0 */
/* Threshold signing interfaces and the attesting signer.
 *
 *   hsm_threshold_scheme   a scheme (FROST, CMP, ...): parses key shares
 *                          and makes per-share signers (a const vtable)
 *   hsm_threshold_signer   one party's signer: party index, public share,
 *                          nonce generation, signature share
 *   hsm_threshold_hsm      an HSM with native threshold support
 *   hsm_attesting_signer   a threshold signer whose every signature share
 *                          carries an HSM signature over the share bytes
 *   hsm_threshold_manager  builds the providers from a config, keeps shares
 *                          in the vault and hands out attesting signers
 *
 * Attested share wire format (docs/hsm.md):
 *   u32 big-endian share length || share || attestation
 * where attestation = the HSM signer's signature (hsm_signer_sign, so for
 * ECDSA P-256: DER ECDSA over SHA-256(share)) over the share bytes.
 *
 * THREAD SAFETY
 *   Scheme and HSM vtables must be callable from any thread. A threshold
 *   signer (and the attesting signer wrapping it) holds per-session nonce
 *   state and belongs to one thread at a time. The threshold manager may
 *   be shared by threads.
 *
 * OWNERSHIP
 *   Buffers returned by vtable functions through `uint8_t **, size_t *` are
 *   allocated with malloc() and released by the caller with hsm_free().
 */
#ifndef HSM_THRESHOLD_H
#define HSM_THRESHOLD_H

#include <hsm/hsm.h>
#include <hsm/vault.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- threshold signer ------------------------------------------------- */

typedef struct hsm_threshold_signer_ops {
    uint32_t (*party_index)(const void *self);
    /* This party's public verification share. */
    hsm_err (*public_share)(const void *self, uint8_t **out, size_t *out_len);
    /* Round 1: fresh nonces for the session `session` (an opaque id the
     * coordinator chooses); returns this party's public commitment. */
    hsm_err (*nonce_gen)(void *self, const uint8_t *session, size_t session_len,
                         uint8_t **commitment, size_t *commitment_len);
    /* Round 2: the signature share over `msg`, given the session and the
     * encoded commitments of all signing parties. The session's nonces are
     * consumed (a second call with the same session must fail). */
    hsm_err (*sign_share)(void *self, const uint8_t *session,
                          size_t session_len, const uint8_t *msg,
                          size_t msg_len, const uint8_t *commitments,
                          size_t commitments_len, uint8_t **share,
                          size_t *share_len);
    void (*destroy)(void *self);
} hsm_threshold_signer_ops;

typedef struct hsm_threshold_signer hsm_threshold_signer;

/* Wrap an implementation (ops is borrowed and must be static; self is
 * owned and destroyed by hsm_threshold_signer_free). */
hsm_err hsm_threshold_signer_new(const hsm_threshold_signer_ops *ops,
                                 void *self, hsm_threshold_signer **out);
void hsm_threshold_signer_free(hsm_threshold_signer *ts);
uint32_t hsm_threshold_signer_party_index(const hsm_threshold_signer *ts);
hsm_err hsm_threshold_signer_public_share(const hsm_threshold_signer *ts,
                                          uint8_t **out, size_t *out_len);
hsm_err hsm_threshold_signer_nonce_gen(hsm_threshold_signer *ts,
                                       const uint8_t *session,
                                       size_t session_len, uint8_t **commitment,
                                       size_t *commitment_len);
hsm_err hsm_threshold_signer_sign_share(
    hsm_threshold_signer *ts, const uint8_t *session, size_t session_len,
    const uint8_t *msg, size_t msg_len, const uint8_t *commitments,
    size_t commitments_len, uint8_t **share, size_t *share_len);

/* ---- threshold scheme -------------------------------------------------- */

typedef struct hsm_threshold_scheme {
    const char *name;   /* "frost", ... */
    uint32_t scheme_id; /* hsm_scheme */
    /* Validate a serialized key share and extract its metadata (fills
     * every field of *meta with malloc'd buffers, or fails with
     * HSM_EMALFORMED). */
    hsm_err (*parse_key_share)(const uint8_t *share, size_t share_len,
                               hsm_share_meta *meta);
    /* A signer for a (validated) key share; `share` is borrowed, the
     * implementation copies what it keeps into memory it wipes. */
    hsm_err (*new_signer)(const uint8_t *share, size_t share_len,
                          const hsm_share_meta *meta,
                          hsm_threshold_signer **out);
} hsm_threshold_scheme;

/* ---- HSMs with native threshold support --------------------------------- */

typedef struct hsm_threshold_hsm_ops {
    const char *name;
    hsm_err (*nonce_gen)(void *self, const char *key_id, const uint8_t *session,
                         size_t session_len, uint8_t **commitment,
                         size_t *commitment_len);
    hsm_err (*sign_share)(void *self, const char *key_id,
                          const uint8_t *session, size_t session_len,
                          const uint8_t *msg, size_t msg_len,
                          const uint8_t *commitments, size_t commitments_len,
                          uint8_t **share, size_t *share_len);
    hsm_err (*import_share)(void *self, const char *key_id,
                            const uint8_t *share, size_t share_len,
                            const hsm_share_meta *meta);
    hsm_err (*export_public_share)(void *self, const char *key_id,
                                   uint8_t **out, size_t *out_len);
    void (*destroy)(void *self);
} hsm_threshold_hsm_ops;

typedef struct hsm_threshold_hsm {
    const hsm_threshold_hsm_ops *ops;
    void *self;
} hsm_threshold_hsm;

/* ---- attested shares --------------------------------------------------- */

/* Encode `share` (1..2^32-1 bytes) and `attestation` (>= 1 byte). */
hsm_err hsm_attested_share_encode(const uint8_t *share, size_t share_len,
                                  const uint8_t *att, size_t att_len,
                                  uint8_t **wire, size_t *wire_len);
/* Split wire data; the out pointers point into `wire`. HSM_EMALFORMED when
 * shorter than 5 bytes, when the share is truncated or empty, or when the
 * attestation is empty (a share without attestation). */
hsm_err hsm_attested_share_parse(const uint8_t *wire, size_t wire_len,
                                 const uint8_t **share, size_t *share_len,
                                 const uint8_t **att, size_t *att_len);
/* Parse and check the attestation with `hsm` and key `key_id`:
 * HSM_OK and *valid; HSM_EMALFORMED for bad wire data. */
hsm_err hsm_attested_share_verify(hsm_signer *hsm, const char *key_id,
                                  const uint8_t *wire, size_t wire_len,
                                  bool *valid);

/* ---- attesting signer -------------------------------------------------- */

typedef struct hsm_attesting_signer hsm_attesting_signer;

/* Takes ownership of `ts` (freed with the attesting signer, also on
 * failure); borrows `hsm`, which signs attestations with `hsm_key_id`
 * (NULL: its configured key). */
hsm_err hsm_attesting_signer_new(hsm_threshold_signer *ts, hsm_signer *hsm,
                                 const char *hsm_key_id,
                                 hsm_attesting_signer **out);
void hsm_attesting_signer_free(hsm_attesting_signer *a);
uint32_t hsm_attesting_signer_party_index(const hsm_attesting_signer *a);
hsm_err hsm_attesting_signer_public_share(const hsm_attesting_signer *a,
                                          uint8_t **out, size_t *out_len);
hsm_err hsm_attesting_signer_nonce_gen(hsm_attesting_signer *a,
                                       const uint8_t *session,
                                       size_t session_len, uint8_t **commitment,
                                       size_t *commitment_len);
/* The threshold signer's share, attested: *wire is the wire format. */
hsm_err hsm_attesting_signer_sign_share(
    hsm_attesting_signer *a, const uint8_t *session, size_t session_len,
    const uint8_t *msg, size_t msg_len, const uint8_t *commitments,
    size_t commitments_len, uint8_t **wire, size_t *wire_len);
/* Verify a wire share with this signer's HSM key. */
hsm_err hsm_attesting_signer_verify(hsm_attesting_signer *a,
                                    const uint8_t *wire, size_t wire_len,
                                    bool *valid);

/* ---- threshold manager ------------------------------------------------- */

/* Config: everything hsm_manager_new reads (password_provider,
 * password_key_id, signer, signer_key_id ...; the signer is the attesting
 * HSM, signer_key_id its attestation key), plus
 *   vault_password_ttl   seconds the vault keeps the password (default 0:
 *                        until freed)
 * `store` (required) holds the vault and the local signer's keys. */
typedef struct hsm_threshold_manager hsm_threshold_manager;

hsm_err hsm_threshold_manager_new(const hsm_config *config, hsm_store *store,
                                  hsm_threshold_manager **out, char *detail,
                                  size_t detail_cap);
void hsm_threshold_manager_free(hsm_threshold_manager *m);
/* Register a scheme (borrowed, must stay valid). HSM_EEXIST for a second
 * scheme with the same id or name. */
hsm_err hsm_threshold_manager_register(hsm_threshold_manager *m,
                                       const hsm_threshold_scheme *scheme);
/* Validate a key share with scheme `scheme_name` and keep it in the vault
 * under `key_id` (HSM_EEXIST unless overwrite). */
hsm_err hsm_threshold_manager_import(hsm_threshold_manager *m,
                                     const char *key_id,
                                     const char *scheme_name,
                                     const uint8_t *share, size_t share_len,
                                     bool overwrite);
/* Load the share of `key_id` and return an attesting signer for it.
 * HSM_ENOTFOUND, HSM_EUNKNOWN (scheme not registered), vault errors. */
hsm_err hsm_threshold_manager_signer(hsm_threshold_manager *m,
                                     const char *key_id,
                                     hsm_attesting_signer **out);
hsm_err hsm_threshold_manager_verify_share(hsm_threshold_manager *m,
                                           const uint8_t *wire, size_t wire_len,
                                           bool *valid);
hsm_err hsm_threshold_manager_delete(hsm_threshold_manager *m,
                                     const char *key_id);
/* Borrowed (valid until the manager is freed). */
hsm_vault *hsm_threshold_manager_vault(hsm_threshold_manager *m);
hsm_manager *hsm_threshold_manager_hsm(hsm_threshold_manager *m);
const char *hsm_threshold_manager_last_error(const hsm_threshold_manager *m);

#ifdef __cplusplus
}
#endif
#endif
