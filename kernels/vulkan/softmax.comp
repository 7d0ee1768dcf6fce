// SPDX-License-Identifier: MIT
// Row-wise softmax with the maximum subtracted first, one workgroup per row.
#version 450
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) buffer Yb { float y[]; };
layout(push_constant) uniform P { uint n_cols; } p;
#include "reduce.glsl"

void main()
{
    uint r = gl_WorkGroupID.x, t = gl_LocalInvocationID.x, o = r * p.n_cols;
    float m = -3.402823466e38;
    for (uint i = t; i < p.n_cols; i += 64u)
        m = max(m, x[o + i]);
    m = wg_max(m);
    float s = 0.0;
    for (uint i = t; i < p.n_cols; i += 64u) {
        float e = exp(x[o + i] - m);
        y[o + i] = e; // each invocation re-reads only its own elements below
        s += e;
    }
    s = wg_sum(s);
    float inv = 1.0 / s;
    for (uint i = t; i < p.n_cols; i += 64u)
        y[o + i] *= inv;
}
