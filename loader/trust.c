/* SPDX-License-Identifier: MIT */
/*
 * The trust store: public keys with roles, the revocation list and the
 * highest version seen of each module (rollback protection).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/internal.h"

#define TRUST_MAX_REVOKED 4096

struct trust_key {
    uint8_t id[32];
    uint8_t pub[AIK_ED25519_KEY_LEN];
    aik_key_role role;
};

struct aik_trust {
    char *dir;          /* NULL for an in-memory store */
    char *manifest_dir; /* dir/manifests */
    struct trust_key keys[AIK_TRUST_MAX_KEYS];
    size_t n_keys;
    uint8_t (*revoked)[32];
    size_t n_revoked;
};

const char *aik_key_role_name(aik_key_role role)
{
    switch (role) {
    case AIK_KEY_ROLE_ROOT:
        return "root";
    case AIK_KEY_ROLE_PUBLISHER:
        return "publisher";
    case AIK_KEY_ROLE_EVOLUTION:
        return "evolution";
    }
    return "?";
}

int aik_trust_new(aik_trust **ret_trust)
{
    aik_trust *t;

    if (!ret_trust)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    *ret_trust = t;
    return 0;
}

void aik_trust_free(aik_trust *t)
{
    if (!t)
        return;
    free(t->dir);
    free(t->manifest_dir);
    free(t->revoked);
    free(t);
}

int aik_trust_add_key(aik_trust *t, const uint8_t pub[AIK_ED25519_KEY_LEN], aik_key_role role)
{
    struct trust_key k;
    int r;

    if (!t || !pub || role < AIK_KEY_ROLE_ROOT || role > AIK_KEY_ROLE_EVOLUTION)
        return -EINVAL;
    memcpy(k.pub, pub, sizeof(k.pub));
    k.role = role;
    r = aik_key_id(pub, k.id);
    if (r < 0)
        return r;
    /* One role per key: a key listed twice would make its role ambiguous. */
    for (size_t i = 0; i < t->n_keys; i++)
        if (memcmp(t->keys[i].id, k.id, 32) == 0)
            return t->keys[i].role == role ? 0 : -EEXIST;
    if (t->n_keys >= AIK_TRUST_MAX_KEYS)
        return -E2BIG;
    t->keys[t->n_keys++] = k;
    return 0;
}

