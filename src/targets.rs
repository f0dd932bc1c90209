//! Style targets from style images: the ladder of style sizes, and the Gram
//! targets of one image at a ladder size, computed from the model (no
//! engine needed, so style sets and packs share one computation).

use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::loss::StyleTargets;
use crate::model::{Vgg19, MIN_INPUT_SIDE};
use crate::pyramid::fit_long_side;

/// The largest long side a style image is used at. Style statistics at this
/// size are ample for any output, and the forward pass of a larger style
/// image would cost more memory than the run itself.
pub const MAX_STYLE_SIDE: u32 = 2048;

/// Style sizes: 16·2^k and 24·2^k up to [`MAX_STYLE_SIDE`]. Runs resize style
/// images to the ladder size nearest the level's long side (capped by the
/// image's own size), so nearby working sizes share targets and packs can
/// hold every size a run may ask for.
pub const LADDER: [u32; 15] = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048];

/// The ladder size nearest (in ratio) to `wanted`.
pub fn ladder_side(wanted: u32) -> u32 {
    let wanted = wanted.max(MIN_INPUT_SIDE as u32) as f64;
    LADDER
        .iter()
        .copied()
        .min_by(|a, b| (*a as f64 / wanted).ln().abs().total_cmp(&(*b as f64 / wanted).ln().abs()))
        .unwrap_or(MAX_STYLE_SIDE)
}

/// The ladder sizes a style whose largest image has long side `native` can
/// differ at: every size below it and the first size at or above it (larger
/// ones give the same targets, as images are never enlarged).
pub fn distinct_ladder_sides(native: u32) -> Vec<u32> {
    let mut sides: Vec<u32> = LADDER.iter().copied().filter(|&s| s < native).collect();
    sides.push(LADDER.iter().copied().find(|&s| s >= native).unwrap_or(MAX_STYLE_SIDE));
    sides
}

/// One style image and its blend weight.
#[derive(Clone, Debug)]
pub struct StyleImage {
    /// The image.
    pub image: RgbImage,
    /// Its share of the blend (weights are normalised to sum to 1).
    pub weight: f64,
}

/// Gram targets of one style image, computed with `model` on its device,
/// the image resized so its long side is `ladder_side` (a [`LADDER`] size),
/// or its own long side when that is smaller.
pub fn image_targets(model: &Vgg19, style: &RgbImage, ladder_side: u32) -> Result<StyleTargets> {
    let native = style.width().max(style.height());
    let short = style.width().min(style.height()).max(1);
    // A small ladder size can leave an elongated style image's short side
    // below the network's minimum: use the smallest size that reaches it
    // (never larger than the image itself).
    let needed = (native as u64 * MIN_INPUT_SIDE as u64).div_ceil(short as u64) as u32;
    let long_side = ladder_side.max(needed).min(native);
    let (w, h) = fit_long_side(style.width(), style.height(), long_side);
    if (w.min(h) as i64) < MIN_INPUT_SIDE {
        return Err(Error::invalid(
            "style",
            format!("the style image is too small at {w}×{h}: both sides must be at least {MIN_INPUT_SIDE} pixels"),
        ));
    }
    let resized = style.resize(w, h)?;
    let input = model.convention().to_model(&resized.to_tensor(model.device())?)?;
    StyleTargets::from_input(model, &input)
}

/// Checks a blend weight: finite and ≥ 0.
pub fn check_weight(weight: f64) -> Result<()> {
    if !(weight.is_finite() && weight >= 0.0) {
        return Err(Error::invalid("style_blend", format!("{weight} is not a finite non-negative weight")));
    }
    Ok(())
}

/// Blend weights normalised to sum to 1 (each finite and ≥ 0, not all 0).
pub fn normalised_weights(weights: &[f64]) -> Result<Vec<f64>> {
    for &weight in weights {
        check_weight(weight)?;
    }
    if weights.is_empty() {
        return Err(Error::invalid("style", "no style image given"));
    }
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 {
        return Err(Error::invalid("style_blend", "the style blend weights are all zero"));
    }
    Ok(weights.iter().map(|w| w / sum).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_snap_to_the_ladder() {
        assert_eq!(ladder_side(500), 512);
        assert_eq!(ladder_side(130), 128);
        assert_eq!(ladder_side(700), 768);
        assert_eq!(ladder_side(4), 16);
        assert_eq!(ladder_side(100_000), MAX_STYLE_SIDE);
    }

    #[test]
    fn distinct_sides_stop_at_the_first_size_covering_the_image() {
        assert_eq!(distinct_ladder_sides(100), vec![16, 24, 32, 48, 64, 96, 128]);
        assert_eq!(distinct_ladder_sides(512), vec![16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]);
        assert_eq!(*distinct_ladder_sides(9000).last().unwrap(), MAX_STYLE_SIDE);
    }
}
