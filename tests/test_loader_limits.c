/* Loaders bounded by their input (issue 27, D3, D4, D8, D10, D11, D12):
 * crafted files that used to cost minutes or gigabytes load (or are
 * refused) in well under a second, every loader's peak memory stays within
 * 4x its file plus a constant (measured in a child process: getrusage), the
 * pixel budget refuses huge images from their headers and huge network
 * inputs before allocating, tensor sizes never wrap, safetensors may not have
 * holes, the .npy header is read as a dict, not searched, and weights far
 * outside any trained network's are refused. */
#include "craft.h"
#include "testutil.h"
#include "wcm/image.h"
#include "wcm/io.h"
#include "wcm/net.h"

#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Sanitizers slow the parsers down about tenfold; the bound stays far below
 * the minutes the quadratic code took. */
static const double time_limit = SANITIZED ? 10.0 : 1.0;

/* The bounds are on this process's CPU time, not the wall clock, so that a
 * machine busy with other jobs does not fail the test: the defects were
 * quadratic work, which CPU time measures. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef int (*list_loader)(const char *, wcm_array_list *, wcm_error *);

/* ---- D3: one storage viewed by many tensors ------------------------------------- */

static bytes shared_storage_pt(int tensors, size_t floats, float **storage_out) {
    float *st = malloc(floats * sizeof *st);
    for (size_t i = 0; i < floats; i++) st[i] = (float)i;
    pk_tensor *t = calloc((size_t)tensors, sizeof *t);
    char (*names)[16] = calloc((size_t)tensors, sizeof *names);
    for (int i = 0; i < tensors; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        t[i] = (pk_tensor){names[i], "0", NULL, (int64_t)floats, (int64_t)(i * 7 % floats), 1, {1}, {1}};
    }
    pk_storage s = {"0", st, floats};
    bytes b = make_checkpoint("archive", t, tensors, &s, 1, 0, 1);
    free(t), free(names);
    *storage_out = st;
    return b;
}

static void test_shared_storage(void) {
    struct {
        int tensors;
        size_t floats;
    } cases[] = {{1000, 1 << 20}, {20000, 1 << 22}, {60000, 1 << 20}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *st;
        bytes b = shared_storage_pt(cases[c].tensors, cases[c].floats, &st);
        wcm_array_list l;
        wcm_error err = {{0}};
        double t0 = cpu_seconds();
        int rc = wcm_torch_parse(b.data, b.len, &l, &err);
        double secs = cpu_seconds() - t0;
        int ok = 1;
        for (int i = 0; !rc && i < l.count; i++) ok &= l.items[i].data[0] == st[i * 7 % cases[c].floats];
        CHECK(secs < time_limit && (rc || (l.count == cases[c].tensors && ok)),
              "%d one-element views of one %zu MB storage (%.1f MB .pt): %s in %.3f s (was %s)", cases[c].tensors,
              cases[c].floats * 4 >> 20, b.len / 1e6, rc ? err.msg : "loaded, values right", secs,
              c == 0 ? "38 s" : "minutes: one CRC of the storage per tensor");
        if (!rc) wcm_array_list_free(&l);
        if (c == 2) craft_write(t_at("shared60000.pt"), b.data, b.len);
        free(b.data), free(st);
    }
    /* Many directory entries pointing at one stored file: refused. */
    unsigned char data[4096] = {0};
    zip_item items[2] = {{"a/data/0", data, sizeof data}, {"a/data.pkl", (const unsigned char *)"\x80\x02}.", 4}};
    bytes z = make_zip(items, 2, 0, 0);
    /* Point the second central entry's local header at the first entry. */
    for (size_t i = z.len - 22; i-- > 0;)
        if (z.data[i] == 0x50 && z.data[i + 1] == 0x4b && z.data[i + 2] == 1 && z.data[i + 3] == 2 &&
            !memcmp(z.data + i + 46, "a/data.pkl", 10)) {
            memset(z.data + i + 42, 0, 4);
            break;
        }
    wcm_array_list l;
    wcm_error err = {{0}};
    int rc = wcm_torch_parse(z.data, z.len, &l, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "overlap"), "zip entries sharing their bytes are refused: %s", err.msg);
    free(z.data);
}

/* ---- D4: many metadata keys ------------------------------------------------------- */

