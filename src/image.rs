//! The core's image type (RGB, f32, display range 0..1), its conversions to
//! and from tensors, resampling, and file input/output.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// An RGB image with interleaved f32 samples in display range 0..1 (the
/// values an 8-bit file holds, divided by 255; no linearisation).
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

fn mem_error(reason: impl Into<String>) -> Error {
    Error::Image { path: PathBuf::new(), reason: reason.into() }
}

impl RgbImage {
    /// Wraps `data` (`width * height * 3` samples, row-major RGB). Samples
    /// must be finite; values outside 0..1 are kept (they are clamped on output).
    pub fn new(width: u32, height: u32, data: Vec<f32>) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::invalid("image", format!("size {width}×{height} is empty")));
        }
        let expected = width as usize * height as usize * 3;
        if data.len() != expected {
            return Err(Error::invalid(
                "image",
                format!("{} samples for {width}×{height} RGB (expected {expected})", data.len()),
            ));
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("image", "holds NaN or infinite samples"));
        }
        Ok(Self { width, height, data })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The samples, row-major interleaved RGB.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Takes the samples out.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Resamples to `width`×`height` (Lanczos-3 when shrinking, Catmull-Rom
    /// when enlarging); returns a copy when the size is unchanged.
    pub fn resize(&self, width: u32, height: u32) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::invalid("size", format!("cannot resize to {width}×{height}")));
        }
        if width == self.width && height == self.height {
            return Ok(self.clone());
        }
        let buffer: ImageBuffer<Rgb<f32>, Vec<f32>> = ImageBuffer::from_raw(self.width, self.height, self.data.clone())
            .ok_or_else(|| mem_error("buffer size does not match its dimensions"))?;
        let shrinking = width < self.width || height < self.height;
        let filter = if shrinking { FilterType::Lanczos3 } else { FilterType::CatmullRom };
        let resized = image::imageops::resize(&buffer, width, height, filter);
        Ok(Self { width, height, data: resized.into_raw() })
    }

    /// The image as a `[1, 3, H, W]` fp32 tensor on `device`: one copy of
    /// the pixels, in channels-last strides (a permuted view of the
    /// interleaved layout) rather than a second, contiguous copy.
    pub fn to_tensor(&self, device: Device) -> Result<Tensor> {
        let t = Tensor::f_from_slice(&self.data)?
            .f_view([1, self.height as i64, self.width as i64, 3])?
            .f_permute([0, 3, 1, 2])?;
        Ok(t.f_to_device(device)?)
    }

    /// Reads a `[1, 3, H, W]` tensor (any device, any float kind) back,
    /// clamping to 0..1. The pixels are copied straight into the image's
    /// own buffer (no intermediate image-sized tensor on the CPU).
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let size = t.size();
        if size.len() != 4 || size[0] != 1 || size[1] != 3 {
            return Err(mem_error(format!("tensor of shape {size:?} is not a [1, 3, H, W] image")));
        }
        let (height, width) = (size[2], size[3]);
        let mut data = vec![0f32; (width * height * 3) as usize];
        {
            // SAFETY: `data` holds height·width·3 f32 values, outlives
            // `view` (dropped at the end of this block) and is not touched
            // otherwise while the view exists.
            let view = unsafe {
                Tensor::f_from_blob(
                    data.as_mut_ptr() as *const u8,
                    &[1, height, width, 3],
                    &[],
                    Kind::Float,
                    Device::Cpu,
                )?
            };
            let mut nchw = view.f_permute([0, 3, 1, 2])?;
            nchw.f_copy_(t)?;
            let _ = nchw.f_clamp_(0.0, 1.0)?;
        }
        Ok(Self { width: width as u32, height: height as u32, data })
    }

    /// Rec. 601 luma per pixel.
    pub fn luminance(&self) -> Vec<f32> {
        self.data.chunks_exact(3).map(|p| luma(p[0], p[1], p[2])).collect()
    }
}

/// Rec. 601 luma of one pixel.
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// An image read from a file: its colour, its alpha if it had one, and
/// whether it carried more than 8 bits per sample.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// Colour samples.
    pub rgb: RgbImage,
    /// Alpha samples 0..1, one per pixel, when the file had alpha.
    pub alpha: Option<Vec<f32>>,
    /// True for 16-bit or float files.
    pub high_depth: bool,
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Image { path: path.to_path_buf(), reason: reason.into() }
}

/// Longest side of an image the library works on, in pixels: files, C
/// images and working sizes beyond it are refused.
pub const MAX_SIDE: u32 = 65536;

/// Most pixels of an image file ([`load`], [`decode`]): 2^27, e.g.
/// 16384 × 8192. Its RGB f32 samples take 1.5 GiB.
pub const MAX_FILE_PIXELS: u64 = 1 << 27;

/// Most bytes a decoder may allocate for one file (its decoded samples and
/// working buffers), and most bytes of a file: 2 GiB, a float RGBA file of
/// [`MAX_FILE_PIXELS`].
pub const MAX_DECODE_BYTES: u64 = 2 << 30;

