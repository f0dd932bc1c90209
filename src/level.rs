//! One pyramid level of a run: its optimisation whole or tile by tile
//! (tiles written back feathered), and the retry in smaller tiles when the
//! device runs out of memory.

use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::evaluator::Evaluator;
use crate::loss::{LiveWeights, LossTerms, Normalization, Objective, StyleTargets, TemporalTarget};
use crate::memory::trim_host_heap;
use crate::model::Vgg19;
use crate::optim::{Evaluation, Optimizer, Problem};
use crate::plan::{self, LevelPlan, TileGrid};
use crate::run::{Flow, Progress, RunOptions};

/// One pyramid level of a run: its content, style targets and settings.
pub(crate) struct Level<'a> {
    /// The network, on `device`.
    pub model: &'a Vgg19,
    pub device: Device,
    /// Whether the level starts on the model's exact fp32 network.
    pub exact: bool,
    /// The level's content, as model input.
    pub content: &'a Tensor,
    pub targets: &'a StyleTargets,
    /// The temporal term of a frame of a sequence, at the level's size.
    pub temporal: Option<&'a TemporalTarget>,
    pub options: &'a RunOptions,
    /// `options.optimizer` in model-input units.
    pub optimizer: Optimizer,
    pub weights: &'a LiveWeights,
    /// The progress report of this level, evaluations not yet counted.
    pub report: Progress,
}

