//! The `stylize` command line: a good run, and every kind of bad input
//! giving one clear line on stderr, exit status 2, no panic and no output file.

mod support;

use std::path::{Path, PathBuf};

use support::{sample, scratch, stylize};

fn small_run(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let out = dir.join(out);
    let content = sample("chelsea.jpg");
    let style = sample("swirls.jpg");
    let mut args = vec![
        "--content",
        content.to_str().unwrap(),
        "--style",
        style.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "48",
        "--iterations",
        "4",
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    stylize(&args)
}

fn assert_clean_failure(output: &std::process::Output, out: &Path, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line on stderr, got: {stderr}");
    assert!(stderr.contains(needle), "stderr should mention `{needle}`: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "no output file may be left behind");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn good_run_writes_content_sized_output_and_a_json_report() {
    let dir = scratch("cli-good");
    let output = small_run(&dir, "out.png", &["--report", "json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(report["content_size"], serde_json::json!([451, 300]));
    assert_eq!(report["output_size"], serde_json::json!([451, 300]));
    assert_eq!(report["working_size"], serde_json::json!([48, 32]));
    assert_eq!(report["evaluations"], 4);
    assert_eq!(report["device"], "cpu");
    for term in ["content", "style", "tv", "total"] {
        assert!(report["loss"][term].as_f64().unwrap().is_finite(), "{term}");
    }
    let image = image::open(dir.join("out.png")).unwrap();
    assert_eq!((image.width(), image.height()), (451, 300));
}

#[test]
fn same_seed_gives_the_same_bytes_and_noise_init_depends_on_it() {
    let dir = scratch("cli-seed");
    for (name, seed) in [("a.png", "3"), ("b.png", "3"), ("c.png", "4")] {
        let output = small_run(&dir, name, &["--init", "noise", "--seed", seed, "--threads", "2"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    assert_eq!(read("a.png"), read("b.png"), "same seed, same output");
    assert_ne!(read("a.png"), read("c.png"), "another seed, another output");
}

#[test]
fn alpha_passes_through_untouched() {
    let dir = scratch("cli-alpha");
    let content = dir.join("rgba.png");
    let mut rgba = image::RgbaImage::new(40, 36);
    for (x, y, p) in rgba.enumerate_pixels_mut() {
        *p = image::Rgba([(x * 6) as u8, (y * 7) as u8, 128, (x * 5 + y * 2) as u8]);
    }
    rgba.save(&content).unwrap();
    let out = dir.join("out.png");
    let output = stylize(&[
        "--content",
        content.to_str().unwrap(),
        "--style",
        sample("mosaic.jpg").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--iterations",
        "3",
        "--device",
        "cpu",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result = image::open(&out).unwrap().to_rgba8();
    for (a, b) in rgba.pixels().zip(result.pixels()) {
        assert_eq!(a.0[3], b.0[3], "alpha changed");
    }
}

#[test]
fn missing_and_corrupt_models_fail_cleanly() {
    let dir = scratch("cli-model");
    let out = dir.join("out.png");
    let missing = dir.join("nope.safetensors");
    let output = small_run(&dir, "out.png", &["--model", missing.to_str().unwrap()]);
    assert_clean_failure(&output, &out, "cannot read");

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a model at all, just some bytes").unwrap();
    let output = small_run(&dir, "out.png", &["--model", garbage.to_str().unwrap()]);
    assert_clean_failure(&output, &out, "not a safetensors model file");

    let truncated = dir.join("truncated.safetensors");
    let bytes = std::fs::read(support::model()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let output = small_run(&dir, "out.png", &["--model", truncated.to_str().unwrap()]);
    assert_clean_failure(&output, &out, "model");

    // A model without conv5_1, and one whose conv3_2 has the wrong shape.
    let no_layer = dir.join("no-layer.safetensors");
    let bad_shape = dir.join("bad-shape.safetensors");
    let script = format!(
        "from safetensors import safe_open\n\
         from safetensors.torch import save_file\n\
         import torch\n\
         with safe_open(r'{m}', 'pt') as f:\n\
         \x20   meta = f.metadata()\n\
         \x20   t = {{k: f.get_tensor(k) for k in f.keys()}}\n\
         a = {{k: v for k, v in t.items() if not k.startswith('conv5_1')}}\n\
         save_file(a, r'{a}', metadata=meta)\n\
         t['conv3_2.weight'] = torch.zeros(256, 128, 3, 3, dtype=torch.float16)\n\
         save_file(t, r'{b}', metadata=meta)\n",
        m = support::model().display(),
        a = no_layer.display(),
        b = bad_shape.display()
    );
    let made = std::process::Command::new(support::python()).arg("-c").arg(script).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let output = small_run(&dir, "out.png", &["--model", no_layer.to_str().unwrap()]);
    assert_clean_failure(&output, &out, "conv5_1.weight` is missing");
    let output = small_run(&dir, "out.png", &["--model", bad_shape.to_str().unwrap()]);
    assert_clean_failure(&output, &out, "conv3_2.weight` has shape");
}

#[test]
fn bad_images_fail_cleanly() {
    let dir = scratch("cli-images");
    let out = dir.join("out.png");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "plain text, not a picture").unwrap();
    let fake = dir.join("fake.png");
    std::fs::write(&fake, "plain text pretending to be a picture").unwrap();
    let tiny = dir.join("tiny.png");
    image::RgbImage::from_pixel(1, 1, image::Rgb([9, 9, 9])).save(&tiny).unwrap();
    // A PNG whose header claims 0×0 (no encoder writes one; hand-made).
    let zero = dir.join("zero.png");
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x00\x00\x00\x00\x00\x08\x02\x00\x00\x00".to_vec();
    png.extend_from_slice(&[0, 0, 0, 0]);
    std::fs::write(&zero, png).unwrap();
    for (content, needle) in
        [(&text, "not an image"), (&fake, "cannot decode"), (&tiny, "too small"), (&zero, "cannot decode")]
    {
        let output = stylize(&[
            "--content",
            content.to_str().unwrap(),
            "--style",
            sample("swirls.jpg").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--iterations",
            "2",
            "--device",
            "cpu",
        ]);
        assert_clean_failure(&output, &out, needle);
    }
    let missing = dir.join("missing.jpg");
    let output = stylize(&[
        "--content",
        missing.to_str().unwrap(),
        "--style",
        sample("swirls.jpg").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&output, &out, "cannot open");
}

#[test]
fn bad_numbers_fail_cleanly() {
    let dir = scratch("cli-numbers");
    let out = dir.join("out.png");
    let dabs = sample("dabs.jpg");
    let dabs = dabs.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--style-weight", "NaN"], "style_weight"),
        (&["--content-weight", "-1"], "content_weight"),
        (&["--tv-weight", "inf"], "tv_weight"),
        (&["--style", dabs, "--style-blend", "0.5"], "style-blend"),
        (&["--style", dabs, "--style-blend", "0.5,-2"], "style_blend"),
        (&["--strength", "1.5"], "strength"),
        (&["--iterations", "0"], "iterations"),
        (&["--scales", "9"], "scales"),
        (&["--device", "tpu"], "device"),
    ];
    for (extra, needle) in cases {
        let output = small_run(&dir, "out.png", extra);
        assert_clean_failure(&output, &out, needle);
    }
    let output = small_run(&dir, "out.unknown", &[]);
    assert_clean_failure(&output, &dir.join("out.unknown"), "unknown output format");
}

#[test]
fn scales_one_turns_the_pyramid_off() {
    let dir = scratch("cli-scales");
    let auto = small_run(&dir, "a.png", &["--size", "256", "--iterations", "1", "--report", "json"]);
    assert!(auto.status.success(), "{}", String::from_utf8_lossy(&auto.stderr));
    let report: serde_json::Value = serde_json::from_slice(&auto.stdout).unwrap();
    assert_eq!(report["levels"], serde_json::json!([[128, 85], [256, 170]]));
    let single = small_run(&dir, "b.png", &["--size", "256", "--iterations", "1", "--scales", "1", "--report", "json"]);
    assert!(single.status.success());
    let report: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
    assert_eq!(report["levels"], serde_json::json!([[256, 170]]));
}

/// `stylize runtime` names the libtorch it loaded, its version and the
/// build's, and what became of the CUDA part.
#[test]
fn runtime_subcommand_describes_the_loaded_libtorch() {
    let output = support::stylize(&["runtime"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stylize runtime failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    let built = styletransfer::runtime::built_version();
    assert!(text.contains(&format!("libtorch: {built} (built for {built}), ")), "{text}");
    assert!(text.contains("libtorch_cpu.so"), "{text}");
    assert!(text.contains("CUDA part: ") && text.contains("CUDA shim: ") && text.contains("CUDA devices: "), "{text}");
}
