/* SPDX-License-Identifier: Apache-2.0 */
/* Signature and key encodings: ECDSA DER <-> raw r||s (RFC 3279 2.2.3,
 * X.690 DER rules), PEM public keys (RFC 7468 section 13), ML-DSA
 * SubjectPublicKeyInfo (RFC 9881), and provider-less verification. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "hsm_int.h"
#include "kc.h"

#ifdef HSM_HAVE_KMS_CRYPTO
#include "kms_mldsa.h"
#endif

/* ---- ECDSA signatures --------------------------------------------------- */

/* Read a DER length at p[*off] (< end). Minimal forms only, up to 2 bytes
 * of long form (enough for any ECDSA signature). */
static int
der_len(const uint8_t *p, size_t end, size_t *off, size_t *len)
{
    size_t o = *off;

    if (o >= end)
        return -1;
    if (p[o] < 0x80) {
        *len = p[o];
        *off = o + 1;
        return 0;
    }
    if (p[o] == 0x81) {
        if (o + 1 >= end || p[o + 1] < 0x80)
            return -1;
        *len = p[o + 1];
        *off = o + 2;
        return 0;
    }
    if (p[o] == 0x82) {
        if (o + 2 >= end || p[o + 1] == 0)
            return -1;
        *len = ((size_t)p[o + 1] << 8) | p[o + 2];
        if (*len < 0x100)
            return -1;
        *off = o + 3;
        return 0;
    }
    return -1;
}

/* One positive, minimally encoded INTEGER into a field_len-byte slot. */
static int
der_int(const uint8_t *p, size_t end, size_t *off, uint8_t *slot,
        size_t field_len)
{
    size_t o = *off, n;

    if (o >= end || p[o] != 0x02)
        return -1;
    o++;
    if (der_len(p, end, &o, &n) != 0 || n == 0 || n > end - o)
        return -1;
    if (p[o] & 0x80)
        return -1; /* negative */
    if (p[o] == 0 && n > 1 && !(p[o + 1] & 0x80))
        return -1; /* non-minimal */
    if (p[o] == 0 && n > 1) {
        o++;
        n--;
    }
    if (n > field_len)
        return -1;
    memset(slot, 0, field_len);
    memcpy(slot + field_len - n, p + o, n);
    *off = o + n;
    /* zero is not a valid r or s */
    for (size_t i = 0; i < field_len; i++) {
        if (slot[i])
            return 0;
    }
    return -1;
}

hsm_err
hsm_ecdsa_der_to_raw(const uint8_t *der, size_t der_len_, size_t field_len,
                     uint8_t *raw, size_t raw_cap, size_t *raw_len)
{
    size_t off = 0, seq;

    if (!der || !raw || !raw_len || field_len == 0 || field_len > 66)
        return HSM_EINVAL;
    *raw_len = 0;
    if (raw_cap < 2 * field_len)
        return HSM_ETOOBIG;
    if (der_len_ < 8 || der[0] != 0x30)
        return HSM_EMALFORMED;
    off = 1;
    if (der_len(der, der_len_, &off, &seq) != 0 || seq != der_len_ - off)
        return HSM_EMALFORMED;
    if (der_int(der, der_len_, &off, raw, field_len) != 0 ||
        der_int(der, der_len_, &off, raw + field_len, field_len) != 0 ||
        off != der_len_) {
        kc_wipe(raw, 2 * field_len);
        return HSM_EMALFORMED;
    }
    *raw_len = 2 * field_len;
    return HSM_OK;
}

static size_t
put_len(uint8_t *p, size_t len)
{
    if (len < 0x80) {
        p[0] = (uint8_t)len;
        return 1;
    }
    if (len < 0x100) {
        p[0] = 0x81;
        p[1] = (uint8_t)len;
        return 2;
    }
    p[0] = 0x82;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    return 3;
}

/* INTEGER from a big-endian unsigned value; returns bytes written or 0
 * when the value is zero. `out` has room for n + 4 bytes. */
static size_t
put_int(uint8_t *out, const uint8_t *v, size_t n)
{
    size_t o = 0, pad;

    while (n > 0 && v[0] == 0) {
        v++;
        n--;
    }
    if (n == 0)
        return 0;
    pad = (v[0] & 0x80) ? 1 : 0;
    out[o++] = 0x02;
    o += put_len(out + o, n + pad);
    if (pad)
        out[o++] = 0;
    memcpy(out + o, v, n);
    return o + n;
}

