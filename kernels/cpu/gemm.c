/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/gemm.c — f32 GEMM: scalar reference and a packed, cache-blocked,
 * register-tiled version for AVX2+FMA and AVX-512F (see gemm.h).
 *
 * Blocked algorithm (GotoBLAS / BLIS, written for row-major C):
 *
 *   for jc in N step NC                      B block: kc × nc   (L2)
 *     for pc in K step KC (fixed boundaries)
 *       pack op(B)[pc:pc+kc, jc:jc+nc] into NR-wide micro-panels [k][NR]
 *       for ic in M step MC                  A block: mc × kc   (L2)
 *         pack op(A)[ic:ic+mc, pc:pc+kc] into MR-tall micro-panels
 *           (only the ragged last one, when A is read in place, below)
 *         for ir in mc step MR               A micro-panel in L1
 *           for jr in nc step NR             B micro-panels from L2
 *             micro-kernel: MR×NR accumulators in registers,
 *             acc += A_panel(i, k) (broadcast) * B_panel[k][0..NR) (vector)
 *
 * Packing makes every micro-kernel load contiguous and aligned whatever
 * the transposes and strides are; short panels are zero-padded so the
 * micro-kernel always runs a full tile, and only the valid part of the tile
 * is written back (masked loads/stores). A panels come in two layouts so
 * that packing A is a plain copy either way: k-major when A is stored
 * transposed (dW = dY^T · X), row-major when it is not; B is transposed
 * while packing only in the forward pass (X · W^T), 8×8 in registers.
 *
 * A is read in place when its row stride allows (A_IN_PLACE_MAX_LD): the
 * kernels take the A panel's stride, so a copy that only moved rows around
 * is skipped; only a ragged last panel (fewer than MR rows) is packed, with
 * its zero padding. For the dim-192 training shapes that copy was a tenth
 * of the GEMM's time.
 *
 * Reuse of packed B: a product cut into several row blocks by the threaded
 * wrapper (scheduler/gemm_threaded.c) packs the same op(B) for every block.
 * When every K block of op(B) fits the thread's buffer side by side, the
 * first block a thread runs packs them all and the thread's later blocks of
 * the same product (same call id, aik_gemm_f32_block_call) reuse them.
 *
 * Determinism: every element of C is produced by the same sequence of
 * operations whatever tile it falls in (the K blocks have fixed boundaries
 * from 0, accumulation runs in k order with FMA, and the write-back is
 * fma(alpha, acc, beta * c) on full and partial tiles alike). So splitting C
 * into blocks across threads gives bitwise the same result as one call.
 *
 * The ISA-specific functions carry target attributes rather than the whole
 * file being compiled with -mavx512f, so the library still runs on CPUs
 * without them; they are only called after aik_cpu_active_isa() says so.
 */
#include <assert.h>
#include <stdatomic.h>
#include <string.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define AIK_GEMM_X86 1
#include <immintrin.h>
#else
#define AIK_GEMM_X86 0
#endif

/* ------------------------------------------------------------ reference --- */

/* op(A)[i][k] and op(B)[k][j] for the storage described in gemm.h */
static inline float op_a(bool trans_a, const float *A, int64_t lda, int64_t i, int64_t k)
{
    return trans_a ? A[k * lda + i] : A[i * lda + k];
}

static inline float op_b(bool trans_b, const float *B, int64_t ldb, int64_t k, int64_t j)
{
    return trans_b ? B[j * ldb + k] : B[k * ldb + j];
}

/* C = beta * C on a block (K == 0 or alpha == 0: the product is empty). */
static void scale_block(float beta, float *C, int64_t ldc, int64_t m0, int64_t m1,
                        int64_t n0, int64_t n1)
{
    for (int64_t i = m0; i < m1; i++)
        for (int64_t j = n0; j < n1; j++)
            C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

static void gemm_ref_block(bool trans_a, bool trans_b, int64_t K, float alpha,
                           const float *A, int64_t lda, const float *B, int64_t ldb,
                           float beta, float *C, int64_t ldc, int64_t m0, int64_t m1,
                           int64_t n0, int64_t n1)
{
    for (int64_t i = m0; i < m1; i++) {
        for (int64_t j = n0; j < n1; j++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++)
                acc += op_a(trans_a, A, lda, i, k) * op_b(trans_b, B, ldb, k, j);
            float *c = &C[i * ldc + j];
            /* beta == 0: C is not read, so NaN garbage in it does not leak */
            *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
        }
    }
}

