//! VGG19 up to conv5_1: loading the model file, the input convention it
//! declares, and the feature extractor the losses read from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use crate::device::{Bf16Kernels, Precision};
use crate::error::{Error, Result};

/// The thirteen convolutions the engine runs: (name, in channels, out channels).
/// Everything after conv5_1 is never needed and never loaded.
pub const LAYERS: [(&str, i64, i64); 13] = [
    ("conv1_1", 3, 64),
    ("conv1_2", 64, 64),
    ("conv2_1", 64, 128),
    ("conv2_2", 128, 128),
    ("conv3_1", 128, 256),
    ("conv3_2", 256, 256),
    ("conv3_3", 256, 256),
    ("conv3_4", 256, 256),
    ("conv4_1", 256, 512),
    ("conv4_2", 512, 512),
    ("conv4_3", 512, 512),
    ("conv4_4", 512, 512),
    ("conv5_1", 512, 512),
];

/// Indices into [`LAYERS`] after whose ReLU the style layers are read
/// (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1).
pub const STYLE_LAYER_INDICES: [usize; 5] = [0, 2, 4, 8, 12];
/// Names of the style layers, in order.
pub const STYLE_LAYER_NAMES: [&str; 5] = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"];
/// Index into [`LAYERS`] after whose ReLU the content layer is read (relu4_2).
pub const CONTENT_LAYER_INDEX: usize = 9;
/// A 2×2 max-pool runs before these layer indices.
const POOL_BEFORE: [usize; 4] = [2, 4, 8, 12];
/// The smallest side an input may have: four poolings must leave one pixel.
pub const MIN_INPUT_SIDE: i64 = 16;

/// How images are presented to the network, as declared by the model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputConvention {
    /// The original Caffe VGG19: BGR, 0-255, minus the mean (103.939, 116.779, 123.68).
    Caffe,
    /// torchvision's VGG19: RGB, 0-1, ImageNet mean and standard deviation.
    Torchvision,
}

impl InputConvention {
    /// Parses the `input_convention` metadata value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "caffe" => Some(Self::Caffe),
            "torchvision" => Some(Self::Torchvision),
            _ => None,
        }
    }

    /// The metadata name of this convention.
    pub fn name(self) -> &'static str {
        match self {
            Self::Caffe => "caffe",
            Self::Torchvision => "torchvision",
        }
    }

    /// For each model input channel: (source RGB channel, multiplier, offset),
    /// so that `input[c] = rgb01[source] * multiplier + offset`.
    fn affine(self) -> [(i64, f64, f64); 3] {
        match self {
            Self::Caffe => [(2, 255.0, -103.939), (1, 255.0, -116.779), (0, 255.0, -123.68)],
            Self::Torchvision => {
                let mean = [0.485, 0.456, 0.406];
                let std = [0.229, 0.224, 0.225];
                [
                    (0, 1.0 / std[0], -mean[0] / std[0]),
                    (1, 1.0 / std[1], -mean[1] / std[1]),
                    (2, 1.0 / std[2], -mean[2] / std[2]),
                ]
            }
        }
    }

    /// Weights over the model input channels whose weighted sum of an input
    /// difference is `rgb_weights · Δrgb` in display units (a luma
    /// difference, for luma weights).
    pub fn display_weights(self, rgb_weights: [f64; 3]) -> [f64; 3] {
        self.affine().map(|(source, multiplier, _)| rgb_weights[source as usize] / multiplier)
    }

    /// Model-input units per unit of display range: how far a pixel moves in
    /// the optimised variable when it moves from black to white. Used to
    /// express step sizes and noise independently of the convention.
    pub fn scale(self) -> f64 {
        let affine = self.affine();
        affine.iter().map(|a| a.1).sum::<f64>() / 3.0
    }

    /// Converts a `[N, 3, H, W]` RGB tensor in display range 0..1 to model input.
    pub fn to_model(self, rgb01: &Tensor) -> Result<Tensor> {
        let device = rgb01.device();
        let affine = self.affine();
        let order = Tensor::f_from_slice(&affine.map(|a| a.0))?.f_to_device(device)?;
        let mul = Tensor::f_from_slice(&affine.map(|a| a.1 as f32))?.f_to_device(device)?.f_view([1, 3, 1, 1])?;
        let add = Tensor::f_from_slice(&affine.map(|a| a.2 as f32))?.f_to_device(device)?.f_view([1, 3, 1, 1])?;
        // One new tensor (the reordering), scaled and shifted in place.
        let mut reordered = rgb01.f_index_select(1, &order)?;
        let _ = reordered.f_mul_(&mul)?;
        let _ = reordered.f_add_(&add)?;
        Ok(reordered)
    }

    /// The gradient of a loss with respect to display-range RGB, given its
    /// gradient with respect to the model input (`[N, 3, H, W]`): the chain
    /// rule through [`InputConvention::to_model`].
    pub fn gradient_to_display(self, grad_model: &Tensor) -> Result<Tensor> {
        let device = grad_model.device();
        let affine = self.affine();
        let mut inverse = [0usize; 3];
        for (c, a) in affine.iter().enumerate() {
            inverse[a.0 as usize] = c;
        }
        let mul =
            Tensor::f_from_slice(&inverse.map(|c| affine[c].1 as f32))?.f_to_device(device)?.f_view([1, 3, 1, 1])?;
        let index = Tensor::f_from_slice(&inverse.map(|c| c as i64))?.f_to_device(device)?;
        Ok(grad_model.f_index_select(1, &index)?.f_mul(&mul)?)
    }

    /// Converts model input back to a `[N, 3, H, W]` RGB tensor in display
    /// range (not clamped): one new tensor (the reordering), unscaled in place.
    pub fn from_model(self, x: &Tensor) -> Result<Tensor> {
        let device = x.device();
        let affine = self.affine();
        // Undo the reordering: RGB channel k sits where affine[c].0 == k.
        let mut inverse = [0usize; 3];
        for (c, a) in affine.iter().enumerate() {
            inverse[a.0 as usize] = c;
        }
        let per_rgb = |f: fn(&(i64, f64, f64)) -> f64| -> Result<Tensor> {
            let values = inverse.map(|c| f(&affine[c]) as f32);
            Ok(Tensor::f_from_slice(&values)?.f_to_device(device)?.f_view([1, 3, 1, 1])?)
        };
        let (mul, add) = (per_rgb(|a| a.1)?, per_rgb(|a| a.2)?);
        let index = Tensor::f_from_slice(&inverse.map(|c| c as i64))?.f_to_device(device)?;
        let mut rgb = x.f_index_select(1, &index)?;
        let _ = rgb.f_sub_(&add)?;
        let _ = rgb.f_div_(&mul)?;
        Ok(rgb)
    }
}

