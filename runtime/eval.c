/* SPDX-License-Identifier: MIT */
/* Eval cases (JSONL, jansson), greedy eval runs and eval sidecars. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "runtime/eval.h"

#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "runtime/capability_run.h"
#include "runtime/generate.h"

static const char *const match_names[] = { "exact", "contains", "not-contains", "regex" };

const char *aik_eval_match_name(aik_eval_match m)
{
    return (unsigned)m < 4 ? match_names[m] : "?";
}

static void case_clear(aik_eval_case *c)
{
    free(c->input);
    free(c->expected);
    free(c->intent);
    free(c->prompt);
    pcre2_code_free((pcre2_code *)c->regex);
}

void aik_eval_cases_free(aik_eval_cases *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        case_clear(&c->cases[i]);
    free(c->cases);
    free(c);
}

static int lfail(aik_error *err, int code, uint32_t line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int lfail(aik_error *err, int code, uint32_t line, const char *key, const char *fmt, ...)
{
    char where[128], msg[256];
    va_list ap;

    if (key)
        snprintf(where, sizeof(where), "line %u: %s", line, key);
    else
        snprintf(where, sizeof(where), "line %u", line);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return aik_fail(err, code, where, "%s", msg);
}

static int parse_line(const char *s, size_t len, uint32_t line, aik_eval_case *c, aik_error *err)
{
    static const char *const known[] = { "input", "expected", "match", "intent", "prompt" };
    json_error_t je;
    json_t *o, *v;
    const char *key;
    int r = 0;

    /* Strict: duplicate keys rejected, one value per line, no NUL in strings
     * (jansson refuses \u0000 unless asked). */
    o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return lfail(err, -EINVAL, line, NULL, "invalid JSON: %s", je.text);
    if (!json_is_object(o)) {
        r = lfail(err, -EINVAL, line, NULL, "%s", "is not a JSON object");
        goto out;
    }
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            r = lfail(err, -EINVAL, line, key, "unknown key '%s'", key);
            goto out;
        }
        if (!json_is_string(v)) {
            r = lfail(err, -EINVAL, line, key, "%s", "must be a string");
            goto out;
        }
    }
    for (size_t i = 0; i < 3; i++)
        if (!json_object_get(o, known[i])) {
            r = lfail(err, -EINVAL, line, known[i], "%s", "is required");
            goto out;
        }
    {
        const char *m = json_string_value(json_object_get(o, "match"));
        bool found = false;
        for (unsigned i = 0; i < 4; i++)
            if (strcmp(m, match_names[i]) == 0) {
                c->match = (aik_eval_match)i;
                found = true;
            }
        if (!found) {
            r = lfail(err, -EINVAL, line, "match", "is '%s', must be exact, contains, not-contains or regex", m);
            goto out;
        }
    }
    c->line = line;
    c->input = strdup(json_string_value(json_object_get(o, "input")));
    c->expected = strdup(json_string_value(json_object_get(o, "expected")));
    if ((v = json_object_get(o, "intent")))
        c->intent = strdup(json_string_value(v));
    if ((v = json_object_get(o, "prompt")))
        c->prompt = strdup(json_string_value(v));
    if (!c->input || !c->expected || (json_object_get(o, "intent") && !c->intent) ||
        (json_object_get(o, "prompt") && !c->prompt)) {
        r = lfail(err, -ENOMEM, line, NULL, "%s", "out of memory");
        goto out;
    }
    if (c->match == AIK_EVAL_MATCH_REGEX) {
        int ec;
        PCRE2_SIZE eo;
        c->regex = pcre2_compile((PCRE2_SPTR)c->expected, strlen(c->expected), PCRE2_UTF, &ec, &eo, NULL);
        if (!c->regex) {
            char msg[160];
            pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
            r = lfail(err, -EINVAL, line, "expected", "invalid regex: %s", msg);
            goto out;
        }
    }
out:
    json_decref(o);
    return r;
}