void aik_gemm_f32_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                      float alpha, const float *A, int64_t lda, const float *B,
                      int64_t ldb, float beta, float *C, int64_t ldc)
{
    assert(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0)
        return;
    if (K == 0 || alpha == 0.0f) {
        scale_block(beta, C, ldc, 0, M, 0, N);
        return;
    }
    gemm_ref_block(trans_a, trans_b, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, M, 0, N);
}

#if AIK_GEMM_X86
/* ------------------------------------------------------------- blocking --- */

/* KC: depth of one rank-kc update; an A micro-panel (12 × 256 floats,
 * 12 KiB) stays in the 48 KiB L1 while the B micro-panels stream past it
 * from the B block (KC × NC, 512 KiB), which stays in the 2 MiB L2 along
 * with the A block (MC × KC, 144 KiB). Chosen on a Sapphire Rapids core;
 * 128..384 / 72..288 / 512..1024 measured within noise of each other.
 * MC is a multiple of both MR values (12 and 6), NC of both NR (32, 16). */
#define GEMM_KC 256
#define GEMM_MC 144
#define GEMM_NC 512

/* Per-thread packing buffers (see gemm.h: about 0.65 MiB of TLS per thread
 * that calls the GEMM). MC and NC are tile multiples, so whole panels fit. */
static _Thread_local _Alignas(64) float tls_pack_a[GEMM_MC * GEMM_KC];
static _Thread_local _Alignas(64) float tls_pack_b[GEMM_KC * GEMM_NC];

/* Micro-kernel: C[0:mr, 0:nr] = fma(alpha, Ap·Bp, beta * C) if load_c, else
 * alpha * Ap·Bp, alpha_beta = {alpha, beta}. (Passed in memory and read
 * after the k loop: as register arguments they would occupy two of the 16
 * AVX2 registers through the loop and push an accumulator onto the stack.)
 * Ap: an A micro-panel, packed or read in place, with stride as (layout
 * per kernel, see A_KMAJOR / A_ROWMAJOR); Bp: kc × NR packed. mr <= MR,
 * nr <= NR. */
typedef void (*ukernel_fn)(int64_t kc, const float *Ap, int64_t as, const float *Bp,
                           float *C, int64_t ldc, int mr, int nr, const float *alpha_beta,
                           bool load_c);

typedef struct gemm_isa {
    int mr, nr;
    ukernel_fn kernel_kmajor;   /* A panels [kc][MR] (A stored transposed) */
    ukernel_fn kernel_rowmajor; /* A panels [MR][GEMM_KC] (A stored M×K) */
} gemm_isa;

/* ---------------------------------------------------------------- packing --- */

#define PACK_AHEAD 4

/* A block already laid out along the panel dimension (rows of k): panel p
 * gets dst[p * pstride + k * P + r] = src[k * ld + p * P + r] for
 * p * P + r < w, zero beyond. Row by row, so each source row is read once,
 * in order (panel by panel would revisit the same cache lines kc times at a
 * stride that, for power-of-two ld, maps them all to one cache set). Used for
 * k-major A panels (A stored transposed) and B panels (B not transposed). */
static void pack_copy(const float *src, int64_t ld, int64_t w, int P, int64_t kc,
                      int64_t pstride, float *dst)
{
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        /* rows far apart (ld = M of a transposed A) defeat the hardware
         * prefetchers, which follow streams within a page: ask a few rows
         * ahead */
        if (k + PACK_AHEAD < kc)
            for (int64_t p0 = 0; p0 < w; p0 += 16)
                __builtin_prefetch(s + PACK_AHEAD * ld + p0, 0, 3);
        for (int64_t p0 = 0; p0 < w; p0 += P) {
            const int n = (int)(w - p0 < P ? w - p0 : P);
            float *d = dst + (p0 / P) * pstride + k * P;
            /* constant sizes for full rows, so the copy is inlined (a libc
             * call per 6..32 floats would cost more than the copy) */
            switch (n == P ? P : 0) {
            case 32: memcpy(d, s + p0, 32 * sizeof(float)); break;
            case 16: memcpy(d, s + p0, 16 * sizeof(float)); break;
            case 12: memcpy(d, s + p0, 12 * sizeof(float)); break;
            case 6: memcpy(d, s + p0, 6 * sizeof(float)); break;
            default:
                memcpy(d, s + p0, (size_t)n * sizeof(float));
                for (int r = n; r < P; r++)
                    d[r] = 0.0f;
            }
        }
    }
}

