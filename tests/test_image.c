/* Image files, crops, resizing, listings and grids. Test inputs are written
 * here with libpng / libjpeg so every colour type and bit depth is covered. */
#include "testutil.h"
#include "wcm/image.h"
#include "wcm/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <unistd.h>

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[8][256];
    static int slot = 0;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_dir, name);
    return buf[slot];
}

/* ------------------------------------------------------------- writers */

typedef struct {
    int w, h, bit_depth, color_type, interlace;
    const unsigned char *data; /* packed rows as libpng expects them */
    size_t rowbytes;
    const png_color *palette;
    int palette_len;
    const unsigned char *trans;
    int trans_len;
    const char *text; /* optional tEXt comment */
} png_spec;

static int write_test_png(const char *path, const png_spec *s) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = malloc(sizeof(png_bytep) * s->h);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        free(rows);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, s->w, s->h, s->bit_depth, s->color_type, s->interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->palette_len);
    if (s->trans) png_set_tRNS(png, info, s->trans, s->trans_len, NULL);
    if (s->text) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.compression = PNG_TEXT_COMPRESSION_NONE;
        t.key = "Comment";
        t.text = (char *)s->text;
        png_set_text(png, info, &t, 1);
    }
    for (int y = 0; y < s->h; y++) rows[y] = (png_bytep)s->data + (size_t)y * s->rowbytes;
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return fclose(fp);
}

static int write_test_jpeg(const char *path, int w, int h, int comps, int progressive, int quality,
                           const unsigned char *pixels) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = w, c.image_height = h, c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)pixels + (size_t)c.next_scanline * w * comps;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(fp);
}

static unsigned char *slurp(const char *path, size_t *len) {
    unsigned char *buf;
    wcm_error err;
    return wcm_read_file(path, &buf, len, &err) == 0 ? buf : NULL;
}

static void write_bytes(const char *path, const void *buf, size_t len) {
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(buf, 1, len, fp);
        fclose(fp);
    }
}

/* Copy the first `keep` bytes of src to dst. */
static size_t truncate_copy(const char *src, const char *dst, double fraction) {
    size_t len;
    unsigned char *buf = slurp(src, &len);
    size_t keep = buf ? (size_t)(len * fraction) : 0;
    if (buf) write_bytes(dst, buf, keep);
    free(buf);
    return keep;
}

