/* SPDX-License-Identifier: MIT */
/*
 * Deterministic byte-level BPE trainer; see bpe_trainer.h for the algorithm,
 * the vocabulary layout and the tie-breaking rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"
#include "runtime/tokenizer.h"
#include "train/bpe_trainer.h"

/* ---- small hash helpers ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* ---- trainer state ---- */

typedef struct word {
    uint64_t off;   /* bytes in the word arena (during add) */
    uint32_t len;
    uint64_t count; /* occurrences in the input */
} word;

typedef struct pairinfo {
    uint32_t a, b;
    int64_t count;     /* sum over words of multiplicity * occurrences */
    uint32_t *where;   /* words that contained the pair when it was counted (may be stale) */
    uint32_t n_where, cap_where;
    uint32_t stamp;    /* merge number at which it was last queued as changed */
    int64_t old_count; /* count when first changed during the current merge */
} pairinfo;

typedef struct heapent {
    int64_t count;
    uint32_t a, b;
} heapent;

struct aik_bpe_trainer {
    uint32_t vocab_size, min_frequency, n_special;
    char **special;  /* copies */
    char *regex;
    char *chat_template;
    bool add_bos;
    bool finished;
    pcre2_code *re;
    pcre2_match_data *md;
    uint64_t total_in;

    /* unique words */
    char *arena;
    uint64_t arena_n, arena_cap;
    word *words;
    uint32_t n_words, cap_words;
    uint32_t *word_hash; /* index + 1 */
    uint64_t word_hash_mask;

    uint32_t n_merges;
};

void aik_bpe_trainer_free(aik_bpe_trainer *tr)
{
    if (!tr)
        return;
    for (uint32_t i = 0; i < tr->n_special; i++)
        free(tr->special[i]);
    free(tr->special);
    free(tr->regex);
    free(tr->chat_template);
    pcre2_match_data_free(tr->md);
    pcre2_code_free(tr->re);
    free(tr->arena);
    free(tr->words);
    free(tr->word_hash);
    free(tr);
}

int aik_bpe_trainer_new(const aik_bpe_trainer_opts *opts, aik_bpe_trainer **ret, aik_error *err)
{
    static const char *const default_special[] = { "<|endoftext|>" };
    const char *const *specials;
    aik_bpe_trainer *tr;
    int errcode, r;
    PCRE2_SIZE erroff;

    if (!opts || !ret)
        return aik_fail(err, -EINVAL, NULL, "opts and ret must not be NULL");
    specials = opts->special_tokens;
    uint32_t n_special = opts->n_special;
    if (!specials) {
        if (n_special)
            return aik_fail(err, -EINVAL, "special_tokens", "is NULL but n_special is %u", n_special);
        specials = default_special;
        n_special = 1;
    }
    if (n_special > 1024)
        return aik_fail(err, -E2BIG, "n_special", "is %u, limit 1024", n_special);
    if (opts->vocab_size > AIK_BPE_MAX_VOCAB || opts->vocab_size < 256 + n_special)
        return aik_fail(err, -EINVAL, "vocab_size", "is %u, must be in [256 + n_special = %u, %u]",
                        opts->vocab_size, 256 + n_special, AIK_BPE_MAX_VOCAB);
    for (uint32_t i = 0; i < n_special; i++) {
        char where[48];
        snprintf(where, sizeof(where), "special_tokens[%u]", i);
        if (!specials[i] || !specials[i][0] || strlen(specials[i]) > AIK_TOKENIZER_MAX_TOKEN_LEN)
            return aik_fail(err, -EINVAL, where, "must be a non-empty string of at most %u bytes",
                            AIK_TOKENIZER_MAX_TOKEN_LEN);
    }

    tr = calloc(1, sizeof(*tr));
    if (!tr)
        return -ENOMEM;
    tr->vocab_size = opts->vocab_size;
    tr->min_frequency = opts->min_frequency ? opts->min_frequency : 2;
    tr->add_bos = opts->add_bos;
    tr->special = calloc(n_special, sizeof(char *));
    tr->regex = strdup(opts->pre_regex ? opts->pre_regex : AIK_TOKENIZER_GPT2_REGEX);
    if (opts->chat_template)
        tr->chat_template = strdup(opts->chat_template);
    if (!tr->special || !tr->regex || (opts->chat_template && !tr->chat_template)) {
        r = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < n_special; i++) {
        tr->special[i] = strdup(specials[i]);
        if (!tr->special[i]) {
            r = -ENOMEM;
            goto fail;
        }
        tr->n_special = i + 1;
    }
    /* Same compile options as runtime/tokenizer.c, so that training words
     * are exactly the pre-tokens the tokenizer will see. */
    tr->re = pcre2_compile((PCRE2_SPTR)tr->regex, PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
    if (!tr->re) {
        char msg[160];
        if (pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg)) < 0)
            snprintf(msg, sizeof(msg), "error %d", errcode);
        r = aik_fail(err, -EINVAL, "pre_regex", "does not compile at offset %zu: %s", (size_t)erroff, msg);
        goto fail;
    }
    (void)pcre2_jit_compile(tr->re, PCRE2_JIT_COMPLETE);
    tr->md = pcre2_match_data_create_from_pattern(tr->re, NULL);
    tr->word_hash = calloc(1024, sizeof(uint32_t));
    if (!tr->md || !tr->word_hash) {
        r = -ENOMEM;
        goto fail;
    }
    tr->word_hash_mask = 1023;
    *ret = tr;
    return 0;
