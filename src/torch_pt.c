/* PyTorch checkpoints (torch.save of a state_dict, zip format of torch >= 1.6):
 * <top>/data.pkl is a pickle of an OrderedDict name -> tensor, and each tensor
 * refers to a storage whose raw little-endian bytes are <top>/data/<key>. */
#include "pickle.h"
#include "wcm/io.h"
#include "zipread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory: the zip directory, the pickle's values and the output arrays
 * share one budget of 3x the file plus a constant (loader_budget.h), so
 * shared or stride-0 storages, or a pickle of a million tiny values, cannot
 * make a small file cost gigabytes. Time: each storage's CRC-32 is computed
 * once (zipread.c) and every tensor copies only its own elements. */

static int host_is_little_endian(void) {
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static float load_le_float(const unsigned char *p) {
    uint32_t bits = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Finds the single "<top>/data.pkl" and returns <top> (malloc'd). */
static int find_top_folder(const wcm_zip *z, char **top, wcm_error *err) {
    static const char suffix[] = "/data.pkl";
    const size_t suffix_len = sizeof suffix - 1;
    *top = NULL;
    const char *found = NULL;
    size_t top_len = 0;
    for (size_t i = 0; i < z->count; i++) {
        const char *name = z->entries[i].name;
        size_t n = strlen(name);
        if (n <= suffix_len || strcmp(name + n - suffix_len, suffix) != 0) continue;
        if (memchr(name, '/', n - suffix_len)) continue; /* deeper than one folder */
        if (found) return wcm_fail(err, WCM_ERR_FORMAT, "archive holds several checkpoints ('%.100s', '%.100s')", found, name);
        found = name;
        top_len = n - suffix_len;
    }
    if (!found)
        return wcm_fail(err, WCM_ERR_FORMAT, "not a PyTorch checkpoint: the zip archive has no '<folder>/data.pkl'");
    if (!(*top = malloc(top_len + 1))) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    memcpy(*top, found, top_len);
    (*top)[top_len] = 0;
    return WCM_OK;
}

/* Looks up "<top>/<rest>" in the archive and returns its bytes. */
static int entry_bytes(wcm_zip *z, const char *top, const char *rest, const unsigned char **data, size_t *len,
                       int *missing, wcm_error *err) {
    size_t n = strlen(top) + strlen(rest) + 2;
    char *path = malloc(n);
    if (!path) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    snprintf(path, n, "%s/%s", top, rest);
    wcm_zip_entry *e = wcm_zip_find(z, path);
    free(path);
    *missing = !e;
    if (!e) return WCM_OK;
    return wcm_zip_entry_data(z, e, data, len, err);
}

/* Copies a strided view of a storage into a dense C-order array, after
 * checking that every element it touches lies inside the storage. */
static int copy_tensor(wcm_zip *z, const char *top, const char *name, const wcm_pk_tensor *t, wcm_array *out,
                       wcm_mem_budget *budget, wcm_error *err) {
    const wcm_pk_value *s = t->storage;
    const unsigned char *bytes;
    size_t nbytes;
    int missing, rc;
    size_t key_len = strlen(s->string);
    char *rest = malloc(key_len + 6);
    if (!rest) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    snprintf(rest, key_len + 6, "data/%s", s->string);
    rc = entry_bytes(z, top, rest, &bytes, &nbytes, &missing, err);
    free(rest);
    if (rc) return wcm_fail_context(err, rc, "tensor '%.200s'", name);
    if (missing)
        return wcm_fail(err, WCM_ERR_FORMAT, "tensor '%.200s': storage '%.100s' is missing from the archive", name, s->string);
    if ((uint64_t)s->integer > nbytes / 4)
        return wcm_fail(err, WCM_ERR_FORMAT, "tensor '%.200s': storage '%.100s' claims %lld floats but holds %zu bytes", name,
                        s->string, (long long)s->integer, nbytes);

    /* Element count (bounded by what is left of the memory budget) and the
     * largest storage index the view reaches, checked term by term so
     * nothing can overflow. */
    size_t floats_left = (budget->limit - budget->used) / sizeof(float), out_bytes;
    if (wcm_size_product(t->sizes, t->ndim, sizeof(float), floats_left * sizeof(float), &out_bytes) ||
        wcm_budget_take(budget, out_bytes))
        return wcm_fail(err, WCM_ERR_FORMAT, "tensor '%.200s' is implausibly large for a %zu-byte file (more than %zu bytes "
                        "of tensors)", name, z->len, budget->limit);
    uint64_t count = out_bytes / sizeof(float), reach = (uint64_t)t->storage_offset, numel = (uint64_t)s->integer;
    if (reach > numel) reach = UINT64_MAX; /* saturates: stays <= 2 * numel otherwise */
    for (int d = 0; d < t->ndim; d++) {
        uint64_t size = (uint64_t)t->sizes[d], stride = (uint64_t)t->strides[d];
        if (size > 1 && stride > 0 && reach != UINT64_MAX) {
            if (size - 1 > numel / stride) reach = UINT64_MAX;
            else reach += (size - 1) * stride;
            if (reach > numel) reach = UINT64_MAX;
        }
    }
    if (count > 0 && reach >= numel)
        return wcm_fail(err, WCM_ERR_FORMAT, "tensor '%.200s': offset/size/stride reach past its storage of %lld floats", name,
                        (long long)s->integer);

    out->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) out->shape[d] = t->sizes[d];
    out->data = malloc(count ? (size_t)count * sizeof(float) : 1);
    if (!out->data) return wcm_fail(err, WCM_ERR_NOMEM, "tensor '%.200s': out of memory", name);
    if (count == 0) return WCM_OK;

    /* Contiguous views are one block; others walk an odometer over indices. */
    int contiguous = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->sizes[d] != 1 && t->strides[d] != expect) contiguous = 0;
        expect *= t->sizes[d];
    }
    const unsigned char *base = bytes + (size_t)t->storage_offset * 4;
    if (contiguous) {
        if (host_is_little_endian()) memcpy(out->data, base, (size_t)count * 4);
        else
            for (size_t i = 0; i < (size_t)count; i++) out->data[i] = load_le_float(base + 4 * i);
        return WCM_OK;
    }
    int64_t index[WCM_MAX_DIMS] = {0};
    size_t src = 0;
    for (size_t i = 0; i < (size_t)count; i++) {
        out->data[i] = load_le_float(base + 4 * src);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++index[d] < t->sizes[d]) {
                src += (size_t)t->strides[d];
                break;
            }
            src -= (size_t)(t->strides[d] * (t->sizes[d] - 1));
            index[d] = 0;
        }
    }
    return WCM_OK;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_unique_names(const wcm_array_list *l, wcm_error *err) {
    if (l->count < 2) return WCM_OK;
    const char **names = malloc((size_t)l->count * sizeof *names);
    if (!names) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < l->count; i++) names[i] = l->items[i].name;
    qsort(names, (size_t)l->count, sizeof *names, compare_names);
    int rc = WCM_OK;
    for (int i = 1; i < l->count && !rc; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            rc = wcm_fail(err, WCM_ERR_FORMAT, "tensor name '%.200s' appears twice (after removing 'module.')", names[i]);
    free(names);
    return rc;
}

