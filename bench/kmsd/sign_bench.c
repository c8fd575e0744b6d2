/* SPDX-License-Identifier: Apache-2.0 */
/* In-process ECDSA P-256 signing cost on one core (one thread):
 *   hsm_local_sign   libhsm's local signer (hsm_signer_sign, SHA-256 + sign)
 *   kmsd_engine_sign kmsd's key engine (kms_key_sign on a soft ecdsa-p256
 *                    key: store read, record parse, sign), as a request
 *                    handler runs it, without HTTP
 * Prints `name value unit` lines. Usage: kmsd-sign-bench [SECONDS] */
#include "keys_int.h"

#include "kc.h"

#include <hsm/hsm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_hsm(double secs)
{
    static const uint8_t msg[32] = "kmsd sign bench message 32 bytes";
    hsm_signer *s = NULL;
    uint8_t *sig = NULL;
    size_t sl = 0;
    unsigned long n = 0;
    double t0, t;

    if (hsm_signer_new("local", NULL, &s) != HSM_OK)
        return -1;
    t0 = now_s();
    do {
        for (int i = 0; i < 64; i++) {
            if (hsm_signer_sign(s, "bench", msg, sizeof msg, &sig, &sl) !=
                HSM_OK) {
                hsm_signer_free(s);
                return -1;
            }
            hsm_free(sig);
            n++;
        }
        t = now_s() - t0;
    } while (t < secs);
    printf("hsm_local_sign %.1f signs/s\n", (double)n / t);
    hsm_signer_free(s);
    return 0;
}

static int
bench_engine(double secs)
{
    static const uint8_t msg[32] = "kmsd sign bench message 32 bytes";
    char root[KMS_TOKEN_LEN + 1];
    kms_store *st = NULL;
    kms_srv srv;
    kms_ctx c;
    kms_key_create_opts o = {0};
    json_t *rec = NULL;
    uint8_t *sig = NULL;
    size_t sl = 0;
    unsigned long n = 0;
    double t0, t;
    int rc = -1;

    memset(&srv, 0, sizeof srv);
    memset(&c, 0, sizeof c);
    if (kms_store_mem_open(&st) != KMS_ST_OK ||
        kms_srv_init(&srv, st, 3, root, false, NULL) != KMS_OK)
        goto out;
    c.srv = &srv;
    c.who.authenticated = c.who.root = true;
    {
        /* the organisation, through the router as a client would */
        kms_req r = {0};
        kms_resp resp;
        r.method = "POST";
        r.path = "/v1/kms/orgs";
        r.token = root;
        r.body = (const uint8_t *)"{\"name\":\"bench\"}";
        r.body_len = strlen((const char *)r.body);
        kms_dispatch(&srv, &r, &resp);
        kms_resp_free(&resp);
    }
    o.name = "sig";
    o.type = "ecdsa-p256";
    c.audit = json_object();
    if (kms_key_create(&c, "bench", &o, &rec) != KMS_OK)
        goto out;
    t0 = now_s();
    do {
        for (int i = 0; i < 64; i++) {
            json_decref(c.audit);
            c.audit = json_object();
            if (kms_key_sign(&c, "bench", "sig", KMS_SIGN_RAW, msg, sizeof msg,
                             &sig, &sl, NULL) != KMS_OK)
                goto out;
            free(sig);
            n++;
        }
        t = now_s() - t0;
    } while (t < secs);
    printf("kmsd_engine_sign %.1f signs/s\n", (double)n / t);
    rc = 0;
out:
    json_decref(rec);
    json_decref(c.audit);
    kms_srv_fini(&srv);
    kms_store_close(st);
    return rc;
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 3.0;

    kms_json_init();
    if (kc_init() != 0 || secs <= 0 || secs > 60)
        return 2;
    if (bench_hsm(secs) != 0 || bench_engine(secs) != 0) {
        fprintf(stderr, "kmsd-sign-bench: signing failed\n");
        return 1;
    }
    return 0;
}
