/* SPDX-License-Identifier: Apache-2.0 */
/* Host-side RSA-OAEP decoding for p11 (see p11_oaep.c). Internal. */
#ifndef HSM_P11_OAEP_H
#define HSM_P11_OAEP_H

#include <stddef.h>
#include <stdint.h>

/* Decode the OAEP encoded message `em` (the raw RSA output, em_len <=
 * mod_len bytes; leading zero bytes may be missing) with SHA-256,
 * MGF1-SHA-256 and an empty label, into out/out_cap. Returns 0, or -1 for
 * any decoding failure (one answer, no detail: RFC 8017 7.1.2 note). */
int p11_oaep_sha256_decode(const uint8_t *em, size_t em_len, size_t mod_len,
                           uint8_t *out, size_t out_cap, size_t *out_len);

#endif