int aik_trust_revoke(aik_trust *t, const uint8_t key_id[32])
{
    uint8_t (*n)[32];

    if (!t || !key_id)
        return -EINVAL;
    if (t->n_revoked >= TRUST_MAX_REVOKED)
        return -E2BIG;
    n = realloc(t->revoked, (t->n_revoked + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    t->revoked = n;
    memcpy(t->revoked[t->n_revoked++], key_id, 32);
    return 0;
}

int aik_trust_find(const aik_trust *t, const uint8_t key_id[32], aik_key_role *ret_role,
                   uint8_t ret_pub[AIK_ED25519_KEY_LEN])
{
    if (!t || !key_id)
        return -EINVAL;
    /* Revocation wins over presence, whatever the role. */
    for (size_t i = 0; i < t->n_revoked; i++)
        if (memcmp(t->revoked[i], key_id, 32) == 0)
            return -EKEYREVOKED;
    for (size_t i = 0; i < t->n_keys; i++)
        if (memcmp(t->keys[i].id, key_id, 32) == 0) {
            if (ret_role)
                *ret_role = t->keys[i].role;
            if (ret_pub)
                memcpy(ret_pub, t->keys[i].pub, AIK_ED25519_KEY_LEN);
            return 0;
        }
    return -ENOKEY;
}

static int load_role_dir(aik_trust *t, const char *dir, aik_key_role role, aik_error *err)
{
    char *sub = NULL;
    DIR *d;
    struct dirent *de;
    int r = 0;

    if (asprintf(&sub, "%s/keys/%s", dir, aik_key_role_name(role)) < 0)
        return -ENOMEM;
    d = opendir(sub);
    if (!d) {
        r = errno == ENOENT ? 0 : aik_fail(err, -errno, sub, "cannot open: %s", strerror(errno));
        free(sub);
        return r;
    }
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        uint8_t pub[AIK_ED25519_KEY_LEN];
        char *path;

        if (de->d_name[0] == '.' || n < 5 || strcmp(de->d_name + n - 4, ".pub") != 0)
            continue;
        if (asprintf(&path, "%s/%s", sub, de->d_name) < 0) {
            r = -ENOMEM;
            break;
        }
        r = aik_public_key_load(path, pub, err);
        if (r == 0) {
            r = aik_trust_add_key(t, pub, role);
            if (r == -EEXIST)
                r = aik_fail(err, r, path, "key is already listed under another role");
            else if (r < 0)
                r = aik_fail(err, r, path, "cannot add key: %s", strerror(-r));
        }
        free(path);
        if (r < 0)
            break;
    }
    closedir(d);
    free(sub);
    return r;
}

static int load_revoked(aik_trust *t, const char *dir, aik_error *err)
{
    char *path = NULL, *data = NULL, *line, *save = NULL;
    size_t len;
    unsigned lineno = 0;
    int r;

    if (asprintf(&path, "%s/revoked", dir) < 0)
        return -ENOMEM;
    r = aik_read_file(path, 1u << 20, &data, &len);
    if (r == -ENOENT) {
        free(path);
        return 0;
    }
    if (r < 0) {
        r = aik_fail(err, r, path, "cannot read: %s", strerror(-r));
        free(path);
        return r;
    }
    if (memchr(data, '\0', len)) {
        r = aik_fail(err, -EINVAL, path, "contains a NUL byte");
        goto out;
    }
    /* strtok_r skips empty lines; line numbers are for messages only. */
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        uint8_t id[32];
        char *end;

        lineno++;
        while (*line == ' ' || *line == '\t')
            line++;
        end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        if (aik_sha256_from_hex(line, id) < 0) {
            char where[200];
            snprintf(where, sizeof(where), "%.150s: entry %u", path, lineno);
            r = aik_fail(err, -EINVAL, where, "must be a 64-digit hex key id");
            goto out;
        }
        r = aik_trust_revoke(t, id);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    free(data);
    free(path);
    return r;
}

int aik_trust_open(const char *dir, aik_trust **ret_trust, aik_error *err)
{
    aik_trust *t = NULL;
    struct stat st;
    int r;

    if (!dir || !ret_trust)
        return -EINVAL;
    if (stat(dir, &st) < 0)
        return aik_fail(err, -errno, dir, "trust store: %s", strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return aik_fail(err, -ENOTDIR, dir, "trust store is not a directory");
    r = aik_trust_new(&t);
    if (r < 0)
        return r;
    t->dir = strdup(dir);
    if (!t->dir || asprintf(&t->manifest_dir, "%s/manifests", dir) < 0) {
        t->manifest_dir = NULL;
        r = -ENOMEM;
        goto fail;
    }
    for (int role = AIK_KEY_ROLE_ROOT; role <= AIK_KEY_ROLE_EVOLUTION; role++) {
        r = load_role_dir(t, dir, (aik_key_role)role, err);
        if (r < 0)
            goto fail;
    }
    r = load_revoked(t, dir, err);
    if (r < 0)
        goto fail;
    *ret_trust = t;
    return 0;
fail:
    aik_trust_free(t);
    return r;
}

const char *aik_trust_manifest_dir(const aik_trust *t)
{
    return t ? t->manifest_dir : NULL;
}

int aik_trust_highest_version(const aik_trust *t, const char *name, aik_modver *ret_v)
{
    char *path = NULL, *data = NULL;
    size_t len;
    aik_modver v;
    int r;

    if (!t || !name || !ret_v || !aik_valid_module_name(name))
        return -EINVAL;
    if (!t->dir)
        return -ENOENT;
    if (asprintf(&path, "%s/versions/%s", t->dir, name) < 0)
        return -ENOMEM;
    r = aik_read_file(path, 64, &data, &len);
    free(path);
    if (r < 0)
        return r;
    if (len > 0 && data[len - 1] == '\n')
        data[--len] = '\0';
    r = strlen(data) == len ? aik_modver_parse(data, &v) : -EINVAL;
    free(data);
    if (r < 0)
        return -EBADMSG; /* a corrupt record must not silently allow rollback */
    *ret_v = v;
    return 0;
}

int aik_trust_record_version(aik_trust *t, const char *name, const aik_modver *v, aik_error *err)
{
    aik_modver cur;
    char *dir = NULL, *path = NULL;
    char text[48];
    int r, n;

    if (!t || !name || !v || !aik_valid_module_name(name))
        return -EINVAL;
    if (!t->dir)
        return 0;
    r = aik_trust_highest_version(t, name, &cur);
    if (r == 0 && aik_modver_cmp(v, &cur) <= 0)
        return 0;
    if (r < 0 && r != -ENOENT)
        return aik_fail(err, r, name, "highest-version record unreadable: %s", strerror(-r));
    if (asprintf(&dir, "%s/versions", t->dir) < 0)
        return -ENOMEM;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        r = aik_fail(err, -errno, dir, "cannot create: %s", strerror(errno));
        goto out;
    }
    if (asprintf(&path, "%s/%s", dir, name) < 0) {
        path = NULL;
        r = -ENOMEM;
        goto out;
    }
    n = snprintf(text, sizeof(text), "%u.%u.%u\n", v->major, v->minor, v->patch);
    /* Atomic replace: a crash leaves the old or the new record, never a torn
     * one that would read as "no record" and open the door to rollback. */
    r = aik_write_file_atomic(path, text, (size_t)n, 0644);
    if (r < 0)
        r = aik_fail(err, r, path, "cannot write: %s", strerror(-r));
out:
    free(path);
    free(dir);
    return r;
}

int aik_load_rollback(struct load_info *li, aik_error *err)
{
    aik_modver high;
    int r = aik_trust_highest_version(li->opts.trust, li->man.name, &high);

    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return aik_fail(err, r, "version", "highest-version record of '%s' is unreadable (%s); refusing",
                        li->man.name, strerror(-r));
    if (aik_modver_cmp(&li->man.semver, &high) >= 0)
        return 0;
    if (li->opts.flags & AIK_LOAD_ALLOW_ROLLBACK) {
        li->warnings |= AIK_MODULE_WARN_ROLLBACK;
        return 0;
    }
    return aik_fail(err, -ESTALE, "version",
                    "rollback refused: %s is older than %u.%u.%u, the highest version seen of '%s'",
                    li->man.version, high.major, high.minor, high.patch, li->man.name);
}

int aik_manifest_store_put(const char *store_dir, const void *manifest, size_t len,
                           const uint8_t sig[AIK_ED25519_SIG_LEN], uint8_t ret_digest[32],
                           aik_error *err)
{
    uint8_t d[32];
    char hex[AIK_SHA256_HEX_LEN];
    char *path = NULL;
    int r;

    if (!store_dir || !manifest || !sig)
        return -EINVAL;
    if (mkdir(store_dir, 0755) < 0 && errno != EEXIST)
        return aik_fail(err, -errno, store_dir, "cannot create: %s", strerror(errno));
    r = aik_sha256_buf(manifest, len, d);
    if (r < 0)
        return r;
    aik_sha256_hex(d, hex);
    if (asprintf(&path, "%s/%s.json", store_dir, hex) < 0)
        return -ENOMEM;
    r = aik_write_file_atomic(path, manifest, len, 0644);
    free(path);
    if (r < 0)
        return aik_fail(err, r, store_dir, "cannot store manifest: %s", strerror(-r));
    if (asprintf(&path, "%s/%s.sig", store_dir, hex) < 0)
        return -ENOMEM;
    r = aik_write_file_atomic(path, sig, AIK_ED25519_SIG_LEN, 0644);
    free(path);
    if (r < 0)
        return aik_fail(err, r, store_dir, "cannot store signature: %s", strerror(-r));
    if (ret_digest)
        memcpy(ret_digest, d, 32);
    return 0;
}
