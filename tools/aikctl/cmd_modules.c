/* SPDX-License-Identifier: MIT */
/*
 * aikctl modules [--store DIR] [--trust DIR] [--json]: the installed modules,
 * their capabilities and versions, and whether each verifies now (signature,
 * trust, rollback, lineage, digests) — without running any module code.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capgraph/profile.h"
#include "loader/module.h"
#include "tools/aikctl/aikctl.h"

#ifndef AIK_DEFAULT_MODULE_STORE
#define AIK_DEFAULT_MODULE_STORE "/usr/lib/aik/modules"
#endif
#ifndef AIK_DEFAULT_TRUST_STORE
#define AIK_DEFAULT_TRUST_STORE "/etc/aik/trust"
#endif

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int aikctl_cmd_modules(int argc, char **argv)
{
    static const struct option opts[] = { { "store", required_argument, 0, 's' }, { "trust", required_argument, 0, 't' },
                                          { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' },
                                          { 0, 0, 0, 0 } };
    const char *store = getenv("AIK_MODULE_STORE"), *trust_dir = getenv("AIK_TRUST_STORE");
    bool json = false;
    aik_trust *trust = NULL;
    aik_error err;
    char **names = NULL;
    size_t n = 0;
    int c, bad = 0;

    if (!store || !*store)
        store = AIK_DEFAULT_MODULE_STORE;
    if (!trust_dir || !*trust_dir)
        trust_dir = AIK_DEFAULT_TRUST_STORE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 't': trust_dir = optarg; break;
        case 'j': json = true; break;
        case 'h': printf("usage: aikctl modules [--store DIR] [--trust DIR] [--json]\n"); return 0;
        default: return 2;
        }
    }
    if (aik_trust_open(trust_dir, &trust, &err) < 0) {
        aikctl_print_error("trust store", &err);
        return 1;
    }
    DIR *d = opendir(store);
    if (!d) {
        aikctl_print_errno(store, -errno);
        aik_trust_free(trust);
        return 1;
    }
    for (struct dirent *de; (de = readdir(d));) {
        char **nn;
        if (de->d_name[0] == '.' || !(nn = realloc(names, (n + 1) * sizeof(*nn))))
            continue;
        names = nn;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);

    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char *dir, *prof;
        aik_profile *p = NULL;
        aik_module *m = NULL;
        aik_error verr;
        aik_load_options lo = { .flags = AIK_LOAD_NO_RECORD, .trust = trust };
        struct stat st;
        if (asprintf(&dir, "%s/%s", store, names[i]) < 0)
            continue;
        if (asprintf(&prof, "%s/profile.yaml", dir) < 0 || stat(prof, &st) < 0) {
            free(dir);
            continue;
        }
        int pr = aik_profile_load(prof, &p, &verr);
        int vr = aik_module_open(dir, &lo, &m, &verr);
        char state[600];
        if (pr < 0 || vr < 0)
            bad++;
        if (vr == 0)
            snprintf(state, sizeof(state), "verified (signer %02x%02x%02x%02x…)", aik_module_manifest(m)->signer[0],
                     aik_module_manifest(m)->signer[1], aik_module_manifest(m)->signer[2],
                     aik_module_manifest(m)->signer[3]);
        else
            aik_error_format(&verr, state, sizeof(state));
        if (json) {
            json_t *o = json_pack("{s:s, s:s, s:b}", "directory", names[i], "state", state, "verified", vr == 0);
            if (p) {
                json_t *caps = json_array();
                char ver[48];
                snprintf(ver, sizeof(ver), "%u.%u.%u", p->version.major, p->version.minor, p->version.patch);
                json_object_set_new(o, "name", json_string(p->name));
                json_object_set_new(o, "version", json_string(ver));
                json_object_set_new(o, "kind", json_string(aik_module_kind_name(p->kind)));
                for (size_t k = 0; k < p->n_provides; k++)
                    json_array_append_new(caps, json_string(p->provides[k].id));
                json_object_set_new(o, "capabilities", caps);
            }
            json_array_append_new(arr, o);
        } else if (p) {
            printf("%-24s %u.%u.%u  %-12s", p->name, p->version.major, p->version.minor, p->version.patch,
                   aik_module_kind_name(p->kind));
            for (size_t k = 0; k < p->n_provides; k++)
                printf("%s%s", k ? ", " : " provides ", p->provides[k].id);
            printf("\n    %s\n", state);
        } else {
            printf("%-24s (profile unreadable)\n    %s\n", names[i], state);
        }
        aik_module_close(m);
        aik_profile_free(p);
        free(prof);
        free(dir);
    }
    if (json) {
        char *t = json_dumps(arr, JSON_INDENT(2));
        puts(t);
        free(t);
    }
    json_decref(arr);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    aik_trust_free(trust);
    return bad ? 1 : 0;
}
