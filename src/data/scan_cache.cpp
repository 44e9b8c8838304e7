#include "scan_cache.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include <sys/stat.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/image_folder.h>
#include <tlkit/data/image_io.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

constexpr char kMagic[] = "tlkit-scan-cache\n";
// Bump kCheckVersion whenever check_image_file's verdicts change: older caches are then ignored.
constexpr std::uint32_t kFormatVersion = 1, kCheckVersion = 1;
constexpr std::uint32_t kVersion = kFormatVersion * 1000 + kCheckVersion;
constexpr std::int64_t kRacyNs = 1'000'000'000;  // changes this close to the write: re-checked
constexpr std::uint64_t kMaxCacheBytes = std::uint64_t{1} << 32;

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool stamp_of(const fs::path& path, FileStamp& stamp) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return false;
  stamp.size = static_cast<std::uint64_t>(info.st_size);
  stamp.mtime_ns = std::int64_t{info.st_mtim.tv_sec} * 1'000'000'000 + info.st_mtim.tv_nsec;
  stamp.ctime_ns = std::int64_t{info.st_ctim.tv_sec} * 1'000'000'000 + info.st_ctim.tv_nsec;
  stamp.inode = static_cast<std::uint64_t>(info.st_ino);
  stamp.device = static_cast<std::uint64_t>(info.st_dev);
  return true;
}

// Bounds-checked reading of the cache file: any short or absurd field makes the whole file void.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  bool get(T& value) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool get(std::string& text) {
    std::uint64_t length = 0;
    if (!get(length) || bytes_.size() - pos_ < length) return false;
    text.assign(bytes_, pos_, length);
    pos_ += length;
    return true;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  const std::string& bytes_;
  std::size_t pos_ = 0;
};

template <typename T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}
void put(std::string& out, const std::string& text) {
  put(out, std::uint64_t{text.size()});
  out += text;
}

}  // namespace

bool FileStamp::operator==(const FileStamp& other) const {
  return size == other.size && mtime_ns == other.mtime_ns && ctime_ns == other.ctime_ns &&
         inode == other.inode && device == other.device;
}

fs::path scan_cache_folder() {
  if (const char* dir = std::getenv("TLKIT_CACHE_DIR")) {
    const std::string value = dir;
    if (value.empty() || value == "off" || value == "none") return {};
    return fs::path(value) / "scans";
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "tlkit" / "scans";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache" / "tlkit" / "scans";
  return {};
}

ScanCache::ScanCache(const fs::path& root) : root_key_(root.native()), started_ns_(now_ns()) {
  const auto folder = scan_cache_folder();
  if (folder.empty()) return;
  std::ostringstream name;
  name << std::hex << fnv1a(root_key_) << ".scan";
  file_ = folder / name.str();
  std::ifstream in(file_, std::ios::binary);
  if (!in) return;
  std::error_code error;
  const auto size = fs::file_size(file_, error);
  if (error || size > kMaxCacheBytes) return;
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (const char* why = load(bytes)) {
    logger()->debug("ignoring the scan cache '{}': {}", file_.string(), why);
    loaded_.clear();
  }
}

const char* ScanCache::load(const std::string& bytes) {
  Reader reader(bytes);
  std::string magic, root_text;
  std::uint32_t version = 0;
  std::uint64_t count = 0;
  if (!reader.get(magic) || magic != kMagic || !reader.get(version) || version != kVersion)
    return "another format or tlkit version";
  if (!reader.get(root_text) || root_text != root_key_) return "another folder";
  if (!reader.get(loaded_written_ns_) || !reader.get(count) || count > bytes.size())
    return "damaged header";
  loaded_.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string relative;
    Entry entry;
    if (!reader.get(relative) || !reader.get(entry.stamp.size) ||
        !reader.get(entry.stamp.mtime_ns) || !reader.get(entry.stamp.ctime_ns) ||
        !reader.get(entry.stamp.inode) || !reader.get(entry.stamp.device) ||
        !reader.get(entry.problem))
      return "damaged entry";
    loaded_.emplace(std::move(relative), std::move(entry));
  }
  return reader.done() ? nullptr : "trailing bytes";
}

std::string ScanCache::verdict(const fs::path& path, const std::string& relative) {
  Entry entry;
  if (file_.empty() || !stamp_of(path, entry.stamp)) {
    ++checked_;
    return check_image_file(path);
  }
  const auto found = loaded_.find(relative);
  const bool racy =
      std::max(entry.stamp.mtime_ns, entry.stamp.ctime_ns) >= loaded_written_ns_ - kRacyNs;
  if (found != loaded_.end() && !racy && found->second.stamp == entry.stamp) {
    ++reused_;
    entry.problem = found->second.problem;
  } else {
    ++checked_;
    entry.problem = check_image_file(path);
  }
  auto& kept = seen_[relative] = std::move(entry);
  return kept.problem;
}

void ScanCache::save() {
  if (file_.empty() || (checked_ == 0 && seen_.size() == loaded_.size())) return;
  std::string out;
  put(out, std::string(kMagic));
  put(out, kVersion);
  put(out, root_key_);
  put(out, started_ns_);  // files changed after the scan began are re-checked next time
  put(out, std::uint64_t{seen_.size()});
  for (const auto& [relative, entry] : seen_) {
    put(out, relative);
    put(out, entry.stamp.size);
    put(out, entry.stamp.mtime_ns);
    put(out, entry.stamp.ctime_ns);
    put(out, entry.stamp.inode);
    put(out, entry.stamp.device);
    put(out, entry.problem);
  }
  try {
    write_file_atomic(file_, out);
  } catch (const std::exception& e) {
    logger()->debug("could not write the scan cache: {}", e.what());
  }
}

}  // namespace tlkit::data
