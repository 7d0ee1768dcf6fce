/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/ref.c — the scalar reference of every kernel.
 *
 * Written to be read, not to be fast: each function is the formula of its
 * op. The SIMD files are tested against these. Quantization and the
 * quantized dot products follow ggml's reference code exactly (same
 * formulas, same order of operations) so blocks are bit-identical to GGUF's.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* ------------------------------------------------------- conversions --- */

float aik_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;

    if (exp == 0) {
        if (mant == 0)
            return bits_f32(sign);
        /* subnormal: shift the mantissa up until the implicit bit appears */
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400u));
        mant &= 0x3ffu;
        return bits_f32(sign | (uint32_t)(127 - 15 - e) << 23 | mant << 13);
    }
    if (exp == 31) /* inf, or NaN: payload kept, made quiet like vcvtph2ps */
        return bits_f32(sign | 0x7f800000u | mant << 13 | (mant ? 0x400000u : 0));
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

uint16_t aik_f32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);

    x &= 0x7fffffffu;
    if (x > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    /* 65520 is half-way between 65504 (max) and 65536: ties-to-even goes up */
    if (x >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (x < 0x38800000u) { /* below 2^-14: f16 subnormal or zero */
        if (x <= 0x33000000u) /* <= 2^-25 rounds (ties-to-even) to 0 */
            return sign;
        uint32_t e = x >> 23;
        uint32_t m = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value / 2^-24 = m >> shift */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((x >> 23) - 112) << 10 | ((x & 0x7fffffu) >> 13);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++; /* a carry into the exponent is the right answer */
    return (uint16_t)(sign | h);
}

float aik_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t aik_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);

    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: truncating could give inf */
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static void ref_fp16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = aik_fp16_to_f32(src[i]);
}

static void ref_f32_to_fp16_row(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = aik_f32_to_fp16(src[i]);
}

static void ref_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = aik_bf16_to_f32(src[i]);
}

static void ref_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = aik_f32_to_bf16(src[i]);
}

/* ------------------------------------------------------ quantization --- */

