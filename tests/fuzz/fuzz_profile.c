/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the semantic-profile parser (capgraph/profile.c): parse
 * the input as a profile; when it parses, add it to a graph next to a
 * fixed base module and resolve each capability it provides (by id and as
 * free text from its first phrasing, lexical only so that a run does not
 * depend on WordNet), so the graph and resolver see hostile profiles too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capgraph/capgraph.h"

static const char base_yaml[] =
    "schema: 1\n"
    "module: {name: fuzz-base, version: 1.0.0, kind: architecture}\n"
    "capabilities: [{id: text.complete, version: 1.0.0, intents: ['complete this text']}]\n"
    "execution: {memory: 64 MiB, backends: [cpu], tokens_per_s: 10}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_profile *p = NULL, *base = NULL;
    aik_capgraph *g = NULL;
    aik_explanation *ex = NULL;
    aik_error err;

    if (aik_profile_parse("fuzz.yaml", data, size, &p, &err) < 0)
        return 0;
    if (aik_capgraph_new(&g) < 0 || aik_explanation_new(&ex) < 0)
        goto out;
    aik_capgraph_set_wordnet_dir(g, NULL);
    if (aik_profile_parse("base.yaml", base_yaml, sizeof(base_yaml) - 1, &base, &err) == 0 &&
        aik_capgraph_add(g, base, &err) < 0)
        aik_profile_free(base);
    if (aik_capgraph_add(g, p, &err) < 0) {
        aik_profile_free(p);
        goto out;
    }
    aik_capgraph_check(g, &err);
    for (size_t i = 0; i < p->n_provides && i < 4; i++) {
        aik_constraints c = { .memory_budget = 128u << 20, .backends = AIK_BACKEND_BIT_CPU, .latency_ms = 200 };
        aik_plan *plan = NULL;
        if (aik_capgraph_resolve(g, p->provides[i].id, NULL, ex, &plan, &err) == 0)
            aik_plan_free(plan);
        plan = NULL;
        if (aik_capgraph_resolve(g, p->provides[i].id, &c, ex, &plan, &err) == 0)
            aik_plan_free(plan);
        plan = NULL;
        if (p->provides[i].intents.n && aik_capgraph_resolve(g, p->provides[i].intents.v[0], NULL, ex, &plan, &err) == 0)
            aik_plan_free(plan);
    }
out:
    aik_explanation_free(ex);
    aik_capgraph_free(g); /* owns p once added */
    return 0;
}
