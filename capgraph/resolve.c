/* SPDX-License-Identifier: MIT */
/*
 * Intent resolution: a depth-first search over provider choices with
 * branch-and-bound on (module count, memory). The graphs are small (tens
 * of modules) and plans shorter than AIK_PLAN_MAX_MODULES, so an exact
 * search is affordable; AIK_RESOLVE_MAX_STEPS bounds a hostile graph.
 * Rules and the ordering of plans: capgraph/capgraph.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capgraph/internal.h"
#include "common/checked.h"
#include "common/error.h"

#define MAX_INTENT_TEXT 1024
#define MAX_PEND (AIK_PLAN_MAX_MODULES * AIK_PROFILE_MAX_SEQ + 1)

enum { F_MISSING, F_CONSTRAINT, F_CYCLE, F_CONFLICT, F_COUNT };

typedef struct pending {
    const char *id;
    const aik_semver_range *range;
    const char *range_text;
    long from;                 /* requiring module, -1 for the intent */
    bool is_base;              /* the requiring module's `base`: needs an architecture module */
} pending;

typedef struct mod_info {
    bool considered;           /* in range for some requirement */
    char *reject;              /* constraint that excludes it on its own */
    char *fail;                /* first failure of a branch that needed it */
    bool has_best;             /* best complete plan containing it */
    size_t best_n;
    uint64_t best_mem;
} mod_info;

typedef struct search {
    const aik_capgraph *g;
    const aik_constraints *c;
    mod_info *info;
    size_t sel[AIK_PLAN_MAX_MODULES];
    size_t n_sel;
    uint64_t mem;
    uint32_t backends;
    struct {
        const char *id;
        size_t mod;
    } bind[AIK_PLAN_MAX_MODULES * AIK_PROFILE_MAX_SEQ];
    size_t n_bind;
    pending pend[MAX_PEND];
    size_t n_pend;
    bool have_best;
    size_t best[AIK_PLAN_MAX_MODULES];
    size_t best_n;
    uint64_t best_mem;
    uint32_t best_backends;
    unsigned long steps;
    bool aborted;
    bool oom;
    unsigned fail_flags;
    char *first_fail[F_COUNT];
} search;

static const char *mem_str(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ull << 30))
        snprintf(buf, len, "%.1f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, len, "%.1f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
    else
        snprintf(buf, len, "%llu B", (unsigned long long)b);
    return buf;
}

static const char *backends_str(uint32_t bits, char *buf, size_t len)
{
    static const char *const names[] = { "cpu", "vulkan", "npu" };
    size_t o = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < 3; i++)
        if (bits & (1u << i))
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", o ? "," : "", names[i]);
    if (!buf[0])
        snprintf(buf, len, "none");
    return buf;
}

static const char *label(const search *s, size_t m, char *buf, size_t len)
{
    return capgraph_module_label(s->g->mods[m], buf, len);
}

static void fail(search *s, int cls, long who, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(search *s, int cls, long who, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    s->fail_flags |= 1u << cls;
    if (s->first_fail[cls] && (who < 0 || s->info[who].fail))
        return; /* nothing new to record: skip the formatting */
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        s->oom = true;
        msg = NULL;
    }
    va_end(ap);
    if (!msg)
        return;
    if (!s->first_fail[cls])
        s->first_fail[cls] = strdup(msg);
    if (who >= 0 && !s->info[who].fail)
        s->info[who].fail = strdup(msg);
    free(msg);
}

static long bound(const search *s, const char *id)
{
    for (size_t i = 0; i < s->n_bind; i++)
        if (strcmp(s->bind[i].id, id) == 0)
            return (long)s->bind[i].mod;
    return -1;
}

static const aik_capability *cap_of(const aik_profile *p, const char *id)
{
    return aik_profile_find_capability(p, id, NULL);
}

static const char *who_str(const search *s, long who, char *buf, size_t len)
{
    if (who < 0)
        snprintf(buf, len, "the intent");
    else
        label(s, (size_t)who, buf, len);
    return buf;
}

