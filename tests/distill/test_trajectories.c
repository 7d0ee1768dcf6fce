/* SPDX-License-Identifier: MIT */
/*
 * Teacher trajectories (distill/trajectories.h): strict JSON Lines, one
 * named error per kind of bad line, all-or-nothing appends, round trip,
 * truncation at every length, and the teacher run over a tiny model.
 */
#include <errno.h>

#include "distill/trajectories.h"
#include "runtime/model.h"
#include "testutil.h"
#include "../engine/tiny_model.h"

static const char good[] =
    "{\"capability\":\"lexicon.define\",\"input\":\"abandon\",\"output\":\"verb) means forsake.\",\"source\":\"curated:wordnet-3.0\"}\n"
    "{\"source\":\"teacher:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"output\":\" leave, desert.\",\"input\":\"abandon\",\"capability\":\"lexicon.synonyms\"}\n";

START_TEST(test_parse_good_and_roundtrip)
{
    aik_trajectories t = { 0 }, u = { 0 };
    aik_error err;
    char *out;
    size_t len;

    ck_assert_msg(aik_trajectories_parse(&t, good, strlen(good), &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_uint_eq(t.n, 2);
    ck_assert_str_eq(t.v[0].capability, "lexicon.define");
    ck_assert_str_eq(t.v[1].output, " leave, desert.");
    ck_assert_int_eq(aik_trajectories_to_jsonl(&t, &out, &len, &err), 0);
    ck_assert_int_eq(aik_trajectories_parse(&u, out, len, &err), 0);
    ck_assert_uint_eq(u.n, 2);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_str_eq(t.v[i].input, u.v[i].input);
        ck_assert_str_eq(t.v[i].output, u.v[i].output);
        ck_assert_str_eq(t.v[i].source, u.v[i].source);
    }
    /* no trailing newline on the last line is fine too */
    ck_assert_int_eq(aik_trajectories_parse(&u, out, len - 1, &err), 0);
    ck_assert_uint_eq(u.n, 4);
    free(out);
    aik_trajectories_clear(&t);
    aik_trajectories_clear(&u);
}
END_TEST

START_TEST(test_parse_bad)
{
    static const struct {
        const char *text;
        const char *where;
    } bad[] = {
        { "\n", "line 1" },
        { "[1]\n", "line 1" },
        { "{\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\"}\n", "line 1: source" },
        { "{\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\",\"source\":\"mine\"}\n", "line 1: source" },
        { "{\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\",\"source\":\"teacher:\"}\n", "line 1: source" },
        { "{\"capability\":\"a\",\"input\":\"\",\"output\":\"c\",\"source\":\"curated:x\"}\n", "line 1: input" },
        { "{\"capability\":\"a\",\"input\":7,\"output\":\"c\",\"source\":\"curated:x\"}\n", "line 1: input" },
        { "{\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\",\"source\":\"curated:x\",\"extra\":\"1\"}\n",
          "line 1: extra" },
        { "{\"capability\":\"a\",\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\",\"source\":\"curated:x\"}\n",
          "line 1" },
        { "{\"capability\":\"a\",\"input\":\"b\\u0000\",\"output\":\"c\",\"source\":\"curated:x\"}\n", "line 1" },
        { "{\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\",\"source\":\"curated:x\"} x\n", "line 1" },
        { "{\"capability\":\"a\",\"input\":\"b\",\"output\":\"c\",\"source\":\"curated:x\"}\n\n", "line 2" },
        { "{\"capability\":\"a\",\"input\":\"\xff\",\"output\":\"c\",\"source\":\"curated:x\"}\n", "line 1" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aik_trajectories t = { 0 };
        aik_error err = { 0 };
        int r = aik_trajectories_parse(&t, bad[i].text, strlen(bad[i].text), &err);
        ck_assert_msg(r < 0, "case %zu accepted", i);
        ck_assert_msg(strcmp(err.where, bad[i].where) == 0, "case %zu: where '%s', expected '%s' (%s)", i, err.where,
                      bad[i].where, err.message);
        ck_assert_uint_eq(t.n, 0); /* all or nothing */
        aik_trajectories_clear(&t);
    }
    /* a long input */
    {
        char *big = malloc(AIK_TRAJ_MAX_INPUT + 200);
        aik_trajectories t = { 0 };
        aik_error err;
        int n = sprintf(big, "{\"capability\":\"a\",\"output\":\"c\",\"source\":\"curated:x\",\"input\":\"");
        memset(big + n, 'x', AIK_TRAJ_MAX_INPUT + 1);
        strcpy(big + n + AIK_TRAJ_MAX_INPUT + 1, "\"}\n");
        ck_assert_int_eq(aik_trajectories_parse(&t, big, strlen(big), &err), -E2BIG);
        free(big);
    }
    /* appends to earlier trajectories; a bad second file keeps the first's */
    {
        aik_trajectories t = { 0 };
        aik_error err;
        ck_assert_int_eq(aik_trajectories_parse(&t, good, strlen(good), &err), 0);
        ck_assert_int_lt(aik_trajectories_parse(&t, "{\"capability\":1}\n", 17, &err), 0);
        ck_assert_uint_eq(t.n, 2);
        aik_trajectories_clear(&t);
    }
}
END_TEST

START_TEST(test_truncation_every_length)
{
    size_t len = strlen(good);
    for (size_t cut = 0; cut < len; cut++) {
        aik_trajectories t = { 0 };
        aik_error err;
        char *copy = malloc(cut + 1);
        memcpy(copy, good, cut);
        int r = aik_trajectories_parse(&t, copy, cut, &err);
        /* only cuts at a line end (or nothing at all) parse */
        bool line_end = cut == 0 || good[cut - 1] == '\n' || good[cut] == '\n';
        ck_assert_msg((r == 0) == line_end, "cut at %zu: r=%d (%s)", cut, r, err.message);
        aik_trajectories_clear(&t);
        free(copy);
    }
}
END_TEST

START_TEST(test_teacher_run)
{
    char *dir = aik_test_tmpdir(), *path;
    aik_slm_header hdr;
    aik_model *m;
    aik_trajectories t = { 0 };
    aik_teacher_stats st;
    aik_error err;
    const char *inputs[] = { "The cat", "A word", "" };

    ck_assert_int_ge(asprintf(&path, "%s/teacher.slm", dir), 0);
    tiny_header(&hdr);
    ck_assert_int_eq(tiny_model_write(path, &hdr, NULL, AIK_DTYPE_F32, 11), 0);
    ck_assert_msg(aik_model_open(path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, &err) == 0, "%s", err.message);
    ck_assert_msg(aik_trajectories_from_teacher(&t, m, NULL, "text.complete", inputs, 3, 1, &st, &err) == 0, "%s",
                  err.message);
    /* the empty input is refused; the others answer (or are unusable: a cut UTF-8 character) */
    ck_assert_uint_eq(st.refused, 1);
    ck_assert_uint_eq(st.generated + st.unusable + st.refused, 3);
    ck_assert_uint_eq(t.n, st.generated);
    for (size_t i = 0; i < t.n; i++) {
        ck_assert_str_eq(t.v[i].capability, "text.complete");
        ck_assert(strncmp(t.v[i].source, "teacher:", 8) == 0);
        ck_assert_uint_eq(strlen(t.v[i].source), 8 + 64);
    }
    /* greedy: a second run gives the same outputs */
    {
        aik_trajectories u = { 0 };
        ck_assert_int_eq(aik_trajectories_from_teacher(&u, m, NULL, "text.complete", inputs, 3, 1, NULL, &err), 0);
        ck_assert_uint_eq(u.n, t.n);
        for (size_t i = 0; i < t.n; i++)
            ck_assert_str_eq(u.v[i].output, t.v[i].output);
        aik_trajectories_clear(&u);
    }
    aik_trajectories_clear(&t);
    aik_model_free(m);
    free(path);
    aik_test_rmtree(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trajectories");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_parse_good_and_roundtrip);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_teacher_run);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
