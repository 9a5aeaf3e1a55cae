/* Restricted evaluator for torch.save state_dict pickles (see pickle.h).
 * Opcode semantics follow CPython's Lib/pickletools.py documentation. */
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on hostile input; real checkpoints stay far below them. */
#define MAX_STACK ((size_t)1 << 20)
#define MAX_MEMO ((uint32_t)1 << 20)
#define MAX_NAME 256

enum {
    OP_PROTO = 0x80,
    OP_GLOBAL = 'c',
    OP_REDUCE = 'R',
    OP_BUILD = 'b',
    OP_MARK = '(',
    OP_TUPLE = 't',
    OP_TUPLE1 = 0x85,
    OP_TUPLE2 = 0x86,
    OP_TUPLE3 = 0x87,
    OP_EMPTY_TUPLE = ')',
    OP_EMPTY_DICT = '}',
    OP_SETITEM = 's',
    OP_SETITEMS = 'u',
    OP_BINPUT = 'q',
    OP_LONG_BINPUT = 'r',
    OP_BINGET = 'h',
    OP_LONG_BINGET = 'j',
    OP_BINUNICODE = 'X',
    OP_BININT1 = 'K',
    OP_BININT2 = 'M',
    OP_BININT = 'J',
    OP_NEWTRUE = 0x88,
    OP_NEWFALSE = 0x89,
    OP_BINPERSID = 'Q',
    OP_STOP = '.',
};

typedef struct {
    wcm_pickle *pk;
    const unsigned char *buf;
    size_t len, pos, op_pos;
    unsigned op;
    wcm_pk_value **stack;
    size_t depth, stack_cap;
    size_t *marks;
    size_t mark_count, mark_cap;
    wcm_pk_value **memo;
    size_t memo_cap;
    wcm_mem_budget *budget;
    int over_budget;
    wcm_error *err;
} machine;

static int fail_at(machine *m, const char *fmt, const char *detail) {
    char what[400];
    snprintf(what, sizeof what, fmt, detail ? detail : "");
    return wcm_fail(m->err, WCM_ERR_FORMAT, "pickle: %s (opcode 0x%02x at byte %zu)", what, m->op, m->op_pos);
}

/* Allocation failures and budget overruns both end up here. */
static int out_of_memory(machine *m) {
    if (m->over_budget)
        return wcm_fail(m->err, WCM_ERR_FORMAT, "pickle: its values need more memory than the file's size allows "
                        "(%zu bytes) at byte %zu of %zu", m->budget->limit, m->op_pos, m->len);
    return wcm_fail(m->err, WCM_ERR_NOMEM, "pickle: out of memory");
}

static int charge(machine *m, size_t bytes) {
    if (wcm_budget_take(m->budget, bytes)) m->over_budget = 1;
    return !m->over_budget;
}

static int grow(machine *m, void **array, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    if (!charge(m, (c - *cap) * elem)) return 0;
    void *p = realloc(*array, c * elem);
    if (!p) return 0;
    *array = p;
    *cap = c;
    return 1;
}

static wcm_pk_value *new_value(machine *m, wcm_pk_kind kind) {
    wcm_pickle *pk = m->pk;
    if (!grow(m, (void **)&pk->nodes, &pk->node_cap, pk->node_count + 1, sizeof *pk->nodes)) return NULL;
    if (!charge(m, sizeof(wcm_pk_value))) return NULL;
    wcm_pk_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    pk->nodes[pk->node_count++] = v;
    return v;
}

static int push(machine *m, wcm_pk_value *v) {
    if (!v) return out_of_memory(m);
    if (m->depth >= MAX_STACK) return fail_at(m, "stack deeper than the limit%s", NULL);
    if (!grow(m, (void **)&m->stack, &m->stack_cap, m->depth + 1, sizeof *m->stack)) return out_of_memory(m);
    m->stack[m->depth++] = v;
    return WCM_OK;
}

/* The stack may not be popped below the innermost MARK. */
static size_t stack_floor(const machine *m) { return m->mark_count ? m->marks[m->mark_count - 1] : 0; }

static wcm_pk_value *pop(machine *m) { return m->depth > stack_floor(m) ? m->stack[--m->depth] : NULL; }