/* Constraints that a module fails on its own. Returns a malloc'ed reason or NULL. */
static char *own_constraint(const aik_profile *p, const aik_constraints *c)
{
    char *r = NULL, a[32], b[32];

    if (!c)
        return NULL;
    if (c->memory_budget && p->exec.memory_bytes > c->memory_budget) {
        if (asprintf(&r, "needs %s of memory, the budget is %s", mem_str(p->exec.memory_bytes, a, sizeof(a)),
                     mem_str(c->memory_budget, b, sizeof(b))) < 0)
            r = NULL;
    } else if (c->backends && !(p->exec.backends & c->backends)) {
        if (asprintf(&r, "runs on %s, allowed backends are %s", backends_str(p->exec.backends, a, sizeof(a)),
                     backends_str(c->backends, b, sizeof(b))) < 0)
            r = NULL;
    } else if (c->latency_ms) {
        double need = 1000.0 / c->latency_ms;
        if (p->exec.expected_tokens_per_s > 0 && p->exec.expected_tokens_per_s < need) {
            if (asprintf(&r, "expects %.1f tokens/s, a %u ms per-token budget needs %.1f", p->exec.expected_tokens_per_s,
                         c->latency_ms, need) < 0)
                r = NULL;
        } else if (p->exec.expected_tokens_per_s <= 0 && p->kind == AIK_MODULE_ARCHITECTURE) {
            if (asprintf(&r, "declares no expected tokens/s, so it cannot promise a %u ms per-token budget",
                         c->latency_ms) < 0)
                r = NULL;
        }
    }
    return r;
}

/* Cycle among the selected modules through the current bindings. */
static bool plan_cycle(search *s, char *msg, size_t len)
{
    int color[AIK_PLAN_MAX_MODULES] = { 0 };
    size_t stack[AIK_PLAN_MAX_MODULES], it[AIK_PLAN_MAX_MODULES];

    for (size_t root = 0; root < s->n_sel; root++) {
        size_t depth = 0;
        if (color[root])
            continue;
        stack[0] = root;
        it[0] = 0;
        color[root] = 1;
        while (depth != (size_t)-1) {
            size_t u = stack[depth];
            const aik_profile *p = s->g->mods[s->sel[u]];
            if (it[depth] >= p->n_requires) {
                color[u] = 2;
                depth--;
                continue;
            }
            long m = bound(s, p->requires[it[depth]++].id);
            size_t v = 0;
            if (m < 0)
                continue;
            while (v < s->n_sel && s->sel[v] != (size_t)m)
                v++;
            if (v == s->n_sel)
                continue;
            if (color[v] == 1) {
                size_t o = 0, k = 0;
                char lb[128];
                while (stack[k] != v)
                    k++;
                for (; k <= depth; k++) {
                    o += (size_t)snprintf(msg + o, o < len ? len - o : 0, "%s -> ", label(s, s->sel[stack[k]], lb, sizeof(lb)));
                    if (o >= len)
                        o = len - 1;
                }
                snprintf(msg + o, len - o, "%s", label(s, s->sel[v], lb, sizeof(lb)));
                return true;
            }
            if (color[v] == 0) {
                color[v] = 1;
                depth++;
                stack[depth] = v;
                it[depth] = 0;
            }
        }
    }
    return false;
}

static int idx_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* <0 when the current selection is a better plan than the best so far. */
static int cmp_with_best(const search *s)
{
    size_t cur[AIK_PLAN_MAX_MODULES];

    if (!s->have_best)
        return -1;
    if (s->n_sel != s->best_n)
        return s->n_sel < s->best_n ? -1 : 1;
    if (s->mem != s->best_mem)
        return s->mem < s->best_mem ? -1 : 1;
    /* The graph order is name ascending, version descending, so comparing
     * sorted index lists compares by name, then prefers higher versions. */
    memcpy(cur, s->sel, s->n_sel * sizeof(size_t));
    qsort(cur, s->n_sel, sizeof(size_t), idx_cmp);
    for (size_t i = 0; i < s->n_sel; i++)
        if (cur[i] != s->best[i])
            return cur[i] < s->best[i] ? -1 : 1;
    return 0;
}

