//! Link-time set-up for libtorch.
//!
//! `torch-sys` finds libtorch and links it with `--as-needed`, which drops
//! `libtorch_cuda.so` because nothing references its symbols directly; CUDA
//! then reports unavailable at run time. This script keeps it linked when the
//! libtorch in use has it, and records the libtorch directory as the run path
//! of every artefact (library, CLI, tests) so nothing needs
//! `LD_LIBRARY_PATH`. `LD_LIBRARY_PATH` still overrides it (RUNPATH).

use std::env;
use std::path::{Path, PathBuf};
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
        build_cuda_shim(&lib_dir);
    }
    println!("cargo:rustc-check-cfg=cfg(st_has_cuda_lib)");
    println!("cargo:rustc-check-cfg=cfg(st_cuda_shim)");
}

/// Folders to search for the CUDA runtime headers: `$CUDA_HOME/include`,
/// those the PyPI wheels install beside torch (`nvidia/*/include`, and
/// triton's copy), `/usr/local/cuda/include`. The first holding
/// `cuda_runtime_api.h` is used; the wheels' copy lacks `crt/`, which is
/// then taken from the next folder that has it.
fn cuda_include_dirs(lib_dir: &Path) -> Option<Vec<PathBuf>> {
    let mut candidates = Vec::new();
    if let Some(home) = env::var_os("CUDA_HOME") {
        candidates.push(PathBuf::from(home).join("include"));
    }
    // lib_dir is .../site-packages/torch/lib.
    if let Some(site) = lib_dir.parent().and_then(Path::parent) {
        if let Ok(entries) = std::fs::read_dir(site.join("nvidia")) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("include")).collect();
            dirs.sort();
            candidates.extend(dirs);
        }
        candidates.push(site.join("triton/backends/nvidia/include"));
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    let runtime = candidates.iter().find(|dir| dir.join("cuda_runtime_api.h").is_file())?.clone();
    if runtime.join("crt/host_config.h").is_file() {
        return Some(vec![runtime]);
    }
    let crt = candidates.into_iter().find(|dir| dir.join("crt/host_config.h").is_file())?;
    Some(vec![runtime, crt])
}

/// The CUDA runtime library that `libc10_cuda.so` loads (from `ldd`).
fn cuda_runtime_library(lib_dir: &Path) -> Option<PathBuf> {
    let output = Command::new("ldd").arg(lib_dir.join("libc10_cuda.so")).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("libcudart.so"))?;
    let path = PathBuf::from(line.split("=>").nth(1)?.split_whitespace().next()?);
    path.is_file().then_some(path)
}

/// Compiles `csrc/cuda_shim.cpp` (CUDA graphs, allocator statistics) when
/// the libtorch in use ships its C++ headers and the CUDA headers are found;
/// the Rust side then has `cfg(st_cuda_shim)`. `ST_NO_CUDA_SHIM=1` skips it.
fn build_cuda_shim(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=csrc/cuda_shim.cpp");
    println!("cargo:rerun-if-env-changed=ST_NO_CUDA_SHIM");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    if env::var_os("ST_NO_CUDA_SHIM").is_some_and(|v| v == "1") {
        return;
    }
    let Some(torch_include) = lib_dir.parent().map(|p| p.join("include")) else { return };
    if !torch_include.join("ATen/cuda/CUDAGraph.h").is_file() {
        println!("cargo:warning=libtorch has no CUDA C++ headers; CUDA graphs disabled");
        return;
    }
    let Some(cuda_include) = cuda_include_dirs(lib_dir) else {
        println!("cargo:warning=CUDA runtime headers not found (set CUDA_HOME); CUDA graphs disabled");
        return;
    };
    cc::Build::new()
        .cpp(true)
        .file("csrc/cuda_shim.cpp")
        .include(&torch_include)
        .include(torch_include.join("torch/csrc/api/include"))
        .includes(&cuda_include)
        .flag("-std=c++17")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(2)
        .compile("st_cuda_shim");
    for lib in ["c10_cuda", "c10", "torch_cuda", "torch_cpu"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    // The shim's inline CUDA calls need the CUDA runtime that libc10_cuda
    // uses: link that very file and record its folder as a run path.
    if let Some(cudart) = cuda_runtime_library(lib_dir) {
        let dir = cudart.parent().expect("a file has a folder");
        let name = cudart.file_name().expect("a file has a name").to_string_lossy().into_owned();
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=dylib:+verbatim={name}");
        if env::var("ST_RPATH").is_err() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
    } else {
        println!("cargo:rustc-link-lib=dylib=cudart");
    }
    println!("cargo:rustc-cfg=st_cuda_shim");
}
