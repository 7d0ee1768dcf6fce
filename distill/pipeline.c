/* SPDX-License-Identifier: MIT */
/* Differential distillation of one capability (distill/pipeline.h). */
#include "distill/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/rng.h"
#include "distill/package.h"
#include "distill/trajectories.h"
#include "loader/adapter.h"
#include "runtime/capability_run.h"
#include "runtime/eval.h"
#include "runtime/kernel_internal.h"
#include "runtime/replay.h"
#include "runtime/tokenizer.h"
#include "train/adapter_lora.h"
#include "train/trainer.h"

#define INPUTS_MAX 100000u
#define INPUTS_FILE_MAX (16u << 20)
#define HELDOUT_SEQS_MAX 64u

void aik_distill_config_default(aik_distill_config *c)
{
    memset(c, 0, sizeof(*c));
    c->min_pass_rate = 0.5;
    c->steps = 300;
    c->rank = 8;
    c->alpha = 16.0f;
    c->seq_len = 64;
    c->batch = 8;
    c->lr = 2e-3f;
    c->seed = 1;
}

/* ---- inputs ---- */

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static int strvec_add(strvec *s, const char *p, size_t len)
{
    if (s->n == INPUTS_MAX)
        return -E2BIG;
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 256;
        char **v = realloc(s->v, nc * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = nc;
    }
    if (!(s->v[s->n] = strndup(p, len)))
        return -ENOMEM;
    s->n++;
    return 0;
}

static void strvec_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, without repeats: the order of the data must not depend on the
 * order requests happened to arrive in. */
static void strvec_unique(strvec *s)
{
    size_t o = 0;
    if (s->n)
        qsort(s->v, s->n, sizeof(*s->v), cmp_str);
    for (size_t i = 0; i < s->n; i++) {
        if (o && strcmp(s->v[o - 1], s->v[i]) == 0)
            free(s->v[i]);
        else
            s->v[o++] = s->v[i];
    }
    s->n = o;
}

typedef struct replay_ctx {
    aik_kernel *k;
    const char *capability;
    strvec *inputs;
    uint64_t records, used;
    int error;
    aik_error *err;
} replay_ctx;

static int on_record(void *user, uint64_t index, const aik_replay_record *rec)
{
    replay_ctx *c = user;
    char intent[512], cap[64];
    aik_error e;

    (void)index;
    c->records++;
    if (rec->intent_len == 0 || rec->intent_len >= sizeof(intent) || rec->input_len == 0 ||
        rec->input_len > AIK_TRAJ_MAX_INPUT || memchr(rec->input, '\0', rec->input_len))
        return 0;
    memcpy(intent, rec->intent, rec->intent_len);
    intent[rec->intent_len] = '\0';
    /* The log keeps the intent as asked (maybe free text): resolve it again
     * against today's graph. An intent that no longer resolves is skipped. */
    if (aik_kernel_resolve_capability(c->k, intent, cap, &e) < 0 || strcmp(cap, c->capability) != 0)
        return 0;
    int r = strvec_add(c->inputs, rec->input, rec->input_len);
    if (r < 0) {
        c->error = aik_fail(c->err, r, "replay", r == -E2BIG ? "more than %u inputs" : "out of memory", INPUTS_MAX);
        return 1;
    }
    c->used++;
    return 0;
}

static int read_inputs_file(const char *path, strvec *inputs, aik_error *err)
{
    char *data = NULL;
    size_t len = 0, pos = 0, lineno = 0;
    int r = aik_read_file(path, INPUTS_FILE_MAX, &data, &len);

    if (r < 0)
        return aik_fail(err, r, path, "cannot read the inputs file (at most %u bytes)", INPUTS_FILE_MAX);
    while (pos < len && r == 0) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len, s = pos, e = end;
        lineno++;
        while (s < e && (data[s] == ' ' || data[s] == '\t'))
            s++;
        while (e > s && (data[e - 1] == ' ' || data[e - 1] == '\t' || data[e - 1] == '\r'))
            e--;
        pos = nl ? end + 1 : len;
        if (s == e || data[s] == '#')
            continue;
        if (e - s > AIK_TRAJ_MAX_INPUT || memchr(data + s, '\0', e - s)) {
            char where[64];
            snprintf(where, sizeof(where), "%s:%zu", path, lineno);
            r = aik_fail(err, -EINVAL, where, "input longer than %u bytes or with a NUL byte", AIK_TRAJ_MAX_INPUT);
            break;
        }
        r = strvec_add(inputs, data + s, e - s);
        if (r < 0)
            r = aik_fail(err, r, path, r == -E2BIG ? "more than %u inputs" : "out of memory", INPUTS_MAX);
    }
    free(data);
    return r;
}

