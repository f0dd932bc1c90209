// A small OpenFX host for tests, built on the OpenFX SDK's HostSupport
// library (fetched at build time, not kept in this repository). It finds
// plug-in bundles through OFX_PLUGIN_PATH as a real host does, loads PNG
// frames into the Source, Style and Mask clips at a chosen pixel depth,
// sets parameters, renders frames at a render scale and writes PNGs.
//
// usage: ofx_test_host --plugin ID --source a.png[,b.png...] --out out%d.png
//          [--style-clip s.png] [--mask m.png] [--context filter|general]
//          [--depth byte|short|float] [--components RGBA|RGB|Alpha] [--premult]
//          [--scale S] [--frames 0,1] [--window x1,y1,x2,y2]
//          [--param name=value]... [--abort-after N] [--render-again]
//
// Prints one line per render: "render frame=F status=S" and every message
// the plug-in posts ("message type=... text=..."). Exits 0 when it could run
// the renders (whatever their status), 2 on a usage or set-up error.
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <png.h>

#include "ofxCore.h"
#include "ofxImageEffect.h"
#include "ofxPixels.h"
// HostSupport's headers need this order.
#include "ofxhBinary.h"
#include "ofxhPropertySuite.h"
#include "ofxhClip.h"
#include "ofxhParam.h"
#include "ofxhMemory.h"
#include "ofxhImageEffect.h"
#include "ofxhPluginAPICache.h"
#include "ofxhPluginCache.h"
#include "ofxhHost.h"
#include "ofxhImageEffectAPI.h"

namespace test_host {

// ---------- options and pictures ----------

struct Options {
  std::string plugin, context = kOfxImageEffectContextFilter, out, style_clip, mask;
  std::vector<std::string> sources;
  std::string depth = kOfxBitDepthByte, components = kOfxImageComponentRGBA;
  bool premult = false, render_again = false;
  double scale = 1.0;
  std::vector<int> frames{0};
  bool has_window = false;
  OfxRectI window{0, 0, 0, 0};
  std::map<std::string, std::string> params;
  int abort_after = -1;
};

Options gOptions;

struct Picture {  // RGBA 8-bit, top row first
  int width = 0, height = 0;
  std::vector<unsigned char> rgba;
};

bool read_png(const std::string &path, Picture &out) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    std::fprintf(stderr, "cannot read %s: %s\n", path.c_str(), image.message);
    return false;
  }
  image.format = PNG_FORMAT_RGBA;
  out.width = image.width;
  out.height = image.height;
  out.rgba.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgba.data(), 0, nullptr)) {
    std::fprintf(stderr, "cannot decode %s: %s\n", path.c_str(), image.message);
    return false;
  }
  return true;
}

bool write_png(const std::string &path, const Picture &picture) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = picture.width;
  image.height = picture.height;
  image.format = PNG_FORMAT_RGBA;
  return png_image_write_to_file(&image, path.c_str(), 0, picture.rgba.data(), 0, nullptr) != 0;
}

// Box-filter a picture down by the render scale (1 or 1/2, 1/4 ...).
Picture scaled(const Picture &in, double scale) {
  if (scale >= 1.0) return in;
  int factor = (int)std::lround(1.0 / scale);
  Picture out;
  out.width = in.width / factor;
  out.height = in.height / factor;
  out.rgba.assign((size_t)out.width * out.height * 4, 0);
  for (int y = 0; y < out.height; y++)
    for (int x = 0; x < out.width; x++)
      for (int c = 0; c < 4; c++) {
        int sum = 0;
        for (int dy = 0; dy < factor; dy++)
          for (int dx = 0; dx < factor; dx++)
            sum += in.rgba[((size_t)(y * factor + dy) * in.width + x * factor + dx) * 4 + c];
        out.rgba[((size_t)y * out.width + x) * 4 + c] = (unsigned char)((sum + factor * factor / 2) / (factor * factor));
      }
  return out;
}

