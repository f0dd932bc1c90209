//! The feed-forward network (`styletransfer::network`, `styletransfer::train`):
//! training lowers the distilled objective, the `.stnet` file round-trips and
//! refuses bad files with one clear error, inference is deterministic, tiles
//! join without seams, and a resumed training is the uninterrupted one.
//! Everything runs on the CPU in fp32 at 32-64 px.

mod support;

use std::path::Path;

use styletransfer::network::{Network, NETWORK_FORMAT_VERSION};
use styletransfer::train::score;
use styletransfer::{
    image, Engine, Flow, InferenceOptions, NetworkInfo, NetworkShape, Normalization, Precision, RgbImage, StyleImage,
    StyleSet, TrainOptions, Trainer, Weights,
};
use support::{cpu_engine, pattern, sample, scratch};

const SHAPE: NetworkShape = NetworkShape { width: 16, residual_blocks: 2 };

fn style_set() -> StyleSet {
    let style = image::load(&sample("swirls.jpg")).unwrap().rgb.resize(64, 64).unwrap();
    StyleSet::new(vec![StyleImage { image: style, weight: 1.0 }]).unwrap()
}

fn training_images() -> Vec<RgbImage> {
    ["chelsea.jpg", "coffee.jpg"]
        .iter()
        .map(|name| image::load(&sample(name)).unwrap().rgb.resize(72, 48).unwrap())
        .collect()
}

fn options(steps: u64) -> TrainOptions {
    TrainOptions { size: 32, steps, batch: 4, shape: SHAPE, seed: 11, lr: 1e-3, ..TrainOptions::default() }
}

fn train(engine: &Engine, steps: u64) -> Trainer<'_> {
    let mut trainer = Trainer::new(engine, &mut style_set(), &training_images(), options(steps)).unwrap();
    while !trainer.finished() {
        trainer.step().unwrap();
    }
    trainer
}

fn stylize(network: &mut Network, content: &RgbImage, strength: f64, tile: Option<u32>) -> RgbImage {
    let options = InferenceOptions { precision: Precision::Fp32, budget_bytes: None, tile_size: tile };
    network.stylize(content, strength, &options, &mut |_, _| Flow::Continue).unwrap()
}

fn info() -> NetworkInfo {
    NetworkInfo {
        name: "test".into(),
        shape: SHAPE,
        style_sha256: vec!["ab".repeat(32)],
        model_sha256: "cd".repeat(32),
        training_images: 2,
        training_size: 32,
        steps: 1,
        batch: 1,
        seed: 0,
        final_loss: 0.5,
        library_version: env!("CARGO_PKG_VERSION").into(),
        format_version: NETWORK_FORMAT_VERSION,
    }
}

/// The fp32 objective at strength ½ of `image` as the result for `content`.
fn terms(engine: &Engine, content: &RgbImage, image: &RgbImage, strength: f64) -> styletransfer::LossTerms {
    let weights = Weights::with_strength(Weights::defaults(Normalization::Relative), strength).unwrap();
    score(engine, content, image, &mut style_set(), &weights, Normalization::Relative, 1.0).unwrap()
}

