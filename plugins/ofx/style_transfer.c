/*
 * OpenFX node for compositing hosts (Natron, Nuke, Resolve/Fusion, Vegas):
 * neural style transfer through the styletransfer C ABI.
 *
 * Contexts filter and general. Clips: Source; optional Style (a frame from
 * another node used as the style); optional Mask (its alpha blends the result
 * with the source); Output. Depths byte, short and float; RGBA and RGB;
 * the host's images go to the library as they are (rows bottom-up,
 * premultiplied or not: st_image flags), and the library converts the
 * result into the output's render window (st_convert_image), so this file
 * converts no pixels; render scale honoured; the host's
 * abort() is polled after every optimiser evaluation; the progress suite is
 * used when present; render thread safety is instance-safe (one render at a
 * time per instance, instances in parallel); style targets are cached per
 * instance until a style parameter (or the style clip's pixels) changes.
 * Engine "Network" runs each frame through one pass of a network trained
 * with `stylize train` (a .stnet file, loaded once per instance until the
 * file parameter or the device changes) at the frame's own size: the style
 * parameters, iterations, quality and the temporal modes do not apply.
 *
 * Every failure is an error status with a persistent message through the
 * message suite, cleared by the next successful render.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ofxCore.h"
#include "ofxImageEffect.h"
#include "ofxMessage.h"
#include "ofxProgress.h"
#include "ofxProperty.h"
#include "ofxParam.h"

#include <styletransfer.h>

#define PLUGIN_ID "org.styletransfer.StyleTransfer"
#define PLUGIN_VERSION_MAJOR 1 /* changes only when saved projects would break */
#define PLUGIN_VERSION_MINOR 0

#define CLIP_STYLE "Style"
#define CLIP_MASK "Mask"

#define P_STYLE_FILE "styleFile"
#define P_STYLE_PACK "stylePack"
#define P_STRENGTH "strength"
#define P_ITERATIONS "iterations"
#define P_QUALITY "quality"
#define P_PRESERVE "preserveColor"
#define P_SEED "seed"
#define P_TEMPORAL "temporal"
#define P_TEMPORAL_WEIGHT "temporalWeight"
#define P_DEVICE "device"
#define P_ENGINE "engine"
#define P_NETWORK_FILE "networkFile"

static OfxHost *host;
static const OfxPropertySuiteV1 *props;
static const OfxImageEffectSuiteV1 *effects;
static const OfxParameterSuiteV1 *params;
static const OfxMessageSuiteV2 *messages2;
static const OfxMessageSuiteV1 *messages1;
static const OfxProgressSuiteV1 *progress;

/* Per-instance state, behind kOfxPropInstanceData. */
typedef struct {
    st_context *ctx;       /* created at first render, for `device` */
    int ctx_device;        /* the device choice it was made for */
    char *style_key;       /* what the loaded style came from (NULL: none) */
    char *network_key;     /* the network file loaded into ctx (NULL: none) */
    void *last_output;     /* last rendered frame, RGBA float top-down (temporal mode) */
    int last_width, last_height;
    double last_time;
} Instance;

/* ---------- small helpers ---------- */

static Instance *instance_of(OfxImageEffectHandle effect) {
    OfxPropertySetHandle effect_props;
    void *data = NULL;
    effects->getPropertySet(effect, &effect_props);
    props->propGetPointer(effect_props, kOfxPropInstanceData, 0, &data);
    return data;
}

/* A persistent message of `type` on the instance (shown by the host until cleared). */
static void post(OfxImageEffectHandle effect, const char *type, const char *format, va_list args) {
    char text[1024];
    vsnprintf(text, sizeof text, format, args);
    if (messages2)
        messages2->setPersistentMessage(effect, type, "", "%s", text);
    else if (messages1)
        messages1->message(effect, type, "", "%s", text);
}

/* A persistent error; returns `status`. */
static OfxStatus fail(OfxImageEffectHandle effect, OfxStatus status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    post(effect, kOfxMessageError, format, args);
    va_end(args);
    return status;
}

/* A persistent warning (the render succeeded). */
static void warn(OfxImageEffectHandle effect, const char *format, ...) {
    va_list args;
    va_start(args, format);
    post(effect, kOfxMessageWarning, format, args);
    va_end(args);
}

static void clear_message(OfxImageEffectHandle effect) {
    if (messages2) messages2->clearPersistentMessage(effect);
}

static OfxParamHandle param(OfxImageEffectHandle effect, const char *name) {
    OfxParamSetHandle set;
    OfxParamHandle handle = NULL;
    effects->getParamSet(effect, &set);
    params->paramGetHandle(set, name, &handle, NULL);
    return handle;
}

static int style_packs(st_style_list **list) {
    *list = NULL;
    return st_list_styles(list) == ST_OK;
}

/* ---------- describe ---------- */

