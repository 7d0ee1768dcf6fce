/* SPDX-License-Identifier: MIT */
/*
 * aikctl sign DIR --key KEY [options]: compute the digests of a module
 * directory's files, write manifest.json and its detached Ed25519 signature
 * manifest.sig. Name, version and kind default to the .so's AIK note (read
 * with libelf, nothing of the module runs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/module.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aikctl sign DIR --key KEY.key [options]\n"
            "  --object FILE      the module .so (default: the only *.so in DIR)\n"
            "  --payload FILE     a payload (repeatable; default: every *.slm in DIR)\n"
            "  --profile FILE     the profile (default: profile.yaml if present)\n"
            "  --parent P         parent manifest: 64-hex digest or path to its manifest.json (repeatable)\n"
            "  --data ROLE=FILE   lineage: digest of a file the artifact was made from (repeatable;\n"
            "                     roles such as replay-log, trajectories, eval-cases)\n"
            "  --name N --version V --kind K   override the ELF note (the loader checks they agree)\n"
            "  --store DIR        also file the signed manifest in a manifest store (for lineage)\n");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Files in dir ending in ext, sorted. */
static int list_ext(const char *dir, const char *ext, char ***ret, size_t *ret_n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t n = 0;

    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), el = strlen(ext);
        char **nv;
        if (de->d_name[0] == '.' || l <= el || strcmp(de->d_name + l - el, ext) != 0)
            continue;
        nv = realloc(v, (n + 1) * sizeof(*v));
        if (!nv)
            break;
        v = nv;
        v[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), cmp_str);
    *ret = v;
    *ret_n = n;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int digest_file(const char *dir, const char *name, aik_manifest_file *out, aik_error *err)
{
    char *p;
    uint8_t d[32];
    int fd, r;

    if (!aik_valid_file_name(name))
        return aik_fail(err, -EINVAL, name, "not a plain file name inside the module directory");
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return -ENOMEM;
    fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(p);
    if (fd < 0)
        return aik_fail(err, -errno, name, "cannot open: %s", strerror(errno));
    r = aik_sha256_fd(fd, d);
    close(fd);
    if (r < 0)
        return aik_fail(err, r, name, "cannot hash: %s", strerror(-r));
    snprintf(out->file, sizeof(out->file), "%s", name);
    memcpy(out->sha256, d, 32);
    return 0;
}

/* --parent: a digest, or the path of a manifest.json to hash. */
static int parse_parent(const char *arg, uint8_t out[32])
{
    char *data;
    size_t len;
    int r;

    if (strlen(arg) == 64 && aik_sha256_from_hex(arg, out) == 0)
        return 0;
    r = aik_read_file(arg, AIK_MANIFEST_MAX_SIZE, &data, &len);
    if (r < 0)
        return r;
    r = aik_sha256_buf(data, len, out);
    free(data);
    return r;
}

