/* SPDX-License-Identifier: Apache-2.0 */
/* A small HTTPS client for the cloud providers (internal, never
 * installed): one libcurl easy handle per request.
 *
 * Policy, the same for every caller:
 *   - TLS peer and host verification always on; a private CA bundle may be
 *     given (config key `ca_bundle`);
 *   - plain http:// only to loopback hosts (127.0.0.0/8, ::1, localhost),
 *     for tests and local agents, and, for requests marked `metadata`, to
 *     the fixed link-local instance metadata services that only speak
 *     http (169.254.169.254, [fd00:ec2::254], metadata.google.internal);
 *     anything else is HSM_HTTP_EINSECURE;
 *   - only http and https, redirects never followed;
 *   - connect and total timeouts (defaults 5 s and 30 s);
 *   - the response body is capped (default 1 MiB): a larger one aborts
 *     the transfer with HSM_HTTP_ETOOBIG.
 * Response bodies are wiped when freed (they may carry plaintext or
 * tokens); request header lines are wiped before they are freed (they may
 * carry a bearer token). The caller wipes its own request body.
 *
 * THREAD SAFETY: every function may be called from any thread; the first
 * call runs curl_global_init once (pthread_once). No handle is shared.
 */
#ifndef HSM_CLOUD_HTTP_H
#define HSM_CLOUD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HSM_HTTP_ERRORS(X)                                                     \
    X(HSM_HTTP_OK, "ok")                                                       \
    X(HSM_HTTP_EINVAL, "invalid argument")                                     \
    X(HSM_HTTP_EURL, "malformed URL")                                          \
    X(HSM_HTTP_EINSECURE,                                                      \
      "plain http:// is only allowed to loopback hosts; use https://")         \
    X(HSM_HTTP_ENOMEM, "out of memory")                                        \
    X(HSM_HTTP_EDNS, "host name could not be resolved")                        \
    X(HSM_HTTP_ECONNECT, "connection failed")                                  \
    X(HSM_HTTP_ETIMEOUT, "timed out")                                          \
    X(HSM_HTTP_ETLS, "TLS handshake or certificate verification failed")       \
    X(HSM_HTTP_ETOOBIG, "response body too large")                             \
    X(HSM_HTTP_EIO, "transfer failed")

typedef enum {
#define HSM_HTTP_ENUM_(name, msg) name,
    HSM_HTTP_ERRORS(HSM_HTTP_ENUM_)
#undef HSM_HTTP_ENUM_
} hsm_http_err;

/* Never NULL. */
const char *hsm_http_strerror(hsm_http_err e);

#define HSM_HTTP_DEFAULT_CONNECT_MS   5000L
#define HSM_HTTP_DEFAULT_TIMEOUT_MS   30000L
#define HSM_HTTP_DEFAULT_MAX_RESPONSE ((size_t)1 << 20)

typedef struct {
    long connect_timeout_ms; /* 0: default */
    long timeout_ms;         /* 0: default */
    size_t max_response;     /* 0: default */
    const char *ca_bundle;   /* NULL: the system trust store */
} hsm_http_opts;

typedef struct {
    const char *method; /* "GET", "POST", "PUT" */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    size_t header_count;
    const uint8_t *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    bool metadata; /* an instance metadata request (see above) */
} hsm_http_request;

typedef struct {
    long status;
    uint8_t *body; /* NUL-terminated (not counted); wiped on free */
    size_t body_len;
    size_t cap_;
} hsm_http_response;

/* Perform one request. On HSM_HTTP_OK the response holds any status
 * (the caller interprets 4xx/5xx). `detail` (may be NULL) receives a
 * short reason on failure (curl's message, never the body). */
hsm_http_err hsm_http_perform(const hsm_http_opts *opts,
                              const hsm_http_request *req,
                              hsm_http_response *resp, char *detail,
                              size_t detail_cap);
/* NULL-safe; wipes the body. */
void hsm_http_response_free(hsm_http_response *resp);

typedef struct {
    bool https;
    bool loopback;
    char host[256];      /* as in the URL ("[::1]" keeps brackets) */
    char authority[300]; /* Host header value: host[:port if not default] */
    char path[2048];     /* "/" when empty */
    char query[2048];    /* without '?', "" when none */
} hsm_http_url;

/* Parse and check an http(s) URL. HSM_HTTP_EURL for anything else
 * (other schemes, user info, fragments, parts too long). */
hsm_http_err hsm_http_url_parse(const char *url, hsm_http_url *u);
/* 127.0.0.0/8, ::1 ("[::1]" too) or "localhost" (any case). */
bool hsm_http_host_is_loopback(const char *host);
/* 169.254.169.254, [fd00:ec2::254] or metadata.google.internal. */
bool hsm_http_host_is_metadata(const char *host);

#endif
