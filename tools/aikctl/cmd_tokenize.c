/* SPDX-License-Identifier: MIT */
/*
 * aikctl tokenize [--special] [--bos] [--ids] PKG|BLOB TEXT
 * Encode TEXT ("-" reads standard input) with the tokenizer of a .slm
 * package or of a bare tokenizer blob, and print each id with its vocab
 * piece (C-escaped), then the decoded text. --special parses control-token
 * texts (<|endoftext|>, <s>, ...) as those tokens; --bos adds BOS/EOS as the
 * tokenizer asks (add_bos/add_eos); --ids prints only the ids, one line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "loader/slm.h"
#include "runtime/tokenizer.h"
#include "tools/aikctl/aikctl.h"

#define MAX_TEXT AIK_TOKENIZER_MAX_INPUT

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl tokenize [--special] [--bos] [--ids] PKG.slm|TOKENIZER.blob TEXT|-\n");
}

static void print_escaped(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c == '\t')
            printf("\\t");
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c); /* UTF-8 passes through */
    }
    putchar('"');
}

static int read_stdin(char **ret, size_t *ret_len)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, stdin);
        len += n;
        if (n == 0)
            break;
        if (len == cap) {
            char *nb;
            if (cap >= MAX_TEXT) {
                free(buf);
                return -E2BIG;
            }
            nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (ferror(stdin)) {
        free(buf);
        return -EIO;
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

int aikctl_cmd_tokenize(int argc, char **argv)
{
    unsigned flags = 0;
    bool ids_only = false;
    const char *path = NULL, *text_arg = NULL;
    char *file = NULL, *text = NULL, *out = NULL;
    size_t file_len = 0, text_len = 0, n_ids = 0, out_len = 0;
    aik_slm *pkg = NULL;
    aik_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    aik_error err;
    int r, rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--special") == 0) {
            flags |= AIK_TOKENIZE_PARSE_SPECIAL;
        } else if (strcmp(argv[i], "--bos") == 0) {
            flags |= AIK_TOKENIZE_ADD_SPECIAL;
        } else if (strcmp(argv[i], "--ids") == 0) {
            ids_only = true;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fprintf(stderr, "aikctl tokenize: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else if (!text_arg) {
            text_arg = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path || !text_arg) {
        usage(stderr);
        return 2;
    }

    /* Packages are read whole: this is a diagnostic tool, fine for the
     * small models it is meant for (limit 8 GiB). */
    r = aik_read_file(path, (size_t)8 << 30, &file, &file_len);
    if (r < 0) {
        aikctl_print_errno(path, r);
        goto out;
    }
    aik_error_clear(&err);
    if (file_len >= 8 && memcmp(file, AIK_SLM_MAGIC, 8) == 0) {
        r = aik_slm_open_buffer(file, file_len, 0, &pkg, &err);
        if (r < 0) {
            aikctl_print_error(path, &err);
            goto out;
        }
        r = aik_tokenizer_load(pkg->tokenizer, pkg->hdr.tokenizer_size, &tok, &err);
    } else {
        r = aik_tokenizer_load(file, file_len, &tok, &err);
    }
    if (r < 0) {
        aik_error_prefix(&err, "tokenizer");
        aikctl_print_error(path, &err);
        goto out;
    }

    if (strcmp(text_arg, "-") == 0) {
        r = read_stdin(&text, &text_len);
        if (r < 0) {
            aikctl_print_errno("stdin", r);
            goto out;
        }
    } else {
        text_len = strlen(text_arg);
    }
    r = aik_tokenizer_encode_alloc(tok, text ? text : text_arg, text_len, flags, &ids, &n_ids);
    if (r < 0) {
        aikctl_print_errno("encode", r);
        goto out;
    }
    if (ids_only) {
        for (size_t i = 0; i < n_ids; i++)
            printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        rc = 0;
        goto out;
    }
    printf("%zu tokens (%s, vocab %u) for %zu bytes\n", n_ids,
           aik_tokenizer_kind(tok) == AIK_TOKENIZER_BYTE_BPE ? "byte BPE" : "SPM BPE", aik_tokenizer_n_vocab(tok),
           text_len);
    for (size_t i = 0; i < n_ids; i++) {
        size_t pl = 0;
        const char *piece = aik_tokenizer_token_text(tok, ids[i], &pl);
        printf("%6zu %8d  ", i, ids[i]);
        print_escaped(piece, pl);
        printf("\n");
    }
    r = aik_tokenizer_decode(tok, ids, n_ids, NULL, 0, &out_len);
    if (r == -ENOSPC) {
        out = malloc(out_len ? out_len : 1);
        r = out ? aik_tokenizer_decode(tok, ids, n_ids, out, out_len, &out_len) : -ENOMEM;
    }
    if (r < 0) {
        aikctl_print_errno("decode", r);
        goto out;
    }
    printf("decoded: ");
    print_escaped(out ? out : "", out_len);
    printf("\n");
    rc = 0;
out:
    free(out);
    free(ids);
    free(text);
    aik_tokenizer_free(tok);
    aik_slm_close(pkg);
    free(file);
    return rc;
}
