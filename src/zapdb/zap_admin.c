/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB operations: change password/key, DEK rotation, verify, stats. */
#include "zap_int.h"

#include "kc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

#define PROGRESS_EVERY 256u

/* A growable scratch buffer that is wiped when it grows or is released. */
typedef struct scratch {
    uint8_t *p;
    size_t cap;
} scratch;

static bool
scratch_need(scratch *s, size_t n)
{
    uint8_t *p;

    if (n == 0)
        n = 1;
    if (n <= s->cap)
        return true;
    p = malloc(n);
    if (!p)
        return false;
    kc_free_wipe(s->p, s->cap);
    s->p = p;
    s->cap = n;
    return true;
}

static void
scratch_free(scratch *s)
{
    kc_free_wipe(s->p, s->cap);
    s->p = NULL;
    s->cap = 0;
}

/* Copy the handle's KEK (it changes under db->mu in rewrap()). */
static void
kek_copy(zap_db *db, uint8_t *out)
{
    pthread_mutex_lock(&db->mu);
    memcpy(out, db->kek, ZAP_KEYBYTES);
    pthread_mutex_unlock(&db->mu);
}

static zap_err
hdr_get(zap_db *db, MDB_txn *txn, const uint8_t *kek, zap_hdr *h)
{
    MDB_val k = {sizeof ZAP_META_HDR - 1, (void *)ZAP_META_HDR}, v;
    zap_err rc = zap_lmdb_err(mdb_get(txn, db->dbi_meta, &k, &v));

    if (rc == ZAP_ENOTFOUND)
        rc = ZAP_ECORRUPT;
    if (rc != ZAP_OK)
        return rc;
    rc = zap_hdr_unwrap(v.mv_data, v.mv_size, kek, h);
    if (rc == ZAP_EAUTH)
        zap_detail(db, "store key was changed by another handle; reopen");
    return rc;
}

static zap_err
hdr_put(zap_db *db, MDB_txn *txn, const zap_hdr *h, const uint8_t *kek)
{
    MDB_val k = {sizeof ZAP_META_HDR - 1, (void *)ZAP_META_HDR}, v;
    uint8_t buf[ZAP_HDR_MAX];

    v.mv_size = zap_hdr_build(h, kek, buf);
    v.mv_data = buf;
    return zap_lmdb_err(mdb_put(txn, db->dbi_meta, &k, &v, 0));
}

/* ---- change password / key -------------------------------------------- */

static zap_err
rewrap(zap_db *db, uint8_t kdf, const char *pw, size_t pw_len,
       const uint8_t *raw, uint64_t ops, uint64_t mem)
{
    zap_hdr *h = kc_secure_alloc(sizeof *h);
    uint8_t *kek = kc_secure_alloc(ZAP_KEYBYTES);
    uint8_t *old = kc_secure_alloc(ZAP_KEYBYTES);
    uint8_t salt[ZAP_SALT_LEN];
    MDB_txn *txn = NULL;
    zap_err rc;
    int mrc;

    ENSURE(h && kek && old, ZAP_ENOMEM);
    ENSURE(!db->rdonly, ZAP_ERDONLY);
    kc_random(salt, sizeof salt);
    /* The KDF runs before the write lock is taken. */
    TRY(zap_kek_derive(kdf, pw, pw_len, raw, salt, ops, mem, kek));
    TRY(zap_lmdb_err(mdb_txn_begin(db->env, NULL, 0, &txn)));
    kek_copy(db, old);
    TRY(hdr_get(db, txn, old, h));
    ENSURE(h->kdf == kdf, ZAP_EINVAL);
    h->opslimit = ops;
    h->memlimit = mem;
    memcpy(h->salt, salt, sizeof salt);
    TRY(hdr_put(db, txn, h, kek));
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    TRY(zap_lmdb_err(mrc));
    pthread_mutex_lock(&db->mu);
    memcpy(db->kek, kek, ZAP_KEYBYTES);
    db->opslimit = ops;
    db->memlimit = mem;
    db->hdr_cache_len = 0; /* re-read (and re-authenticate) lazily */
    pthread_mutex_unlock(&db->mu);
out:
    if (txn)
        mdb_txn_abort(txn);
    kc_secure_free(h);
    kc_secure_free(kek);
    kc_secure_free(old);
    return rc;
}

