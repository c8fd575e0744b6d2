/* SPDX-License-Identifier: Apache-2.0 */
/* ML-DSA against every case of the NIST ACVP keyGen, sigGen and sigVer
 * files in tests/vectors/mldsa-acvp (FIPS 204 Algorithms 6, 7, 8). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "crypto_tests.h"
#include "kms_mldsa.h"

static json_t *
load_groups(const char *name)
{
    char path[1024];
    json_error_t err;
    json_t *root;

    snprintf(path, sizeof path, "%s/mldsa-acvp/%s/internalProjection.json",
             kt_vectors_dir(), name);
    root = json_load_file(path, 0, &err);
    if (!root)
        fprintf(stderr, "cannot load %s: %s\n", path, err.text);
    return root;
}

static int
param_of(json_t *group, kms_mldsa_param *p)
{
    const char *s = json_string_value(json_object_get(group, "parameterSet"));
    if (!s)
        return -1;
    if (strcmp(s, "ML-DSA-44") == 0)
        *p = KMS_MLDSA_44;
    else if (strcmp(s, "ML-DSA-65") == 0)
        *p = KMS_MLDSA_65;
    else if (strcmp(s, "ML-DSA-87") == 0)
        *p = KMS_MLDSA_87;
    else
        return -1;
    return 0;
}

static uint8_t *
hex_field(json_t *obj, const char *key, size_t *len)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? kt_unhex(s, len) : NULL;
}

static void
test_mldsa_acvp_keygen_all_cases_match(void)
{
    json_t *root = load_groups("ML-DSA-keyGen-FIPS204");
    size_t gi, ti, cases = 0;
    json_t *g, *t;

    REQUIRE(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        kms_mldsa_param p;
        REQUIRE(param_of(g, &p) == 0);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t seed_len, pk_len, sk_len;
            uint8_t *seed = hex_field(t, "seed", &seed_len);
            uint8_t *pk = hex_field(t, "pk", &pk_len);
            uint8_t *sk = hex_field(t, "sk", &sk_len);
            uint8_t opk[KMS_MLDSA_PK_MAX], osk[KMS_MLDSA_SK_MAX];
            uint8_t pk2[KMS_MLDSA_PK_MAX];
            REQUIRE(seed && pk && sk && seed_len == 32);
            CHECK_EQ(pk_len, kms_mldsa_pk_len(p));
            CHECK_EQ(sk_len, kms_mldsa_sk_len(p));
            CHECK_EQ(kms_mldsa_keygen_seed(p, seed, opk, sizeof opk, osk,
                                           sizeof osk),
                     KMS_MLDSA_OK);
            CHECK_MEM(opk, pk, pk_len);
            CHECK_MEM(osk, sk, sk_len);
            /* The public key is recomputable from the private key. */
            CHECK_EQ(kms_mldsa_sk_to_pk(p, sk, sk_len, pk2, sizeof pk2),
                     KMS_MLDSA_OK);
            CHECK_MEM(pk2, pk, pk_len);
            free(seed);
            free(pk);
            free(sk);
            cases++;
        }
    }
    CHECK_EQ(cases, 75);
    json_decref(root);
}

static void
test_mldsa_acvp_siggen_all_cases_match(void)
{
    json_t *root = load_groups("ML-DSA-sigGen-FIPS204");
    size_t gi, ti, cases = 0;
    json_t *g, *t;

    REQUIRE(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        kms_mldsa_param p;
        int det = json_is_true(json_object_get(g, "deterministic"));
        REQUIRE(param_of(g, &p) == 0);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t sk_len, msg_len, sig_len, rnd_len = 0;
            uint8_t *sk = hex_field(t, "sk", &sk_len);
            uint8_t *msg = hex_field(t, "message", &msg_len);
            uint8_t *sig = hex_field(t, "signature", &sig_len);
            uint8_t *rnd = det ? NULL : hex_field(t, "rnd", &rnd_len);
            uint8_t zero[32] = {0}, out[KMS_MLDSA_SIG_MAX];
            REQUIRE(sk && msg && sig);
            REQUIRE(det || (rnd && rnd_len == 32));
            CHECK_EQ(sig_len, kms_mldsa_sig_len(p));
            CHECK_EQ(kms_mldsa_sign_internal(p, sk, sk_len, msg, msg_len,
                                             det ? zero : rnd, out, sizeof out),
                     KMS_MLDSA_OK);
            CHECK_MEM(out, sig, sig_len);
            free(sk);
            free(msg);
            free(sig);
            free(rnd);
            cases++;
        }
    }
    CHECK_EQ(cases, 60);
    json_decref(root);
}

static void
test_mldsa_acvp_sigver_all_cases_match(void)
{
    json_t *root = load_groups("ML-DSA-sigVer-FIPS204");
    size_t gi, ti, cases = 0, valid = 0;
    json_t *g, *t;

    REQUIRE(root);
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        kms_mldsa_param p;
        size_t pk_len;
        uint8_t *pk = hex_field(g, "pk", &pk_len);
        REQUIRE(param_of(g, &p) == 0);
        REQUIRE(pk);
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t msg_len, sig_len;
            uint8_t *msg = hex_field(t, "message", &msg_len);
            uint8_t *sig = hex_field(t, "signature", &sig_len);
            json_t *want = json_object_get(t, "testPassed");
            kms_mldsa_err rc;
            REQUIRE(msg && sig && json_is_boolean(want));
            rc = kms_mldsa_verify_internal(p, pk, pk_len, msg, msg_len, sig,
                                           sig_len);
            if (json_is_true(want)) {
                CHECK_EQ(rc, KMS_MLDSA_OK);
                valid++;
            } else {
                CHECK_EQ(rc, KMS_MLDSA_EVERIFY);
            }
            free(msg);
            free(sig);
            cases++;
        }
        free(pk);
    }
    CHECK_EQ(cases, 45);
    CHECK_EQ(valid, 9);
    json_decref(root);
}

const kt_case kt_mldsa_acvp_cases[] = {
    KT_CASE(test_mldsa_acvp_keygen_all_cases_match),
    KT_CASE(test_mldsa_acvp_siggen_all_cases_match),
    KT_CASE(test_mldsa_acvp_sigver_all_cases_match),
};
const size_t kt_mldsa_acvp_count = KT_COUNT(kt_mldsa_acvp_cases);