// Bytes per sample; 0 for a depth this host cannot store (it then stores
// bytes, labelled with the depth asked for).
int bytes_of(const std::string &depth) {
  return depth == kOfxBitDepthByte ? 1 : depth == kOfxBitDepthShort ? 2 : depth == kOfxBitDepthFloat ? 4 : 0;
}

// Channels; 0 for components this host cannot store (stored as RGBA).
int channels_of(const std::string &components) {
  return components == kOfxImageComponentRGBA ? 4 : components == kOfxImageComponentRGB ? 3
       : components == kOfxImageComponentAlpha ? 1 : 0;
}

// ---------- images ----------

class TestImage : public OFX::Host::ImageEffect::Image {
 public:
  // An image of `picture` (top row first) in `depth`/`components`, bottom-up as OFX wants.
  TestImage(OFX::Host::ImageEffect::ClipInstance &clip, const Picture &picture, const std::string &depth,
            const std::string &components, bool premult, double scale)
      : OFX::Host::ImageEffect::Image(clip) {
    width_ = picture.width;
    height_ = picture.height;
    bytes_ = bytes_of(depth) ? bytes_of(depth) : 1;
    channels_ = channels_of(components) ? channels_of(components) : 4;
    data_.assign((size_t)width_ * height_ * channels_ * bytes_, 0);
    for (int row = 0; row < height_; row++) {
      int y = height_ - 1 - row;
      for (int x = 0; x < width_; x++) {
        const unsigned char *p = &picture.rgba[((size_t)row * width_ + x) * 4];
        float alpha = p[3] / 255.0f;
        for (int c = 0; c < channels_; c++) {
          int source = channels_ == 1 ? 3 : c;
          float v = p[source] / 255.0f;
          if (premult && channels_ == 4 && c < 3) v *= alpha;
          store(x, y, c, v);
        }
      }
    }
    setDoubleProperty(kOfxImageEffectPropRenderScale, scale, 0);
    setDoubleProperty(kOfxImageEffectPropRenderScale, scale, 1);
    setPointerProperty(kOfxImagePropData, data_.data());
    int bounds[4] = {0, 0, width_, height_};
    for (int i = 0; i < 4; i++) {
      setIntProperty(kOfxImagePropBounds, bounds[i], i);
      setIntProperty(kOfxImagePropRegionOfDefinition, bounds[i], i);
    }
    setIntProperty(kOfxImagePropRowBytes, width_ * channels_ * bytes_);
    setStringProperty(kOfxImageEffectPropPixelDepth, depth);
    setStringProperty(kOfxImageEffectPropComponents, components);
    setStringProperty(kOfxImageEffectPropPreMultiplication,
                      premult ? kOfxImagePreMultiplied : kOfxImageUnPreMultiplied);
  }

  float load(int x, int y, int c) const {
    const unsigned char *p = &data_[(((size_t)y * width_ + x) * channels_ + c) * bytes_];
    if (bytes_ == 1) return *p / 255.0f;
    if (bytes_ == 2) { uint16_t v; std::memcpy(&v, p, 2); return v / 65535.0f; }
    float v; std::memcpy(&v, p, 4); return v;
  }

  void store(int x, int y, int c, float v) {
    unsigned char *p = &data_[(((size_t)y * width_ + x) * channels_ + c) * bytes_];
    float clamped = std::fmin(std::fmax(v, 0.0f), 1.0f);
    if (bytes_ == 1) *p = (unsigned char)std::lround(clamped * 255.0f);
    else if (bytes_ == 2) { uint16_t s = (uint16_t)std::lround(clamped * 65535.0f); std::memcpy(p, &s, 2); }
    else std::memcpy(p, &v, 4);
  }

