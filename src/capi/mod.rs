//! The C ABI: the only `unsafe extern "C"` code of the library.
//!
//! Every entry point checks its pointers, runs the core inside a panic
//! boundary, maps errors to an [`st_status`] and stores the message on the
//! handle ([`st_last_error`]). Nothing panics across the boundary.
//!
//! Threading, for every function taking a handle: one thread at a time per
//! handle (calls on one handle must not overlap, except the documented calls
//! from inside a progress callback); any number of handles may be used in
//! parallel from different threads. Note that libtorch's CPU thread count is
//! process-wide.
#![deny(missing_docs)]
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // each function documents its contract in the header

mod pixels;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::color::PreserveColor;
use crate::engine::{default_adam, default_lbfgs, DeviceChoice, Engine, EngineOptions, Flow, Init, RunOptions};
use crate::error::{Error, Result};
use crate::image::blend_with_mask;
use crate::loss::{LiveWeights, Normalization, Weights};
use crate::model::{Precision, MODEL_FILE_NAME};
use crate::optim::Optimizer;
use crate::pack::{list_packs, style_dirs, StylePack};
use crate::plan::MemoryOptions;
use crate::style::{StyleImage, StyleSet};

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
/// display-referred like 8-bit ones. Integer formats are always display-referred.
pub const ST_IMAGE_LINEAR: u32 = 1;

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
    /// L-BFGS (history 100, fixed step).
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

/// An image in caller memory. For inputs the library only reads `data`; for
/// outputs it writes `data` only when the call succeeds.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct st_image {
    /// First byte of the top row. At least
    /// `stride_bytes * (height - 1) + width * bytes_per_pixel` bytes.
    pub data: *mut c_void,
    /// Width in pixels (> 0).
    pub width: u32,
    /// Height in pixels (> 0).
    pub height: u32,
    /// Bytes from one row to the next (≥ width × bytes per pixel).
    pub stride_bytes: usize,
    /// One of [`st_pixel_format`].
    pub format: u32,
    /// 0 or [`ST_IMAGE_LINEAR`].
    pub flags: u32,
}

/// How [`st_create`] sets a handle up. Fill with [`st_default_options`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct st_options {
    /// `sizeof(st_options)`: lets the struct grow without breaking the ABI.
    pub size: usize,
    /// Model file (UTF-8 path), or NULL to search: `$ST_MODEL`, then the
    /// installed `share/styletransfer/vgg19.safetensors`, then
    /// `vgg19.safetensors` beside the library.
    pub model_path: *const c_char,
    /// `"auto"`, `"cpu"`, `"cuda"` or `"cuda:N"`; NULL means `"auto"`.
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
    /// `sizeof(st_run_options)`.
    pub size: usize,
    /// Optimiser evaluations per pyramid level (> 0). Default 200.
    pub iterations: u32,
    /// Pyramid levels; 0 chooses automatically (halving to about 128 px, at most 4).
    pub scales: u32,
    /// Long side of the working image; 0 uses the content's, at most 512.
    /// The result is resampled to the content's size.
    pub working_size: u32,
    /// One of [`st_optimizer`].
    pub optimizer: u32,
    /// One of [`st_init`].
    pub init: u32,
    /// The starting image when `init` is `ST_INIT_IMAGE`, else ignored (may be NULL).
    pub init_image: *const st_image,
    /// Seed for `ST_INIT_NOISE`; CPU runs are bit-reproducible for a seed.
    pub seed: u64,
    /// One of [`st_preserve_color`].
    pub preserve_color: u32,
    /// One of [`st_normalization`].
    pub normalization: u32,
    /// Optional mask, same size as the content (gray formats use their gray
    /// channel, colour formats their luma): `out = m·stylised + (1−m)·content`.
    /// NULL: no mask.
    pub mask: *const st_image,
    /// Memory budget in MiB; pyramid levels that would exceed it are
    /// optimised in tiles. 0: the device's free memory.
    pub max_memory_mb: u64,
    /// Largest tile side in pixels; levels with a longer side are tiled.
    /// 0: as large as the budget allows.
    pub tile_size: u32,
    /// Overlap between tiles in pixels; 0: the default (64).
    pub tile_overlap: u32,
}

/// A run's memory plan, filled by [`st_plan_memory`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct st_memory_plan {
    /// `sizeof(st_memory_plan)`, set by the caller.
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
}

/// Progress callback: called on the thread running [`st_run`] after every
/// evaluation. Return 0 to continue, non-zero to cancel (the run then
/// returns `ST_CANCELLED` before its next evaluation and leaves the output
/// untouched). It may call [`st_set_weights`], [`st_set_strength`] and
/// [`st_last_error`] on the same handle; other calls on that handle return
/// `ST_BUSY` or are forbidden (`st_destroy`).
pub type st_progress_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const st_progress) -> c_int>;

