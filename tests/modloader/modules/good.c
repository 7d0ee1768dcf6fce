/* SPDX-License-Identifier: MIT */
/* A minimal capability module for the loader tests. VALUE and VERSION are
 * set by the build so that two variants can be told apart after loading. */
#include <aik/module.h>

#ifndef TEST_VALUE
#define TEST_VALUE 42
#endif
#ifndef TEST_VERSION
#define TEST_VERSION "1.2.0"
#endif

typedef struct test_ops {
    uint32_t struct_size;
    int (*value)(void);
} test_ops;

static int value(void)
{
    return TEST_VALUE;
}

static const test_ops ops = { sizeof(test_ops), value };

AIK_MODULE(AIK_MODULE_CAPABILITY, "tamper-test", TEST_VERSION, &ops, sizeof(ops));
