/* SPDX-License-Identifier: MIT */
/* The note says 1.2.0, the in-memory descriptor says 9.9.9: only visible
 * after dlopen, and refused there. */
#include <aik/module.h>

typedef struct test_ops {
    uint32_t struct_size;
} test_ops;

static const test_ops ops = { sizeof(test_ops) };

AIK_MODULE_NOTE_ATTR static const aik_module_note note = {
    sizeof(AIK_MODULE_NOTE_OWNER), sizeof(aik_module_note_desc), AIK_MODULE_NOTE_TYPE, AIK_MODULE_NOTE_OWNER,
    { AIK_MODULE_ABI_MAJOR, AIK_MODULE_ABI_MINOR, AIK_MODULE_CAPABILITY, "tamper-test", "1.2.0" }
};

AIK_MODULE_EXPORT extern const aik_module_desc aik_module_descriptor;
const aik_module_desc aik_module_descriptor = {
    AIK_MODULE_ABI_MAJOR, AIK_MODULE_ABI_MINOR, sizeof(aik_module_desc), AIK_MODULE_CAPABILITY,
    sizeof(ops), "tamper-test", "9.9.9", &ops
};
