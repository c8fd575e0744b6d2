/* SPDX-License-Identifier: Apache-2.0 */
/* Server state: the store's metadata (audit key, root token) and the
 * JSON allocator. */
#include "kmsd_int.h"

#include "kc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* jansson may hold secret values (request bodies, responses): give it an
 * allocator that wipes every block on free. */
typedef struct {
    size_t n;
    size_t pad; /* keeps the payload 16-byte aligned */
} jhdr;

static void *
jmalloc(size_t n)
{
    jhdr *h;

    if (n > SIZE_MAX - sizeof *h)
        return NULL;
    h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->n = n;
    return h + 1;
}

static void
jfree(void *p)
{
    jhdr *h;

    if (!p)
        return;
    h = (jhdr *)p - 1;
    kc_free_wipe(h, sizeof *h + h->n);
}

static pthread_once_t json_once = PTHREAD_ONCE_INIT;

static void
json_setup(void)
{
    json_set_alloc_funcs(jmalloc, jfree);
}

typedef struct {
    char *p;
    size_t len, cap;
    bool fail;
} dump_buf;

static int
dump_cb(const char *buf, size_t size, void *data)
{
    dump_buf *d = data;

    if (d->fail || size > SIZE_MAX / 2 - d->len - 1) {
        d->fail = true;
        return -1;
    }
    if (d->len + size + 1 > d->cap) {
        size_t ncap = (d->len + size + 1) * 2;
        char *np = malloc(ncap);
        if (!np) {
            d->fail = true;
            return -1;
        }
        if (d->len)
            memcpy(np, d->p, d->len);
        kc_free_wipe(d->p, d->cap); /* may have held secret text */
        d->p = np;
        d->cap = ncap;
    }
    memcpy(d->p + d->len, buf, size);
    d->len += size;
    d->p[d->len] = '\0';
    return 0;
}

char *
kms_json_dump(const json_t *j, size_t *len)
{
    return kms_json_dumpf(j, JSON_COMPACT, len);
}

char *
kms_json_dumpf(const json_t *j, size_t flags, size_t *len)
{
    dump_buf d = {NULL, 0, 0, false};

    if (json_dump_callback(j, dump_cb, &d, flags) != 0 || d.fail || !d.p) {
        kc_free_wipe(d.p, d.cap);
        return NULL;
    }
    if (len)
        *len = d.len;
    return d.p;
}

void
kms_json_init(void)
{
    pthread_once(&json_once, json_setup);
}

static int64_t
now_real(void)
{
    return (int64_t)time(NULL);
}

kms_err
kms_srv_is_new(kms_srv *srv, bool *is_new)
{
    kms_txn txn = {0};
    uint8_t *v = NULL;
    size_t vl = 0;
    kms_st_err e;

    if (kms_txn_begin(srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    e = kms_txn_get(&txn, "meta", "root_token_id", 13, &v, &vl);
    kms_store_free(srv->store, v, vl);
    kms_txn_abort(&txn);
    if (e != KMS_ST_OK && e != KMS_ST_NOTFOUND)
        return KMS_ESTORE;
    *is_new = e == KMS_ST_NOTFOUND;
    return KMS_OK;
}

kms_err
kms_srv_init(kms_srv *srv, kms_store *st, uint32_t max_versions,
             char *root_token, bool replace_root, bool *fresh)
{
    kms_txn txn = {0};
    uint8_t *v = NULL;
    size_t vl = 0;
    char id[KMS_ID_HEX + 1];
    kms_st_err e;
    kms_err rc = KMS_ESTORE;

    kms_json_init();
    if (kc_init() != 0)
        return KMS_EINTERNAL;
    srv->store = st;
    srv->max_versions = max_versions;
    if (!srv->now)
        srv->now = now_real;
    if (!srv->default_ttl)
        srv->default_ttl = 3600;
    if (!srv->max_ttl)
        srv->max_ttl = 30 * 86400;
    if (!srv->login_ttl)
        srv->login_ttl = 900;
    if (fresh)
        *fresh = false;
    if (!(srv->audit_key = kc_secure_alloc(KMS_AUDIT_KEY_LEN)))
        return KMS_ENOMEM;
    if (!srv->pkcache && !(srv->pkcache = kms_pkey_cache_new()))
        return KMS_ENOMEM;
    if (kms_txn_begin(st, false, &txn) != KMS_ST_OK)
        goto out;
    e = kms_txn_get(&txn, "meta", "audit_key", 9, &v, &vl);
    if (e == KMS_ST_NOTFOUND) {
        kc_random(srv->audit_key, KMS_AUDIT_KEY_LEN);
        if (kms_txn_put(&txn, "meta", "audit_key", 9, srv->audit_key,
                        KMS_AUDIT_KEY_LEN) != KMS_ST_OK ||
            kms_txn_put(&txn, "meta", "format", 6, "1", 1) != KMS_ST_OK)
            goto out;
        if (fresh)
            *fresh = true;
    } else if (e != KMS_ST_OK || vl != KMS_AUDIT_KEY_LEN) {
        goto out;
    } else {
        memcpy(srv->audit_key, v, KMS_AUDIT_KEY_LEN);
    }
    if (root_token) {
        if (replace_root) {
            uint8_t *old = NULL;
            size_t ol = 0;
            if (kms_txn_get(&txn, "meta", "root_token_id", 13, &old, &ol) ==
                KMS_ST_OK)
                kms_txn_del(&txn, "tokens", old, ol);
            kms_store_free(st, old, ol);
        }
        if ((rc = kms_token_mint(&txn, "", NULL, true, NULL, 0, srv->now(),
                                 root_token, id)) != KMS_OK)
            goto out;
        rc = KMS_ESTORE;
        if (kms_txn_put(&txn, "meta", "root_token_id", 13, id, strlen(id)) !=
            KMS_ST_OK)
            goto out;
    }
    if (kms_txn_commit(&txn) != KMS_ST_OK)
        goto out;
    rc = KMS_OK;
out:
    kms_txn_abort(&txn);
    kms_store_free(st, v, vl);
    if (rc != KMS_OK) {
        kc_secure_free(srv->audit_key);
        srv->audit_key = NULL;
    }
    return rc;
}

void
kms_srv_fini(kms_srv *srv)
{
    kc_secure_free(srv->audit_key);
    srv->audit_key = NULL;
    kms_pkey_cache_free(srv->pkcache);
    srv->pkcache = NULL;
    kms_ratelimit_free(srv->rl);
    srv->rl = NULL;
}

kms_err
kms_srv_sweep(kms_srv *srv, size_t *count)
{
    kms_txn txn = {0};
    kms_err rc;

    *count = 0;
    if (kms_txn_begin(srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_tokens_sweep(&txn, NULL, srv->now(), count);
    if (rc == KMS_OK && *count)
        rc = kms_st2err(kms_txn_commit(&txn));
    kms_txn_abort(&txn);
    return rc;
}
