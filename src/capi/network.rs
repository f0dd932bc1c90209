//! Networks: `st_load_network`, `st_read_network_info` and the one-pass run
//! that `st_run` makes with `ST_ENGINE_NETWORK`.

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};

use super::boundary::{c_str, null_argument, Failure};
use super::context::st_context;
use super::types::*;
use crate::color::PreserveColor;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::network::{InferenceOptions, Network, NetworkInfo};
use crate::run::{Flow, RunOptions};

/// Loads a network file (`.stnet`, as `stylize train` writes it) into the
/// handle, on the handle's device, replacing the one loaded before; runs
/// with `engine = ST_ENGINE_NETWORK` use it. `path` NULL unloads the
/// network. The file is read whole and checked (format version,
/// architecture, every tensor's shape, its digest) before the loaded one
/// is replaced: on failure the handle keeps what it had.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle; `ST_INVALID_ARGUMENT` for
/// a path that is not UTF-8; `ST_NETWORK_ERROR` for a missing, unreadable,
/// corrupt or truncated file, one of a newer format, another architecture
/// or a shape that does not match its tensors (the message names the file
/// and what is wrong); `ST_BUSY` from inside a progress callback. One
/// thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_load_network(ctx: *mut st_context, path: *const c_char) -> st_status {
    ffi_boundary!(ctx, |context| {
        let Some(mut slot) = try_network(context) else { return Err(super::boundary::busy()) };
        match c_str(path, "path")? {
            None => *slot = None,
            Some(path) => *slot = Some(Network::load(Path::new(path), context.engine.device())?),
        }
        Ok(())
    })
}

/// A network file's description, from [`st_read_network_info`].
#[repr(C)]
#[derive(Debug)]
pub struct st_network_info {
    /// Display name (UTF-8, NUL-terminated).
    pub name: *const c_char,
    /// The format version of the file.
    pub format_version: u32,
    /// Channels of the full-resolution layers.
    pub width: u32,
    /// Residual blocks.
    pub residual_blocks: u32,
    /// Training images.
    pub training_images: u32,
    /// Side of the square training crops.
    pub training_size: u32,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Mean training loss over the last steps.
    pub final_loss: f64,
    /// SHA-256 (hex) of the VGG19 whose objective it was trained on.
    pub model_sha256: *const c_char,
}

/// An [`st_network_info`] with the strings it points to (the public part
/// first, so a pointer to the box is one to it).
#[repr(C)]
struct NetworkInfoBox {
    public: st_network_info,
    name: CString,
    model: CString,
}

/// Reads a network file's description without loading its tensors. On
/// success writes a new description to `*out` (owned by the caller;
/// release it with [`st_network_info_free`]); on failure leaves `*out`
/// unchanged and `st_last_error(NULL)` gives the message.
///
/// Returns `ST_NULL_ARGUMENT` when `path` or `out` is NULL;
/// `ST_INVALID_ARGUMENT` for a path that is not UTF-8; `ST_NETWORK_ERROR`
/// for a file that is not a readable network file of a format this
/// library reads. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_read_network_info(path: *const c_char, out: *mut *mut st_network_info) -> st_status {
    ffi_boundary!("st_read_network_info": {
        if out.is_null() {
            return Err(null_argument("out"));
        }
        let path = c_str(path, "path")?.ok_or_else(|| null_argument("path"))?;
        let info = Network::read_info(Path::new(path))?;
        let name = CString::new(info.name.replace('\0', " ")).unwrap_or_default();
        let model = CString::new(info.model_sha256.replace('\0', " ")).unwrap_or_default();
        let boxed = Box::new(NetworkInfoBox {
            public: st_network_info {
                name: name.as_ptr(),
                format_version: info.format_version,
                width: info.shape.width as u32,
                residual_blocks: info.shape.residual_blocks as u32,
                training_images: u32::try_from(info.training_images).unwrap_or(u32::MAX),
                training_size: info.training_size,
                steps: info.steps,
                final_loss: info.final_loss,
                model_sha256: model.as_ptr(),
            },
            name,
            model,
        });
        *out = Box::into_raw(boxed).cast();
        Ok(())
    })
}

