/* SPDX-License-Identifier: Apache-2.0 */
/* The named-key engine (keys_int.h): records, versions, states, soft-key
 * cryptography (OpenSSL for AES-256-GCM, ECDSA and Ed25519; libsodium for
 * ChaCha20-Poly1305; src/crypto for ML-DSA). Ciphertext format: see
 * docs/keys.md. */
#include "keys_int.h"
#include "keys_ext.h"

#include "kc.h"
#include "kms_mldsa.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 12u
#define TAG_LEN   16u
#define DAY       86400

static const struct {
    const char *name;
    bool symmetric;
    int mldsa; /* kms_mldsa_param or 0 */
} types[KMS_KT_COUNT] = {
    [KMS_KT_AES256_GCM] = {"aes256-gcm", true, 0},
    [KMS_KT_CHACHA20_POLY1305] = {"chacha20-poly1305", true, 0},
    [KMS_KT_ECDSA_P256] = {"ecdsa-p256", false, 0},
    [KMS_KT_ECDSA_SECP256K1] = {"ecdsa-secp256k1", false, 0},
    [KMS_KT_ED25519] = {"ed25519", false, 0},
    [KMS_KT_ML_DSA_44] = {"ml-dsa-44", false, KMS_MLDSA_44},
    [KMS_KT_ML_DSA_65] = {"ml-dsa-65", false, KMS_MLDSA_65},
    [KMS_KT_ML_DSA_87] = {"ml-dsa-87", false, KMS_MLDSA_87},
};

int
kms_key_type_parse(const char *name)
{
    for (int i = 0; name && i < KMS_KT_COUNT; i++)
        if (strcmp(types[i].name, name) == 0)
            return i;
    return -1;
}

const char *
kms_key_type_name(kms_key_type t)
{
    return (unsigned)t < KMS_KT_COUNT ? types[t].name : "?";
}

bool
kms_key_type_symmetric(kms_key_type t)
{
    return (unsigned)t < KMS_KT_COUNT && types[t].symmetric;
}

int
kms_key_rec_type(const json_t *rec)
{
    return kms_key_type_parse(json_string_value(json_object_get(rec, "type")));
}

/* ---- records -------------------------------------------------------------
 */

static void
key_table(char *buf, size_t cap, const char *org)
{
    snprintf(buf, cap, "keys/%s", org);
}

static void
key_res(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "keys/%s", name);
}

static json_t *
find_ver(const json_t *rec, uint32_t v)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(rec, "versions"), i, e)
    {
        if (json_integer_value(json_object_get(e, "version")) == (json_int_t)v)
            return e;
    }
    return NULL;
}

static uint32_t
cur_ver(const json_t *rec)
{
    return (uint32_t)json_integer_value(json_object_get(rec, "current"));
}

/* Decode a base64 field of a version; *out malloc'd: the caller wipes and
 * frees it (kc_free_wipe(*out, *len)). Heap rather than kc_secure_alloc:
 * a guarded allocation costs several system calls, and these buffers live
 * for one request. */
static kms_err
ver_bytes(const json_t *ver, const char *field, uint8_t **out, size_t *len)
{
    const char *s = json_string_value(json_object_get(ver, field));

    *out = NULL;
    *len = 0;
    if (!s || kc_b64_decode(s, strlen(s), KC_B64_STD, out, len) != 0)
        return KMS_ESTORE;
    return KMS_OK;
}

static bool
deletion_due(kms_ctx *c, const json_t *rec)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    int64_t when = json_integer_value(json_object_get(rec, "deletion"));

    return st && strcmp(st, "pending_deletion") == 0 && when &&
           c->srv->now() >= when;
}

static kms_err
rec_read(kms_ctx *c, kms_txn *txn, const char *org, const char *name,
         json_t **out)
{
    char tab[KMS_TABLE_MAX];
    kms_err rc;

    *out = NULL;
    if (!kms_valid_ident(name)) {
        c->detail = "invalid key name";
        return KMS_ENOTFOUND;
    }
    key_table(tab, sizeof tab, org);
    rc = kms_json_get(txn, tab, name, out);
    if (rc == KMS_OK && deletion_due(c, *out)) {
        json_decref(*out);
        *out = NULL;
        rc = KMS_ENOTFOUND;
    }
    if (rc == KMS_ENOTFOUND)
        c->detail = "no such key";
    return rc;
}

kms_err
kms_key_get(kms_ctx *c, const char *org, const char *name, unsigned cap,
            json_t **out)
{
    char res[KMS_NAME_MAX + 8];
    kms_txn txn = {0};
    kms_err rc;

    *out = NULL;
    json_object_set_new(c->audit, "key", json_string(name ? name : ""));
    key_res(res, sizeof res, name ? name : "");
    if (cap && (rc = kms_authorize(c, org, res, cap)) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = rec_read(c, &txn, org, name, out);
    kms_txn_abort(&txn);
    return rc;
}

json_t *
kms_key_view(const json_t *rec)
{
    json_t *v = json_object(), *vers = json_array(), *e;
    size_t i;
    char t[32];

    if (!v || !vers) {
        json_decref(v);
        json_decref(vers);
        return NULL;
    }
    static const char *const copy[] = {
        "name",        "type",        "backend",         "state",
        "current",     "min_decrypt", "rotation_period", "exportable",
        "description", "tags",        "created",         "deletion",
        "rotated",     "usage",       "backend_config",  "origin"};
    for (i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        json_t *x = json_object_get(rec, copy[i]);
        if (x)
            json_object_set(v, copy[i], x);
    }
    kms_time_str(json_integer_value(json_object_get(rec, "created")), t,
                 sizeof t);
    json_object_set_new(v, "created_at", json_string(t));
    if (json_integer_value(json_object_get(rec, "deletion"))) {
        kms_time_str(json_integer_value(json_object_get(rec, "deletion")), t,
                     sizeof t);
        json_object_set_new(v, "deletion_at", json_string(t));
    }
    json_array_foreach(json_object_get(rec, "versions"), i, e)
    {
        json_array_append_new(vers, json_pack("{s:O,s:O}", "version",
                                              json_object_get(e, "version"),
                                              "created",
                                              json_object_get(e, "created")));
    }
    json_object_set_new(v, "versions", vers);
    return v;
}

/* ---- soft key material ---------------------------------------------------
 */

static char *
b64(const uint8_t *p, size_t n)
{
    return kc_b64_encode(p, n, KC_B64_STD);
}

/* DER SubjectPublicKeyInfo for an ML-DSA public key (RFC 9881):
 * SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.3.17/18/19 }, BIT STRING }. */
static uint8_t *
mldsa_spki(int param, const uint8_t *pk, size_t pk_len, size_t *len)
{
    static const uint8_t oid[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                  0x65, 0x03, 0x04, 0x03, 0x00};
    size_t bits = pk_len + 1, alg = 2 + sizeof oid, inner, n = 0;
    uint8_t *d;

    inner = alg + 4 + bits; /* BIT STRING header: 03 82 hi lo */
    d = malloc(4 + inner);
    if (!d)
        return NULL;
    d[n++] = 0x30;
    d[n++] = 0x82;
    d[n++] = (uint8_t)(inner >> 8);
    d[n++] = (uint8_t)inner;
    d[n++] = 0x30;
    d[n++] = (uint8_t)sizeof oid;
    memcpy(d + n, oid, sizeof oid);
    d[n + sizeof oid - 1] = (uint8_t)(param == KMS_MLDSA_44   ? 17
                                      : param == KMS_MLDSA_65 ? 18
                                                              : 19);
    n += sizeof oid;
    d[n++] = 0x03;
    d[n++] = 0x82;
    d[n++] = (uint8_t)(bits >> 8);
    d[n++] = (uint8_t)bits;
    d[n++] = 0x00;
    memcpy(d + n, pk, pk_len);
    *len = n + pk_len;
    return d;
}

/* New material for one version: "m" (secret, base64) and for asymmetric
 * keys "pub" (DER SPKI, base64). */
static kms_err
gen_material(kms_key_type t, json_t *ver)
{
    uint8_t *sk = NULL, *pub = NULL, *der = NULL;
    size_t sk_len = 0, pub_len = 0;
    char *ms = NULL, *ps = NULL;
    EVP_PKEY *pk = NULL;
    kms_err rc = KMS_EINTERNAL;
    int n;

    if (types[t].symmetric) {
        sk_len = 32;
        if (!(sk = kc_secure_alloc(sk_len)))
            return KMS_ENOMEM;
        kc_random(sk, sk_len);
    } else if (types[t].mldsa) {
        kms_mldsa_param p = (kms_mldsa_param)types[t].mldsa;
        uint8_t pkb[KMS_MLDSA_PK_MAX];
        sk_len = kms_mldsa_sk_len(p);
        if (!(sk = kc_secure_alloc(sk_len)))
            return KMS_ENOMEM;
        if (kms_mldsa_keygen(p, pkb, sizeof pkb, sk, sk_len) != KMS_MLDSA_OK ||
            !(pub = mldsa_spki(p, pkb, kms_mldsa_pk_len(p), &pub_len)))
            goto out;
    } else {
        pk = t == KMS_KT_ED25519
                 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                 : EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                     t == KMS_KT_ECDSA_P256 ? "P-256"
                                                            : "secp256k1");
        if (!pk)
            goto out;
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
        der = NULL;
        n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (n <= 0 || !(sk = kc_secure_alloc((size_t)n))) {
            OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
            goto out;
        }
        memcpy(sk, der, (size_t)n);
        sk_len = (size_t)n;
        OPENSSL_clear_free(der, (size_t)n);
        der = NULL;
        if ((n = i2d_PUBKEY(pk, &der)) <= 0)
            goto out;
        if (!(pub = malloc((size_t)n)))
            goto out;
        memcpy(pub, der, (size_t)n);
        pub_len = (size_t)n;
    }
    ms = b64(sk, sk_len);
    ps = pub ? b64(pub, pub_len) : NULL;
    rc = KMS_ENOMEM;
    if (!ms || (pub && !ps))
        goto out;
    json_object_set_new(ver, "m", json_string(ms));
    if (ps)
        json_object_set_new(ver, "pub", json_string(ps));
    rc = KMS_OK;
out:
    kc_secure_free(sk);
    free(pub);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    if (ms)
        kc_free_wipe(ms, strlen(ms));
    free(ps);
    return rc;
}

