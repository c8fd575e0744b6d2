/* SPDX-License-Identifier: Apache-2.0 */
/* Internal declarations shared by the ZapDB sources (never installed).
 * The on-disk format is described in docs/zapdb.md; the constants below are
 * its single source of truth in code. */
#ifndef ZAP_INT_H
#define ZAP_INT_H

#include "zapdb/zapdb.h"

#include <lmdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <sys/types.h>

#define ZAP_FORMAT_VERSION 2u

/* Hb = the first ZAP_HB_LEN bytes of the bucket tag, BLAKE2b-128(K_bucket,
 * name); records are keyed Hb || Hk with Hk = SipHash-2-4-128(K_key[0..16],
 * bucket tag || key). Collisions are detected, never aliased: see
 * docs/zapdb.md, "Records". */
#define ZAP_HB_LEN   8u  /* LMDB key of a bucket, prefix of its records */
#define ZAP_BTAG_LEN 16u /* full keyed hash of a bucket name */
#define ZAP_HK_LEN   16u /* keyed PRF of (bucket tag || key) */
#define ZAP_RKEY_LEN (ZAP_HB_LEN + ZAP_HK_LEN)
#define ZAP_NONCE    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define ZAP_TAG      crypto_aead_xchacha20poly1305_ietf_ABYTES    /* 16 */
#define ZAP_KEYBYTES 32u
#define ZAP_SUBKEYS  (2u * ZAP_KEYBYTES) /* key-segment || value-segment */

/* Record value: ver u8 | type u8 | gen u32le | klen u32le | nonce (24) |
 * ct_k (klen + tag) [| ct_v (vlen + tag)]  (no value segment in bucket
 * records). The key segment is sealed with the generation's key subkey,
 * the value segment with its value subkey, both under the one fresh random
 * nonce (two different keys: no nonce reuse). AD of the key segment:
 * LMDB key || 'K' || the 10-byte record header; AD of the value segment:
 * LMDB key || 'V' || everything before ct_v (header, nonce, ct_k) || the
 * plaintext key, so any change to any byte of a record fails the value's
 * authentication, and so does reading it for another key (a hash
 * collision). */
#define ZAP_REC_HDR    10u
#define ZAP_REC_RECORD 1u
#define ZAP_REC_BUCKET 2u

/* Header record (meta sub-database, key "header"). */
#define ZAP_HDR_MAGIC     "ZAPDB\0H1"
#define ZAP_HDR_FIXED     56u
#define ZAP_HDR_WRAP      (ZAP_NONCE + ZAP_KEYBYTES + ZAP_TAG) /* 72 */
#define ZAP_HDR_DEK_ENTRY (4u + ZAP_HDR_WRAP)                  /* 76 */
#define ZAP_HDR_MAX_DEKS  4u
#define ZAP_HDR_MAX                                                            \
    (ZAP_HDR_FIXED + ZAP_HDR_WRAP + ZAP_HDR_MAX_DEKS * ZAP_HDR_DEK_ENTRY)
#define ZAP_SALT_LEN 16u

#define ZAP_KDF_ARGON2ID 1u
#define ZAP_KDF_RAW      2u
/* Caps on KDF parameters read from a header or a backup file, so a hostile
 * file cannot make an open or a restore run for hours. */
#define ZAP_OPS_MIN      1u
#define ZAP_OPS_MAX      64u
#define ZAP_MEM_MIN      8192u
#define ZAP_MEM_MAX      (4ull * 1024u * 1024u * 1024u)
#define ZAP_DEFAULT_OPS  3u
#define ZAP_DEFAULT_MEM  (64u * 1024u * 1024u)
#define ZAP_DEFAULT_MAP  (16ull * 1024u * 1024u * 1024u)
#define ZAP_MAX_PASSWORD (1024u * 1024u)

