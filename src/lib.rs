//! styletransfer: neural style transfer (Gatys et al.) on libtorch.
//!
//! Layers, one direction: this crate's core modules ([`device`], [`model`],
//! [`loss`], [`optim`], [`targets`], [`pack`], [`style`], [`pyramid`],
//! [`plan`], [`run`], [`engine`], [`motion`], [`sequence`], [`color`],
//! [`image`]) know nothing of C or of any host; [`capi`] adapts them to the C ABI declared in
//! `include/styletransfer.h`; the host shims under `plugins/` use only that
//! header. `docs/ARCHITECTURE.md` says what each module owns and how they
//! depend on each other (`tests/architecture.rs` checks there is no cycle).
//!
//! ```no_run
//! use styletransfer::{Engine, EngineOptions, LiveWeights, RunOptions, StyleImage, StyleSet, Weights, Flow};
//! # fn main() -> styletransfer::Result<()> {
//! let engine = Engine::new(&EngineOptions::new("models/vgg19.safetensors"))?;
//! let content = styletransfer::image::load("content.jpg".as_ref())?.rgb;
//! let style = styletransfer::image::load("style.jpg".as_ref())?.rgb;
//! let mut styles = StyleSet::new(vec![StyleImage { image: style, weight: 1.0 }])?;
//! let options = RunOptions::default();
//! let weights = LiveWeights::new(Weights::defaults(options.normalization))?;
//! let out = engine.run(&content, &mut styles, &options, &weights, &mut |_| Flow::Continue)?;
//! styletransfer::image::save("out.png".as_ref(), &out.image, None, false)?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod capi;
pub mod color;
pub mod cuda;
pub mod device;
pub mod engine;
pub mod error;
pub mod evaluator;
pub mod image;
mod level;
pub mod loss;
pub mod memory;
pub mod model;
pub mod motion;
pub mod network;
pub mod optim;
pub mod pack;
pub mod plan;
pub mod pyramid;
pub mod run;
pub mod runtime;
pub mod sequence;
pub mod style;
pub mod targets;
pub mod train;

pub use color::PreserveColor;
pub use device::{DeviceChoice, Precision};
pub use engine::{Engine, EngineOptions};
pub use error::{Error, Result};
pub use image::RgbImage;
pub use loss::{LiveWeights, LossTerms, Normalization, Weights};
pub use model::InputConvention;
pub use network::{InferenceOptions, Network, NetworkInfo, NetworkShape};
pub use optim::{AdamOptions, LbfgsOptions, LineSearch, Optimizer};
pub use pack::{PackInfo, StylePack};
pub use plan::{MemoryOptions, Plan};
pub use run::{Flow, Init, Progress, RunOptions, RunOutput, RunReport};
pub use sequence::{FrameInput, FrameOptions, FrameOutput, FrameReport, Previous, Temporal};
pub use style::StyleSet;
pub use targets::StyleImage;
pub use train::{StepReport, TrainOptions, Trainer};
