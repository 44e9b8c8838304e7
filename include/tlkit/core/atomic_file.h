#pragma once
// Atomic file writes: data goes to a temporary file beside the target, which is renamed over the
// target only on commit(). A failure (exception, crash) before commit leaves the old file intact
// and no half-written file behind.

#include <filesystem>
#include <fstream>
#include <string>

namespace tlkit {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& target() const { return target_; }

  // Flushes, closes and renames the temporary file onto the target; throws tlkit::Error on failure.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::ofstream out_;
  bool committed_ = false;
};

// Writes `contents` to `path` atomically (parent folders are created).
void write_file_atomic(const std::filesystem::path& path, const std::string& contents);

// Reads a whole file; throws tlkit::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace tlkit
