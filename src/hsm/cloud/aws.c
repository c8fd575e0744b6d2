/* SPDX-License-Identifier: Apache-2.0 */
/* AWS KMS over raw HTTPS: JSON 1.1 protocol (POST /, X-Amz-Target
 * TrentService.<Op>), SigV4 with service "kms" (sigv4.c), credentials from
 * the environment or IMDSv2. See docs/cloud.md. */
#include "aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "cloud_int.h"
#include "kc.h"
#include "sigv4.h"

#define PROVIDER      "aws"
#define IMDS_DEFAULT  "http://169.254.169.254"
#define CRED_MARGIN   300 /* refresh IMDS credentials 5 minutes early */
#define MAX_SIG       1024
#define MAX_PUBKEY    8192

typedef struct {
    hsm_cloud_net net;
    char region[64];
    char endpoint[1024];
    char imds[512];
    char key_id[HSM_MAX_KEY_ID + 1]; /* config key_id, "" if none */
    pthread_mutex_t mu;              /* guards the IMDS credential cache */
    hsm_cp_aws_creds cache;
    bool cached;
} aws_ctx;

/* ---- configuration ------------------------------------------------------ */

static bool
region_ok(const char *r)
{
    size_t n = strlen(r);

    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') ||
              r[i] == '-'))
            return false;
    return true;
}

static hsm_err
aws_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    aws_ctx *a = calloc(1, sizeof *a);
    const char *region = hsm_config_get(cfg, "region");
    const char *ep = hsm_config_get(cfg, "endpoint");
    const char *imds = hsm_cloud_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const char *kid = hsm_config_get(cfg, "key_id");
    hsm_http_url u;
    hsm_err rc;

    if (!a)
        return HSM_ENOMEM;
    if ((rc = hsm_cloud_net_init(cfg, PROVIDER, &a->net, diag)) != HSM_OK)
        goto fail;
    rc = HSM_ECONFIG;
    if (!region || !*region)
        region = "us-east-1";
    if (!region_ok(region)) {
        hsm_diag_set(diag, "aws: config: invalid region");
        goto fail;
    }
    kc_strlcpy(a->region, region, sizeof a->region);
    if (kid && (!hsm_key_id_valid(kid) ||
                kc_strlcpy(a->key_id, kid, sizeof a->key_id) < 0)) {
        hsm_diag_set(diag, "aws: config: invalid key_id");
        goto fail;
    }
    if (ep && *ep) {
        if (kc_strlcpy(a->endpoint, ep, sizeof a->endpoint) < 0 ||
            hsm_http_url_parse(a->endpoint, &u) != HSM_HTTP_OK) {
            hsm_diag_set(diag, "aws: config: endpoint is not an http(s) URL");
            goto fail;
        }
    } else {
        snprintf(a->endpoint, sizeof a->endpoint,
                 "https://kms.%s.amazonaws.com/", a->region);
    }
    if (kc_strlcpy(a->imds, imds ? imds : IMDS_DEFAULT, sizeof a->imds) < 0) {
        hsm_diag_set(diag, "aws: config: metadata endpoint too long");
        goto fail;
    }
    /* "http://host/" and "http://host" both work as a base. */
    if (a->imds[0] && a->imds[strlen(a->imds) - 1] == '/')
        a->imds[strlen(a->imds) - 1] = '\0';
    pthread_mutex_init(&a->mu, NULL);
    *self = a;
    return HSM_OK;
fail:
    free(a);
    return rc;
}

static void
aws_destroy(void *self)
{
    aws_ctx *a = self;

    if (!a)
        return;
    hsm_cp_aws_creds_clear(&a->cache);
    pthread_mutex_destroy(&a->mu);
    kc_wipe(a, sizeof *a);
    free(a);
}

/* ---- credentials: environment, then IMDSv2 ------------------------------ */

static char *
sdup(const char *s)
{
    size_t n = strlen(s);
    char *p = kc_secure_alloc(n + 1);

    if (p)
        memcpy(p, s, n + 1);
    return p;
}

static hsm_err
creds_copy(const hsm_cp_aws_creds *src, hsm_cp_aws_creds *dst)
{
    memset(dst, 0, sizeof *dst);
    if (!(dst->access_key_id = sdup(src->access_key_id)) ||
        !(dst->secret_access_key = sdup(src->secret_access_key)) ||
        (src->session_token &&
         !(dst->session_token = sdup(src->session_token)))) {
        hsm_cp_aws_creds_clear(dst);
        return HSM_ENOMEM;
    }
    dst->expiration = src->expiration;
    return HSM_OK;
}

