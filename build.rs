//! Link-time set-up for libtorch.
//!
//! `torch-sys` finds libtorch and links it with `--as-needed`, which drops
//! `libtorch_cuda.so` because nothing references its symbols directly; CUDA
//! then reports unavailable at run time. This script keeps it linked when the
//! libtorch in use has it, and records the libtorch directory as the run path
//! of every artefact (library, CLI, tests) so nothing needs
//! `LD_LIBRARY_PATH`. `LD_LIBRARY_PATH` still overrides it (RUNPATH).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Ok(root) = env::var("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    if env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".to_string());
        let output = Command::new(python)
            .args(["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
            .output()
            .ok()?;
        if output.status.success() {
            let text = String::from_utf8(output.stdout).ok()?;
            return Some(PathBuf::from(text.trim()));
        }
    }
    None
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    println!("cargo:rerun-if-env-changed=ST_RPATH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(lib_dir) = libtorch_lib_dir() else {
        println!("cargo:warning=libtorch directory not found; no run path recorded");
        return;
    };
    // ST_RPATH replaces the recorded run path (e.g. for a relocated install).
    let rpath = env::var("ST_RPATH").unwrap_or_else(|_| lib_dir.display().to_string());
    if !rpath.is_empty() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{rpath}");
    }
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-cfg=st_has_cuda_lib");
    }
    println!("cargo:rustc-check-cfg=cfg(st_has_cuda_lib)");
}
