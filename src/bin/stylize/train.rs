//! `stylize train`: distils a style into a `.stnet` network on the user's
//! images, and `stylize net info`.
//!
//! A checkpoint is written beside the output (`<output>.ckpt`) every
//! `--checkpoint-every` steps and at the end; `--resume` continues from it
//! (the same images, styles and settings; `--steps` may be raised). The
//! network file is written under a temporary name and renamed at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use styletransfer::model::find_model;
use styletransfer::network::{Network, NetworkShape};
use styletransfer::train::TrainOptions;
use styletransfer::{image, DeviceChoice, Engine, EngineOptions, Error, Normalization, Result, StylePack, StyleSet};
use styletransfer::{StyleImage, Trainer, Weights};

use crate::sequence::folder_or_glob;
use crate::{blend_weights, pack_argument, progress_bar, PrecisionArg};

/// `stylize train`'s arguments.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Style image; repeat for several styles.
    #[arg(long, value_name = "PATH", required_unless_present = "style_pack")]
    style: Vec<PathBuf>,
    /// Blend weights of the styles, comma-separated, one per --style.
    #[arg(long, value_name = "W1,W2,...", value_delimiter = ',')]
    style_blend: Option<Vec<f64>>,
    /// Style pack (a file or a name in the style folders), optionally with
    /// a blend weight (`a.stpack:0.7`); repeatable, combinable with --style.
    #[arg(long, value_name = "PACK[:W]")]
    style_pack: Vec<String>,
    /// Training images: a folder (its images) or a glob (`'photos/*.jpg'`).
    #[arg(long, value_name = "DIR|GLOB")]
    images: String,
    /// Output network (.stnet).
    #[arg(short = 'o', long, value_name = "PATH")]
    output: PathBuf,
    /// Display name [default: the output's file stem].
    #[arg(long)]
    name: Option<String>,
    /// Side of the square training crops (a multiple of 4).
    #[arg(long, value_name = "N", default_value_t = 256)]
    size: u32,
    /// Optimiser steps in all.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    steps: u64,
    /// Crops per step.
    #[arg(long, value_name = "B", default_value_t = 1)]
    batch: usize,
    /// Channels of the network's full-resolution layers (Johnson et al.: 32; 16 is a slim variant).
    #[arg(long, value_name = "W", default_value_t = 32)]
    width: i64,
    /// Residual blocks.
    #[arg(long, value_name = "N", default_value_t = 5)]
    blocks: usize,
    /// Adam's learning rate.
    #[arg(long, value_name = "LR", default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the initialisation and the crops (CPU training is bit-reproducible for a seed).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Continue from the checkpoint beside the output.
    #[arg(long)]
    resume: bool,
    /// Stop after this many minutes (the network of the steps taken is
    /// written; --resume goes on from there).
    #[arg(long, value_name = "M")]
    max_minutes: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long, value_name = "N", default_value_t = 100)]
    checkpoint_every: u64,
    /// Style weight at strength ½ [default: 5] (content 1, TV 1; the
    /// network learns every strength 0..1 around it).
    #[arg(long, value_name = "W")]
    style_weight: Option<f64>,
    /// Style image size relative to the crop size.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    style_scale: f64,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    device: String,
    /// Precision of the VGG19 passes [default: as a run's].
    #[arg(long, value_enum)]
    precision: Option<PrecisionArg>,
    /// CPU threads [default: libtorch's choice].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Model file.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Print one JSON line at the end.
    #[arg(long)]
    json: bool,
}

/// `stylize score`'s arguments.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The content image the result was made from.
    #[arg(long, value_name = "PATH")]
    content: PathBuf,
    /// The result to score (the content's size).
    #[arg(long, value_name = "PATH")]
    image: PathBuf,
    /// Style image; repeat for several styles.
    #[arg(long, value_name = "PATH", required_unless_present = "style_pack")]
    style: Vec<PathBuf>,
    /// Blend weights of the styles, one per --style.
    #[arg(long, value_name = "W1,W2,...", value_delimiter = ',')]
    style_blend: Option<Vec<f64>>,
    /// Style pack, optionally with a blend weight; repeatable.
    #[arg(long, value_name = "PACK[:W]")]
    style_pack: Vec<String>,
    /// Style strength 0..1 of the weights [default: 0.5, the default weights].
    #[arg(long, value_name = "S", default_value_t = 0.5)]
    strength: f64,
    /// Style image size relative to the content's long side.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    style_scale: f64,
    /// Model file.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
}

