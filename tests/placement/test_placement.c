/* SPDX-License-Identifier: MIT */
/*
 * Placement planner: device-inventory parsing (every strictness rule), units
 * derived from real llama graphs, the cost model by hand, the search against
 * brute force on random cases, overrides, replan-without and telemetry.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "aik/tensor.h"
#include "graph/graph.h"
#include "loader/exec_profile.h"
#include "modules/llama/llama_arch.h"
#include "scheduler/placement.h"
#include "tests/testutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static aik_device_inventory *load_profile(const char *name)
{
    char path[512];
    const char *src = getenv("AIK_SOURCE_ROOT");
    aik_device_inventory *inv = calloc(1, sizeof(*inv));
    aik_error err = { 0 };
    ck_assert_ptr_nonnull(inv);
    snprintf(path, sizeof(path), "%s/profiles/devices/%s", src ? src : ".", name);
    ck_assert_msg(aik_device_inventory_load(path, inv, &err) == 0, "%s: %s", err.where, err.message);
    return inv;
}

static aik_graph *llama_graph(uint32_t n_layers, uint32_t dim, const aik_layer_hparams *layers, uint32_t vocab,
                              uint32_t ctx, uint32_t flags)
{
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .flags = flags, .n_vocab = vocab,
                             .dim = dim, .n_layers = n_layers, .head_dim = 32, .ctx_len = ctx,
                             .rope_theta = 10000.0f, .norm_eps = 1e-5f, .layers = layers };
    aik_graph *g = NULL;
    aik_error err = { 0 };
    ck_assert_msg(aik_graph_build(&aik_llama_arch_ops, &hp, NULL, &g, &err) == 0, "%s: %s", err.where,
                  err.message);
    return g;
}

/* ---------- inventories ---------- */

START_TEST(test_profiles_parse)
{
    static const char *names[] = { "cpu-only.yaml", "cpu-gpu-npu.yaml", "small-gpu.yaml", "two-gpus.yaml" };
    for (size_t i = 0; i < 4; i++)
        free(load_profile(names[i]));
    aik_device_inventory *inv = load_profile("cpu-gpu-npu.yaml");
    ck_assert_uint_eq(inv->n_devices, 3);
    ck_assert_str_eq(inv->dev[2].id, "npu0");
    ck_assert_uint_eq(inv->dev[2].info.kind, AIK_BACKEND_NPU);
    ck_assert_uint_eq(inv->dev[2].backend_bit, AIK_BACKEND_BIT_NPU);
    ck_assert_uint_eq(inv->dev[2].info.memory_bytes, 1ull << 30);
    ck_assert_uint_eq(inv->dev[2].info.op_dtypes[AIK_OP_MATMUL], (1u << AIK_DTYPE_Q8_0) | (1u << AIK_DTYPE_Q4_0));
    ck_assert_uint_eq(inv->dev[2].info.op_dtypes[AIK_OP_GET_ROWS], 0);
    ck_assert_uint_eq(inv->dev[1].info.op_dtypes[AIK_OP_ATTENTION], (1u << AIK_DTYPE_COUNT) - 1);
    ck_assert(inv->dev[1].info.declared_gflops == 4000);
    ck_assert_uint_eq(inv->n_links, 2);
    double gbps, lat;
    aik_device_inventory_link(inv, 1, 0, &gbps, &lat);
    ck_assert(gbps == 12 && lat == 15);
    aik_device_inventory_link(inv, 1, 2, &gbps, &lat);
    ck_assert(gbps == 4 && lat == 25); /* default_link */
    ck_assert_int_eq(aik_device_inventory_find(inv, "gpu"), 1);
    ck_assert_int_eq(aik_device_inventory_find(inv, "npu0"), 2);
    ck_assert_int_eq(aik_device_inventory_find(inv, "tpu"), -ENOENT);
    free(inv);
}
END_TEST

