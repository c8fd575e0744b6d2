/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB data operations: transactions, get/put/del/exists, buckets,
 * counting and iteration. */
#include "zap_int.h"

#include "kc.h"

#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                              \
    do {                                                                       \
        if ((rc = (expr)) != ZAP_OK)                                           \
            goto out;                                                          \
    } while (0)
#define ENSURE(cond, code)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            rc = (code);                                                       \
            goto out;                                                          \
        }                                                                      \
    } while (0)

typedef struct zap_ent {
    uint8_t *key;
    size_t key_len;
    uint8_t rkey[ZAP_RKEY_LEN];
} zap_ent;

struct zap_iter {
    zap_txn *t;
    zap_ent *ents;
    size_t n, cap, pos;
    uint8_t *val;
    size_t val_len;
};

static zap_err
check_key(const uint8_t *key, size_t key_len)
{
    if (!key || key_len == 0)
        return ZAP_EINVAL;
    if (key_len > ZAP_MAX_KEY)
        return ZAP_ETOOBIG;
    return ZAP_OK;
}

/* An LMDB failure other than "not found"/"exists" leaves LMDB's write
 * transaction unusable: remember it so that commit reports it. */
static zap_err
txn_fail(zap_txn *t, int mrc)
{
    zap_err rc = zap_lmdb_err(mrc);

    if (!t->rdonly && mrc != MDB_NOTFOUND && mrc != MDB_KEYEXIST &&
        t->err == ZAP_OK)
        t->err = rc;
    return rc;
}

/* ---- transactions ----------------------------------------------------- */

static zap_err
txn_start(zap_db *db, unsigned flags, zap_txn *t)
{
    zap_err rc;

    memset(t, 0, sizeof *t);
    t->db = db;
    t->rdonly = (flags & ZAP_TXN_RDONLY) != 0;
    if (t->rdonly)
        return zap_rtxn_get(db, &t->txn);
    if (db->rdonly)
        return ZAP_ERDONLY;
    TRY(zap_lmdb_err(mdb_txn_begin(db->env, NULL, 0, &t->txn)));
    TRY(zap_hdr_refresh(db, t->txn, &t->wgen));
    t->wkey = zap_gen_key(db, t->txn, t->wgen, &rc);
    ENSURE(t->wkey, rc);
out:
    if (rc != ZAP_OK && t->txn) {
        mdb_txn_abort(t->txn);
        t->txn = NULL;
    }
    return rc;
}

static void
txn_end_abort(zap_txn *t)
{
    if (!t->txn)
        return;
    if (t->rdonly)
        zap_rtxn_put(t->db, t->txn);
    else
        mdb_txn_abort(t->txn);
    t->txn = NULL;
}

static zap_err
txn_end_commit(zap_txn *t)
{
    zap_err rc;
    int mrc;

    if (t->rdonly || t->err != ZAP_OK) {
        rc = t->err;
        txn_end_abort(t);
        return rc;
    }
    mrc = mdb_txn_commit(t->txn);
    t->txn = NULL;
    if (mrc != MDB_SUCCESS)
        zap_detail(t->db, "commit failed: %s", mdb_strerror(mrc));
    return zap_lmdb_err(mrc);
}

zap_err
zap_txn_begin(zap_db *db, unsigned flags, zap_txn **out)
{
    zap_txn *t;
    zap_err rc;

    if (!db || !out || (flags & ~ZAP_TXN_RDONLY))
        return ZAP_EINVAL;
    *out = NULL;
    t = malloc(sizeof *t);
    if (!t)
        return ZAP_ENOMEM;
    rc = txn_start(db, flags, t);
    if (rc != ZAP_OK) {
        free(t);
        return rc;
    }
    *out = t;
    return ZAP_OK;
}

zap_err
zap_txn_commit(zap_txn *txn)
{
    zap_err rc;

    if (!txn)
        return ZAP_EINVAL;
    rc = txn_end_commit(txn);
    free(txn);
    return rc;
}

void
zap_txn_abort(zap_txn *txn)
{
    if (!txn)
        return;
    txn_end_abort(txn);
    free(txn);
}

/* ---- records ---------------------------------------------------------- */