/// An engine: a model on a device, styles, weights, and the last error. Opaque.
pub struct st_context {
    engine: Engine,
    styles: Mutex<StyleSet>,
    /// Weights the running optimisation reads at every evaluation.
    live: LiveWeights,
    chosen: Mutex<Chosen>,
    last_error: Mutex<CString>,
}

/// What the caller chose; the live weights are derived from it.
#[derive(Clone, Copy)]
struct Chosen {
    /// Set by `st_set_weights`; `None`: the defaults of the normalisation.
    weights: Option<Weights>,
    /// Set by `st_set_strength`.
    strength: Option<f64>,
    /// Of the current (or last) run.
    normalization: Normalization,
}

impl Chosen {
    fn effective(&self) -> Result<Weights> {
        let base = self.weights.unwrap_or_else(|| Weights::defaults(self.normalization));
        match self.strength {
            Some(s) => Weights::with_strength(base, s),
            None => Ok(base),
        }
    }
}

/// A failed call: its status and message.
struct Failure {
    status: st_status,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { status: status_of(&error), message: error.to_string() }
    }
}

fn null_argument(name: &str) -> Failure {
    Failure { status: st_status::ST_NULL_ARGUMENT, message: format!("`{name}` is NULL") }
}

fn busy() -> Failure {
    Failure {
        status: st_status::ST_BUSY,
        message: "the handle is running st_run (only st_set_weights, st_set_strength and st_last_error may be called from its progress callback)".into(),
    }
}

fn status_of(error: &Error) -> st_status {
    match error {
        Error::InvalidArgument { .. } => st_status::ST_INVALID_ARGUMENT,
        Error::Model { .. } => st_status::ST_MODEL_ERROR,
        Error::Image { .. } => st_status::ST_IMAGE_ERROR,
        Error::Pack { .. } => st_status::ST_PACK_ERROR,
        Error::Device(_) => st_status::ST_DEVICE_ERROR,
        Error::OutOfMemory(_) => st_status::ST_OUT_OF_MEMORY,
        Error::Cancelled => st_status::ST_CANCELLED,
        Error::Io { .. } => st_status::ST_IO_ERROR,
        Error::Torch(_) => st_status::ST_INTERNAL_ERROR,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The styles, unless a run holds them (a call from inside its callback).
fn styles_of(context: &st_context) -> Result<std::sync::MutexGuard<'_, StyleSet>, Failure> {
    match context.styles.try_lock() {
        Ok(guard) => Ok(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(busy()),
    }
}

impl st_context {
    fn set_error(&self, message: &str) {
        let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
        *lock(&self.last_error) = text;
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic): {what}")
}

/// Runs `body` on a handle inside the panic boundary, recording the outcome
/// as the handle's last error.
unsafe fn with_context(ctx: *const st_context, body: impl FnOnce(&st_context) -> Result<(), Failure>) -> st_status {
    let Some(context) = ctx.as_ref() else {
        return st_status::ST_NULL_ARGUMENT;
    };
    match catch_unwind(AssertUnwindSafe(|| body(context))) {
        Ok(Ok(())) => {
            context.set_error("");
            st_status::ST_OK
        }
        Ok(Err(failure)) => {
            context.set_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            context.set_error(&panic_message(payload.as_ref()));
            st_status::ST_PANIC
        }
    }
}

fn guard(body: impl FnOnce() -> st_status) -> st_status {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(st_status::ST_PANIC)
}

unsafe fn c_str<'a>(ptr: *const c_char, name: &'static str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(ptr).to_str().map(Some).map_err(|_| Error::invalid(name, "is not valid UTF-8"))
}

fn check_size(size: usize, expected: usize, name: &'static str) -> Result<()> {
    if size != expected {
        return Err(Error::invalid(
            name,
            format!("size field is {size} but this library's struct is {expected} bytes (use the matching header)"),
        ));
    }
    Ok(())
}

/// The library version, e.g. `"0.1.0"` (static storage; never NULL).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn st_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static English description of a status value (never NULL; unknown
/// values give "unknown status").
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn st_status_str(status: c_int) -> *const c_char {
    let text: &'static str = match status {
        0 => "success\0",
        1 => "a required pointer argument was NULL\0",
        2 => "invalid argument\0",
        3 => "model file error\0",
        4 => "image error\0",
        5 => "device error\0",
        6 => "out of memory\0",
        7 => "cancelled\0",
        8 => "the handle is busy running\0",
        9 => "style pack error\0",
        10 => "input/output error\0",
        11 => "libtorch error\0",
        12 => "internal error (panic)\0",
        _ => "unknown status\0",
    };
    text.as_ptr().cast()
}

/// Fills `*options` with the defaults (model search, device `"auto"`,
/// libtorch's thread count, automatic precision) and its `size` field.
///
/// Returns `ST_NULL_ARGUMENT` when `options` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_default_options(options: *mut st_options) -> st_status {
    guard(|| {
        let Some(options) = options.as_mut() else { return st_status::ST_NULL_ARGUMENT };
        *options = st_options {
            size: std::mem::size_of::<st_options>(),
            model_path: std::ptr::null(),
            device: std::ptr::null(),
            threads: 0,
            precision: st_precision::ST_PRECISION_AUTO as u32,
        };
        st_status::ST_OK
    })
}