int aik_eval_cases_parse(const char *data, size_t len, aik_eval_cases **ret_cases, aik_error *err)
{
    aik_eval_cases *cs;
    size_t pos = 0, cap = 0;
    uint32_t line = 0;
    int r;

    if ((!data && len) || !ret_cases)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if (len > AIK_EVAL_MAX_FILE_SIZE)
        return aik_fail(err, -E2BIG, NULL, "cases file exceeds %u bytes", AIK_EVAL_MAX_FILE_SIZE);
    cs = calloc(1, sizeof(*cs));
    if (!cs)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    r = aik_sha256_buf(data, len, cs->digest);
    if (r < 0) {
        aik_fail(err, r, NULL, "cannot hash");
        goto fail;
    }
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (data + pos)) : len - pos;

        line++;
        if (ll == 0 || (ll == 1 && data[pos] == '\r')) {
            r = lfail(err, -EINVAL, line, NULL, "%s", "blank line");
            goto fail;
        }
        if (memchr(data + pos, '\0', ll)) {
            r = lfail(err, -EINVAL, line, NULL, "%s", "contains a NUL byte");
            goto fail;
        }
        if (cs->n == AIK_EVAL_MAX_CASES) {
            r = lfail(err, -E2BIG, line, NULL, "%s", "more cases than the limit");
            goto fail;
        }
        if (cs->n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            aik_eval_case *g = realloc(cs->cases, nc * sizeof(*g));
            if (!g) {
                r = aik_fail(err, -ENOMEM, NULL, "out of memory");
                goto fail;
            }
            cs->cases = g;
            cap = nc;
        }
        memset(&cs->cases[cs->n], 0, sizeof(cs->cases[0]));
        cs->n++; /* counted before parsing so that free releases a half-filled case */
        r = parse_line(data + pos, ll, line, &cs->cases[cs->n - 1], err);
        if (r < 0)
            goto fail;
        pos += ll + (nl ? 1 : 0);
    }
    if (cs->n == 0) {
        r = aik_fail(err, -EINVAL, NULL, "no cases");
        goto fail;
    }
    *ret_cases = cs;
    return 0;
fail:
    aik_eval_cases_free(cs);
    return r;
}

int aik_eval_cases_load(const char *path, aik_eval_cases **ret_cases, aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int r = aik_read_file(path, AIK_EVAL_MAX_FILE_SIZE, &data, &len);

    if (r < 0)
        return aik_fail(err, r, path, "cannot read: %s", strerror(-r));
    r = aik_eval_cases_parse(data, len, ret_cases, err);
    if (r < 0)
        aik_error_prefix(err, path);
    free(data);
    return r;
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0)
        return true;
    return m <= n && memmem(hay, n, needle, m) != NULL;
}

