/* SPDX-License-Identifier: MIT */
/*
 * Backend plug-ins: verified loading (the module loader's stages, then the
 * vtable's own checks), directory scans for device discovery, and a
 * whole-graph executor over any aik_backend_ops. See backend_plugin.h.
 *
 * Layering: the loader verifies, capgraph decodes the verified profile into
 * the execution profile the loader checks against the host (the same two
 * steps runtime/kernel.c takes for every module it serves).
 */
#include "scheduler/backend_plugin.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capgraph/profile.h"
#include "common/checked.h"
#include "common/error.h"
#include "graph/graph.h"
#include "loader/module.h"
#include "scheduler/segment_nodes.h"

#ifndef AIK_DEFAULT_BACKEND_DIR
#define AIK_DEFAULT_BACKEND_DIR "/usr/lib/aik/backends"
#endif

struct aik_plugin {
    aik_trust *trust;    /* must outlive mod */
    aik_module *mod;
    aik_backend_ops ops; /* host copy: the plug-in's prefix, zero-extended */
};

const char *aik_plugin_default_dir(void)
{
    const char *env = getenv(AIK_PLUGIN_DIR_ENV);
    return env && env[0] ? env : AIK_DEFAULT_BACKEND_DIR;
}

void aik_plugin_close(aik_plugin *p)
{
    if (!p)
        return;
    aik_module_close(p->mod);
    aik_trust_free(p->trust);
    free(p);
}

const aik_backend_ops *aik_plugin_ops(const aik_plugin *p) { return p ? &p->ops : NULL; }
const char *aik_plugin_name(const aik_plugin *p) { return p ? aik_module_manifest(p->mod)->name : NULL; }
const char *aik_plugin_version(const aik_plugin *p) { return p ? aik_module_manifest(p->mod)->version : NULL; }
uint32_t aik_plugin_warnings(const aik_plugin *p) { return p ? aik_module_warnings(p->mod) : 0; }
const char *aik_plugin_warning_text(const aik_plugin *p) { return p ? aik_module_warning_text(p->mod) : ""; }

/* Required members of ABI 1.0, checked by name so the refusal can say which. */
static const struct {
    size_t offset;
    const char *name;
} required[] = {
    { offsetof(aik_backend_ops, name), "name" },
    { offsetof(aik_backend_ops, device_count), "device_count" },
    { offsetof(aik_backend_ops, open), "open" },
    { offsetof(aik_backend_ops, close), "close" },
    { offsetof(aik_backend_ops, get_info), "get_info" },
    { offsetof(aik_backend_ops, buffer_alloc), "buffer_alloc" },
    { offsetof(aik_backend_ops, buffer_free), "buffer_free" },
    { offsetof(aik_backend_ops, buffer_upload), "buffer_upload" },
    { offsetof(aik_backend_ops, buffer_download), "buffer_download" },
    { offsetof(aik_backend_ops, execute), "execute" },
};

/* The smallest table that holds every required member: everything up to
 * and including execute (synchronize and benchmark are optional). */
#define OPS_MIN_SIZE (offsetof(aik_backend_ops, execute) + sizeof(void (*)(void)))

static bool member_null(const aik_backend_ops *ops, size_t offset)
{
    void *p;
    memcpy(&p, (const char *)ops + offset, sizeof(p)); /* data and function pointers have one size here */
    return p == NULL;
}

