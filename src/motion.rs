//! Motion between frames: dense optical flow (OpenCV's DIS optical flow,
//! through the flow shim [`crate::runtime::flow_shim`] loads), warping an
//! image by a flow, and the reliability mask of Ruder, Dosovitskiy and Brox
//! 2016 (0 at disocclusions and motion boundaries).
//!
//! A flow is a `[1, 2, H, W]` fp32 tensor of displacements in pixels,
//! `(u, v)` per pixel of the frame it is defined on. The flow from frame a
//! to frame b says, for each pixel `p` of a, where it is in b: `p + flow(p)`.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::image::{quantise, RgbImage};
use crate::runtime::{flow_shim, DisPreset};

/// The dense optical flow from `from` to `to` (same size), computed by DIS
/// (medium preset) on their luma, as a `[1, 2, H, W]` tensor on `device`.
pub fn optical_flow(from: &RgbImage, to: &RgbImage, device: Device) -> Result<Tensor> {
    let (w, h) = (from.width(), from.height());
    if (to.width(), to.height()) != (w, h) {
        return Err(Error::invalid(
            "flow",
            format!("frames of different sizes: {w}×{h} and {}×{}", to.width(), to.height()),
        ));
    }
    let a: Vec<u8> = quantise(from.data(), 255.0);
    let b: Vec<u8> = quantise(to.data(), 255.0);
    let flow = flow_shim()?.dis(&a, &b, w, h, DisPreset::Medium)?;
    // [H, W, 2] → [1, 2, H, W].
    Ok(Tensor::f_from_slice(&flow)?
        .f_view([1, h as i64, w as i64, 2])?
        .f_permute([0, 3, 1, 2])?
        .f_contiguous()?
        .f_to_device(device)?)
}

/// The sampling grid of `flow` for `grid_sampler` (align_corners): pixel
/// `p` samples at `p + flow(p)`, normalised to -1..1.
fn sampling_grid(flow: &Tensor) -> Result<Tensor> {
    let size = flow.size();
    let (h, w) = (size[2], size[3]);
    let options = (Kind::Float, flow.device());
    let xs = Tensor::f_arange(w, options)?.f_view([1, 1, w])?.f_expand([1, h, w], false)?;
    let ys = Tensor::f_arange(h, options)?.f_view([1, h, 1])?.f_expand([1, h, w], false)?;
    let x = xs.f_add(&flow.f_select(1, 0)?)?;
    let y = ys.f_add(&flow.f_select(1, 1)?)?;
    // align_corners: −1 and 1 are the centres of the first and last pixels.
    let normalise = |t: Tensor, n: i64| -> Result<Tensor> {
        Ok(t.f_mul_scalar(if n > 1 { 2.0 / (n - 1) as f64 } else { 0.0 })?.f_sub_scalar(if n > 1 {
            1.0
        } else {
            0.0
        })?)
    };
    Ok(Tensor::f_stack(&[normalise(x, w)?, normalise(y, h)?], 3)?)
}

/// Whether `p + flow(p)` lies inside the frame (`[1, 1, H, W]`, 0 or 1).
fn inside(flow: &Tensor) -> Result<Tensor> {
    let size = flow.size();
    let (h, w) = (size[2], size[3]);
    let options = (Kind::Float, flow.device());
    let xs = Tensor::f_arange(w, options)?.f_view([1, 1, w])?;
    let ys = Tensor::f_arange(h, options)?.f_view([1, h, 1])?;
    let x = xs.f_add(&flow.f_select(1, 0)?)?;
    let y = ys.f_add(&flow.f_select(1, 1)?)?;
    let within =
        |t: &Tensor, n: i64| -> Result<Tensor> { Ok(t.f_ge(-0.5)?.f_logical_and(&t.f_le((n - 1) as f64 + 0.5)?)?) };
    Ok(within(&x, w)?.f_logical_and(&within(&y, h)?)?.f_to_kind(Kind::Float)?.f_unsqueeze(1)?)
}

