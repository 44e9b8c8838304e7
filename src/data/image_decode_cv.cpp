// Image decoding with OpenCV: files to uint8 HWC RGB (or grey) tensors.

#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <tlkit/core/error.h>
#include <tlkit/data/image_folder.h>

#include "cv_tensor.h"

namespace tlkit::data {
namespace {

// IMREAD_UNCHANGED keeps 16-bit and float depths; bring them to 8 bits.
cv::Mat to_8bit(const cv::Mat& raw, const std::string& name) {
  switch (raw.depth()) {
    case CV_8U: return raw;
    case CV_16U: {
      cv::Mat out;
      raw.convertTo(out, CV_8U, 255.0 / 65535.0);
      return out;
    }
    case CV_32F:
    case CV_64F: {  // float images are taken to hold values in [0, 1]
      cv::Mat out;
      raw.convertTo(out, CV_8U, 255.0);
      return out;
    }
    default:
      fail("cannot use image '", name, "': pixel depth ", raw.depth(),
           " (signed integers) is not supported; convert it to 8- or 16-bit unsigned");
  }
}

}  // namespace

at::Tensor decode_image(const std::vector<unsigned char>& bytes, const std::string& name) {
  cv::Mat raw;
  try {
    raw = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail("cannot decode image '", name, "': ", e.what(), "; replace or remove the file");
  }
  TLKIT_CHECK(!raw.empty(), "cannot decode image '", name,
              "': OpenCV does not read its contents (corrupt or unsupported); replace or remove the file");
  const cv::Mat image = to_8bit(raw, name);
  const int channels = image.channels();
  auto [tensor, out] = detail::new_image(image.rows, image.cols, channels == 1 || channels == 2 ? 1 : 3);
  switch (channels) {
    case 1: image.copyTo(out); break;
    case 2: cv::extractChannel(image, out, 0); break;  // grey + alpha: keep the grey
    case 3: cv::cvtColor(image, out, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(image, out, cv::COLOR_BGRA2RGB); break;  // alpha dropped
    default: fail("cannot use image '", name, "': ", channels, " channels; expected 1 to 4");
  }
  return tensor;
}

at::Tensor read_image(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  TLKIT_CHECK(in, "cannot open image '", path.string(), "'; check that it exists and is readable");
  const auto size = static_cast<size_t>(in.tellg());
  std::vector<unsigned char> bytes(size);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  TLKIT_CHECK(in && size > 0, "cannot read image '", path.string(), "' (", size,
              " bytes); check that it is a complete file");
  return decode_image(bytes, path.string());
}

}  // namespace tlkit::data
