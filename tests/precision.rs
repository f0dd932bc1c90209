//! Mixed precision, every output scored by the fp32 objective at equal
//! evaluations: under the relative normalisation (the default) bf16 (native
//! kernels and the emulation) and fp16 end within 3 % of fp32's loss; under
//! the reference normalisation fp16 does, and bf16 does not reliably yet
//! (it ends from 2.6 % below to 8.5 % above at 64², varying from run to run,
//! so automatic precision runs fp32 there, which is tested); each run brings the style term to at most 0.3× its start (an
//! unchanged image fails); targets are the same at every precision; the
//! emulation computes what the native kernels compute; `ST_CPU_BF16`
//! decides the automatic precision.

mod support;

use styletransfer::device::Bf16Kernels;
use styletransfer::loss::{LossTerms, Objective, StyleTargets};
use styletransfer::run::{default_adam, default_lbfgs};
use styletransfer::targets::{image_targets, ladder_side};
use styletransfer::{
    DeviceChoice, Engine, EngineOptions, Flow, LbfgsOptions, LineSearch, LiveWeights, Normalization, Optimizer,
    Precision, RgbImage, RunOptions, StyleImage, StyleSet, Weights,
};

fn engine(precision: Precision, bf16_kernels: Option<Bf16Kernels>) -> Engine {
    Engine::new(&EngineOptions {
        model_path: support::model(),
        device: DeviceChoice::Cpu,
        precision: Some(precision),
        bf16_kernels,
        threads: None,
    })
    .expect("CPU engine")
}

/// The fp32 objective of a content and a style at the content's size.
struct Judge {
    engine: Engine,
    content: tch::Tensor,
    targets: StyleTargets,
}

impl Judge {
    fn new(content: &RgbImage, style: &RgbImage) -> Self {
        let engine = engine(Precision::Fp32, None);
        let input = engine.to_input(content).unwrap();
        let side = ladder_side(content.width().max(content.height()));
        let targets = image_targets(engine.model(), style, side).unwrap();
        Self { engine, content: input, targets }
    }

    fn score(&self, image: &RgbImage, normalization: Normalization) -> LossTerms {
        let objective =
            Objective::new(self.engine.model(), &self.content, &self.targets, [1.0; 5], normalization).unwrap();
        let x = self.engine.to_input(image).unwrap();
        let weights = Weights::defaults(normalization);
        tch::no_grad(|| objective.losses(&x, &weights)).unwrap().values().unwrap()
    }
}

fn inputs() -> (RgbImage, RgbImage) {
    let content = styletransfer::image::load(&support::sample("chelsea.jpg")).unwrap().rgb.resize(64, 43).unwrap();
    let style = styletransfer::image::load(&support::sample("swirls.jpg")).unwrap().rgb;
    (content, style)
}

fn stylise(engine: &Engine, content: &RgbImage, style: &RgbImage, options: &RunOptions) -> RgbImage {
    let mut styles = StyleSet::new(vec![StyleImage { image: style.clone(), weight: 1.0 }]).unwrap();
    let weights = LiveWeights::new(Weights::defaults(options.normalization)).unwrap();
    engine.run(content, &mut styles, options, &weights, &mut |_| Flow::Continue).unwrap().image
}

