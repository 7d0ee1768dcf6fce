/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for capgraph/: semantic versions and ranges, the strict
 * profile parser (one malformed fixture per schema rule in bad/, each with
 * its exact file:line:column, key path and message), the capability graph
 * and intent resolution (diamonds, conflicts, budgets, backends, latency,
 * cycles, free text through WordNet and the embedding hook).
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "capgraph/capgraph.h"
#include "capgraph/semver.h"
#include "capgraph/textmatch.h"
#include "capgraph/wordnet.h"
#include "aik/tensor.h"
#include "common/atomic_file.h"
#include "testutil.h"

/* ---------------- semver ---------------- */

static aik_semver V(const char *s)
{
    aik_semver v;
    ck_assert_msg(aik_semver_parse(s, &v, NULL) == 0, "parse %s", s);
    return v;
}

static bool in_range(const char *range, const char *ver)
{
    aik_semver_range r;
    aik_semver v = V(ver);
    ck_assert_msg(aik_semver_range_parse(range, &r, NULL) == 0, "range %s", range);
    return aik_semver_range_match(&r, &v);
}

START_TEST(test_semver_parse)
{
    aik_semver v;
    aik_error e;
    char buf[96];
    static const char *const bad[] = { "", "1", "1.0", "01.0.0", "1.02.0", "1.0.0-", "1.0.0+", "1.0.0.0", "a.b.c",
                                       "1.0.0-al..pha", "4294967296.0.0", " 1.0.0", "1.0.0 " };

    ck_assert_int_eq(aik_semver_parse("1.2.3-rc.1+build.5", &v, NULL), 0);
    ck_assert_uint_eq(v.major, 1);
    ck_assert_uint_eq(v.minor, 2);
    ck_assert_uint_eq(v.patch, 3);
    ck_assert_str_eq(v.pre, "rc.1");
    ck_assert_str_eq(aik_semver_format(&v, buf, sizeof(buf)), "1.2.3-rc.1");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aik_error_clear(&e);
        ck_assert_msg(aik_semver_parse(bad[i], &v, &e) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_msg(e.message[0] != '\0', "no message for '%s'", bad[i]);
    }
    aik_error_clear(&e);
    aik_semver_parse("1.0", &v, &e);
    ck_assert_str_eq(e.message, "'1.0': a version needs MAJOR.MINOR.PATCH");
    aik_semver_parse("01.0.0", &v, &e);
    ck_assert_str_eq(e.message, "major version: leading zero");
}
END_TEST

START_TEST(test_semver_order)
{
    static const char *const order[] = { "0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                                         "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0",
                                         "2.0.0" };
    for (size_t i = 0; i + 1 < sizeof(order) / sizeof(order[0]); i++) {
        aik_semver a = V(order[i]), b = V(order[i + 1]);
        ck_assert_msg(aik_semver_cmp(&a, &b) < 0, "%s < %s", order[i], order[i + 1]);
        ck_assert_msg(aik_semver_cmp(&b, &a) > 0, "%s > %s", order[i + 1], order[i]);
        ck_assert_int_eq(aik_semver_cmp(&a, &a), 0);
    }
    aik_semver a = V("1.0.0+x"), b = V("1.0.0+y");
    ck_assert_int_eq(aik_semver_cmp(&a, &b), 0); /* build metadata is ignored */
}
END_TEST