static void complete(search *s)
{
    char msg[512];

    if (plan_cycle(s, msg, sizeof(msg))) {
        fail(s, F_CYCLE, (long)s->sel[s->n_sel - 1], "dependency cycle: %s", msg);
        return;
    }
    for (size_t i = 0; i < s->n_sel; i++) {
        mod_info *mi = &s->info[s->sel[i]];
        if (!mi->has_best || s->n_sel < mi->best_n || (s->n_sel == mi->best_n && s->mem < mi->best_mem)) {
            mi->has_best = true;
            mi->best_n = s->n_sel;
            mi->best_mem = s->mem;
        }
    }
    if (cmp_with_best(s) < 0) {
        s->have_best = true;
        s->best_n = s->n_sel;
        s->best_mem = s->mem;
        s->best_backends = s->backends;
        memcpy(s->best, s->sel, s->n_sel * sizeof(size_t));
        qsort(s->best, s->best_n, sizeof(size_t), idx_cmp);
    }
}

static void step(search *s, size_t pi);

static void try_candidate(search *s, size_t pi, size_t m)
{
    const aik_profile *p = s->g->mods[m];
    uint64_t mem;
    uint32_t be;
    size_t save_bind = s->n_bind, save_pend = s->n_pend;
    char a[32], b[32], lb[128], lb2[128];

    for (size_t i = 0; i < s->n_sel; i++) {
        if (strcmp(s->g->mods[s->sel[i]]->name, p->name) == 0) {
            fail(s, F_CONFLICT, (long)m, "%s and %s cannot both be in one plan (one version per module)",
                 label(s, m, lb, sizeof(lb)), label(s, s->sel[i], lb2, sizeof(lb2)));
            return;
        }
    }
    if (s->n_sel >= AIK_PLAN_MAX_MODULES) {
        fail(s, F_CONSTRAINT, (long)m, "a plan may hold at most %d modules", AIK_PLAN_MAX_MODULES);
        return;
    }
    if (aik_add_overflow(s->mem, p->exec.memory_bytes, &mem) ||
        (s->c && s->c->memory_budget && mem > s->c->memory_budget)) {
        if (mem < s->mem)
            mem = UINT64_MAX;
        fail(s, F_CONSTRAINT, (long)m, "with %s the plan needs %s, over the memory budget of %s",
             label(s, m, lb, sizeof(lb)), mem_str(mem, a, sizeof(a)),
             mem_str(s->c ? s->c->memory_budget : UINT64_MAX, b, sizeof(b)));
        return;
    }
    be = s->backends & p->exec.backends;
    if (!be) {
        fail(s, F_CONSTRAINT, (long)m, "%s runs on %s, the rest of the plan on %s: no common backend",
             label(s, m, lb, sizeof(lb)), backends_str(p->exec.backends, a, sizeof(a)),
             backends_str(s->backends, b, sizeof(b)));
        return;
    }
    /* Bound: adding modules never makes a plan smaller. */
    if (s->have_best && (s->n_sel + 1 > s->best_n || (s->n_sel + 1 == s->best_n && mem > s->best_mem)))
        return;
    for (size_t i = 0; i < p->n_provides; i++) {
        long other = bound(s, p->provides[i].id);
        if (other >= 0) {
            fail(s, F_CONFLICT, (long)m, "%s would provide %s a second time (the plan has it from %s)",
                 label(s, m, lb, sizeof(lb)), p->provides[i].id, label(s, (size_t)other, lb2, sizeof(lb2)));
            s->n_bind = save_bind;
            return;
        }
        s->bind[s->n_bind].id = p->provides[i].id;
        s->bind[s->n_bind].mod = m;
        s->n_bind++;
    }
    for (size_t i = 0; i < p->n_requires; i++) {
        s->pend[s->n_pend].id = p->requires[i].id;
        s->pend[s->n_pend].range = &p->requires[i].range;
        s->pend[s->n_pend].range_text = p->requires[i].range_text;
        s->pend[s->n_pend].from = (long)m;
        s->pend[s->n_pend].is_base = p->base && strcmp(p->base, p->requires[i].id) == 0;
        s->n_pend++;
    }
    uint64_t save_mem = s->mem;
    uint32_t save_be = s->backends;
    s->sel[s->n_sel++] = m;
    s->mem = mem;
    s->backends = be;
    step(s, pi + 1);
    s->n_sel--;
    s->mem = save_mem;
    s->backends = save_be;
    s->n_bind = save_bind;
    s->n_pend = save_pend;
}

