/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4 (internal to libhsm and kmsd, never installed).
 *
 * Written from the AWS General Reference, "Signature Version 4 signing
 * process" (create a canonical request, a string to sign, derive the
 * signing key, calculate the signature, add it to the request), header
 * based authentication with AWS4-HMAC-SHA256 only (no presigned URLs, no
 * chunked payloads, no SigV4a).
 *
 * Paths: `path` is the path exactly as it travels in the request line.
 * Unless HSM_SIGV4_S3_PATH is set, it is normalised (empty, "." and ".."
 * segments removed, RFC 3986 section 5.2.4) and then URI-encoded once more,
 * byte by byte, keeping only unreserved characters and '/': this is the
 * "double encoding" AWS uses for every service except S3. With
 * HSM_SIGV4_S3_PATH the path is used as sent.
 * Query: `query` is the raw query string without '?'. Each parameter is
 * percent-decoded (a malformed escape is an error), re-encoded with the
 * SigV4 rules, and the pairs sorted by encoded name then encoded value.
 * Headers: names are compared case-insensitively; values are trimmed and
 * runs of spaces folded to one; repeated names are joined with ',' in the
 * order given. Hop-by-hop and proxy-touched headers (authorization,
 * user-agent, connection, expect, ...) are never signed, as in the AWS
 * SDKs.
 *
 * THREAD SAFETY: all functions are reentrant; they keep no state. The
 * verify lookup callback is called on the caller's thread.
 */
#ifndef HSM_CLOUD_SIGV4_H
#define HSM_CLOUD_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HSM_SIGV4_ERRORS(X)                                                    \
    X(HSM_SIGV4_OK, "ok")                                                      \
    X(HSM_SIGV4_EINVAL, "invalid argument")                                    \
    X(HSM_SIGV4_ENOMEM, "out of memory")                                       \
    X(HSM_SIGV4_EMISSING, "missing authorization or date header")              \
    X(HSM_SIGV4_EMALFORMED, "malformed request or authorization header")       \
    X(HSM_SIGV4_EUNKNOWN_KEY, "unknown access key id")                         \
    X(HSM_SIGV4_ESIGNATURE, "signature does not match")                        \
    X(HSM_SIGV4_ESKEW, "request date outside the allowed clock skew")          \
    X(HSM_SIGV4_ESCOPE, "credential scope does not match")

typedef enum {
#define HSM_SIGV4_ENUM_(name, msg) name,
    HSM_SIGV4_ERRORS(HSM_SIGV4_ENUM_)
#undef HSM_SIGV4_ENUM_
} hsm_sigv4_err;

/* Never NULL. */
const char *hsm_sigv4_strerror(hsm_sigv4_err e);

typedef struct {
    const char *name;  /* NUL-terminated, any case */
    const char *value; /* NUL-terminated, as received or to be sent */
} hsm_sigv4_header;

typedef struct {
    const char *method;              /* "GET", "POST", ... */
    const char *path;                /* request-line path, "" means "/" */
    const char *query;               /* without '?', NULL or "" if none */
    const hsm_sigv4_header *headers; /* must include Host */
    size_t header_count;
    const uint8_t *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    /* Lower-case hex SHA-256 of the payload; when non-NULL it is used
     * instead of hashing `body` (e.g. "UNSIGNED-PAYLOAD" for S3). */
    const char *payload_hash;
} hsm_sigv4_request;

/* Flags for hsm_sigv4_params.flags. */
enum {
    /* Add X-Amz-Security-Token after signing instead of signing it (the
     * suite's post-sts-header-after case; some services want this). */
    HSM_SIGV4_TOKEN_UNSIGNED = 1u << 0,
    /* Add and sign X-Amz-Content-Sha256 with the payload hash. */
    HSM_SIGV4_ADD_CONTENT_SHA256 = 1u << 1,
    /* S3 rules for the path: no normalisation, no second encoding. */
    HSM_SIGV4_S3_PATH = 1u << 2,
};

typedef struct {
    const char *access_key_id;
    const char *secret_access_key; /* secret: only read, never copied out */
    const char *session_token;     /* NULL if none */
    const char *region;            /* "us-east-1" */
    const char *service;           /* "kms" */
    time_t time;                   /* signing time, UTC seconds */
    unsigned flags;
} hsm_sigv4_params;

#define HSM_SIGV4_MAX_ADD 3

/* The result of signing. Contains no secret key material; the canonical
 * request may hold the session token, so hsm_sigv4_result_free wipes. */
