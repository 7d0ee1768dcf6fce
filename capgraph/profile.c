/* SPDX-License-Identifier: MIT */
/*
 * Semantic-profile parser. Two stages, so that each check is in one place:
 *  1. libyaml events -> a small tree (aik_ynode) with positions, built by
 *     common/strict_yaml.c under the AIK_PROFILE_MAX_* limits: depth,
 *     sequence length, keys per mapping, string length and node count are
 *     capped, duplicate keys are detected (libyaml accepts them silently)
 *     and anchors, aliases and tags are refused (aliases make "billion
 *     laughs" documents; we need none).
 *  2. A schema walk driven by tables of { key, node type, handler, offset }
 *     (Netplan style) that decodes into aik_profile. Unknown keys, wrong
 *     types and missing required keys are errors here.
 * Every error carries FILE:LINE:COLUMN and the key path.
 */
#include "capgraph/profile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aik/tensor.h"
#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/error.h"
#include "common/strict_yaml.h"

/* Key paths in stage 2 may be as long as the tree builder's. */
#define PATH_MAX_LEN AIK_YAML_PATH_MAX

/* Stage 1's limits: those documented in capgraph/profile.h. */
static const aik_yaml_rules profile_rules = {
    .max_nodes = AIK_PROFILE_MAX_NODES,
    .max_depth = AIK_PROFILE_MAX_DEPTH,
    .depth_rule = AIK_YAML_DEPTH_COLLECTIONS,
    .max_seq = AIK_PROFILE_MAX_SEQ,
    .max_keys = AIK_PROFILE_MAX_KEYS,
    .max_string = AIK_PROFILE_MAX_STRING,
};

/* Stage 2 reports in the tree builder's format, so that both stages read alike. */
typedef aik_yaml_src ctx;
#define FAIL_NODE aik_yaml_fail_node

static void path_key(char *out, const char *parent, const char *key)
{
    aik_yaml_path_key(out, PATH_MAX_LEN, parent, key);
}

static void path_index(char *out, const char *parent, size_t i)
{
    aik_yaml_path_index(out, PATH_MAX_LEN, parent, i);
}

/* ---------- stage 2: schema walk ---------- */

typedef int (*field_fn)(ctx *c, const aik_ynode *n, void *dst, const char *path);

typedef struct field {
    const char *key;
    aik_ynode_type type;
    field_fn fn;
    size_t off;
    bool required;
    const char *what; /* for "expected ..." */
} field;

static int walk_map(ctx *c, const aik_ynode *map, const field *fields, void *base, const char *path)
{
    int r;

    if (map->type != AIK_YN_MAP)
        return FAIL_NODE(c, map, path, "expected a mapping, got %s", aik_ynode_type_name(map->type));
    for (size_t i = 0; i < map->n; i += 2) {
        const aik_ynode *k = map->items[i], *v = map->items[i + 1];
        const field *f = NULL;
        char sub[PATH_MAX_LEN];

        path_key(sub, path, k->str);
        for (const field *g = fields; g->key; g++)
            if (strcmp(g->key, k->str) == 0)
                f = g;
        if (!f)
            return FAIL_NODE(c, k, sub, "unknown key '%s'", k->str);
        if (v->type != f->type)
            return FAIL_NODE(c, v, sub, "expected %s, got %s", f->what, aik_ynode_type_name(v->type));
        r = f->fn(c, v, (char *)base + f->off, sub);
        if (r < 0)
            return r;
    }
    for (const field *g = fields; g->key; g++)
        if (g->required && !aik_ynode_get(map, g->key))
            return FAIL_NODE(c, map, path, "missing required key '%s'", g->key);
    return 0;
}

/* Scalars */

static int h_string(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    char **out = dst;
    if (n->len == 0)
        return FAIL_NODE(c, n, path, "must not be empty");
    free(*out);
    *out = strdup(n->str);
    return *out ? 0 : -ENOMEM;
}

