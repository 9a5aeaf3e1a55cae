/* The training state in checkpoint metadata (wcm/train_state.h; issue 27,
 * D2): exact round trip, the CSV log, and refusal of every tampered value
 * (negative or huge counts, history rows that do not match the epochs or hold
 * 1e300, malformed numbers) by the parser and by `wcm train --resume`, which
 * crashed on such files before (SEGV in memcpy, heap overflow in the log). */
#include "craft.h"
#include "testutil.h"
#include "wcm/io.h"
#include "wcm/train_state.h"

#include <sys/wait.h>
#include <unistd.h>

static void sample_state(wcm_train_state *s) {
    wcm_error err;
    memset(s, 0, sizeof *s);
    s->epoch = 3, s->batch = 1, s->step = 31;
    s->loss_sum = 0.1234567890123, s->psnr_sum = 29.5, s->seconds = 12.25;
    for (int e = 1; e <= 3; e++) {
        wcm_epoch_row r = {e, 1.0 / e, 20 + e, e == 2 ? NAN : 25.5 + e, 1e-3 / e, 4.0 * e};
        REQUIRE_OK(wcm_train_state_add_row(s, &r, &err), &err);
    }
}

static int same_rows(const wcm_train_state *a, const wcm_train_state *b) {
    if (a->nrows != b->nrows) return 0;
    for (int i = 0; i < a->nrows; i++) {
        const double *x = &a->rows[i].epoch, *y = &b->rows[i].epoch;
        for (int k = 0; k < 6; k++)
            if (!(x[k] == y[k] || (isnan(x[k]) && isnan(y[k])))) return 0;
    }
    return 1;
}

static void test_round_trip(void) {
    wcm_train_state s, r;
    wcm_error err;
    wcm_array_list m;
    wcm_array_list_init(&m);
    sample_state(&s);
    REQUIRE_OK(wcm_train_state_to_meta(&s, &m, &err), &err);
    REQUIRE_OK(wcm_train_state_from_meta(&m, &r, &err), &err);
    CHECK(r.epoch == 3 && r.batch == 1 && r.step == 31 && r.loss_sum == s.loss_sum && r.psnr_sum == 29.5 &&
              r.seconds == 12.25 && same_rows(&s, &r),
          "state round trip: counts, sums and 3 history rows (one test PSNR NaN) exact");
    char *csv;
    size_t len;
    REQUIRE_OK(wcm_train_state_log_csv(&r, &csv, &len, &err), &err);
    const char *want = "epoch,train_loss,train_psnr,test_psnr,lr,seconds\n1,1,21.0000,26.5000,0.001,4.0\n"
                       "2,0.5,22.0000,nan,0.0005,8.0\n3,0.333333,23.0000,28.5000,0.000333333,12.0\n";
    CHECK(len == strlen(want) && !strcmp(csv, want), "CSV log text as before:\n%s", csv);
    free(csv);
    wcm_train_state_free(&r);
    wcm_array_list_free(&m);

    wcm_train_state empty = {0};
    wcm_array_list_init(&m);
    REQUIRE_OK(wcm_train_state_to_meta(&empty, &m, &err), &err);
    REQUIRE_OK(wcm_train_state_from_meta(&m, &r, &err), &err);
    CHECK(r.epoch == 0 && r.nrows == 0 && !strcmp(wcm_array_list_get_meta(&m, "wcm.state.history"), ""),
          "a fresh run's state (no rows) round-trips");
    wcm_train_state_free(&r);
    wcm_array_list_free(&m);
    wcm_train_state_free(&s);
}

typedef struct {
    const char *key, *value, *needle, *what;
} tamper;

static const tamper tampers[] = {
    {"wcm.train.batch_in_epoch", "-1000", "batch_in_epoch", "a negative batch (was a SEGV in memcpy)"},
    {"wcm.state.history", "1e300,1e300,1e300,1e300,1e300,1e300;2,1,1,1,1,1;3,1,1,1,1,1", "row 1", "history of 1e300 (was a heap overflow in the log)"},
    {"wcm.train.epoch", "999999999999", "wcm.train.epoch", "an epoch count beyond int"},
    {"wcm.train.epoch", "7", "7 completed epochs but 3", "more epochs than history rows"},
    {"wcm.train.epoch", "2", "2 completed epochs but 3", "fewer epochs than history rows (rows would overrun)"},
    {"wcm.train.step", "-5", "wcm.train.step", "a negative step"},
    {"wcm.train.step", "12abc", "wcm.train.step", "trailing text in a number"},
    {"wcm.train.epoch", " 3", "wcm.train.epoch", "a leading space"},
    {"wcm.state.loss_sum", "nan", "loss_sum", "a NaN loss sum"},
    {"wcm.state.seconds", "-1", "seconds", "negative training time"},
    {"wcm.state.psnr_sum", "inf", "psnr_sum", "an infinite PSNR sum"},
    {"wcm.state.history", "1,1,1,1,1,1;2,1,1,1,1,1;4,1,1,1,1,1", "numbered 4", "rows out of order"},
    {"wcm.state.history", "1,1,1,1,1,1;2,1,1,1,1,1;3,1,1,1,1,1;", "ends with", "a trailing ';'"},
    {"wcm.state.history", "1,1,1,1,1;2,1,1,1,1,1;3,1,1,1,1,1", "row 1", "a row of 5 fields"},
    {"wcm.state.history", "1,1,1,1,1,1,1;2,1,1,1,1,1;3,1,1,1,1,1", "row 1", "a row of 7 fields"},
    {"wcm.state.history", "1,nan,1,1,1,1;2,1,1,1,1,1;3,1,1,1,1,1", "row 1, field 2", "NaN where only the test PSNR may be"},
    {"wcm.state.history", "1,1,1,1,0x10,1;2,1,1,1,1,1;3,1,1,1,1,1", "field 5", "a hex float"},
    {"wcm.train.batch_in_epoch", NULL, "lacks wcm.train.batch_in_epoch", "a missing key"},
};

