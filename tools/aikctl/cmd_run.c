/* SPDX-License-Identifier: MIT */
/* aikctl run INTENT INPUT: resolve, verify, load, generate — the main job.
 * --placement SPEC serves it through a placement plan across devices
 * (aik_kernel_config.placement); a device fallback is printed as a warning
 * on stderr even with --quiet, since it changes where the answer came from. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aik/kernel.h"
#include "tools/aikctl/aikctl.h"

static int stream(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stderr);
    return 0;
}

int aikctl_cmd_run(int argc, char **argv)
{
    enum { O_STORE = 256, O_TRUST, O_DEV, O_STREAM, O_QUIET, O_REPLAY, O_PLACEMENT, O_DEVICES, O_PLUGIN_DIR };
    static const struct option opts[] = {
        { "store", required_argument, 0, O_STORE }, { "trust", required_argument, 0, O_TRUST },
        { "developer", no_argument, 0, O_DEV },     { "stream", no_argument, 0, O_STREAM },
        { "quiet", no_argument, 0, O_QUIET },       { "max-tokens", required_argument, 0, 'n' },
        { "temp", required_argument, 0, 'T' },      { "seed", required_argument, 0, 's' },
        { "memory", required_argument, 0, 'm' },    { "replay-log", required_argument, 0, O_REPLAY },
        { "placement", required_argument, 0, O_PLACEMENT }, { "devices", required_argument, 0, O_DEVICES },
        { "plugin-dir", required_argument, 0, O_PLUGIN_DIR },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    aik_kernel_config kc = { .struct_size = sizeof(kc) };
    aik_submit_options so = { .struct_size = sizeof(so) };
    aik_kernel *k = NULL;
    aik_result *res = NULL;
    aik_error err;
    bool quiet = false;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "n:T:s:m:h", opts, NULL)) != -1) {
        switch (c) {
        case O_STORE: kc.module_store = optarg; break;
        case O_TRUST: kc.trust_store = optarg; break;
        case O_DEV: kc.developer_mode = true; break;
        case O_STREAM: so.on_text = stream; break;
        case O_QUIET: quiet = true; break;
        case O_REPLAY: kc.replay_log = optarg; break;
        case O_PLACEMENT: kc.placement = optarg; break;
        case O_DEVICES: kc.devices = optarg; break;
        case O_PLUGIN_DIR: kc.plugin_dir = optarg; break;
        case 'n': so.max_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'T': so.temperature = strtof(optarg, NULL); break;
        case 's': so.seed = strtoull(optarg, NULL, 10); break;
        case 'm': so.memory_budget = strtoull(optarg, NULL, 10); break;
        case 'h':
            printf("usage: aikctl run INTENT INPUT [--store DIR] [--trust DIR] [--developer] [--stream]\n"
                   "                  [-n MAX_TOKENS] [--temp T] [--seed S] [--memory BYTES] [--quiet]\n"
                   "                  [--replay-log FILE]  (opt-in record of the request, checksummed, 0600)\n"
                   "                  [--placement SPEC [--devices FILE.yaml] [--plugin-dir DIR]]\n"
                   "  --placement SPEC  run on a placement plan: gpu-layers=N | layers=0-1:vulkan0,output:cpu0 |\n"
                   "                    layers=0-1:plugin0 (docs/placement.md); devices: this host's cpu0, vulkanN\n"
                   "                    and the pluginN devices of --plugin-dir (verified against --trust)\n"
                   "  INTENT: a capability id (lexicon.define, lexicon.define@^1.0) or free text\n"
                   "  stores default to $AIK_MODULE_STORE / $AIK_TRUST_STORE, else the build's\n");
            return 0;
        default: return 2;
        }
    }
    if (optind + 2 != argc || ((kc.devices || kc.plugin_dir) && !kc.placement)) {
        fprintf(stderr, "usage: aikctl run INTENT INPUT [options]  (--help)\n");
        return 2;
    }
    if (aik_kernel_open(&kc, &k, &err) < 0) {
        aikctl_print_error("kernel", &err);
        return 1;
    }
    if (aik_submit(k, argv[optind], argv[optind + 1], &so, &res, &err) < 0) {
        aikctl_print_error("run", &err);
        goto out;
    }
    if (so.on_text)
        fputc('\n', stderr);
    puts(res->text);
    if (res->warning[0])
        fprintf(stderr, "warning: %s\n", res->warning);
    if (!quiet) {
        fprintf(stderr, "capability: %s (match %.2f) | stop: %s | resolve %.1f ms, load %.1f ms, prompt %.1f ms, "
                        "generate %.1f ms (%zu tokens)\n",
                res->capability, res->match_score, res->stop_reason, res->resolve_ms, res->load_ms, res->prompt_ms,
                res->generate_ms, res->n_tokens);
        if (kc.placement)
            fprintf(stderr, "placement: %s%s\n", kc.placement[0] ? kc.placement : "(planner's choice)",
                    res->adapter_digest[0] ? " (not used: adapter requests run on the CPU executor)" : "");
        for (uint32_t i = 0; i < res->n_modules; i++)
            fprintf(stderr, "served by %s %s  sha256:%s\n", res->modules[i].name, res->modules[i].version,
                    res->modules[i].digest);
        if (res->adapter_digest[0])
            fprintf(stderr, "adapter (unmerged LoRA, %.3f ms to apply)  sha256:%s\n", res->adapter_ms,
                    res->adapter_digest);
    }
    rc = 0;
out:
    aik_result_free(res);
    aik_kernel_close(k);
    return rc;
}