static int state_dict_to_list(wcm_zip *z, const char *top, const wcm_pk_value *root, wcm_mem_budget *budget,
                              wcm_array_list *out, wcm_error *err) {
    if (root->kind != WCM_PK_DICT) return wcm_fail(err, WCM_ERR_FORMAT, "checkpoint is not a state_dict (no dict at the top)");
    if (root->count > (size_t)INT32_MAX / 2) return wcm_fail(err, WCM_ERR_FORMAT, "state_dict too large");
    for (size_t i = 0; i < root->count; i++) {
        const wcm_pk_value *key = root->items[2 * i], *value = root->items[2 * i + 1];
        if (key->kind != WCM_PK_STRING) return wcm_fail(err, WCM_ERR_FORMAT, "state_dict key %zu is not a string", i);
        if (value->kind != WCM_PK_TENSOR)
            return wcm_fail(err, WCM_ERR_FORMAT, "state_dict entry '%.200s' is not a tensor", key->string);
        const char *name = key->string;
        if (strncmp(name, "module.", 7) == 0) name += 7; /* saved from nn.DataParallel */
        wcm_array a;
        memset(&a, 0, sizeof a);
        size_t n = strlen(name);
        if (wcm_budget_take(budget, n + 1 + sizeof a))
            return wcm_fail(err, WCM_ERR_FORMAT, "state_dict of %zu entries is too large for the file", root->count);
        if (!(a.name = malloc(n + 1))) return wcm_fail(err, WCM_ERR_NOMEM, "out of memory");
        memcpy(a.name, name, n + 1);
        int rc = copy_tensor(z, top, key->string, value->tensor, &a, budget, err);
        if (!rc) rc = wcm_array_list_push(out, &a, err);
        if (rc) {
            wcm_array_free(&a);
            return rc;
        }
    }
    return check_unique_names(out, err);
}

int wcm_torch_parse(const unsigned char *buf, size_t len, wcm_array_list *out, wcm_error *err) {
    wcm_array_list_init(out);
    if (len >= 2 && buf[0] == 0x80 && buf[1] == 0x02)
        return wcm_fail(err, WCM_ERR_FORMAT,
                        "legacy PyTorch checkpoint (pre-1.6, not a zip archive) is not supported; re-save it with a newer torch.save");
    wcm_mem_budget budget;
    wcm_budget_init(&budget, len);
    wcm_zip z;
    int rc = wcm_zip_open(&z, buf, len, &budget, err);
    if (rc) return rc;
    char *top = NULL;
    wcm_pickle pk;
    memset(&pk, 0, sizeof pk);
    const unsigned char *data;
    size_t data_len;
    int missing;
    if ((rc = find_top_folder(&z, &top, err))) goto done;
    /* torch >= 2.1 records the byte order; older files are little-endian. */
    if ((rc = entry_bytes(&z, top, "byteorder", &data, &data_len, &missing, err))) goto done;
    if (!missing && !(data_len == 6 && memcmp(data, "little", 6) == 0)) {
        rc = wcm_fail(err, WCM_ERR_FORMAT, "checkpoint is not little-endian (byteorder entry says '%.*s')",
                      (int)(data_len < 16 ? data_len : 16), (const char *)data);
        goto done;
    }
    if ((rc = entry_bytes(&z, top, "data.pkl", &data, &data_len, &missing, err))) goto done;
    if ((rc = wcm_pickle_load(&pk, data, data_len, &budget, err))) goto done;
    rc = state_dict_to_list(&z, top, pk.root, &budget, out, err);
done:
    wcm_pickle_free(&pk);
    free(top);
    wcm_zip_close(&z);
    if (rc) wcm_array_list_free(out);
    return rc;
}

int wcm_torch_read(const char *path, wcm_array_list *out, wcm_error *err) {
    wcm_array_list_init(out);
    unsigned char *buf;
    size_t len;
    int rc = wcm_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = wcm_torch_parse(buf, len, out, err);
    free(buf);
    if (rc) return wcm_fail_context(err, rc, "%s", path);
    return WCM_OK;
}
