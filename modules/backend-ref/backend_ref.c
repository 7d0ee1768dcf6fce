/* SPDX-License-Identifier: MIT */
/*
 * aik-backend-ref — the reference backend plug-in: every member of
 * aik_backend_ops (aik/backend.h) implemented on the host CPU with plain
 * scalar C, for every op of the graph IR (aik/graph.h) and the weight dtypes
 * f32, f16, bf16, q8_0 and q4_0.
 *
 * It is a template for NPU vendors, not a fast backend. Copy this file,
 * keep the structure, and replace three things:
 *   1. device_count / open / get_info: enumerate and open your device
 *      (usually /dev/accel/accelN through your driver's user-space library);
 *   2. buffer_*: allocate device memory and copy to / from it;
 *   3. execute: translate the segment's nodes into your device's command
 *      stream. Keep validate_segment(): the host is trusted, but a bad
 *      segment must fail with a message instead of faulting the device.
 * An op or dtype your hardware lacks: clear its bit in op_dtypes (get_info)
 * and return -ENOTSUP from execute; the scheduler then places those nodes
 * on another device.
 *
 * Rules a plug-in lives by (the loader enforces the first three):
 *   - it is built against the installed abi/ headers only and never links
 *     libaik (DT_NEEDED allow-list, loader/elfcheck.c): everything it needs
 *     from the host arrives through the structs it is handed;
 *   - it exports exactly one symbol, aik_module_descriptor (AIK_MODULE at
 *     the end of this file), and carries the matching ELF note;
 *   - it is signed like any module (manifest.json + manifest.sig) and ships
 *     a profile of kind backend;
 *   - it never prints and never exits: failures are a negative errno plus a
 *     sentence in the aik_error the host passes (which may be NULL).
 *
 * Semantics of every op are those of the CPU reference, kernels/cpu/ref.c;
 * the formulas below repeat them (same order of operations, so on this CPU
 * the results are bit-identical to the reference for f32 data).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <aik/backend.h>
#include <aik/graph.h>
#include <aik/module.h>
#include <aik/tensor.h>

#define REF_NAME "aik-backend-ref"
#define REF_VERSION "1.0.0"

/* Largest single buffer this device hands out: a cap on what a caller can
 * make us allocate (an NPU has its own, smaller, limit). */
#define REF_MAX_BUFFER (1ull << 40)

/* ------------------------------------------------------------ errors --- */

/* Explain a failure in err (may be NULL) and return code. A plug-in cannot
 * call the host's aik_fail (it does not link libaik), so it fills the
 * record itself. */
__attribute__((format(printf, 3, 4))) static int fail(aik_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    snprintf(err->where, sizeof(err->where), "%s", REF_NAME);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return code;
}

/* ----------------------------------------------------- device objects --- */

/* A buffer is plain host memory here; on an NPU it is a handle to device
 * memory (and data would be a mapping, or absent). */
struct aik_backend_buffer {
    uint64_t bytes;
    unsigned char *data; /* 64-byte aligned */
};

struct aik_backend {
    uint32_t index;
    double measured_gflops, measured_gbps; /* set by benchmark() */
    /* Per-execute scratch, grown on demand: the q8_0 copy of one activation
     * row (quantized matmul) and one row of attention scores. */
    void *xq;
    size_t xq_bytes;
    float *scores;
    size_t scores_len;
};

static int grow(void **p, size_t *have, size_t need, aik_error *err)
{
    void *np;

    if (need <= *have)
        return 0;
    np = realloc(*p, need);
    if (!np)
        return fail(err, -ENOMEM, "out of memory for %zu bytes of scratch", need);
    *p = np;
    *have = need;
    return 0;
}

/* ------------------------------------------ numbers (as kernels/cpu/ref.c) --- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static float fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;

    if (exp == 0) {
        if (mant == 0)
            return bits_f32(sign);
        int e = -1; /* subnormal: normalise the mantissa */
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400u));
        mant &= 0x3ffu;
        return bits_f32(sign | (uint32_t)(127 - 15 - e) << 23 | mant << 13);
    }
    if (exp == 31) /* inf or NaN (made quiet) */
        return bits_f32(sign | 0x7f800000u | mant << 13 | (mant ? 0x400000u : 0));
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

/* Round to nearest even, like the reference: the q8_0 scale of a quantized
 * activation must be the same fp16 value the CPU computes. */
