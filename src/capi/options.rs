//! The option structs' defaults: `st_default_options`,
//! `st_default_run_options` and `st_default_frame`.

use super::boundary::null_argument;
use super::types::*;

/// Fills `*options` with the defaults (model search, device `"auto"`,
/// libtorch's thread count, automatic precision) and its `size` field.
///
/// Returns `ST_NULL_ARGUMENT` when `options` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_default_options(options: *mut st_options) -> st_status {
    ffi_boundary!("st_default_options": {
        let options = options.as_mut().ok_or_else(|| null_argument("options"))?;
        *options = st_options {
            size: std::mem::size_of::<st_options>(),
            model_path: std::ptr::null(),
            device: std::ptr::null(),
            threads: 0,
            precision: st_precision::ST_PRECISION_AUTO as u32,
        };
        Ok(())
    })
}

/// Fills `*options` with the run defaults (200 iterations per level,
/// automatic pyramid and working size, L-BFGS, content init, seed 0, no
/// colour preservation, relative normalisation, no mask, no quality preset,
/// render scale 1, the optimising engine).
///
/// Returns `ST_NULL_ARGUMENT` when `options` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_default_run_options(options: *mut st_run_options) -> st_status {
    ffi_boundary!("st_default_run_options": {
        let options = options.as_mut().ok_or_else(|| null_argument("options"))?;
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
            quality: st_quality::ST_QUALITY_CUSTOM as u32,
            render_scale: 1.0,
            engine: st_engine::ST_ENGINE_OPTIMIZE as u32,
        };
        Ok(())
    })
}

/// Fills `*frame` with the defaults: no previous frame, `ST_TEMPORAL_FLOW`,
/// temporal weight 10, later frames with the run options' iterations;
/// and its `size` field.
///
/// Returns `ST_NULL_ARGUMENT` when `frame` is NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn st_default_frame(frame: *mut st_frame) -> st_status {
    ffi_boundary!("st_default_frame": {
        let frame = frame.as_mut().ok_or_else(|| null_argument("frame"))?;
        *frame = st_frame {
            size: std::mem::size_of::<st_frame>(),
            previous_content: std::ptr::null(),
            previous_output: std::ptr::null(),
            temporal_weight: crate::sequence::DEFAULT_TEMPORAL_WEIGHT,
            temporal: st_temporal::ST_TEMPORAL_FLOW as u32,
            iterations: 0,
        };
        Ok(())
    })
}
