//! The C ABI gives bitwise the output of the Rust API for the same inputs
//! (CPU, fixed seed), and its weights and strength reach a running optimisation.

mod support;

use std::ffi::{c_int, c_void, CString};

use styletransfer::capi::*;
use styletransfer::image::quantise;
use styletransfer::targets::image_targets;
use styletransfer::{Flow, Init, LiveWeights, RunOptions, StyleImage, StyleSet, Weights};

fn rgb8(image: &styletransfer::RgbImage) -> Vec<u8> {
    quantise(image.data(), 255.0)
}

fn c_image(data: &mut [u8], width: u32, height: u32) -> st_image {
    st_image {
        data: data.as_mut_ptr().cast(),
        width,
        height,
        stride_bytes: width as usize * 3,
        format: st_pixel_format::ST_PIXEL_RGB8 as u32,
        flags: 0,
    }
}

/// Panics with the handle's last error unless `status` is `ST_OK`.
fn ok(ctx: *mut st_context, status: st_status) {
    if status != st_status::ST_OK {
        let message = unsafe { std::ffi::CStr::from_ptr(st_last_error(ctx)) };
        panic!("{status:?}: {}", message.to_string_lossy());
    }
}

fn context() -> *mut st_context {
    let model = CString::new(support::model().to_str().unwrap()).unwrap();
    let device = CString::new("cpu").unwrap();
    let mut options = unsafe { std::mem::zeroed::<st_options>() };
    unsafe { st_default_options(&mut options) };
    options.model_path = model.as_ptr();
    options.device = device.as_ptr();
    options.precision = st_precision::ST_PRECISION_FP32 as u32;
    let mut ctx = std::ptr::null_mut();
    assert_eq!(unsafe { st_create(&options, &mut ctx) }, st_status::ST_OK);
    ctx
}

