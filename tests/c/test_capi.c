/*
 * C tests of the styletransfer ABI, compiled against the installed header
 * and library (pkg-config), run under AddressSanitizer and under valgrind
 * (and, for the two-thread check alone, under ThreadSanitizer).
 *
 * Needs a model: the installed one, or ST_MODEL. Images are tiny (tens of
 * pixels) and runs are one or two evaluations. Under valgrind, where one
 * tiny run of libtorch takes about 20 s (and loading libtorch with its
 * CUDA libraries about 2 minutes), the pixel-format check covers RGBA8 and
 * float RGBA (every reading and writing path of 8-bit and float samples with
 * alpha and row padding) instead of all thirteen formats, and the gray and
 * linear-float checks (the same conversion code again) are skipped;
 * AddressSanitizer runs everything.
 */
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <styletransfer.h>
#include <valgrind/valgrind.h>

/* Test-only hook exported by the library but not declared in the header. */
st_status st_test_panic(st_context *ctx);

static int failures = 0;

/* libtorch threads per handle: 2, or 1 under valgrind and ThreadSanitizer. */
static uint32_t context_threads = 2;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                             \
    do {                                                                                         \
        st_status got_ = (expr);                                                                 \
        if (got_ != (expected)) {                                                                \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d\n", __FILE__, __LINE__, #expr, \
                    (int)got_, st_status_str((int)got_), (int)(expected));                       \
            failures++;                                                                          \
        }                                                                                        \
    } while (0)

#define CHECK_ERROR_MENTIONS(ctx, needle)                                                      \
    do {                                                                                       \
        const char *msg_ = st_last_error(ctx);                                                 \
        if (strstr(msg_, (needle)) == NULL) {                                                  \
            fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, msg_, \
                    (needle));                                                                 \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

enum { W = 21, H = 18, EXTRA_STRIDE = 13 };

/* A deterministic RGB8 test picture. */
static void paint_rgb8(uint8_t *rgb, int w, int h, int phase) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * (y * w + x);
            p[0] = (uint8_t)((x * 11 + y * 3 + phase * 40) % 256);
            p[1] = (uint8_t)((y * 13 + phase * 70) % 256);
            p[2] = (uint8_t)(((x ^ y) * 17 + phase * 20) % 256);
        }
}

static st_image image_of(void *data, int w, int h, size_t stride, st_pixel_format format) {
    st_image image = {data, (uint32_t)w, (uint32_t)h, stride, (uint32_t)format, 0};
    return image;
}

static st_context *make_context(void) {
    st_options options;
    CHECK_STATUS(st_default_options(&options), ST_OK);
    options.device = "cpu";
    options.precision = ST_PRECISION_FP32;
    options.threads = RUNNING_ON_VALGRIND ? 1 : context_threads; /* valgrind serialises threads: spinning ones cost dearly */
    st_context *ctx = NULL;
    st_status status = st_create(&options, &ctx);
    if (status != ST_OK) {
        fprintf(stderr, "st_create failed: %s: %s\n", st_status_str((int)status), st_last_error(NULL));
        exit(1);
    }
    return ctx;
}

static void add_style(st_context *ctx, int phase) {
    uint8_t style[W * H * 3];
    paint_rgb8(style, W, H, phase);
    st_image image = image_of(style, W, H, W * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_add_style(ctx, &image, 1.0f), ST_OK);
}

static st_run_options quick_options(uint32_t iterations) {
    st_run_options options;
    st_default_run_options(&options);
    options.iterations = iterations;
    options.scales = 1;
    return options;
}

static void test_version(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", ST_VERSION_MAJOR, ST_VERSION_MINOR, ST_VERSION_PATCH);
    CHECK(strcmp(st_version(), expected) == 0);
    CHECK(strcmp(st_version(), ST_VERSION_STRING) == 0);
    CHECK(strcmp(st_status_str(ST_OK), "success") == 0);
    CHECK(strcmp(st_status_str(9999), "unknown status") == 0);
    CHECK(strcmp(st_status_str(-1), "unknown status") == 0);
}

static void test_null_arguments(st_context *ctx) {
    uint8_t pixels[W * H * 3] = {0};
    st_image image = image_of(pixels, W, H, W * 3, ST_PIXEL_RGB8);
    st_context *out = NULL;
    CHECK_STATUS(st_default_options(NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_default_run_options(NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_create(NULL, NULL), ST_NULL_ARGUMENT);
    st_destroy(NULL);
    CHECK(st_last_error(NULL) != NULL);
    CHECK_STATUS(st_set_weights(NULL, 1, 1, 1), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_set_strength(NULL, 0.5f), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_add_style(NULL, &image, 1), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_add_style(ctx, NULL, 1), ST_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "style");
    CHECK_STATUS(st_clear_styles(NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_release_memory(NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_run(NULL, &image, &image, NULL, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_run(ctx, NULL, &image, NULL, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "content");
    CHECK_STATUS(st_run(ctx, &image, NULL, NULL, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "output");
    st_image no_data = image_of(NULL, W, H, W * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_add_style(ctx, &no_data, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "data is NULL");
    CHECK_STATUS(st_test_panic(NULL), ST_NULL_ARGUMENT);
    (void)out;
}

static void test_invalid_arguments(st_context *ctx) {
    uint8_t pixels[W * H * 4] = {0};
    st_image good = image_of(pixels, W, H, W * 3, ST_PIXEL_RGB8);
    st_image bad;

    bad = good; bad.width = 0;
    CHECK_STATUS(st_add_style(ctx, &bad, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "style");
    bad = good; bad.height = 0;
    CHECK_STATUS(st_run(ctx, &bad, &good, NULL, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "content");
    bad = good; bad.stride_bytes = W * 3 - 1;
    CHECK_STATUS(st_add_style(ctx, &bad, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "stride_bytes");
    bad = good; bad.format = 77;
    CHECK_STATUS(st_add_style(ctx, &bad, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "unknown pixel format");
    bad = good; bad.flags = ST_IMAGE_LINEAR;
    CHECK_STATUS(st_add_style(ctx, &bad, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "float formats only");
    bad = good; bad.flags = 0x80;
    CHECK_STATUS(st_add_style(ctx, &bad, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "flags");

    CHECK_STATUS(st_add_style(ctx, &good, NAN), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "blend_weight");
    CHECK_STATUS(st_add_style(ctx, &good, -1.0f), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_set_weights(ctx, NAN, 1, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "content");
    CHECK_STATUS(st_set_weights(ctx, 1, -5, 1), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "style");
    CHECK_STATUS(st_set_weights(ctx, 1, 1, INFINITY), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "tv");
    CHECK_STATUS(st_set_weights(ctx, 0, 0, 0), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_set_strength(ctx, 1.5f), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "strength");
    CHECK_STATUS(st_set_strength(ctx, NAN), ST_INVALID_ARGUMENT);

    /* No style yet. */
    CHECK_STATUS(st_run(ctx, &good, &good, NULL, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "style");

    add_style(ctx, 1);
    st_run_options options = quick_options(1);
    options.size = 8; /* a size no version had */
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "run_options");
    options = quick_options(1); options.optimizer = 42;
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "optimizer");
    options = quick_options(1); options.init = 9;
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "init");
    options = quick_options(1); options.init = ST_INIT_IMAGE;
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "init_image");
    options = quick_options(1); options.preserve_color = 3;
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "preserve_color");
    options = quick_options(1); options.normalization = 5;
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "normalization");
    options = quick_options(0);
    CHECK_STATUS(st_run(ctx, &good, &good, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "iterations");
    st_image smaller = good; smaller.width = W - 1;
    CHECK_STATUS(st_run(ctx, &good, &smaller, NULL, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "output");
    uint8_t tiny[3] = {1, 2, 3};
    st_image one = image_of(tiny, 1, 1, 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_run(ctx, &one, &one, NULL, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "too small");

    st_options create_options;
    st_default_options(&create_options);
    create_options.size = 4;
    st_context *other = NULL;
    CHECK_STATUS(st_create(&create_options, &other), ST_INVALID_ARGUMENT);
    CHECK(other == NULL);
    st_default_options(&create_options);
    create_options.device = "quantum";
    CHECK_STATUS(st_create(&create_options, &other), ST_INVALID_ARGUMENT);
    st_default_options(&create_options);
    create_options.precision = 99;
    CHECK_STATUS(st_create(&create_options, &other), ST_INVALID_ARGUMENT);
    st_default_options(&create_options);
    create_options.model_path = "/nonexistent/vgg19.safetensors";
    CHECK_STATUS(st_create(&create_options, &other), ST_MODEL_ERROR);
    CHECK(other == NULL);
    /* No handle holds that message: st_last_error(NULL) gives it, until the next call without a handle. */
    CHECK(strstr(st_last_error(NULL), "/nonexistent/vgg19.safetensors") != NULL);
    CHECK_STATUS(st_create(NULL, NULL), ST_NULL_ARGUMENT);
    CHECK(strstr(st_last_error(NULL), "out") != NULL);
    CHECK_STATUS(st_clear_styles(ctx), ST_OK);
    CHECK_STATUS(st_release_memory(ctx), ST_OK);
}

/* ---- pixel formats ---- */

typedef struct {
    st_pixel_format format;
    int channels, bytes, gray, alpha, bgr;
} format_info;

static const format_info FORMATS[] = {
    {ST_PIXEL_GRAY8, 1, 1, 1, 0, 0},   {ST_PIXEL_GRAYA8, 2, 1, 1, 1, 0},  {ST_PIXEL_RGB8, 3, 1, 0, 0, 0},
    {ST_PIXEL_RGBA8, 4, 1, 0, 1, 0},   {ST_PIXEL_BGRA8, 4, 1, 0, 1, 1},   {ST_PIXEL_RGB16, 3, 2, 0, 0, 0},
    {ST_PIXEL_RGBA16, 4, 2, 0, 1, 0},  {ST_PIXEL_RGBF32, 3, 4, 0, 0, 0},  {ST_PIXEL_RGBAF32, 4, 4, 0, 1, 0},
    {ST_PIXEL_GRAY16, 1, 2, 1, 0, 0},  {ST_PIXEL_GRAYA16, 2, 2, 1, 1, 0}, {ST_PIXEL_GRAYF32, 1, 4, 1, 0, 0},
    {ST_PIXEL_GRAYAF32, 2, 4, 1, 1, 0},
};

static void put(uint8_t *p, int bytes, double v01) {
    if (bytes == 1) *p = (uint8_t)lround(v01 * 255.0);
    else if (bytes == 2) { uint16_t v = (uint16_t)lround(v01 * 65535.0); memcpy(p, &v, 2); }
    else { float v = (float)v01; memcpy(p, &v, 4); }
}

static double get(const uint8_t *p, int bytes) {
    if (bytes == 1) return *p / 255.0;
    if (bytes == 2) { uint16_t v; memcpy(&v, p, 2); return v / 65535.0; }
    float v; memcpy(&v, p, 4); return v;
}

static double luma8(const uint8_t *rgb) { return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0; }

/* Fills `buffer` (stride = width·bpp + 13, padding set to 0xAB) with `rgb`
 * converted to `f`; alpha gets a pattern of its own. */
static void fill(uint8_t *buffer, size_t stride, const format_info *f, const uint8_t *rgb, int gray_source) {
    memset(buffer, 0xAB, stride * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = buffer + y * stride + (size_t)x * f->channels * f->bytes;
            const uint8_t *s = rgb + 3 * (y * W + x);
            if (f->gray) {
                put(p, f->bytes, gray_source ? s[0] / 255.0 : luma8(s));
            } else {
                int r = f->bgr ? 2 : 0, b = f->bgr ? 0 : 2;
                put(p + r * f->bytes, f->bytes, s[0] / 255.0);
                put(p + 1 * f->bytes, f->bytes, s[1] / 255.0);
                put(p + b * f->bytes, f->bytes, s[2] / 255.0);
            }
            if (f->alpha) put(p + (f->channels - 1) * f->bytes, f->bytes, ((x * 7 + y * 5) % 256) / 255.0);
        }
}

/* The plain RGB8 result of the content at phase 0 (quick_options(2)), for later tests. */
static uint8_t rgb8_reference[W * H * 3];

static void test_pixel_formats(st_context *ctx) {
    /* The reference: an RGB8 run. Gray formats are compared with a run on
     * the gray picture replicated to RGB8, whose luma they must carry. */
    uint8_t content[W * H * 3], gray_content[W * H * 3], reference[W * H * 3], gray_reference[W * H * 3];
    paint_rgb8(content, W, H, 0);
    for (int i = 0; i < W * H; i++) {
        uint8_t g = (uint8_t)lround(luma8(content + 3 * i) * 255.0);
        gray_content[3 * i] = gray_content[3 * i + 1] = gray_content[3 * i + 2] = g;
    }
    st_run_options options = quick_options(2);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8);
    st_image out = image_of(reference, W, H, W * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    if (!RUNNING_ON_VALGRIND) {
        in.data = gray_content;
        out.data = gray_reference;
        CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    }
    memcpy(rgb8_reference, reference, sizeof reference);

    for (size_t k = 0; k < sizeof FORMATS / sizeof FORMATS[0]; k++) {
        const format_info *f = &FORMATS[k];
        if (RUNNING_ON_VALGRIND && f->format != ST_PIXEL_RGBA8 && f->format != ST_PIXEL_RGBAF32) continue;
        size_t bpp = (size_t)f->channels * f->bytes, stride = W * bpp + EXTRA_STRIDE;
        uint8_t *src = malloc(stride * H), *dst = malloc(stride * H), *before = malloc(stride * H);
        fill(src, stride, f, f->gray ? gray_content : content, f->gray);
        memcpy(before, src, stride * H);
        memset(dst, 0xCD, stride * H);
        st_image a = image_of(src, W, H, stride, f->format), b = image_of(dst, W, H, stride, f->format);
        CHECK_STATUS(st_run(ctx, &a, &b, &options, NULL, NULL), ST_OK);
        CHECK(memcmp(src, before, stride * H) == 0); /* input untouched */
        double worst = 0;
        int alpha_ok = 1, padding_ok = 1;
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                const uint8_t *p = dst + y * stride + x * bpp, *s = src + y * stride + x * bpp;
                const uint8_t *r = (f->gray ? gray_reference : reference) + 3 * (y * W + x);
                if (f->gray) {
                    double d = fabs(get(p, f->bytes) - luma8(r));
                    worst = d > worst ? d : worst;
                } else {
                    int ri = f->bgr ? 2 : 0, bi = f->bgr ? 0 : 2;
                    double d0 = fabs(get(p + ri * f->bytes, f->bytes) - r[0] / 255.0);
                    double d1 = fabs(get(p + 1 * f->bytes, f->bytes) - r[1] / 255.0);
                    double d2 = fabs(get(p + bi * f->bytes, f->bytes) - r[2] / 255.0);
                    double d = fmax(d0, fmax(d1, d2));
                    worst = d > worst ? d : worst;
                }
                if (f->alpha && memcmp(p + (f->channels - 1) * f->bytes, s + (f->channels - 1) * f->bytes, f->bytes) != 0)
                    alpha_ok = 0;
            }
            for (int i = 0; i < EXTRA_STRIDE; i++)
                if (dst[y * stride + W * bpp + i] != 0xCD) padding_ok = 0;
        }
        /* One 8-bit step (plus rounding of the gray reference's luma). */
        if (worst > 1.6 / 255.0) {
            fprintf(stderr, "format %d: differs from the RGB8 run by %.4f\n", (int)f->format, worst);
            failures++;
        }
        if (!alpha_ok) { fprintf(stderr, "format %d: alpha changed\n", (int)f->format); failures++; }
        if (!padding_ok) { fprintf(stderr, "format %d: wrote into row padding\n", (int)f->format); failures++; }
        free(src); free(dst); free(before);
    }
}

static void test_linear_float(st_context *ctx) {
    /* Linear float in, linear float out: equals the display-referred run
     * after converting both ways with the sRGB curve. */
    uint8_t content[W * H * 3], reference[W * H * 3];
    float linear[W * H * 3], result[W * H * 3];
    paint_rgb8(content, W, H, 0);
    for (int i = 0; i < W * H * 3; i++) {
        double v = content[i] / 255.0;
        linear[i] = (float)(v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4));
    }
    st_run_options options = quick_options(2);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8), out = image_of(reference, W, H, W * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    st_image lin_in = image_of(linear, W, H, W * 12, ST_PIXEL_RGBF32), lin_out = image_of(result, W, H, W * 12, ST_PIXEL_RGBF32);
    lin_in.flags = lin_out.flags = ST_IMAGE_LINEAR;
    CHECK_STATUS(st_run(ctx, &lin_in, &lin_out, &options, NULL, NULL), ST_OK);
    double worst = 0;
    for (int i = 0; i < W * H * 3; i++) {
        double v = result[i];
        double display = v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1 / 2.4) - 0.055;
        double d = fabs(display - reference[i] / 255.0);
        worst = d > worst ? d : worst;
    }
    CHECK(worst <= 1.6 / 255.0);
}

/* Whether the left half of `masked` is `left` and its right half `right` (RGB8, W×H). */
static void compare_halves(const uint8_t *masked, const uint8_t *left, const uint8_t *right, int *left_ok,
                           int *right_ok) {
    *left_ok = *right_ok = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                int i = 3 * (y * W + x) + c;
                if (x < W / 2 && masked[i] != left[i]) *left_ok = 0;
                if (x >= W / 2 && masked[i] != right[i]) *right_ok = 0;
            }
}

static void test_mask(st_context *ctx) {
    uint8_t content[W * H * 3], masked[W * H * 3], mask[W * H];
    const uint8_t *full = rgb8_reference; /* the same run without a mask */
    paint_rgb8(content, W, H, 0);
    st_run_options options = quick_options(2);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8);
    st_image out;
    /* Left half 0 (keep content), right half 255 (stylised). */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) mask[y * W + x] = x < W / 2 ? 0 : 255;
    st_image m = image_of(mask, W, H, W, ST_PIXEL_GRAY8);
    options.mask = &m;
    out = image_of(masked, W, H, W * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    int left_ok, right_ok;
    compare_halves(masked, content, full, &left_ok, &right_ok);
    CHECK(left_ok);
    CHECK(right_ok);
    st_image wrong = image_of(mask, W - 1, H, W, ST_PIXEL_GRAY8);
    options.mask = &wrong;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "mask");
}

/* What hosts hand over as they have it: rows bottom-up (OpenFX), colour
 * premultiplied by alpha, a mask in the alpha channel, conversion between
 * layouts, quality presets, device names, a style path that is either a pack
 * or an image, and run options from the earlier header. */
static void test_host_layouts(st_context *ctx) {
    uint8_t content[W * H * 3], flipped[W * H * 3], out8[W * H * 3];
    paint_rgb8(content, W, H, 0);
    st_run_options options = quick_options(2);

    /* Bottom-up rows: the same run as the top-down reference, bit for bit. */
    for (int y = 0; y < H; y++) memcpy(flipped + (size_t)(H - 1 - y) * W * 3, content + (size_t)y * W * 3, W * 3);
    st_image in = image_of(flipped, W, H, W * 3, ST_PIXEL_RGB8), out = image_of(out8, W, H, W * 3, ST_PIXEL_RGB8);
    in.flags = ST_IMAGE_BOTTOM_UP;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    CHECK(memcmp(out8, rgb8_reference, sizeof out8) == 0);

    /* Premultiplied float with alpha 0.5 (exact in float): the reference's
     * colour, multiplied by alpha on the way out; alpha kept. */
    float *premultiplied = malloc(sizeof(float) * W * H * 4), *result = malloc(sizeof(float) * W * H * 4);
    for (int i = 0; i < W * H; i++) {
        for (int c = 0; c < 3; c++) premultiplied[4 * i + c] = content[3 * i + c] / 255.0f * 0.5f;
        premultiplied[4 * i + 3] = 0.5f;
    }
    st_image pin = image_of(premultiplied, W, H, W * 16, ST_PIXEL_RGBAF32);
    st_image pout = image_of(result, W, H, W * 16, ST_PIXEL_RGBAF32);
    pin.flags = pout.flags = ST_IMAGE_PREMULTIPLIED;
    CHECK_STATUS(st_run(ctx, &pin, &pout, &options, NULL, NULL), ST_OK);
    double worst = 0;
    for (int i = 0; i < W * H; i++) {
        for (int c = 0; c < 3; c++) worst = fmax(worst, fabs(result[4 * i + c] - 0.5 * rgb8_reference[3 * i + c] / 255.0));
        CHECK(result[4 * i + 3] == 0.5f);
    }
    CHECK(worst <= 0.5 / 255.0 + 1e-6);

    /* The mask in the alpha channel of an RGBA8 image whose colour says the opposite. */
    uint8_t mask[W * H * 4], masked[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *m = mask + 4 * (y * W + x);
            m[0] = m[1] = m[2] = x < W / 2 ? 255 : 0;
            m[3] = x < W / 2 ? 0 : 255;
        }
    st_image m = image_of(mask, W, H, W * 4, ST_PIXEL_RGBA8);
    m.flags = ST_IMAGE_MASK_ALPHA;
    st_run_options masked_options = options;
    masked_options.mask = &m;
    in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8);
    out = image_of(masked, W, H, W * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_run(ctx, &in, &out, &masked_options, NULL, NULL), ST_OK);
    int left_ok, right_ok;
    compare_halves(masked, content, rgb8_reference, &left_ok, &right_ok);
    CHECK(left_ok && right_ok);
    st_image gray = image_of(mask, W, H, W, ST_PIXEL_GRAY8);
    gray.flags = ST_IMAGE_MASK_ALPHA;
    masked_options.mask = &gray;
    CHECK_STATUS(st_run(ctx, &in, &out, &masked_options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "ST_IMAGE_MASK_ALPHA");
    st_image straight = image_of(content, W, H, W * 3, ST_PIXEL_RGB8);
    straight.flags = ST_IMAGE_PREMULTIPLIED;
    CHECK_STATUS(st_run(ctx, &straight, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "ST_IMAGE_PREMULTIPLIED");

    /* st_convert_image: straight RGBA8 to premultiplied bottom-up float and back. */
    uint8_t rgba[W * H * 4], back[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        memcpy(rgba + 4 * i, content + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i * 37 % 256);
    }
    st_image a = image_of(rgba, W, H, W * 4, ST_PIXEL_RGBA8), f = image_of(result, W, H, W * 16, ST_PIXEL_RGBAF32);
    f.flags = ST_IMAGE_PREMULTIPLIED | ST_IMAGE_BOTTOM_UP;
    CHECK_STATUS(st_convert_image(&a, &f), ST_OK);
    worst = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *s = rgba + 4 * (y * W + x);
            const float *d = result + 4 * ((H - 1 - y) * W + x);
            for (int c = 0; c < 3; c++) worst = fmax(worst, fabs(d[c] - s[c] / 255.0 * (s[3] / 255.0)));
            worst = fmax(worst, fabs(d[3] - s[3] / 255.0));
        }
    CHECK(worst < 1e-6);
    st_image b = image_of(back, W, H, W * 4, ST_PIXEL_RGBA8);
    CHECK_STATUS(st_convert_image(&f, &b), ST_OK);
    int round_trip = 1;
    for (int i = 0; i < W * H * 4; i++)
        if (back[i] != rgba[i] && !(i % 4 != 3 && rgba[4 * (i / 4) + 3] == 0 && back[i] == 0)) round_trip = 0;
    CHECK(round_trip); /* where alpha is 0, premultiplied colour is 0 */
    st_image small = image_of(back, W - 1, H, W * 4, ST_PIXEL_RGBA8);
    CHECK_STATUS(st_convert_image(&a, &small), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_convert_image(NULL, &b), ST_NULL_ARGUMENT);
    free(premultiplied);
    free(result);

    /* Quality presets: the finest level's long side, capped by the content. */
    st_memory_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.size = sizeof plan;
    st_run_options preset;
    st_default_run_options(&preset);
    CHECK(preset.quality == ST_QUALITY_CUSTOM && preset.render_scale == 1.0f);
    preset.quality = ST_QUALITY_PREVIEW;
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &preset, &plan), ST_OK);
    CHECK(plan.tile_size == 256);
    preset.render_scale = 0.5f;
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &preset, &plan), ST_OK);
    CHECK(plan.tile_size == 128);
    preset.quality = ST_QUALITY_HIGH;
    preset.render_scale = 1.0f;
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &preset, &plan), ST_OK);
    CHECK(plan.tile_size == 600);
    preset.working_size = 300;
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &preset, &plan), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "quality");
    preset.working_size = 0;
    preset.quality = 9;
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &preset, &plan), ST_INVALID_ARGUMENT);
    preset.quality = ST_QUALITY_NORMAL;
    preset.render_scale = -1.0f;
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &preset, &plan), ST_INVALID_ARGUMENT);

    /* A caller built against the 0.1 header: its smaller struct, defaults for the rest. */
    st_run_options earlier;
    st_default_run_options(&earlier);
    earlier.size = offsetof(st_run_options, quality);
    earlier.quality = ST_QUALITY_PREVIEW; /* beyond its size: never read */
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &earlier, &plan), ST_OK);
    CHECK(plan.tile_size == 512);
    earlier.size = offsetof(st_run_options, quality) + 4; /* no version had this size */
    CHECK_STATUS(st_plan_memory(ctx, 600, 400, &earlier, &plan), ST_INVALID_ARGUMENT);

    /* Device names for host menus. */
    CHECK(strcmp(st_device_name(ST_DEVICE_AUTO), "auto") == 0);
    CHECK(strcmp(st_device_name(ST_DEVICE_CPU), "cpu") == 0);
    CHECK(strcmp(st_device_name(ST_DEVICE_GPU), "cuda") == 0);
    CHECK(st_device_name(3) == NULL);

    /* A style path: pack by name, pack by contents, image, nothing. */
    st_style_list *list = NULL;
    CHECK_STATUS(st_list_styles(&list), ST_OK);
    const char *pack = list && list->count ? list->entries[0].path : NULL;
    CHECK(pack != NULL);
    if (pack) {
        CHECK_STATUS(st_clear_styles(ctx), ST_OK);
        CHECK_STATUS(st_add_style_path(ctx, pack, 1.0f), ST_OK);
        FILE *from = fopen(pack, "rb"), *to = fopen("build/c/pack-without-extension", "wb");
        CHECK(from && to);
        int byte;
        while (from && to && (byte = fgetc(from)) != EOF) fputc(byte, to);
        if (from) fclose(from);
        if (to) fclose(to);
        CHECK_STATUS(st_add_style_path(ctx, "build/c/pack-without-extension", 1.0f), ST_OK);
        /* One flipped bit near the end (in a Gram matrix): refused, not wrong targets. */
        FILE *copy = fopen("build/c/pack-without-extension", "rb"), *bad = fopen("build/c/corrupt.stpack", "wb");
        CHECK(copy && bad);
        long at = 0, size = 0;
        if (copy) {
            fseek(copy, 0, SEEK_END);
            size = ftell(copy);
            rewind(copy);
        }
        while (copy && bad && (byte = fgetc(copy)) != EOF) fputc(at++ == size - 64 ? byte ^ 4 : byte, bad);
        if (copy) fclose(copy);
        if (bad) fclose(bad);
        CHECK_STATUS(st_add_style_pack(ctx, "build/c/corrupt.stpack", 1.0f), ST_PACK_ERROR);
        CHECK_ERROR_MENTIONS(ctx, "data_sha256");
    }
    st_style_list_free(list);
    CHECK_STATUS(st_add_style_path(ctx, "examples/images/swirls.jpg", 1.0f), ST_OK);
    CHECK_STATUS(st_add_style_path(ctx, "/nonexistent/style.png", 1.0f), ST_IMAGE_ERROR);
    CHECK_STATUS(st_add_style_path(ctx, "/nonexistent/style.stpack", 1.0f), ST_PACK_ERROR);
    CHECK_STATUS(st_add_style_path(ctx, NULL, 1.0f), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_add_style_path(ctx, "examples/images/swirls.jpg", -1.0f), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_clear_styles(ctx), ST_OK);
    add_style(ctx, 1);
}

