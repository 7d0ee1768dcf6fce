/* SPDX-License-Identifier: MIT */
/*
 * aikctl inspect FILE [--json]: a .slm package's header, per-layer dims and
 * tensor directory (structural validation only, no hashing).
 * aikctl check FILE: recompute every checksum and compare with the header.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/digest.h"
#include "loader/slm.h"
#include "tools/aikctl/aikctl.h"

static const char *model_type_name(uint32_t t)
{
    return t == AIK_SLM_MODEL_LLAMA ? "llama" : "?";
}

static const struct {
    uint32_t bit;
    const char *name;
} flag_names[] = {
    { AIK_SLM_FLAG_TIED_EMBEDDINGS, "tied_embeddings" },
    { AIK_SLM_FLAG_QKV_BIAS, "qkv_bias" },
    { AIK_SLM_FLAG_ROPE_NEOX, "rope_neox" },
};

static void hex(const uint8_t d[32], char out[AIK_SHA256_HEX_LEN])
{
    aik_sha256_hex(d, out);
}

static void print_text(const char *path, const aik_slm *pkg)
{
    const aik_slm_header *h = &pkg->hdr;
    char hx[AIK_SHA256_HEX_LEN];

    printf("file:             %s\n", path);
    printf("format:           %u.%u (header %u bytes, file %llu bytes)\n", h->version_major, h->version_minor,
           h->header_size, (unsigned long long)h->file_size);
    printf("model_type:       %s (%u)\n", model_type_name(h->model_type), h->model_type);
    printf("flags:            0x%x", h->flags);
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (h->flags & flag_names[i].bit)
            printf(" %s", flag_names[i].name);
    printf("\n");
    printf("n_vocab:          %u\n", h->n_vocab);
    printf("dim:              %u\n", h->dim);
    printf("n_layers:         %u\n", h->n_layers);
    printf("n_heads:          %u\n", h->n_heads);
    printf("n_kv_heads:       %u\n", h->n_kv_heads);
    printf("head_dim:         %u\n", h->head_dim);
    printf("ffn_dim:          %u\n", h->ffn_dim);
    printf("ctx_len:          %u\n", h->ctx_len);
    printf("rope_theta:       %g\n", (double)h->rope_theta);
    printf("norm_eps:         %g\n", (double)h->norm_eps);
    printf("parameter_count:  %llu\n", (unsigned long long)h->parameter_count);
    printf("layer_table:      offset %llu\n", (unsigned long long)h->layer_table_offset);
    hex(h->tokenizer_sha256, hx);
    printf("tokenizer:        offset %llu, %llu bytes, sha256 %s\n", (unsigned long long)h->tokenizer_offset,
           (unsigned long long)h->tokenizer_size, hx);
    printf("data:             offset %llu, %llu bytes\n", (unsigned long long)h->data_offset,
           (unsigned long long)h->data_size);
    printf("tensor_dir:       offset %llu, %u entries\n", (unsigned long long)h->tensor_dir_offset,
           h->tensor_count);
    hex(h->layout_checksum, hx);
    printf("layout_checksum:  %s\n", hx);
    hex(h->model_checksum, hx);
    printf("model_checksum:   %s\n", hx);

    printf("\nlayers:\n  %5s %8s %10s %8s\n", "#", "n_heads", "n_kv_heads", "ffn_dim");
    for (uint32_t i = 0; i < h->n_layers; i++)
        printf("  %5u %8u %10u %8u\n", i, pkg->layers[i].n_heads, pkg->layers[i].n_kv_heads,
               pkg->layers[i].ffn_dim);

    printf("\ntensors:\n  %5s %-40s %-5s %-28s %12s %12s\n", "#", "name", "dtype", "shape", "offset", "size");
    for (uint32_t i = 0; i < h->tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        char shape[96];
        int n = 0;

        for (uint32_t d = 0; d < t->n_dims && n >= 0 && (size_t)n < sizeof(shape); d++)
            n += snprintf(shape + n, sizeof(shape) - (size_t)n, d ? " x %llu" : "%llu",
                          (unsigned long long)t->shape[d]);
        printf("  %5u %-40s %-5s %-28s %12llu %12llu\n", i, t->name, aik_dtype_name(t->dtype), shape,
               (unsigned long long)t->offset, (unsigned long long)t->size);
    }
}

/* json_integer takes a signed 64-bit value; every size here is bounded by
 * the file size, so it fits. */
static json_t *jint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *jhex(const uint8_t d[32])
{
    char hx[AIK_SHA256_HEX_LEN];
    hex(d, hx);
    return json_string(hx);
}