START_TEST(test_semver_ranges)
{
    aik_semver_range r;
    aik_error e;
    static const char *const bad[] = { "", "^", "~x", ">=1.0 <2.0 junk", "^1.x", "=>1.0", "1.2.3.4", ">= ",
                                       "1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0" };

    ck_assert(in_range("^1.2", "1.2.0"));
    ck_assert(in_range("^1.2", "1.9.9"));
    ck_assert(!in_range("^1.2", "2.0.0"));
    ck_assert(!in_range("^1.2", "1.1.9"));
    ck_assert(in_range("^0.2.3", "0.2.9"));
    ck_assert(!in_range("^0.2.3", "0.3.0"));
    ck_assert(!in_range("^0.0.3", "0.0.4"));
    ck_assert(in_range("~1.2.3", "1.2.9"));
    ck_assert(!in_range("~1.2.3", "1.3.0"));
    ck_assert(!in_range("~1.2.3", "1.2.2"));
    ck_assert(in_range("~1", "1.9.0"));
    ck_assert(in_range(">=1.0 <2.0", "1.5.0"));
    ck_assert(!in_range(">=1.0 <2.0", "2.0.0"));
    ck_assert(!in_range(">=1.0 <2.0", "0.9.0"));
    ck_assert(in_range(">1.0.0 <=1.2.0", "1.2.0"));
    ck_assert(!in_range(">1.0.0 <=1.2.0", "1.0.0"));
    ck_assert(in_range("1.2.3", "1.2.3"));
    ck_assert(!in_range("1.2.3", "1.2.4"));
    ck_assert(in_range("=1.2.3", "1.2.3"));
    ck_assert(in_range("1.2", "1.2.7"));
    ck_assert(!in_range("1.2", "1.3.0"));
    ck_assert(in_range("*", "7.0.0"));
    /* pre-releases only when the range names that version's pre-release */
    ck_assert(!in_range("^1.0", "1.5.0-beta"));
    ck_assert(!in_range("^1.0", "2.0.0-rc.1"));
    ck_assert(in_range(">=1.5.0-beta <2.0", "1.5.0-beta.2"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aik_error_clear(&e);
        ck_assert_msg(aik_semver_range_parse(bad[i], &r, &e) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_msg(e.message[0] != '\0', "no message for '%s'", bad[i]);
    }
    aik_semver_range_parse("^1.x", &r, &e);
    ck_assert_str_eq(e.message, "minor version: expected a number");
    aik_semver_range_parse("1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0 1.0", &r, &e);
    ck_assert_str_eq(e.message, "more than 8 comparators in a range");
}
END_TEST

/* ---------------- profiles ---------------- */

START_TEST(test_profile_tree)
{
    char *dir = aik_test_srcpath("profiles");
    aik_capgraph *g = NULL;
    aik_error e;
    const aik_profile *base = NULL, *def = NULL;

    aik_error_clear(&e);
    ck_assert_msg(aik_capgraph_load_dir(dir, &g, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_uint_eq(aik_capgraph_count(g), 4);
    ck_assert_int_eq(aik_capgraph_check(g, &e), 0);
    for (size_t i = 0; i < aik_capgraph_count(g); i++) {
        const aik_profile *p = aik_capgraph_get(g, i);
        if (strcmp(p->name, "aik-base") == 0)
            base = p;
        if (strcmp(p->name, "aik-lexicon-define") == 0)
            def = p;
        /* every provided capability has realistic phrasings */
        for (size_t c = 0; c < p->n_provides; c++)
            ck_assert_uint_ge(p->provides[c].intents.n, 8);
    }
    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_nonnull(def);
    ck_assert_int_eq(base->kind, AIK_MODULE_ARCHITECTURE);
    ck_assert_uint_eq(base->exec.memory_bytes, 96ull << 20);
    ck_assert_uint_eq(base->exec.backends, AIK_BACKEND_BIT_CPU | AIK_BACKEND_BIT_VULKAN);
    ck_assert_uint_eq(base->exec.dtypes, (1u << AIK_DTYPE_F32) | (1u << AIK_DTYPE_Q8_0));
    ck_assert(base->exec.expected_tokens_per_s == 60.0);
    ck_assert_uint_eq(base->n_payload, 1);
    ck_assert_str_eq(base->payload[0].file, "aik-wordnet.slm");
    ck_assert(!base->payload[0].has_sha256);
    ck_assert_uint_eq(base->n_protected, 2);
    ck_assert_int_eq(base->protected_parts[0].layer, 0);
    ck_assert_ptr_null(base->protected_parts[0].tensor);
    ck_assert_str_eq(base->protected_parts[1].tensor, "output_norm.weight");
    ck_assert_int_eq(base->protected_parts[1].layer, -1);
    ck_assert_ptr_null(base->base);
    ck_assert_int_eq(def->kind, AIK_MODULE_CAPABILITY);
    ck_assert_str_eq(def->base, "text.complete");
    /* The in-tree capabilities are prompt modules until the distillation
     * pipeline ships their ALR1 adapters; adapter parsing is covered by the
     * every-key profile test. */
    ck_assert(!def->has_adapter);
    ck_assert_uint_eq(def->n_requires, 1);
    ck_assert_str_eq(def->requires[0].range_text, "^1.0");
    ck_assert_ptr_nonnull(aik_profile_find_capability(def, "lexicon.define", NULL));
    ck_assert_ptr_null(aik_profile_find_capability(def, "lexicon.synonyms", NULL));
    aik_capgraph_free(g);
    free(dir);
}
END_TEST

static const char full_profile[] =
    "schema: 1\n"
    "module:\n"
    "  name: full\n"
    "  version: 2.1.0-rc.1\n"
    "  kind: capability\n"
    "  description: every key once\n"
    "  base: text.complete\n"
    "  adapter: {file: full.alr1, sha256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff}\n"
    "capabilities:\n"
    "  - id: lexicon.full\n"
    "    version: 2.1.0\n"
    "    description: d\n"
    "    intents: ['do {word}']\n"
    "    languages: [en, de]\n"
    "    domains: [lexicon]\n"
    "requires:\n"
    "  - {capability: text.complete, version: '>=1.0 <3.0'}\n"
    "execution:\n"
    "  memory: 1536\n"
    "  backends: [npu, cpu]\n"
    "  dtypes: [q4_0, bf16]\n"
    "  cpu_features: [avx2, fma, sse4.2]\n"
    "  tokens_per_s: 12.5\n"
    "lineage:\n"
    "  parents: [FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100]\n"
    "payload:\n"
    "  - file: a.slm\n"
    "  - {file: b.bin, sha256: 0000000000000000000000000000000000000000000000000000000000000001}\n"
    "protected:\n"
    "  - {layer: 65535, reason: top}\n";

START_TEST(test_profile_all_keys)
{
    aik_profile *p = NULL;
    aik_error e;

    aik_error_clear(&e);
    ck_assert_msg(aik_profile_parse("full.yaml", full_profile, strlen(full_profile), &p, &e) == 0, "%s: %s", e.where,
                  e.message);
    ck_assert_str_eq(p->version.pre, "rc.1");
    ck_assert_uint_eq(p->adapter.sha256[1], 0x11);
    ck_assert(p->adapter.has_sha256);
    ck_assert_uint_eq(p->provides[0].languages.n, 2);
    ck_assert_str_eq(p->provides[0].languages.v[1], "de");
    ck_assert_uint_eq(p->exec.memory_bytes, 1536);
    ck_assert_uint_eq(p->exec.backends, AIK_BACKEND_BIT_CPU | AIK_BACKEND_BIT_NPU);
    ck_assert_uint_eq(p->exec.dtypes, (1u << AIK_DTYPE_Q4_0) | (1u << AIK_DTYPE_BF16));
    ck_assert_uint_eq(p->exec.cpu_features, AIK_CPU_FEAT_AVX2 | AIK_CPU_FEAT_FMA | AIK_CPU_FEAT_SSE42);
    ck_assert(p->exec.expected_tokens_per_s == 12.5);
    ck_assert_uint_eq(p->n_parents, 1);
    ck_assert_uint_eq(p->parents[0][0], 0xff);
    ck_assert_uint_eq(p->n_payload, 2);
    ck_assert(!p->payload[0].has_sha256);
    ck_assert(p->payload[1].has_sha256);
    ck_assert_uint_eq(p->payload[1].sha256[31], 1);
    ck_assert_int_eq(p->protected_parts[0].layer, 65535);
    aik_profile_free(p);
    aik_profile_free(NULL);
}
END_TEST

static const struct {
    const char *name;
    int code;
    const char *where;
    const char *message;
} bad_cases[] = {
    { "adapter-on-architecture", -EINVAL, "adapter-on-architecture.yaml:7:5: module.adapter", "only capability modules carry an adapter" },
    { "alias", -EINVAL, "alias.yaml:12:9: capabilities[0].intents[1]", "aliases are not allowed" },
    { "anchor", -EINVAL, "anchor.yaml:14:11: requires", "anchors are not allowed" },
    { "backend-twice", -EINVAL, "backend-twice.yaml:19:27: execution.backends[2]", "backend 'cpu' is listed twice" },
    { "bad-cap-id", -EINVAL, "bad-cap-id.yaml:8:9: capabilities[0].id", "'Lexicon.Define' is not a capability id (dot-separated [a-z][a-z0-9_]* words, at most 64 bytes)" },
    { "bad-memory-unit", -EINVAL, "bad-memory-unit.yaml:18:11: execution.memory", "unknown size unit 'parsecs' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)" },
    { "bad-range", -EINVAL, "bad-range.yaml:16:14: requires[0].version", "minor version: expected a number" },
    { "bad-semver-leading-zero", -EINVAL, "bad-semver-leading-zero.yaml:9:14: capabilities[0].version", "minor version: leading zero" },
    { "bad-semver", -EINVAL, "bad-semver.yaml:4:12: module.version", "'1.0': a version needs MAJOR.MINOR.PATCH" },
    { "bad-sha256", -EINVAL, "bad-sha256.yaml:9:13: module.adapter.sha256", "expected 64 hexadecimal digits (SHA-256)" },
    { "base-not-required", -EINVAL, "base-not-required.yaml:6:9: module.base", "base 'text.embed' must also be listed in 'requires' with a version range" },
    { "base-on-architecture", -EINVAL, "base-on-architecture.yaml:6:9: module.base", "only capability modules apply to a base model (kind is architecture)" },
    { "complex-key", -EINVAL, "complex-key.yaml:17:3", "mapping keys must be plain strings" },
    { "duplicate-capability", -EINVAL, "duplicate-capability.yaml:14:5: capabilities[1]", "capability 'lexicon.define' is already provided by capabilities[0]" },
    { "duplicate-key", -EINVAL, "duplicate-key.yaml:10:5: capabilities[0].id", "duplicate key 'id' (first at line 8, column 5)" },
    { "duplicate-require", -EINVAL, "duplicate-require.yaml:17:5: requires[1]", "capability 'text.complete' is already required by requires[0]" },
    { "empty-capabilities", -EINVAL, "empty-capabilities.yaml:7:15: capabilities", "a module provides at least one capability" },
    { "empty-string", -EINVAL, "empty-string.yaml:3:9: module.name", "'' is not a module name ([a-z0-9][a-z0-9._-]*, at most 64 bytes)" },
    { "empty", -EINVAL, "empty.yaml:1:1", "empty document" },
    { "memory-overflow", -EINVAL, "memory-overflow.yaml:18:11: execution.memory", "size '99999999999999 TiB' does not fit in 64 bits" },
    { "missing-execution", -EINVAL, "missing-execution.yaml:1:1", "missing required key 'execution'" },
    { "missing-name", -EINVAL, "missing-name.yaml:3:3: module", "missing required key 'name'" },
    { "no-base", -EINVAL, "no-base.yaml:3:3: module", "a capability module must name its base model ('base')" },
    { "parents-not-digest", -EINVAL, "parents-not-digest.yaml:22:7: lineage.parents[0]", "expected 64 hexadecimal digits (SHA-256)" },
    { "payload-slash", -EINVAL, "payload-slash.yaml:21:11: payload[0].file", "'../etc/passwd' is not a plain file name (no '/', not '.' or '..', 1..255 bytes)" },
    { "protected-bad-layer", -EINVAL, "protected-bad-layer.yaml:21:12: protected[0].layer", "expected a layer index (non-negative integer), got '-1'" },
    { "protected-both", -EINVAL, "protected-both.yaml:21:5: protected[0]", "give exactly one of 'layer' or 'tensor'" },
    { "requires-itself", -EINVAL, "requires-itself.yaml:17:5: requires[1]", "module requires capability 'lexicon.define' that it provides itself" },
    { "schema-not-integer", -EINVAL, "schema-not-integer.yaml:1:9: schema", "expected an integer, got 'one'" },
    { "schema-version", -EINVAL, "schema-version.yaml:1:9: schema", "unsupported schema version 2 (this parser reads 1)" },
    { "seq-too-long", -E2BIG, "seq-too-long.yaml:75:9: capabilities[0].intents", "sequence longer than 64 items" },
    { "string-too-long", -E2BIG, "string-too-long.yaml:10:18: capabilities[0].description", "string longer than 1024 bytes" },
    { "syntax-error", -EINVAL, "syntax-error.yaml:12:5: capabilities[0]", "YAML syntax error: did not find expected key while parsing a block mapping" },
    { "tag", -EINVAL, "tag.yaml:18:11: execution.memory", "tags are not allowed" },
    { "tokens-per-s-nan", -EINVAL, "tokens-per-s-nan.yaml:20:17: execution.tokens_per_s", "expected a number, got '.nan'" },
    { "too-deep", -E2BIG, "too-deep.yaml:13:13: capabilities[0].intents[2][0][0][0][0]", "nesting deeper than 8 levels" },
    { "top-level-sequence", -EINVAL, "top-level-sequence.yaml:1:1", "expected a mapping at the top level, got a sequence" },
    { "two-documents", -EINVAL, "two-documents.yaml:20:1", "only one YAML document is allowed" },
    { "unknown-backend", -EINVAL, "unknown-backend.yaml:19:19: execution.backends[1]", "unknown backend 'tpu'" },
    { "unknown-cpu-feature", -EINVAL, "unknown-cpu-feature.yaml:20:24: execution.cpu_features[1]", "unknown CPU feature 'sse9'" },
    { "unknown-dtype", -EINVAL, "unknown-dtype.yaml:20:17: execution.dtypes[1]", "unknown dtype 'q3_k'" },
    { "unknown-key-nested", -EINVAL, "unknown-key-nested.yaml:10:5: capabilities[0].intent", "unknown key 'intent'" },
    { "unknown-key-top", -EINVAL, "unknown-key-top.yaml:17:1: executon", "unknown key 'executon'" },
    { "unknown-kind", -EINVAL, "unknown-kind.yaml:5:9: module.kind", "'plugin' is not a module kind (architecture, capability, tokenizer, backend)" },
    { "wrong-type-backends", -EINVAL, "wrong-type-backends.yaml:19:13: execution.backends", "expected a sequence of strings, got a scalar" },
    { "wrong-type-intent", -EINVAL, "wrong-type-intent.yaml:13:9: capabilities[0].intents[2]", "expected a string, got a mapping" },
    { "wrong-type-module", -EINVAL, "wrong-type-module.yaml:3:3: module", "expected a mapping, got a sequence" },
};

START_TEST(test_profile_bad)
{
    const char *name = bad_cases[_i].name;
    char *rel, *path;
    aik_profile *p = NULL;
    aik_error e;

    ck_assert_int_ge(asprintf(&rel, "tests/capgraph/bad/%s.yaml", name), 0);
    path = aik_test_srcpath(rel);
    aik_error_clear(&e);
    ck_assert_int_eq(aik_profile_load(path, &p, &e), bad_cases[_i].code);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(e.code, bad_cases[_i].code);
    ck_assert_str_eq(e.where, bad_cases[_i].where);
    ck_assert_str_eq(e.message, bad_cases[_i].message);
    free(rel);
    free(path);
}
END_TEST

/* Every fixture in bad/ has a row above (a new fixture without one fails). */
START_TEST(test_profile_bad_all_listed)
{
    char *dir = aik_test_srcpath("tests/capgraph/bad");
    char *cmd;
    FILE *f;
    char line[256];
    size_t n = 0;

    ck_assert_int_ge(asprintf(&cmd, "ls '%s'", dir), 0);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        bool found = false;
        line[strcspn(line, "\n")] = '\0';
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
            char want[128];
            snprintf(want, sizeof(want), "%s.yaml", bad_cases[i].name);
            found |= strcmp(want, line) == 0;
        }
        ck_assert_msg(found, "fixture %s has no expected error", line);
        n++;
    }
    pclose(f);
    ck_assert_uint_eq(n, sizeof(bad_cases) / sizeof(bad_cases[0]));
    free(cmd);
    free(dir);
}
END_TEST

START_TEST(test_profile_limits)
{
    aik_profile *p = NULL;
    aik_error e;
    char *big = malloc(AIK_PROFILE_MAX_FILE + 1);
    static const char nul[] = "schema: 1\nmodule:\n  name: \"a\\0b\"\n";
    static const char keys_prefix[] = "schema: 1\nmodule:\n";
    char many[4096];
    size_t o;

    ck_assert_ptr_nonnull(big);
    memset(big, ' ', AIK_PROFILE_MAX_FILE + 1);
    aik_error_clear(&e);
    ck_assert_int_eq(aik_profile_parse("big.yaml", big, AIK_PROFILE_MAX_FILE + 1, &p, &e), -EFBIG);
    ck_assert_str_eq(e.where, "big.yaml");
    free(big);

    ck_assert_int_eq(aik_profile_parse("nul.yaml", nul, strlen(nul), &p, &e), -EINVAL);
    ck_assert_str_eq(e.where, "nul.yaml:3:9: module.name");
    ck_assert_str_eq(e.message, "string contains a NUL byte");

    /* 33 keys in one mapping */
    o = (size_t)snprintf(many, sizeof(many), "%s", keys_prefix);
    for (int i = 0; i < 33; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "  k%d: v\n", i);
    ck_assert_int_eq(aik_profile_parse("keys.yaml", many, o, &p, &e), -E2BIG);
    ck_assert_str_eq(e.where, "keys.yaml:35:3: module");
    ck_assert_str_eq(e.message, "more than 32 keys in a mapping");

    /* argument checks */
    ck_assert_int_eq(aik_profile_parse("x", NULL, 5, &p, &e), -EINVAL);
    ck_assert_int_eq(aik_profile_load("/nonexistent/x.yaml", &p, &e), -ENOENT);
    ck_assert_str_eq(e.where, "x.yaml");
    ck_assert_ptr_null(p);
}
END_TEST

/* ---------------- graph and resolution ---------------- */

/* Build a profile from a compact description and add it to g.
 * provides: "id@1.0.0 id2@1.2.0"; requires: "id@^1.0 id2@~1.2" (space separated). */
static void add_mod(aik_capgraph *g, const char *name, const char *version, const char *kind, const char *provides,
                    const char *requires, const char *memory, const char *backends, const char *tps)
{
    char yaml[8192], tmp[512], *save = NULL;
    size_t o = 0;
    aik_profile *p = NULL;
    aik_error e;

#define OUT(...) o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, __VA_ARGS__)
    OUT("schema: 1\nmodule:\n  name: %s\n  version: %s\n  kind: %s\n", name, version, kind);
    if (strcmp(kind, "capability") == 0) {
        snprintf(tmp, sizeof(tmp), "%s", requires);
        *strchr(tmp, '@') = '\0';
        OUT("  base: %s\n", tmp);
    }
    OUT("capabilities:\n");
    snprintf(tmp, sizeof(tmp), "%s", provides);
    for (char *t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *at = strchr(t, '@');
        *at = '\0';
        OUT("  - id: %s\n    version: %s\n", t, at + 1);
    }
    if (requires && *requires) {
        OUT("requires:\n");
        snprintf(tmp, sizeof(tmp), "%s", requires);
        for (char *t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
            char *at = strchr(t, '@');
            *at = '\0';
            OUT("  - capability: %s\n    version: '%s'\n", t, at + 1);
        }
    }
    OUT("execution:\n  memory: %s\n  backends: [%s]\n", memory, backends);
    if (tps)
        OUT("  tokens_per_s: %s\n", tps);
#undef OUT
    aik_error_clear(&e);
    ck_assert_msg(aik_profile_parse(name, yaml, o, &p, &e) == 0, "%s: %s: %s\n%s", name, e.where, e.message, yaml);
    ck_assert_msg(aik_capgraph_add(g, p, &e) == 0, "%s: %s", e.where, e.message);
}

static aik_capgraph *new_graph(void)
{
    aik_capgraph *g = NULL;
    ck_assert_int_eq(aik_capgraph_new(&g), 0);
    return g;
}

/* "a@1.0.0 b@1.0.0" of a plan, in plan order. */
static const char *plan_str(const aik_plan *p, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->n_modules; i++) {
        char v[96];
        o += (size_t)snprintf(buf + o, len - o, "%s%s@%s", i ? " " : "", p->modules[i]->name,
                              aik_semver_format(&p->modules[i]->version, v, sizeof(v)));
    }
    return buf;
}

/* The reason given for subject with verdict v, or NULL. */
static const char *reason_of(const aik_explanation *ex, const char *subject, aik_verdict v)
{
    for (size_t i = 0; i < aik_explanation_count(ex); i++) {
        const aik_explain_entry *en = aik_explanation_get(ex, i);
        if (strcmp(en->subject, subject) == 0 && en->verdict == v)
            return en->reason;
    }
    return NULL;
}

static int resolve(aik_capgraph *g, const char *intent, const aik_constraints *c, aik_explanation *ex, char *out,
                   size_t out_len, aik_error *e)
{
    aik_plan *plan = NULL;
    int r;

    aik_error_clear(e);
    r = aik_capgraph_resolve(g, intent, c, ex, &plan, e);
    if (r == 0)
        plan_str(plan, out, out_len);
    else
        snprintf(out, out_len, "error %d", r);
    aik_plan_free(plan);
    return r;
}

START_TEST(test_resolve_tree)
{
    char *dir = aik_test_srcpath("profiles");
    aik_capgraph *g = NULL;
    aik_explanation *ex = NULL;
    aik_plan *plan = NULL;
    aik_error e;
    char *text = NULL;

    ck_assert_int_eq(aik_capgraph_load_dir(dir, &g, &e), 0);
    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    ck_assert_int_eq(aik_capgraph_resolve(g, "lexicon.define@^1.0", NULL, ex, &plan, &e), 0);
    ck_assert_str_eq(plan->capability, "lexicon.define");
    ck_assert_uint_eq(plan->n_modules, 2);
    ck_assert_str_eq(plan->modules[0]->name, "aik-base"); /* dependencies first */
    ck_assert_str_eq(plan->modules[1]->name, "aik-lexicon-define");
    ck_assert_uint_eq(plan->memory_bytes, 100ull << 20);
    ck_assert_uint_eq(plan->backends, AIK_BACKEND_BIT_CPU | AIK_BACKEND_BIT_VULKAN);
    ck_assert(plan->match_score == 1.0);
    ck_assert_str_eq(reason_of(ex, "aik-base@1.0.0", AIK_VERDICT_CHOSEN),
                     "provides text.complete 1.0.0 required by aik-lexicon-define@1.0.0 (^1.0); memory 96.0 MiB, "
                     "backends cpu,vulkan");
    ck_assert_int_eq(aik_explanation_format(ex, &text), 0);
    ck_assert_ptr_nonnull(strstr(text, "  chosen    aik-lexicon-define@1.0.0: provides lexicon.define 1.0.0 for the intent (^1.0)"));
    free(text);
    aik_plan_free(plan);
    plan = NULL;
    /* the base alone */
    ck_assert_int_eq(aik_capgraph_resolve(g, "text.complete", NULL, ex, &plan, &e), 0);
    ck_assert_uint_eq(plan->n_modules, 1);
    aik_plan_free(plan);
    plan = NULL;
    /* malformed intents */
    ck_assert_int_eq(aik_capgraph_resolve(g, "lexicon.define@^x", NULL, ex, &plan, &e), -EINVAL);
    ck_assert_str_eq(e.where, "intent");
    ck_assert_str_eq(e.message, "version range '^x': major version: expected a number");
    ck_assert_int_eq(aik_capgraph_resolve(g, "   ", NULL, ex, &plan, &e), -EINVAL);
    ck_assert_int_eq(aik_capgraph_resolve(g, "lexicon.translate", NULL, ex, &plan, &e), -ENOENT);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.translate: the intent requires lexicon.translate *: no installed "
                                "module provides it");
    ck_assert_int_eq(aik_capgraph_resolve(g, "lexicon.define@^2", NULL, ex, &plan, &e), -ENOENT);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.define ^2: the intent requires lexicon.define ^2: no installed "
                                "version matches (installed: 1.0.0 from aik-lexicon-define@1.0.0)");
    ck_assert_ptr_null(plan);
    aik_explanation_free(ex);
    aik_capgraph_free(g);
    free(dir);
}
END_TEST

