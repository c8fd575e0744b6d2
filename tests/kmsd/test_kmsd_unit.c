/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of kmsd's core without a network: the router (kms_dispatch
 * on the memory store), the policy matcher and the audit chain. */
#include "kmsd_int.h"
#include "testutil.h"

#include "kc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kms_srv srv;
static kms_store *store;
static char root[KMS_TOKEN_LEN + 1];
static int64_t fake_now = 1700000000;

static int64_t
now_fake(void)
{
    return fake_now;
}

static void
setup(void)
{
    if (store)
        return;
    kms_json_init();
    REQUIRE(kms_store_mem_open(&store) == KMS_ST_OK);
    memset(&srv, 0, sizeof srv);
    srv.now = now_fake;
    srv.max_ttl = 86400;
    REQUIRE(kms_srv_init(&srv, store, 3, root, false, NULL) == KMS_OK);
    REQUIRE(kms_ratelimit_new(3, 60, &srv.rl) == KMS_OK);
}

typedef struct {
    int status;
    json_t *body;
    json_t *audit;
    unsigned retry_after;
} result;

static result
call_q(const char *method, const char *path, const kms_kv *q, size_t nq,
       const char *token, const char *body)
{
    kms_req req = {0};
    kms_resp resp;
    result r = {0};

    req.method = method;
    req.path = path;
    req.query = q;
    req.query_count = nq;
    req.token = token;
    req.remote = "192.0.2.1";
    req.body = (const uint8_t *)body;
    req.body_len = body ? strlen(body) : 0;
    kms_dispatch(&srv, &req, &resp);
    r.status = resp.status;
    r.body = json_loadb(resp.body, resp.body_len, 0, NULL);
    r.audit = json_incref(resp.audit);
    r.retry_after = resp.retry_after;
    kms_resp_free(&resp);
    return r;
}

static result
call(const char *method, const char *path, const char *env, const char *token,
     const char *body)
{
    kms_kv q[1] = {{"env", env}};
    return call_q(method, path, q, env ? 1 : 0, token, body);
}

static void
rfree(result *r)
{
    json_decref(r->body);
    json_decref(r->audit);
}

static const char *
errcode(const result *r)
{
    return json_string_value(
        json_object_get(json_object_get(r->body, "error"), "code"));
}

/* Create org `org` (idempotent) and a token with one policy. */
static void
make_token(const char *org, const char *policy_json, char *tok, size_t cap)
{
    char path[256], body[512];
    result r;

    snprintf(path, sizeof path, "{\"name\":\"%s\"}", org);
    r = call("POST", "/v1/kms/orgs", NULL, root, path);
    REQUIRE(r.status == 201 || r.status == 409);
    rfree(&r);
    snprintf(path, sizeof path, "/v1/kms/orgs/%s/policies/p", org);
    r = call("PUT", path, NULL, root, policy_json);
    REQUIRE(r.status == 201 || r.status == 200);
    rfree(&r);
    snprintf(path, sizeof path, "/v1/kms/orgs/%s/tokens", org);
    snprintf(body, sizeof body, "{\"policies\":[\"p\"],\"ttl\":\"1h\"}");
    r = call("POST", path, NULL, root, body);
    REQUIRE(r.status == 201);
    kc_strlcpy(tok, json_string_value(json_object_get(r.body, "token")), cap);
    rfree(&r);
}

/* ---- router ------------------------------------------------------------- */

static void
test_router_match_params_extracted(void)
{
    char buf[KMS_URL_MAX];
    const char *p[2], *rest;
    size_t n;

    CHECK(kms_route_match("/v1/kms/orgs/:org/secrets/*",
                          "/v1/kms/orgs/acme/secrets/a/b/c", buf, sizeof buf, p,
                          &n, &rest));
    CHECK_EQ(n, 1);
    CHECK(strcmp(p[0], "acme") == 0);
    CHECK(strcmp(rest, "a/b/c") == 0);
    CHECK(kms_route_match("/v1/kms/orgs/:org/secrets/*",
                          "/v1/kms/orgs/acme/secrets", buf, sizeof buf, p, &n,
                          &rest));
    CHECK(strcmp(rest, "") == 0);
}

static void
test_router_match_bad_paths_rejected(void)
{
    char buf[KMS_URL_MAX];
    const char *p[2], *rest;
    size_t n;

    CHECK(!kms_route_match("/v1/kms/orgs/:org", "/v1/kms/orgs//", buf,
                           sizeof buf, p, &n, &rest));
    CHECK(!kms_route_match("/v1/kms/orgs/:org/secrets/*",
                           "/v1/kms/orgs/acme/secrets/a//b", buf, sizeof buf, p,
                           &n, &rest));
    CHECK(!kms_route_match("/v1/kms/health", "/v1/kms/health/x", buf,
                           sizeof buf, p, &n, &rest));
    CHECK(!kms_route_match("/v1/kms/health", "v1/kms/health", buf, sizeof buf,
                           p, &n, &rest));
}