/// `stylize net`.
#[derive(Subcommand, Debug)]
pub enum NetCommand {
    /// Describe a network file (as one JSON line with --json).
    Info {
        /// The network.
        path: PathBuf,
        /// Print one JSON line.
        #[arg(long)]
        json: bool,
    },
}

/// The image files of a folder or a glob, sorted by name, or one image file.
fn image_files(spec: &str) -> Result<Vec<PathBuf>> {
    let files = match folder_or_glob(spec, "images")? {
        Some(files) => files,
        None if Path::new(spec).is_file() => vec![PathBuf::from(spec)],
        None => return Err(Error::invalid("images", format!("`{spec}` is not a folder, a glob or an image file"))),
    };
    if files.is_empty() {
        return Err(Error::invalid("images", format!("no image found in `{spec}`")));
    }
    Ok(files)
}

fn checkpoint_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".ckpt");
    output.with_file_name(name)
}

/// `stylize train`.
pub fn train(args: &TrainArgs) -> Result<()> {
    // Everything that can be checked is checked before the model loads.
    if !Network::is_network_path(&args.output) {
        return Err(Error::invalid("output", format!("{} does not end in .stnet", args.output.display())));
    }
    if args.max_minutes.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
        return Err(Error::invalid("max-minutes", "must be a positive number"));
    }
    if args.checkpoint_every == 0 {
        return Err(Error::invalid("checkpoint-every", "must be at least 1"));
    }
    let defaults = Weights::defaults(Normalization::Relative);
    let options = TrainOptions {
        size: args.size,
        steps: args.steps,
        batch: args.batch,
        shape: NetworkShape { width: args.width, residual_blocks: args.blocks },
        seed: args.seed,
        lr: args.lr,
        weights: Weights { style: args.style_weight.unwrap_or(defaults.style), ..defaults },
        style_scale: args.style_scale,
        ..TrainOptions::default()
    };
    options.validate()?;
    let checkpoint = checkpoint_path(&args.output);
    if args.resume && !checkpoint.is_file() {
        return Err(Error::invalid("resume", format!("no checkpoint at {}", checkpoint.display())));
    }
    let blend = blend_weights(&args.style_blend, args.style.len())?;
    let device = DeviceChoice::from_name(&args.device)
        .ok_or_else(|| Error::invalid("device", format!("`{}` is not auto, cpu, cuda or cuda:N", args.device)))?;
    let files = image_files(&args.images)?;
    let mut images = Vec::with_capacity(files.len());
    for file in &files {
        images.push(image::load(file)?.rgb);
    }
    let mut styles = Vec::with_capacity(args.style.len());
    for (path, weight) in args.style.iter().zip(&blend) {
        styles.push(StyleImage { image: image::load(path)?.rgb, weight: *weight });
    }
    let mut styles = StyleSet::new(styles)?;
    let engine = Engine::new(&EngineOptions {
        model_path: find_model(args.model.as_deref())?,
        device,
        precision: args.precision.map(PrecisionArg::precision),
        bf16_kernels: None,
        threads: args.threads,
    })?;
    for (path, weight) in args.style_pack.iter().map(|p| pack_argument(p)) {
        styles.add_pack(StylePack::load(&path, engine.model().weights_sha256())?, weight)?;
    }
    let started = Instant::now();
    let mut trainer = Trainer::new(&engine, &mut styles, &images, options)?;
    if args.resume {
        trainer.resume(&checkpoint)?;
        eprintln!("stylize: resumed at step {} from {}", trainer.step_count(), checkpoint.display());
    }
    let first_step = trainer.step_count();
    let bar = progress_bar("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} ETA {eta} {msg}");
    if let Some(bar) = &bar {
        bar.set_length(args.steps);
        bar.set_position(first_step);
    }
    let mut first_loss = None;
    let deadline = args.max_minutes.map(|m| Instant::now() + std::time::Duration::from_secs_f64(m * 60.0));
    while !trainer.finished() && deadline.is_none_or(|d| Instant::now() < d) {
        let report = trainer.step()?;
        first_loss.get_or_insert(report.loss);
        if let Some(bar) = &bar {
            bar.set_position(report.step);
            bar.set_message(format!("loss {:.4} (recent {:.4})", report.loss, report.recent_loss));
        }
        if report.step % args.checkpoint_every == 0 && !trainer.finished() {
            trainer.save_checkpoint(&checkpoint)?;
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    trainer.save_checkpoint(&checkpoint)?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "network".into())
    });
    let info = trainer.info(&name);
    trainer.network().save(&args.output, &info)?;
    let seconds = started.elapsed().as_secs_f64();
    let steps = trainer.step_count() - first_step;
    eprintln!(
        "stylize: wrote {} ({} steps in {seconds:.1} s, final loss {:.4})",
        args.output.display(),
        steps,
        info.final_loss
    );
    if args.json {
        let line = serde_json::json!({
            "output": args.output.display().to_string(), "checkpoint": checkpoint.display().to_string(),
            "steps": info.steps, "steps_run": steps, "seconds": seconds, "first_loss": first_loss,
            "final_loss": info.final_loss, "training_images": info.training_images, "device": styletransfer::device::device_name(engine.device()),
            "precision": engine.model().precision().name(),
        });
        println!("{line}");
    }
    Ok(())
}

