/* SPDX-License-Identifier: Apache-2.0 */
/* kms token create|revoke|lookup */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *
policy_array(const kms_cli *c)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < c->npolicies; i++)
        json_array_append_new(a, json_string(c->policies[i]));
    return a;
}

int
cmd_token(kms_cli *c)
{
    const char *sub = c->npos > 1 ? c->pos[1] : NULL;
    const char *acc = c->npos > 2 ? c->pos[2] : NULL;
    const char *org;
    char path[512];
    json_t *body = NULL, *resp = NULL;
    const char *method = "GET";
    long status;
    int rc = KMS_EXIT_USAGE;

    if (!sub)
        return rc;
    if ((strcmp(sub, "lookup") == 0 || strcmp(sub, "revoke") == 0) &&
        (c->self || !acc)) {
        method = strcmp(sub, "lookup") == 0 ? "GET" : "POST";
        snprintf(path, sizeof path, "/v1/kms/auth/token%s",
                 strcmp(sub, "revoke") == 0 ? "/revoke" : "");
    } else if (strcmp(sub, "renew") == 0) {
        method = "POST";
        snprintf(path, sizeof path, "/v1/kms/auth/token/renew");
        if (c->ttl)
            body = json_pack("{s:s}", "ttl", c->ttl);
    } else {
        if (!(org = cli_org(c)))
            return rc;
        if (strcmp(sub, "create") == 0) {
            method = "POST";
            snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/tokens", org);
            body = json_pack("{s:o}", "policies", policy_array(c));
            if (c->ttl)
                json_object_set_new(body, "ttl", json_string(c->ttl));
        } else if (acc && strlen(acc) <= 64 &&
                   (strcmp(sub, "lookup") == 0 || strcmp(sub, "revoke") == 0)) {
            method = strcmp(sub, "lookup") == 0 ? "GET" : "DELETE";
            snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/tokens/%s", org,
                     acc);
        } else {
            return rc;
        }
    }
    if ((rc = cli_http(c, method, path, NULL, body, true, &status, &resp)) ==
            0 &&
        (rc = cli_status_exit(status, resp)) == KMS_EXIT_OK) {
        if (c->raw && json_object_get(resp, "token"))
            puts(json_string_value(json_object_get(resp, "token")));
        else
            cli_print(c, resp);
    }
    json_decref(body);
    json_decref(resp);
    return rc;
}
