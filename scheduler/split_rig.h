/* SPDX-License-Identifier: MIT */
/*
 * A split executor with everything it stands on: the device inventory, one
 * opened backend per device (the in-tree CPU backend over one thread pool,
 * Vulkan devices, devices of verified backend plug-ins), the placer and the
 * plan made with an override spec. What `aikctl bench --override` and the
 * kernel's placement serving (aik_kernel_config.placement) both need, so
 * they open devices the same way.
 *
 * Device ids: "cpu0"; "vulkanN" (Vulkan device N, when built with Vulkan);
 * "pluginN" (the N-th device of the plug-in directory, in the order
 * aik_plugin_scan lists them — the ids `aikctl devices` shows).
 *
 * Inventory: cfg->devices names a device-profile YAML file
 * (scheduler/device_profile.h) whose devices are opened by id prefix
 * ("pluginN") or else by backend bit (CPU, Vulkan; other devices stay
 * closed and a plan that uses them is refused by aik_split_exec_new);
 * NULL describes this host: cpu0, every Vulkan device and every plug-in
 * device. Throughput of this host's devices: Vulkan devices and plug-ins
 * are measured with cfg->benchmark (their backend's benchmark()); without
 * it, and for the CPU (whose backend has no benchmark), placeholders are
 * used — 50 GFLOP/s and 20 GB/s for the CPU and Vulkan, 5 and 2 for a
 * plug-in, so an unmeasured plug-in only gets what an override pins to it.
 */
#ifndef AIK_SCHEDULER_SPLIT_RIG_H
#define AIK_SCHEDULER_SPLIT_RIG_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/common.h"
#include "graph/graph.h"
#include "scheduler/backend_plugin.h"
#include "scheduler/device_profile.h"
#include "scheduler/placement.h"
#include "scheduler/split_exec.h"
#include "scheduler/threadpool.h"

typedef struct aik_split_rig_config {
    const char *override;    /* placement override (scheduler/placement.h); NULL or "": optimal plan */
    const char *devices;     /* inventory YAML file; NULL: this host */
    const char *plugin_dir;  /* backend plug-in directory; NULL: no plug-ins */
    const char *trust_dir;   /* trust store plug-ins are verified against; NULL: an empty one */
    uint32_t load_flags;     /* AIK_LOAD_DEVELOPER: accept unsigned plug-ins */
    uint32_t n_threads;      /* CPU backend threads; 0: one per core */
    uint32_t max_batch;      /* most tokens per run */
    uint32_t ctx_len;        /* KV-cache positions; 0: the model's */
    bool benchmark;          /* measure Vulkan and plug-in devices of this host's inventory */
    aik_placement_record_fn record; /* telemetry hook (may be NULL; see aik_split_config) */
    void *record_user;
} aik_split_rig_config;

typedef struct aik_split_rig {
    aik_device_inventory inv;
    aik_placer *placer;
    aik_placement *plan;     /* the plan made at open (aik_split_exec_plan has the one in force) */
    aik_split_device dev[AIK_INV_MAX_DEVICES];
    aik_threadpool *pool;
    aik_plugin_set *plugins; /* NULL without a plug-in directory */
    char *override;          /* copy of cfg->override (the executor keeps using it) */
    aik_split_exec *sx;
} aik_split_rig;

/*
 * Build the inventory, open its devices, plan g with cfg->override and build
 * the split executor. A plug-in directory that cannot be read is an error
 * (-ENOENT...), a plug-in refused in it is not (its devices are just not
 * there; an override naming them fails with -EINVAL). A non-CPU device that
 * fails while the executor is built is fallen back from already
 * (aik_split_exec_fallback). g must outlive the rig.
 */
int aik_split_rig_open(const aik_graph *g, const aik_split_rig_config *cfg, aik_split_rig **ret_rig, aik_error *err);

/* Executor, devices, plug-ins, placer. Accepts NULL. */
void aik_split_rig_free(aik_split_rig *r);

#endif
