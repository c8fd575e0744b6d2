/* SPDX-License-Identifier: Apache-2.0 */
/* Azure Key Vault over raw HTTPS (REST API 7.4: unwrapkey, sign, verify,
 * get key) with a managed-identity token (App Service / Container Apps
 * IDENTITY_ENDPOINT, else the instance metadata service). See
 * docs/cloud.md. */
#include "azure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cloud_int.h"
#include "kc.h"

#define PROVIDER        "azure"
#define API             "api-version=7.4"
#define RESOURCE        "https://vault.azure.net"
#define RESOURCE_ENC    "https%%3A%%2F%%2Fvault.azure.net" /* in a format */
#define IMDS_DEFAULT    "http://169.254.169.254"
#define TOKEN_MARGIN    60
#define MAX_PUBKEY_BODY 16384

typedef struct {
    hsm_cloud_net net;
    const hsm_config *cfg;
    char vault[512]; /* without trailing slash */
    char token_url[1024];
    char *identity_header; /* "X-IDENTITY-HEADER: ..." (secure) or NULL */
    hsm_cloud_token_cache tokens;
} az_ctx;

static hsm_err
az_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    az_ctx *z = calloc(1, sizeof *z);
    const char *vault = hsm_config_get(cfg, "vault_url");
    const char *ie = hsm_cloud_env("IDENTITY_ENDPOINT");
    const char *ih = hsm_cloud_env("IDENTITY_HEADER");
    const char *imds = hsm_cloud_env("AZURE_IMDS_ENDPOINT");
    hsm_http_url u;
    size_t n;
    hsm_err rc;

    if (!z)
        return HSM_ENOMEM;
    if ((rc = hsm_cloud_net_init(cfg, PROVIDER, &z->net, diag)) != HSM_OK)
        goto fail;
    rc = HSM_ECONFIG;
    if (!vault || !*vault) {
        hsm_diag_set(diag, "azure: config: vault_url (AZURE_VAULT_URL) is "
                           "not set");
        goto fail;
    }
    if (kc_strlcpy(z->vault, vault, sizeof z->vault) < 0 ||
        hsm_http_url_parse(z->vault, &u) != HSM_HTTP_OK || u.query[0]) {
        hsm_diag_set(diag, "azure: config: vault_url is not an http(s) URL");
        goto fail;
    }
    while ((n = strlen(z->vault)) > 0 && z->vault[n - 1] == '/')
        z->vault[n - 1] = '\0';
    if (ie && ih) {
        size_t hl = strlen(ih) + 32;

        if (snprintf(z->token_url, sizeof z->token_url,
                     "%s?resource=" RESOURCE_ENC "&api-version=2019-08-01",
                     ie) >= (int)sizeof z->token_url ||
            !(z->identity_header = kc_secure_alloc(hl))) {
            hsm_diag_set(diag, "azure: config: IDENTITY_ENDPOINT too long");
            goto fail;
        }
        snprintf(z->identity_header, hl, "X-IDENTITY-HEADER: %s", ih);
        if (strpbrk(ih, "\r\n")) {
            hsm_diag_set(diag, "azure: config: bad IDENTITY_HEADER");
            goto fail;
        }
    } else if (snprintf(z->token_url, sizeof z->token_url,
                        "%s/metadata/identity/oauth2/token?api-version="
                        "2018-02-01&resource=" RESOURCE_ENC,
                        imds ? imds : IMDS_DEFAULT) >=
               (int)sizeof z->token_url) {
        hsm_diag_set(diag, "azure: config: AZURE_IMDS_ENDPOINT too long");
        goto fail;
    }
    z->cfg = cfg;
    hsm_cloud_token_cache_init(&z->tokens);
    *self = z;
    return HSM_OK;
fail:
    kc_secure_free(z->identity_header);
    free(z);
    return rc;
}

static void
az_destroy(void *self)
{
    az_ctx *z = self;

    if (!z)
        return;
    hsm_cloud_token_cache_destroy(&z->tokens);
    kc_secure_free(z->identity_header);
    free(z);
}

static hsm_err
az_token(az_ctx *z, char **tok, hsm_diag *diag)
{
    const char *hdrs[1] = {z->identity_header ? z->identity_header
                                              : "Metadata: true"};
    hsm_cloud_call c = {
        .provider = PROVIDER,
        .step = "managed identity token",
        .method = "GET",
        .url = z->token_url,
        .headers = hdrs,
        .header_count = 1,
        .metadata = true,
    };
    hsm_http_response r = {0};
    char *t = NULL;
    size_t tl = 0;
    time_t now = time(NULL), exp;
    int cp;
    hsm_err rc;

    if ((*tok = hsm_cloud_token_cache_get(&z->tokens, now, TOKEN_MARGIN)))
        return HSM_OK;
    if ((rc = hsm_cloud_json_call(&z->net, &c, &r, diag)) != HSM_OK)
        return rc;
    cp = hsm_cp_token(r.body, r.body_len, now, &t, &tl, &exp);
    hsm_http_response_free(&r);
    if (cp != CP_OK)
        return hsm_cloud_parse_fail(diag, PROVIDER, "managed identity token",
                                    "access_token", cp);
    hsm_cloud_token_cache_put(&z->tokens, t, tl, exp);
    if (!(*tok = hsm_cloud_token_cache_get(&z->tokens, now, -1)))
        return HSM_ENOMEM;
    return HSM_OK;
}

