#include <tlkit/data/image_folder.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <fstream>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

constexpr const char* kImageExtensions = "jpg, jpeg, png, bmp, tif, tiff, webp";

bool is_hidden(const fs::path& path) {
  const auto name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::uint32_t little_endian32(const unsigned char* bytes) {
  return static_cast<std::uint32_t>(bytes[0]) | (static_cast<std::uint32_t>(bytes[1]) << 8) |
         (static_cast<std::uint32_t>(bytes[2]) << 16) | (static_cast<std::uint32_t>(bytes[3]) << 24);
}

std::uint32_t big_endian32(const unsigned char* bytes) {
  return (static_cast<std::uint32_t>(bytes[0]) << 24) | (static_cast<std::uint32_t>(bytes[1]) << 16) |
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

bool is_image_file_name(const fs::path& path) {
  static const std::array<const char*, 7> extensions = {".jpg", ".jpeg", ".png", ".bmp",
                                                        ".tif", ".tiff", ".webp"};
  const auto extension = lower(path.extension().string());
  return std::find(extensions.begin(), extensions.end(), extension) != extensions.end();
}

std::string check_image_file(const fs::path& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  if (error) return "cannot read its size (" + error.message() + ")";
  if (size == 0) return "empty file";
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open it for reading";
  std::array<unsigned char, 16> head{};
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(std::min<std::uintmax_t>(size, 16)));
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
    if (!contains(read_tail(in, size, 4096), "IEND", 4)) return "PNG without IEND chunk (truncated?)";
    return {};
  }
  if (size >= 14 && h[0] == 'B' && h[1] == 'M') {
    const auto declared = little_endian32(h + 2);  // some writers store 0
    if (declared > size) return "BMP shorter than its header says (truncated?)";
    return {};
  }
  if (size >= 8 && (std::memcmp(h, "II*\0", 4) == 0 || std::memcmp(h, "MM\0*", 4) == 0)) {
    const auto first_ifd = h[0] == 'I' ? little_endian32(h + 4) : big_endian32(h + 4);
    if (first_ifd < 8 || first_ifd >= size) return "TIFF whose directory lies outside the file (truncated?)";
    return {};
  }
  if (size >= 4 && (std::memcmp(h, "II+\0", 4) == 0 || std::memcmp(h, "MM\0+", 4) == 0)) return {};  // BigTIFF
  if (size >= 12 && std::memcmp(h, "RIFF", 4) == 0 && std::memcmp(h + 8, "WEBP", 4) == 0) {
    if (std::uintmax_t{little_endian32(h + 4)} + 8 > size) return "WebP shorter than its header says (truncated?)";
    return {};
  }
  return "not a jpg/png/bmp/tiff/webp image (unknown signature)";
}

ImageFolder::ImageFolder(fs::path root, bool strict, std::vector<std::string> classes)
    : root_(std::move(root)), classes_(std::move(classes)) {
  std::error_code error;
  TLKIT_CHECK(fs::exists(root_, error), "image folder '", root_.string(),
              "' does not exist; check the path (a source is DIR, cifar10:DIR, fashion-mnist:DIR or mnist:DIR)");
  TLKIT_CHECK(fs::is_directory(root_, error), "'", root_.string(),
              "' is not a folder; an image source is a folder with one sub-folder per class");
  std::vector<std::string> folders;
  size_t loose_images = 0;
  for (const auto& entry : fs::directory_iterator(root_)) {
    if (is_hidden(entry.path())) continue;
    if (entry.is_directory()) folders.push_back(entry.path().filename().string());
    else if (is_image_file_name(entry.path())) ++loose_images;
  }
  std::sort(folders.begin(), folders.end());
  TLKIT_CHECK(!folders.empty(), "image folder '", root_.string(), "' has no class sub-folders",
              loose_images ? " (its " + std::to_string(loose_images) + " images lie directly inside)" : "",
              "; put each class's images in a sub-folder named after the class, e.g. '",
              root_.string(), "/cat/1.jpg'");
  const bool fixed_classes = !classes_.empty();
  if (!fixed_classes) classes_ = folders;
  for (const auto& name : folders) {
    const auto it = std::find(classes_.begin(), classes_.end(), name);
    TLKIT_CHECK(it != classes_.end(), "class folder '", (root_ / name).string(),
                "' is not one of the training classes; every class in val/ and test/ must also be in train/");
    scan_class(root_ / name, static_cast<int64_t>(it - classes_.begin()), strict);
  }
  if (skipped_ > 0) {
    logger()->warn("image folder '{}': skipped {} corrupt or non-image file(s)", root_.string(), skipped_);
  }
}

void ImageFolder::scan_class(const fs::path& folder, int64_t label, bool strict) {
  std::vector<fs::path> found;
  const auto options = fs::directory_options::follow_directory_symlink |
                       fs::directory_options::skip_permission_denied;
  for (auto it = fs::recursive_directory_iterator(folder, options); it != fs::recursive_directory_iterator(); ++it) {
    if (is_hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || !is_image_file_name(it->path())) continue;
    const auto problem = check_image_file(it->path());
    if (problem.empty()) {
      found.push_back(it->path());
      continue;
    }
    TLKIT_CHECK(!strict, "corrupt image '", it->path().string(), "': ", problem,
                "; remove or replace the file, or run without strict mode to skip such files");
    logger()->warn("skipping '{}': {}", it->path().string(), problem);
    ++skipped_;
  }
  TLKIT_CHECK(!found.empty(), "class folder '", folder.string(), "' holds no readable images (",
              kImageExtensions, "); add images to it or remove the folder");
  std::sort(found.begin(), found.end());
  for (auto& path : found) {
    files_.push_back(std::move(path));
    labels_.push_back(label);
  }
}

Sample ImageFolder::get(size_t index) const {
  TLKIT_CHECK(index < files_.size(), "sample index ", index, " is out of range for ", describe());
  const auto& path = files_[index];
  return Sample{read_image(path), labels_[index], path.string()};
}

std::string ImageFolder::describe() const {
  std::string text = "image folder '" + root_.string() + "' (" + std::to_string(files_.size()) +
                     " images, " + std::to_string(classes_.size()) + " classes";
  if (skipped_ > 0) text += ", " + std::to_string(skipped_) + " corrupt files skipped";
  return text + ")";
}

#ifndef TLKIT_WITH_OPENCV
at::Tensor decode_image(const std::vector<unsigned char>&, const std::string& name) {
  fail("cannot decode image '", name, "': tlkit was built without OpenCV; rebuild with ",
       "-DTLKIT_WITH_OPENCV=ON (Debian: libopencv-dev) or use a cifar10:/mnist: source");
}
at::Tensor read_image(const fs::path& path) { return decode_image({}, path.string()); }
#endif

}  // namespace tlkit::data
