//! The engine: a model on a device, and runs that turn a content image and
//! styles into a stylised image, level by level of the pyramid (each level
//! is optimised by the private `level` module), with progress and cancel.

use std::path::PathBuf;
use std::time::Instant;

use tch::{Device, Tensor};

use crate::color::{match_histogram, transfer_luminance, PreserveColor};
use crate::device::{automatic_precision, device_name, Bf16Kernels, DeviceChoice, Precision};
use crate::error::{Error, Result};
use crate::image::{RgbImage, MAX_SIDE};
use crate::level::Level;
use crate::loss::{LiveWeights, LossTerms, Normalization, TemporalTarget};
use crate::memory::trim_host_heap;
use crate::model::Vgg19;
use crate::plan::{self, Plan, PlanInputs};
use crate::pyramid::{fit_long_side, pyramid, DEFAULT_MAX_WORKING_SIDE};
use crate::run::{to_input_units, validate_run_options, Flow, Init, Progress, RunOptions, RunOutput, RunReport};
use crate::style::StyleSet;
use crate::targets::{ladder_side, StyleImage};

/// How to set an engine up.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The model file (see `tools/convert_vgg19.py`).
    pub model_path: PathBuf,
    /// Where to run.
    pub device: DeviceChoice,
    /// Convolution precision; `None` picks [`automatic_precision`]: bf16 on
    /// CUDA and on CPUs with native bfloat16 (AVX-512 BF16 or AMX), fp32
    /// elsewhere.
    pub precision: Option<Precision>,
    /// How bf16 is computed; `None` picks [`Bf16Kernels::for_device`]:
    /// libtorch's kernels on CUDA and on CPUs with native bfloat16, else
    /// emulated at about fp32's speed (same arithmetic).
    pub bf16_kernels: Option<Bf16Kernels>,
    /// CPU threads for libtorch (process-wide); `None` leaves libtorch's default.
    pub threads: Option<usize>,
}

impl EngineOptions {
    /// Defaults for a model file: automatic device and precision.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            device: DeviceChoice::Auto,
            precision: None,
            bf16_kernels: None,
            threads: None,
        }
    }
}

/// A model on a device.
pub struct Engine {
    model: Vgg19,
    device: Device,
    /// Whether the precision was chosen automatically (see [`Engine::run_precision`]).
    automatic: bool,
}

impl Engine {
    /// Loads the model onto the chosen device.
    pub fn new(options: &EngineOptions) -> Result<Self> {
        if let Some(threads) = options.threads {
            if threads == 0 {
                return Err(Error::invalid("threads", "must be at least 1"));
            }
            tch::set_num_threads(threads as i32);
        }
        let device = options.device.resolve()?;
        let precision = options.precision.unwrap_or_else(|| automatic_precision(device));
        let kernels = options.bf16_kernels.unwrap_or_else(|| Bf16Kernels::for_device(device));
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let mut model = Vgg19::load_with(&options.model_path, device, precision, kernels)?;
        // Channels-last is faster for oneDNN (CPU) and cuDNN in every precision measured.
        model.set_channels_last(true)?;
        Ok(Self { model, device, automatic: options.precision.is_none() })
    }

    /// Gives the memory cached by earlier runs back to the system: CUDA's
    /// cached device memory, or on the CPU the free pages of the C heap.
    /// The model stays loaded.
    pub fn release_memory(&self) {
        if self.device.is_cuda() {
            crate::cuda::release_cached();
        } else {
            crate::memory::release_host_heap();
        }
    }

    /// The precision a run with `options` computes in: the model's, except
    /// that with an automatically chosen precision, runs under the reference
    /// normalisation use the model's exact fp32 network. (Measured at 64²,
    /// 200 evaluations: there bf16 ended between 2.6 % below and 8.5 % above
    /// fp32 from run to run, where under the relative normalisation it ends
    /// within 2 %.)
    pub fn run_precision(&self, options: &RunOptions) -> Precision {
        if self.automatic && options.normalization == Normalization::Reference && self.model.has_exact() {
            Precision::Fp32
        } else {
            self.model.precision()
        }
    }

    /// The loaded model.
    pub fn model(&self) -> &Vgg19 {
        &self.model
    }

    /// The device in use.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Display-range RGB image → model input on the engine's device.
    pub fn to_input(&self, image: &RgbImage) -> Result<Tensor> {
        self.model.convention().to_model(&image.to_tensor(self.device)?)
    }

    /// Model input → display-range RGB image (clamped).
    pub fn from_input(&self, x: &Tensor) -> Result<RgbImage> {
        RgbImage::from_tensor(&self.model.convention().from_model(x)?)
    }

