// SPDX-License-Identifier: MIT
// Quantize f32 activation rows to q8_0 exactly as the CPU does before a
// matmul with q8_0 / q4_0 weights (kernels/cpu/ref.c
// aik_ref_quantize_row_q8_0 = ggml quantize_row_q8_0_ref): d = amax / 127
// rounded to fp16, q = roundf(x / d). Matching the CPU here is what makes
// quantized models produce the same tokens on both backends.
// Output per block: 9 words: the fp16-rounded d as f32 bits, then 32 int8
// packed 4 per word (element j in byte j % 4 of word 1 + j / 4).
#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) writeonly buffer Qb { uint xq[]; };
layout(push_constant) uniform P { uint K; uint N; } p;

// roundf: halfway cases away from zero (GLSL round() leaves them open).
float round_away(float v)
{
    float t = trunc(v);
    return abs(v - t) >= 0.5 ? t + sign(v) : t;
}

// a / b correctly rounded (IEEE round-to-nearest-even). GLSL only promises
// 2.5 ULP for '/', and drivers use reciprocal approximations; activations
// often sit exactly half-way between two quantization steps (x * id ==
// 63.5 happens whenever the row came from quantized embeddings), so one ULP
// in d or id flips q and the CPU and GPU results drift apart. Long division
// of the 24-bit mantissas; operands or results outside the normal range
// (never met for d = amax / 127 and 1 / d of real activations) fall back
// to the driver's division.
float div_rn(float a, float b)
{
    uint ua = floatBitsToUint(a), ub = floatBitsToUint(b);
    int ea = int((ua >> 23) & 0xffu), eb = int((ub >> 23) & 0xffu);
    if (a == 0.0)
        return 0.0;
    if (ea == 0 || eb == 0 || ea == 255 || eb == 255)
        return a / b;
    uint sgn = (ua ^ ub) & 0x80000000u;
    uint ma = (ua & 0x7fffffu) | 0x800000u, mb = (ub & 0x7fffffu) | 0x800000u;
    int e = ea - eb + 127;
    if (ma < mb) {
        ma <<= 1;
        e -= 1;
    }
    uint q = 0u, r = ma;
    for (int i = 0; i < 25; i++) { // 1 leading bit, 23 fraction bits, 1 guard bit
        q <<= 1;
        if (r >= mb) {
            r -= mb;
            q |= 1u;
        }
        r <<= 1;
    }
    uint guard = q & 1u;
    q >>= 1;
    if (guard != 0u && (r != 0u || (q & 1u) != 0u))
        q++;
    if (q == 0x1000000u) {
        q >>= 1;
        e += 1;
    }
    if (e <= 0 || e >= 255)
        return a / b;
    return uintBitsToFloat(sgn | (uint(e) << 23) | (q & 0x7fffffu));
}

// f32 -> f16 bits rounded to nearest even like aik_f32_to_fp16 (the
// rounding of packHalf2x16 is not specified); values outside the f16
// normal range use packHalf2x16.
uint f32_to_f16_rn(float f)
{
    uint x = floatBitsToUint(f);
    uint sgn = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    int e = int(x >> 23) - 127 + 15;
    if (e <= 0 || e >= 31)
        return packHalf2x16(vec2(f, 0.0)) & 0xffffu;
    uint m = x & 0x7fffffu;
    uint h = (uint(e) << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0u))
        h++; // a carry into the exponent is the correct rounding (up to inf)
    return sgn | h;
}

void main()
{
    uint nb = p.K / 32u;
    uint b = gl_GlobalInvocationID.x, n = gl_GlobalInvocationID.y;
    if (b >= nb || n >= p.N)
        return;
    uint xo = n * p.K + b * 32u;
    float amax = 0.0;
    for (uint j = 0u; j < 32u; j++)
        amax = max(amax, abs(x[xo + j]));
    float d = div_rn(amax, 127.0);
    float id = d != 0.0 ? div_rn(1.0, d) : 0.0;
    uint o = (n * nb + b) * 9u;
    xq[o] = floatBitsToUint(unpackHalf2x16(f32_to_f16_rn(d)).x);
    for (uint w = 0u; w < 8u; w++) {
        uint word = 0u;
        for (uint j = 0u; j < 4u; j++) {
            int q = int(round_away(x[xo + w * 4u + j] * id));
            word |= (uint(q) & 0xffu) << (8u * j);
        }
        xq[o + 1u + w] = word;
    }
}
