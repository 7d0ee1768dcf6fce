/* SPDX-License-Identifier: MIT */
/*
 * Capability adapters end to end over a copy of the test module store:
 * packaging a derived module (lineage, evolution key, sidecar checks, every
 * refusal), serving it per request with the adapter unmerged (same answers
 * as the merged package; 8 threads switching capabilities each get their
 * own adapter's answer), the kernel's refusals, and the distillation
 * pipeline from a replay log and a teacher to a signed module.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "aik/kernel.h"
#include "common/atomic_file.h"
#include "common/digest.h"
#include "distill/package.h"
#include "distill/pipeline.h"
#include "loader/adapter.h"
#include "loader/module.h"
#include "runtime/adapter_merge.h"
#include "runtime/capability_run.h"
#include "runtime/eval.h"
#include "runtime/kernel_internal.h"
#include "testutil.h"

static const char *src_store, *src_trust, *aikctl;

typedef struct env {
    char *dir, *modules, *trust, *key_path;
    aik_signing_key *evo;
} env;

static void run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ck_assert_msg(system(cmd) == 0, "command failed: %s", cmd);
}

/* A private copy of the store and trust store, plus an evolution key. */
static void env_new(env *e)
{
    char *pub;
    aik_error err;
    memset(e, 0, sizeof(*e));
    e->dir = aik_test_tmpdir();
    ck_assert_int_ge(asprintf(&e->modules, "%s/modules", e->dir), 0);
    ck_assert_int_ge(asprintf(&e->trust, "%s/trust", e->dir), 0);
    ck_assert_int_ge(asprintf(&e->key_path, "%s/evo.key", e->dir), 0);
    run("cp -a '%s' '%s' && cp -a '%s' '%s' && mkdir -p '%s/keys/evolution'", src_store, e->modules, src_trust,
        e->trust, e->trust);
    ck_assert_int_ge(asprintf(&pub, "%s/keys/evolution/evo.pub", e->trust), 0);
    ck_assert_int_eq(aik_signing_key_generate(&e->evo), 0);
    ck_assert_msg(aik_signing_key_save(e->evo, e->key_path, pub, &err) == 0, "%s", err.message);
    free(pub);
}

static void env_free(env *e)
{
    aik_signing_key_free(e->evo);
    aik_test_rmtree(e->dir);
    free(e->dir);
    free(e->modules);
    free(e->trust);
    free(e->key_path);
}

static aik_kernel *env_kernel(const env *e, const char *replay)
{
    aik_kernel_config c = { .struct_size = sizeof(c), .module_store = e->modules, .trust_store = e->trust,
                            .n_threads = 1, .replay_log = replay };
    aik_kernel *k;
    aik_error err;
    ck_assert_msg(aik_kernel_open(&c, &k, &err) == 0, "%s: %s", err.where, err.message);
    return k;
}

/* A random low-rank adapter on the q and v projections of every layer,
 * large enough to change greedy answers. */
static void write_adapter(const aik_slm *pkg, const char *path, uint64_t seed, float alpha)
{
    aik_adapter_identity id;
    aik_adapter *a;
    aik_error err;
    uint64_t s = seed;

    aik_adapter_identity_from_slm(pkg, &id);
    ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_LOWRANK, &id, &a), 0);
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        if (t->n_dims != 2 || (!strstr(t->name, "attn_q.weight") && !strstr(t->name, "attn_v.weight")))
            continue;
        uint64_t in = t->shape[0], out = t->shape[1];
        uint32_t rank = 4;
        float *A = malloc(rank * in * sizeof(float)), *B = malloc(out * rank * sizeof(float));
        for (uint64_t j = 0; j < rank * in; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            A[j] = (float)((int64_t)(s >> 33) % 2001 - 1000) / 1000.0f;
        }
        for (uint64_t j = 0; j < out * rank; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            B[j] = (float)((int64_t)(s >> 33) % 2001 - 1000) / 1000.0f;
        }
        ck_assert_msg(aik_adapter_add_lowrank(a, t->name, in, out, rank, alpha, A, B, &err) == 0, "%s", err.message);
        free(A);
        free(B);
    }
    ck_assert_msg(aik_adapter_write(a, path, &err) == 0, "%s", err.message);
    aik_adapter_free(a);
}

