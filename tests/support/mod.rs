//! Helpers shared by the integration tests: where things are, test images,
//! and running the `stylize` binary and the project's Python.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use styletransfer::RgbImage;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The model file `make model` provides; tests fail loudly without it.
pub fn model() -> PathBuf {
    let path = root().join("models/vgg19.safetensors");
    assert!(path.is_file(), "{} is missing: run `make model` (make test does)", path.display());
    path
}

/// The project venv's Python; tests fail loudly without it.
pub fn python() -> PathBuf {
    let path = root().join(".venv/bin/python3");
    assert!(path.exists(), "{} is missing: run `make venv` (make test does)", path.display());
    path
}

/// A fresh scratch folder under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// A deterministic, smooth-but-busy test image (no randomness).
pub fn pattern(width: u32, height: u32, phase: f32) -> RgbImage {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let r = 0.5 + 0.4 * (6.0 * fx + phase).sin() * (4.0 * fy).cos();
            let g = 0.5 + 0.4 * (9.0 * fy - 2.0 * phase).sin();
            let b = 0.5 + 0.3 * ((13.0 * (fx + fy)) + phase).cos() + 0.1 * ((x * 7 + y * 3) % 5) as f32 / 5.0;
            data.extend_from_slice(&[r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), b.clamp(0.0, 1.0)]);
        }
    }
    RgbImage::new(width, height, data).expect("pattern image")
}

/// Runs `stylize` with arguments.
pub fn stylize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stylize")).args(args).current_dir(root()).output().expect("run stylize")
}

/// Runs a Python script of the project with the venv's interpreter; panics
/// with its stderr when it fails.
pub fn run_python(script: &Path, args: &[&str]) -> Output {
    let output = Command::new(python()).arg(script).args(args).output().expect("run python");
    assert!(
        output.status.success(),
        "{} failed: {}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Sample images shipped in examples/images.
pub fn sample(name: &str) -> PathBuf {
    root().join("examples/images").join(name)
}

/// An engine on the CPU in fp32 with the project's model.
pub fn cpu_engine() -> styletransfer::Engine {
    styletransfer::Engine::new(&styletransfer::EngineOptions {
        model_path: model(),
        device: styletransfer::DeviceChoice::Cpu,
        precision: Some(styletransfer::Precision::Fp32),
        bf16_kernels: None,
        threads: None,
    })
    .expect("CPU engine")
}
