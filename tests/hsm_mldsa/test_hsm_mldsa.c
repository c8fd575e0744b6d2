/* SPDX-License-Identifier: Apache-2.0 */
/* libhsm's "mldsa" signer: configuration, key life cycle (created on first
 * sign, persisted encrypted in ZapDB, imported), verification through an
 * independent path (the SPKI decoded and checked with kms_crypto
 * directly), and every refusal: unknown key, tampered signature, wrong
 * parameter set, corrupt record, bad import. */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kms_mldsa.h"
#include "signers/mldsa.h"
#include "testutil.h"

static const uint8_t msg[] = "post-quantum hello";

static hsm_signer *
new_signer(const char *name, const char *param_set, hsm_store *st)
{
    hsm_config *cfg = NULL;
    hsm_signer *s = NULL;
    char detail[256];

    if (hsm_config_new(&cfg) != HSM_OK)
        return NULL;
    if (param_set && hsm_config_set(cfg, "param_set", param_set) != HSM_OK) {
        hsm_config_free(cfg);
        return NULL;
    }
    if (hsm_signer_new_ex(name, cfg, st, &s, detail, sizeof detail) != HSM_OK)
        s = NULL;
    hsm_config_free(cfg);
    return s;
}

/* Verify `sig` with kms_crypto against the raw key inside the signer's
 * SubjectPublicKeyInfo (independent of the signer's verify). */
static int
independent_verify(hsm_signer *s, const char *kid, kms_mldsa_param p,
                   const uint8_t *m, size_t m_len, const uint8_t *sig,
                   size_t sig_len)
{
    uint8_t *der = NULL;
    size_t der_len = 0, pk_len = 0;
    const uint8_t *pk;
    hsm_alg alg;
    int ok;

    if (hsm_signer_public_key(s, kid, &der, &der_len) != HSM_OK)
        return 0;
    ok = hsm_spki_mldsa_decode(der, der_len, &alg, &pk, &pk_len) == HSM_OK &&
         pk_len == kms_mldsa_pk_len(p) &&
         kms_mldsa_verify(p, pk, pk_len, m, m_len, NULL, 0, sig, sig_len) ==
             KMS_MLDSA_OK;
    hsm_free(der);
    return ok;
}

static void
test_hsm_mldsa_sign_verify_all_sets_valid(void)
{
    static const struct {
        const char *set;
        kms_mldsa_param p;
        hsm_alg alg;
    } sets[] = {{"44", KMS_MLDSA_44, HSM_ALG_ML_DSA_44},
                {"ML-DSA-65", KMS_MLDSA_65, HSM_ALG_ML_DSA_65},
                {"87", KMS_MLDSA_87, HSM_ALG_ML_DSA_87}};

    for (size_t i = 0; i < 3; i++) {
        hsm_signer *s = new_signer("mldsa", sets[i].set, NULL);
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        bool valid = false;

        REQUIRE(s);
        CHECK_EQ(hsm_signer_algorithm(s), sets[i].alg);
        REQUIRE(hsm_signer_sign(s, "k1", msg, sizeof msg, &sig, &sig_len) ==
                HSM_OK);
        CHECK_EQ(sig_len, kms_mldsa_sig_len(sets[i].p));
        CHECK(hsm_signer_verify(s, "k1", msg, sizeof msg, sig, sig_len,
                                &valid) == HSM_OK &&
              valid);
        CHECK(independent_verify(s, "k1", sets[i].p, msg, sizeof msg, sig,
                                 sig_len));
        hsm_free(sig);
        hsm_signer_free(s);
    }
}

static void
test_hsm_mldsa_aliases_and_default_param_65(void)
{
    const char *names[] = {"mldsa", "pq", " Post-Quantum ", "MLDSA"};

    for (size_t i = 0; i < 4; i++) {
        hsm_signer *s = new_signer(names[i], NULL, NULL);
        REQUIRE(s);
        CHECK(strcmp(hsm_signer_provider(s), "mldsa") == 0);
        CHECK_EQ(hsm_signer_algorithm(s), HSM_ALG_ML_DSA_65);
        hsm_signer_free(s);
    }
}

