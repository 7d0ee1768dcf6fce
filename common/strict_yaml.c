/* SPDX-License-Identifier: MIT */
/*
 * libyaml events -> aik_ynode tree (see strict_yaml.h). The builder recurses
 * once per nesting level; the depth limit is checked before recursing, so the
 * C stack stays bounded by max_depth whatever the input.
 */
#include "common/strict_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/error.h"

typedef struct builder {
    const char *file;
    aik_error *err;
    const aik_yaml_rules *rules;
    yaml_parser_t parser;
    size_t n_nodes;
} builder;

static int vfail(aik_error *err, const char *file, int code, unsigned line, unsigned col, const char *path,
                 const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        if (path && path[0])
            snprintf(err->where, sizeof(err->where), "%s:%u:%u: %s", file, line, col, path);
        else
            snprintf(err->where, sizeof(err->where), "%s:%u:%u", file, line, col);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
    }
    return code;
}

int aik_yaml_fail(aik_error *err, const char *file, int code, unsigned line, unsigned col, const char *path,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = vfail(err, file, code, line, col, path, fmt, ap);
    va_end(ap);
    return code;
}

int aik_yaml_fail_node(const aik_yaml_src *src, const aik_ynode *n, const char *path, const char *fmt, ...)
{
    va_list ap;
    int code;
    va_start(ap, fmt);
    code = vfail(src->err, src->file, -EINVAL, n->line, n->col, path, fmt, ap);
    va_end(ap);
    return code;
}

static int fail_at(builder *b, int code, unsigned line, unsigned col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int fail_at(builder *b, int code, unsigned line, unsigned col, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = vfail(b->err, b->file, code, line, col, path, fmt, ap);
    va_end(ap);
    return code;
}

void aik_yaml_path_key(char *out, size_t size, const char *parent, const char *key)
{
    if (parent[0])
        snprintf(out, size, "%s.%s", parent, key);
    else
        snprintf(out, size, "%s", key);
}

void aik_yaml_path_index(char *out, size_t size, const char *parent, size_t i)
{
    snprintf(out, size, "%s[%zu]", parent, i);
}

void aik_ynode_free(aik_ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        aik_ynode_free(n->items[i]);
    free(n->items);
    free(n->str);
    free(n);
}

const aik_ynode *aik_ynode_get(const aik_ynode *map, const char *key)
{
    if (!map || map->type != AIK_YN_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i += 2)
        if (strcmp(map->items[i]->str, key) == 0)
            return map->items[i + 1];
    return NULL;
}

const char *aik_ynode_type_name(aik_ynode_type type)
{
    return type == AIK_YN_SCALAR ? "a scalar" : type == AIK_YN_SEQ ? "a sequence" : "a mapping";
}

static unsigned mark_line(const yaml_mark_t *m)
{
    return (unsigned)m->line + 1;
}

static unsigned mark_col(const yaml_mark_t *m)
{
    return (unsigned)m->column + 1;
}

static int next_event(builder *b, yaml_event_t *ev, const char *path)
{
    if (!yaml_parser_parse(&b->parser, ev)) {
        const yaml_parser_t *p = &b->parser;
        if (p->error == YAML_MEMORY_ERROR)
            return fail_at(b, -ENOMEM, 1, 1, path, "out of memory in the YAML parser");
        bool context = p->context && !b->rules->position_only;
        return fail_at(b, -EINVAL, mark_line(&p->problem_mark), mark_col(&p->problem_mark), path,
                       "YAML syntax error: %s%s%s", p->problem ? p->problem : "unknown problem",
                       context ? " " : "", context ? p->context : "");
    }
    return 0;
}

static const char *event_anchor(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT: return (const char *)ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT: return (const char *)ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT: return (const char *)ev->data.mapping_start.anchor;
    default: return NULL;
    }
}

static const char *event_tag(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT: return (const char *)ev->data.scalar.tag;
    case YAML_SEQUENCE_START_EVENT: return (const char *)ev->data.sequence_start.tag;
    case YAML_MAPPING_START_EVENT: return (const char *)ev->data.mapping_start.tag;
    default: return NULL;
    }
}