static bool name_ok(const char *s, bool id)
{
    size_t len = strlen(s);
    if (len == 0 || len > 64)
        return false;
    if (id) {
        /* [a-z][a-z0-9_]* ( . [a-z][a-z0-9_]* )* */
        bool seg_start = true;
        for (const char *p = s; *p; p++) {
            if (seg_start) {
                if (*p < 'a' || *p > 'z')
                    return false;
                seg_start = false;
            } else if (*p == '.') {
                seg_start = true;
            } else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
                return false;
            }
        }
        return !seg_start;
    }
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

bool aik_capability_id_valid(const char *id)
{
    return id && name_ok(id, true);
}

static int h_module_name(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    if (!name_ok(n->str, false))
        return FAIL_NODE(c, n, path, "'%s' is not a module name ([a-z0-9][a-z0-9._-]*, at most 64 bytes)", n->str);
    return h_string(c, n, dst, path);
}

static int h_cap_id(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    if (!name_ok(n->str, true))
        return FAIL_NODE(c, n, path, "'%s' is not a capability id (dot-separated [a-z][a-z0-9_]* words, at most 64 bytes)",
                         n->str);
    return h_string(c, n, dst, path);
}

static int h_semver(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_error e;
    aik_error_clear(&e);
    if (aik_semver_parse(n->str, dst, &e) < 0)
        return FAIL_NODE(c, n, path, "%s", e.message);
    return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (aik_mul_overflow(v, 10, &v) || aik_add_overflow(v, (uint64_t)(*s - '0'), &v))
            return -ERANGE;
    }
    *ret = v;
    return 0;
}

static int h_schema(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    uint64_t v;
    if (!n->plain || parse_u64(n->str, &v) < 0)
        return FAIL_NODE(c, n, path, "expected an integer, got '%s'", n->str);
    if (v != AIK_PROFILE_SCHEMA_VERSION)
        return FAIL_NODE(c, n, path, "unsupported schema version %s (this parser reads %d)", n->str,
                         AIK_PROFILE_SCHEMA_VERSION);
    *(uint32_t *)dst = (uint32_t)v;
    return 0;
}

/* Indexed by aik_module_kind - 1 (the ABI numbers kinds from 1). */
static const char *const kind_names[] = { "architecture", "capability", "tokenizer", "backend" };

const char *aik_module_kind_name(aik_module_kind k)
{
    return k >= 1 && (unsigned)k <= sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k - 1] : "?";
}

static int h_kind(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (strcmp(n->str, kind_names[i]) == 0) {
            *(aik_module_kind *)dst = (aik_module_kind)(i + 1);
            return 0;
        }
    }
    return FAIL_NODE(c, n, path, "'%s' is not a module kind (architecture, capability, tokenizer, backend)", n->str);
}

/* "123" (bytes) or "<integer> <unit>" with unit B, KiB, MiB, GiB, TiB, KB, MB, GB, TB. */
static int h_memory(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    static const struct { const char *unit; uint64_t mul; } units[] = {
        { "B", 1 }, { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
        { "KB", 1000ull }, { "MB", 1000000ull }, { "GB", 1000000000ull }, { "TB", 1000000000000ull },
    };
    char num[32];
    const char *s = n->str, *u;
    size_t dl = strspn(s, "0123456789");
    uint64_t v, mul = 1;
    int r;

    if (dl == 0 || dl >= sizeof(num))
        return FAIL_NODE(c, n, path, "expected a size such as 123456 or '64 MiB', got '%s'", s);
    memcpy(num, s, dl);
    num[dl] = '\0';
    r = parse_u64(num, &v);
    if (r < 0)
        return FAIL_NODE(c, n, path, "size '%s' does not fit in 64 bits", s);
    u = s + dl;
    while (*u == ' ')
        u++;
    if (*u) {
        size_t i;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(u, units[i].unit) == 0)
                break;
        if (i == sizeof(units) / sizeof(units[0]))
            return FAIL_NODE(c, n, path, "unknown size unit '%s' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", u);
        mul = units[i].mul;
    }
    if (aik_mul_overflow(v, mul, &v))
        return FAIL_NODE(c, n, path, "size '%s' does not fit in 64 bits", s);
    *(uint64_t *)dst = v;
    return 0;
}

