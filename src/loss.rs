//! The style-transfer objective: content, style (Gram) and total-variation
//! terms, their weights, and the two normalisations.
//!
//! **Reference normalisation** (`Normalization::Reference`) is exactly that
//! of the usual PyTorch implementation of Gatys et al. that we compare
//! against (`tools/torch_reference.py` computes it independently):
//! `content = mean((F₄₂ − T)²)`, `style = Σₗ wₗ · mean((Gₗ − Aₗ)²)` with
//! `G = F Fᵀ / (C·H·W)` over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1,
//! total `= content_weight · content + style_weight · style + tv_weight · tv`;
//! its customary weights are 1 and 1e3 in the Caffe convention. The size of
//! each term depends on the model's input convention and on the images.
//!
//! **Relative normalisation** (`Normalization::Relative`, the default) divides
//! each term by the size of its target: `content = mean((F − T)²) / mean(T²)`,
//! `style = Σₗ wₗ · mean((Gₗ − Aₗ)²) / mean(Aₗ²) / Σₗ wₗ`. Every term is
//! then about 1 when the image is far from its target, whatever the convention
//! and the images, so one set of weights (and one strength slider) behaves
//! the same for every input.
//!
//! The TV term is the same in both: the mean squared difference between
//! neighbouring pixels, in display units (0..1).
//!
//! A frame of a sequence may add a **temporal term** (Ruder, Dosovitskiy and
//! Brox 2016): `mean(c · (x − w)²)` over pixels and channels, in display
//! units, where `w` is the previous frame's output warped into this frame
//! and `c` is 0 at occlusions and motion boundaries, 1 elsewhere
//! ([`TemporalTarget`]); when only the luminance is kept, the mean of
//! `c · (Y(x) − Y(w))²` on luma. It is the same in both normalisations.

use std::sync::Mutex;

use tch::{Kind, Reduction, Tensor};

use crate::error::{Error, Result};
use crate::model::{Needed, Vgg19, CONTENT_LAYER_INDEX, STYLE_LAYER_INDICES, STYLE_LAYER_NAMES};

/// How loss terms are scaled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Normalization {
    /// Each term divided by the size of its target (default).
    #[default]
    Relative,
    /// Identical to the reference PyTorch implementation.
    Reference,
}

impl Normalization {
    /// Parses `relative` or `reference`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "relative" => Some(Self::Relative),
            "reference" => Some(Self::Reference),
            _ => None,
        }
    }
}

/// The weights of the three terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// Content term weight.
    pub content: f64,
    /// Style term weight.
    pub style: f64,
    /// Total-variation term weight.
    pub tv: f64,
}

/// Default style weight under relative normalisation (content weight 1).
pub const DEFAULT_RELATIVE_STYLE_WEIGHT: f64 = 5.0;
/// Default TV weight under relative normalisation.
pub const DEFAULT_RELATIVE_TV_WEIGHT: f64 = 1.0;
/// How far `strength` moves the style weight either side of the default:
/// strength 0 divides it by this, strength 1 multiplies it by this.
pub const STRENGTH_RANGE: f64 = 100.0;

impl Weights {
    /// The defaults for a normalisation: relative (1, 5, 1); reference
    /// (1, 1e3, 0), the reference script's values.
    pub fn defaults(normalization: Normalization) -> Self {
        match normalization {
            Normalization::Relative => {
                Self { content: 1.0, style: DEFAULT_RELATIVE_STYLE_WEIGHT, tv: DEFAULT_RELATIVE_TV_WEIGHT }
            }
            Normalization::Reference => Self { content: 1.0, style: 1e3, tv: 0.0 },
        }
    }

    /// Weights for a style strength in 0..1 on top of `base`: the style weight
    /// becomes `base.style · STRENGTH_RANGE^(2·strength − 1)`, so 0.5 keeps
    /// `base`, 0 gives a hundredth of its style weight, 1 a hundred times it.
    /// Content and TV weights are kept.
    pub fn with_strength(base: Weights, strength: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&strength) {
            return Err(Error::invalid("strength", format!("{strength} is outside 0..1")));
        }
        Ok(Self { style: base.style * STRENGTH_RANGE.powf(2.0 * strength - 1.0), ..base })
    }

    /// Checks that every weight is finite and not negative, and that some is positive.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [("content_weight", self.content), ("style_weight", self.style), ("tv_weight", self.tv)] {
            if !value.is_finite() {
                return Err(Error::invalid(name, format!("{value} is not a finite number")));
            }
            if value < 0.0 {
                return Err(Error::invalid(name, format!("{value} is negative")));
            }
        }
        if self.content == 0.0 && self.style == 0.0 && self.tv == 0.0 {
            return Err(Error::invalid("weights", "all weights are zero"));
        }
        Ok(())
    }
}