static OfxStatus describe(OfxImageEffectHandle effect) {
    OfxPropertySetHandle p;
    effects->getPropertySet(effect, &p);
    props->propSetString(p, kOfxPropLabel, 0, "Style Transfer");
    props->propSetString(p, kOfxImageEffectPluginPropGrouping, 0, "Filter");
    props->propSetString(p, kOfxPropPluginDescription, 0,
                         "Neural style transfer (Gatys et al.): repaints the source in the manner of a style image, "
                         "a style pack, or a frame from the Style input.");
    props->propSetString(p, kOfxImageEffectPropSupportedContexts, 0, kOfxImageEffectContextFilter);
    props->propSetString(p, kOfxImageEffectPropSupportedContexts, 1, kOfxImageEffectContextGeneral);
    props->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 0, kOfxBitDepthByte);
    props->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 1, kOfxBitDepthShort);
    props->propSetString(p, kOfxImageEffectPropSupportedPixelDepths, 2, kOfxBitDepthFloat);
    props->propSetInt(p, kOfxImageEffectPropSupportsMultiResolution, 0, 1);
    props->propSetInt(p, kOfxImageEffectPropSupportsTiles, 0, 0); /* the whole frame is optimised at once */
    /* Temporal modes read the Source at the frame before. */
    props->propSetInt(p, kOfxImageEffectPropTemporalClipAccess, 0, 1);
    props->propSetInt(p, kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0);
    props->propSetString(p, kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderInstanceSafe);
    props->propSetInt(p, kOfxImageEffectPluginPropHostFrameThreading, 0, 0);
    return kOfxStatOK;
}

static void define_clip(OfxImageEffectHandle effect, const char *name, int optional, int mask) {
    OfxPropertySetHandle p;
    effects->clipDefine(effect, name, &p);
    if (mask) {
        props->propSetString(p, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentAlpha);
        props->propSetString(p, kOfxImageEffectPropSupportedComponents, 1, kOfxImageComponentRGBA);
        props->propSetInt(p, kOfxImageClipPropIsMask, 0, 1);
    } else {
        props->propSetString(p, kOfxImageEffectPropSupportedComponents, 0, kOfxImageComponentRGBA);
        props->propSetString(p, kOfxImageEffectPropSupportedComponents, 1, kOfxImageComponentRGB);
    }
    props->propSetInt(p, kOfxImageClipPropOptional, 0, optional);
    props->propSetInt(p, kOfxImageEffectPropSupportsTiles, 0, 0);
    props->propSetInt(p, kOfxImageEffectPropTemporalClipAccess, 0, !strcmp(name, kOfxImageEffectSimpleSourceClipName));
}

static OfxPropertySetHandle define(OfxParamSetHandle set, const char *type, const char *name, const char *label,
                                   const char *hint) {
    OfxPropertySetHandle p;
    params->paramDefine(set, type, name, &p);
    props->propSetString(p, kOfxPropLabel, 0, label);
    props->propSetString(p, kOfxParamPropHint, 0, hint);
    return p;
}