static kms_err
add_version(kms_ctx *c, json_t *rec, kms_key_type t)
{
    uint32_t v = cur_ver(rec) + 1;
    json_t *ver = json_pack("{s:I,s:I}", "version", (json_int_t)v, "created",
                            (json_int_t)c->srv->now());
    kms_err rc;

    if (!ver)
        return KMS_ENOMEM;
    if ((rc = gen_material(t, ver)) != KMS_OK) {
        json_decref(ver);
        return rc;
    }
    json_array_append_new(json_object_get(rec, "versions"), ver);
    json_object_set_new(rec, "current", json_integer(v));
    json_object_set_new(rec, "rotated", json_integer(c->srv->now()));
    return KMS_OK;
}

static kms_err
ext_version(kms_ctx *c, json_t *rec, const char *backend, kms_key_type t,
            const json_t *cfg)
{
    json_t *ver = json_pack("{s:I,s:I}", "version", (json_int_t)1, "created",
                            (json_int_t)c->srv->now());
    kms_err rc;

    if (!ver)
        return KMS_ENOMEM;
    if ((rc = kms_key_ext_create(c, backend, t, cfg, ver)) != KMS_OK) {
        json_decref(ver);
        return rc;
    }
    json_object_set(rec, "backend_config", (json_t *)cfg);
    json_array_append_new(json_object_get(rec, "versions"), ver);
    json_object_set_new(rec, "current", json_integer(1));
    json_object_set_new(rec, "rotated", json_integer(c->srv->now()));
    return KMS_OK;
}

static bool
is_soft(const json_t *rec)
{
    const char *b = json_string_value(json_object_get(rec, "backend"));
    return b && strcmp(b, "soft") == 0;
}

static bool
tags_ok(const json_t *tags)
{
    const char *k;
    json_t *v;

    if (!tags)
        return true;
    if (!json_is_object(tags) || json_object_size(tags) > 50)
        return false;
    json_object_foreach((json_t *)tags, k, v)
    {
        if (!json_is_string(v) || strlen(k) == 0 || strlen(k) > 128 ||
            json_string_length(v) > 256)
            return false;
    }
    return true;
}

/* Version 1 from imported material (kms_key_create_opts.material). */
static kms_err
import_version(kms_ctx *c, json_t *rec, kms_key_type t, const uint8_t *m,
               size_t ml)
{
    json_t *ver = json_pack("{s:I,s:I}", "version", (json_int_t)1, "created",
                            (json_int_t)c->srv->now());
    const unsigned char *p = m;
    EVP_PKEY *pk = NULL;
    uint8_t *pub = NULL, *der = NULL;
    size_t pl = 0;
    char *ms = NULL, *ps = NULL, grp[32];
    kms_err rc = KMS_EINVAL;
    int n = 0;

    c->detail = "the material does not fit the key type";
    if (!ver)
        return KMS_ENOMEM;
    if (types[t].symmetric) {
        if (ml != 32)
            goto out;
    } else if (types[t].mldsa) {
        kms_mldsa_param mp = (kms_mldsa_param)types[t].mldsa;
        uint8_t pkb[KMS_MLDSA_PK_MAX];
        if (ml != kms_mldsa_sk_len(mp) ||
            kms_mldsa_sk_to_pk(mp, m, ml, pkb, sizeof pkb) != KMS_MLDSA_OK ||
            !(pub = mldsa_spki(mp, pkb, kms_mldsa_pk_len(mp), &pl)))
            goto out;
    } else {
        if (!(pk = d2i_AutoPrivateKey_ex(NULL, &p, (long)ml, NULL, NULL)) ||
            p != m + ml)
            goto out;
        if (t == KMS_KT_ED25519
                ? EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519
                : (EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
                   !EVP_PKEY_get_group_name(pk, grp, sizeof grp, NULL) ||
                   strcmp(grp, t == KMS_KT_ECDSA_P256 ? "prime256v1"
                                                      : "secp256k1") != 0))
            goto out;
        if ((n = i2d_PUBKEY(pk, &der)) <= 0 || !(pub = malloc((size_t)n)))
            goto out;
        memcpy(pub, der, (size_t)n);
        pl = (size_t)n;
    }
    rc = KMS_ENOMEM;
    if (!(ms = b64(m, ml)) || (pub && !(ps = b64(pub, pl))))
        goto out;
    json_object_set_new(ver, "m", json_string(ms));
    if (ps)
        json_object_set_new(ver, "pub", json_string(ps));
    json_array_append(json_object_get(rec, "versions"), ver);
    json_object_set_new(rec, "current", json_integer(1));
    json_object_set_new(rec, "rotated", json_integer(c->srv->now()));
    json_object_set_new(rec, "origin", json_string("external"));
    c->detail = NULL;
    rc = KMS_OK;
out:
    json_decref(ver);
    EVP_PKEY_free(pk);
    OPENSSL_free(der);
    free(pub);
    if (ms)
        kc_free_wipe(ms, strlen(ms));
    free(ps);
    return rc;
}

static bool
awaits_import(const json_t *old, const char *type)
{
    const char *st = json_string_value(json_object_get(old, "state"));
    const char *ot = json_string_value(json_object_get(old, "type"));
    return st && ot && strcmp(st, "pending_import") == 0 &&
           strcmp(ot, type) == 0;
}

