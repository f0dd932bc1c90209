//! Times one-pass stylisation with a network and prints one line per size
//! and precision:
//! `net device=cpu size=512x512 precision=bf16 width=32 mode=image runs=10 ms_per_frame=... fps=...`.
//!
//! `mode=image` is what a host sees: an `RgbImage` in memory in, one out
//! (`Network::stylize`, conversions and transfers included). `mode=device`
//! times the pass on a frame already on the device (`Network::stylize_tensor`),
//! as a host whose frames live on the GPU would see it. Each size is warmed
//! up with two runs first; CUDA is synchronised before the clock stops.
//!
//! usage: net_speed [--net FILE | --width W --blocks B] [--device cpu|cuda]
//!                  [--sizes 512x512,1920x1080] [--precisions fp32,bf16]
//!                  [--runs N] [--threads N] [--mode image|device|both]

use std::path::PathBuf;
use std::time::Instant;

use styletransfer::device::device_name;
use styletransfer::network::Network;
use styletransfer::{DeviceChoice, Error, Flow, InferenceOptions, NetworkShape, Precision, Result, RgbImage};
use tch::{Device, Kind, Tensor};

struct Args {
    net: Option<PathBuf>,
    shape: NetworkShape,
    device: String,
    sizes: Vec<(u32, u32)>,
    precisions: Vec<Precision>,
    runs: usize,
    threads: Option<i32>,
    modes: Vec<&'static str>,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        net: None,
        shape: NetworkShape::default(),
        device: "cpu".into(),
        sizes: vec![(512, 512), (1920, 1080)],
        precisions: vec![Precision::Fp32, Precision::Bf16],
        runs: 10,
        threads: None,
        modes: vec!["image"],
    };
    let mut it = std::env::args().skip(1);
    let bad = |what: &'static str, v: &str| Error::invalid(what, format!("cannot read `{v}`"));
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| Error::invalid("arguments", format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--net" => args.net = Some(PathBuf::from(value)),
            "--width" => args.shape.width = value.parse().map_err(|_| bad("width", &value))?,
            "--blocks" => args.shape.residual_blocks = value.parse().map_err(|_| bad("blocks", &value))?,
            "--device" => args.device = value,
            "--runs" => args.runs = value.parse().map_err(|_| bad("runs", &value))?,
            "--threads" => args.threads = Some(value.parse().map_err(|_| bad("threads", &value))?),
            "--sizes" => {
                args.sizes = value
                    .split(',')
                    .map(|s| {
                        let (w, h) = s.split_once('x').ok_or_else(|| bad("sizes", s))?;
                        Ok((w.parse().map_err(|_| bad("sizes", s))?, h.parse().map_err(|_| bad("sizes", s))?))
                    })
                    .collect::<Result<_>>()?
            }
            "--precisions" => {
                args.precisions = value
                    .split(',')
                    .map(|p| Precision::from_name(p).ok_or_else(|| bad("precisions", p)))
                    .collect::<Result<_>>()?
            }
            "--mode" => {
                args.modes = match value.as_str() {
                    "image" => vec!["image"],
                    "device" => vec!["device"],
                    "both" => vec!["image", "device"],
                    other => return Err(bad("mode", other)),
                }
            }
            other => return Err(Error::invalid("arguments", format!("unknown flag {other}"))),
        }
    }
    Ok(args)
}

fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

fn main() -> Result<()> {
    let args = parse()?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    let device = DeviceChoice::from_name(&args.device)
        .ok_or_else(|| Error::invalid("device", format!("`{}` is not a device", args.device)))?
        .resolve()?;
    let mut network = match &args.net {
        Some(path) => Network::load(path, device)?.0,
        None => Network::new(args.shape, 0, device)?,
    };
    let width = network.shape().width;
    for &(w, h) in &args.sizes {
        let frame = Tensor::f_rand([1, 3, h as i64, w as i64], (Kind::Float, Device::Cpu))?;
        let image = RgbImage::from_tensor(&frame)?;
        let on_device = frame.f_to_device(device)?;
        for &precision in &args.precisions {
            for &mode in &args.modes {
                let options = InferenceOptions { precision, budget_bytes: None, tile_size: None };
                let once = |network: &mut Network| -> Result<()> {
                    match mode {
                        "image" => {
                            network.stylize(&image, 0.5, &options, &mut |_, _| Flow::Continue)?;
                        }
                        _ => {
                            let _ = network.stylize_tensor(&on_device, 0.5, precision)?;
                        }
                    }
                    synchronize(device);
                    Ok(())
                };
                for _ in 0..2 {
                    once(&mut network)?;
                }
                let started = Instant::now();
                for _ in 0..args.runs {
                    once(&mut network)?;
                }
                let ms = started.elapsed().as_secs_f64() * 1000.0 / args.runs as f64;
                println!(
                    "net device={} size={w}x{h} precision={} width={width} mode={mode} runs={} ms_per_frame={ms:.1} fps={:.2}",
                    device_name(device),
                    precision.name(),
                    args.runs,
                    1000.0 / ms
                );
            }
        }
    }
    Ok(())
}