static bool
name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 127)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* {vault}/keys/{name}[/{version}]{op}?api-version=7.4. `key_id` is
 * "name" or "name/version"; version falls back to config key_version. */
static hsm_err
az_url(az_ctx *z, const char *key_id, const char *op, char *url, size_t cap,
       const char *step, hsm_diag *diag)
{
    char name[128], ver[128] = "";
    const char *cfg_ver = hsm_config_get(z->cfg, "key_version");
    const char *slash;

    if (!key_id || !*key_id)
        key_id = hsm_config_get(z->cfg, "key_name");
    if (!key_id || !*key_id) {
        hsm_diag_set(diag,
                     "azure: %s: no key name (key_name, "
                     "AZURE_KEY_NAME)",
                     step);
        return HSM_ECONFIG;
    }
    slash = strchr(key_id, '/');
    if (slash) {
        if ((size_t)(slash - key_id) >= sizeof name ||
            kc_strlcpy(ver, slash + 1, sizeof ver) < 0)
            goto bad;
        memcpy(name, key_id, (size_t)(slash - key_id));
        name[slash - key_id] = '\0';
    } else {
        if (kc_strlcpy(name, key_id, sizeof name) < 0)
            goto bad;
        if (cfg_ver && kc_strlcpy(ver, cfg_ver, sizeof ver) < 0)
            goto bad;
    }
    if (!name_ok(name) || (ver[0] && !name_ok(ver)))
        goto bad;
    if (snprintf(url, cap, "%s/keys/%s%s%s%s?" API, z->vault, name,
                 ver[0] ? "/" : "", ver, op) >= (int)cap)
        goto bad;
    return HSM_OK;
bad:
    hsm_diag_set(diag, "azure: %s: invalid key name or version", step);
    return HSM_ECONFIG;
}

static hsm_err
az_call(az_ctx *z, const char *url, json_t *req, const char *step,
        hsm_http_response *r, hsm_diag *diag)
{
    char *tok = NULL;
    hsm_cloud_call c = {.provider = PROVIDER, .step = step, .url = url};
    hsm_err rc;

    if ((rc = az_token(z, &tok, diag)) != HSM_OK)
        return rc;
    rc = hsm_cloud_bearer_json_call(&z->net, &c, tok, req, r, diag);
    kc_secure_free(tok);
    return rc;
}

/* ---- password provider: unwrapkey --------------------------------------- */

static hsm_err
az_password_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    return az_create(cfg, self, diag);
}

