/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for runtime/tokenizer. The first input byte picks the mode:
 *   even: the rest is a tokenizer blob; load it (must fail cleanly or load),
 *         and if it loads, encode/decode a fixed text and a slice of the blob
 *         itself, and export it back to a spec and rebuild;
 *   odd:  the rest is text for two fixed tokenizers (byte BPE and SPM) with
 *         flags from bits 1..3; byte BPE must round-trip exactly when no
 *         special-token parsing is asked for.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const aik_tokenizer *t, const char *text, size_t len, unsigned flags, bool check_rt)
{
    int32_t *ids = NULL;
    size_t n = 0, out_len = 0;
    char *out;
    int r;

    if (aik_tokenizer_encode_alloc(t, text, len, flags, &ids, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= aik_tokenizer_n_vocab(t))
            abort();
    r = aik_tokenizer_decode(t, ids, n, NULL, 0, &out_len);
    if (r != (out_len ? -ENOSPC : 0))
        abort();
    out = malloc(out_len + 1);
    if (!out)
        abort();
    if (aik_tokenizer_decode(t, ids, n, out, out_len, &out_len) != 0)
        abort();
    if (check_rt && (out_len != len || memcmp(out, text, len) != 0))
        abort();
    for (size_t i = 0; i < n && i < 64; i++) {
        char piece[AIK_TOKENIZER_MAX_TOKEN_LEN];
        size_t pl;
        if (aik_tokenizer_decode_token(t, ids[i], piece, sizeof(piece), &pl) != 0)
            abort();
    }
    free(out);
    free(ids);
}

static aik_tokenizer *fixed(enum aik_tokenizer_kind kind)
{
    static char bytes[256][8];
    static const char *tokens[270];
    static const char *const merges[] = { "h e", "l l", "he ll", "hell o", "\xc4\xa0 w" };
    static const char *const pieces[] = { "\xe2\x96\x81", "h", "e", "l", "o", "he", "ll", "\xe2\x96\x81he" };
    float scores[270] = { 0 };
    aik_tokenizer_spec s = { .kind = kind, .bos_id = -1, .eos_id = -1, .unk_id = -1, .pad_id = -1 };
    uint8_t *blob;
    size_t len;
    aik_tokenizer *t = NULL;
    uint32_t n = 0;

    if (kind == AIK_TOKENIZER_BYTE_BPE) {
        for (unsigned b = 0; b < 256; b++) {
            /* GPT-2 bytes_to_unicode */
            bool p = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
            unsigned cp = b, k = 0;
            if (!p) {
                for (unsigned c = 0; c < b; c++)
                    k += !((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae);
                cp = 256 + k;
            }
            if (cp < 0x80) {
                bytes[b][0] = (char)cp;
                bytes[b][1] = 0;
            } else {
                bytes[b][0] = (char)(0xc0 | (cp >> 6));
                bytes[b][1] = (char)(0x80 | (cp & 0x3f));
                bytes[b][2] = 0;
            }
            tokens[n++] = bytes[b];
        }
        tokens[n++] = "he";
        tokens[n++] = "ll";
        tokens[n++] = "hell";
        tokens[n++] = "hello";
        tokens[n++] = "\xc4\xa0w";
        tokens[n++] = "<|endoftext|>";
        s.bos_id = s.eos_id = (int32_t)n - 1;
        s.n_merges = 5;
        s.merges = merges;
    } else {
        tokens[n++] = "<unk>";
        tokens[n++] = "<s>";
        for (unsigned b = 0; b < 256; b++) {
            snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
            tokens[n++] = bytes[b];
        }
        for (unsigned i = 0; i < 8; i++) {
            scores[n] = -(float)i;
            tokens[n++] = pieces[i];
        }
        s.unk_id = 0;
        s.bos_id = 1;
        s.scores = scores;
        s.add_space_prefix = true;
    }
    s.n_vocab = n;
    s.tokens = tokens;
    if (aik_tokenizer_blob_build(&s, &blob, &len, NULL) < 0)
        abort();
    if (aik_tokenizer_load(blob, len, &t, NULL) < 0)
        abort();
    free(blob);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aik_tokenizer *bb, *sp;
    unsigned mode;

    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    if (mode & 1) {
        unsigned flags = (mode >> 1) & 7;
        if (!bb) {
            bb = fixed(AIK_TOKENIZER_BYTE_BPE);
            sp = fixed(AIK_TOKENIZER_SPM_BPE);
        }
        exercise(bb, (const char *)data, size, flags, !(flags & 6));
        exercise(sp, (const char *)data, size, flags, false);
        return 0;
    }
    {
        aik_tokenizer *t = NULL;
        aik_tokenizer_spec *spec = NULL;
        aik_error err;
        uint8_t *copy = malloc(size ? size : 1); /* exact size so over-reads are caught */

        if (!copy)
            return 0;
        memcpy(copy, data, size);
        aik_error_clear(&err);
        if (aik_tokenizer_load(copy, size, &t, &err) == 0) {
            static const char text[] = "hello world <|endoftext|> \xff\xfe caf\xc3\xa9";
            exercise(t, text, sizeof(text) - 1, AIK_TOKENIZE_PARSE_SPECIAL, false);
            exercise(t, (const char *)data, size < 512 ? size : 512, 0, false);
            if (aik_tokenizer_to_spec(t, &spec) == 0) {
                uint8_t *b2;
                size_t l2;
                if (aik_tokenizer_blob_build(spec, &b2, &l2, NULL) == 0)
                    free(b2);
                aik_tokenizer_spec_free(spec);
            }
            aik_tokenizer_free(t);
        } else if (err.code != -ENOMEM && (err.code >= 0 || !err.where[0])) {
            abort(); /* a rejection must be explained */
        }
        free(copy);
    }
    return 0;
}
