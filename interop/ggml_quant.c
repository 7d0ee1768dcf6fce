/* SPDX-License-Identifier: MIT */
/* ggml block formats -> f32, f32 -> q8_0. Layouts follow ggml-common.h; the
 * code reads blocks with memcpy (GGUF data is only 32-byte aligned and the
 * block structs are packed, so direct struct access could be unaligned). */
#include "interop/ggml_quant.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "interop/gguf.h"

float aik_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    float f;

    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 */
        f = (float)mant * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t aik_float_to_half(float f)
{
    uint32_t x, sign, mant;
    int32_t exp;

    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000;
    exp = (int32_t)((x >> 23) & 0xff);
    mant = x & 0x7fffff;
    if (exp == 0xff) /* inf / nan (keep nan quiet) */
        return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    exp = exp - 127 + 15;
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        uint32_t shift, half, r;
        if (exp < -10)
            return (uint16_t)sign;
        mant |= 0x800000;
        shift = (uint32_t)(14 - exp);
        half = 1u << (shift - 1);
        r = mant >> shift;
        if ((mant & ((1u << shift) - 1)) > half || ((mant & ((1u << shift) - 1)) == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    {
        uint32_t r = ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
            r++; /* may carry into the exponent, which is the right result */
        return (uint16_t)(sign | r);
    }
}

float aik_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float rd_half(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return aik_half_to_float(h);
}

bool aik_ggml_can_dequantize(uint32_t type)
{
    switch (type) {
    case AIK_GGML_F32: case AIK_GGML_F16: case AIK_GGML_BF16: case AIK_GGML_Q4_0: case AIK_GGML_Q4_1:
    case AIK_GGML_Q5_0: case AIK_GGML_Q5_1: case AIK_GGML_Q8_0: case AIK_GGML_Q8_1: case AIK_GGML_Q4_K:
    case AIK_GGML_Q5_K: case AIK_GGML_Q6_K: case AIK_GGML_Q8_K:
        return true;
    default:
        return false;
    }
}

/* K-quant 6-bit scale/min unpacking (ggml get_scale_min_k4). */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

static void deq_block(uint32_t type, const uint8_t *b, float *y)
{
    switch (type) {
    case AIK_GGML_Q4_0: { /* d, qs[16] */
        float d = rd_half(b);
        for (int j = 0; j < 16; j++) {
            y[j] = ((b[2 + j] & 0xF) - 8) * d;
            y[j + 16] = ((b[2 + j] >> 4) - 8) * d;
        }
        break;
    }
    case AIK_GGML_Q4_1: { /* d, m, qs[16] */
        float d = rd_half(b), m = rd_half(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (b[4 + j] & 0xF) * d + m;
            y[j + 16] = (b[4 + j] >> 4) * d + m;
        }
        break;
    }
    case AIK_GGML_Q5_0: { /* d, qh[4], qs[16] */
        float d = rd_half(b);
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        for (int j = 0; j < 16; j++) {
            uint8_t h0 = (uint8_t)(((qh >> j) << 4) & 0x10), h1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            y[j] = (((b[6 + j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (((b[6 + j] >> 4) | h1) - 16) * d;
        }
        break;
    }
    case AIK_GGML_Q5_1: { /* d, m, qh[4], qs[16] */
        float d = rd_half(b), m = rd_half(b + 2);
        uint32_t qh;
        memcpy(&qh, b + 4, 4);
        for (int j = 0; j < 16; j++) {
            uint8_t h0 = (uint8_t)(((qh >> j) << 4) & 0x10), h1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            y[j] = ((b[8 + j] & 0xF) | h0) * d + m;
            y[j + 16] = ((b[8 + j] >> 4) | h1) * d + m;
        }
        break;
    }
    case AIK_GGML_Q8_0: case AIK_GGML_Q8_1: { /* d, (s), qs[32] */
        float d = rd_half(b);
        const int8_t *q = (const int8_t *)(b + (type == AIK_GGML_Q8_0 ? 2 : 4));
        for (int j = 0; j < 32; j++)
            y[j] = q[j] * d;
        break;
    }
    case AIK_GGML_Q4_K: { /* d, dmin, scales[12], qs[128] */
        float d = rd_half(b), min = rd_half(b + 2);
        const uint8_t *sc = b + 4, *q = b + 16;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
            uint8_t s, m;
            float d1, m1, d2, m2;
            scale_min_k4(is, sc, &s, &m);
            d1 = d * s;
            m1 = min * m;
            scale_min_k4(is + 1, sc, &s, &m);
            d2 = d * s;
            m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
        break;
    }
    case AIK_GGML_Q5_K: { /* d, dmin, scales[12], qh[32], qs[128] */
        float d = rd_half(b), min = rd_half(b + 2);
        const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32) {
            uint8_t s, m;
            float d1, m1, d2, m2;
            scale_min_k4(is, sc, &s, &m);
            d1 = d * s;
            m1 = min * m;
            scale_min_k4(is + 1, sc, &s, &m);
            d2 = d * s;
            m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
        break;
    }
    case AIK_GGML_Q6_K: { /* ql[128], qh[64], scales[16] (int8), d */
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = rd_half(b + 208);
        for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
        break;
    }
    case AIK_GGML_Q8_K: { /* f32 d, qs[256], bsums[16] */
        float d;
        const int8_t *q = (const int8_t *)(b + 4);
        memcpy(&d, b, 4);
        for (int j = 0; j < 256; j++)
            y[j] = d * q[j];
        break;
    }
    default:
        break;
    }
}

int aik_ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n)
{
    const uint8_t *p = src;
    uint32_t blck, bsz;

    if (!aik_ggml_can_dequantize(type) || !aik_ggml_type_info(type, &blck, &bsz) || n % blck != 0)
        return -EINVAL;
    switch (type) {
    case AIK_GGML_F32:
        memcpy(dst, src, n * 4);
        return 0;
    case AIK_GGML_F16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = rd_half(p + 2 * i);
        return 0;
    case AIK_GGML_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = aik_bf16_to_float(h);
        }
        return 0;
    default:
        for (uint64_t i = 0; i < n / blck; i++)
            deq_block(type, p + i * bsz, dst + i * blck);
        return 0;
    }
}

int aik_quantize_q8_0(const float *src, void *dst, uint64_t n)
{
    uint8_t *out = dst;

    if (n % 32 != 0)
        return -EINVAL;
    for (uint64_t i = 0; i < n / 32; i++) {
        const float *x = src + i * 32;
        float amax = 0.0f, d, id;
        uint16_t dh;
        int8_t q[32];

        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax)
                amax = fabsf(x[j]);
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; j++)
            q[j] = (int8_t)roundf(x[j] * id);
        dh = aik_float_to_half(d);
        memcpy(out + i * 34, &dh, 2);
        memcpy(out + i * 34 + 2, q, 32);
    }
    return 0;
}
