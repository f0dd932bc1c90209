//! One evaluation of the objective (forward to conv5_1, losses, input
//! gradient), on the CPU at 64², 128², 256², and on CUDA at 512² and 1024²
//! when a CUDA device is present. Bench ids name the device and the size
//! (`cpu_eval_128`); CUDA timings synchronise the device before the clock
//! is read. Needs the model file (`make model`, or `ST_MODEL`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use styletransfer::model::{find_model, Vgg19};
use styletransfer::workload::Workload;
use styletransfer::Precision;
use tch::Device;

fn bench_device(c: &mut Criterion, device: Device, precision: Precision, sizes: &[i64]) {
    let path = find_model(None).expect("model file (run `make model`)");
    let mut model = Vgg19::load(&path, device, precision).expect("load model");
    model.set_channels_last(true).expect("layout");
    let name = match device {
        Device::Cuda(_) => format!("cuda_{}", precision.name()),
        _ => "cpu".to_string(),
    };
    let mut group = c.benchmark_group("eval");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for &size in sizes {
        let workload = Workload::new(&model, size, 0).expect("workload");
        let objective = workload.objective(&model).expect("objective");
        let weights = Workload::weights();
        group.bench_function(format!("{name}_eval_{size}"), |b| {
            b.iter(|| {
                let (losses, grad) = objective.value_and_grad(&workload.x, &weights).expect("eval");
                if let Device::Cuda(i) = device {
                    tch::Cuda::synchronize(i as i64);
                }
                (losses, grad)
            })
        });
    }
    group.finish();
}

fn evals(c: &mut Criterion) {
    bench_device(c, Device::Cpu, Precision::Fp32, &[64, 128, 256]);
    if tch::Cuda::is_available() {
        bench_device(c, Device::Cuda(0), Precision::Fp32, &[512, 1024]);
        bench_device(c, Device::Cuda(0), Precision::Bf16, &[512, 1024]);
    }
}

criterion_group!(benches, evals);
criterion_main!(benches);
