/* SPDX-License-Identifier: MIT */
/*
 * Baking adapters into a package: for every tensor that one of the adapters
 * touches, dequantize the base tensor to f32, add each adapter's delta in the
 * order given, and store the sum in the base tensor's own dtype (q8_0 / q4_0
 * re-quantized, f16 / bf16 rounded). Untouched tensors are copied byte for
 * byte. The result is a new .slm package with the same header, layers and
 * tokenizer and fresh checksums (written atomically by the .slm writer).
 */
#ifndef AIK_RUNTIME_ADAPTER_MERGE_H
#define AIK_RUNTIME_ADAPTER_MERGE_H

#include <stddef.h>

#include "loader/adapter.h"
#include "loader/slm.h"

/* Every adapter is checked against base with aik_adapter_check first; the
 * first incompatible one fails the merge (-EINVAL, err names the adapter
 * index and the check) and nothing is written. A sum that is not finite is
 * -ERANGE naming the tensor. Returns 0 or -errno. */
int aik_adapter_merge(const aik_slm *base, const aik_adapter *const *adapters, size_t n_adapters,
                      const char *out_path, aik_error *err);

#endif