static void step(search *s, size_t pi)
{
    const pending *q;
    long b;
    bool any_provider = false, any_in_range = false, any_allowed = false, wrong_kind = false;
    char lb[128], lb2[128], v[96];

    if (s->aborted)
        return;
    if (++s->steps > AIK_RESOLVE_MAX_STEPS) {
        s->aborted = true;
        return;
    }
    if (pi == s->n_pend) {
        complete(s);
        return;
    }
    q = &s->pend[pi];
    b = bound(s, q->id);
    if (b >= 0) {
        const aik_capability *cap = cap_of(s->g->mods[b], q->id);
        if (q->is_base && s->g->mods[b]->kind != AIK_MODULE_ARCHITECTURE)
            fail(s, F_CONFLICT, q->from, "%s needs its base %s from an architecture module, but the plan has it from %s",
                 who_str(s, q->from, lb, sizeof(lb)), q->id, label(s, (size_t)b, lb2, sizeof(lb2)));
        else if (aik_semver_range_match(q->range, &cap->version))
            step(s, pi + 1);
        else
            fail(s, F_CONFLICT, q->from, "%s requires %s %s, but the plan already has %s %s from %s",
                 who_str(s, q->from, lb, sizeof(lb)), q->id, q->range_text, q->id,
                 aik_semver_format(&cap->version, v, sizeof(v)), label(s, (size_t)b, lb2, sizeof(lb2)));
        return;
    }
    for (size_t m = 0; m < s->g->n; m++) {
        const aik_capability *cap = cap_of(s->g->mods[m], q->id);
        if (!cap)
            continue;
        any_provider = true;
        if (!aik_semver_range_match(q->range, &cap->version))
            continue;
        if (q->is_base && s->g->mods[m]->kind != AIK_MODULE_ARCHITECTURE) {
            wrong_kind = true; /* only a model can be the base a capability module applies to */
            continue;
        }
        any_in_range = true;
        s->info[m].considered = true;
        if (s->info[m].reject)
            continue;
        any_allowed = true;
        try_candidate(s, pi, m);
    }
    if (!any_provider) {
        fail(s, F_MISSING, q->from, "%s requires %s %s: no installed module provides it", who_str(s, q->from, lb, sizeof(lb)),
             q->id, q->range_text);
    } else if (!any_in_range) {
        char have[256];
        size_t o = 0;
        have[0] = '\0';
        for (size_t m = 0; m < s->g->n; m++) {
            const aik_capability *cap = cap_of(s->g->mods[m], q->id);
            if (cap && o < sizeof(have))
                o += (size_t)snprintf(have + o, sizeof(have) - o, "%s%s from %s", o ? ", " : "",
                                      aik_semver_format(&cap->version, v, sizeof(v)), label(s, m, lb2, sizeof(lb2)));
        }
        fail(s, F_MISSING, q->from, "%s requires %s %s: no installed version matches (installed: %s)%s",
             who_str(s, q->from, lb, sizeof(lb)), q->id, q->range_text, have,
             wrong_kind ? "; its base must come from an architecture module" : "");
    } else if (!any_allowed) {
        fail(s, F_CONSTRAINT, q->from, "%s requires %s %s: every provider is excluded by the constraints",
             who_str(s, q->from, lb, sizeof(lb)), q->id, q->range_text);
    }
}

