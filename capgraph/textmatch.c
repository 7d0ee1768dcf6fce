/* SPDX-License-Identifier: MIT */
#include "capgraph/textmatch.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define W AIK_TEXTMATCH_MAX_WORD

typedef struct exp_entry {
    char stem[W + 1];
    float w;
} exp_entry;

typedef struct expansion {
    exp_entry *v;
    size_t n, cap;
} expansion;

typedef struct term {
    char word[W + 1];  /* lower-cased surface form */
    char stem[W + 1];
    expansion exp;     /* filled when WordNet is used */
} term;

typedef struct phrase {
    char *label, *text;
    term *terms;
    size_t n_terms;
} phrase;

struct aik_textmatch {
    phrase *v;
    size_t n, cap;
    const aik_wordnet *expanded_with; /* WordNet the phrase expansions were computed with */
};

/* Function words that say nothing about which capability is wanted. */
static const char *const stop_words[] = {
    "a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
    "could", "did", "do", "does", "for", "from", "get", "give", "had", "has", "have", "he", "her", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "let", "me", "my", "need", "of", "on", "or",
    "our", "please", "she", "should", "so", "some", "tell", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "us", "want", "was", "we", "were", "what", "when",
    "where", "which", "who", "whom", "why", "will", "with", "would", "you", "your",
};

static bool is_stop(const char *w)
{
    size_t lo = 0, hi = sizeof(stop_words) / sizeof(stop_words[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(w, stop_words[mid]);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

static bool ends(const char *w, size_t len, const char *suf)
{
    size_t sl = strlen(suf);
    return len >= sl && memcmp(w + len - sl, suf, sl) == 0;
}

static bool vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

void aik_textmatch_stem(char *w)
{
    size_t len = strlen(w);

    /* plurals */
    if (len > 4 && ends(w, len, "ies")) {
        w[len - 3] = 'y';
        len -= 2;
    } else if (len > 4 && ends(w, len, "sses")) {
        len -= 2;
    } else if (len > 3 && ends(w, len, "s") && !ends(w, len, "ss") && !ends(w, len, "us") && !ends(w, len, "is")) {
        len -= 1;
    }
    w[len] = '\0';
    /* -ing / -ed when a vowel remains in the stem */
    size_t cut = 0;
    if (len > 5 && ends(w, len, "ing"))
        cut = 3;
    else if (len > 4 && ends(w, len, "ed"))
        cut = 2;
    if (cut) {
        bool has_vowel = false;
        for (size_t i = 0; i < len - cut; i++)
            has_vowel |= vowel(w[i]);
        if (has_vowel) {
            len -= cut;
            /* running -> run, but fall -> fall */
            if (len > 2 && w[len - 1] == w[len - 2] && !vowel(w[len - 1]) && !strchr("lsz", w[len - 1]))
                len--;
        }
    } else if (len > 4 && ends(w, len, "ly")) {
        len -= 2;
    }
    if (len > 4 && w[len - 1] == 'e')
        len--;
    w[len] = '\0';
}

/* Split text into terms (at most max), unique by stem. In a phrasing
 * (placeholders true) "{...}" spans are skipped. */
static size_t tokenize(const char *text, bool placeholders, term *out, size_t max)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)text;

    while (*p && n < max) {
        char w[W + 1];
        size_t len = 0;

        if (placeholders && *p == '{') {
            while (*p && *p != '}')
                p++;
            if (*p)
                p++;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p >= 0x80)) {
            p++;
            continue;
        }
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p >= 0x80) {
            if (len < W)
                w[len++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
            p++;
        }
        w[len] = '\0';
        if (len < 2 || is_stop(w))
            continue;
        term *t = &out[n];
        memset(t, 0, sizeof(*t));
        memcpy(t->word, w, len + 1);
        memcpy(t->stem, w, len + 1);
        aik_textmatch_stem(t->stem);
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup |= strcmp(out[i].stem, t->stem) == 0;
        if (!dup)
            n++;
    }
    return n;
}

static void exp_free(expansion *e)
{
    free(e->v);
    memset(e, 0, sizeof(*e));
}

static int exp_add(expansion *e, const char *word, float w)
{
    char s[W + 1];
    size_t len = strlen(word);

    if (len == 0 || len > W)
        return 0; /* too long to ever match a term: ignore */
    memcpy(s, word, len + 1);
    aik_textmatch_stem(s);
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->v[i].stem, s) == 0) {
            if (w > e->v[i].w)
                e->v[i].w = w;
            return 0;
        }
    }
    if (e->n == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 16;
        exp_entry *v = realloc(e->v, ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        e->v = v;
        e->cap = ncap;
    }
    memcpy(e->v[e->n].stem, s, strlen(s) + 1);
    e->v[e->n].w = w;
    e->n++;
    return 0;
}

static int exp_emit(void *user, const char *lemma, float weight)
{
    return exp_add(user, lemma, weight);
}

