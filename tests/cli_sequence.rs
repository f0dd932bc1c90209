//! `stylize sequence`: a frame sequence run with one engine (one JSON line
//! per frame, the style applied, the temporal term on), `--resume` after a
//! kill, a chunk with warm-up frames, and bad input failing with one line,
//! exit status 2 and no output.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{root, run_python, sample, scratch, stylize};

/// A 64×48 synthetic pan of `frames` frames (tools/make_sequence.py) in `dir/in`.
fn make_frames(dir: &Path, frames: u32) -> PathBuf {
    let input = dir.join("in");
    run_python(
        &root().join("tools/make_sequence.py"),
        &["--kind", "pan", "--frames", &frames.to_string(), "--size", "64x48", "--out", input.to_str().unwrap()],
    );
    input
}

/// The arguments of a small, reproducible sequence run.
fn sequence_args(input: &Path, output: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sequence",
        "--content",
        &format!("{}/frame_%04d.png", input.display()),
        "-o",
        &format!("{}/out_%04d.png", output.display()),
        "--style",
        sample("starry_night.jpg").to_str().unwrap(),
        "--first-iterations",
        "16",
        "--iterations",
        "10",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> std::process::Output {
    stylize(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn json_lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_sequence_runs_every_frame_with_one_engine() {
    let dir = scratch("sequence-run");
    let input = make_frames(&dir, 4);
    let out = dir.join("out");
    let output = run(&sequence_args(&input, &out, &["--report", "json"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 5, "four frames and a summary: {lines:?}");
    for (i, line) in lines[..4].iter().enumerate() {
        assert_eq!(line["frame"], i as u64 + 1);
        assert_eq!(line["temporal"], if i == 0 { "off" } else { "flow" });
        assert_eq!(line["evaluations"], if i == 0 { 16 } else { 10 });
        // The style was applied: the style term fell well below the content frame's.
        let start = lines[0]["start_loss"]["style"].as_f64().unwrap();
        let end = line["loss"]["style"].as_f64().unwrap();
        assert!(end < 0.6 * start, "frame {}: style term {end} against the content's {start}", i + 1);
        if i > 0 {
            assert!(line["loss"]["temporal"].as_f64().unwrap() > 0.0, "frame {} has no temporal term", i + 1);
            assert!(line["reliable"].as_f64().unwrap() > 0.5, "{line}");
        }
    }
    let summary = &lines[4]["summary"];
    assert_eq!(summary["model_loads"], 1);
    assert_eq!(summary["frames_written"], 4);
    // One pyramid level at 64 px: its style targets are computed once, before the frames.
    assert_eq!(summary["targets_computed"], 1, "{summary}");
    assert_eq!(files(&out), ["out_0001.png", "out_0002.png", "out_0003.png", "out_0004.png"]);
}

#[test]
fn resume_after_a_kill_gives_the_frames_of_an_uninterrupted_run() {
    let dir = scratch("sequence-resume");
    let input = make_frames(&dir, 6);
    let whole = dir.join("whole");
    let output = run(&sequence_args(&input, &whole, &[]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Killed once its third frame is written.
    let resumed = dir.join("resumed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stylize"))
        .args(sequence_args(&input, &resumed, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stylize");
    let started = Instant::now();
    while !resumed.join("out_0003.png").exists() {
        assert!(started.elapsed() < Duration::from_secs(300), "frame 3 never appeared");
        assert!(child.try_wait().unwrap().is_none(), "stylize ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill stylize");
    child.wait().unwrap();
    let written = files(&resumed).into_iter().filter(|n| n.starts_with("out_")).count();
    assert!(written < 6, "the run finished before it was killed");
    let output = run(&sequence_args(&input, &resumed, &["--resume", "--report", "json"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let skipped = json_lines(&output).iter().filter(|l| l["skipped"] == true).count();
    assert_eq!(skipped, written, "frames already written are skipped");
    assert_eq!(files(&resumed), files(&whole), "no temporary file may remain");
    for name in files(&whole) {
        let (a, b) = (std::fs::read(whole.join(&name)).unwrap(), std::fs::read(resumed.join(&name)).unwrap());
        assert!(a == b, "{name} differs between the uninterrupted and the resumed run");
    }
}

#[test]
fn a_chunk_warms_up_on_the_frames_before_it() {
    let dir = scratch("sequence-chunk");
    let input = make_frames(&dir, 6);
    let out = dir.join("out");
    let output = run(&sequence_args(&input, &out, &["--frames", "4-6", "--warmup", "2", "--report", "json"]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = json_lines(&output);
    let frames: Vec<(u64, bool, String)> = lines[..5]
        .iter()
        .map(|l| (l["frame"].as_u64().unwrap(), l["warmup"].as_bool().unwrap(), l["temporal"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        frames,
        [
            (2, true, "off".into()),
            (3, true, "flow".into()),
            (4, false, "flow".into()),
            (5, false, "flow".into()),
            (6, false, "flow".into())
        ]
    );
    assert_eq!(files(&out), ["out_0004.png", "out_0005.png", "out_0006.png"], "warm-up frames are not written");
}

fn assert_clean_failure(output: &std::process::Output, out: &Path, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line on stderr, got: {stderr}");
    assert!(stderr.contains(needle), "stderr should mention `{needle}`: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(files(out).is_empty(), "nothing may be written: {:?}", files(out));
}

#[test]
fn bad_sequences_fail_cleanly() {
    let dir = scratch("sequence-bad");
    let input = make_frames(&dir, 3);
    let out = dir.join("out");
    let pattern = format!("{}/out_%04d.png", out.display());
    let with = |args: &[&str]| {
        let mut a = sequence_args(&input, &out, &[]);
        for pair in args.chunks(2) {
            let i = a.iter().position(|x| x == pair[0]).expect("an argument to replace");
            a[i + 1] = pair[1].to_string();
        }
        a
    };
    assert_clean_failure(&run(&sequence_args(&input, &out, &["--frames", "1-5"])), &out, "missing");
    assert_clean_failure(&run(&sequence_args(&input, &out, &["--frames", "3-2"])), &out, "frames");
    assert_clean_failure(&run(&with(&["-o", &format!("{}/out.png", out.display())])), &out, "frame field");
    assert_clean_failure(
        &run(&with(&["--content", &format!("{}/frame_0001.png", input.display())])),
        &out,
        "frame field",
    );
    assert_clean_failure(&run(&with(&["-o", &pattern.replace("%04d", "%04d_%d")])), &out, "more than one frame field");
    assert_clean_failure(
        &run(&with(&["--content", &format!("{}/nothing_%04d.png", input.display())])),
        &out,
        "no frame",
    );
    // An output folder that cannot be made: its parent is a file.
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let blocked = run(&with(&["-o", &format!("{}/sub/out_%04d.png", blocker.display())]));
    assert_clean_failure(&blocked, &out, "cannot write");
    // Frames of different sizes.
    let odd = dir.join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    for n in 1..=3 {
        let name = format!("frame_{n:04}.png");
        std::fs::copy(input.join(&name), odd.join(&name)).unwrap();
    }
    image::RgbImage::new(40, 30).save(odd.join("frame_0002.png")).unwrap();
    let output = run(&with(&["--content", &format!("{}/frame_%04d.png", odd.display())]));
    assert_clean_failure(&output, &out, "different sizes");
}

#[test]
fn folders_and_globs_are_numbered_from_one() {
    let dir = scratch("sequence-folder");
    let input = make_frames(&dir, 4);
    // A folder of frames only (the truth files beside them are images too), with a % in its name.
    let folder = dir.join("shot 100%");
    std::fs::create_dir_all(&folder).unwrap();
    for n in [2, 3] {
        std::fs::copy(input.join(format!("frame_{n:04}.png")), folder.join(format!("take_{n}.png"))).unwrap();
    }
    for (content, out) in [
        (folder.display().to_string(), dir.join("from-folder")),
        (format!("{}/frame_000[34].png", input.display()), dir.join("from-glob")),
    ] {
        let mut args = sequence_args(&input, &out, &["--report", "json"]);
        let at = args.iter().position(|a| a == "--content").unwrap();
        args[at + 1] = content;
        let output = run(&args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let numbers: Vec<u64> = json_lines(&output).iter().filter_map(|l| l["frame"].as_u64()).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(files(&out), ["out_0001.png", "out_0002.png"]);
    }
}
