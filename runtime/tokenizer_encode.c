/* SPDX-License-Identifier: MIT */
/*
 * Encoding: special-token partition, then per kind
 *   byte BPE: PCRE2 pre-tokenizer, then rank-ordered merges per word;
 *   SPM BPE:  ▁-escaping, then score-ordered merges over the whole fragment.
 * Both merge loops keep the symbols in a doubly linked list and candidate
 * pairs in a binary heap with lazy deletion (stale entries are skipped when
 * popped), so a word of n symbols costs O(n log n), not O(n^2).
 * Tie-breaking follows llama.cpp (src/llama-vocab.cpp) so that the same
 * vocabulary gives the same ids: lowest rank / highest score first, then the
 * leftmost pair.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tokenizer_internal.h"

/* ---- growable arrays ---- */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        int32_t *v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Make sure *p holds at least n elements of size sz. */
static int reserve(void **p, size_t *cap, size_t n, size_t sz)
{
    void *q;
    if (n <= *cap)
        return 0;
    if (n < *cap * 2)
        n = *cap * 2;
    q = realloc(*p, n * sz);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* A candidate merge of the symbols left and right (right = left's next when
 * queued), 24 bytes: the heap holds up to two per symbol in the worst case. */
typedef struct pair {
    union {
        float score;   /* SPM: piece score, larger first */
        uint32_t rank; /* byte BPE: merge rank, smaller first */
    } key;
    int32_t left, right;
    union {
        struct {
            int32_t lid, rid; /* byte BPE: symbol ids when queued (staleness check) */
        } ids;
        uint32_t size; /* SPM: byte length of the concatenation (llama.cpp's staleness check) */
    } check;
    int32_t result; /* byte BPE: merged token; SPM: token of the concatenation */
} pair;

typedef struct work {
    /* symbols */
    int32_t *id, *prev, *next;
    uint32_t *off, *len;
    size_t sym_cap;
    pair *heap;
    size_t heap_n, heap_cap;
    char *buf; /* SPM escaped text / byte BPE mapped word */
    size_t buf_cap;
    bool spm;
} work;

static void work_free(work *w)
{
    free(w->id);
    free(w->prev);
    free(w->next);
    free(w->off);
    free(w->len);
    free(w->heap);
    free(w->buf);
}

static int work_symbols(work *w, size_t n)
{
    size_t c = w->sym_cap;
    int r;

    if (n <= c)
        return 0;
    /* All arrays share sym_cap: grow each from the same old capacity. */
    if ((r = reserve((void **)&w->id, &c, n, sizeof(int32_t))) < 0)
        return r;
    c = w->sym_cap;
    if ((r = reserve((void **)&w->prev, &c, n, sizeof(int32_t))) < 0)
        return r;
    c = w->sym_cap;
    if ((r = reserve((void **)&w->next, &c, n, sizeof(int32_t))) < 0)
        return r;
    c = w->sym_cap;
    if ((r = reserve((void **)&w->off, &c, n, sizeof(uint32_t))) < 0)
        return r;
    c = w->sym_cap;
    if ((r = reserve((void **)&w->len, &c, n, sizeof(uint32_t))) < 0)
        return r;
    w->sym_cap = c;
    return 0;
}

/* a comes before b in the heap order */
static bool pair_before(const work *w, const pair *a, const pair *b)
{
    if (w->spm) {
        if (a->key.score != b->key.score)
            return a->key.score > b->key.score;
    } else if (a->key.rank != b->key.rank) {
        return a->key.rank < b->key.rank;
    }
    return a->left < b->left;
}

static int heap_push(work *w, const pair *p)
{
    size_t i;
    int r = reserve((void **)&w->heap, &w->heap_cap, w->heap_n + 1, sizeof(pair));
    if (r < 0)
        return r;
    i = w->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(w, p, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = *p;
    return 0;
}

static pair heap_pop(work *w)
{
    pair top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pair_before(w, &w->heap[c + 1], &w->heap[c]))
            c++;
        if (!pair_before(w, &w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

/* ---- byte BPE ---- */

static int bpe_add_pair(const aik_tokenizer *t, work *w, int32_t l, int32_t r)
{
    pair p = { 0 };

    if (l < 0 || r < 0)
        return 0;
    if (!tok_merge_lookup(t, w->id[l], w->id[r], &p.key.rank, &p.result))
        return 0;
    p.left = l;
    p.right = r;
    p.check.ids.lid = w->id[l];
    p.check.ids.rid = w->id[r];
    return heap_push(w, &p);
}

static int bpe_word(const aik_tokenizer *t, work *w, const uint8_t *s, size_t n, ivec *out)
{
    int r;

    if (n == 0)
        return 0;
    if (t->flags & TOKB_FLAG_IGNORE_MERGES) {
        /* The word as vocab text: each byte's GPT-2 code point in UTF-8. */
        size_t m = 0;
        size_t cap = w->buf_cap;
        if ((r = reserve((void **)&w->buf, &cap, 2 * n, 1)) < 0)
            return r;
        w->buf_cap = cap;
        for (size_t i = 0; i < n; i++) {
            uint32_t cp = t->byte_cp[s[i]];
            if (cp < 0x80) {
                w->buf[m++] = (char)cp;
            } else {
                w->buf[m++] = (char)(0xc0 | (cp >> 6));
                w->buf[m++] = (char)(0x80 | (cp & 0x3f));
            }
        }
        int32_t id = tok_lookup(t, w->buf, m);
        if (id >= 0)
            return ivec_push(out, id);
    }
    if (n == 1)
        return ivec_push(out, t->byte_tok[s[0]]);

    if ((r = work_symbols(w, n)) < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        w->id[i] = t->byte_tok[s[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    /* n - 1 pairs are queued first; each merge pops one and may push two,
     * so the heap peaks below 2n: reserve the common case up front. */
    w->heap_n = 0;
    if ((r = reserve((void **)&w->heap, &w->heap_cap, n, sizeof(pair))) < 0)
        return r;
    for (size_t i = 1; i < n; i++)
        if ((r = bpe_add_pair(t, w, (int32_t)i - 1, (int32_t)i)) < 0)
            return r;
    while (w->heap_n) {
        pair p = heap_pop(w);
        int32_t l = p.left, rt = p.right;
        /* Stale: either side was merged away or changed since queued. */
        if (w->id[l] != p.check.ids.lid || w->id[rt] != p.check.ids.rid || w->next[l] != rt)
            continue;
        w->id[l] = p.result;
        w->id[rt] = -1;
        w->next[l] = w->next[rt];
        if (w->next[rt] >= 0)
            w->prev[w->next[rt]] = l;
        if ((r = bpe_add_pair(t, w, w->prev[l], l)) < 0 || (r = bpe_add_pair(t, w, l, w->next[l])) < 0)
            return r;
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if ((r = ivec_push(out, w->id[i])) < 0)
            return r;
    return 0;
}

static int bpe_fragment(const aik_tokenizer *t, work *w, pcre2_match_data *md, const char *text, size_t n,
                        ivec *out)
{
    size_t pos = 0;
    int r;

    while (pos < n) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)text, n, pos, PCRE2_NOTEMPTY, md, NULL);
        PCRE2_SIZE *ov;

        if (rc == PCRE2_ERROR_NOMATCH)
            return bpe_word(t, w, (const uint8_t *)text + pos, n - pos, out);
        if (rc < 0)
            return -EOVERFLOW; /* match/depth limit or internal error */
        ov = pcre2_get_ovector_pointer(md);
        if (ov[0] < pos || ov[1] <= ov[0] || ov[1] > n)
            return -EOVERFLOW; /* cannot happen with NOTEMPTY; be safe */
        /* Text the pattern does not cover (invalid UTF-8, or characters a
         * custom pattern leaves out) is a word of its own. */
        if (ov[0] > pos && (r = bpe_word(t, w, (const uint8_t *)text + pos, ov[0] - pos, out)) < 0)
            return r;
        if ((r = bpe_word(t, w, (const uint8_t *)text + ov[0], ov[1] - ov[0], out)) < 0)
            return r;
        pos = ov[1];
    }
    return 0;
}

/* ---- SPM BPE ---- */

/* Length of the character starting at s (n bytes left): llama.cpp's
 * unicode_len_utf8 (from the lead byte's high bits), except that a sequence
 * whose continuation bytes are missing is one byte long. llama.cpp would
 * swallow the following bytes, which can cut the 3-byte ▁ of an escaped
 * space in half and turn it into "▁" on decoding; for valid UTF-8 the two
 * agree. */
static size_t spm_char_len(const char *s, size_t n)
{
    static const uint8_t lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    size_t len = lookup[(uint8_t)s[0] >> 4];
    if (len > n)
        return 1;
    for (size_t i = 1; i < len; i++)
        if (((uint8_t)s[i] & 0xc0) != 0x80)
            return 1;
    return len;
}

static int spm_add_pair(const aik_tokenizer *t, work *w, int32_t l, int32_t r)
{
    pair p = { 0 };
    uint64_t size;
    int32_t id;

    if (l < 0 || r < 0)
        return 0;
    size = (uint64_t)w->len[l] + w->len[r];
    if (size > AIK_TOKENIZER_MAX_TOKEN_LEN)
        return 0; /* no token is that long */
    id = tok_lookup(t, w->buf + w->off[l], (size_t)size);
    if (id < 0)
        return 0;
    p.key.score = t->scores[id];
    p.left = l;
    p.right = r;
    p.result = id;
    p.check.size = (uint32_t)size;
    return heap_push(w, &p);
}

static int spm_fragment(const aik_tokenizer *t, work *w, const char *text, size_t n, bool prefix, ivec *out)
{
    size_t m = 0, nsym = 0, cap = w->buf_cap;
    int r;

    /* Escape: optional leading space, every ' ' -> U+2581 (3 bytes). n is
     * capped by AIK_TOKENIZER_MAX_INPUT, so 3n + 3 fits. */
    if ((r = reserve((void **)&w->buf, &cap, 3 * n + 3, 1)) < 0)
        return r;
    w->buf_cap = cap;
    for (size_t i = 0; i < n + prefix; i++) {
        char c = (prefix && i == 0) ? ' ' : text[i - prefix];
        if (c == ' ') {
            memcpy(w->buf + m, "\xe2\x96\x81", 3);
            m += 3;
        } else {
            w->buf[m++] = c;
        }
    }
    if (m == 0)
        return 0;

    if ((r = work_symbols(w, m)) < 0)
        return r;
    for (size_t o = 0; o < m;) {
        size_t l = spm_char_len(w->buf + o, m - o);
        w->off[nsym] = (uint32_t)o;
        w->len[nsym] = (uint32_t)l;
        w->prev[nsym] = (int32_t)nsym - 1;
        w->next[nsym] = o + l < m ? (int32_t)nsym + 1 : -1;
        nsym++;
        o += l;
    }
    w->heap_n = 0;
    if ((r = reserve((void **)&w->heap, &w->heap_cap, nsym, sizeof(pair))) < 0)
        return r;
    for (size_t i = 1; i < nsym; i++)
        if ((r = spm_add_pair(t, w, (int32_t)i - 1, (int32_t)i)) < 0)
            return r;
    while (w->heap_n) {
        pair p = heap_pop(w);
        int32_t l = p.left, rt = p.right;
        if (w->len[l] == 0 || w->len[rt] == 0 || w->len[l] + w->len[rt] != p.check.size)
            continue; /* stale */
        w->len[l] += w->len[rt];
        w->len[rt] = 0;
        w->next[l] = w->next[rt];
        if (w->next[rt] >= 0)
            w->prev[w->next[rt]] = l;
        if ((r = spm_add_pair(t, w, w->prev[l], l)) < 0 || (r = spm_add_pair(t, w, l, w->next[l])) < 0)
            return r;
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) {
        int32_t id = tok_lookup(t, w->buf + w->off[i], w->len[i]);
        if (id >= 0) {
            if ((r = ivec_push(out, id)) < 0)
                return r;
            continue;
        }
        /* Not a piece: byte fallback, byte by byte. */
        for (uint32_t k = 0; k < w->len[i]; k++) {
            int32_t b = t->byte_tok[(uint8_t)w->buf[w->off[i] + k]];
            if (b < 0)
                b = t->unk_id;
            if (b < 0)
                return -EILSEQ;
            if ((r = ivec_push(out, b)) < 0)
                return r;
        }
    }
    return 0;
}

/* ---- special-token partition ---- */

typedef struct frag {
    int32_t id; /* token, or -1 for raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct fvec {
    frag *v;
    size_t n, cap;
} fvec;

static int fvec_push(fvec *a, int32_t id, size_t off, size_t len)
{
    int r = reserve((void **)&a->v, &a->cap, a->n + 1, sizeof(frag));
    if (r < 0)
        return r;
    a->v[a->n].id = id;
    a->v[a->n].off = off;
    a->v[a->n].len = len;
    a->n++;
    return 0;
}

/* Split raw fragments at every occurrence of each special token, longest
 * token text first, leftmost occurrence first (llama.cpp's
 * tokenizer_st_partition). */
static int partition(const aik_tokenizer *t, const char *text, size_t n, bool parse_special, fvec *cur)
{
    fvec next = { 0 };
    int r = 0;

    if (n && (r = fvec_push(cur, -1, 0, n)) < 0)
        return r;
    for (uint32_t k = 0; k < t->n_special && cur->n; k++) {
        int32_t id = t->special[k];
        const char *s = t->text + tok_start(t, (uint32_t)id);
        size_t sl = tok_len(t, (uint32_t)id);
        bool any = false;

        if (!parse_special && t->types[id] != AIK_TOKEN_USER_DEFINED)
            continue; /* CONTROL and UNKNOWN texts are plain text then */
        next.n = 0;
        for (size_t f = 0; f < cur->n; f++) {
            frag fr = cur->v[f];
            size_t pos = fr.off, end = fr.off + fr.len;
            if (fr.id >= 0) {
                if ((r = fvec_push(&next, fr.id, 0, 0)) < 0)
                    goto out;
                continue;
            }
            for (;;) {
                const char *hit = end - pos >= sl ? memmem(text + pos, end - pos, s, sl) : NULL;
                if (!hit)
                    break;
                any = true;
                size_t at = (size_t)(hit - text);
                if (at > pos && (r = fvec_push(&next, -1, pos, at - pos)) < 0)
                    goto out;
                if ((r = fvec_push(&next, id, 0, 0)) < 0)
                    goto out;
                pos = at + sl;
            }
            if (pos < end && (r = fvec_push(&next, -1, pos, end - pos)) < 0)
                goto out;
        }
        if (any) {
            fvec tmp = *cur;
            *cur = next;
            next = tmp;
        }
    }
out:
    free(next.v);
    return r;
}

/* ---- entry points ---- */

static int encode_vec(const aik_tokenizer *t, const char *text, size_t len, unsigned flags, ivec *out)
{
    fvec frags = { 0 };
    work w = { 0 };
    pcre2_match_data *md = NULL;
    bool add_bos = (flags & AIK_TOKENIZE_ADD_BOS) || ((flags & AIK_TOKENIZE_ADD_SPECIAL) && (t->flags & TOKB_FLAG_ADD_BOS));
    bool add_eos = (flags & AIK_TOKENIZE_ADD_SPECIAL) && (t->flags & TOKB_FLAG_ADD_EOS);
    bool prev_special = true; /* SPM: the start of the input counts as after a special token */
    int r;

    if (add_bos && t->bos_id < 0)
        return -EINVAL;
    w.spm = t->kind == AIK_TOKENIZER_SPM_BPE;
    if (add_bos && (r = ivec_push(out, t->bos_id)) < 0)
        return r;
    r = partition(t, text, len, (flags & AIK_TOKENIZE_PARSE_SPECIAL) != 0, &frags);
    if (r < 0)
        goto out;
    if (!w.spm) {
        /* Per call, so that one tokenizer serves many threads. */
        md = pcre2_match_data_create_from_pattern(t->re, NULL);
        if (!md) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (size_t f = 0; f < frags.n; f++) {
        const frag *fr = &frags.v[f];
        if (fr->id >= 0) {
            r = ivec_push(out, fr->id);
            prev_special = true;
        } else if (w.spm) {
            r = spm_fragment(t, &w, text + fr->off, fr->len,
                             prev_special && (t->flags & TOKB_FLAG_ADD_SPACE_PREFIX), out);
            prev_special = false;
        } else {
            r = bpe_fragment(t, &w, md, text + fr->off, fr->len, out);
        }
        if (r < 0)
            goto out;
    }
    if (add_eos)
        r = ivec_push(out, t->eos_id);
out:
    pcre2_match_data_free(md);
    work_free(&w);
    free(frags.v);
    return r;
}

static int check_args(const aik_tokenizer *t, const char *text, size_t len, unsigned flags)
{
    if (!t || (!text && len))
        return -EINVAL;
    if (flags & ~(unsigned)(AIK_TOKENIZE_ADD_SPECIAL | AIK_TOKENIZE_ADD_BOS | AIK_TOKENIZE_PARSE_SPECIAL))
        return -EINVAL;
    if (len > AIK_TOKENIZER_MAX_INPUT)
        return -E2BIG;
    return 0;
}

int aik_tokenizer_encode(const aik_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t *ids,
                         size_t cap, size_t *ret_n)
{
    ivec out = { 0 };
    int r;

    if (!ret_n || (!ids && cap))
        return -EINVAL;
    if ((r = check_args(t, text, len, flags)) < 0)
        return r;
    r = encode_vec(t, text ? text : "", len, flags, &out);
    if (r >= 0) {
        if (out.n > cap) {
            r = -ENOSPC;
        } else if (out.n) {
            memcpy(ids, out.v, out.n * sizeof(int32_t));
        }
        *ret_n = out.n;
    }
    free(out.v);
    return r;
}

int aik_tokenizer_encode_alloc(const aik_tokenizer *t, const char *text, size_t len, unsigned flags,
                               int32_t **ret_ids, size_t *ret_n)
{
    ivec out = { 0 };
    int r;

    if (!ret_ids || !ret_n)
        return -EINVAL;
    if ((r = check_args(t, text, len, flags)) < 0)
        return r;
    r = encode_vec(t, text ? text : "", len, flags, &out);
    if (r < 0) {
        free(out.v);
        return r;
    }
    if (!out.v) { /* empty result: still hand back a freeable pointer */
        out.v = malloc(sizeof(int32_t));
        if (!out.v)
            return -ENOMEM;
    }
    *ret_ids = out.v;
    *ret_n = out.n;
    return 0;
}
