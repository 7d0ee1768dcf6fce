/* SPDX-License-Identifier: MIT */
/*
 * The module loader's tamper suite. Real modules built by meson (argv, in the
 * order of tests/modloader/meson.build) are put into module directories with
 * a real .slm payload and a profile, signed, and then broken one way at a
 * time; every refusal is asserted on its specific reason (err.where and the
 * error code), and the happy path is loaded for real and called.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <gelf.h>
#include <libelf.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/module.h"
#include "loader/slm_testpkg.h"
#include "rfc8032_vectors.h"
#include "testutil.h"

enum { MOD_GOOD, MOD_EVIL, MOD_OLD, MOD_EXECSTACK, MOD_NOENTRY, MOD_ABI99, MOD_TEXTREL, MOD_NEEDED, MOD_MISMATCH, MOD_COUNT };
static const char *g_mod[MOD_COUNT];

/* Keys: in the trust store with a role, revoked, or unknown. */
static aik_signing_key *k_root, *k_pub, *k_evo, *k_revoked, *k_other;

typedef struct test_ops {
    uint32_t struct_size;
    int (*value)(void);
} test_ops;

/* Plain write (no fsync: test fixtures need no crash safety, and fsync
 * would dominate the suite's run time). */
static int put_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, data, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -EIO;
}

/* ---- fixture: a temp dir with a trust store ---- */

static char *g_tmp, *g_trust_dir;
static aik_trust *g_trust;

static char *path_in(const char *a, const char *b)
{
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", a, b), 0);
    return p;
}

static void save_pub(aik_signing_key *k, const char *role, const char *name)
{
    char *dir, *pub, *priv, *tmp;
    aik_error err;

    ck_assert_int_ge(asprintf(&dir, "%s/keys/%s", g_trust_dir, role), 0);
    ck_assert_int_ge(asprintf(&tmp, "mkdir -p '%s'", dir), 0);
    ck_assert_int_eq(system(tmp), 0);
    ck_assert_int_ge(asprintf(&pub, "%s/%s.pub", dir, name), 0);
    ck_assert_int_ge(asprintf(&priv, "%s/%s.key", g_tmp, name), 0);
    ck_assert_msg(aik_signing_key_save(k, priv, pub, &err) == 0, "%s", err.message);
    free(tmp);
    free(dir);
    free(pub);
    free(priv);
}

static void reload_trust(void)
{
    aik_error err;

    aik_trust_free(g_trust);
    g_trust = NULL;
    ck_assert_msg(aik_trust_open(g_trust_dir, &g_trust, &err) == 0, "%s: %s", err.where, err.message);
}

/* Built once in main() (key files, revocation list, a .slm package) and
 * copied per test: the library writes them with fsync, which would
 * otherwise dominate the suite's run time. */
static char *g_template;

static int build_template(void)
{
    static const struct {
        aik_signing_key **key;
        const char *role, *name;
    } keys[] = {
        { &k_root, "root", "root" },
        { &k_pub, "publisher", "publisher" },
        { &k_evo, "evolution", "evolution" },
        { &k_revoked, "publisher", "revoked" },
    };
    uint8_t pub[32], id[32];
    char hex[AIK_SHA256_HEX_LEN], path[512], priv[512], text[128];
    aik_error err;

    g_template = aik_test_tmpdir();
    if (!g_template)
        return -1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(path, sizeof(path), "mkdir -p '%s/trust/keys/%s'", g_template, keys[i].role);
        if (system(path) != 0)
            return -1;
        snprintf(path, sizeof(path), "%s/trust/keys/%s/%s.pub", g_template, keys[i].role, keys[i].name);
        snprintf(priv, sizeof(priv), "%s/%s.key", g_template, keys[i].name);
        if (aik_signing_key_save(*keys[i].key, priv, path, &err) < 0)
            return -1;
    }
    if (aik_signing_key_public(k_revoked, pub) < 0 || aik_key_id(pub, id) < 0)
        return -1;
    aik_sha256_hex(id, hex);
    snprintf(text, sizeof(text), "# revoked keys\n\n%s\n", hex);
    snprintf(path, sizeof(path), "%s/trust/revoked", g_template);
    if (put_file(path, text, strlen(text), 0644) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/model.slm", g_template);
    return testpkg_write(path, &err) < 0 ? -1 : 0;
}

static void setup(void)
{
    char *cmd;

    g_tmp = aik_test_tmpdir();
    ck_assert_ptr_nonnull(g_tmp);
    g_trust_dir = path_in(g_tmp, "trust");
    ck_assert_int_ge(asprintf(&cmd, "cp -a '%s/trust' '%s'", g_template, g_trust_dir), 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    reload_trust();
}

static void teardown(void)
{
    aik_trust_free(g_trust);
    g_trust = NULL;
    aik_test_rmtree(g_tmp);
    free(g_tmp);
    free(g_trust_dir);
}

/* ---- building module directories ---- */

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;

    ck_assert_int_eq(aik_read_file(from, 64u << 20, &data, &len), 0);
    unlink(to); /* a new inode, like a real copy */
    ck_assert_int_eq(put_file(to, data, len, 0644), 0);
    free(data);
}

static void file_digest(const char *dir, const char *name, uint8_t out[32])
{
    char *p = path_in(dir, name), *data;
    size_t len;

    ck_assert_int_eq(aik_read_file(p, 64u << 20, &data, &len), 0);
    ck_assert_int_eq(aik_sha256_buf(data, len, out), 0);
    free(data);
    free(p);
}

typedef struct modspec {
    int so;                 /* MOD_* */
    aik_signing_key *key;   /* NULL: unsigned */
    const char *version;    /* default "1.2.0" */
    int n_parents;
    uint8_t parents[2][32];
    bool no_payload, no_profile;
} modspec;

static const char profile_text[] = "execution:\n  memory: 1048576\n  backends: [cpu]\n";

/* Write manifest.json (digests of the files as they are now) and sign it. */
static void write_manifest(const char *dir, const modspec *s, uint8_t ret_digest[32])
{
    aik_manifest m;
    uint8_t pub[32], sig[64];
    char *json, *p;
    size_t len;
    aik_error err;

    memset(&m, 0, sizeof(m));
    m.format = AIK_MANIFEST_FORMAT;
    snprintf(m.name, sizeof(m.name), "tamper-test");
    snprintf(m.version, sizeof(m.version), "%s", s->version ? s->version : "1.2.0");
    m.kind = AIK_MODULE_CAPABILITY;
    snprintf(m.object.file, sizeof(m.object.file), "mod.so");
    file_digest(dir, "mod.so", m.object.sha256);
    if (!s->no_payload) {
        m.n_payloads = 1;
        snprintf(m.payloads[0].file, sizeof(m.payloads[0].file), "model.slm");
        file_digest(dir, "model.slm", m.payloads[0].sha256);
    }
    if (!s->no_profile) {
        m.has_profile = true;
        snprintf(m.profile.file, sizeof(m.profile.file), "profile.yaml");
        file_digest(dir, "profile.yaml", m.profile.sha256);
    }
    m.n_parents = (uint32_t)s->n_parents;
    memcpy(m.parents, s->parents, sizeof(s->parents));
    ck_assert_int_eq(aik_signing_key_public(s->key ? s->key : k_pub, pub), 0);
    ck_assert_int_eq(aik_key_id(pub, m.signer), 0);
    ck_assert_msg(aik_manifest_write(&m, &json, &len, &err) == 0, "%s", err.message);
    p = path_in(dir, "manifest.json");
    ck_assert_int_eq(put_file(p, json, len, 0644), 0);
    free(p);
    p = path_in(dir, "manifest.sig");
    unlink(p);
    if (s->key) {
        ck_assert_int_eq(aik_signing_key_sign(s->key, json, len, sig), 0);
        ck_assert_int_eq(put_file(p, sig, sizeof(sig), 0644), 0);
    }
    free(p);
    if (ret_digest)
        ck_assert_int_eq(aik_sha256_buf(json, len, ret_digest), 0);
    free(json);
}

