//! Memory planning: a peak-memory estimate for every pyramid level of a run,
//! and the tile grids that keep a level within a memory budget.
//!
//! The estimate is per pixel, calibrated on measured peaks (CPU, fp32, peak
//! RSS above a run at 64²: 3.67 KB per pixel at 512², 3.77 KB at 384², both
//! including the style forward at the same size); it covers the evaluation
//! (VGG19 to conv5_1 with the activations the backward pass needs, the
//! gradient), the optimiser's state, the level's whole-image buffers and the
//! style forward pass. It excludes the model weights and the runtime
//! (libtorch's own footprint), which [`Plan::model_bytes`] reports apart.

use crate::device::Precision;
use crate::error::{Error, Result};
use crate::model::MIN_INPUT_SIDE;
use crate::optim::Optimizer;

/// Bytes per pixel of one evaluation in fp32 (activations kept for the
/// backward pass, their gradients, the loss graph).
const EVAL_BYTES_PER_PIXEL_FP32: f64 = 3200.0;
/// The same in bf16 / fp16 (activations in 16 bits, gradients and losses in fp32).
const EVAL_BYTES_PER_PIXEL_HALF: f64 = 1900.0;
/// Whole-level buffers per pixel: at most four fp32 RGB images live at
/// once (the content as given, the level's content, the image being
/// optimised, and at the end its conversion back): 48 bytes, plus margin.
const LEVEL_BYTES_PER_PIXEL: f64 = 64.0;
/// The style forward pass (no gradient), per pixel of the style image.
const STYLE_BYTES_PER_PIXEL: f64 = 600.0;
/// libtorch's own resident footprint on the CPU (code, data, thread pools),
/// which a `max_memory_mb` budget must cover besides the run's tensors:
/// measured as the peak RSS of a 64² run less the model and the planned
/// tensors, 431 MiB (2-core x86-64, torch 2.11), rounded up. Measured
/// with it: 4096² with a 2 GiB budget peaks at 1903–1966 MiB (budget +
/// model: 2147), in the 2048² level's tiles. That holds because the engine gives
/// the C heap's free pages back between tiles and levels (freed
/// activations otherwise stay resident, and the next level's image-sized
/// buffers come from fresh mappings: 2369 MiB before).
pub const CPU_RUNTIME_BYTES: u64 = 512 << 20;
/// Default overlap between neighbouring tiles, pixels.
pub const DEFAULT_TILE_OVERLAP: u32 = 64;

/// How a run may use memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Budget in MiB; `None`: the device's free memory (CPU: `MemAvailable`
    /// from `/proc/meminfo`; CUDA: `cudaMemGetInfo`), or no limit when that
    /// cannot be read.
    pub max_memory_mb: Option<u64>,
    /// Largest tile side; `None`: as large as the budget allows. Given, it
    /// also tiles levels whose long side exceeds it.
    pub tile_size: Option<u32>,
    /// Overlap between tiles in pixels; `None`: [`DEFAULT_TILE_OVERLAP`].
    pub tile_overlap: Option<u32>,
}

/// One pass's tiles along one axis: `(start, end)` of each tile including
/// its overlap, and the cut points between their cores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Tile extents, in order.
    pub tiles: Vec<(u32, u32)>,
    /// Core boundaries (first 0, last the length); tile `i` owns `cuts[i]..cuts[i + 1]`.
    pub cuts: Vec<u32>,
}

/// How a level is cut into tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileGrid {
    /// Largest tile side, overlap included.
    pub tile: u32,
    /// Overlap between neighbours.
    pub overlap: u32,
}

impl TileGrid {
    /// The tiles along an axis of length `len`. Shifted grids have one more
    /// tile per axis, spread evenly, so none of their cuts falls on one of
    /// the unshifted grid's (successive tiled levels alternate).
    pub fn axis(&self, len: u32, shifted: bool) -> Axis {
        axis(len, self.tile, self.overlap, shifted)
    }
}

/// The plan of one pyramid level.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelPlan {
    /// Level width.
    pub width: u32,
    /// Level height.
    pub height: u32,
    /// `None`: optimised whole.
    pub tiles: Option<TileGrid>,
    /// Whether this level uses the shifted grid (tiled levels alternate).
    pub shifted: bool,
    /// Estimated peak bytes of this level.
    pub peak_bytes: u64,
}

