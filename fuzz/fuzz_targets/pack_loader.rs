//! Fuzzes the style-pack loader (`StylePack::from_bytes`, what
//! `st_add_style_pack` and `stylize --style-pack` read): any bytes must give
//! a pack or a clean error, never a panic, a crash or an unbounded
//! allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use styletransfer::StylePack;

fuzz_target!(|data: &[u8]| {
    let _ = StylePack::from_bytes(data, Path::new("fuzz.stpack"));
});
