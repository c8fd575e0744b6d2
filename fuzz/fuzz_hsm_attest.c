/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the attested-share wire parser (u32 BE length || share ||
 * attestation): parse must never read out of bounds, and whatever it
 * accepts must re-encode to the same bytes. */
/* fuzz-link: hsm_static */
#include <stdlib.h>
#include <string.h>

#include <hsm/threshold.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *share = NULL, *att = NULL;
    size_t share_len = 0, att_len = 0, wire_len = 0;
    uint8_t *wire = NULL;

    if (hsm_attested_share_parse(data, size, &share, &share_len, &att,
                                 &att_len) != HSM_OK)
        return 0;
    if (share_len == 0 || att_len == 0 || 4 + share_len + att_len != size ||
        share != data + 4 || att != data + 4 + share_len)
        abort();
    if (hsm_attested_share_encode(share, share_len, att, att_len, &wire,
                                  &wire_len) != HSM_OK ||
        wire_len != size || memcmp(wire, data, size) != 0)
        abort();
    hsm_free(wire);
    return 0;
}
