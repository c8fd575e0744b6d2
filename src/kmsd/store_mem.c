/* SPDX-License-Identifier: Apache-2.0 */
/* In-memory backend for tests and fuzzing: one sorted array of records
 * under a read-write lock. A write transaction holds the lock exclusively
 * and keeps an undo log so that abort restores the previous state. */
#include "store.h"

#include "kc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *table;
    uint8_t *key;
    size_t key_len;
    uint8_t *val;
    size_t val_len;
} mem_rec;

typedef struct {
    kms_store pub;
    pthread_rwlock_t lock;
    mem_rec *recs;
    size_t count, cap;
} mem_store;

typedef struct {
    mem_rec rec; /* previous state: val NULL when the key was absent */
    bool existed;
} mem_undo;

typedef struct {
    mem_store *ms;
    bool rdonly;
    mem_undo *undo;
    size_t undo_count, undo_cap;
} mem_txn;

static int
rec_cmp(const char *table, const uint8_t *key, size_t key_len, const mem_rec *r)
{
    int c = strcmp(table, r->table);
    size_t n;

    if (c)
        return c;
    n = key_len < r->key_len ? key_len : r->key_len;
    c = memcmp(key, r->key, n);
    if (c)
        return c;
    return key_len < r->key_len ? -1 : key_len > r->key_len ? 1 : 0;
}