#define DEV "{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: all}"
static const struct bad_case {
    const char *yaml;
    int code;
    const char *where;   /* substring of err.where */
    const char *message; /* substring of err.message */
} bad_cases[] = {
    { "schema: 1\nname: x\ndevices: [" DEV "]\ncolour: red\n", -EINVAL, "t.yaml:4:1: colour", "unknown key" },
    { "schema: 1\nname: x\ndevices: {a: 1}\n", -EINVAL, "t.yaml:3:10: devices", "expected a sequence" },
    { "schema: 1\nname: x\nname: y\ndevices: [" DEV "]\n", -EINVAL, "t.yaml:3:1", "duplicate key 'name'" },
    { "schema: 1\nname: &n x\ndevices: [" DEV "]\n", -EINVAL, "t.yaml:2:7", "anchors are not allowed" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\nlinks: *a\n", -EINVAL, "t.yaml:4:8", "alias" },
    { "schema: 1\nname: !!str x\ndevices: [" DEV "]\n", -EINVAL, "t.yaml:2:7", "tags are not allowed" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\n---\nschema: 1\n", -EINVAL, "t.yaml:4:1", "only one YAML document" },
    { "", -EINVAL, "t.yaml:1:1", "empty document" },
    { "schema: 1\nname: [x\n", -EINVAL, "t.yaml:", "YAML syntax error" },
    { "schema: 2\nname: x\ndevices: [" DEV "]\n", -EINVAL, "t.yaml:1:9: schema", "out of range" },
    { "schema: 1\ndevices: [" DEV "]\n", -EINVAL, "t.yaml:1:1", "missing required key 'name'" },
    { "schema: 1\nname: X!\ndevices: [" DEV "]\n", -EINVAL, "t.yaml:2:7: name", "may only contain" },
    { "schema: 1\nname: x\ndevices: []\n", -EINVAL, "t.yaml:3:10: devices", "at least one device" },
    { "schema: 1\nname: x\ndevices: [" DEV ", " DEV "]\n", -EINVAL, "devices[1]", "duplicate device id 'c'" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: tpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].kind", "not a device kind" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, backend: cuda, memory: 1 GiB, gflops: 10, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].backend", "not a backend" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GB2, gflops: 10, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].memory", "unknown size unit" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 0, gflops: 10, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].memory", "must be > 0" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 99999999999 TiB, gflops: 10, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].memory", "64 bits" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 0x10, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].gflops", "expected a number" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 1e9, gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].gflops", "out of range" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: '10', gbps: 10, ops: all}]\n",
      -EINVAL, "devices[0].gflops", "expected a number" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, ops: all}]\n",
      -EINVAL, "devices[0]", "missing required key 'gbps'" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: {conv: all}}]\n",
      -EINVAL, "devices[0].ops.conv", "unknown op" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: {matmul: [f8]}}]\n",
      -EINVAL, "devices[0].ops.matmul[0]", "unknown dtype" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: {matmul: [f32, f32]}}]\n",
      -EINVAL, "devices[0].ops.matmul[1]", "listed twice" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: {tokens: all}}]\n",
      -EINVAL, "devices[0].ops.tokens", "unknown op" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: {}}]\n",
      -EINVAL, "devices[0].ops", "at least one op" },
    { "schema: 1\nname: x\ndevices: [{id: c, kind: cpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: some}]\n",
      -EINVAL, "devices[0].ops", "expected 'all'" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\nlinks: [{from: c, to: d, gbps: 1}]\n", -EINVAL, "links[0].to",
      "no device with id 'd'" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\nlinks: [{from: c, to: c, gbps: 1}]\n", -EINVAL, "links[0]",
      "two different devices" },
    { "schema: 1\nname: x\ndevices: [" DEV ", {id: d, kind: gpu, memory: 1 GiB, gflops: 10, gbps: 10, ops: all}]\n"
      "links: [{from: c, to: d, gbps: 1}, {from: d, to: c, gbps: 2}]\n", -EINVAL, "links[1]", "duplicate link" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\nlinks: [{from: c, to: c, gbps: 1, mtu: 9000}]\n", -EINVAL,
      "links[0].mtu", "unknown key" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\ndefault_link: {latency_us: 3}\n", -EINVAL, "default_link",
      "missing required key 'gbps'" },
    { "schema: 1\nname: x\ndevices: [" DEV "]\ndefault_link: {gbps: -1}\n", -EINVAL, "default_link.gbps",
      "expected a number" },
    { "schema: 1\nname: x\ndevices: [[[[[[[[[[1]]]]]]]]]]\n", -E2BIG, "t.yaml:3", "nesting deeper" },
    { "schema: 1\n[a]: x\n", -EINVAL, "t.yaml:2:1", "mapping keys must be plain strings" },
};

START_TEST(test_profiles_malformed)
{
    const struct bad_case *c = &bad_cases[_i];
    aik_device_inventory *inv = calloc(1, sizeof(*inv));
    aik_error err = { 0 };
    ck_assert_ptr_nonnull(inv);
    inv->n_devices = 77; /* must stay untouched on failure */
    int r = aik_device_inventory_parse("t.yaml", c->yaml, strlen(c->yaml), inv, &err);
    ck_assert_msg(r == c->code, "case %d: got %d (%s: %s)", _i, r, err.where, err.message);
    ck_assert_msg(strstr(err.where, c->where), "case %d: where '%s' lacks '%s'", _i, err.where, c->where);
    ck_assert_msg(strstr(err.message, c->message), "case %d: message '%s' lacks '%s'", _i, err.message, c->message);
    ck_assert_uint_eq(inv->n_devices, 77);
    free(inv);
}
END_TEST