bool aik_eval_case_passes(const aik_eval_case *c, const char *output, size_t len)
{
    switch (c->match) {
    case AIK_EVAL_MATCH_EXACT:
        return strlen(c->expected) == len && memcmp(c->expected, output, len) == 0;
    case AIK_EVAL_MATCH_CONTAINS:
        return contains(output, len, c->expected);
    case AIK_EVAL_MATCH_NOT_CONTAINS:
        return !contains(output, len, c->expected);
    case AIK_EVAL_MATCH_REGEX: {
        pcre2_match_data *md;
        int rc;
        if (!c->regex)
            return false;
        md = pcre2_match_data_create_from_pattern((const pcre2_code *)c->regex, NULL);
        if (!md)
            return false;
        /* Model output is not guaranteed valid UTF-8: check it instead of
         * trusting it (PCRE2 rejects invalid UTF-8 with an error, a fail). */
        rc = pcre2_match((const pcre2_code *)c->regex, (PCRE2_SPTR)output, len, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        return rc >= 0;
    }
    }
    return false;
}

void aik_eval_outcome_clear(aik_eval_outcome *o)
{
    if (!o)
        return;
    for (size_t i = 0; o->outputs && i < o->n; i++)
        free(o->outputs[i]);
    free(o->outputs);
    free(o->case_passed);
    memset(o, 0, sizeof(*o));
}

int aik_eval_run(const aik_model *m, const aik_eval_cases *cases, const aik_eval_config *cfg,
                 aik_eval_outcome *ret_outcome, aik_error *err)
{
    aik_session_config sc = { 0 };
    aik_session *s = NULL;
    aik_eval_outcome o = { 0 };
    aik_generate_params gp;
    char *text = NULL;
    int r;

    if (!m || !cases || !ret_outcome)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    sc.n_threads = cfg ? cfg->n_threads : 0;
    r = aik_session_new(m, &sc, &s, err);
    if (r < 0)
        return r;
    o.n = cases->n;
    o.case_passed = calloc(cases->n ? cases->n : 1, sizeof(bool));
    o.outputs = calloc(cases->n ? cases->n : 1, sizeof(char *));
    if (!o.case_passed || !o.outputs) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto fail;
    }
    aik_generate_params_default(&gp);
    gp.n_predict = cfg && cfg->n_predict ? cfg->n_predict : 64;
    gp.sampling.temperature = 0.0f; /* greedy: an eval result must be reproducible */
    if (cfg && cfg->n_lora) {
        r = aik_cpu_exec_set_lora(aik_session_exec(s), cfg->lora, cfg->n_lora, err);
        if (r < 0)
            goto fail;
    }
    for (size_t i = 0; i < cases->n; i++) {
        const aik_eval_case *c = &cases->cases[i];
        aik_generate_result res = { 0 };
        size_t pl = c->prompt ? strlen(c->prompt) : 0, il = strlen(c->input);

        if (cfg && cfg->cap) {
            aik_capability_run_options ro = { .max_tokens = cfg->n_predict };
            if (c->prompt) {
                char where[32];
                snprintf(where, sizeof(where), "line %u: prompt", c->line);
                r = aik_fail(err, -EINVAL, where, "a capability makes its own prompt; remove the key");
                goto fail;
            }
            r = aik_capability_run(s, cfg->cap, c->input, il, &ro, &res, NULL, err);
            if (r == -EINVAL)
                r = -E2BIG; /* refused input: the case fails, the run goes on */
        } else {
            text = malloc(pl + il + 1);
            if (!text) {
                r = aik_fail(err, -ENOMEM, NULL, "out of memory");
                goto fail;
            }
            if (pl)
                memcpy(text, c->prompt, pl);
            memcpy(text + pl, c->input, il + 1);
            r = aik_generate(s, text, pl + il, &gp, &res, err);
            free(text);
            text = NULL;
        }
        if (r == -E2BIG) {
            o.outputs[i] = strdup("");
            o.failed++;
            if (!o.outputs[i]) {
                r = aik_fail(err, -ENOMEM, NULL, "out of memory");
                goto fail;
            }
            continue;
        }
        if (r < 0) {
            char pre[32];
            snprintf(pre, sizeof(pre), "case line %u", c->line);
            aik_error_prefix(err, pre);
            goto fail;
        }
        o.case_passed[i] = aik_eval_case_passes(c, res.text ? res.text : "", res.text_len);
        o.outputs[i] = res.text ? res.text : strdup("");
        res.text = NULL;
        aik_generate_result_clear(&res);
        if (!o.outputs[i]) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto fail;
        }
        if (o.case_passed[i])
            o.passed++;
        else
            o.failed++;
    }
    aik_session_free(s);
    *ret_outcome = o;
    return 0;
fail:
    free(text);
    aik_eval_outcome_clear(&o);
    aik_session_free(s);
    return r;
}

/* ---------------------------------------------------------------- sidecar --- */

bool aik_eval_decide(uint64_t passed, uint64_t failed, double min_pass_rate)
{
    uint64_t total = passed + failed;
    if (total == 0 || total < passed)
        return false;
    if (min_pass_rate >= 1.0)
        return failed == 0;
    return (double)passed / (double)total >= min_pass_rate;
}

