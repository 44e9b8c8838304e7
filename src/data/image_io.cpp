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

std::string jpeg_structure_problem(const unsigned char* data, std::size_t size) {
  if (size < 4 || data[0] != 0xFF || data[1] != 0xD8)
    return "not a JPEG (no start-of-image marker)";
  std::size_t pos = 2;
  while (pos + 1 < size) {
    if (data[pos] != 0xFF) {  // stray bytes before a marker: resynchronise at the next 0xFF
      const void* next = std::memchr(data + pos, 0xFF, size - pos);
      if (!next) break;
      pos = static_cast<std::size_t>(static_cast<const unsigned char*>(next) - data);
      continue;
    }
    const unsigned char marker = data[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9) return {};  // end of image
    if (marker == 0x01 || marker == 0x00 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;  // markers without a length
      continue;
    }
    if (pos + 4 > size) break;
    const std::size_t length = (std::size_t{data[pos + 2]} << 8) | data[pos + 3];
    if (length < 2) {
      pos += 2;
      continue;
    }
    if (pos + 2 + length > size)
      return "JPEG ends inside a segment (truncated: " + std::to_string(size) + " bytes)";
    pos += 2 + length;
    if (marker != 0xDA) continue;
    // Entropy-coded data after start-of-scan: it runs to the next 0xFF not followed by 0x00
    // (a stuffed byte) or a restart marker.
    while (pos < size) {
      const void* next = std::memchr(data + pos, 0xFF, size - pos);
      if (!next)
        return "JPEG ends inside its image data (truncated: " + std::to_string(size) + " bytes)";
      pos = static_cast<std::size_t>(static_cast<const unsigned char*>(next) - data);
      if (pos + 1 >= size) break;
      const unsigned char after = data[pos + 1];
      if (after == 0x00 || (after >= 0xD0 && after <= 0xD7)) {
        pos += 2;
        continue;
      }
      if (after == 0xFF) {
        ++pos;
        continue;
      }
      break;  // a marker: back to the segment walk
    }
  }
  return "JPEG ends before its end-of-image marker (truncated: " + std::to_string(size) + " bytes)";
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
