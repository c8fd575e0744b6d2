/* SPDX-License-Identifier: Apache-2.0 */
/* Cloud KMS providers against the fake cloud (fake_cloud.c): AWS KMS with
 * SigV4 and IMDSv2, GCP Cloud KMS, Azure Key Vault, Zymbit; plus the HTTP
 * client's policy and the response parsers. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <hsm/hsm.h>

#include "cloud_parse.h"
#include "fake_cloud.h"
#include "http.h"
#include "kc.h"
#include "testutil.h"

static fake_cloud *fc;
static char detail[512];

static const char *const env_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL",
    "ZAPDB_ENCRYPTED_PASSWORD",
    "MPC_HSM_KEY_ID",
    "GCE_METADATA_HOST",
    "GCP_KMS_ENDPOINT",
    "GCP_PROJECT_ID",
    "GCP_KMS_LOCATION",
    "GCP_KMS_KEYRING",
    "GCP_KMS_KEY",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_IMDS_ENDPOINT",
    "AZURE_VAULT_URL",
    "AZURE_KEY_NAME",
    "AZURE_KEY_VERSION",
    "MPC_HSM_ZYMBIT_API",
};

/* A clean environment, a reset fake, the encrypted password set. */
static fake_knobs *
setup(void)
{
    char *blob = kc_b64_encode((const uint8_t *)FAKE_BLOB, strlen(FAKE_BLOB),
                               KC_B64_STD);

    for (size_t i = 0; i < KT_COUNT(env_vars); i++)
        unsetenv(env_vars[i]);
    REQUIRE(fc && blob);
    setenv("ZAPDB_ENCRYPTED_PASSWORD", blob, 1);
    free(blob);
    fake_reset(fc);
    detail[0] = '\0';
    return fake_knobs_of(fc);
}

static void
set_aws_env(void)
{
    setenv("AWS_ACCESS_KEY_ID", FAKE_AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET, 1);
}

/* Config with the fake as endpoint and quick retries. */
static hsm_config *
aws_config(void)
{
    hsm_config *c = NULL;
    char url[128];

    REQUIRE(hsm_config_new(&c) == HSM_OK);
    hsm_config_set(c, "endpoint", fake_url(fc, "/", url, sizeof url));
    hsm_config_set(c, "retry_base_ms", "1");
    hsm_config_set(c, "timeout_ms", "5000");
    return c;
}

static hsm_err
get_password(const char *provider, hsm_config *cfg, hsm_secret **sec)
{
    hsm_password_provider *p = NULL;
    hsm_err rc;

    *sec = NULL;
    rc = hsm_password_provider_new_ex(provider, cfg, &p, detail, sizeof detail);
    if (rc != HSM_OK)
        return rc;
    rc = hsm_password_get(p, NULL, sec);
    if (rc != HSM_OK)
        kc_strlcpy(detail, hsm_password_provider_last_error(p), sizeof detail);
    hsm_password_provider_free(p);
    return rc;
}

static bool
is_password(const hsm_secret *s)
{
    return s && s->len == strlen(FAKE_PASSWORD) &&
           memcmp(s->data, FAKE_PASSWORD, s->len) == 0;
}

/* Verify a DER ECDSA signature over SHA-256(msg) with the fake's key,
 * using OpenSSL only. */
static bool
openssl_verifies(const uint8_t *msg, size_t n, const uint8_t *sig, size_t sl)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx &&
              EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
                                   fake_key(fc)) == 1 &&
              EVP_DigestVerify(ctx, sig, sl, msg, n) == 1;

    EVP_MD_CTX_free(ctx);
    return ok;
}

static bool
spki_is_fake_key(const uint8_t *der, size_t n)
{
    unsigned char *mine = NULL;
    int ml = i2d_PUBKEY(fake_key(fc), &mine);
    bool eq = ml > 0 && (size_t)ml == n && memcmp(mine, der, n) == 0;

    OPENSSL_free(mine);
    return eq;
}

/* Sign, check with OpenSSL, verify through the provider (valid and
 * tampered), and compare the public key. */
static void
signer_roundtrip(const char *provider, hsm_config *cfg, const char *key_id,
                 bool check_pubkey)
{
    static const uint8_t msg[] = "attested key share 0001";
    hsm_signer *s = NULL;
    uint8_t *sig = NULL, *der = NULL, bad[sizeof msg];
    size_t sl = 0, dl = 0;
    bool valid = false;
    hsm_err rc;

    rc = hsm_signer_new_ex(provider, cfg, NULL, &s, detail, sizeof detail);
    if (rc != HSM_OK)
        fprintf(stderr, "  %s: %s\n", provider, detail);
    REQUIRE(rc == HSM_OK);
    CHECK_EQ(hsm_signer_algorithm(s), HSM_ALG_ECDSA_P256_SHA256);
    rc = hsm_signer_sign(s, key_id, msg, sizeof msg, &sig, &sl);
    if (rc != HSM_OK)
        fprintf(stderr, "  sign: %s\n", hsm_signer_last_error(s));
    CHECK_EQ(rc, HSM_OK);
    if (rc == HSM_OK) {
        CHECK(openssl_verifies(msg, sizeof msg, sig, sl));
        CHECK_EQ(hsm_signer_verify(s, key_id, msg, sizeof msg, sig, sl, &valid),
                 HSM_OK);
        CHECK(valid);
        memcpy(bad, msg, sizeof msg);
        bad[0] ^= 1;
        valid = true;
        CHECK_EQ(hsm_signer_verify(s, key_id, bad, sizeof bad, sig, sl, &valid),
                 HSM_OK);
        CHECK(!valid);
    }
    if (check_pubkey) {
        CHECK_EQ(hsm_signer_public_key(s, key_id, &der, &dl), HSM_OK);
        CHECK(der && spki_is_fake_key(der, dl));
    }
    hsm_free(sig);
    hsm_free(der);
    hsm_signer_free(s);
}

