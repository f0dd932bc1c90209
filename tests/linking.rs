//! The library and the CLI link libtorch's CPU part only, so that an install
//! with a CPU-only runtime loads; the CUDA part (`libtorch_cuda.so` and the
//! CUDA shim) is loaded at run time by `styletransfer::runtime`, and must
//! then be loaded when the runtime has it (tch links with --as-needed, which
//! once silently dropped libtorch_cuda.so and left CUDA "unavailable").

mod support;

use std::path::Path;

fn needed(path: &Path) -> Vec<String> {
    assert!(path.is_file(), "{} is missing: build first (make build)", path.display());
    let out = std::process::Command::new("readelf").arg("-d").arg(path).output().expect("run readelf");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_string))
        .collect()
}

fn assert_cpu_part_only(path: &Path) {
    let libs = needed(path);
    assert!(libs.iter().any(|l| l == "libtorch_cpu.so"), "{} does not link libtorch_cpu.so: {libs:?}", path.display());
    for lib in &libs {
        assert!(
            !lib.contains("cuda") && !lib.contains("cudart") && lib != "libtorch.so",
            "{} links {lib}, which a CPU-only runtime lacks: {libs:?}",
            path.display()
        );
    }
    let out = std::process::Command::new("ldd").arg(path).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("not found"), "{} has unresolved libraries:\n{text}", path.display());
}

#[test]
fn cli_links_the_cpu_part_only() {
    assert_cpu_part_only(Path::new(env!("CARGO_BIN_EXE_stylize")));
}

#[test]
fn shared_library_links_the_cpu_part_only() {
    assert_cpu_part_only(&support::root().join("target/release/libstyletransfer.so"));
}

/// With the build's runtime (the venv's torch, which has CUDA), the check
/// passes and loads libtorch_cuda.so and the shim into this process.
#[test]
fn the_cuda_part_is_loaded_at_run_time() {
    styletransfer::runtime::check().expect("the build's own runtime passes the version check");
    assert_eq!(styletransfer::runtime::loaded_version().as_deref(), Some(styletransfer::runtime::built_version()));
    let part = styletransfer::runtime::cuda_part();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let cpu = styletransfer::runtime::libtorch_cpu_file().expect("libtorch_cpu.so is loaded");
    let has_cuda = cpu.with_file_name("libtorch_cuda.so").is_file();
    if has_cuda {
        let file = part.libtorch_cuda.as_ref().expect("libtorch_cuda.so loads");
        assert!(
            maps.contains("libtorch_cuda.so"),
            "libtorch_cuda.so is not mapped after the check ({})",
            file.display()
        );
        if cfg!(st_cuda_shim) {
            let shim = part.shim_file.as_ref().expect("the CUDA shim loads");
            assert!(maps.contains("libstyletransfer_cuda.so"), "the shim ({}) is not mapped", shim.display());
            assert!(styletransfer::cuda::graphs_loaded());
        }
    } else {
        assert!(part.libtorch_cuda.is_err());
    }
}
