/* SPDX-License-Identifier: Apache-2.0 */
/* Keccak-f[1600] and the FIPS 202 sponge functions.
 *
 * The permutation keeps the 25 lanes in local variables and runs the
 * theta, rho, pi, chi and iota steps (FIPS 202 sections 3.2.1-3.2.5) as
 * straight-line code; the rotation offsets of Table 2 and the round
 * constants of Algorithm 5/6 were computed from the algorithms in the
 * standard. Bytes map to lanes little-endian (section B.1). The code has
 * no data-dependent branches or table indices. */
#include "keccak.h"

#include <string.h>

#include "kc.h"
#include "kms_cpu.h"

#define ROL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* RC[ir] for ir = 0..23 (FIPS 202 Algorithm 6, step 2). */
static const uint64_t keccak_rc[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
    0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* The permutation for the baseline ISA, which has no and-not instruction:
 * lane complementing saves most of chi's NOTs. */
static KMS_ALWAYS_INLINE void
keccak_p1600(uint64_t s[25])
{
    uint64_t a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3], a4 = s[4];
    uint64_t a5 = s[5], a6 = s[6], a7 = s[7], a8 = s[8], a9 = s[9];
    uint64_t a10 = s[10], a11 = s[11], a12 = s[12], a13 = s[13], a14 = s[14];
    uint64_t a15 = s[15], a16 = s[16], a17 = s[17], a18 = s[18], a19 = s[19];
    uint64_t a20 = s[20], a21 = s[21], a22 = s[22], a23 = s[23], a24 = s[24];
    uint64_t e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14;
    uint64_t e15, e16, e17, e18, e19, e20, e21, e22, e23, e24;
    uint64_t b0, b1, b2, b3, b4, c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;

    /* Lane complementing (Keccak implementation overview, section 2.2):
     * lanes 0, 1, 2, 5, 10, 13, 14, 17, 18, 22 and 23 are kept inverted
     * during the rounds. Every column holds an odd number of them, so
     * theta's D comes out exact; rho and pi carry the inversion along; and
     * for 17 of the 25 chi outputs per round the inversion turns
     * "b ^ (~x & y)" into a form without a NOT. The mask was found by an
     * exhaustive search over all masks that leave theta exact. */
    a0 = ~a0;
    a1 = ~a1;
    a2 = ~a2;
    a5 = ~a5;
    a10 = ~a10;
    a13 = ~a13;
    a14 = ~a14;
    a17 = ~a17;
    a18 = ~a18;
    a22 = ~a22;
    a23 = ~a23;

    /* Two rounds per iteration, a -> e -> a. Each round: theta (3.2.1)
     * into d; then for each output plane, rho (3.2.2) and pi (3.2.3) give
     * its five lanes b, chi (3.2.4) combines them, iota (3.2.5) adds the
     * round constant to lane 0. */
    for (int r = 0; r < 24; r += 2) {
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20;
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21;
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22;
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23;
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        b0 = a0 ^ d0;
        b1 = ROL64(a6 ^ d1, 44);
        b2 = ROL64(a12 ^ d2, 43);
        b3 = ROL64(a18 ^ d3, 21);
        b4 = ROL64(a24 ^ d4, 14);
        e0 = b0 ^ (~b1 & b2) ^ keccak_rc[r];
        e1 = b1 ^ (b2 | b3);
        e2 = b2 ^ ~(b3 & b4);
        e3 = b3 ^ (b4 | b0);
        e4 = b4 ^ (b0 & b1);
        b0 = ROL64(a3 ^ d3, 28);
        b1 = ROL64(a9 ^ d4, 20);
        b2 = ROL64(a10 ^ d0, 3);
        b3 = ROL64(a16 ^ d1, 45);
        b4 = ROL64(a22 ^ d2, 61);
        e5 = b0 ^ (b1 | b2);
        e6 = b1 ^ (b2 & b3);
        e7 = b2 ^ (b3 | b4);
        e8 = b3 ^ (b4 & b0);
        e9 = b4 ^ (b0 | ~b1);
        b0 = ROL64(a1 ^ d1, 1);
        b1 = ROL64(a7 ^ d2, 6);
        b2 = ROL64(a13 ^ d3, 25);
        b3 = ROL64(a19 ^ d4, 8);
        b4 = ROL64(a20 ^ d0, 18);
        e10 = b0 ^ ~(b1 | b2);
        e11 = b1 ^ (b2 & b3);
        e12 = b2 ^ (b3 | ~b4);
        e13 = b3 ^ (b4 | b0);
        e14 = b4 ^ ~(b0 & b1);
        b0 = ROL64(a4 ^ d4, 27);
        b1 = ROL64(a5 ^ d0, 36);
        b2 = ROL64(a11 ^ d1, 10);
        b3 = ROL64(a17 ^ d2, 15);
        b4 = ROL64(a23 ^ d3, 56);
        e15 = b0 ^ (b1 & b2);
        e16 = b1 ^ (b2 | b3);
        e17 = b2 ^ (~b3 | b4);
        e18 = b3 ^ (b4 & b0);
        e19 = b4 ^ (b0 | b1);
        b0 = ROL64(a2 ^ d2, 62);
        b1 = ROL64(a8 ^ d3, 55);
        b2 = ROL64(a14 ^ d4, 39);
        b3 = ROL64(a15 ^ d0, 41);
        b4 = ROL64(a21 ^ d1, 2);
        e20 = b0 ^ (b1 | b2);
        e21 = b1 ^ (b2 & b3);
        e22 = b2 ^ (~b3 & b4);
        e23 = b3 ^ (b4 | b0);
        e24 = b4 ^ (b0 & b1);
        c0 = e0 ^ e5 ^ e10 ^ e15 ^ e20;
        c1 = e1 ^ e6 ^ e11 ^ e16 ^ e21;
        c2 = e2 ^ e7 ^ e12 ^ e17 ^ e22;
        c3 = e3 ^ e8 ^ e13 ^ e18 ^ e23;
        c4 = e4 ^ e9 ^ e14 ^ e19 ^ e24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        b0 = e0 ^ d0;
        b1 = ROL64(e6 ^ d1, 44);
        b2 = ROL64(e12 ^ d2, 43);
        b3 = ROL64(e18 ^ d3, 21);
        b4 = ROL64(e24 ^ d4, 14);
        a0 = b0 ^ (~b1 & b2) ^ keccak_rc[r + 1];
        a1 = b1 ^ (b2 | b3);
        a2 = b2 ^ ~(b3 & b4);
        a3 = b3 ^ (b4 | b0);
        a4 = b4 ^ (b0 & b1);
        b0 = ROL64(e3 ^ d3, 28);
        b1 = ROL64(e9 ^ d4, 20);
        b2 = ROL64(e10 ^ d0, 3);
        b3 = ROL64(e16 ^ d1, 45);
        b4 = ROL64(e22 ^ d2, 61);
        a5 = b0 ^ (b1 | b2);
        a6 = b1 ^ (b2 & b3);
        a7 = b2 ^ (b3 | b4);
        a8 = b3 ^ (b4 & b0);
        a9 = b4 ^ (b0 | ~b1);
        b0 = ROL64(e1 ^ d1, 1);
        b1 = ROL64(e7 ^ d2, 6);
        b2 = ROL64(e13 ^ d3, 25);
        b3 = ROL64(e19 ^ d4, 8);
        b4 = ROL64(e20 ^ d0, 18);
        a10 = b0 ^ ~(b1 | b2);
        a11 = b1 ^ (b2 & b3);
        a12 = b2 ^ (b3 | ~b4);
        a13 = b3 ^ (b4 | b0);
        a14 = b4 ^ ~(b0 & b1);
        b0 = ROL64(e4 ^ d4, 27);
        b1 = ROL64(e5 ^ d0, 36);
        b2 = ROL64(e11 ^ d1, 10);
        b3 = ROL64(e17 ^ d2, 15);
        b4 = ROL64(e23 ^ d3, 56);
        a15 = b0 ^ (b1 & b2);
        a16 = b1 ^ (b2 | b3);
        a17 = b2 ^ (~b3 | b4);
        a18 = b3 ^ (b4 & b0);
        a19 = b4 ^ (b0 | b1);
        b0 = ROL64(e2 ^ d2, 62);
        b1 = ROL64(e8 ^ d3, 55);
        b2 = ROL64(e14 ^ d4, 39);
        b3 = ROL64(e15 ^ d0, 41);
        b4 = ROL64(e21 ^ d1, 2);
        a20 = b0 ^ (b1 | b2);
        a21 = b1 ^ (b2 & b3);
        a22 = b2 ^ (~b3 & b4);
        a23 = b3 ^ (b4 | b0);
        a24 = b4 ^ (b0 & b1);
    }
    a0 = ~a0;
    a1 = ~a1;
    a2 = ~a2;
    a5 = ~a5;
    a10 = ~a10;
    a13 = ~a13;
    a14 = ~a14;
    a17 = ~a17;
    a18 = ~a18;
    a22 = ~a22;
    a23 = ~a23;
    s[0] = a0, s[1] = a1, s[2] = a2, s[3] = a3, s[4] = a4;
    s[5] = a5, s[6] = a6, s[7] = a7, s[8] = a8, s[9] = a9;
    s[10] = a10, s[11] = a11, s[12] = a12, s[13] = a13, s[14] = a14;
    s[15] = a15, s[16] = a16, s[17] = a17, s[18] = a18, s[19] = a19;
    s[20] = a20, s[21] = a21, s[22] = a22, s[23] = a23, s[24] = a24;
}

