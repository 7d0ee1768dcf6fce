/* SPDX-License-Identifier: MIT */
/*
 * The kernel behind aik/kernel.h: capability graph of the module store,
 * verified module cache with LRU unloading, and the request path
 * resolve → load → prompt → generate → post-process.
 *
 * Locking: k->lock guards the resident list and the counters; k->graph_lock
 * guards the capability graph (resolution loads WordNet lazily). A module in
 * use by a request holds a reference and is never unloaded under it; models
 * are immutable, so requests share them and each has its own session.
 */
#include "aik/kernel.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aik/capability.h"
#include "capgraph/capgraph.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/adapter.h"
#include "loader/module.h"
#include "runtime/capability_run.h"
#include "runtime/generate.h"
#include "runtime/kernel_internal.h"
#include "runtime/model.h"
#include "runtime/replay.h"
#include "scheduler/split_rig.h"

#ifndef AIK_DEFAULT_MODULE_STORE
#define AIK_DEFAULT_MODULE_STORE "/usr/lib/aik/modules"
#endif
#ifndef AIK_DEFAULT_TRUST_STORE
#define AIK_DEFAULT_TRUST_STORE "/etc/aik/trust"
#endif

#define KERNEL_MAX_MODULE_DIRS 4096

typedef struct resident {
    char key[96];                 /* name@version */
    aik_module *mod;
    aik_profile *profile;         /* the verified profile */
    uint32_t kind;
    aik_model *model;             /* architecture modules */
    const aik_capability_ops *cap; /* capability modules */
    /* A capability module's low-rank adapter (optional payload named by its
     * profile's module.adapter), applied unmerged per request, so the base
     * stays shared and switching capability costs a table update. */
    aik_adapter *adapter;
    aik_lora_ref *lora;           /* adapter->n_tensors refs into adapter */
    char adapter_digest[65];      /* hex SHA-256 of the adapter file (the manifest's payload digest) */
    char adapter_checked_for[65]; /* base manifest digest it was validated against ("" none yet) */
    uint64_t bytes;
    uint32_t refs;
    uint64_t last_used;
    char digest[65];
    aik_split_rig *rig;           /* architecture modules served through a placement: plan, devices, executor */
    struct resident *next;
} resident;

typedef struct module_dir {
    char *name;
    char *dir;
} module_dir;

struct aik_kernel {
    pthread_mutex_t lock, graph_lock;
    aik_capgraph *graph;
    aik_trust *trust;
    module_dir *dirs;
    size_t n_dirs;
    resident *residents;          /* load order */
    uint64_t resident_bytes, budget, loads, clock;
    uint32_t n_threads;
    bool developer;
    aik_replay_log *replay;       /* opt-in record of served requests */
    pthread_mutex_t replay_lock;
    /* aik_kernel_config.placement and its device options (NULL: CPU only).
     * placement_lock serialises requests on the rigs: their devices and
     * placer are shared and an executor holds one sequence at a time. */
    char *placement, *devices, *plugin_dir, *trust_dir;
    pthread_mutex_t placement_lock;
};

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *pick(const char *given, const char *env, const char *def)
{
    const char *e;
    if (given)
        return given;
    e = getenv(env);
    return e && *e ? e : def;
}

