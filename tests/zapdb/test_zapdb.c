/* SPDX-License-Identifier: Apache-2.0 */
/* libzapdb tests: API round trips, transactions, iteration, key handling
 * and negative cases. Heavier tamper, crash, concurrency and backup tests
 * live in test_zapdb_ops.c. */
#include "kc.h"
#include "zap_int.h"
#include "zapdb/zapdb.h"
#include "zt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define B(s) (const uint8_t *)(s), strlen(s)
#define P(s) (s), strlen(s)

static void
test_strerror_every_code_has_message(void)
{
    for (int e = 0; e < ZAP_ERR_COUNT; e++) {
        const char *m = zap_strerror((zap_err)e);
        CHECK(m && *m && strcmp(m, "unknown error") != 0);
    }
    CHECK(strcmp(zap_strerror(ZAP_EAUTH), "wrong password or key") == 0);
    CHECK(strcmp(zap_strerror((zap_err)999), "unknown error") == 0);
    CHECK(strcmp(zap_strerror((zap_err)-1), "unknown error") == 0);
}

/* ---- AEAD: known answers from draft-irtf-cfrg-xchacha-03 ------------- */

static uint8_t *
vec_hex(json_t *obj, const char *field, size_t *len)
{
    const char *hex = json_string_value(json_object_get(obj, field));
    uint8_t *out;

    REQUIRE(hex);
    out = kt_unhex(hex, len);
    REQUIRE(out);
    return out;
}

static json_t *
xchacha_vectors(void)
{
    char path[1024];
    json_error_t jerr;
    json_t *root;

    snprintf(path, sizeof path,
             "%s/xchacha/xchacha20_poly1305_draft-irtf-cfrg-xchacha-03.json",
             kt_vectors_dir());
    root = json_load_file(path, 0, &jerr);
    REQUIRE(root);
    return root;
}

static void
test_aead_hchacha20_draft_vector_matches(void)
{
    json_t *root = xchacha_vectors();
    json_t *tc = json_array_get(json_object_get(root, "hchacha20"), 0);
    size_t kl, nl, sl;
    uint8_t *key = vec_hex(tc, "key", &kl), *nonce = vec_hex(tc, "nonce", &nl),
            *want = vec_hex(tc, "subkey", &sl), out[32];

    REQUIRE(kl == 32 && nl == 16 && sl == 32);
    REQUIRE(crypto_core_hchacha20(out, nonce, key, NULL) == 0);
    CHECK_MEM(out, want, 32);
    free(key);
    free(nonce);
    free(want);
    json_decref(root);
}

/* The record AEAD (associated data in parts) against the published
 * AEAD_XChaCha20_Poly1305 example, split at every AD position. */
static void
test_aead_xchacha_draft_vector_matches(void)
{
    json_t *root = xchacha_vectors();
    json_t *tests = json_object_get(
        json_object_get(root, "aead_xchacha20_poly1305"), "tests");
    json_t *tc = json_array_get(tests, 0);
    size_t kl, nl, al, pl, cl, tl;
    uint8_t *key = vec_hex(tc, "key", &kl), *nonce = vec_hex(tc, "nonce", &nl),
            *aad = vec_hex(tc, "aad", &al), *pt = vec_hex(tc, "plaintext", &pl),
            *ct = vec_hex(tc, "ciphertext", &cl),
            *tag = vec_hex(tc, "tag", &tl);
    uint8_t out[256], back[256];

    REQUIRE(kl == 32 && nl == 24 && tl == 16 && cl == pl && pl < 200);
    for (size_t split = 0; split <= al; split++) {
        zap_part ad[2] = {{aad, split}, {aad + split, al - split}};
        memset(out, 0, sizeof out);
        zap_aead_seal(out, pt, pl, ad, 2, nonce, key);
        CHECK_MEM(out, ct, cl);
        CHECK_MEM(out + cl, tag, 16);
        memset(back, 0, sizeof back);
        CHECK_EQ(zap_aead_open(back, out, cl + 16, ad, 2, nonce, key), 0);
        CHECK_MEM(back, pt, pl);
    }
    /* libsodium agrees with the same vector (same construction). */
    unsigned long long olen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out, &olen, pt, pl, aad, al,
                                               NULL, nonce, key);
    CHECK(olen == cl + 16 && memcmp(out, ct, cl) == 0 &&
          memcmp(out + cl, tag, 16) == 0);
    free(key);
    free(nonce);
    free(aad);
    free(pt);
    free(ct);
    free(tag);
    json_decref(root);
}

/* Lengths around the keystream head (192 and 448 message bytes from the
 * first ChaCha20 call) and the one-shot Poly1305 staging (512 bytes of
 * AD, C and padding) give libsodium's own AEAD output, and open back. */
static void
test_aead_matches_libsodium_across_lengths(void)
{
    static const size_t mlens[] = {0,   1,   15,  16,  63,  64,   100, 191,
                                   192, 193, 255, 256, 447, 448,  449, 480,
                                   495, 496, 497, 512, 700, 1000, 4099};
    static const size_t adlens[] = {0, 1, 17, 35, 107, 400, 600};
    uint8_t key[32], nonce[24], ad[600], m[4099], c[4099 + 16], ref[4099 + 16],
        back[4099];
    unsigned long long rlen;

    kc_random(key, sizeof key);
    kc_random(nonce, sizeof nonce);
    kc_random(ad, sizeof ad);
    kc_random(m, sizeof m);
    for (size_t i = 0; i < sizeof mlens / sizeof mlens[0]; i++)
        for (size_t j = 0; j < sizeof adlens / sizeof adlens[0]; j++) {
            size_t ml = mlens[i], al = adlens[j], h = al / 3;
            size_t mid = al > h ? 1 : 0;
            zap_part parts[3] = {
                {ad, h}, {ad + h, mid}, {ad + h + mid, al - h - mid}};
            crypto_aead_xchacha20poly1305_ietf_encrypt(ref, &rlen, m, ml, ad,
                                                       al, NULL, nonce, key);
            zap_aead_seal(c, m, ml, parts, 3, nonce, key);
            CHECK(rlen == ml + 16 && memcmp(c, ref, ml + 16) == 0);
            CHECK_EQ(zap_aead_open(back, c, ml + 16, parts, 3, nonce, key), 0);
            CHECK(memcmp(back, m, ml) == 0);
            c[ml] ^= 1;
            CHECK_EQ(zap_aead_open(back, c, ml + 16, parts, 3, nonce, key), -1);
        }
}

