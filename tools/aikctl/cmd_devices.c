/* SPDX-License-Identifier: MIT */
/*
 * aikctl devices [--bench] [--accel-dir DIR] [--plugin-dir DIR] [--trust DIR]
 * [--developer]: the compute devices placement can use (CPU, Vulkan,
 * devices of verified backend plug-ins) and accelerator nodes under
 * /dev/accel, each with what it is and can do; where a kind of device is
 * missing or a plug-in was refused, why. --bench runs each backend's
 * micro-benchmark and prints measured throughput.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aik/graph.h"
#include "loader/module.h"
#include "scheduler/devices.h"
#include "tools/aikctl/aikctl.h"

#ifndef AIK_DEFAULT_TRUST_STORE
#define AIK_DEFAULT_TRUST_STORE "/etc/aik/trust"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl devices [--bench] [--accel-dir DIR] [--plugin-dir DIR] [--trust DIR] [--developer]\n"
               "  --plugin-dir DIR  backend plug-ins (default $%s, else %s)\n"
               "  --trust DIR       trust store plug-ins are verified against (default $AIK_TRUST_STORE,\n"
               "                    else %s)\n"
               "  --developer       accept unsigned plug-ins (marked UNSIGNED)\n",
            AIK_PLUGIN_DIR_ENV, aik_plugin_default_dir(), AIK_DEFAULT_TRUST_STORE);
}

static void print_ops(const aik_backend_info *in)
{
    uint32_t n_ops = 0, quant = 0;
    for (uint32_t op = 0; op < 32; op++)
        if (in->op_dtypes[op])
            n_ops++;
    quant = in->op_dtypes[AIK_OP_MATMUL];
    if (!n_ops) {
        printf("    ops:     none (no backend drives it)\n");
        return;
    }
    printf("    ops:     %u graph ops; matmul weights:", n_ops);
    for (uint32_t d = 0; d < AIK_DTYPE_COUNT; d++)
        if (quant & (1u << d))
            printf(" %s", aik_dtype_name((aik_dtype)d));
    printf("\n");
}

int aikctl_cmd_devices(int argc, char **argv)
{
    static const struct option opts[] = {
        { "accel-dir", required_argument, NULL, 'a' },
        { "bench", no_argument, NULL, 'b' },
        { "plugin-dir", required_argument, NULL, 'p' },
        { "trust", required_argument, NULL, 't' },
        { "developer", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    aik_devices_config cfg = { 0 };
    const char *trust = getenv("AIK_TRUST_STORE");
    uint32_t n_plugin = 0;
    aik_device_list *l;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': cfg.accel_dir = optarg; break;
        case 'b': cfg.flags |= AIK_DEVICES_BENCHMARK; break;
        case 'p': cfg.plugin_dir = optarg; break;
        case 't': trust = optarg; break;
        case 'd': cfg.load_flags |= AIK_LOAD_DEVELOPER; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        aikctl_print_errno("devices", -ENOMEM);
        return 1;
    }
    cfg.plugin_dir = cfg.plugin_dir ? cfg.plugin_dir : aik_plugin_default_dir();
    cfg.trust_dir = trust && trust[0] ? trust : AIK_DEFAULT_TRUST_STORE;
    if (aik_devices_discover_config(&cfg, l) < 0) {
        aikctl_print_errno("devices", -EINVAL);
        free(l);
        return 1;
    }
    for (uint32_t i = 0; i < l->n; i++) {
        const aik_device_entry *d = &l->dev[i];
        const char *src = d->source == AIK_DEVICE_SRC_CPU      ? "cpu"
                          : d->source == AIK_DEVICE_SRC_VULKAN ? "vulkan"
                          : d->source == AIK_DEVICE_SRC_PLUGIN ? "plugin"
                                                               : "accel";
        /* plug-in devices are numbered across plug-ins (index is per plug-in) */
        uint32_t idx = d->source == AIK_DEVICE_SRC_PLUGIN ? n_plugin++ : d->index;
        printf("%s%u: %s [%s]\n", src, idx, d->info.name, aik_backend_kind_name(d->info.kind));
        if (d->info.memory_bytes)
            printf("    memory:  %.1f GiB\n", (double)d->info.memory_bytes / (1024.0 * 1024.0 * 1024.0));
        if (d->detail[0])
            printf("    detail:  %s\n", d->detail);
        print_ops(&d->info);
        if (d->info.measured_gflops > 0)
            printf("    measured: %.2f GFLOP/s (f32 matmul), %.2f GB/s (add)\n", d->info.measured_gflops,
                   d->info.measured_gbps);
    }
    if (l->vulkan_note[0])
        printf("vulkan: none: %s\n", l->vulkan_note);
    if (l->accel_note[0])
        printf("accel: none: %s\n", l->accel_note);
    if (l->plugin_note[0])
        printf("plugin: none: %s\n", l->plugin_note);
    else if (!n_plugin && !l->n_plugin_refused)
        printf("plugin: none: %s holds no plug-ins\n", cfg.plugin_dir);
    for (uint32_t i = 0; i < l->n_plugin_refused; i++)
        printf("plugin: %s: %s\n", l->plugin_refused[i].code < 0 ? "refused" : "no device",
               l->plugin_refused[i].reason);
    free(l);
    return 0;
}
