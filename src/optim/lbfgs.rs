//! Limited-memory BFGS on flat tensors.
//!
//! The direction comes from the usual two-loop recursion over the last
//! `history` curvature pairs, scaled by `s·y / y·y`. Three step strategies:
//! a fixed step (`step`, the first one shrunk to `min(1, 1/|g|₁)`), the
//! behaviour of `torch.optim.LBFGS` that most style-transfer code uses;
//! Armijo backtracking (the default), which costs one evaluation per step
//! as long as steps lower the loss enough; and a strong-Wolfe search
//! (Nocedal & Wright, algorithms 3.5 and 3.6, cubic interpolation), which
//! spends more evaluations per step.
//!
//! When no backtracking trial lowers the loss enough, the curvature history
//! is dropped and the search starts again from a steepest-descent step; a
//! fresh start that fails too asks the problem to refine (bf16 and fp16 go
//! on in fp32) or, when it cannot, moves to the last trial anyway rather
//! than repeat the same trials. When the evaluation budget ends inside a
//! line search, its last trial is taken. So single steps may raise the
//! loss; the result is always the lowest-loss point seen.

use std::collections::VecDeque;

use tch::Tensor;

use super::{Best, Evaluation, Problem};
use crate::error::{Error, Result};

/// Step-length strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineSearch {
    /// Take the fixed step every iteration.
    Fixed,
    /// Strong-Wolfe conditions (c1 = 1e-4, c2 = 0.9).
    StrongWolfe,
    /// Armijo backtracking: the step is taken when it lowers the loss enough
    /// (c1 = 1e-4), else shortened by quadratic interpolation and tried again.
    /// Usually one evaluation per iteration, like the fixed step; a step
    /// that raises the loss is taken only as the module's notes say.
    Backtracking,
}

/// L-BFGS settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsOptions {
    /// Curvature pairs kept.
    pub history: usize,
    /// Step length (the line search's first trial).
    pub step: f64,
    /// Step-length strategy.
    pub line_search: LineSearch,
    /// Length of the very first step, as the largest change of any component;
    /// `None` uses `step · min(1, 1/|g|₁)` as `torch.optim.LBFGS` does.
    pub first_step: Option<f64>,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self { history: 100, step: 1.0, line_search: LineSearch::Backtracking, first_step: None }
    }
}

/// With `ST_TRACE_LBFGS=1` in the environment, every iteration prints one
/// line to standard error: the loss, the first trial step, each trial's
/// step and loss, the curvature pair's `y·s`, whether it was kept, and
/// `h_diag`. A diagnostic for the optimiser and the precision policy.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("ST_TRACE_LBFGS").is_some_and(|v| v != "0"))
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(a.f_dot(b)?.f_double_value(&[])?)
}

fn axpy(x: &Tensor, t: f64, d: &Tensor) -> Result<Tensor> {
    Ok(x.f_add(&d.f_mul_scalar(t)?)?)
}

/// The curvature pairs, kept for few launches and host round trips per
/// iteration (on a GPU each of those costs more than the arithmetic): all
/// pairs live in one device buffer, `s` of slot i in row i and `y` in row
/// `capacity + i`, and their inner products are kept on the host. The
/// two-loop recursion then needs two matrix-vector products with the
/// buffer (one for `Sg`/`Yg`, one to form the direction) and one small
/// transfer each way, whatever the history length; adding a pair costs one
/// small matrix product and one transfer. The arithmetic is that of the
/// textbook two-loop recursion, reordered: every inner product it needs is
/// either `Sg`, `Yg` or one of the kept products.
struct History {
    capacity: usize,
    rows: Option<Tensor>,
    /// Slots in use, oldest first.
    order: VecDeque<usize>,
    /// `s_i·y_j` by slots, `capacity × capacity`, row-major.
    sy: Vec<f64>,
    /// `y_i·y_j` by slots.
    yy: Vec<f64>,
}

