/* SPDX-License-Identifier: Apache-2.0 */
/* PKCS#11 layer, signer and password provider against a real SoftHSM2
 * token. main() creates the token in a private temporary directory (its own
 * softhsm2.conf through SOFTHSM2_CONF), so no external setup is needed.
 * The PIN appears on softhsm2-util's and pkcs11-tool's argv here only
 * because this is a throwaway test token. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <hsm/hsm.h>

#include "kc.h"
#include "p11.h"
#include "pkcs11_cli.h"
#include "testutil.h"

extern char **environ;

#define PIN    "1234"
#define SO_PIN "5678"
#define LABEL  "kms-test"

static const char *g_module; /* SoftHSM2 module path */
static const char *g_dir;    /* token directory and scratch files */

/* ---- helpers ------------------------------------------------------------ */

/* Run a program (no shell), stdout/stderr to `log`. Returns exit status. */
static int
run(char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st = -1;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static const char *
find_module(void)
{
    static const char *cands[] = {
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    };
    const char *env = getenv("KT_SOFTHSM_MODULE");

    if (env && *env)
        return env;
    for (size_t i = 0; i < KT_COUNT(cands); i++)
        if (access(cands[i], R_OK) == 0)
            return cands[i];
    return NULL;
}

static int
setup_softhsm(void)
{
    char conf[8192];
    const char *tokdir, *confp;
    int n;

    g_module = find_module();
    if (!g_module) {
        fprintf(stderr, "test_pkcs11: SoftHSM2 module not found "
                        "(apt-get install softhsm2)\n");
        return -1;
    }
    g_dir = kt_tmpdir();
    tokdir = kt_path(g_dir, "tokens");
    confp = kt_path(g_dir, "softhsm2.conf");
    if (mkdir(tokdir, 0700) != 0)
        return -1;
    n = snprintf(conf, sizeof conf,
                 "directories.tokendir = %s\nobjectstore.backend = file\n"
                 "log.level = ERROR\nslots.removable = false\n",
                 tokdir);
    if (n < 0 || (size_t)n >= sizeof conf ||
        kt_write_file(confp, conf, (size_t)n, 0600) != 0)
        return -1;
    setenv("SOFTHSM2_CONF", confp, 1);
    {
        char *argv[] = {"softhsm2-util",
                        "--init-token",
                        "--free",
                        "--label",
                        LABEL,
                        "--pin",
                        PIN,
                        "--so-pin",
                        SO_PIN,
                        NULL};
        char *argv2[] = {
            "softhsm2-util", "--init-token", "--free",   "--label", "kms-other",
            "--pin",         "4321",         "--so-pin", SO_PIN,    NULL};

        char *dup[] = {"softhsm2-util",
                       "--init-token",
                       "--free",
                       "--label",
                       "kms-dup",
                       "--pin",
                       PIN,
                       "--so-pin",
                       SO_PIN,
                       NULL};

        /* Two tokens labelled "kms-dup" for the ambiguity test. */
        if (run(argv, kt_path(g_dir, "init.log")) != 0 ||
            run(argv2, kt_path(g_dir, "init2.log")) != 0 ||
            run(dup, kt_path(g_dir, "init3.log")) != 0 ||
            run(dup, kt_path(g_dir, "init4.log")) != 0) {
            fprintf(stderr, "test_pkcs11: softhsm2-util --init-token failed\n");
            return -1;
        }
    }
    return 0;
}

static p11_token *
open_token(void)
{
    p11_module *m = NULL;
    p11_token *t = NULL;
    p11_token_sel sel = {LABEL, NULL};
    p11_diag d = {""};

    if (p11_module_acquire(g_module, &m, &d) != CKR_OK) {
        fprintf(stderr, "  %s\n", d.msg);
        return NULL;
    }
    if (p11_token_open(m, &sel, (const uint8_t *)PIN, strlen(PIN), &t, &d) !=
        CKR_OK)
        fprintf(stderr, "  %s\n", d.msg);
    p11_module_release(m); /* the token holds its own reference */
    return t;
}

static void
sha256(const uint8_t *m, size_t n, uint8_t out[32])
{
    unsigned int len = 32;

    EVP_Digest(m, n, out, &len, EVP_sha256(), NULL);
}

/* Raw r||s (PKCS#11 ECDSA output) to DER, for OpenSSL. */
static uint8_t *
raw_to_der(const uint8_t *raw, size_t raw_len, size_t *der_len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
    BIGNUM *ss = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
    uint8_t *der = NULL, *p;
    int n;

    if (!s || !r || !ss || !ECDSA_SIG_set0(s, r, ss))
        abort();
    n = i2d_ECDSA_SIG(s, NULL);
    der = malloc((size_t)n);
    p = der;
    i2d_ECDSA_SIG(s, &p);
    ECDSA_SIG_free(s);
    *der_len = (size_t)n;
    return der;
}

typedef enum { V_ECDSA, V_ED25519, V_PSS } vkind;

/* Verify with OpenSSL against a DER SPKI: 1 valid, 0 invalid. */
static int
ossl_verify(const uint8_t *spki, size_t spki_len, vkind k, const uint8_t *msg,
            size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (!pk || !ctx)
        goto out;
    if (EVP_DigestVerifyInit(ctx, &pctx, k == V_ED25519 ? NULL : EVP_sha256(),
                             NULL, pk) != 1)
        goto out;
    if (k == V_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
        goto out;
    ok = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ok;
}

static void
keygen_or_die(p11_token *t, p11_key_kind kind, unsigned long bits, bool decrypt,
              const char *label, const uint8_t *id, size_t id_len)
{
    p11_keyspec ks = {kind, bits, decrypt, label, id, id_len};
    p11_diag d = {""};
    ck_rv_t rv = p11_keygen(t, &ks, &d);

    if (rv != CKR_OK && rv != P11R_KEY_EXISTS)
        fprintf(stderr, "  keygen %s: %s\n", label, d.msg);
    REQUIRE(rv == CKR_OK || rv == P11R_KEY_EXISTS);
}

static const uint8_t id_ec[] = {0x0a, 0x01};
static const uint8_t id_ed[] = {0x0a, 0x02};
static const uint8_t id_rsa[] = {0x0a, 0x03};
static const uint8_t id_oaep[] = {0x0a, 0x04};
static const uint8_t id_aes[] = {0x0a, 0x05};

/* Keys shared by several tests (created once, idempotently). */
static void
ensure_keys(p11_token *t)
{
    keygen_or_die(t, P11_KEY_EC_P256, 0, false, "ec1", id_ec, sizeof id_ec);
    keygen_or_die(t, P11_KEY_RSA, 2048, false, "rsa-pss", id_rsa,
                  sizeof id_rsa);
    keygen_or_die(t, P11_KEY_RSA, 2048, true, "rsa-oaep", id_oaep,
                  sizeof id_oaep);
    keygen_or_die(t, P11_KEY_AES, 256, false, "aes1", id_aes, sizeof id_aes);
    if (p11_token_has_mech(t, CKM_EDDSA))
        keygen_or_die(t, P11_KEY_ED25519, 0, false, "ed1", id_ed, sizeof id_ed);
}

/* ---- p11 layer: modules and tokens -----------------------------------------
 */

static void
test_p11_module_relative_path_rejected(void)
{
    p11_module *m = (p11_module *)1;
    p11_diag d = {""};

    CHECK(p11_module_acquire("libsofthsm2.so", &m, &d) == P11R_MODULE_PATH);
    CHECK(m == NULL);
    CHECK(strstr(d.msg, "must be absolute") != NULL);
    CHECK(p11_rv_class(P11R_MODULE_PATH) == P11_C_CONFIG);
}

static void
test_p11_module_missing_file_load_error(void)
{
    p11_module *m = NULL;
    p11_diag d = {""};

    CHECK(p11_module_acquire("/nonexistent/libnothing.so", &m, &d) ==
          P11R_MODULE_LOAD);
    CHECK(m == NULL);
    CHECK(strstr(d.msg, "pkcs11: dlopen: module could not be loaded") != NULL);
    CHECK(strstr(d.msg, "/nonexistent/libnothing.so") != NULL);
}

static void
test_p11_module_not_pkcs11_symbol_error(void)
{
    /* A real shared object that is not a PKCS#11 module. */
    static const char *libs[] = {"/lib/x86_64-linux-gnu/libz.so.1",
                                 "/usr/lib/x86_64-linux-gnu/libz.so.1",
                                 "/lib/aarch64-linux-gnu/libz.so.1"};
    const char *lib = NULL;
    p11_module *m = NULL;
    p11_diag d = {""};

    for (size_t i = 0; i < KT_COUNT(libs) && !lib; i++)
        if (access(libs[i], R_OK) == 0)
            lib = libs[i];
    REQUIRE(lib != NULL);
    CHECK(p11_module_acquire(lib, &m, &d) == P11R_MODULE_SYMBOL);
    CHECK(m == NULL);
    CHECK(strstr(d.msg, "C_GetFunctionList") != NULL);
}

static void
test_p11_module_same_path_shared_instance(void)
{
    p11_module *a = NULL, *b = NULL;
    p11_diag d = {""};

    REQUIRE(p11_module_acquire(g_module, &a, &d) == CKR_OK);
    REQUIRE(p11_module_acquire(g_module, &b, &d) == CKR_OK);
    CHECK(a == b);
    CHECK(p11_module_functions(a) != NULL);
    p11_module_release(b);
    /* Still usable after one release: C_Finalize only on the last. */
    {
        struct ck_info info;

        CHECK(p11_module_functions(a)->C_GetInfo(&info) == CKR_OK);
    }
    p11_module_release(a);
    p11_module_release(NULL);
}

static void
test_p11_token_wrong_pin_auth_error(void)
{
    p11_module *m = NULL;
    p11_token *t = (p11_token *)1;
    p11_token_sel sel = {LABEL, NULL};
    p11_diag d = {""};
    ck_rv_t rv;

    REQUIRE(p11_module_acquire(g_module, &m, &d) == CKR_OK);
    rv = p11_token_open(m, &sel, (const uint8_t *)"9999", 4, &t, &d);
    CHECK(rv == CKR_PIN_INCORRECT);
    CHECK(t == NULL);
    CHECK(p11_rv_class(rv) == P11_C_AUTH);
    CHECK(strcmp(d.msg, "pkcs11: C_Login: CKR_PIN_INCORRECT (wrong PIN)") == 0);
    CHECK(strstr(d.msg, "9999") == NULL);
    p11_module_release(m);
}

static void
test_p11_token_unknown_label_not_found(void)
{
    p11_module *m = NULL;
    p11_token *t = NULL;
    p11_token_sel sel = {"no-such-token", NULL};
    p11_diag d = {""};
    ck_rv_t rv;

    REQUIRE(p11_module_acquire(g_module, &m, &d) == CKR_OK);
    rv = p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t, &d);
    CHECK(rv == P11R_TOKEN_NOT_FOUND);
    CHECK(p11_rv_class(rv) == P11_C_NOT_FOUND);
    CHECK(t == NULL);
    CHECK(strstr(d.msg, "token not found") != NULL);
    CHECK(strstr(d.msg, "no-such-token") != NULL);
    /* A label that is a prefix of a real one must not match. */
    sel.label = "kms-tes";
    CHECK(p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t, &d) ==
          P11R_TOKEN_NOT_FOUND);
    /* Neither label nor serial: refused before touching the module. */
    sel.label = NULL;
    CHECK(p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t, &d) ==
          P11R_BAD_INPUT);
    p11_module_release(m);
}