static int h_tokens_per_s(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    char *end = NULL;
    double v;

    /* digits, '.', exponent: no hex floats, no inf/nan */
    if (!n->plain || n->str[0] < '0' || n->str[0] > '9' || n->str[strspn(n->str, "0123456789.eE+-")] != '\0')
        return FAIL_NODE(c, n, path, "expected a number, got '%s'", n->str);
    errno = 0;
    v = strtod(n->str, &end);
    if (errno || *end || !isfinite(v))
        return FAIL_NODE(c, n, path, "expected a number, got '%s'", n->str);
    if (v > 1e9)
        return FAIL_NODE(c, n, path, "%s tokens/s is not plausible (at most 1e9)", n->str);
    *(double *)dst = v;
    return 0;
}

static int h_layer_index(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    uint64_t v;
    if (!n->plain || parse_u64(n->str, &v) < 0)
        return FAIL_NODE(c, n, path, "expected a layer index (non-negative integer), got '%s'", n->str);
    if (v > 65535)
        return FAIL_NODE(c, n, path, "layer index %s is larger than 65535", n->str);
    *(int64_t *)dst = (int64_t)v;
    return 0;
}

static int h_sha256(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    if (n->len != 64 || aik_sha256_from_hex(n->str, dst) < 0)
        return FAIL_NODE(c, n, path, "expected 64 hexadecimal digits (SHA-256)");
    return 0;
}

static int h_file_name(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    if (n->len == 0 || n->len > 255 || strchr(n->str, '/') || strcmp(n->str, ".") == 0 || strcmp(n->str, "..") == 0)
        return FAIL_NODE(c, n, path, "'%s' is not a plain file name (no '/', not '.' or '..', 1..255 bytes)", n->str);
    for (const char *p = n->str; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return FAIL_NODE(c, n, path, "file name contains a control character");
    return h_string(c, n, dst, path);
}

/* Sequences */

static void strlist_free(aik_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int h_strlist(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_strlist *l = dst;

    strlist_free(l);
    if (n->n == 0)
        return 0;
    l->v = calloc(n->n, sizeof(char *));
    if (!l->v)
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        const aik_ynode *it = n->items[i];
        char sub[PATH_MAX_LEN];
        path_index(sub, path, i);
        if (it->type != AIK_YN_SCALAR)
            return FAIL_NODE(c, it, sub, "expected a string, got %s", aik_ynode_type_name(it->type));
        if (it->len == 0)
            return FAIL_NODE(c, it, sub, "must not be empty");
        l->v[i] = strdup(it->str);
        if (!l->v[i])
            return -ENOMEM;
        l->n = i + 1;
    }
    return 0;
}

/* Name table for a bit set; lookup returns the bit or 0. */
typedef int (*bit_lookup)(const char *name, uint32_t *ret_bit);

static int backend_lookup(const char *name, uint32_t *ret_bit)
{
    if (strcmp(name, "cpu") == 0)
        *ret_bit = AIK_BACKEND_BIT_CPU;
    else if (strcmp(name, "vulkan") == 0)
        *ret_bit = AIK_BACKEND_BIT_VULKAN;
    else if (strcmp(name, "npu") == 0)
        *ret_bit = AIK_BACKEND_BIT_NPU;
    else
        return -EINVAL;
    return 0;
}

static int dtype_lookup(const char *name, uint32_t *ret_bit)
{
    aik_dtype t;
    if (aik_dtype_from_name(name, &t) < 0)
        return -EINVAL;
    *ret_bit = 1u << t;
    return 0;
}

/* CPU feature names are the loader's (loader/exec_profile.c), so that a
 * profile and the host check agree on them. */
static int cpu_lookup(const char *name, uint32_t *ret_bit)
{
    return aik_cpu_feature_from_name(name, ret_bit);
}

static int bits_from_seq(ctx *c, const aik_ynode *n, uint32_t *dst, const char *path, bit_lookup fn, const char *what)
{
    uint32_t bits = 0;
    for (size_t i = 0; i < n->n; i++) {
        const aik_ynode *it = n->items[i];
        char sub[PATH_MAX_LEN];
        uint32_t b;
        path_index(sub, path, i);
        if (it->type != AIK_YN_SCALAR)
            return FAIL_NODE(c, it, sub, "expected a string, got %s", aik_ynode_type_name(it->type));
        if (fn(it->str, &b) < 0)
            return FAIL_NODE(c, it, sub, "unknown %s '%s'", what, it->str);
        if (bits & b)
            return FAIL_NODE(c, it, sub, "%s '%s' is listed twice", what, it->str);
        bits |= b;
    }
    *dst = bits;
    return 0;
}

static int h_backends(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    int r = bits_from_seq(c, n, dst, path, backend_lookup, "backend");
    if (r == 0 && *(uint32_t *)dst == 0)
        return FAIL_NODE(c, n, path, "at least one backend is needed");
    return r;
}

static int h_dtypes(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    return bits_from_seq(c, n, dst, path, dtype_lookup, "dtype");
}

static int h_cpu_features(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    return bits_from_seq(c, n, dst, path, cpu_lookup, "CPU feature");
}

/* Generic "sequence of mappings" into a malloc'ed array. */
static int seq_of_maps(ctx *c, const aik_ynode *n, const char *path, const field *fields, size_t elem, void **arr,
                       size_t *count, void (*init)(void *))
{
    if (n->n == 0)
        return 0;
    *arr = calloc(n->n, elem);
    if (!*arr)
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        char sub[PATH_MAX_LEN];
        void *e = (char *)*arr + i * elem;
        int r;
        path_index(sub, path, i);
        if (init)
            init(e);
        *count = i + 1; /* counted before filling so that cleanup frees partial items */
        r = walk_map(c, n->items[i], fields, e, sub);
        if (r < 0)
            return r;
    }
    return 0;
}

