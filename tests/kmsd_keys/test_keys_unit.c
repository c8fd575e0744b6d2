/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of kmsd's key engine and AWS endpoint without a network, on
 * the memory store with a fake clock: what the HTTP tests cannot reach
 * (time passing: automatic rotation, the end of a deletion window, SigV4
 * skew) and the ciphertext format's parser. */
#include "keys_int.h"
#include "testutil.h"

#include "../../src/hsm/cloud/sigv4.h"
#include "kc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY 86400

static kms_srv srv;
static kms_store *store;
static char root[KMS_TOKEN_LEN + 1];
static int64_t fake_now = 1790000000;

static int64_t
now_fake(void)
{
    return fake_now;
}

static json_t *
call(const char *method, const char *path, const char *body, int *status)
{
    kms_req req = {0};
    kms_resp resp;
    json_t *j;

    req.method = method;
    req.path = path;
    req.token = root;
    req.body = (const uint8_t *)body;
    req.body_len = body ? strlen(body) : 0;
    kms_dispatch(&srv, &req, &resp);
    *status = resp.status;
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    kms_resp_free(&resp);
    return j;
}

static void
setup(void)
{
    int st;

    if (store)
        return;
    kms_json_init();
    REQUIRE(kms_store_mem_open(&store) == KMS_ST_OK);
    memset(&srv, 0, sizeof srv);
    srv.now = now_fake;
    REQUIRE(kms_srv_init(&srv, store, 3, root, false, NULL) == KMS_OK);
    json_decref(call("POST", "/v1/kms/orgs", "{\"name\":\"acme\"}", &st));
    REQUIRE(st == 201);
}

static int
version_of(json_t *j)
{
    return (int)json_integer_value(json_object_get(j, "version"));
}

static void
test_keys_rotation_period_elapsed_rotates_on_use(void)
{
    const char *enc = "{\"plaintext\":\"aGk=\"}";
    json_t *j;
    int st;

    setup();
    json_decref(call("POST", "/v1/kms/orgs/acme/keys",
                     "{\"name\":\"auto\",\"type\":\"aes256-gcm\","
                     "\"rotation_period\":\"2d\"}",
                     &st));
    CHECK_EQ(st, 201);
    j = call("POST", "/v1/kms/orgs/acme/keys/auto/encrypt", enc, &st);
    CHECK_EQ(version_of(j), 1);
    json_decref(j);
    fake_now += DAY;
    j = call("POST", "/v1/kms/orgs/acme/keys/auto/encrypt", enc, &st);
    CHECK_EQ(version_of(j), 1); /* not yet */
    json_decref(j);
    fake_now += DAY + 1;
    j = call("POST", "/v1/kms/orgs/acme/keys/auto/encrypt", enc, &st);
    CHECK_EQ(st, 200);
    CHECK_EQ(version_of(j), 2); /* rotated by the first use after 2 days */
    json_decref(j);
    j = call("POST", "/v1/kms/orgs/acme/keys/auto/encrypt", enc, &st);
    CHECK_EQ(version_of(j), 2); /* once */
    json_decref(j);
}

static void
test_keys_deletion_window_passed_key_gone(void)
{
    json_t *j;
    int st;

    setup();
    json_decref(call("POST", "/v1/kms/orgs/acme/keys",
                     "{\"name\":\"doomed\",\"type\":\"ed25519\"}", &st));
    CHECK_EQ(st, 201);
    json_decref(call("POST", "/v1/kms/orgs/acme/keys/doomed/delete",
                     "{\"pending_days\":7}", &st));
    CHECK_EQ(st, 200);
    fake_now += 7 * DAY - 10;
    json_decref(call("GET", "/v1/kms/orgs/acme/keys/doomed", NULL, &st));
    CHECK_EQ(st, 200); /* still there, pending */
    fake_now += 20;
    json_decref(call("GET", "/v1/kms/orgs/acme/keys/doomed", NULL, &st));
    CHECK_EQ(st, 404);
    json_decref(
        call("POST", "/v1/kms/orgs/acme/keys/doomed/cancel-delete", "{}", &st));
    CHECK_EQ(st, 404); /* too late to cancel */
    {
        /* the sweep removes the record, material and all */
        size_t n = 0;
        kms_txn txn = {0};
        uint8_t *v = NULL;
        size_t vl = 0;
        CHECK_EQ(kms_keys_sweep(&srv, &n), KMS_OK);
        CHECK(n >= 1);
        REQUIRE(kms_txn_begin(store, true, &txn) == KMS_ST_OK);
        CHECK_EQ(kms_txn_get(&txn, "keys/acme", "doomed", 6, &v, &vl),
                 KMS_ST_NOTFOUND);
        kms_txn_abort(&txn);
        CHECK_EQ(kms_keys_sweep(&srv, &n), KMS_OK);
        CHECK_EQ(n, 0u);
    }
    /* the name is free again, with new material */
    j = call("POST", "/v1/kms/orgs/acme/keys",
             "{\"name\":\"doomed\",\"type\":\"aes256-gcm\"}", &st);
    CHECK_EQ(st, 201);
    CHECK(strcmp(json_string_value(json_object_get(j, "type")), "aes256-gcm") ==
          0);
    json_decref(j);
}