/* dst[i * GEMM_KC + k] = src[i * ld + k] for i < h, 0 for h <= i < P: the
 * rows of a row-major A micro-panel, at a fixed stride so the kernel reads
 * them with constant offsets. */
static void pack_rows(const float *src, int64_t ld, int h, int P, int64_t kc, float *dst)
{
    for (int i = 0; i < P; i++) {
        if (i < h)
            memcpy(dst + i * GEMM_KC, src + i * ld, (size_t)kc * sizeof(float));
        else
            memset(dst + i * GEMM_KC, 0, (size_t)kc * sizeof(float));
    }
}

/* dst[k * P + t] = src[t * ld + k] for t < 8, k < 8: one 8×8 transpose in
 * registers (unpack, shuffle, lane permute; 24 shuffles per 64 floats). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
transpose8x8(const float *src, int64_t ld, float *dst, int P)
{
    const __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
    const __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    const __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    const __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * P, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 1 * P, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * P, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * P, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * P, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * P, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * P, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * P, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* dst[k][r] = src[r * ld + k] for r < w, 0 for w <= r < P: a transpose.
 * Groups of 8 full rows go 8 k at a time through registers; the k tail and
 * a partial last group (the N edge only) element by element. Used for B
 * panels when B is stored transposed (the forward pass X · W^T). */
__attribute__((target("avx2,fma"))) static void
pack_transpose(const float *src, int64_t ld, int w, int P, int64_t kc, float *dst)
{
    for (int r0 = 0; r0 < P; r0 += 8) {
        const int rows = P - r0 < 8 ? P - r0 : 8; /* panel rows in this group */
        int valid = w - r0;                        /* of which hold data */
        valid = valid < 0 ? 0 : valid > rows ? rows : valid;
        int64_t k = 0;
        if (rows == 8 && valid == 8)
            for (; k + 8 <= kc; k += 8)
                transpose8x8(src + r0 * ld + k, ld, dst + k * P + r0, P);
        for (; k < kc; k++)
            for (int t = 0; t < rows; t++)
                dst[k * P + r0 + t] = t < valid ? src[(r0 + t) * ld + k] : 0.0f;
    }
}

/* Touch the C tile rows (first and last column) before the k loop. */
static inline void prefetch_c(const float *C, int64_t ldc, int mr, int nr)
{
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(C + i * ldc, 1, 3);
        __builtin_prefetch(C + i * ldc + nr - 1, 1, 3);
    }
}

/* ------------------------------------------------------------- AVX2 6×16 --- */

#define AVX2_MR 6
#define AVX2_NR 16

__attribute__((target("avx2,fma"))) static inline __m256i
avx2_mask(int n) /* lanes [0, n) on, n in [0, 8] */
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

/* A micro-panel access, per layout. k-major: element (i, k) at
 * Ap[k * as + i] (A stored transposed: as = lda read in place, or MR when
 * packed); row-major: at Ap[i * as + k] (as = lda in place, GEMM_KC
 * packed). The row-major kernel walks MR / 3 row pointers one float per k
 * and reaches the rows in between as p[as] and p[2 * as]: x86 addressing
 * (base + index × 4 or × 8), so a runtime stride costs no instructions.
 * A_SETUP declares the walking pointers, A_AT(i) is element (i, k) of the
 * current k, A_NEXT steps k. */
#define A_KMAJOR_SETUP(MR) const float *ak = Ap;
#define A_KMAJOR_AT(i) ak[(i)]
#define A_KMAJOR_NEXT(MR) ak += as;
#define A_ROWMAJOR_SETUP(MR)                                                             \
    const float *ar[(MR) / 3];                                                           \
    _Pragma("GCC unroll 4") for (int g = 0; g < (MR) / 3; g++) ar[g] = Ap + 3 * g * as;
#define A_ROWMAJOR_AT(i) ar[(i) / 3][((i) % 3) * as]
#define A_ROWMAJOR_NEXT(MR)                                                              \
    _Pragma("GCC unroll 4") for (int g = 0; g < (MR) / 3; g++) ar[g]++;

