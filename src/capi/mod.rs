//! The C ABI: the only `unsafe extern "C"` code of the library.
//!
//! Every entry point checks its pointers, runs the core inside a panic
//! boundary, maps errors to an [`st_status`] and stores the message on the
//! handle ([`st_last_error`]). Nothing panics across the boundary.
//!
//! Threading, for every function taking a handle: one thread at a time per
//! handle (calls on one handle must not overlap, except the documented calls
//! from inside a progress callback); any number of handles may be used in
//! parallel from different threads. Note that libtorch's CPU thread count is
//! process-wide.
#![deny(missing_docs)]
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // each function documents its contract in the header

// Declared in the order of the header's functions, which is the order
// cbindgen reads them in; blank lines keep rustfmt from sorting them.
#[macro_use]
mod boundary;

mod types;

mod options;

mod context;

mod styles;

mod run;

mod files;

mod network;

mod pixels;

pub use boundary::{st_status_str, st_test_panic, st_version};
pub use context::*;
pub use files::*;
pub use network::*;
pub use options::*;
pub use pixels::st_convert_image;
pub use run::*;
pub use styles::*;
pub use types::*;