/* ---- AWS ------------------------------------------------------------------
 */

static void
test_aws_password_env_credentials_decrypts(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    hsm_config_set(cfg, "key_id", "alias/zapdb");
    k->want_key = "alias/zapdb";
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_OK);
    CHECK(is_password(sec));
    CHECK_EQ(atomic_load(&k->n_kms), 1);
    CHECK_EQ(atomic_load(&k->n_imds_token), 0);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_secret_free(sec);
    hsm_config_free(cfg);
}

static void
test_aws_password_session_token_signed(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE//token+=", 1);
    k->want_token = "FwoGZXIvYXdzEXAMPLE//token+=";
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_OK);
    CHECK(is_password(sec));
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_secret_free(sec);
    hsm_config_free(cfg);
}

static void
test_aws_imds_credentials_fetched_once_and_cached(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_password_provider *p = NULL;
    hsm_secret *sec = NULL;
    char url[128];

    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT",
           fake_url(fc, "", url, sizeof url), 1);
    k->want_token = FAKE_IMDS_TOKEN;
    REQUIRE(hsm_password_provider_new_ex("aws", cfg, &p, detail,
                                         sizeof detail) == HSM_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(hsm_password_get(p, NULL, &sec), HSM_OK);
        CHECK(is_password(sec));
        hsm_secret_free(sec);
        sec = NULL;
    }
    CHECK_EQ(atomic_load(&k->n_kms), 2);
    CHECK_EQ(atomic_load(&k->n_imds_token), 1);
    CHECK_EQ(atomic_load(&k->n_imds_role), 1);
    CHECK_EQ(atomic_load(&k->n_imds_creds), 1);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_password_provider_free(p);
    hsm_config_free(cfg);
}

typedef struct {
    hsm_password_provider *p;
    atomic_int ok;
} par_ctx;

static void *
par_get(void *arg)
{
    par_ctx *c = arg;

    for (int i = 0; i < 3; i++) {
        hsm_secret *sec = NULL;

        if (hsm_password_get(c->p, NULL, &sec) == HSM_OK && is_password(sec))
            atomic_fetch_add(&c->ok, 1);
        hsm_secret_free(sec);
    }
    return NULL;
}

/* One provider used by four threads at once: every call succeeds and the
 * instance credentials are fetched once (the cache is shared and locked). */
static void
test_aws_imds_concurrent_calls_fetch_once(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    par_ctx c = {0};
    pthread_t t[4];
    char url[128];

    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT",
           fake_url(fc, "", url, sizeof url), 1);
    k->want_token = FAKE_IMDS_TOKEN;
    REQUIRE(hsm_password_provider_new_ex("aws", cfg, &c.p, detail,
                                         sizeof detail) == HSM_OK);
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&t[i], NULL, par_get, &c) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(atomic_load(&c.ok), 12);
    CHECK_EQ(atomic_load(&k->n_kms), 12);
    CHECK_EQ(atomic_load(&k->n_imds_creds), 1);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_password_provider_free(c.p);
    hsm_config_free(cfg);
}

static void
test_aws_imds_credentials_near_expiry_refreshed(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_password_provider *p = NULL;
    hsm_secret *sec = NULL;
    char url[128];

    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT",
           fake_url(fc, "/", url, sizeof url), 1);
    k->want_token = FAKE_IMDS_TOKEN;
    k->imds_ttl = 120; /* inside the 5-minute refresh margin */
    REQUIRE(hsm_password_provider_new_ex("aws", cfg, &p, detail,
                                         sizeof detail) == HSM_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(hsm_password_get(p, NULL, &sec), HSM_OK);
        hsm_secret_free(sec);
        sec = NULL;
    }
    CHECK_EQ(atomic_load(&k->n_imds_creds), 2);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_password_provider_free(p);
    hsm_config_free(cfg);
}

static void
test_aws_no_credentials_and_no_imds_enetwork(void)
{
    setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    /* A closed loopback port stands in for an absent metadata service. */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ENETWORK);
    CHECK(strstr(detail, "aws: IMDS token:") != NULL);
    setenv("AWS_ACCESS_KEY_ID", FAKE_AKID, 1); /* secret missing */
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    CHECK(strstr(detail, "AWS_SECRET_ACCESS_KEY") != NULL);
    hsm_config_free(cfg);
}