/* Stage 4: the descriptor as a backend, after activation. */
static int check_table(aik_plugin *p, const char *dir, aik_error *err)
{
    const aik_module_desc *d = aik_module_descriptor_of(p->mod);
    const aik_backend_ops *theirs;
    uint32_t size;

    if (d->kind != AIK_MODULE_BACKEND)
        return aik_fail(err, -ENOEXEC, dir, "the descriptor is of kind %s (%u), not backend (%u)",
                        aik_module_kind_label(d->kind), d->kind, AIK_MODULE_BACKEND);
    theirs = d->ops;
    if (!theirs || d->ops_size < sizeof(uint32_t) * 3)
        return aik_fail(err, -ENOEXEC, dir, "ops table missing or %u bytes, too small for a backend table header",
                        d->ops_size);
    if (theirs->struct_size != d->ops_size)
        return aik_fail(err, -ENOEXEC, dir,
                        "descriptor says ops_size %u but the backend table's struct_size is %u: the plug-in was "
                        "built inconsistently", d->ops_size, theirs->struct_size);
    /* The major first: a table of another major may have any layout. */
    if (theirs->abi_major != AIK_BACKEND_ABI_MAJOR)
        return aik_fail(err, -ENOEXEC, dir,
                        "backend ABI version mismatch: the plug-in was built for major %u (minor %u), this host "
                        "speaks major %u (minor %u); rebuild the plug-in against this host's aik/backend.h",
                        theirs->abi_major, theirs->abi_minor, AIK_BACKEND_ABI_MAJOR, AIK_BACKEND_ABI_MINOR);
    if (theirs->struct_size < OPS_MIN_SIZE)
        return aik_fail(err, -ENOEXEC, dir, "backend table of %u bytes is shorter than the %zu bytes of ABI %u.0",
                        theirs->struct_size, (size_t)OPS_MIN_SIZE, AIK_BACKEND_ABI_MAJOR);
    size = theirs->struct_size < sizeof(p->ops) ? theirs->struct_size : (uint32_t)sizeof(p->ops);
    memset(&p->ops, 0, sizeof(p->ops));
    memcpy(&p->ops, theirs, size);
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (member_null(&p->ops, required[i].offset))
            return aik_fail(err, -ENOEXEC, dir, "required backend member '%s' is NULL", required[i].name);
    return 0;
}

/* Stage 2: the verified profile, decoded and checked against this host. */
static int check_profile(aik_plugin *p, const char *dir, const aik_plugin_options *opts, aik_error *err)
{
    const aik_manifest *m = aik_module_manifest(p->mod);
    aik_profile *prof = NULL;
    aik_host_info host;
    const char *bytes;
    size_t len = 0;
    int r;

    bytes = aik_module_profile(p->mod, &len);
    if (!bytes)
        return aik_fail(err, -EBADMSG, dir, "a backend plug-in must ship a profile (manifest lists none)");
    r = aik_profile_parse(m->object.file, bytes, len, &prof, err);
    if (r < 0) {
        aik_error_prefix(err, dir);
        return r;
    }
    if (prof->kind != AIK_MODULE_BACKEND || strcmp(prof->name, m->name) != 0) {
        r = aik_fail(err, -EBADMSG, dir, "profile describes %s module '%s', the manifest backend module '%s'",
                     aik_module_kind_name(prof->kind), prof->name, m->name);
        goto out;
    }
    r = aik_host_info_probe(&host);
    if (r < 0) {
        r = aik_fail(err, r, dir, "cannot probe the host: %s", strerror(-r));
        goto out;
    }
    host.backends |= opts->host_backends;
    r = aik_module_check_profile(p->mod, &prof->exec, &host, err);
    if (r < 0)
        aik_error_prefix(err, dir);
out:
    aik_profile_free(prof);
    return r;
}

int aik_plugin_open(const char *dir, const aik_plugin_options *opts_in, aik_plugin **ret_plugin, aik_error *err)
{
    aik_plugin_options opts = { 0 };
    aik_load_options lo = { 0 };
    aik_plugin *p;
    int r;

    if (!dir || !ret_plugin)
        return aik_fail(err, -EINVAL, "plugin", "missing directory or result pointer");
    if (opts_in)
        opts = *opts_in;
    p = calloc(1, sizeof(*p));
    if (!p)
        return aik_fail(err, -ENOMEM, dir, "out of memory");
    r = opts.trust_dir ? aik_trust_open(opts.trust_dir, &p->trust, err) : aik_trust_new(&p->trust);
    if (r < 0) {
        if (!opts.trust_dir)
            aik_fail(err, r, dir, "cannot create a trust store: %s", strerror(-r));
        goto fail;
    }
    /* Discovery must not raise the highest-seen version of anything. */
    lo.flags = (opts.load_flags & (AIK_LOAD_DEVELOPER | AIK_LOAD_ALLOW_ROLLBACK)) | AIK_LOAD_NO_RECORD;
    lo.trust = p->trust;
    /* Stage 1: digests, signature, trust, rollback; nothing runs yet. */
    if ((r = aik_module_open(dir, &lo, &p->mod, err)) < 0)
        goto fail;
    /* The manifest's kind is known before any code of the module runs. */
    if (aik_module_manifest(p->mod)->kind != AIK_MODULE_BACKEND) {
        uint32_t k = aik_module_manifest(p->mod)->kind;
        r = aik_fail(err, -ENOEXEC, dir, "module '%s' is of kind %s (%u), not a backend plug-in (kind %u)",
                     aik_module_manifest(p->mod)->name, aik_module_kind_label(k), k, AIK_MODULE_BACKEND);
        goto fail;
    }
    if ((r = check_profile(p, dir, &opts, err)) < 0)
        goto fail;
    /* Stage 3: ELF checks, dlopen of the verified bytes, descriptor == note. */
    if ((r = aik_module_activate(p->mod, err)) < 0)
        goto fail;
    if ((r = check_table(p, dir, err)) < 0)
        goto fail;
    *ret_plugin = p;
    return 0;
fail:
    aik_plugin_close(p);
    return r;
}

