//! The styles of a run: style images and style packs with blend weights,
//! and their Gram targets per style size, computed once and reused until the
//! styles change.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::loss::StyleTargets;
use crate::model::Vgg19;
use crate::pack::StylePack;
pub use crate::targets::StyleImage;
use crate::targets::{check_weight, image_targets, normalised_weights};

enum Source {
    Image(RgbImage),
    Pack(Box<StylePack>),
}

/// Styles with blend weights, and their targets per ladder size.
#[derive(Default)]
pub struct StyleSet {
    sources: Vec<(Source, f64)>,
    cache: HashMap<u32, StyleTargets>,
    /// Targets computed (cache misses) so far.
    computed: usize,
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

    /// How many times [`StyleSet::targets`] computed targets rather than
    /// reusing cached ones, since this set was made.
    pub fn targets_computed(&self) -> usize {
        self.computed
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

    /// What identifies the styles: each source's pixel SHA-256 (a pack's
    /// own sources), with its blend weight when there are several, as
    /// `sha` or `sha*weight`.
    pub fn source_sha256(&self) -> Vec<String> {
        let several = self.sources.len() > 1;
        let mut out = Vec::new();
        for (source, weight) in &self.sources {
            let shas = match source {
                Source::Image(image) => vec![crate::pack::image_sha256(image)],
                Source::Pack(pack) => pack.info().source_sha256.clone(),
            };
            for sha in shas {
                out.push(if several { format!("{sha}*{weight}") } else { sha });
            }
        }
        out
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

    /// Blended Gram targets at ladder size `side`, computed with `model` on
    /// its device.
    pub fn targets(&mut self, model: &Vgg19, side: u32) -> Result<StyleTargets> {
        if let Some(hit) = self.cache.get(&side) {
            return Ok(hit.shallow_clone());
        }
        let weights = normalised_weights(&self.sources.iter().map(|s| s.1).collect::<Vec<_>>())?;
        let mut parts = Vec::with_capacity(self.sources.len());
        for ((source, _), weight) in self.sources.iter().zip(weights) {
            let targets = match source {
                Source::Image(image) => image_targets(model, image, side)?,
                Source::Pack(pack) => pack.targets(side, model.device())?,
            };
            parts.push((targets, weight));
        }
        let blended = StyleTargets::blend(&parts)?;
        self.cache.insert(side, blended.shallow_clone());
        self.computed += 1;
        Ok(blended)
    }
}