static void
test_aws_signer_signature_verifies_with_openssl(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();

    set_aws_env();
    k->want_key = "alias/signer";
    signer_roundtrip("aws", cfg, "alias/signer", true);
    /* Sign + Verify (valid) + Verify (tampered) + GetPublicKey. */
    CHECK_EQ(atomic_load(&k->n_kms), 4);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_config_free(cfg);
}

static void
test_aws_throttling_retried_then_succeeds(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    k->throttle_n = 2;
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_OK);
    CHECK(is_password(sec));
    CHECK_EQ(atomic_load(&k->n_kms), 3);
    hsm_secret_free(sec);
    hsm_config_free(cfg);
}

static void
test_aws_throttling_gives_up_after_bound(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    k->throttle_n = 100;
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_EREMOTE);
    CHECK_EQ(atomic_load(&k->n_kms), 4); /* default retry_max */
    CHECK(strstr(detail, "aws: Decrypt: ThrottlingException: Rate exceeded") !=
          NULL);
    fake_reset(fc);
    k->throttle_n = 100;
    hsm_config_set(cfg, "retry_max", "2");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_EREMOTE);
    CHECK_EQ(atomic_load(&k->n_kms), 2);
    CHECK(sec == NULL);
    hsm_config_free(cfg);
}

static void
test_aws_http_5xx_retried_then_succeeds(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    k->status_n = 1;
    k->status = 503;
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_OK);
    CHECK_EQ(atomic_load(&k->n_kms), 2);
    hsm_secret_free(sec);
    hsm_config_free(cfg);
}

static void
test_aws_error_types_mapped_not_retried(void)
{
    static const struct {
        const char *type;
        hsm_err want;
        const char *text;
    } cases[] = {
        {"com.amazonaws.kms#NotFoundException", HSM_ENOTFOUND,
         "aws: Decrypt: NotFoundException: the fake says no"},
        {"AccessDeniedException", HSM_EAUTH,
         "aws: Decrypt: AccessDeniedException: the fake says no"},
        {"InvalidCiphertextException", HSM_ECORRUPT,
         "aws: Decrypt: InvalidCiphertextException"},
        {"DisabledException", HSM_EREMOTE, "aws: Decrypt: DisabledException"},
    };

    for (size_t i = 0; i < KT_COUNT(cases); i++) {
        fake_knobs *k = setup();
        hsm_config *cfg = aws_config();
        hsm_secret *sec = NULL;

        set_aws_env();
        k->error_type = cases[i].type;
        CHECK_EQ(get_password("aws", cfg, &sec), cases[i].want);
        CHECK(strstr(detail, cases[i].text) != NULL);
        CHECK(strstr(detail, FAKE_PASSWORD) == NULL);
        CHECK_EQ(atomic_load(&k->n_kms), 1);
        hsm_config_free(cfg);
    }
}

static void
test_aws_server_rejects_bad_signature_eauth(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    k->secret_override = "another-secret"; /* our signature cannot verify */
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_EAUTH);
    CHECK(strstr(detail, "InvalidSignatureException") != NULL);
    CHECK_EQ(atomic_load(&k->expect_failures), 1);
    hsm_config_free(cfg);
}

static void
test_aws_timeout_etimeout(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;
    time_t t0 = time(NULL);

    set_aws_env();
    k->sleep_ms = 1500;
    hsm_config_set(cfg, "timeout_ms", "300");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ETIMEOUT);
    CHECK(strstr(detail, "aws: Decrypt:") != NULL);
    CHECK(time(NULL) - t0 < 3);
    hsm_config_free(cfg);
}

static void
test_aws_oversized_response_etoobig(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = aws_config();
    hsm_secret *sec = NULL;

    set_aws_env();
    k->mode = FAKE_MODE_OVERSIZE;
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ETOOBIG);
    CHECK(strstr(detail, "aws: Decrypt:") != NULL);
    hsm_config_free(cfg);
}

static void
test_aws_malformed_responses_emalformed(void)
{
    static const struct {
        enum fake_mode mode;
        const char *text;
    } cases[] = {
        {FAKE_MODE_BAD_JSON, "aws: Decrypt: Plaintext: malformed JSON"},
        {FAKE_MODE_MISSING, "aws: Decrypt: Plaintext: missing field"},
        {FAKE_MODE_BAD_B64, "aws: Decrypt: Plaintext: bad encoding"},
    };

    for (size_t i = 0; i < KT_COUNT(cases); i++) {
        fake_knobs *k = setup();
        hsm_config *cfg = aws_config();
        hsm_secret *sec = NULL;

        set_aws_env();
        k->mode = cases[i].mode;
        CHECK_EQ(get_password("aws", cfg, &sec), HSM_EMALFORMED);
        CHECK(strstr(detail, cases[i].text) != NULL);
        CHECK(sec == NULL);
        hsm_config_free(cfg);
    }
}