/// Weights that may change while a run is in progress (from a progress
/// callback, another thread, a host's slider). Each change bumps a
/// generation so the optimiser knows the objective moved.
#[derive(Debug)]
pub struct LiveWeights {
    inner: Mutex<(Weights, u64)>,
}

impl LiveWeights {
    /// Starts with `weights` (validated).
    pub fn new(weights: Weights) -> Result<Self> {
        weights.validate()?;
        Ok(Self { inner: Mutex::new((weights, 0)) })
    }

    /// The current weights and their generation.
    pub fn get(&self) -> (Weights, u64) {
        *self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the weights (validated); a running optimisation uses them
    /// from its next evaluation.
    pub fn set(&self, weights: Weights) -> Result<()> {
        weights.validate()?;
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.0 != weights {
            guard.0 = weights;
            guard.1 += 1;
        }
        Ok(())
    }
}

/// `F Fᵀ / (C·H·W)` of a `[1, C, H, W]` activation, in fp32.
pub fn gram(features: &Tensor) -> Result<Tensor> {
    let size = features.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let flat = features.f_reshape([c, h * w])?.f_to_kind(Kind::Float)?;
    Ok(flat.f_mm(&flat.f_tr()?)?.f_div_scalar((c * h * w) as f64)?)
}

/// The style side of the objective: one Gram matrix per style layer.
#[derive(Debug)]
pub struct StyleTargets {
    /// Gram matrices for relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
    pub grams: Vec<Tensor>,
}

impl StyleTargets {
    /// The Gram matrices of one image (`[1, 3, H, W]` model input), in fp32
    /// whatever the model's precision (see [`Vgg19::exact_features`]).
    pub fn from_input(model: &Vgg19, x: &Tensor) -> Result<Self> {
        let features = tch::no_grad(|| model.exact_features(x, Needed::Style))?;
        let grams = features.style.iter().map(gram).collect::<Result<Vec<_>>>()?;
        Ok(Self { grams })
    }

    /// The weighted sum of several targets (Gram targets are linear in the
    /// statistics they match, so this blends styles). Weights are used as given.
    pub fn blend(parts: &[(StyleTargets, f64)]) -> Result<Self> {
        let first = parts.first().ok_or_else(|| Error::invalid("styles", "no style given"))?;
        let mut grams = Vec::with_capacity(first.0.grams.len());
        for layer in 0..first.0.grams.len() {
            let mut sum = first.0.grams[layer].f_mul_scalar(first.1)?;
            for (targets, weight) in &parts[1..] {
                sum = sum.f_add(&targets.grams[layer].f_mul_scalar(*weight)?)?;
            }
            grams.push(sum);
        }
        Ok(Self { grams })
    }

    /// Another handle on the same tensors (no copy).
    pub fn shallow_clone(&self) -> Self {
        Self { grams: self.grams.iter().map(Tensor::shallow_clone).collect() }
    }

    /// A copy on another device.
    pub fn to_device(&self, device: tch::Device) -> Result<Self> {
        let grams = self.grams.iter().map(|g| g.f_to_device(device)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { grams })
    }
}

/// The loss values of one evaluation (weighted, as they enter the total).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossTerms {
    /// Weighted content term.
    pub content: f64,
    /// Weighted style term.
    pub style: f64,
    /// Weighted TV term.
    pub tv: f64,
    /// Weighted temporal term (0 outside sequences).
    pub temporal: f64,
    /// Their sum.
    pub total: f64,
}

