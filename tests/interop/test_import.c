/* SPDX-License-Identifier: MIT */
/*
 * Import/export tests with fixtures generated here (no downloads):
 *   .slm -> GGUF -> .slm round trips (identical tensors, tokenizer, dims),
 *   GGUF import conversions (K-quants -> q8_0 with warnings) and refusals,
 *   Hugging Face directory import (sharded safetensors + tokenizer.json),
 *   the semantic-profile skeleton parsed by capgraph's own parser.
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>

#include "bytebuf.h"
#include "capgraph/profile.h"
#include "common/atomic_file.h"
#include "interop/ggml_quant.h"
#include "interop/gguf.h"
#include "interop/interop.h"
#include "interop/internal.h"
#include "interop/safetensors.h"
#include "loader/slm.h"
#include "runtime/tokenizer.h"
#include "testutil.h"

static char *tmp;

static void setup(void) { tmp = aik_test_tmpdir(); }
static void teardown(void)
{
    aik_test_rmtree(tmp);
    free(tmp);
}

static const char *P(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, name);
    return buf[k];
}

static uint64_t rng_state = 12345;
static uint8_t rnd8(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint8_t)(rng_state >> 56);
}

/* ---- tokenizers ----------------------------------------------------------- */

static uint8_t *spm_blob(size_t *len)
{
    static const char *toks[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab",
                                  "<0x0A>", "c" };
    float scores[10] = { 0, 0, 0, -1, -2, -3, -0.5f, -0.25f, 0, -4 };
    aik_tokenizer_spec s = { 0 };
    uint8_t *blob = NULL;
    aik_error e;

    s.kind = AIK_TOKENIZER_SPM_BPE;
    s.n_vocab = 10;
    s.tokens = toks;
    s.scores = scores;
    s.unk_id = 0;
    s.bos_id = 1;
    s.eos_id = 2;
    s.pad_id = -1;
    s.add_bos = true;
    s.add_space_prefix = true;
    s.chat_template = "{{ messages }}";
    ck_assert_msg(aik_tokenizer_blob_build(&s, &blob, len, &e) == 0, "%s: %s", e.where, e.message);
    return blob;
}

