//! The one error type of the core, and the `Result` alias used everywhere.

use std::path::PathBuf;

/// Everything that can go wrong in the core. Messages are complete sentences
/// meant for a user: the CLI prints them as they are and the C API stores them
/// as the handle's last error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied value is out of range or inconsistent.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument, as the caller knows it (e.g. `style_weight`).
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The model file is missing, unreadable or not a usable VGG19.
    #[error("model {path}: {reason}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image could not be read, decoded or written.
    #[error("image {path}: {reason}")]
    Image {
        /// The image file (empty for in-memory images).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A style pack is unreadable, corrupt, or made for another model or version.
    #[error("style pack {path}: {reason}")]
    Pack {
        /// The pack file (empty for in-memory data).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A network file is unreadable, corrupt, or of another version or shape.
    #[error("network {path}: {reason}")]
    Network {
        /// The network file (empty for in-memory data).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The requested device does not exist or cannot be used.
    #[error("device: {0}")]
    Device(String),
    /// The work does not fit in the memory available.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// The progress callback asked to stop.
    #[error("cancelled")]
    Cancelled,
    /// An operating-system I/O error outside image and model files.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(String),
    /// The libtorch runtime loaded is not the one this code was built for.
    #[error("libtorch runtime: {0}")]
    Runtime(String),
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tch::TchError> for Error {
    fn from(err: tch::TchError) -> Self {
        let text = err.to_string();
        // libtorch's allocators say "out of memory" (CUDA) or "DefaultCPUAllocator: can't allocate".
        let lower = text.to_ascii_lowercase();
        if lower.contains("out of memory") || lower.contains("can't allocate") {
            // The first line is enough; libtorch appends a long backtrace.
            let first = text.lines().next().unwrap_or("").to_string();
            return Error::OutOfMemory(first);
        }
        let first = text.lines().next().unwrap_or("").to_string();
        Error::Torch(first)
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { name, reason: reason.into() }
    }
}
