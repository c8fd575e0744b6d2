/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the cloud providers (aws.c, gcp.c, azure.c,
 * zymbit.c): network settings from the configuration, bounded retries
 * with jittered exponential backoff, token caches, JSON-over-HTTPS calls
 * and the one place that maps HTTP and parse failures to hsm_err.
 * Internal, never installed.
 *
 * Configuration keys read by every cloud provider (no environment
 * fallback): ca_bundle, connect_timeout_ms (default 5000), timeout_ms
 * (default 30000), max_response (bytes, default 1 MiB), retry_max (tries
 * in all, default 4, 1..10), retry_base_ms (default 200).
 *
 * Diagnostics always read "<provider>: <step>: <reason>" and never carry
 * a secret: bodies of requests are never quoted; remote error messages
 * are (truncated), since the service wrote them for the caller.
 *
 * THREAD SAFETY: the token cache locks itself; the rest is reentrant.
 */
#ifndef HSM_CLOUD_INT_H
#define HSM_CLOUD_INT_H

#include <pthread.h>
#include <time.h>

#include "cloud_parse.h"
#include "hsm_int.h"
#include "http.h"

typedef struct {
    hsm_http_opts http;
    unsigned tries;         /* attempts in all, >= 1 */
    unsigned base_delay_ms; /* first backoff ceiling */
} hsm_cloud_net;

/* Read the network keys above. HSM_ECONFIG (with diag) for a bad value. */
hsm_err hsm_cloud_net_init(const hsm_config *cfg, const char *provider,
                           hsm_cloud_net *n, hsm_diag *diag);

/* Sleep before retry number `attempt` (0-based): a uniformly random time
 * in [0, min(base * 2^attempt, 20 s)] ("full jitter"). */
void hsm_cloud_backoff(const hsm_cloud_net *n, unsigned attempt);
/* 429 and 5xx. */
bool hsm_cloud_status_retryable(long status);

/* Map a transport failure; sets "<provider>: <step>: <detail>". */
hsm_err hsm_cloud_http_fail(hsm_diag *diag, const char *provider,
                            const char *step, hsm_http_err e,
                            const char *detail);
/* Map a parse failure; sets "<provider>: <step>: <what>: <reason>". */
hsm_err hsm_cloud_parse_fail(hsm_diag *diag, const char *provider,
                             const char *step, const char *what, int cp_rc);
/* HTTP status of a failed call to hsm_err: 401/403 HSM_EAUTH, 404
 * HSM_ENOTFOUND, 408/504 HSM_ETIMEOUT, others HSM_EREMOTE. */
hsm_err hsm_cloud_status_err(long status);

/* Non-empty environment variable, or NULL. */
const char *hsm_cloud_env(const char *name);

/* ---- bearer token cache (GCP, Azure) --------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    char *token; /* secure memory */
    size_t len;
    time_t expires;
} hsm_cloud_token_cache;

void hsm_cloud_token_cache_init(hsm_cloud_token_cache *c);
void hsm_cloud_token_cache_destroy(hsm_cloud_token_cache *c);
/* A secure copy of the cached token if it stays valid for more than
 * `margin` seconds after `now`, else NULL. */
char *hsm_cloud_token_cache_get(hsm_cloud_token_cache *c, time_t now,
                                time_t margin);
/* Store `token` (taken over; secure memory). */
void hsm_cloud_token_cache_put(hsm_cloud_token_cache *c, char *token,
                               size_t len, time_t expires);
/* "Authorization: Bearer <token>" in secure memory (kc_secure_free). */
char *hsm_cloud_bearer_header(const char *token);

/* ---- JSON over HTTPS with retries (GCP, Azure, Zymbit, metadata) ------ */

typedef struct {
    const char *provider; /* "gcp" */
    const char *step;     /* "decrypt", "token" ... */
    const char *method;
    const char *url;
    const char *const *headers;
    size_t header_count;
    const uint8_t *body;
    size_t body_len;
    bool metadata; /* see hsm_http_request.metadata */
} hsm_cloud_call;

/* Perform with retries on 429/5xx; on HSM_OK `resp` holds a 2xx answer.
 * Other statuses become errors with the service's error code and message
 * ({"error": {...}}) in the diagnostic. */
hsm_err hsm_cloud_json_call(const hsm_cloud_net *n, const hsm_cloud_call *c,
                            hsm_http_response *resp, hsm_diag *diag);

/* A JSON call authorised with a bearer token (GCP, Azure): POST of `req`
 * (a json_t object) with Content-Type application/json, or GET when `req`
 * is NULL; `base` gives provider, step and URL. The header and body copies
 * are wiped before return. */
hsm_err hsm_cloud_bearer_json_call(const hsm_cloud_net *n,
                                   const hsm_cloud_call *base,
                                   const char *token, void *req,
                                   hsm_http_response *resp, hsm_diag *diag);

/* The KMS-encrypted ZapDB password from ZAPDB_ENCRYPTED_PASSWORD: *b64 is
 * the variable's text and *blob (free()) its decoded bytes. Missing, empty
 * or non-base64 input is HSM_ECONFIG with "<provider>: <step>: ..." in the
 * diagnostic. */
hsm_err hsm_cloud_encrypted_password(const char *provider, const char *step,
                                     const char **b64, uint8_t **blob,
                                     size_t *blob_len, hsm_diag *diag);

/* The base64 plaintext field `field` of a decrypt/unwrap answer as a new
 * secret (decoded into locked memory, at most 4 KiB). */
hsm_err hsm_cloud_secret_field(const hsm_http_response *r,
                               const char *provider, const char *step,
                               const char *field, bool url, hsm_secret **out,
                               hsm_diag *diag);

/* Serialise a JSON object for a request body (malloc'd, NUL-terminated;
 * release with kc_free_wipe when it held a secret). NULL on failure. */
char *hsm_cloud_json_body(void *json_obj, size_t *len);

#endif