static void
test_router_unknown_route_404(void)
{
    setup();
    result r = call("GET", "/v1/kms/nope", NULL, root, NULL);
    CHECK_EQ(r.status, 404);
    CHECK(errcode(&r) && strcmp(errcode(&r), "no_route") == 0);
    rfree(&r);
}

static void
test_router_wrong_method_405(void)
{
    setup();
    result r = call("PATCH", "/v1/kms/health", NULL, NULL, NULL);
    CHECK_EQ(r.status, 405);
    rfree(&r);
}

static void
test_router_health_no_auth_200(void)
{
    setup();
    result r = call("GET", "/v1/kms/health", NULL, NULL, NULL);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(json_string_value(json_object_get(r.body, "status")), "ok") ==
          0);
    rfree(&r);
}

static void
test_router_missing_token_401(void)
{
    setup();
    result r = call("GET", "/v1/kms/orgs", NULL, NULL, NULL);
    CHECK_EQ(r.status, 401);
    CHECK(strcmp(json_string_value(json_object_get(r.audit, "decision")),
                 "deny") == 0);
    rfree(&r);
    r = call(
        "GET", "/v1/kms/orgs", NULL,
        "kms_0000000000000000000000000000000000000000000000000000000000000000",
        NULL);
    CHECK_EQ(r.status, 401);
    rfree(&r);
}

static void
test_router_duplicate_keys_400(void)
{
    setup();
    result r = call("POST", "/v1/kms/orgs", NULL, root,
                    "{\"name\":\"dup\",\"name\":\"dup2\"}");
    CHECK_EQ(r.status, 400);
    CHECK(strcmp(errcode(&r), "invalid_json") == 0);
    rfree(&r);
    r = call("GET", "/v1/kms/orgs/dup", NULL, root, NULL);
    CHECK_EQ(r.status, 404);
    rfree(&r);
}

static void
test_router_malformed_json_400(void)
{
    setup();
    result r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":");
    CHECK_EQ(r.status, 400);
    rfree(&r);
    r = call("POST", "/v1/kms/orgs", NULL, root, "[1,2]");
    CHECK_EQ(r.status, 400);
    rfree(&r);
    r = call("POST", "/v1/kms/orgs", NULL, root, NULL);
    CHECK_EQ(r.status, 400);
    rfree(&r);
}

static void
test_router_oversize_body_413(void)
{
    kms_req req = {0};
    kms_resp resp;

    setup();
    req.method = "POST";
    req.path = "/v1/kms/orgs";
    req.token = root;
    req.body_too_big = true;
    kms_dispatch(&srv, &req, &resp);
    CHECK_EQ(resp.status, 413);
    kms_resp_free(&resp);
}

static void
test_router_audit_record_has_no_token(void)
{
    char *s;

    setup();
    result r = call("GET", "/v1/kms/orgs", NULL, root, NULL);
    CHECK_EQ(r.status, 200);
    s = kms_json_dump(r.audit, NULL);
    REQUIRE(s);
    CHECK(strstr(s, root) == NULL);
    CHECK(strstr(s, "token_hmac") != NULL);
    free(s);
    rfree(&r);
}

/* ---- secrets ---------------------------------------------------------------
 */

static void
test_secrets_versions_cas_and_prune_work(void)
{
    const char *p = "/v1/kms/orgs/sv/secrets/app/db/pw";
    result r;
    kms_kv q[2] = {{"env", "prod"}, {"version", "1"}};

    setup();
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"sv\"}");
    rfree(&r);
    r = call("POST", p, "prod", root, "{\"value\":\"v1\",\"cas\":0}");
    CHECK_EQ(r.status, 201);
    rfree(&r);
    r = call("POST", p, "prod", root, "{\"value\":\"v2\",\"cas\":0}");
    CHECK_EQ(r.status, 409);
    rfree(&r);
    r = call("POST", p, "prod", root, "{\"value\":\"v2\",\"cas\":1}");
    CHECK_EQ(r.status, 200);
    CHECK_EQ(json_integer_value(json_object_get(r.body, "version")), 2);
    CHECK(json_object_get(r.audit, "value_hmac") != NULL);
    rfree(&r);
    r = call_q("GET", p, q, 2, root, NULL);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(json_string_value(json_object_get(r.body, "value")), "v1") ==
          0);
    rfree(&r);
    /* max_versions is 3 here: after v5, v1 and v2 are pruned */
    for (int i = 3; i <= 5; i++) {
        r = call("POST", p, "prod", root, "{\"value\":\"vx\"}");
        CHECK_EQ(r.status, 200);
        rfree(&r);
    }
    r = call_q("GET", p, q, 2, root, NULL);
    CHECK_EQ(r.status, 404);
    rfree(&r);
    r = call("GET", p, "prod", root, NULL);
    CHECK_EQ(json_integer_value(json_object_get(r.body, "version")), 5);
    rfree(&r);
}

