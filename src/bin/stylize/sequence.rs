//! `stylize sequence`: one engine over the frames of a shot.
//!
//! The model is loaded and the style targets are computed once; each frame
//! then runs as [`Engine::run_frame`] says, following the previous one. Every
//! input is checked before the model loads: the frames exist and share one
//! size, the output pattern has a frame field, its folder is writable. Each
//! frame is written under a temporary name and renamed, so an output file
//! that exists is complete; `--resume` skips those. The previous output a
//! frame follows is always read back from the file written, so a resumed
//! run computes what an uninterrupted one does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use styletransfer::image::{self, LoadedImage};
use styletransfer::sequence::DEFAULT_TEMPORAL_WEIGHT;
use styletransfer::{Error, Flow, FrameInput, FrameOptions, Previous, Result, RgbImage, RunOptions, Temporal};

use crate::{loss_json, progress_bar, setup, Init, RunArgs, Setup};

/// `stylize sequence`'s arguments.
#[derive(Args, Debug)]
pub struct SequenceArgs {
    /// Content frames: a pattern with a frame field (`in/frame_%04d.png`,
    /// `%d`), a glob (`'in/*.png'`, sorted by name) or a folder (its images,
    /// sorted by name). Frames of a glob or a folder are numbered from 1.
    #[arg(long, value_name = "PATTERN|GLOB|DIR")]
    content: String,
    /// Output frames: a pattern with a frame field; frame N of the input is
    /// written as frame N.
    #[arg(short = 'o', long, value_name = "PATTERN")]
    output: String,
    /// Frames to render, `A-B` (inclusive) or `N` [default: every frame found].
    #[arg(long, value_name = "A-B")]
    frames: Option<String>,
    /// How a frame follows the previous one: off (independent frames), init
    /// (start from the previous output as it is), flow (start from it warped
    /// by the optical flow, and keep close to it where the flow is reliable).
    #[arg(long, value_enum, default_value_t = TemporalArg::Flow)]
    temporal: TemporalArg,
    /// Weight of the temporal term (flow mode).
    #[arg(long, value_name = "W", default_value_t = DEFAULT_TEMPORAL_WEIGHT)]
    temporal_weight: f64,
    /// Evaluations per level of a frame run on its own: the first, and every
    /// frame with --temporal off [default: --iterations].
    #[arg(long, value_name = "N")]
    first_iterations: Option<usize>,
    /// Before the first frame of --frames, run this many frames before it
    /// without writing them, so that the chunk does not start cold. (It does
    /// not make a chunk join one rendered apart: see README, "Frame
    /// sequences".)
    #[arg(long, value_name = "K", default_value_t = 0)]
    warmup: usize,
    /// Skip frames whose output exists (outputs are renamed into place
    /// complete, so one that exists is finished).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TemporalArg {
    Off,
    Init,
    Flow,
}

/// A file name with one frame field: `prefix`, the number (at least `width`
/// digits, zero-padded), `suffix`.
#[derive(Debug)]
struct Pattern {
    prefix: String,
    width: usize,
    suffix: String,
}