/// Runs `options` at every precision and checks each against fp32: the
/// style term at most 0.3× its start, and the total at most 3 % above
/// fp32's unless the precision is listed in `no_bound` (then printed only).
fn check_precisions(
    label: &str,
    options: &RunOptions,
    precisions: &[(Precision, Option<Bf16Kernels>)],
    no_bound: &[Precision],
) {
    let (content, style) = inputs();
    let judge = Judge::new(&content, &style);
    let normalization = options.normalization;
    let start = judge.score(&content, normalization);
    let fp32 = judge.score(&stylise(&engine(Precision::Fp32, None), &content, &style, options), normalization);
    println!("{label}: start {start:?}\n{label}: fp32 {fp32:?}");
    assert!(
        fp32.style <= 0.3 * start.style,
        "{label}, fp32: the style term went from {} to {}, not below 0.3× its start",
        start.style,
        fp32.style
    );
    for &(precision, kernels) in precisions {
        let engine = engine(precision, kernels);
        let name = format!("{}{}", precision.name(), if engine.model().bf16_emulated() { " (emulated)" } else { "" });
        let score = judge.score(&stylise(&engine, &content, &style, options), normalization);
        let drift = score.total / fp32.total - 1.0;
        println!("{label}: {name} {score:?}, {:+.2} % against fp32", 100.0 * drift);
        assert!(
            score.style <= 0.3 * start.style,
            "{label}, {name}: the style term went from {} to {}, not below 0.3× its start",
            start.style,
            score.style
        );
        if no_bound.contains(&precision) {
            continue;
        }
        assert!(
            drift <= 0.03,
            "{label}, {name}: total loss {} is {:+.2} % against fp32's {} (at most +3 %)",
            score.total,
            100.0 * drift,
            fp32.total
        );
    }
}

const ALL_LOWER: [(Precision, Option<Bf16Kernels>); 3] = [
    (Precision::Bf16, Some(Bf16Kernels::Emulated)),
    (Precision::Bf16, Some(Bf16Kernels::Native)),
    (Precision::Fp16, None),
];

#[test]
fn lower_precisions_reach_fp32s_loss_relative_normalisation() {
    let options = RunOptions { size: Some(64), ..RunOptions::default() };
    check_precisions("relative", &options, &ALL_LOWER, &[]);
}

#[test]
fn lower_precisions_reach_fp32s_loss_reference_normalisation() {
    let options = RunOptions { size: Some(64), normalization: Normalization::Reference, ..RunOptions::default() };
    // bf16's drift is printed, not bounded: see the module documentation.
    check_precisions("reference", &options, &ALL_LOWER, &[Precision::Bf16]);
}

/// The other optimiser and line searches, with the emulation (which
/// computes what native bf16 does, at fp32's speed), fewer evaluations.
#[test]
fn bf16_reaches_fp32s_loss_with_adam_and_every_line_search() {
    let emulated = [(Precision::Bf16, Some(Bf16Kernels::Emulated))];
    for normalization in [Normalization::Relative, Normalization::Reference] {
        let unbounded: &[Precision] = if normalization == Normalization::Reference { &[Precision::Bf16] } else { &[] };
        let base = RunOptions { size: Some(64), iterations: 100, normalization, ..RunOptions::default() };
        for line_search in [LineSearch::Fixed, LineSearch::StrongWolfe] {
            let optimizer = Optimizer::Lbfgs(LbfgsOptions { line_search, ..default_lbfgs() });
            check_precisions(
                &format!("{normalization:?} {line_search:?}"),
                &RunOptions { optimizer, ..base.clone() },
                &emulated,
                unbounded,
            );
        }
        let adam = RunOptions { optimizer: Optimizer::Adam(default_adam()), ..base.clone() };
        check_precisions(&format!("{normalization:?} Adam"), &adam, &emulated, &[]);
    }
}

#[test]
fn targets_are_fp32_at_every_precision() {
    let (content, style) = inputs();
    let reference = engine(Precision::Fp32, None);
    let expected = image_targets(reference.model(), &style, 64).unwrap();
    for (precision, kernels) in ALL_LOWER {
        let other = engine(precision, kernels);
        let got = image_targets(other.model(), &style, 64).unwrap();
        for (layer, (a, b)) in expected.grams.iter().zip(&got.grams).enumerate() {
            assert_eq!(b.kind(), tch::Kind::Float);
            assert!(a.equal(b), "{}: style layer {layer} differs from fp32's", precision.name());
        }
        // The content target too: the objective at the content itself has no content loss.
        let x = other.to_input(&content).unwrap();
        let objective = Objective::new(other.model(), &x, &got, [1.0; 5], Normalization::Reference).unwrap();
        let at_content = reference.to_input(&content).unwrap();
        let fp32_objective =
            Objective::new(reference.model(), &at_content, &expected, [1.0; 5], Normalization::Reference).unwrap();
        assert_eq!(objective.content_power().unwrap(), fp32_objective.content_power().unwrap());
    }
}