/// Which activations a forward pass must produce; the pass stops after the
/// deepest one requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needed {
    /// relu4_2 only (content targets).
    Content,
    /// The five style layers only (style targets).
    Style,
    /// Both (the objective).
    All,
}

/// Activations of one forward pass, in fp32.
pub struct Features {
    /// relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (empty when not requested).
    pub style: Vec<Tensor>,
    /// relu4_2 (`None` when not requested).
    pub content: Option<Tensor>,
}

/// One convolution's parameters in the layouts its kernels want.
struct Conv {
    /// The arithmetic this layer runs in (fp32, bf16 or fp16). Its tensors
    /// are stored in this kind, except under bf16 emulation, where they are
    /// fp32 tensors holding bf16 values.
    arithmetic: Kind,
    /// `[out, in, 3, 3]`, in the engine's layout (channels-last when enabled).
    weight: Tensor,
    bias: Tensor,
    /// The input-gradient kernel: `weight` with in/out swapped and flipped
    /// spatially, so that the gradient is itself a padded 3×3 convolution.
    weight_t: Tensor,
    /// Contiguous copies for NNPACK (CPU fp32 only).
    nnpack: Option<NnpackWeights>,
}

struct NnpackWeights {
    weight: Tensor,
    weight_t: Tensor,
    zero_bias_in: Tensor,
}

/// The activations a forward pass keeps for its backward pass.
pub struct Trace {
    /// ReLU output of every layer run (times the model's activation scale).
    relu: Vec<Tensor>,
    /// Max-pool indices, for the layers that a pool precedes.
    pool_indices: Vec<Option<Tensor>>,
    /// What the stored activations are multiplied by (see [`Vgg19::activation_scale`]).
    scale: f64,
    /// Whether the pass ran the exact (fp32) network.
    exact: bool,
}

impl Trace {
    /// ReLU output of layer `index` (see [`LAYERS`]), in fp32.
    pub fn activation(&self, index: usize) -> Result<Tensor> {
        let relu = self.relu.get(index).ok_or_else(|| Error::Torch("trace is missing a layer".into()))?;
        unscale(relu, self.scale)
    }
}