impl Pattern {
    /// Parses `%d` or `%0Nd` (one of them, once; `%%` is a literal `%`).
    /// `None` when the text has no field.
    fn parse(text: &str, what: &'static str) -> Result<Option<Self>> {
        let mut prefix = String::new();
        let mut field: Option<(usize, String)> = None;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                match &mut field {
                    Some((_, suffix)) => suffix.push(c),
                    None => prefix.push(c),
                }
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                match &mut field {
                    Some((_, suffix)) => suffix.push('%'),
                    None => prefix.push('%'),
                }
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            if chars.next() != Some('d') || (!digits.is_empty() && !digits.starts_with('0') && digits != "0") {
                return Err(Error::invalid(what, format!("`{text}`: only %d and %0Nd frame fields are understood")));
            }
            if field.is_some() {
                return Err(Error::invalid(what, format!("`{text}` has more than one frame field")));
            }
            let width = digits.parse::<usize>().unwrap_or(0);
            if width > 12 {
                return Err(Error::invalid(what, format!("`{text}`: a frame field of {width} digits")));
            }
            field = Some((width, String::new()));
        }
        if field.as_ref().is_some_and(|(_, suffix)| suffix.contains('/')) {
            return Err(Error::invalid(what, format!("`{text}`: the frame field must be in the file name")));
        }
        Ok(field.map(|(width, suffix)| Self { prefix, width, suffix }))
    }

    fn path(&self, number: u64) -> PathBuf {
        PathBuf::from(format!("{}{:0width$}{}", self.prefix, number, self.suffix, width = self.width))
    }

    /// The frame numbers of the files in the pattern's folder that it names.
    fn scan(&self) -> Result<Vec<u64>> {
        let (folder, name_prefix) = match self.prefix.rfind('/') {
            Some(i) => (PathBuf::from(&self.prefix[..=i]), &self.prefix[i + 1..]),
            None => (PathBuf::from("."), self.prefix.as_str()),
        };
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| Error::invalid("content", format!("cannot read the folder {}: {e}", folder.display())))?;
        let mut numbers = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(middle) = name.strip_prefix(name_prefix).and_then(|rest| rest.strip_suffix(&self.suffix)) else {
                continue;
            };
            if middle.is_empty() || !middle.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(number) = middle.parse::<u64>() {
                if self.path(number).file_name().is_some_and(|n| n.to_string_lossy() == name) {
                    numbers.push(number);
                }
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }
}

/// The folder a path is in (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Parses `A-B` or `N`.
fn parse_range(text: &str) -> Result<(u64, u64)> {
    let bad = || Error::invalid("frames", format!("`{text}` is not A-B or N (frame numbers, A ≤ B)"));
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u64>().map_err(|_| bad())?, b.trim().parse::<u64>().map_err(|_| bad())?),
        None => {
            let n = text.trim().parse::<u64>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// A frame's number and file.
type Numbered = (u64, PathBuf);

/// The input's frames: number → file, in order, every one present.
struct Frames {
    all: Vec<Numbered>,
}

impl Frames {
    fn resolve(content: &str) -> Result<(Self, Option<Pattern>)> {
        // A folder first: its name may hold a `%`.
        let pattern = if Path::new(content).is_dir() { None } else { Pattern::parse(content, "content")? };
        if let Some(pattern) = pattern {
            let all = pattern.scan()?.into_iter().map(|n| (n, pattern.path(n))).collect();
            return Ok((Self { all }, Some(pattern)));
        }
        let Some(files) = folder_or_glob(content, "content")? else {
            return Err(Error::invalid(
                "content",
                format!("`{content}` has no frame field (%d, %04d), is not a folder and is not a glob"),
            ));
        };
        if files.is_empty() {
            return Err(Error::invalid("content", format!("no frame found in `{content}`")));
        }
        Ok((Self { all: files.into_iter().enumerate().map(|(i, p)| (i as u64 + 1, p)).collect() }, None))
    }

    /// The frames of `range` (every one must be there) and up to `warmup`
    /// frames just before it.
    fn select(
        &self,
        range: Option<(u64, u64)>,
        warmup: usize,
        pattern: Option<&Pattern>,
    ) -> Result<(Vec<Numbered>, Vec<Numbered>)> {
        let (Some(first), Some(last)) = (self.all.first(), self.all.last()) else {
            let hint = pattern.map(|p| p.path(1).display().to_string()).unwrap_or_default();
            return Err(Error::invalid("content", format!("no frame found (looked for files like {hint})")));
        };
        let (a, b) = range.unwrap_or((first.0, last.0));
        let present = |n: u64| self.all.binary_search_by_key(&n, |f| f.0).ok().map(|i| self.all[i].clone());
        let mut missing = Vec::new();
        let mut frames = Vec::new();
        for n in a..=b {
            match present(n) {
                Some(frame) => frames.push(frame),
                None => missing.push(n),
            }
            if missing.len() > 5 {
                break;
            }
        }
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .take(5)
                .map(|&n| pattern.map_or_else(|| format!("#{n}"), |p| p.path(n).display().to_string()))
                .collect();
            let more = if missing.len() > 5 { ", …" } else { "" };
            return Err(Error::invalid("content", format!("frames {a}-{b}: missing {}{more}", names.join(", "))));
        }
        let mut before = Vec::new();
        let mut n = a;
        while before.len() < warmup && n > 0 {
            n -= 1;
            match present(n) {
                Some(frame) => before.push(frame),
                None => break,
            }
        }
        before.reverse();
        Ok((before, frames))
    }
}

