/* SPDX-License-Identifier: MIT */
/*
 * aikctl place PKG --devices FILE.yaml [--override SPEC] [--without DEV]
 *                  [--ctx N] [--backends LIST] [--explain] [--json]
 * Plan which device of a (hypothetical) inventory runs which part of a
 * package's model, with the estimated per-token latency. --without DEV
 * replans as if DEV had failed at run time (the fallback path).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "loader/exec_profile.h"
#include "loader/slm.h"
#include "runtime/model.h"
#include "scheduler/placement.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl place PKG --devices FILE.yaml [--override SPEC] [--without DEV] [--ctx N]\n"
               "                    [--backends cpu,vulkan,npu] [--explain] [--json]\n"
               "  SPEC: layers=0-11:vulkan0,output:cpu,embedding:cpu0 | gpu-layers=N\n");
}

static int parse_backends(const char *s, uint32_t *ret)
{
    uint32_t bits = 0;
    char buf[64], *save = NULL;
    if (strlen(s) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, s);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "cpu") == 0)
            bits |= AIK_BACKEND_BIT_CPU;
        else if (strcmp(t, "vulkan") == 0)
            bits |= AIK_BACKEND_BIT_VULKAN;
        else if (strcmp(t, "npu") == 0)
            bits |= AIK_BACKEND_BIT_NPU;
        else
            return -EINVAL;
    }
    if (!bits)
        return -EINVAL;
    *ret = bits;
    return 0;
}

static json_t *plan_json(const aik_placer *p, const aik_device_inventory *inv, const aik_placement *pl)
{
    json_t *o = json_object(), *segs = json_array(), *devs = json_array();
    if (!o || !segs || !devs) {
        json_decref(o);
        json_decref(segs);
        json_decref(devs);
        return NULL;
    }
    json_object_set_new(o, "inventory", json_string(inv->name));
    json_object_set_new(o, "total_ms", json_real(pl->total_ms));
    json_object_set_new(o, "optimal", json_boolean(pl->optimal));
    if (pl->note[0])
        json_object_set_new(o, "note", json_string(pl->note));
    for (uint32_t i = 0; i < pl->n_segments; i++) {
        const aik_placement_segment *s = &pl->seg[i];
        json_t *j = json_object(), *units = json_array();
        for (uint32_t u = s->first_unit; u < s->end_unit; u++)
            json_array_append_new(units, json_string(aik_placer_unit(p, u)->name));
        json_object_set_new(j, "device", json_string(inv->dev[s->device].id));
        json_object_set_new(j, "units", units);
        json_object_set_new(j, "first_node", json_integer(s->first_node));
        json_object_set_new(j, "end_node", json_integer(s->end_node));
        json_object_set_new(j, "compute_ms", json_real(s->compute_ms));
        json_object_set_new(j, "transfer_in_ms", json_real(s->transfer_in_ms));
        json_array_append_new(segs, j);
    }
    for (uint32_t d = 0; d < inv->n_devices; d++) {
        json_t *j = json_object();
        json_object_set_new(j, "id", json_string(inv->dev[d].id));
        json_object_set_new(j, "bytes", json_integer((json_int_t)pl->device_bytes[d]));
        json_object_set_new(j, "memory", json_integer((json_int_t)inv->dev[d].info.memory_bytes));
        json_object_set_new(j, "excluded", json_boolean(pl->excluded_mask & (1u << d)));
        json_array_append_new(devs, j);
    }
    json_object_set_new(o, "segments", segs);
    json_object_set_new(o, "devices", devs);
    return o;
}

int aikctl_cmd_place(int argc, char **argv)
{
    static const struct option opts[] = {
        { "devices", required_argument, NULL, 'd' }, { "override", required_argument, NULL, 'o' },
        { "without", required_argument, NULL, 'w' }, { "ctx", required_argument, NULL, 'c' },
        { "backends", required_argument, NULL, 'b' }, { "explain", no_argument, NULL, 'e' },
        { "json", no_argument, NULL, 'j' },          { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *devices = NULL, *override = NULL, *without = NULL;
    aik_placement_options popt = { 0 };
    bool explain = false, as_json = false;
    aik_device_inventory *inv = NULL;
    aik_model_hparams hp;
    aik_layer_hparams *layers = NULL;
    aik_slm *pkg = NULL;
    aik_graph *g = NULL;
    aik_placer *p = NULL;
    aik_placement *pl = NULL, *pl2 = NULL;
    aik_error err = { 0 };
    const aik_arch_ops *arch;
    int c, r, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': devices = optarg; break;
        case 'o': override = optarg; break;
        case 'w': without = optarg; break;
        case 'e': explain = true; break;
        case 'j': as_json = true; break;
        case 'c': {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v == 0 || v > (1ul << 24)) {
                fprintf(stderr, "aikctl place: --ctx must be 1..16777216\n");
                return 2;
            }
            popt.ctx_len = (uint32_t)v;
            break;
        }
        case 'b':
            if (parse_backends(optarg, &popt.backends) < 0) {
                fprintf(stderr, "aikctl place: --backends: a comma list of cpu, vulkan, npu\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc || !devices) {
        usage(stderr);
        return 2;
    }
    inv = calloc(1, sizeof(*inv));
    if (!inv) {
        aikctl_print_errno("place", -ENOMEM);
        return 1;
    }
    r = aik_device_inventory_load(devices, inv, &err);
    if (r < 0) {
        aikctl_print_error("place: device inventory", &err);
        goto out;
    }
    r = aik_slm_open(argv[optind], 0, &pkg, &err);
    if (r < 0) {
        aikctl_print_error("place: package", &err);
        goto out;
    }
    r = aik_graph_hparams_from_slm(pkg, &hp, &layers);
    if (r < 0) {
        aikctl_print_errno("place: package hyper-parameters", r);
        goto out;
    }
    arch = aik_builtin_arch(hp.model_type);
    if (!arch) {
        fprintf(stderr, "aikctl place: no built-in architecture for model_type %u\n", hp.model_type);
        goto out;
    }
    r = aik_graph_build(arch, &hp, pkg, &g, &err);
    if (r < 0) {
        aikctl_print_error("place: graph", &err);
        goto out;
    }
    r = aik_placer_new(g, inv, &popt, &p, &err);
    if (r == 0)
        r = aik_placer_plan(p, override, &pl, &err);
    if (r < 0) {
        aikctl_print_error("place", &err);
        goto out;
    }
    if (without) {
        int d = aik_device_inventory_find(inv, without);
        if (d < 0) {
            fprintf(stderr, "aikctl place: --without: no device '%s'\n", without);
            goto out;
        }
        r = aik_placement_replan_without(p, pl, (uint32_t)d, override, &pl2, &err);
        if (r < 0) {
            aikctl_print_error("place: replan", &err);
            goto out;
        }
        aik_placement_free(pl);
        pl = pl2;
        pl2 = NULL;
    }
    if (as_json) {
        json_t *o = plan_json(p, inv, pl);
        char *text = NULL;
        if (o && explain) {
            char *ex = NULL;
            if (aik_placement_explain(p, pl, &ex) == 0)
                json_object_set_new(o, "explanation", json_string(ex));
            free(ex);
        }
        text = o ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(o);
        if (!text) {
            aikctl_print_errno("place: json", -ENOMEM);
            goto out;
        }
        printf("%s\n", text);
        free(text);
    } else {
        if (pl->note[0])
            printf("%s\n", pl->note);
        printf("plan: %u segment(s), %.4f ms/token estimated%s\n", pl->n_segments, pl->total_ms,
               pl->optimal ? "" : " (search budget ran out: best found)");
        for (uint32_t i = 0; i < pl->n_segments; i++) {
            const aik_placement_segment *s = &pl->seg[i];
            printf("  %-10s %s..%s  %.4f ms (+%.4f ms transfer)\n", inv->dev[s->device].id,
                   aik_placer_unit(p, s->first_unit)->name, aik_placer_unit(p, s->end_unit - 1)->name,
                   s->compute_ms, s->transfer_in_ms);
        }
        if (explain) {
            char *ex = NULL;
            if (aik_placement_explain(p, pl, &ex) < 0) {
                aikctl_print_errno("place: explain", -ENOMEM);
                goto out;
            }
            fputs(ex, stdout);
            free(ex);
        }
    }
    rc = 0;
out:
    aik_placement_free(pl);
    aik_placement_free(pl2);
    aik_placer_free(p);
    aik_graph_free(g);
    free(layers);
    aik_slm_close(pkg);
    free(inv);
    return rc;
}
