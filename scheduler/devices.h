/* SPDX-License-Identifier: MIT */
/*
 * Device discovery for placement and `aikctl devices`: the CPU (ISA level,
 * cores, memory), Vulkan devices (when built with AIK_HAVE_VULKAN) and
 * accelerator nodes under /dev/accel (the Linux compute-accelerator
 * subsystem that NPU drivers register with). Where a kind of device is
 * missing, the list says why, so a person can act on it.
 */
#ifndef AIK_SCHEDULER_DEVICES_H
#define AIK_SCHEDULER_DEVICES_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"

#define AIK_DEVICES_MAX 32

typedef enum aik_device_source {
    AIK_DEVICE_SRC_CPU = 0,
    AIK_DEVICE_SRC_VULKAN = 1,
    AIK_DEVICE_SRC_ACCEL = 2, /* a /dev/accel/accelN node; no backend drives it yet */
} aik_device_source;

typedef struct aik_device_entry {
    aik_device_source source;
    uint32_t index;         /* index within its source (Vulkan device index, accel minor) */
    aik_backend_info info;  /* name, kind, memory, ops (for accel nodes: op_dtypes all 0) */
    char detail[256];       /* CPU features, Vulkan device type, accel driver name */
} aik_device_entry;

typedef struct aik_device_list {
    aik_device_entry dev[AIK_DEVICES_MAX];
    uint32_t n;
    char vulkan_note[256];  /* why no Vulkan device is listed ("" when some are) */
    char accel_note[256];   /* why no /dev/accel node is listed ("" when some are) */
} aik_device_list;

enum {
    AIK_DEVICES_BENCHMARK = 1u << 0, /* run each backend's benchmark: measured_* filled (slower) */
};

/* Probe every source. accel_dir is the directory to scan (NULL:
 * "/dev/accel"; tests point it elsewhere). flags: AIK_DEVICES_*. Missing
 * sources are not errors: they are explained in the notes. Returns 0 or
 * -EINVAL. */
int aik_devices_discover(const char *accel_dir, unsigned flags, aik_device_list *ret_list);

/* "cpu", "gpu", "npu". */
const char *aik_backend_kind_name(uint32_t kind);

#endif