static void
test_aws_config_errors_econfig(void)
{
    hsm_config *cfg;
    hsm_secret *sec = NULL;

    setup();
    set_aws_env();
    cfg = aws_config();
    /* Plain http to a non-loopback endpoint is refused at the call. */
    hsm_config_set(cfg, "endpoint", "http://192.0.2.10/");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    CHECK(strstr(detail, "refusing plain http://") != NULL);
    hsm_config_set(cfg, "endpoint", "ftp://example.com/");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    hsm_config_free(cfg);
    cfg = aws_config();
    hsm_config_set(cfg, "region", "us east 1");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    hsm_config_set(cfg, "region", "us-east-1");
    hsm_config_set(cfg, "timeout_ms", "soon");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    CHECK(strstr(detail, "timeout_ms") != NULL);
    hsm_config_set(cfg, "timeout_ms", "1000");
    unsetenv("ZAPDB_ENCRYPTED_PASSWORD");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    CHECK(strstr(detail, "ZAPDB_ENCRYPTED_PASSWORD is not set") != NULL);
    setenv("ZAPDB_ENCRYPTED_PASSWORD", "not base64!", 1);
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ECONFIG);
    hsm_config_free(cfg);
}

static void
test_aws_connection_refused_enetwork(void)
{
    hsm_config *cfg;
    hsm_secret *sec = NULL;

    setup();
    set_aws_env();
    cfg = aws_config();
    hsm_config_set(cfg, "endpoint", "http://127.0.0.1:1/");
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ENETWORK);
    CHECK(strstr(detail, "aws: Decrypt: connection failed") != NULL);
    hsm_config_free(cfg);
}

static void
test_aws_endpoint_from_environment_used(void)
{
    fake_knobs *k = setup();
    hsm_secret *sec = NULL;
    char url[128];

    set_aws_env();
    setenv("AWS_ENDPOINT_URL_KMS", fake_url(fc, "/", url, sizeof url), 1);
    setenv("AWS_REGION", "us-east-1", 1);
    CHECK_EQ(get_password("aws", NULL, &sec), HSM_OK);
    CHECK(is_password(sec));
    CHECK_EQ(atomic_load(&k->n_kms), 1);
    hsm_secret_free(sec);
    /* The scope carries the region: a different one fails the fake's
     * verifier (it expects us-east-1). */
    setenv("AWS_REGION", "eu-west-1", 1);
    CHECK_EQ(get_password("aws", NULL, &sec), HSM_EAUTH);
}

/* ---- GCP -------------------------------------------------------------------
 */

static hsm_config *
gcp_config(void)
{
    hsm_config *c = NULL;
    char host[64];

    snprintf(host, sizeof host, "127.0.0.1:%u", fake_port(fc));
    setenv("GCE_METADATA_HOST", host, 1);
    setenv("GCP_KMS_ENDPOINT", fake_url(fc, "", host, sizeof host), 1);
    REQUIRE(hsm_config_new(&c) == HSM_OK);
    hsm_config_set(c, "project_id", "proj-1");
    hsm_config_set(c, "location", "global");
    hsm_config_set(c, "key_ring", "ring");
    hsm_config_set(c, "crypto_key", "zapdb");
    hsm_config_set(c, "retry_base_ms", "1");
    return c;
}

static void
test_gcp_password_decrypts_and_token_cached(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = gcp_config();
    hsm_password_provider *p = NULL;
    hsm_secret *sec = NULL;

    REQUIRE(hsm_password_provider_new_ex("gcp", cfg, &p, detail,
                                         sizeof detail) == HSM_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(hsm_password_get(p, NULL, &sec), HSM_OK);
        CHECK(is_password(sec));
        hsm_secret_free(sec);
        sec = NULL;
    }
    CHECK(strcmp(k->last_path, "/v1/projects/proj-1/locations/global/keyRings/"
                               "ring/cryptoKeys/zapdb:decrypt") == 0);
    CHECK_EQ(atomic_load(&k->n_token), 1);
    CHECK_EQ(atomic_load(&k->n_kms), 2);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_password_provider_free(p);
    hsm_config_free(cfg);
}

static void
test_gcp_signer_der_signature_verifies_with_openssl(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = gcp_config();

    signer_roundtrip("gcp", cfg, "signing-key", true);
    CHECK(strstr(k->last_path, "/v1/projects/proj-1/locations/global/keyRings/"
                               "ring/cryptoKeys/signing-key/"
                               "cryptoKeyVersions/1") == k->last_path);
    CHECK_EQ(atomic_load(&k->n_token), 1);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_config_free(cfg);
}

static void
test_gcp_full_resource_name_keeps_slashes(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = gcp_config();
    hsm_signer *s = NULL;
    uint8_t *sig = NULL;
    size_t sl = 0;
    const char *res = "projects/p2/locations/europe-west1/keyRings/r2/"
                      "cryptoKeys/k2/cryptoKeyVersions/3";

    REQUIRE(hsm_signer_new_ex("gcp", cfg, NULL, &s, detail, sizeof detail) ==
            HSM_OK);
    CHECK_EQ(hsm_signer_sign(s, res, (const uint8_t *)"m", 1, &sig, &sl),
             HSM_OK);
    CHECK(strcmp(k->last_path, "/v1/projects/p2/locations/europe-west1/"
                               "keyRings/r2/cryptoKeys/k2/"
                               "cryptoKeyVersions/3:asymmetricSign") == 0);
    hsm_free(sig);
    sig = NULL;
    /* Injection attempts in the resource are refused before any call. */
    CHECK_EQ(hsm_signer_sign(s,
                             "projects/p/locations/l/keyRings/r/cryptoKeys/"
                             "k/../../x",
                             (const uint8_t *)"m", 1, &sig, &sl),
             HSM_ECONFIG);
    CHECK_EQ(hsm_signer_sign(s,
                             "projects/p/locations/l?x=1/keyRings/r/"
                             "cryptoKeys/k",
                             (const uint8_t *)"m", 1, &sig, &sl),
             HSM_ECONFIG);
    CHECK_EQ(atomic_load(&k->n_kms), 1);
    hsm_signer_free(s);
    hsm_config_free(cfg);
}