static OfxStatus describe_in_context(OfxImageEffectHandle effect) {
    define_clip(effect, kOfxImageEffectSimpleSourceClipName, 0, 0);
    define_clip(effect, CLIP_STYLE, 1, 0);
    define_clip(effect, CLIP_MASK, 1, 1);
    define_clip(effect, kOfxImageEffectOutputClipName, 0, 0);

    OfxParamSetHandle set;
    effects->getParamSet(effect, &set);
    OfxPropertySetHandle p;
    p = define(set, kOfxParamTypeChoice, P_ENGINE, "Engine",
               "Optimise: repaint each frame by optimisation against the style (best quality; seconds to minutes a "
               "frame). Network: one pass of a network trained on the style with `stylize train` (a fraction of a "
               "second a frame; the style and quality parameters do not apply).");
    props->propSetString(p, kOfxParamPropChoiceOption, 0, "Optimise");
    props->propSetString(p, kOfxParamPropChoiceOption, 1, "Network");
    props->propSetInt(p, kOfxParamPropDefault, 0, 0);
    props->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define(set, kOfxParamTypeString, P_NETWORK_FILE, "Network file",
               "The network (.stnet) the Network engine runs, as `stylize train` writes it.");
    props->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsFilePath);
    props->propSetInt(p, kOfxParamPropStringFilePathExists, 0, 1);
    props->propSetString(p, kOfxParamPropDefault, 0, "");
    props->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define(set, kOfxParamTypeString, P_STYLE_FILE, "Style file",
               "A style image or a style pack (.stpack). Used when no pack is chosen and the Style input is empty.");
    props->propSetString(p, kOfxParamPropStringMode, 0, kOfxParamStringIsFilePath);
    props->propSetInt(p, kOfxParamPropStringFilePathExists, 0, 1);
    props->propSetString(p, kOfxParamPropDefault, 0, "");

    p = define(set, kOfxParamTypeChoice, P_STYLE_PACK, "Style pack",
               "A style pack from the style folders (ST_STYLE_PATH, ~/.local/share/styletransfer/styles, installed).");
    props->propSetString(p, kOfxParamPropChoiceOption, 0, "(style file or Style input)");
    st_style_list *list;
    if (style_packs(&list)) {
        for (size_t i = 0; i < list->count; i++)
            props->propSetString(p, kOfxParamPropChoiceOption, (int)i + 1, list->entries[i].name);
    }
    st_style_list_free(list);
    props->propSetInt(p, kOfxParamPropDefault, 0, 0);
    props->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    p = define(set, kOfxParamTypeDouble, P_STRENGTH, "Strength",
               "Style strength 0..1: 0.5 is the default balance; each 0.25 multiplies or divides the style weight by 10.");
    props->propSetDouble(p, kOfxParamPropDefault, 0, 0.5);
    props->propSetDouble(p, kOfxParamPropMin, 0, 0.0);
    props->propSetDouble(p, kOfxParamPropMax, 0, 1.0);
    props->propSetDouble(p, kOfxParamPropDisplayMin, 0, 0.0);
    props->propSetDouble(p, kOfxParamPropDisplayMax, 0, 1.0);

    p = define(set, kOfxParamTypeInteger, P_ITERATIONS, "Iterations", "Optimiser evaluations per pyramid scale.");
    props->propSetInt(p, kOfxParamPropDefault, 0, 100);
    props->propSetInt(p, kOfxParamPropMin, 0, 1);
    props->propSetInt(p, kOfxParamPropMax, 0, 5000);
    props->propSetInt(p, kOfxParamPropDisplayMin, 0, 1);
    props->propSetInt(p, kOfxParamPropDisplayMax, 0, 1000);

    p = define(set, kOfxParamTypeChoice, P_QUALITY, "Quality",
               "Working size at render scale 1: preview 256 px, normal 512 px, high 1024 px (never above the frame).");
    props->propSetString(p, kOfxParamPropChoiceOption, 0, "Preview");
    props->propSetString(p, kOfxParamPropChoiceOption, 1, "Normal");
    props->propSetString(p, kOfxParamPropChoiceOption, 2, "High");
    props->propSetInt(p, kOfxParamPropDefault, 0, 1);

    p = define(set, kOfxParamTypeBoolean, P_PRESERVE, "Preserve colour",
               "Keep the source's colours (luminance-only transfer).");
    props->propSetInt(p, kOfxParamPropDefault, 0, 0);

    p = define(set, kOfxParamTypeInteger, P_SEED, "Seed", "Seed of the noise start (used when no previous frame is).");
    props->propSetInt(p, kOfxParamPropDefault, 0, 0);
    props->propSetInt(p, kOfxParamPropMin, 0, 0);

    p = define(set, kOfxParamTypeChoice, P_TEMPORAL, "Temporal",
               "Off: every frame on its own. Start from the previous frame: from its result as it is. Follow the "
               "motion: from its result moved along the optical flow between the two source frames, kept close "
               "to it wherever the flow is reliable (steadiest). Both temporal modes follow the frame before, "
               "which must be the last frame this instance rendered: render the shot in order. A frame rendered "
               "otherwise (alone, as a render-farm job) is rendered on its own, with a warning.");
    props->propSetString(p, kOfxParamPropChoiceOption, 0, "Off");
    props->propSetString(p, kOfxParamPropChoiceOption, 1, "Start from the previous frame");
    props->propSetString(p, kOfxParamPropChoiceOption, 2, "Follow the motion (optical flow)");
    props->propSetInt(p, kOfxParamPropDefault, 0, 0);
    props->propSetInt(p, kOfxParamPropAnimates, 0, 0);

    st_frame frame_defaults;
    st_default_frame(&frame_defaults);
    p = define(set, kOfxParamTypeDouble, P_TEMPORAL_WEIGHT, "Temporal weight",
               "How strongly \"Follow the motion\" keeps each frame to the previous one: higher is steadier, lower "
               "lets the style move more.");
    props->propSetDouble(p, kOfxParamPropDefault, 0, frame_defaults.temporal_weight);
    props->propSetDouble(p, kOfxParamPropMin, 0, 0.0);
    props->propSetDouble(p, kOfxParamPropDisplayMin, 0, 0.0);
    props->propSetDouble(p, kOfxParamPropDisplayMax, 0, 10 * frame_defaults.temporal_weight);

    p = define(set, kOfxParamTypeChoice, P_DEVICE, "Device", "Where to compute.");
    props->propSetString(p, kOfxParamPropChoiceOption, 0, "Automatic");
    props->propSetString(p, kOfxParamPropChoiceOption, 1, "CPU");
    props->propSetString(p, kOfxParamPropChoiceOption, 2, "GPU (CUDA)");
    props->propSetInt(p, kOfxParamPropDefault, 0, 0);
    props->propSetInt(p, kOfxParamPropAnimates, 0, 0);
    return kOfxStatOK;
}

/* ---------- instance life ---------- */

static OfxStatus create_instance(OfxImageEffectHandle effect) {
    Instance *inst = calloc(1, sizeof *inst);
    if (!inst) return kOfxStatErrMemory;
    inst->ctx_device = -1;
    inst->last_time = -1e300;
    OfxPropertySetHandle p;
    effects->getPropertySet(effect, &p);
    props->propSetPointer(p, kOfxPropInstanceData, 0, inst);
    return kOfxStatOK;
}

static void forget_style(Instance *inst) {
    free(inst->style_key);
    inst->style_key = NULL;
}

static void forget_network(Instance *inst) {
    free(inst->network_key);
    inst->network_key = NULL;
}

static OfxStatus destroy_instance(OfxImageEffectHandle effect) {
    Instance *inst = instance_of(effect);
    if (inst) {
        st_destroy(inst->ctx);
        forget_style(inst);
        forget_network(inst);
        free(inst->last_output);
        free(inst);
    }
    return kOfxStatOK;
}

static OfxStatus instance_changed(OfxImageEffectHandle effect, OfxPropertySetHandle in_args) {
    char *type = NULL, *name = NULL;
    props->propGetString(in_args, kOfxPropType, 0, &type);
    props->propGetString(in_args, kOfxPropName, 0, &name);
    Instance *inst = instance_of(effect);
    if (!inst || !type || !name) return kOfxStatReplyDefault;
    if ((strcmp(type, kOfxTypeParameter) == 0 && (!strcmp(name, P_STYLE_FILE) || !strcmp(name, P_STYLE_PACK))) ||
        (strcmp(type, kOfxTypeClip) == 0 && strcmp(name, CLIP_STYLE) == 0))
        forget_style(inst);
    if (strcmp(type, kOfxTypeParameter) == 0 && strcmp(name, P_NETWORK_FILE) == 0) forget_network(inst);
    if (strcmp(type, kOfxTypeParameter) == 0 && strcmp(name, P_DEVICE) == 0) {
        st_destroy(inst->ctx); /* made again for the new device at the next render */
        inst->ctx = NULL;
        forget_style(inst);
        forget_network(inst);
    }
    return kOfxStatOK;
}