static int scan_store(aik_kernel *k, const char *store, aik_error *err)
{
    DIR *d = opendir(store);
    struct dirent *de;
    int r = 0;

    if (!d)
        return aik_fail(err, -errno, store, "cannot open the module store");
    while ((de = readdir(d)) && r == 0) {
        char *dir = NULL, *prof = NULL;
        struct stat st;
        aik_profile *p = NULL;
        if (de->d_name[0] == '.')
            continue;
        if (asprintf(&dir, "%s/%s", store, de->d_name) < 0 || asprintf(&prof, "%s/profile.yaml", dir) < 0) {
            free(dir);
            r = aik_fail(err, -ENOMEM, store, "out of memory");
            break;
        }
        if (stat(prof, &st) == 0 && S_ISREG(st.st_mode)) {
            if (k->n_dirs == KERNEL_MAX_MODULE_DIRS) {
                r = aik_fail(err, -E2BIG, store, "more than %d modules", KERNEL_MAX_MODULE_DIRS);
            } else if ((r = aik_profile_load(prof, &p, err)) == 0) {
                module_dir *nd = realloc(k->dirs, (k->n_dirs + 1) * sizeof(*nd));
                char *name = strdup(p->name);
                if (!nd || !name) {
                    free(name);
                    if (nd)
                        k->dirs = nd;
                    aik_profile_free(p);
                    r = aik_fail(err, -ENOMEM, store, "out of memory");
                } else {
                    k->dirs = nd;
                    k->dirs[k->n_dirs++] = (module_dir){ name, dir };
                    dir = NULL;
                    r = aik_capgraph_add(k->graph, p, err);
                    if (r < 0)
                        aik_profile_free(p);
                }
            }
        }
        free(dir);
        free(prof);
    }
    closedir(d);
    return r;
}

AIK_EXPORT int aik_kernel_open(const aik_kernel_config *cfg, aik_kernel **ret, aik_error *err)
{
    aik_kernel_config c = { .struct_size = sizeof(c) };
    aik_kernel *k;
    int r;

    if (!ret)
        return aik_fail(err, -EINVAL, "kernel", "missing result pointer");
    if (cfg) {
        if (cfg->struct_size < sizeof(uint32_t) || cfg->struct_size > sizeof(c))
            return aik_fail(err, -EINVAL, "kernel_config.struct_size", "unknown configuration size %u",
                            cfg->struct_size);
        memcpy(&c, cfg, cfg->struct_size);
    }
    k = calloc(1, sizeof(*k));
    if (!k)
        return aik_fail(err, -ENOMEM, "kernel", "out of memory");
    pthread_mutex_init(&k->lock, NULL);
    pthread_mutex_init(&k->graph_lock, NULL);
    pthread_mutex_init(&k->replay_lock, NULL);
    pthread_mutex_init(&k->placement_lock, NULL);
    if ((c.placement && !(k->placement = strdup(c.placement))) || (c.devices && !(k->devices = strdup(c.devices))) ||
        (c.plugin_dir && !(k->plugin_dir = strdup(c.plugin_dir))) ||
        !(k->trust_dir = strdup(pick(c.trust_store, "AIK_TRUST_STORE", AIK_DEFAULT_TRUST_STORE)))) {
        r = aik_fail(err, -ENOMEM, "kernel", "out of memory");
        goto fail;
    }
    k->budget = c.memory_budget;
    k->n_threads = c.n_threads;
    k->developer = c.developer_mode;
    r = aik_capgraph_new(&k->graph);
    if (r < 0) {
        aik_fail(err, r, "kernel", "out of memory");
        goto fail;
    }
    r = aik_trust_open(pick(c.trust_store, "AIK_TRUST_STORE", AIK_DEFAULT_TRUST_STORE), &k->trust, err);
    if (r < 0)
        goto fail;
    r = scan_store(k, pick(c.module_store, "AIK_MODULE_STORE", AIK_DEFAULT_MODULE_STORE), err);
    if (r < 0)
        goto fail;
    r = aik_capgraph_check(k->graph, err);
    if (r < 0)
        goto fail;
    if (c.replay_log) {
        r = aik_replay_open(c.replay_log, c.replay_max_bytes ? c.replay_max_bytes : 64u << 20, 4, &k->replay, err);
        if (r < 0)
            goto fail;
    }
    *ret = k;
    return 0;
fail:
    aik_kernel_close(k);
    return r;
}

static void unload(resident *m)
{
    aik_split_rig_free(m->rig);
    free(m->lora);
    aik_adapter_free(m->adapter);
    aik_model_free(m->model);
    aik_module_close(m->mod);
    aik_profile_free(m->profile);
    free(m);
}