#define DEFINE_UKERNEL_AVX2(name, A)                                                     \
    __attribute__((target("avx2,fma"))) static void name(                                \
        int64_t kc, const float *Ap, int64_t as, const float *Bp, float *C,              \
        int64_t ldc, int mr, int nr, const float *alpha_beta, bool load_c)               \
    {                                                                                    \
        __m256 c[AVX2_MR][2];                                                            \
        if (load_c) /* C arrives while the k loop runs (it may be out of L2) */          \
            prefetch_c(C, ldc, mr, AVX2_NR);                                             \
        _Pragma("GCC unroll 6") for (int i = 0; i < AVX2_MR; i++)                        \
            c[i][0] = c[i][1] = _mm256_setzero_ps();                                     \
        A##_SETUP(AVX2_MR)                                                               \
        for (int64_t k = 0; k < kc; k++) {                                               \
            const __m256 b0 = _mm256_loadu_ps(Bp);                                       \
            const __m256 b1 = _mm256_loadu_ps(Bp + 8);                                   \
            _Pragma("GCC unroll 6") for (int i = 0; i < AVX2_MR; i++)                    \
            {                                                                            \
                const __m256 a = _mm256_broadcast_ss(&A##_AT(i));                        \
                c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);                               \
                c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);                               \
            }                                                                            \
            A##_NEXT(AVX2_MR)                                                            \
            Bp += AVX2_NR;                                                               \
        }                                                                                \
        /* alpha_beta is read only after the loop (see ukernel_fn) */                    \
        __asm__ volatile("" ::: "memory");                                               \
        avx2_store_tile(c, C, ldc, mr, nr, alpha_beta, load_c);                          \
    }

/* Write back an AVX2 accumulator tile: fma(alpha, acc, beta * C) or
 * alpha * acc, through masks on a partial tile (same arithmetic).
 * always_inline: the accumulator array must not have its address taken in
 * the kernel, or GCC keeps it in memory inside the k loop. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
avx2_store_tile(__m256 acc[AVX2_MR][2], float *C, int64_t ldc, int mr, int nr,
                const float *alpha_beta, bool load_c)
{
    const float alpha = alpha_beta[0], beta = alpha_beta[1];
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const __m256i m0 = avx2_mask(nr > 8 ? 8 : nr), m1 = avx2_mask(nr > 8 ? nr - 8 : 0);
    /* fully unrolled with constant indices, so acc stays in registers */
#pragma GCC unroll 6
    for (int i = 0; i < AVX2_MR; i++) {
        if (i >= mr)
            break;
        float *c = C + i * ldc;
        if (nr == AVX2_NR) {
            __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
            if (load_c) {
                r0 = _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(c)));
                r1 = _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(c + 8)));
            }
            _mm256_storeu_ps(c, r0);
            _mm256_storeu_ps(c + 8, r1);
        } else {
            __m256 r0 = _mm256_mul_ps(va, acc[i][0]), r1 = _mm256_mul_ps(va, acc[i][1]);
            if (load_c) {
                r0 = _mm256_fmadd_ps(va, acc[i][0],
                                     _mm256_mul_ps(vb, _mm256_maskload_ps(c, m0)));
                r1 = _mm256_fmadd_ps(va, acc[i][1],
                                     _mm256_mul_ps(vb, _mm256_maskload_ps(c + 8, m1)));
            }
            _mm256_maskstore_ps(c, m0, r0);
            _mm256_maskstore_ps(c + 8, m1, r1);
        }
    }
}

DEFINE_UKERNEL_AVX2(ukernel_avx2_kmajor, A_KMAJOR)
DEFINE_UKERNEL_AVX2(ukernel_avx2_rowmajor, A_ROWMAJOR)

/* ---------------------------------------------------------- AVX-512 12×32 --- */

#define AVX512_MR 12
#define AVX512_NR 32

/* Write back an AVX-512 accumulator tile: fma(alpha, acc, beta * C) or
 * alpha * acc, masked to the valid nr columns (full tiles use full masks,
 * so partial tiles get the same arithmetic). */
