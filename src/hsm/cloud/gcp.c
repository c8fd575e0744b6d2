/* SPDX-License-Identifier: Apache-2.0 */
/* GCP Cloud KMS over raw HTTPS (REST v1: :decrypt, :asymmetricSign,
 * /publicKey) with an access token from the GCE metadata server. See
 * docs/cloud.md. */
#include "gcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cloud_int.h"
#include "kc.h"

#define PROVIDER         "gcp"
#define KMS_DEFAULT      "https://cloudkms.googleapis.com"
#define METADATA_DEFAULT "metadata.google.internal"
#define TOKEN_PATH       "/computeMetadata/v1/instance/service-accounts/default/token"
#define TOKEN_MARGIN     60
#define MAX_SIG          1024
#define MAX_RESOURCE     1024

typedef struct {
    hsm_cloud_net net;
    const hsm_config *cfg; /* the instance's own copy (valid until destroy) */
    char kms[512];
    char token_url[512];
    hsm_cloud_token_cache tokens;
} gcp_ctx;

static hsm_err
gcp_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    gcp_ctx *g = calloc(1, sizeof *g);
    const char *kms = hsm_cloud_env("GCP_KMS_ENDPOINT");
    const char *md = hsm_cloud_env("GCE_METADATA_HOST");
    hsm_http_url u;
    hsm_err rc;

    if (!g)
        return HSM_ENOMEM;
    if ((rc = hsm_cloud_net_init(cfg, PROVIDER, &g->net, diag)) != HSM_OK)
        goto fail;
    rc = HSM_ECONFIG;
    if (kc_strlcpy(g->kms, kms ? kms : KMS_DEFAULT, sizeof g->kms) < 0 ||
        hsm_http_url_parse(g->kms, &u) != HSM_HTTP_OK) {
        hsm_diag_set(diag, "gcp: config: GCP_KMS_ENDPOINT is not a URL");
        goto fail;
    }
    if (g->kms[strlen(g->kms) - 1] == '/')
        g->kms[strlen(g->kms) - 1] = '\0';
    /* GCE_METADATA_HOST is "host[:port]", as in Google's libraries. */
    if (snprintf(g->token_url, sizeof g->token_url, "http://%s" TOKEN_PATH,
                 md ? md : METADATA_DEFAULT) >= (int)sizeof g->token_url ||
        hsm_http_url_parse(g->token_url, &u) != HSM_HTTP_OK ||
        strcmp(u.path, TOKEN_PATH) != 0) {
        hsm_diag_set(diag, "gcp: config: GCE_METADATA_HOST is not a host");
        goto fail;
    }
    g->cfg = cfg;
    hsm_cloud_token_cache_init(&g->tokens);
    *self = g;
    return HSM_OK;
fail:
    free(g);
    return rc;
}

static void
gcp_destroy(void *self)
{
    gcp_ctx *g = self;

    if (!g)
        return;
    hsm_cloud_token_cache_destroy(&g->tokens);
    free(g);
}

/* Access token from the metadata server, cached until a minute before it
 * expires. Returns a secure copy. */
static hsm_err
gcp_token(gcp_ctx *g, char **tok, hsm_diag *diag)
{
    static const char *const hdrs[] = {"Metadata-Flavor: Google"};
    hsm_cloud_call c = {
        .provider = PROVIDER,
        .step = "metadata token",
        .method = "GET",
        .url = g->token_url,
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

    if ((*tok = hsm_cloud_token_cache_get(&g->tokens, now, TOKEN_MARGIN)))
        return HSM_OK;
    if ((rc = hsm_cloud_json_call(&g->net, &c, &r, diag)) != HSM_OK)
        return rc;
    cp = hsm_cp_token(r.body, r.body_len, now, &t, &tl, &exp);
    hsm_http_response_free(&r);
    if (cp != CP_OK)
        return hsm_cloud_parse_fail(diag, PROVIDER, "metadata token",
                                    "access_token", cp);
    hsm_cloud_token_cache_put(&g->tokens, t, tl, exp);
    if (!(*tok = hsm_cloud_token_cache_get(&g->tokens, now, -1)))
        return HSM_ENOMEM;
    return HSM_OK;
}

/* ---- resource names ------------------------------------------------------ */

static bool
id_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V].
 * Returns the number of segment pairs (4 or 5), or -1. */
