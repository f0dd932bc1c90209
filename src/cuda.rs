//! What the engine needs from CUDA beyond `tch`: CUDA graphs (a sequence of
//! libtorch calls captured once and replayed with a single launch) and the
//! caching allocator's statistics, both from the CUDA shim
//! (`csrc/cuda_shim.cpp`, loaded by [`crate::runtime`] when the runtime has
//! its CUDA part; without it every function here reports that CUDA graphs
//! are unavailable and the statistics are `None`); and a device's free
//! memory, from the CUDA runtime libtorch has loaded ([`free_bytes`]).

use crate::error::{Error, Result};
use crate::runtime::{self, Shim};

/// Whether CUDA graphs can be captured: the CUDA shim is loaded (it still
/// needs a CUDA device).
pub fn graphs_loaded() -> bool {
    runtime::shim().is_some()
}

fn shim_or_error() -> Result<&'static Shim> {
    runtime::shim().ok_or_else(|| {
        let why = match &runtime::cuda_part().shim_file {
            Ok(_) => "unknown".to_string(),
            Err(reason) => reason.clone(),
        };
        Error::Torch(format!("CUDA graphs are unavailable: {why}"))
    })
}

/// A captured CUDA graph.
pub struct Graph {
    shim: &'static Shim,
    handle: *mut std::os::raw::c_void,
}

impl Graph {
    /// Runs `work` while capturing the CUDA work it issues on device
    /// `device`. Tensors `work` creates live in the graph's private memory
    /// pool and are rewritten by every [`Graph::replay`]; inputs must be
    /// tensors that exist before the capture and are refilled in place.
    /// `work` must not synchronise with the host (no reading values).
    pub fn capture<T>(device: usize, work: impl FnOnce() -> Result<T>) -> Result<(Self, T)> {
        let shim = shim_or_error()?;
        let index = i32::try_from(device).map_err(|_| Error::invalid("device", "index out of range"))?;
        // SAFETY: plain constructor; NULL is handled.
        let handle = unsafe { (shim.graph_new)(index) };
        if handle.is_null() {
            return Err(Error::Torch(format!("CUDA graph: {}", shim.error())));
        }
        let graph = Self { shim, handle };
        // SAFETY: `handle` is a live graph owned by `graph`.
        if unsafe { (shim.graph_begin)(graph.handle) } != 0 {
            return Err(Error::Torch(format!("CUDA graph capture: {}", shim.error())));
        }
        let result = work();
        // SAFETY: as above; ends the capture begun here, whatever `work` did.
        let ended = unsafe { (shim.graph_end)(graph.handle) };
        let value = result?;
        if ended != 0 {
            return Err(Error::Torch(format!("CUDA graph capture: {}", shim.error())));
        }
        Ok((graph, value))
    }

    /// Launches the captured work again on the current stream.
    pub fn replay(&self) -> Result<()> {
        // SAFETY: `handle` is a live, captured graph.
        if unsafe { (self.shim.graph_replay)(self.handle) } != 0 {
            return Err(Error::Torch(format!("CUDA graph replay: {}", self.shim.error())));
        }
        Ok(())
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: `handle` came from graph_new and is freed once.
        unsafe { (self.shim.graph_free)(self.handle) }
    }
}

/// The caching allocator's counters on one device, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Handed out to tensors now.
    pub allocated: u64,
    /// Most handed out at once since the last [`reset_peak`].
    pub allocated_peak: u64,
    /// Held from the driver now (allocated plus cached).
    pub reserved: u64,
    /// Most held at once since the last [`reset_peak`].
    pub reserved_peak: u64,
}

/// The allocator's counters for CUDA device `device`, `None` without the shim.
pub fn memory_stats(device: usize) -> Option<MemoryStats> {
    let shim = runtime::shim()?;
    let mut s = MemoryStats::default();
    // SAFETY: the four pointers are valid for writes.
    let status = unsafe {
        (shim.memory_stats)(
            device as i32,
            &mut s.allocated,
            &mut s.allocated_peak,
            &mut s.reserved,
            &mut s.reserved_peak,
        )
    };
    (status == 0).then_some(s)
}

/// Starts the peak counters of device `device` afresh.
pub fn reset_peak(device: usize) {
    if let Some(shim) = runtime::shim() {
        // SAFETY: plain call; failures only leave the peaks as they were.
        unsafe { (shim.reset_peak)(device as i32) };
    }
}

/// Gives the allocator's cached, unused device memory back to the driver.
pub fn release_cached() {
    if let Some(shim) = runtime::shim() {
        // SAFETY: plain call.
        unsafe { (shim.release_cached)() };
    }
}

/// Free bytes of CUDA device `index`, from `cudaMemGetInfo` in the CUDA
/// runtime libtorch has loaded (looked up at run time; `None` without it).
pub fn free_bytes(index: usize) -> Option<u64> {
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
    type GetDevice = unsafe extern "C" fn(*mut i32) -> i32;
    type SetDevice = unsafe extern "C" fn(i32) -> i32;
    // SAFETY: dlsym on the global namespace with NUL-terminated names; the
    // symbols, when present, are the CUDA runtime's functions of these
    // signatures (cudaError_t is a C enum, an int).
    unsafe {
        let lookup = |name: &[u8]| libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast());
        let (info, get, set) = (lookup(b"cudaMemGetInfo\0"), lookup(b"cudaGetDevice\0"), lookup(b"cudaSetDevice\0"));
        if info.is_null() || get.is_null() || set.is_null() {
            return None;
        }
        let info = std::mem::transmute::<*mut libc::c_void, MemGetInfo>(info);
        let get = std::mem::transmute::<*mut libc::c_void, GetDevice>(get);
        let set = std::mem::transmute::<*mut libc::c_void, SetDevice>(set);
        let mut previous = 0i32;
        if get(&mut previous) != 0 || set(index as i32) != 0 {
            return None;
        }
        let (mut free, mut total) = (0usize, 0usize);
        let status = info(&mut free, &mut total);
        set(previous);
        (status == 0).then_some(free as u64)
    }
}