#define F(k, t, fn, st, m, req, what) { k, t, fn, offsetof(st, m), req, what }

static const field cap_fields[] = {
    F("id", AIK_YN_SCALAR, h_cap_id, aik_capability, id, true, "a string"),
    F("version", AIK_YN_SCALAR, h_semver, aik_capability, version, true, "a string"),
    F("description", AIK_YN_SCALAR, h_string, aik_capability, description, false, "a string"),
    F("intents", AIK_YN_SEQ, h_strlist, aik_capability, intents, false, "a sequence of strings"),
    F("languages", AIK_YN_SEQ, h_strlist, aik_capability, languages, false, "a sequence of strings"),
    F("domains", AIK_YN_SEQ, h_strlist, aik_capability, domains, false, "a sequence of strings"),
    { NULL, 0, NULL, 0, false, NULL },
};

static int h_capabilities(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_profile *p = dst;
    int r;

    if (n->n == 0)
        return FAIL_NODE(c, n, path, "a module provides at least one capability");
    r = seq_of_maps(c, n, path, cap_fields, sizeof(aik_capability), (void **)&p->provides, &p->n_provides, NULL);
    if (r < 0)
        return r;
    for (size_t i = 1; i < p->n_provides; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->provides[i].id, p->provides[j].id) == 0) {
                char sub[PATH_MAX_LEN];
                path_index(sub, path, i);
                return FAIL_NODE(c, n->items[i], sub, "capability '%s' is already provided by %s[%zu]",
                                 p->provides[i].id, path, j);
            }
    return 0;
}

static int h_range(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_requirement *q = dst;
    aik_error e;
    aik_error_clear(&e);
    if (aik_semver_range_parse(n->str, &q->range, &e) < 0)
        return FAIL_NODE(c, n, path, "%s", e.message);
    return h_string(c, n, &q->range_text, path);
}

static const field req_fields[] = {
    F("capability", AIK_YN_SCALAR, h_cap_id, aik_requirement, id, true, "a string"),
    { "version", AIK_YN_SCALAR, h_range, 0, true, "a string" },
    { NULL, 0, NULL, 0, false, NULL },
};

