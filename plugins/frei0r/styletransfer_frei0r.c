/*
 * frei0r filter for video editors and pipelines (FFmpeg's `frei0r` filter,
 * MLT and so Kdenlive and Shotcut): neural style transfer through the
 * styletransfer C ABI. It translates frei0r's calls into the library's and
 * converts no pixels: frames are RGBA8888, which the library reads and
 * writes as ST_PIXEL_RGBA8, alpha copied through untouched.
 *
 * Parameters, in this order, so that FFmpeg's positional
 * `filter_params=/path/style.jpg` alone works:
 *   0 style       string  a style image (any format the library reads), a
 *                         `.stpack` file, or the name of an installed style
 *                         pack, any case (st_add_style_named)
 *   1 strength    double  0..1, st_set_strength (default 0.5)
 *   2 iterations  double  optimiser evaluations per pyramid level, rounded;
 *                         below 1 means the default (100)
 *   3 quality     double  working size: the long side in pixels at which the
 *                         frame is optimised, rounded; 0 means the frame's
 *                         own, at most 512 (the library's default)
 * Values are taken as they are, not scaled from 0..1 (frei0r's habit for
 * doubles) except strength, which is 0..1 anyway.
 *
 * One library handle per instance, created at the first frame that has a
 * style (device "auto", so CUDA when present); style targets are cached by
 * the library until the style parameter changes. Each frame is stylised on
 * its own: `time` is not used (the engine has no temporal mode yet).
 *
 * The library is loaded privately (dlopen with RTLD_DEEPBIND) from
 * styletransfer/lib/ beside this file. Hosts load other libraries first:
 * FFmpeg and MLT bring Debian's reference BLAS (libblas.so.3), and
 * libtorch_cpu.so exports the BLAS names it defines (sgemm_ ...) without
 * binding its own calls to them, so that in a plain load its matrix
 * products would run in the host's BLAS: slower, and with other rounding
 * (frames then differed from the CLI's by up to 8/255). With RTLD_DEEPBIND the library and
 * libtorch find their own symbols first. AddressSanitizer refuses
 * RTLD_DEEPBIND, so the sanitizer build of this file (ST_FREI0R_NO_DEEPBIND)
 * loads the library plainly; its test driver loads no BLAS.
 *
 * frei0r has no error channel. On any failure (no style, a missing or
 * unreadable style, no model, out of memory...) the filter copies the frame
 * through unchanged and writes one line to standard error, once per
 * distinct message and instance (at most 16 per instance), starting
 * "styletransfer frei0r:". RTLD_DEEPBIND has a cost where a host replaces
 * malloc (tcmalloc or jemalloc through LD_PRELOAD): the library's own calls
 * then reach the C library's malloc and free while the host's reach its
 * allocator; nothing is freed across the ABI, and neither FFmpeg nor MLT
 * replaces malloc.
 */
#define _GNU_SOURCE /* RTLD_DEEPBIND, dladdr */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <frei0r.h>
#include <styletransfer.h>

enum { P_STYLE, P_STRENGTH, P_ITERATIONS, P_QUALITY, PARAM_COUNT };

#define DEFAULT_STRENGTH 0.5
#define DEFAULT_ITERATIONS 100
#define MAX_REPORTED 16
#define LIBRARY_PATH "styletransfer/lib/libstyletransfer.so" /* beside this file */

/* The library's functions this filter calls, resolved from the private load. */
static struct {
    __typeof__(st_create) *create;
    __typeof__(st_destroy) *destroy;
    __typeof__(st_last_error) *last_error;
    __typeof__(st_status_str) *status_str;
    __typeof__(st_set_strength) *set_strength;
    __typeof__(st_clear_styles) *clear_styles;
    __typeof__(st_add_style_named) *add_style_named;
    __typeof__(st_default_run_options) *default_run_options;
    __typeof__(st_run) *run;
    int ready;
    char error[4096 + 256];
} st;
static pthread_once_t st_once = PTHREAD_ONCE_INIT;

