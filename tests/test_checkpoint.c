/* Checkpoint readers: the authors' PyTorch .pt files (values checked against
 * bytes extracted with Python's zipfile+struct), hand-built .pt archives
 * (strides, offsets, zip64, every refusal), safetensors round trips (F32
 * exact, F16 rounding) and malformed input of every kind. Run it under
 * -DWCM_SANITIZE=ON to check that bad input never crashes.
 *
 * `test_checkpoint --write-seeds DIR` writes the small fuzzing seed files
 * (DIR/torch, safetensors, npy, pickle, json, train_state, image, cli) built
 * by the helpers below and in craft.h. */
#include "craft.h"
#include "json.h"
#include "testutil.h"
#include "wcm/io.h"
#include "zipread.h"

#include <ftw.h>
#include <unistd.h>

static const float storage0[8] = {0, 1, 2, 3, 4, 5, 6, 7};
static const float storage1[3] = {-1.5f, 2.25f, 1e-3f};

/* "module.w": a transposed 3x2 view of storage0 starting at element 1:
 * w[i][j] = storage0[1 + i + 3 j]; "module.v": storage1 as a 1-D tensor;
 * "s": a 0-dim tensor sharing storage0 at offset 7. */
static bytes tiny_checkpoint(int zip64, int short_tuples) {
    pk_tensor t[3] = {
        {"module.w", "0", NULL, 8, 1, 2, {3, 2}, {1, 3}},
        {"module.v", "1", NULL, 3, 0, 1, {3}, {1}},
        {"s", "0", NULL, 8, 7, 0, {0}, {0}},
    };
    pk_storage s[2] = {{"0", storage0, 8}, {"1", storage1, 3}};
    return make_checkpoint("tiny", t, 3, s, 2, zip64, short_tuples);
}

/* ---- helpers --------------------------------------------------------------- */

static char tmp_dir[256];

static const char *tmp_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp_dir, name);
    return p;
}

static int shape_is(const wcm_array *a, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t want[4] = {d0, d1, d2, d3};
    if (!a || a->ndim != ndim) return 0;
    for (int i = 0; i < ndim && i < 4; i++)
        if (a->shape[i] != want[i]) return 0;
    return 1;
}

typedef int (*parse_fn)(const unsigned char *, size_t, wcm_array_list *, wcm_error *);

/* Parses a copy of exactly `len` bytes (so ASan sees any over-read). */
static int parse_copy(parse_fn fn, const unsigned char *data, size_t len, wcm_error *err) {
    unsigned char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, data, len);
    wcm_array_list l;
    int rc = fn(copy, len, &l, err);
    wcm_array_list_free(&l);
    free(copy);
    return rc;
}

static int expect_error(parse_fn fn, const bytes *b, const char *needle, const char *what) {
    wcm_error err = {{0}};
    int rc = parse_copy(fn, b->data, b->len, &err);
    int ok = rc != 0 && (!needle || strstr(err.msg, needle));
    CHECK(ok, "%s is refused (rc %d): %s", what, rc, err.msg);
    return ok;
}

/* Every proper prefix must fail cleanly; random single-byte corruptions may
 * parse or fail but must not crash. Returns the number of prefixes refused. */
static size_t torture(parse_fn fn, const bytes *b, int mutations) {
    size_t refused = 0;
    wcm_error err;
    for (size_t n = 0; n < b->len; n++) refused += parse_copy(fn, b->data, n, &err) != 0;
    unsigned long long seed = 12345;
    unsigned char *m = malloc(b->len);
    for (int i = 0; i < mutations; i++) {
        memcpy(m, b->data, b->len);
        for (int k = 0; k < 1 + i % 4; k++) {
            size_t at = (size_t)((t_rand(&seed) + 1) * 0.5 * (double)b->len) % b->len;
            m[at] = (unsigned char)(((t_rand(&seed) + 1) * 128));
        }
        parse_copy(fn, m, b->len, &err);
    }
    free(m);
    return refused;
}

/* ---- the authors' checkpoints -------------------------------------------- */

static char *found_paths[64];
static int found_count = 0;

static int collect_pt(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)ftw;
    size_t n = strlen(path);
    if (type == FTW_F && n > 9 && strcmp(path + n - 9, "/model.pt") == 0 && found_count < 64)
        found_paths[found_count++] = strdup(path);
    return 0;
}