static void test_many_metadata_keys(void) {
    wcm_error err = {{0}};
    wcm_array_list l;
    wcm_array_list_init(&l);
    char key[160], val[64];
    double t0 = cpu_seconds();
    int rc = 0;
    for (int i = 0; i < 200000 && !rc; i++) {
        snprintf(key, sizeof key, "key.%08d", i % 100000), snprintf(val, sizeof val, "v%d", i);
        rc = wcm_array_list_set_meta(&l, key, val, &err);
    }
    const char *v = wcm_array_list_get_meta(&l, "key.00054321");
    double secs = cpu_seconds() - t0;
    CHECK(!rc && l.meta_count == 100000 && v && !strcmp(v, "v154321") && !wcm_array_list_get_meta(&l, "key.1") &&
              secs < time_limit,
          "200,000 sets of 100,000 keys (second round replaces): %.3f s, insertion order kept, lookups exact", secs);
    wcm_array_list_free(&l);

    /* A safetensors file with 100,000 metadata keys (the quadratic case took
     * 48 s) and enough tensor data for its tree to fit the memory budget. */
    bytes h = {0};
    b_str(&h, "{\"__metadata__\":{");
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "%s\"wcm.key.%08d\":\"value %08d of a long metadata text\"", i ? "," : "", i, i);
        b_str(&h, key);
    }
    size_t floats = 3 << 20;
    snprintf(key, sizeof key, "},\"x\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", floats, floats * 4);
    b_str(&h, key);
    b_u8(&h, 0);
    float *data = calloc(floats, sizeof *data);
    bytes file = safetensors_bytes((const char *)h.data, data, floats * 4);
    free(h.data), free(data);
    craft_write(t_at("meta100k.safetensors"), file.data, file.len);
    t0 = cpu_seconds();
    rc = wcm_safetensors_parse(file.data, file.len, &l, &err);
    secs = cpu_seconds() - t0;
    v = rc ? NULL : wcm_array_list_get_meta(&l, "wcm.key.00099999");
    CHECK(!rc && l.meta_count == 100000 && v && !strcmp(v, "value 00099999 of a long metadata text") && secs < time_limit,
          "safetensors with 100,000 metadata keys (%.1f MB): loaded in %.3f s %s", file.len / 1e6, secs, rc ? err.msg : "");
    if (!rc) wcm_array_list_free(&l);
    free(file.data);
}

/* ---- D8: a pickle of nested one-tuples --------------------------------------------- */

static bytes nested_tuples_pt(size_t bytes_of_tuples) {
    bytes p = {0};
    b_u8(&p, 0x80), b_u8(&p, 2), b_str(&p, "K\x01");
    for (size_t i = 0; i < bytes_of_tuples; i++) b_u8(&p, 0x85);
    b_u8(&p, '.');
    zip_item it = {"a/data.pkl", p.data, p.len};
    bytes z = make_zip(&it, 1, 0, 0);
    free(p.data);
    return z;
}

static void test_nested_tuples(void) {
    bytes z = nested_tuples_pt(5 << 20);
    craft_write(t_at("nested5.pt"), z.data, z.len);
    wcm_array_list l;
    wcm_error err = {{0}};
    double t0 = cpu_seconds();
    int rc = wcm_torch_parse(z.data, z.len, &l, &err);
    double secs = cpu_seconds() - t0;
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "more memory than the file") && secs < time_limit,
          "5 MB of nested one-tuples refused in %.3f s (was 1.44 GB, 13.6 s): %s", secs, err.msg);
    free(z.data);
}

/* ---- peak memory of each loader, in a child process ------------------------------- */

static int load_any(const char *path) {
    wcm_error err;
    size_t n = strlen(path);
    if (n > 4 && !strcmp(path + n - 4, ".npy")) {
        wcm_array a;
        int rc = wcm_npy_read(path, &a, &err);
        if (!rc) wcm_array_free(&a);
        return rc;
    }
    if (n > 4 && (!strcmp(path + n - 4, ".png") || !strcmp(path + n - 4, ".jpg"))) {
        wcm_tensor t;
        int rc = wcm_image_read(path, &t, &err);
        if (!rc) wcm_tensor_free(&t);
        return rc;
    }
    wcm_array_list l;
    int rc = (n > 3 && !strcmp(path + n - 3, ".pt")) ? wcm_torch_read(path, &l, &err) : wcm_safetensors_read(path, &l, &err);
    if (!rc) wcm_array_list_free(&l);
    return rc;
}

/* The peak resident memory of this process (VmHWM, per address space: a
 * fresh exec starts from zero, unlike getrusage's maxrss). */
static long own_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb * 1024;
}

/* Peak resident memory (bytes) of a fresh process (this test, run with
 * --load) that loads `path`; *rc is its exit status. */
