/* Data-parallel training over MPI ranks (skipped, exit 77, without mpirun or
 * in a build without MPI). A conditional RF 5 net with batch statistics on
 * 40 synthetic images, global batch 8 (the epoch's last batch of 4), 50 steps:
 *  - 2 ranks equal 1 process: the gradient of a batch within 1e-5 of its
 *    largest value, the first steps' losses within 1e-6; over 50 steps the
 *    losses and parameters stay within 5% (Adam amplifies rounding; the
 *    numbers are printed);
 *  - a 2-rank run stopped at step 30 and resumed on 1 rank continues the
 *    2-rank run (step 31 within 1e-5) and stays with the 1-process run;
 *  - 2 ranks with 3 micro-batches each (some parts empty in the last batch)
 *    still run and stay close;
 *  - with exact sums (--sums exact), 2 and 3 ranks (parts of 3, 3, 2 and of
 *    2, 1, 1) give the same bits as 1 process over the 50 steps, and so does
 *    a 2-rank run resumed on 1 rank.
 * The program is its own worker: `test_mpi_train --child DIR OUT STEPS
 * [ACCUMULATE [EXACT]]` (EXACT 2: also frozen batch norm) trains and writes the per-step losses to OUT.steps. */
#include "testutil.h"
#include "train_fixtures.h"

#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/trainer.h"

#define NIMG 40
#define SIZE 24
#define STEPS 50

static int write_losses(const wcm_train_progress *p, void *user) {
    if (p->event == WCM_TRAIN_STEP) fprintf((FILE *)user, "%lld %.17g\n", p->step, p->step_loss);
    return 0;
}