/// A run's memory plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Levels, coarsest first.
    pub levels: Vec<LevelPlan>,
    /// The budget planned for, bytes (`None`: no limit known).
    pub budget_bytes: Option<u64>,
    /// Where the budget came from (`max_memory_mb`, `free device memory`, `none`).
    pub budget_source: &'static str,
    /// Estimated peak of the run (its largest level), bytes.
    pub peak_bytes: u64,
    /// The model's weights on the device, bytes (outside the budget).
    pub model_bytes: u64,
    /// What was taken out of a given budget for libtorch's own footprint
    /// before planning (CPU with `max_memory_mb`; else 0), bytes.
    pub runtime_bytes: u64,
}

impl LevelPlan {
    /// Tiles of this level (1 when whole).
    pub fn tile_count(&self) -> usize {
        match self.tiles {
            None => 1,
            Some(grid) => {
                grid.axis(self.width, self.shifted).tiles.len() * grid.axis(self.height, self.shifted).tiles.len()
            }
        }
    }

    /// The grid on one axis.
    pub fn axes(&self) -> Option<(Axis, Axis)> {
        self.tiles.map(|g| (g.axis(self.width, self.shifted), g.axis(self.height, self.shifted)))
    }
}

impl Plan {
    /// True when some level is tiled.
    pub fn is_tiled(&self) -> bool {
        self.levels.iter().any(|l| l.tiles.is_some())
    }

    /// Evaluations the run makes for `iterations` per level (tiled levels:
    /// `iterations` for every tile).
    pub fn total_evaluations(&self, iterations: usize) -> usize {
        self.levels.iter().map(|level| level.tile_count() * iterations).sum()
    }

    /// One line per level, for `stylize --plan`.
    pub fn describe(&self) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut text = format!(
            "budget: {} ({})\n",
            self.budget_bytes.map_or("none".to_string(), |b| format!("{:.0} MiB", mib(b))),
            self.budget_source,
        );
        if self.runtime_bytes > 0 {
            text += &format!("runtime: {:.0} MiB (libtorch, taken out of max_memory_mb)\n", mib(self.runtime_bytes));
        }
        text += &format!(
            "model: {:.0} MiB (outside the budget)\nestimated peak: {:.0} MiB\n",
            mib(self.model_bytes),
            mib(self.peak_bytes)
        );
        for (i, level) in self.levels.iter().enumerate() {
            let how = match level.tiles {
                None => "whole".to_string(),
                Some(g) => {
                    let (columns, rows) = level.axes().map_or((1, 1), |(c, r)| (c.tiles.len(), r.tiles.len()));
                    format!(
                        "{columns}×{rows} tiles of at most {} px, overlap {} px{}",
                        g.tile,
                        g.overlap,
                        if level.shifted { " (shifted grid)" } else { "" }
                    )
                }
            };
            text +=
                &format!("level {i}: {}×{}: {how}, peak {:.0} MiB\n", level.width, level.height, mib(level.peak_bytes));
        }
        text
    }
}

/// What a plan is made from besides the level sizes.
#[derive(Clone, Copy, Debug)]
pub struct PlanInputs {
    /// Convolution precision.
    pub precision: Precision,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Evaluations per level.
    pub iterations: usize,
    /// The model's weights, bytes.
    pub model_bytes: u64,
}

fn eval_bytes_per_pixel(precision: Precision) -> f64 {
    match precision {
        Precision::Fp32 => EVAL_BYTES_PER_PIXEL_FP32,
        _ => EVAL_BYTES_PER_PIXEL_HALF,
    }
}

/// Optimiser state per pixel: L-BFGS keeps two vectors per history entry
/// (up to the evaluations it will make), plus a few working vectors.
fn optimizer_bytes_per_pixel(optimizer: Optimizer, iterations: usize) -> f64 {
    let vector = 3.0 * 4.0;
    match optimizer {
        Optimizer::Lbfgs(o) => vector * (2.0 * o.history.min(iterations) as f64 + 4.0),
        Optimizer::Adam(_) => vector * 4.0,
    }
}