/// A small tensor's values on the host, in f64, row-major (one transfer).
fn to_host(t: &Tensor) -> Result<Vec<f64>> {
    let flat = t.f_to_kind(tch::Kind::Double)?.f_to_device(tch::Device::Cpu)?.f_flatten(0, -1)?;
    Ok(Vec::<f64>::try_from(&flat)?)
}

/// The curvature test's inner products (s·y, s·s, y·y), with one transfer.
fn pair_products(s: &Tensor, y: &Tensor) -> Result<(f64, f64, f64)> {
    let both = Tensor::f_stack(&[s, y], 0)?;
    let gram = to_host(&both.f_mm(&both.f_tr()?)?)?;
    Ok((gram[1], gram[0], gram[3]))
}

impl History {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            rows: None,
            order: VecDeque::with_capacity(capacity),
            sy: vec![0.0; capacity * capacity],
            yy: vec![0.0; capacity * capacity],
        }
    }

    fn clear(&mut self) {
        self.order.clear();
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Rows of the slots in use: slots are handed out from 0 and only
    /// reused once all are taken, so they are always `0..filled`.
    fn filled(&self) -> usize {
        self.order.len()
    }

    fn s_rows(&self, rows: &Tensor) -> Result<Tensor> {
        Ok(rows.f_narrow(0, 0, self.filled() as i64)?)
    }

    fn y_rows(&self, rows: &Tensor) -> Result<Tensor> {
        Ok(rows.f_narrow(0, self.capacity as i64, self.filled() as i64)?)
    }

    /// Adds the pair (s, y), dropping the oldest when full.
    fn push(&mut self, s: &Tensor, y: &Tensor) -> Result<()> {
        let n = s.numel() as i64;
        if self.rows.is_none() {
            self.rows = Some(Tensor::f_zeros([2 * self.capacity as i64, n], (s.kind(), s.device()))?);
        }
        let rows = self.rows.as_ref().expect("allocated above");
        let slot = if self.order.len() == self.capacity {
            self.order.pop_front().expect("full history has a slot")
        } else {
            self.order.len()
        };
        rows.f_narrow(0, slot as i64, 1)?.f_copy_(&s.f_view([1, n])?)?;
        rows.f_narrow(0, (self.capacity + slot) as i64, 1)?.f_copy_(&y.f_view([1, n])?)?;
        self.order.push_back(slot);
        // Products of the new s and y with every pair in use (itself included).
        let new = Tensor::f_stack(&[s.f_view([n])?, y.f_view([n])?], 1)?;
        let products = Tensor::f_cat(&[self.s_rows(rows)?.f_mm(&new)?, self.y_rows(rows)?.f_mm(&new)?], 0)?;
        let products = to_host(&products)?;
        let filled = self.filled();
        let c = self.capacity;
        for j in 0..filled {
            // products[row][0] = row·s_new, products[row][1] = row·y_new.
            self.sy[j * c + slot] = products[2 * j + 1];
            self.sy[slot * c + j] = products[2 * (filled + j)];
            let yy = products[2 * (filled + j) + 1];
            self.yy[slot * c + j] = yy;
            self.yy[j * c + slot] = yy;
        }
        Ok(())
    }

    /// The two-loop recursion's direction `−H g` with initial scaling `h_diag`.
    fn direction(&self, g: &Tensor, h_diag: f64) -> Result<Tensor> {
        let Some(rows) = self.rows.as_ref().filter(|_| !self.is_empty()) else {
            return Ok(g.f_mul_scalar(-h_diag)?);
        };
        let (s_rows, y_rows) = (self.s_rows(rows)?, self.y_rows(rows)?);
        let ab = Tensor::f_cat(&[s_rows.f_mv(g)?, y_rows.f_mv(g)?], 0)?;
        let ab = to_host(&ab)?;
        let filled = self.filled();
        let c = self.capacity;
        let (a, b) = ab.split_at(filled);
        let order: Vec<usize> = self.order.iter().copied().collect();
        let rho = |i: usize| 1.0 / self.sy[i * c + i];
        // First loop, newest to oldest: q = −g − Σ_{newer j} α_j y_j, α_i = ρ_i s_i·q.
        let mut alpha = vec![0.0; c];
        for (k, &i) in order.iter().enumerate().rev() {
            let mut sq = -a[i];
            for &j in &order[k + 1..] {
                sq -= alpha[j] * self.sy[i * c + j];
            }
            alpha[i] = rho(i) * sq;
        }
        // d = h·q_final, then oldest to newest: β_i = ρ_i y_i·d, d += (α_i − β_i) s_i,
        // with y_i·q_final = −b_i − Σ_j α_j y_i·y_j.
        let mut coefficient = vec![0.0; c];
        for (k, &i) in order.iter().enumerate() {
            let mut yq = -b[i];
            for &j in &order {
                yq -= alpha[j] * self.yy[i * c + j];
            }
            let mut yd = h_diag * yq;
            for &j in &order[..k] {
                yd += coefficient[j] * self.sy[j * c + i];
            }
            let beta = rho(i) * yd;
            coefficient[i] = alpha[i] - beta;
        }
        let kind = g.kind();
        let to_device = |v: Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(&v[..filled])?.f_to_kind(kind)?.f_to_device(g.device())?)
        };
        let y_coefficients: Vec<f64> = alpha.iter().map(|a| -h_diag * a).collect();
        let d = g
            .f_mul_scalar(-h_diag)?
            .f_add(&s_rows.f_tr()?.f_mv(&to_device(coefficient)?)?)?
            .f_add(&y_rows.f_tr()?.f_mv(&to_device(y_coefficients)?)?)?;
        Ok(d)
    }
}