static void
test_p11_token_by_serial_opens(void)
{
    p11_module *m = NULL;
    p11_token *t = NULL, *t2 = NULL;
    p11_token_sel sel = {NULL, NULL};
    struct ck_token_info ti;
    char serial[17];
    size_t n = sizeof ti.serial_number;
    p11_diag d = {""};

    REQUIRE(p11_module_acquire(g_module, &m, &d) == CKR_OK);
    t = open_token();
    REQUIRE(t != NULL);
    REQUIRE(p11_token_functions(t)->C_GetTokenInfo(p11_token_slot(t), &ti) ==
            CKR_OK);
    while (n > 0 && ti.serial_number[n - 1] == ' ')
        n--;
    memcpy(serial, ti.serial_number, n);
    serial[n] = '\0';
    p11_token_close(t);

    sel.serial = serial;
    CHECK(p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t2, &d) == CKR_OK);
    p11_token_close(t2);
    t2 = NULL;
    /* Serial and label must both match when both are given. */
    sel.label = "kms-other";
    CHECK(p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t2, &d) ==
          P11R_TOKEN_NOT_FOUND);
    sel.label = NULL;
    sel.serial = "0000000000000000";
    CHECK(p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t2, &d) ==
          P11R_TOKEN_NOT_FOUND);
    p11_module_release(m);
}

static void
test_p11_token_duplicate_label_ambiguous(void)
{
    p11_module *m = NULL;
    p11_token *t = NULL;
    p11_token_sel sel = {"kms-dup", NULL};
    p11_diag d = {""};
    ck_rv_t rv;

    REQUIRE(p11_module_acquire(g_module, &m, &d) == CKR_OK);
    rv = p11_token_open(m, &sel, (const uint8_t *)PIN, 4, &t, &d);
    CHECK(rv == P11R_TOKEN_AMBIGUOUS);
    CHECK(p11_rv_class(rv) == P11_C_CONFIG);
    CHECK(strstr(d.msg, "token_serial") != NULL);
    CHECK(t == NULL);
    p11_module_release(m);
}

static void
test_p11_sign_duplicate_key_label_ambiguous(void)
{
    p11_token *t = open_token();
    uint8_t dg[32] = {3}, *sig = NULL;
    size_t sig_len = 0;
    p11_diag d = {""};
    static const char *ids[] = {"0b01", "0b02"};

    REQUIRE(t != NULL);
    /* Two key pairs with one label, made behind our back by pkcs11-tool
     * (our own keygen refuses duplicates). */
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {
            "pkcs11-tool",  "--module",   (char *)g_module, "--token-label",
            LABEL,          "--login",    "--pin",          PIN,
            "--keypairgen", "--key-type", "EC:prime256v1",  "--label",
            "dup-key",      "--id",       (char *)ids[i],   NULL};
        p11_keyinfo *keys = NULL;
        size_t count = 0;
        bool have = false;

        REQUIRE(p11_list_keys(t, &keys, &count, &d) == CKR_OK);
        for (size_t k = 0; k < count; k++)
            have |= keys[k].id_len == 2 && keys[k].id[0] == 0x0b &&
                    keys[k].id[1] == (uint8_t)(i + 1);
        free(keys);
        if (!have)
            REQUIRE(run(argv, kt_path(g_dir, "keypairgen.log")) == 0);
    }
    CHECK(p11_sign(t, "dup-key", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL,
                   &d) == P11R_KEY_AMBIGUOUS);
    CHECK(strstr(d.msg, "id:HEX") != NULL);
    CHECK(sig == NULL);
    REQUIRE(p11_sign(t, "id:0b02", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL,
                     &d) == CKR_OK);
    free(sig);
    p11_token_close(t);
}

/* ---- p11 layer: keys
 * --------------------------------------------------------- */