/// Fills `*options` with the run defaults (200 iterations per level,
/// automatic pyramid and working size, L-BFGS, content init, seed 0, no
/// colour preservation, relative normalisation, no mask).
///
/// Returns `ST_NULL_ARGUMENT` when `options` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_default_run_options(options: *mut st_run_options) -> st_status {
    guard(|| {
        let Some(options) = options.as_mut() else { return st_status::ST_NULL_ARGUMENT };
        *options = st_run_options {
            size: std::mem::size_of::<st_run_options>(),
            iterations: 200,
            scales: 0,
            working_size: 0,
            optimizer: st_optimizer::ST_OPTIMIZER_LBFGS as u32,
            init: st_init::ST_INIT_CONTENT as u32,
            init_image: std::ptr::null(),
            seed: 0,
            preserve_color: st_preserve_color::ST_PRESERVE_COLOR_OFF as u32,
            normalization: st_normalization::ST_NORMALIZATION_RELATIVE as u32,
            mask: std::ptr::null(),
            max_memory_mb: 0,
            tile_size: 0,
            tile_overlap: 0,
        };
        st_status::ST_OK
    })
}

/// Where the model is looked for when `st_options.model_path` is NULL.
fn search_model() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ST_MODEL").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = library_dir() {
        candidates.push(dir.join("../share/styletransfer").join(MODEL_FILE_NAME));
        candidates.push(dir.join(MODEL_FILE_NAME));
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::Model {
        path: PathBuf::from(MODEL_FILE_NAME),
        reason: format!(
            "not found (looked at $ST_MODEL, {}); set st_options.model_path or ST_MODEL",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The folder of the shared library this code is in (via `dladdr`).
fn library_dir() -> Option<PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address and fills `info`.
    let found = unsafe { libc::dladdr(st_version as *const c_void, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr succeeded, so the struct is filled.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: checked non-NULL; dladdr's strings live as long as the object.
    let file = unsafe { CStr::from_ptr(info.dli_fname) }.to_str().ok()?;
    let path = std::fs::canonicalize(file).ok()?;
    path.parent().map(PathBuf::from)
}

/// Creates a handle: loads the model onto the chosen device. On success
/// writes the new handle to `*out` (owned by the caller; release it with
/// [`st_destroy`]); on failure leaves `*out` unchanged.
///
/// `options` may be NULL for the defaults. Returns `ST_NULL_ARGUMENT` when
/// `out` is NULL; `ST_INVALID_ARGUMENT` for a wrong `options->size`, an
/// unknown device string or precision; `ST_MODEL_ERROR` when the model is
/// missing or unusable; `ST_DEVICE_ERROR` when the device is absent. There
/// is no handle to hold the message on failure: it goes to stderr only when
/// `ST_VERBOSE` is set. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_create(options: *const st_options, out: *mut *mut st_context) -> st_status {
    guard(|| {
        if out.is_null() {
            return st_status::ST_NULL_ARGUMENT;
        }
        match create(options) {
            Ok(context) => {
                *out = Box::into_raw(Box::new(context));
                st_status::ST_OK
            }
            Err(error) => {
                if std::env::var_os("ST_VERBOSE").is_some() {
                    eprintln!("st_create: {error}");
                }
                status_of(&error)
            }
        }
    })
}

unsafe fn create(options: *const st_options) -> Result<st_context> {
    let mut defaults = std::mem::zeroed::<st_options>();
    st_default_options(&mut defaults);
    let options = match options.as_ref() {
        Some(o) => {
            check_size(o.size, std::mem::size_of::<st_options>(), "options")?;
            *o
        }
        None => defaults,
    };
    let model_path = match c_str(options.model_path, "model_path")? {
        Some(path) => PathBuf::from(path),
        None => search_model()?,
    };
    let device_name = c_str(options.device, "device")?.unwrap_or("auto");
    let device = DeviceChoice::from_name(device_name)
        .ok_or_else(|| Error::invalid("device", format!("`{device_name}` is not auto, cpu, cuda or cuda:N")))?;
    let precision = match options.precision {
        p if p == st_precision::ST_PRECISION_AUTO as u32 => None,
        p if p == st_precision::ST_PRECISION_FP32 as u32 => Some(Precision::Fp32),
        p if p == st_precision::ST_PRECISION_BF16 as u32 => Some(Precision::Bf16),
        p if p == st_precision::ST_PRECISION_FP16 as u32 => Some(Precision::Fp16),
        other => return Err(Error::invalid("precision", format!("unknown value {other}"))),
    };
    let engine = Engine::new(&EngineOptions {
        model_path,
        device,
        precision,
        bf16_kernels: None,
        threads: (options.threads > 0).then_some(options.threads as usize),
    })?;
    Ok(st_context {
        engine,
        styles: Mutex::new(StyleSet::default()),
        live: LiveWeights::new(Weights::defaults(Normalization::Relative))?,
        chosen: Mutex::new(Chosen { weights: None, strength: None, normalization: Normalization::Relative }),
        last_error: Mutex::new(CString::default()),
    })
}

/// Destroys a handle and frees everything it holds (model, style targets,
/// device memory: on CUDA the allocator's cached blocks go back to the
/// driver too). NULL is a no-op. Destroying a handle twice, or while a
/// call on it is running (including from its own progress callback), is
/// forbidden.
#[no_mangle]
pub unsafe extern "C" fn st_destroy(ctx: *mut st_context) {
    if ctx.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let context = Box::from_raw(ctx);
        let cuda = context.engine.device().is_cuda();
        drop(context);
        if cuda {
            crate::cuda::release_cached();
        }
    }));
}

