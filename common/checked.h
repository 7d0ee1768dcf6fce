/* SPDX-License-Identifier: MIT */
/* Overflow-safe arithmetic for sizes and offsets that come from files. */
#ifndef AIK_COMMON_CHECKED_H
#define AIK_COMMON_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

/* Each returns true on overflow and leaves *r unspecified in that case. */
static inline bool aik_add_overflow(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool aik_mul_overflow(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }

/* True when [off, off+len) lies inside [0, size) without overflow. */
static inline bool aik_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
    uint64_t end;
    return !aik_add_overflow(off, len, &end) && end <= size;
}

/* Round v up to a multiple of align (a power of two); true on overflow. */
static inline bool aik_align_up(uint64_t v, uint64_t align, uint64_t *r)
{
    uint64_t t;
    if (aik_add_overflow(v, align - 1, &t))
        return true;
    *r = t & ~(align - 1);
    return false;
}

#endif