kms_err
kms_key_create(kms_ctx *c, const char *org, const kms_key_create_opts *o,
               json_t **out)
{
    char tab[KMS_TABLE_MAX], res[KMS_NAME_MAX + 8];
    const char *backend = o->backend ? o->backend : "soft";
    int t = kms_key_type_parse(o->type);
    kms_txn txn = {0};
    json_t *rec = NULL, *old = NULL;
    kms_err rc;

    *out = NULL;
    if (!kms_valid_ident(o->name)) {
        c->detail = "name: 1-64 of [A-Za-z0-9._-]";
        return KMS_EINVAL;
    }
    json_object_set_new(c->audit, "key", json_string(o->name));
    key_res(res, sizeof res, o->name);
    if ((rc = kms_authorize(c, org, res, KMS_CAP_CREATE)) != KMS_OK)
        return rc;
    if (t < 0) {
        c->detail = "type: aes256-gcm, chacha20-poly1305, ecdsa-p256, "
                    "ecdsa-secp256k1, ed25519, ml-dsa-44, ml-dsa-65, ml-dsa-87";
        return KMS_EINVAL;
    }
    if (strcmp(backend, "soft") != 0 && !kms_key_ext_backend(backend)) {
        c->detail = "backend: soft, pkcs11, aws, gcp or azure";
        return KMS_EINVAL;
    }
    if (strcmp(backend, "soft") != 0 && o->exportable) {
        c->detail = "keys in an external backend are never exportable";
        return KMS_EINVAL;
    }
    if (!tags_ok(o->tags) ||
        (o->description && strlen(o->description) > 8192) ||
        (o->rotation_period && (o->rotation_period < (uint64_t)DAY ||
                                o->rotation_period > 2560 * (uint64_t)DAY))) {
        c->detail = "bad tags, description or rotation period (1-2560 days)";
        return KMS_EINVAL;
    }
    rec = json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:s?,s:[],s:O?,"
        "s:s}",
        "name", o->name, "type", types[t].name, "backend", backend, "state",
        "enabled", "current", (json_int_t)0, "min_decrypt", (json_int_t)1,
        "rotation_period", (json_int_t)o->rotation_period, "created",
        (json_int_t)c->srv->now(), "exportable", o->exportable, "description",
        o->description, "versions", "tags", o->tags, "usage",
        types[t].symmetric ? "encrypt_decrypt" : "sign_verify");
    if (!rec)
        return KMS_ENOMEM;
    if (!json_is_object(json_object_get(rec, "tags")))
        json_object_set_new(rec, "tags", json_object());
    if (o->pending_import && strcmp(backend, "soft") == 0) {
        json_object_set_new(rec, "state", json_string("pending_import"));
        json_object_set_new(rec, "origin", json_string("external"));
        rc = KMS_OK;
    } else if (strcmp(backend, "soft") == 0 && o->material)
        rc = import_version(c, rec, (kms_key_type)t, o->material,
                            o->material_len);
    else if (strcmp(backend, "soft") == 0)
        rc = add_version(c, rec, (kms_key_type)t);
    else
        rc = ext_version(c, rec, backend, (kms_key_type)t, o->backend_config);
    if (rc != KMS_OK)
        goto out;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK) {
        rc = KMS_ESTORE;
        goto out;
    }
    if ((rc = kms_org_exists(&txn, org)) != KMS_OK)
        goto out;
    key_table(tab, sizeof tab, org);
    rc = kms_json_get(&txn, tab, o->name, &old);
    if (rc == KMS_OK && !deletion_due(c, old) &&
        !(o->material && awaits_import(old, types[t].name))) {
        c->detail = "a key with this name exists";
        rc = KMS_EEXIST;
        goto out;
    }
    if (rc == KMS_OK && o->material && awaits_import(old, types[t].name)) {
        /* material for a key made without: keep its settings */
        static const char *const keep[] = {"created", "description", "tags",
                                           "exportable"};
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
            if (json_object_get(old, keep[i]))
                json_object_set(rec, keep[i], json_object_get(old, keep[i]));
    }
    if ((rc != KMS_OK && rc != KMS_ENOTFOUND) ||
        (rc = kms_json_put(&txn, tab, o->name, rec)) != KMS_OK ||
        (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    json_object_set_new(c->audit, "key_type", json_string(types[t].name));
    *out = rec;
    rec = NULL;
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    json_decref(old);
    return rc;
}

/* ---- state changes ---------------------------------------------------------
 */

static kms_err
apply_config(kms_ctx *c, json_t *rec, const kms_key_op_args *a)
{
    if (a->rotation) {
        json_int_t r = json_integer_value(a->rotation);
        if (!json_is_integer(a->rotation) || r < 0 ||
            (r && (r < DAY || r > 2560 * (json_int_t)DAY))) {
            c->detail = "rotation_period: 0 or 1-2560 days in seconds";
            return KMS_EINVAL;
        }
        if (r && kms_key_type_symmetric(kms_key_rec_type(rec)) == false) {
            c->detail = "automatic rotation is for symmetric keys";
            return KMS_EUNSUPPORTED;
        }
        json_object_set_new(rec, "rotation_period", json_integer(r));
        if (r)
            json_object_set_new(rec, "rotated", json_integer(c->srv->now()));
    }
    if (a->min_decrypt) {
        json_int_t m = json_integer_value(a->min_decrypt);
        if (!json_is_integer(a->min_decrypt) || m < 1 ||
            m > (json_int_t)cur_ver(rec)) {
            c->detail = "min_decrypt_version: 1 to the current version";
            return KMS_EINVAL;
        }
        json_object_set_new(rec, "min_decrypt", json_integer(m));
    }
    return KMS_OK;
}

static kms_err
apply_tags(kms_ctx *c, json_t *rec, kms_key_op op, const json_t *tags)
{
    json_t *cur = json_object_get(rec, "tags"), *v;
    size_t i;

    if (op == KMS_KEY_TAG) {
        if (!tags || !tags_ok(tags) ||
            json_object_size(cur) + json_object_size(tags) > 50) {
            c->detail = "tags: an object of up to 50 strings";
            return KMS_EINVAL;
        }
        return json_object_update(cur, (json_t *)tags) ? KMS_ENOMEM : KMS_OK;
    }
    if (!json_is_array(tags)) {
        c->detail = "tag keys: an array of strings";
        return KMS_EINVAL;
    }
    json_array_foreach(tags, i, v)
    {
        if (!json_is_string(v)) {
            c->detail = "tag keys: an array of strings";
            return KMS_EINVAL;
        }
        json_object_del(cur, json_string_value(v));
    }
    return KMS_OK;
}

static kms_err
apply_op(kms_ctx *c, json_t *rec, kms_key_op op, const kms_key_op_args *a,
         bool *remove)
{
    const char *st = json_string_value(json_object_get(rec, "state"));
    bool pending = st && strcmp(st, "pending_deletion") == 0;
    bool awaiting = st && strcmp(st, "pending_import") == 0;

    *remove = false;
    switch (op) {
    case KMS_KEY_ENABLE:
    case KMS_KEY_DISABLE:
        if (awaiting) {
            c->detail = "the key has no key material yet";
            return KMS_ESTATE;
        }
        if (pending) {
            c->detail = "the key is pending deletion";
            return KMS_ESTATE;
        }
        json_object_set_new(
            rec, "state",
            json_string(op == KMS_KEY_ENABLE ? "enabled" : "disabled"));
        return KMS_OK;
    case KMS_KEY_SCHEDULE_DELETE:
        if (a->immediate) {
            if (!c->who.root) {
                c->detail = "immediate deletion needs a root token";
                return KMS_EDENIED;
            }
            *remove = true;
            return KMS_OK;
        }
        if (pending) {
            c->detail = "the key is already pending deletion";
            return KMS_ESTATE;
        }
        if (a->pending_days < 7 || a->pending_days > 30) {
            c->detail = "pending window: 7 to 30 days";
            return KMS_EINVAL;
        }
        json_object_set_new(rec, "state_before", json_string(st ? st : ""));
        json_object_set_new(rec, "state", json_string("pending_deletion"));
        json_object_set_new(
            rec, "deletion",
            json_integer(c->srv->now() + (int64_t)a->pending_days * DAY));
        return KMS_OK;
    case KMS_KEY_CANCEL_DELETE:
        if (!pending) {
            c->detail = "the key is not pending deletion";
            return KMS_ESTATE;
        }
        /* As AWS: a cancelled deletion leaves the key disabled (or still
         * waiting for its material). */
        json_object_set_new(
            rec, "state",
            json_string(json_array_size(json_object_get(rec, "versions"))
                            ? "disabled"
                            : "pending_import"));
        json_object_del(rec, "deletion");
        json_object_del(rec, "state_before");
        return KMS_OK;
    case KMS_KEY_ROTATE:
        if (pending || awaiting) {
            c->detail = "the key is pending deletion";
            return KMS_ESTATE;
        }
        if (!is_soft(rec)) {
            c->detail = "an external key rotates in its backend: create a new "
                        "kmsd key for the new backend key";
            return KMS_EUNSUPPORTED;
        }
        return add_version(c, rec, (kms_key_type)kms_key_rec_type(rec));
    case KMS_KEY_CONFIG:
        return apply_config(c, rec, a);
    case KMS_KEY_TAG:
    case KMS_KEY_UNTAG:
        return apply_tags(c, rec, op, a->tags);
    default:
        return KMS_EINVAL;
    }
}

static unsigned
op_cap(kms_key_op op)
{
    switch (op) {
    case KMS_KEY_ROTATE:
    case KMS_KEY_CONFIG:
        return KMS_CAP_ROTATE;
    default:
        return KMS_CAP_ADMIN;
    }
}

static const char *
op_name(kms_key_op op)
{
    static const char *const n[] = {
        "enable",        "disable", "schedule_delete",
        "cancel_delete", "rotate",  "config",
        "tag",           "untag"};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}

kms_err
kms_key_update(kms_ctx *c, const char *org, const char *name, kms_key_op op,
               const kms_key_op_args *a, json_t **out)
{
    char tab[KMS_TABLE_MAX], res[KMS_NAME_MAX + 8];
    kms_key_op_args none = {0};
    kms_txn txn = {0};
    json_t *rec = NULL;
    bool remove = false;
    kms_err rc;

    if (out)
        *out = NULL;
    if (!a)
        a = &none;
    json_object_set_new(c->audit, "key", json_string(name));
    json_object_set_new(c->audit, "action", json_string(op_name(op)));
    key_res(res, sizeof res, name);
    if ((rc = kms_authorize(c, org, res, op_cap(op))) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = rec_read(c, &txn, org, name, &rec)) != KMS_OK ||
        (rc = apply_op(c, rec, op, a, &remove)) != KMS_OK)
        goto out;
    key_table(tab, sizeof tab, org);
    if (remove)
        rc = kms_st2err(kms_txn_del(&txn, tab, name, strlen(name)));
    else
        rc = kms_json_put(&txn, tab, name, rec);
    if (rc != KMS_OK || (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    json_object_set_new(c->audit, "version", json_integer(cur_ver(rec)));
    if (out && !remove) {
        *out = rec;
        rec = NULL;
    }
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    return rc;
}

/* A key for use: authorised, present, enabled; automatic rotation applied
 * lazily (the first use after the period rotates, in its own write). */
static kms_err
key_for_use(kms_ctx *c, const char *org, const char *name, unsigned cap,
            json_t **rec)
{
    const char *st;
    int64_t per, last;
    kms_err rc;

    if ((rc = kms_key_get(c, org, name, cap, rec)) != KMS_OK)
        return rc;
    st = json_string_value(json_object_get(*rec, "state"));
    if (!st || strcmp(st, "enabled") != 0) {
        bool dis = st && strcmp(st, "disabled") == 0;
        c->detail = dis ? "the key is disabled"
                    : st && strcmp(st, "pending_import") == 0
                        ? "the key has no key material yet"
                        : "the key is pending deletion";
        json_decref(*rec);
        *rec = NULL;
        return dis ? KMS_EDISABLED : KMS_ESTATE;
    }
    per = json_integer_value(json_object_get(*rec, "rotation_period"));
    last = json_integer_value(json_object_get(*rec, "rotated"));
    if (per > 0 && c->srv->now() - last >= per && cap == KMS_CAP_ENCRYPT) {
        json_t *fresh = NULL;
        bool root = c->who.root;
        /* The rotation is the key's own schedule, not the caller's act:
         * it needs no rotate capability. */
        c->who.root = true;
        rc = kms_key_update(c, org, name, KMS_KEY_ROTATE, NULL, &fresh);
        c->who.root = root;
        json_object_set_new(c->audit, "auto_rotated", json_true());
        json_object_set_new(c->audit, "action", json_string("use"));
        if (rc == KMS_OK) {
            json_decref(*rec);
            *rec = fresh;
        } else {
            json_decref(fresh);
        }
    }
    return KMS_OK;
}

/* ---- encryption -----------------------------------------------------------
 */

static kms_err
aad_build(const uint8_t *hdr, size_t hdr_len, const json_t *ctx, uint8_t **aad,
          size_t *aad_len)
{
    char *cj = NULL;
    size_t cl = 0;
    const char *k;
    json_t *v;

    if (json_is_null(ctx))
        ctx = NULL;
    if (ctx && !json_is_object(ctx))
        return KMS_EINVAL;
    if (ctx && json_object_size(ctx)) {
        json_object_foreach((json_t *)ctx, k,
                            v) if (!json_is_string(v)) return KMS_EINVAL;
        if (!(cj = kms_json_dumpf(ctx, JSON_SORT_KEYS | JSON_COMPACT, &cl)))
            return KMS_ENOMEM;
    }
    *aad_len = hdr_len + 1 + cl;
    if (!(*aad = malloc(*aad_len))) {
        kc_free_wipe(cj, cl);
        return KMS_ENOMEM;
    }
    memcpy(*aad, hdr, hdr_len);
    (*aad)[hdr_len] = 0;
    if (cl)
        memcpy(*aad + hdr_len + 1, cj, cl);
    kc_free_wipe(cj, cl);
    return KMS_OK;
}

/* One AEAD pass. enc: in -> out||tag; dec: in (with tag) -> out. */
static bool
aead(kms_key_type t, bool enc, const uint8_t *key, const uint8_t *nonce,
     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
     uint8_t *out)
{
    EVP_CIPHER_CTX *x;
    int l = 0;
    bool ok = false;

    if (t == KMS_KT_CHACHA20_POLY1305) {
        unsigned long long ol = 0;
        if (enc)
            return crypto_aead_chacha20poly1305_ietf_encrypt(
                       out, &ol, in, in_len, aad, aad_len, NULL, nonce, key) ==
                   0;
        return crypto_aead_chacha20poly1305_ietf_decrypt(
                   out, &ol, NULL, in, in_len, aad, aad_len, nonce, key) == 0;
    }
    if (!enc && in_len < TAG_LEN)
        return false;
    if (crypto_aead_aes256gcm_is_available()) {
        /* libsodium's AES-NI code: no per-call cipher fetch */
        unsigned long long ol = 0;
        if (enc)
            return crypto_aead_aes256gcm_encrypt(out, &ol, in, in_len, aad,
                                                 aad_len, NULL, nonce,
                                                 key) == 0;
        return crypto_aead_aes256gcm_decrypt(out, &ol, NULL, in, in_len, aad,
                                             aad_len, nonce, key) == 0;
    }
    if (!(x = EVP_CIPHER_CTX_new()))
        return false;
    if (enc) {
        ok = EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
             EVP_EncryptUpdate(x, NULL, &l, aad, (int)aad_len) == 1 &&
             EVP_EncryptUpdate(x, out, &l, in, (int)in_len) == 1 &&
             EVP_EncryptFinal_ex(x, out + l, &l) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
                                 out + in_len) == 1;
    } else {
        size_t n = in_len - TAG_LEN;
        ok = EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
             EVP_DecryptUpdate(x, NULL, &l, aad, (int)aad_len) == 1 &&
             EVP_DecryptUpdate(x, out, &l, in, (int)n) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
                                 (void *)(in + n)) == 1 &&
             EVP_DecryptFinal_ex(x, out + l, &l) == 1;
    }
    EVP_CIPHER_CTX_free(x);
    return ok;
}

