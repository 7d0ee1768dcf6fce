/* SPDX-License-Identifier: MIT */
#include "capgraph/wordnet.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

#define WN_MAX_FILE (64u * 1024u * 1024u) /* data.noun is ~15 MB */
#define WN_MAX_WORD 64                    /* longest lemma we look up */

enum { POS_NOUN, POS_VERB, POS_ADJ, POS_ADV, POS_COUNT };
static const char *const pos_suffix[POS_COUNT] = { "noun", "verb", "adj", "adv" };

typedef struct wn_file {
    const char *base;   /* mmap'ed bytes (or the caller's buffer), NULL when absent */
    size_t size;
    bool mapped;        /* base came from mmap (else it is borrowed) */
    uint32_t *lines;    /* offsets of the sorted entry lines (index and exc files) */
    size_t n_lines;
} wn_file;

struct aik_wordnet {
    wn_file index[POS_COUNT], data[POS_COUNT], exc[POS_COUNT];
};

static void file_unmap(wn_file *f)
{
    if (f->base && f->mapped)
        munmap((void *)f->base, f->size);
    free(f->lines);
    memset(f, 0, sizeof(*f));
}

void aik_wordnet_close(aik_wordnet *wn)
{
    if (!wn)
        return;
    for (int p = 0; p < POS_COUNT; p++) {
        file_unmap(&wn->index[p]);
        file_unmap(&wn->data[p]);
        file_unmap(&wn->exc[p]);
    }
    free(wn);
}

/* mmap a file read-only; -ENOENT when missing. Empty files map to size 0. */
static int file_map(const char *dir, const char *name, wn_file *f, aik_error *err)
{
    char path[4096];
    struct stat st;
    void *m;
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return aik_fail(err, -ENAMETOOLONG, name, "WordNet path too long");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return aik_fail(err, -errno, path, "cannot open WordNet file: %s", strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return aik_fail(err, -EBADMSG, path, "not a regular file");
    }
    if ((uint64_t)st.st_size > WN_MAX_FILE) {
        close(fd);
        return aik_fail(err, -EFBIG, path, "larger than %u bytes", WN_MAX_FILE);
    }
    f->size = (size_t)st.st_size;
    if (f->size == 0) {
        close(fd);
        return 0;
    }
    m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return aik_fail(err, -errno, path, "mmap failed");
    f->base = m;
    f->mapped = true;
    return 0;
}

/* Length of the first token of the line at off (the mapping is not
 * NUL-terminated: stop at the end of the file). */
static size_t key_len(const wn_file *f, size_t off)
{
    size_t n = 0;
    while (off + n < f->size && f->base[off + n] != ' ' && f->base[off + n] != '\n')
        n++;
    return n;
}

/* Offsets of the lines that hold entries (the license header lines of
 * index files start with two spaces), and a check that they are sorted,
 * because lookups binary-search them. */
static int index_lines(wn_file *f, const char *name, aik_error *err)
{
    size_t cap = 0, off = 0, prev = SIZE_MAX;

    while (off < f->size) {
        const char *nl = memchr(f->base + off, '\n', f->size - off);
        size_t end = nl ? (size_t)(nl - f->base) : f->size;
        if (end > off && f->base[off] != ' ') {
            if (off > UINT32_MAX)
                return aik_fail(err, -EFBIG, name, "line offset beyond 4 GiB");
            if (prev != SIZE_MAX) {
                /* Compare keys (up to the first space) byte-wise. */
                const char *a = f->base + prev, *b = f->base + off;
                size_t la = key_len(f, prev), lb = key_len(f, off);
                int c = memcmp(a, b, la < lb ? la : lb);
                if (c > 0 || (c == 0 && la > lb))
                    return aik_fail(err, -EBADMSG, name, "entries are not sorted at byte %zu", off);
            }
            if (f->n_lines == cap) {
                size_t ncap = cap ? cap * 2 : 4096;
                uint32_t *v = realloc(f->lines, ncap * sizeof(*v));
                if (!v)
                    return -ENOMEM;
                f->lines = v;
                cap = ncap;
            }
            f->lines[f->n_lines++] = (uint32_t)off;
            prev = off;
        }
        off = end + 1;
    }
    return 0;
}