static OfxStatus purge_caches(OfxImageEffectHandle effect) {
    Instance *inst = instance_of(effect);
    if (inst) {
        st_destroy(inst->ctx);
        inst->ctx = NULL;
        forget_style(inst);
        forget_network(inst);
        free(inst->last_output);
        inst->last_output = NULL;
    }
    return kOfxStatOK;
}

/* ---------- regions and preferences ---------- */

static OfxStatus regions_of_interest(OfxImageEffectHandle effect, OfxPropertySetHandle in_args,
                                     OfxPropertySetHandle out_args) {
    /* Style transfer is global: the whole source (and style) frame is needed. */
    OfxTime time;
    props->propGetDouble(in_args, kOfxPropTime, 0, &time);
    const char *names[2] = {kOfxImageEffectSimpleSourceClipName, CLIP_STYLE};
    const char *keys[2] = {"OfxImageClipPropRoI_" kOfxImageEffectSimpleSourceClipName, "OfxImageClipPropRoI_" CLIP_STYLE};
    for (int i = 0; i < 2; i++) {
        OfxImageClipHandle clip;
        OfxRectD rod;
        OfxPropertySetHandle clip_props;
        int connected = 0;
        if (effects->clipGetHandle(effect, names[i], &clip, &clip_props) != kOfxStatOK) continue;
        props->propGetInt(clip_props, kOfxImageClipPropConnected, 0, &connected);
        if (!connected) continue;
        if (effects->clipGetRegionOfDefinition(clip, time, &rod) != kOfxStatOK) continue;
        props->propSetDoubleN(out_args, keys[i], 4, &rod.x1);
    }
    return kOfxStatOK;
}

/* "Follow the motion" reads the Source at the frame before as well. */
static OfxStatus frames_needed(OfxImageEffectHandle effect, OfxPropertySetHandle in_args,
                               OfxPropertySetHandle out_args) {
    OfxTime time;
    int temporal = 0, engine = 0;
    props->propGetDouble(in_args, kOfxPropTime, 0, &time);
    params->paramGetValueAtTime(param(effect, P_TEMPORAL), time, &temporal);
    params->paramGetValueAtTime(param(effect, P_ENGINE), time, &engine);
    double range[2] = {temporal == 2 && engine == 0 ? time - 1.0 : time, time};
    props->propSetDoubleN(out_args, "OfxImageClipPropFrameRange_" kOfxImageEffectSimpleSourceClipName, 2, range);
    return kOfxStatOK;
}

/* ---------- pixels ---------- */

/* A host image described for the library. OpenFX rows go bottom-up from
 * bounds.y1; a negative row stride stores them top-down. */
typedef struct {
    OfxPropertySetHandle handle; /* NULL for images the plug-in owns */
    OfxRectI bounds;
    size_t pixel_bytes;
    int channels; /* 1 (alpha), 3 or 4 */
    st_image pixels;
} Image;

static int read_image(OfxImageClipHandle clip, OfxTime time, Image *out, char *why, size_t why_size) {
    memset(out, 0, sizeof *out);
    if (effects->clipGetImage(clip, time, NULL, &out->handle) != kOfxStatOK) {
        snprintf(why, why_size, "the host gave no image");
        return 0;
    }
    char *depth = NULL, *components = NULL, *premult = NULL;
    void *data = NULL;
    int row_bytes = 0;
    props->propGetPointer(out->handle, kOfxImagePropData, 0, &data);
    props->propGetIntN(out->handle, kOfxImagePropBounds, 4, &out->bounds.x1);
    props->propGetInt(out->handle, kOfxImagePropRowBytes, 0, &row_bytes);
    props->propGetString(out->handle, kOfxImageEffectPropPixelDepth, 0, &depth);
    props->propGetString(out->handle, kOfxImageEffectPropComponents, 0, &components);
    props->propGetString(out->handle, kOfxImageEffectPropPreMultiplication, 0, &premult);
    int bytes = depth && !strcmp(depth, kOfxBitDepthByte) ? 1 : depth && !strcmp(depth, kOfxBitDepthShort) ? 2
              : depth && !strcmp(depth, kOfxBitDepthFloat) ? 4 : 0;
    out->channels = components && !strcmp(components, kOfxImageComponentRGBA) ? 4
                  : components && !strcmp(components, kOfxImageComponentRGB) ? 3
                  : components && !strcmp(components, kOfxImageComponentAlpha) ? 1 : 0;
    if (!data) {
        snprintf(why, why_size, "the image has no pixels");
        return 0;
    }
    if (!bytes) {
        snprintf(why, why_size, "unsupported pixel depth %s", depth ? depth : "(none)");
        return 0;
    }
    if (!out->channels) {
        snprintf(why, why_size, "unsupported components %s", components ? components : "(none)");
        return 0;
    }
    /* [depth][components]: alpha-only images are gray to the library. */
    static const st_pixel_format formats[3][3] = {
        {ST_PIXEL_GRAY8, ST_PIXEL_RGB8, ST_PIXEL_RGBA8},
        {ST_PIXEL_GRAY16, ST_PIXEL_RGB16, ST_PIXEL_RGBA16},
        {ST_PIXEL_GRAYF32, ST_PIXEL_RGBF32, ST_PIXEL_RGBAF32},
    };
    int w = out->bounds.x2 - out->bounds.x1, h = out->bounds.y2 - out->bounds.y1;
    out->pixel_bytes = (size_t)bytes * out->channels;
    st_image *im = &out->pixels;
    im->format = (uint32_t)formats[bytes == 1 ? 0 : bytes == 2 ? 1 : 2][out->channels == 1 ? 0 : out->channels == 3 ? 1 : 2];
    im->width = (uint32_t)(w > 0 ? w : 0);
    im->height = (uint32_t)(h > 0 ? h : 0);
    if (row_bytes >= 0) {
        im->data = data;
        im->stride_bytes = (size_t)row_bytes;
        im->flags = ST_IMAGE_BOTTOM_UP;
    } else { /* rows stored top-down: start at the top one */
        im->data = (unsigned char *)data + (ptrdiff_t)(h - 1) * row_bytes;
        im->stride_bytes = (size_t)-row_bytes;
        im->flags = 0;
    }
    if (premult && !strcmp(premult, kOfxImagePreMultiplied) && out->channels == 4) im->flags |= ST_IMAGE_PREMULTIPLIED;
    return 1;
}