/* Header: magic(4) fmt(1) name_len(1) name version(4, big-endian). */
static size_t
blob_header(const char *name, uint32_t v, uint8_t *h, size_t cap)
{
    size_t nl = strlen(name), n = 0;

    if (nl == 0 || nl > KMS_NAME_MAX || 10 + nl > cap)
        return 0;
    memcpy(h, KMS_KEY_BLOB_MAGIC, 4);
    n = 4;
    h[n++] = KMS_KEY_BLOB_FMT;
    h[n++] = (uint8_t)nl;
    memcpy(h + n, name, nl);
    n += nl;
    for (int i = 0; i < 4; i++)
        h[n++] = (uint8_t)(v >> (24 - 8 * i));
    return n;
}

kms_err
kms_key_blob_name(const uint8_t *blob, size_t blob_len,
                  char name[KMS_NAME_MAX + 1])
{
    size_t nl;

    if (blob_len < 6 || memcmp(blob, KMS_KEY_BLOB_MAGIC, 4) != 0 ||
        blob[4] != KMS_KEY_BLOB_FMT)
        return KMS_ECIPHER;
    nl = blob[5];
    if (nl == 0 || nl > KMS_NAME_MAX ||
        blob_len < 6 + nl + 4 + NONCE_LEN + TAG_LEN)
        return KMS_ECIPHER;
    memcpy(name, blob + 6, nl);
    name[nl] = '\0';
    return kms_valid_ident(name) ? KMS_OK : KMS_ECIPHER;
}