static int
resource_pairs(const char *r)
{
    static const char *const kinds[] = {"projects", "locations", "keyRings",
                                        "cryptoKeys", "cryptoKeyVersions"};
    const char *s = r;
    int pairs = 0;

    while (*s && pairs < 5) {
        size_t kl = strlen(kinds[pairs]);
        const char *e;

        if (strncmp(s, kinds[pairs], kl) != 0 || s[kl] != '/')
            return -1;
        s += kl + 1;
        e = strchr(s, '/');
        if (!id_ok(s, e ? (size_t)(e - s) : strlen(s)))
            return -1;
        pairs++;
        if (!e)
            break;
        s = e + 1;
        if (!*s)
            return -1;
    }
    return (pairs == 4 || pairs == 5) && !strchr(s, '/') ? pairs : -1;
}

/* Build the resource for `key_id` (a full name, or a crypto key name with
 * the other parts from the configuration). `version`: append the key
 * version when the name has none (asymmetricSign); else a version is an
 * error (decrypt takes a cryptoKey). */
static hsm_err
gcp_resource(gcp_ctx *g, const char *key_id, bool version, char *out,
             size_t cap, const char *step, hsm_diag *diag)
{
    const char *proj = hsm_config_get(g->cfg, "project_id");
    const char *loc = hsm_config_get(g->cfg, "location");
    const char *ring = hsm_config_get(g->cfg, "key_ring");
    const char *ver = hsm_config_get_raw(g->cfg, "key_version");
    int pairs;

    if (!key_id || !*key_id)
        key_id = hsm_config_get(g->cfg, "crypto_key");
    if (!key_id || !*key_id)
        goto missing;
    if (strncmp(key_id, "projects/", 9) == 0) {
        if (kc_strlcpy(out, key_id, cap) < 0)
            goto bad;
    } else {
        if (!proj || !loc || !ring)
            goto missing;
        if (snprintf(out, cap,
                     "projects/%s/locations/%s/keyRings/%s/"
                     "cryptoKeys/%s",
                     proj, loc, ring, key_id) >= (int)cap)
            goto bad;
    }
    if ((pairs = resource_pairs(out)) < 0)
        goto bad;
    if (version && pairs == 4) {
        size_t n = strlen(out);

        if (!ver || !*ver)
            ver = "1";
        if (!id_ok(ver, strlen(ver)) ||
            snprintf(out + n, cap - n, "/cryptoKeyVersions/%s", ver) >=
                (int)(cap - n))
            goto bad;
    } else if (!version && pairs == 5) {
        hsm_diag_set(diag, "gcp: %s: needs a cryptoKey, not a version", step);
        return HSM_ECONFIG;
    }
    return HSM_OK;
missing:
    hsm_diag_set(diag,
                 "gcp: %s: no key: set a full resource name or "
                 "project_id, location, key_ring and crypto_key",
                 step);
    return HSM_ECONFIG;
bad:
    hsm_diag_set(diag, "gcp: %s: invalid key resource name", step);
    return HSM_ECONFIG;
}

/* One authenticated call to Cloud KMS: POST {kms}/v1/{resource}{suffix}
 * with `req` (or GET when req is NULL). */
static hsm_err
gcp_call(gcp_ctx *g, const char *resource, const char *suffix, json_t *req,
         const char *step, hsm_http_response *r, hsm_diag *diag)
{
    char url[2048], *tok = NULL;
    hsm_cloud_call c = {.provider = PROVIDER, .step = step, .url = url};
    hsm_err rc;

    if (snprintf(url, sizeof url, "%s/v1/%s%s", g->kms, resource, suffix) >=
        (int)sizeof url) {
        hsm_diag_set(diag, "gcp: %s: URL too long", step);
        return HSM_ECONFIG;
    }
    if ((rc = gcp_token(g, &tok, diag)) != HSM_OK)
        return rc;
    rc = hsm_cloud_bearer_json_call(&g->net, &c, tok, req, r, diag);
    kc_secure_free(tok);
    return rc;
}

/* ---- password provider: decrypt ----------------------------------------- */

static hsm_err
gcp_password_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    return gcp_create(cfg, self, diag);
}