static void release(Image *image) {
    if (image->handle) effects->clipReleaseImage(image->handle);
    image->handle = NULL;
}

/* An RGBA float image the plug-in owns (zeroed), rows top-down, over `bounds`. */
static int owned_image(Image *out, OfxRectI bounds, st_pixel_format format, int channels, uint32_t flags) {
    memset(out, 0, sizeof *out);
    int w = bounds.x2 - bounds.x1, h = bounds.y2 - bounds.y1;
    out->bounds = bounds;
    out->channels = channels;
    out->pixel_bytes = (size_t)channels * sizeof(float);
    void *data = calloc((size_t)w * h, out->pixel_bytes);
    out->pixels = (st_image){data, (uint32_t)w, (uint32_t)h, (size_t)w * out->pixel_bytes, (uint32_t)format, flags};
    return data != NULL;
}

/* The part `r` (inside the image's bounds) of an image: the same rows, from
 * the first pixel of `r`. */
static st_image region(const Image *im, OfxRectI r) {
    st_image out = im->pixels;
    size_t rows_before = (im->pixels.flags & ST_IMAGE_BOTTOM_UP) ? (size_t)(r.y1 - im->bounds.y1)
                                                                 : (size_t)(im->bounds.y2 - r.y2);
    out.data = (unsigned char *)im->pixels.data + rows_before * im->pixels.stride_bytes +
               (size_t)(r.x1 - im->bounds.x1) * im->pixel_bytes;
    out.width = (uint32_t)(r.x2 - r.x1);
    out.height = (uint32_t)(r.y2 - r.y1);
    return out;
}

static OfxRectI intersection(OfxRectI a, OfxRectI b) {
    OfxRectI r = {a.x1 > b.x1 ? a.x1 : b.x1, a.y1 > b.y1 ? a.y1 : b.y1, a.x2 < b.x2 ? a.x2 : b.x2,
                  a.y2 < b.y2 ? a.y2 : b.y2};
    return r;
}

static int is_empty(OfxRectI r) { return r.x2 <= r.x1 || r.y2 <= r.y1; }

/* FNV-1a over an image's pixel bytes, row by row (padding excluded). */
static uint64_t hash_pixels(const st_image *im, size_t pixel_bytes) {
    uint64_t hash = 1469598103934665603ULL;
    for (uint32_t y = 0; y < im->height; y++) {
        const unsigned char *row = (const unsigned char *)im->data + (size_t)y * im->stride_bytes;
        for (size_t i = 0; i < im->width * pixel_bytes; i++) hash = (hash ^ row[i]) * 1099511628211ULL;
    }
    return hash;
}

/* ---------- render ---------- */

typedef struct {
    OfxImageEffectHandle effect;
    int progress_open;
} RenderState;

static int on_progress(void *user_data, const st_progress *p) {
    RenderState *state = user_data;
    if (effects->abort(state->effect)) return 1;
    if (state->progress_open) {
        double fraction = p->total_evaluations ? (double)p->evaluation / p->total_evaluations : 0.0;
        if (progress->progressUpdate(state->effect, fraction) == kOfxStatReplyNo) return 1;
    }
    return 0;
}

static OfxStatus ensure_context(OfxImageEffectHandle effect, Instance *inst, int device) {
    if (inst->ctx && inst->ctx_device == device) return kOfxStatOK;
    st_destroy(inst->ctx);
    inst->ctx = NULL;
    forget_style(inst);
    forget_network(inst);
    st_options options;
    st_default_options(&options);
    options.device = st_device_name((uint32_t)device);
    if (!options.device) return fail(effect, kOfxStatFailed, "Style Transfer: unknown device choice %d.", device);
    st_status status = st_create(&options, &inst->ctx);
    if (status != ST_OK)
        return fail(effect, kOfxStatFailed, "Style Transfer: cannot start the engine: %s: %s", st_status_str((int)status),
                    st_last_error(NULL));
    inst->ctx_device = device;
    return kOfxStatOK;
}