/// Reads and decodes an image file (PNG, JPEG, TIFF, BMP, PNM, WebP),
/// within [`MAX_SIDE`], [`MAX_FILE_PIXELS`] and [`MAX_DECODE_BYTES`]. Only
/// regular files are read (not a FIFO or a device), and none larger than
/// [`MAX_DECODE_BYTES`].
pub fn load(path: &Path) -> Result<LoadedImage> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let metadata = file.metadata().map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if !metadata.is_file() {
        return Err(file_error(path, "not a regular file"));
    }
    if metadata.len() > MAX_DECODE_BYTES {
        return Err(file_error(
            path,
            format!("{} bytes is larger than the {MAX_DECODE_BYTES} an image file may have", metadata.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // At most one byte past the size read above, should the file grow meanwhile.
    (&mut file)
        .take(MAX_DECODE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_DECODE_BYTES {
        return Err(file_error(path, format!("larger than the {MAX_DECODE_BYTES} bytes an image file may have")));
    }
    decode(&bytes, path)
}

/// Decodes an image file's bytes as [`load`] does; `path` is used in
/// messages only (the format is judged by the bytes).
pub fn decode(bytes: &[u8], path: &Path) -> Result<LoadedImage> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    // The bytes decide the format; the extension is the guess when they do not.
    let reader = || -> Result<image::ImageReader<std::io::Cursor<&[u8]>>> {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes));
        if let Ok(format) = ImageFormat::from_path(path) {
            reader.set_format(format);
        }
        let mut reader = reader.with_guessed_format().map_err(|e| file_error(path, format!("cannot read: {e}")))?;
        if reader.format().is_none() {
            return Err(file_error(path, "not an image file (unrecognised format)"));
        }
        reader.limits(limits.clone());
        Ok(reader)
    };
    let (width, height) = reader()?.into_dimensions().map_err(|e| file_error(path, format!("cannot decode: {e}")))?;
    check_file_pixels(width, height).map_err(|reason| file_error(path, reason))?;
    let reader = reader()?;
    let decoded = reader.decode().map_err(|e| file_error(path, format!("cannot decode: {e}")))?;
    from_dynamic(decoded).map_err(|e| match e {
        Error::InvalidArgument { reason, .. } => file_error(path, reason),
        other => other,
    })
}

fn check_file_pixels(width: u32, height: u32) -> std::result::Result<(), String> {
    if width as u64 * height as u64 > MAX_FILE_PIXELS {
        return Err(format!("{width}×{height} is more than the {MAX_FILE_PIXELS} pixels an image file may have"));
    }
    Ok(())
}

/// Converts a decoded image.
pub fn from_dynamic(decoded: DynamicImage) -> Result<LoadedImage> {
    let high_depth = !matches!(
        decoded,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
    );
    let has_alpha = decoded.color().has_alpha();
    let (width, height) = (decoded.width(), decoded.height());
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let mut alpha = Vec::with_capacity(if has_alpha { width as usize * height as usize } else { 0 });
    let mut push = |p: [f32; 4]| {
        rgb.extend_from_slice(&p[..3]);
        if has_alpha {
            alpha.push(p[3]);
        }
    };
    // Integer samples become v / max, as the C API reads them (`st_image`),
    // for gray files too: the image crate's own gray conversion differs in
    // the last bit, which bf16 runs amplify into visible differences.
    match decoded.color().bytes_per_pixel() / decoded.color().channel_count() {
        1 => decoded.into_rgba8().pixels().for_each(|p| push(p.0.map(|v| v as f32 / 255.0))),
        2 => decoded.into_rgba16().pixels().for_each(|p| push(p.0.map(|v| v as f32 / 65535.0))),
        _ => decoded.into_rgba32f().pixels().for_each(|p| push(p.0)),
    }
    if alpha.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid("image", "holds NaN or infinite alpha samples"));
    }
    Ok(LoadedImage { rgb: RgbImage::new(width, height, rgb)?, alpha: has_alpha.then_some(alpha), high_depth })
}

/// The format `save` would use for `path`, judged by its extension.
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    let format = ImageFormat::from_path(path)
        .map_err(|_| file_error(path, "unknown output format (use .png, .jpg, .tif, .bmp, .ppm or .webp)"))?;
    if !format.writing_enabled() {
        return Err(file_error(path, "this format cannot be written"));
    }
    Ok(format)
}

