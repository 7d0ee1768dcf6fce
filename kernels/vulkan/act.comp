// SPDX-License-Identifier: MIT
// OP 0: y = silu(a) = a / (1 + exp(-a)); OP 1: y = silu(a) * b (swiglu).
#version 450
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint OP = 0u;
layout(std430, binding = 0) readonly buffer Ab { float a[]; };
layout(std430, binding = 1) readonly buffer Bb { float b[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint n; uint unused; uint stride; } p;

void main()
{
    uint i = gl_GlobalInvocationID.y * p.stride + gl_GlobalInvocationID.x;
    if (i >= p.n)
        return;
    float v = a[i] / (1.0 + exp(-a[i]));
    y[i] = OP == 0u ? v : v * b[i];
}
