//! Empty: this crate only exists to fetch openfx-sys.