#ifdef KMS_X86_DISPATCH
/* The permutation written directly, for the BMI1/BMI2 build (kms_cpu.h):
 * there chi's "~x & y" is one andn instruction, and rorx rotates without
 * a copy, so the lane-complemented form below would only add work. */
static KMS_ALWAYS_INLINE void
keccak_p1600_plain(uint64_t s[25])
{
    uint64_t a0 = s[0], a1 = s[1], a2 = s[2], a3 = s[3], a4 = s[4];
    uint64_t a5 = s[5], a6 = s[6], a7 = s[7], a8 = s[8], a9 = s[9];
    uint64_t a10 = s[10], a11 = s[11], a12 = s[12], a13 = s[13], a14 = s[14];
    uint64_t a15 = s[15], a16 = s[16], a17 = s[17], a18 = s[18], a19 = s[19];
    uint64_t a20 = s[20], a21 = s[21], a22 = s[22], a23 = s[23], a24 = s[24];
    uint64_t e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14;
    uint64_t e15, e16, e17, e18, e19, e20, e21, e22, e23, e24;
    uint64_t b0, b1, b2, b3, b4, c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;

    /* Two rounds per iteration, a -> e -> a. Each round: theta (3.2.1)
     * into d; then for each output plane, rho (3.2.2) and pi (3.2.3) give
     * its five lanes b, chi (3.2.4) combines them, iota (3.2.5) adds the
     * round constant to lane 0. */
    for (int r = 0; r < 24; r += 2) {
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20;
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21;
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22;
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23;
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        b0 = a0 ^ d0;
        b1 = ROL64(a6 ^ d1, 44);
        b2 = ROL64(a12 ^ d2, 43);
        b3 = ROL64(a18 ^ d3, 21);
        b4 = ROL64(a24 ^ d4, 14);
        e0 = b0 ^ (~b1 & b2) ^ keccak_rc[r];
        e1 = b1 ^ (~b2 & b3);
        e2 = b2 ^ (~b3 & b4);
        e3 = b3 ^ (~b4 & b0);
        e4 = b4 ^ (~b0 & b1);
        b0 = ROL64(a3 ^ d3, 28);
        b1 = ROL64(a9 ^ d4, 20);
        b2 = ROL64(a10 ^ d0, 3);
        b3 = ROL64(a16 ^ d1, 45);
        b4 = ROL64(a22 ^ d2, 61);
        e5 = b0 ^ (~b1 & b2);
        e6 = b1 ^ (~b2 & b3);
        e7 = b2 ^ (~b3 & b4);
        e8 = b3 ^ (~b4 & b0);
        e9 = b4 ^ (~b0 & b1);
        b0 = ROL64(a1 ^ d1, 1);
        b1 = ROL64(a7 ^ d2, 6);
        b2 = ROL64(a13 ^ d3, 25);
        b3 = ROL64(a19 ^ d4, 8);
        b4 = ROL64(a20 ^ d0, 18);
        e10 = b0 ^ (~b1 & b2);
        e11 = b1 ^ (~b2 & b3);
        e12 = b2 ^ (~b3 & b4);
        e13 = b3 ^ (~b4 & b0);
        e14 = b4 ^ (~b0 & b1);
        b0 = ROL64(a4 ^ d4, 27);
        b1 = ROL64(a5 ^ d0, 36);
        b2 = ROL64(a11 ^ d1, 10);
        b3 = ROL64(a17 ^ d2, 15);
        b4 = ROL64(a23 ^ d3, 56);
        e15 = b0 ^ (~b1 & b2);
        e16 = b1 ^ (~b2 & b3);
        e17 = b2 ^ (~b3 & b4);
        e18 = b3 ^ (~b4 & b0);
        e19 = b4 ^ (~b0 & b1);
        b0 = ROL64(a2 ^ d2, 62);
        b1 = ROL64(a8 ^ d3, 55);
        b2 = ROL64(a14 ^ d4, 39);
        b3 = ROL64(a15 ^ d0, 41);
        b4 = ROL64(a21 ^ d1, 2);
        e20 = b0 ^ (~b1 & b2);
        e21 = b1 ^ (~b2 & b3);
        e22 = b2 ^ (~b3 & b4);
        e23 = b3 ^ (~b4 & b0);
        e24 = b4 ^ (~b0 & b1);
        c0 = e0 ^ e5 ^ e10 ^ e15 ^ e20;
        c1 = e1 ^ e6 ^ e11 ^ e16 ^ e21;
        c2 = e2 ^ e7 ^ e12 ^ e17 ^ e22;
        c3 = e3 ^ e8 ^ e13 ^ e18 ^ e23;
        c4 = e4 ^ e9 ^ e14 ^ e19 ^ e24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        b0 = e0 ^ d0;
        b1 = ROL64(e6 ^ d1, 44);
        b2 = ROL64(e12 ^ d2, 43);
        b3 = ROL64(e18 ^ d3, 21);
        b4 = ROL64(e24 ^ d4, 14);
        a0 = b0 ^ (~b1 & b2) ^ keccak_rc[r + 1];
        a1 = b1 ^ (~b2 & b3);
        a2 = b2 ^ (~b3 & b4);
        a3 = b3 ^ (~b4 & b0);
        a4 = b4 ^ (~b0 & b1);
        b0 = ROL64(e3 ^ d3, 28);
        b1 = ROL64(e9 ^ d4, 20);
        b2 = ROL64(e10 ^ d0, 3);
        b3 = ROL64(e16 ^ d1, 45);
        b4 = ROL64(e22 ^ d2, 61);
        a5 = b0 ^ (~b1 & b2);
        a6 = b1 ^ (~b2 & b3);
        a7 = b2 ^ (~b3 & b4);
        a8 = b3 ^ (~b4 & b0);
        a9 = b4 ^ (~b0 & b1);
        b0 = ROL64(e1 ^ d1, 1);
        b1 = ROL64(e7 ^ d2, 6);
        b2 = ROL64(e13 ^ d3, 25);
        b3 = ROL64(e19 ^ d4, 8);
        b4 = ROL64(e20 ^ d0, 18);
        a10 = b0 ^ (~b1 & b2);
        a11 = b1 ^ (~b2 & b3);
        a12 = b2 ^ (~b3 & b4);
        a13 = b3 ^ (~b4 & b0);
        a14 = b4 ^ (~b0 & b1);
        b0 = ROL64(e4 ^ d4, 27);
        b1 = ROL64(e5 ^ d0, 36);
        b2 = ROL64(e11 ^ d1, 10);
        b3 = ROL64(e17 ^ d2, 15);
        b4 = ROL64(e23 ^ d3, 56);
        a15 = b0 ^ (~b1 & b2);
        a16 = b1 ^ (~b2 & b3);
        a17 = b2 ^ (~b3 & b4);
        a18 = b3 ^ (~b4 & b0);
        a19 = b4 ^ (~b0 & b1);
        b0 = ROL64(e2 ^ d2, 62);
        b1 = ROL64(e8 ^ d3, 55);
        b2 = ROL64(e14 ^ d4, 39);
        b3 = ROL64(e15 ^ d0, 41);
        b4 = ROL64(e21 ^ d1, 2);
        a20 = b0 ^ (~b1 & b2);
        a21 = b1 ^ (~b2 & b3);
        a22 = b2 ^ (~b3 & b4);
        a23 = b3 ^ (~b4 & b0);
        a24 = b4 ^ (~b0 & b1);
    }
    s[0] = a0, s[1] = a1, s[2] = a2, s[3] = a3, s[4] = a4;
    s[5] = a5, s[6] = a6, s[7] = a7, s[8] = a8, s[9] = a9;
    s[10] = a10, s[11] = a11, s[12] = a12, s[13] = a13, s[14] = a14;
    s[15] = a15, s[16] = a16, s[17] = a17, s[18] = a18, s[19] = a19;
    s[20] = a20, s[21] = a21, s[22] = a22, s[23] = a23, s[24] = a24;
}