/* GPT-2 bytes_to_unicode of byte b, UTF-8 encoded into out. */
static void byte_char(int b, char out[4])
{
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
                n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

/* 256 byte tokens + "he", "ll", "hell", "<|endoftext|>" */
#define BPE_VOCAB 260
static char bpe_tok[BPE_VOCAB][16];
static const char *bpe_ptr[BPE_VOCAB];

static void bpe_tokens(void)
{
    for (int b = 0; b < 256; b++)
        byte_char(b, bpe_tok[b]);
    strcpy(bpe_tok[256], "he");
    strcpy(bpe_tok[257], "ll");
    strcpy(bpe_tok[258], "hell");
    strcpy(bpe_tok[259], "<|endoftext|>");
    for (int i = 0; i < BPE_VOCAB; i++)
        bpe_ptr[i] = bpe_tok[i];
}

static uint8_t *bpe_blob(size_t *len, const char *regex, bool ignore_merges)
{
    static const char *merges[] = { "h e", "l l", "he ll" };
    uint8_t types[BPE_VOCAB];
    aik_tokenizer_spec s = { 0 };
    uint8_t *blob = NULL;
    aik_error e;

    bpe_tokens();
    memset(types, AIK_TOKEN_NORMAL, sizeof(types));
    types[259] = AIK_TOKEN_CONTROL;
    s.kind = AIK_TOKENIZER_BYTE_BPE;
    s.n_vocab = BPE_VOCAB;
    s.tokens = bpe_ptr;
    s.token_types = types;
    s.n_merges = 3;
    s.merges = merges;
    s.bos_id = s.unk_id = s.pad_id = -1;
    s.eos_id = 259;
    s.pre_regex = regex;
    s.ignore_merges = ignore_merges;
    ck_assert_msg(aik_tokenizer_blob_build(&s, &blob, len, &e) == 0, "%s: %s", e.where, e.message);
    return blob;
}

/* ---- .slm fixtures -------------------------------------------------------- */

/* dtype per tensor, so that every dtype crosses the round trip */
static aik_dtype pick_dtype(const llama_tensor *t, bool mixed)
{
    if (!mixed || t->n_dims == 1)
        return AIK_DTYPE_F32;
    if (strstr(t->name, "attn_q.weight"))
        return AIK_DTYPE_Q8_0;
    if (strstr(t->name, "attn_k.weight"))
        return AIK_DTYPE_F16;
    if (strstr(t->name, "attn_v.weight"))
        return AIK_DTYPE_BF16;
    if (strstr(t->name, "attn_output.weight") || strstr(t->name, "ffn_up"))
        return AIK_DTYPE_Q4_0;
    if (strstr(t->name, "token_embd"))
        return AIK_DTYPE_F16;
    return AIK_DTYPE_F32;
}

static void make_slm(const char *path, uint32_t flags, const aik_slm_layer *layers, uint32_t n_layers, uint32_t n_vocab,
                     const uint8_t *tok, size_t tok_len, bool mixed)
{
    aik_slm_header h = { 0 };
    llama_tensor *lt = NULL;
    aik_slm_writer *w = NULL;
    aik_error e;
    int n;

    h.model_type = AIK_SLM_MODEL_LLAMA;
    h.flags = flags;
    h.n_vocab = n_vocab;
    h.dim = 64;
    h.n_layers = n_layers;
    h.head_dim = 16;
    h.ctx_len = 256;
    h.rope_theta = 500000.0f;
    h.norm_eps = 1e-5f;
    ck_assert_int_eq(llama_check_dims(&h, layers, &e), 0);
    n = llama_expected_tensors(&h, layers, &lt);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(aik_slm_writer_begin(path, &h, layers, tok, tok_len, &w, &e) == 0, "%s: %s", e.where, e.message);
    for (int j = 0; j < n; j++) {
        aik_dtype dt = pick_dtype(&lt[j], mixed);
        uint64_t shape[4] = { lt[j].ne[0], lt[j].ne[1], 1, 1 }, bytes;
        uint8_t *data;
        ck_assert_int_eq(aik_dtype_bytes(dt, shape[0] * shape[1], &bytes), 0);
        data = malloc(bytes);
        for (uint64_t i = 0; i < bytes; i++)
            data[i] = rnd8();
        ck_assert_msg(aik_slm_writer_add_tensor(w, lt[j].name, dt, lt[j].n_dims, shape, data, &e) == 0, "%s: %s",
                      e.where, e.message);
        free(data);
    }
    ck_assert_msg(aik_slm_writer_finish(w, &e) == 0, "%s: %s", e.where, e.message);
    free(lt);
}

/* Two packages hold the same model: header dims/flags, layers, tokenizer,
 * and every tensor byte for byte. */
static void assert_same_package(const char *a_path, const char *b_path)
{
    aik_slm *a = NULL, *b = NULL;
    aik_error e;

    ck_assert_msg(aik_slm_open(a_path, AIK_SLM_VERIFY_CHECKSUMS, &a, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_msg(aik_slm_open(b_path, AIK_SLM_VERIFY_CHECKSUMS, &b, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_uint_eq(a->hdr.flags, b->hdr.flags);
    ck_assert_uint_eq(a->hdr.n_vocab, b->hdr.n_vocab);
    ck_assert_uint_eq(a->hdr.dim, b->hdr.dim);
    ck_assert_uint_eq(a->hdr.n_layers, b->hdr.n_layers);
    ck_assert_uint_eq(a->hdr.n_heads, b->hdr.n_heads);
    ck_assert_uint_eq(a->hdr.n_kv_heads, b->hdr.n_kv_heads);
    ck_assert_uint_eq(a->hdr.head_dim, b->hdr.head_dim);
    ck_assert_uint_eq(a->hdr.ffn_dim, b->hdr.ffn_dim);
    ck_assert_uint_eq(a->hdr.ctx_len, b->hdr.ctx_len);
    ck_assert(a->hdr.rope_theta == b->hdr.rope_theta);
    ck_assert(a->hdr.norm_eps == b->hdr.norm_eps);
    ck_assert(memcmp(a->layers, b->layers, a->hdr.n_layers * sizeof(aik_slm_layer)) == 0);
    ck_assert_uint_eq(a->hdr.tokenizer_size, b->hdr.tokenizer_size);
    ck_assert(memcmp(a->hdr.tokenizer_sha256, b->hdr.tokenizer_sha256, 32) == 0);
    ck_assert(memcmp(a->hdr.layout_checksum, b->hdr.layout_checksum, 32) == 0);
    ck_assert_uint_eq(a->hdr.tensor_count, b->hdr.tensor_count);
    for (uint32_t i = 0; i < a->hdr.tensor_count; i++) {
        const aik_slm_tensor *ta = &a->tensors[i], *tb = aik_slm_find(b, ta->name);
        ck_assert_ptr_nonnull(tb);
        ck_assert_int_eq(ta->dtype, tb->dtype);
        ck_assert_uint_eq(ta->size, tb->size);
        ck_assert_msg(memcmp(ta->data, tb->data, ta->size) == 0, "tensor %s differs", ta->name);
    }
    aik_slm_close(a);
    aik_slm_close(b);
}

static int n_warnings;
static char last_warning[600];
static void on_warn(void *ctx, const char *where, const char *msg)
{
    (void)ctx;
    n_warnings++;
    snprintf(last_warning, sizeof(last_warning), "%s: %s", where, msg);
}

START_TEST(test_roundtrip_spm_neox_pruned)
{
    /* pruned layers (per-layer arrays), tied embeddings, NEOX without
     * biases: exported as llama with Q/K permuted, re-imported exactly */
    const aik_slm_layer layers[2] = { { 4, 2, 96, 0 }, { 2, 1, 64, 0 } };
    aik_interop_opts o = { on_warn, NULL };
    aik_gguf *g = NULL;
    aik_slm *pkg = NULL;
    aik_error e;
    size_t tl;
    uint8_t *tok = spm_blob(&tl);
    const char *s;
    size_t len;
    uint32_t per[2];
    bool b;

    make_slm(P("a.slm"), AIK_SLM_FLAG_TIED_EMBEDDINGS | AIK_SLM_FLAG_ROPE_NEOX, layers, 2, 10, tok, tl, true);
    n_warnings = 0;
    ck_assert_msg(aik_export_gguf(P("a.slm"), P("a.gguf"), &o, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_int_eq(n_warnings, 1); /* the permutation is reported */

    ck_assert_int_eq(aik_gguf_open(P("a.gguf"), &g, &e), 0);
    ck_assert_int_eq(aik_gguf_get_str(g, "general.architecture", &s, &len, &e), 0);
    ck_assert(len == 4 && memcmp(s, "deci", 4) == 0); /* llama.cpp's per-layer llama */
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "deci.attention.head_count", 2, per, &e), 0);
    ck_assert(per[0] == 4 && per[1] == 2);
    {
        /* int32 arrays: llama.cpp refuses uint32 ones */
        aik_gguf_type et;
        ck_assert_int_ge(aik_gguf_get_arr(g, "deci.attention.head_count", &et, NULL, &e), 0);
        ck_assert_int_eq(et, AIK_GGUF_INT32);
    }
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "deci.feed_forward_length", 2, per, &e), 0);
    ck_assert(per[0] == 96 && per[1] == 64);
    ck_assert_int_eq(aik_gguf_get_bool(g, "aikernel.qk_permuted_from_neox", &b, &e), 0);
    ck_assert(b);
    ck_assert_int_eq(aik_gguf_get_str(g, "tokenizer.ggml.model", &s, &len, &e), 0);
    ck_assert(len == 5 && memcmp(s, "llama", 5) == 0);
    ck_assert_ptr_null(aik_gguf_find_tensor(g, "output.weight"));
    /* the Q rows really moved: llama row 1 (head 0, i 0, k 1) is HF row 8 */
    ck_assert_int_eq(aik_slm_open(P("a.slm"), 0, &pkg, &e), 0);
    {
        const aik_slm_tensor *q = aik_slm_find(pkg, "blk.0.attn_q.weight");
        const aik_gguf_tensor *gq = aik_gguf_find_tensor(g, "blk.0.attn_q.weight");
        uint64_t row = q->size / q->shape[1];
        ck_assert_uint_eq(gq->type, AIK_GGML_Q8_0);
        ck_assert(memcmp((const uint8_t *)gq->data + 1 * row, (const uint8_t *)q->data + 8 * row, row) == 0);
        ck_assert(memcmp((const uint8_t *)gq->data + 2 * row, (const uint8_t *)q->data + 1 * row, row) == 0);
        ck_assert(memcmp(gq->data, q->data, q->size) != 0);
    }
    aik_slm_close(pkg);
    aik_gguf_close(g);

    ck_assert_msg(aik_import_gguf(P("a.gguf"), P("b.slm"), &o, &e) == 0, "%s: %s", e.where, e.message);
    assert_same_package(P("a.slm"), P("b.slm"));
    free(tok);
}
END_TEST

START_TEST(test_roundtrip_bpe_qwen2)
{
    /* byte BPE with a llama3 pre-tokenizer, q/k/v biases, NEOX, untied:
     * exported as qwen2 (no permutation) */
    const aik_slm_layer layers[2] = { { 4, 2, 64, 0 }, { 4, 2, 64, 0 } };
    aik_gguf *g = NULL;
    aik_error e;
    size_t tl, len;
    const char *rx, *s;
    bool ig;
    uint8_t *tok;

    ck_assert(pre_regex_for_name("llama3", &rx, &ig));
    tok = bpe_blob(&tl, rx, ig);
    make_slm(P("q.slm"), AIK_SLM_FLAG_QKV_BIAS | AIK_SLM_FLAG_ROPE_NEOX, layers, 2, BPE_VOCAB, tok, tl, true);
    ck_assert_msg(aik_export_gguf(P("q.slm"), P("q.gguf"), NULL, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_int_eq(aik_gguf_open(P("q.gguf"), &g, &e), 0);
    ck_assert_int_eq(aik_gguf_get_str(g, "general.architecture", &s, &len, &e), 0);
    ck_assert(len == 5 && memcmp(s, "qwen2", 5) == 0);
    ck_assert_int_eq(aik_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len, &e), 0);
    ck_assert(len == 6 && memcmp(s, "llama3", 6) == 0);
    ck_assert_int_eq(aik_gguf_kv_type(g, (uint32_t)aik_gguf_find_kv(g, "qwen2.attention.head_count")), AIK_GGUF_UINT32);
    ck_assert_ptr_nonnull(aik_gguf_find_tensor(g, "blk.1.attn_v.bias"));
    ck_assert_ptr_nonnull(aik_gguf_find_tensor(g, "output.weight"));
    ck_assert_int_lt(aik_gguf_find_kv(g, "aikernel.qk_permuted_from_neox"), 0);
    aik_gguf_close(g);
    ck_assert_msg(aik_import_gguf(P("q.gguf"), P("q2.slm"), NULL, &e) == 0, "%s: %s", e.where, e.message);
    assert_same_package(P("q.slm"), P("q2.slm"));
    /* and once more through GGUF: the exports are byte-identical */
    ck_assert_int_eq(aik_export_gguf(P("q2.slm"), P("q3.gguf"), NULL, &e), 0);
    {
        char *x, *y;
        size_t lx, ly;
        ck_assert_int_eq(aik_read_file(P("q.gguf"), 1u << 26, &x, &lx), 0);
        ck_assert_int_eq(aik_read_file(P("q3.gguf"), 1u << 26, &y, &ly), 0);
        ck_assert(lx == ly && memcmp(x, y, lx) == 0);
        free(x);
        free(y);
    }
    free(tok);
}
END_TEST

START_TEST(test_export_refusals)
{
    aik_error e;

    /* pruned layers with q/k/v biases: no llama.cpp graph has that shape */
    {
        const aik_slm_layer pruned[2] = { { 4, 2, 64, 0 }, { 2, 2, 64, 0 } };
        size_t tl;
        uint8_t *tok = spm_blob(&tl);
        struct stat st;
        make_slm(P("pb.slm"), AIK_SLM_FLAG_QKV_BIAS | AIK_SLM_FLAG_ROPE_NEOX, pruned, 2, 10, tok, tl, false);
        ck_assert_int_eq(aik_export_gguf(P("pb.slm"), P("pb.gguf"), NULL, &e), -ENOTSUP);
        ck_assert_str_eq(e.where, "header.flags");
        ck_assert_int_ne(stat(P("pb.gguf"), &st), 0);
        free(tok);
    }

    ck_assert_int_eq(aik_export_gguf(P("missing.slm"), P("x.gguf"), NULL, &e), -ENOENT);
    ck_assert_int_eq(aik_export_gguf(NULL, P("x.gguf"), NULL, &e), -EINVAL);
    /* a corrupted package fails its checksum before anything is written */
    {
        const aik_slm_layer layers[1] = { { 4, 4, 64, 0 } };
        size_t tl;
        uint8_t *tok = spm_blob(&tl);
        FILE *f;
        struct stat st;
        make_slm(P("c.slm"), 0, layers, 1, 10, tok, tl, false);
        f = fopen(P("c.slm"), "r+b");
        ck_assert_int_eq(fseek(f, -1, SEEK_END), 0);
        fputc(0x5a, f);
        fclose(f);
        ck_assert_int_lt(aik_export_gguf(P("c.slm"), P("c.gguf"), NULL, &e), 0);
        ck_assert_int_ne(stat(P("c.gguf"), &st), 0);
        free(tok);
    }
}
END_TEST

/* ---- GGUF written by hand for import ------------------------------------- */

typedef struct gfix {
    aik_gguf_writer *w;
    void *bufs[64];
    int n;
} gfix;

static void *keep(gfix *f, size_t n)
{
    void *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)p)[i] = rnd8();
    f->bufs[f->n++] = p;
    return p;
}

/* A 1-layer llama GGUF (dim 256 so K-quant rows fit); kind selects a
 * variation: 0 good, 1 K-quants, 2 q2_K, 3 extra tensor, 4 bad shape,
 * 5 missing ffn_down, 6 rope scaling, 7 bad arch, 8 no tokenizer,
 * 9 vocab mismatch. */
static void write_llama_gguf(const char *path, int kind)
{
    gfix f = { 0 };
    aik_error e;
    const uint32_t dim = 256, ffn = 256, vocab = 10;
    static const char *toks[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "<0x0A>", "c" };
    float scores[10] = { 0 };
    const char *names[] = { "token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                            "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_norm.weight",
                            "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight",
                            "output_norm.weight", "output.weight" };

    ck_assert_int_eq(aik_gguf_writer_new(0, &f.w), 0);
    ck_assert_int_eq(aik_gguf_writer_add_str(f.w, "general.architecture", kind == 7 ? "gpt2" : "llama",
                                             kind == 7 ? 4 : 5, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "llama.block_count", 1, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "llama.context_length", 128, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "llama.embedding_length", dim, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "llama.feed_forward_length", ffn, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "llama.attention.head_count", 8, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "llama.attention.head_count_kv", 4, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_f32(f.w, "llama.attention.layer_norm_rms_epsilon", 1e-6f, &e), 0);
    if (kind == 6)
        ck_assert_int_eq(aik_gguf_writer_add_str(f.w, "llama.rope.scaling.type", "yarn", 4, &e), 0);
    if (kind != 8) {
        ck_assert_int_eq(aik_gguf_writer_add_str(f.w, "tokenizer.ggml.model", "llama", 5, &e), 0);
        ck_assert_int_eq(aik_gguf_writer_add_arr_str(f.w, "tokenizer.ggml.tokens", toks, NULL, kind == 9 ? 9 : 10, &e), 0);
        ck_assert_int_eq(aik_gguf_writer_add_arr(f.w, "tokenizer.ggml.scores", AIK_GGUF_FLOAT32, scores, kind == 9 ? 9 : 10, &e), 0);
        ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "tokenizer.ggml.bos_token_id", 1, &e), 0);
        ck_assert_int_eq(aik_gguf_writer_add_u32(f.w, "tokenizer.ggml.eos_token_id", 2, &e), 0);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        uint64_t ne[2] = { dim, dim };
        uint32_t type = AIK_GGML_F32, nd = 2, blck, bsz;
        uint64_t bytes;
        if (kind == 5 && strstr(names[i], "ffn_down"))
            continue;
        if (strstr(names[i], "norm"))
            nd = 1;
        if (strstr(names[i], "attn_k") || strstr(names[i], "attn_v"))
            ne[1] = 128; /* 4 kv heads of 32 */
        if (strstr(names[i], "token_embd") || strcmp(names[i], "output.weight") == 0)
            ne[1] = vocab;
        if (kind == 4 && strstr(names[i], "ffn_up"))
            ne[1] = 128;
        if (kind == 1 && strstr(names[i], "ffn_gate"))
            type = AIK_GGML_Q4_K;
        if (kind == 1 && strstr(names[i], "ffn_up"))
            type = AIK_GGML_Q6_K;
        if (kind == 1 && strstr(names[i], "ffn_down"))
            type = AIK_GGML_Q5_1;
        if (kind == 1 && strstr(names[i], "attn_q"))
            type = AIK_GGML_Q8_0;
        if (kind == 1 && strstr(names[i], "ffn_norm"))
            type = AIK_GGML_F16;
        if (kind == 2 && strstr(names[i], "ffn_gate"))
            type = AIK_GGML_Q2_K;
        aik_ggml_type_info(type, &blck, &bsz);
        ck_assert_int_eq(aik_ggml_nbytes(type, nd, ne, &bytes), 0);
        {
            uint8_t *p = keep(&f, bytes);
            /* keep scales finite: K-quant/legacy headers get small halves */
            if (type != AIK_GGML_F32 && type != AIK_GGML_F16)
                for (uint64_t b = 0; b < bytes; b += bsz) {
                    uint16_t hv = aik_float_to_half(0.01f);
                    if (type == AIK_GGML_Q6_K)
                        memcpy(p + b + 208, &hv, 2);
                    else {
                        memcpy(p + b, &hv, 2);
                        if (type != AIK_GGML_Q8_0 && type != AIK_GGML_Q2_K)
                            memcpy(p + b + 2, &hv, 2);
                    }
                }
            if (type == AIK_GGML_F32)
                for (uint64_t b = 0; b < bytes / 4; b++) {
                    float v = (float)(b % 7) * 0.1f;
                    memcpy(p + 4 * b, &v, 4);
                }
            if (type == AIK_GGML_F16)
                for (uint64_t b = 0; b < bytes / 2; b++) {
                    uint16_t hv = aik_float_to_half(0.5f);
                    memcpy(p + 2 * b, &hv, 2);
                }
            ck_assert_int_eq(aik_gguf_writer_add_tensor(f.w, names[i], type, nd, ne, p, bytes, &e), 0);
        }
    }
    if (kind == 3) {
        uint64_t ne[1] = { 16 };
        ck_assert_int_eq(aik_gguf_writer_add_tensor(f.w, "rope_freqs.weight", AIK_GGML_F32, 1, ne, keep(&f, 64), 64, &e), 0);
    }
    ck_assert_msg(aik_gguf_writer_write_file(f.w, path, &e) == 0, "%s: %s", e.where, e.message);
    aik_gguf_writer_free(f.w);
    for (int i = 0; i < f.n; i++)
        free(f.bufs[i]);
}

START_TEST(test_import_gguf_conversions)
{
    aik_interop_opts o = { on_warn, NULL };
    aik_gguf *g = NULL;
    aik_slm *pkg = NULL;
    aik_error e;
    const aik_slm_tensor *t;
    const aik_gguf_tensor *gt;
    float *ref, *got;

    write_llama_gguf(P("k.gguf"), 1);
    n_warnings = 0;
    ck_assert_msg(aik_import_gguf(P("k.gguf"), P("k.slm"), &o, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_int_eq(n_warnings, 3); /* q4_K, q6_K, q5_1: one each, naming the tensor */
    ck_assert_ptr_nonnull(strstr(last_warning, "blk.0.ffn_"));
    ck_assert_ptr_nonnull(strstr(last_warning, "q8_0"));
    ck_assert_int_eq(aik_slm_open(P("k.slm"), AIK_SLM_VERIFY_CHECKSUMS, &pkg, &e), 0);
    ck_assert_uint_eq(pkg->hdr.flags, 0); /* llama GGUF: adjacent-pair rope, untied, no bias */
    ck_assert_uint_eq(pkg->hdr.head_dim, 32);
    ck_assert_uint_eq(pkg->hdr.n_kv_heads, 4);
    ck_assert(pkg->hdr.rope_theta == 10000.0f);
    ck_assert_int_eq(aik_slm_find(pkg, "blk.0.attn_q.weight")->dtype, AIK_DTYPE_Q8_0); /* kept */
    ck_assert_int_eq(aik_slm_find(pkg, "blk.0.ffn_norm.weight")->dtype, AIK_DTYPE_F16); /* kept */
    ck_assert_int_eq(aik_gguf_open(P("k.gguf"), &g, &e), 0);
    ref = malloc(256 * 256 * sizeof(float));
    got = malloc(256 * 256 * sizeof(float));
    for (int k = 0; k < 3; k++) {
        const char *nm = k == 0 ? "blk.0.ffn_gate.weight" : k == 1 ? "blk.0.ffn_up.weight" : "blk.0.ffn_down.weight";
        t = aik_slm_find(pkg, nm);
        gt = aik_gguf_find_tensor(g, nm);
        ck_assert_int_eq(t->dtype, AIK_DTYPE_Q8_0);
        ck_assert_int_eq(aik_ggml_dequantize(gt->type, gt->data, ref, 256 * 256), 0);
        ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q8_0, t->data, got, 256 * 256), 0);
        for (int i = 0; i < 256 * 256; i += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(ref[i + j]));
            for (int j = 0; j < 32; j++)
                ck_assert_msg(fabsf(ref[i + j] - got[i + j]) <= amax / 127.0f + 1e-6f, "%s[%d]", nm, i + j);
        }
    }
    free(ref);
    free(got);
    aik_gguf_close(g);
    aik_slm_close(pkg);

    /* the imported package exports and re-imports unchanged */
    ck_assert_int_eq(aik_export_gguf(P("k.slm"), P("k2.gguf"), NULL, &e), 0);
    ck_assert_int_eq(aik_import_gguf(P("k2.gguf"), P("k2.slm"), NULL, &e), 0);
    assert_same_package(P("k.slm"), P("k2.slm"));
}
END_TEST

