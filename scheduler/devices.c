/* SPDX-License-Identifier: MIT */
#include "scheduler/devices.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kernels/cpu/cpu_kernels.h"
#include "loader/exec_profile.h"
#ifdef AIK_HAVE_VULKAN
#include "scheduler/vulkan_backend.h"
#endif

const char *aik_backend_kind_name(uint32_t kind)
{
    switch (kind) {
    case AIK_BACKEND_CPU: return "cpu";
    case AIK_BACKEND_GPU: return "gpu";
    case AIK_BACKEND_NPU: return "npu";
    default: return "?";
    }
}

static void add_cpu(aik_device_list *l)
{
    aik_device_entry *d = &l->dev[l->n++];
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char model[96] = "cpu";
    FILE *f = fopen("/proc/cpuinfo", "r");

    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "model name", 10) == 0) {
                const char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ')
                        c++;
                    snprintf(model, sizeof(model), "%.*s", (int)strcspn(c, "\n"), c);
                }
                break;
            }
        fclose(f);
    }
    d->source = AIK_DEVICE_SRC_CPU;
    d->info.struct_size = sizeof(d->info);
    d->info.kind = AIK_BACKEND_CPU;
    snprintf(d->info.name, sizeof(d->info.name), "%s", model);
    snprintf(d->info.driver, sizeof(d->info.driver), "aik cpu kernels");
    d->info.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    for (uint32_t op = 1; op < AIK_OP_COUNT; op++)
        d->info.op_dtypes[op] = (op == AIK_OP_GET_ROWS || op == AIK_OP_MATMUL || op == AIK_OP_WEIGHT)
                                    ? (1u << AIK_DTYPE_COUNT) - 1
                                    : 1u << AIK_DTYPE_F32;
    snprintf(d->detail, sizeof(d->detail), "%ld cores, kernels: %s (best supported: %s)", cores,
             aik_cpu_isa_name(aik_cpu_active_isa()), aik_cpu_isa_name(aik_cpu_detect()));
}

static void add_vulkan(aik_device_list *l, unsigned flags)
{
#ifdef AIK_HAVE_VULKAN
    aik_error err = { 0 };
    int n = aik_vk_device_count(&err);

    if (n < 0) {
        snprintf(l->vulkan_note, sizeof(l->vulkan_note), "no Vulkan driver answered: %s", err.message);
        return;
    }
    if (n == 0) {
        snprintf(l->vulkan_note, sizeof(l->vulkan_note),
                 "the Vulkan loader found no device with Vulkan 1.2 and a compute queue");
        return;
    }
    for (int i = 0; i < n && l->n < AIK_DEVICES_MAX; i++) {
        aik_device_entry *d = &l->dev[l->n];
        aik_vk *vk = NULL;
        if (aik_vk_open((uint32_t)i, &vk, &err) < 0) {
            snprintf(l->vulkan_note, sizeof(l->vulkan_note), "device %d cannot be opened: %s", i, err.message);
            continue;
        }
        *d = (aik_device_entry){ .source = AIK_DEVICE_SRC_VULKAN, .index = (uint32_t)i };
        if ((flags & AIK_DEVICES_BENCHMARK) && aik_vk_benchmark(vk, &err) < 0)
            snprintf(l->vulkan_note, sizeof(l->vulkan_note), "device %d benchmark failed: %s", i, err.message);
        d->info.struct_size = sizeof(d->info);
        aik_vk_get_info(vk, &d->info);
        memcpy(d->detail, d->info.driver, sizeof(d->info.driver)); /* NUL-terminated, shorter than detail */
        aik_vk_close(vk);
        l->n++;
    }
#else
    (void)flags;
    snprintf(l->vulkan_note, sizeof(l->vulkan_note),
             "built without Vulkan (no libvulkan development files or no glslc at configure time)");
#endif
}

/* Driver name of an accel node from sysfs (best effort). */
static void accel_driver(const char *name, char *out, size_t len)
{
    char path[PATH_MAX], target[PATH_MAX];
    ssize_t n;

    snprintf(out, len, "driver unknown");
    if (snprintf(path, sizeof(path), "/sys/class/accel/%s/device/driver", name) >= (int)sizeof(path))
        return;
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    snprintf(out, len, "driver %s", base ? base + 1 : target);
}