static void
test_aead_tampered_or_truncated_rejected(void)
{
    uint8_t key[32], nonce[24], m[100], c[116], back[100];
    zap_part ad[2] = {{(const uint8_t *)"bucket", 6},
                      {(const uint8_t *)"K", 1}};
    zap_part ad_other[2] = {{(const uint8_t *)"bucket", 6},
                            {(const uint8_t *)"V", 1}};

    kc_random(key, sizeof key);
    kc_random(nonce, sizeof nonce);
    kc_random(m, sizeof m);
    zap_aead_seal(c, m, sizeof m, ad, 2, nonce, key);
    CHECK_EQ(zap_aead_open(back, c, sizeof c, ad, 2, nonce, key), 0);
    CHECK_MEM(back, m, sizeof m);
    for (size_t i = 0; i < sizeof c; i += 7) {
        c[i] ^= 0x04;
        memset(back, 0xee, sizeof back);
        CHECK_EQ(zap_aead_open(back, c, sizeof c, ad, 2, nonce, key), -1);
        CHECK(back[0] == 0xee); /* nothing written on failure */
        c[i] ^= 0x04;
    }
    CHECK_EQ(zap_aead_open(back, c, sizeof c, ad_other, 2, nonce, key), -1);
    CHECK_EQ(zap_aead_open(back, c, sizeof c, ad, 1, nonce, key), -1);
    CHECK_EQ(zap_aead_open(back, c, sizeof c - 1, ad, 2, nonce, key), -1);
    CHECK_EQ(zap_aead_open(back, c, 15, ad, 2, nonce, key), -1);
    key[0] ^= 1;
    CHECK_EQ(zap_aead_open(back, c, sizeof c, ad, 2, nonce, key), -1);
    key[0] ^= 1;
    nonce[23] ^= 1;
    CHECK_EQ(zap_aead_open(back, c, sizeof c, ad, 2, nonce, key), -1);
    /* Empty message: the tag alone authenticates the AD. */
    zap_aead_seal(c, NULL, 0, ad, 2, nonce, key);
    CHECK_EQ(zap_aead_open(back, c, 16, ad, 2, nonce, key), 0);
    CHECK_EQ(zap_aead_open(back, c, 16, ad_other, 2, nonce, key), -1);
}

static void
test_open_missing_store_without_create_enostore(void)
{
    const char *dir = kt_path(kt_tmpdir(), "nostore");
    zap_opts o = zt_opts(0);
    zap_db *db = (zap_db *)1;

    CHECK_EQ(zap_open(dir, &o, "pw", 2, &db), ZAP_ENOSTORE);
    CHECK(db == NULL);
    /* An existing but empty directory is not a store either. */
    CHECK_EQ(zap_open(kt_tmpdir(), &o, "pw", 2, &db), ZAP_ENOSTORE);
    o.flags = ZAP_RDONLY | ZAP_CREATE;
    CHECK_EQ(zap_open(dir, &o, "pw", 2, &db), ZAP_ENOSTORE);
}

static void
test_open_bad_arguments_einval(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;

    CHECK_EQ(zap_open(dir, &o, "", 0, &db), ZAP_EINVAL);
    CHECK_EQ(zap_open(dir, &o, NULL, 3, &db), ZAP_EINVAL);
    CHECK_EQ(zap_open(NULL, &o, "pw", 2, &db), ZAP_EINVAL);
    CHECK_EQ(zap_open(dir, &o, "pw", 2, NULL), ZAP_EINVAL);
    CHECK_EQ(zap_open_key(dir, &o, NULL, &db), ZAP_EINVAL);
    o.kdf_opslimit = 1000000;
    CHECK_EQ(zap_open(dir, &o, "pw", 2, &db), ZAP_EINVAL);
    o = zt_opts(ZAP_CREATE);
    o.sync = (zap_sync_mode)42;
    CHECK_EQ(zap_open(dir, &o, "pw", 2, &db), ZAP_EINVAL);
    zap_close(NULL); /* no-op */
    zap_free(NULL, 10);
}

static void
test_open_excl_existing_store_eexist(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_opts o = zt_opts(ZAP_CREATE | ZAP_EXCL);
    zap_db *db = NULL;

    REQUIRE(zap_open(dir, &o, "pw", 2, &db) == ZAP_OK);
    zap_close(db);
    db = NULL;
    CHECK_EQ(zap_open(dir, &o, "pw", 2, &db), ZAP_EEXIST);
    CHECK(db == NULL);
    o.flags = ZAP_CREATE; /* without EXCL it just opens */
    CHECK_EQ(zap_open(dir, &o, "pw", 2, &db), ZAP_OK);
    zap_close(db);
}

static void
test_put_get_roundtrip_returns_value(void)
{
    zap_db *db = zt_create(NULL);
    uint8_t *v = NULL;
    size_t n = 0;
    bool ex = false;

    REQUIRE(zap_put(db, "users", B("alice"), B("secret-1")) == ZAP_OK);
    REQUIRE(zap_get(db, "users", B("alice"), &v, &n) == ZAP_OK);
    CHECK_EQ(n, 8);
    CHECK_MEM(v, "secret-1", 8);
    zap_free(v, n);
    /* Replace. */
    REQUIRE(zap_put(db, "users", B("alice"), B("other")) == ZAP_OK);
    REQUIRE(zap_get(db, "users", B("alice"), &v, &n) == ZAP_OK);
    CHECK(n == 5 && memcmp(v, "other", 5) == 0);
    zap_free(v, n);
    CHECK_EQ(zap_exists(db, "users", B("alice"), &ex), ZAP_OK);
    CHECK(ex);
    CHECK_EQ(zap_exists(db, "users", B("bob"), &ex), ZAP_OK);
    CHECK(!ex);
    CHECK_EQ(zap_exists(db, "nobucket", B("alice"), &ex), ZAP_OK);
    CHECK(!ex);
    /* The same key in another bucket is another record. */
    CHECK_EQ(zap_get(db, "admins", B("alice"), &v, &n), ZAP_ENOTFOUND);
    CHECK(v == NULL && n == 0);
    CHECK_EQ(zap_del(db, "users", B("alice")), ZAP_OK);
    CHECK_EQ(zap_get(db, "users", B("alice"), &v, &n), ZAP_ENOTFOUND);
    CHECK_EQ(zap_del(db, "users", B("alice")), ZAP_ENOTFOUND);
    zap_close(db);
}

static void
test_put_persists_across_reopen(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    uint8_t *v = NULL;
    size_t n = 0;

    REQUIRE(zap_put(db, "b", B("k1"), B("v1")) == ZAP_OK);
    zap_close(db);
    db = zt_reopen(dir, "test-password");
    REQUIRE(db);
    REQUIRE(zap_get(db, "b", B("k1"), &v, &n) == ZAP_OK);
    CHECK(n == 2 && memcmp(v, "v1", 2) == 0);
    zap_free(v, n);
    zap_close(db);
}

static void
test_put_empty_value_roundtrips(void)
{
    zap_db *db = zt_create(NULL);
    uint8_t *v = NULL;
    size_t n = 99;

    REQUIRE(zap_put(db, "b", B("empty"), NULL, 0) == ZAP_OK);
    REQUIRE(zap_get(db, "b", B("empty"), &v, &n) == ZAP_OK);
    CHECK(v != NULL);
    CHECK_EQ(n, 0);
    zap_free(v, n);
    REQUIRE(zap_put(db, "b", B("empty2"), (const uint8_t *)"", 0) == ZAP_OK);
    CHECK_EQ(zap_get(db, "b", B("empty2"), &v, &n), ZAP_OK);
    CHECK_EQ(n, 0);
    zap_free(v, n);
    zap_close(db);
}

