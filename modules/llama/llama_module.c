/* SPDX-License-Identifier: MIT */
/*
 * The llama-family architecture as a loadable module. The module name comes
 * from the build (one .so per base-model module: the name in the ELF note must
 * be the name its manifest signs).
 */
#include "aik/module.h"
#include "modules/llama/llama_arch.h"

#ifndef AIK_LLAMA_MODULE_NAME
#define AIK_LLAMA_MODULE_NAME "aik-llama"
#endif
#ifndef AIK_LLAMA_MODULE_VERSION
#define AIK_LLAMA_MODULE_VERSION "1.0.0"
#endif

AIK_MODULE(AIK_MODULE_ARCHITECTURE, AIK_LLAMA_MODULE_NAME, AIK_LLAMA_MODULE_VERSION, &aik_llama_arch_ops,
           sizeof(aik_llama_arch_ops));
