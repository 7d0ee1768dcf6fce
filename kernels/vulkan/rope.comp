// SPDX-License-Identifier: MIT
// Rotary embedding. cs holds (cos, sin) per (position, pair), computed on the
// host in double precision exactly as the CPU reference does, so the result
// does not depend on the device's transcendental accuracy.
// NEOX 0: pairs (2i, 2i+1); 1: pairs (i, i + head_dim/2).
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Cb { vec2 cs[]; };
layout(std430, binding = 2) writeonly buffer Yb { float y[]; };
layout(push_constant) uniform P { uint n_heads; uint head_dim; uint pos0; uint neox; uint total; uint stride; } p;

void main()
{
    uint id = gl_GlobalInvocationID.y * p.stride + gl_GlobalInvocationID.x;
    if (id >= p.total)
        return;
    uint half_dim = p.head_dim / 2u;
    uint i = id % half_dim, h = (id / half_dim) % p.n_heads, r = id / (half_dim * p.n_heads);
    uint base = (r * p.n_heads + h) * p.head_dim;
    uint i0 = p.neox != 0u ? i : 2u * i;
    uint i1 = p.neox != 0u ? i + half_dim : 2u * i + 1u;
    vec2 c = cs[(p.pos0 + r) * half_dim + i];
    float a = x[base + i0], b = x[base + i1];
    y[base + i0] = a * c.x - b * c.y;
    y[base + i1] = a * c.y + b * c.x;
}
