/* SPDX-License-Identifier: MIT */
#include "runtime/sampler.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/rng.h"

typedef struct cand {
    int32_t id;
    float logit;
    float p;
} cand;

struct aik_sampler {
    aik_sampler_config cfg;
    uint32_t n_vocab;
    cand *c;
    float *pen;   /* copy of logits with the penalty applied */
    uint64_t rng[4];
};

void aik_sampler_config_default(aik_sampler_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->temperature = 0.8f;
    cfg->top_k = 40;
    cfg->top_p = 0.95f;
    cfg->min_p = 0.05f;
    cfg->repeat_penalty = 1.0f;
    cfg->repeat_last_n = 64;
}

/* xoshiro256** seeded through splitmix64: small, fast, reproducible. */
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(uint64_t s[4]) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

void aik_sampler_reseed(aik_sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = aik_splitmix64(&x);
}

int aik_sampler_new(const aik_sampler_config *cfg, uint32_t n_vocab, aik_sampler **ret, aik_error *err)
{
    aik_sampler *s;

    if (!cfg || !ret || n_vocab == 0)
        return aik_fail(err, -EINVAL, "sampler", "missing configuration or empty vocabulary");
    if (!isfinite(cfg->temperature))
        return aik_fail(err, -EINVAL, "sampling.temperature", "must be a finite number");
    if (!(cfg->top_p > 0.0f) || !isfinite(cfg->top_p))
        return aik_fail(err, -EINVAL, "sampling.top_p", "must be in (0, 1] (>= 1 disables)");
    if (!(cfg->min_p >= 0.0f) || cfg->min_p > 1.0f)
        return aik_fail(err, -EINVAL, "sampling.min_p", "must be in [0, 1]");
    if (!(cfg->repeat_penalty > 0.0f) || !isfinite(cfg->repeat_penalty))
        return aik_fail(err, -EINVAL, "sampling.repeat_penalty", "must be > 0 (1 disables)");
    s = calloc(1, sizeof(*s));
    if (!s)
        return aik_fail(err, -ENOMEM, "sampler", "out of memory");
    s->cfg = *cfg;
    s->n_vocab = n_vocab;
    s->c = malloc(n_vocab * sizeof(*s->c));
    s->pen = malloc(n_vocab * sizeof(*s->pen));
    if (!s->c || !s->pen) {
        aik_sampler_free(s);
        return aik_fail(err, -ENOMEM, "sampler", "out of memory");
    }
    aik_sampler_reseed(s, cfg->seed);
    *ret = s;
    return 0;
}

void aik_sampler_free(aik_sampler *s)
{
    if (!s)
        return;
    free(s->c);
    free(s->pen);
    free(s);
}

/* Descending by logit; ties by ascending id so the order is total. */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t aik_sampler_sample(aik_sampler *s, const float *logits, const int32_t *history, size_t n_history)
{
    const aik_sampler_config *cfg = &s->cfg;
    const float *l = logits;
    size_t n = s->n_vocab;

    if (cfg->repeat_penalty != 1.0f && n_history) {
        size_t from = n_history > cfg->repeat_last_n ? n_history - cfg->repeat_last_n : 0;
        memcpy(s->pen, logits, n * sizeof(float));
        for (size_t i = from; i < n_history; i++) {
            int32_t id = history[i];
            if (id < 0 || (uint32_t)id >= s->n_vocab)
                continue;
            /* Penalise each distinct token once even if repeated in the window. */
            bool seen = false;
            for (size_t j = from; j < i; j++)
                if (history[j] == id) {
                    seen = true;
                    break;
                }
            if (!seen)
                s->pen[id] = s->pen[id] > 0 ? s->pen[id] / cfg->repeat_penalty : s->pen[id] * cfg->repeat_penalty;
        }
        l = s->pen;
    }

    if (cfg->temperature <= 0.0f) {
        int32_t best = 0;
        for (uint32_t i = 1; i < s->n_vocab; i++)
            if (l[i] > l[best])
                best = (int32_t)i;
        return best;
    }

    for (size_t i = 0; i < n; i++)
        s->c[i] = (cand){ (int32_t)i, isnan(l[i]) ? -INFINITY : l[i], 0.0f };
    /* top-k first keeps the sort cheap: partial selection via qsort of all is
     * O(V log V) ≈ 1 ms for 50k entries; acceptable next to a forward pass. */
    qsort(s->c, n, sizeof(cand), cmp_cand);
    if (cfg->top_k > 0 && (size_t)cfg->top_k < n)
        n = (size_t)cfg->top_k;

    /* Softmax at temperature 1 for the p-based filters (llama.cpp applies
     * top-p/min-p before temperature). */
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        s->c[i].p = expf(s->c[i].logit - s->c[0].logit);
        sum += s->c[i].p;
    }
    for (size_t i = 0; i < n; i++)
        s->c[i].p = (float)(s->c[i].p / sum);

    if (cfg->top_p < 1.0f) {
        double cum = 0.0;
        for (size_t i = 0; i < n; i++) {
            cum += s->c[i].p;
            if (cum >= cfg->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (cfg->min_p > 0.0f) {
        float thr = cfg->min_p * s->c[0].p;
        size_t keep = 1;
        while (keep < n && s->c[keep].p >= thr)
            keep++;
        n = keep;
    }

    sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        s->c[i].p = expf((s->c[i].logit - s->c[0].logit) / cfg->temperature);
        sum += s->c[i].p;
    }
    double r = next_unit(s->rng) * sum, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += s->c[i].p;
        if (r < acc)
            return s->c[i].id;
    }
    return s->c[n - 1].id;
}
