/* SPDX-License-Identifier: MIT */
/* aikctl train RECIPE [--resume]: run a training recipe with a progress bar. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "train/recipe.h"
#include "tools/aikctl/aikctl.h"

static void fmt_time(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static void progress(void *user, const aik_recipe_progress *p)
{
    int tty = *(int *)user;
    char eta[32];

    if (strcmp(p->phase, "train") == 0) {
        if (!tty && p->step % 10 != 0)
            return;
        int width = 24, fill = p->steps ? (int)((double)p->step / p->steps * width) : 0;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fmt_time(p->eta_s, eta, sizeof(eta));
        fprintf(stderr, "%sstep %u/%u [%s] loss %.4f | lr %.2e | |g| %.2f | %.0f tok/s %.1f GFLOP/s | ETA %s%s",
                tty ? "\r" : "", p->step, p->steps, bar, p->loss, (double)p->lr, p->grad_norm, p->tokens_per_s,
                p->gflops, eta, tty ? "   " : "\n");
    } else if (strcmp(p->phase, "eval") == 0) {
        fprintf(stderr, "%sstep %u: validation loss %.4f (perplexity %.2f)\n", tty ? "\n" : "", p->step, p->val_loss,
                exp(p->val_loss));
    } else if (strcmp(p->phase, "checkpoint") == 0) {
        if (!tty)
            fprintf(stderr, "step %u: checkpoint written\n", p->step);
    } else if (strcmp(p->phase, "done") == 0) {
        fprintf(stderr, "\ndone: validation loss %.4f (perplexity %.2f)", p->val_loss, exp(p->val_loss));
        if (p->test_loss >= 0)
            fprintf(stderr, ", test loss %.4f (perplexity %.2f)", p->test_loss, exp(p->test_loss));
        fprintf(stderr, "\n");
    } else {
        fprintf(stderr, "%s...\n", p->phase);
    }
}

int aikctl_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = { { "resume", no_argument, 0, 'r' }, { "help", no_argument, 0, 'h' },
                                          { 0, 0, 0, 0 } };
    bool resume = false;
    aik_recipe *r;
    aik_error err;
    int c, tty = isatty(STDERR_FILENO);

    optind = 1;
    while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': resume = true; break;
        case 'h':
            printf("usage: aikctl train RECIPE.json [--resume]\n  schema: docs/training.md\n");
            return 0;
        default: return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: aikctl train RECIPE.json [--resume]\n");
        return 2;
    }
    /* The whole recipe is checked before any work starts. */
    if (aik_recipe_load(argv[optind], &r, &err) < 0) {
        aikctl_print_error(argv[optind], &err);
        return 1;
    }
    if (aik_recipe_run(r, resume, progress, &tty, &err) < 0) {
        fputc('\n', stderr);
        aikctl_print_error("train", &err);
        aik_recipe_free(r);
        return 1;
    }
    printf("wrote %s\n", r->output_path);
    aik_recipe_free(r);
    return 0;
}
