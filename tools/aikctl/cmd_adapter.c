/* SPDX-License-Identifier: MIT */
/*
 * aikctl adapter inspect ADAPTER
 * aikctl adapter validate ADAPTER PKG
 * aikctl adapter merge PKG ADAPTER [ADAPTER...] -o OUT.slm
 * aikctl adapter segment extract PKG --layers A-B -o FRAG
 * aikctl adapter segment apply PKG FRAG -o OUT.slm
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "common/error.h"
#include "loader/adapter.h"
#include "loader/slm.h"
#include "runtime/adapter_merge.h"
#include "runtime/segment_apply.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aikctl adapter inspect ADAPTER\n"
            "       aikctl adapter validate ADAPTER PKG\n"
            "       aikctl adapter merge PKG ADAPTER [ADAPTER...] -o OUT.slm\n"
            "       aikctl adapter segment extract PKG --layers A-B -o FRAG\n"
            "       aikctl adapter segment apply PKG FRAG -o OUT.slm\n"
            "ADAPTER is an ADP1 (dense), ASP1 (sparse) or ALR1 (low-rank) file (docs/adapters.md);\n"
            "inspect and validate also take an ASG1 segment fragment.\n"
            "validate exits 0 when compatible, 1 otherwise, printing the check that failed.\n"
            "merge bakes the adapters, in order, into a new package of the base's dtypes.\n"
            "segment extract cuts layers A..B (inclusive; A alone for one layer) out of PKG;\n"
            "segment apply writes PKG with the fragment's layers replaced.\n");
}

static int cmd_inspect(const char *path)
{
    aik_adapter *a = NULL;
    uint8_t digest[32];
    char hx[AIK_SHA256_HEX_LEN];
    aik_error err;

    if (aik_adapter_load_any(path, &a, digest, &err) < 0) {
        aikctl_print_error("adapter inspect", &err);
        return 1;
    }
    aik_sha256_hex(digest, hx);
    printf("file:            %s\n", path);
    printf("digest:          %s\n", hx);
    printf("format:          %s (%s) v%u.%u\n", aik_adapter_kind_magic(a->kind), aik_adapter_kind_name(a->kind),
           a->version_major, a->version_minor);
    printf("tensor_count:    %u\n", a->id.tensor_count);
    printf("flags:           0x%x\n", a->id.flags);
    printf("parameter_count: %llu\n", (unsigned long long)a->id.parameter_count);
    aik_sha256_hex(a->id.layout_checksum, hx);
    printf("layout:          %s\n", hx);
    aik_sha256_hex(a->id.tokenizer_checksum, hx);
    printf("tokenizer:       %s\n", hx);
    aik_sha256_hex(a->payload_sha256, hx);
    printf("payload_sha256:  %s\n", hx);
    if (a->kind == AIK_ADAPTER_SEGMENT)
        printf("layers:          %u-%u\n", a->layer_first, a->layer_end - 1);
    printf("payloads:        %u\n", a->n_tensors);
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const aik_adapter_tensor *t = &a->tensors[i];
        printf("  %-40s [", t->name);
        for (uint32_t d = 0; d < t->n_dims; d++)
            printf("%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
        printf("]");
        if (a->kind == AIK_ADAPTER_SPARSE)
            printf(" pairs=%llu", (unsigned long long)t->count);
        if (a->kind == AIK_ADAPTER_LOWRANK)
            printf(" rank=%u alpha=%g", t->rank, (double)t->alpha);
        if (a->kind == AIK_ADAPTER_SEGMENT)
            printf(" %s %llu bytes", aik_dtype_name(t->dtype), (unsigned long long)t->data_size);
        printf("\n");
    }
    aik_adapter_free(a);
    return 0;
}

static int cmd_validate(const char *apath, const char *ppath)
{
    aik_adapter *a = NULL;
    aik_slm *pkg = NULL;
    aik_adapter_check_result res;
    aik_error err;
    int rc = 1;

    if (aik_adapter_load_any(apath, &a, NULL, &err) < 0) {
        aikctl_print_error("adapter validate", &err);
        return 1;
    }
    if (aik_slm_open(ppath, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) < 0) {
        aik_error_prefix(&err, ppath);
        aikctl_print_error("adapter validate", &err);
        goto out;
    }
    res = aik_adapter_check(a, pkg, &err);
    if (res != AIK_ADAPTER_COMPATIBLE) {
        aikctl_print_error("adapter validate", &err);
        goto out;
    }
    printf("%s: compatible with %s (%u payloads)\n", apath, ppath, a->n_tensors);
    rc = 0;
out:
    aik_slm_close(pkg);
    aik_adapter_free(a);
    return rc;
}

static int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = { { "output", required_argument, 0, 'o' },
                                           { "help", no_argument, 0, 'h' },
                                           { 0, 0, 0, 0 } };
    const char *out = NULL;
    aik_adapter **list = NULL;
    aik_slm *pkg = NULL;
    aik_error err;
    size_t n = 0;
    int c, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!out || argc - optind < 2) {
        usage(stderr);
        return 2;
    }
    if (aik_slm_open(argv[optind], AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) < 0) {
        aik_error_prefix(&err, argv[optind]);
        aikctl_print_error("adapter merge", &err);
        return 1;
    }
    list = calloc((size_t)(argc - optind - 1), sizeof(*list));
    if (!list) {
        aikctl_print_errno("adapter merge", -ENOMEM);
        goto out;
    }
    for (int i = optind + 1; i < argc; i++) {
        if (aik_adapter_load(argv[i], &list[n], NULL, &err) < 0) {
            aikctl_print_error("adapter merge", &err);
            goto out;
        }
        n++;
    }
    if (aik_adapter_merge(pkg, (const aik_adapter *const *)list, n, out, &err) < 0) {
        aikctl_print_error("adapter merge", &err);
        goto out;
    }
    printf("%s: %zu adapter(s) merged into %s\n", out, n, argv[optind]);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        aik_adapter_free(list[i]);
    free(list);
    aik_slm_close(pkg);
    return rc;
}

/* "A-B" (inclusive) or "A" → [first, end). */
static int parse_layers(const char *s, uint32_t *ret_first, uint32_t *ret_end)
{
    unsigned long a, b;
    char *e;

    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    a = strtoul(s, &e, 10);
    b = a;
    if (*e == '-') {
        if (e[1] < '0' || e[1] > '9')
            return -EINVAL;
        b = strtoul(e + 1, &e, 10);
    }
    if (*e != '\0' || a > b || b >= AIK_SLM_MAX_LAYERS)
        return -EINVAL;
    *ret_first = (uint32_t)a;
    *ret_end = (uint32_t)b + 1;
    return 0;
}

