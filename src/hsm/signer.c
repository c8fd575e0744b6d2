/* SPDX-License-Identifier: Apache-2.0 */
/* hsm_signer and hsm_password_provider: the public objects wrapping a
 * provider vtable, with argument checks and the generic fallbacks of
 * hsm_int.h (hash-then-sign_digest, verify against the public key). */
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kc.h"

struct hsm_signer {
    const hsm_signer_ops *ops;
    void *self;
    hsm_config *cfg;
    hsm_diag diag;
};

struct hsm_password_provider {
    const hsm_password_ops *ops;
    void *self;
    hsm_config *cfg;
    hsm_diag diag;
};

static const uint8_t empty_msg[1];

static void
detail_out(hsm_diag *d, hsm_err rc, char *detail, size_t cap)
{
    if (!detail || cap == 0)
        return;
    hsm_diag_get(d, detail, cap);
    if (detail[0] == 0 && rc != HSM_OK)
        kc_strlcpy(detail, hsm_strerror(rc), cap);
}

/* ---- signers ---------------------------------------------------------- */

/* Build a signer from a vtable (`ops` NULL: look `name` up). */
static hsm_err
signer_create(const char *name, const hsm_signer_ops *ops,
              const hsm_config *config, hsm_store *store, hsm_signer **out,
              char *detail, size_t detail_cap)
{
    hsm_signer *s = NULL;
    hsm_err rc = HSM_EINTERNAL;

    if (detail && detail_cap)
        detail[0] = 0;
    if (!out)
        return HSM_EINVAL;
    *out = NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return HSM_ENOMEM;
    hsm_diag_init(&s->diag);
    s->ops = ops;
    if (!ops && (rc = hsm_registry_signer(name, &s->ops, &s->diag)) != HSM_OK)
        goto out;
    rc = hsm_config_copy(config, &s->cfg);
    if (rc != HSM_OK)
        goto out;
    rc = s->ops->create(s->cfg, store, &s->self, &s->diag);
    if (rc != HSM_OK) {
        s->self = NULL;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    if (s) {
        detail_out(&s->diag, rc, detail, detail_cap);
        hsm_signer_free(s);
    }
    return rc;
}

hsm_err
hsm_signer_new_ex(const char *name, const hsm_config *config, hsm_store *store,
                  hsm_signer **out, char *detail, size_t detail_cap)
{
    return signer_create(name, NULL, config, store, out, detail, detail_cap);
}

hsm_err
hsm_signer_new_from_ops(const hsm_signer_ops *ops, const hsm_config *config,
                        hsm_store *store, hsm_signer **out)
{
    if (!ops || !ops->create || !ops->public_key)
        return HSM_EINVAL;
    return signer_create(NULL, ops, config, store, out, NULL, 0);
}

hsm_err
hsm_signer_new(const char *name, const hsm_config *config, hsm_signer **out)
{
    return hsm_signer_new_ex(name, config, NULL, out, NULL, 0);
}

void
hsm_signer_free(hsm_signer *s)
{
    if (!s)
        return;
    if (s->self && s->ops->destroy)
        s->ops->destroy(s->self);
    hsm_config_free(s->cfg);
    hsm_diag_destroy(&s->diag);
    free(s);
}

const char *
hsm_signer_provider(const hsm_signer *s)
{
    return s && s->ops ? s->ops->name : "";
}

hsm_alg
hsm_signer_algorithm(const hsm_signer *s)
{
    return s && s->ops->algorithm ? s->ops->algorithm(s->self) : HSM_ALG_NONE;
}

const char *
hsm_signer_last_error(const hsm_signer *s)
{
    return s ? hsm_diag_snapshot(&s->diag) : "";
}

static bool
alg_is_prehash(hsm_alg alg)
{
    switch (alg) {
    case HSM_ALG_ECDSA_P256_SHA256:
    case HSM_ALG_ECDSA_SECP256K1_SHA256:
    case HSM_ALG_RSA_PSS_SHA256:
    case HSM_ALG_RSA_PKCS1_SHA256:
        return true;
    default:
        return false;
    }
}

/* The key id to use: the argument, else config key_id. */
static hsm_err
resolve_key(hsm_signer *s, const char *key_id, const char **kid)
{
    *kid = key_id ? key_id : hsm_config_get(s->cfg, "key_id");
    if (!*kid) {
        hsm_diag_set(&s->diag, "no key id given and no key_id configured");
        return HSM_ECONFIG;
    }
    if (!hsm_key_id_valid(*kid)) {
        hsm_diag_set(&s->diag, "invalid key id (1-255 printable bytes)");
        return HSM_EINVAL;
    }
    return HSM_OK;
}

hsm_err
hsm_signer_sign(hsm_signer *s, const char *key_id, const uint8_t *msg,
                size_t msg_len, uint8_t **sig, size_t *sig_len)
{
    uint8_t digest[32];
    const char *kid;
    hsm_err rc;

    if (!s || !sig || !sig_len || (!msg && msg_len))
        return HSM_EINVAL;
    *sig = NULL;
    *sig_len = 0;
    if (msg_len > HSM_MAX_MESSAGE)
        return HSM_ETOOBIG;
    if ((rc = resolve_key(s, key_id, &kid)) != HSM_OK)
        return rc;
    if (!msg)
        msg = empty_msg;
    if (s->ops->sign)
        return s->ops->sign(s->self, kid, msg, msg_len, sig, sig_len, &s->diag);
    if (!s->ops->sign_digest || !alg_is_prehash(hsm_signer_algorithm(s)))
        return HSM_EUNSUPPORTED;
    if ((rc = hsm_sha256(msg, msg_len, digest)) != HSM_OK)
        return rc;
    return s->ops->sign_digest(s->self, kid, digest, sizeof digest, sig,
                               sig_len, &s->diag);
}

hsm_err
hsm_signer_sign_digest(hsm_signer *s, const char *key_id, const uint8_t *digest,
                       size_t digest_len, uint8_t **sig, size_t *sig_len)
{
    const char *kid;
    hsm_err rc;

    if (!s || !sig || !sig_len || !digest)
        return HSM_EINVAL;
    *sig = NULL;
    *sig_len = 0;
    if (digest_len != 32)
        return HSM_EINVAL;
    if ((rc = resolve_key(s, key_id, &kid)) != HSM_OK)
        return rc;
    if (!s->ops->sign_digest || !alg_is_prehash(hsm_signer_algorithm(s)))
        return HSM_EUNSUPPORTED;
    return s->ops->sign_digest(s->self, kid, digest, digest_len, sig, sig_len,
                               &s->diag);
}

hsm_err
hsm_signer_public_key(hsm_signer *s, const char *key_id, uint8_t **der,
                      size_t *der_len)
{
    const char *kid;
    hsm_err rc;

    if (!s || !der || !der_len)
        return HSM_EINVAL;
    *der = NULL;
    *der_len = 0;
    if ((rc = resolve_key(s, key_id, &kid)) != HSM_OK)
        return rc;
    if (!s->ops->public_key)
        return HSM_EUNSUPPORTED;
    return s->ops->public_key(s->self, kid, der, der_len, &s->diag);
}

/* Verify through the public key, for providers without verify ops.
 * For prehash algorithms `data` is the digest when is_digest. */
static hsm_err
verify_by_pubkey(hsm_signer *s, const char *kid, const uint8_t *data,
                 size_t data_len, bool is_digest, const uint8_t *sig,
                 size_t sig_len, bool *valid)
{
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    hsm_err rc;

    rc = s->ops->public_key(s->self, kid, &spki, &spki_len, &s->diag);
    if (rc != HSM_OK)
        return rc;
    if (is_digest)
        rc = hsm_verify_digest_with_public_key(hsm_signer_algorithm(s), spki,
                                               spki_len, data, data_len, sig,
                                               sig_len, valid);
    else
        rc = hsm_verify_with_public_key(hsm_signer_algorithm(s), spki, spki_len,
                                        data, data_len, sig, sig_len, valid);
    free(spki);
    return rc;
}

hsm_err
hsm_signer_verify(hsm_signer *s, const char *key_id, const uint8_t *msg,
                  size_t msg_len, const uint8_t *sig, size_t sig_len,
                  bool *valid)
{
    uint8_t digest[32];
    const char *kid;
    hsm_err rc;

    if (!s || !valid || (!msg && msg_len) || (!sig && sig_len))
        return HSM_EINVAL;
    *valid = false;
    if (msg_len > HSM_MAX_MESSAGE)
        return HSM_ETOOBIG;
    if ((rc = resolve_key(s, key_id, &kid)) != HSM_OK)
        return rc;
    if (!msg)
        msg = empty_msg;
    if (!sig)
        sig = empty_msg;
    if (s->ops->verify)
        return s->ops->verify(s->self, kid, msg, msg_len, sig, sig_len, valid,
                              &s->diag);
    if (s->ops->verify_digest && alg_is_prehash(hsm_signer_algorithm(s))) {
        if ((rc = hsm_sha256(msg, msg_len, digest)) != HSM_OK)
            return rc;
        return s->ops->verify_digest(s->self, kid, digest, sizeof digest, sig,
                                     sig_len, valid, &s->diag);
    }
    return verify_by_pubkey(s, kid, msg, msg_len, false, sig, sig_len, valid);
}

hsm_err
hsm_signer_verify_digest(hsm_signer *s, const char *key_id,
                         const uint8_t *digest, size_t digest_len,
                         const uint8_t *sig, size_t sig_len, bool *valid)
{
    const char *kid;
    hsm_err rc;

    if (!s || !valid || !digest || (!sig && sig_len))
        return HSM_EINVAL;
    *valid = false;
    if (digest_len != 32)
        return HSM_EINVAL;
    if ((rc = resolve_key(s, key_id, &kid)) != HSM_OK)
        return rc;
    if (!alg_is_prehash(hsm_signer_algorithm(s)))
        return HSM_EUNSUPPORTED;
    if (!sig)
        sig = empty_msg;
    if (s->ops->verify_digest)
        return s->ops->verify_digest(s->self, kid, digest, digest_len, sig,
                                     sig_len, valid, &s->diag);
    return verify_by_pubkey(s, kid, digest, digest_len, true, sig, sig_len,
                            valid);
}

/* ---- password providers -------------------------------------------------- */

hsm_err
hsm_password_provider_new_ex(const char *name, const hsm_config *config,
                             hsm_password_provider **out, char *detail,
                             size_t detail_cap)
{
    hsm_password_provider *p = NULL;
    hsm_err rc = HSM_EINTERNAL;

    if (detail && detail_cap)
        detail[0] = 0;
    if (!out)
        return HSM_EINVAL;
    *out = NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return HSM_ENOMEM;
    hsm_diag_init(&p->diag);
    rc = hsm_registry_password(name, &p->ops, &p->diag);
    if (rc != HSM_OK)
        goto out;
    rc = hsm_config_copy(config, &p->cfg);
    if (rc != HSM_OK)
        goto out;
    rc = p->ops->create(p->cfg, &p->self, &p->diag);
    if (rc != HSM_OK) {
        p->self = NULL;
        goto out;
    }
    *out = p;
    p = NULL;
out:
    if (p) {
        detail_out(&p->diag, rc, detail, detail_cap);
        hsm_password_provider_free(p);
    }
    return rc;
}

hsm_err
hsm_password_provider_new(const char *name, const hsm_config *config,
                          hsm_password_provider **out)
{
    return hsm_password_provider_new_ex(name, config, out, NULL, 0);
}

void
hsm_password_provider_free(hsm_password_provider *p)
{
    if (!p)
        return;
    if (p->self && p->ops->destroy)
        p->ops->destroy(p->self);
    hsm_config_free(p->cfg);
    hsm_diag_destroy(&p->diag);
    free(p);
}

const char *
hsm_password_provider_name(const hsm_password_provider *p)
{
    return p && p->ops ? p->ops->name : "";
}

const char *
hsm_password_provider_last_error(const hsm_password_provider *p)
{
    return p ? hsm_diag_snapshot(&p->diag) : "";
}

hsm_err
hsm_password_get(hsm_password_provider *p, const char *key_id, hsm_secret **out)
{
    hsm_err rc;

    if (!p || !out)
        return HSM_EINVAL;
    *out = NULL;
    if (key_id && strnlen(key_id, 4097) > 4096)
        return HSM_EINVAL;
    rc = p->ops->get(p->self, key_id, out, &p->diag);
    if (rc == HSM_OK && (!*out || (*out)->len == 0)) {
        hsm_secret_free(*out);
        *out = NULL;
        hsm_diag_set(&p->diag, "the password is empty");
        rc = HSM_EINVAL;
    }
    return rc;
}