/// Minimises `problem` from `x0` (flat) with at most `max_evals` evaluations.
/// Returns the lowest-loss point seen under the final objective.
pub fn lbfgs(problem: &mut dyn Problem, x0: &Tensor, max_evals: usize, options: &LbfgsOptions) -> Result<Tensor> {
    if options.history == 0 {
        return Err(Error::invalid("history", "must be at least 1"));
    }
    if !(options.step.is_finite() && options.step > 0.0) {
        return Err(Error::invalid("step", "must be a positive number"));
    }
    if let Some(change) = options.first_step {
        if !(change.is_finite() && change > 0.0) {
            return Err(Error::invalid("first_step", "must be a positive number"));
        }
    }
    let mut best = Best::new();
    let mut x = x0.f_detach_copy()?;
    if max_evals == 0 {
        return Ok(x);
    }
    let mut current = problem.evaluate(&x)?;
    best.offer(&x, &current)?;
    let mut evals = 1;
    let mut history = History::new(options.history.min(max_evals));
    // (previous gradient, previous step s = t·d) for the next curvature pair.
    let mut previous: Option<(Tensor, Tensor)> = None;
    let mut h_diag = 1.0;
    let mut generation = current.generation;
    // Until a curvature pair has been kept, h_diag says nothing about the
    // problem's scale, and steps are sized by the first-step rule.
    let mut calibrated = false;

    while evals < max_evals {
        let g = &current.grad;
        if current.generation != generation {
            // The objective changed under us: old curvature describes another function.
            history.clear();
            previous = None;
            generation = current.generation;
        }
        if let Some((g_prev, s)) = previous.take() {
            let y = g.f_sub(&g_prev)?;
            let (ys, ss, yy) = pair_products(&s, &y)?;
            // Keep the pair only under clearly positive curvature. The test is
            // on the cosine of (s, y), so it holds whatever the scale of the
            // variable and of the loss (a fixed threshold on ys does not).
            // A step below the evaluation's resolution changes the gradient
            // by little more than its rounding noise.
            // (Asked each time: a refined problem evaluates exactly from then on.)
            let resolution = problem.resolution();
            let resolved = resolution <= 0.0 || s.f_abs()?.f_max()?.f_double_value(&[])? >= resolution;
            let kept = ys > 1e-10 * (ss * yy).sqrt() && ys > 0.0 && resolved;
            if kept {
                h_diag = ys / yy;
                history.push(&s, &y)?;
                calibrated = true;
            }
            if tracing() {
                let cosine = ys / (ss * yy).sqrt().max(f64::MIN_POSITIVE);
                eprintln!(
                    "lbfgs: pair y.s {ys:.3e} |s| {:.3e} |y| {:.3e} cos {cosine:.3e} {} h_diag {h_diag:.3e} pairs {}",
                    ss.sqrt(),
                    yy.sqrt(),
                    if kept { "kept" } else { "dropped" },
                    history.filled()
                );
            }
        }
        let mut d = history.direction(g, h_diag)?;
        let mut gtd = dot(g, &d)?;
        if gtd.is_nan() || gtd >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            history.clear();
            d = g.f_neg()?.f_mul_scalar(h_diag)?;
            gtd = dot(g, &d)?;
            if gtd.is_nan() || gtd >= 0.0 {
                break;
            }
        }
        let mut t = options.step;
        if !calibrated {
            t = match options.first_step {
                Some(change) => {
                    let largest = d.f_abs()?.f_max()?.f_double_value(&[])?;
                    if largest > 0.0 {
                        change / largest
                    } else {
                        options.step
                    }
                }
                None => {
                    let g_l1 = g.f_abs()?.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
                    options.step * (1.0 / g_l1).min(1.0)
                }
            };
        }
        if tracing() {
            let largest = d.f_abs()?.f_max()?.f_double_value(&[])?;
            eprintln!(
                "lbfgs: eval {evals} loss {:.6e} g.d {gtd:.3e} first trial t {t:.3e} (largest change {:.3e})",
                current.loss,
                t * largest
            );
        }
        let g_prev = g.shallow_clone();
        let (x_new, eval, used, t_taken) = match options.line_search {
            LineSearch::Fixed => {
                let x_new = axpy(&x, t, &d)?;
                let eval = problem.evaluate(&x_new)?;
                (x_new, eval, 1, t)
            }
            LineSearch::Backtracking => {
                let budget = max_evals - evals;
                let start = (current.loss, gtd, current.generation);
                let (t, x_new, eval, used, accepted) = backtrack(problem, &x, &d, t, start, budget, &mut best)?;
                if !accepted && used < budget {
                    // No trial lowered the loss enough. If the quasi-Newton model
                    // was in use, it is wrong here (under rounding noise, corrupted
                    // by it): start afresh from a steepest-descent step of the
                    // first-step length. If that step failed too, the point is at
                    // the evaluation's resolution: ask for exact evaluations and
                    // start afresh from this point evaluated exactly.
                    let was_calibrated = calibrated;
                    let refined = !calibrated && problem.refine();
                    history.clear();
                    calibrated = false;
                    h_diag = 1.0;
                    evals += used;
                    previous = None;
                    if tracing() {
                        let what = if refined { "exact evaluations from now on" } else { "history dropped" };
                        eprintln!("lbfgs: line search failed: {what}");
                    }
                    if refined {
                        if evals >= max_evals {
                            break;
                        }
                        current = problem.evaluate(&x)?;
                        evals += 1;
                        best.offer(&x, &current)?;
                    } else if !was_calibrated {
                        // A failed fresh start that nothing can refine: move on
                        // rather than repeat the same trials from the same point.
                        best.offer(&x_new, &eval)?;
                        x = x_new;
                        current = eval;
                    }
                    // (Else stay at x: the failed trials were all worse.)
                    if !current.loss.is_finite() {
                        break;
                    }
                    continue;
                }
                (x_new, eval, used, t)
            }
            LineSearch::StrongWolfe => {
                let budget = max_evals - evals;
                let start = (current.loss, gtd, current.generation);
                let (t, x_new, eval, used) = strong_wolfe(problem, &x, &d, t, start, budget, &mut best)?;
                (x_new, eval, used, t)
            }
        };
        evals += used;
        best.offer(&x_new, &eval)?;
        previous = Some((g_prev, d.f_mul_scalar(t_taken)?));
        x = x_new;
        current = eval;
        if !current.loss.is_finite() {
            break;
        }
    }
    best.into_x(&x)
}