static hsm_err
imds_get(aws_ctx *a, const char *step, const char *method, const char *path,
         const char *hdr, hsm_http_response *r, hsm_diag *diag)
{
    char url[1024];
    const char *hdrs[1] = {hdr};
    hsm_cloud_call c = {
        .provider = PROVIDER,
        .step = step,
        .method = method,
        .url = url,
        .headers = hdrs,
        .header_count = 1,
        .metadata = true,
    };

    if (snprintf(url, sizeof url, "%s%s", a->imds, path) >= (int)sizeof url) {
        hsm_diag_set(diag, "aws: %s: metadata URL too long", step);
        return HSM_ECONFIG;
    }
    return hsm_cloud_json_call(&a->net, &c, r, diag);
}

static bool
role_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || strchr("+=,.@_-", ch)))
            return false;
    }
    return true;
}

/* IMDSv2: session token (PUT), role name, role credentials. */
static hsm_err
imds_fetch(aws_ctx *a, hsm_cp_aws_creds *out, hsm_diag *diag)
{
    hsm_http_response r = {0};
    char *tok_hdr = NULL, role[160], path[256];
    size_t n;
    int cp;
    hsm_err rc;

    rc = imds_get(a, "IMDS token", "PUT", "/latest/api/token",
                  "X-aws-ec2-metadata-token-ttl-seconds: 21600", &r, diag);
    if (rc != HSM_OK)
        return rc;
    n = strcspn((const char *)r.body, "\r\n");
    rc = HSM_EMALFORMED;
    if (n == 0 || n > 4096 || !(tok_hdr = kc_secure_alloc(n + 40))) {
        hsm_diag_set(diag, "aws: IMDS token: empty or oversized token");
        goto out;
    }
    snprintf(tok_hdr, n + 40, "X-aws-ec2-metadata-token: %.*s", (int)n,
             (const char *)r.body);
    hsm_http_response_free(&r);
    if ((rc = imds_get(a, "IMDS role", "GET",
                       "/latest/meta-data/iam/security-credentials/", tok_hdr,
                       &r, diag)) != HSM_OK)
        goto out;
    n = strcspn((const char *)r.body, "\r\n");
    rc = HSM_EMALFORMED;
    if (!role_ok((const char *)r.body, n)) {
        hsm_diag_set(diag, "aws: IMDS role: no valid instance role name");
        goto out;
    }
    memcpy(role, r.body, n);
    role[n] = '\0';
    hsm_http_response_free(&r);
    snprintf(path, sizeof path, "/latest/meta-data/iam/security-credentials/%s",
             role);
    if ((rc = imds_get(a, "IMDS credentials", "GET", path, tok_hdr, &r,
                       diag)) != HSM_OK)
        goto out;
    if ((cp = hsm_cp_imds_credentials(r.body, r.body_len, out)) != CP_OK) {
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "IMDS credentials",
                                  "role credentials", cp);
        goto out;
    }
    rc = HSM_OK;
out:
    hsm_http_response_free(&r);
    kc_secure_free(tok_hdr);
    return rc;
}

