/* SPDX-License-Identifier: Apache-2.0 */
/* ZapDB: an embedded key-value store in which every key, value and bucket
 * name is encrypted at rest (XChaCha20-Poly1305), on top of LMDB.
 *
 * THREAD SAFETY
 *   A zap_db handle may be shared by any number of threads. Any number of
 *   read transactions may run at once, in any threads; one write
 *   transaction at a time per store (a second writer blocks until the first
 *   commits or aborts, across processes too). A zap_txn and a zap_iter
 *   belong to the thread that created them and must not be used from
 *   another. A thread holding a write transaction must not start another
 *   write (zap_put, zap_rekey, ...) on the same store: it would wait for
 *   itself. Several processes may open the same store; they see each
 *   other's commits. Within one process a store is opened once and the
 *   handle shared: a second zap_open of an open store returns ZAP_EBUSY
 *   (LMDB's file locks break when one file is opened twice in a process).
 *   After fork(), the child must not use the parent's handles; it may open
 *   the store itself.
 *
 * OWNERSHIP
 *   Every buffer the library returns (values, keys, lists) is allocated for
 *   the caller, who releases it with zap_free() (which wipes it first).
 *   Pointers handed out by an iterator stay valid only until the next
 *   zap_iter_next() or zap_iter_close() on it.
 *
 * LIMITS
 *   Keys: 1 byte to ZAP_MAX_KEY bytes (an empty key is ZAP_EINVAL).
 *   Values: 0 to ZAP_MAX_VALUE bytes. Bucket names: 1 to ZAP_MAX_BUCKET
 *   bytes of any value except NUL.
 */
#ifndef ZAPDB_H
#define ZAPDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZAP_MAX_KEY    (64u * 1024u)
#define ZAP_MAX_VALUE  (64u * 1024u * 1024u)
#define ZAP_MAX_BUCKET 255u
#define ZAP_KEY_LEN    32u /* raw key size for zap_open_key() */

/* One table of errors and messages; zap_strerror() never returns NULL. */
#define ZAP_ERROR_TABLE(X)                                                     \
    X(ZAP_OK, "success")                                                       \
    X(ZAP_ENOTFOUND, "not found")                                              \
    X(ZAP_EAUTH, "wrong password or key")                                      \
    X(ZAP_ECORRUPT, "store is corrupt or has been tampered with")              \
    X(ZAP_EIO, "I/O error")                                                    \
    X(ZAP_EFULL, "store is full (map size reached)")                           \
    X(ZAP_EINVAL, "invalid argument")                                          \
    X(ZAP_EBUSY, "store is busy or locked")                                    \
    X(ZAP_ENOMEM, "out of memory")                                             \
    X(ZAP_EEXIST, "already exists")                                            \
    X(ZAP_ERDONLY, "store or transaction is read-only")                        \
    X(ZAP_ETOOBIG, "key or value too large")                                   \
    X(ZAP_EVERSION, "unsupported store format version")                        \
    X(ZAP_ENOSTORE, "no store at this path")                                   \
    X(ZAP_EINTERNAL, "internal error")

typedef enum {
#define ZAP_X_ENUM(name, msg) name,
    ZAP_ERROR_TABLE(ZAP_X_ENUM)
#undef ZAP_X_ENUM
        ZAP_ERR_COUNT
} zap_err;

/* Static message for an error code; unknown codes give "unknown error". */
const char *zap_strerror(zap_err err);

typedef struct zap_db zap_db;
typedef struct zap_txn zap_txn;
typedef struct zap_iter zap_iter;

typedef enum {
    ZAP_SYNC_FULL = 0, /* fsync on every commit (default): durable */
    ZAP_SYNC_META,     /* flush data, skip metadata fsync (MDB_NOMETASYNC):
                        * the last commits may be lost on power failure,
                        * never the store's integrity */
    ZAP_SYNC_NONE,     /* no fsync (MDB_NOSYNC): for bulk loads and tests;
                        * zap_sync() makes everything durable */
} zap_sync_mode;

/* Flags for zap_opts.flags. */
#define ZAP_CREATE 0x1u /* create the store if the directory has none */
#define ZAP_EXCL   0x2u /* with ZAP_CREATE: ZAP_EEXIST if a store exists */
#define ZAP_RDONLY 0x4u /* open read-only: writes return ZAP_ERDONLY */