static json_t *to_json(const char *path, const aik_slm *pkg)
{
    const aik_slm_header *h = &pkg->hdr;
    json_t *root = json_object(), *flags = json_array(), *layers = json_array(), *tensors = json_array();

    if (!root || !flags || !layers || !tensors) {
        json_decref(root);
        json_decref(flags);
        json_decref(layers);
        json_decref(tensors);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
        if (h->flags & flag_names[i].bit)
            json_array_append_new(flags, json_string(flag_names[i].name));
    for (uint32_t i = 0; i < h->n_layers; i++)
        json_array_append_new(layers, json_pack("{s:I, s:I, s:I}", "n_heads", (json_int_t)pkg->layers[i].n_heads,
                                                "n_kv_heads", (json_int_t)pkg->layers[i].n_kv_heads, "ffn_dim",
                                                (json_int_t)pkg->layers[i].ffn_dim));
    for (uint32_t i = 0; i < h->tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, jint(t->shape[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:o, s:o, s:I}", "name", t->name, "dtype",
                                                 aik_dtype_name(t->dtype), "shape", shape, "offset",
                                                 jint(t->offset), "size", jint(t->size), "block_size",
                                                 (json_int_t)t->block_size));
    }
    json_object_set_new(root, "file", json_string(path));
    json_object_set_new(root, "version_major", jint(h->version_major));
    json_object_set_new(root, "version_minor", jint(h->version_minor));
    json_object_set_new(root, "header_size", jint(h->header_size));
    json_object_set_new(root, "file_size", jint(h->file_size));
    json_object_set_new(root, "model_type", json_string(model_type_name(h->model_type)));
    json_object_set_new(root, "flags", flags);
    json_object_set_new(root, "n_vocab", jint(h->n_vocab));
    json_object_set_new(root, "dim", jint(h->dim));
    json_object_set_new(root, "n_layers", jint(h->n_layers));
    json_object_set_new(root, "n_heads", jint(h->n_heads));
    json_object_set_new(root, "n_kv_heads", jint(h->n_kv_heads));
    json_object_set_new(root, "head_dim", jint(h->head_dim));
    json_object_set_new(root, "ffn_dim", jint(h->ffn_dim));
    json_object_set_new(root, "ctx_len", jint(h->ctx_len));
    json_object_set_new(root, "rope_theta", json_real(h->rope_theta));
    json_object_set_new(root, "norm_eps", json_real(h->norm_eps));
    json_object_set_new(root, "parameter_count", jint(h->parameter_count));
    json_object_set_new(root, "tokenizer", json_pack("{s:o, s:o, s:o}", "offset", jint(h->tokenizer_offset), "size",
                                                     jint(h->tokenizer_size), "sha256", jhex(h->tokenizer_sha256)));
    json_object_set_new(root, "data", json_pack("{s:o, s:o}", "offset", jint(h->data_offset), "size",
                                                jint(h->data_size)));
    json_object_set_new(root, "tensor_dir_offset", jint(h->tensor_dir_offset));
    json_object_set_new(root, "layout_checksum", jhex(h->layout_checksum));
    json_object_set_new(root, "model_checksum", jhex(h->model_checksum));
    json_object_set_new(root, "layers", layers);
    json_object_set_new(root, "tensors", tensors);
    return root;
}

int aikctl_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    aik_slm *pkg = NULL;
    aik_error err;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: aikctl inspect FILE.slm [--json]\n"
                   "Show a package's header, per-layer dimensions and tensor directory.\n");
            return 0;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "usage: aikctl inspect FILE.slm [--json]\n");
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: aikctl inspect FILE.slm [--json]\n");
        return 2;
    }
    aik_error_clear(&err);
    r = aik_slm_open(path, 0, &pkg, &err);
    if (r < 0) {
        aikctl_print_error(path, &err);
        return 1;
    }
    if (json) {
        json_t *root = to_json(path, pkg);
        if (!root || json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0) {
            json_decref(root);
            aik_slm_close(pkg);
            aikctl_print_errno("inspect: writing JSON", -ENOMEM);
            return 1;
        }
        printf("\n");
        json_decref(root);
    } else
        print_text(path, pkg);
    aik_slm_close(pkg);
    return fflush(stdout) == 0 ? 0 : 1;
}

static bool report(const char *name, const uint8_t stored[32], const uint8_t computed[32])
{
    char a[AIK_SHA256_HEX_LEN], b[AIK_SHA256_HEX_LEN];
    bool ok = memcmp(stored, computed, 32) == 0;

    hex(computed, b);
    if (ok)
        printf("%-17s %s  match\n", name, b);
    else {
        hex(stored, a);
        printf("%-17s %s  MISMATCH (header says %s)\n", name, b, a);
    }
    return ok;
}

int aikctl_cmd_check(int argc, char **argv)
{
    uint8_t tok[32], lay[32], mod[32];
    aik_slm *pkg = NULL;
    aik_error err;
    bool ok = true;
    int r;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: aikctl check FILE.slm\n"
               "Recompute the tokenizer, layout and model checksums; exit 0 only when all match.\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: aikctl check FILE.slm\n");
        return 2;
    }
    aik_error_clear(&err);
    r = aik_slm_open(argv[1], 0, &pkg, &err);
    if (r < 0) {
        aikctl_print_error(argv[1], &err);
        return 1;
    }
    r = aik_slm_verify_checksums(pkg, tok, lay, mod, &err);
    if (r < 0 && r != -EBADMSG) {
        aikctl_print_error(argv[1], &err);
        aik_slm_close(pkg);
        return 1;
    }
    ok &= report("tokenizer_sha256", pkg->hdr.tokenizer_sha256, tok);
    ok &= report("layout_checksum", pkg->hdr.layout_checksum, lay);
    ok &= report("model_checksum", pkg->hdr.model_checksum, mod);
    aik_slm_close(pkg);
    printf("%s: %s\n", argv[1], ok ? "all checksums match" : "CHECKSUM MISMATCH");
    return ok ? 0 : 1;
}
