/* SPDX-License-Identifier: MIT */
/*
 * Device discovery for placement and `aikctl devices`: the CPU (ISA level,
 * cores, memory), Vulkan devices (when built with AIK_HAVE_VULKAN),
 * accelerator nodes under /dev/accel (the Linux compute-accelerator
 * subsystem that NPU drivers register with) and the devices of verified
 * backend plug-ins (scheduler/backend_plugin.h). Where a kind of device is
 * missing or a plug-in was refused, the list says why, so a person can act
 * on it.
 */
#ifndef AIK_SCHEDULER_DEVICES_H
#define AIK_SCHEDULER_DEVICES_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"
#include "scheduler/backend_plugin.h"

#define AIK_DEVICES_MAX 32

typedef enum aik_device_source {
    AIK_DEVICE_SRC_CPU = 0,
    AIK_DEVICE_SRC_VULKAN = 1,
    AIK_DEVICE_SRC_ACCEL = 2, /* a /dev/accel/accelN node, as the kernel lists it */
    AIK_DEVICE_SRC_PLUGIN = 3, /* a device of a verified backend plug-in (index: within the plug-in) */
} aik_device_source;

typedef struct aik_device_entry {
    aik_device_source source;
    uint32_t index;         /* index within its source (Vulkan device index, accel minor) */
    aik_backend_info info;  /* name, kind, memory, ops (for accel nodes: op_dtypes all 0) */
    char detail[256];       /* CPU features, Vulkan device type, accel driver name, plug-in name and version */
} aik_device_entry;

typedef struct aik_device_list {
    aik_device_entry dev[AIK_DEVICES_MAX];
    uint32_t n;
    char vulkan_note[256];  /* why no Vulkan device is listed ("" when some are) */
    char accel_note[256];   /* why no /dev/accel node is listed ("" when some are) */
    char plugin_note[256];  /* why no plug-in was looked at: no directory configured or readable ("" otherwise) */
    aik_plugin_refusal plugin_refused[AIK_PLUGIN_MAX]; /* plug-ins that gave no device, and why */
    uint32_t n_plugin_refused;
} aik_device_list;

enum {
    AIK_DEVICES_BENCHMARK = 1u << 0, /* run each backend's benchmark: measured_* filled (slower) */
};

/* Probe every source. accel_dir is the directory to scan (NULL:
 * "/dev/accel"; tests point it elsewhere). flags: AIK_DEVICES_*. Missing
 * sources are not errors: they are explained in the notes. Returns 0 or
 * -EINVAL. */
int aik_devices_discover(const char *accel_dir, unsigned flags, aik_device_list *ret_list);

/* Discovery with backend plug-ins. */
typedef struct aik_devices_config {
    const char *accel_dir;  /* NULL: "/dev/accel" */
    unsigned flags;         /* AIK_DEVICES_* */
    const char *plugin_dir; /* plug-in directory to scan; NULL: none (plugin_note says so) */
    const char *trust_dir;  /* trust store the plug-ins are verified against; NULL: an empty one */
    uint32_t load_flags;    /* AIK_LOAD_DEVELOPER: accept unsigned plug-ins (with a warning in detail) */
} aik_devices_config;

/* As aik_devices_discover, and also load every plug-in of cfg->plugin_dir
 * (aik_plugin_scan), list each of its devices (AIK_DEVICE_SRC_PLUGIN,
 * benchmarked with AIK_DEVICES_BENCHMARK when the plug-in can) and every
 * refused plug-in with its reason. Plug-ins are closed again before
 * returning: the list is a description. Returns 0 or -EINVAL. */
int aik_devices_discover_config(const aik_devices_config *cfg, aik_device_list *ret_list);

/* "cpu", "gpu", "npu". */
const char *aik_backend_kind_name(uint32_t kind);

#endif
