/* SPDX-License-Identifier: MIT */
/*
 * Split execution (scheduler/split_exec.c) and the CPU backend
 * (scheduler/cpu_backend.c) on a tiny model, without a GPU:
 *  - a CPU-only plan gives the logits of aik_cpu_exec bit for bit;
 *  - plans over two CPU backends (every boundary a real copy through host
 *    memory, ping-pong between devices, tied embeddings uploaded to two
 *    devices) give the same bits;
 *  - a fault-injecting "GPU" (a CPU backend behind a wrapper vtable that
 *    reports kind gpu and fails execute or upload on the Nth call) proves
 *    the fallback: generation finishes with the same tokens and logits and
 *    the message names the device and the units that moved;
 *  - the telemetry hook gets one record per segment per run;
 *  - -ENOSPC and -EINVAL leave the KV cache as it was;
 *  - the CPU backend's vtable, buffers and segment checks.
 * Equality is bitwise: the CPU backend runs the same kernels in the same
 * order as aik_cpu_exec, and every kernel's result is independent of the
 * thread split and batch size (kernels/cpu/cpu_kernels.h).
 */
#include "split_util.h"

#include "runtime/generate.h"
#include "scheduler/cpu_backend.h"
#include "scheduler/segment_nodes.h"
#include "scheduler/threadpool.h"

#define DEV_YAML(id, kind, gflops)                                                                                   \
    "  - id: " id "\n    kind: " kind "\n    memory: 1 GiB\n    gflops: " gflops "\n    gbps: 20\n    ops: all\n"

static const char *INV_ONE_CPU = "schema: 1\nname: one-cpu\ndevices:\n" DEV_YAML("cpu0", "cpu", "100");
static const char *INV_TWO_CPU = "schema: 1\nname: two-cpus\ndevices:\n" DEV_YAML("cpu0", "cpu", "100")
    DEV_YAML("cpu1", "cpu", "100");
static const char *INV_FAKE_GPU = "schema: 1\nname: cpu-fake-gpu\ndevices:\n" DEV_YAML("cpu0", "cpu", "100")
    DEV_YAML("fake0", "gpu", "1000");

#define MAXDEV 4

typedef struct rig {
    aik_device_inventory *inv;
    aik_placer *placer;
    aik_placement *plan;
    aik_backend *cpu[MAXDEV];
    faulty fy[MAXDEV];
    aik_split_device devs[MAXDEV];
    aik_threadpool *pool;
    aik_split_exec *e;
    rec_log log;
} rig;

/* Set before rig_open: device 0 also goes through the fault wrapper
 * (reporting kind cpu). */
static bool rig_wrap_cpu0;
/* Set before rig_open: the wrapped device fails this upload while the
 * executor is built (weights). */
static int rig_setup_upload_fault;

/* Every device is a CPU backend; device `wrap` (or -1) goes through the
 * fault wrapper reporting `kind`. With with_placer false the executor gets
 * no placer (no fallback possible). */
static int rig_open(rig *r, const aik_graph *g, const char *yaml, const char *override, uint32_t ctx,
                    uint32_t max_batch, int wrap, uint32_t kind, bool with_placer, aik_error *err)
{
    aik_placement_options po = { .ctx_len = ctx };
    memset(r, 0, sizeof(*r));
    r->inv = inv_parse(yaml);
    ck_assert_int_eq(aik_threadpool_new(2, &r->pool), 0);
    for (uint32_t d = 0; d < r->inv->n_devices; d++) {
        /* device 1 threaded, the others not: results must not depend on it */
        ck_assert_int_eq(aik_cpu_backend_open_pool(d == 1 ? r->pool : NULL, &r->cpu[d], err), 0);
        r->devs[d] = (aik_split_device){ aik_cpu_backend_ops(), r->cpu[d] };
        if ((int)d == wrap || (d == 0 && rig_wrap_cpu0)) {
            r->fy[d] = (faulty){ .inner = aik_cpu_backend_ops(), .b = r->cpu[d],
                                 .kind = (int)d == wrap ? kind : AIK_BACKEND_CPU };
            r->devs[d] = (aik_split_device){ &faulty_ops, (aik_backend *)&r->fy[d] };
            if ((int)d == wrap && rig_setup_upload_fault) {
                r->fy[d].fail_upload_at = rig_setup_upload_fault;
                r->fy[d].armed = true;
            }
        }
    }
    int rc = aik_placer_new(g, r->inv, &po, &r->placer, err);
    ck_assert_msg(rc == 0, "placer: %s: %s", err->where, err->message);
    rc = aik_placer_plan(r->placer, override, &r->plan, err);
    ck_assert_msg(rc == 0, "plan: %s: %s", err->where, err->message);
    aik_split_config cfg = {
        .max_batch = max_batch,
        .ctx_len = ctx,
        .placer = with_placer ? r->placer : NULL,
        .override = override,
        .inventory = r->inv,
        .record = rec_hook,
        .record_user = &r->log,
    };
    rc = aik_split_exec_new(g, r->plan, r->devs, r->inv->n_devices, &cfg, &r->e, err);
    if (wrap >= 0)
        r->fy[wrap].armed = true;
    r->fy[0].armed |= rig_wrap_cpu0;
    return rc;
}

