/* SPDX-License-Identifier: Apache-2.0 */
/* The fake cloud of the tests; see fake_cloud.h. */
#include "fake_cloud.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <hsm/hsm.h>

#include "kc.h"
#include "sigv4.h"

#define MAX_UPLOAD (1u << 20)
#define MAX_HDRS   64

struct fake_cloud {
    struct MHD_Daemon *d;
    char *tls_key, *tls_cert; /* PEM, for MHD */
    unsigned port;
    EVP_PKEY *key;
    atomic_int busy;    /* requests being handled (they read the knobs) */
    pthread_mutex_t mu; /* guards k.last_path and k.last_key_id */
    fake_knobs k;
};

typedef struct {
    char *uri; /* the raw request target, as sent */
    bool started;
    char *body;
    size_t len;
    bool too_big;
} upload;

typedef struct {
    hsm_sigv4_header h[MAX_HDRS];
    size_t n;
} hdr_list;

/* The request as the handlers see it. */
typedef struct {
    fake_cloud *fc;
    struct MHD_Connection *c;
    const char *method, *path;
    const char *raw_path, *raw_query; /* undecoded, for SigV4 */
    const char *body;
    size_t body_len;
    hdr_list hl;
} rq;

typedef struct {
    long status;
    char *body; /* malloc'd */
} rs;

/* ---- helpers ------------------------------------------------------------ */