/// Writes `rgb` (and `alpha`, where the format can hold it) to `path`. PNG
/// and TIFF get 16 bits per sample when `high_depth`. The file is written
/// under a temporary name in the same folder and renamed on success, so a
/// failure never leaves a partial file at `path`.
pub fn save(path: &Path, rgb: &RgbImage, alpha: Option<&[f32]>, high_depth: bool) -> Result<()> {
    let format = output_format(path)?;
    let (width, height) = (rgb.width(), rgb.height());
    if let Some(a) = alpha {
        if a.len() != width as usize * height as usize {
            return Err(Error::invalid("alpha", "alpha plane does not match the image size"));
        }
    }
    let keeps_alpha = alpha.is_some() && !matches!(format, ImageFormat::Jpeg | ImageFormat::Bmp | ImageFormat::Pnm);
    let sixteen = high_depth && matches!(format, ImageFormat::Png | ImageFormat::Tiff);
    let channels = if keeps_alpha { 4 } else { 3 };
    let mut samples = Vec::with_capacity(width as usize * height as usize * channels);
    for (i, p) in rgb.data().chunks_exact(3).enumerate() {
        samples.extend_from_slice(p);
        if keeps_alpha {
            samples.push(alpha.map_or(1.0, |a| a[i]));
        }
    }
    let dynamic = match (keeps_alpha, sixteen) {
        (false, false) => DynamicImage::ImageRgb8(
            ImageBuffer::from_raw(width, height, quantise(&samples, 255.0))
                .ok_or_else(|| file_error(path, "buffer size"))?,
        ),
        (true, false) => DynamicImage::ImageRgba8(
            ImageBuffer::from_raw(width, height, quantise(&samples, 255.0))
                .ok_or_else(|| file_error(path, "buffer size"))?,
        ),
        (false, true) => DynamicImage::ImageRgb16(
            ImageBuffer::from_raw(width, height, quantise(&samples, 65535.0))
                .ok_or_else(|| file_error(path, "buffer size"))?,
        ),
        (true, true) => DynamicImage::ImageRgba16(
            ImageBuffer::from_raw(width, height, quantise(&samples, 65535.0))
                .ok_or_else(|| file_error(path, "buffer size"))?,
        ),
    };
    let file_name = path.file_name().ok_or_else(|| file_error(path, "not a file name"))?.to_string_lossy().into_owned();
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let written =
        dynamic.save_with_format(&temporary, format).map_err(|e| file_error(path, format!("cannot write: {e}")));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        file_error(path, format!("cannot rename the finished file into place: {e}"))
    })
}

/// Rounds 0..1 samples to integers of the given full scale.
pub fn quantise<T: FromF32>(samples: &[f32], full_scale: f32) -> Vec<T> {
    samples.iter().map(|&v| T::from_f32((v.clamp(0.0, 1.0) * full_scale).round())).collect()
}

/// Integer sample types `quantise` produces.
pub trait FromF32 {
    /// Converts an already rounded, in-range value.
    fn from_f32(v: f32) -> Self;
}

impl FromF32 for u8 {
    fn from_f32(v: f32) -> Self {
        v as u8
    }
}

impl FromF32 for u16 {
    fn from_f32(v: f32) -> Self {
        v as u16
    }
}

/// sRGB transfer function: linear light → display value (both 0..1).
pub fn linear_to_srgb(v: f32) -> f32 {
    if v <= 0.003_130_8 {
        12.92 * v
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

/// Inverse sRGB transfer function: display value → linear light.
pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// `mask · stylised + (1 − mask) · content` per pixel (mask 0..1, one value per pixel).
pub fn blend_with_mask(stylised: &RgbImage, content: &RgbImage, mask: &[f32]) -> Result<RgbImage> {
    let pixels = content.width() as usize * content.height() as usize;
    if (stylised.width(), stylised.height()) != (content.width(), content.height()) || mask.len() != pixels {
        return Err(Error::invalid("mask", "the mask, the content and the result must have the same size"));
    }
    let data = stylised
        .data()
        .chunks_exact(3)
        .zip(content.data().chunks_exact(3))
        .zip(mask)
        .flat_map(|((s, c), &m)| {
            let m = m.clamp(0.0, 1.0);
            [m * s[0] + (1.0 - m) * c[0], m * s[1] + (1.0 - m) * c[1], m * s[2] + (1.0 - m) * c[2]]
        })
        .collect();
    RgbImage::new(content.width(), content.height(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_round_trip_keeps_pixels_and_clamps() {
        // 3×2, interleaved RGB; two values out of range.
        let data: Vec<f32> = (0..18).map(|i| i as f32 / 16.0 - 0.05).collect();
        let image = RgbImage::new(3, 2, data.clone()).unwrap();
        let t = image.to_tensor(Device::Cpu).unwrap();
        assert_eq!(t.size(), [1, 3, 2, 3]);
        // Pixel (x=2, y=1), green channel.
        let green = t.double_value(&[0, 1, 1, 2]);
        assert!((green - data[(3 + 2) * 3 + 1] as f64).abs() < 1e-7);
        let back = RgbImage::from_tensor(&t).unwrap();
        let expected: Vec<f32> = data.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        assert_eq!(back.data(), expected.as_slice());
        // From another kind and a contiguous NCHW layout: the same pixels.
        let half = t.contiguous().to_kind(Kind::Double);
        assert_eq!(RgbImage::from_tensor(&half).unwrap().data(), expected.as_slice());
        assert!(RgbImage::from_tensor(&Tensor::zeros([1, 4, 2, 2], (Kind::Float, Device::Cpu))).is_err());
    }
}