static void file_sha(const char *path, uint8_t out[32])
{
    char *data;
    size_t len;
    ck_assert_int_eq(aik_read_file(path, 1u << 30, &data, &len), 0);
    aik_sha256_buf(data, len, out);
    free(data);
}

/* A cases file and a sidecar that names (model, adapter, cases) with the
 * given decision. */
static void write_eval(const env *e, const aik_slm *pkg, const char *adapter, const char *cases, const char *sidecar,
                       bool pass, const char *model_override)
{
    static const char text[] = "{\"input\":\"abandon\",\"expected\":\"zzzz\",\"match\":\"not-contains\"}\n";
    aik_eval_sidecar s = { 0 };
    uint8_t d[32];
    aik_error err;

    (void)e;
    ck_assert_int_eq(aik_write_file_atomic(cases, text, strlen(text), 0644), 0);
    aik_sha256_hex(pkg->hdr.model_checksum, s.model_digest);
    if (model_override)
        snprintf(s.model_digest, sizeof(s.model_digest), "%s", model_override);
    s.has_adapter = true;
    file_sha(adapter, d);
    aik_sha256_hex(d, s.adapter_digest);
    snprintf(s.source_kind, sizeof(s.source_kind), "adapter:lowrank");
    snprintf(s.evaluator_id, sizeof(s.evaluator_id), "test");
    file_sha(cases, d);
    aik_sha256_hex(d, s.eval_cases_digest);
    snprintf(s.evaluation_scope, sizeof(s.evaluation_scope), "capability:test");
    s.cases_passed = pass ? 1 : 0;
    s.cases_failed = pass ? 0 : 1;
    s.pass = pass;
    aik_eval_utc_now(s.generated_at_utc);
    ck_assert_msg(aik_eval_sidecar_write(&s, sidecar, &err) == 0, "%s", err.message);
}

/* Package an adapter for `capability` into the env's store (replacing the
 * module). Returns 0 or the packaging error. */
static int package(env *e, const char *capability, uint64_t seed, bool pass, aik_error *err)
{
    aik_kernel *k = env_kernel(e, NULL);
    aik_kernel_capability kc;
    aik_adapter_module_spec sp = { 0 };
    char *adapter, *cases, *sidecar, *out, *dst;
    uint8_t src[32], base[32], cases_d[32];
    int r;

    ck_assert_msg(aik_kernel_capability_acquire(k, capability, &kc, err) == 0, "%s", err->message);
    ck_assert_int_ge(asprintf(&adapter, "%s/%s.alr1", e->dir, capability), 0);
    ck_assert_int_ge(asprintf(&cases, "%s/%s.cases", e->dir, capability), 0);
    ck_assert_int_ge(asprintf(&sidecar, "%s/%s.sidecar", e->dir, capability), 0);
    ck_assert_int_ge(asprintf(&out, "%s/%s.module", e->dir, capability), 0);
    write_adapter(kc.base->pkg, adapter, seed, 64.0f);
    write_eval(e, kc.base->pkg, adapter, cases, sidecar, pass, NULL);
    aik_sha256_from_hex(kc.cap_digest, src);
    aik_sha256_from_hex(kc.base_digest, base);
    file_sha(cases, cases_d);
    sp.source_dir = kc.cap_dir;
    sp.source_digest = src;
    sp.base_digest = base;
    sp.base_pkg = kc.base->pkg;
    sp.adapter_path = adapter;
    sp.sidecar_path = sidecar;
    sp.cases_digest = cases_d;
    sp.min_pass_rate = 1.0;
    sp.key = e->evo;
    sp.out_dir = out;
    ck_assert_int_ge(asprintf(&dst, "%s/manifests", e->trust), 0);
    sp.manifest_store = dst;
    r = aik_adapter_module_build(&sp, NULL, err);
    if (r == 0) {
        char *cap_dir = strdup(kc.cap_dir);
        aik_kernel_capability_release(k, &kc);
        run("rm -rf '%s' && mv '%s' '%s'", cap_dir, out, cap_dir);
        free(cap_dir);
    } else {
        aik_kernel_capability_release(k, &kc);
    }
    aik_kernel_close(k);
    free(adapter);
    free(cases);
    free(sidecar);
    free(out);
    free(dst);
    return r;
}