static void
test_secrets_env_missing_400(void)
{
    setup();
    result r = call("GET", "/v1/kms/orgs/sv/secrets/app/x", NULL, root, NULL);
    CHECK_EQ(r.status, 400);
    rfree(&r);
}

static void
test_secrets_bad_paths_400(void)
{
    static const char *bad[] = {
        "/v1/kms/orgs/sv/secrets/app/../x", "/v1/kms/orgs/sv/secrets/./x",
        "/v1/kms/orgs/sv/secrets/a b",      "/v1/kms/orgs/sv/secrets/a$b",
        "/v1/kms/orgs/SV/secrets/x",
    };
    setup();
    for (size_t i = 0; i < KT_COUNT(bad); i++) {
        result r = call("POST", bad[i], "prod", root, "{\"value\":\"x\"}");
        CHECK_EQ(r.status, 400);
        rfree(&r);
    }
}

static void
test_secrets_delete_undelete_destroy_work(void)
{
    const char *p = "/v1/kms/orgs/sv/secrets/d/s";
    char up[128], dp[128];
    result r;

    setup();
    snprintf(up, sizeof up, "%s:undelete", p);
    snprintf(dp, sizeof dp, "%s:destroy", p);
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"sv\"}");
    rfree(&r);
    r = call("POST", p, "dev", root, "{\"value\":\"a\"}");
    rfree(&r);
    r = call("DELETE", p, "dev", root, NULL);
    CHECK_EQ(r.status, 200);
    rfree(&r);
    r = call("GET", p, "dev", root, NULL);
    CHECK_EQ(r.status, 404);
    CHECK(strcmp(errcode(&r), "deleted") == 0);
    rfree(&r);
    r = call("POST", up, "dev", root, "{\"versions\":[1]}");
    CHECK_EQ(r.status, 200);
    rfree(&r);
    r = call("GET", p, "dev", root, NULL);
    CHECK_EQ(r.status, 200);
    rfree(&r);
    r = call("POST", dp, "dev", root, "{\"versions\":[1]}");
    CHECK_EQ(r.status, 200);
    rfree(&r);
    r = call("GET", p, "dev", root, NULL);
    CHECK_EQ(r.status, 404);
    CHECK(strcmp(errcode(&r), "destroyed") == 0);
    rfree(&r);
    r = call("POST", up, "dev", root, "{\"versions\":[1]}");
    CHECK_EQ(r.status, 404);
    rfree(&r);
}

/* ---- write batching ------------------------------------------------------ */

static void
batch_run(kms_req *reqs, kms_resp *resps, size_t n)
{
    const kms_req *rp[8];
    kms_resp *sp[8];

    for (size_t i = 0; i < n; i++) {
        rp[i] = &reqs[i];
        sp[i] = &resps[i];
    }
    kms_dispatch_batch(&srv, rp, sp, n);
}

static kms_req
wreq(const char *method, const char *path, const kms_kv *q, const char *body)
{
    kms_req r = {0};
    r.method = method;
    r.path = path;
    r.query = q;
    r.query_count = 1;
    r.token = root;
    r.body = (const uint8_t *)body;
    r.body_len = body ? strlen(body) : 0;
    return r;
}

static void
test_batch_sequential_semantics_kept(void)
{
    static const kms_kv q[1] = {{"env", "dev"}};
    kms_req reqs[3];
    kms_resp resps[3];
    result r;

    setup();
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"bt\"}");
    rfree(&r);
    reqs[0] = wreq("POST", "/v1/kms/orgs/bt/secrets/a", q,
                   "{\"value\":\"1\",\"cas\":0}");
    reqs[1] = wreq("POST", "/v1/kms/orgs/bt/secrets/a", q,
                   "{\"value\":\"2\",\"cas\":0}");
    reqs[2] = wreq("POST", "/v1/kms/orgs/bt/secrets/a", q,
                   "{\"value\":\"3\",\"cas\":1}");
    CHECK(kms_batchable(&reqs[0]));
    batch_run(reqs, resps, 3);
    CHECK_EQ(resps[0].status, 201);
    CHECK_EQ(resps[1].status, 409); /* saw the first write */
    CHECK_EQ(resps[2].status, 200);
    for (int i = 0; i < 3; i++)
        kms_resp_free(&resps[i]);
    r = call("GET", "/v1/kms/orgs/bt/secrets/a", "dev", root, NULL);
    CHECK(strcmp(json_string_value(json_object_get(r.body, "value")), "3") ==
          0);
    rfree(&r);
}