static void
test_put_bad_key_or_bucket_rejected(void)
{
    zap_db *db = zt_create(NULL);
    char longb[ZAP_MAX_BUCKET + 2];
    uint8_t *big, *v = NULL;
    size_t n;
    bool ex;

    memset(longb, 'b', sizeof longb - 1);
    longb[sizeof longb - 1] = '\0';
    CHECK_EQ(zap_put(db, "b", (const uint8_t *)"", 0, B("v")), ZAP_EINVAL);
    CHECK_EQ(zap_put(db, "b", NULL, 3, B("v")), ZAP_EINVAL);
    CHECK_EQ(zap_put(db, "", B("k"), B("v")), ZAP_EINVAL);
    CHECK_EQ(zap_put(db, NULL, B("k"), B("v")), ZAP_EINVAL);
    CHECK_EQ(zap_put(db, longb, B("k"), B("v")), ZAP_EINVAL);
    longb[ZAP_MAX_BUCKET] = '\0'; /* exactly the maximum is fine */
    CHECK_EQ(zap_put(db, longb, B("k"), B("v")), ZAP_OK);
    CHECK_EQ(zap_put(db, "b", B("k"), NULL, 5), ZAP_EINVAL);
    CHECK_EQ(zap_get(db, "b", (const uint8_t *)"", 0, &v, &n), ZAP_EINVAL);
    CHECK_EQ(zap_exists(db, "b", NULL, 0, &ex), ZAP_EINVAL);
    CHECK_EQ(zap_del(db, "b", NULL, 0), ZAP_EINVAL);
    big = calloc(1, ZAP_MAX_KEY + 1);
    REQUIRE(big);
    CHECK_EQ(zap_put(db, "b", big, ZAP_MAX_KEY + 1, B("v")), ZAP_ETOOBIG);
    CHECK_EQ(zap_put(db, "b", B("k"), big, (size_t)ZAP_MAX_VALUE + 1),
             ZAP_ETOOBIG);
    free(big);
    CHECK_EQ(zap_get(NULL, "b", B("k"), &v, &n), ZAP_EINVAL);
    zap_close(db);
}

static void
test_binary_keys_with_nul_are_distinct(void)
{
    zap_db *db = zt_create(NULL);
    const uint8_t k1[] = {0, 0, 0}, k2[] = {0, 0}, k3[] = {0, 0, 1},
                  v1[] = {1, 0, 2}, v2[] = {9};
    uint8_t *v = NULL;
    size_t n = 0;

    REQUIRE(zap_put(db, "bin", k1, 3, v1, 3) == ZAP_OK);
    REQUIRE(zap_put(db, "bin", k2, 2, v2, 1) == ZAP_OK);
    CHECK_EQ(zap_get(db, "bin", k3, 3, &v, &n), ZAP_ENOTFOUND);
    REQUIRE(zap_get(db, "bin", k1, 3, &v, &n) == ZAP_OK);
    CHECK(n == 3 && memcmp(v, v1, 3) == 0);
    zap_free(v, n);
    REQUIRE(zap_get(db, "bin", k2, 2, &v, &n) == ZAP_OK);
    CHECK(n == 1 && v[0] == 9);
    zap_free(v, n);
    zap_close(db);
}

static void
test_max_size_key_roundtrips(void)
{
    zap_db *db = zt_create(NULL);
    uint8_t *key = malloc(ZAP_MAX_KEY), *v = NULL;
    const uint8_t *ik;
    size_t n = 0, ikn = 0;
    zap_txn *t = NULL;
    zap_iter *it = NULL;

    REQUIRE(key);
    for (size_t i = 0; i < ZAP_MAX_KEY; i++)
        key[i] = (uint8_t)(i * 7);
    REQUIRE(zap_put(db, "big", key, ZAP_MAX_KEY, B("val")) == ZAP_OK);
    REQUIRE(zap_get(db, "big", key, ZAP_MAX_KEY, &v, &n) == ZAP_OK);
    CHECK(n == 3 && memcmp(v, "val", 3) == 0);
    zap_free(v, n);
    /* One byte different is another key. */
    key[ZAP_MAX_KEY - 1] ^= 1;
    CHECK_EQ(zap_get(db, "big", key, ZAP_MAX_KEY, &v, &n), ZAP_ENOTFOUND);
    key[ZAP_MAX_KEY - 1] ^= 1;
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    REQUIRE(zap_iter_open(t, "big", NULL, 0, NULL, 0, &it) == ZAP_OK);
    REQUIRE(zap_iter_next(it, &ik, &ikn, NULL, NULL) == ZAP_OK);
    CHECK(ikn == ZAP_MAX_KEY && memcmp(ik, key, ZAP_MAX_KEY) == 0);
    zap_iter_close(it);
    zap_txn_abort(t);
    free(key);
    zap_close(db);
}

static void
test_max_size_value_roundtrips(void)
{
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;
    size_t len = ZAP_MAX_VALUE;
    uint8_t *val = malloc(len), *v = NULL;
    size_t n = 0;

    REQUIRE(val);
    o.map_size = (size_t)1 << 30;
    REQUIRE(zap_open(kt_path(kt_tmpdir(), "s"), &o, "pw", 2, &db) == ZAP_OK);
    for (size_t i = 0; i < len; i += 4096)
        val[i] = (uint8_t)(i >> 12);
    val[len - 1] = 0x5a;
    REQUIRE(zap_put(db, "b", B("huge"), val, len) == ZAP_OK);
    REQUIRE(zap_get(db, "b", B("huge"), &v, &n) == ZAP_OK);
    CHECK_EQ(n, len);
    CHECK(n == len && memcmp(v, val, len) == 0);
    zap_free(v, n);
    free(val);
    zap_close(db);
}

static void
test_buckets_create_list_drop(void)
{
    zap_db *db = zt_create(NULL);
    char **names = NULL;
    size_t count = 0;
    uint64_t c = 0;
    zap_txn *t = NULL;

    CHECK_EQ(zap_bucket_create(db, "zeta"), ZAP_OK);
    CHECK_EQ(zap_bucket_create(db, "zeta"), ZAP_EEXIST);
    CHECK_EQ(zap_bucket_create(db, ""), ZAP_EINVAL);
    REQUIRE(zap_put(db, "alpha", B("k1"), B("v")) == ZAP_OK);
    REQUIRE(zap_put(db, "alpha", B("k2"), B("v")) == ZAP_OK);
    REQUIRE(zap_put(db, "Mid", B("k"), B("v")) == ZAP_OK);
    REQUIRE(zap_bucket_list(db, &names, &count) == ZAP_OK);
    REQUIRE(count == 3);
    CHECK(strcmp(names[0], "Mid") == 0); /* bytewise: 'M' < 'a' */
    CHECK(strcmp(names[1], "alpha") == 0);
    CHECK(strcmp(names[2], "zeta") == 0);
    zap_list_free(names, count);
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    CHECK_EQ(zap_txn_count(t, "zeta", &c), ZAP_OK);
    CHECK_EQ(c, 0);
    CHECK_EQ(zap_txn_count(t, "alpha", &c), ZAP_OK);
    CHECK_EQ(c, 2);
    CHECK_EQ(zap_txn_count(t, "nope", &c), ZAP_ENOTFOUND);
    zap_txn_abort(t);
    CHECK_EQ(zap_bucket_drop(db, "alpha"), ZAP_OK);
    CHECK_EQ(zap_bucket_drop(db, "alpha"), ZAP_ENOTFOUND);
    bool ex = true;
    CHECK_EQ(zap_exists(db, "alpha", B("k1"), &ex), ZAP_OK);
    CHECK(!ex);
    REQUIRE(zap_bucket_list(db, &names, &count) == ZAP_OK);
    CHECK_EQ(count, 2);
    zap_list_free(names, count);
    /* Dropping does not disturb a neighbour bucket's records. */
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    CHECK_EQ(zap_txn_count(t, "Mid", &c), ZAP_OK);
    CHECK_EQ(c, 1);
    zap_txn_abort(t);
    zap_close(db);
}