int aik_wordnet_open(const char *dir, aik_wordnet **ret_wn, aik_error *err)
{
    aik_wordnet *wn;
    int r = 0;

    if (!ret_wn)
        return -EINVAL;
    if (!dir)
        dir = AIK_WORDNET_DEFAULT_DIR;
    wn = calloc(1, sizeof(*wn));
    if (!wn)
        return -ENOMEM;
    for (int p = 0; p < POS_COUNT; p++) {
        char name[32];
        bool needed = p == POS_NOUN || p == POS_VERB;

        snprintf(name, sizeof(name), "index.%s", pos_suffix[p]);
        r = file_map(dir, name, &wn->index[p], err);
        if (r == 0)
            r = index_lines(&wn->index[p], name, err);
        if (r == 0) {
            snprintf(name, sizeof(name), "data.%s", pos_suffix[p]);
            r = file_map(dir, name, &wn->data[p], err);
        }
        if (r == -ENOENT && !needed) {
            file_unmap(&wn->index[p]);
            file_unmap(&wn->data[p]);
            r = 0;
            continue;
        }
        if (r < 0)
            goto fail;
        /* Exception lists are optional: without them only the detachment rules apply. */
        snprintf(name, sizeof(name), "%s.exc", pos_suffix[p]);
        if (file_map(dir, name, &wn->exc[p], NULL) == 0) {
            r = index_lines(&wn->exc[p], name, err);
            if (r < 0)
                goto fail;
        }
    }
    if (wn->index[POS_NOUN].n_lines == 0 || wn->index[POS_VERB].n_lines == 0) {
        r = aik_fail(err, -EBADMSG, dir, "WordNet index files have no entries");
        goto fail;
    }
    *ret_wn = wn;
    return 0;
fail:
    aik_wordnet_close(wn);
    return r;
}

int aik_wordnet_from_buffers(const aik_wordnet_buffers *bufs, aik_wordnet **ret_wn, aik_error *err)
{
    static const char *const names[3] = { "index", "data", "exc" };
    aik_wordnet *wn;
    int r;

    if (!bufs || !ret_wn)
        return -EINVAL;
    wn = calloc(1, sizeof(*wn));
    if (!wn)
        return -ENOMEM;
    for (int p = 0; p < POS_COUNT; p++) {
        wn_file *files[3] = { &wn->index[p], &wn->data[p], &wn->exc[p] };
        for (int k = 0; k < 3; k++) {
            char name[32];
            const char *data = k == 0 ? bufs->index[p] : k == 1 ? bufs->data[p] : bufs->exc[p];
            size_t len = k == 0 ? bufs->index_len[p] : k == 1 ? bufs->data_len[p] : bufs->exc_len[p];
            if (!data)
                continue;
            if (len > WN_MAX_FILE) {
                r = aik_fail(err, -EFBIG, names[k], "larger than %u bytes", WN_MAX_FILE);
                goto fail;
            }
            files[k]->base = data;
            files[k]->size = len;
            snprintf(name, sizeof(name), "%s.%s", names[k], pos_suffix[p]);
            if (k != 1 && (r = index_lines(files[k], name, err)) < 0)
                goto fail;
        }
    }
    if (wn->index[POS_NOUN].n_lines == 0 || wn->index[POS_VERB].n_lines == 0) {
        r = aik_fail(err, -EBADMSG, "index", "WordNet index files have no entries");
        goto fail;
    }
    *ret_wn = wn;
    return 0;
fail:
    aik_wordnet_close(wn);
    return r;
}

/* One line as [p, end). */
typedef struct span {
    const char *p, *end;
} span;

static span line_at(const wn_file *f, size_t off)
{
    span s = { NULL, NULL };
    const char *nl;
    if (!f->base || off >= f->size)
        return s;
    nl = memchr(f->base + off, '\n', f->size - off);
    s.p = f->base + off;
    s.end = nl ? nl : f->base + f->size;
    return s;
}

