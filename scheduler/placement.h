/* SPDX-License-Identifier: MIT */
/*
 * Placement planner: which device runs which part of a model.
 *
 * A model graph is cut into units: the embedding (unit 0), each transformer
 * layer (unit 1 + N, from the "blk.N." weight names and attention KV slots)
 * and the output head (last unit). A plan assigns every unit to a device of
 * an inventory (scheduler/device_profile.h); runs of consecutive units on
 * one device form a segment.
 *
 * Cost model (estimated single-token decode latency, milliseconds):
 *   unit u on device d: max(flops_u / gflops_d, bytes_read_u / gbps_d)
 *                       (or the measured time recorded for (u, d), if any)
 *   + launch_us_d once per segment
 *   + between consecutive units on different devices:
 *       activation_bytes / link_gbps + link_latency_us
 * Constraints: per device, resident weights (each distinct weight counted
 * once per device) + KV cache of its layers for ctx_len positions <=
 * memory_bytes; every op of a unit supported with its dtype (op_dtypes);
 * the device's backend allowed by the execution profile's bitmask.
 *
 * Search: exact branch-and-bound over all assignments. Lower bounds: a chain
 * DP (Viterbi over units × devices, O(U·D²)) that is exact when memory is
 * ignored, and a Lagrangian relaxation of the memory budgets; states reached
 * twice (same next unit, last device, bytes per device) are pruned by a memo.
 * The worst case is O(D^U); past max_expansions the best plan found so far is
 * returned with optimal = false (docs/placement.md).
 */
#ifndef AIK_SCHEDULER_PLACEMENT_H
#define AIK_SCHEDULER_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/common.h"
#include "aik/graph.h"
#include "scheduler/device_profile.h"

#define AIK_PLACEMENT_MAX_UNITS 1026      /* 1024 layers + embedding + head */
#define AIK_PLACEMENT_MAX_EXPANSIONS 2000000u

typedef struct aik_placer aik_placer; /* opaque: model units + inventory + telemetry */

/* What a unit needs, derived from a graph (or given directly by tests). */
typedef struct aik_placement_unit {
    char name[24];             /* "embedding", "layer 3", "output" */
    uint32_t first_node, end_node; /* executed node range [first, end) in the graph (0, 0 when synthetic) */
    double flops;              /* per decoded token */
    uint64_t read_bytes;       /* memory traffic per decoded token (weights read + KV cache read) */
    uint64_t kv_bytes;         /* KV cache resident for ctx_len positions */
    uint64_t out_bytes;        /* activation bytes crossing the boundary after this unit */
    uint32_t op_dtypes[32];    /* ops it executes: bit d of [op] = with dtype d */
    uint32_t n_weights;        /* indices into the placer's weight table */
    const uint32_t *weights;
} aik_placement_unit;

typedef struct aik_placement_options {
    uint32_t ctx_len;          /* KV-cache positions to budget for (0: the graph's ctx_len) */
    uint32_t backends;         /* AIK_BACKEND_BIT_* allowed (execution profile); 0: all */
    uint64_t reserve_bytes;    /* kept free on every device (scratch, activations) */
    uint64_t max_expansions;   /* search budget (0: AIK_PLACEMENT_MAX_EXPANSIONS) */
} aik_placement_options;

typedef struct aik_placement_segment {
    uint32_t first_unit, end_unit; /* [first, end) */
    uint32_t first_node, end_node; /* node range in the graph */
    uint32_t device;               /* inventory index */
    double compute_ms;             /* units' costs + launch overhead */
    double transfer_in_ms;         /* moving the input activation onto this device (0 for the first) */
} aik_placement_segment;

typedef struct aik_placement {
    uint32_t n_units;
    uint32_t *unit_device;         /* per unit: inventory index */
    uint32_t n_segments;
    aik_placement_segment *seg;
    uint32_t n_devices;
    uint64_t *device_bytes;        /* per device: resident weights + KV */
    double total_ms;               /* estimated per-token latency */
    bool optimal;                  /* false when the search budget ran out */
    uint32_t excluded_mask;        /* devices excluded by replan_without */
    uint32_t pinned_units;         /* units fixed by an override */
    char note[256];                /* after replan_without: what moved where ("" otherwise) */
} aik_placement;