static void
test_many_buckets_are_isolated(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;
    char bucket[32], key[32], val[32];
    char **names = NULL;
    size_t count = 0;
    uint64_t c = 0;

    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    for (int b = 0; b < 100; b++)
        for (int k = 0; k <= b % 5; k++) {
            snprintf(bucket, sizeof bucket, "bucket-%03d", b);
            snprintf(key, sizeof key, "key-%d", k);
            snprintf(val, sizeof val, "%d/%d", b, k);
            REQUIRE(zap_txn_put(t, bucket, B(key), B(val)) == ZAP_OK);
        }
    REQUIRE(zap_txn_commit(t) == ZAP_OK);
    REQUIRE(zap_bucket_list(db, &names, &count) == ZAP_OK);
    CHECK_EQ(count, 100);
    for (size_t i = 0; i < count; i++) {
        snprintf(bucket, sizeof bucket, "bucket-%03zu", i);
        CHECK(strcmp(names[i], bucket) == 0);
    }
    zap_list_free(names, count);
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    for (int b = 0; b < 100; b++) {
        snprintf(bucket, sizeof bucket, "bucket-%03d", b);
        CHECK_EQ(zap_txn_count(t, bucket, &c), ZAP_OK);
        CHECK_EQ(c, (uint64_t)(b % 5 + 1));
        uint8_t *v = NULL;
        size_t n = 0;
        snprintf(val, sizeof val, "%d/%d", b, 0);
        REQUIRE(zap_txn_get(t, bucket, B("key-0"), &v, &n) == ZAP_OK);
        CHECK(n == strlen(val) && memcmp(v, val, n) == 0);
        zap_free(v, n);
    }
    zap_txn_abort(t);
    zap_close(db);
}

static void
test_txn_abort_leaves_nothing(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    char **names = NULL;
    size_t count = 9;

    REQUIRE(zap_put(db, "keep", B("a"), B("1")) == ZAP_OK);
    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    REQUIRE(zap_txn_put(t, "keep", B("a"), B("2")) == ZAP_OK);
    REQUIRE(zap_txn_put(t, "newbucket", B("b"), B("3")) == ZAP_OK);
    REQUIRE(zap_txn_del(t, "keep", B("a")) == ZAP_OK);
    /* Inside the transaction its own writes are visible. */
    CHECK_EQ(zap_txn_get(t, "newbucket", B("b"), &v, &n), ZAP_OK);
    zap_free(v, n);
    CHECK_EQ(zap_txn_get(t, "keep", B("a"), &v, &n), ZAP_ENOTFOUND);
    zap_txn_abort(t);
    REQUIRE(zap_get(db, "keep", B("a"), &v, &n) == ZAP_OK);
    CHECK(n == 1 && v[0] == '1');
    zap_free(v, n);
    CHECK_EQ(zap_get(db, "newbucket", B("b"), &v, &n), ZAP_ENOTFOUND);
    REQUIRE(zap_bucket_list(db, &names, &count) == ZAP_OK);
    CHECK_EQ(count, 1);
    zap_list_free(names, count);
    zap_txn_abort(NULL);
    zap_close(db);
}

static void
test_txn_commit_applies_all_buckets(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;
    uint8_t *v = NULL;
    size_t n = 0;

    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    for (int i = 0; i < 3; i++) {
        char b[8];
        snprintf(b, sizeof b, "b%d", i);
        REQUIRE(zap_txn_put(t, b, B("k"), B(b)) == ZAP_OK);
    }
    REQUIRE(zap_txn_commit(t) == ZAP_OK);
    for (int i = 0; i < 3; i++) {
        char b[8];
        snprintf(b, sizeof b, "b%d", i);
        REQUIRE(zap_get(db, b, B("k"), &v, &n) == ZAP_OK);
        CHECK(n == strlen(b) && memcmp(v, b, n) == 0);
        zap_free(v, n);
    }
    zap_close(db);
}

static void
test_read_txn_write_calls_erdonly(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;

    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    CHECK_EQ(zap_txn_put(t, "b", B("k"), B("v")), ZAP_ERDONLY);
    CHECK_EQ(zap_txn_del(t, "b", B("k")), ZAP_ERDONLY);
    CHECK_EQ(zap_txn_commit(t), ZAP_OK);
    CHECK_EQ(zap_txn_begin(db, 0x80, &t), ZAP_EINVAL);
    zap_close(db);
}

static void
test_rdonly_store_refuses_writes(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    zap_opts o = zt_opts(ZAP_RDONLY);
    zap_txn *t = NULL;
    uint8_t *v = NULL;
    size_t n = 0;

    REQUIRE(zap_put(db, "b", B("k"), B("v")) == ZAP_OK);
    zap_close(db);
    db = NULL;
    REQUIRE(zap_open(dir, &o, P("test-password"), &db) == ZAP_OK);
    CHECK_EQ(zap_put(db, "b", B("k2"), B("v")), ZAP_ERDONLY);
    CHECK_EQ(zap_txn_begin(db, 0, &t), ZAP_ERDONLY);
    CHECK_EQ(zap_bucket_create(db, "x"), ZAP_ERDONLY);
    CHECK_EQ(zap_rekey(db, NULL, NULL), ZAP_ERDONLY);
    CHECK_EQ(zap_change_password(db, P("new"), NULL), ZAP_ERDONLY);
    CHECK_EQ(zap_get(db, "b", B("k"), &v, &n), ZAP_OK);
    zap_free(v, n);
    zap_close(db);
}

static void
test_snapshot_does_not_see_later_commit(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *r = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    uint64_t c = 0;

    REQUIRE(zap_put(db, "b", B("k"), B("old")) == ZAP_OK);
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &r) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("k"), B("new")) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("k2"), B("x")) == ZAP_OK);
    REQUIRE(zap_txn_get(r, "b", B("k"), &v, &n) == ZAP_OK);
    CHECK(n == 3 && memcmp(v, "old", 3) == 0);
    zap_free(v, n);
    CHECK_EQ(zap_txn_get(r, "b", B("k2"), &v, &n), ZAP_ENOTFOUND);
    CHECK_EQ(zap_txn_count(r, "b", &c), ZAP_OK);
    CHECK_EQ(c, 1);
    zap_txn_abort(r);
    REQUIRE(zap_get(db, "b", B("k"), &v, &n) == ZAP_OK);
    CHECK(n == 3 && memcmp(v, "new", 3) == 0);
    zap_free(v, n);
    zap_close(db);
}

