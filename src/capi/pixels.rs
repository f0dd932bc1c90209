//! Pixel buffers of the C ABI (`st_image`): validation and conversion to and
//! from the core's RGB f32 image, alpha kept aside untouched, and
//! `st_convert_image`, which hosts use instead of converting pixels
//! themselves.

#[cfg(doc)]
use super::*; // the functions the docs link to

use super::boundary::null_argument;
use super::types::*;
use crate::error::{Error, Result};
use crate::image::{linear_to_srgb, luma, srgb_to_linear, RgbImage, MAX_SIDE};

/// Every flag `st_image.flags` may hold.
const KNOWN_FLAGS: u32 = ST_IMAGE_LINEAR | ST_IMAGE_PREMULTIPLIED | ST_IMAGE_BOTTOM_UP | ST_IMAGE_MASK_ALPHA;

/// Sample storage of a pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sample {
    U8,
    U16,
    F32,
}

impl Sample {
    fn bytes(self) -> usize {
        match self {
            Sample::U8 => 1,
            Sample::U16 => 2,
            Sample::F32 => 4,
        }
    }
}

/// What a pixel format holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub sample: Sample,
    pub gray: bool,
    pub alpha: bool,
    pub bgr: bool,
}

impl Layout {
    /// The layout of an `st_pixel_format` value, `None` if unknown.
    pub fn of(format: u32) -> Option<Self> {
        use st_pixel_format::*;
        let l = |sample, gray, alpha, bgr| Some(Layout { sample, gray, alpha, bgr });
        match format {
            f if f == ST_PIXEL_GRAY8 as u32 => l(Sample::U8, true, false, false),
            f if f == ST_PIXEL_GRAYA8 as u32 => l(Sample::U8, true, true, false),
            f if f == ST_PIXEL_RGB8 as u32 => l(Sample::U8, false, false, false),
            f if f == ST_PIXEL_RGBA8 as u32 => l(Sample::U8, false, true, false),
            f if f == ST_PIXEL_BGRA8 as u32 => l(Sample::U8, false, true, true),
            f if f == ST_PIXEL_RGB16 as u32 => l(Sample::U16, false, false, false),
            f if f == ST_PIXEL_RGBA16 as u32 => l(Sample::U16, false, true, false),
            f if f == ST_PIXEL_RGBF32 as u32 => l(Sample::F32, false, false, false),
            f if f == ST_PIXEL_RGBAF32 as u32 => l(Sample::F32, false, true, false),
            f if f == ST_PIXEL_GRAY16 as u32 => l(Sample::U16, true, false, false),
            f if f == ST_PIXEL_GRAYA16 as u32 => l(Sample::U16, true, true, false),
            f if f == ST_PIXEL_GRAYF32 as u32 => l(Sample::F32, true, false, false),
            f if f == ST_PIXEL_GRAYAF32 as u32 => l(Sample::F32, true, true, false),
            _ => None,
        }
    }

    fn channels(self) -> usize {
        (if self.gray { 1 } else { 3 }) + usize::from(self.alpha)
    }

    /// Bytes per pixel.
    pub fn pixel_bytes(self) -> usize {
        self.channels() * self.sample.bytes()
    }
}

/// An empty buffer for `count` samples, or `ST_OUT_OF_MEMORY` when the
/// system cannot give it (an image within [`ST_MAX_SIDE`] may still be far
/// larger than memory; an allocation failure would abort the host).
fn samples(count: usize, name: &'static str) -> Result<Vec<f32>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(count).map_err(|_| {
        Error::OutOfMemory(format!("`{name}`: {} MiB for its samples cannot be allocated", (count * 4) >> 20))
    })?;
    Ok(buffer)
}

/// A validated view of an `st_image`.
pub(crate) struct View {
    data: *mut u8,
    pub width: u32,
    pub height: u32,
    stride: usize,
    pub layout: Layout,
    linear: bool,
    premultiplied: bool,
    bottom_up: bool,
    mask_alpha: bool,
}

