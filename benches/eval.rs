//! One evaluation of the objective (forward to conv5_1, losses, input
//! gradient), on the CPU at 64², 128², 256², and on CUDA at 512² and 1024²
//! when a CUDA device is present. Bench ids name the device and the size
//! (`cpu_eval_128`, `cuda_bf16_graph_eval_512` when evaluations replay a
//! CUDA graph); CUDA timings synchronise the device before the clock is
//! read. Needs the model file (`make model`, or `ST_MODEL`).
//!
//! Also the style set-up of a run at working size 512 (levels 128, 256,
//! 512) from a style image (`cpu_style_setup_image_512`: resampling and a
//! forward pass per level) and from a style pack (`cpu_style_setup_pack_512`:
//! reading the pack and copying its targets).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use styletransfer::evaluator::{graphs_active, Evaluator};
use styletransfer::model::{find_model, Vgg19};
use styletransfer::targets::ladder_side;
use styletransfer::{image, DeviceChoice, Engine, EngineOptions, Precision, StyleImage, StylePack, StyleSet};
use tch::Device;

#[path = "support/workload.rs"]
#[allow(dead_code)] // each user takes what it needs
mod workload;
use workload::Workload;

fn bench_device(c: &mut Criterion, device: Device, precision: Precision, sizes: &[i64]) {
    let path = find_model(None).expect("model file (run `make model`)");
    let mut model = Vgg19::load(&path, device, precision).expect("load model");
    model.set_channels_last(true).expect("layout");
    let name = match device {
        Device::Cuda(_) if graphs_active(device) => format!("cuda_{}_graph", precision.name()),
        Device::Cuda(_) => format!("cuda_{}", precision.name()),
        _ => "cpu".to_string(),
    };
    let mut group = c.benchmark_group("eval");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for &size in sizes {
        let workload = Workload::new(&model, size, 0).expect("workload");
        let objective = workload.objective(&model).expect("objective");
        let weights = Workload::weights();
        // Through the engine's evaluator: on CUDA a graph replay once the first call has captured it.
        let mut evaluator = Evaluator::new(&objective, device);
        group.bench_function(format!("{name}_eval_{size}"), |b| {
            b.iter(|| {
                let (losses, grad) = evaluator.value_and_grad(&workload.x, &weights).expect("eval");
                if let Device::Cuda(i) = device {
                    tch::Cuda::synchronize(i as i64);
                }
                (losses, grad)
            })
        });
    }
    group.finish();
}

fn style_setup(c: &mut Criterion) {
    let engine = Engine::new(&EngineOptions {
        model_path: find_model(None).expect("model file (run `make model`)"),
        device: DeviceChoice::Cpu,
        precision: Some(Precision::Fp32),
        bf16_kernels: None,
        threads: None,
    })
    .expect("engine");
    let style = image::load(std::path::Path::new("examples/images/swirls.jpg")).expect("sample style").rgb;
    let pack_path = std::env::temp_dir().join(format!("st-bench-{}.stpack", std::process::id()));
    StylePack::create(engine.model(), &[StyleImage { image: style.clone(), weight: 1.0 }], "bench")
        .and_then(|p| p.save(&pack_path))
        .expect("pack");
    let levels = [128u32, 256, 512];
    let mut group = c.benchmark_group("style_setup");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("cpu_style_setup_image_512", |b| {
        b.iter(|| {
            let mut set = StyleSet::new(vec![StyleImage { image: style.clone(), weight: 1.0 }]).unwrap();
            levels.iter().map(|&l| set.targets(engine.model(), ladder_side(l)).unwrap()).count()
        })
    });
    group.bench_function("cpu_style_setup_pack_512", |b| {
        b.iter(|| {
            let mut set = StyleSet::default();
            set.add_pack(StylePack::load(&pack_path, engine.model().weights_sha256()).unwrap(), 1.0).unwrap();
            levels.iter().map(|&l| set.targets(engine.model(), ladder_side(l)).unwrap()).count()
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&pack_path);
}

fn evals(c: &mut Criterion) {
    bench_device(c, Device::Cpu, Precision::Fp32, &[64, 128, 256]);
    if tch::Cuda::is_available() {
        bench_device(c, Device::Cuda(0), Precision::Fp32, &[512, 1024]);
        bench_device(c, Device::Cuda(0), Precision::Bf16, &[512, 1024]);
    }
}

criterion_group!(benches, evals, style_setup);
criterion_main!(benches);
