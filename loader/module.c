/* SPDX-License-Identifier: MIT */
/*
 * The module loader's driver: runs the stages over a struct load_info (see
 * internal.h), like kernel/module/main.c drives signing.c, version.c, ...
 *
 * Every file is opened exactly once, relative to the module directory's fd,
 * with O_NOFOLLOW. The object is read into memory once; that buffer is what
 * gets hashed, ELF-inspected and (through a sealed memfd) dlopened, so a
 * file swapped or rewritten after verification cannot be what runs.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/internal.h"
#include "loader/slm.h"

struct aik_module {
    struct load_info li;
    enum load_state state;
    bool profile_checked;
    bool elf_checked;
    aik_module_note_desc note;
    int memfd;
    void *dl;
    const aik_module_desc *desc;
    void *payload_map[AIK_MANIFEST_MAX_PAYLOADS]; /* non-.slm payloads */
    aik_slm *payload_slm[AIK_MANIFEST_MAX_PAYLOADS]; /* .slm payloads (mapped by slm.c) */
};

static bool is_slm(const char *file)
{
    size_t n = strlen(file);
    return n > 4 && strcmp(file + n - 4, ".slm") == 0;
}

/* Report a check to the caller's callback; decide whether to go on. */
static int report(struct load_info *li, const char *check, int r, aik_error *err)
{
    if (li->opts.on_check)
        li->opts.on_check(li->opts.userdata, check, r, r < 0 ? err : NULL);
    if (r < 0 && li->first_error == 0) {
        li->first_error = r;
        if (err)
            li->first_err = *err;
    }
    return r;
}

static bool keep_going(const struct load_info *li)
{
    return (li->opts.flags & AIK_LOAD_KEEP_GOING) != 0;
}

/* openat with the loader's flags; the result must be a regular file. */
static int open_member(struct load_info *li, const char *name, int *ret_fd, struct stat *ret_st, aik_error *err)
{
    struct stat st;
    int fd = openat(li->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return aik_fail(err, -ELOOP, name, "is a symbolic link (refused: verified files are opened with O_NOFOLLOW)");
        return aik_fail(err, -e, name, "cannot open: %s", strerror(e));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return aik_fail(err, -EINVAL, name, "is not a regular file");
    }
    *ret_fd = fd;
    if (ret_st)
        *ret_st = st;
    return 0;
}

/* Read a member file whole (cap) from its fd, which is closed after. */
static int read_member(struct load_info *li, const char *name, size_t max, char **ret, size_t *ret_len, aik_error *err)
{
    int fd, r;

    r = open_member(li, name, &fd, NULL, err);
    if (r < 0)
        return r;
    r = aik_read_fd(fd, max, ret, ret_len);
    close(fd);
    if (r == -EFBIG)
        return aik_fail(err, r, name, "larger than the limit of %zu bytes", max);
    if (r < 0)
        return aik_fail(err, r, name, "cannot read: %s", strerror(-r));
    return 0;
}

static int hash_timed(struct load_info *li, const void *data, size_t len, uint8_t out[32])
{
    uint64_t t0 = aik_now_ns();
    int r = aik_sha256_buf(data, len, out);
    li->hash_ns += aik_now_ns() - t0;
    li->bytes_hashed += len;
    return r;
}

static int compare_digest(const char *where, const uint8_t want[32], const uint8_t got[32], aik_error *err)
{
    char w[AIK_SHA256_HEX_LEN], g[AIK_SHA256_HEX_LEN];

    if (memcmp(want, got, 32) == 0)
        return 0;
    aik_sha256_hex(want, w);
    aik_sha256_hex(got, g);
    return aik_fail(err, -EBADMSG, where, "SHA-256 mismatch: manifest says %.16s…, file has %.16s…", w, g);
}

