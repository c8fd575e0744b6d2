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

static _Thread_local kms_batch *tl_batch;

kms_st_err
kms_txn_begin(kms_store *st, bool rdonly, kms_txn *txn)
{
    txn->st = st;
    txn->t = NULL;
    txn->dirty = false;
    txn->borrowed = false;
    if (tl_batch && tl_batch->txn.st == st) {
        txn->t = tl_batch->txn.t;
        txn->borrowed = true;
        return KMS_ST_OK;
    }
    return st->ops->begin(st->self, rdonly, &txn->t);
}

kms_st_err
kms_txn_commit(kms_txn *txn)
{
    kms_st_err rc;

    if (!txn->t)
        return KMS_ST_INVAL;
    if (txn->borrowed) {
        txn->t = NULL;
        return KMS_ST_OK;
    }
    rc = txn->st->ops->commit(txn->t);
    txn->t = NULL;
    return rc;
}

void
kms_txn_abort(kms_txn *txn)
{
    if (!txn || !txn->t)
        return;
    if (txn->borrowed) {
        if (txn->dirty && tl_batch)
            tl_batch->poisoned = true;
    } else {
        txn->st->ops->abort(txn->t);
    }
    txn->t = NULL;
}

kms_st_err
kms_batch_begin(kms_store *st, kms_batch *b)
{
    kms_st_err rc;

    b->poisoned = false;
    if (tl_batch)
        return KMS_ST_INVAL; /* no nesting */
    if ((rc = kms_txn_begin(st, false, &b->txn)) != KMS_ST_OK)
        return rc;
    tl_batch = b;
    return KMS_ST_OK;
}

kms_st_err
kms_batch_commit(kms_batch *b)
{
    tl_batch = NULL;
    if (b->poisoned) {
        kms_txn_abort(&b->txn);
        return KMS_ST_INVAL;
    }
    return kms_txn_commit(&b->txn);
}

void
kms_batch_abort(kms_batch *b)
{
    tl_batch = NULL;
    kms_txn_abort(&b->txn);
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
    txn->dirty = true;
    return txn->st->ops->put(txn->t, table, key, key_len,
                             val ? val : (const void *)"", val_len);
}

kms_st_err
kms_txn_del(kms_txn *txn, const char *table, const void *key, size_t key_len)
{
    if (!txn->t || !table_ok(table) || !key || key_len == 0)
        return KMS_ST_INVAL;
    txn->dirty = true;
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
