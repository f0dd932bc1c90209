/*
 * GIMP 3.0 shim of the style-transfer filter: a GimpPlugIn with one image
 * procedure and its arguments (which GIMP turns into the dialog and
 * remembers as last values), and the dialog's preview and style-pack menu
 * with thumbnails. The filtering (selection, shadow buffer,
 * progress) is in ../common/st-gimp.c, which talks to the library through
 * styletransfer.h.
 */
#include <string.h>

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include "../common/st-gimp.h"

#define ST_TYPE_PLUG_IN (st_plug_in_get_type())
G_DECLARE_FINAL_TYPE(StPlugIn, st_plug_in, ST, PLUG_IN, GimpPlugIn)

struct _StPlugIn {
    GimpPlugIn parent_instance;
};

G_DEFINE_TYPE(StPlugIn, st_plug_in, GIMP_TYPE_PLUG_IN)

GIMP_MAIN(ST_TYPE_PLUG_IN)

static GList *st_query_procedures(GimpPlugIn *plug_in) {
    (void)plug_in;
    return g_list_append(NULL, g_strdup(ST_GIMP_PROC));
}

static GimpValueArray *failure(GimpProcedure *procedure, GimpPDBStatusType status, const gchar *message) {
    GError *error = g_error_new_literal(GIMP_PLUG_IN_ERROR, 0, message);
    return gimp_procedure_new_return_values(procedure, status, error);
}

/* The packs in the style folders, as a choice for the dialog ("none" = use
 * the style file). Choice nicks are "pack-N"; the path is looked up again
 * at run time by position. */
static GimpChoice *pack_choice(void) {
    GimpChoice *choice = gimp_choice_new();
    gimp_choice_add(choice, "none", 0, "(the style image below)", NULL);
    st_style_list *list = NULL;
    if (st_list_styles(&list) == ST_OK) {
        for (size_t i = 0; i < list->count; i++) {
            gchar *nick = g_strdup_printf("pack-%zu", i);
            gimp_choice_add(choice, nick, (gint)i + 1, list->entries[i].name, list->entries[i].path);
            g_free(nick);
        }
    }
    st_style_list_free(list);
    return choice;
}

static gboolean pack_path(gint index, gchar *out, gsize size) {
    st_style_list *list = NULL;
    gboolean found = FALSE;
    if (index > 0 && st_list_styles(&list) == ST_OK && (size_t)index <= list->count) {
        g_strlcpy(out, list->entries[index - 1].path, size);
        found = TRUE;
    }
    st_style_list_free(list);
    return found;
}

/* The filter's parameters as the procedure's config holds them. */
static void params_from_config(GimpProcedureConfig *config, StGimpParams *params) {
    st_gimp_params_default(params);
    gchar *style = NULL;
    GFile *network = NULL;
    g_object_get(config, "style", &style, "strength", &params->strength, "iterations", &params->iterations,
                 "preserve-color", &params->preserve_color, "network", &network, NULL);
    params->quality = gimp_procedure_config_get_choice_id(config, "quality");
    params->device = gimp_procedure_config_get_choice_id(config, "device");
    params->engine = gimp_procedure_config_get_choice_id(config, "engine");
    gint pack = gimp_procedure_config_get_choice_id(config, "style-pack");
    if (!pack_path(pack, params->style, sizeof params->style) && style) g_strlcpy(params->style, style, sizeof params->style);
    if (network) {
        gchar *path = g_file_get_path(network);
        if (path) g_strlcpy(params->network, path, sizeof params->network);
        g_free(path);
        g_object_unref(network);
    }
    g_free(style);
}

/* What the dialog's preview needs. */
typedef struct {
    GimpProcedureConfig *config;
    GimpDrawable *drawable;
    StGimpPreview state;
} Preview;

