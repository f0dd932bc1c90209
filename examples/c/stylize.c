/*
 * stylize.c: a complete C program using the styletransfer library.
 *
 *   cc -O2 -o stylize-c examples/c/stylize.c $(pkg-config --cflags --libs styletransfer libpng)
 *   ./stylize-c content.png style.png out.png [--size N] [--iterations N] [--strength S]
 *               [--device auto|cpu|cuda] [--seed N] [--preserve-color]
 *
 * Reads and writes PNG (any PNG; processed as 8-bit RGBA, alpha kept) and
 * binary PPM (P6, 8-bit), chosen by the file extension.
 */
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <styletransfer.h>

typedef struct {
    uint8_t *pixels; /* RGBA8, tightly packed */
    uint32_t width, height;
} picture;

static int has_extension(const char *path, const char *ext) {
    size_t n = strlen(path), m = strlen(ext);
    return n >= m && strcasecmp(path + n - m, ext) == 0;
}

static int read_ppm(const char *path, picture *out) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "%s: %s\n", path, strerror(errno)); return 0; }
    unsigned w = 0, h = 0, maxval = 0;
    int ok = fscanf(f, "P6 %u %u %u", &w, &h, &maxval) == 3 && fgetc(f) != EOF && maxval == 255 && w && h;
    uint8_t *rgb = ok ? malloc((size_t)w * h * 3) : NULL;
    ok = ok && rgb && fread(rgb, 3, (size_t)w * h, f) == (size_t)w * h;
    fclose(f);
    if (!ok) { fprintf(stderr, "%s: not an 8-bit binary PPM (P6)\n", path); free(rgb); return 0; }
    out->pixels = malloc((size_t)w * h * 4);
    if (!out->pixels) { free(rgb); return 0; }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        memcpy(out->pixels + 4 * i, rgb + 3 * i, 3);
        out->pixels[4 * i + 3] = 255;
    }
    free(rgb);
    out->width = w;
    out->height = h;
    return 1;
}

static int write_ppm(const char *path, const picture *p) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "%s: %s\n", path, strerror(errno)); return 0; }
    fprintf(f, "P6\n%u %u\n255\n", p->width, p->height);
    for (size_t i = 0; i < (size_t)p->width * p->height; i++) fwrite(p->pixels + 4 * i, 1, 3, f);
    return fclose(f) == 0;
}

static int read_png(const char *path, picture *out) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path)) {
        fprintf(stderr, "%s: %s\n", path, image.message);
        return 0;
    }
    image.format = PNG_FORMAT_RGBA;
    out->pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!out->pixels || !png_image_finish_read(&image, NULL, out->pixels, 0, NULL)) {
        fprintf(stderr, "%s: %s\n", path, image.message);
        free(out->pixels);
        png_image_free(&image);
        return 0;
    }
    out->width = image.width;
    out->height = image.height;
    return 1;
}

static int write_png(const char *path, const picture *p) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = p->width;
    image.height = p->height;
    image.format = PNG_FORMAT_RGBA;
    if (!png_image_write_to_file(&image, path, 0, p->pixels, 0, NULL)) {
        fprintf(stderr, "%s: %s\n", path, image.message);
        return 0;
    }
    return 1;
}

static int read_picture(const char *path, picture *out) {
    return has_extension(path, ".ppm") ? read_ppm(path, out) : read_png(path, out);
}

static int write_picture(const char *path, const picture *p) {
    return has_extension(path, ".ppm") ? write_ppm(path, p) : write_png(path, p);
}

static int show_progress(void *user_data, const st_progress *p) {
    (void)user_data;
    fprintf(stderr, "\rlevel %u/%u  %3u%%  loss %.4g   ", p->scale_index + 1, p->scales,
            100u * p->evaluation / (p->total_evaluations ? p->total_evaluations : 1), p->loss);
    return 0; /* non-zero would cancel */
}

static st_image as_image(picture *p) {
    st_image image = {p->pixels, p->width, p->height, (size_t)p->width * 4, ST_PIXEL_RGBA8, 0};
    return image;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONTENT STYLE OUTPUT [--size N] [--iterations N] [--strength S] "
                        "[--device D] [--seed N] [--preserve-color]\n", argv[0]);
        return 2;
    }
    st_options options;
    st_run_options run;
    st_default_options(&options);
    st_default_run_options(&run);
    float strength = -1.0f;
    for (int i = 4; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--size") && next) run.working_size = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--iterations") && next) run.iterations = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--strength") && next) strength = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--device") && next) options.device = argv[++i];
        else if (!strcmp(argv[i], "--seed") && next) run.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--preserve-color")) run.preserve_color = ST_PRESERVE_COLOR_LUMINANCE;
        else { fprintf(stderr, "unknown or incomplete option %s\n", argv[i]); return 2; }
    }

    int code = 1;
    st_context *ctx = NULL;
    picture content = {0}, style = {0}, result = {0};
    if (!read_picture(argv[1], &content) || !read_picture(argv[2], &style)) goto done;
    st_status status = st_create(&options, &ctx);
    if (status != ST_OK) {
        fprintf(stderr, "st_create: %s: %s\n", st_status_str((int)status), st_last_error(NULL));
        goto done;
    }
    st_image style_image = as_image(&style);
    if (st_add_style(ctx, &style_image, 1.0f) != ST_OK ||
        (strength >= 0.0f && st_set_strength(ctx, strength) != ST_OK)) {
        fprintf(stderr, "%s\n", st_last_error(ctx));
        goto done;
    }
    result.width = content.width;
    result.height = content.height;
    result.pixels = malloc((size_t)content.width * content.height * 4);
    if (!result.pixels) goto done;
    st_image in = as_image(&content), out = as_image(&result);
    status = st_run(ctx, &in, &out, &run, show_progress, NULL);
    fputc('\n', stderr);
    if (status != ST_OK) {
        fprintf(stderr, "st_run: %s: %s\n", st_status_str((int)status), st_last_error(ctx));
        goto done;
    }
    if (write_picture(argv[3], &result)) code = 0;
done:
    st_destroy(ctx); /* NULL-safe */
    free(content.pixels);
    free(style.pixels);
    free(result.pixels);
    return code;
}
