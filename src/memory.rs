//! The process's memory on the host: its peak resident size, a phase
//! trace for the memory planner, and giving freed heap pages back.

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

/// On the CPU, gives the C heap's free pages back to the system
/// ([`release_host_heap`]) between levels and tiles; on CUDA nothing, as the
/// caching allocator reuses its blocks for the next tile or level.
pub fn trim_host_heap(device: tch::Device) {
    if !device.is_cuda() {
        release_host_heap();
    }
}
