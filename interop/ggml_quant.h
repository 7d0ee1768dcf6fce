/* SPDX-License-Identifier: MIT */
/*
 * ggml block formats we convert from, and the conversions import/export
 * need: half/bfloat16 <-> float, dequantization of ggml types to f32 and
 * quantization of f32 to q8_0 (bit-identical to ggml's reference
 * quantize_row_q8_0_ref, so q8_0 tensors round-trip unchanged).
 *
 * Dequantization is supported for f32, f16, bf16, q4_0, q4_1, q5_0, q5_1,
 * q8_0, q8_1, q4_K, q5_K, q6_K, q8_K. q2_K, q3_K and the i-quants are not.
 */
#ifndef AIK_INTEROP_GGML_QUANT_H
#define AIK_INTEROP_GGML_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

float aik_half_to_float(uint16_t h);
uint16_t aik_float_to_half(float f);        /* round to nearest even */
float aik_bf16_to_float(uint16_t h);

/* True when aik_ggml_dequantize() handles type. */
bool aik_ggml_can_dequantize(uint32_t type);

/* Dequantize n elements (a whole number of blocks) of ggml type from src to
 * dst. Returns 0 or -EINVAL (type unsupported, n not whole blocks). */
int aik_ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n);

/* Quantize n floats (n % 32 == 0) to q8_0 blocks (34 bytes per 32). */
int aik_quantize_q8_0(const float *src, void *dst, uint64_t n);

#endif
