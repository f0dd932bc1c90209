//! The panic boundary and status mapping that every entry point goes
//! through ([`ffi_boundary!`]), with the argument checks they share, and
//! the two functions that need nothing else (`st_version`, `st_status_str`).

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use super::context::st_context;
use super::types::st_status;
use crate::error::{Error, Result};

/// The panic boundary of every C entry point; nothing unwinds past it.
///
/// - `ffi_boundary!(ctx, |context| body)`: a call on a handle. A NULL `ctx`
///   gives `ST_NULL_ARGUMENT`. `body` returns `Result<(), Failure>`; the
///   outcome (success, failure or panic) becomes the handle's last error and
///   its status is returned.
/// - `ffi_boundary!("st_name": body)`: a call without a handle. `body`
///   returns `Result<(), Failure>`; with no handle to hold the message, a
///   failure is written to stderr when `ST_VERBOSE` is set.
/// - `ffi_boundary!({ body })`: the rest (destroy, free, static strings):
///   the body's value, or on a panic its type's [`OnPanic`] value.
macro_rules! ffi_boundary {
    ($body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(value) => value,
            Err(_) => $crate::capi::boundary::OnPanic::on_panic(),
        }
    };
    ($name:literal: $body:expr) => {
        $crate::capi::boundary::without_handle($name, || $body)
    };
    ($ctx:expr, |$context:ident| $body:expr) => {
        $crate::capi::boundary::on_handle($ctx, |$context| $body)
    };
}

/// What an entry point returns when its body panicked.
pub(super) trait OnPanic {
    fn on_panic() -> Self;
}

impl OnPanic for st_status {
    fn on_panic() -> Self {
        st_status::ST_PANIC
    }
}

impl OnPanic for () {
    fn on_panic() {}
}

impl OnPanic for *const c_char {
    fn on_panic() -> Self {
        c"internal error (panic)".as_ptr()
    }
}

/// A failed call: its status and message.
pub(super) struct Failure {
    status: st_status,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { status: status_of(&error), message: error.to_string() }
    }
}

pub(super) fn null_argument(name: &str) -> Failure {
    Failure { status: st_status::ST_NULL_ARGUMENT, message: format!("`{name}` is NULL") }
}

/// `ST_NULL_ARGUMENT` with a message of its own (a NULL that is wrong only
/// beside another argument).
pub(super) fn null_argument_because(message: String) -> Failure {
    Failure { status: st_status::ST_NULL_ARGUMENT, message }
}

pub(super) fn busy() -> Failure {
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
        Error::Network { .. } => st_status::ST_NETWORK_ERROR,
        Error::Device(_) => st_status::ST_DEVICE_ERROR,
        Error::OutOfMemory(_) => st_status::ST_OUT_OF_MEMORY,
        Error::Cancelled => st_status::ST_CANCELLED,
        Error::Io { .. } => st_status::ST_IO_ERROR,
        Error::Torch(_) => st_status::ST_INTERNAL_ERROR,
        Error::Runtime(_) => st_status::ST_RUNTIME_ERROR,
    }
}

/// Locks a handle's mutex; a panic inside an earlier call does not make
/// the handle unusable (its state is replaced whole or not at all).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error (panic): {what}")
}

/// [`ffi_boundary!`] on a handle.
pub(super) unsafe fn on_handle(
    ctx: *const st_context,
    body: impl FnOnce(&st_context) -> Result<(), Failure>,
) -> st_status {
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

thread_local! {
    /// The message of this thread's last call made without a handle
    /// ("" after a success): what `st_last_error(NULL)` returns.
    static LAST_ERROR_WITHOUT_HANDLE: std::cell::RefCell<CString> = std::cell::RefCell::new(CString::default());
}

fn set_error_without_handle(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR_WITHOUT_HANDLE.with(|last| *last.borrow_mut() = text);
}

/// This thread's last message from a call made without a handle; valid
/// until the next such call on this thread (the buffer is replaced then).
pub(super) fn last_error_without_handle() -> *const c_char {
    LAST_ERROR_WITHOUT_HANDLE.with(|last| last.borrow().as_ptr())
}

/// [`ffi_boundary!`] without a handle.
pub(super) fn without_handle(name: &str, body: impl FnOnce() -> Result<(), Failure>) -> st_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_error_without_handle("");
            return st_status::ST_OK;
        }
        Ok(Err(failure)) => failure,
        Err(payload) => Failure { status: st_status::ST_PANIC, message: panic_message(payload.as_ref()) },
    };
    if std::env::var_os("ST_VERBOSE").is_some() {
        eprintln!("{name}: {}", failure.message);
    }
    set_error_without_handle(&failure.message);
    failure.status
}

/// A C string argument as UTF-8; NULL gives `None`.
pub(super) unsafe fn c_str<'a>(ptr: *const c_char, name: &'static str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(ptr).to_str().map(Some).map_err(|_| Error::invalid(name, "is not valid UTF-8"))
}

