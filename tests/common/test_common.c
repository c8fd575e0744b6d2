/* SPDX-License-Identifier: Apache-2.0 */
#include "kc.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_hex_roundtrip_matches(void)
{
    const uint8_t in[] = {0x00, 0x7f, 0xab, 0xff};
    char hex[9];
    uint8_t back[4];
    size_t n = 0;

    REQUIRE(kc_hex_encode(in, 4, hex, sizeof hex) == 0);
    CHECK(strcmp(hex, "007fabff") == 0);
    CHECK(kc_hex_decode("007FABFF", 8, back, sizeof back, &n) == 0);
    CHECK_EQ(n, 4);
    CHECK_MEM(back, in, 4);
}

static void
test_hex_bad_input_rejected(void)
{
    uint8_t out[4];
    size_t n;
    char small[4];

    CHECK(kc_hex_decode("abc", 3, out, sizeof out, &n) == -1);
    CHECK(kc_hex_decode("zz", 2, out, sizeof out, &n) == -1);
    CHECK(kc_hex_decode("0011223344", 10, out, sizeof out, &n) == -1);
    CHECK(kc_hex_encode(out, 4, small, sizeof small) == -1);
}

/* RFC 4648 section 10 test vectors. */
static void
test_b64_rfc4648_vectors_match(void)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                                "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *e = kc_b64_encode((const uint8_t *)plain[i], strlen(plain[i]),
                                KC_B64_STD);
        REQUIRE(e);
        CHECK(strcmp(e, std[i]) == 0);
        free(e);
        e = kc_b64_encode((const uint8_t *)plain[i], strlen(plain[i]),
                          KC_B64_URL);
        REQUIRE(e);
        CHECK(strcmp(e, url[i]) == 0);
        free(e);
        uint8_t *d;
        size_t n;
        REQUIRE(kc_b64_decode(std[i], strlen(std[i]), KC_B64_STD, &d, &n) == 0);
        CHECK_EQ(n, strlen(plain[i]));
        CHECK(n == 0 || memcmp(d, plain[i], n) == 0);
        free(d);
        /* URL decoding accepts the padded form too. */
        REQUIRE(kc_b64_decode(std[i], strlen(std[i]), KC_B64_URL, &d, &n) == 0);
        CHECK_EQ(n, strlen(plain[i]));
        free(d);
    }
}

static void
test_b64_bad_input_rejected(void)
{
    uint8_t *d = NULL;
    size_t n = 0;

    CHECK(kc_b64_decode("Zm9v!", 5, KC_B64_STD, &d, &n) == -1);
    CHECK(kc_b64_decode("Zg=", 3, KC_B64_STD, &d, &n) == -1);
    CHECK(kc_b64_decode("Zm9v Zm9v", 9, KC_B64_STD, &d, &n) == -1);
    CHECK(kc_b64_decode("a-_b", 4, KC_B64_STD, &d, &n) == -1);
    CHECK(kc_b64_decode("a+/b", 4, KC_B64_URL, &d, &n) == -1);
    CHECK(d == NULL && n == 0);
}

static void
test_read_file_cap_enforced(void)
{
    const char *dir = kt_tmpdir();
    const char *p = kt_path(dir, "f");
    uint8_t *buf;
    size_t n;

    REQUIRE(kt_write_file(p, "0123456789", 10, 0600) == 0);
    CHECK(kc_read_file(p, 9, false, &buf, &n) == -EFBIG);
    REQUIRE(kc_read_file(p, 10, true, &buf, &n) == 0);
    CHECK_EQ(n, 10);
    CHECK(buf[10] == 0);
    kc_secure_free(buf);
    CHECK(kc_read_file(kt_path(dir, "missing"), 10, false, &buf, &n) == -ENOENT);
}