static void rig_close(rig *r)
{
    aik_split_exec_free(r->e);
    for (uint32_t d = 0; d < MAXDEV; d++)
        aik_cpu_backend_ops()->close(r->cpu[d]);
    aik_threadpool_free(r->pool);
    aik_placement_free(r->plan);
    aik_placer_free(r->placer);
    free(r->inv);
}

static void run_ok(aik_split_exec *e, const int32_t *t, uint32_t n, uint32_t n_out, const float **lg)
{
    aik_error err = { 0 };
    int r = aik_split_exec_run(e, t, n, n_out, lg, &err);
    ck_assert_msg(r == 0, "run: %d %s: %s", r, err.where, err.message);
}

#define N_PROMPT 5
#define N_GEN 10
static const int32_t prompt[N_PROMPT] = { 256, 72, 101, 108, 108 };

/* Prompt + greedy decode through e, bitwise against aik_cpu_exec. */
static void compare_generation(const aik_graph *g, aik_split_exec *e, uint32_t ctx)
{
    uint32_t V = g->hp.n_vocab;
    float *ref_prompt = malloc((size_t)N_PROMPT * V * sizeof(float));
    float *ref_steps = malloc((size_t)N_GEN * V * sizeof(float));
    int32_t ref_tok[N_GEN], tok[N_GEN];
    const float *lg;

    ck_assert_ptr_nonnull(ref_prompt);
    ck_assert_ptr_nonnull(ref_steps);
    reference_run(g, ctx, prompt, N_PROMPT, N_GEN, ref_prompt, ref_tok, ref_steps);
    run_ok(e, prompt, N_PROMPT, N_PROMPT, &lg);
    ck_assert_msg(memcmp(lg, ref_prompt, (size_t)N_PROMPT * V * sizeof(float)) == 0, "prompt logits differ");
    tok[0] = argmax_f(lg + (size_t)(N_PROMPT - 1) * V, V);
    for (uint32_t i = 1; i < N_GEN; i++) {
        run_ok(e, &tok[i - 1], 1, 1, &lg);
        ck_assert_msg(memcmp(lg, ref_steps + (size_t)i * V, (size_t)V * sizeof(float)) == 0,
                      "decode step %u logits differ", i);
        tok[i] = argmax_f(lg, V);
    }
    for (uint32_t i = 0; i < N_GEN; i++)
        ck_assert_msg(tok[i] == ref_tok[i], "token %u: split %d, cpu %d", i, tok[i], ref_tok[i]);
    ck_assert_uint_eq(aik_split_exec_n_past(e), N_PROMPT + N_GEN - 1);
    free(ref_prompt);
    free(ref_steps);
}

START_TEST(test_cpu_only_plan)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    tiny_open(&t, AIK_DTYPE_F32, 0);
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_ONE_CPU, NULL, 32, 8, -1, 0, true, &err), 0);
    ck_assert_uint_eq(r.plan->n_segments, 1);
    compare_generation(t.m->graph, r.e, 32);
    ck_assert_ptr_null(aik_split_exec_fallback(r.e));
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

/* Ping-pong: embedding cpu0, layer 0 cpu1, layer 1 cpu0, head cpu1. */
static void two_cpu(aik_dtype dt, uint32_t flags, const char *override, uint32_t want_segments)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    tiny_open(&t, dt, flags);
    int rc = rig_open(&r, t.m->graph, INV_TWO_CPU, override, 32, 8, -1, 0, true, &err);
    ck_assert_msg(rc == 0, "split: %s: %s", err.where, err.message);
    ck_assert_uint_eq(r.plan->n_segments, want_segments);
    compare_generation(t.m->graph, r.e, 32);
    rig_close(&r);
    tiny_close(&t);
}

START_TEST(test_two_cpu_pingpong_f32)
{
    two_cpu(AIK_DTYPE_F32, 0, "embedding:cpu0,layers=0:cpu1,layers=1:cpu0,output:cpu1", 4);
}
END_TEST

START_TEST(test_two_cpu_pingpong_q8_tied)
{
    /* tied: token_embd is read by the embedding (cpu0) and the head (cpu1) */
    two_cpu(AIK_DTYPE_Q8_0, AIK_SLM_FLAG_TIED_EMBEDDINGS | AIK_SLM_FLAG_QKV_BIAS,
            "embedding:cpu0,layers=0:cpu1,layers=1:cpu0,output:cpu1", 4);
}
END_TEST

