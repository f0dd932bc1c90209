//! Evaluations of an objective (value and input gradient), replayed from a
//! CUDA graph on CUDA devices.
//!
//! One evaluation is a few hundred small kernel launches; at 512² on an H100
//! launching them costs more than running them. On a CUDA device the first
//! evaluation of a shape runs eagerly (it also lets cuDNN pick its
//! algorithms) and is then captured as a CUDA graph, replayed once and
//! checked against the eager result; every later one copies the input into the graph's
//! input buffer and replays the graph with one launch. A change of weights
//! (a strength slider moved mid-run) captures again. If capturing fails or
//! the replay disagrees with the eager evaluation, the evaluator stays eager
//! for the rest of its life. `ST_CUDA_GRAPHS=0` disables graphs.

use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Tensor};

use crate::cuda::{self, Graph};
use crate::error::Result;
use crate::loss::{LossTensors, Objective, Weights};

static GRAPHS_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns CUDA graphs on or off for evaluators created afterwards
/// (process-wide; on by default unless `ST_CUDA_GRAPHS=0`).
pub fn set_graphs_enabled(enabled: bool) {
    GRAPHS_ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether evaluations on `device` will be replayed from CUDA graphs.
pub fn graphs_active(device: Device) -> bool {
    device.is_cuda()
        && cuda::graphs_loaded()
        && GRAPHS_ENABLED.load(Ordering::Relaxed)
        && std::env::var("ST_CUDA_GRAPHS").map_or(true, |v| v != "0")
}

struct Captured {
    graph: Graph,
    input: Tensor,
    losses: LossTensors,
    grad: Tensor,
    weights: Weights,
}

enum State {
    /// Always eager (CPU, graphs off, or capture failed).
    Eager,
    /// CUDA: the next evaluation runs eagerly, then captures.
    Warming,
    /// CUDA: replaying.
    Captured(Box<Captured>),
}

/// Evaluates one objective, eagerly or from a CUDA graph (see the module
/// documentation). Results are the caller's own tensors in either case.
pub struct Evaluator<'o, 'a> {
    objective: &'o Objective<'a>,
    device: Device,
    state: State,
    /// Evaluations run the model's exact fp32 network (see [`Evaluator::set_exact`]).
    exact: bool,
    /// Why graphs were given up, if they were.
    pub fallback_reason: Option<String>,
}

impl<'o, 'a> Evaluator<'o, 'a> {
    /// An evaluator of `objective`, whose model lives on `device`.
    pub fn new(objective: &'o Objective<'a>, device: Device) -> Self {
        let state = if graphs_active(device) { State::Warming } else { State::Eager };
        Self { objective, device, state, exact: false, fallback_reason: None }
    }

    /// From the next evaluation on, runs the model's exact fp32 network
    /// instead of its precision's (a captured graph is captured again).
    pub fn set_exact(&mut self, exact: bool) {
        if exact != self.exact {
            self.exact = exact;
            if matches!(self.state, State::Captured(_)) {
                self.state = State::Warming;
            }
        }
    }

    /// Whether the last evaluation came from a graph replay.
    pub fn replaying(&self) -> bool {
        matches!(self.state, State::Captured(_))
    }

    /// Loss terms and the input gradient at `x` (`[1, 3, H, W]` model input).
    pub fn value_and_grad(&mut self, x: &Tensor, weights: &Weights) -> Result<(LossTensors, Tensor)> {
        if let State::Captured(c) = &self.state {
            if c.weights == *weights && c.input.size() == x.size() {
                let mut input = c.input.shallow_clone();
                input.f_copy_(x)?;
                c.graph.replay()?;
                let losses = c.losses.detach_copy()?;
                return Ok((losses, c.grad.f_detach_copy()?));
            }
            // The weights (or the shape) changed: capture again.
            self.state = State::Warming;
        }
        let eager = self.objective.value_and_grad_with(x, weights, self.exact)?;
        if matches!(self.state, State::Warming) {
            self.state = match self.capture(x, weights, &eager) {
                Ok(captured) => State::Captured(Box::new(captured)),
                Err(e) => {
                    self.fallback_reason = Some(e.to_string());
                    State::Eager
                }
            };
        }
        Ok(eager)
    }

    fn capture(&self, x: &Tensor, weights: &Weights, eager: &(LossTensors, Tensor)) -> Result<Captured> {
        let Device::Cuda(index) = self.device else {
            return Err(crate::Error::Torch("CUDA graphs need a CUDA device".into()));
        };
        let input = x.f_detach_copy()?;
        let (graph, (losses, grad)) =
            Graph::capture(index, || self.objective.value_and_grad_with(&input, weights, self.exact))?;
        // Capturing records the work without running it.
        graph.replay()?;
        let expected = eager.0.total.f_double_value(&[])?;
        let got = losses.total.f_double_value(&[])?;
        let scale = eager.1.f_abs()?.f_max()?.f_double_value(&[])?.max(1e-30);
        let grad_error = grad.f_sub(&eager.1)?.f_abs()?.f_max()?.f_double_value(&[])? / scale;
        let loss_error = (got - expected).abs() / expected.abs().max(1e-30);
        if !(loss_error <= 1e-3 && grad_error <= 1e-2) {
            return Err(crate::Error::Torch(format!(
                "CUDA graph replay disagrees with the eager evaluation (loss {loss_error:.2e}, gradient {grad_error:.2e})"
            )));
        }
        // The eager evaluation's blocks are cached outside the graph's pool.
        cuda::release_cached();
        Ok(Captured { graph, input, losses, grad, weights: *weights })
    }
}
