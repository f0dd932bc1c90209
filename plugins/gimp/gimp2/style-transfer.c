/*
 * GIMP 2.10 shim of the style-transfer filter: PDB registration, run modes,
 * dialog (with a preview that the network engine stylises, and the style
 * packs' thumbnails) and last values. The filtering (selection, shadow buffer, progress)
 * is in ../common/st-gimp.c, which talks to the library through
 * styletransfer.h.
 */
#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "../common/st-gimp.h"

static void query(void);
static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals);

const GimpPlugInInfo PLUG_IN_INFO = {NULL, NULL, query, run};

MAIN()

static void query(void) {
    static const GimpParamDef args[] = {
        {GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1), RUN-WITH-LAST-VALS (2) }"},
        {GIMP_PDB_IMAGE, "image", "Input image"},
        {GIMP_PDB_DRAWABLE, "drawable", "Input drawable (RGB, RGBA, gray or gray-alpha)"},
        {GIMP_PDB_STRING, "style", "Style image file (PNG, JPEG, TIFF, BMP, PNM, WebP) or style pack (.stpack)"},
        {GIMP_PDB_FLOAT, "strength", "Style strength 0..1 (0.5: default balance of content and style)"},
        {GIMP_PDB_INT32, "iterations", "Optimiser evaluations per pyramid scale (1..5000)"},
        {GIMP_PDB_INT32, "quality", "Working size { PREVIEW (0): 256 px, NORMAL (1): 512 px, HIGH (2): 1024 px }"},
        {GIMP_PDB_INT32, "preserve-color", "Keep the layer's colours (luminance-only transfer) { FALSE, TRUE }"},
        {GIMP_PDB_INT32, "device", "Where to compute { AUTO (0), CPU (1), GPU (2) }"},
        {GIMP_PDB_INT32, "engine", "{ OPTIMIZE (0): optimise against the style, NETWORK (1): one pass of the network }"},
        {GIMP_PDB_STRING, "network", "Network file (.stnet, made by `stylize train`) for the network engine, or \"\""},
    };
    gimp_install_procedure(ST_GIMP_PROC, ST_GIMP_BLURB, ST_GIMP_HELP, ST_GIMP_AUTHOR, ST_GIMP_AUTHOR, ST_GIMP_DATE,
                           ST_GIMP_MENU_LABEL, "RGB*, GRAY*", GIMP_PLUGIN, G_N_ELEMENTS(args), 0, args, NULL);
    gimp_plugin_menu_register(ST_GIMP_PROC, ST_GIMP_MENU_PATH);
}

/* ---------- dialog ---------- */

typedef struct {
    StGimpParams *params;
    GtkWidget *file_chooser;
    GtkWidget *preview;
    gint pack; /* 0: the style image; N: the Nth pack of st_list_styles */
    gint32 drawable;
    StGimpPreview state;
} DialogState;

static void on_pack_changed(GtkWidget *combo, DialogState *state) {
    gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(combo), &state->pack);
    if (state->pack > 0 && state->file_chooser) gtk_file_chooser_unselect_all(GTK_FILE_CHOOSER(state->file_chooser));
}

static void on_network_set(GtkFileChooserButton *button, DialogState *state) {
    gchar *file = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(button));
    g_strlcpy(state->params->network, file ? file : "", sizeof state->params->network);
    g_free(file);
    if (state->preview) gimp_preview_invalidate(GIMP_PREVIEW(state->preview));
}

static void on_preview_invalidated(GimpPreview *preview, DialogState *state) {
    gchar *error = NULL;
    if (!st_gimp_preview_update(&state->state, state->params, preview, state->drawable, &error)) {
        g_message("Style transfer preview: %s", error);
        g_free(error);
    }
}

/* Redraws the preview after a change that the network preview shows. */
static void invalidate(GtkWidget *widget, DialogState *state) {
    (void)widget;
    if (state->preview) gimp_preview_invalidate(GIMP_PREVIEW(state->preview));
}