START_TEST(test_profiles_caps)
{
    /* 17 devices, a string over the cap, more nodes than the cap. */
    size_t cap = 1 << 20;
    char *y = malloc(cap);
    aik_device_inventory *inv = calloc(1, sizeof(*inv));
    aik_error err = { 0 };
    size_t n = (size_t)snprintf(y, cap, "schema: 1\nname: x\ndevices:\n");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(y + n, cap - n, "  - {id: d%d, kind: cpu, memory: 1 GiB, gflops: 1, gbps: 1, ops: all}\n", i);
    ck_assert_int_eq(aik_device_inventory_parse("t.yaml", y, n, inv, &err), -E2BIG);
    ck_assert_ptr_nonnull(strstr(err.message, "more than 16 devices"));

    n = (size_t)snprintf(y, cap, "schema: 1\nname: ");
    memset(y + n, 'a', 300);
    n += 300;
    n += (size_t)snprintf(y + n, cap - n, "\ndevices: []\n");
    ck_assert_int_eq(aik_device_inventory_parse("t.yaml", y, n, inv, &err), -E2BIG);
    ck_assert_ptr_nonnull(strstr(err.message, "string longer"));

    n = (size_t)snprintf(y, cap, "schema: 1\nname: x\nlinks: [");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(y + n, cap - n, "1,");
    n += (size_t)snprintf(y + n, cap - n, "1]\n");
    ck_assert_int_eq(aik_device_inventory_parse("t.yaml", y, n, inv, &err), -E2BIG);
    ck_assert_ptr_nonnull(strstr(err.message, "nodes"));

    ck_assert_int_eq(aik_device_inventory_parse("t.yaml", y, (1u << 20) + 1, inv, &err), -E2BIG);
    ck_assert_int_eq(aik_device_inventory_load("/nonexistent/inv.yaml", inv, &err), -ENOENT);
    free(y);
    free(inv);
}
END_TEST

/* ---------- units from a graph ---------- */

