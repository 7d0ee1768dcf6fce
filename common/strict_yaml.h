/* SPDX-License-Identifier: MIT */
/*
 * Strict YAML documents as a tree with positions.
 *
 * libyaml turns bytes into events; this turns the events of exactly one
 * document into a small tree (aik_ynode) in which every node keeps its line
 * and column, so that a schema walk on top (capgraph/profile.c,
 * scheduler/device_profile.c) can point each refusal at the offending text.
 * On the way it refuses what none of our formats need and what makes hostile
 * input expensive: aliases ("billion laughs"), anchors, tags, duplicate keys
 * (libyaml accepts them silently), non-scalar keys, NUL bytes in scalars, a
 * second document, and anything over the caller's structural limits.
 *
 * Errors are written to an aik_error with where = "FILE:LINE:COL: key.path"
 * (or "FILE:LINE:COL" at the top level) and a message saying which check
 * failed. The limits differ between formats, so the caller passes them in
 * (aik_yaml_rules).
 */
#ifndef AIK_COMMON_STRICT_YAML_H
#define AIK_COMMON_STRICT_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "aik/common.h"

/* Longest key path the tree builder reports ("a.b[3].c"); longer ones are
 * truncated, never overflowed. */
#define AIK_YAML_PATH_MAX 192

typedef enum aik_ynode_type { AIK_YN_SCALAR, AIK_YN_SEQ, AIK_YN_MAP } aik_ynode_type;

typedef struct aik_ynode {
    aik_ynode_type type;
    unsigned line, col;       /* 1-based position of the node's first character */
    char *str;                /* scalar: value, NUL-terminated (contains no other NUL); else NULL */
    size_t len;               /* scalar: strlen(str) */
    bool plain;               /* scalar: written unquoted (so "1" and 1 can be told apart) */
    struct aik_ynode **items; /* seq: items; map: key0, value0, key1, value1, ... (keys are scalars) */
    size_t n;                 /* entries in items (2 per mapping pair) */
} aik_ynode;

/* How max_depth counts. The two parsers grew different conventions and their
 * documented limits are kept exactly. Depth is 0 for the root node. */
typedef enum aik_yaml_depth_rule {
    /* A collection at depth >= max_depth is refused, scalars never: at most
     * max_depth collections are nested inside each other. */
    AIK_YAML_DEPTH_COLLECTIONS,
    /* Any node (scalar or collection) at depth > max_depth is refused. */
    AIK_YAML_DEPTH_NODES,
} aik_yaml_depth_rule;

/* What one format allows: its structural limits (all required; a format
 * with no own cap on sequence length or keys per mapping passes max_nodes,
 * which bounds both anyway) and how much its errors say. */
typedef struct aik_yaml_rules {
    unsigned max_nodes;  /* scalars + collections (keys included) in the document */
    unsigned max_depth;  /* see depth_rule */
    aik_yaml_depth_rule depth_rule;
    unsigned max_seq;    /* items in one sequence */
    unsigned max_keys;   /* keys in one mapping */
    unsigned max_string; /* bytes in one scalar */
    /* Errors give FILE:LINE:COL only: no key path, no libyaml context after
     * a syntax error, and an alias used as a mapping key is reported as a
     * non-plain key. The inventory format has always reported this way;
     * false (detailed) is the default. */
    bool position_only;
} aik_yaml_rules;

/* Parse data[0..len) (need not be NUL-terminated; data may be NULL when len
 * is 0) as one strict YAML document under rules and return its tree in
 * *ret_root (free with aik_ynode_free()). file names the input in
 * err->where. Returns 0, -EINVAL (syntax, refused construct, empty input,
 * more than one document), -E2BIG (a limit) or -ENOMEM; err (may be NULL)
 * says where and why, except that a failed allocation of the tree itself
 * returns -ENOMEM with err untouched (the callers add "out of memory"). */
int aik_yaml_parse(const char *file, const void *data, size_t len, const aik_yaml_rules *rules,
                   aik_ynode **ret_root, aik_error *err);

/* Free a tree from aik_yaml_parse(). Accepts NULL. */
void aik_ynode_free(aik_ynode *n);

/* Value of key in map, or NULL when absent or map is NULL or not a mapping. */
const aik_ynode *aik_ynode_get(const aik_ynode *map, const char *key);

/* "a scalar", "a sequence" or "a mapping", for "expected X, got Y" messages. */
const char *aik_ynode_type_name(aik_ynode_type type);

/* Fill err (may be NULL) in the tree builder's format: code, where =
 * "FILE:LINE:COL: PATH" ("FILE:LINE:COL" when path is NULL or empty) and the
 * formatted message; return code, so that schema walks can write
 * `return aik_yaml_fail(...)`. code must be negative. */
int aik_yaml_fail(aik_error *err, const char *file, int code, unsigned line, unsigned col, const char *path,
                  const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* The input a schema walk reports on: its name for err->where and the
 * caller's error record (err may be NULL). */
typedef struct aik_yaml_src {
    const char *file;
    aik_error *err;
} aik_yaml_src;

/* aik_yaml_fail() with -EINVAL at node n's position: the schema walk's
 * "this value is wrong". Returns -EINVAL. */
int aik_yaml_fail_node(const aik_yaml_src *src, const aik_ynode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Key paths: out = "parent.key" ("key" when parent is empty) and
 * out = "parent[i]", truncated to size bytes including the NUL. */
void aik_yaml_path_key(char *out, size_t size, const char *parent, const char *key);
void aik_yaml_path_index(char *out, size_t size, const char *parent, size_t i);

#endif
