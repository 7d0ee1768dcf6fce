/* SPDX-License-Identifier: MIT */
/*
 * The CPU as an aik_backend (see scheduler/cpu_backend.h). The op loop
 * mirrors aik_cpu_exec_run (scheduler/cpu_exec.c) over (buffer, offset)
 * tensors instead of the executor's own buffers.
 */
#include "scheduler/cpu_backend.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/checked.h"
#include "common/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "scheduler/segment_nodes.h"

typedef struct cpu_buffer {
    void *data;
    uint64_t bytes;
} cpu_buffer;

typedef struct cpu_dev {
    aik_threadpool *pool;
    bool own_pool;
    void *mm_scratch; /* quantized activations for matmul */
    size_t mm_scratch_size;
    float *att_scratch; /* per thread: ctx_len scores per q head of a group */
    size_t att_scratch_floats;
    uint64_t bytes_used;
} cpu_dev;

static int cpu_device_count(aik_error *err)
{
    (void)err;
    return 1;
}

int aik_cpu_backend_open_pool(aik_threadpool *pool, aik_backend **ret_backend, aik_error *err)
{
    cpu_dev *d;

    if (!ret_backend)
        return aik_fail(err, -EINVAL, "cpu", "ret_backend is NULL");
    d = calloc(1, sizeof(*d));
    if (!d)
        return aik_fail(err, -ENOMEM, "cpu", "out of memory");
    d->pool = pool;
    *ret_backend = (aik_backend *)d;
    return 0;
}

static int cpu_open(uint32_t index, aik_backend **ret, aik_error *err)
{
    aik_threadpool *pool = NULL;
    int r;

    if (index != 0)
        return aik_fail(err, -ENODEV, "cpu", "device %u requested, the cpu backend has one", index);
    if (!ret)
        return aik_fail(err, -EINVAL, "cpu", "ret_backend is NULL");
    if ((r = aik_threadpool_new(0, &pool)) < 0)
        return aik_fail(err, r, "cpu", "cannot start the thread pool");
    if ((r = aik_cpu_backend_open_pool(pool, ret, err)) < 0) {
        aik_threadpool_free(pool);
        return r;
    }
    ((cpu_dev *)*ret)->own_pool = true;
    return 0;
}

static void cpu_close(aik_backend *b)
{
    cpu_dev *d = (cpu_dev *)b;
    if (!d)
        return;
    if (d->own_pool)
        aik_threadpool_free(d->pool);
    free(d->mm_scratch);
    free(d->att_scratch);
    free(d);
}

uint64_t aik_cpu_backend_bytes_used(const aik_backend *b) { return b ? ((const cpu_dev *)b)->bytes_used : 0; }

static int cpu_get_info(aik_backend *b, aik_backend_info *info)
{
    aik_backend_info in = { 0 };
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint32_t size;

    if (!b || !info || info->struct_size == 0)
        return -EINVAL;
    size = info->struct_size < sizeof(in) ? info->struct_size : (uint32_t)sizeof(in);
    in.struct_size = size;
    in.kind = AIK_BACKEND_CPU;
    snprintf(in.name, sizeof(in.name), "cpu");
    snprintf(in.driver, sizeof(in.driver), "aik cpu kernels (%s), %d threads", aik_cpu_isa_name(aik_cpu_active_isa()),
             aik_threadpool_size(((cpu_dev *)b)->pool));
    in.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    for (uint32_t op = 1; op < AIK_OP_COUNT; op++)
        in.op_dtypes[op] = (op == AIK_OP_GET_ROWS || op == AIK_OP_MATMUL || op == AIK_OP_WEIGHT)
                               ? (1u << AIK_DTYPE_COUNT) - 1
                               : 1u << AIK_DTYPE_F32;
    memcpy(info, &in, size);
    return 0;
}

