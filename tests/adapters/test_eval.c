/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for eval cases, eval runs and eval sidecars (runtime/eval.c).
 * `test_eval --write-corpus DIR` writes the eval-cases fuzz seed corpus.
 */
#include <errno.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "runtime/eval.h"
#include "../engine/tiny_model.h"
#include "testutil.h"

static const char g_good[] =
    "{\"input\": \"hello\", \"expected\": \"world\", \"match\": \"exact\"}\n"
    "{\"input\": \"a\", \"expected\": \"b\", \"match\": \"contains\", \"intent\": \"define\"}\n"
    "{\"input\": \"a\", \"expected\": \"zz\", \"match\": \"not-contains\", \"prompt\": \"Q: \"}\n"
    "{\"input\": \"a\", \"expected\": \"^[0-9]+ apples?$\", \"match\": \"regex\"}\n";

static aik_eval_cases *parse_ok(const char *text)
{
    aik_eval_cases *c = NULL;
    aik_error err;
    int r = aik_eval_cases_parse(text, strlen(text), &c, &err);
    ck_assert_msg(r == 0, "%s: %s", err.where, err.message);
    return c;
}

static void parse_bad(const char *text, int code, const char *where)
{
    aik_eval_cases *c = NULL;
    aik_error err;
    int r = aik_eval_cases_parse(text, strlen(text), &c, &err);
    ck_assert_msg(r == code, "'%s': expected %d got %d (%s: %s)", text, code, r, err.where, err.message);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.where, where) != NULL, "'%s': where '%s' lacks '%s'", text, err.where, where);
}

START_TEST(test_cases_parse_good)
{
    aik_eval_cases *c = parse_ok(g_good);
    uint8_t d[32];

    ck_assert_uint_eq(c->n, 4);
    ck_assert_str_eq(c->cases[0].input, "hello");
    ck_assert_int_eq(c->cases[0].match, AIK_EVAL_MATCH_EXACT);
    ck_assert_ptr_null(c->cases[0].intent);
    ck_assert_str_eq(c->cases[1].intent, "define");
    ck_assert_int_eq(c->cases[2].match, AIK_EVAL_MATCH_NOT_CONTAINS);
    ck_assert_str_eq(c->cases[2].prompt, "Q: ");
    ck_assert_int_eq(c->cases[3].match, AIK_EVAL_MATCH_REGEX);
    ck_assert_uint_eq(c->cases[3].line, 4);
    aik_sha256_buf(g_good, strlen(g_good), d);
    ck_assert_mem_eq(c->digest, d, 32);
    aik_eval_cases_free(c);
    /* No trailing newline is fine too. */
    c = parse_ok("{\"input\": \"x\", \"expected\": \"\", \"match\": \"contains\"}");
    ck_assert_uint_eq(c->n, 1);
    aik_eval_cases_free(c);
}
END_TEST

