/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz kmsd's request router and JSON body handlers without a network:
 * each input is one request, dispatched on an in-memory store.
 *
 * Input: "METHOD PATH[?QUERY]\n" "TOKEN-SELECTOR\n" BODY
 * where the selector is "root", "reader" (a token limited by a policy),
 * "none", or anything else (sent as the token verbatim). */
/* fuzz-link: kmsd_core */
#include "kmsd_int.h"

#include "kc.h"

#include <stdlib.h>
#include <string.h>

static kms_srv srv;
static kms_store *store;
static char root[KMS_TOKEN_LEN + 1], reader[KMS_TOKEN_LEN + 1];
static unsigned runs;

static void
must(const char *method, const char *path, const char *env, const char *body,
     char *token_out)
{
    kms_kv q[1] = {{"env", env}};
    kms_req r = {0};
    kms_resp resp;

    r.method = method;
    r.path = path;
    r.query = q;
    r.query_count = env ? 1 : 0;
    r.token = root;
    r.body = (const uint8_t *)body;
    r.body_len = body ? strlen(body) : 0;
    kms_dispatch(&srv, &r, &resp);
    if (resp.status >= 300)
        abort();
    if (token_out) {
        json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
        kc_strlcpy(token_out, json_string_value(json_object_get(j, "token")),
                   KMS_TOKEN_LEN + 1);
        json_decref(j);
    }
    kms_resp_free(&resp);
}

static void
setup(void)
{
    if (store && runs % 2000 != 0)
        return;
    if (store) {
        kms_srv_fini(&srv);
        kms_store_close(store);
    }
    kms_json_init();
    if (kms_store_mem_open(&store) != KMS_ST_OK)
        abort();
    memset(&srv, 0, sizeof srv);
    if (kms_srv_init(&srv, store, 3, root, false, NULL) != KMS_OK ||
        kms_ratelimit_new(3, 60, &srv.rl) != KMS_OK)
        abort();
    must("POST", "/v1/kms/orgs", NULL, "{\"name\":\"acme\"}", NULL);
    must("PUT", "/v1/kms/orgs/acme/policies/r", NULL,
         "{\"rules\":[{\"path\":\"secrets/prod/"
         "**\",\"capabilities\":[\"read\",\"list\"]},"
         "{\"path\":\"secrets/prod/x/*\",\"capabilities\":[\"deny\"]}]}",
         NULL);
    must("POST", "/v1/kms/orgs/acme/tokens", NULL,
         "{\"policies\":[\"r\"],\"ttl\":\"1h\"}", reader);
    must("POST", "/v1/kms/orgs/acme/secrets/app/db", "prod",
         "{\"value\":\"v\"}", NULL);
}

/* Split "a=b&c&d=e" in place. */
static size_t
split_query(char *q, kms_kv *kv, size_t cap)
{
    size_t n = 0;

    while (q && *q && n < cap) {
        char *amp = strchr(q, '&'), *eq;
        if (amp)
            *amp = '\0';
        eq = strchr(q, '=');
        if (eq)
            *eq = '\0';
        kv[n].key = q;
        kv[n].value = eq ? eq + 1 : "";
        n++;
        q = amp ? amp + 1 : NULL;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *line1, *line2, *body, *qm, *sp;
    kms_kv kv[KMS_QUERY_MAX];
    kms_req req = {0};
    kms_resp resp;

    if (size > 64 * 1024)
        return 0;
    setup();
    runs++;
    if (!(buf = malloc(size + 1)))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    line1 = buf;
    line2 = strchr(line1, '\n');
    if (!line2)
        goto out;
    *line2++ = '\0';
    body = strchr(line2, '\n');
    if (body)
        *body++ = '\0';
    sp = strchr(line1, ' ');
    if (!sp)
        goto out;
    *sp = '\0';
    req.method = line1;
    req.path = sp + 1;
    if ((qm = strchr(sp + 1, '?'))) {
        *qm = '\0';
        req.query = kv;
        req.query_count = split_query(qm + 1, kv, KMS_QUERY_MAX);
    }
    if (strcmp(line2, "root") == 0)
        req.token = root;
    else if (strcmp(line2, "reader") == 0)
        req.token = reader;
    else if (strcmp(line2, "none") != 0)
        req.token = line2;
    req.remote = "192.0.2.7";
    if (body) {
        req.body = (const uint8_t *)body;
        req.body_len = size - (size_t)(body - buf);
    }
    if (kms_batchable(&req)) {
        const kms_req *rp[1] = {&req};
        kms_resp *sp2[1] = {&resp};
        kms_dispatch_batch(&srv, rp, sp2, 1);
    } else {
        kms_dispatch(&srv, &req, &resp);
    }
    /* every answer is a JSON object (or the metrics text) with an audit
     * record that never contains the token */
    if (resp.status < 200 || resp.status > 599 || !resp.body || !resp.audit)
        abort();
    if (strcmp(resp.content_type, "application/json") == 0) {
        json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
    }
    {
        char *a = kms_json_dump(resp.audit, NULL);
        if (!a || strstr(a, root) || strstr(a, reader))
            abort();
        free(a);
    }
    kms_resp_free(&resp);
out:
    free(buf);
    return 0;
}
