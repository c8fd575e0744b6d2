/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB backup and restore (placeholder until the streaming format lands). */
#include "zap_int.h"

zap_err
zap_backup(zap_db *db, const char *file, zap_progress_fn progress, void *ctx)
{
    (void)db, (void)file, (void)progress, (void)ctx;
    return ZAP_EINTERNAL;
}

zap_err
zap_restore(const char *file, const char *dir, const zap_opts *opts,
            const char *password, size_t password_len,
            zap_progress_fn progress, void *ctx)
{
    (void)file, (void)dir, (void)opts, (void)password, (void)password_len;
    (void)progress, (void)ctx;
    return ZAP_EINTERNAL;
}

zap_err
zap_restore_key(const char *file, const char *dir, const zap_opts *opts,
                const uint8_t key[ZAP_KEY_LEN], zap_progress_fn progress,
                void *ctx)
{
    (void)file, (void)dir, (void)opts, (void)key, (void)progress, (void)ctx;
    return ZAP_EINTERNAL;
}
