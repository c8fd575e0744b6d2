/* SPDX-License-Identifier: Apache-2.0 */
/* Keccak-f[1600], SHA-3 and SHAKE (FIPS 202): NIST example values, then a
 * cross-check against OpenSSL 3's independent implementation over many
 * lengths (crossing the 72/136/168-byte rate boundaries) and with
 * incremental absorb/squeeze in random chunk sizes. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "crypto_tests.h"
#include "keccak.h"

/* Deterministic test PRNG (splitmix64): reproducible inputs. */
static uint64_t
prng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void
prng_fill(uint64_t *s, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)prng_next(s);
}

static int
hex_eq(const uint8_t *got, size_t n, const char *hex)
{
    size_t len = 0;
    uint8_t *want = kt_unhex(hex, &len);
    int ok = want && len == n && memcmp(got, want, n) == 0;
    free(want);
    return ok;
}

/* NIST "Cryptographic Standards and Guidelines: Examples with
 * Intermediate Values" for FIPS 202 (SHA3-256/512 and SHAKE128/256 of the
 * empty message and of "abc", and of 200 bytes of 0xA3 (1600 bits)). */
static void
test_sha3_nist_examples_match(void)
{
    uint8_t out[64], a3[200];

    memset(a3, 0xA3, sizeof a3);
    kms_sha3_256(NULL, 0, out);
    CHECK(hex_eq(
        out, 32,
        "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"));
    kms_sha3_256((const uint8_t *)"abc", 3, out);
    CHECK(hex_eq(
        out, 32,
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"));
    kms_sha3_256(a3, sizeof a3, out);
    CHECK(hex_eq(
        out, 32,
        "79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787"));
    kms_sha3_512(NULL, 0, out);
    CHECK(hex_eq(
        out, 64,
        "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
        "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26"));
    kms_sha3_512((const uint8_t *)"abc", 3, out);
    CHECK(hex_eq(
        out, 64,
        "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
        "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0"));
    kms_sha3_512(a3, sizeof a3, out);
    CHECK(hex_eq(
        out, 64,
        "e76dfad22084a8b1467fcf2ffa58361bec7628edf5f3fdc0e4805dc48caeeca8"
        "1b7c13c30adf52a3659584739a2df46be589c51ca1a4a8416df6545a1ce8ba00"));
}

static void
test_shake_nist_examples_match(void)
{
    uint8_t out[64], a3[200];

    memset(a3, 0xA3, sizeof a3);
    kms_shake128(NULL, 0, out, 32);
    CHECK(hex_eq(
        out, 32,
        "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"));
    kms_shake128(a3, sizeof a3, out, 32);
    CHECK(hex_eq(
        out, 32,
        "131ab8d2b594946b9c81333f9bb6e0ce75c3b93104fa3469d3917457385da037"));
    kms_shake256(NULL, 0, out, 64);
    CHECK(hex_eq(
        out, 64,
        "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f"
        "d75dc4ddd8c0f200cb05019d67b592f6fc821c49479ab48640292eacb3b7c4be"));
}

/* OpenSSL's digest of `in`; out_len is the XOF length for SHAKE. */
static int
ossl_digest(const EVP_MD *md, const uint8_t *in, size_t in_len, uint8_t *out,
            size_t out_len)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = c && EVP_DigestInit_ex(c, md, NULL) == 1 &&
             EVP_DigestUpdate(c, in, in_len) == 1;
    if (ok && (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF))
        ok = EVP_DigestFinalXOF(c, out, out_len) == 1;
    else if (ok)
        ok = EVP_DigestFinal_ex(c, out, &n) == 1 && n == out_len;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

static void
test_sha3_all_lengths_match_openssl(void)
{
    uint64_t seed = 1;
    uint8_t in[1001], a[64], b[64];

    prng_fill(&seed, in, sizeof in);
    for (size_t n = 0; n <= 1000; n++) {
        kms_sha3_256(in, n, a);
        REQUIRE(ossl_digest(EVP_sha3_256(), in, n, b, 32) == 0);
        CHECK_MEM(a, b, 32);
        kms_sha3_512(in, n, a);
        REQUIRE(ossl_digest(EVP_sha3_512(), in, n, b, 64) == 0);
        CHECK_MEM(a, b, 64);
    }
}

static void
test_shake_all_lengths_match_openssl(void)
{
    uint64_t seed = 2;
    uint8_t in[1001], a[400], b[400];

    prng_fill(&seed, in, sizeof in);
    for (size_t n = 0; n <= 1000; n++) {
        size_t out_len = 1 + (size_t)(prng_next(&seed) % sizeof a);
        kms_shake128(in, n, a, out_len);
        REQUIRE(ossl_digest(EVP_shake128(), in, n, b, out_len) == 0);
        CHECK_MEM(a, b, out_len);
        kms_shake256(in, n, a, out_len);
        REQUIRE(ossl_digest(EVP_shake256(), in, n, b, out_len) == 0);
        CHECK_MEM(a, b, out_len);
    }
}

/* Absorb and squeeze in random chunks (0..rate+1 bytes), compare with
 * OpenSSL's one-shot result. */
static void
test_shake_incremental_chunks_match_openssl(void)
{
    uint64_t seed = 3;
    uint8_t in[1000], a[700], b[700];

    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)(prng_next(&seed) % sizeof in);
        size_t out_len = (size_t)(prng_next(&seed) % sizeof a);
        int which = round & 1;
        kms_keccak_ctx c;
        size_t off = 0;

        prng_fill(&seed, in, n);
        if (which)
            kms_shake256_init(&c);
        else
            kms_shake128_init(&c);
        while (off < n) {
            size_t chunk = (size_t)(prng_next(&seed) % (c.rate + 2));
            if (chunk > n - off)
                chunk = n - off;
            kms_shake_absorb(&c, in + off, chunk);
            off += chunk;
        }
        off = 0;
        while (off < out_len) {
            size_t chunk = (size_t)(prng_next(&seed) % (c.rate + 2));
            if (chunk > out_len - off)
                chunk = out_len - off;
            kms_shake_squeeze(&c, a + off, chunk);
            off += chunk;
        }
        REQUIRE(ossl_digest(which ? EVP_shake256() : EVP_shake128(), in, n, b,
                            out_len) == 0);
        CHECK_MEM(a, b, out_len);
    }
}

