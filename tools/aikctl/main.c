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
    { "adapter", aikctl_cmd_adapter, "inspect, validate against a package, or merge ADP1/ASP1/ALR1 adapters; ASG1 layer segments" },
    { "bench", aikctl_cmd_bench, "measure prompt and generation speed (llama-bench definitions)" },
    { "check", aikctl_cmd_check, "recompute every checksum of a .slm package" },
    { "devices", aikctl_cmd_devices, "list compute devices (CPU, Vulkan, backend plug-ins, /dev/accel) and why any is missing or refused" },
    { "eval", aikctl_cmd_eval, "run eval cases (JSONL) on a package [+ adapter], write or check an EvalSidecar" },
    { "export", aikctl_cmd_export, "write a .slm package as a GGUF file for llama.cpp" },
    { "generate", aikctl_cmd_generate, "stream a completion from a .slm package" },
    { "import", aikctl_cmd_import, "import a GGUF file or Hugging Face directory as a .slm package" },
    { "init-model", aikctl_cmd_init, "write a random-weight package of a preset shape (benchmarks, tests)" },
    { "inspect", aikctl_cmd_inspect, "show a .slm package's header, layers and tensors" },
    { "keygen", aikctl_cmd_keygen, "create an Ed25519 signing key pair and print its key id" },
    { "modinfo", aikctl_cmd_modinfo, "show a module's AIK note and manifest (--load: verify and load it)" },
    { "modules", aikctl_cmd_modules, "list installed modules, their capabilities and verification state" },
    { "perplexity", aikctl_cmd_perplexity, "perplexity of a package on a text file" },
    { "place", aikctl_cmd_place, "plan which device runs which layers (device inventory YAML, --explain)" },
    { "resolve", aikctl_cmd_resolve, "resolve an intent to the modules that serve it (--explain says why)" },
    { "run", aikctl_cmd_run, "serve an intent: resolve, verify, load only what it needs, generate" },
    { "sign", aikctl_cmd_sign, "write and sign a module directory's manifest" },
    { "tokenize", aikctl_cmd_tokenize, "encode text with a package's (or blob's) tokenizer: ids and pieces" },
    { "train", aikctl_cmd_train, "run a training recipe (JSON): tokenizer, model, checkpoints, package" },
    { "distill", aikctl_cmd_distill, "distil one capability into a signed LoRA adapter module (replay, teacher, eval)" },
    { "verify", aikctl_cmd_verify, "verify a module directory: signature, trust, lineage, digests, ELF" },
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