START_TEST(test_resolve_diamond)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    char s[512];

    add_mod(g, "app", "1.0.0", "backend", "app.study@1.0.0", "lexicon.define@^1 lexicon.synonyms@^1", "1 MiB", "cpu", NULL);
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu", NULL);
    add_mod(g, "syn", "1.2.0", "capability", "lexicon.synonyms@1.2.0", "text.complete@~1.1", "4 MiB", "cpu", NULL);
    add_mod(g, "base", "1.1.5", "architecture", "text.complete@1.1.5", "", "64 MiB", "cpu", "30");
    ck_assert_int_eq(aik_capgraph_check(g, &e), 0);
    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    ck_assert_int_eq(resolve(g, "app.study", NULL, ex, s, sizeof(s), &e), 0);
    /* the shared base once, before both of its dependents */
    ck_assert_str_eq(s, "base@1.1.5 def@1.0.0 syn@1.2.0 app@1.0.0");
    ck_assert_str_eq(reason_of(ex, "base@1.1.5", AIK_VERDICT_CHOSEN),
                     "provides text.complete 1.1.5 required by def@1.0.0 (^1.0); provides text.complete 1.1.5 required "
                     "by syn@1.2.0 (~1.1); memory 64.0 MiB, backends cpu");
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_resolve_tie_break)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    char s[512];

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu", NULL);
    /* same capability, same version, same cost: not a conflict, the name decides */
    add_mod(g, "base-b", "1.0.0", "architecture", "text.complete@1.0.0", "", "64 MiB", "cpu", NULL);
    add_mod(g, "base-a", "1.0.0", "architecture", "text.complete@1.0.0", "", "64 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-a@1.0.0 def@1.0.0");
    ck_assert_str_eq(reason_of(ex, "base-b@1.0.0", AIK_VERDICT_REJECTED),
                     "its best plan has 2 module(s) and 68.0 MiB; the chosen plan has 2 and 68.0 MiB (equal cost: the "
                     "chosen plan comes first by name, then higher version)");
    /* a higher version of the same name wins the tie; a cheaper one wins over names */
    add_mod(g, "base-a", "1.2.0", "architecture", "text.complete@1.2.0", "", "64 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-a@1.2.0 def@1.0.0");
    add_mod(g, "base-z", "1.0.0", "architecture", "text.complete@1.0.0", "", "32 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-z@1.0.0 def@1.0.0");
    /* the same module name and version twice is refused */
    {
        aik_profile *p = NULL;
        static const char y[] = "schema: 1\nmodule: {name: base-z, version: 1.0.0, kind: architecture}\n"
                                "capabilities: [{id: text.complete, version: 1.0.0}]\n"
                                "execution: {memory: 1, backends: [cpu]}\n";
        ck_assert_int_eq(aik_profile_parse("dup.yaml", y, strlen(y), &p, &e), 0);
        ck_assert_int_eq(aik_capgraph_add(g, p, &e), -EEXIST);
        ck_assert_str_eq(e.message, "module base-z@1.0.0 is already defined by base-z");
        aik_profile_free(p);
    }
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_resolve_conflict)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    char s[512];

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    add_mod(g, "app", "1.0.0", "backend", "app.x@1.0.0", "lexicon.define@^1 tok.words@^1", "1 MiB", "cpu", NULL);
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu", NULL);
    add_mod(g, "tok", "1.0.0", "tokenizer", "tok.words@1.0.0", "text.complete@^2.0", "1 MiB", "cpu", NULL);
    add_mod(g, "base1", "1.0.0", "architecture", "text.complete@1.0.0", "", "64 MiB", "cpu", NULL);
    add_mod(g, "base2", "2.0.0", "architecture", "text.complete@2.0.0", "", "64 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "app.x", NULL, ex, s, sizeof(s), &e), -EDEADLK);
    ck_assert_str_eq(e.where, "intent");
    ck_assert_str_eq(e.message, "cannot resolve app.x: tok@1.0.0 requires text.complete ^2.0, but the plan already has "
                                "text.complete 1.0.0 from base1@1.0.0");
    ck_assert_ptr_nonnull(reason_of(ex, "plan", AIK_VERDICT_NOTE));
    ck_assert_ptr_nonnull(reason_of(ex, "tok@1.0.0", AIK_VERDICT_REJECTED));
    /* each part alone resolves */
    ck_assert_int_eq(resolve(g, "tok.words", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base2@2.0.0 tok@1.0.0");
    aik_capgraph_free(g);

    /* one version per module name: app needs x ^1 from m@1 and y ^2 from m@2 */
    g = new_graph();
    add_mod(g, "app", "1.0.0", "backend", "app.y@1.0.0", "cap.x@^1 cap.y@^2", "1 MiB", "cpu", NULL);
    add_mod(g, "m", "1.0.0", "backend", "cap.x@1.0.0", "", "1 MiB", "cpu", NULL);
    add_mod(g, "m", "2.0.0", "backend", "cap.y@2.0.0", "", "1 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "app.y", NULL, ex, s, sizeof(s), &e), -EDEADLK);
    ck_assert_ptr_nonnull(strstr(e.message, "one version per module"));
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_resolve_memory_budget)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    aik_constraints c = { 0 };
    char s[512];

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    /* a bundled full-precision module that does it alone, or adapter + base */
    add_mod(g, "define-full", "1.0.0", "architecture", "lexicon.define@1.0.0 text.complete@1.0.0", "", "300 MiB", "cpu", "20");
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu", NULL);
    add_mod(g, "base-f32", "1.0.0", "architecture", "text.complete@1.0.0", "", "200 MiB", "cpu", "20");
    add_mod(g, "base-q4", "1.0.0", "architecture", "text.complete@1.0.0", "", "60 MiB", "cpu", "40");
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "define-full@1.0.0"); /* fewest modules first */
    ck_assert_str_eq(reason_of(ex, "def@1.0.0", AIK_VERDICT_REJECTED),
                     "its best plan has 2 module(s) and 64.0 MiB; the chosen plan has 1 and 300.0 MiB");
    c.memory_budget = 128ull << 20;
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-q4@1.0.0 def@1.0.0"); /* the q4_0 variant fits */
    ck_assert_str_eq(reason_of(ex, "define-full@1.0.0", AIK_VERDICT_REJECTED),
                     "needs 300.0 MiB of memory, the budget is 128.0 MiB");
    ck_assert_str_eq(reason_of(ex, "base-f32@1.0.0", AIK_VERDICT_REJECTED),
                     "needs 200.0 MiB of memory, the budget is 128.0 MiB");
    /* fits module by module, not together */
    c.memory_budget = 62ull << 20;
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), -ENOEXEC);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.define: with base-q4@1.0.0 the plan needs 64.0 MiB, over the "
                                "memory budget of 62.0 MiB");
    c.memory_budget = 1ull << 20;
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), -ENOEXEC);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.define: the intent requires lexicon.define *: every provider is "
                                "excluded by the constraints");
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_resolve_unmet)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    char s[512];

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu", NULL);
    add_mod(g, "base", "2.0.0", "architecture", "text.complete@2.0.0", "", "64 MiB", "cpu", NULL);
    add_mod(g, "ex", "1.0.0", "capability", "lexicon.example@1.0.0", "text.embed@^1", "4 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), -ENOENT);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.define: def@1.0.0 requires text.complete ^1.0: no installed "
                                "version matches (installed: 2.0.0 from base@2.0.0)");
    ck_assert_str_eq(reason_of(ex, "def@1.0.0", AIK_VERDICT_REJECTED),
                     "def@1.0.0 requires text.complete ^1.0: no installed version matches (installed: 2.0.0 from "
                     "base@2.0.0)");
    ck_assert_int_eq(resolve(g, "lexicon.example", NULL, ex, s, sizeof(s), &e), -ENOENT);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.example: ex@1.0.0 requires text.embed ^1: no installed module "
                                "provides it");
    /* a capability module's base must be a model, not any provider */
    add_mod(g, "syn", "1.0.0", "capability", "lexicon.synonyms@1.0.0", "text.embed2@^1", "4 MiB", "cpu", NULL);
    add_mod(g, "emb", "1.0.0", "tokenizer", "text.embed2@1.0.0", "", "4 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.synonyms", NULL, ex, s, sizeof(s), &e), -ENOENT);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.synonyms: syn@1.0.0 requires text.embed2 ^1: no installed "
                                "version matches (installed: 1.0.0 from emb@1.0.0); its base must come from an "
                                "architecture module");
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_resolve_backend_latency)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    aik_constraints c = { 0 };
    char s[512];

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu, vulkan", NULL);
    add_mod(g, "base-vk", "1.0.0", "architecture", "text.complete@1.0.0", "", "50 MiB", "vulkan", "200");
    add_mod(g, "base-cpu", "1.0.0", "architecture", "text.complete@1.0.0", "", "100 MiB", "cpu", "25");
    add_mod(g, "base-slow", "1.0.0", "architecture", "text.complete@1.0.0", "", "80 MiB", "cpu", "5");
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-vk@1.0.0 def@1.0.0");
    c.backends = AIK_BACKEND_BIT_CPU;
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-slow@1.0.0 def@1.0.0");
    ck_assert_str_eq(reason_of(ex, "base-vk@1.0.0", AIK_VERDICT_REJECTED), "runs on vulkan, allowed backends are cpu");
    c.latency_ms = 50; /* needs 20 tokens/s */
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-cpu@1.0.0 def@1.0.0");
    ck_assert_str_eq(reason_of(ex, "base-slow@1.0.0", AIK_VERDICT_REJECTED),
                     "expects 5.0 tokens/s, a 50 ms per-token budget needs 20.0");
    c.backends = AIK_BACKEND_BIT_NPU;
    c.latency_ms = 0;
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), -ENOEXEC);
    aik_capgraph_free(g);

    /* no common backend between a cpu-only adapter and a vulkan-only base */
    g = new_graph();
    add_mod(g, "def", "1.0.0", "capability", "lexicon.define@1.0.0", "text.complete@^1.0", "4 MiB", "cpu", NULL);
    add_mod(g, "base-vk", "1.0.0", "architecture", "text.complete@1.0.0", "", "50 MiB", "vulkan", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), -ENOEXEC);
    ck_assert_str_eq(e.message, "cannot resolve lexicon.define: base-vk@1.0.0 runs on vulkan, the rest of the plan on "
                                "cpu: no common backend");
    add_mod(g, "base-cpu", "1.0.0", "architecture", "text.complete@1.0.0", "", "100 MiB", "cpu", NULL);
    ck_assert_int_eq(resolve(g, "lexicon.define", NULL, ex, s, sizeof(s), &e), 0);
    ck_assert_str_eq(s, "base-cpu@1.0.0 def@1.0.0");
    /* latency needs a declared speed on architecture modules */
    c.backends = 0;
    c.latency_ms = 100;
    ck_assert_int_eq(resolve(g, "lexicon.define", &c, ex, s, sizeof(s), &e), -ENOEXEC);
    ck_assert_str_eq(reason_of(ex, "base-cpu@1.0.0", AIK_VERDICT_REJECTED),
                     "declares no expected tokens/s, so it cannot promise a 100 ms per-token budget");
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_resolve_cycle)
{
    aik_capgraph *g = new_graph();
    aik_explanation *ex = NULL;
    aik_error e;
    char s[512];

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    add_mod(g, "a", "1.0.0", "backend", "cap.a@1.0.0", "cap.b@^1", "1 MiB", "cpu", NULL);
    add_mod(g, "b", "1.0.0", "backend", "cap.b@1.0.0", "cap.c@^1", "1 MiB", "cpu", NULL);
    add_mod(g, "c", "1.0.0", "backend", "cap.c@1.0.0", "cap.a@^1", "1 MiB", "cpu", NULL);
    add_mod(g, "d", "1.0.0", "backend", "cap.d@1.0.0", "", "1 MiB", "cpu", NULL);
    ck_assert_int_eq(aik_capgraph_check(g, &e), -ELOOP);
    ck_assert_str_eq(e.message, "dependency cycle: a@1.0.0 -> b@1.0.0 -> c@1.0.0 -> a@1.0.0");
    ck_assert_int_eq(resolve(g, "cap.b", NULL, ex, s, sizeof(s), &e), -ELOOP);
    ck_assert_str_eq(e.message, "cannot resolve cap.b: dependency cycle: b@1.0.0 -> c@1.0.0 -> a@1.0.0 -> b@1.0.0");
    ck_assert_int_eq(resolve(g, "cap.d", NULL, ex, s, sizeof(s), &e), 0); /* the rest of the graph still works */
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_load_dir_errors)
{
    char *tmp = aik_test_tmpdir(), *path;
    aik_capgraph *g = NULL;
    aik_error e;
    static const char good[] = "schema: 1\nmodule: {name: m, version: 1.0.0, kind: architecture}\n"
                               "capabilities: [{id: text.complete, version: 1.0.0}]\n"
                               "execution: {memory: 1, backends: [cpu]}\n";

    ck_assert_ptr_nonnull(tmp);
    ck_assert_int_eq(asprintf(&path, "%s/a.yaml", tmp), (int)strlen(tmp) + 7);
    ck_assert_int_eq(aik_write_file_atomic(path, good, strlen(good), 0644), 0);
    free(path);
    ck_assert_int_eq(asprintf(&path, "%s/ignored.yml", tmp), (int)strlen(tmp) + 12);
    ck_assert_int_eq(aik_write_file_atomic(path, "junk", 4, 0644), 0);
    free(path);
    ck_assert_int_eq(aik_capgraph_load_dir(tmp, &g, &e), 0);
    ck_assert_uint_eq(aik_capgraph_count(g), 1);
    aik_capgraph_free(g);
    g = NULL;
    /* the same module twice */
    ck_assert_int_eq(asprintf(&path, "%s/b.yaml", tmp), (int)strlen(tmp) + 7);
    ck_assert_int_eq(aik_write_file_atomic(path, good, strlen(good), 0644), 0);
    aik_error_clear(&e);
    ck_assert_int_eq(aik_capgraph_load_dir(tmp, &g, &e), -EEXIST);
    ck_assert_str_eq(e.where, "b.yaml");
    ck_assert_str_eq(e.message, "module m@1.0.0 is already defined by a.yaml");
    /* a malformed one */
    ck_assert_int_eq(aik_write_file_atomic(path, "schema: 1\nmodule: [x]\n", 22, 0644), 0);
    ck_assert_int_eq(aik_capgraph_load_dir(tmp, &g, &e), -EINVAL);
    ck_assert_str_eq(e.where, "b.yaml:2:9: module");
    ck_assert_ptr_null(g);
    free(path);
    ck_assert_int_eq(aik_capgraph_load_dir("/nonexistent-dir", &g, &e), -ENOENT);
    aik_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* ---------------- free text ---------------- */

static bool have_wordnet(void)
{
    return access(AIK_WORDNET_DEFAULT_DIR "/index.noun", R_OK) == 0 && access(AIK_WORDNET_DEFAULT_DIR "/data.verb", R_OK) == 0;
}

static aik_capgraph *tree_graph(void)
{
    char *dir = aik_test_srcpath("profiles");
    aik_capgraph *g = NULL;
    aik_error e;
    ck_assert_int_eq(aik_capgraph_load_dir(dir, &g, &e), 0);
    free(dir);
    return g;
}

static const struct {
    const char *text;
    const char *cap;
} lexical_cases[] = {
    { "what does ephemeral mean", "lexicon.define" },
    { "Define 'serendipity', please.", "lexicon.define" },
    { "give me another word for happy", "lexicon.synonyms" },
    { "use ubiquitous in a sentence", "lexicon.example" },
    { "continue the following story", "text.complete" },
};

/* Paraphrases whose content words are in no phrasing: they match only
 * through WordNet (synonyms, derivations, inflections). */
static const struct {
    const char *text;
    const char *cap;
} meaning_cases[] = {
    { "what's the significance of serendipity", "lexicon.define" }, /* significance ~ meaning */
    { "explicate the word gregarious", "lexicon.define" },          /* explicate ~ explain */
    { "employ ubiquitous in a clause", "lexicon.example" },          /* employ ~ use, clause ~ sentence */
    { "demonstrate the application of ubiquitous", "lexicon.example" }, /* application ~ use */
    { "name synonymous words for quick", "lexicon.synonyms" },      /* synonymous ~ synonym */
};

START_TEST(test_text_lexical)
{
    aik_capgraph *g = tree_graph();
    aik_explanation *ex = NULL;
    aik_plan *plan = NULL;
    aik_error e;

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    ck_assert_int_eq(aik_capgraph_set_wordnet_dir(g, NULL), 0); /* lexical only */
    for (size_t i = 0; i < sizeof(lexical_cases) / sizeof(lexical_cases[0]); i++) {
        aik_error_clear(&e);
        ck_assert_msg(aik_capgraph_resolve(g, lexical_cases[i].text, NULL, ex, &plan, &e) == 0, "%s: %s",
                      lexical_cases[i].text, e.message);
        ck_assert_str_eq(plan->capability, lexical_cases[i].cap);
        ck_assert(plan->match_score >= AIK_TEXTMATCH_THRESHOLD && plan->match_score <= 1.0);
        ck_assert_str_eq(reason_of(ex, "matching", AIK_VERDICT_NOTE), "lexical only: WordNet is disabled");
        ck_assert_ptr_nonnull(reason_of(ex, lexical_cases[i].cap, AIK_VERDICT_MATCHED));
        aik_plan_free(plan);
        plan = NULL;
    }
    /* without WordNet the paraphrases do not match: they need meaning */
    for (size_t i = 0; i < sizeof(meaning_cases) / sizeof(meaning_cases[0]); i++)
        ck_assert_msg(aik_capgraph_resolve(g, meaning_cases[i].text, NULL, ex, &plan, &e) == -ENOENT,
                      "'%s' matched lexically", meaning_cases[i].text);
    /* a missing WordNet is reported, not fatal */
    ck_assert_int_eq(aik_capgraph_set_wordnet_dir(g, "/nonexistent-wordnet"), 0);
    ck_assert_int_eq(aik_capgraph_resolve(g, "what does ephemeral mean", NULL, ex, &plan, &e), 0);
    ck_assert_ptr_nonnull(strstr(reason_of(ex, "matching", AIK_VERDICT_NOTE), "lexical only: WordNet unavailable"));
    aik_plan_free(plan);
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_text_meaning)
{
    aik_capgraph *g;
    aik_explanation *ex = NULL;
    aik_plan *plan = NULL;
    aik_error e;

    if (!have_wordnet()) {
        fprintf(stderr, "test_text_meaning: WordNet (wordnet-base) not installed, skipped\n");
        return;
    }
    g = tree_graph();
    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    for (size_t i = 0; i < sizeof(meaning_cases) / sizeof(meaning_cases[0]); i++) {
        aik_error_clear(&e);
        ck_assert_msg(aik_capgraph_resolve(g, meaning_cases[i].text, NULL, ex, &plan, &e) == 0, "%s: %s",
                      meaning_cases[i].text, e.message);
        ck_assert_msg(strcmp(plan->capability, meaning_cases[i].cap) == 0, "'%s' -> %s", meaning_cases[i].text,
                      plan->capability);
        ck_assert_ptr_nonnull(strstr(reason_of(ex, "matching", AIK_VERDICT_NOTE), "WordNet synonyms"));
        aik_plan_free(plan);
        plan = NULL;
    }
    for (size_t i = 0; i < sizeof(lexical_cases) / sizeof(lexical_cases[0]); i++) {
        ck_assert_int_eq(aik_capgraph_resolve(g, lexical_cases[i].text, NULL, ex, &plan, &e), 0);
        ck_assert_str_eq(plan->capability, lexical_cases[i].cap);
        aik_plan_free(plan);
        plan = NULL;
    }
    /* nothing about words: a clear no, with the best score in the explanation */
    ck_assert_int_eq(aik_capgraph_resolve(g, "the weather in Paris tomorrow", NULL, ex, &plan, &e), -ENOENT);
    ck_assert_ptr_nonnull(strstr(e.message, "no capability matches \"the weather in Paris tomorrow\" (best: "));
    ck_assert_ptr_nonnull(strstr(e.message, "threshold 0.50)"));
    ck_assert_ptr_null(plan);
    for (size_t i = 0; i < aik_explanation_count(ex); i++)
        ck_assert_int_ne(aik_explanation_get(ex, i)->verdict, AIK_VERDICT_MATCHED);
    ck_assert_int_eq(aik_capgraph_resolve(g, "how tall is the Eiffel tower", NULL, ex, &plan, &e), -ENOENT);
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

/* The issue's own examples against one terse phrasing per capability:
 * "what does X mean" has no word in common with "define X", nor "give me
 * another word for X" with "synonyms of X"; WordNet relates them (define's
 * gloss "give a definition for the meaning of a word"; synonym's hypernym
 * "word"). */
START_TEST(test_text_terse_phrasings)
{
    static const char *const phr[][2] = {
        { "lexicon.define", "define {word}" },
        { "lexicon.synonyms", "synonyms of {word}" },
        { "lexicon.example", "use {word} in a sentence" },
        { "text.complete", "complete this text" },
    };
    static const char *const cases[][2] = {
        { "what does ephemeral mean", "lexicon.define" },
        { "what is the meaning of ephemeral", "lexicon.define" },
        { "give me another word for happy", "lexicon.synonyms" },
        { "employ happy in a sentence", "lexicon.example" },
    };
    static const char *const none[] = { "the weather in Paris tomorrow", "what time is it", "how tall is the Eiffel tower",
                                        "book a flight to London" };
    aik_textmatch *tm = NULL;
    aik_wordnet *wn = NULL;
    aik_textmatch_result *res = NULL;
    size_t n = 0;
    unsigned flags = 0;
    aik_error e;

    if (!have_wordnet()) {
        fprintf(stderr, "test_text_terse_phrasings: WordNet not installed, skipped\n");
        return;
    }
    ck_assert_int_eq(aik_textmatch_new(&tm), 0);
    for (size_t i = 0; i < sizeof(phr) / sizeof(phr[0]); i++)
        ck_assert_int_eq(aik_textmatch_add(tm, phr[i][0], phr[i][1]), 0);
    ck_assert_int_eq(aik_wordnet_open(NULL, &wn, &e), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* lexically nothing matches */
        ck_assert_int_eq(aik_textmatch_query(tm, cases[i][0], NULL, NULL, &res, &n, &flags), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert_msg(res[0].score < AIK_TEXTMATCH_THRESHOLD || i == 3, "'%s' matched lexically", cases[i][0]);
        ck_assert_uint_eq(flags, 0);
        free(res);
        ck_assert_int_eq(aik_textmatch_query(tm, cases[i][0], wn, NULL, &res, &n, &flags), 0);
        ck_assert_uint_eq(flags, AIK_TEXTMATCH_USED_WORDNET);
        ck_assert_msg(strcmp(res[0].label, cases[i][1]) == 0 && res[0].score >= AIK_TEXTMATCH_THRESHOLD,
                      "'%s' -> %s %.3f", cases[i][0], res[0].label, res[0].score);
        ck_assert(res[0].score > res[1].score);
        ck_assert(res[0].embedding == -1);
        free(res);
    }
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        ck_assert_int_eq(aik_textmatch_query(tm, none[i], wn, NULL, &res, &n, &flags), 0);
        ck_assert_msg(res[0].score < AIK_TEXTMATCH_THRESHOLD, "'%s' -> %s %.3f", none[i], res[0].label, res[0].score);
        free(res);
    }
    aik_wordnet_close(wn);
    aik_textmatch_free(tm);
}
END_TEST

/* A fake embedding: texts mentioning "sentence" or "zqx" point one way,
 * everything else another. */
static int fake_embed(void *user, const char *text, float *vec, size_t dim)
{
    int *calls = user;
    (*calls)++;
    memset(vec, 0, dim * sizeof(float));
    vec[(strstr(text, "sentence") || strstr(text, "zqx")) ? 0 : 1] = 1.0f;
    return 0;
}

static int failing_embed(void *user, const char *text, float *vec, size_t dim)
{
    (void)user, (void)text, (void)vec, (void)dim;
    return -EIO;
}

START_TEST(test_text_embedding)
{
    aik_capgraph *g = tree_graph();
    aik_explanation *ex = NULL;
    aik_plan *plan = NULL;
    aik_error e;
    int calls = 0;
    aik_embedder emb = { fake_embed, &calls, 4, 0.9 };

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    ck_assert_int_eq(aik_capgraph_set_wordnet_dir(g, NULL), 0);
    ck_assert_int_eq(aik_capgraph_resolve(g, "zqx ubiquitous", NULL, ex, &plan, &e), -ENOENT);
    ck_assert_int_eq(aik_capgraph_set_embedder(g, &emb), 0);
    ck_assert_int_eq(aik_capgraph_resolve(g, "zqx ubiquitous", NULL, ex, &plan, &e), 0);
    ck_assert_str_eq(plan->capability, "lexicon.example");
    ck_assert_uint_gt(calls, 1);
    ck_assert_str_eq(reason_of(ex, "matching", AIK_VERDICT_NOTE), "lexical only: WordNet is disabled");
    aik_plan_free(plan);
    plan = NULL;
    emb.fn = failing_embed;
    ck_assert_int_eq(aik_capgraph_set_embedder(g, &emb), 0);
    ck_assert_int_eq(aik_capgraph_resolve(g, "zqx ubiquitous", NULL, ex, &plan, &e), -ENOENT);
    ck_assert_int_eq(aik_capgraph_resolve(g, "what does ephemeral mean", NULL, ex, &plan, &e), 0);
    ck_assert_str_eq(plan->capability, "lexicon.define");
    ck_assert_ptr_nonnull(reason_of(ex, "matching", AIK_VERDICT_NOTE));
    aik_plan_free(plan);
    emb.dim = 0;
    ck_assert_int_eq(aik_capgraph_set_embedder(g, &emb), -EINVAL);
    ck_assert_int_eq(aik_capgraph_set_embedder(g, NULL), 0);
    aik_explanation_free(ex);
    aik_capgraph_free(g);
}
END_TEST

START_TEST(test_stemmer)
{
    static const char *const pairs[][2] = {
        { "definitions", "definition" }, { "defined", "defin" }, { "define", "defin" }, { "defining", "defin" },
        { "meaning", "mean" }, { "synonyms", "synonym" }, { "running", "run" }, { "falling", "fall" },
        { "ponies", "pony" }, { "glasses", "glass" }, { "quickly", "quick" }, { "use", "use" }, { "is", "is" },
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        char w[64];
        snprintf(w, sizeof(w), "%s", pairs[i][0]);
        aik_textmatch_stem(w);
        ck_assert_msg(strcmp(w, pairs[i][1]) == 0, "%s -> %s, want %s", pairs[i][0], w, pairs[i][1]);
    }
}
END_TEST

typedef struct seen {
    char words[256][64];
    float w[256];
    int n;
} seen;

static int collect(void *user, const char *lemma, float weight)
{
    seen *s = user;
    if (s->n < 256) {
        snprintf(s->words[s->n], sizeof(s->words[0]), "%s", lemma);
        s->w[s->n++] = weight;
    }
    return 0;
}

static float weight_of(const seen *s, const char *w)
{
    float best = 0;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->words[i], w) == 0 && s->w[i] > best)
            best = s->w[i];
    return best;
}

