/* SPDX-License-Identifier: MIT */
/* A module with a text relocation: an absolute pointer stored in .text
 * (linked with -z notext so the linker lets it through). */
#include <aik/module.h>

typedef struct test_ops {
    uint32_t struct_size;
} test_ops;

static const test_ops ops = { sizeof(test_ops) };

AIK_MODULE(AIK_MODULE_CAPABILITY, "tamper-test", "1.2.0", &ops, sizeof(ops));

__asm__(".text\n"
        ".globl aik_test_textrel\n"
        "aik_test_textrel:\n"
        ".quad aik_module_descriptor\n");