static void
test_hsm_mldsa_bad_param_set_config_error(void)
{
    const char *bad[] = {"66", "4", "abc", "ECDSA_P256_SHA256", "650"};

    for (size_t i = 0; i < 5; i++) {
        hsm_config *cfg = NULL;
        hsm_signer *s = NULL;
        char detail[256] = "";
        REQUIRE(hsm_config_new(&cfg) == HSM_OK);
        REQUIRE(hsm_config_set(cfg, "param_set", bad[i]) == HSM_OK);
        CHECK_EQ(
            hsm_signer_new_ex("mldsa", cfg, NULL, &s, detail, sizeof detail),
            HSM_ECONFIG);
        CHECK(s == NULL);
        CHECK(strstr(detail, "param_set") != NULL);
        hsm_config_free(cfg);
    }
}

static void
test_hsm_mldsa_unknown_key_notfound_never_created(void)
{
    hsm_store *st = NULL;
    hsm_signer *s;
    uint8_t *der = NULL, sig[16] = {0};
    size_t der_len = 0, count = 9;
    char **keys = NULL;
    bool valid = true;

    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    s = new_signer("mldsa", NULL, st);
    REQUIRE(s);
    CHECK_EQ(
        hsm_signer_verify(s, "nokey", msg, sizeof msg, sig, sizeof sig, &valid),
        HSM_ENOTFOUND);
    CHECK(!valid);
    CHECK_EQ(hsm_signer_public_key(s, "nokey", &der, &der_len), HSM_ENOTFOUND);
    CHECK(der == NULL);
    REQUIRE(hsm_store_list(st, "signer.mldsa", &keys, &count) == HSM_OK);
    CHECK_EQ(count, 0);
    hsm_list_free(keys, count);
    hsm_signer_free(s);
    hsm_store_free(st);
}

static void
test_hsm_mldsa_tampered_or_foreign_signature_invalid(void)
{
    hsm_signer *s = new_signer("mldsa", "44", NULL);
    uint8_t *sig = NULL, *sig2 = NULL;
    size_t sig_len = 0, sig2_len = 0;
    bool valid = true;

    REQUIRE(s);
    REQUIRE(hsm_signer_sign(s, "a", msg, sizeof msg, &sig, &sig_len) == 0);
    REQUIRE(hsm_signer_sign(s, "b", msg, sizeof msg, &sig2, &sig2_len) == 0);
    sig[100] ^= 0x10;
    CHECK(hsm_signer_verify(s, "a", msg, sizeof msg, sig, sig_len, &valid) ==
              HSM_OK &&
          !valid);
    sig[100] ^= 0x10;
    valid = true;
    CHECK(hsm_signer_verify(s, "a", msg, sizeof msg - 1, sig, sig_len,
                            &valid) == HSM_OK &&
          !valid);
    valid = true;
    CHECK(hsm_signer_verify(s, "a", msg, sizeof msg, sig, sig_len - 1,
                            &valid) == HSM_OK &&
          !valid);
    valid = true;
    CHECK(hsm_signer_verify(s, "a", msg, sizeof msg, sig2, sig2_len, &valid) ==
              HSM_OK &&
          !valid);
    CHECK(hsm_signer_verify(s, "b", msg, sizeof msg, sig2, sig2_len, &valid) ==
              HSM_OK &&
          valid);
    hsm_free(sig);
    hsm_free(sig2);
    hsm_signer_free(s);
}

static void
test_hsm_mldsa_sign_digest_unsupported(void)
{
    hsm_signer *s = new_signer("mldsa", NULL, NULL);
    uint8_t d[32] = {0}, *sig = NULL;
    size_t sig_len = 0;

    REQUIRE(s);
    CHECK_EQ(hsm_signer_sign_digest(s, "k", d, sizeof d, &sig, &sig_len),
             HSM_EUNSUPPORTED);
    CHECK(sig == NULL);
    hsm_signer_free(s);
}