AIK_EXPORT void aik_kernel_close(aik_kernel *k)
{
    if (!k)
        return;
    while (k->residents) {
        resident *n = k->residents->next;
        unload(k->residents);
        k->residents = n;
    }
    for (size_t i = 0; i < k->n_dirs; i++) {
        free(k->dirs[i].name);
        free(k->dirs[i].dir);
    }
    free(k->dirs);
    aik_trust_free(k->trust);
    aik_capgraph_free(k->graph);
    aik_replay_close(k->replay);
    pthread_mutex_destroy(&k->replay_lock);
    pthread_mutex_destroy(&k->placement_lock);
    free(k->placement);
    free(k->devices);
    free(k->plugin_dir);
    free(k->trust_dir);
    pthread_mutex_destroy(&k->lock);
    pthread_mutex_destroy(&k->graph_lock);
    free(k);
}

/* Decode the adapter a capability module's profile names. It must be one of
 * the manifest's payloads, so its bytes are the verified ones; only ALR1 is
 * served unmerged (a dense or sparse delta is as large as the tensors it
 * changes: merge it into a package instead). */
static int load_adapter(resident *m, aik_error *err)
{
    const aik_manifest *mf = aik_module_manifest(m->mod);
    const aik_payload_ref *ref = &m->profile->adapter;
    const void *data = NULL;
    uint64_t size = 0;
    uint32_t idx = UINT32_MAX;
    int r;

    for (uint32_t i = 0; i < mf->n_payloads; i++)
        if (strcmp(mf->payloads[i].file, ref->file) == 0)
            idx = i;
    if (idx == UINT32_MAX)
        return aik_fail(err, -ENOENT, "module.adapter", "%s is not a payload of the signed manifest", ref->file);
    if (ref->has_sha256 && memcmp(ref->sha256, mf->payloads[idx].sha256, 32) != 0)
        return aik_fail(err, -EBADMSG, "module.adapter.sha256", "the profile and the manifest disagree on %s",
                        ref->file);
    r = aik_module_payload(m->mod, idx, &data, &size);
    if (r < 0)
        return aik_fail(err, r, "module.adapter", "%s is not mapped", ref->file);
    r = aik_adapter_parse(data, (size_t)size, &m->adapter, err);
    if (r < 0) {
        aik_error_prefix(err, ref->file);
        return r;
    }
    if (m->adapter->kind != AIK_ADAPTER_LOWRANK)
        return aik_fail(err, -ENOTSUP, ref->file,
                        "%s adapters are not applied at run time; merge it into a package (aikctl adapter merge)",
                        aik_adapter_kind_magic(m->adapter->kind));
    m->lora = calloc(m->adapter->n_tensors ? m->adapter->n_tensors : 1, sizeof(*m->lora));
    if (!m->lora)
        return aik_fail(err, -ENOMEM, ref->file, "out of memory");
    for (uint32_t i = 0; i < m->adapter->n_tensors; i++) {
        const aik_adapter_tensor *t = &m->adapter->tensors[i];
        m->lora[i] = (aik_lora_ref){ .weight = t->name, .rank = t->rank, .scale = t->alpha / (float)t->rank,
                                      .A = t->A, .B = t->B };
    }
    aik_sha256_hex(mf->payloads[idx].sha256, m->adapter_digest);
    m->bytes += size;
    return 0;
}

/* The seed's validate_adapter_against_model, once per (adapter, base). */
static int check_adapter(aik_kernel *k, resident *cap, const resident *base, aik_error *err)
{
    int r = 0;

    pthread_mutex_lock(&k->lock);
    if (strcmp(cap->adapter_checked_for, base->digest) != 0) {
        r = aik_adapter_validate(cap->adapter, base->model->pkg, err);
        if (r == 0)
            memcpy(cap->adapter_checked_for, base->digest, sizeof(base->digest));
        else
            aik_error_prefix(err, cap->key);
    }
    pthread_mutex_unlock(&k->lock);
    return r;
}

