//! Training a transform network ([`crate::network`]) by distilling the
//! engine's own objective: for each crop, the content term (relu4_2) against
//! the crop, the style's Gram targets (an image set or packs, as a run uses
//! them) and the TV term, with the weights a run at the crop's strength uses.
//!
//! - **Data.** The user's images, each resized once so that its short side is
//!   the crop side, and once to 1.5 times it when the image is that large.
//!   Every step draws, per crop, an image, one of its sizes, a position and
//!   a horizontal flip from a SplitMix64 generator seeded with the seed.
//! - **Strength.** Half the crops train at strength ½ (the default), the
//!   other half at a strength drawn evenly from 0..1, so the conditional
//!   normalisations learn the whole slider. Each crop's loss is divided by
//!   its content plus style weight, so that strong and weak crops pull alike.
//! - **Precision.** The network trains in fp32 (its parameters and Adam's
//!   moments); the VGG19 passes that give each crop's gradient run in the
//!   engine's precision, as a run's do; content targets are fp32, as a run's are.
//! - **Optimiser.** Adam (β 0.9, 0.999, ε 1e-8) at a fixed learning rate.
//! - **Checkpoints** hold the parameters, Adam's moments, the step, the
//!   generator's state and the recent losses, so a resumed training is the
//!   uninterrupted one bit for bit on the same machine and thread count.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::loss::{LossTerms, Normalization, Objective, StyleTargets, Weights};
use crate::model::sha256_hex;
use crate::network::{Network, NetworkInfo, NetworkShape, SplitMix64, Stats, NETWORK_FORMAT_VERSION};
use crate::pack::image_sha256;
use crate::style::StyleSet;
use crate::targets::ladder_side;

/// The smallest crop side.
pub const MIN_TRAINING_SIZE: u32 = 32;
/// How many recent step losses the final loss averages.
const RECENT: usize = 20;
/// The checkpoint's `format` value.
const CHECKPOINT_FORMAT: &str = "styletransfer-stnet-checkpoint";

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Side of the square crops (a multiple of 4, at least [`MIN_TRAINING_SIZE`]).
    pub size: u32,
    /// Optimiser steps in all (a resumed training goes on to this many).
    pub steps: u64,
    /// Crops per step.
    pub batch: usize,
    /// The network's shape.
    pub shape: NetworkShape,
    /// Seeds the initialisation and the crops.
    pub seed: u64,
    /// Adam's learning rate.
    pub lr: f64,
    /// The weights at strength ½ (content, style, TV).
    pub weights: Weights,
    /// The normalisation of the objective.
    pub normalization: Normalization,
    /// Weights of the five style layers.
    pub style_layer_weights: [f64; 5],
    /// Style size relative to the crop side, as a run's `style_scale`.
    pub style_scale: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            size: 256,
            steps: 2000,
            batch: 1,
            shape: NetworkShape::default(),
            seed: 0,
            lr: 1e-3,
            weights: Weights::defaults(Normalization::Relative),
            normalization: Normalization::Relative,
            style_layer_weights: [1.0; 5],
            style_scale: 1.0,
        }
    }
}

impl TrainOptions {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.size < MIN_TRAINING_SIZE || self.size % 4 != 0 {
            return Err(Error::invalid(
                "size",
                format!("{} is not a multiple of 4 of at least {MIN_TRAINING_SIZE}", self.size),
            ));
        }
        if self.steps == 0 {
            return Err(Error::invalid("steps", "must be at least 1"));
        }
        if self.batch == 0 || self.batch > 64 {
            return Err(Error::invalid("batch", format!("{} is outside 1..=64", self.batch)));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid("lr", format!("{} is not a positive number", self.lr)));
        }
        if !(self.style_scale.is_finite() && self.style_scale > 0.0) {
            return Err(Error::invalid("style_scale", format!("{} is not a positive number", self.style_scale)));
        }
        self.shape.validate()?;
        self.weights.validate()
    }
}

/// One step's outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// Steps done (this one included).
    pub step: u64,
    /// The mean over the batch of each crop's total loss divided by its content plus style weight.
    pub loss: f64,
    /// The mean of the recent steps' losses (what the file records as its final loss).
    pub recent_loss: f64,
}