    /// [`Engine::from_input`], releasing `x` as soon as it is converted.
    fn image_of_input(&self, x: Tensor) -> Result<RgbImage> {
        let rgb = self.model.convention().from_model(&x)?;
        drop(x);
        RgbImage::from_tensor(&rgb)
    }

    /// `image` resized to `width`×`height` (not copied when it has that
    /// size already) as model input.
    fn input_at(&self, image: &RgbImage, width: u32, height: u32) -> Result<Tensor> {
        if (image.width(), image.height()) == (width, height) {
            self.to_input(image)
        } else {
            self.to_input(&image.resize(width, height)?)
        }
    }

    /// Stylises `content` with `styles`. `weights` may change while this runs
    /// (the optimiser picks the new values up at its next evaluation).
    /// `progress` is called after every evaluation; returning
    /// [`Flow::Cancel`] makes the run return [`Error::Cancelled`].
    pub fn run(
        &self,
        content: &RgbImage,
        styles: &mut StyleSet,
        options: &RunOptions,
        weights: &LiveWeights,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<RunOutput> {
        self.run_from(content, styles, options, None, weights, progress)
    }

    /// [`Engine::run`], started from `start` when given (a frame of a
    /// sequence: see [`crate::sequence`]).
    pub(crate) fn run_from(
        &self,
        content: &RgbImage,
        styles: &mut StyleSet,
        options: &RunOptions,
        start: Option<FrameStart>,
        weights: &LiveWeights,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<RunOutput> {
        let started = Instant::now();
        let mut start = start;
        validate_run_options(options)?;
        let (cw, ch) = (content.width(), content.height());
        let mut plan = self.plan((cw, ch), styles, options)?;
        let levels: Vec<(u32, u32)> = plan.levels.iter().map(|l| (l.width, l.height)).collect();
        // Histogram matching depends on the content, so those targets are not cached.
        let mut matched;
        let styles = if options.preserve_color == PreserveColor::Histogram {
            let mut images = Vec::new();
            for style in styles.images()? {
                images.push(StyleImage { image: match_histogram(&style.image, content)?, weight: style.weight });
            }
            matched = StyleSet::new(images)?;
            &mut matched
        } else {
            styles
        };
        if styles.is_empty() {
            return Err(Error::invalid("style", "no style image given"));
        }
        let optimizer = to_input_units(options.optimizer, self.model.convention().scale());
        let total_evaluations = plan.total_evaluations(options.iterations);
        let mut evaluations = 0;
        let mut x: Option<Tensor> = None;
        let mut final_loss = LossTerms::default();
        for scale_index in 0..levels.len() {
            let (w, h) = levels[scale_index];
            // The previous level's working memory (activations of tens of MiB each) was
            // freed into the C heap, which keeps the pages; this level's image-sized
            // buffers come from fresh mappings and cannot reuse them.
            trim_host_heap(self.device);
            crate::memory::trace_memory("before level");
            let level_content = self.input_at(content, w, h)?;
            crate::memory::trace_memory("level content");
            let wanted = (w.max(h) as f64 * options.style_scale).round() as u32;
            let targets = styles.targets(&self.model, ladder_side(wanted))?;
            // The style forward pass's activations, freed into the C heap.
            trim_host_heap(self.device);
            crate::memory::trace_memory("style targets");
            let temporal = match &start {
                Some(frame) if scale_index + 1 == levels.len() => frame.temporal.as_ref(),
                _ => None,
            };
            let level_start = match (x.take(), &start) {
                (Some(previous), _) => previous.f_upsample_bicubic2d([h as i64, w as i64], false, None, None)?,
                (None, Some(frame)) => {
                    let size = frame.start.size();
                    if (size[3], size[2]) == (w as i64, h as i64) {
                        frame.start.f_detach_copy()?
                    } else {
                        frame.start.f_upsample_bicubic2d([h as i64, w as i64], false, None, None)?
                    }
                }
                (None, None) => self.initial(&options.init, options.seed, &level_content, w, h)?,
            };
            crate::memory::trace_memory("level start");
            let level = Level {
                model: &self.model,
                device: self.device,
                exact: self.run_precision(options) == Precision::Fp32 && self.model.has_exact(),
                content: &level_content,
                targets: &targets,
                temporal,
                options,
                optimizer,
                weights,
                report: Progress {
                    scale_index,
                    scales: levels.len(),
                    iterations: options.iterations,
                    total_evaluations,
                    width: w,
                    height: h,
                    ..Default::default()
                },
            };
            let (result, loss) =
                level.run(&level_start, &mut plan.levels[scale_index], &mut evaluations, &mut *progress)?;
            crate::memory::trace_memory("level optimised");
            if scale_index + 1 == levels.len() {
                final_loss = loss;
            }
            x = Some(result);
        }
        drop(start.take());
        let x = x.ok_or_else(|| Error::invalid("scales", "no pyramid level"))?;
        trim_host_heap(self.device);
        // Consumed: at the largest sizes every image-sized buffer counts.
        let mut image = self.image_of_input(x)?;
        crate::memory::trace_memory("result converted");
        if (image.width(), image.height()) != (cw, ch) {
            image = image.resize(cw, ch)?;
        }
        if options.preserve_color == PreserveColor::Luminance {
            image = transfer_luminance(&image, content)?;
        }
        let precision = self.run_precision(options);
        Ok(RunOutput {
            image,
            report: RunReport {
                loss: final_loss,
                evaluations,
                seconds: started.elapsed().as_secs_f64(),
                device: device_name(self.device),
                precision,
                bf16_emulated: self.model.bf16_emulated() && precision == Precision::Bf16,
                content_size: (cw, ch),
                levels,
                plan,
            },
        })
    }

    /// The memory plan of a run on a `content_size` image: level sizes,
    /// which levels are tiled and how, and the estimated peak memory. The
    /// budget is `options.memory.max_memory_mb`, else the device's free
    /// memory. Fails with [`Error::OutOfMemory`] when even the smallest
    /// tiles would not fit.
    pub fn plan(&self, content_size: (u32, u32), styles: &StyleSet, options: &RunOptions) -> Result<Plan> {
        validate_run_options(options)?;
        let (cw, ch) = content_size;
        check_content_size(cw, ch)?;
        let long = options.size.unwrap_or_else(|| cw.max(ch).min(DEFAULT_MAX_WORKING_SIDE));
        if long == 0 || long > MAX_SIDE {
            return Err(Error::invalid("size", format!("{long}: the working size must be 1 to {MAX_SIDE} pixels")));
        }
        let levels = pyramid(fit_long_side(cw, ch, long), options.scales)?;
        let native = styles.largest_image_side();
        let style_sides: Vec<Option<u32>> = levels
            .iter()
            .map(|&(w, h)| {
                let wanted = (w.max(h) as f64 * options.style_scale).round() as u32;
                native.map(|n| ladder_side(wanted).min(n))
            })
            .collect();
        let mut runtime = 0;
        let (budget, source) = match options.memory.max_memory_mb {
            Some(0) => return Err(Error::invalid("max_memory_mb", "must be at least 1")),
            // On the CPU the budget is the process's memory beyond the model,
            // so libtorch's own footprint comes out of it first.
            Some(mb) if self.device == Device::Cpu => {
                runtime = plan::CPU_RUNTIME_BYTES;
                (Some((mb << 20).saturating_sub(runtime)), "max_memory_mb less the CPU runtime")
            }
            Some(mb) => (Some(mb << 20), "max_memory_mb"),
            None => match plan::device_free_bytes(self.device) {
                Some(free) => (Some(free), "free device memory"),
                None => (None, "none"),
            },
        };
        let inputs = PlanInputs {
            precision: self.model.precision(),
            optimizer: options.optimizer,
            iterations: options.iterations,
            model_bytes: self.model.weight_bytes(),
        };
        let mut plan = plan::plan_levels(&levels, &style_sides, &options.memory, budget, source, &inputs)?;
        plan.runtime_bytes = runtime;
        Ok(plan)
    }

    fn initial(&self, init: &Init, seed: u64, level_content: &Tensor, w: u32, h: u32) -> Result<Tensor> {
        match init {
            Init::Content => Ok(level_content.f_detach_copy()?),
            Init::Noise => {
                // Our own generator, not libtorch's process-wide one: runs on
                // other threads cannot disturb the sequence.
                let mut state = seed;
                let samples: Vec<f32> = (0..3 * w as usize * h as usize).map(|_| uniform(&mut state)).collect();
                let noise =
                    Tensor::f_from_slice(&samples)?.f_view([1, 3, h as i64, w as i64])?.f_to_device(self.device)?;
                self.model.convention().to_model(&noise)
            }
            Init::Image(image) => self.input_at(image, w, h),
        }
    }
}

/// Where a frame of a sequence starts: its first level's start (model input)
/// and the temporal term of its finest level, which must have that level's size.
pub(crate) struct FrameStart {
    pub start: Tensor,
    pub temporal: Option<TemporalTarget>,
}

/// Checks a content size: each side 1 to [`MAX_SIDE`] pixels.
pub fn check_content_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 || width.max(height) > MAX_SIDE {
        return Err(Error::invalid("content", format!("{width}×{height}: each side must be 1 to {MAX_SIDE} pixels")));
    }
    Ok(())
}

/// SplitMix64 step mapped to a uniform f32 in [0, 1).
fn uniform(state: &mut u64) -> f32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}