/* Loads the style (pack, Style input frame, or file) unless the cached one is current. */
static OfxStatus ensure_style(OfxImageEffectHandle effect, Instance *inst, OfxTime time) {
    char key[1400];
    int pack_index = 0;
    char *file = NULL;
    params->paramGetValueAtTime(param(effect, P_STYLE_PACK), time, &pack_index);
    params->paramGetValueAtTime(param(effect, P_STYLE_FILE), time, &file);

    OfxImageClipHandle style_clip;
    int connected = 0;
    if (effects->clipGetHandle(effect, CLIP_STYLE, &style_clip, NULL) == kOfxStatOK) {
        OfxPropertySetHandle cp;
        effects->clipGetPropertySet(style_clip, &cp);
        props->propGetInt(cp, kOfxImageClipPropConnected, 0, &connected);
    }

    if (pack_index > 0) {
        st_style_list *list;
        if (!style_packs(&list) || (size_t)pack_index > list->count) {
            st_style_list_free(list);
            return fail(effect, kOfxStatFailed, "Style Transfer: the chosen style pack is no longer installed.");
        }
        snprintf(key, sizeof key, "pack:%s", list->entries[pack_index - 1].path);
        if (!inst->style_key || strcmp(inst->style_key, key) != 0) {
            forget_style(inst);
            st_clear_styles(inst->ctx);
            if (st_add_style_pack(inst->ctx, list->entries[pack_index - 1].path, 1.0f) != ST_OK) {
                st_style_list_free(list);
                return fail(effect, kOfxStatFailed, "Style Transfer: %s", st_last_error(inst->ctx));
            }
            inst->style_key = strdup(key);
        }
        st_style_list_free(list);
        return kOfxStatOK;
    }

    if (connected) {
        Image style;
        char why[256];
        if (!read_image(style_clip, time, &style, why, sizeof why)) {
            release(&style);
            return fail(effect, kOfxStatFailed, "Style Transfer: Style input: %s.", why);
        }
        /* Key on the pixels: a changed upstream frame is a changed style. */
        snprintf(key, sizeof key, "clip:%ux%u:%u:%u:%016llx", style.pixels.width, style.pixels.height,
                 style.pixels.format, style.pixels.flags,
                 (unsigned long long)hash_pixels(&style.pixels, style.pixel_bytes));
        OfxStatus result = kOfxStatOK;
        if (!inst->style_key || strcmp(inst->style_key, key) != 0) {
            forget_style(inst);
            st_clear_styles(inst->ctx);
            if (st_add_style(inst->ctx, &style.pixels, 1.0f) != ST_OK)
                result = fail(effect, kOfxStatFailed, "Style Transfer: Style input: %s", st_last_error(inst->ctx));
            else
                inst->style_key = strdup(key);
        }
        release(&style);
        return result;
    }

    if (!file || !*file)
        return fail(effect, kOfxStatFailed, "Style Transfer: no style: choose a style file or pack, or connect the Style input.");
    snprintf(key, sizeof key, "file:%s", file);
    if (inst->style_key && strcmp(inst->style_key, key) == 0) return kOfxStatOK;
    forget_style(inst);
    st_clear_styles(inst->ctx);
    if (st_add_style_path(inst->ctx, file, 1.0f) != ST_OK)
        return fail(effect, kOfxStatFailed, "Style Transfer: style file: %s", st_last_error(inst->ctx));
    inst->style_key = strdup(key);
    return kOfxStatOK;
}

/* Loads the network file into the context unless it is the one loaded. */
static OfxStatus ensure_network(OfxImageEffectHandle effect, Instance *inst, OfxTime time) {
    char *file = NULL;
    params->paramGetValueAtTime(param(effect, P_NETWORK_FILE), time, &file);
    if (!file || !*file)
        return fail(effect, kOfxStatFailed, "Style Transfer: the Network engine needs a network file (.stnet).");
    if (inst->network_key && strcmp(inst->network_key, file) == 0) return kOfxStatOK;
    forget_network(inst);
    if (st_load_network(inst->ctx, file) != ST_OK)
        return fail(effect, kOfxStatFailed, "Style Transfer: network file: %s", st_last_error(inst->ctx));
    inst->network_key = strdup(file);
    return kOfxStatOK;
}

