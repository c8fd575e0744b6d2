/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the SigV4 verifier (src/hsm/cloud/sigv4.c) with hostile requests:
 * the input is split at newlines into Authorization, X-Amz-Date, the path,
 * the query and one more header value; the rest is the body. */
/* fuzz-link: hsm_static */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/hsm/cloud/sigv4.h"
#include "kc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
lookup(void *ctx, const char *akid, char *secret, size_t cap, size_t *len)
{
    (void)ctx;
    if (strcmp(akid, "AKIDEXAMPLE") != 0)
        return -1;
    *len = 40;
    return kc_strlcpy(secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", cap);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *part[5] = {"", "", "/", "", ""}, *p;
    hsm_sigv4_header h[4];
    hsm_sigv4_request q;
    hsm_sigv4_verify_opts o = {
        .lookup = lookup, .service = "service", .now = 1440938160};
    hsm_sigv4_identity who;
    size_t k = 0;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    p = buf;
    while (k < 5) {
        char *nl = strchr(p, '\n');

        part[k++] = p;
        if (!nl) {
            p += strlen(p);
            break;
        }
        *nl = '\0';
        p = nl + 1;
    }
    h[0] = (hsm_sigv4_header){"Authorization", part[0]};
    h[1] = (hsm_sigv4_header){"X-Amz-Date", part[1]};
    h[2] = (hsm_sigv4_header){"Host", "example.amazonaws.com"};
    h[3] = (hsm_sigv4_header){"My-Header1", part[4]};
    q = (hsm_sigv4_request){.method = "GET",
                            .path = part[2],
                            .query = part[3],
                            .headers = h,
                            .header_count = 4,
                            .body = (const uint8_t *)p,
                            .body_len = strlen(p)};
    hsm_sigv4_verify(&q, &o, &who);
    free(buf);
    return 0;
}
