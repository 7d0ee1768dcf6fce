/* SPDX-License-Identifier: MIT */
/*
 * aikctl modinfo DIR|FILE.so [--load --trust STORE [--developer]]: the AIK
 * note of a module (read with libelf; no code of the module runs) and, for a
 * directory, its manifest (shown as unverified). With --load the module is
 * verified and activated through the loader and its in-memory descriptor is
 * printed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capgraph/profile.h"
#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/module.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl modinfo DIR|FILE.so [--load --trust STORE [--developer] [--no-record]]\n");
}

static int print_note(const char *path)
{
    char *img = NULL;
    size_t len;
    aik_module_note_desc note;
    aik_error err;
    int r;

    aik_error_clear(&err);
    r = aik_read_file(path, 256u << 20, &img, &len);
    if (r < 0) {
        aikctl_print_errno(path, r);
        return r;
    }
    r = aik_elf_read_note(img, len, &note, &err);
    free(img);
    if (r < 0) {
        aikctl_print_error("modinfo", &err);
        return r;
    }
    printf("object:       %s\n", path);
    printf("note.name:    %s\n", note.name);
    printf("note.version: %s\n", note.version);
    printf("note.kind:    %s\n", aik_module_kind_label(note.kind));
    printf("note.abi:     %u.%u (loader speaks %u.%u)%s\n", note.abi_major, note.abi_minor, AIK_MODULE_ABI_MAJOR,
           AIK_MODULE_ABI_MINOR, note.abi_major == AIK_MODULE_ABI_MAJOR ? "" : "  INCOMPATIBLE");
    return 0;
}

static void print_manifest(const aik_manifest *m, const char *label)
{
    char hex[AIK_SHA256_HEX_LEN];

    printf("manifest (%s):\n", label);
    printf("  name:       %s\n  version:    %s\n  kind:       %s\n", m->name, m->version, aik_module_kind_label(m->kind));
    aik_sha256_hex(m->object.sha256, hex);
    printf("  object:     %s sha256:%s\n", m->object.file, hex);
    for (uint32_t i = 0; i < m->n_payloads; i++) {
        aik_sha256_hex(m->payloads[i].sha256, hex);
        printf("  payload:    %s sha256:%s\n", m->payloads[i].file, hex);
    }
    if (m->has_profile) {
        aik_sha256_hex(m->profile.sha256, hex);
        printf("  profile:    %s sha256:%s\n", m->profile.file, hex);
    }
    for (uint32_t i = 0; i < m->n_parents; i++) {
        aik_sha256_hex(m->parents[i], hex);
        printf("  parent:     %s\n", hex);
    }
    for (uint32_t i = 0; i < m->n_data; i++) {
        aik_sha256_hex(m->data[i].sha256, hex);
        printf("  data:       %s sha256:%s\n", m->data[i].role, hex);
    }
    aik_sha256_hex(m->signer, hex);
    printf("  signer:     %s\n", hex);
}

int aikctl_cmd_modinfo(int argc, char **argv)
{
    const char *target = NULL, *trust_dir = NULL;
    bool load = false;
    uint32_t flags = 0;
    struct stat st;
    aik_error err;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--load") == 0)
            load = true;
        else if (strcmp(argv[i], "--trust") == 0 && i + 1 < argc)
            trust_dir = argv[++i];
        else if (strcmp(argv[i], "--developer") == 0)
            flags |= AIK_LOAD_DEVELOPER;
        else if (strcmp(argv[i], "--no-record") == 0)
            flags |= AIK_LOAD_NO_RECORD;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !target)
            target = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!target || (load && !trust_dir)) {
        usage(stderr);
        return 2;
    }
    if (stat(target, &st) < 0) {
        aikctl_print_errno(target, -errno);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (load) {
            fprintf(stderr, "aikctl: modinfo: --load needs a module directory\n");
            return 2;
        }
        return print_note(target) < 0 ? 1 : 0;
    }

    aik_error_clear(&err);
    if (!load) {
        char *path, *data;
        size_t len;
        aik_manifest *m = calloc(1, sizeof(*m));

        if (!m || asprintf(&path, "%s/manifest.json", target) < 0) {
            free(m);
            return 1;
        }
        r = aik_read_file(path, AIK_MANIFEST_MAX_SIZE, &data, &len);
        free(path);
        if (r == 0) {
            r = aik_manifest_parse(data, len, m, &err);
            free(data);
        } else {
            aik_fail(&err, r, "manifest.json", "%s", strerror(-r));
        }
        if (r < 0) {
            aikctl_print_error("modinfo", &err);
            free(m);
            return 1;
        }
        print_manifest(m, "not verified; use 'aikctl verify'");
        if (asprintf(&path, "%s/%s", target, m->object.file) >= 0) {
            r = print_note(path);
            free(path);
        }
        free(m);
        return r < 0 ? 1 : 0;
    }

    {
        aik_trust *trust = NULL;
        aik_module *mod = NULL;
        aik_load_options o = { 0 };
        const aik_module_desc *d;

        r = aik_trust_open(trust_dir, &trust, &err);
        if (r < 0) {
            aikctl_print_error("modinfo: trust store", &err);
            return 1;
        }
        o.flags = flags;
        o.trust = trust;
        r = aik_module_open(target, &o, &mod, &err);
        if (r == 0 && aik_module_profile(mod, NULL)) {
            /* Verified profile bytes -> capgraph's decoder -> host check. */
            size_t plen;
            const char *ptext = aik_module_profile(mod, &plen);
            aik_profile *prof = NULL;
            aik_host_info host;

            r = aik_profile_parse(aik_module_manifest(mod)->profile.file, ptext, plen, &prof, &err);
            if (r == 0) {
                r = aik_host_info_probe(&host);
                if (r < 0)
                    aik_fail(&err, r, "host", "cannot probe this host: %s", strerror(-r));
                else
                    r = aik_module_check_profile(mod, &prof->exec, &host, &err);
            }
            aik_profile_free(prof);
        }
        if (r == 0)
            r = aik_module_activate(mod, &err);
        if (r < 0) {
            aikctl_print_error("modinfo --load", &err);
            aik_module_close(mod);
            aik_trust_free(trust);
            return 1;
        }
        if (aik_module_warnings(mod))
            fprintf(stderr, "aikctl: WARNING: %s\n", aik_module_warning_text(mod));
        print_manifest(aik_module_manifest(mod), "verified");
        d = aik_module_descriptor_of(mod);
        printf("loaded descriptor:\n  abi:        %u.%u (struct_size %u)\n  name:       %s\n  version:    %s\n"
               "  kind:       %s\n  ops_size:   %u\n",
               d->abi_major, d->abi_minor, d->struct_size, d->name, d->version, aik_module_kind_label(d->kind),
               d->ops_size);
        for (uint32_t i = 0; i < aik_module_payload_count(mod); i++) {
            const void *p;
            uint64_t size;
            if (aik_module_payload(mod, i, &p, &size) == 0)
                printf("  payload[%u]: %llu bytes mapped\n", i, (unsigned long long)size);
        }
        aik_module_close(mod);
        aik_trust_free(trust);
    }
    return 0;
}
