/* SPDX-License-Identifier: Apache-2.0 */
/* Signer "mldsa": ML-DSA (FIPS 204) keys kept in the libhsm store; see
 * signers/mldsa.h for configuration and the stored record format.
 * Signatures are ML-DSA.Sign (Algorithm 2), hedged, with the empty
 * context, over the message itself. Decoded keys are cached per key id;
 * private keys live in locked, guarded memory (kc_secure_alloc). */
#include "signers/mldsa.h"

#ifdef HSM_HAVE_MLDSA_SIGNER

#include <stdlib.h>
#include <string.h>

#include "kc.h"
#include "kms_mldsa.h"

#define NS           "signer.mldsa"
#define REC_VERSION  1
#define REC_SEED     1
#define REC_EXPANDED 2
#define REC_HDR      3

typedef struct key_ent {
    struct key_ent *next;
    char *key_id;
    uint8_t *sk; /* kc_secure_alloc, sk_len bytes */
    uint8_t pk[KMS_MLDSA_PK_MAX];
} key_ent;

typedef struct {
    kms_mldsa_param param;
    hsm_alg alg;
    hsm_store *store;
    bool own_store;
    pthread_mutex_t mu; /* guards `keys` and key creation */
    key_ent *keys;
} mldsa_self;

/* The one place kms_crypto's codes become libhsm's. */
static hsm_err
err_from_mldsa(kms_mldsa_err e)
{
    switch (e) {
    case KMS_MLDSA_OK:
        return HSM_OK;
    case KMS_MLDSA_EKEY:
        return HSM_ECORRUPT;
    case KMS_MLDSA_ENOMEM:
        return HSM_ENOMEM;
    case KMS_MLDSA_EINVAL:
    case KMS_MLDSA_EPARAM:
    case KMS_MLDSA_EKEYLEN:
    case KMS_MLDSA_ESIGLEN:
    case KMS_MLDSA_ECTX:
    case KMS_MLDSA_EHASH:
    case KMS_MLDSA_EBUFSIZE:
        return HSM_EINVAL;
    default:
        return HSM_ECRYPTO;
    }
}

static int
param_of_alg(hsm_alg alg, kms_mldsa_param *p)
{
    switch (alg) {
    case HSM_ALG_ML_DSA_44:
        *p = KMS_MLDSA_44;
        return 0;
    case HSM_ALG_ML_DSA_65:
        *p = KMS_MLDSA_65;
        return 0;
    case HSM_ALG_ML_DSA_87:
        *p = KMS_MLDSA_87;
        return 0;
    default:
        return -1;
    }
}

static hsm_alg
alg_of_param(kms_mldsa_param p)
{
    return p == KMS_MLDSA_44   ? HSM_ALG_ML_DSA_44
           : p == KMS_MLDSA_87 ? HSM_ALG_ML_DSA_87
                               : HSM_ALG_ML_DSA_65;
}

/* param_set: "44" | "65" | "87" or an algorithm name. */
static hsm_err
parse_param_set(const char *v, kms_mldsa_param *p, hsm_diag *diag)
{
    hsm_alg alg;

    if (!v || !*v) {
        *p = KMS_MLDSA_65;
        return HSM_OK;
    }
    if (strcmp(v, "44") == 0 || strcmp(v, "65") == 0 || strcmp(v, "87") == 0) {
        *p = (kms_mldsa_param)((v[0] - '0') * 10 + (v[1] - '0'));
        return HSM_OK;
    }
    if (hsm_alg_from_name(v, &alg) == HSM_OK && param_of_alg(alg, p) == 0)
        return HSM_OK;
    hsm_diag_set(diag, "param_set must be 44, 65 or 87");
    return HSM_ECONFIG;
}

static hsm_err
mldsa_create(const hsm_config *cfg, hsm_store *store, void **self,
             hsm_diag *diag)
{
    mldsa_self *m;
    kms_mldsa_param p;
    hsm_err rc;

    if ((rc = parse_param_set(hsm_config_get(cfg, "param_set"), &p, diag)) !=
        HSM_OK)
        return rc;
    if (kc_init() != 0)
        return HSM_EINTERNAL;
    if (!(m = calloc(1, sizeof *m)))
        return HSM_ENOMEM;
    m->param = p;
    m->alg = alg_of_param(p);
    m->store = store;
    if (!store) {
        if ((rc = hsm_store_new_memory(&m->store)) != HSM_OK) {
            free(m);
            return rc;
        }
        m->own_store = true;
    }
    pthread_mutex_init(&m->mu, NULL);
    *self = m;
    return HSM_OK;
}

