/* SPDX-License-Identifier: MIT */
/*
 * aikctl eval PKG [--adapter A] CASES -o SIDECAR.json [options]
 *   run each eval case greedily, write an EvalSidecar (runtime/eval.h)
 * aikctl eval PKG [--adapter A] CASES --check SIDECAR.json
 *   check that a sidecar names exactly these artifacts
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/adapter.h"
#include "runtime/adapter_merge.h"
#include "runtime/eval.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aikctl eval PKG [--adapter A] CASES.jsonl -o SIDECAR.json [options]\n"
            "       aikctl eval PKG [--adapter A] CASES.jsonl --check SIDECAR.json\n"
            "  -a, --adapter FILE       merge this ADP1/ASP1/ALR1 adapter into PKG first\n"
            "  -o, --output FILE        sidecar to write\n"
            "      --check FILE         verify a sidecar against PKG, the adapter and CASES instead\n"
            "                           (with --min-pass-rate, also that its decision follows)\n"
            "      --min-pass-rate R    decision is pass when passed/total >= R (default 1: all)\n"
            "  -n, --n-predict N        tokens per case (default 64)\n"
            "  -t, --threads N          threads (default: all cores)\n"
            "      --evaluator-id S     (default \"aikctl-eval/<version> greedy n_predict=N\")\n"
            "      --scope S            evaluation_scope (default \"full\")\n"
            "  -v, --verbose            print each case's output and result\n"
            "exit status: 0 decision pass, 3 decision fail (sidecar written), 1 error, 2 usage\n");
}

int aikctl_cmd_eval(int argc, char **argv)
{
    enum { O_CHECK = 256, O_RATE, O_EVALID, O_SCOPE };
    static const struct option opts[] = {
        { "adapter", required_argument, 0, 'a' }, { "output", required_argument, 0, 'o' },
        { "check", required_argument, 0, O_CHECK }, { "min-pass-rate", required_argument, 0, O_RATE },
        { "n-predict", required_argument, 0, 'n' }, { "threads", required_argument, 0, 't' },
        { "evaluator-id", required_argument, 0, O_EVALID }, { "scope", required_argument, 0, O_SCOPE },
        { "verbose", no_argument, 0, 'v' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *adapter_path = NULL, *out = NULL, *check = NULL, *evalid = NULL, *scope = "full";
    double rate = 1.0;
    bool rate_given = false;
    aik_eval_config cfg = { 0 };
    int c, rc = 1, verbose = 0;
    aik_slm *pkg = NULL;
    aik_adapter *ad = NULL;
    aik_eval_cases *cases = NULL;
    aik_model *m = NULL;
    aik_eval_outcome o = { 0 };
    aik_eval_sidecar sc;
    uint8_t adigest[32];
    char *tmpdir = NULL, *tmppkg = NULL, *text = NULL;
    size_t text_len;
    aik_error err;

    optind = 1;
    while ((c = getopt_long(argc, argv, "a:o:n:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'a': adapter_path = optarg; break;
        case 'o': out = optarg; break;
        case O_CHECK: check = optarg; break;
        case O_RATE: {
            char *end;
            rate = strtod(optarg, &end);
            rate_given = true;
            if (*end || !(rate >= 0.0 && rate <= 1.0)) {
                fprintf(stderr, "aikctl eval: --min-pass-rate must be a number in [0, 1]\n");
                return 2;
            }
            break;
        }
        case 'n': cfg.n_predict = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': cfg.n_threads = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_EVALID: evalid = optarg; break;
        case O_SCOPE: scope = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 2 || (!out == !check)) {
        usage(stderr);
        return 2;
    }
    if (aik_slm_open(argv[optind], AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err) < 0) {
        aik_error_prefix(&err, argv[optind]);
        aikctl_print_error("eval", &err);
        return 1;
    }
    if (adapter_path && aik_adapter_load(adapter_path, &ad, adigest, &err) < 0) {
        aikctl_print_error("eval", &err);
        goto out;
    }
    if (aik_eval_cases_load(argv[optind + 1], &cases, &err) < 0) {
        aikctl_print_error("eval", &err);
        goto out;
    }

    if (check) {
        int r = aik_read_file(check, AIK_EVAL_MAX_SIDECAR_SIZE, &text, &text_len);
        if (r < 0) {
            aikctl_print_errno(check, r);
            goto out;
        }
        if (aik_eval_sidecar_parse(text, text_len, &sc, &err) < 0 ||
            aik_eval_sidecar_check(&sc, pkg->hdr.model_checksum, ad ? adigest : NULL, cases->digest,
                                   rate_given ? rate : -1.0, &err) < 0) {
            aik_error_prefix(&err, check);
            aikctl_print_error("eval --check", &err);
            goto out;
        }
        printf("%s: names this package, %s and these cases; decision %s (%llu passed, %llu failed)\n", check,
               ad ? "this adapter" : "no adapter", sc.pass ? "pass" : "fail",
               (unsigned long long)sc.cases_passed, (unsigned long long)sc.cases_failed);
        rc = 0;
        goto out;
    }

    if (ad) {
        /* Merge into a temporary package; the sidecar still names the base
         * package and the adapter file, the artifacts a release ships. */
        const aik_adapter *list[1] = { ad };
        const char *base = getenv("TMPDIR");
        if (asprintf(&tmpdir, "%s/aikeval.XXXXXX", base && *base ? base : "/tmp") < 0) {
            tmpdir = NULL; /* asprintf leaves it undefined on failure */
            aikctl_print_errno("eval", -ENOMEM);
            goto out;
        }
        if (!mkdtemp(tmpdir)) {
            aikctl_print_errno("eval: temporary directory", -errno);
            free(tmpdir);
            tmpdir = NULL;
            goto out;
        }
        if (asprintf(&tmppkg, "%s/merged.slm", tmpdir) < 0) {
            tmppkg = NULL;
            aikctl_print_errno("eval", -ENOMEM);
            goto out;
        }
        if (aik_adapter_merge(pkg, list, 1, tmppkg, &err) < 0) {
            aikctl_print_error("eval: merge", &err);
            goto out;
        }
    }
    if (aik_model_open(tmppkg ? tmppkg : argv[optind], 0, NULL, &m, &err) < 0) {
        aikctl_print_error("eval", &err);
        goto out;
    }
    if (aik_eval_run(m, cases, &cfg, &o, &err) < 0) {
        aikctl_print_error("eval", &err);
        goto out;
    }
    if (verbose)
        for (size_t i = 0; i < o.n; i++)
            fprintf(stderr, "line %u: %s: %s\n", cases->cases[i].line, o.case_passed[i] ? "pass" : "FAIL",
                    o.outputs[i]);

    memset(&sc, 0, sizeof(sc));
    aik_sha256_hex(pkg->hdr.model_checksum, sc.model_digest);
    sc.has_adapter = ad != NULL;
    if (ad)
        aik_sha256_hex(adigest, sc.adapter_digest);
    snprintf(sc.source_kind, sizeof(sc.source_kind), "%s%s", ad ? "adapter:" : "package",
             ad ? aik_adapter_kind_name(ad->kind) : "");
    if (evalid)
        snprintf(sc.evaluator_id, sizeof(sc.evaluator_id), "%s", evalid);
    else
        snprintf(sc.evaluator_id, sizeof(sc.evaluator_id), "aikctl-eval/%d.%d greedy n_predict=%u",
                 AIK_VERSION_MAJOR, AIK_VERSION_MINOR, cfg.n_predict ? cfg.n_predict : 64);
    aik_sha256_hex(cases->digest, sc.eval_cases_digest);
    snprintf(sc.evaluation_scope, sizeof(sc.evaluation_scope), "%s", scope);
    sc.cases_passed = o.passed;
    sc.cases_failed = o.failed;
    sc.pass = aik_eval_decide(o.passed, o.failed, rate);
    aik_eval_utc_now(sc.generated_at_utc);
    if (!sc.evaluator_id[0] || !sc.evaluation_scope[0]) {
        fprintf(stderr, "aikctl eval: --evaluator-id and --scope must not be empty\n");
        goto out;
    }
    if (aik_eval_sidecar_write(&sc, out, &err) < 0) {
        aikctl_print_error("eval", &err);
        goto out;
    }
    printf("%s: %llu passed, %llu failed, decision %s\n", out, (unsigned long long)o.passed,
           (unsigned long long)o.failed, sc.pass ? "pass" : "fail");
    rc = sc.pass ? 0 : 3;
out:
    aik_eval_outcome_clear(&o);
    aik_model_free(m);
    aik_eval_cases_free(cases);
    aik_adapter_free(ad);
    aik_slm_close(pkg);
    if (tmppkg)
        unlink(tmppkg);
    if (tmpdir)
        rmdir(tmpdir);
    free(tmppkg);
    free(tmpdir);
    free(text);
    return rc;
}