START_TEST(test_graph_units)
{
    aik_layer_hparams layers[3] = { { 4, 2, 96 }, { 2, 1, 64 }, { 4, 4, 128 } };
    aik_graph *g = llama_graph(3, 64, layers, 100, 32, AIK_MODEL_TIED_EMBEDDINGS);
    aik_device_inventory *inv = load_profile("cpu-only.yaml");
    aik_placer *p = NULL;
    aik_error err = { 0 };
    uint64_t wsum = 0;

    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_uint_eq(aik_placer_unit_count(p), 5);
    ck_assert_str_eq(aik_placer_unit(p, 0)->name, "embedding");
    ck_assert_str_eq(aik_placer_unit(p, 2)->name, "layer 1");
    ck_assert_str_eq(aik_placer_unit(p, 4)->name, "output");
    ck_assert_ptr_null(aik_placer_unit(p, 5));
    /* Units tile the executed nodes in order. */
    for (uint32_t u = 1; u < 5; u++)
        ck_assert_uint_ge(aik_placer_unit(p, u)->first_node, aik_placer_unit(p, u - 1)->end_node);
    ck_assert_uint_eq(aik_placer_unit(p, 4)->end_node, (uint32_t)g->n_nodes > 0 ? aik_placer_unit(p, 4)->end_node : 0);
    for (uint32_t l = 0; l < 3; l++) {
        const aik_placement_unit *u = aik_placer_unit(p, l + 1);
        uint64_t q = (uint64_t)layers[l].n_heads * 32, kv = (uint64_t)layers[l].n_kv_heads * 32;
        /* matmuls: q, k, v, o, gate, up, down at one token */
        double mm = 2.0 * (64.0 * q + 2 * 64.0 * kv + q * 64.0 + 3 * 64.0 * layers[l].ffn_dim);
        ck_assert_msg(u->flops >= mm && u->flops < mm * 1.5 + 4.0 * 32 * q, "layer %u flops %g vs %g", l, u->flops, mm);
        ck_assert_uint_eq(u->kv_bytes, 2ull * 32 * kv * 4);
        ck_assert_uint_eq(u->out_bytes, 64 * 4); /* the residual stream */
        ck_assert_uint_eq(u->n_weights, 9);
        ck_assert_uint_ne(u->op_dtypes[AIK_OP_ATTENTION], 0);
        ck_assert_uint_eq(u->op_dtypes[AIK_OP_GET_ROWS], 0);
    }
    ck_assert_uint_eq(aik_placer_unit(p, 0)->op_dtypes[AIK_OP_GET_ROWS], 1u << AIK_DTYPE_F32);
    ck_assert_uint_eq(aik_placer_unit(p, 0)->out_bytes, 64 * 4);
    /* Tied embeddings: the table is listed by both embedding and output but
     * resident once on a device. */
    ck_assert_uint_eq(aik_placer_unit(p, 4)->n_weights, 2);
    aik_placement *pl = NULL;
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    for (uint32_t u = 0; u < 5; u++)
        wsum += aik_placer_unit(p, u)->kv_bytes;
    ck_assert_uint_eq(pl->device_bytes[0], aik_graph_weight_bytes(g) + wsum);
    ck_assert_uint_eq(pl->n_segments, 1);
    ck_assert_uint_eq(pl->seg[0].first_node, aik_placer_unit(p, 0)->first_node);
    ck_assert_uint_eq(pl->seg[0].end_node, aik_placer_unit(p, 4)->end_node);
    ck_assert(pl->optimal);
    aik_placement_free(pl);
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

/* ---------- cost model by hand ---------- */

static void two_dev_inventory(aik_device_inventory *inv)
{
    memset(inv, 0, sizeof(*inv));
    snprintf(inv->name, sizeof(inv->name), "hand");
    inv->n_devices = 2;
    for (int d = 0; d < 2; d++) {
        aik_inv_device *v = &inv->dev[d];
        snprintf(v->id, sizeof(v->id), d ? "gpu0" : "cpu0");
        v->info.kind = d ? AIK_BACKEND_GPU : AIK_BACKEND_CPU;
        v->backend_bit = d ? AIK_BACKEND_BIT_VULKAN : AIK_BACKEND_BIT_CPU;
        v->info.memory_bytes = 1000;
        for (int op = 0; op < AIK_OP_COUNT; op++)
            v->info.op_dtypes[op] = 0x1f;
    }
    inv->dev[0].info.declared_gflops = 1;   /* 1e9 flop/s */
    inv->dev[0].info.declared_gbps = 1;
    inv->dev[0].launch_us = 10;
    inv->dev[1].info.declared_gflops = 10;
    inv->dev[1].info.declared_gbps = 2;
    inv->dev[1].launch_us = 100;
    inv->n_links = 1;
    inv->link[0] = (aik_inv_link){ .a = 0, .b = 1, .gbps = 1, .latency_us = 50 };
    inv->default_gbps = 1;
    inv->default_latency_us = 0;
}

START_TEST(test_cost_by_hand)
{
    aik_device_inventory inv;
    uint32_t w[2] = { 0, 1 };
    uint64_t wb[2] = { 400, 300 };
    aik_placement_unit units[2] = {
        { .name = "a", .flops = 2e6, .read_bytes = 1000000, .out_bytes = 4000000, .n_weights = 1, .weights = &w[0] },
        { .name = "b", .flops = 6e6, .read_bytes = 100, .kv_bytes = 100, .n_weights = 1, .weights = &w[1] },
    };
    aik_placer *p = NULL;
    aik_error err = { 0 };
    double ms;
    two_dev_inventory(&inv);
    units[0].op_dtypes[AIK_OP_MATMUL] = 1;
    units[1].op_dtypes[AIK_OP_ATTENTION] = 1;
    ck_assert_int_eq(aik_placer_new_units(units, 2, wb, 2, &inv, NULL, &p, &err), 0);
    /* a on cpu: max(2e6/1e9, 1e6/1e9) s = 2 ms, + 0.01 launch.
     * b on gpu: max(6e6/1e10, 100/2e9) = 0.6 ms, + 0.1 launch,
     * transfer 4e6 B / 1e9 B/s = 4 ms + 0.05 latency. */
    uint32_t cg[2] = { 0, 1 }, cc[2] = { 0, 0 }, gg[2] = { 1, 1 };
    ck_assert_int_eq(aik_placer_evaluate(p, cg, &ms, &err), 0);
    ck_assert_double_eq_tol(ms, 2.01 + 0.6 + 0.1 + 4.05, 1e-9);
    ck_assert_int_eq(aik_placer_evaluate(p, cc, &ms, &err), 0);
    ck_assert_double_eq_tol(ms, 2.01 + 6.0, 1e-9);
    ck_assert_int_eq(aik_placer_evaluate(p, gg, &ms, &err), 0);
    ck_assert_double_eq_tol(ms, 0.5 + 0.1 + 0.6, 1e-9); /* a on gpu: max(0.2, 0.5) */
    aik_placement *pl = NULL;
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    ck_assert_uint_eq(pl->unit_device[0], 1);
    ck_assert_uint_eq(pl->unit_device[1], 1);
    ck_assert_double_eq_tol(pl->total_ms, 1.2, 1e-9);
    ck_assert_uint_eq(pl->device_bytes[1], 800);
    aik_placement_free(pl);
    /* Memory: gpu budget 750 can't hold both (400 + 300 + 100 KV). */
    aik_placer_free(p);
    inv.dev[1].info.memory_bytes = 750;
    ck_assert_int_eq(aik_placer_new_units(units, 2, wb, 2, &inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_evaluate(p, gg, &ms, &err), -ENOSPC);
    ck_assert_str_eq(err.where, "gpu0");
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    ck_assert_uint_eq(pl->unit_device[0], 0); /* b (cheaper per ms on gpu) keeps the gpu */
    ck_assert_uint_eq(pl->unit_device[1], 1);
    ck_assert_uint_le(pl->device_bytes[1], 750);
    aik_placement_free(pl);
    /* Unsupported op: gpu loses attention. */
    aik_placer_free(p);
    inv.dev[1].info.op_dtypes[AIK_OP_ATTENTION] = 0;
    ck_assert_int_eq(aik_placer_new_units(units, 2, wb, 2, &inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_evaluate(p, gg, &ms, &err), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err.message, "attention"));
    ck_assert_int_eq(aik_placer_unit_cost(p, 1, 1, &ms), -ENOTSUP);
    aik_placer_free(p);
    /* Bad synthetic input is refused. */
    w[1] = 5;
    ck_assert_int_eq(aik_placer_new_units(units, 2, wb, 2, &inv, NULL, &p, &err), -EINVAL);
    w[1] = 1;
    ck_assert_int_eq(aik_placer_new_units(units, 0, wb, 2, &inv, NULL, &p, &err), -E2BIG);
}
END_TEST

/* ---------- search vs brute force ---------- */

static void random_inventory(aik_device_inventory *inv, uint32_t n_dev, uint64_t model_bytes)
{
    memset(inv, 0, sizeof(*inv));
    snprintf(inv->name, sizeof(inv->name), "random");
    inv->n_devices = n_dev;
    inv->default_gbps = 1 + rnd(16);
    inv->default_latency_us = rnd(50);
    for (uint32_t d = 0; d < n_dev; d++) {
        aik_inv_device *v = &inv->dev[d];
        snprintf(v->id, sizeof(v->id), "d%u", d);
        v->info.kind = d == 0 ? AIK_BACKEND_CPU : 1 + rnd(2);
        v->backend_bit = d == 0 ? AIK_BACKEND_BIT_CPU : v->info.kind == AIK_BACKEND_GPU ? AIK_BACKEND_BIT_VULKAN
                                                                                         : AIK_BACKEND_BIT_NPU;
        /* From a sliver of the model to all of it; the CPU usually fits all. */
        v->info.memory_bytes = d == 0 && rnd(4) ? model_bytes * 2 : model_bytes * (1 + rnd(100)) / 80 + 1;
        v->info.declared_gflops = 0.5 + rnd(100);
        v->info.declared_gbps = 0.5 + rnd(50);
        v->launch_us = rnd(100);
        for (int op = 0; op < AIK_OP_COUNT; op++)
            v->info.op_dtypes[op] = 0x1f;
        if (d > 0 && rnd(3) == 0) { /* an NPU-like device missing some ops/dtypes */
            v->info.op_dtypes[AIK_OP_GET_ROWS] = 0;
            if (rnd(2))
                v->info.op_dtypes[AIK_OP_ATTENTION] = 0;
            v->info.op_dtypes[AIK_OP_MATMUL] = rnd(2) ? (1u << AIK_DTYPE_Q8_0) : 0x1f & ~(1u << AIK_DTYPE_Q4_0);
        }
    }
    for (uint32_t i = 0; i + 1 < n_dev && inv->n_links < 3; i++)
        if (rnd(2))
            inv->link[inv->n_links++] = (aik_inv_link){ .a = i, .b = i + 1, .gbps = 1 + rnd(30),
                                                        .latency_us = rnd(40) };
}

static bool next_assign(uint32_t *a, uint32_t n, uint32_t base)
{
    for (uint32_t i = 0; i < n; i++) {
        if (++a[i] < base)
            return true;
        a[i] = 0;
    }
    return false;
}

START_TEST(test_vs_brute_force)
{
    uint32_t n_feasible_cases = 0, n_split = 0;
    rng_state = 0x1234567ull;
    for (int cs = 0; cs < 96; cs++) {
        uint32_t L = 1 + rnd(5), dim = 32 * (1 + rnd(3)), D = 2 + rnd(3);
        aik_layer_hparams layers[5];
        for (uint32_t l = 0; l < L; l++)
            layers[l] = (aik_layer_hparams){ .n_heads = 2, .n_kv_heads = 1 + rnd(2), .ffn_dim = 32 * (1 + rnd(4)) };
        aik_graph *g = llama_graph(L, dim, layers, 64 + 32 * rnd(4), 16 + rnd(64), rnd(2) ? AIK_MODEL_TIED_EMBEDDINGS : 0);
        /* Random weight dtypes per layer so op × dtype support matters. */
        for (int32_t i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == AIK_OP_WEIGHT && g->nodes[i].n_dims == 2 && rnd(2))
                g->nodes[i].dtype = rnd(2) ? AIK_DTYPE_Q8_0 : AIK_DTYPE_Q4_0;
        aik_device_inventory inv;
        aik_placement_options opt = { .backends = rnd(5) == 0 ? AIK_BACKEND_BIT_CPU | AIK_BACKEND_BIT_NPU : 0 };
        random_inventory(&inv, D, aik_graph_weight_bytes(g));
        aik_placer *p = NULL;
        aik_placement *pl = NULL;
        aik_error err = { 0 };
        ck_assert_msg(aik_placer_new(g, &inv, &opt, &p, &err) == 0, "%s: %s", err.where, err.message);
        uint32_t U = aik_placer_unit_count(p), a[8] = { 0 }, best_a[8];
        double best = INFINITY, ms;
        do {
            if (aik_placer_evaluate(p, a, &ms, NULL) == 0 && ms < best) {
                best = ms;
                memcpy(best_a, a, sizeof(a));
            }
        } while (next_assign(a, U, D));
        int r = aik_placer_plan(p, NULL, &pl, &err);
        if (isinf(best)) {
            ck_assert_msg(r == -ENOSPC || r == -ENOTSUP, "case %d: planner found a plan brute force did not", cs);
        } else {
            ck_assert_msg(r == 0, "case %d: %s: %s (brute force %g)", cs, err.where, err.message, best);
            ck_assert_msg(fabs(pl->total_ms - best) <= 1e-9 * best, "case %d: planner %.9g, brute force %.9g", cs,
                          pl->total_ms, best);
            ck_assert(pl->optimal);
            /* The plan is itself valid and its reported cost is its cost. */
            ck_assert_int_eq(aik_placer_evaluate(p, pl->unit_device, &ms, &err), 0);
            ck_assert_double_eq_tol(ms, pl->total_ms, 1e-9 * ms);
            for (uint32_t d = 0; d < D; d++)
                ck_assert_uint_le(pl->device_bytes[d], inv.dev[d].info.memory_bytes);
            for (uint32_t u = 0; u < U; u++) {
                const aik_placement_unit *un = aik_placer_unit(p, u);
                const aik_inv_device *dv = &inv.dev[pl->unit_device[u]];
                for (int op = 0; op < AIK_OP_COUNT; op++)
                    ck_assert_uint_eq(un->op_dtypes[op] & ~dv->info.op_dtypes[op], 0);
                if (opt.backends)
                    ck_assert(dv->backend_bit & opt.backends);
            }
            n_feasible_cases++;
            n_split += pl->n_segments > 1;
            (void)best_a;
        }
        aik_placement_free(pl);
        aik_placer_free(p);
        aik_graph_free(g);
    }
    /* The generator must exercise both splits and infeasible cases. */
    ck_assert_uint_ge(n_feasible_cases, 48);
    ck_assert_uint_ge(n_split, 10);
    ck_assert_uint_lt(n_feasible_cases, 96);
}
END_TEST

/* ---------- inventories + overrides ---------- */

static aik_graph *model_8(void)
{
    static aik_layer_hparams layers[8];
    for (int l = 0; l < 8; l++)
        layers[l] = (aik_layer_hparams){ 8, 2, 1024 };
    aik_graph *g = llama_graph(8, 256, layers, 4096, 512, 0);
    for (int32_t i = 0; i < g->n_nodes; i++) /* a q8_0 model, as an NPU wants it */
        if (g->nodes[i].op == AIK_OP_WEIGHT && g->nodes[i].n_dims == 2 && strncmp(g->nodes[i].name, "blk.", 4) == 0)
            g->nodes[i].dtype = AIK_DTYPE_Q8_0;
    return g;
}

START_TEST(test_small_gpu_split)
{
    aik_graph *g = model_8();
    aik_device_inventory *inv = load_profile("small-gpu.yaml");
    aik_placer *p = NULL;
    aik_placement *pl = NULL;
    aik_error err = { 0 };
    /* Shrink the GPU below the model so it must split. */
    inv->dev[1].info.memory_bytes = aik_graph_weight_bytes(g) / 2;
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    ck_assert_uint_ge(pl->n_segments, 2);
    ck_assert_uint_le(pl->device_bytes[1], inv->dev[1].info.memory_bytes);
    ck_assert_uint_gt(pl->device_bytes[1], 0);
    char *text = NULL;
    ck_assert_int_eq(aik_placement_explain(p, pl, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "memory ("));
    ck_assert_ptr_nonnull(strstr(text, "segment 1"));
    free(text);
    aik_placement_free(pl);
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

START_TEST(test_override)
{
    aik_graph *g = model_8();
    aik_device_inventory *inv = load_profile("cpu-gpu-npu.yaml");
    aik_placer *p = NULL;
    aik_placement *pl = NULL;
    aik_error err = { 0 };
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);

    ck_assert_int_eq(aik_placer_plan(p, "layers=0-3:cpu0,output:cpu", &pl, &err), 0);
    for (uint32_t u = 1; u <= 4; u++)
        ck_assert_uint_eq(pl->unit_device[u], 0);
    ck_assert_uint_eq(pl->unit_device[9], 0);
    ck_assert_uint_eq(pl->pinned_units, 5);
    aik_placement_free(pl);

    ck_assert_int_eq(aik_placer_plan(p, "gpu-layers=3", &pl, &err), 0);
    for (uint32_t u = 0; u < 10; u++)
        ck_assert_uint_eq(pl->unit_device[u], u >= 6 && u <= 8 ? 1u : 0u);
    aik_placement_free(pl);
    ck_assert_int_eq(aik_placer_plan(p, "gpu-layers=99", &pl, &err), 0);
    ck_assert_uint_eq(pl->unit_device[0], 0);
    for (uint32_t u = 1; u < 10; u++)
        ck_assert_uint_eq(pl->unit_device[u], 1);
    aik_placement_free(pl);

    ck_assert_int_eq(aik_placer_plan(p, "layers=5:npu0", &pl, &err), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err.where, "layer 5"));
    ck_assert_ptr_nonnull(strstr(err.message, "rope with f32 unsupported"));

    static const char *bad[] = { "layers=0-8:cpu0", "layers=3-1:cpu0", "layers=x:cpu0", "layers=1:tpu0",
                                 "head:cpu0", "embedding", "gpu-layers=", "gpu-layers=-1", "output:cpu0,",
                                 "layers=:cpu0", "output:" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pl = NULL;
        ck_assert_msg(aik_placer_plan(p, bad[i], &pl, &err) == -EINVAL, "override '%s' accepted", bad[i]);
        ck_assert_ptr_null(pl);
        ck_assert_str_eq(err.where, "override");
    }
    aik_placer_free(p);

    /* A pinned unit too big for its device: -ENOSPC naming it. */
    inv->dev[1].info.memory_bytes = 1024;
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, "layers=2:vulkan0", &pl, &err), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(err.where, "layer 2"));
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

