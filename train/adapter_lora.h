/* SPDX-License-Identifier: MIT */
/* Saving a LoRA trainer's pairs as an ALR1 adapter (loader/adapter.h). */
#ifndef AIK_TRAIN_ADAPTER_LORA_H
#define AIK_TRAIN_ADAPTER_LORA_H

#include "loader/adapter.h"
#include "train/trainer.h"

/* Build an ALR1 adapter from every pair aik_trainer_lora_get returns, with
 * the identity of base (the package the trainer's model was opened from).
 * Each pair's tensor must exist in base with shape {in, out}. */
int aik_trainer_lora_adapter(const aik_trainer *tr, const aik_slm *base, aik_adapter **ret_adapter,
                             aik_error *err);

/* Same, then write it atomically to path. */
int aik_trainer_write_alr1(const aik_trainer *tr, const aik_slm *base, const char *path, aik_error *err);

#endif
