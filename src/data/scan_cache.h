#pragma once
// The folder scan's memory of earlier scans (internal to ImageFolder).
//
// The scan opens every file to check its signature and end; on a rerun over an unchanged folder
// that is the slow part. ScanCache keeps each file's verdict together with what identifies the
// file's contents on disk (size, modification and change times in nanoseconds, inode, device) and
// hands the verdict back only when all of them are unchanged, so a file replaced in place, by
// rename or through a retargeted symlink is checked again. Verdicts of files changed during the
// second before the cache was written are not trusted (a write within the same time-stamp tick
// would not show). The cache is one file per folder (keyed by the folder's canonical path) under
// scan_cache_folder(); it is written atomically and only when something changed, and a missing,
// unreadable, damaged or foreign cache file is the same as none. Failing to write it is logged
// at debug level and never stops a scan.

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>

namespace tlkit::data {

struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  std::uint64_t inode = 0;
  std::uint64_t device = 0;
  bool operator==(const FileStamp& other) const;
};

class ScanCache {
 public:
  // Loads the cache of `root` (canonical path) when caching is on.
  explicit ScanCache(const std::filesystem::path& root);

  // The verdict of check_image_file for `path` (= root / relative): from the cache when the file
  // is unchanged, else checked now. Counts which it was.
  std::string verdict(const std::filesystem::path& path, const std::string& relative);

  // Writes the verdicts of this scan's files (only these: removed files are forgotten) when any
  // differ from the loaded ones.
  void save();

  std::size_t reused() const { return reused_; }
  std::size_t checked() const { return checked_; }

 private:
  const char* load(const std::string& bytes);  // nullptr when read whole, else why not

  struct Entry {
    FileStamp stamp;
    std::string problem;
  };
  std::string root_key_;
  std::int64_t started_ns_ = 0;
  std::filesystem::path file_;  // empty: caching off
  std::int64_t loaded_written_ns_ = 0;
  std::unordered_map<std::string, Entry> loaded_, seen_;
  std::size_t reused_ = 0, checked_ = 0;
};

}  // namespace tlkit::data
