/* SPDX-License-Identifier: MIT */
/*
 * Integration test: aikctl adapter inspect|validate|merge|segment and aikctl
 * eval on real files. argv[1] is the aikctl binary.
 */
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/atomic_file.h"
#include "loader/adapter.h"
#include "loader/slm.h"
#include "runtime/eval.h"
#include "../engine/tiny_model.h"
#include "testutil.h"

static const char *g_aikctl;
static char *g_dir;
static char g_f32[600], g_q8[600], g_adp[600], g_cases[600], g_out[600], g_err[600];

/* Run aikctl with args (a shell fragment), stdout/stderr to files; exit code. */
static int run(const char *args)
{
    char *cmd;
    int st;

    ck_assert(asprintf(&cmd, "'%s' %s >'%s' 2>'%s'", g_aikctl, args, g_out, g_err) > 0);
    st = system(cmd);
    free(cmd);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
    char *d = NULL;
    size_t n;
    ck_assert_int_eq(aik_read_file(path, 1 << 20, &d, &n), 0);
    return d;
}

static void setup(void)
{
    aik_slm_header hdr;
    aik_slm *pkg = NULL;
    aik_adapter *a = NULL;
    aik_adapter_identity id;
    aik_error err;
    uint64_t idx[2] = { 1, 2 };
    float dl[2] = { 0.25f, -0.5f };
    static const char cases[] = "{\"input\": \"ab\", \"expected\": \"\", \"match\": \"contains\"}\n"
                                "{\"input\": \"cd\", \"expected\": \"\", \"match\": \"not-contains\"}\n";

    g_dir = aik_test_tmpdir();
    ck_assert_ptr_nonnull(g_dir);
    snprintf(g_f32, sizeof(g_f32), "%s/f32.slm", g_dir);
    snprintf(g_q8, sizeof(g_q8), "%s/q8.slm", g_dir);
    snprintf(g_adp, sizeof(g_adp), "%s/a.asp", g_dir);
    snprintf(g_cases, sizeof(g_cases), "%s/cases.jsonl", g_dir);
    snprintf(g_out, sizeof(g_out), "%s/stdout", g_dir);
    snprintf(g_err, sizeof(g_err), "%s/stderr", g_dir);
    tiny_header(&hdr);
    ck_assert_int_eq(tiny_model_write(g_f32, &hdr, NULL, AIK_DTYPE_F32, 1), 0);
    ck_assert_int_eq(tiny_model_write(g_q8, &hdr, NULL, AIK_DTYPE_Q8_0, 1), 0);
    ck_assert_int_eq(aik_slm_open(g_f32, 0, &pkg, &err), 0);
    aik_adapter_identity_from_slm(pkg, &id);
    ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_SPARSE, &id, &a), 0);
    ck_assert_int_eq(aik_adapter_add_sparse(a, pkg->tensors[pkg->hdr.tensor_count - 1].name,
                                            pkg->tensors[pkg->hdr.tensor_count - 1].n_dims,
                                            pkg->tensors[pkg->hdr.tensor_count - 1].shape, 2, idx, dl, &err),
                     0);
    ck_assert_int_eq(aik_adapter_write(a, g_adp, &err), 0);
    aik_adapter_free(a);
    aik_slm_close(pkg);
    ck_assert_int_eq(aik_write_file_atomic(g_cases, cases, strlen(cases), 0644), 0);
}

static void teardown(void)
{
    aik_test_rmtree(g_dir);
    free(g_dir);
}