/// Armijo backtracking along `d` from `x`: returns the accepted step, the
/// point, its evaluation, the evaluations used (≥ 1) and whether the step
/// was accepted. When the trials or the budget run out the last trial is
/// returned, not accepted.
#[allow(clippy::too_many_arguments)]
fn backtrack(
    problem: &mut dyn Problem,
    x: &Tensor,
    d: &Tensor,
    t_initial: f64,
    (loss0, gtd0, generation): (f64, f64, u64),
    budget: usize,
    best: &mut Best,
) -> Result<(f64, Tensor, Evaluation, usize, bool)> {
    const C1: f64 = 1e-4;
    const MAX_TRIALS: usize = 10;
    let budget = budget.clamp(1, MAX_TRIALS);
    let mut t = t_initial;
    let mut used = 0;
    loop {
        let point = axpy(x, t, d)?;
        let eval = problem.evaluate(&point)?;
        used += 1;
        best.offer(&point, &eval)?;
        if tracing() {
            eprintln!("lbfgs:   trial t {t:.3e} loss {:.6e} (change {:+.3e})", eval.loss, eval.loss - loss0);
        }
        // A changed objective (weights set mid-run) makes the comparison
        // meaningless: take the step; the caller resets its history.
        let changed = eval.generation != generation;
        let accepted = changed || eval.loss <= loss0 + C1 * t * gtd0 + problem.loss_tolerance(loss0);
        if accepted || used >= budget {
            return Ok((t, point, eval, used, accepted));
        }
        // Minimiser of the parabola through f(0), f'(0) and f(t), kept in [t/10, t/2].
        let curvature = eval.loss - loss0 - gtd0 * t;
        let next = if curvature.is_finite() && curvature > 0.0 { -gtd0 * t * t / (2.0 * curvature) } else { t / 2.0 };
        t = next.clamp(0.1 * t, 0.5 * t);
    }
}

/// Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), kept inside
/// `bounds`; the middle of the bounds when the cubic has no minimiser.
fn cubic_minimizer(x1: f64, f1: f64, g1: f64, x2: f64, f2: f64, g2: f64, bounds: (f64, f64)) -> f64 {
    let (lo, hi) = if bounds.0 <= bounds.1 { bounds } else { (bounds.1, bounds.0) };
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let t = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        if t.is_finite() {
            return t.clamp(lo, hi);
        }
    }
    (lo + hi) / 2.0
}

struct Trial {
    t: f64,
    loss: f64,
    gtd: f64,
}

/// Strong-Wolfe line search along `d` from `x`. Returns the accepted step, the
/// point, its evaluation and the number of evaluations used (≥ 1).
#[allow(clippy::too_many_arguments)]
fn strong_wolfe(
    problem: &mut dyn Problem,
    x: &Tensor,
    d: &Tensor,
    t_initial: f64,
    (loss0, gtd0, generation): (f64, f64, u64),
    budget: usize,
    best: &mut Best,
) -> Result<(f64, Tensor, Evaluation, usize)> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_TRIALS: usize = 25;
    let budget = budget.clamp(1, MAX_TRIALS);
    let mut used = 0;
    let mut evaluate = |t: f64, used: &mut usize| -> Result<(Tensor, Evaluation, f64)> {
        let point = axpy(x, t, d)?;
        let eval = problem.evaluate(&point)?;
        *used += 1;
        let gtd = dot(&eval.grad, d)?;
        Ok((point, eval, gtd))
    };
    let mut previous = Trial { t: 0.0, loss: loss0, gtd: gtd0 };
    let mut t = t_initial;
    // The most recent trial, returned when the budget runs out.
    let mut last;
    let (mut lo, mut hi);
    // Keeps the lowest trial so far as the answer if we stop early.
    let mut lowest: Option<(f64, Tensor, Evaluation)> = None;
    loop {
        let (point, eval, gtd) = evaluate(t, &mut used)?;
        best.offer(&point, &eval)?;
        if eval.generation != generation {
            return Ok((t, point, eval, used));
        }
        let trial = Trial { t, loss: eval.loss, gtd };
        let sufficient_decrease = trial.loss <= loss0 + C1 * t * gtd0;
        let armijo_fails = !sufficient_decrease || (used > 1 && trial.loss >= previous.loss);
        if armijo_fails {
            lo = previous;
            hi = trial;
            last = (point, eval);
            break;
        }
        if trial.gtd.abs() <= -C2 * gtd0 {
            return Ok((t, point, eval, used));
        }
        if trial.gtd >= 0.0 {
            hi = previous;
            lo = trial;
            last = (point, eval);
            lowest = Some((lo.t, last.0.shallow_clone(), clone_eval(&last.1)));
            break;
        }
        if used >= budget {
            return Ok((t, point, eval, used));
        }
        let next = cubic_minimizer(
            previous.t,
            previous.loss,
            previous.gtd,
            trial.t,
            trial.loss,
            trial.gtd,
            (t + 0.01 * (t - previous.t), 10.0 * t),
        );
        lowest = Some((t, point, eval));
        previous = trial;
        t = next;
    }
    // Zoom between lo (lower loss, satisfies sufficient decrease) and hi.
    while used < budget {
        let width = (hi.t - lo.t).abs();
        if width < 1e-9 * lo.t.abs().max(1e-12) {
            break;
        }
        let margin = 0.1 * width;
        let (a, b) = if lo.t < hi.t { (lo.t + margin, hi.t - margin) } else { (hi.t + margin, lo.t - margin) };
        let t = cubic_minimizer(lo.t, lo.loss, lo.gtd, hi.t, hi.loss, hi.gtd, (a, b));
        let (point, eval, gtd) = evaluate(t, &mut used)?;
        best.offer(&point, &eval)?;
        if eval.generation != generation {
            return Ok((t, point, eval, used));
        }
        let trial = Trial { t, loss: eval.loss, gtd };
        let sufficient_decrease = trial.loss <= loss0 + C1 * t * gtd0;
        if !sufficient_decrease || trial.loss >= lo.loss {
            hi = trial;
            last = (point, eval);
        } else {
            if trial.gtd.abs() <= -C2 * gtd0 {
                return Ok((t, point, eval, used));
            }
            if trial.gtd * (hi.t - lo.t) >= 0.0 {
                hi = lo;
            }
            lo = trial;
            lowest = Some((lo.t, point.shallow_clone(), clone_eval(&eval)));
            last = (point, eval);
        }
    }
    // Out of budget or the bracket collapsed: the best acceptable point, else the last one.
    match lowest {
        Some((t, point, eval)) => Ok((t, point, eval, used)),
        None => {
            let (point, eval) = last;
            Ok((hi.t, point, eval, used))
        }
    }
}

