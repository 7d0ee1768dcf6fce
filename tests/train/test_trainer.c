/* SPDX-License-Identifier: MIT */
/*
 * The trainer on tiny real packages: a synthetic task whose loss must fall,
 * bit-exact resume from a checkpoint, LoRA over quantized bases, distillation
 * toward a teacher, and configurations and checkpoints that must be refused.
 */
#include <errno.h>
#include <math.h>

#include "runtime/generate.h"
#include "train/autograd.h"
#include "train/trainer.h"
#include "testutil.h"
#include "../engine/tiny_model.h"

static char *tmpdir;
static void setup(void) { tmpdir = aik_test_tmpdir(); }
static void teardown(void)
{
    aik_test_rmtree(tmpdir);
    free(tmpdir);
}

static char *tpath(const char *name)
{
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", tmpdir, name), 0);
    return p;
}

/* Small model for training tests: dim 32, 2 layers, ctx 32. */
static aik_model *make_model(const char *name, aik_dtype dt, uint64_t seed)
{
    char *p = tpath(name);
    aik_slm_header h;
    aik_model *m;
    aik_error err;
    tiny_header(&h);
    h.dim = 32;
    h.n_heads = 4;
    h.n_kv_heads = 2;
    h.head_dim = 8;
    h.ffn_dim = 64;
    h.ctx_len = 32;
    ck_assert_int_eq(tiny_model_write(p, &h, NULL, dt, seed), 0);
    ck_assert_msg(aik_model_open(p, 0, NULL, &m, &err) == 0, "%s", err.message);
    free(p);
    return m;
}

/* Sequences of a repeating 5-token pattern at a random phase: learnable. */
static void fill_batch(int32_t *seqs, uint32_t n, uint32_t T, uint64_t *rng)
{
    static const int32_t pat[5] = { 65, 66, 67, 68, 69 };
    for (uint32_t b = 0; b < n; b++) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t phase = (uint32_t)(*rng >> 33) % 5;
        for (uint32_t t = 0; t <= T; t++)
            seqs[b * (T + 1) + t] = pat[(phase + t) % 5];
    }
}

static void base_cfg(aik_train_config *c)
{
    aik_train_config_default(c);
    c->seq_len = 16;
    c->micro_batches = 2;
    c->steps = 40;
    c->warmup_steps = 5;
    c->lr = 5e-3f;
    c->min_lr = 5e-4f;
    c->n_threads = 2;
    c->seed = 42;
}

START_TEST(test_loss_falls)
{
    aik_model *m = make_model("m.slm", AIK_DTYPE_F32, 1);
    aik_train_config c;
    aik_trainer *tr;
    aik_error err;
    aik_train_stats st;
    int32_t seqs[2 * 17], val[4 * 17];
    uint64_t rng = 1, vrng = 99;
    double v0, v1;

    base_cfg(&c);
    ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), 0);
    fill_batch(val, 4, 16, &vrng);
    ck_assert_int_eq(aik_trainer_eval(tr, val, 4, &v0, &err), 0);
    ck_assert(v0 > 4.0); /* ~ln(258) for a random model */
    for (int i = 0; i < 40; i++) {
        fill_batch(seqs, 2, 16, &rng);
        ck_assert_int_eq(aik_trainer_step(tr, seqs, &st, &err), 0);
        ck_assert(isfinite(st.loss));
    }
    ck_assert_int_eq(aik_trainer_eval(tr, val, 4, &v1, &err), 0);
    ck_assert_msg(v1 < 0.5, "validation loss %.3f -> %.3f: did not learn the pattern", v0, v1);
    ck_assert_uint_eq(aik_trainer_step_count(tr), 40);

    /* the trained weights, written as a package, generate the pattern greedily */
    char *out = tpath("trained.slm");
    ck_assert_int_eq(aik_trainer_write_package(tr, out, AIK_DTYPE_F32, &err), 0);
    aik_model *tm;
    aik_session *s;
    aik_session_config sc = { .n_threads = 1 };
    aik_generate_params gp;
    aik_generate_result res;
    ck_assert_int_eq(aik_model_open(out, AIK_SLM_VERIFY_CHECKSUMS, NULL, &tm, &err), 0);
    ck_assert_int_eq(aik_session_new(tm, &sc, &s, &err), 0);
    aik_generate_params_default(&gp);
    gp.n_predict = 6;
    gp.sampling.temperature = 0;
    gp.tokenize_flags = 0;
    gp.ignore_eos = true;
    ck_assert_int_eq(aik_generate(s, "ABCDEABC", 8, &gp, &res, &err), 0);
    ck_assert_str_eq(res.text, "DEABCD");
    aik_generate_result_clear(&res);
    aik_session_free(s);
    aik_model_free(tm);
    free(out);
    aik_trainer_free(tr);
    aik_model_free(m);
}
END_TEST

