/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB backup and restore: one encrypted, streamed file.
 *
 * File = 104-byte header || frames; frame = u32le length || one
 * crypto_secretstream_xchacha20poly1305 message. The stream key is
 * BLAKE2b-256(key = KEK, "zapdb backup v1" || file_salt); the first message
 * carries the header as associated data, the stream's own chaining
 * authenticates order and truncation (the last message has TAG_FINAL).
 * Layout and messages are documented in docs/zapdb.md. */
#include "zap_int.h"

#include "kc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

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

#define BK_MAGIC       "ZAPDBBK1"
#define BK_CHECK       "ZAPBKUP1"
#define BK_VERSION     1u
#define BK_HDR_LEN     104u
#define BK_SS_HDR      crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define BK_ABYTES      crypto_secretstream_xchacha20poly1305_ABYTES
#define BK_CHUNK       (1024u * 1024u)
#define BK_MAX_PLAIN   (1u + BK_CHUNK) /* a 'V' frame; 'R' is smaller */
#define BK_MAX_FRAME   (BK_MAX_PLAIN + BK_ABYTES)
#define BK_BATCH_RECS  1000u
#define BK_BATCH_BYTES (64u * 1024u * 1024u)

typedef crypto_secretstream_xchacha20poly1305_state ss_state;