static void
test_batch_failed_request_rolled_back(void)
{
    static const kms_kv q[1] = {{"env", "dev"}};
    kms_req reqs[2];
    kms_resp resps[2];
    kms_kv vq[2] = {{"env", "dev"}, {"version", "1"}};
    result r;

    setup();
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"bt\"}");
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/bt/secrets/rb", "dev", root,
             "{\"value\":\"keep\"}");
    CHECK_EQ(r.status, 201);
    rfree(&r);
    /* destroys v1's value, then fails on v99: nothing of it may remain */
    reqs[0] = wreq("POST", "/v1/kms/orgs/bt/secrets/rb:destroy", q,
                   "{\"versions\":[1,99]}");
    reqs[1] =
        wreq("POST", "/v1/kms/orgs/bt/secrets/other", q, "{\"value\":\"x\"}");
    batch_run(reqs, resps, 2);
    CHECK_EQ(resps[0].status, 404);
    CHECK_EQ(resps[1].status, 201);
    for (int i = 0; i < 2; i++)
        kms_resp_free(&resps[i]);
    r = call_q("GET", "/v1/kms/orgs/bt/secrets/rb", vq, 2, root, NULL);
    CHECK_EQ(r.status, 200);
    CHECK(strcmp(json_string_value(json_object_get(r.body, "value")), "keep") ==
          0);
    rfree(&r);
    r = call("GET", "/v1/kms/orgs/bt/secrets/other", "dev", root, NULL);
    CHECK_EQ(r.status, 200);
    rfree(&r);
}

static void
test_batch_login_not_batchable(void)
{
    kms_req r = {0};
    r.method = "POST";
    r.path = "/v1/kms/auth/login";
    CHECK(!kms_batchable(&r));
    r.method = "GET";
    r.path = "/v1/kms/orgs/x/secrets/a";
    CHECK(!kms_batchable(&r));
}

/* ---- policies -------------------------------------------------------------
 */

static void
test_policy_glob_semantics(void)
{
    CHECK(kms_glob_match("secrets/prod/*", "secrets/prod/a"));
    CHECK(!kms_glob_match("secrets/prod/*", "secrets/prod/a/b"));
    CHECK(kms_glob_match("secrets/prod/**", "secrets/prod/a/b"));
    CHECK(kms_glob_match("secrets/*/app/**", "secrets/prod/app"));
    CHECK(!kms_glob_match("secrets/*/app/**", "secrets/prod/apple"));
    CHECK(kms_glob_match("secrets/*/app/**", "secrets/dev/app/x/y"));
    CHECK(!kms_glob_match("secrets/*/app/**", "secrets/dev/web/x"));
    CHECK(kms_glob_match("secrets/prod/db-*", "secrets/prod/db-main"));
    CHECK(!kms_glob_match("secrets/prod", "secrets/prod/x"));
    CHECK(!kms_valid_glob("/abs"));
    CHECK(!kms_valid_glob("a//b"));
    CHECK(!kms_valid_glob("a/***"));
    CHECK(!kms_valid_glob("a/$"));
}

static json_t *
pols(const char *text)
{
    json_t *p = json_loads(text, 0, NULL);
    REQUIRE(p);
    return p;
}

static void
test_policy_deny_by_default(void)
{
    json_t *p = pols("[{\"rules\":[{\"path\":\"secrets/dev/"
                     "**\",\"capabilities\":[\"read\"]}]}]");
    CHECK(!kms_policy_allows(p, "secrets/prod/x", KMS_CAP_READ));
    CHECK(!kms_policy_allows(p, "secrets/dev/x", KMS_CAP_UPDATE));
    CHECK(kms_policy_allows(p, "secrets/dev/x", KMS_CAP_READ));
    json_decref(p);
}

static void
test_policy_most_specific_wins(void)
{
    json_t *p = pols(
        "[{\"rules\":[{\"path\":\"secrets/prod/"
        "**\",\"capabilities\":[\"read\",\"update\"]},"
        "{\"path\":\"secrets/prod/app/key\",\"capabilities\":[\"read\"]}]}]");
    CHECK(kms_policy_allows(p, "secrets/prod/app/other", KMS_CAP_UPDATE));
    CHECK(!kms_policy_allows(p, "secrets/prod/app/key", KMS_CAP_UPDATE));
    CHECK(kms_policy_allows(p, "secrets/prod/app/key", KMS_CAP_READ));
    json_decref(p);
}

static void
test_policy_deny_overrides(void)
{
    json_t *p = pols("[{\"rules\":[{\"path\":\"secrets/prod/app/"
                     "key\",\"capabilities\":[\"read\"]}]},"
                     "{\"rules\":[{\"path\":\"secrets/prod/"
                     "**\",\"capabilities\":[\"deny\"]}]}]");
    CHECK(!kms_policy_allows(p, "secrets/prod/app/key", KMS_CAP_READ));
    json_decref(p);
}