static int push_item(aik_ynode *parent, aik_ynode *child)
{
    aik_ynode **v = realloc(parent->items, (parent->n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    parent->items = v;
    parent->items[parent->n++] = child;
    return 0;
}

/* Key paths of children. Formatting one costs an snprintf per node, so
 * position-only formats, which never report them, skip it. */
static void child_key(const builder *b, char *out, const char *parent, const char *key)
{
    if (b->rules->position_only)
        out[0] = '\0';
    else
        aik_yaml_path_key(out, AIK_YAML_PATH_MAX, parent, key);
}

static void child_index(const builder *b, char *out, const char *parent, size_t i)
{
    if (b->rules->position_only)
        out[0] = '\0';
    else
        aik_yaml_path_index(out, AIK_YAML_PATH_MAX, parent, i);
}

static bool too_deep(const aik_yaml_rules *lim, bool collection, unsigned depth)
{
    if (lim->depth_rule == AIK_YAML_DEPTH_NODES)
        return depth > lim->max_depth;
    return collection && depth >= lim->max_depth;
}

static int build_node(builder *b, const yaml_event_t *ev, unsigned depth, const char *path, aik_ynode **ret);

static int build_seq(builder *b, aik_ynode *n, unsigned depth, const char *path)
{
    for (;;) {
        yaml_event_t e;
        char sub[AIK_YAML_PATH_MAX];
        aik_ynode *child = NULL;
        int r;

        child_index(b, sub, path, n->n);
        r = next_event(b, &e, sub);
        if (r < 0)
            return r;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return 0;
        }
        if (n->n >= b->rules->max_seq) {
            r = fail_at(b, -E2BIG, mark_line(&e.start_mark), mark_col(&e.start_mark), path,
                        "sequence longer than %u items", b->rules->max_seq);
            yaml_event_delete(&e);
            return r;
        }
        r = build_node(b, &e, depth + 1, sub, &child);
        yaml_event_delete(&e);
        if (r < 0)
            return r;
        r = push_item(n, child);
        if (r < 0) {
            aik_ynode_free(child);
            return r;
        }
    }
}

static int build_map(builder *b, aik_ynode *n, unsigned depth, const char *path)
{
    for (;;) {
        yaml_event_t e;
        char sub[AIK_YAML_PATH_MAX];
        aik_ynode *key = NULL, *val = NULL;
        int r;

        r = next_event(b, &e, path);
        if (r < 0)
            return r;
        if (e.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&e);
            return 0;
        }
        if (e.type != YAML_SCALAR_EVENT) {
            r = fail_at(b, -EINVAL, mark_line(&e.start_mark), mark_col(&e.start_mark), path,
                        e.type == YAML_ALIAS_EVENT && !b->rules->position_only ? "aliases are not allowed"
                                                                              : "mapping keys must be plain strings");
            yaml_event_delete(&e);
            return r;
        }
        if (n->n / 2 >= b->rules->max_keys) {
            r = fail_at(b, -E2BIG, mark_line(&e.start_mark), mark_col(&e.start_mark), path,
                        "more than %u keys in a mapping", b->rules->max_keys);
            yaml_event_delete(&e);
            return r;
        }
        r = build_node(b, &e, depth + 1, path, &key);
        yaml_event_delete(&e);
        if (r < 0)
            return r;
        child_key(b, sub, path, key->str);
        for (size_t i = 0; i < n->n; i += 2) {
            if (strcmp(n->items[i]->str, key->str) == 0) {
                r = fail_at(b, -EINVAL, key->line, key->col, sub, "duplicate key '%s' (first at line %u, column %u)",
                            key->str, n->items[i]->line, n->items[i]->col);
                aik_ynode_free(key);
                return r;
            }
        }
        r = push_item(n, key);
        if (r < 0) {
            aik_ynode_free(key);
            return r;
        }
        r = next_event(b, &e, sub);
        if (r < 0)
            return r;
        r = build_node(b, &e, depth + 1, sub, &val);
        yaml_event_delete(&e);
        if (r < 0)
            return r;
        r = push_item(n, val);
        if (r < 0) {
            aik_ynode_free(val);
            return r;
        }
    }
}