static void fail(fake_cloud *fc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(fake_cloud *fc, const char *fmt, ...)
{
    va_list ap;

    if (atomic_fetch_add(&fc->k.expect_failures, 1) == 0) {
        va_start(ap, fmt);
        vsnprintf(fc->k.first_failure, sizeof fc->k.first_failure, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "  fake cloud: expectation failed: %s\n",
            fc->k.first_failure);
}

static const char *
header(const rq *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

static const char *
query(const rq *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

static bool
expect_str(fake_cloud *fc, const char *what, const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0)
        return true;
    fail(fc, "%s: got '%.80s', want '%.80s'", what, got ? got : "(none)", want);
    return false;
}

static void
reply(rs *s, long status, json_t *j)
{
    s->status = status;
    s->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
}

static char *
b64(const void *p, size_t n, bool url)
{
    return kc_b64_encode(p, n, url ? KC_B64_URL : KC_B64_STD);
}

/* Decode a base64 JSON string field; NULL if absent or bad. */
static uint8_t *
field_b64(fake_cloud *fc, json_t *o, const char *k, bool url, size_t *len)
{
    json_t *v = json_object_get(o, k);
    uint8_t *d = NULL;

    if (!json_is_string(v) ||
        kc_b64_decode(json_string_value(v), strlen(json_string_value(v)),
                      url ? KC_B64_URL : KC_B64_STD, &d, len) != 0) {
        fail(fc, "field %s missing or not base64", k);
        return NULL;
    }
    return d;
}

static int
sign_digest(EVP_PKEY *key, const uint8_t *d, size_t dl, uint8_t *sig,
            size_t *sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = ctx && EVP_PKEY_sign_init(ctx) > 0 &&
             EVP_PKEY_sign(ctx, sig, sig_len, d, dl) > 0;

    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

static bool
verify_digest(EVP_PKEY *key, const uint8_t *d, size_t dl, const uint8_t *sig,
              size_t sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    bool ok = ctx && EVP_PKEY_verify_init(ctx) > 0 &&
              EVP_PKEY_verify(ctx, sig, sig_len, d, dl) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* The answer for the result field `field` holding `val` (n bytes), as
 * spoilt by the mode knob. */
static void
result_b64(fake_cloud *fc, rs *s, const char *field, const void *val, size_t n,
           bool url, json_t *extra)
{
    json_t *j = extra ? extra : json_object();
    char *v;

    switch (fc->k.mode) {
    case FAKE_MODE_BAD_JSON:
        json_decref(j);
        s->status = 200;
        s->body = strdup("{\"oops\": ");
        return;
    case FAKE_MODE_MISSING:
        json_object_set_new(j, "Other", json_string("x"));
        break;
    case FAKE_MODE_BAD_B64:
        json_object_set_new(j, field, json_string("!!not*base64!!"));
        break;
    case FAKE_MODE_OVERSIZE: {
        size_t big = (size_t)2 << 20;
        char *p = malloc(big + 1);

        json_decref(j);
        if (p) {
            memset(p, 'A', big);
            p[0] = '{';
            p[big] = '\0';
        }
        s->status = 200;
        s->body = p;
        return;
    }
    default:
        v = b64(val, n, url);
        json_object_set_new(j, field, json_string(v ? v : ""));
        free(v);
        break;
    }
    reply(s, 200, j);
}

/* ---- AWS: IMDSv2 -----------------------------------------------------------
 */

static void
aws_imds(rq *r, rs *s)
{
    fake_cloud *fc = r->fc;
    const char *role_path = "/latest/meta-data/iam/security-credentials/";

    if (strcmp(r->path, "/latest/api/token") == 0) {
        atomic_fetch_add(&fc->k.n_imds_token, 1);
        if (strcmp(r->method, "PUT") != 0 ||
            !header(r, "X-aws-ec2-metadata-token-ttl-seconds")) {
            fail(fc, "IMDS token: want PUT with a TTL header");
            s->status = 400;
            return;
        }
        s->status = 200;
        s->body = strdup(FAKE_IMDS_SESSION);
        return;
    }
    if (!expect_str(fc, "IMDS session header",
                    header(r, "X-aws-ec2-metadata-token"), FAKE_IMDS_SESSION) ||
        strcmp(r->method, "GET") != 0) {
        s->status = 401;
        return;
    }
    if (strcmp(r->path, role_path) == 0) {
        atomic_fetch_add(&fc->k.n_imds_role, 1);
        s->status = 200;
        s->body = strdup(FAKE_ROLE "\n");
        return;
    }
    if (strncmp(r->path, role_path, strlen(role_path)) == 0 &&
        strcmp(r->path + strlen(role_path), FAKE_ROLE) == 0) {
        char exp[32];
        time_t t = time(NULL) + (fc->k.imds_ttl ? fc->k.imds_ttl : 3600);
        struct tm tm;

        atomic_fetch_add(&fc->k.n_imds_creds, 1);
        gmtime_r(&t, &tm);
        strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        reply(s, 200,
              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "Code", "Success",
                        "Type", "AWS-HMAC", "AccessKeyId", FAKE_IMDS_AKID,
                        "SecretAccessKey", FAKE_IMDS_SECRET, "Token",
                        FAKE_IMDS_TOKEN, "Expiration", exp));
        return;
    }
    s->status = 404;
}

/* ---- AWS: KMS ---------------------------------------------------------------
 */

static int
lookup(void *ctx, const char *akid, char *secret, size_t cap, size_t *len)
{
    fake_cloud *fc = ctx;
    const char *s = NULL;

    if (strcmp(akid, FAKE_AKID) == 0)
        s = fc->k.secret_override ? fc->k.secret_override : FAKE_SECRET;
    else if (strcmp(akid, FAKE_IMDS_AKID) == 0)
        s = FAKE_IMDS_SECRET;
    if (!s)
        return -1;
    *len = strlen(s);
    return kc_strlcpy(secret, s, cap);
}

static void
aws_error(rs *s, long status, const char *type, const char *msg)
{
    reply(s, status, json_pack("{s:s, s:s}", "__type", type, "message", msg));
}

static bool
aws_check(rq *r, rs *s, const char **op)
{
    fake_cloud *fc = r->fc;
    hsm_sigv4_request q = {
        .method = r->method,
        .path = r->raw_path,
        .query = r->raw_query,
        .headers = r->hl.h,
        .header_count = r->hl.n,
        .body = (const uint8_t *)r->body,
        .body_len = r->body_len,
    };
    hsm_sigv4_verify_opts o = {
        .lookup = lookup,
        .lookup_ctx = fc,
        .region = "us-east-1",
        .service = "kms",
        .now = time(NULL),
    };
    const char *target = header(r, "X-Amz-Target");
    const char *tok = header(r, "X-Amz-Security-Token");
    hsm_sigv4_identity who;
    hsm_sigv4_err e;

    if (!expect_str(fc, "method", r->method, "POST") ||
        !expect_str(fc, "path", r->path, "/") ||
        !expect_str(fc, "content-type", header(r, "Content-Type"),
                    "application/x-amz-json-1.1") ||
        !target || strncmp(target, "TrentService.", 13) != 0) {
        aws_error(s, 400, "FakeExpectationFailed", "bad request shape");
        return false;
    }
    *op = target + 13;
    if ((e = hsm_sigv4_verify(&q, &o, &who)) != HSM_SIGV4_OK) {
        fail(fc, "SigV4 verification: %s", hsm_sigv4_strerror(e));
        aws_error(s, 400, "InvalidSignatureException", hsm_sigv4_strerror(e));
        return false;
    }
    if (fc->k.want_token &&
        (!expect_str(fc, "session token", tok, fc->k.want_token) ||
         !who.signed_session_token)) {
        aws_error(s, 400, "FakeExpectationFailed", "token");
        return false;
    }
    if (!fc->k.want_token && tok && strcmp(who.access_key_id, FAKE_AKID) == 0) {
        fail(fc, "unexpected session token");
        aws_error(s, 400, "FakeExpectationFailed", "token");
        return false;
    }
    return true;
}

static void
aws_decrypt(rq *r, json_t *in, rs *s)
{
    fake_cloud *fc = r->fc;
    size_t n = 0;
    uint8_t *blob = field_b64(fc, in, "CiphertextBlob", false, &n);

    if (!blob || n != strlen(FAKE_BLOB) || memcmp(blob, FAKE_BLOB, n) != 0) {
        if (blob)
            fail(fc, "Decrypt: wrong CiphertextBlob");
        aws_error(s, 400, "InvalidCiphertextException", "bad blob");
    } else {
        result_b64(fc, s, "Plaintext", FAKE_PASSWORD, strlen(FAKE_PASSWORD),
                   false,
                   json_pack("{s:s, s:s}", "KeyId", "arn:aws:kms:fake",
                             "EncryptionAlgorithm", "SYMMETRIC_DEFAULT"));
    }
    free(blob);
}

static bool
aws_digest_fields(fake_cloud *fc, json_t *in)
{
    return expect_str(fc, "MessageType",
                      json_string_value(json_object_get(in, "MessageType")),
                      "DIGEST") &&
           expect_str(
               fc, "SigningAlgorithm",
               json_string_value(json_object_get(in, "SigningAlgorithm")),
               "ECDSA_SHA_256");
}

static void
aws_sign(rq *r, json_t *in, rs *s)
{
    fake_cloud *fc = r->fc;
    size_t n = 0, sl = 128;
    uint8_t *m = NULL, sig[128];

    if (!aws_digest_fields(fc, in) ||
        !(m = field_b64(fc, in, "Message", false, &n)) || n != 32 ||
        sign_digest(fc->key, m, n, sig, &sl) != 0) {
        aws_error(s, 400, "ValidationException", "bad Sign request");
    } else {
        result_b64(fc, s, "Signature", sig, sl, false,
                   json_pack("{s:s, s:s}", "KeyId", "arn:aws:kms:fake",
                             "SigningAlgorithm", "ECDSA_SHA_256"));
    }
    free(m);
}

static void
aws_verify(rq *r, json_t *in, rs *s)
{
    fake_cloud *fc = r->fc;
    size_t n = 0, sl = 0;
    uint8_t *m = NULL, *sig = NULL;

    if (!aws_digest_fields(fc, in) ||
        !(m = field_b64(fc, in, "Message", false, &n)) || n != 32 ||
        !(sig = field_b64(fc, in, "Signature", false, &sl))) {
        aws_error(s, 400, "ValidationException", "bad Verify request");
    } else if (!verify_digest(fc->key, m, n, sig, sl)) {
        aws_error(s, 400, "KMSInvalidSignatureException", "invalid");
    } else {
        reply(s, 200,
              json_pack("{s:s, s:b, s:s}", "KeyId", "arn:aws:kms:fake",
                        "SignatureValid", 1, "SigningAlgorithm",
                        "ECDSA_SHA_256"));
    }
    free(m);
    free(sig);
}

static void
aws_public_key(rq *r, rs *s)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(r->fc->key, &der);

    result_b64(r->fc, s, "PublicKey", der, n > 0 ? (size_t)n : 0, false,
               json_pack("{s:s, s:s, s:s}", "KeyId", "arn:aws:kms:fake",
                         "KeySpec", "ECC_NIST_P256", "KeyUsage",
                         "SIGN_VERIFY"));
    OPENSSL_free(der);
}

static void
aws_kms(rq *r, rs *s)
{
    fake_cloud *fc = r->fc;
    const char *op = NULL;
    json_t *in = NULL, *kid;
    int nth;

    if (!aws_check(r, s, &op))
        return;
    nth = atomic_fetch_add(&fc->k.n_kms, 1);
    if (nth < fc->k.throttle_n) {
        aws_error(s, 400, "ThrottlingException", "Rate exceeded");
        return;
    }
    if (nth < fc->k.status_n) {
        aws_error(s, fc->k.status, "KMSInternalException", "internal");
        return;
    }
    if (fc->k.error_type) {
        aws_error(s, 400, fc->k.error_type, "the fake says no");
        return;
    }
    in = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(in)) {
        fail(fc, "AWS body is not a JSON object");
        aws_error(s, 400, "SerializationException", "bad JSON");
        json_decref(in);
        return;
    }
    kid = json_object_get(in, "KeyId");
    pthread_mutex_lock(&fc->mu);
    snprintf(fc->k.last_key_id, sizeof fc->k.last_key_id, "%s",
             json_is_string(kid) ? json_string_value(kid) : "");
    pthread_mutex_unlock(&fc->mu);
    if (fc->k.want_key &&
        !expect_str(fc, "KeyId",
                    json_is_string(kid) ? json_string_value(kid) : "",
                    fc->k.want_key))
        aws_error(s, 400, "NotFoundException", "wrong key");
    else if (strcmp(op, "Decrypt") == 0)
        aws_decrypt(r, in, s);
    else if (strcmp(op, "Sign") == 0)
        aws_sign(r, in, s);
    else if (strcmp(op, "Verify") == 0)
        aws_verify(r, in, s);
    else if (strcmp(op, "GetPublicKey") == 0)
        aws_public_key(r, s);
    else
        aws_error(s, 400, "UnknownOperationException", op);
    json_decref(in);
}

/* ---- tokens: GCE metadata, Azure managed identity
 * ---------------------------- */

static void
token_reply(fake_cloud *fc, rs *s, json_t *j)
{
    atomic_fetch_add(&fc->k.n_token, 1);
    if (fc->k.mode == FAKE_MODE_TOKEN_BAD)
        json_object_del(j, "access_token");
    reply(s, 200, j);
}

static void
gcp_token(rq *r, rs *s)
{
    fake_cloud *fc = r->fc;

    if (!expect_str(fc, "method", r->method, "GET") ||
        !expect_str(fc, "Metadata-Flavor", header(r, "Metadata-Flavor"),
                    "Google")) {
        s->status = 403;
        return;
    }
    token_reply(fc, s,
                json_pack("{s:s, s:i, s:s}", "access_token", FAKE_GCP_TOKEN,
                          "expires_in", 3599, "token_type", "Bearer"));
}

static void
azure_token(rq *r, rs *s, bool app_service)
{
    fake_cloud *fc = r->fc;
    char exp[32];

    if (!expect_str(fc, "method", r->method, "GET") ||
        !expect_str(fc, "resource", query(r, "resource"),
                    "https://vault.azure.net") ||
        !expect_str(fc, "api-version", query(r, "api-version"),
                    app_service ? "2019-08-01" : "2018-02-01") ||
        (app_service
             ? !expect_str(fc, "X-IDENTITY-HEADER",
                           header(r, "X-IDENTITY-HEADER"), FAKE_AZ_ID_HEADER)
             : !expect_str(fc, "Metadata", header(r, "Metadata"), "true"))) {
        s->status = 400;
        return;
    }
    snprintf(exp, sizeof exp, "%lld", (long long)time(NULL) + 3600);
    /* App Service gives expires_on only; IMDS gives both, as strings. */
    token_reply(fc, s,
                app_service
                    ? json_pack("{s:s, s:s, s:s, s:s}", "access_token",
                                FAKE_AZ_TOKEN, "expires_on", exp, "resource",
                                "https://vault.azure.net", "token_type",
                                "Bearer")
                    : json_pack("{s:s, s:s, s:s, s:s}", "access_token",
                                FAKE_AZ_TOKEN, "expires_in", "3599",
                                "expires_on", exp, "token_type", "Bearer"));
}

/* Shared checks of GCP and Azure KMS calls; false when answered. */
static bool
bearer_checks(rq *r, rs *s, const char *token)
{
    fake_cloud *fc = r->fc;
    char want[128];
    int nth;

    snprintf(want, sizeof want, "Bearer %s", token);
    if (!expect_str(fc, "Authorization", header(r, "Authorization"), want)) {
        reply(s, 401,
              json_pack("{s:{s:i, s:s, s:s}}", "error", "code", 401, "message",
                        "no token", "status", "UNAUTHENTICATED"));
        return false;
    }
    pthread_mutex_lock(&fc->mu);
    snprintf(fc->k.last_path, sizeof fc->k.last_path, "%s", r->path);
    pthread_mutex_unlock(&fc->mu);
    nth = atomic_fetch_add(&fc->k.n_kms, 1);
    if (nth < fc->k.throttle_n || nth < fc->k.status_n || fc->k.error_status) {
        long st = nth < fc->k.throttle_n ? 429
                  : nth < fc->k.status_n ? fc->k.status
                                         : fc->k.error_status;
        const char *code = fc->k.error_code ? fc->k.error_code : "Throttled";

        reply(s, st,
              json_pack("{s:{s:i, s:s, s:s, s:s}}", "error", "code", (int)st,
                        "message", "the fake says no", "status", code, "code",
                        code));
        return false;
    }
    return true;
}

/* ---- GCP Cloud KMS
 * ------------------------------------------------------------ */

static void
gcp_kms(rq *r, rs *s)
{
    fake_cloud *fc = r->fc;
    const char *colon = strrchr(r->path, ':');
    json_t *in = NULL;

    if (!bearer_checks(r, s, FAKE_GCP_TOKEN))
        return;
    if (strcmp(r->method, "GET") == 0 && strlen(r->path) > 10 &&
        strcmp(r->path + strlen(r->path) - 10, "/publicKey") == 0) {
        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL;
        long n;

        PEM_write_bio_PUBKEY(b, fc->key);
        n = BIO_get_mem_data(b, &pem);
        if (fc->k.mode == FAKE_MODE_BAD_B64)
            reply(s, 200, json_pack("{s:s}", "pem", "-----BEGIN junk"));
        else
            reply(s, 200,
                  json_pack("{s:s%, s:s}", "pem", pem, (size_t)n, "algorithm",
                            "EC_SIGN_P256_SHA256"));
        BIO_free(b);
        return;
    }
    in = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!expect_str(fc, "method", r->method, "POST") || !colon ||
        !json_is_object(in) ||
        !expect_str(fc, "content-type", header(r, "Content-Type"),
                    "application/json")) {
        reply(s, 400,
              json_pack("{s:{s:i,s:s}}", "error", "code", 400, "message",
                        "bad request"));
    } else if (strcmp(colon, ":decrypt") == 0) {
        size_t n = 0;
        uint8_t *blob = field_b64(fc, in, "ciphertext", false, &n);

        if (blob && n == strlen(FAKE_BLOB) && memcmp(blob, FAKE_BLOB, n) == 0)
            result_b64(fc, s, "plaintext", FAKE_PASSWORD, strlen(FAKE_PASSWORD),
                       false, NULL);
        else
            reply(s, 400,
                  json_pack("{s:{s:i,s:s,s:s}}", "error", "code", 400,
                            "message", "Decryption failed", "status",
                            "INVALID_ARGUMENT"));
        free(blob);
    } else if (strcmp(colon, ":asymmetricSign") == 0) {
        json_t *dg = json_object_get(in, "digest");
        size_t n = 0, sl = 128;
        uint8_t *d =
            json_is_object(dg) ? field_b64(fc, dg, "sha256", false, &n) : NULL;
        uint8_t sig[128];

        if (d && n == 32 && sign_digest(fc->key, d, n, sig, &sl) == 0)
            result_b64(fc, s, "signature", sig, sl, false, NULL);
        else
            reply(s, 400,
                  json_pack("{s:{s:i,s:s}}", "error", "code", 400, "message",
                            "bad digest"));
        free(d);
    } else {
        reply(s, 404,
              json_pack("{s:{s:i,s:s}}", "error", "code", 404, "message",
                        "no such method"));
    }
    json_decref(in);
}

/* ---- Azure Key Vault
 * ------------------------------------------------------------- */

static void
azure_vault(rq *r, rs *s)
{
    fake_cloud *fc = r->fc;
    const char *op = strrchr(r->path, '/');
    json_t *in = NULL;

    if (!expect_str(fc, "api-version", query(r, "api-version"), "7.4") ||
        !bearer_checks(r, s, FAKE_AZ_TOKEN))
        return;
    if (strcmp(r->method, "GET") == 0) {
        uint8_t pt[65];
        size_t n = 0;
        char *x, *y;

        EVP_PKEY_get_octet_string_param(fc->key, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                        sizeof pt, &n);
        x = b64(pt + 1, 32, true);
        y = b64(pt + 33, 32, true);
        reply(s, 200,
              json_pack("{s:{s:s, s:s, s:s, s:s, s:s}}", "key", "kid",
                        "https://fake/keys/k/v", "kty", "EC", "crv", "P-256",
                        "x", fc->k.mode == FAKE_MODE_BAD_B64 ? "*" : x, "y",
                        y));
        free(x);
        free(y);
        return;
    }
    in = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(in) ||
        !expect_str(fc, "content-type", header(r, "Content-Type"),
                    "application/json")) {
        reply(s, 400,
              json_pack("{s:{s:s,s:s}}", "error", "code", "BadParameter",
                        "message", "bad body"));
    } else if (strcmp(op, "/unwrapkey") == 0) {
        size_t n = 0;
        uint8_t *blob = field_b64(fc, in, "value", true, &n);

        expect_str(fc, "alg", json_string_value(json_object_get(in, "alg")),
                   "RSA-OAEP-256");
        if (blob && n == strlen(FAKE_BLOB) && memcmp(blob, FAKE_BLOB, n) == 0)
            result_b64(fc, s, "value", FAKE_PASSWORD, strlen(FAKE_PASSWORD),
                       true, json_pack("{s:s}", "kid", "https://fake/keys/k"));
        else
            reply(s, 400,
                  json_pack("{s:{s:s,s:s}}", "error", "code", "BadParameter",
                            "message", "bad blob"));
        free(blob);
    } else if (strcmp(op, "/sign") == 0) {
        size_t n = 0, sl = 128, rl = 0;
        uint8_t *d = field_b64(fc, in, "value", true, &n), sig[128], raw[64];

        expect_str(fc, "alg", json_string_value(json_object_get(in, "alg")),
                   "ES256");
        if (d && n == 32 && sign_digest(fc->key, d, n, sig, &sl) == 0 &&
            hsm_ecdsa_der_to_raw(sig, sl, 32, raw, sizeof raw, &rl) == HSM_OK)
            result_b64(fc, s, "value", raw, rl, true,
                       json_pack("{s:s}", "kid", "https://fake/keys/k"));
        else
            reply(s, 400,
                  json_pack("{s:{s:s,s:s}}", "error", "code", "BadParameter",
                            "message", "bad digest"));
        free(d);
    } else if (strcmp(op, "/verify") == 0) {
        size_t n = 0, rl = 0, dl = 0;
        uint8_t *d = field_b64(fc, in, "digest", true, &n);
        uint8_t *raw = field_b64(fc, in, "value", true, &rl), der[80];
        bool ok =
            d && raw && n == 32 &&
            hsm_ecdsa_raw_to_der(raw, rl, der, sizeof der, &dl) == HSM_OK &&
            verify_digest(fc->key, d, n, der, dl);

        reply(s, 200, json_pack("{s:b}", "value", ok));
        free(d);
        free(raw);
    } else {
        reply(s, 404,
              json_pack("{s:{s:s,s:s}}", "error", "code", "NotFound", "message",
                        "no such operation"));
    }
    json_decref(in);
}

