/* SPDX-License-Identifier: Apache-2.0 */
/* Vault internals shared by vault.c, backup.c and tmanager.c. */
#ifndef HSM_VAULT_INT_H
#define HSM_VAULT_INT_H

#include <hsm/vault.h>

#include "hsm_int.h"

/* A copy of the vault password (fetched or cached); hsm_secret_free it. */
hsm_err hsm_vault_password(hsm_vault *v, hsm_secret **out);
hsm_diag *hsm_vault_diag(hsm_vault *v);
hsm_store *hsm_vault_store_handle(hsm_vault *v);
/* Encrypt one share into a vault record (malloc'd; not secret). */
hsm_err hsm_vault_seal(hsm_vault *v, const char *key_id, const uint8_t *share,
                       size_t share_len, const hsm_share_meta *meta,
                       uint8_t **rec, size_t *rec_len);
/* HSM_OK or HSM_EINVAL. */
hsm_err hsm_share_meta_check(const hsm_share_meta *m);
/* AES-256-GCM; `out` has in_len bytes. enc writes `tag`, decrypt checks it
 * (HSM_ECORRUPT on mismatch; then `out` must be discarded). */
hsm_err hsm_aes_gcm(bool enc, const uint8_t key[32], const uint8_t nonce[12],
                    const uint8_t *aad, size_t aad_len, const uint8_t *in,
                    size_t in_len, uint8_t *out, uint8_t tag[16]);

/* scrypt (RFC 7914) through OpenSSL's EVP_PBE_scrypt, refusing to use
 * more than `maxmem` bytes. HSM_ECRYPTO on failure. */
hsm_err hsm_scrypt(const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                   size_t salt_len, uint64_t n, uint64_t r, uint64_t p,
                   uint64_t maxmem, uint8_t *out, size_t out_len);

/* One share from a backup's decrypted list. */
typedef struct hsm_backup_item {
    char key_id[HSM_MAX_KEY_ID + 1];
    hsm_secret *share;
    hsm_share_meta meta; /* malloc'd buffers */
} hsm_backup_item;

/* Parse the decrypted JSON list of shares (exposed for fuzzing). Items are
 * validated (key ids, metadata, no duplicate ids). Free with
 * hsm_backup_items_free. HSM_EMALFORMED on any defect. */
hsm_err hsm_backup_list_parse(const uint8_t *json, size_t json_len,
                              hsm_backup_item **items, size_t *count);
void hsm_backup_items_free(hsm_backup_item *items, size_t count);

#endif
