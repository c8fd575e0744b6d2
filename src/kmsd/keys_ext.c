/* SPDX-License-Identifier: Apache-2.0 */
/* Keys held outside kmsd (backends pkcs11, aws, gcp, azure): the key
 * material stays in the token or cloud; the key record keeps only the
 * backend's configuration (a reference: module, token label, PIN file
 * path, key id ...), never a PIN or secret. Signing goes through libhsm's
 * signer of the same name (docs/pkcs11.md, docs/cloud.md). */
#include "keys_ext.h"

#include "kc.h"

#include <stdlib.h>
#include <string.h>

#ifdef KMSD_HAVE_HSM
#include <hsm/hsm.h>

/* Configuration keys a backend reference may hold: references only. A PIN
 * or password comes from a libhsm password provider (pin_provider). */
static const char *const allowed[] = {
    "module",     "token_label", "token_serial", "pin_provider",
    "pin_key_id", "key_id",      "algorithm",    "region",
    "endpoint",   "project_id",  "location",     "key_ring",
    "crypto_key", "vault_url",   "key_name",     "key_version",
};

bool
kms_key_ext_backend(const char *b)
{
    return b && (strcmp(b, "pkcs11") == 0 || strcmp(b, "aws") == 0 ||
                 strcmp(b, "gcp") == 0 || strcmp(b, "azure") == 0);
}

static bool
key_allowed(const char *k)
{
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strcmp(allowed[i], k) == 0)
            return true;
    return false;
}

static kms_err
open_signer(kms_ctx *c, const char *backend, const json_t *cfg,
            hsm_signer **out)
{
    char d[256]; /* libhsm's diagnostic: not passed on (may name paths) */
    hsm_config *hc = NULL;
    const char *k;
    json_t *v;
    hsm_err he;
    kms_err rc = KMS_EINVAL;

    *out = NULL;
    if (!json_is_object(cfg)) {
        c->detail = "backend_config: an object of strings";
        return KMS_EINVAL;
    }
    if (hsm_config_new(&hc) != HSM_OK)
        return KMS_ENOMEM;
    json_object_foreach((json_t *)cfg, k, v)
    {
        if (!json_is_string(v) || !key_allowed(k) ||
            hsm_config_set(hc, k, json_string_value(v)) != HSM_OK) {
            c->detail = "backend_config: unknown key or not a string "
                        "(references only: no PIN, no secret)";
            goto out;
        }
    }
    he = hsm_signer_new_ex(backend, hc, NULL, out, d, sizeof d);
    if (he != HSM_OK) {
        c->detail = "the backend refused its configuration (see "
                    "docs/keys.md)";
        rc = he == HSM_ENOMEM ? KMS_ENOMEM : KMS_EINVAL;
        goto out;
    }
    rc = KMS_OK;
out:
    hsm_config_free(hc);
    return rc;
}

static const char *
ref_key_id(const json_t *cfg)
{
    return json_string_value(json_object_get(cfg, "key_id"));
}

kms_err
kms_key_ext_create(kms_ctx *c, const char *backend, kms_key_type t,
                   const json_t *cfg, json_t *ver)
{
    hsm_signer *s = NULL;
    uint8_t *der = NULL;
    size_t dl = 0;
    char *b = NULL;
    kms_err rc;

    if (kms_key_type_symmetric(t) || t >= KMS_KT_ML_DSA_44) {
        c->detail = "external backends hold ecdsa-p256, ecdsa-secp256k1 or "
                    "ed25519 signing keys";
        return KMS_EUNSUPPORTED;
    }
    if (!ref_key_id(cfg)) {
        c->detail = "backend_config.key_id is required";
        return KMS_EINVAL;
    }
    if ((rc = open_signer(c, backend, cfg, &s)) != KMS_OK)
        return rc;
    /* A token is local: prove the reference now and keep its public key,
     * so verification needs no token. Cloud keys are fetched on use. */
    if (strcmp(backend, "pkcs11") == 0) {
        if (hsm_signer_public_key(s, ref_key_id(cfg), &der, &dl) != HSM_OK) {
            c->detail = "the token has no such key (or the PIN is wrong)";
            rc = KMS_EINVAL;
            goto out;
        }
        if (!(b = kc_b64_encode(der, dl, KC_B64_STD))) {
            rc = KMS_ENOMEM;
            goto out;
        }
        json_object_set_new(ver, "pub", json_string(b));
    }
    json_object_set_new(ver, "ref", json_string(ref_key_id(cfg)));
    rc = KMS_OK;
out:
    free(b);
    hsm_free(der);
    hsm_signer_free(s);
    return rc;
}

