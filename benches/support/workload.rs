//! Synthetic, seeded workloads for the benchmarks and the timing example:
//! the same evaluation a run performs, without image files. Shared by
//! `benches/eval.rs` and `examples/eval_speed.rs` through `#[path]`; not
//! part of the library's API.

use tch::{Device, Kind, Tensor};

use styletransfer::loss::{Normalization, Objective, StyleTargets, Weights};
use styletransfer::model::Vgg19;
use styletransfer::Result;

/// A content input, style targets and a point to evaluate at, all `size`².
pub struct Workload {
    content: Tensor,
    style: StyleTargets,
    /// The point the objective is evaluated at (model input).
    pub x: Tensor,
}

impl Workload {
    /// Builds a seeded workload for `model` at `size`×`size`.
    pub fn new(model: &Vgg19, size: i64, seed: i64) -> Result<Self> {
        let device: Device = model.device();
        tch::manual_seed(seed);
        // Model-input values of about the spread natural images have.
        let scale = 0.25 * model.convention().scale();
        let content = Tensor::f_randn([1, 3, size, size], (Kind::Float, Device::Cpu))?
            .f_mul_scalar(scale)?
            .f_to_device(device)?;
        let style_input = Tensor::f_randn([1, 3, size, size], (Kind::Float, Device::Cpu))?
            .f_mul_scalar(scale)?
            .f_to_device(device)?;
        let style = StyleTargets::from_input(model, &style_input)?;
        let x = content.f_add(
            &Tensor::f_randn([1, 3, size, size], (Kind::Float, Device::Cpu))?
                .f_mul_scalar(0.1 * scale)?
                .f_to_device(device)?,
        )?;
        Ok(Self { content, style, x })
    }

    /// The objective (reference normalisation) of this workload.
    pub fn objective<'a>(&'a self, model: &'a Vgg19) -> Result<Objective<'a>> {
        Objective::new(model, &self.content, &self.style, [1.0; 5], Normalization::Reference)
    }

    /// Content input, style targets and start point, by value.
    pub fn into_parts(self) -> (Tensor, StyleTargets, Tensor) {
        (self.content, self.style, self.x)
    }

    /// The reference weights (1, 1e3, 0).
    pub fn weights() -> Weights {
        Weights::defaults(Normalization::Reference)
    }
}
