/* Whole-network benchmark: wcm forward passes and training steps at the
 * shapes of the performance issue, GFLOP/s, and — when Debian's python3-torch
 * is installed — PyTorch's time for the same network in the same run and the
 * speed-up. Not a test: machines are noisy; run it on a quiet machine.
 * usage: bench_net [--threads N] [--no-torch] [--reps R] [--only SUBSTRING] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "wcm/backend.h"
#include "wcm/net.h"
#include "wcm/rng.h"
#include "wcm/train.h"

typedef struct {
    const char *name;
    wcm_net_kind kind;
    int rf, batch, size, train;
} bench_case;

static const bench_case cases[] = {
    {"forward flat RF43 160x160", WCM_NET_FLAT, 43, 1, 160, 0},
    {"forward flat RF13 160x160", WCM_NET_FLAT, 13, 1, 160, 0},
    {"forward cond RF13 160x160", WCM_NET_CONDITIONAL, 13, 1, 160, 0},
    {"forward lowpass 40x40", WCM_NET_LOWPASS, 0, 1, 40, 0},
    {"forward flat RF43 320x320", WCM_NET_FLAT, 43, 1, 320, 0},
    {"train flat RF43 b16 40x40", WCM_NET_FLAT, 43, 16, 40, 1},
    {"train cond RF13 b16 40x40", WCM_NET_CONDITIONAL, 13, 16, 40, 1},
    {"train lowpass b64 40x40", WCM_NET_LOWPASS, 0, 64, 40, 1},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Random Kaiming-scaled weights and unit gammas keep activations O(1) (no
 * denormals), like a trained network. */
static void randomise(wcm_net *net, uint64_t seed) {
    wcm_rng rng;
    wcm_rng_seed(&rng, seed, 0);
    for (int l = 0; l < net->nlayers; l++) {
        wcm_layer *L = &net->layers[l];
        double sd = sqrt(2.0 / (L->k * L->k * L->cin));
        size_t n = (size_t)L->k * L->k * L->cin * L->cout;
        for (size_t i = 0; i < n; i++) L->weight[i] = (float)(sd * wcm_rng_normal(&rng));
        if (L->bn)
            for (int c = 0; c < L->cout; c++) L->gamma[c] = 1, L->running_sd[c] = 1;
    }
    wcm_net_invalidate(net);
}

static double time_case(const bench_case *bc, int reps, double *gflop) {
    wcm_error err;
    wcm_net *net;
    if (wcm_net_create(&net, bc->kind, bc->rf ? bc->rf : 5, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    randomise(net, 1);
    wcm_tensor in, target, out = {0};
    wcm_tensor_alloc(&in, bc->batch, bc->size, bc->size, net->cin, &err);
    wcm_tensor_alloc(&target, bc->batch, bc->size, bc->size, net->cout, &err);
    wcm_rand_uniform_fill(2, 0, 0, in.data, wcm_tensor_count(&in));
    wcm_rand_uniform_fill(3, 0, 0, target.data, wcm_tensor_count(&target));
    double pixels = (double)bc->batch * bc->size * bc->size;
    /* Training does forward + backward-data + backward-weights: ~3x the MACs. */
    *gflop = 2.0 * wcm_net_macs_per_pixel(net) * pixels * (bc->train ? 3.0 : 1.0) * 1e-9;
    wcm_trainer *tr = NULL;
    if (bc->train && wcm_trainer_create(&tr, net, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    double best = INFINITY;
    for (int r = 0; r <= reps; r++) {
        double t0 = wcm_seconds(), loss;
        int rc = bc->train ? wcm_train_gradient(tr, &in, &target, &loss, NULL, &err) : wcm_net_forward(net, &in, &out, &err);
        if (!rc && bc->train) wcm_adam_step(tr, 1e-3);
        if (rc) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        double dt = wcm_seconds() - t0;
        if (r > 0 && dt < best) best = dt; /* the first run warms caches and buffers */
    }
    wcm_trainer_free(tr);
    wcm_net_free(net);
    wcm_tensor_free(&in);
    wcm_tensor_free(&target);
    wcm_tensor_free(&out);
    return best;
}

static wcm_json *torch_times(int threads) {
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) return NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/torch_bench.py %d", WCM_BENCH_DIR, threads);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    pclose(p);
    wcm_json *j = NULL;
    wcm_error err;
    if (wcm_json_parse(buf, n, &j, &err)) return NULL;
    return j;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 5, use_torch = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) use_torch = 0;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_net [--threads N] [--reps R] [--no-torch] [--only TEXT]\n");
            return 2;
        }
    }
    wcm_set_threads(threads);
    printf("wcm bench_net: %d threads, %s kernels, Winograd %s; best of %d runs\n", threads, wcm_cpu_simd_level(),
           wcm_get_winograd() ? "on" : "off", reps);
    double secs[NCASES], gf[NCASES];
    for (int i = 0; i < NCASES; i++) {
        secs[i] = NAN;
        if (only && !strstr(cases[i].name, only)) continue;
        secs[i] = time_case(&cases[i], reps, &gf[i]);
        fprintf(stderr, "  %s: %.4f s\n", cases[i].name, secs[i]);
    }
    wcm_json *torch = use_torch ? torch_times(threads) : NULL;
    if (use_torch && !torch) printf("(python3-torch not available: no PyTorch column)\n");
    printf("\n| case | wcm s | GFLOP/s | PyTorch s | speed-up |\n|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < NCASES; i++) {
        if (isnan(secs[i])) continue;
        double ts = NAN;
        if (torch) wcm_json_number(wcm_json_get(torch, cases[i].name), &ts);
        if (isnan(ts))
            printf("| %s | %.4f | %.1f | - | - |\n", cases[i].name, secs[i], gf[i] / secs[i]);
        else
            printf("| %s | %.4f | %.1f | %.4f | %.2fx |\n", cases[i].name, secs[i], gf[i] / secs[i], ts, ts / secs[i]);
    }
    wcm_json_free(torch);
    return 0;
}
