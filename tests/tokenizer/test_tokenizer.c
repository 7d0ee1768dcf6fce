/* SPDX-License-Identifier: MIT */
/*
 * runtime/tokenizer: both kinds on small hand-built vocabularies whose
 * tokenization is derived by hand in the comments (exact ids asserted),
 * round trips on arbitrary bytes, special tokens, the -ENOSPC protocol, and
 * blob corruption (one bad field at a time, truncation at every length).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "runtime/tokenizer.h"
#include "runtime/tokenizer_internal.h"
#include "tests/testutil.h"

/* ---- the byte-BPE test vocabulary ----
 * ids 0..255: the byte tokens, id == byte value (GPT-2 mapped texts)
 * 256 "he"  257 "ll"  258 "hell"  259 "hello"  260 "Ġw"  261 "or"
 * 262 "Ġwor"  263 "ld"  264 "Ġworld"  265 "<|endoftext|>" (CONTROL, BOS/EOS)
 * 266 "<tool>" (USER_DEFINED)
 * merges in rank order: h e, l l, he ll, hell o, Ġ w, o r, Ġw or, l d, Ġwor ld */
#define BB_N 267
static char bb_text[256][4];
static const char *bb_tokens[BB_N];
static uint8_t bb_types[BB_N];
static const char *const bb_merges[] = {
    "h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "o r", "\xc4\xa0w or", "l d", "\xc4\xa0wor ld",
};

static void bb_spec(aik_tokenizer_spec *s)
{
    static const char *const extra[] = { "he", "ll", "hell", "hello", "\xc4\xa0w", "or", "\xc4\xa0wor", "ld",
                                         "\xc4\xa0world", "<|endoftext|>", "<tool>" };
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        if (cp < 0x80) {
            bb_text[b][0] = (char)cp;
            bb_text[b][1] = 0;
        } else {
            bb_text[b][0] = (char)(0xc0 | (cp >> 6));
            bb_text[b][1] = (char)(0x80 | (cp & 0x3f));
            bb_text[b][2] = 0;
        }
        bb_tokens[b] = bb_text[b];
        bb_types[b] = AIK_TOKEN_NORMAL;
    }
    for (unsigned i = 0; i < 11; i++) {
        bb_tokens[256 + i] = extra[i];
        bb_types[256 + i] = AIK_TOKEN_NORMAL;
    }
    bb_types[265] = AIK_TOKEN_CONTROL;
    bb_types[266] = AIK_TOKEN_USER_DEFINED;
    memset(s, 0, sizeof(*s));
    s->kind = AIK_TOKENIZER_BYTE_BPE;
    s->n_vocab = BB_N;
    s->tokens = bb_tokens;
    s->token_types = bb_types;
    s->n_merges = sizeof(bb_merges) / sizeof(bb_merges[0]);
    s->merges = bb_merges;
    s->bos_id = s->eos_id = 265;
    s->unk_id = s->pad_id = -1;
    s->chat_template = "{{ messages }}";
}

/* ---- the SPM test vocabulary ----
 * 0 <unk> 1 <s> 2 </s>, 3..258 <0x00>..<0xFF>, then with scores:
 * 259 "▁" -10, 260 "h" -10, 261 "e" -10, 262 "l" -10, 263 "o" -10,
 * 264 "he" -3, 265 "ll" -2, 266 "▁he" -1, 267 "hell" -5, 268 "▁hell" -0.5,
 * 269 "w" -10 */
#define SP_N 270
static char sp_bytes[256][8];
static const char *sp_tokens[SP_N];
static float sp_scores[SP_N];

static void sp_spec(aik_tokenizer_spec *s)
{
    static const char *const pieces[] = { "\xe2\x96\x81", "h", "e", "l", "o", "he", "ll", "\xe2\x96\x81he",
                                          "hell", "\xe2\x96\x81hell", "w" };
    static const float sc[] = { -10, -10, -10, -10, -10, -3, -2, -1, -5, -0.5f, -10 };
    sp_tokens[0] = "<unk>";
    sp_tokens[1] = "<s>";
    sp_tokens[2] = "</s>";
    for (unsigned b = 0; b < 256; b++) {
        snprintf(sp_bytes[b], sizeof(sp_bytes[b]), "<0x%02X>", b);
        sp_tokens[3 + b] = sp_bytes[b];
        sp_scores[3 + b] = 0;
    }
    for (unsigned i = 0; i < 11; i++) {
        sp_tokens[259 + i] = pieces[i];
        sp_scores[259 + i] = sc[i];
    }
    memset(s, 0, sizeof(*s));
    s->kind = AIK_TOKENIZER_SPM_BPE;
    s->n_vocab = SP_N;
    s->tokens = sp_tokens;
    s->scores = sp_scores;
    s->token_types = NULL; /* defaults: unk UNKNOWN, bos/eos CONTROL, <0xXX> BYTE */
    s->unk_id = 0;
    s->bos_id = 1;
    s->eos_id = 2;
    s->pad_id = -1;
    s->add_bos = true;
    s->add_space_prefix = true;
}