typedef struct zap_opts {
    unsigned flags;
    /* Argon2id cost, used when a store is created (later opens read the
     * cost from the store's authenticated header). 0 picks the default:
     * opslimit 3, memlimit 64 MiB (libsodium's "moderate"-class cost).
     * Minimums: opslimit 1, memlimit 8 KiB (tests only); maximums: opslimit
     * 64, memlimit 4 GiB (a header or backup asking for more is refused). */
    uint64_t kdf_opslimit;
    size_t kdf_memlimit;
    /* Largest size the data file may grow to; 0 picks 16 GiB (the file
     * grows as needed, this reserves address space only). */
    size_t map_size;
    zap_sync_mode sync;
} zap_opts;

/* Fill `opts` with the defaults (flags 0). */
void zap_opts_default(zap_opts *opts);

/* Open the store in directory `path` with a password of `password_len`
 * bytes (need not be NUL-terminated). The directory must exist unless
 * opts->flags has ZAP_CREATE, which creates it (mode 0700) and a new store
 * with a fresh random DEK. `opts` may be NULL for the defaults.
 * The password is copied only into the KDF; the caller keeps ownership.
 * Returns ZAP_OK, ZAP_EAUTH (wrong password: nothing is modified),
 * ZAP_ENOSTORE (no store and no ZAP_CREATE), ZAP_EEXIST (ZAP_EXCL),
 * ZAP_ECORRUPT (header damaged, data file truncated), ZAP_EVERSION,
 * ZAP_EBUSY (locked, or already open in this process), ZAP_EIO,
 * ZAP_EINVAL (empty password, NULL arguments, bad options). */
zap_err zap_open(const char *path, const zap_opts *opts, const char *password,
                 size_t password_len, zap_db **out);

/* The same with a raw 32-byte key-encryption key instead of a password
 * (for callers whose KMS returns key material); no KDF runs. A store
 * created with a password cannot be opened with a raw key, nor the reverse
 * (ZAP_EAUTH). */
zap_err zap_open_key(const char *path, const zap_opts *opts,
                     const uint8_t key[ZAP_KEY_LEN], zap_db **out);

/* Close the store, wipe every key it held. NULL is a no-op. All
 * transactions and iterators must be finished first. */
void zap_close(zap_db *db);

/* Make every commit durable now (useful with ZAP_SYNC_NONE/META). */
zap_err zap_sync(zap_db *db);

/* Release a buffer the library returned (wipes `len` bytes first).
 * NULL is a no-op. */
void zap_free(void *p, size_t len);

/* ---- single-operation calls (each one transaction) -------------------- */

/* Get a copy of the value of `key` in `bucket`; *val (free with zap_free)
 * and *val_len are set on ZAP_OK. ZAP_ENOTFOUND if the bucket or the key is
 * missing; ZAP_ECORRUPT if the record fails authentication. */
zap_err zap_get(zap_db *db, const char *bucket, const uint8_t *key,
                size_t key_len, uint8_t **val, size_t *val_len);
/* Insert or replace. Creates the bucket when it does not exist.
 * Keys are stored under a 128-bit keyed hash (docs/zapdb.md): should the
 * slot of `key` hold a different key (a hash collision, about 2^-64 even
 * for billions of keys in one bucket), or the bucket's 64-bit slot prefix
 * a different bucket name, put writes nothing and returns ZAP_EINTERNAL
 * with the detail "key hash collision"; get and del of the colliding key
 * return ZAP_ENOTFOUND and never touch the other key's record. */
zap_err zap_put(zap_db *db, const char *bucket, const uint8_t *key,
                size_t key_len, const uint8_t *val, size_t val_len);
/* Delete; ZAP_ENOTFOUND if absent. */
zap_err zap_del(zap_db *db, const char *bucket, const uint8_t *key,
                size_t key_len);
/* *exists set on ZAP_OK (a missing bucket is simply "does not exist").
 * Reports whether the key's slot is occupied, without decrypting it; the
 * record is authenticated when it is read (get, iteration, verify). */
zap_err zap_exists(zap_db *db, const char *bucket, const uint8_t *key,
                   size_t key_len, bool *exists);

