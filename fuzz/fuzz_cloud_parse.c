/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the cloud providers' response parsers (src/hsm/cloud/cloud_parse.c):
 * the first byte picks the parser, the rest is the response body. */
/* fuzz-link: hsm_static */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/hsm/cloud/cloud_parse.h"
#include "kc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char a[128], b[128], *tok = NULL, *s;
    uint8_t *out = NULL;
    size_t n = 0;
    time_t t;
    bool v;
    hsm_cp_aws_creds c;

    if (size < 1)
        return 0;
    kc_init();
    switch (data[0] % 10) {
    case 0:
        hsm_cp_aws_error(data + 1, size - 1, a, sizeof a, b, sizeof b);
        break;
    case 1:
        if (hsm_cp_imds_credentials(data + 1, size - 1, &c) == CP_OK)
            hsm_cp_aws_creds_clear(&c);
        break;
    case 2:
        if (hsm_cp_token(data + 1, size - 1, 1700000000, &tok, &n, &t) == CP_OK)
            kc_secure_free(tok);
        break;
    case 3:
        if (hsm_cp_b64_field(data + 1, size - 1, "Plaintext", false, true, 4096,
                             &out, &n) == CP_OK)
            kc_secure_free(out);
        break;
    case 4:
        if (hsm_cp_b64_field(data + 1, size - 1, "value", true, false, 4096,
                             &out, &n) == CP_OK)
            free(out);
        break;
    case 5:
        hsm_cp_bool_field(data + 1, size - 1, "SignatureValid", &v);
        break;
    case 6:
        if (hsm_cp_pem_field_to_spki(data + 1, size - 1, "pem", &out, &n) ==
            CP_OK)
            free(out);
        break;
    case 7:
        if (hsm_cp_azure_jwk_to_spki(data + 1, size - 1, &out, &n) == CP_OK)
            free(out);
        break;
    case 8:
        hsm_cp_error_object(data + 1, size - 1, a, sizeof a, b, sizeof b);
        break;
    default:
        if ((s = malloc(size)) != NULL) {
            memcpy(s, data + 1, size - 1);
            s[size - 1] = '\0';
            hsm_cp_parse_rfc3339(s, &t);
            free(s);
        }
        break;
    }
    return 0;
}