impl Level<'_> {
    /// The level optimised from `start` as `planned` says (whole or in
    /// tiles); when the device runs out of memory, again in tiles of half
    /// the size, down to the smallest. `planned` ends as the level ran.
    pub fn run(
        &self,
        start: &Tensor,
        planned: &mut LevelPlan,
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let (w, h) = (planned.width, planned.height);
        loop {
            let before = *evaluations;
            let attempt = match planned.axes() {
                None => self.whole(start, evaluations, &mut *progress),
                Some(axes) => self.tiled(start, planned, axes, evaluations, &mut *progress),
            };
            match attempt {
                Err(Error::OutOfMemory(message)) => {
                    *evaluations = before;
                    let overlap = self.options.memory.tile_overlap.unwrap_or(plan::DEFAULT_TILE_OVERLAP);
                    let current = planned.tiles.map_or(w.max(h), |g| g.tile);
                    let smaller = current / 2;
                    if smaller < plan::min_tile(overlap) {
                        return Err(Error::OutOfMemory(format!(
                            "{message} (level {w}×{h}, estimated {} MiB, tiles down to {current} px tried)",
                            planned.peak_bytes >> 20
                        )));
                    }
                    planned.tiles = Some(TileGrid { tile: smaller, overlap });
                }
                other => return other,
            }
        }
    }

    /// The objective of the region `xs`×`ys` of the level (`content` is its crop).
    fn objective(&self, content: &Tensor, xs: (u32, u32), ys: (u32, u32)) -> Result<Objective<'_>> {
        let mut objective = Objective::new(
            self.model,
            content,
            self.targets,
            self.options.style_layer_weights,
            self.options.normalization,
        )?;
        if let Some(temporal) = self.temporal {
            objective.set_temporal(temporal.crop(xs, ys)?)?;
        }
        Ok(objective)
    }

    /// Optimises `region` of the content (the whole level, or a tile) from
    /// `start` for `iterations` evaluations; returns the result and its losses.
    fn optimise(
        &self,
        objective: &Objective,
        start: &Tensor,
        iterations: usize,
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let size = start.size();
        let mut evaluator = Evaluator::new(objective, self.device);
        evaluator.set_exact(self.exact);
        let mut problem = LevelProblem {
            evaluator,
            weights: self.weights,
            shape: [1, 3, size[2], size[3]],
            progress,
            report: self.report,
            evaluations_before: *evaluations,
            resolution: self.model.precision().resolution() * self.model.convention().scale(),
            has_exact: self.model.has_exact(),
            exact: self.exact,
            loss_noise: self.model.precision().loss_noise(),
        };
        let result = self.optimizer.minimize(&mut problem, &start.f_flatten(0, -1)?, iterations)?;
        *evaluations += problem.report.iteration;
        let exact = problem.exact;
        let result = result.f_view(problem.shape)?;
        let (current, _) = self.weights.get();
        let loss = tch::no_grad(|| objective.losses_with(&result, &current, exact))?.values()?;
        Ok((result, loss))
    }

    /// The level optimised whole.
    fn whole(
        &self,
        start: &Tensor,
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let size = self.content.size();
        let objective = self.objective(self.content, (0, size[3] as u32), (0, size[2] as u32))?;
        self.optimise(&objective, start, self.options.iterations, evaluations, progress)
    }

    /// The level optimised tile by tile: each tile from the current image,
    /// with the content of its region and the style targets of the whole
    /// style image, for `iterations` evaluations; its result written back
    /// with the overlaps feathered, so the next tile starts from its
    /// neighbour's result where they overlap. Under the relative
    /// normalisation every tile weighs content by the whole level's content
    /// power. The losses returned are the tiles' final ones, area-weighted.
    ///
    /// Successive tiled levels alternate between a grid and a shifted one
    /// (see [`plan::TileGrid::axis`]), so borders never stay in one place.
    /// (Measured alternatives, 384², 3×3 tiles, 40 evaluations: two passes
    /// per level of half the evaluations each ended 27 % above the untiled
    /// loss, tiles coupled through the level's summed Gram matrices far
    /// above it; one pass with every tile matching the style's targets
    /// ended at or below it.)
    fn tiled(
        &self,
        start: &Tensor,
        level: &LevelPlan,
        (columns, rows): (plan::Axis, plan::Axis),
        evaluations: &mut usize,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<(Tensor, LossTerms)> {
        let overlap = level.tiles.map_or(0, |g| g.overlap);
        // Tiles are written into `start` itself (no image-sized copy at the
        // largest sizes); a retry after running out of memory continues
        // from the tiles already done.
        let image = start.shallow_clone();
        let crop = |t: &Tensor, (x0, x1): (u32, u32), (y0, y1): (u32, u32)| -> Result<Tensor> {
            Ok(t.f_narrow(2, y0 as i64, (y1 - y0) as i64)?.f_narrow(3, x0 as i64, (x1 - x0) as i64)?)
        };
        let area = |xs: (u32, u32), ys: (u32, u32)| (xs.1 - xs.0) as f64 * (ys.1 - ys.0) as f64;
        let extent = |a: &plan::Axis| a.tiles.iter().map(|t| (t.1 - t.0) as f64).sum::<f64>();
        let total_area = extent(&columns) * extent(&rows);
        // (The reference normalisation does not use it: no forward passes then.)
        let mut power = 0.0;
        if self.options.normalization == Normalization::Relative {
            for &ys in &rows.tiles {
                for &xs in &columns.tiles {
                    power += self.objective(&crop(self.content, xs, ys)?, xs, ys)?.content_power()? * area(xs, ys)
                        / total_area;
                }
            }
        }
        let mut loss = LossTerms::default();
        for (row, &ys) in rows.tiles.iter().enumerate() {
            for (column, &xs) in columns.tiles.iter().enumerate() {
                let mut objective = self.objective(&crop(self.content, xs, ys)?, xs, ys)?;
                objective.set_content_power(power);
                let mut region = crop(&image, xs, ys)?;
                let tile_start = region.f_contiguous()?.f_detach_copy()?;
                let (result, tile_loss) =
                    self.optimise(&objective, &tile_start, self.options.iterations, evaluations, progress)?;
                let weight = feather(&columns, column, overlap)?
                    .f_view([1, 1, 1, -1])?
                    .f_mul(&feather(&rows, row, overlap)?.f_view([1, 1, -1, 1])?)?
                    .f_to_device(image.device())?;
                // region ← the feathered blend of region and result, in place in `image`.
                let blended = blend_textures(&region, &result, &weight)?;
                region.f_copy_(&blended)?;
                drop((result, blended, objective));
                // Each tile's activations are freed into the C heap, which keeps the pages,
                // and tiles of different shapes fragment it: measured at 2048² in 184–309 px
                // tiles, the level's peak was 115 MiB lower with this. It costs ~0.1 s of
                // system time per tile, against seconds of work.
                trim_host_heap(self.device);
                let share = area(xs, ys) / total_area;
                loss.content += tile_loss.content * share;
                loss.style += tile_loss.style * share;
                loss.tv += tile_loss.tv * share;
                loss.temporal += tile_loss.temporal * share;
                loss.total += tile_loss.total * share;
            }
        }
        Ok((image, loss))
    }
}

