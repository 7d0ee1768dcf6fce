/* SPDX-License-Identifier: MIT */
/*
 * aikctl distill --capability ID ...: the differential distillation pipeline
 * (distill/pipeline.h) from the command line, and --package-only, which
 * turns an adapter that was already evaluated (its sidecar in hand) into the
 * signed derived module without training again (the store build uses it).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "distill/package.h"
#include "distill/pipeline.h"
#include "distill/trajectories.h"
#include "loader/module.h"
#include "runtime/eval.h"
#include "runtime/kernel_internal.h"
#include "runtime/model.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aikctl distill --capability ID --cases CASES.jsonl --work DIR [data] [options]\n"
            "       aikctl distill --capability ID --cases CASES.jsonl --package-only --adapter A.alr1\n"
            "                      --sidecar S.json --key EVO.key --out MODULE_DIR [options]\n"
            "data (at least one source of trajectories):\n"
            "  --replay-log FILE     served requests to learn from (repeatable, up to 4)\n"
            "  --inputs FILE         curated inputs, one per line\n"
            "  --teacher PKG         teacher package run over the inputs\n"
            "  --trajectories FILE   recorded teacher trajectories (JSONL, repeatable, up to 4)\n"
            "output:\n"
            "  --out DIR             write the signed adapter module here when the eval passes\n"
            "  --key FILE            evolution signing key (PEM)\n"
            "  --manifest-store DIR  also file the new manifest here (lineage of later derivations)\n"
            "  --data ROLE=FILE|HEX  --package-only: lineage digest of the data it was made from (repeatable)\n"
            "options:\n"
            "  --store DIR --trust DIR --developer   the module and trust stores (defaults as aikctl run)\n"
            "  --steps N (300) --rank R (8) --alpha A (16) --lr LR (2e-3) --seq-len N (64) --batch N (8)\n"
            "  --seed S (1) --threads N --min-pass-rate P (0.5) --evaluator ID\n"
            "  --targets LIST        LoRA targets, comma-separated weight suffixes\n"
            "                        (default attn_q.weight,attn_k.weight,attn_v.weight,attn_output.weight)\n");
}

static void on_step(void *user, uint32_t step, uint32_t steps, double loss)
{
    (void)user;
    if (step == steps || step % 10 == 0)
        fprintf(stderr, "\rtrain step %u/%u  loss %.4f", step, steps, loss);
    if (step == steps)
        fputc('\n', stderr);
}

static int package_only(aik_kernel *k, const aik_distill_config *c, const char *adapter, const char *sidecar,
                        const char *out, const aik_distill_data *data, size_t n_data)
{
    aik_kernel_capability kc = { 0 };
    aik_eval_cases *cases = NULL;
    uint8_t digest[32];
    char hex[65];
    aik_error err;
    int rc = 1;

    if (aik_eval_cases_load(c->cases_file, &cases, &err) < 0) {
        aikctl_print_error("distill: cases", &err);
        return 1;
    }
    if (aik_kernel_capability_acquire(k, c->capability, &kc, &err) < 0) {
        aikctl_print_error("distill", &err);
        goto out;
    }
    if (aik_distill_package(&kc, adapter, sidecar, cases->digest, c->min_pass_rate, data, n_data, c->key, out,
                            c->manifest_store, digest, &err) < 0) {
        aikctl_print_error("distill: package", &err);
        goto out;
    }
    aik_sha256_hex(digest, hex);
    printf("packaged %s -> %s\nmanifest digest: %s\n", kc.capability, out, hex);
    rc = 0;
out:
    aik_kernel_capability_release(k, &kc);
    aik_eval_cases_free(cases);
    return rc;
}

/* --data ROLE=X: X is a digest (64 hex) or a file to hash. */
static int data_digest(const char *x, uint8_t out[32])
{
    char *data = NULL;
    size_t len = 0;
    if (strlen(x) == 64 && aik_sha256_from_hex(x, out) == 0)
        return 0;
    if (aik_read_file(x, AIK_TRAJ_MAX_FILE_SIZE, &data, &len) < 0)
        return -ENOENT;
    aik_sha256_buf(data, len, out);
    free(data);
    return 0;
}

enum {
    O_CAP = 256, O_CASES, O_WORK, O_REPLAY, O_INPUTS, O_TEACHER, O_TRAJ, O_OUT, O_KEY, O_MSTORE, O_STORE, O_TRUST,
    O_DEV, O_STEPS, O_RANK, O_ALPHA, O_LR, O_SEQ, O_BATCH, O_SEED, O_THREADS, O_RATE, O_EVAL_ID, O_PKG_ONLY,
    O_ADAPTER, O_SIDECAR, O_DATA, O_TARGETS,
};

