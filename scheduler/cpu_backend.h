/* SPDX-License-Identifier: MIT */
/*
 * The in-tree "cpu" backend: aik_backend_ops (abi/aik/backend.h) over the
 * kernels of kernels/cpu, so the CPU takes part in split execution
 * (scheduler/split_exec.h) like any other device. Buffers are 64-byte
 * aligned host memory; execute() runs nodes [first, end) with the semantics
 * and the kernels of the whole-graph CPU executor (scheduler/cpu_exec.c) —
 * same kernels, same order, so results are bitwise equal to it — matmuls and
 * attention threaded over a pool. execute() is synchronous.
 *
 * A RESHAPE node is a view: the host binds it to its source's storage, the
 * backend computes nothing for it (as the Vulkan backend).
 */
#ifndef AIK_SCHEDULER_CPU_BACKEND_H
#define AIK_SCHEDULER_CPU_BACKEND_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"
#include "scheduler/threadpool.h"

/* The vtable (name "cpu", one device). Its open() makes a pool of one
 * thread per online CPU, which close() stops. */
const aik_backend_ops *aik_cpu_backend_ops(void);

/* Open the CPU device over a pool the caller owns (may be NULL: single
 * threaded); the pool must outlive the backend, which is closed with
 * aik_cpu_backend_ops()->close. Lets an executor share one pool between its
 * whole-graph and split paths. */
int aik_cpu_backend_open_pool(aik_threadpool *pool, aik_backend **ret_backend, aik_error *err);

/* Bytes currently allocated in buffers of this backend. */
uint64_t aik_cpu_backend_bytes_used(const aik_backend *b);

#endif
