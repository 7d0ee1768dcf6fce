/* SPDX-License-Identifier: MIT */
/*
 * train/bpe_trainer: hand-derivable merges, the documented tie-breaking,
 * determinism (same input -> identical blob bytes), compression against raw
 * bytes, round trips through the trained tokenizer, special tokens, option
 * validation. With argument --slow: 4096-token vocabulary on ~10 MB of text
 * under a minute.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "runtime/tokenizer.h"
#include "tests/testutil.h"
#include "train/bpe_trainer.h"

static aik_tokenizer *load(const uint8_t *blob, size_t len)
{
    aik_tokenizer *t = NULL;
    aik_error err;
    ck_assert_int_eq(aik_tokenizer_load(blob, len, &t, &err), 0);
    return t;
}

/* Deterministic English-like corpus: sentences from a word list. */
static char *make_corpus(size_t n, size_t *ret_len)
{
    static const char *const words[] = {
        "the", "model", "kernel", "token", "tokenizer", "loads", "runs", "a", "small", "language",
        "of", "and", "with", "graph", "package", "verified", "signed", "module", "memory", "fast",
        "caf\xc3\xa9", "na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac", "2026", "42", "it's", "don't",
    };
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char *buf = malloc(n + 64);
    size_t len = 0;
    ck_assert_ptr_nonnull(buf);
    while (len < n) {
        size_t wc = 4 + (x % 9);
        for (size_t i = 0; i < wc && len < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *w = words[x % (sizeof(words) / sizeof(words[0]))];
            size_t wl = strlen(w);
            if (i)
                buf[len++] = ' ';
            memcpy(buf + len, w, wl);
            len += wl;
        }
        buf[len++] = (x >> 20) % 3 ? '.' : ',';
        buf[len++] = (x >> 24) % 5 ? ' ' : '\n';
    }
    *ret_len = len;
    return buf;
}

START_TEST(test_hand_derived)
{
    /* words: "ab" x1, " ab" x3, " cd" x1. Pair counts: (a,b) 4, (Ġ,a) 3,
     * (Ġ,c) 1, (c,d) 1 -> merge "a b" (id 256); then (Ġ,ab) 3 -> "Ġ ab"
     * (id 257). vocab_size 259 leaves room for exactly those two. */
    static const char text[] = "ab ab ab ab cd";
    aik_bpe_trainer_opts o = { .vocab_size = 259 };
    uint8_t *blob;
    size_t len;
    aik_error err;
    aik_tokenizer *t;
    aik_tokenizer_spec *spec;
    int32_t ids[8];
    size_t n;

    ck_assert_int_eq(aik_bpe_train(&o, text, sizeof(text) - 1, &blob, &len, &err), 0);
    t = load(blob, len);
    ck_assert_uint_eq(aik_tokenizer_n_vocab(t), 259);
    ck_assert_int_eq(aik_tokenizer_bos_id(t), 258);
    ck_assert_int_eq(aik_tokenizer_eos_id(t), 258);
    ck_assert_int_eq(aik_tokenizer_token_type(t, 258), AIK_TOKEN_CONTROL);
    ck_assert_int_eq(aik_tokenizer_find(t, "<|endoftext|>", 13), 258);
    ck_assert_int_eq(aik_tokenizer_to_spec(t, &spec), 0);
    ck_assert_uint_eq(spec->n_merges, 2);
    ck_assert_str_eq(spec->merges[0], "a b");
    ck_assert_str_eq(spec->merges[1], "\xc4\xa0 ab");
    ck_assert_int_eq(aik_tokenizer_encode(t, " ab ab cd", 9, 0, ids, 8, &n), 0);
    ck_assert_uint_eq(n, 5); /* " cd": Ġ c d, no merges learned for it */
    ck_assert_int_eq(ids[0], 257);
    ck_assert_int_eq(ids[1], 257);
    ck_assert_int_eq(ids[2], ' ');
    ck_assert_int_eq(ids[3], 'c');
    ck_assert_int_eq(ids[4], 'd');
    aik_tokenizer_spec_free(spec);
    aik_tokenizer_free(t);
    free(blob);
}
END_TEST

