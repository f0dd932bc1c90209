//! libtorch_cuda.so must stay linked into the library and the CLI: tch links
//! with --as-needed, which silently drops it and leaves CUDA "unavailable".

mod support;

fn assert_links_torch_cuda(path: &std::path::Path) {
    assert!(path.is_file(), "{} is missing: build first (make build)", path.display());
    let out = std::process::Command::new("ldd").arg(path).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("libtorch_cuda.so"), "{} does not link libtorch_cuda.so:\n{text}", path.display());
    assert!(!text.contains("not found"), "{} has unresolved libraries:\n{text}", path.display());
}

#[test]
fn cli_links_libtorch_cuda() {
    assert_links_torch_cuda(std::path::Path::new(env!("CARGO_BIN_EXE_stylize")));
}

#[test]
fn shared_library_links_libtorch_cuda() {
    assert_links_torch_cuda(&support::root().join("target/release/libstyletransfer.so"));
}