static void
test_policy_equal_specificity_merges(void)
{
    json_t *p = pols("[{\"rules\":[{\"path\":\"secrets/dev/"
                     "*\",\"capabilities\":[\"read\"]}]},"
                     "{\"rules\":[{\"path\":\"secrets/dev/"
                     "*\",\"capabilities\":[\"update\"]}]}]");
    CHECK(kms_policy_allows(p, "secrets/dev/x", KMS_CAP_READ));
    CHECK(kms_policy_allows(p, "secrets/dev/x", KMS_CAP_UPDATE));
    json_decref(p);
}

static void
test_policy_invalid_documents_rejected(void)
{
    static const char *bad[] = {
        "{}",
        "{\"rules\":[]}",
        "{\"rules\":[{\"path\":\"a\"}]}",
        "{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"fly\"]}]}",
        "{\"rules\":[{\"path\":\"/a\",\"capabilities\":[\"read\"]}]}",
        "{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"],\"x\":1}]}",
        "{\"rules\":[{\"path\":\"a\",\"capabilities\":[\"read\"]}],\"extra\":"
        "1}",
    };
    const char *why;
    for (size_t i = 0; i < KT_COUNT(bad); i++) {
        json_t *d = json_loads(bad[i], 0, NULL);
        CHECK(kms_policy_validate(d, &why) == KMS_EINVAL);
        json_decref(d);
    }
}

static void
test_policy_enforced_through_router_403(void)
{
    char tok[KMS_TOKEN_LEN + 1];
    result r;

    setup();
    make_token("pe",
               "{\"rules\":[{\"path\":\"secrets/dev/"
               "**\",\"capabilities\":[\"read\",\"create\",\"list\"]}]}",
               tok, sizeof tok);
    r = call("POST", "/v1/kms/orgs/pe/secrets/a", "dev", tok,
             "{\"value\":\"1\"}");
    CHECK_EQ(r.status, 201);
    rfree(&r);
    /* update needs "update" */
    r = call("POST", "/v1/kms/orgs/pe/secrets/a", "dev", tok,
             "{\"value\":\"2\"}");
    CHECK_EQ(r.status, 403);
    CHECK(strcmp(json_string_value(json_object_get(r.audit, "decision")),
                 "deny") == 0);
    rfree(&r);
    r = call("GET", "/v1/kms/orgs/pe/secrets/a", "prod", tok, NULL);
    CHECK_EQ(r.status, 403);
    rfree(&r);
    r = call("DELETE", "/v1/kms/orgs/pe/secrets/a", "dev", tok, NULL);
    CHECK_EQ(r.status, 403);
    rfree(&r);
    r = call("GET", "/v1/kms/orgs/pe/policies", NULL, tok, NULL);
    CHECK_EQ(r.status, 403);
    rfree(&r);
    r = call("POST", "/v1/kms/orgs", NULL, tok, "{\"name\":\"evil\"}");
    CHECK_EQ(r.status, 403);
    rfree(&r);
}

static void
test_policy_cross_org_403(void)
{
    char tok[KMS_TOKEN_LEN + 1];
    result r;

    setup();
    make_token("orga",
               "{\"rules\":[{\"path\":\"**\",\"capabilities\":[\"read\","
               "\"create\",\"update\",\"list\",\"admin\"]}]}",
               tok, sizeof tok);
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"orgb\"}");
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/orgb/secrets/x", "dev", root,
             "{\"value\":\"b\"}");
    CHECK_EQ(r.status, 201);
    rfree(&r);
    r = call("GET", "/v1/kms/orgs/orgb/secrets/x", "dev", tok, NULL);
    CHECK_EQ(r.status, 403);
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/orgb/tokens", NULL, tok,
             "{\"policies\":[]}");
    CHECK_EQ(r.status, 403);
    rfree(&r);
}

static void
test_token_expiry_401(void)
{
    char tok[KMS_TOKEN_LEN + 1];
    result r;

    setup();
    make_token("exp",
               "{\"rules\":[{\"path\":\"**\",\"capabilities\":[\"read\"]}]}",
               tok, sizeof tok);
    r = call("GET", "/v1/kms/auth/token", NULL, tok, NULL);
    CHECK_EQ(r.status, 200);
    rfree(&r);
    fake_now += 3601;
    r = call("GET", "/v1/kms/auth/token", NULL, tok, NULL);
    CHECK_EQ(r.status, 401);
    rfree(&r);
}

static void
test_token_subset_policies_enforced(void)
{
    char tok[KMS_TOKEN_LEN + 1];
    result r;

    setup();
    make_token(
        "sub",
        "{\"rules\":[{\"path\":\"sys/tokens\",\"capabilities\":[\"create\"]}]}",
        tok, sizeof tok);
    r = call("PUT", "/v1/kms/orgs/sub/policies/big", NULL, root,
             "{\"rules\":[{\"path\":\"**\",\"capabilities\":[\"read\"]}]}");
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/sub/tokens", NULL, tok,
             "{\"policies\":[\"big\"]}");
    CHECK_EQ(r.status, 403);
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/sub/tokens", NULL, tok,
             "{\"policies\":[\"p\"]}");
    CHECK_EQ(r.status, 201);
    rfree(&r);
}

