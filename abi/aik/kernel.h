/* SPDX-License-Identifier: MIT */
/*
 * aik/kernel.h — the host API: open a kernel, submit intents, get answers.
 *
 *   aik_kernel *k;
 *   aik_kernel_open(NULL, &k, &err);                 // default module and trust stores
 *   aik_result *r;
 *   aik_submit(k, "lexicon.define", "abandon", NULL, &r, &err);
 *   puts(r->text);
 *   aik_result_free(r);
 *   aik_kernel_close(k);
 *
 * An intent is a capability id ("lexicon.define", optionally with a version
 * range: "lexicon.define@^1.0") or free text ("what does this word mean").
 * The kernel resolves it against the capability graph of the installed
 * modules, loads only the modules the resolution names — each verified
 * (signature, trust, lineage, digests, ELF, execution profile) before it is
 * activated — and generates. Modules stay resident for later requests and the
 * least recently used idle ones are unloaded when the memory budget is
 * exceeded. aik_submit is safe to call from many threads at once.
 *
 * A capability module may carry a low-rank adapter (ALR1) for the base model
 * (its profile's module.adapter). Each request runs in its own session over
 * the shared base weights with the adapter of the capability it resolved
 * to, so requests for different capabilities run side by side and switching
 * capability reloads nothing.
 */
#ifndef AIK_KERNEL_H
#define AIK_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aik_kernel aik_kernel;

typedef struct aik_kernel_config {
    uint32_t struct_size;     /* sizeof(aik_kernel_config) */
    const char *module_store; /* directory of module directories; NULL: $AIK_MODULE_STORE, else the built-in default */
    const char *trust_store;  /* trust store directory; NULL: $AIK_TRUST_STORE, else the built-in default */
    uint64_t memory_budget;   /* bytes of resident modules before idle ones are unloaded; 0: unlimited */
    uint32_t n_threads;       /* compute threads per request; 0: one per core */
    bool developer_mode;      /* accept unsigned modules (each load is reported as a warning) */
    const char *replay_log;   /* opt-in: record every served request (intent, input, output, module
                                 digests, timings) in this checksummed log, mode 0600; NULL: off */
    uint64_t replay_max_bytes; /* rotate the log past this size; 0: 64 MiB */
    /* Serving through a placement plan (docs/placement.md). NULL: every
     * request runs on the CPU executor (the default). Otherwise an override
     * spec, as `aikctl bench --override` takes: "gpu-layers=2",
     * "layers=0-3:vulkan0", "layers=0-1:plugin0,output:cpu0", "" for the
     * planner's own choice. The first request for a base model plans it
     * over the device inventory, opens the devices (cpu0, vulkanN, the
     * pluginN devices of plugin_dir) and uploads the weights once; requests
     * then run on that plan one at a time (the devices are shared). A
     * device that fails at run time is replaced by the CPU for this and
     * later requests, and the request that saw it says so in
     * aik_result.warning. Requests whose capability carries an adapter run
     * on the CPU executor, which applies it (docs/adapters.md). */
    const char *placement;
    const char *devices;      /* inventory YAML for placement; NULL: this host's devices */
    const char *plugin_dir;   /* backend plug-ins for placement, verified against trust_store like any
                                 module (developer_mode accepts unsigned ones); NULL: none */
} aik_kernel_config;

/* Open a kernel: read the module store's profiles into the capability graph
 * (no module code is loaded yet) and open the trust store. cfg may be NULL. */
AIK_EXPORT int aik_kernel_open(const aik_kernel_config *cfg, aik_kernel **ret_kernel, aik_error *err);

/* Unload everything. Must not race aik_submit. Accepts NULL. */
AIK_EXPORT void aik_kernel_close(aik_kernel *k);

typedef struct aik_submit_options {
    uint32_t struct_size;     /* sizeof(aik_submit_options) */
    uint32_t max_tokens;      /* 0: the capability's budget */
    float temperature;        /* <= 0: greedy (the default) */
    uint64_t seed;
    /* constraints on the resolution */
    uint64_t memory_budget;   /* bytes the chosen modules may need; 0: unlimited */
    uint32_t backends;        /* allowed backends (AIK_BACKEND_BIT_*); 0: any */
    uint32_t latency_ms;      /* per-token latency budget; 0: none */
    /* streaming: called with the raw completion as it grows, whole UTF-8
     * characters; non-zero return cancels (optional) */
    int (*on_text)(void *user, const char *text, size_t len);
    void *user;
    const int *cancel;        /* set non-zero (atomically) from any thread to cancel (optional) */
    float repeat_penalty;     /* > 1 discourages repeating the last 64 tokens; 0: the kernel's 1.3; 1: off */
} aik_submit_options;

#define AIK_RESULT_MAX_MODULES 8

typedef struct aik_result_module {
    char name[64];
    char version[32];
    char digest[65];          /* SHA-256 of the module's manifest, hex */
} aik_result_module;

typedef struct aik_result {
    char *text;               /* the answer (NUL-terminated) */
    size_t text_len;
    int32_t *tokens;          /* generated tokens */
    size_t n_tokens;
    uint32_t n_prompt_tokens;
    char capability[64];      /* the capability that served the intent */
    double match_score;       /* 1 for a capability id; the free-text match score otherwise */
    uint32_t n_modules;       /* modules that served it, base first */
    aik_result_module modules[AIK_RESULT_MAX_MODULES];
    double resolve_ms, load_ms, prompt_ms, generate_ms;
    const char *stop_reason;  /* "length", "eos", "stop-string", "context", "cancelled" (static) */
    /* The capability module's adapter applied to this request (unmerged
     * LoRA over the shared base), "" when none: hex SHA-256 of the adapter
     * file, and the time spent choosing it (validation the first time). */
    char adapter_digest[65];
    double adapter_ms;
    /* Non-fatal trouble a person should hear about, "" when none: a device
     * of the placement failed and the CPU took over its part ("vulkan0
     * failed: <why>; layers 0-1, output moved to cpu0"). The answer is
     * complete either way. */
    char warning[256];
} aik_result;

/* Resolve, load, generate. On failure err says which stage and why: no
 * capability matches, a module failed verification (and which check), the
 * input was refused by the capability, ... */
AIK_EXPORT int aik_submit(aik_kernel *k, const char *intent, const char *input, const aik_submit_options *opts,
                          aik_result **ret_result, aik_error *err);

/* Free a result. Accepts NULL. */
AIK_EXPORT void aik_result_free(aik_result *r);

/* Names of the modules resident now, in load order ("aik-base@1.0.0").
 * Returns the count written (at most cap). */
AIK_EXPORT size_t aik_kernel_resident(aik_kernel *k, char names[][96], size_t cap);

/* Number of module loads (verifications + activations) since open. */
AIK_EXPORT uint64_t aik_kernel_load_count(aik_kernel *k);

#ifdef __cplusplus
}
#endif
#endif /* AIK_KERNEL_H */