  // Back to an RGBA 8-bit picture, top row first, unpremultiplied.
  Picture picture(bool premult) const {
    Picture out;
    out.width = width_;
    out.height = height_;
    out.rgba.resize((size_t)width_ * height_ * 4);
    for (int row = 0; row < height_; row++) {
      int y = height_ - 1 - row;
      for (int x = 0; x < width_; x++) {
        float a = channels_ == 4 ? load(x, y, 3) : 1.0f;
        for (int c = 0; c < 4; c++) {
          float v = c == 3 ? a : channels_ == 1 ? 0.0f : load(x, y, c);
          if (c < 3 && premult && channels_ == 4 && a > 0) v /= a;
          out.rgba[((size_t)row * width_ + x) * 4 + c] =
              (unsigned char)std::lround(std::fmin(std::fmax(v, 0.0f), 1.0f) * 255.0f);
        }
      }
    }
    return out;
  }

 private:
  int width_ = 0, height_ = 0, bytes_ = 1, channels_ = 4;
  std::vector<unsigned char> data_;
};

// ---------- clips ----------

class TestEffect;

class TestClip : public OFX::Host::ImageEffect::ClipInstance {
 public:
  TestClip(OFX::Host::ImageEffect::Instance *effect, OFX::Host::ImageEffect::ClipDescriptor *desc)
      : OFX::Host::ImageEffect::ClipInstance(effect, *desc), effect_(effect) {
    name_ = desc->getName();
    const Options &o = gOptions;
    if (name_ == kOfxImageEffectSimpleSourceClipName) paths_ = o.sources;
    if (name_ == "Style" && !o.style_clip.empty()) paths_ = {o.style_clip};
    if (name_ == "Mask" && !o.mask.empty()) paths_ = {o.mask};
    for (const std::string &path : paths_) {
      Picture picture;
      if (!read_png(path, picture)) std::exit(2);
      frames_.push_back(picture);
    }
  }
  ~TestClip() override { release_output(); }

  const std::string &getUnmappedBitDepth() const override { return gOptions.depth; }
  const std::string &getUnmappedComponents() const override {
    static const std::string alpha = kOfxImageComponentAlpha;
    return name_ == "Mask" ? alpha : gOptions.components;
  }
  const std::string &getPremult() const override {
    static const std::string pre = kOfxImagePreMultiplied, un = kOfxImageUnPreMultiplied;
    return gOptions.premult ? pre : un;
  }
  double getAspectRatio() const override { return 1.0; }
  double getFrameRate() const override { return 25.0; }
  void getFrameRange(double &start, double &end) const override { start = 0; end = (double)frames_.size() - 1; }
  const std::string &getFieldOrder() const override {
    static const std::string none = kOfxImageFieldNone;
    return none;
  }
  bool getConnected() const override { return isOutput() || !frames_.empty(); }
  double getUnmappedFrameRate() const override { return 25.0; }
  void getUnmappedFrameRange(double &start, double &end) const override { getFrameRange(start, end); }
  bool getContinuousSamples() const override { return false; }

  const Picture &frame(OfxTime time) const {
    size_t index = std::min((size_t)std::max(0.0, time), frames_.size() - 1);
    return frames_[index];
  }

  OfxRectD getRegionOfDefinition(OfxTime time) const override {
    if (!getConnected()) return OfxRectD{0, 0, 0, 0};
    const Picture &p = isOutput() ? source_size(time) : frame(time);
    OfxRectD rod = {0, 0, (double)p.width, (double)p.height};
    return rod;
  }

  OFX::Host::ImageEffect::Image *getImage(OfxTime time, const OfxRectD *) override;

  TestImage *output() { return output_; }
  void release_output() {
    if (output_) output_->releaseReference();
    output_ = nullptr;
  }

 private:
  const Picture &source_size(OfxTime time) const;
  OFX::Host::ImageEffect::Instance *effect_;
  std::string name_;
  std::vector<std::string> paths_;
  std::vector<Picture> frames_;
  TestImage *output_ = nullptr;
};

// ---------- parameters: values from --param, else defaults ----------

template <class Base, class Value>
class TestParam : public Base {
 public:
  TestParam(OFX::Host::Param::Descriptor &descriptor, OFX::Host::Param::SetInstance *set, Value initial)
      : Base(descriptor, set), value_(initial) {}
  OfxStatus get(Value &v) override { v = value_; return kOfxStatOK; }
  OfxStatus get(OfxTime, Value &v) override { v = value_; return kOfxStatOK; }
  OfxStatus set(Value v) override { value_ = v; return kOfxStatOK; }
  OfxStatus set(OfxTime, Value v) override { value_ = v; return kOfxStatOK; }