/// Gives the memory that the last runs left cached back to the system
/// (CUDA: the allocator's cached device memory; CPU: the free pages of the
/// C heap), for a host that needs the memory for other work between runs.
/// The model stays loaded. Returns `ST_NULL_ARGUMENT` for a NULL handle,
/// `ST_BUSY` from inside a progress callback. Thread-safe with respect to other handles.
#[no_mangle]
pub unsafe extern "C" fn st_release_memory(ctx: *mut st_context) -> st_status {
    with_context(ctx, |context| {
        let _styles = styles_of(context)?;
        context.engine.release_memory();
        Ok(())
    })
}

/// The message of the last failed call on `ctx` ("" after a success). The
/// string belongs to the handle and stays valid until the next call on it.
/// NULL `ctx` gives a static message. Never returns NULL.
#[no_mangle]
pub unsafe extern "C" fn st_last_error(ctx: *const st_context) -> *const c_char {
    let Some(context) = ctx.as_ref() else {
        return c"st_last_error: the handle is NULL".as_ptr();
    };
    match catch_unwind(AssertUnwindSafe(|| lock(&context.last_error).as_ptr())) {
        Ok(ptr) => ptr,
        Err(_) => c"st_last_error: internal error".as_ptr(),
    }
}

fn validate_weight(name: &'static str, value: f32) -> Result<f64> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::invalid(name, format!("{value} is not a finite non-negative number")));
    }
    Ok(value as f64)
}

impl st_context {
    /// Updates the caller's choice and the live weights derived from it.
    fn choose(&self, change: impl FnOnce(&mut Chosen)) -> Result<()> {
        let mut chosen = lock(&self.chosen);
        let mut next = *chosen;
        change(&mut next);
        self.live.set(next.effective()?)?;
        *chosen = next;
        Ok(())
    }
}

/// Sets the content, style and total-variation weights (finite, ≥ 0, not all
/// 0). Until this is called, each run uses the defaults of its normalisation
/// (relative: 1, 5, 1; reference: 1, 1e3, 0). A strength set with
/// [`st_set_strength`] still applies on top.
///
/// Callable between runs and from inside the progress callback: the running
/// optimisation uses the new weights from its next evaluation (L-BFGS then
/// drops its curvature history). Returns `ST_NULL_ARGUMENT` for a NULL
/// handle, `ST_INVALID_ARGUMENT` for NaN, infinite or negative weights.
#[no_mangle]
pub unsafe extern "C" fn st_set_weights(ctx: *mut st_context, content: f32, style: f32, tv: f32) -> st_status {
    with_context(ctx, |context| {
        let weights = Weights {
            content: validate_weight("content", content)?,
            style: validate_weight("style", style)?,
            tv: validate_weight("tv", tv)?,
        };
        weights.validate()?;
        Ok(context.choose(|c| c.weights = Some(weights))?)
    })
}

/// Sets the style strength, 0..1: the style weight becomes
/// `style · 100^(2·strength − 1)`, where `style` is the weight set by
/// [`st_set_weights`] or the default. 0.5 keeps it, 0 divides it by 100, 1
/// multiplies it by 100; content and TV weights are kept.
///
/// Callable between runs and from inside the progress callback, like
/// [`st_set_weights`]. Returns `ST_NULL_ARGUMENT` for a NULL handle,
/// `ST_INVALID_ARGUMENT` outside 0..1 or NaN.
#[no_mangle]
pub unsafe extern "C" fn st_set_strength(ctx: *mut st_context, strength: f32) -> st_status {
    with_context(ctx, |context| {
        if !(0.0..=1.0).contains(&strength) {
            return Err(Error::invalid("strength", format!("{strength} is outside 0..1")).into());
        }
        Ok(context.choose(|c| c.strength = Some(strength as f64))?)
    })
}

