/*
 * Drives the frei0r filter through the frei0r API as a host does (dlopen,
 * plug-in and parameter info, construct, parameter changes, update, destruct),
 * built and run under AddressSanitizer and UBSan together with an
 * instrumented build of the shim. It links the library itself (see the
 * Makefile's test-frei0r), so the shim's dlopen finds it already loaded.
 *
 *     drive_frei0r PLUGIN.so STYLE_IMAGE PACK_NAME
 *
 * Checks what a host relies on: the info the filter declares, defaults,
 * frames passing through unchanged while there is no usable style (none, a
 * missing file, a bad strength, a frame too small), alpha kept, the frame
 * restyled after style and parameter changes (a pack by name too), updates
 * in place, and instances made and dropped without a frame. Exits non-zero
 * on any failed check.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <frei0r.h>

static int failures = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

typedef struct {
    int (*init)(void);
    void (*deinit)(void);
    void (*plugin_info)(f0r_plugin_info_t *);
    void (*param_info)(f0r_param_info_t *, int);
    f0r_instance_t (*construct)(unsigned, unsigned);
    void (*destruct)(f0r_instance_t);
    void (*set_param)(f0r_instance_t, f0r_param_t, int);
    void (*get_param)(f0r_instance_t, f0r_param_t, int);
    void (*update)(f0r_instance_t, double, const uint32_t *, uint32_t *);
} api;

enum { W = 40, H = 32 };

static void *symbol(void *library, const char *name) {
    void *p = dlsym(library, name);
    if (!p) {
        fprintf(stderr, "missing symbol %s\n", name);
        exit(1);
    }
    return p;
}

static void paint(uint32_t *frame, int w, int h) {
    uint8_t *p = (uint8_t *)frame;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++, p += 4) {
            p[0] = (uint8_t)(x * 6 + y);
            p[1] = (uint8_t)(y * 7);
            p[2] = (uint8_t)((x ^ y) * 9);
            p[3] = (uint8_t)(255 - x * 3);
        }
}

/* Mean absolute colour difference in 8-bit steps, and whether alpha is equal. */
static double colour_change(const uint32_t *a, const uint32_t *b, int pixels, int *alpha_same) {
    const uint8_t *p = (const uint8_t *)a, *q = (const uint8_t *)b;
    double sum = 0;
    *alpha_same = 1;
    for (int i = 0; i < pixels; i++) {
        for (int c = 0; c < 3; c++) sum += abs((int)p[4 * i + c] - (int)q[4 * i + c]);
        if (p[4 * i + 3] != q[4 * i + 3]) *alpha_same = 0;
    }
    return sum / (3.0 * pixels);
}

static void set_string(api *f, f0r_instance_t inst, const char *value) {
    f0r_param_string s = (char *)value;
    f->set_param(inst, &s, 0);
}

