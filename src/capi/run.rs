//! Runs and their plans: `st_run_options` converted to the core's
//! settings, `st_plan_memory`, `st_run`, `st_run_frame`.

use std::ffi::c_void;

use super::boundary::{null_argument, null_argument_because, output_size, read_versioned, write_versioned, Failure};
use super::context::{st_context, styles_of};
use super::network::run_network;
use super::options::{st_default_frame, st_default_run_options};
use super::pixels;
use super::types::*;
use crate::color::PreserveColor;
use crate::engine::check_content_size;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::image::{blend_with_mask, MAX_SIDE};
use crate::loss::Normalization;
use crate::optim::Optimizer;
use crate::plan::MemoryOptions;
use crate::run::{default_adam, default_lbfgs, Flow, Init, RunOptions};
use crate::sequence::{FrameInput, FrameOptions, Previous, Temporal};

/// A run's settings, converted.
struct Request {
    options: RunOptions,
    /// `ST_ENGINE_NETWORK`: one pass of the handle's network.
    network: bool,
    /// One value per pixel, the content's size.
    mask: Option<Vec<f32>>,
}

/// `st_run_options`'s size before `quality` and `render_scale` (0.1).
const RUN_OPTIONS_SIZE_0_1: usize = std::mem::offset_of!(st_run_options, quality);
// The 0.1 struct ended at `tile_overlap` with no tail padding: its sizeof.
const _: () = assert!(RUN_OPTIONS_SIZE_0_1 % std::mem::align_of::<st_run_options>() == 0);
/// `st_run_options`'s size before `engine` (0.2 and 0.3).
const RUN_OPTIONS_SIZE_0_3: usize = std::mem::offset_of!(st_run_options, engine);
// The 0.3 struct ended at `render_scale` with no tail padding: its sizeof.
const _: () = assert!(RUN_OPTIONS_SIZE_0_3 % std::mem::align_of::<st_run_options>() == 0);

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
        read_versioned(options, defaults, &[RUN_OPTIONS_SIZE_0_1, RUN_OPTIONS_SIZE_0_3], "run_options")?
    };
    if o.iterations == 0 {
        return Err(Error::invalid("iterations", "must be at least 1"));
    }
    let network = match o.engine {
        v if v == st_engine::ST_ENGINE_OPTIMIZE as u32 => false,
        v if v == st_engine::ST_ENGINE_NETWORK as u32 => true,
        other => return Err(Error::invalid("engine", format!("unknown value {other}"))),
    };
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
    Ok(Request { options, network, mask })
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
///
/// With `ST_ENGINE_NETWORK` it plans the pass of the loaded network
/// (`ST_NETWORK_ERROR` when none is): one level at the working size,
/// `model_bytes` the network's parameters, `tiles` and `tile_size` the
/// tiles' count and inner side, `peak_bytes` one pass's estimate.
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
        if request.network {
            let plan = super::network::plan_network(context, (width, height), &request.options)?;
            write_versioned(out, plan, "memory_plan")?;
            return Ok(());
        }
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
/// failures; `ST_NETWORK_ERROR` for `ST_ENGINE_NETWORK` with no network
/// loaded (the other fields of `options` say what such a run uses). One
/// thread at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_run(
    ctx: *mut st_context,
    content: *const st_image,
    output: *mut st_image,
    options: *const st_run_options,
    progress: st_progress_fn,
    user_data: *mut c_void,
) -> st_status {
    ffi_boundary!(ctx, |context| { run_one(context, content, output, options, None, progress, user_data) })
}

/// Stylises one frame of a sequence: `content` following `frame`'s previous
/// content frame and previous output, as `frame->temporal` says. With
/// `ST_TEMPORAL_FLOW` the library computes the optical flow between the two
/// content frames (OpenCV's DIS, both ways, at the working size), warps the
/// previous output into this frame, starts there and adds the temporal term
/// where the flow is reliable (0 at disocclusions and motion boundaries).
/// The handle's style targets are computed once per size and reused by
/// every frame. Everything else is as [`st_run`]: `output`, alpha, `mask`,
/// progress, cancel and `options` (NULL: defaults).
///
/// With `ST_ENGINE_NETWORK` every frame is one pass of the network, as
/// [`st_run`] makes it: `frame` is checked and its previous images are not
/// used (the network's output depends on the frame alone).
///
/// `frame` is read only and must not be NULL; both previous images NULL
/// runs the frame on its own (a first frame, or a frame whose previous one
/// is not at hand). The images are read only and may be any pixel format.
///
/// Returns what [`st_run`] returns, and `ST_NULL_ARGUMENT` for a NULL
/// `frame`, or when exactly one of the previous images is NULL (the
/// message names it); `ST_INVALID_ARGUMENT` for a previous image of another
/// size than the content, an unknown `temporal`, a negative or non-finite
/// `temporal_weight`, or a bad `size`; `ST_RUNTIME_ERROR` when
/// `ST_TEMPORAL_FLOW` needs the optical-flow library and it cannot be
/// loaded (`libstyletransfer_flow.so`, OpenCV 4's video module). One thread
/// at a time per handle.
#[no_mangle]
pub unsafe extern "C" fn st_run_frame(
    ctx: *mut st_context,
    content: *const st_image,
    output: *mut st_image,
    options: *const st_run_options,
    frame: *const st_frame,
    progress: st_progress_fn,
    user_data: *mut c_void,
) -> st_status {
    ffi_boundary!(ctx, |context| {
        if frame.is_null() {
            return Err(null_argument("frame"));
        }
        let mut defaults = std::mem::zeroed::<st_frame>();
        st_default_frame(&mut defaults);
        let frame = read_versioned(frame, defaults, &[], "frame")?;
        run_one(context, content, output, options, Some(&frame), progress, user_data)
    })
}