static aik_tokenizer *load_spec(const aik_tokenizer_spec *s)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    aik_tokenizer *t = NULL;
    aik_error err;
    char buf[600];
    int r = aik_tokenizer_blob_build(s, &blob, &len, &err);
    ck_assert_msg(r == 0, "build: %d %s", r, aik_error_format(&err, buf, sizeof(buf)));
    r = aik_tokenizer_load(blob, len, &t, &err);
    ck_assert_msg(r == 0, "load: %d %s", r, aik_error_format(&err, buf, sizeof(buf)));
    free(blob);
    return t;
}

static aik_tokenizer *bb_load(void)
{
    aik_tokenizer_spec s;
    bb_spec(&s);
    return load_spec(&s);
}

static aik_tokenizer *sp_load(void)
{
    aik_tokenizer_spec s;
    sp_spec(&s);
    return load_spec(&s);
}

static void expect_ids(const aik_tokenizer *t, const char *text, size_t len, unsigned flags, const int32_t *want,
                       size_t n_want)
{
    int32_t ids[256];
    size_t n = 0;
    int r = aik_tokenizer_encode(t, text, len, flags, ids, 256, &n);
    ck_assert_int_eq(r, 0);
    ck_assert_msg(n == n_want, "'%.*s': got %zu ids, want %zu", (int)len, text, n, n_want);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(ids[i] == want[i], "'%.*s': id[%zu] = %d, want %d", (int)len, text, i, ids[i], want[i]);
}

#define EXPECT(t, str, flags, ...)                                                                     \
    do {                                                                                              \
        const int32_t want_[] = { __VA_ARGS__ };                                                      \
        expect_ids(t, str, sizeof(str) - 1, flags, want_, sizeof(want_) / sizeof(want_[0]));          \
    } while (0)

static void expect_roundtrip(const aik_tokenizer *t, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0, out_len = 0;
    char *out = malloc(len + 16);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(aik_tokenizer_encode_alloc(t, text, len, 0, &ids, &n), 0);
    ck_assert_int_eq(aik_tokenizer_decode(t, ids, n, out, len + 16, &out_len), 0);
    ck_assert_msg(out_len == len && memcmp(out, text, len) == 0, "round trip of %zu bytes gave %zu bytes", len,
                  out_len);
    free(ids);
    free(out);
}

/* ---- byte BPE ---- */