static void
test_p11_keygen_ec_sign_verifies_with_openssl(void)
{
    static const uint8_t msg[] = "pay 100 to bob";
    p11_token *t = open_token();
    uint8_t dg[32], *raw = NULL, *der = NULL, *spki = NULL;
    size_t raw_len = 0, der_len = 0, spki_len = 0;
    ck_key_type_t type = 0;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    sha256(msg, sizeof msg, dg);
    REQUIRE(p11_sign(t, "ec1", CKK_EC, dg, 32, &raw, &raw_len, &type, &d) ==
            CKR_OK);
    CHECK(type == CKK_EC);
    CHECK_EQ(raw_len, 64);
    REQUIRE(p11_public_key(t, "ec1", &spki, &spki_len, &type, &d) == CKR_OK);
    der = raw_to_der(raw, raw_len, &der_len);
    CHECK(ossl_verify(spki, spki_len, V_ECDSA, msg, sizeof msg, der, der_len));
    /* A different message must not verify. */
    CHECK(!ossl_verify(spki, spki_len, V_ECDSA, msg, sizeof msg - 1, der,
                       der_len));
    /* By id as well as by label. */
    free(raw);
    raw = NULL;
    CHECK(p11_sign(t, "id:0a01", P11_ANY_KEY, dg, 32, &raw, &raw_len, NULL,
                   &d) == CKR_OK);
    free(raw);
    free(der);
    free(spki);
    p11_token_close(t);
}

static void
test_p11_keygen_ed25519_sign_verifies_with_openssl(void)
{
    static const uint8_t msg[] = "ed25519 message";
    p11_token *t = open_token();
    uint8_t *sig = NULL, *spki = NULL;
    size_t sig_len = 0, spki_len = 0;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    /* SoftHSM2 2.6 (Debian 12) has CKM_EDDSA; fail loudly if not, so the
     * gap is seen rather than skipped. */
    REQUIRE(p11_token_has_mech(t, CKM_EDDSA));
    ensure_keys(t);
    REQUIRE(p11_sign(t, "ed1", CKK_EC_EDWARDS, msg, sizeof msg, &sig, &sig_len,
                     NULL, &d) == CKR_OK);
    CHECK_EQ(sig_len, 64);
    REQUIRE(p11_public_key(t, "ed1", &spki, &spki_len, NULL, &d) == CKR_OK);
    CHECK(
        ossl_verify(spki, spki_len, V_ED25519, msg, sizeof msg, sig, sig_len));
    sig[5] ^= 1;
    CHECK(
        !ossl_verify(spki, spki_len, V_ED25519, msg, sizeof msg, sig, sig_len));
    free(sig);
    free(spki);
    p11_token_close(t);
}

static void
test_p11_keygen_rsa_pss_verifies_with_openssl(void)
{
    static const uint8_t msg[] = "rsa-pss message";
    p11_token *t = open_token();
    uint8_t dg[32], *sig = NULL, *spki = NULL;
    size_t sig_len = 0, spki_len = 0;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    sha256(msg, sizeof msg, dg);
    REQUIRE(p11_sign(t, "rsa-pss", CKK_RSA, dg, 32, &sig, &sig_len, NULL, &d) ==
            CKR_OK);
    CHECK_EQ(sig_len, 256);
    REQUIRE(p11_public_key(t, "rsa-pss", &spki, &spki_len, NULL, &d) == CKR_OK);
    CHECK(ossl_verify(spki, spki_len, V_PSS, msg, sizeof msg, sig, sig_len));
    CHECK(!ossl_verify(spki, spki_len, V_PSS, msg, 3, sig, sig_len));
    free(sig);
    sig = NULL;
    /* PSS signs a SHA-256 digest: any other length is refused. */
    CHECK(p11_sign(t, "rsa-pss", CKK_RSA, dg, 31, &sig, &sig_len, NULL, &d) ==
          P11R_BAD_INPUT);
    CHECK(sig == NULL);
    free(spki);
    p11_token_close(t);
}

static void
test_p11_keygen_duplicate_label_exists(void)
{
    static const uint8_t other_id[] = {0x7f, 0x7f};
    p11_token *t = open_token();
    p11_keyspec ks = {P11_KEY_EC_P256, 0,        false,
                      "ec1",           other_id, sizeof other_id};
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    CHECK(p11_keygen(t, &ks, &d) == P11R_KEY_EXISTS);
    CHECK(strstr(d.msg, "exists") != NULL);
    /* Same id under a new label: also refused. */
    ks.label = "fresh-label";
    ks.id = id_ec;
    ks.id_len = sizeof id_ec;
    CHECK(p11_keygen(t, &ks, &d) == P11R_KEY_EXISTS);
    /* Bad specs. */
    ks.label = "";
    CHECK(p11_keygen(t, &ks, &d) == P11R_BAD_INPUT);
    ks.label = "id:abc";
    CHECK(p11_keygen(t, &ks, &d) == P11R_BAD_INPUT);
    ks.label = "rsa-small";
    ks.kind = P11_KEY_RSA;
    ks.bits = 1024;
    ks.id = other_id;
    CHECK(p11_keygen(t, &ks, &d) == P11R_BAD_INPUT);
    p11_token_close(t);
}

static void
test_p11_list_keys_non_extractable(void)
{
    p11_token *t = open_token();
    p11_keyinfo *keys = NULL;
    size_t count = 0;
    bool ec = false, aes = false;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    REQUIRE(p11_list_keys(t, &keys, &count, &d) == CKR_OK);
    CHECK(count >= 4);
    for (size_t i = 0; i < count; i++) {
        /* Every key we generate is sensitive and never extractable
         * ("dup-key" comes from pkcs11-tool, not from us). */
        if (strcmp(keys[i].label, "dup-key") != 0) {
            CHECK(keys[i].sensitive);
            CHECK(!keys[i].extractable);
        }
        if (strcmp(keys[i].label, "ec1") == 0) {
            ec = true;
            CHECK(keys[i].cls == CKO_PRIVATE_KEY);
            CHECK(keys[i].type == CKK_EC);
            CHECK(keys[i].id_len == 2 && memcmp(keys[i].id, id_ec, 2) == 0);
        }
        if (strcmp(keys[i].label, "aes1") == 0) {
            aes = true;
            CHECK(keys[i].cls == CKO_SECRET_KEY);
            CHECK_EQ(keys[i].bits, 256);
        }
    }
    CHECK(ec && aes);
    free(keys);
    p11_token_close(t);
}

static void
test_p11_sign_missing_key_not_found(void)
{
    p11_token *t = open_token();
    uint8_t dg[32] = {1}, *sig = NULL, *spki = NULL;
    size_t sig_len = 0, spki_len = 0;
    p11_diag d = {""};
    ck_rv_t rv;

    REQUIRE(t != NULL);
    rv = p11_sign(t, "no-such-key", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL,
                  &d);
    CHECK(rv == P11R_KEY_NOT_FOUND);
    CHECK(p11_rv_class(rv) == P11_C_NOT_FOUND);
    CHECK(strstr(d.msg, "key not found") != NULL);
    CHECK(strstr(d.msg, "no-such-key") != NULL);
    CHECK(sig == NULL);
    CHECK(p11_sign(t, "id:ffee", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL,
                   &d) == P11R_KEY_NOT_FOUND);
    CHECK(p11_public_key(t, "nothing", &spki, &spki_len, NULL, &d) ==
          P11R_KEY_NOT_FOUND);
    CHECK(p11_sign(t, "id:zz", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL, &d) ==
          P11R_BAD_INPUT);
    CHECK(p11_sign(t, "", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL, &d) ==
          P11R_BAD_INPUT);
    /* A key of the wrong type for what the caller expects. */
    ensure_keys(t);
    CHECK(p11_sign(t, "ec1", CKK_RSA, dg, 32, &sig, &sig_len, NULL, &d) ==
          P11R_UNSUPPORTED_KEY);
    /* Secret keys do not sign. */
    CHECK(p11_sign(t, "aes1", P11_ANY_KEY, dg, 32, &sig, &sig_len, NULL, &d) ==
          P11R_KEY_NOT_FOUND);
    p11_token_close(t);
}