/* Next space-separated token of a span; false at the end. */
static bool next_tok(span *s, span *tok)
{
    while (s->p < s->end && *s->p == ' ')
        s->p++;
    if (s->p >= s->end)
        return false;
    tok->p = s->p;
    while (s->p < s->end && *s->p != ' ')
        s->p++;
    tok->end = s->p;
    return true;
}

static bool tok_eq(span t, const char *str)
{
    size_t n = strlen(str);
    return (size_t)(t.end - t.p) == n && memcmp(t.p, str, n) == 0;
}

/* Parse an unsigned number in the given base from a whole token. */
static bool tok_num(span t, unsigned base, uint64_t max, uint64_t *ret)
{
    uint64_t v = 0;
    if (t.p >= t.end || t.end - t.p > 16)
        return false;
    for (const char *p = t.p; p < t.end; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            return false;
        v = v * base + d;
        if (v > max)
            return false;
    }
    *ret = v;
    return true;
}

/* Binary search a sorted line file for the line whose first token is key. */
static span lookup(const wn_file *f, const char *key)
{
    size_t lo = 0, hi = f->n_lines, klen = strlen(key);
    span none = { NULL, NULL };

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        span l = line_at(f, f->lines[mid]), t;
        int c;
        if (!next_tok(&l, &t))
            return none;
        size_t tl = (size_t)(t.end - t.p);
        c = memcmp(t.p, key, tl < klen ? tl : klen);
        if (c == 0)
            c = tl < klen ? -1 : tl > klen ? 1 : 0;
        if (c == 0)
            return line_at(f, f->lines[mid]);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return none;
}

static bool in_index(const aik_wordnet *wn, int pos, const char *w)
{
    return lookup(&wn->index[pos], w).p != NULL;
}

typedef struct emitter {
    aik_wordnet_emit_fn fn;
    void *user;
    int stop;
} emitter;

/* Emit a lemma as found in a data file: lower-cased, "(a)"-style adjective
 * markers dropped, collocations ("stand_for") skipped. */