static void add_accel(aik_device_list *l, const char *dir, bool npu_plugin)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint32_t found = 0;

    if (!d) {
        snprintf(l->accel_note, sizeof(l->accel_note), "%s: %s (no accelerator driver loaded; no NPU present)", dir,
                 strerror(errno));
        return;
    }
    while ((de = readdir(d)) && l->n < AIK_DEVICES_MAX) {
        unsigned minor;
        char tail;
        if (sscanf(de->d_name, "accel%u%c", &minor, &tail) != 1)
            continue;
        aik_device_entry *e = &l->dev[l->n++];
        char drv[128];
        *e = (aik_device_entry){ .source = AIK_DEVICE_SRC_ACCEL, .index = minor };
        e->info.struct_size = sizeof(e->info);
        e->info.kind = AIK_BACKEND_NPU;
        snprintf(e->info.name, sizeof(e->info.name), "%s/%s", dir, de->d_name);
        accel_driver(de->d_name, drv, sizeof(drv));
        snprintf(e->detail, sizeof(e->detail), "%s; %s", drv,
                 npu_plugin ? "NPU plug-in devices are listed separately"
                            : "no AIKernel backend plug-in drives it yet");
        found++;
    }
    closedir(d);
    if (!found)
        snprintf(l->accel_note, sizeof(l->accel_note), "%s holds no accel nodes", dir);
}

/* True when dir holds at least one accelN node (an NPU driver is loaded):
 * then a plug-in whose profile runs on "npu" passes the host check. */
static bool has_accel_nodes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;

    if (!d)
        return false;
    while (!found && (de = readdir(d))) {
        unsigned minor;
        char tail;
        found = sscanf(de->d_name, "accel%u%c", &minor, &tail) == 1;
    }
    closedir(d);
    return found;
}

/* Devices of verified plug-ins; refused plug-ins with their reasons. */
static bool add_plugins(aik_device_list *l, const aik_devices_config *cfg, const char *accel_dir)
{
    aik_plugin_options po = { .trust_dir = cfg->trust_dir, .load_flags = cfg->load_flags };
    aik_plugin_set *set = NULL;
    aik_error err = { 0 };
    bool npu = false;
    char msg[sizeof(err.where) + sizeof(err.message) + 4];

    if (!cfg->plugin_dir) {
        snprintf(l->plugin_note, sizeof(l->plugin_note), "no plug-in directory configured");
        return false;
    }
    if (has_accel_nodes(accel_dir))
        po.host_backends |= AIK_BACKEND_BIT_NPU;
    if (aik_plugin_scan(cfg->plugin_dir, &po, &set, &err) < 0) {
        snprintf(l->plugin_note, sizeof(l->plugin_note), "%s", aik_error_format(&err, msg, sizeof(msg)));
        return false;
    }
    for (uint32_t i = 0; i < set->n_dev; i++) {
        const aik_plugin_device *pd = &set->dev[i];
        if (l->n >= AIK_DEVICES_MAX)
            break;
        aik_device_entry *d = &l->dev[l->n++];
        *d = (aik_device_entry){ .source = AIK_DEVICE_SRC_PLUGIN, .index = pd->index };
        if ((cfg->flags & AIK_DEVICES_BENCHMARK) && pd->ops->benchmark) {
            aik_error_clear(&err);
            if (pd->ops->benchmark(pd->backend, &err) == 0) {
                d->info.struct_size = sizeof(d->info);
                if (pd->ops->get_info(pd->backend, &d->info) < 0)
                    d->info = pd->info;
            }
        }
        if (!d->info.struct_size)
            d->info = pd->info;
        d->info.name[sizeof(d->info.name) - 1] = '\0';
        d->info.driver[sizeof(d->info.driver) - 1] = '\0';
        npu = npu || d->info.kind == AIK_BACKEND_NPU;
        snprintf(d->detail, sizeof(d->detail), "plug-in %s %s, backend \"%s\"%s%s%s",
                 aik_plugin_name(pd->plugin), aik_plugin_version(pd->plugin), pd->ops->name,
                 pd->info.driver[0] ? ", " : "", pd->info.driver,
                 aik_plugin_warnings(pd->plugin) ? " (UNSIGNED, developer mode)" : "");
    }
    for (uint32_t i = 0; i < set->n_refused && l->n_plugin_refused < AIK_PLUGIN_MAX; i++)
        l->plugin_refused[l->n_plugin_refused++] = set->refused[i];
    aik_plugin_set_free(set);
    return npu;
}

int aik_devices_discover_config(const aik_devices_config *cfg, aik_device_list *ret_list)
{
    const char *accel;
    bool npu;

    if (!cfg || !ret_list)
        return -EINVAL;
    accel = cfg->accel_dir ? cfg->accel_dir : "/dev/accel";
    memset(ret_list, 0, sizeof(*ret_list));
    add_cpu(ret_list);
    add_vulkan(ret_list, cfg->flags);
    npu = add_plugins(ret_list, cfg, accel);
    add_accel(ret_list, accel, npu);
    return 0;
}

int aik_devices_discover(const char *accel_dir, unsigned flags, aik_device_list *ret_list)
{
    aik_devices_config cfg = { .accel_dir = accel_dir, .flags = flags };
    return aik_devices_discover_config(&cfg, ret_list);
}
