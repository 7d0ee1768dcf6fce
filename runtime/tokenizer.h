/* SPDX-License-Identifier: MIT */
/*
 * Tokenizers: text <-> token ids, for the two vocabulary kinds the small
 * models we run use, with behaviour matching llama.cpp on the same vocab.
 *
 *   AIK_TOKENIZER_BYTE_BPE  GPT-2 style byte-level BPE (GPT-2, SmolLM, Qwen,
 *                           Llama 3): input bytes map to printable code points
 *                           (GPT-2 bytes_to_unicode), a pre-tokenizer regex
 *                           (PCRE2, UTF + UCP) splits the text into words,
 *                           and each word is merged pair by pair in merge-rank
 *                           order.
 *   AIK_TOKENIZER_SPM_BPE   SentencePiece-style BPE (Llama 1/2, TinyLlama):
 *                           spaces become U+2581 "▁", a leading ▁ is added
 *                           (add_space_prefix), the highest-scoring adjacent
 *                           pair is merged repeatedly, and pieces that are not
 *                           in the vocabulary fall back to <0xXX> byte tokens.
 *
 * A tokenizer is stored inside each .slm package as a blob (loader/slm.h:
 * tokenizer_offset/size/sha256). The blob format is versioned and described
 * in docs/tokenizer.md; aik_tokenizer_load() treats it as untrusted input.
 *
 * Thread safety: a loaded aik_tokenizer is immutable; encode/decode may be
 * called from any number of threads at once.
 *
 * Error convention: 0 on success or -errno; where a person needs to know what
 * went wrong the function also fills an aik_error (may be NULL). ret_* outputs
 * are written only on success, except the documented -ENOSPC "needed size"
 * reports of encode/decode.
 */
#ifndef AIK_RUNTIME_TOKENIZER_H
#define AIK_RUNTIME_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aik_tokenizer aik_tokenizer;

/* Vocabulary kinds (append-only; values are stored in blobs). */
enum aik_tokenizer_kind {
    AIK_TOKENIZER_BYTE_BPE = 1, /* GPT-2 style byte-level BPE with merges + pre-tokenizer regex */
    AIK_TOKENIZER_SPM_BPE = 2,  /* SentencePiece-style BPE with scores and <0xXX> byte fallback */
};

/* Token types, GGUF's numbering (tokenizer.ggml.token_type; append-only). */
enum aik_token_type {
    AIK_TOKEN_UNDEFINED = 0,
    AIK_TOKEN_NORMAL = 1,
    AIK_TOKEN_UNKNOWN = 2,
    AIK_TOKEN_CONTROL = 3,      /* BOS, EOS, chat markers: matched only with PARSE_SPECIAL, decoded as "" */
    AIK_TOKEN_USER_DEFINED = 4, /* always matched verbatim in input, decoded verbatim */
    AIK_TOKEN_UNUSED = 5,
    AIK_TOKEN_BYTE = 6,         /* SPM "<0xXX>" byte-fallback tokens */
};

/* Limits enforced by the blob builder/parser and by encode. */
#define AIK_TOKENIZER_MAX_VOCAB (1u << 22)     /* tokens */
#define AIK_TOKENIZER_MAX_MERGES (1u << 22)    /* merges */
#define AIK_TOKENIZER_MAX_TOKEN_LEN 1024u      /* bytes of one token's text */
#define AIK_TOKENIZER_MAX_REGEX 65536u         /* bytes of the pre-tokenizer pattern */
#define AIK_TOKENIZER_MAX_TEMPLATE (1u << 20)  /* bytes of the chat template */
#define AIK_TOKENIZER_MAX_BLOB (1u << 30)      /* bytes of a whole blob */
/* Bytes of text one encode call accepts (else -E2BIG). In the worst case
 * (one huge pre-token whose pairs all merge) the merge queue and symbol
 * lists take ~80 bytes per input byte, so this bounds one call's working
 * memory to ~1.3 GiB; ordinary text needs a small fraction of that. */
#define AIK_TOKENIZER_MAX_INPUT (16u << 20)

/* The GPT-2 pre-tokenizer pattern, used when spec->pre_regex is NULL. */
#define AIK_TOKENIZER_GPT2_REGEX \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/*
 * Everything needed to build a tokenizer. Arrays are indexed by token id and
 * are only read during aik_tokenizer_blob_build() (nothing is retained).
 * A zero-initialised spec plus kind, n_vocab and tokens is valid, but note
 * that its bos/eos/unk/pad ids are then 0 (token 0): set -1 for "none".
 */
