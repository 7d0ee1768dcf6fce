// SPDX-License-Identifier: MIT
// Embedding lookup: y[r][c] = table[tokens[r]][c] converted to f32.
// One invocation per element; DTYPE is the table's storage type.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint DTYPE = 0u;
layout(std430, binding = 0) readonly buffer Wb { uint w_words[]; };
layout(std430, binding = 1) readonly buffer Tb { int tokens[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint n_cols; uint rows; uint n_table_rows; } p;
#include "common.glsl"

void main()
{
    uint c = gl_GlobalInvocationID.x, r = gl_GlobalInvocationID.y;
    if (c >= p.n_cols || r >= p.rows)
        return;
    // The host validates ids; an id outside the table still must not read
    // outside the buffer (no robustBufferAccess in core Vulkan): zeros.
    if (tokens[r] < 0 || uint(tokens[r]) >= p.n_table_rows) {
        y[r * p.n_cols + c] = 0.0;
        return;
    }
    uint rb = uint(tokens[r]) * row_bytes(DTYPE, p.n_cols);
    float v;
    if (DTYPE == DT_F32) {
        v = uintBitsToFloat(w_words[(rb >> 2) + c]);
    } else if (DTYPE == DT_F16) {
        v = f16_to_f32(W_U16(rb + 2u * c));
    } else if (DTYPE == DT_BF16) {
        v = bf16_to_f32(W_U16(rb + 2u * c));
    } else if (DTYPE == DT_Q8_0) {
        uint bo = rb + (c / 32u) * 34u;
        int q = int(W_BYTE(bo + 2u + c % 32u) << 24) >> 24;
        v = f16_to_f32(W_U16(bo)) * float(q);
    } else {
        uint bo = rb + (c / 32u) * 18u, j = c % 32u;
        uint b = W_BYTE(bo + 2u + (j & 15u));
        uint q = j < 16u ? (b & 15u) : (b >> 4);
        v = f16_to_f32(W_U16(bo)) * float(int(q) - 8);
    }
    y[r * p.n_cols + c] = v;
}
