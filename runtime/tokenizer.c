/* SPDX-License-Identifier: MIT */
/*
 * Tokenizer blob format (build + bounds-checked load), lookup tables,
 * accessors, decoding and export. Encoding lives in tokenizer_encode.c.
 * Format reference: docs/tokenizer.md.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "common/error.h"
#include "runtime/tokenizer_internal.h"

/* ---- little-endian helpers (the blob may be unaligned in memory) ---- */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static const char *const section_names[TOKB_N_SECTIONS] = {
    "section.token_ends", "section.token_text", "section.scores", "section.types",
    "section.merges", "section.pre_regex", "section.chat_template",
};

/* ---- GPT-2 byte <-> code point mapping ---- */

/* Bytes that stand for themselves: '!'..'~', 0xA1..0xAC, 0xAE..0xFF. The
 * others (controls, space, 0x7F..0xA0, 0xAD) are numbered from 256 up in byte
 * order, so every code point is < 0x144. */
static bool byte_is_printable(uint8_t b)
{
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
}

uint32_t tok_byte_to_cp(uint8_t b)
{
    uint32_t n = 0;

    if (byte_is_printable(b))
        return b;
    for (unsigned c = 0; c < b; c++)
        if (!byte_is_printable((uint8_t)c))
            n++;
    return 256 + n;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    /* only called for code points < 0x800 */
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

/* Decode one well-formed UTF-8 sequence at s (n bytes left); returns its
 * length and stores the code point, or 0 when the bytes are not valid. */
static size_t utf8_get(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return len;
}

/* ---- hashing ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33; /* splitmix64 finaliser */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Table size: a power of two at least twice n (n <= 2^22, so no overflow). */
static uint64_t table_size(uint32_t n)
{
    uint64_t size = 16;
    while (size < (uint64_t)n * 2)
        size <<= 1;
    return size;
}

int32_t tok_lookup(const aik_tokenizer *t, const char *s, size_t n)
{
    uint64_t i = hash_bytes(s, n) & t->tok_hash_mask;

    for (;;) {
        uint32_t slot = t->tok_hash[i];
        if (slot == 0)
            return -1;
        uint32_t id = slot - 1;
        if (tok_len(t, id) == n && memcmp(t->text + tok_start(t, id), s, n) == 0)
            return (int32_t)id;
        i = (i + 1) & t->tok_hash_mask;
    }
}

static int build_token_hash(aik_tokenizer *t)
{
    uint64_t size = table_size(t->n_vocab);

    t->tok_hash = calloc(size, sizeof(*t->tok_hash));
    if (!t->tok_hash)
        return -ENOMEM;
    t->tok_hash_mask = size - 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text + tok_start(t, id);
        size_t n = tok_len(t, id);
        uint64_t i = hash_bytes(s, n) & t->tok_hash_mask;
        for (;;) {
            uint32_t slot = t->tok_hash[i];
            if (slot == 0 || (tok_len(t, slot - 1) == n && memcmp(t->text + tok_start(t, slot - 1), s, n) == 0)) {
                t->tok_hash[i] = id + 1; /* later duplicates replace earlier ones */
                break;
            }
            i = (i + 1) & t->tok_hash_mask;
        }
    }
    return 0;
}

static uint64_t merge_key(int32_t left, int32_t right)
{
    return ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
}

bool tok_merge_lookup(const aik_tokenizer *t, int32_t left, int32_t right, uint32_t *rank, int32_t *result)
{
    uint64_t key = merge_key(left, right);
    uint64_t i;

    if (!t->merge_hash)
        return false;
    i = hash_u64(key) & t->merge_hash_mask;
    for (;;) {
        const tok_merge_slot *s = &t->merge_hash[i];
        if (s->key == 0)
            return false;
        if (s->key == key) {
            *rank = s->rank;
            *result = s->result;
            return true;
        }
        i = (i + 1) & t->merge_hash_mask;
    }
}

/* ---- load ---- */

void aik_tokenizer_free(aik_tokenizer *t)
{
    if (!t)
        return;
    pcre2_code_free(t->re);
    free(t->text);
    free(t->tok_end);
    free(t->scores);
    free(t->types);
    free(t->eog);
    free(t->merges);
    free(t->regex);
    free(t->chat_template);
    free(t->tok_hash);
    free(t->merge_hash);
    free(t->special);
    free(t);
}

