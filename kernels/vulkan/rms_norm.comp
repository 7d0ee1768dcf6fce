// SPDX-License-Identifier: MIT
// y = x / sqrt(mean(x^2) + eps) * w, one workgroup per row.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Wb { float w[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint n_cols; uint has_w; float eps; } p;
#include "reduce.glsl"

void main()
{
    uint r = gl_WorkGroupID.x, t = gl_LocalInvocationID.x, o = r * p.n_cols;
    float ss = 0.0;
    for (uint i = t; i < p.n_cols; i += 64u)
        ss += x[o + i] * x[o + i];
    ss = wg_sum(ss);
    float inv = 1.0 / sqrt(ss / float(p.n_cols) + p.eps);
    for (uint i = t; i < p.n_cols; i += 64u)
        y[o + i] = x[o + i] * inv * (p.has_w != 0u ? w[i] : 1.0);
}
