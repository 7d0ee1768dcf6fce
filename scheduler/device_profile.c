/* SPDX-License-Identifier: MIT */
/*
 * Strict YAML device-inventory parser (format: docs/placement.md).
 *
 * Two stages, like capgraph/profile.c: common/strict_yaml.c turns libyaml
 * events into a small tree (refusing anchors, aliases, tags, duplicate keys
 * and oversized input on the way), then a schema walk fills the inventory.
 * Every node keeps its line and column so that each refusal points at the
 * offending text.
 */
#include "scheduler/device_profile.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aik/tensor.h"
#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/error.h"
#include "common/strict_yaml.h"
#include "graph/graph.h"
#include "loader/exec_profile.h"

#define PATH_LEN 160

/* The schema walk reports in the tree builder's format, so that both stages read alike. */
typedef aik_yaml_src ctx;
#define FAILN aik_yaml_fail_node

/* ---------- schema ---------- */

static void path_key(char *out, const char *parent, const char *key)
{
    aik_yaml_path_key(out, PATH_LEN, parent, key);
}

/* Refuse keys outside `allowed` (NULL-terminated) and check `required`. */
static int check_keys(ctx *c, const aik_ynode *map, const char *path, const char *const *allowed,
                      const char *const *required)
{
    char sub[PATH_LEN];
    if (map->type != AIK_YN_MAP)
        return FAILN(c, map, path, "expected a mapping, got %s", aik_ynode_type_name(map->type));
    for (size_t i = 0; i < map->n; i += 2) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, map->items[i]->str) == 0;
        if (!ok) {
            path_key(sub, path, map->items[i]->str);
            return FAILN(c, map->items[i], sub, "unknown key '%s'", map->items[i]->str);
        }
    }
    for (const char *const *q = required; q && *q; q++) {
        bool found = false;
        for (size_t i = 0; i < map->n; i += 2)
            found |= strcmp(*q, map->items[i]->str) == 0;
        if (!found)
            return FAILN(c, map, path, "missing required key '%s'", *q);
    }
    return 0;
}

/* A key check_keys() has verified as required. Never NULL: the sentinel
 * only keeps the compiler's null-dereference analysis honest. */
static const aik_ynode *need(const aik_ynode *map, const char *key)
{
    static const aik_ynode absent = { .type = AIK_YN_MAP };
    const aik_ynode *v = aik_ynode_get(map, key);
    return v ? v : &absent;
}

static int want_scalar(ctx *c, const aik_ynode *n, const char *path)
{
    if (n->type != AIK_YN_SCALAR)
        return FAILN(c, n, path, "expected a scalar, got %s", aik_ynode_type_name(n->type));
    return 0;
}

/* A plain decimal number within [lo, hi] (no hex, inf, nan). */
static int get_number(ctx *c, const aik_ynode *n, const char *path, double lo, double hi, double *ret)
{
    char *end = NULL;
    double v;
    int r = want_scalar(c, n, path);
    if (r < 0)
        return r;
    if (!n->plain || n->len == 0 || n->str[0] < '0' || n->str[0] > '9' ||
        n->str[strspn(n->str, "0123456789.eE+-")] != '\0')
        return FAILN(c, n, path, "expected a number, got '%s'", n->str);
    errno = 0;
    v = strtod(n->str, &end);
    if (errno || *end || !isfinite(v))
        return FAILN(c, n, path, "expected a number, got '%s'", n->str);
    if (v < lo || v > hi)
        return FAILN(c, n, path, "%g is out of range [%g, %g]", v, lo, hi);
    *ret = v;
    return 0;
}

