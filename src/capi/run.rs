//! Runs and their plans: `st_run_options` converted to the core's
//! settings, `st_plan_memory`, `st_run`.

use std::ffi::c_void;

use super::boundary::{null_argument, output_size, read_versioned, write_versioned};
use super::context::{st_context, styles_of};
use super::options::st_default_run_options;
use super::pixels;
use super::types::*;
use crate::color::PreserveColor;
use crate::engine::check_content_size;
use crate::error::{Error, Result};
use crate::image::{blend_with_mask, MAX_SIDE};
use crate::loss::Normalization;
use crate::optim::Optimizer;
use crate::plan::MemoryOptions;
use crate::run::{default_adam, default_lbfgs, Flow, Init, RunOptions};

/// A run's settings, converted.
struct Request {
    options: RunOptions,
    /// One value per pixel, the content's size.
    mask: Option<Vec<f32>>,
}

/// `st_run_options`'s size before `quality` and `render_scale` (0.1).
const RUN_OPTIONS_SIZE_0_1: usize = std::mem::offset_of!(st_run_options, quality);
// The 0.1 struct ended at `tile_overlap` with no tail padding: its sizeof.
const _: () = assert!(RUN_OPTIONS_SIZE_0_1 % std::mem::align_of::<st_run_options>() == 0);

/// Long sides of the [`st_quality`] presets.
fn quality_side(quality: u32) -> Result<Option<u32>> {
    match quality {
        q if q == st_quality::ST_QUALITY_CUSTOM as u32 => Ok(None),
        q if q == st_quality::ST_QUALITY_PREVIEW as u32 => Ok(Some(256)),
        q if q == st_quality::ST_QUALITY_NORMAL as u32 => Ok(Some(512)),
        q if q == st_quality::ST_QUALITY_HIGH as u32 => Ok(Some(1024)),
        other => Err(Error::invalid("quality", format!("unknown value {other}"))),
    }
}

/// The working long side `o` asks for on a `content`-sized image, if any.
fn working_side(o: &st_run_options, content: (u32, u32)) -> Result<Option<u32>> {
    if !(o.render_scale.is_finite() && o.render_scale >= 0.0) {
        return Err(Error::invalid("render_scale", format!("{} is not a positive number", o.render_scale)));
    }
    if o.working_size > MAX_SIDE {
        return Err(Error::invalid("working_size", format!("{} is more than {MAX_SIDE}", o.working_size)));
    }
    let Some(preset) = quality_side(o.quality)? else {
        return Ok((o.working_size > 0).then_some(o.working_size));
    };
    if o.working_size > 0 {
        return Err(Error::invalid("quality", "set either quality or working_size, not both"));
    }
    let scale = if o.render_scale == 0.0 { 1.0 } else { o.render_scale };
    let side = (preset as f64 * scale as f64).round().max(1.0) as u32;
    Ok(Some(side.min(content.0.max(content.1)).max(1)))
}

/// `options` (NULL: the defaults) converted for a `content`-sized image.
unsafe fn run_request(options: *const st_run_options, content: (u32, u32)) -> Result<Request> {
    let mut defaults = std::mem::zeroed::<st_run_options>();
    st_default_run_options(&mut defaults);
    let o = if options.is_null() {
        defaults
    } else {
        read_versioned(options, defaults, &[RUN_OPTIONS_SIZE_0_1], "run_options")?
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
            if (view.width, view.height) != content {
                let reason =
                    format!("is {}×{} but the content is {}×{}", view.width, view.height, content.0, content.1);
                return Err(Error::invalid("mask", reason));
            }
            Some(view.to_plane("mask")?)
        }
        None => None,
    };
    let options = RunOptions {
        iterations: o.iterations as usize,
        scales: (o.scales > 0).then_some(o.scales as usize),
        size: working_side(&o, content)?,
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
/// pyramid levels, which are tiled, the estimated peak. `out->size` is
/// `sizeof(st_memory_plan)` (or a newer header's, see its doc); the rest of
/// `*out` is written on `ST_OK`.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or `out`,
/// `ST_INVALID_ARGUMENT` for a bad size or option (a side of 0 or over
/// [`ST_MAX_SIDE`], a working image under 16 pixels, a `size` field
/// `st_memory_plan` does not accept), `ST_OUT_OF_MEMORY` when
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
    ffi_boundary!(ctx, |context| {
        if out.is_null() {
            return Err(null_argument("out"));
        }
        output_size(out, "memory_plan")?;
        let styles = styles_of(context)?;
        check_content_size(width, height)?;
        let request = run_request(options, (width, height))?;
        let plan = context.engine.plan((width, height), &styles, &request.options)?;
        let finest = plan.levels.last().ok_or_else(|| Error::invalid("scales", "no pyramid level"))?;
        let plan = st_memory_plan {
            size: 0, // the caller's, kept
            peak_bytes: plan.peak_bytes,
            budget_bytes: plan.budget_bytes.unwrap_or(0),
            model_bytes: plan.model_bytes,
            levels: plan.levels.len() as u32,
            tiled_levels: plan.levels.iter().filter(|l| l.tiles.is_some()).count() as u32,
            tiles: finest.tile_count() as u32,
            tile_size: finest.tiles.map_or(finest.width.max(finest.height), |g| g.tile),
        };
        write_versioned(out, plan, "memory_plan")?;
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
/// struct size, NaN or infinite float samples in the content, mask or init
/// image, a working image under 16 pixels on a side (see `working_size`),
/// or when no style was added; `ST_CANCELLED` when the callback
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
    ffi_boundary!(ctx, |context| {
        let content = content.as_ref().ok_or_else(|| null_argument("content"))?;
        let output = output.as_ref().ok_or_else(|| null_argument("output"))?;
        let content_view = pixels::view(content, "content")?;
        let output_view = pixels::view(output, "output")?;
        let (width, height) = (content_view.width, content_view.height);
        if (output_view.width, output_view.height) != (width, height) {
            let reason = format!("is {}×{} but the content is {width}×{height}", output_view.width, output_view.height);
            return Err(Error::invalid("output", reason).into());
        }
        let request = run_request(options, (width, height))?;
        let (rgb, alpha) = content_view.to_rgb("content")?;
        let mut styles = styles_of(context)?;
        context.choose(|c| c.normalization = request.options.normalization)?;
        let mut on_progress = |p: &crate::run::Progress| {
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
            Some(mask) => blend_with_mask(&result.image, &rgb, mask)?,
            None => result.image,
        };
        output_view.store(&image, alpha.as_deref());
        Ok(())
    })
}