__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void
avx512_store_tile(__m512 acc[AVX512_MR][2], float *C, int64_t ldc, int mr, int nr,
                  const float *alpha_beta, bool load_c)
{
    const float alpha = alpha_beta[0], beta = alpha_beta[1];
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1u);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF
                       : nr > 16  ? (__mmask16)((1u << (nr - 16)) - 1u)
                                  : (__mmask16)0;
    /* fully unrolled with constant indices, so acc stays in registers */
#pragma GCC unroll 12
    for (int i = 0; i < AVX512_MR; i++) {
        if (i >= mr)
            break;
        float *ci = C + i * ldc;
        if (load_c) {
            const __m512 o0 = _mm512_maskz_loadu_ps(m0, ci);
            const __m512 o1 = _mm512_maskz_loadu_ps(m1, ci + 16);
            _mm512_mask_storeu_ps(ci, m0, _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, o0)));
            _mm512_mask_storeu_ps(ci + 16, m1,
                                  _mm512_fmadd_ps(va, acc[i][1], _mm512_mul_ps(vb, o1)));
        } else {
            _mm512_mask_storeu_ps(ci, m0, _mm512_mul_ps(va, acc[i][0]));
            _mm512_mask_storeu_ps(ci + 16, m1, _mm512_mul_ps(va, acc[i][1]));
        }
    }
}

/* 24 accumulators + 2 B vectors + 1 broadcast of the 32 zmm registers. */
#define DEFINE_UKERNEL_AVX512(name, A)                                                   \
    __attribute__((target("avx512f,avx2,fma"))) static void name(                        \
        int64_t kc, const float *Ap, int64_t as, const float *Bp, float *C,              \
        int64_t ldc, int mr, int nr, const float *alpha_beta, bool load_c)               \
    {                                                                                    \
        __m512 c[AVX512_MR][2];                                                          \
        if (load_c) /* C arrives while the k loop runs (it may be out of L2) */          \
            prefetch_c(C, ldc, mr, AVX512_NR);                                           \
        _Pragma("GCC unroll 12") for (int i = 0; i < AVX512_MR; i++)                     \
            c[i][0] = c[i][1] = _mm512_setzero_ps();                                     \
        A##_SETUP(AVX512_MR)                                                             \
        for (int64_t k = 0; k < kc; k++) {                                               \
            const __m512 b0 = _mm512_loadu_ps(Bp);                                       \
            const __m512 b1 = _mm512_loadu_ps(Bp + 16);                                  \
            _Pragma("GCC unroll 12") for (int i = 0; i < AVX512_MR; i++)                 \
            {                                                                            \
                const __m512 a = _mm512_set1_ps(A##_AT(i));                              \
                c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);                               \
                c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);                               \
            }                                                                            \
            A##_NEXT(AVX512_MR)                                                          \
            Bp += AVX512_NR;                                                             \
        }                                                                                \
        /* alpha_beta is read only after the loop (see ukernel_fn) */                    \
        __asm__ volatile("" ::: "memory");                                               \
        avx512_store_tile(c, C, ldc, mr, nr, alpha_beta, load_c);                        \
    }

DEFINE_UKERNEL_AVX512(ukernel_avx512_kmajor, A_KMAJOR)
DEFINE_UKERNEL_AVX512(ukernel_avx512_rowmajor, A_ROWMAJOR)

static const gemm_isa isa_avx2 = {AVX2_MR, AVX2_NR, ukernel_avx2_kmajor, ukernel_avx2_rowmajor};
static const gemm_isa isa_avx512 = {AVX512_MR, AVX512_NR, ukernel_avx512_kmajor,
                                    ukernel_avx512_rowmajor};

_Static_assert(GEMM_MC % AVX2_MR == 0 && GEMM_MC % AVX512_MR == 0, "MC vs MR");
_Static_assert(GEMM_NC % AVX2_NR == 0 && GEMM_NC % AVX512_NR == 0, "NC vs NR");

/* K block boundaries: ceil(K / KC) blocks of nearly equal depth (so K = 300
 * is 152 + 148, not 256 + 44). They depend on K only, never on the C block
 * being computed: that is what keeps split results bitwise identical. */
static int64_t k_block(int64_t K)
{
    const int64_t nb = (K + GEMM_KC - 1) / GEMM_KC;
    int64_t kb = (K + nb - 1) / nb;
    kb = (kb + 7) & ~(int64_t)7; /* whole 8×8 transposes */
    return kb < GEMM_KC ? kb : GEMM_KC;
}

/* A full MR-row micro-panel of A is read in place, not packed, while A's
 * row stride is at most 2 KiB: the row-major kernel then walks MR rows side
 * by side, each contiguous in k, and the k-major one MR contiguous floats
 * per k. Wider strides (the vocabulary-sized products, lda = 4096: 16 KiB)
 * map every row, or every k, of the panel to the same few L1 sets, and the
 * packed copy is faster there (measured: dX = dY·W at 1024×192×4096, 150
 * in place against 200 GFLOP/s packed). Packing only ever moves the same
 * values, so either way the results are the same bits. */
#define A_IN_PLACE_MAX_LD 512

/* What tls_pack_b holds, when it holds every K block of one column block
 * of a product that may come back (see call_id in gemm.h): 0 = nothing
 * reusable. */
static _Thread_local uint64_t tls_b_call;
static _Thread_local int64_t tls_b_jc, tls_b_nc;

static void gemm_blocked(const gemm_isa *isa, bool trans_a, bool trans_b, int64_t K,
                         float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc, int64_t m0,
                         int64_t m1, int64_t n0, int64_t n1, uint64_t call_id)
{
    const int MR = isa->mr, NR = isa->nr;
    const int64_t KB = k_block(K);
    float *Ap = tls_pack_a;
    const ukernel_fn kernel = trans_a ? isa->kernel_kmajor : isa->kernel_rowmajor;
    const bool a_direct = lda <= A_IN_PLACE_MAX_LD;
    /* stride of a packed A micro-panel, per layout */
    const int64_t a_packed_stride = trans_a ? MR : GEMM_KC;

    for (int64_t jc = n0; jc < n1; jc += GEMM_NC) {
        const int64_t nc = n1 - jc < GEMM_NC ? n1 - jc : GEMM_NC;
        const int64_t nc_pad = (nc + NR - 1) / NR * NR;
        /* every K block of this column block fits side by side: keep them,
         * and reuse them if this thread packed them for the same call */
        const bool keep = call_id != 0 && K * nc_pad <= GEMM_KC * GEMM_NC;
        const bool have = keep && tls_b_call == call_id && tls_b_jc == jc && tls_b_nc == nc;
        if (!have)
            tls_b_call = 0; /* about to be overwritten */
        for (int64_t pc = 0; pc < K; pc += KB) {
            const int64_t kc = K - pc < KB ? K - pc : KB;
            /* the first K block applies beta; later ones accumulate */
            const bool load_c = pc > 0 || beta != 0.0f;
            const float alpha_beta[2] = {alpha, pc > 0 ? 1.0f : beta};
            float *Bp = keep ? tls_pack_b + pc * nc_pad : tls_pack_b;

            if (have) {
                /* packed by an earlier block of this call */
            } else if (trans_b) {
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int w = (int)(nc - jr < NR ? nc - jr : NR);
                    pack_transpose(B + (jc + jr) * ldb + pc, ldb, w, NR, kc,
                                   Bp + (jr / NR) * NR * kc);
                }
            } else {
                pack_copy(B + pc * ldb + jc, ldb, nc, NR, kc, NR * kc, Bp);
            }

            for (int64_t ic = m0; ic < m1; ic += GEMM_MC) {
                const int64_t mc = m1 - ic < GEMM_MC ? m1 - ic : GEMM_MC;
                const int64_t mc_full = a_direct ? mc / MR * MR : 0;
                if (mc_full < mc) {
                    if (trans_a) {
                        pack_copy(A + pc * lda + ic + mc_full, lda, mc - mc_full, MR, kc,
                                  MR * GEMM_KC, Ap + (mc_full / MR) * MR * GEMM_KC);
                    } else {
                        for (int64_t ir = mc_full; ir < mc; ir += MR) {
                            const int h = (int)(mc - ir < MR ? mc - ir : MR);
                            pack_rows(A + (ic + ir) * lda + pc, lda, h, MR, kc,
                                      Ap + (ir / MR) * MR * GEMM_KC);
                        }
                    }
                }
                /* A micro-panel stays in L1 while the B micro-panels of the
                 * block stream past it from L2 */
                for (int64_t ir = 0; ir < mc; ir += MR) {
                    const int h = (int)(mc - ir < MR ? mc - ir : MR);
                    const bool ad = ir < mc_full;
                    const float *ap = ad ? (trans_a ? A + pc * lda + ic + ir
                                                    : A + (ic + ir) * lda + pc)
                                         : Ap + (ir / MR) * MR * GEMM_KC;
                    const int64_t as = ad ? lda : a_packed_stride;
                    for (int64_t jr = 0; jr < nc; jr += NR) {
                        const int w = (int)(nc - jr < NR ? nc - jr : NR);
                        kernel(kc, ap, as, Bp + (jr / NR) * NR * kc, C + (ic + ir) * ldc + jc + jr,
                               ldc, h, w, alpha_beta, load_c);
                    }
                }
            }
        }
        if (keep && !have) {
            tls_b_call = call_id;
            tls_b_jc = jc;
            tls_b_nc = nc;
        }
    }
}
#endif /* AIK_GEMM_X86 */

