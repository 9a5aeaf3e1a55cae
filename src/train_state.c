/* Training progress <-> checkpoint metadata (see wcm/train_state.h). Text is
 * built in growable buffers and parsed with the strict number helpers, so a
 * tampered checkpoint is refused with a message instead of corrupting
 * memory. */
#include "wcm/train_state.h"
#include "json.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wcm_train_state_free(wcm_train_state *s) {
    if (!s) return;
    free(s->rows);
    memset(s, 0, sizeof *s);
}

int wcm_train_state_add_row(wcm_train_state *s, const wcm_epoch_row *row, wcm_error *err) {
    if (s->nrows == s->cap) {
        if (s->cap > INT_MAX / 2) return wcm_fail(err, WCM_ERR_NOMEM, "training history too long");
        int cap = s->cap ? 2 * s->cap : 64;
        wcm_epoch_row *rows = realloc(s->rows, (size_t)cap * sizeof *rows);
        if (!rows) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        s->rows = rows, s->cap = cap;
    }
    s->rows[s->nrows++] = *row;
    return WCM_OK;
}

/* ---- writing ------------------------------------------------------------------ */

/* Sets `key` to one formatted number (at most a few dozen characters). */
static int put_number(wcm_array_list *m, const char *key, wcm_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int put_number(wcm_array_list *m, const char *key, wcm_error *err, const char *fmt, ...) {
    char text[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return wcm_array_list_set_meta(m, key, text, err);
}

int wcm_train_state_to_meta(const wcm_train_state *s, wcm_array_list *m, wcm_error *err) {
    int rc = put_number(m, "wcm.train.epoch", err, "%d", s->epoch);
    if (!rc) rc = put_number(m, "wcm.train.batch_in_epoch", err, "%d", s->batch);
    if (!rc) rc = put_number(m, "wcm.train.step", err, "%lld", s->step);
    const char *sum_keys[3] = {"wcm.state.loss_sum", "wcm.state.psnr_sum", "wcm.state.seconds"};
    const double sums[3] = {s->loss_sum, s->psnr_sum, s->seconds};
    for (int i = 0; i < 3 && !rc; i++) rc = put_number(m, sum_keys[i], err, "%.17g", sums[i]);
    wcm_json_buf b;
    wcm_json_buf_init(&b);
    wcm_json_buf_puts(&b, ""); /* an empty history is "" */
    for (int i = 0; i < s->nrows; i++) {
        const wcm_epoch_row *r = &s->rows[i];
        wcm_json_buf_printf(&b, "%s%.0f,%.17g,%.17g,%.17g,%.17g,%.17g", i ? ";" : "", r->epoch, r->loss, r->psnr,
                            r->test_psnr, r->lr, r->seconds);
    }
    if (!rc && b.failed) rc = wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    if (!rc) rc = wcm_array_list_set_meta(m, "wcm.state.history", b.data, err);
    wcm_json_buf_free(&b);
    return rc;
}

int wcm_train_state_log_csv(const wcm_train_state *s, char **text, size_t *len, wcm_error *err) {
    wcm_json_buf b;
    wcm_json_buf_init(&b);
    wcm_json_buf_puts(&b, "epoch,train_loss,train_psnr,test_psnr,lr,seconds\n");
    for (int i = 0; i < s->nrows; i++) {
        const wcm_epoch_row *r = &s->rows[i];
        wcm_json_buf_printf(&b, "%.0f,%.6g,%.4f,%.4f,%.6g,%.1f\n", r->epoch, r->loss, r->psnr, r->test_psnr, r->lr,
                            r->seconds);
    }
    if (b.failed) {
        wcm_json_buf_free(&b);
        return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    }
    *text = b.data;
    *len = b.len;
    return WCM_OK;
}

/* ---- reading ------------------------------------------------------------------ */

static int bad_value(const char *key, const char *value, const char *want, wcm_error *err) {
    return wcm_fail(err, WCM_ERR_FORMAT, "training state %s = '%.60s' is not %s", key, value, want);
}

static int get_int(const wcm_array_list *m, const char *key, int64_t hi, int64_t *out, wcm_error *err) {
    const char *v = wcm_array_list_get_meta(m, key);
    if (!v) return wcm_fail(err, WCM_ERR_FORMAT, "training state lacks %s", key);
    if (wcm_parse_int64(v, 0, hi, out)) return bad_value(key, v, "a count in range", err);
    return WCM_OK;
}

/* Optional finite double in [lo, hi] (0 when the key is absent). */
static int get_double(const wcm_array_list *m, const char *key, double lo, double hi, double *out, wcm_error *err) {
    const char *v = wcm_array_list_get_meta(m, key);
    *out = 0;
    if (v && wcm_parse_double(v, lo, hi, out)) return bad_value(key, v, "a finite number in range", err);
    return WCM_OK;
}

/* One history field: a finite number in [lo, hi], or NaN where allowed. */
static int history_field(const char *text, size_t n, double lo, double hi, int nan_ok, double *out) {
    char buf[64];
    if (n == 0 || n >= sizeof buf) return WCM_ERR_FORMAT;
    memcpy(buf, text, n);
    buf[n] = 0;
    if (nan_ok && (!strcmp(buf, "nan") || !strcmp(buf, "-nan"))) {
        *out = NAN;
        return WCM_OK;
    }
    return wcm_parse_double(buf, lo, hi, out);
}

/* "e,loss,psnr,test,lr,seconds;..." with row i numbered i + 1. */
static int parse_history(const char *h, wcm_train_state *s, wcm_error *err) {
    static const struct {
        double lo, hi;
        int nan_ok;
    } field[6] = {{1, WCM_TRAIN_MAX_EPOCH, 0}, {0, DBL_MAX, 0}, {-1e6, 1e6, 0},
                  {-1e6, 1e6, 1},          {0, 1e6, 0},     {0, 1e15, 0}};
    const char *p = h;
    while (*p) {
        double f[6];
        for (int k = 0; k < 6; k++) {
            const char *end = p + strcspn(p, k < 5 ? ",;" : ";");
            if ((k < 5 && *end != ',') || history_field(p, (size_t)(end - p), field[k].lo, field[k].hi, field[k].nan_ok, &f[k]))
                return wcm_fail(err, WCM_ERR_FORMAT, "training state wcm.state.history: row %d, field %d is malformed or "
                                "out of range", s->nrows + 1, k + 1);
            p = *end ? end + 1 : end;
        }
        if (f[0] != s->nrows + 1)
            return wcm_fail(err, WCM_ERR_FORMAT, "training state wcm.state.history: row %d is numbered %.0f", s->nrows + 1, f[0]);
        wcm_epoch_row row = {f[0], f[1], f[2], f[3], f[4], f[5]};
        int rc = wcm_train_state_add_row(s, &row, err);
        if (rc) return rc;
        if (p > h && p[-1] == ';' && !*p)
            return wcm_fail(err, WCM_ERR_FORMAT, "training state wcm.state.history ends with ';'");
    }
    return WCM_OK;
}

int wcm_train_state_from_meta(const wcm_array_list *m, wcm_train_state *s, wcm_error *err) {
    memset(s, 0, sizeof *s);
    int64_t epoch, batch, step;
    int rc = get_int(m, "wcm.train.epoch", WCM_TRAIN_MAX_EPOCH, &epoch, err);
    if (!rc) rc = get_int(m, "wcm.train.batch_in_epoch", INT_MAX, &batch, err);
    if (!rc) rc = get_int(m, "wcm.train.step", WCM_TRAIN_MAX_STEP, &step, err);
    if (!rc) rc = get_double(m, "wcm.state.loss_sum", 0, DBL_MAX, &s->loss_sum, err);
    if (!rc) rc = get_double(m, "wcm.state.psnr_sum", -DBL_MAX, DBL_MAX, &s->psnr_sum, err);
    if (!rc) rc = get_double(m, "wcm.state.seconds", 0, 1e15, &s->seconds, err);
    const char *h = wcm_array_list_get_meta(m, "wcm.state.history");
    if (!rc && !h) rc = wcm_fail(err, WCM_ERR_FORMAT, "training state lacks wcm.state.history");
    if (!rc) {
        s->epoch = (int)epoch, s->batch = (int)batch, s->step = step;
        rc = parse_history(h, s, err);
    }
    if (!rc && s->nrows != s->epoch)
        rc = wcm_fail(err, WCM_ERR_FORMAT, "training state: %d completed epochs but %d history rows", s->epoch, s->nrows);
    if (rc) wcm_train_state_free(s);
    return rc;
}