/// `x` (fp32 model input) times the activation scale, as the network takes
/// it (the first layer converts it to its own kind).
fn scaled(x: &Tensor, scale: f64) -> Result<Tensor> {
    Ok(if scale == 1.0 { x.shallow_clone() } else { x.f_mul_scalar(scale)? })
}

/// `t` in fp32, divided by the activation scale.
fn unscale(t: &Tensor, scale: f64) -> Result<Tensor> {
    let t = t.f_to_kind(Kind::Float)?;
    Ok(if scale == 1.0 { t } else { t.f_mul_scalar(1.0 / scale)? })
}

/// fp16 runs the network on the input times this, with every bias times it
/// too: ReLU and max-pooling are positively homogeneous, so every
/// activation is then exactly this times the unscaled one. Caffe VGG19's
/// activations reach 2·10⁴ on natural images (relu4_1/4_2) and more on
/// stylised ones, against fp16's 65504.
const FP16_ACTIVATION_SCALE: f64 = 1.0 / 256.0;

/// The network, resident on one device in one precision.
pub struct Vgg19 {
    convs: Vec<Conv>,
    /// The same network in fp32 (weights as the file holds them, engine
    /// layout), for the content and style targets, which are computed in
    /// fp32 whatever the run's precision, and for evaluations that must see
    /// past the precision's rounding ([`Vgg19::trace_with`]); `None` when the
    /// network itself is fp32.
    exact: Option<Vec<Conv>>,
    /// bf16 without native kernels: fp32 arithmetic on bf16 values, every
    /// convolution's inputs, weights and outputs rounded to bf16 (see
    /// [`Bf16Kernels`]).
    emulated: bool,
    convention: InputConvention,
    weights_sha256: String,
    path: PathBuf,
    device: Device,
    precision: Precision,
    channels_last: bool,
    allow_nnpack: bool,
}

fn model_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Model { path: path.to_path_buf(), reason: reason.into() }
}

fn activation_scale(precision: Precision) -> f64 {
    if precision == Precision::Fp16 {
        FP16_ACTIVATION_SCALE
    } else {
        1.0
    }
}

/// NNPACK's Winograd kernels beat oneDNN on this work when the plane is at
/// least this many pixels and the layer has at least 64 input channels
/// (measured on 2-core AVX2 and AVX-512 machines; see `benches/eval.rs`).
const NNPACK_MIN_PIXELS: i64 = 32 * 32;
const NNPACK_MIN_CHANNELS: i64 = 64;

fn nnpack_ready() -> bool {
    // The first call also initialises NNPACK; without it every NNPACK call fails.
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| Tensor::f_internal_nnpack_available().unwrap_or(false))
}

impl Vgg19 {
    /// Loads a model file written by `tools/convert_vgg19.py` (safetensors,
    /// conv1_1..conv5_1, metadata `input_convention`). Every layer's presence,
    /// shape, dtype and finiteness is checked. bf16 uses the kernels
    /// [`Bf16Kernels::for_device`] picks.
    pub fn load(path: &Path, device: Device, precision: Precision) -> Result<Self> {
        Self::load_with(path, device, precision, Bf16Kernels::for_device(device))
    }