/* Run wcm_image_read with stderr captured; returns rc, sets *stderr_bytes. */
static int read_capturing_stderr(const char *path, wcm_tensor *img, wcm_error *err, long *stderr_bytes) {
    fflush(stderr);
    int saved = dup(2);
    const char *cap = tmp_path("stderr.txt");
    int fd = open(cap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 2);
    close(fd);
    int rc = wcm_image_read(path, img, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat st;
    *stderr_bytes = stat(cap, &st) == 0 ? (long)st.st_size : -1;
    unlink(cap);
    return rc;
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* ------------------------------------------------------------ PNG reads */

static int expect_values(const wcm_tensor *t, int h, int w, const double *expect, const char *what) {
    if (t->n != 1 || t->h != h || t->w != w || t->c != 1) {
        CHECK(0, "%s: shape %dx%dx%dx%d, expected 1x%dx%dx1", what, t->n, t->h, t->w, t->c, h, w);
        return 0;
    }
    int mismatches = 0;
    for (int i = 0; i < h * w; i++)
        if (t->data[i] != (float)expect[i]) {
            if (!mismatches) printf("     %s: pixel %d is %.9g, expected %.9g\n", what, i, t->data[i], expect[i]);
            mismatches++;
        }
    CHECK(mismatches == 0, "%s: %dx%d, all %d pixels exactly as expected", what, h, w, h * w);
    return mismatches == 0;
}

static void test_png_kinds(void) {
    wcm_error err = {{0}};
    wcm_tensor t;
    const char *p;
    double e[64];

    /* 8-bit gray, 3 wide x 2 high. */
    unsigned char g8[6] = {0, 1, 128, 255, 77, 200};
    png_spec s = {3, 2, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g8, 3, NULL, 0, NULL, 0, NULL};
    p = tmp_path("gray8.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    for (int i = 0; i < 6; i++) e[i] = g8[i] / 255.0;
    expect_values(&t, 2, 3, e, "8-bit gray PNG = v/255");
    wcm_tensor_free(&t);

    /* 16-bit gray: full 16-bit precision is kept (not stripped to 8 bits). */
    unsigned v16[4] = {0, 19661 /* round(65535*0.3) */, 65535, 12345};
    unsigned char g16[8];
    for (int i = 0; i < 4; i++) g16[2 * i] = v16[i] >> 8, g16[2 * i + 1] = v16[i] & 255;
    s = (png_spec){2, 2, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g16, 4, NULL, 0, NULL, 0, NULL};
    p = tmp_path("gray16.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    for (int i = 0; i < 4; i++) e[i] = v16[i] / 65535.0;
    expect_values(&t, 2, 2, e, "16-bit gray PNG = v/65535");
    CHECK(fabs(t.data[1] - 0.3) < 1e-5 && t.data[1] != (float)(77 / 255.0),
          "16-bit value 19661 reads as %.7f (0.3, not an 8-bit value)", t.data[1]);
    wcm_tensor_free(&t);

    /* Gray + alpha: alpha ignored. */
    unsigned char ga[8] = {10, 0, 100, 255, 200, 17, 255, 128};
    s = (png_spec){4, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, ga, 8, NULL, 0, NULL, 0, NULL};
    p = tmp_path("grayalpha.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 10 / 255.0, e[1] = 100 / 255.0, e[2] = 200 / 255.0, e[3] = 1.0;
    expect_values(&t, 1, 4, e, "gray+alpha PNG: gray/255, alpha ignored");
    wcm_tensor_free(&t);

    /* RGB: plain mean of R, G, B. */
    unsigned char rgb[9] = {10, 20, 60, 255, 0, 0, 255, 255, 255};
    s = (png_spec){3, 1, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb, 9, NULL, 0, NULL, 0, NULL};
    p = tmp_path("rgb.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 30 / 255.0, e[1] = 1 / 3.0, e[2] = 1.0;
    expect_values(&t, 1, 3, e, "RGB PNG: (10,20,60) -> 30/255, (255,0,0) -> 1/3");
    wcm_tensor_free(&t);

    /* RGBA. */
    unsigned char rgba[8] = {10, 20, 60, 0, 3, 6, 9, 200};
    s = (png_spec){2, 1, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, rgba, 8, NULL, 0, NULL, 0, NULL};
    p = tmp_path("rgba.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 30 / 255.0, e[1] = 6 / 255.0;
    expect_values(&t, 1, 2, e, "RGBA PNG: mean of RGB, alpha ignored");
    wcm_tensor_free(&t);

    /* Palette (8-bit indices) with a transparency chunk that must be ignored. */
    png_color pal[3] = {{10, 20, 60}, {0, 0, 0}, {90, 0, 255}};
    unsigned char trans[3] = {0, 128, 255};
    unsigned char idx[4] = {0, 1, 2, 0};
    s = (png_spec){2, 2, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, idx, 2, pal, 3, trans, 3, NULL};
    p = tmp_path("palette.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 30 / 255.0, e[1] = 0.0, e[2] = 115 / 255.0, e[3] = 30 / 255.0;
    expect_values(&t, 2, 2, e, "palette PNG with tRNS: mean of palette RGB");
    wcm_tensor_free(&t);

    /* 4-bit palette: two pixels per byte. */
    unsigned char idx4[2] = {0x21, 0x00}; /* indices 2, 1, 0, 0 */
    s = (png_spec){4, 1, 4, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, idx4, 2, pal, 3, NULL, 0, NULL};
    p = tmp_path("palette4.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 115 / 255.0, e[1] = 0.0, e[2] = 30 / 255.0, e[3] = 30 / 255.0;
    expect_values(&t, 1, 4, e, "4-bit palette PNG");
    wcm_tensor_free(&t);

    /* 16-bit RGB. */
    unsigned rgb16v[6] = {1000, 2000, 6000, 65535, 65535, 65532};
    unsigned char rgb16[12];
    for (int i = 0; i < 6; i++) rgb16[2 * i] = rgb16v[i] >> 8, rgb16[2 * i + 1] = rgb16v[i] & 255;
    s = (png_spec){2, 1, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb16, 12, NULL, 0, NULL, 0, NULL};
    p = tmp_path("rgb16.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 3000 / 65535.0, e[1] = 65534 / 65535.0;
    expect_values(&t, 1, 2, e, "16-bit RGB PNG: mean/65535");
    wcm_tensor_free(&t);

    /* 1-bit and 2-bit gray scale to the full range. */
    unsigned char g1[1] = {0xA0}; /* 1 0 1 */
    s = (png_spec){3, 1, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g1, 1, NULL, 0, NULL, 0, NULL};
    p = tmp_path("gray1.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    e[0] = 1.0, e[1] = 0.0, e[2] = 1.0;
    expect_values(&t, 1, 3, e, "1-bit gray PNG: 0/1 -> 0.0/1.0");
    wcm_tensor_free(&t);
    unsigned char g2[1] = {0x1B}; /* 0 1 2 3 */
    s = (png_spec){4, 1, 2, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g2, 1, NULL, 0, NULL, 0, NULL};
    p = tmp_path("gray2.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    for (int i = 0; i < 4; i++) e[i] = i / 3.0;
    expect_values(&t, 1, 4, e, "2-bit gray PNG: k -> k/3");
    wcm_tensor_free(&t);

    /* Adam7 interlaced 8-bit gray. */
    unsigned char il[63];
    for (int i = 0; i < 63; i++) il[i] = (unsigned char)(i * 37 + 5);
    s = (png_spec){9, 7, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, il, 9, NULL, 0, NULL, 0, NULL};
    p = tmp_path("interlaced.png");
    write_test_png(p, &s);
    REQUIRE_OK(wcm_image_read(p, &t, &err), &err);
    for (int i = 0; i < 63; i++) e[i] = il[i] / 255.0;
    expect_values(&t, 7, 9, e, "interlaced (Adam7) gray PNG");
    wcm_tensor_free(&t);

    /* A corrupt CRC on an ancillary (tEXt) chunk is only a libpng warning:
     * the image reads fine and nothing is printed. */
    s = (png_spec){3, 2, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g8, 3, NULL, 0, NULL, 0, "a comment"};
    p = tmp_path("badtext.png");
    write_test_png(p, &s);
    size_t len;
    unsigned char *buf = slurp(p, &len);
    int patched = 0;
    for (size_t i = 4; buf && i + 8 < len; i++)
        if (memcmp(buf + i, "tEXt", 4) == 0) {
            size_t clen = ((size_t)buf[i - 4] << 24) | (buf[i - 3] << 16) | (buf[i - 2] << 8) | buf[i - 1];
            buf[i + 4 + clen] ^= 0xFF; /* first CRC byte */
            patched = 1;
            break;
        }
    write_bytes(p, buf, len);
    free(buf);
    long printed = -1;
    int rc = read_capturing_stderr(p, &t, &err, &printed);
    CHECK(patched && rc == 0 && t.h == 2 && t.w == 3 && t.data[3] == (float)(255 / 255.0),
          "PNG with a bad tEXt CRC still reads (rc=%d %s)", rc, rc ? err.msg : "");
    CHECK(printed == 0, "libpng warning printed nothing on stderr (%ld bytes)", printed);
    wcm_tensor_free(&t);
}

/* ----------------------------------------------------------- JPEG reads */

static void test_jpeg(void) {
    wcm_error err = {{0}};
    wcm_tensor t;
    enum { W = 40, H = 24 };
    unsigned char gray[W * H], rgb[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            gray[y * W + x] = (unsigned char)(40 + 4 * x + 2 * y);
            rgb[(y * W + x) * 3 + 0] = (unsigned char)(30 + 3 * x);
            rgb[(y * W + x) * 3 + 1] = (unsigned char)(200 - 5 * y);
            rgb[(y * W + x) * 3 + 2] = (unsigned char)(90 + 2 * x + 2 * y);
        }
    const char *pg = tmp_path("gray.jpg"), *pc = tmp_path("colour_progressive.JPEG");
    write_test_jpeg(pg, W, H, 1, 0, 95, gray);
    write_test_jpeg(pc, W, H, 3, 1, 95, rgb);

    REQUIRE_OK(wcm_image_read(pg, &t, &err), &err);
    double worst = 0;
    for (int i = 0; i < W * H; i++) worst = fmax(worst, fabs(t.data[i] - gray[i] / 255.0));
    CHECK(t.n == 1 && t.h == H && t.w == W && t.c == 1, "baseline gray JPEG is 1x%dx%dx1 (got %dx%d)", H, W, t.h, t.w);
    CHECK(worst < 3.0 / 255, "baseline gray JPEG within 3/255 of the source (max error %.2f/255)", worst * 255);
    wcm_tensor_free(&t);

    REQUIRE_OK(wcm_image_read(pc, &t, &err), &err);
    worst = 0;
    for (int i = 0; i < W * H; i++) {
        double mean = (rgb[3 * i] + rgb[3 * i + 1] + rgb[3 * i + 2]) / 765.0;
        worst = fmax(worst, fabs(t.data[i] - mean));
    }
    CHECK(t.h == H && t.w == W, "progressive RGB JPEG (.JPEG) is %dx%d", t.h, t.w);
    CHECK(worst < 4.0 / 255, "progressive RGB JPEG gray = mean RGB within 4/255 (max error %.2f/255)", worst * 255);
    wcm_tensor_free(&t);

    /* Stray bytes between markers: libjpeg warns, pixels are intact, so it
     * reads and prints nothing. */
    size_t len;
    unsigned char *buf = slurp(pg, &len);
    unsigned char *junk = malloc(len + 3);
    memcpy(junk, buf, 2);
    memcpy(junk + 2, "\x12\x34\x56", 3);
    memcpy(junk + 5, buf + 2, len - 2);
    const char *pj = tmp_path("extraneous.jpg");
    write_bytes(pj, junk, len + 3);
    free(junk);
    free(buf);
    long printed = -1;
    int rc = read_capturing_stderr(pj, &t, &err, &printed);
    CHECK(rc == 0 && t.h == H && t.w == W, "JPEG with extraneous bytes between markers reads (rc=%d %s)", rc,
          rc ? err.msg : "");
    CHECK(printed == 0, "libjpeg warning printed nothing on stderr (%ld bytes)", printed);
    wcm_tensor_free(&t);
}

/* ------------------------------------------------------- broken inputs */

static void test_bad_files(void) {
    wcm_error err = {{0}};
    wcm_tensor t;
    enum { N = 64 };
    unsigned char noise[N * N];
    unsigned long long seed = 7;
    for (int i = 0; i < N * N; i++) noise[i] = (unsigned char)(128 + 127 * t_rand(&seed));

    const char *full = tmp_path("noise.png"), *cut = tmp_path("noise_cut.png");
    png_spec s = {N, N, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, noise, N, NULL, 0, NULL, 0, NULL};
    write_test_png(full, &s);
    REQUIRE_OK(wcm_image_read(full, &t, &err), &err);
    wcm_tensor_free(&t);
    size_t kept = truncate_copy(full, cut, 0.5);
    long printed = -1;
    int rc = read_capturing_stderr(cut, &t, &err, &printed);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "noise_cut.png: truncated or corrupt PNG ("),
          "PNG cut to %zu bytes -> error: %s", kept, err.msg);
    CHECK(t.data == NULL && printed == 0, "no tensor and nothing printed after the PNG error");

    const char *jfull = tmp_path("noise.jpg"), *jcut = tmp_path("noise_cut.jpg");
    write_test_jpeg(jfull, N, N, 1, 0, 90, noise);
    REQUIRE_OK(wcm_image_read(jfull, &t, &err), &err);
    wcm_tensor_free(&t);
    kept = truncate_copy(jfull, jcut, 0.5);
    rc = read_capturing_stderr(jcut, &t, &err, &printed);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "noise_cut.jpg: truncated or corrupt JPEG (") &&
              strstr(err.msg, "Premature end"),
          "baseline JPEG cut to %zu bytes -> error: %s", kept, err.msg);
    CHECK(t.data == NULL && printed == 0, "no tensor and nothing printed after the JPEG error");

    unsigned char rgbnoise[N * N * 3];
    for (int i = 0; i < N * N * 3; i++) rgbnoise[i] = (unsigned char)(128 + 127 * t_rand(&seed));
    const char *pfull = tmp_path("noise_prog.jpg"), *pcut = tmp_path("noise_prog_cut.jpg");
    write_test_jpeg(pfull, N, N, 3, 1, 90, rgbnoise);
    kept = truncate_copy(pfull, pcut, 0.5);
    rc = wcm_image_read(pcut, &t, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "truncated or corrupt JPEG"),
          "progressive JPEG cut to %zu bytes -> error: %s", kept, err.msg);

    const char *fake = tmp_path("fake.png");
    write_bytes(fake, "hello, not an image\n", 20);
    rc = wcm_image_read(fake, &t, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "fake.png: not a PNG file"), "text file named .png -> %s", err.msg);
    const char *fakej = tmp_path("fake.jpg");
    write_bytes(fakej, "hello, not an image\n", 20);
    rc = wcm_image_read(fakej, &t, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "not a JPEG file"), "text file named .jpg -> %s", err.msg);
    const char *empty = tmp_path("empty.png");
    write_bytes(empty, "", 0);
    rc = wcm_image_read(empty, &t, &err);
    CHECK(rc == WCM_ERR_FORMAT, "empty .png -> %s", err.msg);
    rc = wcm_image_read(tmp_path("missing.png"), &t, &err);
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "missing.png"), "missing file -> %s", err.msg);
    rc = wcm_image_read(tmp_path("picture.bmp"), &t, &err);
    CHECK(rc == WCM_ERR_FORMAT && strstr(err.msg, "unsupported image type"), "unknown extension -> %s", err.msg);

    CHECK(wcm_image_is_supported("a/b.PNG") && wcm_image_is_supported("x.jpeg") && wcm_image_is_supported("x.Jpg") &&
              wcm_image_is_supported("x.npy") && !wcm_image_is_supported("x.png.txt") &&
              !wcm_image_is_supported("dir.png/file") && !wcm_image_is_supported(".png"),
          "wcm_image_is_supported: extension only, case-insensitive");
}

/* ---------------------------------------------------------- round trips */

static void test_write_roundtrip(void) {
    wcm_error err = {{0}};
    wcm_tensor img, back;
    REQUIRE_OK(wcm_tensor_alloc(&img, 2, 5, 7, 1, &err), &err);
    unsigned long long seed = 3;
    size_t n = wcm_tensor_count(&img);
    for (size_t i = 0; i < n; i++) img.data[i] = 0.5f + 0.7f * t_rand(&seed); /* includes values outside [0,1] */
    float *second = img.data + 35;
    second[0] = 0.5f;       /* 127.5 + 0.5 -> 128: half rounds up */
    second[1] = -0.25f;     /* clipped to 0 */
    second[2] = 3.0f;       /* clipped to 1 */
    second[3] = NAN;        /* written as 0 */

    for (int bits = 8; bits <= 16; bits += 8) {
        const char *p = tmp_path(bits == 8 ? "out8.png" : "out16.png");
        REQUIRE_OK(wcm_image_write(p, &img, 1, bits, &err), &err);
        REQUIRE_OK(wcm_image_read(p, &back, &err), &err);
        double maxval = bits == 8 ? 255.0 : 65535.0;
        double e[35];
        for (int i = 0; i < 35; i++) {
            double v = second[i];
            v = !(v > 0) ? 0 : v > 1 ? 1 : v;
            e[i] = floor(v * maxval + 0.5) / maxval;
        }
        char what[96];
        snprintf(what, sizeof what, "%d-bit PNG round trip = floor(clip(v)*%g+0.5)/%g", bits, maxval, maxval);
        expect_values(&back, 5, 7, e, what);
        double half = floor(0.5 * maxval + 0.5); /* 127.5 -> 128, 32767.5 -> 32768 */
        CHECK(back.data[0] == (float)(half / maxval), "%d-bit: 0.5 is written as %g/%g (half rounds up)", bits,
              back.data[0] * maxval, maxval);
        wcm_tensor_free(&back);
    }

    const char *pn = tmp_path("out.npy");
    REQUIRE_OK(wcm_image_write(pn, &img, 0, 8, &err), &err);
    REQUIRE_OK(wcm_image_read(pn, &back, &err), &err);
    CHECK(back.n == 1 && back.h == 5 && back.w == 7 && memcmp(back.data, img.data, 35 * sizeof(float)) == 0,
          ".npy round trip is bit-exact (unclipped)");
    wcm_tensor_free(&back);
    wcm_array a;
    REQUIRE_OK(wcm_npy_read(pn, &a, &err), &err);
    CHECK(a.ndim == 2 && a.shape[0] == 5 && a.shape[1] == 7, ".npy written with shape (H, W) = (%lld, %lld)",
          (long long)a.shape[0], (long long)a.shape[a.ndim - 1]);
    wcm_array_free(&a);

    /* .npy shapes: 1HW and 11HW accepted, 2HW refused. */
    float vals[24];
    for (int i = 0; i < 24; i++) vals[i] = i * 0.25f;
    int64_t shapes[3][4] = {{1, 3, 4, 0}, {1, 1, 3, 4}, {2, 3, 4, 0}};
    int ndims[3] = {3, 4, 3};
    for (int k = 0; k < 3; k++) {
        wcm_array arr;
        memset(&arr, 0, sizeof arr);
        arr.ndim = ndims[k];
        memcpy(arr.shape, shapes[k], sizeof shapes[k]);
        arr.data = vals;
        const char *p = tmp_path("shape.npy");
        REQUIRE_OK(wcm_npy_write(p, &arr, &err), &err);
        int rc = wcm_image_read(p, &back, &err);
        if (k < 2)
            CHECK(rc == 0 && back.h == 3 && back.w == 4 && back.data[11] == 2.75f, ".npy of ndim %d read as 3x4",
                  ndims[k]);
        else
            CHECK(rc == WCM_ERR_SHAPE && strstr(err.msg, "(2, 3, 4)"), ".npy of shape (2,3,4) refused: %s", err.msg);
        wcm_tensor_free(&back);
    }

    int rc = wcm_image_write(tmp_path("out.jpg"), &img, 0, 16, &err);
    CHECK(rc == WCM_ERR_ARG, "16-bit .jpg refused: %s", err.msg);
    rc = wcm_image_write(tmp_path("out.tiff"), &img, 0, 8, &err);
    CHECK(rc == WCM_ERR_ARG, "writing .tiff refused: %s", err.msg);
    rc = wcm_image_write(tmp_path("out12.png"), &img, 0, 12, &err);
    CHECK(rc == WCM_ERR_ARG, "bits=12 refused: %s", err.msg);
    rc = wcm_image_write(tmp_path("out.png"), &img, 2, 8, &err);
    CHECK(rc == WCM_ERR_ARG, "index 2 of a batch of 2 refused: %s", err.msg);
    rc = wcm_image_write(tmp_path("no/such/dir/out.png"), &img, 0, 8, &err);
    CHECK(rc == WCM_ERR_IO, "write into a missing directory -> %s", err.msg);
    wcm_tensor rgb3;
    REQUIRE_OK(wcm_tensor_alloc(&rgb3, 1, 2, 2, 3, &err), &err);
    for (int i = 0; i < 12; i++) rgb3.data[i] = (float)i / 11.0f;
    rc = wcm_image_write(tmp_path("out3.npy"), &rgb3, 0, 8, &err);
    CHECK(rc == WCM_ERR_ARG, "3-channel .npy write refused: %s", err.msg);
    const char *rgb_names[] = {"out3.png", "out3.jpg"};
    for (int f = 0; f < 2; f++) {
        wcm_tensor back;
        REQUIRE_OK(wcm_image_write(tmp_path(rgb_names[f]), &rgb3, 0, 8, &err), &err);
        REQUIRE_OK(wcm_image_read_color(tmp_path(rgb_names[f]), &back, &err), &err);
        double worst = 0;
        for (int i = 0; i < 12 && back.c == 3; i++) worst = fmax(worst, fabs((double)back.data[i] - rgb3.data[i]));
        /* PNG: 8-bit rounding; JPEG: lossy, quality 95 on a 2x2 ramp. */
        CHECK(back.c == 3 && back.h == 2 && back.w == 2 && worst <= (f ? 0.08 : 0.5 / 255 + 1e-6),
              "RGB %s written and read back as 3 channels, max |diff| %.4f", rgb_names[f], worst);
        wcm_tensor_free(&back);
        REQUIRE_OK(wcm_image_read(tmp_path(rgb_names[f]), &back, &err), &err);
        CHECK(back.c == 1, "RGB %s read as gray by wcm_image_read", rgb_names[f]);
        wcm_tensor_free(&back);
    }
    wcm_tensor_free(&rgb3);
    wcm_tensor_free(&img);
}

/* ---------------------------------------------------------------- crops */

static void test_crop(void) {
    wcm_error err = {{0}};
    wcm_tensor img, out;
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 90, 120, 1, &err), &err);
    int rc = wcm_image_center_crop(&img, 160, 160, &out, &err);
    CHECK(rc == WCM_ERR_SHAPE && strcmp(err.msg, "image is 120x90, smaller than the 160x160 crop") == 0,
          "120 wide x 90 high image, 160x160 crop -> \"%s\"", err.msg);
    wcm_tensor_free(&img);

    /* 2 images, 5 high x 7 wide, 2 channels; value encodes (b, y, x, c). */
    REQUIRE_OK(wcm_tensor_alloc(&img, 2, 5, 7, 2, &err), &err);
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
                for (int c = 0; c < 2; c++) img.data[wcm_tensor_idx(&img, b, y, x, c)] = b * 1000 + y * 100 + x * 10 + c;
    REQUIRE_OK(wcm_image_center_crop(&img, 2, 3, &out, &err), &err);
    /* x0 = (7-3)/2 = 2, y0 = (5-2)/2 = 1 */
    int ok = out.n == 2 && out.h == 2 && out.w == 3 && out.c == 2;
    for (int b = 0; ok && b < 2; b++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                for (int c = 0; c < 2; c++)
                    ok &= out.data[wcm_tensor_idx(&out, b, y, x, c)] == b * 1000 + (y + 1) * 100 + (x + 2) * 10 + c;
    CHECK(ok, "centre crop 3x2 of a 7x5 batch starts at x0=2, y0=1 for every image and channel");
    wcm_tensor_free(&out);
    REQUIRE_OK(wcm_image_center_crop(&img, 4, 4, &out, &err), &err);
    CHECK(out.data[0] == 0 * 100 + 1 * 10, "centre crop 4x4 of 7x5: x0=1, y0=0 (integer division)");
    wcm_tensor_free(&out);
    REQUIRE_OK(wcm_image_crop(&img, 3, 4, 2, 3, &out, &err), &err);
    CHECK(out.data[wcm_tensor_idx(&out, 1, 1, 2, 1)] == 1000 + 400 + 60 + 1, "crop at y0=3, x0=4 picks (4, 6)");
    wcm_tensor_free(&out);
    rc = wcm_image_crop(&img, 4, 0, 2, 3, &out, &err);
    CHECK(rc == WCM_ERR_SHAPE, "crop past the bottom refused: %s", err.msg);
    rc = wcm_image_crop(&img, -1, 0, 2, 3, &out, &err);
    CHECK(rc == WCM_ERR_SHAPE, "negative offset refused: %s", err.msg);
    rc = wcm_image_center_crop(&img, 0, 3, &out, &err);
    CHECK(rc == WCM_ERR_ARG, "zero-size crop refused: %s", err.msg);
    wcm_tensor_free(&img);
}

/* ---------------------------------------------------------------- resize */

static void test_resize(void) {
    wcm_error err = {{0}};
    wcm_tensor img, out;

    /* Area 4x4 -> 2x2: exact block means (dyadic values, so exact in float). */
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 4, 4, 1, &err), &err);
    for (int i = 0; i < 16; i++) img.data[i] = (float)((i * 7) % 16) / 16.0f;
    REQUIRE_OK(wcm_image_resize(&img, 2, 2, WCM_RESIZE_AREA, &out, &err), &err);
    int exact = out.h == 2 && out.w == 2;
    for (int by = 0; exact && by < 2; by++)
        for (int bx = 0; bx < 2; bx++) {
            const float *d = img.data;
            float mean = (d[(2 * by) * 4 + 2 * bx] + d[(2 * by) * 4 + 2 * bx + 1] + d[(2 * by + 1) * 4 + 2 * bx] +
                          d[(2 * by + 1) * 4 + 2 * bx + 1]) / 4;
            exact &= out.data[by * 2 + bx] == mean;
        }
    CHECK(exact, "area 4x4 -> 2x2 equals the 2x2 block means exactly (%g %g %g %g)", out.data[0], out.data[1],
          out.data[2], out.data[3]);
    wcm_tensor_free(&out);
    wcm_tensor_free(&img);

    /* Area with a non-integer ratio: 1x6 -> 1x4, footprints of 1.5 pixels. */
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 1, 6, 1, &err), &err);
    float r[6] = {0.1f, 0.7f, 0.3f, 0.9f, 0.2f, 0.5f};
    memcpy(img.data, r, sizeof r);
    REQUIRE_OK(wcm_image_resize(&img, 1, 4, WCM_RESIZE_AREA, &out, &err), &err);
    double e[4] = {(r[0] + 0.5 * r[1]) / 1.5, (0.5 * r[1] + r[2]) / 1.5, (r[3] + 0.5 * r[4]) / 1.5,
                   (0.5 * r[4] + r[5]) / 1.5};
    double worst = 0;
    for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(out.data[i] - e[i]));
    CHECK(out.w == 4 && worst < 1e-6, "area 6 -> 4 is the overlap-weighted mean (max error %.2g)", worst);
    wcm_tensor_free(&out);
    wcm_tensor_free(&img);

    /* Bicubic upscale of a constant stays constant; multi-image, multi-channel. */
    REQUIRE_OK(wcm_tensor_alloc(&img, 2, 5, 7, 3, &err), &err);
    for (size_t i = 0; i < wcm_tensor_count(&img); i++) img.data[i] = 0.375f + 0.125f * (float)(i % 3);
    REQUIRE_OK(wcm_image_resize(&img, 13, 17, WCM_RESIZE_BICUBIC, &out, &err), &err);
    worst = 0;
    for (size_t i = 0; i < wcm_tensor_count(&out); i++)
        worst = fmax(worst, fabs(out.data[i] - (0.375 + 0.125 * (double)(i % 3))));
    CHECK(out.n == 2 && out.h == 13 && out.w == 17 && out.c == 3 && worst < 1e-6,
          "bicubic 7x5 -> 17x13 of a constant (per channel) stays constant (max deviation %.2g)", worst);
    wcm_tensor_free(&out);
    REQUIRE_OK(wcm_image_resize(&img, 2, 3, WCM_RESIZE_BICUBIC, &out, &err), &err);
    worst = 0;
    for (size_t i = 0; i < wcm_tensor_count(&out); i++)
        worst = fmax(worst, fabs(out.data[i] - (0.375 + 0.125 * (double)(i % 3))));
    CHECK(worst < 1e-6, "bicubic downscale of a constant stays constant (max deviation %.2g)", worst);
    wcm_tensor_free(&out);
    wcm_tensor_free(&img);

    /* Linear ramp: pixel k (centre k + 0.5) holds 0.02 * (k + 0.5). Bicubic
     * reproduces linear functions away from the borders, both ways. */
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 3, 40, 1, &err), &err);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 40; x++) img.data[y * 40 + x] = 0.02f * (x + 0.5f);
    int sizes[2] = {80, 20};
    for (int s = 0; s < 2; s++) {
        int ow = sizes[s];
        REQUIRE_OK(wcm_image_resize(&img, 3, ow, WCM_RESIZE_BICUBIC, &out, &err), &err);
        double scale = 40.0 / ow;
        worst = 0;
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < ow; x++) {
                double centre = (x + 0.5) * scale;
                if (centre < 5 || centre > 35) continue; /* interior only */
                worst = fmax(worst, fabs(out.data[y * ow + x] - 0.02 * centre));
            }
        CHECK(worst < 1e-5, "bicubic 40 -> %d of a linear ramp is linear inside (max error %.2g)", ow, worst);
        wcm_tensor_free(&out);
    }
    wcm_tensor_free(&img);

    /* Pillow's kernel on a unit impulse at index 2 (a = -0.5, centres at
     * (o + 0.5) * scale): 2x upscale gives taps 0.2265625 and 0.8671875;
     * 2x downscale stretches the kernel (weights halved, support 4). */
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 1, 6, 1, &err), &err);
    img.data[2] = 1.0f;
    REQUIRE_OK(wcm_image_resize(&img, 1, 12, WCM_RESIZE_BICUBIC, &out, &err), &err);
    CHECK(out.data[3] == 0.2265625f && out.data[4] == 0.8671875f && out.data[5] == 0.8671875f &&
              out.data[6] == 0.2265625f && out.data[7] == -0.0703125f && out.data[8] == -0.0234375f,
          "bicubic 6 -> 12 of an impulse: %g %g %g %g %g %g", out.data[3], out.data[4], out.data[5], out.data[6],
          out.data[7], out.data[8]);
    wcm_tensor_free(&out);
    wcm_tensor_free(&img);
    REQUIRE_OK(wcm_tensor_alloc(&img, 1, 1, 12, 1, &err), &err);
    img.data[5] = 1.0f;
    REQUIRE_OK(wcm_image_resize(&img, 1, 6, WCM_RESIZE_BICUBIC, &out, &err), &err);
    CHECK(out.data[2] == 0.43359375f && out.data[3] == 0.11328125f,
          "bicubic 12 -> 6 of an impulse (antialiased): %g %g (expect 0.43359375 0.11328125)", out.data[2],
          out.data[3]);
    wcm_tensor_free(&out);

    int rc = wcm_image_resize(&img, 0, 4, WCM_RESIZE_AREA, &out, &err);
    CHECK(rc == WCM_ERR_ARG, "resize to 4x0 refused: %s", err.msg);
    rc = wcm_image_resize(&img, 4, 4, (wcm_resize_method)7, &out, &err);
    CHECK(rc == WCM_ERR_ARG, "unknown method refused: %s", err.msg);
    wcm_tensor_free(&img);
}