/* ---- directory scan ---- */

static void refuse(aik_plugin_set *s, const char *entry, int code, const aik_error *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void refuse(aik_plugin_set *s, const char *entry, int code, const aik_error *err, const char *fmt, ...)
{
    aik_plugin_refusal *f;
    va_list ap;

    if (s->n_refused >= AIK_PLUGIN_MAX)
        return;
    f = &s->refused[s->n_refused++];
    snprintf(f->entry, sizeof(f->entry), "%s", entry);
    f->code = code;
    if (err) {
        aik_error_format(err, f->reason, sizeof(f->reason));
    } else {
        va_start(ap, fmt);
        vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
        va_end(ap);
    }
}

/* Open and describe every device of a loaded plug-in. */
static void add_devices(aik_plugin_set *s, aik_plugin *p, const char *entry)
{
    const aik_backend_ops *ops = &p->ops;
    aik_error err = { 0 };
    int n = ops->device_count(&err);

    if (n < 0) {
        refuse(s, entry, n, NULL, "%s: device_count failed: %s", entry, err.message[0] ? err.message : strerror(-n));
        return;
    }
    if (n == 0) {
        refuse(s, entry, 0, NULL, "%s: plug-in '%s' (backend \"%s\") loaded but reports no device", entry,
               aik_plugin_name(p), ops->name);
        return;
    }
    for (int i = 0; i < n; i++) {
        aik_plugin_device *d;
        aik_backend *b = NULL;
        int r;
        if (s->n_dev >= AIK_PLUGIN_MAX_DEVICES) {
            refuse(s, entry, -E2BIG, NULL, "%s: device %d and later not used: at most %d plug-in devices", entry, i,
                   AIK_PLUGIN_MAX_DEVICES);
            return;
        }
        aik_error_clear(&err);
        r = ops->open((uint32_t)i, &b, &err);
        if (r < 0 || !b) {
            refuse(s, entry, r < 0 ? r : -EIO, NULL, "%s: device %d cannot be opened: %s", entry, i,
                   err.message[0] ? err.message : strerror(r < 0 ? -r : EIO));
            continue;
        }
        d = &s->dev[s->n_dev];
        *d = (aik_plugin_device){ .plugin = p, .ops = ops, .backend = b, .index = (uint32_t)i };
        d->info.struct_size = sizeof(d->info);
        r = ops->get_info(b, &d->info);
        /* The plug-in's strings are copied into fixed arrays: terminate
         * them whatever it wrote, and refuse a kind the host cannot place. */
        d->info.name[sizeof(d->info.name) - 1] = '\0';
        d->info.driver[sizeof(d->info.driver) - 1] = '\0';
        if (r < 0 || d->info.kind > AIK_BACKEND_NPU) {
            refuse(s, entry, r < 0 ? r : -EPROTO, NULL, "%s: device %d: get_info %s", entry, i,
                   r < 0 ? strerror(-r) : "reports an unknown device kind");
            ops->close(b);
            continue;
        }
        d->info.struct_size = sizeof(d->info);
        s->n_dev++;
    }
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int aik_plugin_scan(const char *dir, const aik_plugin_options *opts, aik_plugin_set **ret_set, aik_error *err)
{
    char *names[AIK_PLUGIN_MAX + 1];
    size_t n = 0;
    bool more = false;
    aik_plugin_set *s;
    struct dirent *de;
    DIR *d;

    if (!dir || !ret_set)
        return aik_fail(err, -EINVAL, "plugin", "missing directory or result pointer");
    d = opendir(dir);
    if (!d)
        return aik_fail(err, -errno, dir, "cannot read the plug-in directory: %s", strerror(errno));
    s = calloc(1, sizeof(*s));
    if (!s) {
        closedir(d);
        return aik_fail(err, -ENOMEM, dir, "out of memory");
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == AIK_PLUGIN_MAX) {
            more = true;
            break;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        aik_plugin *p = NULL;
        aik_error e = { 0 };
        int r;
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path)) {
            refuse(s, names[i], -ENAMETOOLONG, NULL, "%s: path too long", names[i]);
            continue;
        }
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
            refuse(s, names[i], -ENOTDIR, NULL,
                   "%s: not a module directory (a plug-in is a signed module directory with manifest.json; "
                   "see docs/backends.md)", path);
            continue;
        }
        r = aik_plugin_open(path, opts, &p, &e);
        if (r < 0) {
            if (!e.where[0] && !e.message[0])
                snprintf(e.message, sizeof(e.message), "%s", strerror(-r));
            refuse(s, names[i], r, &e, NULL);
            continue;
        }
        s->plugins[s->n_plugins++] = p;
        add_devices(s, p, names[i]);
    }
    if (more)
        refuse(s, "...", -E2BIG, NULL, "%s: more than %d entries; the rest were not looked at", dir, AIK_PLUGIN_MAX);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    *ret_set = s;
    return 0;
}

