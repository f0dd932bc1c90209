//! The feed-forward path: a transform network distilled from a style
//! (Johnson, Alahi and Fei-Fei 2016), run in one pass, and its `.stnet` file.
//!
//! **Architecture** (`johnson2016-cin`, width `w`, `b` residual blocks):
//! a 9×9 convolution to `w` channels, two 3×3 convolutions of stride 2 to
//! `2w` and `4w`, `b` residual blocks of two 3×3 convolutions at `4w`, two
//! nearest-neighbour ×2 upsamplings each followed by a 3×3 convolution (to
//! `2w`, then `w`), and a 9×9 convolution to 3 channels. Every convolution
//! pads by reflection. Each one but the last is followed by instance
//! normalisation and a ReLU (the second of a residual block by normalisation
//! only). The last convolution's output is added to the input, so the
//! network predicts a change of the content in display units (0..1); the
//! result is clamped to 0..1 on output. Sides are padded by reflection to a
//! multiple of 4 and cropped back.
//!
//! **Strength.** The normalisations are conditional (Dumoulin, Shlens and
//! Kudlur 2017), on the style strength instead of a style index: each holds
//! its scale and shift at [`STRENGTH_ANCHORS`] strengths evenly spaced over
//! 0..1, and a strength between two anchors interpolates them linearly. The
//! trainer samples the strength per crop (see [`crate::train`]), so one file
//! serves the whole strength slider, as the optimiser's does.
//!
//! **Tiles.** Instance normalisation takes statistics over the whole image,
//! so tiles normalised on their own would disagree at their seams. A tiled
//! run ([`Network::stylize`] past its memory budget) first gathers every
//! normalisation's statistics over the whole image, tile by tile and layer by
//! layer, then renders each tile with those statistics. Each tile carries a
//! margin of [`Network::halo`] pixels, the network's reach, so its inner part
//! is what the whole image's pass computes there: tiles join without seams.
//!
//! **The `.stnet` file** is safetensors: fp32 tensors `<layer>.weight`,
//! `<layer>.bias` for every convolution and `<norm>.scale`, `<norm>.shift`
//! (`[anchors, channels]`) for every normalisation, and string metadata:
//!
//! | key | value |
//! |---|---|
//! | `format` | `styletransfer-stnet` |
//! | `format_version` | `1` (a reader refuses newer versions) |
//! | `architecture` | `johnson2016-cin` |
//! | `width`, `residual_blocks`, `strength_anchors` | the shape |
//! | `name` | display name |
//! | `style_sha256` | the style's sources: each image's or pack source's pixel SHA-256, comma-separated |
//! | `model_sha256` | the VGG19 whose objective it was trained on |
//! | `training_images`, `training_size`, `steps`, `batch`, `seed` | the training run |
//! | `final_loss` | the mean training loss of the last steps |
//! | `library_version` | the version that wrote it |
//! | `data_sha256` | SHA-256 over the other metadata and every tensor ([`crate::pack::data_digest`]) |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use tch::{Device, Kind, Tensor};

use crate::device::Precision;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::pack::data_digest;
use crate::run::Flow;

/// The `format` metadata value.
pub const NETWORK_FORMAT: &str = "styletransfer-stnet";
/// The format version this library writes and the newest it reads.
pub const NETWORK_FORMAT_VERSION: u32 = 1;
/// The one architecture this version knows.
pub const ARCHITECTURE: &str = "johnson2016-cin";
/// A network file's extension.
pub const NETWORK_EXTENSION: &str = "stnet";
/// Strengths at which each normalisation holds its scale and shift: 0, ¼, ½, ¾, 1.
pub const STRENGTH_ANCHORS: usize = 5;
/// Widths a network may have.
pub const WIDTHS: std::ops::RangeInclusive<i64> = 4..=128;
/// Residual block counts a network may have.
pub const RESIDUAL_BLOCKS: std::ops::RangeInclusive<usize> = 1..=10;
/// Largest header a network file may have.
const MAX_HEADER_BYTES: usize = 1 << 20;
/// Instance normalisation's epsilon.
const EPS: f64 = 1e-5;
/// The metadata key of the digest.
const DIGEST_KEY: &str = "data_sha256";

/// The shape of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkShape {
    /// Channels of the first and last full-resolution layers (Johnson et al.: 32).
    pub width: i64,
    /// Residual blocks at a quarter resolution (Johnson et al.: 5).
    pub residual_blocks: usize,
}

impl Default for NetworkShape {
    fn default() -> Self {
        Self { width: 32, residual_blocks: 5 }
    }
}

impl NetworkShape {
    /// Checks the ranges ([`WIDTHS`], [`RESIDUAL_BLOCKS`]).
    pub fn validate(&self) -> Result<()> {
        if !WIDTHS.contains(&self.width) {
            return Err(Error::invalid(
                "width",
                format!("{} is outside {}..={}", self.width, WIDTHS.start(), WIDTHS.end()),
            ));
        }
        if !RESIDUAL_BLOCKS.contains(&self.residual_blocks) {
            return Err(Error::invalid(
                "residual_blocks",
                format!("{} is outside {}..={}", self.residual_blocks, RESIDUAL_BLOCKS.start(), RESIDUAL_BLOCKS.end()),
            ));
        }
        Ok(())
    }