START_TEST(test_bb_merges_by_rank)
{
    aik_tokenizer *t = bb_load();
    /* "hello": (h,e) rank 0 first, then (l,l) rank 1, (he,ll) 2, (hell,o) 3.
     * " world": Ġw (4), or (5), Ġwor (6), ld (7), Ġworld (8). */
    EXPECT(t, "hello world", 0, 259, 264);
    EXPECT(t, "hell", 0, 258);
    /* "helo": he, then no merge with l or o */
    EXPECT(t, "helo", 0, 256, 'l', 'o');
    /* pre-tokenizer: "hello" and "world" without space are separate words;
     * "world" has no Ġ so it becomes w or ld. */
    EXPECT(t, "hello,world", 0, 259, ',', 'w', 261, 263);
    /* spaces: GPT-2 regex \s+(?!\S) keeps the last space for the next word */
    EXPECT(t, "a  world", 0, 'a', ' ', 264);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_basics)
{
    aik_tokenizer *t = bb_load();
    size_t n = 99;
    int32_t ids[4];
    size_t len;

    ck_assert_int_eq(aik_tokenizer_kind(t), AIK_TOKENIZER_BYTE_BPE);
    ck_assert_uint_eq(aik_tokenizer_n_vocab(t), BB_N);
    ck_assert_int_eq(aik_tokenizer_bos_id(t), 265);
    ck_assert_int_eq(aik_tokenizer_eos_id(t), 265);
    ck_assert_int_eq(aik_tokenizer_unk_id(t), -1);
    ck_assert(!aik_tokenizer_add_bos(t));
    ck_assert(aik_tokenizer_is_eog(t, 265));
    ck_assert(!aik_tokenizer_is_eog(t, 259));
    ck_assert(!aik_tokenizer_is_eog(t, -1));
    ck_assert_str_eq(aik_tokenizer_chat_template(t), "{{ messages }}");
    ck_assert_int_eq(aik_tokenizer_find(t, "hello", 5), 259);
    ck_assert_int_eq(aik_tokenizer_find(t, "hellx", 5), -1);
    ck_assert_ptr_null(aik_tokenizer_token_text(t, BB_N, &len));
    ck_assert_ptr_nonnull(aik_tokenizer_token_text(t, 264, &len));
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(aik_tokenizer_token_type(t, 266), AIK_TOKEN_USER_DEFINED);
    ck_assert_int_eq(aik_tokenizer_token_type(t, -5), AIK_TOKEN_UNDEFINED);

    /* empty input: no ids; with ADD_BOS one */
    ck_assert_int_eq(aik_tokenizer_encode(t, "", 0, 0, ids, 4, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(aik_tokenizer_encode(t, NULL, 0, AIK_TOKENIZE_ADD_BOS, ids, 4, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 265);
    /* ADD_SPECIAL follows add_bos/add_eos, both false here */
    EXPECT(t, "hell", AIK_TOKENIZE_ADD_SPECIAL, 258);
    /* bad arguments */
    ck_assert_int_eq(aik_tokenizer_encode(t, "x", 1, 0x80, ids, 4, &n), -EINVAL);
    ck_assert_int_eq(aik_tokenizer_encode(t, NULL, 1, 0, ids, 4, &n), -EINVAL);
    ck_assert_int_eq(aik_tokenizer_encode(t, "x", 1, 0, NULL, 4, &n), -EINVAL);
    ck_assert_int_eq(aik_tokenizer_encode(t, "x", (size_t)AIK_TOKENIZER_MAX_INPUT + 1, 0, ids, 4, &n), -E2BIG);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_enospc)
{
    aik_tokenizer *t = bb_load();
    int32_t ids[8] = { -7, -7, -7, -7, -7, -7, -7, -7 };
    size_t n = 0, len = 0;
    char buf[32];
    const int32_t hw[] = { 259, 264 };

    /* size query, then too small, then exact */
    ck_assert_int_eq(aik_tokenizer_encode(t, "hello world x", 13, 0, NULL, 0, &n), -ENOSPC);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(aik_tokenizer_encode(t, "hello world x", 13, 0, ids, 3, &n), -ENOSPC);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[0], -7); /* nothing written on failure */
    ck_assert_int_eq(aik_tokenizer_encode(t, "hello world x", 13, 0, ids, 4, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ids[2], ' '); /* " x": Ġ and x do not merge */
    ck_assert_int_eq(ids[3], 'x');

    ck_assert_int_eq(aik_tokenizer_decode(t, hw, 2, buf, 5, &len), -ENOSPC);
    ck_assert_uint_eq(len, 11);
    ck_assert_int_eq(aik_tokenizer_decode(t, hw, 2, buf, 11, &len), 0);
    ck_assert_uint_eq(len, 11);
    ck_assert(memcmp(buf, "hello world", 11) == 0);
    ck_assert_int_eq(aik_tokenizer_decode_token(t, 264, buf, 2, &len), -ENOSPC);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(aik_tokenizer_decode_token(t, 264, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(buf, " world", 6) == 0);
    ck_assert_int_eq(aik_tokenizer_decode_token(t, BB_N, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(aik_tokenizer_decode_token(t, -1, buf, sizeof(buf), &len), -EINVAL);
    {
        const int32_t bad[] = { 259, BB_N };
        ck_assert_int_eq(aik_tokenizer_decode(t, bad, 2, buf, sizeof(buf), &len), -EINVAL);
    }
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_special)
{
    aik_tokenizer *t = bb_load();
    char buf[64];
    size_t len;
    const int32_t eot[] = { 259, 265, 266 };

    /* CONTROL text is plain text unless PARSE_SPECIAL: "<|" "endoftext" "|>" */
    EXPECT(t, "hello<|endoftext|>", 0, 259, '<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>');
    EXPECT(t, "hello<|endoftext|>", AIK_TOKENIZE_PARSE_SPECIAL, 259, 265);
    EXPECT(t, "<|endoftext|><|endoftext|>", AIK_TOKENIZE_PARSE_SPECIAL, 265, 265);
    /* USER_DEFINED text is always matched */
    EXPECT(t, "a<tool>b", 0, 'a', 266, 'b');
    EXPECT(t, "<tool><tool>", 0, 266, 266);
    EXPECT(t, "hello world", AIK_TOKENIZE_ADD_BOS, 265, 259, 264);
    /* decode: CONTROL renders as nothing, USER_DEFINED verbatim */
    ck_assert_int_eq(aik_tokenizer_decode(t, eot, 3, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 11);
    ck_assert(memcmp(buf, "hello<tool>", 11) == 0);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_invalid_utf8)
{
    aik_tokenizer *t = bb_load();
    /* invalid bytes match no pattern branch: they form a word of their own
     * and are encoded as byte tokens; the valid rest is unaffected */
    EXPECT(t, "\xff\xfehello", 0, 0xff, 0xfe, 259);
    EXPECT(t, "hello\xc3", 0, 259, 0xc3);
    /* valid UTF-8 is split into bytes where the vocab has no merges */
    EXPECT(t, "\xc3\xa9", 0, 0xc3, 0xa9);
    {
        static const char mixed[] = "\xff\xfe\x80hello \xc3(\xed\xa0\x80 world\xf4\x90\x80\x80";
        expect_roundtrip(t, mixed, sizeof(mixed) - 1);
    }
    aik_tokenizer_free(t);
}
END_TEST

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random byte strings, biased towards the vocab's letters, spaces and UTF-8
 * lead/continuation bytes so that merges and invalid sequences both occur. */
static size_t random_text(char *buf, size_t cap)
{
    static const char alphabet[] = "helowrd  \n\t,<|>tool";
    size_t n = rng() % cap;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = rng();
        switch (x % 4) {
        case 0:
            buf[i] = (char)(x >> 8);
            break;
        case 1:
            buf[i] = (char)(0x80 | ((x >> 8) & 0x7f));
            break;
        default:
            buf[i] = alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
        }
    }
    return n;
}

START_TEST(test_bb_roundtrip_random)
{
    aik_tokenizer *t = bb_load();
    char text[300];
    for (int it = 0; it < 1000; it++) {
        size_t n = random_text(text, sizeof(text));
        expect_roundtrip(t, text, n);
    }
    /* every single byte and every byte pair */
    for (unsigned a = 0; a < 256; a++) {
        text[0] = (char)a;
        expect_roundtrip(t, text, 1);
        for (unsigned b = 0; b < 256; b += 7) {
            text[1] = (char)b;
            expect_roundtrip(t, text, 2);
        }
    }
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_long_input)
{
    /* 256 KiB of one letter is a single pre-token: the heap-based merge
     * handles it in milliseconds (an O(n^2) rescan would take minutes). */
    aik_tokenizer *t = bb_load();
    size_t n = 1u << 18;
    char *text = malloc(n);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        text[i] = 'l';
    ck_assert_int_eq(aik_tokenizer_encode_alloc(t, text, n, 0, &ids, &n_ids), 0);
    /* "ll" merges pairwise left to right: n/2 tokens of "ll" */
    ck_assert_uint_eq(n_ids, n / 2);
    for (size_t i = 0; i < n_ids; i++)
        ck_assert_int_eq(ids[i], 257);
    free(ids);
    free(text);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_custom_regex_ignore_merges)
{
    aik_tokenizer_spec s;
    aik_tokenizer *t;
    bb_spec(&s);
    /* words are single letters or runs of non-letters: no merges can span */
    s.pre_regex = "\\p{L}|[^\\p{L}]+";
    t = load_spec(&s);
    EXPECT(t, "hello", 0, 'h', 'e', 'l', 'l', 'o');
    aik_tokenizer_free(t);

    bb_spec(&s);
    s.ignore_merges = true;
    t = load_spec(&s);
    /* "hello" is a token, emitted whole; "hellx" is merged normally */
    EXPECT(t, "hello hellx", 0, 259, 0x20, 258, 'x');
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_default_types)
{
    aik_tokenizer_spec s;
    aik_tokenizer *t;
    bb_spec(&s);
    s.token_types = NULL;
    t = load_spec(&s);
    /* bos/eos default to CONTROL; everything else NORMAL */
    ck_assert_int_eq(aik_tokenizer_token_type(t, 265), AIK_TOKEN_CONTROL);
    ck_assert_int_eq(aik_tokenizer_token_type(t, 266), AIK_TOKEN_NORMAL);
    EXPECT(t, "hello<|endoftext|>", AIK_TOKENIZE_PARSE_SPECIAL, 259, 265);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_bb_pretokenizer_splits)
{
    /* Merges that would span pre-token boundaries must not fire. Vocab:
     * bytes, then 256 "ĠĠ" 257 "'s" 258 "st" 259 "23" 260 "12" 261 "ĊĊ";
     * "2 3" is ranked before "1 2". */
    static const char *const merges[] = { "\xc4\xa0 \xc4\xa0", "' s", "s t", "2 3", "1 2", "\xc4\x8a \xc4\x8a" };
    static const char *const extra[] = { "\xc4\xa0\xc4\xa0", "'s", "st", "23", "12", "\xc4\x8a\xc4\x8a" };
    const char *toks[262];
    aik_tokenizer_spec s;
    aik_tokenizer *t;

    bb_spec(&s); /* fills bb_tokens[0..255] */
    memcpy(toks, bb_tokens, 256 * sizeof(char *));
    for (int i = 0; i < 6; i++)
        toks[256 + i] = extra[i];
    memset(&s, 0, sizeof(s));
    s.kind = AIK_TOKENIZER_BYTE_BPE;
    s.n_vocab = 262;
    s.tokens = toks;
    s.n_merges = 6;
    s.merges = merges;
    s.bos_id = s.eos_id = s.unk_id = s.pad_id = -1;
    t = load_spec(&s);
    /* \s+(?!\S) leaves the last space to the next word: "a" "  " " b" */
    EXPECT(t, "a   b", 0, 'a', 256, ' ', 'b');
    /* contractions are words of their own */
    EXPECT(t, "it's", 0, 'i', 't', 257);
    EXPECT(t, "x'st", 0, 'x', 257, 't');
    /* one number word; rank beats position: (2,3) before (1,2) */
    EXPECT(t, "123", 0, '1', 259);
    /* trailing newlines are one word; before text they split */
    EXPECT(t, "a\n\n", 0, 'a', 261);
    EXPECT(t, "\n\nx", 0, '\n', '\n', 'x');
    aik_tokenizer_free(t);
}
END_TEST

/* ---- SPM ---- */

START_TEST(test_sp_merges_by_score)
{
    aik_tokenizer *t = sp_load();
    /* "▁hello": ll (-2) first, then he (-3), then ▁he (-1) appears and wins,
     * then ▁hell (-0.5); "▁hell"+"o" is no piece. */
    EXPECT(t, "hello", 0, 268, 263);
    EXPECT(t, "hello", AIK_TOKENIZE_ADD_SPECIAL, 1, 268, 263);
    /* spaces become ▁; "▁w" and "wo" are not pieces */
    EXPECT(t, "hello wo", 0, 268, 263, 259, 269, 263);
    /* byte fallback: é = C3 A9 has no piece -> <0xC3> <0xA9> */
    EXPECT(t, "h\xc3\xa9", 0, 259, 260, 3 + 0xc3, 3 + 0xa9);
    /* a lead byte without its continuation bytes is a symbol of its own;
     * no piece, so each byte falls back */
    EXPECT(t, "\xe2" "ab", 0, 259, 3 + 0xe2, 3 + 'a', 3 + 'b');
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_sp_special_and_decode)
{
    aik_tokenizer *t = sp_load();
    char buf[64];
    size_t len;
    const int32_t ids1[] = { 268, 263 };
    const int32_t ids2[] = { 1, 268, 263 };
    const int32_t ids3[] = { 0, 3 + 'A' };

    /* After a special token the space prefix is added again. */
    EXPECT(t, "hello<s>hello", AIK_TOKENIZE_PARSE_SPECIAL, 268, 263, 1, 268, 263);
    /* Without PARSE_SPECIAL "<s>" is text: < s > are byte-fallback */
    EXPECT(t, "<s>", 0, 259, 3 + '<', 3 + 's', 3 + '>');
    ck_assert_int_eq(aik_tokenizer_decode(t, ids1, 2, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    /* llama.cpp: with BOS first, the leading space is kept */
    ck_assert_int_eq(aik_tokenizer_decode(t, ids2, 3, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert(memcmp(buf, " hello", 6) == 0);
    /* UNKNOWN renders as nothing, BYTE as its byte */
    ck_assert_int_eq(aik_tokenizer_decode(t, ids3, 2, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(buf[0], 'A');
    ck_assert_int_eq(aik_tokenizer_decode_token(t, 268, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(buf, " hell", 5) == 0);
    ck_assert_int_eq(aik_tokenizer_token_type(t, 0), AIK_TOKEN_UNKNOWN);
    ck_assert_int_eq(aik_tokenizer_token_type(t, 1), AIK_TOKEN_CONTROL);
    ck_assert_int_eq(aik_tokenizer_token_type(t, 3), AIK_TOKEN_BYTE);
    ck_assert(aik_tokenizer_token_score(t, 268) == -0.5f);
    ck_assert(aik_tokenizer_is_eog(t, 2));
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_sp_roundtrip_random)
{
    aik_tokenizer *t = sp_load();
    char text[300];
    for (int it = 0; it < 1000; it++) {
        size_t n = random_text(text, sizeof(text));
        expect_roundtrip(t, text, n);
    }
    expect_roundtrip(t, " leading and trailing  ", 23);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_sp_tie_by_position)
{
    /* equal scores: the leftmost pair merges first (llama.cpp's queue order) */
    static const char *const toks[] = { "<unk>", "\xe2\x96\x81", "a", "b", "c", "ab", "bc" };
    float sc[] = { 0, -5, -5, -5, -5, -1, -1 };
    aik_tokenizer_spec s = { .kind = AIK_TOKENIZER_SPM_BPE, .n_vocab = 7, .tokens = toks, .scores = sc,
                             .unk_id = 0, .bos_id = -1, .eos_id = -1, .pad_id = -1, .add_space_prefix = true };
    aik_tokenizer *t = load_spec(&s);
    EXPECT(t, "abc", 0, 1, 5, 4);
    aik_tokenizer_free(t);
    sc[6] = -0.5f; /* now "bc" scores higher */
    t = load_spec(&s);
    EXPECT(t, "abc", 0, 1, 2, 6);
    aik_tokenizer_free(t);
    /* without add_space_prefix there is no leading ▁ */
    s.add_space_prefix = false;
    t = load_spec(&s);
    EXPECT(t, "abc", 0, 2, 6);
    EXPECT(t, "a bc", 0, 2, 1, 6);
    aik_tokenizer_free(t);
}
END_TEST

START_TEST(test_sp_no_byte_tokens)
{
    /* Without <0xXX> tokens a missing piece falls back to <unk>; without an
     * unknown token, encoding fails cleanly. */
    static const char *const toks[] = { "<unk>", "\xe2\x96\x81", "a" };
    aik_tokenizer_spec s = { .kind = AIK_TOKENIZER_SPM_BPE, .n_vocab = 3, .tokens = toks,
                             .unk_id = 0, .bos_id = -1, .eos_id = -1, .pad_id = -1,
                             .add_space_prefix = true };
    aik_tokenizer *t = load_spec(&s);
    int32_t ids[8];
    size_t n;
    EXPECT(t, "ab", 0, 1, 2, 0);
    aik_tokenizer_free(t);
    s.unk_id = -1;
    t = load_spec(&s);
    ck_assert_int_eq(aik_tokenizer_encode(t, "ab", 2, 0, ids, 8, &n), -EILSEQ);
    ck_assert_int_eq(aik_tokenizer_encode(t, "a", 1, AIK_TOKENIZE_ADD_BOS, ids, 8, &n), -EINVAL);
    aik_tokenizer_free(t);
}
END_TEST

/* ---- blob ---- */

static void build_bb_blob(uint8_t **blob, size_t *len)
{
    aik_tokenizer_spec s;
    aik_error err;
    bb_spec(&s);
    ck_assert_int_eq(aik_tokenizer_blob_build(&s, blob, len, &err), 0);
}

START_TEST(test_blob_export_roundtrip)
{
    for (int kind = 0; kind < 2; kind++) {
        aik_tokenizer_spec s, *out = NULL;
        uint8_t *b1, *b2;
        size_t l1, l2;
        aik_tokenizer *t;
        aik_error err;
        if (kind == 0)
            bb_spec(&s);
        else
            sp_spec(&s);
        ck_assert_int_eq(aik_tokenizer_blob_build(&s, &b1, &l1, &err), 0);
        ck_assert_int_eq(aik_tokenizer_load(b1, l1, &t, &err), 0);
        ck_assert_int_eq(aik_tokenizer_to_spec(t, &out), 0);
        ck_assert_uint_eq(out->n_vocab, s.n_vocab);
        ck_assert_uint_eq(out->n_merges, s.n_merges);
        for (uint32_t i = 0; i < s.n_merges; i++)
            ck_assert_str_eq(out->merges[i], s.merges[i]);
        ck_assert_int_eq(aik_tokenizer_blob_build(out, &b2, &l2, &err), 0);
        ck_assert_uint_eq(l1, l2);
        ck_assert(memcmp(b1, b2, l1) == 0);
        /* deterministic: building twice gives the same bytes */
        free(b2);
        ck_assert_int_eq(aik_tokenizer_blob_build(&s, &b2, &l2, &err), 0);
        ck_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
        free(b1);
        free(b2);
        aik_tokenizer_spec_free(out);
        aik_tokenizer_free(t);
    }
    aik_tokenizer_spec_free(NULL);
    aik_tokenizer_free(NULL);
}
END_TEST

START_TEST(test_blob_truncation)
{
    uint8_t *blob;
    size_t len;
    build_bb_blob(&blob, &len);
    for (size_t l = 0; l < len; l++) {
        aik_tokenizer *t = (aik_tokenizer *)0x1;
        aik_error err;
        uint8_t *copy = malloc(l ? l : 1); /* exact-size copy: ASan catches over-reads */
        memcpy(copy, blob, l);
        aik_error_clear(&err);
        int r = aik_tokenizer_load(copy, l, &t, &err);
        ck_assert_msg(r < 0, "truncated to %zu bytes loaded", l);
        ck_assert_int_eq(err.code, r);
        ck_assert_msg(err.where[0] != 0, "no field named at length %zu", l);
        ck_assert_ptr_eq(t, (aik_tokenizer *)0x1); /* ret untouched */
        free(copy);
    }
    free(blob);
}
END_TEST

static void wr32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t sec_off(const uint8_t *b, int i)
{
    return rd32le(b + 48 + 16 * i);
}

/* Apply one corruption to a fresh copy and expect a clean rejection naming
 * the field. */
typedef void (*corrupt_fn)(uint8_t *b, size_t *len);

static void expect_reject(corrupt_fn fn, int want_code, const char *want_where)
{
    uint8_t *blob, *copy;
    size_t len;
    aik_tokenizer *t = NULL;
    aik_error err;
    int r;
    build_bb_blob(&blob, &len);
    copy = malloc(len + 8);
    memcpy(copy, blob, len);
    fn(copy, &len);
    aik_error_clear(&err);
    r = aik_tokenizer_load(copy, len, &t, &err);
    ck_assert_msg(r == want_code, "%s: got %d (%s: %s), want %d", want_where, r, err.where, err.message,
                  want_code);
    ck_assert_msg(strstr(err.where, want_where) != NULL, "where '%s' lacks '%s'", err.where, want_where);
    ck_assert_ptr_null(t);
    free(copy);
    free(blob);
}

static void c_magic(uint8_t *b, size_t *l) { b[0] = 'X'; (void)l; }
static void c_version(uint8_t *b, size_t *l) { wr32le(b + 8, 2); (void)l; }
static void c_header_size(uint8_t *b, size_t *l) { wr32le(b + 12, 100); (void)l; }
static void c_header_size_big(uint8_t *b, size_t *l) { wr32le(b + 12, 0xfffffff0u); (void)l; }
static void c_kind(uint8_t *b, size_t *l) { wr32le(b + 16, 3); (void)l; }
static void c_flags(uint8_t *b, size_t *l) { wr32le(b + 20, 0x100); (void)l; }
static void c_flags_bos(uint8_t *b, size_t *l) { wr32le(b + 20, 1); wr32le(b + 32, 0xffffffffu); (void)l; }
static void c_n_vocab0(uint8_t *b, size_t *l) { wr32le(b + 24, 0); (void)l; }
static void c_n_vocab_big(uint8_t *b, size_t *l) { wr32le(b + 24, 0xffffffffu); (void)l; }
static void c_n_vocab_plus(uint8_t *b, size_t *l) { wr32le(b + 24, BB_N + 1); (void)l; }
static void c_n_merges(uint8_t *b, size_t *l) { wr32le(b + 28, 10); (void)l; }
static void c_n_merges_big(uint8_t *b, size_t *l) { wr32le(b + 28, 0x7fffffffu); (void)l; }
static void c_bos(uint8_t *b, size_t *l) { wr32le(b + 32, BB_N); (void)l; }
static void c_eos(uint8_t *b, size_t *l) { wr32le(b + 36, (uint32_t)-2); (void)l; }
static void c_sec_overflow(uint8_t *b, size_t *l) { wr32le(b + 56 + 16, 0xffffffffu); wr32le(b + 60 + 16, 0xffffffffu); (void)l; }
static void c_sec_overlap(uint8_t *b, size_t *l) { wr32le(b + 48 + 16, (uint32_t)sec_off(b, 0)); (void)l; }
static void c_sec_header(uint8_t *b, size_t *l) { wr32le(b + 48, 8); (void)l; }
static void c_sec_align(uint8_t *b, size_t *l)
{
    /* move the merges section one byte later: misaligned */
    wr32le(b + 48 + 16 * 4, (uint32_t)sec_off(b, 4) + 1);
    (void)l;
}
static void c_sec_empty_off(uint8_t *b, size_t *l) { wr32le(b + 48 + 16 * 2, 4); (void)l; } /* scores absent */
static void c_types_size(uint8_t *b, size_t *l) { wr32le(b + 56 + 16 * 3, BB_N - 1); (void)l; }
static void c_trailing(uint8_t *b, size_t *l) { b[*l] = 0; (*l)++; }
static void c_token_end_order(uint8_t *b, size_t *l) { wr32le(b + sec_off(b, 0) + 4 * 10, 0); (void)l; }
static void c_token_end_last(uint8_t *b, size_t *l)
{
    uint64_t o = sec_off(b, 0) + 4 * (BB_N - 1);
    wr32le(b + o, rd32le(b + o) - 1);
    (void)l;
}
static void c_type_value(uint8_t *b, size_t *l) { b[sec_off(b, 3) + 5] = 7; (void)l; }
static void c_merge_id(uint8_t *b, size_t *l) { wr32le(b + sec_off(b, 4) + 4, BB_N); (void)l; }
static void c_merge_result(uint8_t *b, size_t *l)
{
    /* merge 0 "h e" -> "h x": "hx" is no token */
    wr32le(b + sec_off(b, 4) + 4, 'x');
    (void)l;
}
static void c_merge_empty(uint8_t *b, size_t *l)
{
    /* make token 265 empty (266 absorbs its text) and merge 0 use it */
    wr32le(b + sec_off(b, 0) + 4 * 265, rd32le(b + sec_off(b, 0) + 4 * 264));
    wr32le(b + sec_off(b, 4) + 4, 265);
    (void)l;
}
static void c_byte_missing(uint8_t *b, size_t *l)
{
    /* rename byte token 'A' to 'B': 'A' has no token any more */
    uint64_t start = rd32le(b + sec_off(b, 0) + 4 * ('A' - 1));
    b[sec_off(b, 1) + start] = 'B';
    (void)l;
}
static void c_regex(uint8_t *b, size_t *l) { b[sec_off(b, 5)] = '('; (void)l; }
static void c_regex_nul(uint8_t *b, size_t *l) { b[sec_off(b, 5) + 2] = 0; (void)l; }
static void c_template_nul(uint8_t *b, size_t *l) { b[sec_off(b, 6)] = 0; (void)l; }

START_TEST(test_blob_corruption)
{
    expect_reject(c_magic, -EBADMSG, "header.magic");
    expect_reject(c_version, -EPROTONOSUPPORT, "header.version_major");
    expect_reject(c_header_size, -EBADMSG, "header.header_size");
    expect_reject(c_header_size_big, -EBADMSG, "header.header_size");
    expect_reject(c_kind, -EINVAL, "header.kind");
    expect_reject(c_flags, -EINVAL, "header.flags");
    expect_reject(c_flags_bos, -EINVAL, "header.flags");
    expect_reject(c_n_vocab0, -EINVAL, "header.n_vocab");
    expect_reject(c_n_vocab_big, -E2BIG, "header.n_vocab");
    expect_reject(c_n_vocab_plus, -EBADMSG, "section.token_ends");
    expect_reject(c_n_merges, -EBADMSG, "section.merges");
    expect_reject(c_n_merges_big, -E2BIG, "header.n_merges");
    expect_reject(c_bos, -EINVAL, "header.bos_id");
    expect_reject(c_eos, -EINVAL, "header.eos_id");
    expect_reject(c_sec_overflow, -EBADMSG, "section.token_text");
    expect_reject(c_sec_overlap, -EBADMSG, "section.token_text");
    expect_reject(c_sec_header, -EBADMSG, "section.token_ends");
    expect_reject(c_sec_align, -EBADMSG, "section.merges");
    expect_reject(c_sec_empty_off, -EBADMSG, "section.scores");
    expect_reject(c_types_size, -EBADMSG, "section.types");
    expect_reject(c_trailing, -EBADMSG, "blob");
    expect_reject(c_token_end_order, -EINVAL, "token_ends[10]");
    expect_reject(c_token_end_last, -EINVAL, "token_ends");
    expect_reject(c_type_value, -EINVAL, "types[5]");
    expect_reject(c_merge_id, -EINVAL, "merges[0]");
    expect_reject(c_merge_result, -EINVAL, "merges[0]");
    expect_reject(c_merge_empty, -EINVAL, "merges[0]");
    expect_reject(c_byte_missing, -EINVAL, "tokens");
    expect_reject(c_regex, -EINVAL, "pre_regex");
    expect_reject(c_regex_nul, -EINVAL, "pre_regex");
    expect_reject(c_template_nul, -EINVAL, "chat_template");
}
END_TEST

START_TEST(test_blob_spm_corruption)
{
    aik_tokenizer_spec s;
    uint8_t *blob;
    size_t len;
    aik_tokenizer *t = NULL;
    aik_error err;
    float nan = NAN;
    uint32_t bits;

    sp_spec(&s);
    ck_assert_int_eq(aik_tokenizer_blob_build(&s, &blob, &len, &err), 0);
    /* NaN score */
    memcpy(&bits, &nan, 4);
    wr32le(blob + sec_off(blob, 2) + 4 * 7, bits);
    ck_assert_int_eq(aik_tokenizer_load(blob, len, &t, &err), -EINVAL);
    ck_assert_str_eq(err.where, "scores[7]");
    free(blob);

    /* a BYTE token whose text is not <0xXX> */
    {
        uint8_t types[SP_N];
        for (int i = 0; i < SP_N; i++)
            types[i] = AIK_TOKEN_NORMAL;
        types[260] = AIK_TOKEN_BYTE;
        s.token_types = types;
        ck_assert_int_eq(aik_tokenizer_blob_build(&s, &blob, &len, &err), -EINVAL);
        ck_assert_str_eq(err.where, "types[260]");
    }
}
END_TEST

START_TEST(test_build_rejects)
{
    aik_tokenizer_spec s;
    uint8_t *blob = (uint8_t *)0x1;
    size_t len = 77;
    aik_error err;
    static const char *const bad_merge1[] = { "he" };
    static const char *const bad_merge2[] = { "h qq" };
    static const char *const bad_merge3[] = { "h x" };
    const char *null_tok[BB_N];

#define REJECT(code_, where_)                                                     \
    do {                                                                          \
        aik_error_clear(&err);                                                    \
        ck_assert_int_eq(aik_tokenizer_blob_build(&s, &blob, &len, &err), code_); \
        ck_assert_str_eq(err.where, where_);                                      \
        ck_assert_ptr_eq(blob, (uint8_t *)0x1);                                  \
        ck_assert_uint_eq(len, 77);                                              \
    } while (0)

    bb_spec(&s); s.kind = 0; REJECT(-EINVAL, "kind");
    bb_spec(&s); s.n_vocab = 0; REJECT(-EINVAL, "n_vocab");
    bb_spec(&s); s.tokens = NULL; REJECT(-EINVAL, "tokens");
    bb_spec(&s); s.merges = NULL; REJECT(-EINVAL, "merges");
    bb_spec(&s); s.bos_id = BB_N; REJECT(-EINVAL, "bos_id");
    bb_spec(&s); s.pad_id = -3; REJECT(-EINVAL, "pad_id");
    bb_spec(&s); s.eos_id = -1; s.add_eos = true; REJECT(-EINVAL, "add_eos");
    bb_spec(&s); s.n_merges = 1; s.merges = bad_merge1; REJECT(-EINVAL, "merges[0]");
    bb_spec(&s); s.n_merges = 1; s.merges = bad_merge2; REJECT(-EINVAL, "merges[0]");
    bb_spec(&s); s.n_merges = 1; s.merges = bad_merge3; REJECT(-EINVAL, "merges[0]");
    bb_spec(&s); s.pre_regex = "(?<"; REJECT(-EINVAL, "pre_regex");
    bb_spec(&s); s.pre_regex = ""; REJECT(-EINVAL, "pre_regex");
    bb_spec(&s);
    memcpy(null_tok, bb_tokens, sizeof(null_tok));
    null_tok[100] = NULL;
    s.tokens = null_tok;
    REJECT(-EINVAL, "tokens[100]");
    bb_spec(&s); s.n_vocab = 200; s.n_merges = 0; s.bos_id = s.eos_id = -1; REJECT(-EINVAL, "tokens");
#undef REJECT
    /* SPM ignores merges (even malformed ones) */
    sp_spec(&s);
    s.n_merges = 1;
    s.merges = bad_merge1;
    ck_assert_int_eq(aik_tokenizer_blob_build(&s, &blob, &len, &err), 0);
    {
        aik_tokenizer *t = NULL;
        ck_assert_int_eq(aik_tokenizer_load(blob, len, &t, &err), 0);
        EXPECT(t, "hello", 0, 268, 263);
        aik_tokenizer_free(t);
    }
    free(blob);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bb_merges_by_rank);
    tcase_add_test(tc, test_bb_basics);
    tcase_add_test(tc, test_bb_enospc);
    tcase_add_test(tc, test_bb_special);
    tcase_add_test(tc, test_bb_invalid_utf8);
    tcase_add_test(tc, test_bb_roundtrip_random);
    tcase_add_test(tc, test_bb_long_input);
    tcase_add_test(tc, test_bb_custom_regex_ignore_merges);
    tcase_add_test(tc, test_bb_default_types);
    tcase_add_test(tc, test_bb_pretokenizer_splits);
    tcase_add_test(tc, test_sp_merges_by_score);
    tcase_add_test(tc, test_sp_special_and_decode);
    tcase_add_test(tc, test_sp_roundtrip_random);
    tcase_add_test(tc, test_sp_tie_by_position);
    tcase_add_test(tc, test_sp_no_byte_tokens);
    tcase_add_test(tc, test_blob_export_roundtrip);
    tcase_add_test(tc, test_blob_truncation);
    tcase_add_test(tc, test_blob_corruption);
    tcase_add_test(tc, test_blob_spm_corruption);
    tcase_add_test(tc, test_build_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(suite());
}