static gboolean dialog(StGimpParams *params, gint32 drawable) {
    gimp_ui_init(ST_GIMP_BINARY, FALSE);
    GtkWidget *dlg = gimp_dialog_new("Style Transfer", ST_GIMP_BINARY, NULL, 0, gimp_standard_help_func,
                                     ST_GIMP_PROC, "_Cancel", GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
    gimp_window_set_transient(GTK_WINDOW(dlg));
    GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(dlg));
    DialogState state = {params, NULL, NULL, 0, drawable, {0}};

    /* A preview of the layer, stylised when the network engine is chosen. */
    state.preview = gimp_drawable_preview_new_from_drawable_id(drawable);
    gtk_container_set_border_width(GTK_CONTAINER(state.preview), 12);
    gtk_box_pack_start(GTK_BOX(content), state.preview, TRUE, TRUE, 0);
    g_signal_connect(state.preview, "invalidated", G_CALLBACK(on_preview_invalidated), &state);

    GtkWidget *grid = gtk_table_new(9, 3, FALSE);
    gtk_table_set_col_spacings(GTK_TABLE(grid), 6);
    gtk_table_set_row_spacings(GTK_TABLE(grid), 6);
    gtk_container_set_border_width(GTK_CONTAINER(grid), 12);
    gtk_box_pack_start(GTK_BOX(content), grid, FALSE, FALSE, 0);

    GtkWidget *engine = gimp_int_combo_box_new("Optimise (best quality)", ST_ENGINE_OPTIMIZE,
                                               "Network (one pass, fast)", ST_ENGINE_NETWORK, NULL);
    gimp_int_combo_box_connect(GIMP_INT_COMBO_BOX(engine), params->engine, G_CALLBACK(gimp_int_combo_box_get_active),
                               &params->engine);
    g_signal_connect(engine, "changed", G_CALLBACK(invalidate), &state);
    gimp_table_attach_aligned(GTK_TABLE(grid), 0, 0, "_Engine:", 0.0, 0.5, engine, 2, FALSE);

    GtkWidget *network = gtk_file_chooser_button_new("Network (.stnet)", GTK_FILE_CHOOSER_ACTION_OPEN);
    GtkFileFilter *filter = gtk_file_filter_new();
    gtk_file_filter_set_name(filter, "Networks (*.stnet)");
    gtk_file_filter_add_pattern(filter, "*.stnet");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(network), filter);
    if (params->network[0]) gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(network), params->network);
    g_signal_connect(network, "file-set", G_CALLBACK(on_network_set), &state);
    gimp_table_attach_aligned(GTK_TABLE(grid), 0, 1, "_Network:", 0.0, 0.5, network, 2, FALSE);

    /* Style pack: the packs found in the style folders, with their thumbnails. */
    gint active = 0;
    st_style_list *packs = NULL;
    if (st_list_styles(&packs) == ST_OK) {
        for (size_t i = 0; i < packs->count; i++)
            if (strcmp(packs->entries[i].path, params->style) == 0) active = (gint)i + 1;
    }
    st_style_list_free(packs);
    state.pack = active;
    GtkWidget *pack_combo = st_gimp_pack_combo(active, G_CALLBACK(on_pack_changed), &state);
    gimp_table_attach_aligned(GTK_TABLE(grid), 0, 2, "Style pac_k:", 0.0, 0.5, pack_combo, 2, FALSE);

    state.file_chooser = gtk_file_chooser_button_new("Style image", GTK_FILE_CHOOSER_ACTION_OPEN);
    if (active == 0 && params->style[0]) gtk_file_chooser_set_filename(GTK_FILE_CHOOSER(state.file_chooser), params->style);
    gimp_table_attach_aligned(GTK_TABLE(grid), 0, 3, "Style _image:", 0.0, 0.5, state.file_chooser, 2, FALSE);

    GtkObject *strength = gimp_scale_entry_new(GTK_TABLE(grid), 0, 4, "_Strength:", 200, 6, params->strength, 0.0,
                                               1.0, 0.01, 0.1, 2, TRUE, 0, 0, NULL, NULL);
    g_signal_connect(strength, "value-changed", G_CALLBACK(gimp_double_adjustment_update), &params->strength);
    g_signal_connect(strength, "value-changed", G_CALLBACK(invalidate), &state);
    GtkObject *iterations = gimp_scale_entry_new(GTK_TABLE(grid), 0, 5, "_Iterations:", 200, 6, params->iterations,
                                                 1, 1000, 1, 10, 0, TRUE, 0, 0, NULL, NULL);
    g_signal_connect(iterations, "value-changed", G_CALLBACK(gimp_int_adjustment_update), &params->iterations);

    GtkWidget *quality = gimp_int_combo_box_new("Preview (256 px)", ST_GIMP_QUALITY_PREVIEW, "Normal (512 px)",
                                                ST_GIMP_QUALITY_NORMAL, "High (1024 px)", ST_GIMP_QUALITY_HIGH, NULL);
    gimp_int_combo_box_connect(GIMP_INT_COMBO_BOX(quality), params->quality, G_CALLBACK(gimp_int_combo_box_get_active),
                               &params->quality);
    gimp_table_attach_aligned(GTK_TABLE(grid), 0, 6, "_Quality:", 0.0, 0.5, quality, 2, FALSE);

    GtkWidget *device = gimp_int_combo_box_new("Automatic", ST_DEVICE_AUTO, "CPU", ST_DEVICE_CPU, "GPU (CUDA)",
                                               ST_DEVICE_GPU, NULL);
    gimp_int_combo_box_connect(GIMP_INT_COMBO_BOX(device), params->device, G_CALLBACK(gimp_int_combo_box_get_active),
                               &params->device);
    g_signal_connect(device, "changed", G_CALLBACK(invalidate), &state);
    gimp_table_attach_aligned(GTK_TABLE(grid), 0, 7, "_Device:", 0.0, 0.5, device, 2, FALSE);

    GtkWidget *preserve = gtk_check_button_new_with_mnemonic("_Preserve the layer's colours");
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(preserve), params->preserve_color);
    g_signal_connect(preserve, "toggled", G_CALLBACK(gimp_toggle_button_update), &params->preserve_color);
    g_signal_connect(preserve, "toggled", G_CALLBACK(invalidate), &state);
    gtk_table_attach(GTK_TABLE(grid), preserve, 0, 3, 8, 9, GTK_FILL, GTK_FILL, 0, 0);

    gtk_widget_show_all(dlg);
    gboolean ok = gimp_dialog_run(GIMP_DIALOG(dlg)) == GTK_RESPONSE_OK;
    if (ok) {
        gchar *file = gtk_file_chooser_get_filename(GTK_FILE_CHOOSER(state.file_chooser));
        st_style_list *list = NULL;
        if (state.pack > 0 && st_list_styles(&list) == ST_OK && (size_t)state.pack <= list->count)
            g_strlcpy(params->style, list->entries[state.pack - 1].path, sizeof params->style);
        else if (file)
            g_strlcpy(params->style, file, sizeof params->style);
        st_style_list_free(list);
        g_free(file);
    }
    gtk_widget_destroy(dlg);
    st_gimp_preview_free(&state.state);
    return ok;
}

