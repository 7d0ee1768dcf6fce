/* SPDX-License-Identifier: MIT */
/*
 * Semantic versions (semver.org 2.0.0) and version ranges as used in
 * semantic profiles: "1.2.3", "1.2.3-rc.1+build" for versions; for ranges
 * "^1.2", "~1.2.3", ">=1.0 <2.0", "=1.2.3", "1.2.3" (exact), "1.2" (any
 * 1.2.x), "*" (any). Partial versions in a range fill the missing parts with
 * 0 ("^1" is ">=1.0.0 <2.0.0"). Comparators separated by spaces must all
 * hold. Build metadata is accepted and ignored in comparisons.
 */
#ifndef AIK_CAPGRAPH_SEMVER_H
#define AIK_CAPGRAPH_SEMVER_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/common.h"

#define AIK_SEMVER_PRE_MAX 32     /* bytes of the pre-release tag incl. NUL */
#define AIK_SEMVER_RANGE_MAX 8    /* comparators in one range */
#define AIK_SEMVER_TEXT_MAX 64    /* longest accepted version or range text */

typedef struct aik_semver {
    uint32_t major, minor, patch;
    char pre[AIK_SEMVER_PRE_MAX]; /* pre-release tag without '-', "" if none */
} aik_semver;

typedef enum aik_semver_op {
    AIK_SEMVER_EQ, AIK_SEMVER_GT, AIK_SEMVER_GE, AIK_SEMVER_LT, AIK_SEMVER_LE,
} aik_semver_op;

typedef struct aik_semver_range {
    uint32_t n;                                  /* 0 means "any version" */
    struct {
        aik_semver_op op;
        aik_semver v;
    } c[AIK_SEMVER_RANGE_MAX];
} aik_semver_range;

/* Parse a full version "MAJOR.MINOR.PATCH[-pre][+build]". Returns 0 or
 * -EINVAL with err->message saying which part is wrong (where is left empty
 * for the caller to fill). */
int aik_semver_parse(const char *text, aik_semver *ret_v, aik_error *err);

/* Compare by semver precedence: <0, 0, >0. */
int aik_semver_cmp(const aik_semver *a, const aik_semver *b);

/* Format "1.2.3[-pre]" into buf; returns buf. */
const char *aik_semver_format(const aik_semver *v, char *buf, size_t len);

/* Parse a range (syntax above). Returns 0 or -EINVAL with err->message. */
int aik_semver_range_parse(const char *text, aik_semver_range *ret_r, aik_error *err);

/* True when v satisfies every comparator of r. A pre-release version only
 * satisfies a range with a comparator on the same major.minor.patch that
 * itself has a pre-release tag (npm rule: "^1.0" does not pick 2.0.0-rc.1
 * nor 1.5.0-beta). */
bool aik_semver_range_match(const aik_semver_range *r, const aik_semver *v);

#endif