/* ---- free text ---- */

static int build_index(aik_capgraph *g)
{
    int r;
    if (g->tm)
        return 0;
    r = aik_textmatch_new(&g->tm);
    if (r < 0)
        return r;
    for (size_t m = 0; m < g->n; m++) {
        const aik_profile *p = g->mods[m];
        for (size_t c = 0; c < p->n_provides; c++) {
            for (size_t i = 0; i < p->provides[c].intents.n; i++) {
                /* The same phrasing from two providers of one capability counts once. */
                bool dup = false;
                for (size_t m2 = 0; m2 < m && !dup; m2++) {
                    const aik_capability *o = cap_of(g->mods[m2], p->provides[c].id);
                    for (size_t j = 0; o && j < o->intents.n && !dup; j++)
                        dup = strcmp(o->intents.v[j], p->provides[c].intents.v[i]) == 0;
                }
                if (dup)
                    continue;
                r = aik_textmatch_add(g->tm, p->provides[c].id, p->provides[c].intents.v[i]);
                if (r < 0) {
                    aik_textmatch_free(g->tm);
                    g->tm = NULL;
                    return r;
                }
            }
        }
    }
    return 0;
}

static int match_text(aik_capgraph *g, const char *text, aik_explanation *ex, char **ret_id, double *ret_score,
                      aik_error *err)
{
    aik_textmatch_result *res = NULL;
    size_t n = 0;
    unsigned flags = 0;
    int r;
    char buf[sizeof(((aik_error *)0)->message) + 200];

    pthread_mutex_lock(&g->lock);
    r = build_index(g);
    if (r == 0 && g->wordnet_dir && g->wn_state == 0) {
        int w = aik_wordnet_open(g->wordnet_dir, &g->wn, &g->wn_err);
        g->wn_state = w < 0 ? w : 1;
    }
    if (r == 0)
        r = aik_textmatch_query(g->tm, text, g->wn_state == 1 ? g->wn : NULL, g->has_embedder ? &g->embedder : NULL,
                                &res, &n, &flags);
    if (r < 0) {
        pthread_mutex_unlock(&g->lock);
        return aik_fail(err, r, "intent", "free-text matching failed: %s", strerror(-r));
    }
    if (flags & AIK_TEXTMATCH_USED_WORDNET)
        aik_explanation_add(ex, "matching", AIK_VERDICT_NOTE, "lexical (stems, BM25 idf) + WordNet synonyms from %s",
                            g->wordnet_dir);
    else if (!g->wordnet_dir)
        aik_explanation_add(ex, "matching", AIK_VERDICT_NOTE, "lexical only: WordNet is disabled");
    else
        aik_explanation_add(ex, "matching", AIK_VERDICT_NOTE, "lexical only: WordNet unavailable (%s)",
                            aik_error_format(&g->wn_err, buf, sizeof(buf)));
    if (flags & AIK_TEXTMATCH_EMBED_FAILED)
        aik_explanation_add(ex, "matching", AIK_VERDICT_NOTE, "the embedding hook failed: lexical score used");
    else if (flags & AIK_TEXTMATCH_USED_EMBEDDING)
        aik_explanation_add(ex, "matching", AIK_VERDICT_NOTE, "embedding cosine weighted %.2f",
                            g->embedder.weight > 0 ? g->embedder.weight : AIK_EMBED_DEFAULT_WEIGHT);
    pthread_mutex_unlock(&g->lock);

    for (size_t i = 0; i < n; i++) {
        if (i == 0 && res[i].score >= AIK_TEXTMATCH_THRESHOLD)
            aik_explanation_add(ex, res[i].label, AIK_VERDICT_MATCHED, "score %.2f >= %.2f, best phrasing \"%s\"",
                                res[i].score, AIK_TEXTMATCH_THRESHOLD, res[i].phrase);
        else if (res[i].score >= AIK_TEXTMATCH_THRESHOLD)
            aik_explanation_add(ex, res[i].label, AIK_VERDICT_REJECTED, "score %.2f, lower than %s's %.2f (\"%s\")",
                                res[i].score, res[0].label, res[0].score, res[i].phrase);
        else
            aik_explanation_add(ex, res[i].label, AIK_VERDICT_REJECTED, "score %.2f below the threshold %.2f (\"%s\")",
                                res[i].score, AIK_TEXTMATCH_THRESHOLD, res[i].phrase);
    }
    if (n == 0 || res[0].score < AIK_TEXTMATCH_THRESHOLD) {
        if (n == 0)
            r = aik_fail(err, -ENOENT, "intent", "no capability matches \"%.100s\": no capability has example phrasings",
                         text);
        else
            r = aik_fail(err, -ENOENT, "intent", "no capability matches \"%.100s\" (best: %s with %.2f, threshold %.2f)",
                         text, res[0].label, res[0].score, AIK_TEXTMATCH_THRESHOLD);
        free(res);
        return r;
    }
    *ret_id = strdup(res[0].label);
    *ret_score = res[0].score;
    free(res);
    return *ret_id ? 0 : aik_fail(err, -ENOMEM, NULL, "out of memory");
}