#endif

void
kms_keccak_f1600_generic(uint64_t s[25])
{
    keccak_p1600(s);
}

#ifdef KMS_X86_DISPATCH
KMS_TARGET_BMI2 static void
keccak_f1600_bmi2(uint64_t s[25])
{
    keccak_p1600_plain(s);
}
#endif

void
kms_keccak_f1600(uint64_t s[25])
{
#ifdef KMS_X86_DISPATCH
    if (kms_cpu_has_bmi2()) {
        keccak_f1600_bmi2(s);
        return;
    }
#endif
    keccak_p1600(s);
}

static uint64_t
load64_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void
store64_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
keccak_init(kms_keccak_ctx *c, size_t rate, uint8_t dsep)
{
    memset(c->s, 0, sizeof c->s);
    c->rate = rate;
    c->pos = 0;
    c->dsep = dsep;
    c->squeezing = 0;
}

/* XOR one byte into the state at byte offset `i` (< rate). */
static inline void
xor_byte(uint64_t *s, size_t i, uint8_t b)
{
    s[i / 8] ^= (uint64_t)b << (8 * (i % 8));
}

static void
keccak_absorb(kms_keccak_ctx *c, const uint8_t *in, size_t in_len)
{
    if (c->squeezing || in_len == 0)
        return;
    /* Fill a partial block byte by byte. */
    while (c->pos != 0 && in_len > 0) {
        xor_byte(c->s, c->pos++, *in++);
        in_len--;
        if (c->pos == c->rate) {
            kms_keccak_f1600(c->s);
            c->pos = 0;
        }
    }
    /* Whole blocks, a lane at a time. */
    while (in_len >= c->rate) {
        for (size_t i = 0; i < c->rate / 8; i++)
            c->s[i] ^= load64_le(in + 8 * i);
        kms_keccak_f1600(c->s);
        in += c->rate;
        in_len -= c->rate;
    }
    while (in_len > 0) {
        xor_byte(c->s, c->pos++, *in++);
        in_len--;
    }
}