static int cmd_segment(int argc, char **argv)
{
    static const struct option opts[] = { { "output", required_argument, 0, 'o' },
                                           { "layers", required_argument, 0, 'l' },
                                           { "help", no_argument, 0, 'h' },
                                           { 0, 0, 0, 0 } };
    const char *out = NULL, *layers = NULL, *verb;
    aik_adapter *f = NULL;
    aik_slm *pkg = NULL;
    aik_error err;
    uint32_t first = 0, end = 0;
    int c, rc = 1;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    verb = argv[1];
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'l': layers = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (strcmp(verb, "extract") == 0) {
        if (!out || !layers || argc - optind != 1) {
            usage(stderr);
            return 2;
        }
        if (parse_layers(layers, &first, &end) < 0) {
            fprintf(stderr, "aikctl adapter segment extract: --layers '%s' is not A-B or A (A <= B < %d)\n",
                    layers, AIK_SLM_MAX_LAYERS);
            return 2;
        }
    } else if (strcmp(verb, "apply") == 0) {
        if (!out || layers || argc - optind != 2) {
            usage(stderr);
            return 2;
        }
    } else {
        usage(stderr);
        return 2;
    }
    if (aik_slm_open(argv[optind], AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) < 0) {
        aik_error_prefix(&err, argv[optind]);
        aikctl_print_error("adapter segment", &err);
        return 1;
    }
    if (strcmp(verb, "extract") == 0) {
        if (aik_segment_extract(pkg, first, end, &f, &err) < 0 || aik_adapter_write(f, out, &err) < 0) {
            aikctl_print_error("adapter segment extract", &err);
            goto out;
        }
        printf("%s: layers %u-%u of %s (%u tensors)\n", out, first, end - 1, argv[optind], f->n_tensors);
    } else {
        if (aik_segment_load(argv[optind + 1], &f, NULL, &err) < 0) {
            aikctl_print_error("adapter segment apply", &err);
            goto out;
        }
        if (aik_segment_apply(pkg, f, out, &err) < 0) {
            aik_error_prefix(&err, argv[optind + 1]);
            aikctl_print_error("adapter segment apply", &err);
            goto out;
        }
        printf("%s: %s with layers %u-%u from %s\n", out, argv[optind], f->layer_first, f->layer_end - 1,
               argv[optind + 1]);
    }
    rc = 0;
out:
    aik_adapter_free(f);
    aik_slm_close(pkg);
    return rc;
}

int aikctl_cmd_adapter(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "inspect") == 0 && argc == 3)
        return cmd_inspect(argv[2]);
    if (strcmp(argv[1], "validate") == 0 && argc == 4)
        return cmd_validate(argv[2], argv[3]);
    if (strcmp(argv[1], "merge") == 0)
        return cmd_merge(argc - 1, argv + 1);
    if (strcmp(argv[1], "segment") == 0)
        return cmd_segment(argc - 1, argv + 1);
    usage(stderr);
    return 2;
}
