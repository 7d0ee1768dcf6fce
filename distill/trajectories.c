/* SPDX-License-Identifier: MIT */
/* Teacher trajectories: JSON Lines reader/writer and the teacher run (distill/trajectories.h). */
#include "distill/trajectories.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "runtime/capability_run.h"
#include "runtime/generate.h"

static const struct {
    const char *key;
    size_t max;
} fields[4] = {
    { "capability", 63 },
    { "input", AIK_TRAJ_MAX_INPUT },
    { "output", AIK_TRAJ_MAX_OUTPUT },
    { "source", 127 },
};

static int grow(aik_trajectories *set)
{
    if (set->n < set->cap)
        return 0;
    size_t nc = set->cap ? set->cap * 2 : 64;
    aik_trajectory *v = realloc(set->v, nc * sizeof(*v));
    if (!v)
        return -ENOMEM;
    set->v = v;
    set->cap = nc;
    return 0;
}

static void entry_free(aik_trajectory *t)
{
    free(t->capability);
    free(t->input);
    free(t->output);
    free(t->source);
}

void aik_trajectories_clear(aik_trajectories *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        entry_free(&set->v[i]);
    free(set->v);
    memset(set, 0, sizeof(*set));
}

static int check_value(const char *where, size_t field, const char *s, size_t len, aik_error *err)
{
    if (len == 0)
        return aik_fail(err, -EINVAL, where, "must not be empty");
    if (len > fields[field].max)
        return aik_fail(err, -E2BIG, where, "is %zu bytes, at most %zu", len, fields[field].max);
    if (memchr(s, '\0', len))
        return aik_fail(err, -EINVAL, where, "contains a NUL byte");
    /* JSON text is UTF-8: what cannot be written must not be accepted. */
    json_t *j = json_stringn(s, len);
    if (!j)
        return aik_fail(err, -EILSEQ, where, "is not valid UTF-8");
    json_decref(j);
    if (field == 3 && strncmp(s, "teacher:", 8) != 0 && strncmp(s, "curated:", 8) != 0)
        return aik_fail(err, -EINVAL, where, "must start with \"teacher:\" or \"curated:\"");
    if (field == 3 && len == 8)
        return aik_fail(err, -EINVAL, where, "names no teacher or dataset");
    return 0;
}

int aik_trajectories_add(aik_trajectories *set, const char *capability, const char *input, const char *output,
                         const char *source, aik_error *err)
{
    const char *vals[4] = { capability, input, output, source };
    aik_trajectory t = { 0 };
    char **dst[4] = { &t.capability, &t.input, &t.output, &t.source };
    int r;

    if (!set)
        return aik_fail(err, -EINVAL, "trajectories", "missing argument");
    for (size_t f = 0; f < 4; f++) {
        if (!vals[f])
            return aik_fail(err, -EINVAL, fields[f].key, "missing");
        r = check_value(fields[f].key, f, vals[f], strlen(vals[f]), err);
        if (r < 0)
            return r;
    }
    if (set->n >= AIK_TRAJ_MAX_LINES)
        return aik_fail(err, -E2BIG, "trajectories", "more than %u", AIK_TRAJ_MAX_LINES);
    for (size_t f = 0; f < 4; f++)
        if (!(*dst[f] = strdup(vals[f]))) {
            entry_free(&t);
            return aik_fail(err, -ENOMEM, "trajectories", "out of memory");
        }
    if (grow(set) < 0) {
        entry_free(&t);
        return aik_fail(err, -ENOMEM, "trajectories", "out of memory");
    }
    set->v[set->n++] = t;
    return 0;
}

static int parse_line(aik_trajectories *set, const char *line, size_t len, size_t lineno, aik_error *err)
{
    json_error_t jerr;
    json_t *o;
    const char *key;
    json_t *val;
    const char *vals[4] = { 0 };
    char where[96];
    int r = 0;

    o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        snprintf(where, sizeof(where), "line %zu", lineno);
        return aik_fail(err, -EINVAL, where, "invalid JSON: %s", jerr.text);
    }
    if (!json_is_object(o)) {
        snprintf(where, sizeof(where), "line %zu", lineno);
        r = aik_fail(err, -EINVAL, where, "must be a JSON object");
        goto out;
    }
    json_object_foreach(o, key, val) {
        size_t f = 0;
        while (f < 4 && strcmp(fields[f].key, key) != 0)
            f++;
        snprintf(where, sizeof(where), "line %zu: %.40s", lineno, key);
        if (f == 4) {
            r = aik_fail(err, -EINVAL, where, "unknown key");
            goto out;
        }
        if (!json_is_string(val)) {
            r = aik_fail(err, -EINVAL, where, "must be a string");
            goto out;
        }
        r = check_value(where, f, json_string_value(val), json_string_length(val), err);
        if (r < 0)
            goto out;
        vals[f] = json_string_value(val);
    }
    for (size_t f = 0; f < 4; f++)
        if (!vals[f]) {
            snprintf(where, sizeof(where), "line %zu: %s", lineno, fields[f].key);
            r = aik_fail(err, -EINVAL, where, "missing required key");
            goto out;
        }
    r = aik_trajectories_add(set, vals[0], vals[1], vals[2], vals[3], err);
out:
    json_decref(o);
    return r;
}