/* Derive units from a graph (llama-style names: token_embd, blk.N., output*)
 * against an inventory. The placer copies what it needs from g and inv.
 * opt may be NULL (defaults). -EINVAL with err when the graph's nodes are
 * not ordered embedding → layers → head. */
int aik_placer_new(const aik_graph *g, const aik_device_inventory *inv, const aik_placement_options *opt,
                   aik_placer **ret_placer, aik_error *err);

/* A placer over given units (tests, synthetic models). weight_bytes[i] is
 * the size of weight i (units refer to weights by index; shared weights are
 * counted once per device). */
int aik_placer_new_units(const aik_placement_unit *units, uint32_t n_units, const uint64_t *weight_bytes,
                         uint32_t n_weights, const aik_device_inventory *inv, const aik_placement_options *opt,
                         aik_placer **ret_placer, aik_error *err);

void aik_placer_free(aik_placer *p);

uint32_t aik_placer_unit_count(const aik_placer *p);
const aik_placement_unit *aik_placer_unit(const aik_placer *p, uint32_t u);

/* Plan. override (may be NULL or "") pins units, llama.cpp style:
 *   "layers=0-11:vulkan0,output:cpu,embedding:cpu0"  (layers=N or A-B)
 *   "gpu-layers=N"  the last N layers (and the head when N > n_layers) on the
 *                   first GPU, everything else on the first CPU
 * Devices are named by id or by kind ("cpu", "gpu", "npu": first of that
 * kind). Unpinned units are placed optimally. -EINVAL (bad spec), -ENOSPC
 * (pins or budgets leave no feasible plan), -ENOTSUP (a pinned unit's ops are
 * missing on its device), all with err naming the unit and device. */
int aik_placer_plan(aik_placer *p, const char *override, aik_placement **ret_plan, aik_error *err);

/* Replan after device `device` failed at run time: the same override and
 * options, with the device (and any excluded before, in old) removed. Units
 * pinned to the failed device are unpinned, so the CPU (or whatever is
 * cheapest and fits) takes them. err->message says which units moved. */
int aik_placement_replan_without(aik_placer *p, const aik_placement *old, uint32_t device, const char *override,
                                 aik_placement **ret_plan, aik_error *err);

/* Evaluate an explicit assignment (unit_device[n_units]) with the planner's
 * cost model: 0 and *ret_ms, -ENOSPC (memory), -ENOTSUP (ops/backend), with
 * err naming the unit or device. Tests compare the search with this. */
int aik_placer_evaluate(const aik_placer *p, const uint32_t *unit_device, double *ret_ms, aik_error *err);

/* Telemetry: record a measured time for units [first_unit, end_unit) run as
 * one segment on `device`. The time (minus the device's launch overhead) is
 * split among the units in proportion to their estimates; later plans use
 * the recorded time instead of the estimate (exponential average, weight
 * 1/2 for the new sample). Matches aik_placement_record_fn so an executor
 * can be handed (aik_placement_record, placer). */
int aik_placement_record(void *placer, uint32_t first_unit, uint32_t end_unit, uint32_t device, double ms);
typedef int (*aik_placement_record_fn)(void *user, uint32_t first_unit, uint32_t end_unit, uint32_t device,
                                       double ms);

/* Estimated cost of unit u alone on device d (ms, measured when recorded);
 * negative errno when it cannot run there (-ENOTSUP). */
int aik_placer_unit_cost(const aik_placer *p, uint32_t u, uint32_t d, double *ret_ms);

/* A person-readable explanation: per segment and unit the device, estimated
 * ms and why each other device was rejected (ops, memory, profile, cost).
 * Returns a malloc'd string in *ret_text. */
int aik_placement_explain(const aik_placer *p, const aik_placement *plan, char **ret_text);

void aik_placement_free(aik_placement *plan);

#endif