hsm_err
hsm_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der,
                     size_t der_cap, size_t *der_len_)
{
    uint8_t body[2 * (66 + 4)];
    size_t half, r_n, s_n, hdr;
    uint8_t h[4];

    if (!raw || !der || !der_len_)
        return HSM_EINVAL;
    *der_len_ = 0;
    if (raw_len < 2 || raw_len > 132 || raw_len % 2)
        return HSM_EINVAL;
    half = raw_len / 2;
    r_n = put_int(body, raw, half);
    if (r_n == 0)
        return HSM_EINVAL;
    s_n = put_int(body + r_n, raw + half, half);
    if (s_n == 0)
        return HSM_EINVAL;
    h[0] = 0x30;
    hdr = 1 + put_len(h + 1, r_n + s_n);
    if (der_cap < hdr + r_n + s_n)
        return HSM_ETOOBIG;
    memcpy(der, h, hdr);
    memcpy(der + hdr, body, r_n + s_n);
    *der_len_ = hdr + r_n + s_n;
    return HSM_OK;
}

/* ---- PEM ----------------------------------------------------------- */

#define PEM_BEGIN "-----BEGIN PUBLIC KEY-----"
#define PEM_END   "-----END PUBLIC KEY-----"

hsm_err
hsm_pubkey_der_to_pem(const uint8_t *der, size_t der_len_, char **pem)
{
    char *b64 = NULL, *out = NULL;
    size_t n, lines, cap, o = 0;

    if (!der || der_len_ == 0 || !pem)
        return HSM_EINVAL;
    *pem = NULL;
    if (der_len_ > 1024 * 1024)
        return HSM_ETOOBIG;
    b64 = kc_b64_encode(der, der_len_, KC_B64_STD);
    if (!b64)
        return HSM_ENOMEM;
    n = strlen(b64);
    lines = (n + 63) / 64;
    cap = sizeof PEM_BEGIN + n + lines + sizeof PEM_END + 2;
    out = malloc(cap);
    if (!out) {
        free(b64);
        return HSM_ENOMEM;
    }
    memcpy(out, PEM_BEGIN "\n", sizeof PEM_BEGIN);
    o = sizeof PEM_BEGIN;
    for (size_t i = 0; i < n; i += 64) {
        size_t k = n - i < 64 ? n - i : 64;
        memcpy(out + o, b64 + i, k);
        o += k;
        out[o++] = '\n';
    }
    memcpy(out + o, PEM_END "\n", sizeof PEM_END + 1);
    free(b64);
    *pem = out;
    return HSM_OK;
}

