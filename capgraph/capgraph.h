/* SPDX-License-Identifier: MIT */
/*
 * The capability graph: the installed modules (one semantic profile each)
 * with their provides / requires edges, and intent resolution over it.
 *
 * Resolution turns an intent — a capability id, optionally with a version
 * range ("lexicon.define", "lexicon.define@^1.0"), or free text ("what
 * does ephemeral mean") — plus constraints into the minimal set of modules
 * that serves it:
 *   - every requirement of every chosen module is bound to exactly one
 *     chosen provider whose capability version is in the range; one
 *     provider per capability id and one version per module name in a plan
 *     (so requirements ^1.0 and ^2.0 on the same capability conflict);
 *   - a capability module's `base` requirement is bound to an architecture
 *     module;
 *   - each module must fit the constraints (memory, backends, latency) and
 *     the plan as a whole must fit the memory budget and share a backend;
 *   - the dependency edges of the plan must be acyclic;
 *   - among all valid plans: fewest modules, then least total memory, then
 *     the plan whose module list (sorted by name, each name's higher
 *     version first) is lexicographically first by name, then by higher
 *     version. Two modules providing the same capability at the same
 *     version are therefore not a conflict: the choice is deterministic.
 * Every candidate ends up in the explanation with a verdict and a reason.
 *
 * Thread safety: loading is single-threaded; after that, resolutions may
 * run concurrently (the lazily built free-text index and WordNet handle
 * are guarded by a lock inside the graph).
 */
#ifndef AIK_CAPGRAPH_CAPGRAPH_H
#define AIK_CAPGRAPH_CAPGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "capgraph/profile.h"
#include "capgraph/textmatch.h"

#define AIK_CAPGRAPH_MAX_MODULES 4096   /* profiles in one graph */
#define AIK_PLAN_MAX_MODULES 32         /* modules in one plan */
#define AIK_RESOLVE_MAX_STEPS 200000    /* search steps before giving up with -E2BIG */

typedef struct aik_capgraph aik_capgraph;

int aik_capgraph_new(aik_capgraph **ret_graph);

/* Accepts NULL. Frees the profiles the graph owns. */
void aik_capgraph_free(aik_capgraph *g);

/* Add a parsed profile; on success the graph owns it. -EEXIST (err filled)
 * when a module of the same name and version is already present; -E2BIG
 * beyond AIK_CAPGRAPH_MAX_MODULES. */
int aik_capgraph_add(aik_capgraph *g, aik_profile *p, aik_error *err);

/* A new graph from every regular "*.yaml" file of dir, in file-name order.
 * The first profile that does not parse fails the load with its
 * file:line:column error. */
int aik_capgraph_load_dir(const char *dir, aik_capgraph **ret_graph, aik_error *err);

/* Modules in a stable order (name ascending, then version descending). */
size_t aik_capgraph_count(const aik_capgraph *g);
const aik_profile *aik_capgraph_get(const aik_capgraph *g, size_t i);

/* Look for a dependency cycle: an edge goes from a module to every module
 * that could satisfy one of its requirements. Returns 0, or -ELOOP with
 * err->message "a@1.0.0 -> b@1.0.0 -> a@1.0.0". */
int aik_capgraph_check(const aik_capgraph *g, aik_error *err);

/* Where WordNet is (default AIK_WORDNET_DEFAULT_DIR); NULL disables it
 * (lexical matching only). It is opened lazily by the first free-text
 * resolution. Returns 0 or -ENOMEM. */
int aik_capgraph_set_wordnet_dir(aik_capgraph *g, const char *dir);

/* Plug in (or, with NULL, remove) the embedding hook used for free text.
 * The struct is copied; user must outlive the graph's use of it. */
int aik_capgraph_set_embedder(aik_capgraph *g, const aik_embedder *emb);

typedef struct aik_constraints {
    uint64_t memory_budget; /* bytes for the whole plan; 0: unlimited */
    uint32_t backends;      /* AIK_BACKEND_BIT_* allowed; 0: any */
    uint32_t latency_ms;    /* per-token latency budget: modules declaring
                               tokens_per_s < 1000 / latency_ms are rejected,
                               and so are architecture modules declaring none; 0: none */
} aik_constraints;

/* ---- explanations ---- */

typedef enum aik_verdict {
    AIK_VERDICT_CHOSEN = 0,   /* module is in the plan */
    AIK_VERDICT_REJECTED = 1, /* module (or capability, for free text) was not taken; reason says why */
    AIK_VERDICT_MATCHED = 2,  /* free text: the capability the intent was matched to */
    AIK_VERDICT_NOTE = 3,     /* context: matching method, conflicts, the overall failure */
} aik_verdict;

typedef struct aik_explain_entry {
    char *subject;   /* "aik-base@1.0.0", a capability id, or "intent" */
    aik_verdict verdict;
    char *reason;
} aik_explain_entry;

typedef struct aik_explanation aik_explanation;

int aik_explanation_new(aik_explanation **ret_expl);
void aik_explanation_free(aik_explanation *e); /* accepts NULL */
/* Drop all entries (a resolution clears the explanation it is given). */
void aik_explanation_clear(aik_explanation *e);
size_t aik_explanation_count(const aik_explanation *e);
const aik_explain_entry *aik_explanation_get(const aik_explanation *e, size_t i);
/* Append an entry (printf-style reason). Returns 0 or -ENOMEM. */
int aik_explanation_add(aik_explanation *e, const char *subject, aik_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "chosen", "rejected", "matched", "note". */
const char *aik_verdict_name(aik_verdict v);
/* One line per entry: "  chosen    aik-base@1.0.0: provides ...". The
 * returned string is malloc'ed. Returns 0 or -ENOMEM. */
int aik_explanation_format(const aik_explanation *e, char **ret_text);

/* ---- resolution ---- */

typedef struct aik_plan {
    char *capability;              /* the capability id that serves the intent */
    bool free_text;                /* the intent was free text (else a capability id) */
    double match_score;            /* free text: the match score; 1 for a capability id */
    const aik_profile **modules;   /* dependencies before dependents (ties by name); owned by the graph */
    size_t n_modules;
    uint64_t memory_bytes;         /* sum of the modules' execution.memory */
    uint32_t backends;             /* AIK_BACKEND_BIT_* every module (and the constraints) allow */
} aik_plan;

void aik_plan_free(aik_plan *p); /* accepts NULL */

/*
 * Resolve intent under constraints (NULL: none). explain (optional) is
 * cleared and then filled on success and on failure. Returns 0 and a plan,
 * or:
 *   -ENOENT   nothing provides the capability, a requirement is unmet, or
 *             free text matches no capability (score below
 *             AIK_TEXTMATCH_THRESHOLD; the explanation lists the best);
 *   -EDEADLK  version requirements conflict (no single provider satisfies
 *             them all);
 *   -ELOOP    every plan has a dependency cycle;
 *   -ENOEXEC  candidates exist but the constraints exclude them all;
 *   -E2BIG    the search exceeded AIK_RESOLVE_MAX_STEPS;
 *   -EINVAL   a malformed intent (bad capability id or version range).
 * with err summarizing the reason.
 */
int aik_capgraph_resolve(aik_capgraph *g, const char *intent, const aik_constraints *constraints,
                         aik_explanation *explain, aik_plan **ret_plan, aik_error *err);

#endif
