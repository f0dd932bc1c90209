// The libtorch version this library was compiled against, and the version
// of the libtorch loaded at run time, which src/runtime.rs compares before
// any work is done. Built by build.rs with the `cc` crate.
//
// Nothing throws into Rust: failures are a status (0 = success).

#include <ATen/Version.h>
#include <torch/version.h>

#include <cstddef>
#include <cstring>
#include <string>

extern "C" {

// The TORCH_VERSION of the headers this file was compiled with ("2.11.0").
const char* st_torch_built_version() { return TORCH_VERSION; }

// Copies the TORCH_VERSION entry of the loaded libtorch's build settings
// (at::show_config(), from libtorch_cpu) into `buffer` (NUL-terminated).
// Returns 0, or -1 when the entry is missing, does not fit, or libtorch
// throws.
int st_torch_runtime_version(char* buffer, size_t size) {
  try {
    const std::string config = at::show_config();
    const std::string key = "TORCH_VERSION=";
    const size_t at = config.find(key);
    if (at == std::string::npos) return -1;
    const size_t start = at + key.size();
    const size_t end = config.find_first_of(", \n", start);
    const std::string version = config.substr(start, end == std::string::npos ? end : end - start);
    if (version.empty() || version.size() + 1 > size) return -1;
    std::memcpy(buffer, version.c_str(), version.size() + 1);
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
