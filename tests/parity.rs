//! Parity with an independent PyTorch implementation (tests/parity_reference.py,
//! float64 autograd) of the same objective on the same weights: loss terms
//! within 1e-4 (relative) and the input gradient within 1e-3 (max-norm,
//! relative), content and style terms checked separately, for both input
//! conventions and both normalisations.

mod support;

use std::path::Path;

use styletransfer::loss::{Objective, StyleTargets};
use styletransfer::{DeviceChoice, Engine, EngineOptions, Normalization, Precision, Weights};
use tch::{Kind, Tensor};

fn image_tensor(image: &styletransfer::RgbImage) -> Tensor {
    Tensor::from_slice(image.data()).view([image.height() as i64, image.width() as i64, 3])
}

fn torchvision_model(dir: &Path) -> std::path::PathBuf {
    // A torchvision-layout state dict with random He-scaled weights, converted
    // by the project's converter: the point is the convention, not the values.
    let pth = dir.join("vgg19-torchvision-layout.pth");
    let out = dir.join("vgg19-torchvision.safetensors");
    let script = format!(
        "import torch\n\
         g = torch.Generator().manual_seed(7)\n\
         chans = [(3,64),(64,64),(64,128),(128,128),(128,256),(256,256),(256,256),(256,256),(256,512),(512,512),(512,512),(512,512),(512,512),(512,512),(512,512),(512,512)]\n\
         idx = [0,2,5,7,10,12,14,16,19,21,23,25,28,30,32,34]\n\
         sd = {{}}\n\
         for (ci, co), i in zip(chans, idx):\n\
         \x20   sd[f'features.{{i}}.weight'] = torch.randn(co, ci, 3, 3, generator=g) * (2.0 / (9 * ci)) ** 0.5\n\
         \x20   sd[f'features.{{i}}.bias'] = torch.randn(co, generator=g) * 0.01\n\
         torch.save(sd, r'{}')\n",
        pth.display()
    );
    let output = std::process::Command::new(support::python()).arg("-c").arg(script).output().expect("python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    support::run_python(
        &support::root().join("tools/convert_vgg19.py"),
        &[pth.to_str().unwrap(), out.to_str().unwrap(), "--source", "test"],
    );
    out
}

fn relative_error(ours: f64, theirs: f64) -> f64 {
    (ours - theirs).abs() / theirs.abs().max(1e-30)
}

fn check(model_path: &Path, dir: &Path, label: &str) {
    let engine = Engine::new(&EngineOptions {
        model_path: model_path.to_path_buf(),
        device: DeviceChoice::Cpu,
        precision: Some(Precision::Fp32),
        bf16_kernels: None,
        threads: None,
    })
    .expect("engine");
    let content = support::pattern(48, 48, 0.0);
    let style = support::pattern(48, 48, 2.0);
    let x = support::pattern(48, 48, 0.7);
    let inputs = dir.join(format!("{label}-inputs.safetensors"));
    Tensor::write_safetensors(
        &[("content", image_tensor(&content)), ("style", image_tensor(&style)), ("x", image_tensor(&x))],
        &inputs,
    )
    .unwrap();
    let model = engine.model();
    let targets = StyleTargets::from_input(model, &engine.to_input(&style).unwrap()).unwrap();
    let content_input = engine.to_input(&content).unwrap();
    let x_input = engine.to_input(&x).unwrap();
    for normalization in [Normalization::Reference, Normalization::Relative] {
        let objective = Objective::new(model, &content_input, &targets, [1.0; 5], normalization).unwrap();
        let defaults = Weights::defaults(normalization);
        let cases = [
            ("content", Weights { content: 1.0, style: 0.0, tv: 0.0 }),
            ("style", Weights { content: 0.0, style: defaults.style, tv: 0.0 }),
            ("all", Weights { content: 1.0, style: defaults.style, tv: 2.0 }),
        ];
        for (term, weights) in cases {
            let case = format!("{label}/{normalization:?}/{term}");
            let (losses, grad) = objective.value_and_grad(&x_input, &weights).unwrap();
            let ours = losses.values().unwrap();
            let out = dir.join(format!("{label}-{normalization:?}-{term}.safetensors"));
            support::run_python(
                &support::root().join("tests/parity_reference.py"),
                &[
                    model_path.to_str().unwrap(),
                    inputs.to_str().unwrap(),
                    out.to_str().unwrap(),
                    "--normalization",
                    match normalization {
                        Normalization::Reference => "reference",
                        Normalization::Relative => "relative",
                    },
                    "--content-weight",
                    &weights.content.to_string(),
                    "--style-weight",
                    &weights.style.to_string(),
                    "--tv-weight",
                    &weights.tv.to_string(),
                ],
            );
            let theirs: std::collections::HashMap<String, Tensor> =
                Tensor::read_safetensors(&out).unwrap().into_iter().collect();
            let scalar = |name: &str| theirs[name].double_value(&[0]);
            for (name, ours_value, theirs_value) in [
                ("content", ours.content, scalar("content_loss")),
                ("style", ours.style, scalar("style_loss")),
                ("tv", ours.tv, scalar("tv_loss")),
                ("total", ours.total, scalar("total")),
            ] {
                if theirs_value == 0.0 {
                    assert_eq!(ours_value, 0.0, "{case}: {name} should be zero");
                    continue;
                }
                let error = relative_error(ours_value, theirs_value);
                println!("{case}: {name} ours {ours_value:.9e} theirs {theirs_value:.9e} rel {error:.2e}");
                assert!(error <= 1e-4, "{case}: {name} loss relative error {error:.3e} > 1e-4");
            }
            let their_grad = theirs["grad"].to_kind(Kind::Double);
            let diff = grad.to_kind(Kind::Double).f_sub(&their_grad).unwrap().abs().max().double_value(&[]);
            let scale = their_grad.abs().max().double_value(&[]);
            let error = diff / scale;
            println!("{case}: grad max-norm rel {error:.2e}");
            assert!(error <= 1e-3, "{case}: gradient max-norm relative error {error:.3e} > 1e-3");
        }
    }
}

#[test]
fn caffe_model_matches_independent_pytorch() {
    let dir = support::scratch("parity-caffe");
    check(&support::model(), &dir, "caffe");
}

#[test]
fn torchvision_convention_matches_independent_pytorch() {
    let dir = support::scratch("parity-torchvision");
    let model = torchvision_model(&dir);
    check(&model, &dir, "torchvision");
}