/* Iteration: keys come back sorted bytewise (shorter prefix first). */
static void
test_iter_sorted_prefix_and_start(void)
{
    static const char *keys[] = {"b",  "a", "ab",   "abc", "b\x01",
                                 "ac", "c", "\xff", "aa"};
    static const char *sorted[] = {"a", "aa",    "ab", "abc", "ac",
                                   "b", "b\x01", "c",  "\xff"};
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;
    zap_iter *it = NULL;
    const uint8_t *k, *v;
    size_t kn, vn, i = 0;
    zap_err rc;

    for (size_t j = 0; j < 9; j++)
        REQUIRE(zap_put(db, "it", B(keys[j]), B(keys[j])) == ZAP_OK);
    REQUIRE(zap_put(db, "other", B("aa"), B("no")) == ZAP_OK);
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    REQUIRE(zap_iter_open(t, "it", NULL, 0, NULL, 0, &it) == ZAP_OK);
    while ((rc = zap_iter_next(it, &k, &kn, &v, &vn)) == ZAP_OK && i < 9) {
        CHECK(kn == strlen(sorted[i]) && memcmp(k, sorted[i], kn) == 0);
        CHECK(vn == kn && memcmp(v, k, kn) == 0);
        i++;
    }
    CHECK_EQ(rc, ZAP_ENOTFOUND);
    CHECK_EQ(i, 9);
    CHECK_EQ(zap_iter_next(it, &k, &kn, NULL, NULL), ZAP_ENOTFOUND);
    zap_iter_close(it);
    /* Prefix "a": a aa ab abc ac. */
    REQUIRE(zap_iter_open(t, "it", B("a"), NULL, 0, &it) == ZAP_OK);
    for (i = 0; zap_iter_next(it, &k, &kn, NULL, NULL) == ZAP_OK; i++)
        CHECK(i < 5 && kn == strlen(sorted[i]) &&
              memcmp(k, sorted[i], kn) == 0);
    CHECK_EQ(i, 5);
    zap_iter_close(it);
    /* Prefix "a", start "ab": ab abc ac. */
    REQUIRE(zap_iter_open(t, "it", B("a"), B("ab"), &it) == ZAP_OK);
    for (i = 2; zap_iter_next(it, &k, &kn, &v, &vn) == ZAP_OK; i++)
        CHECK(i < 5 && kn == strlen(sorted[i]) &&
              memcmp(k, sorted[i], kn) == 0);
    CHECK_EQ(i, 5);
    zap_iter_close(it);
    /* Start between keys: "b\x00" -> b\x01 c \xff. */
    REQUIRE(zap_iter_open(t, "it", NULL, 0, (const uint8_t *)"b\0", 2, &it) ==
            ZAP_OK);
    for (i = 6; zap_iter_next(it, &k, &kn, NULL, NULL) == ZAP_OK; i++)
        CHECK(i < 9 && kn == strlen(sorted[i]) &&
              memcmp(k, sorted[i], kn) == 0);
    CHECK_EQ(i, 9);
    zap_iter_close(it);
    /* Prefix with no match, missing bucket. */
    REQUIRE(zap_iter_open(t, "it", B("zz"), NULL, 0, &it) == ZAP_OK);
    CHECK_EQ(zap_iter_next(it, &k, &kn, NULL, NULL), ZAP_ENOTFOUND);
    zap_iter_close(it);
    CHECK_EQ(zap_iter_open(t, "missing", NULL, 0, NULL, 0, &it), ZAP_ENOTFOUND);
    CHECK_EQ(zap_iter_open(t, "it", NULL, 3, NULL, 0, &it), ZAP_EINVAL);
    zap_txn_abort(t);
    zap_iter_close(NULL);
    zap_close(db);
}

static void
test_wrong_password_eauth_store_unchanged(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    zap_opts o = zt_opts(ZAP_CREATE);
    uint8_t *before, *after;
    size_t bn, an;
    uint8_t *v = NULL;
    size_t n = 0;

    REQUIRE(zap_put(db, "b", B("k"), B("v")) == ZAP_OK);
    zap_close(db);
    before = kt_read_all(kt_path(dir, "data.mdb"), &bn);
    REQUIRE(before);
    db = NULL;
    CHECK_EQ(zap_open(dir, &o, P("test-passworD"), &db), ZAP_EAUTH);
    CHECK(db == NULL);
    CHECK_EQ(zap_open(dir, &o, P("test-password "), &db), ZAP_EAUTH);
    CHECK_EQ(zap_open_key(dir, &o, zt_raw_key(1), &db), ZAP_EAUTH);
    after = kt_read_all(kt_path(dir, "data.mdb"), &an);
    REQUIRE(after);
    CHECK(bn == an && memcmp(before, after, bn) == 0);
    free(before);
    free(after);
    db = zt_reopen(dir, "test-password");
    REQUIRE(db);
    REQUIRE(zap_get(db, "b", B("k"), &v, &n) == ZAP_OK);
    zap_free(v, n);
    zap_close(db);
}

static void
test_raw_key_store_roundtrip_and_wrong_key(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    zap_stats st;

    REQUIRE(zap_open_key(dir, &o, zt_raw_key(7), &db) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("k"), B("raw")) == ZAP_OK);
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK(strcmp(st.kdf, "raw") == 0);
    zap_close(db);
    db = NULL;
    CHECK_EQ(zap_open_key(dir, &o, zt_raw_key(8), &db), ZAP_EAUTH);
    CHECK_EQ(zap_open(dir, &o, P("password"), &db), ZAP_EAUTH);
    REQUIRE(zap_open_key(dir, &o, zt_raw_key(7), &db) == ZAP_OK);
    REQUIRE(zap_get(db, "b", B("k"), &v, &n) == ZAP_OK);
    CHECK(n == 3 && memcmp(v, "raw", 3) == 0);
    zap_free(v, n);
    zap_close(db);
}

static void
test_default_kdf_cost_is_argon2id_moderate(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_opts o;
    zap_db *db = NULL;
    zap_stats st;

    zap_opts_default(&o);
    CHECK_EQ(o.kdf_opslimit, 3);
    CHECK_EQ(o.kdf_memlimit, 64u * 1024 * 1024);
    CHECK_EQ(o.sync, ZAP_SYNC_FULL);
    o.flags = ZAP_CREATE;
    o.map_size = 64u << 20;
    o.kdf_opslimit = 0; /* 0 also means the default */
    o.kdf_memlimit = 0;
    REQUIRE(zap_open(dir, &o, P("pw"), &db) == ZAP_OK);
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK(strcmp(st.kdf, "argon2id") == 0);
    CHECK_EQ(st.kdf_opslimit, 3);
    CHECK_EQ(st.kdf_memlimit, 64u * 1024 * 1024);
    zap_close(db);
}

