/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the key-share backup parsers: the outer JSON envelope
 * (hsm_backup_env_parse) and the decrypted list of shares
 * (hsm_backup_list_parse). The first byte picks the parser. Accepted
 * envelopes must hold exactly the sizes the format fixes. */
/* fuzz-link: hsm_static */
#include <stdlib.h>
#include <string.h>

/* libhsm internals (not installed): the parsers are not public API. */
#include "../src/hsm/hsm_int.h"
#include "../src/hsm/vault_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        hsm_backup_item *items = NULL;
        size_t n = 0;
        if (hsm_backup_list_parse(data + 1, size - 1, &items, &n) == HSM_OK) {
            for (size_t i = 0; i < n; i++) {
                if (!items[i].share || items[i].share->len == 0 ||
                    !hsm_key_id_valid(items[i].key_id) ||
                    items[i].meta.threshold == 0 ||
                    items[i].meta.threshold > items[i].meta.total_parties)
                    abort();
            }
            hsm_backup_items_free(items, n);
        }
    } else {
        hsm_backup_env env;
        if (hsm_backup_env_parse(data + 1, size - 1, &env) == HSM_OK) {
            if (env.salt_len != 32 || env.nonce_len != 12 ||
                env.data_len < 18 || strlen(env.key_id) != 16)
                abort();
            hsm_backup_env_clear(&env);
        }
    }
    return 0;
}
