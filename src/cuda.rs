//! What the engine needs from CUDA beyond `tch`: CUDA graphs (a sequence of
//! libtorch calls captured once and replayed with a single launch) and the
//! caching allocator's statistics, both from `csrc/cuda_shim.cpp`, compiled
//! when the libtorch in use has CUDA and its C++ headers (without it every
//! function here reports that CUDA graphs are unavailable and the
//! statistics are `None`); and a device's free memory, from the CUDA
//! runtime libtorch has loaded ([`free_bytes`]).

use crate::error::{Error, Result};

#[cfg(st_cuda_shim)]
mod ffi {
    use std::os::raw::{c_char, c_int, c_void};
    extern "C" {
        pub fn st_cuda_last_error() -> *const c_char;
        pub fn st_cuda_graph_new(device: c_int) -> *mut c_void;
        pub fn st_cuda_graph_free(graph: *mut c_void);
        pub fn st_cuda_graph_begin(graph: *mut c_void) -> c_int;
        pub fn st_cuda_graph_end(graph: *mut c_void) -> c_int;
        pub fn st_cuda_graph_replay(graph: *mut c_void) -> c_int;
        pub fn st_cuda_memory_stats(
            device: c_int,
            allocated_now: *mut u64,
            allocated_peak: *mut u64,
            reserved_now: *mut u64,
            reserved_peak: *mut u64,
        ) -> c_int;
        pub fn st_cuda_reset_peak(device: c_int) -> c_int;
        pub fn st_cuda_release_cached() -> c_int;
    }

    pub fn last_error() -> String {
        // SAFETY: the shim returns a NUL-terminated thread-local string that
        // stays valid until the next failing call on this thread.
        unsafe { std::ffi::CStr::from_ptr(st_cuda_last_error()) }.to_string_lossy().into_owned()
    }
}

/// Whether this build can capture CUDA graphs (it still needs a CUDA device).
pub fn graphs_built() -> bool {
    cfg!(st_cuda_shim)
}

/// A captured CUDA graph.
pub struct Graph {
    #[cfg(st_cuda_shim)]
    handle: *mut std::os::raw::c_void,
}

impl Graph {
    /// Runs `work` while capturing the CUDA work it issues on device
    /// `device`. Tensors `work` creates live in the graph's private memory
    /// pool and are rewritten by every [`Graph::replay`]; inputs must be
    /// tensors that exist before the capture and are refilled in place.
    /// `work` must not synchronise with the host (no reading values).
    #[cfg(st_cuda_shim)]
    pub fn capture<T>(device: usize, work: impl FnOnce() -> Result<T>) -> Result<(Self, T)> {
        let index = i32::try_from(device).map_err(|_| Error::invalid("device", "index out of range"))?;
        // SAFETY: plain constructor; NULL is handled.
        let handle = unsafe { ffi::st_cuda_graph_new(index) };
        if handle.is_null() {
            return Err(Error::Torch(format!("CUDA graph: {}", ffi::last_error())));
        }
        let graph = Self { handle };
        // SAFETY: `handle` is a live graph owned by `graph`.
        if unsafe { ffi::st_cuda_graph_begin(graph.handle) } != 0 {
            return Err(Error::Torch(format!("CUDA graph capture: {}", ffi::last_error())));
        }
        let result = work();
        // SAFETY: as above; ends the capture begun here, whatever `work` did.
        let ended = unsafe { ffi::st_cuda_graph_end(graph.handle) };
        let value = result?;
        if ended != 0 {
            return Err(Error::Torch(format!("CUDA graph capture: {}", ffi::last_error())));
        }
        Ok((graph, value))
    }

    /// Without the shim: always an error.
    #[cfg(not(st_cuda_shim))]
    pub fn capture<T>(_device: usize, _work: impl FnOnce() -> Result<T>) -> Result<(Self, T)> {
        Err(Error::Torch("CUDA graphs are not built into this library".into()))
    }

    /// Launches the captured work again on the current stream.
    pub fn replay(&self) -> Result<()> {
        #[cfg(st_cuda_shim)]
        {
            // SAFETY: `handle` is a live, captured graph.
            if unsafe { ffi::st_cuda_graph_replay(self.handle) } != 0 {
                return Err(Error::Torch(format!("CUDA graph replay: {}", ffi::last_error())));
            }
            Ok(())
        }
        #[cfg(not(st_cuda_shim))]
        Err(Error::Torch("CUDA graphs are not built into this library".into()))
    }
}

#[cfg(st_cuda_shim)]
impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: `handle` came from st_cuda_graph_new and is freed once.
        unsafe { ffi::st_cuda_graph_free(self.handle) }
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
    #[cfg(st_cuda_shim)]
    {
        let mut s = MemoryStats::default();
        // SAFETY: the four pointers are valid for writes.
        let status = unsafe {
            ffi::st_cuda_memory_stats(
                device as i32,
                &mut s.allocated,
                &mut s.allocated_peak,
                &mut s.reserved,
                &mut s.reserved_peak,
            )
        };
        (status == 0).then_some(s)
    }
    #[cfg(not(st_cuda_shim))]
    {
        let _ = device;
        None
    }
}

/// Starts the peak counters of device `device` afresh.
pub fn reset_peak(device: usize) {
    #[cfg(st_cuda_shim)]
    // SAFETY: plain call; failures only leave the peaks as they were.
    unsafe {
        ffi::st_cuda_reset_peak(device as i32);
    }
    #[cfg(not(st_cuda_shim))]
    let _ = device;
}

/// Gives the allocator's cached, unused device memory back to the driver.
pub fn release_cached() {
    #[cfg(st_cuda_shim)]
    // SAFETY: plain call.
    unsafe {
        ffi::st_cuda_release_cached();
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