/// Estimated peak bytes of optimising a `width`×`height` image whole.
pub fn whole_level_bytes(width: u32, height: u32, style_side: Option<u32>, inputs: &PlanInputs) -> u64 {
    let pixels = width as f64 * height as f64;
    let per_pixel = eval_bytes_per_pixel(inputs.precision)
        + optimizer_bytes_per_pixel(inputs.optimizer, inputs.iterations)
        + LEVEL_BYTES_PER_PIXEL;
    (pixels * per_pixel + style_bytes(style_side)) as u64
}

fn style_bytes(style_side: Option<u32>) -> f64 {
    style_side.map_or(0.0, |s| s as f64 * s as f64 * STYLE_BYTES_PER_PIXEL)
}

/// Estimated peak bytes of a tiled level with tiles of side `tile`.
pub fn tiled_level_bytes(width: u32, height: u32, tile: u32, style_side: Option<u32>, inputs: &PlanInputs) -> u64 {
    let tile_pixels = tile.min(width) as f64 * tile.min(height) as f64;
    let per_tile_pixel =
        eval_bytes_per_pixel(inputs.precision) + optimizer_bytes_per_pixel(inputs.optimizer, inputs.iterations);
    (width as f64 * height as f64 * LEVEL_BYTES_PER_PIXEL + style_bytes(style_side) + tile_pixels * per_tile_pixel)
        as u64
}

/// The smallest tile for an overlap: the core must stay at least 32 px.
pub fn min_tile(overlap: u32) -> u32 {
    (overlap + 32).max(2 * MIN_INPUT_SIDE as u32)
}

/// Plans `levels` (coarsest first) within `budget` bytes.
pub fn plan_levels(
    levels: &[(u32, u32)],
    style_sides: &[Option<u32>],
    memory: &MemoryOptions,
    budget: Option<u64>,
    budget_source: &'static str,
    inputs: &PlanInputs,
) -> Result<Plan> {
    let overlap = memory.tile_overlap.unwrap_or(DEFAULT_TILE_OVERLAP);
    if let Some(tile) = memory.tile_size {
        if tile < min_tile(overlap) {
            return Err(Error::invalid(
                "tile_size",
                format!("{tile} px is too small for an overlap of {overlap} px (at least {})", min_tile(overlap)),
            ));
        }
    }
    let mut planned = Vec::with_capacity(levels.len());
    let mut tiled_levels = 0;
    for (&(width, height), &style_side) in levels.iter().zip(style_sides) {
        let whole = whole_level_bytes(width, height, style_side, inputs);
        let long = width.max(height);
        let forced = memory.tile_size.is_some_and(|t| long > t);
        if !forced && budget.is_none_or(|b| whole <= b) {
            planned.push(LevelPlan { width, height, tiles: None, shifted: false, peak_bytes: whole });
            continue;
        }
        let mut tile = memory.tile_size.unwrap_or(long).min(long);
        if let Some(budget) = budget {
            tile = tile.min(largest_tile(width, height, style_side, budget, inputs));
        }
        let smallest = min_tile(overlap);
        if tile < smallest {
            let need = tiled_level_bytes(width, height, smallest, style_side, inputs);
            return Err(Error::OutOfMemory(format!(
                "level {width}×{height} needs about {} MiB even in the smallest tiles ({smallest} px, overlap \
                 {overlap} px); the budget is {} MiB ({budget_source})",
                need.div_ceil(1 << 20),
                budget.unwrap_or(0) >> 20
            )));
        }
        planned.push(LevelPlan {
            width,
            height,
            tiles: Some(TileGrid { tile, overlap }),
            shifted: tiled_levels % 2 == 1,
            peak_bytes: tiled_level_bytes(width, height, tile, style_side, inputs),
        });
        tiled_levels += 1;
    }
    let peak_bytes = planned.iter().map(|l| l.peak_bytes).max().unwrap_or(0);
    Ok(Plan {
        levels: planned,
        budget_bytes: budget,
        budget_source,
        peak_bytes,
        model_bytes: inputs.model_bytes,
        runtime_bytes: 0,
    })
}

