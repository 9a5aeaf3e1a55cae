/* `wcm train` end to end on a few CelebA faces (skipped without ../shared):
 *  - kill -9 mid-epoch, --resume: the final weights, Adam state and
 *    running_sd equal those of an uninterrupted run, bit for bit (same seed,
 *    same thread count); likewise a graceful stop (--steps) and resume;
 *  - the output is a single-network model for wcm_model_load / `wcm info`,
 *    with OUT.log.csv and OUT.svg next to it;
 *  - --intensity none is recorded and must match on --resume;
 *  - --batch-norm frozen calibrates running_sd, is recorded and must match on --resume;
 *  - bad input: empty folder, all images too small, an unreadable file,
 *    --resume with a checkpoint of another architecture, a NaN loss (stops
 *    with a clear message and keeps the last good checkpoint). */
#include "net_internal.h"
#include "testutil.h"
#include "wcm/io.h"
#include "wcm/model.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char tmp[256], cache[300], data[1024];

/* Runs the CLI with `args`; output to `log`; returns the exit status. */
static int wcm(const char *args, const char *log) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' train --threads 2 %s --cache '%s' > '%s/%s' 2>&1", WCM_CLI_PATH, args, cache, tmp, log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int log_has_(const char *log, const char *needle, int expected) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmp, log);
    unsigned char *text;
    size_t len;
    wcm_error err;
    if (wcm_read_file(path, &text, &len, &err)) return 0;
    int found = strstr((const char *)text, needle) != NULL;
    if (found != expected) printf("     (log %s: %s)\n", log, (const char *)text);
    free(text);
    return found;
}
static int log_has(const char *log, const char *needle) { return log_has_(log, needle, 1); }
static int log_lacks(const char *log, const char *needle) { return !log_has_(log, needle, 0); }

/* Exact comparison of every tensor, and of the step counter. */
static int same_checkpoint(const char *a, const char *b, char *why, size_t n) {
    wcm_array_list la, lb;
    wcm_error err;
    wcm_array_list_init(&la), wcm_array_list_init(&lb);
    int same = !wcm_safetensors_read(a, &la, &err) && !wcm_safetensors_read(b, &lb, &err) && la.count == lb.count;
    snprintf(why, n, "%d tensors", la.count);
    for (int i = 0; same && i < la.count; i++) {
        const wcm_array *x = &la.items[i], *y = wcm_array_list_find(&lb, x->name);
        if (!y || wcm_array_count(x) != wcm_array_count(y) ||
            memcmp(x->data, y->data, sizeof(float) * (size_t)wcm_array_count(x))) {
            snprintf(why, n, "tensor %s differs", x->name);
            same = 0;
        }
    }
    const char *sa = wcm_array_list_get_meta(&la, "wcm.train.step"), *sb = wcm_array_list_get_meta(&lb, "wcm.train.step");
    if (same && (!sa || !sb || strcmp(sa, sb))) snprintf(why, n, "steps differ"), same = 0;
    wcm_array_list_free(&la), wcm_array_list_free(&lb);
    return same;
}

static long checkpoint_step(const char *path) {
    wcm_array_list l;
    wcm_error err;
    wcm_array_list_init(&l);
    long step = -1;
    if (!wcm_safetensors_read(path, &l, &err)) {
        const char *s = wcm_array_list_get_meta(&l, "wcm.train.step");
        if (s) step = atol(s);
    }
    wcm_array_list_free(&l);
    return step;
}

#define RUN_ARGS "--kind conditional --rf 5 --data '%s' --max-images 144 --test-fraction 0.1 --patch 32 --batch 16 " \
                 "--epochs 3 --seed 11 --save-every 3"