int aikctl_cmd_distill(int argc, char **argv)
{
    static const struct option opts[] = {
        { "capability", required_argument, NULL, O_CAP }, { "cases", required_argument, NULL, O_CASES },
        { "work", required_argument, NULL, O_WORK },      { "replay-log", required_argument, NULL, O_REPLAY },
        { "inputs", required_argument, NULL, O_INPUTS },  { "teacher", required_argument, NULL, O_TEACHER },
        { "trajectories", required_argument, NULL, O_TRAJ }, { "out", required_argument, NULL, O_OUT },
        { "key", required_argument, NULL, O_KEY },        { "manifest-store", required_argument, NULL, O_MSTORE },
        { "store", required_argument, NULL, O_STORE },    { "trust", required_argument, NULL, O_TRUST },
        { "developer", no_argument, NULL, O_DEV },        { "steps", required_argument, NULL, O_STEPS },
        { "rank", required_argument, NULL, O_RANK },      { "alpha", required_argument, NULL, O_ALPHA },
        { "lr", required_argument, NULL, O_LR },          { "seq-len", required_argument, NULL, O_SEQ },
        { "batch", required_argument, NULL, O_BATCH },    { "seed", required_argument, NULL, O_SEED },
        { "threads", required_argument, NULL, O_THREADS }, { "min-pass-rate", required_argument, NULL, O_RATE },
        { "evaluator", required_argument, NULL, O_EVAL_ID }, { "package-only", no_argument, NULL, O_PKG_ONLY },
        { "adapter", required_argument, NULL, O_ADAPTER }, { "sidecar", required_argument, NULL, O_SIDECAR },
        { "data", required_argument, NULL, O_DATA },      { "targets", required_argument, NULL, O_TARGETS },
        { "help", no_argument, NULL, 'h' },               { 0 },
    };
    aik_kernel_config kc = { .struct_size = sizeof(kc) };
    aik_distill_config c;
    aik_distill_report rep;
    aik_kernel *k = NULL;
    aik_model *teacher = NULL;
    aik_signing_key *key = NULL;
    const char *teacher_path = NULL, *key_path = NULL, *adapter = NULL, *sidecar = NULL;
    bool pkg_only = false;
    aik_distill_data data[AIK_MANIFEST_MAX_DATA - 1];
    char roles[AIK_MANIFEST_MAX_DATA - 1][AIK_MANIFEST_ROLE_MAX];
    size_t n_data = 0;
    char *targets_buf = NULL;
    const char *targets[16];
    aik_error err;
    int o, rc = 1;

    aik_distill_config_default(&c);
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_CAP: c.capability = optarg; break;
        case O_CASES: c.cases_file = optarg; break;
        case O_WORK: c.work_dir = optarg; break;
        case O_REPLAY:
            if (c.n_replay_logs == AIK_DISTILL_MAX_FILES) {
                fprintf(stderr, "aikctl: distill: at most %d replay logs\n", AIK_DISTILL_MAX_FILES);
                return 2;
            }
            c.replay_logs[c.n_replay_logs++] = optarg;
            break;
        case O_INPUTS: c.inputs_file = optarg; break;
        case O_TEACHER: teacher_path = optarg; break;
        case O_TRAJ:
            if (c.n_trajectory_files == AIK_DISTILL_MAX_FILES) {
                fprintf(stderr, "aikctl: distill: at most %d trajectory files\n", AIK_DISTILL_MAX_FILES);
                return 2;
            }
            c.trajectory_files[c.n_trajectory_files++] = optarg;
            break;
        case O_OUT: c.out_module = optarg; break;
        case O_KEY: key_path = optarg; break;
        case O_MSTORE: c.manifest_store = optarg; break;
        case O_STORE: kc.module_store = optarg; break;
        case O_TRUST: kc.trust_store = optarg; break;
        case O_DEV: kc.developer_mode = true; break;
        case O_STEPS: c.steps = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_RANK: c.rank = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_ALPHA: c.alpha = strtof(optarg, NULL); break;
        case O_LR: c.lr = strtof(optarg, NULL); break;
        case O_SEQ: c.seq_len = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_BATCH: c.batch = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_SEED: c.seed = strtoull(optarg, NULL, 10); break;
        case O_THREADS: c.n_threads = (uint32_t)strtoul(optarg, NULL, 10); kc.n_threads = c.n_threads; break;
        case O_RATE: c.min_pass_rate = strtod(optarg, NULL); break;
        case O_EVAL_ID: c.evaluator_id = optarg; break;
        case O_PKG_ONLY: pkg_only = true; break;
        case O_TARGETS: {
            free(targets_buf);
            targets_buf = strdup(optarg);
            c.n_targets = 0;
            for (char *save = NULL, *t = strtok_r(targets_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (c.n_targets == 16) {
                    fprintf(stderr, "aikctl: distill: --targets: at most 16\n");
                    free(targets_buf);
                    return 2;
                }
                targets[c.n_targets++] = t;
            }
            c.targets = targets;
            break;
        }
        case O_ADAPTER: adapter = optarg; break;
        case O_SIDECAR: sidecar = optarg; break;
        case O_DATA: {
            const char *eq = strchr(optarg, '=');
            if (n_data == AIK_MANIFEST_MAX_DATA - 1 || !eq || eq == optarg ||
                (size_t)(eq - optarg) >= AIK_MANIFEST_ROLE_MAX || data_digest(eq + 1, data[n_data].sha256) < 0) {
                fprintf(stderr, "aikctl: distill: --data %s: expected ROLE=FILE or ROLE=<64 hex> (at most %d)\n",
                        optarg, AIK_MANIFEST_MAX_DATA - 1);
                return 2;
            }
            snprintf(roles[n_data], sizeof(roles[n_data]), "%.*s", (int)(eq - optarg), optarg);
            data[n_data].role = roles[n_data];
            n_data++;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !c.capability || !c.cases_file || (!pkg_only && !c.work_dir) ||
        (pkg_only && (!adapter || !sidecar || !c.out_module || !key_path)) || (c.out_module && !key_path)) {
        usage(stderr);
        return 2;
    }
    if (key_path && aik_signing_key_load(key_path, &key, &err) < 0) {
        aikctl_print_error("distill: --key", &err);
        return 1;
    }
    c.key = key;
    if (teacher_path && aik_model_open(teacher_path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &teacher, &err) < 0) {
        aikctl_print_error("distill: --teacher", &err);
        goto out;
    }
    c.teacher = teacher;
    if (aik_kernel_open(&kc, &k, &err) < 0) {
        aikctl_print_error("distill: kernel", &err);
        goto out;
    }
    c.kernel = k;
    if (pkg_only) {
        rc = package_only(k, &c, adapter, sidecar, c.out_module, data, n_data);
        goto out;
    }
    c.on_step = on_step;
    if (aik_distill_run(&c, &rep, &err) < 0) {
        fputc('\n', stderr);
        aikctl_print_error("distill", &err);
        goto out;
    }
    printf("capability:     %s\n", rep.capability);
    printf("replay:         %llu records, %llu for this capability%s\n", (unsigned long long)rep.replay_records,
           (unsigned long long)rep.replay_used, rep.replay_damaged ? " (a log is damaged: records after it ignored)" : "");
    printf("inputs:         %zu distinct; teacher answered %zu, refused %zu\n", rep.inputs, rep.teacher_generated,
           rep.teacher_refused);
    printf("trajectories:   %zu (train %zu, held out %zu) -> %s/trajectories.jsonl\n", rep.trajectories,
           rep.train_examples, rep.heldout_examples, c.work_dir);
    printf("held-out loss:  %.4f -> %.4f nats/token (%.1f s training)\n", rep.heldout_loss_before,
           rep.heldout_loss_after, rep.train_seconds);
    printf("eval:           serving today %llu/%llu, with the adapter %llu/%llu -> %s\n",
           (unsigned long long)rep.base_passed, (unsigned long long)(rep.base_passed + rep.base_failed),
           (unsigned long long)rep.adapter_passed, (unsigned long long)(rep.adapter_passed + rep.adapter_failed),
           rep.pass ? "pass" : "fail");
    printf("adapter:        %s/%s sha256:%s\n", c.work_dir, AIK_DISTILL_ADAPTER_FILE, rep.adapter_digest);
    if (rep.packaged) {
        printf("module:         %s (manifest %s)\n", c.out_module, rep.module_digest);
        rc = 0;
    } else {
        printf("not packaged:   %s\n", rep.reason);
        rc = 3; /* ran to a decision, but produced no module */
    }
out:
    aik_kernel_close(k);
    aik_model_free(teacher);
    aik_signing_key_free(key);
    free(targets_buf);
    return rc;
}
