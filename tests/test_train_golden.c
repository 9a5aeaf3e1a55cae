/* Golden training steps from the authors' PyTorch code: for every directory
 * train_* of the golden directory ($WCM_GOLDEN_DIR, default ../shared/golden),
 * load model_init.pt, run the recorded Adam steps on the recorded batches
 * (input = noisy batch, target = the noise) and compare:
 *   - every step's loss to 1e-4 relative (steps 2, 3 check the Adam updates),
 *   - the step-1 output to 1e-4 of its max magnitude,
 *   - the step-1 gradients to 2e-2 of each tensor's max magnitude,
 *   - the parameters after step 1 to 1e-5 absolute wherever the step-1
 *     gradient is at least 2e-2 of its tensor's max magnitude (elsewhere the
 *     sign of Adam's first step is decided by rounding noise),
 *   - running_sd after steps 1 and 3 to 1e-3 relative.
 * (Tolerances were set by running the same steps in float64.)
 * --device cpu|cuda[:N] runs the steps on that device (skips without it). */
#include "net_internal.h"
#include "testutil.h"
#include "device_option.h"
#include "json.h"
#include "wcm/io.h"
#include "wcm/model.h"
#include "wcm/train.h"

#include <dirent.h>

static int load_npy(const char *dir, const char *name, wcm_array *a, wcm_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return wcm_npy_read(path, a, err);
}

static int load_nhwc(const char *dir, const char *name, wcm_tensor *t, wcm_error *err) {
    wcm_array a;
    int rc = load_npy(dir, name, &a, err);
    if (rc) return rc;
    rc = wcm_tensor_from_nchw(t, &a, err);
    wcm_array_free(&a);
    return rc;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* The network's parameters (or, with `values`, another block of the same
 * layout such as the gradients) as a state dict with PyTorch names. */
static int net_arrays(wcm_net *net, const float *values, wcm_array_list *l, wcm_error *err) {
    float *saved = NULL;
    if (values) {
        saved = malloc(net->nparams * sizeof(float));
        memcpy(saved, net->params, net->nparams * sizeof(float));
        memcpy(net->params, values, net->nparams * sizeof(float));
    }
    wcm_array_list_init(l);
    int rc = wcm_net_to_arrays(net, "", l, err);
    if (saved) {
        memcpy(net->params, saved, net->nparams * sizeof(float));
        free(saved);
    }
    return rc;
}

typedef struct {
    double loss, output, grad_conv, grad_gamma, param_conv, param_gamma, rsd1, rsd3;
    long masked_in, masked_total;
} worst;

/* Compare every tensor named in `map` (golden file per key) against `mine`. */
static void compare_map(const char *dir, const wcm_json *map, const wcm_array_list *mine, const wcm_array_list *grads_golden,
                        int kind, worst *w, const char *tag) {
    wcm_error err;
    for (size_t i = 0; i < wcm_json_count(map); i++) {
        const char *key = wcm_json_key_at(map, i);
        const char *file = wcm_json_string(wcm_json_at(map, i));
        wcm_array g;
        REQUIRE_OK(load_npy(dir, file, &g, &err), &err);
        const wcm_array *m = wcm_array_list_find(mine, key);
        int64_t n = wcm_array_count(&g);
        if (!m || wcm_array_count(m) != n) {
            CHECK(0, "%s %s: tensor missing or of a different size", tag, key);
            wcm_array_free(&g);
            continue;
        }
        int is_rsd = strstr(key, "running_sd") != NULL, is_gamma = strstr(key, "gammas") != NULL;
        double e = 0;
        if (kind == 0) { /* gradients: relative to the tensor's max magnitude */
            double gm = max_abs(g.data, n);
            for (int64_t k = 0; k < n; k++) e = fmax(e, fabs((double)m->data[k] - g.data[k]));
            e /= gm > 0 ? gm : 1;
            double *slot = is_gamma ? &w->grad_gamma : &w->grad_conv;
            *slot = fmax(*slot, e);
            if (e > 2e-2) CHECK(0, "%s grad %s: error %.3g of max magnitude > 2e-2", tag, key, e);
        } else if (is_rsd) {
            for (int64_t k = 0; k < n; k++) e = fmax(e, fabs((double)m->data[k] - g.data[k]) / fabs(g.data[k]));
            double *slot = kind == 1 ? &w->rsd1 : &w->rsd3;
            *slot = fmax(*slot, e);
            if (e > 1e-3) CHECK(0, "%s %s: relative error %.3g > 1e-3", tag, key, e);
        } else if (kind == 1) { /* parameters after step 1, where the gradient is decisive */
            const wcm_array *gg = wcm_array_list_find(grads_golden, key);
            double gm = max_abs(gg->data, n);
            for (int64_t k = 0; k < n; k++) {
                w->masked_total++;
                if (fabs(gg->data[k]) < 2e-2 * gm) continue;
                w->masked_in++;
                e = fmax(e, fabs((double)m->data[k] - g.data[k]));
            }
            double *slot = is_gamma ? &w->param_gamma : &w->param_conv;
            *slot = fmax(*slot, e);
            if (e > 1e-5) CHECK(0, "%s param %s: error %.3g > 1e-5", tag, key, e);
        }
        wcm_array_free(&g);
    }
}

