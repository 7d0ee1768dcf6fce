/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/packed.c — q8_0 / q4_0 weights repacked for decode.
 *
 * Why: in the file layout (ggml's) each row is a run of 34- or 18-byte
 * blocks, and a mat-vec spends per block and row one vpdpbusd plus a
 * conversion and two FMAs on 8 partial sums, then reduces them: ~5 vector
 * operations per 32 weights. Decode on 2 cores needs ~11 GB/s of weights
 * per core, and q4_0 in that layout ran at 11 GB/s from L1 — compute-bound
 * before any memory stall. Packed, 16 rows share every operation but the
 * vpdpbusd itself: one zmm lane per row, the activations broadcast.
 *
 * Layout of a packed matrix (M x K, nb = K / 32 blocks per row):
 *   floor(M / 16) groups of 16 rows, then the M % 16 tail rows unchanged
 *   (the file's own blocks). A group is nb packed blocks, in order; a
 *   packed block is
 *     d[16]          the 16 rows' fp16 scales (32 bytes), then
 *     q8_0: for quad q = 0..7:  16 rows x 4 bytes: row r's weights
 *                               4q..4q+3 as unsigned bytes w + 128
 *                               (512 bytes)
 *     q4_0: for pair p = 0..3:  16 rows x 4 bytes: row r's file bytes
 *                               qs[4p..4p+3]; low nibbles are weights
 *                               4p..4p+3, high nibbles 16+4p..16+4p+3
 *                               (256 bytes)
 * so one 64-byte load feeds 16 rows x 4 weights to one vpdpbusd against
 * 4 activation bytes broadcast to every lane. A whole group is one
 * contiguous run: decode reads each thread's range of the matrix as a
 * single stream.
 *
 * Arithmetic, per row and block (u = the unsigned weights, x = q8_0 of the
 * activations, d and c from aik_xblock):
 *   I = sum u * x (exact int32), t = fma(I, d_x, -c), acc += t * d_w
 * with two accumulators (even and odd blocks), added at the end. Every
 * level computes exactly this, so packed results are bitwise equal across
 * ISA levels, row splits and batch sizes. They differ from the unpacked
 * kernels' by rounding (the same ~1e-14 NMSE from the reference).
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

enum { GROUP_ROWS = 16, D_BYTES = 2 * GROUP_ROWS };

static bool is_quantized(aik_dtype t)
{
    return t == AIK_DTYPE_Q8_0 || t == AIK_DTYPE_Q4_0;
}

/* Bytes of the weights of one packed block (after the scales). */
static size_t q_bytes(aik_dtype wt)
{
    return wt == AIK_DTYPE_Q8_0 ? 8 * 64 : 4 * 64;
}

static size_t block_bytes(aik_dtype wt)
{
    return D_BYTES + q_bytes(wt);
}

size_t aik_matmul_pack_size(aik_dtype wt, int64_t M, int64_t K)
{
    return is_quantized(wt) && aik_cpu_ops_active()->qdot16[wt] ? aik_packed_bytes(wt, M, K) : 0;
}

size_t aik_packed_bytes(aik_dtype wt, int64_t M, int64_t K)
{
    if (!is_quantized(wt) || M < GROUP_ROWS || K <= 0 || K % AIK_QK8_0 != 0)
        return 0;
    const size_t nb = (size_t)(K / AIK_QK8_0), groups = (size_t)(M / GROUP_ROWS);
    size_t group, grouped, tail, total;
    if (__builtin_mul_overflow(nb, block_bytes(wt), &group) || __builtin_mul_overflow(groups, group, &grouped) ||
        __builtin_mul_overflow((size_t)(M % GROUP_ROWS), aik_cpu_row_bytes(wt, K), &tail) ||
        __builtin_add_overflow(grouped, tail, &total))
        return 0;
    return total;
}

size_t aik_matmul_row_bytes(aik_dtype wt, int64_t K)
{
    return aik_cpu_row_bytes(wt, K);
}

size_t aik_matmul_packed_row_bytes(aik_dtype wt, int64_t K)
{
    return is_quantized(wt) && K > 0 ? (size_t)(K / AIK_QK8_0) * block_bytes(wt) / GROUP_ROWS : 0;
}

static size_t group_bytes(aik_dtype wt, int64_t K)
{
    return (size_t)(K / AIK_QK8_0) * block_bytes(wt);
}

void aik_matmul_pack_groups(aik_dtype wt, const void *W, int64_t M, int64_t K, int64_t g_begin,
                            int64_t g_end, void *dst)
{
    const int64_t nb = K / AIK_QK8_0;
    const size_t wrow = aik_cpu_row_bytes(wt, K), gb = group_bytes(wt, K);
    assert(0 <= g_begin && g_begin <= g_end && g_end <= M / GROUP_ROWS);

    for (int64_t g = g_begin; g < g_end; g++) {
        unsigned char *o = (unsigned char *)dst + (size_t)g * gb;
        for (int64_t b = 0; b < nb; b++, o += block_bytes(wt))
            for (int r = 0; r < GROUP_ROWS; r++) {
                const char *row = (const char *)W + (size_t)(g * GROUP_ROWS + r) * wrow;
                if (wt == AIK_DTYPE_Q8_0) {
                    const aik_block_q8_0 *blk = (const aik_block_q8_0 *)row + b;
                    memcpy(o + 2 * r, &blk->d, 2);
                    for (int q = 0; q < 8; q++)
                        for (int j = 0; j < 4; j++)
                            o[D_BYTES + 64 * q + 4 * r + j] = (unsigned char)(blk->qs[4 * q + j] ^ 0x80);
                } else {
                    const aik_block_q4_0 *blk = (const aik_block_q4_0 *)row + b;
                    memcpy(o + 2 * r, &blk->d, 2);
                    for (int p = 0; p < 4; p++)
                        memcpy(o + D_BYTES + 64 * p + 4 * r, blk->qs + 4 * p, 4);
                }
            }
    }
    /* the tail rows ride with the last range */
    if (g_end == M / GROUP_ROWS && M % GROUP_ROWS)
        memcpy((char *)dst + (size_t)g_end * gb, (const char *)W + (size_t)g_end * GROUP_ROWS * wrow,
               (size_t)(M % GROUP_ROWS) * wrow);
}

void aik_matmul_pack(aik_dtype wt, const void *W, int64_t M, int64_t K, void *dst)
{
    aik_matmul_pack_groups(wt, W, M, K, 0, M / GROUP_ROWS, dst);
}

/* The block sum of one row: see the arithmetic in the header comment. u(k)
 * is the unsigned weight k of the block. */
static inline float block_term(int32_t I, const aik_xblock *x)
{
    return fmaf((float)I, x->d, -x->c);
}

void aik_packed_group_scalar(aik_dtype wt, const void *group, int64_t nb, const aik_xblock *x,
                             int64_t x_stride, int n_x, float *y, int64_t y_stride)
{
    for (int j = 0; j < n_x; j++) {
        const aik_xblock *xj = x + j * x_stride;
        for (int r = 0; r < GROUP_ROWS; r++) {
            float acc[2] = { 0.0f, 0.0f };
            const unsigned char *o = group;
            for (int64_t b = 0; b < nb; b++, o += block_bytes(wt)) {
                const unsigned char *q = o + D_BYTES + 4 * r;
                int32_t I = 0;
                if (wt == AIK_DTYPE_Q8_0) {
                    for (int k = 0; k < 32; k++)
                        I += (int32_t)q[64 * (k / 4) + k % 4] * xj[b].qs[k];
                } else {
                    for (int k = 0; k < 16; k++) {
                        const unsigned char v = q[64 * (k / 4) + k % 4];
                        I += (int32_t)(v & 15) * xj[b].qs[k] + (int32_t)(v >> 4) * xj[b].qs[16 + k];
                    }
                }
                uint16_t h;
                memcpy(&h, o + 2 * r, 2);
                acc[b & 1] = fmaf(block_term(I, &xj[b]), aik_fp16_to_f32(h), acc[b & 1]);
            }
            y[j * y_stride + r] = acc[0] + acc[1];
        }
    }
}

/* A tail row (file layout) by the same arithmetic as the groups. */
static float tail_row(aik_dtype wt, const void *row, const aik_xblock *x, int64_t nb)
{
    float acc[2] = { 0.0f, 0.0f };
    for (int64_t b = 0; b < nb; b++) {
        int32_t I = 0;
        uint16_t h;
        if (wt == AIK_DTYPE_Q8_0) {
            const aik_block_q8_0 *blk = (const aik_block_q8_0 *)row + b;
            for (int k = 0; k < 32; k++)
                I += (int32_t)(unsigned char)(blk->qs[k] ^ 0x80) * x[b].qs[k];
            h = blk->d;
        } else {
            const aik_block_q4_0 *blk = (const aik_block_q4_0 *)row + b;
            for (int k = 0; k < 16; k++)
                I += (int32_t)(blk->qs[k] & 15) * x[b].qs[k] + (int32_t)(blk->qs[k] >> 4) * x[b].qs[16 + k];
            h = blk->d;
        }
        acc[b & 1] = fmaf(block_term(I, &x[b]), aik_fp16_to_f32(h), acc[b & 1]);
    }
    return acc[0] + acc[1];
}

void aik_matmul_rows_packed(aik_dtype wt, const void *P, const void *scratch, float *Y,
                            int64_t M, int64_t K, int64_t N, int64_t m_begin, int64_t m_end)
{
    assert(is_quantized(wt) && K % AIK_QK8_0 == 0 && M >= GROUP_ROWS);
    assert(0 <= m_begin && m_begin <= m_end && m_end <= M);
    assert(m_begin % GROUP_ROWS == 0 && (m_end % GROUP_ROWS == 0 || m_end == M));
    const aik_qdot16_fn k16 = aik_cpu_ops_active()->qdot16[wt];
    const int64_t nb = K / AIK_QK8_0, full = M / GROUP_ROWS * GROUP_ROWS;
    const size_t gb = group_bytes(wt, K);
    const aik_xblock *xs = scratch;
    const int64_t g0 = m_begin / GROUP_ROWS, g1 = (m_end < full ? m_end : full) / GROUP_ROWS;

    /* Batches: a tile of groups (~48 KiB, L2-resident) meets 4 activation
     * rows at a time, so the weights come from memory once per matmul. */
    int64_t tile = N > 1 ? (int64_t)(49152 / gb) : g1 - g0;
    if (tile < 1)
        tile = 1;
    for (int64_t t0 = g0; t0 < g1; t0 += tile) {
        const int64_t t1 = t0 + tile < g1 ? t0 + tile : g1;
        for (int64_t n = 0; n < N; n += 4) {
            const int n_x = N - n < 4 ? (int)(N - n) : 4;
            for (int64_t g = t0; g < t1; g++) {
                const void *grp = (const char *)P + (size_t)g * gb;
                float *y = Y + n * M + g * GROUP_ROWS;
                if (k16)
                    k16(grp, nb, xs + n * nb, nb, n_x, y, M);
                else
                    aik_packed_group_scalar(wt, grp, nb, xs + n * nb, nb, n_x, y, M);
            }
        }
    }
    const size_t wrow = aik_cpu_row_bytes(wt, K);
    for (int64_t m = m_begin > full ? m_begin : full; m < m_end; m++) {
        const void *row = (const char *)P + (size_t)(M / GROUP_ROWS) * gb + (size_t)(m - full) * wrow;
        for (int64_t n = 0; n < N; n++)
            Y[n * M + m] = tail_row(wt, row, xs + n * nb, nb);
    }
}