/* ---- Zymbit agent
 * ------------------------------------------------------------------ */

static void
zymbit(rq *r, rs *s)
{
    fake_cloud *fc = r->fc;
    json_t *in = json_loadb(r->body, r->body_len, 0, NULL);
    size_t n = 0, sl = 128;
    uint8_t *d = NULL, *sig = NULL, buf[128];

    atomic_fetch_add(&fc->k.n_kms, 1);
    if (!json_is_object(in) || !expect_str(fc, "method", r->method, "POST") ||
        !expect_str(fc, "slot", json_string_value(json_object_get(in, "slot")),
                    fc->k.want_key ? fc->k.want_key : "7") ||
        !(d = field_b64(fc, in, "digest", false, &n)) || n != 32) {
        reply(s, 400, json_pack("{s:s}", "error", "bad request"));
    } else if (strcmp(r->path, "/sign") == 0 &&
               sign_digest(fc->key, d, n, buf, &sl) == 0) {
        result_b64(fc, s, "signature", buf, sl, false, NULL);
    } else if (strcmp(r->path, "/verify") == 0 &&
               (sig = field_b64(fc, in, "signature", false, &sl))) {
        reply(
            s, 200,
            json_pack("{s:b}", "valid", verify_digest(fc->key, d, n, sig, sl)));
    } else {
        reply(s, 404, json_pack("{s:s}", "error", "not found"));
    }
    free(d);
    free(sig);
    json_decref(in);
}