/// Largest `size` field a caller's struct may declare: larger values, and
/// values that are not a multiple of 8, are taken for an uninitialised
/// field, not for a newer struct (whose size `sizeof` rounds to 8).
const MAX_STRUCT_SIZE: usize = 256;

/// Whether `size` can be a newer header's struct of one that is `current` bytes here.
fn newer_size(size: usize, current: usize) -> bool {
    size > current && size <= MAX_STRUCT_SIZE && size % 8 == 0
}

/// Checks a struct's `size` field against this library's struct.
pub(super) fn check_size(size: usize, expected: usize, name: &'static str) -> Result<()> {
    if size != expected {
        return Err(Error::invalid(
            name,
            format!(
                "size field is {size} but this library's struct is {expected} bytes (library {}; use the matching \
                 header)",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    Ok(())
}

/// A caller's struct whose first field is its `size`: `size` may be this
/// library's `size_of::<T>()`, one of `earlier` (the struct before fields
/// were appended; the fields such a caller's struct lacks keep their values
/// in `defaults`), or larger, from a newer header, when every byte past
/// this library's struct is zero (a newer field at zero asks for nothing
/// this library does not do). Other sizes, larger ones with a non-zero
/// tail, and sizes over [`MAX_STRUCT_SIZE`] or not a multiple of 8 are
/// refused with a message that names both sizes and this library's version.
///
/// `T` must be plain data (integers, floats, raw pointers: any bytes are a
/// value), and each earlier size must be that struct's whole `sizeof`.
///
/// # Safety
/// `ptr` must point to a struct of the `size` it declares.
pub(super) unsafe fn read_versioned<T: Copy>(
    ptr: *const T,
    defaults: T,
    earlier: &[usize],
    name: &'static str,
) -> Result<T> {
    let size = ptr.cast::<usize>().read_unaligned();
    let current = std::mem::size_of::<T>();
    if newer_size(size, current) {
        let tail = std::slice::from_raw_parts(ptr.cast::<u8>().add(current), size - current);
        if let Some(at) = tail.iter().position(|&b| b != 0) {
            return Err(Error::invalid(
                name,
                format!(
                    "size field is {size}: the struct comes from a newer header, and byte {} is set, past the {current} \
                     bytes this library ({}) knows; use a library at least as new as the header",
                    current + at,
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
    } else if size != current && !earlier.contains(&size) {
        check_size(size, current, name)?;
    }
    let mut value = defaults;
    std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), size.min(current));
    Ok(value)
}

/// The `size` field of a caller's output struct, checked as
/// [`write_versioned`] checks it, so that a call can refuse it before its work.
///
/// # Safety
/// `ptr` must point to a struct of the `size` it declares.
pub(super) unsafe fn output_size<T: Copy>(ptr: *const T, name: &'static str) -> Result<usize> {
    let size = ptr.cast::<usize>().read_unaligned();
    let current = std::mem::size_of::<T>();
    if !newer_size(size, current) {
        check_size(size, current, name)?;
    }
    Ok(size)
}

/// Writes `value` into a caller's output struct whose first field is its
/// `size`, kept as the caller set it: this library's size, or a larger one
/// from a newer header, whose bytes past this library's struct are left as
/// they are (a caller zeroes them to see which fields the library did not
/// know). Other sizes are refused as [`read_versioned`] refuses them, and
/// nothing is written.
///
/// # Safety
/// `ptr` must point to a writable struct of the `size` it declares.
pub(super) unsafe fn write_versioned<T: Copy>(ptr: *mut T, value: T, name: &'static str) -> Result<()> {
    let size = output_size(ptr, name)?;
    let current = std::mem::size_of::<T>();
    let bytes = ptr.cast::<u8>();
    std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), bytes, current);
    bytes.cast::<usize>().write_unaligned(size);
    Ok(())
}

/// A blend weight: finite and ≥ 0.
pub(super) fn check_blend_weight(blend_weight: f32) -> Result<f64> {
    if !(blend_weight.is_finite() && blend_weight >= 0.0) {
        let reason = format!("{blend_weight} is not a finite non-negative number");
        return Err(Error::invalid("blend_weight", reason));
    }
    Ok(blend_weight as f64)
}

/// The library version, e.g. `"0.4.0"` (static storage; never NULL).
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn st_version() -> *const c_char {
    ffi_boundary!({ concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() })
}

/// A static English description of a status value (never NULL; unknown
/// values give "unknown status").
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn st_status_str(status: c_int) -> *const c_char {
    ffi_boundary!({
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
            13 => "libtorch runtime of another version\0",
            14 => "network file error\0",
            _ => "unknown status\0",
        };
        text.as_ptr().cast()
    })
}

/// Test hook, not part of the public header: panics inside the panic
/// boundary of `ctx` so tests can check that `ST_PANIC` comes back and the
/// handle survives.
#[no_mangle]
pub unsafe extern "C" fn st_test_panic(ctx: *mut st_context) -> st_status {
    ffi_boundary!(ctx, |_context| panic!("st_test_panic was called"))
}
