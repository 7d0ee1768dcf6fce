/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the .slm package reader and writer (loader/slm.c).
 *
 * Like llama.cpp's test-gguf, most tests start from one good package and
 * break exactly one field, then assert that the reader rejects it naming
 * that field (err.where). Byte offsets are spelled out here independently of
 * slm.c, so the tests also pin the layout documented in docs/slm-format.md.
 *
 * `test_slm --write-corpus DIR` writes the fuzz seed corpus instead of
 * running the tests (tests/fuzz/corpus/slm/ is its committed output).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "loader/slm.h"
#include "slm_testpkg.h"
#include "testutil.h"

/* Header field offsets (docs/slm-format.md). */
enum {
    O_MAGIC = 0, O_VMAJ = 8, O_VMIN = 10, O_HSIZE = 12, O_MTYPE = 16, O_FLAGS = 20, O_VOCAB = 24, O_DIM = 28,
    O_NLAYERS = 32, O_NHEADS = 36, O_NKV = 40, O_HEADDIM = 44, O_FFN = 48, O_CTX = 52, O_THETA = 56, O_EPS = 60,
    O_LAYERS = 64, O_TOKOFF = 72, O_TOKSIZE = 80, O_TOKSHA = 88, O_DIROFF = 120, O_COUNT = 128, O_RES0 = 132,
    O_DATAOFF = 136, O_DATASIZE = 144, O_LAYOUT = 152, O_MODEL = 184, O_FSIZE = 216, O_PARAMS = 224, O_RES = 232,
};
/* Directory entry field offsets. */
enum { E_NAMELEN = 0, E_DTYPE = 2, E_NDIMS = 4, E_SHAPE = 8, E_OFFSET = 40, E_SIZE = 48, E_BLOCK = 56, E_RES = 60,
       E_NAME = 64 };