static hsm_err
gcp_password_get(void *self, const char *key_id, hsm_secret **out,
                 hsm_diag *diag)
{
    gcp_ctx *g = self;
    const char *ct = NULL;
    char res[MAX_RESOURCE];
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    json_t *req = NULL;
    hsm_http_response r = {0};
    hsm_err rc;

    if ((rc = hsm_cloud_encrypted_password(PROVIDER, "decrypt", &ct, &blob,
                                           &blob_len, diag)) != HSM_OK)
        return rc;
    free(blob); /* Cloud KMS takes the base64 text itself */
    if ((rc = gcp_resource(g, key_id, false, res, sizeof res, "decrypt",
                           diag)) != HSM_OK)
        return rc;
    if (!(req = json_pack("{s:s}", "ciphertext", ct)))
        return HSM_ENOMEM;
    if ((rc = gcp_call(g, res, ":decrypt", req, "decrypt", &r, diag)) != HSM_OK)
        goto out;
    rc = hsm_cloud_secret_field(&r, PROVIDER, "decrypt", "plaintext", false,
                                out, diag);
out:
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

/* ---- signer: asymmetricSign, getPublicKey ---------------------------------
 */

static hsm_err
gcp_signer_create(const hsm_config *cfg, hsm_store *store, void **self,
                  hsm_diag *diag)
{
    (void)store;
    return gcp_create(cfg, self, diag);
}

static hsm_alg
gcp_algorithm(void *self)
{
    (void)self;
    return HSM_ALG_ECDSA_P256_SHA256;
}

static hsm_err
gcp_sign_digest(void *self, const char *key_id, const uint8_t *digest,
                size_t digest_len, uint8_t **sig, size_t *sig_len,
                hsm_diag *diag)
{
    gcp_ctx *g = self;
    char res[MAX_RESOURCE], *d64 = NULL;
    json_t *req = NULL;
    hsm_http_response r = {0};
    int cp;
    hsm_err rc;

    if (digest_len != 32) {
        hsm_diag_set(diag, "gcp: asymmetricSign: digest must be 32 bytes");
        return HSM_EINVAL;
    }
    if ((rc = gcp_resource(g, key_id, true, res, sizeof res, "asymmetricSign",
                           diag)) != HSM_OK)
        return rc;
    rc = HSM_ENOMEM;
    if (!(d64 = kc_b64_encode(digest, digest_len, KC_B64_STD)) ||
        !(req = json_pack("{s:{s:s}}", "digest", "sha256", d64)))
        goto out;
    if ((rc = gcp_call(g, res, ":asymmetricSign", req, "asymmetricSign", &r,
                       diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_b64_field(r.body, r.body_len, "signature", false, false,
                          MAX_SIG, sig, sig_len);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "asymmetricSign", "signature",
                                  cp);
out:
    free(d64);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
gcp_public_key(void *self, const char *key_id, uint8_t **der, size_t *der_len,
               hsm_diag *diag)
{
    gcp_ctx *g = self;
    char res[MAX_RESOURCE];
    hsm_http_response r = {0};
    int cp;
    hsm_err rc;

    if ((rc = gcp_resource(g, key_id, true, res, sizeof res, "getPublicKey",
                           diag)) != HSM_OK)
        return rc;
    if ((rc = gcp_call(g, res, "/publicKey", NULL, "getPublicKey", &r, diag)) !=
        HSM_OK)
        return rc;
    cp = hsm_cp_pem_field_to_spki(r.body, r.body_len, "pem", der, der_len);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "getPublicKey", "pem", cp);
    hsm_http_response_free(&r);
    return rc;
}

/* No verify op: the core verifies locally against getPublicKey, as Cloud
 * KMS itself has no verify method for asymmetric keys. */
const hsm_signer_ops hsm_gcp_signer_ops = {
    .name = "gcp",
    .create = gcp_signer_create,
    .algorithm = gcp_algorithm,
    .sign = NULL,
    .sign_digest = gcp_sign_digest,
    .verify = NULL,
    .verify_digest = NULL,
    .public_key = gcp_public_key,
    .destroy = gcp_destroy,
};

const hsm_password_ops hsm_gcp_password_ops = {
    .name = "gcp",
    .create = gcp_password_create,
    .get = gcp_password_get,
    .destroy = gcp_destroy,
};