/// Checks an `st_image` and describes it. `name` is the argument's name for messages.
///
/// # Safety
/// `image.data` must point to `stride_bytes * (height - 1) + width * bytes_per_pixel`
/// readable bytes (writable for outputs), as the API documents.
pub(crate) unsafe fn view(image: &st_image, name: &'static str) -> Result<View> {
    if image.data.is_null() {
        return Err(Error::invalid(name, "data is NULL"));
    }
    let layout = Layout::of(image.format)
        .ok_or_else(|| Error::invalid(name, format!("unknown pixel format {}", image.format)))?;
    if image.width == 0 || image.height == 0 {
        return Err(Error::invalid(name, format!("size {}×{} is empty", image.width, image.height)));
    }
    if image.width.max(image.height) > MAX_SIDE {
        let reason = format!("size {}×{}: each side must be at most {MAX_SIDE} pixels", image.width, image.height);
        return Err(Error::invalid(name, reason));
    }
    if image.flags & !KNOWN_FLAGS != 0 {
        return Err(Error::invalid(name, format!("unknown flags {:#x}", image.flags)));
    }
    let flag = |bit: u32| image.flags & bit != 0;
    let linear = flag(ST_IMAGE_LINEAR);
    if linear && layout.sample != Sample::F32 {
        return Err(Error::invalid(name, "ST_IMAGE_LINEAR applies to float formats only"));
    }
    if flag(ST_IMAGE_PREMULTIPLIED) && !layout.alpha {
        return Err(Error::invalid(name, "ST_IMAGE_PREMULTIPLIED applies to formats with alpha only"));
    }
    if flag(ST_IMAGE_MASK_ALPHA) && !layout.alpha {
        return Err(Error::invalid(name, "ST_IMAGE_MASK_ALPHA applies to formats with alpha only"));
    }
    let row = (image.width as usize)
        .checked_mul(layout.pixel_bytes())
        .ok_or_else(|| Error::invalid(name, "width overflows"))?;
    if image.stride_bytes < row {
        return Err(Error::invalid(
            name,
            format!("stride_bytes {} is smaller than a row ({} bytes)", image.stride_bytes, row),
        ));
    }
    (image.stride_bytes)
        .checked_mul(image.height as usize - 1)
        .and_then(|v| v.checked_add(row))
        .filter(|&total| total <= isize::MAX as usize)
        .ok_or_else(|| Error::invalid(name, "image size overflows"))?;
    Ok(View {
        data: image.data.cast(),
        width: image.width,
        height: image.height,
        stride: image.stride_bytes,
        layout,
        linear,
        premultiplied: flag(ST_IMAGE_PREMULTIPLIED),
        bottom_up: flag(ST_IMAGE_BOTTOM_UP),
        mask_alpha: flag(ST_IMAGE_MASK_ALPHA),
    })
}

impl View {
    /// Sample `channel` of pixel (x, y) as 0..1 (float formats: as stored).
    unsafe fn read(&self, x: usize, y: usize, channel: usize) -> f32 {
        let offset = self.offset(x, y, channel);
        let p = self.data.add(offset);
        match self.layout.sample {
            Sample::U8 => *p as f32 / 255.0,
            Sample::U16 => p.cast::<u16>().read_unaligned() as f32 / 65535.0,
            Sample::F32 => p.cast::<f32>().read_unaligned(),
        }
    }

    unsafe fn write(&self, x: usize, y: usize, channel: usize, value: f32) {
        let offset = self.offset(x, y, channel);
        let p = self.data.add(offset);
        match self.layout.sample {
            Sample::U8 => *p = (value.clamp(0.0, 1.0) * 255.0).round() as u8,
            Sample::U16 => p.cast::<u16>().write_unaligned((value.clamp(0.0, 1.0) * 65535.0).round() as u16),
            Sample::F32 => p.cast::<f32>().write_unaligned(value),
        }
    }

    /// Byte offset of sample `channel` of pixel (x, y), y counted from the top.
    fn offset(&self, x: usize, y: usize, channel: usize) -> usize {
        let row = if self.bottom_up { self.height as usize - 1 - y } else { y };
        row * self.stride + (x * self.layout.channels() + channel) * self.layout.sample.bytes()
    }

    /// Display-range colour of a stored sample (float formats may be linear).
    fn decode(&self, v: f32) -> f32 {
        if self.linear {
            linear_to_srgb(v.max(0.0))
        } else {
            v
        }
    }

    fn encode(&self, v: f32) -> f32 {
        if self.linear {
            srgb_to_linear(v.clamp(0.0, 1.0))
        } else {
            v
        }
    }

    /// The colour as an RGB image (gray replicated) and the alpha plane if any.
    ///
    /// # Safety
    /// As for [`view`].
    pub unsafe fn to_rgb(&self, name: &'static str) -> Result<(RgbImage, Option<Vec<f32>>)> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut rgb = samples(w * h * 3, name)?;
        let mut alpha = samples(if self.layout.alpha { w * h } else { 0 }, name)?;
        let colour_channels = if self.layout.gray { 1 } else { 3 };
        // Stored samples, before any decoding (which would turn a linear NaN into 0).
        let mut finite = true;
        for y in 0..h {
            for x in 0..w {
                if self.layout.sample == Sample::F32 {
                    finite &= (0..self.layout.channels()).all(|c| self.read(x, y, c).is_finite());
                }
                let a = if self.layout.alpha { self.read(x, y, colour_channels) } else { 1.0 };
                // Premultiplied colour where alpha is 0 carries nothing to divide out.
                let straight = |v: f32| if self.premultiplied && a > 0.0 { v / a } else { v };
                if self.layout.gray {
                    let v = self.decode(straight(self.read(x, y, 0)));
                    rgb.extend_from_slice(&[v, v, v]);
                } else {
                    let (r, g, b) = (self.read(x, y, 0), self.read(x, y, 1), self.read(x, y, 2));
                    let (r, b) = if self.layout.bgr { (b, r) } else { (r, b) };
                    rgb.extend_from_slice(&[
                        self.decode(straight(r)),
                        self.decode(straight(g)),
                        self.decode(straight(b)),
                    ]);
                }
                if self.layout.alpha {
                    alpha.push(a);
                }
            }
        }
        if !finite {
            return Err(Error::invalid(name, "holds NaN or infinite samples"));
        }
        if rgb.iter().any(|v| !v.is_finite()) {
            // Finite premultiplied colour over a subnormal alpha.
            return Err(Error::invalid(name, "colour divided by its alpha overflows"));
        }
        let image = RgbImage::new(self.width, self.height, rgb).map_err(|e| match e {
            Error::InvalidArgument { reason, .. } => Error::invalid(name, reason),
            other => other,
        })?;
        Ok((image, self.layout.alpha.then_some(alpha)))
    }

