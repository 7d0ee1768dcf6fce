/* SPDX-License-Identifier: MIT */
/* aikctl — the AIKernel loader CLI for module authors and operators. */
#include <stdio.h>
#include <string.h>

#include "tools/aikctl/aikctl.h"

static const struct {
    const char *name;
    aikctl_cmd_fn fn;
    const char *summary;
} commands[] = {
    /* Keep sorted by name. */
    { "check", aikctl_cmd_check, "recompute every checksum of a .slm package" },
    { "inspect", aikctl_cmd_inspect, "show a .slm package's header, layers and tensors" },
};

void aikctl_print_error(const char *what, const aik_error *err)
{
    char buf[600];
    fprintf(stderr, "aikctl: %s: %s\n", what, aik_error_format(err, buf, sizeof(buf)));
}

void aikctl_print_errno(const char *what, int code)
{
    fprintf(stderr, "aikctl: %s: %s\n", what, strerror(code < 0 ? -code : code));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'aikctl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("aikctl %d.%d\n", AIK_VERSION_MAJOR, AIK_VERSION_MINOR);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "aikctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
