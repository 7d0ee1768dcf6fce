/* SPDX-License-Identifier: MIT */
/*
 * aikctl bench PKG: prompt processing (ppN) and text generation (tgN) speed
 * with llama-bench's definitions, so the two tools compare side by side:
 *   ppN: N random tokens evaluated as one batch from an empty context;
 *        tokens/s = N / time.
 *   tgN: N tokens evaluated one at a time from an empty context;
 *        tokens/s = N / time.
 * One warm-up run, then -r repetitions; median and min–max reported. Also:
 * peak RSS, weight bytes, the weight traffic achieved by tg (every
 * decoded token reads every weight once: weight bytes × tokens/s), and the
 * host's steal time during the repetitions (/proc/stat; on a shared VM the
 * reason two runs differ).
 *
 * --override SPEC (llama.cpp -ngl / --override-tensor style, see
 * docs/placement.md) runs a split plan across devices with
 * scheduler/split_exec.h, opened by scheduler/split_rig.h: the inventory is
 * this host's CPU and Vulkan devices and the plug-in devices of
 * --plugin-dir (or --devices FILE.yaml, whose devices are opened by backend
 * or as pluginN), the plan and the measured time per segment per device are
 * printed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "loader/module.h"
#include "runtime/generate.h"
#include "scheduler/placement.h"
#include "scheduler/split_exec.h"
#include "scheduler/split_rig.h"
#include "tools/aikctl/aikctl.h"
#ifdef AIK_HAVE_VULKAN
#include "scheduler/vulkan_backend.h"
#endif

#ifndef AIK_DEFAULT_TRUST_STORE
#define AIK_DEFAULT_TRUST_STORE "/etc/aik/trust"
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stat3 {
    double median, min, max;
} stat3;

static stat3 summarize(double *v, int n)
{
    stat3 s;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return s;
}

/* The host's CPU accounting (the aggregate line of /proc/stat): on a VM,
 * "steal" is time our vCPUs were runnable but the hypervisor ran something
 * else. Threaded decode waits for its slowest thread at every barrier, so
 * a few percent of steal can cost far more than that; the share is
 * printed with the results so that a noisy run can be told apart. */
typedef struct cpu_ticks {
    unsigned long long total, steal;
    bool ok;
} cpu_ticks;

static cpu_ticks read_cpu_ticks(void)
{
    cpu_ticks t = { 0, 0, false };
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return t;
    /* cpu user nice system idle iowait irq softirq steal ... */
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            t.total += v[i];
        t.steal = v[7];
        t.ok = true;
    }
    fclose(f);
    return t;
}

