//! The styles of a run: style images and style packs with blend weights,
//! and their Gram targets per style size, computed once and reused until the
//! styles change.

use std::collections::HashMap;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::loss::StyleTargets;
use crate::model::MIN_INPUT_SIDE;
use crate::pack::StylePack;

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

enum Source {
    Image(RgbImage),
    Pack(Box<StylePack>),
}

/// Styles with blend weights, and their targets per ladder size.
#[derive(Default)]
pub struct StyleSet {
    sources: Vec<(Source, f64)>,
    cache: HashMap<u32, StyleTargets>,
}

fn check_weight(weight: f64) -> Result<()> {
    if !(weight.is_finite() && weight >= 0.0) {
        return Err(Error::invalid("style_blend", format!("{weight} is not a finite non-negative weight")));
    }
    Ok(())
}

impl StyleSet {
    /// Style images with blend weights (finite, ≥ 0, not all 0).
    pub fn new(images: Vec<StyleImage>) -> Result<Self> {
        let mut set = Self::default();
        for image in images {
            set.add(image)?;
        }
        Ok(set)
    }

    /// Adds a style image (drops cached targets).
    pub fn add(&mut self, style: StyleImage) -> Result<()> {
        check_weight(style.weight)?;
        self.sources.push((Source::Image(style.image), style.weight));
        self.cache.clear();
        Ok(())
    }

    /// Adds a style pack (drops cached targets). Its targets are used as
    /// stored: no style image is processed.
    pub fn add_pack(&mut self, pack: StylePack, weight: f64) -> Result<()> {
        check_weight(weight)?;
        self.sources.push((Source::Pack(Box::new(pack)), weight));
        self.cache.clear();
        Ok(())
    }

    /// Removes every style.
    pub fn clear(&mut self) {
        self.sources.clear();
        self.cache.clear();
    }

    /// True when there is no style.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The long side of the largest style image (`None` when there are only
    /// packs, which need no style forward pass).
    pub fn largest_image_side(&self) -> Option<u32> {
        self.sources
            .iter()
            .filter_map(|(source, _)| match source {
                Source::Image(image) => Some(image.width().max(image.height())),
                Source::Pack(_) => None,
            })
            .max()
    }

    /// The style images, when every source is an image (histogram colour
    /// matching needs the pixels, which packs do not keep).
    pub fn images(&self) -> Result<Vec<StyleImage>> {
        self.sources
            .iter()
            .map(|(source, weight)| match source {
                Source::Image(image) => Ok(StyleImage { image: image.clone(), weight: *weight }),
                Source::Pack(_) => Err(Error::invalid(
                    "preserve_color",
                    "histogram colour preservation needs style images; style packs keep no pixels (use luminance)",
                )),
            })
            .collect()
    }

    fn normalised_weights(&self) -> Result<Vec<f64>> {
        if self.sources.is_empty() {
            return Err(Error::invalid("style", "no style image given"));
        }
        let sum: f64 = self.sources.iter().map(|s| s.1).sum();
        if sum <= 0.0 {
            return Err(Error::invalid("style_blend", "the style blend weights are all zero"));
        }
        Ok(self.sources.iter().map(|s| s.1 / sum).collect())
    }

    /// Blended Gram targets at ladder size `side`, on the engine's device.
    pub fn targets(&mut self, engine: &Engine, side: u32) -> Result<StyleTargets> {
        if let Some(hit) = self.cache.get(&side) {
            return Ok(hit.shallow_clone());
        }
        let weights = self.normalised_weights()?;
        let mut parts = Vec::with_capacity(self.sources.len());
        for ((source, _), weight) in self.sources.iter().zip(weights) {
            let targets = match source {
                Source::Image(image) => engine.style_targets(image, side)?,
                Source::Pack(pack) => pack.targets(side, engine.device())?,
            };
            parts.push((targets, weight));
        }
        let blended = StyleTargets::blend(&parts)?;
        self.cache.insert(side, blended.shallow_clone());
        Ok(blended)
    }
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