static void
test_stats_counts_records_and_buckets(void)
{
    zap_db *db = zt_create(NULL);
    zap_stats st;

    REQUIRE(zap_put(db, "a", B("1"), B("x")) == ZAP_OK);
    REQUIRE(zap_put(db, "a", B("2"), B("x")) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("1"), B("x")) == ZAP_OK);
    REQUIRE(zap_bucket_create(db, "c") == ZAP_OK);
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK_EQ(st.records, 3);
    CHECK_EQ(st.buckets, 3);
    CHECK_EQ(st.dek_generation, 1);
    CHECK_EQ(st.format_version, 2);
    CHECK(st.page_size >= 4096);
    CHECK(st.file_bytes >= st.page_size * 2);
    CHECK_EQ(st.map_bytes, 256u << 20);
    CHECK(st.tree_depth >= 1);
    CHECK(strcmp(st.kdf, "argon2id") == 0);
    CHECK_EQ(st.kdf_opslimit, 1);
    CHECK_EQ(st.kdf_memlimit, 8192);
    CHECK_EQ(zap_get_stats(db, NULL), ZAP_EINVAL);
    zap_close(db);
}

/* Every sync mode stores durably once zap_sync() returns. */
static void
test_sync_modes_roundtrip_after_reopen(void)
{
    const zap_sync_mode modes[] = {ZAP_SYNC_FULL, ZAP_SYNC_META, ZAP_SYNC_NONE};

    for (size_t i = 0; i < KT_COUNT(modes); i++) {
        const char *dir = kt_path(kt_tmpdir(), "s");
        zap_opts o = zt_opts(ZAP_CREATE);
        zap_db *db = NULL;
        uint8_t *v = NULL;
        size_t n = 0;

        o.sync = modes[i];
        REQUIRE(zap_open(dir, &o, P(ZT_PASSWORD), &db) == ZAP_OK);
        REQUIRE(zap_put(db, "b", B("k"), B("durable")) == ZAP_OK);
        CHECK_EQ(zap_sync(db), ZAP_OK);
        zap_close(db);
        db = zt_reopen(dir, ZT_PASSWORD);
        REQUIRE(db);
        REQUIRE(zap_get(db, "b", B("k"), &v, &n) == ZAP_OK);
        CHECK(n == 7 && memcmp(v, "durable", 7) == 0);
        zap_free(v, n);
        zap_close(db);
    }
    CHECK_EQ(zap_sync(NULL), ZAP_EINVAL);
}

/* The transaction-level calls not covered elsewhere. */
static void
test_txn_exists_del_bucket_create_roundtrip(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;
    zap_iter *it = NULL;
    bool ex = false;
    uint64_t c = 9;
    const uint8_t *k = NULL, *v = NULL;
    size_t kn = 0, vn = 0;

    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    CHECK_EQ(zap_txn_bucket_create(t, "fresh"), ZAP_OK);
    CHECK_EQ(zap_txn_bucket_create(t, "fresh"), ZAP_EEXIST);
    CHECK_EQ(zap_txn_bucket_create(t, ""), ZAP_EINVAL);
    CHECK_EQ(zap_txn_count(t, "fresh", &c), ZAP_OK);
    CHECK_EQ(c, 0);
    CHECK_EQ(zap_txn_put(t, "fresh", B("a"), B("1")), ZAP_OK);
    CHECK_EQ(zap_txn_put(t, "fresh", B("b"), B("2")), ZAP_OK);
    CHECK_EQ(zap_txn_exists(t, "fresh", B("a"), &ex), ZAP_OK);
    CHECK(ex);
    CHECK_EQ(zap_txn_del(t, "fresh", B("a")), ZAP_OK);
    CHECK_EQ(zap_txn_del(t, "fresh", B("a")), ZAP_ENOTFOUND);
    CHECK_EQ(zap_txn_exists(t, "fresh", B("a"), &ex), ZAP_OK);
    CHECK(!ex);
    /* A failed call that is not an LMDB failure leaves the txn usable. */
    CHECK_EQ(zap_txn_commit(t), ZAP_OK);
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    CHECK_EQ(zap_txn_bucket_create(t, "other"), ZAP_ERDONLY);
    CHECK_EQ(zap_txn_count(t, "fresh", &c), ZAP_OK);
    CHECK_EQ(c, 1);
    /* Iteration with the value only. */
    REQUIRE(zap_iter_open(t, "fresh", NULL, 0, NULL, 0, &it) == ZAP_OK);
    REQUIRE(zap_iter_next(it, NULL, NULL, &v, &vn) == ZAP_OK);
    CHECK(vn == 1 && v[0] == '2');
    CHECK_EQ(zap_iter_next(it, &k, &kn, &v, &vn), ZAP_ENOTFOUND);
    zap_iter_close(it);
    zap_txn_abort(t);
    CHECK_EQ(zap_txn_commit(NULL), ZAP_EINVAL);
    CHECK_EQ(zap_txn_put(NULL, "b", B("k"), B("v")), ZAP_EINVAL);
    CHECK_EQ(zap_iter_next(NULL, &k, &kn, NULL, NULL), ZAP_EINVAL);
    zap_close(db);
}

/* Deleting inside a write transaction while iterating skips the record. */
static void
test_iter_skips_record_deleted_in_same_txn(void)
{
    zap_db *db = zt_create(NULL);
    zap_txn *t = NULL;
    zap_iter *it = NULL;
    const uint8_t *k, *v;
    size_t kn, vn;
    int seen = 0;

    REQUIRE(zap_put(db, "b", B("k1"), B("1")) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("k2"), B("2")) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("k3"), B("3")) == ZAP_OK);
    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    REQUIRE(zap_iter_open(t, "b", NULL, 0, NULL, 0, &it) == ZAP_OK);
    REQUIRE(zap_txn_del(t, "b", B("k2")) == ZAP_OK);
    while (zap_iter_next(it, &k, &kn, &v, &vn) == ZAP_OK) {
        CHECK(!(kn == 2 && memcmp(k, "k2", 2) == 0));
        CHECK(vn == 1 && v[0] == k[1]);
        seen++;
    }
    CHECK_EQ(seen, 2);
    zap_iter_close(it);
    zap_txn_abort(t);
    zap_close(db);
}

/* ---- slot hash collisions ---------------------------------------------
 * A 128-bit Hk collision cannot be found without K_key; these tests forge
 * its effect with the store's own keys (zap_int.h): a genuine record of one
 * key sealed into the slot of another. */

static void
forge_record(zap_db *db, const char *bucket, const char *key_slot,
             const char *key_held, const char *val)
{
    uint8_t tag[ZAP_BTAG_LEN], rkey[ZAP_RKEY_LEN];
    MDB_val k = {ZAP_RKEY_LEN, rkey}, v;
    zap_txn *t = NULL;
    size_t size;

    REQUIRE(zap_bucket_hash(db, bucket, NULL, tag) == ZAP_OK);
    REQUIRE(zap_key_hash(db, tag, B(key_slot), rkey) == ZAP_OK);
    REQUIRE(zap_rec_size(ZAP_REC_RECORD, strlen(key_held), strlen(val), &size));
    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    v.mv_size = size;
    REQUIRE(mdb_put(t->txn, db->dbi_records, &k, &v, MDB_RESERVE) == 0);
    zap_rec_seal(v.mv_data, ZAP_REC_RECORD, t->wgen, t->wkey, rkey,
                 ZAP_RKEY_LEN, B(key_held), B(val));
    REQUIRE(zap_txn_commit(t) == ZAP_OK);
}