/* ------------------------------------------------------------ grid, list */

static void test_grid(void) {
    wcm_error err = {{0}};
    wcm_tensor batch, g;
    REQUIRE_OK(wcm_tensor_alloc(&batch, 3, 2, 3, 1, &err), &err);
    for (int i = 0; i < 18; i++) batch.data[i] = (float)(i * 10) / 255.0f;
    const char *p = tmp_path("grid.png");
    REQUIRE_OK(wcm_image_write_grid(p, &batch, 2, 1, &err), &err);
    REQUIRE_OK(wcm_image_read(p, &g, &err), &err);
    /* 2 columns x 2 rows of 3x2 images, 1-pixel border: 9 wide, 7 high. */
    CHECK(g.h == 7 && g.w == 9, "grid of 3 images (3x2), 2 columns, pad 1 is 9x7 (got %dx%d)", g.w, g.h);
    if (g.h == 7 && g.w == 9) {
        int ok = 1;
        for (int b = 0; b < 3; b++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 3; x++) {
                    int gy = 1 + (b / 2) * 3 + y, gx = 1 + (b % 2) * 4 + x;
                    ok &= fabsf(g.data[gy * 9 + gx] - batch.data[b * 6 + y * 3 + x]) < 1e-6f;
                }
        CHECK(ok, "grid cells hold the images at (1 + col*4, 1 + row*3)");
        CHECK(g.data[0] == 1.0f && g.data[3 * 9 + 4] == 1.0f && g.data[5 * 9 + 6] == 1.0f && g.data[6 * 9 + 8] == 1.0f,
              "border, gaps and the empty last cell are white");
    }
    wcm_tensor_free(&g);
    REQUIRE_OK(wcm_image_write_grid(p, &batch, 10, 0, &err), &err);
    REQUIRE_OK(wcm_image_read(p, &g, &err), &err);
    CHECK(g.h == 2 && g.w == 9 && g.data[3] == batch.data[6], "cols > n: one row of 3 (9x2), no padding");
    wcm_tensor_free(&g);
    int rc = wcm_image_write_grid(p, &batch, 0, 1, &err);
    CHECK(rc == WCM_ERR_ARG, "0 columns refused: %s", err.msg);
    wcm_tensor_free(&batch);
}

