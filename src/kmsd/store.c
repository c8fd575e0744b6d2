/* SPDX-License-Identifier: Apache-2.0 */
/* Thin dispatch from the kms_txn_* calls to a backend's vtable. */
#include "store.h"

#include <string.h>

void
kms_store_close(kms_store *st)
{
    if (st)
        st->ops->close(st->self); /* frees st too */
}

kms_st_err
kms_txn_begin(kms_store *st, bool rdonly, kms_txn *txn)
{
    txn->st = st;
    txn->t = NULL;
    return st->ops->begin(st->self, rdonly, &txn->t);
}

kms_st_err
kms_txn_commit(kms_txn *txn)
{
    kms_st_err rc;

    if (!txn->t)
        return KMS_ST_INVAL;
    rc = txn->st->ops->commit(txn->t);
    txn->t = NULL;
    return rc;
}

void
kms_txn_abort(kms_txn *txn)
{
    if (txn && txn->t) {
        txn->st->ops->abort(txn->t);
        txn->t = NULL;
    }
}

static bool
table_ok(const char *table)
{
    size_t n = table ? strlen(table) : 0;
    return n > 0 && n <= KMS_TABLE_MAX;
}

kms_st_err
kms_txn_get(kms_txn *txn, const char *table, const void *key, size_t key_len,
            uint8_t **val, size_t *val_len)
{
    if (!txn->t || !table_ok(table) || !key || key_len == 0)
        return KMS_ST_INVAL;
    return txn->st->ops->get(txn->t, table, key, key_len, val, val_len);
}

kms_st_err
kms_txn_put(kms_txn *txn, const char *table, const void *key, size_t key_len,
            const void *val, size_t val_len)
{
    if (!txn->t || !table_ok(table) || !key || key_len == 0 ||
        (!val && val_len))
        return KMS_ST_INVAL;
    return txn->st->ops->put(txn->t, table, key, key_len,
                             val ? val : (const void *)"", val_len);
}

kms_st_err
kms_txn_del(kms_txn *txn, const char *table, const void *key, size_t key_len)
{
    if (!txn->t || !table_ok(table) || !key || key_len == 0)
        return KMS_ST_INVAL;
    return txn->st->ops->del(txn->t, table, key, key_len);
}

kms_st_err
kms_txn_scan(kms_txn *txn, const char *table, const void *prefix,
             size_t prefix_len, bool want_values, kms_scan_fn fn, void *ctx)
{
    if (!txn->t || !table_ok(table) || !fn)
        return KMS_ST_INVAL;
    return txn->st->ops->scan(txn->t, table, prefix, prefix_len, want_values,
                              fn, ctx);
}

void
kms_store_free(kms_store *st, void *p, size_t len)
{
    if (p)
        st->ops->free_buf(p, len);
}