/// Adds a style image with a blend weight (finite, ≥ 0; weights are
/// normalised over all styles). The pixels are copied: `style` may be freed
/// after the call. Style targets are computed at the next run and reused by
/// later runs until the styles change.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or image,
/// `ST_INVALID_ARGUMENT` for a bad image description or weight, `ST_BUSY`
/// from inside a progress callback.
#[no_mangle]
pub unsafe extern "C" fn st_add_style(ctx: *mut st_context, style: *const st_image, blend_weight: f32) -> st_status {
    with_context(ctx, |context| {
        let image = style.as_ref().ok_or_else(|| null_argument("style"))?;
        let (rgb, _alpha) = pixels::view(image, "style")?.to_rgb("style")?;
        if !(blend_weight.is_finite() && blend_weight >= 0.0) {
            let reason = format!("{blend_weight} is not a finite non-negative number");
            return Err(Error::invalid("blend_weight", reason).into());
        }
        let mut styles = styles_of(context)?;
        Ok(styles.add(StyleImage { image: rgb, weight: blend_weight as f64 })?)
    })
}

/// Removes every style. Returns `ST_NULL_ARGUMENT` for a NULL handle,
/// `ST_BUSY` from inside a progress callback.
#[no_mangle]
pub unsafe extern "C" fn st_clear_styles(ctx: *mut st_context) -> st_status {
    with_context(ctx, |context| {
        styles_of(context)?.clear();
        Ok(())
    })
}

/// A run's settings, converted.
struct Request {
    options: RunOptions,
    /// One value per pixel, with the mask's size.
    mask: Option<(Vec<f32>, u32, u32)>,
}

unsafe fn run_request(options: *const st_run_options) -> Result<Request> {
    let mut defaults = std::mem::zeroed::<st_run_options>();
    st_default_run_options(&mut defaults);
    let o = match options.as_ref() {
        Some(o) => {
            check_size(o.size, std::mem::size_of::<st_run_options>(), "run_options")?;
            *o
        }
        None => defaults,
    };
    if o.iterations == 0 {
        return Err(Error::invalid("iterations", "must be at least 1"));
    }
    let optimizer = match o.optimizer {
        v if v == st_optimizer::ST_OPTIMIZER_LBFGS as u32 => Optimizer::Lbfgs(default_lbfgs()),
        v if v == st_optimizer::ST_OPTIMIZER_ADAM as u32 => Optimizer::Adam(default_adam()),
        other => return Err(Error::invalid("optimizer", format!("unknown value {other}"))),
    };
    let init = match o.init {
        v if v == st_init::ST_INIT_CONTENT as u32 => Init::Content,
        v if v == st_init::ST_INIT_NOISE as u32 => Init::Noise,
        v if v == st_init::ST_INIT_IMAGE as u32 => {
            let image =
                o.init_image.as_ref().ok_or_else(|| Error::invalid("init_image", "is NULL with ST_INIT_IMAGE"))?;
            Init::Image(pixels::view(image, "init_image")?.to_rgb("init_image")?.0)
        }
        other => return Err(Error::invalid("init", format!("unknown value {other}"))),
    };
    let preserve_color = match o.preserve_color {
        v if v == st_preserve_color::ST_PRESERVE_COLOR_OFF as u32 => PreserveColor::Off,
        v if v == st_preserve_color::ST_PRESERVE_COLOR_LUMINANCE as u32 => PreserveColor::Luminance,
        v if v == st_preserve_color::ST_PRESERVE_COLOR_HISTOGRAM as u32 => PreserveColor::Histogram,
        other => return Err(Error::invalid("preserve_color", format!("unknown value {other}"))),
    };
    let normalization = match o.normalization {
        v if v == st_normalization::ST_NORMALIZATION_RELATIVE as u32 => Normalization::Relative,
        v if v == st_normalization::ST_NORMALIZATION_REFERENCE as u32 => Normalization::Reference,
        other => return Err(Error::invalid("normalization", format!("unknown value {other}"))),
    };
    let mask = match o.mask.as_ref() {
        Some(mask) => {
            let view = pixels::view(mask, "mask")?;
            Some((view.to_plane(), view.width, view.height))
        }
        None => None,
    };
    let options = RunOptions {
        iterations: o.iterations as usize,
        scales: (o.scales > 0).then_some(o.scales as usize),
        size: (o.working_size > 0).then_some(o.working_size),
        optimizer,
        init,
        seed: o.seed,
        preserve_color,
        normalization,
        memory: MemoryOptions {
            max_memory_mb: (o.max_memory_mb > 0).then_some(o.max_memory_mb),
            tile_size: (o.tile_size > 0).then_some(o.tile_size),
            tile_overlap: (o.tile_overlap > 0).then_some(o.tile_overlap),
        },
        ..RunOptions::default()
    };
    Ok(Request { options, mask })
}