fail:
    aik_bpe_trainer_free(tr);
    return r;
}

static int grow(void **p, uint64_t *cap, uint64_t need, size_t sz)
{
    uint64_t n = *cap ? *cap : 64;
    void *q;
    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    q = realloc(*p, n * sz);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int rehash_words(aik_bpe_trainer *tr)
{
    uint64_t size = (tr->word_hash_mask + 1) * 2;
    uint32_t *h = calloc(size, sizeof(uint32_t));
    if (!h)
        return -ENOMEM;
    for (uint32_t w = 0; w < tr->n_words; w++) {
        uint64_t i = hash_bytes(tr->arena + tr->words[w].off, tr->words[w].len) & (size - 1);
        while (h[i])
            i = (i + 1) & (size - 1);
        h[i] = w + 1;
    }
    free(tr->word_hash);
    tr->word_hash = h;
    tr->word_hash_mask = size - 1;
    return 0;
}

static int count_word(aik_bpe_trainer *tr, const char *s, size_t n)
{
    uint64_t i = hash_bytes(s, n) & tr->word_hash_mask;
    uint64_t cap;
    int r;

    if (n == 0)
        return 0;
    for (;;) {
        uint32_t slot = tr->word_hash[i];
        if (!slot)
            break;
        word *w = &tr->words[slot - 1];
        if (w->len == n && memcmp(tr->arena + w->off, s, n) == 0) {
            w->count++;
            return 0;
        }
        i = (i + 1) & tr->word_hash_mask;
    }
    if (tr->n_words == UINT32_MAX - 1 || n > UINT32_MAX)
        return -E2BIG;
    cap = tr->cap_words;
    if ((r = grow((void **)&tr->words, &cap, (uint64_t)tr->n_words + 1, sizeof(word))) < 0)
        return r;
    tr->cap_words = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    if ((r = grow((void **)&tr->arena, &tr->arena_cap, tr->arena_n + n, 1)) < 0)
        return r;
    memcpy(tr->arena + tr->arena_n, s, n);
    tr->words[tr->n_words] = (word){ .off = tr->arena_n, .len = (uint32_t)n, .count = 1 };
    tr->arena_n += n;
    tr->word_hash[i] = ++tr->n_words;
    if ((uint64_t)tr->n_words * 2 > tr->word_hash_mask)
        return rehash_words(tr);
    return 0;
}

/* Pre-tokenize one special-free segment into counted words. */
static int add_segment(aik_bpe_trainer *tr, const char *text, size_t n)
{
    size_t pos = 0;
    int r;

    while (pos < n) {
        int rc = pcre2_match(tr->re, (PCRE2_SPTR)text, n, pos, PCRE2_NOTEMPTY, tr->md, NULL);
        PCRE2_SIZE *ov;
        if (rc == PCRE2_ERROR_NOMATCH)
            return count_word(tr, text + pos, n - pos);
        if (rc < 0)
            return -EOVERFLOW;
        ov = pcre2_get_ovector_pointer(tr->md);
        if (ov[0] < pos || ov[1] <= ov[0] || ov[1] > n)
            return -EOVERFLOW;
        if (ov[0] > pos && (r = count_word(tr, text + pos, ov[0] - pos)) < 0)
            return r;
        if ((r = count_word(tr, text + ov[0], ov[1] - ov[0])) < 0)
            return r;
        pos = ov[1];
    }
    return 0;
}

int aik_bpe_trainer_add(aik_bpe_trainer *tr, const char *text, size_t len, aik_error *err)
{
    size_t pos = 0, *next_at = NULL;
    int r = 0;

    if (!tr || (!text && len) || tr->finished)
        return aik_fail(err, -EINVAL, NULL, "bad arguments (or trainer already finished)");
    if (len > AIK_BPE_MAX_INPUT - tr->total_in)
        return aik_fail(err, -E2BIG, "input", "more than %llu bytes in total", (unsigned long long)AIK_BPE_MAX_INPUT);
    tr->total_in += len;
    /* Next occurrence of each special at or after pos (len = none), found
     * again only once pos has passed it: one pass over the text per special,
     * however many separators the text holds. */
    next_at = malloc(sizeof(size_t) * tr->n_special);
    if (!next_at)
        return -ENOMEM;
    for (uint32_t k = 0; k < tr->n_special; k++)
        next_at[k] = SIZE_MAX; /* not searched yet */
    /* Special-token texts are cut out (they become tokens of their own at
     * encode time and must not be learned). The earliest occurrence of any
     * special wins; at the same position the longest. */
    while (pos < len) {
        size_t best = len, best_len = 0;
        for (uint32_t k = 0; k < tr->n_special; k++) {
            size_t sl = strlen(tr->special[k]);
            if (next_at[k] == SIZE_MAX || next_at[k] < pos) {
                const char *hit = memmem(text + pos, len - pos, tr->special[k], sl);
                next_at[k] = hit ? (size_t)(hit - text) : len;
            }
            if (next_at[k] < len && (next_at[k] < best || (next_at[k] == best && sl > best_len))) {
                best = next_at[k];
                best_len = sl;
            }
        }
        if ((r = add_segment(tr, text + pos, best - pos)) < 0) {
            r = aik_fail(err, r, "input", "pre-tokenization failed");
            break;
        }
        pos = best + best_len;
    }
    free(next_at);
    return r;
}

/* ---- merge learning ---- */

typedef struct learn {
    aik_bpe_trainer *tr;
    uint32_t *sym;      /* symbols of all words back to back */
    uint64_t *sym_off;  /* [n_words] */
    uint32_t *sym_len;  /* [n_words] current length */
    uint32_t *word_stamp;
    pairinfo *pairs;
    uint64_t n_pairs, cap_pairs;
    uint32_t *pair_hash; /* index + 1 */
    uint64_t pair_hash_mask;
    heapent *heap;
    uint64_t heap_n, heap_cap;
    uint32_t *changed;
    uint64_t n_changed, cap_changed;
    uint32_t merge_no;
    /* tokens */
    char **tok;
    uint32_t *tok_len;
    uint32_t n_tok, cap_tok;
    uint32_t *tok_hash;
    uint64_t tok_hash_mask;
    uint32_t *merges; /* pairs of ids */
    uint64_t cap_merges;
} learn;

static uint64_t pair_key(uint32_t a, uint32_t b)
{
    return (uint64_t)a << 32 | b;
}

static int pair_rehash(learn *L)
{
    uint64_t size = L->pair_hash_mask ? (L->pair_hash_mask + 1) * 2 : 4096;
    uint32_t *h = calloc(size, sizeof(uint32_t));
    if (!h)
        return -ENOMEM;
    for (uint64_t p = 0; p < L->n_pairs; p++) {
        uint64_t i = hash_u64(pair_key(L->pairs[p].a, L->pairs[p].b)) & (size - 1);
        while (h[i])
            i = (i + 1) & (size - 1);
        h[i] = (uint32_t)p + 1;
    }
    free(L->pair_hash);
    L->pair_hash = h;
    L->pair_hash_mask = size - 1;
    return 0;
}

/* Index of pair (a, b), created when missing; -1 on allocation failure. */
static int64_t pair_get(learn *L, uint32_t a, uint32_t b, bool create)
{
    uint64_t i = hash_u64(pair_key(a, b)) & L->pair_hash_mask;

    for (;;) {
        uint32_t slot = L->pair_hash[i];
        if (!slot)
            break;
        if (L->pairs[slot - 1].a == a && L->pairs[slot - 1].b == b)
            return slot - 1;
        i = (i + 1) & L->pair_hash_mask;
    }
    if (!create)
        return -2;
    if (L->n_pairs >= UINT32_MAX - 1)
        return -1;
    if (grow((void **)&L->pairs, &L->cap_pairs, L->n_pairs + 1, sizeof(pairinfo)) < 0)
        return -1;
    memset(&L->pairs[L->n_pairs], 0, sizeof(pairinfo));
    L->pairs[L->n_pairs].a = a;
    L->pairs[L->n_pairs].b = b;
    L->pairs[L->n_pairs].stamp = UINT32_MAX;
    L->pair_hash[i] = (uint32_t)++L->n_pairs;
    if (L->n_pairs * 2 > L->pair_hash_mask && pair_rehash(L) < 0)
        return -1;
    return (int64_t)L->n_pairs - 1;
}

static bool heap_before(const heapent *x, const heapent *y)
{
    if (x->count != y->count)
        return x->count > y->count;
    if (x->a != y->a)
        return x->a < y->a;
    return x->b < y->b;
}

static int heap_push(learn *L, heapent e)
{
    uint64_t i;
    if (grow((void **)&L->heap, &L->heap_cap, L->heap_n + 1, sizeof(heapent)) < 0)
        return -ENOMEM;
    i = L->heap_n++;
    while (i > 0) {
        uint64_t p = (i - 1) / 2;
        if (!heap_before(&e, &L->heap[p]))
            break;
        L->heap[i] = L->heap[p];
        i = p;
    }
    L->heap[i] = e;
    return 0;
}

static heapent heap_pop(learn *L)
{
    heapent top = L->heap[0], last = L->heap[--L->heap_n];
    uint64_t i = 0, n = L->heap_n;
    for (;;) {
        uint64_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_before(&L->heap[c + 1], &L->heap[c]))
            c++;
        if (!heap_before(&L->heap[c], &last))
            break;
        L->heap[i] = L->heap[c];
        i = c;
    }
    if (n)
        L->heap[i] = last;
    return top;
}

