/* SPDX-License-Identifier: Apache-2.0 */
/* libhsm tests: factories, config, password providers, local signer,
 * encodings, store, vault, backup, attestation, threshold manager. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <hsm/hsm.h>
#include <hsm/threshold.h>
#include <hsm/vault.h>
#include <zapdb/zapdb.h>

#include "hsm_int.h"
#include "kc.h"
#include "testutil.h"
#include "vault_int.h"

/* ---- helpers ------------------------------------------------------------ */

static hsm_config *
cfg_of(const char *const *kv)
{
    hsm_config *c = NULL;

    if (hsm_config_new(&c) != HSM_OK)
        return NULL;
    for (; kv && *kv; kv++) {
        if (hsm_config_set_kv(c, *kv) != HSM_OK) {
            hsm_config_free(c);
            return NULL;
        }
    }
    return c;
}

static void
clear_fallback_env(void)
{
    static const char *const vars[] = {
        "MPC_HSM_KEY_ID",       "AWS_REGION",         "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL",   "GCP_PROJECT_ID",
        "GCP_KMS_LOCATION",     "GCP_KMS_KEYRING",    "GCP_KMS_KEY",
        "AZURE_VAULT_URL",      "AZURE_KEY_NAME",     "AZURE_KEY_VERSION",
        "MPC_PASSWORD_FILE",    "MPC_HSM_ZYMBIT_API", "PKCS11_MODULE",
        "PKCS11_TOKEN_LABEL",   "MPC_PASSWORD",       "LUX_MPC_PASSWORD",
        "ZAPDB_PASSWORD"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static hsm_store *
open_store(const char *dir, const char *pw, bool create)
{
    hsm_store *st = NULL;
    hsm_err rc = hsm_store_open(dir, (const uint8_t *)pw, strlen(pw), create, 1,
                                8192, &st);
    return rc == HSM_OK ? st : NULL;
}

/* Verify with OpenSSL directly from the SPKI (independent of libhsm's
 * verify path). */
static bool
openssl_verify(const uint8_t *spki, size_t spki_len, const uint8_t *msg,
               size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = pk && md &&
              EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
              EVP_DigestVerify(md, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return ok;
}

/* ---- errors and names ---------------------------------------------- */

static void
test_strerror_all_codes_distinct_nonnull(void)
{
    for (int i = 0; i < HSM_ERR_COUNT; i++) {
        const char *a = hsm_strerror((hsm_err)i);
        REQUIRE(a != NULL && a[0] != 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(a, hsm_strerror((hsm_err)j)) != 0);
    }
    CHECK(strcmp(hsm_strerror((hsm_err)HSM_ERR_COUNT), "unknown error") == 0);
    CHECK(strcmp(hsm_strerror((hsm_err)-1), "unknown error") == 0);
}

static void
test_alg_names_roundtrip_and_aliases(void)
{
    hsm_alg a;

    for (int i = HSM_ALG_ECDSA_P256_SHA256; i <= HSM_ALG_ML_DSA_87; i++) {
        CHECK_EQ(hsm_alg_from_name(hsm_alg_name((hsm_alg)i), &a), HSM_OK);
        CHECK_EQ(a, i);
    }
    CHECK_EQ(hsm_alg_from_name("es256", &a), HSM_OK);
    CHECK_EQ(a, HSM_ALG_ECDSA_P256_SHA256);
    CHECK_EQ(hsm_alg_from_name("ML-DSA-65", &a), HSM_OK);
    CHECK_EQ(a, HSM_ALG_ML_DSA_65);
    CHECK_EQ(hsm_alg_from_name("rsa", &a), HSM_EINVAL);
    CHECK_EQ(hsm_alg_from_name("", &a), HSM_EINVAL);
}

/* ---- factories ----------------------------------------------------- */

static void
test_factory_signer_local_names_and_padding_resolve(void)
{
    static const char *const names[] = {"", "local", " LOCAL ", "\tLocal\n",
                                        "lOcAl"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hsm_signer *s = NULL;
        CHECK_EQ(hsm_signer_new(names[i], NULL, &s), HSM_OK);
        REQUIRE(s != NULL);
        CHECK(strcmp(hsm_signer_provider(s), "local") == 0);
        CHECK_EQ(hsm_signer_algorithm(s), HSM_ALG_ECDSA_P256_SHA256);
        hsm_signer_free(s);
    }
    /* NULL name is the empty name */
    hsm_signer *s = NULL;
    CHECK_EQ(hsm_signer_new(NULL, NULL, &s), HSM_OK);
    CHECK(s && strcmp(hsm_signer_provider(s), "local") == 0);
    hsm_signer_free(s);
}

static void
test_factory_name_normalise_aliases_fold(void)
{
    char out[64];
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"pq", "mldsa"},
        {" PQ ", "mldsa"},
        {"post-quantum", "mldsa"},
        {"Post-Quantum\t", "mldsa"},
        {"MLDSA", "mldsa"},
        {"  AWS", "aws"},
        {"Gcp ", "gcp"},
        {"AZURE", "azure"},
        {"ZyMbIt", "zymbit"},
        {" pkcs11 ", "pkcs11"},
        {"   ", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ(hsm_name_normalise(cases[i].in, out, sizeof out), HSM_OK);
        CHECK(strcmp(out, cases[i].want) == 0);
    }
}

/* Every signer name is known: it builds, or needs configuration, or is
 * reported as not built (never "unknown"). */
static void
test_factory_signer_every_name_known(void)
{
    static const struct {
        const char *name, *canon;
    } names[] = {
        {"mldsa", "mldsa"}, {"pq", "mldsa"},      {"post-quantum", "mldsa"},
        {" PQ ", "mldsa"},  {"aws", "aws"},       {"GCP", "gcp"},
        {"azure", "azure"}, {"zymbit", "zymbit"}, {"PKCS11", "pkcs11"},
    };
    clear_fallback_env();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hsm_signer *s = NULL;
        char detail[HSM_DETAIL_MAX];
        hsm_err rc = hsm_signer_new_ex(names[i].name, NULL, NULL, &s, detail,
                                       sizeof detail);
        CHECK(rc != HSM_EUNKNOWN);
        if (rc == HSM_OK) {
            CHECK(strcmp(hsm_signer_provider(s), names[i].canon) == 0);
        } else if (rc == HSM_ENOTBUILT) {
            CHECK(strstr(detail, names[i].canon) != NULL);
            CHECK(strstr(detail, "not built") != NULL);
        }
        hsm_signer_free(s);
    }
}

static void
test_factory_unknown_signer_lists_valid_names(void)
{
    hsm_signer *s = (hsm_signer *)1;
    char detail[HSM_DETAIL_MAX];

    CHECK_EQ(
        hsm_signer_new_ex("yubikey", NULL, NULL, &s, detail, sizeof detail),
        HSM_EUNKNOWN);
    CHECK(s == NULL);
    static const char *const want[] = {
        "yubikey", "local", "mldsa", "pq",     "post-quantum",
        "aws",     "gcp",   "azure", "zymbit", "pkcs11"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(strstr(detail, want[i]) != NULL);
    CHECK_EQ(hsm_signer_new("loc al", NULL, &s), HSM_EUNKNOWN);
    CHECK_EQ(hsm_signer_new("localx", NULL, &s), HSM_EUNKNOWN);
}

static void
test_factory_password_names_resolve(void)
{
    static const struct {
        const char *name, *canon;
    } names[] = {{"", "env"},      {"env", "env"},     {" ENV ", "env"},
                 {"file", "file"}, {"\tFile", "file"}, {NULL, "env"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hsm_password_provider *p = NULL;
        CHECK_EQ(hsm_password_provider_new(names[i].name, NULL, &p), HSM_OK);
        REQUIRE(p != NULL);
        CHECK(strcmp(hsm_password_provider_name(p), names[i].canon) == 0);
        hsm_password_provider_free(p);
    }
    static const char *const others[] = {"aws", "GCP", "azure", "pkcs11"};
    for (size_t i = 0; i < 4; i++) {
        hsm_password_provider *p = NULL;
        char detail[HSM_DETAIL_MAX];
        hsm_err rc = hsm_password_provider_new_ex(others[i], NULL, &p, detail,
                                                  sizeof detail);
        CHECK(rc != HSM_EUNKNOWN);
        if (rc == HSM_ENOTBUILT)
            CHECK(strstr(detail, "not built") != NULL);
        hsm_password_provider_free(p);
    }
}

static void
test_factory_unknown_password_lists_valid_names(void)
{
    hsm_password_provider *p = NULL;
    char detail[HSM_DETAIL_MAX];

    CHECK_EQ(
        hsm_password_provider_new_ex("vaultx", NULL, &p, detail, sizeof detail),
        HSM_EUNKNOWN);
    CHECK(p == NULL);
    static const char *const want[] = {"env", "file",  "aws",
                                       "gcp", "azure", "pkcs11"};
    for (size_t i = 0; i < 6; i++)
        CHECK(strstr(detail, want[i]) != NULL);
    /* a signer-only name is not a password provider */
    CHECK_EQ(hsm_password_provider_new("local", NULL, &p), HSM_EUNKNOWN);
    CHECK_EQ(hsm_password_provider_new("zymbit", NULL, &p), HSM_EUNKNOWN);
}

/* ---- config -------------------------------------------------------- */

static void
test_config_set_get_copy_remove_behave(void)
{
    hsm_config *c = NULL, *d = NULL;
    const char *k, *v;

    REQUIRE(hsm_config_new(&c) == HSM_OK);
    CHECK_EQ(hsm_config_set(c, "token_label", "a"), HSM_OK);
    CHECK_EQ(hsm_config_set(c, "token_label", "b"), HSM_OK);
    CHECK_EQ(hsm_config_count(c), 1);
    CHECK(strcmp(hsm_config_get(c, "token_label"), "b") == 0);
    CHECK_EQ(hsm_config_set_kv(c, "url=http://x/?a=b"), HSM_OK);
    CHECK(strcmp(hsm_config_get(c, "url"), "http://x/?a=b") == 0);
    CHECK_EQ(hsm_config_entry(c, 1, &k, &v), HSM_OK);
    CHECK(strcmp(k, "url") == 0);
    CHECK_EQ(hsm_config_entry(c, 2, &k, &v), HSM_EINVAL);
    REQUIRE(hsm_config_copy(c, &d) == HSM_OK);
    CHECK_EQ(hsm_config_set(c, "url", NULL), HSM_OK);
    CHECK(hsm_config_get(c, "url") == NULL);
    CHECK_EQ(hsm_config_count(c), 1);
    CHECK(strcmp(hsm_config_get(d, "url"), "http://x/?a=b") == 0);
    /* bad keys and values */
    CHECK_EQ(hsm_config_set_kv(c, "novalue"), HSM_EINVAL);
    CHECK_EQ(hsm_config_set_kv(c, "=x"), HSM_EINVAL);
    CHECK_EQ(hsm_config_set(c, "", "x"), HSM_EINVAL);
    CHECK_EQ(hsm_config_set(c, "a b", "x"), HSM_EINVAL);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ(hsm_config_set(c, "k", big), HSM_ETOOBIG);
    CHECK_EQ(hsm_config_set_kv(c, "empty="), HSM_OK);
    CHECK(strcmp(hsm_config_get(c, "empty"), "") == 0);
    hsm_config_free(c);
    hsm_config_free(d);
    hsm_config_free(NULL);
}

static void
test_config_env_fallbacks_follow_table(void)
{
    hsm_config *c = NULL;

    clear_fallback_env();
    REQUIRE(hsm_config_new(&c) == HSM_OK);
    CHECK(strcmp(hsm_config_get(c, "region"), "us-east-1") == 0);
    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    CHECK(strcmp(hsm_config_get(c, "region"), "eu-west-1") == 0);
    setenv("AWS_REGION", "ap-south-1", 1);
    CHECK(strcmp(hsm_config_get(c, "region"), "ap-south-1") == 0);
    hsm_config_set(c, "region", "us-west-2");
    CHECK(strcmp(hsm_config_get(c, "region"), "us-west-2") == 0);
    CHECK(strcmp(hsm_config_get_raw(c, "region"), "us-west-2") == 0);
    CHECK(hsm_config_get(c, "key_id") == NULL);
    setenv("MPC_HSM_KEY_ID", "kid-env", 1);
    CHECK(strcmp(hsm_config_get(c, "key_id"), "kid-env") == 0);
    CHECK(hsm_config_get_raw(c, "key_id") == NULL);
    CHECK(hsm_config_get(c, "endpoint") == NULL);
    setenv("AWS_ENDPOINT_URL", "http://b", 1);
    CHECK(strcmp(hsm_config_get(c, "endpoint"), "http://b") == 0);
    setenv("AWS_ENDPOINT_URL_KMS", "http://a", 1);
    CHECK(strcmp(hsm_config_get(c, "endpoint"), "http://a") == 0);
    CHECK(strcmp(hsm_config_get(c, "location"), "global") == 0);
    setenv("GCP_KMS_LOCATION", "europe-west1", 1);
    CHECK(strcmp(hsm_config_get(c, "location"), "europe-west1") == 0);
    CHECK(strcmp(hsm_config_get(NULL, "api_addr"), "http://localhost:6789") ==
          0);
    static const char *const pairs[][2] = {
        {"project_id", "GCP_PROJECT_ID"},
        {"key_ring", "GCP_KMS_KEYRING"},
        {"crypto_key", "GCP_KMS_KEY"},
        {"vault_url", "AZURE_VAULT_URL"},
        {"key_name", "AZURE_KEY_NAME"},
        {"key_version", "AZURE_KEY_VERSION"},
        {"path", "MPC_PASSWORD_FILE"},
        {"api_addr", "MPC_HSM_ZYMBIT_API"},
        {"module", "PKCS11_MODULE"},
        {"token_label", "PKCS11_TOKEN_LABEL"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        setenv(pairs[i][1], "from-env", 1);
        const char *v = hsm_config_get(c, pairs[i][0]);
        CHECK(v && strcmp(v, "from-env") == 0);
    }
    CHECK(hsm_config_get(c, "no_such_key") == NULL);
    hsm_config_free(c);
    clear_fallback_env();
}

/* ---- env and file password providers ------------------------------- */

static hsm_err
get_pw(const char *provider, const char *const *kv, const char *key_id,
       char *buf, size_t cap, char *detail, size_t dcap)
{
    hsm_config *c = cfg_of(kv);
    hsm_password_provider *p = NULL;
    hsm_secret *s = NULL;
    hsm_err rc;

    buf[0] = 0;
    if (detail)
        detail[0] = 0;
    rc = hsm_password_provider_new(provider, c, &p);
    if (rc == HSM_OK) {
        rc = hsm_password_get(p, key_id, &s);
        if (rc == HSM_OK) {
            if (s->len < cap) {
                memcpy(buf, s->data, s->len + 1);
            }
            CHECK(s->data[s->len] == 0);
        }
        if (detail)
            kc_strlcpy(detail, hsm_password_provider_last_error(p), dcap);
    }
    hsm_secret_free(s);
    hsm_password_provider_free(p);
    hsm_config_free(c);
    return rc;
}

static void
test_password_env_order_and_env_var(void)
{
    char pw[64];
    static const char *const cfg_var[] = {"env_var=KT_HSM_PW", NULL};

    clear_fallback_env();
    CHECK_EQ(get_pw("env", NULL, NULL, pw, sizeof pw, NULL, 0), HSM_ENOTFOUND);
    setenv("ZAPDB_PASSWORD", "zap", 1);
    CHECK_EQ(get_pw("env", NULL, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "zap") == 0);
    setenv("LUX_MPC_PASSWORD", "lux", 1);
    CHECK_EQ(get_pw("", NULL, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "lux") == 0);
    setenv("MPC_PASSWORD", "mpc", 1);
    CHECK_EQ(get_pw("env", NULL, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "mpc") == 0);
    /* env_var names the variable, with no fallback to the defaults */
    unsetenv("KT_HSM_PW");
    CHECK_EQ(get_pw("env", cfg_var, NULL, pw, sizeof pw, NULL, 0),
             HSM_ENOTFOUND);
    setenv("KT_HSM_PW", "custom", 1);
    CHECK_EQ(get_pw("env", cfg_var, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "custom") == 0);
    setenv("KT_HSM_PW", "", 1);
    CHECK_EQ(get_pw("env", cfg_var, NULL, pw, sizeof pw, NULL, 0), HSM_EINVAL);
    unsetenv("KT_HSM_PW");
    clear_fallback_env();
}

static void
test_password_file_modes_and_content(void)
{
    const char *dir = kt_tmpdir();
    const char *good = kt_path(dir, "pw-good"), *open_ = kt_path(dir, "pw-644");
    const char *empty = kt_path(dir, "pw-empty"), *two = kt_path(dir, "pw-2nl");
    const char *missing = kt_path(dir, "pw-missing");
    char pw[64], detail[HSM_DETAIL_MAX], kv[600];
    const char *cfg[] = {kv, NULL};

    clear_fallback_env();
    REQUIRE(kt_write_file(good, "s3cret\n", 7, 0600) == 0);
    REQUIRE(kt_write_file(open_, "s3cret\n", 7, 0644) == 0);
    REQUIRE(kt_write_file(empty, "", 0, 0600) == 0);
    REQUIRE(kt_write_file(two, "ab\n\n", 4, 0600) == 0);
    chmod(open_, 0644);

    snprintf(kv, sizeof kv, "path=%s", good);
    CHECK_EQ(get_pw("file", cfg, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "s3cret") == 0);
    /* only one trailing newline is stripped */
    snprintf(kv, sizeof kv, "path=%s", two);
    CHECK_EQ(get_pw("file", cfg, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "ab\n") == 0);
    /* the key id is the path when no path is configured */
    CHECK_EQ(get_pw("file", NULL, good, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "s3cret") == 0);
    /* MPC_PASSWORD_FILE last */
    CHECK_EQ(get_pw("file", NULL, NULL, pw, sizeof pw, NULL, 0), HSM_ECONFIG);
    setenv("MPC_PASSWORD_FILE", good, 1);
    CHECK_EQ(get_pw("file", NULL, NULL, pw, sizeof pw, NULL, 0), HSM_OK);
    CHECK(strcmp(pw, "s3cret") == 0);
    unsetenv("MPC_PASSWORD_FILE");

    snprintf(kv, sizeof kv, "path=%s", open_);
    CHECK_EQ(get_pw("file", cfg, NULL, pw, sizeof pw, detail, sizeof detail),
             HSM_EPERM);
    CHECK(strstr(detail, "0644") != NULL);
    CHECK(strstr(detail, "chmod 600") != NULL);
    CHECK(strstr(detail, open_) != NULL);
    CHECK(strstr(detail, "s3cret") == NULL);
    snprintf(kv, sizeof kv, "path=%s", empty);
    CHECK_EQ(get_pw("file", cfg, NULL, pw, sizeof pw, detail, sizeof detail),
             HSM_EINVAL);
    CHECK(strstr(detail, "empty") != NULL);
    snprintf(kv, sizeof kv, "path=%s", missing);
    CHECK_EQ(get_pw("file", cfg, NULL, pw, sizeof pw, detail, sizeof detail),
             HSM_ENOTFOUND);
}

/* ---- ECDSA DER <-> raw --------------------------------------------- */

static void
test_ecdsa_der_raw_match_openssl(void)
{
    BIGNUM *r = BN_new(), *s = BN_new();

    REQUIRE(r && s);
    for (int i = 0; i < 300; i++) {
        ECDSA_SIG *sig = ECDSA_SIG_new();
        unsigned char *der = NULL;
        uint8_t raw[64], want[64], mine[HSM_ECDSA_DER_MAX(32)];
        size_t raw_len = 0, mine_len = 0;
        int bits_r = 256 - (i % 17) * 8, bits_s = 256 - (i % 5) * 9;

        REQUIRE(sig);
        /* top bit forced on half the time, to exercise the 0x00 pad */
        BN_rand(r, bits_r, i % 2 ? BN_RAND_TOP_ONE : BN_RAND_TOP_ANY,
                BN_RAND_BOTTOM_ANY);
        BN_rand(s, bits_s, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ODD);
        if (BN_is_zero(r))
            BN_one(r);
        ECDSA_SIG_set0(sig, BN_dup(r), BN_dup(s));
        int der_len = i2d_ECDSA_SIG(sig, &der);
        REQUIRE(der_len > 0);
        BN_bn2binpad(r, want, 32);
        BN_bn2binpad(s, want + 32, 32);
        CHECK_EQ(hsm_ecdsa_der_to_raw(der, (size_t)der_len, 32, raw, sizeof raw,
                                      &raw_len),
                 HSM_OK);
        CHECK_EQ(raw_len, 64);
        CHECK_MEM(raw, want, 64);
        CHECK_EQ(hsm_ecdsa_raw_to_der(want, 64, mine, sizeof mine, &mine_len),
                 HSM_OK);
        CHECK_EQ(mine_len, der_len);
        CHECK(mine_len == (size_t)der_len && memcmp(mine, der, mine_len) == 0);
        /* OpenSSL parses our encoding back to the same numbers */
        const unsigned char *p = mine;
        ECDSA_SIG *back = d2i_ECDSA_SIG(NULL, &p, (long)mine_len);
        REQUIRE(back);
        CHECK(BN_cmp(ECDSA_SIG_get0_r(back), r) == 0);
        CHECK(BN_cmp(ECDSA_SIG_get0_s(back), s) == 0);
        ECDSA_SIG_free(back);
        OPENSSL_free(der);
        ECDSA_SIG_free(sig);
    }
    BN_free(r);
    BN_free(s);
}

static void
test_ecdsa_der_malformed_rejected(void)
{
    /* valid base: r = 1, s = 1 */
    static const uint8_t ok[] = {0x30, 0x06, 0x02, 0x01,
                                 0x01, 0x02, 0x01, 0x01};
    static const struct {
        uint8_t b[12];
        size_t n;
    } bad[] = {
        {{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01}, 7}, /* truncated */
        {{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0}, 9}, /* trailing */
        {{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 8},    /* SET tag */
        {{0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01}, 8}, /* negative r */
        {{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01},
         9},                                                   /* 00 pad */
        {{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}, 8}, /* r = 0 */
        {{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 9}, /* long */
        {{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 8}, /* seq len */
        {{0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01}, 8}, /* OCTET */
        {{0x30, 0x06, 0x02, 0x00, 0x02, 0x02, 0x01, 0x01}, 8}, /* empty int */
        {{0x30, 0x03, 0x02, 0x01, 0x01}, 5},                   /* one int */
    };
    uint8_t raw[64];
    size_t n;

    CHECK_EQ(hsm_ecdsa_der_to_raw(ok, sizeof ok, 32, raw, sizeof raw, &n),
             HSM_OK);
    CHECK(raw[31] == 1 && raw[63] == 1 && raw[0] == 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(
            hsm_ecdsa_der_to_raw(bad[i].b, bad[i].n, 32, raw, sizeof raw, &n),
            HSM_EMALFORMED);
    CHECK_EQ(hsm_ecdsa_der_to_raw(ok, 0, 32, raw, sizeof raw, &n),
             HSM_EMALFORMED);
    /* integer longer than the field */
    uint8_t longer[2 + 2 + 33 + 3] = {0x30, 2 + 33 + 3, 0x02, 33};
    memset(longer + 4, 0x11, 33);
    longer[37] = 0x02;
    longer[38] = 0x01;
    longer[39] = 0x01;
    CHECK_EQ(hsm_ecdsa_der_to_raw(longer, 40, 32, raw, sizeof raw, &n),
             HSM_EMALFORMED);
    CHECK_EQ(hsm_ecdsa_der_to_raw(ok, sizeof ok, 32, raw, 63, &n), HSM_ETOOBIG);
    /* raw -> der: odd, empty, zero r or s, small output */
    uint8_t zr[64] = {0}, der[80];
    zr[63] = 1;
    CHECK_EQ(hsm_ecdsa_raw_to_der(zr, 63, der, sizeof der, &n), HSM_EINVAL);
    CHECK_EQ(hsm_ecdsa_raw_to_der(zr, 0, der, sizeof der, &n), HSM_EINVAL);
    CHECK_EQ(hsm_ecdsa_raw_to_der(zr, 64, der, sizeof der, &n), HSM_EINVAL);
    zr[31] = 1;
    CHECK_EQ(hsm_ecdsa_raw_to_der(zr, 64, der, 7, &n), HSM_ETOOBIG);
    CHECK_EQ(hsm_ecdsa_raw_to_der(zr, 64, der, sizeof der, &n), HSM_OK);
    CHECK_EQ(n, 8);
    CHECK_MEM(der, ok, 8);
}

static void
test_pem_roundtrip_and_garbage_rejected(void)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    unsigned char *der = NULL;
    uint8_t *back = NULL;
    size_t back_len = 0;
    char *pem = NULL;
    int n;

    REQUIRE(pk);
    n = i2d_PUBKEY(pk, &der);
    REQUIRE(n > 0);
    CHECK_EQ(hsm_pubkey_der_to_pem(der, (size_t)n, &pem), HSM_OK);
    REQUIRE(pem);
    CHECK(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    CHECK(strstr(pem, "-----END PUBLIC KEY-----\n") != NULL);
    CHECK_EQ(hsm_pubkey_pem_to_der(pem, strlen(pem), &back, &back_len), HSM_OK);
    CHECK(back_len == (size_t)n && memcmp(back, der, back_len) == 0);
    hsm_free(back);
    /* PEM as OpenSSL writes it parses too */
    BIO *bio = BIO_new(BIO_s_mem());
    char *mem;
    PEM_write_bio_PUBKEY(bio, pk);
    long ml = BIO_get_mem_data(bio, &mem);
    CHECK_EQ(hsm_pubkey_pem_to_der(mem, (size_t)ml, &back, &back_len), HSM_OK);
    CHECK(back_len == (size_t)n && memcmp(back, der, back_len) == 0);
    hsm_free(back);
    BIO_free(bio);
    CHECK_EQ(hsm_pubkey_pem_to_der("hello", 5, &back, &back_len),
             HSM_EMALFORMED);
    const char *bad =
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
    CHECK_EQ(hsm_pubkey_pem_to_der(bad, strlen(bad), &back, &back_len),
             HSM_EMALFORMED);
    const char *trunc = "-----BEGIN PUBLIC KEY-----\nMFkw\n";
    CHECK_EQ(hsm_pubkey_pem_to_der(trunc, strlen(trunc), &back, &back_len),
             HSM_EMALFORMED);
    hsm_free(pem);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
}

static void
test_spki_mldsa_roundtrip_and_rejects(void)
{
    static const size_t lens[] = {1312, 1952, 2592};
    static const hsm_alg algs[] = {HSM_ALG_ML_DSA_44, HSM_ALG_ML_DSA_65,
                                   HSM_ALG_ML_DSA_87};
    uint8_t pk[2592];

    for (size_t i = 0; i < sizeof pk; i++)
        pk[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 3; i++) {
        uint8_t *der = NULL;
        size_t der_len = 0, got_len = 0;
        const uint8_t *got = NULL;
        hsm_alg a = HSM_ALG_NONE;
        CHECK_EQ(hsm_spki_mldsa_encode(algs[i], pk, lens[i], &der, &der_len),
                 HSM_OK);
        REQUIRE(der);
        /* SEQUENCE, long length, AlgorithmIdentifier with the NIST OID */
        CHECK(der[0] == 0x30 && der[1] == 0x82);
        CHECK(der[4] == 0x30 && der[5] == 0x0b && der[6] == 0x06);
        CHECK(der[16] == 17 + i);
        CHECK_EQ(hsm_spki_mldsa_decode(der, der_len, &a, &got, &got_len),
                 HSM_OK);
        CHECK_EQ(a, algs[i]);
        CHECK(got_len == lens[i] && memcmp(got, pk, lens[i]) == 0);
        CHECK_EQ(hsm_spki_mldsa_decode(der, der_len - 1, &a, &got, &got_len),
                 HSM_EMALFORMED);
        der[16] = 20;
        CHECK_EQ(hsm_spki_mldsa_decode(der, der_len, &a, &got, &got_len),
                 HSM_EMALFORMED);
        hsm_free(der);
        CHECK_EQ(
            hsm_spki_mldsa_encode(algs[i], pk, lens[i] - 1, &der, &der_len),
            HSM_EINVAL);
    }
}

/* ---- local signer -------------------------------------------------- */

static void
test_local_sign_verify_roundtrip_and_negatives(void)
{
    hsm_signer *s = NULL;
    uint8_t *sig = NULL, *sig2 = NULL, *spki = NULL;
    size_t sig_len = 0, sig2_len = 0, spki_len = 0;
    const uint8_t msg[] = "transfer 10 coins";
    bool valid = false;

    REQUIRE(hsm_signer_new("local", NULL, &s) == HSM_OK);
    CHECK_EQ(hsm_signer_sign(s, "k1", msg, sizeof msg, &sig, &sig_len), HSM_OK);
    REQUIRE(sig);
    /* DER ECDSA-Sig-Value */
    uint8_t raw[64];
    size_t raw_len;
    CHECK_EQ(hsm_ecdsa_der_to_raw(sig, sig_len, 32, raw, sizeof raw, &raw_len),
             HSM_OK);
    CHECK_EQ(hsm_signer_verify(s, "k1", msg, sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    /* independent check with OpenSSL against the public key */
    CHECK_EQ(hsm_signer_public_key(s, "k1", &spki, &spki_len), HSM_OK);
    CHECK(openssl_verify(spki, spki_len, msg, sizeof msg, sig, sig_len));
    /* wrong message */
    CHECK_EQ(
        hsm_signer_verify(s, "k1", msg, sizeof msg - 1, sig, sig_len, &valid),
        HSM_OK);
    CHECK(!valid);
    /* wrong key */
    CHECK_EQ(hsm_signer_sign(s, "k2", msg, sizeof msg, &sig2, &sig2_len),
             HSM_OK);
    CHECK_EQ(hsm_signer_verify(s, "k2", msg, sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(!valid);
    /* tampered, truncated, empty, garbage signatures: invalid, not errors */
    sig[sig_len - 1] ^= 1;
    CHECK_EQ(hsm_signer_verify(s, "k1", msg, sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(!valid);
    sig[sig_len - 1] ^= 1;
    CHECK_EQ(
        hsm_signer_verify(s, "k1", msg, sizeof msg, sig, sig_len - 1, &valid),
        HSM_OK);
    CHECK(!valid);
    CHECK_EQ(hsm_signer_verify(s, "k1", msg, sizeof msg, sig, 0, &valid),
             HSM_OK);
    CHECK(!valid);
    CHECK_EQ(
        hsm_signer_verify(s, "k1", msg, sizeof msg, msg, sizeof msg, &valid),
        HSM_OK);
    CHECK(!valid);
    /* unknown key: an error, and no key gets created */
    CHECK_EQ(
        hsm_signer_verify(s, "nokey", msg, sizeof msg, sig, sig_len, &valid),
        HSM_ENOTFOUND);
    CHECK(!valid);
    hsm_free(spki);
    spki = NULL;
    CHECK_EQ(hsm_signer_public_key(s, "nokey", &spki, &spki_len),
             HSM_ENOTFOUND);
    /* no key id anywhere: configuration error; bad key id */
    hsm_free(sig2);
    sig2 = NULL;
    clear_fallback_env();
    CHECK_EQ(hsm_signer_sign(s, NULL, msg, 1, &sig2, &sig2_len), HSM_ECONFIG);
    CHECK_EQ(hsm_signer_sign(s, "bad key", msg, 1, &sig2, &sig2_len),
             HSM_EINVAL);
    CHECK_EQ(hsm_signer_sign(s, "", msg, 1, &sig2, &sig2_len), HSM_EINVAL);
    hsm_free(sig);
    hsm_free(sig2);
    hsm_signer_free(s);
}

static void
test_local_empty_and_large_messages_roundtrip(void)
{
    hsm_signer *s = NULL;
    uint8_t *sig = NULL, *big = malloc(1024 * 1024);
    size_t sig_len = 0;
    bool valid = false;

    REQUIRE(big);
    for (size_t i = 0; i < 1024 * 1024; i++)
        big[i] = (uint8_t)(i * 31);
    REQUIRE(hsm_signer_new("", NULL, &s) == HSM_OK);
    CHECK_EQ(hsm_signer_sign(s, "e", NULL, 0, &sig, &sig_len), HSM_OK);
    CHECK_EQ(hsm_signer_verify(s, "e", NULL, 0, sig, sig_len, &valid), HSM_OK);
    CHECK(valid);
    CHECK_EQ(hsm_signer_verify(s, "e", (const uint8_t *)"x", 1, sig, sig_len,
                               &valid),
             HSM_OK);
    CHECK(!valid);
    hsm_free(sig);
    CHECK_EQ(hsm_signer_sign(s, "e", big, 1024 * 1024, &sig, &sig_len), HSM_OK);
    CHECK_EQ(hsm_signer_verify(s, "e", big, 1024 * 1024, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    big[512 * 1024] ^= 0x80;
    CHECK_EQ(hsm_signer_verify(s, "e", big, 1024 * 1024, sig, sig_len, &valid),
             HSM_OK);
    CHECK(!valid);
    hsm_free(sig);
    /* oversize is refused before any work */
    CHECK_EQ(hsm_signer_sign(s, "e", big, (size_t)HSM_MAX_MESSAGE + 1, &sig,
                             &sig_len),
             HSM_ETOOBIG);
    free(big);
    hsm_signer_free(s);
}

static void
test_local_sign_digest_matches_message_sign(void)
{
    hsm_signer *s = NULL;
    uint8_t d[32], *sig = NULL;
    size_t sig_len = 0;
    bool valid = false;
    const uint8_t msg[] = "digest me";

    REQUIRE(hsm_signer_new("local", NULL, &s) == HSM_OK);
    REQUIRE(EVP_Digest(msg, sizeof msg, d, NULL, EVP_sha256(), NULL) == 1);
    CHECK_EQ(hsm_signer_sign_digest(s, "d", d, 32, &sig, &sig_len), HSM_OK);
    /* sign_digest(SHA-256(m)) verifies as a signature over m */
    CHECK_EQ(hsm_signer_verify(s, "d", msg, sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    CHECK_EQ(hsm_signer_verify_digest(s, "d", d, 32, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    d[0] ^= 1;
    CHECK_EQ(hsm_signer_verify_digest(s, "d", d, 32, sig, sig_len, &valid),
             HSM_OK);
    CHECK(!valid);
    hsm_free(sig);
    CHECK_EQ(hsm_signer_sign_digest(s, "d", d, 31, &sig, &sig_len), HSM_EINVAL);
    hsm_signer_free(s);
}

typedef struct {
    hsm_signer *s;
    int idx;
    int ok;
    uint8_t spki[128];
    size_t spki_len;
} thr_arg;

static void *
sign_thread(void *p)
{
    thr_arg *a = p;
    char own[32];

    snprintf(own, sizeof own, "own-%d", a->idx);
    for (int i = 0; i < 8; i++) {
        uint8_t msg[16], *sig = NULL;
        size_t sig_len = 0;
        bool valid = false;
        const char *kid = i % 2 ? own : "shared";
        memset(msg, a->idx * 16 + i, sizeof msg);
        if (hsm_signer_sign(a->s, kid, msg, sizeof msg, &sig, &sig_len) ==
                HSM_OK &&
            hsm_signer_verify(a->s, kid, msg, sizeof msg, sig, sig_len,
                              &valid) == HSM_OK &&
            valid)
            a->ok++;
        hsm_free(sig);
    }
    uint8_t *spki = NULL;
    if (hsm_signer_public_key(a->s, "shared", &spki, &a->spki_len) == HSM_OK &&
        a->spki_len <= sizeof a->spki)
        memcpy(a->spki, spki, a->spki_len);
    hsm_free(spki);
    return NULL;
}

static void
run_threads(hsm_signer *s)
{
    pthread_t th[20];
    thr_arg args[20];

    for (int i = 0; i < 20; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].s = s;
        args[i].idx = i;
        REQUIRE(pthread_create(&th[i], NULL, sign_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 20; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(args[i].ok, 8);
        /* every thread saw the same "shared" key */
        CHECK(args[i].spki_len == args[0].spki_len &&
              memcmp(args[i].spki, args[0].spki, args[0].spki_len) == 0);
    }
}

static void
test_local_concurrent_20_threads_all_valid(void)
{
    hsm_signer *s = NULL;
    const char *dir = kt_path(kt_tmpdir(), "conc-store");
    hsm_store *st = open_store(dir, "pw", true);

    REQUIRE(hsm_signer_new("local", NULL, &s) == HSM_OK);
    run_threads(s);
    hsm_signer_free(s);
    /* and over a ZapDB store */
    REQUIRE(st);
    REQUIRE(hsm_signer_new_ex("local", NULL, st, &s, NULL, 0) == HSM_OK);
    run_threads(s);
    hsm_signer_free(s);
    char **keys = NULL;
    size_t n = 0;
    CHECK_EQ(hsm_store_list(st, "signer.local", &keys, &n), HSM_OK);
    CHECK_EQ(n, 21); /* shared + own-0..19 */
    hsm_list_free(keys, n);
    hsm_store_free(st);
}

static void
test_local_keys_persist_across_reopen(void)
{
    const char *dir = kt_path(kt_tmpdir(), "persist-store");
    hsm_store *st = open_store(dir, "pw-persist", true);
    hsm_signer *s = NULL;
    uint8_t *sig = NULL, *spki1 = NULL, *spki2 = NULL;
    size_t sig_len = 0, n1 = 0, n2 = 0;
    bool valid = false;
    const uint8_t msg[] = "persist";

    REQUIRE(st);
    REQUIRE(hsm_signer_new_ex("local", NULL, st, &s, NULL, 0) == HSM_OK);
    CHECK_EQ(hsm_signer_sign(s, "p1", msg, sizeof msg, &sig, &sig_len), HSM_OK);
    CHECK_EQ(hsm_signer_public_key(s, "p1", &spki1, &n1), HSM_OK);
    hsm_signer_free(s);
    hsm_store_free(st);
    /* wrong password does not open it */
    CHECK(open_store(dir, "wrong", false) == NULL);
    st = open_store(dir, "pw-persist", false);
    REQUIRE(st);
    REQUIRE(hsm_signer_new_ex(" Local ", NULL, st, &s, NULL, 0) == HSM_OK);
    CHECK_EQ(hsm_signer_public_key(s, "p1", &spki2, &n2), HSM_OK);
    CHECK(n1 == n2 && spki1 && spki2 && memcmp(spki1, spki2, n1) == 0);
    CHECK_EQ(hsm_signer_verify(s, "p1", msg, sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    hsm_free(sig);
    hsm_free(spki1);
    hsm_free(spki2);
    hsm_signer_free(s);
    hsm_store_free(st);
}

static void
test_verify_with_public_key_matches_signers(void)
{
    hsm_signer *s = NULL;
    uint8_t *sig = NULL, *spki = NULL;
    size_t sig_len = 0, spki_len = 0;
    const uint8_t msg[] = "provider-less verify";
    bool valid = false;
    hsm_config *c = NULL;

    REQUIRE(hsm_signer_new("local", NULL, &s) == HSM_OK);
    REQUIRE(hsm_signer_sign(s, "v", msg, sizeof msg, &sig, &sig_len) == HSM_OK);
    REQUIRE(hsm_signer_public_key(s, "v", &spki, &spki_len) == HSM_OK);
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ECDSA_P256_SHA256, spki,
                                        spki_len, msg, sizeof msg, sig, sig_len,
                                        &valid),
             HSM_OK);
    CHECK(valid);
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ECDSA_P256_SHA256, spki,
                                        spki_len, msg, 3, sig, sig_len, &valid),
             HSM_OK);
    CHECK(!valid);
    /* the key type must fit the algorithm; the SPKI must parse */
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ED25519, spki, spki_len, msg,
                                        sizeof msg, sig, sig_len, &valid),
             HSM_EINVAL);
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ECDSA_P256_SHA256, spki,
                                        spki_len - 1, msg, sizeof msg, sig,
                                        sig_len, &valid),
             HSM_EMALFORMED);
    hsm_free(sig);
    hsm_free(spki);
    hsm_signer_free(s);
    sig = spki = NULL;
    s = NULL;

    /* ML-DSA when the signer is built: the same answer as the signer */
    REQUIRE(hsm_config_new(&c) == HSM_OK);
    hsm_config_set(c, "param_set", "44");
    hsm_err rc = hsm_signer_new_ex("pq", c, NULL, &s, NULL, 0);
    hsm_config_free(c);
    if (rc == HSM_ENOTBUILT) {
        uint8_t fake[2] = {0x30, 0};
        CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ML_DSA_44, fake, 2, msg, 1,
                                            msg, 1, &valid),
                 HSM_EUNSUPPORTED);
        return;
    }
    REQUIRE(rc == HSM_OK);
    REQUIRE(hsm_signer_algorithm(s) == HSM_ALG_ML_DSA_44);
    REQUIRE(hsm_signer_sign(s, "m", msg, sizeof msg, &sig, &sig_len) == HSM_OK);
    REQUIRE(hsm_signer_public_key(s, "m", &spki, &spki_len) == HSM_OK);
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ML_DSA_44, spki, spki_len, msg,
                                        sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    sig[10] ^= 1;
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ML_DSA_44, spki, spki_len, msg,
                                        sizeof msg, sig, sig_len, &valid),
             HSM_OK);
    CHECK(!valid);
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ML_DSA_44, spki, spki_len, msg,
                                        sizeof msg, sig, sig_len - 1, &valid),
             HSM_OK);
    CHECK(!valid);
    CHECK_EQ(hsm_verify_with_public_key(HSM_ALG_ML_DSA_65, spki, spki_len, msg,
                                        sizeof msg, sig, sig_len, &valid),
             HSM_EINVAL);
    hsm_free(sig);
    hsm_free(spki);
    hsm_signer_free(s);
}

/* ---- provider contract: a digest-only provider ---------------------- */

/* Like a PKCS#11 or cloud backend: signs SHA-256 digests, returns raw
 * r||s, offers the public key, and nothing else. The core must hash for
 * sign(), convert nothing (the provider converts with the helper) and
 * verify through the public key. */
typedef struct {
    EVP_PKEY *pk;
    int digest_calls;
} dig_self;

static hsm_err
dig_create(const hsm_config *cfg, hsm_store *store, void **self, hsm_diag *diag)
{
    dig_self *d = calloc(1, sizeof *d);

    (void)cfg;
    (void)store;
    (void)diag;
    if (!d || !(d->pk = EVP_EC_gen("P-256"))) {
        free(d);
        return HSM_ECRYPTO;
    }
    *self = d;
    return HSM_OK;
}

static hsm_alg
dig_alg(void *self)
{
    (void)self;
    return HSM_ALG_ECDSA_P256_SHA256;
}

static hsm_err
dig_sign_digest(void *self, const char *kid, const uint8_t *d, size_t d_len,
                uint8_t **sig, size_t *sig_len, hsm_diag *diag)
{
    dig_self *ds = self;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ds->pk, NULL);
    uint8_t der[80], raw[64];
    size_t n = sizeof der, raw_len = 0;
    hsm_err rc = HSM_ECRYPTO;

    (void)kid;
    (void)diag;
    ds->digest_calls++;
    if (!c || EVP_PKEY_sign_init(c) != 1 ||
        EVP_PKEY_sign(c, der, &n, d, d_len) != 1)
        goto out;
    /* the "backend" answers raw r||s; the provider converts to DER */
    if (hsm_ecdsa_der_to_raw(der, n, 32, raw, sizeof raw, &raw_len) != HSM_OK ||
        !(*sig = malloc(HSM_ECDSA_DER_MAX(32))))
        goto out;
    rc = hsm_ecdsa_raw_to_der(raw, raw_len, *sig, HSM_ECDSA_DER_MAX(32),
                              sig_len);
out:
    EVP_PKEY_CTX_free(c);
    return rc;
}

static hsm_err
dig_public_key(void *self, const char *kid, uint8_t **der, size_t *der_len,
               hsm_diag *diag)
{
    unsigned char *buf = NULL;
    int n = i2d_PUBKEY(((dig_self *)self)->pk, &buf);

    (void)diag;
    if (strcmp(kid, "known") != 0) {
        OPENSSL_free(buf);
        return HSM_ENOTFOUND;
    }
    if (n <= 0 || !(*der = malloc((size_t)n))) {
        OPENSSL_free(buf);
        return HSM_ECRYPTO;
    }
    memcpy(*der, buf, (size_t)n);
    *der_len = (size_t)n;
    OPENSSL_free(buf);
    return HSM_OK;
}

static void
dig_destroy(void *self)
{
    EVP_PKEY_free(((dig_self *)self)->pk);
    free(self);
}

static const hsm_signer_ops dig_ops = {
    .name = "digest-only",
    .create = dig_create,
    .algorithm = dig_alg,
    .sign_digest = dig_sign_digest,
    .public_key = dig_public_key,
    .destroy = dig_destroy,
};

static void
test_provider_digest_only_core_hashes_and_verifies(void)
{
    hsm_signer *s = NULL;
    uint8_t *sig = NULL, *spki = NULL, d[32];
    size_t sig_len = 0, spki_len = 0;
    const uint8_t msg[] = "core fallbacks";
    bool valid = false;

    REQUIRE(hsm_signer_new_from_ops(&dig_ops, NULL, NULL, &s) == HSM_OK);
    CHECK(strcmp(hsm_signer_provider(s), "digest-only") == 0);
    CHECK_EQ(hsm_signer_sign(s, "known", msg, sizeof msg, &sig, &sig_len),
             HSM_OK);
    REQUIRE(sig);
    /* what sign() produced is ECDSA over SHA-256(msg), per OpenSSL */
    REQUIRE(hsm_signer_public_key(s, "known", &spki, &spki_len) == HSM_OK);
    CHECK(openssl_verify(spki, spki_len, msg, sizeof msg, sig, sig_len));
    /* verify through the public key, with and without the digest */
    CHECK_EQ(
        hsm_signer_verify(s, "known", msg, sizeof msg, sig, sig_len, &valid),
        HSM_OK);
    CHECK(valid);
    REQUIRE(EVP_Digest(msg, sizeof msg, d, NULL, EVP_sha256(), NULL) == 1);
    CHECK_EQ(hsm_signer_verify_digest(s, "known", d, 32, sig, sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    sig[sig_len - 1] ^= 1;
    CHECK_EQ(
        hsm_signer_verify(s, "known", msg, sizeof msg, sig, sig_len, &valid),
        HSM_OK);
    CHECK(!valid);
    CHECK_EQ(
        hsm_signer_verify(s, "unknown", msg, sizeof msg, sig, sig_len, &valid),
        HSM_ENOTFOUND);
    /* raw r||s is not what verify accepts: only DER */
    uint8_t raw[64];
    size_t raw_len = 0;
    sig[sig_len - 1] ^= 1;
    REQUIRE(hsm_ecdsa_der_to_raw(sig, sig_len, 32, raw, sizeof raw, &raw_len) ==
            HSM_OK);
    CHECK_EQ(
        hsm_signer_verify(s, "known", msg, sizeof msg, raw, raw_len, &valid),
        HSM_OK);
    CHECK(!valid);
    hsm_free(sig);
    hsm_free(spki);
    hsm_signer_free(s);
    static const hsm_signer_ops no_pub = {.name = "x", .create = dig_create};
    CHECK_EQ(hsm_signer_new_from_ops(&no_pub, NULL, NULL, &s), HSM_EINVAL);
}

/* ---- store --------------------------------------------------------- */

static void
store_checks(hsm_store *st)
{
    hsm_secret *v = NULL;
    char **keys = NULL;
    size_t n = 0;

    CHECK_EQ(hsm_store_get(st, "ns", "a", &v), HSM_ENOTFOUND);
    CHECK_EQ(hsm_store_list(st, "ns", &keys, &n), HSM_OK);
    CHECK_EQ(n, 0);
    hsm_list_free(keys, n);
    CHECK_EQ(hsm_store_put(st, "ns", "b", (const uint8_t *)"2", 1), HSM_OK);
    CHECK_EQ(hsm_store_put(st, "ns", "a", (const uint8_t *)"1", 1), HSM_OK);
    CHECK_EQ(hsm_store_put(st, "other", "c", (const uint8_t *)"3", 1), HSM_OK);
    CHECK_EQ(hsm_store_put_new(st, "ns", "a", (const uint8_t *)"x", 1),
             HSM_EEXIST);
    CHECK_EQ(hsm_store_get(st, "ns", "a", &v), HSM_OK);
    CHECK(v && v->len == 1 && v->data[0] == '1');
    hsm_secret_free(v);
    CHECK_EQ(hsm_store_put(st, "ns", "a", (const uint8_t *)"11", 2), HSM_OK);
    CHECK_EQ(hsm_store_get(st, "ns", "a", &v), HSM_OK);
    CHECK(v && v->len == 2 && memcmp(v->data, "11", 2) == 0);
    hsm_secret_free(v);
    CHECK_EQ(hsm_store_list(st, "ns", &keys, &n), HSM_OK);
    REQUIRE(n == 2);
    CHECK(strcmp(keys[0], "a") == 0 && strcmp(keys[1], "b") == 0);
    hsm_list_free(keys, n);
    CHECK_EQ(hsm_store_del(st, "ns", "a"), HSM_OK);
    CHECK_EQ(hsm_store_del(st, "ns", "a"), HSM_ENOTFOUND);
    CHECK_EQ(hsm_store_put_new(st, "ns", "a", NULL, 0), HSM_OK);
    CHECK_EQ(hsm_store_get(st, "ns", "a", &v), HSM_OK);
    CHECK(v && v->len == 0);
    hsm_secret_free(v);
    CHECK_EQ(hsm_store_put(st, "", "a", (const uint8_t *)"1", 1), HSM_EINVAL);
    /* batches are all or nothing */
    const char *bk[] = {"x1", "x2", "a"};
    const uint8_t *bv[] = {(const uint8_t *)"1", (const uint8_t *)"2",
                           (const uint8_t *)"3"};
    size_t bl[] = {1, 1, 1}, conflict = 99;
    CHECK_EQ(hsm_store_put_batch(st, "ns", bk, bv, bl, 3, true, &conflict),
             HSM_EEXIST);
    CHECK_EQ(conflict, 2);
    CHECK_EQ(hsm_store_get(st, "ns", "x1", &v), HSM_ENOTFOUND);
    CHECK_EQ(hsm_store_put_batch(st, "ns", bk, bv, bl, 3, false, NULL), HSM_OK);
    CHECK_EQ(hsm_store_get(st, "ns", "x2", &v), HSM_OK);
    CHECK(v && v->len == 1 && v->data[0] == '2');
    hsm_secret_free(v);
    CHECK_EQ(hsm_store_get(st, "ns", "a", &v), HSM_OK);
    CHECK(v && v->len == 1 && v->data[0] == '3');
    hsm_secret_free(v);
    CHECK_EQ(hsm_store_put(st, "ns", "", (const uint8_t *)"1", 1), HSM_EINVAL);
}

static void
test_store_memory_and_zapdb_behave_alike(void)
{
    hsm_store *st = NULL;

    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    store_checks(st);
    hsm_store_free(st);
    st = open_store(kt_path(kt_tmpdir(), "store-a"), "pw", true);
    REQUIRE(st);
    store_checks(st);
    hsm_store_free(st);
    /* a borrowed ZapDB handle: namespace ns lives in bucket "<prefix>.ns" */
    zap_opts zo;
    zap_db *db = NULL;
    uint8_t *zv = NULL;
    size_t zv_len = 0;
    zap_opts_default(&zo);
    zo.flags = ZAP_CREATE;
    zo.kdf_opslimit = 1;
    zo.kdf_memlimit = 8192;
    REQUIRE(zap_open(kt_path(kt_tmpdir(), "store-z"), &zo, "pw", 2, &db) ==
            ZAP_OK);
    REQUIRE(hsm_store_from_zapdb(db, "custom", &st) == HSM_OK);
    CHECK_EQ(hsm_store_put(st, "ns", "k", (const uint8_t *)"v", 1), HSM_OK);
    CHECK_EQ(zap_get(db, "custom.ns", (const uint8_t *)"k", 1, &zv, &zv_len),
             ZAP_OK);
    CHECK(zv_len == 1 && zv && zv[0] == 'v');
    zap_free(zv, zv_len);
    hsm_store_free(st); /* borrowed: the handle stays open */
    CHECK_EQ(zap_exists(db, "custom.ns", (const uint8_t *)"k", 1, &(bool){0}),
             ZAP_OK);
    zap_close(db);
    CHECK_EQ(hsm_store_from_zapdb(NULL, NULL, &st), HSM_EINVAL);
    /* missing store without create */
    CHECK(open_store(kt_path(kt_tmpdir(), "store-none"), "pw", false) == NULL);
}

/* ---- vault --------------------------------------------------------- */

static hsm_password_provider *
env_provider(const char *var)
{
    char kv[64];
    const char *cfg[] = {kv, NULL};
    hsm_config *c;
    hsm_password_provider *p = NULL;

    snprintf(kv, sizeof kv, "env_var=%s", var);
    c = cfg_of(cfg);
    if (hsm_password_provider_new("env", c, &p) != HSM_OK)
        p = NULL;
    hsm_config_free(c);
    return p;
}

static hsm_share_meta
sample_meta(void)
{
    static uint8_t pub[33] = {0x02, 1, 2, 3}, gk[32] = {9, 8, 7};
    hsm_share_meta m = {HSM_SCHEME_FROST, 2,  2,        3, pub,
                        sizeof pub,       gk, sizeof gk};
    return m;
}

static void
test_vault_roundtrip_and_metadata(void)
{
    hsm_store *st = NULL;
    hsm_password_provider *p = NULL;
    hsm_vault *v = NULL;
    hsm_secret *share = NULL;
    hsm_share_meta m = sample_meta(), got = {0};
    const uint8_t data[] = "secret share bytes";

    setenv("KT_VAULT_PW", "vault-pass", 1);
    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    REQUIRE((p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v) == HSM_OK);
    CHECK_EQ(hsm_vault_store(v, "share-1", data, sizeof data, &m, false),
             HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "share-1", &share, &got), HSM_OK);
    REQUIRE(share);
    CHECK(share->len == sizeof data &&
          memcmp(share->data, data, sizeof data) == 0);
    CHECK_EQ(got.scheme, HSM_SCHEME_FROST);
    CHECK_EQ(got.party_index, 2);
    CHECK_EQ(got.threshold, 2);
    CHECK_EQ(got.total_parties, 3);
    CHECK(got.public_share_len == 33 &&
          memcmp(got.public_share, m.public_share, 33) == 0);
    CHECK(got.group_key_len == 32 &&
          memcmp(got.group_key, m.group_key, 32) == 0);
    hsm_share_meta_clear(&got);
    hsm_secret_free(share);
    CHECK_EQ(hsm_vault_metadata(v, "share-1", &got), HSM_OK);
    CHECK_EQ(got.total_parties, 3);
    hsm_share_meta_clear(&got);
    /* the record in the store is not the plaintext */
    hsm_secret *rec = NULL;
    CHECK_EQ(hsm_store_get(st, "vault", "share-1", &rec), HSM_OK);
    CHECK(rec && memmem(rec->data, rec->len, data, sizeof data - 1) == NULL);
    hsm_secret_free(rec);
    /* bad inputs */
    hsm_share_meta bad = m;
    bad.threshold = 0;
    CHECK_EQ(hsm_vault_store(v, "x", data, sizeof data, &bad, false),
             HSM_EINVAL);
    bad.threshold = 4;
    CHECK_EQ(hsm_vault_store(v, "x", data, sizeof data, &bad, false),
             HSM_EINVAL);
    bad = m;
    bad.total_parties = 0;
    CHECK_EQ(hsm_vault_store(v, "x", data, sizeof data, &bad, false),
             HSM_EINVAL);
    CHECK_EQ(hsm_vault_store(v, "x", data, 0, &m, false), HSM_EINVAL);
    CHECK_EQ(hsm_vault_store(v, "bad id", data, 1, &m, false), HSM_EINVAL);
    uint8_t *huge = calloc(1, HSM_VAULT_MAX_SHARE + 1);
    REQUIRE(huge);
    CHECK_EQ(hsm_vault_store(v, "x", huge, HSM_VAULT_MAX_SHARE + 1, &m, false),
             HSM_ETOOBIG);
    free(huge);
    CHECK_EQ(hsm_vault_load(v, "missing", &share, NULL), HSM_ENOTFOUND);
    hsm_vault_free(v);
    hsm_password_provider_free(p);
    hsm_store_free(st);
}

static void
test_vault_wrong_password_and_tampering_detected(void)
{
    hsm_store *st = NULL;
    hsm_password_provider *p = NULL;
    hsm_vault *v = NULL;
    hsm_secret *share = NULL, *rec = NULL;
    hsm_share_meta m = sample_meta();
    const uint8_t data[] = "tamper target";

    setenv("KT_VAULT_PW", "right", 1);
    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    REQUIRE((p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v) == HSM_OK);
    REQUIRE(hsm_vault_store(v, "t", data, sizeof data, &m, false) == HSM_OK);
    REQUIRE(hsm_store_get(st, "vault", "t", &rec) == HSM_OK);
    size_t n = rec->len;
    uint8_t *orig = malloc(n);
    REQUIRE(orig);
    memcpy(orig, rec->data, n);
    hsm_secret_free(rec);

    /* wrong password: a fresh vault whose provider returns another one */
    setenv("KT_VAULT_PW", "wrong", 1);
    hsm_vault *v2 = NULL;
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v2) == HSM_OK);
    CHECK_EQ(hsm_vault_load(v2, "t", &share, NULL), HSM_ECORRUPT);
    CHECK(share == NULL);
    hsm_vault_free(v2);
    /* the first vault cached the right password (no TTL) */
    CHECK_EQ(hsm_vault_load(v, "t", &share, NULL), HSM_OK);
    hsm_secret_free(share);
    share = NULL;

    /* tamper each region: ciphertext (last-17), tag (last), metadata
     * (threshold at 12, public share at 24), magic (0) */
    size_t offs[] = {n - 17, n - 1, 15, 24, 0};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        orig[offs[i]] ^= 0x01;
        REQUIRE(hsm_store_put(st, "vault", "t", orig, n) == HSM_OK);
        CHECK_EQ(hsm_vault_load(v, "t", &share, NULL), HSM_ECORRUPT);
        CHECK(share == NULL);
        orig[offs[i]] ^= 0x01;
    }
    /* truncated record */
    REQUIRE(hsm_store_put(st, "vault", "t", orig, n - 1) == HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "t", &share, NULL), HSM_ECORRUPT);
    REQUIRE(hsm_store_put(st, "vault", "t", orig, 10) == HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "t", &share, NULL), HSM_ECORRUPT);
    /* the record moved to another id does not decrypt */
    REQUIRE(hsm_store_put(st, "vault", "t2", orig, n) == HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "t2", &share, NULL), HSM_ECORRUPT);
    /* intact again */
    REQUIRE(hsm_store_put(st, "vault", "t", orig, n) == HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "t", &share, NULL), HSM_OK);
    hsm_secret_free(share);
    free(orig);
    hsm_vault_free(v);
    hsm_password_provider_free(p);
    hsm_store_free(st);
}

static void
test_vault_overwrite_delete_list(void)
{
    hsm_store *st = NULL;
    hsm_password_provider *p = NULL;
    hsm_vault *v = NULL;
    hsm_secret *share = NULL;
    hsm_share_meta m = sample_meta();
    char **ids = NULL;
    size_t n = 0;

    setenv("KT_VAULT_PW", "pw", 1);
    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    REQUIRE((p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v) == HSM_OK);
    CHECK_EQ(hsm_vault_store(v, "b", (const uint8_t *)"one", 3, &m, false),
             HSM_OK);
    CHECK_EQ(hsm_vault_store(v, "a", (const uint8_t *)"two", 3, &m, false),
             HSM_OK);
    CHECK_EQ(hsm_vault_store(v, "b", (const uint8_t *)"new", 3, &m, false),
             HSM_EEXIST);
    CHECK_EQ(hsm_vault_load(v, "b", &share, NULL), HSM_OK);
    CHECK(share && memcmp(share->data, "one", 3) == 0);
    hsm_secret_free(share);
    CHECK_EQ(hsm_vault_store(v, "b", (const uint8_t *)"new", 3, &m, true),
             HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "b", &share, NULL), HSM_OK);
    CHECK(share && memcmp(share->data, "new", 3) == 0);
    hsm_secret_free(share);
    CHECK_EQ(hsm_vault_list(v, &ids, &n), HSM_OK);
    REQUIRE(n == 2);
    CHECK(strcmp(ids[0], "a") == 0 && strcmp(ids[1], "b") == 0);
    hsm_list_free(ids, n);
    CHECK_EQ(hsm_vault_delete(v, "a"), HSM_OK);
    CHECK_EQ(hsm_vault_delete(v, "a"), HSM_ENOTFOUND);
    CHECK_EQ(hsm_vault_load(v, "a", &share, NULL), HSM_ENOTFOUND);
    CHECK_EQ(hsm_vault_list(v, &ids, &n), HSM_OK);
    CHECK(n == 1 && strcmp(ids[0], "b") == 0);
    hsm_list_free(ids, n);
    hsm_vault_free(v);
    hsm_password_provider_free(p);
    hsm_store_free(st);
}

static void
test_vault_persists_across_reopen(void)
{
    const char *dir = kt_path(kt_tmpdir(), "vault-store");
    hsm_store *st = open_store(dir, "db-pw", true);
    hsm_password_provider *p = NULL;
    hsm_vault *v = NULL;
    hsm_secret *share = NULL;
    hsm_share_meta m = sample_meta(), got = {0};

    setenv("KT_VAULT_PW", "persist-pw", 1);
    REQUIRE(st && (p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v) == HSM_OK);
    CHECK_EQ(hsm_vault_store(v, "keep", (const uint8_t *)"kept", 4, &m, false),
             HSM_OK);
    hsm_vault_free(v);
    hsm_store_free(st);
    st = open_store(dir, "db-pw", false);
    REQUIRE(st);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v) == HSM_OK);
    CHECK_EQ(hsm_vault_load(v, "keep", &share, &got), HSM_OK);
    CHECK(share && share->len == 4 && memcmp(share->data, "kept", 4) == 0);
    CHECK_EQ(got.party_index, 2);
    hsm_share_meta_clear(&got);
    hsm_secret_free(share);
    hsm_vault_free(v);
    hsm_password_provider_free(p);
    hsm_store_free(st);
}

