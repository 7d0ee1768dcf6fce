// SPDX-License-Identifier: MIT
// Y[n][m] = sum_k W[m][k] * X[n][k]; W stored as DTYPE (rows of K elements,
// dequantized here), X and Y f32. One invocation per output element; the
// activations stay f32 (the CPU quantizes them to q8_0 for quantized
// weights, so those paths match a dequantized-weight f32 reference instead).
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint DTYPE = 0u;
layout(std430, binding = 0) readonly buffer Wb { uint w_words[]; };
layout(std430, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint M; uint K; uint N; } p;
#include "common.glsl"

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
            sum += uintBitsToFloat(w_words[wo + k]) * x[xo + k];
    } else if (DTYPE == DT_F16 || DTYPE == DT_BF16) {
        for (uint k = 0u; k < p.K; k++) {
            uint h = W_U16(rb + 2u * k);
            sum += (DTYPE == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h)) * x[xo + k];
        }
    } else if (DTYPE == DT_Q8_0) {
        for (uint b = 0u; b < p.K / 32u; b++) {
            uint bo = rb + b * 34u, k0 = xo + b * 32u;
            float s = 0.0;
            for (uint j = 0u; j < 32u; j++)
                s += float(int(W_BYTE(bo + 2u + j) << 24) >> 24) * x[k0 + j];
            sum += f16_to_f32(W_U16(bo)) * s;
        }
    } else {
        for (uint b = 0u; b < p.K / 32u; b++) {
            uint bo = rb + b * 18u, k0 = xo + b * 32u;
            float s = 0.0;
            for (uint j = 0u; j < 16u; j++) {
                uint q = W_BYTE(bo + 2u + j);
                s += float(int(q & 15u) - 8) * x[k0 + j] + float(int(q >> 4) - 8) * x[k0 + j + 16u];
            }
            sum += f16_to_f32(W_U16(bo)) * s;
        }
    }
    y[n * p.M + m] = sum;
}
