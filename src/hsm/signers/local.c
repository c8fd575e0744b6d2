/* SPDX-License-Identifier: Apache-2.0 */
/* Signer "local": ECDSA P-256 with OpenSSL, for development. Keys are
 * created on first sign and kept (PKCS#8 DER) in the store's namespace
 * "signer.local" (encrypted at rest by ZapDB), so they survive restarts;
 * without a store, in a private memory store. Verify and public_key never
 * create keys. */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hsm_int.h"
#include "kc.h"

#define NS "signer.local"

typedef struct key_ent {
    struct key_ent *next;
    char *key_id;
    EVP_PKEY *pkey;
} key_ent;

typedef struct {
    hsm_store *store;
    bool own_store;
    pthread_mutex_t mu; /* guards `keys` and key creation */
    key_ent *keys;
} local_self;

static hsm_err
local_create(const hsm_config *cfg, hsm_store *store, void **self,
             hsm_diag *diag)
{
    local_self *l;
    hsm_err rc;

    (void)cfg;
    (void)diag;
    if (!(l = calloc(1, sizeof *l)))
        return HSM_ENOMEM;
    pthread_mutex_init(&l->mu, NULL);
    l->store = store;
    if (!store) {
        if ((rc = hsm_store_new_memory(&l->store)) != HSM_OK) {
            pthread_mutex_destroy(&l->mu);
            free(l);
            return rc;
        }
        l->own_store = true;
    }
    *self = l;
    return HSM_OK;
}

static void
local_destroy(void *self)
{
    local_self *l = self;

    while (l->keys) {
        key_ent *k = l->keys;
        l->keys = k->next;
        EVP_PKEY_free(k->pkey);
        free(k->key_id);
        free(k);
    }
    if (l->own_store)
        hsm_store_free(l->store);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static hsm_alg
local_algorithm(void *self)
{
    (void)self;
    return HSM_ALG_ECDSA_P256_SHA256;
}

static hsm_err
key_decode(const hsm_secret *s, EVP_PKEY **out, hsm_diag *diag)
{
    const unsigned char *p = s->data;
    PKCS8_PRIV_KEY_INFO *p8;
    EVP_PKEY *pk = NULL;

    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)s->len);
    if (p8)
        pk = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC) {
        EVP_PKEY_free(pk);
        ERR_clear_error();
        hsm_diag_set(diag, "stored local key is not a P-256 private key");
        return HSM_ECORRUPT;
    }
    *out = pk;
    return HSM_OK;
}

/* Generate a key and store it unless another process got there first. */
static hsm_err
key_generate(local_self *l, const char *kid, EVP_PKEY **out, hsm_diag *diag)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *der = NULL;
    EVP_PKEY *pk;
    int der_len = 0;
    hsm_err rc = HSM_ECRYPTO;

    pk = EVP_EC_gen("P-256");
    if (!pk)
        return hsm_openssl_fail(diag, "P-256 key generation");
    if (!(p8 = EVP_PKEY2PKCS8(pk)) ||
        (der_len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der)) <= 0) {
        rc = hsm_openssl_fail(diag, "PKCS#8 encoding");
        goto out;
    }
    rc = hsm_store_put_new(l->store, NS, kid, der, (size_t)der_len);
    if (rc == HSM_OK) {
        *out = pk;
        pk = NULL;
    }
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (der)
        OPENSSL_clear_free(der, (size_t)der_len);
    EVP_PKEY_free(pk);
    return rc;
}

/* Find the key (cache, then store); create it when `create`. Returns a
 * new reference the caller frees. */
static hsm_err
key_get(local_self *l, const char *kid, bool create, EVP_PKEY **out,
        hsm_diag *diag)
{
    hsm_secret *s = NULL;
    EVP_PKEY *pk = NULL;
    key_ent *k;
    hsm_err rc;

    pthread_mutex_lock(&l->mu);
    for (k = l->keys; k; k = k->next) {
        if (strcmp(k->key_id, kid) == 0) {
            EVP_PKEY_up_ref(k->pkey);
            *out = k->pkey;
            pthread_mutex_unlock(&l->mu);
            return HSM_OK;
        }
    }
    rc = hsm_store_get(l->store, NS, kid, &s);
    if (rc == HSM_OK)
        rc = key_decode(s, &pk, diag);
    else if (rc == HSM_ENOTFOUND && create) {
        rc = key_generate(l, kid, &pk, diag);
        if (rc == HSM_EEXIST) { /* created meanwhile by another process */
            if ((rc = hsm_store_get(l->store, NS, kid, &s)) == HSM_OK)
                rc = key_decode(s, &pk, diag);
        }
    } else if (rc == HSM_ENOTFOUND) {
        hsm_diag_set(diag, "no local key '%s'", kid);
    }
    if (rc != HSM_OK)
        goto out;
    if (!(k = calloc(1, sizeof *k)) || !(k->key_id = strdup(kid))) {
        free(k);
        rc = HSM_ENOMEM;
        goto out;
    }
    k->pkey = pk;
    EVP_PKEY_up_ref(pk);
    k->next = l->keys;
    l->keys = k;
    *out = pk;
    pk = NULL;
out:
    pthread_mutex_unlock(&l->mu);
    hsm_secret_free(s);
    EVP_PKEY_free(pk);
    return rc;
}

