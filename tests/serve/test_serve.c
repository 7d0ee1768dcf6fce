/* SPDX-License-Identifier: MIT */
/*
 * Serving through a placement (aik_kernel_config.placement) over the test
 * module store: the answers (text and tokens) equal the default CPU
 * kernel's for a CPU-backend split, a split with the reference plug-in and,
 * when a Vulkan device exists (lavapipe in CI), a split with Vulkan; a
 * plug-in "GPU" that fails mid-request (tests/serve/flaky_plugin.c) makes
 * aik_submit succeed with the same answer and the fallback in
 * result.warning, and the next request runs on the CPU without a warning;
 * requests from several threads share the plan; bad specs are refused with
 * the device named; over the build's default store, adapter requests keep
 * their adapter (served on the CPU executor) with a placement set.
 *
 * Usage: test_serve MODULES TRUST AIKCTL REF.so REF-PROFILE FLAKY.so FLAKY-PROFILE
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "aik/kernel.h"
#include "scheduler/devices.h"
#include "testutil.h"

static const char *g_modules, *g_src_trust, *g_aikctl, *g_ref_so, *g_ref_profile, *g_flaky_so, *g_flaky_profile;
static char *g_tmp, *g_trust, *g_ref_dir, *g_flaky_dir;

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A plug-in directory parent/entry/{name.so, profile.yaml} signed with the
 * test key (whose public half is in g_trust). */
static int make_plugin_dir(const char *parent, const char *so, const char *profile, const char *name)
{
    return sh("mkdir -p '%s/p' && cp '%s' '%s/p/%s.so' && cp '%s' '%s/p/profile.yaml' && "
              "'%s' sign '%s/p' --key '%s/key.key' >/dev/null",
              parent, so, parent, name, profile, parent, g_aikctl, parent, g_tmp);
}

static aik_kernel *kernel(const char *placement, const char *plugin_dir)
{
    aik_kernel_config c = { .struct_size = sizeof(c), .module_store = g_modules, .trust_store = g_trust,
                            .n_threads = 1, .placement = placement, .plugin_dir = plugin_dir };
    aik_kernel *k;
    aik_error err = { 0 };
    int r = aik_kernel_open(&c, &k, &err);
    ck_assert_msg(r == 0, "kernel: %s: %s", err.where, err.message);
    return k;
}

static const char *const intents[] = { "lexicon.define", "lexicon.synonyms", "lexicon.example" };
static const char *const inputs[] = { "abandon", "river" };
#define N_CASES 6

typedef struct answer {
    char *text;
    int32_t tokens[16];
    size_t n_tokens;
    char warning[256];
} answer;

static void submit(aik_kernel *k, int i, answer *a)
{
    aik_submit_options o = { .struct_size = sizeof(o), .max_tokens = 12 };
    aik_result *res;
    aik_error err = { 0 };
    int r = aik_submit(k, intents[i / 2], inputs[i % 2], &o, &res, &err);
    ck_assert_msg(r == 0, "%s %s: %s: %s", intents[i / 2], inputs[i % 2], err.where, err.message);
    a->text = strdup(res->text);
    ck_assert_uint_le(res->n_tokens, 16);
    a->n_tokens = res->n_tokens;
    memcpy(a->tokens, res->tokens, res->n_tokens * sizeof(int32_t));
    memcpy(a->warning, res->warning, sizeof(a->warning));
    aik_result_free(res);
}

/* The default kernel's answers: what every placement must reproduce (a
 * checked fixture: made in each test's process). */
static answer g_want[N_CASES];

static void want_answers(void)
{
    aik_kernel *k = kernel(NULL, NULL);
    for (int i = 0; i < N_CASES; i++)
        submit(k, i, &g_want[i]);
    aik_kernel_close(k);
}

static void free_answers(void)
{
    for (int i = 0; i < N_CASES; i++) {
        free(g_want[i].text);
        g_want[i].text = NULL;
    }
}

static void expect_same(const answer *got, int i, const char *placement)
{
    ck_assert_msg(got->n_tokens == g_want[i].n_tokens &&
                      memcmp(got->tokens, g_want[i].tokens, got->n_tokens * sizeof(int32_t)) == 0,
                  "%s: %s %s: tokens differ from the CPU kernel's", placement, intents[i / 2], inputs[i % 2]);
    ck_assert_str_eq(got->text, g_want[i].text);
}

static void same_answers(const char *placement, const char *plugin_dir)
{
    aik_kernel *k = kernel(placement, plugin_dir);
    for (int i = 0; i < N_CASES; i++) {
        answer a;
        submit(k, i, &a);
        expect_same(&a, i, placement);
        ck_assert_msg(a.warning[0] == '\0', "%s: unexpected warning: %s", placement, a.warning);
        free(a.text);
    }
    aik_kernel_close(k);
}

