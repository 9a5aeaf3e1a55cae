/* Shared pieces of the image commands (cli_images.h). */
#include "cli_images.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wcm/image.h"
#include "wcm/io.h"

static int color_explicit = 0, color_stated = 0;

int cli_parse_color(const char *cmd, cli_opt *o, cli_color *mode) {
    *mode = WCM_COLOR_PER_CHANNEL;
    color_explicit = o->set;
    if (o->set && wcm_color_mode_parse(o->value, mode))
        return cli_error(cmd, "--color must be per-channel, luma, luma-keep or gray, got '%s'", o->value);
    return 0;
}

const char *cli_color_name(cli_color mode) { return wcm_color_mode_name(mode); }

int cli_read_image(const char *cmd, const char *path, cli_color mode, wcm_tensor *img, wcm_error *err) {
    int rc = mode == WCM_COLOR_GRAY ? wcm_image_read(path, img, err) : wcm_image_read_color(path, img, err);
    if (!rc && img->c == 3 && !color_explicit && !color_stated) {
        color_stated = 1;
        cli_progress("wcm %s: colour image %s: the gray model runs on R, G and B separately (--color per-channel, "
                     "the default; also luma, luma-keep, gray)\n", cmd, cli_basename(path));
    }
    return rc;
}

int cli_write_image(const char *path, const wcm_tensor *img, int bits, wcm_error *err) {
    return wcm_image_write(path, img, 0, bits, err);
}

int cli_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cli_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void cli_output_name(char *buf, size_t size, const char *dir, const char *name) {
    const char *dot = strrchr(name, '.');
    const int stem = dot && dot != name ? (int)(dot - name) : (int)strlen(name);
    snprintf(buf, size, "%s/%.*s.png", dir, stem, name);
}

void cli_eta_start(cli_eta *e, int total) {
    e->total = total;
    e->done = 0;
    e->start = wcm_seconds();
}

void cli_eta_step(cli_eta *e, const char *cmd, const char *item) {
    e->done++;
    const double elapsed = wcm_seconds() - e->start;
    const double left = e->done < e->total ? elapsed / e->done * (e->total - e->done) : 0;
    cli_progress("wcm %s: [%d/%d] %s  %.1f s elapsed, ETA %.0f s\n", cmd, e->done, e->total, item, elapsed, left);
}

int cli_folder_begin(cli_folder *f, const char *cmd, const char *in_dir, const char *out_dir, const char *csv_header) {
    memset(f, 0, sizeof *f);
    f->cmd = cmd, f->out_dir = out_dir;
    wcm_error err;
    if (wcm_comm_world(&f->comm, &err)) return cli_lib_error(cmd, &err);
    const int rank = wcm_comm_rank(f->comm);
    if (rank == 0 && mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, "cannot create folder %s: %s", out_dir, strerror(errno));
    if (wcm_list_images(in_dir, &f->paths, &f->count, &f->skipped, &err)) return cli_lib_error(cmd, &err);
    if (!f->count) {
        wcm_free_paths(f->paths, f->count);
        return cli_error(cmd, "no images (.png .jpg .jpeg .npy) in %s", in_dir);
    }
    f->value = calloc((size_t)f->count, sizeof(double));
    f->has_value = calloc((size_t)f->count, sizeof(double));
    if (!f->value || !f->has_value) {
        free(f->value), free(f->has_value);
        wcm_free_paths(f->paths, f->count);
        return cli_error(cmd, "out of memory");
    }
    int share = 0;
    wcm_comm_share(f->count, rank, wcm_comm_size(f->comm), &f->index, &share);
    f->end = f->index + share;
    if (rank) cli_quiet = 1; /* progress from rank 0; failures still reach stderr */
    /* The other ranks' folder must exist before they write into it. */
    if (wcm_comm_barrier(f->comm, &err)) return cli_lib_error(cmd, &err);
    for (const char *c = csv_header; *c; c++) f->csv_fields += *c == ',';
    wcm_json_buf_init(&f->csv);
    wcm_json_buf_init(&f->log);
    if (rank == 0) wcm_json_buf_printf(&f->csv, "file,%s\n", csv_header);
    cli_eta_start(&f->eta, share);
    return 0;
}

void cli_folder_item(cli_folder *f) {
    if (!f->items_started) f->log_items_at = f->log.len, f->items_started = 1;
    const char *name = cli_basename(f->paths[f->index]);
    wcm_json_buf_csv(&f->csv, name);
    wcm_json_buf_puts(&f->log, f->index ? ",\n  {\"file\": " : "\n  {\"file\": ");
    wcm_json_buf_string(&f->log, name);
}

