//! Style images handed over in memory: `st_add_style`, `st_clear_styles`.

use super::boundary::{check_blend_weight, null_argument};
use super::context::{st_context, styles_of};
use super::pixels;
use super::types::*;
use crate::style::StyleImage;

/// Adds a style image with a blend weight (finite, ≥ 0; weights are
/// normalised over all styles). The pixels are copied: `style` may be freed
/// after the call. Style targets are computed at the next run and reused by
/// later runs until the styles change.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL handle or image,
/// `ST_INVALID_ARGUMENT` for a bad image description (NaN or infinite float
/// samples included) or weight, `ST_BUSY` from inside a progress callback.
#[no_mangle]
pub unsafe extern "C" fn st_add_style(ctx: *mut st_context, style: *const st_image, blend_weight: f32) -> st_status {
    ffi_boundary!(ctx, |context| {
        let image = style.as_ref().ok_or_else(|| null_argument("style"))?;
        let (rgb, _alpha) = pixels::view(image, "style")?.to_rgb("style")?;
        let weight = check_blend_weight(blend_weight)?;
        let mut styles = styles_of(context)?;
        Ok(styles.add(StyleImage { image: rgb, weight })?)
    })
}

/// Removes every style. Returns `ST_NULL_ARGUMENT` for a NULL handle,
/// `ST_BUSY` from inside a progress callback.
#[no_mangle]
pub unsafe extern "C" fn st_clear_styles(ctx: *mut st_context) -> st_status {
    ffi_boundary!(ctx, |context| {
        styles_of(context)?.clear();
        Ok(())
    })
}