/// `stylize score`: the loss terms of an image as the result for a
/// content, under the fp32 objective (relative normalisation, default
/// weights at the strength), on the CPU; one JSON line.
pub fn score(args: &ScoreArgs) -> Result<()> {
    let blend = blend_weights(&args.style_blend, args.style.len())?;
    let weights = Weights::with_strength(Weights::defaults(Normalization::Relative), args.strength)?;
    let content = image::load(&args.content)?.rgb;
    let result = image::load(&args.image)?.rgb;
    let mut styles = Vec::with_capacity(args.style.len());
    for (path, weight) in args.style.iter().zip(&blend) {
        styles.push(StyleImage { image: image::load(path)?.rgb, weight: *weight });
    }
    let mut styles = StyleSet::new(styles)?;
    let engine = Engine::new(&EngineOptions {
        model_path: find_model(args.model.as_deref())?,
        device: DeviceChoice::Cpu,
        precision: Some(styletransfer::Precision::Fp32),
        bf16_kernels: None,
        threads: None,
    })?;
    for (path, weight) in args.style_pack.iter().map(|p| pack_argument(p)) {
        styles.add_pack(StylePack::load(&path, engine.model().weights_sha256())?, weight)?;
    }
    let terms = styletransfer::train::score(
        &engine,
        &content,
        &result,
        &mut styles,
        &weights,
        Normalization::Relative,
        args.style_scale,
    )?;
    println!("{}", serde_json::json!({ "image": args.image.display().to_string(), "loss": crate::loss_json(&terms) }));
    Ok(())
}

/// `stylize net`.
pub fn net(command: &NetCommand) -> Result<()> {
    match command {
        NetCommand::Info { path, json } => {
            let info = Network::read_info(path)?;
            if *json {
                let line = serde_json::json!({
                    "name": info.name, "format_version": info.format_version, "library_version": info.library_version,
                    "architecture": styletransfer::network::ARCHITECTURE, "width": info.shape.width,
                    "residual_blocks": info.shape.residual_blocks, "style_sha256": info.style_sha256,
                    "model_sha256": info.model_sha256, "training_images": info.training_images,
                    "training_size": info.training_size, "steps": info.steps, "batch": info.batch, "seed": info.seed,
                    "final_loss": info.final_loss,
                });
                println!("{line}");
            } else {
                println!("name:            {}", info.name);
                println!(
                    "format:          {} (written by styletransfer {})",
                    info.format_version, info.library_version
                );
                println!(
                    "architecture:    {} width {}, {} residual blocks",
                    styletransfer::network::ARCHITECTURE,
                    info.shape.width,
                    info.shape.residual_blocks
                );
                println!("styles:          {}", info.style_sha256.join(", "));
                println!("model:           {}", info.model_sha256);
                println!(
                    "training:        {} images, {}² crops, {} steps of {}, seed {}",
                    info.training_images, info.training_size, info.steps, info.batch, info.seed
                );
                println!("final loss:      {:.6}", info.final_loss);
            }
            Ok(())
        }
    }
}