static zap_err
rec_lookup(zap_txn *t, const char *bucket, const uint8_t *key, size_t key_len,
           uint8_t rkey[ZAP_RKEY_LEN], MDB_val *v)
{
    uint8_t tag[ZAP_BTAG_LEN];
    MDB_val k = {ZAP_RKEY_LEN, rkey};
    zap_err rc;
    int mrc;

    if ((rc = check_key(key, key_len)) != ZAP_OK ||
        (rc = zap_bucket_hash(t->db, bucket, NULL, tag)) != ZAP_OK ||
        (rc = zap_key_hash(t->db, tag, key, key_len, rkey)) != ZAP_OK)
        return rc;
    mrc = mdb_get(t->txn, t->db->dbi_records, &k, v);
    return mrc == MDB_SUCCESS ? ZAP_OK : txn_fail(t, mrc);
}

/* Whether the record `v` in slot `rkey` holds `key` (its key segment
 * decrypted and compared): ZAP_OK with *same set, or ZAP_ECORRUPT when it
 * fails authentication. */
#define ZAP_KEY_STACK 256u

static zap_err
slot_holds(zap_txn *t, const MDB_val *v, const uint8_t *rkey,
           const uint8_t *key, size_t key_len, bool *same)
{
    uint8_t stage[ZAP_KEY_STACK], *k = stage;
    const uint8_t *sub;
    zap_rec r;
    zap_err rc;

    *same = false;
    TRY(zap_rec_parse(v, &r));
    ENSURE(r.type == ZAP_REC_RECORD, ZAP_ECORRUPT);
    sub = zap_gen_key(t->db, t->txn, r.gen, &rc);
    ENSURE(sub, rc);
    if (r.klen > sizeof stage)
        ENSURE((k = malloc(r.klen)) != NULL, ZAP_ENOMEM);
    TRY(zap_rec_open_k(&r, sub, rkey, ZAP_RKEY_LEN, k));
    *same = r.klen == key_len && kc_ct_eq(k, key, key_len);
out:
    if (k != stage)
        kc_free_wipe(k, r.klen);
    else
        kc_wipe(stage, sizeof stage);
    return rc;
}

/* The value failed authentication for `key`: a record of another key whose
 * slot hash collides (not found, said in the detail) or a damaged one. */
static zap_err
rec_mismatch(zap_txn *t, const char *bucket, const MDB_val *v,
             const uint8_t *rkey, const uint8_t *key, size_t key_len)
{
    bool same;
    zap_err rc = slot_holds(t, v, rkey, key, key_len, &same);

    if (rc != ZAP_OK)
        return rc;
    if (same)
        return ZAP_ECORRUPT;
    zap_detail(t->db,
               "key hash collision in bucket '%.64s': the slot holds "
               "another key",
               bucket);
    return ZAP_ENOTFOUND;
}

static zap_err
rec_get(zap_txn *t, const char *bucket, const uint8_t *key, size_t key_len,
        uint8_t **val, size_t *val_len)
{
    uint8_t rkey[ZAP_RKEY_LEN], *buf = NULL;
    const uint8_t *sub;
    MDB_val v;
    zap_rec r;
    zap_err rc;

    ENSURE(val && val_len, ZAP_EINVAL);
    *val = NULL;
    *val_len = 0;
    TRY(rec_lookup(t, bucket, key, key_len, rkey, &v));
    TRY(zap_rec_parse(&v, &r));
    ENSURE(r.type == ZAP_REC_RECORD, ZAP_ECORRUPT);
    sub = zap_gen_key(t->db, t->txn, r.gen, &rc);
    ENSURE(sub, rc);
    buf = malloc(r.vlen ? r.vlen : 1);
    ENSURE(buf, ZAP_ENOMEM);
    /* The key is in the value's AD: the open succeeds only for the key the
     * record was written with (a slot collision fails here). */
    rc = r.klen == key_len
             ? zap_rec_open_vk(&r, sub, rkey, ZAP_RKEY_LEN, key, buf)
             : ZAP_ECORRUPT;
    if (rc == ZAP_ECORRUPT)
        rc = rec_mismatch(t, bucket, &v, rkey, key, key_len);
    TRY(rc);
    *val = buf;
    *val_len = r.vlen;
    buf = NULL;
out:
    if (rc == ZAP_ECORRUPT)
        zap_detail(t->db, "record in bucket '%.64s' failed authentication",
                   bucket);
    free(buf); /* only set on failure: holds no plaintext */
    return rc;
}

