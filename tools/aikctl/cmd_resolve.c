/* SPDX-License-Identifier: MIT */
/* aikctl resolve: which modules would serve an intent, and why. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capgraph/capgraph.h"
#include "common/checked.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aikctl resolve INTENT [--explain] [--profiles DIR] [--memory BYTES]\n"
            "                      [--backend cpu,vulkan,npu] [--latency-ms N] [--json]\n"
            "                      [--wordnet DIR | --no-wordnet]\n"
            "\n"
            "INTENT is a capability id (\"lexicon.define\", \"lexicon.define@^1.0\") or free\n"
            "text (\"what does ephemeral mean\"). Profiles come from --profiles, else\n"
            "$AIK_PROFILES_DIR, else ./profiles. BYTES takes K, M, G (KiB...) suffixes.\n"
            "Exit status: 0 resolved, 1 not resolvable, 2 usage error.\n");
}

static int parse_bytes(const char *s, uint64_t *ret)
{
    char *end;
    uint64_t v, mul = 1;

    if (!*s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    if (*end) {
        if (!strcmp(end, "K") || !strcmp(end, "KiB"))
            mul = 1ull << 10;
        else if (!strcmp(end, "M") || !strcmp(end, "MiB"))
            mul = 1ull << 20;
        else if (!strcmp(end, "G") || !strcmp(end, "GiB"))
            mul = 1ull << 30;
        else
            return -EINVAL;
    }
    if (aik_mul_overflow(v, mul, &v))
        return -ERANGE;
    *ret = v;
    return 0;
}

static int parse_backends(const char *s, uint32_t *ret)
{
    char *copy = strdup(s), *save = NULL, *tok;
    uint32_t bits = 0;

    if (!copy)
        return -ENOMEM;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "cpu"))
            bits |= AIK_BACKEND_BIT_CPU;
        else if (!strcmp(tok, "vulkan"))
            bits |= AIK_BACKEND_BIT_VULKAN;
        else if (!strcmp(tok, "npu"))
            bits |= AIK_BACKEND_BIT_NPU;
        else {
            free(copy);
            return -EINVAL;
        }
    }
    free(copy);
    if (!bits)
        return -EINVAL;
    *ret = bits;
    return 0;
}

static json_t *backends_json(uint32_t bits)
{
    json_t *a = json_array();
    if (bits & AIK_BACKEND_BIT_CPU)
        json_array_append_new(a, json_string("cpu"));
    if (bits & AIK_BACKEND_BIT_VULKAN)
        json_array_append_new(a, json_string("vulkan"));
    if (bits & AIK_BACKEND_BIT_NPU)
        json_array_append_new(a, json_string("npu"));
    return a;
}

static int print_json(const char *intent, const aik_plan *plan, const aik_explanation *ex, const aik_error *err)
{
    json_t *o = json_object(), *expl = json_array();
    char buf[128], ebuf[600];
    char *s;

    json_object_set_new(o, "intent", json_string(intent));
    if (plan) {
        json_t *mods = json_array();
        json_object_set_new(o, "capability", json_string(plan->capability));
        json_object_set_new(o, "free_text", json_boolean(plan->free_text));
        json_object_set_new(o, "score", json_real(plan->match_score));
        json_object_set_new(o, "memory_bytes", json_integer((json_int_t)plan->memory_bytes));
        json_object_set_new(o, "backends", backends_json(plan->backends));
        for (size_t i = 0; i < plan->n_modules; i++) {
            const aik_profile *p = plan->modules[i];
            json_t *m = json_object();
            json_object_set_new(m, "name", json_string(p->name));
            json_object_set_new(m, "version", json_string(aik_semver_format(&p->version, buf, sizeof(buf))));
            json_object_set_new(m, "kind", json_string(aik_module_kind_name(p->kind)));
            json_object_set_new(m, "memory_bytes", json_integer((json_int_t)p->exec.memory_bytes));
            json_object_set_new(m, "profile", json_string(p->source));
            json_array_append_new(mods, m);
        }
        json_object_set_new(o, "modules", mods);
    } else {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_integer(err->code));
        json_object_set_new(e, "message", json_string(aik_error_format(err, ebuf, sizeof(ebuf))));
        json_object_set_new(o, "error", e);
    }
    for (size_t i = 0; i < aik_explanation_count(ex); i++) {
        const aik_explain_entry *en = aik_explanation_get(ex, i);
        json_t *e = json_object();
        json_object_set_new(e, "subject", json_string(en->subject));
        json_object_set_new(e, "verdict", json_string(aik_verdict_name(en->verdict)));
        json_object_set_new(e, "reason", json_string(en->reason));
        json_array_append_new(expl, e);
    }
    json_object_set_new(o, "explanation", expl);
    s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    printf("%s\n", s);
    free(s);
    return 0;
}

int aikctl_cmd_resolve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "explain", no_argument, NULL, 'e' },     { "profiles", required_argument, NULL, 'p' },
        { "memory", required_argument, NULL, 'm' }, { "backend", required_argument, NULL, 'b' },
        { "latency-ms", required_argument, NULL, 'l' }, { "json", no_argument, NULL, 'j' },
        { "wordnet", required_argument, NULL, 'w' }, { "no-wordnet", no_argument, NULL, 'W' },
        { "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
    };
    aik_constraints c = { 0 };
    const char *dir = getenv("AIK_PROFILES_DIR"), *wordnet = NULL;
    bool explain = false, json = false, no_wordnet = false;
    aik_capgraph *g = NULL;
    aik_explanation *ex = NULL;
    aik_plan *plan = NULL;
    aik_error err;
    char *intent = NULL;
    int opt, r, rc = 1;

    if (!dir || !*dir)
        dir = "profiles";
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'e': explain = true; break;
        case 'j': json = true; break;
        case 'p': dir = optarg; break;
        case 'w': wordnet = optarg; break;
        case 'W': no_wordnet = true; break;
        case 'm':
            if (parse_bytes(optarg, &c.memory_budget) < 0 || c.memory_budget == 0) {
                fprintf(stderr, "aikctl resolve: --memory: '%s' is not a size\n", optarg);
                return 2;
            }
            break;
        case 'b':
            if (parse_backends(optarg, &c.backends) < 0) {
                fprintf(stderr, "aikctl resolve: --backend: '%s' is not a list of cpu, vulkan, npu\n", optarg);
                return 2;
            }
            break;
        case 'l': {
            char *end;
            unsigned long v;
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno || *end || v == 0 || v > UINT32_MAX || optarg[0] == '-') {
                fprintf(stderr, "aikctl resolve: --latency-ms: '%s' is not a positive integer\n", optarg);
                return 2;
            }
            c.latency_ms = (uint32_t)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    /* Several words without quotes form one free-text intent. */
    {
        size_t len = 0;
        for (int i = optind; i < argc; i++)
            len += strlen(argv[i]) + 1;
        intent = calloc(1, len + 1);
        if (!intent) {
            aikctl_print_errno("resolve", -ENOMEM);
            return 1;
        }
        for (int i = optind; i < argc; i++) {
            if (i > optind)
                strcat(intent, " ");
            strcat(intent, argv[i]);
        }
    }

    aik_error_clear(&err);
    r = aik_capgraph_load_dir(dir, &g, &err);
    if (r < 0) {
        aikctl_print_error("resolve: loading profiles", &err);
        goto out;
    }
    if (no_wordnet || wordnet)
        r = aik_capgraph_set_wordnet_dir(g, no_wordnet ? NULL : wordnet);
    if (r == 0)
        r = aik_explanation_new(&ex);
    if (r < 0) {
        aikctl_print_errno("resolve", r);
        goto out;
    }
    r = aik_capgraph_resolve(g, intent, &c, ex, &plan, &err);
    if (json) {
        if (print_json(intent, r == 0 ? plan : NULL, ex, &err) < 0)
            aikctl_print_errno("resolve", -ENOMEM);
    } else if (r < 0) {
        aikctl_print_error("resolve", &err);
    } else {
        char mem[64], v[96];
        printf("capability: %s", plan->capability);
        if (plan->free_text)
            printf(" (free-text match, score %.2f)", plan->match_score);
        char be[32];
        size_t o = 0;
        be[0] = '\0';
        if (plan->backends & AIK_BACKEND_BIT_CPU)
            o += (size_t)snprintf(be + o, sizeof(be) - o, "%scpu", o ? "," : "");
        if (plan->backends & AIK_BACKEND_BIT_VULKAN)
            o += (size_t)snprintf(be + o, sizeof(be) - o, "%svulkan", o ? "," : "");
        if (plan->backends & AIK_BACKEND_BIT_NPU)
            snprintf(be + o, sizeof(be) - o, "%snpu", o ? "," : "");
        printf("\nplan: %zu module(s), %.1f MiB, backends %s\n", plan->n_modules,
               (double)plan->memory_bytes / (1024.0 * 1024.0), be);
        for (size_t i = 0; i < plan->n_modules; i++) {
            const aik_profile *p = plan->modules[i];
            snprintf(mem, sizeof(mem), "%.1f MiB", (double)p->exec.memory_bytes / (1024.0 * 1024.0));
            printf("  %-24s %-10s %-13s %s\n", p->name, aik_semver_format(&p->version, v, sizeof(v)),
                   aik_module_kind_name(p->kind), mem);
        }
    }
    if (explain && !json) {
        char *text = NULL;
        if (aik_explanation_format(ex, &text) == 0) {
            fprintf(r < 0 ? stderr : stdout, "explanation:\n%s", text);
            free(text);
        }
    }
    rc = r < 0 ? 1 : 0;
out:
    aik_plan_free(plan);
    aik_explanation_free(ex);
    aik_capgraph_free(g);
    free(intent);
    return rc;
}
