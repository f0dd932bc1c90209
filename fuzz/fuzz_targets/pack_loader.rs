//! Fuzzes the style-pack reader: any bytes must give a pack or a clean
//! error, never a panic, a crash or an unbounded allocation. Both entry
//! points are covered: the full loader (`StylePack::from_bytes`) and the
//! header-and-thumbnail reader (`StylePack::read_info`, through a file).
#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use styletransfer::StylePack;

fuzz_target!(|data: &[u8]| {
    let _ = StylePack::from_bytes(data, Path::new("fuzz.stpack"));
    let path = std::env::temp_dir().join(format!("st-fuzz-{}.stpack", std::process::id()));
    if let Ok(mut file) = std::fs::File::create(&path) {
        if file.write_all(data).is_ok() {
            let _ = StylePack::read_info(&path);
        }
    }
});