static zap_err
rec_exists(zap_txn *t, const char *bucket, const uint8_t *key, size_t key_len,
           bool *exists)
{
    uint8_t rkey[ZAP_RKEY_LEN];
    MDB_val v;
    zap_err rc;

    if (!exists)
        return ZAP_EINVAL;
    *exists = false;
    rc = rec_lookup(t, bucket, key, key_len, rkey, &v);
    if (rc == ZAP_ENOTFOUND)
        return ZAP_OK;
    if (rc == ZAP_OK)
        *exists = true;
    return rc;
}

/* Whether the bucket record `v` at Hb (tag[0..ZAP_HB_LEN]) holds `bucket`:
 * ZAP_OK with *same set (false: another name whose Hb collides). */
static zap_err
bucket_holds(zap_txn *t, const char *bucket, const uint8_t *tag,
             const MDB_val *v, bool *same)
{
    char *name;
    size_t len;
    zap_err rc;

    *same = false;
    rc = zap_bucket_name(t->db, t->txn, tag, v, &name, &len);
    if (rc == ZAP_ECORRUPT)
        zap_detail(t->db, "a bucket record failed authentication");
    if (rc != ZAP_OK)
        return rc;
    *same = strcmp(name, bucket) == 0;
    kc_free_wipe(name, len + 1);
    if (!*same)
        zap_detail(t->db,
                   "bucket '%.64s' collides with another bucket's hash; "
                   "use another name",
                   bucket);
    return ZAP_OK;
}

/* Make sure the bucket record for `tag` exists, creating it if asked. A
 * record of another name at the same Hb is refused (ZAP_EINTERNAL). */
static zap_err
bucket_ensure(zap_txn *t, const char *bucket, size_t name_len,
              const uint8_t tag[ZAP_BTAG_LEN], bool create, bool excl)
{
    MDB_val k = {ZAP_HB_LEN, (void *)tag}, v;
    size_t size;
    zap_err rc;
    bool same;
    int mrc;

    if (!excl && t->hb_known && memcmp(t->hb_ok, tag, ZAP_BTAG_LEN) == 0)
        return ZAP_OK;
    mrc = mdb_get(t->txn, t->db->dbi_buckets, &k, &v);
    if (mrc == MDB_SUCCESS) {
        if ((rc = bucket_holds(t, bucket, tag, &v, &same)) != ZAP_OK)
            return rc;
        if (!same)
            return ZAP_EINTERNAL;
        if (excl)
            return ZAP_EEXIST;
    }
    if (mrc == MDB_NOTFOUND && create) {
        zap_rec_size(ZAP_REC_BUCKET, name_len, 0, &size);
        v.mv_size = size;
        mrc = mdb_put(t->txn, t->db->dbi_buckets, &k, &v, MDB_RESERVE);
        if (mrc == MDB_SUCCESS)
            zap_rec_seal(v.mv_data, ZAP_REC_BUCKET, t->wgen, t->wkey, tag,
                         ZAP_HB_LEN, (const uint8_t *)bucket, name_len, NULL,
                         0);
    }
    if (mrc != MDB_SUCCESS)
        return txn_fail(t, mrc);
    t->hb_known = true;
    memcpy(t->hb_ok, tag, ZAP_BTAG_LEN);
    return ZAP_OK;
}

/* A put found slot `rkey` occupied (`v`): replacing is fine for the same
 * key (or a damaged record), an error for another key whose Hk collides. */
static zap_err
put_check_slot(zap_txn *t, const char *bucket, const MDB_val *v,
               const uint8_t *rkey, const uint8_t *key, size_t key_len)
{
    bool same;
    zap_err rc = slot_holds(t, v, rkey, key, key_len, &same);

    if (rc == ZAP_ECORRUPT)
        return ZAP_OK;
    if (rc != ZAP_OK)
        return rc;
    if (same)
        return ZAP_OK;
    zap_detail(t->db,
               "key hash collision in bucket '%.64s': the slot holds another "
               "key; nothing written",
               bucket);
    return ZAP_EINTERNAL;
}

