/* SPDX-License-Identifier: MIT */
/*
 * Segment fragments (ASG1, loader/adapter.h): cutting the tensors of a layer
 * range out of a package, and writing a new package with a layer range
 * replaced. Both are byte copies in the tensors' own dtypes: nothing is
 * dequantized, so a q8_0 / q4_0 layer arrives exactly as it was made (a
 * re-quantized or re-trained range), and extract → apply onto the same base
 * reproduces the base file byte for byte. Format: docs/adapters.md.
 */
#ifndef AIK_RUNTIME_SEGMENT_APPLY_H
#define AIK_RUNTIME_SEGMENT_APPLY_H

#include <stdint.h>

#include "loader/adapter.h"
#include "loader/slm.h"

/* A fragment holding every "blk.N.*" tensor of pkg with layer_first <= N <
 * layer_end, in directory order, with pkg's identity. The range must lie
 * within pkg's layers (-EINVAL naming "layers" otherwise). Returns 0 or
 * -errno; *ret_fragment is the caller's (aik_adapter_free). */
int aik_segment_extract(const aik_slm *pkg, uint32_t layer_first, uint32_t layer_end, aik_adapter **ret_fragment,
                        aik_error *err);

/* Write out_path: base with every tensor the fragment holds replaced by the
 * fragment's bytes; the header, layer table, tokenizer, every other tensor
 * and the directory order are base's, the checksums are recomputed by the
 * .slm writer (atomic: nothing is left at out_path on failure). The fragment
 * is checked with aik_adapter_check first: an incompatible one is -EINVAL
 * with err naming the check, and nothing is written. Returns 0 or -errno. */
int aik_segment_apply(const aik_slm *base, const aik_adapter *fragment, const char *out_path, aik_error *err);

#endif