static void test_list(void) {
    wcm_error err = {{0}};
    char sub[256];
    snprintf(sub, sizeof sub, "%s/listing", g_dir);
    mkdir(sub, 0700);
    const char *files[] = {"b.png", "a.jpg", "C.JPEG", "z.npy", "notes.txt", "README"};
    char p[512];
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", sub, files[i]);
        write_bytes(p, "x", 1);
    }
    snprintf(p, sizeof p, "%s/dir.png", sub);
    mkdir(p, 0700);
    char **paths = NULL;
    int count = -1, skipped = -1;
    REQUIRE_OK(wcm_list_images(sub, &paths, &count, &skipped, &err), &err);
    const char *want[] = {"C.JPEG", "a.jpg", "b.png", "z.npy"};
    int ok = count == 4;
    for (int i = 0; ok && i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", sub, want[i]);
        ok &= strcmp(paths[i], p) == 0;
    }
    CHECK(ok, "4 images listed, sorted bytewise, as dir/name (first: %s)", count > 0 ? paths[0] : "-");
    CHECK(skipped == 3, "3 other entries skipped (notes.txt, README, directory dir.png): %d", skipped);
    wcm_free_paths(paths, count);

    snprintf(p, sizeof p, "%s/", sub);
    REQUIRE_OK(wcm_list_images(p, &paths, &count, &skipped, &err), &err);
    snprintf(p, sizeof p, "%s/C.JPEG", sub);
    CHECK(count == 4 && strcmp(paths[0], p) == 0, "trailing slash on the directory is not doubled");
    wcm_free_paths(paths, count);

    snprintf(p, sizeof p, "%s/dir.png", sub);
    REQUIRE_OK(wcm_list_images(p, &paths, &count, &skipped, &err), &err);
    CHECK(count == 0 && paths == NULL && skipped == 0, "empty directory: 0 images, not an error");
    int rc = wcm_list_images(tmp_path("nope"), &paths, &count, &skipped, &err);
    CHECK(rc == WCM_ERR_IO && strstr(err.msg, "nope"), "missing directory -> %s", err.msg);
}

