/* SPDX-License-Identifier: MIT */
/*
 * Training recipes: every bad configuration is refused with its key path
 * before any work starts; a small recipe runs end to end (tokenizer training,
 * model initialisation, steps, checkpoint, package) and resumes.
 */
#include <errno.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "runtime/model.h"
#include "train/recipe.h"
#include "testutil.h"

static char *tmpdir;
static void setup(void) { tmpdir = aik_test_tmpdir(); }
static void teardown(void)
{
    aik_test_rmtree(tmpdir);
    free(tmpdir);
}

static char *write_tmp(const char *name, const char *text)
{
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", tmpdir, name), 0);
    ck_assert_int_eq(aik_write_file_atomic(p, text, strlen(text), 0644), 0);
    return p;
}

static void corpus(void)
{
    /* documents separated by blank lines, repetitive enough to learn */
    char *buf = malloc(200000);
    size_t n = 0;
    for (int i = 0; i < 600; i++)
        n += (size_t)snprintf(buf + n, 200000 - n, "The word \"w%d\" (noun) means a thing number %d.\nSynonyms of \"w%d\": t%d.\n\n",
                              i % 40, i % 40, i % 40, i % 7);
    char *p = write_tmp("train.txt", buf);
    free(p);
    p = write_tmp("valid.txt", buf + n / 2);
    free(p);
    free(buf);
}

#define GOOD_DATA "\"data\": {\"train\": \"train.txt\", \"valid\": \"valid.txt\"}"
#define GOOD_MODEL "\"model\": {\"layers\": 2, \"dim\": 32, \"heads\": 4, \"kv_heads\": 2, \"ffn_dim\": 64, \"context\": 64}"
#define GOOD_TOK "\"tokenizer\": {\"vocab_size\": 300}"
#define GOOD_TRAIN "\"train\": {\"seq_len\": 32, \"micro_batches\": 2, \"steps\": 30, \"warmup_steps\": 3, \"lr\": 0.01, \"threads\": 2}"
#define GOOD_OUT "\"output\": {\"package\": \"out.slm\"}"

static void expect_bad(const char *json, const char *where, const char *msg)
{
    char *p = write_tmp("r.json", json);
    aik_recipe *r = NULL;
    aik_error err;
    int e = aik_recipe_load(p, &r, &err);
    ck_assert_msg(e < 0, "accepted: %s", json);
    ck_assert_msg(strstr(err.where, where) != NULL, "where '%s' lacks '%s' for %s", err.where, where, json);
    ck_assert_msg(strstr(err.message, msg) != NULL, "message '%s' lacks '%s'", err.message, msg);
    ck_assert_ptr_null(r);
    free(p);
}

START_TEST(test_bad_recipes)
{
    corpus();
    expect_bad("{", "r.json", "line");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK "," GOOD_TRAIN "," GOOD_OUT ", \"bogus\": 1}", "recipe",
               "unknown key 'bogus'");
    expect_bad("{" GOOD_MODEL "," GOOD_TOK "," GOOD_TRAIN "," GOOD_OUT "}", "data", "is required");
    expect_bad("{\"data\": {\"train\": \"missing.txt\", \"valid\": \"valid.txt\"}," GOOD_MODEL "," GOOD_TOK "," GOOD_TRAIN
               "," GOOD_OUT "}", "data.train", "not a readable file");
    expect_bad("{" GOOD_DATA ", \"model\": {\"layers\": 2, \"dim\": 32, \"heads\": 4, \"kv_heads\": 3, \"ffn_dim\": 64, "
               "\"context\": 64}," GOOD_TOK "," GOOD_TRAIN "," GOOD_OUT "}", "model.kv_heads", "not a multiple");
    expect_bad("{" GOOD_DATA ", \"model\": {\"layers\": \"two\", \"dim\": 32, \"heads\": 4, \"ffn_dim\": 64, "
               "\"context\": 64}," GOOD_TOK "," GOOD_TRAIN "," GOOD_OUT "}", "model.layers", "integer");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL ", \"tokenizer\": {\"vocab_size\": 300, \"merges\": 3}," GOOD_TRAIN
               "," GOOD_OUT "}", "tokenizer", "unknown key 'merges'");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TRAIN "," GOOD_OUT "}", "tokenizer", "is required");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK ", \"train\": {\"seq_len\": 65, \"steps\": 3}," GOOD_OUT "}",
               "train.seq_len", "exceeds model.context");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK ", \"train\": {\"steps\": 3, \"lr\": -1}," GOOD_OUT "}",
               "train.lr", "must be a number");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK ", \"train\": {\"steps\": 3, \"mode\": \"sideways\"}," GOOD_OUT
               "}", "train.mode", "full");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK ", \"train\": {\"lr\": 0.1}," GOOD_OUT "}", "train.steps",
               "is required");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK "," GOOD_TRAIN ", \"output\": {\"package\": \"o.slm\", "
               "\"dtype\": \"q3\"}}", "output.dtype", "one of");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK "," GOOD_TRAIN "}", "output", "is required");
    expect_bad("{" GOOD_DATA ", \"model\": {\"base\": \"nope.slm\"}," GOOD_TRAIN "," GOOD_OUT "}", "model.base",
               "not a readable file");
    expect_bad("{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK ", \"train\": {\"steps\": 3, \"seq_len\": 32, \"distill\": {\"teacher\": "
               "\"t.slm\"}}," GOOD_OUT "}", "train.distill.teacher", "not a readable file");
}
END_TEST

START_TEST(test_small_recipe_runs_and_resumes)
{
    corpus();
    char *p = write_tmp("r.json", "{" GOOD_DATA "," GOOD_MODEL "," GOOD_TOK "," GOOD_TRAIN ","
                                  "\"eval\": {\"every\": 10, \"sequences\": 2},"
                                  "\"checkpoint\": {\"path\": \"ck.bin\", \"every\": 10},"
                                  GOOD_OUT "}");
    aik_recipe *r;
    aik_error err;
    aik_model *m;
    char *out, *ck;

    ck_assert_msg(aik_recipe_load(p, &r, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_msg(aik_recipe_run(r, false, NULL, NULL, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_ge(asprintf(&out, "%s/out.slm", tmpdir), 0);
    ck_assert_int_ge(asprintf(&ck, "%s/ck.bin", tmpdir), 0);
    ck_assert_int_eq(aik_model_open(out, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, &err), 0);
    ck_assert_uint_eq(m->hp.n_vocab, 300);
    ck_assert_uint_eq(m->hp.n_layers, 2);
    aik_model_free(m);
    struct stat st;
    ck_assert_int_eq(stat(ck, &st), 0);
    /* resuming a finished run does no steps and writes the same package */
    uint8_t d1[32], d2[32];
    {
        aik_slm *s;
        ck_assert_int_eq(aik_slm_open(out, 0, &s, &err), 0);
        memcpy(d1, s->hdr.model_checksum, 32);
        aik_slm_close(s);
    }
    ck_assert_msg(aik_recipe_run(r, true, NULL, NULL, &err) == 0, "%s: %s", err.where, err.message);
    {
        aik_slm *s;
        ck_assert_int_eq(aik_slm_open(out, 0, &s, &err), 0);
        memcpy(d2, s->hdr.model_checksum, 32);
        aik_slm_close(s);
    }
    ck_assert_mem_eq(d1, d2, 32);
    aik_recipe_free(r);
    free(out);
    free(ck);
    free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recipe");
    TCase *tc = tcase_create("recipe");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bad_recipes);
    tcase_add_test(tc, test_small_recipe_runs_and_resumes);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
