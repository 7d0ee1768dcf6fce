// SPDX-License-Identifier: MIT
// Y[n][m] = sum_k W[m][k] * X[n][k]; W stored as DTYPE (rows of K elements).
// One invocation per output element.
//   f32 / f16 / bf16 weights: converted exactly, X is f32 (binding 1 holds
//     float bits), f32 accumulation, like the CPU.
//   q8_0 / q4_0 weights: X was quantized to q8_0 by quantize_q8.comp
//     (binding 1: 9 words per block) and each block is an exact integer dot
//     product scaled by d_w and d_x, in the order of kernels/cpu/ref.c
//     (ggml's vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0).
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint DTYPE = 0u;
layout(std430, binding = 0) readonly buffer Wb { uint w_words[]; };
layout(std430, binding = 1) readonly buffer Xb { uint xw[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint M; uint K; uint N; } p;
#include "common.glsl"

int xq_at(uint o, uint j) { return int(xw[o + 1u + j / 4u] << (24u - 8u * (j % 4u))) >> 24; }

void main()
{
    uint m = gl_GlobalInvocationID.x, n = gl_GlobalInvocationID.y;
    if (m >= p.M || n >= p.N)
        return;
    uint rb = m * row_bytes(DTYPE, p.K);
    uint xo = n * p.K;
    float sum = 0.0;
    if (DTYPE == DT_F32) {
        uint wo = rb >> 2;
        for (uint k = 0u; k < p.K; k++)
            sum += uintBitsToFloat(w_words[wo + k]) * uintBitsToFloat(xw[xo + k]);
    } else if (DTYPE == DT_F16 || DTYPE == DT_BF16) {
        for (uint k = 0u; k < p.K; k++) {
            uint h = W_U16(rb + 2u * k);
            sum += (DTYPE == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h)) * uintBitsToFloat(xw[xo + k]);
        }
    } else if (DTYPE == DT_Q8_0) {
        uint nb = p.K / 32u;
        for (uint b = 0u; b < nb; b++) {
            uint bo = rb + b * 34u, xb = (n * nb + b) * 9u;
            int s = 0;
            for (uint j = 0u; j < 32u; j++)
                s += (int(W_BYTE(bo + 2u + j) << 24) >> 24) * xq_at(xb, j);
            sum += float(s) * (f16_to_f32(W_U16(bo)) * uintBitsToFloat(xw[xb]));
        }
    } else {
        uint nb = p.K / 32u;
        for (uint b = 0u; b < nb; b++) {
            uint bo = rb + b * 18u, xb = (n * nb + b) * 9u;
            int s0 = 0, s1 = 0;
            for (uint j = 0u; j < 16u; j++) {
                uint q = W_BYTE(bo + 2u + j);
                s0 += (int(q & 15u) - 8) * xq_at(xb, j);
                s1 += (int(q >> 4) - 8) * xq_at(xb, j + 16u);
            }
            sum += float(s0 + s1) * f16_to_f32(W_U16(bo)) * uintBitsToFloat(xw[xb]);
        }
    }
    y[n * p.M + m] = sum;
}