/// The largest tile side whose level fits `budget` (0 when none does).
fn largest_tile(width: u32, height: u32, style_side: Option<u32>, budget: u64, inputs: &PlanInputs) -> u32 {
    let (mut lo, mut hi) = (0u32, width.max(height));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if tiled_level_bytes(width, height, mid, style_side, inputs) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

fn axis(len: u32, tile: u32, overlap: u32, shifted: bool) -> Axis {
    if len <= tile {
        return Axis { tiles: vec![(0, len)], cuts: vec![0, len] };
    }
    let core = tile - overlap;
    let count = (len - overlap).div_ceil(core).max(2) + u32::from(shifted);
    let cuts: Vec<u32> = (0..=count).map(|k| ((k as u64 * len as u64) / count as u64) as u32).collect();
    let half = overlap / 2;
    let tiles = cuts.windows(2).map(|w| (w[0].saturating_sub(half), (w[1] + (overlap - half)).min(len))).collect();
    Axis { tiles, cuts }
}

/// The budget when none is given: free memory of the device, if readable.
pub fn device_free_bytes(device: tch::Device) -> Option<u64> {
    match device {
        tch::Device::Cpu => {
            let info = std::fs::read_to_string("/proc/meminfo").ok()?;
            let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            // Leave a fifth to the rest of the system.
            Some(kib * 1024 / 5 * 4)
        }
        tch::Device::Cuda(index) => crate::cuda::free_bytes(index),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::LbfgsOptions;

    fn inputs() -> PlanInputs {
        PlanInputs {
            precision: Precision::Fp32,
            optimizer: Optimizer::Lbfgs(LbfgsOptions::default()),
            iterations: 100,
            model_bytes: 80 << 20,
        }
    }

    #[test]
    fn axes_cover_the_length_with_overlapping_tiles() {
        for shifted in [false, true] {
            for len in [100u32, 384, 1000, 4096] {
                let a = axis(len, 160, 32, shifted);
                assert_eq!(*a.cuts.first().unwrap(), 0);
                assert_eq!(*a.cuts.last().unwrap(), len);
                for (i, &(s, e)) in a.tiles.iter().enumerate() {
                    assert!(e - s <= 160, "{len} {shifted}: tile {s}..{e} too large");
                    assert!(s <= a.cuts[i] && e >= a.cuts[i + 1]);
                    assert!(e - s >= 32);
                }
            }
        }
        assert_eq!(axis(384, 160, 32, false).tiles.len(), 3);
        assert_eq!(axis(384, 160, 32, true).tiles.len(), 4);
        assert_eq!(axis(100, 160, 32, false).tiles, vec![(0, 100)]);
    }

    #[test]
    fn shifted_cuts_avoid_unshifted_ones() {
        let (a, b) = (axis(1000, 200, 40, false), axis(1000, 200, 40, true));
        for cut in &b.cuts[1..b.cuts.len() - 1] {
            assert!(a.cuts.iter().all(|c| c.abs_diff(*cut) >= 20), "cut {cut} near {:?}", a.cuts);
        }
    }

    #[test]
    fn budgets_choose_tiles_and_refuse_when_too_small() {
        let levels = [(192, 192), (384, 384)];
        let sides = [None, None];
        let unlimited = plan_levels(&levels, &sides, &MemoryOptions::default(), None, "none", &inputs()).unwrap();
        assert!(!unlimited.is_tiled());
        let budget = whole_level_bytes(192, 192, None, &inputs());
        let tight = plan_levels(&levels, &sides, &MemoryOptions::default(), Some(budget), "test", &inputs()).unwrap();
        assert!(tight.levels[0].tiles.is_none());
        assert!(tight.levels[1].tile_count() >= 4, "{:?}", tight.levels[1]);
        assert!(tight.levels[1].peak_bytes <= budget);
        let error = plan_levels(&levels, &sides, &MemoryOptions::default(), Some(1 << 20), "test", &inputs());
        assert!(matches!(error, Err(Error::OutOfMemory(_))));
    }

    #[test]
    fn a_tile_size_forces_tiles_and_tiled_levels_alternate_grids() {
        let memory = MemoryOptions { tile_size: Some(160), tile_overlap: Some(32), ..Default::default() };
        let plan = plan_levels(&[(192, 192), (384, 384)], &[None, None], &memory, None, "none", &inputs()).unwrap();
        assert!(!plan.levels[0].shifted && plan.levels[1].shifted);
        assert_eq!(plan.levels[0].tile_count(), 4);
        assert_eq!(plan.levels[1].tile_count(), 16);
        assert_eq!(plan.total_evaluations(10), 200);
    }
}
