//! The handle (`st_context`): creation, destruction, memory release, the
//! last error, and the weights and strength a run reads live.

use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::sync::Mutex;

use super::boundary::{busy, c_str, lock, null_argument, read_versioned, st_version, Failure};
use super::options::st_default_options;
use super::types::*;
use crate::device::DeviceChoice;
use crate::device::Precision;
use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::loss::{LiveWeights, Normalization, Weights};
use crate::model::MODEL_FILE_NAME;
use crate::network::{Network, NetworkInfo};
use crate::style::StyleSet;

/// An engine: a model on a device, styles, weights, and the last error. Opaque.
pub struct st_context {
    pub(super) engine: Engine,
    styles: Mutex<StyleSet>,
    /// Weights the running optimisation reads at every evaluation.
    pub(super) live: LiveWeights,
    chosen: Mutex<Chosen>,
    /// The network `st_load_network` loaded, with its file's description.
    pub(super) network: Mutex<Option<(Network, NetworkInfo)>>,
    last_error: Mutex<CString>,
}

/// What the caller chose; the live weights are derived from it.
#[derive(Clone, Copy)]
pub(super) struct Chosen {
    /// Set by `st_set_weights`; `None`: the defaults of the normalisation.
    weights: Option<Weights>,
    /// Set by `st_set_strength`.
    pub(super) strength: Option<f64>,
    /// Of the current (or last) run.
    pub(super) normalization: Normalization,
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

/// The styles, unless a run holds them (a call from inside its callback).
pub(super) fn styles_of(context: &st_context) -> Result<std::sync::MutexGuard<'_, StyleSet>, Failure> {
    match context.styles.try_lock() {
        Ok(guard) => Ok(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(busy()),
    }
}

impl st_context {
    pub(super) fn set_error(&self, message: &str) {
        let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
        *lock(&self.last_error) = text;
    }
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
pub(super) fn library_dir() -> Option<PathBuf> {
    let file = crate::runtime::object_file(st_version as *const c_void)?;
    std::fs::canonicalize(file).ok()?.parent().map(PathBuf::from)
}

/// Creates a handle: loads the model onto the chosen device. On success
/// writes the new handle to `*out` (owned by the caller; release it with
/// [`st_destroy`]); on failure leaves `*out` unchanged.
///
/// `options` may be NULL for the defaults. Returns `ST_NULL_ARGUMENT` when
/// `out` is NULL; `ST_INVALID_ARGUMENT` for a wrong `options->size`, an
/// unknown device string or precision; `ST_MODEL_ERROR` when the model is
/// missing or unusable, or its weights do not match the digest the file
/// records (`weights_sha256`); `ST_DEVICE_ERROR` when the device is absent;
/// `ST_RUNTIME_ERROR` when the libtorch runtime loaded is not the version
/// this library was built for. There is no handle to hold the message on
/// failure: `st_last_error(NULL)` gives it, on the same thread (and it goes
/// to stderr when `ST_VERBOSE` is set). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_create(options: *const st_options, out: *mut *mut st_context) -> st_status {
    ffi_boundary!("st_create": {
        if out.is_null() {
            return Err(null_argument("out"));
        }
        *out = Box::into_raw(Box::new(create(options)?));
        Ok(())
    })
}

unsafe fn create(options: *const st_options) -> Result<st_context> {
    let mut defaults = std::mem::zeroed::<st_options>();
    st_default_options(&mut defaults);
    let options = if options.is_null() { defaults } else { read_versioned(options, defaults, &[], "options")? };
    let model_path = match c_str(options.model_path, "model_path")? {
        Some(path) => PathBuf::from(path),
        None => search_model()?,
    };
    let device_name = c_str(options.device, "device")?.unwrap_or("auto");
    let device = DeviceChoice::from_name(device_name).ok_or_else(|| {
        Error::invalid("device", format!("`{device_name}` is not auto, cpu, cuda or cuda:N (lower case)"))
    })?;
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
        network: Mutex::new(None),
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
    ffi_boundary!({
        if ctx.is_null() {
            return;
        }
        let context = Box::from_raw(ctx);
        let cuda = context.engine.device().is_cuda();
        drop(context);
        if cuda {
            crate::cuda::release_cached();
        }
    })
}

/// Gives the memory that the last runs left cached back to the system
/// (CUDA: the allocator's cached device memory; CPU: the free pages of the
/// C heap), for a host that needs the memory for other work between runs.
/// The model stays loaded. Returns `ST_NULL_ARGUMENT` for a NULL handle,
/// `ST_BUSY` from inside a progress callback. Thread-safe with respect to other handles.
#[no_mangle]
pub unsafe extern "C" fn st_release_memory(ctx: *mut st_context) -> st_status {
    ffi_boundary!(ctx, |context| {
        let _styles = styles_of(context)?;
        context.engine.release_memory();
        Ok(())
    })
}

/// The message of the last failed call on `ctx` ("" after a success). The
/// string belongs to the handle and stays valid until the next call on it.
/// NULL `ctx` gives the message of this thread's last call that takes no
/// handle ([`st_create`], `st_read_pack_info`, `st_plan_memory`, ...;
/// "" when it succeeded), valid until the next such call on this thread.
/// Never returns NULL.
#[no_mangle]
pub unsafe extern "C" fn st_last_error(ctx: *const st_context) -> *const c_char {
    ffi_boundary!({
        match ctx.as_ref() {
            Some(context) => lock(&context.last_error).as_ptr(),
            None => super::boundary::last_error_without_handle(),
        }
    })
}

fn validate_weight(name: &'static str, value: f32) -> Result<f64> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::invalid(name, format!("{value} is not a finite non-negative number")));
    }
    Ok(value as f64)
}

impl st_context {
    /// The caller's choices as they stand.
    pub(super) fn chosen(&self) -> Chosen {
        *lock(&self.chosen)
    }

    /// Updates the caller's choice and the live weights derived from it.
    pub(super) fn choose(&self, change: impl FnOnce(&mut Chosen)) -> Result<()> {
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
    ffi_boundary!(ctx, |context| {
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
    ffi_boundary!(ctx, |context| {
        if !(0.0..=1.0).contains(&strength) {
            return Err(Error::invalid("strength", format!("{strength} is outside 0..1")).into());
        }
        Ok(context.choose(|c| c.strength = Some(strength as f64))?)
    })
}

/// The `st_options.device` string of a host's device menu entry, one of
/// [`st_device_choice`] (`"auto"`, `"cpu"`, `"cuda"`), in static storage;
/// NULL for any other value. Thread-safe.
#[no_mangle]
pub extern "C" fn st_device_name(choice: u32) -> *const c_char {
    ffi_boundary!({
        match choice {
            c if c == st_device_choice::ST_DEVICE_AUTO as u32 => c"auto".as_ptr(),
            c if c == st_device_choice::ST_DEVICE_CPU as u32 => c"cpu".as_ptr(),
            c if c == st_device_choice::ST_DEVICE_GPU as u32 => c"cuda".as_ptr(),
            _ => std::ptr::null(),
        }
    })
}