void cli_folder_item_failed(cli_folder *f, const wcm_error *err) {
    f->failed++;
    fprintf(stderr, "wcm %s: skipping %s: %s\n", f->cmd, f->paths[f->index], err->msg);
    for (int k = 0; k <= f->csv_fields; k++) wcm_json_buf_puts(&f->csv, ",");
    wcm_json_buf_csv(&f->csv, err->msg);
    wcm_json_buf_puts(&f->log, ", \"error\": ");
    wcm_json_buf_string(&f->log, err->msg);
}

void cli_folder_item_value(cli_folder *f, double v) {
    f->value[f->index] = v;
    f->has_value[f->index] = 1;
}

void cli_folder_item_done(cli_folder *f) {
    wcm_json_buf_puts(&f->csv, "\n");
    wcm_json_buf_puts(&f->log, "}");
    cli_eta_step(&f->eta, f->cmd, cli_basename(f->paths[f->index]));
    f->index++;
}

/* Rank r's text appended to rank 0's, for r = 1, 2, ... in turn (the shares
 * are contiguous, so this is image order). */
static int gather_text(wcm_comm *comm, wcm_json_buf *b, size_t skip, wcm_error *err) {
    const int rank = wcm_comm_rank(comm), size = wcm_comm_size(comm);
    for (int r = 1; r < size; r++) {
        double len = rank == r ? (double)(b->len - skip) : 0;
        int rc = wcm_comm_broadcast(comm, &len, sizeof len, r, err);
        if (rc) return rc;
        if (len <= 0) continue;
        char *text = rank == r ? b->data + skip : malloc((size_t)len + 1);
        if (!text) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for the reports");
        rc = wcm_comm_broadcast(comm, text, (size_t)len, r, err);
        if (!rc && rank == 0) wcm_json_buf_append(b, text, (size_t)len);
        if (rank != r) free(text);
        if (rc) return rc;
    }
    return WCM_OK;
}

int cli_folder_end(cli_folder *f, const char *verb, const char *value_label) {
    wcm_error err;
    const int rank = wcm_comm_rank(f->comm);
    double failed = f->failed;
    int rc = wcm_comm_allreduce_double(f->comm, &failed, 1, &err);
    if (!rc) rc = wcm_comm_allreduce_double(f->comm, f->value, (size_t)f->count, &err);
    if (!rc) rc = wcm_comm_allreduce_double(f->comm, f->has_value, (size_t)f->count, &err);
    if (!f->items_started) f->log_items_at = f->log.len; /* no items here: send nothing */
    if (!rc) rc = gather_text(f->comm, &f->csv, 0, &err);
    if (!rc) rc = gather_text(f->comm, &f->log, f->log_items_at, &err);
    f->failed = (int)failed;
    double sum = 0;
    int nvalues = 0;
    for (int i = 0; i < f->count; i++)
        if (f->has_value[i] > 0) sum += f->value[i], nvalues++;
    wcm_json_buf_printf(&f->log, "\n ],\n \"processed\": %d,\n \"failed\": %d,\n \"skipped_non_images\": %d\n}\n",
                        f->count - f->failed, f->failed, f->skipped);
    char path[4096];
    if (!rc && (f->csv.failed || f->log.failed)) rc = wcm_fail(&err, WCM_ERR_NOMEM, "out of memory for the reports");
    snprintf(path, sizeof path, "%s/summary.csv", f->out_dir);
    if (!rc && rank == 0) rc = wcm_write_file_atomic(path, f->csv.data, f->csv.len, &err);
    snprintf(path, sizeof path, "%s/log.json", f->out_dir);
    if (!rc && rank == 0) rc = wcm_write_file_atomic(path, f->log.data, f->log.len, &err);
    wcm_json_buf_free(&f->csv);
    wcm_json_buf_free(&f->log);
    wcm_free_paths(f->paths, f->count);
    free(f->value), free(f->has_value);
    if (rc) return cli_lib_error(f->cmd, &err);
    if (rank == 0) {
        printf("%s %d of %d images into %s", verb, f->count - f->failed, f->count, f->out_dir);
        if (value_label && nvalues) printf(", mean %s %.2f dB", value_label, sum / nvalues);
        printf(" (summary.csv, log.json)\n");
    }
    if (f->failed)
        return rank ? 1 : cli_error(f->cmd, "%d image%s could not be read or processed (see summary.csv)", f->failed,
                                    f->failed == 1 ? "" : "s");
    return 0;
}
