/* SPDX-License-Identifier: Apache-2.0 */
/* hsm_store: namespaced key/value storage for providers, on ZapDB (one
 * bucket "<prefix>.<namespace>" per namespace) or in process memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zapdb/zapdb.h>

#include "hsm_int.h"
#include "kc.h"

#define PREFIX_MAX 64u
#define NS_MAX     64u

typedef struct mem_rec {
    struct mem_rec *next;
    char *ns;
    char *key;
    hsm_secret *val;
} mem_rec;

struct hsm_store {
    zap_db *db; /* NULL for a memory store */
    bool owns_db;
    char prefix[PREFIX_MAX + 1];
    pthread_mutex_t mu; /* memory store only */
    mem_rec *recs;
};

hsm_err
hsm_err_from_zap(int zerr)
{
    switch ((zap_err)zerr) {
    case ZAP_OK:
        return HSM_OK;
    case ZAP_ENOTFOUND:
    case ZAP_ENOSTORE:
        return HSM_ENOTFOUND;
    case ZAP_EAUTH:
        return HSM_EAUTH;
    case ZAP_ECORRUPT:
    case ZAP_EVERSION:
        return HSM_ECORRUPT;
    case ZAP_EIO:
    case ZAP_EFULL:
    case ZAP_EBUSY:
    case ZAP_ERDONLY:
        return HSM_EIO;
    case ZAP_EINVAL:
        return HSM_EINVAL;
    case ZAP_ENOMEM:
        return HSM_ENOMEM;
    case ZAP_EEXIST:
        return HSM_EEXIST;
    case ZAP_ETOOBIG:
        return HSM_ETOOBIG;
    default:
        return HSM_EINTERNAL;
    }
}

static hsm_err
store_alloc(hsm_store **out)
{
    hsm_store *st = calloc(1, sizeof *st);

    if (!st)
        return HSM_ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    *out = st;
    return HSM_OK;
}

hsm_err
hsm_store_from_zapdb(struct zap_db *db, const char *bucket, hsm_store **out)
{
    hsm_store *st;
    hsm_err rc;

    if (!db || !out)
        return HSM_EINVAL;
    *out = NULL;
    if (!bucket)
        bucket = "hsm";
    if (bucket[0] == 0 || strlen(bucket) > PREFIX_MAX)
        return HSM_EINVAL;
    if ((rc = store_alloc(&st)) != HSM_OK)
        return rc;
    st->db = db;
    kc_strlcpy(st->prefix, bucket, sizeof st->prefix);
    *out = st;
    return HSM_OK;
}

hsm_err
hsm_store_open(const char *dir, const uint8_t *password, size_t password_len,
               bool create, uint64_t kdf_opslimit, size_t kdf_memlimit,
               hsm_store **out)
{
    zap_opts opts;
    zap_db *db = NULL;
    hsm_err rc;

    if (!dir || !password || password_len == 0 || !out)
        return HSM_EINVAL;
    *out = NULL;
    zap_opts_default(&opts);
    if (create)
        opts.flags |= ZAP_CREATE;
    opts.kdf_opslimit = kdf_opslimit;
    opts.kdf_memlimit = kdf_memlimit;
    rc = hsm_err_from_zap(
        zap_open(dir, &opts, (const char *)password, password_len, &db));
    if (rc != HSM_OK)
        return rc;
    rc = hsm_store_from_zapdb(db, NULL, out);
    if (rc != HSM_OK) {
        zap_close(db);
        return rc;
    }
    (*out)->owns_db = true;
    return HSM_OK;
}

hsm_err
hsm_store_new_memory(hsm_store **out)
{
    if (!out)
        return HSM_EINVAL;
    *out = NULL;
    return store_alloc(out);
}

static void
rec_free(mem_rec *r)
{
    free(r->ns);
    free(r->key);
    hsm_secret_free(r->val);
    free(r);
}

