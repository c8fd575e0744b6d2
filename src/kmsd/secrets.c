/* SPDX-License-Identifier: Apache-2.0 */
/* Versioned secrets: /v1/kms/orgs/{org}/secrets/{path...}/{name}?env=E.
 *
 * Storage, per organisation: table "secmeta/<org>" maps "<env>/<path>" to
 * the secret's metadata (current version, and for each kept version its
 * time, writer, deleted time and destroyed flag); table "secval/<org>"
 * maps "<env>/<path>" NUL <8-byte big-endian version> to the value.
 * The policy resource of a secret is "secrets/<env>/<path>". */
#include "kmsd_int.h"

#include "kc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VERSION_ARGS 100u

typedef struct {
    char meta_tab[KMS_TABLE_MAX], val_tab[KMS_TABLE_MAX];
    char key[KMS_NAME_MAX + 1 + KMS_SPATH_MAX + 1];
    char res[16 + KMS_NAME_MAX + KMS_SPATH_MAX];
    const char *env, *path;
} sref;

static kms_err
sref_init(kms_ctx *c, const char *path, bool allow_empty, sref *r)
{
    r->env = kms_query(c, "env");
    r->path = path;
    if (!r->env || !kms_valid_name(r->env)) {
        c->detail = "env is required: 1-64 of [a-z0-9_-]";
        return KMS_EINVAL;
    }
    if (!kms_valid_secret_path(path, allow_empty)) {
        c->detail = "invalid secret path: segments of [A-Za-z0-9._-], "
                    "no empty, '.' or '..' segments";
        return KMS_EINVAL;
    }
    snprintf(r->meta_tab, sizeof r->meta_tab, "secmeta/%s", c->param_org);
    snprintf(r->val_tab, sizeof r->val_tab, "secval/%s", c->param_org);
    snprintf(r->key, sizeof r->key, "%s/%s", r->env, path);
    if (*path)
        snprintf(r->res, sizeof r->res, "secrets/%s/%s", r->env, path);
    else
        snprintf(r->res, sizeof r->res, "secrets/%s", r->env);
    json_object_set_new(c->audit, "env", json_string(r->env));
    return KMS_OK;
}

/* Value key: meta key, a NUL, the version big-endian. */
static size_t
val_key(const sref *r, uint64_t v, uint8_t *out, size_t cap)
{
    size_t n = strlen(r->key);

    if (n + 9 > cap)
        return 0;
    memcpy(out, r->key, n);
    out[n] = 0;
    for (int i = 0; i < 8; i++)
        out[n + 1 + (size_t)i] = (uint8_t)(v >> (56 - 8 * i));
    return n + 9;
}

static json_t *
find_version(json_t *meta, uint64_t v, size_t *idx)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(meta, "versions"), i, e)
    {
        if ((uint64_t)json_integer_value(json_object_get(e, "version")) == v) {
            if (idx)
                *idx = i;
            return e;
        }
    }
    return NULL;
}

static kms_err
parse_u64_arg(kms_ctx *c, const char *s, uint64_t *v)
{
    if (kc_parse_u64(s, v) != 0 || *v == 0) {
        c->detail = "version must be a positive integer";
        return KMS_EINVAL;
    }
    return KMS_OK;
}

/* ---- read ---------------------------------------------------------------- */

