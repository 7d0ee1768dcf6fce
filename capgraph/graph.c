/* SPDX-License-Identifier: MIT */
/* The capability graph container: loading, ordering, cycle check. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capgraph/internal.h"
#include "common/error.h"

const char *capgraph_module_label(const aik_profile *p, char *buf, size_t len)
{
    char v[96];
    snprintf(buf, len, "%s@%s", p->name, aik_semver_format(&p->version, v, sizeof(v)));
    return buf;
}

int aik_capgraph_new(aik_capgraph **ret_graph)
{
    aik_capgraph *g;

    if (!ret_graph)
        return -EINVAL;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->wordnet_dir = strdup(AIK_WORDNET_DEFAULT_DIR);
    if (!g->wordnet_dir) {
        free(g);
        return -ENOMEM;
    }
    pthread_mutex_init(&g->lock, NULL);
    *ret_graph = g;
    return 0;
}

void aik_capgraph_free(aik_capgraph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        aik_profile_free(g->mods[i]);
    free(g->mods);
    free(g->wordnet_dir);
    aik_wordnet_close(g->wn);
    aik_textmatch_free(g->tm);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static int module_cmp(const aik_profile *a, const aik_profile *b)
{
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    return -aik_semver_cmp(&a->version, &b->version);
}

int aik_capgraph_add(aik_capgraph *g, aik_profile *p, aik_error *err)
{
    size_t pos;
    char label[128];

    if (!g || !p)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (g->n >= AIK_CAPGRAPH_MAX_MODULES)
        return aik_fail(err, -E2BIG, p->source, "more than %u modules in one graph", AIK_CAPGRAPH_MAX_MODULES);
    for (pos = 0; pos < g->n; pos++) {
        int c = module_cmp(p, g->mods[pos]);
        if (c == 0)
            return aik_fail(err, -EEXIST, p->source, "module %s is already defined by %s",
                            capgraph_module_label(p, label, sizeof(label)), g->mods[pos]->source);
        if (c < 0)
            break;
    }
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        aik_profile **v = realloc(g->mods, ncap * sizeof(*v));
        if (!v)
            return aik_fail(err, -ENOMEM, NULL, "out of memory");
        g->mods = v;
        g->cap = ncap;
    }
    memmove(&g->mods[pos + 1], &g->mods[pos], (g->n - pos) * sizeof(*g->mods));
    g->mods[pos] = p;
    g->n++;
    /* The free-text index covers the old set of phrasings: rebuild lazily. */
    pthread_mutex_lock(&g->lock);
    aik_textmatch_free(g->tm);
    g->tm = NULL;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int aik_capgraph_load_dir(const char *dir, aik_capgraph **ret_graph, aik_error *err)
{
    aik_capgraph *g = NULL;
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r;

    if (!dir || !ret_graph)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    d = opendir(dir);
    if (!d)
        return aik_fail(err, -errno, dir, "cannot open profiles directory: %s", strerror(errno));
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        struct stat st;
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0 || de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n >= AIK_CAPGRAPH_MAX_MODULES) {
            r = aik_fail(err, -E2BIG, dir, "more than %u profiles", AIK_CAPGRAPH_MAX_MODULES);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **v = realloc(names, ncap * sizeof(*v));
            if (!v) {
                r = aik_fail(err, -ENOMEM, NULL, "out of memory");
                goto out;
            }
            names = v;
            cap = ncap;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    r = aik_capgraph_new(&g);
    if (r < 0) {
        aik_fail(err, r, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *path;
        aik_profile *p = NULL;
        if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
        r = aik_profile_load(path, &p, err);
        free(path);
        if (r < 0)
            goto out;
        r = aik_capgraph_add(g, p, err);
        if (r < 0) {
            aik_profile_free(p);
            goto out;
        }
    }
    *ret_graph = g;
    g = NULL;
    r = 0;
out:
    aik_capgraph_free(g);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return r;
}

size_t aik_capgraph_count(const aik_capgraph *g)
{
    return g ? g->n : 0;
}

const aik_profile *aik_capgraph_get(const aik_capgraph *g, size_t i)
{
    return g && i < g->n ? g->mods[i] : NULL;
}

int aik_capgraph_set_wordnet_dir(aik_capgraph *g, const char *dir)
{
    char *copy = NULL;

    if (!g)
        return -EINVAL;
    if (dir && !(copy = strdup(dir)))
        return -ENOMEM;
    pthread_mutex_lock(&g->lock);
    free(g->wordnet_dir);
    g->wordnet_dir = copy;
    aik_wordnet_close(g->wn);
    g->wn = NULL;
    g->wn_state = 0;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

int aik_capgraph_set_embedder(aik_capgraph *g, const aik_embedder *emb)
{
    if (!g)
        return -EINVAL;
    if (emb && (!emb->fn || emb->dim == 0 || emb->dim > AIK_EMBED_MAX_DIM || emb->weight < 0 || emb->weight > 1))
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    g->has_embedder = emb != NULL;
    if (emb)
        g->embedder = *emb;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* Depth-first search for a cycle; color: 0 white, 1 on stack, 2 done. */
static int dfs(const aik_capgraph *g, size_t u, unsigned char *color, size_t *stack, size_t depth, aik_error *err)
{
    const aik_profile *p = g->mods[u];

    color[u] = 1;
    stack[depth] = u;
    for (size_t i = 0; i < p->n_requires; i++) {
        for (size_t v = 0; v < g->n; v++) {
            if (!aik_profile_find_capability(g->mods[v], p->requires[i].id, &p->requires[i].range))
                continue;
            if (color[v] == 1) {
                /* Report the cycle from v's place on the stack. */
                char msg[sizeof(err->message)], label[128];
                size_t start = 0, len = 0;
                while (stack[start] != v)
                    start++;
                msg[0] = '\0';
                for (size_t k = start; k <= depth; k++) {
                    len += (size_t)snprintf(msg + len, len < sizeof(msg) ? sizeof(msg) - len : 0, "%s -> ",
                                            capgraph_module_label(g->mods[stack[k]], label, sizeof(label)));
                    if (len >= sizeof(msg))
                        len = sizeof(msg) - 1;
                }
                snprintf(msg + len, sizeof(msg) - len, "%s", capgraph_module_label(g->mods[v], label, sizeof(label)));
                return aik_fail(err, -ELOOP, "requires", "dependency cycle: %s", msg);
            }
            if (color[v] == 0) {
                int r = dfs(g, v, color, stack, depth + 1, err);
                if (r < 0)
                    return r;
            }
        }
    }
    color[u] = 2;
    return 0;
}

int aik_capgraph_check(const aik_capgraph *g, aik_error *err)
{
    unsigned char *color;
    size_t *stack;
    int r = 0;

    if (!g)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (g->n == 0)
        return 0;
    color = calloc(g->n, 1);
    stack = calloc(g->n, sizeof(*stack));
    if (!color || !stack) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (size_t u = 0; u < g->n && r == 0; u++)
        if (color[u] == 0)
            r = dfs(g, u, color, stack, 0, err);
out:
    free(color);
    free(stack);
    return r;
}