static int compare_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Architecture implied by the folder name (docs/model.md §3). */
static void check_real_checkpoint(const char *path) {
    wcm_array_list l;
    wcm_error err = {{0}};
    const char *short_name = strstr(path, "denoisers/") ? strstr(path, "denoisers/") + 10 : path;
    if (wcm_torch_read(path, &l, &err)) {
        CHECK(0, "%s reads: %s", short_name, err.msg);
        return;
    }
    const char *rf_at = strstr(path, "RF_");
    int rf = rf_at ? atoi(rf_at + 3) : 0;
    int low = strstr(path, "_low") != NULL, conditional = strstr(path, "multi_scale") && !low;
    int convs = low ? 20 : 21, bns = convs - 2, in = conditional ? 4 : 1, out = conditional ? 3 : 1;
    int want_3x3 = low ? 20 : (rf - 1) / 2;
    int n3 = 0, nbn = 0, bad_bn = 0, module_prefix = 0, finite = 1;
    char name[64];
    for (int i = 0; i < l.count; i++) {
        const wcm_array *a = &l.items[i];
        if (strncmp(a->name, "module.", 7) == 0) module_prefix = 1;
        for (int64_t k = 0; k < wcm_array_count(a); k++) finite &= isfinite(a->data[k]) != 0;
        if (strncmp(a->name, "BN_layers.", 10) == 0) {
            nbn++;
            bad_bn += !shape_is(a, 4, 1, 64, 1, 1);
        }
    }
    for (int c = 0; c < convs; c++) {
        snprintf(name, sizeof name, "conv_layers.%d.weight", c);
        const wcm_array *w = wcm_array_list_find(&l, name);
        n3 += w && w->ndim == 4 && w->shape[2] == 3 && w->shape[3] == 3;
    }
    snprintf(name, sizeof name, "conv_layers.%d.weight", convs - 1);
    CHECK(l.count == convs + 2 * bns && nbn == 2 * bns && !bad_bn,
          "%s: %d tensors = %d convs + %d BN x {gammas, running_sd} of shape [1,64,1,1]", short_name, l.count, convs, bns);
    CHECK(shape_is(wcm_array_list_find(&l, "conv_layers.0.weight"), 4, 64, in, 3, 3) &&
              shape_is(wcm_array_list_find(&l, name), 4, out, 64, 3, 3),
          "%s: first conv [64,%d,3,3], last conv [%d,64,3,3]", short_name, in, out);
    CHECK(n3 == want_3x3, "%s: %d 3x3 convolutions (receptive field %d)", short_name, n3, 2 * n3 + 1);
    CHECK(!module_prefix && finite, "%s: 'module.' prefix stripped, all values finite", short_name);
    wcm_array_list_free(&l);
}

typedef struct {
    const char *file, *tensor;
    float v[3], last;
} known_values;

/* Extracted with python3 zipfile + struct.unpack('<f') from the raw storages. */
static const known_values known[] = {
    {"weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_5x5/model.pt",
     "conv_layers.0.weight", {-0.25269255f, 0.493547142f, 0.0876670927f}, 0.16822128f},
    {"weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_9x9/model.pt",
     "conv_layers.19.weight", {0.0808169693f, -0.576322913f, 0.301293164f}, 0.0729539394f},
    {"weights/kadkhodaie2023/denoisers/multi_scale/celebA_160x160_gray/noise_range_0to255_RF_13x13_scale_0/model.pt",
     "conv_layers.20.weight", {-0.0651295781f, 0.0892359987f, -0.0689430982f}, -0.110128716f},
    {"weights/kadkhodaie2023/denoisers/multi_scale/celebA_320x320_gray/noise_range_0to255_RF_13x13_scale_2/model.pt",
     "BN_layers.0.running_sd", {0.905946136f, 0.629939854f, 0.760651529f}, 0.589648604f},
    {"weights/kadkhodaie2023/denoisers/multi_scale/celebA_160x160_gray/noise_range_0to255_RF_40x40_low/model.pt",
     "conv_layers.19.weight", {-0.0564097688f, 0.124664627f, -0.0620974489f}, -0.0166007075f},
    {"golden/train_flat_rf5/model_init.pt", "conv_layers.0.weight", {0.387087971f, -0.237145171f, -0.305859596f},
     -0.068940796f},
};

static void test_real_checkpoints(void) {
    char root[4096];
    snprintf(root, sizeof root, "%s/weights", t_shared_dir());
    if (!t_is_dir(root)) {
        printf("skip: %s is absent, real checkpoints not checked\n", root);
        return;
    }
    nftw(root, collect_pt, 16, FTW_PHYS);
    qsort(found_paths, (size_t)found_count, sizeof *found_paths, compare_str);
    CHECK(found_count == 20, "found %d model.pt files under %s", found_count, root);
    for (int i = 0; i < found_count; i++) {
        check_real_checkpoint(found_paths[i]);
        free(found_paths[i]);
    }
    for (size_t k = 0; k < sizeof known / sizeof *known; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", t_shared_dir(), known[k].file);
        wcm_array_list l;
        wcm_error err = {{0}};
        if (wcm_torch_read(path, &l, &err)) {
            CHECK(0, "%s reads: %s", known[k].file, err.msg);
            continue;
        }
        const wcm_array *a = wcm_array_list_find(&l, known[k].tensor);
        int64_t n = a ? wcm_array_count(a) : 0;
        CHECK(a && n >= 3 && a->data[0] == known[k].v[0] && a->data[1] == known[k].v[1] && a->data[2] == known[k].v[2] &&
                  a->data[n - 1] == known[k].last,
              "%s %s: first values %.9g %.9g %.9g and last %.9g match Python", known[k].file,
              known[k].tensor, a ? a->data[0] : 0, a ? a->data[1] : 0, a ? a->data[2] : 0, a ? a->data[n - 1] : 0);
        wcm_array_list_free(&l);
    }
}