/* pad10*1 with the domain bits (FIPS 202 section 5.1 and 6.1/6.2), then
 * switch to squeezing with a fresh block. */
static void
keccak_finalize(kms_keccak_ctx *c)
{
    if (c->squeezing)
        return;
    xor_byte(c->s, c->pos, c->dsep);
    xor_byte(c->s, c->rate - 1, 0x80);
    kms_keccak_f1600(c->s);
    c->pos = 0;
    c->squeezing = 1;
}

static void
keccak_squeeze(kms_keccak_ctx *c, uint8_t *out, size_t out_len)
{
    keccak_finalize(c);
    while (out_len > 0) {
        if (c->pos == c->rate) {
            kms_keccak_f1600(c->s);
            c->pos = 0;
        }
        if (c->pos == 0 && out_len >= c->rate) {
            for (size_t i = 0; i < c->rate / 8; i++)
                store64_le(out + 8 * i, c->s[i]);
            out += c->rate;
            out_len -= c->rate;
            c->pos = c->rate;
            continue;
        }
        *out++ = (uint8_t)(c->s[c->pos / 8] >> (8 * (c->pos % 8)));
        c->pos++;
        out_len--;
    }
}

/* ---- two permutations at once ------------------------------------------
 * Two independent states in the two 64-bit halves of a 128-bit vector
 * (GCC/Clang vector extension: SSE2 on baseline x86-64, NEON on arm64,
 * plain integer code elsewhere). Same steps as above; chi's "~x & y" is
 * one and-not instruction on vectors, so the plain form is used. */