static kms_err
secret_read(kms_ctx *c, sref *r)
{
    const char *vs = kms_query(c, "version");
    uint8_t vk[KMS_NAME_MAX + KMS_SPATH_MAX + 16], *val = NULL;
    size_t vkl, val_len = 0;
    uint64_t v = 0;
    kms_txn txn = {0};
    json_t *meta = NULL, *e;
    char t[32], h[80];
    kms_err rc;

    if (vs && (rc = parse_u64_arg(c, vs, &v)) != KMS_OK)
        return rc;
    if ((rc = kms_authorize(c, c->param_org, r->res, KMS_CAP_READ)) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = kms_json_get(&txn, r->meta_tab, r->key, &meta)) != KMS_OK)
        goto out;
    if (!v)
        v = (uint64_t)json_integer_value(json_object_get(meta, "current"));
    rc = KMS_ENOTFOUND;
    if (!(e = find_version(meta, v, NULL)))
        goto out;
    rc = KMS_EDESTROYED;
    if (json_is_true(json_object_get(e, "destroyed")))
        goto out;
    rc = KMS_EDELETED;
    if (json_integer_value(json_object_get(e, "deleted")))
        goto out;
    vkl = val_key(r, v, vk, sizeof vk);
    if ((rc = kms_st2err(
             kms_txn_get(&txn, r->val_tab, vk, vkl, &val, &val_len))) != KMS_OK)
        goto out;
    kms_time_str(json_integer_value(json_object_get(e, "created")), t,
                 sizeof t);
    c->out = json_pack("{s:s,s:s,s:s,s:I,s:s%,s:s,s:O}", "org", c->param_org,
                       "env", r->env, "path", r->path, "version", (json_int_t)v,
                       "value", (const char *)val, val_len, "created_at", t,
                       "created_by", json_object_get(e, "by") ?: json_null());
    if (!c->out) {
        rc = KMS_ESTORE; /* not valid UTF-8: cannot have come from us */
        goto out;
    }
    kms_audit_hmac(c->srv, val, val_len, h);
    json_object_set_new(c->audit, "version", json_integer((json_int_t)v));
    json_object_set_new(c->audit, "value_hmac", json_string(h));
out:
    kms_txn_abort(&txn);
    kms_store_free(c->srv->store, val, val_len);
    json_decref(meta);
    return rc;
}

static kms_err
secret_history(kms_ctx *c, sref *r)
{
    kms_txn txn = {0};
    json_t *meta = NULL, *list, *e;
    size_t i;
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, r->res, KMS_CAP_READ)) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_json_get(&txn, r->meta_tab, r->key, &meta);
    kms_txn_abort(&txn);
    if (rc != KMS_OK)
        return rc;
    list = json_array();
    json_array_foreach(json_object_get(meta, "versions"), i, e)
    {
        char t[32], d[32];
        int64_t del = json_integer_value(json_object_get(e, "deleted"));
        kms_time_str(json_integer_value(json_object_get(e, "created")), t,
                     sizeof t);
        kms_time_str(del, d, sizeof d);
        json_array_append_new(
            list,
            json_pack("{s:O,s:s,s:O,s:s?,s:b}", "version",
                      json_object_get(e, "version"), "created_at", t,
                      "created_by", json_object_get(e, "by") ?: json_null(),
                      "deleted_at", del ? d : NULL, "destroyed",
                      json_is_true(json_object_get(e, "destroyed"))));
    }
    c->out =
        json_pack("{s:s,s:s,s:O,s:I,s:o}", "env", r->env, "path", r->path,
                  "current", json_object_get(meta, "current"), "max_versions",
                  (json_int_t)c->srv->max_versions, "versions", list);
    json_decref(meta);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

typedef struct {
    json_t *keys;
    size_t skip;
    bool recursive;
    char last_folder[KMS_SPATH_MAX + 2];
    const json_t *policies; /* NULL: root, sees everything */
    char base[16 + KMS_NAME_MAX + KMS_SPATH_MAX]; /* "secrets/<env>/<path>/" */
} list_ctx;

/* Names the caller may neither list nor read (a deny rule, say) are left
 * out of listings: a listing never reveals what a policy hides. */
static bool
visible(const list_ctx *l, const char *rel, size_t rl)
{
    char res[16 + KMS_NAME_MAX + 2 * KMS_SPATH_MAX];
    size_t bl = strlen(l->base);

    if (!l->policies)
        return true;
    if (rl && rel[rl - 1] == '/')
        rl--; /* a folder: its own resource */
    if (bl + rl >= sizeof res)
        return false;
    memcpy(res, l->base, bl);
    memcpy(res + bl, rel, rl);
    res[bl + rl] = '\0';
    return kms_policy_allows(l->policies, res, KMS_CAP_LIST) ||
           kms_policy_allows(l->policies, res, KMS_CAP_READ);
}

static bool
live(const uint8_t *v, size_t vl)
{
    json_t *m = json_loadb((const char *)v, vl, 0, NULL);
    json_t *e =
        m ? find_version(
                m, (uint64_t)json_integer_value(json_object_get(m, "current")),
                NULL)
          : NULL;
    bool ok = e && !json_is_true(json_object_get(e, "destroyed")) &&
              !json_integer_value(json_object_get(e, "deleted"));
    json_decref(m);
    return ok;
}

