/* wcm — checkpoint formats and file helpers.
 *
 * PyTorch `.pt` (zip + pickle protocol 2 state_dict) is read by a small,
 * restrictive parser that accepts only the opcodes and globals listed in
 * SPEC §3 and never executes anything. safetensors is wcm's native format. */
#ifndef WCM_IO_H
#define WCM_IO_H

#include "wcm/tensor.h"
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whole file into memory (malloc'd, NUL-terminated for convenience). */
int wcm_read_file(const char *path, unsigned char **buf, size_t *len, wcm_error *err);

/* Atomic output: write to "<path>.tmp.<pid>", then rename over `path`.
 * wcm_atomic_abort removes the temporary file (no partial output is left). */
typedef struct {
    FILE *fp;
    char *final_path;
    char *tmp_path;
} wcm_atomic_file;
int wcm_atomic_open(wcm_atomic_file *f, const char *path, wcm_error *err);
int wcm_atomic_commit(wcm_atomic_file *f, wcm_error *err);
void wcm_atomic_abort(wcm_atomic_file *f);
int wcm_write_file_atomic(const char *path, const void *buf, size_t len, wcm_error *err);

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
