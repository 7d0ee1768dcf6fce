/* SPDX-License-Identifier: MIT */
/*
 * aikctl import SRC [-o OUT.slm] [--profile OUT.yaml | --no-profile]
 *   SRC is a .gguf file or a Hugging Face checkpoint directory. Writes the
 *   .slm package and a semantic-profile skeleton next to it (OUT with .yaml).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "interop/interop.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl import SRC [-o OUT.slm] [--profile OUT.yaml | --no-profile]\n"
               "  SRC: a GGUF file (llama, mistral, qwen2) or a Hugging Face checkpoint directory\n"
               "       (config.json, *.safetensors, tokenizer.json) in f32/f16/bf16.\n"
               "  Tensors keep their dtype where .slm has it; others are converted (reported).\n");
}

static void on_warn(void *ctx, const char *where, const char *message)
{
    (void)ctx;
    fprintf(stderr, "aikctl: import: warning: %s: %s\n", where, message);
}

/* "dir/name.ext" -> "name" + suffix (in the current directory). */
static char *derive(const char *src, const char *suffix)
{
    const char *base;
    char *copy = strdup(src), *dot, *out = NULL;
    size_t n;

    if (!copy)
        return NULL;
    n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    base = strrchr(copy, '/');
    base = base ? base + 1 : copy;
    dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    if (asprintf(&out, "%s%s", base, suffix) < 0)
        out = NULL;
    free(copy);
    return out;
}

int aikctl_cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        { "output", required_argument, NULL, 'o' }, { "profile", required_argument, NULL, 'p' },
        { "no-profile", no_argument, NULL, 'n' },   { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    aik_interop_opts io = { on_warn, NULL };
    const char *src, *out_arg = NULL, *prof_arg = NULL;
    char *out = NULL, *prof = NULL;
    bool no_profile = false;
    struct stat st;
    aik_error err;
    int c, r, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_arg = optarg; break;
        case 'p': prof_arg = optarg; break;
        case 'n': no_profile = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    src = argv[optind];
    if (stat(src, &st) < 0) {
        aikctl_print_errno(src, -errno);
        return 1;
    }
    out = out_arg ? strdup(out_arg) : derive(src, ".slm");
    if (!out) {
        aikctl_print_errno("import", -ENOMEM);
        goto done;
    }
    if (!no_profile) {
        if (prof_arg) {
            prof = strdup(prof_arg);
        } else {
            size_t n = strlen(out);
            if (n > 4 && strcmp(out + n - 4, ".slm") == 0 && asprintf(&prof, "%.*s.yaml", (int)(n - 4), out) < 0)
                prof = NULL;
            else if (!(n > 4 && strcmp(out + n - 4, ".slm") == 0) && asprintf(&prof, "%s.yaml", out) < 0)
                prof = NULL;
        }
        if (!prof) {
            aikctl_print_errno("import", -ENOMEM);
            goto done;
        }
    }
    aik_error_clear(&err);
    r = S_ISDIR(st.st_mode) ? aik_import_hf(src, out, &io, &err) : aik_import_gguf(src, out, &io, &err);
    if (r < 0) {
        aikctl_print_error("import", &err);
        goto done;
    }
    printf("wrote %s\n", out);
    if (prof) {
        if (aik_import_write_profile(out, prof, src, &err) < 0) {
            aikctl_print_error("import: profile", &err);
            goto done;
        }
        printf("wrote %s (semantic-profile skeleton: review it before signing)\n", prof);
    }
    rc = 0;
done:
    free(out);
    free(prof);
    return rc;
}