typedef uint64_t v2 __attribute__((vector_size(16)));

static KMS_ALWAYS_INLINE void
keccak_p1600_x2(uint64_t s0[25], uint64_t s1[25])
{
    v2 a0 = {s0[0], s1[0]};
    v2 a1 = {s0[1], s1[1]};
    v2 a2 = {s0[2], s1[2]};
    v2 a3 = {s0[3], s1[3]};
    v2 a4 = {s0[4], s1[4]};
    v2 a5 = {s0[5], s1[5]};
    v2 a6 = {s0[6], s1[6]};
    v2 a7 = {s0[7], s1[7]};
    v2 a8 = {s0[8], s1[8]};
    v2 a9 = {s0[9], s1[9]};
    v2 a10 = {s0[10], s1[10]};
    v2 a11 = {s0[11], s1[11]};
    v2 a12 = {s0[12], s1[12]};
    v2 a13 = {s0[13], s1[13]};
    v2 a14 = {s0[14], s1[14]};
    v2 a15 = {s0[15], s1[15]};
    v2 a16 = {s0[16], s1[16]};
    v2 a17 = {s0[17], s1[17]};
    v2 a18 = {s0[18], s1[18]};
    v2 a19 = {s0[19], s1[19]};
    v2 a20 = {s0[20], s1[20]};
    v2 a21 = {s0[21], s1[21]};
    v2 a22 = {s0[22], s1[22]};
    v2 a23 = {s0[23], s1[23]};
    v2 a24 = {s0[24], s1[24]};
    v2 e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14;
    v2 e15, e16, e17, e18, e19, e20, e21, e22, e23, e24;
    v2 b0, b1, b2, b3, b4, c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;

    for (int r = 0; r < 24; r += 2) {
        v2 rc0 = {keccak_rc[r], keccak_rc[r]};
        v2 rc1 = {keccak_rc[r + 1], keccak_rc[r + 1]};
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20;
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21;
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22;
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23;
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        b0 = a0 ^ d0;
        b1 = ROL64(a6 ^ d1, 44);
        b2 = ROL64(a12 ^ d2, 43);
        b3 = ROL64(a18 ^ d3, 21);
        b4 = ROL64(a24 ^ d4, 14);
        e0 = b0 ^ (~b1 & b2) ^ rc0;
        e1 = b1 ^ (~b2 & b3);
        e2 = b2 ^ (~b3 & b4);
        e3 = b3 ^ (~b4 & b0);
        e4 = b4 ^ (~b0 & b1);
        b0 = ROL64(a3 ^ d3, 28);
        b1 = ROL64(a9 ^ d4, 20);
        b2 = ROL64(a10 ^ d0, 3);
        b3 = ROL64(a16 ^ d1, 45);
        b4 = ROL64(a22 ^ d2, 61);
        e5 = b0 ^ (~b1 & b2);
        e6 = b1 ^ (~b2 & b3);
        e7 = b2 ^ (~b3 & b4);
        e8 = b3 ^ (~b4 & b0);
        e9 = b4 ^ (~b0 & b1);
        b0 = ROL64(a1 ^ d1, 1);
        b1 = ROL64(a7 ^ d2, 6);
        b2 = ROL64(a13 ^ d3, 25);
        b3 = ROL64(a19 ^ d4, 8);
        b4 = ROL64(a20 ^ d0, 18);
        e10 = b0 ^ (~b1 & b2);
        e11 = b1 ^ (~b2 & b3);
        e12 = b2 ^ (~b3 & b4);
        e13 = b3 ^ (~b4 & b0);
        e14 = b4 ^ (~b0 & b1);
        b0 = ROL64(a4 ^ d4, 27);
        b1 = ROL64(a5 ^ d0, 36);
        b2 = ROL64(a11 ^ d1, 10);
        b3 = ROL64(a17 ^ d2, 15);
        b4 = ROL64(a23 ^ d3, 56);
        e15 = b0 ^ (~b1 & b2);
        e16 = b1 ^ (~b2 & b3);
        e17 = b2 ^ (~b3 & b4);
        e18 = b3 ^ (~b4 & b0);
        e19 = b4 ^ (~b0 & b1);
        b0 = ROL64(a2 ^ d2, 62);
        b1 = ROL64(a8 ^ d3, 55);
        b2 = ROL64(a14 ^ d4, 39);
        b3 = ROL64(a15 ^ d0, 41);
        b4 = ROL64(a21 ^ d1, 2);
        e20 = b0 ^ (~b1 & b2);
        e21 = b1 ^ (~b2 & b3);
        e22 = b2 ^ (~b3 & b4);
        e23 = b3 ^ (~b4 & b0);
        e24 = b4 ^ (~b0 & b1);
        c0 = e0 ^ e5 ^ e10 ^ e15 ^ e20;
        c1 = e1 ^ e6 ^ e11 ^ e16 ^ e21;
        c2 = e2 ^ e7 ^ e12 ^ e17 ^ e22;
        c3 = e3 ^ e8 ^ e13 ^ e18 ^ e23;
        c4 = e4 ^ e9 ^ e14 ^ e19 ^ e24;
        d0 = c4 ^ ROL64(c1, 1);
        d1 = c0 ^ ROL64(c2, 1);
        d2 = c1 ^ ROL64(c3, 1);
        d3 = c2 ^ ROL64(c4, 1);
        d4 = c3 ^ ROL64(c0, 1);
        b0 = e0 ^ d0;
        b1 = ROL64(e6 ^ d1, 44);
        b2 = ROL64(e12 ^ d2, 43);
        b3 = ROL64(e18 ^ d3, 21);
        b4 = ROL64(e24 ^ d4, 14);
        a0 = b0 ^ (~b1 & b2) ^ rc1;
        a1 = b1 ^ (~b2 & b3);
        a2 = b2 ^ (~b3 & b4);
        a3 = b3 ^ (~b4 & b0);
        a4 = b4 ^ (~b0 & b1);
        b0 = ROL64(e3 ^ d3, 28);
        b1 = ROL64(e9 ^ d4, 20);
        b2 = ROL64(e10 ^ d0, 3);
        b3 = ROL64(e16 ^ d1, 45);
        b4 = ROL64(e22 ^ d2, 61);
        a5 = b0 ^ (~b1 & b2);
        a6 = b1 ^ (~b2 & b3);
        a7 = b2 ^ (~b3 & b4);
        a8 = b3 ^ (~b4 & b0);
        a9 = b4 ^ (~b0 & b1);
        b0 = ROL64(e1 ^ d1, 1);
        b1 = ROL64(e7 ^ d2, 6);
        b2 = ROL64(e13 ^ d3, 25);
        b3 = ROL64(e19 ^ d4, 8);
        b4 = ROL64(e20 ^ d0, 18);
        a10 = b0 ^ (~b1 & b2);
        a11 = b1 ^ (~b2 & b3);
        a12 = b2 ^ (~b3 & b4);
        a13 = b3 ^ (~b4 & b0);
        a14 = b4 ^ (~b0 & b1);
        b0 = ROL64(e4 ^ d4, 27);
        b1 = ROL64(e5 ^ d0, 36);
        b2 = ROL64(e11 ^ d1, 10);
        b3 = ROL64(e17 ^ d2, 15);
        b4 = ROL64(e23 ^ d3, 56);
        a15 = b0 ^ (~b1 & b2);
        a16 = b1 ^ (~b2 & b3);
        a17 = b2 ^ (~b3 & b4);
        a18 = b3 ^ (~b4 & b0);
        a19 = b4 ^ (~b0 & b1);
        b0 = ROL64(e2 ^ d2, 62);
        b1 = ROL64(e8 ^ d3, 55);
        b2 = ROL64(e14 ^ d4, 39);
        b3 = ROL64(e15 ^ d0, 41);
        b4 = ROL64(e21 ^ d1, 2);
        a20 = b0 ^ (~b1 & b2);
        a21 = b1 ^ (~b2 & b3);
        a22 = b2 ^ (~b3 & b4);
        a23 = b3 ^ (~b4 & b0);
        a24 = b4 ^ (~b0 & b1);
    }
    s0[0] = a0[0], s1[0] = a0[1];
    s0[1] = a1[0], s1[1] = a1[1];
    s0[2] = a2[0], s1[2] = a2[1];
    s0[3] = a3[0], s1[3] = a3[1];
    s0[4] = a4[0], s1[4] = a4[1];
    s0[5] = a5[0], s1[5] = a5[1];
    s0[6] = a6[0], s1[6] = a6[1];
    s0[7] = a7[0], s1[7] = a7[1];
    s0[8] = a8[0], s1[8] = a8[1];
    s0[9] = a9[0], s1[9] = a9[1];
    s0[10] = a10[0], s1[10] = a10[1];
    s0[11] = a11[0], s1[11] = a11[1];
    s0[12] = a12[0], s1[12] = a12[1];
    s0[13] = a13[0], s1[13] = a13[1];
    s0[14] = a14[0], s1[14] = a14[1];
    s0[15] = a15[0], s1[15] = a15[1];
    s0[16] = a16[0], s1[16] = a16[1];
    s0[17] = a17[0], s1[17] = a17[1];
    s0[18] = a18[0], s1[18] = a18[1];
    s0[19] = a19[0], s1[19] = a19[1];
    s0[20] = a20[0], s1[20] = a20[1];
    s0[21] = a21[0], s1[21] = a21[1];
    s0[22] = a22[0], s1[22] = a22[1];
    s0[23] = a23[0], s1[23] = a23[1];
    s0[24] = a24[0], s1[24] = a24[1];
}

