/* SPDX-License-Identifier: Apache-2.0 */
/* hsm_config: an ordered key/value list with environment fallbacks
 * (DESIGN.md, "Provider names and configuration"). */
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kc.h"

#define KEY_MAX     64u
#define VALUE_MAX   4096u
#define ENTRIES_MAX 256u

typedef struct {
    char *key;
    char *value;
    size_t value_len;
} cfg_entry;

struct hsm_config {
    cfg_entry *entries;
    size_t count;
    size_t cap;
};

/* Environment fallbacks, tried in order; `def` when none is set. */
static const struct {
    const char *key;
    const char *env[3];
    const char *def;
} fallbacks[] = {
    {"key_id", {"MPC_HSM_KEY_ID", NULL, NULL}, NULL},
    {"region", {"AWS_REGION", "AWS_DEFAULT_REGION", NULL}, "us-east-1"},
    {"endpoint", {"AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL", NULL}, NULL},
    {"project_id", {"GCP_PROJECT_ID", NULL, NULL}, NULL},
    {"location", {"GCP_KMS_LOCATION", NULL, NULL}, "global"},
    {"key_ring", {"GCP_KMS_KEYRING", NULL, NULL}, NULL},
    {"crypto_key", {"GCP_KMS_KEY", NULL, NULL}, NULL},
    {"vault_url", {"AZURE_VAULT_URL", NULL, NULL}, NULL},
    {"key_name", {"AZURE_KEY_NAME", NULL, NULL}, NULL},
    {"key_version", {"AZURE_KEY_VERSION", NULL, NULL}, NULL},
    {"path", {"MPC_PASSWORD_FILE", NULL, NULL}, NULL},
    {"api_addr", {"MPC_HSM_ZYMBIT_API", NULL, NULL}, "http://localhost:6789"},
    {"module", {"PKCS11_MODULE", NULL, NULL}, NULL},
    {"token_label", {"PKCS11_TOKEN_LABEL", NULL, NULL}, NULL},
    {"token_serial", {"PKCS11_TOKEN_SERIAL", NULL, NULL}, NULL},
};

hsm_err
hsm_config_new(hsm_config **out)
{
    if (!out)
        return HSM_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? HSM_OK : HSM_ENOMEM;
}

static void
entry_clear(cfg_entry *e)
{
    free(e->key);
    kc_free_wipe(e->value, e->value_len + 1);
    e->key = NULL;
    e->value = NULL;
    e->value_len = 0;
}

void
hsm_config_free(hsm_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->count; i++)
        entry_clear(&cfg->entries[i]);
    free(cfg->entries);
    free(cfg);
}

static cfg_entry *
find(const hsm_config *cfg, const char *key)
{
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < cfg->count; i++) {
        if (strcmp(cfg->entries[i].key, key) == 0)
            return &cfg->entries[i];
    }
    return NULL;
}

static bool
key_valid(const char *key)
{
    size_t n = key ? strnlen(key, KEY_MAX + 1) : 0;

    if (n == 0 || n > KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c >= 0x7f || c == '=')
            return false;
    }
    return true;
}

hsm_err
hsm_config_set(hsm_config *cfg, const char *key, const char *value)
{
    cfg_entry *e;
    char *v = NULL;
    size_t vlen = 0;

    if (!cfg || !key_valid(key))
        return HSM_EINVAL;
    e = find(cfg, key);
    if (!value) {
        if (e) {
            entry_clear(e);
            memmove(e, e + 1,
                    (size_t)(&cfg->entries[cfg->count] - (e + 1)) * sizeof *e);
            cfg->count--;
        }
        return HSM_OK;
    }
    vlen = strnlen(value, VALUE_MAX + 1);
    if (vlen > VALUE_MAX)
        return HSM_ETOOBIG;
    v = malloc(vlen + 1);
    if (!v)
        return HSM_ENOMEM;
    memcpy(v, value, vlen + 1);
    if (e) {
        kc_free_wipe(e->value, e->value_len + 1);
        e->value = v;
        e->value_len = vlen;
        return HSM_OK;
    }
    if (cfg->count >= ENTRIES_MAX) {
        kc_free_wipe(v, vlen + 1);
        return HSM_ETOOBIG;
    }
    if (cfg->count == cfg->cap) {
        size_t ncap = cfg->cap ? cfg->cap * 2 : 8;
        cfg_entry *ne = realloc(cfg->entries, ncap * sizeof *ne);
        if (!ne) {
            kc_free_wipe(v, vlen + 1);
            return HSM_ENOMEM;
        }
        cfg->entries = ne;
        cfg->cap = ncap;
    }
    e = &cfg->entries[cfg->count];
    e->key = strdup(key);
    if (!e->key) {
        kc_free_wipe(v, vlen + 1);
        return HSM_ENOMEM;
    }
    e->value = v;
    e->value_len = vlen;
    cfg->count++;
    return HSM_OK;
}

hsm_err
hsm_config_set_kv(hsm_config *cfg, const char *kv)
{
    const char *eq;
    char key[KEY_MAX + 1];
    size_t klen;

    if (!cfg || !kv)
        return HSM_EINVAL;
    eq = strchr(kv, '=');
    if (!eq)
        return HSM_EINVAL;
    klen = (size_t)(eq - kv);
    if (klen == 0 || klen > KEY_MAX)
        return HSM_EINVAL;
    memcpy(key, kv, klen);
    key[klen] = 0;
    return hsm_config_set(cfg, key, eq + 1);
}

const char *
hsm_config_get_raw(const hsm_config *cfg, const char *key)
{
    const cfg_entry *e;

    if (!key)
        return NULL;
    e = find(cfg, key);
    return e ? e->value : NULL;
}

const char *
hsm_config_get(const hsm_config *cfg, const char *key)
{
    const char *v = hsm_config_get_raw(cfg, key);

    if (v || !key)
        return v;
    for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++) {
        if (strcmp(fallbacks[i].key, key) != 0)
            continue;
        for (size_t j = 0; j < 3 && fallbacks[i].env[j]; j++) {
            v = getenv(fallbacks[i].env[j]);
            if (v && *v)
                return v;
        }
        return fallbacks[i].def;
    }
    return NULL;
}

size_t
hsm_config_count(const hsm_config *cfg)
{
    return cfg ? cfg->count : 0;
}

hsm_err
hsm_config_entry(const hsm_config *cfg, size_t i, const char **key,
                 const char **value)
{
    if (!cfg || i >= cfg->count || !key || !value)
        return HSM_EINVAL;
    *key = cfg->entries[i].key;
    *value = cfg->entries[i].value;
    return HSM_OK;
}

hsm_err
hsm_config_copy(const hsm_config *cfg, hsm_config **out)
{
    hsm_config *c = NULL;
    hsm_err rc;

    if (!out)
        return HSM_EINVAL;
    *out = NULL;
    rc = hsm_config_new(&c);
    if (rc != HSM_OK)
        return rc;
    for (size_t i = 0; cfg && i < cfg->count; i++) {
        rc = hsm_config_set(c, cfg->entries[i].key, cfg->entries[i].value);
        if (rc != HSM_OK) {
            hsm_config_free(c);
            return rc;
        }
    }
    *out = c;
    return HSM_OK;
}