kms_err
kms_key_ext_sign(kms_ctx *c, const json_t *rec, kms_sign_mode mode,
                 const uint8_t *msg, size_t msg_len, uint8_t **sig,
                 size_t *sig_len)
{
    const json_t *cfg = json_object_get(rec, "backend_config");
    const char *backend = json_string_value(json_object_get(rec, "backend"));
    hsm_signer *s = NULL;
    uint8_t *hs = NULL;
    size_t hl = 0;
    hsm_err he;
    kms_err rc;

    if ((rc = open_signer(c, backend, cfg, &s)) != KMS_OK)
        return rc;
    he =
        mode == KMS_SIGN_DIGEST
            ? hsm_signer_sign_digest(s, ref_key_id(cfg), msg, msg_len, &hs, &hl)
            : hsm_signer_sign(s, ref_key_id(cfg), msg, msg_len, &hs, &hl);
    rc = KMS_EINTERNAL;
    if (he == HSM_OK && (*sig = malloc(hl))) {
        memcpy(*sig, hs, hl);
        *sig_len = hl;
        rc = KMS_OK;
    } else if (he == HSM_EINVAL) {
        rc = KMS_EINVAL;
        c->detail = "the backend refused the input (digest length?)";
    } else if (he != HSM_OK) {
        c->detail = "the key's backend failed to sign";
    }
    hsm_free(hs);
    hsm_signer_free(s);
    return rc;
}

kms_err
kms_key_ext_public(kms_ctx *c, const json_t *rec, uint8_t **der,
                   size_t *der_len)
{
    const json_t *cfg = json_object_get(rec, "backend_config");
    const char *backend = json_string_value(json_object_get(rec, "backend"));
    hsm_signer *s = NULL;
    uint8_t *d = NULL;
    size_t dl = 0;
    kms_err rc;

    if ((rc = open_signer(c, backend, cfg, &s)) != KMS_OK)
        return rc;
    rc = KMS_EINTERNAL;
    if (hsm_signer_public_key(s, ref_key_id(cfg), &d, &dl) == HSM_OK &&
        (*der = malloc(dl))) {
        memcpy(*der, d, dl);
        *der_len = dl;
        rc = KMS_OK;
    } else {
        c->detail = "the key's backend has no public key for it";
    }
    hsm_free(d);
    hsm_signer_free(s);
    return rc;
}

#else

bool
kms_key_ext_backend(const char *b)
{
    (void)b;
    return false;
}

kms_err
kms_key_ext_create(kms_ctx *c, const char *backend, kms_key_type t,
                   const json_t *cfg, json_t *ver)
{
    (void)backend, (void)t, (void)cfg, (void)ver;
    c->detail = "this kmsd was built without libhsm";
    return KMS_EUNSUPPORTED;
}

kms_err
kms_key_ext_sign(kms_ctx *c, const json_t *rec, kms_sign_mode mode,
                 const uint8_t *msg, size_t msg_len, uint8_t **sig,
                 size_t *sig_len)
{
    (void)rec, (void)mode, (void)msg, (void)msg_len, (void)sig, (void)sig_len;
    c->detail = "this kmsd was built without libhsm";
    return KMS_EUNSUPPORTED;
}

kms_err
kms_key_ext_public(kms_ctx *c, const json_t *rec, uint8_t **der,
                   size_t *der_len)
{
    (void)rec, (void)der, (void)der_len;
    c->detail = "this kmsd was built without libhsm";
    return KMS_EUNSUPPORTED;
}
#endif
