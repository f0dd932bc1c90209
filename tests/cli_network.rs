//! `stylize train`, `stylize --net`, `stylize net info`, `stylize score` and
//! `stylize sequence --net`: a training that is resumed is the one run
//! straight, a network run keeps size and alpha and its tiles join, frames
//! equal stills, and every bad input gives one clear line and exit status 2.

mod support;

use std::path::{Path, PathBuf};

use support::{sample, scratch, stylize};

/// A folder with the two sample photos.
fn photos(dir: &Path) -> PathBuf {
    let folder = dir.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["chelsea.jpg", "coffee.jpg"] {
        std::fs::copy(sample(name), folder.join(name)).unwrap();
    }
    folder
}

fn train(dir: &Path, out: &Path, steps: u32, extra: &[&str]) -> std::process::Output {
    let (style, images) = (sample("swirls.jpg"), photos(dir));
    let steps = steps.to_string();
    let mut args = vec![
        "train",
        "--style",
        style.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--steps",
        &steps,
        "--width",
        "8",
        "--blocks",
        "1",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--checkpoint-every",
        "2",
        "--json",
        "--name",
        "net",
    ];
    args.extend_from_slice(extra);
    stylize(&args)
}

fn ok(output: &std::process::Output) -> String {
    assert!(output.status.success(), "stylize failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fails(output: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line on stderr, got: {stderr}");
    assert!(stderr.contains(needle), "stderr should mention `{needle}`: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn training_resumes_bit_for_bit_and_the_network_runs() {
    let dir = scratch("cli-network-train");
    let straight = dir.join("straight.stnet");
    let report: serde_json::Value = serde_json::from_str(ok(&train(&dir, &straight, 6, &[])).trim()).unwrap();
    assert_eq!(report["steps"], 6);
    assert!(dir.join("straight.stnet.ckpt").is_file());

    // Four steps, then resumed to six: the same file.
    let resumed = dir.join("resumed.stnet");
    ok(&train(&dir, &resumed, 4, &[]));
    let report: serde_json::Value = serde_json::from_str(ok(&train(&dir, &resumed, 6, &["--resume"])).trim()).unwrap();
    assert_eq!((report["steps"].as_u64(), report["steps_run"].as_u64()), (Some(6), Some(2)));
    assert!(std::fs::read(&straight).unwrap() == std::fs::read(&resumed).unwrap(), "resumed training differs");

    // net info.
    let info: serde_json::Value =
        serde_json::from_str(ok(&stylize(&["net", "info", straight.to_str().unwrap(), "--json"])).trim()).unwrap();
    assert_eq!(info["name"], "net");
    assert_eq!((info["width"].as_u64(), info["residual_blocks"].as_u64()), (Some(8), Some(1)));
    assert_eq!((info["training_images"].as_u64(), info["training_size"].as_u64()), (Some(2), Some(32)));

    // A still: the content's size and alpha; tiles give the same picture.
    let content = dir.join("rgba.png");
    let mut rgba =
        image::open(sample("chelsea.jpg")).unwrap().resize_exact(90, 60, image::imageops::Triangle).to_rgba8();
    for (x, _, p) in rgba.enumerate_pixels_mut() {
        p[3] = (x * 2) as u8;
    }
    rgba.save(&content).unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--net",
            straight.to_str().unwrap(),
            "--content",
            content.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--report",
            "json",
        ];
        args.extend_from_slice(extra);
        let report: serde_json::Value = serde_json::from_str(ok(&stylize(&args)).trim()).unwrap();
        (image::open(out).unwrap().to_rgba8(), report)
    };
    let (whole, report) = run(&dir.join("whole.png"), &[]);
    assert_eq!(whole.dimensions(), (90, 60));
    assert_eq!(report["tiled"], false);
    assert!(whole.pixels().zip(rgba.pixels()).all(|(a, b)| a[3] == b[3]), "alpha changed");
    let (tiled, report) = run(&dir.join("tiled.png"), &["--tile-size", "32"]);
    assert_eq!(report["tiled"], true);
    let worst = whole.as_raw().iter().zip(tiled.as_raw()).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(worst <= 1, "tiles differ by {worst}/255");

    // score: the result scored against the content and the style.
    let style = sample("swirls.jpg");
    let score = |image: &Path| -> serde_json::Value {
        let out = ok(&stylize(&[
            "score",
            "--content",
            content.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--style",
            style.to_str().unwrap(),
        ]));
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["loss"].clone()
    };
    let (own, result) = (score(&content), score(&dir.join("whole.png")));
    assert_eq!(own["content"].as_f64(), Some(0.0));
    assert!(result["content"].as_f64().unwrap() > 0.0, "{result}");

    // Frames: each the still's result for that frame.
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for n in 1..=2 {
        std::fs::copy(&content, frames.join(format!("f_{n:04}.png"))).unwrap();
    }
    let pattern = frames.join("f_%04d.png");
    let outputs = dir.join("out/o_%04d.png");
    let lines = ok(&stylize(&[
        "sequence",
        "--net",
        straight.to_str().unwrap(),
        "--content",
        pattern.to_str().unwrap(),
        "-o",
        outputs.to_str().unwrap(),
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--report",
        "json",
    ]));
    assert!(lines.lines().last().unwrap().contains("\"frames_written\":2"), "{lines}");
    for n in 1..=2 {
        let frame = image::open(dir.join(format!("out/o_{n:04}.png"))).unwrap().to_rgba8();
        assert!(frame == whole, "frame {n} differs from the still");
    }
}

#[test]
fn bad_network_arguments_fail_cleanly() {
    let dir = scratch("cli-network-bad");
    let out = dir.join("n.stnet");
    fails(&train(&dir, &dir.join("n.png"), 2, &[]), ".stnet");
    fails(&train(&dir, &out, 2, &["--size", "30"]), "size");
    fails(&train(&dir, &out, 2, &["--width", "2"]), "width");
    fails(&train(&dir, &out, 2, &["--resume"]), "no checkpoint");
    fails(&train(&dir, &out, 2, &["--max-minutes", "0"]), "max-minutes");
    let style = sample("swirls.jpg");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &stylize(&[
            "train",
            "--style",
            style.to_str().unwrap(),
            "--images",
            empty.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]),
        "no image found",
    );
    assert!(!out.exists());

    let content = sample("chelsea.jpg");
    let result = dir.join("r.png");
    let net_run = |net: &Path, extra: &[&str]| {
        let mut args = vec![
            "--net",
            net.to_str().unwrap(),
            "--content",
            content.to_str().unwrap(),
            "-o",
            result.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        stylize(&args)
    };
    fails(&net_run(&dir.join("absent.stnet"), &[]), "absent.stnet");
    fails(&net_run(&style, &[]), "not a network file");
    ok(&train(&dir, &out, 2, &[]));
    fails(&net_run(&out, &["--preserve-color", "histogram"]), "luminance");
    fails(&net_run(&out, &["--init", "noise"]), "init");
    fails(&net_run(&out, &["--strength", "1.5"]), "strength");
    assert!(!result.exists());
    let output = stylize(&["--net", out.to_str().unwrap(), "--style", style.to_str().unwrap(), "--content", "x.png"]);
    assert_eq!(output.status.code(), Some(2), "--net with --style: {}", String::from_utf8_lossy(&output.stderr));
    fails(&stylize(&["net", "info", style.to_str().unwrap()]), "not a network file");
}
