//! Optimisers over a flat tensor: L-BFGS (with an optional strong-Wolfe line
//! search) and Adam. libtorch's C++ optimisers are not exposed by `tch`, and
//! owning them lets the evaluation budget, cancellation and mid-run changes of
//! the objective be handled exactly.

mod adam;
mod lbfgs;

pub use adam::{adam, AdamOptions};
pub use lbfgs::{lbfgs, LbfgsOptions, LineSearch};

use tch::Tensor;

use crate::error::Result;

/// One evaluation of the objective.
pub struct Evaluation {
    /// The objective's value.
    pub loss: f64,
    /// Its gradient, same shape as the variable.
    pub grad: Tensor,
    /// Changes whenever the objective itself changed (weights set mid-run);
    /// curvature history gathered under another objective is then dropped.
    pub generation: u64,
}

/// Something to minimise. `evaluate` may return `Err(Error::Cancelled)` to stop.
pub trait Problem {
    /// Value and gradient at `x` (a flat fp32 tensor).
    fn evaluate(&mut self, x: &Tensor) -> Result<Evaluation>;

    /// The smallest change of a component, in the variable's units, whose
    /// effect on the gradient stands above the evaluation's rounding noise
    /// (0 for exact arithmetic). L-BFGS keeps no curvature pair from a
    /// shorter step: its gradient difference would be mostly noise.
    fn resolution(&self) -> f64 {
        0.0
    }

    /// Asked when the optimiser can no longer make progress at the
    /// evaluation's resolution: a problem that can evaluate more exactly
    /// (a bf16 or fp16 run, in fp32) does so from the next evaluation on,
    /// reports a new [`Evaluation::generation`] and returns true; others
    /// return false.
    fn refine(&mut self) -> bool {
        false
    }

    /// How far apart two evaluations' losses may be from rounding alone,
    /// near a loss of `loss` (0 for exact arithmetic). A line search takes
    /// a step whose loss is within this of what it asks for.
    fn loss_tolerance(&self, loss: f64) -> f64 {
        let _ = loss;
        0.0
    }
}

/// Which optimiser a run uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Limited-memory BFGS.
    Lbfgs(LbfgsOptions),
    /// Adam.
    Adam(AdamOptions),
}

impl Optimizer {
    /// Runs the optimiser from `x0` for at most `max_evals` evaluations and
    /// returns the best point seen under the final objective.
    pub fn minimize(&self, problem: &mut dyn Problem, x0: &Tensor, max_evals: usize) -> Result<Tensor> {
        match self {
            Optimizer::Lbfgs(options) => lbfgs(problem, x0, max_evals, options),
            Optimizer::Adam(options) => adam(problem, x0, max_evals, options),
        }
    }
}

/// Keeps the lowest-loss point seen since the objective last changed.
pub(crate) struct Best {
    x: Option<Tensor>,
    loss: f64,
    generation: u64,
}

impl Best {
    pub(crate) fn new() -> Self {
        Self { x: None, loss: f64::INFINITY, generation: 0 }
    }

    pub(crate) fn offer(&mut self, x: &Tensor, eval: &Evaluation) -> Result<()> {
        if eval.generation != self.generation {
            self.loss = f64::INFINITY;
            self.generation = eval.generation;
        }
        if eval.loss.is_finite() && eval.loss <= self.loss {
            self.loss = eval.loss;
            match &mut self.x {
                Some(kept) => {
                    kept.f_copy_(x)?;
                }
                None => self.x = Some(x.f_detach_copy()?),
            }
        }
        Ok(())
    }

    pub(crate) fn into_x(self, fallback: &Tensor) -> Result<Tensor> {
        match self.x {
            Some(x) => Ok(x),
            None => Ok(fallback.f_detach_copy()?),
        }
    }
}