/* ---- buckets ----------------------------------------------------------- */

/* Create an empty bucket; ZAP_EEXIST if it exists. */
zap_err zap_bucket_create(zap_db *db, const char *bucket);
/* Delete a bucket and every record in it; ZAP_ENOTFOUND if absent. */
zap_err zap_bucket_drop(zap_db *db, const char *bucket);
/* Names of all buckets, sorted bytewise. *names is an array of *count
 * NUL-terminated strings; release it with zap_list_free(). */
zap_err zap_bucket_list(zap_db *db, char ***names, size_t *count);
void zap_list_free(char **names, size_t count);

/* ---- transactions ----------------------------------------------------- */

#define ZAP_TXN_RDONLY 0x1u /* a read snapshot */

/* Begin a transaction: a consistent snapshot for reads; with no flags also
 * the store's single writer. Returns ZAP_ERDONLY for a write transaction on
 * a read-only store. */
zap_err zap_txn_begin(zap_db *db, unsigned flags, zap_txn **out);
/* Commit every change atomically (one fsync with ZAP_SYNC_FULL) and free
 * the transaction, whatever the result. ZAP_EFULL if the map is full: then
 * nothing was applied. Committing a read transaction just ends it. */
zap_err zap_txn_commit(zap_txn *txn);
/* Discard every change and free the transaction. NULL is a no-op. */
void zap_txn_abort(zap_txn *txn);

zap_err zap_txn_get(zap_txn *txn, const char *bucket, const uint8_t *key,
                    size_t key_len, uint8_t **val, size_t *val_len);
zap_err zap_txn_put(zap_txn *txn, const char *bucket, const uint8_t *key,
                    size_t key_len, const uint8_t *val, size_t val_len);
zap_err zap_txn_del(zap_txn *txn, const char *bucket, const uint8_t *key,
                    size_t key_len);
zap_err zap_txn_exists(zap_txn *txn, const char *bucket, const uint8_t *key,
                       size_t key_len, bool *exists);
/* Create an empty bucket inside a write transaction; ZAP_EEXIST if it
 * exists, ZAP_ERDONLY in a read transaction. (Added with the first
 * implementation; zap_txn_put creates buckets implicitly.) */
zap_err zap_txn_bucket_create(zap_txn *txn, const char *bucket);
/* Number of records in `bucket` (ZAP_ENOTFOUND if the bucket is missing). */
zap_err zap_txn_count(zap_txn *txn, const char *bucket, uint64_t *count);

/* ---- iteration --------------------------------------------------------- */

/* Iterate `bucket` in ascending bytewise key order, within the
 * transaction's snapshot. Only keys beginning with `prefix` (NULL or
 * length 0: all) and not less than `start` (NULL: from the first) are
 * visited. Keys are stored under a keyed hash, so opening an iterator
 * decrypts and sorts the bucket's keys (O(n log n)); values are decrypted
 * lazily, one per step. ZAP_ENOTFOUND if the bucket is missing. */
zap_err zap_iter_open(zap_txn *txn, const char *bucket, const uint8_t *prefix,
                      size_t prefix_len, const uint8_t *start, size_t start_len,
                      zap_iter **out);
/* Next record: ZAP_OK with key and value (either out pointer may be NULL
 * to skip it; skipping the value skips its decryption), ZAP_ENOTFOUND at
 * the end, ZAP_ECORRUPT if a record fails authentication. */
zap_err zap_iter_next(zap_iter *it, const uint8_t **key, size_t *key_len,
                      const uint8_t **val, size_t *val_len);
void zap_iter_close(zap_iter *it);

/* ---- operations -------------------------------------------------------- */

/* Change the password: re-wraps the DEKs under a key derived from the new
 * password with a fresh salt; records are untouched, so the cost does not
 * depend on the store's size. `opts` may give a new KDF cost (NULL or 0
 * fields: keep). A store opened with a raw key changes to the new raw key
 * with zap_change_key(); the other combination is ZAP_EINVAL. Both are
 * atomic and return ZAP_ERDONLY on a read-only handle. Other handles on the
 * same store keep working but must be reopened to follow a later rekey. */
zap_err zap_change_password(zap_db *db, const char *new_password,
                            size_t new_password_len, const zap_opts *opts);