static void
test_write_atomic_mode_and_content(void)
{
    const char *dir = kt_tmpdir();
    const char *p = kt_path(dir, "out");
    struct stat st;
    size_t n;

    REQUIRE(kc_write_file_atomic(p, (const uint8_t *)"abc", 3, 0600) == 0);
    REQUIRE(kc_write_file_atomic(p, (const uint8_t *)"xyz!", 4, 0600) == 0);
    REQUIRE(stat(p, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    uint8_t *b = kt_read_all(p, &n);
    REQUIRE(b);
    CHECK(n == 4 && memcmp(b, "xyz!", 4) == 0);
    free(b);
}

static void
test_password_file_modes_checked(void)
{
    const char *dir = kt_tmpdir();
    const char *p = kt_path(dir, "pw");
    char *pw = NULL;
    size_t n = 0;
    int err = 0;

    REQUIRE(kt_write_file(p, "s3cret\n", 7, 0600) == 0);
    REQUIRE(kc_password_get(p, NULL, NULL, &pw, &n, &err) == KC_PW_OK);
    CHECK(n == 6 && strcmp(pw, "s3cret") == 0);
    kc_secure_free(pw);
    REQUIRE(chmod(p, 0640) == 0);
    CHECK(kc_password_get(p, NULL, NULL, &pw, &n, &err) == KC_PW_EPERM);
    CHECK_EQ(err, 0640);
    REQUIRE(kt_write_file(p, "\n", 1, 0600) == 0);
    REQUIRE(chmod(p, 0600) == 0);
    CHECK(kc_password_get(p, NULL, NULL, &pw, &n, &err) == KC_PW_EMPTY);
    CHECK(kc_password_get(kt_path(dir, "none"), NULL, NULL, &pw, &n, &err) ==
          KC_PW_EIO);
    setenv("KT_PW_TEST", "fromenv", 1);
    REQUIRE(kc_password_get(NULL, "KT_PW_TEST", NULL, &pw, &n, &err) == KC_PW_OK);
    CHECK(strcmp(pw, "fromenv") == 0);
    kc_secure_free(pw);
    unsetenv("KT_PW_TEST");
    CHECK(kc_password_get(NULL, "KT_PW_TEST", NULL, &pw, &n, &err) == KC_PW_NONE);
}

/* A directory is no password file; a symlink to a 0600 file (how
 * Kubernetes mounts secrets) is read, and the mode checked is the
 * target's. */
static void
test_password_file_dir_and_symlink_handled(void)
{
    const char *dir = kt_tmpdir();
    const char *target = kt_path(dir, "target");
    const char *link = kt_path(dir, "link");
    char *pw = NULL;
    size_t n = 0;
    int err = 0;

    CHECK(kc_password_get(dir, NULL, NULL, &pw, &n, &err) == KC_PW_EIO);
    CHECK_EQ(err, EINVAL);
    CHECK(pw == NULL);
    REQUIRE(kt_write_file(target, "via-link\n", 9, 0600) == 0);
    REQUIRE(symlink(target, link) == 0);
    REQUIRE(kc_password_get(link, NULL, NULL, &pw, &n, &err) == KC_PW_OK);
    CHECK(n == 8 && strcmp(pw, "via-link") == 0);
    kc_secure_free(pw);
    REQUIRE(chmod(target, 0644) == 0);
    CHECK(kc_password_get(link, NULL, NULL, &pw, &n, &err) == KC_PW_EPERM);
    CHECK_EQ(err, 0644);
}

static void
test_parse_u64_bounds(void)
{
    uint64_t v = 0;

    CHECK(kc_parse_u64("18446744073709551615", &v) == 0 && v == UINT64_MAX);
    CHECK(kc_parse_u64("18446744073709551616", &v) == -1);
    CHECK(kc_parse_u64("", &v) == -1);
    CHECK(kc_parse_u64("-1", &v) == -1);
    CHECK(kc_parse_u64("12a", &v) == -1);
    CHECK(kc_parse_u64(" 1", &v) == -1);
}

static void
test_ct_eq_detects_difference(void)
{
    uint8_t a[32], b[32];

    kc_random(a, sizeof a);
    memcpy(b, a, sizeof b);
    CHECK(kc_ct_eq(a, b, 32));
    b[31] ^= 1;
    CHECK(!kc_ct_eq(a, b, 32));
}

static const kt_case cases[] = {
    KT_CASE(test_hex_roundtrip_matches),
    KT_CASE(test_hex_bad_input_rejected),
    KT_CASE(test_b64_rfc4648_vectors_match),
    KT_CASE(test_b64_bad_input_rejected),
    KT_CASE(test_read_file_cap_enforced),
    KT_CASE(test_write_atomic_mode_and_content),
    KT_CASE(test_password_file_modes_checked),
    KT_CASE(test_password_file_dir_and_symlink_handled),
    KT_CASE(test_parse_u64_bounds),
    KT_CASE(test_ct_eq_detects_difference),
};

int
main(int argc, char **argv)
{
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