/// The image files of a folder, or the files a glob matches, sorted by
/// name; `None` when `spec` is neither. `what` names the argument in errors.
pub(crate) fn folder_or_glob(spec: &str, what: &'static str) -> Result<Option<Vec<PathBuf>>> {
    let path = Path::new(spec);
    let mut files: Vec<PathBuf> = if path.is_dir() {
        let entries =
            std::fs::read_dir(path).map_err(|e| Error::invalid(what, format!("cannot read the folder {spec}: {e}")))?;
        entries.flatten().map(|e| e.path()).filter(|p| p.is_file() && is_image_name(p)).collect()
    } else if spec.contains(['*', '?', '[']) {
        let paths = glob::glob(spec).map_err(|e| Error::invalid(what, format!("`{spec}` is not a valid glob: {e}")))?;
        paths.flatten().filter(|p| p.is_file()).collect()
    } else {
        return Ok(None);
    };
    files.sort();
    Ok(Some(files))
}

fn is_image_name(path: &Path) -> bool {
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    matches!(extension.as_str(), "png" | "jpg" | "jpeg" | "tif" | "tiff" | "bmp" | "ppm" | "pgm" | "pnm" | "webp")
}

/// Every frame has the first one's size.
fn check_sizes(frames: &[(u64, PathBuf)]) -> Result<(u32, u32)> {
    let size_of = |path: &Path| {
        ::image::image_dimensions(path)
            .map_err(|e| Error::invalid("content", format!("{}: cannot read the image size: {e}", path.display())))
    };
    let first = size_of(&frames[0].1)?;
    for (_, path) in &frames[1..] {
        let size = size_of(path)?;
        if size != first {
            return Err(Error::invalid(
                "content",
                format!(
                    "frames of different sizes: {} is {}×{}, {} is {}×{}",
                    frames[0].1.display(),
                    first.0,
                    first.1,
                    path.display(),
                    size.0,
                    size.1
                ),
            ));
        }
    }
    Ok(first)
}