/* Verify and activate one module (k->lock held). */
static int load_module(aik_kernel *k, const aik_profile *planned, resident **ret, aik_error *err)
{
    aik_load_options opts = { .flags = AIK_LOAD_NO_RECORD | (k->developer ? AIK_LOAD_DEVELOPER : 0),
                              .trust = k->trust };
    const char *dir = NULL;
    const char *pbytes;
    size_t plen = 0;
    aik_host_info host;
    resident *m;
    int r;

    for (size_t i = 0; i < k->n_dirs; i++)
        if (strcmp(k->dirs[i].name, planned->name) == 0)
            dir = k->dirs[i].dir;
    if (!dir)
        return aik_fail(err, -ENOENT, planned->name, "module not found in the store");
    m = calloc(1, sizeof(*m));
    if (!m)
        return aik_fail(err, -ENOMEM, planned->name, "out of memory");
    snprintf(m->key, sizeof(m->key), "%s@%u.%u.%u", planned->name, planned->version.major, planned->version.minor,
             planned->version.patch);
    r = aik_module_open(dir, &opts, &m->mod, err);
    if (r < 0)
        goto fail;
    aik_sha256_hex(aik_module_manifest_digest(m->mod), m->digest);
    /* The plan was made from the store's profile; what runs is the verified one. */
    pbytes = aik_module_profile(m->mod, &plen);
    if (!pbytes) {
        r = aik_fail(err, -EBADMSG, planned->name, "module has no verified profile");
        goto fail;
    }
    r = aik_profile_parse(planned->name, pbytes, plen, &m->profile, err);
    if (r < 0)
        goto fail;
    if (strcmp(m->profile->name, planned->name) != 0 || aik_semver_cmp(&m->profile->version, &planned->version) != 0) {
        r = aik_fail(err, -EBADMSG, planned->name, "verified profile names %s, the store's names %s", m->profile->name,
                     planned->name);
        goto fail;
    }
    r = aik_host_info_probe(&host);
    if (r == 0)
        r = aik_module_check_profile(m->mod, &m->profile->exec, &host, err);
    if (r < 0)
        goto fail;
    r = aik_module_activate(m->mod, err);
    if (r < 0)
        goto fail;

    const aik_module_desc *d = aik_module_descriptor_of(m->mod);
    m->kind = d->kind;
    if (d->kind == AIK_MODULE_ARCHITECTURE) {
        const aik_arch_ops *arch = d->ops;
        const aik_slm *pkg = aik_module_payload_slm(m->mod, 0);
        if (d->ops_size < sizeof(aik_arch_ops) || !pkg) {
            r = aik_fail(err, -ENOEXEC, planned->name,
                         pkg ? "architecture ops table too small" : "base module has no .slm payload");
            goto fail;
        }
        r = aik_model_from_slm(pkg, arch, &m->model, err);
        if (r < 0) {
            aik_error_prefix(err, planned->name);
            goto fail;
        }
        m->bytes = pkg->map_size;
    } else if (d->kind == AIK_MODULE_CAPABILITY) {
        m->cap = d->ops;
        if (d->ops_size < sizeof(aik_capability_ops) || !m->cap->build_prompt || !m->cap->capability) {
            r = aik_fail(err, -ENOEXEC, planned->name, "capability ops table incomplete");
            goto fail;
        }
        if (!aik_profile_find_capability(m->profile, m->cap->capability, NULL)) {
            r = aik_fail(err, -ENOEXEC, planned->name, "module implements %s, which its profile does not provide",
                         m->cap->capability);
            goto fail;
        }
        m->bytes = 1;
        if (m->profile->has_adapter) {
            r = load_adapter(m, err);
            if (r < 0) {
                aik_error_prefix(err, planned->name);
                goto fail;
            }
        }
    } else {
        r = aik_fail(err, -ENOEXEC, planned->name, "modules of kind %u cannot serve requests", d->kind);
        goto fail;
    }
    k->loads++;
    *ret = m;
    return 0;
fail:
    free(m->lora);
    aik_adapter_free(m->adapter);
    aik_module_close(m->mod);
    aik_profile_free(m->profile);
    free(m);
    return r;
}