static uint16_t f32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);

    x &= 0x7fffffffu;
    if (x > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (x < 0x38800000u) {
        if (x <= 0x33000000u)
            return sign;
        uint32_t e = x >> 23;
        uint32_t m = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((x >> 23) - 112) << 10 | ((x & 0x7fffffu) >> 13);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

static float bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

/* Elements per storage block and bytes per block of each dtype. */
static uint32_t block_elems(uint32_t dt)
{
    return dt == AIK_DTYPE_Q8_0 || dt == AIK_DTYPE_Q4_0 ? 32 : 1;
}

static uint32_t block_bytes(uint32_t dt)
{
    switch (dt) {
    case AIK_DTYPE_F32: return 4;
    case AIK_DTYPE_F16:
    case AIK_DTYPE_BF16: return 2;
    case AIK_DTYPE_Q8_0: return sizeof(aik_block_q8_0);
    case AIK_DTYPE_Q4_0: return sizeof(aik_block_q4_0);
    default: return 0;
    }
}

/* Bytes of one row of n elements (n a multiple of block_elems). */
static uint64_t row_bytes(uint32_t dt, uint64_t n)
{
    return n / block_elems(dt) * block_bytes(dt);
}

/* One row of a weight of any dtype, converted to f32. */
static void dequantize_row(uint32_t dt, const void *src, float *dst, uint64_t n)
{
    switch (dt) {
    case AIK_DTYPE_F32:
        memmove(dst, src, n * sizeof(float)); /* a table row may share a buffer with the output */
        break;
    case AIK_DTYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = fp16_to_f32(((const uint16_t *)src)[i]);
        break;
    case AIK_DTYPE_BF16:
        for (uint64_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case AIK_DTYPE_Q8_0: {
        const aik_block_q8_0 *b = src;
        for (uint64_t i = 0; i < n / AIK_QK8_0; i++) {
            const float d = fp16_to_f32(b[i].d);
            for (int j = 0; j < AIK_QK8_0; j++)
                dst[i * AIK_QK8_0 + j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case AIK_DTYPE_Q4_0: {
        const aik_block_q4_0 *b = src;
        for (uint64_t i = 0; i < n / AIK_QK4_0; i++) {
            const float d = fp16_to_f32(b[i].d);
            for (int j = 0; j < AIK_QK4_0 / 2; j++) {
                dst[i * AIK_QK4_0 + j] = d * (float)((b[i].qs[j] & 0x0f) - 8);
                dst[i * AIK_QK4_0 + j + AIK_QK4_0 / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    }
}

/* Activations are quantized to q8_0 before a dot product with quantized
 * weights, as ggml and the CPU reference do: an NPU with int8 MACs does
 * the same, and matching this step is what keeps greedy tokens equal. */
static void quantize_row_q8_0(const float *x, aik_block_q8_0 *y, uint64_t n)
{
    for (uint64_t i = 0; i < n / AIK_QK8_0; i++) {
        const float *xb = x + i * AIK_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < AIK_QK8_0; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < AIK_QK8_0; j++)
            y[i].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

/* w · x over n elements: w one weight row in dtype dt, x the f32 row (or,
 * for q8_0 / q4_0 weights, its q8_0 copy xq). */
static float dot(uint32_t dt, const void *w, const float *x, const aik_block_q8_0 *xq, uint64_t n)
{
    float sum = 0.0f;

    switch (dt) {
    case AIK_DTYPE_F32:
        for (uint64_t i = 0; i < n; i++)
            sum += ((const float *)w)[i] * x[i];
        break;
    case AIK_DTYPE_F16:
        for (uint64_t i = 0; i < n; i++)
            sum += fp16_to_f32(((const uint16_t *)w)[i]) * x[i];
        break;
    case AIK_DTYPE_BF16:
        for (uint64_t i = 0; i < n; i++)
            sum += bf16_to_f32(((const uint16_t *)w)[i]) * x[i];
        break;
    case AIK_DTYPE_Q8_0: {
        const aik_block_q8_0 *a = w;
        for (uint64_t i = 0; i < n / AIK_QK8_0; i++) {
            int32_t sumi = 0; /* exact integer sum per block, scaled once */
            for (int j = 0; j < AIK_QK8_0; j++)
                sumi += (int32_t)a[i].qs[j] * (int32_t)xq[i].qs[j];
            sum += (float)sumi * (fp16_to_f32(a[i].d) * fp16_to_f32(xq[i].d));
        }
        break;
    }
    case AIK_DTYPE_Q4_0: {
        const aik_block_q4_0 *a = w;
        for (uint64_t i = 0; i < n / AIK_QK4_0; i++) {
            int32_t sumi0 = 0, sumi1 = 0; /* low nibbles pair with x[0..15], high with x[16..31] */
            for (int j = 0; j < AIK_QK4_0 / 2; j++) {
                sumi0 += ((a[i].qs[j] & 0x0f) - 8) * xq[i].qs[j];
                sumi1 += ((a[i].qs[j] >> 4) - 8) * xq[i].qs[j + AIK_QK4_0 / 2];
            }
            sum += (float)(sumi0 + sumi1) * fp16_to_f32(a[i].d) * fp16_to_f32(xq[i].d);
        }
        break;
    }
    }
    return sum;
}

static void softmax_row(float *x, uint64_t n)
{
    float max = x[0];
    for (uint64_t i = 1; i < n; i++)
        max = fmaxf(max, x[i]);
    double sum = 0.0;
    for (uint64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (uint64_t i = 0; i < n; i++)
        x[i] *= inv;
}

/* ------------------------------------------------ vtable: the device --- */

static int ref_device_count(aik_error *err)
{
    (void)err;
    return 1; /* an NPU plug-in counts the /dev/accel nodes its driver owns; 0 is a valid answer */
}

static int ref_open(uint32_t index, aik_backend **ret_backend, aik_error *err)
{
    aik_backend *b;

    if (!ret_backend)
        return fail(err, -EINVAL, "open: no result pointer");
    if (index != 0)
        return fail(err, -ENODEV, "device %u does not exist (this plug-in has 1 device)", index);
    b = calloc(1, sizeof(*b));
    if (!b)
        return fail(err, -ENOMEM, "out of memory");
    b->index = index;
    *ret_backend = b;
    return 0;
}

static void ref_close(aik_backend *b)
{
    if (!b)
        return;
    free(b->xq);
    free(b->scores);
    free(b);
}

/* Which ops × dtypes this device executes. Weights may be any dtype for
 * the ops that read weights; every activation is f32. */
static uint32_t op_dtype_mask(uint32_t op)
{
    const uint32_t f32 = 1u << AIK_DTYPE_F32, all = (1u << AIK_DTYPE_COUNT) - 1;

    switch (op) {
    case AIK_OP_TOKENS:
    case AIK_OP_WEIGHT:
    case AIK_OP_GET_ROWS:
    case AIK_OP_MATMUL:
        return all;
    case AIK_OP_ADD:
    case AIK_OP_MUL:
    case AIK_OP_RMS_NORM:
    case AIK_OP_ROPE:
    case AIK_OP_ATTENTION:
    case AIK_OP_SILU:
    case AIK_OP_SWIGLU:
    case AIK_OP_SOFTMAX:
    case AIK_OP_RESHAPE:
    case AIK_OP_OUTPUT_ROWS:
        return f32;
    default:
        return 0;
    }
}

static int ref_get_info(aik_backend *b, aik_backend_info *info)
{
    aik_backend_info in;
    uint32_t size;

    if (!b || !info || info->struct_size == 0)
        return -EINVAL;
    /* Fill a whole struct, then copy only the caller's prefix: a host built
     * against an older, shorter aik_backend_info keeps working. */
    memset(&in, 0, sizeof(in));
    size = info->struct_size < sizeof(in) ? info->struct_size : (uint32_t)sizeof(in);
    in.struct_size = size;
    in.kind = AIK_BACKEND_CPU; /* an NPU plug-in says AIK_BACKEND_NPU */
    snprintf(in.name, sizeof(in.name), "reference CPU device %u (%s)", b->index, REF_NAME);
    snprintf(in.driver, sizeof(in.driver), "%s %s, scalar C", REF_NAME, REF_VERSION);
    in.memory_bytes = 0; /* shares host memory */
    for (uint32_t op = 0; op < AIK_OP_COUNT && op < 32; op++)
        in.op_dtypes[op] = op_dtype_mask(op);
    in.measured_gflops = b->measured_gflops;
    in.measured_gbps = b->measured_gbps;
    memcpy(info, &in, size);
    return 0;
}

/* ----------------------------------------------- vtable: the buffers --- */

static int ref_buffer_alloc(aik_backend *b, uint64_t bytes, aik_backend_buffer **ret_buffer, aik_error *err)
{
    aik_backend_buffer *buf;

    if (!b || !ret_buffer || bytes == 0)
        return fail(err, -EINVAL, "buffer_alloc: missing device or result pointer, or 0 bytes");
    if (bytes > REF_MAX_BUFFER)
        return fail(err, -E2BIG, "buffer of %llu bytes exceeds this device's limit of %llu",
                    (unsigned long long)bytes, (unsigned long long)REF_MAX_BUFFER);
    buf = calloc(1, sizeof(*buf));
    if (!buf)
        return fail(err, -ENOMEM, "out of memory");
    /* aligned_alloc wants a multiple of the alignment */
    buf->data = aligned_alloc(64, (size_t)((bytes + 63) & ~63ull));
    if (!buf->data) {
        free(buf);
        return fail(err, -ENOMEM, "out of memory for a buffer of %llu bytes", (unsigned long long)bytes);
    }
    buf->bytes = bytes;
    *ret_buffer = buf;
    return 0;
}

static void ref_buffer_free(aik_backend *b, aik_backend_buffer *buf)
{
    (void)b;
    if (!buf)
        return;
    free(buf->data);
    free(buf);
}

/* offset + bytes inside the buffer, without overflow. */
static bool in_range(const aik_backend_buffer *buf, uint64_t offset, uint64_t bytes)
{
    return offset <= buf->bytes && bytes <= buf->bytes - offset;
}

static int ref_buffer_upload(aik_backend *b, aik_backend_buffer *buf, uint64_t offset, const void *src,
                             uint64_t bytes, aik_error *err)
{
    if (!b || !buf || (!src && bytes))
        return fail(err, -EINVAL, "upload: missing device, buffer or source");
    if (!in_range(buf, offset, bytes))
        return fail(err, -ERANGE, "upload of %llu bytes at %llu is outside the buffer of %llu bytes",
                    (unsigned long long)bytes, (unsigned long long)offset, (unsigned long long)buf->bytes);
    if (bytes)
        memcpy(buf->data + offset, src, (size_t)bytes);
    return 0;
}

static int ref_buffer_download(aik_backend *b, aik_backend_buffer *buf, uint64_t offset, void *dst,
                               uint64_t bytes, aik_error *err)
{
    if (!b || !buf || (!dst && bytes))
        return fail(err, -EINVAL, "download: missing device, buffer or destination");
    if (!in_range(buf, offset, bytes))
        return fail(err, -ERANGE, "download of %llu bytes at %llu is outside the buffer of %llu bytes",
                    (unsigned long long)bytes, (unsigned long long)offset, (unsigned long long)buf->bytes);
    if (bytes)
        memcpy(dst, buf->data + offset, (size_t)bytes);
    return 0;
}

/* -------------------------------------------- segments: validation --- */

/* Rows of an activation node in this run (aik_backend_node's rule). */
static uint64_t node_rows(const aik_backend_node *n, const aik_backend_segment *seg)
{
    uint64_t base = n->row_base == 0 ? seg->n_batch : seg->n_out;
    return n->n_cols ? base * n->width / n->n_cols : 0;
}

/* Bytes a tensor can hold from its offset (0 without a buffer). */
static uint64_t room(const aik_backend_tensor *t)
{
    return t->buffer && t->offset < t->buffer->bytes ? t->buffer->bytes - t->offset : 0;
}

static void *tensor_ptr(const aik_backend_tensor *t)
{
    return t->buffer->data + t->offset;
}

/* Elements of a weight (product of its dims), or UINT64_MAX when the
 * shape is not usable (no dims, overflow). */
static uint64_t weight_elems(const aik_backend_node *w)
{
    uint64_t e = 1;

    if (w->n_dims < 1 || w->n_dims > AIK_MAX_DIMS)
        return UINT64_MAX;
    for (uint32_t i = 0; i < w->n_dims; i++) {
        if (w->shape[i] && e > UINT64_MAX / w->shape[i])
            return UINT64_MAX;
        e *= w->shape[i];
    }
    return e;
}

/* A weight node's storage holds its whole shape in its dtype. */
static bool weight_fits(const aik_backend_node *w)
{
    uint64_t e;

    if (!w)
        return false;
    e = weight_elems(w);
    if (!w->data.buffer || w->dtype >= AIK_DTYPE_COUNT || e == UINT64_MAX || w->shape[0] % block_elems(w->dtype))
        return false;
    return room(&w->data) >= e / block_elems(w->dtype) * block_bytes(w->dtype);
}

/* An activation source (may be NULL: absent) holds its rows × n_cols floats. */
static bool act_fits(const aik_backend_node *x, const aik_backend_segment *seg)
{
    if (!x)
        return false;
    uint64_t rows = node_rows(x, seg);
    return x->op != AIK_OP_WEIGHT && x->op != AIK_OP_TOKENS && x->data.buffer && x->n_cols && x->width &&
           rows <= UINT64_MAX / 4 / x->n_cols && room(&x->data) >= rows * x->n_cols * sizeof(float);
}

#define BAD(code, ...) return fail(err, code, "execute: node %u (op %u): " __VA_ARGS__)

/*
 * Check one node before anything runs: op and dtype supported, sources
 * earlier in the graph, shapes that agree, and every buffer it touches big
 * enough. A device that runs commands asynchronously must do this before
 * submitting anything, so that a refused segment has no side effects.
 */
static int validate_node(const aik_backend_segment *seg, uint32_t i, aik_error *err)
{
    const aik_backend_node *n = &seg->nodes[i];
    const aik_backend_node *s[3] = { NULL, NULL, NULL };
    uint64_t rows = node_rows(n, seg);
    uint32_t dt = AIK_DTYPE_F32;

    if (n->op >= AIK_OP_COUNT || n->op >= 32)
        return fail(err, -ENOTSUP, "execute: node %u: unknown op %u", i, n->op);
    for (int k = 0; k < 3; k++) {
        if (n->src[k] < -1 || n->src[k] >= (int32_t)i)
            BAD(-EINVAL, "source %d is not an earlier node", i, n->op, n->src[k]);
        if (n->src[k] >= 0)
            s[k] = &seg->nodes[n->src[k]];
    }
    if (n->op == AIK_OP_NONE || n->op == AIK_OP_TOKENS || n->op == AIK_OP_WEIGHT)
        return 0; /* inputs: nothing to compute */
    /* the dtype that decides support: the weight's for the ops that read one */
    if (n->op == AIK_OP_GET_ROWS || n->op == AIK_OP_MATMUL) {
        const aik_backend_node *w = n->op == AIK_OP_GET_ROWS ? s[0] : s[1];
        if (!w || w->op != AIK_OP_WEIGHT)
            BAD(-EINVAL, "needs a weight operand", i, n->op);
        dt = w->dtype;
    }
    if (dt >= AIK_DTYPE_COUNT || !(op_dtype_mask(n->op) & (1u << dt)))
        BAD(-ENOTSUP, "dtype %u is not supported for this op", i, n->op, dt);
    if (!n->data.buffer || !n->n_cols || !n->width || rows > UINT64_MAX / 4 / n->n_cols ||
        room(&n->data) < rows * n->n_cols * sizeof(float))
        BAD(-ERANGE, "output buffer missing or too small for %llu rows of %u columns", i, n->op,
            (unsigned long long)rows, n->n_cols);

    switch ((aik_op)n->op) {
    case AIK_OP_GET_ROWS:
        if (!s[1] || s[1]->op != AIK_OP_TOKENS || room(&s[1]->data) < (uint64_t)seg->n_batch * sizeof(int32_t))
            BAD(-EINVAL, "needs the tokens node with n_batch ids as its second operand", i, n->op);
        if (!weight_fits(s[0]) || s[0]->n_dims != 2 || s[0]->shape[0] != n->n_cols || rows != seg->n_batch)
            BAD(-EINVAL, "table is not [%u, vocab] or its buffer is too small", i, n->op, n->n_cols);
        return 0;
    case AIK_OP_MATMUL:
        if (!weight_fits(s[1]) || (s[1]->n_dims > 1 ? s[1]->shape[1] : 1) != n->n_cols ||
            weight_elems(s[1]) != s[1]->shape[0] * n->n_cols)
            BAD(-EINVAL, "weight shape does not give %u output columns, or its buffer is too small", i, n->op,
                n->n_cols);
        if (!act_fits(s[0], seg) || s[0]->n_cols != s[1]->shape[0] || node_rows(s[0], seg) != rows)
            BAD(-EINVAL, "input is not %llu rows of %llu columns", i, n->op, (unsigned long long)rows,
                (unsigned long long)s[1]->shape[0]);
        return 0;
    case AIK_OP_ADD:
    case AIK_OP_MUL:
    case AIK_OP_SWIGLU:
        if (!s[0] || !act_fits(s[0], seg) || s[0]->n_cols != n->n_cols || node_rows(s[0], seg) != rows || !s[1])
            BAD(-EINVAL, "first operand does not have the output's shape", i, n->op);
        if (s[1]->op == AIK_OP_WEIGHT) { /* broadcast over rows: one f32 row */
            if (n->op == AIK_OP_SWIGLU || s[1]->dtype != AIK_DTYPE_F32 || weight_elems(s[1]) != n->n_cols ||
                !weight_fits(s[1]))
                BAD(-EINVAL, "weight operand is not %u f32 values", i, n->op, n->n_cols);
        } else if (!act_fits(s[1], seg) || s[1]->n_cols != n->n_cols || node_rows(s[1], seg) != rows) {
            BAD(-EINVAL, "second operand does not have the output's shape", i, n->op);
        }
        return 0;
    case AIK_OP_RMS_NORM:
        if (s[1] && (s[1]->op != AIK_OP_WEIGHT || s[1]->dtype != AIK_DTYPE_F32 ||
                     weight_elems(s[1]) != n->n_cols || !weight_fits(s[1])))
            BAD(-EINVAL, "gain is not %u f32 values", i, n->op, n->n_cols);
        __attribute__((fallthrough)); /* the input has the output's shape, like these: */
    case AIK_OP_SILU:
    case AIK_OP_SOFTMAX:
    case AIK_OP_ROPE:
        if (!s[0] || !act_fits(s[0], seg) || s[0]->n_cols != n->n_cols || node_rows(s[0], seg) != rows)
            BAD(-EINVAL, "input does not have the output's shape", i, n->op);
        if (n->op == AIK_OP_ROPE &&
            (n->head_dim == 0 || n->head_dim % 2 || (uint64_t)n->n_heads * n->head_dim != n->n_cols))
            BAD(-EINVAL, "rope of %u heads × %u on %u columns", i, n->op, n->n_heads, n->head_dim, n->n_cols);
        return 0;
    case AIK_OP_RESHAPE:
        if (!s[0] || !act_fits(s[0], seg) || (uint64_t)node_rows(s[0], seg) * s[0]->n_cols != rows * n->n_cols)
            BAD(-EINVAL, "reshape changes the number of elements", i, n->op);
        return 0;
    case AIK_OP_OUTPUT_ROWS:
        if (!s[0] || !act_fits(s[0], seg) || s[0]->n_cols != n->n_cols || node_rows(s[0], seg) != seg->n_batch ||
            rows != seg->n_out)
            BAD(-EINVAL, "input is not n_batch rows of %u columns or output not n_out rows", i, n->op, n->n_cols);
        return 0;
    case AIK_OP_ATTENTION: {
        uint64_t kv_cols = (uint64_t)n->n_kv_heads * n->head_dim;
        uint64_t cache = (uint64_t)seg->ctx_len * kv_cols * sizeof(float);
        if (n->n_kv_heads == 0 || n->head_dim == 0 || n->n_heads % n->n_kv_heads ||
            (uint64_t)n->n_heads * n->head_dim != n->n_cols)
            BAD(-EINVAL, "%u heads on %u kv heads of %u do not fit %u columns", i, n->op, n->n_heads,
                n->n_kv_heads, n->head_dim, n->n_cols);
        if (n->layer >= seg->n_kv || !seg->k_cache || !seg->v_cache || room(&seg->k_cache[n->layer]) < cache ||
            room(&seg->v_cache[n->layer]) < cache)
            BAD(-EINVAL, "KV cache of layer %u missing or smaller than %u positions", i, n->op, n->layer,
                seg->ctx_len);
        for (int k = 0; k < 3; k++)
            if (!s[k] || !act_fits(s[k], seg) || node_rows(s[k], seg) != rows ||
                s[k]->n_cols != (k == 0 ? n->n_cols : kv_cols))
                BAD(-EINVAL, "operand %d (q, k, v) does not have %llu rows of the right width", i, n->op, k,
                    (unsigned long long)rows);
        return 0;
    }
    default:
        return 0;
    }
}

static int validate_segment(const aik_backend_segment *seg, aik_error *err)
{
    int r;

    if (seg->struct_size < sizeof(aik_backend_segment))
        return fail(err, -EINVAL, "execute: segment struct of %u bytes, this plug-in needs %zu", seg->struct_size,
                    sizeof(aik_backend_segment));
    if (!seg->nodes || seg->first >= seg->end || seg->end > seg->n_nodes || seg->n_batch == 0 || seg->n_out == 0 ||
        seg->n_out > seg->n_batch)
        return fail(err, -EINVAL, "execute: bad segment (nodes %u..%u of %u, batch %u, out %u)", seg->first,
                    seg->end, seg->n_nodes, seg->n_batch, seg->n_out);
    for (uint32_t i = seg->first; i < seg->end; i++)
        if (seg->nodes[i].op == AIK_OP_ATTENTION || seg->nodes[i].op == AIK_OP_ROPE) {
            /* positions n_past .. n_past + n_batch - 1 must exist */
            if ((uint64_t)seg->n_past + seg->n_batch > seg->ctx_len)
                return fail(err, -ENOSPC, "execute: positions %u + %u exceed the context of %u", seg->n_past,
                            seg->n_batch, seg->ctx_len);
            break;
        }
    for (uint32_t i = seg->first; i < seg->end; i++)
        if ((r = validate_node(seg, i, err)) < 0)
            return r;
    return 0;
}

/* ---------------------------------------------- segments: execution --- */

static int run_matmul(aik_backend *b, const aik_backend_segment *seg, const aik_backend_node *n, aik_error *err)
{
    const aik_backend_node *x = &seg->nodes[n->src[0]], *w = &seg->nodes[n->src[1]];
    const uint64_t K = w->shape[0], M = n->n_cols, rows = node_rows(n, seg);
    const uint64_t wrow = row_bytes(w->dtype, K);
    const bool quant = w->dtype == AIK_DTYPE_Q8_0 || w->dtype == AIK_DTYPE_Q4_0;
    const unsigned char *W = tensor_ptr(&w->data);
    const float *X = tensor_ptr(&x->data);
    float *Y = tensor_ptr(&n->data);
    int r;

    if (quant && (r = grow(&b->xq, &b->xq_bytes, (size_t)(K / AIK_QK8_0 * sizeof(aik_block_q8_0)), err)) < 0)
        return r;
    /* y[row][m] = sum_k W[m][k] x[row][k]: one dot product per output */
    for (uint64_t row = 0; row < rows; row++) {
        const float *xr = X + row * K;
        if (quant)
            quantize_row_q8_0(xr, b->xq, K);
        for (uint64_t m = 0; m < M; m++)
            Y[row * M + m] = dot(w->dtype, W + m * wrow, xr, b->xq, K);
    }
    return 0;
}

/* Causal grouped-query attention of one layer: append this batch's k and v
 * to the cache at n_past, then each query row at position n_past + r
 * attends to positions 0..n_past + r. Query head h reads kv head
 * h / (n_heads / n_kv_heads). */
static int run_attention(aik_backend *b, const aik_backend_segment *seg, const aik_backend_node *n, aik_error *err)
{
    const aik_backend_node *q = &seg->nodes[n->src[0]], *k = &seg->nodes[n->src[1]], *v = &seg->nodes[n->src[2]];
    const uint64_t rows = node_rows(n, seg), kv_cols = (uint64_t)n->n_kv_heads * n->head_dim;
    const uint32_t group = n->n_heads / n->n_kv_heads, D = n->head_dim;
    float *kc = tensor_ptr(&seg->k_cache[n->layer]), *vc = tensor_ptr(&seg->v_cache[n->layer]);
    const float *Q = tensor_ptr(&q->data);
    float *Y = tensor_ptr(&n->data);
    int r;

    if ((r = grow((void **)&b->scores, &b->scores_len, ((size_t)seg->n_past + rows) * sizeof(float), err)) < 0)
        return r;
    /* memmove: nothing in the contract forbids a segment whose k or v
     * shares a buffer with the cache, and overlapping memcpy is undefined */
    memmove(kc + (uint64_t)seg->n_past * kv_cols, tensor_ptr(&k->data), rows * kv_cols * sizeof(float));
    memmove(vc + (uint64_t)seg->n_past * kv_cols, tensor_ptr(&v->data), rows * kv_cols * sizeof(float));
    for (uint64_t row = 0; row < rows; row++) {
        const uint64_t n_pos = seg->n_past + row + 1;
        for (uint32_t h = 0; h < n->n_heads; h++) {
            const float *qh = Q + row * n->n_cols + (uint64_t)h * D;
            const float *kh = kc + (uint64_t)(h / group) * D, *vh = vc + (uint64_t)(h / group) * D;
            float *out = Y + row * n->n_cols + (uint64_t)h * D;
            for (uint64_t p = 0; p < n_pos; p++) {
                float s = 0.0f;
                for (uint32_t d = 0; d < D; d++)
                    s += qh[d] * kh[p * kv_cols + d];
                b->scores[p] = n->scale * s;
            }
            softmax_row(b->scores, n_pos);
            for (uint32_t d = 0; d < D; d++)
                out[d] = 0.0f;
            for (uint64_t p = 0; p < n_pos; p++)
                for (uint32_t d = 0; d < D; d++)
                    out[d] += b->scores[p] * vh[p * kv_cols + d];
        }
    }
    return 0;
}

static int run_node(aik_backend *b, const aik_backend_segment *seg, uint32_t i, aik_error *err)
{
    const aik_backend_node *n = &seg->nodes[i];
    const aik_backend_node *s0 = n->src[0] >= 0 ? &seg->nodes[n->src[0]] : NULL;
    const aik_backend_node *s1 = n->src[1] >= 0 ? &seg->nodes[n->src[1]] : NULL;
    const uint64_t rows = node_rows(n, seg), cols = n->n_cols, elems = rows * cols;

    /* Inputs compute nothing; their sources (if any) are not validated and
     * must not be touched. */
    if (n->op == AIK_OP_NONE || n->op == AIK_OP_TOKENS || n->op == AIK_OP_WEIGHT)
        return 0;
    float *y = tensor_ptr(&n->data);
    const float *a = s0 && s0->op != AIK_OP_WEIGHT ? tensor_ptr(&s0->data) : NULL;

    switch ((aik_op)n->op) {
    case AIK_OP_NONE:
    case AIK_OP_TOKENS:
    case AIK_OP_WEIGHT:
    case AIK_OP_COUNT:
        return 0;
    case AIK_OP_GET_ROWS: {
        const int32_t *ids = tensor_ptr(&s1->data);
        const unsigned char *table = tensor_ptr(&s0->data);
        const uint64_t vocab = s0->shape[1], rb = row_bytes(s0->dtype, cols);
        for (uint64_t r = 0; r < rows; r++) {
            if (ids[r] < 0 || (uint64_t)ids[r] >= vocab) /* never read outside the table */
                memset(y + r * cols, 0, cols * sizeof(float));
            else
                dequantize_row(s0->dtype, table + (uint64_t)ids[r] * rb, y + r * cols, cols);
        }
        return 0;
    }
    case AIK_OP_MATMUL:
        return run_matmul(b, seg, n, err);
    case AIK_OP_ADD:
    case AIK_OP_MUL: {
        /* b is an activation of the same shape, or one f32 row broadcast */
        const float *bb = tensor_ptr(&s1->data);
        const bool bcast = s1->op == AIK_OP_WEIGHT;
        for (uint64_t e = 0; e < elems; e++) {
            float o = bcast ? bb[e % cols] : bb[e];
            y[e] = n->op == AIK_OP_ADD ? a[e] + o : a[e] * o;
        }
        return 0;
    }
    case AIK_OP_RMS_NORM: {
        const float *w = s1 ? tensor_ptr(&s1->data) : NULL;
        for (uint64_t r = 0; r < rows; r++) {
            const float *x = a + r * cols;
            double ss = 0.0;
            for (uint64_t c = 0; c < cols; c++)
                ss += (double)x[c] * x[c];
            const float inv = 1.0f / sqrtf((float)(ss / (double)cols) + n->eps);
            for (uint64_t c = 0; c < cols; c++)
                y[r * cols + c] = x[c] * inv * (w ? w[c] : 1.0f);
        }
        return 0;
    }
    case AIK_OP_ROPE: {
        const uint32_t half = n->head_dim / 2;
        const bool neox = n->rope_mode == AIK_ROPE_NEOX;
        if (y != a)
            memmove(y, a, elems * sizeof(float));
        /* Frequencies theta^(-2k/head_dim) as successive powers of
         * theta^(-2/head_dim) in double, as the CPU kernels evaluate the
         * reference's formula (kernels/cpu/dispatch.c aik_rope): the same
         * float cos/sin as the CPU executor, so whole models agree closely
         * enough that quantized activations round the same way. */
        const double step = pow((double)n->theta, -2.0 / n->head_dim);
        for (uint64_t r = 0; r < rows; r++) {
            const double pos = (double)(seg->n_past + r); /* the row's position in the sequence */
            double freq = 1.0;
            for (uint32_t k = 0; k < half; k++, freq *= step) {
                const float c = (float)cos(pos * freq), s = (float)sin(pos * freq);
                const uint32_t i0 = neox ? k : 2 * k, i1 = neox ? k + half : 2 * k + 1;
                for (uint32_t h = 0; h < n->n_heads; h++) {
                    float *v = y + r * cols + (uint64_t)h * n->head_dim;
                    const float x0 = v[i0], x1 = v[i1];
                    v[i0] = x0 * c - x1 * s;
                    v[i1] = x0 * s + x1 * c;
                }
            }
        }
        return 0;
    }
    case AIK_OP_ATTENTION:
        return run_attention(b, seg, n, err);
    case AIK_OP_SILU:
        for (uint64_t e = 0; e < elems; e++)
            y[e] = a[e] / (1.0f + expf(-a[e]));
        return 0;
    case AIK_OP_SWIGLU: {
        const float *up = tensor_ptr(&s1->data);
        for (uint64_t e = 0; e < elems; e++)
            y[e] = a[e] / (1.0f + expf(-a[e])) * up[e];
        return 0;
    }
    case AIK_OP_SOFTMAX:
        if (y != a)
            memmove(y, a, elems * sizeof(float));
        for (uint64_t r = 0; r < rows; r++)
            softmax_row(y + r * cols, cols);
        return 0;
    case AIK_OP_RESHAPE:
        /* a view: the host usually gives it its source's storage; copy
         * only when it did not */
        if (y != a)
            memmove(y, a, elems * sizeof(float));
        return 0;
    case AIK_OP_OUTPUT_ROWS:
        /* the last n_out rows of the batch */
        memmove(y, a + (uint64_t)(seg->n_batch - seg->n_out) * cols, elems * sizeof(float));
        return 0;
    }
    return fail(err, -ENOTSUP, "execute: node %u: op %u", i, n->op);
}

static int ref_execute(aik_backend *b, const aik_backend_segment *seg, aik_error *err)
{
    int r;

    if (!b || !seg)
        return fail(err, -EINVAL, "execute: missing device or segment");
    if ((r = validate_segment(seg, err)) < 0)
        return r;
    /* In order: a node's sources are earlier nodes. A device with a command
     * queue would record them all here and submit once. */
    for (uint32_t i = seg->first; i < seg->end; i++)
        if ((r = run_node(b, seg, i, err)) < 0)
            return r;
    return 0;
}

/* execute() is synchronous here. A device with a queue returns from execute
 * after submitting and waits for its fence in synchronize(). */
static int ref_synchronize(aik_backend *b, aik_error *err)
{
    return b ? 0 : fail(err, -EINVAL, "synchronize: missing device");
}

/* ---------------------------------------------------- benchmark --- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Throughput the placement cost model can use: an f32 matmul (GFLOP/s) and
 * an add (GB/s), each through execute() like real work, best of three. */
static int ref_benchmark(aik_backend *b, aik_error *err)
{
    enum { M = 128, K = 256, N = 16, ADD = 1 << 18 };
    aik_backend_buffer *buf[6] = { 0 };
    const uint64_t sizes[6] = { (uint64_t)N * K * 4, (uint64_t)K * M * 4, (uint64_t)N * M * 4, ADD * 4ull, ADD * 4ull,
                                ADD * 4ull };
    double best_mm = 1e30, best_add = 1e30;
    int r = 0;

    if (!b)
        return fail(err, -EINVAL, "benchmark: missing device");
    for (int i = 0; i < 6 && r == 0; i++)
        if ((r = ref_buffer_alloc(b, sizes[i], &buf[i], err)) == 0)
            memset(buf[i]->data, 0, (size_t)sizes[i]);
    if (r < 0)
        goto out;
    aik_backend_node mm[3] = {
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { buf[0], 0 }, .n_cols = K, .width = K },
        { .op = AIK_OP_WEIGHT, .src = { -1, -1, -1 }, .data = { buf[1], 0 }, .dtype = AIK_DTYPE_F32, .n_dims = 2,
          .shape = { K, M, 1, 1 } },
        { .op = AIK_OP_MATMUL, .src = { 0, 1, -1 }, .data = { buf[2], 0 }, .n_cols = M, .width = M },
    };
    aik_backend_node add[3] = {
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { buf[3], 0 }, .n_cols = 1024, .width = 1024 },
        { .op = AIK_OP_NONE, .src = { -1, -1, -1 }, .data = { buf[4], 0 }, .n_cols = 1024, .width = 1024 },
        { .op = AIK_OP_ADD, .src = { 0, 1, -1 }, .data = { buf[5], 0 }, .n_cols = 1024, .width = 1024 },
    };
    aik_backend_segment s_mm = { .struct_size = sizeof(s_mm), .nodes = mm, .n_nodes = 3, .first = 2, .end = 3,
                                 .n_batch = N, .n_out = N };
    aik_backend_segment s_add = { .struct_size = sizeof(s_add), .nodes = add, .n_nodes = 3, .first = 2, .end = 3,
                                  .n_batch = ADD / 1024, .n_out = ADD / 1024 };
    for (int rep = 0; rep < 3 && r == 0; rep++) {
        double t0 = now_s();
        if ((r = ref_execute(b, &s_mm, err)) < 0)
            break;
        double t1 = now_s();
        if ((r = ref_execute(b, &s_add, err)) < 0)
            break;
        double t2 = now_s();
        best_mm = t1 - t0 < best_mm ? t1 - t0 : best_mm;
        best_add = t2 - t1 < best_add ? t2 - t1 : best_add;
    }
    if (r == 0) {
        b->measured_gflops = 2.0 * M * K * N / (best_mm > 1e-9 ? best_mm : 1e-9) * 1e-9;
        b->measured_gbps = 3.0 * ADD * 4 / (best_add > 1e-9 ? best_add : 1e-9) * 1e-9;
    }
out:
    for (int i = 0; i < 6; i++)
        ref_buffer_free(b, buf[i]);
    return r;
}

/* ------------------------------------------------------- the module --- */

static const aik_backend_ops ref_ops = {
    .struct_size = sizeof(aik_backend_ops),
    .abi_major = AIK_BACKEND_ABI_MAJOR, /* the host refuses any other major */
    .abi_minor = AIK_BACKEND_ABI_MINOR,
    .name = "ref",
    .device_count = ref_device_count,
    .open = ref_open,
    .close = ref_close,
    .get_info = ref_get_info,
    .buffer_alloc = ref_buffer_alloc,
    .buffer_free = ref_buffer_free,
    .buffer_upload = ref_buffer_upload,
    .buffer_download = ref_buffer_download,
    .execute = ref_execute,
    .synchronize = ref_synchronize, /* optional */
    .benchmark = ref_benchmark,     /* optional */
};

AIK_MODULE(AIK_MODULE_BACKEND, REF_NAME, REF_VERSION, &ref_ops, sizeof(ref_ops));