static int cpu_alloc(aik_backend *b, uint64_t bytes, aik_backend_buffer **ret, aik_error *err)
{
    cpu_dev *d = (cpu_dev *)b;
    cpu_buffer *buf;
    uint64_t size;

    if (!d || !ret || bytes == 0)
        return aik_fail(err, -EINVAL, "cpu.alloc", "bad arguments (bytes %llu)", (unsigned long long)bytes);
    if (aik_align_up(bytes, 64, &size) || size > SIZE_MAX)
        return aik_fail(err, -E2BIG, "cpu.alloc", "%llu bytes do not fit the address space", (unsigned long long)bytes);
    buf = malloc(sizeof(*buf));
    if (!buf)
        return aik_fail(err, -ENOMEM, "cpu.alloc", "out of memory");
    buf->data = aligned_alloc(64, (size_t)size);
    if (!buf->data) {
        free(buf);
        return aik_fail(err, -ENOMEM, "cpu.alloc", "out of memory for %llu bytes", (unsigned long long)bytes);
    }
    buf->bytes = bytes;
    d->bytes_used += bytes;
    *ret = (aik_backend_buffer *)buf;
    return 0;
}

static void cpu_free(aik_backend *b, aik_backend_buffer *bb)
{
    cpu_buffer *buf = (cpu_buffer *)bb;
    if (!b || !buf)
        return;
    ((cpu_dev *)b)->bytes_used -= buf->bytes;
    free(buf->data);
    free(buf);
}

static int cpu_upload(aik_backend *b, aik_backend_buffer *bb, uint64_t off, const void *src, uint64_t bytes,
                      aik_error *err)
{
    cpu_buffer *buf = (cpu_buffer *)bb;
    if (!b || !buf || (!src && bytes))
        return aik_fail(err, -EINVAL, "cpu.upload", "bad arguments");
    if (!aik_range_ok(off, bytes, buf->bytes))
        return aik_fail(err, -ERANGE, "cpu.upload", "range %llu+%llu outside buffer of %llu bytes",
                        (unsigned long long)off, (unsigned long long)bytes, (unsigned long long)buf->bytes);
    if (bytes)
        memcpy((char *)buf->data + off, src, bytes);
    return 0;
}

static int cpu_download(aik_backend *b, aik_backend_buffer *bb, uint64_t off, void *dst, uint64_t bytes,
                        aik_error *err)
{
    cpu_buffer *buf = (cpu_buffer *)bb;
    if (!b || !buf || (!dst && bytes))
        return aik_fail(err, -EINVAL, "cpu.download", "bad arguments");
    if (!aik_range_ok(off, bytes, buf->bytes))
        return aik_fail(err, -ERANGE, "cpu.download", "range %llu+%llu outside buffer of %llu bytes",
                        (unsigned long long)off, (unsigned long long)bytes, (unsigned long long)buf->bytes);
    if (bytes)
        memcpy(dst, (const char *)buf->data + off, bytes);
    return 0;
}

static uint64_t room(const aik_backend_tensor *t)
{
    const cpu_buffer *b = (const cpu_buffer *)t->buffer;
    return b && t->offset < b->bytes ? b->bytes - t->offset : 0;
}

static void *ptr(const aik_backend_tensor *t) { return (char *)((cpu_buffer *)t->buffer)->data + t->offset; }

/* ---- attention, threaded over (row, head) as in cpu_exec.c ---- */

typedef struct att_job {
    const aik_backend_node *n;
    const float *q, *k, *v;
    float *out, *scratch;
    uint32_t pos0;
    size_t scratch_floats; /* per thread: a group's scores */
} att_job;

/* One task per (row, kv head): its q heads together (aik_attention_group
 * reads the kv head's keys and values once for them; bitwise the same as
 * one head at a time, so cpu_exec.c and this backend agree). */
static void att_task(void *ctx, int task, int thread)
{
    const att_job *j = ctx;
    const aik_backend_node *n = j->n;
    const uint32_t row = (uint32_t)task / n->n_kv_heads, kvh = (uint32_t)task % n->n_kv_heads;
    const uint32_t group = n->n_heads / n->n_kv_heads, kv_cols = n->n_kv_heads * n->head_dim;
    const size_t at = (size_t)row * n->n_cols + (size_t)kvh * group * n->head_dim;

    aik_attention_group(j->q + at, (int)group, j->k + (size_t)kvh * n->head_dim, j->v + (size_t)kvh * n->head_dim,
                        j->pos0 + row + 1, (int)n->head_dim, kv_cols, n->scale,
                        j->scratch + (size_t)thread * j->scratch_floats, j->out + at);
}

/* Scratch for the segment's largest matmul and attention, and token ids
 * inside every embedding table (kernels index without checking). */