START_TEST(test_npu_and_profile)
{
    aik_graph *g = model_8();
    aik_device_inventory *inv = load_profile("cpu-gpu-npu.yaml");
    aik_placer *p = NULL;
    aik_placement *pl = NULL;
    aik_error err = { 0 };
    aik_placement_options opt = { .backends = AIK_BACKEND_BIT_CPU | AIK_BACKEND_BIT_NPU };

    ck_assert_int_eq(aik_placer_new(g, inv, &opt, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    for (uint32_t u = 0; u < 10; u++) {
        ck_assert_uint_ne(pl->unit_device[u], 1); /* vulkan excluded by profile */
        ck_assert_uint_ne(pl->unit_device[u], 2); /* npu lacks attention / get_rows / f32 matmul */
    }
    char *text = NULL;
    ck_assert_int_eq(aik_placement_explain(p, pl, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "vulkan0: backend not allowed by the execution profile"));
    ck_assert_ptr_nonnull(strstr(text, "npu0: op get_rows with f32 unsupported"));
    free(text);
    aik_placement_free(pl);
    aik_placer_free(p);

    opt.backends = AIK_BACKEND_BIT_NPU;
    ck_assert_int_eq(aik_placer_new(g, inv, &opt, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), -ENOSPC);
    ck_assert_str_eq(err.where, "embedding");
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

START_TEST(test_replan_without)
{
    aik_graph *g = model_8();
    aik_device_inventory *inv = load_profile("two-gpus.yaml");
    aik_placer *p = NULL;
    aik_placement *pl = NULL, *pl2 = NULL, *pl3 = NULL;
    aik_error err = { 0 };
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, "layers=0-7:vulkan0", &pl, &err), 0);
    ck_assert_uint_eq(pl->unit_device[3], 1);

    ck_assert_int_eq(aik_placement_replan_without(p, pl, 1, "layers=0-7:vulkan0", &pl2, &err), 0);
    for (uint32_t u = 0; u < 10; u++)
        ck_assert_uint_ne(pl2->unit_device[u], 1);
    ck_assert_uint_eq(pl2->excluded_mask, 2);
    ck_assert_uint_eq(pl2->device_bytes[1], 0);
    ck_assert_ptr_nonnull(strstr(pl2->note, "vulkan0 failed"));
    ck_assert_ptr_nonnull(strstr(pl2->note, "layer 3 -> "));
    ck_assert_uint_eq(pl2->pinned_units, 0);

    /* Then the second GPU fails too: everything on the CPU. */
    ck_assert_int_eq(aik_placement_replan_without(p, pl2, 2, NULL, &pl3, &err), 0);
    for (uint32_t u = 0; u < 10; u++)
        ck_assert_uint_eq(pl3->unit_device[u], 0);
    ck_assert_uint_eq(pl3->n_segments, 1);
    char *text = NULL;
    ck_assert_int_eq(aik_placement_explain(p, pl3, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "vulkan1: excluded (failed)"));
    free(text);

    /* No device left. */
    aik_placement *pl4 = NULL;
    ck_assert_int_eq(aik_placement_replan_without(p, pl3, 0, NULL, &pl4, &err), -ENODEV);
    ck_assert_ptr_null(pl4);
    ck_assert_int_eq(aik_placement_replan_without(p, pl3, 7, NULL, &pl4, &err), -EINVAL);

    /* The CPU too small once the GPUs are gone: a clear -ENOSPC. */
    aik_placer_free(p);
    inv->dev[0].info.memory_bytes = 4096;
    inv->dev[2].info.memory_bytes = 4096;
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placement_replan_without(p, pl, 1, NULL, &pl4, &err), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(err.where, "vulkan0"));
    aik_placement_free(pl);
    aik_placement_free(pl2);
    aik_placement_free(pl3);
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

START_TEST(test_telemetry)
{
    aik_graph *g = model_8();
    aik_device_inventory *inv = load_profile("small-gpu.yaml");
    aik_placer *p = NULL;
    aik_placement *pl = NULL;
    aik_error err = { 0 };
    double est, m;
    inv->dev[1].info.memory_bytes = 4ull << 30;
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    for (uint32_t u = 0; u < 10; u++)
        ck_assert_uint_eq(pl->unit_device[u], 1); /* the GPU is faster on paper */
    aik_placement_free(pl);

    /* The GPU turns out slow in practice: 50 ms for the whole model. */
    ck_assert_int_eq(aik_placer_unit_cost(p, 3, 1, &est), 0);
    ck_assert_int_eq(aik_placement_record(p, 0, 10, 1, 50.0), 0);
    ck_assert_int_eq(aik_placer_unit_cost(p, 3, 1, &m), 0);
    ck_assert(m > est * 10);
    aik_placement_record_fn fn = aik_placement_record; /* the callback type matches */
    ck_assert_int_eq(fn(p, 0, 10, 1, 50.0), 0);
    double m2;
    ck_assert_int_eq(aik_placer_unit_cost(p, 3, 1, &m2), 0);
    ck_assert_double_eq_tol(m2, m, 1e-12); /* same sample: average unchanged */
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    for (uint32_t u = 0; u < 10; u++)
        ck_assert_uint_eq(pl->unit_device[u], 0);
    char *text = NULL;
    ck_assert_int_eq(aik_placement_explain(p, pl, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "estimated"));
    free(text);
    aik_placement_free(pl);
    /* Measured CPU time recorded too: now reported as measured. */
    ck_assert_int_eq(aik_placement_record(p, 0, 10, 0, 1.0), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    ck_assert_double_eq_tol(pl->total_ms, 1.0, 1e-9); /* shares + one launch add back up */
    ck_assert_int_eq(aik_placement_explain(p, pl, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "measured"));
    free(text);
    aik_placement_free(pl);

    ck_assert_int_eq(aik_placement_record(p, 3, 3, 0, 1.0), -EINVAL);
    ck_assert_int_eq(aik_placement_record(p, 0, 11, 0, 1.0), -EINVAL);
    ck_assert_int_eq(aik_placement_record(p, 0, 1, 2, 1.0), -EINVAL);
    ck_assert_int_eq(aik_placement_record(p, 0, 1, 0, -1.0), -EINVAL);
    ck_assert_int_eq(aik_placement_record(p, 0, 1, 0, NAN), -EINVAL);
    ck_assert_int_eq(aik_placement_record(NULL, 0, 1, 0, 1.0), -EINVAL);
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

/* A search budget too small to prove optimality: a valid plan, flagged. */
START_TEST(test_search_budget)
{
    aik_graph *g = model_8();
    aik_device_inventory *inv = load_profile("two-gpus.yaml");
    aik_placement_options opt = { .max_expansions = 12 };
    aik_placer *p = NULL;
    aik_placement *pl = NULL, *full = NULL;
    aik_error err = { 0 };
    double ms;
    inv->dev[1].info.memory_bytes = aik_graph_weight_bytes(g) / 3;
    inv->dev[2].info.memory_bytes = aik_graph_weight_bytes(g) / 3;
    ck_assert_int_eq(aik_placer_new(g, inv, &opt, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &pl, &err), 0);
    ck_assert(!pl->optimal);
    ck_assert_int_eq(aik_placer_evaluate(p, pl->unit_device, &ms, &err), 0);
    ck_assert_double_eq_tol(ms, pl->total_ms, 1e-9 * ms);
    aik_placer_free(p);
    ck_assert_int_eq(aik_placer_new(g, inv, NULL, &p, &err), 0);
    ck_assert_int_eq(aik_placer_plan(p, NULL, &full, &err), 0);
    ck_assert(full->optimal);
    ck_assert(full->total_ms <= pl->total_ms);
    aik_placement_free(pl);
    aik_placement_free(full);
    aik_placer_free(p);
    aik_graph_free(g);
    free(inv);
}
END_TEST

START_TEST(test_null_and_free)
{
    aik_placer_free(NULL);
    aik_placement_free(NULL);
    ck_assert_uint_eq(aik_placer_unit_count(NULL), 0);
    ck_assert_int_eq(aik_placer_new(NULL, NULL, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(aik_device_inventory_parse("x", NULL, 0, NULL, NULL), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_profiles_parse);
    tcase_add_loop_test(tc, test_profiles_malformed, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_profiles_caps);
    tcase_add_test(tc, test_graph_units);
    tcase_add_test(tc, test_cost_by_hand);
    tcase_add_test(tc, test_vs_brute_force);
    tcase_add_test(tc, test_small_gpu_split);
    tcase_add_test(tc, test_override);
    tcase_add_test(tc, test_npu_and_profile);
    tcase_add_test(tc, test_replan_without);
    tcase_add_test(tc, test_telemetry);
    tcase_add_test(tc, test_search_budget);
    tcase_add_test(tc, test_null_and_free);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(suite());
}
