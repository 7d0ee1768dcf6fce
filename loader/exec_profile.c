/* SPDX-License-Identifier: MIT */
/* Host probing and the execution-profile check (contract: exec_profile.h). */
#include "loader/exec_profile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

static const char *const feature_names[] = {
    "sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avxvnni",
};
#define N_FEATURES (sizeof(feature_names) / sizeof(feature_names[0]))

static const char *const backend_names[] = { "cpu", "vulkan", "npu" };
#define N_BACKENDS (sizeof(backend_names) / sizeof(backend_names[0]))

const char *aik_cpu_feature_name(uint32_t bit)
{
    for (unsigned i = 0; i < N_FEATURES; i++)
        if (bit == 1u << i)
            return feature_names[i];
    return "?";
}

int aik_cpu_feature_from_name(const char *name, uint32_t *ret_bit)
{
    if (!name || !ret_bit)
        return -EINVAL;
    for (unsigned i = 0; i < N_FEATURES; i++)
        if (strcmp(feature_names[i], name) == 0) {
            *ret_bit = 1u << i;
            return 0;
        }
    return -EINVAL;
}

static uint32_t probe_cpu(void)
{
    uint32_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        f |= AIK_CPU_FEAT_SSE42;
    if (__builtin_cpu_supports("avx"))
        f |= AIK_CPU_FEAT_AVX;
    if (__builtin_cpu_supports("avx2"))
        f |= AIK_CPU_FEAT_AVX2;
    if (__builtin_cpu_supports("fma"))
        f |= AIK_CPU_FEAT_FMA;
    if (__builtin_cpu_supports("avx512f"))
        f |= AIK_CPU_FEAT_AVX512F;
    if (__builtin_cpu_supports("avx512bw"))
        f |= AIK_CPU_FEAT_AVX512BW;
    if (__builtin_cpu_supports("avx512vl"))
        f |= AIK_CPU_FEAT_AVX512VL;
    if (__builtin_cpu_supports("avx512vnni"))
        f |= AIK_CPU_FEAT_AVX512VNNI;
    /* GCC 12 knows neither "f16c" nor "avxvnni" in __builtin_cpu_supports:
     * read CPUID directly. F16C: leaf 1 ECX bit 29. AVX-VNNI: leaf 7
     * subleaf 1 EAX bit 4. */
    {
        uint32_t a, b, c, d;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
        if (c & (1u << 29))
            f |= AIK_CPU_FEAT_F16C;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
        if (a >= 7) {
            __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
            if (a & (1u << 4))
                f |= AIK_CPU_FEAT_AVXVNNI;
        }
    }
#endif
    return f;
}

/* MemAvailable from /proc/meminfo, in bytes. */
static int probe_memory(uint64_t *ret)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    int r = -ENOENT;

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            if (kb > UINT64_MAX / 1024)
                kb = UINT64_MAX / 1024;
            *ret = (uint64_t)kb * 1024;
            r = 0;
            break;
        }
    }
    fclose(f);
    return r;
}

int aik_host_info_probe(aik_host_info *ret_host)
{
    aik_host_info h = { 0 };
    int r;

    if (!ret_host)
        return -EINVAL;
    r = probe_memory(&h.memory_available);
    if (r < 0)
        return r;
    h.cpu_features = probe_cpu();
    h.backends = AIK_BACKEND_BIT_CPU;
    *ret_host = h;
    return 0;
}

/* "avx2 fma" for a feature set, for messages. */
static void names_of(uint32_t bits, const char *const *names, unsigned n, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < n && used < len; i++)
        if (bits & (1u << i)) {
            int w = snprintf(buf + used, len - used, "%s%s", used ? " " : "", names[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
    if (!buf[0])
        snprintf(buf, len, "none");
}

int aik_exec_profile_check(const aik_exec_profile *profile, const aik_host_info *host, aik_error *err)
{
    char need[128], have[128];
    uint32_t missing;

    if (!profile || !host)
        return aik_fail(err, -EINVAL, NULL, "no profile or host");
    if (profile->memory_bytes > host->memory_available)
        return aik_fail(err, -ENOEXEC, "execution.memory",
                        "needs %" PRIu64 " bytes, host has %" PRIu64 " available", profile->memory_bytes,
                        host->memory_available);
    missing = profile->cpu_features & ~host->cpu_features;
    if (missing) {
        names_of(missing, feature_names, N_FEATURES, need, sizeof(need));
        names_of(host->cpu_features, feature_names, N_FEATURES, have, sizeof(have));
        return aik_fail(err, -ENOEXEC, "execution.cpu_features", "needs %s, host has %s", need, have);
    }
    if (profile->backends == 0)
        return aik_fail(err, -ENOEXEC, "execution.backends", "lists no backend");
    if (!(profile->backends & host->backends)) {
        names_of(profile->backends, backend_names, N_BACKENDS, need, sizeof(need));
        names_of(host->backends, backend_names, N_BACKENDS, have, sizeof(have));
        return aik_fail(err, -ENOEXEC, "execution.backends", "runs on %s, host offers %s", need, have);
    }
    return 0;
}
