/* SPDX-License-Identifier: MIT */
/*
 * Integration test: the built `aikctl inspect` / `aikctl check` on a package
 * written by the library, then on corrupted copies of it.
 * Usage: test_slm_cli PATH/TO/aikctl
 */
#include <errno.h>
#include <sys/wait.h>

#include <jansson.h>

#include "common/atomic_file.h"
#include "loader/slm.h"
#include "slm_testpkg.h"
#include "testutil.h"

static const char *g_aikctl;

/* Run "aikctl ARGS" capturing stdout+stderr; returns the exit status. */
static int run(const char *args, char **ret_out)
{
    char *cmd, buf[4096];
    size_t len = 0, cap = 1;
    char *out = calloc(1, 1);
    FILE *p;
    int st;

    ck_assert_ptr_nonnull(out);
    ck_assert_int_ge(asprintf(&cmd, "'%s' %s 2>&1", g_aikctl, args), 0);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) {
        while (len + n + 1 > cap) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        memcpy(out + len, buf, n);
        len += n;
        out[len] = '\0';
    }
    st = pclose(p);
    free(cmd);
    ck_assert_msg(WIFEXITED(st), "aikctl %s did not exit normally", args);
    if (ret_out)
        *ret_out = out;
    else
        free(out);
    return WEXITSTATUS(st);
}

static size_t count_substr(const char *s, const char *sub)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

static void corrupt(const char *src, const char *dst, size_t off, uint8_t xor)
{
    char *data = NULL;
    size_t len = 0;

    ck_assert_int_eq(aik_read_file(src, 1 << 20, &data, &len), 0);
    ck_assert_uint_lt(off, len);
    data[off] ^= (char)xor;
    ck_assert_int_eq(aik_write_file_atomic(dst, data, len, 0644), 0);
    free(data);
}

START_TEST(test_cli_inspect_check)
{
    char *dir = aik_test_tmpdir(), *good, *bad_data, *bad_magic, *args, *out;
    aik_slm *pkg = NULL;
    aik_error err;
    json_t *root;
    json_error_t jerr;
    uint64_t data_off;

    ck_assert_ptr_nonnull(dir);
    ck_assert_int_ge(asprintf(&good, "%s/model.slm", dir), 0);
    ck_assert_int_ge(asprintf(&bad_data, "%s/bad-data.slm", dir), 0);
    ck_assert_int_ge(asprintf(&bad_magic, "%s/bad-magic.slm", dir), 0);
    ck_assert_msg(testpkg_write(good, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_eq(aik_slm_open(good, 0, &pkg, &err), 0);
    data_off = pkg->hdr.data_offset;
    aik_slm_close(pkg);

    /* Good package: inspect (text and JSON) and check succeed. */
    ck_assert_int_ge(asprintf(&args, "inspect '%s'", good), 0);
    ck_assert_int_eq(run(args, &out), 0);
    ck_assert_msg(strstr(out, "token_embd.weight") && strstr(out, "q4_0") && strstr(out, "16 x 8"), "%s", out);
    free(out);
    free(args);

    ck_assert_int_ge(asprintf(&args, "inspect --json '%s'", good), 0);
    ck_assert_int_eq(run(args, &out), 0);
    root = json_loads(out, 0, &jerr);
    ck_assert_msg(root != NULL, "bad JSON (%s): %s", jerr.text, out);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "n_layers")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(root, "layers"), 1),
                                                        "ffn_dim")),
                     96);
    ck_assert_uint_eq(json_array_size(json_object_get(root, "tensors")), TESTPKG_N_TENSORS);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(root, "tensors"), 3), "dtype")),
                     "q8_0");
    ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(json_object_get(root, "tensors"), 2), "shape")),
                      4);
    ck_assert_str_eq(json_string_value(json_object_get(root, "model_type")), "llama");
    json_decref(root);
    free(out);
    free(args);

    ck_assert_int_ge(asprintf(&args, "check '%s'", good), 0);
    ck_assert_int_eq(run(args, &out), 0);
    ck_assert_msg(count_substr(out, "  match\n") == 3 && !strstr(out, "MISMATCH"), "%s", out);
    free(out);
    free(args);

    /* A flipped tensor byte: structure fine (inspect 0), checksum not. */
    corrupt(good, bad_data, (size_t)data_off + 5, 0x20);
    ck_assert_int_ge(asprintf(&args, "inspect '%s'", bad_data), 0);
    ck_assert_int_eq(run(args, NULL), 0);
    free(args);
    ck_assert_int_ge(asprintf(&args, "check '%s'", bad_data), 0);
    ck_assert_int_eq(run(args, &out), 1);
    ck_assert_msg(strstr(out, "model_checksum") && count_substr(out, "MISMATCH") == 2 /* line + summary */ &&
                      count_substr(out, "  match\n") == 2,
                  "%s", out);
    free(out);
    free(args);

    /* A structural error: both commands print it and exit 1. */
    corrupt(good, bad_magic, 0, 0xff);
    ck_assert_int_ge(asprintf(&args, "check '%s'", bad_magic), 0);
    ck_assert_int_eq(run(args, &out), 1);
    ck_assert_msg(strstr(out, "header.magic") != NULL, "%s", out);
    free(out);
    free(args);
    ck_assert_int_ge(asprintf(&args, "inspect --json '%s'", bad_magic), 0);
    ck_assert_int_eq(run(args, &out), 1);
    ck_assert_msg(strstr(out, "header.magic") != NULL, "%s", out);
    free(out);
    free(args);

    /* Usage errors. */
    ck_assert_int_eq(run("check", NULL), 2);
    ck_assert_int_eq(run("inspect", NULL), 2);
    ck_assert_int_eq(run("inspect --bogus x", NULL), 2);
    ck_assert_int_ge(asprintf(&args, "check '%s/absent.slm'", dir), 0);
    ck_assert_int_eq(run(args, NULL), 1);
    free(args);

    aik_test_rmtree(dir);
    free(good);
    free(bad_data);
    free(bad_magic);
    free(dir);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/aikctl\n", argv[0]);
        return 2;
    }
    g_aikctl = argv[1];
    s = suite_create("slm-cli");
    tc = tcase_create("cli");
    tcase_add_test(tc, test_cli_inspect_check);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
