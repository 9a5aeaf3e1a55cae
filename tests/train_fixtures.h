/* Training tests: a folder of synthetic images, and comparing the tensors
 * of two checkpoints. Include after testutil.h. */
#ifndef WCM_TEST_TRAIN_FIXTURES_H
#define WCM_TEST_TRAIN_FIXTURES_H

#include <math.h>
#include <string.h>

#include "wcm/image.h"
#include "wcm/io.h"

/* n smooth gray images of size x size, dir/img00.png ...: sinusoids whose
 * frequency grows with the index by `spread`. */
static inline void t_write_images(const char *dir, int n, int size, double spread) {
    wcm_tensor img = {0};
    wcm_error err;
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, size, size, 1, &err), &err);
    for (int i = 0; i < n; i++) {
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                img.data[y * size + x] = (float)(0.5 + 0.3 * sin(0.3 * x * (1 + spread * i) + 0.2 * y) +
                                                 0.15 * cos(0.5 * y - 0.7 * spread * i * x));
        char path[4200];
        snprintf(path, sizeof path, "%s/img%02d.png", dir, i);
        REQUIRE_OK(wcm_image_write(path, &img, 0, 8, &err), &err);
    }
    wcm_tensor_free(&img);
}

/* max |a - b| / max |a| of tensor name_a of file a and name_b (NULL: the
 * same name) of file b; INFINITY when either is missing or the sizes differ. */
static inline double t_tensor_diff(const char *a, const char *b, const char *name_a, const char *name_b) {
    wcm_array_list la, lb;
    wcm_error err;
    wcm_array_list_init(&la), wcm_array_list_init(&lb);
    double d = INFINITY;
    if (!wcm_safetensors_read(a, &la, &err) && !wcm_safetensors_read(b, &lb, &err)) {
        const wcm_array *x = wcm_array_list_find(&la, name_a), *y = wcm_array_list_find(&lb, name_b ? name_b : name_a);
        if (x && y && wcm_array_count(x) == wcm_array_count(y)) {
            double worst = 0, big = 0;
            for (int64_t k = 0; k < wcm_array_count(x); k++) {
                worst = fmax(worst, fabs((double)x->data[k] - y->data[k]));
                big = fmax(big, fabs((double)x->data[k]));
            }
            d = worst / (big > 0 ? big : 1);
        }
    }
    wcm_array_list_free(&la), wcm_array_list_free(&lb);
    return d;
}

/* max |a - b| / max |a| over all the network's tensors ("net.*") together;
 * INFINITY when a tensor is missing or its size differs. */
static inline double t_params_diff(const char *a, const char *b) {
    wcm_array_list la, lb;
    wcm_error err;
    wcm_array_list_init(&la), wcm_array_list_init(&lb);
    double worst = 0, big = 0;
    int ok = !wcm_safetensors_read(a, &la, &err) && !wcm_safetensors_read(b, &lb, &err);
    for (int i = 0; ok && i < la.count; i++) {
        const wcm_array *x = &la.items[i], *y = wcm_array_list_find(&lb, x->name);
        if (strncmp(x->name, "net.", 4)) continue;
        ok = y && wcm_array_count(x) == wcm_array_count(y);
        for (int64_t k = 0; ok && k < wcm_array_count(x); k++) {
            worst = fmax(worst, fabs((double)x->data[k] - y->data[k]));
            big = fmax(big, fabs((double)x->data[k]));
        }
    }
    wcm_array_list_free(&la), wcm_array_list_free(&lb);
    return ok ? worst / (big > 0 ? big : 1) : INFINITY;
}

#endif