 protected:
  Value value_;
};

class TestDouble : public TestParam<OFX::Host::Param::DoubleInstance, double> {
 public:
  using TestParam::TestParam;
  OfxStatus derive(OfxTime, double &v) override { v = 0; return kOfxStatOK; }
  OfxStatus integrate(OfxTime t1, OfxTime t2, double &v) override { v = value_ * (t2 - t1); return kOfxStatOK; }
};

class TestString : public OFX::Host::Param::StringInstance {
 public:
  TestString(OFX::Host::Param::Descriptor &descriptor, OFX::Host::Param::SetInstance *set, std::string initial)
      : OFX::Host::Param::StringInstance(descriptor, set), value_(std::move(initial)) {}
  OfxStatus get(std::string &v) override { v = value_; return kOfxStatOK; }
  OfxStatus get(OfxTime, std::string &v) override { v = value_; return kOfxStatOK; }
  OfxStatus set(const char *v) override { value_ = v; return kOfxStatOK; }
  OfxStatus set(OfxTime, const char *v) override { value_ = v; return kOfxStatOK; }

 private:
  std::string value_;
};

// ---------- the effect instance ----------

class TestEffect : public OFX::Host::ImageEffect::Instance {
 public:
  TestEffect(OFX::Host::ImageEffect::ImageEffectPlugin *plugin, OFX::Host::ImageEffect::Descriptor &desc,
             const std::string &context)
      : OFX::Host::ImageEffect::Instance(plugin, desc, context, false) {}

  const std::string &getDefaultOutputFielding() const override {
    static const std::string none = kOfxImageFieldNone;
    return none;
  }
  OFX::Host::ImageEffect::ClipInstance *newClipInstance(OFX::Host::ImageEffect::Instance *plugin,
                                                        OFX::Host::ImageEffect::ClipDescriptor *descriptor,
                                                        int) override {
    return new TestClip(plugin, descriptor);
  }
  OfxStatus vmessage(const char *type, const char *, const char *format, va_list args) override {
    char text[2048];
    std::vsnprintf(text, sizeof text, format, args);
    std::printf("message type=%s text=%s\n", type, text);
    std::fflush(stdout);
    return kOfxStatOK;
  }
  OfxStatus setPersistentMessage(const char *type, const char *id, const char *format, va_list args) override {
    std::printf("persistent ");
    return vmessage(type, id, format, args);
  }
  OfxStatus clearPersistentMessage() override {
    std::printf("message cleared\n");
    return kOfxStatOK;
  }
  void getProjectSize(double &x, double &y) const override { project(x, y); }
  void getProjectOffset(double &x, double &y) const override { x = y = 0; }
  void getProjectExtent(double &x, double &y) const override { project(x, y); }
  double getProjectPixelAspectRatio() const override { return 1.0; }
  double getEffectDuration() const override { return (double)gOptions.sources.size(); }
  double getFrameRate() const override { return 25.0; }
  double getFrameRecursive() const override { return 0.0; }
  void getRenderScaleRecursive(double &x, double &y) const override { x = y = gOptions.scale; }