START_TEST(test_wordnet)
{
    aik_wordnet *wn = NULL;
    aik_error e;
    seen s;

    if (!have_wordnet()) {
        fprintf(stderr, "test_wordnet: WordNet not installed, skipped\n");
        return;
    }
    ck_assert_int_eq(aik_wordnet_open(NULL, &wn, &e), 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "happy", collect, &s), 0);
    ck_assert(weight_of(&s, "happy") == AIK_WORDNET_W_BASE);
    ck_assert(weight_of(&s, "felicitous") == AIK_WORDNET_W_SYNONYM * AIK_WORDNET_SENSE_DECAY); /* 2nd sense */
    ck_assert(weight_of(&s, "joy") == AIK_WORDNET_W_GLOSS); /* "enjoying or showing or marked by joy" */
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "ran", collect, &s), 0); /* verb.exc */
    ck_assert(weight_of(&s, "run") == AIK_WORDNET_W_BASE);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "definitions", collect, &s), 0); /* detachment rule */
    ck_assert(weight_of(&s, "definition") == AIK_WORDNET_W_BASE);
    ck_assert(weight_of(&s, "define") == AIK_WORDNET_W_RELATED); /* derivationally related */
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "xyzzyq", collect, &s), 0);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_eq(aik_wordnet_expand(wn, "two words", collect, &s), -EINVAL);
    ck_assert_int_eq(aik_wordnet_expand(wn, "", collect, &s), -EINVAL);
    aik_wordnet_close(wn);
    aik_wordnet_close(NULL);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
    ck_assert_int_eq(aik_write_file_atomic(p, text, strlen(text), 0644), 0);
    free(p);
}