static int
list_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    list_ctx *l = ctx;
    const char *rel = (const char *)k + l->skip;
    size_t rl = kl - l->skip;
    const char *slash;

    if (kl <= l->skip || !live(v, vl))
        return 0;
    slash = memchr(rel, '/', rl);
    if (l->recursive || !slash) {
        if (visible(l, rel, rl))
            json_array_append_new(l->keys, json_stringn(rel, rl));
        return 0;
    }
    rl = (size_t)(slash - rel) + 1; /* the folder, with its '/' */
    if (rl < sizeof l->last_folder &&
        (strlen(l->last_folder) != rl || memcmp(l->last_folder, rel, rl))) {
        memcpy(l->last_folder, rel, rl);
        l->last_folder[rl] = '\0';
        if (visible(l, rel, rl))
            json_array_append_new(l->keys, json_stringn(rel, rl));
    }
    return 0;
}

static kms_err
secret_list(kms_ctx *c, sref *r)
{
    const char *rec = kms_query(c, "recursive");
    char prefix[KMS_NAME_MAX + KMS_SPATH_MAX + 3];
    list_ctx l;
    kms_txn txn = {0};
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, r->res, KMS_CAP_LIST)) != KMS_OK)
        return rc;
    memset(&l, 0, sizeof l);
    l.recursive = rec && strcmp(rec, "true") == 0;
    snprintf(prefix, sizeof prefix, "%s/%s%s", r->env, r->path,
             *r->path ? "/" : "");
    l.skip = strlen(prefix);
    l.policies = c->who.root ? NULL : c->who.policies;
    snprintf(l.base, sizeof l.base, "secrets/%s/%s%s", r->env, r->path,
             *r->path ? "/" : "");
    if (!(l.keys = json_array()))
        return KMS_ENOMEM;
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK) {
        json_decref(l.keys);
        return KMS_ESTORE;
    }
    rc = kms_st2err(
        kms_txn_scan(&txn, r->meta_tab, prefix, l.skip, true, list_one, &l));
    kms_txn_abort(&txn);
    c->out = json_pack("{s:s,s:s,s:o}", "env", r->env, "path", r->path, "keys",
                       l.keys);
    return rc == KMS_OK && !c->out ? KMS_ENOMEM : rc;
}

kms_err
kms_h_secret_get(kms_ctx *c)
{
    const char *list = kms_query(c, "list"), *hist = kms_query(c, "history");
    bool is_list = list && strcmp(list, "true") == 0;
    sref r;
    kms_err rc;

    if ((rc = sref_init(c, c->rest, is_list, &r)) != KMS_OK)
        return rc;
    if (is_list) {
        json_object_set_new(c->audit, "action", json_string("list"));
        return secret_list(c, &r);
    }
    if (hist && strcmp(hist, "true") == 0) {
        json_object_set_new(c->audit, "action", json_string("history"));
        return secret_history(c, &r);
    }
    json_object_set_new(c->audit, "action", json_string("read"));
    return secret_read(c, &r);
}

/* ---- write ----------------------------------------------------------------
 */

static void
prune(kms_txn *txn, const sref *r, json_t *meta, uint32_t max)
{
    json_t *versions = json_object_get(meta, "versions");
    uint8_t vk[KMS_NAME_MAX + KMS_SPATH_MAX + 16];

    while (max && json_array_size(versions) > max) {
        json_t *e = json_array_get(versions, 0);
        uint64_t v =
            (uint64_t)json_integer_value(json_object_get(e, "version"));
        if (!json_is_true(json_object_get(e, "destroyed")))
            kms_txn_del(txn, r->val_tab, vk, val_key(r, v, vk, sizeof vk));
        json_array_remove(versions, 0);
    }
}

