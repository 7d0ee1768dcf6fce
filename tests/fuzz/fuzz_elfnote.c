/* SPDX-License-Identifier: MIT */
/* Fuzz target: the ELF note reader and the full pre-dlopen ELF inspection
 * (libelf over untrusted bytes, PT_DYNAMIC walking, DT_NEEDED strings). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_module_note_desc note;
    aik_error err;
    /* A private, exactly-sized copy so ASan sees any read past the end. */
    uint8_t *copy = malloc(size ? size : 1);

    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    if (aik_elf_read_note(copy, size, &note, &err) == 0) {
        if (!memchr(note.name, '\0', sizeof(note.name)) || !memchr(note.version, '\0', sizeof(note.version)))
            abort();
    }
    (void)aik_elf_check(copy, size, &note, &err);
    free(copy);
    return 0;
}