/* Steal as a share of all CPU time between a and b, or -1 if unknown. */
static double steal_pct(cpu_ticks a, cpu_ticks b)
{
    if (!a.ok || !b.ok || b.total <= a.total || b.steal < a.steal)
        return -1;
    return 100.0 * (double)(b.steal - a.steal) / (double)(b.total - a.total);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Telemetry of a split run: time per segment, summed over runs. */
typedef struct seg_times {
    uint32_t n_seg;
    double ms[AIK_PLACEMENT_MAX_UNITS];
    uint64_t runs[AIK_PLACEMENT_MAX_UNITS];
    const aik_placement *plan;
} seg_times;

static int seg_record(void *user, uint32_t first_unit, uint32_t end_unit, uint32_t device, double ms)
{
    seg_times *t = user;
    (void)end_unit;
    (void)device;
    for (uint32_t k = 0; t->plan && k < t->plan->n_segments && k < AIK_PLACEMENT_MAX_UNITS; k++)
        if (t->plan->seg[k].first_unit == first_unit) {
            t->ms[k] += ms;
            t->runs[k]++;
        }
    return 0;
}

/* What runs the model: a CPU session, a Vulkan executor or a split plan. */
typedef struct runner {
    aik_session *cpu;
    aik_split_exec *sx;
#ifdef AIK_HAVE_VULKAN
    aik_vk *vk;
    aik_vk_exec *vx;
#endif
} runner;

static void runner_reset(runner *rn)
{
    if (rn->sx) {
        aik_split_exec_truncate(rn->sx, 0);
        return;
    }
#ifdef AIK_HAVE_VULKAN
    if (rn->vx) {
        aik_vk_exec_truncate(rn->vx, 0);
        return;
    }
#endif
    aik_session_reset(rn->cpu);
}

static int runner_eval(runner *rn, const int32_t *toks, uint32_t n, const float **lg, aik_error *err)
{
    if (rn->sx)
        return aik_split_exec_run(rn->sx, toks, n, 1, lg, err);
#ifdef AIK_HAVE_VULKAN
    if (rn->vx)
        return aik_vk_exec_run(rn->vx, toks, n, 1, lg, err);
#endif
    return aik_session_eval(rn->cpu, toks, n, 1, lg, err);
}

/* One measurement: tokens/s of pp (batch) or tg (one by one). */
static int measure(runner *rn, const int32_t *toks, uint32_t n, bool batch, double *ret_tps, aik_error *err)
{
    const float *lg;
    double t0;
    int r;

    runner_reset(rn);
    t0 = now_s();
    if (batch) {
        r = runner_eval(rn, toks, n, &lg, err);
    } else {
        r = 0;
        for (uint32_t i = 0; i < n && r == 0; i++)
            r = runner_eval(rn, toks + i, 1, &lg, err);
    }
    if (r < 0)
        return r;
    *ret_tps = n / (now_s() - t0);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl bench PKG [-p N] [-n N] [-r N] [-t N] [--isa scalar|avx2|avx512] [--device cpu|vulkan[N]] [--json] [--profile] [--file-layout]\n"
               "                        [--override SPEC [--devices FILE.yaml] [--plugin-dir DIR [--trust DIR] [--developer]]]\n"
               "  -p N  prompt tokens for ppN (default 512, 0 = skip)\n"
               "  -n N  generated tokens for tgN (default 128, 0 = skip)\n"
               "  -r N  repetitions (default 5)\n"
               "  -t N  threads (default: all cores)\n"
               "  --override SPEC  split plan: layers=0-2:vulkan0,output:cpu0 | gpu-layers=N (docs/placement.md)\n"
               "  --devices FILE   inventory for --override (default: this host's cpu0, vulkanN, pluginN)\n"
               "  --plugin-dir DIR backend plug-ins for --override (devices plugin0..; see aikctl devices)\n"
               "  --trust DIR      trust store the plug-ins are verified against; --developer: accept unsigned\n"
               "  --profile        time per decoded token in each op (CPU device only)\n"
               "  --file-layout    quantized matmuls on the file's weight layout, not the packed copy\n");
}

/* The plan in force and the mean measured time per segment per run. */
static void split_print(const aik_split_rig *sr, const seg_times *times, FILE *f)
{
    const aik_placement *pl = aik_split_exec_plan(sr->sx);
    const aik_error *fb = aik_split_exec_fallback(sr->sx);

    fprintf(f, "plan (%s):\n", sr->inv.name);
    for (uint32_t k = 0; k < pl->n_segments; k++) {
        const aik_placement_segment *s = &pl->seg[k];
        fprintf(f, "  %-10s %s", sr->inv.dev[s->device].id, aik_placer_unit(sr->placer, s->first_unit)->name);
        if (s->end_unit - s->first_unit > 1)
            fprintf(f, " .. %s", aik_placer_unit(sr->placer, s->end_unit - 1)->name);
        if (!fb && k < AIK_PLACEMENT_MAX_UNITS && times->runs[k])
            fprintf(f, "   %.3f ms per run (mean of %llu pp and tg runs)", times->ms[k] / (double)times->runs[k],
                    (unsigned long long)times->runs[k]);
        fputc('\n', f);
    }
    if (fb)
        fprintf(f, "fallback: %s\n", fb->message);
}