/* ---- hand-built .pt -------------------------------------------------------- */

static void check_tiny_contents(const wcm_array_list *l, const char *what) {
    const wcm_array *w = wcm_array_list_find(l, "w"), *v = wcm_array_list_find(l, "v"), *s = wcm_array_list_find(l, "s");
    int ok = l->count == 3 && w && v && s && shape_is(w, 2, 3, 2, 0, 0) && shape_is(v, 1, 3, 0, 0, 0) && s->ndim == 0;
    /* w[i][j] = storage0[1 + i + 3 j] */
    for (int i = 0; ok && i < 3; i++)
        for (int j = 0; j < 2; j++) ok &= w->data[i * 2 + j] == storage0[1 + i + 3 * j];
    ok = ok && v->data[0] == -1.5f && v->data[1] == 2.25f && v->data[2] == 1e-3f && s->data[0] == 7.0f;
    CHECK(ok, "%s: strided view w = [[1,4],[2,5],[3,6]], 1-D v, 0-dim s = 7, 'module.' stripped", what);
}

static void test_tiny_torch(void) {
    wcm_error err = {{0}};
    wcm_array_list l;
    const char *variants[4] = {"plain zip", "zip64", "TUPLE1-3 short tuples", "zip64 + short tuples"};
    for (int v = 0; v < 4; v++) {
        bytes b = tiny_checkpoint(v & 1, v >> 1);
        int rc = wcm_torch_parse(b.data, b.len, &l, &err);
        CHECK(rc == 0, "tiny checkpoint (%s, %zu bytes) parses: %s", variants[v], b.len, rc ? err.msg : "");
        if (!rc) check_tiny_contents(&l, variants[v]);
        wcm_array_list_free(&l);
        free(b.data);
    }
    bytes b = tiny_checkpoint(0, 0);
    REQUIRE_OK(craft_write(tmp_path("tiny.pt"), b.data, b.len) ? WCM_ERR_IO : 0, &err);
    REQUIRE_OK(wcm_torch_read(tmp_path("tiny.pt"), &l, &err), &err);
    check_tiny_contents(&l, "wcm_torch_read");
    wcm_array_list_free(&l);
    CHECK(wcm_crc32((const unsigned char *)"123456789", 9) == 0xCBF43926u, "CRC-32 check value of '123456789'");

    size_t refused = torture(wcm_torch_parse, &b, 3000);
    CHECK(refused == b.len, "all %zu proper prefixes of the tiny .pt are refused (%zu); 3000 corruptions did not crash",
          b.len, refused);
    bytes empty = {0};
    expect_error(wcm_torch_parse, &empty, "not a zip", "empty .pt");
    bytes legacy = {(unsigned char *)"\x80\x02\x8a\x0a", 4, 0};
    expect_error(wcm_torch_parse, &legacy, "legacy", "legacy (pre-zip) torch format");

    /* Corrupt one storage byte: the CRC catches it. */
    bytes bad = {0};
    b_put(&bad, b.data, b.len);
    for (size_t i = 0; i + 4 <= bad.len; i++)
        if (memcmp(bad.data + i, &storage1[1], 4) == 0) bad.data[i] ^= 1;
    expect_error(wcm_torch_parse, &bad, "CRC", "corrupted tensor bytes");
    free(bad.data);
    free(b.data);

    /* Entries compressed with deflate are refused by name. */
    bytes pkl = make_pickle(NULL, 0, 0);
    zip_item item = {"a/data.pkl", pkl.data, pkl.len};
    bytes z = make_zip(&item, 1, 0, 8);
    expect_error(wcm_torch_parse, &z, "compressed (method 8, deflate)", "a deflate-compressed data.pkl");
    free(z.data);
    z = make_zip(&item, 1, 0, 0);
    REQUIRE_OK(wcm_torch_parse(z.data, z.len, &l, &err), &err);
    CHECK(l.count == 0, "an empty state_dict gives an empty list");
    wcm_array_list_free(&l);
    free(z.data);
    item.name = "a/b/data.pkl";
    z = make_zip(&item, 1, 0, 0);
    expect_error(wcm_torch_parse, &z, "no '<folder>/data.pkl'", "data.pkl two folders deep");
    free(z.data);
    free(pkl.data);

    pk_storage s = {"0", storage0, 8};
    struct {
        pk_tensor t;
        const char *needle, *what;
    } bad_tensors[] = {
        {{"x", "0", "HalfStorage", 8, 0, 1, {8}, {1}}, "non-float32 tensor", "a HalfStorage tensor"},
        {{"x", "0", NULL, 8, 1, 1, {8}, {1}}, "reach past its storage", "offset + size beyond the storage"},
        {{"x", "0", NULL, 8, 0, 2, {2, 5}, {4, 1}}, "reach past its storage", "strides beyond the storage"},
        {{"x", "0", NULL, 9, 0, 1, {9}, {1}}, "claims 9 floats", "storage numel larger than its bytes"},
        {{"x", "7", NULL, 8, 0, 1, {8}, {1}}, "missing from the archive", "a missing storage entry"},
        {{"x", "0", NULL, 8, 0, 2, {1 << 30, 1 << 30}, {0, 0}}, "implausibly large", "a huge stride-0 view"},
        {{"x", "0", NULL, 8, 9000000000LL, 1, {1}, {1}}, "reach past", "a huge storage offset (written truncated to 32 bits)"},
    };
    for (size_t i = 0; i < sizeof bad_tensors / sizeof *bad_tensors; i++) {
        bytes c = make_checkpoint("t", &bad_tensors[i].t, 1, &s, 1, 0, 0);
        expect_error(wcm_torch_parse, &c, bad_tensors[i].needle, bad_tensors[i].what);
        free(c.data);
    }
    pk_tensor dup[2] = {{"module.x", "0", NULL, 8, 0, 1, {8}, {1}}, {"x", "0", NULL, 8, 0, 1, {8}, {1}}};
    bytes c = make_checkpoint("t", dup, 2, &s, 1, 0, 0);
    expect_error(wcm_torch_parse, &c, "appears twice", "'module.x' and 'x' in one file");
    free(c.data);

    /* Pickles that try anything else. */
    struct {
        const char *pickle;
        size_t len;
        const char *needle, *what;
    } bad_pickles[] = {
#define PICKLE(text) text, sizeof(text) - 1
        {PICKLE("\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00" "ls" "\x85R."), "refusing global 'os.system'", "os.system"},
        {PICKLE("\x80\x02" "cbuiltins\neval\n."), "refusing global", "builtins.eval"},
        {PICKLE("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}."), "protocol 2", "protocol 4 with FRAME"},
        {PICKLE("\x80\x02" "(i__builtin__\nobject\n."), "not allowed", "INST opcode"},
        {PICKLE("\x80\x02" "ctorch\nFloatStorage\n)R."), "refusing to call 'torch.FloatStorage'", "calling a storage type"},
        {PICKLE("\x80\x02" "ccollections\nOrderedDict\n" "K\x01\x85R."), "with arguments", "OrderedDict(1)"},
        {PICKLE("\x80\x02}K\x01K\x02s"), "truncated", "a pickle without STOP"},
        {PICKLE("\x80\x02}h\x05."), "never stored", "BINGET of an empty memo slot"},
        {PICKLE("\x80\x02}r\xff\xff\xff\xff."), "memo index too large", "a huge LONG_BINPUT index"},
        {PICKLE("\x80\x02}X\xff\xff\xff\x7f."), "truncated argument", "a string longer than the pickle"},
        {PICKLE("\x80\x02" "K\x01" "}s."), "underflow", "SETITEM with too few items"},
        {PICKLE("\x80\x02" "(}t."), "not a state_dict", "a tuple at the top"},
        {PICKLE("\x80\x02" "(."), "unbalanced", "STOP with an open MARK"},
        {PICKLE("\x80\x02" "K\x01}b."), "BUILD", "BUILD on an int"},
        {PICKLE("\x80\x02" "}}K\x01s."), "dict key", "a dict as a dict key"},
        {PICKLE("\x80\x02" "}X\x01\x00\x00\x00" "a" "K\x01s."), "not a tensor", "a state_dict entry that is an int"},
#undef PICKLE
    };
    for (size_t i = 0; i < sizeof bad_pickles / sizeof *bad_pickles; i++) {
        zip_item it = {"p/data.pkl", (const unsigned char *)bad_pickles[i].pickle, bad_pickles[i].len};
        bytes zz = make_zip(&it, 1, 0, 0);
        expect_error(wcm_torch_parse, &zz, bad_pickles[i].needle, bad_pickles[i].what);
        free(zz.data);
    }
}

