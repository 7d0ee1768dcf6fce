/* SPDX-License-Identifier: MIT */
/*
 * Split execution: run one graph across several devices by a placement plan
 * (scheduler/placement.h), one opened aik_backend (abi/aik/backend.h) per
 * inventory device.
 *
 *  - Every weight is uploaded once to each device whose segments read it
 *    (tied embeddings: to the embedding's and to the head's device).
 *  - Each layer's KV cache lives on the device that runs the layer's
 *    attention.
 *  - Activation buffers are planned per device by liveness, like the CPU
 *    executor; an activation produced on one device and read on another is
 *    copied at the start of the reading segment, through host memory
 *    (buffer_download, buffer_upload).
 *  - Segments run in plan order; logits are downloaded from the device of
 *    the last segment. Same contract as aik_cpu_exec_run.
 *  - Telemetry: after each successful run, record(user, first_unit,
 *    end_unit, device, ms) once per segment, ms = the segment's execute +
 *    synchronize time (copies in are not included: the planner models them
 *    separately as link costs).
 *  - Run-time fallback: when execute, synchronize or a copy fails on a device
 *    that is not a CPU (or, while the executor is built, an allocation or
 *    weight upload there), the executor replans without that device
 *    (aik_placement_replan_without), rebuilds its buffers for the new plan
 *    (weights uploaded again; the KV cache is rebuilt by re-running the
 *    positions so far, whose tokens the executor keeps), finishes the run
 *    and says what happened in aik_split_exec_fallback(): "vulkan0 failed:
 *    <why>; layers 0-1, output moved to cpu0". A failure on a CPU device, or
 *    with no placer to replan with, is returned as is; when rebuilding the
 *    KV cache fails so, the next run resumes the rebuild first.
 */
#ifndef AIK_SCHEDULER_SPLIT_EXEC_H
#define AIK_SCHEDULER_SPLIT_EXEC_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"
#include "graph/graph.h"
#include "scheduler/device_profile.h"
#include "scheduler/placement.h"

typedef struct aik_split_exec aik_split_exec;

/* One inventory device: its backend's vtable and an opened instance (both
 * NULL for a device no plan may use). The caller opens and closes it. */
typedef struct aik_split_device {
    const aik_backend_ops *ops;
    aik_backend *backend;
} aik_split_device;

typedef struct aik_split_config {
    uint32_t max_batch;  /* most tokens per run() */
    uint32_t ctx_len;    /* KV-cache positions; 0 = the model's */
    /* The planner the plan came from and the override it was made with:
     * needed to replan when a device fails (placer NULL: no fallback) and
     * to name units and devices in messages. Must outlive the executor. */
    aik_placer *placer;
    const char *override;
    /* Device ids for messages ("vulkan0"); may be NULL ("device N"). */
    const aik_device_inventory *inventory;
    /* Telemetry hook (may be NULL), e.g. (aik_placement_record, placer). */
    aik_placement_record_fn record;
    void *record_user;
} aik_split_config;

/* Build the executor for plan over devs[plan->n_devices] (indexed like the
 * inventory): upload weights, allocate activations and KV caches on each
 * device. The graph must be the one the placer was made from; g, devs'
 * backends, and the placer must outlive the executor; plan is copied. A
 * non-CPU device that fails here is fallen back from already (see
 * aik_split_exec_fallback). */
int aik_split_exec_new(const aik_graph *g, const aik_placement *plan, const aik_split_device *devs,
                       uint32_t n_devs, const aik_split_config *cfg, aik_split_exec **ret_exec, aik_error *err);

void aik_split_exec_free(aik_split_exec *e);

/* Same contract as aik_cpu_exec_run: n_tokens at positions n_past.., logits
 * of the last n_out tokens (valid until the next call), -ENOSPC / -EINVAL
 * (checked before anything runs) leave the KV cache unchanged. A device
 * failure handled by fallback still returns 0 (see aik_split_exec_fallback);
 * any other failure of a run leaves n_past unchanged (positions written past
 * it are overwritten by the next run). */
int aik_split_exec_run(aik_split_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                       const float **ret_logits, aik_error *err);

uint32_t aik_split_exec_n_past(const aik_split_exec *e);

/* KV-cache positions and most tokens per run (as configured, max_batch
 * capped at the context): what a session over the executor sizes itself by. */
uint32_t aik_split_exec_ctx_len(const aik_split_exec *e);
uint32_t aik_split_exec_max_batch(const aik_split_exec *e);

/* Forget positions >= n_past. */
void aik_split_exec_truncate(aik_split_exec *e, uint32_t n_past);

/* The plan in force (after a fallback: the replanned one). */
const aik_placement *aik_split_exec_plan(const aik_split_exec *e);

/* The last fallback, or NULL when none happened: where = the failed
 * device's id, message = "<id> failed: <error>; <units> moved to <id>",
 * code = the device's error. */
const aik_error *aik_split_exec_fallback(const aik_split_exec *e);

/* Number of fallbacks so far. */
uint32_t aik_split_exec_fallback_count(const aik_split_exec *e);

#endif
