/* wcm — a model: one network ("single": a flat denoiser, or a lone low-pass or
 * conditional net), or a multi-scale model made of a low-pass net and J
 * conditional nets (scale j = 0 is the finest). Stored as one safetensors file
 * (tensors prefixed "low." and "cond{j}.", or "net." for a single network). */
#ifndef WCM_MODEL_H
#define WCM_MODEL_H

#include "wcm/net.h"
#include "wcm/haar.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int multiscale;                 /* 0: single network in `net` */
    wcm_net *net;                   /* single */
    wcm_net *low;                   /* multiscale: coarsest low-pass denoiser */
    int levels;                     /* multiscale: J */
    wcm_net *cond[WCM_MAX_LEVELS];  /* multiscale: conditional net per scale */
    wcm_array_list meta;            /* provenance and free-form metadata */
} wcm_model;

void wcm_model_free(wcm_model *m);
/* Runs every network of the model in ctx (NULL: the calling thread's default
 * context); denoising and synthesis then run there too. */
void wcm_model_set_context(wcm_model *m, wcm_context *ctx);
/* Load a model from .safetensors (native) or .pt (one PyTorch network, imported on the fly). */
int wcm_model_load(const char *path, wcm_model *m, wcm_error *err);
/* Save as safetensors (atomic). half != 0 stores float16. */
int wcm_model_save(const wcm_model *m, const char *path, int half, wcm_error *err);
/* Import one PyTorch network file. */
int wcm_net_load_torch(const char *path, wcm_net **out, wcm_error *err);
/* A multi-scale model from separate network files: the low-pass net `low`
 * and the conditional nets conds[0 .. n) (scale 0, the finest, first), each
 * a PyTorch .pt network or a single-network model; torch_only non-zero
 * requires .pt files (importing the authors' checkpoints). Each source is
 * recorded in the metadata (wcm.source.low, wcm.source.cond<j>). On error
 * *m is freed. */
int wcm_model_assemble(const char *low, const char *const *conds, int n, int torch_only, wcm_model *m, wcm_error *err);
/* The same on the heap, for bindings that hold models by pointer: *out is a
 * new model (wcm_model_load into it); release it with wcm_model_destroy. */
int wcm_model_open(const char *path, wcm_model **out, wcm_error *err);
int wcm_model_assemble_new(const char *low, const char *const *conds, int n, int torch_only, wcm_model **out,
                           wcm_error *err);
void wcm_model_destroy(wcm_model *m);
/* Network by name: "low", "0".."J-1", or "net"/"" for a single model. NULL if absent. */
wcm_net *wcm_model_get_net(const wcm_model *m, const char *which);
/* "MODEL:NET" names network NET (low, 0, 1, ...) of a multi-scale model:
 * when spec is no existing file and ends in ":NET", path receives MODEL and
 * *which points at NET (inside path); otherwise path = spec, *which = NULL. */
int wcm_model_split_net_spec(const char *spec, char *path, size_t size, const char **which, wcm_error *err);
/* Multi-line human readable summary. */
void wcm_model_describe(const wcm_model *m, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
