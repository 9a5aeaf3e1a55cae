/* Models: one network or a multi-scale cascade, loaded from PyTorch .pt or
 * safetensors, saved as safetensors with architecture and provenance in
 * __metadata__. */
#include "wcm/model.h"
#include "wcm/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void wcm_model_set_context(wcm_model *m, wcm_context *ctx) {
    if (m->net) wcm_net_set_context(m->net, ctx);
    if (m->low) wcm_net_set_context(m->low, ctx);
    for (int j = 0; j < WCM_MAX_LEVELS; j++)
        if (m->cond[j]) wcm_net_set_context(m->cond[j], ctx);
}

void wcm_model_free(wcm_model *m) {
    if (!m) return;
    wcm_net_free(m->net);
    wcm_net_free(m->low);
    for (int j = 0; j < WCM_MAX_LEVELS; j++) wcm_net_free(m->cond[j]);
    wcm_array_list_free(&m->meta);
    memset(m, 0, sizeof *m);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int wcm_net_load_torch(const char *path, wcm_net **out, wcm_error *err) {
    wcm_array_list l;
    wcm_array_list_init(&l);
    int rc = wcm_torch_read(path, &l, err);
    if (!rc) {
        rc = wcm_net_from_arrays(&l, "", out, err);
        if (rc) wcm_fail_context(err, rc, "%s", path);
    }
    wcm_array_list_free(&l);
    return rc;
}

static int has_prefix_key(const wcm_array_list *l, const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < l->count; i++)
        if (l->items[i].name && strncmp(l->items[i].name, prefix, n) == 0) return 1;
    return 0;
}

/* Copy metadata pairs (provenance survives load/save). */
static int copy_meta(wcm_array_list *dst, const wcm_array_list *src, wcm_error *err) {
    for (int i = 0; i < src->meta_count; i++) {
        int rc = wcm_array_list_set_meta(dst, src->meta_keys[i], src->meta_vals[i], err);
        if (rc) return rc;
    }
    return WCM_OK;
}

static int model_from_arrays(const wcm_array_list *l, wcm_model *m, wcm_error *err) {
    const char *kind = wcm_array_list_get_meta(l, "wcm.model");
    int multiscale = kind ? strcmp(kind, "multiscale") == 0 : has_prefix_key(l, "low.");
    int rc;
    if (!multiscale) {
        const char *prefix = has_prefix_key(l, "net.") ? "net." : "";
        rc = wcm_net_from_arrays(l, prefix, &m->net, err);
        return rc;
    }
    m->multiscale = 1;
    rc = wcm_net_from_arrays(l, "low.", &m->low, err);
    if (rc) return rc;
    if (wcm_net_get_kind(m->low) != WCM_NET_LOWPASS && wcm_net_get_kind(m->low) != WCM_NET_FLAT)
        return wcm_fail(err, WCM_ERR_FORMAT, "multi-scale model: the low-pass net must be a 1 -> 1 network");
    for (int j = 0; j < WCM_MAX_LEVELS; j++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "cond%d.", j);
        if (!has_prefix_key(l, prefix)) break;
        rc = wcm_net_from_arrays(l, prefix, &m->cond[j], err);
        if (rc) return rc;
        if (wcm_net_get_kind(m->cond[j]) != WCM_NET_CONDITIONAL)
            return wcm_fail(err, WCM_ERR_FORMAT, "multi-scale model: net cond%d is not a conditional (4 -> 3) net", j);
        m->levels = j + 1;
    }
    if (m->levels == 0) return wcm_fail(err, WCM_ERR_FORMAT, "multi-scale model has no conditional nets (cond0.*)");
    const char *levels = wcm_array_list_get_meta(l, "wcm.levels");
    int64_t stated;
    if (levels && (wcm_parse_int64(levels, 1, WCM_MAX_LEVELS, &stated) || stated != m->levels))
        return wcm_fail(err, WCM_ERR_FORMAT, "metadata says '%.40s' levels but %d conditional nets are stored", levels,
                        m->levels);
    return WCM_OK;
}

int wcm_model_load(const char *path, wcm_model *m, wcm_error *err) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    wcm_array_list l;
    wcm_array_list_init(&l);
    int rc;
    if (ends_with(path, ".pt") || ends_with(path, ".pth")) {
        rc = wcm_torch_read(path, &l, err);
        if (!rc) {
            rc = wcm_net_from_arrays(&l, "", &m->net, err);
            if (!rc) rc = wcm_array_list_set_meta(&m->meta, "wcm.source", path, err);
            if (rc) wcm_fail_context(err, rc, "%s", path);
        }
    } else if (ends_with(path, ".safetensors")) {
        rc = wcm_safetensors_read(path, &l, err);
        if (!rc) {
            rc = model_from_arrays(&l, m, err);
            if (!rc) rc = copy_meta(&m->meta, &l, err);
            if (rc) wcm_fail_context(err, rc, "%s", path);
        }
    } else {
        rc = wcm_fail(err, WCM_ERR_ARG, "%s: unknown model format (expected .safetensors or .pt)", path);
    }
    wcm_array_list_free(&l);
    if (rc) wcm_model_free(m);
    return rc;
}