static void
test_p11_rv_table_names_and_classes(void)
{
    p11_diag d = {""};

    CHECK(strcmp(p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT") == 0);
    CHECK(strcmp(p11_rv_name(CKR_KEY_HANDLE_INVALID),
                 "CKR_KEY_HANDLE_INVALID") == 0);
    CHECK(p11_rv_class(CKR_KEY_HANDLE_INVALID) == P11_C_NOT_FOUND);
    CHECK(p11_rv_class(CKR_SESSION_HANDLE_INVALID) == P11_C_SESSION);
    CHECK(p11_rv_class(CKR_DEVICE_REMOVED) == P11_C_SESSION);
    CHECK(p11_rv_class(CKR_USER_NOT_LOGGED_IN) == P11_C_SESSION);
    CHECK(p11_rv_class(CKR_ENCRYPTED_DATA_INVALID) == P11_C_DECRYPT);
    CHECK(p11_rv_class(CKR_MECHANISM_INVALID) == P11_C_UNSUPPORTED);
    CHECK(p11_rv_class(0x7777777UL) == P11_C_DEVICE);
    p11_fail(&d, "C_Sign", 0x7777777UL, NULL);
    CHECK(strcmp(d.msg, "pkcs11: C_Sign: CKR 0x07777777 (unknown code)") == 0);
    p11_fail(&d, "C_Sign", CKR_DEVICE_ERROR, "key \"%s\"", "k");
    CHECK(
        strcmp(d.msg,
               "pkcs11: C_Sign: CKR_DEVICE_ERROR (device error): key \"k\"") ==
        0);
}

/* ---- sessions -------------------------------------------------------------
 */

static void
sign_ec_ok(p11_token *t)
{
    uint8_t dg[32] = {9}, *sig = NULL;
    size_t sig_len = 0;
    p11_diag d = {""};
    ck_rv_t rv = p11_sign(t, "ec1", CKK_EC, dg, 32, &sig, &sig_len, NULL, &d);

    if (rv != CKR_OK)
        fprintf(stderr, "  sign: %s\n", d.msg);
    CHECK(rv == CKR_OK);
    free(sig);
}

static void
test_p11_session_closed_reestablished(void)
{
    p11_token *t = open_token();

    REQUIRE(t != NULL);
    ensure_keys(t);
    sign_ec_ok(t);
    /* Kill every session of ours behind the pool's back: the next
     * operation hits CKR_SESSION_HANDLE_INVALID and must recover. */
    REQUIRE(p11_token_functions(t)->C_CloseAllSessions(p11_token_slot(t)) ==
            CKR_OK);
    sign_ec_ok(t);
    sign_ec_ok(t);
    p11_token_close(t);
}

static void
test_p11_logout_relogged_in(void)
{
    p11_token *t = open_token();
    struct ck_function_list *f;
    ck_session_handle_t s;

    REQUIRE(t != NULL);
    ensure_keys(t);
    f = p11_token_functions(t);
    /* Log the application out through a session of our own: the pool's
     * sessions stay open but lose the login (CKR_USER_NOT_LOGGED_IN). */
    REQUIRE(f->C_OpenSession(p11_token_slot(t), CKF_SERIAL_SESSION, NULL, NULL,
                             &s) == CKR_OK);
    CHECK(f->C_Logout(s) == CKR_OK);
    CHECK(f->C_CloseSession(s) == CKR_OK);
    sign_ec_ok(t);
    p11_token_close(t);
}

typedef struct {
    p11_token *t;
    const uint8_t *spki;
    size_t spki_len;
    int ok;
} thr_arg;

static void *
sign_thread(void *p)
{
    thr_arg *a = p;

    for (int i = 0; i < 3; i++) {
        uint8_t msg[16], dg[32], *raw = NULL, *der;
        size_t raw_len = 0, der_len;
        p11_diag d = {""};

        memset(msg, i, sizeof msg);
        msg[0] = (uint8_t)(uintptr_t)a;
        sha256(msg, sizeof msg, dg);
        if (p11_sign(a->t, "ec1", CKK_EC, dg, 32, &raw, &raw_len, NULL, &d) !=
            CKR_OK) {
            fprintf(stderr, "  thread: %s\n", d.msg);
            return NULL;
        }
        der = raw_to_der(raw, raw_len, &der_len);
        if (ossl_verify(a->spki, a->spki_len, V_ECDSA, msg, sizeof msg, der,
                        der_len))
            a->ok++;
        free(der);
        free(raw);
    }
    return NULL;
}

static void
test_p11_concurrent_20_threads_all_verify(void)
{
    p11_token *t = open_token();
    pthread_t th[20];
    thr_arg args[20];
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    REQUIRE(p11_public_key(t, "ec1", &spki, &spki_len, NULL, &d) == CKR_OK);
    for (int i = 0; i < 20; i++) {
        args[i] = (thr_arg){t, spki, spki_len, 0};
        REQUIRE(pthread_create(&th[i], NULL, sign_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 20; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].ok, 3);
    }
    CHECK(p11_token_session_count(t) >= 1);
    CHECK(p11_token_session_count(t) <= P11_POOL_MAX);
    free(spki);
    p11_token_close(t);
}

/* ---- interoperability with pkcs11-tool (OpenSC) -----------------------------
 */

static void
test_p11_pkcs11_tool_signature_verifies(void)
{
    static const uint8_t msg[] = "signed by pkcs11-tool";
    p11_token *t = open_token();
    const char *in = kt_path(g_dir, "digest.bin");
    const char *out = kt_path(g_dir, "sig.bin");
    uint8_t dg[32], *raw, *der, *spki = NULL;
    size_t raw_len = 0, der_len, spki_len = 0;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    REQUIRE(p11_public_key(t, "ec1", &spki, &spki_len, NULL, &d) == CKR_OK);
    sha256(msg, sizeof msg, dg);
    REQUIRE(kt_write_file(in, dg, 32, 0600) == 0);
    {
        char *argv[] = {
            "pkcs11-tool", "--module",    (char *)g_module, "--token-label",
            LABEL,         "--login",     "--pin",          PIN,
            "--sign",      "--mechanism", "ECDSA",          "--id",
            "0a01",        "-i",          (char *)in,       "-o",
            (char *)out,   NULL};

        REQUIRE(run(argv, kt_path(g_dir, "pkcs11-tool.log")) == 0);
    }
    raw = kt_read_all(out, &raw_len);
    REQUIRE(raw != NULL);
    CHECK_EQ(raw_len, 64); /* raw r||s, as PKCS#11 defines it */
    der = raw_to_der(raw, raw_len, &der_len);
    CHECK(ossl_verify(spki, spki_len, V_ECDSA, msg, sizeof msg, der, der_len));
    free(der);
    free(raw);
    free(spki);
    p11_token_close(t);
}

/* ---- wrapped secrets
 * ----------------------------------------------------------- */

static void
test_p11_unwrap_rsa_oaep_roundtrip(void)
{
    static const char pw[] = "correct horse battery staple";
    p11_token *t = open_token();
    uint8_t *blob = NULL, *out = NULL;
    size_t blob_len = 0, out_len = 0;
    p11_diag d = {""};

    REQUIRE(t != NULL);
    ensure_keys(t);
    REQUIRE(p11_wrap_secret(t, "rsa-oaep", (const uint8_t *)pw, strlen(pw),
                            &blob, &blob_len, &d) == CKR_OK);
    CHECK_EQ(blob_len, 256);
    REQUIRE(p11_unwrap_secret(t, "rsa-oaep", blob, blob_len, &out, &out_len,
                              &d) == CKR_OK);
    CHECK_EQ(out_len, strlen(pw));
    CHECK(memcmp(out, pw, out_len) == 0);
    CHECK(out[out_len] == 0);
    kc_secure_free(out);
    out = NULL;
    /* Tampered: rejected, nothing returned. */
    blob[100] ^= 0x40;
    CHECK(p11_rv_class(p11_unwrap_secret(t, "rsa-oaep", blob, blob_len, &out,
                                         &out_len, &d)) != P11_C_OK);
    CHECK(out == NULL);
    /* Wrong key: an RSA signing key cannot decrypt. */
    blob[100] ^= 0x40;
    CHECK(p11_unwrap_secret(t, "rsa-pss", blob, blob_len, &out, &out_len, &d) !=
          CKR_OK);
    CHECK(out == NULL);
    free(blob);
    p11_token_close(t);
}

static void
test_p11_unwrap_aes_gcm_tampered_rejected(void)
{
    static const char pw[] = "zapdb password";
    p11_token *t = open_token();
    uint8_t *blob = NULL, *out = NULL;
    size_t blob_len = 0, out_len = 0;
    p11_diag d = {""};
    ck_rv_t rv;

    REQUIRE(t != NULL);
    ensure_keys(t);
    REQUIRE(p11_wrap_secret(t, "aes1", (const uint8_t *)pw, strlen(pw), &blob,
                            &blob_len, &d) == CKR_OK);
    CHECK_EQ(blob_len, P11_GCM_NONCE_LEN + strlen(pw) + P11_GCM_TAG_LEN);
    REQUIRE(p11_unwrap_secret(t, "aes1", blob, blob_len, &out, &out_len, &d) ==
            CKR_OK);
    CHECK_EQ(out_len, strlen(pw));
    CHECK(memcmp(out, pw, out_len) == 0);
    kc_secure_free(out);
    out = NULL;
    for (size_t pos = 0; pos < blob_len; pos += blob_len / 3) {
        blob[pos] ^= 1; /* nonce, ciphertext and tag */
        rv = p11_unwrap_secret(t, "aes1", blob, blob_len, &out, &out_len, &d);
        if (rv == CKR_OK)
            fprintf(stderr, "  tamper at %zu accepted\n", pos);
        CHECK(p11_rv_class(rv) == P11_C_DECRYPT);
        CHECK(out == NULL);
        blob[pos] ^= 1;
    }
    /* Truncated below nonce + tag. */
    CHECK(p11_unwrap_secret(t, "aes1", blob, 20, &out, &out_len, &d) ==
          P11R_BAD_BLOB);
    CHECK(p11_unwrap_secret(t, "aes1", blob, 0, &out, &out_len, &d) ==
          P11R_BAD_BLOB);
    /* EC keys do not unwrap. */
    CHECK(p11_unwrap_secret(t, "ec1", blob, blob_len, &out, &out_len, &d) ==
          P11R_UNSUPPORTED_KEY);
    free(blob);
    p11_token_close(t);
}

/* ---- libhsm providers ("pkcs11" signer and password provider) --------------
 */

static const char *
pin_file(const char *name, const char *pin, int mode)
{
    const char *p = kt_path(g_dir, name);

    if (kt_write_file(p, pin, strlen(pin), mode) != 0)
        abort();
    chmod(p, (mode_t)mode);
    return p;
}

/* A config for the test token; `pin` goes into a 0600 PIN file. */
static hsm_config *
make_config(const char *pin, const char *key_id)
{
    hsm_config *c = NULL;

    if (hsm_config_new(&c) != HSM_OK)
        abort();
    hsm_config_set(c, "module", g_module);
    hsm_config_set(c, "token_label", LABEL);
    hsm_config_set(c, "pin_provider", "file");
    hsm_config_set(c, "pin_key_id", pin_file("pin.txt", pin, 0600));
    if (key_id)
        hsm_config_set(c, "key_id", key_id);
    return c;
}

static hsm_signer *
make_signer(const char *key_id)
{
    hsm_config *c = make_config(PIN, key_id);
    hsm_signer *s = NULL;
    char detail[HSM_DETAIL_MAX] = "";
    hsm_err rc =
        hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail);

    if (rc != HSM_OK)
        fprintf(stderr, "  signer: %s: %s\n", hsm_strerror(rc), detail);
    hsm_config_free(c);
    return s;
}

static void
provision_keys(void)
{
    p11_token *t = open_token();

    REQUIRE(t != NULL);
    ensure_keys(t);
    p11_token_close(t);
}

static void
signer_roundtrip(const char *kid, vkind k, hsm_alg alg)
{
    static const uint8_t msg[] = "libhsm pkcs11 signer";
    hsm_signer *s;
    uint8_t *sig = NULL, *spki = NULL;
    size_t sig_len = 0, spki_len = 0;
    bool valid = false;

    provision_keys();
    s = make_signer(kid);
    REQUIRE(s != NULL);
    CHECK(strcmp(hsm_signer_provider(s), "pkcs11") == 0);
    CHECK(hsm_signer_algorithm(s) == alg);
    REQUIRE(hsm_signer_sign(s, NULL, msg, sizeof msg, &sig, &sig_len) ==
            HSM_OK);
    REQUIRE(hsm_signer_public_key(s, NULL, &spki, &spki_len) == HSM_OK);
    /* OpenSSL agrees with the signature (DER for ECDSA). */
    CHECK(ossl_verify(spki, spki_len, k, msg, sizeof msg, sig, sig_len));
    CHECK(hsm_signer_verify(s, NULL, msg, sizeof msg, sig, sig_len, &valid) ==
          HSM_OK);
    CHECK(valid);
    sig[sig_len / 2] ^= 0x10;
    CHECK(hsm_signer_verify(s, NULL, msg, sizeof msg, sig, sig_len, &valid) ==
          HSM_OK);
    CHECK(!valid);
    sig[sig_len / 2] ^= 0x10;
    CHECK(hsm_signer_verify(s, NULL, msg, sizeof msg - 1, sig, sig_len,
                            &valid) == HSM_OK);
    CHECK(!valid);
    hsm_free(sig);
    hsm_free(spki);
    hsm_signer_free(s);
}

static void
test_pkcs11_signer_ecdsa_der_verifies(void)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    hsm_signer *s;

    signer_roundtrip("ec1", V_ECDSA, HSM_ALG_ECDSA_P256_SHA256);
    /* The signature is DER (SEQUENCE), not the token's raw r||s. */
    s = make_signer("ec1");
    REQUIRE(s != NULL);
    REQUIRE(hsm_signer_sign(s, "id:0a01", (const uint8_t *)"x", 1, &sig,
                            &sig_len) == HSM_OK);
    CHECK(sig_len >= 8 && sig_len <= 72 && sig[0] == 0x30);
    hsm_free(sig);
    hsm_signer_free(s);
}

