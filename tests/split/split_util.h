/* SPDX-License-Identifier: MIT */
/*
 * Shared by the split-execution tests: a tiny model on disk, inventories
 * from YAML text, a reference run on the whole-graph CPU executor, and a
 * fault-injecting wrapper around any backend (its execute or upload fails
 * on the Nth call once armed; it reports the kind it is told to).
 */
#ifndef AIK_TEST_SPLIT_UTIL_H
#define AIK_TEST_SPLIT_UTIL_H

#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "common/error.h"
#include "runtime/model.h"
#include "scheduler/cpu_exec.h"
#include "scheduler/device_profile.h"
#include "scheduler/placement.h"
#include "scheduler/split_exec.h"
#include "testutil.h"
#include "../engine/tiny_model.h"

/* ---- tiny model ---- */

typedef struct tiny {
    char *dir, *path;
    aik_model *m;
} tiny;

static inline void tiny_open(tiny *t, aik_dtype dt, uint32_t flags)
{
    aik_slm_header hdr;
    aik_error err = { 0 };
    t->dir = aik_test_tmpdir();
    ck_assert_ptr_nonnull(t->dir);
    ck_assert_int_ge(asprintf(&t->path, "%s/tiny.slm", t->dir), 0);
    tiny_header(&hdr);
    hdr.flags = flags;
    ck_assert_int_eq(tiny_model_write(t->path, &hdr, NULL, dt, 7), 0);
    int r = aik_model_open(t->path, 0, NULL, &t->m, &err);
    ck_assert_msg(r == 0, "open: %s: %s", err.where, err.message);
}

static inline void tiny_close(tiny *t)
{
    aik_model_free(t->m);
    aik_test_rmtree(t->dir);
    free(t->dir);
    free(t->path);
}

static inline aik_device_inventory *inv_parse(const char *yaml)
{
    aik_device_inventory *inv = calloc(1, sizeof(*inv));
    aik_error err = { 0 };
    ck_assert_ptr_nonnull(inv);
    int r = aik_device_inventory_parse("test.yaml", yaml, strlen(yaml), inv, &err);
    ck_assert_msg(r == 0, "inventory: %s: %s", err.where, err.message);
    return inv;
}

static inline int argmax_f(const float *x, uint32_t n)
{
    int best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = (int)i;
    return best;
}

/* Reference: prompt (all outputs) then greedy decode on aik_cpu_exec.
 * ret_prompt_logits gets n_prompt × V floats, ret_tokens n_gen tokens,
 * ret_step_logits n_gen × V (the logits each token was chosen from). */
static inline void reference_run(const aik_graph *g, uint32_t ctx, const int32_t *prompt, uint32_t n_prompt,
                                 uint32_t n_gen, float *ret_prompt_logits, int32_t *ret_tokens, float *ret_step_logits)
{
    aik_cpu_exec_config cc = { .max_batch = 8, .ctx_len = ctx };
    aik_cpu_exec *ce;
    aik_error err = { 0 };
    const float *lg;
    uint32_t V = g->hp.n_vocab;

    ck_assert_int_eq(aik_cpu_exec_new(g, &cc, NULL, &ce, &err), 0);
    ck_assert_int_eq(aik_cpu_exec_run(ce, prompt, n_prompt, n_prompt, &lg, &err), 0);
    memcpy(ret_prompt_logits, lg, (size_t)n_prompt * V * sizeof(float));
    memcpy(ret_step_logits, lg + (size_t)(n_prompt - 1) * V, (size_t)V * sizeof(float));
    ret_tokens[0] = argmax_f(ret_step_logits, V);
    for (uint32_t i = 1; i < n_gen; i++) {
        ck_assert_int_eq(aik_cpu_exec_run(ce, &ret_tokens[i - 1], 1, 1, &lg, &err), 0);
        memcpy(ret_step_logits + (size_t)i * V, lg, (size_t)V * sizeof(float));
        ret_tokens[i] = argmax_f(lg, V);
    }
    aik_cpu_exec_free(ce);
}

/* ---- fault injection ---- */