    /// The layers in order.
    fn layers(&self) -> Vec<LayerSpec> {
        let w = self.width;
        let mut layers = vec![
            LayerSpec::conv("conv1", 3, w, 9, 1, false, Post::NormRelu),
            LayerSpec::conv("conv2", w, 2 * w, 3, 2, false, Post::NormRelu),
            LayerSpec::conv("conv3", 2 * w, 4 * w, 3, 2, false, Post::NormRelu),
        ];
        for i in 0..self.residual_blocks {
            layers.push(LayerSpec::conv(&format!("res{i}.a"), 4 * w, 4 * w, 3, 1, false, Post::NormRelu));
            layers.push(LayerSpec::conv(&format!("res{i}.b"), 4 * w, 4 * w, 3, 1, false, Post::NormAdd));
        }
        layers.push(LayerSpec::conv("up1", 4 * w, 2 * w, 3, 1, true, Post::NormRelu));
        layers.push(LayerSpec::conv("up2", 2 * w, w, 3, 1, true, Post::NormRelu));
        layers.push(LayerSpec::conv("out", w, 3, 9, 1, false, Post::Output));
        layers
    }

    /// Pixels at the input's resolution that a pixel of the output depends
    /// on, either side (the network's reach).
    fn reach(&self) -> i64 {
        let mut scale = 1;
        let mut reach = 0;
        for layer in self.layers() {
            if layer.upsample {
                scale /= 2;
            }
            reach += (layer.kernel / 2) * scale;
            scale *= layer.stride;
        }
        reach
    }
}

/// What follows a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Post {
    /// Normalisation and ReLU.
    NormRelu,
    /// Normalisation, then the residual block's input added.
    NormAdd,
    /// The last layer: added to the network's input.
    Output,
}

#[derive(Clone, Debug)]
struct LayerSpec {
    name: String,
    input: i64,
    output: i64,
    kernel: i64,
    stride: i64,
    /// A ×2 nearest-neighbour upsampling before the convolution.
    upsample: bool,
    post: Post,
}

impl LayerSpec {
    fn conv(name: &str, input: i64, output: i64, kernel: i64, stride: i64, upsample: bool, post: Post) -> Self {
        Self { name: name.to_string(), input, output, kernel, stride, upsample, post }
    }

    fn normalised(&self) -> bool {
        self.post != Post::Output
    }
}

/// One normalisation's whole-image statistics: per channel `[1, C, 1, 1]`
/// mean and variance (fp32).
#[derive(Debug)]
pub struct NormStats {
    mean: Tensor,
    var: Tensor,
}

/// What a network file says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkInfo {
    /// Display name.
    pub name: String,
    /// Its shape.
    pub shape: NetworkShape,
    /// SHA-256 of each style source's pixels.
    pub style_sha256: Vec<String>,
    /// The VGG19's `weights_sha256` whose objective it was trained on.
    pub model_sha256: String,
    /// Training images.
    pub training_images: usize,
    /// Side of the square training crops.
    pub training_size: u32,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Crops per step.
    pub batch: usize,
    /// The training seed.
    pub seed: u64,
    /// Mean training loss over the last steps (see [`crate::train`]).
    pub final_loss: f64,
    /// The library version that wrote it.
    pub library_version: String,
    /// The format version.
    pub format_version: u32,
}

/// A transform network: its parameters (fp32, on one device) and, for
/// inference at another precision, a converted copy.
pub struct Network {
    shape: NetworkShape,
    layers: Vec<LayerSpec>,
    /// Per layer: convolution weight `[out, in, k, k]` and bias `[out]`;
    /// then, for normalised layers, scale and shift `[anchors, out]`.
    params: Vec<LayerParams>,
    /// The parameters converted for a precision other than fp32 (convolutions only).
    converted: Option<(Kind, Vec<(Tensor, Tensor)>)>,
    device: Device,
}

/// One layer's parameters.
pub struct LayerParams {
    /// `[out, in, k, k]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Tensor,
    /// `[anchors, out]` scale and shift, for normalised layers.
    pub norm: Option<(Tensor, Tensor)>,
}

/// What a network forward pass should do with the normalisations.
pub(crate) enum Stats<'a> {
    /// Each image's own statistics (training, and untiled inference).
    Own,
    /// The given whole-image statistics for the first `len()` normalisations
    /// (the rest: stop before them and return the pre-normalisation activation).
    Given(&'a [NormStats]),
}

/// SplitMix64: a small generator that gives the same numbers everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1].
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64
    }

    /// Standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64; // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn net_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Network { path: path.to_path_buf(), reason: reason.into() }
}

/// The interpolation matrix `[N, anchors]` of per-image strengths.
fn anchor_weights(strengths: &[f64], device: Device) -> Result<Tensor> {
    let last = (STRENGTH_ANCHORS - 1) as f64;
    let mut values = vec![0f32; strengths.len() * STRENGTH_ANCHORS];
    for (n, &s) in strengths.iter().enumerate() {
        if !(0.0..=1.0).contains(&s) {
            return Err(Error::invalid("strength", format!("{s} is outside 0..1")));
        }
        let position = s * last;
        let low = (position.floor() as usize).min(STRENGTH_ANCHORS - 2);
        let fraction = position - low as f64;
        values[n * STRENGTH_ANCHORS + low] = (1.0 - fraction) as f32;
        values[n * STRENGTH_ANCHORS + low + 1] = fraction as f32;
    }
    Ok(Tensor::f_from_slice(&values)?.f_view([strengths.len() as i64, STRENGTH_ANCHORS as i64])?.f_to_device(device)?)
}

