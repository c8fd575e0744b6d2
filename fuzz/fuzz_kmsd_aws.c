/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz kmsd's AWS KMS-compatible endpoint (src/kmsd/awskms.c) without a
 * network: each input is one request, signed here with a valid access key
 * (so the operations themselves are reached) unless the first line says
 * otherwise, and dispatched on an in-memory store holding a few keys.
 *
 * Input: "MODE OPERATION\n" BODY
 * MODE: "s" sign correctly, "u" unsigned, "b" sign then flip the body's
 * first byte, "o" sign 10 minutes in the past (outside the skew window). */
/* fuzz-link: kmsd_core */
#include "kmsd_int.h"

#include "../src/hsm/cloud/sigv4.h"
#include "kc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kms_srv srv;
static kms_store *store;
static char root[KMS_TOKEN_LEN + 1], akid[32], secret[64];
static unsigned runs;

static json_t *
must(const char *method, const char *path, const char *body)
{
    kms_req r = {0};
    kms_resp resp;
    json_t *j;

    r.method = method;
    r.path = path;
    r.token = root;
    r.body = (const uint8_t *)body;
    r.body_len = body ? strlen(body) : 0;
    kms_dispatch(&srv, &r, &resp);
    if (resp.status >= 300)
        abort();
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    kms_resp_free(&resp);
    return j;
}

static void
setup(void)
{
    json_t *j;
    char body[128];

    if (store && runs % 2000 != 0)
        return;
    if (store) {
        kms_srv_fini(&srv);
        kms_store_close(store);
    }
    kms_json_init();
    if (kc_init() != 0 || kms_store_mem_open(&store) != KMS_ST_OK)
        abort();
    memset(&srv, 0, sizeof srv);
    if (kms_srv_init(&srv, store, 3, root, false, NULL) != KMS_OK)
        abort();
    json_decref(must("POST", "/v1/kms/orgs", "{\"name\":\"acme\"}"));
    json_decref(must("PUT", "/v1/kms/orgs/acme/policies/all",
                     "{\"rules\":[{\"path\":\"keys/**\",\"capabilities\":["
                     "\"create\",\"read\",\"encrypt\",\"decrypt\",\"sign\","
                     "\"verify\",\"rotate\",\"admin\"]},{\"path\":\"keys\","
                     "\"capabilities\":[\"list\"]}]}"));
    j = must("POST", "/v1/kms/orgs/acme/identities",
             "{\"name\":\"app\",\"policies\":[\"all\"]}");
    snprintf(body, sizeof body, "{\"client_id\":\"%s\"}",
             json_string_value(json_object_get(j, "client_id")));
    json_decref(j);
    j = must("POST", "/v1/kms/orgs/acme/aws-keys", body);
    kc_strlcpy(akid, json_string_value(json_object_get(j, "access_key_id")),
               sizeof akid);
    kc_strlcpy(secret,
               json_string_value(json_object_get(j, "secret_access_key")),
               sizeof secret);
    json_decref(j);
    json_decref(must("POST", "/v1/kms/orgs/acme/keys",
                     "{\"name\":\"sym\",\"type\":\"aes256-gcm\"}"));
    json_decref(must("POST", "/v1/kms/orgs/acme/keys",
                     "{\"name\":\"p256\",\"type\":\"ecdsa-p256\"}"));
    json_decref(must("POST", "/v1/kms/orgs/acme/keys",
                     "{\"name\":\"pq\",\"type\":\"ml-dsa-44\"}"));
}

typedef struct {
    const hsm_sigv4_header *h;
    size_t n;
} hdrs;

static const char *
header(void *ctx, const char *name)
{
    const hdrs *x = ctx;

    for (size_t i = 0; i < x->n; i++)
        if (strcasecmp(x->h[i].name, name) == 0)
            return x->h[i].value;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *nl, target[160];
    hsm_sigv4_header h[8];
    hsm_sigv4_request sr = {0};
    hsm_sigv4_params sp = {0};
    hsm_sigv4_result res;
    hdrs hx = {h, 0};
    kms_req req = {0};
    kms_resp resp;
    uint8_t *body;
    size_t body_len;
    char mode;

    if (size > 64 * 1024 || size < 3)
        return 0;
    setup();
    runs++;
    if (!(buf = malloc(size + 1)))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (!(nl = memchr(buf, '\n', size)) || buf[1] != ' ') {
        free(buf);
        return 0;
    }
    *nl = '\0';
    mode = buf[0];
    if (mode != 'u' && mode != 'b' && mode != 'o')
        mode = 's';
    snprintf(target, sizeof target, "TrentService.%.120s", buf + 2);
    body = (uint8_t *)nl + 1;
    body_len = size - (size_t)(body - (uint8_t *)buf);
    h[0] = (hsm_sigv4_header){"Host", "127.0.0.1:8300"};
    h[1] = (hsm_sigv4_header){"Content-Type", "application/x-amz-json-1.1"};
    h[2] = (hsm_sigv4_header){"X-Amz-Target", target};
    hx.n = 3;
    memset(&res, 0, sizeof res);
    if (mode != 'u') {
        sr.method = "POST";
        sr.path = "/";
        sr.headers = h;
        sr.header_count = 3;
        sr.body = body;
        sr.body_len = body_len;
        sp.access_key_id = akid;
        sp.secret_access_key = secret;
        sp.region = "us-east-1";
        sp.service = "kms";
        sp.time = (time_t)srv.now() - (mode == 'o' ? 600 : 0);
        if (hsm_sigv4_sign(&sr, &sp, &res) == HSM_SIGV4_OK) {
            for (size_t i = 0; i < res.add_count; i++)
                h[hx.n++] = res.add[i];
            h[hx.n++] = (hsm_sigv4_header){"Authorization", res.authorization};
        }
        if (mode == 'b' && body_len)
            body[0] ^= 1;
        else if (mode == 'b')
            mode = 's';
    }
    req.method = "POST";
    req.path = "/";
    req.body = body;
    req.body_len = body_len;
    req.header = header;
    req.header_ctx = &hx;
    req.remote = "192.0.2.7";
    kms_aws_dispatch(&srv, &req, &resp);
    /* every answer is a JSON object; errors carry __type; the audit
     * record never holds the secret access key */
    if (resp.status < 200 || resp.status > 599 || !resp.body || !resp.audit)
        abort();
    {
        json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (!json_is_object(j) ||
            (resp.status != 200 &&
             !json_is_string(json_object_get(j, "__type"))))
            abort();
        json_decref(j);
    }
    if (mode != 's' && resp.status == 200)
        abort(); /* a bad signature never gets through */
    if (mode == 's' && strcmp(buf + 2, "ListKeys") == 0 && body_len == 2 &&
        memcmp(body, "{}", 2) == 0 && resp.status != 200)
        abort(); /* and a good one does */
    {
        char *a = kms_json_dump(resp.audit, NULL);
        if (!a || strstr(a, secret))
            abort();
        free(a);
    }
    kms_resp_free(&resp);
    hsm_sigv4_result_free(&res);
    free(buf);
    return 0;
}
