/* SPDX-License-Identifier: Apache-2.0 */
/* Key-share vault: threshold key shares encrypted with AES-256-GCM under a
 * key derived from a password, persisted in an hsm_store (ZapDB).
 *
 *   key   = HKDF-SHA256(ikm = password, salt = SHA-256("hsm-vault-" ||
 *           key_id), info = "hsm-key-share-vault-v1"), 32 bytes
 *   value = version || metadata || nonce(12) || ciphertext || tag(16), the
 *           metadata authenticated as associated data (docs/hsm.md).
 *
 * The password comes from an hsm_password_provider, fetched once and kept
 * in locked memory; with a time-to-live it is wiped after that many seconds
 * and fetched again when next needed.
 *
 * THREAD SAFETY
 *   An hsm_vault may be used from any number of threads at once.
 *
 * OWNERSHIP
 *   The vault borrows its store and password provider: both must outlive
 *   it. Shares come back as hsm_secret (hsm_secret_free); metadata buffers
 *   returned by load/metadata are released with hsm_share_meta_clear().
 */
#ifndef HSM_VAULT_H
#define HSM_VAULT_H

#include <hsm/hsm.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HSM_VAULT_MAX_SHARE  (1024u * 1024u) /* bytes of share data */
#define HSM_VAULT_MAX_PUBLIC (64u * 1024u)   /* public share, group key */

/* Threshold schemes. Stored as a u32: values not listed here are kept and
 * returned unchanged (room for more schemes). */
typedef enum {
    HSM_SCHEME_UNKNOWN = 0,
    HSM_SCHEME_FROST = 1,
    HSM_SCHEME_CMP = 2,
    HSM_SCHEME_BLS = 3,
    HSM_SCHEME_RINGTAIL = 4,
} hsm_scheme;

/* "frost", "cmp", "bls", "ringtail"; "unknown" otherwise. */
const char *hsm_scheme_name(uint32_t scheme);
/* Case-insensitive name, or a decimal number. HSM_EINVAL otherwise. */
hsm_err hsm_scheme_from_name(const char *name, uint32_t *scheme);

typedef struct hsm_share_meta {
    uint32_t scheme;        /* hsm_scheme value */
    uint32_t party_index;   /* this party's index */
    uint32_t threshold;     /* signers needed: 1 <= threshold <= total */
    uint32_t total_parties; /* >= 1 */
    uint8_t *public_share;  /* this party's public share (may be empty) */
    size_t public_share_len;
    uint8_t *group_key; /* the group public key (may be empty) */
    size_t group_key_len;
} hsm_share_meta;

/* Free the buffers of a metadata filled by the library and zero it. */
void hsm_share_meta_clear(hsm_share_meta *meta);

typedef struct hsm_vault hsm_vault;

/* Create a vault over `store` (required) whose password comes from `pw`
 * with `password_key_id` (may be NULL). password_ttl_seconds 0 keeps the
 * password until the vault is freed. The password is fetched lazily, on
 * the first operation that needs it. */
hsm_err hsm_vault_new(hsm_store *store, hsm_password_provider *pw,
                      const char *password_key_id,
                      unsigned password_ttl_seconds, hsm_vault **out);
/* Wipe the cached password and free. NULL is a no-op. */
void hsm_vault_free(hsm_vault *v);
/* Wipe the cached password now (it is fetched again when needed). */
void hsm_vault_forget_password(hsm_vault *v);

/* Store a share (1..HSM_VAULT_MAX_SHARE bytes) with its metadata.
 * HSM_EEXIST when key_id exists and !overwrite; HSM_EINVAL for bad
 * metadata (threshold 0 or > total_parties, total 0). */
hsm_err hsm_vault_store(hsm_vault *v, const char *key_id, const uint8_t *share,
                        size_t share_len, const hsm_share_meta *meta,
                        bool overwrite);
/* Load and decrypt. `meta` may be NULL. HSM_ENOTFOUND, HSM_ECORRUPT
 * (tampered ciphertext or metadata, or a wrong password: AES-GCM cannot
 * tell them apart). */
hsm_err hsm_vault_load(hsm_vault *v, const char *key_id, hsm_secret **share,
                       hsm_share_meta *meta);
/* Metadata only (authenticated: the record is decrypted and checked). */
hsm_err hsm_vault_metadata(hsm_vault *v, const char *key_id,
                           hsm_share_meta *meta);
hsm_err hsm_vault_delete(hsm_vault *v, const char *key_id);
/* Sorted key ids; release with hsm_list_free(). */
hsm_err hsm_vault_list(hsm_vault *v, char ***ids, size_t *count);

/* Back up every share to `path` (written atomically, mode 0600):
 *   {"version":1, "salt":b64, "nonce":b64, "key_id":hex16, "data":b64,
 *    "count":n}
 * key = scrypt(password, salt(32), N=32768, r=8, p=1, 32 bytes),
 * key_id = first 16 hex digits of SHA-256(key), data = AES-256-GCM(key,
 * nonce, JSON list of shares) with the 16-byte tag appended.
 * `password` NULL uses the vault's password. *count (may be NULL) gets the
 * number of shares written. */
hsm_err hsm_vault_backup(hsm_vault *v, const char *path,
                         const uint8_t *password, size_t password_len,
                         size_t *count);
/* Restore the shares of a backup. Nothing is written unless the whole file
 * decrypts and parses, and (without `overwrite`) no id already exists
 * (HSM_EEXIST). HSM_EAUTH: wrong password (detected by key_id, before
 * decryption); HSM_ECORRUPT: the file is damaged or tampered with;
 * HSM_EMALFORMED: not a backup file. */
hsm_err hsm_vault_restore(hsm_vault *v, const char *path,
                          const uint8_t *password, size_t password_len,
                          bool overwrite, size_t *count);
/* Diagnostic of the most recent failure ("" if none; never secret). */
const char *hsm_vault_last_error(const hsm_vault *v);

#ifdef __cplusplus
}
#endif
#endif