/* Does any regular file under `dir` contain `needle`? */
static int
tree_contains(const char *dir, const uint8_t *needle, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        size_t len = 0;
        uint8_t *buf;
        if (e->d_name[0] == '.')
            continue;
        buf = kt_read_all(kt_path(dir, e->d_name), &len);
        for (size_t i = 0; buf && len >= n && i <= len - n; i++)
            if (memcmp(buf + i, needle, n) == 0)
                found = 1;
        free(buf);
    }
    closedir(d);
    return found;
}

static void
test_hsm_mldsa_key_persists_encrypted_in_zapdb(void)
{
    const char *dir = kt_path(kt_tmpdir(), "mldsa-store");
    const char *pw = "correct horse";
    hsm_store *st = NULL;
    hsm_signer *s;
    hsm_secret *rec = NULL;
    uint8_t *sig = NULL, *der1 = NULL, *der2 = NULL, *sig2 = NULL;
    size_t sig_len = 0, der1_len = 0, der2_len = 0, sig2_len = 0;
    bool valid = false;

    REQUIRE(hsm_store_open(dir, (const uint8_t *)pw, strlen(pw), true, 1, 8192,
                           &st) == HSM_OK);
    REQUIRE((s = new_signer("mldsa", "65", st)) != NULL);
    REQUIRE(hsm_signer_sign(s, "persist", msg, sizeof msg, &sig, &sig_len) ==
            HSM_OK);
    REQUIRE(hsm_signer_public_key(s, "persist", &der1, &der1_len) == HSM_OK);
    /* the stored record is a seed record; its seed is not on disk in the
     * clear */
    REQUIRE(hsm_store_get(st, "signer.mldsa", "persist", &rec) == HSM_OK);
    CHECK_EQ(rec->len, 3 + 32);
    CHECK(rec->data[0] == 1 && rec->data[1] == 65 && rec->data[2] == 1);
    hsm_signer_free(s);
    hsm_store_free(st);
    CHECK(!tree_contains(dir, rec->data + 3, 32));
    hsm_secret_free(rec);

    st = NULL;
    REQUIRE(hsm_store_open(dir, (const uint8_t *)pw, strlen(pw), false, 1, 8192,
                           &st) == HSM_OK);
    REQUIRE((s = new_signer("mldsa", "65", st)) != NULL);
    REQUIRE(hsm_signer_public_key(s, "persist", &der2, &der2_len) == HSM_OK);
    CHECK(der1_len == der2_len && memcmp(der1, der2, der1_len) == 0);
    CHECK(hsm_signer_verify(s, "persist", msg, sizeof msg, sig, sig_len,
                            &valid) == HSM_OK &&
          valid);
    REQUIRE(hsm_signer_sign(s, "persist", msg, sizeof msg, &sig2, &sig2_len) ==
            HSM_OK);
    CHECK(independent_verify(s, "persist", KMS_MLDSA_65, msg, sizeof msg, sig2,
                             sig2_len));
    /* the same key under another parameter set is refused */
    {
        hsm_signer *s44 = new_signer("mldsa", "44", st);
        uint8_t *x = NULL;
        size_t x_len = 0;
        REQUIRE(s44);
        CHECK_EQ(hsm_signer_sign(s44, "persist", msg, sizeof msg, &x, &x_len),
                 HSM_ECONFIG);
        CHECK(strstr(hsm_signer_last_error(s44), "ML-DSA-65") != NULL);
        hsm_signer_free(s44);
    }
    hsm_free(sig);
    hsm_free(sig2);
    hsm_free(der1);
    hsm_free(der2);
    hsm_signer_free(s);
    hsm_store_free(st);
}

