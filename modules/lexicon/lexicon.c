/* SPDX-License-Identifier: MIT */
/*
 * Lexicon capabilities over the WordNet-trained base model: define a word,
 * list its synonyms, use it in a sentence. Each prompt is the canonical
 * prefix the model saw in training (models/wordnet/FORMATS.md); the answer is
 * cut where the training format ends it. One source, three modules: the
 * build picks the capability with -DLEXICON_CAPABILITY=0/1/2.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "aik/capability.h"
#include "aik/module.h"

#define LEXICON_DEFINE 0
#define LEXICON_SYNONYMS 1
#define LEXICON_EXAMPLE 2

#ifndef LEXICON_CAPABILITY
#define LEXICON_CAPABILITY LEXICON_DEFINE
#endif

#define WORD_MAX 64

/* The input is one word or a short term: trimmed, no quotes or control
 * characters (the formats quote the word), at most WORD_MAX bytes. */
static int clean_word(const char *in, size_t len, const char **ret_w, size_t *ret_len)
{
    while (len && (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r')) {
        in++;
        len--;
    }
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t' || in[len - 1] == '\n' || in[len - 1] == '\r' ||
                   in[len - 1] == '?' || in[len - 1] == '.'))
        len--;
    if (len == 0 || len > WORD_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == '"' || c == 0x7f)
            return -EINVAL;
    }
    *ret_w = in;
    *ret_len = len;
    return 0;
}

static int prompt(const char *input, size_t len, char *buf, size_t cap, size_t *ret_len)
{
    const char *w;
    size_t wl;
    int n;

    if (clean_word(input, len, &w, &wl) < 0)
        return -EINVAL;
#if LEXICON_CAPABILITY == LEXICON_DEFINE
    n = snprintf(buf, cap, "The word \"%.*s\" (", (int)wl, w);
#elif LEXICON_CAPABILITY == LEXICON_SYNONYMS
    n = snprintf(buf, cap, "Synonyms of \"%.*s\":", (int)wl, w);
#else
    n = snprintf(buf, cap, "Use the word \"%.*s\" in a sentence: \"", (int)wl, w);
#endif
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    *ret_len = (size_t)n;
    return 0;
}

static void trim(char *t, size_t *len)
{
    size_t s = 0;
    while (s < *len && t[s] == ' ')
        s++;
    memmove(t, t + s, *len - s);
    *len -= s;
    while (*len && (t[*len - 1] == ' ' || t[*len - 1] == '\n'))
        (*len)--;
    t[*len] = '\0';
}

#if LEXICON_CAPABILITY == LEXICON_SYNONYMS
/* The model sometimes lists the word itself: drop list items equal to it
 * (ASCII case-insensitive) and rejoin with ", ". */
static size_t drop_self(const char *w, size_t wl, char *t, size_t len)
{
    size_t out = 0, pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && !(t[end] == ',' && end + 1 < len && t[end + 1] == ' '))
            end++;
        size_t il = end - pos;
        bool same = il == wl;
        for (size_t i = 0; same && i < il; i++) {
            char a = t[pos + i], b = w[i];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z')
                b = (char)(b - 'A' + 'a');
            same = a == b;
        }
        if (!same && il) {
            if (out) {
                t[out++] = ',';
                t[out++] = ' ';
            }
            memmove(t + out, t + pos, il);
            out += il;
        }
        pos = end < len ? end + 2 : len;
    }
    t[out] = '\0';
    return out;
}
#endif

static int postprocess(const char *input, size_t input_len, char *t, size_t len, size_t *ret_len)
{
    (void)input;
    (void)input_len;
#if LEXICON_CAPABILITY == LEXICON_DEFINE
    /* completion: "verb) means forsake, leave behind." -> "(verb) forsake, leave behind" */
    static const char *const pos[] = { "noun", "verb", "adjective", "adverb" };
    for (size_t i = 0; i < 4; i++) {
        size_t pl = strlen(pos[i]);
        if (len > pl + 8 && memcmp(t, pos[i], pl) == 0 && memcmp(t + pl, ") means ", 8) == 0) {
            char tmp[32];
            snprintf(tmp, sizeof(tmp), "(%s) ", pos[i]);
            size_t tl = strlen(tmp), rest = len - pl - 8;
            memmove(t + tl, t + pl + 8, rest);
            memcpy(t, tmp, tl);
            len = tl + rest;
            break;
        }
    }
#endif
    trim(t, &len);
    if (len && t[len - 1] == '.' && LEXICON_CAPABILITY != LEXICON_EXAMPLE)
        t[--len] = '\0';
#if LEXICON_CAPABILITY == LEXICON_SYNONYMS
    {
        const char *w;
        size_t wl;
        if (clean_word(input, input_len, &w, &wl) == 0)
            len = drop_self(w, wl, t, len);
    }
#endif
    *ret_len = len;
    return 0;
}

#if LEXICON_CAPABILITY == LEXICON_DEFINE
static const char *const stops[] = { "\n", NULL };
#define LEXICON_ID "lexicon.define"
#define LEXICON_NAME "aik-lexicon-define"
#elif LEXICON_CAPABILITY == LEXICON_SYNONYMS
static const char *const stops[] = { "\n", NULL };
#define LEXICON_ID "lexicon.synonyms"
#define LEXICON_NAME "aik-lexicon-synonyms"
#else
static const char *const stops[] = { "\"", "\n", NULL };
#define LEXICON_ID "lexicon.example"
#define LEXICON_NAME "aik-lexicon-example"
#endif

static const aik_capability_ops ops = {
    .struct_size = sizeof(aik_capability_ops),
    .capability = LEXICON_ID,
    .build_prompt = prompt,
    .stop_strings = stops,
    .postprocess = postprocess,
    .max_tokens = 64,
};

AIK_MODULE(AIK_MODULE_CAPABILITY, LEXICON_NAME, "1.0.0", &ops, sizeof(ops));