int aikctl_cmd_sign(int argc, char **argv)
{
    const char *dir = NULL, *key_path = NULL, *object = NULL, *profile = NULL, *store = NULL;
    const char *name = NULL, *version = NULL, *kind = NULL;
    const char *payloads[AIK_MANIFEST_MAX_PAYLOADS];
    size_t n_payloads = 0;
    aik_manifest *m = calloc(1, sizeof(aik_manifest));
    aik_signing_key *key = NULL;
    aik_module_note_desc note;
    char **list = NULL, *path = NULL, *json = NULL, *img = NULL;
    size_t n_list = 0, len = 0, img_len = 0;
    uint8_t sig[64], digest[32];
    char hex[AIK_SHA256_HEX_LEN];
    aik_error err;
    int r, rc = 1;

    if (!m)
        return 1;
    aik_error_clear(&err);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--key") == 0 && has)
            key_path = argv[++i];
        else if (strcmp(a, "--object") == 0 && has)
            object = argv[++i];
        else if (strcmp(a, "--payload") == 0 && has) {
            if (n_payloads >= AIK_MANIFEST_MAX_PAYLOADS) {
                fprintf(stderr, "aikctl: sign: at most %d payloads\n", AIK_MANIFEST_MAX_PAYLOADS);
                goto out;
            }
            payloads[n_payloads++] = argv[++i];
        } else if (strcmp(a, "--profile") == 0 && has)
            profile = argv[++i];
        else if (strcmp(a, "--parent") == 0 && has) {
            if (m->n_parents >= AIK_MANIFEST_MAX_PARENTS) {
                fprintf(stderr, "aikctl: sign: at most %d parents\n", AIK_MANIFEST_MAX_PARENTS);
                goto out;
            }
            r = parse_parent(argv[++i], m->parents[m->n_parents]);
            if (r < 0) {
                fprintf(stderr, "aikctl: sign: --parent %s: neither a digest nor a readable manifest (%s)\n",
                        argv[i], strerror(-r));
                goto out;
            }
            m->n_parents++;
        } else if (strcmp(a, "--data") == 0 && has) {
            const char *arg = argv[++i], *eq = strchr(arg, '=');
            int fd;
            if (m->n_data >= AIK_MANIFEST_MAX_DATA || !eq || eq == arg ||
                (size_t)(eq - arg) >= AIK_MANIFEST_ROLE_MAX) {
                fprintf(stderr, "aikctl: sign: --data %s: expected ROLE=FILE (at most %d)\n", arg,
                        AIK_MANIFEST_MAX_DATA);
                goto out;
            }
            snprintf(m->data[m->n_data].role, sizeof(m->data[m->n_data].role), "%.*s", (int)(eq - arg), arg);
            fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
            r = fd < 0 ? -errno : aik_sha256_fd(fd, m->data[m->n_data].sha256);
            if (fd >= 0)
                close(fd);
            if (r < 0) {
                aikctl_print_errno(eq + 1, r);
                goto out;
            }
            m->n_data++;
        } else if (strcmp(a, "--name") == 0 && has)
            name = argv[++i];
        else if (strcmp(a, "--version") == 0 && has)
            version = argv[++i];
        else if (strcmp(a, "--kind") == 0 && has)
            kind = argv[++i];
        else if (strcmp(a, "--store") == 0 && has)
            store = argv[++i];
        else if (a[0] != '-' && !dir)
            dir = a;
        else {
            usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (!dir || !key_path) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    r = aik_signing_key_load(key_path, &key, &err);
    if (r < 0) {
        aikctl_print_error("sign", &err);
        goto out;
    }

    /* The object: given, or the only .so in the directory. */
    if (!object) {
        r = list_ext(dir, ".so", &list, &n_list);
        if (r < 0 || n_list != 1) {
            fprintf(stderr, "aikctl: sign: %s: found %zu .so files, name one with --object\n", dir, n_list);
            goto out;
        }
        object = list[0];
    }
    r = digest_file(dir, object, &m->object, &err);
    if (r < 0) {
        aikctl_print_error("sign", &err);
        goto out;
    }
    /* Identity from the note, read without running the module. */
    if (asprintf(&path, "%s/%s", dir, object) < 0)
        goto out;
    r = aik_read_file(path, 256u << 20, &img, &img_len);
    if (r == 0)
        r = aik_elf_read_note(img, img_len, &note, &err);
    if (r < 0 && !(name && version && kind)) {
        if (err.message[0])
            aikctl_print_error("sign: reading the AIK note", &err);
        else
            aikctl_print_errno("sign: reading the object", r);
        goto out;
    }
    snprintf(m->name, sizeof(m->name), "%s", name ? name : note.name);
    snprintf(m->version, sizeof(m->version), "%s", version ? version : note.version);
    if (kind) {
        if (aik_module_kind_parse(kind, &m->kind) < 0) {
            fprintf(stderr, "aikctl: sign: unknown kind '%s'\n", kind);
            goto out;
        }
    } else {
        m->kind = note.kind;
    }
    if (!aik_valid_module_name(m->name) || aik_modver_parse(m->version, &m->semver) < 0) {
        fprintf(stderr, "aikctl: sign: invalid name '%s' or version '%s'\n", m->name, m->version);
        goto out;
    }
    if (r == 0 && (strcmp(m->name, note.name) != 0 || strcmp(m->version, note.version) != 0 || m->kind != note.kind))
        fprintf(stderr, "aikctl: sign: warning: manifest identity differs from the AIK note (%s %s %s); the loader will refuse it\n",
                note.name, note.version, aik_module_kind_label(note.kind));

    /* Payloads: given, or every .slm. */
    if (n_payloads == 0) {
        free_list(list, n_list);
        list = NULL;
        n_list = 0;
        if (list_ext(dir, ".slm", &list, &n_list) == 0)
            for (size_t i = 0; i < n_list && n_payloads < AIK_MANIFEST_MAX_PAYLOADS; i++)
                payloads[n_payloads++] = list[i];
    }
    for (size_t i = 0; i < n_payloads; i++) {
        r = digest_file(dir, payloads[i], &m->payloads[i], &err);
        if (r < 0) {
            aikctl_print_error("sign: payload", &err);
            goto out;
        }
    }
    m->n_payloads = (uint32_t)n_payloads;
    if (!profile) {
        char *pp;
        if (asprintf(&pp, "%s/profile.yaml", dir) >= 0) {
            if (access(pp, F_OK) == 0)
                profile = "profile.yaml";
            free(pp);
        }
    }
    if (profile) {
        r = digest_file(dir, profile, &m->profile, &err);
        if (r < 0) {
            aikctl_print_error("sign: profile", &err);
            goto out;
        }
        m->has_profile = true;
    }
    r = aik_manifest_sign_write(dir, m, key, digest, &json, &len, sig, &err);
    if (r < 0) {
        aikctl_print_error("sign: manifest", &err);
        goto out;
    }
    if (store) {
        r = aik_manifest_store_put(store, json, len, sig, NULL, &err);
        if (r < 0) {
            aikctl_print_error("sign: --store", &err);
            goto out;
        }
    }
    aik_sha256_hex(digest, hex);
    printf("signed %s %s (%s): %u payload(s)%s, %u parent(s)\nmanifest digest: %s\n", m->name, m->version,
           aik_module_kind_label(m->kind), m->n_payloads, m->has_profile ? ", profile" : "", m->n_parents, hex);
    aik_sha256_hex(m->signer, hex);
    printf("signer key id:   %s\n", hex);
    rc = 0;
out:
    free_list(list, n_list);
    free(path);
    free(json);
    free(img);
    aik_signing_key_free(key);
    free(m);
    return rc;
}
