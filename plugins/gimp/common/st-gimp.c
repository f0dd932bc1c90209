/*
 * Shared part of the GIMP filter: parameters and the processing of one
 * region through the styletransfer C ABI. See st-gimp.h.
 */
#include "st-gimp.h"

#include <math.h>
#include <string.h>

void st_gimp_params_default(StGimpParams *params) {
    memset(params, 0, sizeof *params);
    params->strength = 0.5;
    params->iterations = 100;
    params->quality = ST_QUALITY_NORMAL;
    params->preserve_color = FALSE;
    params->device = ST_DEVICE_AUTO;
}

gboolean st_gimp_params_check(const StGimpParams *params, gchar **error) {
    if (params->style[0] == '\0') {
        *error = g_strdup("No style given: choose a style image or a style pack.");
        return FALSE;
    }
    if (!(params->strength >= 0.0 && params->strength <= 1.0)) {
        *error = g_strdup_printf("Strength %g is outside 0..1.", params->strength);
        return FALSE;
    }
    if (params->iterations < 1 || params->iterations > 5000) {
        *error = g_strdup_printf("Iterations %d is outside 1..5000.", params->iterations);
        return FALSE;
    }
    if (params->quality < ST_QUALITY_PREVIEW || params->quality > ST_QUALITY_HIGH) {
        *error = g_strdup_printf("Quality %d is not 0 (preview), 1 (normal) or 2 (high).", params->quality);
        return FALSE;
    }
    if (params->device < ST_DEVICE_AUTO || params->device > ST_DEVICE_GPU) {
        *error = g_strdup_printf("Device %d is not 0 (auto), 1 (CPU) or 2 (GPU).", params->device);
        return FALSE;
    }
    return TRUE;
}

guint st_gimp_working_size(gint quality, gint width, gint height) {
    guint preset = quality == ST_QUALITY_PREVIEW ? 256 : quality == ST_QUALITY_HIGH ? 1024 : 512;
    guint long_side = (guint)MAX(width, height);
    return MIN(preset, long_side);
}

/* The babl format and the matching st_pixel_format (display-referred). */
static const Babl *formats(gboolean gray, gboolean alpha, StGimpDepth depth, st_pixel_format *st) {
    static const char *names[3][2][2] = {
        /* u8 */ {{"R'G'B' u8", "R'G'B'A u8"}, {"Y' u8", "Y'A u8"}},
        /* u16 */ {{"R'G'B' u16", "R'G'B'A u16"}, {"Y' u16", "Y'A u16"}},
        /* float */ {{"R'G'B' float", "R'G'B'A float"}, {"Y' float", "Y'A float"}},
    };
    static const st_pixel_format codes[3][2][2] = {
        {{ST_PIXEL_RGB8, ST_PIXEL_RGBA8}, {ST_PIXEL_GRAY8, ST_PIXEL_GRAYA8}},
        {{ST_PIXEL_RGB16, ST_PIXEL_RGBA16}, {ST_PIXEL_GRAY16, ST_PIXEL_GRAYA16}},
        {{ST_PIXEL_RGBF32, ST_PIXEL_RGBAF32}, {ST_PIXEL_GRAYF32, ST_PIXEL_GRAYAF32}},
    };
    *st = codes[depth][gray ? 1 : 0][alpha ? 1 : 0];
    return babl_format(names[depth][gray ? 1 : 0][alpha ? 1 : 0]);
}

static gboolean has_suffix(const gchar *path, const gchar *suffix) {
    return g_str_has_suffix(path, suffix);
}

static gboolean add_style(st_context *ctx, const gchar *path, gchar **error) {
    gchar *lower = g_ascii_strdown(path, -1);
    gboolean is_pack = has_suffix(lower, ".stpack");
    g_free(lower);
    if (is_pack) {
        if (st_add_style_pack(ctx, path, 1.0f) != ST_OK) {
            *error = g_strdup_printf("Style pack: %s", st_last_error(ctx));
            return FALSE;
        }
        return TRUE;
    }
    /* The library's own decoders: the same pixels the stylize CLI sees. */
    if (st_add_style_file(ctx, path, 1.0f) != ST_OK) {
        *error = g_strdup_printf("Style image: %s", st_last_error(ctx));
        return FALSE;
    }
    return TRUE;
}

typedef struct {
    StGimpProgressFn fn;
    void *data;
} ProgressRelay;

static int relay_progress(void *user_data, const st_progress *p) {
    ProgressRelay *relay = user_data;
    if (!relay->fn) return 0;
    double fraction = p->total_evaluations ? (double)p->evaluation / p->total_evaluations : 0.0;
    return relay->fn(relay->data, fraction);
}

gboolean st_gimp_process(const StGimpParams *params, GeglBuffer *source, GeglBuffer *target,
                         const GeglRectangle *rect, gboolean gray, gboolean alpha, StGimpDepth depth,
                         StGimpProgressFn progress, void *progress_data, gchar **error) {
    gboolean ok = FALSE;
    st_context *ctx = NULL;
    guchar *pixels = NULL;
    st_pixel_format st_format;
    const Babl *format = formats(gray, alpha, depth, &st_format);
    gint bpp = babl_format_get_bytes_per_pixel(format);

    if (!st_gimp_params_check(params, error)) goto done;
    if (rect->width < 1 || rect->height < 1) {
        *error = g_strdup("The selection is empty.");
        goto done;
    }
    pixels = g_try_malloc((gsize)rect->width * rect->height * bpp);
    if (!pixels) {
        *error = g_strdup_printf("Not enough memory for a %d×%d region.", rect->width, rect->height);
        goto done;
    }
    gegl_buffer_get(source, rect, 1.0, format, pixels, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);

    st_options options;
    st_default_options(&options);
    options.device = params->device == ST_DEVICE_CPU ? "cpu" : params->device == ST_DEVICE_GPU ? "cuda" : "auto";
    st_status status = st_create(&options, &ctx);
    if (status != ST_OK) {
        *error = g_strdup_printf("Cannot start the style-transfer engine: %s%s", st_status_str((int)status),
                                 status == ST_MODEL_ERROR ? " (the model file was not found; set ST_MODEL)" : "");
        goto done;
    }
    if (!add_style(ctx, params->style, error)) goto done;
    if (st_set_strength(ctx, (float)params->strength) != ST_OK) {
        *error = g_strdup(st_last_error(ctx));
        goto done;
    }
    st_run_options run;
    st_default_run_options(&run);
    run.iterations = (uint32_t)params->iterations;
    run.working_size = st_gimp_working_size(params->quality, rect->width, rect->height);
    run.preserve_color = params->preserve_color ? ST_PRESERVE_COLOR_LUMINANCE : ST_PRESERVE_COLOR_OFF;
    st_image image = {pixels, (uint32_t)rect->width, (uint32_t)rect->height, (size_t)rect->width * bpp,
                      (uint32_t)st_format, 0};
    ProgressRelay relay = {progress, progress_data};
    status = st_run(ctx, &image, &image, &run, relay_progress, &relay);
    if (status == ST_CANCELLED) {
        *error = g_strdup("Cancelled");
        goto done;
    }
    if (status != ST_OK) {
        *error = g_strdup(st_last_error(ctx));
        goto done;
    }
    gegl_buffer_set(target, rect, 0, format, pixels, GEGL_AUTO_ROWSTRIDE);
    ok = TRUE;
done:
    st_destroy(ctx);
    g_free(pixels);
    return ok;
}
