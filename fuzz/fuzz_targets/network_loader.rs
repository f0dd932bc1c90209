//! Fuzzes the network loader (`Network::from_bytes`, what `st_load_network`
//! and `stylize --net` read) and the description reader behind
//! `st_read_network_info`: any bytes must give a network or a clean error,
//! never a panic, a crash or an unbounded allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use styletransfer::network::Network;

fuzz_target!(|data: &[u8]| {
    let _ = Network::from_bytes(data, Path::new("fuzz.stnet"), tch::Device::Cpu);
    let path = std::env::temp_dir().join(format!("network-info-{}.stnet", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = Network::read_info(&path);
    }
});
