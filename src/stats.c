/* Reference-free image statistics (include/wcm/stats.h). */
#include "wcm/stats.h"

#include <math.h>

int wcm_stripe_ratio(const wcm_tensor *t, int index, double *horizontal, double *vertical, wcm_error *err) {
    if (!t || !t->data || t->c != 1 || index < 0 || index >= t->n)
        return wcm_fail(err, WCM_ERR_ARG, "stripe ratio: needs a 1-channel batch and a valid image index");
    if (t->h < 3 || t->w < 3)
        return wcm_fail(err, WCM_ERR_SHAPE, "stripe ratio: image %dx%d is smaller than 3x3", t->h, t->w);
    const float *x = t->data + (size_t)index * t->h * t->w;
    double h_sum[2] = {0, 0}, v_sum[2] = {0, 0};
    size_t h_count[2] = {0, 0}, v_count[2] = {0, 0};
    for (int r = 0; r < t->h; r++)
        for (int c = 0; c < t->w; c++) {
            const float v = x[(size_t)r * t->w + c];
            if (c + 1 < t->w) {
                h_sum[c & 1] += fabs((double)x[(size_t)r * t->w + c + 1] - v);
                h_count[c & 1]++;
            }
            if (r + 1 < t->h) {
                v_sum[r & 1] += fabs((double)x[(size_t)(r + 1) * t->w + c] - v);
                v_count[r & 1]++;
            }
        }
    /* A constant image has no stripes: ratio 1. */
    const double h_odd = h_sum[1] / (double)h_count[1], v_odd = v_sum[1] / (double)v_count[1];
    const double h_even = h_sum[0] / (double)h_count[0], v_even = v_sum[0] / (double)v_count[0];
    if (horizontal) *horizontal = h_odd > 0 ? h_even / h_odd : (h_even > 0 ? INFINITY : 1.0);
    if (vertical) *vertical = v_odd > 0 ? v_even / v_odd : (v_even > 0 ? INFINITY : 1.0);
    return WCM_OK;
}
