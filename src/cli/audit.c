/* SPDX-License-Identifier: Apache-2.0 */
/* kms audit verify FILE: check the hash chain offline. */
#include "cli.h"

#include "kmsd_int.h"

#include <stdio.h>
#include <string.h>

int
cmd_audit(kms_cli *c)
{
    uint64_t lines = 0, bad = 0;
    const char *why = NULL;
    int r;

    if (c->npos != 3 || strcmp(c->pos[1], "verify") != 0)
        return KMS_EXIT_USAGE;
    r = kms_audit_verify_file(c->pos[2], &lines, &bad, &why);
    if (r < 0) {
        fprintf(stderr, "kms: cannot read %s: %s\n", c->pos[2], strerror(-r));
        return KMS_EXIT_ERROR;
    }
    if (c->json) {
        json_t *o =
            json_pack("{s:b,s:I}", "ok", r == 0, "lines", (json_int_t)lines);
        if (r)
            json_object_set_new(o, "first_bad_line",
                                json_integer((json_int_t)bad));
        if (r)
            json_object_set_new(o, "reason", json_string(why));
        cli_print(c, o);
        json_decref(o);
    } else if (r == 0) {
        printf("OK: %llu lines, chain intact\n", (unsigned long long)lines);
    } else {
        printf("TAMPERED: line %llu: %s\n", (unsigned long long)bad, why);
    }
    return r == 0 ? KMS_EXIT_OK : KMS_EXIT_TAMPERED;
}
