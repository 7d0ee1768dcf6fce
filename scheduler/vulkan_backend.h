/* SPDX-License-Identifier: MIT */
/*
 * The Vulkan 1.2 compute backend (only built with have_vulkan, which defines
 * AIK_HAVE_VULKAN). It implements aik_backend_ops (aik/backend.h) over the
 * system Vulkan loader; shaders are SPIR-V compiled by glslc at build time
 * and embedded (kernels/vulkan/).
 *
 * Memory: a few large VkDeviceMemory blocks (host-visible, device-local when
 * the device offers such a type), sub-allocated first-fit; one VkBuffer per
 * block, tensors are (block, offset). Uploads and downloads are memcpy into
 * the persistent mapping: no staging copies, so a discrete GPU without a
 * host-visible device-local heap runs from host memory (correct, slower).
 *
 * Execution: one command buffer per segment, a full memory barrier between
 * dependent dispatches, submitted and waited for before execute() returns.
 */
#ifndef AIK_SCHEDULER_VULKAN_BACKEND_H
#define AIK_SCHEDULER_VULKAN_BACKEND_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"
#include "graph/graph.h"

typedef struct aik_vk aik_vk;               /* an open device (the aik_backend behind the vtable) */
typedef struct aik_vk_buffer aik_vk_buffer; /* a sub-allocation (the aik_backend_buffer) */

/* The vtable of this backend (name "vulkan"). */
const aik_backend_ops *aik_vk_backend_ops(void);

/* Physical devices with a compute queue. -ENOENT with an explanation when
 * no Vulkan loader or driver answers (instance creation fails). */
int aik_vk_device_count(aik_error *err);

/* Open device `index` (in the order of aik_vk_device_count). */
int aik_vk_open(uint32_t index, aik_vk **ret_vk, aik_error *err);
void aik_vk_close(aik_vk *vk);

int aik_vk_get_info(aik_vk *vk, aik_backend_info *info);

/* Buffers: see aik_backend_ops. */
int aik_vk_buffer_alloc(aik_vk *vk, uint64_t bytes, aik_vk_buffer **ret_buf, aik_error *err);
void aik_vk_buffer_free(aik_vk *vk, aik_vk_buffer *buf);
int aik_vk_buffer_upload(aik_vk *vk, aik_vk_buffer *buf, uint64_t offset, const void *src, uint64_t bytes,
                         aik_error *err);
int aik_vk_buffer_download(aik_vk *vk, aik_vk_buffer *buf, uint64_t offset, void *dst, uint64_t bytes,
                           aik_error *err);

/* Execute a segment (synchronous). */
int aik_vk_execute(aik_vk *vk, const aik_backend_segment *seg, aik_error *err);

/* Time an f32 matmul and an add (best of three, submission included) and
 * report them as measured_gflops / measured_gbps in aik_vk_get_info. */
int aik_vk_benchmark(aik_vk *vk, aik_error *err);

/* Bytes currently sub-allocated and reserved in VkDeviceMemory blocks. */
uint64_t aik_vk_bytes_used(const aik_vk *vk);
uint64_t aik_vk_bytes_reserved(const aik_vk *vk);

/* ---- whole-graph execution on one Vulkan device ---- */

typedef struct aik_vk_exec aik_vk_exec;

typedef struct aik_vk_exec_config {
    uint32_t max_batch; /* most tokens per run() */
    uint32_t ctx_len;   /* KV-cache positions; 0 = the model's */
} aik_vk_exec_config;

/* Upload the graph's weights once, plan activation buffers (reused by
 * liveness, like the CPU executor) and allocate the KV cache on the device.
 * vk and g must outlive the executor. */
int aik_vk_exec_new(aik_vk *vk, const aik_graph *g, const aik_vk_exec_config *cfg, aik_vk_exec **ret_exec,
                    aik_error *err);
void aik_vk_exec_free(aik_vk_exec *e);

/* Same contract as aik_cpu_exec_run: n_tokens at positions n_past.., logits
 * of the last n_out tokens (valid until the next call), KV cache unchanged
 * on -ENOSPC / -EINVAL. The whole graph is one segment, one command buffer. */
int aik_vk_exec_run(aik_vk_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                    const float **ret_logits, aik_error *err);

uint32_t aik_vk_exec_n_past(const aik_vk_exec *e);

/* Forget positions >= n_past. */
void aik_vk_exec_truncate(aik_vk_exec *e, uint32_t n_past);

#endif