typedef struct {
    st_context *ctx;
    int calls;
    int cancel_at;
    int change_at;
    st_status busy_status;
} callback_state;

static int on_progress(void *user_data, const st_progress *p) {
    callback_state *state = user_data;
    state->calls++;
    if (p->evaluation == 0 || p->total_evaluations == 0 || !isfinite(p->loss)) failures++;
    if (state->change_at && (int)p->evaluation == state->change_at) {
        if (st_set_weights(state->ctx, 1.0f, 500.0f, 0.0f) != ST_OK) failures++;
        uint8_t px[W * H * 3] = {0};
        st_image image = image_of(px, W, H, W * 3, ST_PIXEL_RGB8);
        state->busy_status = st_add_style(state->ctx, &image, 1.0f);
        if (st_release_memory(state->ctx) != ST_BUSY) failures++;
    }
    return state->cancel_at && (int)p->evaluation >= state->cancel_at;
}

static void test_cancel(st_context *ctx) {
    uint8_t content[W * H * 3], output[W * H * 3];
    paint_rgb8(content, W, H, 0);
    memset(output, 0x5A, sizeof output);
    st_run_options options = quick_options(10);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8), out = image_of(output, W, H, W * 3, ST_PIXEL_RGB8);
    callback_state state = {ctx, 0, 2, 0, ST_OK};
    CHECK_STATUS(st_run(ctx, &in, &out, &options, on_progress, &state), ST_CANCELLED);
    CHECK(state.calls == 2); /* stopped within one evaluation */
    int untouched = 1;
    for (size_t i = 0; i < sizeof output; i++)
        if (output[i] != 0x5A) untouched = 0;
    CHECK(untouched);
    CHECK_ERROR_MENTIONS(ctx, "cancel");
    /* The handle works again afterwards. */
    options.iterations = 1;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
}