/* Add delta occurrences of pair (a, b) found in word w. */
static int pair_add(learn *L, uint32_t a, uint32_t b, int64_t delta, uint32_t w)
{
    int64_t p = pair_get(L, a, b, true);
    pairinfo *pi;
    if (p < 0)
        return -ENOMEM;
    pi = &L->pairs[p];
    if (pi->stamp != L->merge_no) {
        pi->stamp = L->merge_no;
        pi->old_count = pi->count;
        if (grow((void **)&L->changed, &L->cap_changed, L->n_changed + 1, sizeof(uint32_t)) < 0)
            return -ENOMEM;
        L->changed[L->n_changed++] = (uint32_t)p;
    }
    pi->count += delta;
    if (delta > 0 && (pi->n_where == 0 || pi->where[pi->n_where - 1] != w)) {
        uint64_t cap = pi->cap_where;
        if (grow((void **)&pi->where, &cap, (uint64_t)pi->n_where + 1, sizeof(uint32_t)) < 0)
            return -ENOMEM;
        pi->cap_where = (uint32_t)cap;
        pi->where[pi->n_where++] = w;
    }
    return 0;
}

static int word_pairs(learn *L, uint32_t w, int64_t sign)
{
    const uint32_t *s = L->sym + L->sym_off[w];
    int64_t cnt = (int64_t)L->tr->words[w].count * sign;
    for (uint32_t i = 0; i + 1 < L->sym_len[w]; i++)
        if (pair_add(L, s[i], s[i + 1], cnt, w) < 0)
            return -ENOMEM;
    return 0;
}

