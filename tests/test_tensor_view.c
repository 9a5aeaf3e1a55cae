/* Tensor views over caller memory: no copy, no ownership, the same results
 * as owned tensors, written in place as outputs of the right shape and
 * refused as outputs of another shape. */
#include <stdint.h>

#include "testutil.h"
#include "wcm/haar.h"
#include "wcm/net.h"
#include "wcm/tensor.h"

static void fill(float *x, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 24);
    }
}

static void view_basics(void) {
    float buf[2 * 3 * 4 * 1];
    fill(buf, 24, 1);
    const float first = buf[0];
    const unsigned long allocs = wcm_alloc_calls();
    wcm_tensor v = wcm_tensor_view(buf, 2, 3, 4, 1);
    CHECK(v.data == buf && v.n == 2 && v.h == 3 && v.w == 4 && v.c == 1 && v.borrowed && !v.buffer &&
              wcm_tensor_count(&v) == 24 && wcm_alloc_calls() == allocs,
          "a 2x3x4x1 view points at the caller's buffer and allocates nothing");
    wcm_tensor_free(&v);
    CHECK(!v.data && v.n == 0 && buf[0] == first, "freeing a view clears it and leaves the caller's memory as it was");

    wcm_error err;
    wcm_tensor t;
    int rc = wcm_tensor_view_check(&t, NULL, 1, 1, 1, 1, &err);
    CHECK(rc == WCM_ERR_ARG && !t.data, "a view of NULL is refused: %s", err.msg);
    rc = wcm_tensor_view_check(&t, buf, 1, 0, 4, 1, &err);
    CHECK(rc == WCM_ERR_SHAPE, "a view with a zero dimension is refused: %s", err.msg);
    rc = wcm_tensor_view_check(&t, buf, INT32_MAX, INT32_MAX, INT32_MAX, 4, &err);
    CHECK(rc == WCM_ERR_SHAPE, "a view whose size overflows is refused: %s", err.msg);
    rc = wcm_tensor_view_check(&t, buf, 2, 3, 4, 1, &err);
    CHECK(rc == WCM_OK && t.data == buf && t.borrowed, "a valid shape gives the view");
}

/* A Haar pyramid of a view equals that of an owned copy of the same pixels. */
static void view_as_input(void) {
    wcm_error err;
    float *buf = malloc(2 * 16 * 16 * sizeof(float));
    fill(buf, 2 * 16 * 16, 7);
    wcm_tensor v = wcm_tensor_view(buf, 2, 16, 16, 1), owned;
    REQUIRE_OK(wcm_tensor_copy(&owned, &v, &err), &err);
    wcm_pyramid pv, po;
    REQUIRE_OK(wcm_haar_forward(&v, 2, &pv, &err), &err);
    REQUIRE_OK(wcm_haar_forward(&owned, 2, &po, &err), &err);
    int same = 1;
    for (int j = 0; j < 2; j++)
        same &= !memcmp(pv.level[j].data, po.level[j].data, wcm_tensor_count(&po.level[j]) * sizeof(float));
    CHECK(same, "the 2-level Haar pyramid of a view equals that of an owned tensor bit for bit");
    wcm_pyramid_free(&pv), wcm_pyramid_free(&po);
    wcm_tensor_free(&owned);
    free(buf);
}

/* A network writes into an output view of its result's shape, and refuses one
 * of another shape without touching it. */
static void view_as_output(void) {
    wcm_error err;
    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, WCM_NET_FLAT, 5, &err), &err);
    wcm_net_init_reference(net, 3);
    enum { N = 2, H = 12, W = 10 };
    float in_buf[N * H * W], out_buf[N * H * W], small[N * H * W];
    fill(in_buf, N * H * W, 11);
    wcm_tensor in = wcm_tensor_view(in_buf, N, H, W, 1), owned_out = {0};
    REQUIRE_OK(wcm_net_forward(net, &in, &owned_out, &err), &err);
    wcm_tensor out = wcm_tensor_view(out_buf, N, H, W, 1);
    REQUIRE_OK(wcm_net_forward(net, &in, &out, &err), &err);
    CHECK(out.data == out_buf && out.borrowed &&
              !memcmp(out_buf, owned_out.data, sizeof out_buf),
          "a forward into a %dx%dx%dx1 view writes the caller's buffer, equal to an owned output", N, H, W);
    for (size_t i = 0; i < N * H * W; i++) small[i] = -1.0f;
    wcm_tensor wrong = wcm_tensor_view(small, 1, H, W, 1);
    int rc = wcm_net_forward(net, &in, &wrong, &err);
    int untouched = wrong.data == small;
    for (size_t i = 0; i < N * H * W; i++) untouched &= small[i] == -1.0f;
    CHECK(rc == WCM_ERR_SHAPE && untouched, "an output view of another shape is refused, its memory untouched: %s",
          err.msg);
    wcm_tensor_free(&owned_out);
    wcm_net_free(net);
}

int main(void) {
    view_basics();
    view_as_input();
    view_as_output();
    return t_done("test_tensor_view");
}