START_TEST(test_two_cpu_q4_halves)
{
    two_cpu(AIK_DTYPE_Q4_0, AIK_SLM_FLAG_ROPE_NEOX, "embedding:cpu1,layers=0:cpu1,layers=1:cpu0,output:cpu0", 2);
}
END_TEST

START_TEST(test_prompt_in_chunks)
{
    /* the prompt in batches of 3 + 2 gives the same last logits */
    tiny t;
    rig r;
    aik_error err = { 0 };
    const float *lg;
    tiny_open(&t, AIK_DTYPE_F16, 0);
    uint32_t V = t.m->hp.n_vocab;
    float *ref_prompt = malloc((size_t)N_PROMPT * V * sizeof(float)), *ref_steps = malloc((size_t)2 * V * sizeof(float));
    int32_t ref_tok[2];
    reference_run(t.m->graph, 32, prompt, N_PROMPT, 2, ref_prompt, ref_tok, ref_steps);
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_TWO_CPU, "layers=1:cpu1,output:cpu1", 32, 3, -1, 0, true, &err), 0);
    run_ok(r.e, prompt, 3, 1, &lg);
    ck_assert(memcmp(lg, ref_prompt + (size_t)2 * V, V * sizeof(float)) == 0);
    run_ok(r.e, prompt + 3, 2, 2, &lg);
    ck_assert(memcmp(lg, ref_prompt + (size_t)3 * V, 2 * V * sizeof(float)) == 0);
    free(ref_prompt);
    free(ref_steps);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

START_TEST(test_telemetry)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    const float *lg;
    tiny_open(&t, AIK_DTYPE_F32, 0);
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_TWO_CPU, "embedding:cpu0,layers=0:cpu1,layers=1:cpu0,output:cpu1",
                              32, 8, -1, 0, true, &err), 0);
    ck_assert_uint_eq(r.plan->n_segments, 4);
    run_ok(r.e, prompt, N_PROMPT, 1, &lg);
    int32_t next = argmax_f(lg, t.m->hp.n_vocab);
    run_ok(r.e, &next, 1, 1, &lg);
    ck_assert_uint_eq(r.log.n, 2 * 4);
    for (uint32_t run = 0; run < 2; run++)
        for (uint32_t k = 0; k < 4; k++) {
            const rec_entry *x = &r.log.r[run * 4 + k];
            ck_assert_uint_eq(x->first_unit, r.plan->seg[k].first_unit);
            ck_assert_uint_eq(x->end_unit, r.plan->seg[k].end_unit);
            ck_assert_uint_eq(x->device, r.plan->seg[k].device);
            ck_assert(x->ms >= 0 && isfinite(x->ms));
            /* the placer accepts what the hook got */
            ck_assert_int_eq(aik_placement_record(r.placer, x->first_unit, x->end_unit, x->device, x->ms), 0);
        }
    /* failed runs record nothing */
    int32_t bad = -1;
    ck_assert_int_eq(aik_split_exec_run(r.e, &bad, 1, 1, &lg, &err), -EINVAL);
    ck_assert_uint_eq(r.log.n, 8);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

START_TEST(test_kv_unchanged_on_errors)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    const float *lg;
    const uint32_t ctx = 16;
    tiny_open(&t, AIK_DTYPE_F32, 0);
    uint32_t V = t.m->hp.n_vocab;
    float *ref_prompt = malloc((size_t)N_PROMPT * V * sizeof(float)), *ref_steps = malloc((size_t)3 * V * sizeof(float));
    int32_t ref_tok[3];
    reference_run(t.m->graph, ctx, prompt, N_PROMPT, 3, ref_prompt, ref_tok, ref_steps);
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_TWO_CPU, "layers=1:cpu1", ctx, 8, -1, 0, true, &err), 0);
    run_ok(r.e, prompt, N_PROMPT, 1, &lg);
    int32_t fill[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    run_ok(r.e, fill, 8, 1, &lg);
    run_ok(r.e, fill, 3, 1, &lg);
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), 16);
    ck_assert_int_eq(aik_split_exec_run(r.e, fill, 1, 1, &lg, &err), -ENOSPC);
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), 16);
    /* back to the prompt: the cache of positions 0..4 is intact */
    aik_split_exec_truncate(r.e, N_PROMPT);
    int32_t bad[2] = { ref_tok[0], (int32_t)V };
    ck_assert_int_eq(aik_split_exec_run(r.e, bad, 2, 1, &lg, &err), -EINVAL);
    ck_assert_int_eq(aik_split_exec_run(r.e, bad, 9, 1, &lg, &err), -EINVAL); /* > max_batch */
    ck_assert_int_eq(aik_split_exec_run(r.e, bad, 1, 2, &lg, &err), -EINVAL); /* n_out > n_tokens */
    ck_assert_int_eq(aik_split_exec_run(r.e, bad, 0, 0, &lg, &err), -EINVAL);
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), N_PROMPT);
    run_ok(r.e, &ref_tok[0], 1, 1, &lg);
    ck_assert(memcmp(lg, ref_steps + V, V * sizeof(float)) == 0);
    run_ok(r.e, &ref_tok[1], 1, 1, &lg);
    ck_assert(memcmp(lg, ref_steps + 2 * (size_t)V, V * sizeof(float)) == 0);
    free(ref_prompt);
    free(ref_steps);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

