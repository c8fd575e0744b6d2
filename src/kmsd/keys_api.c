/* SPDX-License-Identifier: Apache-2.0 */
/* The native keys API: /v1/kms/orgs/{org}/keys[/{name}[/{action}]] and
 * /v1/kms/orgs/{org}/random. Binary fields travel as standard base64.
 * See docs/keys.md for each request and response. */
#include "keys_int.h"

#include "kc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A base64 field of `o` (required); *out malloc'd, free with kc_free_wipe. */
static kms_err
b64_field(kms_ctx *c, const json_t *o, const char *k, size_t max, uint8_t **out,
          size_t *len)
{
    const char *s;
    size_t sl;

    *out = NULL;
    *len = 0;
    if (kms_json_get_str(o, k, true, &s, &sl) != KMS_OK) {
        c->detail = "a required base64 field is missing";
        return KMS_EINVAL;
    }
    if (sl > (max / 3 + 1) * 4 + 4) {
        c->detail = "a field is too large";
        return KMS_ETOOBIG;
    }
    if (kc_b64_decode(s, sl, KC_B64_STD, out, len) != 0) {
        c->detail = "a field is not valid base64";
        return KMS_EINVAL;
    }
    if (*len > max) {
        kc_free_wipe(*out, *len);
        *out = NULL;
        c->detail = "a field is too large";
        return KMS_ETOOBIG;
    }
    return KMS_OK;
}

static json_t *
b64_json(const uint8_t *p, size_t n)
{
    char *s = kc_b64_encode(p, n, KC_B64_STD);
    json_t *j = s ? json_string(s) : NULL;

    if (s)
        kc_free_wipe(s, strlen(s));
    return j;
}

static const json_t *
context_of(const json_t *o)
{
    return json_object_get(o, "context");
}

/* ---- create, list, describe ------------------------------------------------
 */

kms_err
kms_h_key_create(kms_ctx *c)
{
    kms_key_create_opts o = {0};
    const json_t *rp = json_object_get(c->body, "rotation_period");
    json_t *rec = NULL;
    kms_err rc;

    if (kms_json_get_str(c->body, "name", true, &o.name, NULL) != KMS_OK ||
        kms_json_get_str(c->body, "type", true, &o.type, NULL) != KMS_OK ||
        kms_json_get_str(c->body, "backend", false, &o.backend, NULL) !=
            KMS_OK ||
        kms_json_get_str(c->body, "description", false, &o.description, NULL) !=
            KMS_OK) {
        c->detail = "name and type (strings) are required";
        return KMS_EINVAL;
    }
    if (rp && !kms_parse_duration(rp, &o.rotation_period)) {
        c->detail = "rotation_period: a duration";
        return KMS_EINVAL;
    }
    o.exportable = json_is_true(json_object_get(c->body, "exportable"));
    o.tags = json_object_get(c->body, "tags");
    o.backend_config = json_object_get(c->body, "backend_config");
    json_object_set_new(c->audit, "action", json_string("create"));
    if ((rc = kms_key_create(c, c->param_org, &o, &rec)) != KMS_OK)
        return rc;
    c->out = kms_key_view(rec);
    json_decref(rec);
    c->status = 201;
    return c->out ? KMS_OK : KMS_ENOMEM;
}

