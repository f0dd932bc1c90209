//! Frames of a sequence: a frame run that follows the previous one
//! (Ruder, Dosovitskiy and Brox 2016, "Artistic style transfer for videos").
//!
//! A caller keeps one [`Engine`] and one [`StyleSet`] for the whole sequence
//! (the style targets are computed once per size and cached there) and
//! calls [`Engine::run_frame`] for each frame, passing the previous content
//! frame and the previous output. With [`Temporal::Flow`] a frame that has a
//! previous one:
//! - computes the optical flow between the two content frames, both ways, at
//!   the working size ([`crate::motion::optical_flow`]);
//! - warps the previous output into this frame and starts there, at the
//!   working size only (one pyramid level: it starts close);
//! - adds the temporal term `weight · mean(c · (x − warped)²)`, with `c` the
//!   reliability mask (0 at disocclusions and motion boundaries,
//!   [`crate::motion::reliability`]; on luma only under luminance colour
//!   preservation, whose output takes the content's colours);
//! - runs [`FrameOptions::iterations`] evaluations instead of the run
//!   options' (later frames need fewer).
//!
//! [`Temporal::Init`] starts the ordinary multi-level run from the previous
//! output without warping it and adds no term; [`Temporal::Off`] runs the
//! frame independently. A frame without a previous one is an ordinary run in
//! every mode.

use std::time::Instant;

use crate::color::PreserveColor;
use crate::engine::{Engine, FrameStart};
use crate::error::{Error, Result};
use crate::image::{luma, RgbImage};
use crate::loss::{LiveWeights, TemporalTarget};
use crate::motion::{optical_flow, reliability, warp};
use crate::run::{Flow, Init, Progress, RunOptions, RunOutput};
use crate::style::StyleSet;
use crate::targets::ladder_side;

/// How a frame uses the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Temporal {
    /// Independent frames.
    Off,
    /// Start from the previous output as it is (no motion followed, no term).
    Init,
    /// Start from the previous output warped by the optical flow, and keep
    /// close to it where the flow is reliable (the default).
    #[default]
    Flow,
}

impl Temporal {
    /// Parses `off`, `init` or `flow`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "off" => Some(Self::Off),
            "init" => Some(Self::Init),
            "flow" => Some(Self::Flow),
            _ => None,
        }
    }

    /// `off`, `init` or `flow`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Init => "init",
            Self::Flow => "flow",
        }
    }
}

/// Default weight of the temporal term (display units; see [`crate::loss`]).
/// Measured on the synthetic pan and zoom (160×120, 12 frames, a sprite
/// crossing, Starry Night, 100 evaluations a frame; `scripts/bench-temporal.py`):
/// weights 0, 10, 30, 100 and 1000 gave warping errors of 0.43, 0.21, 0.15,
/// 0.12 and 0.12 times the independent frames' on the pan, and style terms
/// up to 5 %, 9 %, 15 %, 17 % and 40 % above theirs. The warped start does
/// most of the work; above 10 the term buys little steadiness and costs style.
pub const DEFAULT_TEMPORAL_WEIGHT: f64 = 10.0;

/// How a frame of a sequence runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameOptions {
    /// How the previous frame is used.
    pub temporal: Temporal,
    /// Weight of the temporal term ([`Temporal::Flow`]).
    pub temporal_weight: f64,
    /// Evaluations for a frame that follows a previous one (per level with
    /// [`Temporal::Init`], at the working size with [`Temporal::Flow`]);
    /// `None`: the run options' `iterations`. Unused for independent frames.
    pub iterations: Option<usize>,
}

impl Default for FrameOptions {
    fn default() -> Self {
        Self { temporal: Temporal::Flow, temporal_weight: DEFAULT_TEMPORAL_WEIGHT, iterations: None }
    }
}

/// The frame before this one.
#[derive(Clone, Copy, Debug)]
pub struct Previous<'a> {
    /// Its content frame.
    pub content: &'a RgbImage,
    /// Its output (as the caller keeps it: the file written, for instance).
    pub output: &'a RgbImage,
}

/// A frame to stylise, and the one before it.
#[derive(Clone, Copy, Debug)]
pub struct FrameInput<'a> {
    /// The content frame.
    pub content: &'a RgbImage,
    /// The frame before it: `None` for a first frame (or one to run independently).
    pub previous: Option<Previous<'a>>,
}

/// Facts about a frame beyond its [`crate::run::RunReport`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameReport {
    /// What the frame did: [`Temporal::Off`] for an independent frame
    /// (including a first frame).
    pub temporal: Temporal,
    /// Seconds spent on optical flow and the mask.
    pub flow_seconds: f64,
    /// Share of the frame's pixels where the temporal term applies (mask 1).
    pub reliable: f64,
}

/// A finished frame.
#[derive(Clone, Debug)]
pub struct FrameOutput {
    /// The run's image and report.
    pub output: RunOutput,
    /// The frame's own facts.
    pub frame: FrameReport,
}