/* ---------- running ---------- */

static void run(const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals, GimpParam **return_vals) {
    static GimpParam values[2];
    GimpRunMode run_mode = (GimpRunMode)param[0].data.d_int32;
    GimpPDBStatusType status = GIMP_PDB_SUCCESS;
    gchar *error = NULL;
    StGimpParams params;
    (void)name;

    *nreturn_vals = 1;
    *return_vals = values;
    gegl_init(NULL, NULL);
    st_gimp_params_default(&params);

    gint32 drawable = param[2].data.d_drawable;
    switch (run_mode) {
    case GIMP_RUN_INTERACTIVE:
        gimp_get_data(ST_GIMP_PROC, &params);
        if (!dialog(&params, drawable)) status = GIMP_PDB_CANCEL;
        break;
    case GIMP_RUN_NONINTERACTIVE:
        if (nparams != 11 || !param[3].data.d_string) {
            status = GIMP_PDB_CALLING_ERROR;
            error = g_strdup("plug-in-style-transfer takes 11 arguments (run-mode, image, drawable, style, strength, "
                             "iterations, quality, preserve-color, device, engine, network).");
            break;
        }
        params.engine = param[9].data.d_int32;
        if (param[10].data.d_string) g_strlcpy(params.network, param[10].data.d_string, sizeof params.network);
        g_strlcpy(params.style, param[3].data.d_string, sizeof params.style);
        params.strength = param[4].data.d_float;
        params.iterations = param[5].data.d_int32;
        params.quality = param[6].data.d_int32;
        params.preserve_color = param[7].data.d_int32 != 0;
        params.device = param[8].data.d_int32;
        break;
    case GIMP_RUN_WITH_LAST_VALS:
        gimp_get_data(ST_GIMP_PROC, &params);
        break;
    }

    if (status == GIMP_PDB_SUCCESS) {
        status = st_gimp_filter(&params, drawable, run_mode != GIMP_RUN_NONINTERACTIVE, &error);
        if (status == GIMP_PDB_SUCCESS && run_mode == GIMP_RUN_INTERACTIVE)
            gimp_set_data(ST_GIMP_PROC, &params, sizeof params);
    }

    values[0].type = GIMP_PDB_STATUS;
    values[0].data.d_status = status;
    if (error) {
        /* The message GIMP shows (interactive) or returns to the script. */
        static gchar message[2048];
        g_strlcpy(message, error, sizeof message);
        g_free(error);
        *nreturn_vals = 2;
        values[1].type = GIMP_PDB_STRING;
        values[1].data.d_string = message;
    }
}
