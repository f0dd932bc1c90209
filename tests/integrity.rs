//! Every file the library reads is checked against the digest it records:
//! a single flipped bit anywhere in a style pack or in the model file is an
//! error, never silently wrong targets or weights; a pristine file loads as
//! before. Also prints what the check costs against the load.

mod support;

use std::path::Path;
use std::time::Instant;

use styletransfer::model::Vgg19;
use styletransfer::{Error, Precision, StyleImage, StylePack};
use tch::Device;

/// Offsets spread over a file: the length prefix, the header, and the data.
fn offsets(len: usize, header_end: usize) -> Vec<usize> {
    let mut at = vec![1, 8 + (header_end - 8) / 3, 8 + 2 * (header_end - 8) / 3];
    for k in 0..7 {
        at.push(header_end + (len - header_end - 1) * k / 6);
    }
    at
}

fn header_end(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn a_flipped_bit_in_a_pack_is_an_error_and_a_pristine_pack_loads_as_made() {
    let engine = support::cpu_engine();
    let style = support::pattern(72, 56, 0.3);
    let pack = StylePack::create(engine.model(), &[StyleImage { image: style, weight: 1.0 }], "Integrity").unwrap();
    let dir = support::scratch("integrity-pack");
    let path = dir.join("p.stpack");
    pack.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let model_digest = engine.model().weights_sha256().to_string();

    let started = Instant::now();
    let pristine = StylePack::load(&path, &model_digest).unwrap();
    let load = started.elapsed();
    for &side in &pack.info().sides {
        let (a, b) = (pack.targets(side, Device::Cpu).unwrap(), pristine.targets(side, Device::Cpu).unwrap());
        for (x, y) in a.grams.iter().zip(&b.grams) {
            assert!(x.equal(y), "side {side}: the reloaded targets differ");
        }
    }
    let end = header_end(&bytes);
    for offset in offsets(bytes.len(), end) {
        for bit in [0u8, 5] {
            let mut corrupt = bytes.clone();
            corrupt[offset] ^= 1 << bit;
            let broken = dir.join("broken.stpack");
            std::fs::write(&broken, &corrupt).unwrap();
            match StylePack::load(&broken, &model_digest) {
                Err(Error::Pack { reason, .. }) => {
                    assert!(!reason.is_empty());
                }
                Err(other) => panic!("bit {bit} at {offset}: {other} is not a pack error"),
                Ok(_) => panic!("bit {bit} at {offset} of {} (header ends at {end}): the pack loaded", bytes.len()),
            }
        }
    }
    let mut flipped = bytes.clone();
    flipped[bytes.len() - 100] ^= 1;
    std::fs::write(dir.join("data.stpack"), &flipped).unwrap();
    let message = StylePack::load(&dir.join("data.stpack"), &model_digest).err().unwrap().to_string();
    assert!(message.contains("data_sha256"), "{message}");
    let hashing = Instant::now();
    let _ = <sha2::Sha256 as sha2::Digest>::digest(&bytes[end..]);
    println!(
        "pack: {} bytes, loaded and checked in {:.1} ms, of which hashing about {:.1} ms",
        bytes.len(),
        load.as_secs_f64() * 1e3,
        hashing.elapsed().as_secs_f64() * 1e3
    );
}

#[test]
fn a_flipped_bit_in_the_model_is_an_error_and_the_pristine_model_loads() {
    let path = support::model();
    let bytes = std::fs::read(&path).unwrap();
    let started = Instant::now();
    let pristine = Vgg19::from_bytes(&bytes, &path, Device::Cpu, Precision::Fp32).unwrap();
    let load = started.elapsed();
    let loaded = Vgg19::load(&path, Device::Cpu, Precision::Fp32).unwrap();
    assert_eq!(pristine.weights_sha256(), loaded.weights_sha256());
    assert_eq!(pristine.weights_sha256().len(), 64);
    let end = header_end(&bytes);
    for offset in offsets(bytes.len(), end) {
        let mut corrupt = bytes.clone();
        corrupt[offset] ^= 1 << 3;
        match Vgg19::from_bytes(&corrupt, Path::new("corrupt.safetensors"), Device::Cpu, Precision::Fp32) {
            Err(Error::Model { reason, .. }) => assert!(!reason.is_empty()),
            Err(other) => panic!("bit at {offset}: {other} is not a model error"),
            Ok(_) => panic!("bit at {offset} of {} (header ends at {end}): the model loaded", bytes.len()),
        }
    }
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    let message = Vgg19::from_bytes(&flipped, Path::new("m"), Device::Cpu, Precision::Fp32).err().unwrap().to_string();
    assert!(message.contains("weights_sha256"), "{message}");
    let hashing = Instant::now();
    let _ = <sha2::Sha256 as sha2::Digest>::digest(&bytes[end..]);
    println!(
        "model: {} bytes, loaded and checked in {:.0} ms, of which hashing the weights about {:.0} ms",
        bytes.len(),
        load.as_secs_f64() * 1e3,
        hashing.elapsed().as_secs_f64() * 1e3
    );
}