fn check_previous(name: &'static str, image: &RgbImage, content: &RgbImage) -> Result<()> {
    if (image.width(), image.height()) != (content.width(), content.height()) {
        return Err(Error::invalid(
            name,
            format!(
                "is {}×{} but the frame is {}×{}",
                image.width(),
                image.height(),
                content.width(),
                content.height()
            ),
        ));
    }
    Ok(())
}

impl Engine {
    /// Computes and caches in `styles` the style targets that the frames of
    /// a sequence of `content_size` frames use under `options`: one per
    /// pyramid level size of an independent frame (a flow frame uses the
    /// finest level's). Under histogram colour preservation targets depend
    /// on each frame and none are cached. Returns how many were computed.
    pub fn prepare_targets(
        &self,
        content_size: (u32, u32),
        styles: &mut StyleSet,
        options: &RunOptions,
    ) -> Result<usize> {
        if options.preserve_color == PreserveColor::Histogram {
            return Ok(0);
        }
        let before = styles.targets_computed();
        for level in &self.plan(content_size, styles, options)?.levels {
            let wanted = (level.width.max(level.height) as f64 * options.style_scale).round() as u32;
            styles.targets(self.model(), ladder_side(wanted))?;
        }
        Ok(styles.targets_computed() - before)
    }

    /// Stylises one frame of a sequence (see the module documentation).
    /// The previous frame's images must have the content's size.
    pub fn run_frame(
        &self,
        input: FrameInput<'_>,
        styles: &mut StyleSet,
        options: &RunOptions,
        frame: &FrameOptions,
        weights: &LiveWeights,
        progress: &mut dyn FnMut(&Progress) -> Flow,
    ) -> Result<FrameOutput> {
        let FrameInput { content, previous } = input;
        if !(frame.temporal_weight.is_finite() && frame.temporal_weight >= 0.0) {
            return Err(Error::invalid(
                "temporal_weight",
                format!("{} is not a finite non-negative number", frame.temporal_weight),
            ));
        }
        if frame.iterations == Some(0) {
            return Err(Error::invalid("iterations", "a frame's evaluations must be at least 1"));
        }
        if let Some(p) = &previous {
            check_previous("previous_content", p.content, content)?;
            check_previous("previous_output", p.output, content)?;
        }
        let independent = FrameReport { temporal: Temporal::Off, flow_seconds: 0.0, reliable: 0.0 };
        let previous = match (previous, frame.temporal) {
            (Some(p), Temporal::Init | Temporal::Flow) => p,
            _ => {
                let output = self.run(content, styles, options, weights, progress)?;
                return Ok(FrameOutput { output, frame: independent });
            }
        };
        let later = RunOptions { iterations: frame.iterations.unwrap_or(options.iterations), ..options.clone() };
        if frame.temporal == Temporal::Init {
            let options = RunOptions { init: Init::Image(previous.output.clone()), ..later };
            let output = self.run(content, styles, &options, weights, progress)?;
            return Ok(FrameOutput { output, frame: FrameReport { temporal: Temporal::Init, ..independent } });
        }
        // The working size, as the first frame's finest level had it.
        let plan = self.plan((content.width(), content.height()), styles, options)?;
        let finest = plan.levels.last().ok_or_else(|| Error::invalid("scales", "no pyramid level"))?;
        let (w, h) = (finest.width, finest.height);
        let started = Instant::now();
        let at_working = |image: &RgbImage| -> Result<RgbImage> {
            if (image.width(), image.height()) == (w, h) {
                Ok(image.clone())
            } else {
                image.resize(w, h)
            }
        };
        let (current, before) = (at_working(content)?, at_working(previous.content)?);
        let backward = optical_flow(&current, &before, self.device())?;
        let forward = optical_flow(&before, &current, self.device())?;
        let mask = reliability(&forward, &backward)?;
        let reliable = mask.f_mean(tch::Kind::Float)?.f_double_value(&[])?;
        let warped = warp(&at_working(previous.output)?.to_tensor(self.device())?, &backward)?;
        let warped = self.model().convention().to_model(&warped)?;
        let flow_seconds = started.elapsed().as_secs_f64();
        // Luminance-only transfer replaces the result's colours with the
        // content's, so the previous output's colours say nothing about the
        // optimised image's: only luma is held.
        let luma_weights = [luma(1.0, 0.0, 0.0), luma(0.0, 1.0, 0.0), luma(0.0, 0.0, 1.0)].map(f64::from);
        let channels = (options.preserve_color == PreserveColor::Luminance)
            .then(|| self.model().convention().display_weights(luma_weights));
        let options = RunOptions { scales: Some(1), size: Some(w.max(h)), ..later };
        let start = FrameStart {
            start: warped.shallow_clone(),
            temporal: Some(TemporalTarget { warped, mask, weight: frame.temporal_weight, channels }),
        };
        let output = self.run_from(content, styles, &options, Some(start), weights, progress)?;
        Ok(FrameOutput { output, frame: FrameReport { temporal: Temporal::Flow, flow_seconds, reliable } })
    }
}