START_TEST(test_import_gguf_refusals)
{
    static const struct {
        int kind, code;
        const char *where;
    } cases[] = {
        { 2, -ENOTSUP, "blk.0.ffn_gate.weight" },
        { 3, -ENOTSUP, "rope_freqs.weight" },
        { 4, -EINVAL, "blk.0.ffn_up.weight" },
        { 5, -EINVAL, "blk.0.ffn_down.weight" },
        { 6, -ENOTSUP, "llama.rope.scaling.type" },
        { 7, -ENOTSUP, "general.architecture" },
        { 8, -ENOENT, "tokenizer.ggml.model" },
        { 9, -EINVAL, "token_embd.weight" },
    };
    aik_error e;
    struct stat st;

    write_llama_gguf(P("ok.gguf"), 0);
    ck_assert_msg(aik_import_gguf(P("ok.gguf"), P("ok.slm"), NULL, &e) == 0, "%s: %s", e.where, e.message);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r;
        write_llama_gguf(P("bad.gguf"), cases[i].kind);
        aik_error_clear(&e);
        r = aik_import_gguf(P("bad.gguf"), P("bad.slm"), NULL, &e);
        ck_assert_msg(r == cases[i].code, "kind %d: got %d (%s: %s)", cases[i].kind, r, e.where, e.message);
        ck_assert_msg(strcmp(e.where, cases[i].where) == 0, "kind %d: where '%s' (%s)", cases[i].kind, e.where,
                      e.message);
        ck_assert_int_ne(stat(P("bad.slm"), &st), 0); /* nothing left behind */
    }
    ck_assert_int_eq(aik_import_gguf(P("none.gguf"), P("x.slm"), NULL, &e), -ENOENT);
}
END_TEST

