//! Where runs go and in which precision: the device choice, the CPU's
//! bfloat16 detection (with its override), the precisions and bf16 kernels,
//! and the precision a run gets when none is asked for.

use tch::{Device, Kind};

use crate::error::{Error, Result};

/// Where the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first CUDA device when there is one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "cpu" => Some(Self::Cpu),
            "cuda" | "gpu" => Some(Self::Cuda(0)),
            _ => name.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(Self::Cuda),
        }
    }

    /// Resolves to a libtorch device, checking that it exists. First checks
    /// the libtorch runtime and loads its CUDA part ([`crate::runtime::check`]).
    pub fn resolve(self) -> Result<Device> {
        crate::runtime::check()?;
        match self {
            Self::Auto => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(index) => {
                if !tch::Cuda::is_available() {
                    let why = match &crate::runtime::cuda_part().libtorch_cuda {
                        Ok(_) => "no CUDA device is available".to_string(),
                        Err(reason) => reason.clone(),
                    };
                    return Err(Error::Device(format!("CUDA was requested but {why}")));
                }
                let count = tch::Cuda::device_count() as usize;
                if index >= count {
                    return Err(Error::Device(format!("cuda:{index} requested but only {count} CUDA device(s) exist")));
                }
                Ok(Device::Cuda(index))
            }
        }
    }
}

/// A device's name as reports print it (`cpu`, `cuda:0`).
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Arithmetic precision of the network's convolutions. Gram matrices and
/// losses are always accumulated in fp32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Everything in fp32.
    Fp32,
    /// Convolutions in bfloat16 (the first one in fp32), accumulating in
    /// fp32. On a CPU without native bfloat16 the same arithmetic is
    /// emulated (see [`Bf16Kernels`]).
    Bf16,
    /// Convolutions in fp16 (the first one in fp32), the network run on activations scaled by 1/256
    /// (exactly, as ReLU networks are positively homogeneous) against
    /// overflow, and backward passes with their gradients scaled to fit.
    Fp16,
}

impl Precision {
    /// The tensor kind convolutions run in.
    pub fn kind(self) -> Kind {
        match self {
            Self::Fp32 => Kind::Float,
            Self::Bf16 => Kind::BFloat16,
            Self::Fp16 => Kind::Half,
        }
    }

    /// The smallest pixel change, display units (0..1), whose effect on the
    /// input gradient stands clearly above this precision's rounding noise:
    /// measured at 64², 100 evaluations into a run, gradient differences
    /// across a bf16 step moving no pixel by more than 1/255 were 8-18 %
    /// rounding error, across 1/2550 78-94 % (fp16 carries 3 bits more).
    /// L-BFGS keeps no curvature pair from a shorter step.
    pub fn resolution(self) -> f64 {
        match self {
            Self::Fp32 => 0.0,
            Self::Bf16 => 2e-3,
            Self::Fp16 => 2.5e-4,
        }
    }

    /// How far the loss of one evaluation may stray from the exact one by
    /// rounding alone, relative to the loss (0 for fp32). Measured at 64²,
    /// reference normalisation, along a descent direction: bf16 loss
    /// differences across steps of 0.01-0.1 Caffe units were off by
    /// 3-10·10⁻⁴ of the loss.
    pub fn loss_noise(self) -> f64 {
        match self {
            Self::Fp32 => 0.0,
            Self::Bf16 => 1e-3,
            Self::Fp16 => 1.25e-4,
        }
    }

    /// Parses `fp32`, `bf16` or `fp16`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "fp32" => Some(Self::Fp32),
            "bf16" => Some(Self::Bf16),
            "fp16" => Some(Self::Fp16),
            _ => None,
        }
    }

    /// The name `from_name` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
        }
    }
}

/// True when this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), as
/// `/proc/cpuinfo` says, unless `ST_CPU_BF16=0` or `ST_CPU_BF16=1` in the
/// environment says otherwise (so that tests cover both answers on any
/// machine). Read once per process.
pub fn cpu_has_bf16() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| match std::env::var("ST_CPU_BF16").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::fs::read_to_string("/proc/cpuinfo")
            .map(|info| {
                info.lines()
                    .find(|l| l.starts_with("flags"))
                    .is_some_and(|flags| flags.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16"))
            })
            .unwrap_or(false),
    })
}

/// How bf16 convolutions are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernels {
    /// libtorch's bf16 kernels (CUDA, or a CPU with native bfloat16).
    Native,
    /// fp32 kernels on bf16 values: weights, every convolution's input and
    /// output rounded to bf16 (round to nearest even), products accumulated
    /// in fp32, which is what native bf16 convolutions compute. On a CPU
    /// without native bfloat16 this runs at fp32 speed, where libtorch's own
    /// bf16 kernels there are 4-8 times slower than fp32.
    Emulated,
}

impl Bf16Kernels {
    /// The kernels bf16 runs with on `device`: native on CUDA and on CPUs
    /// with native bfloat16 ([`cpu_has_bf16`]), else emulated.
    pub fn for_device(device: Device) -> Self {
        if device.is_cuda() || cpu_has_bf16() {
            Self::Native
        } else {
            Self::Emulated
        }
    }
}

/// The precision a run on `device` gets when none is asked for: bf16 on
/// CUDA and on CPUs with native bfloat16 ([`cpu_has_bf16`]), where it is
/// faster than fp32 and, with the first layer in fp32, fp32 targets and
/// L-BFGS's first step sized past bf16's resolution, ends within 2 % of
/// fp32's loss; fp32 elsewhere (emulated bf16 is no faster than fp32 there).
pub fn automatic_precision(device: Device) -> Precision {
    if device.is_cuda() || cpu_has_bf16() {
        Precision::Bf16
    } else {
        Precision::Fp32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!(DeviceChoice::from_name("cuda:1"), Some(DeviceChoice::Cuda(1)));
        assert_eq!(DeviceChoice::from_name("cpu"), Some(DeviceChoice::Cpu));
        assert_eq!(DeviceChoice::from_name("tpu"), None);
    }
}