static void
test_gcp_remote_error_mapped(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = gcp_config();
    hsm_secret *sec = NULL;

    k->error_status = 403;
    k->error_code = "PERMISSION_DENIED";
    CHECK_EQ(get_password("gcp", cfg, &sec), HSM_EAUTH);
    CHECK(strstr(detail, "gcp: decrypt: HTTP 403 PERMISSION_DENIED: the fake "
                         "says no") != NULL);
    CHECK_EQ(atomic_load(&k->n_kms), 1);
    fake_reset(fc);
    k->throttle_n = 100; /* 429 every time: bounded retries */
    CHECK_EQ(get_password("gcp", cfg, &sec), HSM_EREMOTE);
    CHECK_EQ(atomic_load(&k->n_kms), 4);
    hsm_config_free(cfg);
}

static void
test_gcp_malformed_token_and_pem_emalformed(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = gcp_config();
    hsm_secret *sec = NULL;
    hsm_signer *s = NULL;
    uint8_t *der = NULL;
    size_t dl = 0;

    k->mode = FAKE_MODE_TOKEN_BAD;
    CHECK_EQ(get_password("gcp", cfg, &sec), HSM_EMALFORMED);
    CHECK(strstr(detail, "gcp: metadata token: access_token: missing field") !=
          NULL);
    CHECK_EQ(atomic_load(&k->n_kms), 0);
    k->mode = FAKE_MODE_BAD_B64;
    REQUIRE(hsm_signer_new_ex("gcp", cfg, NULL, &s, detail, sizeof detail) ==
            HSM_OK);
    CHECK_EQ(hsm_signer_public_key(s, "k", &der, &dl), HSM_EMALFORMED);
    CHECK(strstr(hsm_signer_last_error(s), "getPublicKey: pem") != NULL);
    hsm_signer_free(s);
    hsm_config_free(cfg);
}

static void
test_gcp_missing_key_parts_econfig(void)
{
    hsm_config *cfg;
    hsm_secret *sec = NULL;

    setup();
    cfg = gcp_config();
    hsm_config_set(cfg, "key_ring", NULL);
    CHECK_EQ(get_password("gcp", cfg, &sec), HSM_ECONFIG);
    CHECK(strstr(detail, "gcp: decrypt: no key") != NULL);
    hsm_config_set(cfg, "key_ring", "ring");
    hsm_config_set(cfg, "crypto_key",
                   "projects/p/locations/l/keyRings/r/cryptoKeys/k/"
                   "cryptoKeyVersions/1");
    CHECK_EQ(get_password("gcp", cfg, &sec), HSM_ECONFIG);
    hsm_config_free(cfg);
}

/* ---- Azure
 * ------------------------------------------------------------------- */

static hsm_config *
azure_config(bool app_service)
{
    hsm_config *c = NULL;
    char url[128];

    if (app_service) {
        setenv("IDENTITY_ENDPOINT", fake_url(fc, "/msi/token", url, sizeof url),
               1);
        setenv("IDENTITY_HEADER", FAKE_AZ_ID_HEADER, 1);
    } else {
        setenv("AZURE_IMDS_ENDPOINT", fake_url(fc, "", url, sizeof url), 1);
    }
    REQUIRE(hsm_config_new(&c) == HSM_OK);
    hsm_config_set(c, "vault_url", fake_url(fc, "/", url, sizeof url));
    hsm_config_set(c, "key_name", "zapdb-wrap");
    hsm_config_set(c, "retry_base_ms", "1");
    return c;
}

static void
test_azure_password_unwraps_with_app_service_identity(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = azure_config(true);
    hsm_password_provider *p = NULL;
    hsm_secret *sec = NULL;

    hsm_config_set(cfg, "key_version", "0123abcd");
    REQUIRE(hsm_password_provider_new_ex("azure", cfg, &p, detail,
                                         sizeof detail) == HSM_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(hsm_password_get(p, NULL, &sec), HSM_OK);
        CHECK(is_password(sec));
        hsm_secret_free(sec);
        sec = NULL;
    }
    CHECK(strcmp(k->last_path, "/keys/zapdb-wrap/0123abcd/unwrapkey") == 0);
    CHECK_EQ(atomic_load(&k->n_token), 1);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_password_provider_free(p);
    hsm_config_free(cfg);
}

