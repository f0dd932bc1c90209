//! Fuzzes style images as the library reads them from files: each input is
//! written to a file and added with `st_add_style_file` on one handle
//! (created once, with the model `ST_MODEL` names or the one the library
//! finds), so the C boundary, the format sniffing and every decoder (PNG,
//! JPEG, TIFF, BMP, PNM, WebP) with the library's size limits are covered.
//! Any bytes must give `ST_OK` or `ST_IMAGE_ERROR`, never a crash, a hang
//! or an allocation past the limits.
#![no_main]

use std::ffi::CString;
use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use styletransfer::capi::{
    st_add_style_file, st_clear_styles, st_context, st_create, st_default_options, st_options, st_status,
};

/// The handle's address: libFuzzer calls the target from one thread.
fn context() -> usize {
    static CONTEXT: OnceLock<usize> = OnceLock::new();
    *CONTEXT.get_or_init(|| unsafe {
        let mut options = std::mem::zeroed::<st_options>();
        assert_eq!(st_default_options(&mut options), st_status::ST_OK);
        options.device = c"cpu".as_ptr();
        options.threads = 1;
        let mut ctx: *mut st_context = std::ptr::null_mut();
        let status = st_create(&options, &mut ctx);
        assert_eq!(status, st_status::ST_OK, "st_create failed: set ST_MODEL to the model file");
        ctx as usize
    })
}

fn input_path() -> &'static CString {
    static PATH: OnceLock<CString> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("st-fuzz-image-{}", std::process::id()));
        CString::new(path.into_os_string().into_string().expect("a UTF-8 temporary folder")).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let ctx = context() as *mut st_context;
    let path = input_path();
    let written = std::fs::File::create(path.to_str().unwrap()).and_then(|mut file| file.write_all(data));
    if written.is_err() {
        return;
    }
    unsafe {
        let status = st_add_style_file(ctx, path.as_ptr(), 1.0);
        assert!(
            matches!(status, st_status::ST_OK | st_status::ST_IMAGE_ERROR),
            "st_add_style_file returned {status:?}"
        );
        assert_eq!(st_clear_styles(ctx), st_status::ST_OK);
    }
});
