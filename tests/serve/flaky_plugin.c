/* SPDX-License-Identifier: MIT */
/*
 * aik-backend-flaky — a test plug-in: the reference plug-in
 * (modules/backend-ref) that calls itself a GPU and, like a device that is
 * lost mid-run, fails every execute() from the Nth call of the process on,
 * N from $AIK_TEST_FLAKY_FAIL_AT (unset or 0: never). The kernel's
 * placement serving must then fall back to the CPU, answer the same and
 * say so (tests/serve/test_serve.c). Never installed.
 */
#include <stdlib.h>

#include <aik/module.h>

/* The reference's code without its module descriptor: this file declares
 * its own below. */
#pragma push_macro("AIK_MODULE")
#undef AIK_MODULE
#define AIK_MODULE(...) _Static_assert(1, "descriptor declared below")
#include "../../modules/backend-ref/backend_ref.c"
#pragma pop_macro("AIK_MODULE")

static int flaky_calls;

static int flaky_get_info(aik_backend *b, aik_backend_info *info)
{
    int r = ref_get_info(b, info);
    if (r == 0)
        info->kind = AIK_BACKEND_GPU; /* the host falls back only from non-CPU devices */
    return r;
}

static int flaky_execute(aik_backend *b, const aik_backend_segment *seg, aik_error *err)
{
    const char *at = getenv("AIK_TEST_FLAKY_FAIL_AT");
    long n = at ? strtol(at, NULL, 10) : 0;

    if (n > 0 && ++flaky_calls >= n)
        return fail(err, -EIO, "flaky: injected device loss at execute call %d", flaky_calls);
    return ref_execute(b, seg, err);
}

static const aik_backend_ops flaky_ops = {
    .struct_size = sizeof(aik_backend_ops),
    .abi_major = AIK_BACKEND_ABI_MAJOR,
    .abi_minor = AIK_BACKEND_ABI_MINOR,
    .name = "flaky",
    .device_count = ref_device_count,
    .open = ref_open,
    .close = ref_close,
    .get_info = flaky_get_info,
    .buffer_alloc = ref_buffer_alloc,
    .buffer_free = ref_buffer_free,
    .buffer_upload = ref_buffer_upload,
    .buffer_download = ref_buffer_download,
    .execute = flaky_execute,
    .synchronize = ref_synchronize,
};

/* The reference's own table is not used (nor exported: a plug-in exports
 * only its descriptor). */
__attribute__((unused)) static const aik_backend_ops *const flaky_ref_ops = &ref_ops;

AIK_MODULE(AIK_MODULE_BACKEND, "aik-backend-flaky", "1.0.0", &flaky_ops, sizeof(flaky_ops));