#define ZAP_DB_META    "zapdb.meta"
#define ZAP_DB_BUCKETS "zapdb.buckets"
#define ZAP_DB_RECORDS "zapdb.records"
#define ZAP_META_HDR   "header"

#define ZAP_MAX_SLOTS 64u /* DEK generations a handle can hold */
#define ZAP_POOL_MAX  16u /* idle read transactions kept for reuse */

typedef struct zap_slot {
    uint32_t gen;
    uint8_t key[ZAP_SUBKEYS]; /* record subkeys derived from the DEK */
} zap_slot;

/* Parsed header; `deks` hold the plaintext DEKs only while a function that
 * owns the struct runs (it lives in secure memory or is wiped). */
typedef struct zap_hdr {
    uint32_t version;
    uint8_t kdf;
    uint64_t opslimit, memlimit;
    uint8_t salt[ZAP_SALT_LEN];
    uint32_t cur_gen;
    uint32_t ndeks;
    uint8_t nk[ZAP_KEYBYTES];
    uint32_t dek_gen[ZAP_HDR_MAX_DEKS];
    uint8_t dek[ZAP_HDR_MAX_DEKS][ZAP_KEYBYTES];
} zap_hdr;

struct zap_db {
    MDB_env *env;
    /* Process-wide registry of open stores (zap_core.c): LMDB forbids
     * opening one environment twice in a process (closing either drops the
     * process's file locks), so a second open is refused. */
    bool registered;
    dev_t dev;
    ino_t ino;
    struct zap_db *reg_next;
    MDB_dbi dbi_meta, dbi_buckets, dbi_records;
    uint64_t id;
    bool rdonly;
    /* Secure memory: KEK, name subkeys (bucket || key), DEK slots. */
    uint8_t *kek;
    uint8_t *names;
    zap_slot *slots;
    _Atomic uint32_t nslots;
    /* Guarded by mu: header cache and the parameters it holds. */
    pthread_mutex_t mu;
    uint8_t kdf;
    uint64_t opslimit, memlimit;
    uint32_t cur_gen;
    uint8_t hdr_cache[ZAP_HDR_MAX];
    size_t hdr_cache_len;
    /* Idle read transactions (reset), reused by single-operation reads. */
    pthread_mutex_t pool_mu;
    MDB_txn *pool[ZAP_POOL_MAX];
    size_t pool_len;
};

struct zap_txn {
    zap_db *db;
    MDB_txn *txn;
    bool rdonly;
    zap_err err;         /* sticky failure of a write transaction */
    uint32_t wgen;       /* generation new records are sealed with */
    const uint8_t *wkey; /* its record subkey (a slot of db) */
    bool hb_known;       /* hb_ok is the tag of a bucket known to exist */
    uint8_t hb_ok[ZAP_BTAG_LEN];
};

/* Parsed view of a record value (pointers into LMDB's map). */
typedef struct zap_rec {
    uint8_t type;
    uint32_t gen;
    const uint8_t *hdr; /* first ZAP_REC_HDR bytes */
    const uint8_t *nonce, *ct_k;
    size_t klen;
    const uint8_t *ct_v; /* NULL in bucket records */
    size_t vlen;
} zap_rec;

/* ---- zap_aead.c ------------------------------------------------------- */
/* XChaCha20-Poly1305 whose associated data is the concatenation of `nad`
 * parts. `c` receives mlen + ZAP_TAG bytes; open returns 0 or -1 (and then
 * writes nothing to `m`). */
typedef struct zap_part {
    const uint8_t *p;
    size_t len;
} zap_part;
void zap_aead_seal(uint8_t *c, const uint8_t *m, size_t mlen,
                   const zap_part *ad, size_t nad,
                   const uint8_t nonce[ZAP_NONCE],
                   const uint8_t key[ZAP_KEYBYTES]);
int zap_aead_open(uint8_t *m, const uint8_t *c, size_t clen, const zap_part *ad,
                  size_t nad, const uint8_t nonce[ZAP_NONCE],
                  const uint8_t key[ZAP_KEYBYTES]);