/* Build the node that starts with *ev (the caller deletes the event). The
 * order of the checks decides which message a document breaking several
 * rules gets; both parsers' tests pin it. */
static int build_node(builder *b, const yaml_event_t *ev, unsigned depth, const char *path, aik_ynode **ret)
{
    const aik_yaml_rules *lim = b->rules;
    unsigned line = mark_line(&ev->start_mark), col = mark_col(&ev->start_mark);
    aik_ynode *n;
    int r;

    if (ev->type == YAML_ALIAS_EVENT)
        return fail_at(b, -EINVAL, line, col, path, "aliases are not allowed");
    if (ev->type != YAML_SCALAR_EVENT && ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT)
        return fail_at(b, -EINVAL, line, col, path, "unexpected YAML event");
    if (event_anchor(ev))
        return fail_at(b, -EINVAL, line, col, path, "anchors are not allowed");
    if (event_tag(ev))
        return fail_at(b, -EINVAL, line, col, path, "tags are not allowed");
    if (++b->n_nodes > lim->max_nodes)
        return fail_at(b, -E2BIG, line, col, path, "more than %u nodes in the document", lim->max_nodes);
    if (too_deep(lim, ev->type != YAML_SCALAR_EVENT, depth))
        return fail_at(b, -E2BIG, line, col, path, "nesting deeper than %u levels", lim->max_depth);

    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->line = line;
    n->col = col;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->type = AIK_YN_SCALAR;
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (n->len > lim->max_string) {
            r = fail_at(b, -E2BIG, line, col, path, "string longer than %u bytes", lim->max_string);
            goto fail;
        }
        if (memchr(ev->data.scalar.value, '\0', n->len)) {
            r = fail_at(b, -EINVAL, line, col, path, "string contains a NUL byte");
            goto fail;
        }
        n->str = strndup((const char *)ev->data.scalar.value, n->len);
        r = n->str ? 0 : -ENOMEM;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        n->type = AIK_YN_SEQ;
        r = build_seq(b, n, depth, path);
    } else {
        n->type = AIK_YN_MAP;
        r = build_map(b, n, depth, path);
    }
    if (r < 0)
        goto fail;
    *ret = n;
    return 0;
fail:
    aik_ynode_free(n);
    return r;
}

static int build_document(builder *b, const void *data, size_t len, aik_ynode **ret_root)
{
    yaml_event_t ev;
    aik_ynode *root = NULL;
    int r;

    yaml_parser_set_input_string(&b->parser, data, len);
    r = next_event(b, &ev, "");
    if (r < 0)
        return r;
    yaml_event_delete(&ev); /* STREAM_START */
    r = next_event(b, &ev, "");
    if (r < 0)
        return r;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return fail_at(b, -EINVAL, 1, 1, "", "empty document");
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    r = next_event(b, &ev, "");
    if (r < 0)
        return r;
    r = build_node(b, &ev, 0, "", &root);
    yaml_event_delete(&ev);
    if (r < 0)
        return r;
    r = next_event(b, &ev, ""); /* DOCUMENT_END */
    if (r < 0)
        goto fail;
    yaml_event_delete(&ev);
    r = next_event(b, &ev, "");
    if (r < 0)
        goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        r = fail_at(b, -EINVAL, mark_line(&ev.start_mark), mark_col(&ev.start_mark), "",
                    "only one YAML document is allowed");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    *ret_root = root;
    return 0;
fail:
    aik_ynode_free(root);
    return r;
}

int aik_yaml_parse(const char *file, const void *data, size_t len, const aik_yaml_rules *rules,
                   aik_ynode **ret_root, aik_error *err)
{
    builder b = { .file = file ? file : "<yaml>", .err = err, .rules = rules };
    aik_ynode *root = NULL;
    int r;

    if ((!data && len) || !rules || !ret_root)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (!yaml_parser_initialize(&b.parser))
        return aik_fail(err, -ENOMEM, b.file, "cannot initialize the YAML parser");
    r = build_document(&b, data ? data : "", len, &root);
    yaml_parser_delete(&b.parser);
    if (r < 0)
        return r;
    *ret_root = root;
    return 0;
}
