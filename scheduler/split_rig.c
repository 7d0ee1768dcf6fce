/* SPDX-License-Identifier: MIT */
#include "scheduler/split_rig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "loader/exec_profile.h"
#include "scheduler/cpu_backend.h"
#include "scheduler/devices.h"
#ifdef AIK_HAVE_VULKAN
#include "scheduler/vulkan_backend.h"
#endif

/* Placeholder throughputs (see the header): the CPU backend cannot measure
 * itself, and measuring Vulkan or a plug-in costs time a caller may not
 * want to spend when the override pins every unit anyway. */
#define PLACEHOLDER_GFLOPS 50.0
#define PLACEHOLDER_GBPS 20.0
#define PLUGIN_PLACEHOLDER_GFLOPS 5.0
#define PLUGIN_PLACEHOLDER_GBPS 2.0

/* The number in a device id ("vulkan1" -> 1, "plugin0" -> 0); -1 if none. */
static long id_index(const char *id, const char *prefix)
{
    size_t n = strlen(prefix);
    char *end;
    long v;

    if (strncmp(id, prefix, n) != 0 || id[n] < '0' || id[n] > '9')
        return -1;
    v = strtol(id + n, &end, 10);
    return *end ? -1 : v;
}

/* Measured figures of an opened device, when its backend can measure. */
static void measure(const aik_backend_ops *o, aik_backend *b, aik_backend_info *info)
{
    aik_backend_info bi = { .struct_size = sizeof(bi) };
    aik_error e = { 0 };

    if (!o->benchmark || o->benchmark(b, &e) < 0 || o->get_info(b, &bi) < 0)
        return;
    if (bi.measured_gflops > 0 && bi.measured_gbps > 0) {
        info->declared_gflops = bi.measured_gflops;
        info->declared_gbps = bi.measured_gbps;
    }
}

/* This host: cpu0, vulkanN, pluginN (plug-ins from r->plugins). */
static void host_inventory(aik_split_rig *r)
{
    aik_device_inventory *inv = &r->inv;
    aik_device_list *l = calloc(1, sizeof(*l));
    uint64_t host_memory = 0;

    snprintf(inv->name, sizeof(inv->name), "this-host");
    inv->default_gbps = 8;
    inv->default_latency_us = 20;
    if (l) {
        /* accel nodes have no in-tree backend: their plug-ins come below */
        aik_devices_discover("/nonexistent", 0, l);
        for (uint32_t i = 0; i < l->n && inv->n_devices < AIK_INV_MAX_DEVICES; i++) {
            aik_inv_device *d = &inv->dev[inv->n_devices];
            if (l->dev[i].source == AIK_DEVICE_SRC_CPU) {
                snprintf(d->id, sizeof(d->id), "cpu0");
                d->backend_bit = AIK_BACKEND_BIT_CPU;
                d->launch_us = 2;
                host_memory = l->dev[i].info.memory_bytes;
            } else if (l->dev[i].source == AIK_DEVICE_SRC_VULKAN) {
                snprintf(d->id, sizeof(d->id), "vulkan%u", l->dev[i].index);
                d->backend_bit = AIK_BACKEND_BIT_VULKAN;
                d->launch_us = 50;
            } else {
                continue;
            }
            d->info = l->dev[i].info;
            d->info.declared_gflops = PLACEHOLDER_GFLOPS;
            d->info.declared_gbps = PLACEHOLDER_GBPS;
            inv->n_devices++;
        }
        free(l);
    }
    for (uint32_t i = 0; r->plugins && i < r->plugins->n_dev && inv->n_devices < AIK_INV_MAX_DEVICES; i++) {
        aik_inv_device *d = &inv->dev[inv->n_devices++];
        snprintf(d->id, sizeof(d->id), "plugin%u", i);
        d->info = r->plugins->dev[i].info;
        /* Plug-ins are the NPU path; one that computes on the host CPU (the
         * reference) runs under the CPU's execution-profile bit. */
        d->backend_bit = d->info.kind == AIK_BACKEND_CPU ? AIK_BACKEND_BIT_CPU : AIK_BACKEND_BIT_NPU;
        d->launch_us = 50;
        /* No memory figure: a device that computes in host memory (the
         * reference plug-in) is budgeted like the CPU, not as 0 bytes. */
        if (d->info.memory_bytes == 0)
            d->info.memory_bytes = host_memory;
        d->info.declared_gflops = PLUGIN_PLACEHOLDER_GFLOPS;
        d->info.declared_gbps = PLUGIN_PLACEHOLDER_GBPS;
    }
}

