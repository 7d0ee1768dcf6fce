/* SPDX-License-Identifier: MIT */
/*
 * hello-module: the smallest useful AIKernel module, built out of tree
 * against the installed SDK (pkg-config aik-module). It is a capability
 * module whose ops table has one entry point, greet(), that writes a
 * greeting into a buffer the host owns.
 */
#include <stdio.h>

#include <aik/module.h>

/* The ops table of this (example) capability interface. Every ops table
 * starts with its own size, so the host can tell which members exist. */
typedef struct hello_ops {
    uint32_t struct_size;
    /* Write "hello, NAME" into buf (host-owned, len bytes). Returns the
     * length it wanted to write, like snprintf. */
    int (*greet)(const char *name, char *buf, size_t len);
} hello_ops;

static int greet(const char *name, char *buf, size_t len)
{
    return snprintf(buf, len, "hello, %s", name ? name : "world");
}

static const hello_ops ops = { sizeof(hello_ops), greet };

/* One line declares the module: the exported descriptor and the ELF note. */
AIK_MODULE(AIK_MODULE_CAPABILITY, "hello", "1.0.0", &ops, sizeof(ops));