static void test_weights_from_callback(st_context *ctx) {
    uint8_t content[W * H * 3], plain[W * H * 3], changed[W * H * 3];
    paint_rgb8(content, W, H, 0);
    st_run_options options = quick_options(4);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8), out = image_of(plain, W, H, W * 3, ST_PIXEL_RGB8);
    callback_state state = {ctx, 0, 0, 0, ST_OK};
    CHECK_STATUS(st_run(ctx, &in, &out, &options, on_progress, &state), ST_OK);
    CHECK(state.calls == 4);
    callback_state change = {ctx, 0, 0, 1, ST_OK};
    out.data = changed;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, on_progress, &change), ST_OK);
    CHECK(change.busy_status == ST_BUSY);
    CHECK(memcmp(plain, changed, sizeof plain) != 0);
    /* Back to the defaults' ratio for later tests. */
    CHECK_STATUS(st_set_weights(ctx, 1.0f, 5.0f, 1.0f), ST_OK);
}

typedef struct {
    uint8_t output[W * H * 3];
    st_status status;
} thread_result;

static void *run_on_own_handle(void *arg) {
    thread_result *result = arg;
    st_context *ctx = make_context();
    add_style(ctx, 1);
    uint8_t content[W * H * 3];
    paint_rgb8(content, W, H, 0);
    st_run_options options = quick_options(2);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8), out = image_of(result->output, W, H, W * 3, ST_PIXEL_RGB8);
    result->status = st_run(ctx, &in, &out, &options, NULL, NULL);
    st_destroy(ctx);
    return NULL;
}

