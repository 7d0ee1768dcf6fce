/* SPDX-License-Identifier: MIT */
/*
 * The host API end to end over a real signed module store (built by the test
 * suite from the in-tree modules and a tiny random base): only the modules a
 * resolution names are loaded, concurrent submits equal sequential ones,
 * idle modules are unloaded under a memory budget, tampered modules are
 * refused, and the failure paths say why.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "aik/kernel.h"
#include "runtime/replay.h"
#include "testutil.h"

static const char *store, *trust;

static aik_kernel *open_kernel(uint64_t budget)
{
    aik_kernel_config c = { .struct_size = sizeof(c), .module_store = store, .trust_store = trust,
                            .memory_budget = budget, .n_threads = 1 };
    aik_kernel *k;
    aik_error err;
    ck_assert_msg(aik_kernel_open(&c, &k, &err) == 0, "%s: %s", err.where, err.message);
    return k;
}

static bool resident(aik_kernel *k, const char *prefix)
{
    char names[16][96];
    size_t n = aik_kernel_resident(k, names, 16);
    for (size_t i = 0; i < n; i++)
        if (strncmp(names[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

START_TEST(test_loads_only_what_is_needed)
{
    aik_kernel *k = open_kernel(0);
    aik_result *r;
    aik_error err;

    ck_assert_uint_eq(aik_kernel_load_count(k), 0); /* opening loads no module code */
    ck_assert_msg(aik_submit(k, "lexicon.define", "abandon", NULL, &r, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_str_eq(r->capability, "lexicon.define");
    ck_assert_uint_eq(r->n_modules, 2);
    ck_assert_str_eq(r->modules[0].name, "aik-base");
    ck_assert_str_eq(r->modules[1].name, "aik-lexicon-define");
    ck_assert_uint_eq(strlen(r->modules[0].digest), 64);
    ck_assert_uint_eq(aik_kernel_load_count(k), 2);
    ck_assert(resident(k, "aik-base@"));
    ck_assert(resident(k, "aik-lexicon-define@"));
    ck_assert(!resident(k, "aik-lexicon-synonyms@"));
    ck_assert(!resident(k, "aik-lexicon-example@"));
    aik_result_free(r);

    /* the cache serves the next request without loading again */
    ck_assert_int_eq(aik_submit(k, "lexicon.define@^1.0", "run", NULL, &r, &err), 0);
    ck_assert_uint_eq(aik_kernel_load_count(k), 2);
    aik_result_free(r);

    /* text.complete is served by the base alone */
    ck_assert_int_eq(aik_submit(k, "text.complete", "Hello", NULL, &r, &err), 0);
    ck_assert_uint_eq(r->n_modules, 1);
    aik_result_free(r);

    /* free text resolves through the capability graph */
    ck_assert_int_eq(aik_submit(k, "words with a similar meaning", "big", NULL, &r, &err), 0);
    ck_assert_str_eq(r->capability, "lexicon.synonyms");
    ck_assert(r->match_score < 1.0);
    aik_result_free(r);
    aik_kernel_close(k);
}
END_TEST

START_TEST(test_failures_explained)
{
    aik_kernel *k = open_kernel(0);
    aik_result *r = NULL;
    aik_error err;
    aik_submit_options so = { .struct_size = sizeof(so) };
    int cancel = 1;

    ck_assert_int_eq(aik_submit(k, "the weather in Paris tomorrow", "x", NULL, &r, &err), -ENOENT);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(aik_submit(k, "lexicon.define@^2.0", "x", NULL, &r, &err), -ENOENT);
    ck_assert_int_eq(aik_submit(k, "lexicon.define", "say \"hi\"", NULL, &r, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "cannot serve this input"));
    so.cancel = &cancel;
    ck_assert_int_eq(aik_submit(k, "text.complete", "Hello", &so, &r, &err), 0);
    ck_assert_str_eq(r->stop_reason, "cancelled");
    ck_assert_uint_eq(r->n_tokens, 0);
    aik_result_free(r);
    so.struct_size = 4096;
    ck_assert_int_eq(aik_submit(k, "text.complete", "Hello", &so, &r, &err), -EINVAL);
    aik_kernel_close(k);
}
END_TEST

START_TEST(test_lru_unload_under_budget)
{
    /* budget: the base and one capability module (1 byte each) */
    struct stat st;
    char *payload;
    ck_assert_int_ge(asprintf(&payload, "%s/aik-base/aik-wordnet.slm", store), 0);
    ck_assert_int_eq(stat(payload, &st), 0);
    free(payload);
    aik_kernel *k = open_kernel((uint64_t)st.st_size + 1);
    aik_result *r;
    aik_error err;

    ck_assert_int_eq(aik_submit(k, "lexicon.define", "cat", NULL, &r, &err), 0);
    aik_result_free(r);
    ck_assert_int_eq(aik_submit(k, "lexicon.synonyms", "cat", NULL, &r, &err), 0);
    aik_result_free(r);
    ck_assert(resident(k, "aik-lexicon-synonyms@"));
    ck_assert(!resident(k, "aik-lexicon-define@")); /* least recently used, idle: unloaded */
    ck_assert(resident(k, "aik-base@"));
    /* coming back reloads it, verified again */
    uint64_t loads = aik_kernel_load_count(k);
    ck_assert_int_eq(aik_submit(k, "lexicon.define", "cat", NULL, &r, &err), 0);
    aik_result_free(r);
    ck_assert_uint_eq(aik_kernel_load_count(k), loads + 1);
    aik_kernel_close(k);
}
END_TEST

/* ---- concurrency ---- */

static const char *const intents[4] = { "lexicon.define", "lexicon.synonyms", "lexicon.example", "text.complete" };
static const char *const inputs[4] = { "abandon", "quick", "run", "The cat" };

typedef struct job {
    aik_kernel *k;
    int id;
    char *text[8];
    int fails;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    for (int i = 0; i < 8; i++) {
        aik_result *r;
        aik_error err;
        int q = (j->id + i) % 4;
        if (aik_submit(j->k, intents[q], inputs[q], NULL, &r, &err) < 0) {
            j->fails++;
            continue;
        }
        j->text[i] = strdup(r->text);
        aik_result_free(r);
    }
    return NULL;
}

START_TEST(test_concurrent_equals_sequential)
{
    aik_kernel *k = open_kernel(0);
    char *expect[4];
    aik_error err;
    pthread_t th[8];
    job jobs[8];

    for (int q = 0; q < 4; q++) {
        aik_result *r;
        ck_assert_int_eq(aik_submit(k, intents[q], inputs[q], NULL, &r, &err), 0);
        expect[q] = strdup(r->text);
        aik_result_free(r);
    }
    aik_kernel_close(k);
    k = open_kernel(0); /* cold cache: the threads race to load too */
    for (int t = 0; t < 8; t++) {
        memset(&jobs[t], 0, sizeof(jobs[t]));
        jobs[t].k = k;
        jobs[t].id = t;
        ck_assert_int_eq(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    }
    for (int t = 0; t < 8; t++) {
        pthread_join(th[t], NULL);
        ck_assert_int_eq(jobs[t].fails, 0);
        for (int i = 0; i < 8; i++) {
            ck_assert_str_eq(jobs[t].text[i], expect[(t + i) % 4]);
            free(jobs[t].text[i]);
        }
    }
    ck_assert_uint_eq(aik_kernel_load_count(k), 4); /* each module verified and loaded once */
    aik_kernel_close(k);
    for (int q = 0; q < 4; q++)
        free(expect[q]);
}
END_TEST

START_TEST(test_tampered_module_refused)
{
    /* copy the store, flip one byte of a capability module's code */
    char *dir = aik_test_tmpdir(), *cmd, *so;
    ck_assert_int_ge(asprintf(&cmd, "cp -r '%s' '%s/modules'", store, dir), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    ck_assert_int_ge(asprintf(&so, "%s/modules/aik-lexicon-synonyms/aik-lexicon-synonyms.so", dir), 0);
    FILE *f = fopen(so, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0x1100, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 0x1100, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    char *mods;
    ck_assert_int_ge(asprintf(&mods, "%s/modules", dir), 0);
    aik_kernel_config cfg = { .struct_size = sizeof(cfg), .module_store = mods, .trust_store = trust };
    aik_kernel *k;
    aik_result *r = NULL;
    aik_error err;
    ck_assert_int_eq(aik_kernel_open(&cfg, &k, &err), 0);
    ck_assert_int_lt(aik_submit(k, "lexicon.synonyms", "big", NULL, &r, &err), 0);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err.message, "digest") || strstr(err.message, "SHA-256") || strstr(err.where, "object"),
                  "unexpected reason %s: %s", err.where, err.message);
    ck_assert(!resident(k, "aik-lexicon-synonyms@"));
    /* the untouched modules still serve */
    ck_assert_int_eq(aik_submit(k, "lexicon.define", "big", NULL, &r, &err), 0);
    aik_result_free(r);
    aik_kernel_close(k);
    aik_test_rmtree(dir);
    free(dir);
    free(so);
    free(mods);
}
END_TEST

static int count_record(void *user, uint64_t index, const aik_replay_record *rec)
{
    int *n = user;
    (void)index;
    ck_assert_uint_eq(rec->n_digests, 2);
    ck_assert_uint_gt(rec->output_len + 1, 0);
    ck_assert_mem_eq(rec->intent, "lexicon.define", rec->intent_len);
    (*n)++;
    return 0;
}

START_TEST(test_replay_log_opt_in)
{
    char *dir = aik_test_tmpdir(), *log;
    ck_assert_int_ge(asprintf(&log, "%s/replay.log", dir), 0);
    aik_kernel_config c = { .struct_size = sizeof(c), .module_store = store, .trust_store = trust,
                            .n_threads = 1, .replay_log = log };
    aik_kernel *k;
    aik_result *r;
    aik_error err;
    struct stat st;
    ck_assert_int_eq(aik_kernel_open(&c, &k, &err), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(aik_submit(k, "lexicon.define", "stone", NULL, &r, &err), 0);
        aik_result_free(r);
    }
    aik_kernel_close(k);
    ck_assert_int_eq(stat(log, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    aik_replay_scan_result sr;
    int n = 0;
    ck_assert_int_eq(aik_replay_scan_file(log, count_record, &n, &sr, &err), 0);
    ck_assert(!sr.damaged);
    ck_assert_int_eq(n, 3);
    aik_test_rmtree(dir);
    free(dir);
    free(log);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_kernel MODULE_STORE TRUST_STORE\n");
        return 2;
    }
    store = argv[1];
    trust = argv[2];
    Suite *s = suite_create("kernel");
    TCase *tc = tcase_create("kernel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_loads_only_what_is_needed);
    tcase_add_test(tc, test_failures_explained);
    tcase_add_test(tc, test_lru_unload_under_budget);
    tcase_add_test(tc, test_concurrent_equals_sequential);
    tcase_add_test(tc, test_tampered_module_refused);
    tcase_add_test(tc, test_replay_log_opt_in);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