static zap_err
rec_put(zap_txn *t, const char *bucket, const uint8_t *key, size_t key_len,
        const uint8_t *val, size_t val_len)
{
    uint8_t tag[ZAP_BTAG_LEN], rkey[ZAP_RKEY_LEN];
    MDB_val k = {ZAP_RKEY_LEN, rkey}, v;
    size_t name_len, size;
    zap_err rc;
    int mrc;

    if (t->rdonly)
        return ZAP_ERDONLY;
    if (t->err != ZAP_OK)
        return t->err;
    if ((rc = check_key(key, key_len)) != ZAP_OK)
        return rc;
    if (val_len > ZAP_MAX_VALUE)
        return ZAP_ETOOBIG;
    if (!val && val_len)
        return ZAP_EINVAL;
    if ((rc = zap_bucket_hash(t->db, bucket, &name_len, tag)) != ZAP_OK)
        return rc;
    if ((rc = bucket_ensure(t, bucket, name_len, tag, true, false)) != ZAP_OK ||
        (rc = zap_key_hash(t->db, tag, key, key_len, rkey)) != ZAP_OK)
        return rc;
    if (!zap_rec_size(ZAP_REC_RECORD, key_len, val_len, &size))
        return ZAP_ETOOBIG;
    /* Insert without a second lookup; an occupied slot hands back its
     * record, checked before it is replaced. */
    v.mv_size = size;
    mrc = mdb_put(t->txn, t->db->dbi_records, &k, &v,
                  MDB_RESERVE | MDB_NOOVERWRITE);
    if (mrc == MDB_KEYEXIST) {
        if ((rc = put_check_slot(t, bucket, &v, rkey, key, key_len)) != ZAP_OK)
            return rc;
        v.mv_size = size;
        mrc = mdb_put(t->txn, t->db->dbi_records, &k, &v, MDB_RESERVE);
    }
    if (mrc != MDB_SUCCESS)
        return txn_fail(t, mrc);
    zap_rec_seal(v.mv_data, ZAP_REC_RECORD, t->wgen, t->wkey, rkey,
                 ZAP_RKEY_LEN, key, key_len, val, val_len);
    return ZAP_OK;
}

static zap_err
rec_del(zap_txn *t, const char *bucket, const uint8_t *key, size_t key_len)
{
    uint8_t rkey[ZAP_RKEY_LEN];
    MDB_val k = {ZAP_RKEY_LEN, rkey}, v;
    zap_err rc;
    bool same;
    int mrc;

    if (t->rdonly)
        return ZAP_ERDONLY;
    if (t->err != ZAP_OK)
        return t->err;
    if ((rc = rec_lookup(t, bucket, key, key_len, rkey, &v)) != ZAP_OK)
        return rc;
    /* Never delete another key's record whose slot hash collides; a
     * damaged record may be deleted. */
    rc = slot_holds(t, &v, rkey, key, key_len, &same);
    if (rc == ZAP_OK && !same) {
        zap_detail(t->db,
                   "key hash collision in bucket '%.64s': the slot holds "
                   "another key",
                   bucket);
        return ZAP_ENOTFOUND;
    }
    if (rc != ZAP_OK && rc != ZAP_ECORRUPT)
        return rc;
    mrc = mdb_del(t->txn, t->db->dbi_records, &k, NULL);
    return mrc == MDB_SUCCESS ? ZAP_OK : txn_fail(t, mrc);
}

/* ---- public transaction calls ----------------------------------------- */

zap_err
zap_txn_get(zap_txn *txn, const char *bucket, const uint8_t *key,
            size_t key_len, uint8_t **val, size_t *val_len)
{
    return txn ? rec_get(txn, bucket, key, key_len, val, val_len) : ZAP_EINVAL;
}

zap_err
zap_txn_put(zap_txn *txn, const char *bucket, const uint8_t *key,
            size_t key_len, const uint8_t *val, size_t val_len)
{
    return txn ? rec_put(txn, bucket, key, key_len, val, val_len) : ZAP_EINVAL;
}

