/* SPDX-License-Identifier: Apache-2.0 */
/* hsm_manager: one password provider and one signer from one config. */
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kc.h"

struct hsm_manager {
    hsm_config *cfg; /* our copy; the caller's is never modified */
    hsm_password_provider *pw;
    hsm_signer *signer;
    char *password_key_id;
    char *signer_key_id;
};

/* Manager-only keys, not passed on to the providers. */
static const char *const own_keys[] = {"password_provider", "password_key_id",
                                       "signer", "signer_key_id"};

static bool
is_own_key(const char *k)
{
    for (size_t i = 0; i < sizeof own_keys / sizeof own_keys[0]; i++) {
        if (strcmp(k, own_keys[i]) == 0)
            return true;
    }
    return false;
}

/* Build one provider's config: shared keys, then "<prefix>.<k>" keys
 * override as <k>. */
static hsm_err
provider_config(const hsm_config *cfg, const char *prefix, hsm_config **out)
{
    size_t plen = strlen(prefix);
    const char *k, *v;
    hsm_err rc;

    if ((rc = hsm_config_new(out)) != HSM_OK)
        return rc;
    for (size_t i = 0; i < hsm_config_count(cfg); i++) {
        hsm_config_entry(cfg, i, &k, &v);
        if (is_own_key(k) || strncmp(k, "password.", 9) == 0 ||
            strncmp(k, "signer.", 7) == 0)
            continue;
        if ((rc = hsm_config_set(*out, k, v)) != HSM_OK)
            goto out;
    }
    for (size_t i = 0; i < hsm_config_count(cfg); i++) {
        hsm_config_entry(cfg, i, &k, &v);
        if (strncmp(k, prefix, plen) != 0 || k[plen] != '.' || !k[plen + 1])
            continue;
        if ((rc = hsm_config_set(*out, k + plen + 1, v)) != HSM_OK)
            goto out;
    }
    rc = HSM_OK;
out:
    if (rc != HSM_OK) {
        hsm_config_free(*out);
        *out = NULL;
    }
    return rc;
}

static hsm_err
dup_opt(const char *v, char **out)
{
    *out = NULL;
    if (!v)
        return HSM_OK;
    *out = strdup(v);
    return *out ? HSM_OK : HSM_ENOMEM;
}

hsm_err
hsm_manager_new(const hsm_config *config, hsm_store *store, hsm_manager **out,
                char *detail, size_t detail_cap)
{
    hsm_config *pcfg = NULL, *scfg = NULL;
    hsm_manager *m = NULL;
    const char *kid;
    hsm_err rc = HSM_EINTERNAL;

    if (detail && detail_cap)
        detail[0] = 0;
    if (!out)
        return HSM_EINVAL;
    *out = NULL;
    if (!(m = calloc(1, sizeof *m)))
        return HSM_ENOMEM;
    if ((rc = hsm_config_copy(config, &m->cfg)) != HSM_OK)
        goto out;
    if ((rc = provider_config(m->cfg, "password", &pcfg)) != HSM_OK ||
        (rc = provider_config(m->cfg, "signer", &scfg)) != HSM_OK)
        goto out;
    kid = hsm_config_get_raw(m->cfg, "password_key_id");
    if ((rc = dup_opt(kid, &m->password_key_id)) != HSM_OK)
        goto out;
    kid = hsm_config_get_raw(m->cfg, "signer_key_id");
    if ((rc = dup_opt(kid, &m->signer_key_id)) != HSM_OK)
        goto out;
    rc = hsm_password_provider_new_ex(
        hsm_config_get_raw(m->cfg, "password_provider"), pcfg, &m->pw, detail,
        detail_cap);
    if (rc != HSM_OK)
        goto out;
    rc = hsm_signer_new_ex(hsm_config_get_raw(m->cfg, "signer"), scfg, store,
                           &m->signer, detail, detail_cap);
    if (rc != HSM_OK)
        goto out;
    *out = m;
    m = NULL;
out:
    hsm_config_free(pcfg);
    hsm_config_free(scfg);
    hsm_manager_free(m);
    return rc;
}

void
hsm_manager_free(hsm_manager *m)
{
    if (!m)
        return;
    hsm_signer_free(m->signer);
    hsm_password_provider_free(m->pw);
    hsm_config_free(m->cfg);
    free(m->password_key_id);
    free(m->signer_key_id);
    free(m);
}

hsm_signer *
hsm_manager_signer(hsm_manager *m)
{
    return m ? m->signer : NULL;
}

hsm_password_provider *
hsm_manager_password_provider(hsm_manager *m)
{
    return m ? m->pw : NULL;
}

hsm_err
hsm_manager_get_password(hsm_manager *m, hsm_secret **out)
{
    if (!m)
        return HSM_EINVAL;
    return hsm_password_get(m->pw, m->password_key_id, out);
}

hsm_err
hsm_manager_sign(hsm_manager *m, const uint8_t *msg, size_t msg_len,
                 uint8_t **sig, size_t *sig_len)
{
    if (!m)
        return HSM_EINVAL;
    return hsm_signer_sign(m->signer, m->signer_key_id, msg, msg_len, sig,
                           sig_len);
}

hsm_err
hsm_manager_sign_with_key(hsm_manager *m, const char *key_id,
                          const uint8_t *msg, size_t msg_len, uint8_t **sig,
                          size_t *sig_len)
{
    if (!m || !key_id)
        return HSM_EINVAL;
    return hsm_signer_sign(m->signer, key_id, msg, msg_len, sig, sig_len);
}

hsm_err
hsm_manager_verify(hsm_manager *m, const uint8_t *msg, size_t msg_len,
                   const uint8_t *sig, size_t sig_len, bool *valid)
{
    if (!m)
        return HSM_EINVAL;
    return hsm_signer_verify(m->signer, m->signer_key_id, msg, msg_len, sig,
                             sig_len, valid);
}

hsm_err
hsm_manager_verify_with_key(hsm_manager *m, const char *key_id,
                            const uint8_t *msg, size_t msg_len,
                            const uint8_t *sig, size_t sig_len, bool *valid)
{
    if (!m || !key_id)
        return HSM_EINVAL;
    return hsm_signer_verify(m->signer, key_id, msg, msg_len, sig, sig_len,
                             valid);
}