/// The previous images of `frame`, converted: both or neither.
unsafe fn previous_images(frame: &st_frame, size: (u32, u32)) -> Result<Option<(RgbImage, RgbImage)>, Failure> {
    let convert = |image: &st_image, name: &'static str| -> Result<RgbImage> {
        let view = pixels::view(image, name)?;
        if (view.width, view.height) != size {
            let reason = format!("is {}×{} but the content is {}×{}", view.width, view.height, size.0, size.1);
            return Err(Error::invalid(name, reason));
        }
        Ok(view.to_rgb(name)?.0)
    };
    match (frame.previous_content.as_ref(), frame.previous_output.as_ref()) {
        (None, None) => Ok(None),
        (Some(c), Some(o)) => Ok(Some((convert(c, "previous_content")?, convert(o, "previous_output")?))),
        (Some(_), None) => Err(null_argument_because("`previous_output` is NULL but `previous_content` is not".into())),
        (None, Some(_)) => Err(null_argument_because("`previous_content` is NULL but `previous_output` is not".into())),
    }
}

/// The work of [`st_run`] (`frame` NULL) and [`st_run_frame`].
unsafe fn run_one(
    context: &st_context,
    content: *const st_image,
    output: *mut st_image,
    options: *const st_run_options,
    frame: Option<&st_frame>,
    progress: st_progress_fn,
    user_data: *mut c_void,
) -> Result<(), Failure> {
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
    let frame = match frame {
        None => None,
        Some(f) => {
            let temporal = match f.temporal {
                v if v == st_temporal::ST_TEMPORAL_OFF as u32 => Temporal::Off,
                v if v == st_temporal::ST_TEMPORAL_INIT as u32 => Temporal::Init,
                v if v == st_temporal::ST_TEMPORAL_FLOW as u32 => Temporal::Flow,
                other => return Err(Error::invalid("temporal", format!("unknown value {other}")).into()),
            };
            let options = FrameOptions {
                temporal,
                temporal_weight: f.temporal_weight,
                iterations: (f.iterations > 0).then_some(f.iterations as usize),
            };
            Some((options, previous_images(f, (width, height))?))
        }
    };
    let (rgb, alpha) = content_view.to_rgb("content")?;
    if request.network {
        let image = run_network(context, &rgb, &request.options, &mut |done, total, (width, height)| {
            let Some(callback) = progress else { return Flow::Continue };
            let report = st_progress {
                scale_index: 0,
                scales: 1,
                iteration: done as u32,
                iterations: total as u32,
                evaluation: done as u32,
                total_evaluations: total as u32,
                loss: 0.0,
                content_loss: 0.0,
                style_loss: 0.0,
                tv_loss: 0.0,
                width,
                height,
                temporal_loss: 0.0,
            };
            // SAFETY: the caller vouches for the callback and its user data.
            if unsafe { callback(user_data, &report) } != 0 {
                Flow::Cancel
            } else {
                Flow::Continue
            }
        })?;
        return store(output_view, image, &rgb, request.mask.as_deref(), alpha.as_deref());
    }
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
            temporal_loss: p.loss.temporal,
        };
        // SAFETY: the caller vouches for the callback and its user data.
        if unsafe { callback(user_data, &report) } != 0 {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    };
    let result = match &frame {
        None => context.engine.run(&rgb, &mut styles, &request.options, &context.live, &mut on_progress)?,
        Some((options, previous)) => {
            let previous = previous.as_ref().map(|(c, o)| Previous { content: c, output: o });
            context
                .engine
                .run_frame(
                    FrameInput { content: &rgb, previous },
                    &mut styles,
                    &request.options,
                    options,
                    &context.live,
                    &mut on_progress,
                )?
                .output
        }
    };
    store(output_view, result.image, &rgb, request.mask.as_deref(), alpha.as_deref())
}

/// Writes a run's result, blended with the content through the mask if any.
///
/// # Safety
/// `output` describes the caller's live output buffer.
unsafe fn store(
    output: pixels::View,
    image: RgbImage,
    content: &RgbImage,
    mask: Option<&[f32]>,
    alpha: Option<&[f32]>,
) -> Result<(), Failure> {
    let image = match mask {
        Some(mask) => blend_with_mask(&image, content, mask)?,
        None => image,
    };
    output.store(&image, alpha);
    Ok(())
}
