/* SPDX-License-Identifier: MIT */
/*
 * Integration test: `aikctl tokenize` on a trained tokenizer blob and on a
 * .slm package that carries it; the printed ids must equal the library's,
 * stdin input works, a corrupt blob is rejected naming the field.
 * Usage: test_tokenize_cli PATH/TO/aikctl
 */
#include <errno.h>
#include <sys/wait.h>

#include "common/atomic_file.h"
#include "loader/slm.h"
#include "loader/slm_testpkg.h"
#include "runtime/tokenizer.h"
#include "testutil.h"
#include "train/bpe_trainer.h"

static const char *g_aikctl;

/* Run "aikctl ARGS" (through sh) capturing stdout+stderr; returns the exit status. */
static int run(const char *args, char **ret_out)
{
    char *cmd, buf[4096];
    size_t len = 0;
    char *out = calloc(1, 1);
    FILE *p;
    int st;

    ck_assert_ptr_nonnull(out);
    ck_assert_int_ge(asprintf(&cmd, "%s 2>&1", args), 0);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) {
        out = realloc(out, len + n + 1);
        ck_assert_ptr_nonnull(out);
        memcpy(out + len, buf, n);
        len += n;
        out[len] = '\0';
    }
    st = pclose(p);
    free(cmd);
    ck_assert(WIFEXITED(st));
    *ret_out = out;
    return WEXITSTATUS(st);
}

START_TEST(test_cli_tokenize)
{
    static const char corpus[] =
        "hello world. the kernel loads the model, hello world again; the model runs the graph.\n"
        "hello kernel, hello graph, hello world<|endoftext|>the end";
    aik_bpe_trainer_opts o = { .vocab_size = 300 };
    char *dir = aik_test_tmpdir(), *blob_path, *pkg_path, *bad_path, *cmd, *out, want[512];
    uint8_t *blob;
    size_t blob_len, n_ids, pos = 0;
    int32_t *ids;
    aik_tokenizer *tok;
    aik_error err;
    aik_slm_header h;
    aik_slm_layer layers[2];
    aik_slm_writer *w;

    ck_assert_ptr_nonnull(dir);
    ck_assert_int_eq(aik_bpe_train(&o, corpus, sizeof(corpus) - 1, &blob, &blob_len, &err), 0);
    ck_assert_int_eq(aik_tokenizer_load(blob, blob_len, &tok, &err), 0);
    ck_assert_int_eq(aik_tokenizer_encode_alloc(tok, "hello world<|endoftext|>", 24, AIK_TOKENIZE_PARSE_SPECIAL,
                                                &ids, &n_ids), 0);
    for (size_t i = 0; i < n_ids; i++)
        pos += (size_t)snprintf(want + pos, sizeof(want) - pos, i ? " %d" : "%d", ids[i]);
    snprintf(want + pos, sizeof(want) - pos, "\n");

    ck_assert_int_ge(asprintf(&blob_path, "%s/tok.blob", dir), 0);
    ck_assert_int_ge(asprintf(&pkg_path, "%s/model.slm", dir), 0);
    ck_assert_int_ge(asprintf(&bad_path, "%s/bad.blob", dir), 0);
    ck_assert_int_eq(aik_write_file_atomic(blob_path, blob, blob_len, 0644), 0);

    /* a package carrying the blob */
    testpkg_template(&h, layers);
    h.n_vocab = aik_tokenizer_n_vocab(tok);
    ck_assert_int_eq(aik_slm_writer_begin(pkg_path, &h, layers, blob, blob_len, &w, &err), 0);
    for (size_t i = 0; i < TESTPKG_N_TENSORS; i++) {
        uint64_t len;
        uint8_t *data = testpkg_tensor_data(i, &len);
        const testpkg_tensor *t = &testpkg_tensors[i];
        ck_assert_int_eq(aik_slm_writer_add_tensor(w, t->name, t->dtype, t->n_dims, t->shape, data, &err), 0);
        free(data);
    }
    ck_assert_msg(aik_slm_writer_finish(w, &err) == 0, "%s: %s", err.where, err.message);

    /* ids only, from a blob and from the package: the library's ids */
    ck_assert_int_ge(asprintf(&cmd, "'%s' tokenize --ids --special '%s' 'hello world<|endoftext|>'", g_aikctl,
                              blob_path), 0);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_str_eq(out, want);
    free(out);
    free(cmd);
    ck_assert_int_ge(asprintf(&cmd, "'%s' tokenize --ids --special '%s' 'hello world<|endoftext|>'", g_aikctl,
                              pkg_path), 0);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_str_eq(out, want);
    free(out);
    free(cmd);

    /* full listing from stdin: pieces and decoded text */
    ck_assert_int_ge(asprintf(&cmd, "printf 'hello world\\n' | '%s' tokenize '%s' -", g_aikctl, pkg_path), 0);
    ck_assert_int_eq(run(cmd, &out), 0);
    ck_assert_msg(strstr(out, "decoded: \"hello world\\n\"") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "\"hello\"") != NULL, "%s", out);
    free(out);
    free(cmd);

    /* corrupt magic: rejected, naming the field */
    blob[0] ^= 0xff;
    ck_assert_int_eq(aik_write_file_atomic(bad_path, blob, blob_len, 0644), 0);
    ck_assert_int_ge(asprintf(&cmd, "'%s' tokenize '%s' hi", g_aikctl, bad_path), 0);
    ck_assert_int_eq(run(cmd, &out), 1);
    ck_assert_msg(strstr(out, "header.magic") != NULL, "%s", out);
    free(out);
    free(cmd);

    /* usage errors */
    ck_assert_int_ge(asprintf(&cmd, "'%s' tokenize '%s'", g_aikctl, blob_path), 0);
    ck_assert_int_eq(run(cmd, &out), 2);
    free(out);
    free(cmd);

    free(ids);
    aik_tokenizer_free(tok);
    free(blob);
    free(blob_path);
    free(pkg_path);
    free(bad_path);
    aik_test_rmtree(dir);
    free(dir);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s = suite_create("tokenize_cli");
    TCase *tc = tcase_create("cli");

    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/aikctl\n", argv[0]);
        return 2;
    }
    g_aikctl = argv[1];
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cli_tokenize);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