/* ---- fallback ---- */

static void fallback_case(const char *override, int fail_exec_at, int fail_upload_at, bool forever,
                          const char *want_units)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    tiny_open(&t, AIK_DTYPE_Q8_0, 0);
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_FAKE_GPU, override, 32, 8, 1, AIK_BACKEND_GPU, true, &err), 0);
    r.fy[1].fail_exec_at = fail_exec_at;
    r.fy[1].fail_upload_at = fail_upload_at;
    r.fy[1].fail_forever = forever;
    bool on_fake = false;
    for (uint32_t k = 0; k < r.plan->n_segments; k++)
        on_fake |= r.plan->seg[k].device == 1;
    ck_assert(on_fake);
    compare_generation(t.m->graph, r.e, 32);
    const aik_error *fb = aik_split_exec_fallback(r.e);
    ck_assert_ptr_nonnull(fb);
    ck_assert_uint_eq(aik_split_exec_fallback_count(r.e), 1);
    ck_assert_str_eq(fb->where, "fake0");
    ck_assert_int_eq(fb->code, -EIO);
    char want[256];
    snprintf(want, sizeof(want), "; %s moved to cpu0", want_units);
    ck_assert_msg(strncmp(fb->message, "fake0 failed: faulty.", 21) == 0 && strstr(fb->message, "injected fault") &&
                  strstr(fb->message, want), "message: %s (want ...%s)", fb->message, want);
    const aik_placement *now = aik_split_exec_plan(r.e);
    ck_assert_uint_eq(now->n_segments, 1);
    ck_assert_uint_eq(now->seg[0].device, 0);
    ck_assert_uint_eq(now->excluded_mask, 2);
    /* telemetry after the fallback names only cpu0 */
    ck_assert_uint_eq(r.log.r[(r.log.n - 1) % 256].device, 0);
    rig_close(&r);
    tiny_close(&t);
}

START_TEST(test_fallback_execute_in_decode)
{
    /* calls 1 (prompt) and 2, 3 (decode) work, the 4th fails */
    fallback_case("embedding:cpu0,layers=0-1:fake0,output:cpu0", 4, 0, false, "layers 0-1");
}
END_TEST

START_TEST(test_fallback_execute_in_prompt)
{
    /* the first execute fails, and the device stays broken */
    fallback_case("embedding:cpu0,gpu-layers=3", 1, 0, true, "layers 0-1, output");
}
END_TEST

START_TEST(test_fallback_upload)
{
    /* uploads per run: the token ids are not read there, the residual is
     * copied in once: the 3rd run's copy fails */
    fallback_case("embedding:cpu0,layers=1:fake0,output:fake0", 0, 3, false, "layer 1, output");
}
END_TEST

START_TEST(test_fallback_everything_on_gpu)
{
    fallback_case("embedding:fake0,layers=0-1:fake0,output:fake0", 2, 0, false, "embedding, layers 0-1, output");
}
END_TEST