static int stage_manifest(struct load_info *li, aik_error *err)
{
    char *sig = NULL;
    size_t sig_len = 0;
    int r;

    r = read_member(li, "manifest.json", AIK_MANIFEST_MAX_SIZE, &li->manifest_bytes, &li->manifest_len, err);
    if (r == 0)
        r = hash_timed(li, li->manifest_bytes, li->manifest_len, li->manifest_digest);
    if (r == 0)
        r = aik_manifest_parse(li->manifest_bytes, li->manifest_len, &li->man, err);
    report(li, "manifest", r, err);
    if (r < 0)
        return r;

    r = read_member(li, "manifest.sig", AIK_ED25519_SIG_LEN + 1, &sig, &sig_len, err);
    if (r == -ENOENT) {
        li->is_signed = false;
        aik_error_clear(err);
        return 0;
    }
    if (r == 0 && sig_len != AIK_ED25519_SIG_LEN)
        r = aik_fail(err, -EBADMSG, "manifest.sig", "is %zu bytes, an Ed25519 signature is %d", sig_len,
                     AIK_ED25519_SIG_LEN);
    if (r == 0) {
        memcpy(li->sig, sig, AIK_ED25519_SIG_LEN);
        li->is_signed = true;
    }
    free(sig);
    if (r < 0)
        report(li, "signature", r, err);
    return r;
}

static int stage_object(struct load_info *li, aik_error *err)
{
    uint8_t d[32];
    char *img = NULL;
    size_t len = 0;
    struct stat st;
    int r;

    r = open_member(li, li->man.object.file, &li->so_fd, &st, err);
    if (r == 0) {
        if ((uint64_t)st.st_size > AIK_MODULE_OBJECT_MAX)
            r = aik_fail(err, -EFBIG, "object", "%s is larger than the limit of %llu bytes", li->man.object.file,
                         (unsigned long long)AIK_MODULE_OBJECT_MAX);
        else if ((r = aik_read_fd(li->so_fd, (size_t)AIK_MODULE_OBJECT_MAX, &img, &len)) < 0)
            aik_fail(err, r, "object", "cannot read %s: %s", li->man.object.file, strerror(-r));
    } else {
        aik_error_prefix(err, "object");
    }
    if (r == 0)
        r = hash_timed(li, img, len, d);
    if (r == 0)
        r = compare_digest("object.sha256", li->man.object.sha256, d, err);
    if (r == 0) {
        li->so_image = (uint8_t *)img;
        li->so_len = len;
        img = NULL;
    }
    free(img);
    return report(li, "object.sha256", r, err);
}

static int stage_payloads(struct load_info *li, aik_error *err)
{
    int first = 0;

    for (uint32_t i = 0; i < li->man.n_payloads; i++) {
        char where[48];
        uint8_t d[32];
        struct stat st;
        uint64_t t0;
        int r;

        snprintf(where, sizeof(where), "payloads[%u].sha256", i);
        r = open_member(li, li->man.payloads[i].file, &li->payload_fd[i], &st, err);
        if (r == 0) {
            li->payload_size[i] = (uint64_t)st.st_size;
            t0 = aik_now_ns();
            /* Hashed from the descriptor that activation maps. */
            r = aik_sha256_fd(li->payload_fd[i], d);
            li->hash_ns += aik_now_ns() - t0;
            li->bytes_hashed += (uint64_t)st.st_size;
            if (r < 0)
                r = aik_fail(err, r, where, "cannot hash %s: %s", li->man.payloads[i].file, strerror(-r));
        }
        if (r == 0)
            r = compare_digest(where, li->man.payloads[i].sha256, d, err);
        report(li, where, r, err);
        if (r < 0 && !first)
            first = r;
        if (r < 0 && !keep_going(li))
            return r;
    }
    return first;
}

static int stage_profile(struct load_info *li, aik_error *err)
{
    uint8_t d[32];
    int r;

    if (!li->man.has_profile)
        return 0;
    r = read_member(li, li->man.profile.file, AIK_MODULE_PROFILE_MAX, &li->profile, &li->profile_len, err);
    if (r == 0)
        r = hash_timed(li, li->profile, li->profile_len, d);
    if (r == 0)
        r = compare_digest("profile.sha256", li->man.profile.sha256, d, err);
    return report(li, "profile.sha256", r, err);
}

static void module_free(aik_module *m)
{
    struct load_info *li = &m->li;

    if (m->dl)
        dlclose(m->dl);
    /* The memfd stays open while the object is mapped, so its
     * /proc/self/fd/N name cannot be reused by another module's dlopen and
     * matched by ld.so's by-name cache. */
    if (m->memfd >= 0)
        close(m->memfd);
    for (uint32_t i = 0; i < AIK_MANIFEST_MAX_PAYLOADS; i++) {
        if (m->payload_map[i])
            munmap(m->payload_map[i], li->payload_size[i]);
        aik_slm_close(m->payload_slm[i]);
        if (li->payload_fd[i] >= 0)
            close(li->payload_fd[i]);
    }
    if (li->so_fd >= 0)
        close(li->so_fd);
    if (li->dirfd >= 0)
        close(li->dirfd);
    free(li->so_image);
    free(li->manifest_bytes);
    free(li->profile);
    free(li->dir);
    free(m);
}