  OFX::Host::Param::Instance *newParam(const std::string &name, OFX::Host::Param::Descriptor &d) override {
    const std::string &type = d.getType();
    auto given = gOptions.params.find(name);
    bool set = given != gOptions.params.end();
    const OFX::Host::Property::Set &p = d.getProperties();
    if (type == kOfxParamTypeInteger)
      return new TestParam<OFX::Host::Param::IntegerInstance, int>(d, this, set ? std::atoi(given->second.c_str()) : p.getIntProperty(kOfxParamPropDefault));
    if (type == kOfxParamTypeChoice)
      return new TestParam<OFX::Host::Param::ChoiceInstance, int>(d, this, set ? std::atoi(given->second.c_str()) : p.getIntProperty(kOfxParamPropDefault));
    if (type == kOfxParamTypeBoolean)
      return new TestParam<OFX::Host::Param::BooleanInstance, bool>(d, this, set ? std::atoi(given->second.c_str()) != 0 : p.getIntProperty(kOfxParamPropDefault) != 0);
    if (type == kOfxParamTypeDouble)
      return new TestDouble(d, this, set ? std::atof(given->second.c_str()) : p.getDoubleProperty(kOfxParamPropDefault));
    if (type == kOfxParamTypeString)
      return new TestString(d, this, set ? given->second : p.getStringProperty(kOfxParamPropDefault));
    if (type == kOfxParamTypeGroup) return new OFX::Host::Param::GroupInstance(d, this);
    if (type == kOfxParamTypePage) return new OFX::Host::Param::PageInstance(d, this);
    return nullptr;
  }
  OfxStatus editBegin(const std::string &) override { return kOfxStatOK; }
  OfxStatus editEnd() override { return kOfxStatOK; }
  void progressStart(const std::string &, const std::string &) override { progress_calls_ = 0; }
  void progressEnd() override { std::printf("progress updates=%d\n", progress_calls_); }
  bool progressUpdate(double) override { progress_calls_++; return true; }
  double timeLineGetTime() override { return 0.0; }
  void timeLineGotoTime(double) override {}
  void timeLineGetBounds(double &t1, double &t2) override { t1 = 0; t2 = (double)gOptions.sources.size() - 1; }

  // The host's abort: true after --abort-after polls (when set).
  int abort() override {
    abort_polls_++;
    return gOptions.abort_after >= 0 && abort_polls_ > gOptions.abort_after;
  }
  void reset_abort() { abort_polls_ = 0; }
  int abort_polls() const { return abort_polls_; }

 private:
  void project(double &x, double &y) const {
    Picture p;
    read_png(gOptions.sources.front(), p);
    x = p.width;
    y = p.height;
  }
  int progress_calls_ = 0;
  int abort_polls_ = 0;
};

const Picture &TestClip::source_size(OfxTime time) const {
  return static_cast<TestClip *>(effect_->getClip(kOfxImageEffectSimpleSourceClipName))->frame(time);
}

OFX::Host::ImageEffect::Image *TestClip::getImage(OfxTime time, const OfxRectD *) {
  double scale = gOptions.scale;
  if (isOutput()) {
    release_output();
    Picture blank = scaled(source_size(time), scale);
    std::fill(blank.rgba.begin(), blank.rgba.end(), 0);
    output_ = new TestImage(*this, blank, getPixelDepth(), getComponents(), getPremult() == kOfxImagePreMultiplied, scale);
    output_->addReference();  // one for us, one for the plug-in
    return output_;
  }
  if (frames_.empty()) return nullptr;
  // A depth or components the plug-in did not declare (--depth half,
  // --components YUVA) is handed over as asked, as a careless host would.
  const std::string &depth = bytes_of(gOptions.depth) ? getPixelDepth() : gOptions.depth;
  const std::string &components =
      channels_of(gOptions.components) && name_ != "Mask" ? getComponents() : getUnmappedComponents();
  return new TestImage(*this, scaled(frame(time), scale), depth, components,
                       getPremult() == kOfxImagePreMultiplied, scale);
}

// ---------- the host ----------

