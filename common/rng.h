/* SPDX-License-Identifier: MIT */
/* Small deterministic random numbers shared by sampling, initialisation and
 * training (same seed, same stream, on every machine). */
#ifndef AIK_COMMON_RNG_H
#define AIK_COMMON_RNG_H

#include <stdint.h>

/* splitmix64: advances *state and returns the next 64 random bits. */
static inline uint64_t aik_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