START_TEST(test_fallback_at_setup)
{
    /* fake0 cannot take its second weight: the executor is built on cpu0 */
    tiny t;
    rig r;
    aik_error err = { 0 };
    tiny_open(&t, AIK_DTYPE_F32, 0);
    rig_setup_upload_fault = 2;
    int rc = rig_open(&r, t.m->graph, INV_FAKE_GPU, "embedding:cpu0,layers=0-1:fake0,output:cpu0", 32, 8, 1,
                      AIK_BACKEND_GPU, true, &err);
    rig_setup_upload_fault = 0;
    ck_assert_msg(rc == 0, "split: %s: %s", err.where, err.message);
    const aik_error *fb = aik_split_exec_fallback(r.e);
    ck_assert_ptr_nonnull(fb);
    ck_assert_str_eq(fb->message, "fake0 failed: faulty.upload: injected fault on upload 2; layers 0-1 moved "
                                  "to cpu0");
    ck_assert_uint_eq(aik_split_exec_plan(r.e)->n_segments, 1);
    compare_generation(t.m->graph, r.e, 32);
    rig_close(&r);

    /* the same fault on a device reported as a CPU: no fallback, refused */
    rig_setup_upload_fault = 1;
    rc = rig_open(&r, t.m->graph, INV_TWO_CPU, "layers=1:cpu1", 32, 8, 1, AIK_BACKEND_CPU, true, &err);
    rig_setup_upload_fault = 0;
    ck_assert_int_eq(rc, -EIO);
    ck_assert_str_eq(err.where, "cpu1: faulty.upload");
    ck_assert_ptr_null(r.e);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

START_TEST(test_replay_fails_then_resumes)
{
    /* fake0 fails in the 3rd run; rebuilding the KV cache on cpu0 then fails
     * too (cpu0's 6th execute): the run returns the error with n_past kept,
     * and the next run finishes the rebuild and gives the right logits */
    tiny t;
    rig r;
    aik_error err = { 0 };
    const float *lg;
    tiny_open(&t, AIK_DTYPE_F32, 0);
    uint32_t V = t.m->hp.n_vocab;
    float *ref_prompt = malloc((size_t)N_PROMPT * V * sizeof(float)), *ref_steps = malloc((size_t)N_GEN * V * 4);
    int32_t ref_tok[N_GEN];
    reference_run(t.m->graph, 32, prompt, N_PROMPT, N_GEN, ref_prompt, ref_tok, ref_steps);
    rig_wrap_cpu0 = true;
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_FAKE_GPU, "embedding:cpu0,layers=0-1:fake0,output:cpu0", 32, 8, 1,
                              AIK_BACKEND_GPU, true, &err), 0);
    rig_wrap_cpu0 = false;
    ck_assert_uint_eq(r.plan->n_segments, 3);
    r.fy[1].fail_exec_at = 3;
    r.fy[0].fail_exec_at = 6; /* runs 1, 2: calls 1-4; run 3: 5 (embedding), then the replay: 6 */
    run_ok(r.e, prompt, N_PROMPT, N_PROMPT, &lg);
    ck_assert(memcmp(lg, ref_prompt, (size_t)N_PROMPT * V * sizeof(float)) == 0);
    run_ok(r.e, &ref_tok[0], 1, 1, &lg);
    ck_assert(memcmp(lg, ref_steps + V, V * sizeof(float)) == 0);
    ck_assert_int_eq(aik_split_exec_run(r.e, &ref_tok[1], 1, 1, &lg, &err), -EIO);
    ck_assert_str_eq(err.where, "faulty.execute");
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), N_PROMPT + 1);
    ck_assert_ptr_nonnull(aik_split_exec_fallback(r.e));
    ck_assert_ptr_nonnull(strstr(aik_split_exec_fallback(r.e)->message, "; layers 0-1 moved to cpu0"));
    for (uint32_t i = 2; i < N_GEN; i++) {
        run_ok(r.e, &ref_tok[i - 1], 1, 1, &lg);
        ck_assert_msg(memcmp(lg, ref_steps + (size_t)i * V, V * sizeof(float)) == 0, "step %u differs", i);
    }
    ck_assert_uint_eq(aik_split_exec_fallback_count(r.e), 1);
    free(ref_prompt);
    free(ref_steps);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

START_TEST(test_no_fallback)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    const float *lg;
    tiny_open(&t, AIK_DTYPE_F32, 0);
    /* a failing CPU device is not fallen back from */
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_TWO_CPU, "layers=1:cpu1", 32, 8, 1, AIK_BACKEND_CPU, true, &err), 0);
    r.fy[1].fail_exec_at = 2;
    run_ok(r.e, prompt, N_PROMPT, 1, &lg);
    ck_assert_int_eq(aik_split_exec_run(r.e, prompt, 1, 1, &lg, &err), -EIO);
    ck_assert_str_eq(err.where, "faulty.execute");
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), N_PROMPT);
    ck_assert_ptr_null(aik_split_exec_fallback(r.e));
    /* the fault was one-off: the next run works and continues the sequence */
    run_ok(r.e, prompt, 1, 1, &lg);
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), N_PROMPT + 1);
    rig_close(&r);

    /* a GPU failure without a placer to replan with is returned as is */
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_FAKE_GPU, "layers=0-1:fake0", 32, 8, 1, AIK_BACKEND_GPU, false,
                              &err), 0);
    r.fy[1].fail_exec_at = 1;
    ck_assert_int_eq(aik_split_exec_run(r.e, prompt, N_PROMPT, 1, &lg, &err), -EIO);
    ck_assert_uint_eq(aik_split_exec_n_past(r.e), 0);
    ck_assert_ptr_null(aik_split_exec_fallback(r.e));
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

