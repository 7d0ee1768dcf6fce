/* SPDX-License-Identifier: MIT */
/* Fuzz target: the strict manifest.json parser, and write -> parse round
 * trip of whatever it accepts (the writer must produce what the parser
 * accepts, identically). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_manifest m, m2;
    aik_error err;
    char *out;
    size_t len;

    if (aik_manifest_parse(data, size, &m, &err) != 0)
        return 0;
    if (aik_manifest_write(&m, &out, &len, &err) != 0)
        abort();
    if (aik_manifest_parse(out, len, &m2, &err) != 0 || memcmp(&m, &m2, sizeof(m)) != 0)
        abort();
    free(out);
    return 0;
}