static bool is_eog_text(const char *s, size_t n)
{
    static const char *const names[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return true;
    return false;
}

/* "<0xXX>" with upper-case hex digits, as SentencePiece writes them; returns
 * the byte or -1. */
static int parse_byte_token(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *hi, *lo;

    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    hi = memchr(hex, s[3], 16);
    lo = memchr(hex, s[4], 16);
    if (!hi || !lo || !s[3] || !s[4])
        return -1;
    return (int)((hi - hex) << 4 | (lo - hex));
}

static int cmp_special(const void *a, const void *b, void *arg)
{
    const aik_tokenizer *t = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = tok_len(t, (uint32_t)x), ly = tok_len(t, (uint32_t)y);

    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int compile_regex(aik_tokenizer *t, aik_error *err)
{
    int errcode;
    PCRE2_SIZE erroff;
    char msg[160];

    /* MATCH_INVALID_UTF: the input may be any bytes; invalid sequences never
     * match and end up in the gaps between matches (encoded byte by byte). */
    t->re = pcre2_compile((PCRE2_SPTR)t->regex, strlen(t->regex),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
    if (!t->re) {
        if (pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg)) < 0)
            snprintf(msg, sizeof(msg), "error %d", errcode);
        return aik_fail(err, -EINVAL, "pre_regex", "does not compile at offset %zu: %s", (size_t)erroff, msg);
    }
    /* JIT is an optimisation only; the interpreter gives the same matches. */
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return 0;
}

/* Copy a string section into a NUL-terminated heap string, refusing NULs. */
static int copy_string_section(const uint8_t *p, uint64_t size, const char *where, char **ret, aik_error *err)
{
    char *s;

    if (memchr(p, 0, size))
        return aik_fail(err, -EINVAL, where, "contains a NUL byte");
    s = malloc(size + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, p, size);
    s[size] = 0;
    *ret = s;
    return 0;
}

int aik_tokenizer_load(const void *blob, size_t len, aik_tokenizer **ret_tok, aik_error *err)
{
    const uint8_t *b = blob;
    uint64_t off[TOKB_N_SECTIONS], size[TOKB_N_SECTIONS];
    uint64_t header_size, prev_end, text_size;
    aik_tokenizer *t = NULL;
    int32_t ids[4];
    uint32_t kind;
    static const char *const id_names[4] = { "header.bos_id", "header.eos_id", "header.unk_id", "header.pad_id" };
    int r;

    if (!blob || !ret_tok)
        return aik_fail(err, -EINVAL, NULL, "blob and ret_tok must not be NULL");
    if (len > AIK_TOKENIZER_MAX_BLOB)
        return aik_fail(err, -E2BIG, "blob", "is %zu bytes, limit %u", len, AIK_TOKENIZER_MAX_BLOB);
    if (len < TOKB_HEADER_SIZE)
        return aik_fail(err, -EBADMSG, "header", "blob is %zu bytes, shorter than the %d-byte header", len,
                        TOKB_HEADER_SIZE);
    if (memcmp(b, TOKB_MAGIC, 8) != 0)
        return aik_fail(err, -EBADMSG, "header.magic", "is not \"AIKTOK\\0\\1\"");
    if ((rd32(b + 8) & 0xffff) != TOKB_VERSION_MAJOR)
        return aik_fail(err, -EPROTONOSUPPORT, "header.version_major", "is %u, this reader supports %d",
                        rd32(b + 8) & 0xffff, TOKB_VERSION_MAJOR);
    /* A later minor version may add fields after ours (header_size grows)
     * but must keep every field we know. */
    header_size = rd32(b + 12);
    if (header_size < TOKB_HEADER_SIZE || header_size > len)
        return aik_fail(err, -EBADMSG, "header.header_size", "is %llu, must be >= %d and <= blob size %zu",
                        (unsigned long long)header_size, TOKB_HEADER_SIZE, len);

    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    kind = rd32(b + 16);
    t->flags = rd32(b + 20);
    t->n_vocab = rd32(b + 24);
    t->n_merges = rd32(b + 28);
    for (int i = 0; i < 4; i++)
        ids[i] = (int32_t)rd32(b + 32 + 4 * i);
    t->bos_id = ids[0];
    t->eos_id = ids[1];
    t->unk_id = ids[2];
    t->pad_id = ids[3];

    if (kind != AIK_TOKENIZER_BYTE_BPE && kind != AIK_TOKENIZER_SPM_BPE) {
        r = aik_fail(err, -EINVAL, "header.kind", "is %u, must be 1 (byte BPE) or 2 (SPM BPE)", kind);
        goto fail;
    }
    t->kind = (enum aik_tokenizer_kind)kind;
    if (t->flags & ~TOKB_FLAGS_KNOWN) {
        r = aik_fail(err, -EINVAL, "header.flags", "has unknown bits 0x%x", t->flags & ~TOKB_FLAGS_KNOWN);
        goto fail;
    }
    if (t->n_vocab == 0 || t->n_vocab > AIK_TOKENIZER_MAX_VOCAB) {
        r = aik_fail(err, t->n_vocab ? -E2BIG : -EINVAL, "header.n_vocab", "is %u, must be in [1, %u]", t->n_vocab,
                     AIK_TOKENIZER_MAX_VOCAB);
        goto fail;
    }
    if (t->n_merges > AIK_TOKENIZER_MAX_MERGES) {
        r = aik_fail(err, -E2BIG, "header.n_merges", "is %u, limit %u", t->n_merges, AIK_TOKENIZER_MAX_MERGES);
        goto fail;
    }
    if (t->kind == AIK_TOKENIZER_SPM_BPE && t->n_merges != 0) {
        r = aik_fail(err, -EINVAL, "header.n_merges", "is %u, must be 0 for an SPM tokenizer", t->n_merges);
        goto fail;
    }
    for (int i = 0; i < 4; i++) {
        if (ids[i] < -1 || ids[i] >= (int64_t)t->n_vocab) {
            r = aik_fail(err, -EINVAL, id_names[i], "is %d, must be -1 or in [0, %u)", ids[i], t->n_vocab);
            goto fail;
        }
    }

    if (((t->flags & TOKB_FLAG_ADD_BOS) && t->bos_id < 0) || ((t->flags & TOKB_FLAG_ADD_EOS) && t->eos_id < 0)) {
        r = aik_fail(err, -EINVAL, "header.flags", "asks to add BOS/EOS but the id is -1");
        goto fail;
    }

    /* Section table: in order, non-overlapping, inside the blob, aligned. */
    prev_end = header_size;
    for (int i = 0; i < TOKB_N_SECTIONS; i++) {
        off[i] = rd64(b + 48 + 16 * i);
        size[i] = rd64(b + 56 + 16 * i);
        if (size[i] == 0) {
            if (off[i] != 0) {
                r = aik_fail(err, -EBADMSG, section_names[i], "is empty but has offset %llu (must be 0)",
                             (unsigned long long)off[i]);
                goto fail;
            }
            continue;
        }
        if (off[i] < prev_end) {
            r = aik_fail(err, -EBADMSG, section_names[i],
                         "offset %llu overlaps the header or the previous section (ends at %llu)",
                         (unsigned long long)off[i], (unsigned long long)prev_end);
            goto fail;
        }
        if (!aik_range_ok(off[i], size[i], len)) {
            r = aik_fail(err, -EBADMSG, section_names[i], "[%llu, +%llu) exceeds blob size %zu",
                         (unsigned long long)off[i], (unsigned long long)size[i], len);
            goto fail;
        }
        if ((i == TOKB_SEC_TOKEN_ENDS || i == TOKB_SEC_SCORES || i == TOKB_SEC_MERGES) && off[i] % 4 != 0) {
            r = aik_fail(err, -EBADMSG, section_names[i], "offset %llu is not 4-byte aligned",
                         (unsigned long long)off[i]);
            goto fail;
        }
        prev_end = off[i] + size[i];
    }
    if (prev_end != len) {
        r = aik_fail(err, -EBADMSG, "blob", "has %llu trailing bytes after the last section",
                     (unsigned long long)(len - prev_end));
        goto fail;
    }
    /* Sizes the counts imply (n_vocab, n_merges <= 2^22: no overflow). */
    if (size[TOKB_SEC_TOKEN_ENDS] != 4ull * t->n_vocab) {
        r = aik_fail(err, -EBADMSG, "section.token_ends", "size %llu, must be 4 * n_vocab = %llu",
                     (unsigned long long)size[TOKB_SEC_TOKEN_ENDS], 4ull * t->n_vocab);
        goto fail;
    }
    if (size[TOKB_SEC_SCORES] != 0 && size[TOKB_SEC_SCORES] != 4ull * t->n_vocab) {
        r = aik_fail(err, -EBADMSG, "section.scores", "size %llu, must be 0 or 4 * n_vocab = %llu",
                     (unsigned long long)size[TOKB_SEC_SCORES], 4ull * t->n_vocab);
        goto fail;
    }
    if (size[TOKB_SEC_TYPES] != t->n_vocab) {
        r = aik_fail(err, -EBADMSG, "section.types", "size %llu, must be n_vocab = %u",
                     (unsigned long long)size[TOKB_SEC_TYPES], t->n_vocab);
        goto fail;
    }
    if (size[TOKB_SEC_MERGES] != 8ull * t->n_merges) {
        r = aik_fail(err, -EBADMSG, "section.merges", "size %llu, must be 8 * n_merges = %llu",
                     (unsigned long long)size[TOKB_SEC_MERGES], 8ull * t->n_merges);
        goto fail;
    }
    if (size[TOKB_SEC_PRE_REGEX] > AIK_TOKENIZER_MAX_REGEX) {
        r = aik_fail(err, -E2BIG, "section.pre_regex", "size %llu, limit %u",
                     (unsigned long long)size[TOKB_SEC_PRE_REGEX], AIK_TOKENIZER_MAX_REGEX);
        goto fail;
    }
    if ((t->kind == AIK_TOKENIZER_BYTE_BPE) != (size[TOKB_SEC_PRE_REGEX] != 0)) {
        r = aik_fail(err, -EINVAL, "section.pre_regex", "must be present for byte BPE and absent for SPM");
        goto fail;
    }
    if (size[TOKB_SEC_TEMPLATE] > AIK_TOKENIZER_MAX_TEMPLATE) {
        r = aik_fail(err, -E2BIG, "section.chat_template", "size %llu, limit %u",
                     (unsigned long long)size[TOKB_SEC_TEMPLATE], AIK_TOKENIZER_MAX_TEMPLATE);
        goto fail;
    }

    /* Token texts. */
    text_size = size[TOKB_SEC_TOKEN_TEXT];
    t->tok_end = malloc(sizeof(uint32_t) * t->n_vocab);
    t->text = malloc(text_size ? text_size : 1);
    t->types = malloc(t->n_vocab);
    t->eog = calloc(t->n_vocab, 1);
    t->scores = calloc(t->n_vocab, sizeof(float));
    if (!t->tok_end || !t->text || !t->types || !t->eog || !t->scores) {
        r = -ENOMEM;
        goto fail;
    }
    memcpy(t->text, b + off[TOKB_SEC_TOKEN_TEXT], text_size);
    for (uint32_t i = 0, prev = 0; i < t->n_vocab; i++) {
        uint32_t end = rd32(b + off[TOKB_SEC_TOKEN_ENDS] + 4ull * i);
        char where[48];
        snprintf(where, sizeof(where), "token_ends[%u]", i);
        if (end < prev || end > text_size) {
            r = aik_fail(err, -EINVAL, where, "is %u, must be >= the previous end %u and <= text size %llu", end,
                         prev, (unsigned long long)text_size);
            goto fail;
        }
        if (end - prev > AIK_TOKENIZER_MAX_TOKEN_LEN) {
            r = aik_fail(err, -E2BIG, where, "token %u is %u bytes, limit %u", i, end - prev,
                         AIK_TOKENIZER_MAX_TOKEN_LEN);
            goto fail;
        }
        t->tok_end[i] = end;
        prev = end;
    }
    if (t->tok_end[t->n_vocab - 1] != text_size) {
        r = aik_fail(err, -EINVAL, "token_ends", "last end %u != token text size %llu", t->tok_end[t->n_vocab - 1],
                     (unsigned long long)text_size);
        goto fail;
    }
    if (size[TOKB_SEC_SCORES]) {
        t->has_scores = true;
        for (uint32_t i = 0; i < t->n_vocab; i++) {
            uint32_t bits = rd32(b + off[TOKB_SEC_SCORES] + 4ull * i);
            float f;
            memcpy(&f, &bits, sizeof(f));
            if (!isfinite(f)) {
                char where[48];
                snprintf(where, sizeof(where), "scores[%u]", i);
                r = aik_fail(err, -EINVAL, where, "is not finite");
                goto fail;
            }
            t->scores[i] = f;
        }
    }
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = b[off[TOKB_SEC_TYPES] + i];
        char where[48];
        snprintf(where, sizeof(where), "types[%u]", i);
        if (ty > AIK_TOKEN_BYTE) {
            r = aik_fail(err, -EINVAL, where, "is %u, must be <= %d", ty, AIK_TOKEN_BYTE);
            goto fail;
        }
        if (t->kind == AIK_TOKENIZER_SPM_BPE && ty == AIK_TOKEN_BYTE &&
            parse_byte_token(t->text + tok_start(t, i), tok_len(t, i)) < 0) {
            r = aik_fail(err, -EINVAL, where, "BYTE token %u's text is not of the form <0xXX>", i);
            goto fail;
        }
        t->types[i] = ty;
    }

    r = build_token_hash(t);
    if (r < 0)
        goto fail;

    /* End-of-generation set, as llama.cpp derives it from the texts; those
     * tokens are treated as CONTROL whatever their stored type. */
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        if (is_eog_text(t->text + tok_start(t, i), tok_len(t, i))) {
            t->eog[i] = 1;
            t->types[i] = AIK_TOKEN_CONTROL;
        }
    }
    if (t->eos_id >= 0)
        t->eog[t->eos_id] = 1;

    /* Byte tokens. */
    for (unsigned c = 0; c < 0x144; c++)
        t->cp_byte[c] = -1;
    for (unsigned c = 0; c < 256; c++) {
        t->byte_cp[c] = (uint16_t)tok_byte_to_cp((uint8_t)c);
        t->cp_byte[t->byte_cp[c]] = (int16_t)c;
    }
    for (unsigned c = 0; c < 256; c++) {
        char buf[8];
        if (t->kind == AIK_TOKENIZER_BYTE_BPE) {
            size_t n = utf8_put(t->byte_cp[c], buf);
            t->byte_tok[c] = tok_lookup(t, buf, n);
            if (t->byte_tok[c] < 0) {
                r = aik_fail(err, -EINVAL, "tokens", "byte 0x%02X (U+%04X) has no token; byte BPE needs all 256",
                             c, tok_byte_to_cp((uint8_t)c));
                goto fail;
            }
        } else {
            static const char hex[] = "0123456789ABCDEF";
            char one = (char)c;
            memcpy(buf, "<0x", 3);
            buf[3] = hex[c >> 4];
            buf[4] = hex[c & 15];
            buf[5] = '>';
            t->byte_tok[c] = tok_lookup(t, buf, 6);
            if (t->byte_tok[c] < 0)
                t->byte_tok[c] = tok_lookup(t, &one, 1);
        }
    }

    /* Merges. */
    if (t->n_merges) {
        uint64_t msize = table_size(t->n_merges);
        const uint8_t *m = b + off[TOKB_SEC_MERGES];
        t->merges = malloc(8ull * t->n_merges);
        t->merge_hash = calloc(msize, sizeof(*t->merge_hash));
        if (!t->merges || !t->merge_hash) {
            r = -ENOMEM;
            goto fail;
        }
        t->merge_hash_mask = msize - 1;
        for (uint32_t i = 0; i < t->n_merges; i++) {
            uint32_t lid = rd32(m + 8ull * i), rid = rd32(m + 8ull * i + 4);
            char where[48], cat[2 * AIK_TOKENIZER_MAX_TOKEN_LEN];
            int32_t cl, cr, res;
            uint32_t ll, rl;
            uint64_t key, h;

            snprintf(where, sizeof(where), "merges[%u]", i);
            if (lid >= t->n_vocab || rid >= t->n_vocab) {
                r = aik_fail(err, -EINVAL, where, "ids (%u, %u), must be < n_vocab %u", lid, rid, t->n_vocab);
                goto fail;
            }
            t->merges[2 * i] = lid;
            t->merges[2 * i + 1] = rid;
            ll = tok_len(t, lid);
            rl = tok_len(t, rid);
            if (ll == 0 || rl == 0) {
                r = aik_fail(err, -EINVAL, where, "merges an empty token");
                goto fail;
            }
            memcpy(cat, t->text + tok_start(t, lid), ll);
            memcpy(cat + ll, t->text + tok_start(t, rid), rl);
            res = tok_lookup(t, cat, (size_t)ll + rl);
            if (res < 0) {
                r = aik_fail(err, -EINVAL, where, "result of merging tokens %u and %u is not a token", lid, rid);
                goto fail;
            }
            /* Symbols always carry canonical ids (tok_lookup's), so key the
             * table by those; the first rank of a pair wins (llama.cpp). */
            cl = tok_lookup(t, t->text + tok_start(t, lid), ll);
            cr = tok_lookup(t, t->text + tok_start(t, rid), rl);
            key = merge_key(cl, cr);
            h = hash_u64(key) & t->merge_hash_mask;
            while (t->merge_hash[h].key != 0 && t->merge_hash[h].key != key)
                h = (h + 1) & t->merge_hash_mask;
            if (t->merge_hash[h].key == 0) {
                t->merge_hash[h].key = key;
                t->merge_hash[h].rank = i;
                t->merge_hash[h].result = res;
            }
        }
    }

    /* Strings. */
    if (size[TOKB_SEC_PRE_REGEX]) {
        r = copy_string_section(b + off[TOKB_SEC_PRE_REGEX], size[TOKB_SEC_PRE_REGEX], "pre_regex", &t->regex, err);
        if (r < 0)
            goto fail;
        r = compile_regex(t, err);
        if (r < 0)
            goto fail;
    }
    if (size[TOKB_SEC_TEMPLATE]) {
        r = copy_string_section(b + off[TOKB_SEC_TEMPLATE], size[TOKB_SEC_TEMPLATE], "chat_template",
                                &t->chat_template, err);
        if (r < 0)
            goto fail;
    }

    /* Special-token partition order. */
    for (uint32_t i = 0; i < t->n_vocab; i++)
        if ((t->types[i] == AIK_TOKEN_CONTROL || t->types[i] == AIK_TOKEN_USER_DEFINED ||
             t->types[i] == AIK_TOKEN_UNKNOWN) && tok_len(t, i) > 0)
            t->n_special++;
    if (t->n_special) {
        uint32_t k = 0;
        t->special = malloc(sizeof(int32_t) * t->n_special);
        if (!t->special) {
            r = -ENOMEM;
            goto fail;
        }
        for (uint32_t i = 0; i < t->n_vocab; i++)
            if ((t->types[i] == AIK_TOKEN_CONTROL || t->types[i] == AIK_TOKEN_USER_DEFINED ||
                 t->types[i] == AIK_TOKEN_UNKNOWN) && tok_len(t, i) > 0)
                t->special[k++] = (int32_t)i;
        qsort_r(t->special, t->n_special, sizeof(int32_t), cmp_special, t);
    }

    *ret_tok = t;
    return 0;