/* ---- JSON ------------------------------------------------------------------ */

static void test_json(void) {
    const char *doc = " {\"a\": [1, -0, 2.5e1, true, false, null], \"s\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/\\n\","
                      " \"big\": 9007199254740993, \"neg\": -9223372036854775808, \"o\": {\"k\": \"v\"}} ";
    wcm_json *j;
    wcm_error err = {{0}};
    REQUIRE_OK(wcm_json_parse(doc, strlen(doc), &j, &err), &err);
    int64_t i64 = 0;
    double d = 0;
    const wcm_json *a = wcm_json_get(j, "a");
    CHECK(wcm_json_count(j) == 5 && wcm_json_count(a) == 6 && !wcm_json_int64(wcm_json_at(a, 0), &i64) && i64 == 1,
          "object of 5 members, array of 6, a[0] = 1");
    CHECK(!wcm_json_number(wcm_json_at(a, 2), &d) && d == 25.0 && wcm_json_int64(wcm_json_at(a, 2), &i64) != 0,
          "2.5e1 = 25.0 and is not an integer literal");
    int bv = 0;
    CHECK(!wcm_json_bool(wcm_json_at(a, 3), &bv) && bv == 1 && wcm_json_at(a, 5)->type == WCM_JSON_NULL &&
              wcm_json_at(a, 6) == NULL,
          "true, null, out-of-range index gives NULL");
    CHECK(strcmp(wcm_json_string(wcm_json_get(j, "s")), "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ /\n") == 0,
          "escapes decoded (\\u00e9, surrogate pair, quotes, slash, newline)");
    CHECK(!wcm_json_int64(wcm_json_get(j, "big"), &i64) && i64 == 9007199254740993LL &&
              !wcm_json_int64(wcm_json_get(j, "neg"), &i64) && i64 == INT64_MIN,
          "integers are exact beyond 2^53 and down to INT64_MIN");
    CHECK(strcmp(wcm_json_string(wcm_json_get(wcm_json_get(j, "o"), "k")), "v") == 0 &&
              wcm_json_get(wcm_json_get(j, "missing"), "k") == NULL && strcmp(wcm_json_key_at(j, 4), "o") == 0,
          "nested lookup, chained lookup of a missing key is NULL, keys keep document order");
    wcm_json_free(j);

    const char *bad[] = {"", " ", "[1,]", "{\"a\":1,}", "01", "1.", "-", "1e", ".5", "NaN", "Infinity", "[1 2]", "tru",
                         "\"abc", "\"\\u0000\"", "\"\x01\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\xff\"",
                         "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{\"a\":1,\"a\":2}", "{1:2}", "[1] x", "{\"a\" 1}", "/*c*/1"};
    int refused = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = wcm_json_parse(bad[i], strlen(bad[i]), &j, &err);
        refused += rc != 0;
        if (!rc) {
            printf("  accepted bad JSON: %s\n", bad[i]);
            wcm_json_free(j);
        }
    }
    CHECK(refused == (int)(sizeof bad / sizeof *bad), "%d of %zu malformed JSON texts refused", refused, sizeof bad / sizeof *bad);
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    int rc = wcm_json_parse(deep, 400, &j, &err);
    CHECK(rc != 0 && strstr(err.msg, "deep"), "200 nested arrays refused: %s", err.msg);
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    rc = wcm_json_parse(deep, 200, &j, &err);
    CHECK(rc == 0, "100 nested arrays accepted");
    if (!rc) wcm_json_free(j);

    wcm_json_buf b;
    wcm_json_buf_init(&b);
    wcm_json_buf_string(&b, "a\"b\\c\n\x01\xc3\xa9");
    wcm_json_buf_puts(&b, " ");
    wcm_json_buf_number(&b, 0.1);
    CHECK(!b.failed && strcmp(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\" 0.10000000000000001") == 0, "writer escapes: %s",
          b.data);
    b.len = 0;
    wcm_json_buf_string(&b, "x\"\t\x1f");
    rc = wcm_json_parse(b.data, b.len, &j, &err);
    CHECK(rc == 0 && strcmp(wcm_json_string(j), "x\"\t\x1f") == 0, "escaped string reads back unchanged");
    if (!rc) wcm_json_free(j);
    wcm_json_buf_free(&b);
}

