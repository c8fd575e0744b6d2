/* SPDX-License-Identifier: Apache-2.0 */
/* Zymbit signer: the JSON API of the local Zymbit agent (default
 * http://localhost:6789): POST /sign {"slot", "digest"} -> {"signature"},
 * POST /verify {"slot", "digest", "signature"} -> {"valid"}. See
 * docs/cloud.md. */
#include "zymbit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cloud_int.h"
#include "kc.h"

#define PROVIDER "zymbit"
#define MAX_SIG  256

typedef struct {
    hsm_cloud_net net;
    char api[512]; /* without trailing slash */
} zy_ctx;

static hsm_err
zy_create(const hsm_config *cfg, hsm_store *store, void **self, hsm_diag *diag)
{
    zy_ctx *z = calloc(1, sizeof *z);
    const char *api = hsm_config_get(cfg, "api_addr");
    hsm_http_url u;
    size_t n;
    hsm_err rc;

    (void)store;
    if (!z)
        return HSM_ENOMEM;
    if ((rc = hsm_cloud_net_init(cfg, PROVIDER, &z->net, diag)) != HSM_OK)
        goto fail;
    rc = HSM_ECONFIG;
    if (!api || !*api)
        api = "http://localhost:6789";
    if (kc_strlcpy(z->api, api, sizeof z->api) < 0 ||
        hsm_http_url_parse(z->api, &u) != HSM_HTTP_OK || u.query[0]) {
        hsm_diag_set(diag, "zymbit: config: api_addr is not an http(s) URL");
        goto fail;
    }
    if (!u.https && !u.loopback) {
        hsm_diag_set(diag, "zymbit: config: plain http:// is only allowed to "
                           "a loopback api_addr; use https://");
        goto fail;
    }
    while ((n = strlen(z->api)) > 0 && z->api[n - 1] == '/')
        z->api[n - 1] = '\0';
    *self = z;
    return HSM_OK;
fail:
    free(z);
    return rc;
}

static void
zy_destroy(void *self)
{
    free(self);
}

static hsm_alg
zy_algorithm(void *self)
{
    (void)self;
    return HSM_ALG_ECDSA_P256_SHA256;
}

static hsm_err
zy_call(zy_ctx *z, const char *op, json_t *req, hsm_http_response *r,
        hsm_diag *diag)
{
    static const char *const hdrs[] = {"Content-Type: application/json"};
    char url[600];
    size_t body_len = 0;
    char *body = hsm_cloud_json_body(req, &body_len);
    hsm_cloud_call c = {
        .provider = PROVIDER,
        .step = op,
        .method = "POST",
        .url = url,
        .headers = hdrs,
        .header_count = 1,
        .body = (const uint8_t *)body,
        .body_len = body_len,
    };
    hsm_err rc;

    if (!body)
        return HSM_ENOMEM;
    snprintf(url, sizeof url, "%s/%s", z->api, op);
    rc = hsm_cloud_json_call(&z->net, &c, r, diag);
    free(body);
    return rc;
}

static json_t *
zy_request(const char *key_id, const uint8_t *digest)
{
    char *d64 = kc_b64_encode(digest, 32, KC_B64_STD);
    json_t *j = NULL;

    if (d64)
        j = json_pack("{s:s, s:s}", "slot", key_id, "digest", d64);
    free(d64);
    return j;
}

static hsm_err
zy_sign_digest(void *self, const char *key_id, const uint8_t *digest,
               size_t digest_len, uint8_t **sig, size_t *sig_len,
               hsm_diag *diag)
{
    json_t *req;
    hsm_http_response r = {0};
    uint8_t *s = NULL, der[HSM_ECDSA_DER_MAX(32)], raw[64];
    size_t sl = 0, der_len = 0, raw_len = 0;
    int cp;
    hsm_err rc;

    if (digest_len != 32) {
        hsm_diag_set(diag, "zymbit: sign: digest must be 32 bytes");
        return HSM_EINVAL;
    }
    if (!(req = zy_request(key_id, digest)))
        return HSM_ENOMEM;
    if ((rc = zy_call(self, "sign", req, &r, diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_b64_field(r.body, r.body_len, "signature", false, false,
                          MAX_SIG, &s, &sl);
    if (cp != CP_OK) {
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "sign", "signature", cp);
        goto out;
    }
    /* The agent may answer raw r||s (64 bytes) or DER; we return DER. */
    rc = HSM_EMALFORMED;
    if (sl == 64) {
        if (hsm_ecdsa_raw_to_der(s, sl, der, sizeof der, &der_len) != HSM_OK)
            goto bad;
        free(s);
        if (!(s = malloc(der_len))) {
            rc = HSM_ENOMEM;
            goto out;
        }
        memcpy(s, der, der_len);
        sl = der_len;
    } else if (hsm_ecdsa_der_to_raw(s, sl, 32, raw, sizeof raw, &raw_len) !=
               HSM_OK) {
        goto bad;
    }
    *sig = s;
    *sig_len = sl;
    s = NULL;
    rc = HSM_OK;
    goto out;
bad:
    hsm_diag_set(diag, "zymbit: sign: signature is neither r||s nor DER");
out:
    free(s);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
zy_verify_digest(void *self, const char *key_id, const uint8_t *digest,
                 size_t digest_len, const uint8_t *sig, size_t sig_len,
                 bool *valid, hsm_diag *diag)
{
    json_t *req;
    hsm_http_response r = {0};
    char *s64 = NULL;
    int cp;
    hsm_err rc = HSM_ENOMEM;

    *valid = false;
    if (digest_len != 32) {
        hsm_diag_set(diag, "zymbit: verify: digest must be 32 bytes");
        return HSM_EINVAL;
    }
    if (sig_len == 0 || sig_len > MAX_SIG)
        return HSM_OK;
    if (!(req = zy_request(key_id, digest)) ||
        !(s64 = kc_b64_encode(sig, sig_len, KC_B64_STD)) ||
        json_object_set_new(req, "signature", json_string(s64)) != 0)
        goto out;
    if ((rc = zy_call(self, "verify", req, &r, diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_bool_field(r.body, r.body_len, "valid", valid);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "verify", "valid", cp);
out:
    free(s64);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
zy_public_key(void *self, const char *key_id, uint8_t **der, size_t *der_len,
              hsm_diag *diag)
{
    (void)self, (void)key_id, (void)der, (void)der_len;
    hsm_diag_set(diag, "zymbit: the agent API has no public key export");
    return HSM_EUNSUPPORTED;
}

const hsm_signer_ops hsm_zymbit_signer_ops = {
    .name = "zymbit",
    .create = zy_create,
    .algorithm = zy_algorithm,
    .sign = NULL,
    .sign_digest = zy_sign_digest,
    .verify = NULL,
    .verify_digest = zy_verify_digest,
    .public_key = zy_public_key,
    .destroy = zy_destroy,
};