impl Network {
    /// A freshly initialised network on `device`: convolution weights drawn
    /// from a normal distribution by a SplitMix64 generator seeded with
    /// `seed` (He initialisation; the last layer's scaled by 0.1 so that the
    /// untrained network nearly returns its input; libtorch's global
    /// generator is not touched), normalisation scales 1 and shifts 0 at
    /// every anchor. The same seed gives the same bits on every machine.
    pub fn new(shape: NetworkShape, seed: u64, device: Device) -> Result<Self> {
        let mut rng = SplitMix64(seed);
        Self::build(shape, device, |layer| {
            let fan_in = (layer.input * layer.kernel * layer.kernel) as f64;
            let gain = if layer.post == Post::Output { 0.1 } else { 1.0 };
            let std = gain * (2.0 / fan_in).sqrt();
            let count = (layer.output * layer.input * layer.kernel * layer.kernel) as usize;
            (0..count).map(|_| (rng.normal() * std) as f32).collect()
        })
    }

    /// A network of `shape` on `device` whose convolution weights `weights`
    /// gives (row-major `[out, in, k, k]` per layer), biases 0, scales 1 and
    /// shifts 0.
    fn build(shape: NetworkShape, device: Device, mut weights: impl FnMut(&LayerSpec) -> Vec<f32>) -> Result<Self> {
        shape.validate()?;
        let layers = shape.layers();
        let mut params = Vec::with_capacity(layers.len());
        for layer in &layers {
            let size = [layer.output, layer.input, layer.kernel, layer.kernel];
            let weight = Tensor::f_from_slice(&weights(layer))?.f_view(size)?.f_to_device(device)?;
            let bias = Tensor::f_zeros([layer.output], (Kind::Float, device))?;
            let norm = if layer.normalised() {
                let size = [STRENGTH_ANCHORS as i64, layer.output];
                Some((Tensor::f_ones(size, (Kind::Float, device))?, Tensor::f_zeros(size, (Kind::Float, device))?))
            } else {
                None
            };
            params.push(LayerParams { weight, bias, norm });
        }
        Ok(Self { shape, layers, params, converted: None, device })
    }

    /// The shape.
    pub fn shape(&self) -> NetworkShape {
        self.shape
    }

    /// The device its parameters are on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Every parameter tensor, in a fixed order (for optimisers and checkpoints).
    pub fn parameters(&self) -> Vec<&Tensor> {
        let mut out = Vec::new();
        for p in &self.params {
            out.push(&p.weight);
            out.push(&p.bias);
            if let Some((scale, shift)) = &p.norm {
                out.push(scale);
                out.push(shift);
            }
        }
        out
    }

