//! Tiled optimisation: a 384² run forced into 3×3 tiles by its memory
//! budget against the same run untiled (seams, loss under the reference
//! objective), the plan in the C API, and a budget too small to plan.

mod support;

use std::ffi::CString;
use std::process::Command;

use styletransfer::capi::*;
use styletransfer::loss::Objective;
use styletransfer::targets::{image_targets, ladder_side};
use styletransfer::{
    image, Flow, LiveWeights, MemoryOptions, Normalization, RgbImage, RunOptions, StyleImage, StyleSet, Weights,
};

const SIDE: u32 = 384;
const ITERATIONS: usize = 40;
/// Leaves the 192² level whole and cuts the 384² level into 3×3 tiles.
/// 200 MiB for the run's tensors once libtorch's CPU footprint is taken out.
const BUDGET_MB: u64 = 200 + (styletransfer::plan::CPU_RUNTIME_BYTES >> 20);
const OVERLAP: u32 = 32;

fn content() -> RgbImage {
    let cat = image::load(&support::root().join("examples/images/chelsea.jpg")).unwrap().rgb;
    let side = cat.height();
    let x0 = (cat.width() - side) / 2;
    let mut square = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        let row = ((y * cat.width() + x0) * 3) as usize;
        square.extend_from_slice(&cat.data()[row..row + (side * 3) as usize]);
    }
    RgbImage::new(side, side, square).unwrap().resize(SIDE, SIDE).unwrap()
}

fn style() -> RgbImage {
    image::load(&support::root().join("examples/images/swirls.jpg")).unwrap().rgb
}

/// Mean absolute step across the given column/row boundaries over the mean
/// step everywhere else, averaged over both directions.
fn seam_measure(image: &RgbImage, x_cuts: &[u32], y_cuts: &[u32]) -> f64 {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let px = |x: usize, y: usize, c: usize| image.data()[(y * w + x) * 3 + c] as f64;
    let mut ratio = 0.0;
    for vertical in [true, false] {
        let cuts = if vertical { x_cuts } else { y_cuts };
        let interior: Vec<usize> = cuts[1..cuts.len() - 1].iter().map(|&c| c as usize).collect();
        let (mut at, mut n_at, mut inside, mut n_inside) = (0.0, 0.0, 0.0, 0.0);
        let span = if vertical { w } else { h };
        for boundary in 1..span {
            let mut step = 0.0;
            let other = if vertical { h } else { w };
            for t in 0..other {
                for c in 0..3 {
                    step += if vertical {
                        (px(boundary, t, c) - px(boundary - 1, t, c)).abs()
                    } else {
                        (px(t, boundary, c) - px(t, boundary - 1, c)).abs()
                    };
                }
            }
            if interior.contains(&boundary) {
                at += step;
                n_at += 1.0;
            } else {
                inside += step;
                n_inside += 1.0;
            }
        }
        ratio += (at / n_at) / (inside / n_inside) / 2.0;
    }
    ratio
}