START_TEST(test_new_errors)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    aik_split_exec *e = NULL;
    tiny_open(&t, AIK_DTYPE_F32, 0);
    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_TWO_CPU, "layers=1:cpu1", 32, 8, -1, 0, true, &err), 0);
    aik_split_config cfg = { .max_batch = 8, .placer = r.placer };
    /* device count does not match the plan */
    ck_assert_int_eq(aik_split_exec_new(t.m->graph, r.plan, r.devs, 1, &cfg, &e, &err), -EINVAL);
    /* the plan needs cpu1, which has no backend */
    aik_split_device half[2] = { r.devs[0], { NULL, NULL } };
    ck_assert_int_eq(aik_split_exec_new(t.m->graph, r.plan, half, 2, &cfg, &e, &err), -ENODEV);
    ck_assert_str_eq(err.where, "device 1");
    /* a backend of another ABI major */
    aik_backend_ops other = *aik_cpu_backend_ops();
    other.abi_major = AIK_BACKEND_ABI_MAJOR + 1;
    aik_split_device bad[2] = { r.devs[0], { &other, r.cpu[1] } };
    ck_assert_int_eq(aik_split_exec_new(t.m->graph, r.plan, bad, 2, &cfg, &e, &err), -EINVAL);
    cfg.max_batch = 0;
    ck_assert_int_eq(aik_split_exec_new(t.m->graph, r.plan, r.devs, 2, &cfg, &e, &err), -EINVAL);
    /* overlapping segments */
    aik_placement broken = *r.plan;
    aik_placement_segment segs[2] = { r.plan->seg[0], r.plan->seg[1] };
    segs[1].first_node = segs[0].first_node;
    broken.seg = segs;
    broken.n_segments = 2;
    cfg.max_batch = 8;
    ck_assert_int_eq(aik_split_exec_new(t.m->graph, &broken, r.devs, 2, &cfg, &e, &err), -EINVAL);
    ck_assert_ptr_null(e);
    aik_split_exec_free(NULL);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

/* ---- the CPU backend on its own ---- */

static aik_backend_buffer *cbuf(const aik_backend_ops *o, aik_backend *b, uint64_t bytes, const void *data)
{
    aik_backend_buffer *buf;
    aik_error err;
    ck_assert_int_eq(o->buffer_alloc(b, bytes, &buf, &err), 0);
    if (data)
        ck_assert_int_eq(o->buffer_upload(b, buf, 0, data, bytes, &err), 0);
    return buf;
}

