/* SPDX-License-Identifier: Apache-2.0 */
/* Threshold manager: an hsm_manager (password provider for the vault, HSM
 * signer for attestations), a vault over the store, registered schemes. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hsm/threshold.h>

#include "hsm_int.h"
#include "kc.h"
#include "vault_int.h"

#define MAX_SCHEMES 16

struct hsm_threshold_manager {
    hsm_manager *mgr;
    hsm_vault *vault;
    char *att_key_id;   /* signer_key_id, or NULL: the signer's key_id */
    pthread_mutex_t mu; /* guards schemes */
    const hsm_threshold_scheme *schemes[MAX_SCHEMES];
    size_t nschemes;
    hsm_diag diag;
};

hsm_err
hsm_threshold_manager_new(const hsm_config *config, hsm_store *store,
                          hsm_threshold_manager **out, char *detail,
                          size_t detail_cap)
{
    hsm_threshold_manager *m;
    const char *ttl_s, *kid;
    uint64_t ttl = 0;
    hsm_err rc;

    if (detail && detail_cap)
        detail[0] = 0;
    if (!store || !out)
        return HSM_EINVAL;
    *out = NULL;
    ttl_s = hsm_config_get_raw(config, "vault_password_ttl");
    if (ttl_s && (kc_parse_u64(ttl_s, &ttl) != 0 || ttl > UINT32_MAX)) {
        if (detail && detail_cap)
            kc_strlcpy(detail, "vault_password_ttl must be a number of seconds",
                       detail_cap);
        return HSM_ECONFIG;
    }
    if (!(m = calloc(1, sizeof *m)))
        return HSM_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    hsm_diag_init(&m->diag);
    rc = hsm_manager_new(config, store, &m->mgr, detail, detail_cap);
    if (rc != HSM_OK)
        goto out;
    kid = hsm_config_get_raw(config, "signer_key_id");
    if (kid && !(m->att_key_id = strdup(kid))) {
        rc = HSM_ENOMEM;
        goto out;
    }
    rc = hsm_vault_new(store, hsm_manager_password_provider(m->mgr),
                       hsm_config_get_raw(config, "password_key_id"),
                       (unsigned)ttl, &m->vault);
    if (rc != HSM_OK)
        goto out;
    *out = m;
    m = NULL;
out:
    hsm_threshold_manager_free(m);
    return rc;
}

void
hsm_threshold_manager_free(hsm_threshold_manager *m)
{
    if (!m)
        return;
    hsm_vault_free(m->vault);
    hsm_manager_free(m->mgr);
    free(m->att_key_id);
    pthread_mutex_destroy(&m->mu);
    hsm_diag_destroy(&m->diag);
    free(m);
}

hsm_err
hsm_threshold_manager_register(hsm_threshold_manager *m,
                               const hsm_threshold_scheme *scheme)
{
    hsm_err rc = HSM_OK;

    if (!m || !scheme || !scheme->name || !scheme->parse_key_share ||
        !scheme->new_signer || scheme->scheme_id == 0)
        return HSM_EINVAL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nschemes; i++) {
        if (m->schemes[i]->scheme_id == scheme->scheme_id ||
            strcasecmp(m->schemes[i]->name, scheme->name) == 0)
            rc = HSM_EEXIST;
    }
    if (rc == HSM_OK && m->nschemes == MAX_SCHEMES)
        rc = HSM_ETOOBIG;
    if (rc == HSM_OK)
        m->schemes[m->nschemes++] = scheme;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static const hsm_threshold_scheme *
find_scheme(hsm_threshold_manager *m, const char *name, uint32_t id)
{
    const hsm_threshold_scheme *s = NULL;

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nschemes && !s; i++) {
        if ((name && strcasecmp(m->schemes[i]->name, name) == 0) ||
            (!name && m->schemes[i]->scheme_id == id))
            s = m->schemes[i];
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

hsm_err
hsm_threshold_manager_import(hsm_threshold_manager *m, const char *key_id,
                             const char *scheme_name, const uint8_t *share,
                             size_t share_len, bool overwrite)
{
    const hsm_threshold_scheme *s;
    hsm_share_meta meta = {0};
    hsm_err rc;

    if (!m || !scheme_name || !share || share_len == 0)
        return HSM_EINVAL;
    if (!(s = find_scheme(m, scheme_name, 0))) {
        hsm_diag_set(&m->diag, "threshold scheme '%.40s' is not registered",
                     scheme_name);
        return HSM_EUNKNOWN;
    }
    rc = s->parse_key_share(share, share_len, &meta);
    if (rc != HSM_OK) {
        hsm_diag_set(&m->diag, "not a valid %s key share", s->name);
        goto out;
    }
    meta.scheme = s->scheme_id;
    rc = hsm_vault_store(m->vault, key_id, share, share_len, &meta, overwrite);
    if (rc != HSM_OK)
        hsm_diag_set(&m->diag, "%s", hsm_vault_last_error(m->vault));
out:
    hsm_share_meta_clear(&meta);
    return rc;
}

hsm_err
hsm_threshold_manager_signer(hsm_threshold_manager *m, const char *key_id,
                             hsm_attesting_signer **out)
{
    const hsm_threshold_scheme *s;
    hsm_threshold_signer *ts = NULL;
    hsm_secret *share = NULL;
    hsm_share_meta meta = {0};
    hsm_err rc;

    if (!m || !out)
        return HSM_EINVAL;
    *out = NULL;
    rc = hsm_vault_load(m->vault, key_id, &share, &meta);
    if (rc != HSM_OK) {
        hsm_diag_set(&m->diag, "%s", hsm_vault_last_error(m->vault));
        return rc;
    }
    if (!(s = find_scheme(m, NULL, meta.scheme))) {
        hsm_diag_set(&m->diag, "threshold scheme %s (%u) is not registered",
                     hsm_scheme_name(meta.scheme), (unsigned)meta.scheme);
        rc = HSM_EUNKNOWN;
        goto out;
    }
    rc = s->new_signer(share->data, share->len, &meta, &ts);
    if (rc != HSM_OK)
        goto out;
    rc = hsm_attesting_signer_new(ts, hsm_manager_signer(m->mgr), m->att_key_id,
                                  out);
out:
    hsm_secret_free(share);
    hsm_share_meta_clear(&meta);
    return rc;
}

hsm_err
hsm_threshold_manager_verify_share(hsm_threshold_manager *m,
                                   const uint8_t *wire, size_t wire_len,
                                   bool *valid)
{
    if (!m)
        return HSM_EINVAL;
    return hsm_attested_share_verify(hsm_manager_signer(m->mgr), m->att_key_id,
                                     wire, wire_len, valid);
}

hsm_err
hsm_threshold_manager_delete(hsm_threshold_manager *m, const char *key_id)
{
    if (!m)
        return HSM_EINVAL;
    return hsm_vault_delete(m->vault, key_id);
}

hsm_vault *
hsm_threshold_manager_vault(hsm_threshold_manager *m)
{
    return m ? m->vault : NULL;
}

hsm_manager *
hsm_threshold_manager_hsm(hsm_threshold_manager *m)
{
    return m ? m->mgr : NULL;
}

const char *
hsm_threshold_manager_last_error(const hsm_threshold_manager *m)
{
    return m ? hsm_diag_snapshot(&m->diag) : "";
}
