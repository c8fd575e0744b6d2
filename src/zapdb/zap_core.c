/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB core: errors, key hierarchy, header, record sealing, open/close.
 * Formats are documented in docs/zapdb.md. */
#include "zap_int.h"

#include "kc.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static _Atomic uint64_t zap_next_id = 1;

/* Stores open in this process, by data file identity. The lock is held
 * across fork() so the child gets a consistent list, which it then empties:
 * a child must not use its parent's handles (LMDB rule) and may open the
 * stores itself. */
static pthread_mutex_t zap_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t zap_reg_once = PTHREAD_ONCE_INIT;
static zap_db *zap_reg_head;

static void
reg_prepare(void)
{
    pthread_mutex_lock(&zap_reg_mu);
}

static void
reg_parent(void)
{
    pthread_mutex_unlock(&zap_reg_mu);
}

static void
reg_child(void)
{
    zap_reg_head = NULL;
    pthread_mutex_unlock(&zap_reg_mu);
}

static void
reg_init(void)
{
    pthread_atfork(reg_prepare, reg_parent, reg_child);
}

/* Caller holds zap_reg_mu. */
static bool
reg_has(dev_t dev, ino_t ino)
{
    for (const zap_db *d = zap_reg_head; d; d = d->reg_next)
        if (d->dev == dev && d->ino == ino)
            return true;
    return false;
}

static void
reg_remove(zap_db *db)
{
    pthread_mutex_lock(&zap_reg_mu);
    for (zap_db **pp = &zap_reg_head; *pp; pp = &(*pp)->reg_next)
        if (*pp == db) {
            *pp = db->reg_next;
            break;
        }
    db->registered = false;
    pthread_mutex_unlock(&zap_reg_mu);
}

/* Per-thread diagnostics and bucket-hash cache, tagged with the handle id
 * so that a stale entry of a closed handle is never used. */
static _Thread_local struct {
    uint64_t id;
    char msg[192];
} zap_tls_detail;

static _Thread_local struct {
    uint64_t id;
    size_t len;
    uint8_t tag[ZAP_BTAG_LEN];
    char name[ZAP_MAX_BUCKET];
} zap_tls_bucket;

/* ---- little-endian helpers -------------------------------------------- */

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- errors ----------------------------------------------------------- */

const char *
zap_strerror(zap_err err)
{
    static const char *const msgs[] = {
#define ZAP_X_MSG(name, msg) msg,
        ZAP_ERROR_TABLE(ZAP_X_MSG)
#undef ZAP_X_MSG
    };
    if ((unsigned)err >= (unsigned)ZAP_ERR_COUNT)
        return "unknown error";
    return msgs[err];
}

/* The one place LMDB (and errno) codes become zap_err. */
zap_err
zap_lmdb_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return ZAP_OK;
    case MDB_NOTFOUND:
        return ZAP_ENOTFOUND;
    case MDB_KEYEXIST:
    case EEXIST:
        return ZAP_EEXIST;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
        return ZAP_EFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
        return ZAP_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return ZAP_EVERSION;
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
    case EACCES:
    case EAGAIN:
    case EBUSY:
        return ZAP_EBUSY;
    case MDB_BAD_VALSIZE:
        return ZAP_ETOOBIG;
    case ENOMEM:
        return ZAP_ENOMEM;
    case ENOENT:
        return ZAP_ENOSTORE;
    case EROFS:
        return ZAP_ERDONLY;
    case EINVAL:
        return ZAP_EINVAL;
    case MDB_PANIC:
    case EIO:
        return ZAP_EIO;
    default:
        return rc > 0 ? ZAP_EIO : ZAP_EINTERNAL;
    }
}

void
zap_detail(zap_db *db, const char *fmt, ...)
{
    va_list ap;

    if (!db)
        return;
    zap_tls_detail.id = db->id;
    va_start(ap, fmt);
    vsnprintf(zap_tls_detail.msg, sizeof zap_tls_detail.msg, fmt, ap);
    va_end(ap);
}

const char *
zap_last_error_detail(zap_db *db)
{
    if (!db || zap_tls_detail.id != db->id)
        return "";
    return zap_tls_detail.msg;
}

void
zap_opts_default(zap_opts *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->kdf_opslimit = ZAP_DEFAULT_OPS;
    opts->kdf_memlimit = ZAP_DEFAULT_MEM;
    opts->map_size = (size_t)ZAP_DEFAULT_MAP;
    opts->sync = ZAP_SYNC_FULL;
}

void
zap_free(void *p, size_t len)
{
    kc_free_wipe(p, len);
}

/* ---- hashing and keys ------------------------------------------------- */

/* tag = BLAKE2b-128(K_bucket, name); Hb, its first ZAP_HB_LEN bytes, is the
 * bucket's LMDB key and its records' prefix. */
