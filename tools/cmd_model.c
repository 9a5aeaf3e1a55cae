/* Model commands: import-torch, info, forward, bundle. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wcm/io.h"
#include "wcm/model.h"

/* Save, describe, free: the common tail of import-torch and bundle. */
static int save_model(const char *cmd, wcm_model *m, const char *out, int half, int rc, wcm_error *err) {
    if (!rc) rc = wcm_model_save(m, out, half, err);
    if (rc) {
        wcm_model_free(m);
        return cli_lib_error(cmd, err);
    }
    char desc[4096];
    wcm_model_describe(m, desc, sizeof desc);
    printf("wrote %s\n%s", out, desc);
    wcm_model_free(m);
    return 0;
}

static int run_import_torch(int argc, char **argv) {
    const char *cmd = "import-torch";
    cli_opt opts[] = {{"o", 1, 0, 0}, {"output", 1, 0, 0}, {"low", 1, 0, 0}, {"half", 0, 0, 0}};
    const char *pos[WCM_MAX_LEVELS + 1];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, WCM_MAX_LEVELS)) return 1;
    const char *out = opts[0].set ? opts[0].value : opts[1].value;
    if (!out) return cli_error(cmd, "missing -o OUT.safetensors");
    if (npos < 1) return cli_error(cmd, "missing input .pt file(s)");
    if (!opts[2].set && npos != 1)
        return cli_error(cmd, "one network per file: give a single .pt, or --low LOW.pt COND0.pt COND1.pt ...");
    wcm_model m = {0};
    wcm_error err;
    int rc;
    if (opts[2].set) {
        rc = wcm_model_assemble(opts[2].value, pos, npos, 1, &m, &err);
    } else {
        wcm_array_list_init(&m.meta);
        rc = wcm_net_load_torch(pos[0], &m.net, &err);
        if (!rc) rc = wcm_array_list_set_meta(&m.meta, "wcm.source.net", pos[0], &err);
    }
    return save_model(cmd, &m, out, opts[3].set, rc, &err);
}

const cli_command cmd_import_torch = {
    "import-torch", "convert the authors' PyTorch .pt networks to one .safetensors model",
    "usage: wcm import-torch -o OUT.safetensors [--half] IN.pt\n"
    "       wcm import-torch -o OUT.safetensors [--half] --low LOW.pt COND0.pt COND1.pt [...]\n\n"
    "Reads PyTorch state_dict checkpoints (zip + pickle, parsed in C: nothing is\n"
    "executed; only float32 tensors; a `module.` prefix is accepted), infers each\n"
    "architecture from its kernel shapes and writes one safetensors file.\n"
    "The first form imports one network (flat, conditional or low-pass). The\n"
    "second builds a multi-scale model: the low-pass net and the conditional nets\n"
    "in scale order j = 0 (finest), 1, ....\n\n"
    "  -o, --output FILE   output .safetensors (written atomically)\n"
    "  --low FILE          low-pass network of a multi-scale model\n"
    "  --half              store weights as float16 (half the size)\n",
    run_import_torch};

static int load_model(const char *cmd, const char *path, wcm_model *m) {
    wcm_error err;
    if (wcm_model_load(path, m, &err)) return cli_lib_error(cmd, &err);
    return 0;
}

static int run_info(int argc, char **argv) {
    const char *cmd = "info";
    const char *pos[1];
    int npos;
    if (cli_parse(cmd, argc, argv, NULL, 0, pos, &npos, 1)) return 1;
    if (npos != 1) return cli_error(cmd, "usage: wcm info MODEL");
    wcm_model m;
    if (load_model(cmd, pos[0], &m)) return 1;
    char desc[4096];
    wcm_model_describe(&m, desc, sizeof desc);
    printf("%s\n%s", pos[0], desc);
    wcm_model_free(&m);
    return 0;
}

const cli_command cmd_info = {
    "info", "describe a model: kind, receptive field per net, layers, parameters, scales",
    "usage: wcm info MODEL\n\n"
    "MODEL is a .safetensors model or a PyTorch .pt network. Prints the kind of\n"
    "model (single network or multi-scale with J scales) and for every network\n"
    "its architecture, receptive field, layer count and parameter count.\n",
    run_info};

