//! What the engine needs from CUDA beyond `tch`: CUDA graphs (a sequence of
//! libtorch calls captured once and replayed with a single launch) and the
//! caching allocator's statistics. Both come from `csrc/cuda_shim.cpp`,
//! compiled when the libtorch in use has CUDA and its C++ headers; without
//! it every function here reports that CUDA graphs are unavailable and the
//! statistics are `None`.

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

/// Peak resident memory of this process in bytes (`VmHWM`, and the peaks
/// [`trace_memory`] saw before it reset that), on Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    let (_, peak) = rss_now_and_peak()?;
    Some(peak.max(TRACED_PEAK.load(std::sync::atomic::Ordering::Relaxed)))
}

/// The largest peak [`trace_memory`] has read.
static TRACED_PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Resident memory of this process now (`VmRSS`) and at its peak since the
/// last reset (`VmHWM`), bytes, on Linux.
fn rss_now_and_peak() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// With `ST_TRACE_MEMORY=1` in the environment, prints to standard error
/// the resident memory now and the peak since the previous trace point,
/// labelled `phase`, then starts the peak afresh (Linux `clear_refs`), so
/// each line gives the peak of the phase that ended there. Without it, or
/// off Linux, nothing. A diagnostic for the memory planner.
pub fn trace_memory(phase: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ON.get_or_init(|| std::env::var_os("ST_TRACE_MEMORY").is_some_and(|v| v != "0")) {
        return;
    }
    if let Some((now, peak)) = rss_now_and_peak() {
        TRACED_PEAK.fetch_max(peak, std::sync::atomic::Ordering::Relaxed);
        eprintln!("memory: {phase}: rss {} MiB, peak since last {} MiB", now >> 20, peak >> 20);
        // Resets VmHWM to the current RSS; the overall peak reported by
        // `peak_rss_bytes` is then the largest of the traced peaks.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}

/// Returns the free pages of the C heap to the system (glibc's
/// `malloc_trim`; elsewhere nothing). libtorch's CPU tensors come from
/// `malloc`: blocks under glibc's mmap threshold (which grows up to 32 MiB
/// as large blocks are freed) stay resident after they are freed, so after
/// a tile's evaluations the process holds their peak until it exits.
pub fn release_host_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: plain call, no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}