static void
test_key_slot_collision_get_enotfound_put_einternal(void)
{
    zap_db *db = zt_create(NULL);
    zap_verify_report rep;
    uint8_t *v = NULL;
    size_t vn = 0;

    REQUIRE(zap_put(db, "b", B("a"), B("va")) == ZAP_OK);
    forge_record(db, "b", "x", "a", "forged");
    /* get: the slot of "x" holds "a": not found, never "a"'s value. */
    CHECK_EQ(zap_get(db, "b", B("x"), &v, &vn), ZAP_ENOTFOUND);
    CHECK(v == NULL && vn == 0);
    CHECK(strstr(zap_last_error_detail(db), "collision") != NULL);
    /* same length, other key; and a key of another length */
    forge_record(db, "b", "yy", "abc", "forged");
    CHECK_EQ(zap_get(db, "b", B("yy"), &v, &vn), ZAP_ENOTFOUND);
    /* put: refused, nothing written */
    CHECK_EQ(zap_put(db, "b", B("x"), B("new")), ZAP_EINTERNAL);
    CHECK(strstr(zap_last_error_detail(db), "collision") != NULL);
    CHECK_EQ(zap_get(db, "b", B("x"), &v, &vn), ZAP_ENOTFOUND);
    /* del: the other key's record is not deleted */
    CHECK_EQ(zap_del(db, "b", B("x")), ZAP_ENOTFOUND);
    CHECK_EQ(zap_put(db, "b", B("x"), B("new")), ZAP_EINTERNAL);
    /* the real "a" is untouched; verify flags the misplaced records */
    REQUIRE(zap_get(db, "b", B("a"), &v, &vn) == ZAP_OK);
    CHECK(vn == 2 && memcmp(v, "va", 2) == 0);
    zap_free(v, vn);
    CHECK_EQ(zap_verify(db, NULL, NULL, NULL, NULL, &rep), ZAP_ECORRUPT);
    CHECK_EQ(rep.bad, 2);
    zap_close(db);
}

static void
test_key_slot_same_key_overwrite_and_delete_work(void)
{
    zap_db *db = zt_create(NULL);
    uint8_t *v = NULL;
    size_t vn = 0;

    /* A slot holding its own key is replaced as before. */
    REQUIRE(zap_put(db, "b", B("k"), B("one")) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("k"), B("second")) == ZAP_OK);
    REQUIRE(zap_get(db, "b", B("k"), &v, &vn) == ZAP_OK);
    CHECK(vn == 6 && memcmp(v, "second", 6) == 0);
    zap_free(v, vn);
    REQUIRE(zap_del(db, "b", B("k")) == ZAP_OK);
    CHECK_EQ(zap_get(db, "b", B("k"), &v, &vn), ZAP_ENOTFOUND);
    zap_close(db);
}

/* A bucket record at Hb("x") holding another name (forged: a real 64-bit
 * Hb collision would need about 2^32 names) makes every operation on "x"
 * refuse it: nothing is created in, counted from or dropped from it. */
static void
test_bucket_slot_holding_other_name_refused(void)
{
    zap_db *db = zt_create(NULL);
    uint8_t tag[ZAP_BTAG_LEN];
    MDB_val k = {ZAP_HB_LEN, tag}, v;
    zap_txn *t = NULL;
    uint64_t n = 0;
    size_t size;

    REQUIRE(zap_put(db, "x", B("k"), B("v")) == ZAP_OK);
    REQUIRE(zap_bucket_hash(db, "x", NULL, tag) == ZAP_OK);
    REQUIRE(zap_rec_size(ZAP_REC_BUCKET, 1, 0, &size));
    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    v.mv_size = size;
    REQUIRE(mdb_put(t->txn, db->dbi_buckets, &k, &v, MDB_RESERVE) == 0);
    zap_rec_seal(v.mv_data, ZAP_REC_BUCKET, t->wgen, t->wkey, tag, ZAP_HB_LEN,
                 B("y"), NULL, 0);
    REQUIRE(zap_txn_commit(t) == ZAP_OK);
    CHECK(zap_bucket_create(db, "x") != ZAP_OK);
    CHECK(zap_put(db, "x", B("k2"), B("v")) != ZAP_OK);
    CHECK(zap_bucket_drop(db, "x") != ZAP_OK);
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    CHECK(zap_txn_count(t, "x", &n) != ZAP_OK);
    zap_txn_abort(t);
    zap_close(db);
}

/* A store of format version 1 (48-byte record keys) is refused, not
 * misread: the version is checked before anything else in the header. */
