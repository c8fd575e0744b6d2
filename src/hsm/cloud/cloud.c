/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the cloud providers; see cloud_int.h. */
#include "cloud_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kc.h"

#define MAX_BACKOFF_MS 20000u

static int
cfg_u64(const hsm_config *cfg, const char *key, uint64_t def, uint64_t min,
        uint64_t max, uint64_t *out)
{
    const char *v = hsm_config_get(cfg, key);

    *out = def;
    if (!v || !*v)
        return 0;
    if (kc_parse_u64(v, out) != 0 || *out < min || *out > max)
        return -1;
    return 0;
}

hsm_err
hsm_cloud_net_init(const hsm_config *cfg, const char *provider,
                   hsm_cloud_net *n, hsm_diag *diag)
{
    uint64_t cto, to, maxr, tries, base;
    const char *bad = NULL;

    memset(n, 0, sizeof *n);
    if (cfg_u64(cfg, "connect_timeout_ms", HSM_HTTP_DEFAULT_CONNECT_MS, 1,
                600000, &cto))
        bad = "connect_timeout_ms";
    else if (cfg_u64(cfg, "timeout_ms", HSM_HTTP_DEFAULT_TIMEOUT_MS, 1, 3600000,
                     &to))
        bad = "timeout_ms";
    else if (cfg_u64(cfg, "max_response", HSM_HTTP_DEFAULT_MAX_RESPONSE, 1024,
                     (uint64_t)64 << 20, &maxr))
        bad = "max_response";
    else if (cfg_u64(cfg, "retry_max", 4, 1, 10, &tries))
        bad = "retry_max";
    else if (cfg_u64(cfg, "retry_base_ms", 200, 0, 60000, &base))
        bad = "retry_base_ms";
    if (bad) {
        hsm_diag_set(diag, "%s: config: %s is not a number in range", provider,
                     bad);
        return HSM_ECONFIG;
    }
    n->http.connect_timeout_ms = (long)cto;
    n->http.timeout_ms = (long)to;
    n->http.max_response = (size_t)maxr;
    n->http.ca_bundle = hsm_config_get(cfg, "ca_bundle");
    n->tries = (unsigned)tries;
    n->base_delay_ms = (unsigned)base;
    return HSM_OK;
}