typedef struct {
    char *canonical_request;
    char *string_to_sign;
    char *authorization; /* value of the Authorization header */
    char signature[65];  /* lower-case hex */
    char amz_date[17];   /* YYYYMMDD'T'HHMMSS'Z' */
    /* Headers the caller must add to the request besides Authorization:
     * X-Amz-Date, then X-Amz-Security-Token and X-Amz-Content-Sha256 as
     * requested. Names and values point into this result. */
    hsm_sigv4_header add[HSM_SIGV4_MAX_ADD];
    size_t add_count;
    char *token_; /* private copies the add[] values point to */
    char content_sha256_[65];
} hsm_sigv4_result;

/* Sign `req`. The request's own headers must not already contain
 * X-Amz-Date, X-Amz-Security-Token (when a session token is given),
 * X-Amz-Content-Sha256 (with HSM_SIGV4_ADD_CONTENT_SHA256) or Authorization
 * (HSM_SIGV4_EINVAL). On success fills `out`, to be released with
 * hsm_sigv4_result_free(). Errors: EINVAL, ENOMEM, EMALFORMED (bad
 * percent-escape in the query, control bytes in a header). */
hsm_sigv4_err hsm_sigv4_sign(const hsm_sigv4_request *req,
                             const hsm_sigv4_params *p, hsm_sigv4_result *out);
/* NULL-safe; wipes. */
void hsm_sigv4_result_free(hsm_sigv4_result *r);

/* Derive the SigV4 signing key (kSigning) for `date` (YYYYMMDD). The key
 * is secret; wipe it after use. Returns 0 or -1. */
int hsm_sigv4_signing_key(const char *secret_access_key, const char *date8,
                          const char *region, const char *service,
                          uint8_t key[32]);
/* hex(HMAC-SHA256(key, string_to_sign)) into sig_hex (65 bytes). */
int hsm_sigv4_signature_from_sts(const uint8_t key[32], const char *sts,
                                 size_t sts_len, char sig_hex[65]);

/* ---- verification (server side) -------------------------------------- */

/* Look up the secret for `access_key_id`, writing at most `secret_cap`
 * bytes to `secret` (NUL-terminated) and its length to `*secret_len`.
 * Return 0 when found, -1 when the key id is unknown. */
typedef int (*hsm_sigv4_lookup_fn)(void *ctx, const char *access_key_id,
                                   char *secret, size_t secret_cap,
                                   size_t *secret_len);

typedef struct {
    hsm_sigv4_lookup_fn lookup;
    void *lookup_ctx;
    const char *region;  /* required region, or NULL to accept any */
    const char *service; /* required service, e.g. "kms" */
    time_t now;          /* current time (a parameter for tests) */
    /* Allowed |now - X-Amz-Date| in seconds; 0 means the default 300. */
    unsigned max_skew;
    unsigned flags; /* HSM_SIGV4_S3_PATH */
} hsm_sigv4_verify_opts;

typedef struct {
    char access_key_id[129];
    char region[64];
    char service[64];
    bool signed_session_token; /* X-Amz-Security-Token was signed */
} hsm_sigv4_identity;

/* Verify an incoming request signed with the Authorization header. The
 * header is parsed strictly ("AWS4-HMAC-SHA256 Credential=AKID/date/
 * region/service/aws4_request, SignedHeaders=a;b, Signature=<64 hex>"),
 * the signed headers must be lower-case, sorted, unique, present in the
 * request and include host and x-amz-date; the scope date must be the
 * X-Amz-Date day; X-Amz-Content-Sha256, when present, must equal the body
 * hash. The signature is compared in constant time.
 * Returns OK (and fills `who` if non-NULL), EMISSING (no Authorization or
 * X-Amz-Date), EMALFORMED, EUNKNOWN_KEY, ESIGNATURE, ESKEW, ESCOPE. */
hsm_sigv4_err hsm_sigv4_verify(const hsm_sigv4_request *req,
                               const hsm_sigv4_verify_opts *o,
                               hsm_sigv4_identity *who);

/* ---- helpers shared with the providers ------------------------------- */

/* Format `t` as X-Amz-Date (17 bytes incl. NUL). Returns 0 or -1. */
int hsm_sigv4_amz_date(time_t t, char out[17]);
/* Parse an X-Amz-Date; returns 0 and the UTC time, or -1. */
int hsm_sigv4_parse_amz_date(const char *s, time_t *t);
/* Lower-case hex SHA-256 of data into hex (65 bytes). */
void hsm_sigv4_sha256_hex(const uint8_t *data, size_t len, char hex[65]);

#endif
