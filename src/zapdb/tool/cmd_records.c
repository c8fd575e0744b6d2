/* SPDX-License-Identifier: Apache-2.0 */
/* zapdb put, get, del, ls: the record-level subcommands. */
#include "zt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc.h"

/* The value to store, from --in FILE or stdin, into secure memory. */
static int
read_value(const zt_args *a, uint8_t **val, size_t *val_len)
{
    int r;

    if (a->in_file)
        r = kc_read_file(a->in_file, ZAP_MAX_VALUE, true, val, val_len);
    else
        r = kc_read_fd(STDIN_FILENO, ZAP_MAX_VALUE, true, val, val_len);
    if (r == -EFBIG) {
        zt_err(a, "the value is larger than %u bytes", ZAP_MAX_VALUE);
        return ZT_EXIT_ERR;
    }
    if (r != 0) {
        zt_err(a, "cannot read the value from %s: %s",
               a->in_file ? a->in_file : "standard input", strerror(-r));
        return ZT_EXIT_ERR;
    }
    return ZT_EXIT_OK;
}

int
zt_cmd_put(const zt_args *a)
{
    uint8_t *key = NULL, *val = NULL;
    size_t key_len = 0, val_len = 0;
    zap_db *db = NULL;
    zap_err err;
    int rc;

    if ((rc = zt_check_bucket(a, a->pos[1])) != ZT_EXIT_OK ||
        (rc = zt_record_key(a, 2, &key, &key_len)) != ZT_EXIT_OK ||
        (rc = read_value(a, &val, &val_len)) != ZT_EXIT_OK ||
        (rc = zt_open(a, 0, &db)) != ZT_EXIT_OK)
        goto out;
    err = zap_put(db, a->pos[1], key, key_len, val, val_len);
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot store the value");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    kc_secure_free(val);
    free(key);
    return rc;
}

int
zt_cmd_get(const zt_args *a)
{
    uint8_t *key = NULL, *val = NULL;
    size_t key_len = 0, val_len = 0;
    zap_db *db = NULL;
    zap_err err;
    int rc, r;

    if ((rc = zt_check_bucket(a, a->pos[1])) != ZT_EXIT_OK ||
        (rc = zt_record_key(a, 2, &key, &key_len)) != ZT_EXIT_OK ||
        (rc = zt_open(a, ZAP_RDONLY, &db)) != ZT_EXIT_OK)
        goto out;
    err = zap_get(db, a->pos[1], key, key_len, &val, &val_len);
    if (err == ZAP_ENOTFOUND) {
        zt_err(a, "no such key in bucket %s", a->pos[1]);
        rc = ZT_EXIT_NOTFOUND;
        goto out;
    }
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot read the value");
        goto out;
    }
    if (a->out_file) {
        r = kc_write_file_atomic(a->out_file, val, val_len, 0600);
        if (r != 0) {
            zt_err(a, "cannot write %s: %s", a->out_file, strerror(-r));
            rc = ZT_EXIT_ERR;
            goto out;
        }
    } else if ((r = zt_write_all(STDOUT_FILENO, val, val_len)) != 0) {
        zt_err(a, "cannot write to standard output: %s", strerror(-r));
        rc = ZT_EXIT_ERR;
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_free(val, val_len);
    zap_close(db);
    free(key);
    return rc;
}

int
zt_cmd_del(const zt_args *a)
{
    uint8_t *key = NULL;
    size_t key_len = 0;
    zap_db *db = NULL;
    zap_err err;
    int rc;

    if ((rc = zt_check_bucket(a, a->pos[1])) != ZT_EXIT_OK ||
        (rc = zt_record_key(a, 2, &key, &key_len)) != ZT_EXIT_OK ||
        (rc = zt_open(a, 0, &db)) != ZT_EXIT_OK)
        goto out;
    err = zap_del(db, a->pos[1], key, key_len);
    if (err == ZAP_ENOTFOUND) {
        zt_err(a, "no such key in bucket %s", a->pos[1]);
        rc = ZT_EXIT_NOTFOUND;
        goto out;
    }
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot delete the key");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    free(key);
    return rc;
}

static int
ls_buckets(const zt_args *a, zap_db *db)
{
    char **names = NULL;
    size_t count = 0;
    zap_err err;
    int rc = ZT_EXIT_OK;

    err = zap_bucket_list(db, &names, &count);
    if (err != ZAP_OK)
        return zt_zap_err(a, db, err, "cannot list the buckets");
    for (size_t i = 0; i < count && rc == ZT_EXIT_OK; i++)
        if (zt_print_name((const uint8_t *)names[i], strlen(names[i])) != 0) {
            zt_err(a, "cannot write to standard output");
            rc = ZT_EXIT_ERR;
        }
    zap_list_free(names, count);
    return rc;
}

static int
ls_keys(const zt_args *a, zap_db *db, const uint8_t *prefix, size_t prefix_len)
{
    const char *bucket = a->pos[1];
    zap_txn *txn = NULL;
    zap_iter *it = NULL;
    const uint8_t *k;
    size_t k_len;
    zap_err err;
    int rc;

    if ((err = zap_txn_begin(db, ZAP_TXN_RDONLY, &txn)) != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot begin a transaction");
        goto out;
    }
    err = zap_iter_open(txn, bucket, prefix, prefix_len, NULL, 0, &it);
    if (err == ZAP_ENOTFOUND) {
        zt_err(a, "no bucket %s", bucket);
        rc = ZT_EXIT_NOTFOUND;
        goto out;
    }
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot list the bucket");
        goto out;
    }
    while ((err = zap_iter_next(it, &k, &k_len, NULL, NULL)) == ZAP_OK) {
        if (zt_print_name(k, k_len) != 0) {
            zt_err(a, "cannot write to standard output");
            rc = ZT_EXIT_ERR;
            goto out;
        }
    }
    if (err != ZAP_ENOTFOUND) {
        rc = zt_zap_err(a, db, err, "cannot list the bucket");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_iter_close(it);
    zap_txn_abort(txn);
    return rc;
}

int
zt_cmd_ls(const zt_args *a)
{
    uint8_t *prefix = NULL;
    size_t prefix_len = 0;
    zap_db *db = NULL;
    int rc;

    if (a->pos_count < 2 && (a->prefix || a->prefix_hex)) {
        zt_err(a, "--prefix needs a BUCKET");
        return ZT_EXIT_USAGE;
    }
    if (a->pos_count == 2 && (rc = zt_check_bucket(a, a->pos[1])) != ZT_EXIT_OK)
        return rc;
    if (a->prefix) {
        prefix_len = strlen(a->prefix);
        if (!(prefix = malloc(prefix_len + 1))) {
            zt_err(a, "out of memory");
            return ZT_EXIT_ERR;
        }
        memcpy(prefix, a->prefix, prefix_len + 1);
    } else if (a->prefix_hex) {
        size_t hl = strlen(a->prefix_hex);
        if (!(prefix = malloc(hl / 2 + 1))) {
            zt_err(a, "out of memory");
            return ZT_EXIT_ERR;
        }
        if (kc_hex_decode(a->prefix_hex, hl, prefix, hl / 2 + 1, &prefix_len) !=
            0) {
            zt_err(a, "--prefix-hex needs hex digits, an even number of them");
            rc = ZT_EXIT_USAGE;
            goto out;
        }
    }
    if ((rc = zt_open(a, ZAP_RDONLY, &db)) != ZT_EXIT_OK)
        goto out;
    rc = a->pos_count < 2 ? ls_buckets(a, db)
                          : ls_keys(a, db, prefix, prefix_len);
out:
    zap_close(db);
    free(prefix);
    return rc;
}