static int describe_net_meta(wcm_array_list *l, const char *name, const wcm_net *net, int scale, wcm_error *err) {
    char key[64], val[128];
    snprintf(key, sizeof key, "wcm.net.%s", name);
    if (scale >= 0)
        snprintf(val, sizeof val, "kind=%s rf=%d scale=%d", wcm_net_kind_name(wcm_net_get_kind(net)), wcm_net_rf(net), scale);
    else
        snprintf(val, sizeof val, "kind=%s rf=%d", wcm_net_kind_name(wcm_net_get_kind(net)), wcm_net_rf(net));
    return wcm_array_list_set_meta(l, key, val, err);
}

int wcm_model_save(const wcm_model *m, const char *path, int half, wcm_error *err) {
    wcm_array_list l;
    wcm_array_list_init(&l);
    int rc = copy_meta(&l, &m->meta, err);
    if (!rc) rc = wcm_array_list_set_meta(&l, "format", "pt", err); /* lets safetensors' torch loader accept it */
    if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.version", "1", err);
    if (!rc && !m->multiscale) {
        rc = wcm_array_list_set_meta(&l, "wcm.model", "single", err);
        if (!rc) rc = describe_net_meta(&l, "net", m->net, -1, err);
        if (!rc) rc = wcm_net_to_arrays(m->net, "net.", &l, err);
    } else if (!rc) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", m->levels);
        rc = wcm_array_list_set_meta(&l, "wcm.model", "multiscale", err);
        if (!rc) rc = wcm_array_list_set_meta(&l, "wcm.levels", buf, err);
        if (!rc) rc = describe_net_meta(&l, "low", m->low, -1, err);
        if (!rc) rc = wcm_net_to_arrays(m->low, "low.", &l, err);
        for (int j = 0; !rc && j < m->levels; j++) {
            char prefix[32], name[32];
            snprintf(prefix, sizeof prefix, "cond%d.", j);
            snprintf(name, sizeof name, "cond%d", j);
            rc = describe_net_meta(&l, name, m->cond[j], j, err);
            if (!rc) rc = wcm_net_to_arrays(m->cond[j], prefix, &l, err);
        }
    }
    if (!rc) rc = wcm_safetensors_write(path, &l, half, err);
    wcm_array_list_free(&l);
    return rc;
}

wcm_net *wcm_model_get_net(const wcm_model *m, const char *which) {
    if (!m->multiscale) return (!which || !*which || !strcmp(which, "net")) ? m->net : NULL;
    if (!which || !strcmp(which, "low")) return m->low;
    int64_t j;
    if (wcm_parse_int64(which, 0, m->levels - 1, &j)) return NULL;
    return m->cond[j];
}

void wcm_model_describe(const wcm_model *m, char *buf, size_t size) {
    char line[256];
    size_t used = 0;
    buf[0] = 0;
#define APPEND(...)                                                    \
    do {                                                               \
        int k_ = snprintf(buf + used, used < size ? size - used : 0, __VA_ARGS__); \
        if (k_ > 0) used += (size_t)k_;                                \
        if (used >= size) used = size - 1;                             \
    } while (0)
    if (!m->multiscale) {
        wcm_net_describe(m->net, line, sizeof line);
        APPEND("model: single network\n  net: %s\n", line);
    } else {
        size_t total = wcm_net_nparams(m->low);
        for (int j = 0; j < m->levels; j++) total += wcm_net_nparams(m->cond[j]);
        APPEND("model: multi-scale, %d scales (J = %d), %zu parameters in total\n", m->levels, m->levels, total);
        wcm_net_describe(m->low, line, sizeof line);
        APPEND("  low: %s\n", line);
        for (int j = 0; j < m->levels; j++) {
            wcm_net_describe(m->cond[j], line, sizeof line);
            APPEND("  scale %d: %s\n", j, line);
        }
    }
    for (int i = 0; i < m->meta.meta_count; i++)
        if (!strncmp(m->meta.meta_keys[i], "wcm.source", 10) || !strncmp(m->meta.meta_keys[i], "wcm.train", 9)) {
            size_t start = used;
            APPEND("  %s: %s\n", m->meta.meta_keys[i], m->meta.meta_vals[i]);
            /* Metadata comes from the file: no terminal control sequences. */
            for (size_t k = start; k + 1 < used; k++)
                if ((unsigned char)buf[k] < 0x20 || buf[k] == 0x7f) buf[k] = '?';
        }
#undef APPEND
}