static int h_requires(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_profile *p = dst;
    int r = seq_of_maps(c, n, path, req_fields, sizeof(aik_requirement), (void **)&p->requires, &p->n_requires, NULL);
    if (r < 0)
        return r;
    for (size_t i = 1; i < p->n_requires; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->requires[i].id, p->requires[j].id) == 0) {
                char sub[PATH_MAX_LEN];
                path_index(sub, path, i);
                return FAIL_NODE(c, n->items[i], sub, "capability '%s' is already required by %s[%zu]",
                                 p->requires[i].id, path, j);
            }
    return 0;
}

static const field payload_fields[] = {
    F("file", AIK_YN_SCALAR, h_file_name, aik_payload_ref, file, true, "a string"),
    F("sha256", AIK_YN_SCALAR, h_sha256, aik_payload_ref, sha256, false, "a string"),
    { NULL, 0, NULL, 0, false, NULL },
};

static int walk_payload(ctx *c, const aik_ynode *n, aik_payload_ref *ref, const char *path)
{
    int r = walk_map(c, n, payload_fields, ref, path);
    if (r == 0)
        ref->has_sha256 = aik_ynode_get(n, "sha256") != NULL;
    return r;
}

static int h_payload(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_profile *p = dst;
    int r;

    if (n->n == 0)
        return 0;
    p->payload = calloc(n->n, sizeof(*p->payload));
    if (!p->payload)
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        char sub[PATH_MAX_LEN];
        path_index(sub, path, i);
        p->n_payload = i + 1;
        r = walk_payload(c, n->items[i], &p->payload[i], sub);
        if (r < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->payload[i].file, p->payload[j].file) == 0)
                return FAIL_NODE(c, n->items[i], sub, "file '%s' is already listed in %s[%zu]", p->payload[i].file, path, j);
    }
    return 0;
}

static int h_adapter(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_profile *p = dst;
    int r = walk_payload(c, n, &p->adapter, path);
    if (r == 0)
        p->has_adapter = true;
    return r;
}

static const field prot_fields[] = {
    F("layer", AIK_YN_SCALAR, h_layer_index, aik_protected_part, layer, false, "a scalar"),
    F("tensor", AIK_YN_SCALAR, h_string, aik_protected_part, tensor, false, "a string"),
    F("reason", AIK_YN_SCALAR, h_string, aik_protected_part, reason, true, "a string"),
    { NULL, 0, NULL, 0, false, NULL },
};

static void prot_init(void *e)
{
    ((aik_protected_part *)e)->layer = -1;
}

static int h_protected(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_profile *p = dst;
    int r = seq_of_maps(c, n, path, prot_fields, sizeof(aik_protected_part), (void **)&p->protected_parts,
                        &p->n_protected, prot_init);
    if (r < 0)
        return r;
    for (size_t i = 0; i < p->n_protected; i++) {
        char sub[PATH_MAX_LEN];
        path_index(sub, path, i);
        if ((p->protected_parts[i].layer >= 0) == (p->protected_parts[i].tensor != NULL))
            return FAIL_NODE(c, n->items[i], sub, "give exactly one of 'layer' or 'tensor'");
    }
    return 0;
}

static int h_parents(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    aik_profile *p = dst;
    if (n->n == 0)
        return 0;
    p->parents = calloc(n->n, sizeof(*p->parents));
    if (!p->parents)
        return -ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        const aik_ynode *it = n->items[i];
        char sub[PATH_MAX_LEN];
        int r;
        path_index(sub, path, i);
        if (it->type != AIK_YN_SCALAR)
            return FAIL_NODE(c, it, sub, "expected a string, got %s", aik_ynode_type_name(it->type));
        r = h_sha256(c, it, p->parents[i], sub);
        if (r < 0)
            return r;
        p->n_parents = i + 1;
    }
    return 0;
}

static const field lineage_fields[] = {
    { "parents", AIK_YN_SEQ, h_parents, 0, true, "a sequence of strings" },
    { NULL, 0, NULL, 0, false, NULL },
};

