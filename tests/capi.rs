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

extern "C" fn count_passes(user_data: *mut c_void, progress: *const st_progress) -> c_int {
    let (count, cancel_at) = unsafe { &mut *user_data.cast::<(u32, u32)>() };
    let progress = unsafe { &*progress };
    assert_eq!(progress.loss, 0.0);
    assert!(progress.iteration <= progress.iterations);
    *count += 1;
    (*count == *cancel_at) as c_int
}

#[test]
fn c_api_network_runs_are_the_rust_apis() {
    use styletransfer::network::Network;
    use styletransfer::{InferenceOptions, NetworkInfo, NetworkShape, Precision};
    let dir = support::scratch("capi-network");
    let shape = NetworkShape { width: 8, residual_blocks: 1 };
    let network = Network::new(shape, 4, tch::Device::Cpu).unwrap();
    let info = NetworkInfo {
        name: "C net".into(),
        shape,
        style_sha256: vec![],
        model_sha256: "ab".repeat(32),
        training_images: 3,
        training_size: 64,
        steps: 7,
        batch: 1,
        seed: 4,
        final_loss: 0.25,
        library_version: "0.4.0".into(),
        format_version: 1,
    };
    let path = dir.join("c.stnet");
    network.save(&path, &info).unwrap();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();

    // The description.
    let mut described: *mut st_network_info = std::ptr::null_mut();
    assert_eq!(unsafe { st_read_network_info(c_path.as_ptr(), &mut described) }, st_status::ST_OK);
    let d = unsafe { &*described };
    assert_eq!(unsafe { std::ffi::CStr::from_ptr(d.name) }.to_str().unwrap(), "C net");
    assert_eq!((d.format_version, d.width, d.residual_blocks, d.training_images, d.training_size), (1, 8, 1, 3, 64));
    assert_eq!((d.steps, d.final_loss), (7, 0.25));
    unsafe { st_network_info_free(described) };
    let missing = CString::new(dir.join("none.stnet").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { st_read_network_info(missing.as_ptr(), &mut described) }, st_status::ST_NETWORK_ERROR);

    let ctx = context();
    let (w, h) = (40u32, 30u32);
    let mut content = rgb8(&support::pattern(w, h, 0.9));
    let content_image =
        styletransfer::RgbImage::new(w, h, content.iter().map(|&v| v as f32 / 255.0).collect()).unwrap();
    let mut out = vec![0u8; content.len()];
    let input = c_image(&mut content, w, h);
    let mut output = c_image(&mut out, w, h);
    let mut options = unsafe { std::mem::zeroed::<st_run_options>() };
    unsafe { st_default_run_options(&mut options) };
    options.engine = st_engine::ST_ENGINE_NETWORK as u32;
    let run = |options: &st_run_options, output: &mut st_image, user: Option<&mut (u32, u32)>| unsafe {
        match user {
            Some(u) => st_run(ctx, &input, output, options, Some(count_passes), (u as *mut (u32, u32)).cast()),
            None => st_run(ctx, &input, output, options, None, std::ptr::null_mut()),
        }
    };
    // No network loaded yet.
    assert_eq!(run(&options, &mut output, None), st_status::ST_NETWORK_ERROR);
    ok(ctx, unsafe { st_load_network(ctx, c_path.as_ptr()) });
    ok(ctx, unsafe { st_set_strength(ctx, 0.7) });
    ok(ctx, run(&options, &mut output, None));
    let mut rust = Network::load(&path, tch::Device::Cpu).unwrap().0;
    let expected = rust
        .stylize(
            &content_image,
            0.7,
            &InferenceOptions { precision: Precision::Fp32, ..Default::default() },
            &mut |_, _| Flow::Continue,
        )
        .unwrap();
    assert_eq!(out, rgb8(&expected), "the C network run differs from the Rust one");

    // Tiles: the same image (up to the rounding of 8-bit output), a progress
    // call per pass, and cancel.
    options.tile_size = 16;
    let mut tiled = vec![0u8; out.len()];
    let mut tiled_output = c_image(&mut tiled, w, h);
    let mut passes = (0u32, 0u32);
    ok(ctx, run(&options, &mut tiled_output, Some(&mut passes)));
    assert!(passes.0 > 1, "{} progress calls", passes.0);
    let worst = out.iter().zip(&tiled).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
    assert!(worst <= 1, "tiles differ by {worst}/255");
    let mut cancel = (0u32, 2u32);
    assert_eq!(run(&options, &mut tiled_output, Some(&mut cancel)), st_status::ST_CANCELLED);

    // Options a network run refuses, and an unknown engine.
    let mut bad = options;
    bad.preserve_color = st_preserve_color::ST_PRESERVE_COLOR_HISTOGRAM as u32;
    assert_eq!(run(&bad, &mut output, None), st_status::ST_INVALID_ARGUMENT);
    let mut bad = options;
    bad.engine = 7;
    assert_eq!(run(&bad, &mut output, None), st_status::ST_INVALID_ARGUMENT);

    // A bad file is refused and the loaded network stays.
    let corrupt = dir.join("corrupt.stnet");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    std::fs::write(&corrupt, bytes).unwrap();
    let c_corrupt = CString::new(corrupt.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { st_load_network(ctx, c_corrupt.as_ptr()) }, st_status::ST_NETWORK_ERROR);
    let message = unsafe { std::ffi::CStr::from_ptr(st_last_error(ctx)) }.to_string_lossy().into_owned();
    assert!(message.contains("corrupt.stnet") && message.contains("digest"), "{message}");
    options.tile_size = 0;
    let mut again = vec![0u8; out.len()];
    let mut again_output = c_image(&mut again, w, h);
    ok(ctx, run(&options, &mut again_output, None));
    assert_eq!(again, out);
    // The memory plan of a network pass: one level, untiled or in tiles.
    let plan = |options: &st_run_options| {
        let mut plan = unsafe { std::mem::zeroed::<st_memory_plan>() };
        plan.size = std::mem::size_of::<st_memory_plan>();
        let status = unsafe { st_plan_memory(ctx, w, h, options, &mut plan) };
        (status, plan)
    };
    let (status, whole) = plan(&options);
    ok(ctx, status);
    assert_eq!((whole.levels, whole.tiled_levels, whole.tiles, whole.tile_size), (1, 0, 1, w));
    assert_eq!(whole.model_bytes, rust.parameter_bytes());
    assert!(whole.peak_bytes > 0);
    let (status, tiled_plan) = plan(&st_run_options { tile_size: 16, ..options });
    ok(ctx, status);
    assert_eq!((tiled_plan.levels, tiled_plan.tiled_levels, tiled_plan.tile_size), (1, 1, 16));
    assert_eq!(tiled_plan.tiles, 3 * 2);
    // Unloading: a network run and its plan fail again.
    ok(ctx, unsafe { st_load_network(ctx, std::ptr::null()) });
    assert_eq!(run(&options, &mut output, None), st_status::ST_NETWORK_ERROR);
    assert_eq!(plan(&options).0, st_status::ST_NETWORK_ERROR);
    unsafe { st_destroy(ctx) };
}