    /// Like [`Vgg19::load`], with bf16's kernels chosen by the caller.
    pub fn load_with(path: &Path, device: Device, precision: Precision, kernels: Bf16Kernels) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| model_error(path, format!("cannot read: {e}")))?;
        Self::from_bytes_with(&bytes, path, device, precision, kernels)
    }

    /// Like [`Vgg19::load`], from the file's bytes; `path` is used in messages only.
    pub fn from_bytes(bytes: &[u8], path: &Path, device: Device, precision: Precision) -> Result<Self> {
        Self::from_bytes_with(bytes, path, device, precision, Bf16Kernels::for_device(device))
    }

    /// Like [`Vgg19::from_bytes`], with bf16's kernels chosen by the caller.
    pub fn from_bytes_with(
        bytes: &[u8],
        path: &Path,
        device: Device,
        precision: Precision,
        kernels: Bf16Kernels,
    ) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| model_error(path, format!("not a safetensors model file ({e})")))?;
        let metadata: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        let convention_name =
            metadata.get("input_convention").ok_or_else(|| model_error(path, "metadata lacks `input_convention`"))?;
        let convention = InputConvention::from_name(convention_name).ok_or_else(|| {
            model_error(path, format!("unknown input convention `{convention_name}` (expected caffe or torchvision)"))
        })?;
        let weights_sha256 = metadata.get("weights_sha256").cloned().unwrap_or_default();
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| model_error(path, format!("corrupt tensor data ({e})")))?;
        let emulated = precision == Precision::Bf16 && kernels == Bf16Kernels::Emulated;
        let scale = activation_scale(precision);
        let mut convs = Vec::with_capacity(LAYERS.len());
        let mut exact = Vec::with_capacity(LAYERS.len());
        for (index, (name, cin, cout)) in LAYERS.into_iter().enumerate() {
            let weight = load_tensor(&tensors, path, &format!("{name}.weight"), &[cout, cin, 3, 3])?;
            let bias = load_tensor(&tensors, path, &format!("{name}.bias"), &[cout])?;
            let finite = weight.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0
                && bias.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
            if !finite {
                return Err(model_error(path, format!("{name} holds NaN or infinite values")));
            }
            let (weight, bias) = (weight.f_to_device(device)?, bias.f_to_device(device)?);

            let arithmetic = layer_arithmetic(precision, index);
            let storage = if emulated { Kind::Float } else { arithmetic };
            // Rounded to the arithmetic's kind, then stored in the storage kind.
            let stored = |t: &Tensor| -> Result<Tensor> { Ok(t.f_to_kind(arithmetic)?.f_to_kind(storage)?) };
            let layer_weight = stored(&weight)?;
            let layer_bias = stored(&bias.f_mul_scalar(scale)?)?;
            let weight_t = layer_weight.f_transpose(0, 1)?.f_flip([2, 3])?.f_contiguous()?;
            convs.push(Conv { arithmetic, weight: layer_weight, bias: layer_bias, weight_t, nnpack: None });
            if precision != Precision::Fp32 {
                let weight_t = weight.f_transpose(0, 1)?.f_flip([2, 3])?.f_contiguous()?;
                exact.push(Conv { arithmetic: Kind::Float, weight, bias, weight_t, nnpack: None });
            }
        }
        // After the layers were read, so that a missing or misshapen tensor is named as such.
        if !weights_sha256.is_empty() {
            let actual = weights_digest(&tensors, path)?;
            if actual != weights_sha256 {
                return Err(model_error(
                    path,
                    format!(
                        "corrupt: the weights do not match the digest the file records (weights_sha256 {}, weights {}); \
                         make the model again (`make model`)",
                        &weights_sha256[..weights_sha256.len().min(12)],
                        &actual[..12]
                    ),
                ));
            }
        }
        Ok(Self {
            convs,
            exact: (precision != Precision::Fp32).then_some(exact),
            emulated,
            convention,
            weights_sha256,
            path: path.to_path_buf(),
            device,
            precision,
            channels_last: false,
            allow_nnpack: false,
        })
    }

    /// Stores weights and runs convolutions in channels-last layout (NHWC
    /// strides), which oneDNN and cuDNN run faster.
    pub fn set_channels_last(&mut self, enabled: bool) -> Result<()> {
        if enabled == self.channels_last {
            return Ok(());
        }
        for conv in &mut self.convs {
            conv.weight = layout(&conv.weight, enabled)?;
            conv.weight_t = layout(&conv.weight_t, enabled)?;
        }
        for conv in self.exact.iter_mut().flatten() {
            conv.weight = layout(&conv.weight, enabled)?;
            conv.weight_t = layout(&conv.weight_t, enabled)?;
        }
        self.channels_last = enabled;
        Ok(())
    }

    /// Allows NNPACK's Winograd kernels for the large CPU fp32 layers. Off by
    /// default: alone they are about twice as fast as oneDNN's, but NNPACK's
    /// thread pool and libtorch's OpenMP pool then contend for the cores and
    /// a whole evaluation got slower on the 2-core machines measured.
    /// The contiguous weight copies NNPACK needs are made only then (CPU
    /// fp32 only; elsewhere this does nothing).
    pub fn set_nnpack(&mut self, allowed: bool) -> Result<()> {
        let usable = self.device == Device::Cpu && self.precision == Precision::Fp32 && nnpack_ready();
        for (conv, (_, cin, _)) in self.convs.iter_mut().zip(LAYERS) {
            conv.nnpack = match (allowed && usable, conv.nnpack.take()) {
                (false, _) => None,
                (true, Some(kept)) => Some(kept),
                (true, None) => Some(NnpackWeights {
                    weight: conv.weight.f_contiguous()?,
                    weight_t: conv.weight_t.f_contiguous()?,
                    zero_bias_in: Tensor::f_zeros([cin], (conv.weight.kind(), self.device))?,
                }),
            };
        }
        self.allow_nnpack = allowed && usable;
        Ok(())
    }

    fn wants_nnpack(&self, input: &Tensor, in_channels: i64) -> bool {
        let size = input.size();
        self.allow_nnpack && in_channels >= NNPACK_MIN_CHANNELS && size[2] * size[3] >= NNPACK_MIN_PIXELS
    }

    /// `t` as layer `index`'s arithmetic takes it: converted to its storage
    /// kind, and under emulation rounded to its kind when `t` may hold
    /// values it cannot represent (`t` comes from a layer of another kind).
    fn layer_operand(&self, convs: &[Conv], index: usize, t: &Tensor, from: Option<Kind>) -> Result<Tensor> {
        let conv = &convs[index];
        if self.emulated && conv.arithmetic != Kind::Float {
            if from != Some(conv.arithmetic) {
                return Ok(t.f_to_kind(conv.arithmetic)?.f_to_kind(Kind::Float)?);
            }
            return Ok(t.shallow_clone());
        }
        let storage = conv.weight.kind();
        Ok(if t.kind() == storage { t.shallow_clone() } else { t.f_to_kind(storage)? })
    }

    /// Under emulation, `t` (a result of layer `index`) rounded to the
    /// layer's kind, as a native kernel's output would be.
    fn layer_result(&self, convs: &[Conv], index: usize, t: Tensor) -> Result<Tensor> {
        let arithmetic = convs[index].arithmetic;
        if self.emulated && arithmetic != Kind::Float {
            Ok(t.f_to_kind(arithmetic)?.f_to_kind(Kind::Float)?)
        } else {
            Ok(t)
        }
    }

    /// The kind of values layer `index`'s input holds (its predecessor's
    /// arithmetic; the network input is fp32).
    fn input_arithmetic(convs: &[Conv], index: usize) -> Kind {
        if index == 0 {
            Kind::Float
        } else {
            convs[index - 1].arithmetic
        }
    }

    /// The network a pass runs and the scale of its activations: the exact
    /// fp32 one (unscaled) when `exact` and the model has one, else the
    /// precision's.
    fn pass(&self, exact: bool) -> (&[Conv], f64) {
        match (&self.exact, exact) {
            (Some(exact), true) => (exact, 1.0),
            _ => (&self.convs, self.activation_scale()),
        }
    }

    /// Layer `index`'s 3×3 convolution (no ReLU) of the previous layer's
    /// output (or the network input).
    fn conv_forward(&self, convs: &[Conv], index: usize, input: &Tensor) -> Result<Tensor> {
        let conv = &convs[index];
        let input = self.layer_operand(convs, index, input, Some(Self::input_arithmetic(convs, index)))?;
        if let Some(nn) = &conv.nnpack {
            if self.wants_nnpack(&input, LAYERS[index].1) {
                return Ok(input.f_contiguous()?.f_internal_nnpack_spatial_convolution(
                    &nn.weight,
                    Some(&conv.bias),
                    [1, 1],
                    [1, 1],
                )?);
            }
        }
        let output =
            layout(&input, self.channels_last)?.f_conv2d(&conv.weight, Some(&conv.bias), [1, 1], [1, 1], [1, 1], 1)?;
        self.layer_result(convs, index, output)
    }

    /// Gradient with respect to layer `index`'s input, given the gradient
    /// with respect to its (pre-ReLU) output (in the layer's kind).
    fn conv_input_grad(&self, convs: &[Conv], index: usize, grad_output: &Tensor) -> Result<Tensor> {
        let conv = &convs[index];
        if let Some(nn) = &conv.nnpack {
            if self.wants_nnpack(grad_output, LAYERS[index].2) && LAYERS[index].1 >= NNPACK_MIN_CHANNELS {
                return Ok(grad_output.f_contiguous()?.f_internal_nnpack_spatial_convolution(
                    &nn.weight_t,
                    Some(&nn.zero_bias_in),
                    [1, 1],
                    [1, 1],
                )?);
            }
        }
        let grad = layout(grad_output, self.channels_last)?.f_conv2d(
            &conv.weight_t,
            None::<&Tensor>,
            [1, 1],
            [1, 1],
            [1, 1],
            1,
        )?;
        self.layer_result(convs, index, grad)
    }

    /// Forward pass to conv5_1 keeping what [`Vgg19::backward`] needs. No
    /// autograd graph is built: the backward pass is written out by hand,
    /// which lets each convolution use the fastest kernel for its shape.
    pub fn trace(&self, x: &Tensor) -> Result<Trace> {
        self.trace_with(x, false)
    }

    /// [`Vgg19::trace`] through the exact fp32 network when `exact` (and the
    /// model has one), else through the precision's.
    pub fn trace_with(&self, x: &Tensor, exact: bool) -> Result<Trace> {
        let _guard = tch::no_grad_guard();
        let exact = exact && self.exact.is_some();
        let (convs, scale) = self.pass(exact);
        let last = STYLE_LAYER_INDICES[4];
        let mut h = scaled(x, scale)?;
        let mut relu = Vec::with_capacity(last + 1);
        let mut pool_indices = Vec::with_capacity(last + 1);
        for index in 0..=last {
            if POOL_BEFORE.contains(&index) {
                let (pooled, indices) = h.f_max_pool2d_with_indices([2, 2], [2, 2], [0, 0], [1, 1], false)?;
                h = pooled;
                pool_indices.push(Some(indices));
            } else {
                pool_indices.push(None);
            }
            h = self.conv_forward(convs, index, &h)?.f_relu()?;
            relu.push(h.shallow_clone());
        }
        Ok(Trace { relu, pool_indices, scale, exact })
    }

    /// Gradient with respect to the network input, given gradients with
    /// respect to some layers' ReLU outputs (`(layer index, gradient)` in any
    /// order; gradients in fp32 or the model's precision). Where gradients
    /// meet (a tapped layer below another), they are added in fp32 and
    /// rounded once to the layer's kind.
    pub fn backward(&self, trace: &Trace, x: &Tensor, taps: &[(usize, Tensor)]) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let deepest = taps.iter().map(|(i, _)| *i).max().ok_or_else(|| Error::invalid("taps", "no gradient given"))?;
        let (convs, _) = self.pass(trace.exact);
        let scale =
            if self.precision == Precision::Fp16 && !trace.exact { Some(fp16_gradient_scale(taps)?) } else { None };
        // The gradient with respect to the output of layer `index`, as it arrives from above.
        let mut grad: Option<Tensor> = None;
        for index in (0..=deepest).rev() {
            let arriving = grad.take();
            let mut sum: Option<Tensor> = None;
            for (_, g) in taps.iter().filter(|(i, _)| *i == index) {
                let g = match &scale {
                    Some(scale) => g.f_mul(scale)?,
                    None => g.shallow_clone(),
                };
                sum = Some(match sum {
                    Some(total) => total.f_add(&g.f_to_kind(Kind::Float)?)?,
                    None => g.f_to_kind(Kind::Float)?,
                });
            }
            let g = match (arriving, sum) {
                (None, None) => continue,
                (Some(a), None) => self.layer_operand(convs, index, &a, Some(convs[index + 1].arithmetic))?,
                (a, Some(total)) => {
                    let total = match a {
                        Some(a) => total.f_add(&a.f_to_kind(Kind::Float)?)?,
                        None => total,
                    };
                    self.layer_operand(convs, index, &total, None)?
                }
            };
            let pre_relu = trace.relu[index].f_threshold_backward(&g, 0.0)?;
            let mut g = self.conv_input_grad(convs, index, &pre_relu)?;
            if let Some(indices) = &trace.pool_indices[index] {
                let pool_input = &trace.relu[index - 1];
                if g.kind() != pool_input.kind() {
                    g = g.f_to_kind(pool_input.kind())?;
                }
                g = pool_input.f_max_pool2d_with_indices_backward(
                    &g,
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    [1, 1],
                    false,
                    indices,
                )?;
            }
            grad = Some(g);
        }
        let grad = grad.ok_or_else(|| Error::invalid("taps", "no gradient given"))?.f_to_kind(x.kind())?;
        let grad = match &scale {
            Some(scale) => grad.f_div(scale)?,
            None => grad,
        };
        Ok(grad.f_contiguous()?)
    }

    /// What activations are multiplied by inside the network (fp16: 1/256,
    /// against overflow; else 1). Everything this type returns is unscaled.
    pub fn activation_scale(&self) -> f64 {
        activation_scale(self.precision)
    }

    /// The input convention the file declares.
    pub fn convention(&self) -> InputConvention {
        self.convention
    }

    /// The digest of the stored weights (metadata `weights_sha256`), empty if absent.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// The file this model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The precision convolutions run in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes the weights take on the device (both kernel layouts and biases).
    pub fn weight_bytes(&self) -> u64 {
        let bytes = |t: &Tensor| t.numel() as u64 * t.kind().elt_size_in_bytes() as u64;
        let network: u64 = self.convs.iter().map(|c| bytes(&c.weight) + bytes(&c.weight_t) + bytes(&c.bias)).sum();
        let exact: u64 =
            self.exact.iter().flatten().map(|c| bytes(&c.weight) + bytes(&c.weight_t) + bytes(&c.bias)).sum();
        network + exact
    }

    /// Whether bf16 runs emulated (see [`Bf16Kernels`]).
    pub fn bf16_emulated(&self) -> bool {
        self.emulated
    }

    /// Runs the network on `x` (`[1, 3, H, W]` model input, fp32) and returns
    /// the requested activations in fp32. Stops after the deepest one needed.
    /// Differentiable by autograd when `x` requires grad (used by tests and
    /// forward-only evaluations; the optimiser uses [`Vgg19::trace`] and
    /// [`Vgg19::backward`]).
    pub fn features(&self, x: &Tensor, needed: Needed) -> Result<Features> {
        self.features_with(x, needed, false)
    }

    /// Like [`Vgg19::features`], in fp32 whatever the network's precision:
    /// the fp32 weights, fp32 arithmetic, no activation scaling. Content and
    /// style targets come from here, so they are the same at every precision
    /// (and a style pack is the same whichever precision made it).
    pub fn exact_features(&self, x: &Tensor, needed: Needed) -> Result<Features> {
        self.features_with(x, needed, true)
    }

    /// [`Vgg19::features`] through the exact fp32 network when `exact` (and
    /// the model has one), else through the precision's.
    pub fn features_with(&self, x: &Tensor, needed: Needed, exact: bool) -> Result<Features> {
        let (convs, scale) = self.pass(exact);
        let last = match needed {
            Needed::Content => CONTENT_LAYER_INDEX,
            Needed::Style | Needed::All => STYLE_LAYER_INDICES[4],
        };
        let mut h = scaled(x, scale)?;
        let mut style = Vec::new();
        let mut content = None;
        for index in 0..=last {
            if POOL_BEFORE.contains(&index) {
                h = h.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
            }
            h = self.conv_forward(convs, index, &h)?.f_relu()?;
            if needed != Needed::Content && STYLE_LAYER_INDICES.contains(&index) {
                style.push(unscale(&h, scale)?);
            }
            if needed != Needed::Style && index == CONTENT_LAYER_INDEX {
                content = Some(unscale(&h, scale)?);
            }
        }
        Ok(Features { style, content })
    }

    /// Whether the model holds an exact fp32 network beside its own (every
    /// precision but fp32).
    pub fn has_exact(&self) -> bool {
        self.exact.is_some()
    }
}