kms_err
kms_key_encrypt(kms_ctx *c, const char *org, const char *name,
                const uint8_t *pt, size_t pt_len, const json_t *aad_ctx,
                uint8_t **blob, size_t *blob_len, uint32_t *version)
{
    uint8_t hdr[16 + KMS_NAME_MAX], *key = NULL, *aad = NULL, *b = NULL;
    size_t hl, kl = 0, al = 0, n;
    json_t *rec = NULL;
    uint32_t v;
    int t;
    kms_err rc;

    *blob = NULL;
    *blob_len = 0;
    if ((rc = key_for_use(c, org, name, KMS_CAP_ENCRYPT, &rec)) != KMS_OK)
        return rc;
    t = kms_key_rec_type(rec);
    rc = KMS_EUNSUPPORTED;
    if (!kms_key_type_symmetric((kms_key_type)t)) {
        c->detail = "the key is not a symmetric key";
        goto out;
    }
    v = cur_ver(rec);
    hl = blob_header(name, v, hdr, sizeof hdr);
    rc = KMS_EINVAL;
    if (!hl || (rc = aad_build(hdr, hl, aad_ctx, &aad, &al)) != KMS_OK) {
        c->detail = "encryption context: an object of strings";
        goto out;
    }
    if ((rc = ver_bytes(find_ver(rec, v), "m", &key, &kl)) != KMS_OK)
        goto out;
    n = hl + NONCE_LEN + pt_len + TAG_LEN;
    rc = KMS_ENOMEM;
    if (kl != 32 || !(b = malloc(n)))
        goto out;
    memcpy(b, hdr, hl);
    kc_random(b + hl, NONCE_LEN);
    rc = KMS_EINTERNAL;
    if (!aead((kms_key_type)t, true, key, b + hl, aad, al, pt, pt_len,
              b + hl + NONCE_LEN))
        goto out;
    *blob = b;
    *blob_len = n;
    b = NULL;
    if (version)
        *version = v;
    json_object_set_new(c->audit, "version", json_integer(v));
    rc = KMS_OK;
out:
    kc_free_wipe(key, kl);
    free(aad);
    free(b);
    json_decref(rec);
    return rc;
}

kms_err
kms_key_decrypt(kms_ctx *c, const char *org, const char *name,
                const uint8_t *blob, size_t blob_len, const json_t *aad_ctx,
                uint8_t **pt, size_t *pt_len, char *key_name, uint32_t *version)
{
    char bn[KMS_NAME_MAX + 1];
    uint8_t *key = NULL, *aad = NULL, *out = NULL;
    size_t hl, kl = 0, al = 0, ctl = 0;
    json_t *rec = NULL, *ver;
    uint32_t v = 0;
    int t;
    kms_err rc;

    *pt = NULL;
    *pt_len = 0;
    if ((rc = kms_key_blob_name(blob, blob_len, bn)) != KMS_OK) {
        c->detail = "not a kmsd ciphertext";
        return rc;
    }
    if (name && strcmp(name, bn) != 0) {
        c->detail = "the ciphertext belongs to another key";
        json_object_set_new(c->audit, "key", json_string(name));
        return KMS_ECIPHER;
    }
    if ((rc = key_for_use(c, org, bn, KMS_CAP_DECRYPT, &rec)) != KMS_OK)
        return rc;
    hl = 6 + strlen(bn) + 4;
    for (size_t i = 0; i < 4; i++)
        v = (v << 8) | blob[hl - 4 + i];
    t = kms_key_rec_type(rec);
    rc = KMS_EUNSUPPORTED;
    if (!kms_key_type_symmetric((kms_key_type)t))
        goto out;
    rc = KMS_ECIPHER;
    c->detail = "invalid ciphertext, or wrong key or encryption context";
    if (!(ver = find_ver(rec, v)) ||
        v < (uint32_t)json_integer_value(json_object_get(rec, "min_decrypt")))
        goto out;
    if ((rc = aad_build(blob, hl, aad_ctx, &aad, &al)) != KMS_OK ||
        (rc = ver_bytes(ver, "m", &key, &kl)) != KMS_OK)
        goto out;
    ctl = blob_len - hl - NONCE_LEN;
    rc = KMS_ENOMEM;
    if (!(out = malloc(ctl)))
        goto out;
    rc = KMS_ECIPHER;
    if (kl != 32 || !aead((kms_key_type)t, false, key, blob + hl, aad, al,
                          blob + hl + NONCE_LEN, ctl, out))
        goto out;
    c->detail = NULL;
    *pt = out;
    *pt_len = ctl - TAG_LEN;
    out = NULL;
    if (key_name)
        kc_strlcpy(key_name, bn, KMS_NAME_MAX + 1);
    if (version)
        *version = v;
    json_object_set_new(c->audit, "version", json_integer(v));
    rc = KMS_OK;
out:
    kc_free_wipe(key, kl);
    kc_free_wipe(out, ctl);
    free(aad);
    json_decref(rec);
    return rc;
}

/* ---- signatures -------------------------------------------------------------
 */

/* ---- parsed-key cache -------------------------------------------------------
 * Direct-mapped, by SHA-256 of the stored base64 text (private PKCS#8 or
 * public SPKI): a version's material never changes, and a new key of the
 * same name has other material, so entries never go stale. Entries hold a
 * reference; users take their own (EVP_PKEY_up_ref) and may sign
 * concurrently, as OpenSSL allows on a shared key. */
#define PKC_SLOTS 128u

struct kms_pkey_cache {
    pthread_mutex_t mu;
    struct {
        uint8_t id[32];
        EVP_PKEY *pk;
    } e[PKC_SLOTS];
};

kms_pkey_cache *
kms_pkey_cache_new(void)
{
    kms_pkey_cache *pc = calloc(1, sizeof *pc);

    if (pc && pthread_mutex_init(&pc->mu, NULL) != 0) {
        free(pc);
        pc = NULL;
    }
    return pc;
}

void
kms_pkey_cache_free(kms_pkey_cache *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < PKC_SLOTS; i++)
        EVP_PKEY_free(pc->e[i].pk);
    pthread_mutex_destroy(&pc->mu);
    kc_free_wipe(pc, sizeof *pc);
}

static EVP_PKEY *
parse_pkey(const char *b64s, bool priv)
{
    uint8_t *der = NULL;
    size_t n = 0;
    const unsigned char *p;
    EVP_PKEY *pk = NULL;

    if (!b64s || kc_b64_decode(b64s, strlen(b64s), KC_B64_STD, &der, &n) != 0)
        return NULL;
    p = der;
    pk = priv ? d2i_AutoPrivateKey_ex(NULL, &p, (long)n, NULL, NULL)
              : d2i_PUBKEY(NULL, &p, (long)n);
    kc_free_wipe(der, n);
    return pk;
}