/// Plans the memory of a run of `options` (NULL: defaults) on a
/// `width`×`height` content with the handle's styles, without running it:
/// pyramid levels, which are tiled, the estimated peak. `out->size` must be
/// `sizeof(st_memory_plan)`; the rest of `*out` is written on `ST_OK`.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or `out`,
/// `ST_INVALID_ARGUMENT` for a bad size or option, `ST_OUT_OF_MEMORY` when
/// even the smallest tiles exceed the budget (the message gives the
/// estimate), `ST_BUSY` from inside a progress callback. One thread at a
/// time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_plan_memory(
    ctx: *mut st_context,
    width: u32,
    height: u32,
    options: *const st_run_options,
    out: *mut st_memory_plan,
) -> st_status {
    with_context(ctx, |context| {
        let out = out.as_mut().ok_or_else(|| null_argument("out"))?;
        check_size(out.size, std::mem::size_of::<st_memory_plan>(), "memory_plan")?;
        let request = run_request(options)?;
        let styles = styles_of(context)?;
        let plan = context.engine.plan((width, height), &styles, &request.options)?;
        let finest = plan.levels.last().ok_or_else(|| Error::invalid("scales", "no pyramid level"))?;
        *out = st_memory_plan {
            size: out.size,
            peak_bytes: plan.peak_bytes,
            budget_bytes: plan.budget_bytes.unwrap_or(0),
            model_bytes: plan.model_bytes,
            levels: plan.levels.len() as u32,
            tiled_levels: plan.levels.iter().filter(|l| l.tiles.is_some()).count() as u32,
            tiles: finest.tile_count() as u32,
            tile_size: finest.tiles.map_or(finest.width.max(finest.height), |g| g.tile),
        };
        Ok(())
    })
}

/// Stylises `content` with the handle's styles into `output`.
///
/// `content` is read only; `output` must have the content's width and
/// height (any pixel format; it may be the same buffer as `content`) and is
/// written only when the call returns `ST_OK`. Alpha is copied from the
/// content untouched (opaque when the content has none); gray formats are
/// processed as luminance. `options` may be NULL for the defaults;
/// `progress` may be NULL. `user_data` is passed to `progress` as is.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle, content or output;
/// `ST_INVALID_ARGUMENT` for a bad image description, option value or
/// struct size, or when no style was added; `ST_CANCELLED` when the callback
/// returned non-zero; `ST_BUSY` when called from inside a progress callback;
/// `ST_OUT_OF_MEMORY`; `ST_DEVICE_ERROR`, `ST_INTERNAL_ERROR` for libtorch
/// failures. One thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_run(
    ctx: *mut st_context,
    content: *const st_image,
    output: *mut st_image,
    options: *const st_run_options,
    progress: st_progress_fn,
    user_data: *mut c_void,
) -> st_status {
    with_context(ctx, |context| {
        let content = content.as_ref().ok_or_else(|| null_argument("content"))?;
        let output = output.as_ref().ok_or_else(|| null_argument("output"))?;
        let content_view = pixels::view(content, "content")?;
        let output_view = pixels::view(output, "output")?;
        let (width, height) = (content_view.width, content_view.height);
        if (output_view.width, output_view.height) != (width, height) {
            let reason = format!("is {}×{} but the content is {width}×{height}", output_view.width, output_view.height);
            return Err(Error::invalid("output", reason).into());
        }
        let request = run_request(options)?;
        if let Some((_, mask_width, mask_height)) = &request.mask {
            if (*mask_width, *mask_height) != (width, height) {
                let reason = format!("is {mask_width}×{mask_height} but the content is {width}×{height}");
                return Err(Error::invalid("mask", reason).into());
            }
        }
        let (rgb, alpha) = content_view.to_rgb("content")?;
        let mut styles = styles_of(context)?;
        context.choose(|c| c.normalization = request.options.normalization)?;
        let mut on_progress = |p: &crate::engine::Progress| {
            let Some(callback) = progress else { return Flow::Continue };
            let report = st_progress {
                scale_index: p.scale_index as u32,
                scales: p.scales as u32,
                iteration: p.iteration as u32,
                iterations: p.iterations as u32,
                evaluation: p.evaluation as u32,
                total_evaluations: p.total_evaluations as u32,
                loss: p.loss.total,
                content_loss: p.loss.content,
                style_loss: p.loss.style,
                tv_loss: p.loss.tv,
                width: p.width,
                height: p.height,
            };
            // SAFETY: the caller vouches for the callback and its user data.
            if unsafe { callback(user_data, &report) } != 0 {
                Flow::Cancel
            } else {
                Flow::Continue
            }
        };
        let result = context.engine.run(&rgb, &mut styles, &request.options, &context.live, &mut on_progress)?;
        let image = match &request.mask {
            Some((mask, _, _)) => blend_with_mask(&result.image, &rgb, mask)?,
            None => result.image,
        };
        output_view.store(&image, alpha.as_deref());
        Ok(())
    })
}

