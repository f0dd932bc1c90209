//! `stylize`: the command-line front end of the engine.
//!
//! Any error prints one line on stderr and exits with status 2; the output
//! file is written under a temporary name and renamed only on success.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use styletransfer::device::automatic_precision;
use styletransfer::model::find_model;
use styletransfer::network::Network;
use styletransfer::pack::{list_packs, style_dirs};
use styletransfer::run::{default_adam, default_lbfgs, DEFAULT_ADAM_LR};
use styletransfer::{
    image, AdamOptions, DeviceChoice, Engine, EngineOptions, Error, Flow, InferenceOptions, Init, LbfgsOptions,
    LineSearch, LiveWeights, LossTerms, MemoryOptions, Normalization, Optimizer, Plan, Precision, PreserveColor,
    Result, RunOptions, StyleImage, StylePack, StyleSet, Weights,
};
use styletransfer::{NetworkInfo, RgbImage};

mod sequence;
mod train;

#[derive(Parser, Debug)]
#[command(
    name = "stylize",
    version,
    about = "Neural style transfer (Gatys et al.) on libtorch",
    max_term_width = 100,
    args_override_self = true,
    allow_negative_numbers = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Content image (its size is the output size).
    #[arg(long, value_name = "PATH", required = true)]
    content: Option<PathBuf>,
    /// Output image (.png, .jpg, .tif, .bmp, .ppm, .webp).
    #[arg(short = 'o', long, value_name = "PATH", required_unless_present = "plan")]
    output: Option<PathBuf>,
    /// Starting image: content, noise, or an image file.
    #[arg(long, value_name = "content|noise|PATH", default_value = "content")]
    init: String,
    /// Print the memory plan (levels, tiles, estimated peak) and exit.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// The settings a still and a sequence share: styles, weights, optimiser,
