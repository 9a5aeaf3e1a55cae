/* Shared pieces of the image commands (cli_images.h). */
#include "cli_images.h"

#include <errno.h>
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
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) return cli_error(cmd, "cannot create folder %s: %s", out_dir, strerror(errno));
    wcm_error err;
    if (wcm_list_images(in_dir, &f->paths, &f->count, &f->skipped, &err)) return cli_lib_error(cmd, &err);
    if (!f->count) {
        wcm_free_paths(f->paths, f->count);
        return cli_error(cmd, "no images (.png .jpg .jpeg .npy) in %s", in_dir);
    }
    for (const char *c = csv_header; *c; c++) f->csv_fields += *c == ',';
    wcm_json_buf_init(&f->csv);
    wcm_json_buf_init(&f->log);
    wcm_json_buf_printf(&f->csv, "file,%s\n", csv_header);
    cli_eta_start(&f->eta, f->count);
    return 0;
}

void cli_folder_item(cli_folder *f) {
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

void cli_folder_item_done(cli_folder *f) {
    wcm_json_buf_puts(&f->csv, "\n");
    wcm_json_buf_puts(&f->log, "}");
    cli_eta_step(&f->eta, f->cmd, cli_basename(f->paths[f->index]));
    f->index++;
}

int cli_folder_end(cli_folder *f, const char *verb, const char *extra) {
    wcm_json_buf_printf(&f->log, "\n ],\n \"processed\": %d,\n \"failed\": %d,\n \"skipped_non_images\": %d\n}\n",
                        f->count - f->failed, f->failed, f->skipped);
    wcm_error err;
    char path[4096];
    int rc = f->csv.failed || f->log.failed ? wcm_fail(&err, WCM_ERR_NOMEM, "out of memory for the reports") : WCM_OK;
    snprintf(path, sizeof path, "%s/summary.csv", f->out_dir);
    if (!rc) rc = wcm_write_file_atomic(path, f->csv.data, f->csv.len, &err);
    snprintf(path, sizeof path, "%s/log.json", f->out_dir);
    if (!rc) rc = wcm_write_file_atomic(path, f->log.data, f->log.len, &err);
    wcm_json_buf_free(&f->csv);
    wcm_json_buf_free(&f->log);
    wcm_free_paths(f->paths, f->count);
    if (rc) return cli_lib_error(f->cmd, &err);
    printf("%s %d of %d images into %s%s (summary.csv, log.json)\n", verb, f->count - f->failed, f->count, f->out_dir, extra);
    if (f->failed)
        return cli_error(f->cmd, "%d image%s could not be read or processed (see summary.csv)", f->failed,
                         f->failed == 1 ? "" : "s");
    return 0;
}
