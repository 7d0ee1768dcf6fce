/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/gemm.h — dense f32 matrix multiply (GEMM) for the trainer.
 *
 *   C = alpha * op(A) · op(B) + beta * C        (all row-major)
 *
 * op(A) is M×K, op(B) is K×N, C is M×N.
 *   trans_a == false: A is stored M×K (A[m*lda + k]);
 *   trans_a == true:  A is stored K×M (A[k*lda + m]), op(A) = A^T;
 *   trans_b == false: B is stored K×N (B[k*ldb + n]);
 *   trans_b == true:  B is stored N×K (B[n*ldb + k]), op(B) = B^T.
 * lda / ldb / ldc are row strides in floats (>= the stored row width).
 * beta == 0 means C is not read (it may hold NaN / garbage); otherwise
 * C is scaled by beta and the product added (beta == 1: accumulate).
 * K == 0 or alpha == 0 gives C = beta * C (C zeroed when beta == 0) and
 * A, B are not read (BLAS convention).
 *
 * The trainer's three uses (X: T×in activations, W: out×in weights,
 * dY: T×out):
 *   forward  Y  = X · W^T      aik_gemm_f32(false, true,  T,   out, in,  ...)
 *   dX          = dY · W       aik_gemm_f32(false, false, T,   in,  out, ...)
 *   dW         += dY^T · X     aik_gemm_f32(true,  false, out, in,  T, 1, dY,
 *                                           out, X, in, 1.0f, dW, in)
 *
 * Implementation: a plain scalar triple loop (aik_gemm_f32_ref) and a
 * cache-blocked GEMM (BLIS/GotoBLAS style: B panels packed into contiguous
 * micro-panels; A micro-panels read in place when A's row stride is at most
 * 512 floats, packed otherwise and at ragged edges; a register-tiled FMA
 * micro-kernel: 12×32 with AVX-512F, 6×16 with AVX2+FMA), picked by
 * aik_cpu_active_isa()
 * (kernels/cpu/cpu_kernels.h), so aik_cpu_set_isa(AIK_CPU_SCALAR) or
 * AIK_CPU_ISA=scalar forces the reference path. The SIMD code carries
 * per-function target attributes and is only run after that check, so the
 * library still runs on CPUs without AVX2 / AVX-512.
 *
 * Memory: no allocation per call. The packing buffers are static
 * _Thread_local arrays (about 0.65 MiB), one set per thread, so any
 * thread may call these functions concurrently (on disjoint C). Every thread
 * of a process linking them holds that much TLS (.tbss: zero pages, only
 * touched by threads that call the GEMM; glibc carves static TLS out of the
 * thread's stack, so threads with tiny explicit stacks must not link it).
 *
 * Preconditions (checked with assert() only, like the other kernels):
 * M, N, K >= 0; non-NULL pointers when the corresponding size is > 0;
 * C must not overlap A or B. Results are deterministic for a given ISA
 * level and shape: every element of C gets the same operations whichever
 * block or thread computes it, so the _rows / _block / threaded variants
 * match aik_gemm_f32 bit for bit. They differ in rounding from the scalar
 * reference (FMA, K blocking); NMSE against a double-accumulated product
 * is far below 1e-7 (tests/gemm).
 */
#ifndef AIK_KERNELS_CPU_GEMM_H
#define AIK_KERNELS_CPU_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) · op(B) + beta * C (see above), dispatched by ISA. */
void aik_gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc);

/* Same, computing only rows [m_begin, m_end) of C (0 <= m_begin <= m_end
 * <= M); A, C and the strides describe the whole matrices. Disjoint row
 * ranges may run concurrently from different threads. */
void aik_gemm_f32_rows(bool trans_a, bool trans_b, int64_t M, int64_t N,
                       int64_t K, float alpha, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc, int64_t m_begin, int64_t m_end);

/* Same, computing only the block rows [m_begin, m_end) × columns
 * [n_begin, n_end) of C. Disjoint blocks may run concurrently. Used by the
 * threaded wrapper to split over N when M is small. */
void aik_gemm_f32_block(bool trans_a, bool trans_b, int64_t M, int64_t N,
                        int64_t K, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C,
                        int64_t ldc, int64_t m_begin, int64_t m_end,
                        int64_t n_begin, int64_t n_end);

/* Same as aik_gemm_f32_block, for the blocks of one product split over
 * threads. call_id (from aik_gemm_f32_call_id, or 0 for none) names the
 * product: a thread that computes several blocks with the same call_id
 * and the same columns packs op(B) once, in its thread-local buffer, and
 * reuses it (when every K block of it fits: K x N up to 128 Ki floats per
 * 512 columns). So the caller must not change B between the blocks of one
 * call_id, and must take a new id for every product. Results are the same
 * bits as aik_gemm_f32 either way. */
void aik_gemm_f32_block_call(bool trans_a, bool trans_b, int64_t M, int64_t N,
                             int64_t K, float alpha, const float *A, int64_t lda,
                             const float *B, int64_t ldb, float beta, float *C,
                             int64_t ldc, int64_t m_begin, int64_t m_end,
                             int64_t n_begin, int64_t n_end, uint64_t call_id);

/* A fresh, never 0, process-wide id for aik_gemm_f32_block_call. */
uint64_t aik_gemm_f32_call_id(void);

/* Whether aik_gemm_f32_block_call keeps op(B) for blocks spanning all N
 * columns of a K-deep product at the ISA level in use now (so that cutting
 * such a product into more row blocks than threads packs op(B) no more
 * often). */
bool aik_gemm_f32_b_reusable(int64_t N, int64_t K);

/* Register tile (rows × columns of C per micro-kernel call) of the ISA
 * level in use now; 1 × 1 for the scalar path. Splitting C at multiples of
 * these keeps every thread on whole tiles (results are identical either
 * way, see above; only speed differs). */
void aik_gemm_f32_tile(int64_t *ret_mr, int64_t *ret_nr);

/* The scalar reference: the obvious triple loop, accumulating each dot
 * product in float in k order. Same contract as aik_gemm_f32. Always
 * scalar, whatever the ISA level. */
void aik_gemm_f32_ref(bool trans_a, bool trans_b, int64_t M, int64_t N,
                      int64_t K, float alpha, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C,
                      int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif /* AIK_KERNELS_CPU_GEMM_H */