static uint64_t get(const uint8_t *p, int width)
{
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put(uint8_t *p, int width, uint64_t v)
{
    for (int i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put(p, 4, u);
}

/* The good package, written once per test (tests run in forked children). */
static char *g_dir, *g_path;
static uint8_t *g_good;
static size_t g_len;

static void setup(void)
{
    aik_error err;
    char *data = NULL;

    g_dir = aik_test_tmpdir();
    ck_assert_ptr_nonnull(g_dir);
    ck_assert_int_ge(asprintf(&g_path, "%s/good.slm", g_dir), 0);
    aik_error_clear(&err);
    ck_assert_msg(testpkg_write(g_path, &err) == 0, "write: %s: %s", err.where, err.message);
    ck_assert_int_eq(aik_read_file(g_path, 1 << 20, &data, &g_len), 0);
    g_good = (uint8_t *)data;
}

static void teardown(void)
{
    aik_test_rmtree(g_dir);
    free(g_dir);
    free(g_path);
    free(g_good);
    g_dir = g_path = NULL;
    g_good = NULL;
}

static uint64_t dir_entry(const uint8_t *buf, uint32_t i)
{
    return get(buf + O_DIROFF, 8) + (uint64_t)i * AIK_SLM_DIR_ENTRY_SIZE;
}

/* Open an exact-size heap copy (so ASan sees any over-read) and expect a
 * rejection naming `where`. */
static void expect_reject_at(const uint8_t *buf, size_t len, unsigned flags, const char *where, int line)
{
    uint8_t *copy = malloc(len ? len : 1);
    aik_slm *pkg = (aik_slm *)0x1;
    aik_error err;
    int r;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, buf, len);
    aik_error_clear(&err);
    r = aik_slm_open_buffer(copy, len, flags, &pkg, &err);
    ck_assert_msg(r < 0, "line %d: expected rejection at %s, but open succeeded", line, where);
    ck_assert_msg(pkg == (aik_slm *)0x1, "line %d: ret_pkg written on failure", line);
    ck_assert_msg(err.code == r, "line %d: err.code %d != %d", line, err.code, r);
    ck_assert_msg(err.message[0] != '\0', "line %d: empty message", line);
    if (where)
        ck_assert_msg(strcmp(err.where, where) == 0, "line %d: expected where '%s', got '%s: %s'", line, where,
                      err.where, err.message);
    free(copy);
}
#define expect_reject(buf, len, where) expect_reject_at(buf, len, 0, where, __LINE__)

static void expect_ok_at(const uint8_t *buf, size_t len, unsigned flags, int line)
{
    aik_slm *pkg = NULL;
    aik_error err;
    int r;

    aik_error_clear(&err);
    r = aik_slm_open_buffer(buf, len, flags, &pkg, &err);
    ck_assert_msg(r == 0, "line %d: open failed: %s: %s", line, err.where, err.message);
    aik_slm_close(pkg);
}
#define expect_ok(buf, len, flags) expect_ok_at(buf, len, flags, __LINE__)

/* Patch one header field of a copy of the good package and expect `where`. */
static void hcase_at(size_t off, int width, uint64_t v, const char *where, int line)
{
    uint8_t *b = malloc(g_len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    put(b + off, width, v);
    expect_reject_at(b, g_len, 0, where, line);
    free(b);
}
#define hcase(off, width, v, where) hcase_at(off, width, v, where, __LINE__)

static void hcase_f32_at(size_t off, float f, const char *where, int line)
{
    uint8_t *b = malloc(g_len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    put_f32(b + off, f);
    expect_reject_at(b, g_len, 0, where, line);
    free(b);
}
#define hcase_f32(off, f, where) hcase_f32_at(off, f, where, __LINE__)

/* Patch a field of directory entry i. */
static void dcase_at(uint32_t i, size_t field, int width, uint64_t v, const char *where, int line)
{
    uint8_t *b = malloc(g_len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    put(b + dir_entry(b, i) + field, width, v);
    expect_reject_at(b, g_len, 0, where, line);
    free(b);
}
#define dcase(i, field, width, v, where) dcase_at(i, field, width, v, where, __LINE__)

/* Patch a field of layer record i. */
static void lcase_at(uint32_t i, size_t field, uint32_t v, const char *where, int line)
{
    uint8_t *b = malloc(g_len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    put(b + get(b + O_LAYERS, 8) + (uint64_t)i * AIK_SLM_LAYER_RECORD_SIZE + field, 4, v);
    expect_reject_at(b, g_len, 0, where, line);
    free(b);
}
#define lcase(i, field, v, where) lcase_at(i, field, v, where, __LINE__)

static size_t count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- happy path ---- */

START_TEST(test_roundtrip)
{
    aik_slm *pkg = NULL;
    aik_error err;
    aik_slm_header tmpl;
    aik_slm_layer layers[2];
    uint8_t tok[32], lay[32], mod[32], want[32];
    uint8_t *zeroed;
    uint64_t params = 0;

    testpkg_template(&tmpl, layers);
    aik_error_clear(&err);
    ck_assert_msg(aik_slm_open(g_path, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) == 0, "%s: %s", err.where,
                  err.message);
    ck_assert(pkg->owns_map);
    ck_assert_uint_eq(pkg->map_size, g_len);
    ck_assert_mem_eq(pkg->map, g_good, g_len);

    /* Header: template fields survive, writer-owned fields are filled in. */
    ck_assert_mem_eq(pkg->hdr.magic, AIK_SLM_MAGIC, 8);
    ck_assert_uint_eq(pkg->hdr.version_major, AIK_SLM_VERSION_MAJOR);
    ck_assert_uint_eq(pkg->hdr.version_minor, AIK_SLM_VERSION_MINOR);
    ck_assert_uint_eq(pkg->hdr.header_size, AIK_SLM_HEADER_SIZE);
    ck_assert_uint_eq(pkg->hdr.model_type, tmpl.model_type);
    ck_assert_uint_eq(pkg->hdr.flags, tmpl.flags);
    ck_assert_uint_eq(pkg->hdr.n_vocab, tmpl.n_vocab);
    ck_assert_uint_eq(pkg->hdr.dim, tmpl.dim);
    ck_assert_uint_eq(pkg->hdr.n_layers, 2);
    ck_assert_uint_eq(pkg->hdr.n_heads, tmpl.n_heads);
    ck_assert_uint_eq(pkg->hdr.n_kv_heads, tmpl.n_kv_heads);
    ck_assert_uint_eq(pkg->hdr.head_dim, tmpl.head_dim);
    ck_assert_uint_eq(pkg->hdr.ffn_dim, tmpl.ffn_dim);
    ck_assert_uint_eq(pkg->hdr.ctx_len, tmpl.ctx_len);
    ck_assert(pkg->hdr.rope_theta == tmpl.rope_theta);
    ck_assert(pkg->hdr.norm_eps == tmpl.norm_eps);
    ck_assert_uint_eq(pkg->hdr.file_size, g_len);
    ck_assert_uint_eq(pkg->hdr.data_offset % AIK_SLM_ALIGN, 0);
    ck_assert_uint_eq(pkg->hdr.tensor_count, TESTPKG_N_TENSORS);
    /* The writer puts the directory last (streaming). */
    ck_assert_uint_eq(pkg->hdr.tensor_dir_offset + TESTPKG_N_TENSORS * AIK_SLM_DIR_ENTRY_SIZE, g_len);

    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(pkg->layers[i].n_heads, layers[i].n_heads);
        ck_assert_uint_eq(pkg->layers[i].n_kv_heads, layers[i].n_kv_heads);
        ck_assert_uint_eq(pkg->layers[i].ffn_dim, layers[i].ffn_dim);
    }
    ck_assert_uint_eq(pkg->hdr.tokenizer_size, sizeof(testpkg_tokenizer));
    ck_assert_mem_eq(pkg->tokenizer, testpkg_tokenizer, sizeof(testpkg_tokenizer));

    for (size_t i = 0; i < TESTPKG_N_TENSORS; i++) {
        const testpkg_tensor *w = &testpkg_tensors[i];
        const aik_slm_tensor *t = &pkg->tensors[i];
        uint64_t len;
        uint8_t *data = testpkg_tensor_data(i, &len);

        ck_assert_ptr_nonnull(data);
        ck_assert_str_eq(t->name, w->name);
        ck_assert_int_eq(t->dtype, w->dtype);
        ck_assert_uint_eq(t->n_dims, w->n_dims);
        for (int d = 0; d < AIK_MAX_DIMS; d++)
            ck_assert_uint_eq(t->shape[d], w->shape[d]);
        ck_assert_uint_eq(t->size, len);
        ck_assert_uint_eq(t->block_size, aik_dtype_block_elems(w->dtype));
        ck_assert_uint_eq(t->offset % AIK_SLM_ALIGN, 0);
        /* Zero copy: the data pointer is inside the mapping, 64-aligned. */
        ck_assert_ptr_eq(t->data, pkg->map + pkg->hdr.data_offset + t->offset);
        ck_assert_uint_eq(((uintptr_t)t->data) % AIK_SLM_ALIGN, 0);
        ck_assert_mem_eq(t->data, data, len);
        ck_assert_ptr_eq(aik_slm_find(pkg, w->name), t);
        params += aik_slm_tensor_nelems(t);
        free(data);
    }
    ck_assert_uint_eq(aik_slm_tensor_nelems(&pkg->tensors[2]), 32);
    ck_assert_uint_eq(pkg->hdr.parameter_count, params);
    ck_assert_ptr_null(aik_slm_find(pkg, "missing.weight"));
    ck_assert_ptr_null(aik_slm_find(pkg, NULL));

    /* Checksums, recomputed here from their documented definitions. */
    ck_assert_int_eq(aik_slm_verify_checksums(pkg, tok, lay, mod, &err), 0);
    ck_assert_int_eq(aik_sha256_buf(testpkg_tokenizer, sizeof(testpkg_tokenizer), want), 0);
    ck_assert_mem_eq(tok, want, 32);
    ck_assert_mem_eq(pkg->hdr.tokenizer_sha256, want, 32);
    zeroed = malloc(g_len);
    ck_assert_ptr_nonnull(zeroed);
    memcpy(zeroed, g_good, g_len);
    memset(zeroed + AIK_SLM_MODEL_CHECKSUM_OFFSET, 0, 32);
    ck_assert_int_eq(aik_sha256_buf(zeroed, g_len, want), 0);
    ck_assert_mem_eq(mod, want, 32);
    ck_assert_mem_eq(pkg->hdr.model_checksum, want, 32);
    free(zeroed);
    {
        /* Layout: name bytes, then name_len u16, dtype u16, n_dims u32,
         * shape[4] u64, per entry in order. */
        aik_sha256 *h = aik_sha256_new();
        ck_assert_ptr_nonnull(h);
        for (size_t i = 0; i < TESTPKG_N_TENSORS; i++) {
            const testpkg_tensor *w = &testpkg_tensors[i];
            uint8_t rec[40];
            put(rec, 2, strlen(w->name));
            put(rec + 2, 2, w->dtype);
            put(rec + 4, 4, w->n_dims);
            for (int d = 0; d < 4; d++)
                put(rec + 8 + 8 * d, 8, w->shape[d]);
            ck_assert_int_eq(aik_sha256_update(h, w->name, strlen(w->name)), 0);
            ck_assert_int_eq(aik_sha256_update(h, rec, sizeof(rec)), 0);
        }
        ck_assert_int_eq(aik_sha256_final(h, want), 0);
        aik_sha256_free(h);
    }
    ck_assert_mem_eq(lay, want, 32);
    ck_assert_mem_eq(pkg->hdr.layout_checksum, want, 32);
    ck_assert_int_eq(aik_slm_layout_checksum(pkg->tensors, pkg->hdr.tensor_count, tok), 0);
    ck_assert_mem_eq(tok, want, 32);
    aik_slm_close(pkg);

    /* Same result from a buffer and from an fd (which may be closed after). */
    expect_ok(g_good, g_len, AIK_SLM_VERIFY_CHECKSUMS);
    {
        int fd = open(g_path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(aik_slm_open_fd(fd, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err), 0);
        close(fd);
        ck_assert_mem_eq(pkg->tensors[3].data, g_good + pkg->hdr.data_offset + pkg->tensors[3].offset,
                         pkg->tensors[3].size);
        aik_slm_close(pkg);
    }
    aik_slm_close(NULL);
}
END_TEST

/* Many tensors (beyond the writer's initial table and hash sizes), an empty
 * tokenizer, one layer. */
START_TEST(test_roundtrip_many_tensors)
{
    aik_slm_header h;
    aik_slm_layer layers[2];
    aik_slm_writer *w;
    aik_slm *pkg = NULL;
    aik_error err;
    char *path, name[32];
    enum { N = 300 };

    testpkg_template(&h, layers);
    h.n_layers = 1;
    ck_assert_int_ge(asprintf(&path, "%s/many.slm", g_dir), 0);
    aik_error_clear(&err);
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err), 0);
    for (int i = 0; i < N; i++) {
        uint64_t shape[1] = { (uint64_t)(1 + i % 5) };
        float v[5] = { (float)i, (float)-i, 0.5f, 1.0f, 2.0f };
        snprintf(name, sizeof(name), "t.%d", i);
        ck_assert_msg(aik_slm_writer_add_tensor(w, name, AIK_DTYPE_F32, 1, shape, v, &err) == 0, "%s: %s",
                      err.where, err.message);
    }
    ck_assert_int_eq(aik_slm_writer_finish(w, &err), 0);
    ck_assert_msg(aik_slm_open(path, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_uint_eq(pkg->hdr.tensor_count, N);
    ck_assert_uint_eq(pkg->hdr.tokenizer_size, 0);
    for (int i = 0; i < N; i++) {
        const aik_slm_tensor *t;
        float v0;
        snprintf(name, sizeof(name), "t.%d", i);
        t = aik_slm_find(pkg, name);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(t->shape[0], (uint64_t)(1 + i % 5));
        memcpy(&v0, t->data, 4);
        ck_assert(v0 == (float)i);
    }
    aik_slm_close(pkg);
    free(path);
}
END_TEST

/* ---- one bad file per header field ---- */

START_TEST(test_bad_header_fields)
{
    uint64_t dir_off = get(g_good + O_DIROFF, 8), data_off = get(g_good + O_DATAOFF, 8);
    uint32_t count = (uint32_t)get(g_good + O_COUNT, 4);

    expect_ok(g_good, g_len, AIK_SLM_VERIFY_CHECKSUMS);

    hcase(O_MAGIC, 1, 'X', "header.magic");
    hcase(O_MAGIC + 7, 1, 2, "header.magic");
    hcase(O_VMAJ, 2, AIK_SLM_VERSION_MAJOR + 1, "header.version_major");
    hcase(O_VMAJ, 2, 0, "header.version_major");
    hcase(O_HSIZE, 4, 255, "header.header_size");
    hcase(O_HSIZE, 4, 0, "header.header_size");
    hcase(O_HSIZE, 4, 512, "header.header_size");        /* minor 0 has exactly 256 */
    hcase(O_HSIZE, 4, 0xffffffffu, "header.header_size");
    hcase(O_FSIZE, 8, g_len + 1, "header.file_size");
    hcase(O_FSIZE, 8, g_len - 1, "header.file_size");
    hcase(O_FSIZE, 8, UINT64_MAX, "header.file_size");
    hcase(O_MTYPE, 4, 0, "header.model_type");
    hcase(O_MTYPE, 4, 99, "header.model_type");
    hcase(O_FLAGS, 4, 1u << 3, "header.flags");
    hcase(O_FLAGS, 4, 0x80000000u, "header.flags");
    hcase(O_VOCAB, 4, 0, "header.n_vocab");
    hcase(O_VOCAB, 4, AIK_SLM_MAX_VOCAB + 1, "header.n_vocab");
    hcase(O_DIM, 4, 0, "header.dim");
    hcase(O_DIM, 4, AIK_SLM_MAX_DIM + 1, "header.dim");
    hcase(O_NLAYERS, 4, 0, "header.n_layers");
    hcase(O_NLAYERS, 4, AIK_SLM_MAX_LAYERS + 1, "header.n_layers");
    hcase(O_NLAYERS, 4, 0xffffffffu, "header.n_layers");
    /* One more layer than written: the table runs into the tokenizer. */
    hcase(O_NLAYERS, 4, 3, "header.tokenizer_offset");
    hcase(O_NHEADS, 4, 0, "header.n_heads");
    hcase(O_NHEADS, 4, AIK_SLM_MAX_DIM + 1, "header.n_heads");
    hcase(O_NHEADS, 4, 3, "header.n_kv_heads");          /* 2 does not divide 3 */
    hcase(O_NHEADS, 4, 2, "layer[0].n_heads");           /* layer 0 keeps 4 heads */
    hcase(O_NKV, 4, 0, "header.n_kv_heads");
    hcase(O_NKV, 4, 8, "header.n_kv_heads");             /* > n_heads */
    hcase(O_NKV, 4, 3, "header.n_kv_heads");             /* does not divide 4 */
    hcase(O_HEADDIM, 4, 0, "header.head_dim");
    hcase(O_HEADDIM, 4, AIK_SLM_MAX_DIM + 1, "header.head_dim");
    hcase(O_FFN, 4, 0, "header.ffn_dim");
    hcase(O_FFN, 4, AIK_SLM_MAX_DIM + 1, "header.ffn_dim");
    hcase(O_FFN, 4, 100, "layer[0].ffn_dim");            /* layer 0 keeps 128 */
    hcase(O_CTX, 4, 0, "header.ctx_len");
    hcase(O_CTX, 4, AIK_SLM_MAX_CTX + 1, "header.ctx_len");
    hcase_f32(O_THETA, 0.0f, "header.rope_theta");
    hcase_f32(O_THETA, -1.0f, "header.rope_theta");
    hcase_f32(O_THETA, NAN, "header.rope_theta");
    hcase_f32(O_THETA, INFINITY, "header.rope_theta");
    hcase_f32(O_EPS, 0.0f, "header.norm_eps");
    hcase_f32(O_EPS, NAN, "header.norm_eps");
    hcase_f32(O_EPS, -INFINITY, "header.norm_eps");
    hcase(O_RES0, 4, 1, "header.reserved0");
    hcase(O_RES, 1, 1, "header.reserved");
    hcase(AIK_SLM_HEADER_SIZE - 1, 1, 0x80, "header.reserved");
    hcase(O_LAYERS, 8, 0, "header.layer_table_offset");  /* overlaps the header */
    hcase(O_LAYERS, 8, g_len + 1, "header.layer_table_offset");
    hcase(O_LAYERS, 8, g_len - 8, "header.layer_table_offset");
    hcase(O_LAYERS, 8, UINT64_MAX, "header.layer_table_offset");
    hcase(O_LAYERS, 8, UINT64_MAX - 15, "header.layer_table_offset");
    hcase(O_TOKOFF, 8, 100, "header.tokenizer_offset");  /* inside the header */
    hcase(O_TOKOFF, 8, UINT64_MAX - 10, "header.tokenizer_offset");
    hcase(O_TOKOFF, 8, g_len - 4, "header.tokenizer_offset");
    hcase(O_TOKSIZE, 8, UINT64_MAX, "header.tokenizer_size");
    hcase(O_TOKSIZE, 8, g_len + 1, "header.tokenizer_size");
    hcase(O_TOKSIZE, 8, 4096, "header.tokenizer_size");
    hcase(O_TOKSIZE, 8, data_off, "header.data_offset");   /* tokenizer runs into the data */
    hcase(O_DATAOFF, 8, data_off + 1, "header.data_offset"); /* unaligned */
    hcase(O_DATAOFF, 8, 0, "header.data_offset");          /* overlaps the header */
    hcase(O_DATAOFF, 8, UINT64_MAX & ~63ull, "header.data_offset");
    hcase(O_DATAOFF, 8, data_off + 64, "header.tensor_dir_offset"); /* data runs into the directory */
    hcase(O_DATASIZE, 8, UINT64_MAX, "header.data_size");
    hcase(O_DATASIZE, 8, dir_off - data_off + 128, "header.tensor_dir_offset");
    hcase(O_DATASIZE, 8, 512, "tensor[1].offset");         /* tensor[0] fits, tensor[1] not */
    hcase(O_DATASIZE, 8, 0, "tensor[0].offset");
    hcase(O_DIROFF, 8, UINT64_MAX, "header.tensor_dir_offset");
    hcase(O_DIROFF, 8, UINT64_MAX - 127, "header.tensor_dir_offset");
    hcase(O_DIROFF, 8, g_len, "header.tensor_dir_offset");
    hcase(O_DIROFF, 8, data_off, "header.tensor_dir_offset"); /* overlaps the data */
    hcase(O_DIROFF, 8, dir_off + 1, "header.tensor_dir_offset");
    hcase(O_COUNT, 4, AIK_SLM_MAX_TENSORS + 1, "header.tensor_count");
    hcase(O_COUNT, 4, 0xffffffffu, "header.tensor_count");
    hcase(O_COUNT, 4, count + 1, "header.tensor_dir_offset"); /* past the end */
    hcase(O_COUNT, 4, count - 1, "header.parameter_count");   /* a tensor fewer */
    hcase(O_COUNT, 4, 0, "header.parameter_count");
    hcase(O_PARAMS, 8, get(g_good + O_PARAMS, 8) + 1, "header.parameter_count");
    hcase(O_PARAMS, 8, 0, "header.parameter_count");
}
END_TEST

START_TEST(test_bad_layer_fields)
{
    lcase(1, 0, 0, "layer[1].n_heads");
    lcase(1, 0, 5, "layer[1].n_heads");          /* > header.n_heads */
    lcase(0, 0, 3, "layer[0].n_kv_heads");       /* kv 2 does not divide 3 */
    lcase(1, 4, 0, "layer[1].n_kv_heads");
    lcase(1, 4, 3, "layer[1].n_kv_heads");       /* does not divide 2 */
    lcase(1, 8, 0, "layer[1].ffn_dim");
    lcase(1, 8, 129, "layer[1].ffn_dim");        /* > header.ffn_dim */
    lcase(0, 12, 1, "layer[0].reserved");
    lcase(1, 12, 0x80000000u, "layer[1].reserved");
}
END_TEST

/* ---- one bad file per directory field ---- */

static void name_case_at(uint32_t i, const char *name, size_t name_len, const char *where, int line)
{
    uint8_t *b = malloc(g_len), *e;
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    e = b + dir_entry(b, i);
    memset(e + E_NAME, 0, AIK_SLM_NAME_MAX);
    memcpy(e + E_NAME, name, strlen(name) < AIK_SLM_NAME_MAX ? strlen(name) : AIK_SLM_NAME_MAX);
    put(e + E_NAMELEN, 2, name_len);
    expect_reject_at(b, g_len, 0, where, line);
    free(b);
}
#define name_case(i, name, len, where) name_case_at(i, name, len, where, __LINE__)

START_TEST(test_bad_dir_fields)
{
    uint64_t e0 = dir_entry(g_good, 0), e1 = dir_entry(g_good, 1), e3 = dir_entry(g_good, 3);
    uint64_t off0 = get(g_good + e0 + E_OFFSET, 8), off1 = get(g_good + e1 + E_OFFSET, 8);
    uint64_t data_size = get(g_good + O_DATASIZE, 8);

    /* name_len and name */
    dcase(1, E_NAMELEN, 2, 0, "tensor[1].name_len");
    dcase(1, E_NAMELEN, 2, AIK_SLM_NAME_MAX + 1, "tensor[1].name_len");
    dcase(1, E_NAMELEN, 2, 0xffff, "tensor[1].name_len");
    dcase(1, E_NAMELEN, 2, 5, "tensor[1].name");               /* name bytes after 5 are not NUL */
    dcase(1, E_NAMELEN, 2, 30, "tensor[1].name");              /* NULs inside the name */
    name_case(1, "blk/0", 5, "tensor[1].name");
    name_case(1, "a b", 3, "tensor[1].name");
    name_case(1, "caf\xc3\xa9", 5, "tensor[1].name");
    name_case(3, "x\ny", 3, "tensor[3].name");
    name_case(1, "token_embd.weight", 17, "tensor[1].name"); /* duplicate of tensor[0] */
    name_case(0, "output.weight", 13, "tensor[4].name");      /* the later one is named */
    {
        uint8_t *b = malloc(g_len);
        ck_assert_ptr_nonnull(b);
        memcpy(b, g_good, g_len);
        b[e1 + E_NAME + AIK_SLM_NAME_MAX - 1] = 'z';           /* padding not NUL */
        expect_reject(b, g_len, "tensor[1].name");
        free(b);
    }
    /* dtype */
    dcase(1, E_DTYPE, 2, AIK_DTYPE_COUNT, "tensor[1].dtype");
    dcase(1, E_DTYPE, 2, 0xffff, "tensor[1].dtype");
    dcase(1, E_DTYPE, 2, AIK_DTYPE_F32, "tensor[1].size");    /* f16 bytes read as f32 */
    /* n_dims and shape */
    dcase(1, E_NDIMS, 4, 0, "tensor[1].n_dims");
    dcase(1, E_NDIMS, 4, 5, "tensor[1].n_dims");
    dcase(1, E_NDIMS, 4, 0xffffffffu, "tensor[1].n_dims");
    dcase(0, E_NDIMS, 4, 1, "tensor[0].shape");               /* unused dim 1 is 8, must be 1 */
    dcase(5, E_SHAPE + 8, 8, 2, "tensor[5].shape");           /* unused dim of a 1-D tensor */
    dcase(2, E_SHAPE + 24, 8, 0, "tensor[2].shape");          /* a zero dimension */
    dcase(1, E_SHAPE, 8, 0, "tensor[1].shape");
    dcase(2, E_SHAPE + 8, 8, UINT64_MAX, "tensor[2].shape");  /* element count overflows */
    dcase(2, E_SHAPE + 16, 8, 1ull << 62, "tensor[2].shape");
    dcase(5, E_SHAPE, 8, 1ull << 62, "tensor[5].shape");      /* elements fit, bytes overflow */
    dcase(5, E_SHAPE, 8, 1ull << 40, "tensor[5].size");       /* fits, but is not the size */
    dcase(3, E_SHAPE, 8, 48, "tensor[3].shape");              /* q8_0 row not a whole block */
    dcase(4, E_SHAPE, 8, 31, "tensor[4].shape");              /* q4_0 row not a whole block */
    dcase(1, E_SHAPE, 8, 16, "tensor[1].size");               /* shape no longer matches size */
    dcase(3, E_SHAPE, 8, 32, "tensor[3].size");
    dcase(3, E_DTYPE, 2, AIK_DTYPE_Q4_0, "tensor[3].size");  /* same block size, other block bytes */
    /* block_size */
    dcase(0, E_BLOCK, 4, 32, "tensor[0].block_size");
    dcase(3, E_BLOCK, 4, 1, "tensor[3].block_size");
    dcase(3, E_BLOCK, 4, 0, "tensor[3].block_size");
    /* size */
    dcase(1, E_SIZE, 8, get(g_good + e1 + E_SIZE, 8) + 1, "tensor[1].size");
    dcase(1, E_SIZE, 8, 0, "tensor[1].size");
    dcase(3, E_SIZE, 8, UINT64_MAX, "tensor[3].size");
    /* offset */
    dcase(1, E_OFFSET, 8, off1 + 1, "tensor[1].offset");      /* unaligned */
    dcase(1, E_OFFSET, 8, off1 + 32, "tensor[1].offset");
    dcase(1, E_OFFSET, 8, UINT64_MAX & ~63ull, "tensor[1].offset");
    dcase(1, E_OFFSET, 8, data_size, "tensor[1].offset");     /* past the data region */
    dcase(1, E_OFFSET, 8, off0, "tensor[1].offset");          /* overlaps tensor[0] */
    dcase(0, E_OFFSET, 8, off1, "tensor[1].offset");          /* the later one is named */
    (void)e3;
    /* reserved */
    dcase(1, E_RES, 4, 1, "tensor[1].reserved");
    dcase(4, E_RES, 4, 0xffffffffu, "tensor[4].reserved");
}
END_TEST

/* ---- truncation ---- */

START_TEST(test_truncation)
{
    uint64_t dir_off = get(g_good + O_DIROFF, 8);
    uint8_t *b = malloc(g_len);

    ck_assert_ptr_nonnull(b);
    /* Every length short of the whole file, as is and with file_size
     * patched to match (so the region checks, not the size field, must
     * catch it). */
    for (size_t len = 0; len < g_len; len++) {
        aik_error err;
        aik_slm *pkg = NULL;
        uint8_t *copy = malloc(len ? len : 1);

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, g_good, len);
        aik_error_clear(&err);
        ck_assert_msg(aik_slm_open_buffer(copy, len, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) < 0,
                      "length %zu accepted", len);
        ck_assert_msg(err.where[0] && err.message[0], "length %zu: error without field", len);
        if (len >= AIK_SLM_HEADER_SIZE) {
            put(copy + O_FSIZE, 8, len);
            aik_error_clear(&err);
            ck_assert_msg(aik_slm_open_buffer(copy, len, 0, &pkg, &err) < 0, "length %zu (patched) accepted", len);
            ck_assert_msg(strncmp(err.where, "header.", 7) == 0, "length %zu: where '%s'", len, err.where);
            if (len >= dir_off)
                ck_assert_str_eq(err.where, "header.tensor_dir_offset");
        } else {
            ck_assert_str_eq(err.where, "header");
        }
        free(copy);
    }
    free(b);

    /* The same through a real file (mmap path). */
    {
        static const size_t lens[] = { 0, 1, 100, 255, 256, 300, 1000 };
        char *path;
        ck_assert_int_ge(asprintf(&path, "%s/trunc.slm", g_dir), 0);
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            aik_error err;
            aik_slm *pkg = NULL;
            ck_assert_int_eq(aik_write_file_atomic(path, g_good, lens[i], 0644), 0);
            aik_error_clear(&err);
            ck_assert_int_lt(aik_slm_open(path, 0, &pkg, &err), 0);
            ck_assert(err.where[0] != '\0');
        }
        /* Growing the file is caught as well (file_size). */
        {
            uint8_t *big = calloc(1, g_len + 64);
            aik_error err;
            aik_slm *pkg = NULL;
            ck_assert_ptr_nonnull(big);
            memcpy(big, g_good, g_len);
            ck_assert_int_eq(aik_write_file_atomic(path, big, g_len + 64, 0644), 0);
            ck_assert_int_eq(aik_slm_open(path, 0, &pkg, &err), -EINVAL);
            ck_assert_str_eq(err.where, "header.file_size");
            free(big);
        }
        free(path);
    }
}
END_TEST

/* ---- checksums ---- */

static void checksum_case_at(size_t off, uint8_t xor, const char *where, int line)
{
    uint8_t *b = malloc(g_len), tok[32], lay[32], mod[32];
    aik_slm *pkg = NULL;
    aik_error err;
    int r;

    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    b[off] ^= xor;
    /* Structurally still fine... */
    aik_error_clear(&err);
    r = aik_slm_open_buffer(b, g_len, 0, &pkg, &err);
    ck_assert_msg(r == 0, "line %d: structural open failed: %s: %s", line, err.where, err.message);
    /* ...but verification names the checksum. */
    r = aik_slm_verify_checksums(pkg, tok, lay, mod, &err);
    ck_assert_msg(r == -EBADMSG, "line %d: verify returned %d", line, r);
    ck_assert_msg(strcmp(err.where, where) == 0, "line %d: expected %s, got %s: %s", line, where, err.where,
                  err.message);
    ck_assert(strstr(err.message, "mismatch") != NULL);
    /* Every stored value except the first failing one still matches what
     * the good file had. */
    aik_slm_close(pkg);
    expect_reject_at(b, g_len, AIK_SLM_VERIFY_CHECKSUMS, where, line);
    free(b);
}
#define checksum_case(off, xor, where) checksum_case_at(off, xor, where, __LINE__)

START_TEST(test_checksum_corruption)
{
    uint64_t tok_off = get(g_good + O_TOKOFF, 8), data_off = get(g_good + O_DATAOFF, 8);
    uint64_t e2 = dir_entry(g_good, 2), t3_off = get(g_good + dir_entry(g_good, 3) + E_OFFSET, 8);
    uint64_t t1_end = get(g_good + dir_entry(g_good, 1) + E_OFFSET, 8) + get(g_good + dir_entry(g_good, 1) + E_SIZE, 8);
    uint8_t tok[32], lay[32], mod[32];
    aik_slm *pkg = NULL;
    aik_error err;
    uint8_t *b;

    checksum_case(tok_off, 0x01, "header.tokenizer_sha256");
    checksum_case(tok_off + sizeof(testpkg_tokenizer) - 1, 0x80, "header.tokenizer_sha256");
    checksum_case(data_off, 0x01, "header.model_checksum");          /* first tensor byte */
    checksum_case(data_off + t3_off + 17, 0x40, "header.model_checksum");
    checksum_case(data_off + t1_end, 0x01, "header.model_checksum");  /* padding after tensor[1] */
    checksum_case(data_off - 1, 0xff, "header.model_checksum");      /* padding before the data */
    checksum_case(e2 + E_NAME, 'b' ^ 'c', "header.layout_checksum"); /* renamed, still valid */
    checksum_case(O_TOKSHA + 5, 0x10, "header.tokenizer_sha256");    /* the stored values themselves */
    checksum_case(O_LAYOUT, 0x01, "header.layout_checksum");
    checksum_case(O_MODEL + 31, 0x01, "header.model_checksum");
    checksum_case(O_FLAGS, AIK_SLM_FLAG_QKV_BIAS, "header.model_checksum"); /* header covered too */

    /* After data corruption the recomputed tokenizer and layout values are
     * still the stored ones; only the model checksum differs. */
    b = malloc(g_len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    b[data_off + 3] ^= 0x55;
    ck_assert_int_eq(aik_slm_open_buffer(b, g_len, 0, &pkg, &err), 0);
    ck_assert_int_eq(aik_slm_verify_checksums(pkg, tok, lay, mod, &err), -EBADMSG);
    ck_assert_mem_eq(tok, pkg->hdr.tokenizer_sha256, 32);
    ck_assert_mem_eq(lay, pkg->hdr.layout_checksum, 32);
    ck_assert(memcmp(mod, pkg->hdr.model_checksum, 32) != 0);
    aik_slm_close(pkg);
    free(b);
}
END_TEST

/* ---- versioning ---- */

/* A package re-laid with a header of hsize bytes (as a newer minor version
 * would write it), trailing header bytes set to junk, model checksum
 * re-sealed. NULL on allocation failure. */
static uint8_t *relayout_header(const uint8_t *src, size_t src_len, uint16_t minor, uint32_t hsize,
                                size_t *ret_len)
{
    size_t extra = hsize - AIK_SLM_HEADER_SIZE, len = src_len + extra;
    uint8_t *b = calloc(1, len);
    static const size_t offs[] = { O_LAYERS, O_TOKOFF, O_DIROFF, O_DATAOFF };

    if (!b)
        return NULL;
    memcpy(b, src, AIK_SLM_HEADER_SIZE);
    memset(b + AIK_SLM_HEADER_SIZE, 0xA5, extra);
    memcpy(b + hsize, src + AIK_SLM_HEADER_SIZE, src_len - AIK_SLM_HEADER_SIZE);
    put(b + O_VMIN, 2, minor);
    put(b + O_HSIZE, 4, hsize);
    put(b + O_FSIZE, 8, len);
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
        put(b + offs[i], 8, get(b + offs[i], 8) + extra);
    memset(b + O_MODEL, 0, 32);
    if (aik_sha256_buf(b, len, b + O_MODEL) < 0) {
        free(b);
        return NULL;
    }
    *ret_len = len;
    return b;
}

static uint8_t *grow_header(uint16_t minor, uint32_t hsize, size_t *ret_len)
{
    uint8_t *b = relayout_header(g_good, g_len, minor, hsize, ret_len);
    ck_assert_ptr_nonnull(b);
    return b;
}

START_TEST(test_versions)
{
    aik_slm *pkg = NULL;
    aik_error err;
    size_t len;
    uint8_t *b;

    /* A newer minor version with a bigger header and used reserved bytes
     * is read: the extra bytes are ignored. */
    b = grow_header(AIK_SLM_VERSION_MINOR + 1, AIK_SLM_HEADER_SIZE + 128, &len);
    b[O_RES] = 0x77;
    put(b + O_RES0, 4, 9);
    {
        uint8_t d[32];
        memset(b + O_MODEL, 0, 32);
        ck_assert_int_eq(aik_sha256_buf(b, len, d), 0);
        memcpy(b + O_MODEL, d, 32);
    }
    aik_error_clear(&err);
    ck_assert_msg(aik_slm_open_buffer(b, len, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) == 0, "%s: %s", err.where,
                  err.message);
    ck_assert_uint_eq(pkg->hdr.version_minor, AIK_SLM_VERSION_MINOR + 1);
    ck_assert_uint_eq(pkg->hdr.header_size, AIK_SLM_HEADER_SIZE + 128);
    ck_assert_str_eq(pkg->tensors[0].name, "token_embd.weight");
    ck_assert_mem_eq(pkg->tensors[0].data, g_good + get(g_good + O_DATAOFF, 8), pkg->tensors[0].size);
    aik_slm_close(pkg);

    /* The grown header still must not overlap the layer table. */
    put(b + O_LAYERS, 8, AIK_SLM_HEADER_SIZE);
    expect_reject(b, len, "header.layer_table_offset");
    free(b);

    /* Our own minor version with a bigger header is malformed. */
    b = grow_header(AIK_SLM_VERSION_MINOR, AIK_SLM_HEADER_SIZE + 64, &len);
    expect_reject(b, len, "header.header_size");
    free(b);

    /* Header larger than the file. */
    b = grow_header(AIK_SLM_VERSION_MINOR + 1, AIK_SLM_HEADER_SIZE + 64, &len);
    put(b + O_HSIZE, 4, (uint32_t)len + 64);
    expect_reject(b, len, "header.header_size");
    free(b);

    /* A newer major version is refused, saying so. */
    b = malloc(g_len);
    ck_assert_ptr_nonnull(b);
    memcpy(b, g_good, g_len);
    put(b + O_VMAJ, 2, AIK_SLM_VERSION_MAJOR + 1);
    aik_error_clear(&err);
    ck_assert_int_eq(aik_slm_open_buffer(b, g_len, 0, &pkg, &err), -EPROTONOSUPPORT);
    ck_assert_str_eq(err.where, "header.version_major");
    ck_assert_msg(strstr(err.message, "newer") != NULL, "message: %s", err.message);
    free(b);
}
END_TEST

/* ---- argument checks ---- */

START_TEST(test_open_errors)
{
    aik_slm *pkg = (aik_slm *)0x1;
    aik_error err;
    char *path;

    ck_assert_int_eq(aik_slm_open(NULL, 0, &pkg, &err), -EINVAL);
    ck_assert_int_eq(aik_slm_open(g_path, 0, NULL, &err), -EINVAL);
    ck_assert_int_eq(aik_slm_open_buffer(NULL, 10, 0, &pkg, &err), -EINVAL);
    ck_assert_int_eq(aik_slm_open_buffer(g_good, g_len, 0x80, &pkg, &err), -EINVAL); /* unknown flag */
    ck_assert_int_eq(aik_slm_open_buffer(NULL, 0, 0, &pkg, NULL), -EBADMSG);
    ck_assert_int_eq(aik_slm_open_fd(-1, 0, &pkg, &err), -EINVAL);
    ck_assert_int_eq(aik_slm_open(g_dir, 0, &pkg, &err), -EINVAL); /* a directory */
    ck_assert_int_ge(asprintf(&path, "%s/absent.slm", g_dir), 0);
    ck_assert_int_eq(aik_slm_open(path, 0, &pkg, &err), -ENOENT);
    ck_assert_ptr_eq(pkg, (aik_slm *)0x1);
    ck_assert_int_eq(aik_slm_verify_checksums(NULL, NULL, NULL, NULL, &err), -EINVAL);
    free(path);
}
END_TEST

/* ---- writer failure paths ---- */

/* Begin a writer on dir/name with the test template. */
static aik_slm_writer *begin(const char *name, char **ret_path)
{
    aik_slm_header h;
    aik_slm_layer layers[2];
    aik_slm_writer *w = NULL;
    aik_error err;

    testpkg_template(&h, layers);
    ck_assert_int_ge(asprintf(ret_path, "%s/%s", g_dir, name), 0);
    ck_assert_int_eq(aik_slm_writer_begin(*ret_path, &h, layers, "tok", 3, &w, &err), 0);
    return w;
}

/* The writer fails with `where`; finish then fails too and leaves nothing. */
static void writer_case_at(const char *name, aik_dtype dtype, uint32_t n_dims, const uint64_t *shape,
                           uint64_t data_len, const char *where, int line)
{
    static uint8_t data[4096];
    char *path;
    aik_slm_writer *w;
    aik_error err;
    uint64_t ok_shape[1] = { 4 };
    int r;

    ck_assert_int_eq(count_dir_entries(g_dir), 1); /* good.slm */
    w = begin("w.slm", &path);
    /* A good tensor first: the failure comes mid-stream. */
    ck_assert_int_eq(aik_slm_writer_add_tensor(w, "first", AIK_DTYPE_F32, 1, ok_shape, data, &err), 0);
    aik_error_clear(&err);
    r = data_len == UINT64_MAX ? aik_slm_writer_add_tensor(w, name, dtype, n_dims, shape, data, &err)
                               : aik_slm_writer_add_tensor_sized(w, name, dtype, n_dims, shape, data, data_len, &err);
    ck_assert_msg(r < 0, "line %d: writer accepted it", line);
    ck_assert_msg(strcmp(err.where, where) == 0, "line %d: expected %s, got %s: %s", line, where, err.where,
                  err.message);
    /* The writer is dead now... */
    ck_assert_int_lt(aik_slm_writer_add_tensor(w, "later", AIK_DTYPE_F32, 1, ok_shape, data, &err), 0);
    ck_assert_int_eq(aik_slm_writer_finish(w, &err), r);
    /* ...and nothing is left behind. */
    ck_assert_msg(access(path, F_OK) != 0, "line %d: %s exists", line, path);
    ck_assert_int_eq(count_dir_entries(g_dir), 1);
    free(path);
}
#define writer_case(name, dtype, nd, shape, len, where) writer_case_at(name, dtype, nd, shape, len, where, __LINE__)
#define IMPLIED UINT64_MAX

START_TEST(test_writer_failures)
{
    uint64_t s4[1] = { 4 }, s33[2] = { 33, 2 }, s5d[5] = { 1, 1, 1, 1, 1 }, s0[2] = { 4, 0 };
    uint64_t huge[4] = { 1ull << 32, 1ull << 32, 1, 1 };
    char long_name[80];

    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    writer_case("bad/name", AIK_DTYPE_F32, 1, s4, IMPLIED, "tensor[1].name");
    writer_case("", AIK_DTYPE_F32, 1, s4, IMPLIED, "tensor[1].name");
    writer_case("sp ace", AIK_DTYPE_F32, 1, s4, IMPLIED, "tensor[1].name");
    writer_case(long_name, AIK_DTYPE_F32, 1, s4, IMPLIED, "tensor[1].name");
    writer_case("first", AIK_DTYPE_F32, 1, s4, IMPLIED, "tensor[1].name"); /* duplicate */
    writer_case("t", (aik_dtype)17, 1, s4, IMPLIED, "tensor[1].dtype");
    writer_case("t", AIK_DTYPE_F32, 0, s4, IMPLIED, "tensor[1].n_dims");
    writer_case("t", AIK_DTYPE_F32, 5, s5d, IMPLIED, "tensor[1].n_dims");
    writer_case("t", AIK_DTYPE_F32, 2, s0, IMPLIED, "tensor[1].shape");
    writer_case("t", AIK_DTYPE_Q8_0, 2, s33, IMPLIED, "tensor[1].shape");
    writer_case("t", AIK_DTYPE_F32, 2, huge, IMPLIED, "tensor[1].shape"); /* 2^64 elements */
    writer_case("t", AIK_DTYPE_F32, 1, s4, 15, "tensor[1].size");         /* size mismatch */
    writer_case("t", AIK_DTYPE_F32, 1, s4, 17, "tensor[1].size");
    writer_case("t", AIK_DTYPE_Q4_0, 1, (uint64_t[]){ 64 }, 64, "tensor[1].size"); /* 2 blocks = 36 */

    {
        /* Duplicate keeps its specific errno. */
        char *path;
        aik_error err;
        aik_slm_writer *w = begin("dup.slm", &path);
        float v[4] = { 0 };
        ck_assert_int_eq(aik_slm_writer_add_tensor(w, "a", AIK_DTYPE_F32, 1, s4, v, &err), 0);
        ck_assert_int_eq(aik_slm_writer_add_tensor(w, "a", AIK_DTYPE_F32, 1, s4, v, &err), -EEXIST);
        aik_slm_writer_abort(w);
        ck_assert_int_ne(access(path, F_OK), 0);
        free(path);
    }
    ck_assert_int_eq(count_dir_entries(g_dir), 1);
}
END_TEST

START_TEST(test_writer_begin_failures)
{
    aik_slm_header h;
    aik_slm_layer layers[2];
    aik_slm_writer *w = (aik_slm_writer *)0x1;
    aik_error err;
    char *path, *file_as_dir;

    testpkg_template(&h, layers);
    /* Unwritable target directories (tests may run as root, so use paths
     * that cannot be created rather than permissions). */
    ck_assert_int_lt(aik_slm_writer_begin("/nonexistent-aik-dir/x.slm", &h, layers, NULL, 0, &w, &err), 0);
    ck_assert_int_eq(err.code, -ENOENT);
    ck_assert_int_ge(asprintf(&file_as_dir, "%s/x.slm", g_path), 0); /* parent is a regular file */
    ck_assert_int_eq(aik_slm_writer_begin(file_as_dir, &h, layers, NULL, 0, &w, &err), -ENOTDIR);
    ck_assert_ptr_eq(w, (aik_slm_writer *)0x1);
    free(file_as_dir);

    /* Permissions only stop a non-root user. */
    if (geteuid() != 0) {
        char *ro, *in_ro;
        ck_assert_int_ge(asprintf(&ro, "%s/ro", g_dir), 0);
        ck_assert_int_eq(mkdir(ro, 0555), 0);
        ck_assert_int_ge(asprintf(&in_ro, "%s/x.slm", ro), 0);
        ck_assert_int_eq(aik_slm_writer_begin(in_ro, &h, layers, NULL, 0, &w, &err), -EACCES);
        ck_assert_int_eq(rmdir(ro), 0);
        free(in_ro);
        free(ro);
    }

    /* Template and layer validation, same rules and names as the reader. */
    ck_assert_int_ge(asprintf(&path, "%s/t.slm", g_dir), 0);
    h.n_layers = 0;
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err), -EINVAL);
    ck_assert_str_eq(err.where, "header.n_layers");
    testpkg_template(&h, layers);
    h.flags = 0x100;
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err), -EINVAL);
    ck_assert_str_eq(err.where, "header.flags");
    testpkg_template(&h, layers);
    h.model_type = 7;
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err), -EINVAL);
    ck_assert_str_eq(err.where, "header.model_type");
    testpkg_template(&h, layers);
    layers[1].n_kv_heads = 3;
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err), -EINVAL);
    ck_assert_str_eq(err.where, "layer[1].n_kv_heads");
    testpkg_template(&h, layers);
    layers[0].ffn_dim = 129;
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err), -EINVAL);
    ck_assert_str_eq(err.where, "layer[0].ffn_dim");
    testpkg_template(&h, layers);
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, NULL, NULL, 0, &w, &err), -EINVAL);
    ck_assert_int_eq(aik_slm_writer_begin(path, &h, layers, NULL, 5, &w, &err), -EINVAL);
    ck_assert_ptr_eq(w, (aik_slm_writer *)0x1);
    ck_assert_int_eq(count_dir_entries(g_dir), 1);

    /* A failed rewrite leaves the old file as it was. */
    {
        uint64_t s[1] = { 3 };
        aik_slm_writer *w2;
        char *data = NULL;
        size_t len = 0;

        ck_assert_int_eq(aik_slm_writer_begin(g_path, &h, layers, NULL, 0, &w2, &err), 0);
        ck_assert_int_lt(aik_slm_writer_add_tensor(w2, "x", AIK_DTYPE_Q8_0, 1, s, "", &err), 0);
        ck_assert_int_lt(aik_slm_writer_finish(w2, &err), 0);
        ck_assert_int_eq(aik_read_file(g_path, 1 << 20, &data, &len), 0);
        ck_assert_uint_eq(len, g_len);
        ck_assert_mem_eq(data, g_good, g_len);
        free(data);
        /* abort() after some data too. */
        ck_assert_int_eq(aik_slm_writer_begin(g_path, &h, layers, NULL, 0, &w2, &err), 0);
        ck_assert_int_eq(aik_slm_writer_add_tensor(w2, "x", AIK_DTYPE_F32, 1, s, "abcdefghijkl", &err), 0);
        aik_slm_writer_abort(w2);
        aik_slm_writer_abort(NULL);
        expect_ok(g_good, g_len, AIK_SLM_VERIFY_CHECKSUMS);
        ck_assert_int_eq(count_dir_entries(g_dir), 1);
    }
    ck_assert_int_eq(aik_slm_writer_finish(NULL, &err), -EINVAL);
    free(path);
}
END_TEST