/// The emulation computes what libtorch's bf16 kernels compute: the same
/// loss and gradient up to the order of fp32 accumulation.
#[test]
fn emulated_bf16_evaluates_like_native_bf16() {
    let (content, style) = inputs();
    let native = engine(Precision::Bf16, Some(Bf16Kernels::Native));
    let emulated = engine(Precision::Bf16, Some(Bf16Kernels::Emulated));
    assert!(emulated.model().bf16_emulated() && !native.model().bf16_emulated());
    let start = support::pattern(64, 43, 0.4);
    let weights = Weights::defaults(Normalization::Relative);
    let mut results = Vec::new();
    for engine in [&native, &emulated] {
        let targets = image_targets(engine.model(), &style, 64).unwrap();
        let c = engine.to_input(&content).unwrap();
        let objective = Objective::new(engine.model(), &c, &targets, [1.0; 5], Normalization::Relative).unwrap();
        let (losses, grad) = objective.value_and_grad(&engine.to_input(&start).unwrap(), &weights).unwrap();
        results.push((losses.values().unwrap(), grad.flatten(0, -1)));
    }
    let (a, b) = (&results[0], &results[1]);
    let loss_error = (a.0.total - b.0.total).abs() / a.0.total;
    let cosine = a.1.dot(&b.1).double_value(&[]) / (a.1.norm().double_value(&[]) * b.1.norm().double_value(&[]));
    println!("native {:?}\nemulated {:?}\nloss error {loss_error:.2e}, gradient cosine {cosine:.6}", a.0, b.0);
    assert!(loss_error < 2e-3, "loss: native {} emulated {}", a.0.total, b.0.total);
    assert!(cosine > 0.999, "gradient cosine {cosine}");
}

/// With an automatic precision, runs under the reference normalisation
/// compute in fp32 even where bf16 is the automatic choice: the same image
/// as an fp32 engine's, bit for bit.
#[test]
fn automatic_precision_runs_the_reference_normalisation_in_fp32() {
    let dir = support::scratch("precision-auto-reference");
    let content = support::sample("coffee.jpg");
    let style = support::sample("mosaic.jpg");
    let mut outputs = Vec::new();
    for (value, precision) in [("1", None), ("0", Some("fp32"))] {
        let out = dir.join(format!("out-{value}.png"));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stylize"));
        command
            .args(["--content", content.to_str().unwrap(), "--style", style.to_str().unwrap()])
            .args(["-o", out.to_str().unwrap(), "--size", "40", "--iterations", "6", "--device", "cpu"])
            .args(["--normalization", "reference", "--report", "json"])
            .env("ST_CPU_BF16", value)
            .current_dir(support::root());
        if let Some(p) = precision {
            command.args(["--precision", p]);
        }
        let output = command.output().expect("run stylize");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
        assert_eq!(report["precision"], "fp32", "ST_CPU_BF16={value}");
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(outputs[0] == outputs[1], "the automatic run differs from the fp32 run");
}

/// `ST_CPU_BF16` overrides the CPU detection: automatic precision is bf16
/// with it at 1 and fp32 with it at 0, on any machine.
#[test]
fn the_cpu_override_decides_the_automatic_precision() {
    let dir = support::scratch("precision-override");
    let content = support::sample("chelsea.jpg");
    let style = support::sample("swirls.jpg");
    for (value, expected) in [("1", "bf16"), ("0", "fp32")] {
        let out = dir.join(format!("out-{value}.png"));
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stylize"))
            .args(["--content", content.to_str().unwrap(), "--style", style.to_str().unwrap()])
            .args(["-o", out.to_str().unwrap(), "--size", "32", "--iterations", "2", "--device", "cpu"])
            .args(["--report", "json"])
            .env("ST_CPU_BF16", value)
            .current_dir(support::root())
            .output()
            .expect("run stylize");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
        assert_eq!(report["precision"], expected, "ST_CPU_BF16={value}");
        // On a machine that has bfloat16 only through the override, bf16 runs libtorch's kernels.
        assert_eq!(report["bf16_emulated"], false, "ST_CPU_BF16={value}");
    }
}