/* ---- Hugging Face directory ---------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* A safetensors file from (name, dims, data) triples, bf16 weights. */
typedef struct stt {
    const char *name;
    uint64_t d0, d1; /* d1 = 0 for 1-D */
    const char *dtype;
    uint32_t esz;
} stt;

static void write_st(const char *path, const stt *ts, size_t n, uint8_t **ret_data, size_t *ret_len)
{
    char hdr[8192];
    size_t hl = 0, off = 0;
    uint8_t *data;
    FILE *f;
    uint64_t len;

    hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        size_t bytes = ts[i].d0 * (ts[i].d1 ? ts[i].d1 : 1) * ts[i].esz;
        if (ts[i].d1)
            hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],\"data_offsets\":[%zu,%zu]}",
                                   ts[i].name, ts[i].dtype, (unsigned long long)ts[i].d0, (unsigned long long)ts[i].d1, off, off + bytes);
        else
            hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu],\"data_offsets\":[%zu,%zu]}",
                                   ts[i].name, ts[i].dtype, (unsigned long long)ts[i].d0, off, off + bytes);
        off += bytes;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "}");
    data = malloc(off);
    for (size_t i = 0; i < off; i++)
        data[i] = rnd8();
    f = fopen(path, "wb");
    len = hl;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    fwrite(data, 1, off, f);
    fclose(f);
    *ret_data = data;
    *ret_len = off;
}