zap_err
zap_change_password(zap_db *db, const char *new_password,
                    size_t new_password_len, const zap_opts *opts)
{
    uint64_t ops, mem;

    if (!db || !new_password || new_password_len == 0 ||
        new_password_len > ZAP_MAX_PASSWORD)
        return ZAP_EINVAL;
    if (db->kdf != ZAP_KDF_ARGON2ID)
        return ZAP_EINVAL;
    pthread_mutex_lock(&db->mu);
    ops = db->opslimit;
    mem = db->memlimit;
    pthread_mutex_unlock(&db->mu);
    if (opts && opts->kdf_opslimit)
        ops = opts->kdf_opslimit;
    if (opts && opts->kdf_memlimit)
        mem = opts->kdf_memlimit;
    return rewrap(db, ZAP_KDF_ARGON2ID, new_password, new_password_len, NULL,
                  ops, mem);
}

zap_err
zap_change_key(zap_db *db, const uint8_t new_key[ZAP_KEY_LEN])
{
    if (!db || !new_key)
        return ZAP_EINVAL;
    if (db->kdf != ZAP_KDF_RAW)
        return ZAP_EINVAL;
    return rewrap(db, ZAP_KDF_RAW, NULL, 0, new_key, 0, 0);
}

/* ---- rekey ------------------------------------------------------------ */

typedef struct rekey_ctx {
    zap_db *db;
    MDB_txn *txn;
    uint32_t gen;
    const uint8_t *sub;
    scratch k, v, out;
    uint64_t done, total;
    zap_progress_fn progress;
    void *pctx;
} rekey_ctx;

/* Re-seal the record under the cursor with the new generation. */
static zap_err
reseal_one(rekey_ctx *rk, MDB_cursor *c, MDB_val *k, const MDB_val *v)
{
    const uint8_t *old;
    MDB_val nv;
    zap_rec r;
    size_t size;
    zap_err rc;

    TRY(zap_rec_parse(v, &r));
    ENSURE(k->mv_size == (r.type == ZAP_REC_BUCKET ? ZAP_HB_LEN : ZAP_RKEY_LEN),
           ZAP_ECORRUPT);
    old = zap_gen_key(rk->db, rk->txn, r.gen, &rc);
    ENSURE(old, rc);
    ENSURE(scratch_need(&rk->k, r.klen) && scratch_need(&rk->v, r.vlen) &&
               scratch_need(&rk->out, v->mv_size),
           ZAP_ENOMEM);
    TRY(zap_rec_open_k(&r, old, k->mv_data, k->mv_size, rk->k.p));
    if (r.type == ZAP_REC_RECORD)
        TRY(zap_rec_open_vk(&r, old, k->mv_data, k->mv_size, rk->k.p, rk->v.p));
    zap_rec_size(r.type, r.klen, r.vlen, &size);
    ENSURE(size == v->mv_size, ZAP_ECORRUPT);
    zap_rec_seal(rk->out.p, r.type, rk->gen, rk->sub, k->mv_data, k->mv_size,
                 rk->k.p, r.klen, rk->v.p, r.vlen);
    nv.mv_size = size;
    nv.mv_data = rk->out.p;
    TRY(zap_lmdb_err(mdb_cursor_put(c, k, &nv, MDB_CURRENT)));
    rk->done++;
    if (rk->progress && (rk->done % PROGRESS_EVERY == 0) &&
        rk->progress(rk->pctx, rk->done, rk->total))
        rc = ZAP_EBUSY;
out:
    if (rc == ZAP_ECORRUPT)
        zap_detail(rk->db, "record failed authentication during rekey; "
                           "run verify");
    return rc;
}

static zap_err
reseal_all(rekey_ctx *rk, MDB_dbi dbi)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    zap_err rc;
    int mrc;

    TRY(zap_lmdb_err(mdb_cursor_open(rk->txn, dbi, &c)));
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        TRY(reseal_one(rk, c, &k, &v));
    ENSURE(mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    rc = ZAP_OK;
out:
    if (c)
        mdb_cursor_close(c);
    return rc;
}