static int need_bytes(machine *m, size_t n) {
    if (m->len - m->pos < n) return fail_at(m, "truncated argument%s", NULL);
    return WCM_OK;
}

static uint32_t read_u32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static const char *kind_name(wcm_pk_kind k) {
    static const char *names[] = {"int", "bool", "str", "tuple", "dict", "global", "storage", "tensor"};
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* ---- opcodes ------------------------------------------------------------ */

/* One newline-terminated line of a GLOBAL argument. */
static int read_line(machine *m, char *out) {
    const unsigned char *start = m->buf + m->pos;
    size_t avail = m->len - m->pos;
    const unsigned char *nl = memchr(start, '\n', avail < MAX_NAME ? avail : MAX_NAME);
    if (!nl) return fail_at(m, "GLOBAL name missing, truncated or too long%s", NULL);
    size_t n = (size_t)(nl - start);
    memcpy(out, start, n);
    out[n] = 0;
    if (strlen(out) != n) return fail_at(m, "NUL byte in a GLOBAL name%s", NULL);
    m->pos += n + 1;
    return WCM_OK;
}

static int op_global(machine *m) {
    char module[MAX_NAME], name[MAX_NAME], full[2 * MAX_NAME + 2];
    int rc = read_line(m, module);
    if (!rc) rc = read_line(m, name);
    if (rc) return rc;
    snprintf(full, sizeof full, "%s.%s", module, name);
    wcm_pk_value *v;
    size_t n = strlen(name);
    if (strcmp(module, "collections") == 0 && strcmp(name, "OrderedDict") == 0) {
        v = new_value(m, WCM_PK_GLOBAL);
        if (v) v->global = WCM_PK_ORDERED_DICT;
    } else if (strcmp(module, "torch._utils") == 0 && strcmp(name, "_rebuild_tensor_v2") == 0) {
        v = new_value(m, WCM_PK_GLOBAL);
        if (v) v->global = WCM_PK_REBUILD_TENSOR_V2;
    } else if (strcmp(module, "torch") == 0 && n > 7 && strcmp(name + n - 7, "Storage") == 0) {
        /* Only a type tag: recorded so a non-float32 storage gets a clear message. */
        v = new_value(m, WCM_PK_GLOBAL);
        if (v) v->global = WCM_PK_STORAGE_TYPE, v->float32 = strcmp(name, "FloatStorage") == 0;
    } else {
        return fail_at(m, "refusing global '%.200s': only collections.OrderedDict, torch._utils._rebuild_tensor_v2 "
                          "and torch.FloatStorage may appear in a checkpoint (nothing is executed)",
                       full);
    }
    if (v && (!charge(m, strlen(full) + 1) || !(v->string = malloc(strlen(full) + 1)))) return out_of_memory(m);
    if (v) memcpy(v->string, full, strlen(full) + 1);
    return push(m, v);
}

static int make_tuple(machine *m, size_t n) {
    if (m->depth - stack_floor(m) < n) return fail_at(m, "stack underflow%s", NULL);
    wcm_pk_value *t = new_value(m, WCM_PK_TUPLE);
    if (!t) return out_of_memory(m);
    if (n) {
        if (!charge(m, n * sizeof *t->items) || !(t->items = malloc(n * sizeof *t->items))) return out_of_memory(m);
        memcpy(t->items, m->stack + m->depth - n, n * sizeof *t->items);
    }
    t->count = t->cap = n;
    m->depth -= n;
    return push(m, t);
}

static int pop_mark(machine *m, size_t *mark) {
    if (!m->mark_count) return fail_at(m, "no MARK on the stack%s", NULL);
    *mark = m->marks[--m->mark_count];
    return WCM_OK;
}

static int dict_set(machine *m, wcm_pk_value *dict, wcm_pk_value *key, wcm_pk_value *value) {
    if (key->kind != WCM_PK_STRING && key->kind != WCM_PK_INT)
        return fail_at(m, "dict key of type %s is not supported", kind_name(key->kind));
    if (!grow(m, (void **)&dict->items, &dict->cap, 2 * dict->count + 2, sizeof *dict->items)) return out_of_memory(m);
    dict->items[2 * dict->count] = key;
    dict->items[2 * dict->count + 1] = value;
    dict->count++;
    return WCM_OK;
}

static int op_setitems(machine *m, int single) {
    size_t start = 0;
    if (single) {
        if (m->depth - stack_floor(m) < 3) return fail_at(m, "stack underflow%s", NULL);
        start = m->depth - 2;
    } else {
        int rc = pop_mark(m, &start);
        if (rc) return rc;
        if ((m->depth - start) % 2) return fail_at(m, "SETITEMS with an odd number of items%s", NULL);
        if (start <= stack_floor(m)) return fail_at(m, "SETITEMS without a target dict%s", NULL);
    }
    wcm_pk_value *dict = m->stack[start - 1];
    if (dict->kind != WCM_PK_DICT) return fail_at(m, "SETITEM(S) on a %s, not a dict", kind_name(dict->kind));
    for (size_t i = start; i < m->depth; i += 2) {
        int rc = dict_set(m, dict, m->stack[i], m->stack[i + 1]);
        if (rc) return rc;
    }
    m->depth = start;
    return WCM_OK;
}

static int get_int(const wcm_pk_value *v, int64_t *out) {
    if (!v || (v->kind != WCM_PK_INT && v->kind != WCM_PK_BOOL)) return 0;
    *out = v->integer;
    return 1;
}

/* persistent_load(('storage', torch.<T>Storage, key, location, numel)). */
static int op_binpersid(machine *m) {
    wcm_pk_value *pid = pop(m);
    if (!pid) return fail_at(m, "stack underflow%s", NULL);
    if (pid->kind != WCM_PK_TUPLE || pid->count != 5 || pid->items[0]->kind != WCM_PK_STRING ||
        strcmp(pid->items[0]->string, "storage") != 0)
        return fail_at(m, "persistent id is not a ('storage', type, key, location, size) tuple%s", NULL);
    wcm_pk_value *type = pid->items[1], *key = pid->items[2], *loc = pid->items[3];
    int64_t numel;
    if (type->kind != WCM_PK_GLOBAL || type->global != WCM_PK_STORAGE_TYPE)
        return fail_at(m, "persistent id names no storage type%s", NULL);
    if (!type->float32)
        return fail_at(m, "non-float32 tensor (%.100s): only float32 checkpoints are supported", type->string);
    if (key->kind != WCM_PK_STRING || loc->kind != WCM_PK_STRING || !get_int(pid->items[4], &numel) || numel < 0)
        return fail_at(m, "malformed storage persistent id%s", NULL);
    wcm_pk_value *s = new_value(m, WCM_PK_STORAGE);
    if (!s) return out_of_memory(m);
    s->string = key->string; /* borrowed: the key node lives as long as the pickle */
    s->location = loc->string;
    s->float32 = 1;
    s->integer = numel;
    return push(m, s);
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks). */
static int rebuild_tensor(machine *m, const wcm_pk_value *args) {
    if (args->count != 6) return fail_at(m, "_rebuild_tensor_v2 expects 6 arguments%s", NULL);
    const wcm_pk_value *storage = args->items[0], *size = args->items[2], *stride = args->items[3];
    wcm_pk_value *v = new_value(m, WCM_PK_TENSOR);
    if (!v || !charge(m, sizeof *v->tensor) || !(v->tensor = calloc(1, sizeof *v->tensor))) return out_of_memory(m);
    wcm_pk_tensor *t = v->tensor;
    if (storage->kind != WCM_PK_STORAGE) return fail_at(m, "_rebuild_tensor_v2 without a storage%s", NULL);
    if (!get_int(args->items[1], &t->storage_offset) || t->storage_offset < 0)
        return fail_at(m, "invalid tensor storage offset%s", NULL);
    if (size->kind != WCM_PK_TUPLE || stride->kind != WCM_PK_TUPLE || size->count != stride->count)
        return fail_at(m, "tensor size and stride must be tuples of equal length%s", NULL);
    if (size->count > WCM_MAX_DIMS) return fail_at(m, "tensor has too many dimensions (at most 8 are supported)%s", NULL);
    if (args->items[4]->kind != WCM_PK_BOOL || args->items[5]->kind != WCM_PK_DICT)
        return fail_at(m, "unexpected requires_grad or hooks argument to _rebuild_tensor_v2%s", NULL);
    for (size_t d = 0; d < size->count; d++) {
        if (!get_int(size->items[d], &t->sizes[d]) || t->sizes[d] < 0 || !get_int(stride->items[d], &t->strides[d]) ||
            t->strides[d] < 0)
            return fail_at(m, "tensor sizes and strides must be non-negative integers%s", NULL);
    }
    t->ndim = (int)size->count;
    t->storage = storage;
    return push(m, v);
}

static int op_reduce(machine *m) {
    wcm_pk_value *args = pop(m), *callable = pop(m);
    if (!callable) return fail_at(m, "stack underflow%s", NULL);
    if (args->kind != WCM_PK_TUPLE) return fail_at(m, "REDUCE arguments are a %s, not a tuple", kind_name(args->kind));
    if (callable->kind != WCM_PK_GLOBAL) return fail_at(m, "REDUCE on a %s", kind_name(callable->kind));
    if (callable->global == WCM_PK_ORDERED_DICT) {
        if (args->count != 0) return fail_at(m, "OrderedDict called with arguments%s", NULL);
        return push(m, new_value(m, WCM_PK_DICT));
    }
    if (callable->global == WCM_PK_REBUILD_TENSOR_V2) return rebuild_tensor(m, args);
    return fail_at(m, "refusing to call '%.200s'", callable->string);
}

static int op_memo(machine *m, uint32_t index, int put) {
    if (index >= MAX_MEMO) return fail_at(m, "memo index too large%s", NULL);
    if (put) {
        if (m->depth <= stack_floor(m)) return fail_at(m, "stack underflow%s", NULL);
        if (index >= m->memo_cap) {
            size_t cap = m->memo_cap ? m->memo_cap : 64;
            while (cap <= index) cap *= 2;
            if (!charge(m, (cap - m->memo_cap) * sizeof *m->memo)) return out_of_memory(m);
            wcm_pk_value **memo = realloc(m->memo, cap * sizeof *memo);
            if (!memo) return out_of_memory(m);
            memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
            m->memo = memo;
            m->memo_cap = cap;
        }
        m->memo[index] = m->stack[m->depth - 1];
        return WCM_OK;
    }
    if (index >= m->memo_cap || !m->memo[index]) return fail_at(m, "memo entry was never stored%s", NULL);
    return push(m, m->memo[index]);
}

static int op_binunicode(machine *m) {
    int rc = need_bytes(m, 4);
    if (rc) return rc;
    uint32_t n = read_u32(m->buf + m->pos);
    m->pos += 4;
    if ((rc = need_bytes(m, n))) return rc;
    if (memchr(m->buf + m->pos, 0, n)) return fail_at(m, "NUL character in a string%s", NULL);
    wcm_pk_value *v = new_value(m, WCM_PK_STRING);
    if (!v || !charge(m, (size_t)n + 1) || !(v->string = malloc((size_t)n + 1))) return out_of_memory(m);
    memcpy(v->string, m->buf + m->pos, n);
    v->string[n] = 0;
    m->pos += n;
    return push(m, v);
}

static int push_int(machine *m, wcm_pk_kind kind, int64_t value) {
    wcm_pk_value *v = new_value(m, kind);
    if (v) v->integer = value;
    return push(m, v);
}

static int step(machine *m, int *done) {
    int rc;
    const unsigned char *arg = m->buf + m->pos;
    switch (m->op) {
    case OP_PROTO:
        if ((rc = need_bytes(m, 1))) return rc;
        m->pos++;
        if (arg[0] != 2) return fail_at(m, "only pickle protocol 2 (the torch.save default) is supported%s", NULL);
        return WCM_OK;
    case OP_GLOBAL: return op_global(m);
    case OP_REDUCE: return op_reduce(m);
    case OP_BUILD: {
        wcm_pk_value *state = pop(m);
        if (!state || m->depth <= stack_floor(m)) return fail_at(m, "stack underflow%s", NULL);
        /* OrderedDict state (torch's `_metadata`: module versions) is not needed. */
        if (m->stack[m->depth - 1]->kind != WCM_PK_DICT) return fail_at(m, "BUILD on something other than a dict%s", NULL);
        return WCM_OK;
    }
    case OP_MARK:
        if (m->mark_count >= MAX_STACK) return fail_at(m, "too many MARKs%s", NULL);
        if (!grow(m, (void **)&m->marks, &m->mark_cap, m->mark_count + 1, sizeof *m->marks)) return out_of_memory(m);
        m->marks[m->mark_count++] = m->depth;
        return WCM_OK;
    case OP_TUPLE: {
        size_t mark = 0;
        if ((rc = pop_mark(m, &mark))) return rc;
        return make_tuple(m, m->depth - mark);
    }
    case OP_EMPTY_TUPLE: return make_tuple(m, 0);
    case OP_TUPLE1: return make_tuple(m, 1);
    case OP_TUPLE2: return make_tuple(m, 2);
    case OP_TUPLE3: return make_tuple(m, 3);
    case OP_EMPTY_DICT: return push(m, new_value(m, WCM_PK_DICT));
    case OP_SETITEM: return op_setitems(m, 1);
    case OP_SETITEMS: return op_setitems(m, 0);
    case OP_BINPUT:
    case OP_BINGET:
        if ((rc = need_bytes(m, 1))) return rc;
        m->pos++;
        return op_memo(m, arg[0], m->op == OP_BINPUT);
    case OP_LONG_BINPUT:
    case OP_LONG_BINGET:
        if ((rc = need_bytes(m, 4))) return rc;
        m->pos += 4;
        return op_memo(m, read_u32(arg), m->op == OP_LONG_BINPUT);
    case OP_BINUNICODE: return op_binunicode(m);
    case OP_BININT1:
        if ((rc = need_bytes(m, 1))) return rc;
        m->pos++;
        return push_int(m, WCM_PK_INT, arg[0]);
    case OP_BININT2:
        if ((rc = need_bytes(m, 2))) return rc;
        m->pos += 2;
        return push_int(m, WCM_PK_INT, arg[0] | (arg[1] << 8));
    case OP_BININT:
        if ((rc = need_bytes(m, 4))) return rc;
        m->pos += 4;
        return push_int(m, WCM_PK_INT, (int32_t)read_u32(arg));
    case OP_NEWTRUE: return push_int(m, WCM_PK_BOOL, 1);
    case OP_NEWFALSE: return push_int(m, WCM_PK_BOOL, 0);
    case OP_BINPERSID: return op_binpersid(m);
    case OP_STOP:
        if (m->mark_count || m->depth != 1) return fail_at(m, "STOP with an unbalanced stack%s", NULL);
        m->pk->root = m->stack[0];
        *done = 1;
        return WCM_OK;
    default:
        return fail_at(m, "opcode not allowed in a checkpoint%s; only the opcodes torch.save uses for a state_dict "
                          "of float tensors are accepted",
                       NULL);
    }
}

void wcm_pickle_free(wcm_pickle *pk) {
    if (!pk) return;
    for (size_t i = 0; i < pk->node_count; i++) {
        wcm_pk_value *v = pk->nodes[i];
        if (v->kind != WCM_PK_STORAGE) free(v->string); /* storage strings are borrowed */
        free(v->items);
        free(v->tensor);
        free(v);
    }
    free(pk->nodes);
    memset(pk, 0, sizeof *pk);
}

int wcm_pickle_load(wcm_pickle *pk, const unsigned char *buf, size_t len, wcm_mem_budget *budget, wcm_error *err) {
    memset(pk, 0, sizeof *pk);
    machine m = {0};
    m.pk = pk;
    m.budget = budget;
    m.buf = buf;
    m.len = len;
    m.err = err;
    int rc = WCM_OK, done = 0;
    while (!rc && !done) {
        if (m.pos >= len) {
            rc = wcm_fail(err, WCM_ERR_FORMAT, "pickle: truncated (no STOP opcode within %zu bytes)", len);
            break;
        }
        m.op_pos = m.pos;
        m.op = buf[m.pos++];
        rc = step(&m, &done);
    }
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (rc) wcm_pickle_free(pk);
    return rc;
}