static int run_forward(int argc, char **argv) {
    const char *cmd = "forward";
    cli_opt opts[] = {{"net", 1, 0, 0}};
    const char *pos[3];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, 3)) return 1;
    if (npos != 3) return cli_error(cmd, "usage: wcm forward MODEL IN.npy OUT.npy [--net low|0|1|...]");
    size_t out_len = strlen(pos[2]);
    if (out_len < 4 || strcasecmp(pos[2] + out_len - 4, ".npy"))
        return cli_error(cmd, "OUT must be a .npy file (the output is an NCHW float32 array), got '%s'", pos[2]);
    wcm_model m;
    if (load_model(cmd, pos[0], &m)) return 1;
    const char *which = opts[0].value;
    wcm_net *net = wcm_model_get_net(&m, which);
    if (!net) {
        if (m.multiscale && !which)
            cli_error(cmd, "%s is a multi-scale model: choose a network with --net low|0..%d", pos[0], m.levels - 1);
        else
            cli_error(cmd, "%s has no network '%s'%s", pos[0], which ? which : "",
                      m.multiscale ? " (use low or a scale index)" : " (single-network model: omit --net)");
        wcm_model_free(&m);
        return 1;
    }
    wcm_error err;
    wcm_array a;
    wcm_tensor in = {0}, out = {0};
    int rc = wcm_npy_read(pos[1], &a, &err);
    if (!rc) {
        rc = wcm_tensor_from_nchw(&in, &a, &err);
        wcm_array_free(&a);
    }
    if (!rc && !wcm_tensor_all_finite(&in)) rc = wcm_fail(&err, WCM_ERR_NUMERIC, "%s contains NaN or Inf", pos[1]);
    if (!rc) rc = wcm_net_forward(net, &in, &out, &err);
    if (!rc) rc = wcm_tensor_to_nchw(&a, &out, &err);
    if (!rc) {
        rc = wcm_npy_write(pos[2], &a, &err);
        wcm_array_free(&a);
    }
    wcm_tensor_free(&in);
    wcm_tensor_free(&out);
    wcm_model_free(&m);
    if (rc) return cli_lib_error(cmd, &err);
    return 0;
}

const cli_command cmd_forward = {
    "forward", "raw network output (the predicted noise) for an NCHW .npy batch",
    "usage: wcm forward MODEL IN.npy OUT.npy [--net low|0|1|...]\n\n"
    "Runs one network on an NCHW float32/float64 batch and writes its output,\n"
    "the predicted noise f(x), as NCHW float32. Flat and low-pass nets take 1\n"
    "channel; conditional nets take 4 ([low, H, V, D]) and return 3.\n"
    "MODEL is a .safetensors model or a PyTorch .pt network (imported on the fly).\n\n"
    "  --net NAME   for a multi-scale model: `low` or the scale index 0..J-1\n",
    run_forward};

static int run_bundle(int argc, char **argv) {
    const char *cmd = "bundle";
    cli_opt opts[] = {{"o", 1, 0, 0}, {"output", 1, 0, 0}, {"low", 1, 0, 0}, {"half", 0, 0, 0}};
    const char *pos[WCM_MAX_LEVELS + 1];
    int npos;
    if (cli_parse(cmd, argc, argv, opts, CLI_NOPTS(opts), pos, &npos, WCM_MAX_LEVELS)) return 1;
    const char *out = opts[0].set ? opts[0].value : opts[1].value;
    if (!out) return cli_error(cmd, "missing -o MODEL.safetensors");
    if (!opts[2].set || npos < 1) return cli_error(cmd, "usage: wcm bundle -o MODEL.safetensors --low LOW COND0 COND1 ...");
    wcm_model m = {0};
    wcm_error err;
    int rc = wcm_model_assemble(opts[2].value, pos, npos, 0, &m, &err);
    return save_model(cmd, &m, out, opts[3].set, rc, &err);
}

const cli_command cmd_bundle = {
    "bundle", "assemble a multi-scale model from separately trained networks",
    "usage: wcm bundle -o MODEL.safetensors [--half] --low LOW COND0 COND1 ...\n\n"
    "Each input is a single-network model (.safetensors from `wcm train`, or a\n"
    "PyTorch .pt), or MODEL:NET, one network (low, 0, 1, ...) of a multi-scale\n"
    "model. COND0 is the finest scale. The result is one safetensors file.\n",
    run_bundle};