/// `image` (`[1, C, H, W]`, the flow's size, any kind) sampled at
/// `p + flow(p)` for each pixel `p` (bilinear; outside the frame, the
/// nearest edge pixel). With the flow from frame t to frame t−1 this warps
/// frame t−1's image into frame t.
pub fn warp(image: &Tensor, flow: &Tensor) -> Result<Tensor> {
    let (size, flow_size) = (image.size(), flow.size());
    if size.len() != 4 || flow_size.len() != 4 || size[2..] != flow_size[2..] {
        return Err(Error::invalid("flow", format!("image {size:?} and flow {flow_size:?} differ in size")));
    }
    let kind = image.kind();
    let sampled = image.f_to_kind(Kind::Float)?.f_grid_sampler(&sampling_grid(flow)?, 0, 1, true)?;
    Ok(sampled.f_to_kind(kind)?)
}

/// The reliability of warping frame t−1 into frame t, `[1, 1, H, W]` fp32:
/// 0 where frame t's pixel was not visible in t−1, or lies on a motion
/// boundary, or maps outside frame t−1; 1 elsewhere (Ruder et al. 2016,
/// section 3.1).
///
/// `backward` is the flow from t to t−1 (on t's pixels), `forward` the flow
/// from t−1 to t (on t−1's pixels). With `ŵ = backward` and `w̃ = forward`
/// warped into frame t:
/// - disoccluded where `|w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5`;
/// - a motion boundary where `|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002`.
pub fn reliability(forward: &Tensor, backward: &Tensor) -> Result<Tensor> {
    if forward.size() != backward.size() || backward.size().len() != 4 || backward.size()[1] != 2 {
        return Err(Error::invalid("flow", "forward and backward flows must both be [1, 2, H, W]"));
    }
    let forward_at_t = warp(forward, backward)?;
    let square = |t: &Tensor| -> Result<Tensor> { Ok(t.f_square()?.f_sum_dim_intlist(1, true, Kind::Float)?) };
    let round_trip = square(&forward_at_t.f_add(backward)?)?;
    let bound = square(&forward_at_t)?.f_add(&square(backward)?)?.f_mul_scalar(0.01)?.f_add_scalar(0.5)?;
    let occluded = round_trip.f_gt_tensor(&bound)?;
    // Forward differences; the last row and column repeat their neighbour's.
    let gradient_square = |t: &Tensor| -> Result<Tensor> {
        let size = t.size();
        let (h, w) = (size[2], size[3]);
        let dx = if w > 1 { t.f_narrow(3, 1, w - 1)?.f_sub(&t.f_narrow(3, 0, w - 1)?)? } else { t.f_zeros_like()? };
        let dy = if h > 1 { t.f_narrow(2, 1, h - 1)?.f_sub(&t.f_narrow(2, 0, h - 1)?)? } else { t.f_zeros_like()? };
        let dx = if w > 1 { Tensor::f_cat(&[&dx, &dx.f_narrow(3, w - 2, 1)?], 3)? } else { dx };
        let dy = if h > 1 { Tensor::f_cat(&[&dy, &dy.f_narrow(2, h - 2, 1)?], 2)? } else { dy };
        Ok(square(&dx)?.f_add(&square(&dy)?)?)
    };
    let u = backward.f_narrow(1, 0, 1)?;
    let v = backward.f_narrow(1, 1, 1)?;
    let motion = gradient_square(&u)?.f_add(&gradient_square(&v)?)?;
    let boundary = motion.f_gt_tensor(&square(backward)?.f_mul_scalar(0.01)?.f_add_scalar(0.002)?)?;
    let unreliable = occluded.f_logical_or(&boundary)?;
    Ok(unreliable.f_logical_not()?.f_to_kind(Kind::Float)?.f_mul(&inside(backward)?)?)
}