void
kms_keccak_f1600_x2_generic(uint64_t s0[25], uint64_t s1[25])
{
    keccak_p1600_x2(s0, s1);
}

#ifdef KMS_X86_DISPATCH
/* With AVX2 the same vector code gets three-operand VEX instructions. */
KMS_TARGET_AVX2 static void
keccak_f1600_x2_avx2(uint64_t s0[25], uint64_t s1[25])
{
    keccak_p1600_x2(s0, s1);
}
#endif

void
kms_keccak_f1600_x2(uint64_t s0[25], uint64_t s1[25])
{
#ifdef KMS_X86_DISPATCH
    if (kms_cpu_has_avx2()) {
        keccak_f1600_x2_avx2(s0, s1);
        return;
    }
#endif
    keccak_p1600_x2(s0, s1);
}

/* XOR `len` bytes into a state from byte 0 (len <= rate). */
static void
xor_bytes(uint64_t *s, const uint8_t *in, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        s[i / 8] ^= load64_le(in + i);
    for (; i < len; i++)
        s[i / 8] ^= (uint64_t)in[i] << (8 * (i % 8));
}

void
kms_shake_x2_init(kms_keccak_x2_ctx *c, size_t rate, const uint8_t *in0,
                  const uint8_t *in1, size_t in_len)
{
    memset(c, 0, sizeof *c);
    c->rate = rate;
    while (in_len >= rate) {
        xor_bytes(c->s0, in0, rate);
        xor_bytes(c->s1, in1, rate);
        kms_keccak_f1600_x2(c->s0, c->s1);
        in0 += rate;
        in1 += rate;
        in_len -= rate;
    }
    xor_bytes(c->s0, in0, in_len);
    xor_bytes(c->s1, in1, in_len);
    /* SHAKE padding (FIPS 202 section 6.2 and 5.1) */
    c->s0[in_len / 8] ^= (uint64_t)0x1F << (8 * (in_len % 8));
    c->s1[in_len / 8] ^= (uint64_t)0x1F << (8 * (in_len % 8));
    c->s0[(rate - 1) / 8] ^= (uint64_t)0x80 << 56;
    c->s1[(rate - 1) / 8] ^= (uint64_t)0x80 << 56;
}