/* Unload idle modules, least recently used first, until under budget (k->lock held). */
static void evict(aik_kernel *k)
{
    while (k->budget && k->resident_bytes > k->budget) {
        resident **victim = NULL;
        for (resident **p = &k->residents; *p; p = &(*p)->next)
            if ((*p)->refs == 0 && (!victim || (*p)->last_used < (*victim)->last_used))
                victim = p;
        if (!victim)
            return; /* everything resident is in use */
        resident *v = *victim;
        *victim = v->next;
        k->resident_bytes -= v->bytes;
        unload(v);
    }
}

static int acquire(aik_kernel *k, const aik_profile *planned, resident **ret, aik_error *err)
{
    char key[96];
    resident *m;
    int r = 0;

    snprintf(key, sizeof(key), "%s@%u.%u.%u", planned->name, planned->version.major, planned->version.minor,
             planned->version.patch);
    pthread_mutex_lock(&k->lock);
    for (m = k->residents; m; m = m->next)
        if (strcmp(m->key, key) == 0)
            break;
    if (!m) {
        r = load_module(k, planned, &m, err);
        if (r == 0) {
            resident **tail = &k->residents;
            while (*tail)
                tail = &(*tail)->next;
            *tail = m;
            k->resident_bytes += m->bytes;
        }
    }
    if (r == 0) {
        m->refs++;
        m->last_used = ++k->clock;
        evict(k);
        *ret = m;
    }
    pthread_mutex_unlock(&k->lock);
    return r;
}

static void release(aik_kernel *k, resident *m)
{
    pthread_mutex_lock(&k->lock);
    m->refs--;
    m->last_used = ++k->clock;
    evict(k);
    pthread_mutex_unlock(&k->lock);
}

/* Resolve an intent and acquire every module of the plan (references held:
 * release each of used[0..n_used) afterwards, also on failure). base is the
 * architecture module, cap the module implementing the resolved capability
 * (NULL when the base serves it itself). */
static int resolve_and_load(aik_kernel *k, const char *intent, const aik_constraints *cons, aik_plan **ret_plan,
                            resident *used[AIK_PLAN_MAX_MODULES], size_t *n_used, resident **ret_base,
                            resident **ret_cap, double *ret_resolve_ms, double *ret_load_ms, aik_error *err)
{
    aik_plan *plan = NULL;
    resident *base = NULL, *cap = NULL;
    struct timespec t0;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&k->graph_lock);
    r = aik_capgraph_resolve(k->graph, intent, cons, NULL, &plan, err);
    pthread_mutex_unlock(&k->graph_lock);
    *ret_resolve_ms = ms_since(&t0);
    if (r < 0)
        return r;
    *ret_plan = plan;
    /* load only what the plan names */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < plan->n_modules && i < AIK_PLAN_MAX_MODULES; i++) {
        r = acquire(k, plan->modules[i], &used[*n_used], err);
        if (r < 0)
            return r;
        resident *m = used[(*n_used)++];
        if (m->kind == AIK_MODULE_ARCHITECTURE && !base)
            base = m;
        if (m->kind == AIK_MODULE_CAPABILITY && m->cap && strcmp(m->cap->capability, plan->capability) == 0)
            cap = m;
    }
    *ret_load_ms = ms_since(&t0);
    if (!base)
        return aik_fail(err, -ENOEXEC, plan->capability, "the plan has no base model module");
    *ret_base = base;
    *ret_cap = cap;
    return 0;
}

/* The base model's placement rig, made by the first request that needs it
 * (k->placement_lock held). A device the executor fell back from while it
 * was built is reported in warning. */
