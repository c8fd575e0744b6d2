/* SPDX-License-Identifier: Apache-2.0 */
/* Where the ZapDB password comes from: a libhsm password provider (aws,
 * gcp, azure, pkcs11, file, env). The password lives only in locked
 * memory and is wiped once the store is open. */
#include "password.h"

#include "kc.h"

#include <stdio.h>
#include <string.h>

#ifdef KMSD_HAVE_HSM
#include <hsm/hsm.h>

kms_err
kmsd_password_get(const kms_config *cfg, uint8_t **pw, size_t *pw_len,
                  char *detail, size_t detail_cap)
{
    hsm_config *hc = NULL;
    hsm_password_provider *p = NULL;
    hsm_secret *sec = NULL;
    hsm_err e;
    kms_err rc = KMS_EINVAL;

    *pw = NULL;
    *pw_len = 0;
    if (hsm_config_new(&hc) != HSM_OK)
        return KMS_ENOMEM;
    for (size_t i = 0; i < cfg->password_config_count; i++) {
        if (hsm_config_set_kv(hc, cfg->password_config[i]) != HSM_OK) {
            snprintf(detail, detail_cap,
                     "--password-config entry %zu is not KEY=VALUE", i + 1);
            goto out;
        }
    }
    e = hsm_password_provider_new_ex(cfg->password_provider, hc, &p, detail,
                                     detail_cap);
    if (e != HSM_OK) {
        if (!detail[0])
            snprintf(detail, detail_cap, "password provider: %s",
                     hsm_strerror(e));
        goto out;
    }
    e = hsm_password_get(p, cfg->password_key_id, &sec);
    if (e != HSM_OK) {
        snprintf(detail, detail_cap, "password provider %s: %s (%s)",
                 hsm_password_provider_name(p), hsm_strerror(e),
                 hsm_password_provider_last_error(p));
        goto out;
    }
    if (!(*pw = kc_secure_alloc(sec->len + 1))) {
        rc = KMS_ENOMEM;
        goto out;
    }
    memcpy(*pw, sec->data, sec->len);
    (*pw)[sec->len] = 0;
    *pw_len = sec->len;
    rc = KMS_OK;
out:
    hsm_secret_free(sec);
    hsm_password_provider_free(p);
    hsm_config_free(hc);
    return rc;
}

#else

kms_err
kmsd_password_get(const kms_config *cfg, uint8_t **pw, size_t *pw_len,
                  char *detail, size_t detail_cap)
{
    (void)cfg;
    *pw = NULL;
    *pw_len = 0;
    snprintf(detail, detail_cap, "this kmsd was built without libhsm");
    return KMS_EINVAL;
}

#endif