static void
test_azure_imds_token_without_identity_endpoint(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = azure_config(false);
    hsm_secret *sec = NULL;

    CHECK_EQ(get_password("azure", cfg, &sec), HSM_OK);
    CHECK(is_password(sec));
    CHECK(strcmp(k->last_path, "/keys/zapdb-wrap/unwrapkey") == 0);
    CHECK_EQ(atomic_load(&k->n_token), 1);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_secret_free(sec);
    hsm_config_free(cfg);
}

static void
test_azure_signer_raw_signature_returned_as_der(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = azure_config(true);

    signer_roundtrip("azure", cfg, "sign-key/v2", true);
    CHECK(strcmp(k->last_path, "/keys/sign-key/v2") == 0);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_config_free(cfg);
}

static void
test_azure_errors_mapped(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = azure_config(true);
    hsm_secret *sec = NULL;
    hsm_signer *s = NULL;
    uint8_t *der = NULL;
    size_t dl = 0;

    k->error_status = 401;
    k->error_code = "Unauthorized";
    CHECK_EQ(get_password("azure", cfg, &sec), HSM_EAUTH);
    CHECK(strstr(detail, "azure: unwrapkey: HTTP 401 Unauthorized") != NULL);
    fake_reset(fc);
    k->mode = FAKE_MODE_BAD_B64;
    CHECK_EQ(get_password("azure", cfg, &sec), HSM_EMALFORMED);
    CHECK(strstr(detail, "azure: unwrapkey: value: bad encoding") != NULL);
    REQUIRE(hsm_signer_new_ex("azure", cfg, NULL, &s, detail, sizeof detail) ==
            HSM_OK);
    CHECK_EQ(hsm_signer_public_key(s, "k", &der, &dl), HSM_EMALFORMED);
    CHECK_EQ(hsm_signer_public_key(s, "bad/name/x", &der, &dl), HSM_ECONFIG);
    hsm_signer_free(s);
    hsm_config_set(cfg, "vault_url", NULL);
    CHECK_EQ(get_password("azure", cfg, &sec), HSM_ECONFIG);
    CHECK(strstr(detail, "vault_url") != NULL);
    hsm_config_free(cfg);
}

/* ---- Zymbit
 * -------------------------------------------------------------------- */

static void
test_zymbit_sign_verify_roundtrip(void)
{
    fake_knobs *k = setup();
    hsm_config *cfg = NULL;
    char url[128];

    REQUIRE(hsm_config_new(&cfg) == HSM_OK);
    hsm_config_set(cfg, "api_addr", fake_url(fc, "/", url, sizeof url));
    k->want_key = "7";
    signer_roundtrip("zymbit", cfg, "7", false);
    CHECK_EQ(atomic_load(&k->n_kms), 3);
    CHECK_EQ(atomic_load(&k->expect_failures), 0);
    hsm_config_free(cfg);
}

static void
test_zymbit_non_loopback_http_refused(void)
{
    hsm_config *cfg = NULL;
    hsm_signer *s = NULL;

    setup();
    REQUIRE(hsm_config_new(&cfg) == HSM_OK);
    hsm_config_set(cfg, "api_addr", "http://10.0.0.5:6789");
    CHECK_EQ(hsm_signer_new_ex("zymbit", cfg, NULL, &s, detail, sizeof detail),
             HSM_ECONFIG);
    CHECK(strstr(detail, "loopback") != NULL);
    hsm_config_free(cfg);
}

/* ---- HTTP client and parsers
 * ------------------------------------------------------ */

static void
test_http_plain_http_only_to_loopback(void)
{
    hsm_http_request req = {.method = "GET", .url = "http://192.0.2.1/x"};
    hsm_http_response r;
    hsm_http_url u;
    char d[200];

    CHECK(hsm_http_host_is_loopback("127.0.0.1"));
    CHECK(hsm_http_host_is_loopback("127.255.0.9"));
    CHECK(hsm_http_host_is_loopback("[::1]"));
    CHECK(hsm_http_host_is_loopback("LocalHost"));
    CHECK(!hsm_http_host_is_loopback("128.0.0.1"));
    CHECK(!hsm_http_host_is_loopback("localhost.evil.com"));
    CHECK(!hsm_http_host_is_loopback("169.254.169.254"));
    CHECK_EQ(hsm_http_perform(NULL, &req, &r, d, sizeof d), HSM_HTTP_EINSECURE);
    CHECK(strstr(d, "192.0.2.1") != NULL);
    /* The metadata exception applies to metadata requests only. */
    req.url = "http://169.254.169.254:1/latest";
    CHECK_EQ(hsm_http_perform(NULL, &req, &r, d, sizeof d), HSM_HTTP_EINSECURE);
    req.url = "http://metadata.google.internal.evil.com/";
    req.metadata = true;
    CHECK_EQ(hsm_http_perform(NULL, &req, &r, d, sizeof d), HSM_HTTP_EINSECURE);
    CHECK_EQ(hsm_http_url_parse("https://user:pw@example.com/", &u),
             HSM_HTTP_EURL);
    CHECK_EQ(hsm_http_url_parse("file:///etc/passwd", &u), HSM_HTTP_EURL);
    CHECK_EQ(hsm_http_url_parse("https://kms.example.com:443/a?b=c", &u),
             HSM_HTTP_OK);
    CHECK(strcmp(u.authority, "kms.example.com") == 0);
    CHECK(strcmp(u.path, "/a") == 0 && strcmp(u.query, "b=c") == 0);
    CHECK_EQ(hsm_http_url_parse("http://127.0.0.1:8080", &u), HSM_HTTP_OK);
    CHECK(strcmp(u.authority, "127.0.0.1:8080") == 0 && u.loopback);
    CHECK(strcmp(u.path, "/") == 0);
}