/* Corrupt databases: refused when the structure is wrong, and when only
 * the contents lie (offsets, counts) the expansion stays in bounds. */
START_TEST(test_wordnet_corrupt)
{
    char *tmp = aik_test_tmpdir();
    aik_wordnet *wn = NULL;
    aik_error e;
    seen s;

    ck_assert_int_eq(aik_wordnet_open(tmp, &wn, &e), -ENOENT);
    write_file(tmp, "index.noun", "  1 license\nzebra n 1 0 1 0 00000000\napple n 1 0 1 0 00000000\n");
    write_file(tmp, "data.noun", "");
    write_file(tmp, "index.verb", "run v 1 0 1 0 00000000\n");
    write_file(tmp, "data.verb", "");
    aik_error_clear(&e);
    ck_assert_int_eq(aik_wordnet_open(tmp, &wn, &e), -EBADMSG);
    ck_assert_str_eq(e.where, "index.noun");
    ck_assert_str_eq(e.message, "entries are not sorted at byte 37");
    /* sorted, but the offsets and counts point nowhere sensible */
    write_file(tmp, "index.noun",
               "apple n 99 0 1 0 00000000 99999999 18446744073709551615\n"
               "pear n 1 7 1 0 00000000\n"
               "zebra n 1 0 1 0 00000030\n");
    write_file(tmp, "data.noun",
               "00000000 05 n ff apple 0 000 | lies about its word count\n"
               "00000030 05 n 01 zebra 0 999 @ 00000000 n 0000 + 99999 n 0101 | truncated pointers");
    write_file(tmp, "index.verb", "run v 1 0 1 0 00000000\nwalk"); /* no newline, no fields at the end */
    ck_assert_int_eq(aik_wordnet_open(tmp, &wn, &e), 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "walk", collect, &s), 0);
    ck_assert(weight_of(&s, "walk") == AIK_WORDNET_W_BASE);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "apples", collect, &s), 0);
    ck_assert(weight_of(&s, "apple") == AIK_WORDNET_W_BASE);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "pear", collect, &s), 0);
    ck_assert(weight_of(&s, "pear") == AIK_WORDNET_W_BASE);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "zebra", collect, &s), 0);
    ck_assert(weight_of(&s, "zebra") == AIK_WORDNET_W_BASE);
    aik_wordnet_close(wn);
    aik_test_rmtree(tmp);
    free(tmp);
}
END_TEST

