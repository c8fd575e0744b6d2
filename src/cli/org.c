/* SPDX-License-Identifier: Apache-2.0 */
/* kms org create|ls, kms identity create|ls|rm|admin */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
run(kms_cli *c, const char *method, const char *path, json_t *body,
    const char *list_key)
{
    json_t *resp = NULL;
    long status;
    int rc;

    if ((rc = cli_http(c, method, path, NULL, body, true, &status, &resp)) ==
            0 &&
        (rc = cli_status_exit(status, resp)) == KMS_EXIT_OK) {
        if (list_key && !c->json &&
            json_is_array(json_object_get(resp, list_key)) &&
            json_is_string(
                json_array_get(json_object_get(resp, list_key), 0))) {
            size_t i;
            json_t *k;
            json_array_foreach(json_object_get(resp, list_key), i, k)
                puts(json_string_value(k));
        } else {
            cli_print(c, resp);
        }
    }
    json_decref(body);
    json_decref(resp);
    return rc;
}

int
cmd_org(kms_cli *c)
{
    const char *sub = c->npos > 1 ? c->pos[1] : NULL;

    if (sub && strcmp(sub, "ls") == 0)
        return run(c, "GET", "/v1/kms/orgs", NULL, "orgs");
    if (sub && strcmp(sub, "create") == 0 && c->npos > 2)
        return run(c, "POST", "/v1/kms/orgs",
                   json_pack("{s:s}", "name", c->pos[2]), NULL);
    return KMS_EXIT_USAGE;
}

int
cmd_identity(kms_cli *c)
{
    const char *sub = c->npos > 1 ? c->pos[1] : NULL;
    const char *org;
    char path[512];
    json_t *body;

    if (!sub)
        return KMS_EXIT_USAGE;
    if (strcmp(sub, "admin") == 0) {
        if (!c->name)
            return KMS_EXIT_USAGE;
        body = json_pack("{s:s}", "name", c->name);
        if (c->ttl)
            json_object_set_new(body, "token_ttl", json_string(c->ttl));
        return run(c, "POST", "/v1/kms/sys/admins", body, NULL);
    }
    if (!(org = cli_org(c)))
        return KMS_EXIT_USAGE;
    if (strcmp(sub, "ls") == 0) {
        snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/identities", org);
        return run(c, "GET", path, NULL, NULL);
    }
    if (strcmp(sub, "rm") == 0 && c->npos > 2 && strlen(c->pos[2]) <= 64) {
        snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/identities/%s", org,
                 c->pos[2]);
        return run(c, "DELETE", path, NULL, NULL);
    }
    if (strcmp(sub, "create") == 0 && c->name) {
        json_t *pol = json_array();
        for (size_t i = 0; i < c->npolicies; i++)
            json_array_append_new(pol, json_string(c->policies[i]));
        body = json_pack("{s:s,s:o}", "name", c->name, "policies", pol);
        if (c->ttl)
            json_object_set_new(body, "token_ttl", json_string(c->ttl));
        snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/identities", org);
        return run(c, "POST", path, body, NULL);
    }
    return KMS_EXIT_USAGE;
}