START_TEST(test_cases_parse_bad)
{
    parse_bad("", -EINVAL, "");
    parse_bad("\n", -EINVAL, "line 1");
    parse_bad("{\"input\": \"x\", \"expected\": \"y\", \"match\": \"exact\"}\n\n", -EINVAL, "line 2");
    parse_bad("not json\n", -EINVAL, "line 1");
    parse_bad("[1, 2]\n", -EINVAL, "line 1");
    parse_bad("{\"input\": \"x\", \"expected\": \"y\", \"match\": \"exact\"} {}\n", -EINVAL, "line 1");
    parse_bad("{\"expected\": \"y\", \"match\": \"exact\"}\n", -EINVAL, "line 1: input");
    parse_bad("{\"input\": \"x\", \"match\": \"exact\"}\n", -EINVAL, "line 1: expected");
    parse_bad("{\"input\": \"x\", \"expected\": \"y\"}\n", -EINVAL, "line 1: match");
    parse_bad("{\"input\": \"x\", \"expected\": \"y\", \"match\": \"fuzzy\"}\n", -EINVAL, "line 1: match");
    parse_bad("{\"input\": 3, \"expected\": \"y\", \"match\": \"exact\"}\n", -EINVAL, "line 1: input");
    parse_bad("{\"input\": \"x\", \"expected\": \"y\", \"match\": \"exact\", \"intent\": null}\n", -EINVAL,
              "line 1: intent");
    parse_bad("{\"input\": \"x\", \"expected\": \"y\", \"match\": \"exact\", \"extra\": \"1\"}\n", -EINVAL,
              "line 1: extra");
    parse_bad("{\"input\": \"x\", \"input\": \"x\", \"expected\": \"y\", \"match\": \"exact\"}\n", -EINVAL,
              "line 1");
    parse_bad("{\"input\": \"x\\u0000\", \"expected\": \"y\", \"match\": \"exact\"}\n", -EINVAL, "line 1");
    parse_bad("{\"input\": \"x\", \"expected\": \"(unclosed\", \"match\": \"regex\"}\n", -EINVAL,
              "line 1: expected");
    {
        /* Failure on a later line names it and frees the earlier ones. */
        char buf[512];
        snprintf(buf, sizeof(buf), "%s{\"input\": \"x\"}\n", g_good);
        parse_bad(buf, -EINVAL, "line 5");
    }
}
END_TEST

/* Every prefix of a good file either parses (cut right after an object or
 * its newline) or fails naming a line; nothing in between is accepted. */
START_TEST(test_cases_truncation_every_length)
{
    size_t len = strlen(g_good);

    for (size_t n = 0; n < len; n++) {
        char *t = malloc(n ? n : 1);
        aik_eval_cases *c = NULL;
        aik_error err;
        int r;

        memcpy(t, g_good, n);
        r = aik_eval_cases_parse(t, n, &c, &err);
        if (r == 0) {
            ck_assert_msg(n > 0 && (t[n - 1] == '}' || t[n - 1] == '\n'), "prefix %zu accepted", n);
            aik_eval_cases_free(c);
        } else {
            ck_assert_int_eq(r, -EINVAL);
            ck_assert_msg(n == 0 || strncmp(err.where, "line ", 5) == 0, "prefix %zu: where '%s'", n, err.where);
        }
        free(t);
    }
}
END_TEST

START_TEST(test_match_semantics)
{
    aik_eval_cases *c = parse_ok(g_good);

    ck_assert(aik_eval_case_passes(&c->cases[0], "world", 5));
    ck_assert(!aik_eval_case_passes(&c->cases[0], "world!", 6));
    ck_assert(!aik_eval_case_passes(&c->cases[0], "worl", 4));
    ck_assert(aik_eval_case_passes(&c->cases[1], "abc", 3));
    ck_assert(!aik_eval_case_passes(&c->cases[1], "acd", 3));
    ck_assert(aik_eval_case_passes(&c->cases[2], "z z", 3));
    ck_assert(!aik_eval_case_passes(&c->cases[2], "azz", 3));
    ck_assert(aik_eval_case_passes(&c->cases[3], "12 apples", 9));
    ck_assert(aik_eval_case_passes(&c->cases[3], "1 apple", 7));
    ck_assert(!aik_eval_case_passes(&c->cases[3], "x1 apple", 8));
    /* Output bytes after len are not looked at. */
    ck_assert(!aik_eval_case_passes(&c->cases[3], "1 apple", 5));
    /* Invalid UTF-8 output is a failed match, not a crash. */
    ck_assert(!aik_eval_case_passes(&c->cases[3], "\xff\xfe", 2));
    aik_eval_cases_free(c);
}
END_TEST