START_TEST(test_cpu_backend)
{
    const aik_backend_ops *o = aik_cpu_backend_ops();
    aik_backend *b = NULL;
    aik_error err = { 0 };
    aik_backend_info info = { .struct_size = sizeof(info) };

    ck_assert_uint_eq(o->struct_size, sizeof(aik_backend_ops));
    ck_assert_uint_eq(o->abi_major, AIK_BACKEND_ABI_MAJOR);
    ck_assert_str_eq(o->name, "cpu");
    ck_assert_int_eq(o->device_count(&err), 1);
    ck_assert_int_eq(o->open(1, &b, &err), -ENODEV);
    ck_assert_int_eq(o->open(0, &b, &err), 0);
    ck_assert_int_eq(o->get_info(b, &info), 0);
    ck_assert_uint_eq(info.kind, AIK_BACKEND_CPU);
    ck_assert_uint_eq(info.op_dtypes[AIK_OP_MATMUL], (1u << AIK_DTYPE_COUNT) - 1);
    ck_assert_uint_eq(info.op_dtypes[AIK_OP_ADD], 1u << AIK_DTYPE_F32);
    ck_assert_uint_eq(info.op_dtypes[AIK_OP_NONE], 0);

    /* buffers: bounds */
    float in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8];
    aik_backend_buffer *x = cbuf(o, b, sizeof(in), in);
    ck_assert_int_eq(o->buffer_upload(b, x, 4, in, sizeof(in), &err), -ERANGE);
    ck_assert_int_eq(o->buffer_download(b, x, 0, out, sizeof(in) + 1, &err), -ERANGE);
    ck_assert_int_eq(o->buffer_alloc(b, 0, &(aik_backend_buffer *){ 0 }, &err), -EINVAL);
    ck_assert_uint_eq(aik_cpu_backend_bytes_used(b), sizeof(in));

    /* a segment: y = x + x, then y * w (broadcast), 2 rows of 4 */
    float w[4] = { 1, 10, 100, 1000 };
    aik_backend_buffer *wb = cbuf(o, b, sizeof(w), w), *y = cbuf(o, b, 32, NULL), *z = cbuf(o, b, 32, NULL);
    aik_backend_node nodes[4] = {
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { x, 0 }, .n_cols = 4, .width = 4 },
        { .op = AIK_OP_WEIGHT, .src = { -1, -1, -1 }, .data = { wb, 0 }, .dtype = AIK_DTYPE_F32, .n_dims = 1,
          .shape = { 4, 1, 1, 1 } },
        { .op = AIK_OP_ADD, .src = { 0, 0, -1 }, .data = { y, 0 }, .n_cols = 4, .width = 4 },
        { .op = AIK_OP_MUL, .src = { 2, 1, -1 }, .data = { z, 0 }, .n_cols = 4, .width = 4 },
    };
    aik_backend_segment seg = { .struct_size = sizeof(seg), .nodes = nodes, .n_nodes = 4, .first = 2, .end = 4,
                                .n_batch = 2, .n_out = 1, .ctx_len = 8 };
    ck_assert_int_eq(o->execute(b, &seg, &err), 0);
    ck_assert_int_eq(o->buffer_download(b, z, 0, out, sizeof(out), &err), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq(out[i], 2 * in[i] * w[i % 4]);

    /* failure paths: the segment is refused before anything is computed */
    aik_backend_segment s2 = seg;
    s2.n_batch = 3; /* x holds 2 rows */
    ck_assert_int_eq(o->execute(b, &s2, &err), -ERANGE);
    s2 = seg;
    s2.n_past = 7; /* 7 + 2 > ctx 8 */
    ck_assert_int_eq(o->execute(b, &s2, &err), -ENOSPC);
    s2 = seg;
    s2.end = 5;
    ck_assert_int_eq(o->execute(b, &s2, &err), -EINVAL);
    nodes[3].src[1] = 3; /* not an earlier node */
    ck_assert_int_eq(o->execute(b, &seg, &err), -EINVAL);
    nodes[3].src[1] = 1;
    nodes[3].data.buffer = NULL;
    ck_assert_int_eq(o->execute(b, &seg, &err), -EINVAL);
    nodes[3].data.buffer = z;
    nodes[1].shape[0] = 3; /* broadcast weight of the wrong length */
    ck_assert_int_eq(o->execute(b, &seg, &err), -EINVAL);
    nodes[1].shape[0] = 4;
    nodes[2].op = 99;
    ck_assert_int_eq(o->execute(b, &seg, &err), -ENOTSUP);
    nodes[2].op = AIK_OP_ADD;
    seg.struct_size = 8;
    ck_assert_int_eq(o->execute(b, &seg, &err), -EINVAL);

    /* token ids outside the embedding table */
    int32_t ids[2] = { 0, 5 };
    float table[4 * 3] = { 0 };
    aik_backend_buffer *tb = cbuf(o, b, sizeof(table), table), *ib = cbuf(o, b, sizeof(ids), ids),
                       *eb = cbuf(o, b, 32, NULL);
    aik_backend_node en[3] = {
        { .op = AIK_OP_WEIGHT, .src = { -1, -1, -1 }, .data = { tb, 0 }, .dtype = AIK_DTYPE_F32, .n_dims = 2,
          .shape = { 4, 3, 1, 1 } },
        { .op = AIK_OP_TOKENS, .src = { -1, -1, -1 }, .data = { ib, 0 }, .n_cols = 1, .width = 1 },
        { .op = AIK_OP_GET_ROWS, .src = { 0, 1, -1 }, .data = { eb, 0 }, .n_cols = 4, .width = 4 },
    };
    aik_backend_segment es = { .struct_size = sizeof(es), .nodes = en, .n_nodes = 3, .first = 2, .end = 3,
                               .n_batch = 2, .n_out = 2, .ctx_len = 8 };
    ck_assert_int_eq(o->execute(b, &es, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "token id 5"));
    ids[1] = 2;
    ck_assert_int_eq(o->buffer_upload(b, ib, 0, ids, sizeof(ids), &err), 0);
    ck_assert_int_eq(o->execute(b, &es, &err), 0);

    /* attention: one q head over one kv head of 4 runs; an attention node
     * without q heads is refused instead of reaching the kernel */
    aik_backend_buffer *qa = cbuf(o, b, 32, NULL), *ka = cbuf(o, b, 32, NULL), *va = cbuf(o, b, 32, NULL),
                       *oa = cbuf(o, b, 32, NULL), *kc = cbuf(o, b, 8 * 4 * 4, NULL), *vc = cbuf(o, b, 8 * 4 * 4, NULL);
    aik_backend_node an[4] = {
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { qa, 0 }, .n_cols = 4, .width = 4 },
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { ka, 0 }, .n_cols = 4, .width = 4 },
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { va, 0 }, .n_cols = 4, .width = 4 },
        { .op = AIK_OP_ATTENTION, .src = { 0, 1, 2 }, .data = { oa, 0 }, .n_cols = 4, .width = 4, .n_heads = 1,
          .n_kv_heads = 1, .head_dim = 4, .scale = 0.5f },
    };
    const aik_backend_tensor kct[1] = { { kc, 0 } }, vct[1] = { { vc, 0 } };
    aik_backend_segment as = { .struct_size = sizeof(as), .nodes = an, .n_nodes = 4, .first = 3, .end = 4,
                               .n_batch = 2, .n_out = 2, .ctx_len = 8, .n_kv = 1, .k_cache = kct, .v_cache = vct };
    ck_assert_int_eq(o->execute(b, &as, &err), 0);
    an[0].n_cols = 0;
    an[3].n_cols = 0;
    an[3].n_heads = 0;
    ck_assert_int_lt(o->execute(b, &as, &err), 0);

    aik_backend_buffer *all[] = { x, wb, y, z, tb, ib, eb, qa, ka, va, oa, kc, vc };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        o->buffer_free(b, all[i]);
    o->buffer_free(b, NULL);
    ck_assert_uint_eq(aik_cpu_backend_bytes_used(b), 0);
    o->close(b);
    o->close(NULL);
}
END_TEST