#[test]
fn training_lowers_the_objective_and_the_file_round_trips() {
    let engine = cpu_engine();
    // A training image at a size of the training crops' order.
    let photo = training_images()[0].resize(48, 32).unwrap();
    let mut untrained = Network::new(SHAPE, 11, tch::Device::Cpu).unwrap();
    let before = terms(&engine, &photo, &stylize(&mut untrained, &photo, 0.5, None), 0.5);
    let trainer = train(&engine, 60);
    let path = scratch("network-roundtrip").join("net.stnet");
    trainer.network().save(&path, &trainer.info("Swirls net")).unwrap();
    let (mut loaded, info) = Network::load(&path, tch::Device::Cpu).unwrap();
    let result = stylize(&mut loaded, &photo, 0.5, None);
    let after = terms(&engine, &photo, &result, 0.5);
    let source = terms(&engine, &photo, &photo, 0.5);
    eprintln!(
        "objective before {:.4}, after {:.4} (60 steps); style term of the result {:.4}, of the photo itself {:.4}",
        before.total, after.total, after.style, source.style
    );
    assert!(
        after.total <= 0.7 * before.total,
        "the objective fell from {} to {}: less than 30 %",
        before.total,
        after.total
    );
    // The style was applied: the result's style term is well below the photo's own.
    assert!(after.style < 0.85 * source.style, "style term {} against the photo's own {}", after.style, source.style);

    // The description says what the training was.
    assert_eq!(info.name, "Swirls net");
    assert_eq!(info.shape, SHAPE);
    assert_eq!((info.steps, info.batch, info.training_images, info.training_size), (60, 4, 2, 32));
    assert_eq!(info.model_sha256, engine.model().weights_sha256());
    assert_eq!(info.style_sha256.len(), 1);
    assert!(info.final_loss.is_finite() && info.final_loss > 0.0);
    assert_eq!(Network::read_info(&path).unwrap(), info);

    // The loaded network computes what the trained one does, bit for bit,
    // and saving it again gives the same bytes.
    let content = pattern(44, 36, 1.1);
    let mut trained = Network::load(&path, tch::Device::Cpu).unwrap().0;
    let first = stylize(&mut trained, &content, 0.5, None);
    let again = stylize(&mut loaded, &content, 0.5, None);
    assert_eq!(first.data(), again.data(), "inference is not deterministic");
    assert_eq!(trained.to_bytes(&info).unwrap(), std::fs::read(&path).unwrap());
    assert_eq!((first.width(), first.height()), (44, 36));

    // Strength is an input: 0.5 is the middle anchor, and strengths apart
    // give other images (how far apart, the measurement script says).
    let (weak, strong) = (stylize(&mut loaded, &photo, 0.0, None), stylize(&mut loaded, &photo, 1.0, None));
    let apart = weak.data().iter().zip(strong.data()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(apart > 1e-3, "strengths 0 and 1 differ by at most {apart}");
}

#[test]
fn tiles_join_without_seams() {
    let mut network = Network::new(SHAPE, 3, tch::Device::Cpu).unwrap();
    // Make the untrained network do something non-trivial everywhere.
    let content = pattern(100, 70, 0.7);
    let whole = stylize(&mut network, &content, 0.5, None);
    for tile in [16, 24, 40] {
        let tiled = stylize(&mut network, &content, 0.5, Some(tile));
        let worst = whole.data().iter().zip(tiled.data()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "tiles of {tile}: largest difference {worst}");
    }
    // A budget below the whole image's estimate tiles too, with the same result.
    let budget = network.estimated_bytes(100, 70, Precision::Fp32) / 3;
    let options = InferenceOptions { precision: Precision::Fp32, budget_bytes: Some(budget), tile_size: None };
    let mut passes = 0;
    let tiled = network
        .stylize(&content, 0.5, &options, &mut |done, total| {
            passes = total;
            assert!(done <= total);
            Flow::Continue
        })
        .unwrap();
    assert!(passes > 1, "a budget of a third of the estimate did not tile");
    let worst = whole.data().iter().zip(tiled.data()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "budget tiling: largest difference {worst}");
    // bf16 (the automatic precision on CUDA and on CPUs with native bf16;
    // emulated by libtorch elsewhere): close to fp32, tiled or not.
    let bf16 = |tile: Option<u32>, network: &mut Network| {
        let options = InferenceOptions { precision: Precision::Bf16, budget_bytes: None, tile_size: tile };
        network.stylize(&content, 0.5, &options, &mut |_, _| Flow::Continue).unwrap()
    };
    let mean_difference = |a: &RgbImage, b: &RgbImage| {
        a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs() as f64).sum::<f64>() / a.data().len() as f64
    };
    let (bf16_whole, bf16_tiled) = (bf16(None, &mut network), bf16(Some(24), &mut network));
    let (to_fp32, tiled_to_whole) = (mean_difference(&bf16_whole, &whole), mean_difference(&bf16_tiled, &bf16_whole));
    eprintln!("bf16: mean difference to fp32 {to_fp32:.5}, tiled to whole {tiled_to_whole:.5}");
    assert!(to_fp32 < 0.01 && tiled_to_whole < 0.01, "bf16 differs: {to_fp32} from fp32, {tiled_to_whole} tiled");
    // Cancel stops it.
    let cancelled = network.stylize(&content, 0.5, &options, &mut |done, _| {
        if done == 2 {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    });
    assert!(matches!(cancelled, Err(styletransfer::Error::Cancelled)), "{:?}", cancelled.err());
}

#[test]
fn resumed_training_is_the_uninterrupted_one() {
    let engine = cpu_engine();
    let whole = train(&engine, 6);
    let dir = scratch("network-resume");
    let checkpoint = dir.join("train.ckpt");
    let mut first = Trainer::new(&engine, &mut style_set(), &training_images(), options(6)).unwrap();
    for _ in 0..3 {
        first.step().unwrap();
    }
    first.save_checkpoint(&checkpoint).unwrap();
    drop(first);
    let mut resumed = Trainer::new(&engine, &mut style_set(), &training_images(), options(6)).unwrap();
    resumed.resume(&checkpoint).unwrap();
    assert_eq!(resumed.step_count(), 3);
    while !resumed.finished() {
        resumed.step().unwrap();
    }
    let a = whole.network().to_bytes(&whole.info("n")).unwrap();
    let b = resumed.network().to_bytes(&resumed.info("n")).unwrap();
    assert!(a == b, "the resumed training differs from the uninterrupted one");

    // A checkpoint of another training (another seed) is refused.
    let other = TrainOptions { seed: 12, ..options(6) };
    let mut stranger = Trainer::new(&engine, &mut style_set(), &training_images(), other).unwrap();
    let err = stranger.resume(&checkpoint).unwrap_err().to_string();
    assert!(err.contains("another training"), "{err}");
}

fn expect_error(bytes: &[u8], dir: &Path, name: &str, needle: &str) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = match Network::load(&path, tch::Device::Cpu) {
        Ok(_) => panic!("{name}: loaded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(needle), "{name}: `{err}` does not say `{needle}`");
    assert!(err.contains(name), "{name}: `{err}` does not name the file");
}

/// The file with one metadata value replaced (the header rewritten, the
/// digest left as it was unless `key` is the digest).
fn with_metadata(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    header["__metadata__"][key] = serde_json::Value::String(value.into());
    let mut text = serde_json::to_vec(&header).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend_from_slice(&bytes[8 + length..]);
    out
}

#[test]
fn bad_files_give_one_clear_error() {
    let dir = scratch("network-bad");
    let network = Network::new(SHAPE, 1, tch::Device::Cpu).unwrap();
    let good = network.to_bytes(&info()).unwrap();
    std::fs::write(dir.join("good.stnet"), &good).unwrap();
    assert!(Network::load(&dir.join("good.stnet"), tch::Device::Cpu).is_ok());

    expect_error(&good[..good.len() / 2], &dir, "truncated.stnet", "corrupt");
    expect_error(&good[..5], &dir, "short.stnet", "not a network file");
    expect_error(b"P6\n4 4\n255\n0123456789", &dir, "ppm.stnet", "not a network file");
    expect_error(&with_metadata(&good, "format_version", "2"), &dir, "future.stnet", "newer styletransfer");
    expect_error(&with_metadata(&good, "format", "styletransfer-stpack"), &dir, "pack.stnet", "not a network file");
    expect_error(&with_metadata(&good, "architecture", "unet"), &dir, "arch.stnet", "architecture `unet`");
    // The metadata says another shape than the tensors have.
    expect_error(&with_metadata(&good, "width", "32"), &dir, "width.stnet", "expected F32");
    expect_error(&with_metadata(&good, "residual_blocks", "3"), &dir, "blocks.stnet", "holds");
    expect_error(&with_metadata(&good, "width", "1000"), &dir, "wide.stnet", "width");
    // A flipped bit in the data, and edited metadata under the old digest.
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    expect_error(&flipped, &dir, "flipped.stnet", "do not match the digest");
    expect_error(&with_metadata(&good, "name", "renamed"), &dir, "renamed.stnet", "do not match the digest");
    // Missing file.
    let err = Network::load(&dir.join("absent.stnet"), tch::Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("absent.stnet") && err.contains("cannot read"), "{err}");

    // Inputs a run refuses.
    let mut net = Network::new(SHAPE, 1, tch::Device::Cpu).unwrap();
    let inference = InferenceOptions::default();
    let err = net.stylize(&pattern(16, 16, 0.0), 1.5, &inference, &mut |_, _| Flow::Continue).err().unwrap();
    assert!(err.to_string().contains("strength"), "{err}");
    let err = Network::new(NetworkShape { width: 2, residual_blocks: 2 }, 0, tch::Device::Cpu).err().unwrap();
    assert!(err.to_string().contains("width"), "{err}");
    let engine = cpu_engine();
    for (bad, needle) in [
        (TrainOptions { size: 30, ..options_for_errors() }, "size"),
        (TrainOptions { steps: 0, ..options_for_errors() }, "steps"),
        (TrainOptions { batch: 0, ..options_for_errors() }, "batch"),
        (TrainOptions { lr: -1.0, ..options_for_errors() }, "lr"),
    ] {
        let err = Trainer::new(&engine, &mut style_set(), &training_images(), bad).err().unwrap().to_string();
        assert!(err.contains(needle), "`{err}` does not say `{needle}`");
    }
    let err = Trainer::new(&engine, &mut style_set(), &[], options(2)).err().unwrap().to_string();
    assert!(err.contains("images"), "{err}");
}

fn options_for_errors() -> TrainOptions {
    options(2)
}
