/* SPDX-License-Identifier: MIT */
/*
 * Semantic profiles: the YAML document that describes a module — identity,
 * capabilities it provides (with intent phrasings), capabilities it
 * requires, its execution profile, lineage, payload references and the
 * parts evolution must never prune. Schema: docs/semantic-profile.md.
 *
 * The parser is strict (libyaml event API into a small capped tree, then a
 * table-driven schema walk): unknown keys, wrong node types, duplicate
 * keys, anchors/aliases/tags, excessive depth, sequence length, string
 * length or file size are errors. Every error fills an aik_error with
 *   where   = "FILE:LINE:COLUMN: key.path[3].sub"  (1-based line/column)
 *   message = the check that failed ("expected a string, got a mapping").
 *
 * A parsed profile is a read-only view: every pointer in it is owned by
 * the aik_profile and freed by aik_profile_free().
 */
#ifndef AIK_CAPGRAPH_PROFILE_H
#define AIK_CAPGRAPH_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "aik/module.h"
#include "capgraph/semver.h"
#include "common/digest.h"
#include "loader/exec_profile.h"

/* The schema version this parser reads (key `schema:`). */
#define AIK_PROFILE_SCHEMA_VERSION 1

/* Resource limits on untrusted profile text. */
#define AIK_PROFILE_MAX_FILE (256u * 1024u) /* bytes of YAML */
#define AIK_PROFILE_MAX_DEPTH 8             /* nested collections */
#define AIK_PROFILE_MAX_SEQ 64              /* items in one sequence */
#define AIK_PROFILE_MAX_KEYS 32             /* keys in one mapping */
#define AIK_PROFILE_MAX_STRING 1024         /* bytes in one scalar */
#define AIK_PROFILE_MAX_NODES 8192          /* nodes in one document */

/* Module kinds are the ABI's (aik/module.h): one enum, one numbering. */

/* "architecture", "capability", "tokenizer", "backend" ("?" if unknown). */
const char *aik_module_kind_name(aik_module_kind k);

/* A file the module ships, named by SHA-256. has_sha256 is false in
 * profiles under development; the signing step fills the digest in and
 * the loader refuses to activate a payload without one. */
typedef struct aik_payload_ref {
    char *file;       /* file name, relative to the profile's directory, no '/' */
    bool has_sha256;
    uint8_t sha256[AIK_SHA256_LEN];
} aik_payload_ref;

/* A list of strings. */
typedef struct aik_strlist {
    char **v;
    size_t n;
} aik_strlist;

typedef struct aik_capability {
    char *id;             /* "lexicon.define": [a-z0-9_]+ (. [a-z0-9_]+)* */
    aik_semver version;
    char *description;
    aik_strlist intents;   /* example phrasings; "{word}"-style placeholders are not matched */
    aik_strlist languages; /* BCP 47 tags, e.g. "en" */
    aik_strlist domains;
} aik_capability;

typedef struct aik_requirement {
    char *id;              /* capability id */
    char *range_text;      /* as written, for messages ("^1.0") */
    aik_semver_range range;
} aik_requirement;

/* A part of the model that evolution must never prune or alter. Exactly
 * one of layer (>= 0) or tensor (non-NULL) is set. */
typedef struct aik_protected_part {
    int64_t layer;         /* -1 when the part is a tensor */
    char *tensor;          /* tensor name, NULL when the part is a layer */
    char *reason;          /* why ("safety layer") */
} aik_protected_part;

typedef struct aik_profile {
    char *source;          /* file name used in messages */
    uint32_t schema;
    /* identity */
    char *name;            /* module name: [a-z0-9][a-z0-9_.-]* */
    aik_semver version;
    aik_module_kind kind;
    char *description;
    char *base;            /* capability modules: capability id of the base model they apply to, else NULL */
    bool has_adapter;
    aik_payload_ref adapter;
    /* graph */
    aik_capability *provides;
    size_t n_provides;
    aik_requirement *requires;
    size_t n_requires;
    /* execution */
    aik_exec_profile exec;
    /* provenance and payload */
    uint8_t (*parents)[AIK_SHA256_LEN]; /* lineage: parent module digests */
    size_t n_parents;
    aik_payload_ref *payload;
    size_t n_payload;
    aik_protected_part *protected_parts;
    size_t n_protected;
} aik_profile;

/*
 * Parse a profile from memory. name is used in error positions (e.g. the
 * file's base name); data need not be NUL-terminated. Returns 0 and a new
 * profile, or -EINVAL (schema / syntax error), -EFBIG / -E2BIG (limits),
 * -ENOMEM, each with err filled.
 */
int aik_profile_parse(const char *name, const void *data, size_t len, aik_profile **ret_profile, aik_error *err);

/* Read (at most AIK_PROFILE_MAX_FILE bytes) and parse a file; errors name
 * the file's base name. */
int aik_profile_load(const char *path, aik_profile **ret_profile, aik_error *err);

/* Accepts NULL. */
void aik_profile_free(aik_profile *p);

/* Whether the profile provides capability id at a version matching range
 * (range NULL: any). Returns the capability or NULL. */
const aik_capability *aik_profile_find_capability(const aik_profile *p, const char *id, const aik_semver_range *range);

/* True for a syntactically valid capability id. */
bool aik_capability_id_valid(const char *id);

#endif