/* The whole rotation is one LMDB write transaction: LMDB commits it
 * atomically (copy-on-write pages, meta page switched last), so a crash at
 * any point leaves either the old store or the new one. */
zap_err
zap_rekey(zap_db *db, zap_progress_fn progress, void *ctx)
{
    rekey_ctx rk;
    zap_hdr *h = kc_secure_alloc(sizeof *h);
    uint8_t *sub = kc_secure_alloc(ZAP_SUBKEYS);
    uint8_t *kek = kc_secure_alloc(ZAP_KEYBYTES);
    MDB_stat sb, sr;
    uint32_t max_gen = 0;
    zap_err rc;
    int mrc;

    memset(&rk, 0, sizeof rk);
    ENSURE(db, ZAP_EINVAL);
    ENSURE(h && sub && kek, ZAP_ENOMEM);
    ENSURE(!db->rdonly, ZAP_ERDONLY);
    rk.db = db;
    rk.progress = progress;
    rk.pctx = ctx;
    TRY(zap_lmdb_err(mdb_txn_begin(db->env, NULL, 0, &rk.txn)));
    kek_copy(db, kek);
    TRY(hdr_get(db, rk.txn, kek, h));
    TRY(zap_hdr_refresh(db, rk.txn, NULL)); /* every generation loaded */
    for (uint32_t i = 0; i < h->ndeks; i++)
        max_gen = h->dek_gen[i] > max_gen ? h->dek_gen[i] : max_gen;
    ENSURE(max_gen < UINT32_MAX, ZAP_EINTERNAL);
    rk.gen = max_gen + 1;
    kc_random(h->dek[0], ZAP_KEYBYTES);
    zap_rec_subkey(h->dek[0], sub);
    rk.sub = sub;
    TRY(zap_lmdb_err(mdb_stat(rk.txn, db->dbi_buckets, &sb)));
    TRY(zap_lmdb_err(mdb_stat(rk.txn, db->dbi_records, &sr)));
    rk.total = (uint64_t)sb.ms_entries + sr.ms_entries;
    TRY(reseal_all(&rk, db->dbi_buckets));
    TRY(reseal_all(&rk, db->dbi_records));
    h->ndeks = 1;
    h->dek_gen[0] = h->cur_gen = rk.gen;
    TRY(hdr_put(db, rk.txn, h, kek));
    ENSURE(!progress || !progress(ctx, rk.done, rk.total), ZAP_EBUSY);
    mrc = mdb_txn_commit(rk.txn);
    rk.txn = NULL;
    TRY(zap_lmdb_err(mrc));
    pthread_mutex_lock(&db->mu);
    if (!zap_slot_add(db, rk.gen, sub))
        db->hdr_cache_len = 0;
    pthread_mutex_unlock(&db->mu);
out:
    if (rk.txn)
        mdb_txn_abort(rk.txn);
    if (rc == ZAP_EBUSY && db)
        zap_detail(db, "rekey cancelled; store unchanged");
    scratch_free(&rk.k);
    scratch_free(&rk.v);
    scratch_free(&rk.out);
    kc_secure_free(h);
    kc_secure_free(sub);
    kc_secure_free(kek);
    return rc;
}

/* ---- verify ----------------------------------------------------------- */

typedef struct verify_ctx {
    zap_db *db;
    MDB_txn *txn;
    zap_verify_fn bad_fn;
    void *bad_ctx;
    zap_progress_fn progress;
    void *pctx;
    zap_verify_report rep;
    uint64_t total, done;
    scratch k, v;
    uint8_t cur_hb[ZAP_HB_LEN];
    bool have_hb;
    char *cur_name;
    size_t cur_name_len;
    uint64_t pos;
} verify_ctx;

static void
verify_bad(verify_ctx *vc, const char *bucket, uint64_t pos)
{
    vc->rep.bad++;
    if (vc->bad_fn)
        vc->bad_fn(vc->bad_ctx, bucket, pos, ZAP_ECORRUPT);
}