#[test]
fn tiles_forced_by_the_budget_leave_no_seams_and_match_the_untiled_loss() {
    let engine = support::cpu_engine();
    let (content, style) = (content(), style());
    let mut styles = StyleSet::new(vec![StyleImage { image: style.clone(), weight: 1.0 }]).unwrap();
    let base = RunOptions { iterations: ITERATIONS, normalization: Normalization::Reference, ..RunOptions::default() };
    let tiled_options = RunOptions {
        memory: MemoryOptions { max_memory_mb: Some(BUDGET_MB), tile_size: None, tile_overlap: Some(OVERLAP) },
        ..base.clone()
    };
    let plan = engine.plan((SIDE, SIDE), &styles, &tiled_options).unwrap();
    println!("{}", plan.describe());
    assert!(plan.levels[0].tiles.is_none(), "the coarse level should stay whole");
    let finest = plan.levels.last().unwrap();
    let (columns, rows) = finest.axes().expect("the finest level should be tiled");
    assert!(columns.tiles.len() >= 3 && rows.tiles.len() >= 3, "{:?} {:?}", columns, rows);
    assert!(plan.peak_bytes <= BUDGET_MB << 20);

    let weights = LiveWeights::new(Weights::defaults(Normalization::Reference)).unwrap();
    let mut run =
        |options: &RunOptions| engine.run(&content, &mut styles, options, &weights, &mut |_| Flow::Continue).unwrap();
    let (untiled, tiled) = (run(&base), run(&tiled_options));
    assert!(!untiled.report.plan.is_tiled());
    assert!(tiled.report.evaluations >= 9 * ITERATIONS);
    assert_eq!((tiled.image.width(), tiled.image.height()), (SIDE, SIDE));

    // The loss of each whole output under the reference objective.
    let targets = image_targets(engine.model(), &style, ladder_side(SIDE)).unwrap();
    let content_input = engine.to_input(&content).unwrap();
    let objective =
        Objective::new(engine.model(), &content_input, &targets, [1.0; 5], Normalization::Reference).unwrap();
    let reference = Weights::defaults(Normalization::Reference);
    let loss = |image: &RgbImage| {
        let x = engine.to_input(image).unwrap();
        tch::no_grad(|| objective.losses(&x, &reference)).unwrap().values().unwrap().total
    };
    let (untiled_loss, tiled_loss) = (loss(&untiled.image), loss(&tiled.image));
    let (untiled_seams, tiled_seams) = (
        seam_measure(&untiled.image, &columns.cuts, &rows.cuts),
        seam_measure(&tiled.image, &columns.cuts, &rows.cuts),
    );
    println!("loss untiled {untiled_loss:.5e} tiled {tiled_loss:.5e}; seams untiled {untiled_seams:.4} tiled {tiled_seams:.4}");
    assert!(tiled_loss <= untiled_loss * 1.05, "tiled loss {tiled_loss:e} vs untiled {untiled_loss:e}");
    // A seam raises the step across tile borders, too much blending lowers it
    // (measured 1.002 against 1.076 untiled at these borders).
    assert!(tiled_seams <= 1.10 * untiled_seams, "seam measure {tiled_seams} vs untiled {untiled_seams}");
    assert!(tiled_seams >= 0.90 * untiled_seams, "borders blurred: {tiled_seams} vs untiled {untiled_seams}");
}

#[test]
fn a_budget_below_one_tile_is_a_clean_error_without_output() {
    let dir = support::scratch("tiling-budget");
    let output = dir.join("out.png");
    let result = Command::new(env!("CARGO_BIN_EXE_stylize"))
        .args(["--content", "examples/images/chelsea.jpg", "--style", "examples/images/swirls.jpg", "--size", "256"])
        .args(["--iterations", "2", "--device", "cpu", "--max-memory-mb", "1", "-o"])
        .arg(&output)
        .current_dir(support::root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("out of memory") && stderr.contains("MiB"), "{stderr}");
    assert!(!output.exists(), "no output may be written");
}

#[test]
fn the_c_api_plans_tiles_for_large_images() {
    let model = CString::new(support::model().to_str().unwrap()).unwrap();
    let cpu = CString::new("cpu").unwrap();
    unsafe {
        let mut options = std::mem::zeroed::<st_options>();
        st_default_options(&mut options);
        options.model_path = model.as_ptr();
        options.device = cpu.as_ptr();
        let mut ctx = std::ptr::null_mut();
        assert_eq!(st_create(&options, &mut ctx), st_status::ST_OK);
        let mut style = vec![128u8; 64 * 64 * 3];
        let image = st_image {
            data: style.as_mut_ptr().cast(),
            width: 64,
            height: 64,
            stride_bytes: 64 * 3,
            format: st_pixel_format::ST_PIXEL_RGB8 as u32,
            flags: 0,
        };
        assert_eq!(st_add_style(ctx, &image, 1.0), st_status::ST_OK);
        let mut run = std::mem::zeroed::<st_run_options>();
        st_default_run_options(&mut run);
        run.working_size = 4096;
        run.max_memory_mb = 2048;
        let mut plan = st_memory_plan { size: std::mem::size_of::<st_memory_plan>(), ..Default::default() };
        assert_eq!(st_plan_memory(ctx, 4096, 4096, &run, &mut plan), st_status::ST_OK);
        assert_eq!(plan.budget_bytes, (2048 << 20) - styletransfer::plan::CPU_RUNTIME_BYTES);
        assert!(plan.peak_bytes <= plan.budget_bytes);
        assert!(plan.tiled_levels >= 1 && plan.tiles >= 4, "{plan:?}");
        run.max_memory_mb = 1;
        assert_eq!(st_plan_memory(ctx, 4096, 4096, &run, &mut plan), st_status::ST_OUT_OF_MEMORY);
        let message = std::ffi::CStr::from_ptr(st_last_error(ctx)).to_string_lossy().into_owned();
        assert!(message.contains("MiB"), "{message}");
        st_destroy(ctx);
    }
}
