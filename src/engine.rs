//! The engine: a model on a device, and runs that turn a content image and
//! styles into a stylised image (pyramid, optimiser, progress, cancel).

use std::path::PathBuf;
use std::time::Instant;

use tch::{Device, Tensor};

use crate::color::{match_histogram, transfer_luminance, PreserveColor};
use crate::error::{Error, Result};
use crate::evaluator::Evaluator;
use crate::image::RgbImage;
use crate::loss::{LiveWeights, LossTerms, Normalization, Objective, StyleTargets};
use crate::model::{Bf16Kernels, Precision, Vgg19, MIN_INPUT_SIDE};
use crate::optim::{AdamOptions, Evaluation, LbfgsOptions, Optimizer, Problem};
use crate::plan::{self, LevelPlan, MemoryOptions, Plan, PlanInputs, TileGrid};
use crate::style::{ladder_side, StyleImage, StyleSet};

/// Where the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first CUDA device when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "cpu" => Some(Self::Cpu),
            "cuda" | "gpu" => Some(Self::Cuda(0)),
            _ => name.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(Self::Cuda),
        }
    }

    /// Resolves to a libtorch device, checking that it exists.
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Auto => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(index) => {
                if !tch::Cuda::is_available() {
                    return Err(Error::Device("CUDA was requested but no CUDA device is available".into()));
                }
                let count = tch::Cuda::device_count() as usize;
                if index >= count {
                    return Err(Error::Device(format!("cuda:{index} requested but only {count} CUDA device(s) exist")));
                }
                Ok(Device::Cuda(index))
            }
        }
    }
}

/// A device's name as reports print it (`cpu`, `cuda:0`).
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

pub use crate::model::cpu_has_bf16;

/// The precision a run on `device` gets when none is asked for: bf16 on
/// CUDA and on CPUs with native bfloat16 ([`cpu_has_bf16`]), where it is
/// faster than fp32 and, with the first layer in fp32, fp32 targets and
/// L-BFGS's first step sized past bf16's resolution, ends within 2 % of
/// fp32's loss; fp32 elsewhere (emulated bf16 is no faster than fp32 there).
pub fn automatic_precision(device: Device) -> Precision {
    if device.is_cuda() || cpu_has_bf16() {
        Precision::Bf16
    } else {
        Precision::Fp32
    }
}

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
    /// Whether bf16 ran emulated (fp32 kernels on bf16 values; see [`Bf16Kernels`]).
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

/// `(width, height)` with the long side scaled to `long_side`, aspect kept.
pub fn fit_long_side(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    if width >= height {
        (long_side, ((height as f64 * long_side as f64 / width as f64).round() as u32).max(1))
    } else {
        (((width as f64 * long_side as f64 / height as f64).round() as u32).max(1), long_side)
    }
}

/// Default working long side when none is given.
pub const DEFAULT_MAX_WORKING_SIDE: u32 = 512;
/// Automatic pyramids stop halving below this long side.
pub const AUTO_COARSEST_SIDE: u32 = 128;
/// Automatic pyramids have at most this many levels.
pub const AUTO_MAX_SCALES: usize = 4;