static void
key_ent_free(key_ent *k)
{
    if (!k)
        return;
    kc_secure_free(k->sk);
    free(k->key_id);
    free(k);
}

static void
mldsa_destroy(void *self)
{
    mldsa_self *m = self;

    while (m->keys) {
        key_ent *k = m->keys;
        m->keys = k->next;
        key_ent_free(k);
    }
    if (m->own_store)
        hsm_store_free(m->store);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static hsm_alg
mldsa_algorithm(void *self)
{
    return ((mldsa_self *)self)->alg;
}

/* Decode a stored record into a new cache entry for parameter set `p`. */
static hsm_err
record_decode(kms_mldsa_param p, const uint8_t *rec, size_t rec_len,
              const char *kid, key_ent **out, hsm_diag *diag)
{
    size_t sk_len = kms_mldsa_sk_len(p), pk_len = kms_mldsa_pk_len(p);
    key_ent *k = NULL;
    hsm_err rc = HSM_ECORRUPT;

    if (rec_len < REC_HDR || rec[0] != REC_VERSION) {
        hsm_diag_set(diag, "stored ML-DSA key '%s' has an unknown format", kid);
        return HSM_ECORRUPT;
    }
    if (rec[1] != (uint8_t)p) {
        hsm_diag_set(diag, "key '%s' is ML-DSA-%u, the signer is ML-DSA-%d",
                     kid, rec[1], (int)p);
        return HSM_ECONFIG;
    }
    if (!(k = calloc(1, sizeof *k)) || !(k->key_id = strdup(kid)) ||
        !(k->sk = kc_secure_alloc(sk_len))) {
        rc = HSM_ENOMEM;
        goto out;
    }
    if (rec[2] == REC_SEED && rec_len == REC_HDR + KMS_MLDSA_SEED_LEN)
        rc = err_from_mldsa(kms_mldsa_keygen_seed(p, rec + REC_HDR, k->pk,
                                                  pk_len, k->sk, sk_len));
    else if (rec[2] == REC_EXPANDED && rec_len == REC_HDR + sk_len) {
        memcpy(k->sk, rec + REC_HDR, sk_len);
        rc =
            err_from_mldsa(kms_mldsa_sk_to_pk(p, k->sk, sk_len, k->pk, pk_len));
        if (rc == HSM_EINVAL)
            rc = HSM_ECORRUPT;
    }
    if (rc != HSM_OK) {
        if (rc == HSM_ECORRUPT)
            hsm_diag_set(diag, "stored ML-DSA key '%s' is malformed", kid);
        goto out;
    }
    *out = k;
    k = NULL;
out:
    key_ent_free(k);
    return rc;
}

/* A fresh seed record, stored unless the key id exists (HSM_EEXIST). */
static hsm_err
key_generate(mldsa_self *m, const char *kid)
{
    uint8_t rec[REC_HDR + KMS_MLDSA_SEED_LEN];
    hsm_err rc;

    rec[0] = REC_VERSION;
    rec[1] = (uint8_t)m->param;
    rec[2] = REC_SEED;
    kc_random(rec + REC_HDR, KMS_MLDSA_SEED_LEN);
    rc = hsm_store_put_new(m->store, NS, kid, rec, sizeof rec);
    kc_wipe(rec, sizeof rec);
    return rc;
}

/* Find the key (cache, then store); create it when `create`. The entry
 * stays valid until the signer is destroyed. */
static hsm_err
key_get(mldsa_self *m, const char *kid, bool create, const key_ent **out,
        hsm_diag *diag)
{
    hsm_secret *s = NULL;
    key_ent *k;
    hsm_err rc;

    pthread_mutex_lock(&m->mu);
    for (k = m->keys; k; k = k->next) {
        if (strcmp(k->key_id, kid) == 0) {
            *out = k;
            pthread_mutex_unlock(&m->mu);
            return HSM_OK;
        }
    }
    rc = hsm_store_get(m->store, NS, kid, &s);
    if (rc == HSM_ENOTFOUND && create) {
        rc = key_generate(m, kid);
        if (rc == HSM_OK || rc == HSM_EEXIST) /* EEXIST: another process */
            rc = hsm_store_get(m->store, NS, kid, &s);
    } else if (rc == HSM_ENOTFOUND) {
        hsm_diag_set(diag, "no ML-DSA key '%s'", kid);
    }
    if (rc == HSM_OK)
        rc = record_decode(m->param, s->data, s->len, kid, &k, diag);
    if (rc == HSM_OK) {
        k->next = m->keys;
        m->keys = k;
        *out = k;
    }
    pthread_mutex_unlock(&m->mu);
    hsm_secret_free(s);
    return rc;
}

static hsm_err
mldsa_sign(void *self, const char *kid, const uint8_t *msg, size_t msg_len,
           uint8_t **sig, size_t *sig_len, hsm_diag *diag)
{
    mldsa_self *m = self;
    size_t n = kms_mldsa_sig_len(m->param);
    const key_ent *k;
    uint8_t *buf;
    hsm_err rc;

    if ((rc = key_get(m, kid, true, &k, diag)) != HSM_OK)
        return rc;
    if (!(buf = malloc(n)))
        return HSM_ENOMEM;
    rc = err_from_mldsa(kms_mldsa_sign(m->param, k->sk,
                                       kms_mldsa_sk_len(m->param), msg, msg_len,
                                       NULL, 0, KMS_MLDSA_HEDGED, buf, n));
    if (rc != HSM_OK) {
        hsm_diag_set(diag, "ML-DSA signing failed");
        free(buf);
        return rc;
    }
    *sig = buf;
    *sig_len = n;
    return HSM_OK;
}

static hsm_err
mldsa_verify(void *self, const char *kid, const uint8_t *msg, size_t msg_len,
             const uint8_t *sig, size_t sig_len, bool *valid, hsm_diag *diag)
{
    mldsa_self *m = self;
    const key_ent *k;
    kms_mldsa_err e;
    hsm_err rc;

    *valid = false;
    if ((rc = key_get(m, kid, false, &k, diag)) != HSM_OK)
        return rc;
    e = kms_mldsa_verify(m->param, k->pk, kms_mldsa_pk_len(m->param), msg,
                         msg_len, NULL, 0, sig, sig_len);
    if (e == KMS_MLDSA_OK)
        *valid = true;
    else if (e != KMS_MLDSA_EVERIFY && e != KMS_MLDSA_ESIGLEN)
        return err_from_mldsa(e);
    return HSM_OK;
}

static hsm_err
mldsa_public_key(void *self, const char *kid, uint8_t **der, size_t *der_len,
                 hsm_diag *diag)
{
    mldsa_self *m = self;
    const key_ent *k;
    hsm_err rc;

    if ((rc = key_get(m, kid, false, &k, diag)) != HSM_OK)
        return rc;
    return hsm_spki_mldsa_encode(m->alg, k->pk, kms_mldsa_pk_len(m->param), der,
                                 der_len);
}

hsm_err
hsm_mldsa_import(hsm_store *st, const char *key_id, hsm_alg alg,
                 const uint8_t *key, size_t key_len)
{
    kms_mldsa_param p;
    uint8_t *rec = NULL, pk[KMS_MLDSA_PK_MAX];
    size_t rec_len, sk_len;
    hsm_err rc;

    if (!st || !key || !hsm_key_id_valid(key_id) || param_of_alg(alg, &p) != 0)
        return HSM_EINVAL;
    sk_len = kms_mldsa_sk_len(p);
    if (key_len != KMS_MLDSA_SEED_LEN && key_len != sk_len)
        return HSM_EINVAL;
    /* An expanded key must decode (coefficients within [-eta, eta]). */
    if (key_len == sk_len &&
        kms_mldsa_sk_to_pk(p, key, key_len, pk, sizeof pk) != KMS_MLDSA_OK)
        return HSM_ECORRUPT;
    rec_len = REC_HDR + key_len;
    if (!(rec = kc_secure_alloc(rec_len)))
        return HSM_ENOMEM;
    rec[0] = REC_VERSION;
    rec[1] = (uint8_t)p;
    rec[2] = key_len == KMS_MLDSA_SEED_LEN ? REC_SEED : REC_EXPANDED;
    memcpy(rec + REC_HDR, key, key_len);
    rc = hsm_store_put_new(st, NS, key_id, rec, rec_len);
    kc_secure_free(rec);
    return rc;
}

const hsm_signer_ops hsm_mldsa_signer_ops = {
    .name = "mldsa",
    .create = mldsa_create,
    .algorithm = mldsa_algorithm,
    .sign = mldsa_sign,
    .sign_digest = NULL, /* ML-DSA signs the message itself */
    .verify = mldsa_verify,
    .verify_digest = NULL,
    .public_key = mldsa_public_key,
    .destroy = mldsa_destroy,
};

#endif /* HSM_HAVE_MLDSA_SIGNER */