static void
test_http_response_cap_enforced(void)
{
    hsm_http_opts o = {.max_response = 4096};
    char url[128], d[200];
    hsm_http_request req = {.method = "GET"};
    hsm_http_response r;
    fake_knobs *k = setup();

    /* The token endpoint answers ~100 bytes: fine under the cap; the
     * oversize mode of a KMS answer is 2 MiB: refused. */
    req.url = fake_url(fc,
                       "/computeMetadata/v1/instance/service-accounts/"
                       "default/token",
                       url, sizeof url);
    const char *h[] = {"Metadata-Flavor: Google"};
    req.headers = h;
    req.header_count = 1;
    CHECK_EQ(hsm_http_perform(&o, &req, &r, d, sizeof d), HSM_HTTP_OK);
    CHECK_EQ(r.status, 200);
    CHECK(r.body_len > 0 && r.body_len < 4096);
    hsm_http_response_free(&r);
    k->mode = FAKE_MODE_OVERSIZE;
    req.url = fake_url(fc, "/sign", url, sizeof url);
    req.method = "POST";
    req.body =
        (const uint8_t *)"{\"slot\":\"7\",\"digest\":"
                         "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}";
    req.body_len = strlen((const char *)req.body);
    req.header_count = 0;
    CHECK_EQ(hsm_http_perform(&o, &req, &r, d, sizeof d), HSM_HTTP_ETOOBIG);
    CHECK(r.body == NULL);
}

static void
test_http_tls_verified_against_ca_bundle(void)
{
    const char *dir = kt_tmpdir(), *ca = kt_path(dir, "ca.pem");
    fake_cloud *tls = fake_start_tls(ca), *plain = fc;
    hsm_config *cfg;
    hsm_secret *sec = NULL;
    char url[128];

    REQUIRE(tls);
    setup();
    set_aws_env();
    fc = tls; /* the AWS config below points at the TLS fake */
    cfg = aws_config();
    snprintf(url, sizeof url, "https://127.0.0.1:%u/", fake_port(tls));
    hsm_config_set(cfg, "endpoint", url);
    hsm_config_set(cfg, "ca_bundle", ca);
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_OK);
    CHECK(is_password(sec));
    hsm_secret_free(sec);
    sec = NULL;
    /* Not in the system trust store: refused. */
    hsm_config_set(cfg, "ca_bundle", NULL);
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ENETWORK);
    CHECK(strstr(detail, "TLS") != NULL);
    /* Trusted certificate, wrong name (it names only 127.0.0.1). */
    hsm_config_set(cfg, "ca_bundle", ca);
    snprintf(url, sizeof url, "https://localhost:%u/", fake_port(tls));
    hsm_config_set(cfg, "endpoint", url);
    CHECK_EQ(get_password("aws", cfg, &sec), HSM_ENETWORK);
    CHECK(strstr(detail, "TLS") != NULL);
    CHECK(sec == NULL);
    CHECK_EQ(atomic_load(&fake_knobs_of(tls)->n_kms), 1);
    fc = plain;
    hsm_config_free(cfg);
    fake_stop(tls);
}

static void
test_cloud_parse_token_variants(void)
{
    char *t = NULL;
    size_t tl = 0;
    time_t exp = 0, now = 1000000;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"access_token\": 5}",
        "{\"expires_in\": 5}",
        "{\"access_token\": \"a b\", \"expires_in\": 5}",
        "{\"access_token\": \"a\", \"expires_in\": \"soon\"}",
        "{\"access_token\": \"a\", \"expires_in\": -5}",
        "{\"access_token\": \"a\", \"access_token\": \"b\"}",
    };

#define TOK(s) (const uint8_t *)(s), strlen(s)
    CHECK_EQ(
        hsm_cp_token(TOK("{\"access_token\":\"ya29\",\"expires_in\":3599}"),
                     now, &t, &tl, &exp),
        CP_OK);
    CHECK(t && strcmp(t, "ya29") == 0 && tl == 4 && exp == now + 3599);
    kc_secure_free(t);
    CHECK_EQ(hsm_cp_token(TOK("{\"access_token\":\"x\",\"expires_in\":\"60\","
                              "\"expires_on\":\"1\"}"),
                          now, &t, &tl, &exp),
             CP_OK);
    CHECK(exp == now + 60);
    kc_secure_free(t);
    CHECK_EQ(hsm_cp_token(TOK("{\"access_token\":\"x\",\"expires_on\":"
                              "\"1003600\"}"),
                          now, &t, &tl, &exp),
             CP_OK);
    CHECK(exp == 1003600);
    kc_secure_free(t);
    for (size_t i = 0; i < KT_COUNT(bad); i++) {
        t = NULL;
        CHECK(hsm_cp_token(TOK(bad[i]), now, &t, &tl, &exp) != CP_OK);
        CHECK(t == NULL);
    }
}