/// Adds a style image read from a file (PNG, JPEG, TIFF, BMP, PNM, WebP;
/// the decoders of the `stylize` CLI, so both see the same pixels) with a
/// blend weight (finite, ≥ 0). `path` is a UTF-8 path read during the call.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or path, `ST_IMAGE_ERROR`
/// for a missing, unreadable or non-image file, `ST_INVALID_ARGUMENT` for a
/// bad weight, `ST_BUSY` from inside a progress callback. One thread at a
/// time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_add_style_file(ctx: *mut st_context, path: *const c_char, blend_weight: f32) -> st_status {
    with_context(ctx, |context| {
        let path = c_str(path, "path")?.ok_or_else(|| null_argument("path"))?;
        if !(blend_weight.is_finite() && blend_weight >= 0.0) {
            let reason = format!("{blend_weight} is not a finite non-negative number");
            return Err(Error::invalid("blend_weight", reason).into());
        }
        let mut styles = styles_of(context)?;
        let image = crate::image::load(std::path::Path::new(path))?.rgb;
        Ok(styles.add(StyleImage { image, weight: blend_weight as f64 })?)
    })
}

/// Adds a style pack (`.stpack`) with a blend weight (finite, ≥ 0; weights
/// are normalised over all styles and packs). The pack must have been made
/// with this handle's model. Its targets are used as stored, so no style
/// image is processed at run time. To switch to a pack, call
/// [`st_clear_styles`] first; to blend packs, add several.
///
/// `path` is a UTF-8 path, read during the call. Returns
/// `ST_NULL_ARGUMENT` for a NULL handle or path, `ST_PACK_ERROR` for a
/// missing, corrupt, truncated, future-version or other-model pack,
/// `ST_INVALID_ARGUMENT` for a bad weight, `ST_BUSY` from inside a progress
/// callback. One thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_add_style_pack(ctx: *mut st_context, path: *const c_char, blend_weight: f32) -> st_status {
    with_context(ctx, |context| {
        let path = c_str(path, "path")?.ok_or_else(|| null_argument("path"))?;
        if !(blend_weight.is_finite() && blend_weight >= 0.0) {
            let reason = format!("{blend_weight} is not a finite non-negative number");
            return Err(Error::invalid("blend_weight", reason).into());
        }
        let mut styles = styles_of(context)?;
        let pack = StylePack::load(std::path::Path::new(path), context.engine.model().weights_sha256())?;
        Ok(styles.add_pack(pack, blend_weight as f64)?)
    })
}

/// Computes a style pack from the style images added to the handle (with
/// their blend weights) and writes it to `path` (UTF-8; written to a
/// temporary name and renamed on success), named `name` (UTF-8, shown in
/// host menus).
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle, name or path,
/// `ST_INVALID_ARGUMENT` when no style image was added or a pack was added
/// (packs cannot be re-packed), `ST_PACK_ERROR` when the file cannot be
/// written, `ST_BUSY` from inside a progress callback. One thread at a time
/// per handle.
#[no_mangle]
pub unsafe extern "C" fn st_create_style_pack(
    ctx: *mut st_context,
    name: *const c_char,
    path: *const c_char,
) -> st_status {
    with_context(ctx, |context| {
        let name = c_str(name, "name")?.ok_or_else(|| null_argument("name"))?;
        let path = c_str(path, "path")?.ok_or_else(|| null_argument("path"))?;
        let styles = styles_of(context)?;
        let images =
            styles.images().map_err(|_| Error::invalid("styles", "packs cannot be re-packed; add images only"))?;
        let pack = StylePack::create(&context.engine, &images, name)?;
        Ok(pack.save(std::path::Path::new(path))?)
    })
}

/// A style pack's description, read by [`st_read_pack_info`]. Every pointer
/// stays valid until [`st_pack_info_free`].
#[repr(C)]
#[derive(Debug)]
pub struct st_pack_info {
    /// Display name (UTF-8).
    pub name: *const c_char,
    /// The model digest the pack was made with.
    pub model_sha256: *const c_char,
    /// The library version that wrote it.
    pub library_version: *const c_char,
    /// Pack format version.
    pub format_version: u32,
    /// Number of source images blended into it.
    pub source_count: u32,
    /// The style sizes held (long sides in pixels, ascending).
    pub sides: *const u32,
    /// Number of entries in `sides`.
    pub side_count: usize,
    /// The thumbnail, PNG bytes.
    pub thumbnail_png: *const u8,
    /// Length of `thumbnail_png` (at most 64 KiB).
    pub thumbnail_size: usize,
}