static void emit_lemma(emitter *e, span w, float weight)
{
    char buf[WN_MAX_WORD + 1];
    size_t n = 0;

    if (e->stop < 0)
        return;
    for (const char *p = w.p; p < w.end && *p != '('; p++) {
        char ch = *p;
        if (ch == '_' || ch == '-' || n >= WN_MAX_WORD)
            return;
        buf[n++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    if (n == 0)
        return;
    buf[n] = '\0';
    e->stop = e->fn(e->user, buf, weight);
}

/* Walk the synset at offset of a data file: emit its lemmas with w_syn and,
 * when follow is set, the lemmas that its pointers name with w_rel.
 * word_num: the 1-based number of our word in this synset (for lexical
 * pointers), 0 when unknown. */
static void visit_synset(const aik_wordnet *wn, int pos, uint64_t offset, const char *word, float w_syn, float w_rel,
                         bool follow, bool gloss, emitter *e, int depth);

static int pos_from_char(span t)
{
    if (t.end - t.p != 1)
        return -1;
    switch (*t.p) {
    case 'n': return POS_NOUN;
    case 'v': return POS_VERB;
    case 'a': case 's': return POS_ADJ;
    case 'r': return POS_ADV;
    default: return -1;
    }
}

/* The n-th (1-based) lemma of a synset line. */
static span synset_word(const aik_wordnet *wn, int pos, uint64_t offset, uint64_t n)
{
    span l = line_at(&wn->data[pos], offset), t, none = { NULL, NULL };
    uint64_t wcnt;
    for (int i = 0; i < 3; i++)
        if (!next_tok(&l, &t))
            return none;
    if (!next_tok(&l, &t) || !tok_num(t, 16, 255, &wcnt) || n == 0 || n > wcnt)
        return none;
    for (uint64_t i = 1; i <= wcnt; i++) {
        span lex;
        if (!next_tok(&l, &t) || !next_tok(&l, &lex))
            return none;
        if (i == n)
            return t;
    }
    return none;
}

/* Emit the words of a synset's definition: the gloss after '|', up to the
 * first ';' (what follows are quoted examples). */
static void emit_gloss(span l, emitter *e)
{
    const char *p = l.p;

    while (p < l.end && *p != '|')
        p++;
    while (p < l.end && *p != ';' && *p != '"' && e->stop >= 0) {
        char buf[WN_MAX_WORD + 1];
        size_t n = 0;
        while (p < l.end && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            if (*p++ == ';')
                return;
        while (p < l.end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            if (n < WN_MAX_WORD)
                buf[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
            p++;
        }
        if (n >= 3 && n < WN_MAX_WORD) {
            buf[n] = '\0';
            e->stop = e->fn(e->user, buf, AIK_WORDNET_W_GLOSS);
        }
    }
}

static void visit_synset(const aik_wordnet *wn, int pos, uint64_t offset, const char *word, float w_syn, float w_rel,
                         bool follow, bool gloss, emitter *e, int depth)
{
    span whole;
    span l = line_at(&wn->data[pos], offset), t;
    uint64_t v, wcnt, pcnt, our = 0;

    if (!l.p || depth > 1)
        return;
    whole = l;
    /* synset_offset lex_filenum ss_type w_cnt */
    if (!next_tok(&l, &t) || !tok_num(t, 10, UINT32_MAX, &v) || v != offset)
        return; /* the offset must point at the start of its own line */
    if (!next_tok(&l, &t) || !next_tok(&l, &t))
        return;
    if (!next_tok(&l, &t) || !tok_num(t, 16, 255, &wcnt))
        return;
    for (uint64_t i = 1; i <= wcnt; i++) {
        span w, lex;
        if (!next_tok(&l, &w) || !next_tok(&l, &lex))
            return;
        if (word && tok_eq(w, word))
            our = i;
        emit_lemma(e, w, w_syn);
    }
    if (gloss)
        emit_gloss(whole, e);
    if (!follow)
        return;
    if (!next_tok(&l, &t) || !tok_num(t, 10, 999, &pcnt))
        return;
    for (uint64_t i = 0; i < pcnt && e->stop >= 0; i++) {
        span sym, off, ps, st;
        uint64_t toff, srctgt;
        int tpos;
        if (!next_tok(&l, &sym) || !next_tok(&l, &off) || !next_tok(&l, &ps) || !next_tok(&l, &st))
            return;
        if (!tok_num(off, 10, UINT32_MAX, &toff) || (tpos = pos_from_char(ps)) < 0 || !tok_num(st, 16, 0xffff, &srctgt))
            continue;
        if (!wn->data[tpos].base)
            continue;
        if (tok_eq(sym, "@") || tok_eq(sym, "&")) {
            /* hypernym / similar-to: the other synset's lemmas */
            visit_synset(wn, tpos, toff, NULL, w_rel, 0, false, false, e, depth + 1);
        } else if (tok_eq(sym, "+") && srctgt != 0 && (srctgt >> 8) == our) {
            /* derivationally related form of our word: only its target lemma */
            span w = synset_word(wn, tpos, toff, srctgt & 0xff);
            if (w.p)
                emit_lemma(e, w, w_rel);
        }
    }
}

/* Expand one base form of one part of speech through its index entry. */
static void expand_lemma(const aik_wordnet *wn, int pos, const char *lemma, emitter *e)
{
    span l = lookup(&wn->index[pos], lemma), t;
    uint64_t synset_cnt, p_cnt;

    if (!l.p)
        return;
    /* lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset... */
    if (!next_tok(&l, &t) || !next_tok(&l, &t))
        return;
    if (!next_tok(&l, &t) || !tok_num(t, 10, 10000, &synset_cnt))
        return;
    if (!next_tok(&l, &t) || !tok_num(t, 10, 100, &p_cnt))
        return;
    for (uint64_t i = 0; i < p_cnt; i++)
        if (!next_tok(&l, &t))
            return;
    if (!next_tok(&l, &t) || !next_tok(&l, &t))
        return;
    float scale = 1.0f;
    for (uint64_t i = 0; i < synset_cnt && i < AIK_WORDNET_MAX_SENSES && e->stop >= 0; i++) {
        uint64_t off;
        if (!next_tok(&l, &t) || !tok_num(t, 10, UINT32_MAX, &off))
            return;
        visit_synset(wn, pos, off, lemma, AIK_WORDNET_W_SYNONYM * scale, AIK_WORDNET_W_RELATED * scale, true,
                     i < AIK_WORDNET_GLOSS_SENSES, e, 0);
        scale *= AIK_WORDNET_SENSE_DECAY;
    }
}

/* morphy(3WN): detachment rules per part of speech. */
static const struct { const char *suffix, *ending; } rules_noun[] = {
    { "s", "" }, { "ses", "s" }, { "xes", "x" }, { "zes", "z" }, { "ches", "ch" }, { "shes", "sh" },
    { "men", "man" }, { "ies", "y" }, { NULL, NULL },
}, rules_verb[] = {
    { "s", "" }, { "ies", "y" }, { "es", "e" }, { "es", "" }, { "ed", "e" }, { "ed", "" }, { "ing", "e" },
    { "ing", "" }, { NULL, NULL },
}, rules_adj[] = {
    { "er", "" }, { "est", "" }, { "er", "e" }, { "est", "e" }, { NULL, NULL },
};

typedef struct baseset {
    char v[8][WN_MAX_WORD + 1];
    int n;
} baseset;

static void base_add(baseset *b, const char *w, size_t len)
{
    if (len == 0 || len > WN_MAX_WORD || b->n >= 8)
        return;
    for (int i = 0; i < b->n; i++)
        if (strlen(b->v[i]) == len && memcmp(b->v[i], w, len) == 0)
            return;
    memcpy(b->v[b->n], w, len);
    b->v[b->n][len] = '\0';
    b->n++;
}

static void morphy(const aik_wordnet *wn, int pos, const char *word, baseset *out)
{
    size_t len = strlen(word);
    span l = lookup(&wn->exc[pos], word), t;
    const void *rules = pos == POS_NOUN ? (const void *)rules_noun : pos == POS_VERB ? (const void *)rules_verb
                      : pos == POS_ADJ  ? (const void *)rules_adj : NULL;

    if (in_index(wn, pos, word))
        base_add(out, word, len);
    if (l.p) {
        next_tok(&l, &t); /* the inflected form itself */
        while (next_tok(&l, &t))
            base_add(out, t.p, (size_t)(t.end - t.p));
    }
    if (!rules)
        return;
    for (const struct { const char *suffix, *ending; } *r = rules; r->suffix; r++) {
        size_t sl = strlen(r->suffix), el = strlen(r->ending);
        char cand[WN_MAX_WORD + 1];
        if (len <= sl || memcmp(word + len - sl, r->suffix, sl) != 0 || len - sl + el > WN_MAX_WORD)
            continue;
        memcpy(cand, word, len - sl);
        memcpy(cand + len - sl, r->ending, el);
        cand[len - sl + el] = '\0';
        if (in_index(wn, pos, cand))
            base_add(out, cand, strlen(cand));
    }
}

int aik_wordnet_expand(const aik_wordnet *wn, const char *word, aik_wordnet_emit_fn emit, void *user)
{
    emitter e = { emit, user, 0 };
    size_t len;

    if (!wn || !word || !emit)
        return -EINVAL;
    len = strlen(word);
    if (len == 0 || len > WN_MAX_WORD)
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (word[i] == ' ' || word[i] == '\n')
            return -EINVAL;
    for (int pos = 0; pos < POS_COUNT && e.stop >= 0; pos++) {
        baseset b = { .n = 0 };
        if (!wn->index[pos].base)
            continue;
        morphy(wn, pos, word, &b);
        for (int i = 0; i < b.n && e.stop >= 0; i++) {
            e.stop = emit(user, b.v[i], AIK_WORDNET_W_BASE);
            if (e.stop >= 0)
                expand_lemma(wn, pos, b.v[i], &e);
        }
    }
    return e.stop < 0 ? e.stop : 0;
}
