/* wcm — float32 tensors (activations in NHWC: channels innermost) and .npy I/O. */
#ifndef WCM_TENSOR_H
#define WCM_TENSOR_H

#include "wcm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A block of a backend's memory (wcm/backend.h). */
typedef struct wcm_buffer wcm_buffer;

/* A batch of images, NHWC, float32. data is element 0 in the memory of
 * `buffer`: NULL (the usual case) means host memory, owned when it came from
 * wcm_tensor_alloc (data from wcm_alloc); otherwise a backend's buffer
 * (wcm_tensor_alloc_on in wcm/backend.h), freed with the tensor. */
typedef struct {
    int n, h, w, c;
    float *data;
    wcm_buffer *buffer;
} wcm_tensor;

int wcm_tensor_alloc(wcm_tensor *t, int n, int h, int w, int c, wcm_error *err);
void wcm_tensor_free(wcm_tensor *t);
size_t wcm_tensor_count(const wcm_tensor *t);
int wcm_tensor_copy(wcm_tensor *dst, const wcm_tensor *src, wcm_error *err);
/* Index of element (n, y, x, ch). */
static inline size_t wcm_tensor_idx(const wcm_tensor *t, int n, int y, int x, int ch) {
    return (((size_t)n * t->h + y) * t->w + x) * t->c + ch;
}
/* Non-zero if every element is finite. */
int wcm_tensor_all_finite(const wcm_tensor *t);
/* Index of the first element outside [lo, hi] (NaN counts as outside), or
 * the element count when every element lies inside. Host tensors. */
size_t wcm_tensor_first_outside(const wcm_tensor *t, float lo, float hi);

/* A dense float32 array in C order with an arbitrary shape (checkpoint tensors,
 * npy arrays before layout conversion). */
#define WCM_MAX_DIMS 8
typedef struct {
    char *name;                 /* owned, may be NULL */
    int ndim;
    int64_t shape[WCM_MAX_DIMS];
    float *data;                /* owned, malloc'd */
} wcm_array;

/* Number of elements; -1 when the shape is invalid or the product overflows. */
int64_t wcm_array_count(const wcm_array *a);
void wcm_array_free(wcm_array *a);

/* An ordered list of named arrays plus string metadata (key/value pairs in
 * insertion order, with a hashed index: setting and getting a key is O(1)). */
typedef struct {
    wcm_array *items;
    int count, cap;
    char **meta_keys, **meta_vals;
    int meta_count, meta_cap;
    int *meta_index;      /* internal: hash slots of the metadata keys */
    int meta_index_cap;
    uint64_t meta_seed[2];
} wcm_array_list;

void wcm_array_list_init(wcm_array_list *l);
void wcm_array_list_free(wcm_array_list *l);
/* Takes ownership of a->name and a->data (a is cleared). */
int wcm_array_list_push(wcm_array_list *l, wcm_array *a, wcm_error *err);
const wcm_array *wcm_array_list_find(const wcm_array_list *l, const char *name);
int wcm_array_list_set_meta(wcm_array_list *l, const char *key, const char *val, wcm_error *err);
const char *wcm_array_list_get_meta(const wcm_array_list *l, const char *key);

/* .npy: read float32/float64 little-endian C-order arrays (any ndim <= 8);
 * Fortran order, other dtypes and malformed headers are refused. */
int wcm_npy_read(const char *path, wcm_array *out, wcm_error *err);
int wcm_npy_parse(const unsigned char *buf, size_t len, wcm_array *out, wcm_error *err);
/* Write float32 C order, atomically (temporary file + rename). */
int wcm_npy_write(const char *path, const wcm_array *a, wcm_error *err);

/* Layout conversion: NCHW array (ndim 4, or 3 = CHW, or 2 = HW) <-> NHWC tensor. */
int wcm_tensor_from_nchw(wcm_tensor *t, const wcm_array *a, wcm_error *err);
int wcm_tensor_to_nchw(wcm_array *a, const wcm_tensor *t, wcm_error *err);

#ifdef __cplusplus
}
#endif
#endif
