/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/simd_common.h — scalar tails shared by the SIMD files.
 *
 * Included only by files compiled for one ISA level; everything is static
 * so each file gets its own copy, compiled with its own flags, and nothing
 * built with -mavx2 can leak into code that runs on a CPU without AVX2.
 */
#ifndef AIK_KERNELS_SIMD_COMMON_H
#define AIK_KERNELS_SIMD_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

/* Constants of the Cephes single-precision exp, used by every SIMD expf:
 * x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 polynomial; rel. error
 * ~2 ulp. Inputs are clamped so 2^n stays a normal float: below -87 the
 * result (~1e-38) is 0 for softmax and silu purposes. */
#define AIK_EXP_HI 88.0f
#define AIK_EXP_LO -87.0f
#define AIK_LOG2E 1.44269504088896341f
#define AIK_LN2_HI 0.693359375f
#define AIK_LN2_LO -2.12194440e-4f
#define AIK_EXP_P0 1.9875691500e-4f
#define AIK_EXP_P1 1.3981999507e-3f
#define AIK_EXP_P2 8.3334519073e-3f
#define AIK_EXP_P3 4.1665795894e-2f
#define AIK_EXP_P4 1.6666665459e-1f
#define AIK_EXP_P5 5.0000001201e-1f

static inline float simd_tail_silu(float x)
{
    return x / (1.0f + expf(-x));
}

#endif