    /// The parameters' names, in [`Network::parameters`]' order.
    pub fn parameter_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for layer in &self.layers {
            out.push(format!("{}.weight", layer.name));
            out.push(format!("{}.bias", layer.name));
            if layer.normalised() {
                out.push(format!("{}.scale", layer.name));
                out.push(format!("{}.shift", layer.name));
            }
        }
        out
    }

    /// The expected shape of every parameter, in [`Network::parameters`]' order.
    fn parameter_shapes(&self) -> Vec<Vec<i64>> {
        let mut out = Vec::new();
        for layer in &self.layers {
            out.push(vec![layer.output, layer.input, layer.kernel, layer.kernel]);
            out.push(vec![layer.output]);
            if layer.normalised() {
                out.push(vec![STRENGTH_ANCHORS as i64, layer.output]);
                out.push(vec![STRENGTH_ANCHORS as i64, layer.output]);
            }
        }
        out
    }

    /// Makes every parameter a leaf that records gradients (`true`) or not.
    pub fn set_requires_grad(&mut self, enabled: bool) {
        for p in &mut self.params {
            p.weight = p.weight.detach().set_requires_grad(enabled);
            p.bias = p.bias.detach().set_requires_grad(enabled);
            if let Some((scale, shift)) = &mut p.norm {
                *scale = scale.detach().set_requires_grad(enabled);
                *shift = shift.detach().set_requires_grad(enabled);
            }
        }
    }

    /// Replaces the parameters' values (same order and shapes as
    /// [`Network::parameters`]), keeping whether they record gradients.
    pub fn load_parameters(&mut self, values: &[Tensor]) -> Result<()> {
        let shapes = self.parameter_shapes();
        if values.len() != shapes.len() {
            return Err(Error::invalid("network", format!("{} tensors for {} parameters", values.len(), shapes.len())));
        }
        for (v, s) in values.iter().zip(&shapes) {
            if v.size() != *s {
                return Err(Error::invalid("network", format!("a parameter is {:?}, expected {s:?}", v.size())));
            }
        }
        let mut it = values.iter();
        tch::no_grad(|| -> Result<()> {
            for p in &mut self.params {
                let mut copy = |dst: &mut Tensor| -> Result<()> {
                    let src = it.next().ok_or_else(|| Error::invalid("network", "too few tensors"))?;
                    dst.f_copy_(&src.f_to_device(self.device)?)?;
                    Ok(())
                };
                copy(&mut p.weight)?;
                copy(&mut p.bias)?;
                if let Some((scale, shift)) = &mut p.norm {
                    copy(scale)?;
                    copy(shift)?;
                }
            }
            Ok(())
        })?;
        self.converted = None;
        Ok(())
    }

    /// Pixels either side that a tile must carry so that its inner part is
    /// exact: the network's reach, rounded up to a multiple of 4.
    pub fn halo(&self) -> u32 {
        (self.shape.reach() as u32).div_ceil(4) * 4
    }

    /// Prepares the convolution parameters for `precision` (fp32 uses them
    /// as they are). Normalisation runs in fp32 at every precision.
    fn converted_for(&mut self, precision: Precision) -> Result<()> {
        let kind = precision.kind();
        if matches!(&self.converted, Some((k, _)) if *k == kind) {
            return Ok(());
        }
        let convs = self
            .params
            .iter()
            .map(|p| Ok((channels_last(&p.weight.f_detach()?.f_to_kind(kind)?)?, p.bias.f_detach()?.f_to_kind(kind)?)))
            .collect::<Result<Vec<_>>>()?;
        self.converted = Some((kind, convs));
        Ok(())
    }

    /// The forward pass on `x` (`[N, 3, H, W]`, display range, H and W
    /// multiples of 4) at the given per-image strengths. Differentiable by
    /// autograd in fp32 when the parameters record gradients.
    ///
    /// With [`Stats::Given`] holding `k` statistics, a pass with fewer than
    /// all normalisations stops at normalisation `k` and returns its input.
    pub(crate) fn forward(&self, x: &Tensor, strengths: &[f64], stats: &Stats) -> Result<Tensor> {
        let size = x.size();
        if size.len() != 4 || size[1] != 3 || size[0] as usize != strengths.len() {
            return Err(Error::invalid("network input", format!("{size:?} with {} strengths", strengths.len())));
        }
        if size[2] % 4 != 0 || size[3] % 4 != 0 {
            return Err(Error::invalid("network input", format!("{}×{} is not a multiple of 4", size[3], size[2])));
        }
        let anchors = anchor_weights(strengths, self.device)?;
        let kind = self.converted.as_ref().map(|c| c.0).unwrap_or(Kind::Float);
        let mut h = x.f_to_kind(kind)?;
        let mut block_input: Option<Tensor> = None;
        for (i, (layer, p)) in self.layers.iter().zip(&self.params).enumerate() {
            if layer.upsample {
                let s = h.size();
                h = h.f_upsample_nearest2d([s[2] * 2, s[3] * 2], None, None)?;
            }
            if layer.name.ends_with(".a") {
                block_input = Some(h.shallow_clone());
            }
            let pad = layer.kernel / 2;
            let mut padded = h.f_reflection_pad2d([pad, pad, pad, pad])?;
            if self.converted.is_some() {
                padded = channels_last(&padded)?;
            }
            let (weight, bias) = match &self.converted {
                Some((_, convs)) => (&convs[i].0, &convs[i].1),
                None => (&p.weight, &p.bias),
            };
            h = padded.f_conv2d(weight, Some(bias), [layer.stride, layer.stride], [0, 0], [1, 1], 1)?;
            let Some((scale, shift)) = &p.norm else {
                // The output layer: a change of the input.
                return Ok(h.f_to_kind(Kind::Float)?.f_add(x)?);
            };
            let n = strengths.len() as i64;
            let gamma = anchors.f_mm(scale)?;
            let beta = anchors.f_mm(shift)?;
            // libtorch's group normalisation with one group per channel is
            // instance normalisation, its statistics accumulated in fp32
            // whatever the input's type. On the CPU it takes a bf16 or fp16
            // input with fp32 scale and shift as they are (one fused pass);
            // elsewhere the input goes to fp32 first.
            let mixed = kind == Kind::Float || self.device == Device::Cpu;
            let normed = match stats {
                // One image: its strength's scale and shift in the same kernel.
                Stats::Own if n == 1 => {
                    let input = if mixed { h.shallow_clone() } else { h.f_to_kind(Kind::Float)? };
                    input.f_group_norm(
                        layer.output,
                        Some(&gamma.f_view([layer.output])?),
                        Some(&beta.f_view([layer.output])?),
                        EPS,
                        false,
                    )?
                }
                Stats::Own => h
                    .f_to_kind(Kind::Float)?
                    .f_group_norm(layer.output, None::<&Tensor>, None::<&Tensor>, EPS, false)?
                    .f_mul(&gamma.f_view([n, layer.output, 1, 1])?)?
                    .f_add(&beta.f_view([n, layer.output, 1, 1])?)?,
                // Every layer but the last is normalised: layer i holds normalisation i.
                Stats::Given(given) => {
                    let h32 = h.f_to_kind(Kind::Float)?;
                    let Some(stats) = given.get(i) else { return Ok(h32) };
                    // (h − mean)/√(var + ε)·γ + β as one scale and one shift per channel.
                    let a = gamma.f_view([n, layer.output, 1, 1])?.f_mul(&stats.var.f_add_scalar(EPS)?.f_rsqrt()?)?;
                    let b = beta.f_view([n, layer.output, 1, 1])?.f_sub(&stats.mean.f_mul(&a)?)?;
                    h32.f_mul(&a)?.f_add(&b)?
                }
            };
            h = match layer.post {
                Post::NormRelu => normed.f_relu()?,
                Post::NormAdd => {
                    let input =
                        block_input.take().ok_or_else(|| Error::Torch("residual block without input".into()))?;
                    normed.f_add(&input.f_to_kind(Kind::Float)?)?
                }
                Post::Output => unreachable!("the output layer has no normalisation"),
            }
            .f_to_kind(kind)?;
        }
        Err(Error::Torch("the network has no output layer".into()))
    }

    /// Number of normalisations.
    fn norm_count(&self) -> usize {
        self.layers.iter().filter(|l| l.normalised()).count()
    }

    /// The resolution divisor at each normalisation (1, 2 or 4).
    fn norm_scales(&self) -> Vec<i64> {
        let mut scale = 1;
        let mut out = Vec::new();
        for layer in &self.layers {
            if layer.upsample {
                scale /= 2;
            }
            scale *= layer.stride;
            if layer.normalised() {
                out.push(scale);
            }
        }
        out
    }

    /// One untiled pass over `x` (`[N, 3, H, W]` fp32 in display range on
    /// the network's device, any H and W) at `strength` in `precision`,
    /// without gradients: the result, `[N, 3, H, W]` fp32 clamped to 0..1,
    /// stays on the device (for callers whose frames are there already).
    pub fn stylize_tensor(&mut self, x: &Tensor, strength: f64, precision: Precision) -> Result<Tensor> {
        self.converted_for(precision)?;
        let size = x.size();
        if size.len() != 4 || size[1] != 3 {
            return Err(Error::invalid("network input", format!("{size:?} is not [N, 3, H, W]")));
        }
        tch::no_grad(|| {
            let padded = pad_to_multiple(x, 4)?;
            let y = self.forward(&padded, &vec![strength; size[0] as usize], &Stats::Own)?;
            Ok(y.f_narrow(2, 0, size[2])?.f_narrow(3, 0, size[3])?.f_clamp(0.0, 1.0)?)
        })
    }

    /// The size a pass runs at for a `width`×`height` content: `side` on the
    /// long side when given, else the content's own.
    pub fn working_size(width: u32, height: u32, side: Option<u32>) -> (u32, u32) {
        match side {
            Some(side) if side != width.max(height) => crate::pyramid::fit_long_side(width, height, side),
            _ => (width, height),
        }
    }

    /// [`Network::stylize`] at [`Network::working_size`] (the result resampled
    /// back to the content's size), with the content's colours kept when
    /// `luminance` (luminance transfer): what `stylize --net` and
    /// `ST_ENGINE_NETWORK` run. Returns the image and the number of passes.
    pub fn stylize_at(
        &mut self,
        content: &RgbImage,
        strength: f64,
        side: Option<u32>,
        luminance: bool,
        options: &InferenceOptions,
        progress: &mut dyn FnMut(usize, usize) -> Flow,
    ) -> Result<(RgbImage, usize)> {
        let (width, height) = (content.width(), content.height());
        let (w, h) = Self::working_size(width, height, side);
        let resized;
        let working = if (w, h) == (width, height) {
            content
        } else {
            resized = content.resize(w, h)?;
            &resized
        };
        let mut passes = 0;
        let mut image = self.stylize(working, strength, options, &mut |done, total| {
            passes = total;
            progress(done, total)
        })?;
        if (w, h) != (width, height) {
            image = image.resize(width, height)?;
        }
        if luminance {
            image = crate::color::transfer_luminance(&image, content)?;
        }
        Ok((image, passes))
    }

    /// Stylises `content` at `strength` (0..1) in `precision`. Images whose
    /// estimated working memory exceeds `budget_bytes` (or whose long side
    /// exceeds `tile_size`) run in tiles, as the module documentation says.
    /// `progress(done, total)` is called after each tile pass; returning
    /// [`Flow::Cancel`] stops with [`Error::Cancelled`].
    pub fn stylize(
        &mut self,
        content: &RgbImage,
        strength: f64,
        options: &InferenceOptions,
        progress: &mut dyn FnMut(usize, usize) -> Flow,
    ) -> Result<RgbImage> {
        let _ = anchor_weights(&[strength], self.device)?;
        self.converted_for(options.precision)?;
        let (width, height) = (content.width(), content.height());
        let plan = self.tile_plan(width, height, options)?;
        tch::no_grad(|| {
            let x = pad_to_multiple(&content.to_tensor(self.device)?, 4)?;
            let y = match plan {
                None => {
                    let y = self.forward(&x, &[strength], &Stats::Own)?;
                    if progress(1, 1) == Flow::Cancel {
                        return Err(Error::Cancelled);
                    }
                    y
                }
                Some(tile) => self.tiled(&x, strength, tile, progress)?,
            };
            RgbImage::from_tensor(&y.f_narrow(2, 0, height as i64)?.f_narrow(3, 0, width as i64)?)
        })
    }

    /// Estimated peak bytes of a whole-image pass at `width`×`height`.
    pub fn estimated_bytes(&self, width: u32, height: u32, precision: Precision) -> u64 {
        let pixels = (width as u64).div_ceil(4) * 4 * (height as u64).div_ceil(4) * 4;
        let element = if precision == Precision::Fp32 { 4 } else { 2 };
        // At full resolution a pass holds the input, the padded input and two
        // `w`-channel activations (one fp32 for the normalisation) at once.
        pixels * (self.shape.width as u64) * (2 * element + 8) + pixels * 3 * 4 * 3
    }

    /// What a run of `options` on a `width`×`height` image would do: the
    /// inner tile side (`None`: one whole-image pass), the number of tiles,
    /// and the estimated peak bytes of one pass (a tile with its margin, or
    /// the whole image).
    pub fn plan(&self, width: u32, height: u32, options: &InferenceOptions) -> Result<(Option<u32>, usize, u64)> {
        let (w, h) = (width.div_ceil(4) * 4, height.div_ceil(4) * 4);
        Ok(match self.tile_plan(width, height, options)? {
            None => (None, 1, self.estimated_bytes(width, height, options.precision)),
            Some(tile) => {
                let halo = self.halo();
                let count = (w.div_ceil(tile) * h.div_ceil(tile)) as usize;
                let side = |len: u32| (tile + 2 * halo).min(len);
                (Some(tile), count, self.estimated_bytes(side(w), side(h), options.precision))
            }
        })
    }

    /// The parameters' bytes (fp32).
    pub fn parameter_bytes(&self) -> u64 {
        self.parameters().iter().map(|t| t.numel() as u64 * 4).sum()
    }

    /// The inner tile side for an image, or `None` for a whole-image pass.
    fn tile_plan(&self, width: u32, height: u32, options: &InferenceOptions) -> Result<Option<u32>> {
        let halo = self.halo();
        let long = width.max(height);
        let mut tile = match options.tile_size {
            Some(t) if t < 16 => return Err(Error::invalid("tile_size", format!("{t} is below 16"))),
            Some(t) if t >= long => return Ok(None),
            Some(t) => t,
            None => {
                let budget =
                    options.budget_bytes.or_else(|| crate::plan::device_free_bytes(self.device)).unwrap_or(u64::MAX);
                if self.estimated_bytes(width, height, options.precision) <= budget {
                    return Ok(None);
                }
                let mut t = long;
                while t > 64 && self.estimated_bytes(t + 2 * halo, t + 2 * halo, options.precision) > budget {
                    t = t * 3 / 4;
                }
                t
            }
        };
        tile = (tile / 4).max(4) * 4;
        Ok(Some(tile))
    }

    /// Tiles of inner side `tile` over `x` (padded, `[1, 3, H, W]`): the
    /// statistics of every normalisation over the whole image, then the output.
    fn tiled(
        &self,
        x: &Tensor,
        strength: f64,
        tile: u32,
        progress: &mut dyn FnMut(usize, usize) -> Flow,
    ) -> Result<Tensor> {
        let size = x.size();
        let (height, width) = (size[2], size[3]);
        let tile = tile as i64;
        let halo = self.halo() as i64;
        let starts = |len: i64| (0..len).step_by(tile as usize).collect::<Vec<i64>>();
        let (rows, columns) = (starts(height), starts(width));
        let norms = self.norm_count();
        let scales = self.norm_scales();
        let total = (norms + 1) * rows.len() * columns.len();
        let mut done = 0;
        let mut stats: Vec<NormStats> = Vec::with_capacity(norms);
        // A tile: the inner part [x0, x1) × [y0, y1) and the outer part with its halo.
        let outer = |start: i64, len: i64| ((start - halo).max(0), (start + tile + halo).min(len));
        let mut step = || -> Result<()> {
            done += 1;
            if progress(done, total) == Flow::Cancel {
                return Err(Error::Cancelled);
            }
            Ok(())
        };
        for &scale in scales.iter().take(norms) {
            // Chan et al.'s parallel combination of per-tile means and sums of squares.
            let mut count = 0f64;
            let mut mean: Option<Tensor> = None;
            let mut m2: Option<Tensor> = None;
            for &y0 in &rows {
                for &x0 in &columns {
                    let ((oy0, oy1), (ox0, ox1)) = (outer(y0, height), outer(x0, width));
                    let input = x.f_narrow(2, oy0, oy1 - oy0)?.f_narrow(3, ox0, ox1 - ox0)?;
                    let h = self.forward(&input, &[strength], &Stats::Given(&stats))?;
                    let (iy, ix) = ((y0 - oy0) / scale, (x0 - ox0) / scale);
                    let (ih, iw) = ((tile.min(height - y0)) / scale, (tile.min(width - x0)) / scale);
                    let inner = h.f_narrow(2, iy, ih)?.f_narrow(3, ix, iw)?.f_to_kind(Kind::Double)?;
                    let n = (ih * iw) as f64;
                    let (tile_var, tile_mean) = inner.f_var_mean_correction([2i64, 3].as_slice(), 0, true)?;
                    let tile_m2 = tile_var.f_mul_scalar(n)?;
                    match (mean.take(), m2.take()) {
                        (Some(m), Some(s)) => {
                            let delta = tile_mean.f_sub(&m)?;
                            let combined = count + n;
                            mean = Some(m.f_add(&delta.f_mul_scalar(n / combined)?)?);
                            m2 =
                                Some(s.f_add(&tile_m2)?.f_add(&delta.f_square()?.f_mul_scalar(count * n / combined)?)?);
                        }
                        _ => {
                            mean = Some(tile_mean);
                            m2 = Some(tile_m2);
                        }
                    }
                    count += n;
                    step()?;
                }
            }
            let mean = mean.ok_or_else(|| Error::Torch("no tiles".into()))?;
            let var = m2.ok_or_else(|| Error::Torch("no tiles".into()))?.f_div_scalar(count)?;
            stats.push(NormStats { mean: mean.f_to_kind(Kind::Float)?, var: var.f_to_kind(Kind::Float)? });
        }
        let out = Tensor::f_zeros([1, 3, height, width], (Kind::Float, self.device))?;
        for &y0 in &rows {
            for &x0 in &columns {
                let ((oy0, oy1), (ox0, ox1)) = (outer(y0, height), outer(x0, width));
                let input = x.f_narrow(2, oy0, oy1 - oy0)?.f_narrow(3, ox0, ox1 - ox0)?;
                let y = self.forward(&input, &[strength], &Stats::Given(&stats))?;
                let (ih, iw) = (tile.min(height - y0), tile.min(width - x0));
                let inner = y.f_narrow(2, y0 - oy0, ih)?.f_narrow(3, x0 - ox0, iw)?;
                out.f_narrow(2, y0, ih)?.f_narrow(3, x0, iw)?.f_copy_(&inner)?;
                step()?;
            }
        }
        Ok(out)
    }

    /// Writes the network with `info` (its shape fields are taken from the
    /// network) to `path`, under a temporary name renamed on success.
    pub fn save(&self, path: &Path, info: &NetworkInfo) -> Result<()> {
        let data = self.to_bytes(info)?;
        let temporary = path.with_extension(format!("{NETWORK_EXTENSION}.{}.tmp", std::process::id()));
        std::fs::write(&temporary, data).and_then(|_| std::fs::rename(&temporary, path)).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            net_error(path, format!("cannot write: {e}"))
        })
    }

    /// The file's bytes.
    pub fn to_bytes(&self, info: &NetworkInfo) -> Result<Vec<u8>> {
        let info = NetworkInfo { shape: self.shape, format_version: NETWORK_FORMAT_VERSION, ..info.clone() };
        let names = self.parameter_names();
        let mut buffers: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        for (name, tensor) in names.into_iter().zip(self.parameters()) {
            let t = tensor.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
            let numel = t.numel();
            let mut values = vec![0f32; numel];
            t.f_copy_data(&mut values, numel)?;
            let shape = t.size().iter().map(|&d| d as usize).collect();
            buffers.push((name, values.iter().flat_map(|v| v.to_le_bytes()).collect(), shape));
        }
        let views = buffers
            .iter()
            .map(|(name, bytes, shape)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid("network", e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut metadata = metadata_of(&info);
        let digest = data_digest(
            &metadata,
            views.iter().map(|(name, view)| (name.as_str(), view.dtype(), view.shape(), view.data())),
        );
        metadata.insert(DIGEST_KEY.to_string(), digest);
        let data =
            safetensors::serialize(views, Some(metadata)).map_err(|e| Error::invalid("network", e.to_string()))?;
        crate::pack::canonical_header(&data).ok_or_else(|| Error::invalid("network", "could not order the header"))
    }

    /// Reads a network file onto `device`.
    pub fn load(path: &Path, device: Device) -> Result<(Self, NetworkInfo)> {
        let bytes = std::fs::read(path).map_err(|e| net_error(path, format!("cannot read: {e}")))?;
        Self::from_bytes(&bytes, path, device)
    }

    /// Parses and checks a network file's bytes: its metadata, every tensor's
    /// presence, type, shape and finiteness, no tensor left over, and the
    /// contents against `data_sha256`. `path` is for messages only.
    pub fn from_bytes(bytes: &[u8], path: &Path, device: Device) -> Result<(Self, NetworkInfo)> {
        if bytes.len() >= 8 {
            let length = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
            if length > MAX_HEADER_BYTES as u64 {
                return Err(net_error(path, "not a network file (implausible header size)"));
            }
        }
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| match e {
            safetensors::SafeTensorError::MetadataIncompleteBuffer => {
                net_error(path, "corrupt or truncated: its data does not cover what the header lists")
            }
            e => net_error(path, format!("not a network file ({e})")),
        })?;
        let mut metadata = header.metadata().clone().unwrap_or_default();
        let recorded = metadata.remove(DIGEST_KEY);
        let info = info_from(&metadata, path)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| net_error(path, format!("corrupt ({e})")))?;
        let mut network = Network::build(info.shape, Device::Cpu, |layer| {
            vec![0.0; (layer.output * layer.input * layer.kernel * layer.kernel) as usize]
        })?;
        let names = network.parameter_names();
        let shapes = network.parameter_shapes();
        if tensors.len() != names.len() {
            return Err(net_error(
                path,
                format!(
                    "holds {} tensors; a {} of width {} with {} residual blocks has {}",
                    tensors.len(),
                    ARCHITECTURE,
                    info.shape.width,
                    info.shape.residual_blocks,
                    names.len()
                ),
            ));
        }
        let mut values = Vec::with_capacity(names.len());
        for (name, shape) in names.iter().zip(&shapes) {
            let view = tensors.tensor(name).map_err(|_| net_error(path, format!("`{name}` is missing")))?;
            let expected: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            if view.dtype() != Dtype::F32 || view.shape() != expected.as_slice() {
                return Err(net_error(
                    path,
                    format!("`{name}` is {:?} {:?}, expected F32 {expected:?}", view.dtype(), view.shape()),
                ));
            }
            let floats: Vec<f32> =
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            if floats.iter().any(|v| !v.is_finite()) {
                return Err(net_error(path, format!("`{name}` holds NaN or infinite values")));
            }
            values.push(Tensor::f_from_slice(&floats)?.f_view(shape.as_slice())?);
        }
        let Some(recorded) = recorded else {
            return Err(net_error(path, format!("metadata lacks `{DIGEST_KEY}`")));
        };
        let mut all = tensors.tensors();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let actual = data_digest(
            &metadata,
            all.iter().map(|(name, view)| (name.as_str(), view.dtype(), view.shape(), view.data())),
        );
        if actual != recorded {
            return Err(net_error(path, "corrupt: its contents do not match the digest it records"));
        }
        network.load_parameters(&values)?;
        network.to_device(device)?;
        Ok((network, info))
    }

    /// Moves the parameters to `device`.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        if device == self.device {
            return Ok(());
        }
        for p in &mut self.params {
            p.weight = p.weight.f_to_device(device)?;
            p.bias = p.bias.f_to_device(device)?;
            if let Some((scale, shift)) = &mut p.norm {
                *scale = scale.f_to_device(device)?;
                *shift = shift.f_to_device(device)?;
            }
        }
        self.converted = None;
        self.device = device;
        Ok(())
    }

    /// Reads only a network file's description (the header).
    pub fn read_info(path: &Path) -> Result<NetworkInfo> {
        let mut file = std::fs::File::open(path).map_err(|e| net_error(path, format!("cannot open: {e}")))?;
        let (_, _, metadata) =
            crate::pack::read_header(&mut file, MAX_HEADER_BYTES as u64, "a network file", |reason| {
                net_error(path, reason)
            })?;
        info_from(&metadata, path)
    }

    /// Whether `path` names a network file (its extension is `.stnet`, any case).
    pub fn is_network_path(path: &Path) -> bool {
        path.extension().is_some_and(|e| e.eq_ignore_ascii_case(NETWORK_EXTENSION))
    }
}

