/* SPDX-License-Identifier: Apache-2.0 */
/* kms policy write|read|ls|rm */
#include "cli.h"

#include "kc.h"
#include "kmsd_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
cmd_policy(kms_cli *c)
{
    const char *sub = c->npos > 1 ? c->pos[1] : NULL;
    const char *name = c->npos > 2 ? c->pos[2] : NULL;
    const char *org = cli_org(c), *method = "GET";
    char path[512];
    json_t *body = NULL, *resp = NULL;
    long status;
    int rc = KMS_EXIT_USAGE;

    if (!sub || !org)
        return rc;
    if (strcmp(sub, "ls") == 0) {
        snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/policies", org);
    } else if (name && strlen(name) <= 64) {
        snprintf(path, sizeof path, "/v1/kms/orgs/%.64s/policies/%s", org,
                 name);
        if (strcmp(sub, "write") == 0) {
            uint8_t *buf = NULL;
            size_t n = 0;
            int e = c->file
                        ? kc_read_file(c->file, 256 * 1024, false, &buf, &n)
                        : kc_read_fd(STDIN_FILENO, 256 * 1024, false, &buf, &n);
            json_error_t je;
            if (e != 0) {
                fprintf(stderr, "kms: cannot read the policy document\n");
                return KMS_EXIT_ERROR;
            }
            body =
                json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
            free(buf);
            if (!body) {
                fprintf(stderr, "kms: policy is not valid JSON: %s (line %d)\n",
                        je.text, je.line);
                return KMS_EXIT_ERROR;
            }
            method = "PUT";
        } else if (strcmp(sub, "rm") == 0) {
            method = "DELETE";
        } else if (strcmp(sub, "read") != 0) {
            return rc;
        }
    } else {
        return rc;
    }
    if ((rc = cli_http(c, method, path, NULL, body, true, &status, &resp)) ==
            0 &&
        (rc = cli_status_exit(status, resp)) == KMS_EXIT_OK) {
        if (strcmp(sub, "ls") == 0 && !c->json) {
            size_t i;
            json_t *k;
            json_array_foreach(json_object_get(resp, "policies"), i, k)
                puts(json_string_value(k));
        } else if (strcmp(sub, "read") == 0 && !c->json) {
            char *s = kms_json_dumpf(resp, JSON_INDENT(2), NULL);
            if (s)
                puts(s);
            free(s);
        } else {
            cli_print(c, resp);
        }
    }
    json_decref(body);
    json_decref(resp);
    return rc;
}
