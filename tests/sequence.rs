//! Frames of a sequence: the optical flow against a known motion, the
//! reliability mask, warping, and frame runs (the temporal term applied,
//! the style kept, bad previous frames refused).

mod support;

use styletransfer::image::load;
use styletransfer::motion::{optical_flow, reliability, warp};
use styletransfer::{
    Error, Flow, FrameInput, FrameOptions, LiveWeights, Previous, RgbImage, RunOptions, StyleImage, StyleSet, Temporal,
    Weights,
};
use support::{cpu_engine, sample};
use tch::{Device, Kind, Tensor};

/// A `w`×`h` window of a sample photo (scaled to 320 px wide) at `(x, y)`.
fn window(name: &str, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    let photo = load(&sample(name)).expect("sample").rgb;
    let scale = 320.0 / photo.width() as f64;
    let photo = photo.resize(320, (photo.height() as f64 * scale).round() as u32).expect("resize");
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for row in y..y + h {
        let start = ((row * photo.width() + x) * 3) as usize;
        data.extend_from_slice(&photo.data()[start..start + (w * 3) as usize]);
    }
    RgbImage::new(w, h, data).expect("window")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A camera panning right by 3 px and down by 1 px: the scene moves by
/// (−3, −1) from one frame to the next, so the flow from frame 1 to frame 2
/// is (−3, −1) and back (3, 1).
#[test]
fn flow_follows_a_pan() {
    let (a, b) = (window("chelsea.jpg", 60, 40, 96, 72), window("chelsea.jpg", 63, 41, 96, 72));
    let forward = optical_flow(&a, &b, Device::Cpu).expect("flow");
    assert_eq!(forward.size(), [1, 2, 72, 96]);
    // Away from the borders, where the pan brings new pixels in.
    let interior = |t: &Tensor, c: i64| -> Vec<f64> {
        let plane = t.select(1, c).narrow(1, 8, 56).narrow(2, 8, 80).contiguous().view([-1]);
        Vec::<f64>::try_from(plane.to_kind(Kind::Double)).expect("values")
    };
    let (u, v) = (median(interior(&forward, 0)), median(interior(&forward, 1)));
    assert!((u + 3.0).abs() < 0.25 && (v + 1.0).abs() < 0.25, "forward flow median ({u:.2}, {v:.2}), want (−3, −1)");
    let backward = optical_flow(&b, &a, Device::Cpu).expect("flow");
    let (u, v) = (median(interior(&backward, 0)), median(interior(&backward, 1)));
    assert!((u - 3.0).abs() < 0.25 && (v - 1.0).abs() < 0.25, "backward flow median ({u:.2}, {v:.2}), want (3, 1)");
    // Deterministic: the same frames give the same flow bit for bit.
    let again = optical_flow(&a, &b, Device::Cpu).expect("flow");
    assert!(again.equal(&forward), "the flow differs between two computations");
}

/// Warping frame 1 by the flow from frame 2 to frame 1 reproduces frame 2
/// where the mask says it is reliable; the strip the pan brings in is masked.
#[test]
fn warp_and_mask_of_a_pan() {
    let (a, b) = (window("chelsea.jpg", 60, 40, 96, 72), window("chelsea.jpg", 63, 41, 96, 72));
    let backward = optical_flow(&b, &a, Device::Cpu).expect("flow"); // frame 2 → frame 1
    let forward = optical_flow(&a, &b, Device::Cpu).expect("flow"); // frame 1 → frame 2
    let mask = reliability(&forward, &backward).expect("mask");
    assert_eq!(mask.size(), [1, 1, 72, 96]);
    let share = mask.mean(Kind::Float).double_value(&[]);
    assert!(share > 0.85 && share < 0.995, "reliable share {share:.3}");
    // The scene moves left: frame 2's last 3 columns were outside frame 1.
    let right = mask.narrow(3, 94, 2).mean(Kind::Float).double_value(&[]);
    assert!(right < 0.05, "the entering strip is reliable in {right:.2} of its pixels");
    let (ta, tb) = (a.to_tensor(Device::Cpu).expect("tensor"), b.to_tensor(Device::Cpu).expect("tensor"));
    let warped = warp(&ta, &backward).expect("warp");
    let error = |x: &Tensor| {
        (x - &tb).square().f_mul(&mask).unwrap().sum(Kind::Float).double_value(&[])
            / (3.0 * mask.sum(Kind::Float).double_value(&[]))
    };
    let (warped_error, still_error) = (error(&warped), error(&ta));
    eprintln!("share {share:.3}, entering strip {right:.2}, warped {warped_error:.2e}, unwarped {still_error:.2e}");
    assert!(
        warped_error < 0.1 * still_error && warped_error < 2e-3,
        "warped error {warped_error:.2e} against {still_error:.2e} unwarped"
    );
}

/// Occlusion: a square that moves over a still background hides one side
/// and uncovers the other; the uncovered side is unreliable, the rest not.
#[test]
fn mask_marks_disocclusions() {
    let background = window("chelsea.jpg", 40, 30, 96, 72);
    let sprite = window("coffee.jpg", 100, 60, 24, 24);
    let paste = |x0: u32| {
        let mut data = background.data().to_vec();
        for y in 0..24 {
            for x in 0..24 {
                let (d, s) = ((((24 + y) * 96 + x0 + x) * 3) as usize, ((y * 24 + x) * 3) as usize);
                data[d..d + 3].copy_from_slice(&sprite.data()[s..s + 3]);
            }
        }
        RgbImage::new(96, 72, data).expect("frame")
    };
    let (a, b) = (paste(30), paste(38)); // the square moves right by 8 px
    let backward = optical_flow(&b, &a, Device::Cpu).expect("flow");
    let forward = optical_flow(&a, &b, Device::Cpu).expect("flow");
    let mask = reliability(&forward, &backward).expect("mask");
    let region = |x0: i64, x1: i64| mask.narrow(2, 30, 12).narrow(3, x0, x1 - x0).mean(Kind::Float).double_value(&[]);
    // Columns 30..38 of frame 2 show background that the square hid in frame 1.
    let uncovered = region(31, 37);
    let far = region(70, 90);
    eprintln!("reliable: uncovered {uncovered:.2}, still background {far:.2}");
    assert!(uncovered < 0.5, "uncovered background reliable in {uncovered:.2} of its pixels");
    assert!(far > 0.9, "still background reliable in only {far:.2} of its pixels");
}

fn style_set() -> StyleSet {
    let style = load(&sample("starry_night.jpg")).expect("style").rgb;
    StyleSet::new(vec![StyleImage { image: style, weight: 1.0 }]).expect("styles")
}

fn small_options(iterations: usize) -> RunOptions {
    RunOptions { iterations, size: Some(64), ..RunOptions::default() }
}

/// Mean squared difference over the pixels where `mask` is 1.
fn masked_error(x: &RgbImage, y: &RgbImage, mask: &Tensor) -> f64 {
    let (tx, ty) = (x.to_tensor(Device::Cpu).expect("tensor"), y.to_tensor(Device::Cpu).expect("tensor"));
    (tx - ty).square().f_mul(mask).unwrap().sum(Kind::Float).double_value(&[])
        / (3.0 * mask.sum(Kind::Float).double_value(&[]))
}

/// Frame 2 of a pan in flow mode stays closer to frame 1's output warped
/// than an independent frame 2 does, reports its temporal term, and keeps
/// the style (its style term far below the content frame's).
#[test]
fn flow_frame_keeps_close_to_the_previous_output() {
    let engine = cpu_engine();
    let mut styles = style_set();
    let (a, b) = (window("chelsea.jpg", 60, 40, 64, 48), window("chelsea.jpg", 63, 41, 64, 48));
    let options = small_options(30);
    let weights = LiveWeights::new(Weights::defaults(options.normalization)).expect("weights");
    let mut none = |_: &styletransfer::Progress| Flow::Continue;
    let run = |temporal,
               previous: Option<Previous>,
               styles: &mut StyleSet,
               none: &mut dyn FnMut(&styletransfer::Progress) -> Flow| {
        let frame = FrameOptions { temporal, iterations: Some(20), ..FrameOptions::default() };
        engine.run_frame(FrameInput { content: &b, previous }, styles, &options, &frame, &weights, none).expect("frame")
    };
    let first = engine
        .run_frame(
            FrameInput { content: &a, previous: None },
            &mut styles,
            &options,
            &FrameOptions::default(),
            &weights,
            &mut none,
        )
        .expect("first");
    assert_eq!(first.frame.temporal, Temporal::Off, "a first frame is an independent one");
    let previous = Previous { content: &a, output: &first.output.image };
    let flow = run(Temporal::Flow, Some(previous), &mut styles, &mut none);
    let independent = run(Temporal::Off, Some(previous), &mut styles, &mut none);
    assert_eq!(flow.frame.temporal, Temporal::Flow);
    assert_eq!(flow.output.report.levels, vec![(64, 48)], "a flow frame runs at the working size only");
    assert!(flow.output.report.loss.temporal > 0.0, "no temporal term reported");
    assert_eq!(independent.output.report.loss.temporal, 0.0);
    assert!(flow.frame.reliable > 0.8, "reliable share {}", flow.frame.reliable);
    // The warping error against the true motion.
    let backward = optical_flow(&b, &a, Device::Cpu).expect("flow");
    let forward = optical_flow(&a, &b, Device::Cpu).expect("flow");
    let mask = reliability(&forward, &backward).expect("mask");
    let warped_first =
        RgbImage::from_tensor(&warp(&first.output.image.to_tensor(Device::Cpu).unwrap(), &backward).unwrap()).unwrap();
    let (e_flow, e_off) = (
        masked_error(&flow.output.image, &warped_first, &mask),
        masked_error(&independent.output.image, &warped_first, &mask),
    );
    eprintln!("warping error: flow {e_flow:.2e}, independent {e_off:.2e}; reliable {:.3}", flow.frame.reliable);
    assert!(e_flow < 0.5 * e_off, "warping error with flow {e_flow:.2e}, independent {e_off:.2e}");
    // The style is still applied: the frame's style term against the
    // content frame's own (as a run would score it).
    let content_score = engine
        .run_frame(
            FrameInput { content: &b, previous: None },
            &mut styles,
            &RunOptions { iterations: 1, ..small_options(1) },
            &FrameOptions::default(),
            &weights,
            &mut none,
        )
        .expect("score");
    eprintln!(
        "style: flow frame {:.4}, content {:.4}",
        flow.output.report.loss.style, content_score.output.report.loss.style
    );
    assert!(
        flow.output.report.loss.style < 0.5 * content_score.output.report.loss.style,
        "style term {} against {} after one evaluation from the content",
        flow.output.report.loss.style,
        content_score.output.report.loss.style
    );
}

#[test]
fn bad_previous_frames_are_refused() {
    let engine = cpu_engine();
    let mut styles = style_set();
    let a = window("chelsea.jpg", 60, 40, 64, 48);
    let small = window("chelsea.jpg", 60, 40, 32, 24);
    let options = small_options(2);
    let weights = LiveWeights::new(Weights::defaults(options.normalization)).expect("weights");
    let mut none = |_: &styletransfer::Progress| Flow::Continue;
    for (previous, name) in [
        (Previous { content: &small, output: &a }, "previous_content"),
        (Previous { content: &a, output: &small }, "previous_output"),
    ] {
        match engine.run_frame(
            FrameInput { content: &a, previous: Some(previous) },
            &mut styles,
            &options,
            &FrameOptions::default(),
            &weights,
            &mut none,
        ) {
            Err(Error::InvalidArgument { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected an invalid {name}, got {other:?}"),
        }
    }
    let frame = FrameOptions { temporal_weight: f64::NAN, ..FrameOptions::default() };
    assert!(matches!(
        engine.run_frame(
            FrameInput { content: &a, previous: None },
            &mut styles,
            &options,
            &frame,
            &weights,
            &mut none
        ),
        Err(Error::InvalidArgument { name: "temporal_weight", .. })
    ));
}

/// Tiles and colour preservation work in a flow frame: the temporal term
/// follows each tile, and the output keeps the content's colours.
#[test]
fn flow_frames_tile_and_preserve_colour() {
    let engine = cpu_engine();
    let mut styles = style_set();
    let (a, b) = (window("chelsea.jpg", 60, 40, 96, 72), window("chelsea.jpg", 63, 41, 96, 72));
    let options = RunOptions {
        iterations: 8,
        size: Some(96),
        scales: Some(1),
        preserve_color: styletransfer::PreserveColor::Luminance,
        memory: styletransfer::MemoryOptions { tile_size: Some(64), tile_overlap: Some(16), ..Default::default() },
        ..RunOptions::default()
    };
    let weights = LiveWeights::new(Weights::defaults(options.normalization)).expect("weights");
    let mut none = |_: &styletransfer::Progress| Flow::Continue;
    let frame = FrameOptions::default();
    let first = engine
        .run_frame(FrameInput { content: &a, previous: None }, &mut styles, &options, &frame, &weights, &mut none)
        .expect("first");
    let previous = Previous { content: &a, output: &first.output.image };
    let second = engine
        .run_frame(
            FrameInput { content: &b, previous: Some(previous) },
            &mut styles,
            &options,
            &frame,
            &weights,
            &mut none,
        )
        .expect("second");
    assert!(second.output.report.plan.levels[0].tiles.is_some(), "the frame was not tiled");
    assert!(second.output.report.loss.temporal > 0.0, "no temporal term in the tiles");
    // Luminance-only transfer: the output keeps the content's chroma (each
    // channel less the pixel's luma), clamping aside.
    let chroma = |image: &RgbImage| -> Vec<f32> {
        image.data().chunks_exact(3).zip(image.luminance()).flat_map(|(p, y)| [p[0] - y, p[1] - y, p[2] - y]).collect()
    };
    let (out, content) = (chroma(&second.output.image), chroma(&b));
    let mean = out.iter().zip(&content).map(|(x, y)| (x - y).abs()).sum::<f32>() / out.len() as f32;
    assert!(mean < 0.01, "the chroma differs from the content's by {mean} on average");
}