kms_err
kms_h_key_list(kms_ctx *c)
{
    json_t *l = NULL;
    kms_err rc;

    json_object_set_new(c->audit, "action", json_string("list"));
    if ((rc = kms_key_list(c, c->param_org, &l)) != KMS_OK)
        return rc;
    c->out = json_pack("{s:o}", "keys", l);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

kms_err
kms_h_key_read(kms_ctx *c)
{
    json_t *rec = NULL;
    kms_err rc;

    json_object_set_new(c->audit, "action", json_string("describe"));
    if ((rc = kms_key_get(c, c->param_org, c->param_id, KMS_CAP_READ, &rec)) !=
        KMS_OK)
        return rc;
    c->out = kms_key_view(rec);
    json_decref(rec);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

kms_err
kms_h_key_get_sub(kms_ctx *c)
{
    uint8_t *der = NULL;
    size_t dl = 0;
    char *pem;
    kms_err rc;

    if (strcmp(c->rest, "pubkey") != 0) {
        c->detail = "unknown key resource";
        return KMS_ENOROUTE;
    }
    json_object_set_new(c->audit, "action", json_string("pubkey"));
    if ((rc = kms_key_public_der(c, c->param_org, c->param_id, &der, &dl)) !=
        KMS_OK)
        return rc;
    pem = kms_pem_public(der, dl);
    c->out = pem ? json_pack("{s:s,s:o}", "pem", pem, "der", b64_json(der, dl))
                 : NULL;
    free(pem);
    free(der);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

/* ---- cryptographic actions (one item; batch forms loop) --------------------
 */

typedef kms_err (*item_fn)(kms_ctx *c, const json_t *in, json_t **out);

static kms_err
do_encrypt(kms_ctx *c, const json_t *in, json_t **out)
{
    uint8_t *pt = NULL, *blob = NULL;
    size_t pl = 0, bl = 0;
    uint32_t v = 0;
    kms_err rc;

    if ((rc = b64_field(c, in, "plaintext", KMS_KEY_PT_MAX, &pt, &pl)) !=
        KMS_OK)
        return rc;
    rc = kms_key_encrypt(c, c->param_org, c->param_id, pt, pl, context_of(in),
                         &blob, &bl, &v);
    if (rc == KMS_OK)
        *out = json_pack("{s:o,s:I}", "ciphertext", b64_json(blob, bl),
                         "version", (json_int_t)v);
    kc_free_wipe(pt, pl);
    free(blob);
    return rc;
}

static kms_err
do_decrypt(kms_ctx *c, const json_t *in, json_t **out)
{
    uint8_t *ct = NULL, *pt = NULL;
    size_t cl = 0, pl = 0;
    uint32_t v = 0;
    kms_err rc;

    if ((rc = b64_field(c, in, "ciphertext", KMS_KEY_PT_MAX + 256, &ct, &cl)) !=
        KMS_OK)
        return rc;
    rc = kms_key_decrypt(c, c->param_org, c->param_id, ct, cl, context_of(in),
                         &pt, &pl, NULL, &v);
    if (rc == KMS_OK)
        *out = json_pack("{s:o,s:I}", "plaintext", b64_json(pt, pl), "version",
                         (json_int_t)v);
    kc_free_wipe(ct, cl);
    kc_free_wipe(pt, pl);
    return rc;
}

static kms_err
do_rewrap(kms_ctx *c, const json_t *in, json_t **out)
{
    uint8_t *ct = NULL, *pt = NULL, *blob = NULL;
    size_t cl = 0, pl = 0, bl = 0;
    uint32_t v = 0;
    const json_t *nc = json_object_get(in, "new_context");
    kms_err rc;

    if ((rc = b64_field(c, in, "ciphertext", KMS_KEY_PT_MAX + 256, &ct, &cl)) !=
        KMS_OK)
        return rc;
    if ((rc = kms_key_decrypt(c, c->param_org, c->param_id, ct, cl,
                              context_of(in), &pt, &pl, NULL, NULL)) == KMS_OK)
        rc = kms_key_encrypt(c, c->param_org, c->param_id, pt, pl,
                             nc ? nc : context_of(in), &blob, &bl, &v);
    if (rc == KMS_OK)
        *out = json_pack("{s:o,s:I}", "ciphertext", b64_json(blob, bl),
                         "version", (json_int_t)v);
    kc_free_wipe(ct, cl);
    kc_free_wipe(pt, pl);
    free(blob);
    return rc;
}

static kms_err
do_datakey(kms_ctx *c, const json_t *in, json_t **out)
{
    const json_t *nb = json_object_get(in, "bytes");
    json_int_t n = nb ? json_integer_value(nb) : 32;
    bool want_pt = !json_is_false(json_object_get(in, "plaintext"));
    uint8_t *dk = NULL, *blob = NULL;
    size_t bl = 0;
    uint32_t v = 0;
    kms_err rc;

    if ((nb && !json_is_integer(nb)) || n < 1 || n > KMS_KEY_RANDOM_MAX) {
        c->detail = "bytes: 1 to 1024";
        return KMS_EINVAL;
    }
    if (!(dk = kc_secure_alloc((size_t)n)))
        return KMS_ENOMEM;
    kc_random(dk, (size_t)n);
    rc = kms_key_encrypt(c, c->param_org, c->param_id, dk, (size_t)n,
                         context_of(in), &blob, &bl, &v);
    if (rc == KMS_OK)
        *out = json_pack("{s:o,s:I,s:o*}", "ciphertext", b64_json(blob, bl),
                         "version", (json_int_t)v, "plaintext",
                         want_pt ? b64_json(dk, (size_t)n) : NULL);
    kc_secure_free(dk);
    free(blob);
    return rc;
}

static kms_err
sign_input(kms_ctx *c, const json_t *in, kms_sign_mode *mode, uint8_t **m,
           size_t *ml)
{
    bool dig = json_object_get(in, "digest") != NULL;

    *mode = dig ? KMS_SIGN_DIGEST : KMS_SIGN_RAW;
    return b64_field(c, in, dig ? "digest" : "message", KMS_KEY_PT_MAX, m, ml);
}

static kms_err
do_sign(kms_ctx *c, const json_t *in, json_t **out)
{
    uint8_t *m = NULL, *sig = NULL;
    size_t ml = 0, sl = 0;
    uint32_t v = 0;
    kms_sign_mode mode;
    kms_err rc;

    if ((rc = sign_input(c, in, &mode, &m, &ml)) != KMS_OK)
        return rc;
    rc = kms_key_sign(c, c->param_org, c->param_id, mode, m, ml, &sig, &sl, &v);
    if (rc == KMS_OK)
        *out = json_pack("{s:o,s:I}", "signature", b64_json(sig, sl), "version",
                         (json_int_t)v);
    kc_free_wipe(m, ml);
    free(sig);
    return rc;
}

static kms_err
do_verify(kms_ctx *c, const json_t *in, json_t **out)
{
    uint8_t *m = NULL, *sig = NULL;
    size_t ml = 0, sl = 0;
    const json_t *vj = json_object_get(in, "version");
    json_int_t v = vj ? json_integer_value(vj) : 0;
    kms_sign_mode mode;
    bool valid = false;
    kms_err rc;

    if ((vj && !json_is_integer(vj)) || v < 0 || v > UINT32_MAX) {
        c->detail = "version: a positive integer";
        return KMS_EINVAL;
    }
    if ((rc = sign_input(c, in, &mode, &m, &ml)) != KMS_OK)
        return rc;
    if ((rc = b64_field(c, in, "signature", 8192, &sig, &sl)) == KMS_OK)
        rc = kms_key_verify(c, c->param_org, c->param_id, mode, m, ml, sig, sl,
                            (uint32_t)v, &valid);
    if (rc == KMS_OK)
        *out = json_pack("{s:b}", "valid", valid);
    kc_free_wipe(m, ml);
    free(sig);
    return rc;
}

/* {"batch": [item, ...]} -> {"results": [result or {"error": code}]}:
 * each item succeeds or fails on its own. */
static kms_err
run_items(kms_ctx *c, item_fn fn)
{
    const json_t *batch = json_object_get(c->body, "batch");
    json_t *res, *item, *one;
    size_t i;
    kms_err rc;

    if (!batch) {
        one = NULL;
        rc = fn(c, c->body, &one);
        if (rc == KMS_OK && !one)
            rc = KMS_ENOMEM;
        c->out = one;
        return rc;
    }
    if (!json_is_array(batch) || json_array_size(batch) == 0 ||
        json_array_size(batch) > KMS_KEY_BATCH_MAX) {
        c->detail = "batch: an array of 1 to 100 items";
        return KMS_EINVAL;
    }
    if (!(res = json_array()))
        return KMS_ENOMEM;
    json_array_foreach(batch, i, item)
    {
        one = NULL;
        if (!json_is_object(item))
            rc = KMS_EINVAL;
        else
            rc = fn(c, item, &one);
        if (rc == KMS_EDENIED || rc == KMS_EAUTH) {
            /* a denial stops the batch: it is the same key for all */
            json_decref(one);
            json_decref(res);
            return rc;
        }
        if (rc != KMS_OK || !one) {
            json_decref(one);
            one = json_pack("{s:s,s:s}", "error", kms_errcode(rc), "message",
                            c->detail ? c->detail : kms_strerror(rc));
        }
        c->detail = NULL;
        json_array_append_new(res, one);
    }
    json_object_set_new(c->audit, "batch",
                        json_integer((json_int_t)json_array_size(batch)));
    c->decision = "allow";
    c->out = json_pack("{s:o}", "results", res);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
do_export(kms_ctx *c)
{
    json_t *rec = NULL, *vers, *e;
    size_t i;
    kms_err rc;

    if ((rc = kms_key_get(c, c->param_org, c->param_id, KMS_CAP_ADMIN, &rec)) !=
        KMS_OK)
        return rc;
    if (!json_is_true(json_object_get(rec, "exportable"))) {
        json_decref(rec);
        c->detail = "the key was not created exportable";
        return KMS_EDENIED;
    }
    vers = json_array();
    json_array_foreach(json_object_get(rec, "versions"), i, e)
    {
        json_array_append_new(vers,
                              json_pack("{s:O,s:O}", "version",
                                        json_object_get(e, "version"),
                                        "material", json_object_get(e, "m")));
    }
    c->out = json_pack("{s:s,s:O,s:o,s:s}", "name", c->param_id, "type",
                       json_object_get(rec, "type"), "versions", vers, "format",
                       "raw key (symmetric, ML-DSA) or PKCS#8 DER");
    json_decref(rec);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
do_import_params(kms_ctx *c)
{
    char *pem = NULL, *tok = NULL, t[32];
    int64_t exp = 0;
    kms_err rc;

    if ((rc = kms_key_import_params(c, c->param_org, c->param_id, &pem, &tok,
                                    &exp)) != KMS_OK)
        return rc;
    kms_time_str(exp, t, sizeof t);
    c->out = json_pack("{s:s,s:s,s:s,s:s}", "wrapping_public_key", pem,
                       "import_token", tok, "wrapping_algorithm",
                       "RSAES_OAEP_SHA_256", "expires_at", t);
    free(pem);
    kc_free_wipe(tok, strlen(tok));
    return c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
do_import(kms_ctx *c)
{
    kms_key_create_opts o = {0};
    const char *tok = NULL;
    uint8_t *w = NULL;
    size_t wl = 0;
    json_t *rec = NULL;
    kms_err rc;

    o.name = c->param_id;
    if (kms_json_get_str(c->body, "type", true, &o.type, NULL) != KMS_OK ||
        kms_json_get_str(c->body, "import_token", true, &tok, NULL) != KMS_OK ||
        kms_json_get_str(c->body, "description", false, &o.description, NULL) !=
            KMS_OK) {
        c->detail = "type, import_token and wrapped_material are required";
        return KMS_EINVAL;
    }
    o.exportable = json_is_true(json_object_get(c->body, "exportable"));
    if ((rc = b64_field(c, c->body, "wrapped_material", 8192, &w, &wl)) !=
        KMS_OK)
        return rc;
    rc = kms_key_import(c, c->param_org, &o, tok, w, wl, &rec);
    kc_free_wipe(w, wl);
    if (rc != KMS_OK)
        return rc;
    c->out = kms_key_view(rec);
    json_decref(rec);
    c->status = 201;
    return c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
state_action(kms_ctx *c, kms_key_op op)
{
    kms_key_op_args a = {0};
    const json_t *d = json_object_get(c->body, "pending_days");
    json_t *rec = NULL;
    kms_err rc;

    if (op == KMS_KEY_SCHEDULE_DELETE) {
        json_int_t days = d ? json_integer_value(d) : 30;
        if ((d && !json_is_integer(d)) || days < 0 || days > 365) {
            c->detail = "pending_days: 7 to 30";
            return KMS_EINVAL;
        }
        a.pending_days = (uint32_t)days;
        a.immediate = json_is_true(json_object_get(c->body, "immediate"));
    }
    a.rotation = json_object_get(c->body, "rotation_period");
    a.min_decrypt = json_object_get(c->body, "min_decrypt_version");
    a.tags = json_object_get(c->body, "tags");
    if ((rc = kms_key_update(c, c->param_org, c->param_id, op, &a, &rec)) !=
        KMS_OK)
        return rc;
    c->out = rec ? kms_key_view(rec)
                 : json_pack("{s:s,s:b}", "name", c->param_id, "deleted", 1);
    json_decref(rec);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

static const struct {
    const char *name;
    item_fn fn;
    int op; /* kms_key_op, or -1 */
} actions[] = {
    {"encrypt", do_encrypt, -1},
    {"decrypt", do_decrypt, -1},
    {"rewrap", do_rewrap, -1},
    {"datakey", do_datakey, -1},
    {"sign", do_sign, -1},
    {"verify", do_verify, -1},
    {"enable", NULL, KMS_KEY_ENABLE},
    {"disable", NULL, KMS_KEY_DISABLE},
    {"delete", NULL, KMS_KEY_SCHEDULE_DELETE},
    {"cancel-delete", NULL, KMS_KEY_CANCEL_DELETE},
    {"rotate", NULL, KMS_KEY_ROTATE},
    {"config", NULL, KMS_KEY_CONFIG},
    {"tag", NULL, KMS_KEY_TAG},
    {"untag", NULL, KMS_KEY_UNTAG},
    {"export", NULL, -1},
    {"import-params", NULL, -2},
    {"import", NULL, -3},
};

kms_err
kms_h_key_action(kms_ctx *c)
{
    if (!c->body) {
        c->detail = "a JSON object body is required";
        return KMS_EJSON;
    }
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(c->rest, actions[i].name) != 0)
            continue;
        json_object_set_new(c->audit, "action", json_string(actions[i].name));
        if (actions[i].fn)
            return run_items(c, actions[i].fn);
        if (actions[i].op >= 0)
            return state_action(c, (kms_key_op)actions[i].op);
        if (actions[i].op == -2)
            return do_import_params(c);
        if (actions[i].op == -3)
            return do_import(c);
        return do_export(c);
    }
    c->detail = "unknown key action";
    return KMS_ENOROUTE;
}

kms_err
kms_h_random(kms_ctx *c)
{
    const json_t *nb = json_object_get(c->body, "bytes");
    json_int_t n = json_integer_value(nb);
    uint8_t *r;
    kms_err rc;

    if (!json_is_integer(nb) || n < 1 || n > KMS_KEY_RANDOM_MAX) {
        c->detail = "bytes: 1 to 1024";
        return KMS_EINVAL;
    }
    if ((rc = kms_authorize(c, c->param_org, "random", KMS_CAP_READ)) != KMS_OK)
        return rc;
    if (!(r = malloc((size_t)n)))
        return KMS_ENOMEM;
    kc_random(r, (size_t)n);
    c->out = json_pack("{s:o}", "random", b64_json(r, (size_t)n));
    kc_free_wipe(r, (size_t)n);
    return c->out ? KMS_OK : KMS_ENOMEM;
}