static long peak_rss(const char *path, int *rc) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/proc/%d/exe --load '%s'", (int)getpid(), path);
    FILE *p = popen(cmd, "r");
    long peak = -1, loaded = -1;
    if (p && fscanf(p, "%ld %ld", &loaded, &peak) != 2) peak = -1;
    *rc = p ? pclose(p) : -1;
    *rc = loaded ? 1 : 0;
    return peak;
}

static void test_peak_memory(void) {
    if (SANITIZED) {
        printf("skip: peak memory is not measured under sanitizers (shadow memory and quarantine)\n");
        return;
    }
    /* More files: an F16 model (its floats take twice the bytes), a float64 .npy. */
    wcm_array_list l;
    wcm_error err;
    wcm_array_list_init(&l);
    wcm_array a = {0};
    a.name = strdup("w");
    a.ndim = 1, a.shape[0] = 4 << 20;
    a.data = calloc(4 << 20, sizeof(float));
    wcm_array_list_push(&l, &a, &err);
    REQUIRE_OK(wcm_safetensors_write(t_at("f16.safetensors"), &l, 1, &err), &err);
    wcm_array_list_free(&l);
    double *d = calloc(2 << 20, sizeof *d);
    bytes npy = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1024, 2048), }", d, (2 << 20) * sizeof *d);
    craft_write(t_at("f8.npy"), npy.data, npy.len);
    free(npy.data), free(d);
    bytes tiny = npy_filled(2, 2, 0.5f);
    craft_write(t_at("tiny.npy"), tiny.data, tiny.len);
    free(tiny.data);

    int rc;
    long base = peak_rss(t_at("tiny.npy"), &rc);
    const long slack = 12L << 20; /* the loaders' 8 MB plus allocator rounding */
    const char *files[] = {"shared60000.pt", "meta100k.safetensors", "nested5.pt", "f16.safetensors", "f8.npy"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        struct stat st;
        if (stat(t_at(files[i]), &st) != 0) continue;
        long peak = peak_rss(t_at(files[i]), &rc);
        CHECK(peak - base <= 4 * st.st_size + slack, "%-21s %6.1f MB: peak RSS %6.1f MB (%s) = base %.1f + %.2fx the file",
              files[i], st.st_size / 1048576.0, peak / 1048576.0, rc ? "refused" : "loaded", base / 1048576.0,
              (double)(peak - base) / (double)st.st_size);
    }
    char real[4096];
    snprintf(real, sizeof real, "%s/weights/kadkhodaie2023/denoisers/flat/celebA_160x160_gray/noise_range_0to255_RF_43x43/model.pt",
             t_shared_dir());
    struct stat st;
    if (stat(real, &st) == 0) {
        long peak = peak_rss(real, &rc);
        CHECK(!rc && peak - base <= 4 * st.st_size + slack, "the authors' flat RF 43 model.pt (%.1f MB): peak RSS %.1f MB (%.2fx)",
              st.st_size / 1048576.0, peak / 1048576.0, (double)(peak - base) / (double)st.st_size);
    }
}

/* ---- D10: the pixel budget --------------------------------------------------------- */

