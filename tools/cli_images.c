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

int cli_folder_list(const char *cmd, const char *in_dir, const char *out_dir, char ***paths, int *count, int *skipped) {
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) return cli_error(cmd, "cannot create folder %s: %s", out_dir, strerror(errno));
    wcm_error err;
    *paths = NULL;
    *count = *skipped = 0;
    if (wcm_list_images(in_dir, paths, count, skipped, &err)) return cli_lib_error(cmd, &err);
    if (*count) return 0;
    wcm_free_paths(*paths, *count);
    *paths = NULL;
    return cli_error(cmd, "no images (.png .jpg .jpeg .npy) in %s", in_dir);
}

int cli_folder_reports(const char *out_dir, const wcm_json_buf *csv, const wcm_json_buf *log, wcm_error *err) {
    if (csv->failed || log->failed) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory for the reports");
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.csv", out_dir);
    int rc = wcm_write_file_atomic(path, csv->data, csv->len, err);
    snprintf(path, sizeof path, "%s/log.json", out_dir);
    return rc ? rc : wcm_write_file_atomic(path, log->data, log->len, err);
}