void aik_plugin_set_free(aik_plugin_set *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_dev; i++)
        s->dev[i].ops->close(s->dev[i].backend);
    for (uint32_t i = 0; i < s->n_plugins; i++)
        aik_plugin_close(s->plugins[i]);
    free(s);
}

/* ---- whole-graph execution through a vtable ---- */

struct aik_plugin_exec {
    const aik_backend_ops *ops;
    aik_backend *b;
    const aik_graph *g;
    uint32_t max_batch, ctx_len, n_past;
    aik_backend_node *nodes;
    aik_backend_buffer **owned; /* every buffer this executor allocated */
    uint32_t n_owned, cap_owned;
    aik_backend_tensor *k_cache, *v_cache;
    aik_backend_buffer *tokens;
    float *logits;
};

static int own(aik_plugin_exec *e, uint64_t bytes, aik_backend_buffer **ret, aik_error *err)
{
    int r;

    if (e->n_owned == e->cap_owned) {
        uint32_t nc = e->cap_owned ? 2 * e->cap_owned : 32;
        aik_backend_buffer **no = realloc(e->owned, nc * sizeof(*no));
        if (!no)
            return aik_fail(err, -ENOMEM, "plugin.exec", "out of memory");
        e->owned = no;
        e->cap_owned = nc;
    }
    if ((r = e->ops->buffer_alloc(e->b, bytes ? bytes : 4, ret, err)) < 0)
        return r;
    e->owned[e->n_owned++] = *ret;
    return 0;
}

void aik_plugin_exec_free(aik_plugin_exec *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->n_owned; i++)
        e->ops->buffer_free(e->b, e->owned[i]);
    free(e->owned);
    free(e->nodes);
    free(e->k_cache);
    free(e->v_cache);
    free(e->logits);
    free(e);
}

/* Activation buffers by liveness, as scheduler/cpu_exec.c plans them: a
 * node's buffer is released after its last reader (views followed). */