static int prepare(cpu_dev *d, const aik_backend_segment *seg, aik_error *err)
{
    size_t mm = 0, att = 0;

    for (uint32_t i = seg->first; i < seg->end; i++) {
        const aik_backend_node *n = &seg->nodes[i];
        uint64_t rows = aik_segment_node_rows(n, seg->n_batch, seg->n_out);
        if (n->op == AIK_OP_MATMUL) {
            const aik_backend_node *w = &seg->nodes[n->src[1]];
            size_t s = aik_matmul_scratch_size((aik_dtype)w->dtype, (int64_t)w->shape[0], (int64_t)rows);
            if (s == SIZE_MAX)
                return aik_fail(err, -E2BIG, "cpu.execute", "node %u: matmul scratch size overflows", i);
            if (s > mm)
                mm = s;
        } else if (n->op == AIK_OP_ATTENTION) {
            const size_t a = (size_t)aik_threadpool_size(d->pool) * (n->n_heads / n->n_kv_heads) * seg->ctx_len;
            if (a > att)
                att = a;
        } else if (n->op == AIK_OP_GET_ROWS) {
            const aik_backend_node *t = &seg->nodes[n->src[0]];
            const int32_t *ids = ptr(&seg->nodes[n->src[1]].data);
            for (uint32_t r = 0; r < seg->n_batch; r++)
                if (ids[r] < 0 || (uint64_t)ids[r] >= t->shape[1])
                    return aik_fail(err, -EINVAL, "cpu.execute", "node %u: token id %d at %u outside a table of %llu "
                                    "rows", i, ids[r], r, (unsigned long long)t->shape[1]);
        }
    }
    if (mm > d->mm_scratch_size) {
        void *p = aligned_alloc(64, (mm + 63) & ~(size_t)63);
        if (!p)
            return aik_fail(err, -ENOMEM, "cpu.execute", "out of memory for matmul scratch");
        free(d->mm_scratch);
        d->mm_scratch = p;
        d->mm_scratch_size = mm;
    }
    if (att > d->att_scratch_floats) {
        float *p = malloc(att * sizeof(float));
        if (!p)
            return aik_fail(err, -ENOMEM, "cpu.execute", "out of memory for attention scratch");
        free(d->att_scratch);
        d->att_scratch = p;
        d->att_scratch_floats = att;
    }
    return 0;
}