void
hsm_cloud_backoff(const hsm_cloud_net *n, unsigned attempt)
{
    uint64_t ceil_ms = n->base_delay_ms;
    uint32_t r;
    struct timespec ts;

    for (unsigned i = 0; i < attempt && ceil_ms < MAX_BACKOFF_MS; i++)
        ceil_ms *= 2;
    if (ceil_ms > MAX_BACKOFF_MS)
        ceil_ms = MAX_BACKOFF_MS;
    if (ceil_ms == 0)
        return;
    kc_random(&r, sizeof r);
    ceil_ms = r % (ceil_ms + 1);
    ts.tv_sec = (time_t)(ceil_ms / 1000);
    ts.tv_nsec = (long)(ceil_ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool
hsm_cloud_status_retryable(long status)
{
    return status == 429 || (status >= 500 && status <= 599);
}

hsm_err
hsm_cloud_status_err(long status)
{
    switch (status) {
    case 401:
    case 403:
        return HSM_EAUTH;
    case 404:
        return HSM_ENOTFOUND;
    case 408:
    case 504:
        return HSM_ETIMEOUT;
    default:
        return HSM_EREMOTE;
    }
}

hsm_err
hsm_cloud_http_fail(hsm_diag *diag, const char *provider, const char *step,
                    hsm_http_err e, const char *detail)
{
    hsm_diag_set(diag, "%s: %s: %s", provider, step,
                 detail && *detail ? detail : hsm_http_strerror(e));
    switch (e) {
    case HSM_HTTP_ETIMEOUT:
        return HSM_ETIMEOUT;
    case HSM_HTTP_ETOOBIG:
        return HSM_ETOOBIG;
    case HSM_HTTP_ENOMEM:
        return HSM_ENOMEM;
    case HSM_HTTP_EURL:
    case HSM_HTTP_EINSECURE:
        return HSM_ECONFIG;
    case HSM_HTTP_EINVAL:
        return HSM_EINVAL;
    default:
        return HSM_ENETWORK;
    }
}

hsm_err
hsm_cloud_parse_fail(hsm_diag *diag, const char *provider, const char *step,
                     const char *what, int cp_rc)
{
    hsm_diag_set(diag, "%s: %s: %s: %s", provider, step, what,
                 hsm_cp_strerror(cp_rc));
    if (cp_rc == CP_ENOMEM)
        return HSM_ENOMEM;
    return HSM_EMALFORMED;
}

const char *
hsm_cloud_env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

void
hsm_cloud_token_cache_init(hsm_cloud_token_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

void
hsm_cloud_token_cache_destroy(hsm_cloud_token_cache *c)
{
    kc_secure_free(c->token);
    c->token = NULL;
    pthread_mutex_destroy(&c->mu);
}

char *
hsm_cloud_token_cache_get(hsm_cloud_token_cache *c, time_t now, time_t margin)
{
    char *copy = NULL;

    pthread_mutex_lock(&c->mu);
    if (c->token && c->expires - margin > now &&
        (copy = kc_secure_alloc(c->len + 1)))
        memcpy(copy, c->token, c->len + 1);
    pthread_mutex_unlock(&c->mu);
    return copy;
}

void
hsm_cloud_token_cache_put(hsm_cloud_token_cache *c, char *token, size_t len,
                          time_t expires)
{
    pthread_mutex_lock(&c->mu);
    kc_secure_free(c->token);
    c->token = token;
    c->len = len;
    c->expires = expires;
    pthread_mutex_unlock(&c->mu);
}

char *
hsm_cloud_bearer_header(const char *token)
{
    static const char pre[] = "Authorization: Bearer ";
    size_t n = strlen(token);
    char *h;

    if (n > 65536 || !(h = kc_secure_alloc(sizeof pre + n)))
        return NULL;
    memcpy(h, pre, sizeof pre - 1);
    memcpy(h + sizeof pre - 1, token, n + 1);
    return h;
}

char *
hsm_cloud_json_body(void *json_obj, size_t *len)
{
    char *s = json_dumps((json_t *)json_obj, JSON_COMPACT);

    if (s && len)
        *len = strlen(s);
    return s;
}

static hsm_err
remote_fail(const hsm_cloud_call *c, const hsm_http_response *r, hsm_diag *diag)
{
    char code[64], msg[160];

    if (hsm_cp_error_object(r->body, r->body_len, code, sizeof code, msg,
                            sizeof msg) == CP_OK)
        hsm_diag_set(diag, "%s: %s: HTTP %ld %s: %s", c->provider, c->step,
                     r->status, code, msg);
    else
        hsm_diag_set(diag, "%s: %s: HTTP %ld", c->provider, c->step, r->status);
    return hsm_cloud_status_err(r->status);
}

hsm_err
hsm_cloud_json_call(const hsm_cloud_net *n, const hsm_cloud_call *c,
                    hsm_http_response *resp, hsm_diag *diag)
{
    hsm_http_request req = {
        .method = c->method,
        .url = c->url,
        .headers = c->headers,
        .header_count = c->header_count,
        .body = c->body,
        .body_len = c->body_len,
        .metadata = c->metadata,
    };
    char detail[200];
    hsm_http_err e;

    for (unsigned attempt = 0;; attempt++) {
        e = hsm_http_perform(&n->http, &req, resp, detail, sizeof detail);
        if (e != HSM_HTTP_OK)
            return hsm_cloud_http_fail(diag, c->provider, c->step, e, detail);
        if (resp->status >= 200 && resp->status <= 299)
            return HSM_OK;
        if (!hsm_cloud_status_retryable(resp->status) ||
            attempt + 1 >= n->tries) {
            hsm_err rc = remote_fail(c, resp, diag);

            hsm_http_response_free(resp);
            return rc;
        }
        hsm_http_response_free(resp);
        hsm_cloud_backoff(n, attempt);
    }
}

hsm_err
hsm_cloud_bearer_json_call(const hsm_cloud_net *n, const hsm_cloud_call *base,
                           const char *token, void *req,
                           hsm_http_response *resp, hsm_diag *diag)
{
    char *auth = NULL, *body = NULL;
    size_t body_len = 0;
    const char *hdrs[2];
    hsm_cloud_call c = *base;
    hsm_err rc = HSM_ENOMEM;

    if (!(auth = hsm_cloud_bearer_header(token)))
        goto out;
    hdrs[0] = auth;
    hdrs[1] = "Content-Type: application/json";
    c.headers = hdrs;
    c.header_count = req ? 2 : 1;
    c.method = req ? "POST" : "GET";
    if (req) {
        if (!(body = hsm_cloud_json_body(req, &body_len)))
            goto out;
        c.body = (const uint8_t *)body;
        c.body_len = body_len;
    }
    rc = hsm_cloud_json_call(n, &c, resp, diag);
out:
    if (body)
        kc_free_wipe(body, body_len);
    kc_secure_free(auth);
    return rc;
}

hsm_err
hsm_cloud_encrypted_password(const char *provider, const char *step,
                             const char **b64, uint8_t **blob,
                             size_t *blob_len, hsm_diag *diag)
{
    const char *ct = hsm_cloud_env("ZAPDB_ENCRYPTED_PASSWORD");

    *blob = NULL;
    *blob_len = 0;
    if (!ct) {
        hsm_diag_set(diag, "%s: %s: ZAPDB_ENCRYPTED_PASSWORD is not set",
                     provider, step);
        return HSM_ECONFIG;
    }
    if (kc_b64_decode(ct, strlen(ct), KC_B64_STD, blob, blob_len) != 0 ||
        *blob_len == 0) {
        free(*blob);
        *blob = NULL;
        *blob_len = 0;
        hsm_diag_set(diag, "%s: %s: ZAPDB_ENCRYPTED_PASSWORD is not base64",
                     provider, step);
        return HSM_ECONFIG;
    }
    *b64 = ct;
    return HSM_OK;
}

#define CLOUD_MAX_PLAINTEXT 4096

hsm_err
hsm_cloud_secret_field(const hsm_http_response *r, const char *provider,
                       const char *step, const char *field, bool url,
                       hsm_secret **out, hsm_diag *diag)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    hsm_err rc;
    int cp = hsm_cp_b64_field(r->body, r->body_len, field, url, true,
                              CLOUD_MAX_PLAINTEXT, &pt, &pt_len);

    if (cp != CP_OK)
        rc = hsm_cloud_parse_fail(diag, provider, step, field, cp);
    else
        rc = hsm_secret_from(pt, pt_len, out);
    kc_secure_free(pt);
    return rc;
}