/* "123" bytes or "<integer> <unit>". */
static int get_memory(ctx *c, const aik_ynode *n, const char *path, uint64_t *ret)
{
    static const struct { const char *unit; uint64_t mul; } units[] = {
        { "B", 1 }, { "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 }, { "TiB", 1ull << 40 },
        { "KB", 1000ull }, { "MB", 1000000ull }, { "GB", 1000000000ull }, { "TB", 1000000000000ull },
    };
    uint64_t v = 0, mul = 1;
    size_t dl;
    const char *u;
    int r = want_scalar(c, n, path);
    if (r < 0)
        return r;
    dl = strspn(n->str, "0123456789");
    if (dl == 0 || dl > 19)
        return FAILN(c, n, path, "expected a size such as 1048576 or '512 MiB', got '%s'", n->str);
    for (size_t i = 0; i < dl; i++)
        if (aik_mul_overflow(v, 10, &v) || aik_add_overflow(v, (uint64_t)(n->str[i] - '0'), &v))
            return FAILN(c, n, path, "size '%s' does not fit in 64 bits", n->str);
    u = n->str + dl;
    while (*u == ' ')
        u++;
    if (*u) {
        size_t i;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strcmp(u, units[i].unit) == 0)
                break;
        if (i == sizeof(units) / sizeof(units[0]))
            return FAILN(c, n, path, "unknown size unit '%s' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", u);
        mul = units[i].mul;
    }
    if (aik_mul_overflow(v, mul, &v))
        return FAILN(c, n, path, "size '%s' does not fit in 64 bits", n->str);
    if (v == 0)
        return FAILN(c, n, path, "must be > 0");
    *ret = v;
    return 0;
}

static int get_id(ctx *c, const aik_ynode *n, const char *path, char *out, size_t cap)
{
    int r = want_scalar(c, n, path);
    if (r < 0)
        return r;
    if (n->len == 0 || n->len >= cap)
        return FAILN(c, n, path, "must be 1 to %zu characters", cap - 1);
    if (n->str[strspn(n->str, "abcdefghijklmnopqrstuvwxyz0123456789_-")] != '\0')
        return FAILN(c, n, path, "'%s' may only contain a-z, 0-9, '_' and '-'", n->str);
    memcpy(out, n->str, n->len + 1);
    return 0;
}

/* Bits of dtypes: "all" or a sequence of dtype names. */
static int get_dtypes(ctx *c, const aik_ynode *n, const char *path, uint32_t *ret)
{
    uint32_t bits = 0;
    char sub[PATH_LEN];
    if (n->type == AIK_YN_SCALAR) {
        if (strcmp(n->str, "all") != 0)
            return FAILN(c, n, path, "expected 'all' or a sequence of dtypes, got '%s'", n->str);
        *ret = (1u << AIK_DTYPE_COUNT) - 1;
        return 0;
    }
    if (n->type != AIK_YN_SEQ)
        return FAILN(c, n, path, "expected 'all' or a sequence of dtypes, got %s", aik_ynode_type_name(n->type));
    if (n->n == 0)
        return FAILN(c, n, path, "must list at least one dtype (leave the op out instead)");
    for (size_t i = 0; i < n->n; i++) {
        aik_dtype t;
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        if (n->items[i]->type != AIK_YN_SCALAR)
            return FAILN(c, n->items[i], sub, "expected a dtype name, got %s", aik_ynode_type_name(n->items[i]->type));
        if (aik_dtype_from_name(n->items[i]->str, &t) < 0)
            return FAILN(c, n->items[i], sub, "unknown dtype '%s' (f32, f16, bf16, q8_0, q4_0)", n->items[i]->str);
        if (bits & (1u << t))
            return FAILN(c, n->items[i], sub, "dtype '%s' listed twice", n->items[i]->str);
        bits |= 1u << t;
    }
    *ret = bits;
    return 0;
}

/* Ops a device can be asked to run (TOKENS and WEIGHT are data, not work). */
static bool op_listable(int op)
{
    return op != AIK_OP_NONE && op != AIK_OP_TOKENS && op != AIK_OP_WEIGHT;
}