/* A reference to the parsed key (EVP_PKEY_free it), or NULL. */
static EVP_PKEY *
get_pkey(kms_srv *srv, const json_t *ver, const char *field, bool priv)
{
    const char *s = json_string_value(json_object_get(ver, field));
    kms_pkey_cache *pc = srv->pkcache;
    uint8_t id[32];
    EVP_PKEY *pk;
    size_t slot;

    if (!s)
        return NULL;
    if (!pc)
        return parse_pkey(s, priv);
    crypto_hash_sha256(id, (const uint8_t *)s, strlen(s));
    id[0] ^= priv ? 0 : 1; /* private and public entries never collide */
    slot = ((size_t)id[1] << 8 | id[2]) % PKC_SLOTS;
    pthread_mutex_lock(&pc->mu);
    if (pc->e[slot].pk && kc_ct_eq(pc->e[slot].id, id, sizeof id)) {
        pk = pc->e[slot].pk;
        EVP_PKEY_up_ref(pk);
        pthread_mutex_unlock(&pc->mu);
        return pk;
    }
    pthread_mutex_unlock(&pc->mu);
    if (!(pk = parse_pkey(s, priv)))
        return NULL;
    pthread_mutex_lock(&pc->mu);
    EVP_PKEY_free(pc->e[slot].pk);
    memcpy(pc->e[slot].id, id, sizeof id);
    pc->e[slot].pk = pk;
    EVP_PKEY_up_ref(pk);
    pthread_mutex_unlock(&pc->mu);
    return pk;
}

static kms_err
sign_evp(kms_key_type t, EVP_PKEY *pk, kms_sign_mode mode, const uint8_t *msg,
         size_t msg_len, uint8_t **sig, size_t *sig_len)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pc = NULL;
    uint8_t dg[32];
    size_t n = 0;
    kms_err rc = KMS_EINTERNAL;

    if (!pk)
        return KMS_ESTORE;
    if (mode == KMS_SIGN_RAW && t != KMS_KT_ED25519) {
        /* ECDSA over SHA-256(msg): hashing here and signing the digest
         * skips OpenSSL's per-call digest fetch (a third of the cost) */
        crypto_hash_sha256(dg, msg, msg_len);
        msg = dg;
        msg_len = sizeof dg;
        mode = KMS_SIGN_DIGEST;
    }
    if (mode == KMS_SIGN_DIGEST) {
        rc = KMS_EUNSUPPORTED;
        if (t == KMS_KT_ED25519)
            goto out;
        rc = KMS_EINVAL;
        if (msg_len != 32)
            goto out;
        rc = KMS_EINTERNAL;
        n = (size_t)EVP_PKEY_get_size(pk);
        if (!(pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) ||
            EVP_PKEY_sign_init(pc) != 1 || !(*sig = malloc(n)) ||
            EVP_PKEY_sign(pc, *sig, &n, msg, msg_len) != 1)
            goto out;
    } else {
        if (!(md = EVP_MD_CTX_new()) ||
            EVP_DigestSignInit(md, NULL,
                               t == KMS_KT_ED25519 ? NULL : EVP_sha256(), NULL,
                               pk) != 1 ||
            EVP_DigestSign(md, NULL, &n, msg, msg_len) != 1 ||
            !(*sig = malloc(n)) ||
            EVP_DigestSign(md, *sig, &n, msg, msg_len) != 1)
            goto out;
    }
    *sig_len = n;
    rc = KMS_OK;
out:
    if (rc != KMS_OK) {
        free(*sig);
        *sig = NULL;
    }
    EVP_PKEY_CTX_free(pc);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return rc;
}

static kms_err
verify_evp(kms_key_type t, EVP_PKEY *pk, kms_sign_mode mode, const uint8_t *msg,
           size_t msg_len, const uint8_t *sig, size_t sig_len, bool *valid)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pc = NULL;
    kms_err rc = KMS_EINTERNAL;

    *valid = false;
    if (!pk)
        return KMS_ESTORE;
    if (mode == KMS_SIGN_DIGEST) {
        rc = t == KMS_KT_ED25519 ? KMS_EUNSUPPORTED : KMS_EINVAL;
        if (t == KMS_KT_ED25519 || msg_len != 32)
            goto out;
        rc = KMS_EINTERNAL;
        if (!(pc = EVP_PKEY_CTX_new(pk, NULL)) ||
            EVP_PKEY_verify_init(pc) != 1 ||
            EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1)
            goto out;
        *valid = EVP_PKEY_verify(pc, sig, sig_len, msg, msg_len) == 1;
    } else {
        if (!(md = EVP_MD_CTX_new()) ||
            EVP_DigestVerifyInit(md, NULL,
                                 t == KMS_KT_ED25519 ? NULL : EVP_sha256(),
                                 NULL, pk) != 1)
            goto out;
        *valid = EVP_DigestVerify(md, sig, sig_len, msg, msg_len) == 1;
    }
    rc = KMS_OK;
out:
    EVP_PKEY_CTX_free(pc);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return rc;
}

/* The raw ML-DSA public key inside our own SPKI encoding. */
static const uint8_t *
mldsa_raw_pk(kms_mldsa_param p, const uint8_t *spki, size_t n)
{
    size_t pl = kms_mldsa_pk_len(p);
    return n > pl ? spki + (n - pl) : NULL;
}

kms_err
kms_key_sign(kms_ctx *c, const char *org, const char *name, kms_sign_mode mode,
             const uint8_t *msg, size_t msg_len, uint8_t **sig, size_t *sig_len,
             uint32_t *version)
{
    uint8_t *sk = NULL;
    size_t sl = 0;
    json_t *rec = NULL;
    uint32_t v;
    int t;
    kms_err rc;

    *sig = NULL;
    *sig_len = 0;
    if ((rc = key_for_use(c, org, name, KMS_CAP_SIGN, &rec)) != KMS_OK)
        return rc;
    t = kms_key_rec_type(rec);
    v = cur_ver(rec);
    rc = KMS_EUNSUPPORTED;
    if (t < 0 || types[t].symmetric) {
        c->detail = "the key is not a signing key";
        goto out;
    }
    if (!is_soft(rec)) {
        rc = kms_key_ext_sign(c, rec, mode, msg, msg_len, sig, sig_len);
    } else if (types[t].mldsa) {
        kms_mldsa_param p = (kms_mldsa_param)types[t].mldsa;
        size_t n = kms_mldsa_sig_len(p);
        if ((rc = ver_bytes(find_ver(rec, v), "m", &sk, &sl)) != KMS_OK)
            goto out;
        kms_mldsa_err me;
        rc = KMS_EINVAL;
        if (mode == KMS_SIGN_DIGEST && msg_len != KMS_MLDSA_MU_LEN) {
            c->detail = "external mu: 64 bytes";
            goto out;
        }
        rc = KMS_ENOMEM;
        if (!(*sig = malloc(n)))
            goto out;
        me = mode == KMS_SIGN_DIGEST
                 ? kms_mldsa_sign_mu(p, sk, sl, msg, KMS_MLDSA_HEDGED, *sig, n)
                 : kms_mldsa_sign(p, sk, sl, msg, msg_len, NULL, 0,
                                  KMS_MLDSA_HEDGED, *sig, n);
        rc = me == KMS_MLDSA_OK ? KMS_OK : KMS_EINTERNAL;
        *sig_len = n;
    } else {
        rc = sign_evp((kms_key_type)t,
                      get_pkey(c->srv, find_ver(rec, v), "m", true), mode, msg,
                      msg_len, sig, sig_len);
        if (rc == KMS_EINVAL)
            c->detail = "digest: 32 bytes (SHA-256)";
    }
    if (rc == KMS_OK && version)
        *version = v;
    json_object_set_new(c->audit, "version", json_integer(v));
out:
    if (rc != KMS_OK) {
        free(*sig);
        *sig = NULL;
        *sig_len = 0;
    }
    kc_free_wipe(sk, sl);
    json_decref(rec);
    return rc;
}