zap_err
zap_txn_del(zap_txn *txn, const char *bucket, const uint8_t *key,
            size_t key_len)
{
    return txn ? rec_del(txn, bucket, key, key_len) : ZAP_EINVAL;
}

zap_err
zap_txn_exists(zap_txn *txn, const char *bucket, const uint8_t *key,
               size_t key_len, bool *exists)
{
    return txn ? rec_exists(txn, bucket, key, key_len, exists) : ZAP_EINVAL;
}

/* ---- single-operation calls ------------------------------------------- */

zap_err
zap_get(zap_db *db, const char *bucket, const uint8_t *key, size_t key_len,
        uint8_t **val, size_t *val_len)
{
    zap_txn t;
    zap_err rc;

    if (!db)
        return ZAP_EINVAL;
    if ((rc = txn_start(db, ZAP_TXN_RDONLY, &t)) != ZAP_OK)
        return rc;
    rc = rec_get(&t, bucket, key, key_len, val, val_len);
    txn_end_abort(&t);
    return rc;
}

zap_err
zap_exists(zap_db *db, const char *bucket, const uint8_t *key, size_t key_len,
           bool *exists)
{
    zap_txn t;
    zap_err rc;

    if (!db)
        return ZAP_EINVAL;
    if ((rc = txn_start(db, ZAP_TXN_RDONLY, &t)) != ZAP_OK)
        return rc;
    rc = rec_exists(&t, bucket, key, key_len, exists);
    txn_end_abort(&t);
    return rc;
}

zap_err
zap_put(zap_db *db, const char *bucket, const uint8_t *key, size_t key_len,
        const uint8_t *val, size_t val_len)
{
    zap_txn t;
    zap_err rc;

    if (!db)
        return ZAP_EINVAL;
    if ((rc = txn_start(db, 0, &t)) != ZAP_OK)
        return rc;
    rc = rec_put(&t, bucket, key, key_len, val, val_len);
    if (rc != ZAP_OK) {
        txn_end_abort(&t);
        return rc;
    }
    return txn_end_commit(&t);
}

zap_err
zap_del(zap_db *db, const char *bucket, const uint8_t *key, size_t key_len)
{
    zap_txn t;
    zap_err rc;

    if (!db)
        return ZAP_EINVAL;
    if ((rc = txn_start(db, 0, &t)) != ZAP_OK)
        return rc;
    rc = rec_del(&t, bucket, key, key_len);
    if (rc != ZAP_OK) {
        txn_end_abort(&t);
        return rc;
    }
    return txn_end_commit(&t);
}

/* ---- buckets ---------------------------------------------------------- */

zap_err
zap_bucket_name(zap_db *db, MDB_txn *txn, const uint8_t *hb, const MDB_val *v,
                char **name, size_t *len)
{
    uint8_t check[ZAP_BTAG_LEN];
    const uint8_t *sub;
    char *buf = NULL;
    zap_rec r;
    zap_err rc;

    *name = NULL;
    TRY(zap_rec_parse(v, &r));
    ENSURE(r.type == ZAP_REC_BUCKET, ZAP_ECORRUPT);
    sub = zap_gen_key(db, txn, r.gen, &rc);
    ENSURE(sub, rc);
    buf = malloc(r.klen + 1);
    ENSURE(buf, ZAP_ENOMEM);
    TRY(zap_rec_open_k(&r, sub, hb, ZAP_HB_LEN, (uint8_t *)buf));
    buf[r.klen] = '\0';
    /* The name must hash to the slot it sits in and hold no NUL. */
    crypto_generichash(check, ZAP_BTAG_LEN, (const uint8_t *)buf, r.klen,
                       db->names, ZAP_KEYBYTES);
    ENSURE(strlen(buf) == r.klen && kc_ct_eq(check, hb, ZAP_HB_LEN),
           ZAP_ECORRUPT);
    *name = buf;
    *len = r.klen;
    buf = NULL;
out:
    if (buf)
        kc_free_wipe(buf, r.klen + 1);
    return rc;
}

