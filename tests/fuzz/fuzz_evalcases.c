/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the eval-cases JSONL parser and the sidecar parser: the
 * same bytes go to both. Accepted cases are matched against the input itself
 * (exercising the compiled regexes); an accepted sidecar must re-serialize
 * and parse back to the same record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile int sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_eval_cases *c = NULL;
    aik_eval_sidecar s, t;
    aik_error err;
    char *json;

    if (aik_eval_cases_parse((const char *)data, size, &c, &err) == 0) {
        for (size_t i = 0; i < c->n; i++)
            sink += aik_eval_case_passes(&c->cases[i], (const char *)data, size > 256 ? 256 : size);
        aik_eval_cases_free(c);
    } else if (err.where[0] == '\0' && err.code != -ENOMEM && size != 0) {
        /* only the empty-file and no-cases errors have no line */
        if (strcmp(err.message, "no cases") != 0)
            __builtin_trap();
    }
    if (aik_eval_sidecar_parse((const char *)data, size, &s, &err) == 0) {
        if (aik_eval_sidecar_to_json(&s, &json, &err) != 0)
            __builtin_trap();
        if (aik_eval_sidecar_parse(json, strlen(json), &t, &err) != 0 || memcmp(&s, &t, sizeof(s)) != 0)
            __builtin_trap();
        free(json);
    }
    return 0;
}
