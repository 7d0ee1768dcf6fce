/* SPDX-License-Identifier: MIT */
/*
 * bench_train — training throughput of a package's model: tokens/s, the
 * whole step's GFLOP/s, and GFLOP/s inside the mat-muls alone, each as a
 * fraction of the machine's fp32 peak.
 *
 *   usage: bench_train PACKAGE [--threads N (2)] [--steps N (10)]
 *                      [--warmup N (2)] [--seq-len N (128)]
 *                      [--micro-batches N (8)] [--peak GFLOPS]
 *
 * The defaults are the default model's recipe (models/wordnet/recipe.json):
 * full training, 8 sequences of 128 tokens per optimizer step. The data
 * are random token ids from a seeded generator: the cost of a step does
 * not depend on what the tokens say. Warm-up steps are run first and not
 * counted (page faults of first touch, thread start).
 *
 * Flops are aik_trainer_flops_per_token (what aikctl train reports): every
 * mat-mul 6·in·out per token, causal attention 12·(seq_len/2)·heads·head_dim.
 *   step GFLOP/s    = flops/token × tokens / wall time of the steps
 *   mat-mul GFLOP/s = mat-mul flops/token × tokens / wall time inside the
 *                     mat-muls (forward and backward; aik_trainer_profile)
 * The peak is measured by benchmarks/gemm/bench_gemm (the first line it
 * prints, "peak"); pass it with --peak to get percentages, or run
 * benchmarks/train/bench_train.sh, which does both.
 *
 * Printed for all timed steps and for the fastest one: on a shared machine
 * the fastest step shows what the code does when it has the cores. Also
 * printed: the CPU time per step (process CPU time / steps).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rng.h"
#include "graph/graph.h"
#include "runtime/model.h"
#include "train/trainer.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_train PACKAGE [--threads N] [--steps N] [--warmup N] [--seq-len N]\n"
                    "                   [--micro-batches N] [--peak GFLOPS]\n");
    return 2;
}

static void pct(const char *label, double gflops, double peak)
{
    if (peak > 0)
        printf("%-34s %8.1f GFLOP/s  %5.1f%% of peak\n", label, gflops, 100.0 * gflops / peak);
    else
        printf("%-34s %8.1f GFLOP/s\n", label, gflops);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    uint32_t threads = 2, steps = 10, warmup = 2, seq_len = 128, micro = 8;
    double peak = 0;
    aik_model *m = NULL;
    aik_trainer *tr = NULL;
    aik_train_config cfg;
    aik_error err;
    int32_t *seqs = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (path)
                return usage();
            path = a;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        const char *v = argv[++i];
        if (strcmp(a, "--threads") == 0)
            threads = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--steps") == 0)
            steps = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--warmup") == 0)
            warmup = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--seq-len") == 0)
            seq_len = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--micro-batches") == 0)
            micro = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--peak") == 0)
            peak = strtod(v, NULL);
        else
            return usage();
    }
    if (!path || steps == 0)
        return usage();

    if (aik_model_open(path, 0, NULL, &m, &err) < 0) {
        fprintf(stderr, "bench_train: %s: %s\n", err.where, err.message);
        return 1;
    }
    aik_train_config_default(&cfg);
    cfg.seq_len = seq_len;
    cfg.micro_batches = micro;
    cfg.steps = warmup + steps;
    cfg.warmup_steps = 0;
    cfg.lr = 3e-4f;
    cfg.min_lr = 3e-5f;
    cfg.n_threads = threads;
    cfg.seed = 1;
    if (aik_trainer_new(m, &cfg, &tr, &err) < 0) {
        fprintf(stderr, "bench_train: %s: %s\n", err.where, err.message);
        goto out;
    }
    size_t n_tok = (size_t)micro * (seq_len + 1);
    seqs = malloc(n_tok * sizeof(int32_t));
    if (!seqs) {
        fprintf(stderr, "bench_train: out of memory\n");
        goto out;
    }
    uint64_t rng = 12345;
    aik_train_stats st = { 0 };
    aik_train_profile p0, p1, ps0, ps1, best0 = { 0 }, best1 = { 0 };
    double wall0 = 0, cpu0 = 0, best = 1e30;
    for (uint32_t s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            aik_trainer_profile(tr, &p0);
            wall0 = clock_s(CLOCK_MONOTONIC);
            cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        for (size_t k = 0; k < n_tok; k++)
            seqs[k] = (int32_t)(aik_splitmix64(&rng) % m->hp.n_vocab);
        aik_trainer_profile(tr, &ps0);
        if (aik_trainer_step(tr, seqs, &st, &err) < 0) {
            fprintf(stderr, "bench_train: step %u: %s: %s\n", s, err.where, err.message);
            goto out;
        }
        aik_trainer_profile(tr, &ps1);
        if (s >= warmup && ps1.total_s - ps0.total_s < best) {
            best = ps1.total_s - ps0.total_s;
            best0 = ps0;
            best1 = ps1;
        }
    }
    double wall = clock_s(CLOCK_MONOTONIC) - wall0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    aik_trainer_profile(tr, &p1);

    double flops_tok = aik_trainer_flops_per_token(tr);
    printf("model %s: dim %u, %u layers, vocab %u; %u x %u tokens per step, %u threads, %u steps (+%u warm-up)\n",
           path, m->hp.dim, m->hp.n_layers, m->hp.n_vocab, micro, seq_len, threads, steps, warmup);
    printf("flops per token: %.3g (mat-muls %.3g, attention %.3g)\n", flops_tok, p1.matmul_flops_per_token,
           p1.attention_flops_per_token);
    /* FNV-1a over the bits of every trained weight: two builds that claim
     * the same arithmetic must print the same digest */
    uint64_t fnv = 0xcbf29ce484222325ull;
    for (aik_node i = 0; i < m->graph->n_nodes; i++) {
        uint64_t ne;
        const float *w = m->graph->nodes[i].op == AIK_OP_WEIGHT ? aik_trainer_weight(tr, m->graph->nodes[i].name, &ne)
                                                                 : NULL;
        for (uint64_t k = 0; w && k < ne; k++) {
            uint32_t bits;
            memcpy(&bits, &w[k], sizeof(bits));
            fnv = (fnv ^ bits) * 0x100000001b3ull;
        }
    }
    printf("final loss %.9g, |g| %.9g, weights digest %016llx\n", st.loss, st.grad_norm, (unsigned long long)fnv);
    printf("wall per step %.1f ms, CPU per step %.1f ms\n", 1e3 * wall / steps, 1e3 * cpu / steps);
    /* All steps, then the fastest one: on a shared machine other processes
     * slow some steps down; the fastest says what the code does when it has
     * the cores (bench_gemm takes the best call for the same reason). */
    for (int pass = 0; pass < 2; pass++) {
        const aik_train_profile *a = pass ? &best0 : &p0, *b = pass ? &best1 : &p1;
        double n = pass ? 1 : steps, tokens = (double)(b->tokens - a->tokens);
        double mm = b->matmul_s - a->matmul_s, att = b->attention_s - a->attention_s;
        double oth = b->other_ops_s - a->other_ops_s, loss = b->loss_s - a->loss_s;
        double opt = b->optimizer_s - a->optimizer_s, tot = b->total_s - a->total_s;
        printf("%s\n", pass ? "fastest step:" : "all steps:");
        printf("  tokens/s %.0f\n", tokens / tot);
        pct("  whole step (wall)", flops_tok * tokens / tot * 1e-9, peak);
        pct("  inside the mat-muls (wall)", p1.matmul_flops_per_token * tokens / mm * 1e-9, peak);
        pct("  inside attention (wall)", p1.attention_flops_per_token * tokens / att * 1e-9, peak);
        printf("  time per step: mat-muls %.1f ms (%.0f%%), attention %.1f ms (%.0f%%), other ops %.1f ms (%.0f%%),\n"
               "                 loss %.1f ms (%.0f%%), optimizer %.1f ms (%.0f%%), rest %.1f ms\n",
               1e3 * mm / n, 100 * mm / tot, 1e3 * att / n, 100 * att / tot, 1e3 * oth / n, 100 * oth / tot,
               1e3 * loss / n, 100 * loss / tot, 1e3 * opt / n, 100 * opt / tot,
               1e3 * (tot - mm - att - oth - loss - opt) / n);
    }
    printf("best step %.1f ms\n", 1e3 * best);
    rc = 0;
out:
    free(seqs);
    aik_trainer_free(tr);
    aik_model_free(m);
    return rc;
}