/* Queue the pairs whose count changed in this merge. */
static int flush_changed(learn *L)
{
    for (uint64_t k = 0; k < L->n_changed; k++) {
        pairinfo *pi = &L->pairs[L->changed[k]];
        if (pi->count != pi->old_count && pi->count >= L->tr->min_frequency)
            if (heap_push(L, (heapent){ pi->count, pi->a, pi->b }) < 0)
                return -ENOMEM;
    }
    L->n_changed = 0;
    return 0;
}

static int32_t tok_find(const learn *L, const char *s, size_t n, uint64_t *slot)
{
    uint64_t i = hash_bytes(s, n) & L->tok_hash_mask;
    for (;;) {
        uint32_t v = L->tok_hash[i];
        if (!v)
            break;
        if (L->tok_len[v - 1] == n && memcmp(L->tok[v - 1], s, n) == 0)
            return (int32_t)v - 1;
        i = (i + 1) & L->tok_hash_mask;
    }
    *slot = i;
    return -1;
}

/* Append a token (text owned by L from now on). */
static int tok_add(learn *L, char *text, uint32_t n)
{
    uint64_t slot;
    if (tok_find(L, text, n, &slot) >= 0) {
        free(text);
        return -EEXIST;
    }
    L->tok[L->n_tok] = text;
    L->tok_len[L->n_tok] = n;
    L->tok_hash[slot] = ++L->n_tok;
    return 0;
}