/// The temporal term's target for one frame (see the module documentation).
#[derive(Debug)]
pub struct TemporalTarget {
    /// The previous output warped into this frame, as model input `[1, 3, H, W]`.
    pub warped: Tensor,
    /// Per-pixel weight `[1, 1, H, W]`, fp32: 0 at occlusions and motion
    /// boundaries, 1 elsewhere.
    pub mask: Tensor,
    /// The term's weight.
    pub weight: f64,
    /// Compares one weighted sum of the channels (weights on the model
    /// input channels, display units: see
    /// [`crate::model::InputConvention::display_weights`]) instead of each
    /// channel: luma, when only the luminance is kept.
    pub channels: Option<[f64; 3]>,
}

impl TemporalTarget {
    /// The part covering columns `xs` and rows `ys` (a tile).
    pub fn crop(&self, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> Result<Self> {
        let crop = |t: &Tensor| -> Result<Tensor> {
            Ok(t.f_narrow(2, y0 as i64, (y1 - y0) as i64)?.f_narrow(3, x0 as i64, (x1 - x0) as i64)?.f_contiguous()?)
        };
        Ok(Self { warped: crop(&self.warped)?, mask: crop(&self.mask)?, weight: self.weight, channels: self.channels })
    }
}

/// The full objective for one image size.
pub struct Objective<'a> {
    model: &'a Vgg19,
    content_target: Tensor,
    style: &'a StyleTargets,
    layer_weights: [f64; 5],
    normalization: Normalization,
    content_scale: f64,
    style_scales: [f64; 5],
    tv_scale: f64,
    temporal: Option<TemporalTarget>,
    /// The content's `[H, W]`.
    input_size: [i64; 2],
}

/// Loss terms as tensors (0-dim, fp32), plus the total the gradient is taken of.
pub struct LossTensors {
    /// Weighted content term.
    pub content: Tensor,
    /// Weighted style term.
    pub style: Tensor,
    /// Weighted TV term.
    pub tv: Tensor,
    /// Weighted temporal term (a zero without a [`TemporalTarget`]).
    pub temporal: Tensor,
    /// Sum of the terms.
    pub total: Tensor,
}

impl LossTensors {
    /// Reads the values (synchronises with the device).
    pub fn values(&self) -> Result<LossTerms> {
        Ok(LossTerms {
            content: self.content.f_double_value(&[])?,
            style: self.style.f_double_value(&[])?,
            tv: self.tv.f_double_value(&[])?,
            temporal: self.temporal.f_double_value(&[])?,
            total: self.total.f_double_value(&[])?,
        })
    }

    /// A copy of every term, cut from autograd.
    pub fn detach_copy(&self) -> Result<Self> {
        let copy = |t: &Tensor| t.f_detach_copy();
        Ok(Self {
            content: copy(&self.content)?,
            style: copy(&self.style)?,
            tv: copy(&self.tv)?,
            temporal: copy(&self.temporal)?,
            total: copy(&self.total)?,
        })
    }
}