/* ---- safetensors ----------------------------------------------------------- */

static void fill_list(wcm_array_list *l) {
    wcm_error err;
    wcm_array_list_init(l);
    int64_t shapes[3][4] = {{2, 3, 4, 5}, {7, 0, 0, 0}, {1, 64, 1, 1}};
    int ndims[3] = {4, 2, 4};
    const char *names[3] = {"conv_layers.0.weight", "v\xc3\xa9\"quoted\"", "BN_layers.0.running_sd"};
    unsigned long long seed = 7;
    for (int i = 0; i < 3; i++) {
        wcm_array a;
        memset(&a, 0, sizeof a);
        a.name = strdup(names[i]);
        a.ndim = ndims[i];
        memcpy(a.shape, shapes[i], sizeof shapes[i]);
        int64_t n = wcm_array_count(&a);
        a.data = malloc((size_t)n * sizeof(float));
        for (int64_t k = 0; k < n; k++) a.data[k] = t_rand(&seed) * (i == 2 ? 1000.0f : 1.0f);
        wcm_array_list_push(l, &a, &err);
    }
    wcm_array_list_set_meta(l, "format", "wcm-1", &err);
    wcm_array_list_set_meta(l, "note", "line\nbreak \\ \"q\"", &err);
}

static float half_round_trip(float x) {
    wcm_array_list l, r;
    wcm_error err;
    wcm_array_list_init(&l);
    wcm_array a;
    memset(&a, 0, sizeof a);
    a.name = strdup("x");
    a.ndim = 1;
    a.shape[0] = 1;
    a.data = malloc(sizeof(float));
    a.data[0] = x;
    wcm_array_list_push(&l, &a, &err);
    float y = -12345.0f;
    if (!wcm_safetensors_write(tmp_path("h.safetensors"), &l, 1, &err) && !wcm_safetensors_read(tmp_path("h.safetensors"), &r, &err)) {
        y = r.items[0].data[0];
        wcm_array_list_free(&r);
    }
    wcm_array_list_free(&l);
    return y;
}

