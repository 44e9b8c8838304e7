// Image decoding and encoding with OpenCV: files to uint8 HWC RGB (or grey) tensors and back.

#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <tlkit/core/error.h>
#include <tlkit/data/image_io.h>

#include "cv_tensor.h"

namespace tlkit::data {
namespace {

// IMREAD_UNCHANGED keeps 16-bit and float depths; bring them to 8 bits.
cv::Mat to_8bit(const cv::Mat& raw, const std::string& name) {
  switch (raw.depth()) {
    case CV_8U:
      return raw;
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
  // libjpeg decodes a truncated JPEG with a warning only (the missing part flat grey): refuse it.
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
    const auto problem = jpeg_structure_problem(bytes.data(), bytes.size());
    TLKIT_CHECK(problem.empty(), "cannot decode image '", name, "': ", problem,
                "; replace or remove the file");
  }
  cv::Mat raw;
  try {
    raw = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail("cannot decode image '", name, "': ", e.what(), "; replace or remove the file");
  }
  TLKIT_CHECK(
      !raw.empty(), "cannot decode image '", name,
      "': OpenCV does not read its contents (corrupt or unsupported); replace or remove the file");
  const cv::Mat image = to_8bit(raw, name);
  const int channels = image.channels();
  auto [tensor, out] =
      detail::new_image(image.rows, image.cols, channels == 1 || channels == 2 ? 1 : 3);
  switch (channels) {
    case 1:
      image.copyTo(out);
      break;
    case 2:
      cv::extractChannel(image, out, 0);
      break;  // grey + alpha: keep the grey
    case 3:
      cv::cvtColor(image, out, cv::COLOR_BGR2RGB);
      break;
    case 4:
      cv::cvtColor(image, out, cv::COLOR_BGRA2RGB);
      break;  // alpha dropped
    default:
      fail("cannot use image '", name, "': ", channels, " channels; expected 1 to 4");
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

void write_image(const std::filesystem::path& path, const at::Tensor& image, int jpeg_quality) {
  TLKIT_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte &&
                  (image.size(2) == 1 || image.size(2) == 3),
              "cannot write image '", path.string(),
              "': expected uint8 H x W x C with C = 1 or 3, got ", image.sizes(), " ",
              image.scalar_type());
  const auto source = image.contiguous();
  const cv::Mat rgb = detail::as_mat(source);
  cv::Mat bgr;
  if (rgb.channels() == 3)
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  else
    bgr = rgb;
  std::vector<unsigned char> bytes;
  try {
    TLKIT_CHECK(cv::imencode(path.extension().string(), bgr, bytes,
                             {cv::IMWRITE_JPEG_QUALITY, jpeg_quality}),
                "cannot encode image '", path.string(),
                "'; use a .jpg, .png, .bmp, .tif or .webp name");
  } catch (const cv::Exception& e) {
    fail("cannot encode image '", path.string(), "': ", e.what(),
         "; use a .jpg, .png, .bmp, .tif or .webp name");
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  TLKIT_CHECK(out.good(), "cannot write image '", path.string(),
              "'; check the folder exists and is writable");
}

}  // namespace tlkit::data