/* The in-memory variant used by the fuzz target, on its seed (a small,
 * self-consistent excerpt of WordNet 3.0). */
START_TEST(test_wordnet_buffers)
{
    char *path = aik_test_srcpath("tests/fuzz/corpus/wordnet/mini-lexicon.txt"), *data = NULL, *p;
    const char *sec[7];
    size_t len, n = 0;
    aik_wordnet_buffers b;
    aik_wordnet *wn = NULL;
    aik_error e;
    seen s;

    ck_assert_int_eq(aik_read_file(path, 1 << 20, &data, &len), 0);
    for (p = data; n < 7; n++) {
        char *sep = strstr(p, "\n%%\n");
        sec[n] = p;
        if (!sep) {
            n++;
            break;
        }
        *sep = '\0';
        p = sep + 4;
    }
    ck_assert_uint_eq(n, 7);
    memset(&b, 0, sizeof(b));
    b.index[0] = sec[0], b.index_len[0] = strlen(sec[0]);
    b.data[0] = sec[1], b.data_len[0] = strlen(sec[1]);
    b.index[1] = sec[2], b.index_len[1] = strlen(sec[2]);
    b.data[1] = sec[3], b.data_len[1] = strlen(sec[3]);
    b.exc[1] = sec[5], b.exc_len[1] = strlen(sec[5]);
    ck_assert_int_eq(aik_wordnet_from_buffers(&b, &wn, &e), 0);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "ran", collect, &s), 0);
    ck_assert(weight_of(&s, "run") == AIK_WORDNET_W_BASE);
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(aik_wordnet_expand(wn, "define", collect, &s), 0);
    ck_assert(weight_of(&s, "meaning") == AIK_WORDNET_W_GLOSS);
    ck_assert(weight_of(&s, "specify") == AIK_WORDNET_W_SYNONYM);
    aik_wordnet_close(wn);
    /* no index entries at all */
    b.index_len[0] = 0;
    ck_assert_int_eq(aik_wordnet_from_buffers(&b, &wn, &e), -EBADMSG);
    free(data);
    free(path);
}
END_TEST