/* ---- MHD plumbing
 * -------------------------------------------------------------------- */

static enum MHD_Result
collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
               const char *value)
{
    hdr_list *hl = cls;

    (void)kind;
    if (hl->n < MAX_HDRS)
        hl->h[hl->n++] = (hsm_sigv4_header){key, value ? value : ""};
    return MHD_YES;
}

static void
dispatch(rq *r, rs *s)
{
    const char *p = r->path;

    if (strncmp(p, "/latest/", 8) == 0)
        aws_imds(r, s);
    else if (strcmp(p, "/computeMetadata/v1/instance/service-accounts/default/"
                       "token") == 0)
        gcp_token(r, s);
    else if (strcmp(p, "/msi/token") == 0)
        azure_token(r, s, true);
    else if (strcmp(p, "/metadata/identity/oauth2/token") == 0)
        azure_token(r, s, false);
    else if (strncmp(p, "/v1/projects/", 13) == 0)
        gcp_kms(r, s);
    else if (strncmp(p, "/keys/", 6) == 0)
        azure_vault(r, s);
    else if (strcmp(p, "/sign") == 0 || strcmp(p, "/verify") == 0)
        zymbit(r, s);
    else if (header(r, "X-Amz-Target"))
        aws_kms(r, s);
    else
        s->status = 404;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **con_cls)
{
    fake_cloud *fc = cls;
    upload *u = *con_cls;
    struct MHD_Response *resp;
    rq r;
    rs s = {404, NULL};
    enum MHD_Result ret;

    (void)version;
    if (!u)
        return MHD_NO; /* uri_log always creates it */
    if (!u->started) {
        u->started = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        char *nb;

        if (u->len + *upload_data_size > MAX_UPLOAD ||
            !(nb = realloc(u->body, u->len + *upload_data_size + 1))) {
            u->too_big = true;
        } else {
            u->body = nb;
            memcpy(u->body + u->len, upload_data, *upload_data_size);
            u->len += *upload_data_size;
            u->body[u->len] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    memset(&r, 0, sizeof r);
    r.fc = fc;
    r.c = c;
    r.method = method;
    r.path = url;
    {
        char *q = strchr(u->uri, '?');

        if (q)
            *q++ = '\0';
        r.raw_path = u->uri;
        r.raw_query = q;
    }
    r.body = u->body ? u->body : "";
    r.body_len = u->len;
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, &r.hl);
    atomic_fetch_add(&fc->busy, 1);
    if (fc->k.sleep_ms)
        usleep(fc->k.sleep_ms * 1000u);
    dispatch(&r, &s);
    atomic_fetch_sub(&fc->busy, 1);
    resp = MHD_create_response_from_buffer(s.body ? strlen(s.body) : 0,
                                           s.body ? s.body : (void *)"",
                                           MHD_RESPMEM_MUST_COPY);
    free(s.body);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(c, (unsigned)s.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void
on_done(void *cls, struct MHD_Connection *c, void **con_cls,
        enum MHD_RequestTerminationCode toe)
{
    upload *u = *con_cls;

    (void)cls, (void)c, (void)toe;
    if (u) {
        free(u->uri);
        free(u->body);
        free(u);
    }
    *con_cls = NULL;
}

/* Keep the request target exactly as sent (MHD decodes `url`). */
static void *
uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    upload *u = calloc(1, sizeof *u);

    (void)cls, (void)c;
    if (u && !(u->uri = strdup(uri ? uri : "/"))) {
        free(u);
        u = NULL;
    }
    return u;
}

static char *
bio_string(BIO *b)
{
    char *p = NULL, *s;
    long n = BIO_get_mem_data(b, &p);

    if (n <= 0 || !(s = malloc((size_t)n + 1)))
        return NULL;
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

/* A self-signed certificate for IP:127.0.0.1, valid for a day. */
static int
make_cert(fake_cloud *fc, const char *ca_path)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *nm;
    X509_EXTENSION *ext = NULL;
    X509V3_CTX v3;
    BIO *bk = BIO_new(BIO_s_mem()), *bc = BIO_new(BIO_s_mem());
    FILE *f = NULL;
    int rc = -1;

    if (!k || !x || !bk || !bc || !X509_set_version(x, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 86400) ||
        !X509_set_pubkey(x, k) || !(nm = X509_get_subject_name(x)) ||
        !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"fake cloud", -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, nm))
        goto out;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (!(ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                    "IP:127.0.0.1")) ||
        !X509_add_ext(x, ext, -1) || !X509_sign(x, k, EVP_sha256()) ||
        !PEM_write_bio_PrivateKey(bk, k, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(bc, x) || !(fc->tls_key = bio_string(bk)) ||
        !(fc->tls_cert = bio_string(bc)) || !(f = fopen(ca_path, "w")) ||
        fputs(fc->tls_cert, f) < 0)
        goto out;
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    X509_EXTENSION_free(ext);
    BIO_free(bk);
    BIO_free(bc);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static fake_cloud *
start(const char *ca_path)
{
    fake_cloud *fc = calloc(1, sizeof *fc);
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sa;
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;

    if (!fc)
        return NULL;
    pthread_mutex_init(&fc->mu, NULL);
    if (!(fc->key = EVP_EC_gen("P-256")))
        goto fail;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (ca_path) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
            make_cert(fc, ca_path) != 0)
            goto fail;
        flags |= MHD_USE_TLS;
        fc->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, fc, MHD_OPTION_SOCK_ADDR, &sa,
            MHD_OPTION_NOTIFY_COMPLETED, on_done, fc,
            MHD_OPTION_URI_LOG_CALLBACK, uri_log, fc,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
            MHD_OPTION_HTTPS_MEM_KEY, fc->tls_key, MHD_OPTION_HTTPS_MEM_CERT,
            fc->tls_cert, MHD_OPTION_END);
    } else {
        fc->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, fc, MHD_OPTION_SOCK_ADDR, &sa,
            MHD_OPTION_NOTIFY_COMPLETED, on_done, fc,
            MHD_OPTION_URI_LOG_CALLBACK, uri_log, fc,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    }
    if (!fc->d ||
        !(info = MHD_get_daemon_info(fc->d, MHD_DAEMON_INFO_BIND_PORT)))
        goto fail;
    fc->port = info->port;
    return fc;