int main(void) {
    snprintf(data, sizeof data, "%s/data/celeba/train", t_shared_dir());
    if (!t_is_dir(data)) SKIP("no training images at %s", data);
    if (access(WCM_CLI_PATH, X_OK)) SKIP("the wcm CLI is not built (%s)", WCM_CLI_PATH);
    snprintf(tmp, sizeof tmp, "/tmp/wcm_train_XXXXXX");
    if (!mkdtemp(tmp)) SKIP("cannot create a temporary directory");
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    char args[4096], a_out[600], b_out[600], c_out[600], why[256];
    snprintf(a_out, sizeof a_out, "%s/a.safetensors", tmp);
    snprintf(b_out, sizeof b_out, "%s/b.safetensors", tmp);
    snprintf(c_out, sizeof c_out, "%s/c.safetensors", tmp);

    /* 1. The uninterrupted run. 130 training images, 9 batches per epoch. */
    snprintf(args, sizeof args, RUN_ARGS " -o '%s'", data, a_out);
    CHECK(wcm(args, "a.log") == 0, "uninterrupted run (3 epochs of 9 batches) exits 0");
    wcm_model m;
    wcm_error err;
    int loaded = !wcm_model_load(a_out, &m, &err);
    CHECK(loaded && !m.multiscale && m.net->kind == WCM_NET_CONDITIONAL && m.net->rf == 5,
          "output loads with wcm_model_load as a single conditional RF 5 network");
    if (loaded) wcm_model_free(&m);
    char path[700], cmd[4096];
    snprintf(path, sizeof path, "%s/a.log.csv", tmp);
    unsigned char *text;
    size_t len;
    int csv = !wcm_read_file(path, &text, &len, &err);
    int lines = 0;
    for (size_t i = 0; csv && i < len; i++) lines += text[i] == '\n';
    CHECK(csv && lines == 4 && !strncmp((char *)text, "epoch,train_loss,train_psnr,test_psnr,lr,seconds", 48),
          "a.log.csv has the header and 3 epoch rows (%d lines)", lines);
    if (csv) free(text);
    snprintf(path, sizeof path, "%s/a.svg", tmp);
    int svg = !wcm_read_file(path, &text, &len, &err);
    CHECK(svg && strstr((char *)text, "<svg") && strstr((char *)text, "PSNR"), "a.svg holds the loss and PSNR plots");
    if (svg) free(text);
    snprintf(cmd, sizeof cmd, "'%s' info '%s' > /dev/null", WCM_CLI_PATH, a_out);
    CHECK(system(cmd) == 0, "wcm info reads the trained model");

    /* 2. kill -9 mid-epoch, then --resume. wcm is spawned directly so the
     * signal reaches it (not a shell). */
    char log_b[600];
    snprintf(log_b, sizeof log_b, "%s/b.log", tmp);
    char *argv[] = {(char *)WCM_CLI_PATH, "train", "--threads", "2", "--kind", "conditional", "--rf", "5", "--data", data,
                    "--max-images", "144", "--test-fraction", "0.1", "--patch", "32", "--batch", "16", "--epochs", "3",
                    "--seed", "11", "--save-every", "3", "-o", b_out, "--cache", cache, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int killed = 0, finished = 0;
    long at = -1;
    if (posix_spawn(&pid, WCM_CLI_PATH, &fa, NULL, argv, environ) == 0) {
        /* Wait for a mid-epoch checkpoint (step 3 or 6 of an epoch of 9), then kill. */
        for (int i = 0; i < 60000 && !killed && !finished; i++) {
            at = checkpoint_step(b_out);
            if (at >= 3 && at % 9 != 0) killed = kill(pid, SIGKILL) == 0;
            int st;
            if (!killed && waitpid(pid, &st, WNOHANG) == pid) finished = 1;
            usleep(2000);
        }
        if (!finished) waitpid(pid, NULL, 0);
    }
    posix_spawn_file_actions_destroy(&fa);
    long left = checkpoint_step(b_out);
    CHECK(killed && left < 27, "run killed with SIGKILL after its checkpoint at step %ld (mid-epoch), leaving step %ld of 27",
          at, left);
    snprintf(args, sizeof args, RUN_ARGS " -o '%s' --resume", data, b_out);
    CHECK(wcm(args, "b2.log") == 0 && log_has("b2.log", "resuming"), "--resume continues the killed run");
    CHECK(same_checkpoint(a_out, b_out, why, sizeof why),
          "killed + resumed run equals the uninterrupted one bit for bit (%s)", why);

    /* 3. Graceful stop after 13 steps (mid-epoch 2) on one thread, then resume
     * on two: the result does not depend on the thread count either. */
    snprintf(args, sizeof args, RUN_ARGS " -o '%s' --steps 13 --threads 1", data, c_out);
    CHECK(wcm(args, "c.log") == 0 && checkpoint_step(c_out) == 13, "--steps 13 (1 thread) stops with a checkpoint at step 13");
    snprintf(args, sizeof args, RUN_ARGS " -o '%s' --resume", data, c_out);
    CHECK(wcm(args, "c2.log") == 0 && same_checkpoint(a_out, c_out, why, sizeof why),
          "stopped (1 thread) + resumed (2 threads) run equals the uninterrupted one (%s)", why);

    /* 4. Bad input. */
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    mkdir(empty, 0755);
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' -o '%s/e.safetensors'", empty, tmp);
    CHECK(wcm(args, "e.log") == 1 && log_has("e.log", "no images"), "empty folder: exit 1, \"no images\"");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --max-images 5 --crop 400 -o '%s/s.safetensors'", data, tmp);
    CHECK(wcm(args, "s.log") == 1 && log_has("s.log", "5 smaller than"), "all images too small: exit 1, counted");
    /* a folder with 3 faces and one broken file */
    char mixed[600];
    snprintf(mixed, sizeof mixed, "%s/mixed", tmp);
    mkdir(mixed, 0755);
    snprintf(cmd, sizeof cmd, "cp $(ls -d '%s'/* | head -3) '%s'/ && echo 'not an image' > '%s/broken.png'", data, mixed, mixed);
    CHECK(system(cmd) == 0, "made a folder of 3 faces and a broken .png");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 1 -o '%s/m.safetensors'",
             mixed, tmp);
    CHECK(wcm(args, "m.log") == 0 && log_has("m.log", "3 images of 160x160 (1 unreadable"),
          "unreadable file skipped and counted");
    CHECK(log_has("b.log", ", cache "), "second run on the same folder and options maps the cached images");
    snprintf(cmd, sizeof cmd, "cp \"$(ls -d '%s'/* | sed -n 4p)\" '%s'/", data, mixed);
    CHECK(system(cmd) == 0, "added a fourth face to the folder");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 1 --force -o '%s/m.safetensors'",
             mixed, tmp);
    CHECK(wcm(args, "m2.log") == 0 && log_has("m2.log", "4 images of 160x160") && log_lacks("m2.log", ", cache "),
          "a changed folder rebuilds the cache (4 images)");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 200 --batch 2 --epochs 1 --force -o '%s/m.safetensors'",
             mixed, tmp);
    CHECK(wcm(args, "p.log") == 1 && log_has("p.log", "patch 200 needs images of at least 200x200"), "a patch larger than the images: clear error");
    snprintf(args, sizeof args, "--kind lowpass --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 1 -o '%s/m.safetensors' --resume",
             mixed, tmp);
    CHECK(wcm(args, "r.log") == 1 && log_has("r.log", "another architecture"),
          "--resume with a checkpoint of another architecture: exit 1, clear message");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 1 --epochs 1 -o '%s/m.safetensors'",
             mixed, tmp);
    CHECK(wcm(args, "x.log") == 1 && log_has("x.log", "exists"), "existing output without --resume/--force is refused");
    /* --intensity: stored in the checkpoint; a resume must ask for the same. */
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 1 --intensity none "
             "-o '%s/i.safetensors'", mixed, tmp);
    CHECK(wcm(args, "i.log") == 0 && log_lacks("i.log", "intensity x U(0,1)"), "--intensity none trains without the U(0,1) scaling");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 2 -o '%s/i.safetensors' --resume",
             mixed, tmp);
    CHECK(wcm(args, "i2.log") == 1 && log_has("i2.log", "--intensity none"), "--resume with another --intensity: exit 1, names it");
    snprintf(args, sizeof args, "--kind conditional --rf 5 --data '%s' --intensity none -o '%s/j.safetensors'", mixed, tmp);
    CHECK(wcm(args, "i3.log") == 1 && log_has("i3.log", "flat and low-pass"), "--intensity with a conditional net is refused");
    /* --batch-norm frozen: calibrated once, stored, must match on --resume. */
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 1 --batch-norm frozen "
             "-o '%s/bn.safetensors'", mixed, tmp);
    CHECK(wcm(args, "b.log") == 0 && log_has("b.log", "batch norm frozen: running_sd from the statistics of"),
          "--batch-norm frozen calibrates running_sd, then trains");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 2 --epochs 2 -o '%s/bn.safetensors' --resume",
             mixed, tmp);
    CHECK(wcm(args, "b2.log") == 1 && log_has("b2.log", "--batch-norm frozen"), "--resume with another --batch-norm: exit 1, names it");
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --batch-norm sometimes -o '%s/b3.safetensors'", mixed, tmp);
    CHECK(wcm(args, "b3.log") == 1 && log_has("b3.log", "batch or frozen"), "--batch-norm with an unknown mode is refused");
    /* NaN: an absurd learning rate blows the weights up at step 1; step 2's loss is NaN */
    char n_out[600];
    snprintf(n_out, sizeof n_out, "%s/n.safetensors", tmp);
    snprintf(args, sizeof args, "--kind flat --rf 5 --data '%s' --test-fraction 0 --patch 8 --batch 1 --epochs 1 --lr 1e30 "
             "--save-every 1 -o '%s'", mixed, n_out);
    CHECK(wcm(args, "n.log") == 1 && log_has("n.log", "NaN"), "NaN loss: exit 1 with a clear message");
    CHECK(log_has("n.log", "keeps the last good checkpoint (step 1)") && checkpoint_step(n_out) == 1,
          "the last good checkpoint (step 1) is kept");
    loaded = !wcm_model_load(n_out, &m, &err);
    CHECK(loaded, "the kept checkpoint still loads");
    if (loaded) wcm_model_free(&m);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (getenv("WCM_KEEP_TMP")) snprintf(cmd, sizeof cmd, "echo kept %s", tmp);
    if (system(cmd)) printf("could not remove %s\n", tmp);
    return t_done("test_train_resume_slow");
}