START_TEST(test_resume_is_bit_exact)
{
    aik_model *m = make_model("m.slm", AIK_DTYPE_F32, 2);
    aik_train_config c;
    aik_trainer *a, *b;
    aik_error err;
    int32_t seqs[2 * 17];
    uint64_t rng = 5, rng_saved;
    char *ck = tpath("ck.bin");
    void *extra = NULL;
    size_t extra_len = 0;

    base_cfg(&c);
    ck_assert_int_eq(aik_trainer_new(m, &c, &a, &err), 0);
    for (int i = 0; i < 3; i++) {
        fill_batch(seqs, 2, 16, &rng);
        ck_assert_int_eq(aik_trainer_step(a, seqs, NULL, &err), 0);
    }
    ck_assert_int_eq(aik_trainer_save_checkpoint(a, ck, &rng, sizeof(rng), &err), 0);
    rng_saved = rng;
    for (int i = 0; i < 3; i++) {
        fill_batch(seqs, 2, 16, &rng);
        ck_assert_int_eq(aik_trainer_step(a, seqs, NULL, &err), 0);
    }
    /* a fresh trainer resumes from the checkpoint, with the sampler state */
    ck_assert_int_eq(aik_trainer_new(m, &c, &b, &err), 0);
    ck_assert_int_eq(aik_trainer_load_checkpoint(b, ck, &extra, &extra_len, &err), 0);
    ck_assert_uint_eq(extra_len, sizeof(rng));
    memcpy(&rng, extra, sizeof(rng));
    free(extra);
    ck_assert_uint_eq(rng, rng_saved);
    ck_assert_uint_eq(aik_trainer_step_count(b), 3);
    for (int i = 0; i < 3; i++) {
        fill_batch(seqs, 2, 16, &rng);
        ck_assert_int_eq(aik_trainer_step(b, seqs, NULL, &err), 0);
    }
    for (uint32_t i = 0; i < m->pkg->hdr.tensor_count; i++) {
        uint64_t na, nb;
        const float *wa = aik_trainer_weight(a, m->pkg->tensors[i].name, &na);
        const float *wb = aik_trainer_weight(b, m->pkg->tensors[i].name, &nb);
        ck_assert_ptr_nonnull(wa);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(wa, wb, na * sizeof(float)) == 0, "%s differs after resume", m->pkg->tensors[i].name);
    }

    /* a damaged checkpoint is detected, not trusted */
    FILE *f = fopen(ck, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    ck_assert_int_eq(aik_trainer_load_checkpoint(b, ck, NULL, NULL, &err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err.message, "checksum mismatch"));
    ck_assert_int_lt(aik_trainer_load_checkpoint(b, "/nonexistent/ck", NULL, NULL, &err), 0);
    free(ck);
    aik_trainer_free(a);
    aik_trainer_free(b);
    aik_model_free(m);
}
END_TEST

START_TEST(test_lora_on_quantized_base)
{
    static const aik_dtype dts[2] = { AIK_DTYPE_Q8_0, AIK_DTYPE_Q4_0 };
    for (int d = 0; d < 2; d++) {
        aik_model *m = make_model("q.slm", dts[d], 3);
        aik_train_config c;
        aik_trainer *tr;
        aik_error err;
        int32_t seqs[2 * 17], val[4 * 17];
        uint64_t rng = 7, vrng = 8;
        double v0, v1;
        static const char *const targets[] = { "attn_q.weight", "attn_v.weight", "ffn_down.weight", "output.weight" };
        uint8_t before[32], after[32];

        ck_assert_int_eq(aik_slm_verify_checksums(m->pkg, NULL, NULL, before, &err), 0);
        base_cfg(&c);
        c.mode = AIK_TRAIN_LORA;
        c.lora_rank = 4;
        c.lora_alpha = 8;
        c.lora_targets = targets;
        c.n_lora_targets = 4;
        c.lr = 2e-2f;
        ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), 0);
        ck_assert_uint_eq(aik_trainer_lora_count(tr), 2 * 3 + 1);
        fill_batch(val, 4, 16, &vrng);
        ck_assert_int_eq(aik_trainer_eval(tr, val, 4, &v0, &err), 0);
        for (int i = 0; i < 40; i++) {
            fill_batch(seqs, 2, 16, &rng);
            ck_assert_int_eq(aik_trainer_step(tr, seqs, NULL, &err), 0);
        }
        ck_assert_int_eq(aik_trainer_eval(tr, val, 4, &v1, &err), 0);
        ck_assert_msg(v1 < 0.6 * v0, "%s base: LoRA loss %.3f -> %.3f", aik_dtype_name(dts[d]), v0, v1);
        /* the quantized base is untouched */
        ck_assert_int_eq(aik_slm_verify_checksums(m->pkg, NULL, NULL, after, &err), 0);
        ck_assert_mem_eq(before, after, 32);
        ck_assert_int_eq(aik_trainer_write_package(tr, "/tmp/never", AIK_DTYPE_F32, &err), -EINVAL);
        aik_trainer_free(tr);
        aik_model_free(m);
    }
}
END_TEST

