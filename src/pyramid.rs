//! The image pyramid of a run: the working size from the content's, and
//! the level sizes, coarsest first.

use crate::error::{Error, Result};
use crate::model::MIN_INPUT_SIDE;

/// `(width, height)` with the long side scaled to `long_side`, aspect kept.
pub fn fit_long_side(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    if width >= height {
        (long_side, ((height as f64 * long_side as f64 / width as f64).round() as u32).max(1))
    } else {
        (((width as f64 * long_side as f64 / height as f64).round() as u32).max(1), long_side)
    }
}

/// Default working long side when none is given.
pub const DEFAULT_MAX_WORKING_SIDE: u32 = 512;
/// Automatic pyramids stop halving below this long side.
pub const AUTO_COARSEST_SIDE: u32 = 128;
/// Automatic pyramids have at most this many levels.
pub const AUTO_MAX_SCALES: usize = 4;

/// Level sizes, coarsest first, for a working size and a level count (`None`: automatic).
pub fn pyramid(working: (u32, u32), scales: Option<usize>) -> Result<Vec<(u32, u32)>> {
    let (w, h) = working;
    let short_side = |div: u32| (w.min(h) as f64 / div as f64).round() as i64;
    if short_side(1) < MIN_INPUT_SIDE {
        return Err(Error::invalid(
            "size",
            format!("the working image {w}×{h} is too small: both sides must be at least {MIN_INPUT_SIDE} pixels"),
        ));
    }
    let count = match scales {
        Some(0) => return Err(Error::invalid("scales", "must be at least 1")),
        Some(n) => {
            if n > 10 || short_side(1 << (n - 1)) < MIN_INPUT_SIDE {
                return Err(Error::invalid(
                    "scales",
                    format!("{n} levels would shrink the {w}×{h} working image below {MIN_INPUT_SIDE} pixels"),
                ));
            }
            n
        }
        None => {
            let mut n = 1;
            while n < AUTO_MAX_SCALES && w.max(h) >> n >= AUTO_COARSEST_SIDE && short_side(1 << n) >= MIN_INPUT_SIDE {
                n += 1;
            }
            n
        }
    };
    Ok((0..count)
        .rev()
        .map(|k| {
            let div = 1u32 << k;
            (((w as f64 / div as f64).round() as u32).max(1), ((h as f64 / div as f64).round() as u32).max(1))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_halves_down_to_about_128() {
        assert_eq!(pyramid((512, 384), None).unwrap(), vec![(128, 96), (256, 192), (512, 384)]);
        assert_eq!(pyramid((64, 64), None).unwrap(), vec![(64, 64)]);
        assert_eq!(pyramid((256, 256), Some(1)).unwrap(), vec![(256, 256)]);
        assert!(pyramid((64, 64), Some(4)).is_err());
        assert!(pyramid((8, 64), None).is_err());
    }
}
