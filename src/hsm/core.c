/* SPDX-License-Identifier: Apache-2.0 */
/* libhsm core: errors, secrets, diagnostics, algorithm names, helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "hsm_int.h"
#include "kc.h"

static const char *const err_msgs[] = {
#define HSM_X_MSG(name, msg) msg,
    HSM_ERROR_TABLE(HSM_X_MSG)
#undef HSM_X_MSG
};

const char *
hsm_strerror(hsm_err err)
{
    if ((unsigned)err >= (unsigned)HSM_ERR_COUNT)
        return "unknown error";
    return err_msgs[err];
}

void
hsm_free(void *p)
{
    free(p);
}

void
hsm_list_free(char **list, size_t count)
{
    if (!list)
        return;
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

/* ---- secrets ------------------------------------------------------------ */

hsm_err
hsm_secret_new(size_t len, hsm_secret **out)
{
    hsm_secret *s;
    size_t total;

    if (!out)
        return HSM_EINVAL;
    *out = NULL;
    if (len > SIZE_MAX - sizeof *s - 32)
        return HSM_ETOOBIG;
    if (kc_init() != 0)
        return HSM_EINTERNAL;
    /* One guarded allocation: header, data, NUL. sodium_malloc places the
     * block at the end of its page, so the size is rounded up to keep the
     * header aligned. */
    total = (sizeof *s + len + 1 + 15) & ~(size_t)15;
    s = kc_secure_alloc(total);
    if (!s)
        return HSM_ENOMEM;
    s->data = (uint8_t *)(s + 1);
    s->len = len;
    memset(s->data, 0, len + 1);
    *out = s;
    return HSM_OK;
}

hsm_err
hsm_secret_from(const void *src, size_t len, hsm_secret **out)
{
    hsm_err rc;

    if (!src && len > 0)
        return HSM_EINVAL;
    rc = hsm_secret_new(len, out);
    if (rc == HSM_OK && len > 0)
        memcpy((*out)->data, src, len);
    return rc;
}

void
hsm_secret_free(hsm_secret *s)
{
    kc_secure_free(s); /* wipes the whole allocation */
}

/* ---- diagnostics --------------------------------------------------- */

void
hsm_diag_init(hsm_diag *d)
{
    pthread_mutex_init(&d->mu, NULL);
    d->msg[0] = 0;
}

void
hsm_diag_destroy(hsm_diag *d)
{
    pthread_mutex_destroy(&d->mu);
}

void
hsm_diag_set(hsm_diag *d, const char *fmt, ...)
{
    va_list ap;

    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&d->mu);
}

void
hsm_diag_get(hsm_diag *d, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    if (!d) {
        buf[0] = 0;
        return;
    }
    pthread_mutex_lock(&d->mu);
    kc_strlcpy(buf, d->msg, cap);
    pthread_mutex_unlock(&d->mu);
}

const char *
hsm_diag_snapshot(const hsm_diag *d)
{
    static _Thread_local char buf[HSM_DETAIL_MAX];

    /* The mutex is the object's mutable state, not its value. */
    hsm_diag_get((hsm_diag *)(uintptr_t)d, buf, sizeof buf);
    return buf;
}

/* ---- algorithms ---------------------------------------------------- */

static const struct {
    hsm_alg alg;
    const char *name;
} alg_names[] = {
    {HSM_ALG_ECDSA_P256_SHA256, "ECDSA_P256_SHA256"},
    {HSM_ALG_ECDSA_SECP256K1_SHA256, "ECDSA_SECP256K1_SHA256"},
    {HSM_ALG_ED25519, "ED25519"},
    {HSM_ALG_RSA_PSS_SHA256, "RSA_PSS_SHA256"},
    {HSM_ALG_RSA_PKCS1_SHA256, "RSA_PKCS1_SHA256"},
    {HSM_ALG_ML_DSA_44, "ML_DSA_44"},
    {HSM_ALG_ML_DSA_65, "ML_DSA_65"},
    {HSM_ALG_ML_DSA_87, "ML_DSA_87"},
    /* accepted on input only */
    {HSM_ALG_ECDSA_P256_SHA256, "ES256"},
    {HSM_ALG_ECDSA_P256_SHA256, "P256"},
    {HSM_ALG_ECDSA_P256_SHA256, "ECDSA_SHA_256"},
    {HSM_ALG_ML_DSA_44, "ML-DSA-44"},
    {HSM_ALG_ML_DSA_65, "ML-DSA-65"},
    {HSM_ALG_ML_DSA_87, "ML-DSA-87"},
    {HSM_ALG_ML_DSA_44, "MLDSA44"},
    {HSM_ALG_ML_DSA_65, "MLDSA65"},
    {HSM_ALG_ML_DSA_87, "MLDSA87"},
};

const char *
hsm_alg_name(hsm_alg alg)
{
    for (size_t i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++) {
        if (alg_names[i].alg == alg)
            return alg_names[i].name;
    }
    return "NONE";
}

hsm_err
hsm_alg_from_name(const char *name, hsm_alg *alg)
{
    if (!name || !alg)
        return HSM_EINVAL;
    for (size_t i = 0; i < sizeof alg_names / sizeof alg_names[0]; i++) {
        if (strcasecmp(alg_names[i].name, name) == 0) {
            *alg = alg_names[i].alg;
            return HSM_OK;
        }
    }
    return HSM_EINVAL;
}

/* ---- helpers ------------------------------------------------------- */

hsm_err
hsm_sha256(const uint8_t *in, size_t in_len, uint8_t out[32])
{
    unsigned int n = 0;

    if (!in && in_len > 0)
        return HSM_EINVAL;
    if (EVP_Digest(in_len ? in : (const uint8_t *)"", in_len, out, &n,
                   EVP_sha256(), NULL) != 1 ||
        n != 32)
        return HSM_ECRYPTO;
    return HSM_OK;
}

bool
hsm_key_id_valid(const char *key_id)
{
    size_t n;

    if (!key_id)
        return false;
    n = strnlen(key_id, HSM_MAX_KEY_ID + 1);
    if (n == 0 || n > HSM_MAX_KEY_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key_id[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

hsm_err
hsm_openssl_fail(hsm_diag *diag, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[128];

    if (e) {
        ERR_error_string_n(e, buf, sizeof buf);
        hsm_diag_set(diag, "%s: %s", what, buf);
    } else {
        hsm_diag_set(diag, "%s failed", what);
    }
    ERR_clear_error();
    return HSM_ECRYPTO;
}
