/* SPDX-License-Identifier: Apache-2.0 */
/* Signer "pkcs11": keys on any PKCS#11 token (SoftHSM2, YubiHSM 2, AWS
 * CloudHSM, Thales Luna ...). Signing happens on the token; verification
 * happens on the host with the public key exported from the token
 * (hsm_verify_with_public_key), which needs no session and behaves the same
 * on every token. See docs/pkcs11.md. */
#include <stdlib.h>
#include <string.h>

#include "hsm_pkcs11.h"
#include "kc.h"
#include "pkcs11_int.h"

typedef struct {
    p11_token *tok;
    hsm_alg alg; /* of the configured key_id, or "algorithm", or P-256 */
} p11_signer;

static hsm_err
signer_create(const hsm_config *cfg, hsm_store *store, void **self,
              hsm_diag *diag)
{
    const char *kid = hsm_config_get(cfg, "key_id");
    const char *alg = hsm_config_get_raw(cfg, "algorithm");
    p11_signer *s = calloc(1, sizeof *s);
    ck_key_type_t type;
    hsm_err rc;

    (void)store; /* keys live on the token */
    if (!s)
        return HSM_ENOMEM;
    s->alg = HSM_ALG_ECDSA_P256_SHA256;
    if (alg &&
        (hsm_alg_from_name(alg, &s->alg) != HSM_OK ||
         (s->alg != HSM_ALG_ECDSA_P256_SHA256 && s->alg != HSM_ALG_ED25519 &&
          s->alg != HSM_ALG_RSA_PSS_SHA256))) {
        hsm_diag_set(diag, "pkcs11: algorithm must be ECDSA_P256_SHA256, "
                           "ED25519 or RSA_PSS_SHA256");
        free(s);
        return HSM_ECONFIG;
    }
    if ((rc = p11_open_from_config(cfg, &s->tok, diag)) != HSM_OK) {
        free(s);
        return rc;
    }
    /* The configured key decides the algorithm when it exists. */
    if (!alg && kid && p11_key_type(s->tok, kid, &type, NULL) == CKR_OK &&
        p11_alg_of_type(type) != HSM_ALG_NONE)
        s->alg = p11_alg_of_type(type);
    *self = s;
    return HSM_OK;
}

static hsm_alg
signer_algorithm(void *self)
{
    return ((p11_signer *)self)->alg;
}

/* Sign `data` (a digest for EC/RSA, the message for Ed25519) with a key
 * that must be of type `type`; ECDSA's raw r||s becomes DER. */
static hsm_err
sign_typed(p11_signer *s, const char *kid, ck_key_type_t type,
           const uint8_t *data, size_t data_len, uint8_t **sig, size_t *sig_len,
           hsm_diag *diag)
{
    uint8_t *raw = NULL, *der = NULL;
    size_t raw_len = 0, der_len = 0;
    p11_diag d = {""};
    ck_rv_t rv;
    hsm_err rc;

    rv = p11_sign(s->tok, kid, type, data, data_len, &raw, &raw_len, NULL, &d);
    if (rv != CKR_OK)
        return p11_report(diag, rv, &d);
    if (type != CKK_EC) {
        *sig = raw;
        *sig_len = raw_len;
        return HSM_OK;
    }
    if (!(der = malloc(HSM_ECDSA_DER_MAX(66)))) {
        rc = HSM_ENOMEM;
        goto out;
    }
    rc = hsm_ecdsa_raw_to_der(raw, raw_len, der, HSM_ECDSA_DER_MAX(66),
                              &der_len);
    if (rc != HSM_OK) {
        hsm_diag_set(diag,
                     "pkcs11: C_Sign returned a malformed ECDSA "
                     "signature (%zu bytes)",
                     raw_len);
        goto out;
    }
    *sig = der;
    *sig_len = der_len;
    der = NULL;
out:
    free(der);
    free(raw);
    return rc;
}

static hsm_err
key_type(p11_signer *s, const char *kid, ck_key_type_t *type, hsm_diag *diag)
{
    p11_diag d = {""};
    ck_rv_t rv = p11_key_type(s->tok, kid, type, &d);

    return p11_report(diag, rv, &d);
}

