/* Whole-network benchmark: wcm forward passes and training steps at the
 * shapes of the performance issue, GFLOP/s, and — when Debian's python3-torch
 * is installed — PyTorch's time for the same network in the same run and the
 * speed-up. PyTorch runs as a server process (bench/torch_bench.py --serve)
 * and the two take turns, case by case, for --rounds rounds; each side's
 * best time is kept, so a slow stretch of a shared machine hits both alike.
 * Not a test: machines are noisy.
 * usage: bench_net [--threads N] [--no-torch] [--reps R] [--rounds K] [--only SUBSTRING] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wcm/backend.h"
#include "wcm/net.h"
#include "wcm/rng.h"
#include "wcm/train.h"

#include "bench_common.h"

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

static double time_case(const bench_case *bc, int reps, double *gflop) {
    wcm_error err;
    wcm_net *net;
    if (wcm_net_create(&net, bc->kind, bc->rf ? bc->rf : 5, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    bench_randomise(net, 1);
    wcm_tensor in, target, out = {0};
    wcm_tensor_alloc(&in, bc->batch, bc->size, bc->size, wcm_net_cin(net), &err);
    wcm_tensor_alloc(&target, bc->batch, bc->size, bc->size, wcm_net_cout(net), &err);
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

/* The PyTorch timing server: case names go to `to`, seconds come back on `from`. */
typedef struct {
    FILE *to, *from;
    pid_t pid;
} torch_server;

static int torch_start(torch_server *ts, int threads) {
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) return -1;
    int down[2], up[2];
    if (pipe(down) != 0) return -1;
    if (pipe(up) != 0) {
        close(down[0]);
        close(down[1]);
        return -1;
    }
    fflush(NULL);
    const pid_t pid = fork();
    if (pid < 0) {
        close(down[0]), close(down[1]), close(up[0]), close(up[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(down[0], 0);
        dup2(up[1], 1);
        close(down[0]), close(down[1]), close(up[0]), close(up[1]);
        char nthreads[16], script[512];
        snprintf(nthreads, sizeof nthreads, "%d", threads);
        snprintf(script, sizeof script, "%s/torch_bench.py", WCM_BENCH_DIR);
        execl("/usr/bin/python3", "python3", script, nthreads, "--serve", (char *)NULL);
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    ts->to = fdopen(down[1], "w");
    ts->from = fdopen(up[0], "r");
    ts->pid = pid;
    return ts->to && ts->from ? 0 : -1;
}

/* Waits until the server has loaded PyTorch (its answer to a name it does not
 * know), so that the import does not compete with wcm's first timings. */
static int torch_ready(torch_server *ts) {
    char line[128];
    return fprintf(ts->to, "-\n") >= 0 && fflush(ts->to) == 0 && fgets(line, sizeof line, ts->from) ? 0 : -1;
}

/* Best time of one case in seconds, NAN when the server gives none. */
static double torch_time(torch_server *ts, const char *name) {
    char line[128];
    if (fprintf(ts->to, "%s\n", name) < 0 || fflush(ts->to) != 0 || !fgets(line, sizeof line, ts->from)) return NAN;
    return strtod(line, NULL);
}

static void torch_stop(torch_server *ts) {
    if (ts->to) fclose(ts->to);
    if (ts->from) fclose(ts->from);
    waitpid(ts->pid, NULL, 0);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 5, rounds = 3, use_torch = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) use_torch = 0;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_net [--threads N] [--reps R] [--rounds K] [--no-torch] [--only TEXT]\n");
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    wcm_set_threads(threads);
    torch_server ts = {0};
    const int have_torch = use_torch && torch_start(&ts, threads) == 0 && torch_ready(&ts) == 0;
    printf("wcm bench_net: %d threads, %s kernels, Winograd %s; best of %d runs x %d rounds%s\n", threads,
           wcm_cpu_simd_level(), wcm_get_winograd() ? "on" : "off", reps, rounds,
           have_torch ? ", PyTorch taking turns with wcm" : "");
    if (use_torch && !have_torch) printf("(python3-torch not available: no PyTorch column)\n");
    double secs[NCASES], gf[NCASES], tsecs[NCASES];
    for (int i = 0; i < NCASES; i++) secs[i] = tsecs[i] = NAN;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < NCASES; i++) {
            if (only && !strstr(cases[i].name, only)) continue;
            const double t = time_case(&cases[i], reps, &gf[i]);
            if (!(t >= secs[i])) secs[i] = t; /* also replaces NAN */
            const double tt = have_torch ? torch_time(&ts, cases[i].name) : NAN;
            if (!isnan(tt) && !(tt >= tsecs[i])) tsecs[i] = tt;
            fprintf(stderr, "  round %d %s: wcm %.4f s, PyTorch %.4f s\n", r + 1, cases[i].name, t, tt);
        }
    }
    if (ts.pid > 0) torch_stop(&ts); /* also a server that never answered */
    printf("\n| case | wcm s | GFLOP/s | PyTorch s | speed-up |\n|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < NCASES; i++) {
        if (isnan(secs[i])) continue;
        if (isnan(tsecs[i]))
            printf("| %s | %.4f | %.1f | - | - |\n", cases[i].name, secs[i], gf[i] / secs[i]);
        else
            printf("| %s | %.4f | %.1f | %.4f | %.2fx |\n", cases[i].name, secs[i], gf[i] / secs[i], tsecs[i],
                   tsecs[i] / secs[i]);
    }
    return 0;
}
