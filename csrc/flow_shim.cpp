// Optical flow for frame sequences: OpenCV's DIS optical flow (Kroeger et
// al. 2016) on two RGB frames. Built by build.rs as the shared library
// styletransfer/libstyletransfer_flow.so and loaded at run time with
// RTLD_LOCAL (src/runtime.rs), so that OpenCV and the BLAS, LAPACK and TBB
// it links never enter the process's global symbol scope beside libtorch,
// and so that the library loads where OpenCV is not installed (stills need
// no flow).
//
// Every function is plain C, never throws, and reports failures through
// st_flow_last_error() (a thread-local message).

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/core/version.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

namespace {

thread_local std::string last_error;

int fail(const char *what, const char *why) {
  last_error = std::string(what) + ": " + why;
  return -1;
}

}  // namespace

extern "C" {

// The message of this thread's last failing call; valid until the next
// failing call on this thread. Never NULL.
const char *st_flow_last_error(void) { return last_error.c_str(); }

// The OpenCV version this shim was built against ("4.6.0"). Static string.
const char *st_flow_opencv_version(void) { return CV_VERSION; }

// The dense optical flow from frame `from` to frame `to`: for each pixel
// (x, y) of `from`, the displacement (u, v) such that (x + u, y + v) in `to`
// shows the same point. Both frames are `width`×`height` interleaved 8-bit
// RGB (`width * 3` bytes per row, rows top down), converted to gray by
// OpenCV. `flow` receives `width * height * 2` floats, (u, v) per pixel,
// rows top down, in pixels. `preset` is 0 (ultrafast), 1 (fast) or
// 2 (medium), DISOpticalFlow's presets. Returns 0, or -1 with a message.
int st_flow_dis(const uint8_t *from, const uint8_t *to, int width, int height, int preset, float *flow) {
  if (!from || !to || !flow) return fail("st_flow_dis", "NULL argument");
  if (width < 1 || height < 1) return fail("st_flow_dis", "empty frame");
  if (preset < 0 || preset > 2) return fail("st_flow_dis", "unknown preset");
  try {
    // OpenCV's wrappers do not write through the const pointers.
    cv::Mat a(height, width, CV_8UC3, const_cast<uint8_t *>(from));
    cv::Mat b(height, width, CV_8UC3, const_cast<uint8_t *>(to));
    cv::Mat gray_a, gray_b;
    cv::cvtColor(a, gray_a, cv::COLOR_RGB2GRAY);
    cv::cvtColor(b, gray_b, cv::COLOR_RGB2GRAY);
    cv::Mat out(height, width, CV_32FC2, flow);
    cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(preset);
    cv::Mat computed;
    dis->calc(gray_a, gray_b, computed);
    if (computed.type() != CV_32FC2 || computed.rows != height || computed.cols != width)
      return fail("DISOpticalFlow", "unexpected result shape");
    computed.copyTo(out);
    if (out.data != reinterpret_cast<uchar *>(flow)) return fail("DISOpticalFlow", "result not written in place");
    return 0;
  } catch (const cv::Exception &e) {
    return fail("OpenCV", e.what());
  } catch (const std::exception &e) {
    return fail("DISOpticalFlow", e.what());
  } catch (...) {
    return fail("DISOpticalFlow", "unknown C++ exception");
  }
}

}  // extern "C"