/* A complete module directory g_tmp/<name>. Returns its path. */
static char *make_module(const char *name, const modspec *s, uint8_t ret_digest[32])
{
    char *dir = path_in(g_tmp, name), *p;

    ck_assert_int_eq(mkdir(dir, 0755), 0);
    p = path_in(dir, "mod.so");
    copy_file(g_mod[s->so], p);
    free(p);
    if (!s->no_payload) {
        char *src = path_in(g_template, "model.slm");
        p = path_in(dir, "model.slm");
        copy_file(src, p);
        free(src);
        free(p);
    }
    if (!s->no_profile) {
        p = path_in(dir, "profile.yaml");
        ck_assert_int_eq(put_file(p, profile_text, strlen(profile_text), 0644), 0);
        free(p);
    }
    write_manifest(dir, s, ret_digest);
    return dir;
}

static void flip_byte(const char *dir, const char *file, uint64_t off)
{
    char *p = path_in(dir, file);
    int fd = open(p, O_RDWR);
    uint8_t b;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
    free(p);
}

static void flip_byte_mask(const char *dir, const char *file, uint64_t off, uint8_t mask)
{
    char *p = path_in(dir, file);
    int fd = open(p, O_RDWR);
    uint8_t b;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
    free(p);
}

struct seen_checks {
    char names[8][32];
    int results[8];
    int n;
};

static void keep_going_cb(void *userdata, const char *check, int result, const aik_error *err)
{
    struct seen_checks *seen = userdata;

    ck_assert(result == 0 ? err == NULL : err != NULL);
    if (seen->n < 8) {
        snprintf(seen->names[seen->n], sizeof(seen->names[0]), "%s", check);
        seen->results[seen->n++] = result;
    }
}

/* ---- loading ---- */

static aik_exec_profile test_profile(void)
{
    /* What capgraph would decode from profile_text. */
    aik_exec_profile p = { 0 };
    p.memory_bytes = 1048576;
    p.backends = AIK_BACKEND_BIT_CPU;
    return p;
}

/* open → profile check → activate. Returns 0 or the first error. */
static int load(const char *dir, uint32_t flags, aik_module **ret, aik_error *err)
{
    aik_load_options o = { 0 };
    aik_module *m = NULL;
    aik_exec_profile prof = test_profile();
    aik_host_info host;
    int r;

    o.flags = flags;
    o.trust = g_trust;
    aik_error_clear(err);
    r = aik_module_open(dir, &o, &m, err);
    if (r < 0)
        return r;
    ck_assert_int_eq(aik_host_info_probe(&host), 0);
    if (aik_module_profile(m, NULL)) {
        r = aik_module_check_profile(m, &prof, &host, err);
        if (r < 0)
            goto fail;
    }
    r = aik_module_activate(m, err);
    if (r < 0)
        goto fail;
    if (ret)
        *ret = m;
    else
        aik_module_close(m);
    return 0;
fail:
    aik_module_close(m);
    return r;
}

/* Assert a refusal: code and a `where` that contains want_where. */
#define assert_refused(dir, flags, code, want_where)                                                      \
    do {                                                                                                  \
        aik_error e_;                                                                                     \
        int r_ = load((dir), (flags), NULL, &e_);                                                         \
        ck_assert_msg(r_ == (code), "expected %d (%s), got %d: %s: %s", (code), (want_where), r_, e_.where, \
                      e_.message);                                                                        \
        ck_assert_msg(strstr(e_.where, (want_where)) != NULL, "expected where ~ '%s', got '%s': %s",       \
                      (want_where), e_.where, e_.message);                                                \
    } while (0)

static int call_value(const aik_module *m)
{
    const aik_module_desc *d = aik_module_descriptor_of(m);
    ck_assert_ptr_nonnull(d);
    return ((const test_ops *)d->ops)->value();
}

/* ---- happy path ---- */

START_TEST(test_load_good)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("good", &s, NULL), *rec;
    aik_module *m = NULL;
    aik_error err;
    const aik_module_desc *d;
    const aik_slm *pkg;
    const void *data;
    uint64_t size, hashed, ns;
    char *text;
    size_t len;

    ck_assert_msg(load(dir, 0, &m, &err) == 0, "%s: %s", err.where, err.message);
    d = aik_module_descriptor_of(m);
    ck_assert_str_eq(d->name, "tamper-test");
    ck_assert_str_eq(d->version, "1.2.0");
    ck_assert_uint_eq(d->kind, AIK_MODULE_CAPABILITY);
    ck_assert_int_eq(call_value(m), 42);
    ck_assert_uint_eq(aik_module_warnings(m), 0);
    ck_assert_uint_eq(aik_module_payload_count(m), 1);
    pkg = aik_module_payload_slm(m, 0);
    ck_assert_ptr_nonnull(pkg);
    ck_assert_uint_eq(pkg->hdr.tensor_count, TESTPKG_N_TENSORS);
    ck_assert_int_eq(aik_module_payload(m, 0, &data, &size), 0);
    ck_assert_uint_eq(size, pkg->map_size);
    ck_assert_int_eq(aik_module_payload(m, 1, &data, &size), -EINVAL);
    ck_assert_str_eq(aik_module_profile(m, &len), profile_text);
    aik_module_hash_stats(m, &hashed, &ns);
    ck_assert_uint_gt(hashed, size);
    aik_module_close(m);
    /* The highest-seen record moved to 1.2.0 (atomically written). */
    rec = path_in(g_trust_dir, "versions/tamper-test");
    ck_assert_int_eq(aik_read_file(rec, 64, &text, &len), 0);
    ck_assert_str_eq(text, "1.2.0\n");
    free(text);
    free(rec);
    free(dir);
}
END_TEST