static void
test_vault_password_cached_then_refetched_after_ttl(void)
{
    const char *f = kt_path(kt_tmpdir(), "vault-pw-file");
    char kv[600];
    const char *cfg[] = {kv, NULL};
    hsm_config *c;
    hsm_password_provider *p = NULL;
    hsm_store *st = NULL;
    hsm_vault *v0 = NULL, *v1 = NULL;
    hsm_secret *share = NULL;
    hsm_share_meta m = sample_meta();

    REQUIRE(kt_write_file(f, "first", 5, 0600) == 0);
    snprintf(kv, sizeof kv, "path=%s", f);
    c = cfg_of(cfg);
    REQUIRE(hsm_password_provider_new("file", c, &p) == HSM_OK);
    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v0) == HSM_OK);
    REQUIRE(hsm_vault_new(st, p, NULL, 1, &v1) == HSM_OK);
    CHECK_EQ(hsm_vault_store(v0, "s", (const uint8_t *)"x", 1, &m, false),
             HSM_OK);
    CHECK_EQ(hsm_vault_load(v1, "s", &share, NULL), HSM_OK);
    hsm_secret_free(share);
    share = NULL;
    /* the file changes: vaults keep using the password they hold */
    REQUIRE(kt_write_file(f, "second", 6, 0600) == 0);
    CHECK_EQ(hsm_vault_load(v0, "s", &share, NULL), HSM_OK);
    hsm_secret_free(share);
    share = NULL;
    CHECK_EQ(hsm_vault_load(v1, "s", &share, NULL), HSM_OK);
    hsm_secret_free(share);
    share = NULL;
    /* after the TTL v1 fetches the new (wrong) password; v0 (no TTL) not */
    sleep(2);
    CHECK_EQ(hsm_vault_load(v1, "s", &share, NULL), HSM_ECORRUPT);
    CHECK_EQ(hsm_vault_load(v0, "s", &share, NULL), HSM_OK);
    hsm_secret_free(share);
    share = NULL;
    /* forgetting it makes v0 refetch too */
    hsm_vault_forget_password(v0);
    CHECK_EQ(hsm_vault_load(v0, "s", &share, NULL), HSM_ECORRUPT);
    hsm_vault_free(v0);
    hsm_vault_free(v1);
    hsm_store_free(st);
    hsm_password_provider_free(p);
    hsm_config_free(c);
}