static void
test_sha3_incremental_chunks_match_openssl(void)
{
    uint64_t seed = 4;
    uint8_t in[1000], a[64], b[64];

    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(prng_next(&seed) % sizeof in);
        int is512 = round & 1;
        kms_keccak_ctx c;
        size_t off = 0;

        prng_fill(&seed, in, n);
        if (is512)
            kms_sha3_512_init(&c);
        else
            kms_sha3_256_init(&c);
        while (off < n) {
            size_t chunk = (size_t)(prng_next(&seed) % (c.rate + 2));
            if (chunk > n - off)
                chunk = n - off;
            kms_sha3_update(&c, in + off, chunk);
            off += chunk;
        }
        if (is512)
            kms_sha3_512_final(&c, a);
        else
            kms_sha3_256_final(&c, a);
        REQUIRE(ossl_digest(is512 ? EVP_sha3_512() : EVP_sha3_256(), in, n, b,
                            is512 ? 64 : 32) == 0);
        CHECK_MEM(a, b, is512 ? 64 : 32);
    }
}

/* Squeezing whole blocks must continue the same output stream. */
static void
test_shake_squeeze_blocks_continues_stream_matches(void)
{
    kms_keccak_ctx c;
    uint8_t a[3 * KMS_SHAKE128_RATE], b[3 * KMS_SHAKE128_RATE];

    kms_shake128_init(&c);
    kms_shake_absorb(&c, (const uint8_t *)"seed", 4);
    kms_shake_squeeze_blocks(&c, a, 2);
    kms_shake_squeeze_blocks(&c, a + 2 * KMS_SHAKE128_RATE, 1);
    kms_shake128((const uint8_t *)"seed", 4, b, sizeof b);
    CHECK_MEM(a, b, sizeof a);
}