fail:
    aik_tokenizer_free(t);
    return r;
}

/* ---- build ---- */

static size_t spec_token_len(const aik_tokenizer_spec *spec, uint32_t i)
{
    return spec->token_lens ? spec->token_lens[i] : strlen(spec->tokens[i]);
}

static void put_section(uint8_t *hdr, int i, uint64_t off, uint64_t size)
{
    wr64(hdr + 48 + 16 * i, size ? off : 0);
    wr64(hdr + 56 + 16 * i, size);
}

int aik_tokenizer_blob_build(const aik_tokenizer_spec *spec, uint8_t **ret_blob, size_t *ret_len, aik_error *err)
{
    aik_tokenizer tmp = { 0 }; /* only text, tok_end, n_vocab and the hash are used */
    uint8_t *types = NULL, *blob = NULL;
    uint32_t *merge_ids = NULL;
    uint64_t text_size = 0, off[TOKB_N_SECTIONS], size[TOKB_N_SECTIONS], pos, total;
    const char *regex = NULL;
    size_t tmpl_len = 0, regex_len = 0;
    uint32_t flags = 0, n_merges;
    aik_tokenizer *check = NULL;
    int32_t ids[4];
    static const char *const id_names[4] = { "bos_id", "eos_id", "unk_id", "pad_id" };
    int r;

    if (!spec || !ret_blob || !ret_len)
        return aik_fail(err, -EINVAL, NULL, "spec, ret_blob and ret_len must not be NULL");
    if (spec->kind != AIK_TOKENIZER_BYTE_BPE && spec->kind != AIK_TOKENIZER_SPM_BPE)
        return aik_fail(err, -EINVAL, "kind", "is %d, must be AIK_TOKENIZER_BYTE_BPE or AIK_TOKENIZER_SPM_BPE",
                        (int)spec->kind);
    if (spec->n_vocab == 0 || spec->n_vocab > AIK_TOKENIZER_MAX_VOCAB)
        return aik_fail(err, spec->n_vocab ? -E2BIG : -EINVAL, "n_vocab", "is %u, must be in [1, %u]",
                        spec->n_vocab, AIK_TOKENIZER_MAX_VOCAB);
    if (!spec->tokens)
        return aik_fail(err, -EINVAL, "tokens", "is NULL");
    /* SPM merges by score; merges some converters emit for it are ignored
     * (as llama.cpp does), so n_merges counts for byte BPE only. */
    n_merges = spec->kind == AIK_TOKENIZER_BYTE_BPE ? spec->n_merges : 0;
    if (n_merges > AIK_TOKENIZER_MAX_MERGES)
        return aik_fail(err, -E2BIG, "n_merges", "is %u, limit %u", n_merges, AIK_TOKENIZER_MAX_MERGES);
    if (n_merges && !spec->merges)
        return aik_fail(err, -EINVAL, "merges", "is NULL but n_merges is %u", n_merges);
    ids[0] = spec->bos_id;
    ids[1] = spec->eos_id;
    ids[2] = spec->unk_id;
    ids[3] = spec->pad_id;
    for (int i = 0; i < 4; i++)
        if (ids[i] < -1 || ids[i] >= (int64_t)spec->n_vocab)
            return aik_fail(err, -EINVAL, id_names[i], "is %d, must be -1 or in [0, %u)", ids[i], spec->n_vocab);
    if (spec->add_bos && spec->bos_id < 0)
        return aik_fail(err, -EINVAL, "add_bos", "is set but there is no bos_id");
    if (spec->add_eos && spec->eos_id < 0)
        return aik_fail(err, -EINVAL, "add_eos", "is set but there is no eos_id");
    if (spec->kind == AIK_TOKENIZER_BYTE_BPE) {
        regex = spec->pre_regex ? spec->pre_regex : AIK_TOKENIZER_GPT2_REGEX;
        regex_len = strlen(regex);
        if (regex_len == 0 || regex_len > AIK_TOKENIZER_MAX_REGEX)
            return aik_fail(err, regex_len ? -E2BIG : -EINVAL, "pre_regex", "is %zu bytes, must be in [1, %u]",
                            regex_len, AIK_TOKENIZER_MAX_REGEX);
    }
    if (spec->chat_template) {
        tmpl_len = strlen(spec->chat_template);
        if (tmpl_len > AIK_TOKENIZER_MAX_TEMPLATE)
            return aik_fail(err, -E2BIG, "chat_template", "is %zu bytes, limit %u", tmpl_len,
                            AIK_TOKENIZER_MAX_TEMPLATE);
    }

    /* Token texts into one arena (what the blob stores). */
    tmp.n_vocab = spec->n_vocab;
    tmp.tok_end = malloc(sizeof(uint32_t) * spec->n_vocab);
    types = malloc(spec->n_vocab);
    if (!tmp.tok_end || !types) {
        r = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < spec->n_vocab; i++) {
        size_t n;
        char where[48];
        snprintf(where, sizeof(where), "tokens[%u]", i);
        if (!spec->tokens[i]) {
            r = aik_fail(err, -EINVAL, where, "is NULL");
            goto out;
        }
        n = spec_token_len(spec, i);
        if (n > AIK_TOKENIZER_MAX_TOKEN_LEN) {
            r = aik_fail(err, -E2BIG, where, "is %zu bytes, limit %u", n, AIK_TOKENIZER_MAX_TOKEN_LEN);
            goto out;
        }
        text_size += n; /* <= 2^22 * 1024 = 4 GiB: can reach the u32 offsets limit */
        if (text_size > UINT32_MAX) {
            r = aik_fail(err, -E2BIG, "tokens", "total text exceeds 4 GiB");
            goto out;
        }
        tmp.tok_end[i] = (uint32_t)text_size;
    }
    tmp.text = malloc(text_size ? text_size : 1);
    if (!tmp.text) {
        r = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < spec->n_vocab; i++)
        memcpy(tmp.text + tok_start(&tmp, i), spec->tokens[i], tok_len(&tmp, i));
    r = build_token_hash(&tmp);
    if (r < 0)
        goto out;

    /* Types, with the documented defaults when none are given. */
    for (uint32_t i = 0; i < spec->n_vocab; i++) {
        if (spec->token_types) {
            types[i] = spec->token_types[i];
        } else if ((int32_t)i == spec->unk_id) {
            types[i] = AIK_TOKEN_UNKNOWN;
        } else if ((int32_t)i == spec->bos_id || (int32_t)i == spec->eos_id || (int32_t)i == spec->pad_id) {
            types[i] = AIK_TOKEN_CONTROL;
        } else if (spec->kind == AIK_TOKENIZER_SPM_BPE &&
                   parse_byte_token(tmp.text + tok_start(&tmp, i), tok_len(&tmp, i)) >= 0) {
            types[i] = AIK_TOKEN_BYTE;
        } else {
            types[i] = AIK_TOKEN_NORMAL;
        }
        /* Normalise like the loader so the stored types say what is used. */
        if (is_eog_text(tmp.text + tok_start(&tmp, i), tok_len(&tmp, i)))
            types[i] = AIK_TOKEN_CONTROL;
    }

    /* Merges "left right" -> canonical ids. */
    if (n_merges) {
        merge_ids = malloc(8ull * n_merges);
        if (!merge_ids) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (uint32_t i = 0; i < n_merges; i++) {
        const char *m = spec->merges[i], *sp;
        char where[48];
        int32_t l, rt;

        snprintf(where, sizeof(where), "merges[%u]", i);
        if (!m) {
            r = aik_fail(err, -EINVAL, where, "is NULL");
            goto out;
        }
        /* Split at the first space after the first byte (llama.cpp / HF). */
        sp = m[0] ? strchr(m + 1, ' ') : NULL;
        if (!sp || !sp[1]) {
            r = aik_fail(err, -EINVAL, where, "\"%.60s\" is not of the form \"left right\"", m);
            goto out;
        }
        l = tok_lookup(&tmp, m, (size_t)(sp - m));
        rt = tok_lookup(&tmp, sp + 1, strlen(sp + 1));
        if (l < 0 || rt < 0) {
            r = aik_fail(err, -EINVAL, where, "\"%.60s\": %s part is not a token", m, l < 0 ? "left" : "right");
            goto out;
        }
        merge_ids[2 * i] = (uint32_t)l;
        merge_ids[2 * i + 1] = (uint32_t)rt;
    }

    if (spec->add_bos)
        flags |= TOKB_FLAG_ADD_BOS;
    if (spec->add_eos)
        flags |= TOKB_FLAG_ADD_EOS;
    if (spec->add_space_prefix)
        flags |= TOKB_FLAG_ADD_SPACE_PREFIX;
    if (spec->ignore_merges)
        flags |= TOKB_FLAG_IGNORE_MERGES;

    /* Layout: header, then the sections in table order, 4-byte aligned. */
    size[TOKB_SEC_TOKEN_ENDS] = 4ull * spec->n_vocab;
    size[TOKB_SEC_TOKEN_TEXT] = text_size;
    size[TOKB_SEC_SCORES] = spec->scores ? 4ull * spec->n_vocab : 0;
    size[TOKB_SEC_TYPES] = spec->n_vocab;
    size[TOKB_SEC_MERGES] = 8ull * n_merges;
    size[TOKB_SEC_PRE_REGEX] = regex_len;
    size[TOKB_SEC_TEMPLATE] = tmpl_len;
    pos = TOKB_HEADER_SIZE;
    for (int i = 0; i < TOKB_N_SECTIONS; i++) {
        if (size[i] == 0) {
            off[i] = 0;
            continue;
        }
        if (i == TOKB_SEC_TOKEN_ENDS || i == TOKB_SEC_SCORES || i == TOKB_SEC_MERGES)
            pos = (pos + 3) & ~3ull;
        off[i] = pos;
        pos += size[i];
    }
    total = pos;
    if (total > AIK_TOKENIZER_MAX_BLOB) {
        r = aik_fail(err, -E2BIG, "blob", "would be %llu bytes, limit %u", (unsigned long long)total,
                     AIK_TOKENIZER_MAX_BLOB);
        goto out;
    }
    blob = calloc(1, total);
    if (!blob) {
        r = -ENOMEM;
        goto out;
    }
    memcpy(blob, TOKB_MAGIC, 8);
    wr32(blob + 8, TOKB_VERSION_MAJOR | TOKB_VERSION_MINOR << 16);
    wr32(blob + 12, TOKB_HEADER_SIZE);
    wr32(blob + 16, (uint32_t)spec->kind);
    wr32(blob + 20, flags);
    wr32(blob + 24, spec->n_vocab);
    wr32(blob + 28, n_merges);
    for (int i = 0; i < 4; i++)
        wr32(blob + 32 + 4 * i, (uint32_t)ids[i]);
    for (int i = 0; i < TOKB_N_SECTIONS; i++)
        put_section(blob, i, off[i], size[i]);
    for (uint32_t i = 0; i < spec->n_vocab; i++)
        wr32(blob + off[TOKB_SEC_TOKEN_ENDS] + 4ull * i, tmp.tok_end[i]);
    if (text_size)
        memcpy(blob + off[TOKB_SEC_TOKEN_TEXT], tmp.text, text_size);
    if (spec->scores) {
        for (uint32_t i = 0; i < spec->n_vocab; i++) {
            uint32_t bits;
            memcpy(&bits, &spec->scores[i], sizeof(bits));
            wr32(blob + off[TOKB_SEC_SCORES] + 4ull * i, bits);
        }
    }
    memcpy(blob + off[TOKB_SEC_TYPES], types, spec->n_vocab);
    for (uint64_t i = 0; i < 2ull * n_merges; i++)
        wr32(blob + off[TOKB_SEC_MERGES] + 4 * i, merge_ids[i]);
    if (regex_len)
        memcpy(blob + off[TOKB_SEC_PRE_REGEX], regex, regex_len);
    if (tmpl_len)
        memcpy(blob + off[TOKB_SEC_TEMPLATE], spec->chat_template, tmpl_len);

    /* Run the loader's checks (scores, types, merge results, byte tokens,
     * regex compilation) so that a built blob always loads. */
    r = aik_tokenizer_load(blob, total, &check, err);
    if (r < 0)
        goto out;
    aik_tokenizer_free(check);

    *ret_blob = blob;
    *ret_len = total;
    blob = NULL;
    r = 0;
out:
    free(blob);
    free(types);
    free(merge_ids);
    free(tmp.tok_end);
    free(tmp.text);
    free(tmp.tok_hash);
    return r;
}

/* ---- accessors ---- */

static bool id_ok(const aik_tokenizer *t, int32_t id)
{
    return t && id >= 0 && (uint32_t)id < t->n_vocab;
}

enum aik_tokenizer_kind aik_tokenizer_kind(const aik_tokenizer *t) { return t->kind; }
uint32_t aik_tokenizer_n_vocab(const aik_tokenizer *t) { return t->n_vocab; }
int32_t aik_tokenizer_bos_id(const aik_tokenizer *t) { return t->bos_id; }
int32_t aik_tokenizer_eos_id(const aik_tokenizer *t) { return t->eos_id; }
int32_t aik_tokenizer_unk_id(const aik_tokenizer *t) { return t->unk_id; }
int32_t aik_tokenizer_pad_id(const aik_tokenizer *t) { return t->pad_id; }
bool aik_tokenizer_add_bos(const aik_tokenizer *t) { return (t->flags & TOKB_FLAG_ADD_BOS) != 0; }
const char *aik_tokenizer_chat_template(const aik_tokenizer *t) { return t->chat_template; }

bool aik_tokenizer_is_eog(const aik_tokenizer *t, int32_t id)
{
    return id_ok(t, id) && t->eog[id];
}

const char *aik_tokenizer_token_text(const aik_tokenizer *t, int32_t id, size_t *ret_len)
{
    if (!id_ok(t, id))
        return NULL;
    if (ret_len)
        *ret_len = tok_len(t, (uint32_t)id);
    return t->text + tok_start(t, (uint32_t)id);
}

enum aik_token_type aik_tokenizer_token_type(const aik_tokenizer *t, int32_t id)
{
    return id_ok(t, id) ? (enum aik_token_type)t->types[id] : AIK_TOKEN_UNDEFINED;
}

float aik_tokenizer_token_score(const aik_tokenizer *t, int32_t id)
{
    return id_ok(t, id) ? t->scores[id] : 0.0f;
}

int32_t aik_tokenizer_find(const aik_tokenizer *t, const char *text, size_t len)
{
    if (!t || (!text && len))
        return -1;
    return tok_lookup(t, text ? text : "", len);
}

/* ---- decoding ---- */

/* The piece of a token into out (at least its text length). Returns its
 * length. */
static size_t token_piece(const aik_tokenizer *t, uint32_t id, char *out)
{
    const uint8_t *s = (const uint8_t *)t->text + tok_start(t, id);
    size_t n = tok_len(t, id), o = 0;

    switch (t->types[id]) {
    case AIK_TOKEN_USER_DEFINED:
        memcpy(out, s, n);
        return n;
    case AIK_TOKEN_NORMAL:
        if (t->kind == AIK_TOKENIZER_SPM_BPE) {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && s[i] == 0xe2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
                    out[o++] = ' ';
                    i += 3;
                } else {
                    out[o++] = (char)s[i++];
                }
            }
            return o;
        }
        /* Byte BPE: every code point of the GPT-2 mapping is one byte; other
         * characters (and invalid UTF-8) are copied through unchanged, which
         * keeps hand-written vocabularies readable. */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = utf8_get(s + i, n - i, &cp);
            int byte = (l && cp < 0x144) ? t->cp_byte[cp] : -1;
            if (byte >= 0) {
                out[o++] = (char)byte;
                i += l;
            } else {
                if (!l)
                    l = 1;
                memcpy(out + o, s + i, l);
                o += l;
                i += l;
            }
        }
        return o;
    case AIK_TOKEN_BYTE:
        if (t->kind == AIK_TOKENIZER_SPM_BPE) {
            out[0] = (char)parse_byte_token((const char *)s, n); /* validated at load */
            return 1;
        }
        return 0;
    default: /* CONTROL, UNKNOWN, UNUSED, UNDEFINED: not rendered */
        return 0;
    }
}