static void
test_pkcs11_signer_ed25519_verifies(void)
{
    hsm_signer *s;
    uint8_t dg[32] = {0}, *sig = NULL;
    size_t sig_len = 0;

    signer_roundtrip("ed1", V_ED25519, HSM_ALG_ED25519);
    /* Ed25519 has no digest signing. */
    s = make_signer("ed1");
    REQUIRE(s != NULL);
    CHECK(hsm_signer_sign_digest(s, NULL, dg, 32, &sig, &sig_len) ==
          HSM_EUNSUPPORTED);
    CHECK(sig == NULL);
    hsm_signer_free(s);
}

static void
test_pkcs11_signer_rsa_pss_verifies(void)
{
    signer_roundtrip("rsa-pss", V_PSS, HSM_ALG_RSA_PSS_SHA256);
}

static void
test_pkcs11_signer_sign_digest_matches_message(void)
{
    static const uint8_t msg[] = "digest path";
    hsm_signer *s;
    uint8_t dg[32], *sig = NULL;
    size_t sig_len = 0;
    bool valid = false;

    provision_keys();
    s = make_signer("ec1");
    REQUIRE(s != NULL);
    sha256(msg, sizeof msg, dg);
    REQUIRE(hsm_signer_sign_digest(s, NULL, dg, 32, &sig, &sig_len) == HSM_OK);
    /* A signature over the digest verifies as one over the message. */
    CHECK(hsm_signer_verify(s, NULL, msg, sizeof msg, sig, sig_len, &valid) ==
          HSM_OK);
    CHECK(valid);
    CHECK(hsm_signer_verify_digest(s, NULL, dg, 32, sig, sig_len, &valid) ==
          HSM_OK);
    CHECK(valid);
    hsm_free(sig);
    hsm_signer_free(s);
}

static void
test_pkcs11_signer_wrong_pin_eauth(void)
{
    hsm_config *c = make_config("0000", "ec1");
    hsm_signer *s = NULL;
    char detail[HSM_DETAIL_MAX] = "";

    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_EAUTH);
    CHECK(s == NULL);
    CHECK(strcmp(detail, "pkcs11: C_Login: CKR_PIN_INCORRECT (wrong PIN)") ==
          0);
    CHECK(strstr(detail, "0000") == NULL);
    hsm_config_free(c);
}