typedef struct aik_tokenizer_spec {
    enum aik_tokenizer_kind kind;
    uint32_t n_vocab;
    const char *const *tokens;   /* [n_vocab] token texts as stored in the vocab
                                    (byte BPE: GPT-2 unicode-mapped, e.g. "Ġthe";
                                    SPM: "▁the", "<0x0A>") */
    const uint32_t *token_lens;  /* [n_vocab] byte lengths, or NULL = strlen() */
    const float *scores;         /* [n_vocab] SPM merge scores (higher merges first), or NULL = all 0 */
    const uint8_t *token_types;  /* [n_vocab] enum aik_token_type, or NULL: NORMAL, except
                                    bos/eos/pad = CONTROL, unk = UNKNOWN and, for SPM,
                                    texts of the form "<0xXX>" = BYTE */
    uint32_t n_merges;           /* byte BPE only (SPM ignores merges and stores none) */
    const char *const *merges;   /* [n_merges] "left right" in rank order, as in GGUF
                                    tokenizer.ggml.merges / HF merges.txt. Split at the
                                    first space after the first byte. left, right and
                                    left+right must all be tokens. */
    int32_t bos_id, eos_id, unk_id, pad_id; /* -1 = none */
    bool add_bos;                /* encode with AIK_TOKENIZE_ADD_SPECIAL prepends BOS */
    bool add_eos;                /* encode with AIK_TOKENIZE_ADD_SPECIAL appends EOS */
    bool add_space_prefix;       /* SPM: prefix a space (→ ▁) before text that starts the
                                    input or follows a special token; GGUF
                                    tokenizer.ggml.add_space_prefix (Llama: true) */
    bool ignore_merges;          /* byte BPE: a pre-token that is itself a token is emitted
                                    whole without merging (Llama 3 behaviour) */
    const char *pre_regex;       /* byte BPE pre-tokenizer (PCRE2 syntax, compiled with
                                    UTF|UCP), NULL = AIK_TOKENIZER_GPT2_REGEX; SPM: ignored */
    const char *chat_template;   /* Jinja chat template text, or NULL (stored, not interpreted) */
} aik_tokenizer_spec;

/*
 * Validate spec and serialise it into a new blob (malloc'ed; caller frees).
 * Every check that aik_tokenizer_load() makes is made here too, so a built
 * blob always loads. Returns 0, -EINVAL (err says which field and check),
 * -E2BIG (a limit above) or -ENOMEM.
 */
/* The vocabulary text of the byte-level BPE token for byte b (GPT-2
 * bytes_to_unicode, e.g. 0x20 -> "Ġ"), UTF-8 and NUL-terminated in out.
 * Returns its length in bytes (1 or 2). Builders of byte-level vocabularies
 * use it for the 256 base tokens. */
AIK_EXPORT size_t aik_tokenizer_byte_token(uint8_t b, char out[4]);

AIK_EXPORT int aik_tokenizer_blob_build(const aik_tokenizer_spec *spec, uint8_t **ret_blob, size_t *ret_len,
                                        aik_error *err);

/*
 * Parse and validate a blob (untrusted: every offset, length and count is
 * bounds-checked) and build the lookup tables. The tokenizer copies what it
 * needs; blob may be freed/unmapped afterwards. Returns 0, -EBADMSG (bad
 * magic/structure), -EPROTONOSUPPORT (unknown version), -EINVAL (a field's
 * value fails a check; err names it), -E2BIG (a limit) or -ENOMEM.
 */
AIK_EXPORT int aik_tokenizer_load(const void *blob, size_t len, aik_tokenizer **ret_tok, aik_error *err);

/* Free a tokenizer. Accepts NULL. */
AIK_EXPORT void aik_tokenizer_free(aik_tokenizer *tok);

/* Flags for aik_tokenizer_encode(). */
enum {
    AIK_TOKENIZE_ADD_SPECIAL = 1u << 0,   /* add BOS / EOS as the tokenizer's add_bos/add_eos say
                                             (llama.cpp add_special) */
    AIK_TOKENIZE_ADD_BOS = 1u << 1,       /* prepend BOS regardless of add_bos (error -EINVAL if
                                             the tokenizer has no BOS) */
    AIK_TOKENIZE_PARSE_SPECIAL = 1u << 2, /* CONTROL / UNKNOWN token texts in the input become those
                                             tokens (USER_DEFINED ones always do) */
};

/*
 * Encode len bytes of text (any bytes; need not be valid UTF-8 nor
 * NUL-terminated; len <= AIK_TOKENIZER_MAX_INPUT, else -E2BIG).
 * Writes the ids to ids[0..*ret_n). If cap is too small, returns -ENOSPC and
 * sets *ret_n to the number of ids needed (ids may be NULL with cap 0 to ask
 * for the size). Other errors: -EINVAL (bad argument/flags, or ADD_BOS without
 * a BOS), -EILSEQ (SPM: a byte has neither a <0xXX> token, a one-byte piece
 * nor an unknown token), -EOVERFLOW (PCRE2 hit its match limit), -ENOMEM.
 * Cost: O(n log n) in the length of each pre-token (byte BPE) or fragment
 * (SPM), plus O(n) per special token with PARSE_SPECIAL.
 * Invalid UTF-8 never fails for byte BPE: every byte has a token, so
 * decode(encode(s)) == s for every byte string s.
 */
