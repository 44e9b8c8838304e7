#include <tlkit/data/image_io.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <fstream>

#include <tlkit/core/error.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::uint32_t little_endian32(const unsigned char* bytes) {
  return static_cast<std::uint32_t>(bytes[0]) | (static_cast<std::uint32_t>(bytes[1]) << 8) |
         (static_cast<std::uint32_t>(bytes[2]) << 16) |
         (static_cast<std::uint32_t>(bytes[3]) << 24);
}

std::uint32_t big_endian32(const unsigned char* bytes) {
  return (static_cast<std::uint32_t>(bytes[0]) << 24) |
         (static_cast<std::uint32_t>(bytes[1]) << 16) |
         (static_cast<std::uint32_t>(bytes[2]) << 8) | static_cast<std::uint32_t>(bytes[3]);
}

bool contains(const std::string& haystack, const char* needle, size_t length) {
  return std::search(haystack.begin(), haystack.end(), needle, needle + length) != haystack.end();
}

// The last `count` bytes of a file (fewer when the file is shorter).
std::string read_tail(std::ifstream& in, std::uintmax_t file_size, size_t count) {
  const auto n = static_cast<size_t>(std::min<std::uintmax_t>(file_size, count));
  std::string tail(n, '\0');
  in.seekg(static_cast<std::streamoff>(file_size - n));
  in.read(tail.data(), static_cast<std::streamsize>(n));
  return in ? tail : std::string();
}

}  // namespace

namespace {
// torchvision's IMG_EXTENSIONS (compared without case, as torchvision does).
constexpr std::array<const char*, 9> kExtensions = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp",
                                                    ".pgm", ".tif",  ".tiff", ".webp"};
}  // namespace

bool is_image_file_name(const fs::path& path) {
  const auto extension = lower(path.extension().string());
  return std::find(kExtensions.begin(), kExtensions.end(), extension) != kExtensions.end();
}

std::string image_extensions() {
  std::string text;
  for (const char* extension : kExtensions)
    text += (text.empty() ? "" : ", ") + std::string(extension + 1);
  return text;
}

std::string check_image_file(const fs::path& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  if (error) return "cannot read its size (" + error.message() + ")";
  if (size == 0) return "empty file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open it for reading";
  std::array<unsigned char, 16> head{};
  in.read(reinterpret_cast<char*>(head.data()),
          static_cast<std::streamsize>(std::min<std::uintmax_t>(size, 16)));
  if (!in) return "cannot read its first bytes";
  const auto* h = head.data();
  if (size >= 4 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) {
    // Inside entropy-coded JPEG data 0xFF is always followed by 0x00 or a restart marker, so
    // FF D9 near the end can only be the end-of-image marker (trailing padding is tolerated).
    const auto tail = read_tail(in, size, 4096);
    if (!contains(tail, "\xFF\xD9", 2)) return "JPEG without end-of-image marker (truncated?)";
    return {};
  }
  if (size >= 8 && std::memcmp(h, "\x89PNG\r\n\x1A\n", 8) == 0) {
    if (!contains(read_tail(in, size, 4096), "IEND", 4))
      return "PNG without IEND chunk (truncated?)";
    return {};
  }
  if (size >= 14 && h[0] == 'B' && h[1] == 'M') {
    const auto declared = little_endian32(h + 2);  // some writers store 0
    if (declared > size) return "BMP shorter than its header says (truncated?)";
    return {};
  }
  if (size >= 8 && (std::memcmp(h, "II*\0", 4) == 0 || std::memcmp(h, "MM\0*", 4) == 0)) {
    const auto first_ifd = h[0] == 'I' ? little_endian32(h + 4) : big_endian32(h + 4);
    if (first_ifd < 8 || first_ifd >= size)
      return "TIFF whose directory lies outside the file (truncated?)";
    return {};
  }
  if (size >= 4 && (std::memcmp(h, "II+\0", 4) == 0 || std::memcmp(h, "MM\0+", 4) == 0))
    return {};  // BigTIFF
  if (size >= 12 && std::memcmp(h, "RIFF", 4) == 0 && std::memcmp(h + 8, "WEBP", 4) == 0) {
    if (std::uintmax_t{little_endian32(h + 4)} + 8 > size)
      return "WebP shorter than its header says (truncated?)";
    return {};
  }
  if (size >= 3 && h[0] == 'P' && h[1] >= '2' && h[1] <= '6' && h[1] != '4' && std::isspace(h[2]))
    return {};  // PGM / PPM (Netpbm, binary or text)
  return "not a jpg/png/bmp/tiff/webp/ppm/pgm image (unknown signature)";
}

#ifndef TLKIT_WITH_OPENCV
at::Tensor decode_image(const std::vector<unsigned char>&, const std::string& name) {
  fail("cannot decode image '", name, "': tlkit was built without OpenCV; rebuild with ",
       "-DTLKIT_WITH_OPENCV=ON (Debian: libopencv-dev) or use a cifar10:/mnist: source");
}
at::Tensor read_image(const fs::path& path) { return decode_image({}, path.string()); }
void write_image(const fs::path& path, const at::Tensor&, int) {
  fail("cannot write image '", path.string(),
       "': tlkit was built without OpenCV; rebuild with -DTLKIT_WITH_OPENCV=ON");
}
#endif

}  // namespace tlkit::data