static void test_pixel_budget(void) {
    wcm_error err = {{0}};
    wcm_tensor img;
    uint64_t def = wcm_default_max_pixels();
    CHECK(def >= (1u << 20) && def <= WCM_MAX_PIXELS_LIMIT && wcm_get_max_pixels() == def,
          "default pixel budget %llu (memory / %d bytes, within [2^20, 2^28])", (unsigned long long)def, WCM_BYTES_PER_PIXEL);
    wcm_set_max_pixels((uint64_t)1 << 24);
    double t0 = cpu_seconds();
    bytes big = make_gray_png(16384, 16384, 0);
    double made = cpu_seconds() - t0;
    t0 = cpu_seconds();
    int rc = wcm_image_decode("big.png", big.data, big.len, &img, &err);
    double secs = cpu_seconds() - t0;
    CHECK(rc == WCM_ERR_ARG && strstr(err.msg, "pixel budget") && secs < 0.5,
          "a %zu KB PNG declaring 16384x16384 pixels is refused from its header in %.4f s (made in %.2f s; was 2.1 GB, 23 s): %s",
          big.len / 1024, secs, made, err.msg);
    free(big.data);

    wcm_set_max_pixels(100000);
    bytes png = make_gray_png(400, 400, 128), jpg = make_gray_jpeg(400, 400, 128), npy = npy_filled(400, 400, 0.5f);
    struct {
        const char *name;
        bytes *b;
    } kinds[] = {{"x.png", &png}, {"x.jpg", &jpg}, {"x.npy", &npy}};
    for (int k = 0; k < 3; k++) {
        rc = wcm_image_decode(kinds[k].name, kinds[k].b->data, kinds[k].b->len, &img, &err);
        CHECK(rc == WCM_ERR_ARG && strstr(err.msg, "--max-pixels"), "400x400 %s over a budget of 100000 pixels: %s",
              kinds[k].name, err.msg);
    }
    wcm_set_max_pixels(160000);
    for (int k = 0; k < 3; k++) {
        rc = wcm_image_decode(kinds[k].name, kinds[k].b->data, kinds[k].b->len, &img, &err);
        CHECK(rc == 0 && img.h == 400 && img.w == 400 && fabsf(img.data[0] - 0.5f) < 0.01f,
              "400x400 %s within a budget of 160000 pixels decodes", kinds[k].name);
        wcm_tensor_free(&img);
    }
    free(png.data), free(jpg.data), free(npy.data);

    /* Network activations: refused before anything is allocated. */
    wcm_net *net;
    REQUIRE_OK(wcm_net_create(&net, WCM_NET_FLAT, 5, &err), &err);
    wcm_tensor in, out = {0};
    REQUIRE_OK(wcm_tensor_alloc(&in, 2, 300, 300, 1, &err), &err);
    unsigned long before = wcm_alloc_calls();
    rc = wcm_net_forward(net, &in, &out, &err);
    CHECK(rc == WCM_ERR_ARG && wcm_alloc_calls() == before && !out.data,
          "a forward pass over 2 x 300x300 pixels with a budget of 160000 is refused before allocating: %s", err.msg);
    wcm_set_max_pixels(0);
    rc = wcm_net_forward(net, &in, &out, &err);
    CHECK(rc == 0 && out.n == 2, "the same forward pass runs under the default budget");
    wcm_tensor_free(&in), wcm_tensor_free(&out);
    wcm_net_free(net);
}

/* ---- D11, D12: sizes, safetensors holes, .npy headers ------------------------------ */

static void test_sizes_and_formats(void) {
    wcm_error err = {{0}};
    wcm_tensor t;
    int rc = wcm_tensor_alloc(&t, 4, 1 << 30, 1 << 30, 1, &err);
    CHECK(rc != 0 && !t.data, "a 4 x 2^30 x 2^30 tensor (2^64 bytes, was a 64-byte buffer) is refused: %s", err.msg);
    size_t bytes_out;
    int64_t dims[3] = {1 << 30, 1 << 30, 16};
    CHECK(wcm_size_product(dims, 3, 4, SIZE_MAX, &bytes_out) == WCM_ERR_SHAPE, "wcm_size_product refuses 2^30 x 2^30 x 16 x 4 bytes");
    int64_t ok_dims[3] = {3, 0, (int64_t)1 << 62}, neg[2] = {3, -1};
    CHECK(!wcm_size_product(ok_dims, 3, 4, SIZE_MAX, &bytes_out) && bytes_out == 0 && wcm_size_product(neg, 2, 4, SIZE_MAX, &bytes_out),
          "a zero dimension gives 0 bytes, a negative one is refused");
    int64_t lim[2] = {1000, 1000};
    CHECK(!wcm_size_product(lim, 2, 4, 4000000, &bytes_out) && bytes_out == 4000000 &&
              wcm_size_product(lim, 2, 4, 3999999, &bytes_out),
          "the limit is inclusive");

    float four[4] = {1, 2, 3, 4};
    struct {
        const char *header, *needle, *what;
    } bad[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[8,16]}}", "hole of 4 bytes", "a hole between two tensors"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", "after the last tensor", "bytes after the last tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}", "hole of 4 bytes", "a hole before the first tensor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bytes b = safetensors_bytes(bad[i].header, four, sizeof four);
        wcm_array_list l;
        rc = wcm_safetensors_parse(b.data, b.len, &l, &err);
        CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, bad[i].needle), "safetensors with %s is refused: %s", bad[i].what, err.msg);
        free(b.data);
    }
    bytes b = safetensors_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"e\":{\"dtype\":\"F32\","
                                "\"shape\":[0],\"data_offsets\":[4,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}",
                                four, sizeof four);
    wcm_array_list l;
    rc = wcm_safetensors_parse(b.data, b.len, &l, &err);
    CHECK(rc == 0 && l.count == 3 && l.items[2].data[2] == 4, "tensors tiling the data exactly (with an empty one) load");
    if (!rc) wcm_array_list_free(&l);
    free(b.data);

    /* numpy's reader takes the dict's 'descr' (float32 here), not the text
     * "'descr': '<f8'" inside another key's string. */
    float vals[4] = {0.25f, 0.5f, 0.75f, 1.0f};
    bytes trick = npy_bytes("{'shape': (2, 2), 'fortran_order': False, 'x': \"'descr': '<f8'\", 'descr': '<f4', }", vals,
                            sizeof vals);
    wcm_array arr;
    rc = wcm_npy_parse(trick.data, trick.len, &arr, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "unexpected key 'x'"), ".npy with 'descr' inside a string is not misread: %s",
          err.msg);
    free(trick.data);
    struct {
        const char *header, *needle;
        int ok;
    } npys[] = {
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 2)}", NULL, 1},
        {"{'descr':'<f4','fortran_order':False,'shape':(4,)}", NULL, 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'descr': '<f4'}", "repeats", 0},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran", 0},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", "dtype '<i4'", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } x", "after the dict", 0},
        {"{'descr': '<f4', 'fortran_order': False}", "lacks", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "truncated", 0},
    };
    /* Found by fuzz_image: a shape with no data bytes at all. */
    bytes empty = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }", NULL, 0);
    rc = wcm_npy_parse(empty.data, empty.len, &arr, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "truncated"), ".npy of shape (1, 4) without data is refused: %s", err.msg);
    free(empty.data);
    for (size_t i = 0; i < sizeof npys / sizeof *npys; i++) {
        bytes n = npy_bytes(npys[i].header, vals, sizeof vals);
        rc = wcm_npy_parse(n.data, n.len, &arr, &err);
        if (npys[i].ok)
            CHECK(rc == 0 && wcm_array_count(&arr) == 4 && arr.data[3] == 1.0f, ".npy header %s reads", npys[i].header);
        else
            CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, npys[i].needle), ".npy header %s is refused: %s", npys[i].header, err.msg);
        if (!rc) wcm_array_free(&arr);
        free(n.data);
    }
}

