/* SPDX-License-Identifier: MIT */
/* Semantic-profile skeleton for an imported package (schema:
 * docs/semantic-profile.md; the test parses the output with capgraph's
 * parser so the two cannot drift apart silently). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "interop/internal.h"

/* Module name from the package file name: [a-z0-9][a-z0-9_.-]*. */
static void module_name(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    size_t n = 0;

    base = base ? base + 1 : path;
    for (const char *p = base; *p && n + 1 < len; p++) {
        char ch = *p;
        if (strcmp(p, ".slm") == 0)
            break;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
            ch = '-';
        if (n == 0 && !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            continue;
        out[n++] = ch;
    }
    if (n == 0)
        n = (size_t)snprintf(out, len, "imported");
    out[n < len ? n : len - 1] = '\0';
}

/* A comment-safe copy of text (no newlines or control bytes). */
static void comment_safe(const char *in, char *out, size_t len)
{
    size_t n = 0;
    for (; in && *in && n + 1 < len; in++)
        out[n++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?' : *in;
    out[n] = '\0';
}

int aik_import_write_profile(const char *slm_path, const char *profile_path, const char *source, aik_error *err)
{
    aik_slm *pkg = NULL;
    char name[64], src[512], *yaml = NULL, dtypes[64] = "";
    const char *base;
    uint32_t seen = 0;
    size_t len = 0;
    uint64_t mib;
    FILE *f;
    int r;

    if (!slm_path || !profile_path)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if ((r = aik_slm_open(slm_path, 0, &pkg, err)) < 0)
        return r;
    module_name(slm_path, name, sizeof(name));
    comment_safe(source ? source : slm_path, src, sizeof(src));
    base = strrchr(slm_path, '/');
    base = base ? base + 1 : slm_path;
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++)
        seen |= 1u << pkg->tensors[i].dtype;
    for (int t = 0; t < AIK_DTYPE_COUNT; t++)
        if (seen & (1u << t)) {
            size_t l = strlen(dtypes);
            snprintf(dtypes + l, sizeof(dtypes) - l, "%s%s", l ? ", " : "", aik_dtype_name((aik_dtype)t));
        }
    /* weights plus a working-set margin of a quarter, whole MiB */
    mib = (pkg->map_size + pkg->map_size / 4 + (1u << 20) - 1) >> 20;
    f = open_memstream(&yaml, &len);
    if (!f) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    fprintf(f,
            "# Semantic-profile skeleton written by `aikctl import` (docs/semantic-profile.md).\n"
            "# Imported from: %s\n"
            "# Model: llama family, %u layers, dim %u, %u heads (%u kv), head_dim %u, ffn %u,\n"
            "#        vocab %u, context %u, %llu parameters.\n"
            "# TODO (a person): check the description, the intents, languages and\n"
            "# domains, and measure tokens_per_s; `aikctl sign` fills in the payload\n"
            "# digest.\n"
            "schema: 1\n"
            "module:\n"
            "  name: %s\n"
            "  version: 1.0.0\n"
            "  kind: architecture\n"
            "  description: Imported llama-family language model.\n"
            "capabilities:\n"
            "  - id: text.complete\n"
            "    version: 1.0.0\n"
            "    description: Continue a prompt with generated text.\n"
            "    intents:\n"
            "      - complete this text\n"
            "      - continue the following passage\n"
            "    languages: [en]\n"
            "    domains: [general]\n"
            "execution:\n"
            "  memory: %llu MiB\n"
            "  backends: [cpu]\n"
            "  dtypes: [%s]\n"
            "payload:\n"
            "  - file: %s\n",
            src, pkg->hdr.n_layers, pkg->hdr.dim, pkg->hdr.n_heads, pkg->hdr.n_kv_heads, pkg->hdr.head_dim,
            pkg->hdr.ffn_dim, pkg->hdr.n_vocab, pkg->hdr.ctx_len, (unsigned long long)pkg->hdr.parameter_count, name,
            (unsigned long long)mib, dtypes, base);
    if (fclose(f) != 0) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    r = aik_write_file_atomic(profile_path, yaml, len, 0644);
    if (r < 0)
        aik_fail(err, r, profile_path, "cannot write: %s", strerror(-r));
out:
    free(yaml);
    aik_slm_close(pkg);
    return r;
}