static void write_hf_tokenizer(const char *path)
{
    FILE *f = fopen(path, "wb");
    bpe_tokens();
    fputs("{\"version\":\"1.0\",\"added_tokens\":[{\"id\":259,\"content\":\"<|endoftext|>\",\"special\":true}],"
          "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
          "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{", f);
    for (int i = 0; i < 259; i++) {
        json_t *s = json_string(bpe_tok[i]);
        char *enc = json_dumps(s, JSON_ENCODE_ANY);
        fprintf(f, "%s%s:%d", i ? "," : "", enc, i);
        free(enc);
        json_decref(s);
    }
    fputs("},\"merges\":[\"h e\",[\"l\",\"l\"],\"he ll\"]}}", f);
    fclose(f);
}

START_TEST(test_import_hf_sharded)
{
    /* 2 layers of dim 64, 4 heads of 16, 2 kv heads, ffn 128, vocab 260,
     * tied embeddings, Qwen2-style biases, split over two shards */
    aik_error e;
    aik_slm *pkg = NULL;
    aik_tokenizer *tok = NULL;
    uint8_t *d1, *d2;
    size_t l1, l2;
    char name[32][96];
    stt s1[32], s2[32];
    size_t n1 = 0, n2 = 0;
    FILE *f;

    mkdir(P("hf"), 0755);
    write_text(P("hf/config.json"),
               "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":128,\"vocab_size\":260,"
               "\"max_position_embeddings\":512,\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,"
               "\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\",\"eos_token_id\":259}");
    write_hf_tokenizer(P("hf/tokenizer.json"));
    write_text(P("hf/tokenizer_config.json"),
               "{\"add_bos_token\":false,\"eos_token\":\"<|endoftext|>\",\"chat_template\":\"{{ x }}\"}");
    s1[n1++] = (stt){ "model.embed_tokens.weight", 260, 64, "BF16", 2 };
    s2[n2++] = (stt){ "model.norm.weight", 64, 0, "F32", 4 };
    for (int L = 0; L < 2; L++) {
        stt *s = L == 0 ? s1 : s2;
        size_t *n = L == 0 ? &n1 : &n2;
        int k = L * 16;
#define ADD(suf, a, b, dt, es)                                                        \
    do {                                                                             \
        snprintf(name[k], sizeof(name[k]), "model.layers.%d.%s", L, suf);            \
        s[(*n)++] = (stt){ name[k], a, b, dt, es };                                  \
        k++;                                                                         \
    } while (0)
        ADD("input_layernorm.weight", 64, 0, "F32", 4);
        ADD("self_attn.q_proj.weight", 64, 64, "BF16", 2);
        ADD("self_attn.k_proj.weight", 32, 64, "BF16", 2);
        ADD("self_attn.v_proj.weight", 32, 64, "F16", 2);
        ADD("self_attn.q_proj.bias", 64, 0, "BF16", 2);
        ADD("self_attn.k_proj.bias", 32, 0, "BF16", 2);
        ADD("self_attn.v_proj.bias", 32, 0, "BF16", 2);
        ADD("self_attn.o_proj.weight", 64, 64, "BF16", 2);
        ADD("post_attention_layernorm.weight", 64, 0, "F32", 4);
        ADD("mlp.gate_proj.weight", 128, 64, "BF16", 2);
        ADD("mlp.up_proj.weight", 128, 64, "BF16", 2);
        ADD("mlp.down_proj.weight", 64, 128, "BF16", 2);
        ADD("self_attn.rotary_emb.inv_freq", 8, 0, "F32", 4); /* old checkpoints: ignored */
#undef ADD
    }
    write_st(P("hf/model-00001-of-00002.safetensors"), s1, n1, &d1, &l1);
    write_st(P("hf/model-00002-of-00002.safetensors"), s2, n2, &d2, &l2);
    f = fopen(P("hf/model.safetensors.index.json"), "wb");
    fputs("{\"metadata\":{},\"weight_map\":{", f);
    for (size_t i = 0; i < n1; i++)
        fprintf(f, "%s\"%s\":\"model-00001-of-00002.safetensors\"", i ? "," : "", s1[i].name);
    for (size_t i = 0; i < n2; i++)
        fprintf(f, ",\"%s\":\"model-00002-of-00002.safetensors\"", s2[i].name);
    fputs("}}", f);
    fclose(f);

    ck_assert_msg(aik_import_hf(P("hf"), P("hf.slm"), NULL, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_int_eq(aik_slm_open(P("hf.slm"), AIK_SLM_VERIFY_CHECKSUMS, &pkg, &e), 0);
    ck_assert_uint_eq(pkg->hdr.flags,
                      AIK_SLM_FLAG_ROPE_NEOX | AIK_SLM_FLAG_QKV_BIAS | AIK_SLM_FLAG_TIED_EMBEDDINGS);
    ck_assert_uint_eq(pkg->hdr.head_dim, 16);
    ck_assert_uint_eq(pkg->hdr.n_kv_heads, 2);
    ck_assert(pkg->hdr.rope_theta == 1000000.0f);
    {
        const aik_slm_tensor *t = aik_slm_find(pkg, "token_embd.weight");
        ck_assert_int_eq(t->dtype, AIK_DTYPE_BF16);
        ck_assert_uint_eq(t->shape[0], 64);
        ck_assert_uint_eq(t->shape[1], 260);
        ck_assert(memcmp(t->data, d1, t->size) == 0); /* first tensor of shard 1 */
        t = aik_slm_find(pkg, "blk.1.attn_k.weight");
        ck_assert_uint_eq(t->shape[0], 64);
        ck_assert_uint_eq(t->shape[1], 32);
        ck_assert_int_eq(aik_slm_find(pkg, "blk.0.attn_v.weight")->dtype, AIK_DTYPE_F16);
    }
    ck_assert_int_eq(aik_tokenizer_load(pkg->tokenizer, pkg->hdr.tokenizer_size, &tok, &e), 0);
    ck_assert_int_eq(aik_tokenizer_kind(tok), AIK_TOKENIZER_BYTE_BPE);
    ck_assert_int_eq(aik_tokenizer_eos_id(tok), 259);
    ck_assert(!aik_tokenizer_add_bos(tok));
    ck_assert_str_eq(aik_tokenizer_chat_template(tok), "{{ x }}");
    {
        int32_t ids[8];
        size_t n;
        ck_assert_int_eq(aik_tokenizer_encode(tok, "hell", 4, 0, ids, 8, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(ids[0], 258);
    }
    aik_tokenizer_free(tok);
    aik_slm_close(pkg);

    /* HF -> slm -> GGUF -> slm is exact too */
    ck_assert_int_eq(aik_export_gguf(P("hf.slm"), P("hf.gguf"), NULL, &e), 0);
    ck_assert_int_eq(aik_import_gguf(P("hf.gguf"), P("hf2.slm"), NULL, &e), 0);
    assert_same_package(P("hf.slm"), P("hf2.slm"));

    /* refusals: a missing shard tensor, an unknown tensor, an unsupported dtype */
    write_text(P("hf/config.json"),
               "{\"architectures\":[\"GPT2LMHeadModel\"],\"hidden_size\":64}");
    ck_assert_int_eq(aik_import_hf(P("hf"), P("x.slm"), NULL, &e), -ENOTSUP);
    ck_assert_str_eq(e.where, "config.json: architectures");
    write_text(P("hf/config.json"),
               "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"intermediate_size\":96,\"vocab_size\":260,"
               "\"tie_word_embeddings\":true}");
    ck_assert_int_eq(aik_import_hf(P("hf"), P("x.slm"), NULL, &e), -EINVAL);
    ck_assert_str_eq(e.where, "model.layers.0.mlp.gate_proj.weight");
    write_text(P("hf/config.json"), "{\"architectures\":[\"LlamaForCausalLM\"],}");
    ck_assert_int_eq(aik_import_hf(P("hf"), P("x.slm"), NULL, &e), -EBADMSG);
    ck_assert_str_eq(e.where, "config.json");
    ck_assert_int_eq(aik_import_hf(P("nodir"), P("x.slm"), NULL, &e), -ENOENT);
    free(d1);
    free(d2);
}
END_TEST

/* Llama-2 style: SentencePiece BPE in tokenizer.json, one unsharded file,
 * untied lm_head, f32 */
START_TEST(test_import_hf_spm)
{
    aik_error e;
    aik_slm *pkg = NULL;
    aik_tokenizer *tok = NULL;
    uint8_t *d;
    size_t l;
    char name[16][96];
    stt ts[16];
    size_t n = 0;
    FILE *f;
    int32_t ids[8];
    size_t nid;

    mkdir(P("hs"), 0755);
    write_text(P("hs/config.json"),
               "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":1,"
               "\"num_attention_heads\":4,\"intermediate_size\":32,\"vocab_size\":264,"
               "\"rms_norm_eps\":1e-05,\"tie_word_embeddings\":false,\"bos_token_id\":1,\"eos_token_id\":2}");
    f = fopen(P("hs/tokenizer.json"), "wb");
    fputs("{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
          "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
          "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\u2581\"},"
          "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}]},"
          "\"pre_tokenizer\":null,\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\","
          "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2", f);
    for (int b = 0; b < 256; b++)
        fprintf(f, ",\"<0x%02X>\":%d", b, 3 + b);
    fputs(",\"\u2581\":259,\"a\":260,\"b\":261,\"\u2581a\":262,\"ab\":263},"
          "\"merges\":[\"\u2581 a\",\"a b\"]}}", f);
    fclose(f);
    ts[n++] = (stt){ "model.embed_tokens.weight", 264, 64, "F32", 4 };
    ts[n++] = (stt){ "lm_head.weight", 264, 64, "F32", 4 };
    ts[n++] = (stt){ "model.norm.weight", 64, 0, "F32", 4 };
    {
        int k = 0;
#define ADD(suf, a, b)                                                          \
    do {                                                                       \
        snprintf(name[k], sizeof(name[k]), "model.layers.0.%s", suf);          \
        ts[n++] = (stt){ name[k], a, b, "F32", 4 };                            \
        k++;                                                                   \
    } while (0)
        ADD("input_layernorm.weight", 64, 0);
        ADD("self_attn.q_proj.weight", 64, 64);
        ADD("self_attn.k_proj.weight", 64, 64);
        ADD("self_attn.v_proj.weight", 64, 64);
        ADD("self_attn.o_proj.weight", 64, 64);
        ADD("post_attention_layernorm.weight", 64, 0);
        ADD("mlp.gate_proj.weight", 32, 64);
        ADD("mlp.up_proj.weight", 32, 64);
        ADD("mlp.down_proj.weight", 64, 32);
#undef ADD
    }
    write_st(P("hs/model.safetensors"), ts, n, &d, &l);

    ck_assert_msg(aik_import_hf(P("hs"), P("hs.slm"), NULL, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_int_eq(aik_slm_open(P("hs.slm"), AIK_SLM_VERIFY_CHECKSUMS, &pkg, &e), 0);
    ck_assert_uint_eq(pkg->hdr.flags, AIK_SLM_FLAG_ROPE_NEOX); /* untied, no bias */
    ck_assert_ptr_nonnull(aik_slm_find(pkg, "output.weight"));
    ck_assert(memcmp(aik_slm_find(pkg, "output.weight")->data, d + 264 * 64 * 4, 264 * 64 * 4) == 0);
    ck_assert_int_eq(aik_tokenizer_load(pkg->tokenizer, pkg->hdr.tokenizer_size, &tok, &e), 0);
    ck_assert_int_eq(aik_tokenizer_kind(tok), AIK_TOKENIZER_SPM_BPE);
    ck_assert_int_eq(aik_tokenizer_bos_id(tok), 1);
    ck_assert(aik_tokenizer_add_bos(tok));
    ck_assert_int_eq(aik_tokenizer_token_type(tok, 3 + 10), AIK_TOKEN_BYTE);
    ck_assert_int_eq(aik_tokenizer_token_type(tok, 2), AIK_TOKEN_CONTROL);
    /* "a b": ▁a (merge rank 0) then ▁ b; "\n" falls back to <0x0A> */
    ck_assert_int_eq(aik_tokenizer_encode(tok, "a\n", 2, AIK_TOKENIZE_ADD_SPECIAL, ids, 8, &nid), 0);
    ck_assert_uint_eq(nid, 3);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 262);
    ck_assert_int_eq(ids[2], 3 + 0x0a);
    aik_tokenizer_free(tok);
    aik_slm_close(pkg);

    /* and it exports as llama (Q/K permuted) and re-imports exactly */
    ck_assert_int_eq(aik_export_gguf(P("hs.slm"), P("hs.gguf"), NULL, &e), 0);
    ck_assert_int_eq(aik_import_gguf(P("hs.gguf"), P("hs2.slm"), NULL, &e), 0);
    assert_same_package(P("hs.slm"), P("hs2.slm"));

    /* an unsupported dtype is named */
    ts[0].dtype = "F64";
    ts[0].esz = 8;
    free(d);
    write_st(P("hs/model.safetensors"), ts, n, &d, &l);
    ck_assert_int_eq(aik_import_hf(P("hs"), P("x.slm"), NULL, &e), -ENOTSUP);
    ck_assert_str_eq(e.where, "model.embed_tokens.weight");
    free(d);
}
END_TEST

START_TEST(test_profile_skeleton)
{
    const aik_slm_layer layers[1] = { { 4, 4, 64, 0 } };
    aik_profile *p = NULL;
    aik_error e;
    size_t tl;
    uint8_t *tok = spm_blob(&tl);

    make_slm(P("Tiny Model.slm"), AIK_SLM_FLAG_TIED_EMBEDDINGS, layers, 1, 10, tok, tl, true);
    ck_assert_int_eq(aik_import_write_profile(P("Tiny Model.slm"), P("tiny.yaml"), "src\nwith newline", &e), 0);
    ck_assert_msg(aik_profile_load(P("tiny.yaml"), &p, &e) == 0, "%s: %s", e.where, e.message);
    ck_assert_str_eq(p->name, "tiny-model");
    ck_assert_uint_eq(p->n_provides, 1);
    ck_assert_str_eq(p->provides[0].id, "text.complete");
    ck_assert_uint_eq(p->n_payload, 1);
    ck_assert_str_eq(p->payload[0].file, "Tiny Model.slm");
    ck_assert(p->exec.memory_bytes >= 1u << 20);
    aik_profile_free(p);
    free(tok);
}
END_TEST

/* The aikctl commands end to end (exit codes, default output names). */
START_TEST(test_aikctl_cli)
{
    const char *build = getenv("AIK_BUILD_ROOT");
    const aik_slm_layer layers[2] = { { 4, 2, 96, 0 }, { 2, 1, 64, 0 } };
    char cmd[2048];
    size_t tl;
    uint8_t *tok = spm_blob(&tl);
    struct stat st;

    if (!build)
        return; /* run outside meson: nothing to call */
    make_slm(P("cli.slm"), AIK_SLM_FLAG_ROPE_NEOX, layers, 2, 10, tok, tl, true);
    snprintf(cmd, sizeof(cmd), "%s/tools/aikctl/aikctl export '%s' --gguf '%s' >/dev/null 2>&1", build, P("cli.slm"),
             P("cli.gguf"));
    ck_assert_int_eq(system(cmd), 0);
    /* default output names: ./cli.slm and ./cli.yaml in the current directory */
    ck_assert_int_eq(mkdir(P("out"), 0755), 0);
    snprintf(cmd, sizeof(cmd), "cd '%s' && %s/tools/aikctl/aikctl import ../cli.gguf >/dev/null 2>&1", P("out"), build);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(stat(P("out/cli.yaml"), &st), 0);
    assert_same_package(P("cli.slm"), P("out/cli.slm"));
    snprintf(cmd, sizeof(cmd), "%s/tools/aikctl/aikctl import '%s' -o '%s' --no-profile >/dev/null 2>&1", build,
             P("cli.gguf"), P("cli2.slm"));
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_ne(stat(P("cli2.yaml"), &st), 0);
    assert_same_package(P("cli.slm"), P("cli2.slm"));
    snprintf(cmd, sizeof(cmd), "%s/tools/aikctl/aikctl import '%s' >/dev/null 2>&1", build, P("none.gguf"));
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof(cmd), "%s/tools/aikctl/aikctl export '%s' >/dev/null 2>&1", build, P("cli.slm"));
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2); /* --gguf is required */
    free(tok);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("interop-import");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_spm_neox_pruned);
    tcase_add_test(tc, test_roundtrip_bpe_qwen2);
    tcase_add_test(tc, test_export_refusals);
    tcase_add_test(tc, test_import_gguf_conversions);
    tcase_add_test(tc, test_import_gguf_refusals);
    tcase_add_test(tc, test_import_hf_sharded);
    tcase_add_test(tc, test_import_hf_spm);
    tcase_add_test(tc, test_profile_skeleton);
    tcase_add_test(tc, test_aikctl_cli);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(suite());
}