/* The run-time dispatched permutation (BMI1/BMI2 build on CPUs that have
 * it) equals the baseline build on random states. */
static void
test_keccak_dispatched_equals_generic(void)
{
    uint64_t seed = 5, a[25], b[25];

    for (int round = 0; round < 500; round++) {
        for (int i = 0; i < 25; i++)
            a[i] = b[i] = prng_next(&seed);
        kms_keccak_f1600(a);
        kms_keccak_f1600_generic(b);
        CHECK_MEM(a, b, sizeof a);
    }
}

/* The two-way permutation (dispatched and baseline builds) equals two
 * single permutations. */
static void
test_keccak_x2_equals_two_singles(void)
{
    uint64_t seed = 6, a0[25], a1[25], b0[25], b1[25], c0[25], c1[25];

    for (int round = 0; round < 300; round++) {
        for (int i = 0; i < 25; i++) {
            a0[i] = b0[i] = c0[i] = prng_next(&seed);
            a1[i] = b1[i] = c1[i] = prng_next(&seed);
        }
        kms_keccak_f1600_x2(a0, a1);
        kms_keccak_f1600_x2_generic(c0, c1);
        kms_keccak_f1600_generic(b0);
        kms_keccak_f1600_generic(b1);
        CHECK_MEM(a0, b0, sizeof a0);
        CHECK_MEM(a1, b1, sizeof a1);
        CHECK_MEM(c0, b0, sizeof c0);
        CHECK_MEM(c1, b1, sizeof c1);
    }
}

/* Two SHAKE instances in lockstep give kms_shake128/256 of each input, for
 * inputs of 0..400 bytes (several absorbed blocks) and 1..3 blocks out. */
static void
test_shake_x2_matches_single_shake(void)
{
    uint64_t seed = 7;
    uint8_t in0[400], in1[400], o0[3 * 168], o1[3 * 168], r0[3 * 168],
        r1[3 * 168];

    for (size_t n = 0; n <= 400; n += 7) {
        for (int which = 0; which < 2; which++) {
            size_t rate = which ? KMS_SHAKE256_RATE : KMS_SHAKE128_RATE;
            size_t blocks = 1 + n % 3;
            kms_keccak_x2_ctx c;
            prng_fill(&seed, in0, n);
            prng_fill(&seed, in1, n);
            kms_shake_x2_init(&c, rate, in0, in1, n);
            kms_shake_x2_squeeze_blocks(&c, o0, o1, blocks);
            if (which) {
                kms_shake256(in0, n, r0, blocks * rate);
                kms_shake256(in1, n, r1, blocks * rate);
            } else {
                kms_shake128(in0, n, r0, blocks * rate);
                kms_shake128(in1, n, r1, blocks * rate);
            }
            CHECK_MEM(o0, r0, blocks * rate);
            CHECK_MEM(o1, r1, blocks * rate);
        }
    }
}

const kt_case kt_keccak_cases[] = {
    KT_CASE(test_keccak_x2_equals_two_singles),
    KT_CASE(test_shake_x2_matches_single_shake),
    KT_CASE(test_keccak_dispatched_equals_generic),
    KT_CASE(test_sha3_nist_examples_match),
    KT_CASE(test_shake_nist_examples_match),
    KT_CASE(test_sha3_all_lengths_match_openssl),
    KT_CASE(test_shake_all_lengths_match_openssl),
    KT_CASE(test_shake_incremental_chunks_match_openssl),
    KT_CASE(test_sha3_incremental_chunks_match_openssl),
    KT_CASE(test_shake_squeeze_blocks_continues_stream_matches),
};
const size_t kt_keccak_count = KT_COUNT(kt_keccak_cases);