static void
test_pkcs11_signer_pin_file_readable_by_others_eperm(void)
{
    hsm_config *c = make_config(PIN, "ec1");
    hsm_signer *s = NULL;
    char detail[HSM_DETAIL_MAX] = "";

    hsm_config_set(c, "pin_key_id", pin_file("pin-644.txt", PIN, 0644));
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_EPERM);
    CHECK(strstr(detail, "PIN") != NULL);
    /* No PIN provider at all: a configuration error, not a prompt. */
    hsm_config_set(c, "pin_provider", NULL);
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ECONFIG);
    CHECK(strstr(detail, "pin_provider") != NULL);
    hsm_config_set(c, "pin_provider", "pkcs11");
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ECONFIG);
    CHECK(s == NULL);
    hsm_config_free(c);
}

static void
test_pkcs11_signer_missing_key_enotfound(void)
{
    hsm_signer *s;
    uint8_t *sig = NULL, *spki = NULL;
    size_t sig_len = 0, spki_len = 0;
    bool valid = true;

    s = make_signer(NULL);
    REQUIRE(s != NULL);
    CHECK(hsm_signer_sign(s, "missing-key", (const uint8_t *)"m", 1, &sig,
                          &sig_len) == HSM_ENOTFOUND);
    CHECK(sig == NULL);
    CHECK(strstr(hsm_signer_last_error(s), "key not found") != NULL);
    CHECK(hsm_signer_public_key(s, "missing-key", &spki, &spki_len) ==
          HSM_ENOTFOUND);
    CHECK(hsm_signer_verify(s, "missing-key", (const uint8_t *)"m", 1,
                            (const uint8_t *)"s", 1, &valid) == HSM_ENOTFOUND);
    CHECK(!valid);
    /* No key id at all. */
    CHECK(hsm_signer_sign(s, NULL, (const uint8_t *)"m", 1, &sig, &sig_len) ==
          HSM_ECONFIG);
    hsm_signer_free(s);
}

static void
test_pkcs11_signer_bad_module_econfig(void)
{
    hsm_config *c = make_config(PIN, "ec1");
    hsm_signer *s = NULL;
    char detail[HSM_DETAIL_MAX] = "";

    hsm_config_set(c, "module", "/nonexistent/libpkcs11.so");
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ECONFIG);
    CHECK(s == NULL);
    CHECK(strstr(detail, "pkcs11: dlopen: module could not be loaded") != NULL);
    hsm_config_set(c, "module", "relative/libsofthsm2.so");
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ECONFIG);
    CHECK(strstr(detail, "absolute") != NULL);
    hsm_config_free(c);
}

static void
test_pkcs11_signer_unknown_token_enotfound(void)
{
    hsm_config *c = make_config(PIN, "ec1");
    hsm_signer *s = NULL;
    char detail[HSM_DETAIL_MAX] = "";

    hsm_config_set(c, "token_label", "absent-token");
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ENOTFOUND);
    CHECK(s == NULL);
    CHECK(strstr(detail, "token not found") != NULL);
    CHECK(strstr(detail, "absent-token") != NULL);
    hsm_config_free(c);
}

static void
test_pkcs11_signer_env_fallbacks_used(void)
{
    hsm_config *c = NULL;
    hsm_signer *s = NULL;
    char detail[HSM_DETAIL_MAX] = "";

    provision_keys();
    REQUIRE(hsm_config_new(&c) == HSM_OK);
    hsm_config_set(c, "pin_provider", "file");
    hsm_config_set(c, "pin_key_id", pin_file("pin.txt", PIN, 0600));
    /* Neither module nor token: a clear configuration error. */
    unsetenv("PKCS11_MODULE");
    unsetenv("PKCS11_TOKEN_LABEL");
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ECONFIG);
    CHECK(strstr(detail, "PKCS11_MODULE") != NULL);
    setenv("PKCS11_MODULE", g_module, 1);
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_ECONFIG);
    CHECK(strstr(detail, "token_label") != NULL);
    setenv("PKCS11_TOKEN_LABEL", LABEL, 1);
    CHECK(hsm_signer_new_ex("pkcs11", c, NULL, &s, detail, sizeof detail) ==
          HSM_OK);
    CHECK(s != NULL);
    hsm_signer_free(s);
    unsetenv("PKCS11_MODULE");
    unsetenv("PKCS11_TOKEN_LABEL");
    hsm_config_free(c);
}

typedef struct {
    hsm_signer *s;
    int ok;
} sthr_arg;

static void *
signer_thread(void *p)
{
    sthr_arg *a = p;

    for (int i = 0; i < 2; i++) {
        uint8_t msg[8] = {(uint8_t)i, (uint8_t)(uintptr_t)a}, *sig = NULL;
        size_t sig_len = 0;
        bool valid = false;

        if (hsm_signer_sign(a->s, NULL, msg, sizeof msg, &sig, &sig_len) ==
                HSM_OK &&
            hsm_signer_verify(a->s, NULL, msg, sizeof msg, sig, sig_len,
                              &valid) == HSM_OK &&
            valid)
            a->ok++;
        hsm_free(sig);
    }
    return NULL;
}

static void
test_pkcs11_signer_20_threads_all_verify(void)
{
    pthread_t th[20];
    sthr_arg args[20];
    hsm_signer *s;

    provision_keys();
    s = make_signer("ec1");
    REQUIRE(s != NULL);
    for (int i = 0; i < 20; i++) {
        args[i] = (sthr_arg){s, 0};
        REQUIRE(pthread_create(&th[i], NULL, signer_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 20; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].ok, 2);
    }
    hsm_signer_free(s);
}

/* RSA-OAEP (SHA-256, MGF1-SHA-256) with OpenSSL, as an operator would. */
static char *
oaep_wrap_b64(const uint8_t *spki, size_t spki_len, const char *pw)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    uint8_t out[1024];
    size_t n = sizeof out;
    char *b64 = NULL;

    if (ctx && EVP_PKEY_encrypt_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_encrypt(ctx, out, &n, (const uint8_t *)pw, strlen(pw)) == 1)
        b64 = kc_b64_encode(out, n, KC_B64_STD);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return b64;
}

static hsm_password_provider *
make_password_provider(const char *key_id)
{
    hsm_config *c = make_config(PIN, key_id);
    hsm_password_provider *pp = NULL;
    char detail[HSM_DETAIL_MAX] = "";

    if (hsm_password_provider_new_ex("pkcs11", c, &pp, detail, sizeof detail) !=
        HSM_OK)
        fprintf(stderr, "  password provider: %s\n", detail);
    hsm_config_free(c);
    return pp;
}

static void
test_pkcs11_password_rsa_oaep_unwrap_roundtrip(void)
{
    static const char pw[] = "zapdb-password-from-the-hsm";
    p11_token *t;
    hsm_password_provider *pp;
    hsm_secret *sec = NULL;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    char *b64;
    p11_diag d = {""};

    provision_keys();
    t = open_token();
    REQUIRE(t != NULL);
    REQUIRE(p11_public_key(t, "rsa-oaep", &spki, &spki_len, NULL, &d) ==
            CKR_OK);
    p11_token_close(t);
    b64 = oaep_wrap_b64(spki, spki_len, pw);
    free(spki);
    REQUIRE(b64 != NULL);
    setenv("ZAPDB_ENCRYPTED_PASSWORD", b64, 1);
    pp = make_password_provider("rsa-oaep");
    REQUIRE(pp != NULL);
    CHECK(strcmp(hsm_password_provider_name(pp), "pkcs11") == 0);
    REQUIRE(hsm_password_get(pp, NULL, &sec) == HSM_OK);
    CHECK_EQ(sec->len, strlen(pw));
    CHECK(memcmp(sec->data, pw, sec->len) == 0);
    hsm_secret_free(sec);
    sec = NULL;
    /* The key id may also come per call. */
    REQUIRE(hsm_password_get(pp, "id:0a04", &sec) == HSM_OK);
    CHECK(memcmp(sec->data, pw, strlen(pw)) == 0);
    hsm_secret_free(sec);
    unsetenv("ZAPDB_ENCRYPTED_PASSWORD");
    free(b64);
    hsm_password_provider_free(pp);
}