hsm_err
hsm_pubkey_pem_to_der(const char *pem, size_t pem_len, uint8_t **der,
                      size_t *der_len_)
{
    const char *b, *e;
    char *clean = NULL;
    size_t n = 0;
    hsm_err rc = HSM_EMALFORMED;

    if (!pem || !der || !der_len_)
        return HSM_EINVAL;
    *der = NULL;
    *der_len_ = 0;
    if (pem_len > 1024 * 1024)
        return HSM_ETOOBIG;
    b = memmem(pem, pem_len, PEM_BEGIN, sizeof PEM_BEGIN - 1);
    if (!b)
        return HSM_EMALFORMED;
    b += sizeof PEM_BEGIN - 1;
    e = memmem(b, pem_len - (size_t)(b - pem), PEM_END, sizeof PEM_END - 1);
    if (!e)
        return HSM_EMALFORMED;
    clean = malloc((size_t)(e - b) + 1);
    if (!clean)
        return HSM_ENOMEM;
    for (const char *p = b; p < e; p++) {
        if (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
            continue;
        clean[n++] = *p;
    }
    if (n == 0 || kc_b64_decode(clean, n, KC_B64_STD, der, der_len_) != 0)
        goto out;
    if (*der_len_ == 0) {
        free(*der);
        *der = NULL;
        goto out;
    }
    rc = HSM_OK;
out:
    free(clean);
    return rc;
}

/* ---- ML-DSA SubjectPublicKeyInfo ----------------------------------- */

/* id-ml-dsa-44/65/87: 2.16.840.1.101.3.4.3.17/18/19 (RFC 9881). */
static const uint8_t mldsa_oid_prefix[] = {0x06, 0x09, 0x60, 0x86, 0x48,
                                           0x01, 0x65, 0x03, 0x04, 0x03};

static const struct {
    hsm_alg alg;
    uint8_t arc;
    size_t pk_len;
} mldsa_params[] = {
    {HSM_ALG_ML_DSA_44, 17, 1312},
    {HSM_ALG_ML_DSA_65, 18, 1952},
    {HSM_ALG_ML_DSA_87, 19, 2592},
};

hsm_err
hsm_spki_mldsa_encode(hsm_alg alg, const uint8_t *pk, size_t pk_len,
                      uint8_t **der, size_t *der_len_)
{
    uint8_t *p;
    size_t o = 0, bit_len, inner;
    int idx = -1;

    if (!pk || !der || !der_len_)
        return HSM_EINVAL;
    *der = NULL;
    *der_len_ = 0;
    for (size_t i = 0; i < 3; i++) {
        if (mldsa_params[i].alg == alg)
            idx = (int)i;
    }
    if (idx < 0 || pk_len != mldsa_params[idx].pk_len)
        return HSM_EINVAL;
    bit_len = pk_len + 1;
    inner = 2 + sizeof mldsa_oid_prefix + 1 + 1 + 3 + bit_len;
    p = malloc(inner + 4);
    if (!p)
        return HSM_ENOMEM;
    p[o++] = 0x30;
    o += put_len(p + o, inner);
    p[o++] = 0x30;
    p[o++] = (uint8_t)(sizeof mldsa_oid_prefix + 1);
    memcpy(p + o, mldsa_oid_prefix, sizeof mldsa_oid_prefix);
    o += sizeof mldsa_oid_prefix;
    p[o++] = mldsa_params[idx].arc;
    p[o++] = 0x03;
    o += put_len(p + o, bit_len);
    p[o++] = 0x00; /* no unused bits */
    memcpy(p + o, pk, pk_len);
    o += pk_len;
    *der = p;
    *der_len_ = o;
    return HSM_OK;
}

hsm_err
hsm_spki_mldsa_decode(const uint8_t *der, size_t n, hsm_alg *alg,
                      const uint8_t **pk, size_t *pk_len)
{
    size_t off = 1, len;

    if (!der || !alg || !pk || !pk_len)
        return HSM_EINVAL;
    if (n < 20 || der[0] != 0x30 || der_len(der, n, &off, &len) != 0 ||
        len != n - off)
        return HSM_EMALFORMED;
    if (off + 2 + sizeof mldsa_oid_prefix + 1 > n || der[off] != 0x30 ||
        der[off + 1] != sizeof mldsa_oid_prefix + 1 ||
        memcmp(der + off + 2, mldsa_oid_prefix, sizeof mldsa_oid_prefix) != 0)
        return HSM_EMALFORMED;
    off += 2 + sizeof mldsa_oid_prefix;
    for (size_t i = 0; i < 3; i++) {
        if (der[off] != mldsa_params[i].arc)
            continue;
        off++;
        if (off >= n || der[off] != 0x03)
            return HSM_EMALFORMED;
        off++;
        if (der_len(der, n, &off, &len) != 0 || len != n - off ||
            len != mldsa_params[i].pk_len + 1 || der[off] != 0)
            return HSM_EMALFORMED;
        *alg = mldsa_params[i].alg;
        *pk = der + off + 1;
        *pk_len = len - 1;
        return HSM_OK;
    }
    return HSM_EMALFORMED;
}

/* ---- verification against a public key ----------------------------- */

/* Parse the SPKI and check that its key type fits `alg`. */
static hsm_err
load_pubkey(hsm_alg alg, const uint8_t *spki, size_t spki_len, EVP_PKEY **out)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk;
    char group[32] = "";
    size_t glen = 0;
    bool ok = false;

    *out = NULL;
    if (spki_len > 64 * 1024 || spki_len > (size_t)LONG_MAX)
        return HSM_EMALFORMED;
    pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    if (!pk || p != spki + spki_len) {
        EVP_PKEY_free(pk);
        return HSM_EMALFORMED;
    }
    switch (alg) {
    case HSM_ALG_ECDSA_P256_SHA256:
    case HSM_ALG_ECDSA_SECP256K1_SHA256:
        if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
            EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof group, &glen) == 1)
            ok = strcmp(group, alg == HSM_ALG_ECDSA_P256_SHA256
                                   ? "prime256v1"
                                   : "secp256k1") == 0;
        break;
    case HSM_ALG_ED25519:
        ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519;
        break;
    case HSM_ALG_RSA_PSS_SHA256:
    case HSM_ALG_RSA_PKCS1_SHA256:
        ok = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ||
             EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA_PSS;
        break;
    default:
        ok = false;
        break;
    }
    if (!ok) {
        EVP_PKEY_free(pk);
        return HSM_EINVAL;
    }
    *out = pk;
    return HSM_OK;
}

static int
set_padding(EVP_PKEY_CTX *pctx, hsm_alg alg)
{
    if (alg == HSM_ALG_RSA_PSS_SHA256)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
                       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1
                   ? 1
                   : 0;
    if (alg == HSM_ALG_RSA_PKCS1_SHA256)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    return 1;
}

/* ECDSA signatures must be strict DER before OpenSSL sees them. */
static bool
sig_shape_ok(hsm_alg alg, const uint8_t *sig, size_t sig_len)
{
    uint8_t raw[64];
    size_t n;

    if (sig_len == 0)
        return false;
    if (alg == HSM_ALG_ECDSA_P256_SHA256 ||
        alg == HSM_ALG_ECDSA_SECP256K1_SHA256) {
        bool ok = hsm_ecdsa_der_to_raw(sig, sig_len, 32, raw, sizeof raw, &n) ==
                  HSM_OK;
        return ok;
    }
    if (alg == HSM_ALG_ED25519)
        return sig_len == 64;
    return true;
}

