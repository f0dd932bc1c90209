//! Colour preservation: keeping the content's colours while taking the
//! style's texture (Gatys et al., "Preserving Color in Neural Artistic Style
//! Transfer", 2016).

use crate::error::{Error, Result};
use crate::image::{luma, RgbImage};

/// How the content's colours are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PreserveColor {
    /// Colours come from the style.
    #[default]
    Off,
    /// Luminance-only transfer: the result's luma over the content's chroma
    /// (YIQ), applied at full resolution after optimisation.
    Luminance,
    /// The style images' colour distributions are matched to the content's
    /// (mean and covariance) before their statistics are taken.
    Histogram,
}

impl PreserveColor {
    /// Parses `off`, `luminance` or `histogram`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "off" | "none" => Some(Self::Off),
            "luminance" => Some(Self::Luminance),
            "histogram" => Some(Self::Histogram),
            _ => None,
        }
    }
}

/// Replaces the luma of `content` with that of `stylised` (same size),
/// keeping the content's chroma. In YIQ the luma row of the inverse transform
/// is (1, 1, 1), so this is adding the luma difference to every channel.
pub fn transfer_luminance(stylised: &RgbImage, content: &RgbImage) -> Result<RgbImage> {
    if (stylised.width(), stylised.height()) != (content.width(), content.height()) {
        return Err(Error::invalid("image", "luminance transfer needs images of the same size"));
    }
    let data = stylised
        .data()
        .chunks_exact(3)
        .zip(content.data().chunks_exact(3))
        .flat_map(|(s, c)| {
            let delta = luma(s[0], s[1], s[2]) - luma(c[0], c[1], c[2]);
            [(c[0] + delta).clamp(0.0, 1.0), (c[1] + delta).clamp(0.0, 1.0), (c[2] + delta).clamp(0.0, 1.0)]
        })
        .collect();
    RgbImage::new(content.width(), content.height(), data)
}

type Mat3 = [[f64; 3]; 3];

fn mean_and_covariance(image: &RgbImage) -> ([f64; 3], Mat3) {
    let n = (image.width() as usize * image.height() as usize) as f64;
    let mut mean = [0f64; 3];
    for p in image.data().chunks_exact(3) {
        for c in 0..3 {
            mean[c] += p[c] as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut cov = [[0f64; 3]; 3];
    for p in image.data().chunks_exact(3) {
        let d = [p[0] as f64 - mean[0], p[1] as f64 - mean[1], p[2] as f64 - mean[2]];
        for i in 0..3 {
            for j in 0..3 {
                cov[i][j] += d[i] * d[j];
            }
        }
    }
    for row in &mut cov {
        row.iter_mut().for_each(|v| *v /= n);
    }
    (mean, cov)
}

/// Lower Cholesky factor of a covariance, regularised so flat images work.
fn cholesky(m: &Mat3) -> Mat3 {
    let mut a = *m;
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-5;
    }
    let mut l = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                l[i][j] = (a[i][i] - s).max(1e-12).sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    l
}

#[allow(clippy::needless_range_loop)] // index form mirrors the formula
fn invert_lower(l: &Mat3) -> Mat3 {
    let mut inv = [[0f64; 3]; 3];
    for i in 0..3 {
        inv[i][i] = 1.0 / l[i][i];
        for j in 0..i {
            let s: f64 = (j..i).map(|k| l[i][k] * inv[k][j]).sum();
            inv[i][j] = -s / l[i][i];
        }
    }
    inv
}

fn multiply(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// Returns `style` with its colours' mean and covariance matched to those of
/// `content` (the Cholesky colour transfer), clamped to 0..1.
pub fn match_histogram(style: &RgbImage, content: &RgbImage) -> Result<RgbImage> {
    let (mean_s, cov_s) = mean_and_covariance(style);
    let (mean_c, cov_c) = mean_and_covariance(content);
    let transform = multiply(&cholesky(&cov_c), &invert_lower(&cholesky(&cov_s)));
    let data = style
        .data()
        .chunks_exact(3)
        .flat_map(|p| {
            let d = [p[0] as f64 - mean_s[0], p[1] as f64 - mean_s[1], p[2] as f64 - mean_s[2]];
            let mut out = [0f32; 3];
            for (i, o) in out.iter_mut().enumerate() {
                let v = transform[i][0] * d[0] + transform[i][1] * d[1] + transform[i][2] * d[2] + mean_c[i];
                *o = v.clamp(0.0, 1.0) as f32;
            }
            out
        })
        .collect();
    RgbImage::new(style.width(), style.height(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32, tint: [f32; 3]) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                let v = (x + y) as f32 / (width + height) as f32;
                data.extend_from_slice(&[v * tint[0], (1.0 - v) * tint[1], 0.5 * v * tint[2]]);
            }
        }
        RgbImage::new(width, height, data).unwrap()
    }

    #[test]
    fn histogram_matching_moves_mean_and_covariance_to_the_content() {
        let style = gradient(40, 30, [1.0, 0.3, 0.8]);
        let content = gradient(20, 20, [0.5, 0.9, 0.6]);
        let matched = match_histogram(&style, &content).unwrap();
        let (m1, c1) = mean_and_covariance(&matched);
        let (m2, c2) = mean_and_covariance(&content);
        for i in 0..3 {
            assert!((m1[i] - m2[i]).abs() < 1e-3, "mean {i}: {} vs {}", m1[i], m2[i]);
            for j in 0..3 {
                assert!((c1[i][j] - c2[i][j]).abs() < 1e-3, "cov {i}{j}");
            }
        }
    }

    #[test]
    fn luminance_transfer_keeps_content_chroma_and_takes_stylised_luma() {
        let content = gradient(8, 8, [0.8, 0.6, 0.9]);
        let stylised = gradient(8, 8, [0.2, 0.7, 0.3]);
        let out = transfer_luminance(&stylised, &content).unwrap();
        for ((o, s), c) in
            out.data().chunks_exact(3).zip(stylised.data().chunks_exact(3)).zip(content.data().chunks_exact(3))
        {
            let target = luma(s[0], s[1], s[2]);
            assert!((luma(o[0], o[1], o[2]) - target).abs() < 1e-5 || o.iter().any(|v| *v == 0.0 || *v == 1.0));
            // chroma (differences between channels) equals the content's
            assert!(((o[0] - o[1]) - (c[0] - c[1])).abs() < 1e-5 || o.iter().any(|v| *v == 0.0 || *v == 1.0));
        }
    }
}