START_TEST(test_distillation_moves_toward_teacher)
{
    aik_model *teacher = make_model("t.slm", AIK_DTYPE_F32, 10);
    aik_model *student = make_model("s.slm", AIK_DTYPE_F32, 11);
    aik_train_config c;
    aik_trainer *tr;
    aik_error err;
    int32_t seqs[2 * 17];
    uint64_t rng = 3;
    aik_session *ts, *ss;
    aik_session_config sc = { .n_threads = 1, .batch = 16 };
    const float *tl, *sl;
    uint32_t V = 258;
    float *tcopy = malloc(16 * V * sizeof(float));

    fill_batch(seqs, 1, 16, &rng);
    ck_assert_int_eq(aik_session_new(teacher, &sc, &ts, &err), 0);
    ck_assert_int_eq(aik_session_eval(ts, seqs, 16, 16, &tl, &err), 0);
    memcpy(tcopy, tl, 16 * V * sizeof(float));
    ck_assert_int_eq(aik_session_new(student, &sc, &ss, &err), 0);
    ck_assert_int_eq(aik_session_eval(ss, seqs, 16, 16, &sl, &err), 0);
    double kl0 = aik_distill_kl(sl, tcopy, 16, V, 1.0f, 1.0f, NULL);

    base_cfg(&c);
    c.teacher = teacher;
    c.ce_weight = 0.0f;
    c.distill_temp = 1.0f;
    c.lr = 3e-3f;
    ck_assert_int_eq(aik_trainer_new(student, &c, &tr, &err), 0);
    for (int i = 0; i < 15; i++) {
        uint64_t r2 = rng + (uint64_t)i;
        fill_batch(seqs + 0, 2, 16, &r2);
        ck_assert_int_eq(aik_trainer_step(tr, seqs, NULL, &err), 0);
    }
    char *out = tpath("distilled.slm");
    ck_assert_int_eq(aik_trainer_write_package(tr, out, AIK_DTYPE_F32, &err), 0);
    aik_model *dm;
    aik_session *ds;
    ck_assert_int_eq(aik_model_open(out, 0, NULL, &dm, &err), 0);
    ck_assert_int_eq(aik_session_new(dm, &sc, &ds, &err), 0);
    rng = 3;
    fill_batch(seqs, 1, 16, &rng);
    ck_assert_int_eq(aik_session_eval(ds, seqs, 16, 16, &sl, &err), 0);
    double kl1 = aik_distill_kl(sl, tcopy, 16, V, 1.0f, 1.0f, NULL);
    ck_assert_msg(kl1 < 0.5 * kl0, "KL(teacher || student) %.4f -> %.4f", kl0, kl1);
    aik_session_free(ds);
    aik_model_free(dm);
    free(out);
    free(tcopy);
    aik_session_free(ts);
    aik_session_free(ss);
    aik_trainer_free(tr);
    aik_model_free(student);
    aik_model_free(teacher);
}
END_TEST

START_TEST(test_bad_configs_refused)
{
    aik_model *m = make_model("m.slm", AIK_DTYPE_F32, 4);
    aik_train_config c;
    aik_trainer *tr = NULL;
    aik_error err;
    static const char *const nothing[] = { "no_such.weight" };

    base_cfg(&c);
    c.seq_len = 33;
    ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "train.seq_len");
    base_cfg(&c);
    c.warmup_steps = 100;
    ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "train.warmup_steps");
    base_cfg(&c);
    c.lr = -1;
    ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "train.lr");
    base_cfg(&c);
    c.mode = AIK_TRAIN_LORA;
    c.lora_targets = nothing;
    c.n_lora_targets = 1;
    ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "train.lora_targets");
    base_cfg(&c);
    c.mode = AIK_TRAIN_LORA;
    c.lora_rank = 0;
    ck_assert_int_eq(aik_trainer_new(m, &c, &tr, &err), -EINVAL);
    ck_assert_str_eq(err.where, "train.lora_rank");
    ck_assert_ptr_null(tr);
    aik_model_free(m);
}
END_TEST

START_TEST(test_schedule)
{
    aik_train_config c;
    aik_train_config_default(&c);
    c.steps = 100;
    c.warmup_steps = 10;
    c.lr = 1.0f;
    c.min_lr = 0.1f;
    ck_assert_float_eq_tol(aik_trainer_lr_at(&c, 0), 0.1f, 1e-6f);
    ck_assert_float_eq_tol(aik_trainer_lr_at(&c, 9), 1.0f, 1e-6f);
    ck_assert_float_eq_tol(aik_trainer_lr_at(&c, 10), 1.0f, 1e-6f);
    ck_assert_float_eq_tol(aik_trainer_lr_at(&c, 55), 0.55f, 1e-5f);
    ck_assert_float_eq_tol(aik_trainer_lr_at(&c, 100), 0.1f, 1e-6f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("trainer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_bad_configs_refused);
    tcase_add_test(tc, test_loss_falls);
    tcase_add_test(tc, test_resume_is_bit_exact);
    tcase_add_test(tc, test_lora_on_quantized_base);
    tcase_add_test(tc, test_distillation_moves_toward_teacher);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
