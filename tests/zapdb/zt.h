/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the libzapdb test files (one binary: test_zapdb). */
#ifndef ZT_H
#define ZT_H

#include "testutil.h"
#include "zapdb/zapdb.h"

#define ZT_PASSWORD "test-password"

/* Cheap KDF (opslimit 1, memlimit 8 KiB), 256 MiB map, no fsync. */
zap_opts zt_opts(unsigned flags);
/* Create a store in `dir` (NULL: a fresh temp dir) with ZT_PASSWORD;
 * aborts the test on failure. */
zap_db *zt_create(const char *dir);
/* Open an existing store; NULL on failure. */
zap_db *zt_reopen(const char *dir, const char *password);
/* A 32-byte raw key filled from `seed` (static buffer). */
const uint8_t *zt_raw_key(uint8_t seed);
/* Whether `hay` contains `needle`. */
bool zt_contains(const uint8_t *hay, size_t hay_len, const void *needle,
                 size_t needle_len);

extern const kt_case zt_ops_cases[];
extern const size_t zt_ops_count;

#endif