kms_err
kms_key_verify(kms_ctx *c, const char *org, const char *name,
               kms_sign_mode mode, const uint8_t *msg, size_t msg_len,
               const uint8_t *sig, size_t sig_len, uint32_t version,
               bool *valid)
{
    uint8_t *pub = NULL;
    size_t pl = 0;
    json_t *rec = NULL, *ver;
    int t;
    kms_err rc;

    *valid = false;
    if ((rc = key_for_use(c, org, name, KMS_CAP_VERIFY, &rec)) != KMS_OK)
        return rc;
    t = kms_key_rec_type(rec);
    rc = KMS_EUNSUPPORTED;
    if (t < 0 || types[t].symmetric) {
        c->detail = "the key is not a signing key";
        goto out;
    }
    rc = KMS_ENOTFOUND;
    if (!(ver = find_ver(rec, version ? version : cur_ver(rec)))) {
        c->detail = "no such key version";
        goto out;
    }
    if (types[t].mldsa) {
        kms_mldsa_param p = (kms_mldsa_param)types[t].mldsa;
        const uint8_t *raw;
        if ((rc = ver_bytes(ver, "pub", &pub, &pl)) != KMS_OK)
            goto out;
        raw = mldsa_raw_pk(p, pub, pl);
        rc = KMS_EINVAL;
        if (!raw || (mode == KMS_SIGN_DIGEST && msg_len != KMS_MLDSA_MU_LEN))
            goto out;
        *valid =
            (mode == KMS_SIGN_DIGEST
                 ? kms_mldsa_verify_mu(p, raw, kms_mldsa_pk_len(p), msg, sig,
                                       sig_len)
                 : kms_mldsa_verify(p, raw, kms_mldsa_pk_len(p), msg, msg_len,
                                    NULL, 0, sig, sig_len)) == KMS_MLDSA_OK;
        rc = KMS_OK;
    } else {
        EVP_PKEY *pk = NULL;
        if (json_object_get(ver, "pub")) {
            pk = get_pkey(c->srv, ver, "pub", false);
        } else if ((rc = kms_key_ext_public(c, rec, &pub, &pl)) == KMS_OK) {
            const unsigned char *pp = pub;
            pk = d2i_PUBKEY(NULL, &pp, (long)pl);
        } else {
            goto out;
        }
        rc = verify_evp((kms_key_type)t, pk, mode, msg, msg_len, sig, sig_len,
                        valid);
    }
    json_object_set_new(c->audit, "version",
                        json_object_get(ver, "version")
                            ? json_copy(json_object_get(ver, "version"))
                            : json_null());
    json_object_set_new(c->audit, "valid", json_boolean(*valid));
out:
    kc_free_wipe(pub, pl);
    json_decref(rec);
    return rc;
}

kms_err
kms_key_public_der(kms_ctx *c, const char *org, const char *name, uint8_t **der,
                   size_t *der_len)
{
    json_t *rec = NULL;
    uint8_t *p = NULL;
    size_t n = 0;
    kms_err rc;

    *der = NULL;
    *der_len = 0;
    if ((rc = kms_key_get(c, org, name, KMS_CAP_READ, &rec)) != KMS_OK)
        return rc;
    rc = KMS_EUNSUPPORTED;
    if (kms_key_type_symmetric((kms_key_type)kms_key_rec_type(rec))) {
        c->detail = "a symmetric key has no public key";
        goto out;
    }
    if (!json_object_get(find_ver(rec, cur_ver(rec)), "pub") && !is_soft(rec)) {
        rc = kms_key_ext_public(c, rec, der, der_len);
        goto out;
    }
    if ((rc = ver_bytes(find_ver(rec, cur_ver(rec)), "pub", &p, &n)) != KMS_OK)
        goto out;
    rc = KMS_ENOMEM;
    if (!(*der = malloc(n)))
        goto out;
    memcpy(*der, p, n);
    *der_len = n;
    rc = KMS_OK;
out:
    kc_free_wipe(p, n);
    json_decref(rec);
    return rc;
}

char *
kms_pem_public(const uint8_t *der, size_t der_len)
{
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n",
                      tail[] = "-----END PUBLIC KEY-----\n";
    char *b = b64(der, der_len), *pem;
    size_t bl, n = 0;

    if (!b)
        return NULL;
    bl = strlen(b);
    pem = malloc(sizeof head + sizeof tail + bl + bl / 64 + 2);
    if (pem) {
        memcpy(pem, head, sizeof head - 1);
        n = sizeof head - 1;
        for (size_t i = 0; i < bl; i += 64) {
            size_t l = bl - i < 64 ? bl - i : 64;
            memcpy(pem + n, b + i, l);
            n += l;
            pem[n++] = '\n';
        }
        memcpy(pem + n, tail, sizeof tail);
    }
    free(b);
    return pem;
}

/* ---- aliases and listing
 * -----------------------------------------------------
 */

kms_err
kms_alias_resolve(kms_ctx *c, const char *org, const char *alias,
                  char name[KMS_NAME_MAX + 1])
{
    char tab[KMS_TABLE_MAX];
    kms_txn txn = {0};
    uint8_t *v = NULL;
    size_t vl = 0;
    kms_err rc;

    snprintf(tab, sizeof tab, "keyalias/%s", org);
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_st2err(kms_txn_get(&txn, tab, alias, strlen(alias), &v, &vl));
    kms_txn_abort(&txn);
    if (rc == KMS_OK && (vl == 0 || vl > KMS_NAME_MAX))
        rc = KMS_ESTORE;
    if (rc == KMS_OK) {
        memcpy(name, v, vl);
        name[vl] = '\0';
    }
    kms_store_free(c->srv->store, v, vl);
    if (rc == KMS_ENOTFOUND)
        c->detail = "no such alias";
    return rc;
}

typedef struct {
    kms_ctx *c;
    json_t *out;
} list_ctx;

static int
list_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    list_ctx *l = ctx;
    json_t *rec = json_loadb((const char *)v, vl, 0, NULL);
    char res[KMS_NAME_MAX + 8];

    (void)k;
    if (rec && !deletion_due(l->c, rec) && kl <= KMS_NAME_MAX) {
        snprintf(res, sizeof res, "keys/%.*s", (int)kl, (const char *)k);
        if (l->c->who.root ||
            kms_policy_allows(l->c->who.policies, res, KMS_CAP_LIST) ||
            kms_policy_allows(l->c->who.policies, res, KMS_CAP_READ))
            json_array_append_new(l->out, kms_key_view(rec));
    }
    json_decref(rec);
    return 0;
}

kms_err
kms_key_list(kms_ctx *c, const char *org, json_t **out)
{
    char tab[KMS_TABLE_MAX];
    list_ctx l = {c, json_array()};
    kms_txn txn = {0};
    kms_err rc;

    *out = NULL;
    if ((rc = kms_authorize(c, org, "keys", KMS_CAP_LIST)) != KMS_OK) {
        json_decref(l.out);
        return rc;
    }
    if (!l.out || kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK) {
        json_decref(l.out);
        return KMS_ESTORE;
    }
    key_table(tab, sizeof tab, org);
    rc = kms_st2err(kms_txn_scan(&txn, tab, NULL, 0, true, list_one, &l));
    kms_txn_abort(&txn);
    if (rc != KMS_OK) {
        json_decref(l.out);
        return rc;
    }
    *out = l.out;
    return KMS_OK;
}

/* ---- bring your own key ---------------------------------------------------
 * Table "keyimport/<org>": hex SHA-256 of the import token -> {name, the
 * wrapping private key (PKCS#8, base64), expires}. Looked up by the hash,
 * so the token itself is never stored; one use. */

#define IMPORT_TTL (24 * 3600)

