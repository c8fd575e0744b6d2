/* SPDX-License-Identifier: Apache-2.0 */
/* Run-time CPU feature dispatch for kms_crypto's hot loops.
 *
 * The same C source of a hot function is compiled twice: for the baseline
 * ISA and, on x86-64 with GCC or Clang, with a target attribute (BMI1/BMI2
 * for Keccak; AVX2 for the polynomial arithmetic, which the compiler then
 * vectorises). The variant is chosen per call with __builtin_cpu_supports.
 * Integer code compiled for another ISA computes exactly the same results;
 * the tests compare both variants. Define KMS_NO_DISPATCH to build the
 * baseline only. */
#ifndef KMS_CPU_H
#define KMS_CPU_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&        \
    !defined(KMS_NO_DISPATCH)
#define KMS_X86_DISPATCH 1
#define KMS_TARGET_BMI2  __attribute__((target("bmi,bmi2")))
#define KMS_TARGET_AVX2  __attribute__((target("avx2,bmi,bmi2")))

static inline int
kms_cpu_has_bmi2(void)
{
    return __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}

static inline int
kms_cpu_has_avx2(void)
{
    return __builtin_cpu_supports("avx2") && kms_cpu_has_bmi2();
}
#endif

#define KMS_ALWAYS_INLINE inline __attribute__((always_inline))

#endif