/// A training in progress.
pub struct Trainer<'e> {
    engine: &'e Engine,
    options: TrainOptions,
    network: Network,
    /// Adam's first and second moments, per parameter.
    moments: Vec<(Tensor, Tensor)>,
    step: u64,
    rng: SplitMix64,
    /// Each image at its training sizes.
    images: Vec<Vec<RgbImage>>,
    targets: StyleTargets,
    style_sha256: Vec<String>,
    /// Identifies the data and settings, so a checkpoint of another training is refused.
    fingerprint: String,
    recent: Vec<f64>,
}

impl<'e> Trainer<'e> {
    /// Sets a training up: the style targets at the crop size, the images at
    /// their training sizes, a fresh network and optimiser.
    pub fn new(engine: &'e Engine, styles: &mut StyleSet, images: &[RgbImage], options: TrainOptions) -> Result<Self> {
        options.validate()?;
        if images.is_empty() {
            return Err(Error::invalid("images", "no training images given"));
        }
        let device = engine.device();
        let wanted = (options.size as f64 * options.style_scale).round() as u32;
        let targets = styles.targets(engine.model(), ladder_side(wanted))?;
        let style_sha256 = styles.source_sha256();
        let size = options.size;
        let mut prepared = Vec::with_capacity(images.len());
        let mut hasher = Sha256::new();
        for image in images {
            hasher.update(image_sha256(image).as_bytes());
            let mut sizes = Vec::new();
            for factor in [1.0, 1.5] {
                let short = (size as f64 * factor).round() as u32;
                if factor > 1.0 && image.width().min(image.height()) < short {
                    continue;
                }
                let scale = short as f64 / image.width().min(image.height()) as f64;
                let w = ((image.width() as f64 * scale).round() as u32).max(size);
                let h = ((image.height() as f64 * scale).round() as u32).max(size);
                sizes.push(image.resize(w, h)?);
            }
            prepared.push(sizes);
        }
        for sha in &style_sha256 {
            hasher.update(sha.as_bytes());
        }
        hasher.update(
            format!("{:?}", (&options.size, options.batch, options.shape, options.seed, options.lr)).as_bytes(),
        );
        hasher.update(
            format!("{:?}", (options.weights, options.normalization, options.style_layer_weights, options.style_scale))
                .as_bytes(),
        );
        hasher.update(engine.model().weights_sha256().as_bytes());
        let fingerprint = sha256_hex(hasher);
        let mut network = Network::new(options.shape, options.seed, device)?;
        network.set_requires_grad(true);
        let moments = network
            .parameters()
            .iter()
            .map(|p| Ok((p.f_zeros_like()?, p.f_zeros_like()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            engine,
            rng: SplitMix64(options.seed ^ 0x05EE_D0FC_7095),
            options,
            network,
            moments,
            step: 0,
            images: prepared,
            targets,
            style_sha256,
            fingerprint,
            recent: Vec::new(),
        })
    }

    /// Steps done.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Whether the training has taken all its steps.
    pub fn finished(&self) -> bool {
        self.step >= self.options.steps
    }

    /// The network as trained so far.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The mean of the recent step losses (0 before the first step).
    pub fn recent_loss(&self) -> f64 {
        if self.recent.is_empty() {
            0.0
        } else {
            self.recent.iter().sum::<f64>() / self.recent.len() as f64
        }
    }

    /// Draws one crop: `[1, 3, s, s]` display range, and its strength.
    fn crop(&mut self) -> Result<(Tensor, f64)> {
        let size = self.options.size;
        let image = self.rng.below(self.images.len() as u64) as usize;
        let variant = self.rng.below(self.images[image].len() as u64) as usize;
        let source = &self.images[image][variant];
        let x0 = self.rng.below((source.width() - size + 1) as u64) as i64;
        let y0 = self.rng.below((source.height() - size + 1) as u64) as i64;
        let flip = self.rng.below(2) == 1;
        let strength = if self.rng.below(2) == 0 { 0.5 } else { self.rng.unit() };
        let t = source.to_tensor(Device::Cpu)?;
        let mut crop = t.f_narrow(2, y0, size as i64)?.f_narrow(3, x0, size as i64)?;
        if flip {
            crop = crop.f_flip([3])?;
        }
        Ok((crop.f_contiguous()?.f_to_device(self.engine.device())?, strength))
    }

    /// The weights at `strength`, and the factor a crop's loss is divided by.
    fn weights_at(&self, strength: f64) -> Result<(Weights, f64)> {
        let weights = Weights::with_strength(self.options.weights, strength)?;
        Ok((weights, 1.0 / (weights.content + weights.style).max(1e-12)))
    }

    /// One optimiser step over a batch of crops.
    pub fn step(&mut self) -> Result<StepReport> {
        let mut crops = Vec::with_capacity(self.options.batch);
        let mut strengths = Vec::with_capacity(self.options.batch);
        for _ in 0..self.options.batch {
            let (crop, strength) = self.crop()?;
            crops.push(crop);
            strengths.push(strength);
        }
        let x = Tensor::f_cat(&crops, 0)?;
        let y = self.network.forward(&x, &strengths, &Stats::Own)?;
        let model = self.engine.model();
        let convention = model.convention();
        let mut grads = Vec::with_capacity(crops.len());
        let mut loss = 0.0;
        for (n, (crop, &strength)) in crops.iter().zip(&strengths).enumerate() {
            let (weights, factor) = self.weights_at(strength)?;
            let content = convention.to_model(crop)?;
            let objective = Objective::new(
                model,
                &content,
                &self.targets,
                self.options.style_layer_weights,
                self.options.normalization,
            )?;
            let output = convention.to_model(&y.f_narrow(0, n as i64, 1)?.f_detach()?)?;
            let (terms, grad) = objective.value_and_grad(&output, &weights)?;
            loss += terms.total.f_double_value(&[])? * factor;
            grads.push(convention.gradient_to_display(&grad)?.f_mul_scalar(factor / crops.len() as f64)?);
        }
        loss /= crops.len() as f64;
        if !loss.is_finite() {
            return Err(Error::invalid("training", format!("the loss became {loss} at step {}", self.step + 1)));
        }
        let grad = Tensor::f_cat(&grads, 0)?;
        y.f_mul(&grad)?.f_sum(Kind::Float)?.f_backward()?;
        self.adam_update()?;
        self.step += 1;
        self.recent.push(loss);
        if self.recent.len() > RECENT {
            self.recent.remove(0);
        }
        Ok(StepReport { step: self.step, loss, recent_loss: self.recent_loss() })
    }

    fn adam_update(&mut self) -> Result<()> {
        let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8);
        let t = (self.step + 1) as i32;
        let correction1 = 1.0 - beta1.powi(t);
        let correction2 = 1.0 - beta2.powi(t);
        let lr = self.options.lr;
        tch::no_grad(|| -> Result<()> {
            for (p, (m, v)) in self.network.parameters().into_iter().zip(&mut self.moments) {
                let mut grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let _ = m.f_mul_scalar_(beta1)?.f_add_(&grad.f_mul_scalar(1.0 - beta1)?)?;
                let _ = v.f_mul_scalar_(beta2)?.f_add_(&grad.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
                let denominator = v.f_div_scalar(correction2)?.f_sqrt()?.f_add_scalar(eps)?;
                let update = m.f_div(&denominator)?.f_mul_scalar(lr / correction1)?;
                let mut p = p.shallow_clone();
                let _ = p.f_sub_(&update)?;
                let _ = grad.f_zero_()?;
            }
            Ok(())
        })
    }

    /// The description a network file of this training carries.
    pub fn info(&self, name: &str) -> NetworkInfo {
        NetworkInfo {
            name: name.to_string(),
            shape: self.options.shape,
            style_sha256: self.style_sha256.clone(),
            model_sha256: self.engine.model().weights_sha256().to_string(),
            training_images: self.images.len(),
            training_size: self.options.size,
            steps: self.step,
            batch: self.options.batch,
            seed: self.options.seed,
            final_loss: self.recent_loss(),
            library_version: env!("CARGO_PKG_VERSION").to_string(),
            format_version: NETWORK_FORMAT_VERSION,
        }
    }

    /// Writes a checkpoint (under a temporary name, renamed on success).
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let mut buffers: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        let names = self.network.parameter_names();
        for ((name, p), (m, v)) in names.iter().zip(self.network.parameters()).zip(&self.moments) {
            for (prefix, t) in [("param", p), ("m", m), ("v", v)] {
                let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
                let numel = t.numel();
                let mut values = vec![0f32; numel];
                t.f_copy_data(&mut values, numel)?;
                let shape = t.size().iter().map(|&d| d as usize).collect();
                buffers.push((
                    format!("{prefix}.{name}"),
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    shape,
                ));
            }
        }
        let views = buffers
            .iter()
            .map(|(name, bytes, shape)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::invalid("checkpoint", e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let recent: Vec<String> = self.recent.iter().map(|l| format!("{:e}", l)).collect();
        let metadata = HashMap::from([
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("fingerprint".to_string(), self.fingerprint.clone()),
            ("step".to_string(), self.step.to_string()),
            ("rng".to_string(), self.rng.0.to_string()),
            ("recent".to_string(), recent.join(",")),
        ]);
        let data =
            safetensors::serialize(views, Some(metadata)).map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
        let temporary = path.with_extension(format!("ckpt.{}.tmp", std::process::id()));
        std::fs::write(&temporary, data).and_then(|_| std::fs::rename(&temporary, path)).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            Error::Io { context: format!("writing {}", path.display()), source: e }
        })
    }

