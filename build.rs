//! Link-time set-up for libtorch.
//!
//! The library and every other artefact link libtorch's CPU part only
//! (`libtorch_cpu`, `libc10`), so that an install with a CPU-only runtime
//! loads. The CUDA part is loaded at run time ([`src/runtime.rs`]): the
//! library `dlopen`s `libtorch_cuda.so` and, when it was built, the CUDA
//! shim `libstyletransfer_cuda.so` that this script compiles from
//! `csrc/cuda_shim.cpp` into `styletransfer/` beside the artefacts.
//!
//! The libtorch directory is recorded as the run path of every artefact
//! (library, CLI, tests) so nothing in the build tree needs
//! `LD_LIBRARY_PATH`; `scripts/install.sh` rewrites it to a relative one
//! when it installs. `LD_LIBRARY_PATH` still overrides it (RUNPATH).

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

/// The profile folder the artefacts land in (`target/release`), from
/// `OUT_DIR` (`target/release/build/<crate>-<hash>/out`).
fn profile_dir() -> Option<PathBuf> {
    let out = PathBuf::from(env::var_os("OUT_DIR")?);
    Some(out.ancestors().nth(3)?.to_path_buf())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    println!("cargo:rerun-if-env-changed=ST_RPATH");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(st_has_cuda_lib)");
    println!("cargo:rustc-check-cfg=cfg(st_cuda_shim)");
    let Some(lib_dir) = libtorch_lib_dir() else {
        println!("cargo:warning=libtorch directory not found; no run path recorded");
        return;
    };
    // ST_RPATH replaces the recorded run path.
    let rpath = env::var("ST_RPATH").unwrap_or_else(|_| lib_dir.display().to_string());
    if !rpath.is_empty() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{rpath}");
    }
    build_runtime_glue(&lib_dir);
    build_flow_shim();
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-cfg=st_has_cuda_lib");
        build_cuda_shim(&lib_dir);
    }
}

/// The C++ headers of the libtorch in use (`<libtorch>/include`).
fn torch_include(lib_dir: &Path) -> Option<PathBuf> {
    let include = lib_dir.parent()?.join("include");
    include.join("ATen/Version.h").is_file().then_some(include)
}