kms_err
kms_key_import_params(kms_ctx *c, const char *org, const char *name, char **pem,
                      char **token, int64_t *expires)
{
    char tab[KMS_TABLE_MAX], res[KMS_NAME_MAX + 8], id[65];
    uint8_t tok[32], h[32], *der = NULL, *spki = NULL;
    EVP_PKEY *pk = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    char *ks = NULL;
    json_t *rec = NULL;
    kms_txn txn = {0};
    kms_err rc;
    int n;

    *pem = *token = NULL;
    json_object_set_new(c->audit, "key", json_string(name));
    if (!kms_valid_ident(name)) {
        c->detail = "name: 1-64 of [A-Za-z0-9._-]";
        return KMS_EINVAL;
    }
    key_res(res, sizeof res, name);
    if ((rc = kms_authorize(c, org, res, KMS_CAP_CREATE)) != KMS_OK)
        return rc;
    rc = KMS_EINTERNAL;
    if (!(pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072)) ||
        !(p8 = EVP_PKEY2PKCS8(pk)) ||
        (n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0 ||
        !(ks = b64(der, (size_t)n)))
        goto out;
    OPENSSL_clear_free(der, (size_t)n);
    der = NULL;
    kc_random(tok, sizeof tok);
    crypto_hash_sha256(h, tok, sizeof tok);
    kc_hex_encode(h, sizeof h, id, sizeof id);
    *expires = c->srv->now() + IMPORT_TTL;
    rec = json_pack("{s:s,s:s,s:I}", "name", name, "wrapping_key", ks,
                    "expires", (json_int_t)*expires);
    rc = KMS_ENOMEM;
    if (!rec || (n = i2d_PUBKEY(pk, &spki)) <= 0 ||
        !(*pem = kms_pem_public(spki, (size_t)n)) ||
        !(*token = b64(tok, sizeof tok)))
        goto out;
    rc = KMS_ESTORE;
    snprintf(tab, sizeof tab, "keyimport/%s", org);
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK ||
        (rc = kms_org_exists(&txn, org)) != KMS_OK ||
        (rc = kms_json_put(&txn, tab, id, rec)) != KMS_OK ||
        (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    rc = KMS_OK;
out:
    if (rc != KMS_OK) {
        free(*pem);
        if (*token)
            kc_free_wipe(*token, strlen(*token));
        *pem = *token = NULL;
    }
    kms_txn_abort(&txn);
    kc_wipe(tok, sizeof tok);
    json_decref(rec);
    if (ks)
        kc_free_wipe(ks, strlen(ks));
    OPENSSL_free(spki);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(pk);
    return rc;
}

/* Take (read and delete) the import record of `token`. */
static kms_err
take_import(kms_ctx *c, const char *org, const char *token, json_t **rec)
{
    char tab[KMS_TABLE_MAX], id[65];
    uint8_t *tok = NULL, h[32];
    size_t tl = 0;
    kms_txn txn = {0};
    kms_err rc = KMS_EDENIED;

    *rec = NULL;
    c->detail = "unknown, used or expired import token";
    if (!token || kc_b64_decode(token, strlen(token), KC_B64_STD, &tok, &tl) ||
        tl != 32) {
        kc_free_wipe(tok, tl);
        return KMS_EDENIED;
    }
    crypto_hash_sha256(h, tok, tl);
    kc_free_wipe(tok, tl);
    kc_hex_encode(h, sizeof h, id, sizeof id);
    snprintf(tab, sizeof tab, "keyimport/%s", org);
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if (kms_json_get(&txn, tab, id, rec) != KMS_OK)
        goto out;
    if (kms_st2err(kms_txn_del(&txn, tab, id, strlen(id))) != KMS_OK ||
        kms_st2err(kms_txn_commit(&txn)) != KMS_OK) {
        rc = KMS_ESTORE;
        goto out;
    }
    c->store_written = true;
    rc = c->srv->now() < json_integer_value(json_object_get(*rec, "expires"))
             ? KMS_OK
             : KMS_EDENIED;
out:
    kms_txn_abort(&txn);
    if (rc != KMS_OK) {
        json_decref(*rec);
        *rec = NULL;
    }
    return rc;
}

kms_err
kms_key_import(kms_ctx *c, const char *org, const kms_key_create_opts *o,
               const char *token, const uint8_t *wrapped, size_t wrapped_len,
               json_t **out)
{
    char res[KMS_NAME_MAX + 8];
    kms_key_create_opts o2 = *o;
    json_t *rec = NULL, *ver;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *pc = NULL;
    uint8_t *m = NULL;
    size_t ml = 0;
    kms_err rc;

    *out = NULL;
    json_object_set_new(c->audit, "key", json_string(o->name ? o->name : ""));
    key_res(res, sizeof res, o->name ? o->name : "");
    if ((rc = kms_authorize(c, org, res, KMS_CAP_CREATE)) != KMS_OK ||
        (rc = take_import(c, org, token, &rec)) != KMS_OK)
        goto out;
    rc = KMS_EDENIED;
    if (strcmp(json_string_value(json_object_get(rec, "name")) ?: "",
               o->name) != 0) {
        c->detail = "the import token was issued for another key";
        goto out;
    }
    ver = json_object_get(rec, "wrapping_key");
    rc = KMS_EINVAL;
    c->detail = "the wrapped material does not unwrap";
    if (!(pk = parse_pkey(json_string_value(ver), true)) ||
        !(pc = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) ||
        EVP_PKEY_decrypt_init(pc) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1 ||
        EVP_PKEY_decrypt(pc, NULL, &ml, wrapped, wrapped_len) != 1 ||
        !(m = malloc(ml)) ||
        EVP_PKEY_decrypt(pc, m, &ml, wrapped, wrapped_len) != 1)
        goto out;
    c->detail = NULL;
    o2.material = m;
    o2.material_len = ml;
    o2.backend = "soft";
    rc = kms_key_create(c, org, &o2, out);
out:
    kc_free_wipe(m, ml);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    json_decref(rec);
    return rc;
}

/* ---- sweep
 * ------------------------------------------------------------------- Keys past
 * their deletion date and expired import tokens are unreachable at once
 * (rec_read, take_import); the sweep removes their records, and with them the
 * key material, from the store. */

typedef struct {
    kms_srv *srv;
    json_t *names; /* org names, then doomed keys of one table */
    int64_t now;
    bool import_tab;
} sweep_ctx;

static int
collect_name(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v,
             size_t vl)
{
    sweep_ctx *s = ctx;
    json_t *rec;
    bool doomed = true;

    if (v) {
        rec = json_loadb((const char *)v, vl, 0, NULL);
        if (s->import_tab) {
            doomed = !rec || json_integer_value(
                                 json_object_get(rec, "expires")) <= s->now;
        } else {
            const char *st = json_string_value(json_object_get(rec, "state"));
            int64_t when = json_integer_value(json_object_get(rec, "deletion"));
            doomed = st && strcmp(st, "pending_deletion") == 0 && when &&
                     s->now >= when;
        }
        json_decref(rec);
    }
    if (doomed)
        json_array_append_new(s->names, json_stringn((const char *)k, kl));
    return 0;
}

static kms_err
sweep_table(kms_srv *srv, kms_txn *txn, const char *tab, bool import_tab,
            int64_t now, size_t *count)
{
    sweep_ctx s = {srv, json_array(), now, import_tab};
    json_t *n;
    size_t i;
    kms_err rc;

    if (!s.names)
        return KMS_ENOMEM;
    rc = kms_st2err(kms_txn_scan(txn, tab, NULL, 0, true, collect_name, &s));
    json_array_foreach(s.names, i, n)
    {
        if (rc != KMS_OK)
            break;
        rc = kms_st2err(
            kms_txn_del(txn, tab, json_string_value(n), json_string_length(n)));
        (*count)++;
    }
    json_decref(s.names);
    return rc;
}

kms_err
kms_keys_sweep(kms_srv *srv, size_t *count)
{
    sweep_ctx orgs = {srv, json_array(), 0, false};
    char tab[KMS_TABLE_MAX];
    kms_txn txn = {0};
    int64_t now = srv->now();
    json_t *o;
    size_t i;
    kms_err rc;

    *count = 0;
    if (!orgs.names)
        return KMS_ENOMEM;
    if (kms_txn_begin(srv->store, false, &txn) != KMS_ST_OK) {
        json_decref(orgs.names);
        return KMS_ESTORE;
    }
    rc = kms_st2err(
        kms_txn_scan(&txn, "orgs", NULL, 0, false, collect_name, &orgs));
    json_array_foreach(orgs.names, i, o)
    {
        if (rc != KMS_OK)
            break;
        snprintf(tab, sizeof tab, "keys/%s", json_string_value(o));
        rc = sweep_table(srv, &txn, tab, false, now, count);
        snprintf(tab, sizeof tab, "keyimport/%s", json_string_value(o));
        if (rc == KMS_OK)
            rc = sweep_table(srv, &txn, tab, true, now, count);
    }
    if (rc == KMS_OK && *count)
        rc = kms_st2err(kms_txn_commit(&txn));
    kms_txn_abort(&txn);
    json_decref(orgs.names);
    return rc;
}