int aik_module_open(const char *dir, const aik_load_options *opts, aik_module **ret_module, aik_error *err)
{
    aik_module *m;
    struct load_info *li;
    int r;

    if (!dir || !opts || !opts->trust || !ret_module)
        return aik_fail(err, -EINVAL, NULL, "aik_module_open: dir, opts, opts->trust and ret_module are required");
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    li = &m->li;
    m->memfd = -1;
    li->so_fd = -1;
    for (int i = 0; i < AIK_MANIFEST_MAX_PAYLOADS; i++)
        li->payload_fd[i] = -1;
    li->dir = strdup(dir); /* for messages in later stages; the caller's string may be gone */
    if (!li->dir) {
        free(m);
        return -ENOMEM;
    }
    li->opts = *opts;
    li->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (li->dirfd < 0) {
        r = aik_fail(err, -errno, dir, "cannot open module directory: %s", strerror(errno));
        goto fail;
    }

    r = stage_manifest(li, err);
    if (r < 0)
        goto fail; /* nothing else can be checked without a manifest */
    r = report(li, "signature", aik_load_signature(li, err), err);
    if (r < 0 && !keep_going(li))
        goto fail;
    r = report(li, "rollback", aik_load_rollback(li, err), err);
    if (r < 0 && !keep_going(li))
        goto fail;
    r = report(li, "lineage", aik_load_lineage(li, err), err);
    if (r < 0 && !keep_going(li))
        goto fail;
    r = stage_object(li, err);
    if (r < 0 && !keep_going(li))
        goto fail;
    r = stage_payloads(li, err);
    if (r < 0 && !keep_going(li))
        goto fail;
    r = stage_profile(li, err);
    if (r < 0 && !keep_going(li))
        goto fail;
    if (li->first_error < 0) {
        r = li->first_error;
        if (err)
            *err = li->first_err;
        goto fail;
    }
    m->state = LOAD_VERIFIED;
    *ret_module = m;
    return 0;
fail:
    aik_error_prefix(err, dir);
    module_free(m);
    return r;
}

const aik_manifest *aik_module_manifest(const aik_module *m)
{
    return m ? &m->li.man : NULL;
}

const uint8_t *aik_module_manifest_digest(const aik_module *m)
{
    return m ? m->li.manifest_digest : NULL;
}

uint32_t aik_module_warnings(const aik_module *m)
{
    return m ? m->li.warnings : 0;
}

const char *aik_module_warning_text(const aik_module *m)
{
    if (!m)
        return "";
    if (m->li.warnings & AIK_MODULE_WARN_UNSIGNED)
        return m->li.warning_text;
    if (m->li.warnings & AIK_MODULE_WARN_ROLLBACK)
        return "older version than the highest seen, allowed by governance rollback";
    return "";
}

const char *aik_module_profile(const aik_module *m, size_t *ret_len)
{
    if (!m || !m->li.profile) {
        if (ret_len)
            *ret_len = 0;
        return NULL;
    }
    if (ret_len)
        *ret_len = m->li.profile_len;
    return m->li.profile;
}

void aik_module_hash_stats(const aik_module *m, uint64_t *ret_bytes, uint64_t *ret_ns)
{
    if (ret_bytes)
        *ret_bytes = m ? m->li.bytes_hashed : 0;
    if (ret_ns)
        *ret_ns = m ? m->li.hash_ns : 0;
}

int aik_module_check_profile(aik_module *m, const aik_exec_profile *profile, const aik_host_info *host,
                             aik_error *err)
{
    int r;

    if (!m || !profile || !host)
        return -EINVAL;
    if (m->state != LOAD_VERIFIED)
        return aik_fail(err, -EINVAL, m->li.man.name, "profile check after activation");
    r = aik_exec_profile_check(profile, host, err);
    if (r < 0) {
        aik_error_prefix(err, m->li.man.name);
        return r;
    }
    m->profile_checked = true;
    return 0;
}

