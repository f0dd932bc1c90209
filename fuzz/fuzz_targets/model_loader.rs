//! Fuzzes the model loader (`Vgg19::from_bytes`, what `st_create` and
//! `stylize` read from `vgg19.safetensors`): the safetensors header, the
//! metadata (`input_convention`, `weights_sha256`), every layer's presence,
//! dtype, shape and finiteness, and the weights digest. Any bytes must give
//! a model or a clean error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use styletransfer::model::Vgg19;
use styletransfer::Precision;

fuzz_target!(|data: &[u8]| {
    let _ = Vgg19::from_bytes(data, Path::new("fuzz.safetensors"), tch::Device::Cpu, Precision::Fp32);
});
