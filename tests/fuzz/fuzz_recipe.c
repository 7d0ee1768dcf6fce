/* SPDX-License-Identifier: MIT */
/* Fuzz target: training recipe parsing (strict JSON, paths, shapes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "train/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    aik_recipe *r = NULL;
    aik_error err;

    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/aik-fuzz-recipe-%d.json", (int)getpid());
    if (aik_write_file_atomic(path, data, size, 0600) < 0)
        return 0;
    if (aik_recipe_load(path, &r, &err) == 0)
        aik_recipe_free(r);
    unlink(path);
    return 0;
}