fn clone_eval(eval: &Evaluation) -> Evaluation {
    Evaluation { loss: eval.loss, grad: eval.grad.shallow_clone(), generation: eval.generation }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// f(x) = ½ (x − c)ᵀ A (x − c) with A diagonal and badly conditioned.
    struct Quadratic {
        diagonal: Tensor,
        centre: Tensor,
        evals: usize,
    }

    impl Problem for Quadratic {
        fn evaluate(&mut self, x: &Tensor) -> Result<Evaluation> {
            self.evals += 1;
            let r = x.f_sub(&self.centre)?;
            let ar = r.f_mul(&self.diagonal)?;
            let loss = 0.5 * dot(&r, &ar)?;
            Ok(Evaluation { loss, grad: ar, generation: 0 })
        }
    }

    fn quadratic(n: i64) -> Quadratic {
        let diagonal = Tensor::logspace(0.0, 3.0, n, 10.0, (Kind::Double, Device::Cpu));
        let centre = Tensor::linspace(-2.0, 5.0, n, (Kind::Double, Device::Cpu));
        Quadratic { diagonal, centre, evals: 0 }
    }

    #[test]
    fn cubic_minimizer_finds_the_minimum_of_a_parabola() {
        // f(t) = (t − 2)²: f(0) = 4, f'(0) = −4; f(3) = 1, f'(3) = 2.
        let t = cubic_minimizer(0.0, 4.0, -4.0, 3.0, 1.0, 2.0, (0.0, 3.0));
        assert!((t - 2.0).abs() < 1e-12, "{t}");
    }

    #[test]
    fn reaches_a_known_minimum_on_a_quadratic() {
        for line_search in [LineSearch::Fixed, LineSearch::StrongWolfe, LineSearch::Backtracking] {
            let mut problem = quadratic(200);
            let x0 = Tensor::zeros([200], (Kind::Double, Device::Cpu));
            let options = LbfgsOptions { history: 20, line_search, ..Default::default() };
            let x = lbfgs(&mut problem, &x0, 400, &options).unwrap();
            let loss = problem.evaluate(&x).unwrap().loss;
            // The minimum is 0 at x = centre.
            assert!(loss < 1e-6, "{line_search:?}: loss {loss}");
            let error = x.f_sub(&problem.centre).unwrap().f_abs().unwrap().f_max().unwrap().double_value(&[]);
            assert!(error < 1e-3, "{line_search:?}: max error {error}");
        }
    }

    /// The textbook two-loop recursion over `pairs` (oldest first).
    fn two_loop(pairs: &[(Tensor, Tensor)], g: &Tensor, h_diag: f64) -> Tensor {
        let mut q = g.neg();
        let mut alphas = Vec::new();
        for (s, y) in pairs.iter().rev() {
            let rho = 1.0 / dot(s, y).unwrap();
            let alpha = rho * dot(s, &q).unwrap();
            q = axpy(&q, -alpha, y).unwrap();
            alphas.push(alpha);
        }
        let mut d = q.f_mul_scalar(h_diag).unwrap();
        for ((s, y), alpha) in pairs.iter().zip(alphas.iter().rev()) {
            let beta = dot(y, &d).unwrap() / dot(s, y).unwrap();
            d = axpy(&d, alpha - beta, s).unwrap();
        }
        d
    }

    #[test]
    fn direction_matches_the_textbook_two_loop_recursion() {
        tch::manual_seed(7);
        let n = 64;
        let options = (Kind::Double, Device::Cpu);
        let curvature = Tensor::rand([n], options).f_add_scalar(0.1).unwrap();
        let mut history = History::new(5);
        let mut pairs: Vec<(Tensor, Tensor)> = Vec::new();
        for step in 0..13 {
            if step == 9 {
                // As after a change of objective: everything dropped, slots reused.
                history.clear();
                pairs.clear();
            }
            let s = Tensor::randn([n], options);
            let y =
                s.f_mul(&curvature).unwrap().f_add(&Tensor::randn([n], options).f_mul_scalar(0.01).unwrap()).unwrap();
            history.push(&s, &y).unwrap();
            pairs.push((s, y));
            if pairs.len() > 5 {
                drop(pairs.remove(0));
            }
            let g = Tensor::randn([n], options);
            let h_diag = 0.3 + step as f64 * 0.1;
            let expected = two_loop(&pairs, &g, h_diag);
            let got = history.direction(&g, h_diag).unwrap();
            let scale = expected.abs().max().double_value(&[]);
            let error = got.f_sub(&expected).unwrap().abs().max().double_value(&[]) / scale;
            assert!(error < 1e-10, "step {step}: relative error {error:e}");
        }
    }

    #[test]
    fn respects_the_evaluation_budget() {
        for line_search in [LineSearch::Fixed, LineSearch::StrongWolfe, LineSearch::Backtracking] {
            let mut problem = quadratic(50);
            let x0 = Tensor::zeros([50], (Kind::Double, Device::Cpu));
            let options = LbfgsOptions { line_search, ..Default::default() };
            let _ = lbfgs(&mut problem, &x0, 17, &options).unwrap();
            assert_eq!(problem.evals, 17, "{line_search:?}");
        }
    }
}