zap_err
zap_bucket_hash(zap_db *db, const char *bucket, size_t *name_len,
                uint8_t tag[ZAP_BTAG_LEN])
{
    size_t len;

    if (!bucket)
        return ZAP_EINVAL;
    len = strnlen(bucket, ZAP_MAX_BUCKET + 1);
    if (len == 0 || len > ZAP_MAX_BUCKET)
        return ZAP_EINVAL;
    if (name_len)
        *name_len = len;
    if (zap_tls_bucket.id == db->id && zap_tls_bucket.len == len &&
        memcmp(zap_tls_bucket.name, bucket, len) == 0) {
        memcpy(tag, zap_tls_bucket.tag, ZAP_BTAG_LEN);
        return ZAP_OK;
    }
    crypto_generichash(tag, ZAP_BTAG_LEN, (const uint8_t *)bucket, len,
                       db->names, ZAP_KEYBYTES);
    zap_tls_bucket.id = db->id;
    zap_tls_bucket.len = len;
    memcpy(zap_tls_bucket.name, bucket, len);
    memcpy(zap_tls_bucket.tag, tag, ZAP_BTAG_LEN);
    return ZAP_OK;
}

/* rkey = Hb || Hk, Hk = SipHash-2-4-128(K_key[0..16], tag || key): a
 * 128-bit keyed PRF of the bucket and key. The full 128-bit bucket tag goes
 * in, so two buckets whose 64-bit Hb collide still map their keys to
 * unrelated slots. A collision of Hk is detected by the record's
 * authentication (the key is in the value segment's AD), never aliased.
 * Keys longer than ZAP_HK_STACK bytes are staged in a heap buffer. */
#define ZAP_HK_STACK 512u

zap_err
zap_key_hash(const zap_db *db, const uint8_t tag[ZAP_BTAG_LEN],
             const uint8_t *key, size_t key_len, uint8_t rkey[ZAP_RKEY_LEN])
{
    uint8_t stage[ZAP_BTAG_LEN + ZAP_HK_STACK], *buf = stage;
    size_t n = ZAP_BTAG_LEN + key_len;

    if (key_len > ZAP_MAX_KEY)
        return ZAP_ETOOBIG;
    if (key_len > ZAP_HK_STACK && !(buf = malloc(n)))
        return ZAP_ENOMEM;
    memcpy(buf, tag, ZAP_BTAG_LEN);
    memcpy(buf + ZAP_BTAG_LEN, key, key_len);
    crypto_shorthash_siphashx24(rkey + ZAP_HB_LEN, buf, n,
                                db->names + ZAP_KEYBYTES);
    memcpy(rkey, tag, ZAP_HB_LEN);
    if (buf != stage)
        kc_free_wipe(buf, n);
    else
        kc_wipe(stage, n);
    return ZAP_OK;
}

