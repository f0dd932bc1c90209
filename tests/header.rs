//! The committed C header is what cbindgen generates from src/capi/, with
//! the version macros taken from Cargo.toml. `make header` (UPDATE_HEADER=1)
//! rewrites it.

mod support;

fn generate() -> String {
    let root = support::root();
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(format!(
        "\n#define ST_VERSION_MAJOR {}\n#define ST_VERSION_MINOR {}\n#define ST_VERSION_PATCH {}\n#define ST_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION"),
    ));
    // Only the C adapter: the core's public constants are not part of the ABI.
    let bindings = cbindgen::Builder::new()
        .with_src(root.join("src/capi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn committed_header_matches_the_sources() {
    let path = support::root().join("include/styletransfer.h");
    let generated = generate();
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/styletransfer.h is stale: run `make header` and commit it\n--- generated ---\n{generated}"
    );
}

#[test]
fn version_macros_follow_cargo_toml() {
    let header = std::fs::read_to_string(support::root().join("include/styletransfer.h")).unwrap();
    let major = format!("#define ST_VERSION_MAJOR {}", env!("CARGO_PKG_VERSION_MAJOR"));
    assert!(header.contains(&major), "header lacks `{major}`");
    let version = unsafe { std::ffi::CStr::from_ptr(styletransfer::capi::st_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// The `#[no_mangle]` functions of every file in src/capi/, with their bodies.
fn entry_points() -> Vec<(String, String, String)> {
    let dir = support::root().join("src/capi");
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files.iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for piece in text.split("#[no_mangle]").skip(1) {
            let signature = piece.split('{').next().unwrap();
            let function = signature.split("fn ").nth(1).unwrap().split('(').next().unwrap().trim().to_string();
            // The body: up to the next item at column 0.
            let body = piece.split("\n}\n").next().unwrap().to_string();
            found.push((name.clone(), function, body));
        }
    }
    found
}

#[test]
fn every_entry_point_of_the_folder_is_in_the_header_and_behind_the_boundary() {
    let header = std::fs::read_to_string(support::root().join("include/styletransfer.h")).unwrap();
    let entries = entry_points();
    assert!(entries.len() >= 20, "found only {} entry points under src/capi/", entries.len());
    for (file, function, body) in &entries {
        if function != "st_test_panic" {
            assert!(header.contains(&format!("{function}(")), "{file}: {function} is not declared in the header");
        }
        assert!(body.contains("ffi_boundary!"), "{file}: {function} does not go through ffi_boundary!");
    }
}