/// The output folder exists (made if need be) and takes a new file.
fn check_writable(folder: &Path) -> Result<()> {
    let unwritable = |e: std::io::Error| Error::invalid("output", format!("cannot write to {}: {e}", folder.display()));
    std::fs::create_dir_all(folder).map_err(unwritable)?;
    let probe = folder.join(format!(".stylize-write-check.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(unwritable)?;
    std::fs::remove_file(&probe).map_err(unwritable)
}

/// Removes the temporary files an interrupted run left for `outputs`
/// (`image::save` writes `.NAME.PID.tmp` beside `NAME`), unless their
/// process still runs (a concurrent run writing the same frames).
fn remove_stale_partials(folder: &Path, outputs: &[PathBuf]) {
    let names: std::collections::HashSet<String> =
        outputs.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { continue };
        let Some((frame, pid)) = stem.rsplit_once('.') else { continue };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if names.contains(frame) && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One frame to process.
struct Job {
    number: u64,
    input: PathBuf,
    /// `None` for a warm-up frame (not written).
    output: Option<PathBuf>,
}

pub fn run(args: &SequenceArgs) -> Result<()> {
    // Everything is checked before the model loads.
    let Some(output_pattern) = Pattern::parse(&args.output, "output")? else {
        return Err(Error::invalid("output", format!("`{}` has no frame field (%d, %04d)", args.output)));
    };
    image::output_format(&output_pattern.path(1))?;
    if !(args.temporal_weight.is_finite() && args.temporal_weight >= 0.0) {
        return Err(Error::invalid(
            "temporal-weight",
            format!("{} is not a finite non-negative number", args.temporal_weight),
        ));
    }
    if args.first_iterations == Some(0) || args.run.iterations == 0 {
        return Err(Error::invalid("iterations", "must be at least 1"));
    }
    crate::check_args(&args.run)?;
    let range = args.frames.as_deref().map(parse_range).transpose()?;
    let (frames, pattern) = Frames::resolve(&args.content)?;
    let (warmup, selected) = frames.select(range, args.warmup, pattern.as_ref())?;
    let all: Vec<(u64, PathBuf)> = warmup.iter().chain(&selected).cloned().collect();
    let size = check_sizes(&all)?;
    let folder = folder_of(&output_pattern.path(selected[0].0));
    check_writable(&folder)?;
    let outputs: Vec<PathBuf> = selected.iter().map(|(n, _)| output_pattern.path(*n)).collect();
    remove_stale_partials(&folder, &outputs);
    if outputs.iter().any(|o| all.iter().any(|(_, input)| input == o)) {
        return Err(Error::invalid("output", "the output pattern names the input frames"));
    }
    let mut jobs: Vec<Job> =
        warmup.iter().map(|(number, input)| Job { number: *number, input: input.clone(), output: None }).collect();
    jobs.extend(selected.iter().zip(&outputs).map(|((number, input), output)| Job {
        number: *number,
        input: input.clone(),
        output: Some(output.clone()),
    }));
    // With --resume, frames already written are skipped; warm-up is only needed
    // when the run starts at the first selected frame.
    if args.resume && outputs[0].is_file() {
        jobs.retain(|j| j.output.is_some());
    }

    if let Some(net) = &args.run.net {
        return network_frames(args, net, &jobs);
    }
    if matches!(args.temporal, TemporalArg::Flow) && jobs.len() > 1 {
        // Loaded now, so that a missing OpenCV fails before any frame is written.
        styletransfer::runtime::flow_shim()?;
    }
    let started = Instant::now();
    let Setup { engine, mut styles, options, weights } = setup(&args.run, Init::Content)?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let options = RunOptions { iterations: args.first_iterations.unwrap_or(args.run.iterations), ..options };
    let temporal = match args.temporal {
        TemporalArg::Off => Temporal::Off,
        TemporalArg::Init => Temporal::Init,
        TemporalArg::Flow => Temporal::Flow,
    };
    let frame_options =
        FrameOptions { temporal, temporal_weight: args.temporal_weight, iterations: Some(args.run.iterations) };
    let targets_started = Instant::now();
    engine.prepare_targets(size, &mut styles, &options)?;
    let targets_seconds = targets_started.elapsed().as_secs_f64();
    let json = args.run.report.is_some();

    let bar = progress_bar("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} frames, ETA {eta} {msg}");
    if let Some(bar) = &bar {
        bar.set_length(jobs.len() as u64);
    }
    let mut previous: Option<(RgbImage, RgbImage)> = None;
    let mut previous_number: Option<u64> = None;
    let (mut computed, mut skipped, mut later_seconds, mut later_frames, mut first_seconds) = (0, 0, 0.0, 0, None);
    let (mut frame_seconds, mut frames_run) = (0.0, 0);
    for job in &jobs {
        let follows = previous_number.is_some_and(|n| n + 1 == job.number);
        if !follows {
            previous = None;
        }
        let content: LoadedImage = image::load(&job.input)?;
        if let Some(output) = job.output.as_ref().filter(|o| args.resume && o.is_file()) {
            let written = image::load(output)?.rgb;
            if (written.width(), written.height()) != (content.rgb.width(), content.rgb.height()) {
                return Err(Error::invalid("resume", format!("{} does not have the frames' size", output.display())));
            }
            previous = Some((content.rgb, written));
            previous_number = Some(job.number);
            skipped += 1;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"frame": job.number, "output": output.display().to_string(), "skipped": true})
                );
            }
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            continue;
        }
        let mut start_loss = None;
        let label = if job.output.is_some() {
            format!("frame {}", job.number)
        } else {
            format!("warm-up frame {}", job.number)
        };
        let frame = engine.run_frame(
            FrameInput {
                content: &content.rgb,
                previous: previous.as_ref().map(|(c, o)| Previous { content: c, output: o }),
            },
            &mut styles,
            &options,
            &frame_options,
            &weights,
            &mut |p| {
                if p.evaluation == 1 {
                    start_loss = Some(p.loss);
                }
                if let Some(bar) = &bar {
                    bar.set_message(format!("{label}: {}/{}", p.evaluation, p.total_evaluations));
                }
                Flow::Continue
            },
        )?;
        let seconds = frame.output.report.seconds;
        frame_seconds += seconds;
        frames_run += 1;
        match frame.frame.temporal {
            Temporal::Off => first_seconds = first_seconds.or(Some(seconds)),
            _ => {
                later_seconds += seconds;
                later_frames += 1;
            }
        }
        let kept = match &job.output {
            Some(path) => {
                image::save(path, &frame.output.image, content.alpha.as_deref(), content.high_depth)?;
                computed += 1;
                // What the next frame follows is what was written.
                image::load(path)?.rgb
            }
            None => frame.output.image.clone(),
        };
        if json {
            let r = &frame.output.report;
            println!(
                "{}",
                serde_json::json!({
                    "frame": job.number,
                    "input": job.input.display().to_string(),
                    "output": job.output.as_ref().map(|p| p.display().to_string()),
                    "warmup": job.output.is_none(),
                    "temporal": frame.frame.temporal.name(),
                    "loss": loss_json(&r.loss),
                    "start_loss": start_loss.as_ref().map(loss_json),
                    "evaluations": r.evaluations,
                    "seconds": r.seconds,
                    "flow_seconds": frame.frame.flow_seconds,
                    "reliable": frame.frame.reliable,
                    "levels": r.levels.iter().map(|(w, h)| serde_json::json!([w, h])).collect::<Vec<_>>(),
                    "precision": r.precision.name(),
                    "device": r.device,
                })
            );
        }
        previous = Some((content.rgb, kept));
        previous_number = Some(job.number);
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"summary": {
                "frames_written": computed,
                "frames_skipped": skipped,
                "warmup_frames": jobs.iter().filter(|j| j.output.is_none()).count(),
                "model_loads": 1,
                "setup_seconds": setup_seconds,
                "targets_seconds": targets_seconds,
                "targets_computed": styles.targets_computed(),
                "first_frame_seconds": first_seconds,
                "mean_frame_seconds": (frames_run > 0).then(|| frame_seconds / frames_run as f64),
                "mean_later_frame_seconds": (later_frames > 0).then(|| later_seconds / later_frames as f64),
                "seconds": started.elapsed().as_secs_f64(),
            }})
        );
    }
    Ok(())
}

