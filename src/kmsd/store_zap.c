/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB backend: each kmsd table is a ZapDB bucket, so keys and values are
 * encrypted at rest and bound to their bucket and key.
 *
 * Durability: the store runs in ZAP_SYNC_META mode (each commit flushes
 * its data; metadata is flushed by kms_store sync). kmsd's audit group
 * commit calls sync before any response of a write is released, so every
 * acknowledged write is durable, and LMDB keeps the store consistent after
 * a crash at any point. */
#include "store.h"

#include "kc.h"
#include <zapdb/zapdb.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    kms_store pub;
    zap_db *db;
} zstore;

static kms_st_err
zerr(zap_err e)
{
    switch (e) {
    case ZAP_OK:
        return KMS_ST_OK;
    case ZAP_ENOTFOUND:
        return KMS_ST_NOTFOUND;
    case ZAP_EINVAL:
    case ZAP_ETOOBIG:
        return KMS_ST_INVAL;
    case ZAP_ENOMEM:
        return KMS_ST_NOMEM;
    default:
        return KMS_ST_IO;
    }
}

static kms_st_err
z_begin(void *self, bool rdonly, void **out)
{
    zstore *z = self;
    zap_txn *t = NULL;
    kms_st_err rc = zerr(zap_txn_begin(z->db, rdonly ? ZAP_TXN_RDONLY : 0, &t));

    *out = t;
    return rc;
}

static kms_st_err
z_commit(void *txn)
{
    return zerr(zap_txn_commit(txn));
}

static void
z_abort(void *txn)
{
    zap_txn_abort(txn);
}

static kms_st_err
z_get(void *txn, const char *table, const uint8_t *key, size_t key_len,
      uint8_t **val, size_t *val_len)
{
    return zerr(zap_txn_get(txn, table, key, key_len, val, val_len));
}

static kms_st_err
z_put(void *txn, const char *table, const uint8_t *key, size_t key_len,
      const uint8_t *val, size_t val_len)
{
    return zerr(zap_txn_put(txn, table, key, key_len, val, val_len));
}

static kms_st_err
z_del(void *txn, const char *table, const uint8_t *key, size_t key_len)
{
    return zerr(zap_txn_del(txn, table, key, key_len));
}

static kms_st_err
z_scan(void *txn, const char *table, const uint8_t *prefix, size_t prefix_len,
       bool want_values, kms_scan_fn fn, void *ctx)
{
    zap_iter *it = NULL;
    zap_err e = zap_iter_open(txn, table, prefix, prefix_len, NULL, 0, &it);

    if (e == ZAP_ENOTFOUND)
        return KMS_ST_OK;
    if (e != ZAP_OK)
        return zerr(e);
    for (;;) {
        const uint8_t *k, *v = NULL;
        size_t kl, vl = 0;
        e = zap_iter_next(it, &k, &kl, want_values ? &v : NULL,
                          want_values ? &vl : NULL);
        if (e != ZAP_OK)
            break;
        if (fn(ctx, k, kl, v, vl))
            break;
    }
    zap_iter_close(it);
    return e == ZAP_OK || e == ZAP_ENOTFOUND ? KMS_ST_OK : zerr(e);
}

static void
z_free_buf(void *p, size_t len)
{
    zap_free(p, len);
}

static kms_st_err
z_sync(void *self)
{
    zstore *z = self;
    return zerr(zap_sync(z->db));
}

static kms_st_err
z_size(void *self, uint64_t *bytes)
{
    zstore *z = self;
    zap_stats st;
    kms_st_err rc = zerr(zap_get_stats(z->db, &st));

    if (rc == KMS_ST_OK)
        *bytes = st.file_bytes;
    return rc;
}

static void
z_close(void *self)
{
    zstore *z = self;

    zap_close(z->db);
    free(z);
}

static const kms_store_ops zap_ops = {
    "zapdb", z_begin, z_commit,   z_abort, z_get,  z_put,
    z_del,   z_scan,  z_free_buf, z_sync,  z_size, z_close,
};

kms_st_err
kms_store_zap_open(const char *dir, const uint8_t *pw, size_t pw_len,
                   bool create, bool kdf_min, kms_store **out, char *detail,
                   size_t detail_cap)
{
    zap_opts o;
    zstore *z = calloc(1, sizeof *z);
    zap_err e;

    if (!z)
        return KMS_ST_NOMEM;
    zap_opts_default(&o);
    o.flags = create ? ZAP_CREATE : 0;
    o.sync = ZAP_SYNC_META;
    if (kdf_min) {
        o.kdf_opslimit = 1;
        o.kdf_memlimit = 8192;
    }
    e = zap_open(dir, &o, (const char *)pw, pw_len, &z->db);
    if (e != ZAP_OK) {
        snprintf(detail, detail_cap, "cannot open store: %s", zap_strerror(e));
        free(z);
        return e == ZAP_EAUTH ? KMS_ST_INVAL : KMS_ST_IO;
    }
    z->pub.ops = &zap_ops;
    z->pub.self = z;
    *out = &z->pub;
    return KMS_ST_OK;
}
