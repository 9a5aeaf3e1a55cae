/* Bad input through the CLI: truncated, empty, wrong-magic, missing-key,
 * wrong-shape and non-float32 checkpoints, malformed .npy and safetensors
 * headers, NaN input. Each must give exactly one error line on stderr, a
 * non-zero exit, no crash and no output file (not even a temporary one). */
#include "testutil.h"
#include "wcm/io.h"
#include "wcm/model.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static int write_bytes(const char *name, const void *data, size_t len) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    fwrite(data, 1, len, f);
    fclose(f);
    return 0;
}

static int count_outputs(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, "out")) n++;
    closedir(d);
    return n;
}

/* Run `wcm ARGS` in dir; expect failure with one stderr line and no output file. */
static void expect_error(const char *what, const char *args) {
    char cmd[4096], errpath[512];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "cd %s && '%s' %s > /dev/null 2> stderr.txt", dir, WCM_CLI_PATH, args);
    int st = system(cmd);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    unsigned char *text = NULL;
    size_t len = 0;
    wcm_error err;
    wcm_read_file(errpath, &text, &len, &err);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (text && len) text[len - 1] = 0;
    int outputs = count_outputs();
    CHECK(code >= 1 && code < 128 && lines == 1 && outputs == 0, "%-34s exit %d, %d line, %d output files: %s", what, code,
          lines, outputs, text ? (char *)text : "");
    free(text);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/wcm_errors_XXXXXX");
    if (!mkdtemp(dir)) SKIP("no temporary directory");
    wcm_error err;
    /* A valid tiny model and input to derive broken variants from. */
    wcm_model m = {0};
    wcm_array_list_init(&m.meta);
    REQUIRE_OK(wcm_net_create(&m.net, WCM_NET_FLAT, 5, &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    REQUIRE_OK(wcm_model_save(&m, path, 0, &err), &err);
    wcm_model_free(&m);
    float img[64];
    for (int i = 0; i < 64; i++) img[i] = (float)i / 64;
    wcm_array a = {0};
    a.ndim = 4, a.shape[0] = 1, a.shape[1] = 1, a.shape[2] = 8, a.shape[3] = 8, a.data = img;
    snprintf(path, sizeof path, "%s/in.npy", dir);
    REQUIRE_OK(wcm_npy_write(path, &a, &err), &err);
    img[5] = NAN;
    snprintf(path, sizeof path, "%s/nan.npy", dir);
    REQUIRE_OK(wcm_npy_write(path, &a, &err), &err);

    unsigned char *good;
    size_t glen;
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    REQUIRE_OK(wcm_read_file(path, &good, &glen, &err), &err);
    expect_error("sanity: valid model, missing input", "forward good.safetensors missing.npy out.npy");
    write_bytes("empty.safetensors", "", 0);
    expect_error("empty safetensors", "forward empty.safetensors in.npy out.npy");
    write_bytes("trunc.safetensors", good, glen / 2);
    expect_error("truncated safetensors", "forward trunc.safetensors in.npy out.npy");
    write_bytes("trunc_header.safetensors", good, 20);
    expect_error("truncated safetensors header", "forward trunc_header.safetensors in.npy out.npy");
    {
        unsigned char *bad = malloc(glen);
        memcpy(bad, good, glen);
        bad[8] = '[';
        write_bytes("badjson.safetensors", bad, glen);
        expect_error("malformed safetensors header", "forward badjson.safetensors in.npy out.npy");
        memcpy(bad, good, glen);
        bad[7] = 0x7f; /* absurd header length */
        write_bytes("hugelen.safetensors", bad, glen);
        expect_error("header length beyond the file", "forward hugelen.safetensors in.npy out.npy");
        /* Non-float32: rename the dtype of the first tensor to I32. */
        memcpy(bad, good, glen);
        char *hit = strstr((char *)bad + 8, "\"F32\"");
        if (hit) memcpy(hit, "\"I32\"", 5);
        write_bytes("int.safetensors", bad, glen);
        expect_error("non-float tensor (I32)", "forward int.safetensors in.npy out.npy");
        /* Missing key: rename conv_layers.0 so layer 0 disappears. */
        memcpy(bad, good, glen);
        hit = strstr((char *)bad + 8, "conv_layers.0.weight");
        if (hit) hit[12] = 'X';
        write_bytes("nokey.safetensors", bad, glen);
        expect_error("missing key conv_layers.0.weight", "forward nokey.safetensors in.npy out.npy");
        free(bad);
    }
    /* Wrong shape: a conditional net's weights under a flat name pattern is valid,
     * so instead store layer 1 with 32 output channels. */
    {
        wcm_array_list l;
        wcm_array_list_init(&l);
        snprintf(path, sizeof path, "%s/good.safetensors", dir);
        REQUIRE_OK(wcm_safetensors_read(path, &l, &err), &err);
        for (int i = 0; i < l.count; i++)
            if (!strcmp(l.items[i].name, "net.conv_layers.1.weight")) l.items[i].shape[0] = 32, l.items[i].shape[1] = 128;
        snprintf(path, sizeof path, "%s/shape.safetensors", dir);
        REQUIRE_OK(wcm_safetensors_write(path, &l, 0, &err), &err);
        wcm_array_list_free(&l);
        expect_error("wrong kernel shape", "forward shape.safetensors in.npy out.npy");
    }
    write_bytes("magic.pt", "PK\x05\x06garbage-not-a-zip-file-at-all", 30);
    expect_error("wrong-magic .pt", "forward magic.pt in.npy out.npy");
    write_bytes("empty.pt", "", 0);
    expect_error("empty .pt", "forward empty.pt in.npy out.npy");
    /* Truncated real .pt, when the shared weights are present. */
    snprintf(path, sizeof path, "%s/weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_5x5/model.pt",
             t_shared_dir());
    unsigned char *pt;
    size_t ptlen;
    if (wcm_read_file(path, &pt, &ptlen, &err) == 0) {
        write_bytes("trunc.pt", pt, ptlen / 2);
        expect_error("truncated .pt (half)", "forward trunc.pt in.npy out.npy");
        write_bytes("trunc2.pt", pt, ptlen - 10);
        expect_error("truncated .pt (last 10 bytes)", "forward trunc2.pt in.npy out.npy");
        write_bytes("full.pt", pt, ptlen);
        expect_error("valid .pt but NaN input", "forward full.pt nan.npy out.npy");
        expect_error("valid .pt, --net on a single model", "forward full.pt in.npy out.npy --net low");
        free(pt);
    } else {
        printf("(shared weights absent: truncated .pt checks skipped)\n");
    }
    /* Malformed .npy inputs. */
    write_bytes("bad1.npy", "\x93NUMPY\x01\x00\x10\x00{'descr': '<i4'}", 26);
    expect_error("npy: header without shape", "forward good.safetensors bad1.npy out.npy");
    {
        const char h[] = "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 2, 2), }";
        unsigned char buf[256] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, sizeof h - 1, 0};
        memcpy(buf + 10, h, sizeof h - 1);
        write_bytes("int.npy", buf, 10 + sizeof h - 1 + 16);
        expect_error("npy: int32 dtype", "forward good.safetensors int.npy out.npy");
        const char f[] = "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1, 2, 2), }";
        memcpy(buf + 10, f, sizeof f - 1);
        buf[8] = sizeof f - 1;
        write_bytes("fortran.npy", buf, 10 + sizeof f - 1 + 16);
        expect_error("npy: Fortran order", "forward good.safetensors fortran.npy out.npy");
        const char c[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2, 2), }";
        memcpy(buf + 10, c, sizeof c - 1);
        buf[8] = sizeof c - 1;
        write_bytes("short.npy", buf, 10 + sizeof c - 1 + 3);
        expect_error("npy: truncated data", "forward good.safetensors short.npy out.npy");
    }
    expect_error("NaN in the input", "forward good.safetensors nan.npy out.npy");
    expect_error("unknown model extension", "forward in.npy in.npy out.npy");
    expect_error("unknown option", "forward good.safetensors in.npy out.npy --bogus");
    expect_error("import of a missing .pt", "import-torch -o out.safetensors missing.pt");
    expect_error("import-torch given a non-zip file", "import-torch -o out.safetensors --low good.safetensors good.safetensors");
    free(good);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return t_done("test_cli_errors");
}