/// The width of the write-back ramp as a fraction of the overlap. Blending
/// two independently optimised textures lowers their contrast, so the ramp
/// is kept narrow and centred on the cut. Measured on the tiling test
/// (384², 3×3 tiles, overlap 32, seam measure of the untiled run 1.076 at
/// the same borders): ramp 12 px (0.375) gave 0.959 (−11 %, a softened
/// band), 4.8 px (0.15) 1.002 (−7 %) and the lowest loss, 1.6 px (0.05)
/// 1.201 (+12 %, a visible step); those were linear mixes, before
/// [`blend_textures`] kept the mix's contrast. With it, on an AVX-512 Xeon
/// where the linear mix gave 0.974 against the untiled 1.090 (a dip of
/// 10 % below the same image's steps 3-10 px away), it gives 1.070.
const FEATHER_FRACTION: f32 = 0.15;

/// Side of the box filter that separates a blend's local mean from its
/// texture (an odd number of pixels, about the feather ramp's width).
const LOCAL_MEAN_SIDE: i64 = 5;

/// `existing + weight · (result − existing)`, with the texture's contrast
/// kept where the two are mixed. A linear mix of two partly independent
/// textures has less contrast than either (at equal weights and no
/// correlation, its deviations have half their variance), which showed as
/// a softened band along the cuts: on the tiling test the step across the
/// cuts fell 7-10 % below the same image's steps a few pixels away. So
/// inside the ramp the mix's deviation from its local mean is scaled by
/// `1/√((1−w)² + w² + 2w(1−w)ρ)`, where ρ is the correlation of the two
/// textures over the ramp; where `weight` is 0 or 1 the result is the
/// linear mix exactly.
fn blend_textures(existing: &Tensor, result: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let linear = existing.f_add(&result.f_sub(existing)?.f_mul(weight)?)?;
    let ramp = weight.f_gt(0.0)?.f_logical_and(&weight.f_lt(1.0)?)?.f_to_kind(tch::Kind::Float)?;
    if ramp.f_sum(tch::Kind::Float)?.f_double_value(&[])? == 0.0 {
        return Ok(linear);
    }
    let pad = LOCAL_MEAN_SIDE / 2;
    let local_mean =
        |t: &Tensor| t.f_avg_pool2d([LOCAL_MEAN_SIDE, LOCAL_MEAN_SIDE], [1, 1], [pad, pad], false, false, None::<i64>);
    let texture_a = existing.f_sub(&local_mean(existing)?)?.f_mul(&ramp)?;
    let texture_b = result.f_sub(&local_mean(result)?)?.f_mul(&ramp)?;
    let dot = |x: &Tensor, y: &Tensor| -> Result<f64> { Ok(x.f_mul(y)?.f_sum(tch::Kind::Float)?.f_double_value(&[])?) };
    let norms = (dot(&texture_a, &texture_a)? * dot(&texture_b, &texture_b)?).sqrt();
    let rho = if norms > 0.0 { (dot(&texture_a, &texture_b)? / norms).clamp(0.0, 1.0) } else { 1.0 };
    // (1−w)² + w² + 2w(1−w)ρ = 1 − 2(1−ρ)·w(1−w).
    let mixed = weight.f_mul(&weight.f_neg()?.f_add_scalar(1.0)?)?;
    let gain = mixed.f_mul_scalar(-2.0 * (1.0 - rho))?.f_add_scalar(1.0)?.f_rsqrt()?;
    let deviation = linear.f_sub(&local_mean(&linear)?)?;
    Ok(linear.f_add(&deviation.f_mul(&gain.f_sub_scalar(1.0)?.f_mul(&ramp)?)?)?)
}