/// Level sizes, coarsest first, for a working size and a level count (`None`: automatic).
pub fn pyramid(working: (u32, u32), scales: Option<usize>) -> Result<Vec<(u32, u32)>> {
    let (w, h) = working;
    let short_side = |div: u32| (w.min(h) as f64 / div as f64).round() as i64;
    if short_side(1) < MIN_INPUT_SIDE {
        return Err(Error::invalid(
            "size",
            format!("the working image {w}×{h} is too small: both sides must be at least {MIN_INPUT_SIDE} pixels"),
        ));
    }
    let count = match scales {
        Some(0) => return Err(Error::invalid("scales", "must be at least 1")),
        Some(n) => {
            if n > 10 || short_side(1 << (n - 1)) < MIN_INPUT_SIDE {
                return Err(Error::invalid(
                    "scales",
                    format!("{n} levels would shrink the {w}×{h} working image below {MIN_INPUT_SIDE} pixels"),
                ));
            }
            n
        }
        None => {
            let mut n = 1;
            while n < AUTO_MAX_SCALES && w.max(h) >> n >= AUTO_COARSEST_SIDE && short_side(1 << n) >= MIN_INPUT_SIDE {
                n += 1;
            }
            n
        }
    };
    Ok((0..count)
        .rev()
        .map(|k| {
            let div = 1u32 << k;
            (((w as f64 / div as f64).round() as u32).max(1), ((h as f64 / div as f64).round() as u32).max(1))
        })
        .collect())
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

    /// On the CPU, gives the C heap's free pages back to the system (see
    /// [`crate::memory::release_host_heap`]); on CUDA nothing, as the
    /// caching allocator reuses its blocks for the next tile or level.
    fn trim_host_heap(&self) {
        if !self.device.is_cuda() {
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

    /// Gram targets of one style image resized so its long side is
    /// `ladder_side` (a [`crate::style::LADDER`] size), or its own long side
    /// when that is smaller.
    pub fn style_targets(&self, style: &RgbImage, ladder_side: u32) -> Result<StyleTargets> {
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
        StyleTargets::from_input(&self.model, &self.to_input(&resized)?)
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
        let started = Instant::now();
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
            self.trim_host_heap();
            crate::memory::trace_memory("before level");
            let level_content = self.input_at(content, w, h)?;
            crate::memory::trace_memory("level content");
            let wanted = (w.max(h) as f64 * options.style_scale).round() as u32;
            let targets = styles.targets(self, ladder_side(wanted))?;
            // The style forward pass's activations, freed into the C heap.
            self.trim_host_heap();
            crate::memory::trace_memory("style targets");
            let start = match x.take() {
                Some(previous) => previous.f_upsample_bicubic2d([h as i64, w as i64], false, None, None)?,
                None => self.initial(&options.init, options.seed, &level_content, w, h)?,
            };
            crate::memory::trace_memory("level start");
            let level = Level {
                engine: self,
                content: &level_content,
                targets: &targets,
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
            // Out of memory: the level again in smaller tiles, down to the smallest.
            let (result, loss) = loop {
                let before = evaluations;
                let attempt = match plan.levels[scale_index].axes() {
                    None => level.whole(&start, &mut evaluations, &mut *progress),
                    Some(axes) => {
                        level.tiled(&start, &plan.levels[scale_index], axes, &mut evaluations, &mut *progress)
                    }
                };
                match attempt {
                    Err(Error::OutOfMemory(message)) => {
                        evaluations = before;
                        let overlap = options.memory.tile_overlap.unwrap_or(plan::DEFAULT_TILE_OVERLAP);
                        let current = plan.levels[scale_index].tiles.map_or(w.max(h), |g| g.tile);
                        let smaller = current / 2;
                        if smaller < plan::min_tile(overlap) {
                            return Err(Error::OutOfMemory(format!(
                                "{message} (level {w}×{h}, estimated {} MiB, tiles down to {current} px tried)",
                                plan.levels[scale_index].peak_bytes >> 20
                            )));
                        }
                        plan.levels[scale_index].tiles = Some(TileGrid { tile: smaller, overlap });
                    }
                    other => break other?,
                }
            };
            crate::memory::trace_memory("level optimised");
            if scale_index + 1 == levels.len() {
                final_loss = loss;
            }
            x = Some(result);
        }
        let x = x.ok_or_else(|| Error::invalid("scales", "no pyramid level"))?;
        self.trim_host_heap();
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
        let long = options.size.unwrap_or_else(|| cw.max(ch).min(DEFAULT_MAX_WORKING_SIDE));
        if long == 0 {
            return Err(Error::invalid("size", "must be at least 1"));
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

/// SplitMix64 step mapped to a uniform f32 in [0, 1).
fn uniform(state: &mut u64) -> f32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

fn validate_run_options(options: &RunOptions) -> Result<()> {
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
fn to_input_units(optimizer: Optimizer, scale: f64) -> Optimizer {
    match optimizer {
        Optimizer::Lbfgs(o) => Optimizer::Lbfgs(LbfgsOptions { first_step: o.first_step.map(|s| s * scale), ..o }),
        Optimizer::Adam(o) => Optimizer::Adam(AdamOptions { lr: o.lr * scale, ..o }),
    }
}

/// One pyramid level of a run: its content, style targets and settings.
struct Level<'a> {
    engine: &'a Engine,
    content: &'a Tensor,
    targets: &'a StyleTargets,
    options: &'a RunOptions,
    optimizer: Optimizer,
    weights: &'a LiveWeights,
    report: Progress,
}

impl Level<'_> {
    fn objective(&self, content: &Tensor) -> Result<Objective<'_>> {
        Objective::new(
            &self.engine.model,
            content,
            self.targets,
            self.options.style_layer_weights,
            self.options.normalization,
        )
    }

    /// Optimises `region` of the content (the whole level, or a tile) from
    /// `start` for `iterations` evaluations; returns the result and its losses.
    fn optimise(
        &self,
        objective: &Objective,
        start: &Tensor,
        iterations: usize,
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let size = start.size();
        let exact = self.engine.run_precision(self.options) == Precision::Fp32 && self.engine.model.has_exact();
        let mut evaluator = Evaluator::new(objective, self.engine.device);
        evaluator.set_exact(exact);
        let mut problem = LevelProblem {
            evaluator,
            weights: self.weights,
            shape: [1, 3, size[2], size[3]],
            progress,
            report: self.report,
            evaluations_before: *evaluations,
            resolution: self.engine.model.precision().resolution() * self.engine.model.convention().scale(),
            has_exact: self.engine.model.has_exact(),
            exact,
            loss_noise: self.engine.model.precision().loss_noise(),
        };
        let result = self.optimizer.minimize(&mut problem, &start.f_flatten(0, -1)?, iterations)?;
        *evaluations += problem.report.iteration;
        let exact = problem.exact;
        let result = result.f_view(problem.shape)?;
        let (current, _) = self.weights.get();
        let loss = tch::no_grad(|| objective.losses_with(&result, &current, exact))?.values()?;
        Ok((result, loss))
    }

    /// The level optimised whole.
    fn whole(
        &self,
        start: &Tensor,
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let objective = self.objective(self.content)?;
        self.optimise(&objective, start, self.options.iterations, evaluations, progress)
    }

    /// The level optimised tile by tile: each tile from the current image,
    /// with the content of its region and the style targets of the whole
    /// style image, for `iterations` evaluations; its result written back
    /// with the overlaps feathered, so the next tile starts from its
    /// neighbour's result where they overlap. Under the relative
    /// normalisation every tile weighs content by the whole level's content
    /// power. The losses returned are the tiles' final ones, area-weighted.
    ///
    /// Successive tiled levels alternate between a grid and a shifted one
    /// (see [`plan::TileGrid::axis`]), so borders never stay in one place.
    /// (Measured alternatives, 384², 3×3 tiles, 40 evaluations: two passes
    /// per level of half the evaluations each ended 27 % above the untiled
    /// loss, tiles coupled through the level's summed Gram matrices far
    /// above it; one pass with every tile matching the style's targets
    /// ended at or below it.)
    fn tiled(
        &self,
        start: &Tensor,
        level: &LevelPlan,
        (columns, rows): (plan::Axis, plan::Axis),
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let overlap = level.tiles.map_or(0, |g| g.overlap);
        // Tiles are written into `start` itself (no image-sized copy at the
        // largest sizes); a retry after running out of memory continues
        // from the tiles already done.
        let image = start.shallow_clone();
        let crop = |t: &Tensor, (x0, x1): (u32, u32), (y0, y1): (u32, u32)| -> Result<Tensor> {
            Ok(t.f_narrow(2, y0 as i64, (y1 - y0) as i64)?.f_narrow(3, x0 as i64, (x1 - x0) as i64)?)
        };
        let area = |xs: (u32, u32), ys: (u32, u32)| (xs.1 - xs.0) as f64 * (ys.1 - ys.0) as f64;
        let extent = |a: &plan::Axis| a.tiles.iter().map(|t| (t.1 - t.0) as f64).sum::<f64>();
        let total_area = extent(&columns) * extent(&rows);
        // (The reference normalisation does not use it: no forward passes then.)
        let mut power = 0.0;
        if self.options.normalization == Normalization::Relative {
            for &ys in &rows.tiles {
                for &xs in &columns.tiles {
                    power += self.objective(&crop(self.content, xs, ys)?)?.content_power()? * area(xs, ys) / total_area;
                }
            }
        }
        let mut loss = LossTerms::default();
        for (row, &ys) in rows.tiles.iter().enumerate() {
            for (column, &xs) in columns.tiles.iter().enumerate() {
                let mut objective = self.objective(&crop(self.content, xs, ys)?)?;
                objective.set_content_power(power);
                let mut region = crop(&image, xs, ys)?;
                let tile_start = region.f_contiguous()?.f_detach_copy()?;
                let (result, tile_loss) =
                    self.optimise(&objective, &tile_start, self.options.iterations, evaluations, progress)?;
                let weight = feather(&columns, column, overlap)?
                    .f_view([1, 1, 1, -1])?
                    .f_mul(&feather(&rows, row, overlap)?.f_view([1, 1, -1, 1])?)?
                    .f_to_device(image.device())?;
                // region ← region + weight · (result − region), in place in `image`.
                let step = result.f_sub(&region)?.f_mul(&weight)?;
                let _ = region.f_add_(&step)?;
                drop((result, step, objective));
                // Each tile's activations are freed into the C heap, which keeps the pages,
                // and tiles of different shapes fragment it: measured at 2048² in 184–309 px
                // tiles, the level's peak was 115 MiB lower with this. It costs ~0.1 s of
                // system time per tile, against seconds of work.
                self.engine.trim_host_heap();
                let share = area(xs, ys) / total_area;
                loss.content += tile_loss.content * share;
                loss.style += tile_loss.style * share;
                loss.tv += tile_loss.tv * share;
                loss.total += tile_loss.total * share;
            }
        }
        Ok((image, loss))
    }
}

/// The width of the write-back ramp as a fraction of the overlap. Blending
/// two independently optimised textures lowers their contrast, so the ramp
/// is kept narrow and centred on the cut. Measured on the tiling test
/// (384², 3×3 tiles, overlap 32, seam measure of the untiled run 1.076 at
/// the same borders): ramp 12 px (0.375) gave 0.959 (−11 %, a softened
/// band), 4.8 px (0.15) 1.002 (−7 %) and the lowest loss, 1.6 px (0.05)
/// 1.201 (+12 %, a visible step).
const FEATHER_FRACTION: f32 = 0.15;

/// Write-back weights along one axis for tile `index`: 1 over its core,
/// ramping linearly to 0 across a band centred on each cut that has a
/// neighbour (the rest of the overlap is context for the optimisation).
fn feather(axis: &plan::Axis, index: usize, overlap: u32) -> Result<Tensor> {
    let (start, end) = axis.tiles[index];
    let (first, last) = (index == 0, index + 1 == axis.tiles.len());
    let ramp = (overlap as f32 * FEATHER_FRACTION).max(1.0);
    let (cut_lo, cut_hi) = (axis.cuts[index] as f32, axis.cuts[index + 1] as f32);
    let half = ramp / 2.0;
    let weights: Vec<f32> = (start..end)
        .map(|p| {
            let p = p as f32 + 0.5;
            let left = if first { 1.0 } else { ((p - (cut_lo - half)) / ramp).clamp(0.0, 1.0) };
            let right = if last { 1.0 } else { (((cut_hi + half) - p) / ramp).clamp(0.0, 1.0) };
            left.min(right)
        })
        .collect();
    Ok(Tensor::f_from_slice(&weights)?)
}

struct LevelProblem<'a, 'p> {
    evaluator: Evaluator<'a, 'a>,
    weights: &'a LiveWeights,
    shape: [i64; 4],
    progress: &'p mut dyn FnMut(&Progress) -> Flow,
    report: Progress,
    evaluations_before: usize,
    /// The precision's resolution in model-input units (see [`Precision::resolution`]).
    resolution: f64,
    /// The precision's relative loss noise (see [`Precision::loss_noise`]).
    loss_noise: f64,
    /// Whether the model has an exact fp32 network to refine with, and whether it is in use.
    has_exact: bool,
    exact: bool,
}

impl Problem for LevelProblem<'_, '_> {
    fn resolution(&self) -> f64 {
        if self.exact {
            0.0
        } else {
            self.resolution
        }
    }

    fn loss_tolerance(&self, loss: f64) -> f64 {
        if self.exact {
            0.0
        } else {
            self.loss_noise * loss.abs()
        }
    }

    /// A bf16 or fp16 level whose optimisation has reached its precision's
    /// rounding noise goes on in fp32 (the model's exact network).
    fn refine(&mut self) -> bool {
        if self.exact || !self.has_exact {
            return false;
        }
        self.exact = true;
        self.evaluator.set_exact(true);
        true
    }

    fn evaluate(&mut self, x: &Tensor) -> Result<Evaluation> {
        let (weights, generation) = self.weights.get();
        let image = x.f_view(self.shape)?;
        let (losses, grad) = self.evaluator.value_and_grad(&image, &weights)?;
        let terms = losses.values()?;
        self.report.iteration += 1;
        self.report.evaluation = self.evaluations_before + self.report.iteration;
        self.report.loss = terms;
        if (self.progress)(&self.report) == Flow::Cancel {
            return Err(Error::Cancelled);
        }
        // Exact evaluations are another objective (the optimiser drops what it learnt before).
        let generation = 2 * generation + self.exact as u64;
        Ok(Evaluation { loss: terms.total, grad: grad.f_flatten(0, -1)?, generation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_halves_down_to_about_128() {
        assert_eq!(pyramid((512, 384), None).unwrap(), vec![(128, 96), (256, 192), (512, 384)]);
        assert_eq!(pyramid((64, 64), None).unwrap(), vec![(64, 64)]);
        assert_eq!(pyramid((256, 256), Some(1)).unwrap(), vec![(256, 256)]);
        assert!(pyramid((64, 64), Some(4)).is_err());
        assert!(pyramid((8, 64), None).is_err());
    }

    #[test]
    fn device_names_parse() {
        assert_eq!(DeviceChoice::from_name("cuda:1"), Some(DeviceChoice::Cuda(1)));
        assert_eq!(DeviceChoice::from_name("cpu"), Some(DeviceChoice::Cpu));
        assert_eq!(DeviceChoice::from_name("tpu"), None);
    }
}