/* ---- driver ---- */

void aik_plan_free(aik_plan *p)
{
    if (!p)
        return;
    free(p->capability);
    free(p->modules);
    free(p);
}

/* Why module m is in the plan: the requirements it serves. */
static void explain_chosen(const search *s, aik_explanation *ex, size_t m, const char *intent_id, const char *intent_range)
{
    const aik_profile *p = s->g->mods[m];
    char why[600], lb[128], v[96], a[32], b[32];
    size_t o = 0;

    why[0] = '\0';
    for (size_t c = 0; c < p->n_provides; c++) {
        const char *id = p->provides[c].id;
        aik_semver_format(&p->provides[c].version, v, sizeof(v));
        if (strcmp(id, intent_id) == 0 && o < sizeof(why))
            o += (size_t)snprintf(why + o, sizeof(why) - o, "%sprovides %s %s for the intent%s%s%s", o ? "; " : "", id, v,
                                  strcmp(intent_range, "*") ? " (" : "", strcmp(intent_range, "*") ? intent_range : "",
                                  strcmp(intent_range, "*") ? ")" : "");
        for (size_t k = 0; k < s->best_n; k++) {
            const aik_profile *u = s->g->mods[s->best[k]];
            for (size_t r = 0; r < u->n_requires; r++)
                if (strcmp(u->requires[r].id, id) == 0 && o < sizeof(why))
                    o += (size_t)snprintf(why + o, sizeof(why) - o, "%sprovides %s %s required by %s (%s)", o ? "; " : "",
                                          id, v, label(s, s->best[k], lb, sizeof(lb)), u->requires[r].range_text);
        }
    }
    aik_explanation_add(ex, label(s, m, lb, sizeof(lb)), AIK_VERDICT_CHOSEN, "%s; memory %s, backends %s", why,
                        mem_str(p->exec.memory_bytes, a, sizeof(a)), backends_str(p->exec.backends, b, sizeof(b)));
}

