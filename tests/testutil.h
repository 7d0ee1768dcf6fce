/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the Check test suites. */
#ifndef AIK_TESTUTIL_H
#define AIK_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run a suite with CK_ENV-controlled fork mode; return an exit status. */
static inline int aik_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A fresh temporary directory under $TMPDIR (or /tmp); caller frees. */
static inline char *aik_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p;

    if (!base || !*base)
        base = "/tmp";
    if (asprintf(&p, "%s/aiktest.XXXXXX", base) < 0)
        return NULL;
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* Remove a directory tree made by a test (best effort). */
static inline void aik_test_rmtree(const char *path)
{
    char *cmd;
    if (!path || asprintf(&cmd, "rm -rf -- '%s'", path) < 0)
        return;
    if (system(cmd) != 0) { /* best effort */ }
    free(cmd);
}

/* Path of a file under the source tree (AIK_SOURCE_ROOT); caller frees. */
static inline char *aik_test_srcpath(const char *rel)
{
    const char *root = getenv("AIK_SOURCE_ROOT");
    char *p;
    if (asprintf(&p, "%s/%s", root ? root : ".", rel) < 0)
        return NULL;
    return p;
}

#endif