/// `t` with channels-last strides: libtorch picks the convolution's layout
/// from its input's strides, and oneDNN and cuDNN are faster in it.
fn channels_last(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

/// How [`Network::stylize`] runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InferenceOptions {
    /// Convolution precision (normalisation is fp32 at every precision).
    pub precision: Precision,
    /// Working-memory budget; `None`: the device's free memory (as the
    /// optimiser's plan takes it: [`crate::plan::device_free_bytes`]), no
    /// limit where that cannot be read.
    pub budget_bytes: Option<u64>,
    /// Largest inner tile side; `None` lets the budget decide.
    pub tile_size: Option<u32>,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        Self { precision: Precision::Fp32, budget_bytes: None, tile_size: None }
    }
}

/// `x` (`[N, 3, H, W]`) padded by reflection on the right and bottom to sides
/// that are multiples of `multiple` (not copied when they are).
pub(crate) fn pad_to_multiple(x: &Tensor, multiple: i64) -> Result<Tensor> {
    let size = x.size();
    let (h, w) = (size[2], size[3]);
    let (ph, pw) = ((multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple);
    if ph == 0 && pw == 0 {
        return Ok(x.shallow_clone());
    }
    // Reflection needs a side longer than the padding; replicate tiny images.
    let mode = if h > ph && w > pw { "reflect" } else { "replicate" };
    Ok(x.f_pad([0, pw, 0, ph], mode, None)?)
}

fn metadata_of(info: &NetworkInfo) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), NETWORK_FORMAT.to_string()),
        ("format_version".to_string(), NETWORK_FORMAT_VERSION.to_string()),
        ("architecture".to_string(), ARCHITECTURE.to_string()),
        ("width".to_string(), info.shape.width.to_string()),
        ("residual_blocks".to_string(), info.shape.residual_blocks.to_string()),
        ("strength_anchors".to_string(), STRENGTH_ANCHORS.to_string()),
        ("name".to_string(), info.name.clone()),
        ("style_sha256".to_string(), info.style_sha256.join(",")),
        ("model_sha256".to_string(), info.model_sha256.clone()),
        ("training_images".to_string(), info.training_images.to_string()),
        ("training_size".to_string(), info.training_size.to_string()),
        ("steps".to_string(), info.steps.to_string()),
        ("batch".to_string(), info.batch.to_string()),
        ("seed".to_string(), info.seed.to_string()),
        ("final_loss".to_string(), format!("{:e}", info.final_loss)),
        ("library_version".to_string(), info.library_version.clone()),
    ])
}