impl<'a> Objective<'a> {
    /// Builds the objective for content `content_input` (model input,
    /// `[1, 3, H, W]`) and the given style targets. `layer_weights` weighs the
    /// five style layers (names in [`STYLE_LAYER_NAMES`]).
    pub fn new(
        model: &'a Vgg19,
        content_input: &Tensor,
        style: &'a StyleTargets,
        layer_weights: [f64; 5],
        normalization: Normalization,
    ) -> Result<Self> {
        if style.grams.len() != STYLE_LAYER_NAMES.len() {
            return Err(Error::invalid("style", "style targets must cover the five style layers"));
        }
        for (name, w) in STYLE_LAYER_NAMES.iter().zip(layer_weights) {
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::invalid(
                    "style_layer_weights",
                    format!("{name}: {w} is not a finite non-negative number"),
                ));
            }
        }
        let layer_sum: f64 = layer_weights.iter().sum();
        if layer_sum <= 0.0 {
            return Err(Error::invalid("style_layer_weights", "all style layer weights are zero"));
        }
        // In fp32 whatever the model's precision, like the style targets.
        let content_target = tch::no_grad(|| model.exact_features(content_input, Needed::Content))?
            .content
            .ok_or_else(|| Error::Torch("content features missing".into()))?;
        let (content_scale, style_scales) = match normalization {
            Normalization::Reference => (1.0, layer_weights),
            Normalization::Relative => {
                let content_power = content_target.f_square()?.f_mean(Kind::Float)?.f_double_value(&[])?;
                let mut scales = [0.0; 5];
                for (i, g) in style.grams.iter().enumerate() {
                    let power = g.f_square()?.f_mean(Kind::Float)?.f_double_value(&[])?;
                    scales[i] = layer_weights[i] / power.max(1e-30) / layer_sum;
                }
                (1.0 / content_power.max(1e-30), scales)
            }
        };
        let display = model.convention().scale();
        Ok(Self {
            model,
            content_target,
            style,
            layer_weights,
            normalization,
            content_scale,
            style_scales,
            tv_scale: 1.0 / (display * display),
            temporal: None,
            input_size: [content_input.size()[2], content_input.size()[3]],
        })
    }

    /// Adds the temporal term (a frame of a sequence); its tensors must have
    /// this objective's size.
    pub fn set_temporal(&mut self, target: TemporalTarget) -> Result<()> {
        let size = self.input_size;
        let (warped, mask) = (target.warped.size(), target.mask.size());
        if warped.len() != 4 || warped[2..] != size[..] || mask.len() != 4 || mask[2..] != size[..] {
            return Err(Error::invalid(
                "temporal",
                format!("target {warped:?} and mask {mask:?} do not match the frame's {size:?}"),
            ));
        }
        if !(target.weight.is_finite() && target.weight >= 0.0) {
            return Err(Error::invalid(
                "temporal_weight",
                format!("{} is not a finite non-negative number", target.weight),
            ));
        }
        self.temporal = Some(target);
        Ok(())
    }

    /// The per-layer factors the style term multiplies each layer's Gram
    /// error by (the layer weights, over the target's power under the
    /// relative normalisation).
    pub fn style_scales(&self) -> [f64; 5] {
        self.style_scales
    }

    /// Mean square of the content target (what the relative normalisation
    /// divides the content term by).
    pub fn content_power(&self) -> Result<f64> {
        Ok(self.content_target.f_square()?.f_mean(Kind::Float)?.f_double_value(&[])?)
    }

    /// Uses `power` as the content target's mean square in the relative
    /// normalisation (tiles share the whole level's, so that every tile
    /// weighs content alike). No effect under the reference normalisation.
    pub fn set_content_power(&mut self, power: f64) {
        if self.normalization == Normalization::Relative {
            self.content_scale = 1.0 / power.max(1e-30);
        }
    }

    /// The style layer weights in use.
    pub fn layer_weights(&self) -> [f64; 5] {
        self.layer_weights
    }

    /// The normalisation in use.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// The loss terms at `x` (model input `[1, 3, H, W]`), differentiable by
    /// autograd when `x` requires grad.
    pub fn losses(&self, x: &Tensor, weights: &Weights) -> Result<LossTensors> {
        self.losses_with(x, weights, false)
    }

    /// [`Objective::losses`] through the model's exact fp32 network when `exact`.
    pub fn losses_with(&self, x: &Tensor, weights: &Weights, exact: bool) -> Result<LossTensors> {
        let features = self.model.features_with(x, Needed::All, exact)?;
        let content = features.content.as_ref().ok_or_else(|| Error::Torch("content features missing".into()))?;
        self.terms(x, content, &features.style, weights)
    }

    fn terms(
        &self,
        x: &Tensor,
        content_features: &Tensor,
        style_features: &[Tensor],
        weights: &Weights,
    ) -> Result<LossTensors> {
        let content = content_features
            .f_mse_loss(&self.content_target, Reduction::Mean)?
            .f_mul_scalar(self.content_scale * weights.content)?;
        let mut style: Option<Tensor> = None;
        for ((f, target), scale) in style_features.iter().zip(&self.style.grams).zip(self.style_scales) {
            if scale == 0.0 {
                continue;
            }
            let term = gram(f)?.f_mse_loss(target, Reduction::Mean)?.f_mul_scalar(scale)?;
            style = Some(match style {
                Some(sum) => sum.f_add(&term)?,
                None => term,
            });
        }
        let style = style.ok_or_else(|| Error::invalid("style_layer_weights", "all style layer weights are zero"))?;
        let style = style.f_mul_scalar(weights.style)?;
        let tv = total_variation(x)?.f_mul_scalar(self.tv_scale * weights.tv)?;
        let temporal = match &self.temporal {
            Some(t) => {
                let difference = x.f_sub(&t.warped)?;
                match t.channels {
                    None => difference
                        .f_square()?
                        .f_mul(&t.mask)?
                        .f_mean(Kind::Float)?
                        .f_mul_scalar(self.tv_scale * t.weight)?,
                    Some(weights) => {
                        let weights = Tensor::f_from_slice(&weights.map(|w| w as f32))?
                            .f_to_device(x.device())?
                            .f_view([1, 3, 1, 1])?;
                        let combined = difference.f_mul(&weights)?.f_sum_dim_intlist(1, true, Kind::Float)?;
                        combined.f_square()?.f_mul(&t.mask)?.f_mean(Kind::Float)?.f_mul_scalar(t.weight)?
                    }
                }
            }
            None => Tensor::f_zeros([], (Kind::Float, x.device()))?,
        };
        let total = content.f_add(&style)?.f_add(&tv)?.f_add(&temporal)?;
        Ok(LossTensors { content, style, tv, temporal, total })
    }

    /// Loss terms and the gradient of the total with respect to `x`.
    ///
    /// The network runs without autograd ([`Vgg19::trace`]); autograd only
    /// differentiates the small loss graph from the tapped activations (and
    /// the TV term from `x`), and [`Vgg19::backward`] carries those
    /// gradients down to the input.
    pub fn value_and_grad(&self, x: &Tensor, weights: &Weights) -> Result<(LossTensors, Tensor)> {
        self.value_and_grad_with(x, weights, false)
    }

    /// [`Objective::value_and_grad`] through the model's exact fp32 network
    /// when `exact` (see [`Vgg19::trace_with`]).
    pub fn value_and_grad_with(&self, x: &Tensor, weights: &Weights, exact: bool) -> Result<(LossTensors, Tensor)> {
        let trace = self.model.trace_with(x, exact)?;
        let tap = |index: usize| -> Result<Tensor> { Ok(trace.activation(index)?.f_detach()?.set_requires_grad(true)) };
        let content_leaf = tap(CONTENT_LAYER_INDEX)?;
        let style_leaves = STYLE_LAYER_INDICES.iter().map(|&i| tap(i)).collect::<Result<Vec<_>>>()?;
        let x_leaf = x.f_detach()?.set_requires_grad(true);
        let losses = self.terms(&x_leaf, &content_leaf, &style_leaves, weights)?;
        let mut inputs: Vec<&Tensor> = vec![&content_leaf];
        inputs.extend(style_leaves.iter());
        inputs.push(&x_leaf);
        let mut grads = Tensor::f_run_backward(&[&losses.total], &inputs, false, false)?;
        let tv_grad = grads.pop().ok_or_else(|| Error::Torch("backward returned no gradient".into()))?;
        let mut taps = Vec::with_capacity(6);
        taps.push((CONTENT_LAYER_INDEX, grads[0].shallow_clone()));
        for (&index, g) in STYLE_LAYER_INDICES.iter().zip(&grads[1..]) {
            taps.push((index, g.shallow_clone()));
        }
        let grad = self.model.backward(&trace, x, &taps)?.f_add(&tv_grad)?;
        let detach = |t: &Tensor| t.f_detach();
        let losses = LossTensors {
            content: detach(&losses.content)?,
            style: detach(&losses.style)?,
            tv: detach(&losses.tv)?,
            temporal: detach(&losses.temporal)?,
            total: detach(&losses.total)?,
        };
        Ok((losses, grad))
    }
}

/// Mean squared difference between vertically and horizontally adjacent pixels.
pub fn total_variation(x: &Tensor) -> Result<Tensor> {
    let size = x.size();
    let (h, w) = (size[2], size[3]);
    let dy = x.f_narrow(2, 1, h - 1)?.f_sub(&x.f_narrow(2, 0, h - 1)?)?;
    let dx = x.f_narrow(3, 1, w - 1)?.f_sub(&x.f_narrow(3, 0, w - 1)?)?;
    Ok(dy.f_square()?.f_mean(Kind::Float)?.f_add(&dx.f_square()?.f_mean(Kind::Float)?)?)
}