static void learn_free(learn *L)
{
    free(L->sym);
    free(L->sym_off);
    free(L->sym_len);
    free(L->word_stamp);
    for (uint64_t p = 0; p < L->n_pairs; p++)
        free(L->pairs[p].where);
    free(L->pairs);
    free(L->pair_hash);
    free(L->heap);
    free(L->changed);
    for (uint32_t i = 0; i < L->n_tok; i++)
        free(L->tok[i]);
    free(L->tok);
    free(L->tok_len);
    free(L->tok_hash);
    free(L->merges);
}

static int do_merge(learn *L, uint32_t a, uint32_t b, uint32_t result)
{
    int64_t p = pair_get(L, a, b, false);
    pairinfo *pi;
    uint32_t *list, n;

    if (p < 0)
        return 0;
    /* Take the where-list: rewriting words appends to other pairs' lists
     * (and may move the pairs array), never to this one (result != a, b). */
    pi = &L->pairs[p];
    list = pi->where;
    n = pi->n_where;
    pi->where = NULL;
    pi->n_where = pi->cap_where = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t w = list[k];
        uint32_t *s = L->sym + L->sym_off[w];
        uint32_t len = L->sym_len[w], o = 0;
        bool has = false;

        if (L->word_stamp[w] == L->merge_no)
            continue;
        L->word_stamp[w] = L->merge_no;
        for (uint32_t i = 0; i + 1 < len; i++)
            if (s[i] == a && s[i + 1] == b) {
                has = true;
                break;
            }
        if (!has)
            continue; /* stale entry */
        if (word_pairs(L, w, -1) < 0)
            goto nomem;
        for (uint32_t i = 0; i < len;) {
            if (i + 1 < len && s[i] == a && s[i + 1] == b) {
                s[o++] = result;
                i += 2;
            } else {
                s[o++] = s[i++];
            }
        }
        L->sym_len[w] = o;
        if (word_pairs(L, w, +1) < 0)
            goto nomem;
    }
    free(list);
    return flush_changed(L);
nomem:
    free(list);
    return -ENOMEM;
}