int aik_module_check_elf(aik_module *m, aik_module_note_desc *ret_note, aik_error *err)
{
    aik_module_note_desc note;
    const aik_manifest *man;
    int r;

    if (!m || !m->li.so_image)
        return -EINVAL;
    man = &m->li.man;
    if (!m->elf_checked) {
        r = aik_elf_check(m->li.so_image, m->li.so_len, &note, err);
        if (r < 0)
            goto fail;
        /* The signed manifest and the note compiled into the code must
         * describe the same module. */
        if (strcmp(note.name, man->name) != 0) {
            r = aik_fail(err, -ENOEXEC, "elf.note.name", "'%s' but the manifest says '%s'", note.name, man->name);
            goto fail;
        }
        if (strcmp(note.version, man->version) != 0) {
            r = aik_fail(err, -ENOEXEC, "elf.note.version", "'%s' but the manifest says '%s'", note.version,
                         man->version);
            goto fail;
        }
        if (note.kind != man->kind) {
            r = aik_fail(err, -ENOEXEC, "elf.note.kind", "%s but the manifest says %s", aik_module_kind_label(note.kind),
                         aik_module_kind_label(man->kind));
            goto fail;
        }
        m->note = note;
        m->elf_checked = true;
    }
    if (ret_note)
        *ret_note = m->note;
    return 0;
fail:
    aik_error_prefix(err, man->object.file);
    return r;
}

/* The descriptor found after dlopen must be the note's, and well formed. */
static int check_descriptor(aik_module *m, const aik_module_desc *d, aik_error *err)
{
    const aik_module_note_desc *n = &m->note;
    struct link_map *lm = NULL;
    Dl_info info;

    /* dlsym on a handle also searches its dependencies: make sure the symbol
     * really is inside this object. */
    if (dlinfo(m->dl, RTLD_DI_LINKMAP, &lm) != 0 || !lm || dladdr(d, &info) == 0 || !info.dli_fname ||
        strcmp(info.dli_fname, lm->l_name) != 0)
        return aik_fail(err, -ENOEXEC, AIK_MODULE_ENTRY_SYMBOL, "resolved outside the module object");
    if (d->abi_major != n->abi_major || d->abi_major != AIK_MODULE_ABI_MAJOR)
        return aik_fail(err, -ENOEXEC, "descriptor.abi_major", "is %u, note says %u", d->abi_major, n->abi_major);
    if (d->struct_size < sizeof(aik_module_desc))
        return aik_fail(err, -ENOEXEC, "descriptor.struct_size", "is %u, ABI %u.0 needs at least %zu",
                        d->struct_size, AIK_MODULE_ABI_MAJOR, sizeof(aik_module_desc));
    if (d->kind != n->kind)
        return aik_fail(err, -ENOEXEC, "descriptor.kind", "is %u, note says %u", d->kind, n->kind);
    if (!d->name || strncmp(d->name, n->name, sizeof(n->name)) != 0)
        return aik_fail(err, -ENOEXEC, "descriptor.name", "does not match the note's '%s'", n->name);
    if (!d->version || strncmp(d->version, n->version, sizeof(n->version)) != 0)
        return aik_fail(err, -ENOEXEC, "descriptor.version", "does not match the note's '%s'", n->version);
    if (!d->ops || d->ops_size < sizeof(uint32_t))
        return aik_fail(err, -ENOEXEC, "descriptor.ops", "missing or smaller than its struct_size field");
    if (*(const uint32_t *)d->ops != d->ops_size)
        return aik_fail(err, -ENOEXEC, "descriptor.ops_size", "is %u but the ops table's struct_size is %u",
                        d->ops_size, *(const uint32_t *)d->ops);
    return 0;
}

static int map_payloads(aik_module *m, aik_error *err)
{
    struct load_info *li = &m->li;

    for (uint32_t i = 0; i < li->man.n_payloads; i++) {
        struct stat st;
        void *p;

        if (li->payload_size[i] == 0)
            continue;
        /* Same descriptor that was hashed. A size change since then means
         * the file was rewritten in place. */
        if (fstat(li->payload_fd[i], &st) < 0 || (uint64_t)st.st_size != li->payload_size[i])
            return aik_fail(err, -EBADMSG, li->man.payloads[i].file, "changed size after verification");
        if (is_slm(li->man.payloads[i].file)) {
            /* Digest verified; now the structure (every offset and size). */
            int r = aik_slm_open_fd(li->payload_fd[i], 0, &m->payload_slm[i], err);
            if (r < 0) {
                aik_error_prefix(err, li->man.payloads[i].file);
                return r;
            }
            continue;
        }
        p = mmap(NULL, li->payload_size[i], PROT_READ, MAP_PRIVATE, li->payload_fd[i], 0);
        if (p == MAP_FAILED)
            return aik_fail(err, -errno, li->man.payloads[i].file, "mmap: %s", strerror(errno));
        m->payload_map[i] = p;
    }
    return 0;
}

