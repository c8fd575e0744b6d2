/* SPDX-License-Identifier: Apache-2.0 */
/* kmsd storage interface: tables of opaque keys and values, with
 * transactions. Backends: ZapDB (store_zap.c, the default, encrypted at
 * rest) and process memory (store_mem.c, for tests and fuzzing). A future
 * PostgreSQL backend implements the same vtable; kmsd encrypts records
 * before they reach such a backend.
 *
 * THREAD SAFETY
 *   A kms_store may be used from any number of threads. A kms_txn belongs
 *   to the thread that began it. One write transaction runs at a time
 *   (others block); read transactions see a consistent snapshot.
 *
 * OWNERSHIP
 *   Values returned by kms_txn_get() belong to the caller, who releases
 *   them with kms_store_free() (which wipes them). Keys and values given to
 *   a scan callback are valid only during the callback.
 */
#ifndef KMSD_STORE_H
#define KMSD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    KMS_ST_OK = 0,
    KMS_ST_NOTFOUND,
    KMS_ST_IO, /* backend failure (I/O, corruption, full) */
    KMS_ST_INVAL,
    KMS_ST_NOMEM,
} kms_st_err;

/* Scan callback: return 0 to go on, non-zero to stop (not an error). */
typedef int (*kms_scan_fn)(void *ctx, const uint8_t *key, size_t key_len,
                           const uint8_t *val, size_t val_len);

typedef struct kms_store_ops {
    const char *name;
    kms_st_err (*begin)(void *self, bool rdonly, void **txn);
    kms_st_err (*commit)(void *txn);
    void (*abort)(void *txn);
    kms_st_err (*get)(void *txn, const char *table, const uint8_t *key,
                      size_t key_len, uint8_t **val, size_t *val_len);
    kms_st_err (*put)(void *txn, const char *table, const uint8_t *key,
                      size_t key_len, const uint8_t *val, size_t val_len);
    kms_st_err (*del)(void *txn, const char *table, const uint8_t *key,
                      size_t key_len);
    /* Visit the keys of `table` beginning with `prefix`, in ascending
     * bytewise order. With `want_values` false the callback gets NULL, 0
     * as the value. A missing table visits nothing. */
    kms_st_err (*scan)(void *txn, const char *table, const uint8_t *prefix,
                       size_t prefix_len, bool want_values, kms_scan_fn fn,
                       void *ctx);
    void (*free_buf)(void *p, size_t len);
    kms_st_err (*sync)(void *self); /* make every commit durable */
    kms_st_err (*size)(void *self, uint64_t *bytes);
    void (*close)(void *self);
} kms_store_ops;

typedef struct kms_store {
    const kms_store_ops *ops;
    void *self;
} kms_store;

typedef struct kms_txn {
    kms_store *st;
    void *t;
    bool borrowed; /* part of this thread's batch (see kms_batch_begin) */
    bool dirty;    /* wrote through this handle */
} kms_txn;

/* Write batching (group commit for the store). Between kms_batch_begin()
 * and kms_batch_commit()/kms_batch_abort(), every kms_txn_begin() of this
 * thread on the same store (read or write) joins the batch's single write
 * transaction: its commit does nothing and the batch commits once. A
 * handle that wrote and then aborted "poisons" the batch: the caller must
 * abort it and run the requests again one by one. */
typedef struct kms_batch {
    kms_txn txn;
    bool poisoned;
} kms_batch;

kms_st_err kms_batch_begin(kms_store *st, kms_batch *b);
kms_st_err kms_batch_commit(kms_batch *b);
void kms_batch_abort(kms_batch *b);

/* Largest table name and key the callers use (ZapDB allows more). */
#define KMS_TABLE_MAX 200u

/* Memory backend (tests, fuzzing): nothing persists. */
kms_st_err kms_store_mem_open(kms_store **out);

/* ZapDB backend: open or create the store in `dir` with the password.
 * `kdf_min` selects the minimum KDF cost (tests only). Returns
 * KMS_ST_INVAL for a wrong password (*detail says so), KMS_ST_IO else. */
kms_st_err kms_store_zap_open(const char *dir, const uint8_t *pw, size_t pw_len,
                              bool create, bool kdf_min, kms_store **out,
                              char *detail, size_t detail_cap);

void kms_store_close(kms_store *st); /* NULL is a no-op */

kms_st_err kms_txn_begin(kms_store *st, bool rdonly, kms_txn *txn);
kms_st_err kms_txn_commit(kms_txn *txn);
void kms_txn_abort(kms_txn *txn); /* no-op when not begun */

kms_st_err kms_txn_get(kms_txn *txn, const char *table, const void *key,
                       size_t key_len, uint8_t **val, size_t *val_len);
kms_st_err kms_txn_put(kms_txn *txn, const char *table, const void *key,
                       size_t key_len, const void *val, size_t val_len);
kms_st_err kms_txn_del(kms_txn *txn, const char *table, const void *key,
                       size_t key_len);
kms_st_err kms_txn_scan(kms_txn *txn, const char *table, const void *prefix,
                        size_t prefix_len, bool want_values, kms_scan_fn fn,
                        void *ctx);
void kms_store_free(kms_store *st, void *p, size_t len);

#endif
