/* SPDX-License-Identifier: MIT */
/*
 * Per-request capability adapters, measured (issue goals: switching
 * capability between requests < 1 ms; unmerged LoRA slows decode <= 15%).
 *
 *   bench_adapters PKG [ADAPTER.alr1] [--threads N] [--tokens N] [--rounds N] [--rank R]
 *
 * Decode: tg N tokens greedily on one session, with and without the
 * adapter applied unmerged (W·x + s·B(A·x)), rounds interleaved so machine
 * noise hits both alike; reports the median of per-round ratios. Without
 * ADAPTER, a random rank-R LoRA on q, k, v, o of every layer is used (the
 * distillation pipeline's default targets).
 *
 * Switch: what the kernel does per request to choose a capability's
 * adapter — point the session's executor at another adapter's pairs
 * (aik_cpu_exec_set_lora) — alternating between two adapters, median and
 * max over many switches. The kernel's end-to-end per-request figure
 * (aik_result.adapter_ms, which adds the once-per-base validation) is
 * printed by `aikctl run`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader/adapter.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "scheduler/cpu_exec.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A random low-rank adapter over the model's q/k/v/o weights. */
static aik_adapter *random_adapter(const aik_slm *pkg, uint32_t rank, uint64_t seed)
{
    aik_adapter_identity id;
    aik_adapter *a;
    aik_error err;

    aik_adapter_identity_from_slm(pkg, &id);
    if (aik_adapter_new(AIK_ADAPTER_LOWRANK, &id, &a) < 0)
        return NULL;
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        static const char *const tg[] = { "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight" };
        bool hit = false;
        for (size_t k = 0; k < 4; k++)
            hit |= t->n_dims == 2 && strstr(t->name, tg[k]) != NULL;
        if (!hit)
            continue;
        uint64_t in = t->shape[0], out = t->shape[1];
        float *A = malloc(rank * in * sizeof(float)), *B = malloc(out * rank * sizeof(float));
        for (uint64_t j = 0; j < rank * in; j++)
            A[j] = (float)((seed = seed * 6364136223846793005ull + 1) >> 40) / (float)(1 << 24) - 0.5f;
        for (uint64_t j = 0; j < out * rank; j++)
            B[j] = ((float)((seed = seed * 6364136223846793005ull + 1) >> 40) / (float)(1 << 24) - 0.5f) * 0.01f;
        if (aik_adapter_add_lowrank(a, t->name, in, out, rank, 2.0f * (float)rank, A, B, &err) < 0) {
            fprintf(stderr, "%s\n", err.message);
            exit(1);
        }
        free(A);
        free(B);
    }
    return a;
}

static aik_lora_ref *refs_of(const aik_adapter *a)
{
    aik_lora_ref *r = calloc(a->n_tensors, sizeof(*r));
    for (uint32_t i = 0; i < a->n_tensors; i++)
        r[i] = (aik_lora_ref){ a->tensors[i].name, a->tensors[i].rank, a->tensors[i].alpha / (float)a->tensors[i].rank,
                               a->tensors[i].A, a->tensors[i].B };
    return r;
}