static int get_ops(ctx *c, const aik_ynode *n, const char *path, uint32_t op_dtypes[32])
{
    char sub[PATH_LEN];
    int r;
    if (n->type == AIK_YN_SCALAR) {
        if (strcmp(n->str, "all") != 0)
            return FAILN(c, n, path, "expected 'all' or a mapping of op: dtypes, got '%s'", n->str);
        for (int op = 0; op < AIK_OP_COUNT; op++)
            if (op_listable(op))
                op_dtypes[op] = (1u << AIK_DTYPE_COUNT) - 1;
        return 0;
    }
    if (n->type != AIK_YN_MAP)
        return FAILN(c, n, path, "expected 'all' or a mapping of op: dtypes, got %s", aik_ynode_type_name(n->type));
    if (n->n == 0)
        return FAILN(c, n, path, "must list at least one op");
    for (size_t i = 0; i < n->n; i += 2) {
        const aik_ynode *k = n->items[i];
        int op;
        path_key(sub, path, k->str);
        for (op = 0; op < AIK_OP_COUNT; op++)
            if (op_listable(op) && strcmp(aik_op_name((aik_op)op), k->str) == 0)
                break;
        if (op == AIK_OP_COUNT)
            return FAILN(c, k, sub, "unknown op '%s'", k->str);
        r = get_dtypes(c, n->items[i + 1], sub, &op_dtypes[op]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int parse_device(ctx *c, const aik_ynode *n, const char *path, aik_inv_device *d)
{
    static const char *const allowed[] = { "id", "kind", "backend", "memory", "gflops", "gbps", "launch_us", "ops",
                                           NULL };
    static const char *const required[] = { "id", "kind", "memory", "gflops", "gbps", "ops", NULL };
    char sub[PATH_LEN];
    const aik_ynode *v;
    int r = check_keys(c, n, path, allowed, required);
    if (r < 0)
        return r;
    memset(d, 0, sizeof(*d));
    d->info.struct_size = sizeof(d->info);

    path_key(sub, path, "id");
    if ((r = get_id(c, need(n, "id"), sub, d->id, sizeof(d->id))) < 0)
        return r;
    snprintf(d->info.name, sizeof(d->info.name), "%s", d->id);

    path_key(sub, path, "kind");
    v = need(n, "kind");
    if ((r = want_scalar(c, v, sub)) < 0)
        return r;
    if (strcmp(v->str, "cpu") == 0) {
        d->info.kind = AIK_BACKEND_CPU;
        d->backend_bit = AIK_BACKEND_BIT_CPU;
    } else if (strcmp(v->str, "gpu") == 0) {
        d->info.kind = AIK_BACKEND_GPU;
        d->backend_bit = AIK_BACKEND_BIT_VULKAN;
    } else if (strcmp(v->str, "npu") == 0) {
        d->info.kind = AIK_BACKEND_NPU;
        d->backend_bit = AIK_BACKEND_BIT_NPU;
    } else {
        return FAILN(c, v, sub, "'%s' is not a device kind (cpu, gpu, npu)", v->str);
    }

    if ((v = aik_ynode_get(n, "backend"))) {
        path_key(sub, path, "backend");
        if ((r = want_scalar(c, v, sub)) < 0)
            return r;
        if (strcmp(v->str, "cpu") == 0)
            d->backend_bit = AIK_BACKEND_BIT_CPU;
        else if (strcmp(v->str, "vulkan") == 0)
            d->backend_bit = AIK_BACKEND_BIT_VULKAN;
        else if (strcmp(v->str, "npu") == 0)
            d->backend_bit = AIK_BACKEND_BIT_NPU;
        else
            return FAILN(c, v, sub, "'%s' is not a backend (cpu, vulkan, npu)", v->str);
    }

    path_key(sub, path, "memory");
    if ((r = get_memory(c, need(n, "memory"), sub, &d->info.memory_bytes)) < 0)
        return r;
    path_key(sub, path, "gflops");
    if ((r = get_number(c, need(n, "gflops"), sub, 1e-3, 1e7, &d->info.declared_gflops)) < 0)
        return r;
    path_key(sub, path, "gbps");
    if ((r = get_number(c, need(n, "gbps"), sub, 1e-3, 1e6, &d->info.declared_gbps)) < 0)
        return r;
    if ((v = aik_ynode_get(n, "launch_us"))) {
        path_key(sub, path, "launch_us");
        if ((r = get_number(c, v, sub, 0, 1e6, &d->launch_us)) < 0)
            return r;
    }
    path_key(sub, path, "ops");
    return get_ops(c, need(n, "ops"), sub, d->info.op_dtypes);
}

static int find_dev(const aik_device_inventory *inv, const char *id)
{
    for (uint32_t i = 0; i < inv->n_devices; i++)
        if (strcmp(inv->dev[i].id, id) == 0)
            return (int)i;
    return -ENOENT;
}

static int parse_link(ctx *c, const aik_ynode *n, const char *path, aik_device_inventory *inv, aik_inv_link *l)
{
    static const char *const allowed[] = { "from", "to", "gbps", "latency_us", NULL };
    static const char *const required[] = { "from", "to", "gbps", NULL };
    const char *keys[2] = { "from", "to" };
    int idx[2];
    char sub[PATH_LEN];
    int r = check_keys(c, n, path, allowed, required);
    if (r < 0)
        return r;
    for (int i = 0; i < 2; i++) {
        const aik_ynode *v = need(n, keys[i]);
        path_key(sub, path, keys[i]);
        if ((r = want_scalar(c, v, sub)) < 0)
            return r;
        idx[i] = find_dev(inv, v->str);
        if (idx[i] < 0)
            return FAILN(c, v, sub, "no device with id '%s'", v->str);
    }
    if (idx[0] == idx[1])
        return FAILN(c, n, path, "a link joins two different devices");
    l->a = (uint32_t)idx[0];
    l->b = (uint32_t)idx[1];
    for (uint32_t i = 0; i < inv->n_links; i++)
        if ((inv->link[i].a == l->a && inv->link[i].b == l->b) || (inv->link[i].a == l->b && inv->link[i].b == l->a))
            return FAILN(c, n, path, "duplicate link between '%s' and '%s' (links are symmetric)",
                         inv->dev[l->a].id, inv->dev[l->b].id);
    path_key(sub, path, "gbps");
    if ((r = get_number(c, need(n, "gbps"), sub, 1e-3, 1e6, &l->gbps)) < 0)
        return r;
    l->latency_us = 0;
    if (aik_ynode_get(n, "latency_us")) {
        path_key(sub, path, "latency_us");
        if ((r = get_number(c, need(n, "latency_us"), sub, 0, 1e7, &l->latency_us)) < 0)
            return r;
    }
    return 0;
}

static int parse_root(ctx *c, const aik_ynode *root, aik_device_inventory *inv)
{
    static const char *const allowed[] = { "schema", "name", "devices", "links", "default_link", NULL };
    static const char *const required[] = { "schema", "name", "devices", NULL };
    char sub[PATH_LEN];
    const aik_ynode *v;
    double d;
    int r = check_keys(c, root, "", allowed, required);
    if (r < 0)
        return r;
    if ((r = get_number(c, need(root, "schema"), "schema", 1, 1, &d)) < 0)
        return r;
    if ((r = get_id(c, need(root, "name"), "name", inv->name, sizeof(inv->name))) < 0)
        return r;

    /* Defaults for device pairs without a link: a PCIe-3 x4-like bus. */
    inv->default_gbps = 4;
    inv->default_latency_us = 20;
    if ((v = aik_ynode_get(root, "default_link"))) {
        static const char *const dl_allowed[] = { "gbps", "latency_us", NULL };
        static const char *const dl_required[] = { "gbps", NULL };
        if ((r = check_keys(c, v, "default_link", dl_allowed, dl_required)) < 0)
            return r;
        if ((r = get_number(c, need(v, "gbps"), "default_link.gbps", 1e-3, 1e6, &inv->default_gbps)) < 0)
            return r;
        if (aik_ynode_get(v, "latency_us") &&
            (r = get_number(c, need(v, "latency_us"), "default_link.latency_us", 0, 1e7, &inv->default_latency_us)) < 0)
            return r;
    }

    v = need(root, "devices");
    if (v->type != AIK_YN_SEQ)
        return FAILN(c, v, "devices", "expected a sequence, got %s", aik_ynode_type_name(v->type));
    if (v->n == 0)
        return FAILN(c, v, "devices", "must list at least one device");
    if (v->n > AIK_INV_MAX_DEVICES)
        return aik_yaml_fail(c->err, c->file, -E2BIG, v->line, v->col, "devices", "more than %u devices",
                             AIK_INV_MAX_DEVICES);
    for (size_t i = 0; i < v->n; i++) {
        aik_inv_device *dv = &inv->dev[i];
        snprintf(sub, sizeof(sub), "devices[%zu]", i);
        if ((r = parse_device(c, v->items[i], sub, dv)) < 0)
            return r;
        if (find_dev(inv, dv->id) >= 0)
            return FAILN(c, v->items[i], sub, "duplicate device id '%s'", dv->id);
        inv->n_devices = (uint32_t)i + 1;
    }

    if ((v = aik_ynode_get(root, "links"))) {
        if (v->type != AIK_YN_SEQ)
            return FAILN(c, v, "links", "expected a sequence, got %s", aik_ynode_type_name(v->type));
        if (v->n > AIK_INV_MAX_LINKS)
            return aik_yaml_fail(c->err, c->file, -E2BIG, v->line, v->col, "links", "more than %u links",
                                 AIK_INV_MAX_LINKS);
        for (size_t i = 0; i < v->n; i++) {
            snprintf(sub, sizeof(sub), "links[%zu]", i);
            if ((r = parse_link(c, v->items[i], sub, inv, &inv->link[i])) < 0)
                return r;
            inv->n_links = (uint32_t)i + 1;
        }
    }
    return 0;
}

/* The tree builder's limits: those documented in device_profile.h. The
 * format has no own cap on sequence length or keys per mapping; the node
 * cap bounds both. Its structural errors have always named the position
 * only, and scripts may match on them, so that stays. */
static const aik_yaml_rules inventory_rules = {
    .max_nodes = AIK_INV_MAX_NODES,
    .max_depth = AIK_INV_MAX_DEPTH,
    .depth_rule = AIK_YAML_DEPTH_NODES,
    .max_seq = AIK_INV_MAX_NODES,
    .max_keys = AIK_INV_MAX_NODES,
    .max_string = AIK_INV_MAX_STRING,
    .position_only = true,
};

int aik_device_inventory_parse(const char *file, const void *data, size_t len, aik_device_inventory *ret_inv,
                               aik_error *err)
{
    ctx c = { .file = file ? file : "<inventory>", .err = err };
    aik_ynode *root = NULL;
    aik_device_inventory *inv = NULL;
    int r;

    if (!data || !ret_inv)
        return aik_fail(err, -EINVAL, c.file, "no data or no output");
    if (len > AIK_INV_MAX_FILE)
        return aik_fail(err, -E2BIG, c.file, "%zu bytes, more than %u", len, AIK_INV_MAX_FILE);
    inv = calloc(1, sizeof(*inv));
    if (!inv)
        return aik_fail(err, -ENOMEM, c.file, "out of memory");
    r = aik_yaml_parse(c.file, data, len, &inventory_rules, &root, err);
    if (r == 0)
        r = parse_root(&c, root, inv);
    if (r == 0)
        *ret_inv = *inv;
    else if (r == -ENOMEM && err && !err->message[0])
        aik_fail(err, r, c.file, "out of memory");
    aik_ynode_free(root);
    free(inv);
    return r;
}

int aik_device_inventory_load(const char *path, aik_device_inventory *ret_inv, aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int r = aik_read_file(path, AIK_INV_MAX_FILE, &data, &len);
    if (r < 0)
        return aik_fail(err, r, path, "cannot read: %s", strerror(-r));
    r = aik_device_inventory_parse(path, data, len, ret_inv, err);
    free(data);
    return r;
}

int aik_device_inventory_find(const aik_device_inventory *inv, const char *id)
{
    static const char *const kinds[] = { "cpu", "gpu", "npu" };
    int i = find_dev(inv, id);
    if (i >= 0)
        return i;
    for (uint32_t k = 0; k < 3; k++)
        if (strcmp(id, kinds[k]) == 0)
            for (uint32_t d = 0; d < inv->n_devices; d++)
                if (inv->dev[d].info.kind == k)
                    return (int)d;
    return -ENOENT;
}

void aik_device_inventory_link(const aik_device_inventory *inv, uint32_t a, uint32_t b, double *ret_gbps,
                               double *ret_latency_us)
{
    if (a == b) {
        *ret_gbps = INFINITY;
        *ret_latency_us = 0;
        return;
    }
    for (uint32_t i = 0; i < inv->n_links; i++)
        if ((inv->link[i].a == a && inv->link[i].b == b) || (inv->link[i].a == b && inv->link[i].b == a)) {
            *ret_gbps = inv->link[i].gbps;
            *ret_latency_us = inv->link[i].latency_us;
            return;
        }
    *ret_gbps = inv->default_gbps;
    *ret_latency_us = inv->default_latency_us;
}