START_TEST(test_cpu_backend_split)
{
    same_answers("layers=0-1:cpu0", NULL);
    same_answers("", NULL); /* the planner's choice */
}
END_TEST

START_TEST(test_reference_plugin_split)
{
    same_answers("layers=0-1:plugin0", g_ref_dir);
    same_answers("embedding:plugin0,layers=0:cpu0,layers=1:plugin0,output:cpu0", g_ref_dir);
}
END_TEST

START_TEST(test_vulkan_split)
{
    same_answers("layers=0-1:vulkan0", NULL);
    same_answers("gpu-layers=1", NULL);
}
END_TEST

/* The flaky "GPU" runs both layers and fails from its 3rd execute (inside
 * the first request's decode): same answer, the fallback reported once. */
START_TEST(test_fallback_reported)
{
    ck_assert_int_eq(setenv("AIK_TEST_FLAKY_FAIL_AT", "3", 1), 0);
    aik_kernel *k = kernel("layers=0-1:plugin0", g_flaky_dir);
    answer a, b;
    submit(k, 0, &a);
    expect_same(&a, 0, "flaky plugin0");
    ck_assert_msg(strncmp(a.warning, "plugin0 failed: ", 16) == 0 && strstr(a.warning, "injected device loss") &&
                      strstr(a.warning, "moved to cpu0"),
                  "warning: '%s'", a.warning);
    /* later requests run on the replanned (CPU) plan, silently */
    submit(k, 1, &b);
    expect_same(&b, 1, "after the fallback");
    ck_assert_str_eq(b.warning, "");
    free(a.text);
    free(b.text);
    aik_kernel_close(k);
    unsetenv("AIK_TEST_FLAKY_FAIL_AT");
}
END_TEST

/* Without the fault the flaky plug-in is an ordinary device: no warning. */
START_TEST(test_flaky_without_fault)
{
    unsetenv("AIK_TEST_FLAKY_FAIL_AT");
    same_answers("layers=0-1:plugin0", g_flaky_dir);
}
END_TEST

static aik_kernel *g_shared;

static void *worker(void *p)
{
    int base = (int)(intptr_t)p;
    for (int j = 0; j < N_CASES; j++) {
        int i = (base + j) % N_CASES;
        answer a;
        submit(g_shared, i, &a);
        expect_same(&a, i, "threads");
        free(a.text);
    }
    return NULL;
}

START_TEST(test_threads_share_the_plan)
{
    pthread_t t[4];
    g_shared = kernel("layers=1:plugin0", g_ref_dir);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    aik_kernel_close(g_shared);
}
END_TEST

/* The build's default store (models/wordnet with its distilled adapters,
 * built by default before tests run): a capability whose module carries a
 * LoRA adapter is served on the CPU executor even with a placement (the
 * rule in aik/kernel.h), with the adapter applied: the same answer and
 * adapter digest as without the placement; a capability without one goes
 * through the placement with the same answer. */
static char *g_build_modules, *g_build_trust;

static aik_result *submit_on(const char *placement, const char *intent)
{
    aik_kernel_config c = { .struct_size = sizeof(c), .module_store = g_build_modules,
                            .trust_store = g_build_trust, .n_threads = 1, .placement = placement };
    aik_submit_options o = { .struct_size = sizeof(o), .max_tokens = 12 };
    aik_kernel *k;
    aik_result *res;
    aik_error err = { 0 };
    int r = aik_kernel_open(&c, &k, &err);
    ck_assert_msg(r == 0, "kernel: %s: %s", err.where, err.message);
    r = aik_submit(k, intent, "abandon", &o, &res, &err);
    ck_assert_msg(r == 0, "%s: %s: %s", intent, err.where, err.message);
    aik_kernel_close(k);
    return res;
}

START_TEST(test_adapter_requests)
{
    static const char *const caps[] = { "lexicon.define", "lexicon.synonyms", "lexicon.example" };
    bool some_adapter = false;
    for (int i = 0; i < 3; i++) {
        aik_result *a = submit_on(NULL, caps[i]), *b = submit_on("gpu-layers=0", caps[i]);
        ck_assert_str_eq(b->text, a->text);
        ck_assert_uint_eq(b->n_tokens, a->n_tokens);
        ck_assert_mem_eq(b->tokens, a->tokens, a->n_tokens * sizeof(int32_t));
        ck_assert_str_eq(b->adapter_digest, a->adapter_digest);
        ck_assert_str_eq(b->warning, "");
        some_adapter |= a->adapter_digest[0] != '\0';
        aik_result_free(a);
        aik_result_free(b);
    }
    ck_assert_msg(some_adapter, "the default store was expected to carry an adapter module");
}
END_TEST