static void
test_keys_blob_name_malformed_rejected(void)
{
    char name[KMS_NAME_MAX + 1];
    uint8_t b[64];

    memset(b, 0, sizeof b);
    memcpy(b, "kmsc\x01\x03k.1", 9);
    CHECK_EQ(kms_key_blob_name(b, sizeof b, name), KMS_OK);
    CHECK(strcmp(name, "k.1") == 0);
    CHECK_EQ(kms_key_blob_name(b, 5, name), KMS_ECIPHER);          /* short */
    CHECK_EQ(kms_key_blob_name(b, 9 + 4 + 27, name), KMS_ECIPHER); /* no tag */
    b[4] = 2;
    CHECK_EQ(kms_key_blob_name(b, sizeof b, name), KMS_ECIPHER); /* format */
    b[4] = 1;
    b[5] = 0;
    CHECK_EQ(kms_key_blob_name(b, sizeof b, name), KMS_ECIPHER); /* empty */
    b[5] = 65;
    CHECK_EQ(kms_key_blob_name(b, sizeof b, name), KMS_ECIPHER); /* long */
    memcpy(b, "kmsc\x01\x02..", 8);
    CHECK_EQ(kms_key_blob_name(b, sizeof b, name), KMS_ECIPHER); /* ".." */
    memcpy(b, "KMSC", 4);
    CHECK_EQ(kms_key_blob_name(b, sizeof b, name), KMS_ECIPHER); /* magic */
}

/* ---- AWS endpoint with a fake clock ----------------------------------- */

typedef struct {
    hsm_sigv4_header h[8];
    size_t n;
} hdrs;

static const char *
header(void *ctx, const char *name)
{
    hdrs *x = ctx;
    for (size_t i = 0; i < x->n; i++)
        if (strcasecmp(x->h[i].name, name) == 0)
            return x->h[i].value;
    return NULL;
}

static char akid[32], secret[64];

static void
aws_setup(void)
{
    char body[128];
    json_t *j;
    int st;

    setup();
    if (akid[0])
        return;
    json_decref(call("PUT", "/v1/kms/orgs/acme/policies/k",
                     "{\"rules\":[{\"path\":\"keys\",\"capabilities\":["
                     "\"list\"]}]}",
                     &st));
    j = call("POST", "/v1/kms/orgs/acme/identities",
             "{\"name\":\"aws\",\"policies\":[\"k\"]}", &st);
    REQUIRE(st == 201);
    snprintf(body, sizeof body, "{\"client_id\":\"%s\"}",
             json_string_value(json_object_get(j, "client_id")));
    json_decref(j);
    j = call("POST", "/v1/kms/orgs/acme/aws-keys", body, &st);
    REQUIRE(st == 201);
    kc_strlcpy(akid, json_string_value(json_object_get(j, "access_key_id")),
               sizeof akid);
    kc_strlcpy(secret,
               json_string_value(json_object_get(j, "secret_access_key")),
               sizeof secret);
    json_decref(j);
}

/* A ListKeys signed at `signed_at`, received at fake_now; returns the
 * status and the __type (static copy). */
