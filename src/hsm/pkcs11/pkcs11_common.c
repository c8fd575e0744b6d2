/* SPDX-License-Identifier: Apache-2.0 */
/* pkcs11 provider plumbing: configuration, PIN, error mapping. */
#include <stdlib.h>
#include <string.h>

#include "kc.h"
#include "pkcs11_int.h"

hsm_err
p11_hsm_err(ck_rv_t rv)
{
    switch (p11_rv_class(rv)) {
    case P11_C_OK:
        return HSM_OK;
    case P11_C_AUTH:
        return HSM_EAUTH;
    case P11_C_NOT_FOUND:
        return HSM_ENOTFOUND;
    case P11_C_EXISTS:
        return HSM_EEXIST;
    case P11_C_UNSUPPORTED:
        return HSM_EUNSUPPORTED;
    case P11_C_INVALID:
        return HSM_EINVAL;
    case P11_C_BAD_SIG:
        return HSM_ECRYPTO;
    case P11_C_DECRYPT:
        return HSM_ECORRUPT;
    case P11_C_CONFIG:
        return HSM_ECONFIG;
    case P11_C_NOMEM:
        return HSM_ENOMEM;
    case P11_C_SESSION: /* still failing after one fresh session */
    case P11_C_DEVICE:
    default:
        return HSM_EIO;
    }
}

hsm_err
p11_report(hsm_diag *diag, ck_rv_t rv, const p11_diag *d)
{
    if (rv != CKR_OK)
        hsm_diag_set(diag, "%s", d->msg[0] ? d->msg : p11_rv_name(rv));
    return p11_hsm_err(rv);
}

hsm_alg
p11_alg_of_type(ck_key_type_t type)
{
    switch (type) {
    case CKK_EC:
        return HSM_ALG_ECDSA_P256_SHA256;
    case CKK_EC_EDWARDS:
        return HSM_ALG_ED25519;
    case CKK_RSA:
        return HSM_ALG_RSA_PSS_SHA256;
    default:
        return HSM_ALG_NONE;
    }
}

/* The PIN provider's own configuration: the "pin.<k>" entries as <k>.
 * Nothing else is passed on, so that e.g. the ZapDB password file's "path"
 * can never be mistaken for the PIN file. */
static hsm_err
pin_config(const hsm_config *cfg, hsm_config **out)
{
    size_t n = hsm_config_count(cfg);
    const char *k, *v;
    hsm_err rc;

    if ((rc = hsm_config_new(out)) != HSM_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (hsm_config_entry(cfg, i, &k, &v) != HSM_OK)
            continue;
        if (strncmp(k, "pin.", 4) == 0 && k[4] &&
            (rc = hsm_config_set(*out, k + 4, v)) != HSM_OK) {
            hsm_config_free(*out);
            *out = NULL;
            return rc;
        }
    }
    return HSM_OK;
}

static hsm_err
get_pin(const hsm_config *cfg, hsm_secret **pin, hsm_diag *diag)
{
    const char *prov = hsm_config_get(cfg, "pin_provider");
    const char *kid = hsm_config_get(cfg, "pin_key_id");
    hsm_password_provider *pp = NULL;
    hsm_config *pc = NULL;
    char norm[32];
    char detail[HSM_DETAIL_MAX];
    hsm_err rc;

    if (!prov || !*prov) {
        hsm_diag_set(diag, "pkcs11: pin_provider is required (e.g. \"file\" "
                           "with pin_key_id = the PIN file)");
        return HSM_ECONFIG;
    }
    if (hsm_name_normalise(prov, norm, sizeof norm) == HSM_OK &&
        strcmp(norm, "pkcs11") == 0) {
        hsm_diag_set(diag, "pkcs11: pin_provider cannot be pkcs11 itself");
        return HSM_ECONFIG;
    }
    if ((rc = pin_config(cfg, &pc)) != HSM_OK)
        return rc;
    rc = hsm_password_provider_new_ex(prov, pc, &pp, detail, sizeof detail);
    if (rc != HSM_OK) {
        hsm_diag_set(diag, "pkcs11: pin_provider: %s", detail);
        goto out;
    }
    rc = hsm_password_get(pp, kid, pin);
    if (rc != HSM_OK)
        hsm_diag_set(diag, "pkcs11: PIN from %s: %s", norm,
                     hsm_password_provider_last_error(pp)[0]
                         ? hsm_password_provider_last_error(pp)
                         : hsm_strerror(rc));
out:
    hsm_password_provider_free(pp);
    hsm_config_free(pc);
    return rc;
}

hsm_err
p11_open_from_config(const hsm_config *cfg, p11_token **tok, hsm_diag *diag)
{
    const char *module = hsm_config_get(cfg, "module");
    const char *serial = hsm_config_get(cfg, "token_serial");
    p11_token_sel sel = {hsm_config_get(cfg, "token_label"), NULL};
    p11_module *m = NULL;
    hsm_secret *pin = NULL;
    p11_diag d = {""};
    ck_rv_t rv;
    hsm_err rc;

    *tok = NULL;
    if (!serial)
        serial = getenv("PKCS11_TOKEN_SERIAL");
    sel.serial = serial;
    if (!module || !*module) {
        hsm_diag_set(diag, "pkcs11: module is required (config module or "
                           "PKCS11_MODULE)");
        return HSM_ECONFIG;
    }
    if ((!sel.label || !*sel.label) && (!serial || !*serial)) {
        hsm_diag_set(diag, "pkcs11: token_label or token_serial is required "
                           "(a slot number alone is not accepted)");
        return HSM_ECONFIG;
    }
    if ((rv = p11_module_acquire(module, &m, &d)) != CKR_OK)
        return p11_report(diag, rv, &d);
    if ((rc = get_pin(cfg, &pin, diag)) != HSM_OK)
        goto out;
    rv = p11_token_open(m, &sel, pin->data, pin->len, tok, &d);
    rc = p11_report(diag, rv, &d);
out:
    hsm_secret_free(pin);
    p11_module_release(m);
    return rc;
}