static int placement_rig(aik_kernel *k, resident *base, char warning[256], aik_error *err)
{
    const aik_error *fb;
    int r;

    if (base->rig)
        return 0;
    aik_split_rig_config rc = { .override = k->placement, .devices = k->devices, .plugin_dir = k->plugin_dir,
                                .trust_dir = k->trust_dir, .load_flags = k->developer ? AIK_LOAD_DEVELOPER : 0,
                                .n_threads = k->n_threads, .max_batch = 256 };
    if ((r = aik_split_rig_open(base->model->graph, &rc, &base->rig, err)) < 0) {
        aik_error_prefix(err, "placement");
        return r;
    }
    if ((fb = aik_split_exec_fallback(base->rig->sx)))
        snprintf(warning, 256, "%s", fb->message);
    return 0;
}

AIK_EXPORT void aik_result_free(aik_result *r)
{
    if (!r)
        return;
    free(r->text);
    free(r->tokens);
    free(r);
}

AIK_EXPORT int aik_submit(aik_kernel *k, const char *intent, const char *input, const aik_submit_options *opts_in,
                          aik_result **ret, aik_error *err)
{
    aik_submit_options o = { .struct_size = sizeof(o) };
    aik_constraints cons = { 0 };
    aik_plan *plan = NULL;
    resident *used[AIK_PLAN_MAX_MODULES] = { 0 };
    size_t n_used = 0;
    resident *base = NULL, *cap = NULL;
    aik_result *res = NULL;
    aik_session *s = NULL;
    aik_generate_result gen = { 0 };
    bool placed = false;
    int r;

    if (!k || !intent || !input || !ret)
        return aik_fail(err, -EINVAL, "submit", "missing kernel, intent, input or result pointer");
    if (opts_in) {
        if (opts_in->struct_size < sizeof(uint32_t) || opts_in->struct_size > sizeof(o))
            return aik_fail(err, -EINVAL, "submit_options.struct_size", "unknown options size %u",
                            opts_in->struct_size);
        memcpy(&o, opts_in, opts_in->struct_size);
    }
    res = calloc(1, sizeof(*res));
    if (!res)
        return aik_fail(err, -ENOMEM, "submit", "out of memory");

    cons.memory_budget = o.memory_budget;
    cons.backends = o.backends;
    cons.latency_ms = o.latency_ms;
    r = resolve_and_load(k, intent, &cons, &plan, used, &n_used, &base, &cap, &res->resolve_ms, &res->load_ms, err);
    if (r < 0)
        goto out;
    snprintf(res->capability, sizeof(res->capability), "%s", plan->capability);
    res->match_score = plan->match_score;
    res->n_modules = 0;
    /* base first, then the others in plan order */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n_used && res->n_modules < AIK_RESULT_MAX_MODULES; i++) {
            if ((pass == 0) != (used[i] == base))
                continue;
            aik_result_module *rm = &res->modules[res->n_modules++];
            const aik_manifest *mf = aik_module_manifest(used[i]->mod);
            snprintf(rm->name, sizeof(rm->name), "%s", mf->name);
            snprintf(rm->version, sizeof(rm->version), "%s", mf->version);
            memcpy(rm->digest, used[i]->digest, sizeof(rm->digest));
        }

    /* generate: the context is sized for this request's prompt and budget */
    uint32_t budget = o.max_tokens ? o.max_tokens
                                   : (cap && cap->cap->max_tokens ? cap->cap->max_tokens : AIK_CAPABILITY_DEFAULT_TOKENS);
    char prompt[AIK_CAPABILITY_PROMPT_MAX];
    size_t plen = 0;
    r = aik_capability_prompt(cap ? cap->cap : NULL, input, strlen(input), prompt, sizeof(prompt), &plen, err);
    if (r < 0)
        goto out;
    uint32_t need = (uint32_t)plen + budget + 2;
    aik_session_config sc = { .n_threads = k->n_threads,
                              .ctx_len = need < base->model->hp.ctx_len ? need : base->model->hp.ctx_len };
    /* Through the placement, except adapter requests: the LoRA is applied
     * by the CPU executor only (documented in aik/kernel.h). */
    if (k->placement && !(cap && cap->adapter)) {
        struct timespec tp;
        pthread_mutex_lock(&k->placement_lock);
        placed = true;
        clock_gettime(CLOCK_MONOTONIC, &tp);
        if ((r = placement_rig(k, base, res->warning, err)) < 0)
            goto out;
        res->load_ms += ms_since(&tp); /* opening devices and uploading weights is loading */
        sc.split = base->rig->sx;
        if (sc.ctx_len > aik_split_exec_ctx_len(sc.split))
            sc.ctx_len = aik_split_exec_ctx_len(sc.split);
    }
    r = aik_session_new(base->model, &sc, &s, err);
    if (r < 0)
        goto out;
    if (cap && cap->adapter) {
        /* Per-request adapter: this session's executor gets the capability's
         * LoRA pairs; the shared base weights are not touched. */
        struct timespec ta;
        clock_gettime(CLOCK_MONOTONIC, &ta);
        r = check_adapter(k, cap, base, err);
        if (r == 0)
            r = aik_cpu_exec_set_lora(aik_session_exec(s), cap->lora, cap->adapter->n_tensors, err);
        if (r < 0)
            goto out;
        memcpy(res->adapter_digest, cap->adapter_digest, sizeof(res->adapter_digest));
        res->adapter_ms = ms_since(&ta);
    }
    aik_capability_run_options ro = { .max_tokens = budget, .temperature = o.temperature, .seed = o.seed,
                                       .repeat_penalty = o.repeat_penalty, .on_text = o.on_text, .user = o.user,
                                       .cancel = (const atomic_int *)o.cancel };
    r = aik_capability_run(s, cap ? cap->cap : NULL, input, strlen(input), &ro, &gen, NULL, err);
    if (r < 0)
        goto out;
    if (aik_session_fallback(s))
        snprintf(res->warning, sizeof(res->warning), "%s", aik_session_fallback(s)->message);
    res->prompt_ms = gen.prompt_ms;
    res->generate_ms = gen.gen_ms;
    res->n_prompt_tokens = gen.n_prompt;
    res->stop_reason = aik_stop_reason_name(gen.stop);
    if (k->replay) {
        uint8_t digests[AIK_RESULT_MAX_MODULES][32];
        for (uint32_t i = 0; i < res->n_modules; i++)
            aik_sha256_from_hex(res->modules[i].digest, digests[i]);
        aik_replay_record rec = { .time_unix_ms = (uint64_t)time(NULL) * 1000,
                                  .intent = intent, .intent_len = strlen(intent),
                                  .input = input, .input_len = strlen(input),
                                  .output = gen.text, .output_len = gen.text_len,
                                  .digests = (const uint8_t(*)[32])digests, .n_digests = res->n_modules,
                                  .prompt_ms = gen.prompt_ms, .gen_ms = gen.gen_ms,
                                  .n_prompt_tokens = gen.n_prompt, .n_gen_tokens = (uint32_t)gen.n_tokens };
        pthread_mutex_lock(&k->replay_lock);
        r = aik_replay_append(k->replay, &rec, err);
        pthread_mutex_unlock(&k->replay_lock);
        if (r < 0)
            goto out;
    }
    res->text = gen.text;
    res->text_len = gen.text_len;
    res->tokens = gen.tokens;
    res->n_tokens = gen.n_tokens;
    gen.text = NULL;
    gen.tokens = NULL;
    *ret = res;
    res = NULL;
    r = 0;