static OfxStatus render(OfxImageEffectHandle effect, OfxPropertySetHandle in_args) {
    Instance *inst = instance_of(effect);
    if (!inst) return kOfxStatErrBadHandle;
    OfxTime time;
    OfxRectI window;
    OfxPointD scale = {1.0, 1.0};
    props->propGetDouble(in_args, kOfxPropTime, 0, &time);
    props->propGetIntN(in_args, kOfxImageEffectPropRenderWindow, 4, &window.x1);
    props->propGetDoubleN(in_args, kOfxImageEffectPropRenderScale, 2, &scale.x);
    if (window.x2 <= window.x1 || window.y2 <= window.y1)
        return fail(effect, kOfxStatFailed, "Style Transfer: the render window %d,%d-%d,%d is empty.", window.x1,
                    window.y1, window.x2, window.y2);

    int device = 0, iterations = 100, quality = 1, preserve = 0, seed = 0, temporal = 0, engine = 0;
    double strength = 0.5, temporal_weight = 0;
    params->paramGetValueAtTime(param(effect, P_DEVICE), time, &device);
    params->paramGetValueAtTime(param(effect, P_ITERATIONS), time, &iterations);
    params->paramGetValueAtTime(param(effect, P_QUALITY), time, &quality);
    params->paramGetValueAtTime(param(effect, P_PRESERVE), time, &preserve);
    params->paramGetValueAtTime(param(effect, P_SEED), time, &seed);
    params->paramGetValueAtTime(param(effect, P_TEMPORAL), time, &temporal);
    params->paramGetValueAtTime(param(effect, P_TEMPORAL_WEIGHT), time, &temporal_weight);
    params->paramGetValueAtTime(param(effect, P_STRENGTH), time, &strength);
    params->paramGetValueAtTime(param(effect, P_ENGINE), time, &engine);
    if (engine == 1) temporal = 0; /* a network's frame depends on that frame alone */

    OfxImageClipHandle source_clip, output_clip, mask_clip = NULL;
    effects->clipGetHandle(effect, kOfxImageEffectSimpleSourceClipName, &source_clip, NULL);
    effects->clipGetHandle(effect, kOfxImageEffectOutputClipName, &output_clip, NULL);
    effects->clipGetHandle(effect, CLIP_MASK, &mask_clip, NULL);

    Image source = {0}, output = {0}, mask = {0}, result = {0}, plane = {0}, previous = {0};
    char fallback[320] = "";
    char why[256];
    OfxStatus status = kOfxStatOK;
    if (!read_image(source_clip, time, &source, why, sizeof why)) {
        status = fail(effect, kOfxStatErrUnsupported, "Style Transfer: Source: %s.", why);
        goto done;
    }
    if (source.channels == 1) {
        status = fail(effect, kOfxStatErrUnsupported, "Style Transfer: Source: alpha-only images are not supported.");
        goto done;
    }
    if (!read_image(output_clip, time, &output, why, sizeof why)) {
        status = fail(effect, kOfxStatErrUnsupported, "Style Transfer: Output: %s.", why);
        goto done;
    }
    if ((status = ensure_context(effect, inst, device)) != kOfxStatOK) goto done;
    if ((status = engine == 1 ? ensure_network(effect, inst, time) : ensure_style(effect, inst, time)) != kOfxStatOK)
        goto done;
    if (st_set_strength(inst->ctx, (float)strength) != ST_OK) {
        status = fail(effect, kOfxStatFailed, "Style Transfer: %s", st_last_error(inst->ctx));
        goto done;
    }

    /* The whole source is optimised into an RGBA float frame (straight alpha,
     * kept for temporal mode); its render window goes to the output. */
    int w = source.bounds.x2 - source.bounds.x1, h = source.bounds.y2 - source.bounds.y1;
    if (!owned_image(&result, source.bounds, ST_PIXEL_RGBAF32, 4, 0)) {
        status = fail(effect, kOfxStatErrMemory, "Style Transfer: out of memory.");
        goto done;
    }
    st_run_options run;
    st_default_run_options(&run);
    run.iterations = (uint32_t)(iterations < 1 ? 1 : iterations);
    run.seed = (uint64_t)seed;
    run.preserve_color = preserve ? ST_PRESERVE_COLOR_LUMINANCE : ST_PRESERVE_COLOR_OFF;
    /* The preset is the working size at full resolution; proxies scale it down. */
    run.quality = (uint32_t)(ST_QUALITY_PREVIEW + (quality < 0 ? 0 : quality > 2 ? 2 : quality));
    run.render_scale = (float)scale.x;
    if (engine == 1) { /* the network at the frame's own size (the host scales proxies) */
        run.engine = ST_ENGINE_NETWORK;
        run.quality = ST_QUALITY_CUSTOM;
    }
    /* Temporal modes: the frame before, when this instance rendered it last
     * (its result is kept) and, to follow the motion, the host gives its Source. */
    st_frame frame;
    st_default_frame(&frame);
    frame.temporal = temporal == 2 ? ST_TEMPORAL_FLOW : ST_TEMPORAL_INIT;
    frame.temporal_weight = temporal_weight;
    st_image previous_output;
    if (temporal == 1 || temporal == 2) {
        double range[2] = {0, 0};
        OfxPropertySetHandle cp;
        effects->clipGetPropertySet(source_clip, &cp);
        props->propGetDoubleN(cp, kOfxImageEffectPropFrameRange, 2, range);
        /* A first frame has nothing before it to follow: rendered on its own, no warning. */
        int first = time - 1.0 < range[0] - 1e-6;
        if (first)
            ;
        else if (!inst->last_output || fabs(inst->last_time - (time - 1.0)) > 1e-6)
            snprintf(fallback, sizeof fallback, "frame %g is not the last frame this instance rendered", time - 1.0);
        else if (inst->last_width != w || inst->last_height != h)
            snprintf(fallback, sizeof fallback, "frame %g was rendered at another size", time - 1.0);
        else if (temporal == 2 && !read_image(source_clip, time - 1.0, &previous, why, sizeof why))
            snprintf(fallback, sizeof fallback, "the Source of frame %g: %s", time - 1.0, why);
        else if (temporal == 2 &&
                 (previous.bounds.x2 - previous.bounds.x1 != w || previous.bounds.y2 - previous.bounds.y1 != h))
            snprintf(fallback, sizeof fallback, "the Source of frame %g has another size", time - 1.0);
        else {
            previous_output = (st_image){inst->last_output, (uint32_t)w, (uint32_t)h, (size_t)w * 16, ST_PIXEL_RGBAF32, 0};
            /* "Start from the previous frame" uses only the previous result
             * (the library checks the previous content's size alone). */
            frame.previous_content = temporal == 2 ? &previous.pixels : &source.pixels;
            frame.previous_output = &previous_output;
        }
    }
    int mask_connected = 0;
    if (mask_clip) {
        OfxPropertySetHandle cp;
        effects->clipGetPropertySet(mask_clip, &cp);
        props->propGetInt(cp, kOfxImageClipPropConnected, 0, &mask_connected);
    }
    if (mask_connected) {
        if (!read_image(mask_clip, time, &mask, why, sizeof why)) {
            status = fail(effect, kOfxStatErrUnsupported, "Style Transfer: Mask: %s.", why);
            goto done;
        }
        /* The mask over the source's bounds, 0 where the host gave none: its
         * alpha (RGBA masks) or its only channel (alpha-only masks). */
        int alpha = mask.channels == 4;
        if (!owned_image(&plane, source.bounds, alpha ? ST_PIXEL_RGBAF32 : mask.channels == 3 ? ST_PIXEL_RGBF32
                                                                                                : ST_PIXEL_GRAYF32,
                         mask.channels, alpha ? ST_IMAGE_MASK_ALPHA : 0)) {
            status = fail(effect, kOfxStatErrMemory, "Style Transfer: out of memory.");
            goto done;
        }
        OfxRectI common = intersection(mask.bounds, source.bounds);
        if (!is_empty(common)) {
            st_image from = region(&mask, common), to = region(&plane, common);
            from.flags &= ~(uint32_t)ST_IMAGE_PREMULTIPLIED; /* only its alpha is used */
            if (st_convert_image(&from, &to) != ST_OK) {
                status = fail(effect, kOfxStatFailed, "Style Transfer: Mask: its pixels cannot be read.");
                goto done;
            }
        }
        run.mask = &plane.pixels;
    }

    RenderState state = {effect, 0};
    if (progress && progress->progressStart(effect, "Style Transfer") == kOfxStatOK) state.progress_open = 1;
    st_status ran = temporal == 1 || temporal == 2
                        ? st_run_frame(inst->ctx, &source.pixels, &result.pixels, &run, &frame, on_progress, &state)
                        : st_run(inst->ctx, &source.pixels, &result.pixels, &run, on_progress, &state);
    if (state.progress_open) progress->progressEnd(effect);
    if (ran == ST_CANCELLED) {
        status = kOfxStatFailed; /* aborted by the host: no message, nothing written */
        goto done;
    }
    if (ran != ST_OK) {
        status = fail(effect, ran == ST_OUT_OF_MEMORY ? kOfxStatErrMemory : kOfxStatFailed, "Style Transfer: %s",
                      st_last_error(inst->ctx));
        goto done;
    }

    OfxRectI written = intersection(intersection(window, output.bounds), source.bounds);
    if (!is_empty(written)) {
        st_image from = region(&result, written), to = region(&output, written);
        if (st_convert_image(&from, &to) != ST_OK) {
            status = fail(effect, kOfxStatFailed, "Style Transfer: Output: %s", "its pixels cannot be written.");
            goto done;
        }
    }
    /* Keep the frame for temporal mode. */
    free(inst->last_output);
    inst->last_output = result.pixels.data;
    result.pixels.data = NULL;
    inst->last_width = w;
    inst->last_height = h;
    inst->last_time = time;
    if (fallback[0])
        warn(effect, "Style Transfer: frame %g was rendered on its own: %s. The temporal modes follow the frame "
                     "before, so render the shot in order from its first frame.", time, fallback);
    else
        clear_message(effect);
done:
    free(plane.pixels.data);
    free(result.pixels.data);
    release(&mask);
    release(&previous);
    release(&output);
    release(&source);
    return status;
}

