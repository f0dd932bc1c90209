//! Fuzzes the pack-description reader (`StylePack::read_info`, what
//! `st_read_pack_info`, `st_list_styles` and the hosts' style menus read):
//! it reads a file's header and thumbnail by offset, so each input is
//! written to a file first. Any bytes must give a description or a clean
//! error.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use styletransfer::StylePack;

fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("st-fuzz-info-{}.stpack", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    let written = std::fs::File::create(path).and_then(|mut file| file.write_all(data));
    if written.is_ok() {
        let _ = StylePack::read_info(path);
    }
});