static void run_case(const char *gdir, const char *name) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s", gdir, name);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    unsigned char *text;
    size_t len;
    wcm_error err;
    REQUIRE_OK(wcm_read_file(path, &text, &len, &err), &err);
    wcm_json *man;
    REQUIRE_OK(wcm_json_parse((const char *)text, len, &man, &err), &err);
    free(text);
    snprintf(path, sizeof path, "%s/model_init.pt", dir);
    wcm_net *net;
    REQUIRE_OK(wcm_net_load_torch(path, &net, &err), &err);
    char desc[256];
    wcm_net_describe(net, desc, sizeof desc);
    printf("%s: %s\n", name, desc);
    wcm_trainer *tr;
    REQUIRE_OK(wcm_trainer_create(&tr, net, &err), &err);
    double lr = 1e-3;
    wcm_json_number(wcm_json_get(man, "lr"), &lr);
    worst w = {0};
    wcm_array_list grads_golden;
    wcm_array_list_init(&grads_golden);
    const wcm_json *steps = wcm_json_get(man, "steps");
    for (size_t s = 0; s < wcm_json_count(steps); s++) {
        const wcm_json *st = wcm_json_at(steps, s);
        wcm_tensor in, target, out = {0};
        REQUIRE_OK(load_nhwc(dir, wcm_json_string(wcm_json_get(st, "input")), &in, &err), &err);
        REQUIRE_OK(load_nhwc(dir, wcm_json_string(wcm_json_get(st, "target")), &target, &err), &err);
        double loss, golden_loss = 0;
        REQUIRE_OK(wcm_train_gradient(tr, &in, &target, &loss, &out, &err), &err);
        wcm_json_number(wcm_json_get(st, "loss"), &golden_loss);
        double le = fabs(loss - golden_loss) / fabs(golden_loss);
        w.loss = fmax(w.loss, le);
        CHECK(le <= 1e-4, "%s step %zu loss %.7g vs golden %.7g (relative error %.2e <= 1e-4)", name, s + 1, loss,
              golden_loss, le);
        const char *ofile = wcm_json_string(wcm_json_get(st, "output"));
        if (ofile) {
            wcm_tensor g;
            REQUIRE_OK(load_nhwc(dir, ofile, &g, &err), &err);
            double e = 0, gm = max_abs(g.data, (int64_t)wcm_tensor_count(&g));
            for (size_t k = 0; k < wcm_tensor_count(&g); k++) e = fmax(e, fabs((double)out.data[k] - g.data[k]));
            w.output = e / gm;
            CHECK(w.output <= 1e-4, "%s step %zu output: max error %.2e of max magnitude %.3g (<= 1e-4)", name, s + 1,
                  w.output, gm);
            wcm_tensor_free(&g);
        }
        const wcm_json *grads = wcm_json_get(st, "grads");
        if (grads) {
            wcm_array_list mine;
            REQUIRE_OK(net_arrays(net, tr->grad, &mine, &err), &err);
            compare_map(dir, grads, &mine, NULL, 0, &w, name);
            for (size_t i = 0; i < wcm_json_count(grads); i++) {
                wcm_array a;
                REQUIRE_OK(load_npy(dir, wcm_json_string(wcm_json_at(grads, i)), &a, &err), &err);
                a.name = strdup(wcm_json_key_at(grads, i));
                REQUIRE_OK(wcm_array_list_push(&grads_golden, &a, &err), &err);
            }
            wcm_array_list_free(&mine);
        }
        wcm_adam_step(tr, lr);
        const wcm_json *after = wcm_json_get(st, "params_after");
        if (after) {
            wcm_array_list mine;
            REQUIRE_OK(net_arrays(net, NULL, &mine, &err), &err);
            compare_map(dir, after, &mine, &grads_golden, s == 0 ? 1 : 3, &w, name);
            wcm_array_list_free(&mine);
        }
        wcm_tensor_free(&in);
        wcm_tensor_free(&target);
        wcm_tensor_free(&out);
    }
    CHECK(w.grad_conv <= 2e-2 && w.grad_gamma <= 2e-2,
          "%s step-1 gradients: worst error / max magnitude: conv weights %.2e, gammas %.2e (<= 2e-2)", name, w.grad_conv,
          w.grad_gamma);
    CHECK(w.param_conv <= 1e-5 && w.param_gamma <= 1e-5 && w.masked_in > 0,
          "%s parameters after step 1: worst abs error conv %.2e, gammas %.2e (<= 1e-5) on %ld of %ld values with a "
          "decisive gradient",
          name, w.param_conv, w.param_gamma, w.masked_in, w.masked_total);
    CHECK(w.rsd1 <= 1e-3 && w.rsd3 <= 1e-3, "%s running_sd: worst relative error after step 1 %.2e, after step 3 %.2e (<= 1e-3)",
          name, w.rsd1, w.rsd3);
    wcm_array_list_free(&grads_golden);
    wcm_trainer_free(tr);
    wcm_net_free(net);
    wcm_json_free(man);
}

int main(int argc, char **argv) {
    t_device_option(argc, argv);
    const char *gdir = t_golden_dir();
    DIR *d = opendir(gdir);
    if (!d) SKIP("no golden directory %s", gdir);
    char names[64][256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < 64) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/manifest.json", gdir, e->d_name);
        struct stat st;
        if (!strncmp(e->d_name, "train_", 6) && stat(p, &st) == 0) snprintf(names[count++], sizeof names[0], "%s", e->d_name);
    }
    closedir(d);
    if (!count) SKIP("no train_* cases in %s", gdir);
    qsort(names, (size_t)count, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < count; i++) run_case(gdir, names[i]);
    CHECK(count >= 1, "%d golden training cases run", count);
    return t_done("test_train_golden");
}