zap_err
zap_kek_derive(uint8_t kdf, const char *pw, size_t pw_len, const uint8_t *raw,
               const uint8_t salt[ZAP_SALT_LEN], uint64_t ops, uint64_t mem,
               uint8_t kek[ZAP_KEYBYTES])
{
    static const char label[] = "zapdb raw kek v1";
    crypto_generichash_state st;

    if (kdf == ZAP_KDF_RAW) {
        if (!raw)
            return ZAP_EINVAL;
        crypto_generichash_init(&st, raw, ZAP_KEY_LEN, ZAP_KEYBYTES);
        crypto_generichash_update(&st, (const uint8_t *)label,
                                  sizeof label - 1);
        crypto_generichash_update(&st, salt, ZAP_SALT_LEN);
        crypto_generichash_final(&st, kek, ZAP_KEYBYTES);
        kc_wipe(&st, sizeof st);
        return ZAP_OK;
    }
    if (kdf != ZAP_KDF_ARGON2ID || !pw || ops < ZAP_OPS_MIN ||
        ops > ZAP_OPS_MAX || mem < ZAP_MEM_MIN || mem > ZAP_MEM_MAX ||
        mem > SIZE_MAX)
        return ZAP_EINVAL;
    if (crypto_pwhash(kek, ZAP_KEYBYTES, pw, pw_len, salt, ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ZAP_ENOMEM;
    return ZAP_OK;
}

void
zap_rec_subkey(const uint8_t dek[ZAP_KEYBYTES], uint8_t out[ZAP_SUBKEYS])
{
    crypto_kdf_derive_from_key(out, ZAP_KEYBYTES, 1, "zapdbrec", dek);
    crypto_kdf_derive_from_key(out + ZAP_KEYBYTES, ZAP_KEYBYTES, 2, "zapdbrec",
                               dek);
}

static void
names_derive(const uint8_t nk[ZAP_KEYBYTES], uint8_t out[2 * ZAP_KEYBYTES])
{
    crypto_kdf_derive_from_key(out, ZAP_KEYBYTES, 1, "zapdbnam", nk);
    crypto_kdf_derive_from_key(out + ZAP_KEYBYTES, ZAP_KEYBYTES, 2, "zapdbnam",
                               nk);
}

/* Caller holds db->mu (or owns db exclusively). */
bool
zap_slot_add(zap_db *db, uint32_t gen, const uint8_t key[ZAP_SUBKEYS])
{
    uint32_t n = atomic_load_explicit(&db->nslots, memory_order_acquire);

    for (uint32_t i = 0; i < n; i++)
        if (db->slots[i].gen == gen)
            return true;
    if (n >= ZAP_MAX_SLOTS)
        return false;
    db->slots[n].gen = gen;
    memcpy(db->slots[n].key, key, ZAP_SUBKEYS);
    atomic_store_explicit(&db->nslots, n + 1, memory_order_release);
    return true;
}

static const uint8_t *
slot_find(zap_db *db, uint32_t gen)
{
    uint32_t n = atomic_load_explicit(&db->nslots, memory_order_acquire);

    for (uint32_t i = 0; i < n; i++)
        if (db->slots[i].gen == gen)
            return db->slots[i].key;
    return NULL;
}

const uint8_t *
zap_gen_key(zap_db *db, MDB_txn *txn, uint32_t gen, zap_err *rc)
{
    const uint8_t *k = slot_find(db, gen);

    if (k)
        return k;
    *rc = zap_hdr_refresh(db, txn, NULL);
    if (*rc != ZAP_OK)
        return NULL;
    k = slot_find(db, gen);
    if (!k) {
        *rc = ZAP_ECORRUPT;
        zap_detail(db, "record sealed with unknown key generation %u",
                   (unsigned)gen);
    }
    return k;
}

/* ---- header ----------------------------------------------------------- */

static size_t
hdr_ad(uint8_t ad[ZAP_HDR_FIXED + 5], const uint8_t *fixed, uint8_t label,
       uint32_t gen)
{
    memcpy(ad, fixed, ZAP_HDR_FIXED);
    ad[ZAP_HDR_FIXED] = label;
    put_le32(ad + ZAP_HDR_FIXED + 1, gen);
    return ZAP_HDR_FIXED + 5;
}

static void
wrap_key(uint8_t *out, const uint8_t *fixed, uint8_t label, uint32_t gen,
         const uint8_t key[ZAP_KEYBYTES], const uint8_t *kek)
{
    uint8_t ad[ZAP_HDR_FIXED + 5];
    size_t ad_len = hdr_ad(ad, fixed, label, gen);

    kc_random(out, ZAP_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + ZAP_NONCE, NULL, key, ZAP_KEYBYTES, ad, ad_len, NULL, out, kek);
}

static bool
unwrap_key(const uint8_t *in, const uint8_t *fixed, uint8_t label, uint32_t gen,
           uint8_t key[ZAP_KEYBYTES], const uint8_t *kek)
{
    uint8_t ad[ZAP_HDR_FIXED + 5];
    size_t ad_len = hdr_ad(ad, fixed, label, gen);

    return crypto_aead_xchacha20poly1305_ietf_decrypt(
               key, NULL, NULL, in + ZAP_NONCE, ZAP_KEYBYTES + ZAP_TAG, ad,
               ad_len, in, kek) == 0;
}

size_t
zap_hdr_build(const zap_hdr *h, const uint8_t *kek, uint8_t out[ZAP_HDR_MAX])
{
    uint8_t *p;

    memset(out, 0, ZAP_HDR_FIXED);
    memcpy(out, ZAP_HDR_MAGIC, 8);
    put_le32(out + 8, h->version);
    out[12] = h->kdf;
    put_le64(out + 16, h->opslimit);
    put_le64(out + 24, h->memlimit);
    memcpy(out + 32, h->salt, ZAP_SALT_LEN);
    put_le32(out + 48, h->cur_gen);
    put_le32(out + 52, h->ndeks);
    wrap_key(out + ZAP_HDR_FIXED, out, 'N', 0, h->nk, kek);
    p = out + ZAP_HDR_FIXED + ZAP_HDR_WRAP;
    for (uint32_t i = 0; i < h->ndeks; i++, p += ZAP_HDR_DEK_ENTRY) {
        put_le32(p, h->dek_gen[i]);
        wrap_key(p + 4, out, 'D', h->dek_gen[i], h->dek[i], kek);
    }
    return (size_t)(p - out);
}

/* Parse the plaintext fields (no key material). */
zap_err
zap_hdr_parse(const uint8_t *buf, size_t len, zap_hdr *h)
{
    const uint8_t *p;
    bool cur_found = false;

    if (len < ZAP_HDR_FIXED || memcmp(buf, ZAP_HDR_MAGIC, 8) != 0)
        return ZAP_ECORRUPT;
    h->version = get_le32(buf + 8);
    if (h->version != ZAP_FORMAT_VERSION)
        return ZAP_EVERSION;
    h->kdf = buf[12];
    h->opslimit = get_le64(buf + 16);
    h->memlimit = get_le64(buf + 24);
    memcpy(h->salt, buf + 32, ZAP_SALT_LEN);
    h->cur_gen = get_le32(buf + 48);
    h->ndeks = get_le32(buf + 52);
    if (buf[13] || buf[14] || buf[15])
        return ZAP_ECORRUPT;
    if (h->kdf == ZAP_KDF_ARGON2ID) {
        if (h->opslimit < ZAP_OPS_MIN || h->opslimit > ZAP_OPS_MAX ||
            h->memlimit < ZAP_MEM_MIN || h->memlimit > ZAP_MEM_MAX)
            return ZAP_ECORRUPT;
    } else if (h->kdf != ZAP_KDF_RAW || h->opslimit || h->memlimit) {
        return ZAP_ECORRUPT;
    }
    if (h->ndeks < 1 || h->ndeks > ZAP_HDR_MAX_DEKS ||
        len != ZAP_HDR_FIXED + ZAP_HDR_WRAP + h->ndeks * ZAP_HDR_DEK_ENTRY)
        return ZAP_ECORRUPT;
    p = buf + ZAP_HDR_FIXED + ZAP_HDR_WRAP;
    for (uint32_t i = 0; i < h->ndeks; i++, p += ZAP_HDR_DEK_ENTRY) {
        h->dek_gen[i] = get_le32(p);
        for (uint32_t j = 0; j < i; j++)
            if (h->dek_gen[j] == h->dek_gen[i])
                return ZAP_ECORRUPT;
        cur_found |= h->dek_gen[i] == h->cur_gen;
    }
    return cur_found ? ZAP_OK : ZAP_ECORRUPT;
}

/* Parse and unwrap. The name key failing to open means the KEK is wrong
 * (ZAP_EAUTH); a DEK failing after that means tampering (ZAP_ECORRUPT). */
zap_err
zap_hdr_unwrap(const uint8_t *buf, size_t len, const uint8_t *kek, zap_hdr *h)
{
    const uint8_t *p;
    zap_err rc = zap_hdr_parse(buf, len, h);

    if (rc != ZAP_OK)
        return rc;
    if (!unwrap_key(buf + ZAP_HDR_FIXED, buf, 'N', 0, h->nk, kek))
        return ZAP_EAUTH;
    p = buf + ZAP_HDR_FIXED + ZAP_HDR_WRAP;
    for (uint32_t i = 0; i < h->ndeks; i++, p += ZAP_HDR_DEK_ENTRY)
        if (!unwrap_key(p + 4, buf, 'D', h->dek_gen[i], h->dek[i], kek))
            return ZAP_ECORRUPT;
    return ZAP_OK;
}

/* Load DEK generations from an unwrapped header into db (db->mu held). */
static zap_err
hdr_install(zap_db *db, const zap_hdr *h, const uint8_t *raw, size_t raw_len)
{
    uint8_t sub[ZAP_SUBKEYS];
    zap_err rc = ZAP_OK;

    for (uint32_t i = 0; i < h->ndeks; i++) {
        zap_rec_subkey(h->dek[i], sub);
        if (!zap_slot_add(db, h->dek_gen[i], sub)) {
            zap_detail(db, "too many key generations; reopen the store");
            rc = ZAP_EINTERNAL;
            break;
        }
    }
    kc_wipe(sub, sizeof sub);
    if (rc != ZAP_OK)
        return rc;
    db->kdf = h->kdf;
    db->opslimit = h->opslimit;
    db->memlimit = h->memlimit;
    db->cur_gen = h->cur_gen;
    memcpy(db->hdr_cache, raw, raw_len);
    db->hdr_cache_len = raw_len;
    return ZAP_OK;
}

zap_err
zap_hdr_refresh(zap_db *db, MDB_txn *txn, uint32_t *cur_gen)
{
    MDB_val k = {sizeof ZAP_META_HDR - 1, (void *)ZAP_META_HDR}, v;
    zap_hdr *h = NULL;
    uint8_t names[2 * ZAP_KEYBYTES];
    zap_err rc;
    bool locked = false;

    TRY(zap_lmdb_err(mdb_get(txn, db->dbi_meta, &k, &v)));
    ENSURE(v.mv_size <= ZAP_HDR_MAX, ZAP_ECORRUPT);
    pthread_mutex_lock(&db->mu);
    locked = true;
    if (v.mv_size == db->hdr_cache_len &&
        memcmp(v.mv_data, db->hdr_cache, v.mv_size) == 0) {
        if (cur_gen)
            *cur_gen = db->cur_gen;
        rc = ZAP_OK;
        goto out;
    }
    h = kc_secure_alloc(sizeof *h);
    ENSURE(h, ZAP_ENOMEM);
    rc = zap_hdr_unwrap(v.mv_data, v.mv_size, db->kek, h);
    if (rc == ZAP_EAUTH)
        zap_detail(db, "store key was changed by another handle; reopen");
    TRY(rc);
    names_derive(h->nk, names);
    ENSURE(kc_ct_eq(names, db->names, sizeof names), ZAP_ECORRUPT);
    TRY(hdr_install(db, h, v.mv_data, v.mv_size));
    if (cur_gen)
        *cur_gen = db->cur_gen;
out:
    if (locked)
        pthread_mutex_unlock(&db->mu);
    if (rc == ZAP_ECORRUPT)
        zap_detail(db, "store header failed authentication");
    kc_wipe(names, sizeof names);
    kc_secure_free(h);
    return rc;
}

/* ---- records ---------------------------------------------------------- */

bool
zap_rec_size(uint8_t type, size_t klen, size_t vlen, size_t *out)
{
    size_t n;

    if (klen > ZAP_MAX_KEY || vlen > ZAP_MAX_VALUE)
        return false;
    n = ZAP_REC_HDR + ZAP_NONCE + klen + ZAP_TAG;
    if (type == ZAP_REC_RECORD)
        n += vlen + ZAP_TAG;
    *out = n;
    return true;
}

void
zap_rec_seal(uint8_t *out, uint8_t type, uint32_t gen, const uint8_t *key32,
             const uint8_t *rkey, size_t rkey_len, const uint8_t *k,
             size_t klen, const uint8_t *v, size_t vlen)
{
    uint8_t *nonce = out + ZAP_REC_HDR;
    size_t prefix = ZAP_REC_HDR + ZAP_NONCE + klen + ZAP_TAG;
    zap_part ad[4] = {{rkey, rkey_len},
                      {(const uint8_t *)"K", 1},
                      {out, ZAP_REC_HDR},
                      {k, klen}};

    out[0] = ZAP_FORMAT_VERSION;
    out[1] = type;
    put_le32(out + 2, gen);
    put_le32(out + 6, (uint32_t)klen);
    kc_random(nonce, ZAP_NONCE);
    zap_aead_seal(nonce + ZAP_NONCE, k, klen, ad, 3, nonce, key32);
    if (type != ZAP_REC_RECORD)
        return;
    ad[1].p = (const uint8_t *)"V";
    ad[2].len = prefix;
    zap_aead_seal(out + prefix, v, vlen, ad, 4, nonce, key32 + ZAP_KEYBYTES);
}

zap_err
zap_rec_parse(const MDB_val *v, zap_rec *r)
{
    const uint8_t *b = v->mv_data;
    size_t need;

    if (v->mv_size < ZAP_REC_HDR || b[0] != ZAP_FORMAT_VERSION)
        return ZAP_ECORRUPT;
    r->hdr = b;
    r->type = b[1];
    r->gen = get_le32(b + 2);
    r->klen = get_le32(b + 6);
    if (r->klen < 1 || r->klen > ZAP_MAX_KEY)
        return ZAP_ECORRUPT;
    need = ZAP_REC_HDR + ZAP_NONCE + r->klen + ZAP_TAG;
    r->nonce = b + ZAP_REC_HDR;
    r->ct_k = r->nonce + ZAP_NONCE;
    if (r->type == ZAP_REC_BUCKET) {
        if (r->klen > ZAP_MAX_BUCKET || v->mv_size != need)
            return ZAP_ECORRUPT;
        r->ct_v = NULL;
        r->vlen = 0;
        return ZAP_OK;
    }
    if (r->type != ZAP_REC_RECORD || v->mv_size < need + ZAP_TAG)
        return ZAP_ECORRUPT;
    r->vlen = v->mv_size - need - ZAP_TAG;
    if (r->vlen > ZAP_MAX_VALUE)
        return ZAP_ECORRUPT;
    r->ct_v = b + need;
    return ZAP_OK;
}

zap_err
zap_rec_open_k(const zap_rec *r, const uint8_t *key32, const uint8_t *rkey,
               size_t rkey_len, uint8_t *out)
{
    zap_part ad[3] = {
        {rkey, rkey_len}, {(const uint8_t *)"K", 1}, {r->hdr, ZAP_REC_HDR}};

    if (zap_aead_open(out, r->ct_k, r->klen + ZAP_TAG, ad, 3, r->nonce,
                      key32) != 0)
        return ZAP_ECORRUPT;
    return ZAP_OK;
}

zap_err
zap_rec_open_vk(const zap_rec *r, const uint8_t *key32, const uint8_t *rkey,
                size_t rkey_len, const uint8_t *k, uint8_t *out)
{
    zap_part ad[4] = {
        {rkey, rkey_len}, {(const uint8_t *)"V", 1}, {r->hdr, 0}, {k, r->klen}};

    if (r->type != ZAP_REC_RECORD)
        return ZAP_ECORRUPT;
    ad[2].len = (size_t)(r->ct_v - r->hdr);
    if (zap_aead_open(out, r->ct_v, r->vlen + ZAP_TAG, ad, 4, r->nonce,
                      key32 + ZAP_KEYBYTES) != 0)
        return ZAP_ECORRUPT;
    return ZAP_OK;
}

zap_err
zap_rec_open_v(const zap_rec *r, const uint8_t *key32, const uint8_t *rkey,
               size_t rkey_len, uint8_t *out)
{
    uint8_t *k;
    zap_err rc;

    if (r->type != ZAP_REC_RECORD)
        return ZAP_ECORRUPT;
    if (!(k = malloc(r->klen)))
        return ZAP_ENOMEM;
    rc = zap_rec_open_k(r, key32, rkey, rkey_len, k);
    if (rc == ZAP_OK)
        rc = zap_rec_open_vk(r, key32, rkey, rkey_len, k, out);
    kc_free_wipe(k, r->klen);
    return rc;
}

/* ---- read transaction pool -------------------------------------------- */

zap_err
zap_rtxn_get(zap_db *db, MDB_txn **out)
{
    MDB_txn *txn = NULL;
    int mrc;

    pthread_mutex_lock(&db->pool_mu);
    if (db->pool_len > 0)
        txn = db->pool[--db->pool_len];
    pthread_mutex_unlock(&db->pool_mu);
    if (txn) {
        if (mdb_txn_renew(txn) == MDB_SUCCESS) {
            *out = txn;
            return ZAP_OK;
        }
        mdb_txn_abort(txn);
    }
    mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (mrc != MDB_SUCCESS) {
        zap_detail(db, "cannot begin read transaction: %s", mdb_strerror(mrc));
        return zap_lmdb_err(mrc);
    }
    *out = txn;
    return ZAP_OK;
}

void
zap_rtxn_put(zap_db *db, MDB_txn *txn)
{
    bool kept = false;

    mdb_txn_reset(txn);
    pthread_mutex_lock(&db->pool_mu);
    if (db->pool_len < ZAP_POOL_MAX) {
        db->pool[db->pool_len++] = txn;
        kept = true;
    }
    pthread_mutex_unlock(&db->pool_mu);
    if (!kept)
        mdb_txn_abort(txn);
}

/* ---- open / close ----------------------------------------------------- */

static zap_err
db_alloc(zap_db **out)
{
    zap_db *db = calloc(1, sizeof *db);

    if (!db)
        return ZAP_ENOMEM;
    db->id = atomic_fetch_add(&zap_next_id, 1);
    db->kek = kc_secure_alloc(ZAP_KEYBYTES);
    db->names = kc_secure_alloc(2 * ZAP_KEYBYTES);
    db->slots = kc_secure_alloc(ZAP_MAX_SLOTS * sizeof(zap_slot));
    atomic_init(&db->nslots, 0);
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->pool_mu, NULL);
    *out = db;
    if (!db->kek || !db->names || !db->slots)
        return ZAP_ENOMEM;
    return ZAP_OK;
}

void
zap_close(zap_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->pool_len; i++)
        mdb_txn_abort(db->pool[i]);
    if (db->env)
        mdb_env_close(db->env);
    if (db->registered)
        reg_remove(db); /* only now: our descriptors are closed */
    kc_secure_free(db->kek);
    kc_secure_free(db->names);
    kc_secure_free(db->slots);
    kc_wipe(db->hdr_cache, sizeof db->hdr_cache);
    if (zap_tls_bucket.id == db->id)
        kc_wipe(&zap_tls_bucket, sizeof zap_tls_bucket);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->pool_mu);
    free(db);
}

