/* SPDX-License-Identifier: Apache-2.0 */
/* Organisations: the tenancy boundary. Only a root token (or a global
 * admin identity's token) creates them; a token sees its own. */
#include "kmsd_int.h"

#include <string.h>

kms_err
kms_org_exists(kms_txn *txn, const char *org)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    kms_st_err e = kms_txn_get(txn, "orgs", org, strlen(org), &v, &vl);

    kms_store_free(txn->st, v, vl);
    return kms_st2err(e);
}

kms_err
kms_h_org_create(kms_ctx *c)
{
    const char *name;
    kms_txn txn = {0};
    json_t *doc = NULL;
    kms_err rc;

    if ((rc = kms_authorize(c, NULL, "sys/orgs", KMS_CAP_CREATE)) != KMS_OK)
        return rc;
    if (kms_json_get_str(c->body, "name", true, &name, NULL) != KMS_OK ||
        !kms_valid_name(name)) {
        c->detail = "name: 1-64 of [a-z0-9_-], starting with a letter or digit";
        return KMS_EINVAL;
    }
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_org_exists(&txn, name);
    if (rc == KMS_OK) {
        rc = KMS_EEXIST;
        goto out;
    }
    if (rc != KMS_ENOTFOUND)
        goto out;
    doc = json_pack("{s:s,s:I,s:s}", "name", name, "created",
                    (json_int_t)c->srv->now(), "created_by", c->who.display);
    if (!doc) {
        rc = KMS_ENOMEM;
        goto out;
    }
    if ((rc = kms_json_put(&txn, "orgs", name, doc)) != KMS_OK)
        goto out;
    rc = kms_st2err(kms_txn_commit(&txn));
    c->store_written = rc == KMS_OK;
    if (rc == KMS_OK) {
        c->status = 201;
        c->out = json_pack("{s:s}", "name", name);
    }
out:
    kms_txn_abort(&txn);
    json_decref(doc);
    return rc;
}

static int
collect_org(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void)v;
    (void)vl;
    json_array_append_new(ctx, json_stringn((const char *)k, kl));
    return 0;
}

kms_err
kms_h_org_list(kms_ctx *c)
{
    kms_txn txn = {0};
    json_t *names;
    kms_err rc = KMS_OK;

    if (!(names = json_array()))
        return KMS_ENOMEM;
    if (c->who.root) {
        if ((rc = kms_authorize(c, NULL, "sys/orgs", KMS_CAP_LIST)) != KMS_OK)
            goto out;
        if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK) {
            rc = KMS_ESTORE;
            goto out;
        }
        rc = kms_st2err(
            kms_txn_scan(&txn, "orgs", NULL, 0, false, collect_org, names));
        kms_txn_abort(&txn);
    } else {
        c->decision = "allow";
        json_array_append_new(names, json_string(c->who.org));
    }
out:
    if (rc == KMS_OK)
        c->out = json_pack("{s:O}", "orgs", names);
    json_decref(names);
    return rc;
}

kms_err
kms_h_org_read(kms_ctx *c)
{
    kms_txn txn = {0};
    json_t *doc = NULL;
    kms_err rc;

    c->decision = "allow"; /* members and root only: the router checked */
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_json_get(&txn, "orgs", c->param_org, &doc);
    kms_txn_abort(&txn);
    if (rc == KMS_OK) {
        char t[32];
        kms_time_str(json_integer_value(json_object_get(doc, "created")), t,
                     sizeof t);
        json_object_set_new(doc, "created_at", json_string(t));
        c->out = doc;
    }
    return rc;
}