zap_err zap_change_key(zap_db *db, const uint8_t new_key[ZAP_KEY_LEN]);

/* Progress callback for long operations: `done` of `total` records (total
 * may be 0 when unknown). Return non-zero to cancel (the operation then
 * returns ZAP_EBUSY and leaves the store as it was). */
typedef int (*zap_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Rotate the DEK: generate a new one and re-encrypt every record with it,
 * in one LMDB write transaction. Crash-safe: after a crash at any point the
 * store opens and reads correctly, with the old or the new DEK. Blocks
 * other writers while it runs; readers go on. Needs free map space about
 * the size of the data (copy-on-write), else ZAP_EFULL and no change.
 * The progress callback is called every 256 records and once at the end. */
zap_err zap_rekey(zap_db *db, zap_progress_fn progress, void *ctx);

/* One authentication failure found by zap_verify(). */
typedef struct zap_verify_report {
    uint64_t records; /* records checked */
    uint64_t bad;     /* records that failed authentication */
    uint64_t buckets; /* buckets checked */
} zap_verify_report;

/* Called for each bad record: the bucket's name (NULL if the bucket record
 * itself is bad or missing; then `position` counts bucket records) and the
 * record's 0-based position within the bucket's storage order (the order
 * of the keyed hashes, not of the keys). Never given plaintext of the
 * record. `err` is ZAP_ECORRUPT. */
typedef void (*zap_verify_fn)(void *ctx, const char *bucket, uint64_t position,
                              zap_err err);

/* Decrypt and authenticate every record. Returns ZAP_OK if all are good,
 * ZAP_ECORRUPT if any is bad (each reported through `bad_fn`, may be
 * NULL); `report` (may be NULL) gets the counts either way. */
zap_err zap_verify(zap_db *db, zap_verify_fn bad_fn, void *bad_ctx,
                   zap_progress_fn progress, void *ctx,
                   zap_verify_report *report);

/* Consistent online backup: writes one self-contained encrypted file
 * (mode 0600, written atomically) from a read snapshot while writers go
 * on. The backup is protected by the store's current KEK (same password
 * or raw key) and carries its own authenticated header. ZAP_ECORRUPT (and
 * no file) if a record fails authentication. The progress callback is
 * called once per record. */
zap_err zap_backup(zap_db *db, const char *file, zap_progress_fn progress,
                   void *ctx);

/* Restore a backup file into a new store at `dir` (must not exist or be
 * empty: else ZAP_EEXIST), unlocked with the password (or raw key) the
 * backup was made with. The new store keeps that password, with fresh salt
 * and keys; its KDF cost comes from `opts` (non-zero fields) or else from
 * the backup; opts->flags and opts->sync are ignored (the restore writes
 * without fsync and syncs once at the end). ZAP_EAUTH for a wrong password
 * (nothing is created), ZAP_ECORRUPT for a damaged or truncated file (then
 * `dir` is removed), ZAP_ENOSTORE if `file` does not exist. The progress
 * callback gets records restored of the backup's total. */
zap_err zap_restore(const char *file, const char *dir, const zap_opts *opts,
                    const char *password, size_t password_len,
                    zap_progress_fn progress, void *ctx);
zap_err zap_restore_key(const char *file, const char *dir, const zap_opts *opts,
                        const uint8_t key[ZAP_KEY_LEN],
                        zap_progress_fn progress, void *ctx);

typedef struct zap_stats {
    uint64_t records; /* records in all buckets */
    uint64_t buckets;
    uint64_t file_bytes; /* size of the data file */
    uint64_t map_bytes;  /* configured map size */
    uint64_t page_size;
    uint64_t tree_depth;     /* LMDB B+tree depth */
    uint64_t dek_generation; /* increments with each zap_rekey() */
    uint32_t format_version;
    char kdf[16]; /* "argon2id" or "raw" */
    uint64_t kdf_opslimit;
    uint64_t kdf_memlimit;
} zap_stats;

zap_err zap_get_stats(zap_db *db, zap_stats *st);

/* A short diagnostic for the last error on this handle in this thread
 * (for example which bucket failed authentication). Never contains key
 * material or plaintext. Empty string if none. */
const char *zap_last_error_detail(zap_db *db);

#ifdef __cplusplus
}
#endif
#endif