typedef struct {
    hsm_vault *v;
    int idx;
    int ok;
} vthr;

static void *
vault_thread(void *p)
{
    vthr *a = p;
    hsm_share_meta m = sample_meta();
    char id[32];
    uint8_t data[40];

    for (int i = 0; i < 10; i++) {
        hsm_secret *s = NULL;
        snprintf(id, sizeof id, "t%d-%d", a->idx, i);
        memset(data, a->idx + i, sizeof data);
        if (hsm_vault_store(a->v, id, data, sizeof data, &m, false) == HSM_OK &&
            hsm_vault_load(a->v, id, &s, NULL) == HSM_OK &&
            s->len == sizeof data && memcmp(s->data, data, sizeof data) == 0)
            a->ok++;
        hsm_secret_free(s);
    }
    return NULL;
}

static void
test_vault_concurrent_threads_consistent(void)
{
    hsm_store *st = open_store(kt_path(kt_tmpdir(), "vault-conc"), "pw", true);
    hsm_password_provider *p = NULL;
    hsm_vault *v = NULL;
    pthread_t th[8];
    vthr args[8];
    char **ids = NULL;
    size_t n = 0;

    setenv("KT_VAULT_PW", "conc", 1);
    REQUIRE(st && (p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE(hsm_vault_new(st, p, NULL, 0, &v) == HSM_OK);
    for (int i = 0; i < 8; i++) {
        args[i] = (vthr){v, i, 0};
        REQUIRE(pthread_create(&th[i], NULL, vault_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(args[i].ok, 10);
    CHECK_EQ(hsm_vault_list(v, &ids, &n), HSM_OK);
    CHECK_EQ(n, 80);
    hsm_list_free(ids, n);
    hsm_vault_free(v);
    hsm_password_provider_free(p);
    hsm_store_free(st);
}

/* ---- backup -------------------------------------------------------- */

static hsm_vault *
mem_vault(hsm_store **st, hsm_password_provider *p)
{
    hsm_vault *v = NULL;

    if (hsm_store_new_memory(st) != HSM_OK)
        return NULL;
    if (hsm_vault_new(*st, p, NULL, 0, &v) != HSM_OK)
        return NULL;
    return v;
}

static void
test_backup_restore_roundtrip_format(void)
{
    const char *file = kt_path(kt_tmpdir(), "shares.backup");
    hsm_store *st1 = NULL, *st2 = NULL;
    hsm_password_provider *p;
    hsm_vault *v1, *v2;
    hsm_share_meta m = sample_meta(), got = {0};
    hsm_secret *share = NULL;
    size_t count = 0;
    struct stat sb;

    setenv("KT_VAULT_PW", "vault-pw", 1);
    REQUIRE((p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE((v1 = mem_vault(&st1, p)) && (v2 = mem_vault(&st2, p)));
    CHECK_EQ(
        hsm_vault_store(v1, "alpha", (const uint8_t *)"AAAA", 4, &m, false),
        HSM_OK);
    m.party_index = 3;
    CHECK_EQ(
        hsm_vault_store(v1, "beta", (const uint8_t *)"BBBBB", 5, &m, false),
        HSM_OK);
    CHECK_EQ(
        hsm_vault_backup(v1, file, (const uint8_t *)"backup-pw", 9, &count),
        HSM_OK);
    CHECK_EQ(count, 2);
    REQUIRE(stat(file, &sb) == 0);
    CHECK_EQ(sb.st_mode & 0777, 0600);

    /* envelope format, checked independently with jansson + OpenSSL */
    json_error_t jerr;
    json_t *o = json_load_file(file, 0, &jerr);
    REQUIRE(json_is_object(o));
    CHECK_EQ(json_integer_value(json_object_get(o, "version")), 1);
    CHECK_EQ(json_integer_value(json_object_get(o, "count")), 2);
    uint8_t *salt = NULL, *nonce = NULL, *data = NULL;
    size_t salt_len = 0, nonce_len = 0, data_len = 0;
    const char *s_salt = json_string_value(json_object_get(o, "salt"));
    const char *s_nonce = json_string_value(json_object_get(o, "nonce"));
    const char *s_data = json_string_value(json_object_get(o, "data"));
    const char *kid = json_string_value(json_object_get(o, "key_id"));
    REQUIRE(s_salt && s_nonce && s_data && kid);
    REQUIRE(kc_b64_decode(s_salt, strlen(s_salt), KC_B64_STD, &salt,
                          &salt_len) == 0);
    REQUIRE(kc_b64_decode(s_nonce, strlen(s_nonce), KC_B64_STD, &nonce,
                          &nonce_len) == 0);
    REQUIRE(kc_b64_decode(s_data, strlen(s_data), KC_B64_STD, &data,
                          &data_len) == 0);
    CHECK_EQ(salt_len, 32);
    CHECK_EQ(nonce_len, 12);
    CHECK_EQ(strlen(kid), 16);
    uint8_t key[32], h[32];
    char hex[65];
    REQUIRE(EVP_PBE_scrypt("backup-pw", 9, salt, salt_len, 32768, 8, 1,
                           64 * 1024 * 1024, key, 32) == 1);
    REQUIRE(EVP_Digest(key, 32, h, NULL, EVP_sha256(), NULL) == 1);
    kc_hex_encode(h, 32, hex, sizeof hex);
    CHECK(strncmp(hex, kid, 16) == 0);
    /* data = AES-256-GCM(ct || tag16) over a JSON list of 2 shares */
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t *pt = malloc(data_len);
    int l1 = 0, l2 = 0;
    REQUIRE(c && pt && data_len > 16);
    CHECK(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) == 1);
    CHECK(EVP_DecryptUpdate(c, pt, &l1, data, (int)data_len - 16) == 1);
    CHECK(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
                              data + data_len - 16) == 1);
    CHECK(EVP_DecryptFinal_ex(c, pt + l1, &l2) == 1);
    json_t *list = json_loadb((const char *)pt, (size_t)(l1 + l2), 0, &jerr);
    CHECK(json_is_array(list) && json_array_size(list) == 2);
    json_decref(list);
    kc_free_wipe(pt, data_len);
    EVP_CIPHER_CTX_free(c);
    free(salt);
    free(nonce);
    free(data);
    json_decref(o);

    /* restore into the empty vault */
    CHECK_EQ(hsm_vault_restore(v2, file, (const uint8_t *)"backup-pw", 9, false,
                               &count),
             HSM_OK);
    CHECK_EQ(count, 2);
    CHECK_EQ(hsm_vault_load(v2, "beta", &share, &got), HSM_OK);
    CHECK(share && share->len == 5 && memcmp(share->data, "BBBBB", 5) == 0);
    CHECK_EQ(got.party_index, 3);
    CHECK(got.group_key_len == 32 &&
          memcmp(got.group_key, m.group_key, 32) == 0);
    hsm_share_meta_clear(&got);
    hsm_secret_free(share);
    /* existing ids: refused unless overwrite, and nothing changes (beta,
     * absent, is not restored either: all or nothing) */
    CHECK_EQ(hsm_vault_delete(v2, "beta"), HSM_OK);
    CHECK_EQ(hsm_vault_store(v2, "alpha", (const uint8_t *)"ZZ", 2, &m, true),
             HSM_OK);
    CHECK_EQ(hsm_vault_restore(v2, file, (const uint8_t *)"backup-pw", 9, false,
                               &count),
             HSM_EEXIST);
    CHECK_EQ(hsm_vault_load(v2, "alpha", &share, NULL), HSM_OK);
    CHECK(share && share->len == 2);
    hsm_secret_free(share);
    CHECK(strstr(hsm_vault_last_error(v2), "'alpha' already exists") != NULL);
    CHECK_EQ(hsm_vault_load(v2, "beta", &share, NULL), HSM_ENOTFOUND);
    CHECK_EQ(hsm_vault_restore(v2, file, (const uint8_t *)"backup-pw", 9, true,
                               &count),
             HSM_OK);
    CHECK_EQ(hsm_vault_load(v2, "alpha", &share, NULL), HSM_OK);
    CHECK(share && share->len == 4 && memcmp(share->data, "AAAA", 4) == 0);
    hsm_secret_free(share);
    hsm_vault_free(v1);
    hsm_vault_free(v2);
    hsm_store_free(st1);
    hsm_store_free(st2);
    hsm_password_provider_free(p);
}

static void
test_backup_wrong_password_and_corruption_detected(void)
{
    const char *file = kt_path(kt_tmpdir(), "bad.backup");
    const char *bad = kt_path(kt_tmpdir(), "bad2.backup");
    hsm_store *st1 = NULL, *st2 = NULL;
    hsm_password_provider *p;
    hsm_vault *v1, *v2;
    hsm_share_meta m = sample_meta();
    size_t count = 0, len = 0;
    char **ids = NULL;

    setenv("KT_VAULT_PW", "vault-pw", 1);
    REQUIRE((p = env_provider("KT_VAULT_PW")) != NULL);
    REQUIRE((v1 = mem_vault(&st1, p)) && (v2 = mem_vault(&st2, p)));
    CHECK_EQ(hsm_vault_store(v1, "only", (const uint8_t *)"X", 1, &m, false),
             HSM_OK);
    /* NULL password: the vault's own */
    CHECK_EQ(hsm_vault_backup(v1, file, NULL, 0, &count), HSM_OK);
    CHECK_EQ(
        hsm_vault_restore(v2, file, (const uint8_t *)"nope", 4, false, &count),
        HSM_EAUTH);
    CHECK(strstr(hsm_vault_last_error(v2), "wrong backup password") != NULL);
    CHECK_EQ(hsm_vault_restore(v2, file, NULL, 0, false, &count), HSM_OK);
    CHECK_EQ(count, 1);

    /* flip one byte of the ciphertext inside "data" */
    uint8_t *text = kt_read_all(file, &len);
    REQUIRE(text);
    json_error_t jerr;
    json_t *o = json_loadb((const char *)text, len, 0, &jerr);
    REQUIRE(o);
    char *s_data = strdup(json_string_value(json_object_get(o, "data")));
    uint8_t *data = NULL;
    size_t data_len = 0;
    REQUIRE(kc_b64_decode(s_data, strlen(s_data), KC_B64_STD, &data,
                          &data_len) == 0);
    data[3] ^= 0x40;
    char *b = kc_b64_encode(data, data_len, KC_B64_STD);
    json_object_set_new(o, "data", json_string(b));
    char *out = json_dumps(o, 0);
    REQUIRE(kt_write_file(bad, out, strlen(out), 0600) == 0);
    hsm_vault_delete(v2, "only");
    CHECK_EQ(hsm_vault_restore(v2, bad, NULL, 0, false, &count), HSM_ECORRUPT);
    free(out);
    free(b);
    free(data);
    /* count that does not match the content */
    json_object_set_new(o, "data", json_string(s_data));
    json_object_set_new(o, "count", json_integer(5));
    out = json_dumps(o, 0);
    REQUIRE(kt_write_file(bad, out, strlen(out), 0600) == 0);
    CHECK_EQ(hsm_vault_restore(v2, bad, NULL, 0, false, &count), HSM_ECORRUPT);
    free(out);
    free(s_data);
    json_decref(o);
    /* truncated, empty, not JSON, wrong version, missing */
    REQUIRE(kt_write_file(bad, text, len / 2, 0600) == 0);
    CHECK_EQ(hsm_vault_restore(v2, bad, NULL, 0, false, &count),
             HSM_EMALFORMED);
    REQUIRE(kt_write_file(bad, "", 0, 0600) == 0);
    CHECK_EQ(hsm_vault_restore(v2, bad, NULL, 0, false, &count),
             HSM_EMALFORMED);
    const char *v2txt = "{\"version\":2}";
    REQUIRE(kt_write_file(bad, v2txt, strlen(v2txt), 0600) == 0);
    CHECK_EQ(hsm_vault_restore(v2, bad, NULL, 0, false, &count),
             HSM_EMALFORMED);
    CHECK_EQ(hsm_vault_restore(v2, kt_path(kt_tmpdir(), "no-such"), NULL, 0,
                               false, &count),
             HSM_ENOTFOUND);
    /* nothing was restored by the failed attempts */
    CHECK_EQ(hsm_vault_list(v2, &ids, &count), HSM_OK);
    CHECK_EQ(count, 0);
    hsm_list_free(ids, count);
    free(text);
    hsm_vault_free(v1);
    hsm_vault_free(v2);
    hsm_store_free(st1);
    hsm_store_free(st2);
    hsm_password_provider_free(p);
}

static void
test_backup_list_parser_rejects_bad_entries(void)
{
    hsm_backup_item *its = NULL;
    size_t n = 0;
    static const char *const bad[] = {
        "{}",
        "[1]",
        "[{}]",
        "[{\"key_id\":\"a b\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"QQ==\"}]",
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":2,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"QQ==\"}]",
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"\"}]",
        "[{\"key_id\":\"a\",\"scheme\":-1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"QQ==\"}]",
    };
    const char *good =
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"AQI=\","
        "\"share\":\"QQ==\"}]";
    const char *dup =
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"QQ==\"},"
        "{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"QQ==\"}]";

    CHECK_EQ(
        hsm_backup_list_parse((const uint8_t *)good, strlen(good), &its, &n),
        HSM_OK);
    CHECK(n == 1 && its[0].share->len == 1 && its[0].share->data[0] == 'A');
    CHECK(its && its[0].meta.group_key_len == 2);
    hsm_backup_items_free(its, n);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(hsm_backup_list_parse((const uint8_t *)bad[i], strlen(bad[i]),
                                       &its, &n),
                 HSM_EMALFORMED);
    CHECK_EQ(hsm_backup_list_parse((const uint8_t *)dup, strlen(dup), &its, &n),
             HSM_EMALFORMED);
    /* any member order and JSON blanks are fine */
    const char *spaced =
        " [ {\n \"share\" : \"QUI=\", \"key_id\":\"z\", \"group_key\":\"\","
        "\t\"public_share\":\"AA==\", \"total_parties\" : 5,"
        "\"threshold\":3, \"party_index\":0, \"scheme\":4294967295 } ]\r\n";
    CHECK_EQ(hsm_backup_list_parse((const uint8_t *)spaced, strlen(spaced),
                                   &its, &n),
             HSM_OK);
    CHECK(n == 1 && its && its[0].share->len == 2 &&
          memcmp(its[0].share->data, "AB", 2) == 0);
    CHECK(its && its[0].meta.scheme == 4294967295u &&
          its[0].meta.total_parties == 5 && its[0].meta.public_share_len == 1);
    hsm_backup_items_free(its, n);
    CHECK_EQ(hsm_backup_list_parse((const uint8_t *)"[]", 2, &its, &n), HSM_OK);
    CHECK_EQ(n, 0);
    hsm_backup_items_free(its, n);
    /* trailing bytes, leading zeros, escapes, overflow, unknown or missing
     * members */
    static const char *const bad2[] = {
        "[] x",
        "[{\"key_id\":\"a\",\"scheme\":01,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":"
        "\"QQ==\"}]",
        "[{\"key_id\":\"a\\u0041\",\"scheme\":1,\"party_index\":1,"
        "\"threshold\":"
        "1,\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":\"QQ==\"}]",
        "[{\"key_id\":\"a\",\"scheme\":4294967296,\"party_index\":1,"
        "\"threshold\":1,\"total_parties\":1,\"public_share\":\"\",\"group_"
        "key\":"
        "\"\",\"share\":\"QQ==\"}]",
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":"
        "\"QQ==\",\"extra\":1}]",
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"share\":\"QQ==\"}]",
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":"
        "\"QQ=\"}]",
        "[{\"key_id\":\"a\",\"scheme\":1,\"party_index\":1,\"threshold\":1,"
        "\"total_parties\":1,\"public_share\":\"\",\"group_key\":\"\","
        "\"share\":"
        "\"QQ==\"},]",
        "[",
        "",
    };
    for (size_t i = 0; i < sizeof bad2 / sizeof bad2[0]; i++)
        CHECK_EQ(hsm_backup_list_parse((const uint8_t *)bad2[i],
                                       strlen(bad2[i]), &its, &n),
                 HSM_EMALFORMED);
}

/* ---- scrypt known answers (RFC 7914 section 12) -------------------- */

static void
test_scrypt_rfc7914_vectors_match(void)
{
    char path[1024];
    json_error_t jerr;
    json_t *root, *cases;
    size_t ran = 0;
    bool slow = getenv("KMS_SLOW_TESTS") != NULL;

    snprintf(path, sizeof path, "%s/rfc7914/scrypt_rfc7914.json",
             kt_vectors_dir());
    root = json_load_file(path, 0, &jerr);
    REQUIRE(root);
    cases = json_object_get(root, "scrypt");
    REQUIRE(json_is_array(cases) && json_array_size(cases) == 4);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *P = json_string_value(json_object_get(c, "P"));
        const char *S = json_string_value(json_object_get(c, "S"));
        uint64_t N = (uint64_t)json_integer_value(json_object_get(c, "N"));
        uint64_t r = (uint64_t)json_integer_value(json_object_get(c, "r"));
        uint64_t p = (uint64_t)json_integer_value(json_object_get(c, "p"));
        size_t dk_len = (size_t)json_integer_value(json_object_get(c, "dkLen"));
        size_t want_len = 0;
        uint8_t *want =
            kt_unhex(json_string_value(json_object_get(c, "DK")), &want_len);
        uint8_t got[64];
        REQUIRE(P && S && want && dk_len == want_len && dk_len <= sizeof got);
        if (N >= 1048576 && !slow) { /* 1 GiB: opt-in with KMS_SLOW_TESTS */
            free(want);
            continue;
        }
        uint64_t mem = 128 * r * N + 128 * r * p + (1u << 20);
        CHECK_EQ(hsm_scrypt((const uint8_t *)P, strlen(P), (const uint8_t *)S,
                            strlen(S), N, r, p, mem, got, dk_len),
                 HSM_OK);
        CHECK_MEM(got, want, dk_len);
        /* one changed password byte changes the output */
        if (strlen(P) > 0) {
            char P2[64];
            kc_strlcpy(P2, P, sizeof P2);
            P2[0] ^= 1;
            CHECK_EQ(hsm_scrypt((const uint8_t *)P2, strlen(P2),
                                (const uint8_t *)S, strlen(S), N, r, p, mem,
                                got, dk_len),
                     HSM_OK);
            CHECK(memcmp(got, want, dk_len) != 0);
        }
        free(want);
        ran++;
    }
    CHECK(ran >= 3);
    /* the memory cap is enforced: N=16384, r=8 needs 16 MiB */
    uint8_t out[32];
    CHECK_EQ(hsm_scrypt((const uint8_t *)"p", 1, (const uint8_t *)"s", 1, 16384,
                        8, 1, 1024 * 1024, out, sizeof out),
             HSM_ECRYPTO);
    json_decref(root);
}

/* ---- a toy threshold scheme (test only) --------------------------- */
/* share = "TOY1" | party u32 | t u32 | n u32 | secret[32]; the signature
 * share is HMAC-SHA256(secret, nonce || msg || commitments). */

typedef struct {
    uint32_t party;
    uint8_t secret[32];
    uint8_t session[32];
    uint8_t nonce[16];
    bool have_nonce;
} toy_self;

static uint32_t
rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t
toy_party(const void *self)
{
    return ((const toy_self *)self)->party;
}

static hsm_err
toy_public(const void *self, uint8_t **out, size_t *out_len)
{
    const toy_self *t = self;
    *out = malloc(32);
    if (!*out)
        return HSM_ENOMEM;
    EVP_Digest(t->secret, 32, *out, NULL, EVP_sha256(), NULL);
    *out_len = 32;
    return HSM_OK;
}

static hsm_err
toy_nonce(void *self, const uint8_t *session, size_t session_len,
          uint8_t **commitment, size_t *commitment_len)
{
    toy_self *t = self;
    kc_random(t->nonce, sizeof t->nonce);
    EVP_Digest(session, session_len, t->session, NULL, EVP_sha256(), NULL);
    t->have_nonce = true;
    *commitment = malloc(32);
    if (!*commitment)
        return HSM_ENOMEM;
    EVP_Digest(t->nonce, sizeof t->nonce, *commitment, NULL, EVP_sha256(),
               NULL);
    *commitment_len = 32;
    return HSM_OK;
}

static hsm_err
toy_sign(void *self, const uint8_t *session, size_t session_len,
         const uint8_t *msg, size_t msg_len, const uint8_t *commitments,
         size_t commitments_len, uint8_t **share, size_t *share_len)
{
    toy_self *t = self;
    uint8_t sh[32];
    unsigned int n = 32;

    EVP_Digest(session, session_len, sh, NULL, EVP_sha256(), NULL);
    if (!t->have_nonce || memcmp(sh, t->session, 32) != 0)
        return HSM_EINVAL;
    t->have_nonce = false; /* nonces are single use */
    *share = malloc(32);
    if (!*share)
        return HSM_ENOMEM;
    size_t tot = sizeof t->nonce + msg_len + commitments_len;
    uint8_t *buf = malloc(tot ? tot : 1);
    if (!buf) {
        free(*share);
        return HSM_ENOMEM;
    }
    memcpy(buf, t->nonce, sizeof t->nonce);
    if (msg_len)
        memcpy(buf + sizeof t->nonce, msg, msg_len);
    if (commitments_len)
        memcpy(buf + sizeof t->nonce + msg_len, commitments, commitments_len);
    HMAC(EVP_sha256(), t->secret, 32, buf, tot, *share, &n);
    free(buf);
    *share_len = n;
    return HSM_OK;
}

static void
toy_destroy(void *self)
{
    kc_free_wipe(self, sizeof(toy_self));
}

static const hsm_threshold_signer_ops toy_ops = {
    toy_party, toy_public, toy_nonce, toy_sign, toy_destroy,
};

static hsm_err
toy_parse(const uint8_t *share, size_t len, hsm_share_meta *meta)
{
    if (len != 48 || memcmp(share, "TOY1", 4) != 0)
        return HSM_EMALFORMED;
    memset(meta, 0, sizeof *meta);
    meta->party_index = rd32(share + 4);
    meta->threshold = rd32(share + 8);
    meta->total_parties = rd32(share + 12);
    if (meta->threshold == 0 || meta->threshold > meta->total_parties)
        return HSM_EMALFORMED;
    meta->public_share = malloc(32);
    meta->group_key = malloc(9);
    if (!meta->public_share || !meta->group_key) {
        hsm_share_meta_clear(meta);
        return HSM_ENOMEM;
    }
    EVP_Digest(share + 16, 32, meta->public_share, NULL, EVP_sha256(), NULL);
    meta->public_share_len = 32;
    memcpy(meta->group_key, "toy-group", 9);
    meta->group_key_len = 9;
    return HSM_OK;
}

static hsm_err
toy_new_signer(const uint8_t *share, size_t len, const hsm_share_meta *meta,
               hsm_threshold_signer **out)
{
    toy_self *t;
    hsm_err rc;

    (void)meta;
    if (len != 48)
        return HSM_EMALFORMED;
    if (!(t = calloc(1, sizeof *t)))
        return HSM_ENOMEM;
    t->party = rd32(share + 4);
    memcpy(t->secret, share + 16, 32);
    rc = hsm_threshold_signer_new(&toy_ops, t, out);
    if (rc != HSM_OK)
        toy_destroy(t);
    return rc;
}

static const hsm_threshold_scheme toy_scheme = {
    "toy",
    99,
    toy_parse,
    toy_new_signer,
};

static void
toy_share(uint8_t out[48], uint32_t party, uint32_t t, uint32_t n)
{
    memcpy(out, "TOY1", 4);
    for (int i = 0; i < 4; i++) {
        out[4 + i] = (uint8_t)(party >> (24 - 8 * i));
        out[8 + i] = (uint8_t)(t >> (24 - 8 * i));
        out[12 + i] = (uint8_t)(n >> (24 - 8 * i));
    }
    for (int i = 0; i < 32; i++)
        out[16 + i] = (uint8_t)(party * 31 + i);
}

/* ---- attestation --------------------------------------------------- */

static void
test_attest_wire_roundtrip_and_rejects(void)
{
    uint8_t *wire = NULL;
    size_t wire_len = 0, sl = 0, al = 0;
    const uint8_t *s = NULL, *a = NULL;

    CHECK_EQ(hsm_attested_share_encode((const uint8_t *)"share", 5,
                                       (const uint8_t *)"att", 3, &wire,
                                       &wire_len),
             HSM_OK);
    CHECK_EQ(wire_len, 12);
    CHECK(wire[0] == 0 && wire[1] == 0 && wire[2] == 0 && wire[3] == 5);
    CHECK_EQ(hsm_attested_share_parse(wire, wire_len, &s, &sl, &a, &al),
             HSM_OK);
    CHECK(sl == 5 && memcmp(s, "share", 5) == 0);
    CHECK(al == 3 && memcmp(a, "att", 3) == 0);
    /* shorter than 5, truncated share, empty attestation, empty share */
    for (size_t n = 0; n < 5; n++)
        CHECK_EQ(hsm_attested_share_parse(wire, n, &s, &sl, &a, &al),
                 HSM_EMALFORMED);
    CHECK_EQ(hsm_attested_share_parse(wire, 9, &s, &sl, &a, &al),
             HSM_EMALFORMED);
    uint8_t noatt[9] = {0, 0, 0, 5, 's', 'h', 'a', 'r', 'e'};
    CHECK_EQ(hsm_attested_share_parse(noatt, 9, &s, &sl, &a, &al),
             HSM_EMALFORMED);
    uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    CHECK_EQ(hsm_attested_share_parse(huge, 8, &s, &sl, &a, &al),
             HSM_EMALFORMED);
    uint8_t zero[6] = {0, 0, 0, 0, 1, 2};
    CHECK_EQ(hsm_attested_share_parse(zero, 6, &s, &sl, &a, &al),
             HSM_EMALFORMED);
    CHECK_EQ(hsm_attested_share_encode((const uint8_t *)"s", 1, NULL, 0, &wire,
                                       &wire_len),
             HSM_EINVAL);
    hsm_free(wire);
}

static void
test_attest_signer_roundtrip_and_wrong_key(void)
{
    uint8_t sh[48], *commit = NULL, *wire = NULL, *pub = NULL;
    size_t commit_len = 0, wire_len = 0, pub_len = 0;
    hsm_threshold_signer *ts = NULL;
    hsm_attesting_signer *as = NULL;
    hsm_signer *hsm = NULL;
    hsm_share_meta meta = {0};
    bool valid = false;

    REQUIRE(hsm_signer_new("local", NULL, &hsm) == HSM_OK);
    toy_share(sh, 2, 2, 3);
    REQUIRE(toy_scheme.parse_key_share(sh, sizeof sh, &meta) == HSM_OK);
    REQUIRE(toy_scheme.new_signer(sh, sizeof sh, &meta, &ts) == HSM_OK);
    REQUIRE(hsm_attesting_signer_new(ts, hsm, "attest-key", &as) == HSM_OK);
    CHECK_EQ(hsm_attesting_signer_party_index(as), 2);
    CHECK_EQ(hsm_attesting_signer_public_share(as, &pub, &pub_len), HSM_OK);
    CHECK(pub_len == 32 && memcmp(pub, meta.public_share, 32) == 0);
    CHECK_EQ(hsm_attesting_signer_nonce_gen(as, (const uint8_t *)"sess", 4,
                                            &commit, &commit_len),
             HSM_OK);
    CHECK_EQ(hsm_attesting_signer_sign_share(as, (const uint8_t *)"sess", 4,
                                             (const uint8_t *)"msg", 3, commit,
                                             commit_len, &wire, &wire_len),
             HSM_OK);
    REQUIRE(wire && wire_len > 4 + 32);
    CHECK(rd32(wire) == 32);
    CHECK_EQ(hsm_attesting_signer_verify(as, wire, wire_len, &valid), HSM_OK);
    CHECK(valid);
    CHECK_EQ(
        hsm_attested_share_verify(hsm, "attest-key", wire, wire_len, &valid),
        HSM_OK);
    CHECK(valid);
    /* the attestation is a local-signer signature over the share bytes */
    CHECK_EQ(hsm_signer_verify(hsm, "attest-key", wire + 4, 32, wire + 36,
                               wire_len - 36, &valid),
             HSM_OK);
    CHECK(valid);
    /* another HSM key does not accept it */
    uint8_t *tmp = NULL;
    size_t tmp_len = 0;
    REQUIRE(hsm_signer_sign(hsm, "other-key", (const uint8_t *)"x", 1, &tmp,
                            &tmp_len) == HSM_OK);
    hsm_free(tmp);
    CHECK_EQ(
        hsm_attested_share_verify(hsm, "other-key", wire, wire_len, &valid),
        HSM_OK);
    CHECK(!valid);
    /* tampered share byte or attestation */
    wire[5] ^= 1;
    CHECK_EQ(hsm_attesting_signer_verify(as, wire, wire_len, &valid), HSM_OK);
    CHECK(!valid);
    wire[5] ^= 1;
    wire[wire_len - 2] ^= 1;
    CHECK_EQ(hsm_attesting_signer_verify(as, wire, wire_len, &valid), HSM_OK);
    CHECK(!valid);
    /* a share without attestation, and truncated wire data */
    CHECK_EQ(hsm_attesting_signer_verify(as, wire, 4 + 32, &valid),
             HSM_EMALFORMED);
    CHECK_EQ(hsm_attesting_signer_verify(as, wire, 4 + 31, &valid),
             HSM_EMALFORMED);
    CHECK_EQ(hsm_attesting_signer_verify(as, wire, 3, &valid), HSM_EMALFORMED);
    CHECK(!valid);
    /* the nonce was consumed: signing the same session again fails */
    hsm_free(wire);
    wire = NULL;
    CHECK(hsm_attesting_signer_sign_share(
              as, (const uint8_t *)"sess", 4, (const uint8_t *)"msg", 3, commit,
              commit_len, &wire, &wire_len) != HSM_OK);
    CHECK(wire == NULL);
    hsm_free(commit);
    hsm_free(pub);
    hsm_share_meta_clear(&meta);
    hsm_attesting_signer_free(as);
    hsm_signer_free(hsm);
}

/* ---- threshold manager --------------------------------------------- */

static void
test_threshold_manager_lifecycle(void)
{
    static const char *const kv[] = {"password_provider=env",
                                     "env_var=KT_TM_PW", "signer=local",
                                     "signer_key_id=attest", NULL};
    hsm_config *c = cfg_of(kv);
    const char *dir = kt_path(kt_tmpdir(), "tm-store");
    hsm_store *st = open_store(dir, "pw", true);
    hsm_threshold_manager *m = NULL;
    hsm_attesting_signer *as = NULL;
    uint8_t sh[48], *commit = NULL, *wire = NULL;
    size_t commit_len = 0, wire_len = 0;
    hsm_share_meta meta = {0};
    char detail[HSM_DETAIL_MAX];
    bool valid = false;

    setenv("KT_TM_PW", "tm-vault-pw", 1);
    REQUIRE(c && st);
    REQUIRE(hsm_threshold_manager_new(c, st, &m, detail, sizeof detail) ==
            HSM_OK);
    toy_share(sh, 1, 2, 3);
    /* before registration the scheme is unknown */
    CHECK_EQ(
        hsm_threshold_manager_import(m, "wallet", "toy", sh, sizeof sh, false),
        HSM_EUNKNOWN);
    CHECK_EQ(hsm_threshold_manager_register(m, &toy_scheme), HSM_OK);
    CHECK_EQ(hsm_threshold_manager_register(m, &toy_scheme), HSM_EEXIST);
    CHECK_EQ(
        hsm_threshold_manager_import(m, "wallet", "TOY", sh, sizeof sh, false),
        HSM_OK);
    CHECK_EQ(
        hsm_threshold_manager_import(m, "wallet", "toy", sh, sizeof sh, false),
        HSM_EEXIST);
    CHECK_EQ(hsm_threshold_manager_import(m, "junk", "toy", sh, 47, false),
             HSM_EMALFORMED);
    /* the vault holds it with the scheme's metadata */
    CHECK_EQ(
        hsm_vault_metadata(hsm_threshold_manager_vault(m), "wallet", &meta),
        HSM_OK);
    CHECK_EQ(meta.scheme, 99);
    CHECK_EQ(meta.threshold, 2);
    CHECK_EQ(meta.total_parties, 3);
    hsm_share_meta_clear(&meta);
    CHECK_EQ(hsm_threshold_manager_signer(m, "wallet", &as), HSM_OK);
    REQUIRE(as);
    CHECK_EQ(hsm_attesting_signer_party_index(as), 1);
    CHECK_EQ(hsm_attesting_signer_nonce_gen(as, (const uint8_t *)"s1", 2,
                                            &commit, &commit_len),
             HSM_OK);
    CHECK_EQ(hsm_attesting_signer_sign_share(as, (const uint8_t *)"s1", 2,
                                             (const uint8_t *)"pay", 3, commit,
                                             commit_len, &wire, &wire_len),
             HSM_OK);
    CHECK_EQ(hsm_threshold_manager_verify_share(m, wire, wire_len, &valid),
             HSM_OK);
    CHECK(valid);
    wire[6] ^= 1;
    CHECK_EQ(hsm_threshold_manager_verify_share(m, wire, wire_len, &valid),
             HSM_OK);
    CHECK(!valid);
    hsm_free(wire);
    hsm_free(commit);
    hsm_attesting_signer_free(as);
    as = NULL;
    hsm_threshold_manager_free(m);
    m = NULL;
    /* a new manager on the same store finds the share (after reopen) */
    hsm_store_free(st);
    st = open_store(dir, "pw", false);
    REQUIRE(st);
    REQUIRE(hsm_threshold_manager_new(c, st, &m, detail, sizeof detail) ==
            HSM_OK);
    CHECK_EQ(hsm_threshold_manager_signer(m, "wallet", &as), HSM_EUNKNOWN);
    CHECK_EQ(hsm_threshold_manager_register(m, &toy_scheme), HSM_OK);
    CHECK_EQ(hsm_threshold_manager_signer(m, "wallet", &as), HSM_OK);
    hsm_attesting_signer_free(as);
    as = NULL;
    CHECK_EQ(hsm_threshold_manager_delete(m, "wallet"), HSM_OK);
    CHECK_EQ(hsm_threshold_manager_signer(m, "wallet", &as), HSM_ENOTFOUND);
    CHECK(as == NULL);
    hsm_threshold_manager_free(m);
    /* bad config */
    hsm_config_set(c, "vault_password_ttl", "soon");
    CHECK_EQ(hsm_threshold_manager_new(c, st, &m, detail, sizeof detail),
             HSM_ECONFIG);
    hsm_config_set(c, "vault_password_ttl", NULL);
    hsm_config_set(c, "signer", "nonesuch");
    CHECK_EQ(hsm_threshold_manager_new(c, st, &m, detail, sizeof detail),
             HSM_EUNKNOWN);
    CHECK(strstr(detail, "valid names") != NULL);
    hsm_store_free(st);
    hsm_config_free(c);
}

/* ---- manager ------------------------------------------------------- */

static void
test_manager_password_sign_verify_and_config_untouched(void)
{
    const char *pwf = kt_path(kt_tmpdir(), "mgr-pw");
    char kv1[600];
    const char *kv[] = {
        "password_provider= FILE ",     kv1, "signer=local", "signer_key_id=mk",
        "signer.key_id=ignored-by-mgr", NULL};
    hsm_config *c;
    hsm_manager *m = NULL;
    hsm_secret *pw = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0, before;
    bool valid = false;
    char detail[HSM_DETAIL_MAX];

    REQUIRE(kt_write_file(pwf, "mgr-secret\n", 11, 0600) == 0);
    snprintf(kv1, sizeof kv1, "password.path=%s", pwf);
    c = cfg_of(kv);
    REQUIRE(c);
    before = hsm_config_count(c);
    REQUIRE(hsm_manager_new(c, NULL, &m, detail, sizeof detail) == HSM_OK);
    CHECK_EQ(hsm_config_count(c), before);
    CHECK(hsm_config_get_raw(c, "path") == NULL);
    CHECK(strcmp(hsm_password_provider_name(hsm_manager_password_provider(m)),
                 "file") == 0);
    CHECK_EQ(hsm_manager_get_password(m, &pw), HSM_OK);
    CHECK(pw && pw->len == 10 && memcmp(pw->data, "mgr-secret", 10) == 0);
    hsm_secret_free(pw);
    CHECK_EQ(hsm_manager_sign(m, (const uint8_t *)"hi", 2, &sig, &sig_len),
             HSM_OK);
    CHECK_EQ(
        hsm_manager_verify(m, (const uint8_t *)"hi", 2, sig, sig_len, &valid),
        HSM_OK);
    CHECK(valid);
    /* signed with signer_key_id "mk" */
    CHECK_EQ(hsm_manager_verify_with_key(m, "mk", (const uint8_t *)"hi", 2, sig,
                                         sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    CHECK_EQ(hsm_manager_verify_with_key(m, "ignored-by-mgr",
                                         (const uint8_t *)"hi", 2, sig, sig_len,
                                         &valid),
             HSM_ENOTFOUND);
    hsm_free(sig);
    CHECK_EQ(hsm_manager_sign_with_key(m, "k2", (const uint8_t *)"x", 1, &sig,
                                       &sig_len),
             HSM_OK);
    CHECK_EQ(hsm_manager_verify_with_key(m, "k2", (const uint8_t *)"x", 1, sig,
                                         sig_len, &valid),
             HSM_OK);
    CHECK(valid);
    CHECK_EQ(
        hsm_manager_verify(m, (const uint8_t *)"x", 1, sig, sig_len, &valid),
        HSM_OK);
    CHECK(!valid);
    hsm_free(sig);
    hsm_manager_free(m);
    /* unknown provider names fail with the list of names */
    hsm_config_set(c, "password_provider", "keychain");
    CHECK_EQ(hsm_manager_new(c, NULL, &m, detail, sizeof detail), HSM_EUNKNOWN);
    CHECK(strstr(detail, "env") != NULL && strstr(detail, "file") != NULL);
    CHECK(m == NULL);
    hsm_config_free(c);
}

static const kt_case cases[] = {
    KT_CASE(test_strerror_all_codes_distinct_nonnull),
    KT_CASE(test_alg_names_roundtrip_and_aliases),
    KT_CASE(test_factory_signer_local_names_and_padding_resolve),
    KT_CASE(test_factory_name_normalise_aliases_fold),
    KT_CASE(test_factory_signer_every_name_known),
    KT_CASE(test_factory_unknown_signer_lists_valid_names),
    KT_CASE(test_factory_password_names_resolve),
    KT_CASE(test_factory_unknown_password_lists_valid_names),
    KT_CASE(test_config_set_get_copy_remove_behave),
    KT_CASE(test_config_env_fallbacks_follow_table),
    KT_CASE(test_password_env_order_and_env_var),
    KT_CASE(test_password_file_modes_and_content),
    KT_CASE(test_ecdsa_der_raw_match_openssl),
    KT_CASE(test_ecdsa_der_malformed_rejected),
    KT_CASE(test_pem_roundtrip_and_garbage_rejected),
    KT_CASE(test_spki_mldsa_roundtrip_and_rejects),
    KT_CASE(test_local_sign_verify_roundtrip_and_negatives),
    KT_CASE(test_local_empty_and_large_messages_roundtrip),
    KT_CASE(test_local_sign_digest_matches_message_sign),
    KT_CASE(test_local_concurrent_20_threads_all_valid),
    KT_CASE(test_local_keys_persist_across_reopen),
    KT_CASE(test_verify_with_public_key_matches_signers),
    KT_CASE(test_provider_digest_only_core_hashes_and_verifies),
    KT_CASE(test_store_memory_and_zapdb_behave_alike),
    KT_CASE(test_vault_roundtrip_and_metadata),
    KT_CASE(test_vault_wrong_password_and_tampering_detected),
    KT_CASE(test_vault_overwrite_delete_list),
    KT_CASE(test_vault_persists_across_reopen),
    KT_CASE(test_vault_password_cached_then_refetched_after_ttl),
    KT_CASE(test_vault_concurrent_threads_consistent),
    KT_CASE(test_backup_restore_roundtrip_format),
    KT_CASE(test_backup_wrong_password_and_corruption_detected),
    KT_CASE(test_backup_list_parser_rejects_bad_entries),
    KT_CASE(test_scrypt_rfc7914_vectors_match),
    KT_CASE(test_attest_wire_roundtrip_and_rejects),
    KT_CASE(test_attest_signer_roundtrip_and_wrong_key),
    KT_CASE(test_threshold_manager_lifecycle),
    KT_CASE(test_manager_password_sign_verify_and_config_untouched),
};

int
main(int argc, char **argv)
{
    /* keep the env provider's development warning out of the test log */
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