static void on_preview_invalidated(GimpPreview *preview, Preview *data) {
    StGimpParams params;
    params_from_config(data->config, &params);
    gchar *error = NULL;
    if (!st_gimp_preview_update(&data->state, &params, preview, data->drawable, &error)) {
        g_message("Style transfer preview: %s", error);
        g_free(error);
    }
}

static void on_pack_chosen(GtkWidget *combo, GimpProcedureConfig *config) {
    gint value = 0;
    if (!gimp_int_combo_box_get_active(GIMP_INT_COMBO_BOX(combo), &value)) return;
    gchar *nick = value > 0 ? g_strdup_printf("pack-%d", value - 1) : g_strdup("none");
    g_object_set(config, "style-pack", nick, NULL);
    g_free(nick);
}

/* The dialog: a preview of the layer (stylised by the network engine), the
 * style packs with their thumbnails, then the procedure's other arguments. */
static gboolean dialog(GimpProcedure *procedure, GimpProcedureConfig *config, GimpDrawable *drawable) {
    gimp_ui_init(ST_GIMP_BINARY);
    GtkWidget *dlg = gimp_procedure_dialog_new(procedure, config, "Style Transfer");
    GtkWidget *content = gtk_dialog_get_content_area(GTK_DIALOG(dlg));
    Preview data = {config, drawable, {0}};
    GtkWidget *preview = gimp_drawable_preview_new_from_drawable(drawable);
    gtk_box_pack_start(GTK_BOX(content), preview, TRUE, TRUE, 0);
    gtk_widget_show(preview);
    g_signal_connect(preview, "invalidated", G_CALLBACK(on_preview_invalidated), &data);

    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *label = gtk_label_new_with_mnemonic("Style pac_k");
    GtkWidget *packs = st_gimp_pack_combo(gimp_procedure_config_get_choice_id(config, "style-pack"),
                                          G_CALLBACK(on_pack_chosen), config);
    gtk_label_set_mnemonic_widget(GTK_LABEL(label), packs);
    gtk_box_pack_start(GTK_BOX(row), label, FALSE, FALSE, 0);
    gtk_box_pack_start(GTK_BOX(row), packs, TRUE, TRUE, 0);
    gtk_box_pack_start(GTK_BOX(content), row, FALSE, FALSE, 0);
    gtk_widget_show_all(row);

    gimp_procedure_dialog_fill(GIMP_PROCEDURE_DIALOG(dlg), "engine", "network", "style", "strength", "iterations",
                               "quality", "preserve-color", "device", NULL);
    g_signal_connect_swapped(config, "notify", G_CALLBACK(gimp_preview_invalidate), preview);
    gboolean ok = gimp_procedure_dialog_run(GIMP_PROCEDURE_DIALOG(dlg));
    g_signal_handlers_disconnect_by_data(config, preview);
    gtk_widget_destroy(dlg);
    st_gimp_preview_free(&data.state);
    return ok;
}

static GimpValueArray *plugin_run(GimpProcedure *procedure, GimpRunMode run_mode, GimpImage *image,
                              GimpDrawable **drawables, GimpProcedureConfig *config, gpointer run_data) {
    (void)image;
    (void)run_data;
    gegl_init(NULL, NULL);
    if (!drawables || !drawables[0] || drawables[1])
        return failure(procedure, GIMP_PDB_CALLING_ERROR, "Style transfer works on exactly one layer.");
    GimpDrawable *drawable = drawables[0];

    if (run_mode == GIMP_RUN_INTERACTIVE && !dialog(procedure, config, drawable))
        return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);

    StGimpParams params;
    params_from_config(config, &params);
    gchar *error = NULL;
    GimpPDBStatusType status = st_gimp_filter(&params, drawable, run_mode != GIMP_RUN_NONINTERACTIVE, &error);
    if (status != GIMP_PDB_SUCCESS) {
        GimpValueArray *result = failure(procedure, status, error);
        g_free(error);
        return result;
    }
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}