static int
aws_list(int64_t signed_at, const char *sk, char *type, size_t type_cap)
{
    static const char body[] = "{}";
    hsm_sigv4_request r = {0};
    hsm_sigv4_params p = {0};
    hsm_sigv4_result res;
    hdrs x = {{{"Host", "kms.local"},
               {"Content-Type", "application/x-amz-json-1.1"},
               {"X-Amz-Target", "TrentService.ListKeys"}},
              3};
    kms_req req = {0};
    kms_resp resp;
    json_t *j;
    int status;

    r.method = "POST";
    r.path = "/";
    r.headers = x.h;
    r.header_count = 3;
    r.body = (const uint8_t *)body;
    r.body_len = 2;
    p.access_key_id = akid;
    p.secret_access_key = sk;
    p.region = "eu-west-1";
    p.service = "kms";
    p.time = (time_t)signed_at;
    memset(&res, 0, sizeof res);
    REQUIRE(hsm_sigv4_sign(&r, &p, &res) == HSM_SIGV4_OK);
    for (size_t i = 0; i < res.add_count; i++)
        x.h[x.n++] = res.add[i];
    x.h[x.n++] = (hsm_sigv4_header){"Authorization", res.authorization};
    req.method = "POST";
    req.path = "/";
    req.body = (const uint8_t *)body;
    req.body_len = 2;
    req.header = header;
    req.header_ctx = &x;
    kms_aws_dispatch(&srv, &req, &resp);
    status = resp.status;
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    kc_strlcpy(type, json_string_value(json_object_get(j, "__type")) ?: "",
               type_cap);
    json_decref(j);
    kms_resp_free(&resp);
    hsm_sigv4_result_free(&res);
    return status;
}

static void
test_aws_skew_window_enforced(void)
{
    char type[64];

    aws_setup();
    CHECK_EQ(aws_list(fake_now, secret, type, sizeof type), 200);
    CHECK_EQ(aws_list(fake_now - 299, secret, type, sizeof type), 200);
    CHECK_EQ(aws_list(fake_now - 301, secret, type, sizeof type), 400);
    CHECK(strcmp(type, "InvalidSignatureException") == 0);
    CHECK_EQ(aws_list(fake_now + 301, secret, type, sizeof type), 400);
    CHECK(strcmp(type, "InvalidSignatureException") == 0);
}

static void
test_aws_wrong_secret_rejected(void)
{
    char type[64], bad[64];

    aws_setup();
    kc_strlcpy(bad, secret, sizeof bad);
    bad[0] = bad[0] == 'A' ? 'B' : 'A';
    CHECK_EQ(aws_list(fake_now, bad, type, sizeof type), 400);
    CHECK(strcmp(type, "InvalidSignatureException") == 0);
}

static void
test_aws_unsigned_and_wrong_target_rejected(void)
{
    hdrs x = {{{"Content-Type", "application/x-amz-json-1.1"},
               {"X-Amz-Target", "TrentService.ListKeys"}},
              2};
    kms_req req = {0};
    kms_resp resp;

    setup();
    req.method = "POST";
    req.path = "/";
    req.body = (const uint8_t *)"{}";
    req.body_len = 2;
    req.header = header;
    req.header_ctx = &x;
    kms_aws_dispatch(&srv, &req, &resp);
    CHECK_EQ(resp.status, 400);
    CHECK(strstr(resp.body, "MissingAuthenticationTokenException") != NULL);
    kms_resp_free(&resp);
    x.h[1].value = "Other.ListKeys";
    kms_aws_dispatch(&srv, &req, &resp);
    CHECK_EQ(resp.status, 400);
    CHECK(strstr(resp.body, "UnknownOperationException") != NULL);
    kms_resp_free(&resp);
    req.method = "GET";
    kms_aws_dispatch(&srv, &req, &resp);
    CHECK_EQ(resp.status, 400);
    kms_resp_free(&resp);
}

int
main(int argc, char **argv)
{
    static const kt_case cases[] = {
        KT_CASE(test_keys_rotation_period_elapsed_rotates_on_use),
        KT_CASE(test_keys_deletion_window_passed_key_gone),
        KT_CASE(test_keys_blob_name_malformed_rejected),
        KT_CASE(test_aws_skew_window_enforced),
        KT_CASE(test_aws_wrong_secret_rejected),
        KT_CASE(test_aws_unsigned_and_wrong_target_rejected),
    };
    int rc = kt_main(argc, argv, cases, KT_COUNT(cases));

    kms_srv_fini(&srv);
    kms_store_close(store);
    return rc;
}