static void explain_others(const search *s, aik_explanation *ex)
{
    char lb[128], a[32], b[32];

    for (size_t m = 0; m < s->g->n; m++) {
        const mod_info *mi = &s->info[m];
        bool chosen = false;
        for (size_t k = 0; s->have_best && k < s->best_n; k++)
            chosen |= s->best[k] == m;
        if (chosen || !mi->considered)
            continue;
        label(s, m, lb, sizeof(lb));
        if (mi->reject)
            aik_explanation_add(ex, lb, AIK_VERDICT_REJECTED, "%s", mi->reject);
        else if (mi->has_best && s->have_best)
            aik_explanation_add(ex, lb, AIK_VERDICT_REJECTED,
                                "its best plan has %zu module(s) and %s; the chosen plan has %zu and %s%s", mi->best_n,
                                mem_str(mi->best_mem, a, sizeof(a)), s->best_n, mem_str(s->best_mem, b, sizeof(b)),
                                mi->best_n == s->best_n && mi->best_mem == s->best_mem
                                    ? " (equal cost: the chosen plan comes first by name, then higher version)" : "");
        else if (mi->fail)
            aik_explanation_add(ex, lb, AIK_VERDICT_REJECTED, "%s", mi->fail);
        else if (s->have_best)
            aik_explanation_add(ex, lb, AIK_VERDICT_REJECTED, "not needed: a smaller plan was found first");
        else
            aik_explanation_add(ex, lb, AIK_VERDICT_REJECTED, "no complete plan includes it");
    }
}

/* Dependencies first; among ready modules the graph order (by name). */
static int order_plan(const search *s, aik_plan *plan)
{
    bool done[AIK_PLAN_MAX_MODULES] = { false };

    plan->modules = calloc(s->best_n, sizeof(*plan->modules));
    if (!plan->modules)
        return -ENOMEM;
    for (size_t out = 0; out < s->best_n; out++) {
        size_t pick = SIZE_MAX;
        for (size_t k = 0; k < s->best_n && pick == SIZE_MAX; k++) {
            const aik_profile *p = s->g->mods[s->best[k]];
            bool ready = !done[k];
            for (size_t r = 0; ready && r < p->n_requires; r++)
                for (size_t j = 0; j < s->best_n; j++)
                    if (j != k && !done[j] && cap_of(s->g->mods[s->best[j]], p->requires[r].id))
                        ready = false;
            if (ready)
                pick = k;
        }
        if (pick == SIZE_MAX)
            return -ELOOP; /* cannot happen: complete() refuses cyclic plans */
        done[pick] = true;
        plan->modules[out] = s->g->mods[s->best[pick]];
    }
    plan->n_modules = s->best_n;
    return 0;
}

static int parse_intent(const char *intent, char **ret_id, char **ret_range, bool *ret_is_text, aik_error *err)
{
    const char *s = intent, *at;
    size_t len;

    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n'))
        len--;
    if (len == 0)
        return aik_fail(err, -EINVAL, "intent", "empty intent");
    if (len > MAX_INTENT_TEXT)
        return aik_fail(err, -EINVAL, "intent", "longer than %d bytes", MAX_INTENT_TEXT);
    *ret_id = strndup(s, len);
    if (!*ret_id)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    at = memchr(*ret_id, '@', len);
    if (at) {
        size_t il = (size_t)(at - *ret_id);
        char *id = *ret_id;
        id[il] = '\0';
        if (aik_capability_id_valid(id)) {
            const char *rs = at + 1;
            while (*rs == ' ')
                rs++;
            *ret_range = strdup(rs);
            *ret_is_text = false;
            return *ret_range ? 0 : aik_fail(err, -ENOMEM, NULL, "out of memory");
        }
        id[il] = '@'; /* not "id@range": free text that contains '@' */
    } else if (aik_capability_id_valid(*ret_id) && strchr(*ret_id, '.')) {
        *ret_range = strdup("*");
        *ret_is_text = false;
        return *ret_range ? 0 : aik_fail(err, -ENOMEM, NULL, "out of memory");
    }
    *ret_is_text = true;
    *ret_range = strdup("*");
    return *ret_range ? 0 : aik_fail(err, -ENOMEM, NULL, "out of memory");
}

