// CUDA pieces that tch does not expose: CUDA graphs (capture a sequence of
// libtorch calls made from Rust, replay it with one launch) and the caching
// allocator's statistics. Built by build.rs with the `cc` crate against the
// headers of the libtorch in use, only when that libtorch has CUDA.
//
// Every function catches C++ exceptions and reports them through a status
// (0 = success) and st_cuda_last_error(); nothing throws into Rust.

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>

namespace {

thread_local std::string last_error;

struct Graph {
  explicit Graph(c10::DeviceIndex index) : device(index) {}
  at::cuda::CUDAGraph graph;
  c10::DeviceIndex device;
  // Makes a side stream current while capturing (capture is not allowed on
  // the legacy default stream); the tch calls made meanwhile use it.
  std::optional<c10::cuda::CUDAStreamGuard> capture_stream;
};

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}

}  // namespace

extern "C" {

const char* st_cuda_last_error() { return last_error.c_str(); }

// A new, empty graph for device `device`; NULL on failure.
void* st_cuda_graph_new(int device) {
  Graph* graph = nullptr;
  guarded([&] { graph = new Graph(static_cast<c10::DeviceIndex>(device)); });
  return graph;
}

void st_cuda_graph_free(void* graph) {
  guarded([&] { delete static_cast<Graph*>(graph); });
}

// Starts capturing the calling thread's work on the graph's device.
int st_cuda_graph_begin(void* handle) {
  auto* g = static_cast<Graph*>(handle);
  return guarded([&] {
    c10::cuda::CUDAGuard device_guard(g->device);
    // Inputs were prepared on the default stream: let them land first.
    c10::cuda::device_synchronize();
    g->capture_stream.emplace(c10::cuda::getStreamFromPool(false, g->device));
    try {
      g->graph.capture_begin();
    } catch (...) {
      g->capture_stream.reset();
      throw;
    }
  });
}

// Ends the capture started by st_cuda_graph_begin (also after a failed
// call inside the capture, which then reports the failure).
int st_cuda_graph_end(void* handle) {
  auto* g = static_cast<Graph*>(handle);
  int status = guarded([&] { g->graph.capture_end(); });
  g->capture_stream.reset();
  if (status == 0) {
    status = guarded([&] { c10::cuda::device_synchronize(); });
  }
  return status;
}

// Replays the captured work on the current stream of the graph's device.
int st_cuda_graph_replay(void* handle) {
  auto* g = static_cast<Graph*>(handle);
  return guarded([&] {
    c10::cuda::CUDAGuard device_guard(g->device);
    g->graph.replay();
  });
}

// Bytes the caching allocator has handed out (allocated) and holds from
// the driver (reserved) on `device`: now and at their peaks since the last
// reset.
int st_cuda_memory_stats(int device, uint64_t* allocated_now, uint64_t* allocated_peak, uint64_t* reserved_now,
                         uint64_t* reserved_peak) {
  return guarded([&] {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    *allocated_now = static_cast<uint64_t>(stats.allocated_bytes[all].current);
    *allocated_peak = static_cast<uint64_t>(stats.allocated_bytes[all].peak);
    *reserved_now = static_cast<uint64_t>(stats.reserved_bytes[all].current);
    *reserved_peak = static_cast<uint64_t>(stats.reserved_bytes[all].peak);
  });
}

int st_cuda_reset_peak(int device) {
  return guarded([&] { c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device)); });
}

// Returns the allocator's unused cached blocks to the driver.
int st_cuda_release_cached() {
  return guarded([&] { c10::cuda::CUDACachingAllocator::emptyCache(); });
}

}  // extern "C"