static void sample_sidecar(aik_eval_sidecar *s, const uint8_t m[32], const uint8_t *a, const uint8_t c[32])
{
    memset(s, 0, sizeof(*s));
    aik_sha256_hex(m, s->model_digest);
    s->has_adapter = a != NULL;
    if (a)
        aik_sha256_hex(a, s->adapter_digest);
    snprintf(s->source_kind, sizeof(s->source_kind), "adapter:lowrank");
    snprintf(s->evaluator_id, sizeof(s->evaluator_id), "aikctl-eval/0.1 greedy n_predict=16");
    aik_sha256_hex(c, s->eval_cases_digest);
    snprintf(s->evaluation_scope, sizeof(s->evaluation_scope), "full");
    s->cases_passed = 3;
    s->cases_failed = 1;
    s->pass = aik_eval_decide(3, 1, 0.75);
    aik_eval_utc_now(s->generated_at_utc);
}

START_TEST(test_sidecar_roundtrip_and_check)
{
    uint8_t m[32], a[32], c[32], other[32];
    aik_eval_sidecar s, t;
    aik_error err;
    char *json;

    memset(m, 0x11, 32);
    memset(a, 0x22, 32);
    memset(c, 0x33, 32);
    memset(other, 0x44, 32);
    sample_sidecar(&s, m, a, c);
    ck_assert(s.pass);
    ck_assert_int_eq(aik_eval_sidecar_to_json(&s, &json, &err), 0);
    /* Exactly the seed's fields, in its order. */
    {
        const char *keys[] = { "model_digest", "adapter_digest", "source_kind", "evaluator_id",
                               "eval_cases_digest", "evaluation_scope", "cases_passed", "cases_failed",
                               "decision", "generated_at_utc" };
        const char *prev = json;
        for (int i = 0; i < 10; i++) {
            char k[40];
            snprintf(k, sizeof(k), "\"%s\"", keys[i]);
            ck_assert_ptr_nonnull(strstr(json, k));
            ck_assert(strstr(json, k) >= prev);
            prev = strstr(json, k);
        }
    }
    ck_assert_int_eq(aik_eval_sidecar_parse(json, strlen(json), &t, &err), 0);
    ck_assert_mem_eq(&s, &t, sizeof(s));
    free(json);

    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, a, c, 0.75, &err), 0);
    ck_assert_int_eq(aik_eval_sidecar_check(&t, other, a, c, 0.75, &err), -EBADMSG);
    ck_assert_str_eq(err.where, "model_digest");
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, other, c, 0.75, &err), -EBADMSG);
    ck_assert_str_eq(err.where, "adapter_digest");
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, NULL, c, 0.75, &err), -EBADMSG);
    ck_assert_str_eq(err.where, "adapter_digest");
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, a, other, 0.75, &err), -EBADMSG);
    ck_assert_str_eq(err.where, "eval_cases_digest");
    /* pass with a failure is inconsistent when all must pass */
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, a, c, 1.0, &err), -EBADMSG);
    ck_assert_str_eq(err.where, "decision");
    /* negative rate: the decision is not re-derived */
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, a, c, -1, &err), 0);

    /* No adapter: null in JSON, and an adapter in hand is then a mismatch. */
    sample_sidecar(&s, m, NULL, c);
    ck_assert_int_eq(aik_eval_sidecar_to_json(&s, &json, &err), 0);
    ck_assert_ptr_nonnull(strstr(json, "\"adapter_digest\": null"));
    ck_assert_int_eq(aik_eval_sidecar_parse(json, strlen(json), &t, &err), 0);
    ck_assert(!t.has_adapter);
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, NULL, c, 0.75, &err), 0);
    ck_assert_int_eq(aik_eval_sidecar_check(&t, m, a, c, 0.75, &err), -EBADMSG);
    ck_assert_str_eq(err.where, "adapter_digest");
    free(json);
}
END_TEST