#[test]
fn c_api_output_is_bitwise_the_rust_apis() {
    let (w, h) = (40, 30);
    // 8-bit inputs, so both sides see exactly the same samples.
    let content = styletransfer::RgbImage::new(
        w,
        h,
        rgb8(&support::pattern(w, h, 0.3)).iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .unwrap();
    let style = styletransfer::RgbImage::new(
        w,
        h,
        rgb8(&support::pattern(w, h, 1.9)).iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .unwrap();

    let engine = support::cpu_engine();
    let mut styles = StyleSet::new(vec![StyleImage { image: style.clone(), weight: 1.0 }]).unwrap();
    let options = RunOptions { iterations: 5, init: Init::Noise, seed: 11, ..RunOptions::default() };
    let weights = LiveWeights::new(Weights::defaults(options.normalization)).unwrap();
    let rust = engine.run(&content, &mut styles, &options, &weights, &mut |_| Flow::Continue).unwrap();
    let rust_bytes = rgb8(&rust.image);

    let ctx = context();
    let mut content_bytes = rgb8(&content);
    let mut style_bytes = rgb8(&style);
    let mut out = vec![0u8; (w * h * 3) as usize];
    let mut run = unsafe { std::mem::zeroed::<st_run_options>() };
    unsafe { st_default_run_options(&mut run) };
    run.iterations = 5;
    run.init = st_init::ST_INIT_NOISE as u32;
    run.seed = 11;
    unsafe {
        assert_eq!(st_add_style(ctx, &c_image(&mut style_bytes, w, h), 1.0), st_status::ST_OK);
        let status = st_run(
            ctx,
            &c_image(&mut content_bytes, w, h),
            &mut c_image(&mut out, w, h),
            &run,
            None,
            std::ptr::null_mut(),
        );
        assert_eq!(status, st_status::ST_OK, "{:?}", std::ffi::CStr::from_ptr(st_last_error(ctx)));
        st_destroy(ctx);
    }
    assert_eq!(out, rust_bytes, "C API and Rust API outputs differ");
}

struct Strength {
    ctx: *mut st_context,
    at: u32,
    last: Option<st_progress>,
}

unsafe extern "C" fn raise_strength(user_data: *mut c_void, progress: *const st_progress) -> c_int {
    let state = &mut *(user_data as *mut Strength);
    let p = *progress;
    if state.at > 0 && p.evaluation == state.at {
        assert_eq!(st_set_strength(state.ctx, 0.9), st_status::ST_OK);
    }
    state.last = Some(p);
    0
}

/// Strength raised mid-run through the C callback: at equal work the style
/// loss ends lower and the content loss higher than without the change
/// (both measured under the original weights).
#[test]
fn strength_raised_mid_run_trades_content_for_style() {
    let (w, h) = (48, 48);
    let mut content_bytes = rgb8(&support::pattern(w, h, 0.0));
    let mut style_bytes = rgb8(&support::pattern(w, h, 2.2));
    let mut results = Vec::new();
    for at in [0, 3] {
        let ctx = context();
        let mut out = vec![0u8; (w * h * 3) as usize];
        let mut run = unsafe { std::mem::zeroed::<st_run_options>() };
        unsafe { st_default_run_options(&mut run) };
        run.iterations = 20;
        run.scales = 1;
        let mut state = Strength { ctx, at, last: None };
        unsafe {
            assert_eq!(st_add_style(ctx, &c_image(&mut style_bytes, w, h), 1.0), st_status::ST_OK);
            assert_eq!(st_set_strength(ctx, 0.5), st_status::ST_OK);
            let status = st_run(
                ctx,
                &c_image(&mut content_bytes, w, h),
                &mut c_image(&mut out, w, h),
                &run,
                Some(raise_strength),
                (&mut state as *mut Strength).cast(),
            );
            assert_eq!(status, st_status::ST_OK);
            st_destroy(ctx);
        }
        let last = state.last.unwrap();
        assert_eq!(last.evaluation, 20, "equal work");
        results.push(out);
    }
    // Score both outputs under the original (strength 0.5) objective.
    let engine = support::cpu_engine();
    let to_image =
        |bytes: &[u8]| styletransfer::RgbImage::new(w, h, bytes.iter().map(|&v| v as f32 / 255.0).collect()).unwrap();
    let style = image_targets(engine.model(), &to_image(&style_bytes), w).unwrap();
    let content_input = engine.to_input(&to_image(&content_bytes)).unwrap();
    let objective = styletransfer::loss::Objective::new(
        engine.model(),
        &content_input,
        &style,
        [1.0; 5],
        styletransfer::Normalization::Relative,
    )
    .unwrap();
    let unit = Weights { content: 1.0, style: 1.0, tv: 0.0 };
    let score = |bytes: &[u8]| {
        let x = engine.to_input(&to_image(bytes)).unwrap();
        tch::no_grad(|| objective.losses(&x, &unit)).unwrap().values().unwrap()
    };
    let (plain, raised) = (score(&results[0]), score(&results[1]));
    println!("plain {plain:?}\nraised {raised:?}");
    assert!(raised.style < plain.style, "style loss should drop: {} vs {}", raised.style, plain.style);
    assert!(raised.content > plain.content, "content loss should rise: {} vs {}", raised.content, plain.content);
}

/// A pack written through the C API and loaded back gives bitwise the run
/// of its source image.
#[test]
fn c_api_pack_round_trip_equals_the_image_run() {
    let dir = support::scratch("capi-pack");
    let (w, h) = (36, 30);
    let mut content = rgb8(&support::pattern(w, h, 0.1));
    let mut style = rgb8(&support::pattern(w, h, 2.7));
    let pack_path = CString::new(dir.join("p.stpack").to_str().unwrap()).unwrap();
    let name = CString::new("Pattern").unwrap();
    let mut run = unsafe { std::mem::zeroed::<st_run_options>() };
    unsafe { st_default_run_options(&mut run) };
    run.iterations = 3;
    let mut outputs = Vec::new();
    for use_pack in [false, true] {
        let ctx = context();
        let mut out = vec![0u8; (w * h * 3) as usize];
        unsafe {
            ok(ctx, st_add_style(ctx, &c_image(&mut style, w, h), 1.0));
            if use_pack {
                ok(ctx, st_create_style_pack(ctx, name.as_ptr(), pack_path.as_ptr()));
                ok(ctx, st_clear_styles(ctx));
                ok(ctx, st_add_style_pack(ctx, pack_path.as_ptr(), 1.0));
            }
            let status = st_run(
                ctx,
                &c_image(&mut content, w, h),
                &mut c_image(&mut out, w, h),
                &run,
                None,
                std::ptr::null_mut(),
            );
            assert_eq!(status, st_status::ST_OK);
            st_destroy(ctx);
        }
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1]);
}