static hsm_err
aws_credentials(aws_ctx *a, hsm_cp_aws_creds *out, hsm_diag *diag)
{
    const char *ak = hsm_cloud_env("AWS_ACCESS_KEY_ID");
    const char *sk = hsm_cloud_env("AWS_SECRET_ACCESS_KEY");
    const char *st = hsm_cloud_env("AWS_SESSION_TOKEN");
    hsm_cp_aws_creds env = {0};
    time_t now = time(NULL);
    hsm_err rc;

    if (ak || sk) {
        if (!ak || !sk) {
            hsm_diag_set(diag, "aws: credentials: AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY must both be set");
            return HSM_ECONFIG;
        }
        env.access_key_id = (char *)ak;
        env.secret_access_key = (char *)sk;
        env.session_token = (char *)st;
        return creds_copy(&env, out);
    }
    pthread_mutex_lock(&a->mu);
    if (!a->cached ||
        (a->cache.expiration && now >= a->cache.expiration - CRED_MARGIN)) {
        hsm_cp_aws_creds fresh = {0};

        if ((rc = imds_fetch(a, &fresh, diag)) != HSM_OK) {
            pthread_mutex_unlock(&a->mu);
            return rc;
        }
        hsm_cp_aws_creds_clear(&a->cache);
        a->cache = fresh;
        a->cached = true;
    }
    rc = creds_copy(&a->cache, out);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* ---- one KMS call ------------------------------------------------------- */

static bool
type_retryable(const char *t)
{
    return strstr(t, "Throttl") || strcmp(t, "TooManyRequestsException") == 0 ||
           strcmp(t, "RequestLimitExceeded") == 0 ||
           strcmp(t, "KMSInternalException") == 0 ||
           strcmp(t, "DependencyTimeoutException") == 0;
}

/* The one mapping of AWS error types to hsm_err. */
static hsm_err
type_err(const char *t, long status)
{
    static const struct {
        const char *type;
        hsm_err err;
    } map[] = {
        {"NotFoundException", HSM_ENOTFOUND},
        {"AccessDeniedException", HSM_EAUTH},
        {"UnrecognizedClientException", HSM_EAUTH},
        {"InvalidSignatureException", HSM_EAUTH},
        {"IncompleteSignatureException", HSM_EAUTH},
        {"ExpiredTokenException", HSM_EAUTH},
        {"MissingAuthenticationTokenException", HSM_EAUTH},
        {"IncorrectKeyException", HSM_EAUTH},
        {"InvalidCiphertextException", HSM_ECORRUPT},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(t, map[i].type) == 0)
            return map[i].err;
    return t[0] ? HSM_EREMOTE : hsm_cloud_status_err(status);
}

typedef struct {
    char *lines[6];
    size_t n;
} hdr_lines;

static void
hdr_lines_free(hdr_lines *h)
{
    for (size_t i = 0; i < h->n; i++)
        kc_secure_free(h->lines[i]);
    h->n = 0;
}

static int
hdr_add(hdr_lines *h, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *p;

    if (h->n == sizeof h->lines / sizeof h->lines[0] ||
        !(p = kc_secure_alloc(n)))
        return -1;
    snprintf(p, n, "%s: %s", name, value);
    h->lines[h->n++] = p;
    return 0;
}

/* Sign and send one request; `r` holds any HTTP answer. */
static hsm_err
aws_send(aws_ctx *a, const hsm_http_url *u, const char *target,
         const char *body, size_t body_len, hsm_http_response *r,
         const char *op, hsm_diag *diag)
{
    hsm_cp_aws_creds cr = {0};
    hsm_sigv4_header sh[3] = {
        {"Host", u->authority},
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", target},
    };
    hsm_sigv4_request sreq = {
        .method = "POST",
        .path = u->path,
        .query = u->query,
        .headers = sh,
        .header_count = 3,
        .body = (const uint8_t *)body,
        .body_len = body_len,
    };
    hsm_sigv4_params p = {.region = a->region, .service = "kms"};
    hsm_sigv4_result res = {0};
    hdr_lines hl = {0};
    hsm_http_request hreq;
    char detail[200];
    hsm_sigv4_err se;
    hsm_http_err he;
    hsm_err rc;

    if ((rc = aws_credentials(a, &cr, diag)) != HSM_OK)
        return rc;
    p.access_key_id = cr.access_key_id;
    p.secret_access_key = cr.secret_access_key;
    p.session_token = cr.session_token;
    p.time = time(NULL);
    if ((se = hsm_sigv4_sign(&sreq, &p, &res)) != HSM_SIGV4_OK) {
        hsm_diag_set(diag, "aws: %s: signing failed: %s", op,
                     hsm_sigv4_strerror(se));
        rc = se == HSM_SIGV4_ENOMEM ? HSM_ENOMEM : HSM_ECONFIG;
        goto out;
    }
    rc = HSM_ENOMEM;
    for (size_t i = 0; i < 3; i++)
        if (hdr_add(&hl, sh[i].name, sh[i].value) < 0)
            goto out;
    for (size_t i = 0; i < res.add_count; i++)
        if (hdr_add(&hl, res.add[i].name, res.add[i].value) < 0)
            goto out;
    if (hdr_add(&hl, "Authorization", res.authorization) < 0)
        goto out;
    hreq = (hsm_http_request){.method = "POST",
                              .url = a->endpoint,
                              .headers = (const char *const *)hl.lines,
                              .header_count = hl.n,
                              .body = (const uint8_t *)body,
                              .body_len = body_len};
    he = hsm_http_perform(&a->net.http, &hreq, r, detail, sizeof detail);
    rc = he == HSM_HTTP_OK
             ? HSM_OK
             : hsm_cloud_http_fail(diag, PROVIDER, op, he, detail);
out:
    hdr_lines_free(&hl);
    hsm_sigv4_result_free(&res);
    hsm_cp_aws_creds_clear(&cr);
    return rc;
}

/* POST one TrentService operation with bounded retries. On HSM_OK `r`
 * holds the 200 answer. A failed call's AWS error type is copied to
 * `err_type` (may be NULL) so callers can treat some as results. */
static hsm_err
aws_call(aws_ctx *a, const char *op, json_t *req, hsm_http_response *r,
         char *err_type, size_t err_type_cap, hsm_diag *diag)
{
    char target[64], type[96], msg[128];
    hsm_http_url u;
    size_t body_len = 0;
    char *body = hsm_cloud_json_body(req, &body_len);
    hsm_err rc = HSM_ENOMEM;

    if (err_type && err_type_cap)
        err_type[0] = '\0';
    if (!body)
        return HSM_ENOMEM;
    snprintf(target, sizeof target, "TrentService.%s", op);
    rc = HSM_ECONFIG;
    if (hsm_http_url_parse(a->endpoint, &u) != HSM_HTTP_OK) {
        hsm_diag_set(diag, "aws: %s: bad endpoint URL", op);
        goto out;
    }
    for (unsigned attempt = 0;; attempt++) {
        bool retry;

        if ((rc = aws_send(a, &u, target, body, body_len, r, op, diag)) !=
            HSM_OK)
            goto out;
        if (r->status == 200) {
            rc = HSM_OK;
            goto out;
        }
        type[0] = msg[0] = '\0';
        hsm_cp_aws_error(r->body, r->body_len, type, sizeof type, msg,
                         sizeof msg);
        retry = type_retryable(type) || hsm_cloud_status_retryable(r->status);
        if (!retry || attempt + 1 >= a->net.tries) {
            if (type[0])
                hsm_diag_set(diag, "aws: %s: %s: %s%s", op, type, msg,
                             retry ? " (gave up after retries)" : "");
            else
                hsm_diag_set(diag, "aws: %s: HTTP %ld%s", op, r->status,
                             retry ? " (gave up after retries)" : "");
            if (err_type)
                kc_strlcpy(err_type, type, err_type_cap);
            rc = type_err(type, r->status);
            hsm_http_response_free(r);
            goto out;
        }
        hsm_http_response_free(r);
        hsm_cloud_backoff(&a->net, attempt);
    }
out:
    kc_free_wipe(body, body_len);
    return rc;
}

/* ---- password provider: Decrypt ----------------------------------------- */

static hsm_err
aws_password_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    return aws_create(cfg, self, diag);
}

