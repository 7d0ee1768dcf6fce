/* SPDX-License-Identifier: MIT */
/*
 * Free-text intent matching: which capability does "what does ephemeral
 * mean" ask for? Each capability's example phrasings are indexed; a query
 * is scored against every phrasing and a capability's score is that of its
 * best phrasing. Method (docs/semantic-profile.md, "Matching free text"):
 *
 *  1. Tokens: ASCII letters/digits (other bytes >= 0x80 kept as letters),
 *     lower-cased; words inside {braces} in phrasings are placeholders and
 *     dropped; stop words (function words and request verbs such as
 *     "give", "tell", "want") dropped; each token is reduced by a light
 *     suffix stemmer (plural -s/-es/-ies, -ing, -ed, -ly, final -e).
 *  2. Meaning: with WordNet, every word is expanded to its base forms
 *     (weight 1.0), synonyms (0.8), related words (hypernyms, derivations,
 *     similar adjectives: 0.6) — both shrinking by 0.75 per sense rank —
 *     and the words of the definitions of its two most frequent senses
 *     (0.55), see capgraph/wordnet.h. sim(u, t) of a query word u and a
 *     phrasing word t is 1 when their stems are equal, else the best weight
 *     of t in u's expansion or u in t's expansion, else 0.
 *  3. Alignment: pairs (u, t) with sim > 0 are taken best first, each
 *     query word and each phrasing word at most once (a word has one
 *     sense in a sentence).
 *     P = sum over aligned t of idf(t) * sim / sum over all phrasing words
 *     of idf(t): how much of the phrasing the query covers (idf is BM25's
 *     ln(1 + (N - df + 0.5) / (df + 0.5)) over all N phrasings).
 *     Q = sum of the aligned sims of the query's "known" words / their
 *     count, where a query word is known when it relates to some word of
 *     some phrasing: the word the user asks about ("ephemeral") relates
 *     to none and says nothing about the capability.
 *     lexical = P^0.75 * Q^0.25 (both needed; P weighs more).
 *  4. Embeddings (optional hook): cos = cosine of embed(query) and
 *     embed(phrasing) clamped to [0, 1]; score = (1 - w) lexical + w cos
 *     with w = the hook's weight (AIK_EMBED_DEFAULT_WEIGHT when 0).
 *  5. A capability matches when its score >= AIK_TEXTMATCH_THRESHOLD.
 */
#ifndef AIK_CAPGRAPH_TEXTMATCH_H
#define AIK_CAPGRAPH_TEXTMATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "aik/common.h"
#include "capgraph/wordnet.h"

#define AIK_TEXTMATCH_THRESHOLD 0.5
#define AIK_TEXTMATCH_MAX_TOKENS 64  /* query words considered */
#define AIK_TEXTMATCH_MAX_WORD 48    /* longer words are truncated */
#define AIK_EMBED_DEFAULT_WEIGHT 0.5
#define AIK_EMBED_MAX_DIM 8192

/*
 * Embedding hook: write a dim-float vector for text into vec. Returns 0 or
 * a negative errno (the matcher then falls back to lexical scoring for
 * that query and says so). The runtime plugs in the base model here.
 */
typedef int (*aik_embed_fn)(void *user, const char *text, float *vec, size_t dim);

typedef struct aik_embedder {
    aik_embed_fn fn;
    void *user;
    size_t dim;     /* 1..AIK_EMBED_MAX_DIM */
    double weight;  /* 0 < weight <= 1; 0 means AIK_EMBED_DEFAULT_WEIGHT */
} aik_embedder;

typedef struct aik_textmatch aik_textmatch;

typedef struct aik_textmatch_result {
    const char *label;    /* the capability id given to aik_textmatch_add (owned by the index) */
    const char *phrase;   /* its best phrasing */
    double score;         /* combined */
    double lexical;       /* P^0.75 * Q^0.25 */
    double embedding;     /* cosine, or -1 when no embedding was used */
} aik_textmatch_result;

int aik_textmatch_new(aik_textmatch **ret_tm);
void aik_textmatch_free(aik_textmatch *tm); /* accepts NULL */

/* Add one phrasing for label. Strings are copied. Returns 0 or -errno. */
int aik_textmatch_add(aik_textmatch *tm, const char *label, const char *phrase);

/*
 * Score text against every label. wn may be NULL (lexical only: no
 * synonyms), emb may be NULL. On success *ret_results is a malloc'ed array
 * of one entry per label, best first (ties: label order by strcmp), and
 * *ret_n its length; free it with free(). ret_flags gets
 * AIK_TEXTMATCH_USED_* bits saying which methods took part.
 */
enum { AIK_TEXTMATCH_USED_WORDNET = 1, AIK_TEXTMATCH_USED_EMBEDDING = 2, AIK_TEXTMATCH_EMBED_FAILED = 4 };
int aik_textmatch_query(aik_textmatch *tm, const char *text, const aik_wordnet *wn, const aik_embedder *emb,
                        aik_textmatch_result **ret_results, size_t *ret_n, unsigned *ret_flags);

/* The light stemmer of step 1 (exposed for tests): stems word (lower-case)
 * in place. */
void aik_textmatch_stem(char *word);

#endif
