//! Times one evaluation (forward to conv5_1, losses, input gradient) of the
//! engine at given sizes, and prints one line per size:
//! `ours device=cpu size=256 precision=fp32 ms_per_eval=...`.
//!
//! With `--lbfgs` the evaluations run inside our L-BFGS (as the reference
//! script's run inside torch.optim.LBFGS), so the optimiser's cost counts too.
//!
//! usage: eval_speed [--model PATH] [--device cpu|cuda] [--sizes 64,128,256]
//!                   [--evals N] [--precision fp32|bf16|fp16] [--nnpack] [--no-channels-last] [--lbfgs]
//!                   [--threads N]

use std::time::Instant;

use styletransfer::engine::device_name;
use styletransfer::loss::{Objective, Weights};
use styletransfer::model::{find_model, Vgg19};
use styletransfer::optim::{Evaluation, Problem};
use styletransfer::workload::Workload;
use styletransfer::{DeviceChoice, Error, LbfgsOptions, Precision, Result};
use tch::{Device, Tensor};

struct Timed<'a> {
    objective: &'a Objective<'a>,
    weights: Weights,
    shape: Vec<i64>,
}

impl Problem for Timed<'_> {
    fn evaluate(&mut self, x: &Tensor) -> Result<Evaluation> {
        let (losses, grad) = self.objective.value_and_grad(&x.f_view(self.shape.as_slice())?, &self.weights)?;
        Ok(Evaluation { loss: losses.total.f_double_value(&[])?, grad: grad.f_flatten(0, -1)?, generation: 0 })
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model_path = find_model(arg(&args, "--model").as_deref().map(std::path::Path::new))?;
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
    let mut model = Vgg19::load(&model_path, device, precision)?;
    model.set_nnpack(args.iter().any(|a| a == "--nnpack"));
    model.set_channels_last(!args.iter().any(|a| a == "--no-channels-last"))?;
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    for size in sizes {
        let workload = Workload::new(&model, size, 0)?;
        let objective = workload.objective(&model)?;
        let weights = Workload::weights();
        let _ = objective.value_and_grad(&workload.x, &weights)?; // warm-up
        sync();
        let start = Instant::now();
        if args.iter().any(|a| a == "--lbfgs") {
            let mut problem = Timed { objective: &objective, weights, shape: workload.x.size() };
            let _ = styletransfer::optim::lbfgs(
                &mut problem,
                &workload.x.f_flatten(0, -1)?,
                evals,
                &LbfgsOptions::default(),
            )?;
        } else {
            for _ in 0..evals {
                let (losses, _grad) = objective.value_and_grad(&workload.x, &weights)?;
                losses.total.f_double_value(&[])?;
            }
        }
        sync();
        let ms = start.elapsed().as_secs_f64() * 1000.0 / evals as f64;
        println!("ours device={} size={size} precision={} ms_per_eval={ms:.2}", device_name(device), precision.name());
    }
    Ok(())
}
