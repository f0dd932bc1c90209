//! Runs the same stylisation at several precisions and scores every result
//! with the fp32 objective, so precisions are compared at equal evaluations.
//! One line per precision:
//! `precision=bf16 evals=100 seconds=... ms_per_eval=... total=... content=... style=... tv=... style_start=... drift=+0.42%`
//! (`drift`: the total against the first precision listed; `style_start`:
//! the style term of the content itself, where runs start).
//!
//! usage: precision_check --content IMG --style IMG [--size 64] [--iterations 200]
//!                        [--precisions fp32,bf16,fp16] [--normalization relative|reference]
//!                        [--optimizer lbfgs|adam] [--line-search backtracking|fixed|strong-wolfe]
//!                        [--first-step D|torch] [--kernels native|emulated]
//!                        [--scales N] [--model PATH] [--threads N]

use std::path::Path;
use std::time::Instant;

use styletransfer::device::Bf16Kernels;
use styletransfer::loss::{LossTerms, Objective, StyleTargets};
use styletransfer::model::find_model;
use styletransfer::run::{default_adam, default_lbfgs};
use styletransfer::targets::{image_targets, ladder_side};
use styletransfer::{
    DeviceChoice, Engine, EngineOptions, Error, Flow, LbfgsOptions, LineSearch, LiveWeights, Normalization, Optimizer,
    Precision, Result, RgbImage, RunOptions, StyleImage, StyleSet, Weights,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// The fp32 objective of one content and style at the working size.
struct Judge {
    engine: Engine,
    content: tch::Tensor,
    targets: StyleTargets,
    normalization: Normalization,
}

impl Judge {
    fn score(&self, image: &RgbImage, weights: &Weights) -> Result<LossTerms> {
        let objective =
            Objective::new(self.engine.model(), &self.content, &self.targets, [1.0; 5], self.normalization)?;
        let x = self.engine.to_input(image)?;
        tch::no_grad(|| objective.losses(&x, weights))?.values()
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model = find_model(arg(&args, "--model").as_deref().map(Path::new))?;
    let content_path = arg(&args, "--content").ok_or_else(|| Error::invalid("content", "missing"))?;
    let style_path = arg(&args, "--style").ok_or_else(|| Error::invalid("style", "missing"))?;
    let size: u32 = arg(&args, "--size").and_then(|s| s.parse().ok()).unwrap_or(64);
    let iterations: usize = arg(&args, "--iterations").and_then(|s| s.parse().ok()).unwrap_or(200);
    let scales: Option<usize> = arg(&args, "--scales").and_then(|s| s.parse().ok());
    let threads: Option<usize> = arg(&args, "--threads").and_then(|s| s.parse().ok());
    let normalization = Normalization::from_name(&arg(&args, "--normalization").unwrap_or_else(|| "relative".into()))
        .ok_or_else(|| Error::invalid("normalization", "unknown"))?;
    let line_search = match arg(&args, "--line-search").as_deref().unwrap_or("backtracking") {
        "backtracking" => LineSearch::Backtracking,
        "fixed" => LineSearch::Fixed,
        "strong-wolfe" => LineSearch::StrongWolfe,
        other => return Err(Error::invalid("line-search", other.to_string())),
    };
    let optimizer = match arg(&args, "--optimizer").as_deref().unwrap_or("lbfgs") {
        "lbfgs" => Optimizer::Lbfgs(LbfgsOptions {
            line_search,
            first_step: match arg(&args, "--first-step").as_deref() {
                None => default_lbfgs().first_step,
                Some("torch") => None,
                Some(v) => Some(v.parse().map_err(|_| Error::invalid("first-step", v.to_string()))?),
            },
            ..default_lbfgs()
        }),
        "adam" => Optimizer::Adam(default_adam()),
        other => return Err(Error::invalid("optimizer", other.to_string())),
    };
    let precisions = arg(&args, "--precisions")
        .unwrap_or_else(|| "fp32,bf16,fp16".into())
        .split(',')
        .map(|p| Precision::from_name(p).ok_or_else(|| Error::invalid("precisions", p.to_string())))
        .collect::<Result<Vec<_>>>()?;

    let bf16_kernels = match arg(&args, "--kernels").as_deref() {
        None => None,
        Some("native") => Some(Bf16Kernels::Native),
        Some("emulated") => Some(Bf16Kernels::Emulated),
        Some(other) => return Err(Error::invalid("kernels", other.to_string())),
    };
    let content = styletransfer::image::load(Path::new(&content_path))?.rgb;
    let style = styletransfer::image::load(Path::new(&style_path))?.rgb;
    let (w, h) = styletransfer::pyramid::fit_long_side(content.width(), content.height(), size);
    // The run's working size is the content's own: no resampling of the result.
    let content = content.resize(w, h)?;
    let engine_at = |precision| {
        Engine::new(&EngineOptions {
            model_path: model.clone(),
            device: DeviceChoice::Cpu,
            precision,
            bf16_kernels,
            threads,
        })
    };
    let judge = {
        let engine = engine_at(Some(Precision::Fp32))?;
        let input = engine.to_input(&content)?;
        let targets = image_targets(engine.model(), &style, ladder_side(w.max(h)))?;
        Judge { engine, content: input, targets, normalization }
    };
    let weights = Weights::defaults(normalization);
    let style_start = judge.score(&content, &weights)?.style;
    let options =
        RunOptions { iterations, scales, size: Some(w.max(h)), optimizer, normalization, ..RunOptions::default() };
    let mut first_total: Option<f64> = None;
    for precision in precisions {
        let engine = engine_at(Some(precision))?;
        let mut styles = StyleSet::new(vec![StyleImage { image: style.clone(), weight: 1.0 }])?;
        let live = LiveWeights::new(weights)?;
        let started = Instant::now();
        let mut evaluations = 0;
        let out = engine.run(&content, &mut styles, &options, &live, &mut |p| {
            evaluations = p.evaluation;
            Flow::Continue
        })?;
        let seconds = started.elapsed().as_secs_f64();
        let score = judge.score(&out.image, &weights)?;
        let drift = match first_total {
            Some(first) => format!("{:+.2}%", 100.0 * (score.total / first - 1.0)),
            None => {
                first_total = Some(score.total);
                "+0.00%".into()
            }
        };
        let line = format!(
            "precision={} evals={evaluations} seconds={seconds:.2} ms_per_eval={:.1} total={:.6e} content={:.4e} style={:.4e} tv={:.4e} style_start={style_start:.4e} drift={drift}",
            precision.name(),
            1000.0 * seconds / evaluations.max(1) as f64,
            score.total,
            score.content,
            score.style,
            score.tv,
        );
        println!("{line}");
    }
    Ok(())
}