static void
test_root_revoke_needs_admin_403(void)
{
    char root2[KMS_TOKEN_LEN + 1];
    kms_store *st;
    kms_srv s2;
    kms_req req = {0};
    kms_resp resp;

    REQUIRE(kms_store_mem_open(&st) == KMS_ST_OK);
    memset(&s2, 0, sizeof s2);
    REQUIRE(kms_srv_init(&s2, st, 10, root2, false, NULL) == KMS_OK);
    req.method = "POST";
    req.path = "/v1/kms/auth/token/revoke";
    req.token = root2;
    kms_dispatch(&s2, &req, &resp);
    CHECK_EQ(resp.status, 403);
    kms_resp_free(&resp);
    req.path = "/v1/kms/sys/admins";
    req.body = (const uint8_t *)"{\"name\":\"admin\"}";
    req.body_len = strlen((const char *)req.body);
    kms_dispatch(&s2, &req, &resp);
    CHECK_EQ(resp.status, 201);
    kms_resp_free(&resp);
    req.path = "/v1/kms/auth/token/revoke";
    req.body = NULL;
    req.body_len = 0;
    kms_dispatch(&s2, &req, &resp);
    CHECK_EQ(resp.status, 200);
    kms_resp_free(&resp);
    req.path = "/v1/kms/orgs";
    req.method = "GET";
    kms_dispatch(&s2, &req, &resp);
    CHECK_EQ(resp.status, 401);
    kms_resp_free(&resp);
    kms_srv_fini(&s2);
    kms_store_close(st);
}

static void
test_login_rate_limited_429(void)
{
    result r;
    const char *cid, *sec;
    char body[512], bad[512];

    setup();
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"rl\"}");
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/rl/identities", NULL, root,
             "{\"name\":\"ci\",\"policies\":[]}");
    REQUIRE(r.status == 201);
    cid = json_string_value(json_object_get(r.body, "client_id"));
    sec = json_string_value(json_object_get(r.body, "client_secret"));
    snprintf(body, sizeof body,
             "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}", cid, sec);
    snprintf(bad, sizeof bad,
             "{\"client_id\":\"%s\",\"client_secret\":\"wrong\"}", cid);
    rfree(&r);
    r = call("POST", "/v1/kms/auth/login", NULL, NULL, body);
    CHECK_EQ(r.status, 200);
    CHECK(json_string_value(json_object_get(r.body, "token")) != NULL);
    rfree(&r);
    for (int i = 0; i < 3; i++) {
        r = call("POST", "/v1/kms/auth/login", NULL, NULL, bad);
        CHECK_EQ(r.status, 401);
        rfree(&r);
    }
    r = call("POST", "/v1/kms/auth/login", NULL, NULL, body);
    CHECK_EQ(r.status, 429);
    CHECK(r.retry_after > 0);
    rfree(&r);
    fake_now += 61;
    r = call("POST", "/v1/kms/auth/login", NULL, NULL, body);
    CHECK_EQ(r.status, 200);
    rfree(&r);
}

static void
test_identity_delete_revokes_its_tokens(void)
{
    result r;
    char body[512], path[128], tok[KMS_TOKEN_LEN + 1];
    const char *cid, *sec;

    setup();
    r = call("POST", "/v1/kms/orgs", NULL, root, "{\"name\":\"idd\"}");
    rfree(&r);
    r = call("POST", "/v1/kms/orgs/idd/identities", NULL, root,
             "{\"name\":\"svc\"}");
    REQUIRE(r.status == 201);
    cid = json_string_value(json_object_get(r.body, "client_id"));
    sec = json_string_value(json_object_get(r.body, "client_secret"));
    snprintf(body, sizeof body,
             "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}", cid, sec);
    snprintf(path, sizeof path, "/v1/kms/orgs/idd/identities/%s", cid);
    rfree(&r);
    r = call_q("POST", "/v1/kms/auth/login", NULL, 0, NULL, body);
    REQUIRE(r.status == 200);
    kc_strlcpy(tok, json_string_value(json_object_get(r.body, "token")),
               sizeof tok);
    rfree(&r);
    r = call("GET", "/v1/kms/auth/token", NULL, tok, NULL);
    CHECK_EQ(r.status, 200);
    rfree(&r);
    r = call("DELETE", path, NULL, root, NULL);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(json_integer_value(json_object_get(r.body, "tokens_revoked")), 1);
    rfree(&r);
    r = call("GET", "/v1/kms/auth/token", NULL, tok, NULL);
    CHECK_EQ(r.status, 401);
    rfree(&r);
    r = call_q("POST", "/v1/kms/auth/login", NULL, 0, NULL, body);
    CHECK_EQ(r.status, 401);
    rfree(&r);
}