out:
    aik_generate_result_clear(&gen);
    aik_session_free(s);
    if (placed)
        pthread_mutex_unlock(&k->placement_lock);
    for (size_t i = 0; i < n_used; i++)
        release(k, used[i]);
    aik_plan_free(plan);
    aik_result_free(res);
    return r;
}

AIK_EXPORT size_t aik_kernel_resident(aik_kernel *k, char names[][96], size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&k->lock);
    for (resident *m = k->residents; m && n < cap; m = m->next)
        snprintf(names[n++], 96, "%s", m->key);
    pthread_mutex_unlock(&k->lock);
    return n;
}

AIK_EXPORT uint64_t aik_kernel_load_count(aik_kernel *k)
{
    pthread_mutex_lock(&k->lock);
    uint64_t n = k->loads;
    pthread_mutex_unlock(&k->lock);
    return n;
}

/* ---- for the distillation pipeline (runtime/kernel_internal.h) ---- */

typedef struct borrowed {
    aik_plan *plan;
    resident *used[AIK_PLAN_MAX_MODULES];
    size_t n_used;
} borrowed;

static const char *module_dir_of(const aik_kernel *k, const char *name)
{
    for (size_t i = 0; i < k->n_dirs; i++)
        if (strcmp(k->dirs[i].name, name) == 0)
            return k->dirs[i].dir;
    return NULL;
}