static void
test_hsm_mldsa_import_seed_and_expanded_key_match(void)
{
    hsm_store *st = NULL;
    hsm_signer *s;
    uint8_t seed[32], pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX];
    uint8_t *sig = NULL, *der = NULL;
    size_t sig_len = 0, der_len = 0, pk_len = 0;
    const uint8_t *raw;
    hsm_alg alg;

    memset(seed, 0x3C, sizeof seed);
    REQUIRE(kms_mldsa_keygen_seed(KMS_MLDSA_44, seed, pk, sizeof pk, sk,
                                  sizeof sk) == KMS_MLDSA_OK);
    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    CHECK_EQ(
        hsm_mldsa_import(st, "seeded", HSM_ALG_ML_DSA_44, seed, sizeof seed),
        HSM_OK);
    CHECK_EQ(hsm_mldsa_import(st, "expanded", HSM_ALG_ML_DSA_44, sk,
                              kms_mldsa_sk_len(KMS_MLDSA_44)),
             HSM_OK);
    REQUIRE((s = new_signer("mldsa", "44", st)) != NULL);
    for (int i = 0; i < 2; i++) {
        const char *kid = i ? "expanded" : "seeded";
        REQUIRE(hsm_signer_public_key(s, kid, &der, &der_len) == HSM_OK);
        REQUIRE(hsm_spki_mldsa_decode(der, der_len, &alg, &raw, &pk_len) ==
                HSM_OK);
        CHECK_EQ(alg, HSM_ALG_ML_DSA_44);
        CHECK(pk_len == kms_mldsa_pk_len(KMS_MLDSA_44) &&
              memcmp(raw, pk, pk_len) == 0);
        hsm_free(der);
        der = NULL;
        REQUIRE(hsm_signer_sign(s, kid, msg, sizeof msg, &sig, &sig_len) ==
                HSM_OK);
        CHECK_EQ(kms_mldsa_verify(KMS_MLDSA_44, pk, pk_len, msg, sizeof msg,
                                  NULL, 0, sig, sig_len),
                 KMS_MLDSA_OK);
        hsm_free(sig);
        sig = NULL;
    }
    hsm_signer_free(s);
    hsm_store_free(st);
}

static void
test_hsm_mldsa_import_bad_input_rejected(void)
{
    hsm_store *st = NULL;
    uint8_t seed[32] = {1}, pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX];
    size_t sk_len = kms_mldsa_sk_len(KMS_MLDSA_65);

    REQUIRE(kms_mldsa_keygen_seed(KMS_MLDSA_65, seed, pk, sizeof pk, sk,
                                  sizeof sk) == KMS_MLDSA_OK);
    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    CHECK_EQ(hsm_mldsa_import(st, "k", HSM_ALG_ML_DSA_65, seed, 31),
             HSM_EINVAL);
    CHECK_EQ(hsm_mldsa_import(st, "k", HSM_ALG_ML_DSA_65, sk, sk_len - 1),
             HSM_EINVAL);
    CHECK_EQ(hsm_mldsa_import(st, "k", HSM_ALG_ECDSA_P256_SHA256, seed, 32),
             HSM_EINVAL);
    CHECK_EQ(hsm_mldsa_import(st, "bad id", HSM_ALG_ML_DSA_65, seed, 32),
             HSM_EINVAL);
    CHECK_EQ(hsm_mldsa_import(NULL, "k", HSM_ALG_ML_DSA_65, seed, 32),
             HSM_EINVAL);
    sk[128] |= 0x0F; /* s1 coefficient outside [-eta, eta] */
    CHECK_EQ(hsm_mldsa_import(st, "k", HSM_ALG_ML_DSA_65, sk, sk_len),
             HSM_ECORRUPT);
    CHECK_EQ(hsm_mldsa_import(st, "k", HSM_ALG_ML_DSA_65, seed, 32), HSM_OK);
    CHECK_EQ(hsm_mldsa_import(st, "k", HSM_ALG_ML_DSA_65, seed, 32),
             HSM_EEXIST);
    hsm_store_free(st);
}