void aik_eval_utc_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int aik_eval_sidecar_to_json(const aik_eval_sidecar *s, char **ret_json, aik_error *err)
{
    json_t *o;
    char *text;

    if (!s || !ret_json)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    o = json_object();
    if (!o)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    /* json_object_set_new steals its value, including on failure. */
    if (json_object_set_new(o, "model_digest", json_string(s->model_digest)) ||
        json_object_set_new(o, "adapter_digest", s->has_adapter ? json_string(s->adapter_digest) : json_null()) ||
        json_object_set_new(o, "source_kind", json_string(s->source_kind)) ||
        json_object_set_new(o, "evaluator_id", json_string(s->evaluator_id)) ||
        json_object_set_new(o, "eval_cases_digest", json_string(s->eval_cases_digest)) ||
        json_object_set_new(o, "evaluation_scope", json_string(s->evaluation_scope)) ||
        json_object_set_new(o, "cases_passed", json_integer((json_int_t)s->cases_passed)) ||
        json_object_set_new(o, "cases_failed", json_integer((json_int_t)s->cases_failed)) ||
        json_object_set_new(o, "decision", json_string(s->pass ? "pass" : "fail")) ||
        json_object_set_new(o, "generated_at_utc", json_string(s->generated_at_utc))) {
        json_decref(o);
        return aik_fail(err, -EINVAL, NULL, "a sidecar field is not valid UTF-8 or out of memory");
    }
    text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    *ret_json = text;
    return 0;
}

int aik_eval_sidecar_write(const aik_eval_sidecar *s, const char *path, aik_error *err)
{
    char *text = NULL, *withnl;
    size_t n;
    int r = aik_eval_sidecar_to_json(s, &text, err);

    if (r < 0)
        return r;
    n = strlen(text);
    withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    }
    withnl[n] = '\n';
    r = aik_write_file_atomic(path, withnl, n + 1, 0644);
    free(withnl);
    if (r < 0)
        return aik_fail(err, r, path, "cannot write: %s", strerror(-r));
    return 0;
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_utc_stamp(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SSZ */
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof(pat) - 1)
        return false;
    for (size_t i = 0; i < sizeof(pat) - 1; i++)
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return false;
    return true;
}

static int get_str(json_t *o, const char *key, char *dst, size_t cap, bool hex, aik_error *err)
{
    json_t *v = json_object_get(o, key);
    const char *s;

    if (!json_is_string(v))
        return aik_fail(err, -EINVAL, key, "must be a string");
    s = json_string_value(v);
    if (json_string_length(v) != strlen(s) || strlen(s) >= cap || (!hex && s[0] == '\0'))
        return aik_fail(err, -EINVAL, key, "empty, too long or contains NUL");
    if (hex && !is_hex64(s))
        return aik_fail(err, -EINVAL, key, "must be 64 lower-case hex digits");
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

static int get_count(json_t *o, const char *key, uint64_t *dst, aik_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return aik_fail(err, -EINVAL, key, "must be a non-negative integer");
    *dst = (uint64_t)json_integer_value(v);
    return 0;
}

int aik_eval_sidecar_parse(const char *json, size_t len, aik_eval_sidecar *ret_sidecar, aik_error *err)
{
    static const char *const keys[] = { "model_digest", "adapter_digest", "source_kind", "evaluator_id",
                                        "eval_cases_digest", "evaluation_scope", "cases_passed",
                                        "cases_failed", "decision", "generated_at_utc" };
    aik_eval_sidecar s;
    json_error_t je;
    json_t *o, *v;
    const char *key;
    int r;

    if (!json || !ret_sidecar)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if (len > AIK_EVAL_MAX_SIDECAR_SIZE)
        return aik_fail(err, -E2BIG, NULL, "sidecar exceeds %u bytes", AIK_EVAL_MAX_SIDECAR_SIZE);
    memset(&s, 0, sizeof(s));
    o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        char where[32];
        snprintf(where, sizeof(where), "%d:%d", je.line, je.column);
        return aik_fail(err, -EINVAL, where, "invalid JSON: %s", je.text);
    }
    if (!json_is_object(o)) {
        r = aik_fail(err, -EINVAL, NULL, "sidecar is not a JSON object");
        goto out;
    }
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (size_t i = 0; i < 10; i++)
            ok |= strcmp(key, keys[i]) == 0;
        if (!ok) {
            r = aik_fail(err, -EINVAL, key, "unknown key");
            goto out;
        }
    }
    if ((r = get_str(o, "model_digest", s.model_digest, sizeof(s.model_digest), true, err)) < 0)
        goto out;
    v = json_object_get(o, "adapter_digest");
    if (!v) {
        r = aik_fail(err, -EINVAL, "adapter_digest", "is required (null when there is no adapter)");
        goto out;
    }
    if (!json_is_null(v)) {
        if ((r = get_str(o, "adapter_digest", s.adapter_digest, sizeof(s.adapter_digest), true, err)) < 0)
            goto out;
        s.has_adapter = true;
    }
    if ((r = get_str(o, "source_kind", s.source_kind, sizeof(s.source_kind), false, err)) < 0 ||
        (r = get_str(o, "evaluator_id", s.evaluator_id, sizeof(s.evaluator_id), false, err)) < 0 ||
        (r = get_str(o, "eval_cases_digest", s.eval_cases_digest, sizeof(s.eval_cases_digest), true, err)) < 0 ||
        (r = get_str(o, "evaluation_scope", s.evaluation_scope, sizeof(s.evaluation_scope), false, err)) < 0 ||
        (r = get_count(o, "cases_passed", &s.cases_passed, err)) < 0 ||
        (r = get_count(o, "cases_failed", &s.cases_failed, err)) < 0)
        goto out;
    v = json_object_get(o, "decision");
    if (!json_is_string(v) || (strcmp(json_string_value(v), "pass") && strcmp(json_string_value(v), "fail"))) {
        r = aik_fail(err, -EINVAL, "decision", "must be \"pass\" or \"fail\"");
        goto out;
    }
    s.pass = strcmp(json_string_value(v), "pass") == 0;
    if ((r = get_str(o, "generated_at_utc", s.generated_at_utc, sizeof(s.generated_at_utc), false, err)) < 0)
        goto out;
    if (!is_utc_stamp(s.generated_at_utc)) {
        r = aik_fail(err, -EINVAL, "generated_at_utc", "must be YYYY-MM-DDTHH:MM:SSZ");
        goto out;
    }
    memcpy(ret_sidecar, &s, sizeof(s)); /* padding included: callers may compare records bytewise */
    r = 0;