/// Compiles `csrc/torch_runtime.cpp` (the version libtorch was built as and
/// the version of the libtorch loaded at run time) into the library.
fn build_runtime_glue(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=csrc/torch_runtime.cpp");
    let include = torch_include(lib_dir).expect("libtorch has no C++ headers (include/ATen/Version.h)");
    cc::Build::new()
        .cpp(true)
        .file("csrc/torch_runtime.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(2)
        .compile("st_torch_runtime");
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    for lib in ["torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
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

/// Links `csrc/cuda_shim.cpp` (CUDA graphs, allocator statistics) as the
/// shared library `styletransfer/libstyletransfer_cuda.so` in the profile
/// folder, when the libtorch in use ships its CUDA C++ headers and the CUDA
/// headers are found; the Rust side then has `cfg(st_cuda_shim)` and loads
/// it at run time. `ST_NO_CUDA_SHIM=1` skips it.
fn build_cuda_shim(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=csrc/cuda_shim.cpp");
    println!("cargo:rerun-if-env-changed=ST_NO_CUDA_SHIM");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    if env::var_os("ST_NO_CUDA_SHIM").is_some_and(|v| v == "1") {
        return;
    }
    let Some(include) = torch_include(lib_dir) else { return };
    if !include.join("ATen/cuda/CUDAGraph.h").is_file() {
        println!("cargo:warning=libtorch has no CUDA C++ headers; CUDA graphs disabled");
        return;
    }
    let Some(cuda_include) = cuda_include_dirs(lib_dir) else {
        println!("cargo:warning=CUDA runtime headers not found (set CUDA_HOME); CUDA graphs disabled");
        return;
    };
    let (Some(out_dir), Some(profile)) = (env::var_os("OUT_DIR").map(PathBuf::from), profile_dir()) else { return };
    let built = out_dir.join("libstyletransfer_cuda.so");
    let compiler = cc::Build::new().cpp(true).get_compiler();
    let mut command = compiler.to_command();
    command
        .args(["-std=c++17", "-O2", "-fPIC", "-shared", "-Wno-unused-parameter", "-Wl,--no-undefined"])
        .arg("-I")
        .arg(&include)
        .arg("-I")
        .arg(include.join("torch/csrc/api/include"));
    for dir in &cuda_include {
        command.arg("-I").arg(dir);
    }
    command.arg("csrc/cuda_shim.cpp").arg("-o").arg(&built).arg(format!("-L{}", lib_dir.display()));
    command.args(["-lc10_cuda", "-lc10", "-ltorch_cuda", "-ltorch_cpu"]);
    // The shim's inline CUDA calls need the CUDA runtime that libc10_cuda
    // uses: link that very file. At run time it is loaded already (libtorch
    // needs it), so the run path only serves tools such as ldd.
    let mut rpath = vec![lib_dir.display().to_string()];
    match cuda_runtime_library(lib_dir) {
        Some(cudart) => {
            command.arg(&cudart);
            rpath.push(cudart.parent().expect("a file has a folder").display().to_string());
        }
        None => {
            command.arg("-lcudart");
        }
    }
    command.arg(format!("-Wl,-rpath,{}", rpath.join(":")));
    let status = command.status().expect("run the C++ compiler for csrc/cuda_shim.cpp");
    assert!(status.success(), "compiling csrc/cuda_shim.cpp failed: {command:?}");
    install_shim(&built, &profile, "libstyletransfer_cuda.so");
    println!("cargo:rustc-cfg=st_cuda_shim");
}

/// Links `csrc/flow_shim.cpp` (OpenCV's DIS optical flow) as the shared
/// library `styletransfer/libstyletransfer_flow.so` in the profile folder,
/// when pkg-config finds OpenCV 4 (Debian's `libopencv-dev`); the Rust side
/// loads it at run time (`src/runtime.rs`). Without OpenCV the build goes on
/// and sequence runs with optical flow say it is missing.
fn build_flow_shim() {
    println!("cargo:rerun-if-changed=csrc/flow_shim.cpp");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let (Some(out_dir), Some(profile)) = (env::var_os("OUT_DIR").map(PathBuf::from), profile_dir()) else { return };
    // Its headers and the folders of its libraries; of those only the three used are linked.
    let flags = Command::new("pkg-config").args(["--cflags", "--libs-only-L", "opencv4"]).output();
    let flags = match flags {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            println!("cargo:warning=OpenCV 4 not found by pkg-config (libopencv-dev); no optical flow");
            return;
        }
    };
    let built = out_dir.join("libstyletransfer_flow.so");
    let compiler = cc::Build::new().cpp(true).get_compiler();
    let mut command = compiler.to_command();
    command.args(["-std=c++17", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wl,--no-undefined"]);
    command.args(flags.split_whitespace());
    command.arg("csrc/flow_shim.cpp").arg("-o").arg(&built);
    command.args(["-lopencv_video", "-lopencv_imgproc", "-lopencv_core"]);
    match command.status() {
        Ok(status) if status.success() => {}
        _ => {
            println!("cargo:warning=compiling csrc/flow_shim.cpp against OpenCV failed; no optical flow");
            return;
        }
    }
    install_shim(&built, &profile, "libstyletransfer_flow.so");
}

/// Puts the shim `built` into the profile folder's `styletransfer/` as `name`.
fn install_shim(built: &Path, profile: &Path, name: &str) {
    let dest_dir = profile.join("styletransfer");
    std::fs::create_dir_all(&dest_dir).expect("create the profile's styletransfer/ folder");
    // Replaced, not overwritten: a running test may have the old one mapped.
    let partial = dest_dir.join(format!("{name}.partial"));
    std::fs::copy(built, &partial).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    std::fs::rename(&partial, dest_dir.join(name)).unwrap_or_else(|e| panic!("move {name} into place: {e}"));
}