/* Sign the message (digest NULL) or a precomputed SHA-256 digest. */
static hsm_err
do_sign(local_self *l, const char *kid, const uint8_t *msg, size_t msg_len,
        bool prehashed, uint8_t **sig, size_t *sig_len, hsm_diag *diag)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    hsm_err rc;

    if ((rc = key_get(l, kid, true, &pk, diag)) != HSM_OK)
        return rc;
    rc = HSM_ECRYPTO;
    if (prehashed) {
        if (!(pctx = EVP_PKEY_CTX_new(pk, NULL)) ||
            EVP_PKEY_sign_init(pctx) != 1 ||
            EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1 ||
            EVP_PKEY_sign(pctx, NULL, &n, msg, msg_len) != 1 ||
            !(buf = malloc(n)) ||
            EVP_PKEY_sign(pctx, buf, &n, msg, msg_len) != 1) {
            rc = hsm_openssl_fail(diag, "ECDSA sign");
            goto out;
        }
    } else {
        if (!(md = EVP_MD_CTX_new()) ||
            EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
            EVP_DigestSign(md, NULL, &n, msg, msg_len) != 1 ||
            !(buf = malloc(n)) ||
            EVP_DigestSign(md, buf, &n, msg, msg_len) != 1) {
            rc = hsm_openssl_fail(diag, "ECDSA sign");
            goto out;
        }
    }
    *sig = buf;
    *sig_len = n;
    buf = NULL;
    rc = HSM_OK;
out:
    free(buf);
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pk);
    return rc;
}

static hsm_err
local_sign(void *self, const char *kid, const uint8_t *msg, size_t msg_len,
           uint8_t **sig, size_t *sig_len, hsm_diag *diag)
{
    return do_sign(self, kid, msg, msg_len, false, sig, sig_len, diag);
}

static hsm_err
local_sign_digest(void *self, const char *kid, const uint8_t *d, size_t d_len,
                  uint8_t **sig, size_t *sig_len, hsm_diag *diag)
{
    return do_sign(self, kid, d, d_len, true, sig, sig_len, diag);
}

static hsm_err
local_public_key(void *self, const char *kid, uint8_t **der, size_t *der_len,
                 hsm_diag *diag)
{
    EVP_PKEY *pk = NULL;
    unsigned char *buf = NULL;
    int n;
    hsm_err rc;

    if ((rc = key_get(self, kid, false, &pk, diag)) != HSM_OK)
        return rc;
    n = i2d_PUBKEY(pk, &buf);
    EVP_PKEY_free(pk);
    if (n <= 0)
        return hsm_openssl_fail(diag, "public key encoding");
    /* Hand out a malloc'd copy (the caller frees with hsm_free). */
    *der = malloc((size_t)n);
    if (!*der) {
        OPENSSL_free(buf);
        return HSM_ENOMEM;
    }
    memcpy(*der, buf, (size_t)n);
    *der_len = (size_t)n;
    OPENSSL_free(buf);
    return HSM_OK;
}

/* ECDSA signatures must be strict DER before OpenSSL sees them. */
static bool
der_ok(const uint8_t *sig, size_t sig_len)
{
    uint8_t raw[64];
    size_t n;

    return hsm_ecdsa_der_to_raw(sig, sig_len, 32, raw, sizeof raw, &n) ==
           HSM_OK;
}

/* Verify with the cached key (verify never creates a key). */
static hsm_err
do_verify(local_self *l, const char *kid, const uint8_t *msg, size_t msg_len,
          bool prehashed, const uint8_t *sig, size_t sig_len, bool *valid,
          hsm_diag *diag)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    hsm_err rc;

    *valid = false;
    if ((rc = key_get(l, kid, false, &pk, diag)) != HSM_OK)
        return rc;
    rc = HSM_OK;
    if (!der_ok(sig, sig_len))
        goto out; /* malformed: simply not valid */
    rc = HSM_ECRYPTO;
    if (prehashed) {
        if (!(pctx = EVP_PKEY_CTX_new(pk, NULL)) ||
            EVP_PKEY_verify_init(pctx) != 1 ||
            EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1)
            goto out;
        *valid = EVP_PKEY_verify(pctx, sig, sig_len, msg, msg_len) == 1;
    } else {
        if (!(md = EVP_MD_CTX_new()) ||
            EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1)
            goto out;
        *valid = EVP_DigestVerify(md, sig, sig_len, msg, msg_len) == 1;
    }
    rc = HSM_OK;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pk);
    return rc;
}

static hsm_err
local_verify(void *self, const char *kid, const uint8_t *msg, size_t msg_len,
             const uint8_t *sig, size_t sig_len, bool *valid, hsm_diag *diag)
{
    return do_verify(self, kid, msg, msg_len, false, sig, sig_len, valid, diag);
}

static hsm_err
local_verify_digest(void *self, const char *kid, const uint8_t *d, size_t d_len,
                    const uint8_t *sig, size_t sig_len, bool *valid,
                    hsm_diag *diag)
{
    return do_verify(self, kid, d, d_len, true, sig, sig_len, valid, diag);
}

const hsm_signer_ops hsm_local_signer_ops = {
    .name = "local",
    .create = local_create,
    .algorithm = local_algorithm,
    .sign = local_sign,
    .sign_digest = local_sign_digest,
    .verify = local_verify,
    .verify_digest = local_verify_digest,
    .public_key = local_public_key,
    .destroy = local_destroy,
};