out:
    json_decref(o);
    return r;
}

int aik_eval_sidecar_check(const aik_eval_sidecar *s, const uint8_t model_digest[32],
                           const uint8_t *adapter_digest, const uint8_t cases_digest[32], double min_pass_rate,
                           aik_error *err)
{
    char hex[AIK_SHA256_HEX_LEN];

    if (!s || !model_digest || !cases_digest)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    aik_sha256_hex(model_digest, hex);
    if (strcmp(hex, s->model_digest) != 0)
        return aik_fail(err, -EBADMSG, "model_digest", "names %.16s…, the package in hand is %.16s…",
                        s->model_digest, hex);
    if (adapter_digest && !s->has_adapter)
        return aik_fail(err, -EBADMSG, "adapter_digest", "is null, but an adapter is in hand");
    if (!adapter_digest && s->has_adapter)
        return aik_fail(err, -EBADMSG, "adapter_digest", "names an adapter, but none is in hand");
    if (adapter_digest) {
        aik_sha256_hex(adapter_digest, hex);
        if (strcmp(hex, s->adapter_digest) != 0)
            return aik_fail(err, -EBADMSG, "adapter_digest", "names %.16s…, the adapter in hand is %.16s…",
                            s->adapter_digest, hex);
    }
    aik_sha256_hex(cases_digest, hex);
    if (strcmp(hex, s->eval_cases_digest) != 0)
        return aik_fail(err, -EBADMSG, "eval_cases_digest", "names %.16s…, the cases file in hand is %.16s…",
                        s->eval_cases_digest, hex);
    if (min_pass_rate >= 0 && s->pass != aik_eval_decide(s->cases_passed, s->cases_failed, min_pass_rate))
        return aik_fail(err, -EBADMSG, "decision", "'%s' does not follow from %llu passed / %llu failed",
                        s->pass ? "pass" : "fail", (unsigned long long)s->cases_passed,
                        (unsigned long long)s->cases_failed);
    return 0;
}