/// Whether the first convolution runs in fp32 at every precision. It sees
/// the fp32 input: a step of the optimiser smaller than the input's bf16
/// resolution (0.25 to 1 unit of Caffe input over most of its range) still
/// reaches the network, and relu1_1's style term is exact. It costs little:
/// three input channels.
const FIRST_LAYER_FP32: bool = true;

/// The arithmetic of layer `index` at `precision`.
fn layer_arithmetic(precision: Precision, index: usize) -> Kind {
    if index == 0 && FIRST_LAYER_FP32 {
        Kind::Float
    } else {
        precision.kind()
    }
}

/// The factor fp16 backward passes scale their incoming gradients by: a
/// power of two that brings the largest tapped gradient to 2⁻⁶. The input
/// gradient of the reference objective on Caffe weights reaches 1.2·10⁵,
/// beyond fp16's 65504, while the relative normalisation's gradients are
/// small enough to lose precision; both fit at this scale (measured: fp16
/// input gradients within 1.2 % mean relative error of fp32 for scales from
/// 2⁻⁴ to 2⁻²⁰ of the loss). Computed on the device: no synchronisation, so
/// the evaluation stays capturable in a CUDA graph.
fn fp16_gradient_scale(taps: &[(usize, Tensor)]) -> Result<Tensor> {
    let mut peak: Option<Tensor> = None;
    for (_, g) in taps {
        let m = g.f_abs()?.f_max()?.f_to_kind(Kind::Float)?;
        peak = Some(match peak {
            Some(p) => p.f_maximum(&m)?,
            None => m,
        });
    }
    let peak = peak.ok_or_else(|| Error::invalid("taps", "no gradient given"))?.f_clamp_min(1e-30)?;
    Ok(peak.f_reciprocal()?.f_mul_scalar(2f64.powi(-6))?.f_log2()?.f_floor()?.f_exp2()?)
}

