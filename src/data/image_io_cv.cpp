// Image decoding and encoding with OpenCV: files to uint8 HWC RGB (or grey) tensors and back.
// 8-bit grey and colour JPEGs are decoded by libjpeg directly where tlkit is built with it (the
// library OpenCV uses, with the same settings, so the same pixels): its warnings are seen, and a
// JPEG whose image data stops early is refused instead of decoded with its missing part grey.

#include <csetjmp>
#include <cstdio>
#include <fstream>
#include <optional>

#if defined(TLKIT_WITH_LIBJPEG)
#include <jerror.h>
#include <jpeglib.h>
#endif

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

#if defined(TLKIT_WITH_LIBJPEG)
// libjpeg reports errors through error_exit (which must not return: longjmp back) and warnings
// through emit_message(-1); the first warning of data loss is kept.
struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  int data_loss = 0;  // JWRN_HIT_MARKER / JWRN_JPEG_EOF: image data ended before the image did
  char data_loss_message[JMSG_LENGTH_MAX] = {};
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  ++cinfo->err->num_warnings;
  const int code = cinfo->err->msg_code;
  if ((code == JWRN_HIT_MARKER || code == JWRN_JPEG_EOF) && errors->data_loss++ == 0)
    (*cinfo->err->format_message)(cinfo, errors->data_loss_message);
}

// The decompressor and its error handler; no C++ object with a destructor lives in the frames a
// longjmp crosses (read_jpeg_header, read_jpeg_pixels).
struct JpegReader {
  jpeg_decompress_struct cinfo{};
  JpegErrors errors;
  bool created = false;
  JpegReader() {
    cinfo.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = jpeg_error_exit;
    errors.manager.emit_message = jpeg_emit_message;
  }
  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  JpegReader(const JpegReader&) = delete;
  JpegReader& operator=(const JpegReader&) = delete;
};

bool read_jpeg_header(JpegReader& reader, const unsigned char* data, std::size_t size) {
  if (setjmp(reader.errors.jump)) return false;
  jpeg_create_decompress(&reader.cinfo);
  reader.created = true;
  jpeg_mem_src(&reader.cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
  jpeg_read_header(&reader.cinfo, TRUE);
  return true;
}

bool start_jpeg(JpegReader& reader) {
  if (setjmp(reader.errors.jump)) return false;
  jpeg_start_decompress(&reader.cinfo);
  return true;
}

bool read_jpeg_pixels(JpegReader& reader, unsigned char* out, std::size_t stride) {
  if (setjmp(reader.errors.jump)) return false;
  auto& cinfo = reader.cinfo;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + static_cast<std::size_t>(cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  return true;
}

// An 8-bit grey or colour JPEG as a tensor; nullopt for what OpenCV should decode instead (CMYK,
// other precisions). A JPEG libjpeg cannot read, or whose image data ends early, is an error.
std::optional<at::Tensor> decode_jpeg(const std::vector<unsigned char>& bytes,
                                      const std::string& name) {
  JpegReader reader;
  if (!read_jpeg_header(reader, bytes.data(), bytes.size()))
    fail("cannot decode image '", name, "': ", reader.errors.message,
         "; replace or remove the file");
  auto& cinfo = reader.cinfo;
  if (cinfo.data_precision != 8 || (cinfo.num_components != 1 && cinfo.num_components != 3))
    return std::nullopt;
  // What OpenCV asks for with IMREAD_UNCHANGED: grey stays grey, colour becomes RGB here (BGR
  // there, then swapped); libjpeg's default DCT and upsampling, as OpenCV leaves them.
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (!start_jpeg(reader))
    fail("cannot decode image '", name, "': ", reader.errors.message,
         "; replace or remove the file");
  auto [tensor, out] =
      detail::new_image(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width),
                        cinfo.output_components);
  if (!read_jpeg_pixels(reader, out.data, out.step))
    fail("cannot decode image '", name, "': ", reader.errors.message,
         "; replace or remove the file");
  TLKIT_CHECK(reader.errors.data_loss == 0, "cannot decode image '", name,
              "': its image data ends early (libjpeg: \"", reader.errors.data_loss_message,
              "\"), so part of it would be flat grey (a truncated or damaged file); replace or "
              "remove the file");
  return tensor;
}
#endif

}  // namespace

at::Tensor decode_image(const std::vector<unsigned char>& bytes, const std::string& name) {
  // libjpeg decodes a truncated JPEG with a warning only (the missing part flat grey): refuse it.
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
    const auto problem = jpeg_structure_problem(bytes.data(), bytes.size());
    TLKIT_CHECK(problem.empty(), "cannot decode image '", name, "': ", problem,
                "; replace or remove the file");
#if defined(TLKIT_WITH_LIBJPEG)
    if (auto decoded = decode_jpeg(bytes, name)) return std::move(*decoded);
#endif
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