zap_err
zap_sync(zap_db *db)
{
    if (!db)
        return ZAP_EINVAL;
    if (db->rdonly)
        return ZAP_OK;
    return zap_lmdb_err(mdb_env_sync(db->env, 1));
}

static zap_err
prepare_dir(const char *path, const zap_opts *o)
{
    char file[PATH_MAX];
    struct stat sb;
    bool create = (o->flags & ZAP_CREATE) && !(o->flags & ZAP_RDONLY);

    if (stat(path, &sb) != 0) {
        if (errno != ENOENT)
            return zap_lmdb_err(errno);
        if (!create)
            return ZAP_ENOSTORE;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return zap_lmdb_err(errno);
    } else if (!S_ISDIR(sb.st_mode)) {
        return ZAP_ENOSTORE;
    }
    if (snprintf(file, sizeof file, "%s/data.mdb", path) >= (int)sizeof file)
        return ZAP_EINVAL;
    if (stat(file, &sb) != 0 && !create)
        return ZAP_ENOSTORE;
    return ZAP_OK;
}

/* mdb_env_open() under the registry lock, refusing a store this process
 * already has open (ZAP_EBUSY). */
static zap_err
env_open_once(zap_db *db, const char *path, unsigned flags)
{
    char file[PATH_MAX];
    struct stat sb;
    zap_err rc = ZAP_OK;
    int fd, mrc;

    if (snprintf(file, sizeof file, "%s/data.mdb", path) >= (int)sizeof file)
        return ZAP_EINVAL;
    pthread_once(&zap_reg_once, reg_init);
    pthread_mutex_lock(&zap_reg_mu);
    if (stat(file, &sb) == 0 && reg_has(sb.st_dev, sb.st_ino)) {
        rc = ZAP_EBUSY;
        goto out;
    }
    mrc = mdb_env_open(db->env, path, flags, 0600);
    if (mrc == MDB_SUCCESS &&
        (mdb_env_get_fd(db->env, &fd) != MDB_SUCCESS || fstat(fd, &sb) != 0))
        mrc = EIO;
    if ((rc = zap_lmdb_err(mrc)) != ZAP_OK)
        goto out;
    db->dev = sb.st_dev;
    db->ino = sb.st_ino;
    db->reg_next = zap_reg_head;
    zap_reg_head = db;
    db->registered = true;
out:
    pthread_mutex_unlock(&zap_reg_mu);
    return rc;
}

