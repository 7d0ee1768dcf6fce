/* SPDX-License-Identifier: MIT */
/* kernels/cpu/avx512vnni.c — avx512.c again, with vpdpbusd for the int8
 * dot products (built with -mavx512vnni; see kernels/meson.build). */
#define AIK_AVX512_VNNI 1
#include "avx512.c"
