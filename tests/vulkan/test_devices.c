/* SPDX-License-Identifier: MIT */
/* Device discovery: CPU always, Vulkan devices or a reason, /dev/accel nodes
 * (a fake directory stands in for /dev/accel). Runs with or without Vulkan. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "scheduler/devices.h"
#include "testutil.h"

static void touch(const char *dir, const char *name)
{
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    free(p);
}

START_TEST(test_discover)
{
    static aik_device_list l;
    char *dir = aik_test_tmpdir();
    uint32_t n_vk = 0, n_accel = 0;

    ck_assert_int_eq(aik_devices_discover(NULL, 0, NULL), -EINVAL);
    touch(dir, "accel0");
    touch(dir, "accel12");
    touch(dir, "accelX");   /* not a node name */
    touch(dir, "accel3x");  /* trailing junk */
    touch(dir, "card0");
    ck_assert_int_eq(aik_devices_discover(dir, AIK_DEVICES_BENCHMARK, &l), 0);
    ck_assert_uint_ge(l.n, 3);
    ck_assert_uint_eq(l.dev[0].source, AIK_DEVICE_SRC_CPU);
    ck_assert_uint_eq(l.dev[0].info.kind, AIK_BACKEND_CPU);
    ck_assert_uint_gt(l.dev[0].info.memory_bytes, 0);
    ck_assert(strstr(l.dev[0].detail, "cores") != NULL);
    ck_assert_uint_ne(l.dev[0].info.op_dtypes[AIK_OP_MATMUL], 0);
    for (uint32_t i = 0; i < l.n; i++) {
        if (l.dev[i].source == AIK_DEVICE_SRC_VULKAN) {
            n_vk++;
            ck_assert_uint_eq(l.dev[i].info.kind, AIK_BACKEND_GPU);
            ck_assert(strlen(l.dev[i].info.name) > 0);
            ck_assert(l.dev[i].info.measured_gflops > 0.0); /* AIK_DEVICES_BENCHMARK */
        }
        if (l.dev[i].source == AIK_DEVICE_SRC_ACCEL) {
            n_accel++;
            ck_assert_uint_eq(l.dev[i].info.kind, AIK_BACKEND_NPU);
            ck_assert(l.dev[i].index == 0 || l.dev[i].index == 12);
            ck_assert_uint_eq(l.dev[i].info.op_dtypes[AIK_OP_MATMUL], 0);
            ck_assert(strstr(l.dev[i].detail, "no AIKernel backend") != NULL);
        }
    }
    ck_assert_uint_eq(n_accel, 2);
    ck_assert_str_eq(l.accel_note, "");
    /* either Vulkan devices are listed or the list says why not */
    ck_assert(n_vk > 0 || strlen(l.vulkan_note) > 0);
    ck_assert(n_vk == 0 || strlen(l.vulkan_note) == 0);

    /* an empty directory and a missing one: explained, not errors */
    char *empty;
    ck_assert_int_ge(asprintf(&empty, "%s/empty", dir), 0);
    ck_assert_int_eq(mkdir(empty, 0700), 0);
    ck_assert_int_eq(aik_devices_discover(empty, 0, &l), 0);
    ck_assert(strstr(l.accel_note, "holds no accel nodes") != NULL);
    free(empty);
    ck_assert_int_ge(asprintf(&empty, "%s/missing", dir), 0);
    ck_assert_int_eq(aik_devices_discover(empty, 0, &l), 0);
    ck_assert(strstr(l.accel_note, "No such file") != NULL);
    free(empty);

    ck_assert_str_eq(aik_backend_kind_name(AIK_BACKEND_NPU), "npu");
    ck_assert_str_eq(aik_backend_kind_name(99), "?");
    aik_test_rmtree(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("devices");
    TCase *tc = tcase_create("discover");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_discover);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