/* ------------------------------------------------------------ entry points --- */

uint64_t aik_gemm_f32_call_id(void)
{
    /* process-wide, so two products never share an id whichever threads
     * start them; 0 is never returned (it means "no reuse") */
    static _Atomic uint64_t next = 1;
    return atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
}

void aik_gemm_f32_block(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                        float alpha, const float *A, int64_t lda, const float *B,
                        int64_t ldb, float beta, float *C, int64_t ldc, int64_t m_begin,
                        int64_t m_end, int64_t n_begin, int64_t n_end)
{
    aik_gemm_f32_block_call(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                            m_begin, m_end, n_begin, n_end, 0);
}

void aik_gemm_f32_block_call(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const float *A, int64_t lda, const float *B,
                             int64_t ldb, float beta, float *C, int64_t ldc, int64_t m_begin,
                             int64_t m_end, int64_t n_begin, int64_t n_end, uint64_t call_id)
{
    (void)call_id; /* only the blocked paths reuse packed panels */
    assert(M >= 0 && N >= 0 && K >= 0);
    assert(0 <= m_begin && m_begin <= m_end && m_end <= M);
    assert(0 <= n_begin && n_begin <= n_end && n_end <= N);
    assert(ldc >= N);
    assert(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N));
    (void)M;
    (void)N;
    if (m_begin == m_end || n_begin == n_end)
        return;
    if (K == 0 || alpha == 0.0f) {
        scale_block(beta, C, ldc, m_begin, m_end, n_begin, n_end);
        return;
    }
    assert(A && B && C);
#if AIK_GEMM_X86
    const aik_cpu_isa isa = aik_cpu_active_isa();
    if (isa >= AIK_CPU_AVX2) {
        gemm_blocked(isa >= AIK_CPU_AVX512 ? &isa_avx512 : &isa_avx2, trans_a, trans_b, K,
                     alpha, A, lda, B, ldb, beta, C, ldc, m_begin, m_end, n_begin, n_end,
                     call_id);
        return;
    }
#endif
    gemm_ref_block(trans_a, trans_b, K, alpha, A, lda, B, ldb, beta, C, ldc, m_begin, m_end,
                   n_begin, n_end);
}

void aik_gemm_f32_rows(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float beta, float *C, int64_t ldc, int64_t m_begin,
                       int64_t m_end)
{
    aik_gemm_f32_block(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                       m_begin, m_end, 0, N);
}

void aik_gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                  float *C, int64_t ldc)
{
    aik_gemm_f32_block(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, M,
                       0, N);
}

bool aik_gemm_f32_b_reusable(int64_t N, int64_t K)
{
#if AIK_GEMM_X86
    int64_t mr, nr;
    aik_gemm_f32_tile(&mr, &nr);
    if (nr > 1 && N <= GEMM_NC)
        return K * ((N + nr - 1) / nr * nr) <= (int64_t)GEMM_KC * GEMM_NC;
#endif
    (void)N;
    (void)K;
    return false;
}

void aik_gemm_f32_tile(int64_t *ret_mr, int64_t *ret_nr)
{
    int64_t mr = 1, nr = 1;
#if AIK_GEMM_X86
    const aik_cpu_isa isa = aik_cpu_active_isa();
    if (isa >= AIK_CPU_AVX512) {
        mr = AVX512_MR;
        nr = AVX512_NR;
    } else if (isa >= AIK_CPU_AVX2) {
        mr = AVX2_MR;
        nr = AVX2_NR;
    }
#endif
    *ret_mr = mr;
    *ret_nr = nr;
}
