//! Limited-memory BFGS on flat tensors.
//!
//! The direction comes from the usual two-loop recursion over the last
//! `history` curvature pairs, scaled by `s·y / y·y`. Three step strategies:
//! a fixed step (`step`, the first one shrunk to `min(1, 1/|g|₁)`), the
//! behaviour of `torch.optim.LBFGS` that most style-transfer code uses;
//! Armijo backtracking (the default), which costs one evaluation per step
//! as long as steps lower the loss and never takes one that raises it; and
//! a strong-Wolfe search (Nocedal & Wright, algorithms 3.5 and 3.6, cubic
//! interpolation), which spends more evaluations per step.

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
    /// Usually one evaluation per iteration, like the fixed step, but a step
    /// that raises the loss is never taken.
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
    /// Stop when the largest gradient component falls to this (≤ 0: never).
    pub tolerance_grad: f64,
    /// Length of the very first step, as the largest change of any component;
    /// `None` uses `step · min(1, 1/|g|₁)` as `torch.optim.LBFGS` does.
    pub first_step: Option<f64>,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self { history: 100, step: 1.0, line_search: LineSearch::Backtracking, tolerance_grad: 0.0, first_step: None }
    }
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(a.f_dot(b)?.f_double_value(&[])?)
}

fn axpy(x: &Tensor, t: f64, d: &Tensor) -> Result<Tensor> {
    Ok(x.f_add(&d.f_mul_scalar(t)?)?)
}

struct Pair {
    s: Tensor,
    y: Tensor,
    rho: f64,
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
    let mut history: VecDeque<Pair> = VecDeque::with_capacity(options.history);
    // (previous gradient, previous step s = t·d) for the next curvature pair.
    let mut previous: Option<(Tensor, Tensor)> = None;
    let mut h_diag = 1.0;
    let mut generation = current.generation;
    let mut first = true;

    while evals < max_evals {
        let g = &current.grad;
        if options.tolerance_grad > 0.0 && g.f_abs()?.f_max()?.f_double_value(&[])? <= options.tolerance_grad {
            break;
        }
        if current.generation != generation {
            // The objective changed under us: old curvature describes another function.
            history.clear();
            previous = None;
            generation = current.generation;
        }
        if let Some((g_prev, s)) = previous.take() {
            let y = g.f_sub(&g_prev)?;
            let ys = dot(&y, &s)?;
            // Keep the pair only under clearly positive curvature. The test is
            // on the cosine of (s, y), so it holds whatever the scale of the
            // variable and of the loss (a fixed threshold on ys does not).
            let norms = (dot(&s, &s)? * dot(&y, &y)?).sqrt();
            if ys > 1e-10 * norms && ys > 0.0 {
                if history.len() == options.history {
                    history.pop_front();
                }
                h_diag = ys / dot(&y, &y)?;
                history.push_back(Pair { s, y, rho: 1.0 / ys });
            }
        }
        // Two-loop recursion.
        let mut q = g.f_neg()?;
        let mut alphas = Vec::with_capacity(history.len());
        for pair in history.iter().rev() {
            let alpha = pair.rho * dot(&pair.s, &q)?;
            q = axpy(&q, -alpha, &pair.y)?;
            alphas.push(alpha);
        }
        let mut d = q.f_mul_scalar(h_diag)?;
        for (pair, alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = pair.rho * dot(&pair.y, &d)?;
            d = axpy(&d, alpha - beta, &pair.s)?;
        }
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
        if first {
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
            first = false;
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
                let (t, x_new, eval, used) = backtrack(problem, &x, &d, t, start, budget, &mut best)?;
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
/// point, its evaluation and the evaluations used (≥ 1). When the budget
/// runs out the last trial is returned.
#[allow(clippy::too_many_arguments)]
fn backtrack(
    problem: &mut dyn Problem,
    x: &Tensor,
    d: &Tensor,
    t_initial: f64,
    (loss0, gtd0, generation): (f64, f64, u64),
    budget: usize,
    best: &mut Best,
) -> Result<(f64, Tensor, Evaluation, usize)> {
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
        // A changed objective (weights set mid-run) makes the comparison
        // meaningless: take the step; the caller resets its history.
        let changed = eval.generation != generation;
        if changed || eval.loss <= loss0 + C1 * t * gtd0 || used >= budget {
            return Ok((t, point, eval, used));
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