static int expand_term(term *t, const aik_wordnet *wn)
{
    int r;
    exp_free(&t->exp);
    r = exp_add(&t->exp, t->word, 1.0f);
    if (r == 0 && wn) {
        r = aik_wordnet_expand(wn, t->word, exp_emit, &t->exp);
        if (r == -EINVAL)
            r = 0; /* a word WordNet cannot look up (too long, odd bytes) */
    }
    return r;
}

static float exp_get(const expansion *e, const char *stem)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i].stem, stem) == 0)
            return e->v[i].w;
    return 0.0f;
}

static float sim(const term *u, const term *t)
{
    float a, b;
    if (strcmp(u->stem, t->stem) == 0)
        return 1.0f;
    a = exp_get(&u->exp, t->stem);
    b = exp_get(&t->exp, u->stem);
    return a > b ? a : b;
}

int aik_textmatch_new(aik_textmatch **ret_tm)
{
    aik_textmatch *tm;
    if (!ret_tm)
        return -EINVAL;
    tm = calloc(1, sizeof(*tm));
    if (!tm)
        return -ENOMEM;
    *ret_tm = tm;
    return 0;
}

static void phrase_free(phrase *p)
{
    for (size_t i = 0; i < p->n_terms; i++)
        exp_free(&p->terms[i].exp);
    free(p->terms);
    free(p->label);
    free(p->text);
}

void aik_textmatch_free(aik_textmatch *tm)
{
    if (!tm)
        return;
    for (size_t i = 0; i < tm->n; i++)
        phrase_free(&tm->v[i]);
    free(tm->v);
    free(tm);
}

int aik_textmatch_add(aik_textmatch *tm, const char *label, const char *text)
{
    term tmp[AIK_TEXTMATCH_MAX_TOKENS];
    phrase p = { 0 };
    size_t n;

    if (!tm || !label || !text)
        return -EINVAL;
    if (tm->n == tm->cap) {
        size_t ncap = tm->cap ? tm->cap * 2 : 32;
        phrase *v = realloc(tm->v, ncap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        tm->v = v;
        tm->cap = ncap;
    }
    n = tokenize(text, true, tmp, AIK_TEXTMATCH_MAX_TOKENS);
    p.label = strdup(label);
    p.text = strdup(text);
    p.terms = n ? calloc(n, sizeof(term)) : NULL;
    if (!p.label || !p.text || (n && !p.terms)) {
        phrase_free(&p);
        return -ENOMEM;
    }
    if (n)
        memcpy(p.terms, tmp, n * sizeof(term));
    p.n_terms = n;
    tm->v[tm->n++] = p;
    tm->expanded_with = NULL; /* the new phrase has no expansions yet */
    return 0;
}

static int expand_phrases(aik_textmatch *tm, const aik_wordnet *wn)
{
    if (wn && tm->expanded_with == wn)
        return 0;
    for (size_t i = 0; i < tm->n; i++)
        for (size_t j = 0; j < tm->v[i].n_terms; j++) {
            int r = expand_term(&tm->v[i].terms[j], wn);
            if (r < 0)
                return r;
        }
    tm->expanded_with = wn;
    return 0;
}

static double idf(const aik_textmatch *tm, const char *stem)
{
    size_t df = 0;
    for (size_t i = 0; i < tm->n; i++)
        for (size_t j = 0; j < tm->v[i].n_terms; j++)
            if (strcmp(tm->v[i].terms[j].stem, stem) == 0) {
                df++;
                break;
            }
    return log(1.0 + ((double)tm->n - (double)df + 0.5) / ((double)df + 0.5));
}

static double cosine(const float *a, const float *b, size_t dim)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < dim; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return 0.0;
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa <= 0 || bb <= 0)
        return 0.0;
    ab /= sqrt(aa) * sqrt(bb);
    return ab < 0 ? 0 : ab > 1 ? 1 : ab;
}

typedef struct pair {
    double s;
    size_t q, t;
} pair;

/* Descending similarity; ties by query then phrasing position (stable). */
static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    if (x->q != y->q)
        return x->q < y->q ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

static int cmp_result(const void *a, const void *b)
{
    const aik_textmatch_result *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(x->label, y->label);
}

