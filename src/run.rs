//! What a run is asked ([`RunOptions`], [`Init`]), what it says while it
//! runs ([`Progress`], [`Flow`]) and what it gives back ([`RunOutput`],
//! [`RunReport`]), with the optimisers' default settings.

use crate::color::PreserveColor;
use crate::device::Precision;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::loss::{LossTerms, Normalization};
use crate::optim::{AdamOptions, LbfgsOptions, Optimizer};
use crate::plan::{MemoryOptions, Plan};

/// How the image being optimised starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Init {
    /// From the content image.
    #[default]
    Content,
    /// From uniform noise (seeded).
    Noise,
    /// From a given image (resized to the working size).
    Image(RgbImage),
}

/// Settings of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// Optimiser evaluations per pyramid level.
    pub iterations: usize,
    /// Pyramid levels; `None` chooses (coarsest level about 128 px, at most 4).
    pub scales: Option<usize>,
    /// Long side of the working (finest) level; `None`: the content's, at most 512.
    pub size: Option<u32>,
    /// The optimiser. Its step sizes (L-BFGS `first_step`, Adam `lr`) are in
    /// display units (0..1 spans black to white) whatever the model's convention.
    pub optimizer: Optimizer,
    /// The starting image.
    pub init: Init,
    /// Seed for the noise init (CPU runs are bit-reproducible for a seed and thread count).
    pub seed: u64,
    /// Colour preservation.
    pub preserve_color: PreserveColor,
    /// Loss normalisation.
    pub normalization: Normalization,
    /// Weights of the five style layers.
    pub style_layer_weights: [f64; 5],
    /// Style image size relative to the level size.
    pub style_scale: f64,
    /// Memory budget and tiling.
    pub memory: MemoryOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            iterations: 200,
            scales: None,
            size: None,
            optimizer: Optimizer::Lbfgs(default_lbfgs()),
            init: Init::Content,
            seed: 0,
            preserve_color: PreserveColor::Off,
            normalization: Normalization::Relative,
            style_layer_weights: [1.0; 5],
            style_scale: 1.0,
            memory: MemoryOptions::default(),
        }
    }
}

/// Where a run is, passed to the progress callback after every evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    /// Pyramid level, 0 = coarsest.
    pub scale_index: usize,
    /// Number of levels.
    pub scales: usize,
    /// Evaluation within this level, from 1.
    pub iteration: usize,
    /// Evaluations per level.
    pub iterations: usize,
    /// Evaluations so far in the run.
    pub evaluation: usize,
    /// Evaluations the run will make in all.
    pub total_evaluations: usize,
    /// The loss terms of this evaluation.
    pub loss: LossTerms,
    /// This level's width.
    pub width: u32,
    /// This level's height.
    pub height: u32,
}

/// What the progress callback asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop: the run returns [`Error::Cancelled`].
    Cancel,
}

/// Facts about a finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// Loss terms of the result at the working size.
    pub loss: LossTerms,
    /// Evaluations made.
    pub evaluations: usize,
    /// Wall time of the run.
    pub seconds: f64,
    /// Device name.
    pub device: String,
    /// Convolution precision.
    pub precision: Precision,
    /// Whether bf16 ran emulated (fp32 kernels on bf16 values; see [`crate::device::Bf16Kernels`]).
    pub bf16_emulated: bool,
    /// Content (and output) size.
    pub content_size: (u32, u32),
    /// Size of each pyramid level, coarsest first.
    pub levels: Vec<(u32, u32)>,
    /// The memory plan the run followed (tile grids, estimates), after any
    /// retry with smaller tiles.
    pub plan: Plan,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The stylised image, at the content's size.
    pub image: RgbImage,
    /// Facts about the run.
    pub report: RunReport,
}

pub(crate) fn validate_run_options(options: &RunOptions) -> Result<()> {
    if options.iterations == 0 {
        return Err(Error::invalid("iterations", "must be at least 1"));
    }
    if !(options.style_scale.is_finite() && options.style_scale > 0.0) {
        return Err(Error::invalid("style_scale", "must be a positive number"));
    }
    if let Init::Image(image) = &options.init {
        if image.width() == 0 || image.height() == 0 {
            return Err(Error::invalid("init", "the init image is empty"));
        }
    }
    Ok(())
}

/// Default Adam step, in display units (0..1) per step.
pub const DEFAULT_ADAM_LR: f64 = 0.02;
/// Default largest pixel change of L-BFGS's first step, display units
/// (2.55 units of Caffe input). The first step only measures the problem's
/// curvature; torch's rule (a step of min(1, 1/|g|₁)) moves pixels by about
/// 10⁻⁴ units under the relative normalisation, far below bf16's and fp16's
/// resolution, so that at those precisions the loss change and the first
/// curvature pair were rounding noise (traced with `ST_TRACE_LBFGS=1`).
pub const DEFAULT_FIRST_STEP: f64 = 0.01;

/// L-BFGS as runs use it by default: history 100, Armijo backtracking, a
/// first step moving no pixel by more than [`DEFAULT_FIRST_STEP`]. (On the
/// reference benchmark, 128², 100 evaluations, five image pairs,
/// backtracking ended below the fixed step in four.)
pub fn default_lbfgs() -> LbfgsOptions {
    LbfgsOptions { first_step: Some(DEFAULT_FIRST_STEP), ..LbfgsOptions::default() }
}

/// Adam with the default step (display units).
pub fn default_adam() -> AdamOptions {
    AdamOptions { lr: DEFAULT_ADAM_LR, ..AdamOptions::default() }
}

/// Converts step sizes given in display units (how runs express them) to
/// the model's input units (what the optimiser works in).
pub(crate) fn to_input_units(optimizer: Optimizer, scale: f64) -> Optimizer {
    match optimizer {
        Optimizer::Lbfgs(o) => Optimizer::Lbfgs(LbfgsOptions { first_step: o.first_step.map(|s| s * scale), ..o }),
        Optimizer::Adam(o) => Optimizer::Adam(AdamOptions { lr: o.lr * scale, ..o }),
    }
}
