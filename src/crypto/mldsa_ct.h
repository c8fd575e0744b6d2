/* SPDX-License-Identifier: Apache-2.0 */
/* Constant-time test hooks.
 *
 * KMS_CT_DECLASSIFY(p, len) marks `len` bytes at `p` as values the
 * algorithm may reveal (a rejection decision, a public output). It is a
 * no-op unless the code is compiled with -DKMS_CT_TEST, in which case it
 * tells valgrind memcheck that the bytes are "defined": the constant-time
 * test marks every secret input undefined, and memcheck then reports any
 * branch or memory index that depends on a secret that was not declassified
 * at one of these points. KMS_CT_POISON marks bytes secret the same way. */
#ifndef KMS_MLDSA_CT_H
#define KMS_MLDSA_CT_H

#ifdef KMS_CT_TEST
#include <valgrind/memcheck.h>
#define KMS_CT_DECLASSIFY(p, len) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (len)))
#define KMS_CT_POISON(p, len)     ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (len)))
#else
#define KMS_CT_DECLASSIFY(p, len) ((void)(p), (void)(len))
#define KMS_CT_POISON(p, len)     ((void)(p), (void)(len))
#endif

#endif