/* Time per decoded token spent in each op (--profile), largest first. */
static void profile_print(const uint64_t op_ns[AIK_OP_COUNT], double tokens, FILE *f)
{
    int order[AIK_OP_COUNT];
    uint64_t total = 0;
    for (int k = 0; k < AIK_OP_COUNT; k++) {
        order[k] = k;
        total += op_ns[k];
    }
    for (int a = 1; a < AIK_OP_COUNT; a++) /* insertion sort: a dozen ops */
        for (int b = a; b > 0 && op_ns[order[b]] > op_ns[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    fprintf(f, "tg profile, per token (%.3f ms in ops):\n", (double)total / tokens / 1e6);
    for (int k = 0; k < AIK_OP_COUNT && op_ns[order[k]]; k++)
        fprintf(f, "  %-12s %9.1f us %5.1f%%\n", aik_op_name((aik_op)order[k]),
                (double)op_ns[order[k]] / tokens / 1e3, total ? 100.0 * (double)op_ns[order[k]] / (double)total : 0.0);
}

int aikctl_cmd_bench(int argc, char **argv)
{
    enum { O_JSON = 256, O_ISA, O_DEVICE, O_OVERRIDE, O_DEVICES, O_PLUGIN_DIR, O_TRUST, O_DEVELOPER, O_PROFILE, O_FILE_LAYOUT };
    static const struct option opts[] = {
        { "json", no_argument, 0, O_JSON }, { "isa", required_argument, 0, O_ISA },
        { "device", required_argument, 0, O_DEVICE }, { "help", no_argument, 0, 'h' },
        { "override", required_argument, 0, O_OVERRIDE }, { "devices", required_argument, 0, O_DEVICES },
        { "plugin-dir", required_argument, 0, O_PLUGIN_DIR }, { "trust", required_argument, 0, O_TRUST },
        { "developer", no_argument, 0, O_DEVELOPER }, { "profile", no_argument, 0, O_PROFILE },
        { "file-layout", no_argument, 0, O_FILE_LAYOUT },
        { 0, 0, 0, 0 },
    };
    uint32_t n_pp = 512, n_tg = 128, reps = 5, threads = 0;
    bool json = false, profile = false, file_layout = false;
    uint64_t tg_op_ns[AIK_OP_COUNT] = { 0 };
    const char *device = "cpu", *override = NULL, *devices = NULL, *plugin_dir = NULL;
    const char *trust = getenv("AIK_TRUST_STORE");
    bool developer = false;
    aik_split_rig *sr = NULL;
    seg_times times = { 0 };
    aik_model *m = NULL;
    aik_session *s = NULL;
    runner rn = { 0 };
    aik_error err = { 0 };
    int32_t *toks = NULL;
    double *pp = NULL, *tg = NULL;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:n:r:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': n_pp = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': n_tg = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': reps = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': threads = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_JSON: json = true; break;
        case O_ISA: {
            aik_cpu_isa want = strcmp(optarg, "scalar") == 0 ? AIK_CPU_SCALAR
                             : strcmp(optarg, "avx2") == 0   ? AIK_CPU_AVX2
                                                             : AIK_CPU_AVX512;
            if (aik_cpu_set_isa(want) != want)
                fprintf(stderr, "aikctl bench: this CPU lacks %s; using %s\n", optarg,
                        aik_cpu_isa_name(aik_cpu_active_isa()));
            break;
        }
        case O_DEVICE:
            device = optarg;
            if (strcmp(device, "cpu") != 0 && strncmp(device, "vulkan", 6) != 0) {
                fprintf(stderr, "aikctl bench: unknown device '%s' (cpu, vulkan, vulkanN)\n", device);
                return 2;
            }
            break;
        case O_OVERRIDE: override = optarg; break;
        case O_DEVICES: devices = optarg; break;
        case O_PLUGIN_DIR: plugin_dir = optarg; break;
        case O_TRUST: trust = optarg; break;
        case O_DEVELOPER: developer = true; break;
        case O_PROFILE: profile = true; break;
        case O_FILE_LAYOUT: file_layout = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (profile && (override || strcmp(device, "cpu") != 0)) {
        fprintf(stderr, "aikctl bench: --profile times the CPU executor only (no --device or --override)\n");
        return 2;
    }
    if (optind + 1 != argc || reps == 0 || (n_pp == 0 && n_tg == 0) || ((devices || plugin_dir) && !override)) {
        usage(stderr);
        return 2;
    }
    if (aik_model_open(argv[optind], 0, NULL, &m, &err) < 0) {
        aikctl_print_error(argv[optind], &err);
        return 1;
    }
    uint32_t need = n_pp > n_tg ? n_pp : n_tg;
    if (need > m->hp.ctx_len) {
        fprintf(stderr, "aikctl bench: %u tokens exceed the model's context of %u\n", need, m->hp.ctx_len);
        goto out;
    }
    aik_session_config sc = { .n_threads = threads, .ctx_len = need, .batch = n_pp ? n_pp : 1, .profile = profile,
                              .file_layout = file_layout };
    if (override) {
        aik_split_rig_config rig_cfg = {
            .override = override,
            .devices = devices,
            .plugin_dir = plugin_dir,
            .trust_dir = trust && trust[0] ? trust : AIK_DEFAULT_TRUST_STORE,
            .load_flags = developer ? AIK_LOAD_DEVELOPER : 0,
            .n_threads = threads,
            .max_batch = sc.batch,
            .ctx_len = need,
            .benchmark = true,
            .record = seg_record,
            .record_user = &times,
        };
        if (aik_split_rig_open(m->graph, &rig_cfg, &sr, &err) < 0) {
            aikctl_print_error("split", &err);
            goto out;
        }
        times.plan = sr->plan;
        rn.sx = sr->sx;
        device = "split";
    } else if (strncmp(device, "vulkan", 6) == 0) {
#ifdef AIK_HAVE_VULKAN
        aik_vk_exec_config vc = { .max_batch = sc.batch, .ctx_len = need };
        if (aik_vk_open((uint32_t)strtoul(device + 6, NULL, 10), &rn.vk, &err) < 0 ||
            aik_vk_exec_new(rn.vk, m->graph, &vc, &rn.vx, &err) < 0) {
            aikctl_print_error(device, &err);
            goto out;
        }
#else
        fprintf(stderr, "aikctl bench: this build has no Vulkan backend (Vulkan loader or glslc missing at build time)\n");
        goto out;
#endif
    } else if (aik_session_new(m, &sc, &s, &err) < 0) {
        aikctl_print_error("session", &err);
        goto out;
    }
    rn.cpu = s;
    toks = malloc(need * sizeof(int32_t));
    pp = calloc(reps, sizeof(double));
    tg = calloc(reps, sizeof(double));
    if (!toks || !pp || !tg)
        goto out;
    uint64_t rng = 0x1234567;
    for (uint32_t i = 0; i < need; i++)
        toks[i] = (int32_t)(xorshift(&rng) % m->hp.n_vocab);

    /* warm-up: page in the weights, spin up the threads */
    double dummy;
    if (measure(&rn, toks, n_pp ? n_pp : n_tg, n_pp != 0, &dummy, &err) < 0) {
        aikctl_print_error("bench", &err);
        goto out;
    }
    const cpu_ticks ticks0 = read_cpu_ticks();
    for (uint32_t r = 0; r < reps; r++) {
        if (n_pp && measure(&rn, toks, n_pp, true, &pp[r], &err) < 0)
            goto bench_failed;
        /* the profile covers the tg runs only: decode is what it is for */
        uint64_t before[AIK_OP_COUNT];
        if (profile)
            memcpy(before, aik_cpu_exec_op_times(aik_session_exec(s)), sizeof(before));
        if (n_tg && measure(&rn, toks, n_tg, false, &tg[r], &err) < 0)
            goto bench_failed;
        if (profile)
            for (int k = 0; k < AIK_OP_COUNT; k++)
                tg_op_ns[k] += aik_cpu_exec_op_times(aik_session_exec(s))[k] - before[k];
    }
    const double steal = steal_pct(ticks0, read_cpu_ticks());
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t wbytes = aik_graph_weight_bytes(m->graph);
    /* the repetitions in run order (summarize sorts them), for scripts that
     * set each one against what else they measured at the time */
    json_t *pp_samples = json_array(), *tg_samples = json_array();
    for (uint32_t r = 0; r < reps; r++) {
        json_array_append_new(pp_samples, json_real(n_pp ? pp[r] : 0));
        json_array_append_new(tg_samples, json_real(n_tg ? tg[r] : 0));
    }
    stat3 spp = n_pp ? summarize(pp, (int)reps) : (stat3){ 0 };
    stat3 stg = n_tg ? summarize(tg, (int)reps) : (stat3){ 0 };
    int nthreads = (int)(threads ? threads : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));

    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:s}", "model", argv[optind], "backend", device,
                              "threads", nthreads, "params", (json_int_t)m->pkg->hdr.parameter_count,
                              "weight_bytes", (json_int_t)wbytes, "peak_rss_bytes", (json_int_t)ru.ru_maxrss * 1024,
                              "isa", aik_cpu_isa_name(aik_cpu_active_isa()));
        if (n_pp)
            json_object_set_new(o, "pp", json_pack("{s:i, s:f, s:f, s:f, s:O}", "n_tokens", (int)n_pp, "tps_median",
                                                   spp.median, "tps_min", spp.min, "tps_max", spp.max,
                                                   "tps_samples", pp_samples));
        if (n_tg)
            json_object_set_new(o, "tg", json_pack("{s:i, s:f, s:f, s:f, s:f, s:O}", "n_tokens", (int)n_tg,
                                                   "tps_median", stg.median, "tps_min", stg.min, "tps_max", stg.max,
                                                   "weight_gbps", stg.median * (double)wbytes / 1e9,
                                                   "tps_samples", tg_samples));
        json_object_set_new(o, "repetitions", json_integer(reps));
        if (steal >= 0)
            json_object_set_new(o, "host_steal_pct", json_real(steal));
        char *txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(txt);
        free(txt);
        json_decref(o);
    } else {
        printf("model: %s  params: %llu  weights: %.1f MiB  device: %s  threads: %d  isa: %s\n", argv[optind],
               (unsigned long long)m->pkg->hdr.parameter_count, (double)wbytes / 1048576.0, device, nthreads,
               aik_cpu_isa_name(aik_cpu_active_isa()));
        printf("%-8s %12s %12s %12s %14s\n", "test", "t/s median", "t/s min", "t/s max", "weight GB/s");
        if (n_pp)
            printf("pp%-6u %12.2f %12.2f %12.2f %14s\n", n_pp, spp.median, spp.min, spp.max, "-");
        if (n_tg)
            printf("tg%-6u %12.2f %12.2f %12.2f %14.2f\n", n_tg, stg.median, stg.min, stg.max,
                   stg.median * (double)wbytes / 1e9);
        printf("peak RSS: %.1f MiB  (%u repetitions)\n", (double)ru.ru_maxrss / 1024.0, reps);
        if (steal >= 0)
            printf("host steal: %.1f%% of CPU time during the repetitions%s\n", steal,
                   steal >= 5 ? " (a busy host: expect slower, noisier results)" : "");
    }
    json_decref(pp_samples);
    json_decref(tg_samples);
    if (sr)
        split_print(sr, &times, json ? stderr : stdout);
    if (profile && n_tg)
        profile_print(tg_op_ns, (double)reps * n_tg, json ? stderr : stdout);
    rc = 0;
    goto out;
bench_failed:
    aikctl_print_error("bench", &err);
out:
    free(toks);
    free(pp);
    free(tg);
    aik_split_rig_free(sr);
#ifdef AIK_HAVE_VULKAN
    aik_vk_exec_free(rn.vx);
    aik_vk_close(rn.vk);
#endif
    aik_session_free(s);
    aik_model_free(m);
    return rc;
}