static int child(const char *dir, const char *out, long long steps, int accumulate, int exact) {
    wcm_error err;
    wcm_comm *comm;
    if (wcm_comm_world(&comm, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    char data[600], cache[600], losses[700];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(losses, sizeof losses, "%s.steps", out);
    wcm_train_options o;
    wcm_train_options_default(&o);
    o.kind = WCM_NET_CONDITIONAL, o.rf = 5, o.levels = 2, o.data = data, o.crop = SIZE, o.patch = 8, o.batch = 8;
    o.epochs = 100, o.lr = 1e-4, o.seed = 3, o.test_fraction = 0.1, o.cache_dir = cache, o.output = out, o.max_steps = steps;
    o.accumulate = accumulate, o.comm = comm, o.resume = 1, o.save_minutes = 0, o.exact_sums = exact > 0;
    o.bn_frozen = exact == 2; /* frozen batch norm: running_sd first set from batches every rank passes whole */
    FILE *f = wcm_comm_rank(comm) == 0 ? fopen(losses, "a") : NULL;
    int rc = wcm_train_run(&o, f ? write_losses : NULL, f, &err);
    if (f) fclose(f);
    if (rc) {
        fprintf(stderr, "rank %d: %s\n", wcm_comm_rank(comm), err.msg);
        wcm_comm_abort(comm, 1);
        return 1;
    }
    return 0;
}

static int read_losses(const char *out, double *loss) {
    char path[700];
    snprintf(path, sizeof path, "%s.steps", out);
    FILE *f = fopen(path, "r");
    long long step;
    double v;
    int n = 0;
    while (f && fscanf(f, "%lld %lf", &step, &v) == 2)
        if (step >= 1 && step <= STEPS) loss[step - 1] = v, n++;
    if (f) fclose(f);
    return n;
}

static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "--child"))
        return child(argv[2], argv[3], atoll(argv[4]), argc > 5 ? atoi(argv[5]) : 1, argc > 6 ? atoi(argv[6]) : 0);
    if (!wcm_comm_have_mpi()) SKIP("this build has no MPI (-DWCM_MPI=OFF or no MPI found)");
    if (sh("command -v mpirun > /dev/null 2>&1")) SKIP("no mpirun on PATH");
    t_temp_dir("mpi_train");
    char dir[300], data[400], self[4096];
    snprintf(dir, sizeof dir, "%s", t_dir);
    snprintf(data, sizeof data, "%s/data", dir);
    mkdir(data, 0755);
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) SKIP("cannot find this program's path");
    self[len] = 0;
    t_write_images(data, NIMG, SIZE, 0.05);
    /* Under AddressSanitizer the ranks run without leak checking: Open MPI's
     * components leak at finalize and are unloaded before LeakSanitizer
     * reports, so their stacks cannot be suppressed by name. (The one-process
     * runs above and below keep the check.) */
    char mpirun[512] = "mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1";
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan && !strchr(asan, '\'') && strlen(asan) < 300)
        snprintf(mpirun + strlen(mpirun), sizeof mpirun - strlen(mpirun), " -x 'ASAN_OPTIONS=%s:detect_leaks=0'", asan);
    double t0 = wcm_seconds();
    CHECK(sh("OMP_NUM_THREADS=1 '%s' --child '%s' '%s/one.safetensors' %d", self, dir, dir, STEPS) == 0,
          "1 process, 50 steps of batch 8 (%.1f s)", wcm_seconds() - t0);
    t0 = wcm_seconds();
    int two = sh("%s -np 2 '%s' --child '%s' '%s/two.safetensors' %d > '%s/two.log' 2>&1", mpirun, self, dir, dir, STEPS, dir);
    if (two) sh("cat '%s/two.log'", dir);
    CHECK(two == 0, "mpirun -np 2, the same run (%.1f s)", wcm_seconds() - t0);
    double l1[STEPS] = {0}, l2[STEPS] = {0};
    int n1 = read_losses(t_at("one.safetensors"), l1), n2 = read_losses(t_at("two.safetensors"), l2);
    double worst = 0, first2 = fmax(fabs(l2[0] - l1[0]) / l1[0], fabs(l2[1] - l1[1]) / l1[1]);
    int within = 0;
    for (int i = 0; i < STEPS; i++) {
        const double d = fabs(l2[i] - l1[i]) / fabs(l1[i]);
        worst = fmax(worst, d);
        within += d <= 1e-5 && within == i;
    }
    CHECK(n1 == STEPS && n2 == STEPS && first2 <= 1e-6, "2 ranks against 1: losses of steps 1-2 within %.2g relative",
          first2);
    /* Rounding differences of the sums (~1e-7) are amplified by Adam: 40%% of a young net's gradients are below 1e-6
     * of the largest, and Adam moves each by ~lr whatever its size, so trajectories part slowly (measured). */
    CHECK(worst <= 0.05, "2 ranks against 1 over %d steps: the first %d steps within 1e-5 relative, then Adam-amplified "
          "rounding: max relative loss difference %.2g", n2, within, worst);
    char one[500], twof[500];
    snprintf(one, sizeof one, "%s", t_at("one.safetensors"));
    snprintf(twof, sizeof twof, "%s", t_at("two.safetensors"));
    double pd = t_params_diff(one, twof);
    CHECK(pd <= 0.05, "final parameters, 2 ranks against 1: max difference %.2g of the largest magnitude", pd);
    /* The gradient itself: Adam's first moment after one step is 0.1 x the gradient. */
    int g1 = sh("OMP_NUM_THREADS=1 '%s' --child '%s' '%s/g1.safetensors' 1", self, dir, dir);
    int g2 = sh("%s -np 2 '%s' --child '%s' '%s/g2.safetensors' 1 > '%s/g.log' 2>&1", mpirun, self, dir, dir, dir);
    snprintf(one, sizeof one, "%s", t_at("g1.safetensors"));
    snprintf(twof, sizeof twof, "%s", t_at("g2.safetensors"));
    double gd = t_tensor_diff(one, twof, "train.adam_m", NULL);
    CHECK(!g1 && !g2 && gd <= 1e-5, "gradient of one batch over 2 ranks: max difference %.2g of the largest (1 process)", gd);

    /* A 2-rank run stopped at step 30, resumed on 1 rank. */
    int a = sh("%s -np 2 '%s' --child '%s' '%s/resumed.safetensors' 30 > '%s/r.log' 2>&1", mpirun, self, dir, dir, dir);
    int b = a ? -1 : sh("OMP_NUM_THREADS=1 '%s' --child '%s' '%s/resumed.safetensors' %d", self, dir, dir, STEPS);
    double l3[STEPS] = {0};
    int n3 = read_losses(t_at("resumed.safetensors"), l3);
    double worst3 = 0, at31 = fabs(l3[30] - l2[30]) / l2[30];
    for (int i = 0; i < STEPS; i++) worst3 = fmax(worst3, fabs(l3[i] - l1[i]) / fabs(l1[i]));
    char res[500];
    snprintf(res, sizeof res, "%s", t_at("resumed.safetensors"));
    snprintf(one, sizeof one, "%s", t_at("one.safetensors"));
    double pd3 = t_params_diff(one, res);
    CHECK(a == 0 && b == 0 && n3 == STEPS && at31 <= 1e-5 && worst3 <= 0.05 && pd3 <= 0.05,
          "2 ranks to step 30, resumed on 1 rank to 50: step 31 within %.2g of the 2-rank run's; against the 1-process "
          "run losses within %.2g, parameters within %.2g", at31, worst3, pd3);

    /* 2 ranks x 3 micro-batches: the epoch's last batch of 4 leaves a part empty. */
    int c = sh("%s -np 2 '%s' --child '%s' '%s/acc.safetensors' 10 3 > '%s/acc.log' 2>&1", mpirun, self, dir, dir, dir);
    double l4[STEPS] = {0};
    int n4 = read_losses(t_at("acc.safetensors"), l4);
    CHECK(c == 0 && n4 == 10 && isfinite(l4[9]), "2 ranks x 3 micro-batches (empty parts take part): 10 steps, "
          "last loss %.6g (1 process, one batch: %.6g; batch statistics per micro-batch differ)", l4[9], l1[9]);
    /* Exact sums: the same bits whatever the split. */
    int e1 = sh("OMP_NUM_THREADS=2 '%s' --child '%s' '%s/x1.safetensors' %d 1 1", self, dir, dir, STEPS);
    int e2 = sh("%s -np 2 '%s' --child '%s' '%s/x2.safetensors' %d 1 1 > '%s/x2.log' 2>&1", mpirun, self, dir, dir, STEPS, dir);
    int e3 = sh("%s -np 3 '%s' --child '%s' '%s/x3.safetensors' %d 1 1 > '%s/x3.log' 2>&1", mpirun, self, dir, dir, STEPS, dir);
    double x1[STEPS] = {0}, x2[STEPS] = {0}, x3[STEPS] = {0};
    int m1 = read_losses(t_at("x1.safetensors"), x1), m2 = read_losses(t_at("x2.safetensors"), x2),
        m3 = read_losses(t_at("x3.safetensors"), x3);
    double wx2 = 0, wx3 = 0;
    for (int i = 0; i < STEPS; i++) {
        wx2 = fmax(wx2, fabs(x2[i] - x1[i]) / fabs(x1[i]));
        wx3 = fmax(wx3, fabs(x3[i] - x1[i]) / fabs(x1[i]));
    }
    snprintf(one, sizeof one, "%s", t_at("x1.safetensors"));
    snprintf(twof, sizeof twof, "%s", t_at("x2.safetensors"));
    const double px2 = t_params_diff(one, twof);
    snprintf(twof, sizeof twof, "%s", t_at("x3.safetensors"));
    const double px3 = t_params_diff(one, twof);
    CHECK(!e1 && !e2 && !e3 && m1 == STEPS && m2 == STEPS && m3 == STEPS && wx2 <= 1e-12 && wx3 <= 1e-12 && px2 == 0 &&
              px3 == 0,
          "exact sums, %d steps: 2 and 3 ranks (1 thread each) against 1 process (2 threads): losses within %.2g and %.2g "
          "relative (the reported loss adds the ranks' parts), parameters identical (differences %g, %g)",
          STEPS, wx2, wx3, px2, px3);
    int r1 = sh("%s -np 2 '%s' --child '%s' '%s/xr.safetensors' 30 1 1 > '%s/xr.log' 2>&1", mpirun, self, dir, dir, dir);
    int r2 = r1 ? -1 : sh("OMP_NUM_THREADS=1 '%s' --child '%s' '%s/xr.safetensors' %d 1 1", self, dir, dir, STEPS);
    snprintf(twof, sizeof twof, "%s", t_at("xr.safetensors"));
    const double pxr = t_params_diff(one, twof);
    CHECK(!r1 && !r2 && pxr == 0, "exact sums: 2 ranks to step 30, resumed on 1 rank to step %d: parameters identical to "
          "the 1-process run (difference %g)", STEPS, pxr);
    /* Exact sums with frozen batch norm (its calibration runs whole batches on every rank). */
    int f1 = sh("OMP_NUM_THREADS=1 '%s' --child '%s' '%s/f1.safetensors' 10 1 2", self, dir, dir);
    int f2 = sh("%s -np 2 '%s' --child '%s' '%s/f2.safetensors' 10 1 2 > '%s/f2.log' 2>&1", mpirun, self, dir, dir, dir);
    snprintf(one, sizeof one, "%s", t_at("f1.safetensors"));
    snprintf(twof, sizeof twof, "%s", t_at("f2.safetensors"));
    const double pf = f1 || f2 ? 1 : t_params_diff(one, twof);
    CHECK(!f1 && !f2 && pf == 0, "exact sums, frozen batch norm: 2 ranks equal 1 process after 10 steps (difference %g)", pf);
    if (!getenv("WCM_KEEP_TMP")) t_temp_dir_remove();
    else printf("kept %s\n", t_dir);
    return t_done("test_mpi_train");
}