START_TEST(test_adapter_commands)
{
    char args[2048], merged[700], *s;
    aik_slm *pkg = NULL;
    aik_error err;

    snprintf(args, sizeof(args), "adapter inspect '%s'", g_adp);
    ck_assert_int_eq(run(args), 0);
    s = slurp(g_out);
    ck_assert_ptr_nonnull(strstr(s, "ASP1 (sparse)"));
    ck_assert_ptr_nonnull(strstr(s, "pairs=2"));
    free(s);

    snprintf(args, sizeof(args), "adapter validate '%s' '%s'", g_adp, g_f32);
    ck_assert_int_eq(run(args), 0);
    snprintf(args, sizeof(args), "adapter validate '%s' '%s'", g_adp, g_q8);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_msg(strstr(s, "layout_checksum_mismatch") != NULL, "stderr: %s", s);
    free(s);

    snprintf(merged, sizeof(merged), "%s/merged.slm", g_dir);
    snprintf(args, sizeof(args), "adapter merge '%s' '%s' '%s' -o '%s'", g_f32, g_adp, g_adp, merged);
    ck_assert_int_eq(run(args), 0);
    ck_assert_int_eq(aik_slm_open(merged, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err), 0);
    aik_slm_close(pkg);
    /* into a q8_0 base: refused, nothing written */
    snprintf(args, sizeof(args), "adapter merge '%s' '%s' -o '%s/bad.slm'", g_q8, g_adp, g_dir);
    ck_assert_int_eq(run(args), 1);
    snprintf(args, sizeof(args), "%s/bad.slm", g_dir);
    ck_assert_int_eq(access(args, F_OK), -1);
    /* corrupt adapter: named field */
    {
        char *d = slurp(g_adp), bad[700];
        struct stat st;
        ck_assert_int_eq(stat(g_adp, &st), 0);
        d[st.st_size - 1] ^= 1;
        snprintf(bad, sizeof(bad), "%s/bad.asp", g_dir);
        ck_assert_int_eq(aik_write_file_atomic(bad, d, (size_t)st.st_size, 0644), 0);
        free(d);
        snprintf(args, sizeof(args), "adapter inspect '%s'", bad);
        ck_assert_int_eq(run(args), 1);
        s = slurp(g_err);
        ck_assert_ptr_nonnull(strstr(s, "header.payload_sha256"));
        free(s);
    }
    ck_assert_int_eq(run("adapter"), 2);
    ck_assert_int_eq(run("adapter frobnicate x"), 2);
}
END_TEST

/* Files equal byte for byte. */
static bool same_file(const char *a, const char *b)
{
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    bool eq;

    ck_assert_int_eq(aik_read_file(a, 16u << 20, &da, &la), 0);
    ck_assert_int_eq(aik_read_file(b, 16u << 20, &db, &lb), 0);
    eq = la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return eq;
}

START_TEST(test_segment_commands)
{
    char args[2048], frag[700], out[700], donor[700], dfrag[700], *s;
    aik_slm_header hdr;

    snprintf(frag, sizeof(frag), "%s/l1.asg", g_dir);
    snprintf(out, sizeof(out), "%s/applied.slm", g_dir);
    snprintf(args, sizeof(args), "adapter segment extract '%s' --layers 1-1 -o '%s'", g_f32, frag);
    ck_assert_int_eq(run(args), 0);

    snprintf(args, sizeof(args), "adapter inspect '%s'", frag);
    ck_assert_int_eq(run(args), 0);
    s = slurp(g_out);
    ck_assert_msg(strstr(s, "ASG1 (segment)") && strstr(s, "layers:          1-1") &&
                      strstr(s, "blk.1.ffn_down.weight") && !strstr(s, "blk.0."),
                  "stdout: %s", s);
    free(s);
    snprintf(args, sizeof(args), "adapter validate '%s' '%s'", frag, g_f32);
    ck_assert_int_eq(run(args), 0);
    snprintf(args, sizeof(args), "adapter validate '%s' '%s'", frag, g_q8);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_msg(strstr(s, "layout_checksum_mismatch") != NULL, "stderr: %s", s);
    free(s);

    /* extract → apply onto the same base: the base, byte for byte */
    snprintf(args, sizeof(args), "adapter segment apply '%s' '%s' -o '%s'", g_f32, frag, out);
    ck_assert_int_eq(run(args), 0);
    ck_assert(same_file(out, g_f32));
    /* a donor's layer 1 changes the package; a fragment of layers 0-1 of
     * the donor turns the base into the donor */
    snprintf(donor, sizeof(donor), "%s/donor.slm", g_dir);
    snprintf(dfrag, sizeof(dfrag), "%s/donor.asg", g_dir);
    tiny_header(&hdr);
    ck_assert_int_eq(tiny_model_write(donor, &hdr, NULL, AIK_DTYPE_F32, 2), 0);
    snprintf(args, sizeof(args), "adapter segment extract '%s' --layers 1 -o '%s'", donor, dfrag);
    ck_assert_int_eq(run(args), 0);
    snprintf(args, sizeof(args), "adapter segment apply '%s' '%s' -o '%s'", g_f32, dfrag, out);
    ck_assert_int_eq(run(args), 0);
    ck_assert(!same_file(out, g_f32) && !same_file(out, donor));

    /* a fragment is not a delta: merge refuses it, naming the right command */
    snprintf(args, sizeof(args), "adapter merge '%s' '%s' -o '%s/m.slm'", g_f32, frag, g_dir);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_msg(strstr(s, "segment apply") != NULL, "stderr: %s", s);
    free(s);
    /* onto another layout: refused, nothing written */
    snprintf(args, sizeof(args), "adapter segment apply '%s' '%s' -o '%s/bad.slm'", g_q8, frag, g_dir);
    ck_assert_int_eq(run(args), 1);
    snprintf(args, sizeof(args), "%s/bad.slm", g_dir);
    ck_assert_int_eq(access(args, F_OK), -1);
    /* a delta is not a fragment */
    snprintf(args, sizeof(args), "adapter segment apply '%s' '%s' -o '%s/bad.slm'", g_f32, g_adp, g_dir);
    ck_assert_int_eq(run(args), 1);
    /* layer ranges: beyond the model (1), malformed (2) */
    snprintf(args, sizeof(args), "adapter segment extract '%s' --layers 1-2 -o '%s/x.asg'", g_f32, g_dir);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_msg(strstr(s, "layers") != NULL, "stderr: %s", s);
    free(s);
    snprintf(args, sizeof(args), "adapter segment extract '%s' --layers 1-0 -o '%s/x.asg'", g_f32, g_dir);
    ck_assert_int_eq(run(args), 2);
    snprintf(args, sizeof(args), "adapter segment extract '%s' --layers 1- -o '%s/x.asg'", g_f32, g_dir);
    ck_assert_int_eq(run(args), 2);
    snprintf(args, sizeof(args), "adapter segment extract '%s' -o '%s/x.asg'", g_f32, g_dir);
    ck_assert_int_eq(run(args), 2);
    ck_assert_int_eq(run("adapter segment"), 2);
    ck_assert_int_eq(run("adapter segment frobnicate"), 2);
}
END_TEST

