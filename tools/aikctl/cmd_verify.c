/* SPDX-License-Identifier: MIT */
/*
 * aikctl verify DIR --trust STORE: run every verification stage of the module
 * loader (manifest, signature, rollback, lineage, digests, execution profile
 * against this host, ELF inspection) without loading anything, one line per check, and report the time and the
 * hashing throughput. Exit status 0 only if every check passed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "capgraph/profile.h"
#include "common/error.h"
#include "loader/module.h"
#include "tools/aikctl/aikctl.h"

#define MAX_DIRS 16

struct report {
    bool json;
    json_t *checks;
    int failed;
    int passed;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl verify DIR --trust STORE [--manifests DIR]... [--developer] [--allow-rollback] [--json]\n");
}

static void on_check(void *userdata, const char *check, int result, const aik_error *err)
{
    struct report *rep = userdata;
    char buf[600] = "";

    if (result < 0)
        aik_error_format(err, buf, sizeof(buf));
    if (result < 0)
        rep->failed++;
    else
        rep->passed++;
    if (rep->json) {
        json_t *o = json_pack("{s:s, s:b}", "check", check, "ok", result == 0);
        if (o && result < 0)
            json_object_set_new(o, "reason", json_string(buf));
        json_array_append_new(rep->checks, o);
    } else if (result < 0) {
        printf("FAIL %-20s %s\n", check, buf);
    } else {
        printf("PASS %s\n", check);
    }
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int aikctl_cmd_verify(int argc, char **argv)
{
    const char *dir = NULL, *trust_dir = NULL;
    const char *dirs[MAX_DIRS];
    size_t n_dirs = 0;
    uint32_t flags = AIK_LOAD_KEEP_GOING | AIK_LOAD_NO_RECORD;
    struct report rep = { 0 };
    aik_load_options o = { 0 };
    aik_trust *trust = NULL;
    aik_module *m = NULL;
    aik_error err;
    uint64_t t0, cpu0, elapsed, cpu, hashed = 0, hash_ns = 0;
    double gbps;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--trust") == 0 && i + 1 < argc)
            trust_dir = argv[++i];
        else if (strcmp(argv[i], "--manifests") == 0 && i + 1 < argc && n_dirs < MAX_DIRS)
            dirs[n_dirs++] = argv[++i];
        else if (strcmp(argv[i], "--developer") == 0)
            flags |= AIK_LOAD_DEVELOPER;
        else if (strcmp(argv[i], "--allow-rollback") == 0)
            flags |= AIK_LOAD_ALLOW_ROLLBACK;
        else if (strcmp(argv[i], "--json") == 0)
            rep.json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!dir || !trust_dir) {
        usage(stderr);
        return 2;
    }
    t0 = clock_ns(CLOCK_MONOTONIC);
    cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    aik_error_clear(&err);
    r = aik_trust_open(trust_dir, &trust, &err);
    if (r < 0) {
        aikctl_print_error("verify: trust store", &err);
        return 1;
    }
    rep.checks = json_array();
    o.flags = flags;
    o.trust = trust;
    o.manifest_dirs = dirs;
    o.n_manifest_dirs = n_dirs;
    o.on_check = on_check;
    o.userdata = &rep;
    r = aik_module_open(dir, &o, &m, &err);
    if (r == 0) {
        /* The ELF inspection runs on the verified image; nothing is loaded. */
        aik_module_note_desc note;
        size_t plen;
        const char *ptext = aik_module_profile(m, &plen);
        int pr;

        if (ptext) {
            /* The verified profile bytes, decoded by capgraph, checked
             * against this host the way activation will check them. */
            aik_profile *prof = NULL;
            aik_host_info host;

            pr = aik_profile_parse(aik_module_manifest(m)->profile.file, ptext, plen, &prof, &err);
            on_check(&rep, "profile.parse", pr, &err);
            if (pr == 0) {
                pr = aik_host_info_probe(&host);
                if (pr < 0)
                    aik_fail(&err, pr, "host", "cannot probe this host: %s", strerror(-pr));
                else
                    pr = aik_module_check_profile(m, &prof->exec, &host, &err);
                on_check(&rep, "profile.host", pr, &err);
            }
            aik_profile_free(prof);
        }
        r = aik_module_check_elf(m, &note, &err);
        on_check(&rep, "elf", r, &err);
        aik_module_hash_stats(m, &hashed, &hash_ns);
    } else if (rep.passed + rep.failed == 0) {
        on_check(&rep, "open", r, &err);
    }
    elapsed = clock_ns(CLOCK_MONOTONIC) - t0;
    /* CPU time too: on a loaded machine wall time says little about the
     * hashing speed itself. */
    cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    gbps = hash_ns ? (double)hashed / (double)hash_ns : 0.0; /* bytes per ns == GB/s */
    if (rep.json) {
        json_t *root = json_pack("{s:s, s:b, s:o, s:f, s:f, s:I, s:f}", "module", dir, "ok",
                                 rep.failed == 0 && r == 0, "checks", rep.checks, "elapsed_ms", (double)elapsed / 1e6,
                                 "cpu_ms", (double)cpu / 1e6, "bytes_hashed", (json_int_t)hashed, "hash_gb_per_s",
                                 gbps);
        rep.checks = NULL;
        if (m && aik_module_warnings(m))
            json_object_set_new(root, "warning", json_string(aik_module_warning_text(m)));
        if (root)
            json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(root);
    } else {
        if (m && aik_module_warnings(m))
            printf("WARNING: %s\n", aik_module_warning_text(m));
        printf("%s: %d passed, %d failed in %.2f ms (cpu %.2f ms); hashed %llu bytes in %.2f ms (%.2f GB/s)\n",
               rep.failed == 0 && r == 0 ? "VERIFIED" : "REFUSED", rep.passed, rep.failed, (double)elapsed / 1e6,
               (double)cpu / 1e6, (unsigned long long)hashed, (double)hash_ns / 1e6, gbps);
    }
    json_decref(rep.checks);
    aik_module_close(m);
    aik_trust_free(trust);
    return rep.failed == 0 && r == 0 ? 0 : 1;
}