/* The metadata of the sample state with one key changed (NULL: removed). */
static void tampered_meta(const tamper *t, wcm_array_list *m) {
    wcm_train_state s;
    wcm_error err;
    sample_state(&s);
    wcm_array_list full;
    wcm_array_list_init(&full);
    wcm_array_list_init(m);
    REQUIRE_OK(wcm_train_state_to_meta(&s, &full, &err), &err);
    for (int i = 0; i < full.meta_count; i++) {
        int hit = !strcmp(full.meta_keys[i], t->key);
        if (hit && !t->value) continue;
        REQUIRE_OK(wcm_array_list_set_meta(m, full.meta_keys[i], hit ? t->value : full.meta_vals[i], &err), &err);
    }
    wcm_array_list_free(&full);
    wcm_train_state_free(&s);
}

static void test_tampered(void) {
    for (size_t i = 0; i < sizeof tampers / sizeof *tampers; i++) {
        wcm_array_list m;
        wcm_train_state r;
        wcm_error err = {{0}};
        tampered_meta(&tampers[i], &m);
        int rc = wcm_train_state_from_meta(&m, &r, &err);
        CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, tampers[i].needle) && r.rows == NULL && r.nrows == 0,
              "%s is refused: %s", tampers[i].what, err.msg);
        wcm_array_list_free(&m);
    }
}

/* ---- the CLI ---------------------------------------------------------------- */

static int run(const char *args, char *stderr_text, size_t size) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > stdout.txt 2> stderr.txt", t_dir, WCM_CLI_PATH, args);
    int st = system(cmd);
    unsigned char *text = NULL;
    size_t len = 0;
    wcm_error err;
    stderr_text[0] = 0;
    if (!wcm_read_file(t_at("stderr.txt"), &text, &len, &err)) snprintf(stderr_text, size, "%s", (char *)text);
    free(text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int lines_of(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_cli_resume(void) {
    mkdir(t_at("data"), 0700);
    unsigned long long seed = 5;
    for (int i = 0; i < 4; i++) {
        float px[32 * 32];
        for (int k = 0; k < 32 * 32; k++) px[k] = 0.5f + 0.4f * t_rand(&seed);
        bytes b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (32, 32), }", px, sizeof px);
        char name[32];
        snprintf(name, sizeof name, "data/im%d.npy", i);
        craft_write(t_at(name), b.data, b.len);
        free(b.data);
    }
    const char *train = "train --kind flat --rf 5 --data data --crop 32 --batch 2 --no-cache --quiet --threads 1";
    char args[1024], text[4096];
    snprintf(args, sizeof args, "%s --epochs 5 --steps 5 -o ck.safetensors", train);
    int rc = run(args, text, sizeof text);
    if (rc) {
        CHECK(0, "a 5-step training run makes a checkpoint: exit %d: %s", rc, text);
        return;
    }
    wcm_array_list l;
    wcm_error err;
    REQUIRE_OK(wcm_safetensors_read(t_at("ck.safetensors"), &l, &err), &err);
    struct {
        const char *key, *value, *what;
    } cases[] = {
        {"wcm.train.batch_in_epoch", "-1000", "batch_in_epoch -1000"},
        {"wcm.state.history", "1e300,1e300,1e300,1e300,1e300,1e300;2,1,1,1,1,1", "a history of 1e300"},
        {"wcm.train.epoch", "100000", "epoch 100000 without its history rows"},
        {"wcm.train.batch_in_epoch", "7", "a batch beyond the data's 2 batches per epoch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        REQUIRE_OK(wcm_array_list_set_meta(&l, cases[i].key, cases[i].value, &err), &err);
        REQUIRE_OK(wcm_safetensors_write(t_at("bad.safetensors"), &l, 0, &err), &err);
        wcm_array_list_free(&l);
        REQUIRE_OK(wcm_safetensors_read(t_at("ck.safetensors"), &l, &err), &err); /* untouched copy for the next case */
        snprintf(args, sizeof args, "%s --epochs 5 --resume -o bad.safetensors", train);
        rc = run(args, text, sizeof text);
        CHECK(rc == 1 && lines_of(text) == 1 && strstr(text, "cannot resume"), "train --resume of a checkpoint with %s: exit %d, %s",
              cases[i].what, rc, text);
    }
    wcm_array_list_free(&l);
    snprintf(args, sizeof args, "%s --epochs 5 --resume -o ck.safetensors", train);
    rc = run(args, text, sizeof text);
    CHECK(rc == 0, "the untouched checkpoint resumes and finishes its 5 epochs: exit %d %s", rc, text);
}

int main(void) {
    t_temp_dir("train_state");
    test_round_trip();
    test_tampered();
    test_cli_resume();
    t_temp_dir_remove();
    return t_done("test_train_state");
}