/* ML-DSA.Verify (FIPS 204 Algorithm 3, empty context) through kms_crypto
 * when it is built in. */
static hsm_err
verify_mldsa(hsm_alg alg, const uint8_t *spki, size_t spki_len,
             const uint8_t *msg, size_t msg_len, const uint8_t *sig,
             size_t sig_len, bool *valid)
{
#ifdef HSM_HAVE_KMS_CRYPTO
    const uint8_t *pk;
    size_t pk_len;
    hsm_alg key_alg;
    kms_mldsa_param p = alg == HSM_ALG_ML_DSA_44   ? KMS_MLDSA_44
                        : alg == HSM_ALG_ML_DSA_65 ? KMS_MLDSA_65
                                                   : KMS_MLDSA_87;
    kms_mldsa_err e;

    if (hsm_spki_mldsa_decode(spki, spki_len, &key_alg, &pk, &pk_len) != HSM_OK)
        return HSM_EMALFORMED;
    if (key_alg != alg)
        return HSM_EINVAL;
    e = kms_mldsa_verify(p, pk, pk_len, msg ? msg : (const uint8_t *)"",
                         msg_len, NULL, 0, sig ? sig : (const uint8_t *)"",
                         sig_len);
    *valid = e == KMS_MLDSA_OK;
    /* a bad signature (wrong length included) is simply not valid */
    return e == KMS_MLDSA_OK || e == KMS_MLDSA_EVERIFY || e == KMS_MLDSA_ESIGLEN
               ? HSM_OK
               : HSM_ECRYPTO;
#else
    (void)alg;
    (void)spki;
    (void)spki_len;
    (void)msg;
    (void)msg_len;
    (void)sig;
    (void)sig_len;
    (void)valid;
    return HSM_EUNSUPPORTED;
#endif
}

hsm_err
hsm_verify_with_public_key(hsm_alg alg, const uint8_t *spki, size_t spki_len,
                           const uint8_t *msg, size_t msg_len,
                           const uint8_t *sig, size_t sig_len, bool *valid)
{
    EVP_MD_CTX *md = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    hsm_err rc;
    int r;

    if (!spki || !valid || (!msg && msg_len) || (!sig && sig_len))
        return HSM_EINVAL;
    *valid = false;
    if (alg == HSM_ALG_ML_DSA_44 || alg == HSM_ALG_ML_DSA_65 ||
        alg == HSM_ALG_ML_DSA_87)
        return verify_mldsa(alg, spki, spki_len, msg, msg_len, sig, sig_len,
                            valid);
    if ((rc = load_pubkey(alg, spki, spki_len, &pk)) != HSM_OK)
        return rc;
    if (!sig_shape_ok(alg, sig, sig_len)) {
        rc = HSM_OK; /* malformed signature: simply not valid */
        goto out;
    }
    rc = HSM_ECRYPTO;
    if (!(md = EVP_MD_CTX_new()))
        goto out;
    if (EVP_DigestVerifyInit(md, &pctx,
                             alg == HSM_ALG_ED25519 ? NULL : EVP_sha256(), NULL,
                             pk) != 1 ||
        !set_padding(pctx, alg))
        goto out;
    r = EVP_DigestVerify(md, sig, sig_len, msg ? msg : (const uint8_t *)"",
                         msg_len);
    *valid = r == 1;
    rc = HSM_OK;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return rc;
}

hsm_err
hsm_verify_digest_with_public_key(hsm_alg alg, const uint8_t *spki,
                                  size_t spki_len, const uint8_t *digest,
                                  size_t digest_len, const uint8_t *sig,
                                  size_t sig_len, bool *valid)
{
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    hsm_err rc;

    if (!spki || !valid || !digest || digest_len != 32 || (!sig && sig_len))
        return HSM_EINVAL;
    *valid = false;
    if (alg == HSM_ALG_ED25519 || alg == HSM_ALG_ML_DSA_44 ||
        alg == HSM_ALG_ML_DSA_65 || alg == HSM_ALG_ML_DSA_87)
        return HSM_EUNSUPPORTED;
    if ((rc = load_pubkey(alg, spki, spki_len, &pk)) != HSM_OK)
        return rc;
    if (!sig_shape_ok(alg, sig, sig_len)) {
        rc = HSM_OK;
        goto out;
    }
    rc = HSM_ECRYPTO;
    if (!(pctx = EVP_PKEY_CTX_new(pk, NULL)) ||
        EVP_PKEY_verify_init(pctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1 ||
        !set_padding(pctx, alg))
        goto out;
    *valid = EVP_PKEY_verify(pctx, sig, sig_len, digest, digest_len) == 1;
    rc = HSM_OK;
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(pk);
    return rc;
}
