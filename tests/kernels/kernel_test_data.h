/* SPDX-License-Identifier: MIT */
/*
 * What the kernel tests share: a seeded xorshift generator (each test
 * program has its own copy of the state, so runs are reproducible), random
 * fills, the NMSE used for every tolerance, and weight matrices quantized
 * row by row the way files store them.
 */
#ifndef AIK_TESTS_KERNEL_TEST_DATA_H
#define AIK_TESTS_KERNEL_TEST_DATA_H

#include <stdint.h>

#include "kernels/cpu/cpu_internal.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint32_t rnd_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* uniform in [-1, 1) */
static inline float rnd_f(void)
{
    return (float)rnd_u32() / 2147483648.0f - 1.0f;
}

static inline void fill(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = rnd_f() * scale;
}

static inline double nmse(const float *got, const float *want, int64_t n)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0.0 ? num / den : num;
}

/* M rows of K values (wf, row-major) as type t, row after row, into dst. */
static inline void make_weights(aik_dtype t, const float *wf, void *dst, int64_t M, int64_t K)
{
    const size_t rb = aik_cpu_row_bytes(t, K);
    for (int64_t m = 0; m < M; m++)
        aik_quantize_row(t, wf + m * K, (char *)dst + m * rb, K);
}

#endif
