/* SPDX-License-Identifier: Apache-2.0 */
/* A fake cloud for the tests: one libmicrohttpd server on 127.0.0.1 (a
 * random port, a thread per connection) that plays AWS KMS (+ IMDSv2),
 * GCP Cloud KMS (+ the GCE metadata token), Azure Key Vault (+ managed
 * identity tokens) and the Zymbit agent. It checks every request exactly
 * (method, path, query, headers, JSON fields, and for AWS the SigV4
 * signature with our verifier) and answers with the documented bodies,
 * signing with a real P-256 key it generates.
 *
 * Each failed expectation increments `expect_failures` and keeps the
 * first message in `first_failure`; the server then answers 400 with
 * {"__type": "FakeExpectationFailed"} / {"error": ...}, so a broken client
 * both fails its call and fails the test.
 *
 * THREAD SAFETY: knobs are set by the test thread while no request is in
 * flight; counters are atomic.
 */
#ifndef FAKE_CLOUD_H
#define FAKE_CLOUD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Fixed identities of the fake. */
#define FAKE_AKID         "AKIDFAKEEXAMPLE"
#define FAKE_SECRET       "fake/secret+KEY0123456789abcdefghijklmn"
#define FAKE_IMDS_AKID    "ASIAIMDSFAKE"
#define FAKE_IMDS_SECRET  "imds/secret+0123456789abcdefghijklmnopqr"
#define FAKE_IMDS_TOKEN   "imds-session-token-AQoD"
#define FAKE_IMDS_SESSION "imds-api-token-xyz"
#define FAKE_ROLE         "test-role"
#define FAKE_PASSWORD     "correct horse battery staple"
#define FAKE_BLOB         "fake-ciphertext-blob-0001" /* bytes; sent base64 */
#define FAKE_GCP_TOKEN    "ya29.fake-gcp-token"
#define FAKE_AZ_TOKEN     "eyJ0eXAi.fake-azure-token"
#define FAKE_AZ_ID_HEADER "fake-identity-header-secret"

enum fake_mode {
    FAKE_MODE_OK = 0,
    FAKE_MODE_BAD_JSON,  /* 200 with a body that is not JSON */
    FAKE_MODE_MISSING,   /* 200 without the result field */
    FAKE_MODE_BAD_B64,   /* 200 with a result field that is not base64 */
    FAKE_MODE_OVERSIZE,  /* 200 with a 2 MiB body */
    FAKE_MODE_TOKEN_BAD, /* token endpoints answer without access_token */
};

typedef struct {
    /* behaviour (set before the requests) */
    int throttle_n; /* first n KMS calls: ThrottlingException / 429 */
    int status_n;   /* first n KMS calls answer `status` */
    long status;
    const char *error_type; /* AWS: every KMS call fails with this __type */
    long error_status;      /* GCP/Azure: every KMS call fails with this */
    const char *error_code; /*   and this error code */
    unsigned sleep_ms;      /* delay before every answer */
    enum fake_mode mode;
    long imds_ttl;               /* IMDS credentials lifetime, seconds */
    const char *want_token;      /* AWS: expected X-Amz-Security-Token */
    const char *secret_override; /* AWS: secret the verifier expects */
    const char *want_key;        /* expected KeyId / resource / key path */
    /* observations */
    atomic_int n_kms, n_token, n_imds_token, n_imds_role, n_imds_creds;
    atomic_int expect_failures;
    char first_failure[256];
    char last_path[512];
    char last_key_id[256];
} fake_knobs;

typedef struct fake_cloud fake_cloud;

/* Start on 127.0.0.1 with a fresh P-256 key; NULL on failure. */
fake_cloud *fake_start(void);
/* The same over HTTPS with a fresh self-signed certificate for IP
 * 127.0.0.1 only (no DNS name), written as PEM to `ca_path` so that a
 * client can trust it. NULL on failure or without TLS support in MHD. */
fake_cloud *fake_start_tls(const char *ca_path);
void fake_stop(fake_cloud *fc);
unsigned fake_port(const fake_cloud *fc);
fake_knobs *fake_knobs_of(fake_cloud *fc);
/* Reset knobs and counters. */
void fake_reset(fake_cloud *fc);
/* The key the fake signs with (borrowed). */
EVP_PKEY *fake_key(fake_cloud *fc);
/* "http://127.0.0.1:<port>" + suffix into buf. */
const char *fake_url(const fake_cloud *fc, const char *suffix, char *buf,
                     size_t cap);

#endif