START_TEST(test_sidecar_parse_strict)
{
    static const char *const H = "1111111111111111111111111111111111111111111111111111111111111111";
    char buf[2048];
    aik_eval_sidecar s;
    aik_error err;
    struct {
        const char *ad, *dec, *ts, *extra, *passed;
        const char *where;
    } cases[] = {
        { "null", "\"pass\"", "\"2026-01-02T03:04:05Z\"", "", "1", NULL },
        { "\"abc\"", "\"pass\"", "\"2026-01-02T03:04:05Z\"", "", "1", "adapter_digest" },
        { "null", "\"maybe\"", "\"2026-01-02T03:04:05Z\"", "", "1", "decision" },
        { "null", "\"pass\"", "\"yesterday\"", "", "1", "generated_at_utc" },
        { "null", "\"pass\"", "\"2026-01-02T03:04:05Z\"", ", \"x\": 1", "1", "x" },
        { "null", "\"pass\"", "\"2026-01-02T03:04:05Z\"", "", "-1", "cases_passed" },
        { "null", "\"pass\"", "\"2026-01-02T03:04:05Z\"", "", "\"1\"", "cases_passed" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf),
                 "{\"model_digest\": \"%s\", \"adapter_digest\": %s, \"source_kind\": \"package\","
                 " \"evaluator_id\": \"t\", \"eval_cases_digest\": \"%s\", \"evaluation_scope\": \"full\","
                 " \"cases_passed\": %s, \"cases_failed\": 0, \"decision\": %s, \"generated_at_utc\": %s%s}",
                 H, cases[i].ad, H, cases[i].passed, cases[i].dec, cases[i].ts, cases[i].extra);
        if (!cases[i].where) {
            ck_assert_int_eq(aik_eval_sidecar_parse(buf, strlen(buf), &s, &err), 0);
            continue;
        }
        ck_assert_int_eq(aik_eval_sidecar_parse(buf, strlen(buf), &s, &err), -EINVAL);
        ck_assert_str_eq(err.where, cases[i].where);
    }
    /* A missing key (adapter_digest removed) */
    snprintf(buf, sizeof(buf),
             "{\"model_digest\": \"%s\", \"source_kind\": \"package\", \"evaluator_id\": \"t\","
             " \"eval_cases_digest\": \"%s\", \"evaluation_scope\": \"full\", \"cases_passed\": 1,"
             " \"cases_failed\": 0, \"decision\": \"pass\", \"generated_at_utc\": \"2026-01-02T03:04:05Z\"}",
             H, H);
    ck_assert_int_eq(aik_eval_sidecar_parse(buf, strlen(buf), &s, &err), -EINVAL);
    ck_assert_str_eq(err.where, "adapter_digest");
    ck_assert_int_eq(aik_eval_sidecar_parse("[]", 2, &s, &err), -EINVAL);
    ck_assert_int_eq(aik_eval_sidecar_parse("{", 1, &s, &err), -EINVAL);
}
END_TEST

START_TEST(test_sidecar_truncation_every_length)
{
    uint8_t m[32], c[32];
    aik_eval_sidecar s, t;
    aik_error err;
    char *json;
    size_t len;

    memset(m, 1, 32);
    memset(c, 2, 32);
    sample_sidecar(&s, m, NULL, c);
    ck_assert_int_eq(aik_eval_sidecar_to_json(&s, &json, &err), 0);
    len = strlen(json);
    for (size_t n = 0; n < len; n++) {
        char *p = malloc(n ? n : 1);
        memcpy(p, json, n);
        ck_assert_msg(aik_eval_sidecar_parse(p, n, &t, &err) == -EINVAL, "prefix %zu accepted", n);
        free(p);
    }
    ck_assert_int_eq(aik_eval_sidecar_parse(json, len, &t, &err), 0);
    free(json);
}
END_TEST

START_TEST(test_decide)
{
    ck_assert(aik_eval_decide(3, 0, 1.0));
    ck_assert(!aik_eval_decide(3, 1, 1.0));
    ck_assert(aik_eval_decide(3, 1, 0.75));
    ck_assert(!aik_eval_decide(2, 1, 0.75));
    ck_assert(!aik_eval_decide(0, 0, 0.0));
}
END_TEST

