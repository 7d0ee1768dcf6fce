/* SPDX-License-Identifier: MIT */
#ifndef AIK_MODULES_LLAMA_ARCH_H
#define AIK_MODULES_LLAMA_ARCH_H

#include "aik/graph.h"

/* Build the llama-family graph (see llama_arch.c for the tensor table). */
int aik_llama_build(const aik_graph_api *api, aik_graph *g, const aik_model_hparams *hp);

/* The module's architecture entry points. */
extern const aik_arch_ops aik_llama_arch_ops;

#endif
