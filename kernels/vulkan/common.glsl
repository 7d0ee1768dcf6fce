// SPDX-License-Identifier: MIT
// Shared helpers: weights are bound as raw uint words so one shader reads
// every storage type without 8/16-bit storage extensions (Vulkan 1.2 core
// only). Blocks are GGUF-identical (aik/tensor.h): q8_0 = fp16 d + 32 int8,
// q4_0 = fp16 d + 16 bytes (low nibble element j, high nibble element j+16).

#define DT_F32 0u
#define DT_F16 1u
#define DT_BF16 2u
#define DT_Q8_0 3u
#define DT_Q4_0 4u

// Byte at byte offset b of the weight words.
#define W_BYTE(b) ((w_words[(b) >> 2] >> (((b) & 3u) * 8u)) & 0xffu)
// 16-bit value at an even byte offset b.
#define W_U16(b) ((w_words[(b) >> 2] >> (((b) & 2u) * 8u)) & 0xffffu)

// Bytes of one row of k elements of type dt (k is a block multiple for q*).
uint row_bytes(uint dt, uint k)
{
    if (dt == DT_F32) return k * 4u;
    if (dt == DT_F16 || dt == DT_BF16) return k * 2u;
    if (dt == DT_Q8_0) return (k / 32u) * 34u;
    return (k / 32u) * 18u;
}

float f16_to_f32(uint h) { return unpackHalf2x16(h).x; }
float bf16_to_f32(uint h) { return uintBitsToFloat(h << 16); }
