/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the teacher-trajectories JSONL parser: anything accepted
 * must serialize and parse back to the same trajectories.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distill/trajectories.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_trajectories t = { 0 }, u = { 0 };
    aik_error err;
    char *out;
    size_t len;

    if (aik_trajectories_parse(&t, (const char *)data, size, &err) == 0) {
        if (aik_trajectories_to_jsonl(&t, &out, &len, &err) == 0) {
            if (aik_trajectories_parse(&u, out, len, &err) != 0 || u.n != t.n)
                abort();
            for (size_t i = 0; i < t.n; i++)
                if (strcmp(t.v[i].input, u.v[i].input) != 0 || strcmp(t.v[i].output, u.v[i].output) != 0 ||
                    strcmp(t.v[i].capability, u.v[i].capability) != 0 || strcmp(t.v[i].source, u.v[i].source) != 0)
                    abort();
            free(out);
        }
    } else if (t.n != 0) {
        abort(); /* a rejected file must add nothing */
    }
    aik_trajectories_clear(&t);
    aik_trajectories_clear(&u);
    return 0;
}