static zap_err
verify_tick(verify_ctx *vc)
{
    vc->done++;
    if (vc->progress && vc->done % PROGRESS_EVERY == 0 &&
        vc->progress(vc->pctx, vc->done, vc->total))
        return ZAP_EBUSY;
    return ZAP_OK;
}

static zap_err
verify_buckets(verify_ctx *vc)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    uint64_t pos = 0;
    char *name;
    size_t len;
    zap_err rc;
    int mrc;

    TRY(zap_lmdb_err(mdb_cursor_open(vc->txn, vc->db->dbi_buckets, &c)));
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT), pos++) {
        rc = k.mv_size == ZAP_HB_LEN
                 ? zap_bucket_name(vc->db, vc->txn, k.mv_data, &v, &name, &len)
                 : ZAP_ECORRUPT;
        if (rc == ZAP_OK) {
            vc->rep.buckets++;
            kc_free_wipe(name, len + 1);
        } else if (rc == ZAP_ECORRUPT) {
            verify_bad(vc, NULL, pos);
        } else {
            goto out;
        }
        TRY(verify_tick(vc));
    }
    ENSURE(mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    rc = ZAP_OK;
out:
    if (c)
        mdb_cursor_close(c);
    return rc;
}

/* Switch to the bucket of record key `rkey`: look its name up (NULL when
 * the bucket record is missing or bad). */
static zap_err
verify_enter_bucket(verify_ctx *vc, const uint8_t *rkey)
{
    MDB_val k = {ZAP_HB_LEN, (void *)rkey}, v;
    zap_err rc = ZAP_OK;
    int mrc;

    if (vc->have_hb && memcmp(vc->cur_hb, rkey, ZAP_HB_LEN) == 0)
        return ZAP_OK;
    if (vc->cur_name)
        kc_free_wipe(vc->cur_name, vc->cur_name_len + 1);
    vc->cur_name = NULL;
    memcpy(vc->cur_hb, rkey, ZAP_HB_LEN);
    vc->have_hb = true;
    vc->pos = 0;
    mrc = mdb_get(vc->txn, vc->db->dbi_buckets, &k, &v);
    if (mrc == MDB_SUCCESS) {
        rc = zap_bucket_name(vc->db, vc->txn, rkey, &v, &vc->cur_name,
                             &vc->cur_name_len);
        if (rc == ZAP_ECORRUPT)
            rc = ZAP_OK; /* already counted by verify_buckets */
    } else if (mrc != MDB_NOTFOUND) {
        rc = zap_lmdb_err(mrc);
    }
    return rc;
}

static zap_err
verify_record(verify_ctx *vc, const MDB_val *k, const MDB_val *v)
{
    uint8_t tag[ZAP_BTAG_LEN], check[ZAP_RKEY_LEN];
    const uint8_t *sub;
    zap_rec r;
    zap_err rc;

    TRY(zap_rec_parse(v, &r));
    ENSURE(r.type == ZAP_REC_RECORD && vc->cur_name, ZAP_ECORRUPT);
    sub = zap_gen_key(vc->db, vc->txn, r.gen, &rc);
    ENSURE(sub, rc);
    ENSURE(scratch_need(&vc->k, r.klen) && scratch_need(&vc->v, r.vlen),
           ZAP_ENOMEM);
    TRY(zap_rec_open_k(&r, sub, k->mv_data, ZAP_RKEY_LEN, vc->k.p));
    TRY(zap_rec_open_vk(&r, sub, k->mv_data, ZAP_RKEY_LEN, vc->k.p, vc->v.p));
    /* The key must hash to its slot under its bucket's tag. */
    TRY(zap_bucket_hash(vc->db, vc->cur_name, NULL, tag));
    TRY(zap_key_hash(vc->db, tag, vc->k.p, r.klen, check));
    ENSURE(kc_ct_eq(check, k->mv_data, ZAP_RKEY_LEN), ZAP_ECORRUPT);
out:
    return rc;
}

