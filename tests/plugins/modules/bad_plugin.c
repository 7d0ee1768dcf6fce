/* SPDX-License-Identifier: MIT */
/*
 * Deliberately broken backend plug-ins for the refusal tests: one source,
 * one defect per build (tests/plugins/meson.build sets the macros).
 *   BAD_ABI_MAJOR  abi_major 99 (a plug-in built for a future host)
 *   NO_EXECUTE     the required member execute is NULL
 *   MODULE_KIND    the module's kind (default AIK_MODULE_BACKEND)
 *   N_DEVICES      what device_count answers (default 1; 0: no hardware;
 *                  negative: the probe fails)
 * Every device function fails: these plug-ins must never be used to compute.
 */
#include <errno.h>
#include <stdio.h>

#include <aik/backend.h>
#include <aik/module.h>

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "bad-plugin"
#endif
#ifndef MODULE_KIND
#define MODULE_KIND AIK_MODULE_BACKEND
#endif
#ifndef N_DEVICES
#define N_DEVICES 1
#endif

static int count(aik_error *err)
{
    if (N_DEVICES < 0 && err) {
        err->code = N_DEVICES;
        snprintf(err->where, sizeof(err->where), "%s", PLUGIN_NAME);
        snprintf(err->message, sizeof(err->message), "no driver for this device is loaded");
    }
    return N_DEVICES;
}

static int open_dev(uint32_t index, aik_backend **ret, aik_error *err)
{
    (void)index;
    (void)ret;
    (void)err;
    return -ENODEV;
}

static void close_dev(aik_backend *b) { (void)b; }
static int info(aik_backend *b, aik_backend_info *in) { (void)b; (void)in; return -ENODEV; }
static int alloc(aik_backend *b, uint64_t n, aik_backend_buffer **ret, aik_error *err)
{
    (void)b; (void)n; (void)ret; (void)err;
    return -ENODEV;
}
static void buf_free(aik_backend *b, aik_backend_buffer *buf) { (void)b; (void)buf; }
static int up(aik_backend *b, aik_backend_buffer *buf, uint64_t off, const void *src, uint64_t n, aik_error *err)
{
    (void)b; (void)buf; (void)off; (void)src; (void)n; (void)err;
    return -ENODEV;
}
static int down(aik_backend *b, aik_backend_buffer *buf, uint64_t off, void *dst, uint64_t n, aik_error *err)
{
    (void)b; (void)buf; (void)off; (void)dst; (void)n; (void)err;
    return -ENODEV;
}
#ifndef NO_EXECUTE
static int exec(aik_backend *b, const aik_backend_segment *seg, aik_error *err)
{
    (void)b; (void)seg; (void)err;
    return -ENODEV;
}
#endif

static const aik_backend_ops ops = {
    .struct_size = sizeof(aik_backend_ops),
#ifdef BAD_ABI_MAJOR
    .abi_major = 99,
#else
    .abi_major = AIK_BACKEND_ABI_MAJOR,
#endif
    .abi_minor = AIK_BACKEND_ABI_MINOR,
    .name = "bad",
    .device_count = count,
    .open = open_dev,
    .close = close_dev,
    .get_info = info,
    .buffer_alloc = alloc,
    .buffer_free = buf_free,
    .buffer_upload = up,
    .buffer_download = down,
#ifdef NO_EXECUTE
    .execute = NULL,
#else
    .execute = exec,
#endif
};

AIK_MODULE(MODULE_KIND, PLUGIN_NAME, "1.0.0", &ops, sizeof(ops));