int aik_tokenizer_decode_token(const aik_tokenizer *t, int32_t id, char *buf, size_t cap, size_t *ret_len)
{
    char piece[AIK_TOKENIZER_MAX_TOKEN_LEN];
    size_t n;

    if (!t || !ret_len || (!buf && cap))
        return -EINVAL;
    if (!id_ok(t, id))
        return -EINVAL;
    n = token_piece(t, (uint32_t)id, piece);
    if (n > cap) {
        *ret_len = n;
        return -ENOSPC;
    }
    if (n)
        memcpy(buf, piece, n);
    *ret_len = n;
    return 0;
}

int aik_tokenizer_decode(const aik_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                         size_t *ret_len)
{
    char piece[AIK_TOKENIZER_MAX_TOKEN_LEN];
    size_t total = 0;

    if (!t || !ret_len || (!ids && n) || (!buf && cap))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const char *p = piece;
        size_t len;

        if (!id_ok(t, ids[i]))
            return -EINVAL;
        len = token_piece(t, (uint32_t)ids[i], piece);
        /* llama.cpp strips one leading space from the first token's piece
         * when the vocabulary adds a space prefix. */
        if (i == 0 && (t->flags & TOKB_FLAG_ADD_SPACE_PREFIX) && len && *p == ' ') {
            p++;
            len--;
        }
        if (len && total + len <= cap)
            memcpy(buf + total, p, len);
        total += len; /* n * 1024 cannot overflow size_t for any real array */
    }
    *ret_len = total;
    return total > cap ? -ENOSPC : 0;
}