class TestHost : public OFX::Host::ImageEffect::Host {
 public:
  TestHost() {
    _properties.setStringProperty(kOfxPropName, "org.styletransfer.TestHost");
    _properties.setStringProperty(kOfxPropLabel, "styletransfer OFX test host");
    _properties.setIntProperty(kOfxImageEffectHostPropIsBackground, 1);
    _properties.setIntProperty(kOfxImageEffectPropSupportsOverlays, 0);
    _properties.setIntProperty(kOfxImageEffectPropSupportsMultiResolution, 1);
    _properties.setIntProperty(kOfxImageEffectPropSupportsTiles, 0);
    _properties.setIntProperty(kOfxImageEffectPropTemporalClipAccess, 1);
    _properties.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentRGBA, 0);
    _properties.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentRGB, 1);
    _properties.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentAlpha, 2);
    _properties.setStringProperty(kOfxImageEffectPropSupportedContexts, kOfxImageEffectContextFilter, 0);
    _properties.setStringProperty(kOfxImageEffectPropSupportedContexts, kOfxImageEffectContextGeneral, 1);
    _properties.setIntProperty(kOfxImageEffectPropSupportsMultipleClipDepths, 0);
    _properties.setIntProperty(kOfxImageEffectPropSupportsMultipleClipPARs, 0);
    _properties.setIntProperty(kOfxParamHostPropMaxParameters, -1);
    _properties.setIntProperty(kOfxParamHostPropMaxPages, 0);
  }
  OFX::Host::ImageEffect::Instance *newInstance(void *, OFX::Host::ImageEffect::ImageEffectPlugin *plugin,
                                                OFX::Host::ImageEffect::Descriptor &desc,
                                                const std::string &context) override {
    return new TestEffect(plugin, desc, context);
  }
  OFX::Host::ImageEffect::Descriptor *makeDescriptor(OFX::Host::ImageEffect::ImageEffectPlugin *plugin) override {
    return new OFX::Host::ImageEffect::Descriptor(plugin);
  }
  OFX::Host::ImageEffect::Descriptor *makeDescriptor(const OFX::Host::ImageEffect::Descriptor &root,
                                                     OFX::Host::ImageEffect::ImageEffectPlugin *plugin) override {
    return new OFX::Host::ImageEffect::Descriptor(root, plugin);
  }
  OFX::Host::ImageEffect::Descriptor *makeDescriptor(const std::string &bundle,
                                                     OFX::Host::ImageEffect::ImageEffectPlugin *plugin) override {
    return new OFX::Host::ImageEffect::Descriptor(bundle, plugin);
  }
  OfxStatus vmessage(const char *type, const char *, const char *format, va_list args) override {
    char text[2048];
    std::vsnprintf(text, sizeof text, format, args);
    std::printf("host-message type=%s text=%s\n", type, text);
    return kOfxStatOK;
  }
  OfxStatus setPersistentMessage(const char *type, const char *id, const char *format, va_list args) override {
    return vmessage(type, id, format, args);
  }
  OfxStatus clearPersistentMessage() override { return kOfxStatOK; }
  // HostSupport is built without OFX_SUPPORTS_MULTITHREAD and _OPENGLRENDER:
  // no multithread or OpenGL suites are offered.
};

std::vector<std::string> split(const std::string &text, char by) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, by)) parts.push_back(part);
  return parts;
}

int usage(const char *why) {
  std::fprintf(stderr, "ofx_test_host: %s\n", why);
  return 2;
}

}  // namespace test_host

using namespace test_host;

