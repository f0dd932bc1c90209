//! Adam (Kingma & Ba) on a flat tensor.

use tch::Tensor;

use super::{Best, Problem};
use crate::error::{Error, Result};

/// Adam settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamOptions {
    /// Step size, in the units of the variable.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
}

impl Default for AdamOptions {
    fn default() -> Self {
        Self { lr: 1.0, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

/// Minimises `problem` from `x0` (flat) with exactly `max_evals` evaluations
/// (one per step). Returns the lowest-loss point seen under the final objective.
pub fn adam(problem: &mut dyn Problem, x0: &Tensor, max_evals: usize, options: &AdamOptions) -> Result<Tensor> {
    if !(options.lr.is_finite() && options.lr > 0.0) {
        return Err(Error::invalid("lr", "must be a positive number"));
    }
    if !(0.0..1.0).contains(&options.beta1) || !(0.0..1.0).contains(&options.beta2) {
        return Err(Error::invalid("beta", "must lie in [0, 1)"));
    }
    let mut best = Best::new();
    let mut x = x0.f_detach_copy()?;
    let mut m = x.f_zeros_like()?;
    let mut v = x.f_zeros_like()?;
    for step in 1..=max_evals {
        let eval = problem.evaluate(&x)?;
        best.offer(&x, &eval)?;
        if step == max_evals {
            break;
        }
        let g = &eval.grad;
        m = m.f_mul_scalar(options.beta1)?.f_add(&g.f_mul_scalar(1.0 - options.beta1)?)?;
        v = v.f_mul_scalar(options.beta2)?.f_add(&g.f_square()?.f_mul_scalar(1.0 - options.beta2)?)?;
        let m_hat_scale = 1.0 / (1.0 - options.beta1.powi(step as i32));
        let v_hat_scale = 1.0 / (1.0 - options.beta2.powi(step as i32));
        let denominator = v.f_mul_scalar(v_hat_scale)?.f_sqrt()?.f_add_scalar(options.eps)?;
        let update = m.f_mul_scalar(m_hat_scale * options.lr)?.f_div(&denominator)?;
        x = x.f_sub(&update)?;
    }
    best.into_x(&x)
}
