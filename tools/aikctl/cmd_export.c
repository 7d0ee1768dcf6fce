/* SPDX-License-Identifier: MIT */
/* aikctl export PKG.slm --gguf OUT.gguf: a GGUF file llama.cpp can run. */
#include <getopt.h>
#include <stdio.h>

#include "interop/interop.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl export PKG.slm --gguf OUT.gguf\n"
               "  Writes a GGUF v3 file (llama or qwen2 architecture) for llama.cpp.\n");
}

static void on_warn(void *ctx, const char *where, const char *message)
{
    (void)ctx;
    fprintf(stderr, "aikctl: export: note: %s: %s\n", where, message);
}

int aikctl_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        { "gguf", required_argument, NULL, 'g' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    aik_interop_opts io = { on_warn, NULL };
    const char *gguf = NULL;
    aik_error err;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'g': gguf = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!gguf || optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    aik_error_clear(&err);
    if (aik_export_gguf(argv[optind], gguf, &io, &err) < 0) {
        aikctl_print_error("export", &err);
        return 1;
    }
    printf("wrote %s\n", gguf);
    return 0;
}