static void
test_pkcs11_password_tampered_blob_ecorrupt(void)
{
    static const char pw[] = "another password";
    p11_token *t;
    hsm_password_provider *pp;
    hsm_secret *sec = NULL;
    uint8_t *spki = NULL, *raw = NULL;
    size_t spki_len = 0, raw_len = 0;
    char *b64, *bad;
    p11_diag d = {""};

    provision_keys();
    t = open_token();
    REQUIRE(t != NULL);
    REQUIRE(p11_public_key(t, "rsa-oaep", &spki, &spki_len, NULL, &d) ==
            CKR_OK);
    p11_token_close(t);
    b64 = oaep_wrap_b64(spki, spki_len, pw);
    free(spki);
    REQUIRE(b64 != NULL);
    REQUIRE(kc_b64_decode(b64, strlen(b64), KC_B64_STD, &raw, &raw_len) == 0);
    raw[raw_len - 1] ^= 0x01;
    bad = kc_b64_encode(raw, raw_len, KC_B64_STD);
    REQUIRE(bad != NULL);
    pp = make_password_provider("rsa-oaep");
    REQUIRE(pp != NULL);
    setenv("ZAPDB_ENCRYPTED_PASSWORD", bad, 1);
    CHECK(hsm_password_get(pp, NULL, &sec) == HSM_ECORRUPT);
    CHECK(sec == NULL);
    CHECK(strstr(hsm_password_provider_last_error(pp), "decryption failed") !=
          NULL);
    /* Truncated blob, bad base64, no blob at all. */
    setenv("ZAPDB_ENCRYPTED_PASSWORD", "AAAA", 1);
    CHECK(hsm_password_get(pp, NULL, &sec) == HSM_ECORRUPT);
    setenv("ZAPDB_ENCRYPTED_PASSWORD", "not*base64", 1);
    CHECK(hsm_password_get(pp, NULL, &sec) == HSM_EMALFORMED);
    unsetenv("ZAPDB_ENCRYPTED_PASSWORD");
    CHECK(hsm_password_get(pp, NULL, &sec) == HSM_ECONFIG);
    /* The original, untampered, still works with a different key: no. */
    setenv("ZAPDB_ENCRYPTED_PASSWORD", b64, 1);
    CHECK(hsm_password_get(pp, "no-such-key", &sec) == HSM_ENOTFOUND);
    CHECK(sec == NULL);
    unsetenv("ZAPDB_ENCRYPTED_PASSWORD");
    free(bad);
    free(raw);
    free(b64);
    hsm_password_provider_free(pp);
}

static void
test_pkcs11_password_aes_gcm_unwrap_roundtrip(void)
{
    static const char pw[] = "aes wrapped password";
    p11_token *t;
    hsm_password_provider *pp;
    hsm_config *c;
    hsm_secret *sec = NULL;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    char *b64;
    p11_diag d = {""};
    char detail[HSM_DETAIL_MAX] = "";

    provision_keys();
    t = open_token();
    REQUIRE(t != NULL);
    REQUIRE(p11_wrap_secret(t, "aes1", (const uint8_t *)pw, strlen(pw), &blob,
                            &blob_len, &d) == CKR_OK);
    p11_token_close(t);
    b64 = kc_b64_encode(blob, blob_len, KC_B64_STD);
    REQUIRE(b64 != NULL);
    /* The blob through the configuration this time. */
    c = make_config(PIN, "aes1");
    hsm_config_set(c, "encrypted_password", b64);
    REQUIRE(hsm_password_provider_new_ex("pkcs11", c, &pp, detail,
                                         sizeof detail) == HSM_OK);
    REQUIRE(hsm_password_get(pp, NULL, &sec) == HSM_OK);
    CHECK_EQ(sec->len, strlen(pw));
    CHECK(memcmp(sec->data, pw, sec->len) == 0);
    hsm_secret_free(sec);
    sec = NULL;
    hsm_password_provider_free(pp);
    /* One flipped bit in the tag: rejected. */
    blob[blob_len - 1] ^= 0x80;
    free(b64);
    b64 = kc_b64_encode(blob, blob_len, KC_B64_STD);
    hsm_config_set(c, "encrypted_password", b64);
    REQUIRE(hsm_password_provider_new_ex("pkcs11", c, &pp, detail,
                                         sizeof detail) == HSM_OK);
    CHECK(hsm_password_get(pp, NULL, &sec) == HSM_ECORRUPT);
    CHECK(sec == NULL);
    hsm_password_provider_free(pp);
    hsm_config_free(c);
    free(b64);
    free(blob);
}

/* ---- hsm pkcs11 CLI
 * ----------------------------------------------------------- */

/* Run hsm_pkcs11_cli with stdin from `in` (may be NULL) and stdout into
 * `out`; returns its exit code. */
static int
run_cli(char **argv, int argc, const char *in, const char *out)
{
    int saved_out = dup(1), saved_in = dup(0), fd, rc;

    fflush(stdout);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0)
        abort();
    close(fd);
    if (in) {
        fd = open(in, O_RDONLY);
        if (fd < 0 || dup2(fd, 0) < 0)
            abort();
        close(fd);
    }
    rc = hsm_pkcs11_cli(argc, argv);
    fflush(stdout);
    dup2(saved_out, 1);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_in);
    return rc;
}

#define CLI_CONFIG(pinf)                                                       \
    "--config", cfg_module, "--config", "token_label=" LABEL, "--config",      \
        "pin_provider=file", "--config", pinf

static void
test_pkcs11_cli_keygen_then_list_shows_key(void)
{
    char cfg_module[512], pinf[512];
    const char *out = kt_path(g_dir, "cli.out");
    char *gen[] = {"pkcs11",  "keygen", CLI_CONFIG(pinf), "--type", "ec-p256",
                   "--label", "cli-ec", "--id",           "c11e"};
    char *list[] = {"pkcs11", "list", CLI_CONFIG(pinf)};
    uint8_t *txt;
    size_t len;
    hsm_signer *s;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    bool valid = false;

    snprintf(cfg_module, sizeof cfg_module, "module=%s", g_module);
    snprintf(pinf, sizeof pinf, "pin_key_id=%s",
             pin_file("pin.txt", PIN, 0600));
    REQUIRE(run_cli(gen, (int)KT_COUNT(gen), NULL, out) == 0);
    txt = kt_read_all(out, &len);
    REQUIRE(txt != NULL);
    CHECK(strstr((char *)txt, "id=c11e") != NULL);
    free(txt);
    /* A second key with the same label is refused (exit 1). */
    CHECK(run_cli(gen, (int)KT_COUNT(gen), NULL, out) == 1);
    REQUIRE(run_cli(list, (int)KT_COUNT(list), NULL, out) == 0);
    txt = kt_read_all(out, &len);
    REQUIRE(txt != NULL);
    CHECK(strstr((char *)txt, "c11e") != NULL);
    CHECK(strstr((char *)txt, "cli-ec") != NULL);
    CHECK(strstr((char *)txt, "EXTRACTABLE") == NULL);
    free(txt);
    /* The generated key signs through the generic signer interface. */
    s = make_signer("cli-ec");
    REQUIRE(s != NULL);
    REQUIRE(hsm_signer_sign(s, NULL, (const uint8_t *)"m", 1, &sig, &sig_len) ==
            HSM_OK);
    CHECK(hsm_signer_verify(s, "id:c11e", (const uint8_t *)"m", 1, sig, sig_len,
                            &valid) == HSM_OK);
    CHECK(valid);
    hsm_free(sig);
    hsm_signer_free(s);
}

