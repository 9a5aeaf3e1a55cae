/* wcm — checkpoint formats and file helpers.
 *
 * PyTorch `.pt` (zip + pickle protocol 2 state_dict) is read by a small,
 * restrictive parser that accepts only the opcodes and globals listed in
 * docs/model.md §3 and never executes anything. safetensors is wcm's native format. */
#ifndef WCM_IO_H
#define WCM_IO_H

#include "wcm/tensor.h"
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whole file into memory (malloc'd, NUL-terminated for convenience). Only
 * regular files are read: a FIFO, device or directory is refused at once. */
int wcm_read_file(const char *path, unsigned char **buf, size_t *len, wcm_error *err);
/* Opens an existing regular file read-only without blocking (FIFOs and
 * devices are refused); returns the descriptor and its size, or a negative
 * wcm_status. */
int wcm_open_regular(const char *path, size_t *size, wcm_error *err);

/* Safe output, used for every file wcm writes: the data goes to a temporary
 * "<path>.wcm-tmp.<pid>.<random>" in the same folder (created with
 * O_CREAT|O_EXCL|O_NOFOLLOW), is fsync'ed and renamed over `path`. Only a
 * regular file is replaced: a symlink, directory, FIFO, socket or device
 * node at `path` is refused. wcm_atomic_abort removes the temporary (no
 * partial output is left); temporaries of processes that died are removed by
 * the next write into their folder. */
typedef struct {
    FILE *fp;
    char *final_path;
    char *tmp_path;
    int slot; /* entry in the table of live temporaries, or -1 */
} wcm_atomic_file;
int wcm_atomic_open(wcm_atomic_file *f, const char *path, wcm_error *err);
int wcm_atomic_commit(wcm_atomic_file *f, wcm_error *err);
void wcm_atomic_abort(wcm_atomic_file *f);
int wcm_write_file_atomic(const char *path, const void *buf, size_t len, wcm_error *err);
/* Deletes every temporary this process has open for a safe write. Only
 * async-signal-safe calls: meant for SIGINT/SIGTERM handlers, which then end
 * the process (the files stay open). */
void wcm_atomic_remove_temporaries(void);

/* PyTorch state_dict (.pt zip). Tensor names keep their keys ("module."
 * prefix stripped). Only float32 tensors are accepted. */
int wcm_torch_read(const char *path, wcm_array_list *out, wcm_error *err);
int wcm_torch_parse(const unsigned char *buf, size_t len, wcm_array_list *out, wcm_error *err);

/* safetensors: JSON header (u64 little-endian length + JSON) and raw
 * little-endian data. Reading accepts F32, F16, BF16 and F64 (converted to
 * float); `__metadata__` goes to the list's meta pairs. */
int wcm_safetensors_read(const char *path, wcm_array_list *out, wcm_error *err);
int wcm_safetensors_parse(const unsigned char *buf, size_t len, wcm_array_list *out, wcm_error *err);
/* Writes every array as F32, or as F16 when `half` is non-zero. Atomic. */
int wcm_safetensors_write(const char *path, const wcm_array_list *l, int half, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif
