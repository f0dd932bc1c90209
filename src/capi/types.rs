//! The C types of the ABI: status codes, enums, image and option structs,
//! and the structs that describe runs, plans and packs. Their layout is the
//! ABI: fields are only ever appended, behind a `size` field.

#[cfg(doc)]
use super::*; // the functions the docs link to

use std::ffi::{c_char, c_int, c_void};

/// Result of every fallible call. Values are fixed and never renumbered.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_status {
    /// Success.
    ST_OK = 0,
    /// A required pointer argument was NULL.
    ST_NULL_ARGUMENT = 1,
    /// An argument was out of range or inconsistent; the message names it.
    ST_INVALID_ARGUMENT = 2,
    /// The model file is missing, unreadable or not a usable VGG19.
    ST_MODEL_ERROR = 3,
    /// An image could not be read or is unusable.
    ST_IMAGE_ERROR = 4,
    /// The requested device does not exist or cannot be used.
    ST_DEVICE_ERROR = 5,
    /// The work does not fit in the memory available.
    ST_OUT_OF_MEMORY = 6,
    /// The progress callback asked to stop; the output is untouched.
    ST_CANCELLED = 7,
    /// The handle is in use by a running `st_run` (e.g. a style change from
    /// inside a progress callback).
    ST_BUSY = 8,
    /// A style pack is unreadable, corrupt, or made for another model or version.
    ST_PACK_ERROR = 9,
    /// An operating-system I/O error.
    ST_IO_ERROR = 10,
    /// libtorch reported an error.
    ST_INTERNAL_ERROR = 11,
    /// A bug: the library panicked. The handle may still be destroyed.
    ST_PANIC = 12,
    /// The libtorch runtime loaded is not the version this library was
    /// built for (the message names both); nothing was run.
    ST_RUNTIME_ERROR = 13,
    /// A network file (`.stnet`) is unreadable, corrupt, of a newer format
    /// or of another shape; or a network run was asked for and none is
    /// loaded. Added in 0.4.
    ST_NETWORK_ERROR = 14,
}

/// Pixel formats of [`st_image`]. Samples are interleaved; 16-bit and float
/// samples are in native byte order and need no particular alignment.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_pixel_format {
    /// 8-bit gray.
    ST_PIXEL_GRAY8 = 0,
    /// 8-bit gray and alpha.
    ST_PIXEL_GRAYA8 = 1,
    /// 8-bit RGB.
    ST_PIXEL_RGB8 = 2,
    /// 8-bit RGBA.
    ST_PIXEL_RGBA8 = 3,
    /// 8-bit BGRA (Cairo, Windows DIBs).
    ST_PIXEL_BGRA8 = 4,
    /// 16-bit RGB.
    ST_PIXEL_RGB16 = 5,
    /// 16-bit RGBA.
    ST_PIXEL_RGBA16 = 6,
    /// 32-bit float RGB.
    ST_PIXEL_RGBF32 = 7,
    /// 32-bit float RGBA.
    ST_PIXEL_RGBAF32 = 8,
    /// 16-bit gray.
    ST_PIXEL_GRAY16 = 9,
    /// 16-bit gray and alpha.
    ST_PIXEL_GRAYA16 = 10,
    /// 32-bit float gray.
    ST_PIXEL_GRAYF32 = 11,
    /// 32-bit float gray and alpha.
    ST_PIXEL_GRAYAF32 = 12,
}

/// [`st_image`] flag: float samples are linear light (converted to and
/// from display values with the sRGB curve). Without it, float samples are
/// display-referred like 8-bit ones. Integer formats are always
/// display-referred: the flag on one is refused (`ST_INVALID_ARGUMENT`).
pub const ST_IMAGE_LINEAR: u32 = 1;

/// [`st_image`] flag: colour samples are premultiplied by alpha (formats
/// with alpha only). They are divided by alpha when read (left as stored
/// where alpha is 0) and multiplied by it when written. With
/// [`ST_IMAGE_LINEAR`], premultiplication is in linear light.
pub const ST_IMAGE_PREMULTIPLIED: u32 = 2;

/// [`st_image`] flag: rows are stored bottom row first (OpenFX, OpenGL,
/// BMP). `data` is then the first byte of the bottom row, and the row above
/// it starts `stride_bytes` further on. Without it, `data` is the top row.
pub const ST_IMAGE_BOTTOM_UP: u32 = 4;

/// [`st_image`] flag for [`st_run_options`]`.mask`: the mask is the alpha
/// channel (formats with alpha only), as compositing hosts use mattes.
/// Without it, gray formats give their gray channel and colour formats
/// their luma, of the samples as stored (masks are not unpremultiplied or
/// decoded). On other images it is accepted and has no effect.
pub const ST_IMAGE_MASK_ALPHA: u32 = 8;

/// Longest side, in pixels, of an [`st_image`], of `st_run_options.working_size`
/// and of the sizes [`st_plan_memory`] plans; larger ones give
/// `ST_INVALID_ARGUMENT`. Image files are read up to this side and up to
/// 2^27 pixels (e.g. 16384 × 8192).
pub const ST_MAX_SIDE: u32 = 65536;
const _: () = assert!(ST_MAX_SIDE == crate::image::MAX_SIDE);

/// Convolution precision for [`st_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_precision {
    /// bf16 on CUDA and on CPUs with native bfloat16 (AVX-512 BF16 or AMX;
    /// the environment variable `ST_CPU_BF16=0` or `1` overrides the
    /// detection), else fp32.
    ST_PRECISION_AUTO = 0,
    /// fp32.
    ST_PRECISION_FP32 = 1,
    /// bfloat16 convolutions accumulating in fp32 (the first layer, the
    /// content and style targets, Gram matrices and losses in fp32). On a
    /// CPU without native bfloat16 the same arithmetic is emulated at about
    /// fp32's speed.
    ST_PRECISION_BF16 = 2,
    /// fp16 convolutions on scaled activations (the first layer, targets,
    /// Gram matrices and losses in fp32).
    ST_PRECISION_FP16 = 3,
}

/// Optimiser for [`st_run_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_optimizer {
    /// L-BFGS (history 100, Armijo backtracking line search).
    ST_OPTIMIZER_LBFGS = 0,
    /// Adam (step 0.02 of the display range).
    ST_OPTIMIZER_ADAM = 1,
}

/// Starting image for [`st_run_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_init {
    /// The content image.
    ST_INIT_CONTENT = 0,
    /// Uniform noise from `seed`.
    ST_INIT_NOISE = 1,
    /// `init_image`.
    ST_INIT_IMAGE = 2,
}

/// How a frame follows the previous one, for [`st_frame`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_temporal {
    /// Independent frames: the previous frame is not used.
    ST_TEMPORAL_OFF = 0,
    /// Start from the previous output as it is (no motion followed, no
    /// temporal term), through the whole pyramid.
    ST_TEMPORAL_INIT = 1,
    /// Start from the previous output warped by the optical flow between the
    /// two content frames, at the working size only, and keep close to it
    /// where the flow is reliable (the temporal term of Ruder et al. 2016).
    ST_TEMPORAL_FLOW = 2,
}

/// Colour preservation for [`st_run_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_preserve_color {
    /// Colours come from the style.
    ST_PRESERVE_COLOR_OFF = 0,
    /// Luminance-only transfer: the content's chroma is kept.
    ST_PRESERVE_COLOR_LUMINANCE = 1,
    /// The styles' colours are matched to the content's before use.
    ST_PRESERVE_COLOR_HISTOGRAM = 2,
}

/// Loss normalisation for [`st_run_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_normalization {
    /// Each term divided by the size of its target (default weights 1, 5, 1).
    ST_NORMALIZATION_RELATIVE = 0,
    /// As the reference PyTorch implementation (default weights 1, 1e3, 0).
    ST_NORMALIZATION_REFERENCE = 1,
}

/// What a run computes with, for [`st_run_options`]`.engine`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_engine {
    /// Optimise the image against the styles (Gatys et al.): the default.
    ST_ENGINE_OPTIMIZE = 0,
    /// One pass of the network loaded with `st_load_network`.
    ST_ENGINE_NETWORK = 1,
}

/// Working-size presets for [`st_run_options`]`.quality`, the choices hosts
/// show. A preset's long side is multiplied by `render_scale` and never
/// exceeds the content's long side.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_quality {
    /// No preset: `working_size` decides.
    ST_QUALITY_CUSTOM = 0,
    /// 256 px.
    ST_QUALITY_PREVIEW = 1,
    /// 512 px.
    ST_QUALITY_NORMAL = 2,
    /// 1024 px.
    ST_QUALITY_HIGH = 3,
}

/// Device choices as hosts number them in their menus; [`st_device_name`]
/// gives the `st_options.device` string of each.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum st_device_choice {
    /// `"auto"`: the first CUDA device when there is one, else the CPU.
    ST_DEVICE_AUTO = 0,
    /// `"cpu"`.
    ST_DEVICE_CPU = 1,
    /// `"cuda"`: CUDA device 0.
    ST_DEVICE_GPU = 2,
}

/// An image in caller memory. For inputs the library only reads `data`; for
/// outputs it writes `data` only when the call succeeds.
///
/// Float samples of inputs (colour and alpha of contents, styles and init
/// images; masks) must be finite: NaN or infinity anywhere gives
/// `ST_INVALID_ARGUMENT`. Other display-referred float values are kept as
/// they are read (linear ones below 0 read as 0) and clamped to 0..1 when
/// the library writes integer samples. Images larger than the memory
/// available give `ST_OUT_OF_MEMORY`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct st_image {
    /// First byte of the top row (of the bottom row with
    /// [`ST_IMAGE_BOTTOM_UP`]). At least
    /// `stride_bytes * (height - 1) + width * bytes_per_pixel` bytes.
    pub data: *mut c_void,
    /// Width in pixels, 1 to [`ST_MAX_SIDE`].
    pub width: u32,
    /// Height in pixels, 1 to [`ST_MAX_SIDE`].
    pub height: u32,
    /// Bytes from one row to the next (≥ width × bytes per pixel).
    pub stride_bytes: usize,
    /// One of [`st_pixel_format`].
    pub format: u32,
    /// 0, or any of [`ST_IMAGE_LINEAR`], [`ST_IMAGE_PREMULTIPLIED`],
    /// [`ST_IMAGE_BOTTOM_UP`] and [`ST_IMAGE_MASK_ALPHA`] combined with `|`.
    pub flags: u32,
}

/// How [`st_create`] sets a handle up. Fill with [`st_default_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct st_options {
    /// `sizeof(st_options)`: lets the struct grow without breaking the ABI.
    /// A struct from a newer header (a larger `size`: a multiple of 8, at
    /// most 256) is accepted when every byte past this library's struct is
    /// zero, and refused with `ST_INVALID_ARGUMENT`, naming this library's
    /// version, when one is not; other sizes are refused. `st_default_options`
    /// writes this library's size: a caller that sets fields of a newer
    /// header sets `size = sizeof` after it, so that an older library
    /// refuses them instead of ignoring them.
    pub size: usize,
    /// Model file (UTF-8 path), or NULL to search: `$ST_MODEL`, then the
    /// installed `share/styletransfer/vgg19.safetensors`, then
    /// `vgg19.safetensors` beside the library.
    pub model_path: *const c_char,
    /// `"auto"`, `"cpu"`, `"cuda"` (or its alias `"gpu"`) or `"cuda:N"`;
    /// NULL means `"auto"`. Lower case only: the names are compared exactly,
    /// so `"CPU"` is refused (`ST_INVALID_ARGUMENT`).
    pub device: *const c_char,
    /// CPU threads for libtorch (process-wide); 0 keeps libtorch's default.
    pub threads: u32,
    /// One of [`st_precision`].
    pub precision: u32,
}

/// Settings of one [`st_run`]. Fill with [`st_default_run_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct st_run_options {
    /// `sizeof(st_run_options)`, or the 0.1 struct's size (the fields added
    /// since get their defaults), or a newer header's larger size, accepted
    /// as `st_options.size` is (and set the same way after
    /// `st_default_run_options`).
    pub size: usize,
    /// Optimiser evaluations per pyramid level (> 0). Default 200.
    pub iterations: u32,
    /// Pyramid levels; 0 chooses automatically (halving to about 128 px, at most 4).
    pub scales: u32,
    /// Long side of the working image, at most [`ST_MAX_SIDE`]; 0 uses the
    /// content's, at most 512. The content is resampled to it (up or down,
    /// aspect kept) and the result back to the content's size. The working
    /// image's short side must come to at least 16 pixels, so a content
    /// smaller than 16 pixels on a side is refused (`ST_INVALID_ARGUMENT`,
    /// "too small") unless `working_size` scales it up far enough.
    pub working_size: u32,
    /// One of [`st_optimizer`].
    pub optimizer: u32,
    /// One of [`st_init`].
    pub init: u32,
    /// The starting image when `init` is `ST_INIT_IMAGE`, else ignored (may
    /// be NULL). Any size: it is resampled to each pyramid level's size (to
    /// the content's aspect, whatever its own), so a result at another
    /// resolution can start a run.
    pub init_image: *const st_image,
    /// Seed for `ST_INIT_NOISE`; CPU runs are bit-reproducible for a seed.
    pub seed: u64,
    /// One of [`st_preserve_color`].
    pub preserve_color: u32,
    /// One of [`st_normalization`].
    pub normalization: u32,
    /// Optional mask, same size as the content (gray formats use their gray
    /// channel, colour formats their luma, and with [`ST_IMAGE_MASK_ALPHA`]
    /// the alpha channel): `out = m·stylised + (1−m)·content`, with `m`
    /// clamped to 0..1 (a float mask's 1.5 acts as 1, its −0.5 as 0; NaN or
    /// infinity is refused). NULL: no mask.
    pub mask: *const st_image,
    /// Memory budget in MiB; pyramid levels that would exceed it are
    /// optimised in tiles. 0: the device's free memory.
    pub max_memory_mb: u64,
    /// Largest tile side in pixels; levels with a longer side are tiled.
    /// 0: as large as the budget allows. At least `tile_overlap` + 32 (and
    /// at least 32), so that each tile keeps a core of 32 pixels; smaller
    /// values give `ST_INVALID_ARGUMENT`.
    pub tile_size: u32,
    /// Overlap between tiles in pixels; 0: the default (64).
    pub tile_overlap: u32,
    /// One of [`st_quality`]: a working-size preset, used when
    /// `working_size` is 0 (setting both is an error). Added in 0.2: a
    /// caller built against the earlier header passes the earlier `size`,
    /// and this field and the next get their defaults.
    pub quality: u32,
    /// What `quality`'s long side is multiplied by: a host's render scale
    /// (OpenFX proxies render at 0.5 or 0.25). 0 means 1; NaN, infinite and
    /// negative values are refused. Added in 0.2.
    pub render_scale: f32,
    /// One of [`st_engine`]. With `ST_ENGINE_NETWORK` the run is one pass
    /// of the network `st_load_network` loaded, at the strength
    /// `st_set_strength` set (0.5 by default; the weights of
    /// `st_set_weights` do not apply), and these fields are used:
    /// `working_size` and `quality` (0 and `ST_QUALITY_CUSTOM`: the
    /// content's own size, not capped at 512), `mask`, `preserve_color`
    /// (luminance; histogram is refused), `max_memory_mb` (0: the
    /// device's free memory) and `tile_size` (0: untiled within the
    /// budget); tiles join exactly.
    /// The others are checked and ignored. Progress reports each tile pass
    /// as an iteration, with losses of 0. Added in 0.4: a caller built
    /// against an earlier header gets `ST_ENGINE_OPTIMIZE`.
    pub engine: u32,
}

/// A frame of a sequence for [`st_run_frame`]: the frame before it and how
/// to follow it. Fill it with [`st_default_frame`], then set the fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct st_frame {
    /// `sizeof(st_frame)`, or a newer header's larger size, accepted as
    /// `st_options.size` is (and set the same way by [`st_default_frame`]).
    pub size: usize,
    /// The previous content frame, the content's size. NULL together with
    /// `previous_output` for a first frame (or one to run independently).
    pub previous_content: *const st_image,
    /// The previous frame's output as the caller kept it, the content's
    /// size. NULL exactly when `previous_content` is.
    pub previous_output: *const st_image,
    /// Weight of the temporal term (`ST_TEMPORAL_FLOW`), finite and not
    /// negative. Default 10.
    pub temporal_weight: f64,
    /// One of [`st_temporal`]. Default `ST_TEMPORAL_FLOW`.
    pub temporal: u32,
    /// Evaluations of a frame that follows a previous one (per level with
    /// `ST_TEMPORAL_INIT`, at the working size with `ST_TEMPORAL_FLOW`); 0:
    /// the run options' `iterations`. A first frame runs the run options'.
    pub iterations: u32,
}

// No padding: a field added later lands past `sizeof` of this version.
const _: () =
    assert!(std::mem::size_of::<st_frame>() == std::mem::offset_of!(st_frame, iterations) + std::mem::size_of::<u32>());

/// A run's memory plan, filled by [`st_plan_memory`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct st_memory_plan {
    /// `sizeof(st_memory_plan)`, set by the caller and kept. A newer
    /// header's larger size (a multiple of 8, at most 256) is accepted: the
    /// bytes past this library's struct are left as the caller set them
    /// (zero them to tell which fields this library did not fill).
    pub size: usize,
    /// Estimated peak bytes of the run beyond the model and the runtime.
    pub peak_bytes: u64,
    /// The budget planned for, bytes; 0 when none is known. On the CPU a
    /// `max_memory_mb` budget is the process's memory beyond the model, so
    /// this is that budget less libtorch's own footprint (512 MiB).
    pub budget_bytes: u64,
    /// The model's weights on the device, bytes.
    pub model_bytes: u64,
    /// Pyramid levels.
    pub levels: u32,
    /// Levels optimised in tiles.
    pub tiled_levels: u32,
    /// Tiles of the finest level (1 when it is optimised whole).
    pub tiles: u32,
    /// Largest tile side of the finest level (its long side when whole).
    pub tile_size: u32,
}

/// Where a run is; passed to the progress callback after every evaluation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct st_progress {
    /// Pyramid level, 0 = coarsest.
    pub scale_index: u32,
    /// Number of levels.
    pub scales: u32,
    /// Evaluation within this level, from 1.
    pub iteration: u32,
    /// Evaluations per level.
    pub iterations: u32,
    /// Evaluations so far in the run.
    pub evaluation: u32,
    /// Evaluations the run makes in all.
    pub total_evaluations: u32,
    /// Total loss of this evaluation.
    pub loss: f64,
    /// Weighted content term.
    pub content_loss: f64,
    /// Weighted style term.
    pub style_loss: f64,
    /// Weighted total-variation term.
    pub tv_loss: f64,
    /// This level's width.
    pub width: u32,
    /// This level's height.
    pub height: u32,
    /// Weighted temporal term (0 outside [`st_run_frame`]'s flow frames).
    /// Added in 0.3, at the end: a callback built against an earlier header
    /// reads the fields before it.
    pub temporal_loss: f64,
}

/// Progress callback: called on the thread running [`st_run`] after every
/// evaluation. Return 0 to continue, non-zero to cancel (the run then
/// returns `ST_CANCELLED` before its next evaluation and leaves the output
/// untouched). It may call [`st_set_weights`], [`st_set_strength`] and
/// [`st_last_error`] on the same handle; other calls on that handle return
/// `ST_BUSY` or are forbidden (`st_destroy`).
pub type st_progress_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const st_progress) -> c_int>;