/* Sessions over a split executor (runtime/generate.h, the kernel's
 * placement path): aik_generate gives the CPU session's tokens; a fake GPU
 * that fails in the middle of decoding is reported by that session's
 * aik_session_fallback and not by the next session on the same executor;
 * a context beyond the executor's is refused. */
static void generate_tokens(aik_session *s, aik_generate_result *res)
{
    aik_generate_params gp;
    aik_error err = { 0 };
    aik_generate_params_default(&gp);
    gp.n_predict = 8;
    gp.ignore_eos = true;
    gp.sampling.temperature = 0;
    int r = aik_generate(s, "Hello", 5, &gp, res, &err);
    ck_assert_msg(r == 0, "generate: %s: %s", err.where, err.message);
}

START_TEST(test_session_on_split)
{
    tiny t;
    rig r;
    aik_error err = { 0 };
    aik_session *cs, *ss;
    aik_generate_result want, got;

    tiny_open(&t, AIK_DTYPE_Q8_0, 0);
    aik_session_config cc = { .n_threads = 1, .ctx_len = 32 };
    ck_assert_int_eq(aik_session_new(t.m, &cc, &cs, &err), 0);
    generate_tokens(cs, &want);
    ck_assert_uint_eq(want.n_tokens, 8);

    ck_assert_int_eq(rig_open(&r, t.m->graph, INV_FAKE_GPU, "embedding:cpu0,layers=0-1:fake0,output:cpu0", 32, 4, 1,
                              AIK_BACKEND_GPU, true, &err), 0);
    r.fy[1].fail_exec_at = 4; /* the prompt takes 2 runs of 4 (batch 4), then decode */
    r.fy[1].fail_forever = true;
    aik_session_config sc = { .ctx_len = 20, .batch = 64, .split = r.e };
    ck_assert_int_eq(aik_session_new(t.m, &sc, &ss, &err), 0);
    ck_assert_ptr_null(aik_session_exec(ss));
    ck_assert_ptr_eq(aik_session_split(ss), r.e);
    ck_assert_uint_eq(aik_session_ctx_len(ss), 20);
    generate_tokens(ss, &got);
    ck_assert_uint_eq(got.n_tokens, want.n_tokens);
    ck_assert_mem_eq(got.tokens, want.tokens, want.n_tokens * sizeof(int32_t));
    ck_assert_str_eq(got.text, want.text);
    ck_assert_uint_eq(aik_session_n_past(ss), got.n_prompt + 8 - 1);
    const aik_error *fb = aik_session_fallback(ss);
    ck_assert_ptr_nonnull(fb);
    ck_assert_msg(strncmp(fb->message, "fake0 failed: ", 14) == 0, "%s", fb->message);
    aik_session_free(ss);
    aik_generate_result_clear(&got);

    /* the next session on the executor: CPU plan now, nothing to report */
    ck_assert_int_eq(aik_session_new(t.m, &sc, &ss, &err), 0);
    ck_assert_uint_eq(aik_session_n_past(ss), 0);
    generate_tokens(ss, &got);
    ck_assert_mem_eq(got.tokens, want.tokens, want.n_tokens * sizeof(int32_t));
    ck_assert_ptr_null(aik_session_fallback(ss));
    aik_session_free(ss);
    aik_generate_result_clear(&got);

    /* a context the executor does not have */
    sc.ctx_len = 33;
    ck_assert_int_eq(aik_session_new(t.m, &sc, &ss, &err), -EINVAL);
    ck_assert_str_eq(err.where, "session.ctx_len");

    aik_generate_result_clear(&want);
    aik_session_free(cs);
    rig_close(&r);
    tiny_close(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("split");
    TCase *tc = tcase_create("split");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cpu_backend);
    tcase_add_test(tc, test_cpu_only_plan);
    tcase_add_test(tc, test_two_cpu_pingpong_f32);
    tcase_add_test(tc, test_two_cpu_pingpong_q8_tied);
    tcase_add_test(tc, test_two_cpu_q4_halves);
    tcase_add_test(tc, test_prompt_in_chunks);
    tcase_add_test(tc, test_telemetry);
    tcase_add_test(tc, test_kv_unchanged_on_errors);
    tcase_add_test(tc, test_fallback_execute_in_decode);
    tcase_add_test(tc, test_fallback_execute_in_prompt);
    tcase_add_test(tc, test_fallback_upload);
    tcase_add_test(tc, test_fallback_everything_on_gpu);
    tcase_add_test(tc, test_fallback_at_setup);
    tcase_add_test(tc, test_replay_fails_then_resumes);
    tcase_add_test(tc, test_no_fallback);
    tcase_add_test(tc, test_new_errors);
    tcase_add_test(tc, test_session_on_split);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