static int h_lineage(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    return walk_map(c, n, lineage_fields, dst, path);
}

static const field exec_fields[] = {
    F("memory", AIK_YN_SCALAR, h_memory, aik_exec_profile, memory_bytes, true, "a size"),
    F("backends", AIK_YN_SEQ, h_backends, aik_exec_profile, backends, true, "a sequence of strings"),
    F("dtypes", AIK_YN_SEQ, h_dtypes, aik_exec_profile, dtypes, false, "a sequence of strings"),
    F("cpu_features", AIK_YN_SEQ, h_cpu_features, aik_exec_profile, cpu_features, false, "a sequence of strings"),
    F("tokens_per_s", AIK_YN_SCALAR, h_tokens_per_s, aik_exec_profile, expected_tokens_per_s, false, "a number"),
    { NULL, 0, NULL, 0, false, NULL },
};

static int h_execution(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    return walk_map(c, n, exec_fields, dst, path);
}

static const field module_fields[] = {
    F("name", AIK_YN_SCALAR, h_module_name, aik_profile, name, true, "a string"),
    F("version", AIK_YN_SCALAR, h_semver, aik_profile, version, true, "a string"),
    F("kind", AIK_YN_SCALAR, h_kind, aik_profile, kind, true, "a string"),
    F("description", AIK_YN_SCALAR, h_string, aik_profile, description, false, "a string"),
    F("base", AIK_YN_SCALAR, h_cap_id, aik_profile, base, false, "a string"),
    { "adapter", AIK_YN_MAP, h_adapter, 0, false, "a mapping" },
    { NULL, 0, NULL, 0, false, NULL },
};

static int h_module(ctx *c, const aik_ynode *n, void *dst, const char *path)
{
    /* Fields of module: live directly in aik_profile (dst is the profile). */
    return walk_map(c, n, module_fields, dst, path);
}

static const field root_fields[] = {
    F("schema", AIK_YN_SCALAR, h_schema, aik_profile, schema, true, "an integer"),
    { "module", AIK_YN_MAP, h_module, 0, true, "a mapping" },
    { "capabilities", AIK_YN_SEQ, h_capabilities, 0, true, "a sequence of mappings" },
    { "requires", AIK_YN_SEQ, h_requires, 0, false, "a sequence of mappings" },
    F("execution", AIK_YN_MAP, h_execution, aik_profile, exec, true, "a mapping"),
    { "lineage", AIK_YN_MAP, h_lineage, 0, false, "a mapping" },
    { "payload", AIK_YN_SEQ, h_payload, 0, false, "a sequence of mappings" },
    { "protected", AIK_YN_SEQ, h_protected, 0, false, "a sequence of mappings" },
    { NULL, 0, NULL, 0, false, NULL },
};

/* Rules that relate several keys. */
static int check_semantics(ctx *c, const aik_ynode *root, aik_profile *p)
{
    const aik_ynode *module = aik_ynode_get(root, "module");
    const aik_ynode *base = aik_ynode_get(module, "base");

    if (p->kind == AIK_MODULE_CAPABILITY) {
        bool found = false;
        if (!base)
            return FAIL_NODE(c, module, "module", "a capability module must name its base model ('base')");
        for (size_t i = 0; i < p->n_requires; i++)
            if (strcmp(p->requires[i].id, p->base) == 0)
                found = true;
        if (!found)
            return FAIL_NODE(c, base, "module.base", "base '%s' must also be listed in 'requires' with a version range",
                             p->base);
    } else if (base) {
        return FAIL_NODE(c, base, "module.base", "only capability modules apply to a base model (kind is %s)",
                         aik_module_kind_name(p->kind));
    } else if (aik_ynode_get(module, "adapter")) {
        return FAIL_NODE(c, aik_ynode_get(module, "adapter"), "module.adapter",
                         "only capability modules carry an adapter");
    }
    for (size_t i = 0; i < p->n_requires; i++) {
        for (size_t j = 0; j < p->n_provides; j++) {
            if (strcmp(p->requires[i].id, p->provides[j].id) == 0) {
                const aik_ynode *rq = aik_ynode_get(root, "requires");
                char sub[PATH_MAX_LEN];
                path_index(sub, "requires", i);
                return FAIL_NODE(c, rq->items[i], sub, "module requires capability '%s' that it provides itself",
                                 p->requires[i].id);
            }
        }
    }
    return 0;
}