/* ---- D12: weights no trained network has -------------------------------------------- */

static void test_weight_ranges(void) {
    wcm_error err = {{0}};
    wcm_net *net, *back;
    REQUIRE_OK(wcm_net_create(&net, WCM_NET_FLAT, 5, &err), &err);
    wcm_net_init_reference(net, 3);
    const char *what[3] = {"every gamma 1e38 (denoised at -693 dB before)", "one weight 1e37", "a negative running_sd"};
    for (int c = 0; c < 3; c++) {
        wcm_array_list l;
        wcm_array_list_init(&l);
        REQUIRE_OK(wcm_net_to_arrays(net, "", &l, &err), &err);
        for (int i = 0; i < l.count; i++) {
            wcm_array *a = &l.items[i];
            if (c == 0 && strstr(a->name, "gammas"))
                for (int64_t k = 0; k < wcm_array_count(a); k++) a->data[k] = 1e38f;
            if (c == 1 && !strcmp(a->name, "conv_layers.2.weight")) a->data[5] = 1e37f;
            if (c == 2 && !strcmp(a->name, "BN_layers.1.running_sd")) a->data[0] = -1.0f;
        }
        int rc = wcm_net_from_arrays(&l, "", &back, &err);
        CHECK(rc == WCM_ERR_NUMERIC, "a network with %s is refused: %s", what[c], err.msg);
        if (!rc) wcm_net_free(back);
        wcm_array_list_free(&l);
    }
    /* A run blown up by a huge learning rate (weights about 1e30) still loads. */
    wcm_array_list l;
    wcm_array_list_init(&l);
    REQUIRE_OK(wcm_net_to_arrays(net, "", &l, &err), &err);
    for (int i = 0; i < l.count; i++)
        for (int64_t k = 0; k < wcm_array_count(&l.items[i]); k++) l.items[i].data[k] *= 1e30f;
    int rc = wcm_net_from_arrays(&l, "", &back, &err);
    CHECK(rc == 0, "a network with every value scaled by 1e30 still loads (%s)", rc ? err.msg : "ok");
    if (!rc) wcm_net_free(back);
    wcm_array_list_free(&l);
    wcm_net_free(net);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--load")) {
        int rc = load_any(argv[2]);
        printf("%d %ld\n", rc ? 1 : 0, own_peak_rss());
        return 0;
    }
    t_temp_dir("loader_limits");
    test_shared_storage();
    test_many_metadata_keys();
    test_nested_tuples();
    test_peak_memory();
    test_pixel_budget();
    test_sizes_and_formats();
    test_weight_ranges();
    t_temp_dir_remove();
    return t_done("test_loader_limits");
}
