/* SPDX-License-Identifier: MIT */
/*
 * Device inventories for the placement planner: a YAML file describing a
 * (possibly hypothetical) set of devices, what each can execute and how fast,
 * and the links between them. Real discovery (scheduler/devices.h) describes
 * this host; an inventory lets placement be planned, explained and tested for
 * hosts we do not have (a GPU too small for the model, an NPU that supports
 * only some ops). See docs/placement.md for the format.
 *
 * The parser is strict: unknown keys, wrong types, duplicate keys, anchors,
 * aliases, tags, more than one document and values beyond the caps below are
 * refused with "file:line:column: key.path" in aik_error.where.
 */
#ifndef AIK_SCHEDULER_DEVICE_PROFILE_H
#define AIK_SCHEDULER_DEVICE_PROFILE_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"

#define AIK_INV_MAX_DEVICES 16
#define AIK_INV_MAX_LINKS 64
#define AIK_INV_ID_MAX 32       /* device id length limit, bytes incl. NUL */
#define AIK_INV_MAX_FILE (1u << 20)
#define AIK_INV_MAX_NODES 4096
#define AIK_INV_MAX_DEPTH 8
#define AIK_INV_MAX_STRING 256

typedef struct aik_inv_device {
    char id[AIK_INV_ID_MAX];   /* "cpu0", "vulkan0", "npu0": [a-z0-9_-], unique */
    uint32_t backend_bit;      /* AIK_BACKEND_BIT_* (loader/exec_profile.h) it runs under */
    aik_backend_info info;     /* kind, name (= id), memory_bytes, op_dtypes, declared_gflops/gbps */
    double launch_us;          /* fixed overhead per executed segment, microseconds */
} aik_inv_device;

typedef struct aik_inv_link {
    uint32_t a, b;             /* device indices; links are symmetric */
    double gbps;               /* > 0 */
    double latency_us;         /* >= 0 */
} aik_inv_link;

typedef struct aik_device_inventory {
    char name[64];
    uint32_t n_devices;
    aik_inv_device dev[AIK_INV_MAX_DEVICES];
    uint32_t n_links;
    aik_inv_link link[AIK_INV_MAX_LINKS];
    double default_gbps;       /* for device pairs without a link entry */
    double default_latency_us;
} aik_device_inventory;

/* Parse an inventory from memory. file names the source in errors. On
 * success *ret_inv is written; on failure err explains and *ret_inv is
 * untouched. Returns 0, -EINVAL (malformed), -E2BIG (a cap), -ENOMEM. */
int aik_device_inventory_parse(const char *file, const void *data, size_t len, aik_device_inventory *ret_inv,
                               aik_error *err);

/* Read and parse a file (at most AIK_INV_MAX_FILE bytes). */
int aik_device_inventory_load(const char *path, aik_device_inventory *ret_inv, aik_error *err);

/* Index of the device named id, or -ENOENT. Also accepts a kind name
 * ("cpu", "gpu", "npu") meaning the first device of that kind. */
int aik_device_inventory_find(const aik_device_inventory *inv, const char *id);

/* Link parameters between devices a and b (the default link when none is
 * listed; a == b: free). */
void aik_device_inventory_link(const aik_device_inventory *inv, uint32_t a, uint32_t b, double *ret_gbps,
                               double *ret_latency_us);

#endif
