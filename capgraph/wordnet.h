/* SPDX-License-Identifier: MIT */
/*
 * Read-only access to the WordNet 3.0 database files that Debian's
 * wordnet-base package installs (/usr/share/wordnet): index.{noun,verb,adj,
 * adv}, data.{noun,verb,adj,adv} and the morphology exception lists
 * {noun,verb,adj,adv}.exc. They are files from disk, so every line, offset
 * and count read from them is bounds-checked; a malformed line is skipped,
 * never trusted.
 *
 * Used by the intent matcher to relate words by meaning: base forms
 * (morphy: exception lists, then the WordNet detachment rules), synonyms
 * (other lemmas of the word's first senses), related words (hypernyms,
 * derivationally related forms, similar adjectives) and the words of the
 * definitions (glosses) of its most frequent senses, which is how "define"
 * ("give a definition for the meaning of a word") relates to "mean".
 */
#ifndef AIK_CAPGRAPH_WORDNET_H
#define AIK_CAPGRAPH_WORDNET_H

#include <stddef.h>

#include "aik/common.h"

#define AIK_WORDNET_DEFAULT_DIR "/usr/share/wordnet"

/* How many senses of each part of speech are expanded (the most frequent
 * first, as WordNet orders them); later senses are rare and add noise. */
#define AIK_WORDNET_MAX_SENSES 4

/* Weights of the relations, passed to the callback of aik_wordnet_expand. */
#define AIK_WORDNET_W_BASE 1.0f     /* the word itself or an inflection (morphy) */
#define AIK_WORDNET_W_SYNONYM 0.8f  /* another lemma of one of its synsets */
#define AIK_WORDNET_W_RELATED 0.6f  /* hypernym, derivation, similar-to */
#define AIK_WORDNET_W_GLOSS 0.55f   /* a word of the definition (gloss) of one of its senses */

/* Synonym and related weights shrink by this factor per sense rank (sense
 * 1 full weight, sense 2 x0.75, ...): "time" is a synonym of "sentence"
 * only in its third sense (a prison term), which should count for less
 * than "significance" for "meaning" in the first. */
#define AIK_WORDNET_SENSE_DECAY 0.75f

/* Glosses are read for the first senses only: later ones are rarer and
 * their definitions drift away from the everyday meaning. */
#define AIK_WORDNET_GLOSS_SENSES 2

typedef struct aik_wordnet aik_wordnet;

/* Map the database of dir (NULL: AIK_WORDNET_DEFAULT_DIR). Needs at least
 * the noun and verb index and data files; adjective and adverb files are
 * used when present. Returns 0, or -ENOENT when the database is absent,
 * -EBADMSG when a file is not a WordNet file, other -errno; err says which
 * file. */
int aik_wordnet_open(const char *dir, aik_wordnet **ret_wn, aik_error *err);

/* Accepts NULL. */
void aik_wordnet_close(aik_wordnet *wn);

/* The same database from memory (fuzzing, tests): per part of speech
 * (noun, verb, adj, adv) the index, data and exception-list bytes; NULL
 * means absent. The buffers are borrowed and must outlive the handle.
 * Same checks and errors as aik_wordnet_open. */
typedef struct aik_wordnet_buffers {
    const char *index[4], *data[4], *exc[4];
    size_t index_len[4], data_len[4], exc_len[4];
} aik_wordnet_buffers;

int aik_wordnet_from_buffers(const aik_wordnet_buffers *bufs, aik_wordnet **ret_wn, aik_error *err);

/* Callback: lemma is lower-case, a single word (multi-word collocations
 * are skipped), valid only during the call. Return < 0 to stop. */
typedef int (*aik_wordnet_emit_fn)(void *user, const char *lemma, float weight);

/* Call emit for every lemma related to word (lower-case ASCII) with the
 * weights above. The same lemma may be emitted more than once with
 * different weights. Returns 0, the callback's negative value, or -EINVAL. */
int aik_wordnet_expand(const aik_wordnet *wn, const char *word, aik_wordnet_emit_fn emit, void *user);

#endif