static char *answer(aik_kernel *k, const char *intent, const char *input, char digest[65])
{
    aik_result *r;
    aik_error err;
    aik_submit_options o = { .struct_size = sizeof(o), .max_tokens = 12 };
    ck_assert_msg(aik_submit(k, intent, input, &o, &r, &err) == 0, "%s: %s: %s", intent, err.where, err.message);
    char *t = strdup(r->text);
    if (digest)
        memcpy(digest, r->adapter_digest, 65);
    aik_result_free(r);
    return t;
}

START_TEST(test_package_and_serve)
{
    env e;
    aik_error err;
    char d[65], *before, *after, *path, *json;
    size_t len;
    aik_manifest m;

    env_new(&e);
    aik_kernel *k = env_kernel(&e, NULL);
    before = answer(k, "lexicon.define", "abandon", d);
    ck_assert_str_eq(d, "");
    aik_kernel_close(k);

    ck_assert_msg(package(&e, "lexicon.define", 1, true, &err) == 0, "%s: %s", err.where, err.message);
    k = env_kernel(&e, NULL);
    after = answer(k, "lexicon.define", "abandon", d);
    ck_assert_uint_eq(strlen(d), 64);
    ck_assert_msg(strcmp(before, after) != 0, "the adapter did not change the answer ('%s')", after);
    /* the other capabilities are untouched */
    char *ex = answer(k, "lexicon.example", "abandon", d);
    ck_assert_str_eq(d, "");
    free(ex);
    aik_kernel_close(k);

    /* the derived manifest: two parents, lineage data, evolution signer, the adapter as a payload */
    ck_assert_int_ge(asprintf(&path, "%s/aik-lexicon-define/manifest.json", e.modules), 0);
    ck_assert_int_eq(aik_read_file(path, 1u << 16, &json, &len), 0);
    ck_assert_msg(aik_manifest_parse(json, len, &m, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(m.n_parents, 2);
    ck_assert_uint_eq(m.n_data, 1);
    ck_assert_str_eq(m.data[0].role, "eval-cases");
    ck_assert_uint_eq(m.n_payloads, 2);
    ck_assert_str_eq(m.payloads[0].file, AIK_DISTILL_ADAPTER_FILE);
    free(json);
    free(path);

    /* verified like any module: the evolution key may sign it only because it has parents */
    {
        aik_trust *t;
        aik_module *mod;
        aik_load_options lo = { 0 };
        ck_assert_int_eq(aik_trust_open(e.trust, &t, &err), 0);
        lo.trust = t;
        lo.flags = AIK_LOAD_NO_RECORD;
        ck_assert_int_ge(asprintf(&path, "%s/aik-lexicon-define", e.modules), 0);
        ck_assert_msg(aik_module_open(path, &lo, &mod, &err) == 0, "%s: %s", err.where, err.message);
        aik_module_close(mod);
        free(path);
        aik_trust_free(t);
    }
    free(before);
    free(after);
    env_free(&e);
}
END_TEST

START_TEST(test_unmerged_equals_merged)
{
    env e;
    aik_error err;
    aik_kernel_capability kc;
    char *merged, *served;
    aik_model *mm;
    aik_adapter *a;
    char *apath;

    env_new(&e);
    ck_assert_msg(package(&e, "lexicon.define", 3, true, &err) == 0, "%s", err.message);
    aik_kernel *k = env_kernel(&e, NULL);
    ck_assert_int_eq(aik_kernel_capability_acquire(k, "lexicon.define", &kc, &err), 0);
    ck_assert_uint_gt(kc.n_lora, 0);
    ck_assert_int_ge(asprintf(&apath, "%s/aik-lexicon-define/%s", e.modules, AIK_DISTILL_ADAPTER_FILE), 0);
    ck_assert_int_eq(aik_adapter_load(apath, &a, NULL, &err), 0);
    ck_assert_int_ge(asprintf(&merged, "%s/merged.slm", e.dir), 0);
    ck_assert_msg(aik_adapter_merge(kc.base->pkg, (const aik_adapter *const *)&a, 1, merged, &err) == 0, "%s",
                  err.message);
    ck_assert_msg(aik_model_open(merged, AIK_SLM_VERIFY_CHECKSUMS, NULL, &mm, &err) == 0, "%s", err.message);
    const char *words[] = { "abandon", "zebra", "run", "quiet" };
    for (size_t i = 0; i < 4; i++) {
        aik_session *s;
        aik_session_config sc = { .n_threads = 1 };
        aik_generate_result g = { 0 };
        aik_capability_run_options ro = { .max_tokens = 12 };
        ck_assert_int_eq(aik_session_new(mm, &sc, &s, &err), 0);
        ck_assert_int_eq(aik_capability_run(s, kc.cap, words[i], strlen(words[i]), &ro, &g, NULL, &err), 0);
        served = answer(k, "lexicon.define", words[i], NULL);
        /* tolerance: merged f32 weights and W·x + s·B(A·x) agree to rounding,
         * so greedy decoding picks the same tokens */
        ck_assert_msg(strcmp(served, g.text) == 0, "%s: unmerged '%s' vs merged '%s'", words[i], served, g.text);
        free(served);
        aik_generate_result_clear(&g);
        aik_session_free(s);
    }
    aik_model_free(mm);
    aik_adapter_free(a);
    aik_kernel_capability_release(k, &kc);
    aik_kernel_close(k);
    free(apath);
    free(merged);
    env_free(&e);
}
END_TEST

#define N_THREADS 8
#define N_REQ 12
static const char *const intents[] = { "lexicon.define", "lexicon.synonyms", "lexicon.example", "text.complete" };
static const char *const swap_inputs[] = { "abandon", "river", "quick" };
static char *expected[4][3];

typedef struct worker {
    aik_kernel *k;
    int id, bad;
    char msg[256];
} worker;

static void *work(void *p)
{
    worker *w = p;
    for (int i = 0; i < N_REQ && !w->bad; i++) {
        int c = (w->id + i) % 4, in = (w->id * 7 + i) % 3;
        aik_result *r;
        aik_error err;
        aik_submit_options o = { .struct_size = sizeof(o), .max_tokens = 12 };
        if (aik_submit(w->k, intents[c], swap_inputs[in], &o, &r, &err) < 0) {
            w->bad = 1;
            snprintf(w->msg, sizeof(w->msg), "%s: %s", err.where, err.message);
            break;
        }
        if (strcmp(r->text, expected[c][in]) != 0) {
            w->bad = 1;
            snprintf(w->msg, sizeof(w->msg), "%s(%s): '%s' != '%s'", intents[c], swap_inputs[in], r->text,
                     expected[c][in]);
        }
        aik_result_free(r);
    }
    return NULL;
}

START_TEST(test_hot_swap_8_threads)
{
    env e;
    aik_error err;
    pthread_t th[N_THREADS];
    worker w[N_THREADS];

    env_new(&e);
    ck_assert_msg(package(&e, "lexicon.define", 5, true, &err) == 0, "%s", err.message);
    ck_assert_msg(package(&e, "lexicon.synonyms", 6, true, &err) == 0, "%s", err.message);
    aik_kernel *k = env_kernel(&e, NULL);
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 3; i++)
            expected[c][i] = answer(k, intents[c], swap_inputs[i], NULL);
    /* the adapters matter: with them off (a store without them) answers differ */
    for (int t = 0; t < N_THREADS; t++) {
        w[t] = (worker){ .k = k, .id = t };
        ck_assert_int_eq(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        ck_assert_msg(!w[t].bad, "thread %d: %s", t, w[t].msg);
    }
    /* one base resident, shared by every capability */
    {
        char names[16][96];
        size_t n = aik_kernel_resident(k, names, 16), bases = 0;
        for (size_t i = 0; i < n; i++)
            bases += strncmp(names[i], "aik-base@", 9) == 0;
        ck_assert_uint_eq(bases, 1);
    }
    aik_kernel_close(k);
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 3; i++)
            free(expected[c][i]);
    env_free(&e);
}
END_TEST

START_TEST(test_package_refusals)
{
    env e;
    aik_error err;
    aik_kernel_capability kc;
    aik_adapter_module_spec sp = { 0 };
    char *adapter, *cases, *sidecar, *out, *p;
    uint8_t src[32], base[32], cases_d[32];

    env_new(&e);
    aik_kernel *k = env_kernel(&e, NULL);
    ck_assert_int_eq(aik_kernel_capability_acquire(k, "lexicon.define", &kc, &err), 0);
    ck_assert_int_ge(asprintf(&adapter, "%s/a.alr1", e.dir), 0);
    ck_assert_int_ge(asprintf(&cases, "%s/c.jsonl", e.dir), 0);
    ck_assert_int_ge(asprintf(&sidecar, "%s/s.json", e.dir), 0);
    ck_assert_int_ge(asprintf(&out, "%s/out", e.dir), 0);
    write_adapter(kc.base->pkg, adapter, 9, 16.0f);
    write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true, NULL);
    aik_sha256_from_hex(kc.cap_digest, src);
    aik_sha256_from_hex(kc.base_digest, base);
    file_sha(cases, cases_d);
    sp = (aik_adapter_module_spec){ .source_dir = kc.cap_dir, .source_digest = src, .base_digest = base,
                                    .base_pkg = kc.base->pkg, .adapter_path = adapter, .sidecar_path = sidecar,
                                    .cases_digest = cases_d, .min_pass_rate = 1.0, .key = e.evo, .out_dir = out };

    /* a sidecar for another model */
    write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true,
               "0000000000000000000000000000000000000000000000000000000000000000");
    ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EBADMSG);
    ck_assert(strstr(err.where, "model_digest") != NULL);
    /* a failed evaluation */
    write_eval(&e, kc.base->pkg, adapter, cases, sidecar, false, NULL);
    ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EPERM);
    /* another adapter than the one evaluated */
    write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true, NULL);
    write_adapter(kc.base->pkg, adapter, 10, 16.0f);
    ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EBADMSG);
    ck_assert(strstr(err.where, "adapter_digest") != NULL);
    /* other eval cases than the sidecar names */
    write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true, NULL);
    uint8_t other[32] = { 1 };
    sp.cases_digest = other;
    ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EBADMSG);
    sp.cases_digest = cases_d;
    /* an adapter naming a tensor the base lacks */
    {
        aik_adapter_identity id;
        aik_adapter *a;
        float A[4 * 8] = { 0 }, B[8 * 4] = { 0 };
        aik_adapter_identity_from_slm(kc.base->pkg, &id);
        ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_LOWRANK, &id, &a), 0);
        ck_assert_int_eq(aik_adapter_add_lowrank(a, "blk.99.attn_q.weight", 8, 8, 4, 1.0f, A, B, &err), 0);
        ck_assert_int_eq(aik_adapter_write(a, adapter, &err), 0);
        aik_adapter_free(a);
        write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true, NULL);
        ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EINVAL);
        ck_assert_msg(strstr(err.message, "unknown_tensor") != NULL, "%s", err.message);
    }
    /* a dense adapter: only ALR1 is served unmerged */
    {
        aik_adapter_identity id;
        aik_adapter *a;
        aik_adapter_identity_from_slm(kc.base->pkg, &id);
        ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_DENSE, &id, &a), 0);
        ck_assert_int_eq(aik_adapter_write(a, adapter, &err), 0);
        aik_adapter_free(a);
        write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true, NULL);
        ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -ENOTSUP);
    }
    /* the source module changed after it was verified */
    write_adapter(kc.base->pkg, adapter, 9, 16.0f);
    write_eval(&e, kc.base->pkg, adapter, cases, sidecar, true, NULL);
    uint8_t wrong_src[32] = { 2 };
    sp.source_digest = wrong_src;
    ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EBADMSG);
    sp.source_digest = src;
    /* nothing was left behind by any refusal; then it works, once */
    ck_assert_int_ne(access(out, F_OK), 0);
    ck_assert_int_ge(asprintf(&p, "%s.tmp", out), 0);
    ck_assert_int_ne(access(p, F_OK), 0);
    ck_assert_msg(aik_adapter_module_build(&sp, NULL, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_eq(aik_adapter_module_build(&sp, NULL, &err), -EEXIST);
    free(p);
    aik_kernel_capability_release(k, &kc);
    aik_kernel_close(k);
    free(adapter);
    free(cases);
    free(sidecar);
    free(out);
    env_free(&e);
}
END_TEST

START_TEST(test_profile_edit)
{
    static const char prof[] =
        "# comment kept\n"
        "schema: 1\n"
        "module:\n"
        "  name: aik-test\n"
        "  version: 1.0.0\n"
        "  kind: capability\n"
        "  base: text.complete\n"
        "  # trailing comment in module\n"
        "\n"
        "capabilities:\n"
        "  - id: test.cap\n"
        "    version: 1.0.0\n"
        "requires:\n"
        "  - capability: text.complete\n"
        "    version: ^1.0\n"
        "execution:\n"
        "  memory: 1 MiB\n"
        "  backends: [cpu]\n";
    uint8_t d1[32] = { 1 }, d2[32] = { 2 };
    char *t1, *t2;
    size_t l1, l2;
    aik_error err;

    ck_assert_msg(aik_profile_with_adapter(prof, strlen(prof), "a.alr1", d1, &t1, &l1, &err) == 0, "%s: %s",
                  err.where, err.message);
    ck_assert(strstr(t1, "# comment kept") && strstr(t1, "# trailing comment in module"));
    ck_assert(strstr(t1, "  adapter:\n    file: a.alr1\n    sha256: 0100") != NULL);
    /* a second distillation replaces the entry */
    ck_assert_int_eq(aik_profile_with_adapter(t1, l1, "b.alr1", d2, &t2, &l2, &err), 0);
    ck_assert(strstr(t2, "a.alr1") == NULL && strstr(t2, "file: b.alr1") != NULL);
    free(t1);
    free(t2);
    /* a deep indent (the inserted lines grow with it) and a file without a final newline */
    {
        char deep[2048], ind[61], *t3;
        size_t l3;
        memset(ind, ' ', 60);
        ind[60] = '\0';
        int n = snprintf(deep, sizeof(deep),
                         "schema: 1\nmodule:\n%sname: aik-test\n%sversion: 1.0.0\n%skind: capability\n"
                         "%sbase: text.complete\ncapabilities:\n  - id: test.cap\n    version: 1.0.0\n"
                         "requires:\n  - capability: text.complete\n    version: ^1.0\nexecution:\n  memory: 1 MiB\n"
                         "  backends: [cpu]",
                         ind, ind, ind, ind);
        ck_assert_msg(aik_profile_with_adapter(deep, (size_t)n, "a.alr1", d1, &t3, &l3, &err) == 0, "%s: %s",
                      err.where, err.message);
        ck_assert_uint_eq(strlen(t3), l3);
        free(t3);
    }
    /* flow style and non-capability profiles are refused */
    static const char flow[] = "schema: 1\nmodule: {name: x, version: 1.0.0, kind: capability, base: text.complete}\n"
                               "capabilities:\n  - id: a.b\n    version: 1.0.0\nrequires:\n  - capability: text.complete\n"
                               "    version: ^1.0\nexecution:\n  memory: 1 MiB\n  backends: [cpu]\n";
    ck_assert_int_lt(aik_profile_with_adapter(flow, strlen(flow), "a.alr1", d1, &t1, &l1, &err), 0);
}
END_TEST

START_TEST(test_kernel_refuses_bad_adapter_modules)
{
    env e;
    aik_error err;
    aik_result *r;

    env_new(&e);
    ck_assert_int_eq(package(&e, "lexicon.define", 1, true, &err), 0);
    /* damage the adapter inside the signed module: the manifest digest catches it */
    run("printf x >> '%s/aik-lexicon-define/%s'", e.modules, AIK_DISTILL_ADAPTER_FILE);
    aik_kernel *k = env_kernel(&e, NULL);
    ck_assert_int_lt(aik_submit(k, "lexicon.define", "abandon", NULL, &r, &err), 0);
    ck_assert_msg(strstr(err.where, "payloads[0]") != NULL && strstr(err.message, "SHA-256 mismatch") != NULL, "%s: %s",
                  err.where, err.message);
    aik_kernel_close(k);
    env_free(&e);
}
END_TEST

static void progress(void *u, uint32_t s, uint32_t n, double l)
{
    (void)u;
    (void)s;
    (void)n;
    (void)l;
}

START_TEST(test_distill_pipeline)
{
    env e;
    aik_error err;
    aik_distill_config c;
    aik_distill_report rep;
    char *replay, *inputs, *cases, *work, *out, *teacher_path;
    aik_model *teacher;
    static const char words[] = "river\nstone\n# a comment\n\nquick\nlight\ngreen\nwinter\n";
    static const char case_text[] = "{\"input\":\"river\",\"expected\":\"zzzz\",\"match\":\"not-contains\"}\n"
                                    "{\"input\":\"stone\",\"expected\":\"zzzz\",\"match\":\"not-contains\"}\n";

    env_new(&e);
    ck_assert_int_ge(asprintf(&replay, "%s/replay.log", e.dir), 0);
    ck_assert_int_ge(asprintf(&inputs, "%s/inputs.txt", e.dir), 0);
    ck_assert_int_ge(asprintf(&cases, "%s/cases.jsonl", e.dir), 0);
    ck_assert_int_ge(asprintf(&work, "%s/work", e.dir), 0);
    ck_assert_int_ge(asprintf(&out, "%s/out", e.dir), 0);
    ck_assert_int_ge(asprintf(&teacher_path, "%s/teacher.slm", e.dir), 0);
    ck_assert_int_eq(aik_write_file_atomic(inputs, words, strlen(words), 0644), 0);
    ck_assert_int_eq(aik_write_file_atomic(cases, case_text, strlen(case_text), 0644), 0);
    run("'%s' init-model '%s' --shape tiny --seed 8 >/dev/null", aikctl, teacher_path);
    ck_assert_int_eq(aik_model_open(teacher_path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &teacher, &err), 0);

    /* served requests, recorded: 3 for define, 2 for another capability */
    aik_kernel *k = env_kernel(&e, replay);
    free(answer(k, "lexicon.define", "abandon", NULL));
    free(answer(k, "lexicon.define", "harbor", NULL));
    free(answer(k, "lexicon.define", "abandon", NULL));
    free(answer(k, "lexicon.synonyms", "quick", NULL));
    free(answer(k, "text.complete", "The", NULL));
    aik_kernel_close(k);

    k = env_kernel(&e, NULL);
    aik_distill_config_default(&c);
    c.capability = "lexicon.define";
    c.kernel = k;
    c.replay_logs[0] = replay;
    c.n_replay_logs = 1;
    c.inputs_file = inputs;
    c.teacher = teacher;
    c.cases_file = cases;
    c.min_pass_rate = 1.0;
    c.steps = 20;
    c.seq_len = 32;
    c.batch = 4;
    c.lr = 5e-3f;
    c.n_threads = 1;
    c.work_dir = work;
    c.out_module = out;
    c.key = e.evo;
    c.on_step = progress;

    /* refused before any work: missing cases, a capability without a module */
    c.cases_file = "/nonexistent/cases.jsonl";
    ck_assert_int_lt(aik_distill_run(&c, &rep, &err), 0);
    c.cases_file = cases;
    c.capability = "text.complete";
    ck_assert_int_eq(aik_distill_run(&c, &rep, &err), -ENOTSUP);
    c.capability = "lexicon.define";
    c.steps = 0;
    ck_assert_int_eq(aik_distill_run(&c, &rep, &err), -EINVAL);
    c.steps = 20;

    ck_assert_msg(aik_distill_run(&c, &rep, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_uint_eq(rep.replay_records, 5);
    ck_assert_uint_eq(rep.replay_used, 3);
    ck_assert_uint_eq(rep.inputs, 8); /* abandon, harbor + 6 curated, deduplicated */
    ck_assert_uint_eq(rep.teacher_generated + rep.teacher_refused, 8);
    ck_assert_uint_eq(rep.trajectories, rep.teacher_generated);
    ck_assert_uint_eq(rep.adapter_passed, 2);
    ck_assert(rep.pass);
    ck_assert_msg(rep.packaged, "%s", rep.reason);
    ck_assert_int_eq(access(out, F_OK), 0);
    {
        char *p;
        char *json;
        size_t len;
        aik_manifest m;
        ck_assert_int_ge(asprintf(&p, "%s/manifest.json", out), 0);
        ck_assert_int_eq(aik_read_file(p, 1u << 16, &json, &len), 0);
        ck_assert_int_eq(aik_manifest_parse(json, len, &m, &err), 0);
        ck_assert_uint_eq(m.n_data, 3); /* replay-log, trajectories, eval-cases */
        ck_assert_str_eq(m.data[0].role, "replay-log");
        ck_assert_str_eq(m.data[1].role, "trajectories");
        free(json);
        free(p);
        /* the trajectories file is the one whose digest the manifest names */
        uint8_t d[32];
        ck_assert_int_ge(asprintf(&p, "%s/trajectories.jsonl", work), 0);
        file_sha(p, d);
        ck_assert_mem_eq(d, m.data[1].sha256, 32);
        free(p);
    }

    /* an evaluation that cannot pass writes the sidecar but no module */
    static const char hard[] = "{\"input\":\"river\",\"expected\":\"qqqqqqqq\",\"match\":\"contains\"}\n";
    ck_assert_int_eq(aik_write_file_atomic(cases, hard, strlen(hard), 0644), 0);
    run("rm -rf '%s'", out);
    ck_assert_int_eq(aik_distill_run(&c, &rep, &err), 0);
    ck_assert(!rep.pass);
    ck_assert(!rep.packaged);
    ck_assert(strstr(rep.reason, "fail") != NULL);
    ck_assert_int_ne(access(out, F_OK), 0);

    aik_kernel_close(k);
    aik_model_free(teacher);
    free(replay);
    free(inputs);
    free(cases);
    free(work);
    free(out);
    free(teacher_path);
    env_free(&e);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODULE_STORE TRUST_STORE AIKCTL\n", argv[0]);
        return 2;
    }
    src_store = argv[1];
    src_trust = argv[2];
    aikctl = argv[3];
    Suite *s = suite_create("adapter-modules");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_profile_edit);
    tcase_add_test(tc, test_package_and_serve);
    tcase_add_test(tc, test_package_refusals);
    tcase_add_test(tc, test_unmerged_equals_merged);
    tcase_add_test(tc, test_hot_swap_8_threads);
    tcase_add_test(tc, test_kernel_refuses_bad_adapter_modules);
    tcase_add_test(tc, test_distill_pipeline);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