static int plan_activations(aik_plugin_exec *e, aik_error *err)
{
    const aik_graph *g = e->g;
    int32_t *buf_of = calloc((size_t)g->n_nodes, sizeof(*buf_of)), n_bufs = 0;
    uint64_t *floats = calloc((size_t)g->n_nodes, sizeof(*floats));
    bool *busy = calloc((size_t)g->n_nodes, sizeof(*busy));
    aik_backend_buffer **bufs = calloc((size_t)g->n_nodes, sizeof(*bufs));
    int r = 0;

    if (!buf_of || !floats || !busy || !bufs) {
        r = aik_fail(err, -ENOMEM, "plugin.exec", "out of memory");
        goto out;
    }
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        buf_of[i] = -1;
        if (n->op == AIK_OP_WEIGHT || n->op == AIK_OP_TOKENS || n->op == AIK_OP_NONE)
            continue;
        if (n->op == AIK_OP_RESHAPE) {
            buf_of[i] = buf_of[n->src[0]];
        } else {
            uint64_t need = (uint64_t)e->max_batch * n->width;
            int best = -1;
            for (int b = 0; b < n_bufs; b++)
                if (!busy[b] && floats[b] >= need && (best < 0 || floats[b] < floats[best]))
                    best = b;
            for (int b = 0; best < 0 && b < n_bufs; b++)
                if (!busy[b])
                    best = b;
            if (best < 0)
                best = n_bufs++;
            if (floats[best] < need)
                floats[best] = need;
            busy[best] = true;
            buf_of[i] = best;
        }
        for (int s = 0; s < 3; s++) {
            aik_node root = n->src[s];
            while (root >= 0 && g->nodes[root].op == AIK_OP_RESHAPE)
                root = g->nodes[root].src[0];
            if (root >= 0 && g->nodes[root].last_use == i && buf_of[root] >= 0 && buf_of[root] != buf_of[i])
                busy[buf_of[root]] = false;
        }
    }
    for (int b = 0; b < n_bufs; b++) {
        uint64_t bytes;
        if (aik_mul_overflow(floats[b], sizeof(float), &bytes)) {
            r = aik_fail(err, -EOVERFLOW, "plugin.exec", "activation buffer size overflows");
            goto out;
        }
        if ((r = own(e, bytes, &bufs[b], err)) < 0)
            goto out;
    }
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (buf_of[i] >= 0)
            e->nodes[i].data = (aik_backend_tensor){ bufs[buf_of[i]], 0 };
out:
    free(buf_of);
    free(floats);
    free(busy);
    free(bufs);
    return r;
}

int aik_plugin_exec_new(const aik_backend_ops *ops, aik_backend *b, const aik_graph *g,
                        const aik_plugin_exec_config *cfg, aik_plugin_exec **ret_exec, aik_error *err)
{
    aik_plugin_exec *e;
    int r;

    if (!ops || !b || !g || !cfg || !ret_exec || cfg->max_batch == 0 || g->logits < 0 || g->logits >= g->n_nodes ||
        g->nodes[g->logits].n_cols != g->hp.n_vocab)
        return aik_fail(err, -EINVAL, "plugin.exec", "missing device, graph, logits of n_vocab columns or max_batch");
    e = calloc(1, sizeof(*e));
    if (!e)
        return aik_fail(err, -ENOMEM, "plugin.exec", "out of memory");
    e->ops = ops;
    e->b = b;
    e->g = g;
    e->max_batch = cfg->max_batch;
    e->ctx_len = cfg->ctx_len ? cfg->ctx_len : g->hp.ctx_len;
    if (e->ctx_len == 0 || e->ctx_len > AIK_SLM_MAX_CTX) {
        r = aik_fail(err, -EINVAL, "plugin.exec", "context length %u out of range", e->ctx_len);
        goto fail;
    }
    if (e->max_batch > e->ctx_len)
        e->max_batch = e->ctx_len;
    e->k_cache = calloc(g->n_kv_layers ? g->n_kv_layers : 1, sizeof(*e->k_cache));
    e->v_cache = calloc(g->n_kv_layers ? g->n_kv_layers : 1, sizeof(*e->v_cache));
    e->logits = calloc((size_t)e->max_batch * g->hp.n_vocab, sizeof(float));
    if (!e->k_cache || !e->v_cache || !e->logits) {
        r = aik_fail(err, -ENOMEM, "plugin.exec", "out of memory");
        goto fail;
    }
    /* The backend's flat view of the host's node table. */
    if ((r = aik_segment_nodes_from_graph(g, &e->nodes, err)) < 0)
        goto fail;
    /* Weights: uploaded once; nodes bound to the same storage (tied
     * embeddings) share one buffer. */
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        aik_backend_buffer *wb = NULL;
        uint64_t bytes;
        if (n->op != AIK_OP_WEIGHT)
            continue;
        if (!n->data) {
            r = aik_fail(err, -EINVAL, n->name, "weight is not bound to data");
            goto fail;
        }
        for (aik_node j = 0; j < i && !wb; j++)
            if (g->nodes[j].op == AIK_OP_WEIGHT && g->nodes[j].data == n->data && g->nodes[j].dtype == n->dtype &&
                aik_segment_weight_elems(&e->nodes[j]) >= aik_segment_weight_elems(&e->nodes[i]))
                wb = e->nodes[j].data.buffer;
        if (!wb) {
            if (aik_dtype_bytes(n->dtype, aik_segment_weight_elems(&e->nodes[i]), &bytes) < 0) {
                r = aik_fail(err, -EINVAL, n->name, "size of %s weight not computable", aik_dtype_name(n->dtype));
                goto fail;
            }
            if ((r = own(e, bytes, &wb, err)) < 0 || (r = ops->buffer_upload(b, wb, 0, n->data, bytes, err)) < 0)
                goto fail;
        }
        e->nodes[i].data = (aik_backend_tensor){ wb, 0 };
    }
    if ((r = own(e, (uint64_t)e->max_batch * sizeof(int32_t), &e->tokens, err)) < 0)
        goto fail;
    if (g->tokens >= 0)
        e->nodes[g->tokens].data = (aik_backend_tensor){ e->tokens, 0 };
    if ((r = plan_activations(e, err)) < 0)
        goto fail;
    for (uint32_t l = 0; l < g->n_kv_layers; l++) {
        uint64_t bytes = (uint64_t)e->ctx_len * g->kv_cols[l] * sizeof(float);
        aik_backend_buffer *kb, *vb;
        if (!bytes)
            continue;
        if ((r = own(e, bytes, &kb, err)) < 0 || (r = own(e, bytes, &vb, err)) < 0)
            goto fail;
        e->k_cache[l] = (aik_backend_tensor){ kb, 0 };
        e->v_cache[l] = (aik_backend_tensor){ vb, 0 };
    }
    *ret_exec = e;
    return 0;