/* ---------- entry points ---------- */

static OfxStatus load(void) {
    if (!host) return kOfxStatErrMissingHostFeature;
    props = host->fetchSuite(host->host, kOfxPropertySuite, 1);
    effects = host->fetchSuite(host->host, kOfxImageEffectSuite, 1);
    params = host->fetchSuite(host->host, kOfxParameterSuite, 1);
    messages2 = host->fetchSuite(host->host, kOfxMessageSuite, 2);
    messages1 = host->fetchSuite(host->host, kOfxMessageSuite, 1);
    progress = host->fetchSuite(host->host, kOfxProgressSuite, 1);
    return props && effects && params ? kOfxStatOK : kOfxStatErrMissingHostFeature;
}

static OfxStatus main_entry(const char *action, const void *handle, OfxPropertySetHandle in_args,
                            OfxPropertySetHandle out_args) {
    OfxImageEffectHandle effect = (OfxImageEffectHandle)handle;
    if (!strcmp(action, kOfxActionLoad)) return load();
    if (!strcmp(action, kOfxActionUnload)) return kOfxStatOK;
    if (!strcmp(action, kOfxActionDescribe)) return describe(effect);
    if (!strcmp(action, kOfxImageEffectActionDescribeInContext)) return describe_in_context(effect);
    if (!strcmp(action, kOfxActionCreateInstance)) return create_instance(effect);
    if (!strcmp(action, kOfxActionDestroyInstance)) return destroy_instance(effect);
    if (!strcmp(action, kOfxActionInstanceChanged)) return instance_changed(effect, in_args);
    if (!strcmp(action, kOfxActionPurgeCaches)) return purge_caches(effect);
    if (!strcmp(action, kOfxImageEffectActionGetRegionsOfInterest)) return regions_of_interest(effect, in_args, out_args);
    if (!strcmp(action, kOfxImageEffectActionGetFramesNeeded)) return frames_needed(effect, in_args, out_args);
    if (!strcmp(action, kOfxImageEffectActionRender)) return render(effect, in_args);
    return kOfxStatReplyDefault;
}

static void set_host(OfxHost *h) {
    host = h;
}

static OfxPlugin plugin = {kOfxImageEffectPluginApi, 1, PLUGIN_ID, PLUGIN_VERSION_MAJOR, PLUGIN_VERSION_MINOR,
                           set_host, main_entry};

/* The library is built with hidden visibility; only these two are exported
 * (OfxExport is a plain `extern` on Linux). */
#define ST_OFX_EXPORT OfxExport __attribute__((visibility("default")))

ST_OFX_EXPORT int OfxGetNumberOfPlugins(void) {
    return 1;
}

ST_OFX_EXPORT OfxPlugin *OfxGetPlugin(int nth) {
    return nth == 0 ? &plugin : NULL;
}
