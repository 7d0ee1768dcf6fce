/* SPDX-License-Identifier: MIT */
/*
 * Lineage: a derived artifact names its parents by the SHA-256 of their
 * manifests. Each parent must resolve, in a manifest store, to a manifest
 * whose bytes hash to that digest and whose signature verifies under the
 * same role rules, recursively, until every path ends at an original artifact
 * signed by a root or publisher key (the role rule in
 * aik_verify_manifest_signature makes that automatic: an artifact without
 * parents cannot be signed by an evolution key).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/internal.h"

/* Cap on distinct manifests in one lineage. With up to 8 parents per
 * manifest and depth 16, a DAG of shared ancestors could otherwise make the
 * walk exponential; verified digests are remembered and visited once. */
#define LINEAGE_MAX_NODES 256

struct lineage_walk {
    const struct load_info *li;
    uint8_t path[AIK_LINEAGE_MAX_DEPTH + 1][32]; /* digests from the module down to the current node */
    uint8_t done[LINEAGE_MAX_NODES][32];         /* ancestors already verified */
    unsigned nodes;                               /* entries in done */
};

/* Read <dir>/<hex><ext> with a size cap. -ENOENT when absent. */
static int read_store_file(const char *dir, const char *hex, const char *ext, size_t max, char **ret,
                           size_t *ret_len)
{
    char *path;
    int r;

    if (asprintf(&path, "%s/%s%s", dir, hex, ext) < 0)
        return -ENOMEM;
    r = aik_read_file(path, max, ret, ret_len);
    free(path);
    return r;
}

static int verify_node(struct lineage_walk *w, const uint8_t digest[32], unsigned depth, const char *child,
                       aik_error *err);

/* Find and verify one parent manifest. */
static int resolve(struct lineage_walk *w, const uint8_t digest[32], unsigned depth, const char *child,
                   aik_error *err)
{
    const struct load_info *li = w->li;
    char hex[AIK_SHA256_HEX_LEN], where[160];
    const char *dirs[1 + 16];
    size_t n_dirs = 0;
    char *bytes = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    uint8_t got[32];
    aik_manifest *m = NULL;
    int r = -ENOENT;

    aik_sha256_hex(digest, hex);
    snprintf(where, sizeof(where), "lineage: %.40s parent %.16s…", child, hex);
    if (aik_trust_manifest_dir(li->opts.trust))
        dirs[n_dirs++] = aik_trust_manifest_dir(li->opts.trust);
    for (size_t i = 0; i < li->opts.n_manifest_dirs && n_dirs < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (li->opts.manifest_dirs[i])
            dirs[n_dirs++] = li->opts.manifest_dirs[i];
    for (size_t i = 0; i < n_dirs; i++) {
        r = read_store_file(dirs[i], hex, ".json", AIK_MANIFEST_MAX_SIZE, &bytes, &len);
        if (r == -ENOENT)
            continue;
        if (r < 0) {
            r = aik_fail(err, r, where, "cannot read manifest in %.60s: %s", dirs[i], strerror(-r));
            goto out;
        }
        r = read_store_file(dirs[i], hex, ".sig", AIK_ED25519_SIG_LEN + 1, &sig, &sig_len);
        if (r < 0) {
            r = aik_fail(err, r == -ENOENT ? -ENOKEY : r, where, "manifest found in %.60s but its signature is %s",
                         dirs[i], r == -ENOENT ? "missing" : "unreadable");
            goto out;
        }
        break;
    }
    if (!bytes) {
        r = aik_fail(err, -ENOENT, where, "missing parent: no manifest with this digest in %zu manifest store(s)",
                     n_dirs);
        goto out;
    }
    if (sig_len != AIK_ED25519_SIG_LEN) {
        r = aik_fail(err, -EBADMSG, where, "signature is %zu bytes, must be %d", sig_len, AIK_ED25519_SIG_LEN);
        goto out;
    }
    /* The store is only an index: what binds the parent is its digest. */
    r = aik_sha256_buf(bytes, len, got);
    if (r < 0)
        goto out;
    if (memcmp(got, digest, 32) != 0) {
        r = aik_fail(err, -EBADMSG, where, "stored manifest does not hash to its name");
        goto out;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        r = -ENOMEM;
        goto out;
    }
    r = aik_manifest_parse(bytes, len, m, err);
    if (r < 0) {
        aik_error_prefix(err, where);
        goto out;
    }
    r = aik_verify_manifest_signature(li->opts.trust, m, bytes, len, (const uint8_t *)sig, NULL, err);
    if (r < 0) {
        aik_error_prefix(err, where);
        goto out;
    }
    for (uint32_t i = 0; i < m->n_parents; i++) {
        r = verify_node(w, m->parents[i], depth + 1, m->name, err);
        if (r < 0)
            goto out;
    }
    /* Remember it only once its whole ancestry verified. */
    if (w->nodes >= LINEAGE_MAX_NODES) {
        r = aik_fail(err, -E2BIG, "lineage", "more than %d distinct ancestor manifests", LINEAGE_MAX_NODES);
        goto out;
    }
    memcpy(w->done[w->nodes++], digest, 32);
    r = 0;
out:
    free(m);
    free(sig);
    free(bytes);
    return r;
}

static int verify_node(struct lineage_walk *w, const uint8_t digest[32], unsigned depth, const char *child,
                       aik_error *err)
{
    char hex[AIK_SHA256_HEX_LEN];

    aik_sha256_hex(digest, hex);
    if (depth > AIK_LINEAGE_MAX_DEPTH)
        return aik_fail(err, -ELOOP, "lineage", "chain deeper than %d at %.16s…", AIK_LINEAGE_MAX_DEPTH, hex);
    /* A cycle needs a SHA-256 preimage, but a store can still hold a
     * manifest naming itself through a hash it does not have: refuse any
     * digest already on the current path rather than trust the math. */
    for (unsigned i = 0; i < depth; i++)
        if (memcmp(w->path[i], digest, 32) == 0)
            return aik_fail(err, -ELOOP, "lineage", "cycle: %.16s… is its own ancestor", hex);
    for (unsigned i = 0; i < w->nodes; i++)
        if (memcmp(w->done[i], digest, 32) == 0)
            return 0; /* shared ancestor, already verified */
    memcpy(w->path[depth], digest, 32);
    return resolve(w, digest, depth, child, err);
}

int aik_load_lineage(struct load_info *li, aik_error *err)
{
    struct lineage_walk *w;
    int r = 0;

    if (li->man.n_parents == 0)
        return 0;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->li = li;
    memcpy(w->path[0], li->manifest_digest, 32);
    for (uint32_t i = 0; i < li->man.n_parents && r == 0; i++)
        r = verify_node(w, li->man.parents[i], 1, li->man.name, err);
    free(w);
    return r;
}
