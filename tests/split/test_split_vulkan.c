/* SPDX-License-Identifier: MIT */
/*
 * Split execution across the CPU backend and a Vulkan device (Mesa lavapipe
 * in CI): plans with one and two CPU↔Vulkan boundaries give the greedy
 * tokens of the whole-graph CPU executor (prompt logits NMSE <= 1e-6, as
 * tests/vulkan for a whole model on Vulkan), and a Vulkan device whose
 * execute fails (fault wrapper over the real Vulkan vtable) falls back to
 * the CPU with the same tokens. Exits 77 (skipped) without a Vulkan device.
 */
#include "split_util.h"

#include "scheduler/cpu_backend.h"
#include "scheduler/vulkan_backend.h"

static const char *INV =
    "schema: 1\nname: cpu-vulkan\ndevices:\n"
    "  - id: cpu0\n    kind: cpu\n    memory: 8 GiB\n    gflops: 100\n    gbps: 20\n    ops: all\n"
    "  - id: vulkan0\n    kind: gpu\n    backend: vulkan\n    memory: 1 GiB\n    gflops: 1000\n    gbps: 100\n"
    "    ops: all\n";

static aik_backend *vk;

static double nmse(const float *y, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

#define N_PROMPT 5
#define N_GEN 8

static void split_case(aik_dtype dt, const char *override, uint32_t want_segments, int fail_exec_at,
                       const char *want_units)
{
    static const int32_t prompt[N_PROMPT] = { 256, 72, 101, 108, 108 };
    tiny t;
    aik_error err = { 0 };
    aik_backend *cpu;
    aik_placer *placer;
    aik_placement *plan;
    aik_split_exec *e;
    faulty fy = { .inner = aik_vk_backend_ops(), .b = vk, .kind = AIK_BACKEND_GPU, .fail_exec_at = fail_exec_at };
    const float *lg;
    int32_t ref_tok[N_GEN], tok[N_GEN];

    tiny_open(&t, dt, 0);
    uint32_t V = t.m->hp.n_vocab;
    float *ref_prompt = malloc((size_t)N_PROMPT * V * sizeof(float)), *ref_steps = malloc((size_t)N_GEN * V * 4);
    reference_run(t.m->graph, 32, prompt, N_PROMPT, N_GEN, ref_prompt, ref_tok, ref_steps);

    aik_device_inventory *inv = inv_parse(INV);
    aik_placement_options po = { .ctx_len = 32 };
    ck_assert_int_eq(aik_cpu_backend_open_pool(NULL, &cpu, &err), 0);
    aik_split_device devs[2] = { { aik_cpu_backend_ops(), cpu }, { aik_vk_backend_ops(), vk } };
    if (fail_exec_at)
        devs[1] = (aik_split_device){ &faulty_ops, (aik_backend *)&fy };
    ck_assert_int_eq(aik_placer_new(t.m->graph, inv, &po, &placer, &err), 0);
    int r = aik_placer_plan(placer, override, &plan, &err);
    ck_assert_msg(r == 0, "plan: %s: %s", err.where, err.message);
    ck_assert_uint_eq(plan->n_segments, want_segments);
    aik_split_config cfg = { .max_batch = 8, .ctx_len = 32, .placer = placer, .override = override, .inventory = inv };
    r = aik_split_exec_new(t.m->graph, plan, devs, 2, &cfg, &e, &err);
    ck_assert_msg(r == 0, "split: %s: %s", err.where, err.message);
    fy.armed = true;

    r = aik_split_exec_run(e, prompt, N_PROMPT, N_PROMPT, &lg, &err);
    ck_assert_msg(r == 0, "run: %s: %s", err.where, err.message);
    double q = nmse(lg, ref_prompt, (size_t)N_PROMPT * V);
    ck_assert_msg(q <= 1e-6, "%s %s: prompt logits NMSE %g", aik_dtype_name(dt), override, q);
    tok[0] = argmax_f(lg + (size_t)(N_PROMPT - 1) * V, V);
    for (uint32_t i = 1; i < N_GEN; i++) {
        r = aik_split_exec_run(e, &tok[i - 1], 1, 1, &lg, &err);
        ck_assert_msg(r == 0, "run: %s: %s", err.where, err.message);
        tok[i] = argmax_f(lg, V);
    }
    for (uint32_t i = 0; i < N_GEN; i++)
        ck_assert_msg(tok[i] == ref_tok[i], "%s %s: token %u: split %d, cpu %d", aik_dtype_name(dt), override, i,
                      tok[i], ref_tok[i]);
    const aik_error *fb = aik_split_exec_fallback(e);
    if (fail_exec_at) {
        char want[128];
        snprintf(want, sizeof(want), "; %s moved to cpu0", want_units);
        ck_assert_ptr_nonnull(fb);
        ck_assert_msg(strncmp(fb->message, "vulkan0 failed: faulty.execute: injected fault", 46) == 0 &&
                      strstr(fb->message, want), "message: %s", fb->message);
    } else {
        ck_assert_ptr_null(fb);
    }
    aik_split_exec_free(e);
    aik_placement_free(plan);
    aik_placer_free(placer);
    aik_cpu_backend_ops()->close(cpu);
    free(inv);
    free(ref_prompt);
    free(ref_steps);
    tiny_close(&t);
}

START_TEST(test_head_on_vulkan_f32) { split_case(AIK_DTYPE_F32, "embedding:cpu0,layers=0:cpu0,layers=1:vulkan0,output:vulkan0", 2, 0, NULL); }
END_TEST
START_TEST(test_sandwich_q8) { split_case(AIK_DTYPE_Q8_0, "embedding:vulkan0,layers=0:vulkan0,layers=1:cpu0,output:vulkan0", 3, 0, NULL); }
END_TEST
START_TEST(test_sandwich_q4) { split_case(AIK_DTYPE_Q4_0, "embedding:cpu0,layers=0:vulkan0,layers=1:cpu0,output:cpu0", 3, 0, NULL); }
END_TEST
START_TEST(test_vulkan_fault_fallback) { split_case(AIK_DTYPE_Q8_0, "embedding:cpu0,layers=0:cpu0,layers=1:vulkan0,output:vulkan0", 2, 3, "layer 1, output"); }
END_TEST

int main(void)
{
    aik_error err = { 0 };
    int n = aik_vk_device_count(&err);

    if (n <= 0) {
        printf("SKIP: no Vulkan device: %s\n", n < 0 ? err.message : "loader lists none");
        return 77;
    }
    if (aik_vk_backend_ops()->open(0, &vk, &err) < 0) {
        printf("SKIP: Vulkan device 0 cannot be opened: %s: %s\n", err.where, err.message);
        return 77;
    }
    Suite *s = suite_create("split_vulkan");
    TCase *tc = tcase_create("split_vulkan");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_head_on_vulkan_f32);
    tcase_add_test(tc, test_sandwich_q8);
    tcase_add_test(tc, test_sandwich_q4);
    tcase_add_test(tc, test_vulkan_fault_fallback);
    suite_add_tcase(s, tc);
    /* One device for all tests: no fork (Vulkan state does not survive it). */
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    aik_vk_backend_ops()->close(vk);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