typedef struct faulty {
    const aik_backend_ops *inner;
    aik_backend *b;
    uint32_t kind;            /* reported aik_backend_kind */
    bool armed;               /* count calls only once armed (after setup) */
    int exec_calls, fail_exec_at;     /* fail the Nth execute (1-based; 0: never) */
    int upload_calls, fail_upload_at; /* fail the Nth upload */
    bool fail_forever;        /* keep failing after the first fault */
} faulty;

static int fy_count(aik_error *err) { (void)err; return 1; }
static int fy_open(uint32_t i, aik_backend **r, aik_error *err) { (void)i; (void)r; return aik_fail(err, -ENOTSUP, "faulty", "open through faulty_wrap"); }
static void fy_close(aik_backend *b) { (void)b; }
static int fy_info(aik_backend *b, aik_backend_info *info)
{
    faulty *f = (faulty *)b;
    int r = f->inner->get_info(f->b, info);
    if (r == 0 && info->struct_size >= offsetof(aik_backend_info, kind) + sizeof(uint32_t))
        info->kind = f->kind;
    return r;
}
static int fy_alloc(aik_backend *b, uint64_t n, aik_backend_buffer **ret, aik_error *err)
{
    faulty *f = (faulty *)b;
    return f->inner->buffer_alloc(f->b, n, ret, err);
}
static void fy_free(aik_backend *b, aik_backend_buffer *buf)
{
    faulty *f = (faulty *)b;
    f->inner->buffer_free(f->b, buf);
}
static int fy_upload(aik_backend *b, aik_backend_buffer *buf, uint64_t off, const void *src, uint64_t n, aik_error *err)
{
    faulty *f = (faulty *)b;
    if (f->armed && f->fail_upload_at && (++f->upload_calls == f->fail_upload_at ||
                                          (f->fail_forever && f->upload_calls > f->fail_upload_at)))
        return aik_fail(err, -EIO, "faulty.upload", "injected fault on upload %d", f->upload_calls);
    return f->inner->buffer_upload(f->b, buf, off, src, n, err);
}
static int fy_download(aik_backend *b, aik_backend_buffer *buf, uint64_t off, void *dst, uint64_t n, aik_error *err)
{
    faulty *f = (faulty *)b;
    return f->inner->buffer_download(f->b, buf, off, dst, n, err);
}
static int fy_execute(aik_backend *b, const aik_backend_segment *seg, aik_error *err)
{
    faulty *f = (faulty *)b;
    if (f->armed && f->fail_exec_at && (++f->exec_calls == f->fail_exec_at ||
                                        (f->fail_forever && f->exec_calls > f->fail_exec_at)))
        return aik_fail(err, -EIO, "faulty.execute", "injected fault on execute %d", f->exec_calls);
    int r = f->inner->execute(f->b, seg, err);
    if (r == 0 && f->inner->synchronize)
        r = f->inner->synchronize(f->b, err);
    return r;
}

static const aik_backend_ops faulty_ops = {
    .struct_size = sizeof(aik_backend_ops),
    .abi_major = AIK_BACKEND_ABI_MAJOR,
    .abi_minor = AIK_BACKEND_ABI_MINOR,
    .name = "faulty",
    .device_count = fy_count,
    .open = fy_open,
    .close = fy_close,
    .get_info = fy_info,
    .buffer_alloc = fy_alloc,
    .buffer_free = fy_free,
    .buffer_upload = fy_upload,
    .buffer_download = fy_download,
    .execute = fy_execute,
};

/* ---- telemetry ---- */

typedef struct rec_entry {
    uint32_t first_unit, end_unit, device;
    double ms;
} rec_entry;

typedef struct rec_log {
    uint32_t n;
    rec_entry r[256];
} rec_log;

static inline int rec_hook(void *user, uint32_t first_unit, uint32_t end_unit, uint32_t device, double ms)
{
    rec_log *l = user;
    if (l->n < 256)
        l->r[l->n] = (rec_entry){ first_unit, end_unit, device, ms };
    l->n++;
    return 0;
}

#endif