static kms_err
secret_write(kms_ctx *c, sref *r)
{
    const char *value;
    size_t value_len;
    const json_t *cas = json_object_get(c->body, "cas");
    uint8_t vk[KMS_NAME_MAX + KMS_SPATH_MAX + 16];
    kms_txn txn = {0};
    json_t *meta = NULL;
    int64_t now = c->srv->now();
    uint64_t cur, v;
    char t[32], h[80];
    kms_err rc;

    if (kms_json_get_str(c->body, "value", true, &value, &value_len) !=
        KMS_OK) {
        c->detail = "value (a string) is required";
        return KMS_EINVAL;
    }
    if (value_len > KMS_VALUE_MAX) {
        c->detail = "values are limited to 1 MiB";
        return KMS_ETOOBIG;
    }
    if (cas && (!json_is_integer(cas) || json_integer_value(cas) < 0)) {
        c->detail = "cas must be a non-negative integer";
        return KMS_EINVAL;
    }
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_json_get(&txn, r->meta_tab, r->key, &meta);
    if (rc != KMS_OK && rc != KMS_ENOTFOUND)
        goto out;
    if ((rc = kms_authorize(c, c->param_org, r->res,
                            meta ? KMS_CAP_UPDATE : KMS_CAP_CREATE)) != KMS_OK)
        goto out;
    if (!meta) {
        rc = kms_org_exists(&txn, c->param_org);
        if (rc != KMS_OK)
            goto out;
        meta = json_pack("{s:I,s:I,s:[]}", "current", (json_int_t)0, "created",
                         (json_int_t)now, "versions");
        if (!meta) {
            rc = KMS_ENOMEM;
            goto out;
        }
    }
    cur = (uint64_t)json_integer_value(json_object_get(meta, "current"));
    if (cas && (uint64_t)json_integer_value(cas) != cur) {
        c->detail = "check-and-set version does not match the current version";
        rc = KMS_ECONFLICT;
        goto out;
    }
    v = cur + 1;
    if ((rc = kms_st2err(kms_txn_put(&txn, r->val_tab, vk,
                                     val_key(r, v, vk, sizeof vk), value,
                                     value_len))) != KMS_OK)
        goto out;
    json_array_append_new(json_object_get(meta, "versions"),
                          json_pack("{s:I,s:I,s:s,s:I,s:b}", "version",
                                    (json_int_t)v, "created", (json_int_t)now,
                                    "by", c->who.display, "deleted",
                                    (json_int_t)0, "destroyed", 0));
    json_object_set_new(meta, "current", json_integer((json_int_t)v));
    json_object_set_new(meta, "updated", json_integer(now));
    prune(&txn, r, meta, c->srv->max_versions);
    if ((rc = kms_json_put(&txn, r->meta_tab, r->key, meta)) != KMS_OK ||
        (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    kms_time_str(now, t, sizeof t);
    c->out = json_pack("{s:s,s:s,s:I,s:s}", "env", r->env, "path", r->path,
                       "version", (json_int_t)v, "created_at", t);
    c->status = cur ? 200 : 201;
    kms_audit_hmac(c->srv, value, value_len, h);
    json_object_set_new(c->audit, "version", json_integer((json_int_t)v));
    json_object_set_new(c->audit, "value_hmac", json_string(h));
out:
    kms_txn_abort(&txn);
    json_decref(meta);
    return rc;
}

typedef enum { ACT_DELETE, ACT_UNDELETE, ACT_DESTROY } vact;

/* Apply a version action to a list of versions (JSON array of integers). */
static kms_err
version_action(kms_ctx *c, sref *r, vact act, json_t *versions)
{
    uint8_t vk[KMS_NAME_MAX + KMS_SPATH_MAX + 16];
    kms_txn txn = {0};
    json_t *meta = NULL, *v;
    int64_t now = c->srv->now();
    size_t i;
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, r->res,
                            act == ACT_UNDELETE ? KMS_CAP_UPDATE
                                                : KMS_CAP_DELETE)) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = kms_json_get(&txn, r->meta_tab, r->key, &meta)) != KMS_OK)
        goto out;
    if (json_array_size(versions) == 0)
        json_array_append_new(versions,
                              json_copy(json_object_get(meta, "current")));
    json_array_foreach(versions, i, v)
    {
        json_t *e = find_version(meta, (uint64_t)json_integer_value(v), NULL);
        rc = KMS_ENOTFOUND;
        if (!e)
            goto out;
        rc = KMS_EDESTROYED;
        if (json_is_true(json_object_get(e, "destroyed")))
            goto out;
        if (act == ACT_DELETE) {
            json_object_set_new(e, "deleted", json_integer(now));
        } else if (act == ACT_UNDELETE) {
            json_object_set_new(e, "deleted", json_integer(0));
        } else {
            size_t n =
                val_key(r, (uint64_t)json_integer_value(v), vk, sizeof vk);
            kms_st_err se = kms_txn_del(&txn, r->val_tab, vk, n);
            if (se != KMS_ST_OK && se != KMS_ST_NOTFOUND) {
                rc = KMS_ESTORE;
                goto out;
            }
            json_object_set_new(e, "destroyed", json_true());
        }
    }
    json_object_set_new(meta, "updated", json_integer(now));
    if ((rc = kms_json_put(&txn, r->meta_tab, r->key, meta)) != KMS_OK ||
        (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    c->out = json_pack("{s:s,s:s,s:O}", "env", r->env, "path", r->path,
                       act == ACT_DELETE     ? "deleted"
                       : act == ACT_UNDELETE ? "undeleted"
                                             : "destroyed",
                       versions);
    json_object_set(c->audit, "versions", versions);
out:
    kms_txn_abort(&txn);
    json_decref(meta);
    return rc;
}

static kms_err
versions_from_json(kms_ctx *c, const json_t *arr, json_t **out)
{
    size_t i;
    json_t *v;

    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > MAX_VERSION_ARGS) {
        c->detail = "versions: a non-empty array of version numbers";
        return KMS_EINVAL;
    }
    json_array_foreach(arr, i,
                       v) if (!json_is_integer(v) || json_integer_value(v) <= 0)
    {
        c->detail = "versions: a non-empty array of version numbers";
        return KMS_EINVAL;
    }
    *out = json_deep_copy(arr);
    return *out ? KMS_OK : KMS_ENOMEM;
}