static void
test_hsm_mldsa_corrupt_record_refused(void)
{
    hsm_store *st = NULL;
    hsm_signer *s;
    uint8_t rec[3 + 32] = {1, 65, 1}, *sig = NULL;
    size_t sig_len = 0;
    bool valid = true;

    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    REQUIRE(hsm_store_put(st, "signer.mldsa", "short", rec, 10) == HSM_OK);
    rec[0] = 9;
    REQUIRE(hsm_store_put(st, "signer.mldsa", "version", rec, sizeof rec) ==
            HSM_OK);
    rec[0] = 1;
    rec[2] = 7;
    REQUIRE(hsm_store_put(st, "signer.mldsa", "kind", rec, sizeof rec) ==
            HSM_OK);
    REQUIRE((s = new_signer("mldsa", "65", st)) != NULL);
    CHECK_EQ(hsm_signer_sign(s, "short", msg, sizeof msg, &sig, &sig_len),
             HSM_ECORRUPT);
    CHECK_EQ(hsm_signer_sign(s, "version", msg, sizeof msg, &sig, &sig_len),
             HSM_ECORRUPT);
    CHECK_EQ(
        hsm_signer_verify(s, "kind", msg, sizeof msg, rec, sizeof rec, &valid),
        HSM_ECORRUPT);
    CHECK(!valid && sig == NULL);
    hsm_signer_free(s);
    hsm_store_free(st);
}

typedef struct {
    hsm_signer *s;
    uint8_t *sig;
    size_t sig_len;
    hsm_err rc;
} sign_job;

static void *
sign_worker(void *p)
{
    sign_job *j = p;
    j->rc =
        hsm_signer_sign(j->s, "shared", msg, sizeof msg, &j->sig, &j->sig_len);
    return NULL;
}

/* Several threads signing with a key id that does not exist yet all end
 * up with the same (single) key. */
static void
test_hsm_mldsa_concurrent_first_sign_one_key(void)
{
    hsm_store *st = NULL;
    hsm_signer *s;
    pthread_t th[4];
    sign_job jobs[4];
    size_t count = 0;
    char **keys = NULL;

    REQUIRE(hsm_store_new_memory(&st) == HSM_OK);
    REQUIRE((s = new_signer("mldsa", "44", st)) != NULL);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (sign_job){s, NULL, 0, HSM_EINTERNAL};
        REQUIRE(pthread_create(&th[i], NULL, sign_worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        bool valid = false;
        pthread_join(th[i], NULL);
        CHECK_EQ(jobs[i].rc, HSM_OK);
        CHECK(independent_verify(s, "shared", KMS_MLDSA_44, msg, sizeof msg,
                                 jobs[i].sig, jobs[i].sig_len));
        CHECK(hsm_signer_verify(s, "shared", msg, sizeof msg, jobs[i].sig,
                                jobs[i].sig_len, &valid) == HSM_OK &&
              valid);
        hsm_free(jobs[i].sig);
    }
    REQUIRE(hsm_store_list(st, "signer.mldsa", &keys, &count) == HSM_OK);
    CHECK_EQ(count, 1);
    hsm_list_free(keys, count);
    hsm_signer_free(s);
    hsm_store_free(st);
}

static const kt_case cases[] = {
    KT_CASE(test_hsm_mldsa_sign_verify_all_sets_valid),
    KT_CASE(test_hsm_mldsa_aliases_and_default_param_65),
    KT_CASE(test_hsm_mldsa_bad_param_set_config_error),
    KT_CASE(test_hsm_mldsa_unknown_key_notfound_never_created),
    KT_CASE(test_hsm_mldsa_tampered_or_foreign_signature_invalid),
    KT_CASE(test_hsm_mldsa_sign_digest_unsupported),
    KT_CASE(test_hsm_mldsa_key_persists_encrypted_in_zapdb),
    KT_CASE(test_hsm_mldsa_import_seed_and_expanded_key_match),
    KT_CASE(test_hsm_mldsa_import_bad_input_rejected),
    KT_CASE(test_hsm_mldsa_corrupt_record_refused),
    KT_CASE(test_hsm_mldsa_concurrent_first_sign_one_key),
};

int
main(int argc, char **argv)
{
    unsetenv("MPC_HSM_KEY_ID");
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
