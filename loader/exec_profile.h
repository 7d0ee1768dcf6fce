/* SPDX-License-Identifier: MIT */
/*
 * Execution profile: what a module needs from the host. It is written in the
 * module's semantic profile (YAML, parsed by capgraph/) whose bytes the
 * loader verifies by digest; the loader checks the decoded profile against
 * the host before activation. This header is the contract between the two.
 */
#ifndef AIK_LOADER_EXEC_PROFILE_H
#define AIK_LOADER_EXEC_PROFILE_H

#include <stdint.h>

#include "aik/common.h"

/* CPU features (bit numbers are stable). */
enum {
    AIK_CPU_FEAT_SSE42 = 1u << 0,
    AIK_CPU_FEAT_AVX = 1u << 1,
    AIK_CPU_FEAT_AVX2 = 1u << 2,
    AIK_CPU_FEAT_FMA = 1u << 3,
    AIK_CPU_FEAT_F16C = 1u << 4,
    AIK_CPU_FEAT_AVX512F = 1u << 5,
    AIK_CPU_FEAT_AVX512BW = 1u << 6,
    AIK_CPU_FEAT_AVX512VL = 1u << 7,
    AIK_CPU_FEAT_AVX512VNNI = 1u << 8,
    AIK_CPU_FEAT_AVXVNNI = 1u << 9,
};

/* Backend kinds (bit set). */
enum {
    AIK_BACKEND_BIT_CPU = 1u << 0,
    AIK_BACKEND_BIT_VULKAN = 1u << 1,
    AIK_BACKEND_BIT_NPU = 1u << 2,
};

typedef struct aik_exec_profile {
    uint64_t memory_bytes;       /* resident memory the module needs (weights + working set) */
    uint32_t cpu_features;       /* AIK_CPU_FEAT_* all required */
    uint32_t backends;           /* AIK_BACKEND_BIT_* the module can run on (at least one must be present) */
    uint32_t dtypes;             /* 1u << aik_dtype for each weight dtype it uses (informational) */
    double expected_tokens_per_s; /* declared decode speed on the reference host (informational, used by placement) */
} aik_exec_profile;

typedef struct aik_host_info {
    uint64_t memory_available; /* bytes (MemAvailable, or a configured budget) */
    uint32_t cpu_features;     /* AIK_CPU_FEAT_* present */
    uint32_t backends;         /* AIK_BACKEND_BIT_* usable on this host */
} aik_host_info;

/* Probe this host (CPUID through __builtin_cpu_supports, /proc/meminfo).
 * backends is set to CPU only; the scheduler adds what it discovers. */
int aik_host_info_probe(aik_host_info *ret_host);

/* Check a profile against a host. Returns 0, or -ENOEXEC with err naming the
 * unmet requirement ("execution.cpu_features: needs avx512f, host has ..."). */
int aik_exec_profile_check(const aik_exec_profile *profile, const aik_host_info *host, aik_error *err);

/* Names of CPU feature bits, for profiles and messages ("avx2"). Returns 0
 * and sets *ret_bit, or -EINVAL for an unknown name. */
int aik_cpu_feature_from_name(const char *name, uint32_t *ret_bit);
const char *aik_cpu_feature_name(uint32_t bit);

#endif