static hsm_err
az_password_get(void *self, const char *key_id, hsm_secret **out,
                hsm_diag *diag)
{
    az_ctx *z = self;
    const char *ct = NULL;
    char url[1024], *v64 = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    json_t *req = NULL;
    hsm_http_response r = {0};
    hsm_err rc;

    if ((rc = hsm_cloud_encrypted_password(PROVIDER, "unwrapkey", &ct, &blob,
                                           &blob_len, diag)) != HSM_OK)
        return rc;
    if ((rc = az_url(z, key_id, "/unwrapkey", url, sizeof url, "unwrapkey",
                     diag)) != HSM_OK)
        goto out;
    rc = HSM_ENOMEM;
    if (!(v64 = kc_b64_encode(blob, blob_len, KC_B64_URL)) ||
        !(req = json_pack("{s:s, s:s}", "alg", "RSA-OAEP-256", "value", v64)))
        goto out;
    if ((rc = az_call(z, url, req, "unwrapkey", &r, diag)) != HSM_OK)
        goto out;
    rc = hsm_cloud_secret_field(&r, PROVIDER, "unwrapkey", "value", true, out,
                                diag);
out:
    free(blob);
    free(v64);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

/* ---- signer: sign, verify, get key ----------------------------------------
 */

static hsm_err
az_signer_create(const hsm_config *cfg, hsm_store *store, void **self,
                 hsm_diag *diag)
{
    (void)store;
    return az_create(cfg, self, diag);
}

static hsm_alg
az_algorithm(void *self)
{
    (void)self;
    return HSM_ALG_ECDSA_P256_SHA256;
}

static hsm_err
az_sign_digest(void *self, const char *key_id, const uint8_t *digest,
               size_t digest_len, uint8_t **sig, size_t *sig_len,
               hsm_diag *diag)
{
    az_ctx *z = self;
    char url[1024], *d64 = NULL;
    uint8_t *raw = NULL, der[HSM_ECDSA_DER_MAX(32)];
    size_t raw_len = 0, der_len = 0;
    json_t *req = NULL;
    hsm_http_response r = {0};
    int cp;
    hsm_err rc;

    if (digest_len != 32) {
        hsm_diag_set(diag, "azure: sign: digest must be 32 bytes");
        return HSM_EINVAL;
    }
    if ((rc = az_url(z, key_id, "/sign", url, sizeof url, "sign", diag)) !=
        HSM_OK)
        return rc;
    rc = HSM_ENOMEM;
    if (!(d64 = kc_b64_encode(digest, digest_len, KC_B64_URL)) ||
        !(req = json_pack("{s:s, s:s}", "alg", "ES256", "value", d64)))
        goto out;
    if ((rc = az_call(z, url, req, "sign", &r, diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_b64_field(r.body, r.body_len, "value", true, false, 64, &raw,
                          &raw_len);
    if (cp != CP_OK) {
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "sign", "value", cp);
        goto out;
    }
    /* ES256 answers raw r||s (JWS, RFC 7518 section 3.4); we return DER. */
    if (raw_len != 64 || hsm_ecdsa_raw_to_der(raw, raw_len, der, sizeof der,
                                              &der_len) != HSM_OK) {
        hsm_diag_set(diag, "azure: sign: value is not a 64-byte r||s");
        rc = HSM_EMALFORMED;
        goto out;
    }
    rc = HSM_ENOMEM;
    if (!(*sig = malloc(der_len)))
        goto out;
    memcpy(*sig, der, der_len);
    *sig_len = der_len;
    rc = HSM_OK;
out:
    free(raw);
    free(d64);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
az_verify_digest(void *self, const char *key_id, const uint8_t *digest,
                 size_t digest_len, const uint8_t *sig, size_t sig_len,
                 bool *valid, hsm_diag *diag)
{
    az_ctx *z = self;
    char url[1024], *d64 = NULL, *s64 = NULL;
    uint8_t raw[64];
    size_t raw_len = 0;
    json_t *req = NULL;
    hsm_http_response r = {0};
    int cp;
    hsm_err rc;

    *valid = false;
    if (digest_len != 32) {
        hsm_diag_set(diag, "azure: verify: digest must be 32 bytes");
        return HSM_EINVAL;
    }
    /* A signature that is not DER for P-256 cannot be valid. */
    if (hsm_ecdsa_der_to_raw(sig, sig_len, 32, raw, sizeof raw, &raw_len) !=
        HSM_OK)
        return HSM_OK;
    if ((rc = az_url(z, key_id, "/verify", url, sizeof url, "verify", diag)) !=
        HSM_OK)
        return rc;
    rc = HSM_ENOMEM;
    if (!(d64 = kc_b64_encode(digest, digest_len, KC_B64_URL)) ||
        !(s64 = kc_b64_encode(raw, raw_len, KC_B64_URL)) ||
        !(req = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "digest", d64,
                          "value", s64)))
        goto out;
    if ((rc = az_call(z, url, req, "verify", &r, diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_bool_field(r.body, r.body_len, "value", valid);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "verify", "value", cp);
out:
    free(d64);
    free(s64);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
az_public_key(void *self, const char *key_id, uint8_t **der, size_t *der_len,
              hsm_diag *diag)
{
    az_ctx *z = self;
    char url[1024];
    hsm_http_response r = {0};
    int cp;
    hsm_err rc;

    if ((rc = az_url(z, key_id, "", url, sizeof url, "get key", diag)) !=
        HSM_OK)
        return rc;
    if ((rc = az_call(z, url, NULL, "get key", &r, diag)) != HSM_OK)
        return rc;
    cp = hsm_cp_azure_jwk_to_spki(r.body, r.body_len, der, der_len);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "get key", "key", cp);
    hsm_http_response_free(&r);
    return rc;
}

const hsm_signer_ops hsm_azure_signer_ops = {
    .name = "azure",
    .create = az_signer_create,
    .algorithm = az_algorithm,
    .sign = NULL,
    .sign_digest = az_sign_digest,
    .verify = NULL,
    .verify_digest = az_verify_digest,
    .public_key = az_public_key,
    .destroy = az_destroy,
};

const hsm_password_ops hsm_azure_password_ops = {
    .name = "azure",
    .create = az_password_create,
    .get = az_password_get,
    .destroy = az_destroy,
};
