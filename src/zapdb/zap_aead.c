/* SPDX-License-Identifier: Apache-2.0 */
/* AEAD_XChaCha20_Poly1305 (draft-irtf-cfrg-xchacha-03 section 2.3, built on
 * RFC 8439 section 2.8) with the associated data given in several parts.
 * The output is byte-for-byte the one of libsodium's
 * crypto_aead_xchacha20poly1305_ietf_encrypt() over the concatenated AD
 * (checked against the draft's test vector and against libsodium in
 * tests/zapdb); the parts only spare the record code a copy of its AD. */
#include "zap_int.h"

#include "kc.h"

#include <string.h>

static void
le64_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Subkey and 96-bit nonce for ChaCha20 (draft section 2.3.1). */
static void
xchacha_setup(uint8_t sub[32], uint8_t n12[12], const uint8_t nonce[24],
              const uint8_t key[32])
{
    crypto_core_hchacha20(sub, nonce, key, NULL);
    memset(n12, 0, 4);
    memcpy(n12 + 4, nonce + 16, 8);
}

/* Poly1305 tag over AD parts || pad || C || pad || len(AD) || len(C)
 * (RFC 8439 section 2.8). */
static void
poly_tag(uint8_t tag[16], const uint8_t sub[32], const uint8_t n12[12],
         const zap_part *ad, size_t nad, const uint8_t *c, size_t clen)
{
    static const uint8_t zeros[16];
    crypto_onetimeauth_poly1305_state st;
    uint8_t block0[64], lens[16];
    uint64_t ad_len = 0;

    memset(block0, 0, sizeof block0);
    crypto_stream_chacha20_ietf(block0, sizeof block0, n12, sub);
    crypto_onetimeauth_poly1305_init(&st, block0);
    for (size_t i = 0; i < nad; i++) {
        crypto_onetimeauth_poly1305_update(&st, ad[i].p, ad[i].len);
        ad_len += ad[i].len;
    }
    crypto_onetimeauth_poly1305_update(&st, zeros, (16 - ad_len % 16) % 16);
    crypto_onetimeauth_poly1305_update(&st, c, clen);
    crypto_onetimeauth_poly1305_update(&st, zeros, (16 - clen % 16) % 16);
    le64_store(lens, ad_len);
    le64_store(lens + 8, clen);
    crypto_onetimeauth_poly1305_update(&st, lens, sizeof lens);
    crypto_onetimeauth_poly1305_final(&st, tag);
    kc_wipe(block0, sizeof block0);
    kc_wipe(&st, sizeof st);
}

void
zap_aead_seal(uint8_t *c, const uint8_t *m, size_t mlen, const zap_part *ad,
              size_t nad, const uint8_t nonce[ZAP_NONCE],
              const uint8_t key[ZAP_KEYBYTES])
{
    uint8_t sub[32], n12[12];

    xchacha_setup(sub, n12, nonce, key);
    if (mlen)
        crypto_stream_chacha20_ietf_xor_ic(c, m, mlen, n12, 1, sub);
    poly_tag(c + mlen, sub, n12, ad, nad, c, mlen);
    kc_wipe(sub, sizeof sub);
}

int
zap_aead_open(uint8_t *m, const uint8_t *c, size_t clen, const zap_part *ad,
              size_t nad, const uint8_t nonce[ZAP_NONCE],
              const uint8_t key[ZAP_KEYBYTES])
{
    uint8_t sub[32], n12[12], tag[16];
    size_t mlen;
    int rc = -1;

    if (clen < ZAP_TAG)
        return -1;
    mlen = clen - ZAP_TAG;
    xchacha_setup(sub, n12, nonce, key);
    poly_tag(tag, sub, n12, ad, nad, c, mlen);
    /* Tag checked before any plaintext is produced. */
    if (crypto_verify_16(tag, c + mlen) == 0) {
        if (mlen)
            crypto_stream_chacha20_ietf_xor_ic(m, c, mlen, n12, 1, sub);
        rc = 0;
    }
    kc_wipe(sub, sizeof sub);
    return rc;
}
