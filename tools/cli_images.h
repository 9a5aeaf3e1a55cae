/* Shared pieces of the image commands (denoise, superres): colour modes,
 * reading and writing gray or colour images, folders, a progress line with
 * an ETA, the default working memory of network passes. */
#ifndef WCM_CLI_IMAGES_H
#define WCM_CLI_IMAGES_H

#include <stddef.h>

#include "cli.h"
#include "wcm/comm.h"
#include "wcm/json.h"
#include "wcm/color.h"
#include "wcm/synth.h"

/* Default --memory: network passes above it run in exact tiles. */
#define CLI_DEFAULT_MEMORY_MB 256
#define CLI_DEFAULT_MEMORY_TEXT "256"

typedef wcm_color_mode cli_color;
/* --color MODE (absent: per-channel, stated once per run when a colour
 * image is met, see cli_read_image). */
int cli_parse_color(const char *cmd, cli_opt *o, cli_color *mode);
const char *cli_color_name(cli_color mode);
/* Read gray (mode gray) or colour (otherwise: RGB for colour files). */
int cli_read_image(const char *cmd, const char *path, cli_color mode, wcm_tensor *img, wcm_error *err);
/* Write a gray or RGB image (.png 8/16 bit, .jpg, .npy gray). */
int cli_write_image(const char *path, const wcm_tensor *img, int bits, wcm_error *err);

int cli_is_dir(const char *path);
const char *cli_basename(const char *path);
/* dir/NAME with NAME's extension replaced by .png. */
void cli_output_name(char *buf, size_t size, const char *dir, const char *name);

/* "[k/n] name, elapsed, ETA" on stderr after each item. */
typedef struct {
    int total, done;
    double start;
} cli_eta;
void cli_eta_start(cli_eta *e, int total);
void cli_eta_step(cli_eta *e, const char *cmd, const char *item);

/* A folder command: every image of in_dir (sorted by name) processed in
 * turn, a row of summary.csv and an entry of log.json's "images" each, a
 * progress line with ETA after each, failures reported and counted. Under
 * mpirun each rank processes a contiguous share of the images (items
 * [index, end)); rank 0 gathers the rows and entries in image order and
 * writes the reports, so every file equals one process's. */
typedef struct {
    const char *cmd, *out_dir;
    char **paths;
    int count, skipped, failed, index, end, csv_fields;
    wcm_json_buf csv, log; /* the caller appends its fields and the log's head (rank 0) */
    cli_eta eta;
    wcm_comm *comm;
    double *value, *has_value; /* per image: a figure to average (e.g. PSNR), and whether it has one */
    size_t log_items_at;       /* where this rank's entries start in log (after the caller's head) */
    int items_started;
} cli_folder;
/* out_dir created, images listed, the CSV header written (csv_header: the
 * fields after "file", comma-separated). 0, or 1 after printing why (also
 * when there are no images). */
int cli_folder_begin(cli_folder *f, const char *cmd, const char *in_dir, const char *out_dir, const char *csv_header);
/* Item f->index starts: its CSV file field and log "{"file": NAME" are written. */
void cli_folder_item(cli_folder *f);
/* The item failed with err: reported on stderr, empty CSV fields and the error. */
void cli_folder_item_failed(cli_folder *f, const wcm_error *err);
/* The item's figure for the summary line's mean. */
void cli_folder_item_value(cli_folder *f, double v);
/* The item is done (CSV line and log entry closed, progress line). */
void cli_folder_item_done(cli_folder *f);
/* Closes the log, writes summary.csv and log.json, frees; prints
 * "VERB n of m images into OUT_DIR", plus ", mean LABEL" of the items'
 * values when value_label is given and any item has one. Returns the exit
 * status. */
int cli_folder_end(cli_folder *f, const char *verb, const char *value_label);

/* `wcm superres MODEL IN_DIR OUT_DIR`: every image of in_dir (the
 * low-resolution input, or with from_hr the high-resolution reference whose
 * low-pass is the input) super-resolved into out_dir/NAME.png, image k with
 * sample sub-stream k; summary.csv and log.json. Returns the exit status. */
int cli_superres_folder(const char *cmd, const char *model_path, const wcm_model *m, int levels,
                        const wcm_synth_options *so, int from_hr, const char *in_dir, const char *out_dir);

#endif
