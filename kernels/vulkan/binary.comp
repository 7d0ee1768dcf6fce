// SPDX-License-Identifier: MIT
// y = a + b (OP 0) or a * b (OP 1). b is either the same shape as a
// (bcols == 0) or one row of bcols values broadcast over every row.
#version 450
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint OP = 0u;
layout(std430, binding = 0) readonly buffer Ab { float a[]; };
layout(std430, binding = 1) readonly buffer Bb { float b[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint n; uint bcols; uint stride; } p;

void main()
{
    uint i = gl_GlobalInvocationID.y * p.stride + gl_GlobalInvocationID.x;
    if (i >= p.n)
        return;
    float bv = b[p.bcols != 0u ? i % p.bcols : i];
    y[i] = OP == 0u ? a[i] + bv : a[i] * bv;
}