/// device, memory, report.
#[derive(Args, Debug)]
struct RunArgs {
    /// Style image; repeat for several styles.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["style_pack", "net"])]
    style: Vec<PathBuf>,
    /// Blend weights of the styles, comma-separated, one per --style.
    #[arg(long, value_name = "W1,W2,...", value_delimiter = ',')]
    style_blend: Option<Vec<f64>>,
    /// Style pack (a file, or the name of a pack in the style folders, as
    /// `stylize pack list` shows), optionally with a blend weight
    /// (`a.stpack:0.7`); repeatable, and combinable with --style.
    #[arg(long, value_name = "PACK[:W]")]
    style_pack: Vec<String>,
    /// Stylise in one pass with a network that `stylize train` made
    /// (.stnet) instead of optimising: --strength, --size, --precision,
    /// --device, --threads, --max-memory-mb, --tile-size,
    /// --preserve-color luminance and --report apply; the styles and the
    /// optimiser's settings do not.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["style", "style_pack"])]
    net: Option<PathBuf>,
    /// Long side of the working image [default: the content's, at most 512;
    /// with --net, the content's].
    #[arg(long, value_name = "N")]
    size: Option<u32>,
    /// Optimiser evaluations per pyramid level.
    #[arg(long, value_name = "N", default_value_t = 200)]
    iterations: usize,
    /// Content weight [default: 1].
    #[arg(long, value_name = "W")]
    content_weight: Option<f64>,
    /// Style weight [default: 5 (relative) or 1000 (reference)].
    #[arg(long, value_name = "W")]
    style_weight: Option<f64>,
    /// Total-variation weight [default: 1 (relative) or 0 (reference)].
    #[arg(long, value_name = "W")]
    tv_weight: Option<f64>,
    /// Style strength 0..1 applied on top of the style weight (0.5 keeps it;
    /// each 0.25 step multiplies it by 10).
    #[arg(long, value_name = "S")]
    strength: Option<f64>,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Lbfgs)]
    optimizer: OptimizerArg,
    /// L-BFGS step length strategy.
    #[arg(long, value_enum, default_value_t = LineSearchArg::Backtracking)]
    line_search: LineSearchArg,
    /// Largest pixel change of L-BFGS's first step, display units, or
    /// `torch` for torch.optim.LBFGS's rule (a step of min(1, 1/|g|₁)) [default: 0.01].
    #[arg(long, value_name = "D|torch", value_parser = parse_first_step)]
    first_step: Option<FirstStep>,
    /// L-BFGS history size.
    #[arg(long, value_name = "N", default_value_t = 100)]
    history: usize,
    /// Adam step, in display units (0..1) per step.
    #[arg(long, value_name = "LR", default_value_t = DEFAULT_ADAM_LR)]
    lr: f64,
    /// Seed for the noise init.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Keep the content's colours: luminance-only transfer, or the style's
    /// colours matched to the content.
    #[arg(long, value_enum)]
    preserve_color: Option<PreserveColorArg>,
    /// Pyramid levels (1 turns multi-scale off) [default: automatic].
    #[arg(long, value_name = "N")]
    scales: Option<usize>,
    /// Style image size relative to the working size.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    style_scale: f64,
    /// Weights of the style layers conv1_1,conv2_1,conv3_1,conv4_1,conv5_1.
    #[arg(long, value_name = "W1,..,W5", value_delimiter = ',')]
    style_layer_weights: Option<Vec<f64>>,
    /// Loss normalisation: relative (default) or reference (that of the usual PyTorch implementation).
    #[arg(long, value_enum, default_value_t = NormalizationArg::Relative)]
    normalization: NormalizationArg,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "auto")]
    device: String,
    /// Convolution precision [default: bf16 on CUDA and on CPUs with native
    /// bfloat16 (AVX-512 BF16, AMX; `ST_CPU_BF16=0|1` overrides the
    /// detection), fp32 on other CPUs]. Targets are computed in fp32 at
    /// every precision; bf16 on a CPU without native bfloat16 is emulated.
    #[arg(long, value_enum)]
    precision: Option<PrecisionArg>,
    /// CPU threads [default: libtorch's choice].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Model file [default: $ST_MODEL, ./models/vgg19.safetensors, or the installed one].
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Print a report at the end (one JSON line on stdout).
    #[arg(long, value_enum)]
    report: Option<ReportArg>,
    /// Memory budget in MiB; levels that would exceed it are optimised in
    /// tiles [default: the device's free memory].
    #[arg(long, value_name = "MIB")]
    max_memory_mb: Option<u64>,
    /// Largest tile side in pixels; larger levels are tiled [default: as the budget allows].
    #[arg(long, value_name = "N")]
    tile_size: Option<u32>,
    /// Overlap between tiles in pixels [default: 64].
    #[arg(long, value_name = "N")]
    tile_overlap: Option<u32>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Style packs: precomputed style statistics for one-click switching.
    #[command(subcommand)]
    Pack(PackCommand),
    /// Stylise the frames of a shot with one engine, each frame following
    /// the previous one (optical flow and a temporal term by default).
    Sequence(Box<sequence::SequenceArgs>),
    /// Distil the styles into a network (.stnet) on a folder of images, for
    /// one-pass stylisation with --net.
    Train(Box<train::TrainArgs>),
    /// Network files.
    #[command(subcommand)]
    Net(train::NetCommand),
    /// Score an image as the result for a content: the loss terms under the
    /// fp32 objective (what the optimiser lowers, and a network is trained
    /// on), as one JSON line.
    Score(Box<train::ScoreArgs>),
    /// Describe the libtorch runtime this program loads: its version, its
    /// CUDA part, the CUDA shim, the CUDA devices. Fails when the version
    /// is not the one this program was built for.
    Runtime,
}