START_TEST(test_run_on_tiny_model)
{
    char *dir = aik_test_tmpdir(), path[600], cases_text[4096], *esc;
    aik_slm_header hdr;
    aik_model *m = NULL;
    aik_eval_cases *c;
    aik_eval_config cfg = { .n_predict = 8, .n_threads = 1 };
    aik_eval_outcome o1, o2;
    aik_error err;

    snprintf(path, sizeof(path), "%s/m.slm", dir);
    tiny_header(&hdr);
    ck_assert_int_eq(tiny_model_write(path, &hdr, NULL, AIK_DTYPE_F32, 3), 0);
    ck_assert_int_eq(aik_model_open(path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, &err), 0);
    c = parse_ok("{\"input\": \"abc\", \"expected\": \"\", \"match\": \"contains\"}\n"
                 "{\"input\": \"xyz\", \"expected\": \"\", \"match\": \"not-contains\", \"prompt\": \"p\"}\n");
    ck_assert_int_eq(aik_eval_run(m, c, &cfg, &o1, &err), 0);
    ck_assert_uint_eq(o1.n, 2);
    ck_assert_uint_eq(o1.passed, 1); /* "" is contained in anything */
    ck_assert_uint_eq(o1.failed, 1); /* and never not-contained */
    ck_assert(o1.case_passed[0] && !o1.case_passed[1]);
    aik_eval_cases_free(c);

    /* Greedy is deterministic: an exact case built from the first run's
     * output passes; a different expectation fails; a regex anchored on the
     * output passes. Outputs of a random model may be any bytes: only use
     * them when they are printable ASCII without quotes or backslashes. */
    esc = strdup(o1.outputs[0]);
    for (char *p = esc; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            *p = '\0';
    snprintf(cases_text, sizeof(cases_text),
             "{\"input\": \"abc\", \"expected\": \"%s\", \"match\": \"%s\"}\n"
             "{\"input\": \"abc\", \"expected\": \"%s-not-this\", \"match\": \"exact\"}\n",
             esc, strlen(esc) == strlen(o1.outputs[0]) ? "exact" : "contains", esc);
    c = parse_ok(cases_text);
    ck_assert_int_eq(aik_eval_run(m, c, &cfg, &o2, &err), 0);
    ck_assert_str_eq(o2.outputs[0], o1.outputs[0]);
    ck_assert_uint_eq(o2.passed, 1);
    ck_assert_uint_eq(o2.failed, 1);
    free(esc);
    aik_eval_outcome_clear(&o1);
    aik_eval_outcome_clear(&o2);
    aik_eval_cases_free(c);
    aik_model_free(m);
    aik_test_rmtree(dir);
    free(dir);
}
END_TEST

static int write_corpus(const char *dir)
{
    char path[600];
    int rc = 0;

    snprintf(path, sizeof(path), "%s/good.jsonl", dir);
    rc |= aik_write_file_atomic(path, g_good, strlen(g_good), 0644);
    snprintf(path, sizeof(path), "%s/bad-key.jsonl", dir);
    rc |= aik_write_file_atomic(path, "{\"input\": \"x\", \"bogus\": 1}\n", 27, 0644);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    s = suite_create("eval");
    tc = tcase_create("eval");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cases_parse_good);
    tcase_add_test(tc, test_cases_parse_bad);
    tcase_add_test(tc, test_cases_truncation_every_length);
    tcase_add_test(tc, test_match_semantics);
    tcase_add_test(tc, test_sidecar_roundtrip_and_check);
    tcase_add_test(tc, test_sidecar_parse_strict);
    tcase_add_test(tc, test_sidecar_truncation_every_length);
    tcase_add_test(tc, test_decide);
    tcase_add_test(tc, test_run_on_tiny_model);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