/* Count (and with `drop`, delete) the records of bucket `hb`. */
static zap_err
bucket_scan(zap_txn *t, const uint8_t hb[ZAP_HB_LEN], bool drop,
            uint64_t *count)
{
    MDB_cursor *c = NULL;
    MDB_val k = {ZAP_HB_LEN, (void *)hb}, v;
    uint64_t n = 0;
    zap_err rc = ZAP_OK;
    int mrc;

    mrc = mdb_cursor_open(t->txn, t->db->dbi_records, &c);
    if (mrc != MDB_SUCCESS)
        return txn_fail(t, mrc);
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == MDB_SUCCESS && k.mv_size >= ZAP_HB_LEN &&
           memcmp(k.mv_data, hb, ZAP_HB_LEN) == 0) {
        n++;
        if (!drop) {
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            continue;
        }
        if ((mrc = mdb_cursor_del(c, 0)) != MDB_SUCCESS)
            break;
        /* Re-seek rather than trust the cursor position after a delete. */
        k.mv_size = ZAP_HB_LEN;
        k.mv_data = (void *)hb;
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        rc = txn_fail(t, mrc);
    mdb_cursor_close(c);
    if (count)
        *count = n;
    return rc;
}

static zap_err bucket_must_exist(zap_txn *t, const char *bucket,
                                 uint8_t tag[ZAP_BTAG_LEN]);

static zap_err
bucket_op(zap_db *db, const char *bucket, bool create)
{
    uint8_t hb[ZAP_BTAG_LEN];
    MDB_val k = {ZAP_HB_LEN, hb};
    size_t name_len;
    zap_txn t;
    zap_err rc;
    int mrc;

    if (!db)
        return ZAP_EINVAL;
    if ((rc = zap_bucket_hash(db, bucket, &name_len, hb)) != ZAP_OK)
        return rc;
    if ((rc = txn_start(db, 0, &t)) != ZAP_OK)
        return rc;
    if (create) {
        TRY(bucket_ensure(&t, bucket, name_len, hb, true, true));
    } else {
        /* Checks the name: never drop another bucket whose Hb collides. */
        TRY(bucket_must_exist(&t, bucket, hb));
        mrc = mdb_del(t.txn, db->dbi_buckets, &k, NULL);
        TRY(mrc == MDB_SUCCESS ? ZAP_OK : txn_fail(&t, mrc));
        TRY(bucket_scan(&t, hb, true, NULL));
    }
    return txn_end_commit(&t);
out:
    txn_end_abort(&t);
    return rc;
}

zap_err
zap_txn_bucket_create(zap_txn *txn, const char *bucket)
{
    uint8_t hb[ZAP_BTAG_LEN];
    size_t name_len;
    zap_err rc;

    if (!txn)
        return ZAP_EINVAL;
    if (txn->rdonly)
        return ZAP_ERDONLY;
    if (txn->err != ZAP_OK)
        return txn->err;
    if ((rc = zap_bucket_hash(txn->db, bucket, &name_len, hb)) != ZAP_OK)
        return rc;
    return bucket_ensure(txn, bucket, name_len, hb, true, true);
}

zap_err
zap_bucket_create(zap_db *db, const char *bucket)
{
    return bucket_op(db, bucket, true);
}

