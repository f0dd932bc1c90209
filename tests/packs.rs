//! Style packs: a run with a pack equals the run with its source images bit
//! for bit; bad packs (corrupt, truncated, other model, future version) give
//! one clear error; the info is readable without the targets.

mod support;

use std::path::Path;

use support::{sample, scratch, stylize};

fn create_pack(dir: &Path, name: &str, styles: &[&str], blend: Option<&str>) -> std::path::PathBuf {
    let out = dir.join(format!("{name}.stpack"));
    let mut args = vec!["pack".to_string(), "create".into(), "--name".into(), name.into(), "-o".into()];
    args.push(out.to_str().unwrap().into());
    args.extend(["--device".into(), "cpu".into()]);
    for style in styles {
        args.push("--style".into());
        args.push(sample(style).to_str().unwrap().into());
    }
    if let Some(blend) = blend {
        args.extend(["--style-blend".into(), blend.into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = stylize(&refs);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    out
}

fn run(dir: &Path, out: &str, style_args: &[&str]) -> Vec<u8> {
    run_at(dir, out, style_args, "fp32")
}

fn run_at(dir: &Path, out: &str, style_args: &[&str], precision: &str) -> Vec<u8> {
    let out = dir.join(out);
    let content = sample("coffee.jpg");
    let mut args = vec![
        "--content",
        content.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "64",
        "--iterations",
        "4",
        "--init",
        "noise",
        "--seed",
        "5",
        "--device",
        "cpu",
        "--precision",
        precision,
    ];
    args.extend_from_slice(style_args);
    let output = stylize(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(out).unwrap()
}

#[test]
fn a_run_with_a_pack_equals_the_run_with_its_images() {
    let dir = scratch("packs-bitwise");
    let swirls = create_pack(&dir, "swirls", &["swirls.jpg"], None);
    let blend = create_pack(&dir, "blend", &["mosaic.jpg", "dabs.jpg"], Some("0.7,0.3"));
    let by_image = run(&dir, "image.png", &["--style", sample("swirls.jpg").to_str().unwrap()]);
    let by_pack = run(&dir, "pack.png", &["--style-pack", swirls.to_str().unwrap()]);
    assert_eq!(by_image, by_pack, "single style: pack and image runs differ");
    let mosaic = sample("mosaic.jpg");
    let dabs = sample("dabs.jpg");
    let by_images = run(
        &dir,
        "images2.png",
        &["--style", mosaic.to_str().unwrap(), "--style", dabs.to_str().unwrap(), "--style-blend", "0.7,0.3"],
    );
    let by_blend_pack = run(&dir, "pack2.png", &["--style-pack", blend.to_str().unwrap()]);
    assert_eq!(by_images, by_blend_pack, "blended styles: pack and image runs differ");
    // Blending two packs 50/50 differs from either alone.
    let pack_arg = format!("{}:0.5", swirls.display());
    let blend_arg = format!("{}:0.5", blend.display());
    let mixed = run(&dir, "mixed.png", &["--style-pack", &pack_arg, "--style-pack", &blend_arg]);
    assert_ne!(mixed, by_pack);
    assert_ne!(mixed, by_blend_pack);
    // Targets are fp32 at every precision: the same holds for bf16 and fp16 runs.
    for precision in ["bf16", "fp16"] {
        let by_image = run_at(&dir, "image.png", &["--style", sample("swirls.jpg").to_str().unwrap()], precision);
        let by_pack = run_at(&dir, "pack.png", &["--style-pack", swirls.to_str().unwrap()], precision);
        assert_eq!(by_image, by_pack, "{precision}: pack and image runs differ");
    }
}

/// The same sources and model give the same pack, byte for byte, whatever
/// the precision of the engine that made it.
#[test]
fn packs_are_byte_identical_at_every_precision() {
    use styletransfer::device::Bf16Kernels;
    use styletransfer::{DeviceChoice, Engine, EngineOptions, Precision, StyleImage, StylePack};
    let dir = scratch("packs-precision");
    let style = styletransfer::image::load(&sample("dabs.jpg")).unwrap().rgb.resize(120, 90).unwrap();
    let styles = [StyleImage { image: style, weight: 1.0 }];
    let mut files = Vec::new();
    for (precision, kernels) in [
        (Precision::Fp32, None),
        (Precision::Bf16, Some(Bf16Kernels::Emulated)),
        (Precision::Bf16, Some(Bf16Kernels::Native)),
        (Precision::Fp16, None),
    ] {
        let engine = Engine::new(&EngineOptions {
            model_path: support::model(),
            device: DeviceChoice::Cpu,
            precision: Some(precision),
            bf16_kernels: kernels,
            threads: None,
        })
        .unwrap();
        let path = dir.join(format!("{}-{kernels:?}.stpack", precision.name()));
        StylePack::create(engine.model(), &styles, "Dabs").unwrap().save(&path).unwrap();
        files.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    for (path, bytes) in &files[1..] {
        assert!(bytes == &files[0].1, "{} differs from {}", path.display(), files[0].0.display());
    }
}

#[test]
fn pack_info_reads_the_description_and_thumbnail() {
    let dir = scratch("packs-info");
    let pack = create_pack(&dir, "Mosaic glass", &["mosaic.jpg"], None);
    let thumb = dir.join("thumb.png");
    let output = stylize(&["pack", "info", pack.to_str().unwrap(), "--json", "--thumbnail", thumb.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(info["name"], "Mosaic glass");
    assert_eq!(info["format_version"], 1);
    assert_eq!(info["layers"], serde_json::json!(["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]));
    assert_eq!(info["sides"].as_array().unwrap().last().unwrap(), 512);
    let thumbnail = image::open(&thumb).expect("thumbnail is a PNG");
    assert!(thumbnail.width() <= 128 && thumbnail.height() <= 128);
    assert!(std::fs::metadata(&thumb).unwrap().len() <= 64 * 1024);
}

fn assert_pack_refused(dir: &Path, pack: &Path, needle: &str) {
    let out = dir.join("refused.png");
    let content = sample("coffee.jpg");
    let output = stylize(&[
        "--content",
        content.to_str().unwrap(),
        "--style-pack",
        pack.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--iterations",
        "1",
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    assert!(!stderr.contains("panicked"));
    assert!(!out.exists());
}

#[test]
fn bad_packs_are_refused_with_a_clear_message() {
    let dir = scratch("packs-bad");
    let pack = create_pack(&dir, "dabs", &["dabs.jpg"], None);
    let bytes = std::fs::read(&pack).unwrap();

    let garbage = dir.join("garbage.stpack");
    std::fs::write(&garbage, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}").unwrap();
    assert_pack_refused(&dir, &garbage, "not a style pack");

    let truncated = dir.join("truncated.stpack");
    std::fs::write(&truncated, &bytes[..bytes.len() - 1000]).unwrap();
    assert_pack_refused(&dir, &truncated, "file not fully covered");

    let empty = dir.join("empty.stpack");
    std::fs::write(&empty, b"").unwrap();
    assert_pack_refused(&dir, &empty, "not a style pack");

    let missing = dir.join("missing.stpack");
    assert_pack_refused(&dir, &missing, "cannot read");

    // Same tensors, edited metadata: another model, a future format, NaN targets.
    let script = format!(
        "from safetensors import safe_open\n\
         from safetensors.torch import save_file\n\
         import torch\n\
         with safe_open(r'{p}', 'pt') as f:\n\
         \x20   meta = f.metadata()\n\
         \x20   t = {{k: f.get_tensor(k) for k in f.keys()}}\n\
         save_file(t, r'{d}/other-model.stpack', metadata=dict(meta, model_sha256='0' * 64))\n\
         save_file(t, r'{d}/future.stpack', metadata=dict(meta, format_version='2'))\n\
         t['gram.64.conv3_1'][0, 0] = float('nan')\n\
         save_file(t, r'{d}/nan.stpack', metadata=meta)\n",
        p = pack.display(),
        d = dir.display()
    );
    let made = std::process::Command::new(support::python()).arg("-c").arg(script).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert_pack_refused(&dir, &dir.join("other-model.stpack"), "made with another model");
    assert_pack_refused(&dir, &dir.join("future.stpack"), "made by a newer styletransfer");
    assert_pack_refused(&dir, &dir.join("nan.stpack"), "NaN");
}

#[test]
fn packs_cannot_be_used_with_histogram_colour_matching() {
    let dir = scratch("packs-histogram");
    let pack = create_pack(&dir, "swirls", &["swirls.jpg"], None);
    let out = dir.join("out.png");
    let content = sample("coffee.jpg");
    let output = stylize(&[
        "--content",
        content.to_str().unwrap(),
        "--style-pack",
        pack.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--iterations",
        "1",
        "--preserve-color",
        "histogram",
        "--device",
        "cpu",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("histogram colour preservation needs style images"));
}