kms_err
kms_h_secret_post(kms_ctx *c)
{
    char *colon = strrchr(c->rest, ':');
    vact act;
    json_t *versions = NULL;
    sref r;
    kms_err rc;

    if (!colon) {
        if ((rc = sref_init(c, c->rest, false, &r)) != KMS_OK)
            return rc;
        json_object_set_new(c->audit, "action", json_string("write"));
        return secret_write(c, &r);
    }
    if (strcmp(colon, ":undelete") == 0)
        act = ACT_UNDELETE;
    else if (strcmp(colon, ":destroy") == 0)
        act = ACT_DESTROY;
    else {
        c->detail = "unknown action: use :undelete or :destroy";
        return KMS_EINVAL;
    }
    *colon = '\0'; /* c->rest is our own copy of the path */
    if ((rc = sref_init(c, c->rest, false, &r)) != KMS_OK)
        return rc;
    json_object_set_new(
        c->audit, "action",
        json_string(act == ACT_UNDELETE ? "undelete" : "destroy"));
    if ((rc = versions_from_json(c, json_object_get(c->body, "versions"),
                                 &versions)) != KMS_OK)
        return rc;
    rc = version_action(c, &r, act, versions);
    json_decref(versions);
    return rc;
}

kms_err
kms_h_secret_delete(kms_ctx *c)
{
    const char *vs = kms_query(c, "versions");
    json_t *versions = json_array();
    sref r;
    kms_err rc;

    if (!versions)
        return KMS_ENOMEM;
    if ((rc = sref_init(c, c->rest, false, &r)) != KMS_OK)
        goto out;
    json_object_set_new(c->audit, "action", json_string("delete"));
    /* ?versions=1,2,3 ; none: the current version */
    while (vs && *vs) {
        char num[24];
        const char *comma = strchr(vs, ',');
        size_t n = comma ? (size_t)(comma - vs) : strlen(vs);
        uint64_t v;
        if (n == 0 || n >= sizeof num ||
            json_array_size(versions) >= MAX_VERSION_ARGS) {
            rc = KMS_EINVAL;
            c->detail = "versions: comma-separated version numbers";
            goto out;
        }
        memcpy(num, vs, n);
        num[n] = '\0';
        if ((rc = parse_u64_arg(c, num, &v)) != KMS_OK || v > INT64_MAX) {
            rc = KMS_EINVAL;
            goto out;
        }
        json_array_append_new(versions, json_integer((json_int_t)v));
        vs = comma ? comma + 1 : NULL;
    }
    rc = version_action(c, &r, ACT_DELETE, versions);
out:
    json_decref(versions);
    return rc;
}