static int cpu_execute(aik_backend *b, const aik_backend_segment *seg, aik_error *err)
{
    cpu_dev *d = (cpu_dev *)b;
    int r;

    if (!d || !seg)
        return aik_fail(err, -EINVAL, "cpu.execute", "missing device or segment");
    if (seg->struct_size < sizeof(*seg))
        return aik_fail(err, -EINVAL, "cpu.execute", "segment struct of %u bytes, need %zu", seg->struct_size,
                        sizeof(*seg));
    if ((r = aik_segment_check(seg, room, "cpu.execute", err)) < 0 || (r = prepare(d, seg, err)) < 0)
        return r;
    for (uint32_t i = seg->first; i < seg->end; i++) {
        const aik_backend_node *n = &seg->nodes[i];
        const aik_backend_node *s0 = n->src[0] >= 0 ? &seg->nodes[n->src[0]] : NULL;
        const aik_backend_node *s1 = n->src[1] >= 0 ? &seg->nodes[n->src[1]] : NULL;
        uint32_t rows = (uint32_t)aik_segment_node_rows(n, seg->n_batch, seg->n_out);
        float *y;

        switch ((aik_op)n->op) {
        case AIK_OP_NONE:
        case AIK_OP_TOKENS:
        case AIK_OP_WEIGHT:
        case AIK_OP_RESHAPE: /* bound to its source's storage by the host */
        case AIK_OP_COUNT:
            continue;
        default:
            break;
        }
        y = ptr(&n->data);
        switch ((aik_op)n->op) {
        case AIK_OP_GET_ROWS: {
            const int32_t *ids = ptr(&s1->data);
            for (uint32_t t = 0; t < rows; t++)
                aik_get_row((aik_dtype)s0->dtype, ptr(&s0->data), ids[t], n->n_cols, y + (size_t)t * n->n_cols);
            break;
        }
        case AIK_OP_MATMUL:
            aik_matmul_threaded(d->pool, (aik_dtype)s1->dtype, ptr(&s1->data), ptr(&s0->data), d->mm_scratch, y,
                                (int64_t)n->n_cols, (int64_t)s1->shape[0], rows);
            break;
        case AIK_OP_ADD:
        case AIK_OP_MUL: {
            const float *a = ptr(&s0->data);
            void (*f)(const float *, const float *, float *, int64_t) = n->op == AIK_OP_ADD ? aik_add : aik_mul;
            if (s1->op == AIK_OP_WEIGHT)
                for (uint32_t t = 0; t < rows; t++)
                    f(a + (size_t)t * n->n_cols, ptr(&s1->data), y + (size_t)t * n->n_cols, n->n_cols);
            else
                f(a, ptr(&s1->data), y, (int64_t)rows * n->n_cols);
            break;
        }
        case AIK_OP_RMS_NORM: {
            const float *x = ptr(&s0->data), *w = s1 ? ptr(&s1->data) : NULL;
            for (uint32_t t = 0; t < rows; t++)
                aik_rms_norm(x + (size_t)t * n->n_cols, w, y + (size_t)t * n->n_cols, n->n_cols, n->eps);
            break;
        }
        case AIK_OP_ROPE: {
            const float *x = ptr(&s0->data);
            if (y != x)
                memmove(y, x, (size_t)rows * n->n_cols * sizeof(float));
            for (uint32_t t = 0; t < rows; t++)
                aik_rope(y + (size_t)t * n->n_cols, (int)n->n_heads, (int)n->head_dim, (int64_t)seg->n_past + t,
                         n->theta, n->rope_mode == AIK_ROPE_NEOX);
            break;
        }
        case AIK_OP_ATTENTION: {
            uint32_t kv_cols = n->n_kv_heads * n->head_dim;
            float *kc = ptr(&seg->k_cache[n->layer]), *vc = ptr(&seg->v_cache[n->layer]);
            memcpy(kc + (size_t)seg->n_past * kv_cols, ptr(&seg->nodes[n->src[1]].data),
                   (size_t)rows * kv_cols * sizeof(float));
            memcpy(vc + (size_t)seg->n_past * kv_cols, ptr(&seg->nodes[n->src[2]].data),
                   (size_t)rows * kv_cols * sizeof(float));
            att_job j = { n, ptr(&s0->data), kc, vc, y, d->att_scratch, seg->n_past,
                          (size_t)(n->n_heads / n->n_kv_heads) * seg->ctx_len };
            aik_threadpool_parallel_for(d->pool, (int)(rows * n->n_kv_heads), att_task, &j);
            break;
        }
        case AIK_OP_SILU:
            aik_silu(ptr(&s0->data), y, (int64_t)rows * n->n_cols);
            break;
        case AIK_OP_SWIGLU:
            aik_swiglu(ptr(&s0->data), ptr(&s1->data), y, (int64_t)rows * n->n_cols);
            break;
        case AIK_OP_SOFTMAX: {
            const float *x = ptr(&s0->data);
            if (y != x)
                memmove(y, x, (size_t)rows * n->n_cols * sizeof(float));
            for (uint32_t t = 0; t < rows; t++)
                aik_softmax(y + (size_t)t * n->n_cols, n->n_cols);
            break;
        }
        case AIK_OP_OUTPUT_ROWS: {
            const float *x = ptr(&s0->data);
            memmove(y, x + (size_t)(seg->n_batch - seg->n_out) * n->n_cols,
                    (size_t)seg->n_out * n->n_cols * sizeof(float));
            break;
        }
        default:
            break;
        }
    }
    return 0;
}

static const aik_backend_ops cpu_ops = {
    .struct_size = sizeof(aik_backend_ops),
    .abi_major = AIK_BACKEND_ABI_MAJOR,
    .abi_minor = AIK_BACKEND_ABI_MINOR,
    .name = "cpu",
    .device_count = cpu_device_count,
    .open = cpu_open,
    .close = cpu_close,
    .get_info = cpu_get_info,
    .buffer_alloc = cpu_alloc,
    .buffer_free = cpu_free,
    .buffer_upload = cpu_upload,
    .buffer_download = cpu_download,
    .execute = cpu_execute,
    .synchronize = NULL, /* execute() computes before it returns */
    .benchmark = NULL,   /* placement uses declared figures or a device profile */
};

const aik_backend_ops *aik_cpu_backend_ops(void) { return &cpu_ops; }
