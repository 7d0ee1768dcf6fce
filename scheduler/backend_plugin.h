/* SPDX-License-Identifier: MIT */
/*
 * Backend plug-ins: out-of-tree compute backends (the NPU path) loaded from
 * a plug-in directory.
 *
 * A plug-in is a module directory (loader/module.h, docs/module-format.md)
 * whose .so is of kind AIK_MODULE_BACKEND and whose descriptor's ops is an
 * aik_backend_ops table (aik/backend.h). It is verified exactly like every
 * other module — digests, Ed25519 signature, trust store, rollback, the
 * execution profile against this host, the ELF checks and the DT_NEEDED
 * allow-list — and only then dlopened. After activation the host checks
 * the table itself, in this order, and refuses the plug-in with a sentence
 * a person can act on when:
 *   - the module is not of kind backend;
 *   - ops_size differs from the table's struct_size, or the table is too
 *     short to hold the members ABI 1.0 requires;
 *   - abi_major differs from this host's AIK_BACKEND_ABI_MAJOR (the
 *     message names both numbers: rebuild against the host's headers);
 *   - a required member (name, device_count, open, close, get_info,
 *     buffer_alloc, buffer_free, buffer_upload, buffer_download, execute)
 *     is NULL.
 * The host reads at most its own sizeof(aik_backend_ops) of the table: a
 * plug-in built against an older minor version sees members it does not
 * know read as NULL (absent), one built against a newer minor has its extra
 * members ignored.
 *
 * Nothing here prints; refusals are returned as data.
 */
#ifndef AIK_SCHEDULER_BACKEND_PLUGIN_H
#define AIK_SCHEDULER_BACKEND_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"
#include "aik/module.h"

struct aik_graph;

#define AIK_PLUGIN_MAX 16         /* plug-in directory entries looked at */
#define AIK_PLUGIN_MAX_DEVICES 16 /* devices kept from one plug-in directory */

/* Environment variable naming the plug-in directory. */
#define AIK_PLUGIN_DIR_ENV "AIK_BACKEND_DIR"

typedef struct aik_plugin_options {
    const char *trust_dir;  /* trust store directory; NULL: an empty store (then only AIK_LOAD_DEVELOPER loads) */
    uint32_t load_flags;    /* AIK_LOAD_DEVELOPER and AIK_LOAD_ALLOW_ROLLBACK are honoured; versions are
                             * never recorded (discovery must not change the trust store) */
    uint32_t host_backends; /* AIK_BACKEND_BIT_* this host has besides the CPU (NPU when /dev/accel has
                             * nodes), for the execution-profile check of a plug-in's profile */
} aik_plugin_options;

/* The plug-in directory to use when the caller names none: $AIK_BACKEND_DIR,
 * else the compiled-in default (the build's store/backends). Never NULL. */
const char *aik_plugin_default_dir(void);

/* ---- one plug-in ---- */

typedef struct aik_plugin aik_plugin;

/*
 * Verify, activate and check the plug-in in module directory dir (the
 * stages listed above). opts may be NULL (empty trust store, no flags). The
 * plug-in keeps its own handle on the trust store. On failure err->where
 * names dir and err->message the reason; *ret_plugin is untouched.
 */
int aik_plugin_open(const char *dir, const aik_plugin_options *opts, aik_plugin **ret_plugin, aik_error *err);

/* The host's copy of the plug-in's table (members it lacks are NULL). */
const aik_backend_ops *aik_plugin_ops(const aik_plugin *p);

/* Module name and version from the verified manifest. */
const char *aik_plugin_name(const aik_plugin *p);
const char *aik_plugin_version(const aik_plugin *p);

/* AIK_MODULE_WARN_* the load accepted (an unsigned plug-in in developer
 * mode) and their text, for a caller to show loudly. */
uint32_t aik_plugin_warnings(const aik_plugin *p);
const char *aik_plugin_warning_text(const aik_plugin *p);

/* dlclose and free. Every device opened through its ops must be closed
 * first. Accepts NULL. */
void aik_plugin_close(aik_plugin *p);

/* ---- a plug-in directory ---- */

/* A usable device of a loaded plug-in: open, described. */
typedef struct aik_plugin_device {
    const aik_plugin *plugin;   /* owned by the set */
    const aik_backend_ops *ops; /* aik_plugin_ops(plugin) */
    aik_backend *backend;       /* the open device (closed by aik_plugin_set_free) */
    uint32_t index;             /* device index within the plug-in */
    aik_backend_info info;      /* from get_info (name and driver NUL-terminated, kind checked) */
} aik_plugin_device;

/* A directory entry that gave no device, and why. */
typedef struct aik_plugin_refusal {
    char entry[128];  /* the entry's name in the plug-in directory */
    int code;         /* negative errno; 0 when the plug-in loaded but reports no device */
    char reason[520]; /* "where: message", for a person */
} aik_plugin_refusal;

typedef struct aik_plugin_set {
    aik_plugin *plugins[AIK_PLUGIN_MAX]; /* loaded plug-ins (with or without devices) */
    uint32_t n_plugins;
    aik_plugin_device dev[AIK_PLUGIN_MAX_DEVICES];
    uint32_t n_dev;
    aik_plugin_refusal refused[AIK_PLUGIN_MAX];
    uint32_t n_refused;
} aik_plugin_set;

/*
 * Load every plug-in under dir (each sub-directory is one module directory;
 * entries are taken in name order) and open every device each one reports.
 * A plug-in that fails any stage, or whose device_count / open / get_info
 * fails, is listed in refused with its reason; the scan goes on. Returns 0
 * with a set (possibly with no device), or -ENOENT / -ENOTDIR / -EACCES
 * with err explaining when dir itself cannot be read, -ENOMEM.
 */
int aik_plugin_scan(const char *dir, const aik_plugin_options *opts, aik_plugin_set **ret_set, aik_error *err);

/* Close every device, then every plug-in. Accepts NULL. */
void aik_plugin_set_free(aik_plugin_set *set);

/* ---- running a whole graph on one plug-in device ---- */

typedef struct aik_plugin_exec aik_plugin_exec;

typedef struct aik_plugin_exec_config {
    uint32_t max_batch; /* most tokens per run() */
    uint32_t ctx_len;   /* KV-cache positions; 0 = the model's */
} aik_plugin_exec_config;

/*
 * Execute graph g on an open device through its vtable, the whole graph as
 * one segment: weights uploaded once (nodes sharing storage share a
 * buffer), activation buffers planned by liveness like the CPU executor,
 * the KV cache on the device. ops, b and g must outlive the executor.
 */
int aik_plugin_exec_new(const aik_backend_ops *ops, aik_backend *b, const struct aik_graph *g,
                        const aik_plugin_exec_config *cfg, aik_plugin_exec **ret_exec, aik_error *err);
void aik_plugin_exec_free(aik_plugin_exec *e);

/* Same contract as aik_cpu_exec_run: n_tokens at positions n_past.., the
 * logits of the last n_out tokens (valid until the next call); the KV
 * cache is unchanged on -ENOSPC / -EINVAL. Calls synchronize() when the
 * plug-in has one before reading the logits back. */
int aik_plugin_exec_run(aik_plugin_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                        const float **ret_logits, aik_error *err);
uint32_t aik_plugin_exec_n_past(const aik_plugin_exec *e);
/* Forget positions >= n_past. */
void aik_plugin_exec_truncate(aik_plugin_exec *e, uint32_t n_past);

#endif