/* ---- training data ---- */

typedef struct example {
    size_t start, len; /* in the token stream */
} example;

typedef struct token_set {
    int32_t *ids;
    size_t n, cap;
    example *ex;
    size_t n_ex;
} token_set;

static int push_ids(token_set *t, const int32_t *ids, size_t n)
{
    if (t->n + n > t->cap) {
        size_t nc = t->cap ? t->cap : 4096;
        while (nc < t->n + n)
            nc *= 2;
        int32_t *v = realloc(t->ids, nc * sizeof(*v));
        if (!v)
            return -ENOMEM;
        t->ids = v;
        t->cap = nc;
    }
    memcpy(t->ids + t->n, ids, n * sizeof(*ids));
    t->n += n;
    return 0;
}

/* One example: the tokens the model sees when it serves the input (the
 * prompt, encoded as aik_generate encodes it) followed by the teacher's
 * completion and EOS, so the student learns both the answer and where it
 * ends. */
static int encode_example(const aik_tokenizer *tok, const aik_capability_ops *cap, const aik_trajectory *tr,
                          token_set *t, aik_error *err)
{
    char prompt[AIK_CAPABILITY_PROMPT_MAX];
    size_t plen = 0, n1 = 0, n2 = 0, start = t->n;
    int32_t *a = NULL, *b = NULL, eos = aik_tokenizer_eos_id(tok);
    int r;

    r = aik_capability_prompt(cap, tr->input, strlen(tr->input), prompt, sizeof(prompt), &plen, err);
    if (r < 0)
        return r; /* refused by the capability: the caller skips it */
    r = aik_tokenizer_encode_alloc(tok, prompt, plen, AIK_TOKENIZE_ADD_SPECIAL, &a, &n1);
    if (r == 0)
        r = aik_tokenizer_encode_alloc(tok, tr->output, strlen(tr->output), 0, &b, &n2);
    if (r == 0)
        r = push_ids(t, a, n1);
    if (r == 0)
        r = push_ids(t, b, n2);
    if (r == 0 && eos >= 0)
        r = push_ids(t, &eos, 1);
    free(a);
    free(b);
    if (r < 0)
        return aik_fail(err, r == -EINVAL ? -EIO : r, "trajectory", "cannot tokenize");
    example *ne = realloc(t->ex, (t->n_ex + 1) * sizeof(*ne));
    if (!ne)
        return aik_fail(err, -ENOMEM, "trajectory", "out of memory");
    t->ex = ne;
    t->ex[t->n_ex++] = (example){ start, t->n - start };
    return 0;
}

/* A window of T + 1 tokens starting at an example, wrapping around. */
static void window(const token_set *t, size_t start, uint32_t T, int32_t *out)
{
    for (uint32_t i = 0; i <= T; i++)
        out[i] = t->ids[(start + i) % t->n];
}

static int heldout_loss(aik_trainer *tr, const token_set *h, uint32_t T, double *ret, aik_error *err)
{
    size_t n = h->n_ex < HELDOUT_SEQS_MAX ? h->n_ex : HELDOUT_SEQS_MAX;
    int32_t *seqs;
    int r;

    *ret = 0;
    if (n == 0)
        return 0;
    seqs = malloc(n * (T + 1) * sizeof(*seqs));
    if (!seqs)
        return aik_fail(err, -ENOMEM, "distill", "out of memory");
    for (size_t i = 0; i < n; i++)
        window(h, h->ex[i].start, T, seqs + i * (T + 1));
    r = aik_trainer_eval(tr, seqs, n, ret, err);
    free(seqs);
    return r;
}