void
hsm_store_free(hsm_store *st)
{
    if (!st)
        return;
    while (st->recs) {
        mem_rec *r = st->recs;
        st->recs = r->next;
        rec_free(r);
    }
    if (st->owns_db)
        zap_close(st->db);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* Validate arguments and build the ZapDB bucket name. */
static hsm_err
check(hsm_store *st, const char *ns, const char *key, char *bucket, size_t cap)
{
    size_t n;

    if (!st || !ns || !ns[0] || strlen(ns) > NS_MAX)
        return HSM_EINVAL;
    if (key) {
        n = strnlen(key, 4097);
        if (n == 0 || n > 4096)
            return HSM_EINVAL;
    }
    if (bucket && snprintf(bucket, cap, "%s.%s", st->prefix, ns) >= (int)cap)
        return HSM_EINVAL;
    return HSM_OK;
}

static mem_rec *
mem_find(hsm_store *st, const char *ns, const char *key, mem_rec ***link)
{
    mem_rec **pp = &st->recs;

    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->ns, ns) == 0 && strcmp((*pp)->key, key) == 0) {
            if (link)
                *link = pp;
            return *pp;
        }
    }
    return NULL;
}

hsm_err
hsm_store_get(hsm_store *st, const char *ns, const char *key, hsm_secret **val)
{
    char bucket[PREFIX_MAX + NS_MAX + 2];
    uint8_t *v = NULL;
    size_t vlen = 0;
    mem_rec *r;
    hsm_err rc;

    if (!val)
        return HSM_EINVAL;
    *val = NULL;
    if ((rc = check(st, ns, key, bucket, sizeof bucket)) != HSM_OK || !key)
        return rc != HSM_OK ? rc : HSM_EINVAL;
    if (!st->db) {
        pthread_mutex_lock(&st->mu);
        r = mem_find(st, ns, key, NULL);
        rc =
            r ? hsm_secret_from(r->val->data, r->val->len, val) : HSM_ENOTFOUND;
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    rc = hsm_err_from_zap(
        zap_get(st->db, bucket, (const uint8_t *)key, strlen(key), &v, &vlen));
    if (rc != HSM_OK)
        return rc;
    rc = hsm_secret_from(v, vlen, val);
    zap_free(v, vlen);
    return rc;
}

static hsm_err
mem_put(hsm_store *st, const char *ns, const char *key, const uint8_t *val,
        size_t val_len, bool only_new)
{
    hsm_secret *copy = NULL;
    mem_rec *r;
    hsm_err rc;

    if ((rc = hsm_secret_from(val, val_len, &copy)) != HSM_OK)
        return rc;
    pthread_mutex_lock(&st->mu);
    r = mem_find(st, ns, key, NULL);
    if (r && only_new) {
        rc = HSM_EEXIST;
    } else if (r) {
        hsm_secret_free(r->val);
        r->val = copy;
        copy = NULL;
    } else if (!(r = calloc(1, sizeof *r)) || !(r->ns = strdup(ns)) ||
               !(r->key = strdup(key))) {
        if (r)
            rec_free(r);
        rc = HSM_ENOMEM;
    } else {
        r->val = copy;
        copy = NULL;
        r->next = st->recs;
        st->recs = r;
    }
    pthread_mutex_unlock(&st->mu);
    hsm_secret_free(copy);
    return rc;
}

static hsm_err
zap_put_new(hsm_store *st, const char *bucket, const char *key,
            const uint8_t *val, size_t val_len)
{
    zap_txn *txn = NULL;
    bool exists = false;
    hsm_err rc;

    rc = hsm_err_from_zap(zap_txn_begin(st->db, 0, &txn));
    if (rc != HSM_OK)
        return rc;
    rc = hsm_err_from_zap(zap_txn_exists(txn, bucket, (const uint8_t *)key,
                                         strlen(key), &exists));
    if (rc != HSM_OK)
        goto out;
    if (exists) {
        rc = HSM_EEXIST;
        goto out;
    }
    rc = hsm_err_from_zap(zap_txn_put(txn, bucket, (const uint8_t *)key,
                                      strlen(key), val, val_len));
    if (rc != HSM_OK)
        goto out;
    rc = hsm_err_from_zap(zap_txn_commit(txn));
    txn = NULL;
out:
    zap_txn_abort(txn);
    return rc;
}

static hsm_err
put_common(hsm_store *st, const char *ns, const char *key, const uint8_t *val,
           size_t val_len, bool only_new)
{
    char bucket[PREFIX_MAX + NS_MAX + 2];
    hsm_err rc;

    if ((rc = check(st, ns, key, bucket, sizeof bucket)) != HSM_OK)
        return rc;
    if (!key || (!val && val_len))
        return HSM_EINVAL;
    if (val_len > ZAP_MAX_VALUE)
        return HSM_ETOOBIG;
    if (!val)
        val = (const uint8_t *)"";
    if (!st->db)
        return mem_put(st, ns, key, val, val_len, only_new);
    if (only_new)
        return zap_put_new(st, bucket, key, val, val_len);
    return hsm_err_from_zap(zap_put(st->db, bucket, (const uint8_t *)key,
                                    strlen(key), val, val_len));
}

hsm_err
hsm_store_put(hsm_store *st, const char *ns, const char *key,
              const uint8_t *val, size_t val_len)
{
    return put_common(st, ns, key, val, val_len, false);
}

hsm_err
hsm_store_put_new(hsm_store *st, const char *ns, const char *key,
                  const uint8_t *val, size_t val_len)
{
    return put_common(st, ns, key, val, val_len, true);
}

hsm_err
hsm_store_del(hsm_store *st, const char *ns, const char *key)
{
    char bucket[PREFIX_MAX + NS_MAX + 2];
    mem_rec *r, **link = NULL;
    hsm_err rc;

    if ((rc = check(st, ns, key, bucket, sizeof bucket)) != HSM_OK || !key)
        return rc != HSM_OK ? rc : HSM_EINVAL;
    if (st->db)
        return hsm_err_from_zap(
            zap_del(st->db, bucket, (const uint8_t *)key, strlen(key)));
    pthread_mutex_lock(&st->mu);
    r = mem_find(st, ns, key, &link);
    if (r) {
        *link = r->next;
        rec_free(r);
    }
    pthread_mutex_unlock(&st->mu);
    return r ? HSM_OK : HSM_ENOTFOUND;
}

/* Growable list of strings. */
typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static hsm_err
strlist_add(strlist *l, const char *s, size_t n)
{
    char *c;

    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return HSM_ENOMEM;
        l->v = nv;
        l->cap = ncap;
    }
    if (!(c = malloc(n + 1)))
        return HSM_ENOMEM;
    memcpy(c, s, n);
    c[n] = 0;
    l->v[l->n++] = c;
    return HSM_OK;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static hsm_err
zap_list_keys(hsm_store *st, const char *bucket, strlist *l)
{
    zap_txn *txn = NULL;
    zap_iter *it = NULL;
    const uint8_t *k;
    size_t klen;
    hsm_err rc;
    zap_err z;

    rc = hsm_err_from_zap(zap_txn_begin(st->db, ZAP_TXN_RDONLY, &txn));
    if (rc != HSM_OK)
        return rc;
    z = zap_iter_open(txn, bucket, NULL, 0, NULL, 0, &it);
    if (z == ZAP_ENOTFOUND) {
        rc = HSM_OK; /* no bucket yet: empty */
        goto out;
    }
    if ((rc = hsm_err_from_zap(z)) != HSM_OK)
        goto out;
    while ((z = zap_iter_next(it, &k, &klen, NULL, NULL)) == ZAP_OK) {
        if ((rc = strlist_add(l, (const char *)k, klen)) != HSM_OK)
            goto out;
    }
    rc = z == ZAP_ENOTFOUND ? HSM_OK : hsm_err_from_zap(z);
out:
    zap_iter_close(it);
    zap_txn_abort(txn);
    return rc;
}

hsm_err
hsm_store_list(hsm_store *st, const char *ns, char ***keys, size_t *count)
{
    char bucket[PREFIX_MAX + NS_MAX + 2];
    strlist l = {0};
    hsm_err rc;

    if (!keys || !count)
        return HSM_EINVAL;
    *keys = NULL;
    *count = 0;
    if ((rc = check(st, ns, NULL, bucket, sizeof bucket)) != HSM_OK)
        return rc;
    if (st->db) {
        rc = zap_list_keys(st, bucket, &l);
    } else {
        pthread_mutex_lock(&st->mu);
        rc = HSM_OK;
        for (mem_rec *r = st->recs; r && rc == HSM_OK; r = r->next) {
            if (strcmp(r->ns, ns) == 0)
                rc = strlist_add(&l, r->key, strlen(r->key));
        }
        pthread_mutex_unlock(&st->mu);
    }
    if (rc != HSM_OK) {
        hsm_list_free(l.v, l.n);
        return rc;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, cmp_str);
    if (!l.v && !(l.v = calloc(1, sizeof *l.v)))
        return HSM_ENOMEM;
    *keys = l.v;
    *count = l.n;
    return HSM_OK;
}

/* ---- batches ------------------------------------------------------ */

static hsm_err
zap_batch(hsm_store *st, const char *bucket, const char *const *keys,
          const uint8_t *const *vals, const size_t *lens, size_t n,
          bool only_new, size_t *conflict)
{
    zap_txn *txn = NULL;
    bool exists = false;
    hsm_err rc;

    rc = hsm_err_from_zap(zap_txn_begin(st->db, 0, &txn));
    for (size_t i = 0; i < n && rc == HSM_OK && only_new; i++) {
        rc = hsm_err_from_zap(zap_txn_exists(
            txn, bucket, (const uint8_t *)keys[i], strlen(keys[i]), &exists));
        if (rc == HSM_OK && exists) {
            if (conflict)
                *conflict = i;
            rc = HSM_EEXIST;
        }
    }
    for (size_t i = 0; i < n && rc == HSM_OK; i++)
        rc = hsm_err_from_zap(
            zap_txn_put(txn, bucket, (const uint8_t *)keys[i], strlen(keys[i]),
                        vals[i] ? vals[i] : (const uint8_t *)"", lens[i]));
    if (rc == HSM_OK) {
        rc = hsm_err_from_zap(zap_txn_commit(txn));
        txn = NULL;
    }
    zap_txn_abort(txn);
    return rc;
}

/* Memory store: prepare every record first, so that nothing changes
 * unless all of them can be applied. */
static hsm_err
mem_batch(hsm_store *st, const char *ns, const char *const *keys,
          const uint8_t *const *vals, const size_t *lens, size_t n,
          bool only_new, size_t *conflict)
{
    mem_rec **fresh = calloc(n ? n : 1, sizeof *fresh);
    hsm_err rc = HSM_ENOMEM;

    if (!fresh)
        return HSM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(fresh[i] = calloc(1, sizeof *fresh[i])) ||
            !(fresh[i]->ns = strdup(ns)) ||
            !(fresh[i]->key = strdup(keys[i])) ||
            hsm_secret_from(lens[i] ? vals[i] : (const uint8_t *)"", lens[i],
                            &fresh[i]->val) != HSM_OK)
            goto out;
    }
    pthread_mutex_lock(&st->mu);
    rc = HSM_OK;
    for (size_t i = 0; i < n && only_new; i++) {
        if (mem_find(st, ns, keys[i], NULL)) {
            if (conflict)
                *conflict = i;
            rc = HSM_EEXIST;
            break;
        }
    }
    for (size_t i = 0; i < n && rc == HSM_OK; i++) {
        mem_rec **link = NULL, *old = mem_find(st, ns, keys[i], &link);
        if (old) {
            *link = old->next;
            rec_free(old);
        }
        fresh[i]->next = st->recs;
        st->recs = fresh[i];
        fresh[i] = NULL;
    }
    pthread_mutex_unlock(&st->mu);
out:
    for (size_t i = 0; i < n; i++) {
        if (fresh[i])
            rec_free(fresh[i]);
    }
    free(fresh);
    return rc;
}

hsm_err
hsm_store_put_batch(hsm_store *st, const char *ns, const char *const *keys,
                    const uint8_t *const *vals, const size_t *val_lens,
                    size_t n, bool only_new, size_t *conflict)
{
    char bucket[PREFIX_MAX + NS_MAX + 2];
    hsm_err rc;

    if ((rc = check(st, ns, NULL, bucket, sizeof bucket)) != HSM_OK)
        return rc;
    if (n > 0 && (!keys || !vals || !val_lens))
        return HSM_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if ((rc = check(st, ns, keys[i], NULL, 0)) != HSM_OK || !keys[i] ||
            (!vals[i] && val_lens[i]))
            return rc != HSM_OK ? rc : HSM_EINVAL;
        if (val_lens[i] > ZAP_MAX_VALUE)
            return HSM_ETOOBIG;
    }
    if (st->db)
        return zap_batch(st, bucket, keys, vals, val_lens, n, only_new,
                         conflict);
    return mem_batch(st, ns, keys, vals, val_lens, n, only_new, conflict);
}