static int learn_merges(aik_bpe_trainer *tr, learn *L)
{
    uint64_t total_sym = 0;
    uint32_t target = tr->vocab_size - tr->n_special;
    int r;

    L->tr = tr;
    /* Tokens 0..255: bytes in GPT-2 mapping. */
    L->cap_tok = target;
    L->tok = calloc(target, sizeof(char *));
    L->tok_len = calloc(target, sizeof(uint32_t));
    {
        uint64_t size = 16;
        while (size < (uint64_t)target * 2)
            size <<= 1;
        L->tok_hash = calloc(size, sizeof(uint32_t));
        L->tok_hash_mask = size - 1;
    }
    L->sym_off = malloc(sizeof(uint64_t) * (tr->n_words + 1));
    L->sym_len = malloc(sizeof(uint32_t) * (tr->n_words + 1));
    L->word_stamp = malloc(sizeof(uint32_t) * (tr->n_words + 1));
    L->sym = malloc(sizeof(uint32_t) * (tr->arena_n + 1));
    if (!L->tok || !L->tok_len || !L->tok_hash || !L->sym_off || !L->sym_len || !L->word_stamp ||
        !L->sym)
        return -ENOMEM;
    for (unsigned c = 0; c < 256; c++) {
        /* GPT-2 bytes_to_unicode, as runtime/tokenizer.c implements it */
        bool printable = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae;
        uint32_t cp = c, n = 0;
        char *t = malloc(3);
        if (!t)
            return -ENOMEM;
        if (!printable) {
            for (unsigned d = 0; d < c; d++)
                if (!((d >= 0x21 && d <= 0x7e) || (d >= 0xa1 && d <= 0xac) || d >= 0xae))
                    n++;
            cp = 256 + n;
        }
        if (cp < 0x80) {
            t[0] = (char)cp;
            n = 1;
        } else {
            t[0] = (char)(0xc0 | (cp >> 6));
            t[1] = (char)(0x80 | (cp & 0x3f));
            n = 2;
        }
        if ((r = tok_add(L, t, n)) < 0)
            return r;
    }

    for (uint32_t w = 0; w < tr->n_words; w++) {
        L->sym_off[w] = total_sym;
        L->sym_len[w] = tr->words[w].len;
        L->word_stamp[w] = UINT32_MAX;
        for (uint32_t i = 0; i < tr->words[w].len; i++)
            L->sym[total_sym + i] = (uint8_t)tr->arena[tr->words[w].off + i];
        total_sym += tr->words[w].len;
    }
    if ((r = pair_rehash(L)) < 0)
        return r;
    L->merge_no = 0;
    for (uint32_t w = 0; w < tr->n_words; w++)
        if ((r = word_pairs(L, w, +1)) < 0)
            return r;
    for (uint64_t k = 0; k < L->n_changed; k++) {
        pairinfo *pi = &L->pairs[L->changed[k]];
        if (pi->count >= tr->min_frequency && (r = heap_push(L, (heapent){ pi->count, pi->a, pi->b })) < 0)
            return r;
    }
    L->n_changed = 0;

    while (L->n_tok < target && L->heap_n) {
        heapent e = heap_pop(L);
        int64_t p = pair_get(L, e.a, e.b, false);
        uint32_t la, lb, result;
        char *text;
        uint64_t slot;
        int32_t existing;

        if (p < 0 || L->pairs[p].count != e.count)
            continue; /* stale: a fresher entry for this pair is queued */
        if (e.count < (int64_t)tr->min_frequency)
            break;
        la = L->tok_len[e.a];
        lb = L->tok_len[e.b];
        if (la + lb > AIK_TOKENIZER_MAX_TOKEN_LEN) {
            L->pairs[p].count = -1; /* never mergeable; drop it for good */
            continue;
        }
        text = malloc(la + lb);
        if (!text)
            return -ENOMEM;
        memcpy(text, L->tok[e.a], la);
        memcpy(text + la, L->tok[e.b], lb);
        existing = tok_find(L, text, la + lb, &slot);
        if (existing >= 0) {
            result = (uint32_t)existing; /* same text reached by another split */
            free(text);
        } else {
            result = L->n_tok;
            if ((r = tok_add(L, text, la + lb)) < 0)
                return r;
        }
        if ((r = grow((void **)&L->merges, &L->cap_merges, 2ull * tr->n_merges + 2, sizeof(uint32_t))) < 0)
            return r;
        L->merges[2 * tr->n_merges] = e.a;
        L->merges[2 * tr->n_merges + 1] = e.b;
        tr->n_merges++;
        L->merge_no++;
        if ((r = do_merge(L, e.a, e.b, result)) < 0)
            return r;
        /* Merges that reuse an existing text add no token; each still
         * removes a pair for good, so this ends, but bound it anyway. */
        if (tr->n_merges >= AIK_TOKENIZER_MAX_MERGES)
            break;
    }
    return 0;
}