static hsm_err
signer_sign(void *self, const char *kid, const uint8_t *msg, size_t msg_len,
            uint8_t **sig, size_t *sig_len, hsm_diag *diag)
{
    p11_signer *s = self;
    uint8_t dg[32];
    ck_key_type_t type;
    hsm_err rc;

    if ((rc = key_type(s, kid, &type, diag)) != HSM_OK)
        return rc;
    if (type == CKK_EC_EDWARDS)
        return sign_typed(s, kid, type, msg, msg_len, sig, sig_len, diag);
    if ((rc = hsm_sha256(msg, msg_len, dg)) != HSM_OK)
        return rc;
    return sign_typed(s, kid, type, dg, sizeof dg, sig, sig_len, diag);
}

static hsm_err
signer_sign_digest(void *self, const char *kid, const uint8_t *digest,
                   size_t digest_len, uint8_t **sig, size_t *sig_len,
                   hsm_diag *diag)
{
    p11_signer *s = self;
    ck_key_type_t type;
    hsm_err rc;

    if ((rc = key_type(s, kid, &type, diag)) != HSM_OK)
        return rc;
    if (type != CKK_EC && type != CKK_RSA) {
        hsm_diag_set(diag, "pkcs11: key \"%.64s\" signs whole messages only",
                     kid);
        return HSM_EUNSUPPORTED;
    }
    return sign_typed(s, kid, type, digest, digest_len, sig, sig_len, diag);
}

static hsm_err
signer_public_key(void *self, const char *kid, uint8_t **der, size_t *der_len,
                  hsm_diag *diag)
{
    p11_signer *s = self;
    p11_diag d = {""};
    ck_rv_t rv = p11_public_key(s->tok, kid, der, der_len, NULL, &d);

    return p11_report(diag, rv, &d);
}

/* Verification on the host against the token's public key. */
static hsm_err
verify_common(p11_signer *s, const char *kid, bool is_digest,
              const uint8_t *data, size_t data_len, const uint8_t *sig,
              size_t sig_len, bool *valid, hsm_diag *diag)
{
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    ck_key_type_t type = 0;
    p11_diag d = {""};
    ck_rv_t rv;
    hsm_alg alg;
    hsm_err rc;

    rv = p11_public_key(s->tok, kid, &spki, &spki_len, &type, &d);
    if (rv != CKR_OK)
        return p11_report(diag, rv, &d);
    alg = p11_alg_of_type(type);
    if (is_digest && alg == HSM_ALG_ED25519) {
        hsm_diag_set(diag, "pkcs11: Ed25519 verifies whole messages only");
        rc = HSM_EUNSUPPORTED;
    } else if (is_digest) {
        rc = hsm_verify_digest_with_public_key(alg, spki, spki_len, data,
                                               data_len, sig, sig_len, valid);
    } else {
        rc = hsm_verify_with_public_key(alg, spki, spki_len, data, data_len,
                                        sig, sig_len, valid);
    }
    free(spki);
    return rc;
}

static hsm_err
signer_verify(void *self, const char *kid, const uint8_t *msg, size_t msg_len,
              const uint8_t *sig, size_t sig_len, bool *valid, hsm_diag *diag)
{
    return verify_common(self, kid, false, msg, msg_len, sig, sig_len, valid,
                         diag);
}

static hsm_err
signer_verify_digest(void *self, const char *kid, const uint8_t *digest,
                     size_t digest_len, const uint8_t *sig, size_t sig_len,
                     bool *valid, hsm_diag *diag)
{
    return verify_common(self, kid, true, digest, digest_len, sig, sig_len,
                         valid, diag);
}

static void
signer_destroy(void *self)
{
    p11_signer *s = self;

    if (!s)
        return;
    p11_token_close(s->tok);
    free(s);
}

const hsm_signer_ops hsm_pkcs11_signer_ops = {
    .name = "pkcs11",
    .create = signer_create,
    .algorithm = signer_algorithm,
    .sign = signer_sign,
    .sign_digest = signer_sign_digest,
    .verify = signer_verify,
    .verify_digest = signer_verify_digest,
    .public_key = signer_public_key,
    .destroy = signer_destroy,
};
