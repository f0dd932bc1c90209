/*
 * Shared part of the GIMP filter: parameters, and the filtering of a
 * drawable through the styletransfer C ABI. See st-gimp.h.
 */
#include "st-gimp.h"

#include <string.h>

void st_gimp_params_default(StGimpParams *params) {
    memset(params, 0, sizeof *params);
    params->strength = 0.5;
    params->iterations = 100;
    params->quality = ST_GIMP_QUALITY_NORMAL;
    params->preserve_color = FALSE;
    params->device = ST_DEVICE_AUTO;
    params->engine = ST_ENGINE_OPTIMIZE;
}

gboolean st_gimp_params_check(const StGimpParams *params, gchar **error) {
    if (params->engine != ST_ENGINE_OPTIMIZE && params->engine != ST_ENGINE_NETWORK) {
        *error = g_strdup_printf("Engine %d is not 0 (optimise) or 1 (network).", params->engine);
        return FALSE;
    }
    if (params->engine == ST_ENGINE_NETWORK && params->network[0] == '\0') {
        *error = g_strdup("No network given: choose a network file (.stnet, made by `stylize train`).");
        return FALSE;
    }
    if (params->engine == ST_ENGINE_OPTIMIZE && params->style[0] == '\0') {
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
    if (params->quality < ST_GIMP_QUALITY_PREVIEW || params->quality > ST_GIMP_QUALITY_HIGH) {
        *error = g_strdup_printf("Quality %d is not 0 (preview), 1 (normal) or 2 (high).", params->quality);
        return FALSE;
    }
    if (params->device < 0 || st_device_name((uint32_t)params->device) == NULL) {
        *error = g_strdup_printf("Device %d is not 0 (auto), 1 (CPU) or 2 (GPU).", params->device);
        return FALSE;
    }
    return TRUE;
}

/* The babl format the region is read and written in (display-referred, the
 * drawable's own depth: 8-bit, 16-bit, else float) and its st_pixel_format. */
static const Babl *formats(const Babl *drawable_format, st_pixel_format *st) {
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
    const Babl *type = babl_format_get_type(drawable_format, 0);
    int depth = type == babl_type("u8") ? 0 : type == babl_type("u16") ? 1 : 2;
    int alpha = babl_format_has_alpha(drawable_format) ? 1 : 0;
    int gray = babl_format_get_n_components(drawable_format) - alpha == 1 ? 1 : 0;
    *st = codes[depth][gray][alpha];
    return babl_format(names[depth][gray][alpha]);
}

/* GIMP's progress bar, updated at most every 1 %. GIMP cancels a plug-in by
 * asking it to quit and killing it 10 ms later, so there is nothing to poll:
 * the image stays untouched because the shadow buffer is never merged. */
static int show_progress(void *user_data, const st_progress *p) {
    gdouble *last = user_data;
    double fraction = p->total_evaluations ? (double)p->evaluation / p->total_evaluations : 0.0;
    if (fraction - *last >= 0.01 || fraction >= 1.0) {
        *last = fraction;
        gimp_progress_update(fraction);
    }
    return 0;
}

/* Stylises `rect` of `source` into `target` in `format`; FALSE with *error set on failure. */
static gboolean process(const StGimpParams *params, GeglBuffer *source, GeglBuffer *target,
                        const GeglRectangle *rect, const Babl *drawable_format, gchar **error) {
    gboolean ok = FALSE;
    st_context *ctx = NULL;
    guchar *pixels = NULL;
    st_pixel_format st_format;
    const Babl *format = formats(drawable_format, &st_format);
    gint bpp = babl_format_get_bytes_per_pixel(format);

    pixels = g_try_malloc((gsize)rect->width * rect->height * bpp);
    if (!pixels) {
        *error = g_strdup_printf("Not enough memory for a %d×%d region.", rect->width, rect->height);
        goto done;
    }
    gegl_buffer_get(source, rect, 1.0, format, pixels, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);

    st_options options;
    st_default_options(&options);
    options.device = st_device_name((uint32_t)params->device);
    st_status status = st_create(&options, &ctx);
    if (status != ST_OK) {
        *error = g_strdup_printf("Cannot start the style-transfer engine: %s: %s", st_status_str((int)status),
                                 st_last_error(NULL));
        goto done;
    }
    if (params->engine == ST_ENGINE_NETWORK) {
        if (st_load_network(ctx, params->network) != ST_OK) {
            *error = g_strdup_printf("Network: %s", st_last_error(ctx));
            goto done;
        }
    } else if (st_add_style_path(ctx, params->style, 1.0f) != ST_OK) {
        *error = g_strdup_printf("Style: %s", st_last_error(ctx));
        goto done;
    }
    if (st_set_strength(ctx, (float)params->strength) != ST_OK) {
        *error = g_strdup(st_last_error(ctx));
        goto done;
    }
    st_run_options run;
    st_default_run_options(&run);
    run.iterations = (uint32_t)params->iterations;
    run.quality = (uint32_t)(ST_QUALITY_PREVIEW + params->quality);
    run.preserve_color = params->preserve_color ? ST_PRESERVE_COLOR_LUMINANCE : ST_PRESERVE_COLOR_OFF;
    if (params->engine == ST_ENGINE_NETWORK) { /* the network at the region's own size */
        run.engine = ST_ENGINE_NETWORK;
        run.quality = ST_QUALITY_CUSTOM;
    }
    st_image image = {pixels, (uint32_t)rect->width, (uint32_t)rect->height, (size_t)rect->width * bpp,
                      (uint32_t)st_format, 0};
    gdouble last = -1.0;
    status = st_run(ctx, &image, &image, &run, show_progress, &last);
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

GimpPDBStatusType st_gimp_filter(const StGimpParams *params, StGimpDrawable drawable, gboolean flush,
                                 gchar **error) {
    if (gimp_drawable_is_indexed(drawable)) {
        *error = g_strdup("Style transfer works on RGB and grayscale layers; convert the indexed image to RGB "
                          "first (Image > Mode > RGB).");
        return GIMP_PDB_EXECUTION_ERROR;
    }
    if (!st_gimp_params_check(params, error)) return GIMP_PDB_CALLING_ERROR;
    gint x, y, width, height;
    if (!gimp_drawable_mask_intersect(drawable, &x, &y, &width, &height)) {
        *error = g_strdup("The selection does not touch the layer.");
        return GIMP_PDB_EXECUTION_ERROR;
    }
    GeglBuffer *source = gimp_drawable_get_buffer(drawable);
    GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(drawable);
    GeglRectangle rect = {x, y, width, height};
    gimp_progress_init("Style transfer");
    gboolean ok = process(params, source, shadow, &rect, gimp_drawable_get_format(drawable), error);
    g_object_unref(shadow); /* flushes the shadow tiles to GIMP */
    g_object_unref(source);
    if (!ok) return g_strcmp0(*error, "Cancelled") == 0 ? GIMP_PDB_CANCEL : GIMP_PDB_EXECUTION_ERROR;
    gimp_progress_update(1.0);
    gimp_drawable_merge_shadow(drawable, TRUE);
    gimp_drawable_update(drawable, x, y, width, height);
    if (flush) gimp_displays_flush();
    return GIMP_PDB_SUCCESS;
}

/* ---------- preview ---------- */

void st_gimp_preview_free(StGimpPreview *state) {
    st_destroy(state->ctx);
    memset(state, 0, sizeof *state);
}

/* Stylises `pixels` in place with the network of `params` through the kept context. */
static gboolean preview_network(StGimpPreview *state, const StGimpParams *params, st_image *image, gchar **error) {
    if (state->ctx && (state->device != params->device || strcmp(state->network, params->network) != 0))
        st_gimp_preview_free(state);
    if (!state->ctx) {
        st_options options;
        st_default_options(&options);
        options.device = st_device_name((uint32_t)params->device);
        st_status status = st_create(&options, &state->ctx);
        if (status != ST_OK) {
            *error = g_strdup_printf("Cannot start the style-transfer engine: %s", st_last_error(NULL));
            state->ctx = NULL;
            return FALSE;
        }
        if (st_load_network(state->ctx, params->network) != ST_OK) {
            *error = g_strdup_printf("Network: %s", st_last_error(state->ctx));
            st_gimp_preview_free(state);
            return FALSE;
        }
        state->device = params->device;
        g_strlcpy(state->network, params->network, sizeof state->network);
    }
    st_run_options run;
    st_default_run_options(&run);
    run.engine = ST_ENGINE_NETWORK;
    run.preserve_color = params->preserve_color ? ST_PRESERVE_COLOR_LUMINANCE : ST_PRESERVE_COLOR_OFF;
    if (st_set_strength(state->ctx, (float)params->strength) != ST_OK ||
        st_run(state->ctx, image, image, &run, NULL, NULL) != ST_OK) {
        *error = g_strdup(st_last_error(state->ctx));
        return FALSE;
    }
    return TRUE;
}

gboolean st_gimp_preview_update(StGimpPreview *state, const StGimpParams *params, GimpPreview *preview,
                                StGimpDrawable drawable, gchar **error) {
    gint x, y, width, height;
    gimp_preview_get_position(preview, &x, &y);
    gimp_preview_get_size(preview, &width, &height);
    if (width <= 0 || height <= 0) return TRUE;
    /* The preview area draws 8-bit samples of the drawable's channels. */
    gboolean alpha = gimp_drawable_has_alpha(drawable);
    gboolean gray = gimp_drawable_is_gray(drawable);
    const char *name = gray ? (alpha ? "Y'A u8" : "Y' u8") : (alpha ? "R'G'B'A u8" : "R'G'B' u8");
    st_pixel_format st_format = gray ? (alpha ? ST_PIXEL_GRAYA8 : ST_PIXEL_GRAY8) : (alpha ? ST_PIXEL_RGBA8 : ST_PIXEL_RGB8);
    const Babl *format = babl_format(name);
    gint bpp = babl_format_get_bytes_per_pixel(format);
    guchar *pixels = g_try_malloc((gsize)width * height * bpp);
    if (!pixels) {
        *error = g_strdup("Not enough memory for the preview.");
        return FALSE;
    }
    GeglBuffer *buffer = gimp_drawable_get_buffer(drawable);
    GeglRectangle rect = {x, y, width, height};
    gegl_buffer_get(buffer, &rect, 1.0, format, pixels, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    g_object_unref(buffer);
    gboolean ok = TRUE;
    if (params->engine == ST_ENGINE_NETWORK && params->network[0]) {
        st_image image = {pixels, (uint32_t)width, (uint32_t)height, (size_t)width * bpp, (uint32_t)st_format, 0};
        /* st_run writes only on success: on failure the layer's pixels are drawn. */
        ok = preview_network(state, params, &image, error);
    }
    gimp_preview_draw_buffer(preview, pixels, width * bpp);
    g_free(pixels);
    return ok;
}

/* ---------- style packs with thumbnails ---------- */

/* The pack's thumbnail scaled to `height` pixels high, or NULL. */
static GdkPixbuf *pack_thumbnail(const char *path, gint height) {
    st_pack_info *info = NULL;
    GdkPixbuf *scaled = NULL;
    if (st_read_pack_info(path, &info) != ST_OK) return NULL;
    GdkPixbufLoader *loader = gdk_pixbuf_loader_new_with_type("png", NULL);
    if (loader && gdk_pixbuf_loader_write(loader, info->thumbnail_png, info->thumbnail_size, NULL) &&
        gdk_pixbuf_loader_close(loader, NULL)) {
        GdkPixbuf *full = gdk_pixbuf_loader_get_pixbuf(loader);
        if (full && gdk_pixbuf_get_height(full) > 0) {
            gint width = gdk_pixbuf_get_width(full) * height / gdk_pixbuf_get_height(full);
            scaled = gdk_pixbuf_scale_simple(full, width > 0 ? width : 1, height, GDK_INTERP_BILINEAR);
        }
    }
    if (loader) g_object_unref(loader);
    st_pack_info_free(info);
    return scaled;
}

GtkWidget *st_gimp_pack_combo(gint active, GCallback changed, gpointer data) {
    GtkWidget *combo = gimp_int_combo_box_new("(the style image below)", 0, NULL);
    /* The thumbnail before the name (the combo's own cells show icon names and labels). */
    GtkCellRenderer *thumbnail_cell = gtk_cell_renderer_pixbuf_new();
    gtk_cell_layout_pack_start(GTK_CELL_LAYOUT(combo), thumbnail_cell, FALSE);
    gtk_cell_layout_reorder(GTK_CELL_LAYOUT(combo), thumbnail_cell, 0);
    gtk_cell_layout_set_attributes(GTK_CELL_LAYOUT(combo), thumbnail_cell, "pixbuf", GIMP_INT_STORE_PIXBUF, NULL);
    st_style_list *list = NULL;
    if (st_list_styles(&list) == ST_OK) {
        for (size_t i = 0; i < list->count; i++) {
            GdkPixbuf *thumbnail = pack_thumbnail(list->entries[i].path, 40);
            gimp_int_combo_box_append(GIMP_INT_COMBO_BOX(combo), GIMP_INT_STORE_VALUE, (gint)i + 1,
                                      GIMP_INT_STORE_LABEL, list->entries[i].name, GIMP_INT_STORE_PIXBUF, thumbnail,
                                      -1);
            if (thumbnail) g_object_unref(thumbnail);
        }
    }
    st_style_list_free(list);
#if GIMP_MAJOR_VERSION >= 3
    gimp_int_combo_box_connect(GIMP_INT_COMBO_BOX(combo), active, changed, data, NULL);
#else
    gimp_int_combo_box_connect(GIMP_INT_COMBO_BOX(combo), active, changed, data);
#endif
    return combo;
}