int aik_bpe_trainer_finish(aik_bpe_trainer *tr, uint8_t **ret_blob, size_t *ret_len, aik_error *err)
{
    learn L = { 0 };
    aik_tokenizer_spec spec = { 0 };
    const char **tokens = NULL, **merges = NULL;
    uint32_t *lens = NULL;
    uint8_t *types = NULL;
    char *marena = NULL;
    uint64_t msize = 0, mpos = 0;
    uint32_t n_vocab;
    int r;

    if (!tr || !ret_blob || !ret_len || tr->finished)
        return aik_fail(err, -EINVAL, NULL, "bad arguments (or trainer already finished)");
    tr->finished = true;
    r = learn_merges(tr, &L);
    if (r < 0) {
        aik_fail(err, r, "training", "failed to learn merges");
        goto out;
    }
    /* A special whose text is also a learned or byte token would shadow it
     * in text lookups (the last id wins) and break encoding: refuse. */
    for (uint32_t i = 0; i < tr->n_special; i++) {
        uint64_t slot;
        if (tok_find(&L, tr->special[i], strlen(tr->special[i]), &slot) >= 0) {
            char where[48];
            snprintf(where, sizeof(where), "special_tokens[%u]", i);
            r = aik_fail(err, -EINVAL, where, "\"%.60s\" is also a byte or learned token", tr->special[i]);
            goto out;
        }
    }
    n_vocab = L.n_tok + tr->n_special;
    tokens = malloc(sizeof(char *) * n_vocab);
    lens = malloc(sizeof(uint32_t) * n_vocab);
    types = malloc(n_vocab);
    merges = malloc(sizeof(char *) * (tr->n_merges + 1));
    for (uint32_t i = 0; i < tr->n_merges; i++)
        msize += (uint64_t)L.tok_len[L.merges[2 * i]] + L.tok_len[L.merges[2 * i + 1]] + 2;
    marena = malloc(msize + 1);
    if (!tokens || !lens || !types || !merges || !marena) {
        r = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < L.n_tok; i++) {
        tokens[i] = L.tok[i];
        lens[i] = L.tok_len[i];
        types[i] = AIK_TOKEN_NORMAL;
    }
    for (uint32_t i = 0; i < tr->n_special; i++) {
        tokens[L.n_tok + i] = tr->special[i];
        lens[L.n_tok + i] = (uint32_t)strlen(tr->special[i]);
        types[L.n_tok + i] = AIK_TOKEN_CONTROL;
    }
    for (uint32_t i = 0; i < tr->n_merges; i++) {
        uint32_t a = L.merges[2 * i], b = L.merges[2 * i + 1];
        merges[i] = marena + mpos;
        memcpy(marena + mpos, L.tok[a], L.tok_len[a]);
        mpos += L.tok_len[a];
        marena[mpos++] = ' ';
        memcpy(marena + mpos, L.tok[b], L.tok_len[b]);
        mpos += L.tok_len[b];
        marena[mpos++] = 0;
    }
    spec.kind = AIK_TOKENIZER_BYTE_BPE;
    spec.n_vocab = n_vocab;
    spec.tokens = tokens;
    spec.token_lens = lens;
    spec.token_types = types;
    spec.n_merges = tr->n_merges;
    spec.merges = merges;
    spec.bos_id = spec.eos_id = tr->n_special ? (int32_t)L.n_tok : -1;
    if (tr->add_bos && spec.bos_id < 0) {
        r = aik_fail(err, -EINVAL, "add_bos", "is set but there are no special tokens");
        goto out;
    }
    spec.unk_id = spec.pad_id = -1;
    spec.add_bos = tr->add_bos;
    spec.pre_regex = tr->regex;
    spec.chat_template = tr->chat_template;
    r = aik_tokenizer_blob_build(&spec, ret_blob, ret_len, err);
out:
    free(tokens);
    free(lens);
    free(types);
    free(merges);
    free(marena);
    learn_free(&L);
    return r;
}

uint32_t aik_bpe_trainer_n_merges(const aik_bpe_trainer *tr)
{
    return tr ? tr->n_merges : 0;
}

int aik_bpe_train(const aik_bpe_trainer_opts *opts, const char *text, size_t len, uint8_t **ret_blob,
                  size_t *ret_len, aik_error *err)
{
    aik_bpe_trainer *tr = NULL;
    int r = aik_bpe_trainer_new(opts, &tr, err);
    if (r < 0)
        return r;
    r = aik_bpe_trainer_add(tr, text, len, err);
    if (r >= 0)
        r = aik_bpe_trainer_finish(tr, ret_blob, ret_len, err);
    aik_bpe_trainer_free(tr);
    return r;
}