zap_err
zap_bucket_drop(zap_db *db, const char *bucket)
{
    return bucket_op(db, bucket, false);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void
zap_list_free(char **names, size_t count)
{
    if (!names)
        return;
    for (size_t i = 0; i < count; i++)
        if (names[i])
            kc_free_wipe(names[i], strlen(names[i]) + 1);
    free(names);
}

zap_err
zap_bucket_list(zap_db *db, char ***names, size_t *count)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    char **list = NULL, **grown;
    size_t n = 0, cap = 0, len;
    zap_txn t;
    zap_err rc;
    int mrc;

    if (!db || !names || !count)
        return ZAP_EINVAL;
    *names = NULL;
    *count = 0;
    if ((rc = txn_start(db, ZAP_TXN_RDONLY, &t)) != ZAP_OK)
        return rc;
    TRY(zap_lmdb_err(mdb_cursor_open(t.txn, db->dbi_buckets, &c)));
    while ((mrc = mdb_cursor_get(c, &k, &v, n ? MDB_NEXT : MDB_FIRST)) ==
           MDB_SUCCESS) {
        ENSURE(k.mv_size == ZAP_HB_LEN, ZAP_ECORRUPT);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(list, cap * sizeof *list);
            ENSURE(grown, ZAP_ENOMEM);
            list = grown;
        }
        rc = zap_bucket_name(db, t.txn, k.mv_data, &v, &list[n], &len);
        if (rc == ZAP_ECORRUPT)
            zap_detail(db, "a bucket record failed authentication");
        TRY(rc);
        n++;
    }
    ENSURE(mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    if (n)
        qsort(list, n, sizeof *list, cmp_str);
    *names = list;
    *count = n;
    list = NULL;
    rc = ZAP_OK;
out:
    if (c)
        mdb_cursor_close(c);
    txn_end_abort(&t);
    zap_list_free(list, n);
    return rc;
}

/* The bucket record exists and holds `bucket` (another name whose Hb
 * collides is ZAP_ENOTFOUND). */
static zap_err
bucket_must_exist(zap_txn *t, const char *bucket, uint8_t tag[ZAP_BTAG_LEN])
{
    MDB_val k = {ZAP_HB_LEN, tag}, v;
    zap_err rc;
    bool same;
    int mrc;

    if ((rc = zap_bucket_hash(t->db, bucket, NULL, tag)) != ZAP_OK)
        return rc;
    mrc = mdb_get(t->txn, t->db->dbi_buckets, &k, &v);
    if (mrc != MDB_SUCCESS)
        return txn_fail(t, mrc);
    if ((rc = bucket_holds(t, bucket, tag, &v, &same)) != ZAP_OK)
        return rc;
    return same ? ZAP_OK : ZAP_ENOTFOUND;
}

zap_err
zap_txn_count(zap_txn *txn, const char *bucket, uint64_t *count)
{
    uint8_t hb[ZAP_BTAG_LEN];
    zap_err rc;

    if (!txn || !count)
        return ZAP_EINVAL;
    *count = 0;
    if ((rc = bucket_must_exist(txn, bucket, hb)) != ZAP_OK)
        return rc;
    return bucket_scan(txn, hb, false, count);
}

/* ---- iteration -------------------------------------------------------- */

static int
cmp_ent(const void *a, const void *b)
{
    const zap_ent *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    if (c)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static bool
key_wanted(const uint8_t *key, size_t len, const uint8_t *prefix,
           size_t prefix_len, const uint8_t *start, size_t start_len)
{
    zap_ent a = {(uint8_t *)key, len, {0}},
            b = {(uint8_t *)start, start_len, {0}};

    if (prefix_len && (len < prefix_len || memcmp(key, prefix, prefix_len)))
        return false;
    return !start || cmp_ent(&a, &b) >= 0;
}

static zap_err
iter_add(zap_iter *it, const MDB_val *k, const MDB_val *v,
         const uint8_t *prefix, size_t prefix_len, const uint8_t *start,
         size_t start_len)
{
    const uint8_t *sub;
    uint8_t *key = NULL;
    zap_ent *grown;
    zap_rec r;
    zap_err rc;

    ENSURE(k->mv_size == ZAP_RKEY_LEN, ZAP_ECORRUPT);
    TRY(zap_rec_parse(v, &r));
    ENSURE(r.type == ZAP_REC_RECORD, ZAP_ECORRUPT);
    sub = zap_gen_key(it->t->db, it->t->txn, r.gen, &rc);
    ENSURE(sub, rc);
    key = malloc(r.klen);
    ENSURE(key, ZAP_ENOMEM);
    TRY(zap_rec_open_k(&r, sub, k->mv_data, ZAP_RKEY_LEN, key));
    if (!key_wanted(key, r.klen, prefix, prefix_len, start, start_len)) {
        rc = ZAP_OK;
        goto out;
    }
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 64;
        grown = realloc(it->ents, cap * sizeof *grown);
        ENSURE(grown, ZAP_ENOMEM);
        it->ents = grown;
        it->cap = cap;
    }
    it->ents[it->n].key = key;
    it->ents[it->n].key_len = r.klen;
    memcpy(it->ents[it->n].rkey, k->mv_data, ZAP_RKEY_LEN);
    it->n++;
    key = NULL;
out:
    if (key)
        kc_free_wipe(key, r.klen);
    return rc;
}