static void
le32_put(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
le64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
le64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void
stream_key(const uint8_t *kek, const uint8_t *file_salt, uint8_t out[32])
{
    static const char label[] = "zapdb backup v1";
    crypto_generichash_state st;

    crypto_generichash_init(&st, kek, ZAP_KEYBYTES, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof label - 1);
    crypto_generichash_update(&st, file_salt, 32);
    crypto_generichash_final(&st, out, 32);
    kc_wipe(&st, sizeof st);
}

/* ---- writer ----------------------------------------------------------- */

typedef struct bk_writer {
    zap_db *db;
    MDB_txn *txn;
    FILE *f;
    ss_state *ss;   /* secure memory */
    uint8_t *plain; /* BK_MAX_PLAIN, wiped */
    uint8_t *frame; /* 4 + BK_MAX_FRAME, ciphertext */
    uint8_t *val;   /* decrypted value, wiped */
    size_t val_cap;
    uint64_t buckets, records, total;
    zap_progress_fn progress;
    void *pctx;
} bk_writer;

static zap_err
bk_emit(bk_writer *w, size_t len, const uint8_t *ad, size_t ad_len, uint8_t tag)
{
    unsigned long long clen = 0;

    crypto_secretstream_xchacha20poly1305_push(w->ss, w->frame + 4, &clen,
                                               w->plain, len, ad, ad_len, tag);
    le32_put(w->frame, (uint32_t)clen);
    if (fwrite(w->frame, 1, 4 + (size_t)clen, w->f) != 4 + (size_t)clen)
        return ZAP_EIO;
    return ZAP_OK;
}

static zap_err
bk_record(bk_writer *w, const MDB_val *k, const MDB_val *v)
{
    const uint8_t *sub;
    zap_rec r;
    zap_err rc;
    size_t off;

    TRY(zap_rec_parse(v, &r));
    ENSURE(r.type == ZAP_REC_RECORD && k->mv_size == ZAP_RKEY_LEN,
           ZAP_ECORRUPT);
    sub = zap_gen_key(w->db, w->txn, r.gen, &rc);
    ENSURE(sub, rc);
    if (r.vlen > w->val_cap) {
        kc_free_wipe(w->val, w->val_cap);
        w->val_cap = 0;
        w->val = malloc(r.vlen);
        ENSURE(w->val, ZAP_ENOMEM);
        w->val_cap = r.vlen;
    }
    w->plain[0] = 'R';
    le32_put(w->plain + 1, (uint32_t)r.klen);
    le32_put(w->plain + 5, (uint32_t)r.vlen);
    TRY(zap_rec_open_k(&r, sub, k->mv_data, ZAP_RKEY_LEN, w->plain + 9));
    TRY(zap_rec_open_vk(&r, sub, k->mv_data, ZAP_RKEY_LEN, w->plain + 9,
                        w->val ? w->val : w->plain + 9 + r.klen));
    TRY(bk_emit(w, 9 + r.klen, NULL, 0, 0));
    for (off = 0; off < r.vlen; off += BK_CHUNK) {
        size_t n = r.vlen - off < BK_CHUNK ? r.vlen - off : BK_CHUNK;
        w->plain[0] = 'V';
        memcpy(w->plain + 1, w->val + off, n);
        TRY(bk_emit(w, 1 + n, NULL, 0, 0));
    }
    w->records++;
    if (w->progress && w->progress(w->pctx, w->records, w->total))
        rc = ZAP_EBUSY;
out:
    return rc;
}

static zap_err
bk_bucket(bk_writer *w, const MDB_val *bk, const MDB_val *bv)
{
    MDB_cursor *c = NULL;
    MDB_val k = *bk, v;
    char *name = NULL;
    size_t len = 0;
    zap_err rc;
    int mrc;

    ENSURE(bk->mv_size == ZAP_HB_LEN, ZAP_ECORRUPT);
    TRY(zap_bucket_name(w->db, w->txn, bk->mv_data, bv, &name, &len));
    w->plain[0] = 'B';
    w->plain[1] = (uint8_t)len;
    memcpy(w->plain + 2, name, len);
    TRY(bk_emit(w, 2 + len, NULL, 0, 0));
    w->buckets++;
    TRY(zap_lmdb_err(mdb_cursor_open(w->txn, w->db->dbi_records, &c)));
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         mrc == MDB_SUCCESS && k.mv_size >= ZAP_HB_LEN &&
         memcmp(k.mv_data, bk->mv_data, ZAP_HB_LEN) == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        TRY(bk_record(w, &k, &v));
    ENSURE(mrc == MDB_SUCCESS || mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    rc = ZAP_OK;
out:
    if (rc == ZAP_ECORRUPT)
        zap_detail(w->db,
                   "bucket '%.64s' holds a record that failed "
                   "authentication; backup aborted",
                   name ? name : "?");
    if (c)
        mdb_cursor_close(c);
    if (name)
        kc_free_wipe(name, len + 1);
    return rc;
}

static zap_err
bk_header(bk_writer *w, uint8_t hdr[BK_HDR_LEN], uint8_t *key)
{
    MDB_val k = {sizeof ZAP_META_HDR - 1, (void *)ZAP_META_HDR}, v;
    zap_hdr *h = kc_secure_alloc(sizeof *h);
    uint8_t *kek = kc_secure_alloc(ZAP_KEYBYTES);
    MDB_stat sb, sr;
    zap_err rc;

    ENSURE(h && kek, ZAP_ENOMEM);
    pthread_mutex_lock(&w->db->mu);
    memcpy(kek, w->db->kek, ZAP_KEYBYTES);
    pthread_mutex_unlock(&w->db->mu);
    TRY(zap_lmdb_err(mdb_get(w->txn, w->db->dbi_meta, &k, &v)));
    /* The backup is keyed from the KEK that wraps this snapshot's header. */
    rc = zap_hdr_unwrap(v.mv_data, v.mv_size, kek, h);
    if (rc == ZAP_EAUTH)
        zap_detail(w->db, "store key changed during backup; retry");
    TRY(rc);
    memset(hdr, 0, BK_HDR_LEN);
    memcpy(hdr, BK_MAGIC, 8);
    le32_put(hdr + 8, BK_VERSION);
    hdr[12] = h->kdf;
    le64_put(hdr + 16, h->opslimit);
    le64_put(hdr + 24, h->memlimit);
    memcpy(hdr + 32, h->salt, ZAP_SALT_LEN);
    kc_random(hdr + 48, 32);
    stream_key(kek, hdr + 48, key);
    crypto_secretstream_xchacha20poly1305_init_push(w->ss, hdr + 80, key);
    TRY(zap_lmdb_err(mdb_stat(w->txn, w->db->dbi_buckets, &sb)));
    TRY(zap_lmdb_err(mdb_stat(w->txn, w->db->dbi_records, &sr)));
    w->total = sr.ms_entries;
    ENSURE(fwrite(hdr, 1, BK_HDR_LEN, w->f) == BK_HDR_LEN, ZAP_EIO);
    memcpy(w->plain, BK_CHECK, 8);
    le64_put(w->plain + 8, sb.ms_entries);
    le64_put(w->plain + 16, sr.ms_entries);
    rc = bk_emit(w, 24, hdr, BK_HDR_LEN, 0);
out:
    kc_secure_free(h);
    kc_secure_free(kek);
    return rc;
}

static zap_err
bk_body(bk_writer *w)
{
    uint8_t hdr[BK_HDR_LEN], key[32];
    MDB_cursor *c = NULL;
    MDB_val k, v;
    zap_err rc;
    int mrc;

    TRY(bk_header(w, hdr, key));
    TRY(zap_lmdb_err(mdb_cursor_open(w->txn, w->db->dbi_buckets, &c)));
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        TRY(bk_bucket(w, &k, &v));
    ENSURE(mrc == MDB_NOTFOUND, zap_lmdb_err(mrc));
    w->plain[0] = 'E';
    le64_put(w->plain + 1, w->buckets);
    le64_put(w->plain + 9, w->records);
    TRY(bk_emit(w, 17, NULL, 0,
                crypto_secretstream_xchacha20poly1305_TAG_FINAL));
out:
    if (c)
        mdb_cursor_close(c);
    kc_wipe(key, sizeof key);
    return rc;
}

static zap_err
fsync_dir_of(const char *file)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(file, '/');
    size_t n;
    int fd, ok;

    if (!slash) {
        file = "./";
        slash = file + 1;
    }
    n = slash == file ? 1 : (size_t)(slash - file);
    if (n >= sizeof dir)
        return ZAP_EINVAL;
    memcpy(dir, file, n);
    dir[n] = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ZAP_EIO;
    ok = fsync(fd) == 0;
    close(fd);
    return ok ? ZAP_OK : ZAP_EIO;
}

zap_err
zap_backup(zap_db *db, const char *file, zap_progress_fn progress, void *ctx)
{
    bk_writer w;
    char tmp[PATH_MAX];
    int fd = -1;
    zap_err rc;

    memset(&w, 0, sizeof w);
    ENSURE(db && file && *file, ZAP_EINVAL);
    ENSURE(snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", file) < (int)sizeof tmp,
           ZAP_EINVAL);
    w.db = db;
    w.progress = progress;
    w.pctx = ctx;
    w.ss = kc_secure_alloc(sizeof *w.ss);
    w.plain = malloc(BK_MAX_PLAIN);
    w.frame = malloc(4 + BK_MAX_FRAME);
    ENSURE(w.ss && w.plain && w.frame, ZAP_ENOMEM);
    fd = mkstemp(tmp); /* mode 0600 */
    ENSURE(fd >= 0, zap_lmdb_err(errno));
    w.f = fdopen(fd, "wb");
    ENSURE(w.f, ZAP_EIO);
    fd = -1;
    TRY(zap_rtxn_get(db, &w.txn));
    TRY(bk_body(&w));
    ENSURE(fflush(w.f) == 0 && fsync(fileno(w.f)) == 0, ZAP_EIO);
    ENSURE(fclose(w.f) == 0, ZAP_EIO);
    w.f = NULL;
    ENSURE(rename(tmp, file) == 0, zap_lmdb_err(errno));
    tmp[0] = '\0';
    TRY(fsync_dir_of(file));
out:
    if (w.txn)
        zap_rtxn_put(db, w.txn);
    if (w.f)
        fclose(w.f);
    if (fd >= 0)
        close(fd);
    if (rc != ZAP_OK && tmp[0] && w.ss)
        unlink(tmp);
    if (rc == ZAP_EIO && db)
        zap_detail(db, "cannot write backup file: %s", strerror(errno));
    kc_secure_free(w.ss);
    kc_free_wipe(w.plain, BK_MAX_PLAIN);
    free(w.frame);
    kc_free_wipe(w.val, w.val_cap);
    return rc;
}

/* ---- reader ----------------------------------------------------------- */

typedef struct bk_reader {
    FILE *f;
    ss_state *ss;
    uint8_t *frame;
    uint8_t *plain;
    size_t plain_len;
    uint8_t tag;
    bool auth_failed; /* the last bk_next() failed authentication */
    zap_db *db;
    zap_txn *txn;
    uint64_t batch_recs, batch_bytes;
    uint64_t buckets, records, total;
    char bucket[ZAP_MAX_BUCKET + 1];
    uint8_t *val;
    size_t val_len;
    zap_progress_fn progress;
    void *pctx;
} bk_reader;

/* Next message; ZAP_ECORRUPT on truncation or a bad frame. */
static zap_err
bk_next(bk_reader *r, const uint8_t *ad, size_t ad_len)
{
    unsigned long long plen = 0;
    uint8_t lenb[4];
    uint32_t clen;

    if (fread(lenb, 1, 4, r->f) != 4)
        return ZAP_ECORRUPT;
    clen = le32_get(lenb);
    if (clen < BK_ABYTES || clen > BK_MAX_FRAME)
        return ZAP_ECORRUPT;
    if (fread(r->frame, 1, clen, r->f) != clen)
        return ZAP_ECORRUPT;
    if (crypto_secretstream_xchacha20poly1305_pull(
            r->ss, r->plain, &plen, &r->tag, r->frame, clen, ad, ad_len) != 0) {
        r->auth_failed = true;
        return ZAP_ECORRUPT;
    }
    r->plain_len = (size_t)plen;
    if (r->tag != 0 &&
        r->tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        return ZAP_ECORRUPT;
    return ZAP_OK;
}

static zap_err
bk_flush(bk_reader *r, bool reopen)
{
    zap_err rc = ZAP_OK;

    if (r->txn) {
        rc = zap_txn_commit(r->txn);
        r->txn = NULL;
    }
    r->batch_recs = r->batch_bytes = 0;
    if (rc == ZAP_OK && reopen)
        rc = zap_txn_begin(r->db, 0, &r->txn);
    return rc;
}

static zap_err
bk_read_value(bk_reader *r, size_t vlen)
{
    size_t off = 0;
    zap_err rc;

    kc_free_wipe(r->val, r->val_len);
    r->val = malloc(vlen ? vlen : 1);
    r->val_len = vlen;
    if (!r->val)
        return ZAP_ENOMEM;
    while (off < vlen) {
        if ((rc = bk_next(r, NULL, 0)) != ZAP_OK)
            return rc;
        if (r->tag != 0 || r->plain_len < 2 || r->plain[0] != 'V' ||
            r->plain_len - 1 > vlen - off)
            return ZAP_ECORRUPT;
        memcpy(r->val + off, r->plain + 1, r->plain_len - 1);
        off += r->plain_len - 1;
    }
    return ZAP_OK;
}

static zap_err
bk_apply_record(bk_reader *r)
{
    uint8_t *key = NULL;
    size_t klen, vlen;
    zap_err rc;

    ENSURE(r->bucket[0] && r->plain_len >= 9, ZAP_ECORRUPT);
    klen = le32_get(r->plain + 1);
    vlen = le32_get(r->plain + 5);
    ENSURE(klen >= 1 && klen <= ZAP_MAX_KEY && vlen <= ZAP_MAX_VALUE &&
               r->plain_len == 9 + klen,
           ZAP_ECORRUPT);
    key = malloc(klen);
    ENSURE(key, ZAP_ENOMEM);
    memcpy(key, r->plain + 9, klen);
    TRY(bk_read_value(r, vlen));
    TRY(zap_txn_put(r->txn, r->bucket, key, klen, r->val, vlen));
    r->records++;
    r->batch_recs++;
    r->batch_bytes += vlen;
    if (r->batch_recs >= BK_BATCH_RECS || r->batch_bytes >= BK_BATCH_BYTES)
        TRY(bk_flush(r, true));
    if (r->progress && r->progress(r->pctx, r->records, r->total))
        rc = ZAP_EBUSY;
out:
    if (key)
        kc_free_wipe(key, klen);
    return rc;
}

static zap_err
bk_apply_bucket(bk_reader *r)
{
    size_t len;
    zap_err rc;

    if (r->plain_len < 3 || r->plain[1] != r->plain_len - 2)
        return ZAP_ECORRUPT;
    len = r->plain[1];
    memcpy(r->bucket, r->plain + 2, len);
    r->bucket[len] = '\0';
    if (strlen(r->bucket) != len)
        return ZAP_ECORRUPT;
    r->buckets++;
    rc = zap_txn_bucket_create(r->txn, r->bucket);
    return rc == ZAP_EEXIST ? ZAP_ECORRUPT : rc;
}

static zap_err
bk_apply_all(bk_reader *r)
{
    zap_err rc;

    TRY(zap_txn_begin(r->db, 0, &r->txn));
    for (;;) {
        TRY(bk_next(r, NULL, 0));
        ENSURE(r->plain_len >= 1, ZAP_ECORRUPT);
        if (r->tag != 0)
            break;
        switch (r->plain[0]) {
        case 'B':
            TRY(bk_apply_bucket(r));
            break;
        case 'R':
            TRY(bk_apply_record(r));
            break;
        default:
            rc = ZAP_ECORRUPT;
            goto out;
        }
    }
    ENSURE(r->plain[0] == 'E' && r->plain_len == 17 &&
               le64_get(r->plain + 1) == r->buckets &&
               le64_get(r->plain + 9) == r->records,
           ZAP_ECORRUPT);
    ENSURE(fgetc(r->f) == EOF, ZAP_ECORRUPT);
    TRY(bk_flush(r, false));
out:
    return rc;
}

/* Header, key derivation and the first message: nothing is created on
 * disk before this succeeds. */
static zap_err
bk_open(bk_reader *r, uint8_t kdf, const char *pw, size_t pw_len,
        const uint8_t *raw, zap_opts *o)
{
    uint8_t hdr[BK_HDR_LEN], *kek = kc_secure_alloc(ZAP_KEYBYTES);
    uint8_t key[32];
    uint64_t ops, mem;
    zap_err rc;

    ENSURE(kek, ZAP_ENOMEM);
    ENSURE(fread(hdr, 1, BK_HDR_LEN, r->f) == BK_HDR_LEN &&
               memcmp(hdr, BK_MAGIC, 8) == 0 && !hdr[13] && !hdr[14] &&
               !hdr[15],
           ZAP_ECORRUPT);
    ENSURE(le32_get(hdr + 8) == BK_VERSION, ZAP_EVERSION);
    ENSURE(hdr[12] == ZAP_KDF_ARGON2ID || hdr[12] == ZAP_KDF_RAW, ZAP_ECORRUPT);
    ENSURE(hdr[12] == kdf, ZAP_EAUTH);
    ops = le64_get(hdr + 16);
    mem = le64_get(hdr + 24);
    if (kdf == ZAP_KDF_ARGON2ID)
        ENSURE(ops >= ZAP_OPS_MIN && ops <= ZAP_OPS_MAX && mem >= ZAP_MEM_MIN &&
                   mem <= ZAP_MEM_MAX,
               ZAP_ECORRUPT);
    TRY(zap_kek_derive(kdf, pw, pw_len, raw, hdr + 32, ops, mem, kek));
    stream_key(kek, hdr + 48, key);
    ENSURE(crypto_secretstream_xchacha20poly1305_init_pull(r->ss, hdr + 80,
                                                           key) == 0,
           ZAP_ECORRUPT);
    rc = bk_next(r, hdr, BK_HDR_LEN);
    if (rc == ZAP_ECORRUPT && r->auth_failed)
        rc = ZAP_EAUTH; /* first message: wrong password (or a damaged
                         * header, which cannot be told apart) */
    TRY(rc);
    ENSURE(r->tag == 0 && r->plain_len == 24 &&
               memcmp(r->plain, BK_CHECK, 8) == 0,
           ZAP_ECORRUPT);
    r->total = le64_get(r->plain + 16);
    if (!o->kdf_opslimit)
        o->kdf_opslimit = ops;
    if (!o->kdf_memlimit)
        o->kdf_memlimit = (size_t)mem;
out:
    kc_secure_free(kek);
    kc_wipe(key, sizeof key);
    return rc;
}

static bool
dir_is_empty(const char *dir, bool *exists)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool empty = true;

    *exists = d != NULL || errno != ENOENT;
    if (!d)
        return !*exists;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = false;
    closedir(d);
    return empty;
}

static zap_err
restore_common(const char *file, const char *dir, const zap_opts *opts,
               uint8_t kdf, const char *pw, size_t pw_len, const uint8_t *raw,
               zap_progress_fn progress, void *ctx)
{
    bk_reader r;
    zap_opts o;
    bool exists = false, created = false;
    zap_err rc;

    memset(&r, 0, sizeof r);
    ENSURE(file && dir && *dir, ZAP_EINVAL);
    if (kdf == ZAP_KDF_ARGON2ID)
        ENSURE(pw && pw_len > 0 && pw_len <= ZAP_MAX_PASSWORD, ZAP_EINVAL);
    else
        ENSURE(raw, ZAP_EINVAL);
    ENSURE(kc_init() == 0, ZAP_EINTERNAL);
    ENSURE(dir_is_empty(dir, &exists), ZAP_EEXIST);
    r.progress = progress;
    r.pctx = ctx;
    r.ss = kc_secure_alloc(sizeof *r.ss);
    r.plain = malloc(BK_MAX_PLAIN);
    r.frame = malloc(BK_MAX_FRAME);
    ENSURE(r.ss && r.plain && r.frame, ZAP_ENOMEM);
    r.f = fopen(file, "rb");
    ENSURE(r.f, zap_lmdb_err(errno));
    if (opts) {
        o = *opts;
    } else {
        zap_opts_default(&o);
        o.kdf_opslimit = 0;
        o.kdf_memlimit = 0;
    }
    TRY(bk_open(&r, kdf, pw, pw_len, raw, &o));
    o.flags = ZAP_CREATE | ZAP_EXCL;
    o.sync = ZAP_SYNC_NONE; /* one zap_sync() at the end */
    created = true;
    rc = kdf == ZAP_KDF_RAW ? zap_open_key(dir, &o, raw, &r.db)
                            : zap_open(dir, &o, pw, pw_len, &r.db);
    TRY(rc);
    TRY(bk_apply_all(&r));
    TRY(zap_sync(r.db));
out:
    zap_txn_abort(r.txn);
    zap_close(r.db);
    if (r.f)
        fclose(r.f);
    if (rc != ZAP_OK && created)
        kc_rmtree(dir);
    kc_secure_free(r.ss);
    kc_free_wipe(r.plain, BK_MAX_PLAIN);
    free(r.frame);
    kc_free_wipe(r.val, r.val_len);
    return rc;
}

zap_err
zap_restore(const char *file, const char *dir, const zap_opts *opts,
            const char *password, size_t password_len, zap_progress_fn progress,
            void *ctx)
{
    return restore_common(file, dir, opts, ZAP_KDF_ARGON2ID, password,
                          password_len, NULL, progress, ctx);
}

zap_err
zap_restore_key(const char *file, const char *dir, const zap_opts *opts,
                const uint8_t key[ZAP_KEY_LEN], zap_progress_fn progress,
                void *ctx)
{
    return restore_common(file, dir, opts, ZAP_KDF_RAW, NULL, 0, key, progress,
                          ctx);
}
