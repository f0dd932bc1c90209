//! Times evaluations of the objective (forward to conv5_1, losses, input
//! gradient) at given sizes and prints one line per size:
//! `ours device=cuda size=512 precision=bf16 graphs=on evals=100 ms_per_eval=... peak_gib=... final_loss=...`.
//!
//! With `--lbfgs` the evaluations run inside our L-BFGS, as the reference
//! script's run inside torch.optim.LBFGS, so the optimiser's cost counts too,
//! and `final_loss` is the reference objective (fp32 network) at the result,
//! so precisions can be compared at equal evaluations. Without images the
//! workload is seeded noise; with `--content`/`--style` both images are
//! resized to size² (as the reference script does) and the run starts from
//! the content. `peak_gib`: on CUDA the caching allocator's peak (allocated)
//! during the timed part, on the CPU the process's peak resident size.
//!
//! With `--target LOSS` (and `--lbfgs`), also `seconds_to_target` and
//! `evals_to_target`: the wall time and evaluations until the run's own
//! loss first reaches LOSS (`never` if it does not within `--evals`).
//!
//! usage: eval_speed [--model PATH] [--device cpu|cuda] [--sizes 64,128,256]
//!                   [--evals N] [--precision fp32|bf16|fp16] [--lbfgs] [--no-graphs]
//!                   [--content IMG --style IMG] [--nnpack] [--no-channels-last] [--threads N]
//!                   [--target LOSS]

#[path = "../benches/support/workload.rs"]
#[allow(dead_code)] // each user takes what it needs
mod workload;

use std::path::Path;
use std::time::Instant;

use styletransfer::cuda;
use styletransfer::device::device_name;
use styletransfer::evaluator::{set_graphs_enabled, Evaluator};
use styletransfer::loss::{Objective, StyleTargets, Weights};
use styletransfer::model::{find_model, Vgg19};
use styletransfer::optim::{Evaluation, Problem};
use styletransfer::{image, DeviceChoice, Error, Normalization, Precision, Result};
use tch::{Device, Tensor};
use workload::Workload;

struct Timed<'o, 'a> {
    evaluator: Evaluator<'o, 'a>,
    weights: Weights,
    shape: Vec<i64>,
    /// `--target`: the loss to reach, the clock's start, and when it was first reached.
    target: Option<f64>,
    started: Instant,
    reached: Option<(f64, usize)>,
    evaluations: usize,
    /// The precision's resolution in model-input units; whether the run went on in fp32.
    resolution: f64,
    exact: bool,
    switched_at: usize,
}

impl Problem for Timed<'_, '_> {
    fn evaluate(&mut self, x: &Tensor) -> Result<Evaluation> {
        let (losses, grad) = self.evaluator.value_and_grad(&x.f_view(self.shape.as_slice())?, &self.weights)?;
        let loss = losses.total.f_double_value(&[])?;
        self.evaluations += 1;
        if self.target.is_some_and(|t| loss <= t) && self.reached.is_none() {
            self.reached = Some((self.started.elapsed().as_secs_f64(), self.evaluations));
        }
        Ok(Evaluation { loss, grad: grad.f_flatten(0, -1)?, generation: self.exact as u64 })
    }

    // As the engine's runs: bf16 and fp16 go on in fp32 once at their resolution.
    fn resolution(&self) -> f64 {
        if self.exact {
            0.0
        } else {
            self.resolution
        }
    }

