/* SPDX-License-Identifier: MIT */
/*
 * Private to runtime/tokenizer*.c: the loaded tokenizer's layout and the blob
 * constants. tokenizer.c owns the blob format (build + load) and decoding;
 * tokenizer_encode.c owns encoding.
 */
#ifndef AIK_RUNTIME_TOKENIZER_INTERNAL_H
#define AIK_RUNTIME_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "runtime/tokenizer.h"

/* Blob v1 layout (docs/tokenizer.md). All integers little-endian. */
#define TOKB_MAGIC "AIKTOK\x00\x01"
#define TOKB_VERSION_MAJOR 1
#define TOKB_VERSION_MINOR 0
#define TOKB_HEADER_SIZE 160
#define TOKB_N_SECTIONS 7

enum tokb_section {
    TOKB_SEC_TOKEN_ENDS = 0, /* u32[n_vocab]: end of token i's text in TOKEN_TEXT */
    TOKB_SEC_TOKEN_TEXT = 1, /* bytes */
    TOKB_SEC_SCORES = 2,     /* f32[n_vocab] or empty (all 0) */
    TOKB_SEC_TYPES = 3,      /* u8[n_vocab] */
    TOKB_SEC_MERGES = 4,     /* u32[2 * n_merges]: (left id, right id) in rank order */
    TOKB_SEC_PRE_REGEX = 5,  /* bytes, no NUL; byte BPE only (required there) */
    TOKB_SEC_TEMPLATE = 6,   /* bytes, no NUL; empty = no template */
};

/* header.flags */
enum {
    TOKB_FLAG_ADD_BOS = 1u << 0,
    TOKB_FLAG_ADD_EOS = 1u << 1,
    TOKB_FLAG_ADD_SPACE_PREFIX = 1u << 2,
    TOKB_FLAG_IGNORE_MERGES = 1u << 3,
    TOKB_FLAGS_KNOWN = 0xfu,
};

/* One merge in the lookup table: (left, right) canonical ids -> rank, result. */
typedef struct tok_merge_slot {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty slot */
    uint32_t rank;
    int32_t result;
} tok_merge_slot;

struct aik_tokenizer {
    enum aik_tokenizer_kind kind;
    uint32_t n_vocab;
    uint32_t n_merges;
    uint32_t flags; /* TOKB_FLAG_* */
    int32_t bos_id, eos_id, unk_id, pad_id;

    char *text;         /* all token texts back to back */
    uint32_t *tok_end;  /* [n_vocab] end offset of token i in text; start = tok_end[i-1] (0 for i = 0) */
    float *scores;      /* [n_vocab] (zeros when the blob had none) */
    bool has_scores;
    uint8_t *types;     /* [n_vocab] enum aik_token_type */
    uint8_t *eog;       /* [n_vocab] 1 = ends generation */
    uint32_t *merges;   /* [2 * n_merges] ids as stored (for export) */
    char *regex;        /* NUL-terminated; NULL for SPM */
    char *chat_template;/* NUL-terminated or NULL */

    /* text -> id, open addressing, slot = id + 1 (0 empty); the last id with
     * a given text wins, as in llama.cpp's token_to_id map. */
    uint32_t *tok_hash;
    uint64_t tok_hash_mask;

    tok_merge_slot *merge_hash;
    uint64_t merge_hash_mask;

    /* byte BPE: token of the GPT-2 code point of each byte (all present);
     * SPM: token "<0xXX>", else the one-byte token, else -1. */
    int32_t byte_tok[256];

    /* GPT-2 byte <-> code point tables (byte BPE), filled at load. */
    uint16_t byte_cp[256];
    int16_t cp_byte[0x144]; /* -1: code point is not in the mapping */

    /* CONTROL / USER_DEFINED / UNKNOWN tokens with non-empty text, longest
     * text first (ties: lower id first), for the special-token partition. */
    int32_t *special;
    uint32_t n_special;

    pcre2_code *re; /* byte BPE pre-tokenizer */
};

static inline uint32_t tok_start(const aik_tokenizer *t, uint32_t id)
{
    return id ? t->tok_end[id - 1] : 0;
}

static inline uint32_t tok_len(const aik_tokenizer *t, uint32_t id)
{
    return t->tok_end[id] - tok_start(t, id);
}

/* Canonical id of the token whose text is s[0..n), or -1. */
int32_t tok_lookup(const aik_tokenizer *t, const char *s, size_t n);

/* Merge lookup: rank and result of (left, right), false when none. */
bool tok_merge_lookup(const aik_tokenizer *t, int32_t left, int32_t right, uint32_t *rank, int32_t *result);

/* GPT-2 bytes_to_unicode: code point of byte b (all < 0x144). */
uint32_t tok_byte_to_cp(uint8_t b);

#endif
