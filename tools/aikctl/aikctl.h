/* SPDX-License-Identifier: MIT */
/* aikctl: one file per sub-command, each a thin layer over the library. */
#ifndef AIKCTL_H
#define AIKCTL_H

#include "aik/common.h"

/* Each command: argv[0] is the command name. Returns the process exit code. */
typedef int (*aikctl_cmd_fn)(int argc, char **argv);

/* Print "aikctl: <what>: <where>: <message>" to stderr. */
void aikctl_print_error(const char *what, const aik_error *err);

/* Print "aikctl: <what>: <strerror(-code)>" to stderr. */
void aikctl_print_errno(const char *what, int code);

/* Sub-commands (tools/aikctl/cmd_*.c). */
int aikctl_cmd_inspect(int argc, char **argv);
int aikctl_cmd_check(int argc, char **argv);
int aikctl_cmd_keygen(int argc, char **argv);
int aikctl_cmd_sign(int argc, char **argv);
int aikctl_cmd_verify(int argc, char **argv);
int aikctl_cmd_modinfo(int argc, char **argv);
int aikctl_cmd_generate(int argc, char **argv);
int aikctl_cmd_bench(int argc, char **argv);
int aikctl_cmd_perplexity(int argc, char **argv);
int aikctl_cmd_train(int argc, char **argv);
int aikctl_cmd_run(int argc, char **argv);
int aikctl_cmd_init(int argc, char **argv);
int aikctl_cmd_modules(int argc, char **argv);
int aikctl_cmd_resolve(int argc, char **argv);
int aikctl_cmd_tokenize(int argc, char **argv);
int aikctl_cmd_import(int argc, char **argv);
int aikctl_cmd_export(int argc, char **argv);
int aikctl_cmd_devices(int argc, char **argv);
int aikctl_cmd_adapter(int argc, char **argv);
int aikctl_cmd_eval(int argc, char **argv);
int aikctl_cmd_distill(int argc, char **argv);
int aikctl_cmd_place(int argc, char **argv);

#endif