/// Write-back weights along one axis for tile `index`: 1 over its core,
/// ramping linearly to 0 across a band centred on each cut that has a
/// neighbour (the rest of the overlap is context for the optimisation).
fn feather(axis: &plan::Axis, index: usize, overlap: u32) -> Result<Tensor> {
    let (start, end) = axis.tiles[index];
    let (first, last) = (index == 0, index + 1 == axis.tiles.len());
    let ramp = (overlap as f32 * FEATHER_FRACTION).max(1.0);
    let (cut_lo, cut_hi) = (axis.cuts[index] as f32, axis.cuts[index + 1] as f32);
    let half = ramp / 2.0;
    let weights: Vec<f32> = (start..end)
        .map(|p| {
            let p = p as f32 + 0.5;
            let left = if first { 1.0 } else { ((p - (cut_lo - half)) / ramp).clamp(0.0, 1.0) };
            let right = if last { 1.0 } else { (((cut_hi + half) - p) / ramp).clamp(0.0, 1.0) };
            left.min(right)
        })
        .collect();
    Ok(Tensor::f_from_slice(&weights)?)
}

struct LevelProblem<'a, 'p> {
    evaluator: Evaluator<'a, 'a>,
    weights: &'a LiveWeights,
    shape: [i64; 4],
    progress: &'p mut dyn FnMut(&Progress) -> Flow,
    report: Progress,
    evaluations_before: usize,
    /// The precision's resolution in model-input units (see [`Precision::resolution`]).
    resolution: f64,
    /// The precision's relative loss noise (see [`Precision::loss_noise`]).
    loss_noise: f64,
    /// Whether the model has an exact fp32 network to refine with, and whether it is in use.
    has_exact: bool,
    exact: bool,
}

impl Problem for LevelProblem<'_, '_> {
    fn resolution(&self) -> f64 {
        if self.exact {
            0.0
        } else {
            self.resolution
        }
    }

    fn loss_tolerance(&self, loss: f64) -> f64 {
        if self.exact {
            0.0
        } else {
            self.loss_noise * loss.abs()
        }
    }

    /// A bf16 or fp16 level whose optimisation has reached its precision's
    /// rounding noise goes on in fp32 (the model's exact network).
    fn refine(&mut self) -> bool {
        if self.exact || !self.has_exact {
            return false;
        }
        self.exact = true;
        self.evaluator.set_exact(true);
        true
    }

    fn evaluate(&mut self, x: &Tensor) -> Result<Evaluation> {
        let (weights, generation) = self.weights.get();
        let image = x.f_view(self.shape)?;
        let (losses, grad) = self.evaluator.value_and_grad(&image, &weights)?;
        let terms = losses.values()?;
        self.report.iteration += 1;
        self.report.evaluation = self.evaluations_before + self.report.iteration;
        self.report.loss = terms;
        if (self.progress)(&self.report) == Flow::Cancel {
            return Err(Error::Cancelled);
        }
        // Exact evaluations are another objective (the optimiser drops what it learnt before).
        let generation = 2 * generation + self.exact as u64;
        Ok(Evaluation { loss: terms.total, grad: grad.f_flatten(0, -1)?, generation })
    }
}
