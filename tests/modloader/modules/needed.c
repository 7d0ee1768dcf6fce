/* SPDX-License-Identifier: MIT */
/* Links libcrypto: a DT_NEEDED outside the allow-list. */
#include <aik/module.h>
#include <openssl/crypto.h>

typedef struct test_ops {
    uint32_t struct_size;
    unsigned long (*ver)(void);
} test_ops;

static unsigned long ver(void)
{
    return OpenSSL_version_num();
}

static const test_ops ops = { sizeof(test_ops), ver };

AIK_MODULE(AIK_MODULE_CAPABILITY, "tamper-test", "1.2.0", &ops, sizeof(ops));