/* ---- zap_core.c ------------------------------------------------------- */
zap_err zap_lmdb_err(int rc);
void zap_detail(zap_db *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The bucket tag (ZAP_BTAG_LEN bytes); its first ZAP_HB_LEN bytes are Hb. */
zap_err zap_bucket_hash(zap_db *db, const char *bucket, size_t *name_len,
                        uint8_t tag[ZAP_BTAG_LEN]);
zap_err zap_key_hash(const zap_db *db, const uint8_t tag[ZAP_BTAG_LEN],
                     const uint8_t *key, size_t key_len,
                     uint8_t rkey[ZAP_RKEY_LEN]);
/* Record subkeys (ZAP_SUBKEYS bytes) for `gen`, reloading the header from `txn`
 * when the handle does not know the generation yet. NULL with *rc set on
 * failure. */
const uint8_t *zap_gen_key(zap_db *db, MDB_txn *txn, uint32_t gen, zap_err *rc);
/* Re-read the header inside `txn`; returns the current generation. */
zap_err zap_hdr_refresh(zap_db *db, MDB_txn *txn, uint32_t *cur_gen);
zap_err zap_hdr_parse(const uint8_t *buf, size_t len, zap_hdr *h);
zap_err zap_hdr_unwrap(const uint8_t *buf, size_t len, const uint8_t *kek,
                       zap_hdr *h);
size_t zap_hdr_build(const zap_hdr *h, const uint8_t *kek,
                     uint8_t out[ZAP_HDR_MAX]);
zap_err zap_kek_derive(uint8_t kdf, const char *pw, size_t pw_len,
                       const uint8_t *raw, const uint8_t salt[ZAP_SALT_LEN],
                       uint64_t ops, uint64_t mem, uint8_t kek[ZAP_KEYBYTES]);
void zap_rec_subkey(const uint8_t dek[ZAP_KEYBYTES], uint8_t out[ZAP_SUBKEYS]);
bool zap_slot_add(zap_db *db, uint32_t gen, const uint8_t key[ZAP_SUBKEYS]);

/* Record sealing and opening. */
bool zap_rec_size(uint8_t type, size_t klen, size_t vlen, size_t *out);
void zap_rec_seal(uint8_t *out, uint8_t type, uint32_t gen,
                  const uint8_t *key32, const uint8_t *rkey, size_t rkey_len,
                  const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
zap_err zap_rec_parse(const MDB_val *v, zap_rec *r);
zap_err zap_rec_open_k(const zap_rec *r, const uint8_t *key32,
                       const uint8_t *rkey, size_t rkey_len, uint8_t *out);
/* Open the value segment of a record holding `k` (r->klen bytes: the key
 * the caller asked for, or the one it decrypted from the key segment).
 * ZAP_ECORRUPT if it fails, which includes a record of another key. */
zap_err zap_rec_open_vk(const zap_rec *r, const uint8_t *key32,
                        const uint8_t *rkey, size_t rkey_len, const uint8_t *k,
                        uint8_t *out);
/* zap_rec_open_k, then zap_rec_open_vk with the key it decrypted. */
zap_err zap_rec_open_v(const zap_rec *r, const uint8_t *key32,
                       const uint8_t *rkey, size_t rkey_len, uint8_t *out);

/* Read transactions from the pool. */
zap_err zap_rtxn_get(zap_db *db, MDB_txn **out);
void zap_rtxn_put(zap_db *db, MDB_txn *txn);

/* ---- zap_ops.c -------------------------------------------------------- */
/* Decrypt the bucket record at `hb` into a NUL-terminated allocation
 * (zap_free(name, len + 1)). */
zap_err zap_bucket_name(zap_db *db, MDB_txn *txn, const uint8_t *hb,
                        const MDB_val *v, char **name, size_t *len);

#endif