void
kms_shake_x2_squeeze_blocks(kms_keccak_x2_ctx *c, uint8_t *out0, uint8_t *out1,
                            size_t nblocks)
{
    for (size_t b = 0; b < nblocks; b++) {
        kms_keccak_f1600_x2(c->s0, c->s1);
        for (size_t i = 0; i < c->rate / 8; i++) {
            store64_le(out0 + 8 * i, c->s0[i]);
            store64_le(out1 + 8 * i, c->s1[i]);
        }
        out0 += c->rate;
        out1 += c->rate;
    }
}

void
kms_shake128_init(kms_keccak_ctx *c)
{
    keccak_init(c, KMS_SHAKE128_RATE, 0x1F);
}

void
kms_shake256_init(kms_keccak_ctx *c)
{
    keccak_init(c, KMS_SHAKE256_RATE, 0x1F);
}

void
kms_shake_absorb(kms_keccak_ctx *c, const uint8_t *in, size_t in_len)
{
    keccak_absorb(c, in, in_len);
}

void
kms_shake_squeeze(kms_keccak_ctx *c, uint8_t *out, size_t out_len)
{
    keccak_squeeze(c, out, out_len);
}

void
kms_shake_squeeze_blocks(kms_keccak_ctx *c, uint8_t *out, size_t nblocks)
{
    keccak_squeeze(c, out, nblocks * c->rate);
}