static void
test_pkcs11_cli_errors_tool_exit_codes(void)
{
    char cfg_module[512], pinf[512];
    const char *out = kt_path(g_dir, "cli.out");
    char *none[] = {"pkcs11"};
    char *unknown[] = {"pkcs11", "frobnicate"};
    char *notype[] = {"pkcs11", "keygen", CLI_CONFIG(pinf), "--label", "x"};
    char *badtype[] = {"pkcs11",  "keygen", CLI_CONFIG(pinf), "--type", "dsa",
                       "--label", "x"};
    char *badid[] = {"pkcs11",  "keygen", CLI_CONFIG(pinf), "--type", "ec-p256",
                     "--label", "x",      "--id",           "xyz"};
    char *badopt[] = {"pkcs11", "list", "--pin", "1234"};
    char *badcfg[] = {"pkcs11", "list", "--config", "novalue"};
    char *wrongpin[] = {"pkcs11",   "list",
                        "--config", cfg_module,
                        "--config", "token_label=" LABEL,
                        "--config", "pin_provider=file",
                        "--config", pinf};

    snprintf(cfg_module, sizeof cfg_module, "module=%s", g_module);
    snprintf(pinf, sizeof pinf, "pin_key_id=%s",
             pin_file("pin.txt", PIN, 0600));
    CHECK(run_cli(none, 1, NULL, out) == 2);
    CHECK(run_cli(unknown, 2, NULL, out) == 2);
    CHECK(run_cli(notype, (int)KT_COUNT(notype), NULL, out) == 2);
    CHECK(run_cli(badtype, (int)KT_COUNT(badtype), NULL, out) == 2);
    CHECK(run_cli(badid, (int)KT_COUNT(badid), NULL, out) == 2);
    /* There is no --pin option: a PIN never travels on argv. */
    CHECK(run_cli(badopt, (int)KT_COUNT(badopt), NULL, out) == 2);
    CHECK(run_cli(badcfg, (int)KT_COUNT(badcfg), NULL, out) == 2);
    snprintf(pinf, sizeof pinf, "pin_key_id=%s",
             pin_file("pin-wrong.txt", "0000", 0600));
    /* The hsm tool's exit codes: 4 wrong PIN, 3 not found. */
    CHECK(run_cli(wrongpin, (int)KT_COUNT(wrongpin), NULL, out) == 4);
    wrongpin[5] = "token_label=absent";
    snprintf(pinf, sizeof pinf, "pin_key_id=%s",
             pin_file("pin.txt", PIN, 0600));
    CHECK(run_cli(wrongpin, (int)KT_COUNT(wrongpin), NULL, out) == 3);
}

static void
test_pkcs11_cli_wrap_then_provider_unwraps(void)
{
    static const char pw[] = "wrapped by the cli";
    char cfg_module[512], pinf[512];
    const char *in = kt_path(g_dir, "secret.in");
    const char *out = kt_path(g_dir, "cli.out");
    char *wrap[] = {"pkcs11", "wrap", CLI_CONFIG(pinf), "--key", "aes1"};
    hsm_password_provider *pp;
    hsm_secret *sec = NULL;
    uint8_t *txt;
    size_t len;

    provision_keys();
    snprintf(cfg_module, sizeof cfg_module, "module=%s", g_module);
    snprintf(pinf, sizeof pinf, "pin_key_id=%s",
             pin_file("pin.txt", PIN, 0600));
    REQUIRE(kt_write_file(in, "wrapped by the cli\n", sizeof pw, 0600) == 0);
    REQUIRE(run_cli(wrap, (int)KT_COUNT(wrap), in, out) == 0);
    txt = kt_read_all(out, &len);
    REQUIRE(txt != NULL && len > 1);
    txt[len - 1] = 0; /* the newline */
    setenv("ZAPDB_ENCRYPTED_PASSWORD", (char *)txt, 1);
    pp = make_password_provider("aes1");
    REQUIRE(pp != NULL);
    REQUIRE(hsm_password_get(pp, NULL, &sec) == HSM_OK);
    CHECK_EQ(sec->len, strlen(pw));
    CHECK(memcmp(sec->data, pw, sec->len) == 0);
    hsm_secret_free(sec);
    hsm_password_provider_free(pp);
    unsetenv("ZAPDB_ENCRYPTED_PASSWORD");
    free(txt);
    /* Negative: an empty secret, an unknown key, no --key. */
    REQUIRE(kt_write_file(in, "\n", 1, 0600) == 0);
    CHECK(run_cli(wrap, (int)KT_COUNT(wrap), in, out) == 1);
    REQUIRE(kt_write_file(in, "x", 1, 0600) == 0);
    wrap[KT_COUNT(wrap) - 1] = "no-such-key";
    CHECK(run_cli(wrap, (int)KT_COUNT(wrap), in, out) == 3);
    CHECK(run_cli(wrap, (int)KT_COUNT(wrap) - 2, in, out) == 2);
}

static const kt_case cases[] = {
    KT_CASE(test_p11_rv_table_names_and_classes),
    KT_CASE(test_p11_module_relative_path_rejected),
    KT_CASE(test_p11_module_missing_file_load_error),
    KT_CASE(test_p11_module_not_pkcs11_symbol_error),
    KT_CASE(test_p11_module_same_path_shared_instance),
    KT_CASE(test_p11_token_wrong_pin_auth_error),
    KT_CASE(test_p11_token_unknown_label_not_found),
    KT_CASE(test_p11_token_by_serial_opens),
    KT_CASE(test_p11_token_duplicate_label_ambiguous),
    KT_CASE(test_p11_sign_duplicate_key_label_ambiguous),
    KT_CASE(test_p11_keygen_ec_sign_verifies_with_openssl),
    KT_CASE(test_p11_keygen_ed25519_sign_verifies_with_openssl),
    KT_CASE(test_p11_keygen_rsa_pss_verifies_with_openssl),
    KT_CASE(test_p11_keygen_duplicate_label_exists),
    KT_CASE(test_p11_list_keys_non_extractable),
    KT_CASE(test_p11_sign_missing_key_not_found),
    KT_CASE(test_p11_session_closed_reestablished),
    KT_CASE(test_p11_logout_relogged_in),
    KT_CASE(test_p11_concurrent_20_threads_all_verify),
    KT_CASE(test_p11_pkcs11_tool_signature_verifies),
    KT_CASE(test_p11_unwrap_rsa_oaep_roundtrip),
    KT_CASE(test_p11_unwrap_aes_gcm_tampered_rejected),
    KT_CASE(test_pkcs11_signer_ecdsa_der_verifies),
    KT_CASE(test_pkcs11_signer_ed25519_verifies),
    KT_CASE(test_pkcs11_signer_rsa_pss_verifies),
    KT_CASE(test_pkcs11_signer_sign_digest_matches_message),
    KT_CASE(test_pkcs11_signer_wrong_pin_eauth),
    KT_CASE(test_pkcs11_signer_pin_file_readable_by_others_eperm),
    KT_CASE(test_pkcs11_signer_missing_key_enotfound),
    KT_CASE(test_pkcs11_signer_bad_module_econfig),
    KT_CASE(test_pkcs11_signer_unknown_token_enotfound),
    KT_CASE(test_pkcs11_signer_env_fallbacks_used),
    KT_CASE(test_pkcs11_signer_20_threads_all_verify),
    KT_CASE(test_pkcs11_password_rsa_oaep_unwrap_roundtrip),
    KT_CASE(test_pkcs11_password_tampered_blob_ecorrupt),
    KT_CASE(test_pkcs11_password_aes_gcm_unwrap_roundtrip),
    KT_CASE(test_pkcs11_cli_keygen_then_list_shows_key),
    KT_CASE(test_pkcs11_cli_errors_tool_exit_codes),
    KT_CASE(test_pkcs11_cli_wrap_then_provider_unwraps),
};

int
main(int argc, char **argv)
{
    if (kc_init() != 0 || setup_softhsm() != 0) {
        fprintf(stderr, "0 passed, 1 failed\n");
        return 1;
    }
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