int aik_textmatch_query(aik_textmatch *tm, const char *text, const aik_wordnet *wn, const aik_embedder *emb,
                        aik_textmatch_result **ret_results, size_t *ret_n, unsigned *ret_flags)
{
    term *q = NULL;
    size_t nq, nres = 0;
    aik_textmatch_result *res = NULL;
    float *qvec = NULL, *pvec = NULL;
    bool *known = NULL;
    pair *pairs = NULL;
    size_t n_known = 0;
    double w_emb = 0;
    unsigned flags = wn ? AIK_TEXTMATCH_USED_WORDNET : 0;
    int r;

    if (!tm || !text || !ret_results || !ret_n)
        return -EINVAL;
    if (emb && emb->fn) {
        if (emb->dim == 0 || emb->dim > AIK_EMBED_MAX_DIM || emb->weight < 0 || emb->weight > 1)
            return -EINVAL;
        w_emb = emb->weight > 0 ? emb->weight : AIK_EMBED_DEFAULT_WEIGHT;
    }
    q = calloc(AIK_TEXTMATCH_MAX_TOKENS, sizeof(*q));
    res = calloc(tm->n ? tm->n : 1, sizeof(*res));
    if (!q || !res) {
        r = -ENOMEM;
        goto out;
    }
    r = expand_phrases(tm, wn);
    if (r < 0)
        goto out;
    nq = tokenize(text, false, q, AIK_TEXTMATCH_MAX_TOKENS);
    for (size_t i = 0; i < nq; i++) {
        r = expand_term(&q[i], wn);
        if (r < 0)
            goto out;
    }
    if (w_emb > 0) {
        qvec = calloc(emb->dim, sizeof(float));
        pvec = calloc(emb->dim, sizeof(float));
        if (!qvec || !pvec) {
            r = -ENOMEM;
            goto out;
        }
        if (emb->fn(emb->user, text, qvec, emb->dim) < 0) {
            flags |= AIK_TEXTMATCH_EMBED_FAILED;
            w_emb = 0;
        } else {
            flags |= AIK_TEXTMATCH_USED_EMBEDDING;
        }
    }

    /* Query words related to no phrasing at all (usually the word the user
     * asks about) say nothing about which capability is wanted: Q only
     * counts the others. */
    known = calloc(nq ? nq : 1, sizeof(*known));
    pairs = calloc(AIK_TEXTMATCH_MAX_TOKENS * AIK_TEXTMATCH_MAX_TOKENS, sizeof(*pairs));
    if (!known || !pairs) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < nq; k++)
        for (size_t i = 0; i < tm->n && !known[k]; i++)
            for (size_t j = 0; j < tm->v[i].n_terms && !known[k]; j++)
                known[k] = sim(&q[k], &tm->v[i].terms[j]) > 0;
    for (size_t k = 0; k < nq; k++)
        n_known += known[k];

    for (size_t i = 0; i < tm->n; i++) {
        const phrase *p = &tm->v[i];
        double num = 0, den = 0, qsum = 0, lexical, cos = -1, score;
        aik_textmatch_result *slot = NULL;

        /* One-to-one alignment, best pairs first: a query word stands for
         * one phrasing word only (it cannot mean "instance" for one and
         * "prison term" for another). */
        size_t np = 0;
        bool used_q[AIK_TEXTMATCH_MAX_TOKENS] = { false }, used_t[AIK_TEXTMATCH_MAX_TOKENS] = { false };
        for (size_t j = 0; j < p->n_terms; j++) {
            den += idf(tm, p->terms[j].stem);
            for (size_t k = 0; k < nq; k++) {
                double sv = sim(&q[k], &p->terms[j]);
                if (sv > 0 && np < AIK_TEXTMATCH_MAX_TOKENS * AIK_TEXTMATCH_MAX_TOKENS) {
                    pairs[np].s = sv;
                    pairs[np].q = k;
                    pairs[np].t = j;
                    np++;
                }
            }
        }
        qsort(pairs, np, sizeof(*pairs), cmp_pair);
        for (size_t x = 0; x < np; x++) {
            if (used_q[pairs[x].q] || used_t[pairs[x].t])
                continue;
            used_q[pairs[x].q] = used_t[pairs[x].t] = true;
            num += idf(tm, p->terms[pairs[x].t].stem) * pairs[x].s;
            if (known[pairs[x].q])
                qsum += pairs[x].s;
        }
        lexical = (den > 0 && n_known > 0) ? pow(num / den, 0.75) * pow(qsum / (double)n_known, 0.25) : 0;
        if (den <= 0 || n_known == 0)
            lexical = 0;
        score = lexical;
        if (w_emb > 0) {
            if (emb->fn(emb->user, p->text, pvec, emb->dim) == 0) {
                cos = cosine(qvec, pvec, emb->dim);
                score = (1 - w_emb) * lexical + w_emb * cos;
            } else {
                flags |= AIK_TEXTMATCH_EMBED_FAILED;
            }
        }
        for (size_t k = 0; k < nres; k++)
            if (strcmp(res[k].label, p->label) == 0)
                slot = &res[k];
        if (!slot) {
            slot = &res[nres++];
            slot->label = p->label;
            slot->score = -1;
        }
        if (score > slot->score) {
            slot->phrase = p->text;
            slot->score = score;
            slot->lexical = lexical;
            slot->embedding = cos;
        }
    }
    qsort(res, nres, sizeof(*res), cmp_result);
    *ret_results = res;
    *ret_n = nres;
    if (ret_flags)
        *ret_flags = flags;
    res = NULL;
    r = 0;
out:
    if (q)
        for (size_t i = 0; i < AIK_TEXTMATCH_MAX_TOKENS; i++)
            exp_free(&q[i].exp);
    free(q);
    free(known);
    free(pairs);
    free(res);
    free(qvec);
    free(pvec);
    return r;
}