START_TEST(test_tie_breaking)
{
    /* every pair occurs once (min_frequency 1): ties go to the smaller left
     * id, then the smaller right id: (Ġ=32, z) before (x=120, y); then
     * (x, y) before (Ġz=256, w). */
    static const char text[] = "xy zw";
    aik_bpe_trainer_opts o = { .vocab_size = 1000, .min_frequency = 1 };
    aik_bpe_trainer *tr;
    uint8_t *blob;
    size_t len;
    aik_tokenizer *t;
    aik_tokenizer_spec *spec;

    ck_assert_int_eq(aik_bpe_trainer_new(&o, &tr, NULL), 0);
    ck_assert_int_eq(aik_bpe_trainer_add(tr, text, sizeof(text) - 1, NULL), 0);
    ck_assert_int_eq(aik_bpe_trainer_finish(tr, &blob, &len, NULL), 0);
    ck_assert_uint_eq(aik_bpe_trainer_n_merges(tr), 3);
    ck_assert_int_eq(aik_bpe_trainer_finish(tr, &blob, &len, NULL), -EINVAL);
    ck_assert_int_eq(aik_bpe_trainer_add(tr, "x", 1, NULL), -EINVAL);
    aik_bpe_trainer_free(tr);
    t = load(blob, len);
    ck_assert_int_eq(aik_tokenizer_to_spec(t, &spec), 0);
    ck_assert_uint_eq(spec->n_merges, 3);
    ck_assert_str_eq(spec->merges[0], "\xc4\xa0 z");
    ck_assert_str_eq(spec->merges[1], "x y");
    ck_assert_str_eq(spec->merges[2], "\xc4\xa0z w");
    /* stopped because no pairs were left, not at vocab_size */
    ck_assert_uint_eq(aik_tokenizer_n_vocab(t), 256 + 3 + 1);
    aik_tokenizer_spec_free(spec);
    aik_tokenizer_free(t);
    free(blob);
}
END_TEST

START_TEST(test_deterministic_and_compresses)
{
    size_t clen, len1, len2, n_ids, out_len;
    char *corpus = make_corpus(300000, &clen);
    /* the corpus has 27 distinct words: ~380 merges exhaust it */
    aik_bpe_trainer_opts o = { .vocab_size = 350 };
    uint8_t *b1, *b2;
    aik_error err;
    aik_tokenizer *t;
    int32_t *ids;
    char *out = malloc(clen);

    ck_assert_int_eq(aik_bpe_train(&o, corpus, clen, &b1, &len1, &err), 0);
    ck_assert_int_eq(aik_bpe_train(&o, corpus, clen, &b2, &len2, &err), 0);
    ck_assert_uint_eq(len1, len2);
    ck_assert(memcmp(b1, b2, len1) == 0);
    t = load(b1, len1);
    ck_assert_uint_eq(aik_tokenizer_n_vocab(t), 350);
    ck_assert_int_eq(aik_tokenizer_encode_alloc(t, corpus, clen, 0, &ids, &n_ids), 0);
    /* whole words of the list become single tokens: at least 3x fewer */
    ck_assert_msg(n_ids * 3 < clen, "%zu tokens for %zu bytes", n_ids, clen);
    ck_assert_int_eq(aik_tokenizer_decode(t, ids, n_ids, out, clen, &out_len), 0);
    ck_assert_uint_eq(out_len, clen);
    ck_assert(memcmp(out, corpus, clen) == 0);
    free(ids);
    /* a different vocabulary size gives a different (smaller) blob */
    free(b2);
    o.vocab_size = 300;
    ck_assert_int_eq(aik_bpe_train(&o, corpus, clen, &b2, &len2, &err), 0);
    ck_assert(len2 < len1);
    aik_tokenizer_free(t);
    free(b1);
    free(b2);
    free(out);
    free(corpus);
}
END_TEST