/* ---- export ---- */

typedef struct spec_holder {
    aik_tokenizer_spec spec; /* first: aik_tokenizer_spec_free() casts back */
    char **tokens;
    uint32_t *lens;
    float *scores;
    uint8_t *types;
    char **merges;
    char *arena; /* token texts (NUL-terminated each) then merge strings */
    char *regex;
    char *chat_template;
} spec_holder;

void aik_tokenizer_spec_free(aik_tokenizer_spec *spec)
{
    spec_holder *h = (spec_holder *)spec;

    if (!h)
        return;
    free(h->tokens);
    free(h->lens);
    free(h->scores);
    free(h->types);
    free(h->merges);
    free(h->arena);
    free(h->regex);
    free(h->chat_template);
    free(h);
}

int aik_tokenizer_to_spec(const aik_tokenizer *t, aik_tokenizer_spec **ret_spec)
{
    spec_holder *h;
    uint64_t arena = 0, p = 0;

    if (!t || !ret_spec)
        return -EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    /* Sizes: n_vocab, n_merges <= 2^22 and tokens <= 1 KiB: no overflow. */
    arena = (uint64_t)t->tok_end[t->n_vocab - 1] + t->n_vocab;
    for (uint32_t i = 0; i < t->n_merges; i++)
        arena += (uint64_t)tok_len(t, t->merges[2 * i]) + tok_len(t, t->merges[2 * i + 1]) + 2;
    h->tokens = malloc(sizeof(char *) * t->n_vocab);
    h->lens = malloc(sizeof(uint32_t) * t->n_vocab);
    h->types = malloc(t->n_vocab);
    h->arena = malloc(arena);
    if (t->has_scores)
        h->scores = malloc(sizeof(float) * t->n_vocab);
    if (t->n_merges)
        h->merges = malloc(sizeof(char *) * t->n_merges);
    if (t->regex)
        h->regex = strdup(t->regex);
    if (t->chat_template)
        h->chat_template = strdup(t->chat_template);
    if (!h->tokens || !h->lens || !h->types || !h->arena || (t->has_scores && !h->scores) ||
        (t->n_merges && !h->merges) || (t->regex && !h->regex) || (t->chat_template && !h->chat_template)) {
        aik_tokenizer_spec_free(&h->spec);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        uint32_t n = tok_len(t, i);
        h->tokens[i] = h->arena + p;
        h->lens[i] = n;
        memcpy(h->arena + p, t->text + tok_start(t, i), n);
        h->arena[p + n] = 0;
        p += n + 1;
    }
    for (uint32_t i = 0; i < t->n_merges; i++) {
        uint32_t l = t->merges[2 * i], r = t->merges[2 * i + 1];
        h->merges[i] = h->arena + p;
        memcpy(h->arena + p, t->text + tok_start(t, l), tok_len(t, l));
        p += tok_len(t, l);
        h->arena[p++] = ' ';
        memcpy(h->arena + p, t->text + tok_start(t, r), tok_len(t, r));
        p += tok_len(t, r);
        h->arena[p++] = 0;
    }
    memcpy(h->types, t->types, t->n_vocab);
    if (h->scores)
        memcpy(h->scores, t->scores, sizeof(float) * t->n_vocab);

    h->spec.kind = t->kind;
    h->spec.n_vocab = t->n_vocab;
    h->spec.tokens = (const char *const *)h->tokens;
    h->spec.token_lens = h->lens;
    h->spec.scores = h->scores;
    h->spec.token_types = h->types;
    h->spec.n_merges = t->n_merges;
    h->spec.merges = (const char *const *)h->merges;
    h->spec.bos_id = t->bos_id;
    h->spec.eos_id = t->eos_id;
    h->spec.unk_id = t->unk_id;
    h->spec.pad_id = t->pad_id;
    h->spec.add_bos = t->flags & TOKB_FLAG_ADD_BOS;
    h->spec.add_eos = t->flags & TOKB_FLAG_ADD_EOS;
    h->spec.add_space_prefix = t->flags & TOKB_FLAG_ADD_SPACE_PREFIX;
    h->spec.ignore_merges = t->flags & TOKB_FLAG_IGNORE_MERGES;
    h->spec.pre_regex = h->regex;
    h->spec.chat_template = h->chat_template;
    *ret_spec = &h->spec;
    return 0;
}

AIK_EXPORT size_t aik_tokenizer_byte_token(uint8_t b, char out[4])
{
    uint32_t cp = tok_byte_to_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6)); /* every byte maps below U+0800 */
    out[1] = (char)(0x80 | (cp & 0x3F));
    out[2] = '\0';
    return 2;
}