/* ms for n greedy decode steps after a short prompt. */
static double decode_ms(aik_session *s, const aik_lora_ref *lora, size_t n_lora, uint32_t n_tokens, uint32_t n_vocab)
{
    aik_error err;
    const float *logits;
    int32_t tok = 1;
    double t0;

    aik_session_reset(s);
    if (aik_cpu_exec_set_lora(aik_session_exec(s), lora, n_lora, &err) < 0) {
        fprintf(stderr, "set_lora: %s\n", err.message);
        exit(1);
    }
    if (aik_session_eval(s, &tok, 1, 1, &logits, &err) < 0)
        exit(1);
    t0 = now_ms();
    for (uint32_t i = 0; i < n_tokens; i++) {
        uint32_t best = 0;
        for (uint32_t v = 1; v < n_vocab; v++)
            if (logits[v] > logits[best])
                best = v;
        tok = (int32_t)best;
        if (aik_session_eval(s, &tok, 1, 1, &logits, &err) < 0) {
            fprintf(stderr, "eval: %s\n", err.message);
            exit(1);
        }
    }
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    const char *pkg_path = NULL, *adapter_path = NULL;
    uint32_t threads = 2, tokens = 64, rounds = 7, rank = 8;
    aik_model *m;
    aik_adapter *a, *b;
    aik_session *s;
    aik_error err;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--tokens") == 0 && i + 1 < argc)
            tokens = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--rank") == 0 && i + 1 < argc)
            rank = (uint32_t)atoi(argv[++i]);
        else if (!pkg_path)
            pkg_path = argv[i];
        else if (!adapter_path)
            adapter_path = argv[i];
        else {
            fprintf(stderr, "usage: %s PKG [ADAPTER.alr1] [--threads N] [--tokens N] [--rounds N] [--rank R]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!pkg_path || rounds == 0 || tokens == 0 || rank == 0) {
        fprintf(stderr, "usage: %s PKG [ADAPTER.alr1] [--threads N] [--tokens N] [--rounds N] [--rank R]\n", argv[0]);
        return 2;
    }
    if (aik_model_open(pkg_path, 0, NULL, &m, &err) < 0) {
        fprintf(stderr, "%s: %s\n", err.where, err.message);
        return 1;
    }
    if (tokens + 2 > m->hp.ctx_len)
        tokens = m->hp.ctx_len - 2;
    if (adapter_path) {
        if (aik_adapter_load(adapter_path, &a, NULL, &err) < 0 || aik_adapter_validate(a, m->pkg, &err) < 0) {
            fprintf(stderr, "%s: %s: %s\n", adapter_path, err.where, err.message);
            return 1;
        }
    } else {
        a = random_adapter(m->pkg, rank, 1);
    }
    b = random_adapter(m->pkg, a->tensors[0].rank, 2);
    aik_lora_ref *ra = refs_of(a), *rb = refs_of(b);
    aik_session_config sc = { .n_threads = threads };
    if (aik_session_new(m, &sc, &s, &err) < 0)
        return 1;

    double *ratio = calloc(rounds, sizeof(double)), *base = calloc(rounds, sizeof(double)),
           *lora = calloc(rounds, sizeof(double));
    decode_ms(s, NULL, 0, tokens, m->hp.n_vocab); /* warm-up */
    for (uint32_t r = 0; r < rounds; r++) {
        /* alternate the order so a drift in machine load does not favour one */
        if (r % 2 == 0) {
            base[r] = decode_ms(s, NULL, 0, tokens, m->hp.n_vocab);
            lora[r] = decode_ms(s, ra, a->n_tensors, tokens, m->hp.n_vocab);
        } else {
            lora[r] = decode_ms(s, ra, a->n_tensors, tokens, m->hp.n_vocab);
            base[r] = decode_ms(s, NULL, 0, tokens, m->hp.n_vocab);
        }
        ratio[r] = lora[r] / base[r];
    }
    double rmed = median(ratio, rounds), bmed = median(base, rounds), lmed = median(lora, rounds);
    printf("decode tg%u, %u threads, %u rounds (%s, %u pairs, rank %u):\n", tokens, threads, rounds,
           adapter_path ? adapter_path : "random adapter", a->n_tensors, a->tensors[0].rank);
    printf("  base %.1f t/s, unmerged LoRA %.1f t/s (medians); per-round time ratio median %.3f "
           "(min %.3f, max %.3f) -> %.1f%% slower\n",
           tokens / bmed * 1e3, tokens / lmed * 1e3, rmed, ratio[0], ratio[rounds - 1], (rmed - 1) * 100);

    /* switching: alternate two adapters on one executor */
    enum { N_SWITCH = 2001 };
    double *sw = calloc(N_SWITCH, sizeof(double));
    for (int i = 0; i < N_SWITCH; i++) {
        double t0 = now_ms();
        if (aik_cpu_exec_set_lora(aik_session_exec(s), i % 2 ? rb : ra, a->n_tensors, &err) < 0)
            return 1;
        sw[i] = now_ms() - t0;
    }
    double swmed = median(sw, N_SWITCH); /* sorts sw */
    printf("switch adapter between requests: median %.4f ms, p99 %.4f ms, max %.4f ms over %d switches "
           "(the max is the worst preemption on a shared machine)\n",
           swmed, sw[N_SWITCH * 99 / 100], sw[N_SWITCH - 1], N_SWITCH);
    free(sw);
    free(ratio);
    free(base);
    free(lora);
    free(ra);
    free(rb);
    aik_session_free(s);
    aik_adapter_free(a);
    aik_adapter_free(b);
    aik_model_free(m);
    return 0;
}