int wcm_model_split_net_spec(const char *spec, char *path, size_t size, const char **which, wcm_error *err) {
    *which = NULL;
    if (snprintf(path, size, "%s", spec) >= (int)size) return wcm_fail(err, WCM_ERR_ARG, "path too long: %.80s...", spec);
    char *colon = strrchr(path, ':');
    struct stat st;
    if (colon && colon[1] && stat(spec, &st) != 0) {
        *colon = 0;
        *which = colon + 1;
    }
    return WCM_OK;
}

/* Network `which` of the multi-scale model at path, taken out of it. */
static int load_net_of_model(const char *path, const char *which, wcm_net **net, wcm_error *err) {
    wcm_model part;
    int rc = wcm_model_load(path, &part, err);
    if (rc) return rc;
    wcm_net *n = part.multiscale ? wcm_model_get_net(&part, which) : NULL;
    if (n == part.low) part.low = NULL;
    for (int j = 0; j < part.levels; j++)
        if (n == part.cond[j]) part.cond[j] = NULL;
    wcm_model_free(&part);
    if (!n) return wcm_fail(err, WCM_ERR_ARG, "%s: no network '%s' (a multi-scale model has low, 0 .. J-1)", path, which);
    *net = n;
    return WCM_OK;
}

/* One network from a file: a PyTorch .pt (torch_only), any single-network
 * model, or MODEL:NET (wcm_model_split_net_spec). */
static int load_single_net(const char *spec, int torch_only, wcm_net **net, wcm_error *err) {
    if (torch_only) return wcm_net_load_torch(spec, net, err);
    char path[4096];
    const char *which;
    int rc = wcm_model_split_net_spec(spec, path, sizeof path, &which, err);
    if (rc) return rc;
    if (which) return load_net_of_model(path, which, net, err);
    wcm_model part;
    rc = wcm_model_load(path, &part, err);
    if (rc) return rc;
    if (part.multiscale) {
        wcm_model_free(&part);
        return wcm_fail(err, WCM_ERR_FORMAT, "%s is already a multi-scale model", path);
    }
    *net = part.net;
    part.net = NULL;
    wcm_model_free(&part);
    return WCM_OK;
}

int wcm_model_assemble(const char *low, const char *const *conds, int n, int torch_only, wcm_model *m, wcm_error *err) {
    memset(m, 0, sizeof *m);
    wcm_array_list_init(&m->meta);
    m->multiscale = 1;
    int rc = WCM_OK;
    if (!low || n < 1 || n > WCM_MAX_LEVELS || !conds)
        rc = wcm_fail(err, WCM_ERR_ARG, "a multi-scale model needs a low-pass net and 1 to %d conditional nets (got %d)",
                      WCM_MAX_LEVELS, n);
    if (!rc) rc = load_single_net(low, torch_only, &m->low, err);
    if (!rc && wcm_net_get_kind(m->low) == WCM_NET_CONDITIONAL)
        rc = wcm_fail(err, WCM_ERR_FORMAT, "%s: --low needs a 1 -> 1 network, this one is conditional", low);
    if (!rc) rc = wcm_array_list_set_meta(&m->meta, "wcm.source.low", low, err);
    for (int j = 0; !rc && j < n; j++) {
        rc = load_single_net(conds[j], torch_only, &m->cond[j], err);
        if (rc) break;
        m->levels = j + 1;
        if (wcm_net_get_kind(m->cond[j]) != WCM_NET_CONDITIONAL)
            rc = wcm_fail(err, WCM_ERR_FORMAT, "%s: scale %d needs a conditional (4 -> 3) network, this one is %s", conds[j],
                          j, wcm_net_kind_name(wcm_net_get_kind(m->cond[j])));
        char key[32];
        snprintf(key, sizeof key, "wcm.source.cond%d", j);
        if (!rc) rc = wcm_array_list_set_meta(&m->meta, key, conds[j], err);
    }
    if (rc) wcm_model_free(m);
    return rc;
}

/* A zeroed heap model for wcm_model_open and wcm_model_assemble_new; *out
 * is set by model_finish once the model is filled. */
static int model_new(wcm_model **out, wcm_model **m, wcm_error *err) {
    *out = NULL;
    *m = calloc(1, sizeof **m);
    return *m ? WCM_OK : wcm_fail(err, WCM_ERR_NOMEM, "out of memory for a model");
}

static int model_finish(wcm_model **out, wcm_model *m, int rc) {
    if (rc) free(m);
    else *out = m;
    return rc;
}

int wcm_model_open(const char *path, wcm_model **out, wcm_error *err) {
    wcm_model *m;
    int rc = model_new(out, &m, err);
    return rc ? rc : model_finish(out, m, wcm_model_load(path, m, err));
}

int wcm_model_assemble_new(const char *low, const char *const *conds, int n, int torch_only, wcm_model **out,
                           wcm_error *err) {
    wcm_model *m;
    int rc = model_new(out, &m, err);
    return rc ? rc : model_finish(out, m, wcm_model_assemble(low, conds, n, torch_only, m, err));
}

void wcm_model_destroy(wcm_model *m) {
    wcm_model_free(m);
    free(m);
}