    /// One value per pixel: the alpha channel with `ST_IMAGE_MASK_ALPHA`,
    /// else the gray channel of gray formats and the luma of colour ones
    /// (as stored: a mask's samples are neither unpremultiplied nor decoded).
    /// NaN and infinite values are refused; others are kept (the blend
    /// clamps them to 0..1).
    ///
    /// # Safety
    /// As for [`view`].
    pub unsafe fn to_plane(&self, name: &'static str) -> Result<Vec<f32>> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut plane = samples(w * h, name)?;
        for y in 0..h {
            for x in 0..w {
                let v = if self.mask_alpha {
                    self.read(x, y, self.layout.channels() - 1)
                } else if self.layout.gray {
                    self.read(x, y, 0)
                } else {
                    let (r, g, b) = (self.read(x, y, 0), self.read(x, y, 1), self.read(x, y, 2));
                    let (r, b) = if self.layout.bgr { (b, r) } else { (r, b) };
                    luma(r, g, b)
                };
                plane.push(v);
            }
        }
        if plane.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(name, "holds NaN or infinite samples"));
        }
        Ok(plane)
    }

    /// Writes `rgb` (gray formats get its luma) and `alpha` (opaque when
    /// `None`) into the buffer.
    ///
    /// # Safety
    /// As for [`view`], and the buffer must be writable.
    pub unsafe fn store(&self, rgb: &RgbImage, alpha: Option<&[f32]>) {
        let (w, h) = (self.width as usize, self.height as usize);
        let colour_channels = if self.layout.gray { 1 } else { 3 };
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let p = &rgb.data()[i * 3..i * 3 + 3];
                let a = alpha.map_or(1.0, |a| a[i]);
                let scale = if self.premultiplied { a } else { 1.0 };
                if self.layout.gray {
                    // Gray stays exactly gray (a gray source converted to a gray target).
                    let v = if p[0] == p[1] && p[1] == p[2] { p[0] } else { luma(p[0], p[1], p[2]) };
                    self.write(x, y, 0, self.encode(v) * scale);
                } else {
                    let (r, b) = if self.layout.bgr { (p[2], p[0]) } else { (p[0], p[2]) };
                    self.write(x, y, 0, self.encode(r) * scale);
                    self.write(x, y, 1, self.encode(p[1]) * scale);
                    self.write(x, y, 2, self.encode(b) * scale);
                }
                if self.layout.alpha {
                    self.write(x, y, colour_channels, a);
                }
            }
        }
    }
}

/// Converts `source` into `target`, which must have the same width and
/// height; formats and flags may differ. Colour goes through display-referred
/// RGB (gray targets get its luma), alpha is copied (opaque when the source
/// has none, dropped when the target has none), and `ST_IMAGE_LINEAR`,
/// `ST_IMAGE_PREMULTIPLIED` and `ST_IMAGE_BOTTOM_UP` apply on each side as
/// for [`st_run`]. The two may be the same buffer. A sub-rectangle of a
/// larger image is converted by pointing `data` at its first pixel (of its
/// bottom row with `ST_IMAGE_BOTTOM_UP`) and keeping the larger image's
/// `stride_bytes`. `target` is written only on
/// `ST_OK`.
///
/// For hosts whose pixels the library does not take as they are (a crop of
/// the result into the host's output window, say), so that no host converts
/// pixels itself.
///
/// Returns `ST_NULL_ARGUMENT` for a NULL image, `ST_INVALID_ARGUMENT` for a
/// bad image description, different sizes, or NaN or infinite samples,
/// `ST_OUT_OF_MEMORY` when the source's samples cannot be allocated.
/// Thread-safe (for distinct buffers).
#[no_mangle]
pub unsafe extern "C" fn st_convert_image(source: *const st_image, target: *mut st_image) -> st_status {
    ffi_boundary!("st_convert_image": {
        let source = source.as_ref().ok_or_else(|| null_argument("source"))?;
        let target = target.as_ref().ok_or_else(|| null_argument("target"))?;
        let from = view(source, "source")?;
        let to = view(target, "target")?;
        if (from.width, from.height) != (to.width, to.height) {
            let reason = format!("is {}×{} but the source is {}×{}", to.width, to.height, from.width, from.height);
            return Err(Error::invalid("target", reason).into());
        }
        let (rgb, alpha) = from.to_rgb("source")?;
        to.store(&rgb, alpha.as_deref());
        Ok(())
    })
}