static hsm_err
aws_password_get(void *self, const char *key_id, hsm_secret **out,
                 hsm_diag *diag)
{
    aws_ctx *a = self;
    const char *ct = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    json_t *req = NULL;
    hsm_http_response r = {0};
    hsm_err rc;

    if ((rc = hsm_cloud_encrypted_password(PROVIDER, "Decrypt", &ct, &blob,
                                           &blob_len, diag)) != HSM_OK)
        return rc;
    rc = HSM_ENOMEM;
    if (!(req = json_pack("{s:s}", "CiphertextBlob", ct)))
        goto out;
    /* KeyId is optional for symmetric keys (the blob names its key) but,
     * when known, KMS then refuses a blob of another key. */
    if (!key_id && a->key_id[0])
        key_id = a->key_id;
    if (key_id && json_object_set_new(req, "KeyId", json_string(key_id)) != 0)
        goto out;
    if ((rc = aws_call(a, "Decrypt", req, &r, NULL, 0, diag)) != HSM_OK)
        goto out;
    rc = hsm_cloud_secret_field(&r, PROVIDER, "Decrypt", "Plaintext", false,
                                out, diag);
out:
    free(blob);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

/* ---- signer: Sign / Verify / GetPublicKey -------------------------------- */

static hsm_err
aws_signer_create(const hsm_config *cfg, hsm_store *store, void **self,
                  hsm_diag *diag)
{
    (void)store;
    return aws_create(cfg, self, diag);
}

static hsm_alg
aws_algorithm(void *self)
{
    (void)self;
    return HSM_ALG_ECDSA_P256_SHA256;
}

static json_t *
digest_request(const char *key_id, const uint8_t *digest, size_t digest_len)
{
    char *m = kc_b64_encode(digest, digest_len, KC_B64_STD);
    json_t *j = NULL;

    if (m)
        j = json_pack("{s:s, s:s, s:s, s:s}", "KeyId", key_id, "Message", m,
                      "MessageType", "DIGEST", "SigningAlgorithm",
                      "ECDSA_SHA_256");
    free(m);
    return j;
}

static hsm_err
aws_sign_digest(void *self, const char *key_id, const uint8_t *digest,
                size_t digest_len, uint8_t **sig, size_t *sig_len,
                hsm_diag *diag)
{
    json_t *req;
    hsm_http_response r = {0};
    int cp;
    hsm_err rc;

    if (digest_len != 32) {
        hsm_diag_set(diag, "aws: Sign: digest must be 32 bytes (SHA-256)");
        return HSM_EINVAL;
    }
    if (!(req = digest_request(key_id, digest, digest_len)))
        return HSM_ENOMEM;
    if ((rc = aws_call(self, "Sign", req, &r, NULL, 0, diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_b64_field(r.body, r.body_len, "Signature", false, false,
                          MAX_SIG, sig, sig_len);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "Sign", "Signature", cp);
out:
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
aws_verify_digest(void *self, const char *key_id, const uint8_t *digest,
                  size_t digest_len, const uint8_t *sig, size_t sig_len,
                  bool *valid, hsm_diag *diag)
{
    json_t *req;
    char *s64 = NULL, type[96];
    hsm_http_response r = {0};
    int cp;
    hsm_err rc = HSM_ENOMEM;

    *valid = false;
    if (digest_len != 32) {
        hsm_diag_set(diag, "aws: Verify: digest must be 32 bytes (SHA-256)");
        return HSM_EINVAL;
    }
    if (sig_len == 0 || sig_len > MAX_SIG)
        return HSM_OK; /* cannot be a valid signature */
    if (!(req = digest_request(key_id, digest, digest_len)) ||
        !(s64 = kc_b64_encode(sig, sig_len, KC_B64_STD)) ||
        json_object_set_new(req, "Signature", json_string(s64)) != 0)
        goto out;
    rc = aws_call(self, "Verify", req, &r, type, sizeof type, diag);
    if (rc != HSM_OK) {
        /* KMS answers a bad signature with KMSInvalidSignatureException:
         * a result, not a failure. */
        if (strcmp(type, "KMSInvalidSignatureException") == 0)
            rc = HSM_OK;
        goto out;
    }
    cp = hsm_cp_bool_field(r.body, r.body_len, "SignatureValid", valid);
    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "Verify", "SignatureValid",
                                  cp);
out:
    free(s64);
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

static hsm_err
aws_public_key(void *self, const char *key_id, uint8_t **der, size_t *der_len,
               hsm_diag *diag)
{
    json_t *req = json_pack("{s:s}", "KeyId", key_id);
    hsm_http_response r = {0};
    const unsigned char *p;
    EVP_PKEY *pk;
    int cp;
    hsm_err rc;

    if (!req)
        return HSM_ENOMEM;
    if ((rc = aws_call(self, "GetPublicKey", req, &r, NULL, 0, diag)) != HSM_OK)
        goto out;
    cp = hsm_cp_b64_field(r.body, r.body_len, "PublicKey", false, false,
                          MAX_PUBKEY, der, der_len);
    if (cp != CP_OK) {
        rc = hsm_cloud_parse_fail(diag, PROVIDER, "GetPublicKey", "PublicKey",
                                  cp);
        goto out;
    }
    p = *der;
    if (!(pk = d2i_PUBKEY(NULL, &p, (long)*der_len)) || p != *der + *der_len) {
        EVP_PKEY_free(pk);
        free(*der);
        *der = NULL;
        hsm_diag_set(diag, "aws: GetPublicKey: PublicKey is not DER SPKI");
        rc = HSM_EMALFORMED;
        goto out;
    }
    EVP_PKEY_free(pk);
out:
    json_decref(req);
    hsm_http_response_free(&r);
    return rc;
}

const hsm_signer_ops hsm_aws_signer_ops = {
    .name = "aws",
    .create = aws_signer_create,
    .algorithm = aws_algorithm,
    .sign = NULL,
    .sign_digest = aws_sign_digest,
    .verify = NULL,
    .verify_digest = aws_verify_digest,
    .public_key = aws_public_key,
    .destroy = aws_destroy,
};

const hsm_password_ops hsm_aws_password_ops = {
    .name = "aws",
    .create = aws_password_create,
    .get = aws_password_get,
    .destroy = aws_destroy,
};