void
zap_iter_close(zap_iter *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n; i++)
        kc_free_wipe(it->ents[i].key, it->ents[i].key_len);
    free(it->ents);
    kc_free_wipe(it->val, it->val_len);
    free(it);
}

zap_err
zap_iter_open(zap_txn *txn, const char *bucket, const uint8_t *prefix,
              size_t prefix_len, const uint8_t *start, size_t start_len,
              zap_iter **out)
{
    uint8_t hb[ZAP_BTAG_LEN];
    MDB_cursor *c = NULL;
    MDB_val k = {ZAP_HB_LEN, hb}, v;
    zap_iter *it = NULL;
    zap_err rc;
    int mrc;

    ENSURE(txn && out && (prefix || !prefix_len), ZAP_EINVAL);
    *out = NULL;
    TRY(bucket_must_exist(txn, bucket, hb));
    it = calloc(1, sizeof *it);
    ENSURE(it, ZAP_ENOMEM);
    it->t = txn;
    TRY(zap_lmdb_err(mdb_cursor_open(txn->txn, txn->db->dbi_records, &c)));
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == MDB_SUCCESS && k.mv_size >= ZAP_HB_LEN &&
           memcmp(k.mv_data, hb, ZAP_HB_LEN) == 0) {
        rc = iter_add(it, &k, &v, prefix, prefix_len, start, start_len);
        if (rc == ZAP_ECORRUPT)
            zap_detail(txn->db,
                       "record in bucket '%.64s' failed authentication",
                       bucket);
        TRY(rc);
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    ENSURE(mrc == MDB_SUCCESS || mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    if (it->n)
        qsort(it->ents, it->n, sizeof *it->ents, cmp_ent);
    *out = it;
    it = NULL;
    rc = ZAP_OK;
out:
    if (c)
        mdb_cursor_close(c);
    zap_iter_close(it);
    return rc;
}

zap_err
zap_iter_next(zap_iter *it, const uint8_t **key, size_t *key_len,
              const uint8_t **val, size_t *val_len)
{
    const uint8_t *sub;
    zap_ent *e;
    MDB_val k, v;
    zap_rec r;
    zap_err rc;
    int mrc;

    if (!it)
        return ZAP_EINVAL;
    kc_free_wipe(it->val, it->val_len);
    it->val = NULL;
    it->val_len = 0;
    for (;;) {
        if (it->pos >= it->n)
            return ZAP_ENOTFOUND;
        e = &it->ents[it->pos++];
        if (!val)
            break;
        k.mv_size = ZAP_RKEY_LEN;
        k.mv_data = e->rkey;
        mrc = mdb_get(it->t->txn, it->t->db->dbi_records, &k, &v);
        if (mrc == MDB_NOTFOUND)
            continue; /* deleted by this write transaction meanwhile */
        if (mrc != MDB_SUCCESS)
            return txn_fail(it->t, mrc);
        if ((rc = zap_rec_parse(&v, &r)) != ZAP_OK)
            return rc;
        if (!(sub = zap_gen_key(it->t->db, it->t->txn, r.gen, &rc)))
            return rc;
        it->val = malloc(r.vlen ? r.vlen : 1);
        if (!it->val)
            return ZAP_ENOMEM;
        rc = r.klen == e->key_len
                 ? zap_rec_open_vk(&r, sub, e->rkey, ZAP_RKEY_LEN, e->key,
                                   it->val)
                 : ZAP_ECORRUPT;
        if (rc != ZAP_OK) {
            free(it->val);
            it->val = NULL;
            zap_detail(it->t->db, "record failed authentication");
            return rc;
        }
        it->val_len = r.vlen;
        *val = it->val;
        if (val_len)
            *val_len = r.vlen;
        break;
    }
    if (key)
        *key = e->key;
    if (key_len)
        *key_len = e->key_len;
    return ZAP_OK;
}