    /// Continues from a checkpoint this training (same images, styles,
    /// settings but the step count, model) wrote.
    pub fn resume(&mut self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::Network { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read the checkpoint: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a checkpoint ({e})")))?;
        let metadata: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let field = |key: &str| metadata.get(key).cloned().ok_or_else(|| bad(format!("checkpoint lacks `{key}`")));
        if field("format")? != CHECKPOINT_FORMAT {
            return Err(bad("not a training checkpoint".into()));
        }
        if field("fingerprint")? != self.fingerprint {
            return Err(bad(
                "the checkpoint belongs to another training (other images, styles, model or settings)".into()
            ));
        }
        let step: u64 = field("step")?.parse().map_err(|_| bad("bad step".into()))?;
        let rng: u64 = field("rng")?.parse().map_err(|_| bad("bad generator state".into()))?;
        let recent: Vec<f64> = field("recent")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad("bad recent losses".into())))
            .collect::<Result<_>>()?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("corrupt checkpoint ({e})")))?;
        let read = |name: &str, like: &Tensor| -> Result<Tensor> {
            let view = tensors.tensor(name).map_err(|_| bad(format!("checkpoint lacks `{name}`")))?;
            let shape: Vec<usize> = like.size().iter().map(|&d| d as usize).collect();
            if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
                return Err(bad(format!("`{name}` has another shape")));
            }
            let floats: Vec<f32> =
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok(Tensor::f_from_slice(&floats)?.f_view(like.size().as_slice())?.f_to_device(like.device())?)
        };
        let names = self.network.parameter_names();
        let mut params = Vec::with_capacity(names.len());
        let mut moments = Vec::with_capacity(names.len());
        for (name, p) in names.iter().zip(self.network.parameters()) {
            params.push(read(&format!("param.{name}"), p)?);
            moments.push((read(&format!("m.{name}"), p)?, read(&format!("v.{name}"), p)?));
        }
        self.network.load_parameters(&params)?;
        self.moments = moments;
        self.step = step;
        self.rng = SplitMix64(rng);
        self.recent = recent;
        Ok(())
    }
}

/// The loss terms of `image` for `content` under the fp32 objective (the
/// model's exact network) with `styles` at the ladder size of the image's
/// long side times `style_scale`, at `weights`. This is how the
/// measurement scripts score the network and the optimiser alike.
pub fn score(
    engine: &Engine,
    content: &RgbImage,
    image: &RgbImage,
    styles: &mut StyleSet,
    weights: &Weights,
    normalization: Normalization,
    style_scale: f64,
) -> Result<LossTerms> {
    if (content.width(), content.height()) != (image.width(), image.height()) {
        return Err(Error::invalid(
            "image",
            format!(
                "{}×{} does not match the content's {}×{}",
                image.width(),
                image.height(),
                content.width(),
                content.height()
            ),
        ));
    }
    let model = engine.model();
    let wanted = (content.width().max(content.height()) as f64 * style_scale).round() as u32;
    let targets = styles.targets(model, ladder_side(wanted))?;
    let objective = Objective::new(model, &engine.to_input(content)?, &targets, [1.0; 5], normalization)?;
    let x = engine.to_input(image)?;
    tch::no_grad(|| objective.losses_with(&x, weights, true)?.values())
}
