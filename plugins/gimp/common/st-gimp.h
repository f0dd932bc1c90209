/*
 * The part of the GIMP filter shared by the GIMP 2.10 and GIMP 3.0 shims:
 * parameters and their validation, and the whole filtering of a drawable
 * (selection, GEGL buffers, shadow buffer, merge, progress) through the
 * styletransfer C ABI. It uses only the libgimp calls both versions have;
 * they differ in how a drawable is named (an ID in 2.10, an object in 3.0),
 * which StGimpDrawable hides. Each shim keeps registration, run modes,
 * dialog and last values.
 */
#ifndef ST_GIMP_H
#define ST_GIMP_H

#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>

#include <styletransfer.h>

#define ST_GIMP_PROC "plug-in-style-transfer"
#define ST_GIMP_BINARY "style-transfer"
#define ST_GIMP_MENU_LABEL "Style _Transfer..."
#define ST_GIMP_MENU_PATH "<Image>/Filters/Artistic"
#define ST_GIMP_BLURB "Repaint the layer in the manner of a style image (neural style transfer)"
#define ST_GIMP_HELP                                                                                   \
    "Neural style transfer on the layer's own pixels, in process. Engine 0 optimises the layer "     \
    "against the style (Gatys et al.); engine 1 runs a network trained on a style with `stylize "    \
    "train` (a .stnet file) in one pass, at the layer's own size, for which the style, iterations "  \
    "and quality do not apply. The style is an "                                                    \
    "image file or a style pack (.stpack). Strength 0..1 sets the balance between the layer's "     \
    "content and the style (0.5 is the default balance; each 0.25 multiplies or divides the style " \
    "weight by 10). Iterations are optimiser evaluations per scale of the coarse-to-fine pyramid. "  \
    "Quality sets the working size: preview 256 px, normal 512 px, high 1024 px (never more than "   \
    "the region). Preserve colour keeps the layer's colours (luminance-only transfer). Device: 0 "   \
    "auto, 1 CPU, 2 GPU. Works on RGB, RGBA, gray and gray-alpha layers at 8-bit, 16-bit and float " \
    "precision; alpha is untouched; the selection is honoured."
#define ST_GIMP_AUTHOR "styletransfer authors"
#define ST_GIMP_DATE "2026"

/* The quality argument as scripts pass it (0..2); the library's st_quality
 * numbers the same presets from ST_QUALITY_PREVIEW. The device argument
 * uses the library's st_device_choice values (0 auto, 1 CPU, 2 GPU). */
enum { ST_GIMP_QUALITY_PREVIEW = 0, ST_GIMP_QUALITY_NORMAL = 1, ST_GIMP_QUALITY_HIGH = 2 };
/* The engine argument uses the library's st_engine values (0 optimise, 1 network). */

/* The filter's parameters (also the "last values" blob: plain data only). */
typedef struct {
    gchar style[1024];   /* image file or .stpack */
    gdouble strength;    /* 0..1 */
    gint iterations;     /* 1..5000 */
    gint quality;        /* ST_GIMP_QUALITY_* */
    gint preserve_color; /* boolean */
    gint device;         /* st_device_choice */
    gint engine;         /* st_engine */
    gchar network[1024]; /* .stnet, for ST_ENGINE_NETWORK */
} StGimpParams;

void st_gimp_params_default(StGimpParams *params);

/* Checks ranges; on failure returns FALSE and sets *error (g_free it). */
gboolean st_gimp_params_check(const StGimpParams *params, gchar **error);

#if GIMP_MAJOR_VERSION >= 3
typedef GimpDrawable *StGimpDrawable;
#else
typedef gint32 StGimpDrawable;
#endif

/*
 * Stylises the selected part of `drawable` (all of it without a selection)
 * as one undo step, with GIMP's progress bar; `flush` updates the displays
 * afterwards (not in non-interactive runs). Returns GIMP_PDB_SUCCESS, or
 * GIMP_PDB_CANCEL, GIMP_PDB_CALLING_ERROR or GIMP_PDB_EXECUTION_ERROR with
 * *error set (g_free it); on failure the drawable is untouched.
 */
GimpPDBStatusType st_gimp_filter(const StGimpParams *params, StGimpDrawable drawable, gboolean flush,
                                 gchar **error);

/*
 * A dialog's preview: a context kept between renders of the preview,
 * made again when the device or the network file changes. Zero it before
 * first use; st_gimp_preview_free releases it.
 */
typedef struct {
    st_context *ctx;
    gint device;
    gchar network[1024];
} StGimpPreview;

/*
 * Draws the visible part of `preview` (a GimpDrawablePreview of `drawable`):
 * stylised with the network when `params` choose the network engine and
 * name a network that loads, else the layer as it is (the optimiser takes
 * too long for a preview). Returns FALSE with *error set (g_free it) when
 * the network could not be run; the layer is drawn then.
 */
gboolean st_gimp_preview_update(StGimpPreview *state, const StGimpParams *params, GimpPreview *preview,
                                StGimpDrawable drawable, gchar **error);

void st_gimp_preview_free(StGimpPreview *state);

/*
 * A combo box of the style packs in the style folders, each with its
 * thumbnail: value 0 "(the style image below)", value N the Nth pack of
 * st_list_styles. `active` is selected; `changed` is called with the new
 * value (gimp_int_combo_box_connect).
 */
GtkWidget *st_gimp_pack_combo(gint active, GCallback changed, gpointer data);

#endif