/// Gives `t` channels-last strides (or back to contiguous), as libtorch picks
/// the convolution layout from the input's strides.
fn layout(t: &Tensor, channels_last: bool) -> Result<Tensor> {
    if channels_last {
        Ok(t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
    } else {
        Ok(t.f_contiguous()?)
    }
}

fn load_tensor(tensors: &SafeTensors<'_>, path: &Path, name: &str, shape: &[i64]) -> Result<Tensor> {
    let view = tensors.tensor(name).map_err(|_| model_error(path, format!("layer tensor `{name}` is missing")))?;
    let actual: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
    if actual != shape {
        return Err(model_error(path, format!("`{name}` has shape {actual:?}, expected {shape:?}")));
    }
    let kind = match view.dtype() {
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F32 => Kind::Float,
        other => return Err(model_error(path, format!("`{name}` has dtype {other:?}, expected F16, BF16 or F32"))),
    };
    let tensor = Tensor::f_from_data_size(view.data(), shape, kind)?;
    Ok(tensor.f_to_kind(Kind::Float)?)
}

/// `weights_sha256` as `tools/convert_vgg19.py` computes it: SHA-256 (hex)
/// over each layer's `<name>.weight` and `<name>.bias`, in network order, as
/// the tensor's name followed by its stored bytes.
fn weights_digest(tensors: &SafeTensors<'_>, path: &Path) -> Result<String> {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for (name, _, _) in LAYERS {
        for suffix in ["weight", "bias"] {
            let key = format!("{name}.{suffix}");
            let view =
                tensors.tensor(&key).map_err(|_| model_error(path, format!("layer tensor `{key}` is missing")))?;
            sha2::Digest::update(&mut hasher, key.as_bytes());
            sha2::Digest::update(&mut hasher, view.data());
        }
    }
    Ok(sha256_hex(hasher))
}

