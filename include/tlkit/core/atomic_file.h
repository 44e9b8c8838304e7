#pragma once
// Atomic file writes: data goes to a temporary file beside the target, which is renamed over the
// target only on commit(). A failure (exception, crash, full disk) before commit leaves the old
// file intact and no half-written file behind. Temporaries are named `.<target>.tmp.<pid>.<n>`, so
// those of a killed process can be recognised and removed (RunFolder::remove_stale_temporaries).

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

  // Appends bytes and always reports them written: a failed write (disk full, file-size limit) is
  // remembered and reported by commit(). This is the writer to hand to serialisers that must not
  // see a short write (LibTorch's PyTorchStreamWriter throws from its destructor then, which
  // aborts the process).
  size_t write(const void* data, size_t size);

  // Flushes, syncs, closes and renames the temporary file onto the target; throws tlkit::Error
  // naming the target and the system's reason on failure (the temporary is then removed).
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::ofstream out_;
  bool committed_ = false;
  int write_errno_ = 0;  // errno of the first failed write, 0 while none failed
};

// Writes `contents` to `path` atomically (parent folders are created).
void write_file_atomic(const std::filesystem::path& path, const std::string& contents);

// Whether `file_name` is an AtomicFile temporary (`.<target>.tmp.<pid>.<n>`) of a process no
// longer running (a killed run's), and the name of the file it was meant to become. RunFolder
// removes those of its own files.
bool is_stale_temporary(const std::string& file_name, std::string& target);

// Reads a whole file; throws tlkit::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace tlkit