static void expect_refused(const char *placement, const char *plugin_dir, const char *needle)
{
    aik_kernel *k = kernel(placement, plugin_dir);
    aik_submit_options o = { .struct_size = sizeof(o), .max_tokens = 4 };
    aik_result *res = NULL;
    aik_error err = { 0 };
    char msg[1024];
    ck_assert_int_lt(aik_submit(k, "lexicon.define", "abandon", &o, &res, &err), 0);
    ck_assert_ptr_null(res);
    snprintf(msg, sizeof(msg), "%s: %s", err.where, err.message);
    ck_assert_msg(strstr(msg, needle), "%s: expected '%s' in '%s'", placement, needle, msg);
    aik_kernel_close(k);
}

START_TEST(test_bad_placements)
{
    expect_refused("layers=0-1:npu7", NULL, "npu7");
    expect_refused("layers=0-1:plugin0", NULL, "plugin0");      /* no plug-in directory */
    expect_refused("layers=0-1:plugin0", "/nonexistent", "/nonexistent");
    expect_refused("layers=0-1", NULL, "placement");
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s MODULES TRUST AIKCTL REF.so REF-PROFILE FLAKY.so FLAKY-PROFILE\n", argv[0]);
        return 2;
    }
    g_modules = argv[1];
    g_src_trust = argv[2];
    g_aikctl = argv[3];
    g_ref_so = argv[4];
    g_ref_profile = argv[5];
    g_flaky_so = argv[6];
    g_flaky_profile = argv[7];
    g_tmp = aik_test_tmpdir();
    if (!g_tmp || asprintf(&g_trust, "%s/trust", g_tmp) < 0 || asprintf(&g_ref_dir, "%s/ref", g_tmp) < 0 ||
        asprintf(&g_flaky_dir, "%s/flaky", g_tmp) < 0)
        return 99;
    /* the store's trust plus a key that signs the test's plug-ins */
    if (sh("cp -a '%s' '%s' && '%s' keygen --out '%s/key' >/dev/null && cp '%s/key.pub' '%s/keys/publisher/serve.pub'",
           g_src_trust, g_trust, g_aikctl, g_tmp, g_tmp, g_trust) != 0 ||
        make_plugin_dir(g_ref_dir, g_ref_so, g_ref_profile, "aik-backend-ref") != 0 ||
        make_plugin_dir(g_flaky_dir, g_flaky_so, g_flaky_profile, "aik-backend-flaky") != 0) {
        fprintf(stderr, "cannot build the test fixture under %s\n", g_tmp);
        return 99;
    }
    unsetenv("AIK_TEST_FLAKY_FAIL_AT");
    /* the build's default store, when it has an adapter module */
    const char *root = getenv("AIK_BUILD_ROOT");
    char probe[4096];
    bool adapters = false;
    if (root && asprintf(&g_build_modules, "%s/store/modules", root) >= 0 &&
        asprintf(&g_build_trust, "%s/store/trust", root) >= 0) {
        snprintf(probe, sizeof(probe), "%s/aik-lexicon-define/adapter.alr1", g_build_modules);
        adapters = access(probe, R_OK) == 0;
    }
    if (!adapters)
        printf("adapter case skipped: no %s\n", root ? probe : "$AIK_BUILD_ROOT");

    aik_device_list *l = calloc(1, sizeof(*l));
    bool vulkan = false;
    if (!l)
        return 99;
    aik_devices_discover("/nonexistent", 0, l);
    for (uint32_t i = 0; i < l->n; i++)
        vulkan |= l->dev[i].source == AIK_DEVICE_SRC_VULKAN;
    if (!vulkan)
        printf("Vulkan cases skipped: %s\n", l->vulkan_note);
    free(l);

    Suite *s = suite_create("serve");
    TCase *tc = tcase_create("serve");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, want_answers, free_answers);
    tcase_add_test(tc, test_cpu_backend_split);
    tcase_add_test(tc, test_reference_plugin_split);
    if (vulkan)
        tcase_add_test(tc, test_vulkan_split);
    tcase_add_test(tc, test_fallback_reported);
    tcase_add_test(tc, test_flaky_without_fault);
    tcase_add_test(tc, test_threads_share_the_plan);
    tcase_add_test(tc, test_bad_placements);
    if (adapters)
        tcase_add_test(tc, test_adapter_requests);
    suite_add_tcase(s, tc);
    int rc = aik_test_run(s);
    aik_test_rmtree(g_tmp);
    free(g_tmp);
    free(g_trust);
    free(g_ref_dir);
    free(g_flaky_dir);
    free(g_build_modules);
    free(g_build_trust);
    return rc;
}