/// A finished SHA-256 as lowercase hex, the form files record digests in.
pub(crate) fn sha256_hex(hasher: sha2::Sha256) -> String {
    sha2::Digest::finalize(hasher).iter().map(|b| format!("{b:02x}")).collect()
}

/// The model file's name in the repository and in installed data folders.
pub const MODEL_FILE_NAME: &str = "vgg19.safetensors";

/// Finds the model file: `explicit` if given; else `$ST_MODEL`; else
/// `./models/vgg19.safetensors`; else, relative to the running executable,
/// `../share/styletransfer/` (an installed layout) and `../../models/` (a
/// build inside the repository).
pub fn find_model(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("ST_MODEL").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let mut candidates = vec![PathBuf::from("models").join(MODEL_FILE_NAME)];
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        candidates.push(dir.join("../share/styletransfer").join(MODEL_FILE_NAME));
        candidates.push(dir.join("../../models").join(MODEL_FILE_NAME));
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::Model {
        path: PathBuf::from(MODEL_FILE_NAME),
        reason: format!(
            "not found (looked in {}); run `make model` or pass --model / set ST_MODEL",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_convert_both_ways() {
        let rgb = Tensor::from_slice(&[0.1f32, 0.5, 0.9]).view([1, 3, 1, 1]);
        // Caffe: BGR, 0..255, mean removed.
        let caffe = InputConvention::Caffe.to_model(&rgb).unwrap();
        let expected = [0.9 * 255.0 - 103.939, 0.5 * 255.0 - 116.779, 0.1 * 255.0 - 123.68];
        for (c, e) in expected.iter().enumerate() {
            assert!((caffe.double_value(&[0, c as i64, 0, 0]) - e).abs() < 1e-3);
        }
        for convention in [InputConvention::Caffe, InputConvention::Torchvision] {
            let back = convention.from_model(&convention.to_model(&rgb).unwrap()).unwrap();
            let error = (back - &rgb).abs().max().double_value(&[]);
            assert!(error < 1e-6, "{} round trip off by {error}", convention.name());
        }
    }
}
