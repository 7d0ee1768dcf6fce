/* SPDX-License-Identifier: MIT */
/*
 * Deterministic byte-level BPE trainer (GPT-2 style), producing a tokenizer
 * blob for runtime/tokenizer.h (kind AIK_TOKENIZER_BYTE_BPE).
 *
 * Vocabulary layout of the result:
 *   ids [0, 256)            the 256 byte tokens, id == byte value (GPT-2
 *                           bytes_to_unicode texts, e.g. id 32 is "Ġ")
 *   ids [256, 256 + M)      one token per learned merge, in merge order
 *                           (a merge whose text already exists reuses it)
 *   last n_special ids      the special tokens (CONTROL), in the given order;
 *                           the first one is both BOS and EOS
 *
 * Algorithm: the text is split at special-token texts, pre-tokenized with
 * the same PCRE2 pattern the tokenizer will use (words never cross a match
 * boundary), identical words are counted once with a multiplicity, and pair
 * counts are kept incrementally (only words containing the merged pair are
 * rescanned), with a max-heap of pair counts and lazy deletion.
 *
 * Tie-breaking (documented, so results are reproducible): the pair with the
 * highest count wins; among equal counts the pair whose left token id is
 * smaller, then whose right token id is smaller. No hash-table iteration
 * order ever influences the result: the same inputs and options give the
 * same blob bytes on every run and machine.
 *
 * Training stops when the vocabulary reaches vocab_size or when no pair
 * occurs at least min_frequency times.
 */
#ifndef AIK_TRAIN_BPE_TRAINER_H
#define AIK_TRAIN_BPE_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. */
#define AIK_BPE_MAX_VOCAB (1u << 20)       /* vocab_size */
#define AIK_BPE_MAX_INPUT (1ull << 32)     /* total bytes fed to one trainer (else -E2BIG) */

typedef struct aik_bpe_trainer_opts {
    uint32_t vocab_size;               /* total tokens incl. 256 bytes and the specials; >= 256 + n_special */
    uint32_t min_frequency;            /* stop below this pair count; 0 = 2 */
    const char *pre_regex;             /* NULL = AIK_TOKENIZER_GPT2_REGEX */
    const char *const *special_tokens; /* NULL (with n_special 0) = { "<|endoftext|>" } */
    uint32_t n_special;
    bool add_bos;                      /* stored in the tokenizer (BOS = first special token) */
    const char *chat_template;         /* stored as is, or NULL */
} aik_bpe_trainer_opts;

typedef struct aik_bpe_trainer aik_bpe_trainer;

/* Create a trainer. Validates the options (compiles the regex). Returns 0,
 * -EINVAL (err names the option) or -ENOMEM. */
int aik_bpe_trainer_new(const aik_bpe_trainer_opts *opts, aik_bpe_trainer **ret, aik_error *err);

/* Feed text (any bytes). May be called many times; documents fed separately
 * never form words across their boundary. Returns 0, -E2BIG past
 * AIK_BPE_MAX_INPUT, -ENOMEM or -EOVERFLOW (regex match limit). */
int aik_bpe_trainer_add(aik_bpe_trainer *tr, const char *text, size_t len, aik_error *err);

/* Learn the merges and build the tokenizer blob (malloc'ed; caller frees).
 * The trainer may be freed afterwards; calling finish twice is -EINVAL. */
int aik_bpe_trainer_finish(aik_bpe_trainer *tr, uint8_t **ret_blob, size_t *ret_len, aik_error *err);

/* Number of merges learned by finish (0 before). */
uint32_t aik_bpe_trainer_n_merges(const aik_bpe_trainer *tr);

/* Free a trainer. Accepts NULL. */
void aik_bpe_trainer_free(aik_bpe_trainer *tr);

/* One-shot: new + add(text) + finish + free. */
int aik_bpe_train(const aik_bpe_trainer_opts *opts, const char *text, size_t len, uint8_t **ret_blob,
                  size_t *ret_len, aik_error *err);

#ifdef __cplusplus
}
#endif
#endif