fn info_from(metadata: &HashMap<String, String>, path: &Path) -> Result<NetworkInfo> {
    let field = |key: &str| metadata.get(key).ok_or_else(|| net_error(path, format!("metadata lacks `{key}`")));
    fn number<T: std::str::FromStr>(path: &Path, key: &str, text: &str) -> Result<T> {
        text.parse().map_err(|_| net_error(path, format!("`{key}` is not a number: `{text}`")))
    }
    if field("format")? != NETWORK_FORMAT {
        return Err(net_error(path, format!("not a network file (format is not `{NETWORK_FORMAT}`)")));
    }
    let version: u32 = number(path, "format_version", field("format_version")?)?;
    if version > NETWORK_FORMAT_VERSION {
        return Err(net_error(
            path,
            format!(
                "made by a newer styletransfer (network format {version}; this library reads up to {NETWORK_FORMAT_VERSION})"
            ),
        ));
    }
    if version == 0 {
        return Err(net_error(path, "format_version 0 does not exist"));
    }
    let architecture = field("architecture")?;
    if architecture != ARCHITECTURE {
        return Err(net_error(
            path,
            format!("architecture `{architecture}` is unknown (this library knows `{ARCHITECTURE}`)"),
        ));
    }
    let anchors: usize = number(path, "strength_anchors", field("strength_anchors")?)?;
    if anchors != STRENGTH_ANCHORS {
        return Err(net_error(path, format!("{anchors} strength anchors; this library uses {STRENGTH_ANCHORS}")));
    }
    let shape = NetworkShape {
        width: number(path, "width", field("width")?)?,
        residual_blocks: number(path, "residual_blocks", field("residual_blocks")?)?,
    };
    shape.validate().map_err(|e| net_error(path, e.to_string()))?;
    let final_loss: f64 = number(path, "final_loss", field("final_loss")?)?;
    Ok(NetworkInfo {
        name: field("name")?.clone(),
        shape,
        style_sha256: field("style_sha256")?.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        model_sha256: field("model_sha256")?.clone(),
        training_images: number(path, "training_images", field("training_images")?)?,
        training_size: number(path, "training_size", field("training_size")?)?,
        steps: number(path, "steps", field("steps")?)?,
        batch: number(path, "batch", field("batch")?)?,
        seed: number(path, "seed", field("seed")?)?,
        final_loss,
        library_version: field("library_version")?.clone(),
        format_version: version,
    })
}

/// The network files in the style folders, as `(name, path)`.
pub fn list_networks(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| Network::is_network_path(p)) {
            if let Ok(info) = Network::read_info(&path) {
                out.push((info.name, path));
            }
        }
    }
    out
}
