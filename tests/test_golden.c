/* Golden parity with the authors' PyTorch code: every network case listed in
 * manifest.json of the golden directory ($WCM_GOLDEN_DIR, default
 * ../shared/golden) must match max|out - golden| <= 1e-4 * max(1, max|golden|),
 * through the library, through `wcm forward` on the .pt, and through
 * `wcm forward` on the imported .safetensors. Cases are discovered.
 * --device cpu|cuda[:N] runs everything on that device (skips without it). */
#include "testutil.h"
#include "device_option.h"
#include "json.h"
#include "wcm/io.h"
#include "wcm/model.h"

#include <unistd.h>

static char tmpdir[256];

static int load_npy_tensor(const char *path, wcm_tensor *t, wcm_error *err) {
    wcm_array a;
    int rc = wcm_npy_read(path, &a, err);
    if (rc) return rc;
    rc = wcm_tensor_from_nchw(t, &a, err);
    wcm_array_free(&a);
    return rc;
}

/* Returns max|a-b| / max(1, max|golden|), or 1e9 on a shape mismatch. */
static double rel_err(const wcm_tensor *out, const wcm_tensor *golden) {
    if (out->n != golden->n || out->h != golden->h || out->w != golden->w || out->c != golden->c) return 1e9;
    double m = 0, g = 1;
    for (size_t i = 0; i < wcm_tensor_count(golden); i++) {
        double d = fabs((double)out->data[i] - golden->data[i]);
        if (d > m || d != d) m = d != d ? 1e9 : d;
        if (fabs(golden->data[i]) > g) g = fabs(golden->data[i]);
    }
    return m / g;
}

static double cli_case(const char *model, const char *input, const wcm_tensor *golden, const char *tag) {
    char out[512], cmd[4096];
    snprintf(out, sizeof out, "%s/%s_out.npy", tmpdir, tag);
    snprintf(cmd, sizeof cmd, "'%s' forward '%s' '%s' '%s' --threads 2%s%s", WCM_CLI_PATH, model, input, out,
             t_device ? " --device " : "", t_device ? t_device : "");
    if (system(cmd) != 0) return 1e9;
    wcm_tensor t;
    wcm_error err;
    if (load_npy_tensor(out, &t, &err)) return 1e9;
    double e = rel_err(&t, golden);
    wcm_tensor_free(&t);
    remove(out);
    return e;
}

int main(int argc, char **argv) {
    t_device_option(argc, argv);
    const char *gdir = t_golden_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", gdir);
    unsigned char *text;
    size_t len;
    wcm_error err;
    if (wcm_read_file(path, &text, &len, &err)) SKIP("no golden manifest (%s)", err.msg);
    wcm_json *root;
    REQUIRE_OK(wcm_json_parse((const char *)text, len, &root, &err), &err);
    free(text);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wcm_golden_XXXXXX");
    if (!mkdtemp(tmpdir)) SKIP("cannot create a temporary directory");
    const char *wroot = getenv("WCM_WEIGHTS_DIR");
    char wdir[4096];
    snprintf(wdir, sizeof wdir, "%s", wroot ? wroot : "");
    if (!wroot) snprintf(wdir, sizeof wdir, "%s/weights/kadkhodaie2023", t_shared_dir());
    int cases = 0;
    for (size_t i = 0; i < wcm_json_count(root); i++) {
        const wcm_json *c = wcm_json_at(root, i);
        const char *weights = wcm_json_string(wcm_json_get(c, "weights"));
        const char *input = wcm_json_string(wcm_json_get(c, "input"));
        const char *output = wcm_json_string(wcm_json_get(c, "output"));
        if (!weights || !input || !output) continue; /* e.g. the Haar case, checked in test_haar */
        char wpath[4096], ipath[4096], opath[4096], tag[64], st[512];
        snprintf(wpath, sizeof wpath, "%s/%s", wdir, weights);
        snprintf(ipath, sizeof ipath, "%s/%s", gdir, input);
        snprintf(opath, sizeof opath, "%s/%s", gdir, output);
        snprintf(tag, sizeof tag, "case%zu", i);
        wcm_tensor in, golden, out = {0};
        REQUIRE_OK(load_npy_tensor(ipath, &in, &err), &err);
        REQUIRE_OK(load_npy_tensor(opath, &golden, &err), &err);
        wcm_net *net;
        REQUIRE_OK(wcm_net_load_torch(wpath, &net, &err), &err);
        REQUIRE_OK(wcm_net_forward(net, &in, &out, &err), &err);
        char desc[256];
        wcm_net_describe(net, desc, sizeof desc);
        double e = rel_err(&out, &golden);
        CHECK(e <= 1e-4, "library  %-32s %s: rel max err %.2e", output, desc, e);
        /* Import to safetensors and run both files through the CLI. */
        wcm_model m = {0};
        wcm_array_list_init(&m.meta);
        m.net = net;
        snprintf(st, sizeof st, "%s/%s.safetensors", tmpdir, tag);
        REQUIRE_OK(wcm_model_save(&m, st, 0, &err), &err);
        wcm_model_free(&m);
        e = cli_case(wpath, ipath, &golden, tag);
        CHECK(e <= 1e-4, "cli .pt  %-32s rel max err %.2e", output, e);
        e = cli_case(st, ipath, &golden, tag);
        CHECK(e <= 1e-4, "cli .safetensors %-24s rel max err %.2e", output, e);
        remove(st);
        wcm_tensor_free(&in);
        wcm_tensor_free(&golden);
        wcm_tensor_free(&out);
        cases++;
    }
    CHECK(cases > 0, "%d golden network cases discovered in %s", cases, path);
    wcm_json_free(root);
    rmdir(tmpdir);
    return t_done("test_golden");
}