/// Frees a description from [`st_read_network_info`]. NULL is a no-op;
/// freeing one twice is forbidden. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_network_info_free(info: *mut st_network_info) {
    ffi_boundary!({
        if !info.is_null() {
            drop(Box::from_raw(info.cast::<NetworkInfoBox>()));
        }
    })
}

/// The handle's loaded network, locked.
type NetworkSlot<'a> = std::sync::MutexGuard<'a, Option<(Network, NetworkInfo)>>;

/// The handle's network slot, unless a run holds it (a call from inside
/// its progress callback): `None` then.
fn try_network(context: &st_context) -> Option<NetworkSlot<'_>> {
    match context.network.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The memory plan of a network pass on a `size` content with `options`
/// (see `st_plan_memory`).
pub(super) fn plan_network(
    context: &st_context,
    size: (u32, u32),
    options: &RunOptions,
) -> Result<st_memory_plan, Failure> {
    let Some(slot) = try_network(context) else { return Err(super::boundary::busy()) };
    let Some((network, _)) = slot.as_ref() else {
        let reason = "no network is loaded (st_load_network) for ST_ENGINE_NETWORK";
        return Err(Error::Network { path: PathBuf::new(), reason: reason.into() }.into());
    };
    let (width, height) = Network::working_size(size.0, size.1, options.size);
    let inference = inference_options(context, options);
    let (tile, tiles, peak) = network.plan(width, height, &inference)?;
    Ok(st_memory_plan {
        size: 0, // the caller's, kept
        peak_bytes: peak,
        budget_bytes: inference
            .budget_bytes
            .or_else(|| crate::plan::device_free_bytes(context.engine.device()))
            .unwrap_or(0),
        model_bytes: network.parameter_bytes(),
        levels: 1,
        tiled_levels: tile.is_some() as u32,
        tiles: tiles as u32,
        tile_size: tile.unwrap_or(width.max(height)),
    })
}

/// The inference settings of a run: the handle's precision, the run's budget and tile size.
fn inference_options(context: &st_context, options: &RunOptions) -> InferenceOptions {
    InferenceOptions {
        precision: context.engine.model().precision(),
        budget_bytes: options.memory.max_memory_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
        tile_size: options.memory.tile_size,
    }
}

/// A one-pass run of the handle's network on `rgb`: at the strength
/// `st_set_strength` chose (0.5 by default), at `options.size` when it is
/// set (the result resampled back to the content's size) else at the
/// content's size, in the handle's precision, tiled past
/// `options.memory`'s budget or tile size. `progress(done, total)` after
/// each tile pass.
pub(super) fn run_network(
    context: &st_context,
    rgb: &RgbImage,
    options: &RunOptions,
    progress: &mut dyn FnMut(usize, usize, (u32, u32)) -> Flow,
) -> Result<RgbImage, Failure> {
    if options.preserve_color == PreserveColor::Histogram {
        let reason = "histogram matching recolours the style images, which a network does not use; use luminance";
        return Err(Error::invalid("preserve_color", reason).into());
    }
    let Some(mut slot) = try_network(context) else { return Err(super::boundary::busy()) };
    let Some((network, _)) = slot.as_mut() else {
        let reason = "no network is loaded (st_load_network) for ST_ENGINE_NETWORK";
        return Err(Error::Network { path: PathBuf::new(), reason: reason.into() }.into());
    };
    let strength = context.chosen().strength.unwrap_or(0.5);
    let size = Network::working_size(rgb.width(), rgb.height(), options.size);
    let luminance = options.preserve_color == PreserveColor::Luminance;
    let inference = inference_options(context, options);
    let (image, _) = network.stylize_at(rgb, strength, options.size, luminance, &inference, &mut |done, total| {
        progress(done, total, size)
    })?;
    Ok(image)
}
