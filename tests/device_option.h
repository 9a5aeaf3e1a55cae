/* The --device option of tests that can run on a chosen device (the CUDA
 * variants registered in tests/CMakeLists.txt): `--device cpu|cuda[:N]`
 * selects it for the whole process (wcm_set_device); a device that cannot
 * be used (CUDA not built in, no GPU) skips the test with exit 77. */
#ifndef WCM_TEST_DEVICE_OPTION_H
#define WCM_TEST_DEVICE_OPTION_H

#include "testutil.h"
#include "wcm/backend.h"

/* The --device value, NULL when not given. */
static const char *t_device = NULL;

static inline void t_device_option(int argc, char **argv) {
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--device") && a + 1 < argc) {
            t_device = argv[++a];
        } else {
            fprintf(stderr, "usage: %s [--device cpu|cuda[:N]]\n", argv[0]);
            exit(2);
        }
    }
    if (!t_device) return;
    wcm_error err;
    if (wcm_set_device(t_device, &err)) SKIP("%s", err.msg);
    printf("device: %s\n", t_device);
}

#endif
