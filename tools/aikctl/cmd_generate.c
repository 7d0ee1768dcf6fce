/* SPDX-License-Identifier: MIT */
/* aikctl generate PKG -p TEXT [...]: stream a completion to stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/generate.h"
#include "tools/aikctl/aikctl.h"

static int print_text(void *user, const char *text, size_t len)
{
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: aikctl generate PKG -p TEXT [options]\n"
            "  -p, --prompt TEXT        prompt text\n"
            "  -n, --n-predict N        tokens to generate (default 128)\n"
            "  -s, --seed S             RNG seed (default 0)\n"
            "      --temp T             temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K            (default 40, 0 = off)\n"
            "      --top-p P            (default 0.95, 1 = off)\n"
            "      --min-p P            (default 0.05, 0 = off)\n"
            "      --repeat-penalty R   (default 1 = off)\n"
            "      --repeat-last-n N    (default 64)\n"
            "      --stop STR           stop string (repeatable)\n"
            "      --ignore-eos         keep going past the end-of-sequence token\n"
            "      --no-special         do not add BOS/EOS to the prompt\n"
            "      --truncate           drop the start of a prompt that does not fit (default: refuse)\n"
            "  -c, --ctx N              context length (default: the model's)\n"
            "  -t, --threads N          threads (default: all cores)\n"
            "      --verify             verify the package's checksums before running\n"
            "      --no-stats           do not print timings to stderr\n");
}

int aikctl_cmd_generate(int argc, char **argv)
{
    enum { O_TEMP = 256, O_TOPK, O_TOPP, O_MINP, O_REP, O_REPN, O_STOP, O_IGNEOS, O_NOSPECIAL, O_TRUNC, O_VERIFY,
           O_NOSTATS };
    static const struct option opts[] = {
        { "prompt", required_argument, 0, 'p' },   { "n-predict", required_argument, 0, 'n' },
        { "seed", required_argument, 0, 's' },     { "temp", required_argument, 0, O_TEMP },
        { "top-k", required_argument, 0, O_TOPK }, { "top-p", required_argument, 0, O_TOPP },
        { "min-p", required_argument, 0, O_MINP }, { "repeat-penalty", required_argument, 0, O_REP },
        { "repeat-last-n", required_argument, 0, O_REPN }, { "stop", required_argument, 0, O_STOP },
        { "ignore-eos", no_argument, 0, O_IGNEOS }, { "no-special", no_argument, 0, O_NOSPECIAL },
        { "truncate", no_argument, 0, O_TRUNC },   { "ctx", required_argument, 0, 'c' },
        { "threads", required_argument, 0, 't' }, { "verify", no_argument, 0, O_VERIFY },
        { "no-stats", no_argument, 0, O_NOSTATS }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    aik_generate_params gp;
    aik_session_config sc = { 0 };
    const char *prompt = NULL, *stops[16];
    size_t n_stops = 0;
    unsigned slm_flags = 0;
    int stats = 1, c, rc = 1;
    aik_model *m = NULL;
    aik_session *s = NULL;
    aik_generate_result res = { 0 };
    aik_error err;

    aik_generate_params_default(&gp);
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:n:s:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': prompt = optarg; break;
        case 'n': gp.n_predict = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': gp.sampling.seed = strtoull(optarg, NULL, 10); break;
        case O_TEMP: gp.sampling.temperature = strtof(optarg, NULL); break;
        case O_TOPK: gp.sampling.top_k = (int32_t)strtol(optarg, NULL, 10); break;
        case O_TOPP: gp.sampling.top_p = strtof(optarg, NULL); break;
        case O_MINP: gp.sampling.min_p = strtof(optarg, NULL); break;
        case O_REP: gp.sampling.repeat_penalty = strtof(optarg, NULL); break;
        case O_REPN: gp.sampling.repeat_last_n = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_STOP:
            if (n_stops == sizeof(stops) / sizeof(stops[0])) {
                fprintf(stderr, "aikctl generate: at most 16 --stop strings\n");
                return 2;
            }
            stops[n_stops++] = optarg;
            break;
        case O_IGNEOS: gp.ignore_eos = true; break;
        case O_NOSPECIAL: gp.tokenize_flags = 0; break;
        case O_TRUNC: gp.prompt_policy = AIK_PROMPT_TRUNCATE; break;
        case 'c': sc.ctx_len = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': sc.n_threads = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_VERIFY: slm_flags |= AIK_SLM_VERIFY_CHECKSUMS; break;
        case O_NOSTATS: stats = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc || !prompt) {
        usage(stderr);
        return 2;
    }
    gp.stop_strings = stops;
    gp.n_stop_strings = n_stops;
    gp.on_text = print_text;

    if (aik_model_open(argv[optind], slm_flags, NULL, &m, &err) < 0) {
        aikctl_print_error(argv[optind], &err);
        return 1;
    }
    if (aik_session_new(m, &sc, &s, &err) < 0) {
        aikctl_print_error("session", &err);
        goto out;
    }
    fputs(prompt, stdout);
    fflush(stdout);
    if (aik_generate(s, prompt, strlen(prompt), &gp, &res, &err) < 0) {
        fputc('\n', stdout);
        aikctl_print_error("generate", &err);
        goto out;
    }
    fputc('\n', stdout);
    if (stats)
        fprintf(stderr,
                "\nprompt: %u tokens in %.1f ms (%.1f t/s)%s | generated: %zu tokens in %.1f ms (%.1f t/s) | stop: %s\n",
                res.n_prompt, res.prompt_ms, res.prompt_ms > 0 ? res.n_prompt * 1e3 / res.prompt_ms : 0.0,
                res.n_prompt_dropped ? " (start truncated)" : "", res.n_tokens, res.gen_ms,
                res.gen_ms > 0 ? res.n_tokens * 1e3 / res.gen_ms : 0.0, aik_stop_reason_name(res.stop));
    rc = 0;
out:
    aik_generate_result_clear(&res);
    aik_session_free(s);
    aik_model_free(m);
    return rc;
}