/* I/O errors mid-stream (file size limit, like a full disk): every write
 * position fails cleanly and leaves no file. */
START_TEST(test_writer_io_error)
{
    struct rlimit old, lim;
    void (*old_handler)(int);
    char *path;

    ck_assert_int_ge(asprintf(&path, "%s/io.slm", g_dir), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    old_handler = signal(SIGXFSZ, SIG_IGN);
    for (rlim_t max = 0; max < g_len; max += 61) {
        aik_error err;
        int r;

        lim = old;
        lim.rlim_cur = max;
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
        aik_error_clear(&err);
        r = testpkg_write(path, &err);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
        ck_assert_msg(r == -EFBIG, "limit %llu: got %d (%s: %s)", (unsigned long long)max, r, err.where,
                      err.message);
        ck_assert_int_ne(access(path, F_OK), 0);
        ck_assert_int_eq(count_dir_entries(g_dir), 1);
    }
    signal(SIGXFSZ, old_handler);
    free(path);
}
END_TEST

/* ---- seed corpus for tests/fuzz/corpus/slm ---- */

static int write_corpus(const char *dir)
{
    aik_slm_header h;
    aik_slm_layer layers[2];
    aik_slm_writer *w;
    aik_error err;
    char *path;
    int r;

    if (asprintf(&path, "%s/full.slm", dir) < 0)
        return 1;
    r = testpkg_write(path, &err);
    free(path);
    if (r < 0)
        goto fail;

    /* Smallest useful package: one layer, one tensor, no tokenizer. */
    testpkg_template(&h, layers);
    h.n_layers = 1;
    h.flags = 0;
    if (asprintf(&path, "%s/minimal.slm", dir) < 0)
        return 1;
    r = aik_slm_writer_begin(path, &h, layers, NULL, 0, &w, &err);
    free(path);
    if (r < 0)
        goto fail;
    {
        uint64_t s[1] = { 2 };
        float v[2] = { 1.0f, -2.0f };
        r = aik_slm_writer_add_tensor(w, "w", AIK_DTYPE_F32, 1, s, v, &err);
    }
    if (r < 0) {
        aik_slm_writer_abort(w);
        goto fail;
    }
    if ((r = aik_slm_writer_finish(w, &err)) < 0)
        goto fail;

    /* Quantized tensors only, several layers. */
    testpkg_template(&h, layers);
    if (asprintf(&path, "%s/quant.slm", dir) < 0)
        return 1;
    r = aik_slm_writer_begin(path, &h, layers, "q", 1, &w, &err);
    free(path);
    if (r < 0)
        goto fail;
    for (int i = 0; i < 8 && r == 0; i++) {
        uint8_t blk[2 * 34];
        uint64_t s[2] = { 32, 2 };
        char name[16];
        for (size_t k = 0; k < sizeof(blk); k++)
            blk[k] = (uint8_t)(k * 7 + (size_t)i);
        snprintf(name, sizeof(name), "blk.%d.q", i);
        r = aik_slm_writer_add_tensor(w, name, i % 2 ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0, 2, s, blk, &err);
    }
    if (r < 0) {
        aik_slm_writer_abort(w);
        goto fail;
    }
    if ((r = aik_slm_writer_finish(w, &err)) < 0)
        goto fail;

    /* A newer minor version (1.1) with a 320-byte header. */
    {
        char *full = NULL;
        size_t full_len = 0, len = 0;
        uint8_t *b;

        if (asprintf(&path, "%s/full.slm", dir) < 0)
            return 1;
        r = aik_read_file(path, 1 << 20, &full, &full_len);
        free(path);
        if (r < 0)
            return 1;
        b = relayout_header((const uint8_t *)full, full_len, AIK_SLM_VERSION_MINOR + 1, AIK_SLM_HEADER_SIZE + 64,
                            &len);
        free(full);
        if (!b || asprintf(&path, "%s/newer-minor.slm", dir) < 0)
            return 1;
        r = aik_write_file_atomic(path, b, len, 0644);
        free(path);
        free(b);
        if (r < 0)
            return 1;
    }
    return 0;
fail:
    fprintf(stderr, "write-corpus: %s: %s\n", err.where, err.message);
    return 1;
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    s = suite_create("slm");
    tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_roundtrip_many_tensors);
    tcase_add_test(tc, test_bad_header_fields);
    tcase_add_test(tc, test_bad_layer_fields);
    tcase_add_test(tc, test_bad_dir_fields);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_checksum_corruption);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_writer_failures);
    tcase_add_test(tc, test_writer_begin_failures);
    tcase_add_test(tc, test_writer_io_error);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