    fn refine(&mut self) -> bool {
        if self.exact || self.resolution == 0.0 {
            return false;
        }
        self.exact = true;
        self.switched_at = self.evaluations;
        self.evaluator.set_exact(true);
        true
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// An image file as `[1, 3, size, size]` model input on `model`'s device.
fn image_input(model: &Vgg19, path: &str, size: i64) -> Result<Tensor> {
    let rgb = image::load(Path::new(path))?.rgb.resize(size as u32, size as u32)?;
    model.convention().to_model(&rgb.to_tensor(model.device())?)
}

/// Content input, style targets and start point for one size.
fn workload(model: &Vgg19, size: i64, images: Option<(&str, &str)>) -> Result<(Tensor, StyleTargets, Tensor)> {
    match images {
        Some((content, style)) => {
            let content = image_input(model, content, size)?;
            let style = StyleTargets::from_input(model, &image_input(model, style, size)?)?;
            let x = content.f_detach_copy()?;
            Ok((content, style, x))
        }
        None => Ok(Workload::new(model, size, 0)?.into_parts()),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let model_path = find_model(arg(&args, "--model").as_deref().map(Path::new))?;
    let device = DeviceChoice::from_name(&arg(&args, "--device").unwrap_or_else(|| "cpu".into()))
        .ok_or_else(|| Error::invalid("device", "unknown"))?
        .resolve()?;
    let precision = Precision::from_name(&arg(&args, "--precision").unwrap_or_else(|| "fp32".into()))
        .ok_or_else(|| Error::invalid("precision", "unknown"))?;
    let sizes: Vec<i64> = arg(&args, "--sizes")
        .unwrap_or_else(|| "64,128,256".into())
        .split(',')
        .map(|s| s.parse().map_err(|_| Error::invalid("sizes", s.to_string())))
        .collect::<Result<_>>()?;
    let evals: usize = arg(&args, "--evals").and_then(|s| s.parse().ok()).unwrap_or(10);
    if let Some(threads) = arg(&args, "--threads").and_then(|s| s.parse().ok()) {
        tch::set_num_threads(threads);
    }
    let images = match (arg(&args, "--content"), arg(&args, "--style")) {
        (Some(c), Some(s)) => Some((c, s)),
        (None, None) => None,
        _ => return Err(Error::invalid("images", "give both --content and --style")),
    };
    set_graphs_enabled(!flag("--no-graphs"));
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut model = Vgg19::load(&model_path, device, precision)?;
    model.set_nnpack(flag("--nnpack"))?;
    model.set_channels_last(!flag("--no-channels-last"))?;
    // The judge of final losses: the same network in fp32, loaded after the
    // first timed run so that its weights do not count in that run's peak.
    let mut judge: Option<Vgg19> = None;
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let weights = Weights::defaults(Normalization::Reference);
    for size in sizes {
        let (content, style, x) = workload(&model, size, images.as_ref().map(|(c, s)| (c.as_str(), s.as_str())))?;
        let objective = Objective::new(&model, &content, &style, [1.0; 5], Normalization::Reference)?;
        let mut evaluator = Evaluator::new(&objective, device);
        // Warm-up: cuDNN autotuning, allocator, and the graph capture.
        for _ in 0..2 {
            let _ = evaluator.value_and_grad(&x, &weights)?;
        }
        sync();
        if let Device::Cuda(i) = device {
            cuda::reset_peak(i);
        }
        let start = Instant::now();
        let mut result = None;
        let mut to_target: Option<Option<(f64, usize)>> = None;
        let mut refined_at: Option<usize> = None;
        if flag("--lbfgs") {
            let target = arg(&args, "--target").and_then(|s| s.parse().ok());
            let resolution = precision.resolution() * model.convention().scale();
            let mut problem = Timed {
                evaluator,
                weights,
                shape: x.size(),
                target,
                started: start,
                reached: None,
                evaluations: 0,
                resolution,
                exact: false,
                switched_at: 0,
            };
            // The default first step is in display units; the optimiser works in the model's.
            let mut options = styletransfer::run::default_lbfgs();
            options.first_step = options.first_step.map(|s| s * model.convention().scale());
            let best = styletransfer::optim::lbfgs(&mut problem, &x.f_flatten(0, -1)?, evals, &options)?;
            if problem.exact {
                refined_at = Some(problem.switched_at);
            }
            evaluator = problem.evaluator;
            if target.is_some() {
                to_target = Some(problem.reached);
            }
            result = Some(best.f_view(x.size().as_slice())?);
        } else {
            for _ in 0..evals {
                let (losses, _grad) = evaluator.value_and_grad(&x, &weights)?;
                losses.total.f_double_value(&[])?;
            }
        }
        sync();
        let ms = start.elapsed().as_secs_f64() * 1000.0 / evals as f64;
        let peak = match device {
            Device::Cuda(i) => cuda::memory_stats(i).map(|s| s.allocated_peak),
            _ => styletransfer::memory::peak_rss_bytes(),
        };
        let peak = peak.map_or("nan".to_string(), |b| format!("{:.3}", b as f64 / (1u64 << 30) as f64));
        let mut line = format!(
            "ours device={} size={size} precision={} kernels={} graphs={} evals={evals} ms_per_eval={ms:.2} peak_gib={peak}",
            device_name(device),
            precision.name(),
            if model.bf16_emulated() { "emulated" } else { "native" },
            if evaluator.replaying() { "on" } else { "off" },
        );
        if let Some(at) = refined_at {
            line.push_str(&format!(" fp32_from_eval={at}"));
        }
        match to_target {
            Some(Some((seconds, evaluations))) => {
                line.push_str(&format!(" seconds_to_target={seconds:.3} evals_to_target={evaluations}"))
            }
            Some(None) => line.push_str(" seconds_to_target=never"),
            None => {}
        }
        if let Some(reason) = &evaluator.fallback_reason {
            eprintln!("eval_speed: CUDA graphs given up: {reason}");
        }
        if let Some(result) = result {
            if precision != Precision::Fp32 && judge.is_none() {
                let mut m = Vgg19::load(&model_path, device, Precision::Fp32)?;
                m.set_channels_last(!flag("--no-channels-last"))?;
                judge = Some(m);
            }
            let judge_model = judge.as_ref().unwrap_or(&model);
            let judge_style;
            let judge_objective = if judge.is_some() {
                let (c, s, _) = workload(judge_model, size, images.as_ref().map(|(c, s)| (c.as_str(), s.as_str())))?;
                judge_style = s;
                Objective::new(judge_model, &c, &judge_style, [1.0; 5], Normalization::Reference)?
            } else {
                objective
            };
            let loss = tch::no_grad(|| judge_objective.losses(&result, &weights))?.values()?;
            line.push_str(&format!(" final_loss={:.6e}", loss.total));
        }
        println!("{line}");
    }
    Ok(())
}