AIK_EXPORT int aik_tokenizer_encode(const aik_tokenizer *tok, const char *text, size_t len, unsigned flags,
                                    int32_t *ids, size_t cap, size_t *ret_n);

/* Same, into a malloc'ed array (caller frees) sized to fit. */
AIK_EXPORT int aik_tokenizer_encode_alloc(const aik_tokenizer *tok, const char *text, size_t len, unsigned flags,
                                          int32_t **ret_ids, size_t *ret_n);

/*
 * The bytes one token stands for, as llama.cpp's token_to_piece(special =
 * false): byte BPE pieces are un-mapped to raw bytes, SPM ▁ becomes a space
 * and <0xXX> one byte, USER_DEFINED tokens give their text verbatim, and
 * CONTROL/UNKNOWN/UNUSED/UNDEFINED tokens give "" (byte BPE: BYTE ones too).
 * The piece is never longer than the token's text. The result may be a partial
 * UTF-8 sequence; it is not NUL-terminated. -ENOSPC with *ret_len = needed
 * when cap is too small; -EINVAL for an id outside [0, n_vocab).
 */
AIK_EXPORT int aik_tokenizer_decode_token(const aik_tokenizer *tok, int32_t id, char *buf, size_t cap,
                                          size_t *ret_len);

/*
 * Concatenated pieces of ids[0..n), as llama.cpp's detokenize(remove_special =
 * false, unparse_special = false): with add_space_prefix, one leading space of
 * the piece of ids[0] is dropped (so decode(encode(s)) == s when encode added
 * no BOS; like llama.cpp, a BOS first keeps the space). Not NUL-terminated.
 * -ENOSPC with *ret_len = needed; -EINVAL for a bad id.
 */
AIK_EXPORT int aik_tokenizer_decode(const aik_tokenizer *tok, const int32_t *ids, size_t n, char *buf,
                                    size_t cap, size_t *ret_len);

/* Accessors. */
AIK_EXPORT enum aik_tokenizer_kind aik_tokenizer_kind(const aik_tokenizer *tok);
AIK_EXPORT uint32_t aik_tokenizer_n_vocab(const aik_tokenizer *tok);
AIK_EXPORT int32_t aik_tokenizer_bos_id(const aik_tokenizer *tok); /* -1 = none */
AIK_EXPORT int32_t aik_tokenizer_eos_id(const aik_tokenizer *tok); /* -1 = none */
AIK_EXPORT int32_t aik_tokenizer_unk_id(const aik_tokenizer *tok); /* -1 = none */
AIK_EXPORT int32_t aik_tokenizer_pad_id(const aik_tokenizer *tok); /* -1 = none */
AIK_EXPORT bool aik_tokenizer_add_bos(const aik_tokenizer *tok);

/* True for ids that end generation: EOS and CONTROL tokens whose text is one
 * of llama.cpp's end-of-generation markers (<|endoftext|>, <|im_end|>,
 * <|eot_id|>, <|eom_id|>, <|end|>, <end_of_turn>, <EOT>; tokens with these
 * texts are forced to CONTROL, as llama.cpp does). */
AIK_EXPORT bool aik_tokenizer_is_eog(const aik_tokenizer *tok, int32_t id);

/* The vocab text of a token (raw, e.g. "Ġthe" / "▁the" / "<0x0A>"), not
 * NUL-terminated, owned by tok; its length in *ret_len. NULL for a bad id. */
AIK_EXPORT const char *aik_tokenizer_token_text(const aik_tokenizer *tok, int32_t id, size_t *ret_len);

/* enum aik_token_type of a token; AIK_TOKEN_UNDEFINED for a bad id. */
AIK_EXPORT enum aik_token_type aik_tokenizer_token_type(const aik_tokenizer *tok, int32_t id);

/* Score of a token (0 for a bad id or when the vocab has no scores). */
AIK_EXPORT float aik_tokenizer_token_score(const aik_tokenizer *tok, int32_t id);

/* Id of the token whose vocab text is exactly text[0..len), or -1. */
AIK_EXPORT int32_t aik_tokenizer_find(const aik_tokenizer *tok, const char *text, size_t len);

/* The chat template (NUL-terminated, owned by tok), or NULL. */
AIK_EXPORT const char *aik_tokenizer_chat_template(const aik_tokenizer *tok);

/*
 * Export back to a spec (for GGUF export and round trips): a malloc'ed spec
 * whose arrays and strings are owned by it; free with
 * aik_tokenizer_spec_free(). Building a blob from it gives a blob equal byte
 * for byte to the one tok was loaded from. Returns 0 or -ENOMEM.
 */
AIK_EXPORT int aik_tokenizer_to_spec(const aik_tokenizer *tok, aik_tokenizer_spec **ret_spec);

/* Free a spec made by aik_tokenizer_to_spec() (or by the BPE trainer).
 * Accepts NULL. */
AIK_EXPORT void aik_tokenizer_spec_free(aik_tokenizer_spec *spec);

#ifdef __cplusplus
}
#endif
#endif /* AIK_RUNTIME_TOKENIZER_H */