static void set_double(api *f, f0r_instance_t inst, int index, double value) {
    f->set_param(inst, &value, index);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PLUGIN.so STYLE_IMAGE PACK_NAME\n", argv[0]);
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    api f = {
        symbol(library, "f0r_init"), symbol(library, "f0r_deinit"), symbol(library, "f0r_get_plugin_info"),
        symbol(library, "f0r_get_param_info"), symbol(library, "f0r_construct"), symbol(library, "f0r_destruct"),
        symbol(library, "f0r_set_param_value"), symbol(library, "f0r_get_param_value"), symbol(library, "f0r_update"),
    };
    CHECK(f.init() == 1);

    f0r_plugin_info_t info;
    memset(&info, 0, sizeof info);
    f.plugin_info(&info);
    CHECK(strcmp(info.name, "styletransfer") == 0);
    CHECK(info.plugin_type == F0R_PLUGIN_TYPE_FILTER);
    CHECK(info.color_model == F0R_COLOR_MODEL_RGBA8888);
    CHECK(info.frei0r_version == FREI0R_MAJOR_VERSION);
    CHECK(info.num_params == 4);
    const char *names[] = {"style", "strength", "iterations", "quality"};
    const int types[] = {F0R_PARAM_STRING, F0R_PARAM_DOUBLE, F0R_PARAM_DOUBLE, F0R_PARAM_DOUBLE};
    for (int i = 0; i < 4; i++) {
        f0r_param_info_t p;
        memset(&p, 0, sizeof p);
        f.param_info(&p, i);
        CHECK(p.name && strcmp(p.name, names[i]) == 0);
        CHECK(p.type == types[i]);
        CHECK(p.explanation && strlen(p.explanation) > 10);
    }

    uint32_t in[W * H], out[W * H], copy[W * H];
    paint(in, W, H);
    int alpha_same;

    /* Defaults; no style yet: the frame passes through. */
    f0r_instance_t inst = f.construct(W, H);
    CHECK(inst != NULL);
    double value = -1;
    f.get_param(inst, &value, 1);
    CHECK(value == 0.5);
    f.get_param(inst, &value, 2);
    CHECK(value == 100);
    f.get_param(inst, &value, 3);
    CHECK(value == 0);
    f0r_param_string style = NULL;
    f.get_param(inst, &style, 0);
    CHECK(style && style[0] == '\0');
    memset(out, 0, sizeof out);
    f.update(inst, 0.0, in, out);
    CHECK(memcmp(in, out, sizeof in) == 0);

    /* A style image: restyled, alpha kept. */
    set_string(&f, inst, argv[2]);
    set_double(&f, inst, 1, 0.8);
    set_double(&f, inst, 2, 3);
    set_double(&f, inst, 3, 40);
    f.get_param(inst, &style, 0);
    CHECK(style && strcmp(style, argv[2]) == 0);
    f.update(inst, 0.04, in, out);
    CHECK(colour_change(in, out, W * H, &alpha_same) > 2.0);
    CHECK(alpha_same);

    /* In place. */
    memcpy(copy, in, sizeof in);
    f.update(inst, 0.08, copy, copy);
    CHECK(memcmp(copy, out, sizeof out) == 0); /* the same frame and settings: the same result */

    /* An installed pack by name, in another case. */
    set_string(&f, inst, argv[3]);
    f.update(inst, 0.12, in, out);
    CHECK(colour_change(in, out, W * H, &alpha_same) > 2.0);
    CHECK(alpha_same);

    /* Unusable settings: pass-through, then back to work. */
    set_string(&f, inst, "/nonexistent/style.png");
    memset(out, 0, sizeof out);
    f.update(inst, 0.16, in, out);
    CHECK(memcmp(in, out, sizeof in) == 0);
    memset(out, 0, sizeof out);
    f.update(inst, 0.20, in, out); /* reported once; still passes through */
    CHECK(memcmp(in, out, sizeof in) == 0);
    set_string(&f, inst, argv[2]);
    set_double(&f, inst, 1, NAN);
    memset(out, 0, sizeof out);
    f.update(inst, 0.24, in, out);
    CHECK(memcmp(in, out, sizeof in) == 0);
    set_double(&f, inst, 1, 0.8);
    f.update(inst, 0.28, in, out);
    CHECK(colour_change(in, out, W * H, &alpha_same) > 2.0);
    f.update(NULL, 0.0, in, out);
    f.update(inst, 0.0, NULL, out);
    f.set_param(inst, NULL, 0);
    f.set_param(inst, &value, 9);
    f.get_param(inst, &value, 9);
    f.destruct(inst);

    /* An instance never used, and one whose frames are too small to stylise. */
    f.destruct(f.construct(W, H));
    f.destruct(NULL);
    inst = f.construct(4, 4);
    CHECK(inst != NULL);
    set_string(&f, inst, argv[2]);
    uint32_t small[16], small_out[16] = {0};
    paint(small, 4, 4);
    f.update(inst, 0.0, small, small_out);
    CHECK(memcmp(small, small_out, sizeof small) == 0);
    f.destruct(inst);

    f.deinit();
    dlclose(library);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("frei0r driver checks passed\n");
    return 0;
}