#[repr(C)]
struct PackInfoBox {
    public: st_pack_info,
    name: CString,
    model: CString,
    version: CString,
    sides: Vec<u32>,
    thumbnail: Vec<u8>,
}

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Reads a pack's description and thumbnail without loading its targets.
/// On success writes to `*out` a description owned by the caller, to be
/// released with [`st_pack_info_free`].
///
/// Returns `ST_NULL_ARGUMENT` for a NULL path or `out`, `ST_PACK_ERROR` for
/// a missing, corrupt or future-version pack (the message goes to stderr
/// when `ST_VERBOSE` is set: there is no handle). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_read_pack_info(path: *const c_char, out: *mut *mut st_pack_info) -> st_status {
    guard(|| {
        if path.is_null() || out.is_null() {
            return st_status::ST_NULL_ARGUMENT;
        }
        let read = c_str(path, "path").and_then(|p| StylePack::read_info(std::path::Path::new(p.unwrap_or_default())));
        let info = match read {
            Ok(info) => info,
            Err(error) => {
                if std::env::var_os("ST_VERBOSE").is_some() {
                    eprintln!("st_read_pack_info: {error}");
                }
                return status_of(&error);
            }
        };
        let mut boxed = Box::new(PackInfoBox {
            public: st_pack_info {
                name: std::ptr::null(),
                model_sha256: std::ptr::null(),
                library_version: std::ptr::null(),
                format_version: info.format_version,
                source_count: info.source_sha256.len() as u32,
                sides: std::ptr::null(),
                side_count: info.sides.len(),
                thumbnail_png: std::ptr::null(),
                thumbnail_size: info.thumbnail.len(),
            },
            name: c_string(&info.name),
            model: c_string(&info.model_sha256),
            version: c_string(&info.library_version),
            sides: info.sides,
            thumbnail: info.thumbnail,
        });
        boxed.public.name = boxed.name.as_ptr();
        boxed.public.model_sha256 = boxed.model.as_ptr();
        boxed.public.library_version = boxed.version.as_ptr();
        boxed.public.sides = boxed.sides.as_ptr();
        boxed.public.thumbnail_png = boxed.thumbnail.as_ptr();
        *out = Box::into_raw(boxed).cast();
        st_status::ST_OK
    })
}

/// Releases a description from [`st_read_pack_info`]. NULL is a no-op;
/// freeing twice is forbidden. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_pack_info_free(info: *mut st_pack_info) {
    if !info.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(info.cast::<PackInfoBox>()))));
    }
}

/// One style pack found in the style folders.
#[repr(C)]
#[derive(Debug)]
pub struct st_style_entry {
    /// Display name (UTF-8).
    pub name: *const c_char,
    /// The pack's file (UTF-8), for [`st_add_style_pack`].
    pub path: *const c_char,
    /// Its thumbnail, PNG bytes.
    pub thumbnail_png: *const u8,
    /// Length of `thumbnail_png`.
    pub thumbnail_size: usize,
}

/// The packs found by [`st_list_styles`]. Valid until [`st_style_list_free`].
#[repr(C)]
#[derive(Debug)]
pub struct st_style_list {
    /// `count` entries, sorted by name.
    pub entries: *const st_style_entry,
    /// Number of entries (may be 0).
    pub count: usize,
}

#[repr(C)]
struct StyleListBox {
    public: st_style_list,
    entries: Vec<st_style_entry>,
    strings: Vec<(CString, CString)>,
    thumbnails: Vec<Vec<u8>>,
}

/// Lists the style packs in the style folders: each folder of
/// `ST_STYLE_PATH` (colon-separated), then
/// `$XDG_DATA_HOME/styletransfer/styles` (default
/// `~/.local/share/styletransfer/styles`), then the installed
/// `share/styletransfer/styles` beside the library. A name found earlier
/// hides the same name later; unreadable files are skipped. On success
/// writes to `*out` a list owned by the caller, released with
/// [`st_style_list_free`].
///
/// Returns `ST_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_list_styles(out: *mut *mut st_style_list) -> st_status {
    guard(|| {
        let Some(out) = out.as_mut() else { return st_status::ST_NULL_ARGUMENT };
        let installed = library_dir().map(|d| d.join("../share/styletransfer/styles"));
        let found = list_packs(&style_dirs(installed.as_deref()));
        let strings: Vec<(CString, CString)> =
            found.iter().map(|e| (c_string(&e.name), c_string(&e.path.to_string_lossy()))).collect();
        let thumbnails: Vec<Vec<u8>> = found.into_iter().map(|e| e.thumbnail).collect();
        let entries = strings
            .iter()
            .zip(&thumbnails)
            .map(|((name, path), thumb)| st_style_entry {
                name: name.as_ptr(),
                path: path.as_ptr(),
                thumbnail_png: thumb.as_ptr(),
                thumbnail_size: thumb.len(),
            })
            .collect::<Vec<_>>();
        let mut boxed = Box::new(StyleListBox {
            public: st_style_list { entries: std::ptr::null(), count: entries.len() },
            entries,
            strings,
            thumbnails,
        });
        boxed.public.entries = boxed.entries.as_ptr();
        *out = Box::into_raw(boxed).cast();
        st_status::ST_OK
    })
}

/// Releases a list from [`st_list_styles`]. NULL is a no-op; freeing twice
/// is forbidden. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_style_list_free(list: *mut st_style_list) {
    if !list.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(list.cast::<StyleListBox>()))));
    }
}

/// Test hook, not part of the public header: panics inside the panic
/// boundary of `ctx` so tests can check that `ST_PANIC` comes back and the
/// handle survives.
#[no_mangle]
pub unsafe extern "C" fn st_test_panic(ctx: *mut st_context) -> st_status {
    with_context(ctx, |_| -> Result<(), Failure> { panic!("st_test_panic was called") })
}