static void
test_token_sweep_removes_only_expired(void)
{
    char t1[KMS_TOKEN_LEN + 1], t2[KMS_TOKEN_LEN + 1];
    size_t n = 0;
    result r;

    setup();
    make_token("sw",
               "{\"rules\":[{\"path\":\"**\",\"capabilities\":[\"read\"]}]}",
               t1, sizeof t1);
    fake_now += 1800;
    make_token("sw",
               "{\"rules\":[{\"path\":\"**\",\"capabilities\":[\"read\"]}]}",
               t2, sizeof t2);
    fake_now += 1801; /* t1 expired, t2 not */
    CHECK(kms_srv_sweep(&srv, &n) == KMS_OK);
    CHECK(n >= 1);
    fake_now -= 3601; /* even back in time, t1 is gone for good */
    r = call("GET", "/v1/kms/auth/token", NULL, t1, NULL);
    CHECK_EQ(r.status, 401);
    rfree(&r);
    r = call("GET", "/v1/kms/auth/token", NULL, t2, NULL);
    CHECK_EQ(r.status, 200);
    rfree(&r);
    r = call("GET", "/v1/kms/orgs", NULL, root, NULL);
    CHECK_EQ(r.status, 200); /* the root token never expires */
    rfree(&r);
    fake_now += 3601;
}

static void
test_ratelimit_flood_keeps_lockout(void)
{
    kms_ratelimit *rl = NULL;
    char k[64];

    REQUIRE(kms_ratelimit_new(3, 60, &rl) == KMS_OK);
    for (int i = 0; i < 3; i++)
        kms_ratelimit_fail(rl, "id:victim", 1000);
    CHECK(kms_ratelimit_check(rl, "id:victim", 1000) > 0);
    /* an attacker fails with many other names to evict the entry */
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof k, "id:other-%d", i);
        kms_ratelimit_fail(rl, k, 1001);
    }
    CHECK(kms_ratelimit_check(rl, "id:victim", 1002) > 0);
    CHECK_EQ(kms_ratelimit_check(rl, "id:victim", 1061), 0);
    kms_ratelimit_free(rl);
}

/* ---- audit chain ------------------------------------------------------------
 */

static char *
write_log(const char *dir, int lines)
{
    char prev[65], hash[65];
    char *path = strdup(kt_path(dir, "audit.log"));
    FILE *f = fopen(path, "w");

    memset(prev, '0', 64);
    prev[64] = 0;
    for (int i = 1; i <= lines; i++) {
        json_t *rec = json_pack("{s:i,s:s}", "n", i, "route", "x");
        size_t n;
        char *l = kms_audit_line(rec, (uint64_t)i, prev, hash, &n);
        fwrite(l, 1, n, f);
        fputc('\n', f);
        free(l);
        json_decref(rec);
        memcpy(prev, hash, sizeof prev);
    }
    fclose(f);
    return path;
}

static void
test_audit_chain_intact_verifies(void)
{
    uint64_t lines, bad;
    const char *why;
    char *p = write_log(kt_tmpdir(), 5);

    CHECK_EQ(kms_audit_verify_file(p, &lines, &bad, &why), 0);
    CHECK_EQ(lines, 5);
    free(p);
}

static void
rewrite(const char *path, int drop, int swap_a, int swap_b, int edit)
{
    char *lines[16] = {0}, buf[4096];
    int n = 0;
    FILE *f = fopen(path, "r");

    while (n < 16 && fgets(buf, sizeof buf, f))
        lines[n++] = strdup(buf);
    fclose(f);
    if (swap_a) {
        char *t = lines[swap_a - 1];
        lines[swap_a - 1] = lines[swap_b - 1];
        lines[swap_b - 1] = t;
    }
    if (edit) {
        char *q = strstr(lines[edit - 1], "\"n\":");
        q[4] = '9';
    }
    f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        if (i + 1 != drop)
            fputs(lines[i], f);
        free(lines[i]);
    }
    fclose(f);
}

static void
test_audit_chain_edit_detected_at_line(void)
{
    uint64_t lines, bad;
    const char *why;
    char *p = write_log(kt_tmpdir(), 5);

    rewrite(p, 0, 0, 0, 3);
    CHECK_EQ(kms_audit_verify_file(p, &lines, &bad, &why), 1);
    CHECK_EQ(bad, 3);
    free(p);
}

static void
test_audit_chain_removal_detected_at_line(void)
{
    uint64_t lines, bad;
    const char *why;
    char *p = write_log(kt_tmpdir(), 5);

    rewrite(p, 2, 0, 0, 0);
    CHECK_EQ(kms_audit_verify_file(p, &lines, &bad, &why), 1);
    CHECK_EQ(bad, 2);
    free(p);
}