static void payload_free(aik_payload_ref *r)
{
    free(r->file);
}

void aik_profile_free(aik_profile *p)
{
    if (!p)
        return;
    free(p->source);
    free(p->name);
    free(p->description);
    free(p->base);
    payload_free(&p->adapter);
    for (size_t i = 0; i < p->n_provides; i++) {
        free(p->provides[i].id);
        free(p->provides[i].description);
        strlist_free(&p->provides[i].intents);
        strlist_free(&p->provides[i].languages);
        strlist_free(&p->provides[i].domains);
    }
    free(p->provides);
    for (size_t i = 0; i < p->n_requires; i++) {
        free(p->requires[i].id);
        free(p->requires[i].range_text);
    }
    free(p->requires);
    free(p->parents);
    for (size_t i = 0; i < p->n_payload; i++)
        payload_free(&p->payload[i]);
    free(p->payload);
    for (size_t i = 0; i < p->n_protected; i++) {
        free(p->protected_parts[i].tensor);
        free(p->protected_parts[i].reason);
    }
    free(p->protected_parts);
    free(p);
}

int aik_profile_parse(const char *name, const void *data, size_t len, aik_profile **ret_profile, aik_error *err)
{
    ctx c = { .file = name ? name : "<profile>", .err = err };
    aik_ynode *root = NULL;
    aik_profile *p = NULL;
    int r;

    if ((!data && len) || !ret_profile)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (len > AIK_PROFILE_MAX_FILE)
        return aik_fail(err, -EFBIG, c.file, "profile is %zu bytes, larger than the limit of %u", len,
                        AIK_PROFILE_MAX_FILE);
    r = aik_yaml_parse(c.file, data, len, &profile_rules, &root, err);
    if (r < 0)
        goto fail;

    p = calloc(1, sizeof(*p));
    if (!p) {
        r = -ENOMEM;
        goto fail;
    }
    p->source = strdup(c.file);
    if (!p->source) {
        r = -ENOMEM;
        goto fail;
    }
    if (root->type != AIK_YN_MAP) {
        r = FAIL_NODE(&c, root, "", "expected a mapping at the top level, got %s", aik_ynode_type_name(root->type));
        goto fail;
    }
    r = walk_map(&c, root, root_fields, p, "");
    if (r < 0)
        goto fail;
    r = check_semantics(&c, root, p);
    if (r < 0)
        goto fail;
    aik_ynode_free(root);
    *ret_profile = p;
    return 0;
fail:
    if (r == -ENOMEM && err && err->code != -ENOMEM)
        aik_fail(err, -ENOMEM, c.file, "out of memory");
    aik_ynode_free(root);
    aik_profile_free(p);
    return r;
}

int aik_profile_load(const char *path, aik_profile **ret_profile, aik_error *err)
{
    const char *base;
    char *data = NULL;
    size_t len = 0;
    int r;

    if (!path || !ret_profile)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    r = aik_read_file(path, AIK_PROFILE_MAX_FILE, &data, &len);
    if (r == -EFBIG)
        return aik_fail(err, r, base, "profile is larger than the limit of %u bytes", AIK_PROFILE_MAX_FILE);
    if (r < 0)
        return aik_fail(err, r, base, "cannot read: %s", strerror(-r));
    r = aik_profile_parse(base, data, len, ret_profile, err);
    free(data);
    return r;
}

const aik_capability *aik_profile_find_capability(const aik_profile *p, const char *id, const aik_semver_range *range)
{
    for (size_t i = 0; p && id && i < p->n_provides; i++)
        if (strcmp(p->provides[i].id, id) == 0 && (!range || aik_semver_range_match(range, &p->provides[i].version)))
            return &p->provides[i];
    return NULL;
}