/* Index of the first record >= (table, key); *found if equal. */
static size_t
mem_find(mem_store *ms, const char *table, const uint8_t *key, size_t key_len,
         bool *found)
{
    size_t lo = 0, hi = ms->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rec_cmp(table, key, key_len, &ms->recs[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < ms->count && rec_cmp(table, key, key_len, &ms->recs[lo]) == 0;
    return lo;
}

static void
rec_free(mem_rec *r)
{
    free(r->table);
    free(r->key);
    kc_free_wipe(r->val, r->val_len);
    memset(r, 0, sizeof *r);
}

static uint8_t *
dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* Set (val != NULL) or remove (val == NULL) a record, no undo. */
static kms_st_err
mem_apply(mem_store *ms, const char *table, const uint8_t *key, size_t key_len,
          const uint8_t *val, size_t val_len)
{
    bool found;
    size_t i = mem_find(ms, table, key, key_len, &found);
    uint8_t *nv;

    if (!val) {
        if (!found)
            return KMS_ST_NOTFOUND;
        rec_free(&ms->recs[i]);
        memmove(&ms->recs[i], &ms->recs[i + 1],
                (ms->count - i - 1) * sizeof *ms->recs);
        ms->count--;
        return KMS_ST_OK;
    }
    if (!(nv = dup_bytes(val, val_len)))
        return KMS_ST_NOMEM;
    if (found) {
        kc_free_wipe(ms->recs[i].val, ms->recs[i].val_len);
        ms->recs[i].val = nv;
        ms->recs[i].val_len = val_len;
        return KMS_ST_OK;
    }
    if (ms->count == ms->cap) {
        size_t ncap = ms->cap ? ms->cap * 2 : 64;
        mem_rec *n = realloc(ms->recs, ncap * sizeof *n);
        if (!n) {
            free(nv);
            return KMS_ST_NOMEM;
        }
        ms->recs = n;
        ms->cap = ncap;
    }
    mem_rec r = {strdup(table), dup_bytes(key, key_len), key_len, nv, val_len};
    if (!r.table || !r.key) {
        rec_free(&r);
        return KMS_ST_NOMEM;
    }
    memmove(&ms->recs[i + 1], &ms->recs[i], (ms->count - i) * sizeof *ms->recs);
    ms->recs[i] = r;
    ms->count++;
    return KMS_ST_OK;
}

static kms_st_err
mem_begin(void *self, bool rdonly, void **out)
{
    mem_store *ms = self;
    mem_txn *t = calloc(1, sizeof *t);

    if (!t)
        return KMS_ST_NOMEM;
    t->ms = ms;
    t->rdonly = rdonly;
    if (rdonly)
        pthread_rwlock_rdlock(&ms->lock);
    else
        pthread_rwlock_wrlock(&ms->lock);
    *out = t;
    return KMS_ST_OK;
}

static void
txn_end(mem_txn *t, bool rollback)
{
    for (size_t i = t->undo_count; i-- > 0;) {
        mem_undo *u = &t->undo[i];
        if (rollback)
            mem_apply(t->ms, u->rec.table, u->rec.key, u->rec.key_len,
                      u->existed ? u->rec.val : NULL, u->rec.val_len);
        rec_free(&u->rec);
    }
    free(t->undo);
    pthread_rwlock_unlock(&t->ms->lock);
    free(t);
}

static kms_st_err
mem_commit(void *txn)
{
    txn_end(txn, false);
    return KMS_ST_OK;
}

static void
mem_abort(void *txn)
{
    txn_end(txn, true);
}

static kms_st_err
mem_get(void *txn, const char *table, const uint8_t *key, size_t key_len,
        uint8_t **val, size_t *val_len)
{
    mem_txn *t = txn;
    bool found;
    size_t i = mem_find(t->ms, table, key, key_len, &found);

    if (!found)
        return KMS_ST_NOTFOUND;
    if (!(*val = dup_bytes(t->ms->recs[i].val, t->ms->recs[i].val_len)))
        return KMS_ST_NOMEM;
    *val_len = t->ms->recs[i].val_len;
    return KMS_ST_OK;
}

static kms_st_err
remember(mem_txn *t, const char *table, const uint8_t *key, size_t key_len)
{
    bool found;
    size_t i = mem_find(t->ms, table, key, key_len, &found);
    mem_undo u = {{0}, found};

    if (t->undo_count == t->undo_cap) {
        size_t ncap = t->undo_cap ? t->undo_cap * 2 : 16;
        mem_undo *n = realloc(t->undo, ncap * sizeof *n);
        if (!n)
            return KMS_ST_NOMEM;
        t->undo = n;
        t->undo_cap = ncap;
    }
    u.rec.table = strdup(table);
    u.rec.key = dup_bytes(key, key_len);
    u.rec.key_len = key_len;
    if (found) {
        u.rec.val = dup_bytes(t->ms->recs[i].val, t->ms->recs[i].val_len);
        u.rec.val_len = t->ms->recs[i].val_len;
    }
    if (!u.rec.table || !u.rec.key || (found && !u.rec.val)) {
        rec_free(&u.rec);
        return KMS_ST_NOMEM;
    }
    t->undo[t->undo_count++] = u;
    return KMS_ST_OK;
}

static kms_st_err
mem_put(void *txn, const char *table, const uint8_t *key, size_t key_len,
        const uint8_t *val, size_t val_len)
{
    mem_txn *t = txn;
    kms_st_err rc;

    if (t->rdonly)
        return KMS_ST_INVAL;
    if ((rc = remember(t, table, key, key_len)) != KMS_ST_OK)
        return rc;
    return mem_apply(t->ms, table, key, key_len, val, val_len);
}

static kms_st_err
mem_del(void *txn, const char *table, const uint8_t *key, size_t key_len)
{
    mem_txn *t = txn;
    bool found;
    kms_st_err rc;

    if (t->rdonly)
        return KMS_ST_INVAL;
    mem_find(t->ms, table, key, key_len, &found);
    if (!found)
        return KMS_ST_NOTFOUND;
    if ((rc = remember(t, table, key, key_len)) != KMS_ST_OK)
        return rc;
    return mem_apply(t->ms, table, key, key_len, NULL, 0);
}

static kms_st_err
mem_scan(void *txn, const char *table, const uint8_t *prefix, size_t prefix_len,
         bool want_values, kms_scan_fn fn, void *ctx)
{
    mem_txn *t = txn;
    bool found;
    size_t i = mem_find(t->ms, table, prefix ? prefix : (const uint8_t *)"",
                        prefix ? prefix_len : 0, &found);

    for (; i < t->ms->count; i++) {
        mem_rec *r = &t->ms->recs[i];
        if (strcmp(r->table, table) != 0)
            break;
        if (prefix_len &&
            (r->key_len < prefix_len || memcmp(r->key, prefix, prefix_len)))
            break;
        if (fn(ctx, r->key, r->key_len, want_values ? r->val : NULL,
               want_values ? r->val_len : 0))
            break;
    }
    return KMS_ST_OK;
}

static void
mem_free_buf(void *p, size_t len)
{
    kc_free_wipe(p, len);
}

static kms_st_err
mem_sync(void *self)
{
    (void)self;
    return KMS_ST_OK;
}

static kms_st_err
mem_size(void *self, uint64_t *bytes)
{
    mem_store *ms = self;
    uint64_t n = 0;

    pthread_rwlock_rdlock(&ms->lock);
    for (size_t i = 0; i < ms->count; i++)
        n += ms->recs[i].key_len + ms->recs[i].val_len;
    pthread_rwlock_unlock(&ms->lock);
    *bytes = n;
    return KMS_ST_OK;
}

static void
mem_close(void *self)
{
    mem_store *ms = self;

    for (size_t i = 0; i < ms->count; i++)
        rec_free(&ms->recs[i]);
    free(ms->recs);
    pthread_rwlock_destroy(&ms->lock);
    free(ms);
}

static const kms_store_ops mem_ops = {
    "memory", mem_begin, mem_commit,   mem_abort, mem_get,  mem_put,
    mem_del,  mem_scan,  mem_free_buf, mem_sync,  mem_size, mem_close,
};

kms_st_err
kms_store_mem_open(kms_store **out)
{
    mem_store *ms = calloc(1, sizeof *ms);

    if (!ms)
        return KMS_ST_NOMEM;
    pthread_rwlock_init(&ms->lock, NULL);
    ms->pub.ops = &mem_ops;
    ms->pub.self = ms;
    *out = &ms->pub;
    return KMS_ST_OK;
}