#[derive(Subcommand, Debug)]
enum PackCommand {
    /// Compute a pack from one or more style images.
    Create {
        /// Style image; repeat to blend several.
        #[arg(long, value_name = "PATH", required = true)]
        style: Vec<PathBuf>,
        /// Blend weights, one per --style.
        #[arg(long, value_name = "W1,W2,...", value_delimiter = ',')]
        style_blend: Option<Vec<f64>>,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Output file (.stpack).
        #[arg(short = 'o', long, value_name = "PATH")]
        output: PathBuf,
        /// Model file.
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        /// Device: auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Describe a pack (as JSON with --json); --thumbnail writes its thumbnail.
    Info {
        /// The pack.
        path: PathBuf,
        /// Print one JSON line.
        #[arg(long)]
        json: bool,
        /// Write the thumbnail (PNG) here.
        #[arg(long, value_name = "PATH")]
        thumbnail: Option<PathBuf>,
    },
    /// List the packs in the style folders ($ST_STYLE_PATH, $XDG_DATA_HOME/styletransfer/styles, installed).
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OptimizerArg {
    Lbfgs,
    Adam,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LineSearchArg {
    Fixed,
    StrongWolfe,
    Backtracking,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PreserveColorArg {
    Luminance,
    Histogram,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum NormalizationArg {
    Relative,
    Reference,
}

/// `--first-step`: a largest pixel change, or torch's rule.
#[derive(Clone, Copy, Debug)]
enum FirstStep {
    Torch,
    Change(f64),
}

fn parse_first_step(value: &str) -> std::result::Result<FirstStep, String> {
    if value == "torch" {
        return Ok(FirstStep::Torch);
    }
    match value.parse::<f64>() {
        Ok(change) if change.is_finite() && change > 0.0 => Ok(FirstStep::Change(change)),
        _ => Err(format!("`{value}` is neither a positive number nor `torch`")),
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PrecisionArg {
    Fp32,
    Bf16,
    Fp16,
}

impl PrecisionArg {
    fn precision(self) -> Precision {
        match self {
            PrecisionArg::Fp32 => Precision::Fp32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::Fp16 => Precision::Fp16,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReportArg {
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Some(Command::Pack(command)) => pack(command),
        Some(Command::Runtime) => runtime(),
        Some(Command::Sequence(args)) => sequence::run(args),
        Some(Command::Train(args)) => train::train(args),
        Some(Command::Net(command)) => train::net(command),
        Some(Command::Score(args)) => train::score(args),
        None => run(&cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stylize: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `stylize runtime`.
fn runtime() -> Result<()> {
    use styletransfer::runtime;
    let checked = runtime::check();
    let file = runtime::libtorch_cpu_file().map(|p| p.display().to_string()).unwrap_or_else(|| "?".into());
    let found = runtime::loaded_version().unwrap_or_else(|| "unknown".into());
    println!("libtorch: {found} (built for {}), {file}", runtime::built_version());
    let part = runtime::cuda_part();
    match &part.libtorch_cuda {
        Ok(path) => println!("CUDA part: loaded, {}", path.display()),
        Err(reason) => println!("CUDA part: absent: {reason}"),
    }
    match &part.shim_file {
        Ok(path) => println!("CUDA shim: loaded, {}", path.display()),
        Err(reason) => println!("CUDA shim: absent: {reason}"),
    }
    checked?;
    println!("CUDA devices: {}", if part.libtorch_cuda.is_ok() { tch::Cuda::device_count() } else { 0 });
    Ok(())
}

fn weights(cli: &RunArgs, normalization: Normalization) -> Result<Weights> {
    let defaults = Weights::defaults(normalization);
    let base = Weights {
        content: cli.content_weight.unwrap_or(defaults.content),
        style: cli.style_weight.unwrap_or(defaults.style),
        tv: cli.tv_weight.unwrap_or(defaults.tv),
    };
    base.validate()?;
    match cli.strength {
        Some(s) => Weights::with_strength(base, s),
        None => Ok(base),
    }
}

fn blend_weights(style_blend: &Option<Vec<f64>>, count: usize) -> Result<Vec<f64>> {
    match style_blend {
        Some(blend) if blend.len() != count => {
            Err(Error::invalid("style-blend", format!("{} weights given for {} style images", blend.len(), count)))
        }
        Some(blend) => Ok(blend.clone()),
        None => Ok(vec![1.0; count]),
    }
}

/// `PATH[:WEIGHT]`; a suffix that is not a number belongs to the path.
fn pack_argument(text: &str) -> (PathBuf, f64) {
    let (path, weight) = match text.rsplit_once(':') {
        Some((path, weight)) => match weight.parse::<f64>() {
            Ok(w) => (path, w),
            Err(_) => (text, 1.0),
        },
        None => (text, 1.0),
    };
    (resolve_pack(path), weight)
}

/// The installed `share/styletransfer/styles` beside this program.
fn installed_styles() -> Option<PathBuf> {
    std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join("../share/styletransfer/styles")))
}

/// A pack argument: a file, else the display name of a pack in the style
/// folders (ASCII case-insensitive; the first folder's wins), else the
/// argument as given (loading it then says it is missing).
fn resolve_pack(text: &str) -> PathBuf {
    let path = PathBuf::from(text);
    if path.exists() {
        return path;
    }
    list_packs(&style_dirs(installed_styles().as_deref()))
        .into_iter()
        .find(|entry| entry.name.eq_ignore_ascii_case(text))
        .map(|entry| entry.path)
        .unwrap_or(path)
}

fn pack(command: &PackCommand) -> Result<()> {
    match command {
        PackCommand::Create { style, style_blend, name, output, model, device } => {
            let blend = blend_weights(style_blend, style.len())?;
            let device = DeviceChoice::from_name(device)
                .ok_or_else(|| Error::invalid("device", format!("`{device}` is not auto, cpu, cuda or cuda:N")))?;
            let mut styles = Vec::with_capacity(style.len());
            for (path, weight) in style.iter().zip(&blend) {
                styles.push(StyleImage { image: image::load(path)?.rgb, weight: *weight });
            }
            let engine = Engine::new(&EngineOptions {
                model_path: find_model(model.as_deref())?,
                device,
                // Targets are fp32 at every precision: the pack is the same whichever.
                precision: Some(Precision::Fp32),
                bf16_kernels: None,
                threads: None,
            })?;
            let started = std::time::Instant::now();
            let created = StylePack::create(engine.model(), &styles, name)?;
            created.save(output)?;
            eprintln!(
                "stylize: wrote {} ({} style sizes, {:.1} s)",
                output.display(),
                created.info().sides.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        PackCommand::Info { path, json, thumbnail } => {
            let info = StylePack::read_info(path)?;
            if let Some(out) = thumbnail {
                std::fs::write(out, &info.thumbnail)
                    .map_err(|e| Error::Io { context: format!("writing {}", out.display()), source: e })?;
            }
            if *json {
                let line = serde_json::json!({
                    "name": info.name, "format_version": info.format_version, "library_version": info.library_version,
                    "model_sha256": info.model_sha256, "source_sha256": info.source_sha256, "blend": info.blend,
                    "layers": info.layers, "sides": info.sides, "thumbnail_bytes": info.thumbnail.len(),
                });
                println!("{line}");
            } else {
                println!("name:            {}", info.name);
                println!(
                    "format:          {} (written by styletransfer {})",
                    info.format_version, info.library_version
                );
                println!("model:           {}", info.model_sha256);
                println!("sources:         {}", info.source_sha256.join(", "));
                println!("blend:           {:?}", info.blend);
                println!("layers:          {}", info.layers.join(", "));
                println!("style sizes:     {:?}", info.sides);
                println!("thumbnail:       {} bytes of PNG", info.thumbnail.len());
            }
            Ok(())
        }
        PackCommand::List => {
            for entry in list_packs(&style_dirs(installed_styles().as_deref())) {
                println!("{}\t{}", entry.name, entry.path.display());
            }
            Ok(())
        }
    }
}

/// What a still and a sequence both set up: the engine (the model loaded
/// once), the styles, the run options and the weights.
struct Setup {
    engine: Engine,
    styles: StyleSet,
    options: RunOptions,
    weights: LiveWeights,
}

/// What [`check_args`] finds: the normalisation, the weights, the style
/// blend, the style layer weights, the device.
type Checked = (Normalization, Weights, Vec<f64>, [f64; 5], DeviceChoice);

/// Checks what `args` can be checked without loading anything.
fn check_args(args: &RunArgs) -> Result<Checked> {
    let normalization = match args.normalization {
        NormalizationArg::Relative => Normalization::Relative,
        NormalizationArg::Reference => Normalization::Reference,
    };
    let weights = weights(args, normalization)?;
    let blend = blend_weights(&args.style_blend, args.style.len())?;
    let style_layer_weights = match &args.style_layer_weights {
        None => [1.0; 5],
        Some(w) => <[f64; 5]>::try_from(w.as_slice())
            .map_err(|_| Error::invalid("style-layer-weights", format!("{} values given, 5 expected", w.len())))?,
    };
    let device = DeviceChoice::from_name(&args.device)
        .ok_or_else(|| Error::invalid("device", format!("`{}` is not auto, cpu, cuda or cuda:N", args.device)))?;
    Ok((normalization, weights, blend, style_layer_weights, device))
}

/// Loads the styles and the model and builds the run options (`init` as given).
fn setup(args: &RunArgs, init: Init) -> Result<Setup> {
    let (normalization, weights, blend, style_layer_weights, device) = check_args(args)?;
    let weights = LiveWeights::new(weights)?;
    let mut styles = Vec::with_capacity(args.style.len());
    for (path, weight) in args.style.iter().zip(&blend) {
        styles.push(StyleImage { image: image::load(path)?.rgb, weight: *weight });
    }
    let mut styles = StyleSet::new(styles)?;
    let packs: Vec<(PathBuf, f64)> = args.style_pack.iter().map(|p| pack_argument(p)).collect();
    let model_path = find_model(args.model.as_deref())?;
    let engine = Engine::new(&EngineOptions {
        model_path,
        device,
        precision: args.precision.map(PrecisionArg::precision),
        bf16_kernels: None,
        threads: args.threads,
    })?;
    for (path, weight) in packs {
        styles.add_pack(StylePack::load(&path, engine.model().weights_sha256())?, weight)?;
    }
    let optimizer = match args.optimizer {
        OptimizerArg::Lbfgs => Optimizer::Lbfgs(LbfgsOptions {
            history: args.history,
            first_step: match args.first_step {
                None => default_lbfgs().first_step,
                Some(FirstStep::Torch) => None,
                Some(FirstStep::Change(change)) => Some(change),
            },
            line_search: match args.line_search {
                LineSearchArg::Fixed => LineSearch::Fixed,
                LineSearchArg::StrongWolfe => LineSearch::StrongWolfe,
                LineSearchArg::Backtracking => LineSearch::Backtracking,
            },
            ..default_lbfgs()
        }),
        OptimizerArg::Adam => Optimizer::Adam(AdamOptions { lr: args.lr, ..default_adam() }),
    };
    let options = RunOptions {
        iterations: args.iterations,
        scales: args.scales,
        size: args.size,
        optimizer,
        init,
        seed: args.seed,
        preserve_color: match args.preserve_color {
            None => PreserveColor::Off,
            Some(PreserveColorArg::Luminance) => PreserveColor::Luminance,
            Some(PreserveColorArg::Histogram) => PreserveColor::Histogram,
        },
        normalization,
        style_layer_weights,
        style_scale: args.style_scale,
        memory: MemoryOptions {
            max_memory_mb: args.max_memory_mb,
            tile_size: args.tile_size,
            tile_overlap: args.tile_overlap,
        },
    };
    Ok(Setup { engine, styles, options, weights })
}

/// A progress bar on stderr when it is a terminal.
fn progress_bar(template: &str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar
    })
}

/// The loss terms as JSON.
fn loss_json(loss: &LossTerms) -> serde_json::Value {
    serde_json::json!({
        "content": loss.content, "style": loss.style, "tv": loss.tv, "temporal": loss.temporal, "total": loss.total,
    })
}

fn run(cli: &Cli) -> Result<()> {
    let Some(content_path) = &cli.content else {
        return Err(Error::invalid("content", "--content is required"));
    };
    let output_path = match (&cli.output, cli.plan) {
        (Some(path), _) => path.as_path(),
        (None, true) => Path::new(""),
        (None, false) => return Err(Error::invalid("output", "--output is required")),
    };
    // Everything that can be checked cheaply is checked before the model loads.
    if !cli.plan {
        image::output_format(output_path)?;
    }
    if let Some(net) = &cli.run.net {
        return run_network(cli, net, content_path, output_path);
    }
    check_args(&cli.run)?;
    let content = image::load(content_path)?;
    styletransfer::memory::trace_memory("content loaded");
    let init = match cli.init.as_str() {
        "content" => Init::Content,
        "noise" => Init::Noise,
        path => Init::Image(image::load(Path::new(path))?.rgb),
    };
    let Setup { engine, mut styles, options, weights } = setup(&cli.run, init)?;
    if cli.plan {
        let plan = engine.plan((content.rgb.width(), content.rgb.height()), &styles, &options)?;
        match cli.run.report {
            Some(ReportArg::Json) => println!("{}", plan_json(&plan)),
            None => print!("{}", plan.describe()),
        }
        return Ok(());
    }
    let bar = progress_bar("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}");
    let output = engine.run(&content.rgb, &mut styles, &options, &weights, &mut |p| {
        if let Some(bar) = &bar {
            bar.set_length(p.total_evaluations as u64);
            bar.set_position(p.evaluation as u64);
            bar.set_message(format!(
                "level {}/{} {}×{} loss {:.4e}",
                p.scale_index + 1,
                p.scales,
                p.width,
                p.height,
                p.loss.total
            ));
        }
        Flow::Continue
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let output = output?;
    styletransfer::memory::trace_memory("run");
    image::save(output_path, &output.image, content.alpha.as_deref(), content.high_depth)?;
    styletransfer::memory::trace_memory("saved");
    if cli.run.report.is_some() {
        let r = &output.report;
        let levels: Vec<_> = r.levels.iter().map(|(w, h)| serde_json::json!([w, h])).collect();
        let working = r.levels.last().copied().unwrap_or_default();
        let line = serde_json::json!({
            "output": output_path.display().to_string(),
            "loss": loss_json(&r.loss),
            "evaluations": r.evaluations,
            "seconds": r.seconds,
            "device": r.device,
            "precision": r.precision.name(),
            "bf16_emulated": r.bf16_emulated,
            "content_size": [r.content_size.0, r.content_size.1],
            "working_size": [working.0, working.1],
            "output_size": [output.image.width(), output.image.height()],
            "levels": levels,
            "plan": plan_json(&r.plan),
            "peak_memory_mb": peak_memory_bytes(&r.device).map(|b| b as f64 / (1024.0 * 1024.0)),
        });
        println!("{line}");
    }
    Ok(())
}

/// A network loaded for `--net`, with the run's settings that apply to it.
struct NetRunner {
    network: Network,
    info: NetworkInfo,
    strength: f64,
    size: Option<u32>,
    luminance: bool,
    options: InferenceOptions,
    device: tch::Device,
}

impl NetRunner {
    /// Checks the settings that apply to a network run and loads `net`.
    fn new(args: &RunArgs, net: &Path) -> Result<Self> {
        if matches!(args.preserve_color, Some(PreserveColorArg::Histogram)) {
            let reason = "histogram matching recolours the style images; use luminance with --net";
            return Err(Error::invalid("preserve-color", reason));
        }
        let device = DeviceChoice::from_name(&args.device)
            .ok_or_else(|| Error::invalid("device", format!("`{}` is not auto, cpu, cuda or cuda:N", args.device)))?;
        match args.threads {
            Some(0) => return Err(Error::invalid("threads", "must be at least 1")),
            Some(threads) => tch::set_num_threads(threads as i32),
            None => {}
        }
        let device = device.resolve()?;
        let precision = args.precision.map(PrecisionArg::precision).unwrap_or_else(|| automatic_precision(device));
        let (network, info) = Network::load(net, device)?;
        Ok(Self {
            network,
            info,
            strength: args.strength.unwrap_or(0.5),
            size: args.size,
            luminance: matches!(args.preserve_color, Some(PreserveColorArg::Luminance)),
            options: InferenceOptions {
                precision,
                budget_bytes: args.max_memory_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
                tile_size: args.tile_size,
            },
            device,
        })
    }

    /// Stylises `content` (at `--size` when given, the result resampled back
    /// to the content's size); returns the image, the working size and the
    /// number of tile passes.
    fn stylize(&mut self, content: &RgbImage) -> Result<(RgbImage, (u32, u32), usize)> {
        let working = Network::working_size(content.width(), content.height(), self.size);
        let bar = progress_bar("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} passes");
        let result = self.network.stylize_at(
            content,
            self.strength,
            self.size,
            self.luminance,
            &self.options,
            &mut |done, total| {
                if let Some(bar) = &bar {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                }
                Flow::Continue
            },
        );
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let (image, passes) = result?;
        Ok((image, working, passes))
    }

    fn device_name(&self) -> String {
        styletransfer::device::device_name(self.device)
    }
}

/// `stylize --net`: one pass of a network over the content.
fn run_network(cli: &Cli, net: &Path, content_path: &Path, output_path: &Path) -> Result<()> {
    if cli.plan {
        return Err(Error::invalid("plan", "--plan describes optimisation runs, not --net"));
    }
    if cli.init != "content" {
        return Err(Error::invalid("init", "a network starts from nothing but the content; --init does not apply"));
    }
    let started = std::time::Instant::now();
    let mut runner = NetRunner::new(&cli.run, net)?;
    let content = image::load(content_path)?;
    let (image, working, passes) = runner.stylize(&content.rgb)?;
    let seconds = started.elapsed().as_secs_f64();
    image::save(output_path, &image, content.alpha.as_deref(), content.high_depth)?;
    if cli.run.report.is_some() {
        let device = runner.device_name();
        let line = serde_json::json!({
            "output": output_path.display().to_string(),
            "network": runner.info.name,
            "strength": runner.strength,
            "seconds": seconds,
            "device": device,
            "precision": runner.options.precision.name(),
            "content_size": [image.width(), image.height()],
            "working_size": [working.0, working.1],
            "passes": passes,
            "tiled": passes > 1,
            "peak_memory_mb": peak_memory_bytes(&device).map(|b| b as f64 / (1024.0 * 1024.0)),
        });
        println!("{line}");
    }
    Ok(())
}

/// Peak memory of the run's device: the CUDA caching allocator's peak
/// reservation, or this process's peak resident size on the CPU.
fn peak_memory_bytes(device: &str) -> Option<u64> {
    match device.strip_prefix("cuda:").and_then(|i| i.parse::<usize>().ok()) {
        Some(index) => styletransfer::cuda::memory_stats(index).map(|s| s.reserved_peak),
        None => styletransfer::memory::peak_rss_bytes(),
    }
}

/// The memory plan as JSON (sizes in MiB).
fn plan_json(plan: &Plan) -> serde_json::Value {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let levels: Vec<_> = plan
        .levels
        .iter()
        .map(|l| {
            serde_json::json!({
                "size": [l.width, l.height],
                "tiles": l.tiles.zip(l.axes()).map(|(g, (columns, rows))| serde_json::json!({
                    "columns": columns.tiles.len(), "rows": rows.tiles.len(), "tile": g.tile,
                    "overlap": g.overlap, "shifted": l.shifted, "x_cuts": columns.cuts, "y_cuts": rows.cuts,
                })),
                "peak_mb": mib(l.peak_bytes),
            })
        })
        .collect();
    serde_json::json!({
        "budget_mb": plan.budget_bytes.map(mib),
        "budget_source": plan.budget_source,
        "peak_mb": mib(plan.peak_bytes),
        "model_mb": mib(plan.model_bytes),
        "runtime_mb": mib(plan.runtime_bytes),
        "levels": levels,
    })
}
