/* wcm — restricted reader for the pickle that torch.save writes for a
 * state_dict of float tensors (internal).
 *
 * This is not a Python unpickler: it evaluates a fixed whitelist of
 * data-building opcodes (protocol 2), knows three globals by name
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the
 * torch.*Storage type tags) and builds a small value tree. Nothing is ever
 * looked up or executed by name; anything else is refused with a message.
 *
 * Accepted opcodes: those docs/model.md §3.5 lists for the published checkpoints
 * (PROTO GLOBAL REDUCE BUILD MARK TUPLE EMPTY_TUPLE EMPTY_DICT SETITEM SETITEMS
 * BINPUT LONG_BINPUT BINGET LONG_BINGET BINUNICODE BININT1 BININT2 NEWFALSE
 * BINPERSID STOP) plus the pure-data ones protocol 2 uses for other float
 * state_dicts: BININT (ints >= 65536, e.g. big storages), NEWTRUE and
 * TUPLE1/2/3 (tensors with 1-3 dimensions). */
#ifndef WCM_PICKLE_H
#define WCM_PICKLE_H

#include "loader_budget.h"
#include "wcm/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    WCM_PK_INT,
    WCM_PK_BOOL,
    WCM_PK_STRING,
    WCM_PK_TUPLE,
    WCM_PK_DICT,    /* dict or OrderedDict: keys and values in insertion order */
    WCM_PK_GLOBAL,  /* one of the whitelisted names below */
    WCM_PK_STORAGE, /* result of persistent_load(('storage', type, key, location, numel)) */
    WCM_PK_TENSOR,  /* result of _rebuild_tensor_v2(storage, offset, size, stride, ...) */
} wcm_pk_kind;

typedef enum {
    WCM_PK_ORDERED_DICT,
    WCM_PK_REBUILD_TENSOR_V2,
    WCM_PK_STORAGE_TYPE, /* torch.<Type>Storage; `float32` says whether it is FloatStorage */
} wcm_pk_global;

typedef struct wcm_pk_value wcm_pk_value;

/* What _rebuild_tensor_v2 received (kept apart: most values are not tensors). */
typedef struct {
    const wcm_pk_value *storage;
    int64_t storage_offset;
    int ndim;
    int64_t sizes[WCM_MAX_DIMS], strides[WCM_MAX_DIMS];
} wcm_pk_tensor;

struct wcm_pk_value {
    wcm_pk_kind kind;
    wcm_pk_global global;  /* GLOBAL */
    int float32;           /* GLOBAL storage type, STORAGE: element type is float32 */
    int64_t integer;       /* INT, BOOL (0/1); STORAGE: number of elements */
    char *string;          /* STRING text; GLOBAL "module.name"; STORAGE key */
    char *location;        /* STORAGE device string ("cpu", "cuda:0"), informative */
    wcm_pk_value **items;  /* TUPLE elements; DICT key0, value0, key1, value1, ... */
    size_t count;          /* TUPLE elements; DICT pairs */
    size_t cap;            /* allocated slots of items (internal) */
    wcm_pk_tensor *tensor; /* TENSOR */
};

typedef struct {
    wcm_pk_value *root;    /* the value STOP returned */
    wcm_pk_value **nodes;  /* every node, for freeing (values may share nodes) */
    size_t node_count, node_cap;
} wcm_pickle;

/* Evaluates the pickle in buf[0..len). Every value, string, array and stack
 * slot is charged to `budget` (NULL: unlimited), so a pickle that would
 * build far more than its file holds (nested tuples: 1 byte each) is refused.
 * On error the message names the opcode and byte offset; *pk is left empty.
 * Free with wcm_pickle_free. */
int wcm_pickle_load(wcm_pickle *pk, const unsigned char *buf, size_t len, wcm_mem_budget *budget, wcm_error *err);
void wcm_pickle_free(wcm_pickle *pk);

#endif