static void test_safetensors(void) {
    wcm_array_list l, r;
    wcm_error err = {{0}};
    fill_list(&l);
    REQUIRE_OK(wcm_safetensors_write(tmp_path("a.safetensors"), &l, 0, &err), &err);
    REQUIRE_OK(wcm_safetensors_read(tmp_path("a.safetensors"), &r, &err), &err);
    int same = r.count == l.count;
    for (int i = 0; same && i < l.count; i++) {
        const wcm_array *x = &l.items[i], *y = &r.items[i];
        same = strcmp(x->name, y->name) == 0 && x->ndim == y->ndim && !memcmp(x->shape, y->shape, sizeof x->shape) &&
               !memcmp(x->data, y->data, (size_t)wcm_array_count(x) * sizeof(float));
    }
    CHECK(same, "F32 round trip: 3 arrays (one empty, one with a quoted UTF-8 name) identical, in order");
    CHECK(r.meta_count == 2 && strcmp(wcm_array_list_get_meta(&r, "note"), "line\nbreak \\ \"q\"") == 0,
          "metadata round trip (with escapes)");
    wcm_array_list_free(&r);
    unsigned char *file;
    size_t file_len;
    REQUIRE_OK(wcm_read_file(tmp_path("a.safetensors"), &file, &file_len, &err), &err);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | file[i];
    CHECK(header_len % 8 == 0 && file[8] == '{' && file_len == 8 + header_len + 4 * (120 + 64),
          "header %llu bytes (multiple of 8), data follows it exactly", (unsigned long long)header_len);
    bytes valid = {file, file_len, file_len};
    size_t refused = torture(wcm_safetensors_parse, &valid, 3000);
    CHECK(refused == file_len, "all %zu proper prefixes of a safetensors file are refused; 3000 corruptions did not crash",
          file_len);
    free(file);

    REQUIRE_OK(wcm_safetensors_write(tmp_path("h.safetensors"), &l, 1, &err), &err);
    REQUIRE_OK(wcm_safetensors_read(tmp_path("h.safetensors"), &r, &err), &err);
    double worst = 0;
    for (int i = 0; i < l.count; i++)
        for (int64_t k = 0; k < wcm_array_count(&l.items[i]); k++) {
            float x = l.items[i].data[k], y = r.items[i].data[k];
            double rel = fabs((double)x - y) / fmax(fabs(x), 6.1e-5);
            if (rel > worst) worst = rel;
        }
    CHECK(worst <= 1.0 / 2048, "F16 round trip within half an F16 ulp: worst relative error %.3g <= 2^-11", worst);
    wcm_array_list_free(&r);
    wcm_array_list_free(&l);

    struct {
        float in, out;
    } halves[] = {
        {1.0f, 1.0f}, {-2.5f, -2.5f}, {65504.0f, 65504.0f}, {65519.0f, 65504.0f}, {0.1f, 0.0999755859375f},
        {1.0f + 1.0f / 2048, 1.0f}, {1.0f + 3.0f / 2048, 1.0f + 4.0f / 2048}, {6.103515625e-05f, 6.103515625e-05f},
        {5.9604644775390625e-08f, 5.9604644775390625e-08f}, {2.98023223876953125e-08f, 0.0f}, {4.5e-08f, 5.9604644775390625e-08f},
        {8.940696716308594e-08f, 1.1920928955078125e-07f}, {1e-30f, 0.0f}, {-0.0f, -0.0f}, {9.5367431640625e-07f, 9.5367431640625e-07f},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof halves / sizeof *halves; i++) {
        float y = half_round_trip(halves[i].in);
        if (y != halves[i].out || signbit(y) != signbit(halves[i].out)) {
            ok = 0;
            printf("  F16(%.9g) = %.9g, expected %.9g\n", halves[i].in, y, halves[i].out);
        }
    }
    CHECK(ok, "F16 rounding: ties to even, largest finite, subnormals, underflow to zero, signed zero");
    CHECK(isinf(half_round_trip(65520.0f)) && half_round_trip(-1e9f) == -INFINITY && isnan(half_round_trip(NAN)) &&
              half_round_trip(INFINITY) == INFINITY,
          "F16: 65520 and beyond become inf, NaN stays NaN");

    /* Hand-written file with F16, BF16 and F64 tensors. */
    unsigned char data[2 * 2 + 2 * 2 + 8 * 2];
    const uint16_t f16[2] = {0x3C00, 0xC000}, bf16[2] = {0x3F80, 0x4049};
    const double f64[2] = {0.1, -1e300};
    for (int i = 0; i < 2; i++) {
        data[2 * i] = f16[i] & 0xFF, data[2 * i + 1] = (unsigned char)(f16[i] >> 8);
        data[4 + 2 * i] = bf16[i] & 0xFF, data[4 + 2 * i + 1] = (unsigned char)(bf16[i] >> 8);
        uint64_t bits;
        memcpy(&bits, &f64[i], 8);
        for (int k = 0; k < 8; k++) data[8 + 8 * i + k] = (unsigned char)(bits >> (8 * k));
    }
    bytes mixed = safetensors_bytes("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
                                    "\"d\":{\"dtype\":\"F64\",\"shape\":[2,1],\"data_offsets\":[8,24]},"
                                    "\"__metadata__\":{\"k\":\"v\"}}   ",
                                    data, sizeof data);
    int rc = wcm_safetensors_parse(mixed.data, mixed.len, &r, &err);
    CHECK(rc == 0 && r.count == 3 && r.items[0].data[0] == 1.0f && r.items[0].data[1] == -2.0f && r.items[1].data[0] == 1.0f &&
              r.items[1].data[1] == 3.140625f && r.items[2].data[0] == 0.1f && r.items[2].data[1] == -INFINITY &&
              strcmp(wcm_array_list_get_meta(&r, "k"), "v") == 0,
          "F16 / BF16 / F64 tensors convert to float (1e300 -> -inf), metadata read: %s", rc ? err.msg : "");
    if (!rc) wcm_array_list_free(&r);
    refused = torture(wcm_safetensors_parse, &mixed, 1000);
    CHECK(refused == mixed.len, "every proper prefix of the mixed-dtype file is refused (%zu of %zu)", refused, mixed.len);
    free(mixed.data);

    float four[4] = {1, 2, 3, 4};
    struct {
        const char *header, *needle;
        const char *what;
    } bad[] = {
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,20]}}", "outside", "offsets past the data"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "do not match", "shape/offset mismatch"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "invalid shape", "negative dimension"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", "invalid shape", "fractional dimension"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", "do not match", "huge shape"},
        {"{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", "dtype 'I64'", "an I64 tensor"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "outside", "reversed offsets"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[4,12]}}", "overlap", "overlapping tensors"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", "unknown field", "an unknown field"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", "needs dtype", "missing data_offsets"},
        {"{\"__metadata__\":{\"k\":1}}", "not a string", "a numeric metadata value"},
        {"{\"x\":1}", "not an object", "a tensor entry that is a number"},
        {"{\"x\":{}, \"x\":{}}", "duplicate key", "a duplicated tensor name"},
        {"{abc}", "JSON", "garbage header"},
        {"[1,2]", "does not start", "a header that is an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bytes b = safetensors_bytes(bad[i].header, four, sizeof four);
        expect_error(wcm_safetensors_parse, &b, bad[i].needle, bad[i].what);
        free(b.data);
    }
    bytes empty = {0};
    expect_error(wcm_safetensors_parse, &empty, "shorter than", "an empty file");
    bytes b = {0};
    b_le(&b, (uint64_t)1 << 63, 8);
    b_str(&b, "{}");
    expect_error(wcm_safetensors_parse, &b, "exceeds", "a header length of 2^63");
    b.len = 0;
    b_le(&b, 2, 8);
    b_str(&b, "PK");
    expect_error(wcm_safetensors_parse, &b, "does not start", "wrong magic (zip bytes)");
    free(b.data);

    /* Writer refusals leave no file behind. */
    wcm_array_list_init(&l);
    wcm_array a;
    memset(&a, 0, sizeof a);
    a.ndim = 1, a.shape[0] = 2, a.data = malloc(2 * sizeof(float));
    a.data[0] = a.data[1] = 0;
    wcm_array_list_push(&l, &a, &err);
    rc = wcm_safetensors_write(tmp_path("noname.safetensors"), &l, 0, &err);
    CHECK(rc == WCM_ERR_ARG && access(tmp_path("noname.safetensors"), F_OK) != 0, "an unnamed array is refused: %s", err.msg);
    wcm_array_list_free(&l);
    fill_list(&l);
    rc = wcm_safetensors_write("/nonexistent-dir/x.safetensors", &l, 0, &err);
    CHECK(rc == WCM_ERR_IO, "writing into a missing directory fails: %s", err.msg);
    wcm_array_list_free(&l);
}