int aik_module_activate(aik_module *m, aik_error *err)
{
    struct load_info *li;
    char path[64];
    void *sym;
    int r;

    if (!m)
        return -EINVAL;
    li = &m->li;
    if (m->state != LOAD_VERIFIED)
        return aik_fail(err, -EINVAL, li->man.name, "not in the verified state");
    if (li->man.has_profile && !m->profile_checked)
        return aik_fail(err, -EPERM, li->man.name,
                        "execution profile not checked against the host (aik_module_check_profile)");
    r = aik_module_check_elf(m, NULL, err);
    if (r < 0)
        return r;

    m->memfd = memfd_create(li->man.name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m->memfd < 0)
        return aik_fail(err, -errno, li->man.name, "memfd_create: %s", strerror(errno));
    for (size_t off = 0; off < li->so_len;) {
        ssize_t n = write(m->memfd, li->so_image + off, li->so_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = aik_fail(err, n < 0 ? -errno : -EIO, li->man.name, "writing the verified image: %s",
                         strerror(n < 0 ? errno : EIO));
            goto fail;
        }
        off += (size_t)n;
    }
    /* Sealed: nothing can change the bytes between here and mmap by ld.so. */
    if (fcntl(m->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        r = aik_fail(err, -errno, li->man.name, "sealing the verified image: %s", strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", m->memfd);
    dlerror();
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl) {
        const char *e = dlerror();
        r = aik_fail(err, -ENOEXEC, li->man.object.file, "dlopen: %.300s", e ? e : "failed");
        goto fail;
    }
    sym = dlsym(m->dl, AIK_MODULE_ENTRY_SYMBOL);
    if (!sym) {
        r = aik_fail(err, -ENOEXEC, AIK_MODULE_ENTRY_SYMBOL, "not found by dlsym");
        goto fail;
    }
    r = check_descriptor(m, sym, err);
    if (r < 0)
        goto fail;
    r = map_payloads(m, err);
    if (r < 0)
        goto fail;
    /* Only a signed module moves the rollback bar forward. */
    if (li->is_signed && !(li->opts.flags & AIK_LOAD_NO_RECORD)) {
        r = aik_trust_record_version(li->opts.trust, li->man.name, &li->man.semver, err);
        if (r < 0)
            goto fail;
    }
    m->desc = sym;
    m->state = LOAD_ACTIVE;
    return 0;
fail:
    for (uint32_t i = 0; i < AIK_MANIFEST_MAX_PAYLOADS; i++) {
        if (m->payload_map[i]) {
            munmap(m->payload_map[i], li->payload_size[i]);
            m->payload_map[i] = NULL;
        }
        aik_slm_close(m->payload_slm[i]);
        m->payload_slm[i] = NULL;
    }
    if (m->dl) {
        dlclose(m->dl);
        m->dl = NULL;
    }
    if (m->memfd >= 0) {
        close(m->memfd);
        m->memfd = -1;
    }
    aik_error_prefix(err, li->dir);
    return r;
}

const aik_module_desc *aik_module_descriptor_of(const aik_module *m)
{
    return m && m->state == LOAD_ACTIVE ? m->desc : NULL;
}

uint32_t aik_module_payload_count(const aik_module *m)
{
    return m ? m->li.man.n_payloads : 0;
}

int aik_module_payload(const aik_module *m, uint32_t i, const void **ret_data, uint64_t *ret_size)
{
    if (!m || m->state != LOAD_ACTIVE || i >= m->li.man.n_payloads || !ret_data || !ret_size)
        return -EINVAL;
    if (m->payload_slm[i]) {
        *ret_data = m->payload_slm[i]->map;
        *ret_size = m->payload_slm[i]->map_size;
    } else {
        *ret_data = m->payload_map[i];
        *ret_size = m->li.payload_size[i];
    }
    return 0;
}

const aik_slm *aik_module_payload_slm(const aik_module *m, uint32_t i)
{
    if (!m || m->state != LOAD_ACTIVE || i >= m->li.man.n_payloads)
        return NULL;
    return m->payload_slm[i];
}

void aik_module_close(aik_module *m)
{
    if (!m)
        return;
    module_free(m);
}