void
kms_sha3_256_init(kms_keccak_ctx *c)
{
    keccak_init(c, KMS_SHA3_256_RATE, 0x06);
}

void
kms_sha3_512_init(kms_keccak_ctx *c)
{
    keccak_init(c, KMS_SHA3_512_RATE, 0x06);
}

void
kms_sha3_update(kms_keccak_ctx *c, const uint8_t *in, size_t in_len)
{
    keccak_absorb(c, in, in_len);
}

void
kms_sha3_256_final(kms_keccak_ctx *c, uint8_t out[32])
{
    keccak_squeeze(c, out, 32);
    kms_keccak_wipe(c);
}

void
kms_sha3_512_final(kms_keccak_ctx *c, uint8_t out[64])
{
    keccak_squeeze(c, out, 64);
    kms_keccak_wipe(c);
}

void
kms_sha3_256(const uint8_t *in, size_t in_len, uint8_t out[32])
{
    kms_keccak_ctx c;
    kms_sha3_256_init(&c);
    keccak_absorb(&c, in, in_len);
    kms_sha3_256_final(&c, out);
}

void
kms_sha3_512(const uint8_t *in, size_t in_len, uint8_t out[64])
{
    kms_keccak_ctx c;
    kms_sha3_512_init(&c);
    keccak_absorb(&c, in, in_len);
    kms_sha3_512_final(&c, out);
}

void
kms_shake128(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    kms_keccak_ctx c;
    kms_shake128_init(&c);
    keccak_absorb(&c, in, in_len);
    keccak_squeeze(&c, out, out_len);
    kms_keccak_wipe(&c);
}

void
kms_shake256(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    kms_keccak_ctx c;
    kms_shake256_init(&c);
    keccak_absorb(&c, in, in_len);
    keccak_squeeze(&c, out, out_len);
    kms_keccak_wipe(&c);
}

void
kms_keccak_wipe(kms_keccak_ctx *c)
{
    kc_wipe(c, sizeof *c);
}

void
kms_keccak_x2_wipe(kms_keccak_x2_ctx *c)
{
    kc_wipe(c, sizeof *c);
}