static void
test_audit_chain_reorder_detected_at_line(void)
{
    uint64_t lines, bad;
    const char *why;
    char *p = write_log(kt_tmpdir(), 5);

    rewrite(p, 0, 3, 4, 0);
    CHECK_EQ(kms_audit_verify_file(p, &lines, &bad, &why), 1);
    CHECK_EQ(bad, 3);
    free(p);
}

static void
test_audit_writer_appends_chain(void)
{
    const char *dir = kt_tmpdir();
    const char *path = kt_path(dir, "a.log");
    kms_audit *a = NULL;
    char detail[256];
    uint64_t lines, bad;
    const char *why;

    for (int round = 0; round < 2; round++) {
        REQUIRE(kms_audit_open(path, NULL, NULL, &a, detail, sizeof detail) ==
                KMS_OK);
        for (int i = 0; i < 10; i++)
            kms_audit_submit(a, json_pack("{s:i}", "i", i), false, NULL, NULL);
        kms_audit_close(a);
    }
    CHECK_EQ(kms_audit_verify_file(path, &lines, &bad, &why), 0);
    CHECK_EQ(lines, 20);
}

static void
test_audit_unwritable_fails_closed(void)
{
    kms_audit *a = NULL;
    char detail[256];

    if (access("/dev/full", W_OK) != 0)
        return;
    REQUIRE(kms_audit_open("/dev/full", NULL, NULL, &a, detail,
                           sizeof detail) == KMS_OK);
    kms_audit_submit(a, json_pack("{s:i}", "i", 1), false, NULL, NULL);
    kms_audit_close(a);
    REQUIRE(kms_audit_open("/dev/full", NULL, NULL, &a, detail,
                           sizeof detail) == KMS_OK);
    srv.audit = a;
    kms_audit_submit(a, json_pack("{s:i}", "i", 1), false, NULL, NULL);
    for (int i = 0; i < 200 && kms_audit_healthy(a); i++)
        usleep(5000);
    result r = call("GET", "/v1/kms/health", NULL, NULL, NULL);
    CHECK_EQ(r.status, 503);
    rfree(&r);
    srv.audit = NULL;
    kms_audit_close(a);
}

static void
teardown(void)
{
    kms_srv_fini(&srv);
    kms_store_close(store);
    store = NULL;
}

static void
test_zz_teardown_frees_everything(void)
{
    setup();
    teardown();
    CHECK(store == NULL);
}

static const kt_case cases[] = {
    KT_CASE(test_router_match_params_extracted),
    KT_CASE(test_router_match_bad_paths_rejected),
    KT_CASE(test_router_unknown_route_404),
    KT_CASE(test_router_wrong_method_405),
    KT_CASE(test_router_health_no_auth_200),
    KT_CASE(test_router_missing_token_401),
    KT_CASE(test_router_duplicate_keys_400),
    KT_CASE(test_router_malformed_json_400),
    KT_CASE(test_router_oversize_body_413),
    KT_CASE(test_router_audit_record_has_no_token),
    KT_CASE(test_secrets_versions_cas_and_prune_work),
    KT_CASE(test_secrets_env_missing_400),
    KT_CASE(test_secrets_bad_paths_400),
    KT_CASE(test_secrets_delete_undelete_destroy_work),
    KT_CASE(test_batch_sequential_semantics_kept),
    KT_CASE(test_batch_failed_request_rolled_back),
    KT_CASE(test_batch_login_not_batchable),
    KT_CASE(test_policy_glob_semantics),
    KT_CASE(test_policy_deny_by_default),
    KT_CASE(test_policy_most_specific_wins),
    KT_CASE(test_policy_deny_overrides),
    KT_CASE(test_policy_equal_specificity_merges),
    KT_CASE(test_policy_invalid_documents_rejected),
    KT_CASE(test_policy_enforced_through_router_403),
    KT_CASE(test_policy_cross_org_403),
    KT_CASE(test_token_expiry_401),
    KT_CASE(test_token_subset_policies_enforced),
    KT_CASE(test_root_revoke_needs_admin_403),
    KT_CASE(test_login_rate_limited_429),
    KT_CASE(test_identity_delete_revokes_its_tokens),
    KT_CASE(test_ratelimit_flood_keeps_lockout),
    KT_CASE(test_token_sweep_removes_only_expired),
    KT_CASE(test_audit_chain_intact_verifies),
    KT_CASE(test_audit_chain_edit_detected_at_line),
    KT_CASE(test_audit_chain_removal_detected_at_line),
    KT_CASE(test_audit_chain_reorder_detected_at_line),
    KT_CASE(test_audit_writer_appends_chain),
    KT_CASE(test_audit_unwritable_fails_closed),
    KT_CASE(test_zz_teardown_frees_everything),
};

int
main(int argc, char **argv)
{
    kms_json_init();
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