static void test_two_threads(void) {
    pthread_t threads[2];
    thread_result results[2];
    memset(results, 0, sizeof results);
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&threads[i], NULL, run_on_own_handle, &results[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    CHECK_STATUS(results[0].status, ST_OK);
    CHECK_STATUS(results[1].status, ST_OK);
    CHECK(memcmp(results[0].output, results[1].output, sizeof results[0].output) == 0);
}

/* The installed sample packs: listed, described, loadable; bad packs refused. */
static void test_style_packs(st_context *ctx) {
    st_style_list *list = NULL;
    CHECK_STATUS(st_list_styles(NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_list_styles(&list), ST_OK);
    CHECK(list != NULL && list->count >= 3);
    const char *swirls = NULL;
    for (size_t i = 0; list && i < list->count; i++) {
        const st_style_entry *e = &list->entries[i];
        CHECK(e->thumbnail_size > 8 && memcmp(e->thumbnail_png, "\x89PNG", 4) == 0);
        if (strcmp(e->name, "Swirls") == 0) swirls = e->path;
    }
    CHECK(swirls != NULL);
    if (swirls) {
        st_pack_info *info = NULL;
        CHECK_STATUS(st_read_pack_info(swirls, &info), ST_OK);
        CHECK(info && strcmp(info->name, "Swirls") == 0 && info->format_version == 1 && info->side_count > 0);
        CHECK(info && info->source_count == 1 && info->thumbnail_size <= 65536);
        st_pack_info_free(info);
        CHECK_STATUS(st_clear_styles(ctx), ST_OK);
        CHECK_STATUS(st_add_style_pack(ctx, swirls, 1.0f), ST_OK);
        CHECK_STATUS(st_add_style_pack(ctx, swirls, -1.0f), ST_INVALID_ARGUMENT);
    }
    if (swirls) CHECK_STATUS(st_add_style_named(ctx, swirls, 1.0f), ST_OK); /* a path: a file wins */
    st_style_list_free(list);
    st_style_list_free(NULL);
    st_pack_info_free(NULL);
    /* By name: a file, else an installed pack's name in any case. */
    CHECK_STATUS(st_clear_styles(ctx), ST_OK);
    CHECK_STATUS(st_add_style_named(ctx, "sWIRLS", 1.0f), ST_OK);
    CHECK_STATUS(st_add_style_named(ctx, "No Such Style", 1.0f), ST_PACK_ERROR);
    CHECK_ERROR_MENTIONS(ctx, "neither a file nor the name of an installed style pack");
    CHECK_STATUS(st_add_style_named(ctx, "Swirls", -1.0f), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_add_style_named(ctx, NULL, 1.0f), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_add_style_named(NULL, "Swirls", 1.0f), ST_NULL_ARGUMENT); /* "sWIRLS" stays loaded */
    CHECK_STATUS(st_add_style_pack(ctx, NULL, 1.0f), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_add_style_pack(NULL, "x.stpack", 1.0f), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_add_style_pack(ctx, "/nonexistent/none.stpack", 1.0f), ST_PACK_ERROR);
    CHECK_ERROR_MENTIONS(ctx, "cannot read");
    st_pack_info *info = NULL;
    CHECK_STATUS(st_read_pack_info("/nonexistent/none.stpack", &info), ST_PACK_ERROR);
    CHECK(info == NULL);
    CHECK_STATUS(st_read_pack_info(NULL, &info), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_create_style_pack(ctx, "x", "/tmp/x.stpack"), ST_INVALID_ARGUMENT); /* a pack is loaded */
    CHECK_ERROR_MENTIONS(ctx, "re-packed");
    CHECK_STATUS(st_create_style_pack(ctx, NULL, "/tmp/x.stpack"), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_clear_styles(ctx), ST_OK);
    add_style(ctx, 1);
}

/* ---- limits and edge cases the header states ---- */

/* An st_run_options inside a larger struct, as a caller built against a
 * newer header passes it: the unknown tail follows the known fields. */
typedef struct {
    st_run_options known;
    uint64_t newer[4];
} newer_run_options;

typedef struct {
    st_options known;
    uint64_t newer[2];
} newer_options;

typedef struct {
    st_memory_plan known;
    uint64_t newer[3];
} newer_memory_plan;

/* st_add_style_file on a temporary file holding `bytes`. */
static st_status add_style_bytes(st_context *ctx, const char *name, const void *bytes, size_t length) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/st-capi-%d-%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return ST_IO_ERROR;
    CHECK(fwrite(bytes, 1, length, f) == length);
    fclose(f);
    st_status status = st_add_style_file(ctx, path, 1.0f);
    unlink(path);
    return status;
}

static void test_documented_limits(st_context *ctx) {
    uint8_t content[W * H * 3], out8[W * H * 3];
    paint_rgb8(content, W, H, 0);
    st_image in = image_of(content, W, H, W * 3, ST_PIXEL_RGB8), out = image_of(out8, W, H, W * 3, ST_PIXEL_RGB8);
    st_run_options options;
    st_memory_plan plan;

    /* Under 16 px on a side: refused, unless working_size scales it up. */
    uint8_t small[12 * 10 * 3], small_out[12 * 10 * 3];
    paint_rgb8(small, 12, 10, 2);
    st_image tiny_in = image_of(small, 12, 10, 12 * 3, ST_PIXEL_RGB8), tiny_out = image_of(small_out, 12, 10, 12 * 3, ST_PIXEL_RGB8);
    options = quick_options(1);
    CHECK_STATUS(st_run(ctx, &tiny_in, &tiny_out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "too small");
    st_image strip = image_of(content, W, 12, W * 3, ST_PIXEL_RGB8); /* 21×12: the short side is too small */
    CHECK_STATUS(st_run(ctx, &strip, &strip, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "too small");
    options.working_size = 32; /* 32×27 */
    memset(small_out, 0, sizeof small_out);
    CHECK_STATUS(st_run(ctx, &tiny_in, &tiny_out, &options, NULL, NULL), ST_OK);
    int written = 0;
    for (size_t i = 0; i < sizeof small_out; i++) written |= small_out[i];
    CHECK(written);

    /* Tiles: at least overlap + 32. */
    options = quick_options(1);
    options.working_size = 96;
    options.tile_overlap = 16;
    options.tile_size = 47;
    plan.size = sizeof plan;
    CHECK_STATUS(st_plan_memory(ctx, 96, 96, &options, &plan), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "tile_size");
    CHECK_ERROR_MENTIONS(ctx, "at least 48");
    options.tile_size = 48;
    CHECK_STATUS(st_plan_memory(ctx, 96, 96, &options, &plan), ST_OK);
    CHECK(plan.tiles >= 4 && plan.tile_size <= 48);

    /* Impossible sizes are invalid arguments, not memory errors. */
    options = quick_options(1);
    options.working_size = 100000;
    CHECK_STATUS(st_plan_memory(ctx, W, H, &options, &plan), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "working_size");
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "working_size");
    options.working_size = ST_MAX_SIDE + 1;
    CHECK_STATUS(st_plan_memory(ctx, W, H, &options, &plan), ST_INVALID_ARGUMENT);
    options = quick_options(1);
    CHECK_STATUS(st_plan_memory(ctx, 0xFFFFFFFFu, 0xFFFFFFFFu, &options, &plan), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "65536");
    CHECK_STATUS(st_plan_memory(ctx, 0, 64, &options, &plan), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_plan_memory(ctx, ST_MAX_SIDE + 1, 64, &options, &plan), ST_INVALID_ARGUMENT);
    CHECK_STATUS(st_plan_memory(ctx, ST_MAX_SIDE, ST_MAX_SIDE, &options, &plan), ST_OK); /* worked on at 512² */
    CHECK(plan.levels >= 1 && plan.tile_size == 512);
    st_image wide = image_of(content, ST_MAX_SIDE + 1, 1, (size_t)(ST_MAX_SIDE + 1) * 3, ST_PIXEL_RGB8);
    CHECK_STATUS(st_add_style(ctx, &wide, 1.0f), ST_INVALID_ARGUMENT); /* refused before any pixel is read */
    CHECK_ERROR_MENTIONS(ctx, "at most 65536");

    /* NaN and infinity in float inputs are refused; mask values are clamped. */
    float rgbaf[W * H * 4], maskf[W * H];
    for (int i = 0; i < W * H; i++) {
        for (int c = 0; c < 3; c++) rgbaf[4 * i + c] = content[3 * i + c] / 255.0f;
        rgbaf[4 * i + 3] = 1.0f;
    }
    st_image fin = image_of(rgbaf, W, H, W * 16, ST_PIXEL_RGBAF32);
    options = quick_options(2);
    rgbaf[4 * 7 + 1] = NAN;
    CHECK_STATUS(st_run(ctx, &fin, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "NaN");
    CHECK_STATUS(st_add_style(ctx, &fin, 1.0f), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "style");
    rgbaf[4 * 7 + 1] = 0.5f;
    rgbaf[4 * 9 + 3] = INFINITY; /* alpha */
    CHECK_STATUS(st_run(ctx, &fin, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "content");
    options.init = ST_INIT_IMAGE;
    options.init_image = &fin;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "init_image");
    rgbaf[4 * 9 + 3] = 1.0f;
    float linear[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) linear[i] = 0.25f;
    linear[5] = NAN; /* read as linear light: refused, not taken for 0 */
    st_image linear_in = image_of(linear, W, H, W * 12, ST_PIXEL_RGBF32);
    linear_in.flags = ST_IMAGE_LINEAR;
    CHECK_STATUS(st_run(ctx, &linear_in, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "NaN");
    linear[5] = -INFINITY;
    CHECK_STATUS(st_add_style(ctx, &linear_in, 1.0f), ST_INVALID_ARGUMENT);

    st_image mask = image_of(maskf, W, H, W * 4, ST_PIXEL_GRAYF32);
    options = quick_options(2);
    options.mask = &mask;
    for (int i = 0; i < W * H; i++) maskf[i] = 1.0f;
    maskf[W + 3] = NAN;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "mask");
    for (int i = 0; i < W * H; i++) maskf[i] = 2.5f; /* acts as 1: the unmasked run */
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    CHECK(memcmp(out8, rgb8_reference, sizeof out8) == 0);
    for (int i = 0; i < W * H; i++) maskf[i] = -0.5f; /* acts as 0: the content */
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    CHECK(memcmp(out8, content, sizeof out8) == 0);

    /* ST_IMAGE_LINEAR on an integer format. */
    uint16_t rgb16[W * H * 3] = {0};
    st_image linear16 = image_of(rgb16, W, H, W * 6, ST_PIXEL_RGB16);
    linear16.flags = ST_IMAGE_LINEAR;
    CHECK_STATUS(st_run(ctx, &linear16, &out, NULL, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "float formats only");

    /* An init image of another size and aspect is resampled, and used. */
    enum { IW = 40, IH = 7 };
    uint8_t init_pixels[IW * IH * 3], from_init[W * H * 3];
    for (int i = 0; i < IW * IH * 3; i++) init_pixels[i] = (uint8_t)(i % 3 == 0 ? 250 : 5);
    st_image init = image_of(init_pixels, IW, IH, IW * 3, ST_PIXEL_RGB8);
    options = quick_options(2);
    options.init = ST_INIT_IMAGE;
    options.init_image = &init;
    out.data = from_init;
    CHECK_STATUS(st_run(ctx, &in, &out, &options, NULL, NULL), ST_OK);
    double difference = 0;
    for (int i = 0; i < W * H * 3; i++) difference += abs((int)from_init[i] - (int)rgb8_reference[i]);
    CHECK(difference / (W * H * 3) > 20.0); /* starts red, not from the content */
    out.data = out8;

    /* Struct sizes from a newer header: a zero tail is accepted, a set one refused. */
    newer_run_options newer;
    memset(&newer, 0, sizeof newer);
    st_default_run_options(&newer.known);
    newer.known.iterations = 2;
    newer.known.scales = 1;
    newer.known.size = sizeof newer;
    CHECK_STATUS(st_run(ctx, &in, &out, &newer.known, NULL, NULL), ST_OK);
    CHECK(memcmp(out8, rgb8_reference, sizeof out8) == 0);
    newer.newer[2] = 1;
    CHECK_STATUS(st_run(ctx, &in, &out, &newer.known, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "newer header");
    CHECK_ERROR_MENTIONS(ctx, ST_VERSION_STRING);
    newer.known.size = 1 << 20; /* taken for garbage, not read */
    CHECK_STATUS(st_run(ctx, &in, &out, &newer.known, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "run_options");
    newer.known.size = sizeof(st_run_options) - 4;
    CHECK_STATUS(st_run(ctx, &in, &out, &newer.known, NULL, NULL), ST_INVALID_ARGUMENT);

    newer_memory_plan newer_plan;
    memset(&newer_plan, 0xAB, sizeof newer_plan);
    newer_plan.known.size = sizeof newer_plan;
    options = quick_options(1);
    CHECK_STATUS(st_plan_memory(ctx, W, H, &options, &newer_plan.known), ST_OK);
    CHECK(newer_plan.known.size == sizeof newer_plan);
    CHECK(newer_plan.known.levels == 1);
    const uint8_t *tail = (const uint8_t *)newer_plan.newer; /* left as the caller set it */
    int tail_kept = 1;
    for (size_t i = 0; i < sizeof newer_plan.newer; i++) tail_kept &= tail[i] == 0xAB;
    CHECK(tail_kept);
    newer_plan.known.size = sizeof(st_memory_plan) - 8;
    CHECK_STATUS(st_plan_memory(ctx, W, H, &options, &newer_plan.known), ST_INVALID_ARGUMENT);
    newer_plan.known.size = sizeof(st_memory_plan) + 4; /* not a struct's size: garbage */
    CHECK_STATUS(st_plan_memory(ctx, W, H, &options, &newer_plan.known), ST_INVALID_ARGUMENT);

    newer_options create_newer;
    memset(&create_newer, 0, sizeof create_newer);
    st_default_options(&create_newer.known);
    create_newer.known.size = sizeof create_newer;
    create_newer.known.device = "cpu";
    create_newer.newer[1] = 7;
    st_context *sentinel = (st_context *)&create_newer; /* never a handle: *out is left alone on failure */
    st_context *other = sentinel;
    CHECK_STATUS(st_create(&create_newer.known, &other), ST_INVALID_ARGUMENT);
    CHECK(other == sentinel);
    other = NULL;
    if (!RUNNING_ON_VALGRIND) { /* a second model load; AddressSanitizer covers it */
        create_newer.newer[1] = 0;
        CHECK_STATUS(st_create(&create_newer.known, &other), ST_OK);
        CHECK(other != NULL);
        st_destroy(other);
        other = NULL;
    }

    /* Device names are lower case only. */
    st_options create_options;
    st_default_options(&create_options);
    create_options.device = "CPU";
    CHECK_STATUS(st_create(&create_options, &other), ST_INVALID_ARGUMENT);
    create_options.device = "Cuda";
    CHECK_STATUS(st_create(&create_options, &other), ST_INVALID_ARGUMENT);
    if (other) st_destroy(other);
    other = NULL;

    /* Image files: beyond the pixel limit, beyond the side limit, truncated. */
    const char *over_pixels = "P6\n16384 8193\n255\n"; /* 2^27 + 16384 pixels; no data needed to refuse it */
    CHECK_STATUS(add_style_bytes(ctx, "pixels.ppm", over_pixels, strlen(over_pixels)), ST_IMAGE_ERROR);
    CHECK_ERROR_MENTIONS(ctx, "134217728 pixels");
    const char *over_side = "P6\n70000 1\n255\n";
    CHECK_STATUS(add_style_bytes(ctx, "side.ppm", over_side, strlen(over_side)), ST_IMAGE_ERROR);
    CHECK_ERROR_MENTIONS(ctx, "exceeds limit"); /* the decoder's side limit, not the missing data */
    const char *truncated = "P6\n4 4\n255\n\x01\x02\x03";
    CHECK_STATUS(add_style_bytes(ctx, "short.ppm", truncated, strlen(truncated)), ST_IMAGE_ERROR);
    char header[32];
    int n = snprintf(header, sizeof header, "P6\n%d %d\n255\n", W, H);
    uint8_t ppm[64 + W * H * 3];
    memcpy(ppm, header, (size_t)n);
    memcpy(ppm + n, content, sizeof content);
    CHECK_STATUS(st_clear_styles(ctx), ST_OK);
    CHECK_STATUS(add_style_bytes(ctx, "good.ppm", ppm, (size_t)n + sizeof content), ST_OK);
    CHECK_STATUS(st_clear_styles(ctx), ST_OK);
    add_style(ctx, 1);
}

static void test_panic_boundary(st_context *ctx) {
    CHECK_STATUS(st_test_panic(ctx), ST_PANIC);
    CHECK_ERROR_MENTIONS(ctx, "panic");
    /* Still usable. */
    CHECK_STATUS(st_set_strength(ctx, 0.5f), ST_OK);
}

/* The largest temporal term a progress callback saw. */
static int note_temporal(void *user_data, const st_progress *p) {
    double *largest = user_data;
    if (p->temporal_loss > *largest) *largest = p->temporal_loss;
    return 0;
}

/* st_run_frame: a two-frame pan; statuses for what a caller can get wrong. */
static void test_frames(st_context *ctx) {
    enum { FW = 40, FH = 30, BIG = 48 };
    static uint8_t scene[BIG * BIG * 3], a[FW * FH * 3], b[FW * FH * 3], out_a[FW * FH * 3], out_b[FW * FH * 3];
    static uint8_t small[20 * 15 * 3];
    paint_rgb8(scene, BIG, BIG, 2);
    for (int y = 0; y < FH; y++) { /* frame b is frame a's window moved by (2, 1) */
        memcpy(a + 3 * y * FW, scene + 3 * ((y + 4) * BIG + 4), 3 * FW);
        memcpy(b + 3 * y * FW, scene + 3 * ((y + 5) * BIG + 6), 3 * FW);
    }
    st_image ia = image_of(a, FW, FH, FW * 3, ST_PIXEL_RGB8), ib = image_of(b, FW, FH, FW * 3, ST_PIXEL_RGB8);
    st_image oa = image_of(out_a, FW, FH, FW * 3, ST_PIXEL_RGB8), ob = image_of(out_b, FW, FH, FW * 3, ST_PIXEL_RGB8);
    st_image is = image_of(small, 20, 15, 20 * 3, ST_PIXEL_RGB8);
    st_run_options run = quick_options(3);
    st_frame frame;
    CHECK_STATUS(st_default_frame(NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_default_frame(&frame), ST_OK);
    CHECK(frame.size == sizeof frame && frame.temporal == ST_TEMPORAL_FLOW && frame.temporal_weight > 0);
    CHECK_STATUS(st_run_frame(NULL, &ia, &oa, &run, &frame, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_run_frame(ctx, &ia, &oa, &run, NULL, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "frame");
    /* A first frame: no previous images. */
    CHECK_STATUS(st_run_frame(ctx, &ia, &oa, &run, &frame, NULL, NULL), ST_OK);
    frame.previous_content = &ia;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "previous_output");
    frame.previous_content = NULL;
    frame.previous_output = &oa;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_NULL_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "previous_content");
    frame.previous_content = &is;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "previous_content");
    frame.previous_content = &ia;
    frame.previous_output = &is;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "previous_output");
    frame.previous_output = &oa;
    frame.temporal = 7;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "temporal");
    frame.temporal = ST_TEMPORAL_FLOW;
    frame.temporal_weight = NAN;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "temporal_weight");
    frame.temporal_weight = -1;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_INVALID_ARGUMENT);
    st_default_frame(&frame);
    frame.previous_content = &ia;
    frame.previous_output = &oa;
    frame.size = 12;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "frame");
    frame.size = sizeof frame;
    /* A flow frame: the temporal term is computed (and reported). */
    double largest = 0;
    frame.iterations = 2;
    st_status ran = st_run_frame(ctx, &ib, &ob, &run, &frame, note_temporal, &largest);
    if (ran != ST_OK) fprintf(stderr, "st_run_frame: %s\n", st_last_error(ctx));
    CHECK(ran == ST_OK);
    CHECK(largest > 0);
    /* Off: an independent frame, no temporal term. */
    largest = 0;
    frame.temporal = ST_TEMPORAL_OFF;
    CHECK_STATUS(st_run_frame(ctx, &ib, &ob, &run, &frame, note_temporal, &largest), ST_OK);
    CHECK(largest == 0);
}

/* Counts progress calls; cancels at the `cancel_at`-th (0: never). */
typedef struct {
    int calls, cancel_at;
} PassCount;

static int count_passes(void *user_data, const st_progress *p) {
    PassCount *count = user_data;
    CHECK(p->iteration <= p->iterations && p->loss == 0.0);
    return ++count->calls == count->cancel_at;
}

/* Networks: build/c/net.stnet is made by `stylize train` before this runs
 * (make test-c). */
static void test_networks(st_context *ctx) {
    const char *path = "build/c/net.stnet";
    st_network_info *info = NULL;
    CHECK_STATUS(st_read_network_info(NULL, &info), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_read_network_info(path, NULL), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_read_network_info("/nonexistent/none.stnet", &info), ST_NETWORK_ERROR);
    CHECK(info == NULL);
    CHECK_STATUS(st_read_network_info(path, &info), ST_OK);
    CHECK(info && strcmp(info->name, "c-test") == 0 && info->width == 4 && info->residual_blocks == 1);
    CHECK(info && info->steps == 2 && info->training_size == 32 && strlen(info->model_sha256) == 64);
    st_network_info_free(info);
    st_network_info_free(NULL);

    enum { NW = 37, NH = 23 };
    static uint8_t content[NW * NH * 4], out[NW * NH * 4], tiled[NW * NH * 4];
    for (int i = 0; i < NW * NH; i++) {
        content[4 * i] = (uint8_t)(i * 7), content[4 * i + 1] = (uint8_t)(i * 3), content[4 * i + 2] = (uint8_t)(i / 5);
        content[4 * i + 3] = (uint8_t)(i % 256);
    }
    st_image in = image_of(content, NW, NH, NW * 4, ST_PIXEL_RGBA8);
    st_image o = image_of(out, NW, NH, NW * 4, ST_PIXEL_RGBA8), t = image_of(tiled, NW, NH, NW * 4, ST_PIXEL_RGBA8);
    st_run_options run;
    st_default_run_options(&run);
    CHECK(run.engine == ST_ENGINE_OPTIMIZE);
    run.engine = ST_ENGINE_NETWORK;
    CHECK_STATUS(st_load_network(NULL, path), ST_NULL_ARGUMENT);
    CHECK_STATUS(st_run(ctx, &in, &o, &run, NULL, NULL), ST_NETWORK_ERROR);
    CHECK_ERROR_MENTIONS(ctx, "st_load_network");
    CHECK_STATUS(st_load_network(ctx, "/nonexistent/none.stnet"), ST_NETWORK_ERROR);
    CHECK_ERROR_MENTIONS(ctx, "none.stnet");
    CHECK_STATUS(st_load_network(ctx, path), ST_OK);
    CHECK_STATUS(st_run(ctx, &in, &o, &run, NULL, NULL), ST_OK);
    int alpha_kept = 1;
    for (int i = 0; i < NW * NH; i++) alpha_kept &= out[4 * i + 3] == content[4 * i + 3];
    CHECK(alpha_kept);
    /* Tiles: a progress call per pass, the same picture, and cancel. */
    run.tile_size = 16;
    PassCount count = {0, 0};
    CHECK_STATUS(st_run(ctx, &in, &t, &run, count_passes, &count), ST_OK);
    CHECK(count.calls > 1);
    int worst = 0;
    for (int i = 0; i < NW * NH * 4; i++) {
        int d = abs((int)out[i] - (int)tiled[i]);
        if (d > worst) worst = d;
    }
    CHECK(worst <= 1);
    PassCount cancel = {0, 2};
    CHECK_STATUS(st_run(ctx, &in, &t, &run, count_passes, &cancel), ST_CANCELLED);
    run.engine = 9;
    CHECK_STATUS(st_run(ctx, &in, &o, &run, NULL, NULL), ST_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS(ctx, "engine");
    CHECK_STATUS(st_load_network(ctx, NULL), ST_OK);
    run.engine = ST_ENGINE_NETWORK;
    CHECK_STATUS(st_run(ctx, &in, &o, &run, NULL, NULL), ST_NETWORK_ERROR);
    CHECK(strcmp(st_status_str(ST_NETWORK_ERROR), "network file error") == 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--threads-only") == 0) {
        /* Under ThreadSanitizer: two handles on two threads, libtorch on one
         * thread each, so that no OpenMP team (whose synchronisation TSAN
         * cannot see in the uninstrumented libgomp) runs inside a handle. */
        context_threads = 1;
        test_two_threads();
        if (failures) {
            fprintf(stderr, "%d check(s) failed\n", failures);
            return 1;
        }
        printf("thread checks passed\n");
        return 0;
    }
    test_version();
    st_context *ctx = make_context();
    test_null_arguments(ctx);
    test_invalid_arguments(ctx);
    add_style(ctx, 1);
    test_pixel_formats(ctx);
    if (!RUNNING_ON_VALGRIND) test_linear_float(ctx);
    test_mask(ctx);
    test_host_layouts(ctx);
    test_cancel(ctx);
    test_weights_from_callback(ctx);
    test_style_packs(ctx);
    test_frames(ctx);
    test_networks(ctx);
    test_documented_limits(ctx);
    test_panic_boundary(ctx);
    st_destroy(ctx);
    test_two_threads();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all C API checks passed\n");
    return 0;
}