#define RESOLVE(field, name)                                                                  \
    do {                                                                                      \
        *(void **)&st.field = dlsym(library, #name);                                          \
        if (!st.field) {                                                                      \
            snprintf(st.error, sizeof st.error, "%s lacks %s (an older library?)", path, #name); \
            return;                                                                           \
        }                                                                                     \
    } while (0)

static void load_library(void) {
    Dl_info self;
    char path[4096];
    if (!dladdr((void *)&load_library, &self) || !self.dli_fname) {
        snprintf(st.error, sizeof st.error, "cannot find this plug-in's own folder");
        return;
    }
    const char *slash = strrchr(self.dli_fname, '/');
    int folder = slash ? (int)(slash - self.dli_fname) + 1 : 0;
    snprintf(path, sizeof path, "%.*s%s", folder, self.dli_fname, LIBRARY_PATH);
#ifdef ST_FREI0R_NO_DEEPBIND
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
#else
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
    if (!library) {
        snprintf(st.error, sizeof st.error, "cannot load the library: %s", dlerror());
        return;
    }
    RESOLVE(create, st_create);
    RESOLVE(destroy, st_destroy);
    RESOLVE(last_error, st_last_error);
    RESOLVE(status_str, st_status_str);
    RESOLVE(set_strength, st_set_strength);
    RESOLVE(clear_styles, st_clear_styles);
    RESOLVE(add_style_named, st_add_style_named);
    RESOLVE(default_run_options, st_default_run_options);
    RESOLVE(run, st_run);
    st.ready = 1; /* never unloaded: libtorch does not support it */
}

typedef struct {
    unsigned width, height;
    char *style;           /* the parameter as set ("" when unset) */
    char *loaded_style;    /* the style the handle holds, NULL for none */
    char *failed_style;    /* a style that failed to load, not retried until it changes */
    double strength, iterations, quality;
    st_context *ctx;
    int create_failed;     /* st_create failed: not retried */
    char *reported[MAX_REPORTED]; /* messages already written */
    int reported_count;
} instance;

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

/* Writes a message once per instance: repeats, and any message after the
 * first MAX_REPORTED distinct ones, are dropped. */
static void report(instance *inst, const char *format, ...) {
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    for (int i = 0; i < inst->reported_count; i++)
        if (strcmp(inst->reported[i], message) == 0) return;
    char *kept = inst->reported_count < MAX_REPORTED ? copy_string(message) : NULL;
    if (!kept) return;
    inst->reported[inst->reported_count++] = kept;
    fprintf(stderr, "styletransfer frei0r: %s; frames pass through unchanged\n", message);
}

int f0r_init(void) { return 1; }

void f0r_deinit(void) {}

void f0r_get_plugin_info(f0r_plugin_info_t *info) {
    info->name = "styletransfer";
    info->author = "styletransfer";
    info->plugin_type = F0R_PLUGIN_TYPE_FILTER;
    info->color_model = F0R_COLOR_MODEL_RGBA8888;
    info->frei0r_version = FREI0R_MAJOR_VERSION;
    info->major_version = ST_VERSION_MAJOR;
    info->minor_version = ST_VERSION_MINOR;
    info->num_params = PARAM_COUNT;
    info->explanation = "Neural style transfer (Gatys et al.): repaints each frame in the style of an image or style pack";
}

void f0r_get_param_info(f0r_param_info_t *info, int index) {
    switch (index) {
    case P_STYLE:
        info->name = "style";
        info->type = F0R_PARAM_STRING;
        info->explanation = "Style image or .stpack file, or the name of an installed style pack";
        break;
    case P_STRENGTH:
        info->name = "strength";
        info->type = F0R_PARAM_DOUBLE;
        info->explanation = "Style strength, 0..1 (0.5: the default balance)";
        break;
    case P_ITERATIONS:
        info->name = "iterations";
        info->type = F0R_PARAM_DOUBLE;
        info->explanation = "Optimiser evaluations per pyramid level (below 1: 100)";
        break;
    case P_QUALITY:
        info->name = "quality";
        info->type = F0R_PARAM_DOUBLE;
        info->explanation = "Working size: long side in pixels (0: the frame's, at most 512)";
        break;
    default:
        break;
    }
}

f0r_instance_t f0r_construct(unsigned int width, unsigned int height) {
    instance *inst = calloc(1, sizeof *inst);
    if (!inst) return NULL;
    inst->width = width;
    inst->height = height;
    inst->style = copy_string("");
    inst->strength = DEFAULT_STRENGTH;
    inst->iterations = DEFAULT_ITERATIONS;
    inst->quality = 0;
    if (!inst->style) {
        free(inst);
        return NULL;
    }
    return inst;
}

void f0r_destruct(f0r_instance_t handle) {
    instance *inst = handle;
    if (!inst) return;
    if (inst->ctx) st.destroy(inst->ctx);
    free(inst->style);
    free(inst->loaded_style);
    free(inst->failed_style);
    for (int i = 0; i < inst->reported_count; i++) free(inst->reported[i]);
    free(inst);
}

void f0r_set_param_value(f0r_instance_t handle, f0r_param_t param, int index) {
    instance *inst = handle;
    if (!inst || !param) return;
    switch (index) {
    case P_STYLE: {
        const char *value = *(f0r_param_string *)param;
        char *copy = copy_string(value ? value : "");
        if (copy) {
            free(inst->style);
            inst->style = copy;
        }
        break;
    }
    case P_STRENGTH:
        inst->strength = *(f0r_param_double *)param;
        break;
    case P_ITERATIONS:
        inst->iterations = *(f0r_param_double *)param;
        break;
    case P_QUALITY:
        inst->quality = *(f0r_param_double *)param;
        break;
    default:
        break;
    }
}

void f0r_get_param_value(f0r_instance_t handle, f0r_param_t param, int index) {
    instance *inst = handle;
    if (!inst || !param) return;
    switch (index) {
    case P_STYLE:
        *(f0r_param_string *)param = inst->style;
        break;
    case P_STRENGTH:
        *(f0r_param_double *)param = inst->strength;
        break;
    case P_ITERATIONS:
        *(f0r_param_double *)param = inst->iterations;
        break;
    case P_QUALITY:
        *(f0r_param_double *)param = inst->quality;
        break;
    default:
        break;
    }
}

/* Loads inst->style into the handle: a file, or an installed pack's name. */
static int load_style(instance *inst) {
    st.clear_styles(inst->ctx);
    if (st.add_style_named(inst->ctx, inst->style, 1.0f) != ST_OK) {
        report(inst, "cannot load the style \"%s\": %s", inst->style, st.last_error(inst->ctx));
        return 0;
    }
    return 1;
}

/* The handle, with the style parameter loaded; NULL (reported) when not possible. */
static st_context *ready_context(instance *inst) {
    if (inst->style[0] == '\0') {
        report(inst, "no style set (parameter 0: an image, a .stpack file or an installed pack's name)");
        return NULL;
    }
    if (!inst->ctx) {
        if (inst->create_failed) return NULL;
        pthread_once(&st_once, load_library);
        if (!st.ready) {
            inst->create_failed = 1;
            report(inst, "%s", st.error);
            return NULL;
        }
        st_status status = st.create(NULL, &inst->ctx);
        if (status != ST_OK) {
            inst->create_failed = 1;
            report(inst, "cannot start the engine: %s: %s", st.status_str((int)status), st.last_error(NULL));
            return NULL;
        }
    }
    if (inst->loaded_style && strcmp(inst->loaded_style, inst->style) == 0) return inst->ctx;
    if (inst->failed_style && strcmp(inst->failed_style, inst->style) == 0) return NULL;
    free(inst->loaded_style);
    inst->loaded_style = NULL;
    free(inst->failed_style);
    inst->failed_style = NULL;
    if (!load_style(inst)) {
        inst->failed_style = copy_string(inst->style);
        return NULL;
    }
    inst->loaded_style = copy_string(inst->style);
    return inst->ctx;
}

void f0r_update(f0r_instance_t handle, double time, const uint32_t *inframe, uint32_t *outframe) {
    (void)time;
    instance *inst = handle;
    if (!inst || !inframe || !outframe) return;
    size_t bytes = (size_t)inst->width * inst->height * 4;
    st_context *ctx = ready_context(inst);
    if (!ctx) {
        if (outframe != inframe) memmove(outframe, inframe, bytes);
        return;
    }
    st_run_options options;
    st.default_run_options(&options);
    options.iterations = inst->iterations >= 1 ? (uint32_t)fmin(round(inst->iterations), 100000.0) : DEFAULT_ITERATIONS;
    if (inst->quality >= 1) options.working_size = (uint32_t)fmin(round(inst->quality), (double)ST_MAX_SIDE + 1);
    st_image in = {(void *)inframe, inst->width, inst->height, (size_t)inst->width * 4, ST_PIXEL_RGBA8, 0};
    st_image out = {outframe, inst->width, inst->height, (size_t)inst->width * 4, ST_PIXEL_RGBA8, 0};
    st_status status = st.set_strength(ctx, (float)inst->strength);
    if (status == ST_OK) status = st.run(ctx, &in, &out, &options, NULL, NULL);
    if (status != ST_OK) {
        report(inst, "%s", st.last_error(ctx));
        if (outframe != inframe) memmove(outframe, inframe, bytes);
    }
}