/* ------------------------------------------------------------ real data */

static void test_shared_data(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/celebahq/test320", t_shared_dir());
    if (!t_is_dir(dir)) {
        printf("skip: %s absent\n", dir);
        return;
    }
    wcm_error err = {{0}};
    char **paths;
    int count, skipped;
    REQUIRE_OK(wcm_list_images(dir, &paths, &count, &skipped, &err), &err);
    CHECK(count > 0, "%d PNGs in celebahq/test320", count);
    if (count > 0) {
        wcm_tensor t;
        REQUIRE_OK(wcm_image_read(paths[0], &t, &err), &err);
        float lo = 1, hi = 0;
        int on_grid = 1;
        for (size_t i = 0; i < wcm_tensor_count(&t); i++) {
            lo = fminf(lo, t.data[i]), hi = fmaxf(hi, t.data[i]);
            double q = t.data[i] * 255.0;
            on_grid &= fabs(q - floor(q + 0.5)) < 1e-4;
        }
        CHECK(t.h == 320 && t.w == 320 && lo >= 0 && hi <= 1 && hi > lo,
              "%s: 320x320 (got %dx%d), values in [%g, %g]", paths[0], t.w, t.h, lo, hi);
        CHECK(on_grid, "8-bit gray PNG values are multiples of 1/255");
        wcm_tensor_free(&t);
    }
    wcm_free_paths(paths, count);

    snprintf(dir, sizeof dir, "%s/data/celeba/test", t_shared_dir());
    if (!t_is_dir(dir)) return;
    REQUIRE_OK(wcm_list_images(dir, &paths, &count, &skipped, &err), &err);
    int bad = 0, min_side = 1 << 30;
    for (int i = 0; i < count; i++) {
        wcm_tensor t;
        if (wcm_image_read(paths[i], &t, &err) != 0) {
            if (!bad) printf("     %s\n", err.msg);
            bad++;
            continue;
        }
        if (i == 0) {
            const char *base = strrchr(paths[0], '/') + 1;
            int expect = strcmp(base, "182782.jpg") == 0;
            CHECK(t.n == 1 && t.c == 1 && (!expect || (t.h == 210 && t.w == 200)) && t.h >= 160 && t.w >= 160,
                  "%s: shape 1x%dx%dx1%s", base, t.h, t.w, expect ? " (file says 200x210)" : "");
        }
        min_side = t.h < min_side ? t.h : min_side;
        min_side = t.w < min_side ? t.w : min_side;
        wcm_tensor_free(&t);
    }
    CHECK(count > 0 && bad == 0 && min_side >= 160,
          "all %d celeba/test JPEGs decode without warnings, smallest side %d >= 160", count, min_side);
    wcm_free_paths(paths, count);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/wcm_test_image_XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL cannot create a temporary directory\n");
        return 1;
    }
    test_png_kinds();
    test_jpeg();
    test_bad_files();
    test_write_roundtrip();
    test_crop();
    test_resize();
    test_grid();
    test_list();

    /* Every write is atomic: no temporary files may be left behind. */
    char **paths;
    int count, skipped;
    wcm_error err = {{0}};
    REQUIRE_OK(wcm_list_images(g_dir, &paths, &count, &skipped, &err), &err);
    int leftovers = 0;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) leftovers += strstr(e->d_name, ".wcm-tmp.") != NULL;
    if (d) closedir(d);
    CHECK(leftovers == 0, "no temporary files left in the output directory (%d)", leftovers);
    wcm_free_paths(paths, count);

    test_shared_data();
    nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return t_done("test_image");
}