static int join(char **ret, const char *dir, const char *name)
{
    return asprintf(ret, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

static int file_digest(const char *path, uint8_t out[32], aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int r = aik_read_file(path, (size_t)1 << 32, &data, &len);
    if (r < 0)
        return aik_fail(err, r, path, "cannot read");
    aik_sha256_buf(data, len, out);
    free(data);
    return 0;
}

int aik_distill_package(const aik_kernel_capability *kc, const char *adapter_path, const char *sidecar_path,
                        const uint8_t cases_digest[32], double min_pass_rate, const aik_distill_data *data,
                        size_t n_data, const aik_signing_key *key, const char *out_dir, const char *manifest_store,
                        uint8_t ret_digest[32], aik_error *err)
{
    aik_adapter_module_spec sp = { 0 };
    uint8_t src_digest[32], base_digest[32];

    if (!kc || !kc->cap || !kc->cap_dir)
        return aik_fail(err, -ENOTSUP, kc ? kc->capability : "distill",
                        "is served by the base model itself; only a capability module can carry an adapter");
    aik_sha256_from_hex(kc->cap_digest, src_digest);
    aik_sha256_from_hex(kc->base_digest, base_digest);
    sp.source_dir = kc->cap_dir;
    sp.source_digest = src_digest;
    sp.base_digest = base_digest;
    sp.base_pkg = kc->base->pkg;
    sp.adapter_path = adapter_path;
    sp.sidecar_path = sidecar_path;
    sp.cases_digest = cases_digest;
    sp.min_pass_rate = min_pass_rate;
    sp.data = data;
    sp.n_data = n_data;
    sp.key = key;
    sp.out_dir = out_dir;
    sp.manifest_store = manifest_store;
    return aik_adapter_module_build(&sp, ret_digest, err);
}

int aik_distill_run(const aik_distill_config *cfg, aik_distill_report *ret_report, aik_error *err)
{
    aik_kernel_capability kc = { 0 };
    aik_distill_report rep = { 0 };
    strvec inputs = { 0 };
    aik_trajectories traj = { 0 };
    token_set train = { 0 }, held = { 0 };
    aik_trainer *tr = NULL;
    aik_adapter *adapter = NULL;
    aik_lora_ref *lora = NULL;
    aik_eval_cases *cases = NULL;
    aik_eval_outcome base_o = { 0 }, ad_o = { 0 };
    char *traj_path = NULL, *adapter_path = NULL, *sidecar_path = NULL, *jsonl = NULL;
    size_t jsonl_len = 0;
    uint8_t adapter_digest[32], traj_digest[32];
    aik_distill_data data[AIK_MANIFEST_MAX_DATA];
    size_t n_data = 0;
    int32_t *seqs = NULL;
    int r;

    if (!cfg || !ret_report || !cfg->capability || !cfg->kernel || !cfg->cases_file || !cfg->work_dir)
        return aik_fail(err, -EINVAL, "distill", "missing capability, kernel, eval cases or work directory");
    if (cfg->n_replay_logs > AIK_DISTILL_MAX_FILES || cfg->n_trajectory_files > AIK_DISTILL_MAX_FILES)
        return aik_fail(err, -E2BIG, "distill", "at most %d replay logs and %d trajectory files",
                        AIK_DISTILL_MAX_FILES, AIK_DISTILL_MAX_FILES);
    if (cfg->steps == 0 || cfg->rank == 0 || cfg->seq_len < 8 || cfg->batch == 0 || !(cfg->lr > 0) ||
        !(cfg->alpha > 0) || !(cfg->min_pass_rate > 0 && cfg->min_pass_rate <= 1))
        return aik_fail(err, -EINVAL, "distill", "steps, rank, batch, lr, alpha must be > 0, seq_len >= 8, "
                                                  "min_pass_rate in (0, 1]");
    /* Bad cases are refused before any work starts. */
    r = aik_eval_cases_load(cfg->cases_file, &cases, err);
    if (r < 0)
        return r;
    if (mkdir(cfg->work_dir, 0755) < 0 && errno != EEXIST) {
        r = aik_fail(err, -errno, cfg->work_dir, "cannot create the work directory");
        goto out;
    }
    if (join(&traj_path, cfg->work_dir, "trajectories.jsonl") < 0 ||
        join(&adapter_path, cfg->work_dir, AIK_DISTILL_ADAPTER_FILE) < 0 ||
        join(&sidecar_path, cfg->work_dir, AIK_DISTILL_SIDECAR_FILE) < 0) {
        r = aik_fail(err, -ENOMEM, "distill", "out of memory");
        goto out;
    }

    /* The verified modules that serve the capability today. */
    r = aik_kernel_capability_acquire(cfg->kernel, cfg->capability, &kc, err);
    if (r < 0)
        goto out;
    snprintf(rep.capability, sizeof(rep.capability), "%s", kc.capability);
    if (!kc.cap) {
        r = aik_fail(err, -ENOTSUP, kc.capability,
                     "is served by the base model itself; only a capability module can carry an adapter");
        goto out;
    }

    /* 1. inputs */
    for (size_t i = 0; i < cfg->n_replay_logs; i++) {
        replay_ctx rc = { .k = cfg->kernel, .capability = kc.capability, .inputs = &inputs, .err = err };
        aik_replay_scan_result sr;
        r = aik_replay_scan_file(cfg->replay_logs[i], on_record, &rc, &sr, err);
        if (rc.error < 0) {
            r = rc.error;
            goto out;
        }
        if (r < 0)
            goto out;
        rep.replay_records += rc.records;
        rep.replay_used += rc.used;
        rep.replay_damaged |= sr.damaged;
        if (n_data < AIK_MANIFEST_MAX_DATA - 2) {
            data[n_data].role = "replay-log";
            if ((r = file_digest(cfg->replay_logs[i], data[n_data].sha256, err)) < 0)
                goto out;
            n_data++;
        }
    }
    if (cfg->inputs_file && (r = read_inputs_file(cfg->inputs_file, &inputs, err)) < 0)
        goto out;
    strvec_unique(&inputs);
    rep.inputs = inputs.n;

    /* 2. teacher trajectories */
    for (size_t i = 0; i < cfg->n_trajectory_files; i++) {
        aik_trajectories all = { 0 };
        r = aik_trajectories_load(&all, cfg->trajectory_files[i], NULL, err);
        for (size_t j = 0; r == 0 && j < all.n; j++)
            if (strcmp(all.v[j].capability, kc.capability) == 0)
                r = aik_trajectories_add(&traj, all.v[j].capability, all.v[j].input, all.v[j].output,
                                         all.v[j].source, err);
        aik_trajectories_clear(&all);
        if (r < 0)
            goto out;
    }
    if (cfg->teacher && inputs.n) {
        aik_teacher_stats ts;
        r = aik_trajectories_from_teacher(&traj, cfg->teacher, kc.cap, kc.capability, (const char *const *)inputs.v,
                                          inputs.n, cfg->n_threads, &ts, err);
        if (r < 0)
            goto out;
        rep.teacher_generated = ts.generated;
        rep.teacher_refused = ts.refused;
    }
    rep.trajectories = traj.n;
    if (traj.n == 0) {
        if (cfg->teacher && inputs.n)
            r = aik_fail(err, -ENODATA, kc.capability,
                         "no trajectories: the teacher gave no usable answer for %zu inputs (%zu refused)", inputs.n,
                         rep.teacher_refused);
        else
            r = aik_fail(err, -ENODATA, kc.capability,
                         inputs.n ? "%zu inputs but no teacher and no trajectories for them"
                                  : "no trajectories: give a replay log or inputs with a teacher, or trajectory files",
                         inputs.n);
        goto out;
    }
    /* The exact training data, kept beside the adapter; its digest goes
     * into the module's lineage. */
    r = aik_trajectories_to_jsonl(&traj, &jsonl, &jsonl_len, err);
    if (r < 0)
        goto out;
    if ((r = aik_write_file_atomic(traj_path, jsonl, jsonl_len, 0600)) < 0) {
        aik_fail(err, r, traj_path, "cannot write");
        goto out;
    }
    aik_sha256_buf(jsonl, jsonl_len, traj_digest);
    data[n_data].role = "trajectories";
    memcpy(data[n_data].sha256, traj_digest, 32);
    n_data++;

    /* 3. train: shuffle (seeded), hold out a tenth, LoRA over the base. */
    {
        uint64_t rng = cfg->seed ^ 0x9e3779b97f4a7c15ull;
        size_t *order = malloc(traj.n * sizeof(*order)), n_held;
        if (!order) {
            r = aik_fail(err, -ENOMEM, "distill", "out of memory");
            goto out;
        }
        for (size_t i = 0; i < traj.n; i++)
            order[i] = i;
        for (size_t i = traj.n; i > 1; i--) {
            size_t j = (size_t)(aik_splitmix64(&rng) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        n_held = traj.n >= 20 ? traj.n / 10 : 0;
        for (size_t i = 0; i < traj.n; i++) {
            aik_error e;
            token_set *dst = i < n_held ? &held : &train;
            r = encode_example(kc.base->tok, kc.cap, &traj.v[order[i]], dst, &e);
            if (r == -EINVAL || r == -E2BIG) {
                r = 0; /* an input the capability refuses teaches nothing */
                continue;
            }
            if (r < 0) {
                *err = e;
                break;
            }
        }
        free(order);
        if (r < 0)
            goto out;
    }
    rep.train_examples = train.n_ex;
    rep.heldout_examples = held.n_ex;
    if (train.n_ex == 0) {
        r = aik_fail(err, -ENODATA, kc.capability, "the capability refused every trajectory's input");
        goto out;
    }
    {
        aik_train_config tc;
        aik_train_stats st;
        struct timespec t0, t1;
        uint64_t rng = cfg->seed;
        uint32_t T = cfg->seq_len;

        aik_train_config_default(&tc);
        tc.mode = AIK_TRAIN_LORA;
        tc.seq_len = T;
        tc.micro_batches = cfg->batch;
        tc.steps = cfg->steps;
        tc.warmup_steps = cfg->steps / 10;
        tc.lr = cfg->lr;
        tc.min_lr = cfg->lr / 10;
        tc.weight_decay = 0.0f;
        tc.seed = cfg->seed;
        tc.n_threads = cfg->n_threads;
        tc.lora_rank = cfg->rank;
        tc.lora_alpha = cfg->alpha;
        if (cfg->targets && cfg->n_targets) {
            tc.lora_targets = cfg->targets;
            tc.n_lora_targets = cfg->n_targets;
        }
        r = aik_trainer_new(kc.base, &tc, &tr, err);
        if (r < 0)
            goto out;
        r = heldout_loss(tr, &held, T, &rep.heldout_loss_before, err);
        if (r < 0)
            goto out;
        seqs = malloc((size_t)cfg->batch * (T + 1) * sizeof(*seqs));
        if (!seqs) {
            r = aik_fail(err, -ENOMEM, "distill", "out of memory");
            goto out;
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (uint32_t s = 0; s < cfg->steps; s++) {
            for (uint32_t b = 0; b < cfg->batch; b++) {
                const example *e = &train.ex[aik_splitmix64(&rng) % train.n_ex];
                window(&train, e->start, T, seqs + (size_t)b * (T + 1));
            }
            r = aik_trainer_step(tr, seqs, &st, err);
            if (r < 0)
                goto out;
            if (cfg->on_step)
                cfg->on_step(cfg->user, s + 1, cfg->steps, st.loss);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        rep.train_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        r = heldout_loss(tr, &held, T, &rep.heldout_loss_after, err);
        if (r < 0)
            goto out;
        r = aik_trainer_write_alr1(tr, kc.base->pkg, adapter_path, err);
        if (r < 0)
            goto out;
    }

    /* 4. evaluate the file that was written, as the kernel will serve it */
    r = aik_adapter_load(adapter_path, &adapter, adapter_digest, err);
    if (r < 0)
        goto out;
    aik_sha256_hex(adapter_digest, rep.adapter_digest);
    lora = calloc(adapter->n_tensors, sizeof(*lora));
    if (!lora) {
        r = aik_fail(err, -ENOMEM, "distill", "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < adapter->n_tensors; i++) {
        const aik_adapter_tensor *t = &adapter->tensors[i];
        lora[i] = (aik_lora_ref){ t->name, t->rank, t->alpha / (float)t->rank, t->A, t->B };
    }
    {
        /* The baseline is what serves the capability today (its current
         * adapter, if any). */
        aik_eval_config bc = { .n_threads = cfg->n_threads, .cap = kc.cap, .lora = kc.lora, .n_lora = kc.n_lora };
        aik_eval_config ac = { .n_threads = cfg->n_threads, .cap = kc.cap, .lora = lora, .n_lora = adapter->n_tensors };
        aik_eval_sidecar sc = { 0 };

        r = aik_eval_run(kc.base, cases, &bc, &base_o, err);
        if (r == 0)
            r = aik_eval_run(kc.base, cases, &ac, &ad_o, err);
        if (r < 0)
            goto out;
        rep.base_passed = base_o.passed;
        rep.base_failed = base_o.failed;
        rep.adapter_passed = ad_o.passed;
        rep.adapter_failed = ad_o.failed;
        rep.pass = aik_eval_decide(ad_o.passed, ad_o.failed, cfg->min_pass_rate);
        aik_sha256_hex(kc.base->pkg->hdr.model_checksum, sc.model_digest);
        sc.has_adapter = true;
        memcpy(sc.adapter_digest, rep.adapter_digest, sizeof(sc.adapter_digest));
        snprintf(sc.source_kind, sizeof(sc.source_kind), "adapter:lowrank");
        snprintf(sc.evaluator_id, sizeof(sc.evaluator_id), "%s",
                 cfg->evaluator_id ? cfg->evaluator_id : "aikctl-distill");
        aik_sha256_hex(cases->digest, sc.eval_cases_digest);
        snprintf(sc.evaluation_scope, sizeof(sc.evaluation_scope), "capability:%s", kc.capability);
        sc.cases_passed = ad_o.passed;
        sc.cases_failed = ad_o.failed;
        sc.pass = rep.pass;
        aik_eval_utc_now(sc.generated_at_utc);
        r = aik_eval_sidecar_write(&sc, sidecar_path, err);
        if (r < 0)
            goto out;
    }

    /* 5. package only what passed and does not regress */
    if (!rep.pass) {
        snprintf(rep.reason, sizeof(rep.reason), "the evaluation decided \"fail\" (%llu of %llu passed, needed %.0f%%)",
                 (unsigned long long)ad_o.passed, (unsigned long long)(ad_o.passed + ad_o.failed),
                 cfg->min_pass_rate * 100);
    } else if (ad_o.passed < base_o.passed) {
        snprintf(rep.reason, sizeof(rep.reason), "the adapter passes fewer cases (%llu) than what serves today (%llu)",
                 (unsigned long long)ad_o.passed, (unsigned long long)base_o.passed);
    } else if (!cfg->out_module || !cfg->key) {
        snprintf(rep.reason, sizeof(rep.reason), "no output module or evolution key given");
    } else {
        uint8_t mod_digest[32];
        r = aik_distill_package(&kc, adapter_path, sidecar_path, cases->digest, cfg->min_pass_rate, data, n_data,
                                cfg->key, cfg->out_module, cfg->manifest_store, mod_digest, err);
        if (r < 0)
            goto out;
        aik_sha256_hex(mod_digest, rep.module_digest);
        rep.packaged = true;
    }
    *ret_report = rep;
    r = 0;
out:
    aik_kernel_capability_release(cfg->kernel, &kc);
    aik_eval_outcome_clear(&base_o);
    aik_eval_outcome_clear(&ad_o);
    aik_eval_cases_free(cases);
    aik_trainer_free(tr);
    aik_adapter_free(adapter);
    free(lora);
    free(seqs);
    free(train.ids);
    free(train.ex);
    free(held.ids);
    free(held.ex);
    free(jsonl);
    free(traj_path);
    free(adapter_path);
    free(sidecar_path);
    aik_trajectories_clear(&traj);
    strvec_free(&inputs);
    return r;
}
