/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz ZapDB's on-disk parsers: arbitrary bytes as a record value (parse,
 * then open both segments under fixed test keys) or as a store header
 * (parse, then unwrap under a fixed KEK). The first input byte selects the
 * parser; the corpus holds a valid record and a valid header made with the
 * same fixed keys, so mutations reach the authentication code. */
/* fuzz-link: zapdb_static */
#include "../src/zapdb/zap_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fixed_keys(uint8_t sub[ZAP_SUBKEYS], uint8_t rkey[ZAP_RKEY_LEN],
           uint8_t kek[ZAP_KEYBYTES])
{
    for (size_t i = 0; i < ZAP_SUBKEYS; i++)
        sub[i] = (uint8_t)(0x40 + i);
    for (size_t i = 0; i < ZAP_RKEY_LEN; i++)
        rkey[i] = (uint8_t)(0x90 + i);
    for (size_t i = 0; i < ZAP_KEYBYTES; i++)
        kek[i] = (uint8_t)(0xc0 + i);
}

static void
fuzz_record(const uint8_t *data, size_t size, const uint8_t *sub,
            const uint8_t *rkey)
{
    MDB_val v = {size, (void *)data};
    uint8_t *k = NULL, *val = NULL;
    zap_rec r;

    if (zap_rec_parse(&v, &r) != ZAP_OK)
        return;
    k = malloc(r.klen);
    val = malloc(r.vlen ? r.vlen : 1);
    if (k && val) {
        size_t rlen = r.type == ZAP_REC_BUCKET ? ZAP_HB_LEN : ZAP_RKEY_LEN;
        (void)zap_rec_open_k(&r, sub, rkey, rlen, k);
        if (r.type == ZAP_REC_RECORD)
            (void)zap_rec_open_v(&r, sub, rkey, rlen, val);
    }
    free(k);
    free(val);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sub[ZAP_SUBKEYS], rkey[ZAP_RKEY_LEN], kek[ZAP_KEYBYTES];
    zap_hdr h;

    if (size < 1 || sodium_init() < 0)
        return 0;
    fixed_keys(sub, rkey, kek);
    if (data[0] == 0)
        fuzz_record(data + 1, size - 1, sub, rkey);
    else if (size - 1 <= ZAP_HDR_MAX)
        (void)zap_hdr_unwrap(data + 1, size - 1, kek, &h);
    return 0;
}