fail:
    aik_plugin_exec_free(e);
    return r;
}

uint32_t aik_plugin_exec_n_past(const aik_plugin_exec *e) { return e ? e->n_past : 0; }

void aik_plugin_exec_truncate(aik_plugin_exec *e, uint32_t n_past)
{
    if (e && n_past < e->n_past)
        e->n_past = n_past;
}

int aik_plugin_exec_run(aik_plugin_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                        const float **ret_logits, aik_error *err)
{
    const aik_graph *g;
    int r;

    if (!e || !tokens || !ret_logits || n_tokens == 0 || n_out == 0 || n_out > n_tokens)
        return aik_fail(err, -EINVAL, "plugin.exec", "bad arguments (n_tokens %u, n_out %u)", n_tokens, n_out);
    g = e->g;
    if (n_tokens > e->max_batch)
        return aik_fail(err, -EINVAL, "plugin.exec", "batch of %u tokens exceeds max_batch %u", n_tokens,
                        e->max_batch);
    if ((uint64_t)e->n_past + n_tokens > e->ctx_len)
        return aik_fail(err, -ENOSPC, "plugin.exec", "context full: %u positions used + %u new > %u", e->n_past,
                        n_tokens, e->ctx_len);
    for (uint32_t t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= g->hp.n_vocab)
            return aik_fail(err, -EINVAL, "plugin.exec", "token id %d at %u outside vocabulary of %u", tokens[t], t,
                            g->hp.n_vocab);
    if ((r = e->ops->buffer_upload(e->b, e->tokens, 0, tokens, (uint64_t)n_tokens * sizeof(int32_t), err)) < 0)
        return r;
    aik_backend_segment seg = {
        .struct_size = sizeof(seg),
        .nodes = e->nodes,
        .n_nodes = (uint32_t)g->n_nodes,
        .first = 0,
        .end = (uint32_t)g->n_nodes,
        .n_batch = n_tokens,
        .n_out = n_out,
        .n_past = e->n_past,
        .ctx_len = e->ctx_len,
        .n_kv = g->n_kv_layers,
        .k_cache = e->k_cache,
        .v_cache = e->v_cache,
    };
    if ((r = e->ops->execute(e->b, &seg, err)) < 0)
        return r;
    if (e->ops->synchronize && (r = e->ops->synchronize(e->b, err)) < 0)
        return r;
    const aik_backend_node *ln = &e->nodes[g->logits];
    uint64_t rows = aik_segment_node_rows(ln, n_tokens, n_out);
    if (rows > e->max_batch)
        return aik_fail(err, -EINVAL, "plugin.exec", "logits of %llu rows exceed the batch", (unsigned long long)rows);
    if ((r = e->ops->buffer_download(e->b, ln->data.buffer, ln->data.offset, e->logits,
                                     rows * ln->n_cols * sizeof(float), err)) < 0)
        return r;
    e->n_past += n_tokens;
    *ret_logits = e->logits;
    return 0;
}
