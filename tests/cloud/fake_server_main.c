/* SPDX-License-Identifier: Apache-2.0 */
/* The fake cloud as a process, for the Node interop tests: prints
 * "PORT <n>" and "PUBKEY <base64 SPKI>" on stdout, then serves until its
 * standard input closes (the parent dies or ends the pipe). An optional
 * argument is the X-Amz-Security-Token the fake must see (signed). At
 * exit it prints "FAILURES <n>" (expectations the fake saw fail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "fake_cloud.h"
#include "kc.h"

int
main(int argc, char **argv)
{
    fake_cloud *fc;
    unsigned char *der = NULL;
    char *b64, buf[64];
    int n;

    if (kc_init() != 0 || !(fc = fake_start()))
        return 1;
    if (argc > 1)
        fake_knobs_of(fc)->want_token = argv[1];
    n = i2d_PUBKEY(fake_key(fc), &der);
    b64 = n > 0 ? kc_b64_encode(der, (size_t)n, KC_B64_STD) : NULL;
    printf("PORT %u\nPUBKEY %s\n", fake_port(fc), b64 ? b64 : "");
    fflush(stdout);
    free(b64);
    OPENSSL_free(der);
    while (read(0, buf, sizeof buf) > 0)
        ;
    printf("FAILURES %d\n", atomic_load(&fake_knobs_of(fc)->expect_failures));
    fflush(stdout);
    fake_stop(fc);
    return 0;
}