fail:
    fake_stop(fc);
    return NULL;
}

fake_cloud *
fake_start(void)
{
    return start(NULL);
}

fake_cloud *
fake_start_tls(const char *ca_path)
{
    return start(ca_path);
}

void
fake_stop(fake_cloud *fc)
{
    if (!fc)
        return;
    if (fc->d)
        MHD_stop_daemon(fc->d);
    EVP_PKEY_free(fc->key);
    free(fc->tls_key);
    free(fc->tls_cert);
    pthread_mutex_destroy(&fc->mu);
    free(fc);
}

unsigned
fake_port(const fake_cloud *fc)
{
    return fc->port;
}

fake_knobs *
fake_knobs_of(fake_cloud *fc)
{
    return &fc->k;
}

void
fake_reset(fake_cloud *fc)
{
    /* A request the client gave up on (timeout tests) may still be in a
     * handler: let it finish before the knobs change under it. */
    for (int i = 0; i < 500 && atomic_load(&fc->busy) > 0; i++)
        usleep(10000);
    memset(&fc->k, 0, sizeof fc->k);
}

EVP_PKEY *
fake_key(fake_cloud *fc)
{
    return fc->key;
}

const char *
fake_url(const fake_cloud *fc, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://127.0.0.1:%u%s", fc->port, suffix);
    return buf;
}
