/* SPDX-License-Identifier: Apache-2.0 */
/* Signs a fixed set of requests with our SigV4 signer and prints each, with
 * its inputs and our Authorization header, as one JSON document on stdout.
 * tests/cloud/node/sigv4_smithy.js recomputes every signature with
 * @smithy/signature-v4 and compares the headers byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sigv4.h"

typedef struct {
    const char *method, *path, *query, *body, *token, *region, *service;
    hsm_sigv4_header h[4];
    size_t nh;
    time_t t;
    unsigned flags;
} vcase;

static const vcase cases[] = {
    {"POST",
     "/",
     NULL,
     "{\"KeyId\":\"alias/zapdb\",\"CiphertextBlob\":\"AAEC\"}",
     NULL,
     "us-east-1",
     "kms",
     {{"host", "kms.us-east-1.amazonaws.com"},
      {"content-type", "application/x-amz-json-1.1"},
      {"x-amz-target", "TrentService.Decrypt"}},
     3,
     1700000000,
     0},
    {"POST",
     "/",
     NULL,
     "{\"KeyId\":\"k\",\"Message\":\"AAAA\"}",
     "FwoGZXIvYXdzEJr//////////session+token=",
     "eu-west-1",
     "kms",
     {{"host", "kms.eu-west-1.amazonaws.com"},
      {"content-type", "application/x-amz-json-1.1"},
      {"x-amz-target", "TrentService.Sign"}},
     3,
     1700000123,
     HSM_SIGV4_ADD_CONTENT_SHA256},
    {"GET",
     "/path with space/caf\xc3\xa9/./x/../y",
     "b=2&a=1&a=0&k%20y=v%2Fw&e=",
     "",
     NULL,
     "ap-southeast-2",
     "execute-api",
     {{"host", "example.com:8443"}, {"x-custom", "  a   b  "}},
     2,
     1600000000,
     HSM_SIGV4_ADD_CONTENT_SHA256},
    {"PUT",
     "/a%20b//c/",
     "x=%E2%9C%93",
     "payload \xe2\x9c\x93",
     "tok",
     "us-west-2",
     "service",
     {{"host", "127.0.0.1:9000"}, {"content-type", "text/plain"}},
     2,
     1234567890,
     0},
};

int
main(void)
{
    json_t *out = json_array();
    int rc = 0;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const vcase *c = &cases[i];
        hsm_sigv4_request q = {.method = c->method,
                               .path = c->path,
                               .query = c->query,
                               .headers = c->h,
                               .header_count = c->nh,
                               .body = (const uint8_t *)c->body,
                               .body_len = strlen(c->body)};
        hsm_sigv4_params p = {.access_key_id = "AKIDINTEROP",
                              .secret_access_key = "interop/secret+KEY",
                              .session_token = c->token,
                              .region = c->region,
                              .service = c->service,
                              .time = c->t,
                              .flags = c->flags};
        hsm_sigv4_result r;
        json_t *hdrs = json_object(), *o;

        if (hsm_sigv4_sign(&q, &p, &r) != HSM_SIGV4_OK) {
            rc = 1;
            continue;
        }
        for (size_t k = 0; k < c->nh; k++)
            json_object_set_new(hdrs, c->h[k].name, json_string(c->h[k].value));
        o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:I, "
                      "s:b, s:s, s:s}",
                      "method", c->method, "path", c->path, "headers", hdrs,
                      "query", c->query ? c->query : "", "body", c->body,
                      "akid", p.access_key_id, "secret", p.secret_access_key,
                      "region", c->region, "service", c->service, "time",
                      (json_int_t)c->t, "content_sha",
                      (c->flags & HSM_SIGV4_ADD_CONTENT_SHA256) != 0,
                      "authorization", r.authorization, "amz_date", r.amz_date);
        if (c->token)
            json_object_set_new(o, "token", json_string(c->token));
        json_array_append_new(out, o);
        hsm_sigv4_result_free(&r);
    }
    if (json_dumpf(out, stdout, JSON_INDENT(1)) != 0)
        rc = 1;
    printf("\n");
    json_decref(out);
    return rc;
}