static GimpProcedure *st_create_procedure(GimpPlugIn *plug_in, const gchar *name) {
    if (g_strcmp0(name, ST_GIMP_PROC) != 0) return NULL;
    GimpProcedure *procedure = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN, plugin_run, NULL, NULL);
    gimp_procedure_set_image_types(procedure, "RGB*, GRAY*");
    gimp_procedure_set_sensitivity_mask(procedure, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
    gimp_procedure_set_menu_label(procedure, ST_GIMP_MENU_LABEL);
    gimp_procedure_add_menu_path(procedure, "<Image>/Filters/Artistic");
    gimp_procedure_set_documentation(procedure, ST_GIMP_BLURB, ST_GIMP_HELP, name);
    gimp_procedure_set_attribution(procedure, ST_GIMP_AUTHOR, ST_GIMP_AUTHOR, ST_GIMP_DATE);
    gimp_procedure_add_choice_argument(procedure, "style-pack", "Style _pack",
                                       "A style pack from the style folders, or none to use the style file",
                                       pack_choice(), "none", G_PARAM_READWRITE);
    gimp_procedure_add_string_argument(procedure, "style", "Style _file",
                                       "Style image file (PNG, JPEG, TIFF, BMP, PNM, WebP) or style pack (.stpack)", "",
                                       G_PARAM_READWRITE);
    gimp_procedure_add_double_argument(procedure, "strength", "_Strength",
                                       "Style strength 0..1 (0.5: default balance of content and style)", 0.0, 1.0,
                                       0.5, G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(procedure, "iterations", "_Iterations",
                                    "Optimiser evaluations per pyramid scale", 1, 5000, 100, G_PARAM_READWRITE);
    gimp_procedure_add_choice_argument(
        procedure, "quality", "_Quality", "Working size (the long side of the optimised image)",
        gimp_choice_new_with_values("preview", ST_GIMP_QUALITY_PREVIEW, "Preview (256 px)", NULL, "normal",
                                    ST_GIMP_QUALITY_NORMAL, "Normal (512 px)", NULL, "high", ST_GIMP_QUALITY_HIGH,
                                    "High (1024 px)", NULL, NULL),
        "normal", G_PARAM_READWRITE);
    gimp_procedure_add_boolean_argument(procedure, "preserve-color", "_Preserve colours",
                                        "Keep the layer's colours (luminance-only transfer)", FALSE,
                                        G_PARAM_READWRITE);
    gimp_procedure_add_choice_argument(
        procedure, "engine", "_Engine",
        "Optimise the layer against the style, or run a network trained on a style (`stylize train`) in one pass",
        gimp_choice_new_with_values("optimize", ST_ENGINE_OPTIMIZE, "Optimise (best quality)", NULL, "network",
                                    ST_ENGINE_NETWORK, "Network (one pass, fast)", NULL, NULL),
        "optimize", G_PARAM_READWRITE);
    gimp_procedure_add_file_argument(procedure, "network", "_Network",
                                     "The network file (.stnet) of the network engine, made by `stylize train`",
                                     GIMP_FILE_CHOOSER_ACTION_OPEN, TRUE, NULL, G_PARAM_READWRITE);
    gimp_procedure_add_choice_argument(procedure, "device", "_Device", "Where to compute",
                                       gimp_choice_new_with_values("auto", ST_DEVICE_AUTO, "Automatic (GPU if present)",
                                                                   NULL, "cpu", ST_DEVICE_CPU, "CPU", NULL, "gpu",
                                                                   ST_DEVICE_GPU, "GPU (CUDA)", NULL, NULL),
                                       "auto", G_PARAM_READWRITE);
    return procedure;
}

static void st_plug_in_class_init(StPlugInClass *klass) {
    GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS(klass);
    plug_in_class->query_procedures = st_query_procedures;
    plug_in_class->create_procedure = st_create_procedure;
}

static void st_plug_in_init(StPlugIn *self) {
    (void)self;
}