void aik_kernel_capability_release(aik_kernel *k, aik_kernel_capability *c)
{
    borrowed *b;

    if (!k || !c || !c->priv)
        return;
    b = c->priv;
    for (size_t i = 0; i < b->n_used; i++)
        release(k, b->used[i]);
    aik_plan_free(b->plan);
    free(b);
    memset(c, 0, sizeof(*c));
}

int aik_kernel_capability_acquire(aik_kernel *k, const char *intent, aik_kernel_capability *ret,
                                  aik_error *err)
{
    aik_constraints cons = { 0 };
    resident *base = NULL, *cap = NULL;
    double t_resolve, t_load;
    aik_kernel_capability c = { 0 };
    borrowed *b;
    int r;

    if (!k || !intent || !ret)
        return aik_fail(err, -EINVAL, "kernel", "missing argument");
    b = calloc(1, sizeof(*b));
    if (!b)
        return aik_fail(err, -ENOMEM, "kernel", "out of memory");
    c.priv = b;
    r = resolve_and_load(k, intent, &cons, &b->plan, b->used, &b->n_used, &base, &cap, &t_resolve, &t_load, err);
    if (r < 0) {
        aik_kernel_capability_release(k, &c);
        return r;
    }
    snprintf(c.capability, sizeof(c.capability), "%s", b->plan->capability);
    c.base = base->model;
    memcpy(c.base_digest, base->digest, sizeof(c.base_digest));
    c.base_dir = module_dir_of(k, aik_module_manifest(base->mod)->name);
    if (cap) {
        c.cap = cap->cap;
        memcpy(c.cap_digest, cap->digest, sizeof(c.cap_digest));
        c.cap_dir = module_dir_of(k, aik_module_manifest(cap->mod)->name);
        if (cap->adapter) {
            r = check_adapter(k, cap, base, err);
            if (r < 0) {
                aik_kernel_capability_release(k, &c);
                return r;
            }
            c.lora = cap->lora;
            c.n_lora = cap->adapter->n_tensors;
            memcpy(c.adapter_digest, cap->adapter_digest, sizeof(c.adapter_digest));
        }
    }
    *ret = c;
    return 0;
}

int aik_kernel_resolve_capability(aik_kernel *k, const char *intent, char ret_capability[64], aik_error *err)
{
    aik_constraints cons = { 0 };
    aik_plan *plan = NULL;
    int r;

    if (!k || !intent || !ret_capability)
        return aik_fail(err, -EINVAL, "kernel", "missing argument");
    pthread_mutex_lock(&k->graph_lock);
    r = aik_capgraph_resolve(k->graph, intent, &cons, NULL, &plan, err);
    pthread_mutex_unlock(&k->graph_lock);
    if (r < 0)
        return r;
    snprintf(ret_capability, 64, "%s", plan->capability);
    aik_plan_free(plan);
    return 0;
}
