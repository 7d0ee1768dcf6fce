/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the device-inventory parser (scheduler/device_profile.c):
 * parse the input; when it parses, plan a small synthetic model on it so the
 * planner sees hostile inventories (odd links, tiny memories, few ops) too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/placement.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_device_inventory *inv = calloc(1, sizeof(*inv));
    aik_placement_unit units[4];
    uint64_t wb[4] = { 4096, 8192, 8192, 4096 };
    uint32_t widx[4] = { 0, 1, 2, 3 };
    aik_placer *p = NULL;
    aik_placement *pl = NULL, *pl2 = NULL;
    aik_error err;

    if (!inv)
        return 0;
    if (aik_device_inventory_parse("fuzz.yaml", data, size, inv, &err) < 0)
        goto out;
    memset(units, 0, sizeof(units));
    for (int u = 0; u < 4; u++) {
        snprintf(units[u].name, sizeof(units[u].name), "u%d", u);
        units[u].flops = 1e6 * (u + 1);
        units[u].read_bytes = wb[u];
        units[u].out_bytes = 256;
        units[u].op_dtypes[u == 0 ? 3 : 4] = 1u << (u % 2 ? 3 : 0);
        units[u].n_weights = 1;
        units[u].weights = &widx[u];
    }
    if (aik_placer_new_units(units, 4, wb, 4, inv, NULL, &p, &err) < 0)
        goto out;
    if (aik_placer_plan(p, "layers=0:cpu", &pl, &err) < 0 && aik_placer_plan(p, NULL, &pl, &err) < 0)
        goto out;
    if (aik_placement_replan_without(p, pl, pl->unit_device[0], NULL, &pl2, &err) == 0) {
        char *text = NULL;
        if (aik_placement_explain(p, pl2, &text) == 0)
            free(text);
    }
out:
    aik_placement_free(pl);
    aik_placement_free(pl2);
    aik_placer_free(p);
    free(inv);
    return 0;
}