static zap_err
env_open(zap_db *db, const char *path, const zap_opts *o)
{
    unsigned flags = MDB_NOTLS;
    MDB_envinfo info;
    MDB_stat st;
    struct stat sb;
    zap_err rc;
    int fd, mrc, dead = 0;

    if (o->sync == ZAP_SYNC_META)
        flags |= MDB_NOMETASYNC;
    else if (o->sync == ZAP_SYNC_NONE)
        flags |= MDB_NOSYNC;
    else if (o->sync != ZAP_SYNC_FULL)
        return ZAP_EINVAL;
    if (db->rdonly)
        flags |= MDB_RDONLY;
    if ((mrc = mdb_env_create(&db->env)) != MDB_SUCCESS)
        return zap_lmdb_err(mrc);
    if ((mrc = mdb_env_set_maxdbs(db->env, 4)) != MDB_SUCCESS ||
        (mrc = mdb_env_set_mapsize(db->env, o->map_size)) != MDB_SUCCESS)
        return zap_lmdb_err(mrc);
    if ((rc = env_open_once(db, path, flags)) != ZAP_OK)
        return rc;
    /* Free reader slots left by processes that died (a crashed reader would
     * otherwise pin old pages and fill the reader table). */
    (void)mdb_reader_check(db->env, &dead);
    /* A data file shorter than its own last page would SIGBUS on access:
     * refuse it up front. */
    if (mdb_env_info(db->env, &info) != MDB_SUCCESS ||
        mdb_env_stat(db->env, &st) != MDB_SUCCESS ||
        mdb_env_get_fd(db->env, &fd) != MDB_SUCCESS || fstat(fd, &sb) != 0)
        return ZAP_EIO;
    if ((uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * st.ms_psize)
        return ZAP_ECORRUPT;
    return ZAP_OK;
}

/* Read the header bytes and open the sub-databases. ZAP_ENOSTORE if the
 * environment holds no ZapDB store yet. */
static zap_err
hdr_read(zap_db *db, uint8_t buf[ZAP_HDR_MAX], size_t *len)
{
    MDB_val k = {sizeof ZAP_META_HDR - 1, (void *)ZAP_META_HDR}, v;
    MDB_txn *txn = NULL;
    zap_err rc;
    int mrc;

    TRY(zap_lmdb_err(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn)));
    mrc = mdb_dbi_open(txn, ZAP_DB_META, 0, &db->dbi_meta);
    ENSURE(mrc != MDB_NOTFOUND, ZAP_ENOSTORE);
    TRY(zap_lmdb_err(mrc));
    mrc = mdb_get(txn, db->dbi_meta, &k, &v);
    ENSURE(mrc != MDB_NOTFOUND, ZAP_ENOSTORE);
    TRY(zap_lmdb_err(mrc));
    ENSURE(v.mv_size <= ZAP_HDR_MAX, ZAP_ECORRUPT);
    memcpy(buf, v.mv_data, v.mv_size);
    *len = v.mv_size;
    mrc = mdb_dbi_open(txn, ZAP_DB_BUCKETS, 0, &db->dbi_buckets);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_dbi_open(txn, ZAP_DB_RECORDS, 0, &db->dbi_records);
    ENSURE(mrc != MDB_NOTFOUND, ZAP_ECORRUPT);
    TRY(zap_lmdb_err(mrc));
    mrc = mdb_txn_commit(txn); /* keeps the dbi handles */
    txn = NULL;
    TRY(zap_lmdb_err(mrc));
out:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

static zap_err
unlock_store(zap_db *db, const uint8_t *buf, size_t len, uint8_t kdf,
             const char *pw, size_t pw_len, const uint8_t *raw)
{
    zap_hdr *h = kc_secure_alloc(sizeof *h);
    zap_err rc;

    ENSURE(h, ZAP_ENOMEM);
    TRY(zap_hdr_parse(buf, len, h));
    ENSURE(h->kdf == kdf, ZAP_EAUTH);
    TRY(zap_kek_derive(kdf, pw, pw_len, raw, h->salt, h->opslimit, h->memlimit,
                       db->kek));
    TRY(zap_hdr_unwrap(buf, len, db->kek, h));
    names_derive(h->nk, db->names);
    TRY(hdr_install(db, h, buf, len));
out:
    kc_secure_free(h);
    return rc;
}

static zap_err
create_store(zap_db *db, const zap_opts *o, uint8_t kdf, const char *pw,
             size_t pw_len, const uint8_t *raw)
{
    MDB_val k = {sizeof ZAP_META_HDR - 1, (void *)ZAP_META_HDR}, v;
    zap_hdr *h = kc_secure_alloc(sizeof *h);
    uint8_t buf[ZAP_HDR_MAX];
    MDB_txn *txn = NULL;
    zap_err rc;
    int mrc;

    ENSURE(h, ZAP_ENOMEM);
    memset(h, 0, sizeof *h);
    h->version = ZAP_FORMAT_VERSION;
    h->kdf = kdf;
    h->opslimit = kdf == ZAP_KDF_RAW ? 0 : o->kdf_opslimit;
    h->memlimit = kdf == ZAP_KDF_RAW ? 0 : o->kdf_memlimit;
    kc_random(h->salt, sizeof h->salt);
    kc_random(h->nk, sizeof h->nk);
    kc_random(h->dek[0], sizeof h->dek[0]);
    h->cur_gen = h->dek_gen[0] = 1;
    h->ndeks = 1;
    TRY(zap_kek_derive(kdf, pw, pw_len, raw, h->salt, h->opslimit, h->memlimit,
                       db->kek));
    v.mv_size = zap_hdr_build(h, db->kek, buf);
    v.mv_data = buf;
    TRY(zap_lmdb_err(mdb_txn_begin(db->env, NULL, 0, &txn)));
    TRY(zap_lmdb_err(
        mdb_dbi_open(txn, ZAP_DB_META, MDB_CREATE, &db->dbi_meta)));
    TRY(zap_lmdb_err(mdb_put(txn, db->dbi_meta, &k, &v, MDB_NOOVERWRITE)));
    TRY(zap_lmdb_err(
        mdb_dbi_open(txn, ZAP_DB_BUCKETS, MDB_CREATE, &db->dbi_buckets)));
    TRY(zap_lmdb_err(
        mdb_dbi_open(txn, ZAP_DB_RECORDS, MDB_CREATE, &db->dbi_records)));
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    TRY(zap_lmdb_err(mrc));
    names_derive(h->nk, db->names);
    TRY(hdr_install(db, h, buf, v.mv_size));
out:
    if (txn)
        mdb_txn_abort(txn);
    kc_secure_free(h);
    return rc; /* ZAP_EEXIST: another process created it first */
}

static zap_err
load_or_create(zap_db *db, const zap_opts *o, uint8_t kdf, const char *pw,
               size_t pw_len, const uint8_t *raw)
{
    uint8_t buf[ZAP_HDR_MAX];
    size_t len = 0;
    zap_err rc = ZAP_EINTERNAL;

    for (int attempt = 0; attempt < 2; attempt++) {
        rc = hdr_read(db, buf, &len);
        if (rc == ZAP_OK) {
            if ((o->flags & ZAP_CREATE) && (o->flags & ZAP_EXCL))
                return ZAP_EEXIST;
            return unlock_store(db, buf, len, kdf, pw, pw_len, raw);
        }
        if (rc != ZAP_ENOSTORE || !(o->flags & ZAP_CREATE) || db->rdonly)
            return rc;
        rc = create_store(db, o, kdf, pw, pw_len, raw);
        if (rc != ZAP_EEXIST)
            return rc;
        if (o->flags & ZAP_EXCL)
            return ZAP_EEXIST;
    }
    return rc;
}

static zap_err
open_common(const char *path, const zap_opts *opts, uint8_t kdf, const char *pw,
            size_t pw_len, const uint8_t *raw, zap_db **out)
{
    zap_opts o;
    zap_db *db = NULL;
    zap_err rc;

    ENSURE(path && out, ZAP_EINVAL);
    *out = NULL;
    if (kdf == ZAP_KDF_ARGON2ID)
        ENSURE(pw && pw_len > 0 && pw_len <= ZAP_MAX_PASSWORD, ZAP_EINVAL);
    else
        ENSURE(raw, ZAP_EINVAL);
    ENSURE(kc_init() == 0, ZAP_EINTERNAL);
    zap_opts_default(&o);
    if (opts) {
        o.flags = opts->flags;
        o.sync = opts->sync;
        if (opts->kdf_opslimit)
            o.kdf_opslimit = opts->kdf_opslimit;
        if (opts->kdf_memlimit)
            o.kdf_memlimit = opts->kdf_memlimit;
        if (opts->map_size)
            o.map_size = opts->map_size;
    }
    ENSURE(o.kdf_opslimit >= ZAP_OPS_MIN && o.kdf_opslimit <= ZAP_OPS_MAX &&
               o.kdf_memlimit >= ZAP_MEM_MIN && o.kdf_memlimit <= ZAP_MEM_MAX,
           ZAP_EINVAL);
    TRY(prepare_dir(path, &o));
    TRY(db_alloc(&db));
    db->rdonly = (o.flags & ZAP_RDONLY) != 0;
    TRY(env_open(db, path, &o));
    TRY(load_or_create(db, &o, kdf, pw, pw_len, raw));
    *out = db;
    db = NULL;
out:
    zap_close(db);
    return rc;
}

zap_err
zap_open(const char *path, const zap_opts *opts, const char *password,
         size_t password_len, zap_db **out)
{
    return open_common(path, opts, ZAP_KDF_ARGON2ID, password, password_len,
                       NULL, out);
}

zap_err
zap_open_key(const char *path, const zap_opts *opts,
             const uint8_t key[ZAP_KEY_LEN], zap_db **out)
{
    return open_common(path, opts, ZAP_KDF_RAW, NULL, 0, key, out);
}