/* Open inventory device d; devices no backend here can run stay closed. */
static int open_device(aik_split_rig *r, uint32_t d, const aik_split_rig_config *cfg, aik_error *err)
{
    aik_inv_device *id = &r->inv.dev[d];
    long pi = id_index(id->id, "plugin");
    int ret;

    if (pi >= 0) {
        if (!r->plugins || (uint32_t)pi >= r->plugins->n_dev)
            return aik_fail(err, -ENODEV, id->id, "no such plug-in device (%u found%s)",
                            r->plugins ? r->plugins->n_dev : 0, r->plugins ? "" : "; no plug-in directory given");
        /* Opened by the scan; the set closes it. */
        r->dev[d].ops = r->plugins->dev[pi].ops;
        r->dev[d].backend = r->plugins->dev[pi].backend;
        if (cfg->benchmark && !cfg->devices)
            measure(r->dev[d].ops, r->dev[d].backend, &id->info);
        return 0;
    }
    if (id->backend_bit == AIK_BACKEND_BIT_CPU) {
        if ((ret = aik_cpu_backend_open_pool(r->pool, &r->dev[d].backend, err)) < 0)
            return ret;
        r->dev[d].ops = aik_cpu_backend_ops();
    } else if (id->backend_bit == AIK_BACKEND_BIT_VULKAN) {
#ifdef AIK_HAVE_VULKAN
        long vi = id_index(id->id, "vulkan");
        const aik_backend_ops *o = aik_vk_backend_ops();
        if ((ret = o->open(vi > 0 ? (uint32_t)vi : 0, &r->dev[d].backend, err)) < 0) {
            aik_error_prefix(err, id->id);
            return ret;
        }
        r->dev[d].ops = o;
        if (cfg->benchmark && !cfg->devices)
            measure(o, r->dev[d].backend, &id->info);
#endif
    }
    return 0;
}

static bool owned_by_rig(const aik_split_rig *r, uint32_t d) { return id_index(r->inv.dev[d].id, "plugin") < 0; }

void aik_split_rig_free(aik_split_rig *r)
{
    if (!r)
        return;
    aik_split_exec_free(r->sx);
    for (uint32_t d = 0; d < r->inv.n_devices; d++)
        if (r->dev[d].ops && owned_by_rig(r, d))
            r->dev[d].ops->close(r->dev[d].backend);
    aik_plugin_set_free(r->plugins);
    aik_threadpool_free(r->pool);
    aik_placement_free(r->plan);
    aik_placer_free(r->placer);
    free(r->override);
    free(r);
}

int aik_split_rig_open(const aik_graph *g, const aik_split_rig_config *cfg, aik_split_rig **ret_rig, aik_error *err)
{
    aik_split_rig *r;
    int ret;

    if (!g || !cfg || !ret_rig || cfg->max_batch == 0)
        return aik_fail(err, -EINVAL, "split", "missing graph, configuration or max_batch");
    r = calloc(1, sizeof(*r));
    if (!r)
        return aik_fail(err, -ENOMEM, "split", "out of memory");
    if (cfg->override && !(r->override = strdup(cfg->override))) {
        ret = aik_fail(err, -ENOMEM, "split", "out of memory");
        goto fail;
    }
    if (cfg->plugin_dir) {
        aik_plugin_options po = { .trust_dir = cfg->trust_dir, .load_flags = cfg->load_flags };
        if ((ret = aik_plugin_scan(cfg->plugin_dir, &po, &r->plugins, err)) < 0)
            goto fail;
    }
    if (cfg->devices) {
        if ((ret = aik_device_inventory_load(cfg->devices, &r->inv, err)) < 0)
            goto fail;
    } else {
        host_inventory(r);
    }
    if ((ret = aik_threadpool_new((int)cfg->n_threads, &r->pool)) < 0) {
        aik_fail(err, ret, "split", "cannot start the thread pool");
        goto fail;
    }
    for (uint32_t d = 0; d < r->inv.n_devices; d++)
        if ((ret = open_device(r, d, cfg, err)) < 0)
            goto fail;
    aik_placement_options po = { .ctx_len = cfg->ctx_len };
    if ((ret = aik_placer_new(g, &r->inv, &po, &r->placer, err)) < 0 ||
        (ret = aik_placer_plan(r->placer, r->override, &r->plan, err)) < 0)
        goto fail;
    aik_split_config sc = {
        .max_batch = cfg->max_batch,
        .ctx_len = cfg->ctx_len,
        .placer = r->placer,
        .override = r->override,
        .inventory = &r->inv,
        .record = cfg->record,
        .record_user = cfg->record_user,
    };
    if ((ret = aik_split_exec_new(g, r->plan, r->dev, r->inv.n_devices, &sc, &r->sx, err)) < 0)
        goto fail;
    *ret_rig = r;
    return 0;
fail:
    aik_split_rig_free(r);
    return ret;
}