START_TEST(test_explanation)
{
    aik_explanation *ex = NULL;
    char *text = NULL;

    ck_assert_int_eq(aik_explanation_new(&ex), 0);
    ck_assert_int_eq(aik_explanation_add(ex, "m@1.0.0", AIK_VERDICT_CHOSEN, "provides %s", "x"), 0);
    ck_assert_int_eq(aik_explanation_add(ex, "n@1.0.0", AIK_VERDICT_REJECTED, "too big"), 0);
    ck_assert_uint_eq(aik_explanation_count(ex), 2);
    ck_assert_ptr_null(aik_explanation_get(ex, 2));
    ck_assert_int_eq(aik_explanation_format(ex, &text), 0);
    ck_assert_str_eq(text, "  chosen    m@1.0.0: provides x\n  rejected  n@1.0.0: too big\n");
    free(text);
    aik_explanation_clear(ex);
    ck_assert_uint_eq(aik_explanation_count(ex), 0);
    ck_assert_int_eq(aik_explanation_format(ex, &text), 0);
    ck_assert_str_eq(text, "");
    free(text);
    ck_assert_str_eq(aik_verdict_name(AIK_VERDICT_NOTE), "note");
    aik_explanation_free(ex);
    aik_explanation_free(NULL);
}
END_TEST