START_TEST(test_specials_and_options)
{
    static const char *const specials[] = { "<s>", "</s>", "<|im_end|>" };
    static const char text[] = "one two<s>one two</s>one<|im_end|>two";
    aik_bpe_trainer_opts o = { .vocab_size = 300, .special_tokens = specials, .n_special = 3, .add_bos = true,
                               .min_frequency = 1, .chat_template = "tmpl" };
    uint8_t *blob = (uint8_t *)0x1;
    size_t len = 5, n;
    aik_error err;
    aik_tokenizer *t;
    int32_t ids[32];
    aik_bpe_trainer *tr = (aik_bpe_trainer *)0x1;
    int32_t n_vocab;

    ck_assert_int_eq(aik_bpe_train(&o, text, sizeof(text) - 1, &blob, &len, &err), 0);
    t = load(blob, len);
    n_vocab = (int32_t)aik_tokenizer_n_vocab(t);
    ck_assert_int_eq(aik_tokenizer_find(t, "<s>", 3), n_vocab - 3);
    ck_assert_int_eq(aik_tokenizer_bos_id(t), n_vocab - 3);
    ck_assert(aik_tokenizer_add_bos(t));
    ck_assert(aik_tokenizer_is_eog(t, n_vocab - 1)); /* <|im_end|> */
    ck_assert_str_eq(aik_tokenizer_chat_template(t), "tmpl");
    /* specials were cut from the training text: no learned token contains
     * them, and with PARSE_SPECIAL they come out whole */
    ck_assert_int_eq(aik_tokenizer_encode(t, "<s></s>", 7, AIK_TOKENIZE_PARSE_SPECIAL, ids, 32, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], n_vocab - 3);
    ck_assert_int_eq(ids[1], n_vocab - 2);
    ck_assert_int_eq(aik_tokenizer_encode(t, "one", 3, AIK_TOKENIZE_ADD_SPECIAL, ids, 32, &n), 0);
    ck_assert_int_eq(ids[0], n_vocab - 3);
    aik_tokenizer_free(t);
    free(blob);

    blob = (uint8_t *)0x1;
    o.vocab_size = 258;
    ck_assert_int_eq(aik_bpe_train(&o, text, 3, &blob, &len, &err), -EINVAL);
    ck_assert_str_eq(err.where, "vocab_size");
    ck_assert_ptr_eq(blob, (uint8_t *)0x1);
    o.vocab_size = 300;
    o.pre_regex = "([a-z]";
    ck_assert_int_eq(aik_bpe_trainer_new(&o, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "pre_regex");
    ck_assert_ptr_eq(tr, (aik_bpe_trainer *)0x1);
    o.pre_regex = NULL;
    o.special_tokens = NULL;
    ck_assert_int_eq(aik_bpe_trainer_new(&o, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "special_tokens");
    {
        static const char *const empty[] = { "" };
        o.special_tokens = empty;
        o.n_special = 1;
        ck_assert_int_eq(aik_bpe_trainer_new(&o, &tr, &err), -EINVAL);
        ck_assert_str_eq(err.where, "special_tokens[0]");
    }
    aik_bpe_trainer_free(NULL);

    /* a special that is also a byte token would shadow it */
    {
        static const char *const clash[] = { "a" };
        o.special_tokens = clash;
        o.n_special = 1;
        o.add_bos = false;
        ck_assert_int_eq(aik_bpe_train(&o, "abc abc", 7, &blob, &len, &err), -EINVAL);
        ck_assert_str_eq(err.where, "special_tokens[0]");
    }
    /* no specials at all: no BOS/EOS */
    {
        static const char *const none[] = { NULL };
        o.special_tokens = none;
        o.n_special = 0;
        ck_assert_int_eq(aik_bpe_train(&o, "abc abc", 7, &blob, &len, &err), 0);
        t = load(blob, len);
        ck_assert_int_eq(aik_tokenizer_bos_id(t), -1);
        ck_assert_int_eq(aik_tokenizer_eos_id(t), -1);
        aik_tokenizer_free(t);
        free(blob);
        o.add_bos = true;
        ck_assert_int_eq(aik_bpe_train(&o, "abc abc", 7, &blob, &len, &err), -EINVAL);
        ck_assert_str_eq(err.where, "add_bos");
    }
}
END_TEST

START_TEST(test_many_separators)
{
    /* 100k documents joined by <|endoftext|>, plus a second special that
     * never occurs: must stay linear (one search per special per hit). */
    static const char *const specials[] = { "<|endoftext|>", "<|never|>" };
    static const char doc[] = "the model<|endoftext|>";
    size_t n = 100000, dl = sizeof(doc) - 1, len, n_ids;
    char *text = malloc(n * dl);
    aik_bpe_trainer_opts o = { .vocab_size = 300, .special_tokens = specials, .n_special = 2 };
    uint8_t *blob;
    aik_tokenizer *t;
    int32_t *ids;

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * dl, doc, dl);
    ck_assert_int_eq(aik_bpe_train(&o, text, n * dl, &blob, &len, NULL), 0);
    t = load(blob, len);
    /* "the" and " model" were learned whole; specials never */
    ck_assert_int_eq(aik_tokenizer_encode_alloc(t, doc, dl, AIK_TOKENIZE_PARSE_SPECIAL, &ids, &n_ids), 0);
    ck_assert_uint_eq(n_ids, 3);
    ck_assert_int_eq(ids[2], aik_tokenizer_find(t, "<|endoftext|>", 13));
    free(ids);
    aik_tokenizer_free(t);
    free(blob);
    free(text);
}
END_TEST

START_TEST(test_invalid_utf8_training)
{
    /* arbitrary bytes train and round-trip */
    char text[4096];
    uint64_t x = 12345;
    size_t n_ids, out_len;
    uint8_t *blob;
    size_t len;
    aik_tokenizer *t;
    int32_t *ids;
    char out[4096];
    aik_bpe_trainer_opts o = { .vocab_size = 400 };

    for (size_t i = 0; i < sizeof(text); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text[i] = x % 3 ? "abc \xc3\xff"[x % 6] : (char)(x >> 8);
    }
    ck_assert_int_eq(aik_bpe_train(&o, text, sizeof(text), &blob, &len, NULL), 0);
    t = load(blob, len);
    ck_assert_int_eq(aik_tokenizer_encode_alloc(t, text, sizeof(text), 0, &ids, &n_ids), 0);
    ck_assert(n_ids < sizeof(text));
    ck_assert_int_eq(aik_tokenizer_decode(t, ids, n_ids, out, sizeof(out), &out_len), 0);
    ck_assert_uint_eq(out_len, sizeof(text));
    ck_assert(memcmp(out, text, sizeof(text)) == 0);
    free(ids);
    aik_tokenizer_free(t);
    free(blob);
}
END_TEST

/* Richer corpus for the timing test: words of 1-4 syllables (tens of
 * thousands of distinct words, skewed frequencies), so 4096 tokens are
 * really learned. */
static char *make_rich_corpus(size_t n, size_t *ret_len)
{
    static const char *const syl[] = {
        "ka", "to", "ri", "men", "sol", "an", "e", "in", "ver", "da", "lo", "qu", "st", "ing", "er", "th",
        "ou", "pre", "con", "al", "is", "ble", "tion", "ment", "ness", "un", "re", "ex", "ly", "o", "ai", "ze",
    };
    uint64_t x = 0x2545F4914F6CDD1Dull;
    char *buf = malloc(n + 64);
    size_t len = 0;
    ck_assert_ptr_nonnull(buf);
    while (len < n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned ns = 1 + (unsigned)(x % 4);
        buf[len++] = (x >> 60) == 0 ? '\n' : ' ';
        for (unsigned i = 0; i < ns; i++) {
            /* skewed: low syllable indices are much more common */
            uint64_t r = (x >> (8 + 6 * i)) & 63;
            const char *sy = syl[(r * r) >> 7];
            size_t sl = strlen(sy);
            memcpy(buf + len, sy, sl);
            len += sl;
        }
        if ((x >> 40) % 11 == 0)
            buf[len++] = ',';
    }
    *ret_len = len;
    return buf;
}

START_TEST(test_slow_10mb)
{
    size_t clen, len;
    char *corpus = make_rich_corpus(10u << 20, &clen);
    aik_bpe_trainer_opts o = { .vocab_size = 4096, .min_frequency = 1 };
    uint8_t *blob;
    struct timespec a, b;
    double s;

    clock_gettime(CLOCK_MONOTONIC, &a);
    ck_assert_int_eq(aik_bpe_train(&o, corpus, clen, &blob, &len, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("trained on %zu bytes in %.2f s\n", clen, s);
    ck_assert_msg(s < 60.0, "took %.1f s", s);
    {
        aik_tokenizer *t = load(blob, len);
        ck_assert_uint_eq(aik_tokenizer_n_vocab(t), 4096);
        aik_tokenizer_free(t);
    }
    free(blob);
    free(corpus);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s = suite_create("bpe_trainer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    if (argc > 1 && strcmp(argv[1], "--slow") == 0) {
        tcase_add_test(tc, test_slow_10mb);
    } else {
        tcase_add_test(tc, test_hand_derived);
        tcase_add_test(tc, test_tie_breaking);
        tcase_add_test(tc, test_deterministic_and_compresses);
        tcase_add_test(tc, test_specials_and_options);
        tcase_add_test(tc, test_invalid_utf8_training);
        tcase_add_test(tc, test_many_separators);
    }
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
