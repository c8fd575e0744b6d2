/* SPDX-License-Identifier: Apache-2.0 */
/* Keccak-f[1600], SHA3-256, SHA3-512, SHAKE128 and SHAKE256 (FIPS 202).
 *
 * THREAD SAFETY: a context belongs to one thread at a time; the one-shot
 * functions are reentrant. No global state.
 *
 * Contexts may hold secret data (ML-DSA absorbs seeds and keys): call
 * kms_keccak_wipe() when done. Every function takes pointers with their
 * lengths; a NULL pointer is allowed only with a zero length. */
#ifndef KMS_KECCAK_H
#define KMS_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define KMS_SHAKE128_RATE 168
#define KMS_SHAKE256_RATE 136
#define KMS_SHA3_256_RATE 136
#define KMS_SHA3_512_RATE 72

/* Sponge state: 1600-bit state, the rate in bytes, the position inside the
 * current block and whether squeezing has begun. */
typedef struct {
    uint64_t s[25];
    size_t rate;
    size_t pos;
    uint8_t
        dsep; /* domain separation + first pad bit: 0x06 SHA-3, 0x1F SHAKE */
    uint8_t squeezing;
} kms_keccak_ctx;

/* The permutation itself (FIPS 202 section 3.3, 24 rounds), lanes in
 * little-endian order as section 3.1.2 and B.1 prescribe. */
void kms_keccak_f1600(uint64_t s[25]);
/* The same permutation, always the baseline-ISA build (tests compare the
 * run-time dispatched variant against it). */
void kms_keccak_f1600_generic(uint64_t s[25]);

/* Incremental XOF. init -> absorb* -> squeeze* (absorbing after the first
 * squeeze is a programming error and is ignored). */
void kms_shake128_init(kms_keccak_ctx *c);
void kms_shake256_init(kms_keccak_ctx *c);
void kms_shake_absorb(kms_keccak_ctx *c, const uint8_t *in, size_t in_len);
void kms_shake_squeeze(kms_keccak_ctx *c, uint8_t *out, size_t out_len);
/* Squeeze whole blocks (out_len a multiple of the rate, fresh squeeze
 * position) without an intermediate copy; used by rejection samplers. */
void kms_shake_squeeze_blocks(kms_keccak_ctx *c, uint8_t *out, size_t nblocks);

/* Two permutations at once (two states in one vector register), and its
 * baseline build (tests compare the two). */
void kms_keccak_f1600_x2(uint64_t s0[25], uint64_t s1[25]);
void kms_keccak_f1600_x2_generic(uint64_t s0[25], uint64_t s1[25]);

/* Two SHAKE instances in lockstep, for samplers that expand several seeds
 * of the same length: init absorbs both inputs completely (rate
 * KMS_SHAKE128_RATE or KMS_SHAKE256_RATE), then whole blocks are squeezed
 * from both. Output equals kms_shake128/256 of each input. Wipe with
 * kms_keccak_x2_wipe when the inputs were secret. */
typedef struct {
    uint64_t s0[25], s1[25];
    size_t rate;
} kms_keccak_x2_ctx;

void kms_shake_x2_init(kms_keccak_x2_ctx *c, size_t rate, const uint8_t *in0,
                       const uint8_t *in1, size_t in_len);
void kms_shake_x2_squeeze_blocks(kms_keccak_x2_ctx *c, uint8_t *out0,
                                 uint8_t *out1, size_t nblocks);
void kms_keccak_x2_wipe(kms_keccak_x2_ctx *c);

/* Incremental SHA-3: init -> update* -> final. */
void kms_sha3_256_init(kms_keccak_ctx *c);
void kms_sha3_512_init(kms_keccak_ctx *c);
void kms_sha3_update(kms_keccak_ctx *c, const uint8_t *in, size_t in_len);
void kms_sha3_256_final(kms_keccak_ctx *c, uint8_t out[32]);
void kms_sha3_512_final(kms_keccak_ctx *c, uint8_t out[64]);

/* One-shot helpers. */
void kms_sha3_256(const uint8_t *in, size_t in_len, uint8_t out[32]);
void kms_sha3_512(const uint8_t *in, size_t in_len, uint8_t out[64]);
void kms_shake128(const uint8_t *in, size_t in_len, uint8_t *out,
                  size_t out_len);
void kms_shake256(const uint8_t *in, size_t in_len, uint8_t *out,
                  size_t out_len);

/* Wipe a context that absorbed secret data. */
void kms_keccak_wipe(kms_keccak_ctx *c);

#endif