int aik_trajectories_parse(aik_trajectories *set, const char *data, size_t len, aik_error *err)
{
    size_t pos = 0, lineno = 0, n0;
    int r = 0;

    if (!set || (!data && len))
        return aik_fail(err, -EINVAL, "trajectories", "missing argument");
    if (len > AIK_TRAJ_MAX_FILE_SIZE)
        return aik_fail(err, -EFBIG, "trajectories", "%zu bytes, at most %u", len, AIK_TRAJ_MAX_FILE_SIZE);
    n0 = set->n;
    while (pos < len && r == 0) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        char where[32];
        lineno++;
        snprintf(where, sizeof(where), "line %zu", lineno);
        if (end == pos)
            r = aik_fail(err, -EINVAL, where, "blank line");
        else if (lineno > AIK_TRAJ_MAX_LINES)
            r = aik_fail(err, -E2BIG, where, "more than %u lines", AIK_TRAJ_MAX_LINES);
        else
            r = parse_line(set, data + pos, end - pos, lineno, err);
        pos = nl ? end + 1 : len;
    }
    if (r < 0) {
        /* All or nothing: a damaged file adds no trajectory. */
        for (size_t i = n0; i < set->n; i++)
            entry_free(&set->v[i]);
        set->n = n0;
    }
    return r;
}

int aik_trajectories_load(aik_trajectories *set, const char *path, uint8_t ret_sha256[32], aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int r = aik_read_file(path, AIK_TRAJ_MAX_FILE_SIZE, &data, &len);

    if (r < 0)
        return aik_fail(err, r, path, "cannot read (or larger than %u bytes)", AIK_TRAJ_MAX_FILE_SIZE);
    r = aik_trajectories_parse(set, data, len, err);
    if (r < 0)
        aik_error_prefix(err, path);
    else if (ret_sha256)
        aik_sha256_buf(data, len, ret_sha256);
    free(data);
    return r;
}

int aik_trajectories_to_jsonl(const aik_trajectories *set, char **ret_data, size_t *ret_len, aik_error *err)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);

    if (!buf)
        return aik_fail(err, -ENOMEM, "trajectories", "out of memory");
    for (size_t i = 0; i < set->n; i++) {
        const aik_trajectory *t = &set->v[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "capability", t->capability, "input", t->input, "output",
                              t->output, "source", t->source);
        char *line = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
        json_decref(o);
        if (!line) {
            free(buf);
            return aik_fail(err, -ENOMEM, "trajectories", "out of memory");
        }
        size_t ll = strlen(line);
        if (len + ll + 2 > cap) {
            while (len + ll + 2 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(line);
                free(buf);
                return aik_fail(err, -ENOMEM, "trajectories", "out of memory");
            }
            buf = nb;
        }
        memcpy(buf + len, line, ll);
        len += ll;
        buf[len++] = '\n';
        free(line);
    }
    buf[len] = '\0';
    *ret_data = buf;
    *ret_len = len;
    return 0;
}

/* Length of the longest prefix of s that is well-formed UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;
            if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            if (c == 0xf4)
                hi = 0x8f;
        } else
            break;
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            break;
        size_t k = 2;
        while (k < len && s[i + k] >= 0x80 && s[i + k] <= 0xbf)
            k++;
        if (k < len)
            break;
        i += len;
    }
    return i;
}

int aik_trajectories_from_teacher(aik_trajectories *set, const aik_model *teacher, const aik_capability_ops *cap,
                                  const char *capability, const char *const *inputs, size_t n_inputs,
                                  uint32_t n_threads, aik_teacher_stats *ret_stats, aik_error *err)
{
    aik_session_config sc = { .n_threads = n_threads };
    aik_session *s = NULL;
    aik_teacher_stats st = { 0 };
    char source[8 + 65], hex[65];
    int r;

    if (!set || !teacher || !capability || (n_inputs && !inputs))
        return aik_fail(err, -EINVAL, "teacher", "missing argument");
    aik_sha256_hex(teacher->pkg->hdr.model_checksum, hex);
    snprintf(source, sizeof(source), "teacher:%s", hex);
    r = aik_session_new(teacher, &sc, &s, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n_inputs; i++) {
        aik_generate_result res = { 0 };
        if (!inputs[i][0]) {
            st.refused++;
            continue;
        }
        char *completion = NULL;
        /* Greedy, as served by default: the student learns the teacher's
         * most likely answer. */
        aik_capability_run_options ro = { 0 };
        r = aik_capability_run(s, cap, inputs[i], strlen(inputs[i]), &ro, &res, &completion, err);
        if (r == -EINVAL || r == -E2BIG) {
            st.refused++;
            r = 0;
            continue;
        }
        if (r < 0)
            break;
        aik_generate_result_clear(&res);
        /* A teacher that emits a broken byte sequence taught up to it. */
        completion[utf8_valid_prefix((const unsigned char *)completion, strlen(completion))] = '\0';
        if (!completion[0]) {
            st.unusable++;
            free(completion);
            continue;
        }
        r = aik_trajectories_add(set, capability, inputs[i], completion, source, err);
        free(completion);
        if (r == -EILSEQ || r == -E2BIG) {
            st.unusable++; /* a completion that cut a character in half, or too long */
            r = 0;
            continue;
        }
        if (r < 0)
            break;
        st.generated++;
    }
    aik_session_free(s);
    if (r < 0)
        return r;
    if (ret_stats)
        *ret_stats = st;
    return 0;
}
