/*
 * The part of the GIMP filter shared by the GIMP 2.10 and GIMP 3.0 shims:
 * parameters, their validation, and the processing of one drawable region
 * (GEGL buffers in, shadow buffer out) through the styletransfer C ABI.
 * Nothing here calls libgimp; each shim does registration, dialog,
 * selection, progress and PDB errors with its own API.
 */
#ifndef ST_GIMP_H
#define ST_GIMP_H

#include <gegl.h>
#include <glib.h>

#include <styletransfer.h>

#define ST_GIMP_PROC "plug-in-style-transfer"
#define ST_GIMP_BINARY "style-transfer"
#define ST_GIMP_MENU_LABEL "Style _Transfer..."
#define ST_GIMP_MENU_PATH "<Image>/Filters/Artistic"
#define ST_GIMP_BLURB "Repaint the layer in the manner of a style image (neural style transfer)"
#define ST_GIMP_HELP                                                                                   \
    "Neural style transfer (Gatys et al.) on the layer's own pixels, in process. The style is an "  \
    "image file or a style pack (.stpack). Strength 0..1 sets the balance between the layer's "     \
    "content and the style (0.5 is the default balance; each 0.25 multiplies or divides the style " \
    "weight by 10). Iterations are optimiser evaluations per scale of the coarse-to-fine pyramid. "  \
    "Quality sets the working size: preview 256 px, normal 512 px, high 1024 px (never more than "   \
    "the region). Preserve colour keeps the layer's colours (luminance-only transfer). Device: 0 "   \
    "auto, 1 CPU, 2 GPU. Works on RGB, RGBA, gray and gray-alpha layers at 8-bit, 16-bit and float " \
    "precision; alpha is untouched; the selection is honoured."
#define ST_GIMP_AUTHOR "styletransfer authors"
#define ST_GIMP_DATE "2026"

enum { ST_QUALITY_PREVIEW = 0, ST_QUALITY_NORMAL = 1, ST_QUALITY_HIGH = 2 };
enum { ST_DEVICE_AUTO = 0, ST_DEVICE_CPU = 1, ST_DEVICE_GPU = 2 };

/* The filter's parameters (also the "last values" blob: plain data only). */
typedef struct {
    gchar style[1024];   /* image file or .stpack */
    gdouble strength;    /* 0..1 */
    gint iterations;     /* 1..5000 */
    gint quality;        /* ST_QUALITY_* */
    gint preserve_color; /* boolean */
    gint device;         /* ST_DEVICE_* */
} StGimpParams;

void st_gimp_params_default(StGimpParams *params);

/* Checks ranges; on failure returns FALSE and sets *error (g_free it). */
gboolean st_gimp_params_check(const StGimpParams *params, gchar **error);

/* The working long side for a quality preset and a region. */
guint st_gimp_working_size(gint quality, gint width, gint height);

/* Layer storage: 0 = 8-bit, 1 = 16-bit, 2 = float (anything else). */
typedef enum { ST_GIMP_U8, ST_GIMP_U16, ST_GIMP_FLOAT } StGimpDepth;

/* Progress: fraction 0..1; return non-zero to cancel. */
typedef int (*StGimpProgressFn)(void *user_data, double fraction);

/*
 * Stylises `rect` of `source` into the same rectangle of `target` (the
 * drawable's shadow buffer). `gray`/`alpha` describe the drawable, `depth`
 * its precision. Returns TRUE on success; on failure sets *error (g_free it)
 * and writes nothing. Cancelled runs fail with the message "Cancelled".
 */
gboolean st_gimp_process(const StGimpParams *params, GeglBuffer *source, GeglBuffer *target,
                         const GeglRectangle *rect, gboolean gray, gboolean alpha, StGimpDepth depth,
                         StGimpProgressFn progress, void *progress_data, gchar **error);

#endif