/* ---- fuzzing seeds --------------------------------------------------------- */

static int write_seeds(const char *dir) {
    char path[4096];
    wcm_error err;
    const char *sub[8] = {"torch", "safetensors", "npy", "pickle", "json", "train_state", "image", "cli"};
    for (int i = 0; i < 8; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, sub[i]);
        mkdir(dir, 0755);
        mkdir(path, 0755);
    }
    for (int v = 0; v < 4; v++) {
        bytes b = tiny_checkpoint(v & 1, v >> 1);
        snprintf(path, sizeof path, "%s/torch/tiny%s%s.pt", dir, v & 1 ? "_zip64" : "", v & 2 ? "_short_tuples" : "");
        if (craft_write(path, b.data, b.len)) return 1;
        free(b.data);
    }
    wcm_array_list l;
    fill_list(&l);
    l.items[0].shape[0] = 1, l.items[0].shape[1] = 2; /* keep the seed small */
    snprintf(path, sizeof path, "%s/safetensors/f32.safetensors", dir);
    if (wcm_safetensors_write(path, &l, 0, &err)) return 1;
    snprintf(path, sizeof path, "%s/safetensors/f16.safetensors", dir);
    if (wcm_safetensors_write(path, &l, 1, &err)) return 1;
    snprintf(path, sizeof path, "%s/npy/f4_2x3x4.npy", dir);
    wcm_array a = l.items[0];
    a.ndim = 3, a.shape[0] = 2, a.shape[1] = 3, a.shape[2] = 4;
    if (wcm_npy_write(path, &a, &err)) return 1;
    wcm_array_list_free(&l);
    static const char npy_f8[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
    bytes n = {0};
    b_put(&n, npy_f8, sizeof npy_f8 - 1);
    while (n.len < 10 + 0x76 - 1) b_u8(&n, ' ');
    b_u8(&n, '\n');
    double vals[2] = {0.5, -3.0};
    b_put(&n, vals, sizeof vals);
    snprintf(path, sizeof path, "%s/npy/f8_2.npy", dir);
    if (craft_write(path, n.data, n.len)) return 1;
    free(n.data);
    bytes mixed = safetensors_bytes("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
                                    "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},"
                                    "\"__metadata__\":{\"k\":\"v\"}}",
                                    "\x00\x3c\x00\xc0\x80\x3f\x49\x40\x9a\x99\x99\x99\x99\x99\xb9\x3f", 16);
    snprintf(path, sizeof path, "%s/safetensors/mixed.safetensors", dir);
    if (craft_write(path, mixed.data, mixed.len)) return 1;
    free(mixed.data);
    pk_tensor t[3] = {
        {"module.w", "0", NULL, 8, 1, 2, {3, 2}, {1, 3}},
        {"module.v", "1", NULL, 70000, 0, 1, {3}, {1}},
        {"s", "0", NULL, 8, 7, 0, {0}, {0}},
    };
    for (int v = 0; v < 2; v++) {
        bytes pkl = make_pickle(t, 3, v);
        snprintf(path, sizeof path, "%s/pickle/state_dict%s.pkl", dir, v ? "_short_tuples" : "");
        if (craft_write(path, pkl.data, pkl.len)) return 1;
        free(pkl.data);
    }
    static const char json_doc[] =
        "{\"cases\": [{\"model\": \"flat/RF_5\", \"sigma\": 0.1, \"n\": 3, \"ok\": true, \"x\": null},"
        " {\"s\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/\\n\", \"e\": -1.5e-3, \"z\": [[], {}]}],"
        " \"big\": 9223372036854775807}";
    snprintf(path, sizeof path, "%s/json/manifest_like.json", dir);
    if (craft_write(path, json_doc, sizeof json_doc - 1)) return 1;
    /* Training state: one value per line, in the fuzzer's key order. */
    static const char state[] = "3\n1\n31\n0.12345678901229999\n29.5\n12.25\n"
                                "1,1,21,26.5,0.001,4;2,0.5,22,nan,0.00050000000000000001,8;3,0.33,23,28.5,0.0003,12";
    snprintf(path, sizeof path, "%s/train_state/three_epochs.txt", dir);
    if (craft_write(path, state, sizeof state - 1)) return 1;
    snprintf(path, sizeof path, "%s/train_state/fresh.txt", dir);
    if (craft_write(path, "0\n0\n0\n0\n0\n0\n", 12)) return 1;
    /* Images: a format byte (0 PNG, 1 JPEG, 2 npy), then the file. */
    bytes img[3] = {make_gray_png(8, 6, 77), make_gray_jpeg(8, 6, 200), npy_filled(3, 4, 0.25f)};
    const char *img_names[3] = {"gray8x6.png", "gray8x6.jpg", "f4_3x4.npy"};
    for (int k = 0; k < 3; k++) {
        bytes seed = {0};
        b_u8(&seed, (unsigned)k);
        b_put(&seed, img[k].data, img[k].len);
        snprintf(path, sizeof path, "%s/image/%s", dir, img_names[k]);
        if (craft_write(path, seed.data, seed.len)) return 1;
        free(seed.data), free(img[k].data);
    }
    /* Command lines: arguments separated by NUL bytes. */
    static const char argv_seed[] = "denoise\0m.safetensors\0in.png\0out.png\0--sigma\0" "25\0--seed=3\0--threads\0" "2\0"
                                    "-o\0x.png\0--npy\0--max-pixels=100000\0--quiet\0--crop\0" "160\0--\0-5";
    snprintf(path, sizeof path, "%s/cli/denoise_args", dir);
    if (craft_write(path, argv_seed, sizeof argv_seed - 1)) return 1;
    printf("seeds written under %s\n", dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/wcm_ckpt_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        printf("FAIL: cannot create a temporary directory\n");
        return 1;
    }
    test_json();
    test_tiny_torch();
    test_safetensors();
    test_real_checkpoints();
    const char *files[] = {"tiny.pt", "a.safetensors", "h.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) remove(tmp_path(files[i]));
    rmdir(tmp_dir);
    return t_done("test_checkpoint");
}
