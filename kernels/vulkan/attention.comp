// SPDX-License-Identifier: MIT
// Causal grouped-query attention of one (row, query head) per workgroup over
// the KV cache (already holding this batch's k and v): scores, softmax and
// the weighted sum of values, as kernels/cpu/ref.c aik_ref_attention_head.
// Scores go to a global scratch row (ctx can exceed shared memory).
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Qb { float q[]; };
layout(std430, binding = 1) readonly buffer Kb { float kc[]; };
layout(std430, binding = 2) readonly buffer Vb { float vc[]; };
layout(std430, binding = 3) writeonly buffer Ob { float o[]; };
layout(std430, binding = 4) coherent buffer Sb { float sc[]; };
layout(push_constant) uniform P {
    uint n_heads; uint n_kv_heads; uint head_dim; uint pos0; uint ctx; float scale;
} p;
#include "reduce.glsl"

void main()
{
    uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
    uint kvh = h / (p.n_heads / p.n_kv_heads);
    uint kv_cols = p.n_kv_heads * p.head_dim;
    uint qo = (r * p.n_heads + h) * p.head_dim;
    uint n_pos = p.pos0 + r + 1u;
    uint so = (r * p.n_heads + h) * p.ctx;

    float m = -3.402823466e38;
    for (uint pos = t; pos < n_pos; pos += 64u) {
        uint ko = pos * kv_cols + kvh * p.head_dim;
        float d = 0.0;
        for (uint i = 0u; i < p.head_dim; i++)
            d += q[qo + i] * kc[ko + i];
        d *= p.scale;
        sc[so + pos] = d;
        m = max(m, d);
    }
    m = wg_max(m);
    float s = 0.0;
    for (uint pos = t; pos < n_pos; pos += 64u) {
        float e = exp(sc[so + pos] - m);
        sc[so + pos] = e;
        s += e;
    }
    s = wg_sum(s);
    float inv = 1.0 / s;
    for (uint pos = t; pos < n_pos; pos += 64u)
        sc[so + pos] *= inv;
    memoryBarrierBuffer();
    barrier();
    for (uint d = t; d < p.head_dim; d += 64u) {
        float acc = 0.0;
        for (uint pos = 0u; pos < n_pos; pos++)
            acc += sc[so + pos] * vc[pos * kv_cols + kvh * p.head_dim + d];
        o[qo + d] = acc;
    }
}