START_TEST(test_load_twice_and_no_profile)
{
    /* Two modules resident at once, each from its own sealed memfd. */
    modspec s1 = { .so = MOD_GOOD, .key = k_root, .no_profile = true, .no_payload = true };
    char *d1 = make_module("one", &s1, NULL), *d2 = make_module("two", &s1, NULL);
    aik_module *m1 = NULL, *m2 = NULL;
    aik_error err;

    ck_assert_msg(load(d1, 0, &m1, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_msg(load(d2, 0, &m2, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_eq(call_value(m1), 42);
    ck_assert_int_eq(call_value(m2), 42);
    ck_assert_ptr_ne(aik_module_descriptor_of(m1), aik_module_descriptor_of(m2));
    ck_assert_ptr_null(aik_module_profile(m1, NULL));
    aik_module_close(m1);
    aik_module_close(m2);
    aik_module_close(NULL);
    free(d1);
    free(d2);
}
END_TEST

/* ---- one flipped byte per region ---- */

/* File offset of a section's bytes in an ELF file. */
static uint64_t section_offset(const char *path, const char *want)
{
    char *data;
    size_t len;
    Elf *e;
    Elf_Scn *scn = NULL;
    size_t shstr;
    uint64_t off = 0;

    ck_assert_int_eq(aik_read_file(path, 64u << 20, &data, &len), 0);
    ck_assert(elf_version(EV_CURRENT) != EV_NONE);
    e = elf_memory(data, len);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(elf_getshdrstrndx(e, &shstr), 0);
    while ((scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        ck_assert_ptr_nonnull(gelf_getshdr(scn, &sh));
        if (strcmp(elf_strptr(e, shstr, sh.sh_name), want) == 0) {
            off = sh.sh_offset;
            break;
        }
    }
    elf_end(e);
    free(data);
    ck_assert_msg(off != 0, "section %s not found", want);
    return off;
}

static uint64_t slm_data_offset(const char *dir)
{
    char *p = path_in(dir, "model.slm");
    aik_slm *pkg;
    aik_error err;
    uint64_t off;

    ck_assert_int_eq(aik_slm_open(p, 0, &pkg, &err), 0);
    off = pkg->hdr.data_offset;
    aik_slm_close(pkg);
    free(p);
    return off;
}

static const struct {
    const char *region;
    const char *file;
    const char *section; /* offset = section start + off when set */
    uint64_t off;
    bool slm_data;
    int code;
    const char *where;
} flips[] = {
    { "ELF header", "mod.so", NULL, 0x12, false, -EBADMSG, "object.sha256" },
    { "AIK note", "mod.so", ".note.aik.module", 24, false, -EBADMSG, "object.sha256" },
    { "code", "mod.so", ".text", 8, false, -EBADMSG, "object.sha256" },
    { "payload header", "model.slm", NULL, 28, false, -EBADMSG, "payloads[0].sha256" },
    { "tensor data", "model.slm", NULL, 5, true, -EBADMSG, "payloads[0].sha256" },
    { "manifest", "manifest.json", NULL, 0, false, -EBADMSG, "signature" },
    { "signature", "manifest.sig", NULL, 17, false, -EBADMSG, "signature" },
    { "profile", "profile.yaml", NULL, 3, false, -EBADMSG, "profile.sha256" },
};

START_TEST(test_flip_region)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("flip", &s, NULL);
    uint64_t off = flips[_i].off;

    if (flips[_i].section)
        off += section_offset(g_mod[MOD_GOOD], flips[_i].section);
    if (flips[_i].slm_data)
        off += slm_data_offset(dir);
    if (strcmp(flips[_i].file, "manifest.json") == 0) {
        /* Inside the name string, so the JSON stays valid and it is the
         * signature, not the parser, that has to catch it. */
        char *p = path_in(dir, "manifest.json"), *data;
        size_t len;
        ck_assert_int_eq(aik_read_file(p, 1 << 16, &data, &len), 0);
        off = (uint64_t)(strstr(data, "tamper-test") - data) + 3;
        free(data);
        free(p);
    }
    flip_byte(dir, flips[_i].file, off);
    assert_refused(dir, 0, flips[_i].code, flips[_i].where);
    free(dir);
}
END_TEST

/* The ELF checks hold even for a correctly signed (re-signed) image. */
START_TEST(test_resigned_elf_tamper)
{
    static const struct {
        const char *section;
        uint64_t off;
        uint8_t xor;
        const char *where;
    } cases[] = {
        { NULL, 0x12, 0x01, "elf.header.e_machine" },     /* e_machine */
        { NULL, 0x10, 0x01, "elf.header.e_type" },        /* ET_DYN -> ET_CORE */
        { NULL, 0x04, 0x03, "elf.header.e_ident" },       /* ELF class */
        { ".note.aik.module", 16, 0x02, "elf.note.abi_major" }, /* desc.abi_major 1 -> 3 */
        { ".note.aik.module", 24 + 7, 0x01, "elf.note.name" },  /* "tamper-uest" vs manifest */
        { ".note.aik.module", 12, 0x01, "elf.note" },           /* owner "AIK" -> "@IK": no note */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        modspec s = { .so = MOD_GOOD, .key = k_pub, .no_payload = true, .no_profile = true };
        char name[32], *dir, *p;
        uint64_t off = cases[i].off;
        int fd;
        uint8_t b;

        snprintf(name, sizeof(name), "re%zu", i);
        dir = make_module(name, &s, NULL);
        if (cases[i].section)
            off += section_offset(g_mod[MOD_GOOD], cases[i].section);
        p = path_in(dir, "mod.so");
        fd = open(p, O_RDWR);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
        b ^= cases[i].xor;
        ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
        close(fd);
        free(p);
        write_manifest(dir, &s, NULL);
        assert_refused(dir, 0, -ENOEXEC, cases[i].where);
        free(dir);
    }
}
END_TEST

/* ---- keys, roles, versions, lineage ---- */

START_TEST(test_wrong_key)
{
    modspec s = { .so = MOD_GOOD, .key = k_other };
    char *dir = make_module("other", &s, NULL);
    assert_refused(dir, 0, -ENOKEY, "signer");
    free(dir);
}
END_TEST

START_TEST(test_signed_by_wrong_key_for_signer_field)
{
    /* Manifest names the publisher as signer but the root key signed it. */
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("mismatch", &s, NULL), *p = path_in(dir, "manifest.json"), *data;
    uint8_t sig[64];
    size_t len;

    ck_assert_int_eq(aik_read_file(p, 1 << 16, &data, &len), 0);
    ck_assert_int_eq(aik_signing_key_sign(k_root, data, len, sig), 0);
    free(p);
    p = path_in(dir, "manifest.sig");
    ck_assert_int_eq(put_file(p, sig, 64, 0644), 0);
    assert_refused(dir, 0, -EBADMSG, "signature");
    free(data);
    free(p);
    free(dir);
}
END_TEST

START_TEST(test_revoked_key)
{
    modspec s = { .so = MOD_GOOD, .key = k_revoked };
    char *dir = make_module("revoked", &s, NULL);
    assert_refused(dir, 0, -EKEYREVOKED, "signer");
    free(dir);
}
END_TEST

START_TEST(test_unsigned)
{
    modspec s = { .so = MOD_GOOD, .key = NULL };
    char *dir = make_module("unsigned", &s, NULL), *rec;
    aik_module *m = NULL;
    aik_error err;

    assert_refused(dir, 0, -ENOKEY, "manifest.sig");
    /* Developer mode: accepted, loudly, and the rollback bar stays put. */
    ck_assert_msg(load(dir, AIK_LOAD_DEVELOPER, &m, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_uint_eq(aik_module_warnings(m), AIK_MODULE_WARN_UNSIGNED);
    ck_assert_ptr_nonnull(strstr(aik_module_warning_text(m), "UNSIGNED"));
    ck_assert_int_eq(call_value(m), 42);
    aik_module_close(m);
    rec = path_in(g_trust_dir, "versions/tamper-test");
    ck_assert_int_eq(access(rec, F_OK), -1);
    free(rec);
    free(dir);
}
END_TEST

START_TEST(test_rollback)
{
    modspec s_new = { .so = MOD_GOOD, .key = k_pub };
    modspec s_old = { .so = MOD_OLD, .key = k_pub, .version = "1.1.0" };
    char *d_new = make_module("new", &s_new, NULL), *d_old = make_module("old", &s_old, NULL);
    aik_module *m = NULL;
    aik_error err;

    /* Before anything newer was seen, 1.1.0 is fine (and not recorded). */
    ck_assert_msg(load(d_old, AIK_LOAD_NO_RECORD, NULL, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_msg(load(d_new, 0, NULL, &err) == 0, "%s: %s", err.where, err.message);
    assert_refused(d_old, 0, -ESTALE, "version");
    /* The record lives on disk: a new trust store handle still refuses. */
    reload_trust();
    assert_refused(d_old, 0, -ESTALE, "version");
    /* Governance rollback allows it, with a warning; the bar stays at 1.2.0. */
    ck_assert_msg(load(d_old, AIK_LOAD_ALLOW_ROLLBACK, &m, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_uint_eq(aik_module_warnings(m), AIK_MODULE_WARN_ROLLBACK);
    ck_assert_int_eq(call_value(m), 41);
    aik_module_close(m);
    assert_refused(d_old, 0, -ESTALE, "version");
    free(d_new);
    free(d_old);
}
END_TEST

START_TEST(test_corrupt_version_record)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("rec", &s, NULL), *vd = path_in(g_trust_dir, "versions"), *rec;

    ck_assert_int_eq(mkdir(vd, 0755), 0);
    rec = path_in(vd, "tamper-test");
    ck_assert_int_eq(put_file(rec, "garbage", 7, 0644), 0);
    assert_refused(dir, 0, -EBADMSG, "version");
    free(rec);
    free(vd);
    free(dir);
}
END_TEST

/* Put a module's manifest into the trust store's manifest directory. */
static void store_manifest(const char *dir, uint8_t ret_digest[32])
{
    char *p = path_in(dir, "manifest.json"), *q = path_in(dir, "manifest.sig"), *data, *sig;
    size_t len, slen;
    aik_error err;

    ck_assert_int_eq(aik_read_file(p, 1 << 16, &data, &len), 0);
    ck_assert_int_eq(aik_read_file(q, 64, &sig, &slen), 0);
    ck_assert_int_eq(slen, 64);
    ck_assert_msg(aik_manifest_store_put(aik_trust_manifest_dir(g_trust), data, len, (uint8_t *)sig, ret_digest,
                                         &err) == 0, "%s", err.message);
    free(data);
    free(sig);
    free(p);
    free(q);
}

START_TEST(test_lineage_good)
{
    /* original (root) <- derived (evolution) <- derived again (evolution) */
    modspec s0 = { .so = MOD_GOOD, .key = k_root, .version = "1.0.0", .no_payload = true, .no_profile = true };
    modspec s1 = { .so = MOD_GOOD, .key = k_evo, .version = "1.1.0", .n_parents = 1, .no_profile = true };
    modspec s2 = { .so = MOD_GOOD, .key = k_evo, .version = "1.2.0", .n_parents = 1 };
    uint8_t d0[32], d1[32];
    char *dir0 = make_module("gen0", &s0, NULL), *dir1, *dir2;
    aik_error err;

    store_manifest(dir0, d0);
    memcpy(s1.parents[0], d0, 32);
    dir1 = make_module("gen1", &s1, NULL);
    store_manifest(dir1, d1);
    memcpy(s2.parents[0], d1, 32);
    dir2 = make_module("gen2", &s2, NULL);
    ck_assert_msg(load(dir2, 0, NULL, &err) == 0, "%s: %s", err.where, err.message);

    /* An extra manifest store given by the caller works too. */
    {
        char *ms = path_in(g_tmp, "store"), *src = path_in(aik_trust_manifest_dir(g_trust), ""), *cmd;
        const char *dirs[1] = { ms };
        aik_load_options o = { 0 };
        aik_module *m = NULL;

        ck_assert_int_ge(asprintf(&cmd, "mv '%s' '%s'", src, ms), 0);
        ck_assert_int_eq(system(cmd), 0);
        o.trust = g_trust;
        o.flags = AIK_LOAD_NO_RECORD;
        ck_assert_int_eq(aik_module_open(dir2, &o, &m, &err), -ENOENT); /* moved away */
        o.manifest_dirs = dirs;
        o.n_manifest_dirs = 1;
        ck_assert_msg(aik_module_open(dir2, &o, &m, &err) == 0, "%s: %s", err.where, err.message);
        aik_module_close(m);
        free(cmd);
        free(src);
        free(ms);
    }
    free(dir0);
    free(dir1);
    free(dir2);
}
END_TEST

START_TEST(test_lineage_diamond)
{
    /* A (root) <- B1, B2 (evolution) <- C (evolution, two parents): the
     * shared ancestor is verified once; a tampered B2 still fails C. */
    modspec sa = { .so = MOD_GOOD, .key = k_root, .version = "1.0.0", .no_payload = true, .no_profile = true };
    modspec sb1 = { .so = MOD_GOOD, .key = k_evo, .version = "1.1.0", .n_parents = 1, .no_payload = true, .no_profile = true };
    modspec sb2 = { .so = MOD_OLD, .key = k_evo, .version = "1.1.0", .n_parents = 1, .no_payload = true, .no_profile = true };
    modspec sc = { .so = MOD_GOOD, .key = k_evo, .n_parents = 2 };
    uint8_t da[32], db1[32], db2[32];
    char hex[AIK_SHA256_HEX_LEN], *f, *a = make_module("A", &sa, NULL), *b1, *b2, *c;
    aik_error err;

    store_manifest(a, da);
    memcpy(sb1.parents[0], da, 32);
    memcpy(sb2.parents[0], da, 32);
    b1 = make_module("B1", &sb1, NULL);
    b2 = make_module("B2", &sb2, NULL);
    store_manifest(b1, db1);
    store_manifest(b2, db2);
    ck_assert_int_ne(memcmp(db1, db2, 32), 0);
    memcpy(sc.parents[0], db1, 32);
    memcpy(sc.parents[1], db2, 32);
    c = make_module("C", &sc, NULL);
    ck_assert_msg(load(c, AIK_LOAD_NO_RECORD, NULL, &err) == 0, "%s: %s", err.where, err.message);
    aik_sha256_hex(db2, hex);
    ck_assert_int_ge(asprintf(&f, "%s.sig", hex), 0);
    flip_byte(aik_trust_manifest_dir(g_trust), f, 3);
    assert_refused(c, AIK_LOAD_NO_RECORD, -EBADMSG, "lineage");
    free(f);
    free(a);
    free(b1);
    free(b2);
    free(c);
}
END_TEST

START_TEST(test_lineage_missing_parent)
{
    modspec s = { .so = MOD_GOOD, .key = k_evo, .n_parents = 1 };
    char *dir;

    memset(s.parents[0], 0xab, 32);
    dir = make_module("orphan", &s, NULL);
    assert_refused(dir, 0, -ENOENT, "lineage");
    free(dir);
}
END_TEST

START_TEST(test_lineage_tampered_parent)
{
    modspec s0 = { .so = MOD_GOOD, .key = k_root, .version = "1.0.0", .no_payload = true, .no_profile = true };
    modspec s1 = { .so = MOD_GOOD, .key = k_evo, .n_parents = 1 };
    uint8_t d0[32];
    char hex[AIK_SHA256_HEX_LEN], *dir0 = make_module("p0", &s0, NULL), *dir1, *f;

    store_manifest(dir0, d0);
    memcpy(s1.parents[0], d0, 32);
    dir1 = make_module("p1", &s1, NULL);
    aik_sha256_hex(d0, hex);
    ck_assert_int_ge(asprintf(&f, "%s.json", hex), 0);
    flip_byte(aik_trust_manifest_dir(g_trust), f, 20);
    assert_refused(dir1, 0, -EBADMSG, "lineage");
    free(f);
    free(dir0);
    free(dir1);
}
END_TEST

START_TEST(test_lineage_parent_signed_by_evolution)
{
    /* The chain must end at a root/publisher signature: an "original"
     * signed by an evolution key is refused wherever it appears. */
    modspec s0 = { .so = MOD_GOOD, .key = k_evo, .version = "1.0.0", .no_payload = true, .no_profile = true };
    modspec s1 = { .so = MOD_GOOD, .key = k_evo, .n_parents = 1 };
    uint8_t d0[32];
    char *dir0 = make_module("e0", &s0, NULL), *dir1;

    assert_refused(dir0, 0, -EPERM, "signer");
    store_manifest(dir0, d0);
    memcpy(s1.parents[0], d0, 32);
    dir1 = make_module("e1", &s1, NULL);
    assert_refused(dir1, 0, -EPERM, "lineage");
    free(dir0);
    free(dir1);
}
END_TEST

START_TEST(test_derived_signed_by_publisher)
{
    modspec s0 = { .so = MOD_GOOD, .key = k_pub, .version = "1.0.0", .no_payload = true, .no_profile = true };
    modspec s1 = { .so = MOD_GOOD, .key = k_pub, .n_parents = 1 };
    uint8_t d0[32];
    char *dir0 = make_module("d0", &s0, NULL), *dir1;

    store_manifest(dir0, d0);
    memcpy(s1.parents[0], d0, 32);
    dir1 = make_module("d1", &s1, NULL);
    assert_refused(dir1, 0, -EPERM, "signer");
    free(dir0);
    free(dir1);
}
END_TEST

START_TEST(test_lineage_cycle_and_depth)
{
    /* A chain of AIK_LINEAGE_MAX_DEPTH + 1 derived generations is refused;
     * one of exactly the maximum depth loads. */
    modspec s = { .so = MOD_GOOD, .key = k_root, .version = "1.0.0", .no_payload = true, .no_profile = true };
    uint8_t d[32];
    char name[32], *dir = make_module("g0", &s, NULL);
    aik_error err;

    store_manifest(dir, d);
    free(dir);
    for (int g = 1; g <= AIK_LINEAGE_MAX_DEPTH + 1; g++) {
        modspec c = { .so = MOD_GOOD, .key = k_evo, .n_parents = 1, .no_payload = true,
                      .no_profile = true };
        memcpy(c.parents[0], d, 32);
        snprintf(name, sizeof(name), "g%d", g);
        dir = make_module(name, &c, NULL);
        if (g == AIK_LINEAGE_MAX_DEPTH)
            ck_assert_msg(load(dir, AIK_LOAD_NO_RECORD, NULL, &err) == 0, "%s: %s", err.where, err.message);
        if (g == AIK_LINEAGE_MAX_DEPTH + 1)
            assert_refused(dir, AIK_LOAD_NO_RECORD, -ELOOP, "lineage");
        store_manifest(dir, d);
        free(dir);
    }
}
END_TEST

/* ---- ELF rules on real bad modules ---- */

static const struct {
    int mod;
    const char *where;
} bad_elf[] = {
    { MOD_ABI99, "elf.note.abi_major" },
    { MOD_NOENTRY, "elf.dynsym.aik_module_descriptor" },
    { MOD_EXECSTACK, "elf.PT_GNU_STACK" },
    { MOD_TEXTREL, "elf.dynamic.DT_TEXTREL" },
    { MOD_NEEDED, "elf.dynamic.DT_NEEDED" },
};

START_TEST(test_bad_elf)
{
    modspec s = { .so = bad_elf[_i].mod, .key = k_pub };
    char *dir = make_module("bad", &s, NULL);
    aik_load_options o = { 0 };
    aik_module *m = NULL;
    aik_error err;

    assert_refused(dir, 0, -ENOEXEC, bad_elf[_i].where);
    /* Refused before dlopen: nothing of it ran, and verification alone
     * (signature, digests) passes. */
    o.trust = g_trust;
    ck_assert_int_eq(aik_module_open(dir, &o, &m, &err), 0);
    ck_assert_int_eq(aik_module_check_elf(m, NULL, &err), -ENOEXEC);
    ck_assert_ptr_null(aik_module_descriptor_of(m));
    aik_module_close(m);
    free(dir);
}
END_TEST

START_TEST(test_descriptor_mismatch)
{
    /* Passes every pre-dlopen check; the loaded descriptor disagrees with
     * the note and is refused (and unloaded). */
    modspec s = { .so = MOD_MISMATCH, .key = k_pub };
    char *dir = make_module("mismatch", &s, NULL);

    assert_refused(dir, 0, -ENOEXEC, "descriptor.version");
    free(dir);
}
END_TEST

/* File offset of the program header of a given type. */
static uint64_t phdr_offset(const char *path, uint32_t type)
{
    char *data;
    size_t len, n;
    Elf *e;
    GElf_Ehdr eh;
    uint64_t off = 0;

    ck_assert_int_eq(aik_read_file(path, 64u << 20, &data, &len), 0);
    ck_assert(elf_version(EV_CURRENT) != EV_NONE);
    e = elf_memory(data, len);
    ck_assert_ptr_nonnull(gelf_getehdr(e, &eh));
    ck_assert_int_eq(elf_getphdrnum(e, &n), 0);
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        ck_assert_ptr_nonnull(gelf_getphdr(e, (int)i, &ph));
        if (ph.p_type == type) {
            off = eh.e_phoff + i * eh.e_phentsize;
            break;
        }
    }
    elf_end(e);
    free(data);
    ck_assert_msg(off != 0, "program header %u not found", type);
    return off;
}

START_TEST(test_resigned_phdr_tamper)
{
    /* Elf64_Phdr: p_type at +0, p_flags at +4. */
    static const struct {
        uint32_t off;
        uint8_t xor;
        const char *msg;
    } cases[] = {
        { 0, 0x01, "missing" },          /* PT_GNU_STACK becomes an unknown type */
        { 4, PF_X, "executable stack" }, /* PF_X set */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        modspec s = { .so = MOD_GOOD, .key = k_pub, .no_payload = true, .no_profile = true };
        char name[32], *dir;
        aik_error err;

        snprintf(name, sizeof(name), "ph%zu", i);
        dir = make_module(name, &s, NULL);
        flip_byte_mask(dir, "mod.so", phdr_offset(g_mod[MOD_GOOD], PT_GNU_STACK) + cases[i].off, cases[i].xor);
        write_manifest(dir, &s, NULL);
        ck_assert_int_eq(load(dir, 0, NULL, &err), -ENOEXEC);
        ck_assert_str_eq(strrchr(err.where, ':') ? strrchr(err.where, ':') + 2 : err.where, "elf.PT_GNU_STACK");
        ck_assert_msg(strstr(err.message, cases[i].msg), "%s", err.message);
        free(dir);
    }
}
END_TEST

START_TEST(test_keep_going_reports_every_failure)
{
    modspec s = { .so = MOD_GOOD, .key = k_other };
    char *dir = make_module("keepgoing", &s, NULL);
    aik_load_options o = { 0 };
    aik_module *m = NULL;
    aik_error err;
    struct seen_checks seen = { 0 };

    flip_byte(dir, "model.slm", 40);
    o.trust = g_trust;
    o.flags = AIK_LOAD_KEEP_GOING;
    o.userdata = &seen;
    o.on_check = keep_going_cb;
    ck_assert_int_eq(aik_module_open(dir, &o, &m, &err), -ENOKEY); /* the first failure */
    ck_assert_ptr_null(m);
    ck_assert_int_eq(seen.n, 7);
    ck_assert_str_eq(seen.names[0], "manifest");
    ck_assert_int_eq(seen.results[0], 0);
    ck_assert_str_eq(seen.names[1], "signature");
    ck_assert_int_eq(seen.results[1], -ENOKEY);
    ck_assert_str_eq(seen.names[4], "object.sha256");
    ck_assert_int_eq(seen.results[4], 0);
    ck_assert_str_eq(seen.names[5], "payloads[0].sha256");
    ck_assert_int_eq(seen.results[5], -EBADMSG);
    ck_assert_str_eq(seen.names[6], "profile.sha256");
    ck_assert_int_eq(seen.results[6], 0);
    free(dir);
}
END_TEST

START_TEST(test_signed_payload_bad_structure)
{
    /* The digest matches (it was signed that way) but the .slm structure is
     * invalid: aik_slm_open_fd refuses it at activation, naming the file. */
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("badslm", &s, NULL), *p = path_in(dir, "model.slm");
    char junk[1000];
    aik_error err;
    int r;

    memset(junk, 0x5a, sizeof(junk));
    ck_assert_int_eq(put_file(p, junk, sizeof(junk), 0644), 0);
    write_manifest(dir, &s, NULL);
    r = load(dir, 0, NULL, &err);
    ck_assert_int_lt(r, 0);
    ck_assert_msg(strstr(err.where, "model.slm") != NULL, "%s: %s", err.where, err.message);
    free(p);
    free(dir);
}
END_TEST

/* ---- time-of-check / time-of-use ---- */

START_TEST(test_swap_after_verify)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("swap", &s, NULL), *so = path_in(dir, "mod.so"), *tmp = path_in(dir, "evil.tmp");
    aik_load_options o = { 0 };
    aik_exec_profile prof = test_profile();
    aik_host_info host;
    aik_module *m = NULL;
    aik_error err;

    o.trust = g_trust;
    ck_assert_int_eq(aik_module_open(dir, &o, &m, &err), 0);
    /* Replace the file by rename after verification... */
    copy_file(g_mod[MOD_EVIL], tmp);
    ck_assert_int_eq(rename(tmp, so), 0);
    ck_assert_int_eq(aik_host_info_probe(&host), 0);
    ck_assert_int_eq(aik_module_check_profile(m, &prof, &host, &err), 0);
    ck_assert_msg(aik_module_activate(m, &err) == 0, "%s: %s", err.where, err.message);
    /* ...what runs is what was verified. */
    ck_assert_int_eq(call_value(m), 42);
    aik_module_close(m);
    /* And a fresh open of the swapped directory is refused. */
    assert_refused(dir, 0, -EBADMSG, "object.sha256");
    free(tmp);
    free(so);
    free(dir);
}
END_TEST

START_TEST(test_rewrite_in_place_after_verify)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("inplace", &s, NULL), *so = path_in(dir, "mod.so"), *slm = path_in(dir, "model.slm");
    char *evil;
    size_t len;
    aik_load_options o = { 0 };
    aik_exec_profile prof = test_profile();
    aik_host_info host;
    aik_module *m = NULL;
    aik_error err;
    int fd;

    o.trust = g_trust;
    ck_assert_int_eq(aik_module_open(dir, &o, &m, &err), 0);
    /* Overwrite the same inode with other code. */
    ck_assert_int_eq(aik_read_file(g_mod[MOD_EVIL], 64u << 20, &evil, &len), 0);
    fd = open(so, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, evil, len), (ssize_t)len);
    close(fd);
    free(evil);
    ck_assert_int_eq(aik_host_info_probe(&host), 0);
    ck_assert_int_eq(aik_module_check_profile(m, &prof, &host, &err), 0);
    ck_assert_msg(aik_module_activate(m, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_eq(call_value(m), 42);
    aik_module_close(m);

    /* A payload truncated after hashing is caught before it is mapped. */
    ck_assert_int_eq(aik_module_open(dir, &o, &m, &err), -EBADMSG); /* the .so differs now */
    free(dir);
    {
        modspec s2 = { .so = MOD_GOOD, .key = k_pub };
        char *d2 = make_module("inplace2", &s2, NULL), *p2 = path_in(d2, "model.slm");
        ck_assert_int_eq(aik_module_open(d2, &o, &m, &err), 0);
        ck_assert_int_eq(truncate(p2, 100), 0);
        ck_assert_int_eq(aik_module_check_profile(m, &prof, &host, &err), 0);
        ck_assert_int_eq(aik_module_activate(m, &err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err.where, "model.slm"));
        aik_module_close(m);
        free(p2);
        free(d2);
    }
    free(so);
    free(slm);
}
END_TEST

START_TEST(test_symlink_refused)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("link", &s, NULL), *so = path_in(dir, "mod.so"), *real = path_in(g_tmp, "real.so");

    ck_assert_int_eq(rename(so, real), 0);
    ck_assert_int_eq(symlink(real, so), 0);
    assert_refused(dir, 0, -ELOOP, "mod.so");
    free(real);
    free(so);
    free(dir);
}
END_TEST

START_TEST(test_missing_files)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("missing", &s, NULL), *p = path_in(dir, "model.slm");

    ck_assert_int_eq(unlink(p), 0);
    assert_refused(dir, 0, -ENOENT, "model.slm");
    free(p);
    p = path_in(dir, "manifest.json");
    ck_assert_int_eq(unlink(p), 0);
    assert_refused(dir, 0, -ENOENT, "manifest.json");
    free(p);
    assert_refused("/nonexistent/aik-module", 0, -ENOENT, "/nonexistent");
    free(dir);
}
END_TEST

START_TEST(test_profile_stage)
{
    modspec s = { .so = MOD_GOOD, .key = k_pub };
    char *dir = make_module("prof", &s, NULL);
    aik_load_options o = { 0 };
    aik_exec_profile prof = test_profile();
    aik_host_info host = { .memory_available = 1u << 30, .cpu_features = AIK_CPU_FEAT_AVX2, .backends = AIK_BACKEND_BIT_CPU };
    aik_module *m = NULL;
    aik_error err;

    o.trust = g_trust;
    ck_assert_int_eq(aik_module_open(dir, &o, &m, &err), 0);
    /* Activation before the profile check is refused. */
    ck_assert_int_eq(aik_module_activate(m, &err), -EPERM);
    ck_assert_ptr_nonnull(strstr(err.message, "profile"));
    prof.cpu_features = AIK_CPU_FEAT_AVX512F | AIK_CPU_FEAT_AVX2;
    ck_assert_int_eq(aik_module_check_profile(m, &prof, &host, &err), -ENOEXEC);
    ck_assert_ptr_nonnull(strstr(err.where, "execution.cpu_features"));
    ck_assert_ptr_nonnull(strstr(err.message, "avx512f"));
    ck_assert_int_eq(aik_module_activate(m, &err), -EPERM); /* still not checked */
    prof.cpu_features = AIK_CPU_FEAT_AVX2;
    ck_assert_int_eq(aik_module_check_profile(m, &prof, &host, &err), 0);
    ck_assert_int_eq(aik_module_activate(m, &err), 0);
    ck_assert_int_eq(aik_module_activate(m, &err), -EINVAL); /* once */
    aik_module_close(m);
    free(dir);
}
END_TEST

/* ---- exec profile, semver, manifest parser, Ed25519 ---- */

START_TEST(test_exec_profile_check)
{
    aik_host_info h;
    aik_exec_profile p = { 0 };
    aik_error err;
    uint32_t bit;

    ck_assert_int_eq(aik_host_info_probe(&h), 0);
    ck_assert_uint_gt(h.memory_available, 0);
    ck_assert_uint_eq(h.backends, AIK_BACKEND_BIT_CPU);
    p.backends = AIK_BACKEND_BIT_CPU;
    p.cpu_features = h.cpu_features;
    ck_assert_int_eq(aik_exec_profile_check(&p, &h, &err), 0);
    p.memory_bytes = h.memory_available + 1;
    ck_assert_int_eq(aik_exec_profile_check(&p, &h, &err), -ENOEXEC);
    ck_assert_str_eq(err.where, "execution.memory");
    p.memory_bytes = 0;
    p.backends = AIK_BACKEND_BIT_VULKAN;
    ck_assert_int_eq(aik_exec_profile_check(&p, &h, &err), -ENOEXEC);
    ck_assert_str_eq(err.where, "execution.backends");
    ck_assert_ptr_nonnull(strstr(err.message, "vulkan"));
    p.backends = 0;
    ck_assert_int_eq(aik_exec_profile_check(&p, &h, &err), -ENOEXEC);
    ck_assert_int_eq(aik_cpu_feature_from_name("avx2", &bit), 0);
    ck_assert_uint_eq(bit, AIK_CPU_FEAT_AVX2);
    ck_assert_str_eq(aik_cpu_feature_name(AIK_CPU_FEAT_AVXVNNI), "avxvnni");
    ck_assert_int_eq(aik_cpu_feature_from_name("mmx", &bit), -EINVAL);
    ck_assert_str_eq(aik_cpu_feature_name(3), "?");
}
END_TEST

START_TEST(test_semver)
{
    aik_modver a, b;

    ck_assert_int_eq(aik_modver_parse("1.2.3", &a), 0);
    ck_assert_int_eq(aik_modver_parse("1.10.0", &b), 0);
    ck_assert_int_lt(aik_modver_cmp(&a, &b), 0); /* numeric, not lexical */
    ck_assert_int_gt(aik_modver_cmp(&b, &a), 0);
    ck_assert_int_eq(aik_modver_cmp(&a, &a), 0);
    ck_assert_int_eq(aik_modver_parse("0.0.0", &a), 0);
    ck_assert_int_eq(aik_modver_parse("4294967295.0.1", &a), 0);
    ck_assert_int_eq(aik_modver_parse("4294967296.0.1", &a), -EINVAL);
    ck_assert_int_eq(aik_modver_parse("01.2.3", &a), -EINVAL);
    ck_assert_int_eq(aik_modver_parse("1.2", &a), -EINVAL);
    ck_assert_int_eq(aik_modver_parse("1.2.3-rc1", &a), -EINVAL);
    ck_assert_int_eq(aik_modver_parse("1..3", &a), -EINVAL);
    ck_assert_int_eq(aik_modver_parse("", &a), -EINVAL);
}
END_TEST

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define GOOD_MANIFEST_HEAD "{\"format\":1,\"name\":\"x\",\"version\":\"1.0.0\",\"kind\":\"backend\",\"object\":{\"file\":\"x.so\",\"sha256\":\"" HEX64 "\"}"

static const struct {
    const char *json;
    int code;
    const char *where;
} bad_manifests[] = {
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"extra\":1}", -EINVAL, "extra" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"name\":\"y\"}", -EINVAL, "manifest.json:" }, /* duplicate */
    { GOOD_MANIFEST_HEAD "}", -EINVAL, "signer" },                                                 /* missing */
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\"} x", -EINVAL, "manifest.json:" },             /* trailing */
    { GOOD_MANIFEST_HEAD ",\"signer\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"}", -EINVAL, "signer" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"payloads\":[{\"file\":\"../etc/passwd\",\"sha256\":\"" HEX64 "\"}]}", -EINVAL, "payloads[0].file" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"payloads\":[{\"file\":\".hidden\",\"sha256\":\"" HEX64 "\"}]}", -EINVAL, "payloads[0].file" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"payloads\":[{\"file\":\"x.so\",\"sha256\":\"" HEX64 "\"}]}", -EINVAL, "payloads[0].file" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"payloads\":{}}", -EINVAL, "payloads" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"parents\":[\"" HEX64 "\",\"" HEX64 "\"]}", -EINVAL, "parents[1]" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"parents\":[7]}", -EINVAL, "parents[0]" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"profile\":{\"file\":\"p\",\"sha256\":\"" HEX64 "\",\"x\":1}}", -EINVAL, "profile.x" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"profile\":{\"file\":\"p\"}}", -EINVAL, "profile" },
    /* training_data: the lineage digests of a derived artifact's data */
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":{}}", -EINVAL, "training_data" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[7]}", -EINVAL, "training_data[0]" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[{\"role\":\"x\"}]}", -EINVAL, "training_data[0]" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[{\"sha256\":\"" HEX64 "\"}]}", -EINVAL,
      "training_data[0]" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[{\"role\":\"Bad Role\",\"sha256\":\"" HEX64 "\"}]}",
      -EINVAL, "training_data[0].role" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[{\"role\":\"x\",\"sha256\":\"00\"}]}", -EINVAL,
      "training_data[0].sha256" },
    { GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[{\"role\":\"x\",\"sha256\":\"" HEX64 "\",\"y\":1}]}",
      -EINVAL, "training_data[0].y" },
    { "{\"format\":2}", -EPROTONOSUPPORT, "format" },
    { "{\"format\":\"1\"}", -EINVAL, "format" },
    { "{\"name\":\"a/b\"}", -EINVAL, "name" },
    { "{\"name\":\"\"}", -EINVAL, "name" },
    { "{\"version\":\"1.0\"}", -EINVAL, "version" },
    { "{\"version\":1}", -EINVAL, "version" },
    { "{\"kind\":\"driver\"}", -EINVAL, "kind" },
    { "{\"name\":\"a\\u0000b\"}", -EINVAL, "manifest.json:" }, /* NUL in a string */
    { "[]", -EINVAL, "manifest" },
    { "", -EINVAL, "manifest.json:" },
};

START_TEST(test_manifest_bad)
{
    aik_manifest m;
    aik_error err;
    int r;

    aik_error_clear(&err);
    r = aik_manifest_parse(bad_manifests[_i].json, strlen(bad_manifests[_i].json), &m, &err);
    ck_assert_msg(r == bad_manifests[_i].code, "case %d: expected %d, got %d (%s: %s)", _i, bad_manifests[_i].code,
                  r, err.where, err.message);
    ck_assert_msg(strncmp(err.where, bad_manifests[_i].where, strlen(bad_manifests[_i].where)) == 0,
                  "case %d: expected where '%s', got '%s': %s", _i, bad_manifests[_i].where, err.where, err.message);
}
END_TEST

START_TEST(test_manifest_roundtrip_and_limits)
{
    const char *json = GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"parents\":[\"" HEX64 "\"],"
                       "\"training_data\":[{\"role\":\"trajectories\",\"sha256\":\"" HEX64 "\"}]}";
    aik_manifest m, m2;
    aik_error err;
    char *out, *big;
    size_t len;

    ck_assert_int_eq(aik_manifest_parse(json, strlen(json), &m, &err), 0);
    ck_assert_str_eq(m.name, "x");
    ck_assert_uint_eq(m.kind, AIK_MODULE_BACKEND);
    ck_assert_uint_eq(m.n_parents, 1);
    ck_assert_uint_eq(m.n_data, 1);
    ck_assert_str_eq(m.data[0].role, "trajectories");
    ck_assert_uint_eq(m.n_payloads, 0);
    ck_assert_int_eq(aik_manifest_write(&m, &out, &len, &err), 0);
    ck_assert_int_eq(aik_manifest_parse(out, len, &m2, &err), 0);
    ck_assert_int_eq(memcmp(&m, &m2, sizeof(m)), 0);
    free(out);
    /* Size cap before any parsing. */
    big = calloc(1, AIK_MANIFEST_MAX_SIZE + 2);
    memset(big, ' ', AIK_MANIFEST_MAX_SIZE + 1);
    ck_assert_int_eq(aik_manifest_parse(big, AIK_MANIFEST_MAX_SIZE + 1, &m, &err), -EFBIG);
    free(big);
    /* Too many payloads. */
    {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        fprintf(f, GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"payloads\":[");
        for (int i = 0; i <= AIK_MANIFEST_MAX_PAYLOADS; i++)
            fprintf(f, "%s{\"file\":\"p%d\",\"sha256\":\"" HEX64 "\"}", i ? "," : "", i);
        fprintf(f, "]}");
        fclose(f);
        ck_assert_int_eq(aik_manifest_parse(s, n, &m, &err), -E2BIG);
        ck_assert_str_eq(err.where, "payloads");
        free(s);
    }
    /* Too many training_data entries. */
    {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        fprintf(f, GOOD_MANIFEST_HEAD ",\"signer\":\"" HEX64 "\",\"training_data\":[");
        for (int i = 0; i <= AIK_MANIFEST_MAX_DATA; i++)
            fprintf(f, "%s{\"role\":\"r%d\",\"sha256\":\"" HEX64 "\"}", i ? "," : "", i);
        fprintf(f, "]}");
        fclose(f);
        ck_assert_int_eq(aik_manifest_parse(s, n, &m, &err), -E2BIG);
        ck_assert_str_eq(err.where, "training_data");
        free(s);
    }
}
END_TEST

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

START_TEST(test_rfc8032_vectors)
{
    uint8_t seed[32], pub[32], sig[64], got_pub[32], got_sig[64];
    uint8_t *msg = malloc(2048);
    size_t len;
    aik_signing_key *k;

    unhex(rfc8032_vectors[_i].secret, seed);
    unhex(rfc8032_vectors[_i].pub, pub);
    unhex(rfc8032_vectors[_i].sig, sig);
    len = unhex(rfc8032_vectors[_i].msg, msg);
    if (_i == 3)
        ck_assert_uint_eq(len, 1023); /* TEST 1024: a 1023-byte message */
    /* Verification path used for every manifest. */
    ck_assert_msg(aik_ed25519_verify(pub, msg, len, sig) == 0, "%s", rfc8032_vectors[_i].id);
    /* Signing path used by aikctl sign: Ed25519 is deterministic. */
    ck_assert_int_eq(aik_signing_key_from_seed(seed, &k), 0);
    ck_assert_int_eq(aik_signing_key_public(k, got_pub), 0);
    ck_assert_mem_eq(got_pub, pub, 32);
    ck_assert_int_eq(aik_signing_key_sign(k, msg, len, got_sig), 0);
    ck_assert_mem_eq(got_sig, sig, 64);
    aik_signing_key_free(k);
    /* And the negatives: any flipped bit of signature, message or key. */
    sig[_i * 7 % 64] ^= 0x20;
    ck_assert_int_eq(aik_ed25519_verify(pub, msg, len, sig), -EBADMSG);
    sig[_i * 7 % 64] ^= 0x20;
    if (len) {
        msg[len / 2] ^= 1;
        ck_assert_int_eq(aik_ed25519_verify(pub, msg, len, sig), -EBADMSG);
        msg[len / 2] ^= 1;
    } else {
        ck_assert_int_eq(aik_ed25519_verify(pub, "x", 1, sig), -EBADMSG);
    }
    pub[0] ^= 1;
    ck_assert_int_lt(aik_ed25519_verify(pub, msg, len, sig), 0);
    free(msg);
}
END_TEST

START_TEST(test_trust_store_errors)
{
    aik_trust *t = NULL;
    aik_error err;
    uint8_t pub[32], id[32];
    char *p, *bad;

    ck_assert_int_eq(aik_trust_open("/nonexistent-aik-trust", &t, &err), -ENOENT);
    /* Same key under two roles is ambiguous. */
    save_pub(k_root, "evolution", "root-again");
    ck_assert_int_eq(aik_trust_open(g_trust_dir, &t, &err), -EEXIST);
    p = path_in(g_trust_dir, "keys/evolution/root-again.pub");
    ck_assert_int_eq(unlink(p), 0);
    /* A broken key file and a broken revocation entry are errors, not skips. */
    ck_assert_int_eq(put_file(p, "junk", 4, 0644), 0);
    ck_assert_int_eq(aik_trust_open(g_trust_dir, &t, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.where, "root-again.pub"));
    ck_assert_int_eq(unlink(p), 0);
    free(p);
    bad = path_in(g_trust_dir, "revoked");
    ck_assert_int_eq(put_file(bad, "nothex\n", 7, 0644), 0);
    ck_assert_int_eq(aik_trust_open(g_trust_dir, &t, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.where, "entry 1"));
    free(bad);
    /* In-memory store. */
    ck_assert_int_eq(aik_trust_new(&t), 0);
    ck_assert_int_eq(aik_signing_key_public(k_pub, pub), 0);
    ck_assert_int_eq(aik_key_id(pub, id), 0);
    ck_assert_int_eq(aik_trust_find(t, id, NULL, NULL), -ENOKEY);
    ck_assert_int_eq(aik_trust_add_key(t, pub, AIK_KEY_ROLE_PUBLISHER), 0);
    ck_assert_int_eq(aik_trust_add_key(t, pub, AIK_KEY_ROLE_ROOT), -EEXIST);
    ck_assert_int_eq(aik_trust_add_key(t, pub, (aik_key_role)9), -EINVAL);
    ck_assert_int_eq(aik_trust_find(t, id, NULL, NULL), 0);
    ck_assert_int_eq(aik_trust_revoke(t, id), 0);
    ck_assert_int_eq(aik_trust_find(t, id, NULL, NULL), -EKEYREVOKED);
    ck_assert_ptr_null(aik_trust_manifest_dir(t));
    aik_trust_free(t);
    aik_trust_free(NULL);
}
END_TEST

START_TEST(test_elf_check_direct)
{
    char *img;
    size_t len;
    aik_module_note_desc note;
    aik_error err;

    ck_assert_int_eq(aik_read_file(g_mod[MOD_GOOD], 64u << 20, &img, &len), 0);
    ck_assert_int_eq(aik_elf_check(img, len, &note, &err), 0);
    ck_assert_str_eq(note.name, "tamper-test");
    ck_assert_str_eq(note.version, "1.2.0");
    ck_assert_uint_eq(note.abi_major, AIK_MODULE_ABI_MAJOR);
    /* Truncations at every interesting point fail cleanly. */
    for (size_t cut = 0; cut < len; cut += len / 61 + 1)
        ck_assert_int_lt(aik_elf_check(img, cut, &note, &err), 0);
    ck_assert_int_eq(aik_elf_read_note(img, 3, &note, &err), -ENOEXEC);
    ck_assert_str_eq(err.where, "elf.header.e_ident");
    free(img);
    ck_assert(aik_elf_needed_allowed("libc.so.6", AIK_MODULE_ARCHITECTURE));
    ck_assert(aik_elf_needed_allowed("libvulkan.so.1", AIK_MODULE_BACKEND));
    ck_assert(!aik_elf_needed_allowed("libvulkan.so.1", AIK_MODULE_ARCHITECTURE));
    ck_assert(!aik_elf_needed_allowed("libaik.so.0", AIK_MODULE_CAPABILITY));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("modloader");
    TCase *tc = tcase_create("loader");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_load_good);
    tcase_add_test(tc, test_load_twice_and_no_profile);
    tcase_add_loop_test(tc, test_flip_region, 0, sizeof(flips) / sizeof(flips[0]));
    tcase_add_test(tc, test_resigned_elf_tamper);
    tcase_add_test(tc, test_wrong_key);
    tcase_add_test(tc, test_signed_by_wrong_key_for_signer_field);
    tcase_add_test(tc, test_revoked_key);
    tcase_add_test(tc, test_unsigned);
    tcase_add_test(tc, test_rollback);
    tcase_add_test(tc, test_corrupt_version_record);
    tcase_add_test(tc, test_lineage_good);
    tcase_add_test(tc, test_lineage_diamond);
    tcase_add_test(tc, test_lineage_missing_parent);
    tcase_add_test(tc, test_lineage_tampered_parent);
    tcase_add_test(tc, test_lineage_parent_signed_by_evolution);
    tcase_add_test(tc, test_derived_signed_by_publisher);
    tcase_add_test(tc, test_lineage_cycle_and_depth);
    tcase_add_loop_test(tc, test_bad_elf, 0, sizeof(bad_elf) / sizeof(bad_elf[0]));
    tcase_add_test(tc, test_descriptor_mismatch);
    tcase_add_test(tc, test_signed_payload_bad_structure);
    tcase_add_test(tc, test_resigned_phdr_tamper);
    tcase_add_test(tc, test_keep_going_reports_every_failure);
    tcase_add_test(tc, test_swap_after_verify);
    tcase_add_test(tc, test_rewrite_in_place_after_verify);
    tcase_add_test(tc, test_symlink_refused);
    tcase_add_test(tc, test_missing_files);
    tcase_add_test(tc, test_profile_stage);
    tcase_add_test(tc, test_trust_store_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("units");
    tcase_add_test(tc, test_exec_profile_check);
    tcase_add_test(tc, test_semver);
    tcase_add_loop_test(tc, test_manifest_bad, 0, sizeof(bad_manifests) / sizeof(bad_manifests[0]));
    tcase_add_test(tc, test_manifest_roundtrip_and_limits);
    tcase_add_loop_test(tc, test_rfc8032_vectors, 0, sizeof(rfc8032_vectors) / sizeof(rfc8032_vectors[0]));
    tcase_add_test(tc, test_elf_check_direct);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    int r;

    if (argc != MOD_COUNT + 1) {
        fprintf(stderr, "usage: %s <%d module paths>\n", argv[0], MOD_COUNT);
        return 2;
    }
    for (int i = 0; i < MOD_COUNT; i++)
        g_mod[i] = argv[i + 1];
    if (aik_signing_key_generate(&k_root) < 0 || aik_signing_key_generate(&k_pub) < 0 ||
        aik_signing_key_generate(&k_evo) < 0 || aik_signing_key_generate(&k_revoked) < 0 ||
        aik_signing_key_generate(&k_other) < 0 || build_template() < 0) {
        fprintf(stderr, "test_modloader: cannot build the key/package template\n");
        return 1;
    }
    r = aik_test_run(suite());
    aik_test_rmtree(g_template);
    free(g_template);
    aik_signing_key_free(k_root);
    aik_signing_key_free(k_pub);
    aik_signing_key_free(k_evo);
    aik_signing_key_free(k_revoked);
    aik_signing_key_free(k_other);
    return r;
}