static Suite *capgraph_suite(void)
{
    Suite *s = suite_create("capgraph");
    TCase *t;

    t = tcase_create("semver");
    tcase_add_test(t, test_semver_parse);
    tcase_add_test(t, test_semver_order);
    tcase_add_test(t, test_semver_ranges);
    suite_add_tcase(s, t);

    t = tcase_create("profile");
    tcase_add_test(t, test_profile_tree);
    tcase_add_test(t, test_profile_all_keys);
    tcase_add_loop_test(t, test_profile_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(t, test_profile_bad_all_listed);
    tcase_add_test(t, test_profile_limits);
    suite_add_tcase(s, t);

    t = tcase_create("resolve");
    tcase_add_test(t, test_resolve_tree);
    tcase_add_test(t, test_resolve_diamond);
    tcase_add_test(t, test_resolve_tie_break);
    tcase_add_test(t, test_resolve_conflict);
    tcase_add_test(t, test_resolve_memory_budget);
    tcase_add_test(t, test_resolve_unmet);
    tcase_add_test(t, test_resolve_backend_latency);
    tcase_add_test(t, test_resolve_cycle);
    tcase_add_test(t, test_load_dir_errors);
    tcase_add_test(t, test_explanation);
    suite_add_tcase(s, t);

    t = tcase_create("text");
    tcase_add_test(t, test_stemmer);
    tcase_add_test(t, test_text_lexical);
    tcase_add_test(t, test_text_meaning);
    tcase_add_test(t, test_text_terse_phrasings);
    tcase_add_test(t, test_text_embedding);
    tcase_add_test(t, test_wordnet);
    tcase_add_test(t, test_wordnet_corrupt);
    tcase_add_test(t, test_wordnet_buffers);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return aik_test_run(capgraph_suite());
}