int main(int argc, char **argv) {
  Options &o = gOptions;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--plugin") o.plugin = next();
    else if (a == "--context") o.context = next() == "general" ? kOfxImageEffectContextGeneral : kOfxImageEffectContextFilter;
    else if (a == "--source") o.sources = split(next(), ',');
    else if (a == "--style-clip") o.style_clip = next();
    else if (a == "--mask") o.mask = next();
    else if (a == "--out") o.out = next();
    else if (a == "--depth") { std::string d = next(); o.depth = d == "float" ? kOfxBitDepthFloat : d == "short" ? kOfxBitDepthShort : d == "byte" ? kOfxBitDepthByte : "OfxBitDepthHalf"; }
    else if (a == "--components") { std::string c = next(); o.components = c == "RGB" ? kOfxImageComponentRGB : c == "Alpha" ? kOfxImageComponentAlpha : c == "RGBA" ? kOfxImageComponentRGBA : "OfxImageComponentYUVA"; }
    else if (a == "--premult") o.premult = true;
    else if (a == "--scale") o.scale = std::atof(next().c_str());
    else if (a == "--frames") { o.frames.clear(); for (auto &f : split(next(), ',')) o.frames.push_back(std::atoi(f.c_str())); }
    else if (a == "--window") { auto v = split(next(), ','); if (v.size() != 4) return usage("--window takes x1,y1,x2,y2"); o.has_window = true; o.window = {std::atoi(v[0].c_str()), std::atoi(v[1].c_str()), std::atoi(v[2].c_str()), std::atoi(v[3].c_str())}; }
    else if (a == "--param") { std::string kv = next(); size_t eq = kv.find('='); if (eq == std::string::npos) return usage("--param takes name=value"); o.params[kv.substr(0, eq)] = kv.substr(eq + 1); }
    else if (a == "--abort-after") o.abort_after = std::atoi(next().c_str());
    else if (a == "--render-again") o.render_again = true;
    else return usage(("unknown argument " + a).c_str());
  }
  if (o.plugin.empty() || o.sources.empty() || o.out.empty()) return usage("--plugin, --source and --out are required");

  OFX::Host::PluginCache::getPluginCache()->setCacheVersion("styletransferTestHostV1");
  TestHost host;
  OFX::Host::ImageEffect::PluginCache cache(host);
  cache.registerInCache(*OFX::Host::PluginCache::getPluginCache());
  OFX::Host::PluginCache::getPluginCache()->scanPluginFiles();  // OFX_PLUGIN_PATH, then the default folders
  OFX::Host::ImageEffect::ImageEffectPlugin *plugin = cache.getPluginById(o.plugin);
  if (!plugin) return usage(("plug-in " + o.plugin + " not found (is OFX_PLUGIN_PATH set?)").c_str());

  int code = 0;
  {
    std::unique_ptr<OFX::Host::ImageEffect::Instance> instance(plugin->createInstance(o.context, nullptr));
    if (!instance) return usage("cannot create an instance in that context");
    TestEffect *effect = static_cast<TestEffect *>(instance.get());
    OfxStatus stat = instance->createInstanceAction();
    if (stat != kOfxStatOK && stat != kOfxStatReplyDefault) return usage("createInstance failed");
    if (!instance->getClipPreferences()) return usage("clip preferences failed");
    OfxPointD scale = {o.scale, o.scale};
    TestClip *output = static_cast<TestClip *>(instance->getClip(kOfxImageEffectOutputClipName));
    auto render_frames = [&](const char *pass) {
      for (int frame : o.frames) {
        OfxRectI window;
        if (o.has_window) {
          window = o.window;
        } else {
          OfxRectD rod = output->getRegionOfDefinition(frame);
          window = {0, 0, (int)std::lround(rod.x2 * o.scale), (int)std::lround(rod.y2 * o.scale)};
        }
        OfxRectD roi = {0, 0, (double)window.x2 / o.scale, (double)window.y2 / o.scale};
        std::map<OFX::Host::ImageEffect::ClipInstance *, OfxRectD> rois;
        instance->getRegionOfInterestAction(frame, scale, roi, rois);
        effect->reset_abort();
        instance->beginRenderAction(frame, frame, 1.0, false, scale, true, false);
        stat = instance->renderAction(frame, kOfxImageFieldNone, window, scale, true, false, false);
        instance->endRenderAction(frame, frame, 1.0, false, scale, true, false);
        std::printf("render pass=%s frame=%d status=%d abort_polls=%d\n", pass, frame, stat, effect->abort_polls());
        std::fflush(stdout);
        if (stat == kOfxStatOK && output->output()) {
          char path[4096];
          std::snprintf(path, sizeof path, o.out.c_str(), frame);
          std::string file = path;
          if (std::string(pass) == "again") file = file.substr(0, file.size() - 4) + "-again.png";
          if (!write_png(file, output->output()->picture(o.premult))) code = 2;
        }
        output->release_output();
      }
    };
    render_frames("first");
    if (o.render_again) {
      o.abort_after = -1;
      render_frames("again");
    }
  }
  OFX::Host::PluginCache::clearPluginCache();
  return code;
}
