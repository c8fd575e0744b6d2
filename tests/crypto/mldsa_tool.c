/* SPDX-License-Identifier: Apache-2.0 */
/* mldsa_tool: a line protocol over stdin/stdout that exposes kms_crypto's
 * ML-DSA to the Node cross-check against @noble/post-quantum (and to
 * people debugging interoperability). One command a line, fields
 * separated by single spaces, byte strings in hex, "-" for empty:
 *
 *   keygen    P SEED                  -> PK SK
 *   sign      P SK MSG CTX DET        -> SIG       (DET 1: rnd = 0^32)
 *   verify    P PK MSG CTX SIG        -> ok | fail
 *   hashsign  P H SK MSG CTX DET      -> SIG       (H: sha256 | sha512)
 *   hashverify P H PK MSG CTX SIG     -> ok | fail
 *   mu        P PK MSG CTX            -> MU
 *   signmu    P SK MU DET             -> SIG
 *
 * P is 44, 65 or 87. A bad command prints "error <reason>". Exit status 0
 * unless stdin could not be read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"
#include "kms_mldsa.h"

#define MAX_FIELDS 8

typedef struct {
    uint8_t *p;
    size_t len;
} bytes;

static int
split(char *line, char **f, int max)
{
    int n = 0;
    char *s = line;

    while (*s && n < max) {
        f[n++] = s;
        while (*s && *s != ' ')
            s++;
        if (*s)
            *s++ = '\0';
    }
    return *s ? -1 : n;
}

/* Hex field to bytes ("-" is empty). Returns 0 or -1. */
static int
unhex(const char *h, bytes *out)
{
    size_t n = strlen(h);

    out->p = NULL;
    out->len = 0;
    if (strcmp(h, "-") == 0)
        return 0;
    out->p = malloc(n / 2 + 1);
    if (!out->p || kc_hex_decode(h, n, out->p, n / 2 + 1, &out->len) != 0)
        return -1;
    return 0;
}

static void
print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static int
param(const char *s, kms_mldsa_param *p)
{
    if (strcmp(s, "44") == 0)
        *p = KMS_MLDSA_44;
    else if (strcmp(s, "65") == 0)
        *p = KMS_MLDSA_65;
    else if (strcmp(s, "87") == 0)
        *p = KMS_MLDSA_87;
    else
        return -1;
    return 0;
}

static int
prehash(const char *s, kms_mldsa_prehash *h)
{
    if (strcmp(s, "sha256") == 0)
        *h = KMS_MLDSA_PH_SHA256;
    else if (strcmp(s, "sha512") == 0)
        *h = KMS_MLDSA_PH_SHA512;
    else
        return -1;
    return 0;
}

/* Run one command; prints its answer line. */
static void
run(char **f, int n)
{
    kms_mldsa_param p;
    kms_mldsa_prehash ph = KMS_MLDSA_PH_SHA256;
    bytes b[5] = {{0}};
    uint8_t pk[KMS_MLDSA_PK_MAX], sk[KMS_MLDSA_SK_MAX], sig[KMS_MLDSA_SIG_MAX];
    uint8_t mu[KMS_MLDSA_MU_LEN];
    kms_mldsa_err rc = KMS_MLDSA_EINVAL;
    int first = 2, nb = n - 2, nhex;
    const char *cmd = f[0];

    if (n < 2 || param(f[1], &p) != 0) {
        printf("error bad parameter set\n");
        return;
    }
    if (strncmp(cmd, "hash", 4) == 0) {
        if (n < 3 || prehash(f[2], &ph) != 0) {
            printf("error bad hash\n");
            return;
        }
        first = 3;
        nb = n - 3;
    }
    /* the sign commands end with the DET flag, not a byte string */
    nhex = strstr(cmd, "sign") ? nb - 1 : nb;
    for (int i = 0; i < nhex && i < 5; i++) {
        if (unhex(f[first + i], &b[i]) != 0) {
            printf("error bad hex\n");
            goto out;
        }
    }
    if (strcmp(cmd, "keygen") == 0 && nb == 1 && b[0].len == 32) {
        rc = kms_mldsa_keygen_seed(p, b[0].p, pk, sizeof pk, sk, sizeof sk);
        if (rc == KMS_MLDSA_OK) {
            print_hex(pk, kms_mldsa_pk_len(p));
            printf(" ");
            print_hex(sk, kms_mldsa_sk_len(p));
            printf("\n");
        }
    } else if (strcmp(cmd, "sign") == 0 && nb == 4) {
        rc = kms_mldsa_sign(
            p, b[0].p, b[0].len, b[1].p, b[1].len, b[2].p, b[2].len,
            strcmp(f[5], "1") == 0 ? KMS_MLDSA_DETERMINISTIC : KMS_MLDSA_HEDGED,
            sig, sizeof sig);
    } else if (strcmp(cmd, "hashsign") == 0 && nb == 4) {
        rc = kms_mldsa_hash_sign(
            p, b[0].p, b[0].len, ph, b[1].p, b[1].len, b[2].p, b[2].len,
            strcmp(f[6], "1") == 0 ? KMS_MLDSA_DETERMINISTIC : KMS_MLDSA_HEDGED,
            sig, sizeof sig);
    } else if (strcmp(cmd, "signmu") == 0 && nb == 3 &&
               b[1].len == KMS_MLDSA_MU_LEN) {
        rc = kms_mldsa_sign_mu(p, b[0].p, b[0].len, b[1].p,
                               strcmp(f[4], "1") == 0 ? KMS_MLDSA_DETERMINISTIC
                                                      : KMS_MLDSA_HEDGED,
                               sig, sizeof sig);
    } else if (strcmp(cmd, "verify") == 0 && nb == 4) {
        rc = kms_mldsa_verify(p, b[0].p, b[0].len, b[1].p, b[1].len, b[2].p,
                              b[2].len, b[3].p, b[3].len);
        printf("%s\n", rc == KMS_MLDSA_OK ? "ok" : "fail");
        goto out;
    } else if (strcmp(cmd, "hashverify") == 0 && nb == 4) {
        rc = kms_mldsa_hash_verify(p, b[0].p, b[0].len, ph, b[1].p, b[1].len,
                                   b[2].p, b[2].len, b[3].p, b[3].len);
        printf("%s\n", rc == KMS_MLDSA_OK ? "ok" : "fail");
        goto out;
    } else if (strcmp(cmd, "mu") == 0 && nb == 3) {
        rc = kms_mldsa_compute_mu_ctx(p, b[0].p, b[0].len, b[1].p, b[1].len,
                                      b[2].p, b[2].len, mu);
        if (rc == KMS_MLDSA_OK) {
            print_hex(mu, sizeof mu);
            printf("\n");
        }
    } else {
        printf("error bad command\n");
        goto out;
    }
    if (rc != KMS_MLDSA_OK)
        printf("error %s\n", kms_mldsa_strerror(rc));
    else if (strstr(cmd, "sign")) {
        print_hex(sig, kms_mldsa_sig_len(p));
        printf("\n");
    }
out:
    for (int i = 0; i < 5; i++)
        kc_free_wipe(b[i].p, b[i].len);
}

int
main(void)
{
    char *line = NULL, *f[MAX_FIELDS];
    size_t cap = 0;
    ssize_t len;

    if (kc_init() != 0)
        return 1;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        int n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        n = split(line, f, MAX_FIELDS);
        if (n < 1)
            printf("error too many fields\n");
        else
            run(f, n);
        fflush(stdout);
    }
    free(line);
    return ferror(stdin) ? 1 : 0;
}