void aik_ref_quantize_row_q8_0(const float *x, void *blocks, int64_t n)
{
    aik_block_q8_0 *y = blocks;
    assert(n % AIK_QK8_0 == 0);

    for (int64_t i = 0; i < n / AIK_QK8_0; i++) {
        const float *xb = x + i * AIK_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < AIK_QK8_0; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = aik_f32_to_fp16(d);
        for (int j = 0; j < AIK_QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

void aik_ref_quantize_row_q4_0(const float *x, void *blocks, int64_t n)
{
    aik_block_q4_0 *y = blocks;
    assert(n % AIK_QK4_0 == 0);

    for (int64_t i = 0; i < n / AIK_QK4_0; i++) {
        const float *xb = x + i * AIK_QK4_0;
        float amax = 0.0f, max = 0.0f; /* max: the signed value of largest |x| */
        for (int j = 0; j < AIK_QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        /* the extreme value maps to -8 exactly, using the whole range */
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = aik_f32_to_fp16(d);
        for (int j = 0; j < AIK_QK4_0 / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[AIK_QK4_0 / 2 + j] * id;
            int q0 = (int)(int8_t)(x0 + 8.5f);
            int q1 = (int)(int8_t)(x1 + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void aik_ref_dequantize_row(aik_dtype t, const void *src, float *dst, int64_t n)
{
    switch (t) {
    case AIK_DTYPE_F32:
        memmove(dst, src, (size_t)n * sizeof(float));
        break;
    case AIK_DTYPE_F16:
        ref_fp16_to_f32_row(src, dst, n);
        break;
    case AIK_DTYPE_BF16:
        ref_bf16_to_f32_row(src, dst, n);
        break;
    case AIK_DTYPE_Q8_0: {
        const aik_block_q8_0 *b = src;
        for (int64_t i = 0; i < n / AIK_QK8_0; i++) {
            const float d = aik_fp16_to_f32(b[i].d);
            for (int j = 0; j < AIK_QK8_0; j++)
                dst[i * AIK_QK8_0 + j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case AIK_DTYPE_Q4_0: {
        const aik_block_q4_0 *b = src;
        for (int64_t i = 0; i < n / AIK_QK4_0; i++) {
            const float d = aik_fp16_to_f32(b[i].d);
            for (int j = 0; j < AIK_QK4_0 / 2; j++) {
                dst[i * AIK_QK4_0 + j] = d * (float)((b[i].qs[j] & 0x0f) - 8);
                dst[i * AIK_QK4_0 + j + AIK_QK4_0 / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    default:
        assert(!"unknown dtype");
    }
}

/* ------------------------------------------------------ dot products --- */

float aik_ref_dot_f32(const float *a, const float *b, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

float aik_ref_dot_f16_f32(const uint16_t *a, const float *b, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += aik_fp16_to_f32(a[i]) * b[i];
    return sum;
}

float aik_ref_dot_bf16_f32(const uint16_t *a, const float *b, int64_t n)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += aik_bf16_to_f32(a[i]) * b[i];
    return sum;
}

/* As ggml_vec_dot_q8_0_q8_0: exact integer sum per block, scaled once. */
float aik_ref_dot_q8_0_q8_0(const void *w, const void *x, int64_t n)
{
    const aik_block_q8_0 *a = w, *b = x;
    float sum = 0.0f;

    for (int64_t i = 0; i < n / AIK_QK8_0; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < AIK_QK8_0; j++)
            sumi += (int32_t)a[i].qs[j] * (int32_t)b[i].qs[j];
        sum += (float)sumi * (aik_fp16_to_f32(a[i].d) * aik_fp16_to_f32(b[i].d));
    }
    return sum;
}

/* As ggml_vec_dot_q4_0_q8_0: low nibbles pair with x[0..15], high with
 * x[16..31]. */
float aik_ref_dot_q4_0_q8_0(const void *w, const void *x, int64_t n)
{
    const aik_block_q4_0 *a = w;
    const aik_block_q8_0 *b = x;
    float sum = 0.0f;

    for (int64_t i = 0; i < n / AIK_QK4_0; i++) {
        int32_t sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < AIK_QK4_0 / 2; j++) {
            const int v0 = (a[i].qs[j] & 0x0f) - 8;
            const int v1 = (a[i].qs[j] >> 4) - 8;
            sumi0 += v0 * b[i].qs[j];
            sumi1 += v1 * b[i].qs[j + AIK_QK4_0 / 2];
        }
        sum += (float)(sumi0 + sumi1) * aik_fp16_to_f32(a[i].d) * aik_fp16_to_f32(b[i].d);
    }
    return sum;
}

static float ref_dot_f32_v(const void *w, const void *x, int64_t n)
{
    return aik_ref_dot_f32(w, x, n);
}

static float ref_dot_f16_v(const void *w, const void *x, int64_t n)
{
    return aik_ref_dot_f16_f32(w, x, n);
}

static float ref_dot_bf16_v(const void *w, const void *x, int64_t n)
{
    return aik_ref_dot_bf16_f32(w, x, n);
}

#define REF_DOT4(name, fn)                                                   \
    static void name(const void *w, size_t stride, const void *x, int64_t n, \
                     float out[4])                                           \
    {                                                                        \
        for (int r = 0; r < 4; r++)                                          \
            out[r] = fn((const char *)w + (size_t)r * stride, x, n);         \
    }
REF_DOT4(ref_dot4_f32, ref_dot_f32_v)
REF_DOT4(ref_dot4_f16, ref_dot_f16_v)
REF_DOT4(ref_dot4_bf16, ref_dot_bf16_v)
REF_DOT4(ref_dot4_q8_0, aik_ref_dot_q8_0_q8_0)
REF_DOT4(ref_dot4_q4_0, aik_ref_dot_q4_0_q8_0)

/* Y[n][m] = sum_k W[m][k] X[n][k], one dot product at a time. For quantized
 * weights each activation row is first quantized to q8_0 into xq (K/32
 * blocks), as ggml does. */
void aik_ref_matmul(aik_dtype wt, const void *W, const float *X, void *xq,
                    float *Y, int64_t M, int64_t K, int64_t N)
{
    const size_t wrow = aik_cpu_row_bytes(wt, K);

    for (int64_t n = 0; n < N; n++) {
        const float *x = X + n * K;
        if (wt == AIK_DTYPE_Q8_0 || wt == AIK_DTYPE_Q4_0)
            aik_ref_quantize_row_q8_0(x, xq, K);
        for (int64_t m = 0; m < M; m++) {
            const char *w = (const char *)W + (size_t)m * wrow;
            float sum = 0.0f;
            switch (wt) {
            case AIK_DTYPE_F32: sum = aik_ref_dot_f32((const float *)w, x, K); break;
            case AIK_DTYPE_F16: sum = aik_ref_dot_f16_f32((const uint16_t *)w, x, K); break;
            case AIK_DTYPE_BF16: sum = aik_ref_dot_bf16_f32((const uint16_t *)w, x, K); break;
            case AIK_DTYPE_Q8_0: sum = aik_ref_dot_q8_0_q8_0(w, xq, K); break;
            case AIK_DTYPE_Q4_0: sum = aik_ref_dot_q4_0_q8_0(w, xq, K); break;
            default: assert(!"unknown dtype");
            }
            Y[n * M + m] = sum;
        }
    }
}

/* ------------------------------------------------ element-wise / rows --- */

void aik_ref_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    const float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

void aik_ref_add(const float *a, const float *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void aik_ref_mul(const float *a, const float *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

void aik_ref_scale(const float *x, float s, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * s;
}

void aik_ref_silu(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

void aik_ref_swiglu(const float *gate, const float *up, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void aik_ref_softmax(float *x, int64_t n)
{
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        max = fmaxf(max, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void aik_ref_axpy(float a, const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

void aik_ref_wsum(const float *a, const float *v, int64_t stride, int64_t n_pos,
                  int64_t dim, float *out)
{
    for (int64_t d = 0; d < dim; d++)
        out[d] = 0.0f;
    for (int64_t p = 0; p < n_pos; p++)
        aik_ref_axpy(a[p], v + p * stride, out, dim);
}

void aik_ref_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta,
                  bool neox)
{
    const int half = head_dim / 2;

    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i++) {
            const double freq = pow((double)theta, -2.0 * i / head_dim);
            const double angle = (double)pos * freq;
            const float c = (float)cos(angle), s = (float)sin(angle);
            const int i0 = neox ? i : 2 * i;
            const int i1 = neox ? i + half : 2 * i + 1;
            const float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = a * s + b * c;
        }
    }
}

void aik_ref_attention_head(const float *q, const float *k_cache,
                            const float *v_cache, int64_t n_pos, int head_dim,
                            int64_t kv_stride, float scale, float *scores,
                            float *out)
{
    for (int64_t p = 0; p < n_pos; p++)
        scores[p] = scale * aik_ref_dot_f32(q, k_cache + p * kv_stride, head_dim);
    aik_ref_softmax(scores, n_pos);
    for (int d = 0; d < head_dim; d++)
        out[d] = 0.0f;
    for (int64_t p = 0; p < n_pos; p++)
        aik_ref_axpy(scores[p], v_cache + p * kv_stride, out, head_dim);
}

const aik_cpu_ops aik_cpu_ops_scalar = {
    .dot = {
        [AIK_DTYPE_F32] = ref_dot_f32_v,
        [AIK_DTYPE_F16] = ref_dot_f16_v,
        [AIK_DTYPE_BF16] = ref_dot_bf16_v,
        [AIK_DTYPE_Q8_0] = aik_ref_dot_q8_0_q8_0,
        [AIK_DTYPE_Q4_0] = aik_ref_dot_q4_0_q8_0,
    },
    .dot4 = {
        [AIK_DTYPE_F32] = ref_dot4_f32,
        [AIK_DTYPE_F16] = ref_dot4_f16,
        [AIK_DTYPE_BF16] = ref_dot4_bf16,
        [AIK_DTYPE_Q8_0] = ref_dot4_q8_0,
        [AIK_DTYPE_Q4_0] = ref_dot4_q4_0,
    },
    .quantize_q8_0 = aik_ref_quantize_row_q8_0,
    .fp16_to_f32 = ref_fp16_to_f32_row,
    .f32_to_fp16 = ref_f32_to_fp16_row,
    .bf16_to_f32 = ref_bf16_to_f32_row,
    .f32_to_bf16 = ref_f32_to_bf16_row,
    .rms_norm = aik_ref_rms_norm,
    .add = aik_ref_add,
    .mul = aik_ref_mul,
    .scale = aik_ref_scale,
    .silu = aik_ref_silu,
    .swiglu = aik_ref_swiglu,
    .softmax = aik_ref_softmax,
    .axpy = aik_ref_axpy,
    .wsum = aik_ref_wsum,
};