static zap_err
verify_records(verify_ctx *vc)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    zap_err rc;
    int mrc;

    TRY(zap_lmdb_err(mdb_cursor_open(vc->txn, vc->db->dbi_records, &c)));
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        vc->rep.records++;
        if (k.mv_size != ZAP_RKEY_LEN) {
            verify_bad(vc, NULL, vc->pos++);
            continue;
        }
        TRY(verify_enter_bucket(vc, k.mv_data));
        rc = verify_record(vc, &k, &v);
        if (rc == ZAP_ECORRUPT)
            verify_bad(vc, vc->cur_name, vc->pos);
        else if (rc != ZAP_OK)
            goto out;
        vc->pos++;
        TRY(verify_tick(vc));
    }
    ENSURE(mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    rc = ZAP_OK;
out:
    if (c)
        mdb_cursor_close(c);
    return rc;
}

zap_err
zap_verify(zap_db *db, zap_verify_fn bad_fn, void *bad_ctx,
           zap_progress_fn progress, void *ctx, zap_verify_report *report)
{
    verify_ctx vc;
    MDB_stat sb, sr;
    zap_err rc;

    memset(&vc, 0, sizeof vc);
    if (report)
        memset(report, 0, sizeof *report);
    ENSURE(db, ZAP_EINVAL);
    vc.db = db;
    vc.bad_fn = bad_fn;
    vc.bad_ctx = bad_ctx;
    vc.progress = progress;
    vc.pctx = ctx;
    TRY(zap_rtxn_get(db, &vc.txn));
    TRY(zap_lmdb_err(mdb_stat(vc.txn, db->dbi_buckets, &sb)));
    TRY(zap_lmdb_err(mdb_stat(vc.txn, db->dbi_records, &sr)));
    vc.total = (uint64_t)sb.ms_entries + sr.ms_entries;
    TRY(verify_buckets(&vc));
    TRY(verify_records(&vc));
    if (progress)
        progress(ctx, vc.done, vc.total);
    rc = vc.rep.bad ? ZAP_ECORRUPT : ZAP_OK;
    if (rc != ZAP_OK)
        zap_detail(db, "%llu record(s) failed authentication",
                   (unsigned long long)vc.rep.bad);
out:
    if (vc.txn)
        zap_rtxn_put(db, vc.txn);
    if (vc.cur_name)
        kc_free_wipe(vc.cur_name, vc.cur_name_len + 1);
    scratch_free(&vc.k);
    scratch_free(&vc.v);
    if (report)
        *report = vc.rep;
    return rc;
}

/* ---- stats ------------------------------------------------------------ */

zap_err
zap_get_stats(zap_db *db, zap_stats *st)
{
    MDB_txn *txn = NULL;
    MDB_stat sb, sr;
    MDB_envinfo info;
    struct stat fsb;
    uint32_t gen = 0;
    zap_err rc;
    int fd;

    ENSURE(db && st, ZAP_EINVAL);
    memset(st, 0, sizeof *st);
    TRY(zap_rtxn_get(db, &txn));
    TRY(zap_hdr_refresh(db, txn, &gen));
    TRY(zap_lmdb_err(mdb_stat(txn, db->dbi_buckets, &sb)));
    TRY(zap_lmdb_err(mdb_stat(txn, db->dbi_records, &sr)));
    TRY(zap_lmdb_err(mdb_env_info(db->env, &info)));
    TRY(zap_lmdb_err(mdb_env_get_fd(db->env, &fd)));
    ENSURE(fstat(fd, &fsb) == 0, ZAP_EIO);
    st->records = sr.ms_entries;
    st->buckets = sb.ms_entries;
    st->file_bytes = (uint64_t)fsb.st_size;
    st->map_bytes = info.me_mapsize;
    st->page_size = sr.ms_psize;
    st->tree_depth = sr.ms_depth;
    st->dek_generation = gen;
    st->format_version = ZAP_FORMAT_VERSION;
    pthread_mutex_lock(&db->mu);
    kc_strlcpy(st->kdf, db->kdf == ZAP_KDF_RAW ? "raw" : "argon2id",
               sizeof st->kdf);
    st->kdf_opslimit = db->opslimit;
    st->kdf_memlimit = db->memlimit;
    pthread_mutex_unlock(&db->mu);
out:
    if (txn)
        zap_rtxn_put(db, txn);
    return rc;
}