static void
test_open_old_format_version_eversion(void)
{
    const char *dir = kt_path(kt_tmpdir(), "v1");
    MDB_val k = {6, (void *)"header"}, v, nv;
    zap_db *db = zt_create(dir), *again = NULL;
    zap_opts o = zt_opts(0);
    uint8_t buf[ZAP_HDR_MAX];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;

    zap_close(db);
    REQUIRE(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 4) == 0 &&
            mdb_env_set_mapsize(env, 256u << 20) == 0 &&
            mdb_env_open(env, dir, 0, 0600) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "zapdb.meta", 0, &dbi) == 0);
    REQUIRE(mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size <= sizeof buf);
    memcpy(buf, v.mv_data, v.mv_size);
    CHECK(buf[8] == ZAP_FORMAT_VERSION && buf[9] == 0);
    buf[8] = 1;
    nv.mv_size = v.mv_size;
    nv.mv_data = buf;
    REQUIRE(mdb_put(txn, dbi, &k, &nv, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK_EQ(zap_open(dir, &o, P(ZT_PASSWORD), &again), ZAP_EVERSION);
    CHECK(again == NULL);
}

/* ---- fuzz seeds --------------------------------------------------------
 * fuzz/corpus/zapdb_record holds records and a header made with the fixed
 * keys of fuzz/fuzz_zapdb_record.c (byte 0 selects the parser: 0 record,
 * else header). With ZT_WRITE_SEED=1 this test regenerates them (after a
 * format change); it always checks that they authenticate. */

#define SEED_DIR ZT_SOURCE_DIR "/fuzz/corpus/zapdb_record/"

static void
seed_keys(uint8_t sub[ZAP_SUBKEYS], uint8_t rkey[ZAP_RKEY_LEN],
          uint8_t kek[ZAP_KEYBYTES])
{
    for (size_t i = 0; i < ZAP_SUBKEYS; i++)
        sub[i] = (uint8_t)(0x40 + i);
    for (size_t i = 0; i < ZAP_RKEY_LEN; i++)
        rkey[i] = (uint8_t)(0x90 + i);
    for (size_t i = 0; i < ZAP_KEYBYTES; i++)
        kek[i] = (uint8_t)(0xc0 + i);
}

static void
seed_write_record(const char *name, uint8_t type, const char *k, const char *v,
                  const uint8_t *sub, const uint8_t *rkey)
{
    uint8_t buf[1 + 256];
    size_t size, vlen = v ? strlen(v) : 0;

    REQUIRE(zap_rec_size(type, strlen(k), vlen, &size) && size < 256);
    buf[0] = 0;
    zap_rec_seal(buf + 1, type, 1, sub, rkey,
                 type == ZAP_REC_BUCKET ? ZAP_HB_LEN : ZAP_RKEY_LEN,
                 (const uint8_t *)k, strlen(k), (const uint8_t *)v, vlen);
    REQUIRE(kt_write_file(name, buf, 1 + size, 0644) == 0);
}

static void
seed_write_header(const uint8_t *kek)
{
    zap_hdr h;
    uint8_t buf[1 + ZAP_HDR_MAX];
    size_t len;

    memset(&h, 0, sizeof h);
    h.version = ZAP_FORMAT_VERSION;
    h.kdf = ZAP_KDF_ARGON2ID;
    h.opslimit = 1;
    h.memlimit = 8192;
    memset(h.salt, 7, sizeof h.salt);
    memset(h.nk, 0x11, sizeof h.nk);
    h.cur_gen = 2;
    h.ndeks = 2;
    h.dek_gen[0] = 1;
    h.dek_gen[1] = 2;
    memset(h.dek[0], 0x21, sizeof h.dek[0]);
    memset(h.dek[1], 0x22, sizeof h.dek[1]);
    buf[0] = 1;
    len = zap_hdr_build(&h, kek, buf + 1);
    REQUIRE(kt_write_file(SEED_DIR "header_two_deks", buf, 1 + len, 0644) == 0);
}

static void
seed_check_record(const char *name, uint8_t type, const uint8_t *sub,
                  const uint8_t *rkey)
{
    size_t len = 0;
    uint8_t *buf = kt_read_all(name, &len), k[256], v[256];
    MDB_val mv;
    zap_rec r;

    REQUIRE(buf && len > 1 && buf[0] == 0);
    mv.mv_size = len - 1;
    mv.mv_data = buf + 1;
    REQUIRE(zap_rec_parse(&mv, &r) == ZAP_OK);
    CHECK(r.type == type && r.klen < sizeof k && r.vlen < sizeof v);
    CHECK_EQ(zap_rec_open_k(&r, sub, rkey,
                            type == ZAP_REC_BUCKET ? ZAP_HB_LEN : ZAP_RKEY_LEN,
                            k),
             ZAP_OK);
    if (type == ZAP_REC_RECORD)
        CHECK_EQ(zap_rec_open_v(&r, sub, rkey, ZAP_RKEY_LEN, v), ZAP_OK);
    free(buf);
}

static void
test_fuzz_record_seeds_authenticate(void)
{
    uint8_t sub[ZAP_SUBKEYS], rkey[ZAP_RKEY_LEN], kek[ZAP_KEYBYTES];
    size_t len = 0;
    uint8_t *buf;
    zap_hdr h;

    seed_keys(sub, rkey, kek);
    if (getenv("ZT_WRITE_SEED")) {
        seed_write_record(SEED_DIR "record_valid", ZAP_REC_RECORD, "seed-key",
                          "seed-value", sub, rkey);
        seed_write_record(SEED_DIR "record_empty_value", ZAP_REC_RECORD,
                          "empty", "", sub, rkey);
        seed_write_record(SEED_DIR "record_bucket", ZAP_REC_BUCKET,
                          "seed-bucket", NULL, sub, rkey);
        seed_write_header(kek);
    }
    seed_check_record(SEED_DIR "record_valid", ZAP_REC_RECORD, sub, rkey);
    seed_check_record(SEED_DIR "record_empty_value", ZAP_REC_RECORD, sub, rkey);
    seed_check_record(SEED_DIR "record_bucket", ZAP_REC_BUCKET, sub, rkey);
    buf = kt_read_all(SEED_DIR "header_two_deks", &len);
    REQUIRE(buf && len > 1 && buf[0] != 0);
    CHECK_EQ(zap_hdr_unwrap(buf + 1, len - 1, kek, &h), ZAP_OK);
    CHECK(h.version == ZAP_FORMAT_VERSION && h.ndeks == 2);
    kc_wipe(&h, sizeof h);
    free(buf);
}

static const kt_case cases[] = {
    KT_CASE(test_strerror_every_code_has_message),
    KT_CASE(test_aead_hchacha20_draft_vector_matches),
    KT_CASE(test_aead_xchacha_draft_vector_matches),
    KT_CASE(test_aead_matches_libsodium_across_lengths),
    KT_CASE(test_aead_tampered_or_truncated_rejected),
    KT_CASE(test_open_missing_store_without_create_enostore),
    KT_CASE(test_open_bad_arguments_einval),
    KT_CASE(test_open_excl_existing_store_eexist),
    KT_CASE(test_put_get_roundtrip_returns_value),
    KT_CASE(test_put_persists_across_reopen),
    KT_CASE(test_put_empty_value_roundtrips),
    KT_CASE(test_put_bad_key_or_bucket_rejected),
    KT_CASE(test_binary_keys_with_nul_are_distinct),
    KT_CASE(test_max_size_key_roundtrips),
    KT_CASE(test_max_size_value_roundtrips),
    KT_CASE(test_buckets_create_list_drop),
    KT_CASE(test_many_buckets_are_isolated),
    KT_CASE(test_txn_abort_leaves_nothing),
    KT_CASE(test_txn_commit_applies_all_buckets),
    KT_CASE(test_read_txn_write_calls_erdonly),
    KT_CASE(test_rdonly_store_refuses_writes),
    KT_CASE(test_snapshot_does_not_see_later_commit),
    KT_CASE(test_iter_sorted_prefix_and_start),
    KT_CASE(test_wrong_password_eauth_store_unchanged),
    KT_CASE(test_raw_key_store_roundtrip_and_wrong_key),
    KT_CASE(test_default_kdf_cost_is_argon2id_moderate),
    KT_CASE(test_stats_counts_records_and_buckets),
    KT_CASE(test_sync_modes_roundtrip_after_reopen),
    KT_CASE(test_txn_exists_del_bucket_create_roundtrip),
    KT_CASE(test_iter_skips_record_deleted_in_same_txn),
    KT_CASE(test_key_slot_collision_get_enotfound_put_einternal),
    KT_CASE(test_key_slot_same_key_overwrite_and_delete_work),
    KT_CASE(test_bucket_slot_holding_other_name_refused),
    KT_CASE(test_open_old_format_version_eversion),
    KT_CASE(test_fuzz_record_seeds_authenticate),
};

int
main(int argc, char **argv)
{
    size_t n = KT_COUNT(cases) + zt_ops_count;
    kt_case *all = malloc(n * sizeof *all);
    int rc;

    if (!all)
        return 1;
    memcpy(all, cases, sizeof cases);
    memcpy(all + KT_COUNT(cases), zt_ops_cases, zt_ops_count * sizeof *all);
    rc = kt_main(argc, argv, all, n);
    free(all);
    return rc;
}