START_TEST(test_eval_command)
{
    char args[2048], side[700], side2[700], other[700], *s;
    aik_eval_sidecar sc;
    aik_error err;

    snprintf(side, sizeof(side), "%s/side.json", g_dir);
    snprintf(args, sizeof(args), "eval '%s' --adapter '%s' '%s' -o '%s' -n 4 -t 1 --min-pass-rate 0.5", g_f32,
             g_adp, g_cases, side);
    ck_assert_int_eq(run(args), 0);
    s = slurp(side);
    ck_assert_int_eq(aik_eval_sidecar_parse(s, strlen(s), &sc, &err), 0);
    free(s);
    ck_assert(sc.has_adapter);
    ck_assert_str_eq(sc.source_kind, "adapter:sparse");
    ck_assert_uint_eq(sc.cases_passed, 1);
    ck_assert_uint_eq(sc.cases_failed, 1);
    ck_assert(sc.pass);
    /* check: right artifacts pass, others are named */
    snprintf(args, sizeof(args), "eval '%s' --adapter '%s' '%s' --check '%s' --min-pass-rate 0.5", g_f32, g_adp,
             g_cases, side);
    ck_assert_int_eq(run(args), 0);
    snprintf(args, sizeof(args), "eval '%s' '%s' --check '%s' --min-pass-rate 0.5", g_f32, g_cases, side);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_ptr_nonnull(strstr(s, "adapter_digest"));
    free(s);
    snprintf(args, sizeof(args), "eval '%s' --adapter '%s' '%s' --check '%s' --min-pass-rate 0.5", g_q8, g_adp,
             g_cases, side);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_ptr_nonnull(strstr(s, "model_digest"));
    free(s);
    snprintf(other, sizeof(other), "%s/other.jsonl", g_dir);
    {
        static const char oc[] = "{\"input\": \"x\", \"expected\": \"\", \"match\": \"contains\"}\n";
        ck_assert_int_eq(aik_write_file_atomic(other, oc, strlen(oc), 0644), 0);
    }
    snprintf(args, sizeof(args), "eval '%s' --adapter '%s' '%s' --check '%s' --min-pass-rate 0.5", g_f32, g_adp,
             other, side);
    ck_assert_int_eq(run(args), 1);
    s = slurp(g_err);
    ck_assert_ptr_nonnull(strstr(s, "eval_cases_digest"));
    free(s);

    /* Without an adapter, all-must-pass: decision fail, exit 3, null digest. */
    snprintf(side2, sizeof(side2), "%s/side2.json", g_dir);
    snprintf(args, sizeof(args), "eval '%s' '%s' -o '%s' -n 4 -t 1", g_f32, g_cases, side2);
    ck_assert_int_eq(run(args), 3);
    s = slurp(side2);
    ck_assert_ptr_nonnull(strstr(s, "\"adapter_digest\": null"));
    ck_assert_ptr_nonnull(strstr(s, "\"decision\": \"fail\""));
    free(s);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc < 2) {
        fprintf(stderr, "usage: test_adapter_cli AIKCTL\n");
        return 2;
    }
    g_aikctl = argv[1];
    s = suite_create("adapter-cli");
    tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, test_adapter_commands);
    tcase_add_test(tc, test_segment_commands);
    tcase_add_test(tc, test_eval_command);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
