/* SPDX-License-Identifier: MIT */
/* A growable byte buffer for hand-assembling crafted files in tests. */
#ifndef AIK_TEST_BYTEBUF_H
#define AIK_TEST_BYTEBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static inline void bb_put(bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void bb_u8(bb *b, uint8_t v) { bb_put(b, &v, 1); }
static inline void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static inline void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static inline void bb_f32(bb *b, float v) { bb_put(b, &v, 4); }
static inline void bb_zero(bb *b, size_t n)
{
    while (n--)
        bb_u8(b, 0);
}
/* GGUF string: u64 length + bytes. */
static inline void bb_gstr(bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static inline void bb_pad(bb *b, size_t align)
{
    while (b->n % align)
        bb_u8(b, 0);
}
static inline void bb_free(bb *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

#endif