int aik_capgraph_resolve(aik_capgraph *g, const char *intent, const aik_constraints *constraints,
                         aik_explanation *explain, aik_plan **ret_plan, aik_error *err)
{
    search *s = NULL;
    char *text = NULL, *range_text = NULL, *id = NULL;
    aik_semver_range range;
    aik_plan *plan = NULL;
    aik_error e2;
    bool is_text = false;
    double score = 1.0;
    int r;

    if (!g || !intent || !ret_plan)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    aik_explanation_clear(explain);
    r = parse_intent(intent, &text, &range_text, &is_text, err);
    if (r < 0)
        goto out;
    aik_error_clear(&e2);
    if (aik_semver_range_parse(range_text, &range, &e2) < 0) {
        r = aik_fail(err, -EINVAL, "intent", "version range '%s': %s", range_text, e2.message);
        goto out;
    }
    if (is_text) {
        r = match_text(g, text, explain, &id, &score, err);
        if (r < 0)
            goto out;
    } else {
        id = strdup(text);
        if (!id) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
    }

    s = calloc(1, sizeof(*s));
    if (!s || !(s->info = calloc(g->n ? g->n : 1, sizeof(*s->info)))) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    s->g = g;
    s->c = constraints;
    s->backends = constraints && constraints->backends ? constraints->backends : ~0u;
    for (size_t m = 0; m < g->n; m++)
        s->info[m].reject = own_constraint(g->mods[m], constraints);
    s->pend[0].id = id;
    s->pend[0].range = &range;
    s->pend[0].range_text = range_text;
    s->pend[0].from = -1;
    s->n_pend = 1;
    step(s, 0);

    if (s->oom) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (s->aborted && !s->have_best) {
        r = aik_fail(err, -E2BIG, "intent", "resolution of %s took more than %d steps", id, AIK_RESOLVE_MAX_STEPS);
        aik_explanation_add(explain, "plan", AIK_VERDICT_NOTE, "%s", err ? err->message : "search limit reached");
        goto out;
    }
    if (!s->have_best) {
        static const int order[] = { F_CONFLICT, F_CYCLE, F_CONSTRAINT, F_MISSING };
        static const int codes[] = { -EDEADLK, -ELOOP, -ENOEXEC, -ENOENT };
        explain_others(s, explain);
        r = aik_fail(err, -ENOENT, "intent", "no installed module provides %s", id);
        for (size_t k = 0; k < 4; k++) {
            if ((s->fail_flags & (1u << order[k])) && s->first_fail[order[k]]) {
                r = aik_fail(err, codes[k], "intent", "cannot resolve %s%s%s: %s", id, strcmp(range_text, "*") ? " " : "",
                             strcmp(range_text, "*") ? range_text : "", s->first_fail[order[k]]);
                break;
            }
        }
        aik_explanation_add(explain, "plan", AIK_VERDICT_NOTE, "%s", err ? err->message : "no plan");
        goto out;
    }

    plan = calloc(1, sizeof(*plan));
    if (!plan || !(plan->capability = strdup(id)) || order_plan(s, plan) < 0) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    plan->match_score = score;
    plan->free_text = is_text;
    plan->memory_bytes = s->best_mem;
    plan->backends = s->best_backends;
    for (size_t k = 0; k < plan->n_modules; k++) {
        for (size_t j = 0; j < s->best_n; j++)
            if (g->mods[s->best[j]] == plan->modules[k])
                explain_chosen(s, explain, s->best[j], id, range_text);
    }
    explain_others(s, explain);
    if (s->aborted)
        aik_explanation_add(explain, "plan", AIK_VERDICT_NOTE,
                            "the search stopped after %d steps: the plan is the best found, maybe not the minimum",
                            AIK_RESOLVE_MAX_STEPS);
    *ret_plan = plan;
    plan = NULL;
    r = 0;
out:
    if (s) {
        for (size_t m = 0; s->info && m < g->n; m++) {
            free(s->info[m].reject);
            free(s->info[m].fail);
        }
        for (int k = 0; k < F_COUNT; k++)
            free(s->first_fail[k]);
        free(s->info);
        free(s);
    }
    aik_plan_free(plan);
    free(text);
    free(range_text);
    free(id);
    return r;
}