static void
test_cloud_parse_aws_error_and_imds(void)
{
    char type[64], msg[64];
    hsm_cp_aws_creds c;

    CHECK_EQ(hsm_cp_aws_error(TOK("{\"__type\":\"com.amazon.coral#Throttling"
                                  "Exception\",\"Message\":\"slow\\ndown\"}"),
                              type, sizeof type, msg, sizeof msg),
             CP_OK);
    CHECK(strcmp(type, "ThrottlingException") == 0);
    CHECK(strcmp(msg, "slow?down") == 0); /* control bytes neutralised */
    CHECK_EQ(hsm_cp_aws_error(TOK("{\"message\":\"x\"}"), type, sizeof type,
                              msg, sizeof msg),
             CP_EMISSING);
    CHECK_EQ(
        hsm_cp_aws_error(TOK("<html>"), type, sizeof type, msg, sizeof msg),
        CP_EJSON);
    CHECK_EQ(hsm_cp_imds_credentials(
                 TOK("{\"Code\":\"Success\",\"AccessKeyId\":\"A\","
                     "\"SecretAccessKey\":\"S\",\"Token\":\"T\","
                     "\"Expiration\":\"2030-01-02T03:04:05Z\"}"),
                 &c),
             CP_OK);
    CHECK(strcmp(c.access_key_id, "A") == 0 &&
          strcmp(c.session_token, "T") == 0);
    CHECK_EQ((long long)c.expiration, 1893553445LL);
    hsm_cp_aws_creds_clear(&c);
    CHECK_EQ(hsm_cp_imds_credentials(
                 TOK("{\"Code\":\"Failure\",\"AccessKeyId\":\"A\","
                     "\"SecretAccessKey\":\"S\"}"),
                 &c),
             CP_EMISSING);
    CHECK_EQ(hsm_cp_imds_credentials(
                 TOK("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\","
                     "\"Expiration\":\"tomorrow\"}"),
                 &c),
             CP_EENCODING);
#undef TOK
}

static const kt_case cases[] = {
    KT_CASE(test_aws_password_env_credentials_decrypts),
    KT_CASE(test_aws_password_session_token_signed),
    KT_CASE(test_aws_imds_credentials_fetched_once_and_cached),
    KT_CASE(test_aws_imds_concurrent_calls_fetch_once),
    KT_CASE(test_aws_imds_credentials_near_expiry_refreshed),
    KT_CASE(test_aws_no_credentials_and_no_imds_enetwork),
    KT_CASE(test_aws_signer_signature_verifies_with_openssl),
    KT_CASE(test_aws_throttling_retried_then_succeeds),
    KT_CASE(test_aws_throttling_gives_up_after_bound),
    KT_CASE(test_aws_http_5xx_retried_then_succeeds),
    KT_CASE(test_aws_error_types_mapped_not_retried),
    KT_CASE(test_aws_server_rejects_bad_signature_eauth),
    KT_CASE(test_aws_timeout_etimeout),
    KT_CASE(test_aws_oversized_response_etoobig),
    KT_CASE(test_aws_malformed_responses_emalformed),
    KT_CASE(test_aws_config_errors_econfig),
    KT_CASE(test_aws_connection_refused_enetwork),
    KT_CASE(test_aws_endpoint_from_environment_used),
    KT_CASE(test_gcp_password_decrypts_and_token_cached),
    KT_CASE(test_gcp_signer_der_signature_verifies_with_openssl),
    KT_CASE(test_gcp_full_resource_name_keeps_slashes),
    KT_CASE(test_gcp_remote_error_mapped),
    KT_CASE(test_gcp_malformed_token_and_pem_emalformed),
    KT_CASE(test_gcp_missing_key_parts_econfig),
    KT_CASE(test_azure_password_unwraps_with_app_service_identity),
    KT_CASE(test_azure_imds_token_without_identity_endpoint),
    KT_CASE(test_azure_signer_raw_signature_returned_as_der),
    KT_CASE(test_azure_errors_mapped),
    KT_CASE(test_zymbit_sign_verify_roundtrip),
    KT_CASE(test_zymbit_non_loopback_http_refused),
    KT_CASE(test_http_plain_http_only_to_loopback),
    KT_CASE(test_http_response_cap_enforced),
    KT_CASE(test_http_tls_verified_against_ca_bundle),
    KT_CASE(test_cloud_parse_token_variants),
    KT_CASE(test_cloud_parse_aws_error_and_imds),
};

int
main(int argc, char **argv)
{
    int rc;

    kc_init();
    fc = fake_start();
    if (!fc) {
        fprintf(stderr, "cannot start the fake cloud\n");
        return 1;
    }
    rc = kt_main(argc, argv, cases, KT_COUNT(cases));
    fake_stop(fc);
    return rc;
}