/// `stylize sequence --net`: every frame one pass of the network, on its
/// own (the result depends on the frame alone, so there is nothing to warm
/// up and nothing to follow).
fn network_frames(args: &SequenceArgs, net: &Path, jobs: &[Job]) -> Result<()> {
    let started = Instant::now();
    let mut runner = crate::NetRunner::new(&args.run, net)?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let json = args.run.report.is_some();
    let bar = progress_bar("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} frames, ETA {eta} {msg}");
    let outputs: Vec<(&Job, &PathBuf)> = jobs.iter().filter_map(|j| j.output.as_ref().map(|o| (j, o))).collect();
    if let Some(bar) = &bar {
        bar.set_length(outputs.len() as u64);
    }
    let (mut computed, mut skipped, mut frame_seconds) = (0, 0, 0.0);
    for (job, output) in outputs {
        if args.resume && output.is_file() {
            skipped += 1;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"frame": job.number, "output": output.display().to_string(), "skipped": true})
                );
            }
        } else {
            let frame_started = Instant::now();
            let content = image::load(&job.input)?;
            let (stylised, _, passes) = runner.stylize(&content.rgb)?;
            image::save(output, &stylised, content.alpha.as_deref(), content.high_depth)?;
            let seconds = frame_started.elapsed().as_secs_f64();
            frame_seconds += seconds;
            computed += 1;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "frame": job.number, "input": job.input.display().to_string(),
                        "output": output.display().to_string(), "engine": "network", "passes": passes,
                        "seconds": seconds, "precision": runner.options.precision.name(), "device": runner.device_name(),
                    })
                );
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"summary": {
                "frames_written": computed, "frames_skipped": skipped, "engine": "network",
                "setup_seconds": setup_seconds,
                "mean_frame_seconds": (computed > 0).then(|| frame_seconds / computed as f64),
                "seconds": started.elapsed().as_secs_f64(),
            }})
        );
    }
    Ok(())
}
